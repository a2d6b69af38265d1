"""Scenarios of the differential oracle (test_kafka_oracle.py).

A scenario is a function ``f(s, v, n)``: ``s`` is one broker's ``oracle_lib.Side``,
``v`` the version under test (or the index of a lifecycle family), ``n(name)`` a
fresh name. It runs once against Kafka and once against kastle, with the same
names, so both brokers go through the same history: fresh topics / groups /
transactional ids per scenario, and requests that depend on an answer (member
ids, producer ids and epochs, topic ids) take it from that broker's own answer.
Setup requests (``record=False``) are not compared but must succeed on both.

``SCENARIOS``: (name, primary API, how versions are chosen, function). ``per
version`` runs the scenario once per version both brokers advertise; a family
(``family``) runs index i = 0.. and covers version min+i (clamped) of each of its
APIs, so that slow set-ups (the first join of a group waits
group.initial.rebalance.delay.ms) are paid once for a whole lifecycle.
"""
import base64
import time

from compat_lib import _crc32c
from oracle_lib import batch, records

# API keys
PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP, DESCRIBE_GROUPS, LIST_GROUPS = 11, 12, 13, 14, 15, 16
API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS, INIT_PRODUCER_ID = 18, 19, 20, 21, 22
OFFSET_FOR_LEADER_EPOCH, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN = 23, 24, 25, 26
TXN_OFFSET_COMMIT, DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 28, 29, 30, 31
DESCRIBE_CONFIGS, ALTER_CONFIGS, DESCRIBE_LOG_DIRS, CREATE_PARTITIONS = 32, 33, 35, 37
DELETE_GROUPS, ELECT_LEADERS, INCREMENTAL_ALTER_CONFIGS = 42, 43, 44
ALTER_PARTITION_REASSIGNMENTS, LIST_PARTITION_REASSIGNMENTS, OFFSET_DELETE = 45, 46, 47
DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS, DESCRIBE_CLUSTER, DESCRIBE_PRODUCERS = 48, 49, 60, 61
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS, LIST_CONFIG_RESOURCES, DESCRIBE_TOPIC_PARTITIONS = 65, 66, 74, 75
UPDATE_FEATURES = 57
CONSUMER_GROUP_HEARTBEAT = 68
DESCRIBE_SHARE_GROUP_OFFSETS, ALTER_SHARE_GROUP_OFFSETS = 90, 91
WRITE_TXN_MARKERS = 27

TOPIC, BROKER, BROKER_LOGGER, GROUP = 2, 4, 8, 32  # config resource types
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
ZERO_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA"
UNKNOWN_TOPIC_ID = "AQIDBAUGBwgJCgsMDQ4PEA"  # no topic has it (the same on both brokers)
TS = 1_700_000_000_000  # CreateTime of every produced batch: same bytes on both brokers

# versions both brokers advertise, filled in by the test before scenarios run
VERSIONS = {}


def ver(api, i):
    """Version min+i of ``api`` (clamped to the common range): lifecycle families."""
    lo, hi = VERSIONS[api]
    return min(lo + i, hi)


def latest(api):
    return VERSIONS[api][1]


# -- set-up helpers (not compared, must succeed on both) ------------------------------

def ok(s, what, resp, path=("errorCode",)):
    v = resp
    for p in path:
        v = v[p]
    assert v == 0, f"{s.name}: set-up {what} failed: {resp}"
    return resp


def await_topic(s, name, partitions, timeout=15):
    """Kafka answers CreateTopics / CreatePartitions once the controller has the
    change; its broker serves it a moment later (KRaft metadata propagation).
    Both sides wait until Metadata shows every partition with a leader, so that
    what follows is compared on the same state."""
    deadline = time.monotonic() + timeout
    while True:
        r = s.x("await metadata", METADATA, latest(METADATA),
                {"topics": [{"name": name}], "allowAutoTopicCreation": False}, record=False)
        t = r["topics"][0]
        if t["errorCode"] == 0 and len(t["partitions"]) == partitions and \
                all(p["leaderId"] >= 0 for p in t["partitions"]):
            # ... and the leader has the log: ListOffsets answers without NOT_LEADER
            r = s.x("await leader", LIST_OFFSETS, latest(LIST_OFFSETS), {"topics": [
                {"name": name, "partitions": [{"partitionIndex": p, "timestamp": -1}
                                              for p in range(partitions)]}]}, record=False)
            if all(p["errorCode"] == 0 for p in r["topics"][0]["partitions"]):
                return
        assert time.monotonic() < deadline, f"{s.name}: {name} never showed {partitions} partitions: {r}"
        time.sleep(0.02)


def await_topic_gone(s, name, timeout=15):
    """Kafka's broker forgets a deleted topic once the controller's record
    reaches it: both sides wait until Metadata no longer knows it."""
    deadline = time.monotonic() + timeout
    while True:
        r = s.x("await deletion", METADATA, latest(METADATA),
                {"topics": [{"name": name}], "allowAutoTopicCreation": False}, record=False)
        if r["topics"][0]["errorCode"] == 3:  # UNKNOWN_TOPIC_OR_PARTITION
            return
        assert time.monotonic() < deadline, f"{s.name}: {name} still known: {r}"
        time.sleep(0.05)


def create_topic(s, name, partitions=1, configs=None):
    r = s.x(f"setup create {name}", CREATE_TOPICS, latest(CREATE_TOPICS), {
        "topics": [{"name": name, "numPartitions": partitions, "replicationFactor": 1,
                    "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
        "timeoutMs": 30000}, record=False)
    assert r["topics"][0]["errorCode"] == 0, f"{s.name}: create {name}: {r}"
    await_topic(s, name, partitions)
    s.__dict__.setdefault("topic_ids", {})[name] = r["topics"][0]["topicId"]
    return r["topics"][0]["topicId"]


def await_offsets_gone(s, version, group, name, topic_id, timeout=10):
    """Fetches all of ``group``'s offsets (unrecorded) until the deleted topic
    ``name`` (``topic_id`` from v10) is no longer among them, or ``timeout``
    seconds passed: the recorded fetch after it shows which."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if version >= 8:
            r = s.x("setup fetch all", OFFSET_FETCH, version,
                    {"groups": [{"groupId": group, "topics": None}], "requireStable": False}, record=False)
            topics = r["groups"][0]["topics"]
        else:
            body = {"groupId": group, "topics": None}
            if version >= 7:
                body["requireStable"] = False
            r = s.x("setup fetch all", OFFSET_FETCH, version, body, record=False)
            topics = r["topics"]
        if not any(t.get("name") == name or t.get("topicId") == topic_id for t in topics):
            return
        time.sleep(0.1)


def recreate_topic(s, name, partitions=1, timeout=15):
    """Deletes ``name`` and creates it again (a new topic id). Kafka removes the
    topic from its metadata at once but may still answer TOPIC_ALREADY_EXISTS
    for a moment: the creation is retried."""
    r = s.x(f"setup delete {name}", DELETE_TOPICS, latest(DELETE_TOPICS),
            {"topics": [{"name": name}], "timeoutMs": 30000}, record=False)
    assert r["responses"][0]["errorCode"] == 0, f"{s.name}: delete {name}: {r}"
    deadline = time.monotonic() + timeout
    while True:
        r = s.x(f"setup create {name} again", CREATE_TOPICS, latest(CREATE_TOPICS), {
            "topics": [{"name": name, "numPartitions": partitions, "replicationFactor": 1, "configs": []}],
            "timeoutMs": 30000}, record=False)
        code = r["topics"][0]["errorCode"]
        if code == 0:
            break
        assert code == 36 and time.monotonic() < deadline, f"{s.name}: create {name} again: {r}"
        time.sleep(0.1)
    await_topic(s, name, partitions)
    s.__dict__.setdefault("topic_ids", {})[name] = r["topics"][0]["topicId"]
    return r["topics"][0]["topicId"]


def warm_up(s):
    """Before any scenario, on both brokers: the group and transaction
    coordinators are available (Kafka creates __consumer_offsets and
    __transaction_state on first use and answers COORDINATOR_NOT_AVAILABLE
    meanwhile; kastle has them from the start)."""
    for key_type in (0, 1):
        deadline = time.monotonic() + 60
        while True:
            r = s.x("warm up", FIND_COORDINATOR, latest(FIND_COORDINATOR),
                    {"keyType": key_type, "coordinatorKeys": ["oracle-warm-up"]}, record=False)
            if r["coordinators"][0]["errorCode"] == 0:
                break
            assert time.monotonic() < deadline, f"{s.name}: coordinator never available: {r}"
            time.sleep(0.2)
    deadline = time.monotonic() + 60
    while True:  # the transaction coordinator also loads its partitions first
        r = init_pid(s, txn_id="oracle-warm-up")
        if r["errorCode"] == 0:
            break
        assert time.monotonic() < deadline, f"{s.name}: warm-up InitProducerId: {r}"
        time.sleep(0.2)


def topic_id_of(s, name):
    """The topic id of ``name`` on this broker: the one CreateTopics answered,
    else Metadata's (zero for a topic it does not know)."""
    ids = s.__dict__.setdefault("topic_ids", {})
    if name not in ids:
        r = s.x("setup topic id", METADATA, latest(METADATA),
                {"topics": [{"name": name}], "allowAutoTopicCreation": False}, record=False)
        return r["topics"][0]["topicId"] if r["topics"][0]["errorCode"] == 0 else ZERO_TOPIC_ID
    return ids[name]


def produce_topic(s, version, topic, partitions, topic_id=None):
    """One topicData entry: by name up to v12, by topic id from v13 (KIP-516;
    the name is ignorable there and would go out as the zero id)."""
    d = {"partitionData": [{"index": p, "records": blob} for p, blob in partitions]}
    if version >= 13:
        d["topicId"] = topic_id if topic_id is not None else topic_id_of(s, topic)
    else:
        d["name"] = topic
    return d


def produce(s, topic, blob, partition=0, version=None, label=None, acks=-1, txn_id=None,
            record=True, conn="main", topic_id=None):
    version = latest(PRODUCE) if version is None else version
    opts = {}
    if version < 3:
        # Kafka 4's message classes no longer encode Produce v0-2 (KIP-896), yet
        # both brokers advertise v0 (for old librdkafka): the v3 body under a v0-2
        # header, as such a client would get no further than this
        opts = {"patch_version": version, "timeout_ms": 5000}
        version = 3
    return s.x(label or f"produce {topic}-{partition}", PRODUCE, version, {
        "transactionalId": txn_id, "acks": acks, "timeoutMs": 30000,
        "topicData": [produce_topic(s, version, topic, [(partition, blob)], topic_id)]},
        record=record, conn=conn, **opts)


def init_pid(s, txn_id=None, version=None, record=False, timeout_ms=60000):
    version = latest(INIT_PRODUCER_ID) if version is None else version
    r = s.x("init producer id", INIT_PRODUCER_ID, version,
            {"transactionalId": txn_id, "transactionTimeoutMs": timeout_ms}, record=record)
    return r


def await_config(s, topic, key, value, timeout=15):
    """Kafka applies a config change once its broker has replayed the controller's
    record (KRaft); wait until DescribeConfigs shows it before comparing."""
    deadline = time.monotonic() + timeout
    while True:
        r = s.x("await config", DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {"resources": [
            {"resourceType": TOPIC, "resourceName": topic, "configurationKeys": [key]}]}, record=False)
        cfg = {c["name"]: c["value"] for c in r["results"][0]["configs"]}
        if cfg.get(key) == value:
            return
        assert time.monotonic() < deadline, f"{s.name}: {topic} {key} never became {value}: {cfg}"
        time.sleep(0.02)


def await_quota(s, client, key, present, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        r = s.x("await quota", DESCRIBE_CLIENT_QUOTAS, latest(DESCRIBE_CLIENT_QUOTAS), {"components": [
            {"entityType": "client-id", "matchType": 0, "match": client}], "strict": True}, record=False)
        keys = {v["key"] for e in r["entries"] or [] for v in e["values"]}
        if (key in keys) == present:
            return
        assert time.monotonic() < deadline, f"{s.name}: quota {key} of {client} never {'set' if present else 'removed'}"
        time.sleep(0.02)


def wait_txn_complete(s, txn_id, timeout=15):
    """Kafka writes CompleteCommit/CompleteAbort once the markers are in: wait so
    that both brokers are described in the same state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = s.x("poll txn state", DESCRIBE_TRANSACTIONS, 0, {"transactionalIds": [txn_id]}, record=False)
        if not r["transactionStates"][0]["transactionState"].startswith("Prepare"):
            return
        time.sleep(0.05)


# -- per-version scenarios ---------------------------------------------------------------

def sc_api_versions(s, v, n):
    body = {"clientSoftwareName": "kastle-oracle", "clientSoftwareVersion": "1.0"} if v >= 3 else {}
    s.x("api versions", API_VERSIONS, v, body)
    if v >= 3:
        s.x("invalid client software name", API_VERSIONS, v,
            {"clientSoftwareName": "bad name!", "clientSoftwareVersion": "1.0"})
    if v >= 5:
        # KIP-1242: naming another cluster is REBOOTSTRAP_REQUIRED; naming
        # only one of cluster and node is INVALID_REQUEST
        s.x("another cluster", API_VERSIONS, v, {**body, "clusterId": "not-this-cluster", "nodeId": 1})
        s.x("a node without a cluster", API_VERSIONS, v, {**body, "clusterId": None, "nodeId": 99})
        s.x("a cluster without a node", API_VERSIONS, v, {**body, "clusterId": "not-this-cluster", "nodeId": -1})


def sc_api_versions_unsupported(s, v, n):
    # a version above every broker's range: v0 answer, UNSUPPORTED_VERSION + the ranges
    s.x("api versions v127", API_VERSIONS, 3, {"clientSoftwareName": "x", "clientSoftwareVersion": "1"},
        patch_version=127)


def sc_unsupported_version(s, v, n):
    """Requests at a version neither broker supports: Kafka closes the connection."""
    create_topic(s, n("t"))
    s.x("metadata v127", METADATA, latest(METADATA), {"topics": [{"name": n("t")}]},
        patch_version=127, conn="m", timeout_ms=5000)
    s.x("produce v127", PRODUCE, latest(PRODUCE), {"acks": -1, "timeoutMs": 1000, "topicData": []},
        patch_version=127, conn="p", timeout_ms=5000)
    s.x("produce v2 (below the KIP-896 floor)", PRODUCE, 3, {"acks": -1, "timeoutMs": 1000, "topicData": []},
        patch_version=2, conn="p2", timeout_ms=5000)


def sc_metadata(s, v, n):
    create_topic(s, n("t"), partitions=2)
    topics = [{"name": n("t")}, {"name": n("missing")}, {"name": "bad name!"}]
    body = {"topics": topics}
    if v >= 4:
        body["allowAutoTopicCreation"] = False
    if 8 <= v <= 10:
        body["includeClusterAuthorizedOperations"] = True
    if v >= 8:
        body["includeTopicAuthorizedOperations"] = True
    s.x("metadata", METADATA, v, body)
    if v >= 4:
        # auto-creation on request (auto.create.topics.enable=true on both)
        s.x("metadata auto-create", METADATA, v, {"topics": [{"name": n("auto")}], "allowAutoTopicCreation": True})
    if v >= 10:
        s.x("metadata unknown topic id", METADATA, v, {"topics": [{"name": None, "topicId": "AAAAAAAAAAAAAAAAAAAAAQ"}]})


def sc_create_topics(s, v, n):
    base = {"timeoutMs": 30000}
    s.x("create", CREATE_TOPICS, v, dict(base, topics=[
        {"name": n("t"), "numPartitions": 3, "replicationFactor": 1,
         "configs": [{"name": "retention.ms", "value": "3600000"}, {"name": "cleanup.policy", "value": "compact"}]}]))
    s.x("errors", CREATE_TOPICS, v, dict(base, topics=[
        {"name": n("t"), "numPartitions": 1, "replicationFactor": 1},
        {"name": "bad name!", "numPartitions": 1, "replicationFactor": 1},
        {"name": n("rf3"), "numPartitions": 1, "replicationFactor": 3},
        {"name": n("zero"), "numPartitions": 0, "replicationFactor": 1},
        {"name": n("badcfg"), "numPartitions": 1, "replicationFactor": 1,
         "configs": [{"name": "retention.ms", "value": "soon"}]},
        {"name": n("unknowncfg"), "numPartitions": 1, "replicationFactor": 1,
         "configs": [{"name": "no.such.config", "value": "1"}]},
        {"name": n("assign"), "numPartitions": -1, "replicationFactor": -1,
         "assignments": [{"partitionIndex": 0, "brokerIds": [7]}]},
    ]))
    if v >= 4:
        s.x("defaults (-1)", CREATE_TOPICS, v, dict(base, topics=[
            {"name": n("defaults"), "numPartitions": -1, "replicationFactor": -1}]))
    s.x("validate only", CREATE_TOPICS, v, dict(base, validateOnly=True, topics=[
        {"name": n("validate"), "numPartitions": 2, "replicationFactor": 1}]))
    await_topic(s, n("t"), 3)
    s.x("metadata after validate only", METADATA, latest(METADATA),
        {"topics": [{"name": n("validate")}], "allowAutoTopicCreation": False})


def sc_delete_topics(s, v, n):
    create_topic(s, n("t"))
    if v >= 6:
        s.x("delete", DELETE_TOPICS, v, {"topics": [{"name": n("t")}, {"name": n("missing")}], "timeoutMs": 30000})
        s.x("delete by unknown id", DELETE_TOPICS, v,
            {"topics": [{"name": None, "topicId": "AAAAAAAAAAAAAAAAAAAAAQ"}], "timeoutMs": 30000})
    else:
        s.x("delete", DELETE_TOPICS, v, {"topicNames": [n("t"), n("missing")], "timeoutMs": 30000})
    # (deleting an internal topic is not tried: Kafka deletes __consumer_offsets when
    # asked, which would break the shared broker)


def sc_create_partitions(s, v, n):
    create_topic(s, n("t"), partitions=2)
    t = {"timeoutMs": 30000}
    s.x("grow", CREATE_PARTITIONS, v, dict(t, topics=[{"name": n("t"), "count": 4, "assignments": None}]))
    await_topic(s, n("t"), 4)
    s.x("errors", CREATE_PARTITIONS, v, dict(t, topics=[
        {"name": n("t"), "count": 2, "assignments": None},
        {"name": n("missing"), "count": 2, "assignments": None}]))
    s.x("same count", CREATE_PARTITIONS, v, dict(t, topics=[{"name": n("t"), "count": 4, "assignments": None}]))
    s.x("validate only", CREATE_PARTITIONS, v, dict(t, validateOnly=True, topics=[
        {"name": n("t"), "count": 6, "assignments": None}]))
    s.x("metadata", METADATA, latest(METADATA), {"topics": [{"name": n("t")}], "allowAutoTopicCreation": False})


def _joined(*blobs):
    """Several base64 batches as one partition's records."""
    return base64.b64encode(b"".join(base64.b64decode(b) for b in blobs)).decode()


def _short_batch(length, **batch_args):
    """A magic-2 batch header cut to `length` bytes after its length field."""
    raw = bytearray(base64.b64decode(batch(records(1), **batch_args)))[:12 + length]
    raw[8:12] = length.to_bytes(4, "big")
    return base64.b64encode(bytes(raw)).decode()


def _with_magic(blob, magic):
    raw = bytearray(base64.b64decode(blob))
    raw[16] = magic
    return base64.b64encode(bytes(raw)).decode()


def sc_produce(s, v, n):
    create_topic(s, n("t"), partitions=2)
    create_topic(s, n("small"), configs={"max.message.bytes": "1000"})
    create_topic(s, n("compact"), configs={"cleanup.policy": "compact"})
    produce(s, n("t"), batch(records(5)), version=v, label="produce 5 records")
    produce(s, n("t"), batch(records(3, "w")), version=v, label="second batch")
    produce(s, n("missing"), batch(records(1)), version=v, label="unknown topic")
    produce(s, n("t"), batch(records(1)), partition=7, version=v, label="unknown partition")
    produce(s, n("t"), batch(records(2), corrupt_crc=True), version=v, label="corrupt batch (bad CRC)")
    produce(s, n("small"), batch(records(1, size=2000)), version=v, label="record above max.message.bytes")
    produce(s, n("t"), batch(records(1)), version=v, label="invalid acks", acks=2)
    # Kafka checks the acks after the topic and partition (ReplicaManager.appendRecords)
    produce(s, n("missing"), batch(records(1)), version=v, label="invalid acks, unknown topic", acks=2)
    produce(s, n("t"), batch(records(1)), partition=7, version=v, label="invalid acks, unknown partition",
            acks=2)
    # the request-level record shape (ProduceRequest.validateRecords) comes
    # before the acks; the CRC is the log's, after them
    two = _joined(batch(records(1)), batch(records(1, "z")))
    produce(s, n("t"), two, version=v, label="two batches, invalid acks", acks=2)
    produce(s, n("t"), _joined(batch(records(1), corrupt_crc=True), batch(records(1))), version=v,
            label="two batches, the first with a bad CRC")
    produce(s, n("t"), batch(records(1), corrupt_crc=True), version=v, label="bad CRC, invalid acks",
            acks=2)
    # a batch whose length (20) is below its header's but not below the
    # iterator's minimum (14): a batch to validateRecords, corrupt to the log
    produce(s, n("t"), _short_batch(20), version=v, label="batch shorter than its header, invalid acks", acks=2)
    produce(s, n("t"), _short_batch(20), version=v, label="batch shorter than its header")
    produce(s, n("t"), _short_batch(13), version=v, label="batch length below 14, invalid acks", acks=2)
    # length 39: the producer id is readable, so the acks, then the log
    produce(s, n("t"), _short_batch(39), version=v, label="batch length 39, invalid acks", acks=2)
    produce(s, n("t"), _short_batch(39), version=v, label="batch length 39")
    # one partition's batch too short for its producer id fails the whole
    # request, the good partition is not appended
    if v >= 3:  # (the Java classes cannot write older versions; Kafka 4 refuses them)
        s.x("a good partition and one too short for its producer id", PRODUCE, v, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [(0, batch(records(1, "g"))), (1, _short_batch(20))])]})
        produce(s, n("t"), batch(records(1, "h")), version=v, label="after it (the log end shows no append)")
        # Kafka frames each partition's first batch before anything else
        # (hasTransactionalRecords): what its iterator refuses fails the whole
        # request with the iterator's message; a second batch is the
        # partition's own refusal, without one
        s.x("a good partition and one of length 13", PRODUCE, v, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [(0, batch(records(1, "g"))), (1, _short_batch(13))])]})
        s.x("a good partition and one of magic 5", PRODUCE, v, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [(0, batch(records(1, "g"))),
                                             (1, _with_magic(batch(records(1)), 5))])]})
        produce(s, n("t"), _joined(batch(records(1)), _short_batch(5)), version=v,
                label="a second batch of length 5")
        produce(s, n("t"), batch(records(1, "h")), version=v, label="after them (no append)")
        # a transactional batch with a producer id: its epoch and sequence
        # are read too (length 40 does not hold them)
        txb = dict(producer_id=7, epoch=0, base_seq=0, transactional=True)
        produce(s, n("t"), _short_batch(40, **txb), version=v, txn_id=n("tx"),
                label="transactional, length 40")
        produce(s, n("t"), _short_batch(40, **txb), version=v,
                label="transactional, length 40, no transactional id")
    # one replica, min.insync.replicas 2: Kafka caps the minimum at the
    # replica count (Partition.effectiveMinIsr)
    create_topic(s, n("isr"), configs={"min.insync.replicas": "2"})
    produce(s, n("isr"), batch(records(1)), version=v, label="acks=all, min.insync.replicas above the replicas")
    if v >= 13:
        # KIP-516: topics named by id. An id no topic has, and the zero id, are
        # UNKNOWN_TOPIC_ID (before authorization; the answer echoes the id)
        produce(s, n("t"), batch(records(1)), version=v, label="unknown topic id", topic_id=UNKNOWN_TOPIC_ID)
        produce(s, n("t"), batch(records(1)), version=v, label="zero topic id", topic_id=ZERO_TOPIC_ID)
        produce(s, n("t"), batch(records(1)), version=v, label="unknown topic id, invalid acks",
                topic_id=UNKNOWN_TOPIC_ID, acks=2)
        s.x("known id (two partitions, one missing) and an unknown id", PRODUCE, v, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [(1, batch(records(2, "m"))), (7, batch(records(1)))]),
                produce_topic(s, v, None, [(0, batch(records(1)))], topic_id=UNKNOWN_TOPIC_ID)]})
        # a deleted and recreated topic: its old id names nothing
        old = topic_id_of(s, n("t"))
        recreate_topic(s, n("t"), partitions=2)
        produce(s, n("t"), batch(records(1)), version=v, label="the recreated topic's old id", topic_id=old)
        produce(s, n("t"), batch(records(4, "n")), version=v, label="the recreated topic's new id")


def _with_codec(blob, codec):
    """A batch whose attributes name compression codec `codec` (its CRC redone)."""
    raw = bytearray(base64.b64decode(blob))
    attrs = int.from_bytes(raw[21:23], "big")
    raw[21:23] = ((attrs & ~0x7) | codec).to_bytes(2, "big")
    raw[17:21] = _crc32c(bytes(raw[21:])).to_bytes(4, "big")
    return base64.b64encode(bytes(raw)).decode()


def _as_control(blob):
    """A batch with the control bit set (its CRC redone)."""
    raw = bytearray(base64.b64decode(blob))
    attrs = int.from_bytes(raw[21:23], "big")
    raw[21:23] = (attrs | 0x20).to_bytes(2, "big")
    raw[17:21] = _crc32c(bytes(raw[21:])).to_bytes(4, "big")
    return base64.b64encode(bytes(raw)).decode()


def _with_length(blob, length):
    """A batch whose length field says `length` (its bytes unchanged)."""
    raw = bytearray(base64.b64decode(blob))
    raw[8:12] = length.to_bytes(4, "big")
    return base64.b64encode(bytes(raw)).decode()


def sc_produce_first_look(s, v, n):
    """What Kafka reads of a produce request before its log: the codec (read by
    validateRecords only below v7), a transactional batch's producer fields
    (read for verification even when the batch is too short for its header),
    one producer per request, and a batch length whose size overflows an int."""
    create_topic(s, n("t"), partitions=2)
    produce(s, n("t"), batch(records(1)), version=v, label="produce 1 record")
    for codec in (5, 7):
        produce(s, n("t"), _with_codec(batch(records(1)), codec), version=v, label=f"codec {codec}")
        produce(s, n("t"), _with_codec(batch(records(1)), codec), version=v, acks=2,
                label=f"codec {codec}, invalid acks")
    if v >= 3:
        s.x("a good partition and one of codec 6", PRODUCE, v, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [(0, batch(records(1, "g"))),
                                             (1, _with_codec(batch(records(1)), 6))])]})
        # transactional batches too short for their header (49) that hold the
        # producer id, epoch and base sequence (45 and up)
        for length in (45, 48):
            txb = dict(producer_id=7, epoch=0, base_seq=0, transactional=True)
            produce(s, n("t"), _short_batch(length, **txb), version=v, txn_id=n("tx"),
                    label=f"transactional, length {length}")
            produce(s, n("t"), _short_batch(length, **txb), version=v, txn_id=n("tx"), acks=2,
                    label=f"transactional, length {length}, invalid acks")
        # a transactional control batch is verified like any transactional
        # batch (the log refuses control batches from clients after it)
        control = _as_control(batch(records(1), producer_id=7, epoch=0, base_seq=0, transactional=True))
        produce(s, n("t"), control, version=v, txn_id=n("tx"), label="transactional control batch")
        # transactional batches of two producers (or two epochs) in one request
        for label, second in (("two producer ids", (8, 0)), ("two epochs", (7, 1))):
            s.x(label, PRODUCE, v, {
                "transactionalId": n("tx"), "acks": -1, "timeoutMs": 30000, "topicData": [
                    produce_topic(s, v, n("t"), [
                        (0, batch(records(1), producer_id=7, epoch=0, base_seq=0, transactional=True)),
                        (1, batch(records(1), producer_id=second[0], epoch=second[1], base_seq=0,
                                  transactional=True))])]
                # an unknown topic is answered the same; by topic id (v13)
                # Kafka lists the failed topics in hash order of their ids
                # (random here), so only by name
                + ([produce_topic(s, v, n("missing"), [(0, batch(records(1)))])] if v < 13 else [])})
        s.x("two producer ids, invalid acks", PRODUCE, v, {
            "transactionalId": n("tx"), "acks": 2, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [
                    (0, batch(records(1), producer_id=7, epoch=0, base_seq=0, transactional=True)),
                    (1, batch(records(1), producer_id=8, epoch=0, base_seq=0, transactional=True))])]})
        # a transactional and an idempotent batch: one producer id among the
        # transactional ones
        s.x("a transactional and an idempotent batch", PRODUCE, v, {
            "transactionalId": n("tx"), "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [
                    (0, batch(records(1), producer_id=7, epoch=0, base_seq=0, transactional=True)),
                    (1, batch(records(1), producer_id=8, epoch=0, base_seq=0))])]})
    # a batch length whose size (length + 12) passes 2^31 - 1
    for length in (0x7FFFFFF3, 0x7FFFFFF4, 0x7FFFFFFF):
        produce(s, n("t"), _with_length(batch(records(1)), length), version=v, label=f"batch length {length}")
    produce(s, n("t"), _with_length(batch(records(1)), 0x7FFFFFFF), version=v, acks=2,
            label="batch length 2^31-1, invalid acks")
    if v >= 3:
        s.x("a good partition and one of batch length 2^31-1", PRODUCE, v, {
            "transactionalId": None, "acks": -1, "timeoutMs": 30000, "topicData": [
                produce_topic(s, v, n("t"), [(0, batch(records(1, "g"))),
                                             (1, _with_length(batch(records(1)), 0x7FFFFFFF))])]})
    produce(s, n("t"), batch(records(1, "h")), version=v, label="after them (the log end)")


def sc_produce_keyless_compacted(s, v, n):
    create_topic(s, n("compact"), configs={"cleanup.policy": "compact"})
    produce(s, n("compact"), batch(records(3, key=False)), version=v, label="keyless records, compacted topic")


def sc_produce_idempotent(s, v, n):
    create_topic(s, n("t"))
    r = init_pid(s)
    pid, epoch = r["producerId"], r["producerEpoch"]
    produce(s, n("t"), batch(records(3), producer_id=pid, epoch=epoch, base_seq=0), version=v, label="seq 0")
    produce(s, n("t"), batch(records(3), producer_id=pid, epoch=epoch, base_seq=0), version=v, label="duplicate seq 0")
    produce(s, n("t"), batch(records(2), producer_id=pid, epoch=epoch, base_seq=10), version=v,
            label="out of order sequence")
    produce(s, n("t"), batch(records(2), producer_id=pid, epoch=epoch + 1, base_seq=5), version=v,
            label="new epoch, sequence not 0")
    produce(s, n("t"), batch(records(2), producer_id=pid, epoch=epoch, base_seq=3), version=v,
            label="old epoch after a newer one (fenced)")
    produce(s, n("t"), batch(records(1), producer_id=987654, epoch=0, base_seq=0), version=v,
            label="unknown producer id")
    s.x("describe producers", DESCRIBE_PRODUCERS, 0, {"topics": [{"name": n("t"), "partitionIndexes": [0]}]})


def sc_produce_txn_not_added(s, v, n):
    create_topic(s, n("t"))
    r = init_pid(s, txn_id=n("tx"))
    produce(s, n("t"), batch(records(1), producer_id=r["producerId"], epoch=r["producerEpoch"], base_seq=0,
                             transactional=True), version=v, txn_id=n("tx"),
            label="transactional batch, partition not added to the transaction")
    produce(s, n("t"), batch(records(1), producer_id=r["producerId"], epoch=r["producerEpoch"], base_seq=0,
                             transactional=True), version=v,
            label="transactional batch without a transactional id")


def sc_produce_txn_sequence(s, v, n):
    """KIP-890 verification and sequences (Kafka's VerificationStateEntry keeps
    the lowest sequence it has seen): a producer's batch above it is
    OUT_OF_ORDER_SEQUENCE_NUMBER until a batch lands, so a batch that failed
    verification cannot be overtaken (its retry would be out of order forever).
    Up to v11 (transaction version 1): sequence 0 fails verification (the
    partition is not in the transaction yet); once added, sequence 2 is refused,
    sequence 0 lands, then 2. From v12 (version 2: the Produce adds the
    partition) a producer with no batches on the partition starts at 0."""
    t, tx = n("t"), n("tx")
    create_topic(s, t)
    r = init_pid(s, txn_id=tx)
    pid, ep = r["producerId"], r["producerEpoch"]

    def send(seq, count, label):
        produce(s, t, batch(records(count, prefix=f"s{seq}-"), producer_id=pid, epoch=ep, base_seq=seq,
                            transactional=True), version=v, txn_id=tx, label=label)

    if v < 12:
        send(0, 2, "sequence 0, partition not in the transaction yet")
        s.x("add the partition", ADD_PARTITIONS_TO_TXN, 3, {
            "v3AndBelowTransactionalId": tx, "v3AndBelowProducerId": pid, "v3AndBelowProducerEpoch": ep,
            "v3AndBelowTopics": [{"name": t, "partitions": [0]}]})
        send(2, 1, "sequence 2 while sequence 0 is not written")
        send(0, 2, "sequence 0 retried")
        send(2, 1, "sequence 2 after it")
    else:
        send(1, 1, "sequence 1 first, no state on the partition")
        send(0, 1, "sequence 0")
        send(1, 1, "sequence 1 after it")
    s.x("describe producers", DESCRIBE_PRODUCERS, 0, {"topics": [{"name": t, "partitionIndexes": [0]}]})


def sc_fetch(s, v, n):
    tid = create_topic(s, n("t"), partitions=1)
    produce(s, n("t"), batch(records(5)), record=False)
    produce(s, n("t"), batch(records(3, "w")), record=False)

    def topic(name, topic_id, parts):
        d = {"partitions": parts}
        if v >= 13:
            d["topicId"] = topic_id
        else:
            d["topic"] = name
        return d

    def part(p, off, max_bytes=1 << 20):
        return {"partition": p, "fetchOffset": off, "partitionMaxBytes": max_bytes, "logStartOffset": -1,
                "currentLeaderEpoch": -1}

    base = {"maxWaitMs": 0, "minBytes": 1, "maxBytes": 1 << 20, "isolationLevel": 0,
            "sessionId": 0, "sessionEpoch": -1}
    s.x("fetch from 0", FETCH, v, dict(base, topics=[topic(n("t"), tid, [part(0, 0)])]))
    s.x("fetch from 5", FETCH, v, dict(base, topics=[topic(n("t"), tid, [part(0, 5)])]))
    s.x("fetch at the end", FETCH, v, dict(base, topics=[topic(n("t"), tid, [part(0, 8)])]))
    s.x("fetch out of range", FETCH, v, dict(base, topics=[topic(n("t"), tid, [part(0, 100)])]))
    s.x("fetch unknown partition", FETCH, v, dict(base, topics=[topic(n("t"), tid, [part(3, 0)])]))
    if v >= 13:
        s.x("fetch unknown topic id", FETCH, v, dict(base, topics=[topic(None, "AAAAAAAAAAAAAAAAAAAAAQ", [part(0, 0)])]))
    else:
        s.x("fetch unknown topic", FETCH, v, dict(base, topics=[topic(n("missing"), None, [part(0, 0)])]))
    s.x("fetch read_committed", FETCH, v, dict(base, isolationLevel=1, topics=[topic(n("t"), tid, [part(0, 0)])]))
    s.x("fetch 1 byte limit (first batch anyway)", FETCH, v,
        dict(base, maxBytes=1, topics=[topic(n("t"), tid, [part(0, 0, 1)])]))


def sc_fetch_sessions(s, v, n):
    """KIP-227: a full fetch opens a session, incremental fetches add, change and
    forget partitions and carry only news, and the session errors."""
    tid = create_topic(s, n("t"), partitions=2)
    produce(s, n("t"), batch(records(5)), record=False)

    def topic(parts, topic_id=tid):
        d = {"partitions": parts}
        if v >= 13:
            d["topicId"] = topic_id
        else:
            d["topic"] = n("t")
        return d

    def part(p, off):
        return {"partition": p, "fetchOffset": off, "partitionMaxBytes": 1 << 20, "logStartOffset": -1,
                "currentLeaderEpoch": -1}

    def req(session_id, epoch, parts=(), forget=(), version=v):
        body = {"maxWaitMs": 0, "minBytes": 1, "maxBytes": 1 << 20, "isolationLevel": 0,
                "sessionId": session_id, "sessionEpoch": epoch,
                "topics": [topic(list(parts))] if parts else []}
        if version >= 7:
            f = {"partitions": list(forget)}
            if version >= 13:
                f["topicId"] = tid
            else:
                f["topic"] = n("t")
            body["forgottenTopicsData"] = [f] if forget else []
        return body

    if v < 7:
        s.x("no sessions before v7", FETCH, v, req(0, -1, [part(0, 0), part(1, 0)]))
        return
    r = s.x("full fetch, epoch 0", FETCH, v, req(0, 0, [part(0, 0), part(1, 0)]))
    sid = r["sessionId"]
    s.x("incremental: offset moved, no news", FETCH, v, req(sid, 1, [part(0, 5)]))
    produce(s, n("t"), batch(records(2, "w")), partition=1, record=False)
    s.x("incremental: news on partition 1 only", FETCH, v, req(sid, 2))
    s.x("incremental: forget partition 1", FETCH, v, req(sid, 3, [part(1, 2)], forget=[1]))
    s.x("incremental: stale epoch", FETCH, v, req(sid, 3))
    s.x("incremental: epoch without a session", FETCH, v, req(0, 4))
    if v >= 13:
        s.x("incremental: names instead of topic ids", FETCH, 12, req(sid, 4, version=12))
    elif latest(FETCH) >= 13:
        s.x("incremental: topic ids instead of names", FETCH, 13, req(sid, 4, version=13))
    s.x("incremental: add partition 1 back", FETCH, v, req(sid, 4, [part(1, 0)]))
    s.x("close with epoch -1", FETCH, v, req(sid, -1, [part(0, 5)]))
    s.x("closed session", FETCH, v, req(sid, 5))


def sc_list_offsets(s, v, n):
    create_topic(s, n("t"), partitions=2)
    produce(s, n("t"), batch(records(5)), record=False)
    produce(s, n("t"), batch(records(3), base_ts=TS + 100000), record=False)
    specs = [-2, -1, TS + 15, TS + 100000, TS + 999999]
    if v >= 7:
        specs.append(-3)  # max timestamp
    if v >= 8:
        specs.append(-4)  # earliest local
    if v >= 9:
        specs.append(-5)  # latest tiered
    if v >= 11:
        specs.append(-6)  # earliest pending upload (KIP-1023): -1 without tiered storage
    body = {"replicaId": -1, "isolationLevel": 0, "timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitions": [{"partitionIndex": 0, "timestamp": t, "currentLeaderEpoch": -1}]}
        for t in specs[:1]]}
    for t in specs:
        body["topics"] = [{"name": n("t"), "partitions": [{"partitionIndex": 0, "timestamp": t, "currentLeaderEpoch": -1}]}]
        s.x(f"list offsets {t}", LIST_OFFSETS, v, body)
    body["topics"] = [{"name": n("t"), "partitions": [{"partitionIndex": 5, "timestamp": -1, "currentLeaderEpoch": -1}]},
                      {"name": n("missing"), "partitions": [{"partitionIndex": 0, "timestamp": -1, "currentLeaderEpoch": -1}]}]
    s.x("unknown partition / topic", LIST_OFFSETS, v, body)
    # a special timestamp below the version that introduced it, or one Kafka does
    # not know: UNSUPPORTED_VERSION, decided before the partition is looked up
    since = {-3: 7, -4: 8, -5: 9, -6: 11}
    for t in [t for t, first in since.items() if v < first] + [-7]:
        body["topics"] = [{"name": n("t"), "partitions": [{"partitionIndex": 0, "timestamp": t, "currentLeaderEpoch": -1}]}]
        s.x(f"list offsets {t} (unsupported at v{v})", LIST_OFFSETS, v, body)
    body["topics"] = [{"name": n("missing"), "partitions": [{"partitionIndex": 0, "timestamp": -7, "currentLeaderEpoch": -1}]}]
    s.x("unknown timestamp -7, unknown topic", LIST_OFFSETS, v, body)
    # a partition asked for twice (within a topic, or the topic listed twice):
    # INVALID_REQUEST at each place, before the timestamp check; the others answer
    part = lambda i, t: {"partitionIndex": i, "timestamp": t, "currentLeaderEpoch": -1}
    body["topics"] = [{"name": n("t"), "partitions": [part(0, -1), part(0, -7)]},
                      {"name": n("t"), "partitions": [part(1, -1)]},
                      {"name": n("missing"), "partitions": [part(3, -1), part(3, -1)]}]
    s.x("duplicate partitions", LIST_OFFSETS, v, body)
    body["topics"] = [{"name": n("t"), "partitions": [part(1, -2)]}, {"name": n("t"), "partitions": [part(1, -1)]}]
    s.x("a topic listed twice", LIST_OFFSETS, v, body)
    if v >= 2:
        body["isolationLevel"] = 1
        body["topics"] = [{"name": n("t"), "partitions": [{"partitionIndex": 0, "timestamp": -1, "currentLeaderEpoch": -1}]}]
        s.x("read_committed latest", LIST_OFFSETS, v, body)
    if v >= 4:
        body["isolationLevel"] = 0
        body["topics"] = [{"name": n("t"), "partitions": [{"partitionIndex": 0, "timestamp": -1, "currentLeaderEpoch": 5}]}]
        s.x("future leader epoch", LIST_OFFSETS, v, body)


def sc_offset_for_leader_epoch(s, v, n):
    create_topic(s, n("t"))
    produce(s, n("t"), batch(records(4)), record=False)
    body = {"topics": [{"topic": n("t"), "partitions": [
        {"partition": 0, "currentLeaderEpoch": -1, "leaderEpoch": 0},
        {"partition": 3, "currentLeaderEpoch": -1, "leaderEpoch": 0}]},
        {"topic": n("missing"), "partitions": [{"partition": 0, "currentLeaderEpoch": -1, "leaderEpoch": 0}]}]}
    if v >= 3:
        body["replicaId"] = -1
    s.x("epoch 0", OFFSET_FOR_LEADER_EPOCH, v, body)
    body["topics"] = [{"topic": n("t"), "partitions": [{"partition": 0, "currentLeaderEpoch": 3, "leaderEpoch": 0}]}]
    s.x("fenced current epoch", OFFSET_FOR_LEADER_EPOCH, v, body)


def sc_init_producer_id(s, v, n):
    s.x("idempotent", INIT_PRODUCER_ID, v, {"transactionalId": None, "transactionTimeoutMs": -1})
    s.x("transactional", INIT_PRODUCER_ID, v, {"transactionalId": n("tx"), "transactionTimeoutMs": 60000})
    r = s.x("transactional again (epoch bump)", INIT_PRODUCER_ID, v,
            {"transactionalId": n("tx"), "transactionTimeoutMs": 60000})
    s.x("timeout above transaction.max.timeout.ms", INIT_PRODUCER_ID, v,
        {"transactionalId": n("tx2"), "transactionTimeoutMs": 3_600_000})
    s.x("empty transactional id", INIT_PRODUCER_ID, v, {"transactionalId": "", "transactionTimeoutMs": 60000})
    if v >= 3:
        s.x("bump with the current producer id/epoch", INIT_PRODUCER_ID, v,
            {"transactionalId": n("tx"), "transactionTimeoutMs": 60000,
             "producerId": r["producerId"], "producerEpoch": r["producerEpoch"]})
        s.x("stale epoch", INIT_PRODUCER_ID, v,
            {"transactionalId": n("tx"), "transactionTimeoutMs": 60000,
             "producerId": r["producerId"], "producerEpoch": max(r["producerEpoch"] - 1, 0)})


def sc_find_coordinator(s, v, n):
    for label, key, kt in (("group", n("g"), 0), ("transaction", n("tx"), 1), ("invalid key type", n("x"), 9)):
        if v >= 4:
            s.x(label, FIND_COORDINATOR, v, {"keyType": kt, "coordinatorKeys": [key, key + "b"]})
        elif kt == 0 or v >= 1:
            s.x(label, FIND_COORDINATOR, v, {"key": key, "keyType": kt})


def sc_describe_configs(s, v, n):
    create_topic(s, n("t"), configs={"retention.ms": "3600000"})
    syn = v >= 1
    base = {"includeSynonyms": syn}
    if v >= 3:
        base["includeDocumentation"] = False
    s.x("topic: all", DESCRIBE_CONFIGS, v, dict(base, resources=[
        {"resourceType": TOPIC, "resourceName": n("t"), "configurationKeys": None}]))
    s.x("topic: some keys", DESCRIBE_CONFIGS, v, dict(base, resources=[
        {"resourceType": TOPIC, "resourceName": n("t"), "configurationKeys": ["retention.ms", "cleanup.policy", "no.such.key"]}]))
    s.x("unknown topic", DESCRIBE_CONFIGS, v, dict(base, resources=[
        {"resourceType": TOPIC, "resourceName": n("missing"), "configurationKeys": None}]))
    s.x("broker: some keys", DESCRIBE_CONFIGS, v, dict(base, resources=[
        {"resourceType": BROKER, "resourceName": "1", "configurationKeys": [
            "num.partitions", "log.retention.hours", "message.max.bytes", "auto.create.topics.enable",
            "log.cleaner.backoff.ms", "offsets.topic.num.partitions"]}]))
    s.x("unknown broker", DESCRIBE_CONFIGS, v, dict(base, resources=[
        {"resourceType": BROKER, "resourceName": "7", "configurationKeys": ["num.partitions"]}]))


def sc_describe_configs_broker_all(s, v, n):
    s.x("broker: all", DESCRIBE_CONFIGS, v, {"includeSynonyms": False, "resources": [
        {"resourceType": BROKER, "resourceName": "1", "configurationKeys": None}]})


def sc_describe_configs_group(s, v, n):
    s.x("group resource (KIP-848 group configs)", DESCRIBE_CONFIGS, v, {"includeSynonyms": False, "resources": [
        {"resourceType": GROUP, "resourceName": n("g"), "configurationKeys": None}]})


def sc_alter_configs(s, v, n):
    create_topic(s, n("t"), configs={"retention.ms": "3600000"})
    s.x("topic set", ALTER_CONFIGS, v, {"resources": [{"resourceType": TOPIC, "resourceName": n("t"),
                                                        "configs": [{"name": "segment.ms", "value": "7200000"}]}]})
    await_config(s, n("t"), "segment.ms", "7200000")
    s.x("describe after", DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {"resources": [
        {"resourceType": TOPIC, "resourceName": n("t"), "configurationKeys": ["segment.ms", "retention.ms"]}]})
    s.x("errors", ALTER_CONFIGS, v, {"resources": [
        {"resourceType": TOPIC, "resourceName": n("t"), "configs": [{"name": "retention.ms", "value": "soon"}]},
        {"resourceType": TOPIC, "resourceName": n("missing"), "configs": [{"name": "retention.ms", "value": "1000"}]}]})
    s.x("validate only", ALTER_CONFIGS, v, {"validateOnly": True, "resources": [
        {"resourceType": TOPIC, "resourceName": n("t"), "configs": [{"name": "retention.ms", "value": "5000"}]}]})


def sc_alter_configs_broker(s, v, n):
    s.x("broker dynamic config", ALTER_CONFIGS, v, {"resources": [
        {"resourceType": BROKER, "resourceName": "1", "configs": [{"name": "log.cleaner.backoff.ms", "value": "15000"}]}]})


def sc_incremental_alter_configs(s, v, n):
    create_topic(s, n("t"))
    r = lambda ops: {"resources": [{"resourceType": TOPIC, "resourceName": n("t"), "configs": [  # noqa: E731
        {"name": k, "configOperation": op, "value": val} for k, op, val in ops]}]}
    s.x("set / append", INCREMENTAL_ALTER_CONFIGS, v, r([("retention.ms", SET, "3600000"),
                                                         ("cleanup.policy", APPEND, "compact")]))
    await_config(s, n("t"), "cleanup.policy", "delete,compact")
    s.x("subtract / delete", INCREMENTAL_ALTER_CONFIGS, v, r([("cleanup.policy", SUBTRACT, "compact"),
                                                               ("retention.ms", DELETE, None)]))
    await_config(s, n("t"), "cleanup.policy", "delete")
    s.x("invalid value", INCREMENTAL_ALTER_CONFIGS, v, r([("retention.ms", SET, "soon")]))
    s.x("append to a non-list", INCREMENTAL_ALTER_CONFIGS, v, r([("retention.ms", APPEND, "5")]))
    s.x("unknown key", INCREMENTAL_ALTER_CONFIGS, v, r([("no.such.key", SET, "5")]))
    s.x("describe after", DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {"resources": [
        {"resourceType": TOPIC, "resourceName": n("t"), "configurationKeys": ["retention.ms", "cleanup.policy"]}]})


def sc_incremental_alter_configs_broker(s, v, n):
    s.x("broker dynamic config", INCREMENTAL_ALTER_CONFIGS, v, {"resources": [
        {"resourceType": BROKER, "resourceName": "1", "configs": [
            {"name": "log.cleaner.backoff.ms", "configOperation": SET, "value": "15000"}]}]})


def sc_incremental_alter_configs_group(s, v, n):
    s.x("group config", INCREMENTAL_ALTER_CONFIGS, v, {"resources": [
        {"resourceType": GROUP, "resourceName": n("g"), "configs": [
            {"name": "consumer.session.timeout.ms", "configOperation": SET, "value": "50000"}]}]})


def await_described(s, rtype, name, key, value, timeout=15):
    """await_config for any resource: Kafka applies broker and group configs once
    its broker has replayed the controller's records."""
    deadline = time.monotonic() + timeout
    while True:
        r = s.x("await config", DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {"resources": [
            {"resourceType": rtype, "resourceName": name, "configurationKeys": [key]}]}, record=False)
        cfg = {c["name"]: c["value"] for c in r["results"][0]["configs"]}
        if cfg.get(key) == value:
            return
        assert time.monotonic() < deadline, f"{s.name}: {name} {key} never became {value}: {cfg}"
        time.sleep(0.02)


def set_group_configs(s, g, configs):
    """Sets a group's configs (set-up, unrecorded) and waits until the
    broker describes them (the group families' deterministic settings)."""
    r = s.x("setup group configs", INCREMENTAL_ALTER_CONFIGS, latest(INCREMENTAL_ALTER_CONFIGS), {
        "resources": [{"resourceType": GROUP, "resourceName": g, "configs": [
            {"name": k, "configOperation": SET, "value": v} for k, v in configs.items()]}]}, record=False)
    ok(s, "group configs", r, ("responses", 0, "errorCode"))
    for k, v in configs.items():
        await_described(s, GROUP, g, k, v)


def sc_broker_dynamic_configs(s, v, n):
    """Dynamic broker configs at the cluster-default level (no other scenario
    touches it, so the shared Kafka's state is this scenario's own), and every
    refusal at either level (refusals change nothing)."""
    inc = lambda label, name, ops, validate=False: s.x(label, INCREMENTAL_ALTER_CONFIGS, v, {  # noqa: E731
        "validateOnly": validate, "resources": [{"resourceType": BROKER, "resourceName": name, "configs": [
            {"name": k, "configOperation": op, "value": val} for k, op, val in ops]}]})
    desc = lambda label, name, keys: s.x(label, DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {  # noqa: E731
        "includeSynonyms": True, "resources": [
            {"resourceType": BROKER, "resourceName": name, "configurationKeys": keys}]})
    inc("cluster default set", "", [("log.cleaner.io.buffer.size", SET, "600000")])
    await_described(s, BROKER, "", "log.cleaner.io.buffer.size", "600000")
    desc("describe cluster default", "", None)
    desc("describe broker", "1", ["log.cleaner.io.buffer.size", "min.insync.replicas", "num.partitions",
                                  "log.retention.ms", "log.retention.hours", "message.max.bytes"])
    inc("cluster default delete", "", [("log.cleaner.io.buffer.size", DELETE, None)])
    await_described(s, BROKER, "", "log.cleaner.io.buffer.size", None)
    desc("describe cluster default after delete", "", None)
    inc("validate only", "1", [("message.max.bytes", SET, "2000000")], validate=True)
    inc("read-only key", "1", [("log.dirs", SET, "/elsewhere")])
    inc("per-broker key at the cluster level", "", [("listeners", SET, "PLAINTEXT://:9092")])
    inc("security key without a listener prefix", "1", [("ssl.keystore.location", SET, "/k")])
    inc("bad value", "1", [("log.cleaner.backoff.ms", SET, "soon")])
    inc("below the minimum", "1", [("log.cleaner.threads", SET, "-1")])
    inc("cleaner threads more than doubled", "1", [("log.cleaner.threads", SET, "5")])
    inc("append to a non-list", "1", [("log.cleaner.backoff.ms", APPEND, "5")])
    inc("broker-level min.insync.replicas (ELR)", "1", [("min.insync.replicas", SET, "1")])
    inc("cluster min.insync.replicas removed (ELR)", "", [("min.insync.replicas", DELETE, None)])
    inc("another broker", "2", [("message.max.bytes", SET, "2000000")])
    inc("not a node id", "x", [("message.max.bytes", SET, "2000000")])
    inc("unknown operation", "1", [("log.cleaner.backoff.ms", 9, "1")])


def sc_group_configs(s, v, n):
    """A group's configs: set, described with GROUP_CONFIG over the broker's
    defaults, refused out of the broker's bounds, deleted, replaced."""
    g = n("g")
    inc = lambda label, ops, name=None: s.x(label, INCREMENTAL_ALTER_CONFIGS, v, {"resources": [  # noqa: E731
        {"resourceType": GROUP, "resourceName": g if name is None else name, "configs": [
            {"name": k, "configOperation": op, "value": val} for k, op, val in ops]}]})
    desc = lambda label, keys: s.x(label, DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {  # noqa: E731
        "includeSynonyms": True, "resources": [
            {"resourceType": GROUP, "resourceName": g, "configurationKeys": keys}]})
    inc("set", [("consumer.session.timeout.ms", SET, "50000"), ("share.auto.offset.reset", SET, "by_duration:PT1H")])
    await_described(s, GROUP, g, "consumer.session.timeout.ms", "50000")
    desc("describe all", None)
    inc("below the broker's minimum", [("consumer.session.timeout.ms", SET, "1000")])
    inc("above the broker's maximum", [("consumer.heartbeat.interval.ms", SET, "100000")])
    inc("unknown key", [("no.such.key", SET, "1")])
    inc("not a number", [("share.record.lock.duration.ms", SET, "soon")])
    inc("bad auto offset reset", [("share.auto.offset.reset", SET, "middle")])
    inc("unknown assignor", [("streams.assignor.name", SET, "nope")])
    inc("append", [("streams.rack.aware.assignment.tags", APPEND, "zone")])
    inc("empty group name", [("consumer.session.timeout.ms", SET, "50000")], name="")
    inc("delete", [("share.auto.offset.reset", DELETE, None)])
    await_described(s, GROUP, g, "share.auto.offset.reset", "latest")
    desc("describe after delete", ["consumer.session.timeout.ms", "share.auto.offset.reset"])
    s.x("replace (AlterConfigs)", ALTER_CONFIGS, latest(ALTER_CONFIGS), {"resources": [
        {"resourceType": GROUP, "resourceName": g, "configs": [
            {"name": "consumer.heartbeat.interval.ms", "value": "6000"}]}]})
    await_described(s, GROUP, g, "consumer.session.timeout.ms", "45000")
    desc("describe after replace", ["consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"])
    s.x("describe empty group name", DESCRIBE_CONFIGS, latest(DESCRIBE_CONFIGS), {"resources": [
        {"resourceType": GROUP, "resourceName": "", "configurationKeys": None}]})


def sc_delete_records(s, v, n):
    create_topic(s, n("t"))
    produce(s, n("t"), batch(records(6)), record=False)
    body = lambda parts: {"timeoutMs": 30000, "topics": parts}  # noqa: E731
    s.x("delete before 4", DELETE_RECORDS, v, body([{"name": n("t"), "partitions": [{"partitionIndex": 0, "offset": 4}]}]))
    s.x("errors", DELETE_RECORDS, v, body([
        {"name": n("t"), "partitions": [{"partitionIndex": 0, "offset": 100}, {"partitionIndex": 3, "offset": 1}]},
        {"name": n("missing"), "partitions": [{"partitionIndex": 0, "offset": 1}]}]))
    s.x("up to the high watermark (-1)", DELETE_RECORDS, v,
        body([{"name": n("t"), "partitions": [{"partitionIndex": 0, "offset": -1}]}]))
    s.x("list offsets after", LIST_OFFSETS, latest(LIST_OFFSETS), {"topics": [
        {"name": n("t"), "partitions": [{"partitionIndex": 0, "timestamp": -2}]}]})


def sc_describe_cluster(s, v, n):
    body = {"includeClusterAuthorizedOperations": True}
    if v >= 1:
        body["endpointType"] = 1
    s.x("describe cluster", DESCRIBE_CLUSTER, v, body)
    if v >= 1:
        s.x("controllers endpoint type on a broker", DESCRIBE_CLUSTER, v, {"endpointType": 2})


def sc_update_features(s, v, n):
    def upd(label, updates, validate_only=False):
        body = {"timeoutMs": 30000, "featureUpdates": [
            {"feature": f, "maxVersionLevel": lvl, **({"upgradeType": t} if v >= 1 else {"allowDowngrade": t > 1})}
            for f, lvl, t in updates]}
        if v >= 1:
            body["validateOnly"] = validate_only
        return s.x(label, UPDATE_FEATURES, v, body)
    upd("downgrade sent as an upgrade", [("group.version", 0, 1)])
    upd("level no node supports", [("group.version", 9, 1)])
    upd("negative level", [("group.version", -1, 2)])
    upd("metadata.version downgrade", [("metadata.version", 20, 2)])
    upd("same level again", [("group.version", 1, 1)])
    if v >= 1:
        upd("unknown upgrade type", [("group.version", 1, 7)])
        upd("validate-only downgrade", [("group.version", 0, 2)], validate_only=True)
        upd("one bad update fails them all", [("group.version", 0, 2), ("transaction.version", 7, 1)])
        # A real downgrade and back: the API answers the same on both.
        upd("downgrade group.version", [("group.version", 0, 2)])
        upd("upgrade group.version", [("group.version", 1, 1)])


def sc_describe_log_dirs(s, v, n):
    create_topic(s, n("t"), partitions=2)
    produce(s, n("t"), batch(records(4)), record=False)
    s.x("one topic", DESCRIBE_LOG_DIRS, v, {"topics": [{"topic": n("t"), "partitions": [0, 1, 5]},
                                                      {"topic": n("missing"), "partitions": [0]}]})


def sc_delete_groups(s, v, n):
    """An empty group, a group with a member, a missing group named twice: one
    result per distinct name (Kafka's ``distinct``); v3 adds errorMessage, null
    for all of these (the coordinator's own codes carry no message)."""
    t, empty, live = n("t"), n("empty"), n("live")
    create_topic(s, t)
    # (by topic name: v9 at most)
    r = s.x("setup commit (a group without members)", OFFSET_COMMIT, min(latest(OFFSET_COMMIT), 9), {
        "groupId": empty, "generationIdOrMemberEpoch": -1, "memberId": "", "groupInstanceId": None,
        "topics": [{"name": t, "partitions": [{"partitionIndex": 0, "committedOffset": 1,
                                                "committedLeaderEpoch": -1, "committedMetadata": None}]}]},
        record=False)
    assert r["topics"][0]["partitions"][0]["errorCode"] == 0, r
    join = {"groupId": live, "sessionTimeoutMs": 30000, "rebalanceTimeoutMs": 30000, "memberId": "",
            "groupInstanceId": None, "protocolType": "consumer", "reason": None,
            "protocols": [{"name": "range", "metadata": "AAEAAAABAAV0b3BpYwAAAAA="}]}
    jv = latest(JOIN_GROUP)
    r = s.x("setup join", JOIN_GROUP, jv, join, record=False)
    if r["errorCode"] == 79:  # MEMBER_ID_REQUIRED: join again with the given id
        r = s.x("setup join with member id", JOIN_GROUP, jv, dict(join, memberId=r["memberId"]), record=False)
    assert r["errorCode"] == 0, r
    s.x("delete groups", DELETE_GROUPS, v, {"groupsNames": [empty, live, n("missing"), n("missing")]})
    s.x("delete the deleted group again", DELETE_GROUPS, v, {"groupsNames": [empty]})


def sc_elect_leaders(s, v, n):
    create_topic(s, n("t"))
    body = {"timeoutMs": 30000, "topicPartitions": [{"topic": n("t"), "partitions": [0, 4]},
                                                    {"topic": n("missing"), "partitions": [0]}]}
    if v >= 1:
        body["electionType"] = 0
    s.x("preferred", ELECT_LEADERS, v, body)
    if v >= 1:
        body["electionType"] = 1
        s.x("unclean", ELECT_LEADERS, v, body)


def sc_partition_reassignments(s, v, n):
    create_topic(s, n("t"))
    s.x("reassign to the same replica", ALTER_PARTITION_REASSIGNMENTS, v, {"timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitions": [{"partitionIndex": 0, "replicas": [1]}]}]})
    s.x("cancel (none in progress)", ALTER_PARTITION_REASSIGNMENTS, v, {"timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitions": [{"partitionIndex": 0, "replicas": None}]}]})
    s.x("errors", ALTER_PARTITION_REASSIGNMENTS, v, {"timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitions": [{"partitionIndex": 3, "replicas": [1]}, ]},
        {"name": n("missing"), "partitions": [{"partitionIndex": 0, "replicas": [1]}]}]})
    s.x("replica on an unknown broker", ALTER_PARTITION_REASSIGNMENTS, v, {"timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitions": [{"partitionIndex": 0, "replicas": [7]}]}]})
    s.x("list", LIST_PARTITION_REASSIGNMENTS, 0, {"timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitionIndexes": [0]}]})


def sc_list_partition_reassignments(s, v, n):
    create_topic(s, n("t"))
    s.x("list one topic", LIST_PARTITION_REASSIGNMENTS, v, {"timeoutMs": 30000, "topics": [
        {"name": n("t"), "partitionIndexes": [0, 3]}, {"name": n("missing"), "partitionIndexes": [0]}]})


def sc_client_quotas(s, v, n):
    ent = [{"entityType": "client-id", "entityName": n("client")}]
    s.x("alter", ALTER_CLIENT_QUOTAS, v, {"entries": [{"entity": ent, "ops": [
        {"key": "producer_byte_rate", "value": 1024000.0, "remove": False},
        {"key": "consumer_byte_rate", "value": 2048000.0, "remove": False}]}]})
    await_quota(s, n("client"), "producer_byte_rate", True)
    s.x("describe", DESCRIBE_CLIENT_QUOTAS, latest(DESCRIBE_CLIENT_QUOTAS), {"components": [
        {"entityType": "client-id", "matchType": 0, "match": n("client")}], "strict": True})
    s.x("invalid key", ALTER_CLIENT_QUOTAS, v, {"entries": [{"entity": ent, "ops": [
        {"key": "no_such_quota", "value": 1.0, "remove": False}]}]})
    s.x("validate only", ALTER_CLIENT_QUOTAS, v, {"validateOnly": True, "entries": [{"entity": ent, "ops": [
        {"key": "producer_byte_rate", "value": 5.0, "remove": False}]}]})
    s.x("remove", ALTER_CLIENT_QUOTAS, v, {"entries": [{"entity": ent, "ops": [
        {"key": "producer_byte_rate", "value": 0.0, "remove": True}]}]})
    await_quota(s, n("client"), "producer_byte_rate", False)
    s.x("describe after remove", DESCRIBE_CLIENT_QUOTAS, latest(DESCRIBE_CLIENT_QUOTAS), {"components": [
        {"entityType": "client-id", "matchType": 0, "match": n("client")}], "strict": True})


def sc_describe_client_quotas(s, v, n):
    s.x("describe nothing set", DESCRIBE_CLIENT_QUOTAS, v, {"components": [
        {"entityType": "user", "matchType": 0, "match": n("user")}], "strict": False})
    s.x("invalid match type", DESCRIBE_CLIENT_QUOTAS, v, {"components": [
        {"entityType": "client-id", "matchType": 9, "match": None}], "strict": False})


def fam_acls(s, i, n):
    s.x("describe", DESCRIBE_ACLS, ver(DESCRIBE_ACLS, i), {"resourceTypeFilter": 1, "resourceNameFilter": None, "patternTypeFilter": 1,
                                       "principalFilter": None, "hostFilter": None, "operation": 1, "permissionType": 1})
    s.x("create", CREATE_ACLS, ver(CREATE_ACLS, i), {"creations": [
        {"resourceType": 2, "resourceName": n("t"), "resourcePatternType": 3, "principal": "User:alice",
         "host": "*", "operation": 3, "permissionType": 3}]})
    s.x("delete", DELETE_ACLS, ver(DELETE_ACLS, i), {"filters": [
        {"resourceTypeFilter": 2, "resourceNameFilter": n("t"), "patternTypeFilter": 3, "principalFilter": None,
         "hostFilter": None, "operation": 1, "permissionType": 1}]})


def sc_describe_producers(s, v, n):
    create_topic(s, n("t"), partitions=2)
    r = init_pid(s)
    produce(s, n("t"), batch(records(3), producer_id=r["producerId"], epoch=r["producerEpoch"], base_seq=0), record=False)
    s.x("describe", DESCRIBE_PRODUCERS, v, {"topics": [{"name": n("t"), "partitionIndexes": [0, 1, 5]},
                                                      {"name": n("missing"), "partitionIndexes": [0]}]})


def sc_describe_transactions(s, v, n):
    s.x("unknown transactional id", DESCRIBE_TRANSACTIONS, v, {"transactionalIds": [n("nope")]})
    init_pid(s, txn_id=n("tx"))
    s.x("empty transaction", DESCRIBE_TRANSACTIONS, v, {"transactionalIds": [n("tx")]})


def sc_list_transactions(s, v, n):
    init_pid(s, txn_id=n("tx"))
    s.x("all", LIST_TRANSACTIONS, v, {"stateFilters": [], "producerIdFilters": []})
    s.x("state filter Empty", LIST_TRANSACTIONS, v, {"stateFilters": ["Empty"], "producerIdFilters": []})
    s.x("unknown state filter", LIST_TRANSACTIONS, v, {"stateFilters": ["NoSuchState"], "producerIdFilters": []})
    if v >= 1:
        s.x("duration filter", LIST_TRANSACTIONS, v, {"stateFilters": [], "producerIdFilters": [], "durationFilter": 3_600_000})
    if v >= 2:
        # KIP-1152: the whole id must match (RE2 syntax); an invalid pattern is refused
        for label, pattern in (("pattern matching the id", ".*list_transactions-v2-t[x]"),
                               ("pattern matching part of the id only", "tx"),
                               ("quoted pattern (Pattern.quote)", "\\Q" + n("tx") + "\\E"),
                               ("empty pattern (no filter)", ""),
                               ("invalid pattern", "(tx"),
                               ("backreference (not RE2)", "(t)\\1x")):
            s.x(label, LIST_TRANSACTIONS, v, {"stateFilters": [], "producerIdFilters": [], "durationFilter": -1,
                                              "transactionalIdPattern": pattern})


def sc_describe_topic_partitions(s, v, n):
    for name, parts in (("a", 3), ("b", 2), ("c", 1)):
        create_topic(s, n(name), partitions=parts)
    named = [{"name": n(x)} for x in ("c", "a", "b")]

    def page(label, topics, limit, cursor=None):
        s.x(label, DESCRIBE_TOPIC_PARTITIONS, v, {"topics": topics, "responsePartitionLimit": limit,
                                                  "cursor": cursor})

    page("named, unknown and invalid topics", named + [{"name": n("missing")}, {"name": "bad name!"},
                                                       {"name": n("a")}], 2000)
    page("a page of 2 partitions", named, 2)
    page("a page ending with a topic", named, 3)
    page("from a cursor", named, 2, {"topicName": n("a"), "partitionIndex": 2})
    page("cursor past its topic's partitions", named, 5, {"topicName": n("a"), "partitionIndex": 7})
    page("cursor on a topic not asked for", named[:2], 5, {"topicName": n("zzz"), "partitionIndex": 0})
    page("negative cursor partition", named, 5, {"topicName": n("a"), "partitionIndex": -1})
    page("limit 0", named, 0)
    page("internal topic", [{"name": "__transaction_state"}], 1)


def sc_list_config_resources(s, v, n):
    create_topic(s, n("t"))
    if v == 0:  # KIP-714's ListClientMetricsResources: none set on either broker
        s.x("client metrics resources", LIST_CONFIG_RESOURCES, v, {})
        return
    for label, types in (("every type", []), ("topics", [2]), ("broker", [4]), ("broker loggers", [8]),
                         ("groups and client metrics", [32, 16]), ("a type twice", [4, 4]),
                         ("unknown type", [2, 99])):
        s.x(label, LIST_CONFIG_RESOURCES, v, {"resourceTypes": types})


def sc_describe_share_group_offsets(s, v, n):
    """A share group's start offsets: none before any state, then the one
    AlterShareGroupOffsets set (v1: with KIP-1226's lag, the high watermark
    minus the start offset minus the records delivered above it)."""
    create_topic(s, n("t"), partitions=2)
    produce(s, n("t"), batch(records(10)), record=False)
    g = n("g")
    asked = {"groups": [{"groupId": g, "topics": [{"topicName": n("t"), "partitions": [0, 1]}]}]}
    s.x("no state yet", DESCRIBE_SHARE_GROUP_OFFSETS, v, asked)
    r = s.x("alter", ALTER_SHARE_GROUP_OFFSETS, 0, {"groupId": g, "topics": [
        {"topicName": n("t"), "partitions": [{"partitionIndex": 0, "startOffset": 3}]}]}, record=False)
    ok(s, "alter", r)
    assert all(p["errorCode"] == 0 for t in r["responses"] for p in t["partitions"]), r
    s.x("after alter", DESCRIBE_SHARE_GROUP_OFFSETS, v, asked)
    s.x("every partition with state", DESCRIBE_SHARE_GROUP_OFFSETS, v, {"groups": [{"groupId": g, "topics": None}]})
    s.x("unknown group and topic", DESCRIBE_SHARE_GROUP_OFFSETS, v, {"groups": [
        {"groupId": n("nope"), "topics": None},
        {"groupId": g, "topics": [{"topicName": n("missing"), "partitions": [0]}]}]})


def sc_write_txn_markers(s, v, n):
    """WriteTxnMarkers as a transaction coordinator sends it, to a partition
    with a transaction open (Produce v12 added it): an unknown topic, then
    the producer-epoch check (v2, KIP-1228: by the marker's transaction
    version; under TV2 the open transaction's own epoch is stale, the bumped
    one is written, and so is a retry of it)."""
    t = n("t")
    create_topic(s, t)
    r = init_pid(s, txn_id=n("tx"))
    pid, ep = r["producerId"], r["producerEpoch"]
    r = produce(s, t, batch(records(2), producer_id=pid, epoch=ep, base_seq=0, transactional=True),
                txn_id=n("tx"), record=False)
    assert r["responses"][0]["partitionResponses"][0]["errorCode"] == 0, r

    def marker(label, epoch, tv, topic=t):
        m = {"producerId": pid, "producerEpoch": epoch, "transactionResult": True,
             "topics": [{"name": topic, "partitionIndexes": [0]}], "coordinatorEpoch": 0}
        if v >= 2:
            m["transactionVersion"] = tv
        s.x(label, WRITE_TXN_MARKERS, v, {"markers": [m]})

    marker("unknown topic", ep, 2, topic=n("missing"))
    if v >= 2:
        marker("TV2, the open transaction's epoch", ep, 2)
        marker("TV2, the bumped epoch", ep + 1, 2)
        marker("TV2, a retry of the written marker", ep + 1, 2)
        marker("TV0, below the producer's epoch now", ep, 0)
    else:
        marker("the producer's epoch", ep, 0)
        marker("again", ep, 0)


# -- families (one lifecycle per index) -----------------------------------------------------

GROUP_APIS = (JOIN_GROUP, SYNC_GROUP, HEARTBEAT, OFFSET_COMMIT, OFFSET_FETCH, DESCRIBE_GROUPS, LIST_GROUPS,
              LEAVE_GROUP, DELETE_GROUPS, OFFSET_DELETE)


def fam_group(s, i, n):
    """A classic group from first join to deletion, each group API at version min+i."""
    jv, sv, hv = ver(JOIN_GROUP, i), ver(SYNC_GROUP, i), ver(HEARTBEAT, i)
    cv, fv, dv, lv = ver(OFFSET_COMMIT, i), ver(OFFSET_FETCH, i), ver(DESCRIBE_GROUPS, i), ver(LIST_GROUPS, i)
    lev, delv, odv = ver(LEAVE_GROUP, i), ver(DELETE_GROUPS, i), ver(OFFSET_DELETE, i)
    g, t = n("g"), n("t")
    tid = create_topic(s, t, partitions=2)
    meta = "AAEAAAABAAV0b3BpYwAAAAA="  # consumer protocol subscription v1 (topic name irrelevant here)
    join = {"groupId": g, "sessionTimeoutMs": 30000, "rebalanceTimeoutMs": 30000, "memberId": "",
            "protocolType": "consumer", "protocols": [{"name": "range", "metadata": meta}]}
    if jv >= 5:
        join["groupInstanceId"] = None
    r = s.x("join", JOIN_GROUP, jv, join)
    if r["errorCode"] == 79:  # MEMBER_ID_REQUIRED (v4+): join again with the given id
        join["memberId"] = r["memberId"]
        r = s.x("join with member id", JOIN_GROUP, jv, join)
    mid, gen = r["memberId"], r["generationId"]
    sync = {"groupId": g, "generationId": gen, "memberId": mid,
            "assignments": [{"memberId": mid, "assignment": "AAEAAAAA"}]}
    if sv >= 5:
        sync.update(protocolType="consumer", protocolName="range")
    s.x("sync", SYNC_GROUP, sv, sync)
    s.x("sync wrong generation", SYNC_GROUP, sv, dict(sync, generationId=gen + 5))
    hb = {"groupId": g, "generationId": gen, "memberId": mid}
    s.x("heartbeat", HEARTBEAT, hv, hb)
    s.x("heartbeat wrong generation", HEARTBEAT, hv, dict(hb, generationId=gen + 5))
    s.x("heartbeat unknown member", HEARTBEAT, hv, dict(hb, memberId="nobody"))
    s.x("heartbeat unknown group", HEARTBEAT, hv, dict(hb, groupId=n("nogroup")))

    def ref(topic, by_id):
        """A request's topic: by name, or from v10 (KIP-848) by id (any other
        name than ``t`` stands for an id no topic has)."""
        if not by_id:
            return {"name": topic}
        return {"topicId": tid if topic == t else UNKNOWN_TOPIC_ID}

    def commit(label, gen_, member, offset=3, topic=t, more=(), more_parts=()):
        parts = [{"partitionIndex": 0, "committedOffset": offset, "committedMetadata": "m"},
                 {"partitionIndex": 1, "committedOffset": offset + 1, "committedMetadata": None}]
        parts += list(more_parts)
        topics = [dict(ref(topic, cv >= 10), partitions=parts)] + list(more)
        body = {"groupId": g, "memberId": member, "topics": topics}
        body["generationIdOrMemberEpoch"] = gen_
        if cv <= 4:
            body["retentionTimeMs"] = -1
        s.x(label, OFFSET_COMMIT, cv, body)

    commit("commit", gen, mid)
    commit("commit wrong generation", gen + 5, mid)
    commit("commit unknown member", gen, "nobody")
    commit("commit unknown topic", gen, mid, topic=n("missing"))
    if cv >= 10:
        # v10: an id no topic has, the zero id, and one beside a known topic
        # (with a partition it lacks): UNKNOWN_TOPIC_ID for that topic only
        commit("commit by the zero id", gen, mid, more=[
            {"topicId": ZERO_TOPIC_ID, "partitions": [{"partitionIndex": 3, "committedOffset": 1}]}],
            topic=n("missing"))
        commit("commit by a known and an unknown id", gen, mid, offset=5, more=[
            {"topicId": UNKNOWN_TOPIC_ID, "partitions": [{"partitionIndex": 0, "committedOffset": 1}]}],
            more_parts=[{"partitionIndex": 7, "committedOffset": 1, "committedMetadata": None}])

    def fetch(label, topics, group=g, require_stable=False):
        if fv >= 10:
            topics = None if topics is None else [
                dict(ref(x.pop("name"), True), **x) for x in (dict(x) for x in topics)]
        if fv >= 8:
            body = {"groups": [{"groupId": group, "topics": topics}], "requireStable": require_stable}
        else:
            body = {"groupId": group, "topics": topics}
            if fv >= 7:
                body["requireStable"] = require_stable
        s.x(label, OFFSET_FETCH, fv, body)

    fetch("fetch offsets", [{"name": t, "partitionIndexes": [0, 1, 5]}])
    if fv >= 2:
        fetch("fetch all offsets", None)
    if fv >= 10:
        fetch("fetch by a known and an unknown id", [{"name": t, "partitionIndexes": [0, 1, 5]},
                                                    {"name": n("missing"), "partitionIndexes": [0]}])
    if fv >= 2:
        # a deleted topic's offsets go with it (Kafka's coordinator writes
        # their tombstones on the metadata update: waited for, then compared)
        gone = n("gone")
        gone_id = create_topic(s, gone)
        gone_ref = {"topicId": gone_id} if cv >= 10 else {"name": gone}
        commit_gone = {"groupId": g, "generationIdOrMemberEpoch": gen, "memberId": mid, "topics": [
            dict(gone_ref, partitions=[{"partitionIndex": 0, "committedOffset": 8}])]}
        if cv <= 4:
            commit_gone["retentionTimeMs"] = -1
        s.x("commit to a topic deleted next", OFFSET_COMMIT, cv, commit_gone)
        ok(s, "delete topic", s.x("setup delete", DELETE_TOPICS, latest(DELETE_TOPICS), {
            "topics": [{"name": gone}], "timeoutMs": 30000}, record=False), ("responses", 0, "errorCode"))
        await_topic_gone(s, gone)
        await_offsets_gone(s, fv, g, gone, gone_id)
        if cv >= 10:
            commit_gone["topics"][0]["partitions"][0]["committedOffset"] = 9
            s.x("commit by a deleted topic's id", OFFSET_COMMIT, cv, commit_gone)
        fetch("fetch all offsets after a topic's deletion", None)
    fetch("fetch unknown group", [{"name": t, "partitionIndexes": [0]}], group=n("nogroup"))
    s.x("describe", DESCRIBE_GROUPS, dv, {"groups": [g, n("nogroup")], "includeAuthorizedOperations": dv >= 3})
    body = {}
    if lv >= 4:
        body["statesFilter"] = ["Stable"]
    if lv >= 5:
        body["typesFilter"] = ["classic"]
    s.x("list", LIST_GROUPS, lv, body)
    s.x("delete non-empty group", DELETE_GROUPS, delv, {"groupsNames": [g]})
    s.x("offset delete while subscribed", OFFSET_DELETE, odv, {"groupId": g, "topics": [
        {"name": t, "partitions": [{"partitionIndex": 0}]}]})
    if lev >= 3:
        s.x("leave unknown member", LEAVE_GROUP, lev, {"groupId": g, "members": [{"memberId": "nobody", "groupInstanceId": None}]})
        s.x("leave", LEAVE_GROUP, lev, {"groupId": g, "members": [{"memberId": mid, "groupInstanceId": None}]})
    else:
        s.x("leave unknown member", LEAVE_GROUP, lev, {"groupId": g, "memberId": "nobody"})
        s.x("leave", LEAVE_GROUP, lev, {"groupId": g, "memberId": mid})
    commit("commit to the empty group (admin style)", -1, "")
    s.x("describe empty", DESCRIBE_GROUPS, dv, {"groups": [g], "includeAuthorizedOperations": False})
    s.x("offset delete", OFFSET_DELETE, odv, {"groupId": g, "topics": [
        {"name": t, "partitions": [{"partitionIndex": 0}, {"partitionIndex": 9}]},
        {"name": n("missing"), "partitions": [{"partitionIndex": 0}]}]})
    fetch("fetch after offset delete", [{"name": t, "partitionIndexes": [0, 1]}])
    s.x("delete groups", DELETE_GROUPS, delv, {"groupsNames": [g, n("nogroup")]})
    s.x("describe deleted", DESCRIBE_GROUPS, dv, {"groups": [g], "includeAuthorizedOperations": False})


TXN_APIS = (INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, TXN_OFFSET_COMMIT, END_TXN)


def fam_txn(s, i, n):
    """A transaction from InitProducerId to commit and abort, each transaction API
    at version min+i; then the invalid-state and fencing paths."""
    iv, av, aov, tv, ev = (ver(a, i) for a in TXN_APIS)
    tx, t, g = n("tx"), n("t"), n("g")
    tid = create_topic(s, t, partitions=2)
    r = s.x("init", INIT_PRODUCER_ID, iv, {"transactionalId": tx, "transactionTimeoutMs": 60000})
    pid, ep = r["producerId"], r["producerEpoch"]

    def add_parts(label, epoch, parts=(0,), pid_=None, txid=tx):
        pid_ = pid if pid_ is None else pid_
        if av >= 4:
            s.x(label, ADD_PARTITIONS_TO_TXN, av, {"transactions": [
                {"transactionalId": txid, "producerId": pid_, "producerEpoch": epoch, "verifyOnly": False,
                 "topics": [{"name": t, "partitions": list(parts)}]}]})
        else:
            s.x(label, ADD_PARTITIONS_TO_TXN, av, {"v3AndBelowTransactionalId": txid, "v3AndBelowProducerId": pid_,
                                                   "v3AndBelowProducerEpoch": epoch,
                                                   "v3AndBelowTopics": [{"name": t, "partitions": list(parts)}]})

    def end(label, commit, epoch=None):
        s.x(label, END_TXN, ev, {"transactionalId": tx, "producerId": pid,
                                 "producerEpoch": ep if epoch is None else epoch, "committed": commit})

    end("end with no transaction", True)
    add_parts("add partitions", ep, (0, 1))
    produce(s, t, batch(records(2), producer_id=pid, epoch=ep, base_seq=0, transactional=True), txn_id=tx,
            label="transactional produce")
    s.x("add offsets", ADD_OFFSETS_TO_TXN, aov, {"transactionalId": tx, "producerId": pid, "producerEpoch": ep,
                                                  "groupId": g})
    tref = {"topicId": tid} if tv >= 6 else {"name": t}  # v6 (KIP-1319): topics by id
    tbody = {"transactionalId": tx, "groupId": g, "producerId": pid, "producerEpoch": ep, "topics": [
        dict(tref, partitions=[{"partitionIndex": 0, "committedOffset": 2, "committedMetadata": "txn"}])]}
    if tv >= 3:
        tbody.update(generationIdOrMemberEpoch=-1, memberId="", groupInstanceId=None)
    s.x("txn offset commit", TXN_OFFSET_COMMIT, tv, tbody)
    s.x("txn offset commit wrong epoch", TXN_OFFSET_COMMIT, tv, dict(tbody, producerEpoch=ep + 3))
    if tv >= 6:
        # an id no topic has, the zero id, and a known id's missing partition:
        # UNKNOWN_TOPIC_ID per unknown topic, the rest committed
        s.x("txn offset commit by unknown ids", TXN_OFFSET_COMMIT, tv, dict(tbody, topics=[
            {"topicId": UNKNOWN_TOPIC_ID, "partitions": [{"partitionIndex": 0, "committedOffset": 1}]},
            {"topicId": ZERO_TOPIC_ID, "partitions": [{"partitionIndex": 3, "committedOffset": 1},
                                                      {"partitionIndex": 4, "committedOffset": 1}]},
            dict(tref, partitions=[{"partitionIndex": 1, "committedOffset": 1, "committedMetadata": None},
                                   {"partitionIndex": 7, "committedOffset": 1, "committedMetadata": None}])]))
    if tv >= 5:
        # transaction version 2 (the offsets partition joins implicitly): a
        # generation for a group that does not exist is GROUP_ID_NOT_FOUND from
        # v6, ILLEGAL_GENERATION before; so is a KIP-848 member's stale epoch
        # STALE_MEMBER_EPOCH from v6
        s.x("txn offset commit with a generation for no group", TXN_OFFSET_COMMIT, tv,
            dict(tbody, groupId=n("nogroup"), generationIdOrMemberEpoch=5))
        cg, mid = n("cg"), "txn-member-" + n("m")
        hb = s.x("consumer group join", CONSUMER_GROUP_HEARTBEAT, 1, {
            "groupId": cg, "memberId": mid, "memberEpoch": 0, "rebalanceTimeoutMs": 30000,
            "subscribedTopicNames": [t], "topicPartitions": []}, record=False)
        ok(s, "consumer group join", hb)
        member = dict(tbody, groupId=cg, memberId=mid)
        s.x("txn offset commit with a stale member epoch", TXN_OFFSET_COMMIT, tv,
            dict(member, generationIdOrMemberEpoch=hb["memberEpoch"] + 1))
        s.x("txn offset commit at the member epoch", TXN_OFFSET_COMMIT, tv,
            dict(member, generationIdOrMemberEpoch=hb["memberEpoch"]))
    s.x("describe ongoing", DESCRIBE_TRANSACTIONS, 0, {"transactionalIds": [tx]})
    end("commit", True)
    wait_txn_complete(s, tx)
    s.x("describe committed", DESCRIBE_TRANSACTIONS, 0, {"transactionalIds": [tx]})
    ofv = latest(OFFSET_FETCH)
    topic = {"topicId": tid} if ofv >= 10 else {"name": t}
    s.x("group offsets after commit", OFFSET_FETCH, ofv, {"groups": [
        {"groupId": g, "topics": [dict(topic, partitionIndexes=[0])]}], "requireStable": True})
    end("abort after commit", False)
    add_parts("add partitions (second transaction)", ep, (1,))
    produce(s, t, batch(records(1), producer_id=pid, epoch=ep, base_seq=2, transactional=True), txn_id=tx,
            partition=1, label="transactional produce (to abort)")
    end("abort", False)
    wait_txn_complete(s, tx)
    add_parts("add partitions with a wrong epoch", ep + 3)
    add_parts("add partitions for an unknown producer id", ep, pid_=424242)
    add_parts("add partitions for an unknown transactional id", 0, txid=n("nope"))
    r = s.x("init again (fences the old epoch)", INIT_PRODUCER_ID, iv, {"transactionalId": tx, "transactionTimeoutMs": 60000})
    end("end with the fenced epoch", True, epoch=ep)
    add_parts("add partitions with the fenced epoch", ep)
    fv = min(latest(FETCH), 12)  # by topic name
    s.x("fetch read_committed", FETCH, fv, {
        "maxWaitMs": 0, "minBytes": 1, "maxBytes": 1 << 20, "isolationLevel": 1, "sessionId": 0, "sessionEpoch": -1,
        "topics": [{"topic": t, "partitions": [{"partition": p, "fetchOffset": 0, "partitionMaxBytes": 1 << 20,
                                                 "logStartOffset": -1, "currentLeaderEpoch": -1} for p in (0, 1)]}]})


from oracle_streams import STREAMS_APIS, STREAMS_GROUP_HEARTBEAT, fam_streams  # noqa: E402
import oracle_share  # noqa: E402  (it imports this module: after its definitions)
import oracle_consumer  # noqa: E402  (the same)

# (name, primary API, mode, function); mode "version": once per common version,
# "once": a single run at the latest common version, ("family", apis): indexes
SCENARIOS = [
    ("api_versions", API_VERSIONS, "version", sc_api_versions),
    ("api_versions_unsupported", API_VERSIONS, "once", sc_api_versions_unsupported),
    ("unsupported_version", METADATA, "once", sc_unsupported_version),
    ("metadata", METADATA, "version", sc_metadata),
    ("create_topics", CREATE_TOPICS, "version", sc_create_topics),
    ("delete_topics", DELETE_TOPICS, "version", sc_delete_topics),
    ("create_partitions", CREATE_PARTITIONS, "version", sc_create_partitions),
    ("produce", PRODUCE, "version", sc_produce),
    ("produce_first_look", PRODUCE, "version", sc_produce_first_look),
    ("produce_keyless_compacted", PRODUCE, "version", sc_produce_keyless_compacted),
    ("produce_idempotent", PRODUCE, "version", sc_produce_idempotent),
    ("produce_txn_not_added", PRODUCE, "version", sc_produce_txn_not_added),
    ("produce_txn_sequence", PRODUCE, "version", sc_produce_txn_sequence),
    ("fetch", FETCH, "version", sc_fetch),
    ("fetch_sessions", FETCH, "version", sc_fetch_sessions),
    ("list_offsets", LIST_OFFSETS, "version", sc_list_offsets),
    ("offset_for_leader_epoch", OFFSET_FOR_LEADER_EPOCH, "version", sc_offset_for_leader_epoch),
    ("init_producer_id", INIT_PRODUCER_ID, "version", sc_init_producer_id),
    ("find_coordinator", FIND_COORDINATOR, "version", sc_find_coordinator),
    ("describe_configs", DESCRIBE_CONFIGS, "version", sc_describe_configs),
    ("describe_configs_broker_all", DESCRIBE_CONFIGS, "once", sc_describe_configs_broker_all),
    ("describe_configs_group", DESCRIBE_CONFIGS, "once", sc_describe_configs_group),
    ("alter_configs", ALTER_CONFIGS, "version", sc_alter_configs),
    ("alter_configs_broker", ALTER_CONFIGS, "once", sc_alter_configs_broker),
    ("incremental_alter_configs", INCREMENTAL_ALTER_CONFIGS, "version", sc_incremental_alter_configs),
    ("incremental_alter_configs_broker", INCREMENTAL_ALTER_CONFIGS, "once", sc_incremental_alter_configs_broker),
    ("incremental_alter_configs_group", INCREMENTAL_ALTER_CONFIGS, "once", sc_incremental_alter_configs_group),
    ("broker_dynamic_configs", INCREMENTAL_ALTER_CONFIGS, "once", sc_broker_dynamic_configs),
    ("group_configs", INCREMENTAL_ALTER_CONFIGS, "version", sc_group_configs),
    ("delete_records", DELETE_RECORDS, "version", sc_delete_records),
    ("describe_cluster", DESCRIBE_CLUSTER, "version", sc_describe_cluster),
    ("update_features", UPDATE_FEATURES, "version", sc_update_features),
    ("describe_log_dirs", DESCRIBE_LOG_DIRS, "version", sc_describe_log_dirs),
    ("delete_groups", DELETE_GROUPS, "version", sc_delete_groups),
    ("elect_leaders", ELECT_LEADERS, "version", sc_elect_leaders),
    ("alter_partition_reassignments", ALTER_PARTITION_REASSIGNMENTS, "version", sc_partition_reassignments),
    ("list_partition_reassignments", LIST_PARTITION_REASSIGNMENTS, "version", sc_list_partition_reassignments),
    ("client_quotas", ALTER_CLIENT_QUOTAS, "version", sc_client_quotas),
    ("describe_client_quotas", DESCRIBE_CLIENT_QUOTAS, "version", sc_describe_client_quotas),
    ("acls", DESCRIBE_ACLS, ("family", (DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS)), fam_acls),
    ("describe_producers", DESCRIBE_PRODUCERS, "version", sc_describe_producers),
    ("describe_transactions", DESCRIBE_TRANSACTIONS, "version", sc_describe_transactions),
    ("list_transactions", LIST_TRANSACTIONS, "version", sc_list_transactions),
    ("describe_topic_partitions", DESCRIBE_TOPIC_PARTITIONS, "version", sc_describe_topic_partitions),
    ("list_config_resources", LIST_CONFIG_RESOURCES, "version", sc_list_config_resources),
    ("describe_share_group_offsets", DESCRIBE_SHARE_GROUP_OFFSETS, "version", sc_describe_share_group_offsets),
    ("write_txn_markers", WRITE_TXN_MARKERS, "version", sc_write_txn_markers),
    ("group_lifecycle", JOIN_GROUP, ("family", GROUP_APIS), fam_group),
    ("txn_lifecycle", INIT_PRODUCER_ID, ("family", TXN_APIS), fam_txn),
    ("streams_lifecycle", STREAMS_GROUP_HEARTBEAT, ("family", STREAMS_APIS), fam_streams),
    ("share_lifecycle", oracle_share.SHARE_GROUP_HEARTBEAT, ("family", oracle_share.SHARE_APIS),
     oracle_share.fam_share),
    ("alter_share_group_offsets", ALTER_SHARE_GROUP_OFFSETS, "version", oracle_share.sc_alter_share_group_offsets),
    ("delete_share_group_offsets", oracle_share.DELETE_SHARE_GROUP_OFFSETS, "version",
     oracle_share.sc_delete_share_group_offsets),
    ("share_dlq_group_configs", INCREMENTAL_ALTER_CONFIGS, "once", oracle_share.sc_share_dlq_group_configs),
    ("consumer_lifecycle", oracle_consumer.CONSUMER_GROUP_HEARTBEAT, ("family", oracle_consumer.CONSUMER_APIS),
     oracle_consumer.fam_consumer),
]

