#!/usr/bin/env bash
# Replication's cost: one kastle cluster of three combined nodes on
# loopback, a replication factor 3 topic next to a replication factor 1
# topic, in one run, alternating round by round so that the shared
# machine's drift hits both alike (read the ratio, not the absolute figures):
#
#   bash scripts/bench_cluster.sh [KASTLE_BINARY] [ROUNDS]   (default target/release/kastle, 3)
#
# Per round and replication factor, a fresh topic with one partition (led
# wherever the controller places it); kastle-perf (librdkafka)
# produces 1 KiB records with acks=all for DUR seconds (default 10) to it,
# then consumes them. Durable mode (the default): an acknowledged record is
# fsynced on every in-sync replica (RF 3: min.insync.replicas=2). Broker CPU
# is the sum over the three processes. Raw outputs in
# bench-results/cluster-<timestamp>/. Apache Kafka with RF 3 beside it is not
# here yet (issue 17/18).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(realpath "${1:-target/release/kastle}")"; ROUNDS="${2:-3}"
DUR="${DUR:-10}"
[[ -x "$BIN" ]] || { echo "no kastle binary at $BIN (cargo build --release)" >&2; exit 2; }
nice -n 5 cargo build --release --locked -p kastle-bench >/dev/null 2>&1 ||
  { echo "building kastle-perf failed" >&2; exit 1; }
PERF="$ROOT/target/release/kastle-perf"
RUN="$ROOT/bench-results/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
TMPBASE="$(mktemp -d "${TMPDIR:-/tmp}/kastle-cluster.XXXXXX")"
RESULTS="$RUN/results.jsonl"; : >"$RESULTS"
CLK_TCK="$(getconf CLK_TCK)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMPBASE"
}
trap cleanup EXIT

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "binary: $BIN ($(sha256sum "$BIN" | cut -c1-12)), commit $(git rev-parse --short HEAD)"
  echo "client: kastle-perf (librdkafka), acks=all, 1 KiB records, 1 partition"
  echo "rounds: $ROUNDS, DUR=${DUR}s; nproc $(nproc); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RUN/env.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() {
  local total=0 s p
  for p in "$@"; do s="$(cat "/proc/$p/stat")"; s="${s##*) }"; set -- $s; total=$(( total + ${12} + ${13} )); done
  echo "$total"
}

# Three combined nodes (process.roles=broker,controller), formatted with one
# cluster id as `kafka-storage format` would.
declare -A CPORT KPORT
for i in 1 2 3; do KPORT[$i]="$(free_port)"; CPORT[$i]="$(free_port)"; done
VOTERS="1@127.0.0.1:${CPORT[1]},2@127.0.0.1:${CPORT[2]},3@127.0.0.1:${CPORT[3]}"
BOOT="127.0.0.1:${KPORT[1]},127.0.0.1:${KPORT[2]},127.0.0.1:${KPORT[3]}"
for i in 1 2 3; do
  data="$TMPBASE/node$i"; mkdir -p "$data"
  printf 'version=1\nnode.id=%s\ncluster.id=benchC1usterId00000000A\n' "$i" >"$data/meta.properties"
  "$BIN" --override process.roles=broker,controller --override "node.id=$i" \
    --override "controller.quorum.voters=$VOTERS" \
    --override "listeners=PLAINTEXT://127.0.0.1:${KPORT[$i]},CONTROLLER://127.0.0.1:${CPORT[$i]}" \
    --override "advertised.listeners=PLAINTEXT://127.0.0.1:${KPORT[$i]}" \
    --override "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" \
    --override controller.listener.names=CONTROLLER --override inter.broker.listener.name=PLAINTEXT \
    --override min.insync.replicas=2 --override "log.dirs=$data" >"$RUN/node$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/${KPORT[$i]}") 2>/dev/null && break; sleep 0.1; done
done

# run RF ROUND: a fresh topic, produce then consume
run() {
  local rf=$1 round=$2 topic="t-rf$1-r$2" c0 c1 work n
  for _ in $(seq 1 60); do
    "$PERF" topic --bootstrap-server "$BOOT" --topic "$topic" --partitions 1 \
      --replication-factor "$rf" >/dev/null 2>&1 && break
    sleep 1
  done
  sleep 1
  for work in produce consume; do
    c0="$(cpu_ticks "${PIDS[@]}")"
    if [[ $work == produce ]]; then
      "$PERF" producer --bootstrap-server "$BOOT" --topic "$topic" --num-records 100000000 \
        --record-size 1024 --throughput -1 --max-seconds "$DUR" --producer-props acks=all \
        --json >"$RUN/rf$rf-$round-$work.txt" 2>&1 || true
    else
      n="$(grep '^{' "$RUN/rf$rf-$round-produce.txt" | tail -1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["records"])')"
      "$PERF" consumer --bootstrap-server "$BOOT" --topic "$topic" --messages "$n" --timeout 10000 \
        --max-seconds $((DUR * 3)) --json >"$RUN/rf$rf-$round-$work.txt" 2>&1 || true
    fi
    c1="$(cpu_ticks "${PIDS[@]}")"
    python3 - "$rf" "$round" "$work" "$((c1 - c0))" "$CLK_TCK" "$RUN/rf$rf-$round-$work.txt" >>"$RESULTS" <<'PY'
import json, sys
rf, rnd, work, ticks, tck, path = sys.argv[1:]
lines = [l for l in open(path) if l.startswith("{")]
r = json.loads(lines[-1]) if lines else {}
gib = r.get("records", 0) * 1024 / 2**30
print(json.dumps({"rf": int(rf), "round": int(rnd), "work": work,
                  "records_per_sec": r.get("records_per_sec", 0), "mb_per_sec": r.get("mb_per_sec", 0),
                  "p99_ms": r.get("p99_ms"),
                  "cpu_s_per_gib": round(int(ticks) / int(tck) / gib, 3) if gib else None}))
PY
  done
}

for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then run 1 "$round"; run 3 "$round"
  else run 3 "$round"; run 1 "$round"; fi
  echo "round $round of $ROUNDS done"
done

python3 - "$RESULTS" <<'PY' | tee "$RUN/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| workload | metric | RF 1 (median) | RF 3 (median) | RF3/RF1 | RF 3 runs |")
print("|---|---|---|---|---|---|")
for work in ("produce", "consume"):
    for metric, key in (("MB/s", "mb_per_sec"), ("p99 ms", "p99_ms"), ("cluster CPU s/GiB", "cpu_s_per_gib")):
        one = [r[key] for r in rows if r["work"] == work and r["rf"] == 1 and r.get(key) is not None]
        three = [r[key] for r in rows if r["work"] == work and r["rf"] == 3 and r.get(key) is not None]
        if not one or not three:
            continue
        a, b = statistics.median(one), statistics.median(three)
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"| {work} | {metric} | {a:.1f} | {b:.1f} | {ratio} | {', '.join(f'{x:.1f}' for x in three)} |")
PY
