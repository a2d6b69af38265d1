"""Kafka's own command-line tools (kafka-topics, kafka-configs, console producer and
consumer (also in a KIP-848 group), kafka-console-share-consumer and
kafka-share-groups (KIP-932), kafka-consumer-groups, kafka-get-offsets, kafka-delete-records,
kafka-transactions, verifiable producer/consumer, producer/consumer perf test)
against kastle, and kafka-dump-log on kastle's own segment, index and producer
snapshot files to prove the on-disk layout is Kafka's.

The tools are the main classes the kafka-*.sh scripts run, from the kafka-tools
4.4.0 jar (``jvm/kafka4``), all in one JVM (``kastle.compat.ToolRunner``), once
against kastle and once against the session's real Kafka (so a failure on both
is a tool or test problem). One test per tool, on the shared run's output.
"""
import json
import re
import time
from pathlib import Path

import pytest

import jvm_lib
from compat_lib import unique_topic
from conftest import Broker

T = "org.apache.kafka.tools."
N_CONSOLE = 100
N_VERIFIABLE = 500
N_PERF = 20000
N_CODEC = 50
CODECS = ("gzip", "snappy", "lz4", "zstd")


def tool_script(bootstrap, names, workdir: Path):
    """The tool invocations, in order (each later one may depend on the earlier)."""
    bs = ["--bootstrap-server", bootstrap]
    t, t2, t3, t4 = names["topic"], names["console"], names["verifiable"], names["perf"]
    g, g3, txid = names["group"], names["vgroup"], names["txid"]
    g848, gshare = names["group848"], names["sharegroup"]
    delete_json = workdir / "delete-records.json"
    delete_json.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": t2, "partition": 0, "offset": 10}]}))
    console_in = "".join(f"k{i}:v{i}\n" for i in range(N_CONSOLE))

    def inv(name, main, *args, stdin=None, fork=False):
        return {"name": name, "main": T + main, "args": [str(a) for a in args], "stdin": stdin,
                "fork": fork}

    return [
        inv("topics_create", "TopicCommand", *bs, "--create", "--topic", t, "--partitions", 3,
            "--replication-factor", 1, "--config", "retention.ms=86400000"),
        inv("topics_create_console", "TopicCommand", *bs, "--create", "--topic", t2, "--partitions", 1),
        inv("topics_create_exists", "TopicCommand", *bs, "--create", "--topic", t, "--partitions", 1),
        inv("topics_alter", "TopicCommand", *bs, "--alter", "--topic", t, "--partitions", 4),
        inv("configs_alter_topic", "ConfigCommand", *bs, "--alter", "--entity-type", "topics",
            "--entity-name", t, "--add-config", "max.message.bytes=200000,segment.ms=3600000"),
        inv("configs_delete_topic_key", "ConfigCommand", *bs, "--alter", "--entity-type", "topics",
            "--entity-name", t, "--delete-config", "segment.ms"),
        inv("configs_describe_topic", "ConfigCommand", *bs, "--describe", "--entity-type", "topics",
            "--entity-name", t),
        inv("configs_describe_broker", "ConfigCommand", *bs, "--describe", "--entity-type", "brokers",
            "--entity-name", "1", "--all"),
        # (described a few tools later: Kafka's broker applies the new partitions asynchronously)
        inv("topics_describe", "TopicCommand", *bs, "--describe", "--topic", t),
        inv("topics_delete", "TopicCommand", *bs, "--delete", "--topic", t),
        inv("console_producer", "ConsoleProducer", *bs, "--topic", t2, "--property", "parse.key=true",
            "--property", "key.separator=:", stdin=console_in),
        inv("console_consumer", "consumer.ConsoleConsumer", *bs, "--topic", t2, "--group", g,
            "--from-beginning", "--max-messages", N_CONSOLE, "--timeout-ms", 30000,
            "--property", "print.key=true", "--property", "print.offset=true",
            "--property", "print.partition=true"),
        # the same records to a KIP-848 group (group.protocol=consumer), and to a
        # KIP-932 share group reading from the earliest offset
        inv("console_consumer_848", "consumer.ConsoleConsumer", *bs, "--topic", t2, "--group", g848,
            "--from-beginning", "--max-messages", N_CONSOLE, "--timeout-ms", 30000,
            "--consumer-property", "group.protocol=consumer"),
        inv("configs_share_group", "ConfigCommand", *bs, "--alter", "--entity-type", "groups",
            "--entity-name", gshare, "--add-config", "share.auto.offset.reset=earliest"),
        inv("console_share_consumer", "consumer.ConsoleShareConsumer", *bs, "--topic", t2,
            "--group", gshare, "--max-messages", N_CONSOLE, "--timeout-ms", 30000),
        # (listed only now: Kafka's broker learns of new topics asynchronously)
        inv("topics_list", "TopicCommand", *bs, "--list"),
        inv("groups_list_848", "consumer.group.ConsumerGroupCommand", *bs, "--list", "--state", "--type"),
        inv("groups_describe_848", "consumer.group.ConsumerGroupCommand", *bs, "--describe",
            "--group", g848),
        inv("share_groups_list", "consumer.group.ShareGroupCommand", *bs, "--list"),
        inv("share_groups_describe", "consumer.group.ShareGroupCommand", *bs, "--describe",
            "--group", gshare),
        inv("groups_list", "consumer.group.ConsumerGroupCommand", *bs, "--list"),
        inv("groups_describe", "consumer.group.ConsumerGroupCommand", *bs, "--describe", "--group", g),
        inv("groups_reset_earliest", "consumer.group.ConsumerGroupCommand", *bs, "--reset-offsets",
            "--group", g, "--topic", t2, "--to-earliest", "--execute"),
        inv("groups_describe_after_reset", "consumer.group.ConsumerGroupCommand", *bs, "--describe",
            "--group", g),
        inv("groups_reset_to_offset", "consumer.group.ConsumerGroupCommand", *bs, "--reset-offsets",
            "--group", g, "--topic", t2, "--to-offset", 40, "--execute"),
        inv("groups_reset_dry_run", "consumer.group.ConsumerGroupCommand", *bs, "--reset-offsets",
            "--group", g, "--topic", t2, "--shift-by", -5, "--dry-run"),
        inv("groups_describe_offsets", "consumer.group.ConsumerGroupCommand", *bs, "--describe",
            "--group", g, "--offsets"),
        inv("get_offsets_latest", "GetOffsetShell", *bs, "--topic", t2),
        inv("get_offsets_earliest", "GetOffsetShell", *bs, "--topic", t2, "--time", -2),
        inv("delete_records", "DeleteRecordsCommand", *bs, "--offset-json-file", delete_json),
        inv("get_offsets_after_delete", "GetOffsetShell", *bs, "--topic", t2, "--time", -2),
        *[inv(f"console_producer_{c}", "ConsoleProducer", *bs, "--topic", f"{t2}-{c}",
              "--compression-codec", c, "--property", "parse.key=true", "--property", "key.separator=:",
              stdin="".join(f"k{i}:{c}-{i}\n" for i in range(N_CODEC))) for c in CODECS],
        *[inv(f"get_offsets_{c}", "GetOffsetShell", *bs, "--topic", f"{t2}-{c}") for c in CODECS],
        inv("verifiable_producer", "VerifiableProducer", *bs, "--topic", t3,
            "--max-messages", N_VERIFIABLE, "--acks", -1, fork=True),
        inv("verifiable_consumer", "VerifiableConsumer", *bs, "--topic", t3, "--group-id", g3,
            "--max-messages", N_VERIFIABLE, "--reset-policy", "earliest", "--verbose", fork=True),
        inv("producer_perf", "ProducerPerformance", "--topic", t4, "--num-records", N_PERF,
            "--record-size", 100, "--throughput", -1, "--transactional-id", txid,
            "--transaction-duration-ms", 200,
            "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "linger.ms=5"),
        inv("consumer_perf", "ConsumerPerformance", *bs, "--topic", t4, "--messages", N_PERF,
            "--timeout", 30000),
        inv("transactions_list", "TransactionsCommand", *bs, "list"),
        inv("transactions_describe", "TransactionsCommand", *bs, "describe",
            "--transactional-id", txid),
        inv("transactions_describe_producers", "TransactionsCommand", *bs, "describe-producers",
            "--topic", t4, "--partition", 0),
        inv("topics_list_after_delete", "TopicCommand", *bs, "--list"),
    ]


def _run_batch(batch, workdir: Path, timeout):
    path = workdir / f"script-{len(list(workdir.glob('script-*.in.json')))}.in.json"
    path.write_text(json.dumps(batch))
    p = jvm_lib.jvm_run("kafka4", "kastle.compat.ToolRunner", [path], timeout=timeout,
                        jvm_opts=("-Xmx512m",))
    out = {}
    for ln in p.stdout.splitlines():
        if ln.startswith("{"):
            r = json.loads(ln)
            out[r["name"]] = r
    path.with_name(path.name.replace(".in.", ".out.")).write_text(json.dumps(out, indent=1))
    missing = [s["name"] for s in batch if s["name"] not in out]
    assert not missing, f"tools did not report: {missing}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return out


def run_tools(script, workdir: Path, timeout=300):
    """Runs the invocations in order: consecutive ones share a ToolRunner JVM;
    ``fork`` ones (tools that finish their work in a JVM shutdown hook, as the
    verifiable producer does) get a JVM of their own."""
    out, batch = {}, []
    for inv in script + [None]:
        if inv is not None and not inv.get("fork"):
            batch.append(inv)
            continue
        if batch:
            out.update(_run_batch(batch, workdir, timeout))
            batch = []
        if inv is not None:
            t0 = time.monotonic()
            p = jvm_lib.jvm_run("kafka4", inv["main"], inv["args"], timeout=timeout,
                                jvm_opts=("-Xmx256m",), check=False)
            out[inv["name"]] = {"name": inv["name"], "rc": p.returncode, "out": p.stdout,
                                "err": p.stderr, "ms": int((time.monotonic() - t0) * 1000)}
    return out


class ToolRun:
    def __init__(self, results, names, data_dir=None, dumps=None):
        self.results, self.names, self.data_dir, self.dumps = results, names, data_dir, dumps or {}

    def __call__(self, name, rc=0):
        r = self.results[name]
        assert r["rc"] == rc, (f"{name} exited {r['rc']} (expected {rc})\n--- out ---\n"
                               f"{r['out'][-4000:]}\n--- err ---\n{r['err'][-4000:]}")
        return r["out"]


def _names():
    return {"topic": unique_topic("tools"), "console": unique_topic("tools-console"),
            "verifiable": unique_topic("tools-verifiable"), "perf": unique_topic("tools-perf"),
            "group": unique_topic("tools-g"), "vgroup": unique_topic("tools-vg"),
            "group848": unique_topic("tools-g848"), "sharegroup": unique_topic("tools-gs"),
            "txid": unique_topic("tools-tx")}


@pytest.fixture(scope="module")
def kastle_tools(tmp_path_factory):
    """Every tool against one kastle; then kastle is stopped (clean shutdown trims
    the indexes and writes producer snapshots, as Kafka's does) and
    kafka-dump-log reads its files."""
    work = tmp_path_factory.mktemp("tools-kastle")
    b = Broker(work / "broker", name="kastle (tools)")
    b.start()
    names = _names()
    try:
        results = run_tools(tool_script(b.bootstrap, names, work), work)
    finally:
        b.stop(check=False)
    data = b.data_dir
    dumps = []
    for c in CODECS:
        names[f"codec-{c}"] = f"{names['console']}-{c}"
    for key in ("console", "verifiable", "perf", *[f"codec-{c}" for c in CODECS]):
        pdir = data / f"{names[key]}-0"
        for f in sorted(pdir.iterdir()):
            if f.suffix in (".log", ".index", ".timeindex", ".snapshot"):
                args = ["--files", str(f)]
                if f.suffix == ".log":
                    args += ["--print-data-log", "--deep-iteration"]
                dumps.append({"name": f"dump {key} {f.name}", "main": T + "DumpLogSegments",
                              "args": args, "stdin": None})
    dump_results = run_tools(dumps, work)
    return ToolRun(results, names, data, dump_results)


@pytest.fixture(scope="module")
def kafka_tools(real_kafka, tmp_path_factory):
    work = tmp_path_factory.mktemp("tools-kafka")
    names = _names()
    return ToolRun(run_tools(tool_script(real_kafka.bootstrap, names, work), work), names)


@pytest.fixture(params=["kastle", "kafka"])
def tools(request):
    return request.getfixturevalue("kastle_tools" if request.param == "kastle" else "kafka_tools")


def _tag(*caps):
    return pytest.mark.compat("kafka-tools", *caps)


# -- kafka-topics / kafka-configs ----------------------------------------------------

@_tag("admin")
def test_kafka_topics(tools):
    n = tools.names
    tools("topics_create")
    tools("topics_create_console")
    assert "already exists" in tools.results["topics_create_exists"]["out"] + \
        tools.results["topics_create_exists"]["err"]
    assert tools.results["topics_create_exists"]["rc"] == 1
    listed = tools("topics_list").split()
    assert n["console"] in listed, listed
    tools("topics_alter")
    desc = tools("topics_describe")
    assert re.search(rf"Topic: {n['topic']}\s+TopicId: \S+\s+PartitionCount: 4\s+ReplicationFactor: 1", desc), desc
    assert "retention.ms=86400000" in desc, desc
    for p in range(4):
        assert re.search(rf"Partition: {p}\s+Leader: 1\s+Replicas: 1\s+Isr: 1", desc), desc
    tools("topics_delete")
    assert n["topic"] not in tools("topics_list_after_delete").split()


@_tag("admin")
def test_kafka_configs(tools):
    tools("configs_alter_topic")
    tools("configs_delete_topic_key")
    desc = tools("configs_describe_topic")
    # dynamic topic configs only: the two set, not the deleted one
    assert "max.message.bytes=200000" in desc and "retention.ms=86400000" in desc, desc
    assert "segment.ms" not in desc, desc
    broker = tools("configs_describe_broker")
    assert "All configs for broker 1 are:" in broker, broker[:2000]
    for kv in ("log.retention.hours=168", "num.partitions=1", "auto.create.topics.enable=true"):
        assert re.search(rf"^\s+{re.escape(kv)} sensitive=false", broker, re.M), (kv, broker[:3000])


# -- console producer / consumer -------------------------------------------------------

@_tag("produce", "fetch")
def test_console_producer_and_consumer(tools):
    tools("console_producer")
    out = tools("console_consumer")
    lines = [ln for ln in out.splitlines() if ln.startswith("Partition:")]
    assert len(lines) == N_CONSOLE, out[-2000:]
    for i, ln in enumerate(lines):
        assert re.fullmatch(rf"Partition:0\s+Offset:{i}\s+k{i}\s+v{i}", ln), ln
    assert f"Processed a total of {N_CONSOLE} messages" in tools.results["console_consumer"]["err"]


@pytest.mark.parametrize("codec", CODECS)
@_tag("produce", "{codec}")
def test_console_producer_compression(tools, codec):
    # --compression-codec: the tool's producer compresses; the broker keeps the records
    tools(f"console_producer_{codec}")
    t = f"{tools.names['console']}-{codec}"
    assert tools(f"get_offsets_{codec}").split() == [f"{t}:0:{N_CODEC}"]


@pytest.mark.parametrize("codec", CODECS)
@_tag("{codec}")
def test_dump_log_of_compressed_batches(kastle_tools, codec):
    # kafka-dump-log decompresses kastle's stored batches: codec as sent, every record
    (name, r), = _dump(kastle_tools, f"codec-{codec}", ".log").items()
    batches = re.findall(r"^baseOffset: \d+ lastOffset: \d+ count: (\d+) .*?compresscodec: (\w+) .*?isvalid: (\w+)",
                         r["out"], re.M)
    assert batches and all(c.lower() == codec and v == "true" for _, c, v in batches), batches[:5]
    assert sum(int(n) for n, _, _ in batches) == N_CODEC
    got = re.findall(r"^\| offset: (\d+) .*? key: (\S+) payload: (\S+)", r["out"], re.M)
    assert got == [(str(i), f"k{i}", f"{codec}-{i}") for i in range(N_CODEC)], got[:5]


# -- kafka-consumer-groups --------------------------------------------------------------

def _group_rows(out, topic):
    """{partition: (current offset, log end offset, lag)} from a --describe table."""
    rows = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 6 and f[1] == topic:
            rows[int(f[2])] = tuple(None if x == "-" else int(x) for x in f[3:6])
    return rows


@_tag("groups")
def test_kafka_consumer_groups(tools):
    n = tools.names
    assert n["group"] in tools("groups_list").split()
    # the console consumer committed its position when it closed
    assert _group_rows(tools("groups_describe"), n["console"]) == {0: (N_CONSOLE, N_CONSOLE, 0)}
    reset = tools("groups_reset_earliest")
    assert re.search(rf"{n['group']}\s+{n['console']}\s+0\s+0", reset), reset
    assert _group_rows(tools("groups_describe_after_reset"), n["console"]) == {0: (0, N_CONSOLE, N_CONSOLE)}
    assert re.search(rf"{n['console']}\s+0\s+40", tools("groups_reset_to_offset"))
    dry = tools("groups_reset_dry_run")
    assert re.search(rf"{n['console']}\s+0\s+35", dry), dry
    # a dry run changes nothing
    assert _group_rows(tools("groups_describe_offsets"), n["console"]) == {0: (40, N_CONSOLE, 60)}


@_tag("consumer-protocol")
def test_kafka_consumer_groups_848(tools):
    """The console consumer in a KIP-848 group, then kafka-consumer-groups on it."""
    n = tools.names
    tools("console_consumer_848")
    assert f"Processed a total of {N_CONSOLE} messages" in tools.results["console_consumer_848"]["err"]
    listed = tools("groups_list_848")
    # KIP-1043's type column: the KIP-848 group is Consumer, the classic one Classic
    assert re.search(rf"^{re.escape(n['group848'])}\s+Consumer\s+Empty\b", listed, re.M), listed
    assert re.search(rf"^{re.escape(n['group'])}\s+Classic\s+Empty\b", listed, re.M), listed
    assert _group_rows(tools("groups_describe_848"), n["console"]) == {0: (N_CONSOLE, N_CONSOLE, 0)}


@_tag("share-groups")
def test_kafka_share_groups(tools):
    """kafka-console-share-consumer reads every record once, then
    kafka-share-groups lists and describes the group (no lag left)."""
    n = tools.names
    tools("configs_share_group")
    out = tools("console_share_consumer")
    assert sorted(out.split()) == sorted(f"v{i}" for i in range(N_CONSOLE)), out[-2000:]
    assert n["sharegroup"] in tools("share_groups_list").split()
    desc = tools("share_groups_describe")
    rows = [ln.split() for ln in desc.splitlines() if n["console"] in ln.split()]
    assert len(rows) == 1, desc
    assert rows[0][-1] == "0", desc  # LAG: everything delivered and acknowledged


# -- kafka-get-offsets / kafka-delete-records --------------------------------------------

@_tag("admin")
def test_get_offsets_and_delete_records(tools):
    t2 = tools.names["console"]
    assert tools("get_offsets_latest").split() == [f"{t2}:0:{N_CONSOLE}"]
    assert tools("get_offsets_earliest").split() == [f"{t2}:0:0"]
    out = tools("delete_records")
    assert re.search(rf"partition: {t2}-0\s+low_watermark: 10", out), out
    assert tools("get_offsets_after_delete").split() == [f"{t2}:0:10"]


# -- verifiable producer / consumer --------------------------------------------------------

def _events(out):
    return [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]


@_tag("produce", "fetch", "groups", "idempotence")
def test_verifiable_producer_and_consumer(tools):
    ev = _events(tools("verifiable_producer"))
    sent = [e for e in ev if e["name"] == "producer_send_success"]
    assert len(sent) == N_VERIFIABLE and not [e for e in ev if e["name"] == "producer_send_error"]
    assert sorted(e["offset"] for e in sent) == list(range(N_VERIFIABLE))
    data = [e for e in ev if e["name"] == "tool_data"]
    assert data and data[-1]["acked"] == N_VERIFIABLE, data
    ev = _events(tools("verifiable_consumer"))
    consumed = [e for e in ev if e["name"] == "records_consumed"]
    assert sum(e["count"] for e in consumed) == N_VERIFIABLE, ev[-5:]
    commits = [e for e in ev if e["name"] == "offsets_committed"]
    assert commits and all(e["success"] for e in commits), commits[-3:]
    assert max(o["offset"] for e in commits for o in e["offsets"]) == N_VERIFIABLE
    assert any(e["name"] == "partitions_assigned" for e in ev)


# -- perf tools, kafka-transactions --------------------------------------------------------

@_tag("produce", "fetch", "transactions")
def test_perf_tools_transactional(tools):
    out = tools("producer_perf")
    assert re.search(rf"^{N_PERF} records sent", out, re.M), out[-1500:]
    out = tools("consumer_perf")
    # CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, ...
    row = [ln for ln in out.splitlines() if ln and ln[0].isdigit()]
    assert row and int(row[-1].split(",")[4].strip()) == N_PERF, out


@_tag("transactions")
def test_kafka_transactions(tools):
    txid = tools.names["txid"]
    assert re.search(rf"^{re.escape(txid)}\s+1\s+\d+\s+CompleteCommit", tools("transactions_list"), re.M)
    desc = tools("transactions_describe")
    assert re.search(rf"{re.escape(txid)}\s+\d+\s+\d+\s+CompleteCommit", desc), desc
    prod = tools("transactions_describe_producers")
    # ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
    # (Kafka 4.4 with the 4.4 client runs transaction version 2: the epoch moves at
    # every commit and the marker leaves LastSequence -1; kastle offers version 1)
    assert re.search(r"^\d+\s+\d+\s+\d+\s+-?\d+\s+\d+\s+None", prod, re.M), prod


# -- kafka-dump-log on kastle's files --------------------------------------------------------

def _dump(kastle_tools, key, suffix):
    name = kastle_tools.names[key]
    hits = {k: v for k, v in kastle_tools.dumps.items()
            if k.startswith(f"dump {key} ") and k.endswith(suffix)}
    assert hits, f"no {suffix} file for {name}: {sorted(kastle_tools.dumps)}"
    for k, r in hits.items():
        assert r["rc"] == 0, f"{k}: rc {r['rc']}\n{r['out'][-2000:]}\n{r['err'][-2000:]}"
    return hits


BATCH = re.compile(r"^baseOffset: (\d+) lastOffset: (\d+) count: (\d+) .*?isTransactional: (\w+) "
                   r".*?isControl: (\w+).*?position: (\d+) .*?crc: (\d+) isvalid: (\w+)", re.M)


@_tag("produce")
def test_dump_log_segments_of_kastle(kastle_tools):
    # the verifiable producer's 500 records: batches contiguous from 0, valid CRC,
    # positions chained by batch sizes, each record printed
    (name, r), = _dump(kastle_tools, "verifiable", ".log").items()
    batches = BATCH.findall(r["out"])
    assert batches, r["out"][:2000]
    expect = 0
    for base, last, count, txn, control, pos, crc, valid in batches:
        assert int(base) == expect and int(last) == expect + int(count) - 1, batches[:5]
        assert valid == "true" and control == "false" and txn == "false"
        expect += int(count)
    assert expect == N_VERIFIABLE
    recs = re.findall(r"^\| offset: (\d+) ", r["out"], re.M)
    assert [int(o) for o in recs] == list(range(N_VERIFIABLE))
    # console producer: keys and payloads as sent
    (name, r), = _dump(kastle_tools, "console", ".log").items()
    got = re.findall(r"^\| offset: (\d+) .*? key: (\S+) payload: (\S+)", r["out"], re.M)
    assert got == [(str(i), f"k{i}", f"v{i}") for i in range(N_CONSOLE)], got[:5]
    # transactional perf run: data and control batches, N_PERF data records
    (name, r), = _dump(kastle_tools, "perf", ".log").items()
    batches = BATCH.findall(r["out"])
    data = sum(int(c) for _, _, c, _, control, _, _, _ in batches if control == "false")
    assert data == N_PERF
    assert all(t == "true" and v == "true" for _, _, _, t, _, _, _, v in batches)
    markers = re.findall(r"endTxnMarker: COMMIT", r["out"])
    assert markers and len(markers) == sum(1 for b in batches if b[4] == "true")


@_tag("produce")
def test_dump_index_files_of_kastle(kastle_tools):
    (name, r), = _dump(kastle_tools, "perf", ".index").items()
    entries = re.findall(r"^offset: (\d+) position: (\d+)", r["out"], re.M)
    # 20000 x 100 bytes: an entry every log.index.interval.bytes (4096)
    assert len(entries) > 100, r["out"][:1000]
    offs = [int(o) for o, _ in entries]
    assert offs == sorted(offs) and len(set(offs)) == len(offs)
    # DumpLogSegments checks every entry against the log and reports mismatches
    assert "Mismatches" not in r["out"] + r["err"], (r["out"] + r["err"])[-2000:]
    (name, r), = _dump(kastle_tools, "perf", ".timeindex").items()
    entries = re.findall(r"^timestamp: (\d+) offset: (\d+)", r["out"], re.M)
    assert entries, r["out"][:1000]
    assert "Mismatches" not in r["out"] + r["err"] and "non-increasing" not in r["out"], r["out"][-2000:]


@_tag("idempotence", "transactions")
def test_dump_producer_snapshot_of_kastle(kastle_tools):
    """kastle writes producer snapshots in Kafka's format (version 1, CRC-32C, one
    entry per producer with its last batch): kafka-dump-log reads every field."""
    entry = re.compile(r"^producerId: (\d+) producerEpoch: (\d+) coordinatorEpoch: (-?\d+) "
                       r"currentTxnFirstOffset: (\S+) lastTimestamp: (\d+) firstSequence: (\d+) "
                       r"lastSequence: (\d+) lastOffset: (\d+) offsetDelta: (\d+) timestamp: (\d+)$",
                       re.M)

    def entries(key):
        hits = _dump(kastle_tools, key, ".snapshot")
        out = "".join(r["out"] for r in hits.values())
        errors = "".join(r["err"] for r in hits.values())
        # a snapshot Kafka cannot read is reported on stdout ("Snapshot failed ...")
        assert "failed" not in out + errors and "corrupt" not in out, (out + errors)[-2000:]
        return hits, entry.findall(out)

    # the console producer (idempotent by default) and each codec's left one producer,
    # its last batch ending at the last sequence and offset, no transaction
    for key, n in [("console", N_CONSOLE), *[(f"codec-{c}", N_CODEC) for c in CODECS]]:
        hits, found = entries(key)
        assert [k.rsplit(" ", 1)[1] for k in hits] == [f"{n:020d}.snapshot"], sorted(hits)
        assert len(found) == 1, (key, found)
        (_, epoch, coord, txn, last_ts, first_seq, last_seq, last_off, delta, ts), = found
        assert (epoch, coord, txn) == ("0", "-1", "OptionalLong.empty"), found
        assert (int(last_seq), int(last_off)) == (n - 1, n - 1), found
        assert int(first_seq) == int(last_seq) - int(delta) and last_ts == ts, found
    # the transactional perf run: committed (no open transaction), by a coordinator.
    # Its commit marker ends the log. At transaction version 1 it carries the data's
    # epoch and the entry keeps the last batch; at version 2 (KIP-890) it carries the
    # bumped epoch, which clears the entry's batches as Kafka's ProducerStateEntry
    # does, so kafka-dump-log prints the entry without them.
    (_, log), = _dump(kastle_tools, "perf", ".log").items()
    txn_epochs = re.findall(r"producerEpoch: (\d+) partitionLeaderEpoch: \S+ isTransactional: true "
                            r"isControl: (\w+)", log["out"])
    data_epoch = max(int(e) for e, control in txn_epochs if control == "false")
    marker_epoch, last_is_marker = int(txn_epochs[-1][0]), txn_epochs[-1][1] == "true"
    assert last_is_marker and marker_epoch in (data_epoch, data_epoch + 1), txn_epochs[-3:]
    hits, found = entries("perf")
    if marker_epoch == data_epoch:
        assert len(found) == 1, found
        (_, epoch, coord, txn, _, first_seq, last_seq, _, delta, _), = found
        assert int(last_seq) == N_PERF - 1 and int(first_seq) == int(last_seq) - int(delta), found
    else:
        out = "".join(r["out"] for r in hits.values())
        found = re.findall(r"^producerId: \d+ producerEpoch: (\d+) coordinatorEpoch: (-?\d+) "
                           r"currentTxnFirstOffset: (\S+) lastTimestamp: \d+\s*$", out, re.M)
        assert len(found) == 1 and "firstSequence" not in out, out[-2000:]
        (epoch, coord, txn), = found
    assert int(epoch) == marker_epoch, (found, marker_epoch)
    assert int(coord) >= 0 and txn == "OptionalLong.empty", found
    # The verifiable producer sets retries=0, which turns the Java producer's implicit
    # idempotence off ("Idempotence will be disabled because retries is set to 0"): its
    # batches carry no producer id, so its partition's snapshot (written all the same,
    # as Kafka does at a clean shutdown) holds no producer.
    hits, found = entries("verifiable")
    assert hits and found == [], found
    (name, r), = _dump(kastle_tools, "verifiable", ".log").items()
    ids = set(re.findall(r"^baseOffset: .*? producerId: (-?\d+) ", r["out"], re.M))
    assert ids == {"-1"}, ids