"""sarama (Go) against kastle, through the driver in go/main.go built once per
session from Debian's golang-github-shopify-sarama-dev (sarama 1.22) in GOPATH mode.

sarama 1.22 does not negotiate versions: ``config.Version`` picks every request's
version. Its default (V0_8_2_0) speaks Produce v0, which Kafka 4 rejects, so the
tests set V2_1_0_0; at that level and at V0_11_0_0 sarama sends Produce v3 and
Fetch v4 (the highest it knows, and Kafka 4's floors). Round trip, idempotent
producer, gzip/snappy/lz4 (its zstd needs Produce v7, which it never sends), a consumer group (split, commit, resume) and ClusterAdmin;
sarama 1.22 has no transactional producer.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from compat_lib import (CODEC_IDS, assert_one_idempotent_producer, ck_consume, ck_create_topic,
                        ck_produce, make_messages, msgs_to_spec, per_partition_counts,
                        raw_fetch_batches, sarama_records, go_driver_run, unique_topic, verify)

HERE = Path(__file__).resolve().parent
GOPATH = Path("/usr/share/gocode")
SARAMA_SRC = GOPATH / "src" / "github.com" / "Shopify" / "sarama"
MODERN = "2.1.0"   # V2_1_0_0
OLDEST = "0.11.0.0"  # V0_11_0_0: the oldest level whose Produce/Fetch Kafka 4 accepts
PARTITIONS = 3


@pytest.fixture(scope="session")
def sarama_bin(tmp_path_factory):
    go = shutil.which("go")
    if go is None or not SARAMA_SRC.is_dir():
        pytest.skip("sarama tests need Debian's golang-go and golang-github-shopify-sarama-dev "
                    "(bash scripts/test.sh --install-only installs them)")
    out = tmp_path_factory.mktemp("sarama") / "sarama-driver"
    # a per-user build cache: the cgo zstd package takes a while to compile once
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kastle-compat-go"
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), GOCACHE=str(cache), GOFLAGS="")
    p = subprocess.run([go, "build", "-o", str(out), "."], cwd=HERE / "go", env=env,
                       capture_output=True, timeout=600)
    assert p.returncode == 0, f"go build of the sarama driver failed:\n{p.stderr.decode()[-4000:]}"
    return out


def produce(binary, bootstrap, topic, msgs, version=MODERN, **kw):
    spec = {"bootstrap": bootstrap, "version": version, "topic": topic,
            "messages": msgs_to_spec(msgs), **kw}
    lines, _ = go_driver_run(binary, "produce", spec)
    return {a["i"]: (a["p"], a["o"]) for a in lines if a.get("type") == "ack"}


def consume(binary, bootstrap, topic, partitions, counts, version=MODERN, timeout_ms=60_000):
    spec = {"bootstrap": bootstrap, "version": version, "topic": topic, "partitions": partitions,
            "until": {str(p): c for p, c in counts.items()}, "timeoutMs": timeout_ms}
    lines, _ = go_driver_run(binary, "consume", spec)
    return sarama_records(lines)


def assert_acks_contiguous(acks, counts):
    for p, n in counts.items():
        got = sorted(o for (q, o) in acks.values() if q == p)
        assert got == list(range(n)), f"partition {p}: acked offsets {got[:5]}..{got[-5:]} not 0..{n - 1}"


@pytest.mark.compat("sarama", "produce", "fetch")
def test_sarama_roundtrip(broker, sarama_bin):
    topic = unique_topic("sarama")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(3_000, "sarama", PARTITIONS)
    counts = per_partition_counts(msgs)
    assert_acks_contiguous(produce(sarama_bin, broker.bootstrap, topic, msgs), counts)
    verify(consume(sarama_bin, broker.bootstrap, topic, PARTITIONS, counts), msgs)
    # and across clients both ways
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    topic2 = unique_topic("ck-to-sarama")
    ck_create_topic(broker.bootstrap, topic2, PARTITIONS)
    msgs2 = make_messages(1_000, "confluent-kafka", PARTITIONS)
    ck_produce(broker.bootstrap, topic2, msgs2)
    verify(consume(sarama_bin, broker.bootstrap, topic2, PARTITIONS, per_partition_counts(msgs2)), msgs2)


@pytest.mark.compat("sarama", "idempotence")
def test_sarama_idempotent_producer(broker, sarama_bin):
    topic = unique_topic("sarama-idem")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(2_000, "sarama-idem", PARTITIONS)
    counts = per_partition_counts(msgs)
    acks = produce(sarama_bin, broker.bootstrap, topic, msgs, idempotent=True)
    assert_acks_contiguous(acks, counts)
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    assert_one_idempotent_producer(broker.bootstrap, topic, counts, "sarama")


@pytest.mark.compat("sarama", "{codec}")
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4"])
def test_sarama_compression(broker, sarama_bin, codec):
    topic = unique_topic(f"sarama-{codec}")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(500, f"sarama-{codec}", 1)
    produce(sarama_bin, broker.bootstrap, topic, msgs, compression=codec)
    verify(consume(sarama_bin, broker.bootstrap, topic, 1, {0: len(msgs)}), msgs)
    batches = raw_fetch_batches(broker.bootstrap, topic)
    assert batches and all(b.codec == CODEC_IDS[codec] for b in batches), \
        f"stored batches not all {codec}: {[b.codec for b in batches]}"
    assert all(b.crc_ok for b in batches), "a stored batch has a bad CRC"


def test_sarama_zstd_needs_produce_v7(broker, sarama_bin):
    """sarama 1.22 puts zstd batches in Produce v3; Kafka accepts zstd only from
    Produce v7 on (KIP-110) and answers UNSUPPORTED_COMPRESSION_TYPE (76), and so
    must kastle: nothing is stored. (Hence "n/a" for sarama/zstd in COMPATIBILITY.md.)"""
    topic = unique_topic("sarama-zstd")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(20, "sarama-zstd", 1)
    with pytest.raises(AssertionError) as e:
        produce(sarama_bin, broker.bootstrap, topic, msgs, compression="zstd")
    assert "compression" in str(e.value).lower(), e.value
    assert raw_fetch_batches(broker.bootstrap, topic) == []


GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}
GROUP_PARTITIONS = 4
GROUP_N = 400


class Member:
    """One sarama ConsumerGroup member process; its JSON lines go to a file."""

    def __init__(self, binary, bootstrap, topic, group, name, workdir: Path):
        self.name, self.stop_file = name, workdir / f"stop-{name}"
        self.out_path = workdir / f"{name}.out"
        spec_path = workdir / f"{name}.json"
        spec_path.write_text(json.dumps({"bootstrap": bootstrap, "version": MODERN, "topic": topic,
                                         "group": group, "name": name,
                                         "stopFile": str(self.stop_file)}))
        self.err_path = workdir / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([str(binary), "group", str(spec_path)], stdout=out, stderr=err)

    def lines(self):
        text = self.out_path.read_text()
        # the last line may still be incomplete while the member runs
        return [json.loads(ln) for ln in text.splitlines() if ln.endswith("}")]

    def assignment(self):
        assigned = [ln for ln in self.lines() if ln["type"] == "assigned"]
        return (assigned[-1]["generation"], set(assigned[-1]["partitions"] or [])) if assigned else (None, set())

    def values(self):
        return [ln["v"] for ln in self.lines() if ln["type"] == "record"]

    def stop(self):
        self.stop_file.write_text("stop")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        result = [ln for ln in self.lines() if ln["type"] == "result"]
        assert self.proc.returncode == 0 and result and result[-1]["ok"], \
            f"sarama member {self.name} rc={self.proc.returncode} result={result}\n" \
            f"stderr: {self.err_path.read_text()[-2000:]}"


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def produce_values(bootstrap, topic, start, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, value=f"v{i}".encode(), partition=i % GROUP_PARTITIONS)
    assert p.flush(30) == 0


def committed(bootstrap, group, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(GROUP_PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        c.close()


def decoded(values):
    import base64
    return [base64.b64decode(v).decode() for v in values]


@pytest.mark.compat("sarama", "groups")
def test_sarama_consumer_group_split_commit_resume(broker_factory, sarama_bin, tmp_path):
    b = broker_factory(GROUP_OVERRIDES)
    topic, group = unique_topic("sarama-grp"), unique_topic("g")
    ck_create_topic(b.bootstrap, topic, GROUP_PARTITIONS)
    members = [Member(sarama_bin, b.bootstrap, topic, group, f"m{i}", tmp_path) for i in range(2)]
    try:
        def split():
            gens_parts = [m.assignment() for m in members]
            gens = {g for g, _ in gens_parts}
            parts = [p for _, p in gens_parts]
            return (len(gens) == 1 and all(parts) and set().union(*parts) == set(range(GROUP_PARTITIONS))
                    and sum(len(p) for p in parts) == GROUP_PARTITIONS)
        wait_for(split, 60, "two sarama members splitting the partitions")
        produce_values(b.bootstrap, topic, 0, GROUP_N)
        per_part = GROUP_N // GROUP_PARTITIONS
        wait_for(lambda: committed(b.bootstrap, group, topic)
                 == {p: per_part for p in range(GROUP_PARTITIONS)}, 60, "sarama's commits")
    finally:
        for m in members:
            m.stop()
    vals = [v for m in members for v in decoded(m.values())]
    assert sorted(vals) == sorted(f"v{i}" for i in range(GROUP_N)), \
        f"{len(vals)} records, {len(set(vals))} distinct"
    assert all(m.values() for m in members), "both members consumed"

    # a new member of the same group resumes from the commits
    produce_values(b.bootstrap, topic, GROUP_N, GROUP_N)
    late = Member(sarama_bin, b.bootstrap, topic, group, "late", tmp_path)
    try:
        wait_for(lambda: committed(b.bootstrap, group, topic)
                 == {p: 2 * per_part for p in range(GROUP_PARTITIONS)}, 60, "the resumed member's commits")
    finally:
        late.stop()
    assert sorted(decoded(late.values())) == sorted(f"v{i}" for i in range(GROUP_N, 2 * GROUP_N)), \
        "resumed exactly after the committed offsets"


@pytest.mark.compat("sarama", "admin")
def test_sarama_cluster_admin(broker, sarama_bin):
    topic = unique_topic("sarama-adm")
    _, res = go_driver_run(sarama_bin, "admin", {"bootstrap": broker.bootstrap, "version": MODERN,
                                              "topic": topic, "partitions": 2, "newPartitions": 5})
    assert "already exists" in res["createAgain"], res
    assert res["partitionsCreated"] == 2 and res["partitionsGrown"] == 5, res
    assert res["retention.ms"] == "3600000", res  # AlterConfigs v0 took effect
    assert res["cleanup.policy"] == "delete", res
    from compat_lib import ck_admin
    deadline = time.monotonic() + 10
    while topic in ck_admin(broker.bootstrap).list_topics(timeout=5).topics:
        assert time.monotonic() < deadline, "sarama's DeleteTopic did not delete the topic"
        time.sleep(0.1)


@pytest.mark.compat("sarama", "old-versions")
def test_sarama_oldest_versions(recorded_broker, sarama_bin):
    """Versions are asserted from what the relay saw sarama send:
    * V0_11_0_0: Metadata v1, Produce v3, ListOffsets v1, Fetch v4 (Kafka 4's floors
      for Produce and Fetch)
    * V0_10_2_0 ClusterAdmin.DescribeTopics: Metadata v0 (its client's own refresh: v1)
    * V2_1_0_0 for comparison: Metadata v5, still Produce v3 / Fetch v4."""
    b, rec, bootstrap = recorded_broker
    topic = unique_topic("sarama-old")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    msgs = make_messages(600, "sarama-old", PARTITIONS)
    counts = per_partition_counts(msgs)
    produce(sarama_bin, bootstrap, topic, msgs, version=OLDEST)
    verify(consume(sarama_bin, bootstrap, topic, PARTITIONS, counts, version=OLDEST), msgs)
    _, res = go_driver_run(sarama_bin, "admin", {"bootstrap": bootstrap, "version": "0.10.2.0",
                                              "topic": topic, "describeOnly": True})
    assert res["partitions"] == PARTITIONS, res
    seen = rec.summary("compat-sarama")
    print("requests seen:", seen)
    assert rec.versions(0, "compat-sarama") == [3], seen
    assert rec.versions(1, "compat-sarama") == [4], seen
    assert rec.versions(2, "compat-sarama") == [1], seen
    assert rec.versions(3, "compat-sarama-producer") == [1], seen
    assert rec.versions(3, "compat-sarama-admin") == [0, 1], seen
