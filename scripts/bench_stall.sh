#!/usr/bin/env bash
# Where a produce stall comes from (issue 18): kastle in page-cache mode
# (release build) takes acks=all, linger.ms=0 produce at RATE records/s
# (1 KiB) for DUR seconds from kastle-perf with --stall-ms, while
# `perf sched record` traces every context switch on the machine with
# CLOCK_MONOTONIC timestamps and `vmstat 1` watches steal time and the
# dirty-page writeback. Each stall the client saw (a run of deliveries
# slower than STALL_MS) is then lined up with the trace: for its window,
# the longest off-CPU waits and run-queue delays of the broker's and the
# client's threads (`perf sched timehist`), so the stall is named by who was
# not running and why (blocked: which kernel path; runnable: who had the CPU).
#
#   RATE=100000 DUR=30 STALL_MS=100 bash scripts/bench_stall.sh   (BUILD=0: no rebuild;
#   TRACE=0: no perf, the latencies only; BROKER=kafka: Apache Kafka instead)
#
# Needs root (perf sched record -a) and a quiet machine: not part of the
# test command. Output: $OUT (default /tmp/kastle-stall-<time>/), its
# report.txt summarises each stall.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATE="${RATE:-100000}"
DUR="${DUR:-30}"
STALL_MS="${STALL_MS:-100}"
OUT="${OUT:-/tmp/kastle-stall-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
log() { echo "[bench_stall] $*" >&2; }
command -v perf >/dev/null || { log "perf is not installed"; exit 2; }

# BUILD=0: use target/release as it is (say so in what you report)
if [[ "${BUILD:-1}" != 0 ]]; then
  log "cargo build --release --locked -p kastle -p kastle-bench"
  (cd "$ROOT" && nice -n 5 cargo build --release --locked -p kastle -p kastle-bench) \
    >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; exit 1; }
fi
KASTLE="$ROOT/target/release/kastle"
PERF="$ROOT/target/release/kastle-perf"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BOOT="127.0.0.1:$PORT"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/kastle-stall.XXXX")"
cleanup() {
  [[ -n "${VPID:-}" ]] && kill "$VPID" 2>/dev/null || true
  [[ -n "${BPID:-}" ]] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
if [[ "${BROKER:-kastle}" == kafka ]]; then
  # Apache Kafka in page-cache mode (its default), the same client and rate:
  # is a stall kastle's or the machine's?
  source "$ROOT/scripts/lib/kafka_jvm.sh"
  kafka_jvm_init "$DATA" "$OUT" || { log "Kafka's jars are missing (scripts/test.sh --install-only)"; exit 2; }
  CPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  cat >"$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$BOOT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://$BOOT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
log.dirs=$DATA/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
PROPS
  kafka_tool kafka.tools.StorageTool format --standalone -t "$(kafka_cluster_id)" \
    -c "$DATA/server.properties" >"$OUT/format.log" 2>&1 || { cat "$OUT/format.log" >&2; exit 1; }
  (cd "$DATA" && exec "$JAVA" "${KAFKA_JVM[@]}" -Dkafka.logs.dir="$DATA" -cp "$KAFKA_CP" \
    kafka.Kafka "$DATA/server.properties") >"$OUT/broker.log" 2>&1 &
  BPID=$!
  for _ in $(seq 1 600); do grep -q 'Kafka Server started' "$OUT/broker.log" && break; sleep 0.1; done
else
  "$KASTLE" --override "listeners=PLAINTEXT://$BOOT" --override "advertised.listeners=PLAINTEXT://$BOOT" \
    --override "log.dirs=$DATA/logs" --override log.flush.interval.messages=9223372036854775807 \
    >"$OUT/broker.log" 2>&1 &
  BPID=$!
fi
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
"$PERF" topic --bootstrap-server "$BOOT" --topic stall --partitions 1 >/dev/null
sync

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; rate $RATE/s for ${DUR}s" \
  >"$OUT/machine.txt"
vmstat -t 1 >"$OUT/vmstat.txt" &
VPID=$!
# TRACE=0: no perf at all (the tracer's own cost, hundreds of MB of
# trace written while it runs, is then out of the picture)
if [[ "${TRACE:-1}" != 0 ]]; then
# -k CLOCK_MONOTONIC: the clock kastle-perf's stall lines use
perf sched record -k CLOCK_MONOTONIC -g -o "$OUT/sched.data" -- sleep $((DUR + 4)) \
  >"$OUT/perf-record.log" 2>&1 &
RPID=$!
# on-CPU samples of the broker: what it was doing when it ran
perf record -k CLOCK_MONOTONIC -F 499 -g -p "$BPID" -o "$OUT/oncpu.data" -- sleep $((DUR + 4)) \
  >"$OUT/perf-oncpu.log" 2>&1 &
OPID=$!
fi
sleep 1
"$PERF" producer --bootstrap-server "$BOOT" --topic stall --num-records $((RATE * DUR)) \
  --record-size 1024 --throughput "$RATE" --max-seconds $((DUR + 2)) \
  --producer-props acks=all linger.ms=0 --stall-ms "$STALL_MS" --json \
  >"$OUT/producer.out" 2>"$OUT/producer.err" &
CPID=$!
wait "$CPID" || true
kill "$VPID" 2>/dev/null || true
VPID=""
if [[ "${TRACE:-1}" == 0 ]]; then
  tail -n 3 "$OUT/producer.out" >&2
  echo "$(grep -c "^stall" "$OUT/producer.err") stall(s)" >&2
  log "output in $OUT (TRACE=0: no trace)"
  exit 0
fi
wait "$RPID" || true
wait "$OPID" || true

log "perf sched timehist"
perf sched timehist -i "$OUT/sched.data" --state -g >"$OUT/timehist.txt" 2>"$OUT/timehist.err" || true
perf script -i "$OUT/oncpu.data" -F tid,time,ip,sym >"$OUT/oncpu.txt" 2>"$OUT/oncpu.err" || true
python3 "$ROOT/scripts/lib/stall_report.py" "$OUT" "$BPID" "$CPID" >"$OUT/report.txt"
tail -n 3 "$OUT/producer.out" >&2
cat "$OUT/report.txt" >&2
log "output in $OUT"
