"""Topic and broker configs in a kastle cluster's metadata log (issue 17):
three combined nodes. A topic config set through node 1 is written by the
controller as ConfigRecords, described through node 3 (DYNAMIC_TOPIC_CONFIG)
and enforced by the partition leaders on the other nodes (a produce over the
new ``max.message.bytes`` fails with MESSAGE_TOO_LARGE); a cluster-default
broker config set through node 2 is described and enforced on node 3; invalid
values are refused with Kafka's error codes and change nothing; everything
survives a SIGKILL and restart of every node. Group configs (KIP-848's GROUP
resource) likewise: set through one node, validated by the controller with
Kafka's messages, described (from the image, as its group coordinator takes
them) by every node, deleted again; and Kafka's ``kafka-configs --entity-type
groups`` alters and describes them through any node. Requests that must go
through a given node use the raw protocol against that node."""
import struct
import time

import pytest

from cluster_lib import describe, module_cluster
from compat_lib import _kstr, ck_create_topic, raw_request, unique_topic

pytestmark = pytest.mark.timeout(300)

TOPIC, BROKER, GROUP = 2, 4, 32
SET, DELETE = 0, 1
# DescribeConfigs' ConfigSource ids.
DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG = 1, 2, 3
DEFAULT_CONFIG, GROUP_CONFIG = 5, 8
# Kafka error codes.
MESSAGE_TOO_LARGE, INVALID_CONFIG, INVALID_REQUEST = 10, 40, 42
UNKNOWN_TOPIC_OR_PARTITION = 3


class _Reader:
    def __init__(self, b):
        self.b, self.pos = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        return [item() for _ in range(self.take(">i"))]


def _nstr(s):
    return struct.pack(">h", -1) if s is None else _kstr(s)


def _alter_results(body):
    r = _Reader(body)
    r.take(">i")  # throttle
    return r.array(lambda: (r.take(">h"), r.string(), r.take(">b"), r.string()))


def incremental_alter(bootstrap, resources, validate_only=False):
    """IncrementalAlterConfigs v0 [(type, name, [(key, op, value)])] →
    [(error, message)] in request order."""
    body = struct.pack(">i", len(resources))
    for rtype, name, ops in resources:
        body += struct.pack(">b", rtype) + _kstr(name) + struct.pack(">i", len(ops))
        for key, op, value in ops:
            body += _kstr(key) + struct.pack(">b", op) + _nstr(value)
    body += struct.pack(">?", validate_only)
    return [(e, m) for e, m, _, _ in _alter_results(raw_request(bootstrap, 44, 0, body))]


def legacy_alter(bootstrap, rtype, name, configs, validate_only=False):
    """AlterConfigs v0 of one resource (the complete new set) → (error, message)."""
    body = struct.pack(">i", 1) + struct.pack(">b", rtype) + _kstr(name)
    body += struct.pack(">i", len(configs))
    for k, v in configs.items():
        body += _kstr(k) + _nstr(v)
    body += struct.pack(">?", validate_only)
    e, m, _, _ = _alter_results(raw_request(bootstrap, 33, 0, body))[0]
    return e, m


def describe_configs(bootstrap, rtype, name, keys):
    """DescribeConfigs v1 of one resource → (error, {key: (value, source)})."""
    body = struct.pack(">i", 1) + struct.pack(">b", rtype) + _kstr(name)
    body += struct.pack(">i", len(keys)) + b"".join(_kstr(k) for k in keys)
    body += struct.pack(">?", False)
    r = _Reader(raw_request(bootstrap, 32, 1, body))
    r.take(">i")

    def entry():
        k, v = r.string(), r.string()
        _ro, source, _sens = r.take(">?b?")
        r.array(lambda: (r.string(), r.string(), r.take(">b")))
        return k, (v, source)

    def result():
        err, _msg, _t, _n = r.take(">h"), r.string(), r.take(">b"), r.string()
        return err, dict(r.array(entry))
    return r.array(result)[0]


def wait_until(what, pred, timeout=30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except Exception as e:  # noqa: BLE001 - a node may be catching up
            last = e
        if last is True:
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def described(cluster, node, rtype, name, want):
    """Waits until `node` describes `name` with `want` {key: (value, source)}."""
    b = cluster.nodes[node].bootstrap

    def check():
        err, got = describe_configs(b, rtype, name, list(want))
        return True if err == 0 and all(got.get(k) == v for k, v in want.items()) \
            else (err, got)
    wait_until(f"node {node} describing {name!r} as {want}", check)


def produce_error(bootstrap, topic, partition, size):
    """Produces one record of `size` bytes with acks=all; the delivery
    error's code (None when delivered)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                  "message.timeout.ms": 20000, "enable.idempotence": False,
                  "client.id": "cluster-configs"})
    out = []
    p.produce(topic, b"x" * size, partition=partition,
              on_delivery=lambda err, _msg: out.append(err))
    p.flush(30)
    assert out, "no delivery report"
    return None if out[0] is None else out[0].code()


def led_by_other_than(cluster, topic, node):
    md = cluster.wait_isr(topic, 3)
    for p in md.topics[topic].partitions.values():
        if p.leader != node:
            return p.id, p.leader
    raise AssertionError(f"every partition of {topic} is led by {node}: {describe(md)}")


def wait_produce_error(cluster, topic, partition, size, code):
    """The produce fails with `code` once the leader applied the image."""
    wait_until(f"a {size}-byte record to {topic}-{partition} failing with {code}",
               lambda: produce_error(cluster.bootstrap, topic, partition, size) == code
               or "not yet")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from module_cluster(tmp_path_factory)


def test_configs_are_cluster_wide_and_survive_a_restart(cluster):
    n1, n2, n3 = (cluster.nodes[i].bootstrap for i in (1, 2, 3))
    topic, plain = unique_topic("cfg-topic"), unique_topic("cfg-plain")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    ck_create_topic(cluster.bootstrap, plain, partitions=3, rf=3)

    # A topic config through node 1, described through node 3.
    assert incremental_alter(n1, [(TOPIC, topic, [("max.message.bytes", SET, "2000"),
                                                  ("retention.ms", SET, "7200000")])]) \
        == [(0, None)]
    described(cluster, 3, TOPIC, topic, {
        "max.message.bytes": ("2000", DYNAMIC_TOPIC_CONFIG),
        "retention.ms": ("7200000", DYNAMIC_TOPIC_CONFIG)})
    # Enforced by a leader other than node 1.
    part, leader = led_by_other_than(cluster, topic, 1)
    wait_produce_error(cluster, topic, part, 5000, MESSAGE_TOO_LARGE)
    assert produce_error(cluster.bootstrap, topic, part, 500) is None

    # validate_only writes nothing.
    assert incremental_alter(n2, [(TOPIC, topic, [("retention.ms", SET, "1000")])],
                             validate_only=True) == [(0, None)]
    # Invalid values are refused with Kafka's codes and change nothing.
    [(code, msg)] = incremental_alter(n2, [(TOPIC, topic, [("retention.ms", SET, "soon")])])
    assert code == INVALID_CONFIG, msg
    [(code, msg)] = incremental_alter(n2, [(TOPIC, topic, [("no.such.config", SET, "1")])])
    assert (code, msg) == (INVALID_CONFIG, "Unknown topic config name: no.such.config")
    [(code, msg)] = incremental_alter(n2, [(TOPIC, "missing-topic",
                                            [("retention.ms", SET, "5")])])
    assert (code, msg) == (UNKNOWN_TOPIC_OR_PARTITION,
                           "The topic 'missing-topic' does not exist.")
    [(code, msg)] = incremental_alter(n2, [(BROKER, "", [("message.max.bytes", SET, "big")])])
    assert code == INVALID_REQUEST, msg
    [(code, msg)] = incremental_alter(n2, [(BROKER, "3", [("log.cleaner.threads", SET, "1")])])
    assert (code, msg) == (INVALID_REQUEST, "Unexpected broker id, expected 2, but received 3")
    time.sleep(1)
    for node in (1, 2, 3):
        described(cluster, node, TOPIC, topic, {
            "max.message.bytes": ("2000", DYNAMIC_TOPIC_CONFIG),
            "retention.ms": ("7200000", DYNAMIC_TOPIC_CONFIG)})

    # Legacy AlterConfigs replaces the whole set: retention.ms goes back to
    # its default.
    assert legacy_alter(n3, TOPIC, topic, {"max.message.bytes": "2000"}) == (0, None)
    described(cluster, 1, TOPIC, topic, {"max.message.bytes": ("2000", DYNAMIC_TOPIC_CONFIG)})
    wait_until("retention.ms no longer set on the topic", lambda: describe_configs(
        n1, TOPIC, topic, ["retention.ms"])[1]["retention.ms"][1] != DYNAMIC_TOPIC_CONFIG
        or "still set")

    # A cluster-default broker config through node 2 acts on node 3.
    assert incremental_alter(n2, [(BROKER, "", [("message.max.bytes", SET, "3000")])]) \
        == [(0, None)]
    described(cluster, 3, BROKER, "", {
        "message.max.bytes": ("3000", DYNAMIC_DEFAULT_BROKER_CONFIG)})
    described(cluster, 3, TOPIC, plain, {
        "max.message.bytes": ("3000", DYNAMIC_DEFAULT_BROKER_CONFIG)})
    md = cluster.wait_isr(plain, 3)
    on3 = [p.id for p in md.topics[plain].partitions.values() if p.leader == 3]
    assert on3, describe(md)
    wait_produce_error(cluster, plain, on3[0], 5000, MESSAGE_TOO_LARGE)
    assert produce_error(cluster.bootstrap, plain, on3[0], 2500) is None

    # A per-broker config through its own node is that node's only.
    assert incremental_alter(n3, [(BROKER, "3", [("log.cleaner.backoff.ms", SET, "20000")])]) \
        == [(0, None)]
    described(cluster, 3, BROKER, "3", {
        "log.cleaner.backoff.ms": ("20000", DYNAMIC_BROKER_CONFIG)})
    described(cluster, 1, BROKER, "1", {"log.cleaner.backoff.ms": ("15000", DEFAULT_CONFIG)})

    # Every node killed and restarted: the configs come back from the log.
    for i in (1, 2, 3):
        cluster.kill(i)
    cluster.start()
    cluster.wait_brokers({1, 2, 3})
    described(cluster, 2, TOPIC, topic, {"max.message.bytes": ("2000", DYNAMIC_TOPIC_CONFIG)})
    described(cluster, 1, BROKER, "", {
        "message.max.bytes": ("3000", DYNAMIC_DEFAULT_BROKER_CONFIG)})
    described(cluster, 3, BROKER, "3", {
        "log.cleaner.backoff.ms": ("20000", DYNAMIC_BROKER_CONFIG)})
    part, _ = led_by_other_than(cluster, topic, 2)
    wait_produce_error(cluster, topic, part, 5000, MESSAGE_TOO_LARGE)
    md = cluster.wait_isr(plain, 3)
    for p in md.topics[plain].partitions.values():
        wait_produce_error(cluster, plain, p.id, 5000, MESSAGE_TOO_LARGE)
    assert produce_error(cluster.bootstrap, plain, 0, 2500) is None

    # Deleting the cluster default restores the static value.
    assert incremental_alter(n1, [(BROKER, "", [("message.max.bytes", DELETE, None)])]) \
        == [(0, None)]
    described(cluster, 3, TOPIC, plain, {"max.message.bytes": ("1048588", DEFAULT_CONFIG)})


def test_group_configs_are_cluster_wide(cluster):
    n1, n2, n3 = (cluster.nodes[i].bootstrap for i in (1, 2, 3))
    group = unique_topic("cfg-group")
    session, heartbeat = "consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"

    # Set through node 1 (no such group needs to exist), described by every node.
    assert incremental_alter(n1, [(GROUP, group, [(session, SET, "50000"),
                                                  (heartbeat, SET, "6000")])]) == [(0, None)]
    for node in (1, 2, 3):
        described(cluster, node, GROUP, group, {session: ("50000", GROUP_CONFIG),
                                                heartbeat: ("6000", GROUP_CONFIG)})

    # The controller validates with its group-coordinator bounds; a refused
    # change changes nothing.
    [(code, msg)] = incremental_alter(n2, [(GROUP, group, [(session, SET, "1000")])])
    assert (code, msg) == (INVALID_CONFIG,
                           "consumer.session.timeout.ms must be in the range 45000 to 60000 "
                           "inclusive.")
    [(code, msg)] = incremental_alter(n2, [(GROUP, group, [("no.such.config", SET, "1")])])
    assert (code, msg) == (INVALID_CONFIG, "Unknown group config name: no.such.config")
    [(code, msg)] = incremental_alter(n2, [(GROUP, group, [(heartbeat, SET, "50000")])])
    assert (code, msg) == (INVALID_CONFIG,
                           "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 "
                           "inclusive.")
    [(code, msg)] = incremental_alter(n2, [(GROUP, "", [(session, SET, "50000")])])
    assert (code, msg) == (INVALID_REQUEST, "Default group resources are not allowed.")
    # validate_only writes nothing.
    assert incremental_alter(n3, [(GROUP, group, [(session, SET, "55000")])],
                             validate_only=True) == [(0, None)]
    time.sleep(1)
    for node in (1, 2, 3):
        described(cluster, node, GROUP, group, {session: ("50000", GROUP_CONFIG),
                                                heartbeat: ("6000", GROUP_CONFIG)})

    # Legacy AlterConfigs through node 3 replaces the group's whole set.
    assert legacy_alter(n3, GROUP, group, {session: "55000"}) == (0, None)
    described(cluster, 1, GROUP, group, {session: ("55000", GROUP_CONFIG)})
    wait_until("the heartbeat interval no longer set on node 2", lambda: describe_configs(
        n2, GROUP, group, [heartbeat])[1][heartbeat] == ("5000", DEFAULT_CONFIG)
        or describe_configs(n2, GROUP, group, [heartbeat]))

    # Deleted through node 2: every node describes the broker's default again.
    assert incremental_alter(n2, [(GROUP, group, [(session, DELETE, None)])]) == [(0, None)]
    for node in (1, 2, 3):
        described(cluster, node, GROUP, group, {session: ("45000", DEFAULT_CONFIG)})


def test_kafka_configs_alters_and_describes_groups_through_any_node(cluster):
    import jvm_lib
    n1, n2, n3 = (cluster.nodes[i].bootstrap for i in (1, 2, 3))
    group = unique_topic("cfg-tool-group")

    def kafka_configs(bootstrap, *args):
        return jvm_lib.jvm_run("kafka4", "org.apache.kafka.tools.ConfigCommand",
                               ["--bootstrap-server", bootstrap, "--entity-type", "groups",
                                "--entity-name", group, *args],
                               timeout=120, jvm_opts=("-Xmx256m",)).stdout

    kafka_configs(n3, "--alter", "--add-config",
                  "consumer.session.timeout.ms=50000,share.delivery.count.limit=4")
    for node in (1, 2):
        described(cluster, node, GROUP, group, {
            "consumer.session.timeout.ms": ("50000", GROUP_CONFIG),
            "share.delivery.count.limit": ("4", GROUP_CONFIG)})
    out = kafka_configs(n1, "--describe")
    assert "consumer.session.timeout.ms=50000" in out, out
    assert "share.delivery.count.limit=4" in out, out

    kafka_configs(n2, "--alter", "--delete-config",
                  "consumer.session.timeout.ms,share.delivery.count.limit")
    for node in (1, 2, 3):
        described(cluster, node, GROUP, group, {
            "consumer.session.timeout.ms": ("45000", DEFAULT_CONFIG),
            "share.delivery.count.limit": ("5", DEFAULT_CONFIG)})
    out = kafka_configs(n3, "--describe")
    assert "consumer.session.timeout.ms" not in out, out
