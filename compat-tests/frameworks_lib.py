"""Kafka-side helpers for the JVM framework scenarios (test_kafka_streams.py,
test_kafka_connect.py, test_flink.py, test_spark.py).

Each scenario needs only a bootstrap address, so the same code can run against
kastle or a real Kafka broker. Topics are created and read back here with
confluent-kafka (librdkafka), a client independent of the framework under test.
"""
import time
from collections import Counter, defaultdict
from typing import Dict, List, Optional

import pytest

from compat_lib import API_NAMES, ck_admin, ck_consumer, ck_producer, finalized_features


@pytest.fixture
def framework_broker(broker_factory):
    """(broker, recorder, bootstrap): a fresh broker reached through a
    compat_lib.VersionRecorder that also decodes InitProducerId/EndTxn calls, so a
    scenario can show which broker APIs the framework used."""
    from compat_lib import recorded_broker
    b, rec, bootstrap = recorded_broker(broker_factory, capture_txn=True)
    yield b, rec, bootstrap
    rec.close()


def api_calls(recorder, before: Optional[Counter] = None):
    """{api name: sorted versions} of the requests the framework's clients sent since
    the ``before`` snapshot (``recorder.counts()``); the test's own clients (client
    ids compat-*) are left out."""
    out = {}
    for (client, key, ver), _n in (recorder.counts() - (before or Counter())).items():
        if not client.startswith("compat-"):
            out.setdefault(API_NAMES.get(key, str(key)), set()).add(ver)
    return {k: sorted(v) for k, v in sorted(out.items())}


def assert_apis(calls: dict, *names):
    missing = [n for n in names if n not in calls]
    assert not missing, f"the framework never sent {missing}; it sent {calls}"


def assert_txn_protocol(calls: dict, bootstrap: str, offsets: bool = False):
    """The framework's transactions ran as the broker's finalized transaction.version
    has a Kafka 4.x client run them: at 2 (KIP-890 part 2) partitions and offsets
    join implicitly (Produce v12, TxnOffsetCommit v5, EndTxn v5; no
    AddPartitionsToTxn or AddOffsetsToTxn), below 2 through AddPartitionsToTxn (and
    AddOffsetsToTxn for ``offsets``) with EndTxn up to v4."""
    tv = finalized_features(bootstrap).get("transaction.version", 0)
    assert_apis(calls, "InitProducerId", "EndTxn", "Produce", *(["TxnOffsetCommit"] if offsets else []))
    if tv >= 2:
        assert max(calls["EndTxn"]) >= 5 and max(calls["Produce"]) >= 12, calls
        if offsets:
            assert max(calls["TxnOffsetCommit"]) >= 5, calls
        explicit = [a for a in ("AddPartitionsToTxn", "AddOffsetsToTxn") if a in calls]
        assert not explicit, f"transaction version 2, yet the framework sent {explicit}: {calls}"
    else:
        assert max(calls["EndTxn"]) <= 4, calls
        assert_apis(calls, "AddPartitionsToTxn", *(["AddOffsetsToTxn"] if offsets else []))


def create_topics(bootstrap: str, partitions: Dict[str, int], config: Optional[dict] = None,
                  timeout: float = 15):
    from confluent_kafka.admin import NewTopic
    a = ck_admin(bootstrap)
    futs = a.create_topics([NewTopic(t, num_partitions=n, replication_factor=1, config=config or {})
                            for t, n in partitions.items()],
                           operation_timeout=timeout, request_timeout=timeout)
    for f in futs.values():
        f.result(timeout=timeout)


def topic_config(bootstrap: str, topic: str, timeout: float = 15) -> Dict[str, str]:
    """DescribeConfigs of one topic: {name: value}."""
    from confluent_kafka.admin import ConfigResource
    a = ck_admin(bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = a.describe_configs([res], request_timeout=timeout)[res].result(timeout=timeout)
    return {k: e.value for k, e in entries.items()}


def list_topics(bootstrap: str, timeout: float = 15) -> Dict[str, int]:
    """{topic: partition count} from Metadata."""
    md = ck_admin(bootstrap).list_topics(timeout=timeout)
    return {t: len(m.partitions) for t, m in md.topics.items()}


def produce(bootstrap: str, topic: str, records, timeout: float = 60, **cfg):
    """records: iterable of (partition or None, key bytes or None, value bytes,
    timestamp ms or None). Idempotent producer, acks=all; raises on any failed delivery."""
    p = ck_producer(bootstrap, **{"enable.idempotence": True, "client.id": "compat-fw-producer",
                                  "max.in.flight.requests.per.connection": 5, **cfg})
    errors = []

    def cb(err, _msg):
        if err is not None:
            errors.append(str(err))

    n = 0
    for part, key, value, ts in records:
        kw = {"on_delivery": cb}
        if part is not None:
            kw["partition"] = part
        if ts is not None:
            kw["timestamp"] = ts
        while True:
            try:
                p.produce(topic, value=value, key=key, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        n += 1
    left = p.flush(timeout)
    assert left == 0 and not errors, f"produce to {topic}: {left} undelivered, errors {errors[:5]}"
    return n


class TopicTail:
    """Reads every partition of a topic from offset 0 by assignment (no group),
    with the given isolation level, keeping everything read in order of arrival.
    ``read_until(pred)`` polls until ``pred(self)`` holds; ``read_to_end()`` polls
    until every partition reached its current end (ListOffsets latest with the same
    isolation level: the high watermark, or for read_committed the last stable
    offset)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, isolation: str = "read_committed"):
        from confluent_kafka import TopicPartition
        self.topic, self.partitions = topic, partitions
        self.records = []  # (partition, offset, key, value, timestamp)
        self.by_partition = defaultdict(list)
        self.isolation = isolation
        self.bootstrap = bootstrap
        self.eof = {}  # partition -> offset at which librdkafka last reported EOF
        self.cons = ck_consumer(bootstrap, **{"isolation.level": isolation,
                                              "client.id": f"compat-fw-tail-{isolation}"})
        self.cons.assign([TopicPartition(topic, p, 0) for p in range(partitions)])

    def poll(self, timeout: float = 0.5):
        from confluent_kafka import KafkaError
        for m in self.cons.consume(num_messages=10_000, timeout=timeout):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self.eof[m.partition()] = m.offset()
                    continue
                raise AssertionError(f"reading {self.topic}: {err}")
            rec = (m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1])
            self.records.append(rec)
            self.by_partition[m.partition()].append(rec)
            self.eof.pop(m.partition(), None)

    def read_until(self, pred, timeout: float, what: str, on_wait=None):
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.topic}: no {what} within {timeout:.0f}s "
                                     f"({len(self.records)} records read)")
            if on_wait is not None:
                on_wait()
            self.poll()

    def read_to_end(self, timeout: float = 60):
        """Everything up to each partition's end as of now (see the class doc)."""
        end = list_end_offsets(self.bootstrap, self.topic, self.partitions, self.isolation)
        self.read_until(lambda t: all(t.eof.get(p, -1) >= end[p] for p in range(t.partitions)),
                        timeout, f"end of every partition ({self.isolation} ends {end}, "
                                 f"EOF seen at {self.eof})")
        return self.records

    def close(self):
        self.cons.close()


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str = "read_committed",
             timeout: float = 60) -> List[tuple]:
    """Every record of the topic up to the end of each partition."""
    t = TopicTail(bootstrap, topic, partitions, isolation)
    try:
        return list(t.read_to_end(timeout))
    finally:
        t.close()


def list_end_offsets(bootstrap: str, topic: str, partitions: int,
                     isolation: str = "read_uncommitted") -> Dict[int, int]:
    """ListOffsets latest: the high watermarks, or with read_committed the last
    stable offsets."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import OffsetSpec
    level = {"read_committed": IsolationLevel.READ_COMMITTED,
             "read_uncommitted": IsolationLevel.READ_UNCOMMITTED}[isolation]
    admin = ck_admin(bootstrap)  # must outlive the futures
    futs = admin.list_offsets(
        {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
        isolation_level=level, request_timeout=15)
    return {tp.partition: f.result(timeout=20).offset for tp, f in futs.items()}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> Dict[int, int]:
    from confluent_kafka import TopicPartition
    c = ck_consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
                for p in range(partitions)}
    finally:
        c.close()


def group_offsets(bootstrap: str, group: str, topic: str) -> Dict[int, int]:
    """The group's committed offsets for one topic (OffsetFetch): {partition: offset}."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    admin = ck_admin(bootstrap)  # must outlive the future
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                            request_timeout=15)[group].result(timeout=20)
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic and tp.offset >= 0}


def describe_transaction(bootstrap: str, transactional_id: str) -> dict:
    """DescribeTransactions v0 (raw, flexible) sent to the bootstrap broker, which on a
    single-node cluster is every transaction's coordinator: {error, state,
    producer_id, epoch, timeout_ms, partitions}."""
    import socket
    import struct
    from compat_lib import _uvarint, _uvarint_at
    host, port = bootstrap.rsplit(":", 1)
    cid, client = 13, b"compat-raw"
    tid = transactional_id.encode()
    payload = (struct.pack(">hhih", 65, 0, cid, len(client)) + client + b"\x00"
               + _uvarint(2) + _uvarint(len(tid) + 1) + tid + b"\x00")
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed by the broker"
            buf += chunk
    r = buf[4:]
    assert struct.unpack_from(">i", r)[0] == cid
    _tags, pos = _uvarint_at(r, 4)  # response header v1: no tagged fields expected
    pos += 4  # throttle_time_ms
    _n, pos = _uvarint_at(r, pos)

    def cstring(pos):
        ln, pos = _uvarint_at(r, pos)
        return r[pos:pos + ln - 1].decode(), pos + ln - 1
    (err,) = struct.unpack_from(">h", r, pos)
    _tid, pos = cstring(pos + 2)
    state, pos = cstring(pos)
    timeout, _start, pid, epoch = struct.unpack_from(">iqqh", r, pos)
    pos += 22
    partitions = []
    ntopics, pos = _uvarint_at(r, pos)
    for _ in range(ntopics - 1):
        topic, pos = cstring(pos)
        nparts, pos = _uvarint_at(r, pos)
        for _ in range(nparts - 1):
            partitions.append((topic, struct.unpack_from(">i", r, pos)[0]))
            pos += 4
        _tags, pos = _uvarint_at(r, pos)
    return {"error": err, "state": state, "producer_id": pid, "epoch": epoch,
            "timeout_ms": timeout, "partitions": partitions}
