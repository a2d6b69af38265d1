"""aiokafka (asyncio Python client) against kastle: produce/consume round trip, a
two-member consumer group (split, commit, resume), the idempotent producer, every
codec aiokafka ships (gzip from the stdlib, snappy/lz4/zstd through cramjam),
transactions (commit, abort, read_committed, send_offsets_to_transaction) and
AIOKafkaAdminClient."""
import asyncio
import time

import pytest

from compat_lib import (CODEC_IDS, Rec, assert_one_idempotent_producer, ck_consume,
                        ck_create_topic, ck_produce, make_messages, per_partition_counts,
                        raw_fetch_batches, unique_topic, verify)

PARTITIONS = 3
TIMEOUT = 60.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 180))


def producer(bootstrap, **kw):
    from aiokafka import AIOKafkaProducer
    cfg = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
               request_timeout_ms=15_000, client_id="compat-aiokafka-producer")
    cfg.update(kw)
    return AIOKafkaProducer(**cfg)


def consumer(bootstrap, *topics, **kw):
    from aiokafka import AIOKafkaConsumer
    cfg = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
               auto_offset_reset="earliest", client_id="compat-aiokafka-consumer",
               fetch_max_wait_ms=200, request_timeout_ms=15_000)
    cfg.update(kw)
    return AIOKafkaConsumer(*topics, **cfg)


async def ak_produce(bootstrap, topic, msgs, **kw):
    """Send all messages (explicit partition, CreateTime, headers); {idx: (p, offset)}."""
    prod = producer(bootstrap, **kw)
    await prod.start()
    try:
        futs = [(m.idx, await prod.send(topic, value=m.value, key=m.key, partition=m.partition,
                                        timestamp_ms=m.timestamp, headers=m.headers))
                for m in msgs]
        acks = {}
        for i, f in futs:
            md = await f
            acks[i] = (md.partition, md.offset)
        return acks
    finally:
        await prod.stop()


def to_rec(r) -> Rec:
    return Rec(r.partition, r.offset, r.key, r.value, [(k, v) for k, v in (r.headers or ())],
               r.timestamp, {0: "create", 1: "append"}.get(r.timestamp_type))


async def ak_consume(bootstrap, topic, partitions, counts, **kw):
    """Read by assignment from the beginning until every partition's position
    reaches counts[p]."""
    from aiokafka import TopicPartition
    cons = consumer(bootstrap, **kw)
    await cons.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        cons.assign(tps)
        await cons.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + TIMEOUT

        async def done():
            for tp in tps:
                if await cons.position(tp) < counts.get(tp.partition, 0):
                    return False
            return True
        while not await done():
            assert time.monotonic() < deadline, f"aiokafka consumer timed out with {len(out)} records"
            batch = await cons.getmany(timeout_ms=500, max_records=10_000)
            for recs in batch.values():
                out.extend(to_rec(r) for r in recs)
        return out
    finally:
        await cons.stop()


@pytest.mark.compat("aiokafka", "produce", "fetch")
def test_aiokafka_roundtrip(broker):
    topic = unique_topic("ak")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(5_000, "aiokafka", PARTITIONS)
    counts = per_partition_counts(msgs)
    acks = run(ak_produce(broker.bootstrap, topic, msgs))
    for p, n in counts.items():
        assert sorted(o for q, o in acks.values() if q == p) == list(range(n)), f"partition {p} acks"
    verify(run(ak_consume(broker.bootstrap, topic, PARTITIONS, counts)), msgs)
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    # and what another client wrote
    topic2 = unique_topic("ck-to-ak")
    ck_create_topic(broker.bootstrap, topic2, PARTITIONS)
    msgs2 = make_messages(1_000, "confluent-kafka", PARTITIONS)
    ck_produce(broker.bootstrap, topic2, msgs2)
    verify(run(ak_consume(broker.bootstrap, topic2, PARTITIONS, per_partition_counts(msgs2))), msgs2)


@pytest.mark.compat("aiokafka", "idempotence")
def test_aiokafka_idempotent_producer(broker):
    topic = unique_topic("ak-idem")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(3_000, "ak-idem", PARTITIONS)
    counts = per_partition_counts(msgs)
    run(ak_produce(broker.bootstrap, topic, msgs, enable_idempotence=True))
    verify(ck_consume(broker.bootstrap, topic, PARTITIONS, counts), msgs)
    assert_one_idempotent_producer(broker.bootstrap, topic, counts, "aiokafka")


@pytest.mark.compat("aiokafka", "{codec}")
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_aiokafka_compression(broker, codec):
    topic = unique_topic(f"ak-{codec}")
    ck_create_topic(broker.bootstrap, topic, 1)
    msgs = make_messages(500, f"ak-{codec}", 1)
    run(ak_produce(broker.bootstrap, topic, msgs, compression_type=codec, linger_ms=20))
    verify(run(ak_consume(broker.bootstrap, topic, 1, {0: len(msgs)})), msgs)
    verify(ck_consume(broker.bootstrap, topic, 1, {0: len(msgs)}), msgs)
    batches = raw_fetch_batches(broker.bootstrap, topic)
    assert batches and all(b.codec == CODEC_IDS[codec] for b in batches), \
        f"stored batches not all {codec}: {[b.codec for b in batches]}"
    assert all(b.crc_ok for b in batches), "a stored batch has a bad CRC"


GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000",
                   "offsets.topic.num.partitions": "5"}
GROUP_PARTITIONS = 4
GROUP_N = 400


def committed(bootstrap, group, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        c.close()


def produce_values(bootstrap, topic, start, n, partitions):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, value=f"v{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


class GroupMember:
    """An AIOKafkaConsumer in a group, polling in a task and committing after
    every batch."""

    def __init__(self, bootstrap, topic, group, name):
        self.cons = consumer(bootstrap, topic, group_id=group, client_id=name,
                             session_timeout_ms=6_000, heartbeat_interval_ms=300)
        self.values, self.task = [], None

    async def start(self):
        await self.cons.start()
        self.task = asyncio.create_task(self._loop())

    async def _loop(self):
        while True:
            batch = await self.cons.getmany(timeout_ms=100)
            got = False
            for recs in batch.values():
                self.values.extend(r.value.decode() for r in recs)
                got = got or bool(recs)
            if got:
                await self.cons.commit()

    def assignment(self):
        return {tp.partition for tp in self.cons.assignment()}

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        await self.cons.stop()


async def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.compat("aiokafka", "groups")
def test_aiokafka_group_split_commit_resume(broker_factory):
    b = broker_factory(GROUP_OVERRIDES)
    bs = b.bootstrap
    topic, group = unique_topic("ak-grp"), unique_topic("g")
    ck_create_topic(bs, topic, GROUP_PARTITIONS)
    per_part = GROUP_N // GROUP_PARTITIONS

    async def first_pass():
        members = [GroupMember(bs, topic, group, f"ak-{i}") for i in range(2)]
        for m in members:
            await m.start()
        try:
            def split():
                a, c = (m.assignment() for m in members)
                return a and c and not (a & c) and (a | c) == set(range(GROUP_PARTITIONS))
            await wait_until(split, 60, "two aiokafka members splitting the partitions")
            await asyncio.to_thread(produce_values, bs, topic, 0, GROUP_N, GROUP_PARTITIONS)
            await wait_until(lambda: sum(len(m.values) for m in members) >= GROUP_N, 60, "all messages")
            await asyncio.sleep(0.3)
        finally:
            for m in members:
                await m.stop()
        return members

    members = run(first_pass())
    vals = [v for m in members for v in m.values]
    assert sorted(vals) == sorted(f"v{i}" for i in range(GROUP_N)), \
        f"{len(vals)} records, {len(set(vals))} distinct"
    assert all(m.values for m in members), "both members consumed"
    assert committed(bs, group, topic, GROUP_PARTITIONS) == {p: per_part for p in range(GROUP_PARTITIONS)}

    produce_values(bs, topic, GROUP_N, GROUP_N, GROUP_PARTITIONS)

    async def second_pass():
        m = GroupMember(bs, topic, group, "ak-late")
        await m.start()
        try:
            await wait_until(lambda: len(m.values) >= GROUP_N, 60, "the resumed member")
            await asyncio.sleep(0.5)
        finally:
            await m.stop()
        return m.values

    late = run(second_pass())
    assert sorted(late) == sorted(f"v{i}" for i in range(GROUP_N, 2 * GROUP_N)), \
        "resumed exactly after the committed offsets"


TXN_OVERRIDES = {"transaction.state.log.num.partitions": "5", "offsets.topic.num.partitions": "5",
                 "group.initial.rebalance.delay.ms": "0"}


@pytest.mark.compat("aiokafka", "transactions")
def test_aiokafka_transactions(broker_factory):
    b = broker_factory(TXN_OVERRIDES)
    bs = b.bootstrap
    out, src, dst = unique_topic("ak-txn"), unique_topic("ak-src"), unique_topic("ak-dst")
    for t in (out, src, dst):
        ck_create_topic(bs, t, 2)

    async def commit_and_abort():
        prod = producer(bs, transactional_id=unique_topic("ak-tid"))
        await prod.start()
        try:
            async with prod.transaction():
                for i in range(10):
                    await prod.send(out, f"c1-{i}".encode(), partition=i % 2)
            await prod.begin_transaction()
            for i in range(10):
                await prod.send(out, f"ab-{i}".encode(), partition=i % 2)
            await prod.abort_transaction()
            async with prod.transaction():
                for i in range(10):
                    await prod.send(out, f"c2-{i}".encode(), partition=i % 2)
        finally:
            await prod.stop()

    async def read_all(topic, isolation):
        # positions: 10 + 10 + 10 records + 3 markers per partition = 18
        recs = await ak_consume(bs, topic, 2, {0: 18, 1: 18}, isolation_level=isolation)
        return sorted(r.value.decode() for r in recs)

    run(commit_and_abort())
    committed_vals = sorted([f"c1-{i}" for i in range(10)] + [f"c2-{i}" for i in range(10)])
    assert run(read_all(out, "read_committed")) == committed_vals
    assert run(read_all(out, "read_uncommitted")) == sorted(committed_vals + [f"ab-{i}" for i in range(10)])

    # consume-transform-produce: offsets committed inside the transaction
    produce_values(bs, src, 0, 100, 2)
    group = unique_topic("ak-ctp")

    async def transform():
        cons = consumer(bs, src, group_id=group, isolation_level="read_committed",
                        client_id="compat-aiokafka-ctp")
        prod = producer(bs, transactional_id=unique_topic("ak-ctp-tid"))
        await cons.start()
        await prod.start()
        try:
            seen = 0
            deadline = time.monotonic() + TIMEOUT
            while seen < 100:
                assert time.monotonic() < deadline, f"transform read only {seen} of 100"
                batch = await cons.getmany(timeout_ms=500)
                if not batch:
                    continue
                async with prod.transaction():
                    offsets = {}
                    for tp, recs in batch.items():
                        for r in recs:
                            await prod.send(dst, r.value.upper(), partition=tp.partition)
                            seen += 1
                        offsets[tp] = recs[-1].offset + 1
                    await prod.send_offsets_to_transaction(offsets, group)
        finally:
            await prod.stop()
            await cons.stop()

    run(transform())
    assert committed(bs, group, src, 2) == {0: 50, 1: 50}, "offsets committed with the transaction"
    dst_recs = ck_consume(bs, dst, 2, **{"isolation.level": "read_committed"})
    dst_vals = sorted(r.value.decode() for r in dst_recs)
    assert dst_vals == sorted(f"V{i}" for i in range(100)), dst_vals[:10]


@pytest.mark.compat("aiokafka", "admin")
def test_aiokafka_admin(broker):
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    topic = unique_topic("ak-adm")

    async def main():
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15_000)
        await admin.start()
        try:
            res = await admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "7200000"})])
            assert [e[1] for e in res.topic_errors] == [0], res
            res = await admin.create_topics([NewTopic(topic, 2, 1)])
            assert [e[1] for e in res.topic_errors] == [36], f"TOPIC_ALREADY_EXISTS expected: {res}"
            assert topic in await admin.list_topics()
            await admin.create_partitions({topic: NewPartitions(total_count=4)})
            [desc] = await admin.describe_topics([topic])
            assert desc["error_code"] == 0 and len(desc["partitions"]) == 4, desc
            [cfg] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = {}
            for resource in cfg.resources:
                assert resource[0] == 0, resource  # error code
                for entry in resource[4]:
                    entries[entry[0]] = entry[1]
            assert entries.get("retention.ms") == "7200000", entries
            assert entries.get("cleanup.policy") == "delete", entries
            res = await admin.delete_topics([topic])
            assert [e[1] for e in res.topic_error_codes] == [0], res
            deadline = time.monotonic() + 10
            while topic in await admin.list_topics():
                assert time.monotonic() < deadline, "deleted topic still listed"
                await asyncio.sleep(0.1)
        finally:
            await admin.close()

    run(main())
