"""Metadata: topic listing, partition counts, leaders/node id, auto-creation."""
import json
import time

import pytest

from compat_lib import ck_admin, ck_create_topic, ck_producer, kcat, kp_admin, node_run, unique_topic


def test_metadata_listing_all_clients(broker):
    t3, t1 = unique_topic("md3"), unique_topic("md1")
    admin = kp_admin(broker.bootstrap)
    try:
        res = admin.create_topics({t3: {"num_partitions": 3, "replication_factor": 1},
                                   t1: {"num_partitions": 1, "replication_factor": 1}})
        assert [t["error_code"] for t in res["topics"]] == [0, 0], res
        # kafka-python
        assert {t3, t1} <= set(admin.list_topics())
        desc = {t["name"]: t for t in admin.describe_topics([t3, t1])}
        for name, n in ((t3, 3), (t1, 1)):
            parts = sorted(desc[name]["partitions"], key=lambda p: p["partition_index"])
            assert [p["partition_index"] for p in parts] == list(range(n)), desc[name]
            assert all(p["leader_id"] == 1 and p["error_code"] == 0 for p in parts), parts
            assert all(list(p["replica_nodes"]) == [1] and list(p["isr_nodes"]) == [1] for p in parts), parts
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 1, cluster
        assert [(b.get("broker_id", b.get("node_id")), b["host"], b["port"]) for b in cluster["brokers"]] == \
            [(1, "127.0.0.1", broker.port)], cluster
    finally:
        admin.close()

    # confluent-kafka
    md = ck_admin(broker.bootstrap).list_topics(timeout=10)
    assert {t3, t1} <= set(md.topics)
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == {1: ("127.0.0.1", broker.port)}
    assert md.controller_id == 1
    for name, n in ((t3, 3), (t1, 1)):
        tm = md.topics[name]
        assert tm.error is None, tm.error
        assert sorted(tm.partitions) == list(range(n))
        for p in tm.partitions.values():
            assert (p.leader, list(p.replicas), list(p.isrs), p.error) == (1, [1], [1], None), p

    # kafkajs
    _, res = node_run("metadata", {"bootstrap": broker.bootstrap, "topic": t3})
    assert {t3, t1} <= set(res["topics"])
    assert sorted((p["partition"], p["leader"]) for p in res["partitions"]) == [(0, 1), (1, 1), (2, 1)]
    assert sorted((o["partition"], o["low"], o["high"]) for o in res["offsets"]) == \
        [(p, "0", "0") for p in range(3)]

    # kcat -L
    out = json.loads(kcat("-L", "-J", "-b", broker.bootstrap).stdout)
    assert [(b["id"], b["name"]) for b in out["brokers"]] == [(1, f"127.0.0.1:{broker.port}")], out["brokers"]
    kt = {t["topic"]: t for t in out["topics"]}
    assert len(kt[t3]["partitions"]) == 3 and all(p["leader"] == 1 for p in kt[t3]["partitions"])


def test_custom_node_id(broker_factory):
    b = broker_factory({"node.id": "7"})
    topic = unique_topic("nodeid")
    ck_create_topic(b.bootstrap, topic, 2)
    md = ck_admin(b.bootstrap).list_topics(timeout=10)
    assert list(md.brokers) == [7], md.brokers
    assert [p.leader for p in md.topics[topic].partitions.values()] == [7, 7]
    # clients follow the leader's node id to the advertised address: produce must work
    from compat_lib import ck_produce, make_messages
    ck_produce(b.bootstrap, topic, make_messages(10, "nodeid", 2))


def wait_topic(admin, topic, timeout=10):
    """Poll Metadata for `topic` (with auto-creation allowed) until it has no error."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=topic, timeout=5)
        last = md.topics.get(topic)
        if last is not None and last.error is None and last.partitions and \
                all(p.leader >= 0 for p in last.partitions.values()):
            return last
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} not auto-created within {timeout}s; last metadata: "
                         f"{last and (last.error, dict(last.partitions))}")


def test_auto_create_on_metadata(broker_factory):
    b = broker_factory({"num.partitions": "2"})   # auto.create.topics.enable defaults to true
    topic = unique_topic("auto")
    # librdkafka producers send Metadata with allow_auto_topic_creation=true
    prod = ck_producer(b.bootstrap)
    tm = wait_topic(prod, topic)
    assert sorted(tm.partitions) == [0, 1], "auto-created topic must get num.partitions partitions"
    # it is a real topic: listed without asking for it, and writable
    assert topic in ck_admin(b.bootstrap).list_topics(timeout=10).topics
    delivered = []
    prod.produce(topic, b"hello", partition=1, on_delivery=lambda e, m: delivered.append((e, m.offset())))
    assert prod.flush(10) == 0
    assert delivered == [(None, 0)], delivered


def test_auto_create_disabled(broker_factory):
    from confluent_kafka import KafkaError
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = unique_topic("noauto")
    prod = ck_producer(b.bootstrap)
    md = prod.list_topics(topic=topic, timeout=10)   # allow_auto_topic_creation=true in the request
    tm = md.topics.get(topic)
    assert tm is not None and tm.error is not None, f"expected an error for unknown topic, got {tm}"
    assert tm.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, tm.error
    # and it was not created as a side effect
    assert topic not in ck_admin(b.bootstrap).list_topics(timeout=10).topics
    # kafka-python sees the same error code
    admin = kp_admin(b.bootstrap)
    try:
        desc = admin.describe_topics([topic])
        assert desc[0]["error_code"] == 3, desc
    finally:
        admin.close()
