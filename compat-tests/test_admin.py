"""CreateTopics / DeleteTopics error handling through two admin clients."""
import time

import pytest

from compat_lib import (ck_admin, ck_consume, ck_consumer, ck_produce, kp_admin, make_messages,
                        unique_topic)

# Kafka error codes
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38

INVALID_NAMES = ["bad/name", "a" * 250, "..", ".", "has space", "bad:name"]


def kp_create_codes(admin, spec):
    res = admin.create_topics(spec, raise_errors=False)
    return {t["name"]: t["error_code"] for t in res["topics"]}


@pytest.mark.compat("kafka-python", "admin")
def test_kafka_python_create_delete_errors(broker):
    from kafka import errors as E
    admin = kp_admin(broker.bootstrap)
    try:
        t = unique_topic("adm")
        assert kp_create_codes(admin, {t: {"num_partitions": 2, "replication_factor": 1}}) == {t: 0}
        # exists -> TopicAlreadyExists, as an exception and as a code
        with pytest.raises(E.TopicAlreadyExistsError):
            admin.create_topics({t: {"num_partitions": 2, "replication_factor": 1}})
        assert kp_create_codes(admin, {t: {"num_partitions": 2, "replication_factor": 1}}) == \
            {t: TOPIC_ALREADY_EXISTS}

        # replication factor 3 on a single broker
        bad_rf = unique_topic("rf3")
        with pytest.raises(E.InvalidReplicationFactorError):
            admin.create_topics({bad_rf: {"num_partitions": 1, "replication_factor": 3}})

        # invalid names (server-side validation)
        codes = kp_create_codes(admin, {n: {"num_partitions": 1, "replication_factor": 1} for n in INVALID_NAMES})
        assert codes == {n: INVALID_TOPIC_EXCEPTION for n in INVALID_NAMES}, codes
        with pytest.raises(E.InvalidTopicError):
            admin.create_topics({"bad/name": {"num_partitions": 1, "replication_factor": 1}})
        # the longest legal name (249 chars) works
        longest = ("L" + unique_topic("x") + "-" * 249)[:249]
        assert kp_create_codes(admin, {longest: {"num_partitions": 1, "replication_factor": 1}}) == {longest: 0}

        # zero partitions
        zero = unique_topic("zero")
        assert kp_create_codes(admin, {zero: {"num_partitions": 0, "replication_factor": 1}}) == \
            {zero: INVALID_PARTITIONS}

        # a batch with one good and one bad topic: per-topic results
        good, dup = unique_topic("good"), t
        assert kp_create_codes(admin, {good: {"num_partitions": 1, "replication_factor": 1},
                                       dup: {"num_partitions": 1, "replication_factor": 1}}) == \
            {good: 0, dup: TOPIC_ALREADY_EXISTS}

        # none of the failed creations left a topic behind
        listed = set(admin.list_topics())
        assert {t, longest, good} <= listed
        assert not ({bad_rf, zero, *INVALID_NAMES} & listed), listed

        # delete a missing topic
        missing = unique_topic("missing")
        with pytest.raises(E.UnknownTopicOrPartitionError):
            admin.delete_topics([missing])
        res = admin.delete_topics([missing, good], raise_errors=False)
        codes = {r["name"]: r["error_code"] for r in res["topics"]}
        assert codes == {missing: UNKNOWN_TOPIC_OR_PARTITION, good: 0}, res
    finally:
        admin.close()


def ck_create(admin, topic, partitions=1, rf=1):
    from confluent_kafka.admin import NewTopic
    fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
                              operation_timeout=10, request_timeout=15)[topic]
    return fut.exception(timeout=15)


def ck_code(exc):
    return None if exc is None else exc.args[0].code()


@pytest.mark.compat("confluent-kafka", "admin")
def test_confluent_kafka_create_delete_errors(broker):
    from confluent_kafka import KafkaError
    admin = ck_admin(broker.bootstrap)
    t = unique_topic("adm")
    assert ck_create(admin, t, 2) is None
    assert ck_code(ck_create(admin, t, 2)) == KafkaError.TOPIC_ALREADY_EXISTS
    assert ck_code(ck_create(admin, unique_topic("rf3"), 1, 3)) == KafkaError.INVALID_REPLICATION_FACTOR
    for name in ("bad/name", "a" * 250):
        assert ck_code(ck_create(admin, name)) == KafkaError.TOPIC_EXCEPTION, name
    fut = admin.delete_topics([unique_topic("missing")], operation_timeout=10, request_timeout=15)
    exc = list(fut.values())[0].exception(timeout=15)
    assert ck_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART, exc


def wait_gone(admin, topic, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if topic not in admin.list_topics(timeout=5).topics:
            return
        time.sleep(0.1)
    raise AssertionError(f"deleted topic {topic} still listed after {timeout}s")


@pytest.mark.compat("confluent-kafka", "admin")
def test_delete_then_recreate(broker):
    from confluent_kafka import KafkaError, TopicPartition
    admin = ck_admin(broker.bootstrap)
    t = unique_topic("recreate")
    assert ck_create(admin, t, 3) is None
    old = make_messages(300, "old", 3)
    ck_produce(broker.bootstrap, t, old)

    fut = admin.delete_topics([t], operation_timeout=10, request_timeout=15)
    assert fut[t].exception(timeout=15) is None
    wait_gone(admin, t)

    # recreate with a different partition count; a broker may need a moment to finish
    # the deletion (Kafka answers TopicAlreadyExists meanwhile), so retry within a deadline
    deadline = time.monotonic() + 10
    while True:
        exc = ck_create(admin, t, 2)
        if exc is None:
            break
        if ck_code(exc) != KafkaError.TOPIC_ALREADY_EXISTS or time.monotonic() > deadline:
            raise AssertionError(f"recreate after delete failed: {exc}")
        time.sleep(0.2)

    md = admin.list_topics(topic=t, timeout=10).topics[t]
    assert sorted(md.partitions) == [0, 1], "recreated topic must have the new partition count"
    c = ck_consumer(broker.bootstrap)
    try:
        for p in (0, 1):
            assert c.get_watermark_offsets(TopicPartition(t, p), timeout=10, cached=False) == (0, 0), \
                "recreated topic must be empty"
    finally:
        c.close()
    new = make_messages(20, "new", 2)
    acks = ck_produce(broker.bootstrap, t, new)
    assert sorted(acks.values())[:2] == [(0, 0), (0, 1)], "offsets of a recreated topic restart at 0"
    recs = ck_consume(broker.bootstrap, t, 2, {0: 10, 1: 10})
    assert sorted(r.value for r in recs) == sorted(m.value for m in new), \
        "old data must not reappear in the recreated topic"
