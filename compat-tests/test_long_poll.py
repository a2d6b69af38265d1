"""Fetch long poll: a Fetch parked on an empty partition (max wait 5 s) must be woken
by the append, not by its timeout."""
import threading
import time

import pytest

from compat_lib import ck_consumer, ck_create_topic, ck_producer, kp_consumer, unique_topic

MAX_WAIT_MS = 5000
PRODUCE_AFTER = 1.0
MAX_LATENCY = 1.5   # without a wake-up the message would arrive ~4 s after it was produced


def produce_later(bootstrap, topic, delay, stamp):
    prod = ck_producer(bootstrap)
    prod.list_topics(topic=topic, timeout=5)  # connect + metadata up front

    def run():
        time.sleep(delay)  # the scenario itself: the consumer is parked in a Fetch by now
        stamp["produced_at"] = time.monotonic()
        prod.produce(topic, b"wake-up", key=b"k", partition=0)
        prod.flush(10)
        stamp["acked_at"] = time.monotonic()
    th = threading.Thread(target=run, daemon=True)
    return th


def _kp_wait(bootstrap, topic, deadline):
    from kafka import TopicPartition
    c = kp_consumer(bootstrap, fetch_max_wait_ms=MAX_WAIT_MS, fetch_min_bytes=1,
                    request_timeout_ms=MAX_WAIT_MS + 10_000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 0)
    try:
        c.poll(timeout_ms=100)  # connect, first Fetch goes out
        yield
        while time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=100).values():
                for r in recs:
                    return_value = (time.monotonic(), r.value)
                    yield return_value
                    return
    finally:
        c.close()


def _ck_wait(bootstrap, topic, deadline):
    from confluent_kafka import TopicPartition
    c = ck_consumer(bootstrap, **{"fetch.wait.max.ms": MAX_WAIT_MS, "fetch.min.bytes": 1,
                                  "enable.partition.eof": False})
    c.assign([TopicPartition(topic, 0, 0)])
    try:
        c.poll(0.1)
        yield
        while time.monotonic() < deadline:
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                yield (time.monotonic(), m.value())
                return
    finally:
        c.close()


@pytest.mark.compat("{client}", "fetch")
@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_fetch_long_poll_woken_by_append(broker, client):
    topic = unique_topic("longpoll")
    ck_create_topic(broker.bootstrap, topic, 1)
    stamp = {}
    th = produce_later(broker.bootstrap, topic, PRODUCE_AFTER, stamp)
    deadline = time.monotonic() + PRODUCE_AFTER + 2 * MAX_WAIT_MS / 1000 + 2
    gen = (_kp_wait if client == "kafka-python" else _ck_wait)(broker.bootstrap, topic, deadline)
    next(gen)            # consumer assigned and polling
    th.start()
    got = next(gen, None)
    gen.close()
    th.join(15)
    assert got is not None, f"{client}: message never arrived (producer stamps: {stamp})"
    received_at, value = got
    assert value == b"wake-up"
    assert "produced_at" in stamp, "message arrived before it was produced?!"
    latency = received_at - stamp["produced_at"]
    assert latency < MAX_LATENCY, (
        f"{client}: message arrived {latency:.2f}s after produce (fetch.wait.max.ms={MAX_WAIT_MS}); "
        "the parked Fetch was not woken by the append")


def test_fetch_waits_on_empty_partition(broker):
    """The other half of long polling: with nothing to return, a Fetch is held for
    max_wait_ms (not answered immediately, which would make clients busy-poll)."""
    from compat_lib import raw_fetch_v4
    topic = unique_topic("park")
    ck_create_topic(broker.bootstrap, topic, 1)
    t0 = time.monotonic()
    err, hw, rlen = raw_fetch_v4(broker.bootstrap, topic, 0, 0, max_wait_ms=1000)
    elapsed = time.monotonic() - t0
    assert (err, hw) == (0, 0)
    assert rlen <= 0, f"empty partition returned {rlen} bytes of records"
    assert 0.9 <= elapsed < 3.0, f"empty Fetch with max_wait_ms=1000 answered after {elapsed:.2f}s"
    # and with data available it is answered at once
    ck_produce_one(broker.bootstrap, topic)
    t0 = time.monotonic()
    err, hw, rlen = raw_fetch_v4(broker.bootstrap, topic, 0, 0, max_wait_ms=5000)
    elapsed = time.monotonic() - t0
    assert (err, hw) == (0, 1) and rlen > 0, (err, hw, rlen)
    assert elapsed < 1.0, f"Fetch with data available took {elapsed:.2f}s"


def ck_produce_one(bootstrap, topic):
    prod = ck_producer(bootstrap)
    prod.produce(topic, b"one", partition=0)
    assert prod.flush(10) == 0
