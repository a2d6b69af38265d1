"""Flink 2.x with its Kafka connector, exactly-once, killed and restored.

The driver (jvm/flink, ExactlyOnceJob) runs KafkaSource -> map -> KafkaSink
(DeliveryGuarantee.EXACTLY_ONCE) on a local mini cluster, checkpointing every
second to a local directory. The test SIGKILLs the JVM once two checkpoints have
completed *and* the output holds records of a still-open transaction, then
starts a new JVM restored from the last completed checkpoint (the source is
unbounded, so the test stops that JVM once the output is complete). That recovery is
where Kafka-compatible brokers have broken Flink: the sink commits the
transactions recorded in the checkpoint by resuming them (EndTxn with the stored
producer id and epoch, no InitProducerId; possibly a transaction the broker has
already committed) and aborts lingering ones, either by probing transactional ids
with InitProducerId (INCREMENTING naming, the default) or by listing them
(POOLING: DescribeProducers on the output topic, then ListTransactions filtered by
those producer ids and state Ongoing).

Read with read_committed, the output must hold every input exactly once, no open
transaction may be left behind (last stable offset = high watermark), and the
restored job must have resumed from the checkpoint rather than from the start.
The broker APIs the restored JVM sent are taken from a VersionRecorder relay,
which also decodes every InitProducerId and EndTxn with its answer.

``flink_eos_scenario`` takes a bootstrap address (and optionally the recorder in
front of it), so it runs against any broker.
"""
import time
from collections import Counter
from pathlib import Path

import pytest

from compat_lib import unique_topic
from frameworks_lib import (TopicTail, api_calls, assert_apis, assert_txn_protocol, create_topics,  # noqa: F401
                            framework_broker,
                            group_offsets, list_end_offsets, produce, read_all)
from jvm_lib import jvm_module, jvm_procs  # noqa: F401 - jvm_procs is a fixture

MODULE = "flink"
MAIN = "kastle.compat.flink.ExactlyOnceJob"
JVM_OPTS = ["-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.log.org.apache.flink.metrics=error"]
PARTITIONS = 2
N = 6000
SLEEP_MS = 2  # per record in the map: ~6 s for the whole input at parallelism 2


def completed_checkpoints(ckdir: Path, job: str):
    """chk-N directories of the job that hold their _metadata (complete), oldest first."""
    d = ckdir / job
    if not d.is_dir():
        return []
    done = [p for p in d.glob("chk-*") if (p / "_metadata").exists()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def flink_eos_scenario(bootstrap, workdir, jvm_procs, strategy, recorder=None):
    jvm_module(MODULE)
    src, out = unique_topic("flink-in"), unique_topic("flink-out")
    group, prefix = unique_topic("flink-group"), unique_topic("flink-tx")
    create_topics(bootstrap, {src: PARTITIONS, out: PARTITIONS})
    produce(bootstrap, src, [(i % PARTITIONS, f"k{i}".encode(), f"rec-{i}".encode(), None)
                             for i in range(N)])
    ckdir = workdir / "checkpoints"

    def job_args(restore, sleep_ms):
        return [bootstrap, src, out, group, ckdir, prefix, strategy, restore, sleep_ms]

    run1 = jvm_procs(MODULE, MAIN, job_args("-", SLEEP_MS), jvm_opts=JVM_OPTS, label="flink#1")
    job1 = run1.wait_for(lambda e: e.get("event") == "submitted", 120, "job submission")["job"]

    # Kill once two checkpoints have completed and an open transaction holds records
    # (read_uncommitted is ahead of read_committed), well before the input ends.
    committed = TopicTail(bootstrap, out, PARTITIONS, "read_committed")
    uncommitted = TopicTail(bootstrap, out, PARTITIONS, "read_uncommitted")
    try:
        deadline = time.monotonic() + 120
        while True:
            assert run1.alive(), "flink job ended before the kill\n" + run1.output()
            assert time.monotonic() < deadline, (
                f"no completed checkpoint with an open transaction after 120 s: "
                f"{completed_checkpoints(ckdir, job1)}, committed {len(committed.records)}, "
                f"uncommitted {len(uncommitted.records)}\n" + run1.output())
            committed.poll(0.1)
            uncommitted.poll(0.1)
            done = completed_checkpoints(ckdir, job1)  # Flink retains only the newest
            if (done and int(done[-1].name.split("-")[1]) >= 2
                    and len(uncommitted.records) > len(committed.records)
                    and len(uncommitted.records) < N // 2):
                break
        run1.kill()
        # the dead job's transaction is still open at the broker: its records sit
        # above the last stable offset
        every = len(read_all(bootstrap, out, PARTITIONS, "read_uncommitted"))
        committed.poll(1.0)
        assert every > len(committed.records), (every, len(committed.records))
        at_kill = {"committed": len(committed.records), "uncommitted": every}
    finally:
        committed.close()
        uncommitted.close()

    chk = completed_checkpoints(ckdir, job1)[-1]
    before = recorder.counts() if recorder else None
    txn_before = len(recorder.txn_log) if recorder else 0
    run2 = jvm_procs(MODULE, MAIN, job_args(chk, 0), jvm_opts=JVM_OPTS, label="flink#2")
    run2.wait_for(lambda e: e.get("event") == "submitted", 120, "job submission")

    def check_run2():
        if not run2.alive() or any(e.get("event") == "failed" for e in run2.events):
            raise AssertionError("restored flink job failed\n" + run2.output())
    out_tail = TopicTail(bootstrap, out, PARTITIONS, "read_committed")
    try:
        # every input committed (the source is unbounded: the job runs on)
        out_tail.read_until(lambda t: len(t.records) >= N, 180, f"{N} committed records",
                            on_wait=check_run2)
        time.sleep(2)  # a duplicate committed late would show up here
        out_tail.poll(1.0)
    finally:
        out_tail.close()
    processed = max(e["n"] for e in run2.events if e.get("event") == "processed")
    # KafkaSource reports its checkpointed positions to its group (OffsetCommit
    # after each completed checkpoint): they reach the input's end
    want_offsets = {p: N // PARTITIONS for p in range(PARTITIONS)}
    deadline = time.monotonic() + 30
    while (committed_offsets := group_offsets(bootstrap, group, src)) != want_offsets:
        check_run2()
        assert time.monotonic() < deadline, f"group {group} offsets {committed_offsets} != {want_offsets}"
        time.sleep(0.5)
    run2.kill()
    calls = api_calls(recorder, before) if recorder else None
    txn_calls = [dict(e) for e in recorder.txn_log[txn_before:]] if recorder else None

    # No transaction left open on the output (the dead run's lingering one was
    # aborted, the recovered ones committed): last stable offset = high watermark.
    lso = list_end_offsets(bootstrap, out, PARTITIONS, "read_committed")
    hw = list_end_offsets(bootstrap, out, PARTITIONS, "read_uncommitted")
    assert lso == hw, f"a transaction is still open on {out}: last stable offsets {lso}, high watermarks {hw}"
    got = read_all(bootstrap, out, PARTITIONS, "read_committed", timeout=30)
    values = Counter(v.decode() for _p, _o, _k, v, _t in got)
    want = {f"rec-{i}|flink" for i in range(N)}
    dups = {v: c for v, c in values.items() if c > 1}
    missing = want - set(values)
    extra = set(values) - want
    assert not dups and not missing and not extra, (
        f"read_committed output: {len(got)} records for {N} inputs; {len(dups)} duplicated "
        f"(e.g. {list(dups.items())[:5]}), {len(missing)} missing (e.g. {sorted(missing)[:5]}), "
        f"{len(extra)} unexpected")
    # restored from the checkpoint: the second run did not reprocess everything
    assert 0 < processed < N, f"restored job processed {processed} of {N}"
    return {"checkpoint": chk.name, "at_kill": at_kill, "run2_processed": processed,
            "run2_apis": calls, "run2_txn_calls": txn_calls}


@pytest.mark.timeout(420)
@pytest.mark.parametrize("strategy", ["INCREMENTING", "POOLING"])
@pytest.mark.compat("flink", "produce", "fetch", "groups", "idempotence", "transactions", "admin")
def test_flink_exactly_once_kill_and_restore(framework_broker, tmp_path, jvm_procs, strategy):
    _b, rec, bootstrap = framework_broker
    result = flink_eos_scenario(bootstrap, tmp_path, jvm_procs, strategy, rec)
    txn = result.pop("run2_txn_calls")
    print(result)
    for e in txn:
        print(" ", e)
    apis = result["run2_apis"]
    # the recovery path was really taken: recorded transactions were resumed and
    # committed (EndTxn with the checkpoint's producer id and epoch, no
    # InitProducerId of their own) and lingering ones fenced (InitProducerId)
    assert_apis(apis, "Fetch", "OffsetCommit", "DescribeCluster")
    assert_txn_protocol(apis, bootstrap)
    if strategy == "POOLING":
        assert_apis(apis, "ListTransactions", "DescribeProducers")
    resumed = [e for e in txn if e["api"] == "EndTxn" and e["commit"]
               and not any(i["api"] == "InitProducerId" and i["txn_id"] == e["txn_id"]
                           for i in txn[:txn.index(e)])]
    assert resumed, "no transaction from the checkpoint was resumed and committed"
    for e in (e for e in txn if e["api"] == "EndTxn" and e.get("error") != 0):
        # A resumed producer sends EndTxn v4 with the checkpoint's epoch. When the
        # killed job had already committed that transaction with EndTxn v5
        # (transaction version 2), the commit bumped the epoch, and a client's
        # EndTxn below v5 must match the epoch exactly: PRODUCER_FENCED, as Kafka's
        # endTransactionWithTV1 answers; Flink's committer takes it as done. The
        # killed job's commit is in the relay's record.
        assert e in resumed and e["version"] <= 4 and e["error"] == 90, (e, txn)
        earlier = rec.txn_log[:rec.txn_log.index(e)]
        assert any(c["api"] == "EndTxn" and c["commit"] and c["version"] >= 5 and c.get("error") == 0
                   and (c["txn_id"], c["producer_id"], c["epoch"], c["resp_epoch"])
                   == (e["txn_id"], e["producer_id"], e["epoch"], e["epoch"] + 1)
                   for c in earlier), (e, earlier)


def test_fencing_init_producer_id_answers_concurrent_transactions(framework_broker):
    """The fencing step of Flink's recovery (InitProducerId on a transactional id a dead
    job left Ongoing), reproduced with librdkafka so the exchange is exact."""
    from compat_lib import ck_producer
    _b, rec, bootstrap = framework_broker
    topic, tid = unique_topic("fence"), unique_topic("fence-tx")
    create_topics(bootstrap, {topic: 1})
    dead = ck_producer(bootstrap, **{"transactional.id": tid, "enable.idempotence": True,
                                     "client.id": "compat-fence-dead"})
    dead.init_transactions(30)
    dead.begin_transaction()
    dead.produce(topic, value=b"left open")
    assert dead.flush(30) == 0  # the partition is in the transaction: Ongoing
    fencer = ck_producer(bootstrap, **{"transactional.id": tid, "enable.idempotence": True,
                                       "client.id": "compat-fence-new"})
    fencer.init_transactions(60)
    inits = [e for e in rec.txn_log if e["api"] == "InitProducerId" and e["txn_id"] == tid]
    first, fencing = inits[0], inits[1:]
    assert first["client"] == "compat-fence-dead" and first["error"] == 0, inits
    assert fencing and all(e["client"] == "compat-fence-new" for e in fencing), inits
    # Kafka: CONCURRENT_TRANSACTIONS (51) while it aborts, then the new epoch
    assert fencing[0]["error"] == 51, [{k: e.get(k) for k in ("client", "error", "resp_epoch")} for e in inits]
    assert fencing[-1]["error"] == 0 and fencing[-1]["resp_epoch"] == first["resp_epoch"] + 2, inits
