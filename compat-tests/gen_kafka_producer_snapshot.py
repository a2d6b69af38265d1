"""Generates tests/fixtures/kafka-producer-snapshot/: a partition written by a real
Apache Kafka 4.4 and the producer state snapshot Kafka itself wrote for it at a
clean shutdown, for kastle's snapshot reader test
(src/storage/producer_state/tests.rs, `reads_the_snapshot_kafka_wrote`).

Kafka (``kafka_oracle.RealKafka``, from jvm/kafka4's jars) gets one topic with one
partition and three producers (confluent-kafka):

- an idempotent producer: three batches of 1, 2 and 3 records (sequences 0, 1-2, 3-5);
- a transactional producer whose transaction is committed (2 records, then the
  COMMIT marker);
- a transactional producer whose transaction is still open when Kafka stops (its
  process exits without committing or aborting).

Kafka is then stopped with SIGTERM (a clean shutdown, which writes
``<log end offset>.snapshot``), and the fixture keeps the partition's ``.log``, that
snapshot, and what Kafka's own kafka-dump-log (DumpLogSegments) prints for it
(``kafka-dump-log.txt``: the values the test expects kastle to read).

Run from compat-tests/ after ``bash scripts/test.sh --install-only``:
    .venv/bin/python gen_kafka_producer_snapshot.py
"""
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import jvm_lib
from kafka_oracle import RealKafka

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "tests" / "fixtures" / "kafka-producer-snapshot"
TOPIC = "fixture"

OPEN_TXN = textwrap.dedent("""
    import os, sys
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": "fixture-open",
                  "linger.ms": 50})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(sys.argv[2], key=b"open", value=b"left open")
    assert p.flush(30) == 0
    os._exit(0)  # no commit, no abort: the transaction stays open on the partition
""")


def produce_batches(bootstrap):
    idem = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                     "linger.ms": 50})
    for size in (1, 2, 3):  # one flush per batch: a batch of `size` records
        for i in range(size):
            idem.produce(TOPIC, key=f"idem-{size}-{i}".encode(), value=b"idempotent")
        assert idem.flush(30) == 0

    txn = Producer({"bootstrap.servers": bootstrap, "transactional.id": "fixture-committed",
                    "linger.ms": 50})
    txn.init_transactions(30)
    txn.begin_transaction()
    for i in range(2):
        txn.produce(TOPIC, key=f"txn-{i}".encode(), value=b"committed")
    txn.commit_transaction(30)

    subprocess.run([sys.executable, "-c", OPEN_TXN, bootstrap, TOPIC], check=True, timeout=120)


def main():
    work = Path(tempfile.mkdtemp(prefix="kafka-snapshot-fixture-"))
    kafka = RealKafka(work, overrides={"offsets.topic.num.partitions": 1,
                                       "transaction.state.log.num.partitions": 1})
    try:
        kafka.start()
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(60)
        produce_batches(kafka.bootstrap)
    finally:
        kafka.stop()
    assert (kafka.data_dir / ".kafka_cleanshutdown").exists(), kafka.log_tail()
    pdir = kafka.data_dir / f"{TOPIC}-0"
    snapshots = sorted(pdir.glob("*.snapshot"))
    assert len(snapshots) == 1, sorted(p.name for p in pdir.iterdir())
    segment = pdir / "00000000000000000000.log"
    dump = jvm_lib.jvm_run("kafka4", "org.apache.kafka.tools.DumpLogSegments",
                           ["--files", snapshots[0]], timeout=120)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    shutil.copy(segment, OUT / segment.name)
    shutil.copy(snapshots[0], OUT / snapshots[0].name)
    # the first line names the (temporary) file; the rest is Kafka's reading of it
    (OUT / "kafka-dump-log.txt").write_text(
        "".join(ln + "\n" for ln in dump.stdout.splitlines() if not ln.startswith("Dumping ")))
    print(f"wrote {OUT}:")
    for f in sorted(OUT.iterdir()):
        print(f"  {f.name} ({f.stat().st_size} bytes)")
    print(dump.stdout)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
