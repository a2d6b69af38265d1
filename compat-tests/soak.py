"""Soak run with a history checker (library + CLI; issue 19).

Runs kastle (standalone, durable mode; or a 3-node cluster with replication
factor 3, min.insync.replicas 2) under a mixed load for a given time while
killing it (SIGKILL) every few minutes, records what every client was told
and saw (the *history*), then reads every topic back and checks the history:

* ``main`` topic: idempotent producers (acks=all); each record is
  ``m|<producer>|<seq>``. A consumer group reads it, members joining and
  leaving every few seconds, committing after every batch.
* ``txn`` topic: transactional producers commit or abort (decided from the
  seed); a read_committed reader follows it all along.
* ``retention`` topic: small segments and ``retention.bytes``: records may
  go, but only from the log start.
* ``compact`` topic: ``cleanup.policy=compact``, a few hundred keys: the last
  value of each key survives; nothing removed comes back.

``check(history)`` is a pure function of the history (test_soak_checker.py
feeds it mutated histories): it returns ``{anomaly kind: [examples]}``, empty
when nothing is wrong. The kinds are in ``KINDS``.

Meanwhile a sampler records each broker process's RSS, open file
descriptors and threads, and the produce latency (produce call to delivery
report) per window; ``flatness`` compares the last quarter of the run with
the second (the first is warm-up).

CLI: ``python soak.py --minutes 20 [--cluster] [--kill-every 180] [--seed S]
[--out DIR]``; ``scripts/soak.sh`` wraps it. Exit status 0 only if the checker
found nothing and the resources stayed flat.
"""
import argparse
import faulthandler
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PARTITIONS = 3
COMPACT_KEYS = 100
# Bounds of what the run keeps in memory for the checker: a run past them
# stops recording (and says so) rather than swapping the machine.
MAX_HISTORY_RECORDS = 20_000_000
LATENCY_WINDOW_LIMIT = 200_000  # latencies kept per sampling window

KINDS = {
    "lost": "acknowledged record missing from the log (main, txn; retention: at or above the log start; "
            "compact: a key whose last acknowledged value is gone)",
    "duplicated": "the same record twice in the log, or read twice by the read_committed reader",
    "reordered": "one producer's records of one partition (compact: one key's values) out of production order",
    "wrong offset": "a record acknowledged at an offset another record holds",
    "gap": "offsets of a non-compacted, non-transactional partition not contiguous from its log start",
    "aborted read": "a read_committed read returned a record of an aborted transaction",
    "torn transaction": "only part of a transaction's records readable",
    "committed not read": "a committed transaction's record the read_committed reader never returned",
    "offsets backwards": "a reader's offsets of one partition not increasing (the group: within one assignment)",
    "read then lost": "a record a consumer had read is no longer at that offset in the log",
    "committed offset backwards": "the group's committed offset of a partition decreased, or fell below an "
                                  "acknowledged commit",
    "log start backwards": "a partition's log start offset decreased",
    "resurrected": "compaction: a record absent from an earlier read of the log reappeared",
    "corrupt": "a record whose payload does not parse or whose key does not match its value",
}


# ---------------------------------------------------------------------------
# history: what clients were told and saw (plain lists, JSON-serialisable)
# ---------------------------------------------------------------------------

class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.acks = {"main": [], "retention": [], "compact": []}  # (producer, seq, p, o)
        self.failed = Counter()        # "role:error" -> count (delivery failed: in doubt)
        self.txns = []                 # [tid, n, decision, outcome, [[p, i], ...]]
        self.group_reads = []          # (epoch, p, o, producer, seq)
        self.rc_reads = []             # (p, o, tid, n, i)
        self.commits = []              # (t_done, p, o): acknowledged group commits
        self.committed_samples = []    # (t_start, {p: o}): the group's committed offsets, asked
        self.log_starts = []           # (role, t, p, log start offset)
        self.snapshots = []            # compact topic read whole: {p: [start, end, {o: [seq, key]}]}
        self.final = {}                # role -> reads at the end (see read_all)
        self.notes = []                # what the run could not record
        self.recorded = 0

    def add(self, lst, item):
        with self.lock:
            if self.recorded >= MAX_HISTORY_RECORDS:
                if not self.notes or self.notes[-1] != "history limit reached":
                    self.notes.append("history limit reached")
                return
            self.recorded += 1
            lst.append(item)

    def to_json(self):
        d = {k: v for k, v in self.__dict__.items() if k != "lock"}
        d["failed"] = dict(self.failed)
        return d

    @classmethod
    def from_json(cls, d):
        h = cls()
        for k, v in d.items():
            setattr(h, k, v)
        h.failed = Counter(h.failed)
        # JSON turned int keys into strings
        h.committed_samples = [(t, {int(p): o for p, o in s.items()}) for t, s in h.committed_samples]
        h.snapshots = [_snap_keys(s) for s in h.snapshots]
        if "compact" in h.final:
            h.final["compact"] = _snap_keys(h.final["compact"])
        return h


def _snap_keys(snap):
    return {int(p): [st, end, {int(o): v for o, v in recs.items()}] for p, (st, end, recs) in snap.items()}


def main_value(producer, seq, pad=0):
    return f"m|{producer}|{seq}|".encode() + b"x" * pad


def txn_value(tid, n, i):
    return f"t|{tid}|{n}|{i}".encode()


def compact_key(seq):
    return (seq * 7919) % COMPACT_KEYS


def parse_main(v):
    try:
        tag, producer, seq, _ = v.split(b"|", 3)
        if tag != b"m":
            return None
        return producer.decode(), int(seq)
    except (AttributeError, ValueError):
        return None


def parse_txn(v):
    try:
        tag, tid, n, i = v.split(b"|")
        if tag != b"t":
            return None
        return tid.decode(), int(n), int(i)
    except (AttributeError, ValueError):
        return None


def parse_compact(k, v):
    """(seq, key number) or None."""
    try:
        tag, seq = v.split(b"|")
        if tag != b"c" or not k.startswith(b"k"):
            return None
        return int(seq), int(k[1:])
    except (AttributeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------

def check(h: History, examples=5):
    """{kind: [example, ...]} of every anomaly in the history (``KINDS``);
    empty when there is none. ``h.final`` must hold the end-of-run reads."""
    out = defaultdict(list)

    def bad(kind, msg):
        assert kind in KINDS, kind
        out[kind].append(msg)

    _check_log("main", h.acks["main"], h.final.get("main", []), bad, from_start=True)
    _check_log("retention", h.acks["retention"], h.final.get("retention", []), bad, from_start=False)
    _check_group(h, bad)
    _check_txn(h, bad)
    _check_log_starts(h, bad)
    _check_compact(h, bad)
    return {k: v[:examples] + ([f"... {len(v) - examples} more"] if len(v) > examples else [])
            for k, v in out.items()}


def _check_log(role, acks, final, bad, from_start):
    """final: [(p, o, producer, seq)] as read from the log start to its end,
    or (p, o, None, None) for a record that does not parse."""
    at, copies = {}, Counter()
    by_p = defaultdict(list)
    for p, o, prod, seq in final:
        if prod is None:
            bad("corrupt", f"{role} p{p}@{o}: unparsable record")
            continue
        at[(p, o)] = (prod, seq)
        copies[(prod, seq)] += 1
        by_p[p].append((o, prod, seq))
    for ident, c in copies.items():
        if c > 1:
            offs = sorted(f"p{p}@{o}" for (p, o), v in at.items() if v == ident)
            bad("duplicated", f"{role}: {ident[0]} seq {ident[1]} {c} times ({', '.join(offs[:4])})")
    start = {}
    for p, recs in by_p.items():
        recs.sort()
        start[p] = recs[0][0]
        base = 0 if from_start else recs[0][0]
        for k, (o, _, _) in enumerate(recs):
            if o != base + k:
                bad("gap", f"{role} p{p}: offset {o} where {base + k} was due (log start {base})")
                break
        last = {}
        for o, prod, seq in recs:
            if prod in last and seq <= last[prod][1]:
                bad("reordered", f"{role} p{p}: {prod} seq {seq} @{o} after seq {last[prod][1]} @{last[prod][0]}")
            last[prod] = (o, seq)
    for prod, seq, p, o in acks:
        if o is None or o < 0:
            # acknowledged without an offset (librdkafka reports a retried
            # batch the broker took for a duplicate so, as Kafka's Java
            # producer may): it must be there, anywhere
            if (prod, seq) not in copies and from_start:
                bad("lost", f"{role}: {prod} seq {seq} acknowledged (offset unknown) at p{p}; not in the log")
            continue
        got = at.get((p, o))
        if got == (prod, seq):
            continue
        if not from_start and o < start.get(p, float("inf")):
            continue  # removed by retention, from the log start: allowed
        if (prod, seq) in copies:
            bad("wrong offset", f"{role}: {prod} seq {seq} acknowledged at p{p}@{o}, which holds {got}")
        else:
            bad("lost", f"{role}: {prod} seq {seq} acknowledged at p{p}@{o}; the log holds {got} there")


def _check_group(h, bad):
    final = {(p, o): (prod, seq) for p, o, prod, seq in h.final.get("main", [])}
    last = {}
    for epoch, p, o, prod, seq in h.group_reads:
        if (epoch, p) in last and o <= last[(epoch, p)]:
            bad("offsets backwards", f"group assignment {epoch} p{p}: offset {o} after {last[(epoch, p)]}")
        last[(epoch, p)] = o
        if h.final.get("main") is not None and final.get((p, o)) != (prod, seq):
            bad("read then lost", f"group read {prod} seq {seq} at main p{p}@{o}; the log holds "
                                  f"{final.get((p, o))} there")
    # every sample at least every commit acknowledged before it was asked for,
    # and samples never decrease
    commits = sorted(h.commits)
    prev = {}
    k, floor = 0, {}
    for t, sample in sorted(h.committed_samples, key=lambda s: s[0]):
        while k < len(commits) and commits[k][0] < t:
            _, p, o = commits[k]
            floor[p] = max(floor.get(p, -1), o)
            k += 1
        for p, o in sorted(sample.items()):
            if p in prev and o < prev[p]:
                bad("committed offset backwards", f"p{p}: committed {o} after {prev[p]} (sample at {t:.1f}s)")
            elif p in floor and o < floor[p]:
                bad("committed offset backwards", f"p{p}: committed {o} at {t:.1f}s, below the "
                                                  f"acknowledged commit of {floor[p]}")
            prev[p] = o


def _check_txn(h, bad):
    txn = {(tid, n): (decision, outcome, recs) for tid, n, decision, outcome, recs in h.txns}
    final = h.final.get("txn")

    def reads_of(what, reads, must_be_complete):
        seen = Counter()
        last = {}
        for p, o, tid, n, i in reads:
            if tid is None:
                bad("corrupt", f"{what} p{p}@{o}: unparsable record")
                continue
            if p in last and o <= last[p]:
                bad("offsets backwards", f"{what} p{p}: offset {o} after {last[p]}")
            last[p] = o
            seen[(tid, n, i)] += 1
            t = txn.get((tid, n))
            if t is None or t[0] != "commit":
                bad("aborted read", f"{what} read {tid} txn {n} record {i} at p{p}@{o} "
                                    f"({'unknown transaction' if t is None else 'decided abort, ' + t[1]})")
        for ident, c in seen.items():
            if c > 1:
                bad("duplicated", f"{what}: {ident[0]} txn {ident[1]} record {ident[2]} read {c} times")
        for (tid, n), (decision, outcome, recs) in txn.items():
            if decision != "commit" or outcome == "aborted":
                continue
            got = [i for i in range(len(recs)) if seen[(tid, n, i)]]
            if outcome == "committed" and len(got) < len(recs) and must_be_complete:
                missing = [i for i in range(len(recs)) if not seen[(tid, n, i)]]
                kind = "lost" if what == "final read" else "committed not read"
                bad(kind, f"{what}: committed {tid} txn {n}: records {missing[:5]} of {len(recs)} not read")
            elif 0 < len(got) < len(recs):
                bad("torn transaction", f"{what}: {tid} txn {n} ({outcome}): {len(got)} of {len(recs)} "
                                        "records readable")
        # order: within a partition a transaction's records in the order produced
        order = defaultdict(list)
        for p, o, tid, n, i in reads:
            if tid is not None:
                order[(p, tid, n)].append(i)
        for (p, tid, n), idx in order.items():
            if idx != sorted(idx):
                bad("reordered", f"{what} p{p}: {tid} txn {n} records in order {idx[:8]}")

    reads_of("read_committed reader", h.rc_reads, must_be_complete=final is not None)
    if final is not None:
        reads_of("final read", final, must_be_complete=True)
        at = {(p, o): (tid, n, i) for p, o, tid, n, i in final}
        for p, o, tid, n, i in h.rc_reads:
            if at.get((p, o)) != (tid, n, i):
                bad("read then lost", f"read_committed reader read {tid} txn {n} record {i} at p{p}@{o}; "
                                      f"the log holds {at.get((p, o))} there")


def _check_log_starts(h, bad):
    seen = {}
    for role, t, p, start in sorted(h.log_starts, key=lambda x: x[1]):
        if (role, p) in seen and start < seen[(role, p)][1]:
            bad("log start backwards", f"{role} p{p}: log start {start} at {t:.1f}s after "
                                       f"{seen[(role, p)][1]} at {seen[(role, p)][0]:.1f}s")
        seen[(role, p)] = (t, start)
    for role in ("retention", "compact"):
        fin = h.final.get(role)
        if not fin:
            continue
        first = {}
        if role == "retention":
            for p, o, _, _ in fin:
                first[p] = min(first.get(p, o), o)
        else:
            first = {p: st for p, (st, end, recs) in fin.items()}
        for p, st in first.items():
            if (role, p) in seen and st < seen[(role, p)][1]:
                bad("log start backwards", f"{role} p{p}: the final read starts at {st}, below the log "
                                           f"start {seen[(role, p)][1]} seen at {seen[(role, p)][0]:.1f}s")


def _check_compact(h, bad):
    fin = h.final.get("compact")
    snaps = list(h.snapshots) + ([fin] if fin is not None else [])
    acked = {(p, o): seq for _, seq, p, o in h.acks["compact"] if o is not None and o >= 0}
    for si, snap in enumerate(snaps):
        what = "final read" if fin is not None and si == len(snaps) - 1 else f"read #{si + 1}"
        for p, (st, end, recs) in snap.items():
            per_key = {}
            for o in sorted(recs):
                seq, key = recs[o]
                if seq is None or compact_key(seq) != key:
                    bad("corrupt", f"compact {what} p{p}@{o}: key {key} value seq {seq}")
                    continue
                if (p, o) in acked and acked[(p, o)] != seq:
                    bad("wrong offset", f"compact: seq {acked[(p, o)]} acknowledged at p{p}@{o}, "
                                        f"{what} holds seq {seq}")
                if key in per_key and seq <= per_key[key]:
                    bad("reordered", f"compact {what} p{p}: key k{key} seq {seq} @{o} after seq {per_key[key]}")
                per_key[key] = seq
    for a, b in zip(snaps, snaps[1:]):
        for p, (st_b, end_b, recs_b) in b.items():
            if p not in a:
                continue
            st_a, end_a, recs_a = a[p]
            for o, v in recs_b.items():
                if st_a <= o < end_a and o not in recs_a:
                    bad("resurrected", f"compact p{p}@{o} (seq {v[0]}) absent from an earlier read of "
                                       f"[{st_a}, {end_a}) and back later")
    if fin is None:
        return
    last_acked = {}
    for _, seq, p, o in h.acks["compact"]:
        k = (p, compact_key(seq))
        if seq > last_acked.get(k, (-1, -1))[0]:
            last_acked[k] = (seq, o)
    newest = {}
    for p, (st, end, recs) in fin.items():
        for o, (seq, key) in recs.items():
            if seq is not None and seq > newest.get((p, key), -1):
                newest[(p, key)] = seq
    for (p, key), (seq, o) in sorted(last_acked.items()):
        if newest.get((p, key), -1) < seq:
            bad("lost", f"compact p{p} key k{key}: last acknowledged seq {seq} (@{o}), newest in the log "
                        f"{newest.get((p, key))}")


# ---------------------------------------------------------------------------
# flatness of resources and latency
# ---------------------------------------------------------------------------

# A bound rather than equality: a restarted broker's RSS and fds depend on
# when it was killed (page cache of mapped indexes, segments rolled since,
# connections of clients reconnecting), so quarters of a healthy run differ
# by tens of percent; a leak of one fd per request or a few KiB per record
# grows far past it within minutes.
FLAT = {  # metric: (factor, margin)
    "rss_mib": (1.5, 64),
    "fds": (1.5, 32),
    "threads": (1.25, 8),
    "p50_ms": (3.0, 20),
}


def quarters(samples, duration, t_of=lambda s: s[0]):
    q = [[] for _ in range(4)]
    for s in samples:
        k = min(3, max(0, int(4 * t_of(s) / duration))) if duration > 0 else 0
        q[k].append(s)
    return q


def flatness(samples, latencies, duration, flat=None):
    """samples: [(t, node, rss_mib, fds, threads)], latencies: [(t, p50_ms, p99_ms, n)].
    Returns (rows, failures): rows per metric and node: (name, q2, q4, bound, ok)."""
    flat = flat or FLAT
    rows, failures = [], []
    nodes = sorted({s[1] for s in samples})
    for node in nodes:
        q = quarters([s for s in samples if s[1] == node], duration)
        for col, name in ((2, "rss_mib"), (3, "fds"), (4, "threads")):
            if not q[1] or not q[3]:
                continue
            a, b = max(s[col] for s in q[1]), max(s[col] for s in q[3])
            factor, margin = flat[name]
            bound = a * factor + margin
            rows.append((f"{name} (node {node}, max)", a, b, bound, b <= bound))
            if b > bound:
                failures.append(f"{name} of node {node}: last quarter max {b} > {bound:.0f} "
                                f"(second quarter max {a} x {factor} + {margin})")
    q = quarters([x for x in latencies if x[3] > 0], duration)
    if q[1] and q[3]:
        a = statistics.median(x[1] for x in q[1])
        b = statistics.median(x[1] for x in q[3])
        factor, margin = flat["p50_ms"]
        bound = a * factor + margin
        rows.append(("produce p50 ms (median of windows)", round(a, 1), round(b, 1), bound, b <= bound))
        if b > bound:
            failures.append(f"produce latency p50: last quarter {b:.1f} ms > {bound:.1f} ms")
    return rows, failures


def proc_sample(pid):
    """(rss MiB, open fds, threads) of a process, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = threads = 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return round(rss, 1), fds, threads
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------
# the load
# ---------------------------------------------------------------------------

# librdkafka logs every refused connection while a broker is down: expected here
QUIET = {"log_level": 2}


def _ck_producer_conf(bootstrap, **kw):
    cfg = {**QUIET, "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
           "linger.ms": 5, "message.timeout.ms": 300_000, "request.timeout.ms": 10_000,
           "retry.backoff.ms": 100, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 1000,
           "socket.connection.setup.timeout.ms": 5_000, "max.in.flight.requests.per.connection": 5}
    cfg.update(kw)
    return cfg


class Run:
    """One soak: the brokers, the client threads, the history."""

    def __init__(self, brokers, kill, restart, seed, duration, kill_every, log=print,
                 rate=200, sample_every=2.0, churn=(3.0, 8.0), snapshot_every=10.0):
        self.brokers = brokers          # () -> {node: pid or None}
        self.kill, self.restart = kill, restart  # kill() -> node killed; restart(node)
        self.bootstrap = None           # set by the caller
        self.seed, self.duration, self.kill_every = seed, duration, kill_every
        self.log, self.rate, self.sample_every = log, rate, sample_every
        self.churn, self.snapshot_every = churn, snapshot_every
        self.h = History()
        self.stop = threading.Event()      # the load stops
        self.errors = []                   # exceptions of client threads (the run fails)
        self.samples, self.latencies = [], []
        self.lat_lock = threading.Lock()
        self.lat_window = []
        self.kills = []
        self.t0 = time.monotonic()
        self.epochs = 0
        self.epoch_lock = threading.Lock()
        self.fatal = Counter()
        self.hung_members = 0              # member processes killed after hanging
        self.t0_wall = time.time()
        self.workdir = tempfile.gettempdir()  # member files; soak() sets the run's directory
        self.rc_next = {}                  # the read_committed reader's next offset per partition
        self.topics = {r: f"soak-{r}-{seed}" for r in ("main", "txn", "retention", "compact")}

    def t(self):
        return time.monotonic() - self.t0

    def thread(self, name, fn, *args):
        def run():
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - reported as a run failure
                import traceback
                self.errors.append(f"{name}: {e!r}\n{traceback.format_exc()}")
                self.log(f"[soak] thread {name} died: {e!r}")
        th = threading.Thread(target=run, name=name, daemon=True)
        th.start()
        return th

    # -- topics ------------------------------------------------------------
    def create_topics(self, rf):
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({**QUIET, "bootstrap.servers": self.bootstrap})
        cfgs = {
            "main": {},
            "txn": {},
            "retention": {"internal.segment.bytes": "32768", "retention.bytes": "131072",
                          "file.delete.delay.ms": "1000"},
            "compact": {"cleanup.policy": "compact", "internal.segment.bytes": "16384",
                        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"},
        }
        new = [NewTopic(self.topics[r], num_partitions=PARTITIONS, replication_factor=rf, config=c)
               for r, c in cfgs.items()]
        for name, f in a.create_topics(new, operation_timeout=30, request_timeout=30).items():
            f.result(timeout=60)

    # -- idempotent producers (main, retention, compact) ----------------------
    def producer_loop(self, role, name, rate, pad):
        from confluent_kafka import KafkaError, KafkaException, Producer
        topic = self.topics[role]
        incarnation = next_seq = 0
        while not self.stop.is_set():
            incarnation += 1
            pname = f"{name}.{incarnation}"
            prod = Producer(_ck_producer_conf(self.bootstrap, **{"client.id": f"soak-{pname}"}))
            fatal = threading.Event()

            def on_delivery(err, msg, seq, sent, pname=pname):
                if err is not None:
                    with self.h.lock:
                        self.h.failed[f"{role}:{err.name()}"] += 1
                    if err.fatal():
                        fatal.set()
                    return
                now = time.monotonic()
                self.h.add(self.h.acks[role], (pname, seq, msg.partition(), msg.offset()))
                if role == "main":
                    with self.lat_lock:
                        if len(self.lat_window) < LATENCY_WINDOW_LIMIT:
                            self.lat_window.append((now - sent) * 1000)
            # the compacted topic's values carry only seq (a key's versions):
            # it goes on across producers; the others' identity is (pname, seq)
            seq = next_seq if role == "compact" else 0
            first, start = seq, time.monotonic()
            while not self.stop.is_set() and not fatal.is_set():
                ahead = (seq - first) / rate - (time.monotonic() - start)
                if ahead > 0:
                    try:
                        prod.poll(min(ahead, 0.05))
                    except KafkaException as e:  # a fatal error surfaces here too
                        self.log(f"[soak] {pname}: {e.args[0]}")
                        self.h.notes.append(f"{pname} at {self.t():.0f}s: {e.args[0].str()}")
                        fatal.set()
                    continue
                if role == "compact":
                    key, value = f"k{compact_key(seq)}".encode(), f"c|{seq}".encode()
                    part = compact_key(seq) % PARTITIONS
                else:
                    key, value = None, main_value(pname, seq, pad)
                    part = (seq * 31 + incarnation) % PARTITIONS
                try:
                    sent = time.monotonic()
                    prod.produce(topic, value=value, key=key, partition=part,
                                 on_delivery=lambda err, msg, s=seq, t=sent: on_delivery(err, msg, s, t))
                except BufferError:
                    prod.poll(0.05)
                    continue
                except KafkaException as e:
                    # produce() after a fatal error raises _FATAL, itself not "fatal"
                    if e.args[0].fatal() or e.args[0].code() == KafkaError._FATAL:
                        fatal.set()
                        break
                    raise
                seq += 1
                prod.poll(0)
            next_seq = seq
            try:
                left = prod.flush(120)
            except KafkaException as e:
                left = f"? ({e.args[0]})"
                fatal.set()
            if left:
                self.h.notes.append(f"{pname}: {left} records undelivered at the end (in doubt)")
            if fatal.is_set():
                self.fatal[f"{role} producer"] += 1
                self.log(f"[soak] {pname}: fatal producer error, starting a new producer")

    # -- transactional producers ------------------------------------------
    def txn_loop(self, tid):
        from confluent_kafka import KafkaException, Producer
        topic = self.topics["txn"]
        n = 0

        def new_producer():
            while not self.stop.is_set():
                p = Producer(_ck_producer_conf(self.bootstrap, **{
                    "transactional.id": tid, "client.id": f"soak-{tid}",
                    "transaction.timeout.ms": 60_000, "message.timeout.ms": 55_000}))
                try:
                    p.init_transactions(30)
                    return p
                except KafkaException as e:
                    self.log(f"[soak] {tid}: init_transactions: {e.args[0]}")
                    time.sleep(1)
            return None

        def finish(p, commit):
            """Commit or abort; returns the outcome."""
            for _ in range(10):
                try:
                    if commit:
                        p.commit_transaction(30)
                        return "committed"
                    p.abort_transaction(30)
                    return "aborted"
                except KafkaException as e:
                    err = e.args[0]
                    if err.fatal():
                        return None
                    if err.txn_requires_abort() and commit:
                        commit = False
                        continue  # the commit failed: the transaction is aborted now
                    if not err.retriable():
                        return None
                    time.sleep(0.5)
            return None

        p = new_producer()
        while p is not None and not self.stop.is_set():
            rng = random.Random(f"{self.seed}-{tid}-{n}")
            commit = rng.random() < 0.7
            count = rng.randint(1, 8)
            recs = [[rng.randrange(PARTITIONS), i] for i in range(count)]
            entry = [tid, n, "commit" if commit else "abort", "unknown", recs]
            self.h.add(self.h.txns, entry)
            outcome = None
            try:
                p.begin_transaction()
                for part, i in recs:
                    while True:
                        try:
                            p.produce(topic, value=txn_value(tid, n, i), partition=part)
                            break
                        except BufferError:
                            p.poll(0.05)
                outcome = finish(p, commit)
            except KafkaException as e:
                err = e.args[0]
                if not err.fatal() and err.txn_requires_abort():
                    outcome = finish(p, False)
                self.log(f"[soak] {tid} txn {n}: {err}")
            n += 1
            if outcome is None:
                # in doubt; a new producer with the same transactional.id fences
                # this one and completes or aborts what it left open
                entry[3] = "unknown"
                self.fatal["txn producer"] += 1
                p = new_producer()
            else:
                entry[3] = outcome
            time.sleep(0.02)

    # -- readers -----------------------------------------------------------
    def rc_reader(self, done):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        c = Consumer({**QUIET, "bootstrap.servers": self.bootstrap, "group.id": "soak-rc-unused",
                      "enable.auto.commit": False, "isolation.level": "read_committed",
                      "auto.offset.reset": "earliest", "fetch.wait.max.ms": 200,
                      "client.id": "soak-rc-reader"})
        tps = [TopicPartition(self.topics["txn"], p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        c.assign(tps)
        try:
            while not done.is_set():
                for m in c.consume(1000, 0.2):
                    if m.error():
                        continue
                    ident = parse_txn(m.value()) or (None, None, None)
                    self.h.add(self.h.rc_reads, (m.partition(), m.offset()) + ident)
                # the position, past transaction markers too (the end to reach)
                for tp in c.position(tps):
                    if tp.offset >= 0:
                        self.rc_next[tp.partition] = tp.offset
        finally:
            c.close()

    def group_member(self, slot):
        """One slot of the group: a member process at a time (member_main),
        living a few seconds, then the next. A process rather than a thread:
        librdkafka's close() can hang in the rebalance callback
        (rd_kafka_rebalance_protocol, librdkafka #4041) and confluent-kafka
        holds the GIL there, which would freeze every client of the run; a
        member that hangs is killed and counted (``hung_members``)."""
        import subprocess
        rng = random.Random(f"{self.seed}-member-{slot}")
        k = 0
        while not self.stop.is_set():
            k += 1
            life = rng.uniform(*self.churn)
            out = Path(self.workdir) / f"member-{slot}-{k}.jsonl"
            spec = {"bootstrap": self.bootstrap, "topic": self.topics["main"],
                    "group": f"soak-group-{self.seed}", "life": life, "t0": self.t0_wall,
                    "epoch": f"{slot}.{k}", "out": str(out)}
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--member", json.dumps(spec)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + life + MEMBER_GRACE_S
            while proc.poll() is None and time.monotonic() < deadline and not self.stop.is_set():
                time.sleep(0.1)
            if proc.poll() is None and self.stop.is_set():
                proc.terminate()
                deadline = time.monotonic() + MEMBER_GRACE_S
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
                self.hung_members += 1
            proc.wait()
            self.load_member(out)
            out.unlink(missing_ok=True)  # in the history now
            time.sleep(rng.uniform(0.2, 1.0))

    def load_member(self, path):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # the last line of a killed member may be cut
            if rec[0] == "a":
                with self.epoch_lock:
                    self.epochs += 1
            elif rec[0] == "r":
                self.h.add(self.h.group_reads, tuple(rec[1:]))
            elif rec[0] == "c":
                self.h.add(self.h.commits, tuple(rec[1:]))

    def committed_sampler(self):
        # Consumer.committed (OffsetFetch through a group handle that never
        # joins) rather than AdminClient.list_consumer_group_offsets: the
        # admin path of librdkafka 2.x crashes on a NOT_COORDINATOR answer
        # (rd_kafka_cgrp_op with no group; confluent-kafka-javascript #374),
        # which a cluster gives while the coordinator moves.
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({**QUIET, "bootstrap.servers": self.bootstrap, "group.id": f"soak-group-{self.seed}",
                      "enable.auto.commit": False, "client.id": "soak-offsets-probe"})
        tps = [TopicPartition(self.topics["main"], p) for p in range(PARTITIONS)]
        try:
            while not self.stop.is_set():
                t = self.t()
                try:
                    res = c.committed(tps, timeout=10)
                    sample = {tp.partition: tp.offset for tp in res if tp.error is None and tp.offset >= 0}
                    self.h.add(self.h.committed_samples, (t, sample))
                except Exception:  # noqa: BLE001 - the broker may be down; next sample
                    pass
                self.stop.wait(1.0)
        finally:
            c.close()

    def log_start_sampler(self):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({**QUIET, "bootstrap.servers": self.bootstrap, "group.id": "soak-wm-unused",
                      "client.id": "soak-watermarks"})
        next_snap = self.snapshot_every
        try:
            while not self.stop.is_set():
                for role in ("retention", "compact"):
                    for p in range(PARTITIONS):
                        t = self.t()
                        try:
                            low, _ = c.get_watermark_offsets(TopicPartition(self.topics[role], p), timeout=5)
                        except Exception:  # noqa: BLE001 - the broker may be down
                            continue
                        if low >= 0:
                            self.h.add(self.h.log_starts, (role, t, p, low))
                if self.t() >= next_snap:
                    next_snap = self.t() + self.snapshot_every
                    try:
                        self.h.snapshots.append(self.read_compact(timeout=30))
                    except Exception as e:  # noqa: BLE001 - a leader moving, the broker down: next time
                        self.log(f"[soak] compact snapshot skipped: {e!r}")
                self.stop.wait(1.0)
        finally:
            c.close()

    def read_all(self, role, timeout=300, isolation="read_uncommitted"):
        """The whole topic from its log start to its end: [(p, o, k, v)], {p: start}, {p: end}.
        The end is where the consumer hit the end of the partition; for the
        compacted topic, read while it is being written, the high watermark
        asked before reading (a consumer following a partition that keeps
        growing may not see its end for a long time)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
        c = Consumer({**QUIET, "bootstrap.servers": self.bootstrap, "group.id": "soak-reader-unused",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "isolation.level": isolation, "auto.offset.reset": "earliest",
                      "fetch.wait.max.ms": 100, "client.id": f"soak-read-{role}"})
        topic = self.topics[role]
        try:
            out, start, end, errors = [], {}, {}, []
            target = {}
            if role == "compact":
                # compaction removes records anywhere: the log start is what
                # ListOffsets says, asked before reading (it never decreases)
                for p in range(PARTITIONS):
                    start[p], target[p] = self.watermarks(c, topic, p)
                    if target[p] <= start[p]:
                        end[p] = target[p]
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
            deadline = time.monotonic() + timeout
            while len(end) < PARTITIONS:
                if time.monotonic() > deadline:
                    raise AssertionError(f"reading {topic}: no end after {timeout}s ({len(out)} records, "
                                         f"ends {end}, targets {target}, errors {errors[-3:]})")
                for m in c.consume(5000, 0.5):
                    p, err = m.partition(), m.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            if p in target:
                                if m.offset() >= target[p]:
                                    end[p] = target[p]
                            else:
                                end[p] = m.offset()
                        else:
                            errors.append(str(err))
                        continue
                    if p in target:
                        if m.offset() >= target[p] - 1:
                            end[p] = target[p]
                        if m.offset() >= target[p]:
                            continue
                    else:
                        end.pop(p, None)
                    start.setdefault(p, m.offset())
                    out.append((p, m.offset(), m.key(), m.value()))
            return out, start, end
        finally:
            c.close()

    def watermarks(self, c, topic, p, timeout=120):
        """(log start, high watermark), asked until a leader answers."""
        from confluent_kafka import KafkaException, TopicPartition
        deadline = time.monotonic() + timeout
        while True:
            try:
                return c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def read_compact(self, timeout=300):
        recs, start, end = self.read_all("compact", timeout)
        snap = {p: [start[p], end[p], {}] for p in range(PARTITIONS)}
        for p, o, k, v in recs:
            snap[p][2][o] = list(parse_compact(k, v) or (None, None))
        return snap

    # -- faults and sampling ---------------------------------------------------
    def killer(self):
        rng = random.Random(f"{self.seed}-kills")
        while True:
            wait = self.kill_every * rng.uniform(0.75, 1.25)
            if self.stop.wait(wait):
                return
            node = self.kill()
            self.kills.append((round(self.t(), 1), node))
            self.log(f"[soak] {self.t():7.1f}s kill -9 node {node} (kill #{len(self.kills)})")
            self.restart(node)

    def sampler(self):
        while not self.stop.is_set():
            t = self.t()
            for node, pid in self.brokers().items():
                s = proc_sample(pid) if pid else None
                if s:
                    self.samples.append((round(t, 1), node) + s)
            with self.lat_lock:
                lat, self.lat_window = self.lat_window, []
            if lat:
                lat.sort()
                self.latencies.append((round(t, 1), lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                                       len(lat)))
            else:
                self.latencies.append((round(t, 1), 0, 0, 0))
            self.stop.wait(self.sample_every)

    # -- the whole run -----------------------------------------------------
    def run(self, rf=1):
        self.create_topics(rf)
        self.t0, self.t0_wall = time.monotonic(), time.time()
        rc_done = threading.Event()
        load = [
            self.thread("idem-0", self.producer_loop, "main", "idem0", self.rate, 40),
            self.thread("idem-1", self.producer_loop, "main", "idem1", self.rate, 80),
            self.thread("retention", self.producer_loop, "retention", "ret0", self.rate, 400),
            self.thread("compact", self.producer_loop, "compact", "cmp0", self.rate / 2, 0),
            self.thread("txn-0", self.txn_loop, f"soak-tx0-{self.seed}"),
            self.thread("txn-1", self.txn_loop, f"soak-tx1-{self.seed}"),
            self.thread("member-0", self.group_member, 0),
            self.thread("member-1", self.group_member, 1),
            self.thread("member-2", self.group_member, 2),
            self.thread("committed", self.committed_sampler),
            self.thread("log-starts", self.log_start_sampler),
        ]
        rc = self.thread("rc-reader", self.rc_reader, rc_done)
        killer = self.thread("killer", self.killer)
        sampler = self.thread("sampler", self.sampler)
        while self.t() < self.duration and not self.errors:
            time.sleep(0.5)
        self.stop.set()
        self.log(f"[soak] {self.t():7.1f}s load stopping")
        # where a stuck end of run hangs (to the real stderr: pytest captures sys.stderr)
        faulthandler.dump_traceback_later(240, exit=False, file=sys.__stderr__)
        killer.join(120)
        for th in load:
            th.join(180)
        sampler.join(30)
        stuck = [th.name for th in load + [killer] if th.is_alive()]
        if stuck:
            self.errors.append(f"threads did not stop: {stuck}")
        # the read_committed reader catches up with the end of the txn topic
        _, _, end = self.read_all("txn", isolation="read_committed")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(self.rc_next.get(p, 0) < end[p] for p in end if end[p] > 0):
            time.sleep(0.2)
        if any(self.rc_next.get(p, 0) < end[p] for p in end if end[p] > 0):
            self.h.notes.append(f"read_committed reader behind at the end: {self.rc_next} < {end}")
        rc_done.set()
        rc.join(30)
        self.final_reads()
        faulthandler.cancel_dump_traceback_later()
        self.log(f"[soak] {self.t():7.1f}s read back")
        return self

    def final_reads(self):
        h = self.h
        recs, _, _ = self.read_all("main")
        h.final["main"] = [(p, o) + (parse_main(v) or (None, None)) for p, o, _, v in recs]
        recs, _, _ = self.read_all("retention")
        h.final["retention"] = [(p, o) + (parse_main(v) or (None, None)) for p, o, _, v in recs]
        recs, _, _ = self.read_all("txn", isolation="read_committed")
        h.final["txn"] = [(p, o) + (parse_txn(v) or (None, None, None)) for p, o, _, v in recs]
        h.final["compact"] = self.read_compact()

    def summary(self):
        h = self.h
        comp = h.final.get("compact", {})
        expired = 0
        firsts = {}
        for p, o, _, _ in h.final.get("retention", []):
            firsts[p] = min(firsts.get(p, o), o)
        expired = sum(1 for _, _, p, o in h.acks["retention"] if o is not None and 0 <= o < firsts.get(p, 0))
        txn_out = Counter(f"{d}/{o}" for _, _, d, o, _ in h.txns)
        return {
            "duration_s": round(self.t(), 1),
            "kills": len(self.kills),
            "acked": {r: len(v) for r, v in h.acks.items()},
            "acked_without_offset": {r: n for r, v in h.acks.items()
                                     if (n := sum(1 for a in v if a[3] is None or a[3] < 0))},
            "delivery_failed": dict(h.failed),
            "fatal_client_errors": dict(self.fatal),
            "transactions": dict(txn_out),
            "group_reads": len(h.group_reads),
            "group_assignments": self.epochs,
            "hung_members_killed": self.hung_members,
            "group_commits": len(h.commits),
            "committed_samples": len(h.committed_samples),
            "rc_reads": len(h.rc_reads),
            "retention_expired_acked": expired,
            "compact_records_now": sum(len(r) for _, _, r in comp.values()),
            "compact_snapshots": len(h.snapshots),
            "notes": h.notes,
        }


# ---------------------------------------------------------------------------
# a consumer group member (its own process; see Run.group_member)
# ---------------------------------------------------------------------------

MEMBER_GRACE_S = 30  # a member past its life by this much is killed


def member_main(spec):
    """Joins the group, reads and commits (synchronously, after every batch
    and on revocation) for spec["life"] seconds or until SIGTERM, leaves.
    Writes JSON lines: ["a", epoch, p] per assignment, ["r", epoch, p, o,
    producer, seq] per record, ["c", t, p, o] per acknowledged commit (t in
    seconds since spec["t0"], wall clock)."""
    import signal
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    out = open(spec["out"], "w")
    topic, epoch, pos, n = spec["topic"], {}, {}, [0]

    def emit(*rec):
        out.write(json.dumps(rec) + "\n")

    def commit(c):
        offs = [TopicPartition(topic, p, o) for p, o in pos.items() if p in epoch]
        if not offs:
            return
        try:
            res = c.commit(offsets=offs, asynchronous=False)
        except KafkaException:
            return  # not acknowledged: in doubt, not recorded
        t = time.time() - spec["t0"]
        for tp in res or []:
            if tp.error is None:
                emit("c", t, tp.partition, tp.offset)

    def on_assign(c, parts):
        for tp in parts:
            n[0] += 1
            epoch[tp.partition] = f"{spec['epoch']}.{n[0]}"
            pos.pop(tp.partition, None)  # a new assignment starts at the committed offset
            emit("a", epoch[tp.partition], tp.partition)

    def on_revoke(c, parts):
        commit(c)
        for tp in parts:
            epoch.pop(tp.partition, None)
            pos.pop(tp.partition, None)
        out.flush()

    c = Consumer({**QUIET, "bootstrap.servers": spec["bootstrap"], "group.id": spec["group"],
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000,
                  "fetch.wait.max.ms": 200, "client.id": f"soak-member-{spec['epoch']}"})
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    leave = time.monotonic() + spec["life"]
    while not stop and time.monotonic() < leave:
        msgs = c.consume(500, 0.2)
        for m in msgs:
            if m.error() or m.partition() not in epoch:
                continue
            p = m.partition()
            emit("r", epoch[p], p, m.offset(), *(parse_main(m.value()) or (None, None)))
            pos[p] = m.offset() + 1
        if msgs:
            commit(c)
        out.flush()
    # leave: revoke (and its commit) in a poll first, so that close() has no
    # rebalance callback to run
    c.unsubscribe()
    deadline = time.monotonic() + 5
    while epoch and time.monotonic() < deadline:
        c.consume(1, 0.1)
    out.flush()
    c.close()
    out.close()


# ---------------------------------------------------------------------------
# brokers: standalone or a cluster, outside pytest
# ---------------------------------------------------------------------------

SOAK_OVERRIDES = {
    "num.partitions": str(PARTITIONS),
    "log.retention.check.interval.ms": "1000",
    "log.cleaner.backoff.ms": "500",
    "group.initial.rebalance.delay.ms": "0",
}


class Standalone:
    def __init__(self, workdir, broker=None):
        """``broker``: a conftest.Broker made with SOAK_OVERRIDES, not started
        (the test's, so that its log lands in the failure report)."""
        from conftest import Broker
        self.b = broker or Broker(Path(workdir) / "kastle", overrides=SOAK_OVERRIDES, name="kastle")
        self.rf = 1

    def start(self):
        self.b.start(timeout=60)

    @property
    def bootstrap(self):
        return self.b.bootstrap

    def pids(self):
        proc = self.b.proc  # the killer thread may clear it meanwhile
        return {1: proc.pid if proc is not None and proc.poll() is None else None}

    def kill(self):
        self.b.kill()
        return 1

    def restart(self, node):
        time.sleep(0.5)
        self.b.start(timeout=120)

    def close(self):
        if self.b.alive():
            self.b.stop(check=False)

    def logs(self):
        return [str(p) for p in self.b.log_paths]


class Cluster:
    def __init__(self, workdir):
        from cluster_lib import KastleCluster
        from conftest import Broker
        self.made = []
        root = Path(workdir)

        def factory(props=None, start=True, **kw):
            b = Broker(root / f"node{len(self.made) + 1}", overrides=props, **kw)
            self.made.append(b)
            if start:
                b.start()
            return b
        over = dict(SOAK_OVERRIDES)
        self.c = KastleCluster(factory, nodes=3, overrides=over)
        self.rf = 3
        self.rng = random.Random(0)

    def start(self):
        self.c.start()
        self.c.wait_brokers({1, 2, 3})

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.c.nodes.values())

    def pids(self):
        procs = {i: b.proc for i, b in self.c.nodes.items()}  # the killer may clear them meanwhile
        return {i: (p.pid if p is not None and p.poll() is None else None) for i, p in procs.items()}

    def kill(self):
        node = self.rng.choice(sorted(self.c.nodes))
        self.c.kill(node)
        return node

    def restart(self, node):
        time.sleep(3)
        self.c.nodes[node].start(timeout=120)

    def close(self):
        self.c.close()

    def logs(self):
        return [str(p) for b in self.c.nodes.values() for p in b.log_paths]


def soak(minutes, cluster=False, kill_every=180.0, seed=None, out=None, log=print, rate=200,
         flat=None, env=None):
    """Runs one soak; returns (run, anomalies, flat rows, flat failures).
    ``env``: the brokers (Standalone or Cluster), made here by default."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    workdir = Path(out or tempfile.mkdtemp(prefix="kastle-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = env or (Cluster(workdir) if cluster else Standalone(workdir))
    log(f"[soak] seed {seed}, {minutes} min, {'cluster' if cluster else 'standalone'}, "
        f"kill every ~{kill_every}s, data in {workdir}")
    env.start()
    try:
        run = Run(env.pids, env.kill, env.restart, seed, minutes * 60, kill_every, log=log, rate=rate)
        run.bootstrap = env.bootstrap
        run.workdir = workdir / "members"
        run.workdir.mkdir(exist_ok=True)
        run.run(rf=env.rf)
    finally:
        env.close()
    with open(workdir / "history.json", "w") as f:
        json.dump(run.h.to_json(), f)
    anomalies = check(run.h)
    if run.errors:
        anomalies = dict(anomalies, **{"client thread died": run.errors[:3]})
    rows, failures = flatness(run.samples, run.latencies, run.duration, flat)
    report = render(run, anomalies, rows, failures, seed, cluster)
    (workdir / "report.md").write_text(report)
    with open(workdir / "samples.json", "w") as f:
        json.dump({"samples": run.samples, "latencies": run.latencies, "kills": run.kills}, f)
    log(report)
    return run, anomalies, rows, failures


def render(run, anomalies, rows, failures, seed, cluster):
    s = run.summary()
    lines = [f"# soak: seed {seed}, {'3-node cluster' if cluster else 'standalone'}, "
             f"{s['duration_s']:.0f} s, {s['kills']} kills", ""]
    lines += ["| what | count |", "|---|---|"]
    for k, v in s.items():
        if k != "notes":
            lines.append(f"| {k} | {v} |")
    lines += ["", "## checker verdict", ""]
    if not anomalies:
        lines.append("no anomalies (" + ", ".join(KINDS) + ")")
    for kind, ex in sorted(anomalies.items()):
        lines.append(f"- **{kind}**:")
        lines += [f"  - {e}" for e in ex]
    if s["notes"]:
        lines += ["", "notes: " + "; ".join(s["notes"][:10])]
    lines += ["", "## flatness (second quarter vs last quarter)", "",
              "| metric | 2nd quarter | last quarter | bound | ok |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {a} | {b} | {bound:.0f} | {'yes' if ok else 'NO'} |" for n, a, b, bound, ok in rows]
    lines += ["", "## trend (per ~minute: max RSS MiB / max fds / max threads / produce p50 / p99 ms)", "",
              "| t (s) | node | rss | fds | threads | p50 | p99 | acks |", "|---|---|---|---|---|---|---|---|"]
    step = max(60.0, run.duration / 30)
    buckets = defaultdict(list)
    for smp in run.samples:
        buckets[(int(smp[0] // step), smp[1])].append(smp)
    lat = defaultdict(list)
    for x in run.latencies:
        lat[int(x[0] // step)].append(x)
    for (b, node), smps in sorted(buckets.items()):
        ls = [x for x in lat.get(b, []) if x[3]]
        p50 = statistics.median(x[1] for x in ls) if ls else 0
        p99 = max((x[2] for x in ls), default=0)
        lines.append(f"| {int(b * step)} | {node} | {max(x[2] for x in smps)} | {max(x[3] for x in smps)} | "
                     f"{max(x[4] for x in smps)} | {p50:.1f} | {p99:.1f} | {sum(x[3] for x in ls)} |")
    lines += ["", f"kills at (s, node): {run.kills}"]
    if failures:
        lines += ["", "flatness failures: " + "; ".join(failures)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--kill-every", type=float, default=180, help="seconds between kills (+-25%%)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--rate", type=float, default=200, help="records/s of each idempotent producer")
    ap.add_argument("--out", help="directory for data, logs, report.md, history.json")
    ap.add_argument("--check", metavar="HISTORY_JSON", help="only re-run the checker on a saved history")
    ap.add_argument("--member", metavar="SPEC_JSON", help=argparse.SUPPRESS)  # Run.group_member's processes
    a = ap.parse_args(argv)
    if a.member:
        member_main(json.loads(a.member))
        return 0
    if a.check:
        with open(a.check) as f:
            anomalies = check(History.from_json(json.load(f)))
        print(json.dumps(anomalies, indent=1) if anomalies else "no anomalies")
        return 1 if anomalies else 0
    _, anomalies, _, failures = soak(a.minutes, a.cluster, a.kill_every, a.seed, a.out, rate=a.rate)
    return 1 if anomalies or failures else 0


if __name__ == "__main__":
    sys.exit(main())
