#!/usr/bin/env python3
"""Apache Kafka's own perf tools as a benchmark driver (scripts/bench.sh, DRIVERS=kafka-perf).

Runs one of kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance),
kafka-consumer-perf-test (ConsumerPerformance) or the end-to-end latency tool
(EndToEndLatency) from the kafka-tools jar of compat-tests/jvm/kafka4, with the
JVM options of Kafka's own bin/ scripts, and prints its result as one JSON line
in kastle-perf's field names, so bench.sh's table reads both drivers alike.

    kafka_perf.py calibrate BOOT TOPIC SIZE ACKS SECONDS   -> the record count for ~SECONDS
    kafka_perf.py produce BOOT TOPIC SIZE N THROUGHPUT [PROP=VALUE...]
    kafka_perf.py consume BOOT TOPIC N
    kafka_perf.py e2e BOOT TOPIC SIZE N ACKS
    kafka_perf.py omb BOOT TOPIC SIZE SECONDS RATE [CALIBRATION_TOPIC]

The JVM comes from the environment: JAVA, KAFKA_CP and KAFKA_PERF_JVM_OPTS (the
options, space separated), as scripts/lib/kafka_jvm.sh sets them.
ProducerPerformance has no time limit, so `calibrate` first sends a short burst
(CALIBRATE_BYTES at full rate) and answers rate x SECONDS; bench.sh runs it
outside the measured window.
"""
import json
import os
import re
import subprocess
import sys
import time

TOOLS = "org.apache.kafka.tools."
CALIBRATE_BYTES = 32 << 20  # enough for a rate, short enough not to matter
TOOL_TIMEOUT_S = 900  # a stuck tool must not stall the whole benchmark
MB = 1 << 20

# ProducerPerformance's summary line (Kafka 3.x and 4.x):
# "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
#  P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
# With --warmup-records (KIP-1052) it also prints the same figures for the
# records after the warm-up ("N steady state records sent, ..."), which win.
PRODUCE_SUMMARY = re.compile(
    r"^(\d+) (?:steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def run_tool(main_class, args):
    argv = [os.environ.get("JAVA", "java"), *os.environ.get("KAFKA_PERF_JVM_OPTS", "").split(),
            "-cp", os.environ["KAFKA_CP"], TOOLS + main_class, *map(str, args)]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    sys.stderr.write(p.stdout + p.stderr)  # the raw output stays in the workload's file
    if p.returncode != 0:
        sys.exit(f"{main_class} exited {p.returncode}")
    return p.stdout, time.monotonic() - t0


def produce(boot, topic, size, n, throughput, props):
    """`warmup.records=K` among props is not a producer property: it becomes
    the tool's --warmup-records K, and the steady-state figures are kept
    (the first records of a fresh JVM wait for its metadata, connection and
    JIT, and would otherwise make the tail of the latency distribution)."""
    warm = [p.split("=", 1)[1] for p in props if p.startswith("warmup.records=")]
    props = [p for p in props if not p.startswith("warmup.records=")]
    out, _ = run_tool("ProducerPerformance", [
        "--bootstrap-server", boot, "--topic", topic, "--num-records", n, "--record-size", size,
        "--throughput", throughput, *(["--warmup-records", warm[-1]] if warm else []),
        *(["--command-property", *props] if props else [])])
    lines = [(ln, PRODUCE_SUMMARY.match(ln)) for ln in out.splitlines()]
    total = [m for ln, m in lines if m and "steady state" not in ln]
    steady = [m for ln, m in lines if m and "steady state" in ln]
    if not total:
        sys.exit("no summary line from ProducerPerformance")
    recs, rps, mbps, avg, mx, p50, p95, p99, p999 = (steady or total)[-1].groups()
    # records: all sent (what the broker's CPU was spent on); the rest from
    # the steady state when there is one
    res = {"records": int(total[-1].group(1)), "records_per_sec": float(rps), "mb_per_sec": float(mbps),
           "avg_ms": float(avg), "max_ms": float(mx), "p50_ms": float(p50), "p95_ms": float(p95),
           "p99_ms": float(p99), "p999_ms": float(p999)}
    if warm:
        res["warmup_records"] = int(warm[-1])
    return res


def consumer_stats(out):
    """ConsumerPerformance's result as {column: value}: its CSV header, then the
    first line with as many fields (a WARNING line may come between when it
    stopped on its timeout)."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    head = next((i for i, ln in enumerate(lines) if ln.startswith("start.time")), None)
    if head is None:
        return None
    names = [c.strip() for c in lines[head].split(",")]
    for ln in lines[head + 1:]:
        values = [v.strip() for v in ln.split(",")]
        if len(values) == len(names):
            return dict(zip(names, values))
    return None


def consume(boot, topic, n):
    out, _ = run_tool("ConsumerPerformance", [
        "--bootstrap-server", boot, "--topic", topic, "--num-records", n, "--timeout", 10000])
    cols = consumer_stats(out)
    if cols is None:
        sys.exit("no result line from ConsumerPerformance")
    return {"records": int(cols["data.consumed.in.nMsg"]),
            "mb_per_sec": float(cols["MB.sec"]), "records_per_sec": float(cols["nMsg.sec"]),
            "fetch_mb_per_sec": float(cols["fetch.MB.sec"]),
            "fetch_records_per_sec": float(cols["fetch.nMsg.sec"]),
            "rebalance_ms": float(cols["rebalance.time.ms"])}


def e2e(boot, topic, size, n, acks):
    out, secs = run_tool("EndToEndLatency", [
        "--bootstrap-server", boot, "--topic", topic, "--num-records", n,
        "--producer-acks", acks, "--record-size", size])
    avg = re.search(r"Avg latency: ([\d.]+) ms", out)
    pct = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", out)
    if avg is None or pct is None:
        sys.exit("no latency lines from EndToEndLatency")
    # one record at a time, each waiting for its own round trip: the rate is
    # what the latency allows (JVM start-up included, so a lower bound)
    return {"records": int(n), "avg_ms": float(avg.group(1)), "p50_ms": float(pct.group(1)),
            "p99_ms": float(pct.group(2)), "p999_ms": float(pct.group(3)),
            "achieved_rate": int(n) / secs}


OMB_PRODUCERS = 4
OMB_CONSUMERS = 4
OMB_KEYS = 10000
# A consumer ends this long after its last record (or after start, with none
# yet: the JVM start and the group join must fit, on a loaded machine too).
OMB_CONSUMER_IDLE_MS = 12000


def _spawn(main_class, args):
    argv = [os.environ.get("JAVA", "java"), *os.environ.get("KAFKA_PERF_JVM_OPTS", "").split(),
            "-cp", os.environ["KAFKA_CP"], TOOLS + main_class, *map(str, args)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _producers(boot, topic, size, n_each, rate_each):
    return [_spawn("ProducerPerformance", [
        "--bootstrap-server", boot, "--topic", topic, "--num-records", n_each,
        "--record-size", size, "--throughput", rate_each, "--key-distribution", "random",
        "--record-key-range", OMB_KEYS, "--random-seed", 17 + i])
        for i in range(OMB_PRODUCERS)]


def _summaries(procs):
    out = []
    for p in procs:
        text, _ = p.communicate(timeout=TOOL_TIMEOUT_S)
        sys.stderr.write(text)
        m = next((PRODUCE_SUMMARY.match(ln) for ln in reversed(text.splitlines())
                  if PRODUCE_SUMMARY.match(ln)), None)
        if p.returncode != 0 or m is None:
            sys.exit(f"a producer exited {p.returncode} without a summary")
        out.append(m.groups())
    return out


def omb(boot, topic, size, seconds, rate, cal_topic=None):
    """An OpenMessaging-Benchmark-like run: OMB_PRODUCERS producers with random
    keys over OMB_KEYS (the Java client's default partitioner) and
    OMB_CONSUMERS consumers in one group, all at once, on one topic (bench.sh
    gives it 100 partitions). RATE is the total records/s, or -1 for the
    maximum (a calibration burst to CALIBRATION_TOPIC sizes that run). The
    consumers must read every record produced."""
    size, seconds, rate = int(size), float(seconds), int(rate)
    if rate < 0:
        burst = max(1000, CALIBRATE_BYTES // size // OMB_PRODUCERS)
        cal = _summaries(_producers(boot, cal_topic or topic + "-cal", size, burst, -1))
        total = sum(float(g[1]) for g in cal)
        n_each, rate_each = max(1000, int(total / OMB_PRODUCERS * seconds)), -1
    else:
        n_each = max(1, int(rate / OMB_PRODUCERS * seconds))
        rate_each = max(1, rate // OMB_PRODUCERS)
    group = f"omb-{topic}-{int(time.time())}"
    consumers = [_spawn("ConsumerPerformance", [
        "--bootstrap-server", boot, "--topic", topic, "--group", group,
        "--num-records", n_each * OMB_PRODUCERS, "--timeout", OMB_CONSUMER_IDLE_MS])
        for _ in range(OMB_CONSUMERS)]
    t0 = time.monotonic()
    sums = _summaries(_producers(boot, topic, size, n_each, rate_each))
    produce_secs = time.monotonic() - t0
    consumed = 0
    for c in consumers:
        text, _ = c.communicate(timeout=TOOL_TIMEOUT_S)
        sys.stderr.write(text)
        cols = consumer_stats(text)
        if cols is not None:
            consumed += int(cols.get("data.consumed.in.nMsg", 0))
    records = sum(int(g[0]) for g in sums)
    rps = sum(float(g[1]) for g in sums)
    return {"records": records, "records_per_sec": rps, "mb_per_sec": rps * size / MB,
            "target_rate": rate, "produce_secs": produce_secs,
            "p50_ms": max(float(g[5]) for g in sums), "p99_ms": max(float(g[7]) for g in sums),
            "p999_ms": max(float(g[8]) for g in sums), "consumed": consumed,
            "consumers_kept_up": consumed >= records}


def main(argv):
    cmd, rest = argv[0], argv[1:]
    if cmd == "calibrate":
        boot, topic, size, acks, seconds = rest
        n0 = max(2000, CALIBRATE_BYTES // int(size))
        r = produce(boot, topic, size, n0, -1, [f"acks={acks}"])
        print(max(1000, int(r["records_per_sec"] * float(seconds))))
        return
    if cmd == "produce":
        boot, topic, size, n, throughput, *props = rest
        res = produce(boot, topic, size, n, throughput, props)
    elif cmd == "consume":
        res = consume(*rest)
    elif cmd == "e2e":
        res = e2e(*rest)
    elif cmd == "omb":
        res = omb(*rest)
    else:
        sys.exit(f"unknown command {cmd}")
    res["driver"] = "kafka-perf"
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1:])
