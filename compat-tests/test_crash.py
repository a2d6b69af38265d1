"""Crash safety: every message the broker acknowledged (acks=all) survives kill -9,
in durable mode (the default) and in page-cache mode (a process crash keeps the
page cache, so what was written before the acknowledgement is there too).

A confluent-kafka producer (idempotence off) produces continuously from a thread and
records each successful delivery report (partition, offset). The broker is SIGKILLed
~2 s into each of 3 cycles and restarted on the same port/data dir. Afterwards every
acknowledged message must be readable, at the offset it was acknowledged with.
Duplicates (retries of requests whose ack was lost in the crash) are allowed and
reported; acknowledged-then-lost messages are not.
"""
import threading
import time

import pytest
from collections import Counter, defaultdict

from compat_lib import (ck_consume, ck_create_topic, ck_producer, make_messages, rec_idx,
                        unique_topic)

PARTITIONS = 3
CYCLES = 3
RATE = 8_000  # messages/s: enough to have requests in flight at every kill, small enough to read back fast


class Background:
    def __init__(self, bootstrap, topic):
        self.topic = topic
        self.prod = ck_producer(bootstrap, **{
            "message.timeout.ms": 8_000,      # = delivery.timeout.ms
            "request.timeout.ms": 3_000,
            "retry.backoff.ms": 100,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "socket.connection.setup.timeout.ms": 2_000,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 2,
        })
        self.lock = threading.Lock()
        self.acked = {}           # idx -> (partition, offset)
        self.failed = Counter()   # error name -> count
        self.sent = 0
        self.stop = threading.Event()
        self.error = None
        self.msgs = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

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
                # pace to RATE msg/s
                ahead = i / RATE - (time.monotonic() - t0)
                if ahead > 0:
                    self.prod.poll(min(ahead, 0.05))
                    continue
                m = make_messages(1, "crash", PARTITIONS, start=i)[0]
                try:
                    self.prod.produce(self.topic, value=m.value, key=m.key, partition=m.partition,
                                      timestamp=m.timestamp, headers=m.headers, 
                                      on_delivery=lambda err, msg, i=i: self.on_delivery(i, err, msg))
                except BufferError:
                    self.prod.poll(0.05)
                    continue
                self.msgs[i] = m
                i += 1
                self.sent = i
                self.prod.poll(0)
            self.prod.flush(30)
        except Exception as e:  # noqa: BLE001
            self.error = e

    def acked_count(self):
        with self.lock:
            return len(self.acked)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


MODES = {
    "durable": None,
    "page_cache": {"log.flush.interval.messages": "9223372036854775807"},
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_acked_messages_survive_kill_9(broker_factory, mode, capsys):
    broker = broker_factory(MODES[mode])
    topic = unique_topic("crash")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    bg = Background(broker.bootstrap, topic)
    bg.thread.start()
    cycle_acks = []
    try:
        for cycle in range(CYCLES):
            before = bg.acked_count()
            # the producer must make progress against the (re)started broker ...
            wait_for(lambda: bg.acked_count() > before + 500, 20,
                     f"cycle {cycle}: producer acks after (re)start (acked={bg.acked_count()}, "
                     f"failed={dict(bg.failed)})")
            started = time.monotonic()
            # ... then keep going for ~2 s with requests in flight, and crash the broker
            wait_for(lambda: time.monotonic() - started >= 2.0, 5, "2 s of producing")
            broker.kill()
            cycle_acks.append(bg.acked_count() - before)
            broker.start()
        wait_for(lambda: bg.acked_count() > sum(cycle_acks) + 500, 20, "acks after final restart")
    finally:
        bg.stop.set()
        bg.thread.join(60)
    assert bg.error is None, f"producer thread died: {bg.error!r}"

    acked = dict(bg.acked)
    stats = (f"crash test ({mode}): sent={bg.sent} acked={len(acked)} failed={dict(bg.failed)} per-cycle acks={cycle_acks}")
    assert len(acked) > 2000

    # read everything back: until EOF on all partitions and past every acked offset
    until = defaultdict(int)
    for p, off in acked.values():
        until[p] = max(until[p], off + 1)
    recs = ck_consume(broker.bootstrap, topic, PARTITIONS, dict(until), timeout=180)

    at = {(r.partition, r.offset): r for r in recs}
    copies = Counter(rec_idx(r) for r in recs)
    lost, moved, corrupt = [], [], []
    for i, (p, off) in sorted(acked.items()):
        r = at.get((p, off))
        if r is None or rec_idx(r) != i:
            if copies.get(i):
                moved.append((i, (p, off), r and rec_idx(r)))
            else:
                lost.append((i, (p, off)))
            continue
        m = bg.msgs[i]
        if (r.key, r.value, r.headers, r.timestamp) != (m.key, m.value, m.headers, m.timestamp):
            corrupt.append(i)
    dups = {i: c for i, c in copies.items() if c > 1}
    offsets_by_p = defaultdict(list)
    for r in recs:
        offsets_by_p[r.partition].append(r.offset)
    gaps = {p: [o for a, o in zip(offs, offs[1:]) if o != a + 1][:5] for p, offs in offsets_by_p.items()}
    gaps = {p: g for p, g in gaps.items() if g}
    stats += f"; read back {len(recs)} records, {len(dups)} duplicated messages (retries, allowed)"
    with capsys.disabled():
        print("\n" + stats)

    assert not lost, stats + f"\n{len(lost)} acknowledged messages LOST after kill -9, e.g. {lost[:10]}"
    assert not moved, (f"{len(moved)} acknowledged messages not at their acknowledged offset "
                       f"(idx, acked (p, off), idx found there): {moved[:10]}")
    assert not corrupt, f"{len(corrupt)} acknowledged messages corrupted, e.g. {corrupt[:10]}"
    assert not gaps, f"offset gaps in the recovered log: {gaps}"
