"""KIP-932 share groups with the Java ``KafkaShareConsumer`` (kafka-clients 4.4)
against kastle: the driver ``jvm/kafka4`` ``kastle.compat.ShareConsumers``.

Two consumers of one share group share a 1-partition topic and every record is
delivered exactly once (implicit acknowledgement); in explicit mode REJECTed
records are never redelivered, RELEASEd ones come back with delivery count 2;
a consumer killed (SIGKILL) with records in flight has them redelivered to
another member (at once: its connection closed, so its share session ended);
KIP-1191's dead-letter queue: REJECTed records and records released at the
delivery-count limit are written to the group's DLQ topic with Kafka's headers.

Each scenario runs against a real Apache Kafka 4.4 too (``*_on_kafka``, the same
lock settings, SIGKILL and restart of its process): a step failing there is a
driver problem, not kastle's."""
import json
import time

import pytest

import jvm_lib
from jvm_lib import jvm_procs  # noqa: F401 - jvm_procs is a fixture
from conftest import Broker

LOCK_MS = 2000
OVERRIDES = {
    "group.share.min.record.lock.duration.ms": "1000",
    "group.share.record.lock.duration.ms": str(LOCK_MS),
}


def _steps(stdout):
    out = {}
    for ln in stdout.splitlines():
        try:
            o = json.loads(ln)
        except ValueError:
            continue
        if o.get("type") == "step":
            out[o["name"]] = (o["ok"], o.get("error"))
    return out


def _run(*args):
    p = jvm_lib.jvm_run("kafka4", "kastle.compat.ShareConsumers", list(args),
                        jvm_opts=["-Xmx256m"], timeout=120, check=False)
    steps = _steps(p.stdout)
    failed = {k: v for k, v in steps.items() if not v[0]}
    assert steps and not failed and p.returncode == 0, (
        f"{args[0]}: {failed or 'no step ran'}\n--- stdout ---\n{p.stdout[-4000:]}\n"
        f"--- stderr ---\n{p.stderr[-6000:]}")
    return steps


def _share_scenario(boot, jvm_procs):
    prefix = f"kip932-{int(time.time() * 1000) % 10**9}"
    topic, n = f"{prefix}-t", 60
    groups = [f"{prefix}-{g}" for g in ("implicit", "explicit", "kill")]
    _run("setup", boot, topic, str(n), *groups)
    _run("implicit", boot, topic, str(n), groups[0])
    _run("explicit", boot, topic, str(n), groups[1])
    # A member killed with records in flight.
    holder = jvm_procs("kafka4", "kastle.compat.ShareConsumers",
                       ["hold", boot, topic, groups[2]], jvm_opts=["-Xmx256m"])
    held = holder.wait_for(lambda e: e.get("type") == "held", 60, "held records")
    holder.kill()
    # Redelivered to another member: at once, since the killed member's
    # connection closed and its share session ended with it (Kafka's
    # ShareSessionCache disconnect listener; a member that hangs with its
    # connection open keeps its records until the lock expires, pinned by
    # tests/it/share_groups.rs).
    _run("after_kill", boot, topic, groups[2], held["offsets"])


def _renew_scenario(boot):
    prefix = f"kip1222-{int(time.time() * 1000) % 10**9}"
    topic, n = f"{prefix}-t", 20
    groups = [f"{prefix}-renew", f"{prefix}-limit"]
    _run("setup", boot, topic, str(n), *groups)
    _run("renew", boot, topic, groups[0], str(LOCK_MS))
    _run("record_limit", boot, topic, str(n), groups[1])


def _dlq_scenario(boot):
    prefix = f"kip1191-{int(time.time() * 1000) % 10**9}"
    topic, group, n = f"{prefix}-t", f"{prefix}-g", 6
    _run("setup", boot, topic, str(n), group)
    _run("dlq", boot, topic, str(n), group, f"dlq.{prefix}")


def _restart_scenario(boot, crash_and_restart):
    prefix = f"kip932r-{int(time.time() * 1000) % 10**9}"
    topic, group, n, k = f"{prefix}-t", f"{prefix}-g", 30, 12
    _run("setup", boot, topic, str(n), group)
    _run("ack_first", boot, topic, group, str(k))
    crash_and_restart()
    _run("rest", boot, topic, str(n), group, str(k))
    _run("admin", boot, topic, group, str(n), str(k))


@pytest.fixture
def kafka_share(tmp_path):
    """A real Apache Kafka 4.4 with the same lock settings (share.version 2 is
    finalized on a new 4.4 cluster): the reference each scenario is checked on."""
    from kafka_oracle import MODULE as KAFKA_MODULE, RealKafka
    jvm_lib.jvm_module(KAFKA_MODULE)  # skips when the module is not built
    k = RealKafka(tmp_path / "kafka", overrides=OVERRIDES)
    k.start()
    try:
        yield k
    finally:
        k.stop()


def _kill_and_start(k):
    """SIGKILL a RealKafka and start it again on the same directory."""
    k.proc.kill()
    k.proc.wait()
    k.proc = None
    k.start()


@pytest.mark.compat("java-4.4", "share-groups")
def test_share_consumers_on_kastle(tmp_path, jvm_procs):  # noqa: F811 - the fixture's value
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        _share_scenario(b.bootstrap, jvm_procs)
    finally:
        b.stop()


def test_share_consumers_on_kafka(kafka_share, jvm_procs):  # noqa: F811 - the fixture's value
    _share_scenario(kafka_share.bootstrap, jvm_procs)


@pytest.mark.compat("java-4.4", "share-groups")
def test_share_consumer_renew_and_record_limit(tmp_path):
    """ShareFetch/ShareAcknowledge v2 (KIP-1222, KIP-1206), which the 4.4 client needs for
    ``AcknowledgeType.RENEW`` and ``share.acquire.mode=record_limit`` (it refuses v1): records
    renewed halfway through their lock are renewed without error (the lock's extension
    itself is pinned by the ITs, ``tests/it/share_v2.rs``); a record-limit consumer gets every record once, at most
    ``max.poll.records`` (3) per poll."""
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        _renew_scenario(b.bootstrap)
    finally:
        b.stop()


def test_share_consumer_renew_and_record_limit_on_kafka(kafka_share):
    _renew_scenario(kafka_share.bootstrap)


@pytest.mark.compat("java-4.4", "share-groups")
def test_share_state_survives_a_restart_and_admin_offsets(tmp_path):
    """``__share_group_state``: a share consumer ACCEPTs the first records, the broker
    crashes (SIGKILL) and restarts, and a new consumer of the group gets exactly the
    rest (no accepted record redelivered); then Kafka's Admin share-group offset APIs
    (DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets,
    DeleteGroups of the share group) on the now-empty group."""
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        _restart_scenario(b.bootstrap, lambda: b.restart(graceful=False))
    finally:
        b.stop()


def test_share_state_survives_a_restart_and_admin_offsets_on_kafka(kafka_share):
    _restart_scenario(kafka_share.bootstrap, lambda: _kill_and_start(kafka_share))


@pytest.mark.compat("java-4.4", "share-groups")
def test_share_consumer_dead_letter_queue(tmp_path):
    """KIP-1191 (share.version 2): with the group's ``errors.deadletterqueue.topic.name``
    (a topic created with ``errors.deadletterqueue.group.enable=true``) and
    ``errors.deadletterqueue.copy.record.enable``, a consumer's REJECTed records and the
    records it RELEASEs at the delivery-count limit (2) are read back from the DLQ topic
    by a KafkaConsumer: one record per offset, the original key and value, Kafka's
    ``__dlq.errors.*`` headers in Kafka's order."""
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        _dlq_scenario(b.bootstrap)
    finally:
        b.stop()


def test_share_consumer_dead_letter_queue_on_kafka(kafka_share):
    _dlq_scenario(kafka_share.bootstrap)
