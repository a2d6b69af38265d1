"""The consumer group family of the differential oracle (test_kafka_oracle.py):
KIP-848's ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69) driven
over the raw protocol against Kafka 4.4 and kastle (``oracle_scenarios.SCENARIOS``
runs it as ``consumer_lifecycle``; index i covers version i of both APIs).

Each group asks for a deterministic assignment (``consumer.assignment.interval.ms``
0 and ``consumer.assignor.offload.enable`` false: the target assignment is
computed on the heartbeat that changes the group, on the coordinator's own
thread), so every recorded answer is the same whenever it is asked. Member
ids are chosen by the client (KIP-1082: required from v1; at v0 a client may
still choose one), except one v0 join that lets the coordinator generate it
(normalised, see oracle_lib) in a group of its own, so that random ids never
decide who gets which partition. Kafka resolves a subscribed regex
asynchronously: the regex member heartbeats, unrecorded, until its assignment
arrives, on both brokers.
"""
import time

import oracle_scenarios as sc

CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69
CONSUMER_APIS = (CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE)

LEAVE, STATIC_LEAVE = -1, -2
DETERMINISTIC = {"consumer.assignment.interval.ms": "0", "consumer.assignor.offload.enable": "false"}


def owned(r):
    """The partitions a heartbeat's answer assigns, as the next request's
    TopicPartitions (None when the answer carries no assignment)."""
    a = r.get("assignment")
    return None if a is None else [dict(tp) for tp in a["topicPartitions"]]


def has(r, topic_id):
    a = r.get("assignment")
    return bool(a) and any(tp["topicId"] == topic_id and tp["partitions"] for tp in a["topicPartitions"])


def fam_consumer(s, i, n):
    """Consumer groups from the first join to the last leave, both APIs at
    version min+i: validation, the assignment over heartbeats, revocation
    before a second member gets its share, fencing, static membership,
    a regex subscription (v1), a classic group's id, and describes."""
    hv, dv = (sc.ver(a, i) for a in CONSUMER_APIS)
    g, t = n("g"), n("t")
    tid = sc.create_topic(s, t, partitions=2)
    sc.set_group_configs(s, g, DETERMINISTIC)

    def beat(label, member, epoch, group=g, record=True, **fields):
        body = {"groupId": group, "memberId": member, "memberEpoch": epoch, "instanceId": None,
                "rackId": None, "rebalanceTimeoutMs": -1, "subscribedTopicNames": None,
                "serverAssignor": None, "topicPartitions": None}
        if hv >= 1:
            body["subscribedTopicRegex"] = None
        body.update(fields)
        return s.x(label, CONSUMER_GROUP_HEARTBEAT, hv, body, record=record)

    def join(label, member, group=g, **fields):
        fields = dict({"rebalanceTimeoutMs": 30000, "topicPartitions": [], "subscribedTopicNames": [t]}, **fields)
        return beat(label, member, 0, group=group, **fields)

    def describe(label, groups, authorized=False):
        return s.x(label, CONSUMER_GROUP_DESCRIBE, dv, {"groupIds": groups,
                                                         "includeAuthorizedOperations": authorized})

    # -- invalid requests (nothing is created) ---------------------------------------
    join("join with an empty group id", "member-a", group="")
    if hv >= 1:
        join("join without a member id", "")
    join("join without a rebalance timeout", "member-a", rebalanceTimeoutMs=-1)
    join("join without a subscription", "member-a", subscribedTopicNames=None)
    join("join with null owned partitions", "member-a", topicPartitions=None)
    join("join with owned partitions", "member-a", topicPartitions=[{"topicId": tid, "partitions": [0]}])
    join("join with an empty instance id", "member-a", instanceId="")
    join("join with an empty rack id", "member-a", rackId="")
    join("join with an unknown assignor", "member-a", serverAssignor="no-such-assignor")
    join("join with an empty assignor name", "member-a", serverAssignor="")
    beat("heartbeat at epoch -3", "member-a", -3)
    beat("static leave without an instance id", "member-a", STATIC_LEAVE)
    if hv >= 1:
        join("join with an invalid regex", "member-a", subscribedTopicNames=None, subscribedTopicRegex="[")
    beat("heartbeat to an unknown group", "member-a", 1, group=n("nogroup"))
    beat("leave of an unknown group", "member-a", LEAVE, group=n("nogroup"))
    describe("describe before any member", [g])

    # -- the first member: both partitions at once ------------------------------------
    r = join("join", "member-a")
    epoch_a, own_a = r.get("memberEpoch", 0), owned(r)
    r = beat("heartbeat", "member-a", epoch_a, topicPartitions=own_a)
    beat("heartbeat without owned partitions", "member-a", epoch_a)
    beat("heartbeat with a fenced epoch", "member-a", epoch_a + 5, topicPartitions=own_a)
    beat("heartbeat at an older epoch", "member-a", epoch_a - 1, topicPartitions=own_a)
    beat("heartbeat of an unknown member", "nobody", epoch_a)
    beat("leave of an unknown member", "nobody", LEAVE)
    r = join("join again at epoch 0", "member-a")  # a known member rejoining
    epoch_a, own_a = r.get("memberEpoch", epoch_a), owned(r) if owned(r) is not None else own_a
    r = beat("heartbeat after the rejoin", "member-a", epoch_a, topicPartitions=own_a)
    epoch_a, own_a = r.get("memberEpoch", epoch_a), owned(r) if owned(r) is not None else own_a
    describe("describe one member", [g, n("nogroup"), ""], authorized=True)

    # -- a second member: A gives a partition up before B gets it ---------------------
    r = join("second member joins", "member-b")
    epoch_b, own_b = r.get("memberEpoch", 0), owned(r) or []
    r = beat("first member is asked to revoke", "member-a", epoch_a, topicPartitions=own_a)
    own_a = owned(r) if owned(r) is not None else own_a
    describe("describe during the revocation", [g])
    r = beat("second member before the revocation", "member-b", epoch_b, topicPartitions=own_b)
    epoch_b, own_b = r.get("memberEpoch", epoch_b), owned(r) if owned(r) is not None else own_b
    r = beat("first member revoked", "member-a", epoch_a, topicPartitions=own_a)
    epoch_a, own_a = r.get("memberEpoch", epoch_a), owned(r) if owned(r) is not None else own_a
    r = beat("second member gets its partition", "member-b", epoch_b, topicPartitions=own_b)
    epoch_b, own_b = r.get("memberEpoch", epoch_b), owned(r) if owned(r) is not None else own_b
    beat("second member steady", "member-b", epoch_b, topicPartitions=own_b)
    describe("describe two members", [g])
    # what a steady member changes: its rebalance timeout, its rack, the
    # assignor it prefers (each answer's epoch says whether the group's moved)
    for label, change in (("a new rebalance timeout", {"rebalanceTimeoutMs": 45000}),
                          ("a rack", {"rackId": "rack-1"}),
                          ("the range assignor", {"serverAssignor": "range"})):
        r = beat(f"second member with {label}", "member-b", epoch_b, topicPartitions=own_b, **change)
        epoch_b, own_b = r.get("memberEpoch", epoch_b), owned(r) if owned(r) is not None else own_b
        describe(f"describe after {label}", [g])
    beat("first member leaves", "member-a", LEAVE)
    r = beat("second member after the leave", "member-b", epoch_b, topicPartitions=own_b)
    epoch_b = r.get("memberEpoch", epoch_b)
    beat("first member after its leave", "member-a", epoch_a, topicPartitions=own_a)
    beat("second member leaves", "member-b", LEAVE)
    describe("describe after the leaves", [g])

    # -- a member id the coordinator chooses (v0), in a group of its own ---------------
    if hv == 0:
        g0 = n("g-generated")
        sc.set_group_configs(s, g0, DETERMINISTIC)
        r = join("join without a member id", "", group=g0)
        mid = r.get("memberId") or ""
        beat("heartbeat with the generated id", mid, r.get("memberEpoch", 0), group=g0, topicPartitions=owned(r))
        beat("leave with the generated id", mid, LEAVE, group=g0)

    # -- static membership ---------------------------------------------------------------
    gs = n("g-static")
    sc.set_group_configs(s, gs, DETERMINISTIC)
    r = join("static join", "static-1", group=gs, instanceId="instance-1")
    epoch_s, own_s = r.get("memberEpoch", 0), owned(r)
    join("another member with the same instance id", "static-2", group=gs, instanceId="instance-1")
    beat("static heartbeat", "static-1", epoch_s, group=gs, topicPartitions=own_s)
    beat("static heartbeat under another instance id", "static-1", epoch_s, group=gs, instanceId="instance-9")
    beat("static leave (-2)", "static-1", STATIC_LEAVE, group=gs, instanceId="instance-1")
    describe("describe after the static leave", [gs])
    r = join("rejoin under a new member id", "static-2", group=gs, instanceId="instance-1")
    epoch_s2 = r.get("memberEpoch", 0)
    beat("the old member id after the rejoin", "static-1", epoch_s, group=gs, instanceId="instance-1")
    describe("describe after the rejoin", [gs])
    beat("static member leaves (-1)", "static-2", LEAVE, group=gs, instanceId="instance-1")
    beat("the member after its leave", "static-2", epoch_s2, group=gs, instanceId="instance-1")
    describe("describe after the static member's leave", [gs])

    # -- a regex subscription (v1), resolved asynchronously by Kafka -------------------
    if hv >= 1:
        gr = n("g-regex")
        sc.set_group_configs(s, gr, DETERMINISTIC)
        r = join("setup regex join", "regex-1", group=gr, subscribedTopicNames=None,
                 subscribedTopicRegex=f"{t}|{n('nothing')}.*", record=False)
        assert r["errorCode"] == 0, f"{s.name}: regex join: {r}"
        epoch_r, own_r = r["memberEpoch"], owned(r) or []
        deadline = time.monotonic() + 30
        while not has(r, tid):
            assert time.monotonic() < deadline, f"{s.name}: the regex never resolved: {r}"
            time.sleep(0.2)
            r = beat("setup await the regex", "regex-1", epoch_r, group=gr, topicPartitions=own_r, record=False)
            assert r["errorCode"] == 0, f"{s.name}: heartbeat while awaiting the regex: {r}"
            epoch_r, own_r = r["memberEpoch"], owned(r) if owned(r) is not None else own_r
        own_r = owned(r)
        beat("regex member steady", "regex-1", epoch_r, group=gr, topicPartitions=own_r)
        describe("describe the regex group", [gr])
        beat("regex changed to an invalid one", "regex-1", epoch_r, group=gr, subscribedTopicRegex="(")
        beat("names beside the regex (null: unchanged)", "regex-1", epoch_r, group=gr, topicPartitions=own_r,
             subscribedTopicNames=[t], subscribedTopicRegex=None)
        beat("regex member leaves", "regex-1", LEAVE, group=gr)
        # names and a regex at once are allowed (only what comes after
        # depends on when Kafka's resolution of the regex lands)
        gb = n("g-both")
        sc.set_group_configs(s, gb, DETERMINISTIC)
        join("join with names and a regex", "both-1", group=gb, subscribedTopicRegex=f"{t}.*")

    # -- a classic group's id -------------------------------------------------------------
    gc = n("g-classic")
    jv = sc.latest(sc.JOIN_GROUP)
    cjoin = {"groupId": gc, "sessionTimeoutMs": 30000, "rebalanceTimeoutMs": 30000, "memberId": "",
             "groupInstanceId": None, "protocolType": "connect", "protocols": [{"name": "v0", "metadata": ""}],
             "reason": None}
    r = s.x("setup classic join", sc.JOIN_GROUP, jv, cjoin, record=False)
    if r["errorCode"] == 79:  # MEMBER_ID_REQUIRED: join again with the given id
        r = s.x("setup classic join with member id", sc.JOIN_GROUP, jv, dict(cjoin, memberId=r["memberId"]),
                record=False)
    assert r["errorCode"] == 0, f"{s.name}: classic join: {r}"
    join("join a classic group's id", "member-c", group=gc)
    beat("heartbeat to a classic group's id", "member-c", 1, group=gc)
    describe("describe a classic group", [gc, g])
