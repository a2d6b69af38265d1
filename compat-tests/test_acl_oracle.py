"""Differential oracle for ACLs: a real Apache Kafka 4.4 and kastle, both with
``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=true`` and no super
users (PLAINTEXT: every client, and Kafka's own broker-to-controller traffic,
is ``User:ANONYMOUS``; with no ACL on the cluster resource Kafka's own
traffic stays allowed). The same raw requests go to both (built by Kafka's
message classes, ``oracle_lib``) and the answers are compared after
``oracle_lib.normalise``:

* CreateAcls (valid and refused creations), DescribeAcls with ANY / MATCH /
  LITERAL / PREFIXED filters, DeleteAcls per filter;
* enforcement with ACLs for ``User:ANONYMOUS``: Produce, Fetch, ListOffsets,
  Metadata (no existence leak, authorized operations), FindCoordinator,
  JoinGroup, OffsetCommit, OffsetFetch, CreateTopics, DeleteTopics,
  DescribeConfigs, InitProducerId.

DescribeAcls answers group ACLs by resource from a hash map in Kafka: the
comparison sorts ``resources`` (by every field) on both sides.
"""
import time
import uuid

import pytest

import jvm_lib
import oracle_scenarios as sc
from conftest import Broker, free_port
from kafka_oracle import MODULE, RealKafka
from oracle_lib import OracleProxy, Side, batch, diff, normalise, records
from test_kafka_oracle import _same_configuration_as

AUTHORIZER = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
}

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP = 8, 9, 10, 11
CREATE_TOPICS, DELETE_TOPICS, INIT_PRODUCER_ID = 19, 20, 22
DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS, DESCRIBE_CONFIGS = 29, 30, 31, 32

ANON = "User:ANONYMOUS"
TOPIC, GROUP, TXN_ID = 2, 3, 5
ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
READ, WRITE, DESCRIBE = 3, 4, 8
DENY, ALLOW = 2, 3


def acl(rt, name, pt, op, perm=ALLOW, principal=ANON, host="*"):
    return {"resourceType": rt, "resourceName": name, "resourcePatternType": pt,
            "principal": principal, "host": host, "operation": op, "permissionType": perm}


def acl_filter(rt=ANY, name=None, pt=ANY, principal=None, op=ANY, perm=ANY):
    return {"resourceTypeFilter": rt, "resourceNameFilter": name, "patternTypeFilter": pt,
            "principalFilter": principal, "hostFilter": None, "operation": op,
            "permissionType": perm}


def await_acls(s, n, count, timeout=15):
    """Kafka applies CreateAcls/DeleteAcls through its metadata log: wait until
    DescribeAcls of this scenario's prefix lists ``count`` ACLs."""
    deadline = time.monotonic() + timeout
    while True:
        r = s.x("await", DESCRIBE_ACLS, 3, acl_filter(), record=False)
        got = sum(len(res["acls"]) for res in r.get("resources", [])
                  if res["resourceName"].startswith(n("")))
        if got == count or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def sorted_resources(resp):
    if isinstance(resp, dict) and "resources" in resp:
        resp["resources"] = sorted(resp["resources"], key=lambda r: repr(sorted(r.items())))
    return resp


def scenario_acl_apis(s, n):
    s.x("create", CREATE_ACLS, 3, {"creations": [
        acl(TOPIC, n("orders"), LITERAL, READ, principal="User:alice"),
        acl(TOPIC, n("ord"), PREFIXED, WRITE, principal="User:bob"),
        acl(TOPIC, n("orders"), LITERAL, DESCRIBE, DENY, principal="User:*"),
        acl(GROUP, n("g"), LITERAL, READ, principal="User:alice", host="10.1.2.3"),
        acl(TOPIC, n("bad"), LITERAL, READ, principal="alice"),
        acl(TOPIC, "", LITERAL, READ, principal="User:alice"),
        acl(4, "not-kafka-cluster", LITERAL, 2),
    ]})
    await_acls(s, n, 4)
    s.x("describe match", DESCRIBE_ACLS, 3, acl_filter(rt=TOPIC, name=n("orders"), pt=MATCH))
    s.x("describe any by name", DESCRIBE_ACLS, 3, acl_filter(name=n("orders")))
    s.x("describe literal", DESCRIBE_ACLS, 3, acl_filter(name=n("orders"), pt=LITERAL))
    s.x("describe prefixed", DESCRIBE_ACLS, 3, acl_filter(name=n("ord"), pt=PREFIXED))
    s.x("describe by principal", DESCRIBE_ACLS, 3, acl_filter(name=n("g"), principal="User:alice"))
    s.x("describe v1", DESCRIBE_ACLS, 1, acl_filter(rt=GROUP, name=n("g")))
    s.x("delete", DELETE_ACLS, 3, {"filters": [
        acl_filter(rt=TOPIC, name=n("orders"), pt=MATCH, principal="User:alice"),
        acl_filter(rt=GROUP, name=n("g"), pt=LITERAL),
        acl_filter(rt=TOPIC, name=n("nothing"), pt=LITERAL)]})
    await_acls(s, n, 2)
    s.x("describe after delete", DESCRIBE_ACLS, 3, acl_filter(rt=TOPIC, name=n("orders"), pt=MATCH))
    s.x("delete rest", DELETE_ACLS, 2, {"filters": [acl_filter(rt=TOPIC, name=n("ord"), pt=MATCH)]})
    await_acls(s, n, 0)
    # UNKNOWN codes (0, or codes this version does not know): Kafka cannot
    # build the request and closes the connection
    s.x("create with unknown operation", CREATE_ACLS, 3, {"creations": [
        acl(TOPIC, n("u"), LITERAL, 0)]}, conn="unknown-1")
    s.x("create with unknown resource type", CREATE_ACLS, 3, {"creations": [
        acl(0, n("u"), LITERAL, READ)]}, conn="unknown-2")
    s.x("describe with unknown pattern type", DESCRIBE_ACLS, 3, acl_filter(pt=0), conn="unknown-3")
    s.x("delete with unknown permission", DELETE_ACLS, 3, {"filters": [acl_filter(perm=0)]},
        conn="unknown-4")
    s.x("create with resource type ANY", CREATE_ACLS, 3, {"creations": [
        acl(ANY, n("u"), LITERAL, READ)]}, conn="unknown-5")
    s.x("create with operation ANY", CREATE_ACLS, 3, {"creations": [
        acl(TOPIC, n("u"), LITERAL, ANY)]}, conn="unknown-6")


def scenario_enforcement(s, n):
    for t in ("open", "hidden"):
        sc.create_topic(s, n(t))
    s.x("create acls", CREATE_ACLS, 3, {"creations": [
        # "open" is readable and writable; "hidden" has an ACL for someone else
        acl(TOPIC, n("open"), LITERAL, READ), acl(TOPIC, n("open"), LITERAL, WRITE),
        acl(TOPIC, n("hidden"), LITERAL, READ, principal="User:someone"),
        acl(TOPIC, n("missing"), LITERAL, READ, principal="User:someone"),
        acl(GROUP, n("g"), LITERAL, READ, principal="User:someone"),
        acl(TXN_ID, n("tx"), LITERAL, WRITE, principal="User:someone"),
    ]}, record=False)
    await_acls(s, n, 6)
    blob = batch(records(2))
    for t in ("open", "hidden"):
        s.x(f"produce {t}", PRODUCE, 11, {"acks": -1, "timeoutMs": 5000, "topicData": [
            {"name": n(t), "partitionData": [{"index": 0, "records": blob}]}]})
        s.x(f"fetch {t}", FETCH, 12, {"replicaId": -1, "maxWaitMs": 0, "minBytes": 0, "maxBytes": 1 << 20,
                                      "isolationLevel": 0, "topics": [{"topic": n(t), "partitions": [
                                          {"partition": 0, "fetchOffset": 0, "partitionMaxBytes": 1 << 20}]}]})
        s.x(f"list offsets {t}", LIST_OFFSETS, 9, {"replicaId": -1, "isolationLevel": 0, "topics": [
            {"name": n(t), "partitions": [{"partitionIndex": 0, "timestamp": -1}]}]})
    s.x("metadata by name", METADATA, 12, {"topics": [
        {"name": n("open")}, {"name": n("hidden")}, {"name": n("missing")}],
        "allowAutoTopicCreation": False, "includeTopicAuthorizedOperations": True})
    s.x("find coordinator", FIND_COORDINATOR, 4, {"keyType": 0, "coordinatorKeys": [n("g"), n("free")]})
    s.x("find txn coordinator", FIND_COORDINATOR, 4, {"keyType": 1, "coordinatorKeys": [n("tx")]})
    s.x("join refused", JOIN_GROUP, 9, {"groupId": n("g"), "sessionTimeoutMs": 10000, "rebalanceTimeoutMs": 5000,
                                        "memberId": "", "protocolType": "consumer",
                                        "protocols": [{"name": "range", "metadata": ""}], "reason": None})
    s.x("commit refused", OFFSET_COMMIT, 9, {"groupId": n("g"), "generationIdOrMemberEpoch": -1, "memberId": "",
                                             "topics": [{"name": n("open"), "partitions": [
                                                 {"partitionIndex": 0, "committedOffset": 1}]}]})
    s.x("commit hidden topic", OFFSET_COMMIT, 9, {"groupId": n("free"), "generationIdOrMemberEpoch": -1,
                                                  "memberId": "", "topics": [{"name": n("hidden"), "partitions": [
                                                      {"partitionIndex": 0, "committedOffset": 1}]}]})
    s.x("offset fetch refused", OFFSET_FETCH, 9, {"groups": [{"groupId": n("g"), "topics": None}],
                                                  "requireStable": False})
    s.x("init producer id refused", INIT_PRODUCER_ID, 5, {"transactionalId": n("tx"), "transactionTimeoutMs": 60000,
                                                          "producerId": -1, "producerEpoch": -1})
    s.x("create topic with acl for someone else", CREATE_TOPICS, 7, {"topics": [
        {"name": n("missing"), "numPartitions": 1, "replicationFactor": -1}], "timeoutMs": 5000})
    s.x("delete hidden", DELETE_TOPICS, 6, {"topics": [{"name": n("hidden")}], "timeoutMs": 5000})
    s.x("describe configs hidden", DESCRIBE_CONFIGS, 4, {"resources": [
        {"resourceType": 2, "resourceName": n("hidden"), "configurationKeys": ["cleanup.policy"]}]})
    s.x("clean up", DELETE_ACLS, 3, {"filters": [acl_filter()]}, record=False)
    await_acls(s, n, 0)


def scenario_cluster(s, n):
    """ALL on the cluster for everyone's principal (Kafka's own broker-to-controller
    traffic needs CLUSTER_ACTION once the cluster has ACLs), DESCRIBE and
    DESCRIBE_CONFIGS denied: deny wins."""
    sc.create_topic(s, n("t"))
    s.x("create cluster acls", CREATE_ACLS, 3, {"creations": [
        acl(4, "kafka-cluster", LITERAL, 2), acl(4, "kafka-cluster", LITERAL, DESCRIBE, DENY),
        acl(4, "kafka-cluster", LITERAL, 10, DENY)]})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # until the DENY is in force on Kafka too
        r = s.x("await deny", DESCRIBE_ACLS, 3, acl_filter(), record=False)
        if r["errorCode"] != 0:
            break
        time.sleep(0.2)
    s.x("describe acls refused", DESCRIBE_ACLS, 3, acl_filter())
    s.x("describe log dirs refused", 35, 4, {"topics": None})
    s.x("list reassignments refused", 46, 0, {"timeoutMs": 5000, "topics": None})
    s.x("describe client quotas refused", 48, 1, {"components": [], "strict": False})
    s.x("describe broker configs refused", DESCRIBE_CONFIGS, 4, {"resources": [
        {"resourceType": 4, "resourceName": "1", "configurationKeys": ["log.retention.hours"]}]})
    s.x("list config resources refused", 74, 1, {"resourceTypes": [2]})
    s.x("metadata cluster operations", METADATA, 10, {"topics": [{"name": n("t")}],
        "allowAutoTopicCreation": False, "includeClusterAuthorizedOperations": True,
        "includeTopicAuthorizedOperations": True})
    s.x("describe cluster operations", 60, 1, {"includeClusterAuthorizedOperations": True,
                                              "endpointType": 1})
    s.x("create acls still allowed", CREATE_ACLS, 3, {"creations": [acl(TOPIC, n("t"), LITERAL, READ)]})
    s.x("clean up", DELETE_ACLS, 3, {"filters": [acl_filter()]}, record=False)
    await_acls_gone(s)


def await_acls_gone(s, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = s.x("await", DESCRIBE_ACLS, 3, acl_filter(), record=False)
        if r["errorCode"] == 0 and not r["resources"]:
            return
        time.sleep(0.2)


SCENARIOS = {"acl-apis": scenario_acl_apis, "enforcement": scenario_enforcement,
             "cluster": scenario_cluster}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    jvm_lib.jvm_module(MODULE)  # skips when the module is not built
    kafka = RealKafka(tmp_path_factory.mktemp("acl-kafka"), overrides=AUTHORIZER)
    kafka.start()
    port, controller_port = free_port(), free_port()
    workdir = tmp_path_factory.mktemp("acl-kastle")
    kastle = Broker(workdir, name="kastle (acl oracle)", port=port, overrides=_same_configuration_as(
        kafka, port, controller_port, workdir / "data"))
    kastle.extra_ports = (controller_port,)
    kastle.start()
    proxy = OracleProxy()
    # the versions both advertise, for oracle_scenarios' helpers
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
        yield kafka, kastle, proxy
    finally:
        proxy.close()
        kastle.stop(check=False)
        kafka.stop()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_acl_oracle(pair, name):
    kafka, kastle, proxy = pair
    prefix = f"acl-{uuid.uuid4().hex[:6]}-{name}"

    def n(x):
        return f"{prefix}-{x}"

    logs = {}
    for side, b in (("kafka", kafka), ("kastle", kastle)):
        s = Side(side, b.bootstrap, proxy, f"{prefix}-{side}")
        try:
            sc.warm_up(s)
            SCENARIOS[name](s, n)
        finally:
            s.close()
        logs[side] = s.log
    ports = {"kafka": [str(kafka.port), str(kafka.controller_port)],
             "kastle": [str(kastle.port), str(kastle.extra_ports[0])]}
    lines = []
    assert len(logs["kafka"]) == len(logs["kastle"])
    for (label, api, _, a), (_, _, _, b) in zip(logs["kafka"], logs["kastle"]):
        na = sorted_resources(normalise(a, ports["kafka"], prefix))
        nb = sorted_resources(normalise(b, ports["kastle"], prefix))
        lines += [f"{label} (api {api}): {path}: kafka={x} kastle={y}" for path, x, y in diff(na, nb)]
    assert not lines, f"{name}: kastle differs from Kafka 4.4:\n" + "\n".join(lines[:80])


def _acl_tool_script(bootstrap, topic):
    bs = ["--bootstrap-server", bootstrap]

    def inv(name, *args):
        return {"name": name, "main": "org.apache.kafka.tools.AclCommand",
                "args": [str(a) for a in bs + list(args)], "stdin": None, "fork": False}

    return [
        inv("add", "--add", "--allow-principal", "User:alice", "--operation", "Read",
            "--operation", "Write", "--topic", topic, "--resource-pattern-type", "prefixed"),
        inv("add_consumer", "--add", "--allow-principal", "User:bob", "--consumer",
            "--topic", topic, "--group", f"{topic}-g"),
        inv("list", "--list", "--topic", topic, "--resource-pattern-type", "match"),
        inv("remove", "--remove", "--force", "--topic", topic, "--resource-pattern-type", "any"),
        inv("list_after", "--list", "--topic", topic, "--resource-pattern-type", "any"),
        inv("remove_group", "--remove", "--force", "--group", f"{topic}-g"),
    ]


@pytest.mark.compat("kafka-tools", "admin")
def test_kafka_acls_tool(pair, tmp_path):
    """kafka-acls (AclCommand) adds, lists and removes ACLs on kastle as on Kafka."""
    from test_kafka_tools import run_tools
    kafka, kastle, _ = pair
    outs = {}
    for side, b in (("kafka", kafka), ("kastle", kastle)):
        topic = f"acl-tool-{uuid.uuid4().hex[:6]}"
        work = tmp_path / side
        work.mkdir()
        res = run_tools(_acl_tool_script(b.bootstrap, topic), work)
        for name, r in res.items():
            assert r["rc"] == 0, f"{side} {name}: rc {r['rc']}\n{r['out'][-3000:]}\n{r['err'][-3000:]}"
        # the ACLs as listed, the topic's random name taken out
        outs[side] = {k: sorted(ln.strip().replace(topic, "<t>") for ln in r["out"].splitlines()
                                if ln.strip()) for k, r in res.items()}
        listed = "\n".join(outs[side]["list"])
        assert "principal=User:alice" in listed and "operation=WRITE" in listed, listed
        assert "patternType=PREFIXED" in listed, listed
        assert "principal=User:bob" in listed and "operation=DESCRIBE" in listed, listed
        assert not any("principal=" in ln for ln in outs[side]["list_after"]), outs[side]["list_after"]
    # Kafka applies ACL changes through its metadata log, so a list right after
    # an add may lag there; the added ACLs themselves must be the same
    assert outs["kastle"]["add"] == outs["kafka"]["add"]
    assert outs["kastle"]["add_consumer"] == outs["kafka"]["add_consumer"]
