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
    ("*", "*", r"configs\[name=metrics\.prometheus\.listener\]$",
     "kastle's own key (the Prometheus endpoint, README 'Metrics'): listed among its broker configs, "
     "unknown to Kafka"),
]

# scenario name -> [(versions (or family indexes) it affects, None = all; reason)].
# Found by this oracle against kastle main; each reason says what Kafka 4.4 does.
_NULL_MSG = ("kastle sends errorMessage \"\" where Kafka sends null (no error)")
KNOWN = {
    "api_versions": [(None,
        "kastle deviation: ApiVersions ranges differ from Kafka 4.4 (per API: test_api_range) and, "
        "from v3, kastle sends no supportedFeatures / finalizedFeatures / finalizedFeaturesEpoch "
        "(Kafka: metadata.version 7-33 finalized at 33, kraft/group/share/streams/transaction/"
        "eligible.leader.replicas versions)")],
    "api_versions_unsupported": [(None,
        "kastle deviation: an ApiVersions request at an unsupported version is answered "
        "(v0, UNSUPPORTED_VERSION) with every API's range; Kafka lists only ApiVersions' own "
        "range (KIP-511), and its max is 5 where kastle says 4")],
    "metadata": [(None,
        "kastle deviation: auto-created topics (Metadata v0-3 for an unknown topic, v4+ with "
        "allowAutoTopicCreation) are answered ready (error NONE, partitions, topic id); Kafka "
        "answers UNKNOWN_TOPIC_OR_PARTITION with no partitions and a zero topic id while it "
        "creates them. v8+: topicAuthorizedOperations of unknown / invalid topics is 3576 on "
        "Kafka, INT_MIN on kastle; v8-10 clusterAuthorizedOperations 8096 on Kafka, 32672 on "
        "kastle. v10-11: a topic looked up by unknown id gets a null name, which v10-11 cannot "
        "carry: kastle's response does not parse (Kafka: INVALID_REQUEST with name '')")],
    "create_topics": [(None, "kastle deviation: " + _NULL_MSG)],
    "delete_topics": [({5, 6},
        "kastle deviation: UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID come with errorMessage "
        "null; Kafka sends a message")],
    "create_partitions": [(None,
        "kastle deviation: an unknown topic gets an errorMessage; Kafka's is null")],
    "produce": [({8, 9, 10, 11},
        "kastle deviation: CORRUPT_MESSAGE and MESSAGE_TOO_LARGE come with an errorMessage; "
        "Kafka's is null")],
    "produce_keyless_compacted": [({5, 6, 7},
        "kastle deviation: INVALID_RECORD answers logStartOffset -1; Kafka answers the log start "
        "offset (0)"),
        ({8, 9, 10, 11},
        "kastle deviation (known): a batch of 3 keyless records on a compacted topic gets one "
        "record_errors entry; Kafka lists every invalid record (batchIndex 0, 1, 2); "
        "logStartOffset -1 where Kafka answers 0")],
    "produce_idempotent": [(set(range(3, 12)),
        "kastle deviation: a duplicate batch (same producer, epoch, sequence) is acknowledged "
        "with logAppendTimeMs -1; Kafka answers a timestamp; v5+: OUT_OF_ORDER_SEQUENCE_NUMBER "
        "answers logStartOffset -1 (Kafka: 0); v8+: with an errorMessage (Kafka: null)")],
    "produce_txn_not_added": [({11},
        "kastle deviation: a transactional batch for a partition not added to the transaction "
        "gets INVALID_TXN_STATE (48) at Produce v11; Kafka 4.4 answers "
        "TRANSACTION_ABORTABLE (120), the KIP-890 error for clients that can handle it")],
    "fetch": [(None,
        "kastle deviation: a partition answered OFFSET_OUT_OF_RANGE carries highWatermark, "
        "lastStableOffset and logStartOffset (8, 8, 0) and abortedTransactions []; Kafka "
        "answers -1, -1, -1 and null for a partition in error")],
    "find_coordinator": [({1, 2, 3},
        "kastle deviation: a successful FindCoordinator v1-3 carries errorMessage \"\"; Kafka "
        "sends \"NONE\"")],
    "describe_cluster": [(None,
        "kastle deviation: clusterAuthorizedOperations is 32672 on kastle, 8096 on Kafka "
        "(no authorizer)")],
    "alter_partition_reassignments": [(None,
        "kastle deviation: " + _NULL_MSG + "; cancelling when nothing is in progress "
        "(NO_REASSIGNMENT_IN_PROGRESS) carries a message where Kafka's is null")],
    "client_quotas": [(None, "kastle deviation: " + _NULL_MSG)],
    "describe_producers": [(None,
        "kastle deviation: an unknown topic's partitions get errorMessage null; Kafka sends a "
        "message")],
    "list_transactions": [({1},
        "kastle deviation: ListTransactions v1 with a durationFilter leaves out a transactional "
        "id in state Empty; Kafka lists it (its start time is -1, so it counts as running "
        "longer than any duration)")],
    # families: "scenario/API" (the lifecycle's exchanges of that API), "scenario/other"
    # (exchanges of APIs the family does not test, e.g. Produce inside a transaction)
    "group_lifecycle/OffsetDelete": [(None,
        "kastle deviation: OffsetDelete for a partition the topic does not have answers NONE; "
        "Kafka answers UNKNOWN_TOPIC_OR_PARTITION")],
    "group_lifecycle/DescribeGroups": [({6, 7, 8, 9},
        "kastle deviation: DescribeGroups v6 of an unknown group reports authorizedOperations "
        "3400; Kafka INT_MIN (not computed for a group that does not exist)")],
    "txn_lifecycle/TxnOffsetCommit": [(None,
        "kastle deviation: TxnOffsetCommit with a wrong producer epoch is accepted (NONE); Kafka "
        "answers INVALID_PRODUCER_EPOCH (47)")],
    "txn_lifecycle/other": [(None,
        "kastle deviation: a transactional Produce to a partition not added to the (new) "
        "transaction answers logStartOffset -1 and an errorMessage; Kafka answers 0 and null")],
}

# API name -> reason, for APIs whose advertised range differs (test_api_range)
KNOWN_RANGES = {
    "Produce": "kastle deviation: Kafka 4.4 advertises 0-13, kastle 0-11 (Produce v12-13 imply transaction version 2 (KIP-890 part 2), which kastle does not offer yet (README))",
    "ListOffsets": "kastle deviation: Kafka 4.4 advertises 1-11, kastle 1-10",
    "OffsetCommit": "kastle deviation: Kafka 4.4 advertises 2-10, kastle 2-9",
    "OffsetFetch": "kastle deviation: Kafka 4.4 advertises 1-10, kastle 1-9",
    "SaslHandshake": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (SASL is not implemented yet (README))",
    "ApiVersions": "kastle deviation: Kafka 4.4 advertises 0-5, kastle 0-4",
    "EndTxn": "kastle deviation: Kafka 4.4 advertises 0-5, kastle 0-4 (EndTxn v5 implies transaction version 2 (README))",
    "WriteTxnMarkers": "kastle deviation: Kafka 4.4 advertises 1-2, kastle nothing (replication / inter-broker API)",
    "TxnOffsetCommit": "kastle deviation: Kafka 4.4 advertises 0-6, kastle 0-4",
    "AlterReplicaLogDirs": "kastle deviation: Kafka 4.4 advertises 1-2, kastle nothing (one log dir per broker here; not implemented)",
    "DescribeLogDirs": "kastle deviation: Kafka 4.4 advertises 1-5, kastle 1-4",
    "SaslAuthenticate": "kastle deviation: Kafka 4.4 advertises 0-2, kastle nothing (SASL is not implemented yet (README))",
    "CreateDelegationToken": "kastle deviation: Kafka 4.4 advertises 1-3, kastle nothing (delegation tokens need SASL (not implemented))",
    "RenewDelegationToken": "kastle deviation: Kafka 4.4 advertises 1-2, kastle nothing (delegation tokens need SASL (not implemented))",
    "ExpireDelegationToken": "kastle deviation: Kafka 4.4 advertises 1-2, kastle nothing (delegation tokens need SASL (not implemented))",
    "DescribeDelegationToken": "kastle deviation: Kafka 4.4 advertises 1-3, kastle nothing (delegation tokens need SASL (not implemented))",
    "DeleteGroups": "kastle deviation: Kafka 4.4 advertises 0-3, kastle 0-2",
    "DescribeUserScramCredentials": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (SCRAM credentials need SASL (not implemented))",
    "AlterUserScramCredentials": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (SCRAM credentials need SASL (not implemented))",
    "DescribeQuorum": "kastle deviation: Kafka 4.4 advertises 0-2, kastle nothing (KRaft quorum API)",
    "UpdateFeatures": "kastle deviation: Kafka 4.4 advertises 0-2, kastle nothing (feature updates (KRaft))",
    "UnregisterBroker": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (KRaft API)",
    "ListTransactions": "kastle deviation: Kafka 4.4 advertises 0-2, kastle 0-1",
    "ConsumerGroupHeartbeat": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (KIP-848 consumer groups are not implemented yet (README))",
    "ConsumerGroupDescribe": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (KIP-848 consumer groups are not implemented yet (README))",
    "ListConfigResources": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing",
    "DescribeTopicPartitions": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (DescribeTopicPartitions (KIP-966) is not implemented: the 4.x Admin.describeTopics falls back to Metadata)",
    "ShareGroupHeartbeat": "kastle deviation: Kafka 4.4 advertises 1-1, kastle nothing (share groups are not implemented yet (README))",
    "ShareGroupDescribe": "kastle deviation: Kafka 4.4 advertises 1-1, kastle nothing (share groups are not implemented yet (README))",
    "ShareFetch": "kastle deviation: Kafka 4.4 advertises 1-2, kastle nothing (share groups are not implemented yet (README))",
    "ShareAcknowledge": "kastle deviation: Kafka 4.4 advertises 1-2, kastle nothing (share groups are not implemented yet (README))",
    "AddRaftVoter": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (KRaft API)",
    "RemoveRaftVoter": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (KRaft API)",
    "InitializeShareGroupState": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (share groups are not implemented yet (README))",
    "ReadShareGroupState": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (share groups are not implemented yet (README))",
    "WriteShareGroupState": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (share groups are not implemented yet (README))",
    "DeleteShareGroupState": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (share groups are not implemented yet (README))",
    "ReadShareGroupStateSummary": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (share groups are not implemented yet (README))",
    "StreamsGroupHeartbeat": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (streams groups (KIP-1071) are not implemented)",
    "StreamsGroupDescribe": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (streams groups (KIP-1071) are not implemented)",
    "DescribeShareGroupOffsets": "kastle deviation: Kafka 4.4 advertises 0-1, kastle nothing (share groups are not implemented yet (README))",
    "AlterShareGroupOffsets": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (share groups are not implemented yet (README))",
    "DeleteShareGroupOffsets": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (share groups are not implemented yet (README))",
    "StreamsGroupTopologyDescriptionUpdate": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (streams groups (KIP-1071) are not implemented)",
    "UnregisterController": "kastle deviation: Kafka 4.4 advertises 0-0, kastle nothing (KRaft API)",
    "features": ("kastle deviation: ApiVersions v3+ carries no supportedFeatures / finalizedFeatures; "
                 "Kafka 4.4 lists metadata.version (7-33, finalized 33), kraft.version, group.version, "
                 "share.version, streams.version, transaction.version, eligible.leader.replicas.version"),
}
