"""Authorization matrix against a real Apache Kafka 4.4: every API kastle
advertises, sent by a non-super-user (``User:alice`` over SASL_PLAINTEXT
PLAIN), once with no ACL at all and once with exactly the ACLs Kafka requires
for it, to kastle and to Kafka with the same listeners, JAAS and authorizer
(``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=false``,
``super.users=User:ANONYMOUS``: the PLAINTEXT listener is the administrator's,
and Kafka's own inter-broker traffic).

The raw requests come from ``oracle_lib`` (Kafka's message classes, the Oracle
JVM authenticating its connection with SASL PLAIN). The answers are compared
after ``oracle_lib.normalise`` on their authorization view (``authz_view``):
every error code (top level, per topic / partition / group / resource), every
authorized-operations field, and which topics, groups and transactions are
listed at all (so TOPIC_AUTHORIZATION_FAILED against UNKNOWN_TOPIC_OR_PARTITION
and hidden entries are compared: no existence leak).

Each case uses its own resources, so the ACLs of every case without a CLUSTER
ACL are granted together; cases that need the same CLUSTER ACL share a round.
Differences that stay are listed in ``oracle_deviations.AUTHZ`` with the reason.
"""
import base64
import json
import os
import re
import time
import uuid

import pytest

import jvm_lib
import oracle_scenarios as sc
from conftest import Broker, free_port
from kafka_oracle import MODULE, RealKafka
from oracle_deviations import AUTHZ, AUTHZ_NOT_SENT
from oracle_lib import OracleProxy, Side, batch, diff, normalise, records

ALICE = ("alice", "alice-secret")
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" '
        'user_admin="admin-secret" user_alice="alice-secret";')

TOPIC, GROUP, CLUSTER, TXN_ID = 2, 3, 4, 5
LITERAL = 3
# AclOperation codes
READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 3, 4, 5, 6, 7, 8
CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 9, 10, 11, 12
ALLOW = 3


def security_overrides(plain, sasl, controller):
    listeners = f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
    return {
        "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": listeners,
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": "User:ANONYMOUS",
    }


class AliceSide(Side):
    """A Side whose connections authenticate as alice (SASL PLAIN)."""

    def x(self, label, api, version, body=None, conn="main", record=True, **opts):
        return super().x(label, api, version, body, conn=conn, record=record,
                         sasl_plain=list(ALICE), **opts)


def acl(rt, name, op, principal="User:alice"):
    return {"resourceType": rt, "resourceName": name, "resourcePatternType": LITERAL,
            "principal": principal, "host": "*", "operation": op, "permissionType": ALLOW}


def acl_filter(principal=None, rt=1, name=None):
    return {"resourceTypeFilter": rt, "resourceNameFilter": name, "patternTypeFilter": 1,
            "principalFilter": principal, "hostFilter": None, "operation": 1, "permissionType": 1}


CLUSTER_NAME = "kafka-cluster"


# ---------------------------------------------------------------------------
# the cases: (label, api, version (None: latest both advertise), setup, body, grants)
# setup(admin, n) -> ctx (per broker); body(n, ctx) -> request; grants(n) -> ACLs
# ---------------------------------------------------------------------------

def _topic(key):
    def setup(a, n):
        return {"topic_id": sc.create_topic(a, n(f"{key}-t"))}
    return setup


def _topic_and_group(key):
    """A topic and a group with a committed offset on it (admin's commit)."""
    def setup(a, n):
        topic_id = sc.create_topic(a, n(f"{key}-t"))
        r = a.x("setup commit", sc.OFFSET_COMMIT, min(sc.latest(sc.OFFSET_COMMIT), 9), {
            "groupId": n(f"{key}-g"), "generationIdOrMemberEpoch": -1, "memberId": "",
            "topics": [{"name": n(f"{key}-t"), "partitions": [
                {"partitionIndex": 0, "committedOffset": 0}]}]}, record=False)
        assert r["topics"][0]["partitions"][0]["errorCode"] == 0, r
        return {"topic_id": topic_id}
    return setup


def _txn(key, with_topic=True):
    """A transactional id initialised by the administrator (its producer id and
    epoch; with a topic, the topic's id too)."""
    def setup(a, n):
        topic_id = sc.create_topic(a, n(f"{key}-t")) if with_topic else None
        r = sc.init_pid(a, txn_id=n(f"{key}-x"))
        assert r["errorCode"] == 0, r
        return {"pid": r["producerId"], "epoch": r["producerEpoch"], "topic_id": topic_id}
    return setup


def _none(a, n):
    return {}


def _member_id():
    """A client-generated member id as the Java client makes it (a base64 UUID)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _share_member(key):
    """A topic and a share group the administrator joined: its member id and
    the topic id, for the share-fetch cases (KIP-932)."""
    def setup(a, n):
        topic_id = sc.create_topic(a, n(f"{key}-t"))
        member = _member_id()
        r = a.x("setup share join", 76, 1, {
            "groupId": n(f"{key}-g"), "memberId": member, "memberEpoch": 0, "rackId": None,
            "subscribedTopicNames": [n(f"{key}-t")]}, record=False)
        assert r["errorCode"] == 0, r
        return {"topic_id": topic_id, "member": member}
    return setup


def _streams_heartbeat(n, key):
    """A KIP-1071 join of member m-<key> to group <key>-g whose topology reads
    only <key>-t (a source topic: no internal topic asks for CREATE)."""
    return {"groupId": n(f"{key}-g"), "memberId": "m-" + n(key), "memberEpoch": 0,
            "endpointInformationEpoch": -1, "instanceId": None, "rackId": None,
            "rebalanceTimeoutMs": 30000,
            "topology": {"epoch": 1, "subtopologies": [
                {"subtopologyId": "0", "sourceTopics": [n(f"{key}-t")],
                 "sourceTopicRegex": [], "stateChangelogTopics": [],
                 "repartitionSinkTopics": [], "repartitionSourceTopics": [],
                 "copartitionGroups": []}]},
            "activeTasks": [], "standbyTasks": [], "warmupTasks": [],
            "processId": "p", "userEndpoint": None, "clientTags": [],
            "taskOffsets": None, "taskEndOffsets": None, "shutdownApplication": False}


def _consumer_heartbeat(n, key):
    """A KIP-848 join of member m-<key> to group <key>-g subscribed to <key>-t."""
    return {"groupId": n(f"{key}-g"), "memberId": "m-" + n(key), "memberEpoch": 0,
            "instanceId": None, "rackId": None, "rebalanceTimeoutMs": 30000,
            "subscribedTopicNames": [n(f"{key}-t")], "serverAssignor": None,
            "topicPartitions": []}


def _fetch_body(t):
    return {"replicaId": -1, "maxWaitMs": 0, "minBytes": 0, "maxBytes": 1 << 20, "isolationLevel": 0,
            "topics": [{"topic": t, "partitions": [
                {"partition": 0, "fetchOffset": 0, "partitionMaxBytes": 1 << 20}]}]}


CASES = [
    ("produce", sc.PRODUCE, 11, _topic("pr"),
     lambda n, c: {"acks": -1, "timeoutMs": 5000, "topicData": [
         {"name": t, "partitionData": [{"index": 0, "records": batch(records(1))}]}
         for t in (n("pr-t"), n("pr-missing"))]},
     lambda n: [acl(TOPIC, n("pr-t"), WRITE)]),
    # v13 names topics by id: an id no topic has is UNKNOWN_TOPIC_ID before
    # any authorization
    ("produce v13 (by topic id)", sc.PRODUCE, 13, _topic("p13"),
     lambda n, c: {"acks": -1, "timeoutMs": 5000, "topicData": [
         {"topicId": tid, "partitionData": [{"index": 0, "records": batch(records(1))}]}
         for tid in (c["topic_id"], sc.UNKNOWN_TOPIC_ID)]},
     lambda n: [acl(TOPIC, n("p13-t"), WRITE)]),
    ("fetch", sc.FETCH, 12, _topic("fe"), lambda n, c: _fetch_body(n("fe-t")),
     lambda n: [acl(TOPIC, n("fe-t"), READ)]),
    ("list offsets", sc.LIST_OFFSETS, None, _topic("lo"),
     lambda n, c: {"replicaId": -1, "isolationLevel": 0, "topics": [
         {"name": t, "partitions": [{"partitionIndex": 0, "timestamp": -1}]}
         for t in (n("lo-t"), n("lo-missing"))]},
     lambda n: [acl(TOPIC, n("lo-t"), DESCRIBE)]),
    ("metadata", sc.METADATA, None, _topic("md"),
     lambda n, c: {"topics": [{"name": n("md-t")}, {"name": n("md-missing")}],
                   "allowAutoTopicCreation": False, "includeTopicAuthorizedOperations": True},
     lambda n: [acl(TOPIC, n("md-t"), DESCRIBE), acl(TOPIC, n("md-t"), WRITE)]),
    ("metadata auto-create without CREATE", sc.METADATA, None, _none,
     lambda n, c: {"topics": [{"name": n("ma-missing")}], "allowAutoTopicCreation": True},
     lambda n: [acl(TOPIC, n("ma-missing"), DESCRIBE)]),
    # by topic name (v10 names topics by id)
    ("offset commit", sc.OFFSET_COMMIT, 9, _topic("oc"),
     lambda n, c: {"groupId": n("oc-g"), "generationIdOrMemberEpoch": -1, "memberId": "",
                   "topics": [{"name": n("oc-t"), "partitions": [
                       {"partitionIndex": 0, "committedOffset": 0}]}]},
     lambda n: [acl(GROUP, n("oc-g"), READ), acl(TOPIC, n("oc-t"), READ)]),
    ("offset fetch", sc.OFFSET_FETCH, 9, _topic_and_group("of"),
     lambda n, c: {"groups": [{"groupId": n("of-g"), "topics": [
         {"name": n("of-t"), "partitionIndexes": [0]}]}], "requireStable": False},
     lambda n: [acl(GROUP, n("of-g"), DESCRIBE), acl(TOPIC, n("of-t"), DESCRIBE)]),
    # v10 names topics by id: an id no topic has is UNKNOWN_TOPIC_ID after
    # the group's authorization, without any topic ACL
    ("offset commit v10 (by topic id)", sc.OFFSET_COMMIT, 10, _topic("o10"),
     lambda n, c: {"groupId": n("o10-g"), "generationIdOrMemberEpoch": -1, "memberId": "",
                   "topics": [{"topicId": tid, "partitions": [{"partitionIndex": 0, "committedOffset": 0}]}
                              for tid in (c["topic_id"], sc.UNKNOWN_TOPIC_ID)]},
     lambda n: [acl(GROUP, n("o10-g"), READ), acl(TOPIC, n("o10-t"), READ)]),
    ("offset fetch v10 (by topic id)", sc.OFFSET_FETCH, 10, _topic_and_group("f10"),
     lambda n, c: {"groups": [{"groupId": n("f10-g"), "topics": [
         {"topicId": tid, "partitionIndexes": [0]} for tid in (c["topic_id"], sc.UNKNOWN_TOPIC_ID)]}],
         "requireStable": False},
     lambda n: [acl(GROUP, n("f10-g"), DESCRIBE), acl(TOPIC, n("f10-t"), DESCRIBE)]),
    ("find group coordinator", sc.FIND_COORDINATOR, None, _none,
     lambda n, c: {"keyType": 0, "coordinatorKeys": [n("fc-g")]},
     lambda n: [acl(GROUP, n("fc-g"), DESCRIBE)]),
    ("find txn coordinator", sc.FIND_COORDINATOR, None, _none,
     lambda n, c: {"keyType": 1, "coordinatorKeys": [n("fc-x")]},
     lambda n: [acl(TXN_ID, n("fc-x"), DESCRIBE)]),
    ("join group", sc.JOIN_GROUP, None, _none,
     lambda n, c: {"groupId": n("jg-g"), "sessionTimeoutMs": 10000, "rebalanceTimeoutMs": 5000,
                   "memberId": "", "protocolType": "consumer",
                   "protocols": [{"name": "range", "metadata": ""}], "reason": None},
     lambda n: [acl(GROUP, n("jg-g"), READ)]),
    ("heartbeat", sc.HEARTBEAT, None, _none,
     lambda n, c: {"groupId": n("hb-g"), "generationId": 1, "memberId": "m"},
     lambda n: [acl(GROUP, n("hb-g"), READ)]),
    ("leave group", sc.LEAVE_GROUP, None, _none,
     lambda n, c: {"groupId": n("lg-g"), "members": [{"memberId": "m"}]},
     lambda n: [acl(GROUP, n("lg-g"), READ)]),
    ("sync group", sc.SYNC_GROUP, None, _none,
     lambda n, c: {"groupId": n("sg-g"), "generationId": 1, "memberId": "m",
                   "protocolType": "consumer", "protocolName": "range", "assignments": []},
     lambda n: [acl(GROUP, n("sg-g"), READ)]),
    ("describe groups", sc.DESCRIBE_GROUPS, None, _topic_and_group("dg"),
     lambda n, c: {"groups": [n("dg-g"), n("dg-other")], "includeAuthorizedOperations": True},
     lambda n: [acl(GROUP, n("dg-g"), DESCRIBE)]),
    ("list groups", sc.LIST_GROUPS, None, _topic_and_group("li"),
     lambda n, c: {"statesFilter": [], "typesFilter": []},
     lambda n: [acl(GROUP, n("li-g"), DESCRIBE)]),
    ("create topics", sc.CREATE_TOPICS, None, _none,
     lambda n, c: {"topics": [{"name": n(f"ct-{x}"), "numPartitions": 1, "replicationFactor": -1}
                              for x in ("new", "other")], "timeoutMs": 5000},
     lambda n: [acl(TOPIC, n("ct-new"), CREATE)]),
    ("delete topics", sc.DELETE_TOPICS, None, _topic("dt"),
     lambda n, c: {"topics": [{"name": n("dt-t")}, {"name": n("dt-missing")}], "timeoutMs": 5000},
     lambda n: [acl(TOPIC, n("dt-t"), DELETE)]),
    ("delete records", sc.DELETE_RECORDS, None, _topic("dr"),
     lambda n, c: {"topics": [{"name": t, "partitions": [{"partitionIndex": 0, "offset": -1}]}
                              for t in (n("dr-t"), n("dr-missing"))], "timeoutMs": 5000},
     lambda n: [acl(TOPIC, n("dr-t"), DELETE)]),
    ("init producer id (transactional)", sc.INIT_PRODUCER_ID, None, _none,
     lambda n, c: {"transactionalId": n("ip-x"), "transactionTimeoutMs": 60000},
     lambda n: [acl(TXN_ID, n("ip-x"), WRITE)]),
    ("init producer id (idempotent, topic WRITE: KIP-679)", sc.INIT_PRODUCER_ID, None, _none,
     lambda n, c: {"transactionalId": None, "transactionTimeoutMs": 60000},
     lambda n: [acl(TOPIC, n("ipw-any"), WRITE)]),
    ("init producer id (idempotent, CLUSTER IDEMPOTENT_WRITE)", sc.INIT_PRODUCER_ID, None, _none,
     lambda n, c: {"transactionalId": None, "transactionTimeoutMs": 60000},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, IDEMPOTENT_WRITE)]),
    ("offset for leader epoch", sc.OFFSET_FOR_LEADER_EPOCH, None, _topic("oe"),
     lambda n, c: {"replicaId": -1, "topics": [{"topic": t, "partitions": [
         {"partition": 0, "currentLeaderEpoch": -1, "leaderEpoch": 0}]}
         for t in (n("oe-t"), n("oe-missing"))]},
     lambda n: [acl(TOPIC, n("oe-t"), DESCRIBE)]),
    ("add partitions to txn v3", sc.ADD_PARTITIONS_TO_TXN, 3, _txn("ap"),
     lambda n, c: {"v3AndBelowTransactionalId": n("ap-x"), "v3AndBelowProducerId": c["pid"],
                   "v3AndBelowProducerEpoch": c["epoch"], "v3AndBelowTopics": [
                       {"name": t, "partitions": [0]} for t in (n("ap-t"), n("ap-missing"))]},
     lambda n: [acl(TXN_ID, n("ap-x"), WRITE), acl(TOPIC, n("ap-t"), WRITE)]),
    ("add partitions to txn v4 (broker verification)", sc.ADD_PARTITIONS_TO_TXN, None, _txn("av"),
     lambda n, c: {"transactions": [{"transactionalId": n("av-x"), "producerId": c["pid"],
                                     "producerEpoch": c["epoch"], "verifyOnly": True,
                                     "topics": [{"name": n("av-t"), "partitions": [0]}]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, CLUSTER_ACTION)]),
    # WriteTxnMarkers (27) is what a transaction coordinator sends a partition
    # leader; v1, the version both brokers serve.
    ("write txn markers", 27, 1, _txn("wm"),
     lambda n, c: {"markers": [{"producerId": c["pid"], "producerEpoch": c["epoch"],
                                "transactionResult": False, "coordinatorEpoch": 0,
                                "topics": [{"name": n("wm-t"), "partitionIndexes": [0]}]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, CLUSTER_ACTION)]),
    ("add offsets to txn", sc.ADD_OFFSETS_TO_TXN, None, _txn("ao", with_topic=False),
     lambda n, c: {"transactionalId": n("ao-x"), "producerId": c["pid"],
                   "producerEpoch": c["epoch"], "groupId": n("ao-g")},
     lambda n: [acl(TXN_ID, n("ao-x"), WRITE), acl(GROUP, n("ao-g"), READ)]),
    ("end txn", sc.END_TXN, None, _txn("et", with_topic=False),
     lambda n, c: {"transactionalId": n("et-x"), "producerId": c["pid"],
                   "producerEpoch": c["epoch"], "committed": False},
     lambda n: [acl(TXN_ID, n("et-x"), WRITE)]),
    # by topic name: v5 (v6 names topics by id)
    ("txn offset commit", sc.TXN_OFFSET_COMMIT, 5, _txn("to"),
     lambda n, c: {"transactionalId": n("to-x"), "groupId": n("to-g"), "producerId": c["pid"],
                   "producerEpoch": c["epoch"], "topics": [{"name": n("to-t"), "partitions": [
                       {"partitionIndex": 0, "committedOffset": 1}]}]},
     lambda n: [acl(TXN_ID, n("to-x"), WRITE), acl(GROUP, n("to-g"), READ),
                acl(TOPIC, n("to-t"), READ)]),
    ("txn offset commit v6 (by topic id)", sc.TXN_OFFSET_COMMIT, 6, _txn("t6"),
     lambda n, c: {"transactionalId": n("t6-x"), "groupId": n("t6-g"), "producerId": c["pid"],
                   "producerEpoch": c["epoch"], "topics": [{"topicId": c["topic_id"], "partitions": [
                       {"partitionIndex": 0, "committedOffset": 1}]}]},
     lambda n: [acl(TXN_ID, n("t6-x"), WRITE), acl(GROUP, n("t6-g"), READ),
                acl(TOPIC, n("t6-t"), READ)]),
    # v6: an id no topic has is UNKNOWN_TOPIC_ID after the transactional id's
    # and the group's authorization, without any topic ACL
    ("txn offset commit v6 by an unknown id", sc.TXN_OFFSET_COMMIT, 6, _txn("tu", with_topic=False),
     lambda n, c: {"transactionalId": n("tu-x"), "groupId": n("tu-g"), "producerId": c["pid"],
                   "producerEpoch": c["epoch"], "topics": [{"topicId": sc.UNKNOWN_TOPIC_ID, "partitions": [
                       {"partitionIndex": 0, "committedOffset": 1}]}]},
     lambda n: [acl(TXN_ID, n("tu-x"), WRITE), acl(GROUP, n("tu-g"), READ)]),
    ("describe acls", sc.DESCRIBE_ACLS, None, _none,
     lambda n, c: acl_filter(rt=TOPIC, name=n("da-nothing")),
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE)]),
    ("create acls", sc.CREATE_ACLS, None, _none,
     lambda n, c: {"creations": [acl(TOPIC, n("ca-zed"), READ, principal="User:zed")]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER)]),
    ("delete acls", sc.DELETE_ACLS, None, _none,
     lambda n, c: {"filters": [acl_filter(rt=TOPIC, name=n("del-nothing"))]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER)]),
    ("describe topic configs", sc.DESCRIBE_CONFIGS, None, _topic("dc"),
     lambda n, c: {"resources": [{"resourceType": 2, "resourceName": t,
                                  "configurationKeys": ["cleanup.policy"]}
                                 for t in (n("dc-t"), n("dc-missing"))]},
     lambda n: [acl(TOPIC, n("dc-t"), DESCRIBE_CONFIGS)]),
    ("describe broker configs", sc.DESCRIBE_CONFIGS, None, _none,
     lambda n, c: {"resources": [{"resourceType": 4, "resourceName": "1",
                                  "configurationKeys": ["log.retention.hours"]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE_CONFIGS)]),
    ("alter topic configs", sc.ALTER_CONFIGS, None, _topic("ac"),
     lambda n, c: {"resources": [{"resourceType": 2, "resourceName": n("ac-t"), "configs": [
         {"name": "retention.ms", "value": "100000"}]}], "validateOnly": False},
     lambda n: [acl(TOPIC, n("ac-t"), ALTER_CONFIGS)]),
    ("alter broker configs", sc.ALTER_CONFIGS, None, _none,
     lambda n, c: {"resources": [{"resourceType": 4, "resourceName": "", "configs": [
         {"name": "log.cleaner.threads", "value": "1"}]}], "validateOnly": True},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER_CONFIGS)]),
    ("incremental alter topic configs", sc.INCREMENTAL_ALTER_CONFIGS, None, _topic("ia"),
     lambda n, c: {"resources": [{"resourceType": 2, "resourceName": t, "configs": [
         {"name": "retention.ms", "configOperation": 0, "value": "100000"}]}
         for t in (n("ia-t"), n("ia-missing"))], "validateOnly": False},
     lambda n: [acl(TOPIC, n("ia-t"), ALTER_CONFIGS)]),
    ("describe log dirs", sc.DESCRIBE_LOG_DIRS, None, _topic("dl"),
     lambda n, c: {"topics": [{"topic": n("dl-t"), "partitions": [0]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE)]),
    ("create partitions", sc.CREATE_PARTITIONS, None, _topic("cp"),
     lambda n, c: {"topics": [{"name": t, "count": 2, "assignments": None}
                              for t in (n("cp-t"), n("cp-missing"))],
                   "timeoutMs": 5000, "validateOnly": False},
     lambda n: [acl(TOPIC, n("cp-t"), ALTER)]),
    ("delete groups", sc.DELETE_GROUPS, None, _topic_and_group("dg2"),
     lambda n, c: {"groupsNames": [n("dg2-g"), n("dg2-missing")]},
     lambda n: [acl(GROUP, n("dg2-g"), DELETE)]),
    ("elect leaders", sc.ELECT_LEADERS, None, _topic("el"),
     lambda n, c: {"electionType": 0, "timeoutMs": 5000,
                   "topicPartitions": [{"topic": n("el-t"), "partitions": [0]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER)]),
    ("alter partition reassignments", sc.ALTER_PARTITION_REASSIGNMENTS, None, _topic("ar"),
     lambda n, c: {"timeoutMs": 5000, "topics": [{"name": n("ar-t"), "partitions": [
         {"partitionIndex": 0, "replicas": None}]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER)]),
    ("list partition reassignments", sc.LIST_PARTITION_REASSIGNMENTS, None, _topic("lr"),
     lambda n, c: {"timeoutMs": 5000, "topics": [{"name": n("lr-t"), "partitionIndexes": [0]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE)]),
    ("offset delete", sc.OFFSET_DELETE, None, _topic_and_group("od"),
     lambda n, c: {"groupId": n("od-g"), "topics": [{"name": n("od-t"), "partitions": [
         {"partitionIndex": 0}]}]},
     lambda n: [acl(GROUP, n("od-g"), DELETE), acl(TOPIC, n("od-t"), READ)]),
    ("offset delete without topic READ", sc.OFFSET_DELETE, None, _topic_and_group("on"),
     lambda n, c: {"groupId": n("on-g"), "topics": [{"name": n("on-t"), "partitions": [
         {"partitionIndex": 0}]}]},
     lambda n: [acl(GROUP, n("on-g"), DELETE)]),
    ("describe client quotas", sc.DESCRIBE_CLIENT_QUOTAS, None, _none,
     lambda n, c: {"components": [], "strict": False},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE_CONFIGS)]),
    ("alter client quotas", sc.ALTER_CLIENT_QUOTAS, None, _none,
     lambda n, c: {"entries": [{"entity": [{"entityType": "user", "entityName": "zed"}],
                                "ops": [{"key": "producer_byte_rate", "value": 1000.0,
                                         "remove": False}]}], "validateOnly": True},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER_CONFIGS)]),
    ("describe user scram credentials", 50, None, _none,
     lambda n, c: {"users": [{"name": "zed"}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE)]),
    ("alter user scram credentials", 51, None, _none,
     lambda n, c: {"deletions": [{"name": "zed", "mechanism": 1}], "upsertions": []},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER)]),
    ("describe cluster", sc.DESCRIBE_CLUSTER, None, _none,
     lambda n, c: {"includeClusterAuthorizedOperations": True, "endpointType": 1},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE)]),
    ("update features (validate only)", sc.UPDATE_FEATURES, None, _none,
     lambda n, c: {"timeoutMs": 30000, "validateOnly": True, "featureUpdates": [
         {"feature": "group.version", "maxVersionLevel": 0, "upgradeType": 2}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, ALTER)]),
    ("describe quorum", 55, None, _none,
     lambda n, c: {"topics": [{"topicName": "__cluster_metadata",
                               "partitions": [{"partitionIndex": 0}]}]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE)]),
    ("describe producers", sc.DESCRIBE_PRODUCERS, None, _topic("dp"),
     lambda n, c: {"topics": [{"name": t, "partitionIndexes": [0]}
                              for t in (n("dp-t"), n("dp-missing"))]},
     lambda n: [acl(TOPIC, n("dp-t"), READ)]),
    ("describe transactions", sc.DESCRIBE_TRANSACTIONS, None, _txn("dx", with_topic=False),
     lambda n, c: {"transactionalIds": [n("dx-x"), n("dx-missing")]},
     lambda n: [acl(TXN_ID, n("dx-x"), DESCRIBE)]),
    ("list transactions", sc.LIST_TRANSACTIONS, None, _txn("lx", with_topic=False),
     lambda n, c: {"stateFilters": [], "producerIdFilters": []},
     lambda n: [acl(TXN_ID, n("lx-x"), DESCRIBE)]),
    ("list config resources", sc.LIST_CONFIG_RESOURCES, None, _none,
     lambda n, c: {"resourceTypes": [4]},
     lambda n: [acl(CLUSTER, CLUSTER_NAME, DESCRIBE_CONFIGS)]),
    ("describe topic partitions", sc.DESCRIBE_TOPIC_PARTITIONS, None, _topic("tp"),
     lambda n, c: {"topics": [{"name": n("tp-t")}, {"name": n("tp-missing")}],
                   "responsePartitionLimit": 2000},
     lambda n: [acl(TOPIC, n("tp-t"), DESCRIBE)]),
    # KIP-1071: GROUP READ and DESCRIBE on every topic of the topology (a source
    # topic only, so no internal topic asks for CREATE).
    ("streams group heartbeat", 88, 0, _topic("sh"),
     lambda n, c: _streams_heartbeat(n, "sh"),
     lambda n: [acl(GROUP, n("sh-g"), READ), acl(TOPIC, n("sh-t"), DESCRIBE)]),
    # KIP-848: GROUP READ, then DESCRIBE on every subscribed topic
    # (KafkaApis.handleConsumerGroupHeartbeat); a topic alice may not describe
    # is TOPIC_AUTHORIZATION_FAILED even with the group granted.
    ("consumer group heartbeat", 68, None, _topic("ch"),
     lambda n, c: _consumer_heartbeat(n, "ch"),
     lambda n: [acl(GROUP, n("ch-g"), READ), acl(TOPIC, n("ch-t"), DESCRIBE)]),
    ("consumer group heartbeat without topic DESCRIBE", 68, None, _topic("cn"),
     lambda n, c: _consumer_heartbeat(n, "cn"),
     lambda n: [acl(GROUP, n("cn-g"), READ)]),
    ("consumer group describe", 69, None, _none,
     lambda n, c: {"groupIds": [n("cd-g")], "includeAuthorizedOperations": True},
     lambda n: [acl(GROUP, n("cd-g"), DESCRIBE)]),
    ("streams group describe", 89, 0, _none,
     lambda n, c: {"groupIds": [n("sd-g")], "includeAuthorizedOperations": True},
     lambda n: [acl(GROUP, n("sd-g"), DESCRIBE)]),
    # KIP-1331: version 1 of both (the same checks), and the topology
    # description update: GROUP READ, then (no description plugin)
    # UNSUPPORTED_VERSION.
    ("streams group heartbeat v1", 88, 1, _topic("sv"),
     lambda n, c: _streams_heartbeat(n, "sv"),
     lambda n: [acl(GROUP, n("sv-g"), READ), acl(TOPIC, n("sv-t"), DESCRIBE)]),
    ("streams group describe v1", 89, 1, _none,
     lambda n, c: {"groupIds": [n("sw-g")], "includeAuthorizedOperations": True,
                   "includeTopologyDescription": True},
     lambda n: [acl(GROUP, n("sw-g"), DESCRIBE)]),
    ("streams group topology description update", 93, 0, _none,
     lambda n, c: {"groupId": n("su-g"), "memberId": "m-" + n("su"), "topologyEpoch": 1,
                   "topologyDescription": {"subtopologies": [], "globalStores": []}},
     lambda n: [acl(GROUP, n("su-g"), READ)]),
    # KIP-932 share groups: GROUP READ, then DESCRIBE on every subscribed
    # topic (KafkaApis.handleShareGroupHeartbeat) ...
    ("share group heartbeat", 76, 1, _topic("gh"),
     lambda n, c: {"groupId": n("gh-g"), "memberId": _member_id(), "memberEpoch": 0,
                   "rackId": None, "subscribedTopicNames": [n("gh-t")]},
     lambda n: [acl(GROUP, n("gh-g"), READ), acl(TOPIC, n("gh-t"), DESCRIBE)]),
    ("share group heartbeat without topic DESCRIBE", 76, 1, _topic("gn"),
     lambda n, c: {"groupId": n("gn-g"), "memberId": _member_id(), "memberEpoch": 0,
                   "rackId": None, "subscribedTopicNames": [n("gn-t")]},
     lambda n: [acl(GROUP, n("gn-g"), READ)]),
    ("share group describe", 77, 1, _none,
     lambda n, c: {"groupIds": [n("gd-g")], "includeAuthorizedOperations": True},
     lambda n: [acl(GROUP, n("gd-g"), DESCRIBE)]),
    # ... GROUP READ, then TOPIC READ per partition for ShareFetch and
    # ShareAcknowledge (a member of the group, a new session; an
    # acknowledgement in a session that does not exist) ...
    ("share fetch", 78, 1, _share_member("sf"),
     lambda n, c: {"groupId": n("sf-g"), "memberId": c["member"], "shareSessionEpoch": 0,
                   "maxWaitMs": 0, "minBytes": 0, "maxBytes": 1 << 20, "maxRecords": 100,
                   "batchSize": 100, "topics": [{"topicId": c["topic_id"], "partitions": [
                       {"partitionIndex": 0, "acknowledgementBatches": []}]}],
                   "forgottenTopicsData": []},
     lambda n: [acl(GROUP, n("sf-g"), READ), acl(TOPIC, n("sf-t"), READ)]),
    ("share acknowledge", 79, 1, _share_member("sa"),
     lambda n, c: {"groupId": n("sa-g"), "memberId": c["member"], "shareSessionEpoch": 1,
                   "topics": [{"topicId": c["topic_id"], "partitions": [
                       {"partitionIndex": 0, "acknowledgementBatches": [
                           {"firstOffset": 0, "lastOffset": 0, "acknowledgeTypes": [1]}]}]}]},
     lambda n: [acl(GROUP, n("sa-g"), READ), acl(TOPIC, n("sa-t"), READ)]),
    # ... and the share-group offset admin APIs: GROUP DESCRIBE + TOPIC
    # DESCRIBE, GROUP READ + TOPIC READ, GROUP DELETE + TOPIC READ.
    ("describe share group offsets", 90, 0, _topic("do"),
     lambda n, c: {"groups": [{"groupId": n("do-g"), "topics": [
         {"topicName": n("do-t"), "partitions": [0]}]}]},
     lambda n: [acl(GROUP, n("do-g"), DESCRIBE), acl(TOPIC, n("do-t"), DESCRIBE)]),
    ("alter share group offsets", 91, 0, _topic("ao"),
     lambda n, c: {"groupId": n("ao-g"), "topics": [
         {"topicName": n("ao-t"), "partitions": [{"partitionIndex": 0, "startOffset": 0}]}]},
     lambda n: [acl(GROUP, n("ao-g"), READ), acl(TOPIC, n("ao-t"), READ)]),
    ("delete share group offsets", 92, 0, _topic("xo"),
     lambda n, c: {"groupId": n("xo-g"), "topics": [{"topicName": n("xo-t")}]},
     lambda n: [acl(GROUP, n("xo-g"), DELETE), acl(TOPIC, n("xo-t"), READ)]),
]

# what the matrix does not send, and why (checked against the advertised list)
NOT_SENT = {
    17: "SaslHandshake: authentication itself, before any authorization",
    36: "SaslAuthenticate: authentication itself, before any authorization",
    18: "ApiVersions: answered to anyone, before authentication too",
}


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------

ID_KEYS = ("name", "topic", "groupId", "transactionalId", "partitionIndex", "partition",
           "index", "resourceName", "resourceType", "key", "user", "nodeId")
SKIP = {"configs", "synonyms", "records", "abortedTransactions", "entries", "brokers",
        "replicaInfos"}


def authz_view(v, key=None):
    """What authorization decides in an answer: error codes, authorized
    operations, and the identity of every listed element."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in SKIP:
                continue
            if k.lower().endswith("errorcode") or k.endswith("AuthorizedOperations") or \
                    k == "authorizedOperations" or k in ID_KEYS or k in ("closed", "timeout"):
                out[k] = x
            elif isinstance(x, (dict, list)):
                sub = authz_view(x, k)
                if sub not in ({}, []):
                    out[k] = sub
        return out
    if isinstance(v, list):
        return [authz_view(x, key) for x in v]
    return v


def _collect(kafka_log, kastle_log, ports):
    lines = []
    assert [e[0] for e in kafka_log] == [e[0] for e in kastle_log]
    for (label, api, ver, a), (_, _, _, b) in zip(kafka_log, kastle_log):
        na = authz_view(normalise(a, ports["kafka"], ""))
        nb = authz_view(normalise(b, ports["kastle"], ""))
        for path, x, y in diff(na, nb):
            known = [why for lab, rx, why in AUTHZ if re.fullmatch(lab, label) and re.search(rx, path)]
            if not known:
                lines.append(f"{label} (api {api} v{ver}): {path}: kafka={x} kastle={y}")
    return lines


# ---------------------------------------------------------------------------
# running it
# ---------------------------------------------------------------------------

def await_alice_acls(admin, count, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        r = admin.x("await acls", sc.DESCRIBE_ACLS, 3, acl_filter(principal="User:alice"), record=False)
        got = sum(len(res["acls"]) for res in r.get("resources", []))
        if got == count:
            return
        assert time.monotonic() < deadline, f"{admin.name}: alice's ACLs never reached {count}: {r}"
        time.sleep(0.1)


def grant(admin, acls):
    acls = list({repr(sorted(a.items())): a for a in acls}.values())  # a round's shared ones once
    if acls:
        r = admin.x("grant", sc.CREATE_ACLS, 3, {"creations": acls}, record=False)
        assert all(x["errorCode"] == 0 for x in r["results"]), r
    await_alice_acls(admin, len(acls))


def revoke(admin):
    for p in ("User:alice", "User:zed"):
        admin.x("revoke", sc.DELETE_ACLS, 3, {"filters": [acl_filter(principal=p)]}, record=False)
    await_alice_acls(admin, 0)


def run_side(name, plain, sasl, proxy, prefix, cases):
    admin = Side(name, plain, proxy, f"{prefix}-{name}-admin")
    alice = AliceSide(name, sasl, proxy, f"{prefix}-{name}-alice")

    def n(x):
        return f"{prefix}-{x}"

    try:
        sc.warm_up(admin)
        ctx = {label: setup(admin, n) for label, _, _, setup, _, _ in cases}

        def send(label, api, version, body, phase):
            v = sc.latest(api) if version is None else version
            alice.x(f"{label} [{phase}]", api, v, body(n, ctx[label]), conn=f"{label}-{phase}")

        for label, api, version, _, body, _ in cases:
            send(label, api, version, body, "no ACL")
        # cases with the same CLUSTER ACLs share a round
        rounds = {}
        for c in cases:
            key = repr([a for a in c[5](n) if a["resourceType"] == CLUSTER])
            rounds.setdefault(key, []).append(c)
        rounds = list(rounds.values())
        for group in rounds:
            grant(admin, [a for c in group for a in c[5](n)])
            for label, api, version, _, body, _ in group:
                send(label, api, version, body, "ACL granted")
            revoke(admin)
    finally:
        admin.close()
        alice.close()
    return alice.log


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    jvm_lib.jvm_module(MODULE)  # skips when the module is not built
    kafka = RealKafka(tmp_path_factory.mktemp("authz-kafka"))
    kafka.sasl_port = free_port()
    kafka.overrides.update(security_overrides(kafka.port, kafka.sasl_port, kafka.controller_port))
    # A streams group's first assignment at once: kastle has no initial
    # rebalance delay yet (README), and the matrix compares the answers whole.
    kafka.overrides["group.streams.initial.rebalance.delay.ms"] = "0"
    kafka.start()
    port, sasl_port, controller_port = free_port(), free_port(), free_port()
    workdir = tmp_path_factory.mktemp("authz-kastle")
    overrides = {}
    for k, v in kafka.properties().items():
        for a, b in ((kafka.controller_port, controller_port), (kafka.sasl_port, sasl_port),
                     (kafka.port, port)):
            v = v.replace(f":{a}", f":{b}")
        overrides[k] = str(workdir / "data") if k == "log.dirs" else v
    kastle = Broker(workdir, name="kastle (authz matrix)", port=port, overrides=overrides)
    kastle.sasl_port = sasl_port
    kastle.start()
    proxy = OracleProxy()
    ranges = []
    for b in (kafka, kastle):
        r = proxy.call(addr=b.bootstrap, conn="apiversions", api=18, version=3,
                       body={"clientSoftwareName": "kastle-oracle", "clientSoftwareVersion": "1"})
        ranges.append({a["apiKey"]: (a["minVersion"], a["maxVersion"])
                       for a in r["response"]["apiKeys"]})
    sc.VERSIONS.clear()
    sc.VERSIONS.update({api: (max(lo, ranges[0][api][0]), min(hi, ranges[0][api][1]))
                        for api, (lo, hi) in ranges[1].items() if api in ranges[0]})
    try:
        yield kafka, kastle, proxy, ranges[1]
    finally:
        proxy.close()
        kastle.stop(check=False)
        kafka.stop()


def test_every_advertised_api_is_in_the_matrix(pair):
    """Every API kastle advertises is sent by the matrix, or listed with the reason it is not."""
    _, _, _, advertised = pair
    covered = {c[1] for c in CASES} | set(NOT_SENT) | set(AUTHZ_NOT_SENT)
    missing = sorted(set(advertised) - covered)
    assert not missing, f"APIs kastle advertises that the authorization matrix does not send: {missing}"


def test_authorization_matrix(pair):
    kafka, kastle, proxy, _ = pair
    prefix = f"az-{uuid.uuid4().hex[:6]}"
    logs = {}
    for side, b in (("kafka", kafka), ("kastle", kastle)):
        logs[side] = run_side(side, b.bootstrap, f"127.0.0.1:{b.sasl_port}", proxy, prefix, CASES)
    ports = {"kafka": [str(kafka.port), str(kafka.sasl_port), str(kafka.controller_port)],
             "kastle": [str(kastle.port), str(kastle.sasl_port)]}
    lines = _collect(logs["kafka"], logs["kastle"], ports)
    if os.environ.get("KASTLE_AUTHZ_DUMP"):  # both logs in full, for reading a difference
        with open(os.environ["KASTLE_AUTHZ_DUMP"], "w") as f:
            json.dump(logs, f, indent=1)
    assert not lines, "kastle's authorization differs from Kafka 4.4:\n" + "\n".join(lines[:120])

