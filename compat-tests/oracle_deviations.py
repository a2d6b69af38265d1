"""Every difference between kastle and Apache Kafka 4.4 that the differential
oracle (test_kafka_oracle.py) knows of, in one place.

* ``DELIBERATE``: differences kastle makes on purpose (README). They are filtered
  out of the comparison and listed in the report table; each names the response
  paths it covers (regular expressions over the diff paths) and why.
* ``KNOWN``: deviations not fixed yet. The scenario tests they affect are
  ``xfail(strict=True)``: they must keep failing until the broker is fixed, then
  the entry goes.
* ``KNOWN_RANGES``: API version ranges kastle advertises differently (per API).
"""

# (API name, scenario glob, diff path regex, reason)
DELIBERATE = [
    ("*", "*", r"configs\[name=flush\.messages\]\.(value|configSource|isDefault|synonyms.*)$",
     "durable by default: kastle's flush.messages default is 1 (fsync before acknowledging, "
     "README 'Durability'); Kafka's is Long.MAX_VALUE (page cache)"),
    ("*", "*", r"configs\[name=log\.flush\.interval\.messages\]\.(value|configSource|isDefault|synonyms.*)$",
     "durable by default: the broker default behind flush.messages (README 'Durability')"),
    ("*", "*", r"configs\[name=log\.cleaner\.io\.max\.bytes\.per\.second\]\.(value|synonyms.*)$",
     "kastle's cleaner I/O limit defaults to 50 MiB/s (README 'Configuration'), so one big compaction "
     "cannot starve produce and fetch of disk bandwidth; Kafka's default is Double.MAX_VALUE (no limit)"),
    ("*", "*", r"configs\[name=log\.dir\]\.(value|synonyms.*)$",
     "kastle's log.dir defaults to ./data (README 'Quick start': the first command works without a "
     "config file); Kafka's is /tmp/kafka-logs. log.dirs, which both brokers set, is the same"),
    ("*", "*", r"configs\[name=metrics\.prometheus\.(listener|ssl\.[a-z.]+|basic\.auth\.(user|password))\]$",
     "kastle's own keys (the Prometheus endpoint, its TLS and basic auth, README 'Metrics'): listed "
     "among its broker configs, unknown to Kafka"),
    ("*", "*", r"configs\[name=(console\.(listener|sample\.interval\.ms)|kastle\.format\.features)\]$",
     "kastle's own keys (the web console, README 'Web console'; the feature levels a new directory "
     "starts at, README 'Feature levels'): listed among its broker configs, unknown to Kafka"),
]

# scenario name -> [(versions (or family indexes) it affects, None = all; reason)].
# Found by this oracle against kastle main; each reason says what Kafka 4.4 does.
_NULL_MSG = ("kastle sends errorMessage \"\" where Kafka sends null (no error)")
KNOWN = {
    "api_versions": [(None,
        "kastle deviation: the ApiVersions ranges differ from Kafka 4.4 (per API, each with its "
        "reason: test_api_range) and so do feature levels (test_features: kastle supports and "
        "finalizes what it honours)")],
}

# API name -> reason, for APIs whose advertised range differs (test_api_range)
_CRATE = "past the newest version the kafka-protocol crate (0.18) decodes and encodes"
_DT = "delegation tokens (KIP-48) are not implemented (SASL PLAIN and SCRAM are; a token is a SCRAM credential the broker issues)"
_KRAFT = "a KRaft controller API: kastle is its own single static controller, without a Raft quorum"
_SHARE = ("the share coordinator's inter-broker RPCs (KIP-932): a standalone kastle's share "
          "coordinator is in-process and a cluster keeps share state in memory (README)")


def _r(kafka, kastle, why):
    return f"kastle deviation: Kafka 4.4 advertises {kafka}, kastle {kastle}: {why}"


# API name -> reason, for APIs whose advertised range differs (test_api_range)
KNOWN_RANGES = {
    "AlterReplicaLogDirs": _r("1-2", "nothing", "kastle supports a single log directory (log.dirs with one "
                              "entry), so there is no other directory to move a replica to"),
    "CreateDelegationToken": _r("1-3", "nothing", _DT),
    "RenewDelegationToken": _r("1-2", "nothing", _DT),
    "ExpireDelegationToken": _r("1-2", "nothing", _DT),
    "DescribeDelegationToken": _r("1-3", "nothing", _DT),
    "UnregisterBroker": _r("0-0", "nothing", _KRAFT),
    "AddRaftVoter": _r("0-1", "nothing", _KRAFT),
    "RemoveRaftVoter": _r("0-0", "nothing", _KRAFT),
    "InitializeShareGroupState": _r("0-0", "nothing", _SHARE),
    "ReadShareGroupState": _r("0-0", "nothing", _SHARE),
    "WriteShareGroupState": _r("0-1", "nothing", _SHARE),
    "DeleteShareGroupState": _r("0-0", "nothing", _SHARE),
    "ReadShareGroupStateSummary": _r("0-1", "nothing", _SHARE),
    "UnregisterController": _r("0-0", "nothing", _KRAFT),
    "features": (
        "kastle deviation: ApiVersions v3+ features at the levels kastle honours, where Kafka 4.4 "
        "supports and finalizes: kraft.version 0-1 (1; kastle 0-0: level 1 is KIP-853's dynamic "
        "controller quorum, and kastle is its own single static controller), "
        "eligible.leader.replicas.version 0-1 (1; kastle 0-0: one "
        "replica per partition, and level 1's rule that the high watermark waits while the ISR is "
        "below min.insync.replicas is not implemented); metadata.version 7-33, finalized 33, "
        "share.version 0-2, finalized 2, streams.version 0-1, finalized 1, and "
        "transaction.version 0-2, finalized 2 (on a new standalone directory), are the same"),
}

# The authorization matrix (test_authz_matrix.py): (case label regex, diff path
# regex, reason) for answers of User:alice that differ from Kafka 4.4's.
AUTHZ = [
    (r"describe quorum .*\[ACL granted\]", r"\.nodes\[nodeId=\d+\]\.listeners$",
     "kastle deviation outside authorization: a standalone kastle is its own single voter but "
     "has no controller listener, so DescribeQuorum v2 names no endpoint for it; Kafka's "
     "combined node lists its CONTROLLER listener"),
    (r"share fetch \[ACL granted\]",
     r"\.response\.responses(\[\d+\]\.partitions\[partitionIndex=0\]\.errorCode)?$",
     "kastle deviation outside authorization: Kafka 4.4's answer to a session's first "
     "ShareFetch with nothing to deliver, right after the member joined, varies between runs "
     "(the partition listed with no records and error 0, no partition at all, or the "
     "partition with UNKNOWN_SERVER_ERROR while the share state it initializes after the "
     "heartbeat is not there yet); kastle lists the partition with error 0. The "
     "authorization itself (GROUP READ, then TOPIC READ) is compared in the other phases"),
]

# API key -> reason, for APIs kastle advertises that the matrix does not send.
AUTHZ_NOT_SENT: dict = {}
