"""librdkafka (confluent-kafka 2.16) on Kafka 4.x's protocols, against kastle and
against the session's real Apache Kafka 4.4 (the reference: a failure on both is
a client or test quirk, on kastle alone a kastle deviation).

* KIP-848: two ``group.protocol=consumer`` consumers of one group over a
  4-partition topic get disjoint assignments covering every partition, consume
  every record once with synchronous commits, the Admin client describes the
  group as a consumer-protocol group, and when one leaves the other is given
  its partitions and reads what was produced after.
* KIP-932: two ``ShareConsumer``s of one share group (``share.auto.offset.reset``
  earliest, a group config) share a 1-partition topic and every record is
  delivered once (implicit acknowledgement); in explicit mode records REJECTed
  are never delivered again while the RELEASEd ones are.
"""
import time
import uuid

import pytest
from confluent_kafka import (AcknowledgeType, Consumer, ConsumerGroupType, Producer, ShareConsumer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic, ResourceType)

TARGETS = ["kastle", "kafka"]


def _params(capability):
    return [pytest.param(t, marks=[pytest.mark.compat("confluent-kafka", capability)] if t == "kastle" else [])
            for t in TARGETS]


def _bootstrap(request, target):
    return request.getfixturevalue("broker" if target == "kastle" else "real_kafka").bootstrap


def _topic(bs, name, partitions):
    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    # Kafka learns of a new topic's leaders asynchronously
    deadline = time.time() + 20
    while True:
        md = a.list_topics(name, timeout=10).topics.get(name)
        if md is not None and md.error is None and len(md.partitions) == partitions and \
                all(p.leader >= 0 for p in md.partitions.values()):
            return a
        assert time.time() < deadline, f"{name}: no leaders"
        time.sleep(0.2)


def _produce(bs, topic, values, partitions=1):
    p = Producer({"bootstrap.servers": bs, "acks": "all"})
    for i, v in enumerate(values):
        p.produce(topic, value=v.encode(), partition=i % partitions)
    assert p.flush(30) == 0


@pytest.mark.parametrize("target", _params("consumer-protocol"))
def test_kip848_consumers(request, target):
    bs = _bootstrap(request, target)
    tag = uuid.uuid4().hex[:8]
    topic, group = f"rd848-{tag}", f"rd848-g-{tag}"
    admin = _topic(bs, topic, 4)
    _produce(bs, topic, [f"a{i}" for i in range(40)], partitions=4)
    conf = {"bootstrap.servers": bs, "group.id": group, "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    cs = [Consumer(dict(conf, **{"client.id": f"c{i}"})) for i in range(2)]
    try:
        for c in cs:
            c.subscribe([topic])
        # both members until each holds a share of the partitions
        deadline = time.time() + 60
        got = {0: [], 1: []}
        while time.time() < deadline:
            for i, c in enumerate(cs):
                m = c.poll(0.2)
                if m is not None and m.error() is None:
                    got[i].append(m.value().decode())
                    c.commit(message=m, asynchronous=False)
            owned = [{tp.partition for tp in c.assignment()} for c in cs]
            if all(owned) and sum(len(v) for v in got.values()) == 40:
                break
        owned = [{tp.partition for tp in c.assignment()} for c in cs]
        assert owned[0] and owned[1] and not owned[0] & owned[1], owned
        assert owned[0] | owned[1] == {0, 1, 2, 3}, owned
        values = got[0] + got[1]
        assert sorted(values) == sorted(f"a{i}" for i in range(40)), got  # each once
        d = admin.describe_consumer_groups([group])[group].result(30)
        assert d.type == ConsumerGroupType.CONSUMER, d
        assert len(d.members) == 2, d
        # one leaves: the other is given every partition and reads the rest
        cs[1].close()
        _produce(bs, topic, [f"b{i}" for i in range(8)], partitions=4)
        rest = []
        deadline = time.time() + 60
        while len(rest) < 8 and time.time() < deadline:
            m = cs[0].poll(0.2)
            if m is not None and m.error() is None:
                rest.append(m.value().decode())
                cs[0].commit(message=m, asynchronous=False)
        assert sorted(rest) == sorted(f"b{i}" for i in range(8)), rest
        assert {tp.partition for tp in cs[0].assignment()} == {0, 1, 2, 3}
        committed = cs[0].committed([TopicPartition(topic, p) for p in range(4)], timeout=30)
        assert sum(tp.offset for tp in committed) == 48, committed
    finally:
        for c in cs:
            try:
                c.close()
            except RuntimeError:
                pass  # already closed


def _share_group(bs, group):
    """share.auto.offset.reset=earliest for the share group (a group config)."""
    a = AdminClient({"bootstrap.servers": bs})
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([res]).values():
        f.result(30)


def _share_poll(consumers, want, timeout=60, on_message=None):
    got = {i: [] for i in range(len(consumers))}
    deadline = time.time() + timeout
    while sum(len(v) for v in got.values()) < want and time.time() < deadline:
        for i, c in enumerate(consumers):
            for m in c.poll(0.5):
                if m.error() is None:
                    got[i].append(m.value().decode())
                    if on_message:
                        on_message(c, m)
            if on_message:
                c.commit_sync()
    return got


@pytest.mark.parametrize("target", _params("share-groups"))
def test_share_consumers(request, target):
    bs = _bootstrap(request, target)
    tag = uuid.uuid4().hex[:8]
    topic, group, xgroup = f"rdshare-{tag}", f"rdshare-g-{tag}", f"rdshare-x-{tag}"
    _topic(bs, topic, 1)
    _share_group(bs, group)
    _share_group(bs, xgroup)
    n = 30
    _produce(bs, topic, [f"s{i}" for i in range(n)])
    conf = {"bootstrap.servers": bs, "group.id": group}
    cs = [ShareConsumer(dict(conf, **{"client.id": f"s{i}"})) for i in range(2)]
    try:
        for c in cs:
            c.subscribe([topic])
        got = _share_poll(cs, n)
        values = got[0] + got[1]
        assert sorted(values) == sorted(f"s{i}" for i in range(n)), got  # each once
        # nothing more comes (every record was accepted on the next poll)
        for c in cs:
            c.commit_sync()
        assert not any(_share_poll(cs, 1, timeout=3).values())
    finally:
        for c in cs:
            c.close()

    # explicit: REJECT the first five, RELEASE the next five once, ACCEPT the rest
    released = set()

    def ack(c, m):
        i = int(m.value().decode()[1:])
        if i < 5:
            c.acknowledge(m, AcknowledgeType.REJECT)
        elif i < 10 and i not in released:
            released.add(i)
            c.acknowledge(m, AcknowledgeType.RELEASE)
        else:
            c.acknowledge(m, AcknowledgeType.ACCEPT)

    x = ShareConsumer({"bootstrap.servers": bs, "group.id": xgroup,
                       "share.acknowledgement.mode": "explicit"})
    try:
        x.subscribe([topic])
        got = _share_poll([x], n + 5, on_message=ack)[0]
        assert sorted(got) == sorted([f"s{i}" for i in range(n)] + [f"s{i}" for i in range(5, 10)]), got
        extra = _share_poll([x], 1, timeout=3, on_message=ack)[0]
        assert extra == [], f"delivered again: {extra}"
    finally:
        x.close()
