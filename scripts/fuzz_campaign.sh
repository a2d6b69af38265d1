#!/usr/bin/env bash
# The fuzzing campaign (docs/fuzzing.md): builds the cargo-fuzz targets in
# fuzz/ and runs each for SECS seconds (default 600) at low priority, JOBS
# targets at a time (default 2), from the committed corpus plus what earlier
# campaigns found (fuzz/campaign/<target>/, not committed). Prints one
# results row per target: inputs run, executions/s, crashes (saved inputs
# land in fuzz/campaign/artifacts/). The test command replays the corpus
# only (tests/it/fuzz_corpus.rs); `scripts/fuzz_campaign.sh 15 4` is a short run.
#
# Usage: scripts/fuzz_campaign.sh [SECS] [JOBS] [TARGET...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FZ="$ROOT/fuzz"
SECS="${1:-600}"
JOBS="${2:-2}"
shift $(( $# > 2 ? 2 : $# ))
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(request_frame record_batch coordinator_log storage_file)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
(cd "$FZ" && nice -n 15 cargo fuzz build -s none -O)

OUT="$FZ/campaign"
mkdir -p "$OUT/artifacts"
run() {
  local t="$1"
  mkdir -p "$OUT/$t"
  nice -n 15 "$FZ/target/x86_64-unknown-linux-gnu/release/$t" \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t-" "$OUT/$t" "$FZ/corpus/$t" >"$OUT/$t.log" 2>&1 || true
}
running=0
for t in "${TARGETS[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [[ $running -ge $JOBS ]]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

printf '| target | seconds | inputs run | exec/s | crashes |\n|---|---|---|---|---|\n'
for t in "${TARGETS[@]}"; do
  runs="$(awk '/^stat::number_of_executed_units:/ { n = $2 } END { print n }' "$OUT/$t.log")"
  speed="$(awk '/^stat::average_exec_per_sec:/ { n = $2 } END { print n }' "$OUT/$t.log")"
  crashes="$(find "$OUT/artifacts" -name "$t-*" | wc -l)"
  printf '| %s | %s | %s | %s | %s |\n' "$t" "$SECS" "${runs:-?}" "${speed:-?}" "$crashes"
done
