"""Simulated power loss: kastle's data dir on kastle-lazyfs (tools/lazyfs), a FUSE
pass-through filesystem that keeps every write in memory until fsync and every new
directory entry / rename / unlink undoable until its directory is fsynced.

Each round: mount lazyfs over the same backing dir, start kastle on it, produce with
an idempotent acks=all producer (recording every acknowledged offset) and commit
group offsets, then at a seeded random moment kill -9 kastle AND `crash torn=SEED`
the filesystem (unsynced pages dropped, some files keep a torn prefix of them,
unsynced metadata undone), unmount, remount, restart kastle and check:

- durable mode (log.flush.interval.messages=1, the default): every acknowledged
  record is present at its acknowledged offset, in order, exactly once; no
  unacknowledged record appears twice; the last committed group offset is there;
- page-cache mode (log.flush.interval.messages large): the broker starts and serves
  a consistent log: contiguous offsets, every record one that was produced (CRC-checked
  by the client), each partition in production order; nothing is required beyond
  what was flushed.

Both modes also seek to sampled offsets (the offset index must answer).
Every round prints its seed. Environment:
  KASTLE_POWERLOSS_SEED=N    the first round's seed (default: random); rounds use N, N+1, ...
  KASTLE_POWERLOSS_ROUNDS=N  rounds per mode (default 4: the test command's bounded run)
Rounds build on the log the earlier ones left, so a failing round r of a run whose first
seed was S is replayed with KASTLE_POWERLOSS_SEED=S KASTLE_POWERLOSS_ROUNDS=r+1 (the first
line of each test's output names S); KASTLE_POWERLOSS_SEED=<its seed> KASTLE_POWERLOSS_ROUNDS=1
replays its choices on a fresh log. The seeds fix the crash points, the commits and which
unsynced pages survive torn; the broker's and the client's timing are not replayed.
"""
import mmap
import os
import random
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from compat_lib import ck_create_topic, unique_topic
from conftest import kastle_bin

PARTITIONS = 3
ROUNDS = int(os.environ.get("KASTLE_POWERLOSS_ROUNDS", "4"))
BASE_SEED = int(os.environ.get("KASTLE_POWERLOSS_SEED", str(random.randrange(1, 1 << 31))))
GROUP = "powerloss-group"
# Each round re-reads its whole topic: a new topic every TOPIC_ROUNDS rounds keeps a
# long loop linear (the older topics stay on disk, the newest few created-topic checks run).
TOPIC_ROUNDS = 10

pytestmark = pytest.mark.timeout(120 + 20 * ROUNDS)


def lazyfs_bin() -> Path:
    return Path(os.environ.get("KASTLE_LAZYFS_BIN", kastle_bin().parent / "kastle-lazyfs"))


def _fuse_usable():
    if os.geteuid() != 0:
        return "needs root (mount(2) of a FUSE filesystem)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not lazyfs_bin().exists():
        return f"{lazyfs_bin()} not built (cargo build --release -p kastle-lazyfs)"
    return None


class LazyFs:
    """One kastle-lazyfs process serving `backing` at `mnt`."""

    def __init__(self, backing: Path, mnt: Path, log: Path):
        self.backing, self.mnt, self.log = backing, mnt, log
        self.proc = None

    def mount(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([str(lazyfs_bin()), str(self.backing), str(self.mnt)],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"kastle-lazyfs did not mount: {self.log.read_text()[-2000:]}")
            time.sleep(0.02)

    def ctl(self, cmd: str) -> str:
        with open(self.mnt / ".lazyfs-ctl", "w") as f:
            f.write(cmd)
        with open(self.mnt / ".lazyfs-ctl") as f:
            return f.read()

    def unmount(self):
        if self.proc is None:
            return
        for _ in range(50):
            r = subprocess.run(["umount", str(self.mnt)], capture_output=True)
            if r.returncode == 0 or not os.path.ismount(self.mnt):
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Producing:
    """An idempotent acks=all producer in a thread, recording acknowledged offsets."""

    def __init__(self, bootstrap, topic, first_idx):
        self.topic = topic
        self.prod = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 2, "message.timeout.ms": 10_000, "request.timeout.ms": 3_000,
            "retry.backoff.ms": 50, "reconnect.backoff.max.ms": 200,
        })
        self.lock = threading.Lock()
        self.acked = {}   # idx -> (partition, offset)
        self.sent = {}    # idx -> partition
        self.next = first_idx
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, i, err, msg):
        if err is None:
            with self.lock:
                self.acked[i] = (msg.partition(), msg.offset())

    def run(self):
        try:
            while not self.stop.is_set():
                i = self.next
                p = i % PARTITIONS
                try:
                    self.prod.produce(self.topic, value=value_of(i), key=str(i).encode(), partition=p,
                                      on_delivery=lambda err, msg, i=i: self.on_delivery(i, err, msg))
                except BufferError:
                    self.prod.poll(0.01)
                    continue
                self.sent[i] = p
                self.next = i + 1
                if i % 50 == 0:
                    self.prod.poll(0.002)
                else:
                    self.prod.poll(0)
        except Exception as e:  # noqa: BLE001
            self.error = e

    def abandon(self):
        """After the crash: stop, drop everything unacknowledged, serve callbacks."""
        self.stop.set()
        self.thread.join(10)
        self.prod.purge(in_queue=True, in_flight=True, blocking=False)
        self.prod.flush(5)


def produce_acked(bootstrap, topic, n):
    """n records to partition 0 with an idempotent acks=all producer: [(offset, idx)] acknowledged."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 1})
    acked = []
    for i in range(n):
        p.produce(topic, value=value_of(i), key=str(i).encode(), partition=0,
                  on_delivery=lambda err, msg, i=i: err is None and acked.append((msg.offset(), i)))
    assert p.flush(15) == 0, f"{topic}: records not delivered"
    assert len(acked) == n, f"{topic}: {n - len(acked)} records not acknowledged"
    return sorted(acked)


def value_of(i: int) -> bytes:
    return (f"powerloss-{i}-" * 4).encode()


def commit(bootstrap, topic, offset):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        c.close()


def committed(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=15)[0].offset
    finally:
        c.close()


def read_partition(bootstrap, topic, p, start=0, limit=None, timeout=30.0):
    """Records of partition p from `start` up to its high watermark: [(offset, idx)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "check.crcs": True, "fetch.wait.max.ms": 50,
                  "enable.partition.eof": True})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
        c.assign([TopicPartition(topic, p, start)])
        out = []
        deadline = time.monotonic() + timeout
        end = high if limit is None else min(high, start + limit)
        while (not out or out[-1][0] + 1 < end) and start < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"p{p}: read {len(out)} records from {start}, high watermark {high}")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"p{p}: consumer error {m.error()}")
            v = m.value()
            key = m.key().decode()
            i = int(key)
            assert v == value_of(i), f"p{p}@{m.offset()}: garbage record (key {key!r}, value {v[:40]!r})"
            out.append((m.offset(), i))
        return out, high
    finally:
        c.close()


def check_log(bootstrap, topic, rng, acked, durable, committed_at, kept, what):
    """Reads every partition back and checks it against the acknowledgements and
    against `kept` (idx -> (partition, offset): records that must still be there)."""
    seen = {}
    for p in range(PARTITIONS):
        recs, high = read_partition(bootstrap, topic, p)
        offs = [o for o, _ in recs]
        assert offs == list(range(offs[0], offs[0] + len(offs))) if offs else True, \
            f"{what}: p{p}: offsets not contiguous: {offs[:20]}"
        idxs = [i for _, i in recs]
        assert all(i % PARTITIONS == p for i in idxs), f"{what}: p{p}: record of another partition"
        for o, i in recs:
            assert i not in seen, f"{what}: message {i} twice: p{p}@{seen[i]} and p{p}@{o}"
            seen[i] = o
        # production order within a partition (one producer per round, rounds in order)
        assert idxs == sorted(idxs), f"{what}: p{p}: out of order: {idxs[:30]}"
        # the offset index must answer a seek into the middle
        if len(recs) > 2:
            for o, i in rng.sample(recs, min(3, len(recs))):
                got, _ = read_partition(bootstrap, topic, p, start=o, limit=1)
                assert got and got[0] == (o, i), f"{what}: p{p}: seek to {o} gave {got[:1]}, want {(o, i)}"
    if durable:
        lost = [(i, po) for i, po in sorted(acked.items()) if seen.get(i) != po[1]]
        assert not lost, (f"{what}: {len(lost)} acknowledged records lost or moved "
                          f"(idx, (partition, offset)): {lost[:10]}")
        if committed_at is not None:
            got = committed(bootstrap, topic)
            assert got == committed_at, f"{what}: committed offset {got}, acknowledged commit was {committed_at}"
    gone = [(i, po) for i, po in sorted(kept.items()) if seen.get(i) != po[1]]
    assert not gone, (f"{what}: {len(gone)} records a consumer had read are gone or moved "
                      f"(idx, (partition, offset)): {gone[:10]}")
    return {i: (i % PARTITIONS, o) for i, o in seen.items()}


class Watching:
    """A consumer reading the topic while it is produced to: what it sees."""

    def __init__(self, bootstrap, topic):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{time.monotonic_ns()}",
                           "enable.auto.commit": False, "fetch.wait.max.ms": 20,
                           "reconnect.backoff.max.ms": 200})
        starts = []
        for p in range(PARTITIONS):
            _, high = self.c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            starts.append(TopicPartition(topic, p, high))
        self.c.assign(starts)
        self.seen = {}   # idx -> (partition, offset)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            m = self.c.poll(0.05)
            if m is None or m.error():
                continue
            self.seen[int(m.key().decode())] = (m.partition(), m.offset())

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.c.close()
        return self.seen


def lazyfs_broker(broker_factory, tmp_path, overrides):
    """A stopped broker whose data dir is a kastle-lazyfs mount (not yet mounted) over
    `tmp_path/backing`: (LazyFs, broker). Skips when FUSE or the binary is missing."""
    skip = _fuse_usable()
    if skip:
        pytest.skip(skip)
    backing, mnt = tmp_path / "backing", tmp_path / "mnt"
    backing.mkdir()
    fs = LazyFs(backing, mnt, tmp_path / "lazyfs.log")
    broker = broker_factory(overrides, start=False)
    broker.data_dir = mnt
    return fs, broker


def run_rounds(broker_factory, tmp_path, capsys, durable):
    mode = "durable" if durable else "page-cache"
    overrides = {"num.partitions": str(PARTITIONS)}
    if not durable:
        overrides["log.flush.interval.messages"] = "1000000000"
    # small segments: rolls, index files and their fsyncs are part of every round
    overrides["log.segment.bytes"] = str(1024 * 1024)
    fs, broker = lazyfs_broker(broker_factory, tmp_path, overrides)
    base = unique_topic("powerloss")
    acked_all = {}
    kept = {}   # records a consumer has read that must survive every later crash
    extra_topics = []   # (topic, [(offset, idx)] acknowledged)
    committed_at = None
    next_idx = 0
    log = []
    try:
        for r in range(ROUNDS):
            seed = BASE_SEED + r
            rng = random.Random(seed)
            what = f"{mode} round {r} seed={seed}"
            fs.mount()
            broker.start()
            if r % TOPIC_ROUNDS == 0:
                topic = f"{base}-{r // TOPIC_ROUNDS}"
                ck_create_topic(broker.bootstrap, topic, PARTITIONS)
                acked_all, kept, committed_at = {}, {}, None
            # durable mode: a consumer sees only fsynced records, so what it reads must survive
            watch = Watching(broker.bootstrap, topic) if durable else None
            prod = Producing(broker.bootstrap, topic, next_idx)
            prod.thread.start()
            # the crash comes a seeded while after the first acknowledgement
            deadline = time.monotonic() + 15
            while not prod.acked and time.monotonic() < deadline and prod.error is None:
                time.sleep(0.01)
            assert prod.acked, f"{what}: no acknowledgement within 15 s"
            if durable:
                # a topic created (acknowledged) during the round: its partition directory
                # and the records acknowledged in it must survive the power loss too
                extra = unique_topic(f"powerloss-new{r}")
                ck_create_topic(broker.bootstrap, extra, 1)
                extra_topics.append((extra, produce_acked(broker.bootstrap, extra, 20)))
            run_for = rng.uniform(0.1, 1.2)
            t0 = time.monotonic()
            n_commit = 0
            while time.monotonic() - t0 < run_for:
                time.sleep(0.1)
                if durable and rng.random() < 0.5:
                    n_commit += 1
                    off = (seed % 1000) * 100 + n_commit
                    commit(broker.bootstrap, topic, off)
                    committed_at = off
            broker.kill()
            report = fs.ctl(f"crash torn={seed}")
            prod.abandon()
            watched = watch.close() if watch else {}
            assert prod.error is None, f"{what}: producer thread died: {prod.error!r}"
            fs.unmount()
            acked_all.update(prod.acked)
            kept.update(watched)
            next_idx = prod.next
            fs.mount()
            broker.start()
            # what recovery left is on disk: it must be there after later crashes too
            recovered = check_log(broker.bootstrap, topic, rng, acked_all, durable, committed_at, kept, what)
            kept.update(recovered)
            for t, want in extra_topics[-TOPIC_ROUNDS:]:
                got, _ = read_partition(broker.bootstrap, t, 0)
                assert got == want, f"{what}: topic {t} created during an earlier round: {got[:5]}, want {want[:5]}"
            n = len(recovered)
            broker.stop()
            fs.unmount()
            first = report.splitlines()[0] if report else ""
            log.append(f"{what}: produced {len(prod.sent)} acked {len(prod.acked)} watched {len(watched)} "
                       f"after {run_for:.2f}s; read back {n}; lazyfs: {first}")
    finally:
        with capsys.disabled():
            print(f"\n  {mode}: KASTLE_POWERLOSS_SEED={BASE_SEED} KASTLE_POWERLOSS_ROUNDS={ROUNDS}")
            for line in log:
                print("  " + line)
        if broker.alive():
            broker.kill()
        fs.unmount()
    if durable:
        assert acked_all, "no record was acknowledged in any round"


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path, data, sync, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def _lazyfs_workload(m: Path):
    """The same file-system history for the semantics checks below."""
    (m / "d").mkdir()
    (m / "e").mkdir()
    (m / "g").mkdir()
    _write(m / "d" / "synced", b"A" * 10_000, True)
    _write(m / "d" / "renamed-away", b"R" * 100, True)
    _write(m / "d" / "unlinked", b"U" * 100, True)
    _write(m / "d" / "shrunk", b"S" * 8192, True)
    fd = os.open(m / "d" / "mapped", os.O_CREAT | os.O_RDWR, 0o644)
    os.ftruncate(fd, 8192)
    os.fsync(fd)
    _fsync(m / "d")
    _fsync(m)
    # from here on: some of it synced, some not; d is not fsynced again, e is
    _write(m / "d" / "synced", b"B" * 50_000, False, "ab")      # unsynced append: dropped (or torn)
    _write(m / "d" / "entry-unsynced", b"E" * 10, True)         # data synced, directory not: lost
    os.rename(m / "d" / "renamed-away", m / "d" / "renamed-to")  # directory not synced: undone
    os.unlink(m / "d" / "unlinked")                               # likewise
    os.truncate(m / "d" / "shrunk", 100)                          # file not synced: undone
    mm = mmap.mmap(fd, 8192)
    mm[0:5] = b"hello"
    mm.flush()                                                    # msync: durable
    mm[100:105] = b"world"                                        # not msynced: dropped (or torn)
    mm.close()
    os.close(fd)
    _write(m / "e" / "entry-synced", b"F" * 10, False)            # directory synced, data not: empty
    _write(m / "e" / "both-synced", b"G" * 10, True)
    _fsync(m / "e")
    _write(m / "g" / "f", b"x", True)       # g's entries never synced, then g removed durably:
    os.unlink(m / "g" / "f")
    os.rmdir(m / "g")
    _fsync(m)                                # nothing of g is left to undo


def _snapshot(root: Path):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if ".lazyfs-trash" not in p.parts}


def test_lazyfs_loses_exactly_the_unsynced_state(tmp_path):
    """kastle-lazyfs itself: what survives `crash` is what was fsynced (files and directories)."""
    skip = _fuse_usable()
    if skip:
        pytest.skip(skip)
    snaps = {}
    for run, cmd in [("plain", "crash"), ("torn-a", "crash torn=7"), ("torn-b", "crash torn=7")]:
        backing, mnt = tmp_path / run / "backing", tmp_path / run / "mnt"
        backing.mkdir(parents=True)
        fs = LazyFs(backing, mnt, tmp_path / run / "lazyfs.log")
        fs.mount()
        try:
            _lazyfs_workload(mnt)
            assert (mnt / "d" / "synced").stat().st_size == 60_000, "reads see unsynced writes"
            report = fs.ctl(cmd)
            assert report.startswith("seed=") and " errors=0" in report, report
            with pytest.raises(OSError):
                os.listdir(mnt / "d")               # frozen until remounted
        finally:
            fs.unmount()
        fs.mount()
        try:
            snaps[run] = _snapshot(mnt)
        finally:
            fs.unmount()
    got = snaps["plain"]
    assert got["d/synced"] == b"A" * 10_000
    assert "d/entry-unsynced" not in got
    assert got["d/renamed-away"] == b"R" * 100 and "d/renamed-to" not in got
    assert got["d/unlinked"] == b"U" * 100
    assert got["d/shrunk"] == b"S" * 8192
    assert got["d/mapped"][:5] == b"hello" and got["d/mapped"][100:105] == b"\0" * 5
    assert got["e/entry-synced"] == b"" and got["e/both-synced"] == b"G" * 10
    assert "g" not in got
    # torn: a prefix of the unsynced pages may survive, the same for the same seed
    assert snaps["torn-a"] == snaps["torn-b"], "same seed, same history: same torn state"
    torn = snaps["torn-a"]["d/synced"]
    assert torn[:10_000] == b"A" * 10_000 and set(torn[10_000:]) <= {ord("B")}, "torn: a prefix of the append"


def test_power_loss_durable(broker_factory, tmp_path, capsys):
    """flush.messages=1: every acknowledged record and commit survives a power loss."""
    run_rounds(broker_factory, tmp_path, capsys, durable=True)


def test_power_loss_page_cache(broker_factory, tmp_path, capsys):
    """Page-cache mode: after a power loss the log is a consistent prefix and serves."""
    run_rounds(broker_factory, tmp_path, capsys, durable=False)


def read_committed_all(bootstrap, topic, timeout=30.0):
    """Every record a read_committed consumer sees, to the end of each partition: [idx]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True, "fetch.wait.max.ms": 50})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        out, eof = [], set()
        deadline = time.monotonic() + timeout
        while len(eof) < PARTITIONS:
            assert time.monotonic() < deadline, f"read_committed: no end of partitions {eof} in {timeout}s"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError(f"read_committed: consumer error {m.error()}")
            eof.discard(m.partition())
            i = int(m.key().decode())
            assert m.value() == value_of(i), f"garbage record at p{m.partition()}@{m.offset()}"
            out.append(i)
        return out
    finally:
        c.close()


def test_power_loss_transactions(broker_factory, tmp_path, capsys):
    """Durable mode: a transaction whose commit returned survives a power loss; one that
    was open at the crash is aborted by the next producer with the same transactional.id
    and never seen by read_committed."""
    fs, broker = lazyfs_broker(broker_factory, tmp_path, {"num.partitions": str(PARTITIONS)})
    topic = unique_topic("powerloss-txn")
    committed_idx, next_idx, log = [], 0, []
    rounds = max(1, min(ROUNDS, 3))
    try:
        for r in range(rounds):
            seed = BASE_SEED + r
            rng = random.Random(seed)
            what = f"transactions round {r} seed={seed}"
            fs.mount()
            broker.start()
            if r == 0:
                ck_create_topic(broker.bootstrap, topic, PARTITIONS)
            prod = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "powerloss-txn",
                             "transaction.timeout.ms": 60_000, "linger.ms": 2})
            prod.init_transactions(30)   # aborts the transaction the crash left open
            got = read_committed_all(broker.bootstrap, topic)
            assert sorted(got) == sorted(committed_idx), (
                f"{what}: read_committed sees {len(got)} records, {len(committed_idx)} were committed; "
                f"missing {sorted(set(committed_idx) - set(got))[:10]}, "
                f"extra {sorted(set(got) - set(committed_idx))[:10]}")
            for _ in range(rng.randint(2, 6)):
                prod.begin_transaction()
                batch = list(range(next_idx, next_idx + rng.randint(5, 40)))
                for i in batch:
                    prod.produce(topic, value=value_of(i), key=str(i).encode(), partition=i % PARTITIONS)
                next_idx = batch[-1] + 1
                prod.commit_transaction(30)
                committed_idx.extend(batch)
            # one transaction left open (its records written, maybe flushed) at the crash
            prod.begin_transaction()
            for i in range(next_idx, next_idx + 30):
                prod.produce(topic, value=value_of(i), key=str(i).encode(), partition=i % PARTITIONS)
            next_idx += 30
            prod.flush(rng.uniform(0.0, 0.5))
            broker.kill()
            report = fs.ctl(f"crash torn={seed}")
            prod.purge(in_queue=True, in_flight=True, blocking=False)
            prod.flush(1)
            del prod
            fs.unmount()
            log.append(f"{what}: committed so far {len(committed_idx)}; lazyfs: {report.splitlines()[0]}")
        fs.mount()
        broker.start()
        prod = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "powerloss-txn"})
        prod.init_transactions(30)
        got = read_committed_all(broker.bootstrap, topic)
        assert sorted(got) == sorted(committed_idx), (
            f"after the last crash: read_committed sees {len(got)} records, {len(committed_idx)} committed")
        broker.stop()
        fs.unmount()
    finally:
        with capsys.disabled():
            print(f"\n  transactions: KASTLE_POWERLOSS_SEED={BASE_SEED} KASTLE_POWERLOSS_ROUNDS={ROUNDS}")
            for line in log:
                print("  " + line)
        if broker.alive():
            broker.kill()
        fs.unmount()
