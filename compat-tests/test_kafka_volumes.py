"""Apache Kafka's data volumes taken over as they are (issue 20).

The real Kafka 4.4 (``kafka_oracle.RealKafka``: one KRaft node, broker and
controller) writes a topic with several partitions and a config override, a
deleted topic, records, a committed group offset and a committed and an
aborted transaction, and is killed (-9). kastle then starts on the very same
directory: a real client sees the same cluster id, topic ids, partition
counts, configs, records and committed offset, and read_committed hides the
aborted records; Kafka's metadata log is left byte for byte as it was.
kastle writes more and stops; `kastle storage kafka-handback` refuses to
hand the directory back to Kafka while kastle's per-partition
aborted-transaction index is there (Kafka's log loader stops on it), and
changes nothing; kastle restarted does not import again and serves what it
wrote.

The refusal test needs no Kafka: a metadata log with a record type kastle
does not read (and a meta.properties of an unknown version) stops kastle
with a message naming the file, and no file changes.
"""
import hashlib
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import jvm_lib
from conftest import Broker, BrokerError
from kafka_oracle import MODULE, RealKafka

TOPIC = "vol-a"
GONE = "vol-gone"
GROUP = "vol-group"
PARTITIONS = 3
RETENTION = "123456789"


def _tree_digest(root: Path, sub: str = "") -> dict:
    base = root / sub if sub else root
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def _retry(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _describe(bootstrap):
    """(cluster id, {topic: (topic id, partition count)}, retention.ms of TOPIC)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cluster = _retry(lambda: admin.describe_cluster().result(timeout=15))
    from confluent_kafka import TopicCollection
    topics = {}
    for name in (TOPIC, GONE):
        f = admin.describe_topics(TopicCollection([name]))[name]
        try:
            d = f.result(timeout=15)
            topics[name] = (str(d.topic_id), len(d.partitions))
        except Exception:
            topics[name] = None
    res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC)
    cfg = admin.describe_configs([res])[res].result(timeout=15)
    return cluster.cluster_id, topics, cfg["retention.ms"].value


def _values(bootstrap, isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "isolation.level": isolation})
    ends = {}
    for p in range(PARTITIONS):
        _, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=15)
        ends[p] = hi
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out, deadline = [], time.monotonic() + 20
    done = set()
    while len(done) < PARTITIONS and time.monotonic() < deadline:
        m = c.poll(0.5)
        for p in range(PARTITIONS):
            pos = c.position([TopicPartition(TOPIC, p)])[0].offset
            if pos >= ends[p] or (pos >= 0 and ends[p] == 0):
                done.add(p)
        if m is None or m.error():
            continue
        out.append(m.value().decode())
    c.close()
    return sorted(out)


def _committed(bootstrap, partition):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(TOPIC, partition)], timeout=15)[0].offset
    finally:
        c.close()


def _commit(bootstrap, partition, offset):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        _retry(lambda: c.commit(offsets=[TopicPartition(TOPIC, partition, offset)],
                                asynchronous=False))
    finally:
        c.close()


def _produce(bootstrap, values):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, v in enumerate(values):
        p.produce(TOPIC, value=v.encode(), partition=i % PARTITIONS)
    assert p.flush(20) == 0


def _kill_kafka(k: RealKafka):
    proc, k.proc = k.proc, None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kafka_volume_taken_over_and_back(tmp_path):
    jvm_lib.jvm_module(MODULE)  # skips when the Kafka jars are not built
    k = RealKafka(tmp_path / "vol")
    k.start()
    try:
        admin = AdminClient({"bootstrap.servers": k.bootstrap})
        fs = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1, config={"retention.ms": RETENTION}),
                                  NewTopic(GONE, 1, 1)])
        for f in fs.values():
            f.result(timeout=30)
        admin.delete_topics([GONE])[GONE].result(timeout=30)
        _produce(k.bootstrap, [f"v{i}" for i in range(30)])
        tp = Producer({"bootstrap.servers": k.bootstrap, "transactional.id": "vol-tx"})
        tp.init_transactions(30)
        tp.begin_transaction()
        tp.produce(TOPIC, value=b"committed", partition=0)
        tp.commit_transaction(30)
        tp.begin_transaction()
        tp.produce(TOPIC, value=b"aborted", partition=1)
        tp.flush(10)
        tp.abort_transaction(30)
        _commit(k.bootstrap, 1, 7)
        seen_by_kafka = _describe(k.bootstrap)
        assert seen_by_kafka[1][TOPIC][1] == PARTITIONS and seen_by_kafka[1][GONE] is None
    finally:
        if k.proc is not None:
            _kill_kafka(k)
    metadata_before = _tree_digest(k.data_dir, "__cluster_metadata-0")

    # kastle on Kafka's directory, after kill -9.
    kastle = Broker(k.workdir, overrides={"node.id": "1"})
    kastle.start()
    try:
        assert _retry(lambda: _describe(kastle.bootstrap)) == seen_by_kafka
        expected = sorted([f"v{i}" for i in range(30)] + ["committed"])
        assert _values(kastle.bootstrap, "read_committed") == expected
        assert "aborted" in _values(kastle.bootstrap, "read_uncommitted")
        assert _retry(lambda: _committed(kastle.bootstrap, 1)) == 7
        _produce(kastle.bootstrap, [f"k{i}" for i in range(6)])
        _commit(kastle.bootstrap, 1, 11)
    finally:
        kastle.stop()
    assert _tree_digest(k.data_dir, "__cluster_metadata-0") == metadata_before

    # Back to Kafka: kastle's per-partition aborted-transaction index (here
    # from Kafka's own aborted transaction) is a file Kafka's log loader
    # stops on, so the hand-back refuses and changes nothing.
    before = _tree_digest(k.data_dir)
    p = subprocess.run([str(kastle.bin), "storage", "kafka-handback", "--log-dir", str(k.data_dir),
                        "--node-id", "1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "aborted-transactions.txnindex" in p.stderr, p.stderr
    assert _tree_digest(k.data_dir) == before

    # kastle again: the import is not repeated; what kastle wrote is there.
    expected += [f"k{i}" for i in range(6)]
    kastle.start()
    try:
        assert _retry(lambda: _describe(kastle.bootstrap)) == seen_by_kafka
        assert _values(kastle.bootstrap, "read_committed") == sorted(expected)
        assert _retry(lambda: _committed(kastle.bootstrap, 1)) == 11
    finally:
        kastle.stop()
    assert "imported Apache Kafka's metadata" not in kastle.log_path.read_text(errors="replace")


def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _varint(n):
    return _uvarint((n << 1) ^ (n >> 63))


def _batch(values):
    """One uncompressed v2 record batch of `values` (CRC-32C as Kafka's)."""
    from kafka.record.util import calc_crc32c
    records = b""
    for i, v in enumerate(values):
        body = b"\x00" + _varint(0) + _varint(i) + _varint(-1) + _varint(len(v)) + v + _varint(0)
        records += _varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, 0, 0, -1, -1, -1, len(values)) + records
    crc = calc_crc32c(after_crc)
    head = struct.pack(">iB", 0, 2) + struct.pack(">I", crc) + after_crc
    return struct.pack(">qi", 0, len(head)) + head


def _refused(tmp_path, name, files):
    work = tmp_path / name
    data = work / "data"
    for rel, content in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    before = _tree_digest(data)
    b = Broker(work, overrides={"node.id": "1"})
    with pytest.raises(BrokerError):
        b.start(timeout=5)
    assert b.last_returncode not in (None, 0)
    log = b.log_path.read_text(errors="replace")
    after = {p: d for p, d in _tree_digest(data).items() if p != ".lock"}
    assert after == {p: d for p, d in before.items() if p != ".lock"}
    return log


def test_unknown_metadata_is_refused_and_left_alone(tmp_path):
    meta = b"version=1\nnode.id=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAg\ndirectory.id=ZZZZZZZZZZZZZZZZZZZZZQ\n"
    # A TopicRecord-framed value of type 99, which no Kafka writes yet.
    unknown = _uvarint(1) + _uvarint(99) + _uvarint(0) + b"\x00"
    log = _refused(tmp_path, "unknown-type", {
        "meta.properties": meta,
        "__cluster_metadata-0/00000000000000000000.log": _batch([unknown]) + _batch([unknown]),
    })
    assert "00000000000000000000.log" in log and "type 99" in log, log
    log = _refused(tmp_path, "meta-version", {
        "meta.properties": meta.replace(b"version=1", b"version=2"),
    })
    assert "meta.properties" in log and "version 2" in log, log


def test_handback_refuses_what_kafka_would_not_know(tmp_path):
    """kastle's own topics are not in any Kafka metadata log: the hand-back
    refuses rather than let Kafka start without them."""
    b = Broker(tmp_path / "own", overrides={"node.id": "1"})
    b.start()
    try:
        # the client must outlive the future (a dropped handle fails it with _DESTROY)
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("mine", 1, 1)])["mine"].result(timeout=15)
    finally:
        b.stop()
    before = _tree_digest(b.data_dir)
    p = subprocess.run([str(b.bin), "storage", "kafka-handback", "--log-dir", str(b.data_dir)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "no Apache Kafka metadata log" in p.stderr, p.stderr
    assert _tree_digest(b.data_dir) == before
