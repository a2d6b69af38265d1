"""KIP-932 share groups with the Java ``KafkaShareConsumer`` (kafka-clients 4.4)
against kastle: the driver ``jvm/kafka4`` ``kastle.compat.ShareConsumers``.

Two consumers of one share group share a 1-partition topic and every record is
delivered exactly once (implicit acknowledgement); in explicit mode REJECTed
records are never redelivered, RELEASEd ones come back with delivery count 2;
a consumer killed (SIGKILL) with records in flight has them redelivered to
another member once the acquisition lock (2 s here) times out."""
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


@pytest.mark.compat("java-4.4", "groups")
def test_share_consumers_on_kastle(tmp_path, jvm_procs):  # noqa: F811 - the fixture's value
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        boot = b.bootstrap
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
        killed_at = time.monotonic()
        _run("after_kill", boot, topic, groups[2], held["offsets"])
        # Redelivered only after the lock expired, not at once.
        assert time.monotonic() - killed_at >= LOCK_MS / 1000 - 0.5
    finally:
        b.stop()


@pytest.mark.compat("java-4.4", "groups")
def test_share_consumer_renew_and_record_limit(tmp_path):
    """ShareFetch/ShareAcknowledge v2 (KIP-1222, KIP-1206), which the 4.4 client needs for
    ``AcknowledgeType.RENEW`` and ``share.acquire.mode=record_limit`` (it refuses v1): records
    renewed halfway through their lock are renewed without error (the lock's extension
    itself is pinned by the ITs, ``tests/it/share_v2.rs``); a record-limit consumer gets every record once, at most
    ``max.poll.records`` (3) per poll."""
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        boot = b.bootstrap
        topic, n = "kip1222-t", 20
        groups = ["kip1222-renew", "kip1206-limit"]
        _run("setup", boot, topic, str(n), *groups)
        _run("renew", boot, topic, groups[0], str(LOCK_MS))
        _run("record_limit", boot, topic, str(n), groups[1])
    finally:
        b.stop()


@pytest.mark.compat("java-4.4", "groups")
def test_share_state_survives_a_restart_and_admin_offsets(tmp_path):
    """``__share_group_state``: a share consumer ACCEPTs the first records, the broker
    crashes (SIGKILL) and restarts, and a new consumer of the group gets exactly the
    rest (no accepted record redelivered); then Kafka's Admin share-group offset APIs
    (DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets,
    DeleteGroups of the share group) on the now-empty group."""
    b = Broker(tmp_path / "kastle", overrides=OVERRIDES)
    b.start()
    try:
        boot = b.bootstrap
        topic, group, n, k = "kip932-restart", "kip932-restart-g", 30, 12
        _run("setup", boot, topic, str(n), group)
        _run("ack_first", boot, topic, group, str(k))
        b.restart(graceful=False)
        _run("rest", boot, topic, str(n), group, str(k))
        _run("admin", boot, topic, group, str(n))
    finally:
        b.stop()
