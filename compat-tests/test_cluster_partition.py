"""Network partitions of a kastle cluster (issue 17): three combined nodes,
each in its own Linux network namespace (``KastleCluster(..., netns=True)``),
replication factor 3, ``min.insync.replicas=2``, an idempotent acks=all
librdkafka producer in the root namespace. A node is cut off the network
(its veth goes down: it runs on, reaching only itself) and joined again.

- A partition leader cut off from the controller and its followers is fenced
  after ``broker.session.timeout.ms``; the majority elects a new leader and
  takes the writes. The cut-off leader still believes it leads (nobody can
  tell it otherwise) but must acknowledge nothing: a client inside its
  namespace producing acks=all to it gets only timeouts or
  NOT_ENOUGH_REPLICAS / NOT_LEADER_OR_FOLLOWER (no split brain), and reads
  none of its own unacknowledged records back. After the heal it truncates
  them and rejoins the ISR; every acknowledged record is read back once, in
  order, at its acknowledged offset (also from the old leader, elected
  again), and consumers (read_committed and read_uncommitted) that ran
  throughout never saw an offset go backwards nor a record that was later
  truncated.
- The active controller cut off: the other two elect another, clients keep
  producing and creating topics, and after the heal nothing is lost.

Needs root (network namespaces); without it the tests skip and say why."""
import json
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import ElectionType, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from cluster_lib import KastleCluster, NetnsUnavailable, describe
from compat_lib import ck_consumer, ck_create_topic, unique_topic
from test_cluster_failover import check_history, start_load

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(broker_factory):
    try:
        c = KastleCluster(broker_factory, nodes=3, netns=True)
    except NetnsUnavailable as e:
        pytest.skip(str(e))
    try:
        c.start()
        c.wait_brokers({1, 2, 3})
        yield c
    finally:
        c.close()


# A client inside the isolated node's namespace, the only one that still
# reaches it: an acks=all producer (not idempotent: producer ids come from
# the unreachable controller) sending a record every 50 ms to the partition
# the node led, and a read_uncommitted consumer of that partition. Runs until
# its stdin closes, then prints one JSON line of what it saw.
ISOLATED_CLIENT = r'''
import json, os, sys, threading, time
from confluent_kafka import Consumer, Producer, TopicPartition
bootstrap, topic, part = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"sent": 0, "acked": [], "errors": [], "seen_own": [], "consumed": 0, "consumer_errors": []}
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
start = time.monotonic()
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
              "client.id": "isolated-side", "linger.ms": 0, "request.timeout.ms": 3000,
              "message.timeout.ms": 5000})
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "isolated-side-unused",
              "enable.auto.commit": False, "isolation.level": "read_uncommitted",
              "fetch.wait.max.ms": 200, "client.id": "isolated-side-consumer"})
c.assign([TopicPartition(topic, part, 0)])

def cb(err, msg):
    t = round(time.monotonic() - start, 2)
    if err is None:
        out["acked"].append((msg.offset(), t))
    else:
        out["errors"].append((err.name(), t))

n = 0
while not stop.is_set():
    p.produce(topic, value=f"isolated-{n}".encode(), partition=part,
              headers=[("src", b"isolated"), ("n", str(n).encode())], on_delivery=cb)
    n += 1
    out["sent"] = n
    p.poll(0)
    for m in c.consume(num_messages=1000, timeout=0.05):
        if m.error() is not None:
            out["consumer_errors"].append(m.error().name())
            continue
        out["consumed"] += 1
        if dict(m.headers() or []).get("src") == b"isolated":
            out["seen_own"].append(m.offset())
p.poll(0)
out["in_flight"] = len(p)
print(json.dumps(out), flush=True)
os._exit(0)
'''

# What the isolated side may be told instead of an acknowledgement.
NO_ACK = {"_MSG_TIMED_OUT", "REQUEST_TIMED_OUT", "_TIMED_OUT", "NOT_ENOUGH_REPLICAS",
          "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "NOT_LEADER_OR_FOLLOWER"}


class IsolatedClient:
    def __init__(self, cluster, node, topic, partition):
        self.proc = cluster.net.run_in(
            node, [sys.executable, "-c", ISOLATED_CLIENT,
                   cluster.nodes[node].bootstrap, topic, str(partition)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, timeout=20):
        try:
            out, err = self.proc.communicate("", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"the isolated-side client did not stop; stderr: {err[-2000:]}")
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert self.proc.returncode == 0 and lines, \
            f"isolated-side client failed ({self.proc.returncode}): {err[-2000:]}"
        return json.loads(lines[-1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class OffsetWatcher:
    """A consumer of every partition of the topic from offset 0, running in
    the background through the partition and the heal: records each
    (partition, offset, idx) in the order it was delivered."""

    def __init__(self, bootstrap, topic, isolation):
        self.isolation = isolation
        self.seen = {p: [] for p in range(3)}
        self.errors = []
        self.stop_flag = threading.Event()
        self.cons = ck_consumer(bootstrap, **{"isolation.level": isolation,
                                              "enable.partition.eof": False,
                                              "socket.timeout.ms": FAILOVER["socket.timeout.ms"],
                                              "client.id": f"watcher-{isolation}"})
        self.cons.assign([TopicPartition(topic, p, 0) for p in range(3)])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.is_set():
            for m in self.cons.consume(num_messages=1000, timeout=0.2):
                if m.error() is not None:
                    self.errors.append(str(m.error()))
                    continue
                idx = dict(m.headers() or []).get("idx")
                self.seen[m.partition()].append((m.offset(), int(idx) if idx else None))

    def wait_until(self, counts, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(self.seen[p]) >= c for p, c in counts.items()):
                break
            time.sleep(0.1)
        self.stop_flag.set()
        self.thread.join(10)
        self.cons.close()
        got = {p: len(s) for p, s in self.seen.items()}
        assert all(got[p] >= c for p, c in counts.items()), \
            f"{self.isolation} consumer got {got} of {counts}; errors {self.errors[:5]}"

    def check(self, history):
        """Offsets only go forward, one by one (no transactions here, so no
        control records), and each record read is the one the log finally
        holds at that offset: nothing read was later truncated."""
        problems = []
        for p, seen in self.seen.items():
            for (a, _), (b, _) in zip(seen, seen[1:]):
                if b != a + 1:
                    problems.append(f"p{p}: offset {b} after {a}")
            for off, idx in seen:
                if history.get((p, off)) != idx:
                    problems.append(f"p{p}@{off}: read idx {idx}, the log holds {history.get((p, off))}")
        assert not problems, f"{self.isolation} consumer: {problems[:10]}"


def wait_healed(cluster, topic):
    """Every node (each asked itself: the healed one answers from its stale
    image at first) lists all three brokers and an ISR of 3 for each
    partition of ``topic``."""
    def ok(md):
        t = md.topics.get(topic)
        return set(md.brokers) == {1, 2, 3} and t is not None and t.error is None and \
            t.partitions and all(len(p.isrs) == 3 and p.leader >= 0 for p in t.partitions.values())
    cluster.wait_on_every_node(f"brokers 1-3 and {topic} ISR of 3", ok, timeout=90)


def history_of(prod):
    return {(p, off): idx for idx, (p, off) in prod.acked.items()}


def admin(cluster):
    return AdminClient({"bootstrap.servers": cluster.bootstrap, "client.id": "partition-test"})


# A request to a cut-off node gets no answer and no reset: librdkafka gives
# up on it after socket.timeout.ms (60 s by default) and only then looks for
# the new leader. Shorter here, so that the test stays short.
FAILOVER = {"socket.timeout.ms": 8000, "request.timeout.ms": 8000}


def test_an_isolated_leader_acknowledges_nothing_and_rejoins_after_the_heal(cluster):
    topic, prod = start_load(cluster, "netpart", 8000, **FAILOVER)
    watchers = [OffsetWatcher(cluster.bootstrap, topic, lvl)
                for lvl in ("read_committed", "read_uncommitted")]
    prod.wait_acked(1000)

    # The leader of a partition, not the active controller if any partition
    # allows: cut off from the controller and from its followers.
    controller = cluster.active_controller()
    parts = cluster.partitions(topic)
    part = next((p for p in sorted(parts) if parts[p].leader != controller), 0)
    victim = parts[part].leader
    others = {1, 2, 3} - {victim}
    t0 = time.monotonic()
    cluster.isolate(victim)
    client = IsolatedClient(cluster, victim, topic, part)
    try:
        # Fenced after broker.session.timeout.ms; a new leader from the ISR.
        cluster.wait_brokers(others, timeout=60)
        md = cluster.wait_for(f"a new leader for {topic}-{part}", lambda md: topic in md.topics and
                              md.topics[topic].partitions[part].leader in others, timeout=60)
        t_elected = time.monotonic() - t0
        # Writes continue on the majority, to every partition (the producer
        # finds the new leader of `part` once its requests to the old one
        # time out).
        before = max(list(prod.acked))
        deadline = time.monotonic() + 90
        while not any(p == part and idx > before for idx, (p, _) in list(prod.acked.items())):
            assert time.monotonic() < deadline, \
                f"no write to {topic}-{part} acknowledged after the election: {describe(md)}"
            time.sleep(0.1)
        t_resumed = time.monotonic() - t0
        # The isolated side keeps trying a while longer than its session.
        time.sleep(max(0.0, 8 - (time.monotonic() - t0)))
        seen = client.finish()
    finally:
        client.kill()
    print(f"isolated node {victim} (partition {part}); new leader after {t_elected:.1f}s, "
          f"writes to it again after {t_resumed:.1f}s; "
          f"isolated side: {seen['sent']} sent, {len(seen['errors'])} errors "
          f"({sorted({e for e, _ in seen['errors']})}), {seen['in_flight']} in flight, "
          f"{seen['consumed']} records read from the isolated leader")
    # Ran past its message timeout (5 s): what it sent first was refused.
    assert seen["sent"] > 0 and seen["errors"] and seen["consumed"] > 0, seen
    assert not seen["acked"], f"the isolated leader acknowledged acks=all writes: {seen['acked'][:10]}"
    assert not seen["seen_own"], \
        f"the isolated leader served its unreplicated records to a consumer: {seen['seen_own'][:10]}"
    odd = {e for e, _ in seen["errors"]} - NO_ACK
    assert not odd, f"the isolated side was told {odd}: {seen['errors'][:10]}"

    # Heal: the old leader learns it was replaced, truncates what it alone
    # appended and rejoins every ISR.
    cluster.heal(victim)
    wait_healed(cluster, topic)
    prod.finish()
    check_history(cluster, topic, prod)
    counts = {p: sum(1 for m in prod.msgs if m.partition == p) for p in range(3)}
    for w in watchers:
        w.wait_until(counts)
        w.check(history_of(prod))

    # Read the partition from the old leader itself, elected again.
    preferred = cluster.partitions(topic)[part].replicas[0]
    if preferred == victim:
        a = admin(cluster)  # kept alive until the answer: the future dies with it
        res = a.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, part)]).result(timeout=40)
        err = res[TopicPartition(topic, part)]
        assert err is None or (isinstance(err, KafkaError) and
                               err.code() == KafkaError.ELECTION_NOT_NEEDED), res
        cluster.wait_for(f"{victim} leading {topic}-{part} again",
                         lambda md: md.topics[topic].partitions[part].leader == victim, timeout=30)
        check_history(cluster, topic, prod)
        print(f"read back from node {victim}, leading {topic}-{part} again")


def test_an_isolated_active_controller_is_replaced_and_clients_keep_working(cluster):
    topic, prod = start_load(cluster, "netctl", 6000, **FAILOVER)
    prod.wait_acked(800)
    victim = cluster.active_controller()
    others = {1, 2, 3} - {victim}
    cluster.isolate(victim)
    try:
        deadline = time.monotonic() + 30
        while True:
            new = cluster.active_controller(timeout=30)
            if new != victim:
                break
            assert time.monotonic() < deadline, "no other active controller"
            time.sleep(0.2)
        assert new in others
        cluster.wait_brokers(others, timeout=60)
        # Clients keep working: the producer, and a topic created through
        # the new controller.
        before = len(prod.acked)
        prod.wait_acked(min(before + 1000, len(prod.msgs)), timeout=90)
        extra = unique_topic("netctl-new")
        ck_create_topic(cluster.bootstrap, extra, partitions=1, rf=2, timeout=30)
        cluster.partitions(extra)
    finally:
        cluster.heal(victim)
    wait_healed(cluster, topic)
    prod.finish()
    check_history(cluster, topic, prod)
