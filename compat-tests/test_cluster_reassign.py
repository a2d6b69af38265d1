"""Partition reassignment in a kastle cluster (issue 17), driven by Kafka's own
``kafka-reassign-partitions`` (the 4.4 tool from Maven Central): three
combined nodes plus a fourth, broker-only node added to the running cluster.
A partition's leader replica moves onto the new broker while an idempotent
acks=all producer runs; a reassignment that cannot finish is listed as in
progress and cancelled back to its original replicas."""
import json
import struct
import time

import pytest

import jvm_lib
from cluster_lib import describe, module_cluster
from compat_lib import ck_create_topic, raw_request, unique_topic
from test_cluster_failover import check_history, start_load

pytestmark = [pytest.mark.timeout(300), pytest.mark.compat("kafka-tools", "admin")]

TOOL = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from module_cluster(tmp_path_factory)


def ensure_fourth_broker(cluster):
    """Adds broker 4 to the running cluster (once per module)."""
    if 4 not in cluster.nodes:
        cluster.add_broker(4)
    if not cluster.nodes[4].alive():
        cluster.start([4])
    cluster.wait_brokers({1, 2, 3, 4})


def _uvarint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def raw_alter_reassignment(bootstrap, topic, partition, replicas):
    """AlterPartitionReassignments v0 (flexible) for one partition, sent as is:
    Kafka's tool refuses a target naming a broker that is not alive, the
    controller only one that is not registered. Returns the partition's error
    code (``replicas=None`` cancels)."""
    name = topic.encode()
    body = b"\x00"  # the flexible request header's tagged fields
    body += struct.pack(">i", 30000) + _uvarint(2) + _uvarint(len(name) + 1) + name
    body += _uvarint(2) + struct.pack(">i", partition)
    if replicas is None:  # cancel
        body += _uvarint(0)
    else:
        body += _uvarint(len(replicas) + 1) + b"".join(struct.pack(">i", r) for r in replicas)
    body += b"\x00\x00\x00"
    r = raw_request(bootstrap, 45, 0, body)
    # header tags, throttle, error, message (null), one topic, its name, one partition
    pos = 1 + 4
    top_error = struct.unpack_from(">h", r, pos)[0]
    assert top_error == 0, f"request refused: {top_error}"
    pos += 2 + 1 + 1
    pos += 1 + len(name) + 1
    return struct.unpack_from(">h", r, pos + 4)[0]


def reassign(cluster, tmp_path, action, plan):
    f = tmp_path / f"plan-{time.monotonic_ns()}.json"
    f.write_text(json.dumps({"version": 1, "partitions": plan}))
    p = jvm_lib.jvm_run("kafka4", TOOL, ["--bootstrap-server", cluster.bootstrap,
                                         "--reassignment-json-file", str(f), action],
                        timeout=120, jvm_opts=("-Xmx256m",), check=False)
    return p.returncode, p.stdout + p.stderr


def test_a_leader_replica_moves_onto_a_new_broker_under_load(cluster, tmp_path):
    topic, prod = start_load(cluster, "reassign", 6000)
    prod.wait_acked(1000)
    ensure_fourth_broker(cluster)
    parts = cluster.partitions(topic)
    p0, p1 = parts[0], parts[1]
    # Partition 0's leader replica goes to broker 4 (which becomes the
    # preferred leader); partition 1's replicas only change order.
    target0 = [4] + [r for r in p0.replicas if r != p0.leader]
    target1 = list(reversed(p1.replicas))
    plan = [{"topic": topic, "partition": 0, "replicas": target0},
            {"topic": topic, "partition": 1, "replicas": target1}]
    rc, out = reassign(cluster, tmp_path, "--execute", plan)
    assert rc == 0, out
    assert "Successfully started partition reassignments" in out, out

    deadline = time.monotonic() + 90
    while True:
        rc, out = reassign(cluster, tmp_path, "--verify", plan)
        done = out.count("is completed")
        if rc == 0 and done == 2:
            break
        assert time.monotonic() < deadline, f"reassignment did not complete:\n{out}"
        time.sleep(1)

    def moved(md):
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return False
        a, b = t.partitions[0], t.partitions[1]
        return (a.replicas == target0 and sorted(a.isrs) == sorted(target0) and a.leader in target0
                and b.replicas == target1)
    md = cluster.wait_for("the new assignment in Metadata", moved, timeout=30)
    # Leadership left the removed replica; the producer saw only retriable errors.
    assert md.topics[topic].partitions[0].leader != p0.leader, describe(md)
    prod.finish()
    check_history(cluster, topic, prod)


def test_an_unfinishable_reassignment_is_listed_and_cancelled(cluster, tmp_path):
    ensure_fourth_broker(cluster)
    topic = unique_topic("cluster-cancel")
    ck_create_topic(cluster.bootstrap, topic, partitions=1, rf=3)
    cluster.wait_isr(topic, 3)
    original = cluster.partitions(topic)[0].replicas
    if 4 in original:
        # Placement may have used broker 4: move the partition off it first.
        original = [r for r in (1, 2, 3)]
        rc, out = reassign(cluster, tmp_path, "--execute",
                           [{"topic": topic, "partition": 0, "replicas": original}])
        assert rc == 0, out
        cluster.wait_for("the partition off broker 4",
                         lambda md: md.topics[topic].partitions[0].replicas == original
                         and len(md.topics[topic].partitions[0].isrs) == 3, timeout=30)
    # Broker 4 stops (it stays registered, fenced): a move onto it cannot
    # complete, since it never joins the ISR. Kafka's tool would refuse to
    # name a broker that is down, so the request goes raw.
    cluster.nodes[4].stop()
    cluster.wait_brokers({1, 2, 3})
    target = [original[0], original[1], 4]
    plan = [{"topic": topic, "partition": 0, "replicas": target}]
    assert raw_alter_reassignment(cluster.nodes[1].bootstrap, topic, 0, target) == 0
    assert raw_alter_reassignment(cluster.nodes[1].bootstrap, topic, 0, [1, 2, 77]) == 39, \
        "INVALID_REPLICA_ASSIGNMENT for a broker that was never registered"
    rc, out = reassign(cluster, tmp_path, "--verify", plan)
    assert "is still in progress" in out, out
    p = jvm_lib.jvm_run("kafka4", TOOL, ["--bootstrap-server", cluster.bootstrap, "--list"],
                        timeout=120, jvm_opts=("-Xmx256m",), check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{topic}-0" in p.stdout, p.stdout

    # Cancelled raw too: the tool's --cancel then clears throttles on every
    # broker it names, and waits out its admin timeout for the stopped one
    # (as it would against Kafka).
    assert raw_alter_reassignment(cluster.nodes[2].bootstrap, topic, 0, None) == 0
    assert raw_alter_reassignment(cluster.nodes[2].bootstrap, topic, 0, None) == 85, \
        "NO_REASSIGNMENT_IN_PROGRESS once cancelled"
    md = cluster.wait_for(
        "the original replicas back",
        lambda md: topic in md.topics and md.topics[topic].partitions[0].replicas == original
        and len(md.topics[topic].partitions[0].isrs) == 3, timeout=30)
    assert 4 not in md.topics[topic].partitions[0].replicas, describe(md)
    p = jvm_lib.jvm_run("kafka4", TOOL, ["--bootstrap-server", cluster.bootstrap, "--list"],
                        timeout=120, jvm_opts=("-Xmx256m",), check=False)
    assert p.returncode == 0 and f"{topic}-0" not in p.stdout, p.stdout + p.stderr
    cluster.start([4])
    cluster.wait_brokers({1, 2, 3, 4})


def _read_partition(bootstrap, topic, partition, want, timeout=30):
    """The values of ``partition`` from its start, as a consumer of the
    current leader reads them."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    from compat_lib import ck_consumer
    c = ck_consumer(bootstrap, **{"group.id": unique_topic("removed-g")})
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value().decode())
    finally:
        c.close()
    return got


def test_a_removed_replica_s_directory_is_deleted_and_stays_gone(cluster, tmp_path):
    """Kafka's ``LogManager.asyncDelete``: a broker that leaves a partition's
    replicas (while keeping another partition of the topic) deletes that
    partition's directory; the data stays readable from the new replicas, and
    a restart does not bring the directory back."""
    from compat_lib import ck_producer
    ensure_fourth_broker(cluster)
    topic = unique_topic("cluster-removed")
    ck_create_topic(cluster.bootstrap, topic, partitions=2, rf=3)
    cluster.wait_isr(topic, 3)
    values = [f"v{i}" for i in range(200)]
    prod = ck_producer(cluster.bootstrap)
    for v in values:
        prod.produce(topic, value=v, partition=0)
    assert prod.flush(30) == 0
    parts = cluster.partitions(topic)
    old0, old1 = parts[0].replicas, parts[1].replicas
    # A broker that keeps partition 1 loses partition 0 to the one broker
    # that does not host it.
    victim = sorted(set(old0) & set(old1))[0]
    newcomer = ({1, 2, 3, 4} - set(old0)).pop()
    target = [newcomer if r == victim else r for r in old0]
    plan = [{"topic": topic, "partition": 0, "replicas": target}]
    d0 = cluster.nodes[victim].data_dir / f"{topic}-0"
    d1 = cluster.nodes[victim].data_dir / f"{topic}-1"
    assert d0.is_dir() and d1.is_dir()
    rc, out = reassign(cluster, tmp_path, "--execute", plan)
    assert rc == 0, out
    cluster.wait_for("the new replicas of partition 0, all in sync",
                     lambda md: md.topics[topic].partitions[0].replicas == target
                     and sorted(md.topics[topic].partitions[0].isrs) == sorted(target),
                     timeout=90)

    def leftovers():
        return [p.name for p in cluster.nodes[victim].data_dir.iterdir()
                if p.name == f"{topic}-0" or p.name.startswith(f"{topic}-0.")]
    deadline = time.monotonic() + 30
    while leftovers():
        assert time.monotonic() < deadline, f"still on broker {victim}: {leftovers()}"
        time.sleep(0.2)
    assert d1.is_dir(), "the topic's other partition stays"
    assert _read_partition(cluster.bootstrap, topic, 0, len(values)) == values

    # A restart does not resurrect the replica.
    cluster.nodes[victim].stop()
    cluster.start([victim])
    cluster.wait_brokers({1, 2, 3, 4})
    cluster.wait_isr(topic, 3)
    assert not leftovers(), leftovers()
    assert d1.is_dir()
    md = cluster.metadata(topic)
    assert md.topics[topic].partitions[0].replicas == target, describe(md)
    assert _read_partition(cluster.bootstrap, topic, 0, len(values)) == values
