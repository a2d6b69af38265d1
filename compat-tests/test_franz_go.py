"""franz-go (kgo + kadm, Go) against kastle, through the driver in gomod/franz built
once per session from the Go module in compat-tests/gomod.

franz-go negotiates every request's version with ApiVersions and uses the highest
version both sides know; the round-trip and admin tests run behind a
VersionRecorder and check, for every request it sent, that this is the version
on the wire. Covered: exact round trip (keys, values, headers, timestamps, NULLs)
both ways with confluent-kafka, the acks=all idempotent producer (franz-go's
default), all four codecs, pinned old versions (v0.11.0), consumer groups with
the cooperative-sticky and range balancers (members joining and leaving, commit
and resume), transactions (commit/abort with read_committed, and a
GroupTransactSession consume-transform-produce with deliberate aborts) and kadm.
"""
import time

import pytest

from compat_lib import (API_NAMES, CODEC_IDS, assert_one_idempotent_producer, ck_consume,
                        ck_create_topic, ck_produce, finalized_features, make_messages, msgs_to_spec, now_ms,
                        per_partition_counts, raw_fetch_batches, unique_topic, verify)
from gomod_lib import (Member, acks, assert_acks_contiguous, build_driver, committed, go_run,
                       produce_values, records, stop_all, wait_for)

PARTITIONS = 3
CLIENT = "compat-franz"


@pytest.fixture(scope="session")
def franz_bin(tmp_path_factory):
    return build_driver(tmp_path_factory, "franz")


def produce(binary, bootstrap, topic, msgs, **kw):
    lines, res = go_run(binary, "produce", {"bootstrap": bootstrap, "topic": topic,
                                            "messages": msgs_to_spec(msgs), **kw})
    return lines, res


def consume(binary, bootstrap, topic, partitions, until, timeout_ms=60_000, **kw):
    """Read every partition from offset 0 until it delivered a record at offset
    until[p] - 1 (no group)."""
    lines, _ = go_run(binary, "consume", {"bootstrap": bootstrap, "topic": topic,
                                          "partitions": partitions,
                                          "until": {str(p): c for p, c in until.items()},
                                          "timeoutMs": timeout_ms, **kw})
    return records(lines)


# AddPartitionsToTxn v4+ is the brokers' batched form (KIP-890); clients stop at v3.
CLIENT_CAPS = {24: 3}
# With transaction.version below 2 finalized (a directory kastle formatted before
# the level was recorded, or pinned at 1), franz-go keeps a
# transactional producer on the versions before KIP-890 part 2 (kgo's
# supportsKIP890p2): Produce v11 for transactional batches (others still go at
# the common maximum), EndTxn v4, TxnOffsetCommit v4.
TV1_CAPS = {0: 11, 26: 4, 28: 4}


def assert_highest_versions(rec, table, prefix=CLIENT):
    """Every request franz-go sent (as seen by the relay) used min(client max,
    broker max), the highest version both know; ApiVersions itself may first go
    out at the client's max, which the broker answers with its own range
    (KIP-511), before the retry at the common version. Returns {api: versions}."""
    seen = {}
    with rec._lock:
        items = list(rec.seen)
    for client, key, ver in items:
        if client.startswith(prefix):
            seen.setdefault(key, set()).add(ver)
    assert seen, "the relay saw no franz-go request"
    wrong = {}
    for key, vers in sorted(seen.items()):
        cmax, _bmin, bmax = table[str(key)]
        want = {min(cmax, bmax, CLIENT_CAPS.get(key, cmax))}
        if key == 18 and vers == want | {cmax}:
            continue
        if key in TV1_CAPS and vers <= want | {min(TV1_CAPS[key], *want)}:
            continue
        if vers != want:
            wrong[API_NAMES.get(key, key)] = (sorted(vers), f"client max {cmax}, broker max {bmax}")
    assert not wrong, f"franz-go did not send the highest common version: {wrong}"
    return {API_NAMES.get(k, k): sorted(v) for k, v in sorted(seen.items())}


# ---------------------------------------------------------------------------
# produce / fetch / idempotence / codecs / old versions
# ---------------------------------------------------------------------------

@pytest.mark.compat("franz-go", "produce", "fetch")
def test_franz_roundtrip_at_highest_versions(recorded_broker, franz_bin):
    b, rec, bootstrap = recorded_broker
    topic = unique_topic("franz")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    msgs = make_messages(3_000, "franz", PARTITIONS)
    counts = per_partition_counts(msgs)
    lines, res = produce(franz_bin, bootstrap, topic, msgs, reportVersions=True)
    assert_acks_contiguous(acks(lines), counts)
    got = consume(franz_bin, bootstrap, topic, PARTITIONS, counts)
    verify(got, msgs)
    assert {r.ts_type for r in got} == {"create"}
    seen = assert_highest_versions(rec, res["versions"])
    print("franz-go request versions:", seen)
    # and across clients both ways
    verify(ck_consume(b.bootstrap, topic, PARTITIONS, counts), msgs)
    topic2 = unique_topic("ck-to-franz")
    ck_create_topic(b.bootstrap, topic2, PARTITIONS)
    msgs2 = make_messages(1_000, "confluent-kafka", PARTITIONS)
    ck_produce(b.bootstrap, topic2, msgs2)
    verify(consume(franz_bin, b.bootstrap, topic2, PARTITIONS, per_partition_counts(msgs2)), msgs2)


@pytest.mark.compat("franz-go", "idempotence")
def test_franz_default_producer_is_idempotent(broker, franz_bin):
    """franz-go's defaults are acks=all and idempotence: one producer id (epoch 0)
    for the whole run, and the broker's producer state agrees."""
    topic = unique_topic("franz-idem")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(2_000, "franz-idem", PARTITIONS)
    counts = per_partition_counts(msgs)
    lines, res = produce(franz_bin, broker.bootstrap, topic, msgs)
    assert_acks_contiguous(acks(lines), counts)
    assert len(res["producers"]) == 1 and res["producers"][0].endswith("/0"), res["producers"]
    assert int(res["producers"][0].split("/")[0]) >= 0, res["producers"]
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    assert_one_idempotent_producer(broker.bootstrap, topic, counts, "franz-go")
    # with idempotence disabled the records carry no producer id
    topic2 = unique_topic("franz-plain")
    ck_create_topic(broker.bootstrap, topic2, 1)
    _, res = produce(franz_bin, broker.bootstrap, topic2, make_messages(50, "franz-plain", 1),
                     notIdempotent=True)
    assert res["producers"] == ["-1/-1"], res["producers"]


@pytest.mark.compat("franz-go", "{codec}")
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_franz_compression(broker, franz_bin, codec):
    topic = unique_topic(f"franz-{codec}")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(500, f"franz-{codec}", 1)
    produce(franz_bin, broker.bootstrap, topic, msgs, compression=codec)
    verify(consume(franz_bin, broker.bootstrap, topic, 1, {0: len(msgs)}), msgs)
    batches = raw_fetch_batches(broker.bootstrap, topic)
    assert batches and all(b.codec == CODEC_IDS[codec] for b in batches), \
        f"stored batches not all {codec}: {[b.codec for b in batches]}"
    assert all(b.crc_ok for b in batches), "a stored batch has a bad CRC"


@pytest.mark.compat("franz-go", "old-versions")
def test_franz_pinned_to_kafka_0_11(recorded_broker, franz_bin):
    """kgo.MaxVersions(kversion.V0_11_0()): Produce v3, Fetch v5, Metadata v4 (Kafka
    0.11's versions, all still within Kafka 4's floors) on the wire, round trip intact."""
    b, rec, bootstrap = recorded_broker
    topic = unique_topic("franz-old")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    msgs = make_messages(600, "franz-old", PARTITIONS)
    counts = per_partition_counts(msgs)
    _, res = produce(franz_bin, bootstrap, topic, msgs, maxVersions="v0.11.0", reportVersions=True)
    verify(consume(franz_bin, bootstrap, topic, PARTITIONS, counts, maxVersions="v0.11.0"), msgs)
    seen = assert_highest_versions(rec, res["versions"])
    print("franz-go v0.11.0 request versions:", seen)
    assert rec.versions(0, CLIENT) == [3], seen
    assert rec.versions(1, CLIENT) == [5], seen
    assert rec.versions(3, CLIENT) == [4], seen


# ---------------------------------------------------------------------------
# consumer groups
# ---------------------------------------------------------------------------

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000",
                   "offsets.topic.num.partitions": "5"}
GROUP_PARTITIONS = 6
BATCH = 300


@pytest.mark.compat("franz-go", "groups")
@pytest.mark.parametrize("balancer", ["cooperative-sticky", "range"])
def test_franz_group_rebalance_commit_resume(broker_factory, franz_bin, tmp_path, balancer):
    """Two members split 6 partitions; a third joins and one leaves (each a
    rebalance: one new generation, every partition owned by exactly one member);
    every value is consumed exactly once because members commit before giving
    partitions up; a new member of the stopped group resumes from the commits.
    Cooperative-sticky moves only the partitions that change owner (members keep
    theirs, no revocation of kept partitions); range (eager) revokes everything
    at each rebalance."""
    b = broker_factory(GROUP_OVERRIDES)
    topic, group = unique_topic("franz-grp"), unique_topic("g")
    ck_create_topic(b.bootstrap, topic, GROUP_PARTITIONS)
    spec = {"bootstrap": b.bootstrap, "topic": topic, "group": group, "balancer": balancer}
    members = []
    all_parts = set(range(GROUP_PARTITIONS))

    def start(name):
        m = Member(franz_bin, spec, name, tmp_path)
        members.append(m)
        return m

    def split(ms):
        def ok():
            gens_parts = [m.assignment() for m in ms]
            parts = [p for _, p in gens_parts]
            return (len({g for g, _ in gens_parts}) == 1 and all(parts)
                    and set().union(*parts) == all_parts and sum(map(len, parts)) == GROUP_PARTITIONS)
        wait_for(ok, 60, f"{[m.name for m in ms]} splitting the partitions")
        return {m.name: m.assignment() for m in ms}

    def batch(ms, start_at):
        produce_values(b.bootstrap, topic, GROUP_PARTITIONS, start_at, BATCH)
        end = (start_at + BATCH) // GROUP_PARTITIONS
        wait_for(lambda: committed(b.bootstrap, group, topic, GROUP_PARTITIONS)
                 == {p: end for p in all_parts}, 60, "the members' commits")

    try:
        a, c = start("a"), start("b")
        before = split([a, c])
        batch([a, c], 0)
        seen_before = {m.name: len(m.events("revoked")) for m in (a, c)}
        d = start("c")
        after = split([a, c, d])
        gen2 = after["a"][0]
        assert gen2 > before["a"][0], (before, after)
        for m in (a, c):
            revoked = {p for ev in m.events("revoked")[seen_before[m.name]:] for p in ev["changed"] or []}
            if balancer == "cooperative-sticky":
                # kept partitions were never revoked: only the moved ones were
                assert after[m.name][1] <= before[m.name][1], f"{m.name} gained partitions: {before} -> {after}"
                assert revoked == before[m.name][1] - after[m.name][1], (m.name, revoked, before, after)
            else:
                assert revoked == before[m.name][1], (m.name, revoked, before)
        batch([a, c, d], BATCH)
        c.stop()
        final = split([a, d])
        assert final["a"][0] > gen2, final
        batch([a, d], 2 * BATCH)
    finally:
        stop_all(members)
    vals = [v for m in members for v in m.values()]
    assert sorted(vals) == sorted(f"v{i}" for i in range(3 * BATCH)), \
        f"{len(vals)} records consumed, {len(set(vals))} distinct, want {3 * BATCH}"
    assert all(m.values() for m in members), "every member consumed"

    # the stopped group resumes from its commits
    produce_values(b.bootstrap, topic, GROUP_PARTITIONS, 3 * BATCH, BATCH)
    late = Member(franz_bin, spec, "late", tmp_path)
    try:
        wait_for(lambda: committed(b.bootstrap, group, topic, GROUP_PARTITIONS)
                 == {p: 4 * BATCH // GROUP_PARTITIONS for p in all_parts}, 60, "the resumed member's commits")
    finally:
        late.stop()
    assert sorted(late.values()) == sorted(f"v{i}" for i in range(3 * BATCH, 4 * BATCH)), \
        "resumed exactly after the committed offsets"


# ---------------------------------------------------------------------------
# transactions
# ---------------------------------------------------------------------------

TXN_OVERRIDES = {"transaction.state.log.num.partitions": "5", "offsets.topic.num.partitions": "5",
                 "group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}


@pytest.mark.compat("franz-go", "transactions")
def test_franz_transactions_commit_abort_isolation(broker_factory, franz_bin):
    """Three transactions (commit, abort, commit) of 300 messages over 3 partitions:
    each transaction's records follow the previous one's marker (one offset per
    control record), read_committed readers (franz-go and librdkafka) see exactly
    the committed messages with all their fields, read_uncommitted sees all."""
    b = broker_factory(TXN_OVERRIDES)
    topic = unique_topic("franz-txn")
    ck_create_topic(b.bootstrap, topic, PARTITIONS)
    base = now_ms() - 3_600_000
    txns = [make_messages(300, "franz-txn", PARTITIONS, base_ts=base, start=k * 300) for k in range(3)]
    spec = {"bootstrap": b.bootstrap, "topic": topic, "txnId": unique_topic("franz-txid"),
            "txns": [{"commit": k != 1, "messages": msgs_to_spec(m)} for k, m in enumerate(txns)]}
    lines, _ = go_run(franz_bin, "txn", spec)
    # transaction version 2 (KIP-890 part 2): every EndTxn bumps the epoch
    tv2 = finalized_features(b.bootstrap).get("transaction.version", 0) >= 2
    for a in (ln for ln in lines if ln["type"] == "ack"):
        k, i, p = a["txn"], a["i"], a["p"]
        assert a["o"] == k * 101 + (i - k * 300) // PARTITIONS, f"offset of txn {k} message {i}: {a}"
        assert a["epoch"] == (k if tv2 else 0) and a["pid"] >= 0, a
    committed_msgs = txns[0] + txns[2]
    last = {p: 3 * 101 - 1 for p in range(PARTITIONS)}  # the last committed record: offset 301
    rc = consume(franz_bin, b.bootstrap, topic, PARTITIONS, last, readCommitted=True)
    verify(rc, committed_msgs, contiguous_from=None)
    verify(ck_consume(b.bootstrap, topic, PARTITIONS, last, **{"isolation.level": "read_committed"}),
           committed_msgs, contiguous_from=None)
    verify(consume(franz_bin, b.bootstrap, topic, PARTITIONS, last), txns[0] + txns[1] + txns[2],
           contiguous_from=None)


@pytest.mark.compat("franz-go", "transactions")
def test_franz_group_transact_session_exactly_once(broker_factory, franz_bin):
    """kgo.GroupTransactSession consume-transform-produce over 3,000 records with
    every third transaction aborted on purpose: read_committed sees each input
    record exactly once in the output (in input order per partition), the aborted
    transactions' records are in the log (read_uncommitted) but invisible to
    read_committed, and the group's committed offsets are the input's end."""
    b = broker_factory(TXN_OVERRIDES)
    src, dst = unique_topic("franz-etl-in"), unique_topic("franz-etl-out")
    ck_create_topic(b.bootstrap, src, PARTITIONS)
    ck_create_topic(b.bootstrap, dst, PARTITIONS)
    n = 3_000
    produce_values(b.bootstrap, src, PARTITIONS, 0, n)
    end = {p: n // PARTITIONS for p in range(PARTITIONS)}
    group = unique_topic("franz-etl")
    lines, res = go_run(franz_bin, "etl", {"bootstrap": b.bootstrap, "input": src, "output": dst,
                                           "group": group, "txnId": unique_topic("franz-etl-tx"),
                                           "until": {str(p): o for p, o in end.items()},
                                           "abortEvery": 3, "timeoutMs": 120_000})
    txn_lines = [ln for ln in lines if ln["type"] == "txn"]
    assert not [ln for ln in lines if ln["type"] == "produce-error"], lines[:5]
    aborted = sum(t["records"] for t in txn_lines if not t["committed"])
    assert res["aborts"] >= 1 and aborted > 0, res
    assert all(t["committed"] == t["wantCommit"] for t in txn_lines), \
        f"a transaction meant to commit was aborted: {[t for t in txn_lines if t['committed'] != t['wantCommit']]}"

    rc = ck_consume(b.bootstrap, dst, PARTITIONS, None, **{"isolation.level": "read_committed"})
    by_part = {}
    for r in rc:
        by_part.setdefault(r.partition, []).append(r)
    for p in range(PARTITIONS):
        got = [(int(r.key), r.value.decode()) for r in by_part.get(p, [])]
        want = [(o, f"o:v{o * PARTITIONS + p}") for o in range(end[p])]
        assert got == want, f"output partition {p}: {len(got)} records, first wrong: " + \
            str(next(((g, w) for g, w in zip(got, want) if g != w), None))
    ru = ck_consume(b.bootstrap, dst, PARTITIONS, None, **{"isolation.level": "read_uncommitted"})
    assert len(ru) == n + aborted, f"read_uncommitted: {len(ru)} records, want {n} committed + {aborted} aborted"
    assert committed(b.bootstrap, group, src, PARTITIONS) == end


# ---------------------------------------------------------------------------
# kadm
# ---------------------------------------------------------------------------

@pytest.mark.compat("franz-go", "admin")
def test_franz_kadm(recorded_broker, franz_bin):
    """kadm against Kafka's answers: topics (create, TOPIC_ALREADY_EXISTS, ids),
    configs (describe with sources, incremental set/delete back to the default,
    INVALID_CONFIG; a keyless record on the now compacted topic is INVALID_RECORD), partitions (grow; shrinking is INVALID_PARTITIONS), list
    offsets (start, end, by timestamp, max timestamp), delete records (and
    OFFSET_OUT_OF_RANGE beyond the high watermark), groups (describe a live member,
    offsets, lag, Empty after it leaves, delete offsets, delete group, then
    GROUP_ID_NOT_FOUND), describe
    producers, describe/list transactions (ongoing, then committed), delete topic;
    every request at the highest version both sides know."""
    b, rec, bootstrap = recorded_broker
    topic, group, txn_id = unique_topic("franz-adm"), unique_topic("franz-adm-g"), unique_topic("franz-adm-tx")
    base = now_ms() - 3_600_000
    _, r = go_run(franz_bin, "admin", {"bootstrap": bootstrap, "topic": topic, "group": group,
                                       "txnId": txn_id, "baseTs": base})
    assert r["created"] == {"partitions": 2, "rf": 1}, r
    assert r["createAgain"] == "TOPIC_ALREADY_EXISTS", r
    assert r["partitions"] == 2 and r["topicIdMatches"], r
    assert r["configsCreated"] == {"retention.ms": ["86400000", "DYNAMIC_TOPIC_CONFIG"],
                                   "cleanup.policy": ["delete", "DEFAULT_CONFIG"]}, r
    assert r["configsAltered"] == {"retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"],
                                   "cleanup.policy": ["compact,delete", "DYNAMIC_TOPIC_CONFIG"]}, r
    assert r["configsReverted"]["retention.ms"] == ["604800000", "DEFAULT_CONFIG"], r
    assert r["alterInvalid"] == "INVALID_CONFIG", r
    assert r["partitionsGrown"] == 3 and r["shrink"] == "INVALID_PARTITIONS", r
    assert r["keylessOnCompacted"] == "INVALID_RECORD", r  # cleanup.policy=compact,delete

    three = lambda v: {str(p): v for p in range(3)}  # noqa: E731
    assert r["offsets"] == {"start": three(0), "end": three(10), "after5": three(5), "maxTs": three(9)}, r
    pid = r["producerId"]
    assert r["producers"] == {str(p): [{"pid": pid, "epoch": 0, "lastSeq": 9, "coordEpoch": -1, "txnStart": -1}]
                              for p in range(3)}, r
    assert r["deleteRecords"] == {"err": "", "lowWatermark": 4}, r
    assert r["deleteBeyond"] == "OFFSET_OUT_OF_RANGE", r
    assert r["startAfterDelete"] == {"0": 4, "1": 0, "2": 0}, r

    assert r["groupLive"] == {"state": "Stable", "protocolType": "consumer", "protocol": "cooperative-sticky",
                              "members": [{"clientId": "compat-franz-admin-member", "partitions": [0, 1, 2]}]}, r
    assert r["groupOffsets"] == three(10) and r["groupLag"] == 0, r
    assert r["groupLeft"] == {"state": "Empty", "protocolType": "consumer", "protocol": "", "members": []}, r
    assert r["groupListed"] == "consumer/Empty", r
    assert r["deleteOffsets"] == "" and r["groupOffsetsAfterDelete"] == {"1": 10, "2": 10}, r
    assert r["deleteGroup"] == "" and r["groupListedAfterDelete"] == "", r
    # DescribeGroups v6 (KIP-1043): an unknown group is GROUP_ID_NOT_FOUND, state Dead
    assert r["groupDescribedAfterDelete"] == "GROUP_ID_NOT_FOUND/Dead", r

    tpid, tepoch = r["txnProducer"]
    assert r["txnOngoing"] == {"state": "Ongoing", "pid": tpid, "epoch": tepoch, "timeoutMs": 30_000,
                               "partitions": [2]}, r
    assert r["txnListedOngoing"] == f"Ongoing/{tpid}", r
    in_txn = {p["pid"]: p for p in r["producersInTxn"]["2"]}
    assert set(in_txn) == {pid, tpid}, r
    assert in_txn[tpid]["txnStart"] == 10 and in_txn[tpid]["lastSeq"] == 2, r
    # transaction version 2 (KIP-890 part 2): the commit bumped the epoch
    tv2 = finalized_features(bootstrap).get("transaction.version", 0) >= 2
    assert r["txnCommitted"] == {"state": "CompleteCommit", "pid": tpid, "epoch": tepoch + tv2,
                                 "timeoutMs": 30_000,
                                 "partitions": None}, r
    assert r["txnListedCommitted"] == f"CompleteCommit/{tpid}" and r["txnListedAborting"] == "", r
    assert r["afterDelete"] == "UNKNOWN_TOPIC_OR_PARTITION", r

    seen = assert_highest_versions(rec, r["versions"])
    print("franz-go kadm request versions:", seen)
