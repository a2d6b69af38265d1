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

CLIENTS = ["kcat", "kafka-python", "confluent-kafka", "kafkajs", "aiokafka", "sarama",
           "kafka-streams", "kafka-connect", "flink", "spark"]

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
}

# Spellings used in test parameters -> canonical client names.
ALIASES = {"kp": "kafka-python", "ck": "confluent-kafka", "kjs": "kafkajs", "js": "kafkajs",
           "ak": "aiokafka"}

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
}

# Remarks on cells that pass but only with a caveat worth stating.
REMARKS = {
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
    ("kafka-python", "old-versions"): "api_version=(0, 11): Produce v3, Fetch v5, Metadata v4; "
                                      "api_version=(0, 9): Metadata v0 (observed on the wire).",
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

PASS, FAIL, NOT_TESTED, NA = "pass", "FAIL", "not tested", "n/a"

HEADER = """# Client compatibility

Generated by the compat suite (`compat-tests/`, see `compat_matrix.py`) from the
outcomes of the tests tagged `@pytest.mark.compat(client, capability)`. A cell reads
**pass** only if every test tagged with it passed in the run that wrote this file;
**FAIL** if any of them failed; **not tested** if no test covers it (or all were
skipped); **n/a** if the client does not offer the capability (see notes).

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
        if any(o == "failed" for o in outcomes):
            state = FAIL
        elif outcomes and all(o == "passed" for o in outcomes):
            state = PASS
        else:
            # all or some skipped: a partial proof is not a pass
            state = NOT_TESTED
        cells[key] = (state, sorted({t for t, _ in tests}))
    return cells


def render(results: Iterable[Tuple[str, str, str, str]]) -> str:
    """The whole COMPATIBILITY.md text for these outcomes (deterministic)."""
    cells = cell_states(results)
    notes: List[str] = []
    note_ids: Dict[Tuple[str, str], int] = {}

    def note(key: Tuple[str, str], text: str) -> str:
        if key not in note_ids:
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
