"""Produce/Fetch edge cases real clients hit: acks=0/1, compressed batches, large
records, consuming from the middle, out-of-range offsets."""
import pytest

from compat_lib import (ck_consume, ck_consumer, ck_create_topic, ck_produce, kp_consume, kp_produce,
                        make_messages, per_partition_counts, unique_topic, verify)


@pytest.mark.compat("{client}", "produce")
@pytest.mark.compat("confluent-kafka", "fetch")
@pytest.mark.parametrize("client,acks", [("kafka-python", 0), ("kafka-python", 1),
                                         ("confluent-kafka", "0"), ("confluent-kafka", "1")])
def test_acks_0_and_1(broker, client, acks):
    """acks=0 must get no response at all (a response would desync the client's
    correlation ids), acks=1 a normal one. Either way every message lands."""
    topic = unique_topic(f"acks{acks}")
    ck_create_topic(broker.bootstrap, topic, 2)
    msgs = make_messages(5_000, client, 2)
    if client == "kafka-python":
        kp_produce(broker.bootstrap, topic, msgs, acks=acks)
    else:
        acked = ck_produce(broker.bootstrap, topic, msgs, acks=acks)
        if acks == "1":
            assert sorted(off for p, off in acked.values() if p == 0) == list(range(2_500))
    # after the acks=0 producer is done, data shows up (poll with a deadline)
    verify(ck_consume(broker.bootstrap, topic, 2, per_partition_counts(msgs), timeout=30), msgs)


@pytest.mark.compat("confluent-kafka", "{codec}")
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches(broker, codec):
    """Compressed record batches are stored and served intact; offsets per record."""
    topic = unique_topic(codec)
    ck_create_topic(broker.bootstrap, topic, 2)
    msgs = make_messages(10_000, codec, 2)
    acks = ck_produce(broker.bootstrap, topic, msgs, **{"compression.type": codec, "linger.ms": 20})
    assert sorted(off for p, off in acks.values() if p == 1) == list(range(5_000)), \
        "each record of a compressed batch gets its own offset"
    verify(ck_consume(broker.bootstrap, topic, 2, per_partition_counts(msgs)), msgs)
    if codec == "gzip":  # kafka-python decompresses gzip without extra packages
        verify(kp_consume(broker.bootstrap, topic, 2, per_partition_counts(msgs)), msgs)


@pytest.mark.compat("confluent-kafka", "produce", "fetch")
@pytest.mark.compat("kafka-python", "fetch")
def test_large_records(broker):
    topic = unique_topic("large")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(8, "large", 1)
    for k, m in enumerate(msgs):
        m.value = bytes([65 + k]) * (900_000 if k % 2 else 300_000)  # under message.max.bytes (1 MB)
    ck_produce(broker.bootstrap, topic, msgs)
    verify(ck_consume(broker.bootstrap, topic, 1, {0: 8}), msgs)
    verify(kp_consume(broker.bootstrap, topic, 1, {0: 8}), msgs)


@pytest.mark.compat("confluent-kafka", "produce")
def test_record_too_large_rejected(broker):
    from confluent_kafka import KafkaError
    topic = unique_topic("toolarge")
    ck_create_topic(broker.bootstrap, topic, 1)
    from compat_lib import ck_producer
    prod = ck_producer(broker.bootstrap, **{"message.max.bytes": 5_000_000, "message.timeout.ms": 10_000})
    errs = []
    prod.produce(topic, b"z" * 2_000_000, partition=0, on_delivery=lambda e, m: errs.append(e))
    prod.flush(15)
    assert len(errs) == 1 and errs[0] is not None, errs
    assert errs[0].code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE), errs[0]


@pytest.mark.compat("confluent-kafka", "fetch")
@pytest.mark.compat("kafka-python", "fetch")
def test_consume_from_middle_and_out_of_range(broker):
    from confluent_kafka import TopicPartition
    topic = unique_topic("seek")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(2_000, "seek", 1)
    ck_produce(broker.bootstrap, topic, msgs)
    # from the middle: exactly the tail, starting at the requested offset
    recs = ck_consume(broker.bootstrap, topic, 1, {0: 2_000}, start_offsets={0: 1_234})
    verify(recs, msgs[1_234:], contiguous_from=1_234)
    recs = kp_consume(broker.bootstrap, topic, 1, {0: 2_000}, start_offsets={0: 1_999})
    verify(recs, msgs[1_999:], contiguous_from=1_999)
    # beyond the end: OFFSET_OUT_OF_RANGE -> auto.offset.reset=earliest restarts at 0
    recs = ck_consume(broker.bootstrap, topic, 1, {0: 2_000}, start_offsets={0: 1_000_000})
    verify(recs, msgs)
    # ... and with auto.offset.reset=error the client surfaces the error
    c = ck_consumer(broker.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 1_000_000)])
        import time
        deadline = time.monotonic() + 15
        err = None
        while time.monotonic() < deadline and err is None:
            m = c.poll(0.5)
            if m is not None and m.error() is not None and m.error().code() != -191:  # not EOF
                err = m.error()
        assert err is not None, "no error for an out-of-range fetch offset"
        assert "out of range" in str(err).lower() or err.code() == 1, err
    finally:
        c.close()
