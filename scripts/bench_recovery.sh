#!/usr/bin/env bash
# Recovery benchmark (issue 18; a benchmark, not part of scripts/test.sh):
# fill a fresh broker with GB GiB of 1 KiB records over TOPICS x PARTS
# partitions, kill -9 it while producing, and time the restart from exec to
# serving (Metadata lists every partition and the last offset of each can be
# fetched); check every acknowledged offset survived and (VERIFY=1) that every
# partition reads back contiguous and intact; then a clean (SIGTERM) restart
# for reference. Deletes its data directories as it goes.
#
#   GB=10 MODES="durable pagecache" SEGMENT_MIB="1024 64" TOPICS=8 PARTS=4 \
#   CHECKPOINT_MS=(log.flush.offset.checkpoint.interval.ms; default Kafka's 60000) \
#   VERIFY=1 BENCH_DIR=/tmp/kastle-bench-recovery bash scripts/bench_recovery.sh
#
# Needs about GB GiB free under BENCH_DIR (one run's data at a time). Builds
# kastle and kastle-perf (bench/) in release first; the driver is
# scripts/lib/recovery_bench.py on compat-tests/.venv (confluent_kafka).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet --bin kastle
cargo build --release --quiet -p kastle-bench
PY="${PYTHON:-compat-tests/.venv/bin/python}"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM; $(uname -r); commit $(git rev-parse --short HEAD)"
echo "start: $(uptime)"
rc=0
"$PY" scripts/lib/recovery_bench.py || rc=$?
echo "end: $(uptime)"
exit $rc
