"""Kafka Streams 4.x (exactly_once_v2, RocksDB state) against the broker.

The driver (jvm/kafka-streams, WordCount) counts words into a RocksDB store with
record caching off, so each input word yields one output record holding the
word's new count. It is SIGKILLed mid-stream twice: restarted once on the same
state dir (same process id, so the same transactional id fences the dead
producer) and once on a wiped state dir (a new transactional id: the dead
one's open transaction must be aborted by the broker's transaction timeout, and
the store is restored from its compacted changelog). Read with read_committed,
every word's output must then be exactly 1, 2, ..., n: a duplicate, a gap or a
count that starts over is a broken exactly-once or restore path.

``streams_eos_scenario`` takes only a bootstrap address, so it runs against any
broker (kastle here; a real Kafka fixture later), at transaction version 2 (a new
directory's default) and, pinned by the operator, at version 1.

``test_streams_protocol_handover`` runs the same word count with
``group.protocol=streams`` (KIP-1071: the broker assigns the tasks): two
instances share the work, one is closed, its tasks move to the other, and the
exactly-once counts stay 1..n. ``test_streams_protocol_standby_tasks`` runs two
instances with ``group.streams.num.standby.replicas=1``: each keeps the other's
stateful tasks as standbys, on kastle and on Apache Kafka 4.4 alike.
"""
import random
import shutil
import time
from collections import Counter, defaultdict

import pytest

from compat_lib import unique_topic
from frameworks_lib import (TopicTail, api_calls, assert_apis, assert_txn_protocol, create_topics,  # noqa: F401
                            describe_transaction, framework_broker, list_topics, produce,
                            read_all, topic_config)
from jvm_lib import jvm_module, jvm_procs  # noqa: F401 - jvm_procs is a fixture

MODULE = "kafka-streams"
MAIN = "kastle.compat.streams.WordCount"
JVM_OPTS = ["-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
PARTITIONS = 2
WORDS = [f"w{i:02d}" for i in range(40)]
PHASE_LINES = 1500  # input lines per phase, four phases
WORDS_PER_LINE = 4


def make_lines(n, seed):
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(WORDS_PER_LINE)) for _ in range(n)]


def feed(bootstrap, topic, lines, start):
    produce(bootstrap, topic, [(None, f"line-{start + i}".encode(), line.encode(), None)
                               for i, line in enumerate(lines)])


class Counts:
    """The output topic read with read_committed: every count each word received,
    in log order (a word always lands in the same partition)."""

    def __init__(self, bootstrap, topic):
        self.tail = TopicTail(bootstrap, topic, PARTITIONS, "read_committed")

    def values(self):
        out = defaultdict(list)
        for _p, _o, k, v, _t in self.tail.records:
            out[k.decode()].append(int.from_bytes(v, "big", signed=True))
        return out

    def wait_totals(self, expected: Counter, timeout, what, app):
        def done(_t):
            vals = self.values()
            return all(vals.get(w, [0])[-1] >= n for w, n in expected.items())

        def check_alive():
            if not app.alive():
                raise AssertionError(f"Streams app exited while waiting for {what}\n" + app.output())
        self.tail.read_until(done, timeout, what, on_wait=check_alive)


def start_app(jvm_procs, bootstrap, app_id, state_dir, topics, label):
    app = jvm_procs(MODULE, MAIN, [bootstrap, app_id, state_dir, *topics], jvm_opts=JVM_OPTS,
                    label=label)
    app.wait_for(lambda e: e.get("state") == "RUNNING", 120, "RUNNING state")
    return app


def kill_mid_stream(app, bootstrap, topic, lines, start):
    """Feed lines and SIGKILL the app as soon as it reports having processed a
    third of them: it has work in flight (its transaction is open, commits every
    200 ms), and most of the phase is still unprocessed."""
    base = max([e["n"] for e in app.events if e.get("event") == "processed"], default=0)
    feed(bootstrap, topic, lines, start)
    app.wait_for(lambda e: e.get("event") == "processed" and e["n"] >= base + len(lines) // 3,
                 120, "progress a third into the phase")
    app.kill()


def streams_eos_scenario(bootstrap, workdir, jvm_procs, recorder=None):
    jvm_module(MODULE)
    src, out = unique_topic("streams-in"), unique_topic("streams-out")
    app_id = unique_topic("wordcount")
    state_dir = workdir / "state"
    create_topics(bootstrap, {src: PARTITIONS, out: PARTITIONS})
    phases = [make_lines(PHASE_LINES, seed) for seed in range(4)]
    expected = Counter()
    counts = Counts(bootstrap, out)
    restored = []
    try:
        # run 1: killed a third into phase 0
        app = start_app(jvm_procs, bootstrap, app_id, state_dir, (src, out), "streams#1")
        kill_mid_stream(app, bootstrap, src, phases[0], 0)
        for line in phases[0]:
            expected.update(line.split())

        # run 2: same state dir; catches up on phase 0, runs phase 1 to the end,
        # then is killed a third into phase 2
        app = start_app(jvm_procs, bootstrap, app_id, state_dir, (src, out), "streams#2")
        counts.wait_totals(expected, 120, "phase 0 counted after restart", app)
        feed(bootstrap, src, phases[1], PHASE_LINES)
        for line in phases[1]:
            expected.update(line.split())
        counts.wait_totals(expected, 120, "phase 1 counted", app)
        kill_mid_stream(app, bootstrap, src, phases[2], 2 * PHASE_LINES)
        for line in phases[2]:
            expected.update(line.split())

        # run 3: state dir wiped, so the store comes back from the changelog and
        # the transactional id is new
        # Each id's last epoch: from InitProducerId, or at transaction version 2
        # from the EndTxn that bumped it last.
        old_ids = {e["txn_id"]: e for e in recorder.txn_log
                   if e["txn_id"] and e.get("error") == 0 and "resp_epoch" in e} if recorder else {}
        shutil.rmtree(state_dir)
        app = start_app(jvm_procs, bootstrap, app_id, state_dir, (src, out), "streams#3")
        feed(bootstrap, src, phases[3], 3 * PHASE_LINES)
        for line in phases[3]:
            expected.update(line.split())
        counts.wait_totals(expected, 180, "all four phases counted", app)
        restored = [e for e in app.events if e.get("event") == "restored"]
        app.stop()
        assert any(e.get("event") == "closed" for e in app.events), app.output()
        counts.tail.read_to_end()
        got = counts.values()
    finally:
        counts.tail.close()

    problems = []
    for w in sorted(set(expected) | set(got)):
        want = list(range(1, expected[w] + 1))
        if got.get(w, []) != want:
            g = got.get(w, [])
            dups = [v for v, c in Counter(g).items() if c > 1]
            problems.append(f"{w}: {len(g)} updates, want 1..{expected[w]}; duplicated {dups[:8]}, "
                            f"missing {sorted(set(want) - set(g))[:8]}, first {g[:5]} last {g[-5:]}")
    assert not problems, "read_committed word counts are not exactly 1..n:\n  " + "\n  ".join(problems)

    # The store really came back from the changelog after the wipe.
    assert sum(e["records"] for e in restored) > 0, f"no changelog restore reported: {restored}"

    # The kills really cut transactions short: read_uncommitted sees the aborted
    # attempts' records (in the repartition topic the input task writes and in the
    # output topic), which read_committed hides.
    changelog = f"{app_id}-word-counts-changelog"
    repartition = f"{app_id}-words-repartition"
    aborted = {}
    for topic in (repartition, out):
        every = len(read_all(bootstrap, topic, PARTITIONS, "read_uncommitted"))
        aborted[topic] = every - len(read_all(bootstrap, topic, PARTITIONS, "read_committed"))
    assert sum(aborted.values()) > 0, (
        f"records only read_uncommitted sees: {aborted}: no aborted transaction left records "
        "behind, the kills hit no open transaction")

    # Streams created its internal topics itself: the store's changelog compacted,
    # the repartition topic with delete policy.
    topics = list_topics(bootstrap)
    assert topics.get(changelog) == PARTITIONS and topics.get(repartition) == PARTITIONS, topics
    assert topic_config(bootstrap, changelog)["cleanup.policy"] == "compact"
    assert topic_config(bootstrap, repartition)["cleanup.policy"] == "delete"
    # The transactional id runs 1 and 2 shared was never used again: the broker's
    # transaction timeout (5 s here) aborted the transaction run 2 left open,
    # fencing its epoch as Kafka does (abortTimedOutTransactions: the last epoch
    # the producer was given + 1, then CompleteAbort).
    # The abort comes at the coordinator's next cleanup tick
    # (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s by
    # default) after the timeout: up to 15 s after run 2's last request.
    timed_out = {}
    for tid, last in old_ids.items():
        deadline = time.monotonic() + 20
        desc = describe_transaction(bootstrap, tid)
        while desc.get("state") != "CompleteAbort" and time.monotonic() < deadline:
            time.sleep(0.5)
            desc = describe_transaction(bootstrap, tid)
        timed_out[tid] = desc
        if desc.get("state") == "CompleteCommit" and last["api"] == "EndTxn":
            # Killed between two transactions at transaction version 2: the next
            # one opens at the coordinator only when its first Produce v12 or
            # TxnOffsetCommit v5 reaches a leader, so nothing was open to abort;
            # the id stays at the commit that bumped its epoch last.
            assert desc["error"] == 0 and last["commit"], (tid, last, desc)
            assert desc["epoch"] == last["resp_epoch"], (tid, last, desc)
            continue
        assert desc["error"] == 0 and desc["state"] == "CompleteAbort", (tid, desc)
        assert desc["epoch"] == last["resp_epoch"] + 1, (tid, last, desc)
    return {"updates": sum(len(v) for v in got.values()), "aborted": aborted, "timed_out": timed_out,
            "restored": sum(e["records"] for e in restored)}


@pytest.mark.timeout(600)
@pytest.mark.compat("kafka-streams", "produce", "fetch", "groups", "idempotence", "transactions",
                    "admin")
def test_streams_exactly_once_kill_and_restore(framework_broker, tmp_path, jvm_procs):
    _b, rec, bootstrap = framework_broker
    result = streams_eos_scenario(bootstrap, tmp_path, jvm_procs, rec)
    calls = api_calls(rec)
    print(result, calls)
    # the protocol behind the capabilities claimed: exactly_once_v2 (transactional
    # producer, offsets committed in the transaction, fencing through the group),
    # a classic consumer group, internal topics created through admin
    assert_apis(calls, "Fetch", "ListOffsets", "JoinGroup", "SyncGroup", "Heartbeat",
                "OffsetFetch", "CreateTopics")
    assert_txn_protocol(calls, bootstrap, offsets=True)


@pytest.mark.timeout(600)
@pytest.mark.compat("kafka-streams", "transactions")
def test_streams_exactly_once_at_transaction_version_1(broker_factory, tmp_path, jvm_procs):
    """The same run on a directory formatted at transaction.version 1 (an
    operator pinning the old protocol, as ``kafka-storage format --feature
    transaction.version=1``): the 4.4 client falls back to AddPartitionsToTxn,
    AddOffsetsToTxn and EndTxn up to v4, and the counts are still exactly once."""
    from compat_lib import finalized_features, recorded_broker
    _b, rec, bootstrap = recorded_broker(
        broker_factory, {"kastle.format.features": "transaction.version=1"}, capture_txn=True)
    try:
        assert finalized_features(bootstrap).get("transaction.version", 0) == 1
        result = streams_eos_scenario(bootstrap, tmp_path, jvm_procs, rec)
        calls = api_calls(rec)
        print(result, calls)
        assert_txn_protocol(calls, bootstrap, offsets=True)
    finally:
        rec.close()


STREAMS_PROTOCOL_BROKER = {
    # Fast reconciliation steps for the test (Kafka's floor is 5 s).
    "group.streams.min.heartbeat.interval.ms": "300",
    "group.streams.heartbeat.interval.ms": "300",
}


@pytest.mark.timeout(300)
@pytest.mark.compat("kafka-streams", "groups", "transactions", "streams-protocol")
def test_streams_protocol_handover(broker_factory, tmp_path, jvm_procs):
    from compat_lib import recorded_broker
    _b, rec, bootstrap = recorded_broker(broker_factory, STREAMS_PROTOCOL_BROKER, capture_txn=True)
    try:
        jvm_module(MODULE)
        src, out = unique_topic("sp-in"), unique_topic("sp-out")
        app_id = unique_topic("sp-wordcount")
        create_topics(bootstrap, {src: PARTITIONS, out: PARTITIONS})
        props = tmp_path / "streams.properties"
        props.write_text("group.protocol=streams\n")
        phases = [make_lines(300, seed) for seed in range(2)]
        expected = Counter()
        counts = Counts(bootstrap, out)
        try:
            apps = [jvm_procs(MODULE, MAIN, [bootstrap, app_id, str(tmp_path / f"state{i}"), src, out,
                                             str(props)], jvm_opts=JVM_OPTS, label=f"sp#{i}")
                    for i in range(2)]
            for a in apps:
                a.wait_for(lambda e: e.get("state") == "RUNNING", 120, "RUNNING state")
            feed(bootstrap, src, phases[0], 0)
            for line in phases[0]:
                expected.update(line.split())
            counts.wait_totals(expected, 90, "phase 0 counted by two instances", apps[1])
            # One instance closes (it leaves the group); the other takes its tasks.
            apps[0].stop()
            feed(bootstrap, src, phases[1], len(phases[0]))
            for line in phases[1]:
                expected.update(line.split())
            counts.wait_totals(expected, 90, "phase 1 counted by the remaining instance", apps[1])
            apps[1].stop()
            counts.tail.read_to_end()
            got = counts.values()
        finally:
            counts.tail.close()
        bad = [w for w in sorted(set(expected) | set(got))
               if got.get(w, []) != list(range(1, expected[w] + 1))]
        assert not bad, f"word counts are not exactly 1..n for {bad[:8]}"
        calls = api_calls(rec)
        print(calls)
        # The streams protocol, not a classic group: StreamsGroupHeartbeat (88).
        assert "StreamsGroupHeartbeat" in calls, calls
        assert "JoinGroup" not in calls, calls
        # KIP-1331: the 4.4 client negotiates StreamsGroupHeartbeat v1 (so it
        # reports its changelog offsets, which it strips at v0) and, never asked
        # for its topology description (no plugin: a default Kafka 4.4), never
        # pushes it.
        assert calls["StreamsGroupHeartbeat"] == [1], calls
        assert "StreamsGroupTopologyDescriptionUpdate" not in calls, calls
        topics = list_topics(bootstrap)
        assert topics.get(f"{app_id}-word-counts-changelog") == PARTITIONS, topics
        assert topics.get(f"{app_id}-words-repartition") == PARTITIONS, topics
    finally:
        rec.close()


def standby_scenario(bootstrap, tmp_path, jvm_procs):
    """Two instances of the word count under ``group.protocol=streams`` with the
    broker's ``group.streams.num.standby.replicas=1``: the broker gives each
    instance the other's stateful tasks (the counting subtopology, 1_x; the
    stateless 0_x get none) as standby tasks, as Streams'
    ``metadataForLocalThreads()`` reports them. Returns each instance's last
    (active, standby) task ids."""
    jvm_module(MODULE)
    src, out = unique_topic("sb-in"), unique_topic("sb-out")
    app_id = unique_topic("sb-wordcount")
    create_topics(bootstrap, {src: PARTITIONS, out: PARTITIONS})
    props = tmp_path / "streams.properties"
    props.write_text("group.protocol=streams\n")
    apps = [jvm_procs(MODULE, MAIN, [bootstrap, app_id, str(tmp_path / f"state{i}"), src, out,
                                     str(props)], jvm_opts=JVM_OPTS, label=f"sb#{i}")
            for i in range(2)]

    def tasks(app):
        last = [e for e in app.events if e.get("event") == "tasks"]
        return (set(last[-1]["active"]), set(last[-1]["standby"])) if last else (set(), set())

    def settled(_e=None):
        (a0, s0), (a1, s1) = tasks(apps[0]), tasks(apps[1])
        stateful = {t for t in a0 | a1 if t.startswith("1_")}
        return (len(a0 | a1) == 2 * PARTITIONS and not a0 & a1 and stateful
                and s0 == {t for t in a1 if t.startswith("1_")}
                and s1 == {t for t in a0 if t.startswith("1_")})

    deadline = time.monotonic() + 120
    while not settled() and time.monotonic() < deadline:
        for a in apps:
            if not a.alive():
                raise AssertionError("Streams app exited\n" + a.output())
        time.sleep(0.5)
    got = [tasks(a) for a in apps]
    assert settled(), f"standby tasks not assigned as expected: {got}\n" + apps[0].output()[-3000:]
    for a in apps:
        a.stop()
    return got


STANDBY_BROKER = dict(STREAMS_PROTOCOL_BROKER, **{"group.streams.num.standby.replicas": "1"})


@pytest.mark.timeout(300)
@pytest.mark.compat("kafka-streams", "groups", "streams-protocol")
def test_streams_protocol_standby_tasks(broker_factory, tmp_path, jvm_procs):
    b = broker_factory(STANDBY_BROKER)
    got = standby_scenario(b.bootstrap, tmp_path, jvm_procs)
    print(got)


@pytest.mark.timeout(300)
def test_streams_protocol_standby_tasks_on_kafka(tmp_path, jvm_procs):
    """The same scenario on Apache Kafka 4.4: the behaviour kastle's matches."""
    from kafka_oracle import MODULE as KAFKA_MODULE, RealKafka
    jvm_module(KAFKA_MODULE)
    k = RealKafka(tmp_path / "kafka", overrides=STANDBY_BROKER)
    k.start()
    try:
        got = standby_scenario(k.bootstrap, tmp_path, jvm_procs)
        print(got)
    finally:
        k.stop()
