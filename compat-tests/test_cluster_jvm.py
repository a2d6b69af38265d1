"""kastle as a cluster (issue 17): the Apache Kafka Java client (4.4.0 on
``jvm/kafka4``'s classpath, and 3.4.0), Flink and Kafka Streams keep their
exactly-once and consumer-group guarantees while a broker dies under them. Three combined nodes (one
module-scoped cluster; RF 3 and min.insync.replicas=2 everywhere, also for
``__transaction_state`` and ``__consumer_offsets``).

The loops are ``kastle.compat.ClusterLoops`` (``jvm/clients``), started in the
background; they print what they did as JSON lines, which the tests replay:

* ``copy``: a read_committed consumer and a transactional producer copy an
  input topic (filled first) to an output topic, one transaction per poll,
  offsets committed with sendOffsetsToTransaction. The transaction
  coordinator's (or the group coordinator's) node is SIGKILLed mid-run and
  restarted later; the loop remakes its clients with the same group and
  transactional.id on any error (as a restarted application would). Read
  read_committed, the output holds every input record exactly once, and the
  group's committed offsets are the input's end offsets.
* ``group``: a classic consumer group member committing synchronously after
  every poll; the group coordinator's node is SIGKILLed while it consumes. The
  member stops after a while; a second member (a new JVM) finishes the topic.
  Replaying both: every position the group hands a member is the last offset
  it committed, no offset is skipped, and the topic is read to its end.

Then the existing framework drivers on the cluster: ``test_flink.py``'s
exactly-once job (an output partition's leader killed) and
``test_kafka_streams.py``'s exactly_once_v2 word count (its group
coordinator's node killed), each restored as an operator would if it dies.
"""
import time
from collections import defaultdict

import pytest

from cluster_lib import module_cluster
from compat_lib import ck_create_topic, unique_topic
from jvm_lib import jvm_module, jvm_procs  # noqa: F401 - jvm_procs is a fixture
from test_cluster_coordinators import java_partition_for, wait_coordinator
from test_cluster_transactions import read_committed, wait_txn_coordinator

PARTITIONS = 3
MAIN = "kastle.compat.ClusterLoops"
COORD_PARTITIONS = 6
JVM_OPTS = ["-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
# as in test_java_client.py: the driver's classes on kafka-clients 4.4.0 or 3.4.0
CLIENT_DEPS = {"java-4.4": "kafka4", "java-3.x": "clients"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from module_cluster(
        tmp_path_factory, "jvm-node", graceful=False,
        overrides={"transaction.state.log.num.partitions": str(COORD_PARTITIONS),
                   "offsets.topic.num.partitions": str(COORD_PARTITIONS)})


@pytest.fixture(autouse=True)
def _logs_on_failure(request, cluster):
    # conftest attaches these brokers' log tails to a failed test's report.
    request.node._kastle_brokers = list(cluster.nodes.values())


def all_bootstrap(cluster):
    """Every node, alive or not: the client must cope with a dead one."""
    return ",".join(b.bootstrap for b in cluster.nodes.values())


def fill(cluster, topic, n):
    """``n`` records ``in-0`` .. round-robin over the partitions, acks=all;
    returns each partition's end offset."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 20,
                  "enable.idempotence": True})
    errors = []
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=f"in-{i}".encode(), partition=i % PARTITIONS,
                  on_delivery=lambda err, _m: err and errors.append(err))
        p.poll(0)
    assert p.flush(60) == 0 and not errors, errors[:5]
    return {q: len(range(q, n, PARTITIONS)) for q in range(PARTITIONS)}


def committed_offsets(cluster, group, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, q) for q in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def new_topics(cluster, *topics):
    cluster.wait_brokers({1, 2, 3})
    for t in topics:
        ck_create_topic(cluster.bootstrap, t, partitions=PARTITIONS, rf=3)
    for t in topics:
        cluster.wait_isr(t, 3)


def start_loop(jvm_procs, cluster, label, *args, client="java-4.4"):  # noqa: F811 - the fixture's value
    deps = CLIENT_DEPS[client]
    jvm_module("clients")
    jvm_module(deps)
    return jvm_procs("clients", MAIN, [args[0], all_bootstrap(cluster), *args[1:]],
                     jvm_opts=JVM_OPTS, deps=deps, label=label)


def copied(proc):
    return sum(e["n"] for e in proc.events if e.get("type") == "committed")


def survivor(cluster, dead):
    return next(i for i in sorted(cluster.nodes) if i != dead and cluster.nodes[i].alive())


def coordinator_partitions(cluster, tid, group):
    """(leader, replicas in order) of the transactional id's
    ``__transaction_state`` partition and of the group's
    ``__consumer_offsets`` partition."""
    md = cluster.wait_for("both coordinator topics", lambda md: all(
        t in md.topics and md.topics[t].error is None and len(md.topics[t].partitions) == COORD_PARTITIONS
        for t in ("__transaction_state", "__consumer_offsets")), timeout=30)
    txn = md.topics["__transaction_state"].partitions[java_partition_for(tid, COORD_PARTITIONS)]
    grp = md.topics["__consumer_offsets"].partitions[java_partition_for(group, COORD_PARTITIONS)]
    return (txn.leader, list(txn.replicas)), (grp.leader, list(grp.replicas))


def pick_names(cluster, tag, colocated):
    """A transactional id and a group whose coordinators are on one node, with
    the same replicas in the same order (so they fail over to the same node
    too), or on different nodes."""
    # The first FindCoordinator of each kind has the controller create the topic.
    wait_txn_coordinator(cluster, f"{tag}-probe", via=1)
    wait_coordinator(cluster, f"{tag}-probe", via=1)
    cluster.wait_isr("__transaction_state", 3)
    cluster.wait_isr("__consumer_offsets", 3)
    tid = f"{tag}-tid"
    for i in range(200):
        group = f"{tag}-g{i}"
        (tl, tr), (gl, gr) = coordinator_partitions(cluster, tid, group)
        if (colocated and tr == gr) or (not colocated and tl != gl):
            return tid, group
    raise AssertionError(f"no group name for {tid} with colocated={colocated}")


@pytest.mark.timeout(200)
@pytest.mark.parametrize("victim,client", [
    ("transaction", "java-4.4"), ("group", "java-4.4"), ("both", "java-4.4"), ("both", "java-3.x")])
def test_java_exactly_once_copy_survives_a_coordinators_crash(cluster, jvm_procs, victim, client):  # noqa: F811
    """Kill the transaction coordinator (the group's is on another node), the
    group coordinator (the transaction's is elsewhere), or the node that is
    both. kafka-clients 4.4.0, and 3.4.0 (Flink 1.20's connector pins it)."""
    n = 1500
    tag = unique_topic(f"eos-{victim[:3]}-{client[5]}")
    src, dst = f"{tag}-in", f"{tag}-out"
    new_topics(cluster, src, dst)
    end = fill(cluster, src, n)
    tid, group = pick_names(cluster, tag, colocated=victim == "both")
    (txn_node, _), (group_node, _) = coordinator_partitions(cluster, tid, group)
    node = group_node if victim == "group" else txn_node
    assert (txn_node == group_node) == (victim == "both")

    loop = start_loop(jvm_procs, cluster, f"copy-{victim}-{client}", "copy", src, dst, group, tid, "40",
                      client=client)
    loop.wait_for(lambda e: copied(loop) >= n // 5, 90, f"{n // 5} records copied")
    assert wait_txn_coordinator(cluster, tid, via=1)[0] == txn_node
    assert wait_coordinator(cluster, group, via=1)[0] == group_node
    print(f"transaction coordinator {txn_node}, group coordinator {group_node}; killing {node}")
    cluster.kill(node)
    at_kill = copied(loop)
    before = {id(e) for e in loop.events}
    assert at_kill < n, "the loop finished before the kill: nothing was tested"

    other = survivor(cluster, node)
    new_txn, _ = wait_txn_coordinator(cluster, tid, via=other, not_node=node)
    new_group, _ = wait_coordinator(cluster, group, via=other, not_node=node)
    print(f"after the kill: transaction coordinator {new_txn}, group coordinator {new_group}")
    # Progress with the node still down: a transaction committed after the kill.
    loop.wait_for(lambda e: e.get("type") == "committed" and id(e) not in before, 90,
                  f"a transaction committed after node {node} died")
    cluster.start([node])
    loop.wait_for(lambda e: e.get("type") == "done", 120, "the whole input copied")
    assert loop.proc.wait(30) == 0, loop.output()
    errors = [e for e in loop.events if e.get("type") == "error"]
    print(f"{len(errors)} client errors, {max(e.get('attempt', 1) for e in loop.events if e.get('type') == 'committed')} "
          f"client incarnations: {[e['error'][:120] for e in errors][:5]}")

    got = read_committed(cluster, dst, PARTITIONS, timeout=60)
    dups = sorted({v for v in got if got.count(v) > 1})
    want = {f"in-{i}" for i in range(n)}
    assert not dups, f"{len(got) - len(set(got))} duplicates in the output, e.g. {dups[:10]}"
    assert set(got) == want, (f"missing {sorted(want - set(got))[:10]} "
                              f"({len(want - set(got))}), unexpected {sorted(set(got) - want)[:10]}")
    assert len(got) == n
    assert committed_offsets(cluster, group, src) == end


@pytest.mark.timeout(200)
def test_java_consumer_group_survives_its_coordinators_crash(cluster, jvm_procs):  # noqa: F811
    n = 3000
    topic, group = unique_topic("grp-failover"), unique_topic("grp-failover-g")
    new_topics(cluster, topic)
    end = fill(cluster, topic, n)

    first = start_loop(jvm_procs, cluster, "group#1", "group", topic, group, "30", str(n // 2))
    first.wait_for(lambda e: e.get("type") == "commit", 90, "a first commit")
    first.wait_for(lambda e: sum(len(o) for ev in first.events if ev.get("type") == "poll"
                                 for o in ev["recs"].values()) >= n // 6, 90, f"{n // 6} records")
    node, _ = wait_coordinator(cluster, group, via=1)
    cluster.kill(node)
    before = {id(e) for e in first.events}
    new, _ = wait_coordinator(cluster, group, via=survivor(cluster, node), not_node=node)
    print(f"group coordinator {node} killed; new coordinator {new}")
    first.wait_for(lambda e: e.get("type") == "commit" and id(e) not in before, 90,
                   f"a commit to the new coordinator {new}")
    first.wait_for(lambda e: e.get("type") == "done", 120, "the first member stopping")
    assert first.proc.wait(30) == 0, first.output()
    cluster.start([node])

    second = start_loop(jvm_procs, cluster, "group#2", "group", topic, group, "0", "0")
    second.wait_for(lambda e: e.get("type") == "done", 120, "the second member reaching the end")
    assert second.proc.wait(30) == 0, second.output()

    # Replay both members' histories.
    committed, position = {}, {}
    seen = defaultdict(list)
    problems = []
    for who, proc in (("#1", first), ("#2", second)):
        for e in proc.events:
            t = e.get("type")
            if t == "assigned":
                for q, off in e["positions"].items():
                    if off != committed.get(q, 0):
                        problems.append(f"{who} given partition {q} at {off}, last commit {committed.get(q, 0)}")
                    position[q] = off
            elif t == "poll":
                for q, offs in e["recs"].items():
                    if offs != list(range(position.get(q, 0), position.get(q, 0) + len(offs))):
                        problems.append(f"{who} partition {q}: read {offs[:3]}..{offs[-1]} "
                                        f"at position {position.get(q)}")
                    position[q] = offs[-1] + 1
                    seen[int(q)].extend(offs)
            elif t == "commit":
                committed.update(e["offsets"])
    assert not problems, "\n".join(problems[:20])
    for q, last in end.items():
        assert set(seen[q]) == set(range(last)), (
            f"partition {q}: missing {sorted(set(range(last)) - set(seen[q]))[:10]}")
    failed = [e for p in (first, second) for e in p.events if e.get("type") == "commit_failed"]
    reread = sum(len(v) - len(set(v)) for v in seen.values())
    print(f"{reread} records read twice; {len(failed)} failed commits")
    if not failed:
        assert reread == 0, f"{reread} records read twice though every commit succeeded"
    assert committed_offsets(cluster, group, topic) == end


FLINK_MAIN = "kastle.compat.flink.ExactlyOnceJob"
FLINK_OPTS = ["-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
              "-Dorg.slf4j.simpleLogger.log.org.apache.flink.metrics=error"]


@pytest.mark.timeout(240)
def test_flink_exactly_once_survives_a_broker_crash(cluster, jvm_procs, tmp_path):  # noqa: F811
    """test_flink.py's job (KafkaSource -> map -> KafkaSink EXACTLY_ONCE,
    checkpoints every second, no restart strategy) on the cluster: the leader
    of an output partition is SIGKILLed once two checkpoints completed. If the
    job fails, it is restored from its last completed checkpoint in a new JVM,
    as an operator would; the node comes back after a while. Flink commits its
    source offsets in its checkpoints, not in the transactions, so this path
    has no TxnOffsetCommit."""
    from frameworks_lib import TopicTail, group_offsets, list_end_offsets
    from test_flink import completed_checkpoints
    jvm_module("flink")
    n = 6000
    tag = unique_topic("flink-eos")
    src, dst, group, prefix = f"{tag}-in", f"{tag}-out", f"{tag}-g", f"{tag}-tx"
    new_topics(cluster, src, dst)
    end = fill(cluster, src, n)
    ckdir = tmp_path / "checkpoints"
    runs = []

    def start(restore, sleep_ms):
        p = jvm_procs("flink", FLINK_MAIN, [all_bootstrap(cluster), src, dst, group, ckdir, prefix,
                                            "INCREMENTING", restore, sleep_ms],
                      jvm_opts=FLINK_OPTS, label=f"flink#{len(runs) + 1}")
        runs.append(p)
        return p, p.wait_for(lambda e: e.get("event") == "submitted", 120, "job submission")["job"]

    def checkpoint(job):
        done = completed_checkpoints(ckdir, job)
        return int(done[-1].name.split("-")[1]) if done else 0

    run, job = start("-", 5)  # ~15 s for the input at parallelism 2
    run.wait_for(lambda e: e.get("event") == "processed" and e["n"] >= n // 5 and checkpoint(job) >= 2,
                 120, "two checkpoints and a fifth of the input")
    victim = cluster.partitions(dst)[0].leader
    at_kill = max(e["n"] for e in run.events if e.get("event") == "processed")
    cluster.kill(victim)
    killed = time.monotonic()
    print(f"killed node {victim} (leader of {dst}-0) after {at_kill} records, checkpoint {checkpoint(job)}")
    assert at_kill < n

    tail = TopicTail(cluster.bootstrap, dst, PARTITIONS, "read_committed")
    try:
        deadline = time.monotonic() + 170
        while len(tail.records) < n:
            assert time.monotonic() < deadline, (
                f"{len(tail.records)}/{n} committed records\n" + "\n".join(r.output(40) for r in runs))
            if not run.alive() or any(e.get("event") == "failed" for e in run.events):
                assert len(runs) < 4, "the job failed three times\n" + run.output()
                failure = next((e["error"] for e in run.events if e.get("event") == "failed"), None)
                run.kill()
                chk = completed_checkpoints(ckdir, job)
                assert chk, "no completed checkpoint to restore\n" + run.output()
                print(f"job {job} failed ({(failure or '')[:300]}); restoring {chk[-1].name}")
                run, job = start(chk[-1], 0)
            if not cluster.nodes[victim].alive() and time.monotonic() - killed > 15:
                cluster.start([victim])
            tail.poll(0.5)
        time.sleep(2)  # a duplicate committed late would show up here
        tail.poll(1.0)
    finally:
        tail.close()
    if not cluster.nodes[victim].alive():
        cluster.start([victim])
    # KafkaSource commits its checkpointed positions to the group.
    deadline = time.monotonic() + 30
    while (offsets := group_offsets(cluster.bootstrap, group, src)) != end:
        assert time.monotonic() < deadline, f"group {group} offsets {offsets} != {end}"
        time.sleep(0.5)
    ends_before_kill = (list_end_offsets(cluster.bootstrap, dst, PARTITIONS, "read_committed"),
                        list_end_offsets(cluster.bootstrap, dst, PARTITIONS, "read_uncommitted"))
    run.kill()
    print(f"{len(runs)} job run(s)")

    # No transaction left open: last stable offset = high watermark (given a
    # few seconds, should a marker still be on its way).
    samples = []
    deadline = time.monotonic() + 15
    while True:
        lso = list_end_offsets(cluster.bootstrap, dst, PARTITIONS, "read_committed")
        hw = list_end_offsets(cluster.bootstrap, dst, PARTITIONS, "read_uncommitted")
        samples.append((round(time.monotonic() - deadline + 15, 1), lso, hw))
        if lso == hw or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert lso == hw, (f"a transaction is still open on {dst}: last stable offsets {lso}, high watermarks "
                       f"{hw}; (LSO, HW) once every record was read, before the job was killed: "
                       f"{ends_before_kill}; samples since: {samples[:3]} ... {samples[-1:]}")
    got = read_committed(cluster, dst, PARTITIONS, timeout=60)
    dups = sorted({v for v in got if got.count(v) > 1})
    want = {f"in-{i}|flink" for i in range(n)}
    assert not dups, f"{len(got) - len(set(got))} duplicates in the output, e.g. {dups[:10]}"
    assert set(got) == want, (f"missing {sorted(want - set(got))[:10]} "
                              f"({len(want - set(got))}), unexpected {sorted(set(got) - want)[:10]}")


@pytest.mark.timeout(240)
def test_streams_exactly_once_survives_its_group_coordinators_crash(cluster, jvm_procs, tmp_path):  # noqa: F811
    """test_kafka_streams.py's exactly_once_v2 word count (internal topics RF 3
    here) on the cluster: its group coordinator's node is SIGKILLed mid-stream,
    more input arrives while it is down, it comes back, more input again. If
    the application dies it is restarted on the same state dir (same
    transactional id), as an operator would. Read read_committed, every word's
    counts are exactly 1..n. Streams names its transactional id after a random
    process id, so its transaction coordinator may or may not be the group
    coordinator's node (before and after the kill)."""
    import test_kafka_streams as ks
    from collections import Counter
    jvm_module(ks.MODULE)
    tag = unique_topic("streams-eos")
    src, out, app_id = f"{tag}-in", f"{tag}-out", f"{tag}-app"
    cluster.wait_brokers({1, 2, 3})
    for t in (src, out):
        ck_create_topic(cluster.bootstrap, t, partitions=ks.PARTITIONS, rf=3)
    for t in (src, out):
        cluster.wait_isr(t, 3)
    props = tmp_path / "streams.properties"
    props.write_text("replication.factor=3\n")
    state_dir = tmp_path / "state"
    runs = []

    def start():
        app = ks.start_app(jvm_procs, all_bootstrap(cluster), app_id, state_dir, (src, out, props),
                           f"streams#{len(runs) + 1}")
        runs.append(app)
        return app

    def errored(app):
        return not app.alive() or any(e.get("event") == "error" for e in app.events)

    phases = [ks.make_lines(ks.PHASE_LINES, seed) for seed in range(3)]
    expected = Counter()
    counts = ks.Counts(cluster.bootstrap, out)
    node = None
    app = start()
    try:
        def wait_totals(what, timeout=90):
            nonlocal app
            deadline = time.monotonic() + timeout
            while True:
                try:
                    counts.wait_totals(expected, max(1, deadline - time.monotonic()), what, app)
                    return
                except AssertionError:
                    if not errored(app) or len(runs) >= 3 or time.monotonic() >= deadline:
                        raise
                err = next((e["error"] for e in app.events if e.get("event") == "error"), "exited")
                print(f"streams app failed ({err[:300]}); restarting it on the same state dir")
                if app.alive():
                    app.stop()
                app = start()

        ks.feed(cluster.bootstrap, src, phases[0], 0)
        app.wait_for(lambda e: e.get("event") == "processed" and e["n"] >= ks.PHASE_LINES // 3, 90,
                     "a third of the first phase processed")
        node, _ = wait_coordinator(cluster, app_id, via=1)
        cluster.kill(node)
        print(f"killed node {node}, the group coordinator of {app_id}")
        for line in phases[0]:
            expected.update(line.split())
        ks.feed(cluster.bootstrap, src, phases[1], ks.PHASE_LINES)
        for line in phases[1]:
            expected.update(line.split())
        wait_totals("phases 0 and 1 counted with a node down")
        cluster.start([node])
        ks.feed(cluster.bootstrap, src, phases[2], 2 * ks.PHASE_LINES)
        for line in phases[2]:
            expected.update(line.split())
        wait_totals("all three phases counted")
        app.stop()
        counts.tail.read_to_end()
        got = counts.values()
    finally:
        counts.tail.close()
        if node is not None and not cluster.nodes[node].alive():
            cluster.start([node])
    print(f"{len(runs)} application run(s)")
    problems = []
    for w in sorted(set(expected) | set(got)):
        want = list(range(1, expected[w] + 1))
        if got.get(w, []) != want:
            g = got.get(w, [])
            dups = [v for v, c in Counter(g).items() if c > 1]
            problems.append(f"{w}: {len(g)} updates, want 1..{expected[w]}; duplicated {dups[:8]}, "
                            f"missing {sorted(set(want) - set(g))[:8]}")
    assert not problems, "read_committed word counts are not exactly 1..n:\n  " + "\n  ".join(problems)
