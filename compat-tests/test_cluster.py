"""kastle as a cluster (issue 17): three combined nodes on loopback with
replication factor 3 and ``min.insync.replicas=2``, driven by librdkafka
(confluent-kafka). Failover is a SIGKILL; the history check is
compat_lib.verify over everything the producer had acknowledged: nothing
lost, nothing duplicated, offsets contiguous and in produce order."""
import threading
import time

import pytest

from cluster_lib import KastleCluster, describe
from compat_lib import ck_consume, ck_create_topic, ck_producer, make_messages, unique_topic, verify

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


def test_acknowledged_writes_survive_killing_a_leader(cluster):
    topic = unique_topic("cluster-failover")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    cluster.wait_isr(topic, 3)
    msgs = make_messages(3000, "failover", 3)
    acked, errors = {}, []
    prod = ck_producer(cluster.bootstrap, **{"enable.idempotence": True,
                                             "max.in.flight.requests.per.connection": 5,
                                             "message.timeout.ms": 120_000})

    def produce():
        for m in msgs:
            def cb(err, msg, i=m.idx):
                if err is not None:
                    errors.append((i, str(err)))
                else:
                    acked[i] = (msg.partition(), msg.offset())
            while True:
                try:
                    prod.produce(topic, value=m.value, key=m.key, partition=m.partition,
                                 timestamp=m.timestamp, headers=m.headers, on_delivery=cb)
                    break
                except BufferError:
                    prod.poll(0.05)
            prod.poll(0)
            time.sleep(0.001)
        prod.flush(150)

    t = threading.Thread(target=produce)
    t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 800 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acked) >= 800, f"only {len(acked)} acked before the kill; errors {errors[:5]}"
    victim = cluster.partitions(topic)[0].leader
    cluster.kill(victim)
    t.join(200)
    assert not t.is_alive(), "producer did not finish"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(acked) == len(msgs)

    cluster.start([victim])
    cluster.wait_brokers({1, 2, 3})
    md = cluster.wait_isr(topic, 3, timeout=90)
    counts = {p: sum(1 for m in msgs if m.partition == p) for p in range(3)}
    recs = ck_consume(cluster.bootstrap, topic, 3, until_counts=counts, timeout=90)
    verify(recs, msgs)
    # Every replica has the same log: read each partition from its new
    # leader after moving leadership is the next step; here the ISR is full.
    assert all(len(p.isrs) == 3 for p in md.topics[topic].partitions.values()), describe(md)
