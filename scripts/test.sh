#!/usr/bin/env bash
# kastle's test command (CI runs it as `bash .ci/run`).
#
#   1. installs what the tests need (kcat, compat-tests/.venv, kafkajs, Go + sarama, the
#      compat-tests/gomod Go modules: franz-go, IBM/sarama) -- idempotent,
#      skipped when already satisfied (stamp files keyed on the lock files' hashes)
#   2. lint gates: cargo fmt --check, cargo clippy --all-targets -D warnings
#   3. cargo build --locked --profile checked --workspace --all-targets (kastle,
#      tools/lazyfs for the power-loss test, bench/ for steps 6-7, every test)
#   4. cargo test --locked --profile checked --workspace (replays every fuzz corpus
#      input, tests/it/fuzz_corpus.rs)
#   5. compat-tests (pytest) against target/checked/kastle
#   Everything is compiled once, in the `checked` profile (Cargo.toml: release
#   optimisations with debug assertions and overflow checks on, no LTO); the
#   release profile (thin LTO) is what `cargo build --release` and
#   scripts/bench.sh build. A second compiled profile cost CI minutes.
#   6. bench smoke: kastle-perf (bench/) produces and consumes 20k records
#   7. perf check: scripts/perf_check.sh (durable produce ratios vs recorded)
#
# Quiet: prints one progress line per step, and a command's output only if it fails.
#
# Usage: scripts/test.sh [--install-only] [--no-cargo-test] [-- PYTEST_ARGS...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CT="$ROOT/compat-tests"
VENV="$CT/.venv"
NODE_DIR="$CT/node"

INSTALL_ONLY=0
CARGO_TEST=1
PYTEST_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --install-only) INSTALL_ONLY=1 ;;
    --no-cargo-test) CARGO_TEST=0 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    *) echo "usage: $0 [--install-only] [--no-cargo-test] [-- PYTEST_ARGS...]" >&2; exit 2 ;;
  esac
  shift
done

T0=$SECONDS
log() { printf '[test.sh %4ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# Run a command with its output captured; print it only if the command fails.
quiet() {
  local out rc=0
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    cat "$out" >&2
    rm -f "$out"
    log "FAILED (exit $rc): $*" >&2
    return $rc
  fi
  rm -f "$out"
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 && SUDO=(sudo -n)
fi
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available; install manually: $*"
  if [[ $APT_UPDATED -eq 0 ]]; then
    quiet "${SUDO[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  quiet "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------------------
# 1. install
# ---------------------------------------------------------------------------
install_kcat() {
  command -v kcat >/dev/null 2>&1 && return 0
  log "installing kcat (apt)"
  apt_install kcat
}

# The TLS compat tests make their certificates with the openssl CLI.
install_openssl() {
  command -v openssl >/dev/null 2>&1 && return 0
  log "installing openssl (apt)"
  apt_install openssl
}

# The network-partition tests (test_cluster_partition.py) put each node in its
# own network namespace with `ip` (iproute2); they need root, so only then.
install_iproute2() {
  [[ $(id -u) -eq 0 ]] || return 0
  command -v ip >/dev/null 2>&1 && return 0
  log "installing iproute2 (apt)"
  apt_install iproute2
}

# The web console's browser test (test_console.py) drives Debian's headless
# Chromium through its chromedriver (Selenium from requirements.txt).
install_chromium() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  log "installing chromium + chromium-driver (apt)"
  apt_install chromium chromium-driver
}

install_python() {
  local py stamp want
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || { log "installing python3 (apt)"; apt_install python3 python3-venv; py=python3; }
  want="$(hash_of "$CT/requirements.txt") $("$py" -c 'import sys; print(sys.version)' | head -1)"
  stamp="$VENV/.kastle-stamp"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  log "installing python deps into compat-tests/.venv"
  rm -rf "$VENV"
  if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 ships without ensurepip unless python3-venv is installed
    rm -rf "$VENV"
    apt_install python3-venv
    quiet "$py" -m venv "$VENV"
  fi
  quiet "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
    -r "$CT/requirements.txt"
  quiet "$VENV/bin/python" -c 'import pytest, pytest_timeout, kafka, confluent_kafka, aiokafka, selenium'
  printf '%s' "$want" >"$stamp"
}

install_node() {
  local stamp want
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs + npm (apt)"
    apt_install nodejs npm
  fi
  want="$(hash_of "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json") $(node --version)"
  stamp="$NODE_DIR/node_modules/.kastle-stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  log "installing kafkajs (npm ci) into compat-tests/node/node_modules"
  (cd "$NODE_DIR" && quiet npm ci --no-audit --no-fund --loglevel=error)
  (cd "$NODE_DIR" && quiet node -e 'require("kafkajs")')
  printf '%s' "$want" >"$stamp"
}

# sarama (Go client) for compat-tests/test_sarama.py: Debian's packages, built by the
# tests offline in GOPATH mode (GO111MODULE=off GOPATH=/usr/share/gocode)
install_go_sarama() {
  if command -v go >/dev/null 2>&1 \
    && dpkg -s golang-go golang-github-shopify-sarama-dev >/dev/null 2>&1; then
    return 0
  fi
  log "installing golang-go + golang-github-shopify-sarama-dev (apt)"
  apt_install golang-go golang-github-shopify-sarama-dev
}

# JVM drivers (compat-tests/jvm/<module>/pom.xml, standalone Maven projects): built
# once and stamped with the hash of pom + sources + the JDK; later runs skip Maven
# entirely. Dependencies land in ~/.m2 (Maven Central).
install_jvm() {
  local pom mod name want stamp
  compgen -G "$CT/jvm/*/pom.xml" >/dev/null || return 0
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jdk-headless
  command -v mvn >/dev/null 2>&1 || apt_install maven
  for pom in "$CT"/jvm/*/pom.xml; do
    mod="$(dirname "$pom")"
    name="$(basename "$mod")"
    want="$(cd "$mod" && find pom.xml src -type f 2>/dev/null | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1) $(java -version 2>&1 | head -1)"
    stamp="$mod/target/.kastle-stamp"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$mod/target/classpath.txt" ]]; then
      continue
    fi
    log "building JVM driver compat-tests/jvm/$name (Maven)"
    # offline first (everything cached), online only when something is missing
    if ! quiet mvn -B -q -o -f "$pom" package dependency:build-classpath \
        -DskipTests -Dmdep.outputFile=target/classpath.txt 2>/dev/null; then
      quiet mvn -B -q -f "$pom" package dependency:build-classpath \
        -DskipTests -Dmdep.outputFile=target/classpath.txt
    fi
    printf '%s' "$want" >"$stamp"
  done
}

# Go drivers on Go modules (compat-tests/gomod: franz-go, a current sarama),
# fetched through the module proxy once into the module cache, built by the tests.
# go.mod needs a newer Go than Debian's golang-go: when PATH finds an older one
# first, put the machine's /usr/local/go ahead of it (also for the tests' builds).
go_new_enough() {
  local need have
  need="$(sed -n 's/^go //p' "$CT/gomod/go.mod")"
  have="$("$1" env GOVERSION 2>/dev/null | sed 's/^go//')"
  [[ -n "$have" && "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" == "$need" ]]
}
install_go_modules() {
  [[ -f "$CT/gomod/go.mod" ]] || return 0
  if ! go_new_enough go; then
    go_new_enough /usr/local/go/bin/go \
      || die "compat-tests/gomod needs Go $(sed -n 's/^go //p' "$CT/gomod/go.mod") or newer (found $(go version))"
    export PATH="/usr/local/go/bin:$PATH"
  fi
  local stamp want
  want="$(hash_of "$CT/gomod/go.mod" "$CT/gomod/go.sum") $(go version)"
  stamp="$CT/gomod/.kastle-stamp"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
  log "downloading Go modules for compat-tests/gomod"
  (cd "$CT/gomod" && quiet go mod download)
  printf '%s' "$want" >"$stamp"
}

install_kcat
install_openssl
install_iproute2
install_chromium
install_python
install_node
install_go_sarama
install_jvm
install_go_modules
log "test dependencies ready"
[[ $INSTALL_ONLY -eq 1 ]] && exit 0

command -v cargo >/dev/null 2>&1 || die "cargo not found (install a Rust toolchain)"

FAILED=()
FAILURE_DETAILS="$(mktemp)"
trap 'rm -f "$FAILURE_DETAILS"' EXIT

# ---------------------------------------------------------------------------
# 2. lint gates: formatting and clippy with warnings as errors
# ---------------------------------------------------------------------------
# clippy in the `checked` profile: the build scripts it runs (ring's and zstd's C
# code) and the proc-macros it compiles are then the same units step 3 uses.
log "cargo fmt --check; cargo clippy --all-targets -D warnings"
quiet cargo fmt --all -- --check || FAILED+=("cargo fmt --check")
quiet cargo clippy --locked --profile checked --all-targets -- -D warnings || FAILED+=("cargo clippy")

# ---------------------------------------------------------------------------
# 3. build
# ---------------------------------------------------------------------------
# One build of the whole workspace, so cargo overlaps librdkafka's C build
# (kastle-bench) with kastle's own crates instead of running them one after
# the other: kastle, kastle-lazyfs (tools/lazyfs: the FUSE filesystem
# compat-tests/test_power_loss.py simulates power loss with; it mounts with
# mount(2) as root, no fusermount needed) and kastle-perf (steps 6 and 7).
# The `checked` profile, as step 4's tests: the compat suite drives a broker
# whose debug assertions and overflow checks are on, and nothing is compiled
# twice. Steps 3 and 4 select the same packages and targets: cargo unifies
# dependency features over what one command builds (bench/ and tools/lazyfs
# add libc features, the tests' dev-dependencies others), so any other
# selection would compile kastle and half its dependencies a second time.
# (--no-cargo-test: the binaries only.)
TARGETS=(--all-targets)
[[ $CARGO_TEST -eq 1 ]] || TARGETS=()
log "cargo build --locked --profile checked --workspace ${TARGETS[*]}"
quiet cargo build --locked --profile checked --workspace "${TARGETS[@]}" || FAILED+=("cargo build --workspace")
BIN_DIR="$ROOT/target/checked"
KASTLE_BIN="$BIN_DIR/kastle"
[[ -x "$KASTLE_BIN" ]] || die "$KASTLE_BIN is missing after the build"
export KASTLE_BIN

# ---------------------------------------------------------------------------
# 4. Rust unit + integration tests in the `checked` profile (release
#    optimisations with debug assertions and overflow checks on). Once, not
#    also in release mode: a second build of every crate cost ~6 minutes of
#    the 40-minute budget; step 3's binary is the one the compat suite
#    drives.
# ---------------------------------------------------------------------------
rust_tests() {
  local label="$1" out
  shift
  log "cargo test --locked $* ($label)"
  out="$(mktemp)"
  if ! cargo test --locked "$@" >"$out" 2>&1; then
    cat "$out" >&2
    log "cargo test ($label) FAILED (output above); still running the rest" >&2
    FAILED+=("cargo test ($label)")
    # the failing tests' panics, repeated at the very end (a log cut to its
    # tail keeps why, not only which)
    sed -n '/^failures:$/,/^test result:/p' "$out" | head -n 200 >>"$FAILURE_DETAILS"
  fi
  # one summary line: total passed/ignored over all test binaries
  awk -v label="$label" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
       END { printf "[test.sh] cargo test (%s): %d passed, %d failed, %d ignored\n", label, p, f, g }' "$out"
  rm -f "$out"
}
if [[ $CARGO_TEST -eq 1 ]]; then
  rust_tests checked --profile checked --workspace
fi

# ---------------------------------------------------------------------------
# 5. compat tests
# ---------------------------------------------------------------------------
log "compat tests (pytest compat-tests)"
"$VENV/bin/python" -m pytest "$CT" -q "${PYTEST_ARGS[@]}" || FAILED+=("compat tests")

# ---------------------------------------------------------------------------
# 6. benchmark smoke run: kastle-perf (librdkafka) produces 20k records to the
#    broker (both step 3's) and reads them back; the counts must match. Not a
#    benchmark (scripts/bench.sh is), only proof that the driver works.
# ---------------------------------------------------------------------------
bench_smoke() {
  local perf="$BIN_DIR/kastle-perf" n=20000 dir port pid rc=0 i
  [[ -x "$perf" ]] || return 1  # built in step 3
  dir="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$KASTLE_BIN" --override "listeners=PLAINTEXT://127.0.0.1:$port" \
    --override "advertised.listeners=PLAINTEXT://127.0.0.1:$port" \
    --override "log.dirs=$dir/logs" \
    --override group.initial.rebalance.delay.ms=0 >"$dir/broker.log" 2>&1 &  # the consumer's group: no 3 s wait
  pid=$!
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  {
    "$perf" topic --bootstrap-server "127.0.0.1:$port" --topic smoke --partitions 4 &&
      "$perf" producer --bootstrap-server "127.0.0.1:$port" --topic smoke --num-records $n \
        --record-size 100 --throughput 10000 --producer-props acks=all --json &&
      "$perf" consumer --bootstrap-server "127.0.0.1:$port" --topic smoke --messages $n \
        --timeout 10000 --json
  } >"$dir/out.txt" 2>&1 || rc=1
  # both JSON lines must report exactly n records
  [[ "$(grep -c "^{.*\"records\":$n[,}]" "$dir/out.txt")" -eq 2 ]] || rc=1
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then
    cat "$dir/out.txt" >&2
    tail -20 "$dir/broker.log" >&2
  fi
  rm -rf "$dir"
  return $rc
}
log "bench smoke (kastle-perf producer + consumer, 20000 records)"
bench_smoke || { log "bench smoke FAILED" >&2; FAILED+=("bench smoke"); }

# ---------------------------------------------------------------------------
# 7. performance check (scripts/perf_check.sh, 25-35 s): durable produce with 1
#    and 100 partitions as ratios to page-cache produce measured in the same
#    run, against bench/perf_check.json; fails only below 0.4x the recorded
#    ratio (a large regression, not noise).
# ---------------------------------------------------------------------------
log "perf check (durable 1 and 100 partitions vs page-cache, ratios)"
PERF_BIN="$BIN_DIR/kastle-perf" quiet bash "$ROOT/scripts/perf_check.sh" || { log "perf check FAILED" >&2; FAILED+=("perf check"); }

if [[ ${#FAILED[@]} -gt 0 ]]; then
  if [[ -s "$FAILURE_DETAILS" ]]; then
    log "the failing cargo tests, again:" >&2
    cat "$FAILURE_DETAILS" >&2
  fi
  log "FAILED: ${FAILED[*]}" >&2
  exit 1
fi
log "all tests passed"
