"""Kafka transactions with real clients (confluent-kafka / librdkafka; one test
with kafka-python's transactional producer at the end; aiokafka's is in
test_aiokafka.py).

* A transactional producer commits and aborts (with send_offsets_to_transaction):
  a read_committed consumer sees exactly the committed records, in order, and the
  offsets of the committed transaction only; a read_uncommitted one sees all.
* Consume-transform-produce over 100,000 records (3 input partitions, batches of
  ~1000 per transaction): every input record is in the output exactly once and the
  group's committed offsets are the input end offsets.
* A producer SIGKILLed inside an open transaction: the broker aborts it after its
  transaction.timeout.ms, and read_committed consumers get past it without ever
  seeing its records.
* A second producer with the same transactional.id fences the first.
* The broker is SIGKILLed and restarted while transactions commit continuously:
  every transaction is all-or-nothing for read_committed readers.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import pytest

from compat_lib import ck_create_topic, unique_topic

TXN_OVERRIDES = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
    "transaction.state.log.num.partitions": "5",
    "offsets.topic.num.partitions": "5",
    "group.initial.rebalance.delay.ms": "0",
}


@pytest.fixture
def tbroker(broker_factory):
    return broker_factory(TXN_OVERRIDES)


def txn_producer(bootstrap, txn_id, **kw):
    from confluent_kafka import Producer
    cfg = {"bootstrap.servers": bootstrap, "transactional.id": txn_id,
           "client.id": f"compat-txn-{txn_id}", "linger.ms": 5,
           "transaction.timeout.ms": 30_000}
    cfg.update(kw)
    return Producer(cfg)


def consumer(bootstrap, isolation, group="kastle-compat-txn-unused", **kw):
    from confluent_kafka import Consumer
    cfg = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
           "enable.auto.offset.store": False, "enable.partition.eof": True,
           "auto.offset.reset": "earliest", "isolation.level": isolation,
           "fetch.wait.max.ms": 100, "client.id": f"compat-txn-{isolation}"}
    cfg.update(kw)
    return Consumer(cfg)


def read_all(bootstrap, topic, partitions, isolation, timeout=60.0, expect_total=None):
    """Read every partition from 0 until EOF (for read_committed: the LSO) on all
    partitions, and, if given, until expect_total records were read.
    Returns {partition: [(offset, key, value)]}."""
    from confluent_kafka import KafkaError, TopicPartition
    c = consumer(bootstrap, isolation)
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out = defaultdict(list)
        eof = set()
        total = 0
        deadline = time.monotonic() + timeout
        while len(eof) < partitions or (expect_total is not None and total < expect_total):
            assert time.monotonic() < deadline, (
                f"{isolation} read of {topic} timed out: eof={sorted(eof)} read {total}")
            for m in c.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError(f"consumer error: {m.error()}")
                out[m.partition()].append((m.offset(), m.key(), m.value()))
                total += 1
                eof.discard(m.partition())
        return out
    finally:
        c.close()


def end_offsets(bootstrap, topic, partitions, isolation):
    """ListOffsets latest through a consumer of the given isolation level
    (read_committed: the last stable offset)."""
    from confluent_kafka import TopicPartition
    c = consumer(bootstrap, isolation)
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(partitions)]
    finally:
        c.close()


def wait_stable(bootstrap, topic, partitions, timeout):
    """Wait until LSO == HW on every partition (no open transaction)."""
    deadline = time.monotonic() + timeout
    while True:
        lso = end_offsets(bootstrap, topic, partitions, "read_committed")
        hw = end_offsets(bootstrap, topic, partitions, "read_uncommitted")
        if lso == hw:
            return hw
        assert time.monotonic() < deadline, f"{topic}: LSO {lso} still behind HW {hw} after {timeout}s"
        time.sleep(0.2)


def committed_offsets(bootstrap, group, topic, partitions):
    from confluent_kafka import TopicPartition
    c = consumer(bootstrap, "read_committed", group=group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in sorted(tps, key=lambda t: t.partition)]
    finally:
        c.close()


def values(recs_by_p, p=None):
    if p is None:
        return [v for q in sorted(recs_by_p) for (_, _, v) in recs_by_p[q]]
    return [v for (_, _, v) in recs_by_p.get(p, [])]


# ---------------------------------------------------------------------------
# commit / abort / isolation
# ---------------------------------------------------------------------------

@pytest.mark.compat("confluent-kafka", "transactions")
def test_commit_abort_and_isolation(tbroker):
    from confluent_kafka import TopicPartition
    bs = tbroker.bootstrap
    topic = unique_topic("txn-basic")
    ck_create_topic(bs, topic, partitions=2)
    group = unique_topic("txn-basic-group")
    cons = consumer(bs, "read_committed", group=group)
    meta = cons.consumer_group_metadata()

    p = txn_producer(bs, unique_topic("txid"))
    p.init_transactions(15)

    def txn(tag, n, commit, offset):
        p.begin_transaction()
        for i in range(n):
            p.produce(topic, key=f"{tag}".encode(), value=f"{tag}-{i}".encode(), partition=i % 2)
        p.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], meta, 15)
        # Deliver before ending: an abort purges messages not yet sent.
        assert p.flush(15) == 0
        if commit:
            p.commit_transaction(15)
        else:
            p.abort_transaction(15)

    txn("A", 10, True, 5)
    txn("B", 10, False, 99)
    txn("C", 10, True, 7)
    txn("D", 4, False, 123)

    rc = read_all(bs, topic, 2, "read_committed")
    for part in range(2):
        want = [f"{t}-{i}".encode() for t in "AC" for i in range(10) if i % 2 == part]
        assert values(rc, part) == want, f"read_committed partition {part}"
    ru = read_all(bs, topic, 2, "read_uncommitted")
    for part in range(2):
        want = [f"{t}-{i}".encode() for t, n in (("A", 10), ("B", 10), ("C", 10), ("D", 4))
                for i in range(n) if i % 2 == part]
        assert values(ru, part) == want, f"read_uncommitted partition {part}"
    # 17 records + 4 markers per partition.
    hw = end_offsets(bs, topic, 2, "read_uncommitted")
    assert hw == [21, 21], hw
    assert end_offsets(bs, topic, 2, "read_committed") == hw
    # Only the committed transactions' offsets count; the last one wins.
    assert committed_offsets(bs, group, topic, 1) == [7]
    cons.close()
    assert p.flush(5) == 0


# ---------------------------------------------------------------------------
# consume-transform-produce
# ---------------------------------------------------------------------------

CTP_RECORDS = int(os.environ.get("TXN_CTP_RECORDS", "100000"))
CTP_PARTITIONS = 3
CTP_BATCH = 1000


@pytest.mark.compat("confluent-kafka", "transactions")
def test_consume_transform_produce_exactly_once(tbroker):
    from confluent_kafka import Producer, TopicPartition
    bs = tbroker.bootstrap
    src, dst = unique_topic("ctp-in"), unique_topic("ctp-out")
    ck_create_topic(bs, src, partitions=CTP_PARTITIONS)
    ck_create_topic(bs, dst, partitions=CTP_PARTITIONS)
    group = unique_topic("ctp-group")

    t0 = time.monotonic()
    pre = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 20,
                    "batch.num.messages": 10_000, "queue.buffering.max.messages": 200_000})
    for i in range(CTP_RECORDS):
        pre.produce(src, value=str(i).encode(), partition=i % CTP_PARTITIONS)
        if i % 10_000 == 0:
            pre.poll(0)
    assert pre.flush(60) == 0
    t_fill = time.monotonic() - t0
    in_end = end_offsets(bs, src, CTP_PARTITIONS, "read_uncommitted")
    assert sum(in_end) == CTP_RECORDS

    cons = consumer(bs, "read_committed", group=group, **{"enable.partition.eof": False,
                                                         "fetch.wait.max.ms": 50,
                                                         "session.timeout.ms": 30_000})
    cons.subscribe([src])
    prod = txn_producer(bs, unique_topic("ctp-txid"), **{"linger.ms": 10,
                                                         "batch.num.messages": 10_000})
    prod.init_transactions(30)
    t1 = time.monotonic()
    done, txns = 0, 0
    deadline = time.monotonic() + 180
    while done < CTP_RECORDS:
        assert time.monotonic() < deadline, f"consume-transform-produce stuck at {done}/{CTP_RECORDS}"
        msgs = cons.consume(num_messages=CTP_BATCH, timeout=1.0)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        prod.begin_transaction()
        nxt = {}
        for m in msgs:
            while True:
                try:
                    prod.produce(dst, key=m.value(), value=b"o:" + m.value(), partition=m.partition())
                    break
                except BufferError:
                    prod.poll(0.01)
            nxt[m.partition()] = max(nxt.get(m.partition(), 0), m.offset() + 1)
        prod.send_offsets_to_transaction([TopicPartition(src, q, o) for q, o in nxt.items()],
                                         cons.consumer_group_metadata(), 30)
        prod.commit_transaction(30)
        done += len(msgs)
        txns += 1
    t_loop = time.monotonic() - t1
    cons.close()
    print(f"\nctp: filled {CTP_RECORDS} in {t_fill:.1f}s; {txns} transactions in {t_loop:.1f}s "
          f"({CTP_RECORDS / max(t_loop, 1e-3):.0f} records/s)")
    assert done == CTP_RECORDS

    out = read_all(bs, dst, CTP_PARTITIONS, "read_committed", timeout=120, expect_total=CTP_RECORDS)
    counts = Counter(values(out))
    want = {b"o:%d" % i for i in range(CTP_RECORDS)}
    dups = {v: c for v, c in counts.items() if c > 1}
    missing = want - set(counts)
    extra = set(counts) - want
    assert not dups and not missing and not extra, (
        f"output: {len(dups)} duplicated (e.g. {list(dups.items())[:5]}), {len(missing)} missing "
        f"(e.g. {sorted(missing)[:5]}), {len(extra)} unexpected")
    # Per partition, the output is in input order.
    for q in range(CTP_PARTITIONS):
        seq = [int(v[2:]) for v in values(out, q)]
        assert seq == sorted(seq), f"output partition {q} out of order"
    assert committed_offsets(bs, group, src, CTP_PARTITIONS) == in_end


# ---------------------------------------------------------------------------
# a producer killed mid-transaction
# ---------------------------------------------------------------------------

ZOMBIE = r"""
import sys, time
from confluent_kafka import Producer
bs, topic, txid = sys.argv[1:4]
p = Producer({"bootstrap.servers": bs, "transactional.id": txid, "transaction.timeout.ms": 3000,
              "linger.ms": 0})
p.init_transactions(15)
p.begin_transaction()
for i in range(50):
    p.produce(topic, value=b"zombie-%d" % i, partition=0)
assert p.flush(15) == 0
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.compat("confluent-kafka", "transactions")
def test_killed_producer_is_aborted_after_timeout(tbroker, tmp_path):
    bs = tbroker.bootstrap
    topic = unique_topic("txn-zombie")
    ck_create_topic(bs, topic, partitions=1)

    good = txn_producer(bs, unique_topic("good"))
    good.init_transactions(15)
    good.begin_transaction()
    for i in range(10):
        good.produce(topic, value=b"before-%d" % i, partition=0)
    good.commit_transaction(15)

    zombie_id = unique_topic("zombie")
    proc = subprocess.Popen([sys.executable, "-c", ZOMBIE, bs, topic, zombie_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "ready", f"zombie producer did not start: {line!r} {proc.stderr.read()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Committed records after the open transaction.
    good.begin_transaction()
    for i in range(10):
        good.produce(topic, value=b"after-%d" % i, partition=0)
    good.commit_transaction(15)
    # The zombie's open transaction holds the LSO.
    lso = end_offsets(bs, topic, 1, "read_committed")[0]
    assert lso == 11, f"LSO {lso}: expected the zombie's first offset 11"

    # A read_committed consumer gets past it once the broker aborts it.
    from confluent_kafka import TopicPartition
    c = consumer(bs, "read_committed", **{"enable.partition.eof": False})
    c.assign([TopicPartition(topic, 0, 0)])
    seen = []
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 20:
            assert time.monotonic() < deadline, (
                f"read_committed consumer stuck after {len(seen)} records: {seen[-3:]}")
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error() is None:
                    seen.append(m.value())
        waited = time.monotonic() - killed_at
    finally:
        c.close()
    print(f"\nzombie aborted; consumer progressed {waited:.1f}s after the kill")
    assert seen == [b"before-%d" % i for i in range(10)] + [b"after-%d" % i for i in range(10)]
    assert waited >= 1.5, f"the open transaction was aborted before its timeout ({waited:.1f}s)"
    hw = wait_stable(bs, topic, 1, 10)
    assert hw == [10 + 1 + 50 + 10 + 1 + 1]  # before+commit, zombie, after+commit, abort marker
    ru = read_all(bs, topic, 1, "read_uncommitted")
    assert sum(1 for v in values(ru) if v.startswith(b"zombie-")) == 50
    assert good.flush(5) == 0


# ---------------------------------------------------------------------------
# fencing
# ---------------------------------------------------------------------------

@pytest.mark.compat("confluent-kafka", "transactions")
def test_second_producer_fences_the_first(tbroker):
    from confluent_kafka import KafkaError, KafkaException
    bs = tbroker.bootstrap
    topic = unique_topic("txn-fence")
    ck_create_topic(bs, topic, partitions=1)
    txid = unique_topic("fence")

    p1 = txn_producer(bs, txid)
    p1.init_transactions(15)
    p1.begin_transaction()
    for i in range(5):
        p1.produce(topic, value=b"p1-%d" % i, partition=0)
    assert p1.flush(15) == 0

    p2 = txn_producer(bs, txid)
    p2.init_transactions(15)  # fences p1 and aborts its open transaction

    err = None
    try:
        p1.produce(topic, value=b"p1-late", partition=0)
        p1.flush(10)
        p1.commit_transaction(15)
    except KafkaException as e:
        err = e.args[0]
    assert err is not None, "the fenced producer committed"
    assert err.fatal(), f"fencing error should be fatal: {err}"
    assert err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                          KafkaError.INVALID_PRODUCER_EPOCH), err

    p2.begin_transaction()
    for i in range(3):
        p2.produce(topic, value=b"p2-%d" % i, partition=0)
    p2.commit_transaction(15)

    rc = read_all(bs, topic, 1, "read_committed")
    assert values(rc) == [b"p2-%d" % i for i in range(3)]
    ru = read_all(bs, topic, 1, "read_uncommitted")
    assert b"p1-late" not in values(ru), "a fenced producer's record was appended"


# ---------------------------------------------------------------------------
# broker kill -9 during commits
# ---------------------------------------------------------------------------

PER_TXN = 6
KILL_PARTITIONS = 3


class TxnLoop(threading.Thread):
    """Runs transactions back to back: txn n writes PER_TXN records 'n:k' over
    all partitions. Records per txn: committed / aborted / unknown."""

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        self.bs, self.topic = bootstrap, topic
        self.stop = threading.Event()
        self.outcome = {}
        self.errors = Counter()
        self.fatal = []
        self.producers = 0

    def new_producer(self):
        self.producers += 1
        p = txn_producer(self.bs, "kill-loop", **{
            "transaction.timeout.ms": 10_000, "linger.ms": 1,
            "socket.connection.setup.timeout.ms": 2_000,
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "retry.backoff.ms": 100})
        while not self.stop.is_set():
            try:
                p.init_transactions(10)
                return p
            except Exception as e:  # noqa: BLE001 - broker may be down
                self.errors[f"init: {e}"] += 1
                if getattr(e.args[0], "fatal", lambda: False)():
                    p = txn_producer(self.bs, "kill-loop", **{"transaction.timeout.ms": 10_000})
                time.sleep(0.2)
        return None

    def finish(self, p, commit):
        """Commit (or abort) with retries; returns 'committed'/'aborted' or raises."""
        from confluent_kafka import KafkaException
        for _ in range(60):
            try:
                if commit:
                    p.commit_transaction(10)
                    return "committed"
                p.abort_transaction(10)
                return "aborted"
            except KafkaException as e:
                err = e.args[0]
                self.errors[f"{'commit' if commit else 'abort'}: {err.name()}"] += 1
                if err.fatal():
                    raise
                if commit and err.txn_requires_abort():
                    commit = False
                    continue
                if err.retriable() or not commit:
                    time.sleep(0.1)
                    continue
                raise
        raise RuntimeError("could not finish transaction")

    def run(self):
        from confluent_kafka import KafkaException
        p = self.new_producer()
        n = 0
        while p is not None and not self.stop.is_set():
            self.outcome[n] = "unknown"
            try:
                p.begin_transaction()
                for k in range(PER_TXN):
                    while True:
                        try:
                            p.produce(self.topic, value=f"{n}:{k}".encode(), partition=k % KILL_PARTITIONS)
                            break
                        except BufferError:
                            p.poll(0.05)
                self.outcome[n] = self.finish(p, True)
            except KafkaException as e:
                err = e.args[0]
                self.errors[f"txn: {err.name()}"] += 1
                if err.fatal():
                    self.fatal.append(str(err))
                    p = self.new_producer()
                else:
                    try:
                        self.outcome[n] = self.finish(p, False)
                    except KafkaException:
                        p = self.new_producer()
            n += 1
        if p is not None:
            p.flush(5)


@pytest.mark.compat("confluent-kafka", "transactions")
def test_broker_kill_during_commits_is_all_or_nothing(tbroker):
    bs = tbroker.bootstrap
    topic = unique_topic("txn-kill")
    ck_create_topic(bs, topic, partitions=KILL_PARTITIONS)
    loop = TxnLoop(bs, topic)
    loop.start()
    try:
        for cycle in range(3):
            deadline = time.monotonic() + 20
            base = sum(1 for o in list(loop.outcome.values()) if o == "committed")
            # let it commit for a while (at least a few transactions)
            time.sleep(1.5)
            while sum(1 for o in list(loop.outcome.values()) if o == "committed") < base + 5:
                assert time.monotonic() < deadline, (
                    f"cycle {cycle}: no progress; errors {dict(loop.errors)}")
                time.sleep(0.1)
            tbroker.kill()
            time.sleep(0.3)
            tbroker.start()
        time.sleep(2.0)
    finally:
        loop.stop.set()
        loop.join(60)
    assert not loop.is_alive(), "transaction loop did not stop"

    outcome = dict(loop.outcome)
    committed = sorted(n for n, o in outcome.items() if o == "committed")
    aborted = sorted(n for n, o in outcome.items() if o == "aborted")
    unknown = sorted(n for n, o in outcome.items() if o == "unknown")
    print(f"\nkill loop: {len(outcome)} txns, {len(committed)} committed, {len(aborted)} aborted, "
          f"{len(unknown)} unknown, {loop.producers} producer instances; errors {dict(loop.errors)}")
    assert len(committed) >= 15

    # Open transactions left by a dead producer instance are aborted after 10 s.
    hw = wait_stable(bs, topic, KILL_PARTITIONS, 30)
    rc = read_all(bs, topic, KILL_PARTITIONS, "read_committed", timeout=60)
    per_txn = defaultdict(set)
    for p, recs in rc.items():
        for (_, _, v) in recs:
            n, k = v.decode().split(":")
            key = (int(k), p)
            assert key not in per_txn[int(n)], f"txn {n}: record {k} twice"
            per_txn[int(n)].add(key)
    problems = []
    for n, ks in sorted(per_txn.items()):
        if len(ks) != PER_TXN:
            problems.append(f"txn {n} ({outcome.get(n)}): {len(ks)}/{PER_TXN} records visible: {sorted(ks)}")
    for n in committed:
        if len(per_txn.get(n, ())) != PER_TXN:
            problems.append(f"txn {n} was committed but {len(per_txn.get(n, ()))} records are visible")
    for n in aborted:
        if per_txn.get(n):
            problems.append(f"txn {n} was aborted but {len(per_txn[n])} records are visible")
    assert not problems, f"{len(problems)} problems (HW {hw}):\n  " + "\n  ".join(problems[:30])
    # Per partition, visible transactions are in order.
    for p, recs in rc.items():
        ns = [int(v.decode().split(":")[0]) for (_, _, v) in recs]
        assert ns == sorted(ns), f"partition {p}: transactions out of order"


# ---------------------------------------------------------------------------
# kafka-python's transactional producer
# ---------------------------------------------------------------------------

@pytest.mark.compat("kafka-python", "transactions")
def test_kafka_python_commit_abort_and_offsets(tbroker):
    """kafka-python: a committed, an aborted and a committed transaction (the last
    with send_offsets_to_transaction); read_committed sees the committed records
    only, read_uncommitted all, and the group's offsets are those of the commit."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    bs = tbroker.bootstrap
    topic, src = unique_topic("txn-kp"), unique_topic("txn-kp-src")
    ck_create_topic(bs, topic, partitions=2)
    ck_create_topic(bs, src, partitions=1)
    group = unique_topic("txn-kp-group")
    prod = KafkaProducer(bootstrap_servers=bs, transactional_id=unique_topic("kp-tid"),
                         client_id="compat-kp-txn", request_timeout_ms=15_000)
    try:
        prod.init_transactions()
        prod.begin_transaction()
        for i in range(10):
            prod.send(topic, f"c1-{i}".encode(), partition=i % 2)
        prod.commit_transaction()
        prod.begin_transaction()
        for i in range(10):
            prod.send(topic, f"ab-{i}".encode(), partition=i % 2)
        # flush first: an abort drops batches still in the accumulator, and the
        # aborted records are meant to reach the log (for read_uncommitted to see)
        prod.flush(timeout=15)
        prod.abort_transaction()
        prod.begin_transaction()
        for i in range(10):
            prod.send(topic, f"c2-{i}".encode(), partition=i % 2)
        prod.send_offsets_to_transaction({TopicPartition(src, 0): OffsetAndMetadata(42, "", -1)}, group)
        prod.commit_transaction()
    finally:
        prod.close(timeout=10)

    def read(isolation, n):
        c = KafkaConsumer(bootstrap_servers=bs, group_id=None, isolation_level=isolation,
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          fetch_max_wait_ms=200)
        try:
            tps = [TopicPartition(topic, p) for p in (0, 1)]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            out, deadline = [], time.monotonic() + 30
            # by record count, then one more poll for anything unexpected
            while len(out) < n:
                assert time.monotonic() < deadline, \
                    f"{isolation}: read {len(out)} records, positions {[c.position(tp) for tp in tps]}"
                for recs in c.poll(timeout_ms=300).values():
                    out.extend(r.value.decode() for r in recs)
            for recs in c.poll(timeout_ms=500).values():
                out.extend(r.value.decode() for r in recs)
            return sorted(out)
        finally:
            c.close()

    committed_vals = sorted([f"c1-{i}" for i in range(10)] + [f"c2-{i}" for i in range(10)])
    assert read("read_committed", 20) == committed_vals
    assert read("read_uncommitted", 30) == sorted(committed_vals + [f"ab-{i}" for i in range(10)])
    from confluent_kafka import Consumer, TopicPartition as CkTP
    c = Consumer({"bootstrap.servers": bs, "group.id": group})
    try:
        [tp] = c.committed([CkTP(src, 0)], timeout=10)
    finally:
        c.close()
    assert tp.offset == 42, f"offset committed with the transaction: {tp}"
