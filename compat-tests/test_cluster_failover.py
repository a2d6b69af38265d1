"""Failover of a kastle cluster (issue 17): three combined nodes on loopback,
replication factor 3 and ``min.insync.replicas=2``, an idempotent acks=all
librdkafka producer running while a node is SIGKILLed. The history check is
compat_lib.verify over everything the producer had acknowledged: nothing
lost, nothing duplicated, offsets contiguous and in produce order."""
import threading
import time

import pytest

from cluster_lib import KastleCluster, describe
from compat_lib import (ck_consume, ck_create_topic, ck_producer, make_messages, rec_idx,
                        unique_topic, verify)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def cluster(broker_factory):
    c = KastleCluster(broker_factory, nodes=3).start()
    c.wait_brokers({1, 2, 3})
    yield c
    c.stop()


class BackgroundProducer:
    """Produces ``msgs`` in order from a thread, recording each delivery;
    ``cfg``: more librdkafka settings."""

    def __init__(self, bootstrap, topic, msgs, **cfg):
        self.topic, self.msgs = topic, msgs
        self.acked, self.errors = {}, []
        self.prod = ck_producer(bootstrap, **{"enable.idempotence": True,
                                              "max.in.flight.requests.per.connection": 5,
                                              "message.timeout.ms": 120_000, **cfg})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for m in self.msgs:
            def cb(err, msg, i=m.idx):
                if err is not None:
                    self.errors.append((i, str(err)))
                else:
                    self.acked[i] = (msg.partition(), msg.offset())
            while True:
                try:
                    self.prod.produce(self.topic, value=m.value, key=m.key, partition=m.partition,
                                      timestamp=m.timestamp, headers=m.headers, on_delivery=cb)
                    break
                except BufferError:
                    self.prod.poll(0.05)
            self.prod.poll(0)
            time.sleep(0.001)
        self.prod.flush(150)

    def wait_acked(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.acked) >= n, \
            f"only {len(self.acked)} acked; errors {self.errors[:5]}"

    def finish(self, timeout=200):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), \
            f"producer did not finish: {len(self.acked)} of {len(self.msgs)} acked"
        assert not self.errors, f"delivery errors: {self.errors[:5]}"
        assert len(self.acked) == len(self.msgs)


def start_load(cluster, name, n, **cfg):
    """A fresh topic (3 partitions, RF 3, ISR full) and a producer sending
    ``n`` records to it in the background (``cfg``: its extra settings)."""
    topic = unique_topic(f"cluster-{name}")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    cluster.wait_isr(topic, 3)
    return topic, BackgroundProducer(cluster.bootstrap, topic, make_messages(n, name, 3), **cfg)


def check_history(cluster, topic, prod):
    """Reads everything back (read_committed, librdkafka's default) and checks
    it against what was acknowledged: each record once, in order, offsets
    contiguous, and at exactly the offset its acknowledgement named."""
    msgs = prod.msgs
    counts = {p: sum(1 for m in msgs if m.partition == p) for p in range(3)}
    recs = ck_consume(cluster.bootstrap, topic, 3, until_counts=counts, timeout=90)
    verify(recs, msgs)
    # librdkafka reports a message delivered with no offset (None) when its
    # request timed out and a later sequence of the same partition then
    # succeeded: it was persisted, offset unknown (as test_idempotence's
    # crash test). verify() still requires it once and in order; only its
    # partition can be compared.
    def where(idx, rec):
        acked = prod.acked.get(idx)
        return acked if acked is None or acked[1] is not None else (acked[0], rec.offset)
    moved = [(rec_idx(r), prod.acked.get(rec_idx(r)), (r.partition, r.offset))
             for r in recs if where(rec_idx(r), r) != (r.partition, r.offset)]
    assert not moved, f"records not where acknowledged (idx, acked, read): {moved[:5]}"


def test_acknowledged_writes_survive_killing_a_leader(cluster):
    topic, prod = start_load(cluster, "failover", 3000)
    prod.wait_acked(800)
    victim = cluster.partitions(topic)[0].leader
    cluster.kill(victim)
    prod.finish()

    # The killed node returns, truncates if it must and rejoins every ISR.
    cluster.start([victim])
    cluster.wait_brokers({1, 2, 3})
    md = cluster.wait_isr(topic, 3, timeout=90)
    check_history(cluster, topic, prod)
    assert all(len(p.isrs) == 3 for p in md.topics[topic].partitions.values()), describe(md)


def test_killing_leader_controller_and_follower_in_turn_loses_nothing(cluster):
    """The issue's sequence under load: SIGKILL a partition leader, then the
    active controller, then a node that only follows that partition, each
    time bringing the node back and waiting until it has caught up and
    rejoined every ISR (truncating first if it must) before the next."""
    topic, prod = start_load(cluster, "rounds", 12000)
    msgs = prod.msgs
    victims = []
    for step, pick in enumerate(("leader", "controller", "follower")):
        prod.wait_acked(1000 + 2000 * step, timeout=90)
        p0 = cluster.partitions(topic)[0]
        if pick == "leader":
            victim = p0.leader
        elif pick == "controller":
            victim = cluster.active_controller()
        else:
            followers = [r for r in p0.replicas if r != p0.leader]
            victim = next((r for r in followers if r not in victims), followers[0])
        victims.append(victim)
        cluster.kill(victim)
        # Writes continue on the survivors before the node comes back.
        before = len(prod.acked)
        prod.wait_acked(min(before + 300, len(msgs)), timeout=60)
        cluster.start([victim])
        cluster.wait_brokers({1, 2, 3})
        cluster.wait_isr(topic, 3, timeout=90)
    prod.finish()
    check_history(cluster, topic, prod)


def test_a_paused_leader_acknowledges_nothing_after_losing_leadership(cluster):
    """A leader frozen longer than the broker session (SIGSTOP) is fenced and
    replaced while requests sit in its sockets; when it wakes it still
    believes it leads until the metadata tells it otherwise, and it must not
    acknowledge anything then (no split brain): every acknowledged record
    is read back at its acknowledged offset."""
    topic, prod = start_load(cluster, "pause", 6000)
    prod.wait_acked(1000)
    victim = cluster.partitions(topic)[0].leader
    cluster.pause(victim)
    try:
        # Fenced after broker.session.timeout.ms (2.5 s; more when it was
        # also the active controller: a new one is elected first): a new
        # leader takes the writes.
        cluster.wait_for(f"a new leader for {topic}-0", lambda md: topic in md.topics and
                         md.topics[topic].partitions[0].leader not in (-1, victim), timeout=60)
        before = len(prod.acked)
        prod.wait_acked(min(before + 500, len(prod.msgs)), timeout=60)
    finally:
        cluster.resume(victim)
    prod.finish()
    cluster.wait_isr(topic, 3, timeout=90)
    check_history(cluster, topic, prod)


def test_rolling_restart_under_load_shows_clients_only_retriable_errors(cluster):
    """Every node restarted in turn (SIGTERM: a controlled shutdown moves its
    leaderships away first) while the producer runs: no delivery fails, and
    each node is back in every ISR before the next goes."""
    topic, prod = start_load(cluster, "rolling", 9000)
    msgs = prod.msgs
    for step, node in enumerate(sorted(cluster.nodes)):
        prod.wait_acked(min(500 + 2000 * step, len(msgs)), timeout=90)
        assert cluster.nodes[node].stop(timeout=30) == 0, f"node {node} did not stop cleanly"
        cluster.start([node])
        cluster.wait_brokers({1, 2, 3})
        cluster.wait_isr(topic, 3, timeout=90)
    prod.finish()
    check_history(cluster, topic, prod)
