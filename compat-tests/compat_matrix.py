"""The client x capability matrix behind COMPATIBILITY.md.

Compat tests carry ``@pytest.mark.compat(client, capability, ...)`` markers
(``{param}`` placeholders are filled from the test's parametrization).
conftest.py collects each tagged test's outcome; this module turns those
outcomes into the Markdown table and compares it with the committed file, so
the published matrix is whatever the last full run proved and cannot drift.

Pure functions only (no pytest imports), so test_compat_matrix.py can exercise
rendering and drift detection without a broker.
"""
import difflib
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Tuple

CLIENTS = ["kcat", "kafka-python", "confluent-kafka", "kafkajs", "aiokafka", "sarama", "franz-go",
           "sarama-1.61", "java-4.4", "java-3.x", "kafka-tools", "kafka-streams", "kafka-connect",
           "flink", "spark"]

# capability key -> column heading
CAPABILITIES = {
    "produce": "produce",
    "fetch": "fetch",
    "groups": "consumer groups",
    "idempotence": "idempotent producer",
    "gzip": "gzip",
    "snappy": "snappy",
    "lz4": "lz4",
    "zstd": "zstd",
    "transactions": "transactions",
    "admin": "admin",
    "old-versions": "old protocol versions",
    "security": "SASL_SSL (SCRAM) + mTLS",
    # Kafka 4.x's protocols (issue 15)
    "consumer-protocol": "consumer protocol (KIP-848)",
    "streams-protocol": "streams protocol (KIP-1071)",
    "share-groups": "share groups (KIP-932)",
    "transactions-v2": "transactions v2 (KIP-890)",
}

# Spellings used in test parameters -> canonical client names.
ALIASES = {"kp": "kafka-python", "ck": "confluent-kafka", "kjs": "kafkajs", "js": "kafkajs",
           "ak": "aiokafka"}

_STREAMS_ONLY = ("the streams rebalance protocol (KIP-1071) is Kafka Streams' own: "
                 "no other client speaks it.")

# Capabilities a client (as tested here) does not offer at all: rendered "n/a"
# with the reason as a footnote instead of "not tested".
NOT_APPLICABLE = {
    ("kcat", "admin"): "kcat only lists metadata (-L); it has no admin operations.",
    ("confluent-kafka", "old-versions"): "librdkafka always negotiates with ApiVersions "
                                         "(broker.version.fallback only applies to brokers "
                                         "older than 0.10), so it cannot be pinned to old "
                                         "protocol versions.",
    ("kcat", "old-versions"): "kcat is librdkafka: it cannot be pinned to old protocol versions.",
    ("aiokafka", "old-versions"): "aiokafka's api_version is a no-op since 0.13: it always "
                                  "negotiates with ApiVersions.",
    ("kafkajs", "snappy"): "kafkajs ships only gzip; snappy needs a third-party codec plugin.",
    ("kafkajs", "lz4"): "kafkajs ships only gzip; lz4 needs a third-party codec plugin.",
    ("kafkajs", "zstd"): "kafkajs ships only gzip; zstd needs a third-party codec plugin.",
    ("sarama", "zstd"): "sarama 1.22 sends zstd batches in Produce v3; Kafka takes zstd only from "
                        "Produce v7 (KIP-110) and refuses them with UNSUPPORTED_COMPRESSION_TYPE, "
                        "as kastle does (test_sarama_zstd_needs_produce_v7).",
    ("sarama", "transactions"): "Debian's sarama (1.22) predates sarama's transactional "
                                "producer (added in 1.37).",
    ("kafka-tools", "old-versions"): "Kafka's tools use the 4.4 Java client, which always "
                                     "negotiates versions with ApiVersions.",
    ("java-3.x", "consumer-protocol"): "kafka-clients 3.4 predates the KIP-848 consumer (early "
                                       "access in 3.7, generally available in 4.0).",
    ("java-3.x", "share-groups"): "kafka-clients 3.4 predates the share consumer (4.0 on).",
    ("java-3.x", "transactions-v2"): "kafka-clients 3.4 predates transaction version 2 (4.0 on).",
    ("sarama", "consumer-protocol"): "sarama 1.22 has only the classic group protocol.",
    ("sarama", "share-groups"): "sarama 1.22 has no share consumer.",
    ("sarama", "transactions-v2"): "Debian's sarama (1.22) has no transactional producer.",
    ("java-4.4", "old-versions"): "the Java client always negotiates versions with "
                                  "ApiVersions and cannot be pinned to old ones; java-3.x is "
                                  "the older client.",
    ("java-3.x", "old-versions"): "the Java client always negotiates versions with ApiVersions "
                                  "and cannot be pinned to old ones (kafka-clients 3.4.0 itself "
                                  "is the older client).",
    ("kafka-streams", "old-versions"): "Kafka Streams runs on its own kafka-clients (4.4), which "
                                       "negotiates current versions with ApiVersions.",
    ("kafka-connect", "old-versions"): "Kafka Connect runs on its own kafka-clients (4.3), which "
                                       "negotiates current versions with ApiVersions.",
    ("flink", "old-versions"): "Flink's Kafka connector bundles kafka-clients (4.2), which "
                               "negotiates current versions with ApiVersions.",
    ("spark", "old-versions"): "spark-sql-kafka bundles kafka-clients (3.9), which negotiates "
                               "current versions with ApiVersions.",
    ("spark", "groups"): "Spark's Kafka source assigns partitions itself and keeps its offsets in "
                         "the query checkpoint: it never joins a consumer group or commits to one.",
    ("spark", "transactions"): "Spark's Kafka sink is at-least-once: it has no transactional "
                               "producer.",
    ("spark", "consumer-protocol"): "Spark's Kafka source never joins a consumer group (above).",
    ("spark", "share-groups"): "Spark's Kafka source reads assigned partitions, never a share group.",
    ("spark", "transactions-v2"): "Spark's Kafka sink has no transactional producer (above).",
    ("flink", "consumer-protocol"): "Flink's KafkaSource assigns partitions itself: it never joins "
                                    "a group under either protocol.",
    ("flink", "share-groups"): "Flink's KafkaSource reads assigned partitions, never a share group.",
}
NOT_APPLICABLE.update({(c, "streams-protocol"): _STREAMS_ONLY for c in CLIENTS if c != "kafka-streams"})

# Remarks on cells that pass but only with a caveat worth stating.
REMARKS = {
    ("kcat", "security"): "kcat's librdkafka (2.0.2 here) repeats the client nonce in SCRAM "
                          "(librdkafka#4895), which Kafka 4 and kastle both refuse (tested); kcat "
                          "runs over SASL_SSL with PLAIN, and over mTLS.",
    ("sarama", "admin"): "sarama 1.22's ClusterAdmin.DescribeConfig sends DescribeConfigs v0, "
                         "which Kafka 4 removed (KIP-896); the driver sends the same request "
                         "at v1 through sarama's Broker API.",
    ("sarama", "groups"): "sarama 1.22 commits with OffsetCommit v1 (removed in Kafka 4) unless "
                          "Consumer.Offsets.Retention is set, which switches it to v2; the "
                          "driver sets it.",
    ("sarama", "old-versions"): "sarama 1.22 never speaks above Produce v3 / Fetch v4, Kafka 4's "
                                "floors; also run at Version V0_11_0_0 (Metadata v1, ListOffsets "
                                "v1), and ClusterAdmin.DescribeTopics at V0_10_2_0 sends Metadata "
                                "v0 (observed on the wire).",
    ("java-3.x", "produce"): "kafka-clients 3.4.0, the version flink-connector-kafka "
                             "3.4.0-1.20 (Flink 1.20 LTS) pins; the driver is compiled against it "
                             "and the same classes run on 4.4.0 (java-4.4).",
    ("java-4.4", "admin"): "Admin.alterConfigs (AlterConfigs) is gone from the 4.x client; "
                           "java-3.x covers it.",
    ("kafka-python", "old-versions"): "api_version=(0, 11): Produce v3, Fetch v5, Metadata v4; "
                                      "api_version=(0, 9): Metadata v0 (observed on the wire).",
    ("franz-go", "produce"): "franz-go sends every request at the highest version both sides know "
                             "(checked on the wire for each request of the round-trip and kadm tests, "
                             "e.g. Produce v13, Fetch v18, Metadata v13, ListOffsets v11 against "
                             "kastle today); AddPartitionsToTxn stays at v3, the last client version "
                             "(v4+ are broker-to-broker, KIP-890).",
    ("franz-go", "old-versions"): "kgo.MaxVersions(kversion.V0_11_0()): Produce v3, Fetch v5, Metadata v4 "
                                  "(observed on the wire).",
    ("sarama-1.61", "produce"): "IBM/sarama 1.61 with config.Version V4_0_0_0: Produce v10, Fetch v12, "
                                "ListOffsets v6, Metadata v11 (sarama's own choice for Kafka 4.0; "
                                "observed on the wire).",
    ("sarama-1.61", "groups"): "tested with sarama's default range assignor (eager rebalancing).",
    ("sarama-1.61", "old-versions"): "config.Version V0_11_0_0: Produce v3, Fetch v5, ListOffsets v2, "
                                     "Metadata v4 (observed on the wire).",
    ("kafka-streams", "transactions"): "exactly_once_v2 word count with a RocksDB store, SIGKILLed "
                                       "mid-transaction twice (restarted on the same state dir, then "
                                       "on a wiped one: changelog restore, the dead transactional "
                                       "id's open transaction aborted by the broker's timeout); "
                                       "read_committed counts exactly 1..n.",
    ("kafka-connect", "groups"): "the worker group (protocol type connect, sessioned) and the "
                                 "sink task's consumer group.",
    ("kafka-connect", "transactions"): "exactly.once.source.support=enabled: the worker SIGKILLed "
                                       "while a FileStreamSource streams; read_committed holds each "
                                       "line once after the restart.",
    ("kafka-connect", "idempotence"): "through the exactly-once source's transactional producers; "
                                      "Connect's ordinary producers send no InitProducerId.",
    ("flink", "transactions"): "KafkaSink EXACTLY_ONCE SIGKILLed with an open transaction and "
                               "restored from its checkpoint, INCREMENTING and POOLING naming: "
                               "checkpointed transactions committed by EndTxn with their stored "
                               "producer id and epoch, lingering ones fenced by InitProducerId "
                               "(POOLING finds them with DescribeProducers and ListTransactions).",
    ("flink", "groups"): "KafkaSource assigns partitions itself; its group only receives the "
                         "checkpointed offsets (OffsetCommit).",
    ("flink", "admin"): "AdminClient: DescribeCluster, and with POOLING naming DescribeProducers "
                        "and ListTransactions.",
    ("spark", "admin"): "offsets through the AdminClient (ListOffsets, also by timestamp, "
                        "Metadata, DescribeCluster); Spark creates or alters nothing.",
}

PASS, FAIL, NOT_TESTED, NA, DEVIATION = "pass", "FAIL", "not tested", "n/a", "deviation"

HEADER = """# Client compatibility

Generated by the compat suite (`compat-tests/`, see `compat_matrix.py`) from the
outcomes of the tests tagged `@pytest.mark.compat(client, capability)`. A cell reads
**pass** only if every test tagged with it passed in the run that wrote this file;
**FAIL** if any of them failed; **not tested** if no test covers it (or all were
skipped); **n/a** if the client does not offer the capability (see notes); **deviation**
if every test passed except known kastle deviations (strict xfails, listed below the table
with their tests).

A full compat run (`bash scripts/test.sh`) fails when this file differs from what the
run observed. To update it after a deliberate change:

    KASTLE_UPDATE_COMPAT=1 bash scripts/test.sh

"""


def canonical_client(name: str) -> str:
    return ALIASES.get(name, name)


def tags_for(marker_args: Iterable[Tuple[str, ...]], params: Dict[str, object]) -> List[Tuple[str, str]]:
    """(client, capability) pairs from a test's compat markers, each marker being
    ``(client, capability, capability, ...)``; ``{name}`` placeholders are filled from
    the test's parameters. Raises ValueError on unknown names (a typo must not
    silently create a new row or column)."""
    out = []
    for args in marker_args:
        if len(args) < 2:
            raise ValueError(f"compat marker needs (client, capability, ...), got {args!r}")
        fmt = {k: str(v) for k, v in params.items()}
        try:
            client = canonical_client(args[0].format(**fmt))
            caps = [c.format(**fmt) for c in args[1:]]
        except KeyError as e:
            raise ValueError(f"compat marker {args!r} names unknown parameter {e}") from None
        if client not in CLIENTS:
            raise ValueError(f"compat marker: unknown client {client!r} (known: {CLIENTS})")
        for cap in caps:
            if cap not in CAPABILITIES:
                raise ValueError(f"compat marker: unknown capability {cap!r} "
                                 f"(known: {list(CAPABILITIES)})")
            out.append((client, cap))
    return out


def cell_states(results: Iterable[Tuple[str, str, str, str]]) -> Dict[Tuple[str, str], Tuple[str, List[str]]]:
    """results: (client, capability, test id, outcome in passed/failed/skipped).
    Returns {(client, capability): (cell text, sorted test ids)}."""
    by_cell = defaultdict(list)
    for client, cap, test_id, outcome in results:
        by_cell[(client, cap)].append((test_id, outcome))
    cells = {}
    for key, tests in by_cell.items():
        outcomes = [o for _, o in tests]
        cells[key] = (_state(outcomes), sorted({t for t, _ in tests}))
    return cells


def _state(outcomes):
    if any(o == "failed" for o in outcomes):
        return FAIL
    if outcomes and all(o == "passed" for o in outcomes):
        return PASS
    if outcomes and all(o in ("passed", "xfailed") for o in outcomes):
        # known deviations (strict xfail): they keep failing until fixed
        return DEVIATION
    # all or some skipped: a partial proof is not a pass
    return NOT_TESTED


ORACLE_HEADER = """## Matches Apache Kafka

Decided by the differential oracle (`compat-tests/test_kafka_oracle.py`): the same
requests, normal and error paths, to a real Apache Kafka 4.4 and to kastle, answers
compared field by field after the normalisations listed in `oracle_lib.py`
(deliberate differences, such as durability by default, in `oracle_deviations.py`).
Per API: the advertised version range (**match** when both brokers advertise the
same), the versions whose every scenario matched, and the versions with known
deviations (strict xfails; the reasons are in `oracle_deviations.py`)."""


def oracle_cells(marker_args: Iterable[Tuple[str, ...]]) -> List[Tuple[str, str]]:
    """(API, version or 'range'/'features') pairs from kafka_oracle markers, whose
    arguments are either 'API:version' strings or (API, 'range'/'features')."""
    out = []
    for args in marker_args:
        if len(args) == 2 and ":" not in args[0] and ":" not in args[1]:
            out.append((args[0], args[1]))
            continue
        for a in args:
            api, sep, ver = a.partition(":")
            if not sep or not ver.isdigit():
                raise ValueError(f"kafka_oracle marker: expected 'API:version', got {a!r}")
            out.append((api, ver))
    return out


def _ranges(versions: Iterable[int]) -> str:
    vs = sorted(set(versions))
    parts, i = [], 0
    while i < len(vs):
        j = i
        while j + 1 < len(vs) and vs[j + 1] == vs[j] + 1:
            j += 1
        parts.append(str(vs[i]) if i == j else f"{vs[i]}-{vs[j]}")
        i = j + 1
    return ", ".join(parts) or "-"


def render_oracle(results: Iterable[Tuple[str, str, str, str]]) -> List[str]:
    """results: (API, version or 'range'/'features', test id, outcome). The lines of
    the 'Matches Apache Kafka' section (empty when nothing was run)."""
    by = defaultdict(lambda: defaultdict(list))
    for api, what, _tid, outcome in results:
        by[api][what].append(outcome)
    if not by:
        return []
    lines = [ORACLE_HEADER, "",
             "| API | advertised range | versions matching Kafka | versions with known deviations | FAIL |",
             "|---|---|---|---|---|"]
    for api in sorted(by):
        cells = by[api]
        state = {w: _state(o) for w, o in cells.items()}
        versions = [int(w) for w in state if w.isdigit()]
        rng = state.get("range", NOT_TESTED)
        if "features" in state:
            rng += f" (features: {state['features']})"
        lines.append("| {} | {} | {} | {} | {} |".format(
            api, "match" if rng == PASS else rng,
            _ranges(v for v in versions if state[str(v)] == PASS),
            _ranges(v for v in versions if state[str(v)] == DEVIATION),
            _ranges(v for v in versions if state[str(v)] == FAIL)))
    lines.append("")
    return lines


def render(results: Iterable[Tuple[str, str, str, str]],
           oracle_results: Iterable[Tuple[str, str, str, str]] = ()) -> str:
    """The whole COMPATIBILITY.md text for these outcomes (deterministic)."""
    cells = cell_states(results)
    notes: List[str] = []
    note_ids: Dict[Tuple[str, str], int] = {}

    def note(key: Tuple[str, str], text: str) -> str:
        if key not in note_ids:
            if text in notes:  # one footnote for cells with the same reason
                note_ids[key] = notes.index(text) + 1
            else:
                notes.append(text)
                note_ids[key] = len(notes)
        return f" [{note_ids[key]}]"

    caps = list(CAPABILITIES)
    lines = ["| client | " + " | ".join(CAPABILITIES[c] for c in caps) + " |",
             "|---|" + "---|" * len(caps)]
    for client in CLIENTS:
        row = []
        for cap in caps:
            key = (client, cap)
            if key in cells:
                text = cells[key][0]
            elif key in NOT_APPLICABLE:
                text = NA + note(key, NOT_APPLICABLE[key])
            else:
                text = NOT_TESTED
            if key in cells and key in NOT_APPLICABLE:
                # a test exists after all: say so rather than hide it behind n/a
                text += note(key, NOT_APPLICABLE[key])
            if key in REMARKS and key in cells:
                text += note(key, REMARKS[key])
            row.append(text)
        lines.append(f"| {client} | " + " | ".join(row) + " |")

    out = [HEADER.rstrip("\n"), "", *lines, ""]
    if notes:
        out.append("Notes:")
        out.append("")
        out.extend(f"{i}. {t}" for i, t in enumerate(notes, 1))
        out.append("")
    out.append("## Tests behind each cell")
    out.append("")
    for client in CLIENTS:
        for cap in caps:
            key = (client, cap)
            if key in cells:
                state, tests = cells[key]
                out.append(f"* {client} / {CAPABILITIES[cap]} ({state}): "
                           + ", ".join(f"`{t}`" for t in tests))
    out.append("")
    out.extend(render_oracle(oracle_results))
    return "\n".join(out)


def drift(committed: Optional[str], generated: str, path_label: str = "COMPATIBILITY.md") -> Optional[str]:
    """None when the committed text matches; otherwise a unified diff (committed ->
    observed) explaining the difference."""
    if committed == generated:
        return None
    old = [] if committed is None else committed.splitlines(keepends=True)
    diff = difflib.unified_diff(old, generated.splitlines(keepends=True),
                                fromfile=f"{path_label} (committed)",
                                tofile=f"{path_label} (this run)")
    text = "".join(diff)
    if committed is None:
        text = f"{path_label} does not exist\n" + text
    return text or f"{path_label} differs only in line endings or trailing whitespace"
