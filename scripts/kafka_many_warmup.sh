#!/usr/bin/env bash
# kafka_many_warmup.sh ROUNDS N: how Apache Kafka 4.4 (page-cache mode, one
# KRaft node from the Maven jars) warms up on a fresh 1,000-partition topic.
# Once every partition's log exists, Kafka's producer perf tool (acks=all,
# 1 KiB records) sends N records ROUNDS times in a row; each round prints its
# rate, p99 and the broker's user and kernel CPU in hundredths of a second
# (BENCHMARKS.md, "The 1,000-partition warm-up"). EXTRA_PROPS adds broker
# properties. Needs target/release/kastle-perf and compat-tests/.venv (the
# test command and bench.sh provide both).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 ROUNDS N" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/kafka_jvm.sh
T=$(mktemp -d /tmp/kmany.XXXX)
kafka_jvm_init "$T" "$T"; export JAVA KAFKA_CP; export KAFKA_PERF_JVM_OPTS="${KAFKA_PERF_JVM[*]}"
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(fp); C=$(fp); cid=$(kafka_cluster_id)
cat >$T/server.properties <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$P,CONTROLLER://127.0.0.1:$C
advertised.listeners=PLAINTEXT://127.0.0.1:$P
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$C
log.dirs=$T/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
${EXTRA_PROPS:-}
PROPS
trap 'rm -rf $T' EXIT
kafka_tool kafka.tools.StorageTool format --standalone -t "$cid" -c $T/server.properties >/dev/null
(cd $T && exec "$JAVA" "${KAFKA_JVM[@]}" -Dkafka.logs.dir=$T -cp "$KAFKA_CP" kafka.Kafka $T/server.properties) >$T/broker.log 2>&1 &
B=$!
trap 'kill $B 2>/dev/null; wait $B 2>/dev/null; rm -rf $T' EXIT
for _ in $(seq 1 600); do grep -qs 'Kafka Server started' $T/broker.log && break; sleep 0.2; done
grep -qs 'Kafka Server started' $T/broker.log || { tail -20 $T/broker.log >&2; echo "Kafka did not start" >&2; exit 1; }
target/release/kastle-perf topic --bootstrap-server 127.0.0.1:$P --topic many --partitions 1000
# wait until the broker has created every log
for _ in $(seq 1 600); do [[ $(grep -c 'Created log for partition many-' $T/broker.log) -ge 1000 ]] && break; sleep 0.5; done
echo "logs created"
ticks() { local s; s="$(cat /proc/$B/stat)"; s="${s##*) }"; set -- $s; echo "${12} ${13}"; }
for i in $(seq 1 "$1"); do
  read -r u0 s0 <<<"$(ticks)"
  out=$(compat-tests/.venv/bin/python scripts/lib/kafka_perf.py produce 127.0.0.1:$P many 1024 "$2" -1 acks=all 2>/dev/null)
  read -r u1 s1 <<<"$(ticks)"
  echo "round $i: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["records_per_sec"], "records/s, p99", d["p99_ms"], "ms")' "$out"), Kafka CPU user $((u1 - u0)) sys $((s1 - s0)) (1/100 s)"
done
du -sh $T/logs
