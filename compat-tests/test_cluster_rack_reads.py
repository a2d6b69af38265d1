"""Fetching from the closest replica (KIP-392, issue 17) with a real client:
three combined nodes, each in its own ``broker.rack``, with Kafka's
``RackAwareReplicaSelector``. A librdkafka consumer that sets ``client.rack``
to a follower's rack is pointed there by the leader and reads every record
from that follower: the follower's Prometheus ``kastle_topic_bytes_out_total``
for the topic grows (a follower sends records only to consumers), the other
follower's stays at zero."""
import re
import urllib.request

import pytest

from cluster_lib import KastleCluster
from compat_lib import ck_consume, ck_create_topic, ck_produce, make_messages, unique_topic, verify
from conftest import free_port

pytestmark = pytest.mark.timeout(240)

SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


def bytes_out(port, topic):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    m = re.search(r'^kastle_topic_bytes_out_total\{topic="%s"\} (\d+)' % re.escape(topic), body, re.M)
    return int(m.group(1)) if m else 0


def test_a_consumer_reads_from_the_follower_in_its_rack(broker_factory):
    metrics = {i: free_port() for i in (1, 2, 3)}
    cluster = KastleCluster(broker_factory, nodes=3, overrides=lambda i: {
        "broker.rack": f"rack-{i}",
        "replica.selector.class": SELECTOR,
        "metrics.prometheus.listener": f"127.0.0.1:{metrics[i]}",
    }).start()
    try:
        cluster.wait_brokers({1, 2, 3})
        topic = unique_topic("rack-reads")
        ck_create_topic(cluster.bootstrap, topic, partitions=1, rf=3)
        md = cluster.wait_isr(topic, 3)
        leader = md.topics[topic].partitions[0].leader
        near, other = [i for i in (1, 2, 3) if i != leader]
        msgs = make_messages(2000, "rack", 1)
        ck_produce(cluster.bootstrap, topic, msgs)
        assert bytes_out(metrics[near], topic) == 0
        got = ck_consume(cluster.bootstrap, topic, 1, until_counts={0: len(msgs)}, timeout=90,
                         **{"client.rack": f"rack-{near}", "group.id": f"g-{topic}"})
        verify(got, msgs)
        served = bytes_out(metrics[near], topic)
        assert served >= sum(len(m.value or b"") for m in msgs), \
            f"the follower in rack-{near} sent {served} bytes of records"
        assert bytes_out(metrics[other], topic) == 0, "the other follower served nobody"
    finally:
        cluster.stop()
