"""kastle as a cluster (issue 17): three combined nodes on loopback with
replication factor 3 and ``min.insync.replicas=2``, driven by librdkafka
(confluent-kafka): the topic is created through a broker (forwarded to the
active controller), placed on all three with leaders spread, its ISR full,
and records produced with acks=all read back from the leaders."""
import pytest

from cluster_lib import KastleCluster, describe
from compat_lib import (ck_admin, ck_consume, ck_create_topic, ck_produce, make_messages,
                        unique_topic, verify)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(broker_factory):
    c = KastleCluster(broker_factory, nodes=3).start()
    c.wait_brokers({1, 2, 3})
    return c


def test_three_nodes_see_each_other_and_replicate(cluster):
    topic = unique_topic("cluster-rf3")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    md = cluster.wait_isr(topic, 3)
    for p in md.topics[topic].partitions.values():
        assert sorted(p.replicas) == [1, 2, 3], describe(md)
    # Leaders are spread: Kafka's striped placement starts each partition on
    # a different broker.
    leaders = {p.leader for p in md.topics[topic].partitions.values()}
    assert len(leaders) == 3, describe(md)
    # acks=all answers once every in-sync replica has the records.
    msgs = make_messages(600, "rf3", 3)
    ck_produce(cluster.bootstrap, topic, msgs, **{"enable.idempotence": True,
                                                  "max.in.flight.requests.per.connection": 5})
    counts = {p: sum(1 for m in msgs if m.partition == p) for p in range(3)}
    verify(ck_consume(cluster.bootstrap, topic, 3, until_counts=counts, timeout=60), msgs)
    # Each node checkpoints its replicas' high watermarks in Kafka's
    # replication-offset-checkpoint (at the latest when it stops), and starts
    # from them: everything is readable again after a full restart.
    # A follower learns the high watermark from its next fetch, so its own
    # may lag; the leader's is the count acknowledged, and none is above it.
    cluster.stop()
    seen = {p: [] for p in counts}
    for i, node in cluster.nodes.items():
        lines = (node.data_dir / "replication-offset-checkpoint").read_text().splitlines()
        assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, lines
        hws = {int(p): int(o) for t, p, o in (line.split(" ") for line in lines[2:]) if t == topic}
        assert set(hws) == set(counts), (i, hws)
        for p, hw in hws.items():
            seen[p].append(hw)
    assert {p: max(v) for p, v in seen.items()} == counts, seen
    assert all(hw <= counts[p] for p, v in seen.items() for hw in v), seen
    cluster.start()
    cluster.wait_isr(topic, 3, timeout=90)
    verify(ck_consume(cluster.bootstrap, topic, 3, until_counts=counts, timeout=60), msgs)


# -- topic administration through the controller ------------------------------
# One three-node cluster for the module's admin tests (seconds each). Requests
# that must go through a given node use the raw protocol against that node
# (clients send admin requests to the controller id they were told); listing
# and describing use librdkafka.

import struct  # noqa: E402
import time  # noqa: E402

from compat_lib import _kstr, raw_request  # noqa: E402
from conftest import Broker  # noqa: E402


@pytest.fixture(scope="module")
def admin_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster-admin")
    brokers = []

    def make(overrides=None, start=True, **kw):
        b = Broker(root / f"broker{len(brokers)}", overrides=overrides, **kw)
        brokers.append(b)
        if start:
            b.start()
        return b
    c = KastleCluster(make, nodes=3).start()
    c.wait_brokers({1, 2, 3})
    yield c
    for b in brokers:
        if b.alive():
            try:
                b.stop(check=False)
            except Exception:  # noqa: BLE001 - teardown must not mask test result
                b.kill()


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


def raw_create_topics_v4(bootstrap, topics, validate_only=False):
    """CreateTopics v4 [(name, partitions, rf)] → {name: (error, message)}."""
    body = struct.pack(">i", len(topics))
    for name, np, rf in topics:
        body += _kstr(name) + struct.pack(">ihii", np, rf, 0, 0)
    body += struct.pack(">i?", 30000, validate_only)
    r = _Reader(raw_request(bootstrap, 19, 4, body))
    r.take(">i")
    return dict(r.array(lambda: (r.string(), (r.take(">h"), r.string()))))


def raw_delete_topics_v3(bootstrap, names):
    body = struct.pack(">i", len(names)) + b"".join(_kstr(n) for n in names)
    r = _Reader(raw_request(bootstrap, 20, 3, body + struct.pack(">i", 30000)))
    r.take(">i")
    return dict(r.array(lambda: (r.string(), r.take(">h"))))


def raw_create_partitions_v1(bootstrap, topic, count, validate_only=False):
    body = struct.pack(">i", 1) + _kstr(topic) + struct.pack(">ii", count, -1)
    r = _Reader(raw_request(bootstrap, 37, 1, body + struct.pack(">i?", 30000, validate_only)))
    r.take(">i")
    return dict(r.array(lambda: (r.string(), (r.take(">h"), r.string()))))


def raw_metadata_v1(bootstrap):
    """Metadata v1 for every topic from one node: (broker ids, {topic: (error,
    {partition: (leader, replicas)})})."""
    r = _Reader(raw_request(bootstrap, 3, 1, struct.pack(">i", -1)))
    brokers = r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string())[0])
    r.take(">i")

    def partition():
        err, idx, leader = r.take(">hii")
        replicas = r.array(lambda: r.take(">i"))
        r.array(lambda: r.take(">i"))
        return idx, (leader, replicas)

    def topic():
        err, name, _internal = r.take(">h"), r.string(), r.take(">?")
        return name, (err, dict(r.array(partition)))
    return set(brokers), dict(r.array(topic))


def wait_until(what, pred, timeout=20):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def topic_dirs(cluster, topic):
    """Each node's live partition directories of `topic` (Kafka renames a
    deleted partition's directory before removing it)."""
    out = {}
    for i, b in cluster.nodes.items():
        out[i] = sorted(p.name for p in b.data_dir.iterdir()
                        if p.is_dir() and p.name.rsplit("-", 1)[0] == topic)
    return out


def test_topic_created_on_one_node_is_listed_and_described_on_the_others(admin_cluster):
    c = admin_cluster
    topic = unique_topic("cadmin-rf1")
    # Replication factor 1: two of the nodes host none of it, and still list it.
    res = raw_create_topics_v4(c.nodes[1].bootstrap, [(topic, 2, 1)])
    assert res == {topic: (0, None)}, res
    for i in (2, 3):
        brokers, topics = wait_until(
            f"{topic} listed by node {i}",
            lambda: (lambda md: md if topic in md[1] else None)(raw_metadata_v1(c.nodes[i].bootstrap)))
        assert brokers == {1, 2, 3}
        err, parts = topics[topic]
        assert err == 0 and sorted(parts) == [0, 1], topics[topic]
        assert all(leader in (1, 2, 3) and reps == [leader] for leader, reps in parts.values())
    from confluent_kafka import TopicCollection
    ids = set()
    for i in (1, 2, 3):
        a = ck_admin(c.nodes[i].bootstrap)
        d = a.describe_topics(TopicCollection([topic]))[topic].result(timeout=15)
        assert len(d.partitions) == 2
        ids.add(str(d.topic_id))
    assert len(ids) == 1, ids


def test_delete_through_node2_removes_the_logs_on_every_node(admin_cluster):
    c = admin_cluster
    topic = unique_topic("cadmin-del")
    assert raw_create_topics_v4(c.nodes[1].bootstrap, [(topic, 2, 3)]) == {topic: (0, None)}
    c.wait_isr(topic, 3)
    ck_produce(c.bootstrap, topic, make_messages(20, "del", 2))
    wait_until("logs on every node", lambda: all(len(d) == 2 for d in topic_dirs(c, topic).values()))
    assert raw_delete_topics_v3(c.nodes[2].bootstrap, [topic]) == {topic: 0}
    wait_until("logs gone on every node",
               lambda: all(not d for d in topic_dirs(c, topic).values()) or None)
    for i in (1, 2, 3):
        wait_until(f"{topic} gone from node {i}",
                   lambda: topic not in raw_metadata_v1(c.nodes[i].bootstrap)[1])
    # Deleting it again: Kafka's UNKNOWN_TOPIC_OR_PARTITION.
    assert raw_delete_topics_v3(c.nodes[3].bootstrap, [topic]) == {topic: 3}


def test_create_partitions_through_node3(admin_cluster):
    c = admin_cluster
    topic = unique_topic("cadmin-grow")
    assert raw_create_topics_v4(c.nodes[1].bootstrap, [(topic, 1, 3)]) == {topic: (0, None)}
    c.wait_isr(topic, 3)
    # validateOnly changes nothing.
    assert raw_create_partitions_v1(c.nodes[3].bootstrap, topic, 3, validate_only=True) == \
        {topic: (0, None)}
    assert raw_create_partitions_v1(c.nodes[3].bootstrap, topic, 4) == {topic: (0, None)}
    md = c.wait_for(f"{topic} with 4 partitions",
                    lambda md: topic in md.topics and len(md.topics[topic].partitions) == 4)
    assert all(sorted(p.replicas) == [1, 2, 3] for p in md.topics[topic].partitions.values())
    # Fewer partitions than it has: Kafka's INVALID_PARTITIONS.
    err, msg = raw_create_partitions_v1(c.nodes[2].bootstrap, topic, 2)[topic]
    assert err == 37, (err, msg)
    assert msg == f"The topic {topic} currently has 4 partition(s); 2 would not be an increase.", msg
    c.wait_isr(topic, 3)
    msgs = make_messages(40, "grow", 4)
    ck_produce(c.bootstrap, topic, msgs)
    counts = {p: sum(1 for m in msgs if m.partition == p) for p in range(4)}
    verify(ck_consume(c.bootstrap, topic, 4, until_counts=counts, timeout=30), msgs)


def test_auto_creation_goes_through_the_controller(admin_cluster):
    c = admin_cluster
    topic = unique_topic("cadmin-auto")
    # librdkafka's producer asks Metadata with allow_auto_topic_creation.
    msgs = make_messages(30, "auto", 3)
    ck_produce(c.bootstrap, topic, msgs)
    md = c.wait_isr(topic, 3)
    parts = md.topics[topic].partitions
    # num.partitions=3 and default.replication.factor=3 of the cluster.
    assert sorted(parts) == [0, 1, 2] and all(sorted(p.replicas) == [1, 2, 3]
                                              for p in parts.values()), describe(md)
    counts = {p: sum(1 for m in msgs if m.partition == p) for p in range(3)}
    verify(ck_consume(c.bootstrap, topic, 3, until_counts=counts, timeout=30), msgs)


def test_bad_topic_requests_get_kafkas_errors(admin_cluster):
    c = admin_cluster
    topic = unique_topic("cadmin-bad")
    err, msg = raw_create_topics_v4(c.nodes[2].bootstrap, [(topic, 1, 4)])[topic]
    assert err == 38, (err, msg)  # INVALID_REPLICATION_FACTOR
    assert msg == ("Unable to replicate the partition 4 time(s): The target replication factor "
                   "of 4 cannot be reached because only 3 broker(s) are registered."), msg
    # validateOnly: checked, not created.
    assert raw_create_topics_v4(c.nodes[3].bootstrap, [(topic, 1, 3)], validate_only=True) == \
        {topic: (0, None)}
    assert topic not in raw_metadata_v1(c.nodes[1].bootstrap)[1]
    assert raw_create_topics_v4(c.nodes[3].bootstrap, [(topic, 1, 3)]) == {topic: (0, None)}
    err, msg = raw_create_topics_v4(c.nodes[1].bootstrap, [(topic, 1, 3)])[topic]
    assert err == 36, (err, msg)  # TOPIC_ALREADY_EXISTS
    assert msg == f"Topic '{topic}' already exists.", msg
    dup = unique_topic("cadmin-dup")
    res = raw_create_topics_v4(c.nodes[1].bootstrap, [(dup, 1, 1), (dup, 1, 1)])
    assert res == {dup: (42, "Duplicate topic name.")}, res
    res = raw_create_topics_v4(c.nodes[1].bootstrap, [("__cluster_metadata", 1, 1)])
    assert res == {"__cluster_metadata": (
        42, "Creation of internal topic __cluster_metadata is prohibited.")}, res
    gone = unique_topic("cadmin-none")
    assert raw_delete_topics_v3(c.nodes[1].bootstrap, [gone]) == {gone: 3}
