"""Retention and compaction as a real client (confluent-kafka / librdkafka)
sees them: old segments go and the log start offset moves
(``get_watermark_offsets``); a consumer reading a compacted topic from the
beginning sees only the latest value per key with increasing offsets, deleted
keys vanish after ``delete.retention.ms``; kill -9 while the cleaner runs
loses no key's latest value."""

import random
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat_lib import unique_topic

FAST = {
    "log.retention.check.interval.ms": 200,
    "log.segment.delete.delay.ms": 100,
    "log.cleaner.backoff.ms": 100,
}

COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.01",
    "internal.segment.bytes": "1500",
    "delete.retention.ms": "1000",
}


def create(bootstrap, topic, config):
    a = AdminClient({"bootstrap.servers": bootstrap})
    futs = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)],
                           operation_timeout=15, request_timeout=15)
    futs[topic].result(timeout=15)


def producer(bootstrap):
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                     "enable.idempotence": False, "max.in.flight.requests.per.connection": 1})


def produce_all(bootstrap, topic, items, timestamp=None):
    """items: [(key, value-or-None)]; every record acknowledged or raise."""
    p = producer(bootstrap)
    errors = []
    for k, v in items:
        kw = {"timestamp": timestamp} if timestamp is not None else {}
        p.produce(topic, key=k, value=v, partition=0,
                  on_delivery=lambda err, _m: err is not None and errors.append(err), **kw)
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors


def consume_all(bootstrap, topic, timeout=30.0):
    """Everything from the log start to the high watermark: [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "retention-compat",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out, deadline = [], time.time() + timeout
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(m.error())
            out.append((m.offset(), m.key().decode(), None if m.value() is None else m.value().decode()))
        raise AssertionError(f"no EOF after {timeout}s ({len(out)} records)")
    finally:
        c.close()


def watermarks(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "retention-compat-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def wait_for(what, cond, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def latest_of(recs):
    return {k: v for _, k, v in recs}


def checkpoint(broker, topic):
    path = broker.data_dir / f"{topic}-0" / "cleaner-offset-checkpoint"
    try:
        return int(path.read_text().splitlines()[2].split()[-1])
    except (OSError, IndexError, ValueError):
        return None


def test_time_retention_moves_log_start(broker_factory):
    b = broker_factory(FAST)
    topic = unique_topic("retention")
    create(b.bootstrap, topic, {"internal.segment.bytes": "2000", "retention.ms": "1000"})
    old = int(time.time() * 1000) - 600_000
    produce_all(b.bootstrap, topic, [(f"k{i}".encode(), b"x" * 100) for i in range(100)], timestamp=old)
    assert watermarks(b.bootstrap, topic)[1] == 100
    # All of it is past retention.ms (the active segment too, as in Kafka).
    wait_for("log start offset to move", lambda: watermarks(b.bootstrap, topic) == (100, 100))
    part = b.data_dir / f"{topic}-0"
    wait_for("old segments to go", lambda: sorted(p.name for p in part.glob("*.log*")) ==
             [f"{100:020d}.log"], timeout=10)
    produce_all(b.bootstrap, topic, [(b"fresh", b"kept")])
    assert consume_all(b.bootstrap, topic) == [(100, "fresh", "kept")]


def test_compaction_latest_value_per_key_and_tombstones(broker_factory):
    b = broker_factory(FAST)
    topic = unique_topic("compacted")
    create(b.bootstrap, topic, COMPACTED)
    expected = {}
    for rnd in range(30):
        items = [(f"k{k}", f"v{rnd}-{k}") for k in range(10)]
        produce_all(b.bootstrap, topic, [(k.encode(), v.encode()) for k, v in items])
        expected.update(items)
    wait_for("a cleaning pass", lambda: (checkpoint(b, topic) or 0) >= 200)
    recs = consume_all(b.bootstrap, topic)
    offsets = [o for o, _, _ in recs]
    assert offsets == sorted(set(offsets)), "offsets strictly increasing"
    assert latest_of(recs) == expected
    assert len(recs) < 150, len(recs)
    cleaned = [k for o, k, _ in recs if o < checkpoint(b, topic)]
    assert len(cleaned) == len(set(cleaned)), "one record per key in the cleaned part"

    # Delete k0..k4; after delete.retention.ms and more cleaning they vanish.
    produce_all(b.bootstrap, topic, [(f"k{k}".encode(), None) for k in range(5)])
    for k in range(5):
        expected.pop(f"k{k}")
    rnd = [0]

    def gone():
        rnd[0] += 1
        items = [(f"f{k}", f"w{rnd[0]}") for k in range(5)]
        produce_all(b.bootstrap, topic, [(k.encode(), v.encode()) for k, v in items])
        expected.update(items)
        recs = consume_all(b.bootstrap, topic)
        return not any(k in {f"k{i}" for i in range(5)} for _, k, _ in recs)

    wait_for("deleted keys to disappear", gone, timeout=40)
    recs = consume_all(b.bootstrap, topic)
    assert latest_of(recs) == expected


def test_kill_9_during_compaction_loses_nothing(broker_factory):
    b = broker_factory({**FAST, "log.cleaner.backoff.ms": 20})
    topic = unique_topic("compacted-crash")
    create(b.bootstrap, topic, COMPACTED)
    rng = random.Random(7)
    expected = {}
    rnd = 0
    for _ in range(4):
        for _ in range(6):
            items = [(f"k{k}", f"v{rnd}-{k}") for k in range(20)]
            produce_all(b.bootstrap, topic, [(k.encode(), v.encode()) for k, v in items])
            expected.update(items)
            rnd += 1
        time.sleep(rng.random() * 0.15)
        b.kill()
        b.start()
        recs = consume_all(b.bootstrap, topic)
        assert latest_of(recs) == expected
        offsets = [o for o, _, _ in recs]
        assert offsets == sorted(set(offsets))
