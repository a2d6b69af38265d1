"""A current IBM/sarama (1.61, Go) against kastle, through the driver in gomod/sarama
built once per session from the Go module in compat-tests/gomod (Debian's sarama
1.22 keeps its own tests in test_sarama.py for the oldest protocol versions).

sarama picks every request's version from ``config.Version`` (here V4_0_0_0) and
lowers it to the broker's maximum. Covered: exact round trip both ways with
confluent-kafka (the versions on the wire checked through a VersionRecorder),
idempotent producer, gzip/snappy/lz4/zstd, a consumer group (split, commit, a
member leaving, resume), the transactional producer (commit/abort with
AddOffsetsToTxn, read_committed), ClusterAdmin, and a V0_11_0_0 pin.
"""
import pytest

from compat_lib import (CODEC_IDS, assert_one_idempotent_producer, ck_consume, ck_create_topic,
                        ck_produce, make_messages, msgs_to_spec, now_ms, per_partition_counts,
                        raw_fetch_batches, unique_topic, verify)
from gomod_lib import (Member, acks, assert_acks_contiguous, build_driver, committed, go_run,
                       produce_values, records, stop_all, wait_for)

PARTITIONS = 3
CLIENT = "compat-sarama161"


@pytest.fixture(scope="session")
def sarama_bin(tmp_path_factory):
    return build_driver(tmp_path_factory, "sarama")


def produce(binary, bootstrap, topic, msgs, **kw):
    lines, _ = go_run(binary, "produce", {"bootstrap": bootstrap, "topic": topic,
                                          "messages": msgs_to_spec(msgs), **kw})
    return acks(lines)


def consume(binary, bootstrap, topic, partitions, until, timeout_ms=60_000, **kw):
    """Read every partition from the oldest offset until it delivered a record at
    offset until[p] - 1."""
    lines, _ = go_run(binary, "consume", {"bootstrap": bootstrap, "topic": topic,
                                          "partitions": partitions,
                                          "until": {str(p): c for p, c in until.items()},
                                          "timeoutMs": timeout_ms, **kw})
    return records(lines)


@pytest.mark.compat("sarama-1.61", "produce", "fetch")
def test_sarama161_roundtrip(recorded_broker, sarama_bin):
    """At V4_0_0_0 sarama 1.61 sends Produce v10, Fetch v12, ListOffsets v6 and
    Metadata v11 (its own table for Kafka 4.0; kastle's maxima are higher, so
    nothing is lowered)."""
    b, rec, bootstrap = recorded_broker
    topic = unique_topic("sarama161")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    msgs = make_messages(3_000, "sarama161", PARTITIONS)
    counts = per_partition_counts(msgs)
    assert_acks_contiguous(produce(sarama_bin, bootstrap, topic, msgs), counts)
    verify(consume(sarama_bin, bootstrap, topic, PARTITIONS, counts), msgs)
    seen = rec.summary(CLIENT)
    print("sarama 1.61 requests:", seen)
    assert rec.versions(0, CLIENT) == [10], seen
    assert rec.versions(1, CLIENT) == [12], seen
    assert rec.versions(2, CLIENT) == [6], seen
    assert rec.versions(3, CLIENT) == [11], seen
    # and across clients both ways
    verify(ck_consume(b.bootstrap, topic, PARTITIONS, counts), msgs)
    topic2 = unique_topic("ck-to-sarama161")
    ck_create_topic(b.bootstrap, topic2, PARTITIONS)
    msgs2 = make_messages(1_000, "confluent-kafka", PARTITIONS)
    ck_produce(b.bootstrap, topic2, msgs2)
    verify(consume(sarama_bin, b.bootstrap, topic2, PARTITIONS, per_partition_counts(msgs2)), msgs2)


@pytest.mark.compat("sarama-1.61", "idempotence")
def test_sarama161_idempotent_producer(broker, sarama_bin):
    topic = unique_topic("sarama161-idem")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(2_000, "sarama161-idem", PARTITIONS)
    counts = per_partition_counts(msgs)
    assert_acks_contiguous(produce(sarama_bin, broker.bootstrap, topic, msgs, idempotent=True), counts)
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    assert_one_idempotent_producer(broker.bootstrap, topic, counts, "sarama 1.61")


@pytest.mark.compat("sarama-1.61", "{codec}")
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_sarama161_compression(broker, sarama_bin, codec):
    topic = unique_topic(f"sarama161-{codec}")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(500, f"sarama161-{codec}", 1)
    produce(sarama_bin, broker.bootstrap, topic, msgs, compression=codec)
    verify(consume(sarama_bin, broker.bootstrap, topic, 1, {0: len(msgs)}), msgs)
    batches = raw_fetch_batches(broker.bootstrap, topic)
    assert batches and all(b.codec == CODEC_IDS[codec] for b in batches), \
        f"stored batches not all {codec}: {[b.codec for b in batches]}"
    assert all(b.crc_ok for b in batches), "a stored batch has a bad CRC"


@pytest.mark.compat("sarama-1.61", "old-versions")
def test_sarama161_pinned_to_kafka_0_11(recorded_broker, sarama_bin):
    """config.Version = V0_11_0_0: Produce v3, Fetch v5, ListOffsets v2, Metadata v4
    on the wire (Kafka 0.11's versions, within Kafka 4's floors)."""
    b, rec, bootstrap = recorded_broker
    topic = unique_topic("sarama161-old")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    msgs = make_messages(600, "sarama161-old", PARTITIONS)
    counts = per_partition_counts(msgs)
    produce(sarama_bin, bootstrap, topic, msgs, version="0.11.0.0")
    verify(consume(sarama_bin, bootstrap, topic, PARTITIONS, counts, version="0.11.0.0"), msgs)
    seen = rec.summary(CLIENT)
    print("sarama 1.61 V0_11_0_0 requests:", seen)
    assert rec.versions(0, CLIENT) == [3], seen
    assert rec.versions(1, CLIENT) == [5], seen
    assert rec.versions(2, CLIENT) == [2], seen
    assert rec.versions(3, CLIENT) == [4], seen


GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000",
                   "offsets.topic.num.partitions": "5"}
GROUP_PARTITIONS = 4
BATCH = 400


@pytest.mark.compat("sarama-1.61", "groups")
def test_sarama161_consumer_group(broker_factory, sarama_bin, tmp_path):
    """Two members split the partitions and commit; one leaves (a rebalance gives
    the other everything, from the commits: nothing twice); a new member of the
    stopped group resumes from the commits."""
    b = broker_factory(GROUP_OVERRIDES)
    topic, group = unique_topic("sarama161-grp"), unique_topic("g")
    ck_create_topic(b.bootstrap, topic, GROUP_PARTITIONS)
    spec = {"bootstrap": b.bootstrap, "topic": topic, "group": group}
    all_parts = set(range(GROUP_PARTITIONS))
    members = [Member(sarama_bin, spec, f"m{i}", tmp_path) for i in range(2)]

    def split(ms):
        def ok():
            gens_parts = [m.assignment() for m in ms]
            parts = [p for _, p in gens_parts]
            return (len({g for g, _ in gens_parts}) == 1 and all(parts)
                    and set().union(*parts) == all_parts and sum(map(len, parts)) == GROUP_PARTITIONS)
        wait_for(ok, 60, f"{[m.name for m in ms]} splitting the partitions")
        return ms[0].assignment()[0]

    def batch(start_at):
        produce_values(b.bootstrap, topic, GROUP_PARTITIONS, start_at, BATCH)
        end = (start_at + BATCH) // GROUP_PARTITIONS
        wait_for(lambda: committed(b.bootstrap, group, topic, GROUP_PARTITIONS)
                 == {p: end for p in all_parts}, 60, "sarama's commits")

    try:
        gen = split(members)
        batch(0)
        members[1].stop()
        assert split(members[:1]) > gen
        batch(BATCH)
    finally:
        stop_all(members)
    vals = [v for m in members for v in m.values()]
    assert sorted(vals) == sorted(f"v{i}" for i in range(2 * BATCH)), \
        f"{len(vals)} records, {len(set(vals))} distinct"
    assert all(m.values() for m in members), "both members consumed"

    produce_values(b.bootstrap, topic, GROUP_PARTITIONS, 2 * BATCH, BATCH)
    late = Member(sarama_bin, spec, "late", tmp_path)
    try:
        wait_for(lambda: committed(b.bootstrap, group, topic, GROUP_PARTITIONS)
                 == {p: 3 * BATCH // GROUP_PARTITIONS for p in all_parts}, 60, "the resumed member's commits")
    finally:
        late.stop()
    assert sorted(late.values()) == sorted(f"v{i}" for i in range(2 * BATCH, 3 * BATCH)), \
        "resumed exactly after the committed offsets"


TXN_OVERRIDES = {"transaction.state.log.num.partitions": "5", "offsets.topic.num.partitions": "5"}


@pytest.mark.compat("sarama-1.61", "transactions")
def test_sarama161_transactions(broker_factory, sarama_bin):
    """Transactions commit, abort, commit (300 messages over 3 partitions each,
    with AddOffsetsToTxn for a group): each transaction's records follow the
    previous marker, read_committed readers (sarama, librdkafka) see exactly the
    committed messages, read_uncommitted all of them, and the group's committed
    offset is the last committed transaction's."""
    b = broker_factory(TXN_OVERRIDES)
    topic, group = unique_topic("sarama161-txn"), unique_topic("sarama161-txn-g")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    base = now_ms() - 3_600_000
    txns = [make_messages(300, "sarama161-txn", PARTITIONS, base_ts=base, start=k * 300) for k in range(3)]
    offsets = [5, 99, 7]
    spec = {"bootstrap": b.bootstrap, "topic": topic, "txnId": unique_topic("sarama161-txid"),
            "txns": [{"commit": k != 1, "messages": msgs_to_spec(m), "group": group,
                      "offsetsTopic": topic, "offsets": {"0": offsets[k]}} for k, m in enumerate(txns)]}
    lines, _ = go_run(sarama_bin, "txn", spec)
    for a in (ln for ln in lines if ln["type"] == "ack"):
        k, i = a["txn"], a["i"]
        assert a["o"] == k * 101 + (i - k * 300) // PARTITIONS, f"offset of txn {k} message {i}: {a}"
    committed_msgs = txns[0] + txns[2]
    last = {p: 3 * 101 - 1 for p in range(PARTITIONS)}  # the last committed record: offset 301
    verify(consume(sarama_bin, b.bootstrap, topic, PARTITIONS, last, readCommitted=True),
           committed_msgs, contiguous_from=None)
    verify(ck_consume(b.bootstrap, topic, PARTITIONS, last, **{"isolation.level": "read_committed"}),
           committed_msgs, contiguous_from=None)
    verify(consume(sarama_bin, b.bootstrap, topic, PARTITIONS, last), txns[0] + txns[1] + txns[2],
           contiguous_from=None)
    assert committed(b.bootstrap, group, topic, 1) == {0: 7}


@pytest.mark.compat("sarama-1.61", "admin")
def test_sarama161_cluster_admin(recorded_broker, sarama_bin):
    """ClusterAdmin against Kafka's answers (error codes: 36 TOPIC_ALREADY_EXISTS,
    40 INVALID_CONFIG, 37 INVALID_PARTITIONS, 1 OFFSET_OUT_OF_RANGE, 3
    UNKNOWN_TOPIC_OR_PARTITION): legacy AlterConfigs replaces the topic's whole
    override set (retention.ms falls back to its default), incremental alter
    changes one key."""
    _, rec, bootstrap = recorded_broker
    topic, group = unique_topic("sarama161-adm"), unique_topic("sarama161-adm-g")
    _, r = go_run(sarama_bin, "admin", {"bootstrap": bootstrap, "topic": topic, "group": group})
    print("sarama 1.61 admin requests:", rec.summary(CLIENT))
    assert r["createAgain"] == 36 and r["partitions"] == 2, r
    assert r["configsCreated"] == {"retention.ms": ["86400000", "Topic"], "cleanup.policy": ["delete", "Default"]}, r
    assert r["configsIncremental"] == {"retention.ms": ["3600000", "Topic"], "cleanup.policy": ["delete", "Default"]}, r
    assert r["alterInvalid"] == 40, r
    assert r["configsReplaced"] == {"retention.ms": ["604800000", "Default"],
                                    "cleanup.policy": ["compact,delete", "Topic"]}, r
    assert r["partitionsGrown"] == 3 and r["shrink"] == 37, r
    three = lambda v: {str(p): v for p in range(3)}  # noqa: E731
    assert r["earliest"] == three(0) and r["latest"] == three(10), r
    assert r["deleteBeyond"] == 1, r
    assert r["earliestAfterDelete"] == {"0": 4, "1": 0, "2": 0}, r
    assert r["groupOffsets"] == {"0": 7, "1": 3, "2": -1}, r
    assert r["groupListed"] is True, r
    assert r["groupDescribed"] == {"err": 0, "state": "Empty", "members": 0}, r
    assert r["groupOffsetsAfterDelete"] == {"0": -1, "1": 3, "2": -1}, r
    assert r["groupListedAfterDelete"] is False, r
    # an unknown group: state Dead, and from DescribeGroups v6 on GROUP_ID_NOT_FOUND (69, KIP-1043)
    (describe_version,) = rec.versions(15, CLIENT)
    assert r["groupDescribedAfterDelete"] == {"err": 69 if describe_version >= 6 else 0, "state": "Dead"}, \
        (describe_version, r)
    assert r["cluster"] == {"brokers": [1], "controller": 1}, r
    assert r["afterDelete"] == 3, r
