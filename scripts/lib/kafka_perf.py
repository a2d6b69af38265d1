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
PRODUCE_SUMMARY = re.compile(
    r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
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
    out, _ = run_tool("ProducerPerformance", [
        "--bootstrap-server", boot, "--topic", topic, "--num-records", n, "--record-size", size,
        "--throughput", throughput, *(["--command-property", *props] if props else [])])
    m = next((PRODUCE_SUMMARY.match(ln) for ln in reversed(out.splitlines())
              if PRODUCE_SUMMARY.match(ln)), None)
    if m is None:
        sys.exit("no summary line from ProducerPerformance")
    recs, rps, mbps, avg, mx, p50, p95, p99, p999 = m.groups()
    return {"records": int(recs), "records_per_sec": float(rps), "mb_per_sec": float(mbps),
            "avg_ms": float(avg), "max_ms": float(mx), "p50_ms": float(p50), "p95_ms": float(p95),
            "p99_ms": float(p99), "p999_ms": float(p999)}


def consume(boot, topic, n):
    out, _ = run_tool("ConsumerPerformance", [
        "--bootstrap-server", boot, "--topic", topic, "--num-records", n, "--timeout", 10000])
    lines = [ln for ln in out.splitlines() if ln.strip()]
    head = next((i for i, ln in enumerate(lines) if ln.startswith("start.time")), None)
    if head is None or head + 1 >= len(lines):
        sys.exit("no result line from ConsumerPerformance")
    cols = dict(zip([c.strip() for c in lines[head].split(",")],
                    [v.strip() for v in lines[head + 1].split(",")]))
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
    else:
        sys.exit(f"unknown command {cmd}")
    res["driver"] = "kafka-perf"
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1:])
