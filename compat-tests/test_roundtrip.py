"""100k-message produce/consume round trips, one per client, plus cross-client pairs.

Every message's key, value (incl. NULL), headers (incl. empty values) and explicit
CreateTime timestamp must come back intact, exactly once, in per-partition order, at
contiguous offsets starting at 0.
"""
import json
import time
from collections import Counter

import pytest

from compat_lib import (N_MESSAGES, Msg, Rec, ck_admin, ck_consume, ck_create_topic, ck_produce,
                        kcat, kjs_consume, kjs_produce, kp_admin, kp_consume, kp_produce,
                        make_messages, per_partition_counts, scaled, unique_topic, verify)

PARTITIONS = 3


def assert_acks_contiguous(acks, counts):
    """Producer-reported offsets: partition p got exactly offsets 0..counts[p]-1."""
    by_p = {}
    for _, (p, off) in acks.items():
        by_p.setdefault(p, []).append(off)
    for p, n in counts.items():
        got = sorted(by_p.get(p, []))
        assert got == list(range(n)), (
            f"partition {p}: acked offsets not 0..{n - 1}: first {got[:5]} last {got[-5:]} count {len(got)}")


def kcat_records(bootstrap, topic, extra=()):
    p = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q",
             "-X", "enable.partition.eof=true", *extra, timeout=180)
    out = []
    for ln in p.stdout.decode().splitlines():
        if not ln.strip():
            continue
        j = json.loads(ln)
        hs = j.get("headers") or []
        headers = [(hs[k], None if hs[k + 1] is None else hs[k + 1].encode()) for k in range(0, len(hs), 2)]
        out.append(Rec(j["partition"], j["offset"],
                       None if j.get("key") is None else j["key"].encode(),
                       None if j.get("payload") is None else j["payload"].encode(),
                       headers, j.get("ts"), {"create": "create", "logappend": "append"}.get(j.get("tstype"), j.get("tstype"))))
    return out


# ---------------------------------------------------------------------------
# single-client round trips
# ---------------------------------------------------------------------------

@pytest.mark.compat("kafka-python", "produce", "fetch")
def test_kafka_python_roundtrip(broker):
    from kafka import TopicPartition
    topic = unique_topic("kp")
    admin = kp_admin(broker.bootstrap)
    res = admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    assert all(t["error_code"] == 0 for t in res["topics"]), res
    admin.close()

    msgs = make_messages(N_MESSAGES, "kafka-python", PARTITIONS)
    counts = per_partition_counts(msgs)
    acks = kp_produce(broker.bootstrap, topic, msgs)
    assert len(acks) == len(msgs)
    assert_acks_contiguous(acks, counts)

    recs = kp_consume(broker.bootstrap, topic, PARTITIONS, counts)
    verify(recs, msgs)

    from compat_lib import kp_consumer
    c = kp_consumer(broker.bootstrap)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    assert c.end_offsets(tps) == {tp: counts[tp.partition] for tp in tps}
    assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
    c.close()


@pytest.mark.compat("confluent-kafka", "produce", "fetch")
def test_confluent_kafka_roundtrip(broker):
    from confluent_kafka import TopicPartition
    topic = unique_topic("ck")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)

    msgs = make_messages(N_MESSAGES, "confluent-kafka", PARTITIONS)
    counts = per_partition_counts(msgs)
    acks = ck_produce(broker.bootstrap, topic, msgs)
    assert len(acks) == len(msgs)
    assert_acks_contiguous(acks, counts)

    recs = ck_consume(broker.bootstrap, topic, PARTITIONS, counts)
    verify(recs, msgs)

    from compat_lib import ck_consumer
    c = ck_consumer(broker.bootstrap)
    for p in range(PARTITIONS):
        assert c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) == (0, counts[p])
    c.close()


@pytest.mark.compat("kafkajs", "produce", "fetch")
def test_kafkajs_roundtrip(broker):
    topic = unique_topic("kjs")
    msgs = make_messages(N_MESSAGES, "kafkajs", PARTITIONS)
    counts = per_partition_counts(msgs)
    res = kjs_produce(broker.bootstrap, topic, msgs, create_partitions=PARTITIONS)
    assert res["acked"] == len(msgs)
    # ListOffsets + Metadata as seen by kafkajs' admin
    assert sorted((o["partition"], int(o["low"]), int(o["high"])) for o in res["offsets"]) == \
        [(p, 0, counts[p]) for p in range(PARTITIONS)], res["offsets"]
    assert len(res["partitions"]) == PARTITIONS

    recs, cres = kjs_consume(broker.bootstrap, topic, PARTITIONS, counts)
    verify(recs, msgs)


@pytest.mark.compat("kcat", "produce", "fetch")
def test_kcat_roundtrip(broker):
    topic = unique_topic("kcat")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)   # kcat has no admin API
    n = N_MESSAGES
    # kcat cannot set per-message timestamps or headers: it stamps CreateTime=now and
    # sends the same static headers with every message. Keys and values are per line.
    static_headers = [("src", b"kcat"), ("run", topic.encode())]
    msgs = [Msg(i, i % PARTITIONS, f"key-{i}".encode(), f"kcat-value-{i}-".encode() + b"y" * (i % 64),
                static_headers, None) for i in range(n)]
    t0 = int(time.time() * 1000)
    for p in range(PARTITIONS):
        lines = b"".join(m.key + b"\t" + m.value + b"\n" for m in msgs if m.partition == p)
        kcat("-P", "-b", broker.bootstrap, "-t", topic, "-p", str(p), "-K", "\t",
             "-H", "src=kcat", "-H", f"run={topic}", "-X", "acks=all", "-X", "linger.ms=5",
             input_bytes=lines, timeout=180)
    t1 = int(time.time() * 1000)

    recs = kcat_records(broker.bootstrap, topic)

    def idx_of(r):
        try:
            return int(r.value.split(b"-")[2])
        except Exception:  # noqa: BLE001
            return None
    verify(recs, msgs, check_timestamp=False, idx_of=idx_of)
    bad_ts = [r for r in recs if r.ts_type != "create" or not (t0 - 1000 <= r.timestamp <= t1 + 1000)]
    assert not bad_ts, f"{len(bad_ts)} records with timestamps outside [{t0}, {t1}] or not CreateTime: {bad_ts[:3]}"

    # ListOffsets through kcat's query mode: a timestamp before everything -> offset 0
    q = kcat("-Q", "-b", broker.bootstrap, "-t", f"{topic}:1:{t0 - 60_000}").stdout.decode()
    assert f"{topic} [1] offset 0" in q, q


# ---------------------------------------------------------------------------
# cross-client
# ---------------------------------------------------------------------------

def _produce(client, bootstrap, topic, msgs):
    if client == "kafka-python":
        kp_produce(bootstrap, topic, msgs)
    elif client == "confluent-kafka":
        ck_produce(bootstrap, topic, msgs)
    elif client == "kafkajs":
        kjs_produce(bootstrap, topic, msgs)
    else:
        raise ValueError(client)


def _consume(client, bootstrap, topic, counts):
    if client == "kafka-python":
        return kp_consume(bootstrap, topic, PARTITIONS, counts)
    if client == "confluent-kafka":
        return ck_consume(bootstrap, topic, PARTITIONS, counts)
    if client == "kafkajs":
        return kjs_consume(bootstrap, topic, PARTITIONS, counts)[0]
    if client == "kcat":
        return kcat_records(bootstrap, topic)
    raise ValueError(client)


@pytest.mark.compat("{producer}", "produce")
@pytest.mark.compat("{consumer}", "fetch")
@pytest.mark.parametrize("producer,consumer", [
    ("confluent-kafka", "kafka-python"),
    ("kafkajs", "confluent-kafka"),
    ("kafka-python", "kafkajs"),
    ("kafka-python", "kcat"),
])
def test_cross_client(broker, producer, consumer):
    topic = unique_topic("x")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(scaled(20_000), producer, PARTITIONS)
    _produce(producer, broker.bootstrap, topic, msgs)
    recs = _consume(consumer, broker.bootstrap, topic, per_partition_counts(msgs))
    verify(recs, msgs)
