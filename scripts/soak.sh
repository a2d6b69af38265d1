#!/usr/bin/env bash
# Soak run (issue 19; long, so not part of scripts/test.sh, which runs the
# 50-second version compat-tests/test_soak.py): kastle under mixed load for
# MINUTES (idempotent and transactional producers, a read_committed reader, a
# consumer group whose members come and go, a retention topic and a compacted
# one), killed with SIGKILL about every KILL_EVERY seconds and restarted; then
# the history checker of compat-tests/soak.py and the RSS / fd / thread /
# latency flatness check. See docs/soak.md.
#
#   bash scripts/soak.sh [MINUTES] [--cluster] [more compat-tests/soak.py options]
#   KILL_EVERY=180 SOAK_DIR=/tmp/kastle-soak bash scripts/soak.sh 60
#
# --cluster: three combined kastle nodes on loopback (replication factor 3,
# min.insync.replicas 2), a random node killed each time. Writes report.md,
# history.json (re-check: soak.py --check history.json) and samples.json
# under SOAK_DIR/<date>; exits non-zero on any anomaly or a flatness failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MINUTES=20
if [[ $# -gt 0 && "$1" != -* ]]; then MINUTES="$1"; shift; fi
cargo build --release --quiet --bin kastle
PY="${PYTHON:-compat-tests/.venv/bin/python}"
OUT="${SOAK_DIR:-/tmp/kastle-soak}/$(date -u +%Y%m%dT%H%M%SZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM; $(uname -r); commit $(git rev-parse --short HEAD)"
echo "start: $(date -u) $(uptime)"
rc=0
"$PY" compat-tests/soak.py --minutes "$MINUTES" --kill-every "${KILL_EVERY:-180}" --out "$OUT" "$@" || rc=$?
echo "end: $(date -u) $(uptime); report: $OUT/report.md"
exit $rc
