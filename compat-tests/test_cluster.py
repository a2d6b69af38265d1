"""kastle as a cluster (issue 17): three combined nodes on loopback with
replication factor 3 and ``min.insync.replicas=2``, driven by librdkafka
(confluent-kafka): the topic is created through a broker (forwarded to the
active controller), placed on all three with leaders spread, its ISR full,
and records produced with acks=all read back from the leaders."""
import pytest

from cluster_lib import KastleCluster, describe
from compat_lib import ck_consume, ck_create_topic, ck_produce, make_messages, unique_topic, verify

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
