"""The streams group family of the differential oracle (test_kafka_oracle.py):
KIP-1071's StreamsGroupHeartbeat (88) and StreamsGroupDescribe (89), and
KIP-1331's StreamsGroupTopologyDescriptionUpdate (93), as a default Kafka 4.4
serves them (no ``group.streams.topology.description.plugin.class``).

One lifecycle per family index i (``oracle_scenarios.ver``): a member joins a
fresh group whose configs ask for rack-aware client tags, heartbeats with task
offsets, is described with and without the topology description, pushes a
description (UNSUPPORTED_VERSION whatever the group, member or epoch: the
feature is off), and leaves. It pins what only Kafka can say: the v0
AcceptableRecoveryLag, Status ``[]`` against null, MISSING_CLIENT_TAGS at v1
only, AssignorName and TopologyDescriptionStatus at v1, and 93's check order.
"""
import oracle_scenarios as sc

STREAMS_GROUP_HEARTBEAT, STREAMS_GROUP_DESCRIBE, STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE = 88, 89, 93
STREAMS_APIS = (STREAMS_GROUP_HEARTBEAT, STREAMS_GROUP_DESCRIBE, STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE)


def _tags(*keys):
    return [{"key": k, "value": f"{k}-1"} for k in keys]


def fam_streams(s, i, n):
    """A streams group from a member's join to its leave, each streams API at
    version min+i (88 and 89: 0, 1; 93: 0)."""
    hv, dv, uv = (sc.ver(a, i) for a in STREAMS_APIS)
    g, t, mid = n("g"), n("t"), n("member")
    sc.create_topic(s, t, partitions=2)
    # A deterministic first assignment (no initial delay, no batching, on the
    # coordinator's own thread), and two rack-aware tags to ask members for.
    sc.set_group_configs(s, g, {"streams.initial.rebalance.delay.ms": "0",
                          "streams.assignment.interval.ms": "0",
                          "streams.assignor.offload.enable": "false",
                          "streams.rack.aware.assignment.tags": "zone,rack"})
    topology = {"epoch": 1, "subtopologies": [
        {"subtopologyId": "0", "sourceTopics": [t], "sourceTopicRegex": [], "stateChangelogTopics": [],
         "repartitionSinkTopics": [], "repartitionSourceTopics": [], "copartitionGroups": []}]}
    join = {"groupId": g, "memberId": mid, "memberEpoch": 0, "endpointInformationEpoch": -1,
            "instanceId": None, "rackId": None, "rebalanceTimeoutMs": 30000, "topology": topology,
            "activeTasks": [], "standbyTasks": [], "warmupTasks": [], "processId": "process-1",
            "userEndpoint": None, "clientTags": _tags("zone"), "taskOffsets": None,
            "taskEndOffsets": None, "shutdownApplication": False}
    # the join: MISSING_CLIENT_TAGS (rack) at v1 only; AcceptableRecoveryLag
    # (v1 int64, v0 legacy int32), Status [] or null
    r = s.x("join", STREAMS_GROUP_HEARTBEAT, hv, join)
    epoch = r.get("memberEpoch", 0)
    active = r.get("activeTasks") or []
    beat = dict(join, memberEpoch=epoch, rebalanceTimeoutMs=-1, topology=None, processId=None,
                clientTags=None, activeTasks=active, endpointInformationEpoch=r.get("endpointInformationEpoch", -1),
                taskOffsets=[{"subtopologyId": "0", "partition": 0, "offset": 5}],
                taskEndOffsets=[{"subtopologyId": "0", "partition": 0, "offset": 9}])
    s.x("heartbeat with task offsets", STREAMS_GROUP_HEARTBEAT, hv, beat)
    beat = dict(beat, taskOffsets=None, taskEndOffsets=None)
    s.x("heartbeat", STREAMS_GROUP_HEARTBEAT, hv, beat)
    s.x("heartbeat unknown member", STREAMS_GROUP_HEARTBEAT, hv, dict(beat, memberId=n("nobody")))
    s.x("heartbeat fenced epoch", STREAMS_GROUP_HEARTBEAT, hv, dict(beat, memberEpoch=epoch + 5))

    def describe(label, groups, include_description=False):
        body = {"groupIds": groups, "includeAuthorizedOperations": False}
        if dv >= 1:
            body["includeTopologyDescription"] = include_description
        s.x(label, STREAMS_GROUP_DESCRIBE, dv, body)

    describe("describe", [g, n("nogroup")])
    if dv >= 1:
        describe("describe with the topology description", [g, n("nogroup")], include_description=True)

    description = {"subtopologies": [{"subtopologyId": "0", "nodes": [
        {"name": "KSTREAM-SOURCE-0000000000", "nodeType": 1, "sourceTopics": [t], "sinkTopic": None,
         "stores": [], "successors": ["KSTREAM-SINK-0000000001"]},
        {"name": "KSTREAM-SINK-0000000001", "nodeType": 3, "sourceTopics": [], "sinkTopic": n("out"),
         "stores": [], "successors": []}]}], "globalStores": []}
    update = {"groupId": g, "memberId": mid, "topologyEpoch": 1, "topologyDescription": description}
    # without a plugin every push is UNSUPPORTED_VERSION, before the group,
    # member, member id or epoch are looked at
    s.x("topology description update", STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, uv, update)
    s.x("update by an unknown member", STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, uv,
        dict(update, memberId=n("nobody")))
    s.x("update with an empty member id", STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, uv, dict(update, memberId=""))
    s.x("update at another topology epoch", STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, uv,
        dict(update, topologyEpoch=7))
    s.x("update of an unknown group", STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, uv, dict(update, groupId=n("nogroup")))
    s.x("update of an empty group id", STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, uv, dict(update, groupId=""))

    # every tag: no MISSING_CLIENT_TAGS (a metadata change: a new epoch)
    r = s.x("heartbeat with every tag", STREAMS_GROUP_HEARTBEAT, hv, dict(beat, clientTags=_tags("zone", "rack")))
    beat = dict(beat, memberEpoch=r.get("memberEpoch", epoch), activeTasks=r.get("activeTasks") or active)
    s.x("heartbeat after the tags", STREAMS_GROUP_HEARTBEAT, hv, beat)
    s.x("leave", STREAMS_GROUP_HEARTBEAT, hv, dict(beat, memberEpoch=-1))
    describe("describe after the leave", [g])
