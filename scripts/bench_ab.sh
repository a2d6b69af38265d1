#!/usr/bin/env bash
# A/B of two kastle binaries on the headline kastle rows of BENCHMARKS.md,
# in one run, alternating the binaries round by round so that the shared
# machine's drift hits both alike (read the ratio, not the absolute figures):
#
#   bash scripts/bench_ab.sh OLD_BINARY NEW_BINARY [ROUNDS]   (default 3)
#
# Per round and binary, a fresh broker (durable, the default) and the
# kastle-perf (librdkafka) workloads of scripts/bench.sh on 1 partition with
# 1 KiB records: produce acks=1 and acks=all for DUR seconds each, then
# consume what acks=all produced; records/s, MB/s and broker CPU s per GiB
# moved (utime+stime from /proc). Prints one table with per-binary medians
# and the new/old ratio; raw outputs in bench-results/ab-<timestamp>/.
#
# OLD_ENV / NEW_ENV ("NAME=value ...") set environment variables for one
# side, so one binary can be measured against itself with a switch, e.g.
# the fetch path: NEW_ENV=KASTLE_FETCH_SEND=pread bash scripts/bench_ab.sh
# target/release/kastle target/release/kastle 5. CONSUMES=N reads the
# acks=all data N times per broker (N consume rows per round). RATES="R ..."
# adds produce acks=all (linger.ms=0) at R records/s with its client p99;
# AB_MODE=pagecache runs both brokers in page-cache mode (default durable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ $# -ge 2 ]] || { sed -n '2,19p' "$0"; exit 2; }
OLD="$(realpath "$1")"; NEW="$(realpath "$2")"; ROUNDS="${3:-3}"
DUR="${DUR:-10}"; CONSUMES="${CONSUMES:-1}"
OLD_ENV="${OLD_ENV:-}"; NEW_ENV="${NEW_ENV:-}"; RATES="${RATES:-}"; AB_MODE="${AB_MODE:-durable}"
MODE_ARGS=()
[[ $AB_MODE == pagecache ]] && MODE_ARGS=(--override "log.flush.interval.messages=9223372036854775807")
[[ -x "$OLD" && -x "$NEW" ]] || { echo "both binaries must exist" >&2; exit 2; }

nice -n 5 cargo build --release --locked -p kastle-bench >/dev/null 2>&1 ||
  { echo "building kastle-perf failed" >&2; exit 1; }
PERF="$ROOT/target/release/kastle-perf"
RUN="$ROOT/bench-results/ab-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
TMPBASE="$(mktemp -d "${TMPDIR:-/tmp}/kastle-ab.XXXXXX")"
RESULTS="$RUN/results.jsonl"; : >"$RESULTS"
CLK_TCK="$(getconf CLK_TCK)"
BPID=""
cleanup() {
  [[ -n "$BPID" ]] && kill -TERM "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
  rm -rf "$TMPBASE"
}
trap cleanup EXIT
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "old: $OLD ($(sha256sum "$OLD" | cut -c1-12))"
  echo "new: $NEW ($(sha256sum "$NEW" | cut -c1-12))"
  echo "old env: ${OLD_ENV:-none}; new env: ${NEW_ENV:-none}; consumes per broker: $CONSUMES"
  echo "mode: $AB_MODE; fixed rates: ${RATES:-none}"
  echo "rounds: $ROUNDS, DUR=${DUR}s; nproc $(nproc); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RUN/env.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { local s; s="$(cat "/proc/$1/stat")"; s="${s##*) }"; set -- $s; echo $(( ${12} + ${13} )); }

# run BINARY LABEL ROUND: one fresh broker, the three workloads
run() {
  local bin=$1 label=$2 round=$3 port boot data c0 c1 work envs=() works=() i
  port="$(free_port)"; boot="127.0.0.1:$port"; data="$(mktemp -d "$TMPBASE/d.XXXX")"
  if [[ $label == old ]]; then read -ra envs <<<"$OLD_ENV"; else read -ra envs <<<"$NEW_ENV"; fi
  # `env` execs the broker: $! stays the broker's pid for cpu_ticks.
  env ${envs[@]+"${envs[@]}"} "$bin" --override "listeners=PLAINTEXT://$boot" --override "advertised.listeners=PLAINTEXT://$boot" \
    --override "log.dirs=$data" ${MODE_ARGS[@]+"${MODE_ARGS[@]}"} >"$RUN/broker-$label-$round.log" 2>&1 &
  BPID=$!
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  "$PERF" topic --bootstrap-server "$boot" --topic a1 --partitions 1 >/dev/null 2>&1
  "$PERF" topic --bootstrap-server "$boot" --topic all --partitions 1 >/dev/null 2>&1
  works=("produce acks=1 a1" "produce acks=all all")
  for i in $(seq 1 "$CONSUMES"); do works+=("consume - all"); done
  for i in $RATES; do
    "$PERF" topic --bootstrap-server "$boot" --topic "at$i" --partitions 1 >/dev/null 2>&1
    works+=("rate $i at$i")
  done
  for work in "${works[@]}"; do
    set -- $work
    c0="$(cpu_ticks "$BPID")"
    if [[ $1 == produce ]]; then
      "$PERF" producer --bootstrap-server "$boot" --topic "$3" --num-records 100000000 \
        --record-size 1024 --throughput -1 --max-seconds "$DUR" --producer-props "$2" --json \
        >"$RUN/$label-$round-$1-$2.txt" 2>&1 || true
      sync
    elif [[ $1 == rate ]]; then
      "$PERF" producer --bootstrap-server "$boot" --topic "$3" --num-records $(($2 * DUR)) \
        --record-size 1024 --throughput "$2" --max-seconds $((DUR * 2)) --producer-props acks=all linger.ms=0 \
        --json >"$RUN/$label-$round-$1-$2.txt" 2>&1 || true
      sync
    else
      local n; n="$(grep '^{' "$RUN/$label-$round-produce-acks=all.txt" | tail -1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["records"])')"
      "$PERF" consumer --bootstrap-server "$boot" --topic "$3" --messages "$n" --timeout 10000 \
        --max-seconds $((DUR * 3)) --json >"$RUN/$label-$round-$1-$2.txt" 2>&1 || true
    fi
    c1="$(cpu_ticks "$BPID")"
    python3 - "$label" "$round" "$1 $2" "$((c1 - c0))" "$CLK_TCK" "$RUN/$label-$round-$1-$2.txt" >>"$RESULTS" <<'PY'
import json, sys
label, rnd, work, ticks, tck, path = sys.argv[1:]
lines = [l for l in open(path) if l.startswith("{")]
r = json.loads(lines[-1]) if lines else {}
gib = r.get("records", 0) * 1024 / 2**30
print(json.dumps({"bin": label, "round": int(rnd), "work": work,
                  "records_per_sec": r.get("records_per_sec", 0), "mb_per_sec": r.get("mb_per_sec", 0),
                  "p99_ms": r.get("p99_ms"),
                  "cpu_s_per_gib": round(int(ticks) / int(tck) / gib, 3) if gib else None}))
PY
  done
  kill -TERM "$BPID"; wait "$BPID" 2>/dev/null || true; BPID=""
  rm -rf "$data"
}

for round in $(seq 1 "$ROUNDS"); do
  # alternate which binary goes first
  if (( round % 2 )); then run "$OLD" old "$round"; run "$NEW" new "$round"
  else run "$NEW" new "$round"; run "$OLD" old "$round"; fi
  echo "round $round of $ROUNDS done"
done

python3 - "$RESULTS" <<'PY' | tee "$RUN/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
works = []
for r in rows:
    if r["work"] not in works:
        works.append(r["work"])
print("| workload | metric | old (median) | new (median) | new/old | new runs |")
print("|---|---|---|---|---|---|")
for w in works:
    for m in ("mb_per_sec", "cpu_s_per_gib", "p99_ms"):
        if m == "p99_ms" and not w.startswith("rate"):
            continue
        val = {b: [r[m] for r in rows if r["bin"] == b and r["work"] == w and r.get(m)] for b in ("old", "new")}
        if not val["old"] or not val["new"]:
            continue
        o, n = statistics.median(val["old"]), statistics.median(val["new"])
        print(f"| {w} | {m} | {o:.3f} | {n:.3f} | {n / o:.2f} | {', '.join(f'{x:.2f}' for x in val['new'])} (old: {', '.join(f'{x:.2f}' for x in val['old'])}) |")
PY
echo "raw results: $RUN"
