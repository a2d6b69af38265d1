"""Apache Kafka's data volumes taken over as they are, and handed back (issue 20).

The real Kafka 4.4 (``kafka_oracle.RealKafka``: one KRaft node, broker and
controller) writes a topic with several partitions and a config override, a
deleted topic, records, a committed group offset and a committed and an
aborted transaction, and is killed (-9). kastle then starts on the very same
directory: a real client sees the same cluster id, topic ids, partition
counts, configs, records and committed offset, and read_committed hides the
aborted records; Kafka's metadata log is left byte for byte as it was.
kastle changes things (a new topic, a config, records, an aborted
transaction of its own, a group commit) and stops; `kastle storage
kafka-handback` writes kastle's state as a KRaft snapshot and Kafka's
per-segment `.txnindex` files, and removes kastle's own files. Kafka 4.4
started on the directory again sees all of it (topic ids and configs,
records, the committed offset, read_committed hiding both aborted
transactions) and serves new idempotent and transactional producers. kastle
started after Kafka ran imports Kafka's metadata anew.

A directory kastle created from scratch is handed back too (the KRaft voter
named with `--controller`, refused without it) and Kafka serves it.

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
RETENTION2 = "987654321"
NEW = "vol-new"


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


def _describe(bootstrap, names=(TOPIC, GONE)):
    """(cluster id, {topic: (topic id, partition count)}, retention.ms of TOPIC)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cluster = _retry(lambda: admin.describe_cluster().result(timeout=15))
    from confluent_kafka import TopicCollection
    topics = {}
    for name in names:
        f = admin.describe_topics(TopicCollection([name]))[name]
        try:
            d = f.result(timeout=15)
            topics[name] = (str(d.topic_id), len(d.partitions))
        except Exception:
            topics[name] = None
    res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC)
    cfg = admin.describe_configs([res])[res].result(timeout=15)
    return cluster.cluster_id, topics, cfg["retention.ms"].value


def _values(bootstrap, isolation, topic=TOPIC, partitions=PARTITIONS):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "isolation.level": isolation})
    ends = {}
    for p in range(partitions):
        _, hi = _retry(lambda: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15))
        ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, deadline = [], time.monotonic() + 20
    done = set()
    while len(done) < partitions and time.monotonic() < deadline:
        m = c.poll(0.5)
        for p in range(partitions):
            pos = c.position([TopicPartition(topic, p)])[0].offset
            if pos >= ends[p] or (pos >= 0 and ends[p] == 0):
                done.add(p)
        if m is None or m.error():
            continue
        out.append(m.value().decode())
    c.close()
    return sorted(out)


def _committed(bootstrap, partition, topic=TOPIC):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(topic, partition)], timeout=15)[0].offset
    finally:
        c.close()


def _commit(bootstrap, partition, offset, topic=TOPIC):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        _retry(lambda: c.commit(offsets=[TopicPartition(topic, partition, offset)],
                                asynchronous=False))
    finally:
        c.close()


def _produce(bootstrap, values, topic=TOPIC, partitions=PARTITIONS):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), partition=i % partitions)
    assert p.flush(20) == 0


def _transaction(bootstrap, txn_id, value, partition, commit):
    tp = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    tp.init_transactions(30)
    tp.begin_transaction()
    tp.produce(TOPIC, value=value, partition=partition)
    tp.flush(10)
    if commit:
        tp.commit_transaction(30)
    else:
        tp.abort_transaction(30)


def _until_committed(bootstrap, value, timeout=20.0):
    """Waits until a read_committed consumer sees `value`; fails with what it saw last."""
    deadline = time.monotonic() + timeout
    while True:
        seen = _values(bootstrap, "read_committed")
        if value in seen:
            return
        assert time.monotonic() < deadline, f"{value!r} never committed: {seen}"
        time.sleep(0.5)


def _handback(bin_path, data_dir, *extra):
    return subprocess.run([str(bin_path), "storage", "kafka-handback", "--log-dir", str(data_dir),
                           "--node-id", "1", *extra], capture_output=True, text=True, timeout=30)


def _kastle_files(data_dir: Path):
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                  if p.name.startswith("__kastle") or p.name == "aborted-transactions.txnindex")


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
        # kastle's own changes: a topic, a config, transactions, a commit.
        admin = AdminClient({"bootstrap.servers": kastle.bootstrap})
        admin.create_topics([NewTopic(NEW, 2, 1, config={"cleanup.policy": "compact"})])[NEW] \
            .result(timeout=15)
        res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, set_config={"retention.ms": RETENTION2})
        admin.alter_configs([res])[res].result(timeout=15)
        p = Producer({"bootstrap.servers": kastle.bootstrap, "enable.idempotence": True})
        for i in range(4):
            p.produce(NEW, key=f"key{i}".encode(), value=f"n{i}".encode(), partition=i % 2)
        assert p.flush(20) == 0
        _transaction(kastle.bootstrap, "vol-tx", b"kastle-committed", 0, True)
        _transaction(kastle.bootstrap, "vol-tx", b"kastle-aborted", 2, False)
        _commit(kastle.bootstrap, 0, 2, NEW)
        seen_by_kastle = _describe(kastle.bootstrap, (TOPIC, GONE, NEW))
        assert seen_by_kastle[2] == RETENTION2 and seen_by_kastle[1][NEW][1] == 2
    finally:
        kastle.stop()
    assert _tree_digest(k.data_dir, "__cluster_metadata-0") == metadata_before

    # Back to Kafka: kastle's state as a KRaft snapshot, kastle's files gone.
    p = _handback(kastle.bin, k.data_dir)
    assert p.returncode == 0, p.stderr
    assert _kastle_files(k.data_dir) == []
    assert list((k.data_dir / "__cluster_metadata-0").glob("*.checkpoint.tmp")) == []
    again = _handback(kastle.bin, k.data_dir)
    assert again.returncode == 0 and "no kastle state" in again.stdout, again.stderr
    expected += [f"k{i}" for i in range(6)] + ["kastle-committed"]
    k.start()
    try:
        assert _retry(lambda: _describe(k.bootstrap, (TOPIC, GONE, NEW))) == seen_by_kastle
        assert _values(k.bootstrap, "read_committed") == sorted(expected)
        uncommitted = _values(k.bootstrap, "read_uncommitted")
        assert "aborted" in uncommitted and "kastle-aborted" in uncommitted
        assert _values(k.bootstrap, "read_committed", NEW, 2) == ["n0", "n1", "n2", "n3"]
        assert _retry(lambda: _committed(k.bootstrap, 1)) == 11
        assert _retry(lambda: _committed(k.bootstrap, 0, NEW)) == 2
        # Kafka's own producers carry on (producer ids above kastle's).
        _produce(k.bootstrap, ["after0", "after1"])
        _transaction(k.bootstrap, "vol-tx", b"kafka-again", 2, True)
        # Kafka answers EndTxn once PrepareCommit is written and writes the markers after,
        # so the last stable offset may still sit below the record for a moment.
        _until_committed(k.bootstrap, "kafka-again")
    finally:
        if k.proc is not None:
            _kill_kafka(k)

    # kastle after Kafka ran again: Kafka's metadata is imported anew.
    kastle.start()
    try:
        assert _retry(lambda: _describe(kastle.bootstrap, (TOPIC, GONE, NEW))) == seen_by_kastle
        assert "kafka-again" in _values(kastle.bootstrap, "read_committed")
        # kastle's markers for the producer Kafka last used are not fenced
        # by the coordinator epoch Kafka's markers carry.
        _transaction(kastle.bootstrap, "vol-tx", b"kastle-again", 2, True)
        _until_committed(kastle.bootstrap, "kastle-again")
    finally:
        kastle.stop()
    assert "imported Apache Kafka's metadata" in kastle.log_path.read_text(errors="replace")


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


def test_a_directory_kastle_created_is_handed_to_kafka(tmp_path):
    """No Kafka metadata log at all: the hand-back writes one Kafka starts
    on, its single voter named with --controller (refused without)."""
    jvm_lib.jvm_module(MODULE)
    b = Broker(tmp_path / "own", overrides={"node.id": "1"})
    b.start()
    try:
        # the client must outlive the future (a dropped handle fails it with _DESTROY)
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1, config={"retention.ms": RETENTION})])[
            TOPIC].result(timeout=15)
        _produce(b.bootstrap, [f"m{i}" for i in range(9)])
        _transaction(b.bootstrap, "own-tx", b"own-aborted", 1, False)
        _commit(b.bootstrap, 2, 3)
        seen = _describe(b.bootstrap, (TOPIC,))
    finally:
        b.stop()
    before = _tree_digest(b.data_dir)
    p = _handback(b.bin, b.data_dir)
    assert p.returncode == 1 and "--controller" in p.stderr, p.stderr
    assert _tree_digest(b.data_dir) == before

    k = RealKafka(tmp_path / "own")
    p = _handback(b.bin, b.data_dir, "--controller", f"CONTROLLER://127.0.0.1:{k.controller_port}")
    assert p.returncode == 0, p.stderr
    assert _kastle_files(b.data_dir) == []
    # formatted already (kastle's meta.properties): Kafka only needs its config
    k.config_path.write_text("".join(f"{n}={v}\n" for n, v in k.properties().items()))
    k.start()
    try:
        assert _retry(lambda: _describe(k.bootstrap, (TOPIC,))) == seen
        assert _values(k.bootstrap, "read_committed") == sorted(f"m{i}" for i in range(9))
        assert "own-aborted" in _values(k.bootstrap, "read_uncommitted")
        assert _retry(lambda: _committed(k.bootstrap, 2)) == 3
        _transaction(k.bootstrap, "own-tx", b"kafka-tx", 0, True)
    finally:
        if k.proc is not None:
            _kill_kafka(k)
