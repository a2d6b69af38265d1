"""Transaction versions 2 and 1 (KIP-890 part 2) with the Apache Kafka 4.4 Java client.

A new kastle directory finalizes ``transaction.version`` 2, as a new Kafka 4.4
cluster does, and Kafka's own ``kafka-features`` tool (FeatureCommand) describes it
so; its ``upgrade`` to 2 is then a no-op on both brokers. Then the Java 4.4 client
runs the transactions
scenario of ``ClientSuite`` (the steps test_java_client.py runs as ``txn``:
commit/abort, read_committed and read_uncommitted reads, the last stable offset,
describe/list transactions, sendOffsetsToTransaction with a read_committed
consumer, fencing) against each. The client's NetworkClient log (DEBUG) shows it
really used version 2: Produce v12+ (v13 where the topic ids are known, which
names topics by id), TxnOffsetCommit v6 (KIP-1319: by topic id; the producer
knows the ids of the topics it wrote) and EndTxn v5+ requests only, and neither
AddPartitionsToTxn nor AddOffsetsToTxn.

Version 1 stays covered: a kastle directory formatted with
``kastle.format.features=transaction.version=1`` (as ``kafka-storage format
--feature transaction.version=1``) runs the same scenario, and the client then
sends Produce v11 or lower, EndTxn v4 or lower, TxnOffsetCommit v4 or lower, and
adds partitions and offsets with AddPartitionsToTxn and AddOffsetsToTxn.

The Kafka run is the oracle for these assertions; the same scenario at version 2
also runs against Kafka in test_java_client.py (``java-4.4-kafka-txn``: a new 4.4
cluster finalizes version 2), so the test command runs it here only with
``KASTLE_JAVA_ORACLE=all`` (26 s of the budget).
"""
import os
import re
import time

import pytest

import jvm_lib
from conftest import Broker

TOOL = "org.apache.kafka.tools.FeatureCommand"
STEPS = ["init_transactions", "commit_abort_commit", "read_committed", "read_uncommitted",
         "last_stable_offset", "list_and_describe_transactions", "send_offsets_to_transaction",
         "producer_fencing"]
# the lowest version a transaction version 2 client sends, by the API name in
# the request header NetworkClient logs
SENT_V2 = {"PRODUCE": 12, "END_TXN": 5, "TXN_OFFSET_COMMIT": 6}
NOT_SENT_V2 = ["apiKey=ADD_PARTITIONS_TO_TXN", "apiKey=ADD_OFFSETS_TO_TXN"]
# the highest version a transaction version 1 client sends
SENT_V1 = {"PRODUCE": 11, "END_TXN": 4, "TXN_OFFSET_COMMIT": 4}


@pytest.fixture(scope="module")
def kastle_broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("tv2-kastle"), name="kastle (tv2)")
    b.start()
    yield b
    b.stop(check=False)


@pytest.fixture(scope="module")
def kastle_broker_tv1(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("tv1-kastle"), name="kastle (tv1)",
               overrides={"kastle.format.features": "transaction.version=1"})
    b.start()
    yield b
    b.stop(check=False)


def features(bootstrap, *args):
    p = jvm_lib.jvm_run("kafka4", TOOL, ["--bootstrap-server", bootstrap, *args], timeout=120,
                        jvm_opts=("-Xmx256m",), check=False)
    return p.returncode, p.stdout + p.stderr


def finalized_tv(bootstrap):
    rc, out = features(bootstrap, "describe")
    assert rc == 0, out
    m = re.search(r"Feature: transaction\.version\s+SupportedMinVersion: \d+\s+"
                  r"SupportedMaxVersion: (\d+)\s+FinalizedVersionLevel: (\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


TARGETS = ["kastle", "kafka"] if os.environ.get("KASTLE_JAVA_ORACLE") == "all" else ["kastle"]


# the kastle run fills the compatibility cell; Kafka's is the reference
@pytest.mark.parametrize("target", [
    pytest.param(t, marks=[pytest.mark.compat("java-4.4", "transactions-v2")] if t == "kastle" else [])
    for t in TARGETS])
def test_java_transactions_at_version_2(target, request):
    b = request.getfixturevalue("kastle_broker" if target == "kastle" else "real_kafka")
    if target == "kastle":
        request.node._kastle_brokers = [b]
        # a new directory starts at version 2, as a new Kafka 4.4 cluster
        assert finalized_tv(b.bootstrap) == (2, 2)
    rc, out = features(b.bootstrap, "upgrade", "--feature", "transaction.version=2")
    assert rc == 0, out
    assert finalized_tv(b.bootstrap) == (2, 2)
    log = run_txn_scenario(b, f"tv2-{target[:2]}", target)
    for api, lowest in SENT_V2.items():
        sent = {int(v) for v in re.findall(rf"apiKey={api}, apiVersion=(\d+)", log)}
        assert sent and min(sent) >= lowest, f"{target}: {api} sent at versions {sorted(sent)}"
    for unwanted in NOT_SENT_V2:
        assert unwanted not in log, f"{target}: a version 2 client sent {unwanted}"


def test_java_transactions_at_version_1(kastle_broker_tv1, request):
    b = kastle_broker_tv1
    request.node._kastle_brokers = [b]
    assert finalized_tv(b.bootstrap) == (2, 1)
    log = run_txn_scenario(b, "tv1-ka", "kastle")
    for api, highest in SENT_V1.items():
        sent = {int(v) for v in re.findall(rf"apiKey={api}, apiVersion=(\d+)", log)}
        assert sent and max(sent) <= highest, f"{api} sent at versions {sorted(sent)}"
    for wanted in NOT_SENT_V2:
        assert wanted in log, f"a version 1 client did not send {wanted}"


def run_txn_scenario(b, prefix, target):
    """Runs ClientSuite's txn steps; returns the client's NetworkClient log."""
    prefix = f"{prefix}-{int(time.time() * 1000) % 10**9}"
    opts = ["-Xmx256m", "-Dkastle.netlog.level=DEBUG"]
    t0 = time.monotonic()
    p = jvm_lib.jvm_run("clients", "kastle.compat.ClientSuite", ["txn", b.bootstrap, prefix],
                        deps="kafka4", jvm_opts=opts, timeout=300, check=False)
    secs = time.monotonic() - t0
    steps = jvm_lib.step_results(p.stdout)
    failed = {s: steps.get(s, (False, "did not run"))[1] for s in STEPS
              if not steps.get(s, (False,))[0]}
    assert not failed, (f"{target}: {failed} (exit {p.returncode} after {secs:.1f}s)\n"
                        f"--- stderr ---\n{p.stderr[-6000:]}")
    return p.stderr
