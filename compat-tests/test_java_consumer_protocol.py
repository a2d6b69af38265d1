"""The Apache Kafka 4.x Java consumer with ``group.protocol=consumer`` (KIP-848)
against kastle: the driver ``jvm/clients`` ``kastle.compat.ConsumerProtocol``
runs on ``jvm/kafka4``'s classpath (kafka-clients 4.4). Three consumers of one
group over a 6-partition topic get disjoint assignments covering every
partition, a member leaving hands its partitions to the others, every record is
consumed exactly once with synchronous commits, the Admin client lists and
describes the group as a consumer group, and after a broker restart the
committed offsets are there and a new member resumes from them.

The same driver runs against the session's real Apache Kafka (``real_kafka``,
without the restart phase): a step failing there is a driver problem.

The ``regex`` phase (both brokers): a consumer subscribing with an RE2J
``SubscriptionPattern`` (KIP-848's broker-side regular expressions) gets the
topics whose whole name matches, a matching topic created later once the
coordinator refreshes (at most every 10 s), and an invalid pattern fails
with Kafka's INVALID_REGULAR_EXPRESSION message.

The ``migration`` phase (both brokers): KIP-848's online migration by rolling
restart. Two consumers with ``group.protocol=classic`` are restarted one by one
with ``group.protocol=consumer`` (the classic group is upgraded when the first
joins, the other is served as a classic member of the consumer group), then
back one by one (the group turns classic when the last consumer-protocol member
leaves), each record consumed exactly once with ``commitSync`` throughout."""
import time

import pytest

import jvm_lib
from conftest import Broker


def _run(phase, bootstrap, prefix):
    p = jvm_lib.jvm_run("clients", "kastle.compat.ConsumerProtocol", [phase, bootstrap, prefix],
                        deps="kafka4", jvm_opts=["-Xmx256m"], timeout=300, check=False)
    steps = jvm_lib.step_results(p.stdout)
    failed = {k: v for k, v in steps.items() if not v[0]}
    assert steps and not failed, (
        f"{phase}: {failed or 'no step ran'}\n--- stdout ---\n{p.stdout[-4000:]}\n"
        f"--- stderr ---\n{p.stderr[-8000:]}")
    return steps


RUN_STEPS = ["three_members_disjoint_cover", "describe_group", "list_groups",
             "consume_exactly_once", "member_leaving_reassigns",
             "consume_after_leave_exactly_once", "committed_offsets", "empty_after_close"]


@pytest.mark.compat("java-4.4", "groups", "consumer-protocol")
def test_java_consumer_protocol_group_on_kastle(tmp_path):
    b = Broker(tmp_path / "kastle", overrides={"offsets.topic.num.partitions": "5"})
    b.start()
    try:
        prefix = f"kip848-{int(time.time() * 1000) % 10**9}"
        steps = _run("run", b.bootstrap, prefix)
        assert list(steps) == RUN_STEPS
        assert b.stop() == 0
        b.start()
        steps = _run("after-restart", b.bootstrap, prefix)
        assert list(steps) == ["offsets_survive_restart", "resume_from_committed"]
    finally:
        b.stop(check=False)


def test_java_consumer_protocol_group_on_kafka(real_kafka):
    prefix = f"kip848k-{int(time.time() * 1000) % 10**9}"
    steps = _run("run", real_kafka.bootstrap, prefix)
    assert list(steps) == RUN_STEPS


REGEX_STEPS = ["regex_assigns_matching_topics", "regex_new_topic_assigned", "invalid_regex_refused"]


@pytest.mark.compat("java-4.4", "groups", "consumer-protocol")
def test_java_consumer_protocol_regex_on_kastle(tmp_path):
    b = Broker(tmp_path / "kastle", overrides={"offsets.topic.num.partitions": "5"})
    b.start()
    try:
        prefix = f"kip848rx-{int(time.time() * 1000) % 10**9}"
        assert list(_run("regex", b.bootstrap, prefix)) == REGEX_STEPS
    finally:
        b.stop(check=False)


def test_java_consumer_protocol_regex_on_kafka(real_kafka):
    prefix = f"kip848rxk-{int(time.time() * 1000) % 10**9}"
    assert list(_run("regex", real_kafka.bootstrap, prefix)) == REGEX_STEPS


MIGRATION_STEPS = ["classic_members_cover", "upgrade_first_member", "upgrade_second_member",
                   "downgrade_first_member", "downgrade_second_member", "migration_committed_offsets"]


@pytest.mark.compat("java-4.4", "groups", "consumer-protocol")
def test_java_consumer_protocol_migration_on_kastle(tmp_path):
    b = Broker(tmp_path / "kastle", overrides={"offsets.topic.num.partitions": "5",
                                               "group.initial.rebalance.delay.ms": "0"})
    b.start()
    try:
        prefix = f"kip848mg-{int(time.time() * 1000) % 10**9}"
        assert list(_run("migration", b.bootstrap, prefix)) == MIGRATION_STEPS
    finally:
        b.stop(check=False)


def test_java_consumer_protocol_migration_on_kafka(real_kafka):
    prefix = f"kip848mgk-{int(time.time() * 1000) % 10**9}"
    assert list(_run("migration", real_kafka.bootstrap, prefix)) == MIGRATION_STEPS
