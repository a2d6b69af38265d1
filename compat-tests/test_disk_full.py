"""A full disk never kills the broker (issue 19).

The broker's ``log.dirs`` is a small tmpfs (a real ENOSPC, no device needed; mounting
needs root, which CI has: the test skips with the reason otherwise). A filler file takes
all of it; single records are then produced one at a time while the filler is shrunk
4 KiB after each refusal, so the disk hovers at full across many segment rolls
(``segment.bytes`` 16 KiB, ``segment.index.bytes`` 4 KiB, an index entry every 256
bytes). Before the fix the broker died of SIGBUS writing a freshly rolled segment's
sparse, memory-mapped index. Asserted: the broker process never dies; refused produces
get KAFKA_STORAGE_ERROR; another topic stays readable while the disk is full; once space
returns produces succeed again; the partition holds exactly the acknowledged records, in
order, at contiguous offsets (nothing refused or half-written is visible), and still
does after a restart.
"""
import os
import subprocess
import time

import pytest

from compat_lib import ck_admin, ck_consume, ck_producer, unique_topic

TMPFS_SIZE = "3m"
PAGE = 4096
ACKED_WANTED = 1500      # ~180 bytes per record on disk: ~17 segments of 16 KiB
REFUSALS_WANTED = 20
OTHER_RECORDS = 50


def mount_tmpfs(path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for log.dirs needs root (CI runs as root)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for log.dirs: {r.stderr.strip() or r.returncode}")


def fill(path):
    """Writes `path` until the filesystem is full; returns its size."""
    chunk = b"\0" * (64 << 10)
    with open(path, "wb", buffering=0) as f:
        for size in (64 << 10, PAGE):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError:
                    break
    return os.path.getsize(path)


def create_topic(bootstrap, topic, config):
    from confluent_kafka.admin import NewTopic
    admin = ck_admin(bootstrap)
    futs = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=config)], request_timeout=15)
    futs[topic].result(timeout=15)


def produce_one(prod, topic, value):
    """Produces one record and waits for its delivery report: (error name, offset)."""
    out = []
    prod.produce(topic, value=value, partition=0,
                 on_delivery=lambda err, msg: out.append((err, msg.offset())))
    prod.flush(30)
    assert out, "no delivery report within 30 s"
    err, offset = out[0]
    return (None, offset) if err is None else (err.name(), None)


def values(bootstrap, topic, until):
    recs = ck_consume(bootstrap, topic, 1, {0: until}, timeout=60)
    return [(r.offset, r.value) for r in recs]


def test_full_disk_refuses_appends_and_never_kills_the_broker(broker_factory, capsys):
    b = broker_factory({"offsets.topic.num.partitions": 1}, start=False)
    mount_tmpfs(b.data_dir)
    try:
        run(b, capsys)
    finally:
        b.stop(check=False)
        subprocess.run(["umount", "-l", str(b.data_dir)], check=False)


def run(b, capsys):
    b.start()
    topic, other = unique_topic("diskfull"), unique_topic("diskfull-other")
    create_topic(b.bootstrap, topic, {
        "internal.segment.bytes": "16384",   # KIP-1030's 1 MiB floor lifted for tests
        "segment.index.bytes": str(PAGE),
        "index.interval.bytes": "256",
    })
    create_topic(b.bootstrap, other, {})
    prod = ck_producer(b.bootstrap, **{"retries": 0, "linger.ms": 0, "request.timeout.ms": 10_000,
                                       "message.timeout.ms": 20_000})
    for i in range(OTHER_RECORDS):
        assert produce_one(prod, other, b"other-%d" % i)[0] is None
    # the first read also creates __consumer_offsets while there is room
    assert len(values(b.bootstrap, other, OTHER_RECORDS)) == OTHER_RECORDS

    filler = b.data_dir / "filler"
    filler_size = fill(filler)
    part_dir = b.data_dir / f"{topic}-0"
    acked, refused, i = [], {}, 0
    other_read_while_full = False
    deadline = time.monotonic() + 240
    while len(acked) < ACKED_WANTED or sum(refused.values()) < REFUSALS_WANTED:
        assert time.monotonic() < deadline, (
            f"too slow: acked={len(acked)} refused={refused} filler={filler_size}")
        value = b"rec-%08d-" % i + b"v" * 100
        i += 1
        err, offset = produce_one(prod, topic, value)
        assert b.alive(), f"broker died (exit {b.proc.returncode if b.proc else None}) with the disk full:\n{b.log_tail(60)}"
        if err is None:
            acked.append((offset, value))
            continue
        refused[err] = refused.get(err, 0) + 1
        if not other_read_while_full:
            # consumers of other partitions keep reading while appends are refused
            assert len(values(b.bootstrap, other, OTHER_RECORDS)) == OTHER_RECORDS
            other_read_while_full = True
        filler_size = max(0, filler_size - PAGE)
        os.truncate(filler, filler_size)
    segments = sorted(p.name for p in part_dir.glob("*.log"))
    with capsys.disabled():
        print(f"\ndisk full: {len(acked)} acked, refused {refused}, {len(segments)} segments, "
              f"filler left {filler_size} bytes")
    assert set(refused) == {"KAFKA_STORAGE_ERROR"}, refused
    assert len(segments) >= 5, f"the disk-full phase should span many segment rolls: {segments}"
    assert b.alive()

    # space returns: the broker takes appends again
    os.remove(filler)
    for n in range(20):
        value = b"after-%d" % n
        err, offset = produce_one(prod, topic, value)
        assert err is None, f"produce still refused after space returned: {err}"
        acked.append((offset, value))
    prod.flush(10)

    expected = [(n, v) for n, (_, v) in enumerate(acked)]
    assert [o for o, _ in acked] == list(range(len(acked))), "acknowledged offsets are not contiguous"
    got = values(b.bootstrap, topic, len(acked))
    assert got == expected, (f"read back {len(got)} records, acknowledged {len(acked)}; "
                             f"first difference at {next((k for k, (x, y) in enumerate(zip(got, expected)) if x != y), None)}")

    # graceful stop (no SIGBUS at shutdown), restart: nothing acknowledged lost
    rc = b.stop()
    assert rc == 0, f"broker exit code {rc} at shutdown:\n{b.log_tail(60)}"
    b.start()
    assert values(b.bootstrap, topic, len(acked)) == expected
    assert len(values(b.bootstrap, other, OTHER_RECORDS)) == OTHER_RECORDS
