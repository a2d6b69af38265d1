"""Compressed batches with real clients.

* Every codec (gzip, snappy, lz4, zstd) produced by confluent-kafka, kafka-python and
  kcat, consumed by a *different* client: keys, values (incl. NULL) and headers intact.
  A raw Fetch checks that the broker stored the batches in the producer's codec
  (topic ``compression.type=producer``, the default) with valid CRCs.
* kafkajs' only built-in codec, gzip, produced by kafkajs and read by kafkajs and
  confluent-kafka.
* A topic with ``compression.type=zstd`` fed gzip batches by confluent-kafka: both
  confluent-kafka and kafka-python read them back intact, and the stored batches are
  zstd (raw Fetch).

One broker serves the whole codec matrix (each case has its own topic) to keep the
file's runtime short.
"""
import json

import pytest

from conftest import Broker
from compat_lib import (CODEC_IDS, Msg, ck_admin, ck_consume, ck_produce, kcat, kp_consume,
                        kp_produce, make_messages, raw_fetch_batches, unique_topic, verify)

N = 300
CODECS = ["gzip", "snappy", "lz4", "zstd"]
# producer -> a different consumer
PAIRS = {"confluent-kafka": "kafka-python", "kafka-python": "confluent-kafka",
         "kcat": "confluent-kafka"}


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("compression"), name="kastle-compression")
    b.start()
    yield b
    if b.alive():
        try:
            b.stop(check=False)
        except Exception:  # noqa: BLE001 - teardown must not mask test result
            b.kill()


@pytest.fixture
def cbroker(request, shared_broker):
    # Let conftest attach the broker log to a failing test's report.
    request.node._kastle_brokers = [shared_broker]
    assert shared_broker.alive(), "shared broker died:\n" + shared_broker.log_tail()
    return shared_broker


def create_topic(bootstrap, topic, config=None, partitions=1):
    from confluent_kafka.admin import NewTopic
    a = ck_admin(bootstrap)
    nt = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})
    a.create_topics([nt], operation_timeout=15, request_timeout=15)[topic].result(timeout=15)


def kcat_produce(bootstrap, topic, msgs, codec):
    lines = b"".join(m.key + b"\t" + m.value + b"\n" for m in msgs)
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", "-K", "\t", "-z", codec,
         "-H", "src=kcat", "-H", f"codec={codec}", "-X", "acks=all", "-X", "linger.ms=20",
         input_bytes=lines, timeout=60)


def consume(client, bootstrap, topic, n):
    if client == "kafka-python":
        return kp_consume(bootstrap, topic, 1, {0: n}, timeout=30)
    if client == "confluent-kafka":
        return ck_consume(bootstrap, topic, 1, {0: n}, timeout=30)
    raise AssertionError(client)


def assert_stored(bootstrap, topic, codec_id, n, what, small_may_be_plain=False):
    """Every stored batch carries `codec_id`. With `small_may_be_plain`, a
    batch of one or two records may be uncompressed: librdkafka sends a
    message set uncompressed when the codec does not make it smaller, which
    happens to a lone short record (lz4's frame header alone is 15 bytes)."""
    batches = raw_fetch_batches(bootstrap, topic)
    assert batches, f"{what}: no batches stored"
    assert sum(b.records_count for b in batches) == n, (
        f"{what}: {sum(b.records_count for b in batches)} records stored, want {n}")
    assert any(b.codec == codec_id for b in batches), f"{what}: no batch with codec {codec_id}"
    bad_codec = [(b.base_offset, b.codec) for b in batches
                 if b.codec != codec_id
                 and not (small_may_be_plain and b.codec == 0 and b.records_count <= 2)]
    assert not bad_codec, f"{what}: batches not stored with codec {codec_id}: {bad_codec[:10]}"
    bad_crc = [b.base_offset for b in batches if b.crc_ok is False]
    assert not bad_crc, f"{what}: batches with a bad CRC-32C: {bad_crc[:10]}"
    return batches


@pytest.mark.compat("{producer}", "{codec}")
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", list(PAIRS))
def test_codec_cross_client(cbroker, producer, codec):
    bootstrap = cbroker.bootstrap
    topic = unique_topic(f"cmp-{producer[:5]}-{codec}")
    create_topic(bootstrap, topic)
    consumer = PAIRS[producer]

    if producer == "kcat":
        # kcat: keys and values per line, static headers, CreateTime = now.
        headers = [("src", b"kcat"), ("codec", codec.encode())]
        msgs = [Msg(i, 0, f"key-{i}".encode(), f"kcat-value-{i}-".encode() + b"z" * (i % 97),
                    headers, None) for i in range(N)]
        kcat_produce(bootstrap, topic, msgs, codec)

        def idx_of(r):
            try:
                return int(r.value.split(b"-")[2])
            except Exception:  # noqa: BLE001
                return None
        recs = consume(consumer, bootstrap, topic, N)
        verify(recs, msgs, check_timestamp=False, idx_of=idx_of)
    else:
        msgs = make_messages(N, f"{producer}-{codec}", 1)
        if producer == "confluent-kafka":
            ck_produce(bootstrap, topic, msgs, **{"compression.type": codec, "linger.ms": 20})
        else:
            kp_produce(bootstrap, topic, msgs, compression_type=codec, linger_ms=20)
        recs = consume(consumer, bootstrap, topic, N)
        verify(recs, msgs)

    batches = assert_stored(bootstrap, topic, CODEC_IDS[codec], N,
                            f"{producer} {codec} (compression.type=producer)",
                            small_may_be_plain=producer in ("kcat", "confluent-kafka"))
    # Batching really happened, so the codec covered several records per batch.
    assert len(batches) < N, f"{producer} {codec}: {len(batches)} batches for {N} records"


@pytest.mark.compat("confluent-kafka", "gzip", "zstd")
@pytest.mark.compat("kafka-python", "lz4", "zstd")
def test_zstd_topic_recompresses_gzip_from_confluent(cbroker):
    bootstrap = cbroker.bootstrap
    topic = unique_topic("cmp-zstd-topic")
    create_topic(bootstrap, topic, {"compression.type": "zstd"})

    msgs = make_messages(N, "ck-gzip-into-zstd", 1)
    ck_produce(bootstrap, topic, msgs, **{"compression.type": "gzip", "linger.ms": 20})
    # A second producer, kafka-python with lz4, appends to the same topic.
    more = make_messages(N // 2, "kp-lz4-into-zstd", 1, start=N)
    kp_produce(bootstrap, topic, more, compression_type="lz4", linger_ms=20)
    want = msgs + more

    assert_stored(bootstrap, topic, CODEC_IDS["zstd"], len(want), "zstd topic")
    for client in ("confluent-kafka", "kafka-python"):
        recs = consume(client, bootstrap, topic, len(want))
        verify(recs, want)


def test_uncompressed_topic_stores_plain_batches(cbroker):
    """compression.type=uncompressed: snappy batches from kafka-python come back
    uncompressed and intact through confluent-kafka and kcat."""
    bootstrap = cbroker.bootstrap
    topic = unique_topic("cmp-plain-topic")
    create_topic(bootstrap, topic, {"compression.type": "uncompressed"})
    msgs = make_messages(N, "kp-snappy-into-plain", 1)
    kp_produce(bootstrap, topic, msgs, compression_type="snappy", linger_ms=20)
    assert_stored(bootstrap, topic, CODEC_IDS["none"], N, "uncompressed topic")
    verify(consume("confluent-kafka", bootstrap, topic, N), msgs)
    p = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q",
             "-X", "enable.partition.eof=true", timeout=60)
    got = [json.loads(ln) for ln in p.stdout.decode().splitlines() if ln.strip()]
    assert [g["offset"] for g in got] == list(range(N))
    for g, m in zip(got, msgs):
        assert (g.get("key") or "").encode() == (m.key or b""), (g, m)


# ---------------------------------------------------------------------------
# a hand-built lz4 batch whose frame lacks its EndMark
# ---------------------------------------------------------------------------

def _zz(n: int) -> bytes:
    """Zig-zag varint."""
    u = (n << 1) ^ (n >> 63)
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def _v2_batch(codec: int, payload: bytes, count: int, ts: int) -> bytes:
    import struct
    from compat_lib import _crc32c
    tail = struct.pack(">hiqqqhii", codec, count - 1, ts, ts, -1, -1, -1, count) + payload
    crc = _crc32c(tail)
    return struct.pack(">qiib", 0, 4 + 1 + 4 + len(tail), -1, 2) + struct.pack(">I", crc) + tail


def _raw_produce_v3(bootstrap, topic, batch: bytes) -> int:
    import struct
    from compat_lib import _kstr, raw_request
    body = struct.pack(">hhi", -1, -1, 10_000)  # null transactional id, acks=all, timeout
    body += struct.pack(">i", 1) + _kstr(topic) + struct.pack(">i", 1)
    body += struct.pack(">ii", 0, len(batch)) + batch
    r = raw_request(bootstrap, 0, 3, body)
    pos = 4
    (tlen,) = struct.unpack_from(">h", r, pos); pos += 2 + tlen
    pos += 4
    _, err, base = struct.unpack_from(">ihq", r, pos)
    return err


def test_lz4_frame_without_endmark_is_refused(cbroker):
    """Kafka's Lz4BlockInputStream fails with "Stream ended prematurely" when the
    4-byte EndMark is missing (and so do kafka-python's lz4.frame and librdkafka's
    LZ4F decoder), so the broker must refuse such a batch (INVALID_RECORD) rather
    than store something consumers cannot read."""
    import lz4.frame
    from compat_lib import now_ms
    bootstrap = cbroker.bootstrap
    topic = unique_topic("cmp-lz4-endmark")
    create_topic(bootstrap, topic)
    ts = now_ms()
    recs = b""
    for i in range(5):
        key, val = f"k{i}".encode(), f"value-{i}".encode() * 10
        body = b"\x00" + _zz(0) + _zz(i) + _zz(len(key)) + key + _zz(len(val)) + val + _zz(0)
        recs += _zz(len(body)) + body
    frame = lz4.frame.compress(recs, block_linked=False, block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    assert frame[-4:] == b"\x00\x00\x00\x00"
    # Control: the intact frame is accepted.
    assert _raw_produce_v3(bootstrap, topic, _v2_batch(3, frame, 5, ts)) == 0
    err = _raw_produce_v3(bootstrap, topic, _v2_batch(3, frame[:-4], 5, ts))
    if err == 0:
        # Show what a consumer makes of the stored batch.
        try:
            got = kp_consume(bootstrap, topic, 1, {0: 10}, timeout=10)
            consumer = f"kafka-python read {len(got)} records"
        except Exception as e:  # noqa: BLE001
            consumer = f"kafka-python failed: {type(e).__name__}: {str(e)[:300]}"
        try:
            got = ck_consume(bootstrap, topic, 1, {0: 10}, timeout=8)
            consumer += f"; confluent-kafka read {len(got)} records"
        except Exception as e:  # noqa: BLE001
            consumer += f"; confluent-kafka failed: {str(e)[:400]}"
        pytest.fail("lz4 batch whose frame lacks its EndMark was accepted and stored "
                    f"(error_code 0); {consumer}")
    assert err == 87, f"missing lz4 EndMark: error {err}, want 87 INVALID_RECORD"


@pytest.mark.compat("kafkajs", "gzip")
def test_kafkajs_gzip(cbroker):
    """kafkajs' one built-in codec: gzip batches stored as gzip, read back intact by
    kafkajs itself and by confluent-kafka."""
    from compat_lib import kjs_consume, kjs_produce
    bootstrap = cbroker.bootstrap
    topic = unique_topic("cmp-kjs-gzip")
    create_topic(bootstrap, topic)
    msgs = make_messages(N, "kjs-gzip", 1)
    kjs_produce(bootstrap, topic, msgs, gzip=True)
    assert_stored(bootstrap, topic, CODEC_IDS["gzip"], N, "kafkajs gzip")
    verify(kjs_consume(bootstrap, topic, 1, {0: N})[0], msgs)
    verify(consume("confluent-kafka", bootstrap, topic, N), msgs)
