"""A kastle cluster on loopback for the replication tests: N combined nodes
(``process.roles=broker,controller``, the shape of the apache/kafka image's
three-node compose file) or controllers and brokers apart, each a real
``kastle`` process with its own ports and data directory, killed with SIGKILL
when a test says so. Clients only ever see the brokers' bootstrap list."""
import re
import signal
import threading
import time

from conftest import free_port

CLUSTER_ID = "c0mpatC1usterTestId00A"

# Small timeouts so failover happens within a test's patience; Kafka's rules
# (heartbeat interval < session timeout) still hold.
FAST = {
    "broker.heartbeat.interval.ms": "300",
    "broker.session.timeout.ms": "2500",
    "replica.lag.time.max.ms": "3000",
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "num.partitions": "3",
}


class KastleCluster:
    def __init__(self, broker_factory, nodes=3, overrides=None, extra_listener=None):
        """``extra_listener``: (name, security protocol) of a second client
        listener on each node (e.g. ``("SASL_PLAINTEXT", "SASL_PLAINTEXT")``),
        its ports in ``extra_ports``; inter-broker traffic stays PLAINTEXT."""
        self.broker_factory, self.overrides = broker_factory, overrides
        self.client_ports = {i: free_port() for i in range(1, nodes + 1)}
        self.controller_ports = {i: free_port() for i in range(1, nodes + 1)}
        self.extra_ports = {i: free_port() for i in range(1, nodes + 1)} if extra_listener else {}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_ports.items())
        self.nodes = {}
        for i in range(1, nodes + 1):
            p, c = self.client_ports[i], self.controller_ports[i]
            props = dict(FAST)
            props.update({
                "process.roles": "broker,controller",
                "node.id": str(i),
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
            })
            if extra_listener:
                name, protocol = extra_listener
                extra = f",{name}://127.0.0.1:{self.extra_ports[i]}"
                props["listeners"] += extra
                props["advertised.listeners"] += extra
                props["listener.security.protocol.map"] += f",{name}:{protocol}"
            props.update(overrides or {})
            b = broker_factory(props, start=False, port=p)
            # Formatted with one cluster id, as `kafka-storage format` does.
            (b.data_dir / "meta.properties").write_text(
                f"version=1\nnode.id={i}\ncluster.id={CLUSTER_ID}\n")
            b.name = f"kastle-node{i}"
            self.nodes[i] = b

    def add_broker(self, node_id):
        """A broker-only node (``process.roles=broker``) joining the quorum
        of the combined nodes, as a fourth broker added to a running cluster
        is; not started."""
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_ports.items())
        p = self.client_ports[node_id] = free_port()
        props = dict(FAST)
        props.update({
            "process.roles": "broker",
            "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{p}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
        })
        props.update(self.overrides or {})
        b = self.broker_factory(props, start=False, port=p)
        (b.data_dir / "meta.properties").write_text(
            f"version=1\nnode.id={node_id}\ncluster.id={CLUSTER_ID}\n")
        b.name = f"kastle-node{node_id}"
        self.nodes[node_id] = b
        return b

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.nodes.values() if b.alive()) or \
            ",".join(b.bootstrap for b in self.nodes.values())

    def start(self, ids=None):
        """Starts the given nodes (all by default) at once: a node may wait for
        the quorum, which needs a majority of the others."""
        ids = list(ids or self.nodes)
        errors = []

        def run(i):
            try:
                self.nodes[i].start(timeout=60)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((i, e))
        threads = [threading.Thread(target=run, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, f"nodes failed to start: {errors}"
        return self

    def stop(self):
        """Stops every node at once (SIGTERM): one after another, the last
        nodes would wait for a controller quorum that is already gone."""
        threads = [threading.Thread(target=b.stop, kwargs={"check": False})
                   for b in self.nodes.values() if b.alive()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def pause(self, node_id):
        """Freezes a node (SIGSTOP), as a long GC pause or a stalled VM
        would: its sockets stay open but nothing answers."""
        self.nodes[node_id].proc.send_signal(signal.SIGSTOP)

    def resume(self, node_id):
        self.nodes[node_id].proc.send_signal(signal.SIGCONT)

    def kill(self, node_id):
        self.nodes[node_id].kill()

    def metadata(self, topic=None, timeout=10):
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": self.bootstrap, "client.id": "cluster-probe"})
        return a.list_topics(topic=topic, timeout=timeout)

    def wait_for(self, what, pred, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.metadata()
                if pred(last):
                    return last
            except Exception as e:  # noqa: BLE001 - metadata may fail mid-failover
                last = e
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; last metadata: {describe(last)}")

    def wait_brokers(self, ids, timeout=60):
        want = set(ids)
        return self.wait_for(f"brokers {sorted(want)}",
                             lambda md: set(md.brokers) == want, timeout)

    def partitions(self, topic):
        # Retried: a topic just created may not be in every broker's image
        # yet (each broker applies the metadata log on its own schedule).
        md = self.wait_for(f"{topic} in Metadata", lambda md: topic in md.topics
                           and md.topics[topic].error is None, timeout=30)
        return md.topics[topic].partitions

    def wait_isr(self, topic, size, timeout=60):
        def ok(md):
            t = md.topics.get(topic)
            return t is not None and t.error is None and t.partitions and all(
                len(p.isrs) >= size and p.leader >= 0 for p in t.partitions.values())
        return self.wait_for(f"{topic} ISR of {size} everywhere", ok, timeout)

    def active_controller(self, timeout=30):
        """The active controller as the alive voters' logs last name it (the
        highest term wins): ``server::controller`` logs every change."""
        pat = re.compile(r"(this node is now the active controller|active controller changed"
                         r" active_controller=(\d+)) term=(\d+)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            best = None
            for i, b in self.nodes.items():
                if not b.alive():
                    continue
                for m in pat.finditer(b.log_path.read_text(errors="replace")):
                    leader = int(m.group(2)) if m.group(2) else i
                    term = int(m.group(3))
                    if best is None or term > best[0]:
                        best = (term, leader)
            if best and self.nodes[best[1]].alive():
                return best[1]
            time.sleep(0.2)
        raise AssertionError("no alive active controller found in the logs")


def module_cluster(tmp_path_factory, name="node", overrides=None, graceful=True):
    """The body of a module-scoped ``cluster`` fixture (``yield from`` it):
    three combined nodes, started and all registered; afterwards stopped
    (SIGTERM) when ``graceful``, and whatever still runs killed. Killing
    alone suits modules whose tests leave the quorum lost: a graceful stop
    of the last nodes waits for a controlled shutdown nobody can grant."""
    from conftest import Broker
    made = []

    def factory(props=None, start=True, **kw):
        b = Broker(tmp_path_factory.mktemp(name), overrides=props, **kw)
        made.append(b)
        if start:
            b.start()
        return b
    c = KastleCluster(factory, nodes=3, overrides=overrides).start()
    c.wait_brokers({1, 2, 3})
    try:
        yield c
    finally:
        if graceful:
            c.stop()
        for b in made:
            if b.alive():
                b.kill()


def describe(md):
    if md is None or isinstance(md, Exception):
        return repr(md)
    parts = [f"brokers={sorted(md.brokers)}"]
    for name, t in sorted(md.topics.items()):
        ps = ", ".join(f"p{p.id}: leader {p.leader} isr {sorted(p.isrs)}"
                       for p in sorted(t.partitions.values(), key=lambda p: p.id))
        parts.append(f"{name}: {ps or t.error}")
    return "; ".join(parts)
