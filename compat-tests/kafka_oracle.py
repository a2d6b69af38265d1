"""A real Apache Kafka 4.4 broker for the compat suite (the ``real_kafka`` fixture).

Kafka itself is the specification kastle follows, so tests that want to tell a
kastle deviation from a client quirk run the same scenario against both. The
broker comes from the Maven jars of ``jvm/kafka4`` (kafka_2.13 and its server
modules, built by ``scripts/test.sh``): one KRaft node in combined mode
(broker + controller), its storage formatted by Kafka's own StorageTool with
a standalone controller quorum, on free loopback ports, with a small heap.

It is session-scoped and started lazily by the first test that asks for it;
tests share it, so each uses fresh topic / group / transactional-id names.
``real_kafka.bootstrap`` is ``127.0.0.1:PORT`` as for the ``broker`` fixture.
"""
import base64
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import jvm_lib

MODULE = "kafka4"
KAFKA_VERSION = "4.4.0"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
HEAP = ("-Xmx512m", "-Xms128m")


def _free_port() -> int:
    from conftest import free_port
    return free_port()


def _port_open(port: int) -> bool:
    from conftest import port_open
    return port_open(port)


class RealKafka:
    """One Apache Kafka process: KRaft combined mode, node id 1, data in ``workdir``."""

    name = "kafka-4.4"

    def __init__(self, workdir: Path, overrides=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.controller_port = _free_port()
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "server.properties"
        self.log_path = self.workdir / "kafka.log"
        # a base64 UUID as `kafka-storage random-uuid` prints it (which, like this,
        # never starts with '-': the tool's own argument parser would take it for a flag)
        self.cluster_id = "-"
        while self.cluster_id.startswith("-"):
            self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.overrides = dict(overrides or {})
        self.proc = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self) -> dict:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir),
            # what kastle's `broker` fixture runs with, and what one node can serve
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update({k: str(v) for k, v in self.overrides.items()})
        return props

    def _java(self, main_class, args, **kw):
        return jvm_lib.jvm_argv(MODULE, main_class, args, jvm_opts=HEAP + tuple(kw.get("opts", ())))

    def format(self):
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        argv = self._java("kafka.tools.StorageTool",
                          ["format", "--standalone", "-t", self.cluster_id, "-c", self.config_path])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.workdir)
        if p.returncode != 0:
            raise AssertionError(f"kafka-storage format failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")

    def start(self, timeout: float = START_TIMEOUT):
        if not (self.data_dir / "meta.properties").exists():
            self.format()
        argv = self._java("kafka.Kafka", [self.config_path],
                          opts=("-Dkastle.log.level=INFO", "-Djava.awt.headless=true"))
        env = dict(os.environ)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                raise AssertionError(f"Kafka exited during start-up ({rc}):\n{self.log_tail()}")
            # "Kafka Server started" is logged once the broker is registered and
            # unfenced, i.e. when it serves clients, not merely accepts connections
            if _port_open(self.port) and "Kafka Server started" in self._log_text():
                return self
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"Kafka did not start within {timeout}s:\n{self.log_tail()}")

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 150) -> str:
        text = self._log_text().splitlines()
        return f"--- {self.name} ({self.log_path}) ---\n" + "\n".join(text[-lines:])


_SESSION = {}  # the running instance, for the failure-report hook in conftest


@pytest.fixture(scope="session")
def real_kafka(tmp_path_factory):
    """A real Apache Kafka 4.4 broker shared by the whole session (fresh names per test)."""
    jvm_lib.jvm_module(MODULE)  # skips when the module is not built
    k = RealKafka(tmp_path_factory.mktemp("real-kafka"))
    _SESSION["kafka"] = k
    try:
        k.start()
        yield k
    finally:
        k.stop()
        _SESSION.pop("kafka", None)


def session_kafka():
    """The session's running Kafka, if a test started it (None otherwise)."""
    return _SESSION.get("kafka")
