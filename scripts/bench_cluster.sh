#!/usr/bin/env bash
# Replication's cost, next to Apache Kafka: three-node clusters on loopback,
# a replication factor 3 topic next to a replication factor 1 topic, on
# kastle and on Apache Kafka in the same run, alternating round by round so
# that the shared machine's drift hits all alike (read the ratios, not the
# absolute figures):
#
#   bash scripts/bench_cluster.sh [KASTLE_BINARY] [ROUNDS]   (default target/release/kastle, 3)
#   DUR=10 CLUSTERS="kastle kastle-pagecache kafka" bash scripts/bench_cluster.sh   (the defaults)
#
# Clusters (CLUSTERS, any subset; each one is three combined
# broker+controller nodes with a static controller quorum over loopback,
# min.insync.replicas=2, formatted with one cluster id):
#   kastle            kastle durable (the default): an acknowledged record is
#                     fsynced on every in-sync replica
#   kastle-pagecache  kastle with log.flush.interval.messages=2^63-1 (as
#                     scripts/bench.sh's page-cache mode): no fsync
#   kafka             Apache Kafka 4.x from the Maven jars of
#                     compat-tests/jvm/kafka4 (its target/classpath.txt, else
#                     `mvn -o dependency:build-classpath`), main class
#                     kafka.Kafka, storage formatted by kafka.tools.StorageTool,
#                     heap -Xmx1G -Xms1G and the G1 options of Kafka's own
#                     scripts per node; Kafka's default page-cache mode (no
#                     flush.messages): durability from replication, not fsync
#
# Per round, cluster and replication factor, a fresh topic with one
# partition (led wherever the controller places it; created by Kafka's
# TopicCommand with min.insync.replicas 2 for RF 3 and 1 for RF 1);
# kastle-perf (librdkafka) produces 1 KiB records with acks=all for DUR
# seconds (default 10) to it, then consumes them; then the topic is deleted
# (TopicCommand again) so that the disk does not fill. Clusters take turns going
# first (rotated each round) and RF 1 / RF 3 alternate which goes first. A
# warm-up (RF 3 topic, 3 s of produce and consume, not recorded) precedes
# round 1 on every cluster: JIT for the JVMs, __consumer_offsets for all.
# Broker CPU is utime+stime summed over the cluster's three processes; the
# client's is not counted. Consume rates are librdkafka's fetch rates, i.e.
# without the consumer-group join (group.initial.rebalance.delay.ms, 3 s on
# both). Raw outputs and summary.md in bench-results/cluster-<timestamp>/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(realpath "${1:-target/release/kastle}")"; ROUNDS="${2:-3}"
DUR="${DUR:-10}"
read -r -a CLUSTER_LIST <<<"${CLUSTERS:-kastle kastle-pagecache kafka}"
for c in "${CLUSTER_LIST[@]}"; do
  case "$c" in kastle|kastle-pagecache|kafka) ;;
    *) echo "unknown cluster $c (CLUSTERS: kastle, kastle-pagecache, kafka)" >&2; exit 2 ;;
  esac
done
[[ -x "$BIN" ]] || { echo "no kastle binary at $BIN (cargo build --release)" >&2; exit 2; }
nice -n 5 cargo build --release --locked -p kastle-bench >/dev/null 2>&1 ||
  { echo "building kastle-perf failed" >&2; exit 1; }
PERF="$ROOT/target/release/kastle-perf"
RUN="$ROOT/bench-results/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
TMPBASE="$(mktemp -d "${TMPDIR:-/tmp}/kastle-cluster.XXXXXX")"
RESULTS="$RUN/results.jsonl"; : >"$RESULTS"
CLK_TCK="$(getconf CLK_TCK)"
ALL_PIDS=()

alive() { # a live process (not a zombie)
  local s
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  s="${s##*) }"; [[ ${s%% *} != Z ]]
}
cleanup() {
  local p _
  for p in "${ALL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # Kafka's controlled shutdown can wait on a quorum that is going away too
  for _ in $(seq 1 300); do
    local any=0
    for p in "${ALL_PIDS[@]}"; do alive "$p" && any=1; done
    (( any )) || break
    sleep 0.1
  done
  for p in "${ALL_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${ALL_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMPBASE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "bench_cluster.sh: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { # utime+stime summed over the pids (fields 14, 15 of /proc/PID/stat)
  local total=0 s p
  for p in "$@"; do
    s="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
    s="${s##*) }"
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $s
    total=$(( total + ${12} + ${13} ))
  done
  echo "$total"
}
status_kib_sum() { # KEY PID...: a /proc/PID/status figure (kB) summed
  local key=$1 total=0 p v; shift
  for p in "$@"; do
    v="$(awk -v k="$key:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null)" || v=0
    total=$(( total + ${v:-0} ))
  done
  echo "$total"
}

# ---------------------------------------------------------------------------
# Apache Kafka: java, the jars' classpath (also for Kafka's TopicCommand,
# which creates and deletes each measured topic on every cluster)
# ---------------------------------------------------------------------------
# shellcheck source=scripts/lib/kafka_jvm.sh
source "$ROOT/scripts/lib/kafka_jvm.sh"
if ! kafka_jvm_init "$TMPBASE" "$RUN"; then
  echo "no Apache Kafka jars (Kafka's TopicCommand creates and deletes the topics on every" \
    "cluster): needs java and compat-tests/jvm/kafka4 resolved (bash scripts/test.sh --install-only)" >&2
  exit 2
fi
CP_FROM="$KAFKA_CP_FROM"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "binary: $BIN ($(sha256sum "$BIN" | cut -c1-12)), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (+uncommitted changes)')"
  echo "clusters: ${CLUSTER_LIST[*]} (three combined nodes each, min.insync.replicas=2)"
  echo "kafka: ${KAFKA_VERSION:-absent}${KAFKA_VERSION:+ (classpath from $CP_FROM; $("$JAVA" -version 2>&1 | head -1))}"
  echo "client: kastle-perf (librdkafka), acks=all, 1 KiB records, 1 partition"
  echo "rounds: $ROUNDS, DUR=${DUR}s; nproc $(nproc); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RUN/env.txt"

# ---------------------------------------------------------------------------
# clusters: three combined nodes (process.roles=broker,controller) each
# ---------------------------------------------------------------------------
declare -A CPIDS CBOOT CDIR
start_cluster() {
  local name=$1 i data extra=()
  local -A cport kport
  for i in 1 2 3; do kport[$i]="$(free_port)"; cport[$i]="$(free_port)"; done
  local voters="1@127.0.0.1:${cport[1]},2@127.0.0.1:${cport[2]},3@127.0.0.1:${cport[3]}"
  CBOOT[$name]="127.0.0.1:${kport[1]},127.0.0.1:${kport[2]},127.0.0.1:${kport[3]}"
  CDIR[$name]="$TMPBASE/$name"; CPIDS[$name]=""
  [[ $name == kastle-pagecache ]] && extra=(--override log.flush.interval.messages=9223372036854775807)
  local cluster_id
  cluster_id="$(kafka_cluster_id)"
  for i in 1 2 3; do
    data="${CDIR[$name]}/node$i"; mkdir -p "$data"
    if [[ $name == kafka ]]; then
      cat >"$data/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${kport[$i]},CONTROLLER://127.0.0.1:${cport[$i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${kport[$i]}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
min.insync.replicas=2
num.partitions=1
log.segment.delete.delay.ms=1000
log.dirs=$data/logs
EOF
      kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" \
        >"$RUN/$name-node$i-format.log" 2>&1 || { cat "$RUN/$name-node$i-format.log" >&2; die "kafka-storage format failed"; }
      (cd "$data" && exec "$JAVA" "${KAFKA_JVM[@]}" -Dkafka.logs.dir="$data" -cp "$KAFKA_CP" \
        kafka.Kafka "$data/server.properties") >"$RUN/$name-node$i.log" 2>&1 &
    else
      printf 'version=1\nnode.id=%s\ncluster.id=%s\n' "$i" "$cluster_id" >"$data/meta.properties"
      "$BIN" --override process.roles=broker,controller --override "node.id=$i" \
        --override "controller.quorum.voters=$voters" \
        --override "listeners=PLAINTEXT://127.0.0.1:${kport[$i]},CONTROLLER://127.0.0.1:${cport[$i]}" \
        --override "advertised.listeners=PLAINTEXT://127.0.0.1:${kport[$i]}" \
        --override "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" \
        --override controller.listener.names=CONTROLLER --override inter.broker.listener.name=PLAINTEXT \
        --override min.insync.replicas=2 \
        "${extra[@]}" --override "log.dirs=$data" >"$RUN/$name-node$i.log" 2>&1 &
    fi
    ALL_PIDS+=($!); CPIDS[$name]+="$! "
  done
}
check_cluster() { # every node still running
  local name=$1 p i=0
  for p in ${CPIDS[$name]}; do
    i=$((i + 1))
    alive "$p" || { tail -40 "$RUN/$name-node$i.log" >&2; die "$name node $i exited"; }
  done
}
wait_cluster() { # ports open; Kafka nodes also log "Kafka Server started" (180 s at most)
  local name=$1 i port t
  for i in 1 2 3; do
    port="$(cut -d, -f"$i" <<<"${CBOOT[$name]}")"; port="${port##*:}"
    for t in $(seq 1 1801); do
      (( t <= 1800 )) || { tail -40 "$RUN/$name-node$i.log" >&2; die "$name node $i not serving after 180 s"; }
      check_cluster "$name"
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
        { [[ $name != kafka ]] || grep -q 'Kafka Server started' "$RUN/$name-node$i.log"; }; then
        break
      fi
      sleep 0.1
    done
  done
}

for c in "${CLUSTER_LIST[@]}"; do start_cluster "$c"; done
T_START=$SECONDS
for c in "${CLUSTER_LIST[@]}"; do wait_cluster "$c"; done
echo "clusters up in $((SECONDS - T_START)) s: ${CLUSTER_LIST[*]}"

delete_topic() { # NAME TOPIC: delete, then wait until no replica directory is left
  local name=$1 topic=$2
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "${CBOOT[$name]}" \
    --delete --topic "$topic" >>"$RUN/topic-deletes.log" 2>&1 ||
    echo "warning: deleting $topic on $name failed (see topic-deletes.log)" >&2
  for _ in $(seq 1 120); do
    [[ -z "$(find "${CDIR[$name]}" -maxdepth 3 -name "$topic-*" -print -quit)" ]] && return 0
    sleep 0.5
  done
  echo "warning: $topic's files still on disk on $name after 60 s" >&2
}

# measure NAME RF ROUND TOPIC [RECORD]: a fresh topic, produce then consume,
# one results.jsonl line each (RECORD=0: warm-up, nothing recorded)
measure() {
  local name=$1 rf=$2 round=$3 topic=$4 record=${5:-1} c0 c1 work n rc out pids
  read -r -a pids <<<"${CPIDS[$name]}"
  check_cluster "$name"
  # min.insync.replicas as a topic config: 2 for RF 3 (the brokers' default
  # too), 1 for RF 1, where kastle's unreplicated partitions refuse acks=all
  # when it is above 1 (Kafka caps it at the replica count)
  for _ in $(seq 1 30); do
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "${CBOOT[$name]}" --create \
      --if-not-exists --topic "$topic" --partitions 1 --replication-factor "$rf" \
      --config "min.insync.replicas=$(( rf < 2 ? rf : 2 ))" >>"$RUN/topic-creates.log" 2>&1 && break
    sleep 1
  done
  sleep 1
  for work in produce consume; do
    out="$RUN/$name-rf$rf-$round-$work.txt"
    c0="$(cpu_ticks "${pids[@]}")"; rc=0
    if [[ $work == produce ]]; then
      # message.timeout.ms (300 s by default) only bounds a refused run
      "$PERF" producer --bootstrap-server "${CBOOT[$name]}" --topic "$topic" --num-records 100000000 \
        --record-size 1024 --throughput -1 --max-seconds "$DUR" --flush-timeout-ms 60000 \
        --producer-props acks=all message.timeout.ms=60000 --json >"$out" 2>&1 || rc=$?
    else
      n="$(grep '^{' "$RUN/$name-rf$rf-$round-produce.txt" | tail -1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["records"])' 2>/dev/null)" || n=0
      if (( n > 0 )); then
        "$PERF" consumer --bootstrap-server "${CBOOT[$name]}" --topic "$topic" --messages "$n" \
          --timeout 10000 --max-seconds $((DUR * 3 + 10)) --json >"$out" 2>&1 || rc=$?
      else
        echo "nothing produced: consume skipped" >"$out"; rc=1
      fi
    fi
    c1="$(cpu_ticks "${pids[@]}")"
    (( record )) || continue
    python3 - "$name" "$rf" "$round" "$work" "$((c1 - c0))" "$CLK_TCK" "$out" "$rc" >>"$RESULTS" <<'PY'
import json, sys
name, rf, rnd, work, ticks, tck, path, rc = sys.argv[1:]
lines = [l for l in open(path) if l.startswith("{")]
r = json.loads(lines[-1]) if lines else {}
gib = r.get("records", 0) * 1024 / 2**30
cpu_s = int(ticks) / int(tck)
row = {"cluster": name, "rf": int(rf), "round": int(rnd), "work": work, "exit": int(rc),
       "records": r.get("records", 0), "cpu_s": round(cpu_s, 2),
       "cpu_s_per_gib": round(cpu_s / gib, 3) if gib else None}
if work == "produce":
    row.update({k: r.get(k) for k in ("records_per_sec", "mb_per_sec", "avg_ms", "p50_ms",
                                      "p95_ms", "p99_ms", "p999_ms", "max_ms", "errors")})
else:  # librdkafka's fetch rates: without the group join
    row.update({"records_per_sec": r.get("fetch_records_per_sec"),
                "mb_per_sec": r.get("fetch_mb_per_sec"),
                "mb_per_sec_with_join": r.get("mb_per_sec"), "rebalance_ms": r.get("rebalance_ms")})
print(json.dumps(row))
PY
  done
  delete_topic "$name" "$topic"
}

for c in "${CLUSTER_LIST[@]}"; do
  DUR_SAVED=$DUR; DUR=3
  measure "$c" 3 0 warmup 0
  DUR=$DUR_SAVED
done
echo "warm-up done"

NC=${#CLUSTER_LIST[@]}
for round in $(seq 1 "$ROUNDS"); do
  for k in $(seq 0 $((NC - 1))); do
    c="${CLUSTER_LIST[$(( (round - 1 + k) % NC ))]}"
    if (( round % 2 )); then measure "$c" 1 "$round" "t-rf1-r$round"; measure "$c" 3 "$round" "t-rf3-r$round"
    else measure "$c" 3 "$round" "t-rf3-r$round"; measure "$c" 1 "$round" "t-rf1-r$round"; fi
  done
  echo "round $round of $ROUNDS done"
done

for c in "${CLUSTER_LIST[@]}"; do
  read -r -a pids <<<"${CPIDS[$c]}"
  echo "{\"cluster\": \"$c\", \"peak_rss_kib\": $(status_kib_sum VmHWM "${pids[@]}"), \"rss_kib\": $(status_kib_sum VmRSS "${pids[@]}")}"
done >"$RUN/rss.jsonl"
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RUN/env.txt"

python3 - "$RESULTS" "$RUN/rss.jsonl" "$KAFKA_VERSION" <<'PY' | tee "$RUN/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rss = {r["cluster"]: r for r in map(json.loads, open(sys.argv[2]))}
kv = sys.argv[3] or "?"
label = {"kastle": "kastle, durable (fsync; default)",
         "kastle-pagecache": "kastle, page cache",
         "kafka": f"Apache Kafka {kv}, page cache (default)"}
clusters = [c for c in ("kastle", "kastle-pagecache", "kafka") if any(r["cluster"] == c for r in rows)]

def med(cluster, rf, work, key):
    xs = [r[key] for r in rows if r["cluster"] == cluster and r["rf"] == rf and r["work"] == work
          and r.get(key) is not None and r["records"] > 0]
    return (statistics.median(xs), xs) if xs else (None, [])

def fmt(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"

def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}"

n_rounds = len({r["round"] for r in rows})
print(f"Medians over {n_rounds} round(s); ratios to Kafka RF 3 of this run (MB/s: > 1 faster; p99 and CPU: < 1 lower).\n")
print("Produce, acks=all, 1 KiB records, 1 partition:\n")
print("| cluster | RF | MB/s | records/s | p50 ms | p99 ms | p99.9 ms | broker CPU s/GiB "
      "| MB/s ÷ Kafka RF3 | p99 ÷ Kafka RF3 | CPU/GiB ÷ Kafka RF3 | MB/s runs | exits |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
ref = {k: med("kafka", 3, "produce", k)[0] for k in ("mb_per_sec", "p99_ms", "cpu_s_per_gib")}
for c in clusters:
    for rf in (1, 3):
        m = {k: med(c, rf, "produce", k) for k in
             ("mb_per_sec", "records_per_sec", "p50_ms", "p99_ms", "p999_ms", "cpu_s_per_gib")}
        exits = [r["exit"] for r in rows if r["cluster"] == c and r["rf"] == rf and r["work"] == "produce"]
        print(f"| {label[c]} | {rf} | {fmt(m['mb_per_sec'][0])} | {fmt(m['records_per_sec'][0], 0)} "
              f"| {fmt(m['p50_ms'][0])} | {fmt(m['p99_ms'][0])} | {fmt(m['p999_ms'][0])} "
              f"| {fmt(m['cpu_s_per_gib'][0], 2)} | {ratio(m['mb_per_sec'][0], ref['mb_per_sec'])} "
              f"| {ratio(m['p99_ms'][0], ref['p99_ms'])} | {ratio(m['cpu_s_per_gib'][0], ref['cpu_s_per_gib'])} "
              f"| {', '.join(f'{x:.0f}' for x in m['mb_per_sec'][1])} | {','.join(map(str, exits))} |")
print("\nConsume (from the start; fetch rate, without the group join):\n")
print("| cluster | RF | MB/s | records/s | broker CPU s/GiB | MB/s ÷ Kafka RF3 | CPU/GiB ÷ Kafka RF3 | MB/s runs | exits |")
print("|---|---|---|---|---|---|---|---|---|")
ref = {k: med("kafka", 3, "consume", k)[0] for k in ("mb_per_sec", "cpu_s_per_gib")}
for c in clusters:
    for rf in (1, 3):
        m = {k: med(c, rf, "consume", k) for k in ("mb_per_sec", "records_per_sec", "cpu_s_per_gib")}
        exits = [r["exit"] for r in rows if r["cluster"] == c and r["rf"] == rf and r["work"] == "consume"]
        print(f"| {label[c]} | {rf} | {fmt(m['mb_per_sec'][0])} | {fmt(m['records_per_sec'][0], 0)} "
              f"| {fmt(m['cpu_s_per_gib'][0], 2)} | {ratio(m['mb_per_sec'][0], ref['mb_per_sec'])} "
              f"| {ratio(m['cpu_s_per_gib'][0], ref['cpu_s_per_gib'])} "
              f"| {', '.join(f'{x:.0f}' for x in m['mb_per_sec'][1])} | {','.join(map(str, exits))} |")
print("\nReplication's cost inside each cluster (RF 3 ÷ RF 1, medians):\n")
print("| cluster | produce MB/s | produce p99 | produce CPU/GiB | consume MB/s | peak RSS, 3 nodes |")
print("|---|---|---|---|---|---|")
for c in clusters:
    def r31(work, key):
        return ratio(med(c, 3, work, key)[0], med(c, 1, work, key)[0])
    peak = rss.get(c, {}).get("peak_rss_kib")
    print(f"| {label[c]} | {r31('produce', 'mb_per_sec')} | {r31('produce', 'p99_ms')} "
          f"| {r31('produce', 'cpu_s_per_gib')} | {r31('consume', 'mb_per_sec')} "
          f"| {'-' if peak is None else f'{peak / 1024:,.0f} MiB'} |")
PY
