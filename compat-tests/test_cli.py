"""The `kastle` client CLI (topic, produce, consume, group, cluster, config, acl,
user) against kastle and against the real Apache Kafka 4.4 (``any_broker``): the
CLI is a plain Kafka client, so the same flow must pass on both.

``acl`` and ``user`` need an authorizer and a SCRAM listener, which the session's
Kafka has not: ``secured`` starts one kastle and one Kafka 4.4 with
``StandardAuthorizer`` (``super.users=User:ANONYMOUS``: the PLAINTEXT listener is
the administrator's) and a SASL_PLAINTEXT listener for SCRAM-SHA-256/512; a user
the CLI creates logs in there and sees what the ACLs the CLI created grant.

``consume -g`` joins a KIP-848 consumer group on both brokers and resumes from
what it committed.

Cross-checks with librdkafka (confluent_kafka): a keyed record lands on the
partition librdkafka's Java-compatible ``murmur2_random`` partitioner picks, and a
real group consumer's commit shows up as lag in ``kastle group describe``; while
that consumer is a member, describe lists it and reset-offsets refuses.
"""
import json
import os
import subprocess
import time
import uuid

import pytest

from confluent_kafka import Consumer, Producer, TopicPartition

import jvm_lib
from conftest import Broker, free_port, kastle_bin
from kafka_oracle import MODULE, RealKafka


def cli(bootstrap, *args, stdin=None, check=True):
    """Runs `kastle ARGS` against `bootstrap`: (exit code, stdout, stderr)."""
    env = dict(os.environ, KASTLE_BOOTSTRAP=bootstrap)
    p = subprocess.run([str(kastle_bin()), *args], input=stdin, env=env, capture_output=True,
                       text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"kastle {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.returncode, p.stdout, p.stderr


def cli_json(bootstrap, *args, stdin=None):
    _, out, _ = cli(bootstrap, *args, "--json", stdin=stdin)
    return json.loads(out)


def wait_for(what, fn, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except AssertionError:
            if time.time() > deadline:
                raise
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_cli_topics_produce_consume_groups(any_broker):
    bs = any_broker.bootstrap
    topic, group = f"cli-{uuid.uuid4().hex[:8]}", f"cli-g-{uuid.uuid4().hex[:8]}"

    cli(bs, "topic", "create", topic, "-p", "3", "-c", "retention.ms=3600000")
    code, _, err = cli(bs, "topic", "create", topic, check=False)
    assert code == 1 and "TOPIC_ALREADY_EXISTS" in err, err
    # Kafka propagates new topics to its metadata asynchronously.
    d = wait_for("the topic's leaders", lambda: (lambda d: all(
        p["leader"] >= 0 for p in d["partitions"]) and d)(cli_json(bs, "topic", "describe", topic)))
    assert len(d["partitions"]) == 3
    assert d["configs"]["retention.ms"] == {"value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert any(t["topic"] == topic for t in cli_json(bs, "topic", "list"))
    info = cli_json(bs, "cluster", "info")
    assert info["cluster_id"] and len(info["brokers"]) == 1

    # produce with keys and headers, consume them back
    lines = "".join(f"k{i % 5}|v{i}\n" for i in range(20))
    p = cli_json(bs, "produce", topic, "--key-separator", "|", "-H", "h=1", stdin=lines)
    assert p["records"] == 20
    _, out, _ = cli(bs, "consume", topic, "--format", "json")
    recs = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["value"] for r in recs) == sorted(f"v{i}" for i in range(20))
    assert all(r["headers"] == [{"key": "h", "value": "1"}] for r in recs)
    # the same partitions as librdkafka's Java-compatible partitioner
    prod = Producer({"bootstrap.servers": bs, "partitioner": "murmur2_random"})
    landed = {}
    for k in range(5):
        prod.produce(topic, key=f"k{k}", value=b"x",
                     on_delivery=lambda e, m: landed.__setitem__(m.key().decode(), m.partition()))
    prod.flush(30)
    assert {r["key"]: r["partition"] for r in recs} == landed

    # a real group consumer commits 4 of 10 records of a one-partition topic
    jobs = f"{topic}-jobs"
    cli(bs, "topic", "create", jobs, "-p", "1")
    wait_for("jobs' leader", lambda: cli_json(bs, "topic", "describe", jobs)["partitions"][0]["leader"] >= 0)
    cli(bs, "produce", jobs, stdin="".join(f"job {i}\n" for i in range(10)))
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([jobs])
    got = 0
    deadline = time.time() + 30
    while got < 4 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got >= 4
    c.commit(offsets=[TopicPartition(jobs, 0, 4)], asynchronous=False)
    d = cli_json(bs, "group", "describe", group)
    assert d["state"] == "Stable" and len(d["members"]) == 1, d
    assert d["partitions"][0]["member_id"] == d["members"][0]["member_id"]
    assert (d["partitions"][0]["current_offset"], d["partitions"][0]["lag"]) == (4, 6), d
    code, _, err = cli(bs, "group", "reset-offsets", group, "--topic", jobs, "--to-earliest",
                       "--execute", check=False)
    assert code == 1 and "inactive" in err, err
    c.close()

    d = wait_for("the group to empty",
                 lambda: (lambda d: d["state"] == "Empty" and d)(cli_json(bs, "group", "describe", group)))
    assert d["partitions"][0]["lag"] == 6 and d["total_lag"] == 6
    assert any(g["group"] == group for g in cli_json(bs, "group", "list"))
    cli(bs, "group", "reset-offsets", group, "--topic", jobs, "--to-earliest", "--execute")
    assert cli_json(bs, "group", "describe", group)["partitions"][0]["lag"] == 10

    # the CLI as a KIP-848 group member: reads from the committed offsets, commits, leaves
    member_group = f"{group}-member"
    _, out, _ = cli(bs, "consume", jobs, "-g", member_group, "--format", "value")
    assert out.splitlines() == [f"job {i}" for i in range(10)], out
    d = cli_json(bs, "group", "describe", member_group)
    assert (d["protocol_type"], d["members"], d["total_lag"]) == ("consumer", [], 0), d
    assert d["partitions"][0]["current_offset"] == 10, d
    cli(bs, "produce", jobs, stdin="job 10\njob 11\n")
    _, out, _ = cli(bs, "consume", jobs, "-g", member_group, "--format", "value")
    assert out.splitlines() == ["job 10", "job 11"], out

    cli(bs, "topic", "alter", topic, "--partitions", "4")
    wait_for("4 partitions", lambda: len(cli_json(bs, "topic", "describe", topic)["partitions"]) == 4)
    cli(bs, "group", "delete", group)
    cli(bs, "topic", "delete", topic, jobs)


def test_cli_acl_without_authorizer(any_broker):
    """Neither broker has an authorizer: Kafka's SECURITY_DISABLED and messages."""
    code, _, err = cli(any_broker.bootstrap, "acl", "list", check=False)
    assert code == 1 and "SECURITY_DISABLED: No Authorizer is configured on the broker" in err, err
    code, _, err = cli(any_broker.bootstrap, "acl", "create", "topic", "t", "--principal",
                       "User:a", "--operation", "read", check=False)
    assert code == 1 and "SECURITY_DISABLED: No Authorizer is configured." in err, err


def secured_overrides(plain, sasl, controller):
    listeners = f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": listeners,
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": "User:ANONYMOUS",
    }


@pytest.fixture(scope="module", params=["kastle", "kafka"])
def secured(request, tmp_path_factory):
    """A broker with an authorizer and a SCRAM listener (``.sasl_port``)."""
    if request.param == "kafka":
        jvm_lib.jvm_module(MODULE)  # skips when the module is not built
        b = RealKafka(tmp_path_factory.mktemp("cli-secured-kafka"))
        b.sasl_port = free_port()
        b.overrides.update(secured_overrides(b.port, b.sasl_port, b.controller_port))
    else:
        workdir = tmp_path_factory.mktemp("cli-secured-kastle")
        b = Broker(workdir, name="kastle (secured)")
        b.sasl_port = free_port()
        o = secured_overrides(b.port, b.sasl_port, free_port())
        o["listeners"] = o["advertised.listeners"]
        b.overrides.update(o)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_cli_acl_and_user_secured(secured, tmp_path):
    bs, n = secured.bootstrap, uuid.uuid4().hex[:8]
    topic, other, user = f"cli-acl-{n}", f"cli-other-{n}", f"dana-{n}"
    sasl = f"127.0.0.1:{secured.sasl_port}"
    principal = f"User:{user}"

    def as_user(mechanism, password, *args):
        cfg = tmp_path / f"{mechanism}-{password}.properties"
        cfg.write_text(
            f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";\n')
        return cli(sasl, *args, "--command-config", str(cfg), check=False)

    def topics_seen(mechanism="SCRAM-SHA-512", password="pw-512"):
        code, out, err = as_user(mechanism, password, "topic", "list", "--json")
        assert code == 0, err
        return sorted(t["topic"] for t in json.loads(out))

    for t in (topic, other):
        cli(bs, "topic", "create", t)
    # Two operations on the topic, one prefixed group ACL.
    created = cli_json(bs, "acl", "create", "topic", topic, "--principal", principal,
                       "--operation", "describe", "--operation", "read")
    assert sorted(a["operation"] for a in created) == ["DESCRIBE", "READ"]
    assert all(a["status"] == "OK" and a["pattern"] == "LITERAL" for a in created), created
    cli(bs, "acl", "create", "group", f"g-{n}", "--pattern", "prefixed", "--principal", principal,
        "--operation", "read")
    mine = wait_for("the ACLs", lambda: (lambda a: len(a) == 3 and a)(
        cli_json(bs, "acl", "list", "--principal", principal)))
    assert {(a["resource_type"], a["pattern"], a["host"], a["permission"]) for a in mine} == {
        ("TOPIC", "LITERAL", "*", "ALLOW"), ("GROUP", "PREFIXED", "*", "ALLOW")}, mine
    # A MATCH filter finds the prefixed ACL that applies to a group name.
    matched = cli_json(bs, "acl", "list", "group", f"g-{n}-workers", "--pattern", "match")
    assert [(a["name"], a["principal"]) for a in matched] == [(f"g-{n}", principal)], matched

    # SCRAM credentials: --password and stdin; the broker refuses too few iterations.
    cli(bs, "user", "create", user, "-m", "SCRAM-SHA-512", "--iterations", "8192",
        "--password", "pw-512")
    cli(bs, "user", "create", user, "-m", "SCRAM-SHA-256", stdin="pw-256\n")
    code, _, err = cli(bs, "user", "create", user, "--iterations", "100", "--password", "x",
                       check=False)
    assert code == 1 and "UNACCEPTABLE_CREDENTIAL" in err, err
    assert cli_json(bs, "user", "describe", user) == [
        {"user": user, "mechanism": "SCRAM-SHA-256", "iterations": 4096},
        {"user": user, "mechanism": "SCRAM-SHA-512", "iterations": 8192}]

    # The user logs in with either mechanism and sees only the topic it may describe.
    assert wait_for("a SCRAM login", lambda: topics_seen() == [topic])
    assert topics_seen("SCRAM-SHA-256", "pw-256") == [topic]
    assert as_user("SCRAM-SHA-256", "wrong", "topic", "list")[0] == 1

    # Delete shows what it deleted; the user then sees nothing.
    deleted = cli_json(bs, "acl", "delete", "topic", topic, "--principal", principal)
    assert sorted(a["operation"] for a in deleted) == ["DESCRIBE", "READ"], deleted
    wait_for("the topic ACLs to go", lambda: topics_seen() == [])
    cli(bs, "acl", "delete", "group", f"g-{n}", "--pattern", "prefixed")
    wait_for("no ACLs left", lambda: cli_json(bs, "acl", "list", "--principal", principal) == [])

    deleted = cli_json(bs, "user", "delete", user)
    assert [(d["mechanism"], d["status"]) for d in deleted] == [
        ("SCRAM-SHA-256", "DELETED"), ("SCRAM-SHA-512", "DELETED")], deleted
    wait_for("the login to fail",
             lambda: as_user("SCRAM-SHA-512", "pw-512", "topic", "list")[0] == 1)
    code, _, err = cli(bs, "user", "describe", user, check=False)
    assert code == 1 and "RESOURCE_NOT_FOUND" in err, err
