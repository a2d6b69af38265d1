#!/usr/bin/env bash
# kastle's performance check (part of scripts/test.sh; see BENCHMARKS.md,
# "The performance check"). Not a benchmark: a regression alarm that a noisy,
# shared machine does not set off.
#
#   bash scripts/perf_check.sh [--record]
#
# Three fixed workloads (kastle-perf producer, 1 KiB records, acks=all,
# librdkafka batch.size=16384 linger.ms=5, SECS seconds each), each on a
# fresh broker:
#   ref  page-cache mode, 1 partition  (the reference, measured in this run)
#   d1   durable mode,    1 partition
#   d100 durable mode,  100 partitions
# The figures checked are the ratios d1/ref and d100/ref: load on the
# machine slows the reference and the durable runs alike, so a ratio moves
# far less than MB/s does. Each is compared with the ratio recorded in
# bench/perf_check.json; the check fails when one falls below FLOOR (0.4)
# times its recorded value. --record rewrites the file from this run.
# About 25-35 s in all (three 5 s runs, broker starts, topic creation).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KASTLE_BIN="${KASTLE_BIN:-$ROOT/target/release/kastle}"
PERF="${PERF_BIN:-$ROOT/target/release/kastle-perf}"
RECORDED="$ROOT/bench/perf_check.json"
SECS="${PERF_CHECK_SECS:-5}"
FLOOR=0.4
RECORD=0
[[ "${1:-}" == "--record" ]] && RECORD=1

for b in "$KASTLE_BIN" "$PERF"; do
  [[ -x "$b" ]] || { echo "perf_check: $b missing (cargo build --release, -p kastle-bench)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kastle-perf-check.XXXXXX")"
BPID=""
cleanup() {
  if [[ -n "$BPID" ]]; then kill -TERM "$BPID" 2>/dev/null || true; wait "$BPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# run NAME MODE PARTITIONS: one broker, one producer run; prints MB/s
run() {
  local name=$1 mode=$2 parts=$3 port i extra=()
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  [[ $mode == pagecache ]] && extra=(--override log.flush.interval.messages=9223372036854775807)
  "$KASTLE_BIN" --override "listeners=PLAINTEXT://127.0.0.1:$port" \
    --override "advertised.listeners=PLAINTEXT://127.0.0.1:$port" \
    --override "log.dirs=$WORK/$name" "${extra[@]}" >"$WORK/$name.log" 2>&1 &
  BPID=$!
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  "$PERF" topic --bootstrap-server "127.0.0.1:$port" --topic check --partitions "$parts" >>"$WORK/$name.out" 2>&1
  "$PERF" producer --bootstrap-server "127.0.0.1:$port" --topic check --num-records 100000000 \
    --record-size 1024 --throughput -1 --max-seconds "$SECS" \
    --producer-props acks=all batch.size=16384 linger.ms=5 --json >>"$WORK/$name.out" 2>&1
  kill -TERM "$BPID" 2>/dev/null || true
  wait "$BPID" 2>/dev/null || true
  BPID=""
  rm -rf "${WORK:?}/$name"
  python3 -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.startswith("{")]
d=json.loads(lines[-1]) if lines else {}
print(d.get("mb_per_sec", 0) if d.get("errors", 0) == 0 else 0)' "$WORK/$name.out"
}

ref="$(run ref pagecache 1)"
d1="$(run d1 durable 1)"
d100="$(run d100 durable 100)"

python3 - "$RECORDED" "$RECORD" "$FLOOR" "$ref" "$d1" "$d100" <<'EOF'
import json, sys
path, record, floor = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
ref, d1, d100 = (float(x) for x in sys.argv[4:7])
if ref <= 0:
    sys.exit(f"perf_check: the reference run produced nothing (ref={ref} MB/s)")
now = {"durable_1p_over_pagecache_1p": round(d1 / ref, 3),
       "durable_100p_over_pagecache_1p": round(d100 / ref, 3)}
print(f"perf_check: pagecache 1p {ref:.1f} MB/s, durable 1p {d1:.1f} MB/s, durable 100p {d100:.1f} MB/s")
if record:
    json.dump({"floor": floor, "ratios": now}, open(path, "w"), indent=2)
    open(path, "a").write("\n")
    print(f"perf_check: recorded {now} in {path}")
    sys.exit(0)
want = json.load(open(path))["ratios"]
bad = []
for k, v in now.items():
    limit = floor * want[k]
    print(f"perf_check: {k} = {v} (recorded {want[k]}, fails below {limit:.3f})")
    if v < limit:
        bad.append(k)
if bad:
    sys.exit(f"perf_check: regression in {', '.join(bad)}")
EOF
