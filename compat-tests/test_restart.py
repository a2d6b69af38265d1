"""Graceful restart (SIGTERM) keeps data, topic metadata, offsets and the time index."""
import signal

from compat_lib import (ck_consumer, ck_create_topic, ck_produce, kp_admin, kp_consume, kp_consumer,
                        make_messages, per_partition_counts, scaled, unique_topic, verify)

PARTITIONS = 3


def check_list_offsets(bootstrap, topic, counts, msgs):
    """ListOffsets earliest/latest/by-timestamp through two clients."""
    from confluent_kafka import TopicPartition as CTP
    from kafka import TopicPartition

    c = ck_consumer(bootstrap)
    try:
        for p in range(PARTITIONS):
            wm = c.get_watermark_offsets(CTP(topic, p), timeout=10, cached=False)
            assert wm == (0, counts[p]), f"confluent watermarks p{p}: {wm} != (0, {counts[p]})"
        # offsets_for_times: the timestamp of a message -> its own offset
        p1 = [m for m in msgs if m.partition == 1]
        probe_off = len(p1) // 2
        probe = p1[probe_off]
        got = c.offsets_for_times([CTP(topic, 1, probe.timestamp)], timeout=10)
        assert got[0].offset == probe_off, f"confluent offsets_for_times({probe.timestamp}) -> {got[0].offset}, want {probe_off}"
    finally:
        c.close()

    k = kp_consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert k.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert k.end_offsets(tps) == {tp: counts[tp.partition] for tp in tps}
        first_ts = min(m.timestamp for m in msgs)
        last_ts = max(m.timestamp for m in msgs)
        oft = k.offsets_for_times({tp: first_ts - 1000 for tp in tps})
        assert {tp: (o.offset if o else None) for tp, o in oft.items()} == {tp: 0 for tp in tps}, oft
        oft = k.offsets_for_times({tps[0]: last_ts + 60_000})
        assert oft[tps[0]] is None, f"timestamp after the last message must give no offset, got {oft}"
        mid = [m for m in msgs if m.partition == 2]
        target = mid[len(mid) // 3]
        oft = k.offsets_for_times({tps[2]: target.timestamp})
        assert oft[tps[2]].offset == len(mid) // 3 and oft[tps[2]].timestamp == target.timestamp, oft
    finally:
        k.close()


def test_graceful_restart_keeps_data_and_offsets(broker):
    topic = unique_topic("restart")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    # a second, single-partition topic that receives no data: must also survive
    empty_topic = unique_topic("restart-empty")
    ck_create_topic(broker.bootstrap, empty_topic, 1)

    msgs = make_messages(scaled(6_000), "restart", PARTITIONS)
    ck_produce(broker.bootstrap, topic, msgs)
    counts = per_partition_counts(msgs)
    check_list_offsets(broker.bootstrap, topic, counts, msgs)

    rc = broker.stop()  # raises if SIGTERM does not stop it within 10 s
    assert rc in (0, -signal.SIGTERM, 143), f"unexpected exit code after SIGTERM: {rc}"
    broker.start()

    # metadata survived
    admin = kp_admin(broker.bootstrap)
    try:
        desc = {t["name"]: t for t in admin.describe_topics([topic, empty_topic])}
        assert len(desc[topic]["partitions"]) == PARTITIONS, desc[topic]
        assert desc[topic]["error_code"] == 0 and desc[empty_topic]["error_code"] == 0, desc
    finally:
        admin.close()

    verify(kp_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    check_list_offsets(broker.bootstrap, topic, counts, msgs)

    # offsets continue after restart
    more = make_messages(scaled(600), "restart", PARTITIONS, base_ts=msgs[0].timestamp, start=len(msgs))
    acks = ck_produce(broker.bootstrap, topic, more)
    first_new = {}
    for i, (p, off) in sorted(acks.items()):
        first_new.setdefault(p, off)
    assert first_new == counts, f"first offsets after restart {first_new} != previous end offsets {counts}"

    allmsgs = msgs + more
    all_counts = per_partition_counts(allmsgs)
    # and a second restart, now over a log that was reopened and appended to
    broker.restart()
    verify(kp_consume(broker.bootstrap, topic, PARTITIONS, all_counts), allmsgs)
    check_list_offsets(broker.bootstrap, topic, all_counts, allmsgs)

    from confluent_kafka import TopicPartition as CTP
    c = ck_consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(CTP(empty_topic, 0), timeout=10, cached=False) == (0, 0)
    finally:
        c.close()
