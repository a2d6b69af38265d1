# Apache Kafka from Maven, for the benchmark scripts (sourced by
# scripts/bench.sh and scripts/bench_cluster.sh; not run on its own).
#
# kafka_jvm_init TMPDIR LOGDIR: sets
#   JAVA           the java binary (JAVA_HOME's, else PATH's)
#   KAFKA_CP       the classpath of compat-tests/jvm/kafka4 (kafka_2.13, its
#                  server modules, kafka-tools): target/classpath.txt as
#                  scripts/test.sh --install-only writes it, else
#                  `mvn -o dependency:build-classpath`
#   KAFKA_VERSION  read off the kafka_2.13 jar's name ("" when absent)
#   KAFKA_JVM      the broker JVM's options as bin/kafka-server-start.sh and
#                  bin/kafka-run-class.sh set them (1 GiB heap, G1), logging
#                  at INFO to stdout ("Kafka Server started" tells when a
#                  node serves clients)
#   KAFKA_PERF_JVM the perf tools' options as bin/kafka-producer-perf-test.sh
#                  and bin/kafka-consumer-perf-test.sh set them (512 MiB, G1,
#                  the JIT's full tiers: these JVMs are measured drivers)
# and defines kafka_tool (a short-lived admin tool JVM) and kafka_cluster_id.
# Returns 1 (with KAFKA_VERSION empty) when java or the jars are missing.

kafka_jvm_init() {
  local tmp=$1 logdir=$2 mod
  mod="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/compat-tests/jvm/kafka4"
  JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  KAFKA_CP=""; KAFKA_VERSION=""; KAFKA_CP_FROM=""
  command -v "$JAVA" >/dev/null 2>&1 || return 1
  if [[ -s "$mod/target/classpath.txt" ]]; then
    KAFKA_CP="$(cat "$mod/target/classpath.txt")"; KAFKA_CP_FROM="$mod/target/classpath.txt"
  elif command -v mvn >/dev/null 2>&1 &&
    mvn -o -q -f "$mod/pom.xml" dependency:build-classpath \
      -Dmdep.outputFile="$tmp/kafka-classpath.txt" >"$logdir/mvn.log" 2>&1; then
    KAFKA_CP="$(cat "$tmp/kafka-classpath.txt")"; KAFKA_CP_FROM="mvn -o dependency:build-classpath"
  fi
  KAFKA_VERSION="$(tr ':' '\n' <<<"$KAFKA_CP" | sed -n 's#.*/kafka_2\.13-\([^/]*\)\.jar$#\1#p' | head -1)"
  [[ -n "$KAFKA_VERSION" ]] || return 1
  local gc=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)
  KAFKA_JVM=(-Xmx1G -Xms1G "${gc[@]}" -Dlog4j2.configurationFile="$tmp/log4j2.properties")
  KAFKA_PERF_JVM=(-Xmx512M "${gc[@]}" -Dlog4j2.configurationFile="$tmp/log4j2-tools.properties")
  KAFKA_TMP="$tmp"
  cat >"$tmp/log4j2.properties" <<'PROPS'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
PROPS
  sed 's/^rootLogger.level = INFO/rootLogger.level = WARN/' "$tmp/log4j2.properties" >"$tmp/log4j2-tools.properties"
}

kafka_tool() { # MAIN_CLASS ARGS...: a short-lived Kafka tool JVM (not measured)
  "$JAVA" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx256m \
    -Dlog4j2.configurationFile="$KAFKA_TMP/log4j2-tools.properties" \
    -cp "$KAFKA_CP" "$@"
}

kafka_cluster_id() { # a base64 UUID as `kafka-storage random-uuid` prints it, never starting with '-'
  python3 -c 'import base64,uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"): print(s); break'
}
