"""Leader elections in a kastle cluster (issue 17): ElectLeaders sent to any
broker is forwarded to the active controller, which moves leadership back to
the preferred replica (the first of the assignment) as Kafka's
``kafka-leader-election --election-type preferred`` does; with
``auto.leader.rebalance.enable`` the controller does it by itself every
``leader.imbalance.check.interval.seconds``. The client is librdkafka's
AdminClient (``elect_leaders``), pointed at one broker only."""
import pytest
from confluent_kafka import ElectionType, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from cluster_lib import KastleCluster
from compat_lib import ck_create_topic, unique_topic

pytestmark = pytest.mark.timeout(300)


def admin(node):
    return AdminClient({"bootstrap.servers": node.bootstrap, "client.id": "elect-test"})


def elect(node, partitions):
    a = admin(node)  # kept alive until the answer: the future dies with it
    return a.elect_leaders(ElectionType.PREFERRED, partitions).result(timeout=40)


def error_of(result, topic, partition):
    e = result[TopicPartition(topic, partition)]
    assert isinstance(e, KafkaError), result
    return e.code()


def not_preferred(cluster, topic):
    """SIGKILLs the preferred leader of partition 0 and restarts it once
    another replica leads: partition 0 (and every partition that node
    preferred) is then led by a replica that is not the preferred one."""
    cluster.wait_isr(topic, 3)
    victim = cluster.partitions(topic)[0].replicas[0]
    cluster.kill(victim)
    cluster.wait_for("partition 0 led elsewhere", lambda md: md.topics[topic].partitions[0].leader
                     not in (-1, victim))
    cluster.start([victim])
    cluster.wait_isr(topic, 3, timeout=90)
    return victim


def led_by_preferred(topic):
    return lambda md: all(p.leader == p.replicas[0] for p in md.topics[topic].partitions.values())


def test_preferred_election_is_forwarded_to_the_controller(broker_factory):
    cluster = KastleCluster(broker_factory, nodes=3,
                            overrides={"auto.leader.rebalance.enable": "false"}).start()
    try:
        cluster.wait_brokers({1, 2, 3})
        topic = unique_topic("elect")
        ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
        victim = not_preferred(cluster, topic)
        p0 = cluster.partitions(topic)[0]
        assert p0.leader != victim, "the rebalance is off: leadership must not move back alone"
        # Through a broker other than the preferred one.
        via = cluster.nodes[next(i for i in cluster.nodes if i != victim)]
        result = elect(via, [TopicPartition(topic, 0)])
        assert result == {TopicPartition(topic, 0): None}, result
        cluster.wait_for("partition 0 led by its preferred replica",
                         lambda md: md.topics[topic].partitions[0].leader == victim, timeout=30)
        # Again: nothing to do, as Kafka answers; an unknown partition is
        # refused by the controller (librdkafka gives per-partition errors
        # as the values of the result).
        assert error_of(elect(via, [TopicPartition(topic, 0)]), topic, 0) == \
            KafkaError.ELECTION_NOT_NEEDED
        assert error_of(elect(via, [TopicPartition(topic, 7)]), topic, 7) == \
            KafkaError.UNKNOWN_TOPIC_OR_PART
        # Every partition (null list): the others move back too.
        elect(cluster.nodes[victim], None)
        cluster.wait_for("every partition led by its preferred replica",
                         led_by_preferred(topic), timeout=30)
    finally:
        cluster.stop()


def test_auto_leader_rebalance_moves_leadership_back(broker_factory):
    cluster = KastleCluster(broker_factory, nodes=3, overrides={
        "auto.leader.rebalance.enable": "true",
        "leader.imbalance.check.interval.seconds": "1",
    }).start()
    try:
        cluster.wait_brokers({1, 2, 3})
        topic = unique_topic("rebalance")
        ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
        not_preferred(cluster, topic)
        cluster.wait_for("every partition led by its preferred replica",
                         led_by_preferred(topic), timeout=30)
    finally:
        cluster.stop()
