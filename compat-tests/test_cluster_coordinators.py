"""kastle as a cluster (issue 17): the group coordinator follows the
leadership of ``__consumer_offsets``. Three combined nodes (one module-scoped
cluster): the first FindCoordinator has the controller create the topic
(RF 3), then every node names the leader of the group's partition (checked
against Metadata); the other nodes answer NOT_COORDINATOR; a group commits
offsets (acks=all to the ISR); the coordinator's node is SIGKILLed; the group
finds the new leader, its committed offsets survived, and consumption
resumes without re-reading committed records."""
import struct
import time

import pytest

from cluster_lib import describe, module_cluster
from compat_lib import _kstr, ck_consumer, ck_create_topic, ck_produce, make_messages, raw_request, unique_topic

pytestmark = pytest.mark.timeout(240)

OFFSETS_PARTITIONS = 6
NOT_COORDINATOR = 16
COORDINATOR_NOT_AVAILABLE = 15
COORDINATOR_LOAD_IN_PROGRESS = 14


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Killed, not stopped: nothing is checked after the tests.
    yield from module_cluster(
        tmp_path_factory, "coord-node", graceful=False,
        overrides={"offsets.topic.num.partitions": str(OFFSETS_PARTITIONS)})


@pytest.fixture(autouse=True)
def _logs_on_failure(request, cluster):
    # conftest attaches these brokers' log tails to a failed test's report.
    request.node._kastle_brokers = list(cluster.nodes.values())


def java_partition_for(key: str, n: int) -> int:
    """Kafka's ``Utils.abs(key.hashCode()) % n`` with Java's String.hashCode."""
    h = 0
    units = key.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (h * 31 + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % n


def find_coordinator(bootstrap: str, group: str):
    """FindCoordinator v1 for a group: (error, node id, port)."""
    body = _kstr(group) + struct.pack(">b", 0)
    r = raw_request(bootstrap, 10, 1, body)
    _throttle, err = struct.unpack(">ih", r[:6])
    pos = 6
    (mlen,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + max(mlen, 0)
    (node,) = struct.unpack(">i", r[pos:pos + 4])
    pos += 4
    (hlen,) = struct.unpack(">h", r[pos:pos + 2])
    pos += 2 + hlen
    (port,) = struct.unpack(">i", r[pos:pos + 4])
    return err, node, port


def offset_fetch_error(bootstrap: str, group: str) -> int:
    """OffsetFetch v2 (every partition): its top-level error."""
    body = _kstr(group) + struct.pack(">i", -1)
    r = raw_request(bootstrap, 9, 2, body)
    assert struct.unpack(">i", r[:4])[0] == 0, "no topics expected with an error"
    return struct.unpack(">h", r[4:6])[0]


def wait_coordinator(cluster, group, via, timeout=60, not_node=None):
    """Polls FindCoordinator on node ``via`` until it names a coordinator (other
    than ``not_node``); returns (node id, port)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = find_coordinator(cluster.nodes[via].bootstrap, group)
            err, node, port = last
            if err == 0 and node != not_node:
                return node, port
            assert err in (0, COORDINATOR_NOT_AVAILABLE), last
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"no coordinator for {group} via node {via}: {last}")


def offsets_leader(cluster, group):
    md = cluster.metadata("__consumer_offsets")
    t = md.topics["__consumer_offsets"]
    assert t.error is None and len(t.partitions) == OFFSETS_PARTITIONS, describe(md)
    p = t.partitions[java_partition_for(group, OFFSETS_PARTITIONS)]
    return p.leader, sorted(p.replicas), sorted(p.isrs)


def consume_n(bootstrap, topic, group, n, timeout=60):
    """Subscribes as ``group``, reads ``n`` records, commits them synchronously
    and leaves. Returns [(partition, offset)]."""
    c = ck_consumer(bootstrap, **{"group.id": group, "enable.partition.eof": False,
                                  "session.timeout.ms": 6000,
                                  "heartbeat.interval.ms": 500})
    got = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(got) < n:
            assert time.monotonic() < deadline, f"{group}: {len(got)}/{n} records"
            for m in c.consume(num_messages=n - len(got), timeout=0.5):
                if m.error() is None:
                    got.append((m.partition(), m.offset()))
        from confluent_kafka import TopicPartition
        ends = {}
        for p, o in got:
            ends[p] = max(ends.get(p, 0), o + 1)
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in sorted(ends.items())],
                 asynchronous=False)
        return got
    finally:
        c.close()


def test_find_coordinator_names_the_partition_leader(cluster):
    group = "coord-leader-probe"
    node, port = wait_coordinator(cluster, group, via=1)
    leader, replicas, _ = offsets_leader(cluster, group)
    assert replicas == [1, 2, 3]
    assert node == leader and port == cluster.client_ports[leader]
    # Every node gives the same answer; the others are not its coordinator.
    for i in (1, 2, 3):
        assert wait_coordinator(cluster, group, via=i) == (node, port)
    deadline = time.monotonic() + 30
    while (err := offset_fetch_error(cluster.nodes[node].bootstrap, group)) == COORDINATOR_LOAD_IN_PROGRESS:
        assert time.monotonic() < deadline, "still loading"
        time.sleep(0.2)
    assert err == 0
    for i in {1, 2, 3} - {node}:
        assert offset_fetch_error(cluster.nodes[i].bootstrap, group) == NOT_COORDINATOR


def test_committed_offsets_survive_the_coordinators_crash(cluster):
    topic = unique_topic("coord-failover")
    group = "coord-failover-group"
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    cluster.wait_isr(topic, 3)
    msgs = make_messages(300, "coord", 3)
    ck_produce(cluster.bootstrap, topic, msgs)
    coordinator, _ = wait_coordinator(cluster, group, via=1)
    cluster.wait_for("__consumer_offsets ISR of 3",
                     lambda md: len(offsets_leader(cluster, group)[2]) == 3, timeout=30)
    first = consume_n(cluster.bootstrap, topic, group, 120)
    committed = {}
    for p, o in first:
        committed[p] = max(committed.get(p, 0), o + 1)

    cluster.kill(coordinator)
    survivor = next(i for i in (1, 2, 3) if i != coordinator)
    new, _ = wait_coordinator(cluster, group, via=survivor, not_node=coordinator)
    assert new != coordinator and new == offsets_leader(cluster, group)[0]

    rest = consume_n(cluster.bootstrap, topic, group, 300 - len(first))
    assert not set(first) & set(rest), "committed records were read again"
    assert len(set(first) | set(rest)) == 300
    # Each partition resumed exactly at its committed offset.
    for p, o in committed.items():
        resumed = min((off for q, off in rest if q == p), default=None)
        assert resumed in (None, o), f"partition {p} resumed at {resumed}, committed {o}"
