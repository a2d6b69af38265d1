"""kastle as a drop-in for Kafka in docker-compose, with real clients.

The broker is started the way a container is: from environment variables only
(the two-listener set-up of the Kafka images' compose examples), and real
clients (kafka-python, kcat) produce and consume through each listener, which
only works if each listener advertises an address usable from where the client
stands. docker/docker-compose.yml itself is loaded and its kafka service's
environment is run (ports rewritten to free ones, the service host name
``kafka`` to ``localhost``, since there is no compose network here).
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from compat_lib import kcat, kp_consume, kp_produce, make_messages, unique_topic, verify
from conftest import free_port, kastle_bin, port_open

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker" / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"


class EnvBroker:
    """kastle started with a given environment and nothing else (no KAFKA_*
    leaking in from the test run), stopped with SIGTERM."""

    def __init__(self, env, workdir: Path):
        self.env = {k: str(v) for k, v in env.items()}
        self.workdir = workdir
        self.log_path = workdir / "kastle.log"
        self.proc = None

    def start(self, port: int, timeout=20.0):
        full = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "info", "NO_COLOR": "1"}
        full.update(self.env)
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([str(kastle_bin())], env=full, cwd=self.workdir,
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kastle exited with {self.proc.returncode}:\n{self.log()}")
            if port_open(port):
                return self
            time.sleep(0.05)
        raise AssertionError(f"kastle did not listen on {port}:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def env_broker(tmp_path):
    started = []

    def make(env):
        b = EnvBroker(env, tmp_path)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not port_open(port):
        assert time.monotonic() < deadline, f"port {port} not listening"
        time.sleep(0.05)


def kcat_broker_address(bootstrap: str) -> str:
    """The broker address kcat -L is given by the broker behind ``bootstrap``."""
    out = kcat("-b", bootstrap, "-L", "-m", "15").stdout.decode()
    m = re.search(r"broker \d+ at (\S+)", out)
    assert m, out
    return m.group(1)


def roundtrip_kafka_python(bootstrap: str, n=200):
    topic = unique_topic("dropin-kp")
    msgs = make_messages(n, "kafka-python", partitions=1)
    kp_produce(bootstrap, topic, msgs)
    recs = kp_consume(bootstrap, topic, 1, {0: n}, timeout=60)
    verify(recs, msgs)


def roundtrip_kcat(bootstrap: str, n=50):
    topic = unique_topic("dropin-kcat")
    lines = [f"kcat-{i}" for i in range(n)]
    kcat("-b", bootstrap, "-P", "-t", topic, "-p", "0", input_bytes="\n".join(lines).encode())
    out = kcat("-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
               "-c", str(n), "-e", "-q", "-m", "30").stdout.decode().splitlines()
    assert out == lines


def test_each_listener_serves_real_clients_at_its_advertised_address(env_broker, tmp_path):
    internal, host, controller = free_port(), free_port(), free_port()
    env = {
        "KAFKA_NODE_ID": 1,
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{internal},CONTROLLER://0.0.0.0:{controller},"
                           f"PLAINTEXT_HOST://0.0.0.0:{host}",
        # In a compose file PLAINTEXT is the service name (kafka:9092) and
        # PLAINTEXT_HOST is localhost; here two names this machine resolves.
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://localhost:{internal},"
                                      f"PLAINTEXT_HOST://127.0.0.1:{host}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":
            "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{controller}",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": 1,
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 1,
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": 1,
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": 0,
        "KAFKA_LOG_DIRS": str(tmp_path / "data"),
        "CLUSTER_ID": "4L6g3nShT-eMCtK--X86sw",
    }
    b = env_broker(env).start(internal)
    wait_port(host)
    # Each listener hands out its own address ...
    assert kcat_broker_address(f"127.0.0.1:{internal}") == f"localhost:{internal}"
    assert kcat_broker_address(f"127.0.0.1:{host}") == f"127.0.0.1:{host}"
    # ... and real clients, which reconnect to that address, get work done
    # through both.
    for bootstrap in (f"localhost:{internal}", f"127.0.0.1:{host}"):
        roundtrip_kafka_python(bootstrap)
        roundtrip_kcat(bootstrap)
    assert "unknown configuration key" not in b.log()


def load_compose():
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def test_compose_file_has_kafka_producer_consumer_and_a_health_check():
    doc = load_compose()
    services = doc["services"]
    assert {"kafka", "producer", "consumer"} <= set(services)
    kafka = services["kafka"]
    assert kafka["build"]["dockerfile"] == "docker/Dockerfile"
    assert (COMPOSE.parent / kafka["build"]["context"] / kafka["build"]["dockerfile"]).is_file()
    assert kafka["image"].startswith("kastle")
    assert kafka["healthcheck"]["test"] == ["CMD", "/kastle", "health"]
    assert any(str(v).endswith(":/var/lib/kafka/data") for v in kafka["volumes"])
    assert "kafka-data" in doc["volumes"]
    env = kafka["environment"]
    for var in ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_PROCESS_ROLES", "CLUSTER_ID"):
        assert var in env, var
    # The host-facing listener's port is the one published.
    host_port = re.search(r"PLAINTEXT_HOST://localhost:(\d+)", env["KAFKA_ADVERTISED_LISTENERS"])
    assert host_port and f"{host_port.group(1)}:{host_port.group(1)}" in kafka["ports"]
    for name in ("producer", "consumer"):
        svc = services[name]
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy", name
        assert "kafka:9092" in " ".join(map(str, svc.get("command", []))), name
    # The image runs the same health check without a shell.
    dockerfile = DOCKERFILE.read_text()
    assert 'CMD ["/kastle", "health"]' in dockerfile
    assert "VOLUME /var/lib/kafka/data" in dockerfile
    assert "EXPOSE 9092" in dockerfile


def test_compose_kafka_environment_starts_serves_and_is_healthy(env_broker, tmp_path):
    env = {k: str(v) for k, v in load_compose()["services"]["kafka"]["environment"].items()}
    # Same variables and shapes; only what a compose network provides is
    # replaced: free ports for 9092/9093/29092, localhost for the service
    # name, a temporary data directory for the volume.
    ports = {p: free_port() for p in ("9092", "9093", "29092")}

    def rewrite(v):
        v = re.sub(r":(9092|9093|29092)\b", lambda m: f":{ports[m.group(1)]}", v)
        return re.sub(r"(//|@)kafka:", r"\1localhost:", v)

    for k in ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS"):
        env[k] = rewrite(env[k])
    env["KAFKA_LOG_DIRS"] = str(tmp_path / "volume")
    b = env_broker(env).start(ports["9092"])
    wait_port(ports["29092"])

    # The compose health check, run as Docker would (same environment).
    test = load_compose()["services"]["kafka"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "/kastle"
    full = {"PATH": os.environ.get("PATH", "")}
    full.update(env)
    hc = subprocess.run([str(kastle_bin()), *test[2:]], env=full, capture_output=True, timeout=15)
    assert hc.returncode == 0, (hc.stdout, hc.stderr)
    assert f"127.0.0.1:{ports['9092']}" in hc.stdout.decode()

    # Producer and consumer through both listeners, as the producer/consumer
    # services (in-network) and a host client would.
    roundtrip_kcat(f"localhost:{ports['9092']}")
    roundtrip_kafka_python(f"localhost:{ports['29092']}")
    assert (tmp_path / "volume" / "meta.properties").read_text().count(
        "cluster.id=" + env["CLUSTER_ID"]) == 1
    b.stop()
    assert b.proc.returncode == 0, b.log()
