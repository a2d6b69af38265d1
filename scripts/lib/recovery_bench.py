"""Recovery benchmark driver for scripts/bench_recovery.sh (not part of the tests).

One run = one (mode, segment size) pair:
  1. start the release broker on a fresh directory, create TOPICS x PARTS,
  2. fill it with about GB GiB of 1 KiB records (one kastle-perf producer per
     topic, acks=all) while a tracking producer (confluent_kafka, acks=all,
     1 KiB records round-robin over every partition) notes the highest offset
     acknowledged per partition,
  3. kill -9 the broker while all producers are still sending,
  4. restart it and time exec -> serving: Metadata lists every partition and
     a Fetch of the last offset of every partition returns that record,
  5. check: each partition's log end offset >= last acknowledged + 1, and
     (VERIFY=1) a full read of every partition from offset 0 gives
     contiguous offsets and 1 KiB values (librdkafka checks every CRC),
  6. SIGTERM (clean shutdown), restart, time it again for reference,
  7. stop the broker and delete the data directory.
Prints one JSON line per run (prefixed RESULT) and a human summary.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KASTLE = os.environ.get("KASTLE", os.path.join(ROOT, "target/release/kastle"))
PERF = os.environ.get("KASTLE_PERF", os.path.join(ROOT, "target/release/kastle-perf"))
TOPICS = int(os.environ.get("TOPICS", "8"))
PARTS = int(os.environ.get("PARTS", "4"))
RECORD = 1024
# Bounds for every wait, so a broken broker cannot hang the benchmark.
START_TIMEOUT_S = 600.0
FILL_TIMEOUT_S = 3600.0


def log(msg):
    print(f"[bench_recovery {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            if f.endswith(".log"):
                try:
                    total += os.stat(os.path.join(dirpath, f)).st_size
                except FileNotFoundError:
                    pass
    return total


class Broker:
    def __init__(self, data, port, mode, segment_bytes, logfile):
        self.args = [
            KASTLE,
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"log.dirs={data}",
            "--override", f"log.segment.bytes={segment_bytes}",
        ]
        if mode == "pagecache":
            self.args += ["--override", "log.flush.interval.messages=9223372036854775807"]
        checkpoint_ms = os.environ.get("CHECKPOINT_MS")
        if checkpoint_ms:
            self.args += ["--override", f"log.flush.offset.checkpoint.interval.ms={checkpoint_ms}"]
        self.logfile = logfile
        self.proc = None

    def start(self):
        """Spawns the broker; returns the monotonic time just before exec."""
        out = open(self.logfile, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return t0

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise RuntimeError("broker did not stop within the timeout after SIGTERM")


def topic_names():
    return [f"rec-{i}" for i in range(TOPICS)]


def serving(boot, t0):
    """Polls until Metadata lists every partition and the last record of every
    partition can be fetched. Returns (seconds since t0, {tp: log end offset},
    seconds to the first Metadata answer)."""
    host, port = boot.split(":")
    deadline = t0 + START_TIMEOUT_S
    while True:  # the listener first: no client back-off in the measurement
        try:
            socket.create_connection((host, int(port)), timeout=0.1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("broker never accepted a connection")
            time.sleep(0.002)
    c = Consumer({
        "bootstrap.servers": boot,
        "group.id": "recovery-probe",
        "enable.auto.commit": False,
        "check.crcs": True,
        "fetch.wait.max.ms": 10,
        "reconnect.backoff.ms": 1,
        "reconnect.backoff.max.ms": 10,
        "topic.metadata.refresh.interval.ms": 100,
    })
    try:
        t_meta = None
        while True:
            try:
                md = c.list_topics(timeout=1.0)
                ok = all(
                    t in md.topics and md.topics[t].error is None
                    and len(md.topics[t].partitions) == PARTS
                    and all(p.error is None for p in md.topics[t].partitions.values())
                    for t in topic_names())
                if ok:
                    t_meta = time.monotonic() - t0
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Metadata never listed every partition")
            time.sleep(0.005)
        ends = {}
        for t in topic_names():
            for p in range(PARTS):
                _, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=30, cached=False)
                ends[(t, p)] = hi
        c.assign([TopicPartition(t, p, hi - 1) for (t, p), hi in ends.items() if hi > 0])
        want = {tp for tp, hi in ends.items() if hi > 0}
        while want:
            for m in c.consume(num_messages=len(want), timeout=1.0):
                if m.error():
                    raise RuntimeError(f"fetch error: {m.error()}")
                tp = (m.topic(), m.partition())
                if m.offset() == ends[tp] - 1:
                    want.discard(tp)
            if time.monotonic() > deadline:
                raise RuntimeError(f"last records never fetched: {sorted(want)[:4]}")
        return time.monotonic() - t0, ends, t_meta
    finally:
        c.close()


def verify_all(boot, ends):
    """Reads every partition from 0 to its end: offsets contiguous, 1 KiB
    values. Returns the number of records read."""
    c = Consumer({
        "bootstrap.servers": boot,
        "group.id": "recovery-verify",
        "enable.auto.commit": False,
        "check.crcs": True,
        "fetch.max.bytes": 64 << 20,
        "max.partition.fetch.bytes": 8 << 20,
        "queued.max.messages.kbytes": 262144,
    })
    nxt = {tp: 0 for tp in ends}
    try:
        c.assign([TopicPartition(t, p, 0) for (t, p), hi in ends.items() if hi > 0])
        left = {tp for tp, hi in ends.items() if hi > 0}
        idle = 0
        while left:
            msgs = c.consume(num_messages=10000, timeout=1.0)
            if not msgs:
                idle += 1
                if idle > 30:
                    raise RuntimeError(f"verify stalled; partitions left: {sorted(left)[:4]}")
                continue
            idle = 0
            for m in msgs:
                if m.error():
                    raise RuntimeError(f"verify fetch error: {m.error()}")
                tp = (m.topic(), m.partition())
                if m.offset() != nxt[tp]:
                    raise RuntimeError(f"gap in {tp}: expected {nxt[tp]}, got {m.offset()}")
                v = m.value()
                if v is None or len(v) != RECORD:
                    raise RuntimeError(f"bad value at {tp}@{m.offset()}: {None if v is None else len(v)} bytes")
                nxt[tp] = m.offset() + 1
                if nxt[tp] >= ends[tp]:
                    left.discard(tp)
        return sum(nxt.values())
    finally:
        c.close()


class Tracker(threading.Thread):
    """acks=all producer over every partition; remembers the highest
    acknowledged offset per partition."""

    def __init__(self, boot):
        super().__init__(daemon=True)
        self.acked = {}
        self.stop_flag = threading.Event()
        self.p = Producer({
            "bootstrap.servers": boot,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 30000,
            "queue.buffering.max.kbytes": 65536,
            "log_level": 0,  # the broker is killed under it: no connect-refused noise
        })
        self.value = b"t" * RECORD

    def _cb(self, err, msg):
        if err is None:
            tp = (msg.topic(), msg.partition())
            if msg.offset() > self.acked.get(tp, -1):
                self.acked[tp] = msg.offset()

    def run(self):
        names = topic_names()
        i = 0
        while not self.stop_flag.is_set():
            t, p = names[i % TOPICS], (i // TOPICS) % PARTS
            try:
                self.p.produce(t, self.value, partition=p, on_delivery=self._cb)
                i += 1
            except BufferError:
                self.p.poll(0.01)
            self.p.poll(0)

    def finish(self):
        self.stop_flag.set()
        self.join()
        self.p.poll(0)  # deliver reports already received
        self.p.purge()
        self.p.flush(0)
        self.p = None
        return dict(self.acked)


def run_once(mode, segment_bytes, gib, base, verify):
    data = os.path.join(base, f"{mode}-{segment_bytes >> 20}m")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    port = free_port()
    boot = f"127.0.0.1:{port}"
    blog = os.path.join(base, f"broker-{mode}-{segment_bytes >> 20}m.log")
    b = Broker(os.path.join(data, "logs"), port, mode, segment_bytes, blog)
    res = {"mode": mode, "segment_mib": segment_bytes >> 20, "gib": gib,
           "topics": TOPICS, "partitions": PARTS,
           "checkpoint_ms": os.environ.get("CHECKPOINT_MS", "default")}
    try:
        t0 = b.start()
        # wait for the listener, then create the topics
        host = "127.0.0.1"
        while True:
            try:
                socket.create_connection((host, port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        for t in topic_names():
            subprocess.run([PERF, "topic", "--bootstrap-server", boot, "--topic", t,
                            "--partitions", str(PARTS)], check=True,
                           stdout=subprocess.DEVNULL)
        # The probes are librdkafka consumers, which look up their group's
        # coordinator: create __consumer_offsets now (kastle creates it on
        # first need), so the restarts time loading it, not creating it.
        c = Consumer({"bootstrap.servers": boot, "group.id": "recovery-probe",
                      "enable.auto.commit": False})
        c.committed([TopicPartition(topic_names()[0], 0)], timeout=60)
        c.close()
        target = int(gib * (1 << 30))
        # Producers are sized past the target so they are still sending at the kill.
        per_topic = int(target * 1.5 / RECORD / TOPICS) + 1
        producers = [subprocess.Popen(
            [PERF, "producer", "--bootstrap-server", boot, "--topic", t,
             "--num-records", str(per_topic), "--record-size", str(RECORD),
             "--throughput", "-1", "--producer-props", "acks=all"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for t in topic_names()]
        tracker = Tracker(boot)
        tracker.start()
        fill_start = time.monotonic()
        log(f"{mode} seg={segment_bytes >> 20} MiB: filling {gib} GiB")
        while True:
            size = dir_bytes(data)
            if size >= target:
                break
            if time.monotonic() - fill_start > FILL_TIMEOUT_S:
                raise RuntimeError("fill timed out")
            if all(p.poll() is not None for p in producers):
                raise RuntimeError("producers exited before the target size")
            time.sleep(0.2)
        fill_s = time.monotonic() - fill_start
        b.kill9()
        res["fill_s"] = round(fill_s, 1)
        res["fill_mb_s"] = round(size / fill_s / 1e6, 1)
        for p in producers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in producers:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        acked = tracker.finish()
        size = dir_bytes(data)
        nfiles = sum(len([f for f in fs if f.endswith(".log")]) for _, _, fs in os.walk(data))
        res["bytes_at_kill"] = size
        res["segments"] = nfiles
        log(f"killed -9 at {size / (1 << 30):.2f} GiB ({nfiles} segment files) after {fill_s:.1f} s; "
            f"tracker acked {sum(v + 1 for v in acked.values())} offsets' worth on {len(acked)} partitions")
        # Drop nothing from the page cache: kill -9 leaves it intact, as a
        # process crash does; the recovery cost measured is CPU + page cache reads.
        subprocess.run(["sync"], check=False)
        os.system("uptime")
        b.logfile = blog
        t0 = b.start()
        secs, ends, t_meta = serving(boot, t0)
        res["recovery_s"] = round(secs, 3)
        res["recovery_metadata_s"] = round(t_meta, 3)
        lost = {f"{t}-{p}": (off, ends.get((t, p))) for (t, p), off in acked.items()
                if ends.get((t, p), 0) < off + 1}
        res["acked_lost"] = lost
        res["records"] = sum(ends.values())
        log(f"recovered to serving in {secs:.3f} s (metadata at {t_meta:.3f} s); "
            f"{res['records']} records; acknowledged but missing: {lost or 'none'}")
        if verify:
            tv = time.monotonic()
            n = verify_all(boot, ends)
            res["verified_records"] = n
            log(f"verified {n} records (contiguous offsets, 1 KiB values, CRCs) in {time.monotonic() - tv:.1f} s")
        rc = b.stop()
        res["clean_stop_rc"] = rc
        t0 = b.start()
        secs2, ends2, _ = serving(boot, t0)
        res["clean_restart_s"] = round(secs2, 3)
        res["clean_restart_same_ends"] = ends2 == ends
        log(f"clean restart to serving in {secs2:.3f} s; same log end offsets: {ends2 == ends}")
        b.stop()
    finally:
        if b.proc is not None and b.proc.poll() is None:
            b.kill9()
        shutil.rmtree(data, ignore_errors=True)
    return res


def main():
    gib = float(os.environ.get("GB", "10"))
    base = os.environ.get("BENCH_DIR", "/tmp/kastle-bench-recovery")
    modes = os.environ.get("MODES", "durable pagecache").split()
    segs = [int(s) << 20 for s in os.environ.get("SEGMENT_MIB", "1024 64").split()]
    verify = os.environ.get("VERIFY", "1") == "1"
    os.makedirs(base, exist_ok=True)
    results = []
    for seg in segs:
        for mode in modes:
            r = run_once(mode, seg, gib, base, verify)
            print("RESULT " + json.dumps(r), flush=True)
            results.append(r)
    bad = [r for r in results if r["mode"] == "durable" and r["acked_lost"]]
    bad += [r for r in results if not r.get("clean_restart_same_ends", False)]
    print("\n| mode | segment MiB | checkpoint ms | GiB at kill | segment files | recovery s (metadata s) | clean restart s | acked lost |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['segment_mib']} | {r['checkpoint_ms']} | {r['bytes_at_kill'] / (1 << 30):.2f} | {r['segments']} | "
              f"{r['recovery_s']:.3f} ({r['recovery_metadata_s']:.3f}) | {r['clean_restart_s']:.3f} | "
              f"{len(r['acked_lost'])} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
