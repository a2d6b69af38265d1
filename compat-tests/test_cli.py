"""The `kastle` client CLI (topic, produce, consume, group, cluster, config) against
kastle and against the real Apache Kafka 4.4 (``any_broker``): the CLI is a plain
Kafka client, so the same flow must pass on both.

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

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import kastle_bin


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

    cli(bs, "topic", "alter", topic, "--partitions", "4")
    wait_for("4 partitions", lambda: len(cli_json(bs, "topic", "describe", topic)["partitions"]) == 4)
    cli(bs, "group", "delete", group)
    cli(bs, "topic", "delete", topic, jobs)
