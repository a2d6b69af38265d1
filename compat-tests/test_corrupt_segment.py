"""A corrupt sealed segment is never served (issue 19).

Records are written one batch each to a topic with 2000-byte segments (and to a second
topic), the broker is stopped, one byte of record data is flipped inside a sealed (not
the active) segment, and the broker restarted. Its LogScrubber verifies sealed segments
after start-up; asserted: the broker's log names the file and position, the
``kastle_log_corrupt_segments_total`` metric counts it, a consumer (librdkafka with
``check.crcs``) gets every record before the corrupt batch and none from it on, a fetch
at the corrupt offset answers CORRUPT_MESSAGE (what Kafka's Java consumer turns into
"Encountered corrupt message when fetching offset ..."), a fetch just before it is
served, the next segment still reads, and the other topic reads in full.
"""
import re
import struct
import time
import urllib.request

from compat_lib import ck_admin, ck_consume, ck_consumer, ck_producer, raw_fetch_v4, unique_topic
from conftest import free_port

RECORDS = 120
CORRUPT_MESSAGE = 2


def create_topic(bootstrap, topic, config):
    from confluent_kafka.admin import NewTopic
    admin = ck_admin(bootstrap)
    futs = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=config)], request_timeout=15)
    futs[topic].result(timeout=15)


def batches(data):
    """(position, base_offset, size) of each v2 batch in a segment file."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, blen = struct.unpack_from(">qi", data, pos)
        out.append((pos, base, 12 + blen))
        pos += 12 + blen
    return out


def read_until_error(bootstrap, topic, timeout=30):
    """Consumes from offset 0 until the partition reports an error or EOF:
    (offsets read, [error codes])."""
    from confluent_kafka import KafkaError, TopicPartition
    cons = ck_consumer(bootstrap, **{"check.crcs": True})
    offsets, errors = [], []
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not errors:
            for m in cons.consume(num_messages=1000, timeout=0.5):
                err = m.error()
                if err is None:
                    offsets.append(m.offset())
                elif err.code() != KafkaError._PARTITION_EOF:
                    errors.append(err)
        return offsets, errors
    finally:
        cons.close()


def test_corrupt_sealed_segment_is_served_up_to_the_bad_batch(broker_factory):
    metrics_port = free_port()
    b = broker_factory({"offsets.topic.num.partitions": 1,
                        "metrics.prometheus.listener": f"127.0.0.1:{metrics_port}"})
    topic, other = unique_topic("corrupt"), unique_topic("corrupt-other")
    create_topic(b.bootstrap, topic, {"internal.segment.bytes": "2000"})
    create_topic(b.bootstrap, other, {"internal.segment.bytes": "2000"})
    prod = ck_producer(b.bootstrap, **{"linger.ms": 0})
    for i in range(RECORDS):
        for t in (topic, other):
            prod.produce(t, value=b"value-%04d-" % i + b"x" * 60, partition=0)
        prod.flush(10)
    b.stop()

    part_dir = b.data_dir / f"{topic}-0"
    segments = sorted(part_dir.glob("*.log"))
    assert len(segments) >= 4, segments
    victim, after = segments[1], segments[2]     # sealed; the active one is the last
    data = bytearray(victim.read_bytes())
    pos, bad_offset, size = batches(bytes(data))[2]
    data[pos + size - 3] ^= 0x01                 # inside the last record's value
    victim.write_bytes(bytes(data))
    next_base = int(after.name.split(".")[0])

    b.start()
    deadline = time.monotonic() + 20
    pattern = re.compile(r"corrupt record batch.*" + re.escape(victim.name) + r".*position=%d" % pos)
    while not pattern.search(b.log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"no log line names {victim.name}:\n{b.log_tail(40)}"
        time.sleep(0.1)

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert re.search(r"^kastle_log_corrupt_segments_total 1$", metrics, re.M), \
        [l for l in metrics.splitlines() if "corrupt" in l]

    offsets, errors = read_until_error(b.bootstrap, topic)
    assert offsets == list(range(bad_offset)), (bad_offset, offsets[-5:])
    assert errors and errors[0].code() == CORRUPT_MESSAGE, [str(e) for e in errors]

    err, _, rlen = raw_fetch_v4(b.bootstrap, topic, 0, bad_offset, 0)
    assert (err, rlen <= 0) == (CORRUPT_MESSAGE, True), (err, rlen)
    err, _, rlen = raw_fetch_v4(b.bootstrap, topic, 0, bad_offset - 1, 0)
    assert err == 0 and rlen > 0, (err, rlen)

    # the segments after it, and other partitions, are unaffected
    recs = ck_consume(b.bootstrap, topic, 1, {0: RECORDS}, start_offsets={0: next_base}, timeout=30)
    assert [r.offset for r in recs] == list(range(next_base, RECORDS))
    recs = ck_consume(b.bootstrap, other, 1, {0: RECORDS}, timeout=30)
    assert [r.offset for r in recs] == list(range(RECORDS))
