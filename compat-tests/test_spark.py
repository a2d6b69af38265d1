"""Spark 4.x Structured Streaming and batch reads with spark-sql-kafka-0-10.

The driver (jvm/spark, KafkaJobs; local[2] master in the test's JVM, UI off):

* streaming: a checkpointed query (Kafka source, 400 offsets per micro-batch ->
  value upper-cased and tagged with its source partition/offset -> Kafka sink)
  is SIGKILLed after a few committed micro-batches, then restarted on the same
  checkpoint with Trigger.AvailableNow. Spark's Kafka sink is at-least-once, so
  the output may repeat records of the batch that was in flight, but nothing may
  be lost, every record below the last committed batch's end offsets must appear
  exactly once, and the restarted query's first batch must start at those
  offsets (the checkpoint), not at the beginning.
* a batch read with startingOffsetsByTimestamp (ListOffsets by timestamp) must
  return exactly the records at/after the given timestamp in each partition; a
  timestamp after a partition's last record (ListOffsets answers offset -1) with
  startingOffsetsByTimestampStrategy=latest yields none of that partition.

The restarted JVM runs both. ``spark_stream_scenario`` and
``spark_timestamps_scenario`` take only a bootstrap address.
"""
import json
import time
from collections import Counter

import pytest

from compat_lib import unique_topic
from frameworks_lib import (api_calls, assert_apis, create_topics, framework_broker,  # noqa: F401
                            produce, read_all)
from jvm_lib import jvm_module, jvm_procs  # noqa: F401 - jvm_procs is a fixture

MODULE = "spark"
MAIN = "kastle.compat.spark.KafkaJobs"
# what spark-submit adds on Java 17 (Spark's launcher JavaModuleOptions)
JVM_OPTS = ["-Xmx768m", "-XX:+IgnoreUnrecognizedVMOptions",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.net=ALL-UNNAMED",
            "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
            "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
            "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
            "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
            "-Djdk.reflect.useDirectMethodHandle=false",
            "-Dio.netty.tryReflectionSetAccessible=true"]
PARTITIONS = 2
N = 6000
PER_BATCH = 400


def start(jvm_procs, bootstrap, workdir, spec, label):
    path = workdir / f"{label}.json"
    path.write_text(json.dumps(spec))
    return jvm_procs(MODULE, MAIN, [bootstrap, path], jvm_opts=JVM_OPTS, label=label,
                     cwd=workdir)


def committed_batch(ckpt):
    """(last committed batch id, its end offsets {partition: offset}) from the
    checkpoint: commits/<id> marks a finished batch, offsets/<id> holds the source
    offsets it ran up to (a version line, a metadata line, then the Kafka source's
    {topic: {partition: offset}})."""
    ids = [int(p.name) for p in (ckpt / "commits").iterdir() if p.name.isdigit()]
    if not ids:
        return None, {}
    last = max(ids)
    lines = (ckpt / "offsets" / str(last)).read_text().splitlines()
    (topic_offsets,) = json.loads(lines[2]).values()
    return last, {int(p): o for p, o in topic_offsets.items()}


def spark_stream_scenario(bootstrap, workdir, jvm_procs, timestamps_spec=None):
    jvm_module(MODULE)
    src, out = unique_topic("spark-in"), unique_topic("spark-out")
    create_topics(bootstrap, {src: PARTITIONS, out: PARTITIONS})
    produce(bootstrap, src, [(i % PARTITIONS, f"k{i}".encode(), f"rec-{i}".encode(), None)
                             for i in range(N)])
    ckpt = workdir / "checkpoint"
    stream = {"input": src, "output": out, "checkpoint": str(ckpt),
              "maxOffsetsPerTrigger": PER_BATCH, "trigger": "processing"}

    run1 = start(jvm_procs, bootstrap, workdir, {"stream": stream}, "spark1")
    run1.wait_for(lambda e: e.get("event") == "progress" and e["batch"] >= 3 and e["rows"] > 0,
                  240, "four micro-batches")
    run1.kill()
    last, committed_end = committed_batch(ckpt)
    assert last is not None and sum(committed_end.values()) < N, (last, committed_end)

    spec2 = {"stream": dict(stream, trigger="available-now")}
    if timestamps_spec:
        spec2["timestamps"] = timestamps_spec
    run2 = start(jvm_procs, bootstrap, workdir, spec2, "spark2")
    run2.wait_for(lambda e: e.get("event") == "done", 240, "restarted query and batch read")
    progress = [e for e in run2.events if e.get("event") == "progress" and e["rows"] > 0]

    # resumed from the checkpoint: the first batch after the restart starts where
    # the last committed batch ended
    first_start = {int(p): o for p, o in json.loads(progress[0]["start"])[src].items()}
    assert first_start == committed_end, (first_start, committed_end, progress[0])

    recs = read_all(bootstrap, out, PARTITIONS, "read_uncommitted")
    seen = Counter()
    for _p, _o, _k, v, _t in recs:
        text, part, off = v.decode().rsplit("|", 2)
        i = int(text.split("-")[1])
        assert text == f"REC-{i}" and int(part) == i % PARTITIONS and int(off) == i // PARTITIONS, v
        seen[(int(part), int(off))] += 1
    missing = [(p, o) for p in range(PARTITIONS) for o in range(N // PARTITIONS) if not seen[(p, o)]]
    assert not missing, f"{len(missing)} input records lost, e.g. {missing[:10]}"
    twice_below = [k for k, c in seen.items() if c > 1 and k[1] < committed_end[k[0]]]
    assert not twice_below, (f"records of committed batches (below {committed_end}) written again "
                             f"after the restart: {sorted(twice_below)[:10]}")
    dups = sum(c - 1 for c in seen.values())
    assert dups <= PER_BATCH, f"{dups} duplicates: more than the one batch that was in flight"
    return {"committed_batch": last, "committed_end": committed_end, "duplicates": dups,
            "rows": [e for e in run2.events if e.get("event") == "row"]}


def timestamps_topic(bootstrap):
    """A topic whose partition p holds 100 records with CreateTime base + 10*j + p,
    and the startingOffsetsByTimestamp query for it with the rows it must return."""
    topic = unique_topic("spark-ts")
    create_topics(bootstrap, {topic: 3})
    base = int(time.time() * 1000) - 3_600_000
    produce(bootstrap, topic, [(p, None, f"p{p}-{j}".encode(), base + 10 * j + p)
                               for p in range(3) for j in range(100)])
    starts = {"0": base + 500,          # exactly record 50's timestamp
              "1": base + 503,          # between records 50 (501) and 51 (511)
              "2": base + 10_000}       # after the last record: ListOffsets says -1
    want = {(0, j) for j in range(50, 100)} | {(1, j) for j in range(51, 100)}
    spec = {"topic": topic, "startingOffsetsByTimestamp": {topic: starts}, "strategy": "latest"}
    return spec, want, base


@pytest.mark.timeout(600)
@pytest.mark.compat("spark", "produce", "fetch", "idempotence", "admin")
def test_spark_streaming_restart_and_timestamps(framework_broker, tmp_path, jvm_procs):
    _b, rec, bootstrap = framework_broker
    ts_spec, want, base = timestamps_topic(bootstrap)
    result = spark_stream_scenario(bootstrap, tmp_path, jvm_procs, ts_spec)
    got = {(r["partition"], r["offset"]) for r in result["rows"]}
    assert len(result["rows"]) == len(got) and got == want, (
        f"startingOffsetsByTimestamp returned {len(result['rows'])} rows; missing "
        f"{sorted(want - got)[:8]}, unexpected {sorted(got - want)[:8]}")
    for r in result["rows"]:
        j = int(r["value"].split("-")[1])
        assert r["value"] == f"p{r['partition']}-{r['offset']}" and \
            r["timestamp"] == base + 10 * j + r["partition"], r
    calls = api_calls(rec)
    print({k: v for k, v in result.items() if k != "rows"}, calls)
    # Spark's sink producer is idempotent (the Java client's default); offsets come
    # from the AdminClient (ListOffsets, by timestamp too)
    assert_apis(calls, "Produce", "Fetch", "ListOffsets", "Metadata", "InitProducerId")
