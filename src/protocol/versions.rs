//! The API versions kastle implements: what ApiVersions advertises and what
//! the dispatcher accepts. One table, so the two cannot drift apart.

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
    // Max 11: clients read Produce v12+ as "transaction version 2" (KIP-890
    // part 2: partitions join a transaction implicitly), not offered yet.
    ApiSupport {
        key: ApiKey::Produce,
        min: 3,
        max: 11,
        advertised_min: 0,
    },
    api(ApiKey::Fetch, 4, 18),
    api(ApiKey::ListOffsets, 1, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::AddPartitionsToTxn, 0, 5),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    // v5 belongs to transaction version 2 (epoch bump on every end).
    api(ApiKey::EndTxn, 0, 4),
    api(ApiKey::DescribeTransactions, 0, 0),
    // v2 adds a regular-expression filter, not offered yet.
    api(ApiKey::ListTransactions, 0, 1),
    // Consumer groups (classic protocol); Kafka 4.x's ranges (KIP-896
    // removed OffsetCommit v0-1 and OffsetFetch v0).
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    // v5 belongs to transaction version 2, not advertised.
    api(ApiKey::TxnOffsetCommit, 0, 4),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    // Admin APIs (Kafka 4.x floors, KIP-896: DescribeConfigs v0,
    // DescribeLogDirs v0, OffsetForLeaderEpoch v0-1 and the ACL APIs' v0
    // are gone).
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
];

pub fn support(api_key: i16) -> Option<&'static ApiSupport> {
    SUPPORTED.iter().find(|s| s.key as i16 == api_key)
}

/// Whether a request of this key and version is served.
pub fn is_supported(api_key: i16, api_version: i16) -> bool {
    support(api_key).is_some_and(|s| api_version >= s.min && api_version <= s.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_stays_within_what_the_crate_can_encode() {
        for s in SUPPORTED {
            let crate_range = s.key.valid_versions();
            assert!(
                s.min >= crate_range.min && s.max <= crate_range.max,
                "{:?}",
                s.key
            );
            assert!(s.advertised_min <= s.min);
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
