"""A kastle cluster on loopback for the replication tests: N combined nodes
(``process.roles=broker,controller``, the shape of the apache/kafka image's
three-node compose file) or controllers and brokers apart, each a real
``kastle`` process with its own ports and data directory, killed with SIGKILL
when a test says so. Clients only ever see the brokers' bootstrap list.

With ``netns=True`` each node runs in its own Linux network namespace
(``NetNs``: a bridge in the root namespace, a veth per node, one address
each), so that a test can cut a node off the network (``isolate``) and join
it again (``heal``): a real network partition rather than a frozen process."""
import os
import re
import secrets
import signal
import subprocess
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
    # as conftest's single broker: new classic groups rebalance at once
    "group.initial.rebalance.delay.ms": "0",
}


class NetnsUnavailable(Exception):
    """Network namespaces cannot be created here (not root, no ``ip``)."""


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NetNs:
    """One network per test run: a bridge ``knb<tag>`` in the root namespace
    holding ``10.77.<net>.254/24``, and for each node a namespace
    ``knp-<pid>-<tag>-n<i>`` whose ``eth0`` (a veth whose root end
    ``kv<tag>n<i>`` is a bridge port) holds ``10.77.<net>.<i>``. The test
    process reaches every node through the bridge. ``remove`` deletes all of
    it; a run that died without removing its network (SIGKILL) is swept by
    the next one (its pid in the namespace names is gone)."""

    PREFIX = "knp-"

    def __init__(self, ids):
        self.ids = list(ids)
        self.tag = secrets.token_hex(3)
        self.bridge = f"knb{self.tag}"
        self.ns = {i: f"{self.PREFIX}{os.getpid()}-{self.tag}-n{i}" for i in self.ids}
        self.veth = {i: f"kv{self.tag}n{i}" for i in self.ids}
        self.net = None
        self.addr = {}
        self.created = False

    @staticmethod
    def check_available():
        """Raises NetnsUnavailable, with the reason, when no namespace can be
        created here; anything else is a failure, not a reason to skip."""
        if os.geteuid() != 0:
            raise NetnsUnavailable(f"cannot create network namespaces here: not root (euid {os.geteuid()})")
        try:
            probe = f"{NetNs.PREFIX}{os.getpid()}-probe"
            r = _ip("netns", "add", probe, check=False)
        except FileNotFoundError:
            raise NetnsUnavailable("cannot create network namespaces here: no `ip` (iproute2)") from None
        if r.returncode != 0:
            raise NetnsUnavailable(f"cannot create network namespaces here: `ip netns add` says "
                                   f"{r.stderr.strip()!r}")
        _ip("netns", "del", probe)

    @classmethod
    def sweep_stale(cls):
        """Removes the namespaces and bridges of earlier runs whose process is gone."""
        out = _ip("netns", "list").stdout
        for line in out.splitlines():
            m = re.match(rf"{cls.PREFIX}(\d+)-(\w+?)(?:-n\d+)?(?:\s|$)", line)
            if m and not _pid_alive(int(m.group(1))):
                _ip("netns", "del", line.split()[0], check=False)
                if m.group(2) != "probe":
                    _ip("link", "del", f"knb{m.group(2)}", check=False)

    def _free_net(self):
        used = _ip("-4", "addr").stdout + _ip("-4", "route").stdout
        taken = set(int(x) for x in re.findall(r"10\.77\.(\d+)\.", used))
        start = secrets.randbelow(250)
        for k in range(250):
            net = (start + k) % 250
            if net not in taken:
                return net
        raise RuntimeError("no free 10.77.x.0/24 network for the test")

    def create(self):
        self.check_available()
        self.sweep_stale()
        self.net = self._free_net()
        self.addr = {i: f"10.77.{self.net}.{i}" for i in self.ids}
        self.created = True
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"10.77.{self.net}.254/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in self.ids:
                ns, veth = self.ns[i], self.veth[i]
                _ip("netns", "add", ns)
                _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("link", "set", veth, "master", self.bridge)
                _ip("link", "set", veth, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", f"{self.addr[i]}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
        except BaseException:
            self.remove()
            raise
        return self

    def isolate(self, i):
        """Cuts node ``i`` off from every other node and from the test
        process: its veth's root end goes down (a pulled cable; no packet in
        or out, no reset of the open connections). Inside its namespace the
        node still reaches itself (``run_in``)."""
        _ip("link", "set", self.veth[i], "down")

    def heal(self, i):
        _ip("link", "set", self.veth[i], "up")

    def run_in(self, i, argv, **kw):
        """A process in node ``i``'s namespace (``subprocess.Popen``)."""
        return subprocess.Popen(["ip", "netns", "exec", self.ns[i], *argv], **kw)

    def remove(self):
        """Deletes the namespaces (with their veths) and the bridge; returns
        what could not be removed (the caller fails on it)."""
        if not self.created:
            return []
        left = []
        for i in self.ids:
            _ip("netns", "del", self.ns[i], check=False)
            _ip("link", "del", self.veth[i], check=False)
        _ip("link", "del", self.bridge, check=False)
        names = _ip("netns", "list").stdout
        links = _ip("-o", "link").stdout
        left += [n for n in self.ns.values() if n in names]
        left += [n for n in [self.bridge, *self.veth.values()] if f" {n}:" in links or f" {n}@" in links]
        self.created = bool(left)
        return left


class KastleCluster:
    def __init__(self, broker_factory, nodes=3, overrides=None, extra_listener=None, netns=False):
        """``extra_listener``: (name, security protocol) of a second client
        listener on each node (e.g. ``("SASL_PLAINTEXT", "SASL_PLAINTEXT")``),
        its ports in ``extra_ports``; inter-broker traffic stays PLAINTEXT.
        ``netns``: each node in its own network namespace at its own address
        (``self.net``, a ``NetNs``; raises NetnsUnavailable where none can be
        made), its ports 9092 (clients) and 9093 (controller); ``isolate``
        and ``heal`` partition it. Call ``close`` afterwards: it stops the
        nodes and removes the network."""
        self.broker_factory, self.overrides = broker_factory, overrides
        ids = range(1, nodes + 1)
        self.isolated = set()
        self.net = NetNs(ids).create() if netns else None
        try:
            self._make_nodes(ids, extra_listener)
        except BaseException:
            if self.net:
                self.net.remove()
            raise

    def host(self, i):
        return self.net.addr[i] if self.net else "127.0.0.1"

    def _make_nodes(self, ids, extra_listener):
        if self.net:
            self.client_ports = {i: 9092 for i in ids}
            self.controller_ports = {i: 9093 for i in ids}
            self.extra_ports = {i: 9094 for i in ids} if extra_listener else {}
        else:
            self.client_ports = {i: free_port() for i in ids}
            self.controller_ports = {i: free_port() for i in ids}
            self.extra_ports = {i: free_port() for i in ids} if extra_listener else {}
        voters = ",".join(f"{i}@{self.host(i)}:{p}" for i, p in self.controller_ports.items())
        self.nodes = {}
        for i in ids:
            p, c, h = self.client_ports[i], self.controller_ports[i], self.host(i)
            props = dict(FAST)
            props.update({
                "process.roles": "broker,controller",
                "node.id": str(i),
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
                "advertised.listeners": f"PLAINTEXT://{h}:{p}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
            })
            if extra_listener:
                name, protocol = extra_listener
                extra = f",{name}://{h}:{self.extra_ports[i]}"
                props["listeners"] += extra
                props["advertised.listeners"] += extra
                props["listener.security.protocol.map"] += f",{name}:{protocol}"
            # ``overrides``: the same for every node, or a function of the
            # node id (a rack, a metrics port per node).
            props.update(self.overrides(i) if callable(self.overrides) else (self.overrides or {}))
            kw = {"host": h, "netns": self.net.ns[i]} if self.net else {}
            b = self.broker_factory(props, start=False, port=p, **kw)
            # Formatted with one cluster id, as `kafka-storage format` does.
            (b.data_dir / "meta.properties").write_text(
                f"version=1\nnode.id={i}\ncluster.id={CLUSTER_ID}\n")
            b.name = f"kastle-node{i}"
            self.nodes[i] = b

    def add_broker(self, node_id):
        """A broker-only node (``process.roles=broker``) joining the quorum
        of the combined nodes, as a fourth broker added to a running cluster
        is; not started."""
        if self.net:
            raise NotImplementedError("add_broker on a netns cluster: the network has no room planned")
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
        """The alive nodes the test process can reach (not isolated ones)."""
        return ",".join(b.bootstrap for i, b in self.nodes.items()
                        if b.alive() and i not in self.isolated) or \
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

    def isolate(self, node_id):
        """Network partition (netns clusters): the node reaches no other node
        and the test process does not reach it; it keeps running."""
        assert self.net, "isolate needs KastleCluster(..., netns=True)"
        self.net.isolate(node_id)
        self.isolated.add(node_id)

    def heal(self, node_id):
        self.net.heal(node_id)
        self.isolated.discard(node_id)

    def close(self):
        """Stops every node (SIGTERM, what is left SIGKILLed), then removes
        the network (netns): always call it, also after a failure. Fails if
        a namespace, link or the bridge is left behind."""
        for i in list(self.isolated):
            try:
                self.heal(i)  # lets a graceful stop reach the quorum
            except Exception:  # noqa: BLE001 - removal below still runs
                pass
        try:
            self.stop()
        finally:
            for b in self.nodes.values() if hasattr(self, "nodes") else ():
                if b.alive():
                    b.kill()
            if self.net:
                left = self.net.remove()
                assert not left, f"network of the test left behind: {left}"

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

    def wait_on_every_node(self, what, pred, timeout=60):
        """``pred`` holds in the Metadata answer of every alive, reachable
        node (each asked directly; ``orig_broker_name`` says who answered). A
        node just back from a partition answers from its stale image until
        it catches up, which one node's answer cannot tell."""
        from confluent_kafka.admin import AdminClient
        deadline = time.monotonic() + timeout
        for i, b in sorted(self.nodes.items()):
            if not b.alive() or i in self.isolated:
                continue
            last = None
            while True:
                try:
                    # A fresh client each time: its first answer comes from
                    # the bootstrap node, later ones from any broker.
                    a = AdminClient({"bootstrap.servers": b.bootstrap,
                                     "client.id": f"cluster-probe-{i}"})
                    last = a.list_topics(timeout=5)
                    # "host:port/<id>" or "host:port/bootstrap"
                    if last.orig_broker_name.split("/")[0] == b.bootstrap and pred(last):
                        break
                except Exception as e:  # noqa: BLE001 - may fail mid-failover
                    last = e
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what} on node {i}; "
                                         f"its last metadata: {describe(last)}")
                time.sleep(0.25)

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
                if not b.alive() or i in self.isolated:
                    continue
                for m in pat.finditer(b.log_path.read_text(errors="replace")):
                    leader = int(m.group(2)) if m.group(2) else i
                    term = int(m.group(3))
                    if best is None or term > best[0]:
                        best = (term, leader)
            if best and self.nodes[best[1]].alive() and best[1] not in self.isolated:
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
