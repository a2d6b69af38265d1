"""The Apache Kafka Java client against kastle, and against a real Kafka 4.4.

The driver (``jvm/clients``, ``kastle.compat.ClientSuite``) is compiled against
kafka-clients 3.4.0 and run twice: on its own classpath (``java-3.x``: 3.4.0, the
version flink-connector-kafka 3.4.0-1.20 for Flink 1.20 LTS pins; the newest
connector, 5.0.0-2.2, is on 4.2.0 and 4.0.1-2.0 on 3.9.1) and on ``jvm/kafka4``'s
(``java-4.4``: kafka-clients 4.4.0). One JVM per (client, broker, scenario); it
runs every step and prints one JSON line per step, and each step is one test
here, so a deviation is reported (and xfailed) step by step.

Every scenario also runs against the session's real Apache Kafka (``real_kafka``)
with the 4.4 client: a step failing there is a test or client problem, not a
kastle deviation. The 3.x client's oracle runs (the same steps) cost 40 s of the
test command's budget and are left to ``KASTLE_JAVA_ORACLE=all``. Only the kastle
runs feed COMPATIBILITY.md.
"""
import json
import os
import time

import pytest

import jvm_lib
from conftest import Broker

# client row in COMPATIBILITY.md -> module whose dependencies it runs on
CLIENT_DEPS = {"java-4.4": "kafka4", "java-3.x": "clients"}

# scenario -> (compat capabilities, steps in the order the driver runs them)
SCENARIOS = {
    "admin": (("admin",), [
        "describe_cluster", "create_topics", "create_topics_errors", "describe_topics",
        "create_partitions", "topic_configs", "topic_alter_configs_legacy", "list_offsets",
        "delete_records", "describe_log_dirs", "describe_features", "acls_security_disabled",
        "delete_topics"]),
    "broker-configs": (("admin",), [
        "describe_broker_configs", "incremental_alter_broker_config",
        "broker_config_read_only_refused"]),
    "produce": (("produce", "fetch", "idempotence"), [
        "produce_default_producer", "read_back_exact", "codec_gzip", "codec_snappy", "codec_lz4",
        "codec_zstd", "describe_producers"]),
    "groups-range": (("groups",), [
        "join_single_member", "rebalance_on_join", "rebalance_on_leave", "consume_and_commit",
        "describe_group", "list_groups", "list_group_offsets", "delete_active_group_refused",
        "alter_offsets_of_active_group_refused", "alter_offsets", "reset_offsets_to_earliest",
        "delete_group_offsets", "delete_group"]),
    "static": (("groups",), [
        "static_join", "static_restart_keeps_assignment", "static_duplicate_instance_fenced",
        "remove_static_members"]),
    "txn": (("transactions",), [
        "init_transactions", "commit_abort_commit", "read_committed", "read_uncommitted",
        "last_stable_offset", "list_and_describe_transactions", "send_offsets_to_transaction",
        "producer_fencing"]),
}
SCENARIOS["groups-cooperative"] = SCENARIOS["groups-range"]

# Steps a client does not have: Admin.alterConfigs (AlterConfigs, API 33) is gone
# from the 4.x client. And one step only the 4.x client has: its describeTopics
# is served by DescribeTopicPartitions (API 75), judged from the client's own
# request log (see run()).
NOT_IN = {("java-4.4", "admin", "topic_alter_configs_legacy")}
EXTRA = {("java-4.4", "admin"): ["describe_topics_uses_describe_topic_partitions"]}

# Known kastle deviations (xfail strict on kastle only; the same step passes on Kafka).
KASTLE_DEVIATIONS = {
}


# Clients whose scenarios are also run against the real Kafka (the oracle).
ORACLE_CLIENTS = set(CLIENT_DEPS) if os.environ.get("KASTLE_JAVA_ORACLE") == "all" else {"java-4.4"}


def _params():
    out = []
    for client in CLIENT_DEPS:
        for target in ("kastle", "kafka") if client in ORACLE_CLIENTS else ("kastle",):
            for scenario, (caps, steps) in SCENARIOS.items():
                names = [s for s in steps if (client, scenario, s) not in NOT_IN]
                names += EXTRA.get((client, scenario), [])
                for step in names:
                    marks = []
                    if target == "kastle":
                        marks.append(pytest.mark.compat(client, *(
                            [step[len("codec_"):]] if step.startswith("codec_") else caps)))
                        reason = KASTLE_DEVIATIONS.get((scenario, step))
                        if reason:
                            marks.append(pytest.mark.xfail(strict=True, reason=reason))
                    out.append(pytest.param(client, target, scenario, step, marks=marks,
                                            id=f"{client}-{target}-{scenario}-{step}"))
    return out


@pytest.fixture(scope="module")
def shared_kastle(tmp_path_factory):
    """One kastle for this file (each run uses fresh names), like real_kafka."""
    b = Broker(tmp_path_factory.mktemp("java-kastle"), name="kastle (java suite)")
    b.start()
    yield b
    b.stop(check=False)


_RUNS = {}


def run(client, target, scenario, bootstrap):
    """Runs one scenario once (cached): {step name: (ok, error)} plus the raw output."""
    key = (client, target, scenario)
    if key not in _RUNS:
        opts = ["-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
        if client == "java-4.4" and scenario == "admin":
            opts.append("-Dkastle.netlog.level=DEBUG")
        prefix = f"j{client[5]}-{scenario[:5]}-{int(time.time() * 1000) % 10**9}"
        t0 = time.monotonic()
        p = jvm_lib.jvm_run("clients", "kastle.compat.ClientSuite", [scenario, bootstrap, prefix],
                            deps=CLIENT_DEPS[client], jvm_opts=opts, timeout=300, check=False)
        steps = jvm_lib.step_results(p.stdout)
        if client == "java-4.4" and scenario == "admin":
            # NetworkClient at DEBUG logs every response it receives by API name
            used = "Received DESCRIBE_TOPIC_PARTITIONS response" in p.stderr
            steps["describe_topics_uses_describe_topic_partitions"] = (
                used, None if used else "describeTopics was not answered with DescribeTopicPartitions "
                                        "(the client fell back to Metadata)")
        _RUNS[key] = (steps, p, time.monotonic() - t0)
    return _RUNS[key]


@pytest.mark.parametrize("client,target,scenario,step", _params())
def test_java_client(client, target, scenario, step, request):
    if target == "kastle":
        b = request.getfixturevalue("shared_kastle")
        request.node._kastle_brokers = [b]
    else:
        b = request.getfixturevalue("real_kafka")
    steps, p, secs = run(client, target, scenario, b.bootstrap)
    if step not in steps:
        raise AssertionError(f"step {step} did not run ({scenario} exited {p.returncode} after "
                             f"{secs:.1f}s)\n--- stdout ---\n{p.stdout[-5000:]}\n"
                             f"--- stderr ---\n{p.stderr[-8000:]}")
    ok, error = steps[step]
    assert ok, f"{client} on {target}, {scenario}/{step}: {error}\n--- stderr ---\n{p.stderr[-6000:]}"


def test_java_consumer_gets_incremental_fetch_sessions(shared_kastle, tmp_path):
    """KIP-227: the 4.x Java consumer's FetchSessionHandler (DEBUG) reports that
    kastle's full fetch created a session and that later fetches were answered
    incrementally on it, with no session errors; the groups scenario's
    consumers (4 partitions moving between members across rebalances) still
    consume everything. A full response arriving after the consumer began
    closing its session is logged as invalid by the client (a client-side
    race, Kafka's answers trip it too), so only invalid incremental
    responses count against kastle."""
    conf = tmp_path / "log4j2.properties"
    conf.write_text("\n".join([
        "appender.err.type = Console", "appender.err.name = STDERR", "appender.err.target = SYSTEM_ERR",
        "appender.err.layout.type = PatternLayout", "appender.err.layout.pattern = %p %m (%c)%n",
        "rootLogger.level = WARN", "rootLogger.appenderRef.err.ref = STDERR",
        "logger.fs.name = org.apache.kafka.clients.FetchSessionHandler", "logger.fs.level = DEBUG", ""]))
    opts = ["-Xmx256m", f"-Dlog4j2.configurationFile={conf}"]
    prefix = f"jfs-{int(time.time() * 1000) % 10**9}"
    p = jvm_lib.jvm_run("clients", "kastle.compat.ClientSuite", ["groups-range", shared_kastle.bootstrap, prefix],
                        deps="kafka4", jvm_opts=opts, timeout=300, check=False)
    steps = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    steps = [o for o in steps if o.get("type") == "step"]
    assert steps and all(o["ok"] for o in steps), (steps, p.stderr[-4000:])
    log = p.stderr
    created = log.count("sent a full fetch response that created a new incremental fetch session")
    incremental = log.count("sent an incremental fetch response with")
    print(f"java consumer: {created} sessions created, {incremental} incremental responses")
    assert created >= 1, log[-4000:]
    assert incremental >= 1, log[-4000:]
    for bad in ("was likely evicted", "unable to process the fetch request",
                "sent an invalid incremental fetch response"):
        assert bad not in log, log[-4000:]
