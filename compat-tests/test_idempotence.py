"""Idempotent producers against kastle with real clients.

* Both confluent-kafka (librdkafka, ``enable.idempotence=true``) and kafkajs
  (``idempotent: true``) can produce with idempotence on, and the broker really
  tracks them as idempotent producers (DescribeProducers lists one producer per
  partition whose last sequence matches the message count).
* Exactly-once across crashes: each client produces a numbered sequence to a
  3-partition topic while the broker is first stalled (SIGSTOP for longer than
  the request timeout, so the clients retry requests the broker still appends)
  and then SIGKILLed and restarted 3 times. Every
  acknowledged message must then be in the log exactly once, and every
  partition must hold its messages in send order. Unlike test_crash.py (no
  idempotence), a duplicate is a failure here: the retries of requests whose
  response was lost in the crash must be recognised by the broker.
* Across restarts, as Apache Kafka 4.4 (a dedicated one, restarted the same way): the
  producer state snapshot keeps each producer's last batch, so after a clean restart only
  that batch is still recognised as a duplicate, an older retry is out of order.
"""
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict

import pytest

import jvm_lib
from compat_lib import (NODE_DIR, Msg, assert_one_idempotent_producer, ck_consume, ck_create_topic, ck_produce, ck_producer,
                        kcat, kp_produce, make_messages, per_partition_counts,
                        rec_idx, unique_topic, verify)

PARTITIONS = 3
CYCLES = 3
CK_RATE = 5_000
STALL_S = 7.0  # > request timeouts (librdkafka 3 s, kafkajs 5 s)  # messages/s: requests in flight at every kill, quick to read back
NODE_SCRIPT = NODE_DIR / "idempotent.js"

CK_IDEMPOTENT = {
    "enable.idempotence": True,
    "acks": "all",
    "max.in.flight.requests.per.connection": 5,
    "message.timeout.ms": 60_000,
    "request.timeout.ms": 3_000,
    "retry.backoff.ms": 100,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "socket.connection.setup.timeout.ms": 2_000,
    "linger.ms": 2,
}


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ck_end_offsets(bootstrap, topic, partitions):
    """High watermark per partition, through confluent-kafka."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "idem-ends", "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def check_exactly_once(recs, acked, partition_of, what):
    """Every acknowledged idx present exactly once; no idx twice at all; each
    partition's records in send (idx) order; offsets contiguous from 0."""
    problems = []
    copies = Counter(rec_idx(r) for r in recs)
    if None in copies:
        problems.append(f"{copies[None]} records without an idx header")
    dups = {i: c for i, c in copies.items() if i is not None and c > 1}
    if dups:
        problems.append(f"{len(dups)} messages stored more than once, e.g. {sorted(dups.items())[:10]}")
    missing = sorted(i for i in acked if not copies.get(i))
    if missing:
        problems.append(f"{len(missing)} acknowledged messages missing, e.g. {missing[:10]}")
    by_p = defaultdict(list)
    for r in sorted(recs, key=lambda r: (r.partition, r.offset)):
        by_p[r.partition].append(r)
    for p, rs in sorted(by_p.items()):
        offs = [r.offset for r in rs]
        if offs != list(range(len(offs))):
            problems.append(f"partition {p}: offsets not contiguous from 0: {offs[:5]}...")
        idxs = [rec_idx(r) for r in rs]
        wrong = [i for i in idxs if i is not None and partition_of(i) != p]
        if wrong:
            problems.append(f"partition {p}: holds messages of other partitions, e.g. {wrong[:5]}")
        bad = [k for k in range(1, len(idxs)) if idxs[k] <= idxs[k - 1]]
        if bad:
            k = bad[0]
            problems.append(f"partition {p}: not in send order at offset {offs[k]}: msg {idxs[k - 1]} "
                            f"then {idxs[k]} ({len(bad)} inversions)")
    assert not problems, f"{what}: read {len(recs)} records, {len(acked)} acknowledged:\n  " + "\n  ".join(problems)


def assert_one_producer_per_partition(bootstrap, topic, counts, what):
    """DescribeProducers: one idempotent producer at epoch 0 everywhere, last
    sequence = count - 1 per partition (compat_lib.assert_one_idempotent_producer)."""
    assert sorted(counts) == list(range(PARTITIONS)), f"{what}: counts cover {sorted(counts)}"
    assert_one_idempotent_producer(bootstrap, topic, counts, what)


# ---------------------------------------------------------------------------
# kafkajs driver
# ---------------------------------------------------------------------------

class NodeProducer:
    """Runs node/idempotent.js in the background and collects its JSON lines."""

    def __init__(self, tmp_path, bootstrap, topic, count=0, chunk=20):
        self.stop_file = tmp_path / f"stop-{topic}"
        spec = {"bootstrap": bootstrap, "topic": topic, "partitions": PARTITIONS, "count": count,
                "chunk": chunk, "stopFile": str(self.stop_file), "maxInFlightRequests": 5}
        self.spec_path = tmp_path / f"spec-{topic}.json"
        self.spec_path.write_text(json.dumps(spec))
        self.stderr_path = tmp_path / f"node-{topic}.stderr"
        self.lock = threading.Lock()
        self.acked = set()
        self.failures = []
        self.result = None
        self.bad_lines = []
        env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
        self.stderr_f = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(["node", str(NODE_SCRIPT), str(self.spec_path)], cwd=NODE_DIR,
                                     stdout=subprocess.PIPE, stderr=self.stderr_f, env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                self.bad_lines.append(raw[:200])
                continue
            with self.lock:
                if obj["type"] == "ack":
                    self.acked.update(range(obj["from"], obj["to"]))
                elif obj["type"] == "fail":
                    self.failures.append(obj)
                elif obj["type"] == "result":
                    self.result = obj

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def finish(self, timeout=60, stop=True):
        if stop:
            self.stop_file.touch()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"kafkajs producer did not finish within {timeout}s; stderr:\n{self.stderr()}")
        finally:
            self.reader.join(10)
            self.stderr_f.close()
        assert self.result is not None and self.result.get("ok"), (
            f"kafkajs producer failed (rc={self.proc.returncode}): {self.result}\nstderr:\n{self.stderr()}")
        return self.result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def kjs_msgs(n):
    return [Msg(i, i % PARTITIONS, None, f"kjs-{i}".encode(), [("idx", str(i).encode())], 0) for i in range(n)]


# ---------------------------------------------------------------------------
# plain idempotent produce (no restarts)
# ---------------------------------------------------------------------------

@pytest.mark.compat("confluent-kafka", "idempotence")
def test_confluent_idempotent_produce(broker):
    topic = unique_topic("idem-ck")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    errors = []
    msgs = make_messages(3000, "idem-ck", PARTITIONS)
    acks = ck_produce(broker.bootstrap, topic, msgs, error_cb=errors.append, **CK_IDEMPOTENT)
    assert len(acks) == len(msgs)
    fatal = [e for e in errors if e.fatal()]
    assert not fatal, f"confluent-kafka fatal errors: {fatal}"
    assert not errors, f"confluent-kafka client errors: {errors[:5]}"
    counts = per_partition_counts(msgs)
    recs = ck_consume(broker.bootstrap, topic, PARTITIONS, counts, timeout=60)
    verify(recs, msgs)
    assert_one_producer_per_partition(broker.bootstrap, topic, counts, "confluent-kafka")


@pytest.mark.compat("kafka-python", "idempotence")
def test_kafka_python_idempotent_produce(broker):
    topic = unique_topic("idem-kp")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(3000, "idem-kp", PARTITIONS)
    acks = kp_produce(broker.bootstrap, topic, msgs, enable_idempotence=True,
                      max_in_flight_requests_per_connection=5)
    assert len(acks) == len(msgs)
    counts = per_partition_counts(msgs)
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts, timeout=60), msgs)
    assert_one_producer_per_partition(broker.bootstrap, topic, counts, "kafka-python")


@pytest.mark.compat("kcat", "idempotence")
def test_kcat_idempotent_produce(broker):
    """kcat passes librdkafka's enable.idempotence through -X; one partition, one
    kcat process, so one producer id."""
    topic = unique_topic("idem-kcat")
    ck_create_topic(broker.bootstrap, topic, 1)
    n = 2000
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-X", "enable.idempotence=true",
         "-X", "linger.ms=5", input_bytes=b"".join(f"kcat-idem-{i}\n".encode() for i in range(n)))
    recs = ck_consume(broker.bootstrap, topic, 1, {0: n}, timeout=60)
    assert [r.value for r in recs] == [f"kcat-idem-{i}".encode() for i in range(n)]
    assert [r.offset for r in recs] == list(range(n))
    assert_one_idempotent_producer(broker.bootstrap, topic, {0: n}, "kcat")


@pytest.mark.compat("kafkajs", "idempotence")
def test_kafkajs_idempotent_produce(broker, tmp_path):
    topic = unique_topic("idem-kjs")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    n = 1500
    node = NodeProducer(tmp_path, broker.bootstrap, topic, count=n, chunk=50)
    try:
        res = node.finish(timeout=60, stop=False)
    finally:
        node.kill()
    assert not node.bad_lines, node.bad_lines[:3]
    assert not node.failures, f"kafkajs send failures: {node.failures[:3]}\n{node.stderr()}"
    assert (res["sent"], res["acked"]) == (n, n), res
    msgs = kjs_msgs(n)
    counts = per_partition_counts(msgs)
    recs = ck_consume(broker.bootstrap, topic, PARTITIONS, counts, timeout=60)
    verify(recs, msgs, check_timestamp=False)
    assert_one_producer_per_partition(broker.bootstrap, topic, counts, "kafkajs")


# ---------------------------------------------------------------------------
# exactly once across kill -9
# ---------------------------------------------------------------------------

class CkBackground:
    def __init__(self, bootstrap, topic):
        self.topic = topic
        self.errors = []
        self.prod = ck_producer(bootstrap, error_cb=self.on_error, **CK_IDEMPOTENT)
        self.lock = threading.Lock()
        self.acked = {}
        self.failed = Counter()
        self.sent = 0
        self.stop = threading.Event()
        self.error = None
        self.remaining = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_error(self, err):
        with self.lock:
            self.errors.append(err)

    def on_delivery(self, i, err, msg):
        with self.lock:
            if err is None:
                self.acked[i] = (msg.partition(), msg.offset())
            else:
                self.failed[err.name()] += 1

    def run(self):
        try:
            i = 0
            t0 = time.monotonic()
            while not self.stop.is_set():
                ahead = i / CK_RATE - (time.monotonic() - t0)
                if ahead > 0:
                    self.prod.poll(min(ahead, 0.05))
                    continue
                m = make_messages(1, "idem-crash", PARTITIONS, start=i)[0]
                try:
                    self.prod.produce(self.topic, value=m.value, key=m.key, partition=m.partition,
                                      timestamp=m.timestamp, headers=m.headers,
                                      on_delivery=lambda err, msg, i=i: self.on_delivery(i, err, msg))
                except BufferError:
                    self.prod.poll(0.05)
                    continue
                i += 1
                self.sent = i
                self.prod.poll(0)
            self.remaining = self.prod.flush(30)
        except Exception as e:  # noqa: BLE001
            self.error = e

    def acked_count(self):
        with self.lock:
            return len(self.acked)


def crash_cycles(broker, acked_count, describe):
    # First a stall: SIGSTOP for longer than the clients' request timeout, so
    # they time out requests the broker will still read and append after
    # SIGCONT, and retry them on a new connection: those retries must be
    # recognised as duplicates.
    before = acked_count()
    wait_for(lambda: acked_count() > before + 200, 20, f"acks before the stall ({describe()})")
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(STALL_S)
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    for cycle in range(CYCLES):
        before = acked_count()
        wait_for(lambda: acked_count() > before + 200, 20,
                 f"cycle {cycle}: acks after (re)start ({describe()})")
        started = time.monotonic()
        wait_for(lambda: time.monotonic() - started >= 2.0, 5, "2 s of producing")
        broker.kill()
        broker.start()
    before = acked_count()
    wait_for(lambda: acked_count() > before + 200, 20, f"acks after the final restart ({describe()})")


@pytest.mark.compat("confluent-kafka", "idempotence")
def test_confluent_idempotent_exactly_once_across_kill_9(broker, capsys):
    topic = unique_topic("idem-ck-crash")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    bg = CkBackground(broker.bootstrap, topic)
    bg.thread.start()
    try:
        crash_cycles(broker, bg.acked_count,
                     lambda: f"acked={bg.acked_count()} failed={dict(bg.failed)} errors={bg.errors[-3:]}")
    finally:
        bg.stop.set()
        bg.thread.join(60)
    assert bg.error is None, f"producer thread died: {bg.error!r}"
    fatal = [e for e in bg.errors if e.fatal()]
    assert not fatal, f"confluent-kafka raised fatal errors (idempotence state broken): {fatal}"
    acked = dict(bg.acked)
    stats = (f"confluent-kafka idempotent crash test: sent={bg.sent} acked={len(acked)} "
             f"failed={dict(bg.failed)} unflushed={bg.remaining} client errors={len(bg.errors)}")
    with capsys.disabled():
        print("\n" + stats)
    assert len(acked) > 2000, stats
    # message.timeout.ms (60 s) far exceeds the outages: every message must be delivered.
    assert not bg.failed and bg.remaining == 0, stats

    # librdkafka may report a message as delivered without an offset: when
    # a request timed out (the SIGSTOP stall) and a later sequence then
    # succeeded, the earlier one must have been persisted, offset unknown.
    # Such messages must still be present exactly once; only their offset
    # cannot be checked.
    until = defaultdict(int)
    for p, off in acked.values():
        until[p] = max(until[p], (off + 1) if off is not None else 0)
    # Read to the partition ends: messages without a reported offset may lie
    # past the last reported one.
    ends = ck_end_offsets(broker.bootstrap, topic, PARTITIONS)
    for p, end in ends.items():
        until[p] = max(until[p], end)
    recs = ck_consume(broker.bootstrap, topic, PARTITIONS, dict(until), timeout=60)
    check_exactly_once(recs, acked, lambda i: i % PARTITIONS, "confluent-kafka after kill -9 cycles")
    # Every message read sits at the offset its delivery report gave.
    at = {(r.partition, r.offset): rec_idx(r) for r in recs}
    moved = [(i, po, at.get(po)) for i, po in sorted(acked.items())
             if po[1] is not None and at.get(po) != i]
    assert not moved, f"{len(moved)} messages not at their acknowledged offset (idx, (p, off), found): {moved[:10]}"


@pytest.mark.compat("kafkajs", "idempotence")
def test_kafkajs_idempotent_exactly_once_across_kill_9(broker, tmp_path, capsys):
    topic = unique_topic("idem-kjs-crash")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    node = NodeProducer(tmp_path, broker.bootstrap, topic, chunk=20)
    try:
        crash_cycles(broker, node.acked_count,
                     lambda: f"acked={node.acked_count()} failures={node.failures[-2:]} "
                             f"alive={node.proc.poll() is None}\n{node.stderr()[-1500:]}")
        res = node.finish(timeout=60)
    finally:
        node.kill()
    assert not node.bad_lines, node.bad_lines[:3]
    acked = set(node.acked)
    stats = (f"kafkajs idempotent crash test: sent={res['sent']} acked={len(acked)} "
             f"failed={res['failed']} failures={[f['error'][:100] for f in node.failures[:3]]}")
    with capsys.disabled():
        print("\n" + stats)
    assert len(acked) > 600, stats
    # The producer retries forever: no send may fail (a failure would be e.g.
    # OUT_OF_ORDER_SEQUENCE_NUMBER from a broker that forgot the producer).
    assert not node.failures, stats + "\n" + node.stderr()
    until = Counter(i % PARTITIONS for i in range(res["sent"]))
    recs = ck_consume(broker.bootstrap, topic, PARTITIONS, dict(until), timeout=60)
    check_exactly_once(recs, acked, lambda i: i % PARTITIONS, "kafkajs after kill -9 cycles")
    assert len(recs) == res["sent"], f"{len(recs)} records for {res['sent']} messages sent"


# -- duplicate detection across restarts, against Apache Kafka itself ---------------------
#
# A producer state snapshot (Kafka's format) keeps each producer's last batch only: after
# a clean restart (which writes one at the log end) a retry of the last batch is still a
# duplicate, answered with its original offset, while a retry of an older one of the five
# batches the broker remembered before is OUT_OF_ORDER_SEQUENCE_NUMBER. The same raw
# requests (Kafka's own message classes, kastle.compat.Oracle) go to a kastle and to a
# dedicated Kafka 4.4 (the session's cannot be restarted), both restarted the same way.

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
# unknown partition, no leader yet (a topic just created, a partition being reloaded), the
# coordinator loading or not yet available
RETRIABLE_UNTIL_SERVED = (3, 5, 6, 14, 15)


class _RestartableKafka:
    """A dedicated real Kafka with the ``broker`` fixture's restart interface."""

    def __init__(self, workdir):
        from kafka_oracle import RealKafka
        self.k = RealKafka(workdir, overrides={"offsets.topic.num.partitions": 1,
                                               "transaction.state.log.num.partitions": 1})
        self.k.start()
        self.bootstrap = self.k.bootstrap

    def restart(self, graceful=True):
        if not graceful:
            self.k.proc.send_signal(signal.SIGKILL)
            self.k.proc.wait()
            self.k.proc = None
        self.k.stop()
        self.k.start()

    def close(self):
        self.k.stop()


@pytest.fixture(params=["kastle", "kafka"])
def restartable(request, tmp_path):
    if request.param == "kastle":
        yield request.getfixturevalue("broker")
        return
    jvm_lib.jvm_module("kafka4")  # skips when not built
    k = _RestartableKafka(tmp_path / "kafka")
    try:
        yield k
    finally:
        k.close()


def _served(side, label, api, version, body, code_path, timeout=60):
    """Sends until the broker serves the request (a topic just created, a partition
    just reloaded, a coordinator loading): nothing was written by the refusals."""
    deadline = time.monotonic() + timeout
    while True:
        r = side.x(label, api, version, body)
        code = code_path(r)
        if code not in RETRIABLE_UNTIL_SERVED or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_duplicates_after_restarts_as_kafka(restartable):
    from oracle_lib import OracleProxy, Side, batch, records
    b, topic = restartable, unique_topic("idem-restart")
    proxy = OracleProxy()
    phase = iter(range(100))

    def side():
        return Side(getattr(b, "name", "kafka"), b.bootstrap, proxy, f"restart-{next(phase)}")

    def produce(s, blob, what):
        r = _served(s, what, 0, 9, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000,
            "topicData": [{"name": topic, "partitionData": [{"index": 0, "records": blob}]}]},
            lambda r: r["responses"][0]["partitionResponses"][0]["errorCode"])
        p = r["responses"][0]["partitionResponses"][0]
        return p["errorCode"], p["baseOffset"]

    try:
        s = side()
        r = s.x("create", 19, 5, {"topics": [{"name": topic, "numPartitions": 1,
                                               "replicationFactor": 1}], "timeoutMs": 30000})
        assert r["topics"][0]["errorCode"] == 0, r
        r = _served(s, "init producer id", 22, 4,
                    {"transactionalId": None, "transactionTimeoutMs": 60000},
                    lambda r: r["errorCode"])
        assert r["errorCode"] == 0, r
        pid, epoch = r["producerId"], r["producerEpoch"]
        # now, or the producer would expire at the restart (producer.id.expiration.ms)
        ts = int(time.time() * 1000)
        blobs = [batch(records(2, f"s{seq}-"), base_ts=ts, producer_id=pid, epoch=epoch,
                       base_seq=seq) for seq in range(0, 16, 2)]
        for i, blob in enumerate(blobs):
            assert produce(s, blob, f"seq {2 * i}") == (0, 2 * i)
        assert produce(s, blobs[3], "5th most recent, before any restart") == (0, 6)

        b.restart()
        s = side()
        assert produce(s, blobs[7], "last, after a clean restart") == (0, 14)
        for i, what in ((6, "2nd"), (3, "5th")):
            assert produce(s, blobs[i], f"{what} most recent, after a clean restart") == \
                (OUT_OF_ORDER_SEQUENCE_NUMBER, -1)

        b.restart(graceful=False)
        s = side()
        assert produce(s, blobs[7], "last, after kill -9") == (0, 14)
        assert produce(s, blobs[6], "2nd most recent, after kill -9") == \
            (OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
        nxt = batch(records(1, "next"), base_ts=ts, producer_id=pid, epoch=epoch, base_seq=16)
        assert produce(s, nxt, "next in sequence") == (0, 16)
    finally:
        proxy.close()
