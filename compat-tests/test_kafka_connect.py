"""Kafka Connect 4.x in distributed mode against the broker.

A worker (jvm/kafka-connect, Kafka's own ConnectDistributed started in-process)
creates its compacted config/offset/status topics itself, joins its group with
the ``connect`` protocol and serves the REST API on a free port. Through REST the
test creates a FileStreamSource (file -> topic) and a FileStreamSink (topic ->
file); the sink file must end up with exactly the source lines, in order.

* graceful restart: the worker is stopped, more lines are written while it is
  down, and the restarted worker must resume from the stored source offsets and
  the sink group's committed offsets: every line exactly once, in the topic and in
  the sink file.
* exactly-once source (KIP-618, ``exactly.once.source.support=enabled``): the
  worker is SIGKILLed while lines stream in and a transaction holding records is
  open; after the restart the topic read with read_committed must hold every line
  exactly once (source records and their offsets are committed in one
  transaction; the dead worker's open one is aborted when the new task's producer
  fences it, or by the broker's transaction timeout).

The scenarios take only a bootstrap address, so they run against any broker.
"""
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from compat_lib import unique_topic
from conftest import free_port
from frameworks_lib import (api_calls, assert_apis, assert_txn_protocol, create_topics, framework_broker,  # noqa: F401
                            list_end_offsets, read_all, topic_config)
from jvm_lib import jvm_module, jvm_procs  # noqa: F401 - jvm_procs is a fixture

MODULE = "kafka-connect"
MAIN = "kastle.compat.connect.Worker"
JVM_OPTS = ["-Xmx384m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]


class Rest:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def until(self, method, path, body=None, ok=(200, 201), timeout=90, what=None, worker=None):
        """Retries while the worker is starting or rebalancing (connection refused,
        404 before the herder is up, 409 during a rebalance, 5xx)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if worker is not None and not worker.alive():
                raise AssertionError(f"worker exited during {what or path}\n" + worker.output())
            try:
                status, resp = self.call(method, path, body)
                last = (status, resp)
                if status in ok:
                    return resp
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = repr(e)
            time.sleep(0.3)
        raise AssertionError(f"{method} {path}: no success within {timeout}s, last: {last}")


def worker_props(path, bootstrap, group, port, extra=None):
    props = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "config.storage.topic": f"{group}-configs",
        "offset.storage.topic": f"{group}-offsets",
        "status.storage.topic": f"{group}-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": "3",
        "status.storage.partitions": "2",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.flush.interval.ms": "500",
        "listeners": f"http://127.0.0.1:{port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(port),
        # a restarted worker takes over at once instead of waiting (up to 5 min)
        # for the one that left to come back
        "scheduled.rebalance.max.delay.ms": "0",
        "session.timeout.ms": "6000",
        "heartbeat.interval.ms": "1000",
        "plugin.discovery": "only_scan",
    }
    props.update(extra or {})
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def start_worker(jvm_procs, props_path, port, label):
    w = jvm_procs(MODULE, MAIN, [props_path], jvm_opts=JVM_OPTS, label=label)
    w.wait_for(lambda e: e.get("event") == "started", 120, "REST server start")
    rest = Rest(port)
    rest.until("GET", "/connectors", worker=w, what="herder start")
    return w, rest


def wait_running(rest, name, worker, timeout=90):
    def running():
        st, resp = rest.call("GET", f"/connectors/{name}/status")
        return (st == 200 and resp["connector"]["state"] == "RUNNING" and resp["tasks"]
                and all(t["state"] == "RUNNING" for t in resp["tasks"])), resp
    deadline = time.monotonic() + timeout
    resp = None
    while time.monotonic() < deadline:
        if not worker.alive():
            raise AssertionError("worker exited\n" + worker.output())
        ok, resp = running()
        if ok:
            return resp
        time.sleep(0.3)
    raise AssertionError(f"{name} not RUNNING within {timeout}s: {resp}")


def wait_lines(path, n, worker, timeout=90):
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        got = path.read_text().splitlines() if path.exists() else []
        if len(got) >= n:
            return got
        if not worker.alive():
            raise AssertionError("worker exited\n" + worker.output())
        time.sleep(0.2)
    raise AssertionError(f"{path.name}: {len(got)} of {n} lines after {timeout}s")


def append_lines(path, lines):
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()


def describe_group(bootstrap, group):
    """(state, protocol type, protocol, members) from a raw DescribeGroups v1 (the
    Python clients' admin APIs decode member metadata as the consumer protocol's and
    fail on Connect's). Sent to the bootstrap broker: single-node clusters only."""
    import struct
    from compat_lib import _kstr, raw_request
    r = raw_request(bootstrap, 15, 1, struct.pack(">i", 1) + _kstr(group))
    pos = 8  # throttle_time_ms, group count (1)

    def string():
        nonlocal pos
        (n,) = struct.unpack_from(">h", r, pos)
        pos += 2 + max(n, 0)
        return r[pos - max(n, 0):pos].decode()
    (err,) = struct.unpack_from(">h", r, pos)
    pos += 2
    if err in (14, 15, 16):
        # COORDINATOR_LOAD_IN_PROGRESS / _NOT_AVAILABLE / NOT_COORDINATOR: the
        # worker's first FindCoordinator is still creating __consumer_offsets.
        return None, None, None, 0
    assert err == 0, f"DescribeGroups {group}: error {err}"
    string()  # group id
    state, ptype, proto = string(), string(), string()
    (members,) = struct.unpack_from(">i", r, pos)
    return state, ptype, proto, members


def connect_file_scenario(bootstrap, workdir, jvm_procs):
    jvm_module(MODULE)
    group = unique_topic("connect")
    topic = unique_topic("connect-lines")
    create_topics(bootstrap, {topic: 1})
    src, sink = workdir / "source.txt", workdir / "sink.txt"
    src.write_text("")
    port = free_port()
    props = worker_props(workdir / "worker.properties", bootstrap, group, port)
    first = [f"line {i} " + "x" * (i % 50) for i in range(2000)]
    second = [f"line {i} after restart" for i in range(2000, 3000)]

    w, rest = start_worker(jvm_procs, props, port, "connect#1")

    # Connect created its three internal topics itself, compacted as it requires
    # (it checks the policy at start-up and refuses anything else).
    for kind in ("configs", "offsets", "status"):
        cfg = topic_config(bootstrap, f"{group}-{kind}")
        assert cfg["cleanup.policy"] == "compact", (kind, cfg["cleanup.policy"])
    # the worker's group: the connect protocol, Connect 4's default sub-protocol
    deadline = time.monotonic() + 30
    while (desc := describe_group(bootstrap, group))[0] != "Stable" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert desc == ("Stable", "connect", "sessioned", 1), desc

    rest.until("POST", "/connectors", {"name": "file-source", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "tasks.max": "1", "file": str(src), "topic": topic}}, worker=w)
    rest.until("POST", "/connectors", {"name": "file-sink", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1", "file": str(sink), "topics": topic}}, worker=w)
    wait_running(rest, "file-source", w)
    wait_running(rest, "file-sink", w)
    assert sorted(rest.until("GET", "/connectors")) == ["file-sink", "file-source"]

    append_lines(src, first)
    assert wait_lines(sink, len(first), w) == first

    # graceful restart, with lines written while the worker is down
    w.stop()
    assert any(e.get("event") == "stopped" for e in w.events), "no clean stop\n" + w.output()
    append_lines(src, second)
    w, rest = start_worker(jvm_procs, props, port, "connect#2")
    wait_running(rest, "file-source", w)
    wait_running(rest, "file-sink", w)
    got = wait_lines(sink, len(first) + len(second), w)
    time.sleep(2)  # a duplicate would arrive after the last expected line
    got = sink.read_text().splitlines()
    assert got == first + second, (
        f"sink file: {len(got)} lines, want {len(first) + len(second)}; "
        f"first difference at {next((i for i, (a, b) in enumerate(zip(got, first + second)) if a != b), None)}")
    in_topic = [v.decode() for _p, _o, _k, v, _t in read_all(bootstrap, topic, 1)]
    assert in_topic == first + second, f"topic holds {len(in_topic)} records, want {len(first) + len(second)}"
    w.stop()


def connect_exactly_once_source_scenario(bootstrap, workdir, jvm_procs):
    jvm_module(MODULE)
    group = unique_topic("connect-eos")
    topic = unique_topic("connect-eos-lines")
    create_topics(bootstrap, {topic: 1})
    src = workdir / "source.txt"
    src.write_text("")
    port = free_port()
    props = worker_props(workdir / "worker.properties", bootstrap, group, port, {
        "exactly.once.source.support": "enabled",
        # A restarted worker reads its offsets topic (read_committed) up to the high
        # watermark, so a transaction the kill left open there stalls it until the
        # broker aborts it: 10 s instead of the producer's default 60 s.
        "producer.transaction.timeout.ms": "10000"})
    w, rest = start_worker(jvm_procs, props, port, "connect-eos#1")
    rest.until("POST", "/connectors", {"name": "eos-source", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "tasks.max": "1", "file": str(src), "topic": topic,
        "exactly.once.support": "required", "batch.size": "50",
        # one transaction per 2 s of polls: the kill below finds one open
        "transaction.boundary": "interval", "transaction.boundary.interval.ms": "2000"}},
        worker=w)
    wait_running(rest, "eos-source", w)

    # A writer appends lines steadily; the worker is killed while they stream in.
    lines = [f"eos line {i}" for i in range(6000)]
    done = threading.Event()

    def writer():
        for i in range(0, len(lines), 50):
            append_lines(src, lines[i:i + 50])
            time.sleep(0.08)  # ~10 s in all
        done.set()
    t = threading.Thread(target=writer, daemon=True)
    t.start()

    def in_topic(isolation="read_committed"):
        return read_all(bootstrap, topic, 1, isolation)
    # kill once 1500 lines are in and a transaction holding records is open
    # (last stable offset below the high watermark)
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline and w.alive(), "source not producing\n" + w.output()
        hw = list_end_offsets(bootstrap, topic, 1)[0]
        if hw >= 1500 and list_end_offsets(bootstrap, topic, 1, "read_committed")[0] < hw:
            break
        time.sleep(0.05)
    w.kill()
    killed = time.monotonic()
    at_kill = len(in_topic())
    assert not done.is_set() and at_kill < len(lines), "the kill came after the stream ended"
    t.join(60)
    assert done.is_set()

    w, rest = start_worker(jvm_procs, props, port, "connect-eos#2")
    wait_running(rest, "eos-source", w)
    running = time.monotonic()
    deadline = time.monotonic() + 90
    while len(in_topic()) < len(lines):
        assert time.monotonic() < deadline and w.alive(), \
            f"{len(in_topic())} of {len(lines)} lines after restart\n" + w.output()
        time.sleep(0.3)
    complete = time.monotonic()
    time.sleep(1.5)  # a duplicate would arrive after the last expected line
    got = [v.decode() for _p, _o, _k, v, _t in in_topic()]
    assert got == lines, (f"read_committed: {len(got)} records, want {len(lines)}; "
                          f"duplicated: {len(got) - len(set(got))}")
    every = len(in_topic("read_uncommitted"))
    assert every > len(lines), "the transaction open at the kill left no aborted records"
    w.stop()
    return {"at_kill": at_kill, "read_uncommitted": every, "read_committed": len(got),
            "kill_to_running_s": round(running - killed, 1),
            "running_to_complete_s": round(complete - running, 1)}


@pytest.mark.timeout(300)
@pytest.mark.compat("kafka-connect", "produce", "fetch", "groups", "admin")
def test_connect_file_source_sink_restart(framework_broker, tmp_path, jvm_procs):
    _b, rec, bootstrap = framework_broker
    connect_file_scenario(bootstrap, tmp_path, jvm_procs)
    calls = api_calls(rec)
    print(calls)
    # the worker group (connect protocol), the sink's consumer group, internal
    # topics created and their cleanup policy checked through admin. (Connect's
    # producers here are not idempotent: no InitProducerId.)
    assert_apis(calls, "Produce", "Fetch", "ListOffsets", "JoinGroup", "SyncGroup", "Heartbeat",
                "OffsetCommit", "OffsetFetch", "CreateTopics", "DescribeConfigs")


@pytest.mark.timeout(300)
@pytest.mark.compat("kafka-connect", "idempotence", "transactions")
def test_connect_exactly_once_source_kill(framework_broker, tmp_path, jvm_procs):
    _b, rec, bootstrap = framework_broker
    print(connect_exactly_once_source_scenario(bootstrap, tmp_path, jvm_procs))
    calls = api_calls(rec)
    print(calls)
    # transactional (so idempotent) task producers; the leader's own transactional
    # producer on the config topic; fencing of the task's earlier producers
    assert_txn_protocol(calls, bootstrap)
    inits = [e for e in rec.txn_log if e["api"] == "InitProducerId"]
    for e in inits:
        print(" ", e)
