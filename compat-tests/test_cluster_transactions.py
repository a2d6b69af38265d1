"""kastle as a cluster (issue 17): the transaction coordinator follows the
leadership of ``__transaction_state``. Three combined nodes (one
module-scoped cluster): FindCoordinator(TRANSACTION) names the leader of the
transactional id's partition on every node; a confluent-kafka transactional
producer commits and aborts transactions spanning partitions led by all
three brokers (markers cross brokers with WriteTxnMarkers); the
coordinator's node is SIGKILLed with a transaction open; a new producer with
the same transactional.id fences the old one (its open transaction is
aborted on the partitions' new leaders) and commits; a read_committed
consumer reads exactly the committed records, once each."""
import struct
import time

import pytest

from cluster_lib import describe, module_cluster
from compat_lib import _kstr, ck_create_topic, raw_request, unique_topic
from test_cluster_coordinators import java_partition_for

pytestmark = pytest.mark.timeout(240)

TXN_PARTITIONS = 6
COORDINATOR_NOT_AVAILABLE = 15
TXN_ID = "cluster-txn-producer"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from module_cluster(
        tmp_path_factory, "txn-node", graceful=False,
        overrides={"transaction.state.log.num.partitions": str(TXN_PARTITIONS),
                   "offsets.topic.num.partitions": "3"})


@pytest.fixture(autouse=True)
def _logs_on_failure(request, cluster):
    request.node._kastle_brokers = list(cluster.nodes.values())


def find_txn_coordinator(bootstrap: str, txn_id: str):
    """FindCoordinator v1 for a transactional id: (error, node id, port)."""
    body = _kstr(txn_id) + struct.pack(">b", 1)
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


def wait_txn_coordinator(cluster, txn_id, via, timeout=60, not_node=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = find_txn_coordinator(cluster.nodes[via].bootstrap, txn_id)
            err, node, port = last
            if err == 0 and node != not_node:
                return node, port
            assert err in (0, COORDINATOR_NOT_AVAILABLE), last
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"no transaction coordinator for {txn_id} via node {via}: {last}")


def txn_state_leader(cluster, txn_id):
    md = cluster.metadata("__transaction_state")
    t = md.topics["__transaction_state"]
    assert t.error is None and len(t.partitions) == TXN_PARTITIONS, describe(md)
    p = t.partitions[java_partition_for(txn_id, TXN_PARTITIONS)]
    return p.leader, sorted(p.replicas)


def txn_producer(cluster, **kw):
    from confluent_kafka import Producer
    cfg = {"bootstrap.servers": cluster.bootstrap, "transactional.id": TXN_ID,
           "transaction.timeout.ms": 60_000, "linger.ms": 5,
           "message.timeout.ms": 60_000, "client.id": "cluster-txn"}
    cfg.update(kw)
    return Producer(cfg)


def send_txn(p, topic, prefix, n, partitions, commit):
    p.begin_transaction()
    for i in range(n):
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=i % partitions)
    p.flush(30)
    if commit is True:
        p.commit_transaction(60)
    elif commit is False:
        p.abort_transaction(60)


def read_committed(cluster, topic, partitions, timeout=60):
    """Every record a read_committed consumer sees, up to the end of each
    partition."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique_topic("rc"),
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True,
                  "fetch.wait.max.ms": 200})
    got = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_end = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"read {len(got)} records, at end of {at_end}"
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error() is None:
                    got.append(m.value().decode())
                    at_end.discard(m.partition())
                elif m.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(m.partition())
    finally:
        c.close()
    return got


def test_find_coordinator_names_the_txn_state_leader(cluster):
    node, port = wait_txn_coordinator(cluster, TXN_ID, via=1)
    leader, replicas = txn_state_leader(cluster, TXN_ID)
    assert replicas == [1, 2, 3]
    assert node == leader and port == cluster.client_ports[leader]
    for i in (1, 2, 3):
        assert wait_txn_coordinator(cluster, TXN_ID, via=i) == (node, port)


def test_transactions_across_brokers_survive_the_coordinators_crash(cluster):
    from confluent_kafka import KafkaException
    topic = unique_topic("cluster-txn")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    cluster.wait_isr(topic, 3)
    leaders = {p.leader for p in cluster.partitions(topic).values()}
    assert leaders == {1, 2, 3}, f"partitions should be led by every broker: {leaders}"
    coordinator, _ = wait_txn_coordinator(cluster, TXN_ID, via=1)
    cluster.wait_isr("__transaction_state", 3)

    p = txn_producer(cluster)
    p.init_transactions(60)
    send_txn(p, topic, "c1", 30, 3, commit=True)
    send_txn(p, topic, "a1", 30, 3, commit=False)
    send_txn(p, topic, "c2", 30, 3, commit=True)
    # Open when its coordinator dies: it must never become visible.
    send_txn(p, topic, "open", 30, 3, commit=None)

    cluster.kill(coordinator)
    survivor = next(i for i in (1, 2, 3) if i != coordinator)
    new, _ = wait_txn_coordinator(cluster, TXN_ID, via=survivor, not_node=coordinator)
    assert new == txn_state_leader(cluster, TXN_ID)[0]

    # A new incarnation fences the old producer; its open transaction is
    # aborted (markers to the partitions' new leaders), then it commits.
    p2 = txn_producer(cluster, **{"client.id": "cluster-txn-2"})
    p2.init_transactions(60)
    send_txn(p2, topic, "c3", 30, 3, commit=True)
    with pytest.raises(KafkaException):
        p.commit_transaction(30)

    got = read_committed(cluster, topic, 3)
    want = [f"{x}-{i}" for x in ("c1", "c2", "c3") for i in range(30)]
    assert len(got) == len(set(got)), "a committed record was duplicated"
    assert sorted(got) == sorted(want)
