//! The API versions kastle implements: what ApiVersions advertises and what
//! the dispatcher accepts. One table, so the two cannot drift apart. Also the
//! feature levels (KIP-584) ApiVersions reports, from what kastle honours.

use std::collections::BTreeMap;

use kafka_protocol::messages::ApiKey;

#[derive(Debug, Clone, Copy)]
pub struct ApiSupport {
    pub key: ApiKey,
    /// Lowest version handled (Kafka 4.x's floor, KIP-896).
    pub min: i16,
    pub max: i16,
    /// Lowest version advertised in ApiVersions; below `min` only where a
    /// client insists on seeing it (see Produce).
    pub advertised_min: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiSupport {
    ApiSupport {
        key,
        min,
        max,
        advertised_min: min,
    }
}

/// Every API kastle answers, with its version range.
pub static SUPPORTED: &[ApiSupport] = &[
    // librdkafka refuses to compress unless Produce is advertised from v0;
    // Kafka 4.x advertises 0 and rejects v0-2 on use, and so do we.
    // v12 is transaction version 2 (KIP-890 part 2): a transactional
    // batch adds its partition to the transaction. Kafka advertises v12,
    // EndTxn v5 and TxnOffsetCommit v5 whatever `transaction.version` is
    // finalized; a client speaks them only once it reads level 2 in
    // ApiVersions, and the broker serves each request by its version.
    // v13 (KIP-516) names each topic by its id.
    ApiSupport {
        key: ApiKey::Produce,
        min: 3,
        max: 13,
        advertised_min: 0,
    },
    api(ApiKey::Fetch, 4, 18),
    // v11 (KIP-1023) is v10's layout; timestamp -6 (earliest pending
    // upload) is answered from it.
    api(ApiKey::ListOffsets, 1, 11),
    api(ApiKey::Metadata, 0, 13),
    // v5 (KIP-1242: the cluster and node the client means to reach) is
    // past the crate's range; see `BEYOND_THE_CRATE`.
    api(ApiKey::ApiVersions, 0, 5),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::AddPartitionsToTxn, 0, 5),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    // v5 is transaction version 2: the epoch is bumped on every end and
    // the response carries the producer id and epoch to use next.
    api(ApiKey::EndTxn, 0, 5),
    // Inter-broker: transaction coordinators' markers to partition leaders.
    api(ApiKey::DescribeTransactions, 0, 0),
    // v2 (KIP-1152): the transactional-id pattern filter.
    api(ApiKey::ListTransactions, 0, 2),
    // Consumer groups (classic protocol); Kafka 4.x's ranges (KIP-896
    // removed OffsetCommit v0-1 and OffsetFetch v0).
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    // v10 (KIP-848): topics named by id (`protocol::offsets_by_id`).
    api(ApiKey::OffsetCommit, 2, 10),
    // v5 is transaction version 2: the offsets partition joins the
    // transaction implicitly (no AddOffsetsToTxn); v6 (KIP-1319) names
    // topics by id (`protocol::offsets_by_id`).
    api(ApiKey::TxnOffsetCommit, 0, 6),
    api(ApiKey::OffsetFetch, 1, 10),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    // v3 adds a message per group (past the crate: `protocol::delete_groups`).
    api(ApiKey::DeleteGroups, 0, 3),
    api(ApiKey::OffsetDelete, 0, 0),
    // KIP-848 consumer groups (the consumer rebalance protocol).
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    // KIP-932 share groups (`share.version` 1). ShareFetch and
    // ShareAcknowledge v2 (KIP-1222's RENEW acknowledgements, KIP-1206's
    // record-limit acquisition; past the crate: `protocol::share_v2`) are
    // served from share.version 1, as Kafka 4.4 serves them.
    api(ApiKey::ShareGroupHeartbeat, 1, 1),
    api(ApiKey::ShareGroupDescribe, 1, 1),
    api(ApiKey::ShareFetch, 1, 2),
    api(ApiKey::ShareAcknowledge, 1, 2),
    // The share-group offset admin APIs: v0 (DescribeShareGroupOffsets
    // 0-1 is in `SUPPORTED_OWN_CODEC`).
    api(ApiKey::AlterShareGroupOffsets, 0, 0),
    api(ApiKey::DeleteShareGroupOffsets, 0, 0),
    // Admin APIs (Kafka 4.x floors, KIP-896: DescribeConfigs v0,
    // DescribeLogDirs v0, OffsetForLeaderEpoch v0-1 and the ACL APIs' v0
    // are gone).
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::DescribeCluster, 0, 2),
    // KIP-584: finalized feature levels (forwarded in a cluster).
    api(ApiKey::UpdateFeatures, 0, 2),
    // Forwarded to the active controller (a standalone node answers as
    // its own single voter).
    api(ApiKey::DescribeQuorum, 0, 2),
    // KIP-966: what the 4.x Admin.describeTopics asks first.
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    // v5 adds IsCordoned (past the crate: `protocol::describe_log_dirs`).
    api(ApiKey::DescribeLogDirs, 1, 5),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::ListConfigResources, 0, 1),
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
    // SASL (served before authentication by the network layer's
    // authenticator; after it, answered ILLEGAL_SASL_STATE) and KIP-554.
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
];

/// One feature (KIP-584) as ApiVersions v3+ reports it: the levels this
/// broker supports and the level finalized for the cluster (0 = off, not
/// listed as finalized, as Kafka omits level 0).
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    /// The level a new standalone directory starts at (Kafka's `format`
    /// default), unless `kastle.format.features` names another.
    pub finalized: i16,
    /// The level in force where no level was recorded: a directory or
    /// cluster an older kastle formatted, which recorded only changes.
    /// Kafka keeps an upgraded cluster's levels; so does kastle.
    pub unrecorded: i16,
}

/// The features of a single-node Kafka 4.4, at the levels kastle honours.
/// Kafka 4.4 supports each from 0 (metadata.version from 7) and a new
/// cluster finalizes its `LATEST_PRODUCTION` level; where kastle stops
/// lower, the reason is given. UpdateFeatures changes a level
/// (`controller::feature_control`).
pub static FEATURES: &[Feature] = &[
    // 33 is 4.4's level: kastle speaks 4.4's protocol. Its levels gate
    // the metadata log's records and inter-broker APIs, which kastle
    // writes in 4.4's forms only, so a downgrade is refused.
    Feature {
        name: "metadata.version",
        min: 7,
        max: 33,
        finalized: 33,
        unrecorded: 33,
    },
    // Level 1 is the dynamic controller quorum (KIP-853): kastle is its own
    // single, static controller and serves no Raft APIs.
    Feature {
        name: "kraft.version",
        min: 0,
        max: 0,
        finalized: 0,
        unrecorded: 0,
    },
    // Level 2 is KIP-890 part 2: clients that read it send Produce v12,
    // TxnOffsetCommit v5 and EndTxn v5 (partitions join implicitly, the
    // epoch is bumped on every end). Level 0 differs from 1 only in the
    // transaction log's value version (v0 instead of v1); kastle records
    // the level and keeps writing v1, which Kafka 4.x reads at every level.
    // A new directory starts at 2, as Kafka 4.x formats a new cluster
    // (`TransactionVersion.LATEST_PRODUCTION`);
    // `kastle.format.features=transaction.version=1` pins the old protocol.
    // kastle before the setting finalized 1 without a record, so a
    // directory with no record stays at 1 as an upgraded Kafka cluster does.
    Feature {
        name: TRANSACTION_VERSION,
        min: 0,
        max: 2,
        finalized: 2,
        unrecorded: 1,
    },
    // Level 1 is the KIP-848 consumer group protocol
    // (ConsumerGroupHeartbeat, ConsumerGroupDescribe); at 0 both answer
    // UNSUPPORTED_VERSION, as Kafka's do.
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: 1,
        unrecorded: 1,
    },
    // Eligible leader replicas (KIP-966): besides the controller's
    // bookkeeping, level 1 holds the high watermark while the ISR is below
    // min.insync.replicas; kastle has one replica and does not.
    Feature {
        name: "eligible.leader.replicas.version",
        min: 0,
        max: 0,
        finalized: 0,
        unrecorded: 0,
    },
    // Level 1 is KIP-932's share groups (ShareGroupHeartbeat,
    // ShareGroupDescribe, ShareFetch, ShareAcknowledge); at 0 they answer
    // UNSUPPORTED_VERSION, as Kafka's do. Level 2 adds the share groups'
    // dead-letter queue (KIP-1191, `supportsShareGroupDLQ`:
    // `broker::share::dlq`); Kafka 4.4 formats a new cluster at 2
    // (`ShareVersion.LATEST_PRODUCTION`), and so does kastle. A directory
    // formatted before had share groups off.
    Feature {
        name: SHARE_VERSION,
        min: 0,
        max: 2,
        finalized: 2,
        unrecorded: 0,
    },
    // Level 1 is KIP-1071 streams groups (StreamsGroupHeartbeat,
    // StreamsGroupDescribe, and KIP-1331's
    // StreamsGroupTopologyDescriptionUpdate: no level of its own); at 0
    // all three answer UNSUPPORTED_VERSION, as Kafka's do. Kafka 4.4 formats a new cluster at 1
    // (`StreamsVersion.LATEST_PRODUCTION`); a directory an older kastle
    // formatted keeps 0 until UpdateFeatures raises it.
    Feature {
        name: STREAMS_VERSION,
        min: 0,
        max: 1,
        finalized: 1,
        unrecorded: 0,
    },
];

/// The feature KIP-848's consumer group protocol is enabled by.
pub const GROUP_VERSION: &str = "group.version";
/// The feature KIP-932's share groups are enabled by.
pub const SHARE_VERSION: &str = "share.version";
/// The feature KIP-1071's streams groups are enabled by.
pub const STREAMS_VERSION: &str = "streams.version";
/// The feature KIP-890 part 2 (transaction version 2) is enabled by.
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// The finalized levels in force and their epoch (the metadata offset in a
/// cluster, the number of changes on a standalone broker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizedFeatures {
    /// Levels recorded, by feature name (0 included: a feature turned off):
    /// those a new directory started at and every change since.
    pub recorded: BTreeMap<String, i16>,
    pub epoch: i64,
}

impl FinalizedFeatures {
    /// The level of `name`: recorded, else the level of a directory or
    /// cluster that recorded none (`Feature::unrecorded`), else 0.
    pub fn level(&self, name: &str) -> i16 {
        self.recorded.get(name).copied().unwrap_or_else(|| {
            FEATURES
                .iter()
                .find(|f| f.name == name)
                .map_or(0, |f| f.unrecorded)
        })
    }

    /// Every feature at a level above 0, as ApiVersions lists them (Kafka
    /// leaves out level 0).
    pub fn finalized(&self) -> Vec<(String, i16)> {
        let mut names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        names.extend(self.recorded.keys().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|n| (n.to_string(), self.level(n)))
            .filter(|(_, l)| *l > 0)
            .collect()
    }

    /// KIP-848 is on: Kafka's `isConsumerRebalanceProtocolSupported`.
    pub fn consumer_protocol_enabled(&self) -> bool {
        self.level(GROUP_VERSION) >= 1
    }
}

/// Parses `kastle.format.features` (`name=level,...`, as `kafka-storage
/// format --feature name=level` repeated) and checks each level as Kafka's
/// format does: a known feature, a level it supports. `metadata.version`
/// stays at kastle's (it writes 4.4's records only) and `kraft.version` at
/// 0 (a static quorum).
pub fn parse_format_features(value: &str) -> Result<Vec<(String, i16)>, String> {
    let mut out: Vec<(String, i16)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, level) = item
            .split_once('=')
            .map(|(n, l)| (n.trim(), l.trim()))
            .ok_or_else(|| format!("{item:?} is not name=level"))?;
        let level: i16 = level
            .parse()
            .map_err(|_| format!("{item:?}: the level is not a number"))?;
        let f = FEATURES
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("Unsupported feature: {name}."))?;
        let fixed = f.name == "metadata.version" || f.name == "kraft.version";
        if (fixed && level != f.finalized) || !(f.min..=f.max).contains(&level) {
            let range = if fixed {
                f.finalized.to_string()
            } else {
                format!("{}-{}", f.min, f.max)
            };
            return Err(format!(
                "Unsupported value {level} for {name}: kastle supports {range}."
            ));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("{name} is given twice"));
        }
        out.push((name.to_string(), level));
    }
    Ok(out)
}

/// The levels a new standalone directory records (Kafka's
/// `BootstrapMetadata`): `metadata.version` and every feature above 0,
/// each at its `format` level or the one `chosen` names; plus a 0 that
/// differs from the feature's unrecorded level, which a missing record
/// would otherwise raise. `kraft.version` is not among them (Kafka keeps it
/// in the Raft log's own records).
pub fn bootstrap_levels(chosen: &[(String, i16)]) -> Vec<(String, i16)> {
    FEATURES
        .iter()
        .filter(|f| f.name != "kraft.version")
        .map(|f| {
            let level = chosen
                .iter()
                .find(|(n, _)| n == f.name)
                .map_or(f.finalized, |(_, l)| *l);
            (f, level)
        })
        .filter(|(f, level)| *level > 0 || *level != f.unrecorded)
        .map(|(f, level)| (f.name.to_string(), level))
        .collect()
}

pub fn support(api_key: i16) -> Option<&'static ApiSupport> {
    SUPPORTED.iter().find(|s| s.key as i16 == api_key)
}

/// APIs the `kafka-protocol` crate has no types for, or not at the
/// versions Kafka 4.4 serves, served with kastle's own codec
/// (`protocol::streams`, `protocol::share_group_offsets`,
/// `protocol::write_txn_markers`): (key, min, max).
/// Every version of them is flexible.
pub static SUPPORTED_OWN_CODEC: &[(i16, i16, i16)] = &[
    // KIP-1071 streams groups; version 1 and the description update are
    // KIP-1331's (Kafka 4.4: 0-1, 0-1, 0).
    (crate::protocol::streams::STREAMS_GROUP_HEARTBEAT, 0, 1),
    (crate::protocol::streams::STREAMS_GROUP_DESCRIBE, 0, 1),
    (
        crate::protocol::streams::STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE,
        0,
        0,
    ),
    // KIP-1226's Lag is version 1 (the crate has version 0 only).
    (
        crate::protocol::share_group_offsets::DESCRIBE_SHARE_GROUP_OFFSETS,
        0,
        1,
    ),
    // KIP-1228's TransactionVersion is version 2 (the crate stops at 1).
    (crate::protocol::write_txn_markers::WRITE_TXN_MARKERS, 1, 2),
];

/// Versions in `SUPPORTED` past what the `kafka-protocol` crate decodes,
/// each served by its handler: the newer request read by kastle's own code
/// (or, in `SAME_REQUEST_AS`, as the crate's newest version), the newer
/// response written in the crate's older layout where it did not change,
/// else by kastle's own encoder: (key, the newest version the crate has).
pub static BEYOND_THE_CRATE: &[(ApiKey, i16)] = &[
    (ApiKey::ApiVersions, 4),
    (ApiKey::ListOffsets, 10),
    (ApiKey::OffsetCommit, 9),
    (ApiKey::OffsetFetch, 9),
    (ApiKey::TxnOffsetCommit, 5),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::DescribeLogDirs, 4),
    (ApiKey::ShareFetch, 1),
    (ApiKey::ShareAcknowledge, 1),
];

/// Of `BEYOND_THE_CRATE`, the APIs whose newer request versions have the
/// same layout as the crate's newest (only the response or the meaning of
/// a value changed): `handlers::decode` reads them as that version (the
/// schema walker checks them at their own). (key, that version).
pub static SAME_REQUEST_AS: &[(ApiKey, i16)] = &[
    (ApiKey::ListOffsets, 10),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::DescribeLogDirs, 4),
];

/// The version the crate decodes a request of `api_key` at `version` as.
pub fn request_layout(api_key: i16, version: i16) -> i16 {
    SAME_REQUEST_AS
        .iter()
        .find(|(k, _)| *k as i16 == api_key)
        .map_or(version, |(_, same)| version.min(*same))
}

/// Whether a request of this key and version is served.
pub fn is_supported(api_key: i16, api_version: i16) -> bool {
    support(api_key).is_some_and(|s| api_version >= s.min && api_version <= s.max)
        || SUPPORTED_OWN_CODEC
            .iter()
            .any(|(k, lo, hi)| *k == api_key && (*lo..=*hi).contains(&api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest version of `key`'s request the crate decodes: its
    /// `valid_versions` may name a newer response (OffsetCommit and
    /// OffsetFetch 10, whose requests stop at 9).
    fn crate_request_max(key: ApiKey) -> i16 {
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::Message;
        match key {
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS.max,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS.max,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS.max,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS.max,
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::VERSIONS.max,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS.max,
            ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS.max,
            _ => key.valid_versions().max,
        }
    }

    #[test]
    fn table_stays_within_what_the_crate_can_encode() {
        for s in SUPPORTED {
            let crate_range = s.key.valid_versions();
            let decodable = crate_request_max(s.key);
            let crate_max =
                BEYOND_THE_CRATE
                    .iter()
                    .find(|(k, _)| *k == s.key)
                    .map_or(s.max, |(_, max)| {
                        assert_eq!(*max, decodable, "{:?}", s.key);
                        assert!(s.max > *max, "{:?} is not past the crate", s.key);
                        *max
                    });
            assert!(
                s.min >= crate_range.min && crate_max <= decodable,
                "{:?}",
                s.key
            );
            assert!(s.advertised_min <= s.min);
        }
        // (`schema::tests` checks that their layouts are the same.)
        for (key, same) in SAME_REQUEST_AS {
            assert!(BEYOND_THE_CRATE.contains(&(*key, *same)), "{key:?}");
        }
        assert_eq!(request_layout(ApiKey::ListOffsets as i16, 11), 10);
        assert_eq!(request_layout(ApiKey::ListOffsets as i16, 7), 7);
        assert_eq!(request_layout(ApiKey::Produce as i16, 13), 13);
        assert_eq!(request_layout(ApiKey::DeleteGroups as i16, 3), 2);
        assert_eq!(request_layout(ApiKey::DescribeLogDirs as i16, 5), 4);
    }

    #[test]
    fn features_are_consistent() {
        for f in FEATURES {
            assert!(0 <= f.min && f.min <= f.max, "{}", f.name);
            assert!(f.finalized == 0 || (f.min..=f.max).contains(&f.finalized));
        }
        // Transaction version 2 needs Produce v12, TxnOffsetCommit v5 and
        // EndTxn v5.
        let tv = FEATURES.iter().find(|f| f.name == TRANSACTION_VERSION);
        assert_eq!(tv.map(|f| f.max), Some(2));
        assert!(is_supported(ApiKey::Produce as i16, 12));
        // v13 names topics by id (KIP-516); Kafka 4.4 stops there.
        assert!(is_supported(ApiKey::Produce as i16, 13));
        assert!(!is_supported(ApiKey::Produce as i16, 14));
        assert!(is_supported(ApiKey::EndTxn as i16, 5));
        assert!(is_supported(ApiKey::TxnOffsetCommit as i16, 5));
        // v6 names topics by id (KIP-1319); Kafka 4.4 stops there.
        assert!(is_supported(ApiKey::TxnOffsetCommit as i16, 6));
        assert!(!is_supported(ApiKey::TxnOffsetCommit as i16, 7));
        // Share groups' v2 (RENEW, record-limit) needs share.version 1
        // only; share.version 2 is the dead-letter queue (KIP-1191).
        let sv = FEATURES.iter().find(|f| f.name == SHARE_VERSION);
        assert_eq!(sv.map(|f| (f.max, f.finalized)), Some((2, 2)));
        assert!(is_supported(ApiKey::ShareFetch as i16, 2));
        assert!(is_supported(ApiKey::ShareAcknowledge as i16, 2));
        assert!(!is_supported(ApiKey::ShareFetch as i16, 3));
    }

    #[test]
    fn format_levels_and_the_setting() {
        let levels = bootstrap_levels(&[]);
        assert_eq!(
            levels,
            vec![
                ("metadata.version".to_string(), 33),
                (TRANSACTION_VERSION.to_string(), 2),
                (GROUP_VERSION.to_string(), 1),
                (SHARE_VERSION.to_string(), 2),
                (STREAMS_VERSION.to_string(), 1),
            ]
        );
        let chosen =
            parse_format_features(" transaction.version=1, group.version=0 ").expect("valid");
        assert_eq!(
            bootstrap_levels(&chosen),
            vec![
                ("metadata.version".to_string(), 33),
                (TRANSACTION_VERSION.to_string(), 1),
                (GROUP_VERSION.to_string(), 0),
                (SHARE_VERSION.to_string(), 2),
                (STREAMS_VERSION.to_string(), 1),
            ]
        );
        // transaction.version 0 is recorded: a missing record reads 1.
        let zero = parse_format_features("transaction.version=0").expect("valid");
        assert!(bootstrap_levels(&zero).contains(&(TRANSACTION_VERSION.to_string(), 0)));
        assert_eq!(parse_format_features(""), Ok(vec![]));
        for bad in [
            "transaction.version=3",
            "share.version=3",
            "metadata.version=20",
            "no.such=1",
            "transaction.version",
            "transaction.version=x",
            "group.version=1,group.version=0",
        ] {
            assert!(parse_format_features(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kip_896_floors() {
        assert!(!is_supported(ApiKey::Produce as i16, 2));
        assert!(is_supported(ApiKey::Produce as i16, 3));
        assert!(!is_supported(ApiKey::Fetch as i16, 3));
        assert!(!is_supported(ApiKey::ListOffsets as i16, 0));
        assert!(!is_supported(ApiKey::CreateTopics as i16, 1));
        assert!(!is_supported(ApiKey::DeleteTopics as i16, 0));
        assert!(is_supported(ApiKey::Metadata as i16, 0));
        assert!(!is_supported(999, 0));
    }
}
