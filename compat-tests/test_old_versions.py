"""Old protocol versions that Kafka 4 still accepts, sent by a real client.

KIP-896 (Kafka 4.0) removed Produce v0-2 and Fetch v0-3 but kept Metadata v0. The
broker sits behind compat_lib.VersionRecorder, which records what each client
really sent, so the versions below are observed, not assumed. (sarama's old-level
run is in test_sarama.py; librdkafka always negotiates with ApiVersions, its
broker.version.fallback only applies to brokers older than 0.10.)
"""
import pytest

from compat_lib import (ck_create_topic, kp_consume, kp_consumer, kp_produce, make_messages,
                        per_partition_counts, unique_topic, verify)


@pytest.mark.compat("kafka-python", "old-versions")
def test_kafka_python_pinned_to_0_11(recorded_broker):
    """api_version=(0, 11) clamps kafka-python to Kafka 0.11's ranges: Produce v3
    (the oldest Kafka 4 takes), Fetch v5, Metadata v4; api_version=(0, 9) lists
    topics with Metadata v0 and no ApiVersions at all."""
    b, rec, bootstrap = recorded_broker
    topic = unique_topic("kp-old")
    ck_create_topic(b.bootstrap, topic, 2)
    msgs = make_messages(2_000, "kp-old", 2)
    kp_produce(bootstrap, topic, msgs, api_version=(0, 11), client_id="compat-kp011-producer")
    verify(kp_consume(bootstrap, topic, 2, per_partition_counts(msgs), api_version=(0, 11),
                      client_id="compat-kp011-consumer"), msgs)

    c = kp_consumer(bootstrap, api_version=(0, 9), client_id="compat-kp09-meta")
    try:
        assert topic in c.topics()
        assert c.partitions_for_topic(topic) == {0, 1}
    finally:
        c.close()

    seen = rec.summary("compat-kp")
    print("requests seen:", seen)
    assert rec.versions(0, "compat-kp011") == [3], seen      # Produce
    assert rec.versions(1, "compat-kp011") == [5], seen      # Fetch
    assert rec.versions(3, "compat-kp011") == [4], seen      # Metadata
    assert rec.versions(3, "compat-kp09") == [0], seen       # Metadata v0
    assert rec.versions(18, "compat-kp09") == [], seen       # no ApiVersions
