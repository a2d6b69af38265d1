#!/usr/bin/env bash
# The cost of TLS: one kastle binary, plaintext next to TLS in one run,
# alternating round by round so that the shared machine's drift hits both
# alike (read the ratio, not the absolute figures):
#
#   bash scripts/bench_tls.sh [KASTLE_BINARY] [ROUNDS]   (default target/release/kastle, 3)
#
# Per round and mode, a fresh broker (durable, the default) with a PLAINTEXT
# and an SSL listener (TLS 1.3, a throw-away PEM certificate from openssl),
# and kastle-perf (librdkafka with OpenSSL: built here with `--features tls`
# into target/bench-tls) on 1 partition with 1 KiB records: produce acks=1
# for DUR seconds, then consume what was produced; records/s, MB/s and broker
# CPU s per GiB moved (utime+stime from /proc). The topic is created over the
# plaintext listener; the workloads use the listener of their mode. Prints
# one table with per-mode medians and the tls/plaintext ratio; raw outputs in
# bench-results/tls-<timestamp>/. Needs libssl-dev and openssl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(realpath "${1:-target/release/kastle}")"; ROUNDS="${2:-3}"
DUR="${DUR:-10}"
[[ -x "$BIN" ]] || { echo "no kastle binary at $BIN (cargo build --release)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "openssl is needed" >&2; exit 2; }

nice -n 5 cargo build --release --locked -p kastle-bench --features tls --target-dir target/bench-tls \
  >/dev/null 2>&1 || { echo "building kastle-perf with TLS failed (libssl-dev installed?)" >&2; exit 1; }
PERF="$ROOT/target/bench-tls/release/kastle-perf"
RUN="$ROOT/bench-results/tls-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
TMPBASE="$(mktemp -d "${TMPDIR:-/tmp}/kastle-tls.XXXXXX")"
RESULTS="$RUN/results.jsonl"; : >"$RESULTS"
CLK_TCK="$(getconf CLK_TCK)"
BPID=""
cleanup() {
  [[ -n "$BPID" ]] && kill -TERM "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
  rm -rf "$TMPBASE"
}
trap cleanup EXIT

# A CA and a server certificate for 127.0.0.1 (ECDSA P-256, as a modern
# deployment would use).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench-ca" \
  -keyout "$TMPBASE/ca.key" -out "$TMPBASE/ca.pem" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$TMPBASE/server.key" -out "$TMPBASE/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' >"$TMPBASE/san.ext"
openssl x509 -req -in "$TMPBASE/server.csr" -CA "$TMPBASE/ca.pem" -CAkey "$TMPBASE/ca.key" \
  -CAcreateserial -days 2 -extfile "$TMPBASE/san.ext" -out "$TMPBASE/server.pem" >/dev/null 2>&1
openssl pkcs8 -topk8 -nocrypt -in "$TMPBASE/server.key" -out "$TMPBASE/server.pk8" >/dev/null 2>&1
cat "$TMPBASE/server.pem" "$TMPBASE/server.pk8" >"$TMPBASE/keystore.pem"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "binary: $BIN ($(sha256sum "$BIN" | cut -c1-12)), commit $(git rev-parse --short HEAD)"
  echo "client: kastle-perf, librdkafka with $(openssl version)"
  echo "rounds: $ROUNDS, DUR=${DUR}s; nproc $(nproc); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RUN/env.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { local s; s="$(cat "/proc/$1/stat")"; s="${s##*) }"; set -- $s; echo $(( ${12} + ${13} )); }

TLS_PROPS=(security.protocol=ssl "ssl.ca.location=$TMPBASE/ca.pem")

# run MODE ROUND: one fresh broker, produce then consume over MODE's listener
run() {
  local mode=$1 round=$2 pport sport plain tls boot data c0 c1 props=() work
  pport="$(free_port)"; sport="$(free_port)"
  plain="127.0.0.1:$pport"; tls="127.0.0.1:$sport"; data="$(mktemp -d "$TMPBASE/d.XXXX")"
  "$BIN" --override "listeners=PLAINTEXT://$plain,SSL://$tls" \
    --override "advertised.listeners=PLAINTEXT://$plain,SSL://$tls" \
    --override "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL" \
    --override "ssl.keystore.type=PEM" --override "ssl.keystore.location=$TMPBASE/keystore.pem" \
    --override "log.dirs=$data" >"$RUN/broker-$mode-$round.log" 2>&1 &
  BPID=$!
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$sport") 2>/dev/null && break; sleep 0.1; done
  "$PERF" topic --bootstrap-server "$plain" --topic t --partitions 1 >/dev/null 2>&1
  boot=$plain
  if [[ $mode == tls ]]; then boot=$tls; props=("${TLS_PROPS[@]}"); fi
  for work in produce consume; do
    c0="$(cpu_ticks "$BPID")"
    if [[ $work == produce ]]; then
      "$PERF" producer --bootstrap-server "$boot" --topic t --num-records 100000000 \
        --record-size 1024 --throughput -1 --max-seconds "$DUR" --producer-props acks=1 "${props[@]}" \
        --json >"$RUN/$mode-$round-$work.txt" 2>&1 || true
      sync
    else
      local n; n="$(grep '^{' "$RUN/$mode-$round-produce.txt" | tail -1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["records"])')"
      "$PERF" consumer --bootstrap-server "$boot" --topic t --messages "$n" --timeout 10000 \
        --max-seconds $((DUR * 3)) ${props[@]:+--consumer-props "${props[@]}"} \
        --json >"$RUN/$mode-$round-$work.txt" 2>&1 || true
    fi
    c1="$(cpu_ticks "$BPID")"
    python3 - "$mode" "$round" "$work" "$((c1 - c0))" "$CLK_TCK" "$RUN/$mode-$round-$work.txt" >>"$RESULTS" <<'PY'
import json, sys
mode, rnd, work, ticks, tck, path = sys.argv[1:]
lines = [l for l in open(path) if l.startswith("{")]
r = json.loads(lines[-1]) if lines else {}
gib = r.get("records", 0) * 1024 / 2**30
print(json.dumps({"mode": mode, "round": int(rnd), "work": work,
                  "records_per_sec": r.get("records_per_sec", 0), "mb_per_sec": r.get("mb_per_sec", 0),
                  "cpu_s_per_gib": round(int(ticks) / int(tck) / gib, 3) if gib else None}))
PY
  done
  kill -TERM "$BPID"; wait "$BPID" 2>/dev/null || true; BPID=""
  rm -rf "$data"
}

for round in $(seq 1 "$ROUNDS"); do
  # alternate which mode goes first
  if (( round % 2 )); then run plaintext "$round"; run tls "$round"
  else run tls "$round"; run plaintext "$round"; fi
  echo "round $round of $ROUNDS done"
done

python3 - "$RESULTS" <<'PY' | tee "$RUN/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| workload | metric | plaintext (median) | TLS (median) | TLS/plaintext | TLS runs |")
print("|---|---|---|---|---|---|")
for w in ("produce", "consume"):
    for m in ("mb_per_sec", "cpu_s_per_gib"):
        val = {b: [r[m] for r in rows if r["mode"] == b and r["work"] == w and r[m]] for b in ("plaintext", "tls")}
        if not val["plaintext"] or not val["tls"]:
            print(f"| {w} | {m} | missing | missing | | |")
            continue
        p, t = statistics.median(val["plaintext"]), statistics.median(val["tls"])
        print(f"| {w} | {m} | {p:.3f} | {t:.3f} | {t / p:.2f} | {', '.join(f'{x:.2f}' for x in val['tls'])} |")
PY
echo "raw results: $RUN"
