//! Request body layouts for every API the broker accepts, in a compact table form.
//!
//! These tables exist so that `check_request_body` can bound every length on the
//! wire before `kafka-protocol` decodes (and allocates for) a request. Each entry
//! is a layout fact: field order, wire type, the versions a field is present in,
//! and the tag for tagged fields. Version ranges follow what `kafka-protocol` 0.18
//! decodes, since that crate is what consumes the bytes after the walker has
//! accepted them, and go past it where kastle reads the newer versions
//! (`versions::BEYOND_THE_CRATE`).
//!
//! Conventions:
//! * `f(name, lo, hi, ty)` is a field present in versions `lo..=hi`; `N` means
//!   "up to the newest version".
//! * `t(tag, name, lo, hi, ty)` is a tagged field (only meaningful in flexible
//!   versions).
//! * Strings, bytes and arrays switch to their compact encodings in the flexible
//!   versions of the message, so one entry covers both encodings.
//! * Nullability (`NStr`, `NBytes`, `NArr`, `OptStruct`) follows the crate's typing:
//!   a field that is nullable in any version is accepted as null in all versions
//!   it exists in, because that is what the crate decodes.
//! * `records` in Produce is plain nullable bytes: the crate does not look inside
//!   the record batches at this layer.

/// Wire type of a field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    I8,
    I16,
    I32,
    I64,
    F64,
    Bool,
    Uuid,
    Str,
    NStr,
    Bytes,
    NBytes,
    Arr(&'static Ty),
    NArr(&'static Ty),
    Struct(&'static [Field]),
    /// A struct preceded by an int8 presence marker (1 = present, -1 = null).
    OptStruct(&'static [Field]),
}

use Ty::*;

use super::streams_tables::{
    STREAMS_GROUP_DESCRIBE, STREAMS_GROUP_HEARTBEAT, STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE,
};

/// One field of a struct.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub lo: i16,
    pub hi: i16,
    pub tag: Option<u32>,
    pub ty: Ty,
}

impl Field {
    pub(crate) fn present_in(&self, version: i16) -> bool {
        self.lo <= version && version <= self.hi
    }
}

/// One request message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Api {
    pub key: i16,
    pub min: i16,
    pub max: i16,
    /// First flexible version, or `NEVER`.
    pub flex: i16,
    pub body: &'static [Field],
}

pub(super) const N: i16 = i16::MAX;
const NEVER: i16 = i16::MAX;

pub(super) const fn f(name: &'static str, lo: i16, hi: i16, ty: Ty) -> Field {
    Field {
        name,
        lo,
        hi,
        tag: None,
        ty,
    }
}

const fn t(tag: u32, name: &'static str, lo: i16, hi: i16, ty: Ty) -> Field {
    Field {
        name,
        lo,
        hi,
        tag: Some(tag),
        ty,
    }
}

const fn api(key: i16, min: i16, max: i16, flex: i16, body: &'static [Field]) -> Api {
    Api {
        key,
        min,
        max,
        flex,
        body,
    }
}

// The controller listener's APIs.
mod controller;
use controller::*;

/// Looks up the table for an API key.
pub(crate) fn lookup(api_key: i16) -> Option<&'static Api> {
    APIS.iter().find(|a| a.key == api_key)
}

// Produce (0): versions 3-13, flexible from 9.
const PRODUCE: &[Field] = &[
    f("transactional_id", 3, N, NStr),
    f("acks", 3, N, I16),
    f("timeout_ms", 3, N, I32),
    f("topic_data", 3, N, Arr(&Struct(PRODUCE_TOPIC_PRODUCE_DATA))),
];
const PRODUCE_TOPIC_PRODUCE_DATA: &[Field] = &[
    f("name", 3, 12, Str),
    f("topic_id", 13, N, Uuid),
    f("partition_data", 3, N, Arr(&Struct(PRODUCE_PARTITION_PRODUCE_DATA))),
];
const PRODUCE_PARTITION_PRODUCE_DATA: &[Field] = &[
    f("index", 3, N, I32),
    f("records", 3, N, NBytes),
];

// Fetch (1): versions 4-18, flexible from 12.
const FETCH: &[Field] = &[
    f("replica_id", 4, 14, I32),
    f("max_wait_ms", 4, N, I32),
    f("min_bytes", 4, N, I32),
    f("max_bytes", 4, N, I32),
    f("isolation_level", 4, N, I8),
    f("session_id", 7, N, I32),
    f("session_epoch", 7, N, I32),
    f("topics", 4, N, Arr(&Struct(FETCH_TOPIC))),
    f("forgotten_topics_data", 7, N, Arr(&Struct(FETCH_FORGOTTEN_TOPIC))),
    f("rack_id", 11, N, Str),
    t(0, "cluster_id", 4, N, NStr),
    t(1, "replica_state", 15, N, Struct(FETCH_REPLICA_STATE)),
];
const FETCH_REPLICA_STATE: &[Field] = &[
    f("replica_id", 15, N, I32),
    f("replica_epoch", 15, N, I64),
];
const FETCH_FORGOTTEN_TOPIC: &[Field] = &[
    f("topic", 7, 12, Str),
    f("topic_id", 13, N, Uuid),
    f("partitions", 7, N, Arr(&I32)),
];
const FETCH_TOPIC: &[Field] = &[
    f("topic", 4, 12, Str),
    f("topic_id", 13, N, Uuid),
    f("partitions", 4, N, Arr(&Struct(FETCH_PARTITION))),
];
const FETCH_PARTITION: &[Field] = &[
    f("partition", 4, N, I32),
    f("current_leader_epoch", 9, N, I32),
    f("fetch_offset", 4, N, I64),
    f("last_fetched_epoch", 12, N, I32),
    f("log_start_offset", 5, N, I64),
    f("partition_max_bytes", 4, N, I32),
    t(0, "replica_directory_id", 17, N, Uuid),
    t(1, "high_watermark", 18, N, I64),
];

// ListOffsets (2): versions 1-11, flexible from 6 (v11 is v10's layout).
const LIST_OFFSETS: &[Field] = &[
    f("replica_id", 1, N, I32),
    f("isolation_level", 2, N, I8),
    f("topics", 1, N, Arr(&Struct(LIST_OFFSETS_TOPIC))),
    f("timeout_ms", 10, N, I32),
];
const LIST_OFFSETS_TOPIC: &[Field] = &[
    f("name", 1, N, Str),
    f("partitions", 1, N, Arr(&Struct(LIST_OFFSETS_PARTITION))),
];
const LIST_OFFSETS_PARTITION: &[Field] = &[
    f("partition_index", 1, N, I32),
    f("current_leader_epoch", 4, N, I32),
    f("timestamp", 1, N, I64),
];

// Metadata (3): versions 0-13, flexible from 9.
const METADATA: &[Field] = &[
    f("topics", 0, N, NArr(&Struct(METADATA_TOPIC))),
    f("allow_auto_topic_creation", 4, N, Bool),
    f("include_cluster_authorized_operations", 8, 10, Bool),
    f("include_topic_authorized_operations", 8, N, Bool),
];
const METADATA_TOPIC: &[Field] = &[
    f("topic_id", 10, N, Uuid),
    f("name", 0, N, NStr),
];

// OffsetCommit (8): versions 2-10, flexible from 8; v10 names topics by id.
const OFFSET_COMMIT: &[Field] = &[
    f("group_id", 2, N, Str),
    f("generation_id_or_member_epoch", 2, N, I32),
    f("member_id", 2, N, Str),
    f("group_instance_id", 7, N, NStr),
    f("retention_time_ms", 2, 4, I64),
    f("topics", 2, N, Arr(&Struct(OFFSET_COMMIT_TOPIC))),
];
const OFFSET_COMMIT_TOPIC: &[Field] = &[
    f("name", 2, 9, Str),
    f("topic_id", 10, N, Uuid),
    f("partitions", 2, N, Arr(&Struct(OFFSET_COMMIT_PARTITION))),
];
const OFFSET_COMMIT_PARTITION: &[Field] = &[
    f("partition_index", 2, N, I32),
    f("committed_offset", 2, N, I64),
    f("committed_leader_epoch", 6, N, I32),
    f("committed_metadata", 2, N, NStr),
];

// OffsetFetch (9): versions 1-10, flexible from 6; v10 names topics by id.
const OFFSET_FETCH: &[Field] = &[
    f("group_id", 1, 7, Str),
    f("topics", 1, 7, NArr(&Struct(OFFSET_FETCH_TOPIC))),
    f("groups", 8, N, Arr(&Struct(OFFSET_FETCH_GROUP))),
    f("require_stable", 7, N, Bool),
];
const OFFSET_FETCH_GROUP: &[Field] = &[
    f("group_id", 8, N, Str),
    f("member_id", 9, N, NStr),
    f("member_epoch", 9, N, I32),
    f("topics", 8, N, NArr(&Struct(OFFSET_FETCH_TOPICS))),
];
const OFFSET_FETCH_TOPICS: &[Field] = &[
    f("name", 8, 9, Str),
    f("topic_id", 10, N, Uuid),
    f("partition_indexes", 8, N, Arr(&I32)),
];
const OFFSET_FETCH_TOPIC: &[Field] = &[
    f("name", 1, 7, Str),
    f("partition_indexes", 1, 7, Arr(&I32)),
];

// FindCoordinator (10): versions 0-6, flexible from 3.
const FIND_COORDINATOR: &[Field] = &[
    f("key", 0, 3, Str),
    f("key_type", 1, N, I8),
    f("coordinator_keys", 4, N, Arr(&Str)),
];

// JoinGroup (11): versions 0-9, flexible from 6.
const JOIN_GROUP: &[Field] = &[
    f("group_id", 0, N, Str),
    f("session_timeout_ms", 0, N, I32),
    f("rebalance_timeout_ms", 1, N, I32),
    f("member_id", 0, N, Str),
    f("group_instance_id", 5, N, NStr),
    f("protocol_type", 0, N, Str),
    f("protocols", 0, N, Arr(&Struct(JOIN_GROUP_PROTOCOL))),
    f("reason", 8, N, NStr),
];
const JOIN_GROUP_PROTOCOL: &[Field] = &[
    f("name", 0, N, Str),
    f("metadata", 0, N, Bytes),
];

// Heartbeat (12): versions 0-4, flexible from 4.
const HEARTBEAT: &[Field] = &[
    f("group_id", 0, N, Str),
    f("generation_id", 0, N, I32),
    f("member_id", 0, N, Str),
    f("group_instance_id", 3, N, NStr),
];

// LeaveGroup (13): versions 0-5, flexible from 4.
const LEAVE_GROUP: &[Field] = &[
    f("group_id", 0, N, Str),
    f("member_id", 0, 2, Str),
    f("members", 3, N, Arr(&Struct(LEAVE_GROUP_MEMBER_IDENTITY))),
];
const LEAVE_GROUP_MEMBER_IDENTITY: &[Field] = &[
    f("member_id", 3, N, Str),
    f("group_instance_id", 3, N, NStr),
    f("reason", 5, N, NStr),
];

// SyncGroup (14): versions 0-5, flexible from 4.
const SYNC_GROUP: &[Field] = &[
    f("group_id", 0, N, Str),
    f("generation_id", 0, N, I32),
    f("member_id", 0, N, Str),
    f("group_instance_id", 3, N, NStr),
    f("protocol_type", 5, N, NStr),
    f("protocol_name", 5, N, NStr),
    f("assignments", 0, N, Arr(&Struct(SYNC_GROUP_ASSIGNMENT))),
];
const SYNC_GROUP_ASSIGNMENT: &[Field] = &[
    f("member_id", 0, N, Str),
    f("assignment", 0, N, Bytes),
];

// DescribeGroups (15): versions 0-6, flexible from 5.
const DESCRIBE_GROUPS: &[Field] = &[
    f("groups", 0, N, Arr(&Str)),
    f("include_authorized_operations", 3, N, Bool),
];

// ListGroups (16): versions 0-5, flexible from 3.
const LIST_GROUPS: &[Field] = &[
    f("states_filter", 4, N, Arr(&Str)),
    f("types_filter", 5, N, Arr(&Str)),
];

// SaslHandshake (17): versions 0-1, flexible from never.
const SASL_HANDSHAKE: &[Field] = &[
    f("mechanism", 0, N, Str),
];

// ApiVersions (18): versions 0-5, flexible from 3. Version 5 (KIP-1242) is
// past the crate: `handlers::api_versions` reads it itself.
const API_VERSIONS: &[Field] = &[
    f("client_software_name", 3, N, Str),
    f("client_software_version", 3, N, Str),
    f("cluster_id", 5, N, NStr),
    f("node_id", 5, N, I32),
];

// CreateTopics (19): versions 2-7, flexible from 5.
const CREATE_TOPICS: &[Field] = &[
    f("topics", 2, N, Arr(&Struct(CREATE_TOPICS_CREATABLE_TOPIC))),
    f("timeout_ms", 2, N, I32),
    f("validate_only", 2, N, Bool),
];
const CREATE_TOPICS_CREATABLE_TOPIC: &[Field] = &[
    f("name", 2, N, Str),
    f("num_partitions", 2, N, I32),
    f("replication_factor", 2, N, I16),
    f("assignments", 2, N, Arr(&Struct(CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT))),
    f("configs", 2, N, Arr(&Struct(CREATE_TOPICS_CREATABLE_TOPIC_CONFIG))),
];
const CREATE_TOPICS_CREATABLE_TOPIC_CONFIG: &[Field] = &[
    f("name", 2, N, Str),
    f("value", 2, N, NStr),
];
const CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT: &[Field] = &[
    f("partition_index", 2, N, I32),
    f("broker_ids", 2, N, Arr(&I32)),
];

// DeleteTopics (20): versions 1-6, flexible from 4.
const DELETE_TOPICS: &[Field] = &[
    f("topics", 6, N, Arr(&Struct(DELETE_TOPICS_DELETE_TOPIC_STATE))),
    f("topic_names", 1, 5, Arr(&Str)),
    f("timeout_ms", 1, N, I32),
];
const DELETE_TOPICS_DELETE_TOPIC_STATE: &[Field] = &[
    f("name", 6, N, NStr),
    f("topic_id", 6, N, Uuid),
];

// DeleteRecords (21): versions 0-2, flexible from 2.
const DELETE_RECORDS: &[Field] = &[
    f("topics", 0, N, Arr(&Struct(DELETE_RECORDS_TOPIC))),
    f("timeout_ms", 0, N, I32),
];
const DELETE_RECORDS_TOPIC: &[Field] = &[
    f("name", 0, N, Str),
    f("partitions", 0, N, Arr(&Struct(DELETE_RECORDS_PARTITION))),
];
const DELETE_RECORDS_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("offset", 0, N, I64),
];

// InitProducerId (22): versions 0-5, flexible from 2.
const INIT_PRODUCER_ID: &[Field] = &[
    f("transactional_id", 0, N, NStr),
    f("transaction_timeout_ms", 0, N, I32),
    f("producer_id", 3, N, I64),
    f("producer_epoch", 3, N, I16),
];

// OffsetForLeaderEpoch (23): versions 2-4, flexible from 4.
const OFFSET_FOR_LEADER_EPOCH: &[Field] = &[
    f("replica_id", 3, N, I32),
    f("topics", 2, N, Arr(&Struct(OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC))),
];
const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC: &[Field] = &[
    f("topic", 2, N, Str),
    f("partitions", 2, N, Arr(&Struct(OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION))),
];
const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION: &[Field] = &[
    f("partition", 2, N, I32),
    f("current_leader_epoch", 2, N, I32),
    f("leader_epoch", 2, N, I32),
];

// AddPartitionsToTxn (24): versions 0-5, flexible from 3.
const ADD_PARTITIONS_TO_TXN: &[Field] = &[
    f("transactions", 4, N, Arr(&Struct(ADD_PARTITIONS_TO_TXN_TRANSACTION))),
    f("v3_and_below_transactional_id", 0, 3, Str),
    f("v3_and_below_producer_id", 0, 3, I64),
    f("v3_and_below_producer_epoch", 0, 3, I16),
    f("v3_and_below_topics", 0, 3, Arr(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC))),
];
const ADD_PARTITIONS_TO_TXN_TRANSACTION: &[Field] = &[
    f("transactional_id", 4, N, Str),
    f("producer_id", 4, N, I64),
    f("producer_epoch", 4, N, I16),
    f("verify_only", 4, N, Bool),
    f("topics", 4, N, Arr(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC))),
];
const ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] = &[
    f("name", 0, N, Str),
    f("partitions", 0, N, Arr(&I32)),
];

// AddOffsetsToTxn (25): versions 0-4, flexible from 3.
const ADD_OFFSETS_TO_TXN: &[Field] = &[
    f("transactional_id", 0, N, Str),
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("group_id", 0, N, Str),
];

// EndTxn (26): versions 0-5, flexible from 3.
const END_TXN: &[Field] = &[
    f("transactional_id", 0, N, Str),
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("committed", 0, N, Bool),
];

// WriteTxnMarkers (27): versions 1-2, flexible from 1; version 2 adds
// TransactionVersion (KIP-1228). Read by kastle's own codec
// (`protocol::write_txn_markers`), which this layout must match.
const WRITE_TXN_MARKERS: &[Field] = &[
    f("markers", 1, N, Arr(&Struct(WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER))),
];
const WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER: &[Field] = &[
    f("producer_id", 1, N, I64),
    f("producer_epoch", 1, N, I16),
    f("transaction_result", 1, N, Bool),
    f("topics", 1, N, Arr(&Struct(WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER_TOPIC))),
    f("coordinator_epoch", 1, N, I32),
    f("transaction_version", 2, N, I8),
];
const WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER_TOPIC: &[Field] = &[
    f("name", 1, N, Str),
    f("partition_indexes", 1, N, Arr(&I32)),
];

// TxnOffsetCommit (28): versions 0-6, flexible from 3; v6 names topics by id.
const TXN_OFFSET_COMMIT: &[Field] = &[
    f("transactional_id", 0, N, Str),
    f("group_id", 0, N, Str),
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("generation_id", 3, N, I32),
    f("member_id", 3, N, Str),
    f("group_instance_id", 3, N, NStr),
    f("topics", 0, N, Arr(&Struct(TXN_OFFSET_COMMIT_TOPIC))),
];
const TXN_OFFSET_COMMIT_TOPIC: &[Field] = &[
    f("name", 0, 5, Str),
    f("topic_id", 6, N, Uuid),
    f("partitions", 0, N, Arr(&Struct(TXN_OFFSET_COMMIT_PARTITION))),
];
const TXN_OFFSET_COMMIT_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("committed_offset", 0, N, I64),
    f("committed_leader_epoch", 2, N, I32),
    f("committed_metadata", 0, N, NStr),
];

// DescribeAcls (29): versions 1-3, flexible from 2.
const DESCRIBE_ACLS: &[Field] = &[
    f("resource_type_filter", 1, N, I8),
    f("resource_name_filter", 1, N, NStr),
    f("pattern_type_filter", 1, N, I8),
    f("principal_filter", 1, N, NStr),
    f("host_filter", 1, N, NStr),
    f("operation", 1, N, I8),
    f("permission_type", 1, N, I8),
];

// CreateAcls (30): versions 1-3, flexible from 2.
const CREATE_ACLS: &[Field] = &[
    f("creations", 1, N, Arr(&Struct(CREATE_ACLS_ACL_CREATION))),
];
const CREATE_ACLS_ACL_CREATION: &[Field] = &[
    f("resource_type", 1, N, I8),
    f("resource_name", 1, N, Str),
    f("resource_pattern_type", 1, N, I8),
    f("principal", 1, N, Str),
    f("host", 1, N, Str),
    f("operation", 1, N, I8),
    f("permission_type", 1, N, I8),
];

// DeleteAcls (31): versions 1-3, flexible from 2.
const DELETE_ACLS: &[Field] = &[
    f("filters", 1, N, Arr(&Struct(DELETE_ACLS_FILTER))),
];
const DELETE_ACLS_FILTER: &[Field] = &[
    f("resource_type_filter", 1, N, I8),
    f("resource_name_filter", 1, N, NStr),
    f("pattern_type_filter", 1, N, I8),
    f("principal_filter", 1, N, NStr),
    f("host_filter", 1, N, NStr),
    f("operation", 1, N, I8),
    f("permission_type", 1, N, I8),
];

// DescribeConfigs (32): versions 1-4, flexible from 4.
const DESCRIBE_CONFIGS: &[Field] = &[
    f("resources", 1, N, Arr(&Struct(DESCRIBE_CONFIGS_RESOURCE))),
    f("include_synonyms", 1, N, Bool),
    f("include_documentation", 3, N, Bool),
];
const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", 1, N, I8),
    f("resource_name", 1, N, Str),
    f("configuration_keys", 1, N, NArr(&Str)),
];

// AlterConfigs (33): versions 0-2, flexible from 2.
const ALTER_CONFIGS: &[Field] = &[
    f("resources", 0, N, Arr(&Struct(ALTER_CONFIGS_RESOURCE))),
    f("validate_only", 0, N, Bool),
];
const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", 0, N, I8),
    f("resource_name", 0, N, Str),
    f("configs", 0, N, Arr(&Struct(ALTER_CONFIGS_ALTERABLE_CONFIG))),
];
const ALTER_CONFIGS_ALTERABLE_CONFIG: &[Field] = &[
    f("name", 0, N, Str),
    f("value", 0, N, NStr),
];

// DescribeLogDirs (35): versions 1-5, flexible from 2 (v5 is v4's layout).
const DESCRIBE_LOG_DIRS: &[Field] = &[
    f("topics", 1, N, NArr(&Struct(DESCRIBE_LOG_DIRS_DESCRIBABLE_LOG_DIR_TOPIC))),
];
const DESCRIBE_LOG_DIRS_DESCRIBABLE_LOG_DIR_TOPIC: &[Field] = &[
    f("topic", 1, N, Str),
    f("partitions", 1, N, Arr(&I32)),
];

// SaslAuthenticate (36): versions 0-2, flexible from 2.
const SASL_AUTHENTICATE: &[Field] = &[
    f("auth_bytes", 0, N, Bytes),
];

// CreatePartitions (37): versions 0-3, flexible from 2.
const CREATE_PARTITIONS: &[Field] = &[
    f("topics", 0, N, Arr(&Struct(CREATE_PARTITIONS_TOPIC))),
    f("timeout_ms", 0, N, I32),
    f("validate_only", 0, N, Bool),
];
const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    f("name", 0, N, Str),
    f("count", 0, N, I32),
    f("assignments", 0, N, NArr(&Struct(CREATE_PARTITIONS_ASSIGNMENT))),
];
const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[
    f("broker_ids", 0, N, Arr(&I32)),
];

// DeleteGroups (42): versions 0-3, flexible from 2 (v3 is v2's layout).
const DELETE_GROUPS: &[Field] = &[
    f("groups_names", 0, N, Arr(&Str)),
];

// ElectLeaders (43): versions 0-2, flexible from 2.
const ELECT_LEADERS: &[Field] = &[
    f("election_type", 1, N, I8),
    f("topic_partitions", 0, N, NArr(&Struct(ELECT_LEADERS_TOPIC_PARTITIONS))),
    f("timeout_ms", 0, N, I32),
];
const ELECT_LEADERS_TOPIC_PARTITIONS: &[Field] = &[
    f("topic", 0, N, Str),
    f("partitions", 0, N, Arr(&I32)),
];

// IncrementalAlterConfigs (44): versions 0-1, flexible from 1.
const INCREMENTAL_ALTER_CONFIGS: &[Field] = &[
    f("resources", 0, N, Arr(&Struct(INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE))),
    f("validate_only", 0, N, Bool),
];
const INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", 0, N, I8),
    f("resource_name", 0, N, Str),
    f("configs", 0, N, Arr(&Struct(INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG))),
];
const INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG: &[Field] = &[
    f("name", 0, N, Str),
    f("config_operation", 0, N, I8),
    f("value", 0, N, NStr),
];

// AlterPartitionReassignments (45): versions 0-1, flexible from 0.
const ALTER_PARTITION_REASSIGNMENTS: &[Field] = &[
    f("timeout_ms", 0, N, I32),
    f("allow_replication_factor_change", 1, N, Bool),
    f("topics", 0, N, Arr(&Struct(ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_TOPIC))),
];
const ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_TOPIC: &[Field] = &[
    f("name", 0, N, Str),
    f("partitions", 0, N, Arr(&Struct(ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_PARTITION))),
];
const ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("replicas", 0, N, NArr(&I32)),
];

// ListPartitionReassignments (46): versions 0-0, flexible from 0.
const LIST_PARTITION_REASSIGNMENTS: &[Field] = &[
    f("timeout_ms", 0, N, I32),
    f("topics", 0, N, NArr(&Struct(LIST_PARTITION_REASSIGNMENTS_TOPICS))),
];
const LIST_PARTITION_REASSIGNMENTS_TOPICS: &[Field] = &[
    f("name", 0, N, Str),
    f("partition_indexes", 0, N, Arr(&I32)),
];

// OffsetDelete (47): versions 0-0, flexible from never.
const OFFSET_DELETE: &[Field] = &[
    f("group_id", 0, N, Str),
    f("topics", 0, N, Arr(&Struct(OFFSET_DELETE_TOPIC))),
];
const OFFSET_DELETE_TOPIC: &[Field] = &[
    f("name", 0, N, Str),
    f("partitions", 0, N, Arr(&Struct(OFFSET_DELETE_PARTITION))),
];
const OFFSET_DELETE_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
];

// DescribeClientQuotas (48): versions 0-1, flexible from 1.
const DESCRIBE_CLIENT_QUOTAS: &[Field] = &[
    f("components", 0, N, Arr(&Struct(DESCRIBE_CLIENT_QUOTAS_COMPONENT_DATA))),
    f("strict", 0, N, Bool),
];
const DESCRIBE_CLIENT_QUOTAS_COMPONENT_DATA: &[Field] = &[
    f("entity_type", 0, N, Str),
    f("match_type", 0, N, I8),
    f("match", 0, N, NStr),
];

// AlterClientQuotas (49): versions 0-1, flexible from 1.
const ALTER_CLIENT_QUOTAS: &[Field] = &[
    f("entries", 0, N, Arr(&Struct(ALTER_CLIENT_QUOTAS_ENTRY_DATA))),
    f("validate_only", 0, N, Bool),
];
const ALTER_CLIENT_QUOTAS_ENTRY_DATA: &[Field] = &[
    f("entity", 0, N, Arr(&Struct(ALTER_CLIENT_QUOTAS_ENTITY_DATA))),
    f("ops", 0, N, Arr(&Struct(ALTER_CLIENT_QUOTAS_OP_DATA))),
];
const ALTER_CLIENT_QUOTAS_OP_DATA: &[Field] = &[
    f("key", 0, N, Str),
    f("value", 0, N, F64),
    f("remove", 0, N, Bool),
];
const ALTER_CLIENT_QUOTAS_ENTITY_DATA: &[Field] = &[
    f("entity_type", 0, N, Str),
    f("entity_name", 0, N, NStr),
];

// DescribeUserScramCredentials (50): versions 0-0, flexible from 0.
const DESCRIBE_USER_SCRAM_CREDENTIALS: &[Field] = &[
    f("users", 0, N, NArr(&Struct(DESCRIBE_USER_SCRAM_CREDENTIALS_USER_NAME))),
];
const DESCRIBE_USER_SCRAM_CREDENTIALS_USER_NAME: &[Field] = &[
    f("name", 0, N, Str),
];

// AlterUserScramCredentials (51): versions 0-0, flexible from 0.
const ALTER_USER_SCRAM_CREDENTIALS: &[Field] = &[
    f("deletions", 0, N, Arr(&Struct(ALTER_USER_SCRAM_CREDENTIALS_DELETION))),
    f("upsertions", 0, N, Arr(&Struct(ALTER_USER_SCRAM_CREDENTIALS_UPSERTION))),
];
const ALTER_USER_SCRAM_CREDENTIALS_DELETION: &[Field] = &[
    f("name", 0, N, Str),
    f("mechanism", 0, N, I8),
];
const ALTER_USER_SCRAM_CREDENTIALS_UPSERTION: &[Field] = &[
    f("name", 0, N, Str),
    f("mechanism", 0, N, I8),
    f("iterations", 0, N, I32),
    f("salt", 0, N, Bytes),
    f("salted_password", 0, N, Bytes),
];

// UpdateFeatures (57): versions 0-2, flexible from 0.
const UPDATE_FEATURES: &[Field] = &[
    f("timeout_ms", 0, N, I32),
    f("feature_updates", 0, N, Arr(&Struct(UPDATE_FEATURES_FEATURE_UPDATE_KEY))),
    f("validate_only", 1, N, Bool),
];
const UPDATE_FEATURES_FEATURE_UPDATE_KEY: &[Field] = &[
    f("feature", 0, N, Str),
    f("max_version_level", 0, N, I16),
    f("allow_downgrade", 0, 0, Bool),
    f("upgrade_type", 1, N, I8),
];

// DescribeCluster (60): versions 0-2, flexible from 0.
const DESCRIBE_CLUSTER: &[Field] = &[
    f("include_cluster_authorized_operations", 0, N, Bool),
    f("endpoint_type", 1, N, I8),
    f("include_fenced_brokers", 2, N, Bool),
];

// DescribeProducers (61): versions 0-0, flexible from 0.
const DESCRIBE_PRODUCERS: &[Field] = &[
    f("topics", 0, N, Arr(&Struct(DESCRIBE_PRODUCERS_TOPIC_REQUEST))),
];
const DESCRIBE_PRODUCERS_TOPIC_REQUEST: &[Field] = &[
    f("name", 0, N, Str),
    f("partition_indexes", 0, N, Arr(&I32)),
];

// DescribeTransactions (65): versions 0-0, flexible from 0.
const DESCRIBE_TRANSACTIONS: &[Field] = &[
    f("transactional_ids", 0, N, Arr(&Str)),
];

// ListTransactions (66): versions 0-2, flexible from 0.
const LIST_TRANSACTIONS: &[Field] = &[
    f("state_filters", 0, N, Arr(&Str)),
    f("producer_id_filters", 0, N, Arr(&I64)),
    f("duration_filter", 1, N, I64),
    f("transactional_id_pattern", 2, N, NStr),
];

// ConsumerGroupHeartbeat (68): versions 0-1, flexible from 0.
const CONSUMER_GROUP_HEARTBEAT: &[Field] = &[
    f("group_id", 0, N, Str),
    f("member_id", 0, N, Str),
    f("member_epoch", 0, N, I32),
    f("instance_id", 0, N, NStr),
    f("rack_id", 0, N, NStr),
    f("rebalance_timeout_ms", 0, N, I32),
    f("subscribed_topic_names", 0, N, NArr(&Str)),
    f("subscribed_topic_regex", 1, N, NStr),
    f("server_assignor", 0, N, NStr),
    f("topic_partitions", 0, N, NArr(&Struct(CONSUMER_GROUP_HEARTBEAT_TOPIC_PARTITIONS))),
];
const CONSUMER_GROUP_HEARTBEAT_TOPIC_PARTITIONS: &[Field] = &[
    f("topic_id", 0, N, Uuid),
    f("partitions", 0, N, Arr(&I32)),
];

// ConsumerGroupDescribe (69): versions 0-1, flexible from 0.
const CONSUMER_GROUP_DESCRIBE: &[Field] = &[
    f("group_ids", 0, N, Arr(&Str)),
    f("include_authorized_operations", 0, N, Bool),
];

// ShareGroupHeartbeat (76): version 1, flexible.
const SHARE_GROUP_HEARTBEAT: &[Field] = &[
    f("group_id", 0, N, Str),
    f("member_id", 0, N, Str),
    f("member_epoch", 0, N, I32),
    f("rack_id", 0, N, NStr),
    f("subscribed_topic_names", 0, N, NArr(&Str)),
];

// ShareGroupDescribe (77): version 1, flexible.
const SHARE_GROUP_DESCRIBE: &[Field] = &[
    f("group_ids", 0, N, Arr(&Str)),
    f("include_authorized_operations", 0, N, Bool),
];

// ShareFetch (78): versions 1-2, flexible; version 2 (KIP-1206,
// KIP-1222) is read by kastle's own codec (`protocol::share_v2`).
const SHARE_FETCH: &[Field] = &[
    f("group_id", 0, N, NStr),
    f("member_id", 0, N, NStr),
    f("share_session_epoch", 0, N, I32),
    f("max_wait_ms", 0, N, I32),
    f("min_bytes", 0, N, I32),
    f("max_bytes", 0, N, I32),
    f("max_records", 1, N, I32),
    f("batch_size", 1, N, I32),
    f("share_acquire_mode", 2, N, I8),
    f("is_renew_ack", 2, N, Bool),
    f("topics", 0, N, Arr(&Struct(SHARE_FETCH_TOPIC))),
    f("forgotten_topics_data", 0, N, Arr(&Struct(SHARE_FETCH_FORGOTTEN_TOPIC))),
];
const SHARE_FETCH_TOPIC: &[Field] = &[
    f("topic_id", 0, N, Uuid),
    f("partitions", 0, N, Arr(&Struct(SHARE_FETCH_PARTITION))),
];
const SHARE_FETCH_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("partition_max_bytes", 0, 0, I32),
    f("acknowledgement_batches", 0, N, Arr(&Struct(SHARE_ACKNOWLEDGEMENT_BATCH))),
];
const SHARE_ACKNOWLEDGEMENT_BATCH: &[Field] = &[
    f("first_offset", 0, N, I64),
    f("last_offset", 0, N, I64),
    f("acknowledge_types", 0, N, Arr(&I8)),
];
const SHARE_FETCH_FORGOTTEN_TOPIC: &[Field] = &[
    f("topic_id", 0, N, Uuid),
    f("partitions", 0, N, Arr(&I32)),
];

// ShareAcknowledge (79): versions 1-2, flexible (version 2: own codec).
const SHARE_ACKNOWLEDGE: &[Field] = &[
    f("group_id", 0, N, NStr),
    f("member_id", 0, N, NStr),
    f("share_session_epoch", 0, N, I32),
    f("is_renew_ack", 2, N, Bool),
    f("topics", 0, N, Arr(&Struct(SHARE_ACKNOWLEDGE_TOPIC))),
];
const SHARE_ACKNOWLEDGE_TOPIC: &[Field] = &[
    f("topic_id", 0, N, Uuid),
    f("partitions", 0, N, Arr(&Struct(SHARE_ACKNOWLEDGE_PARTITION))),
];
const SHARE_ACKNOWLEDGE_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("acknowledgement_batches", 0, N, Arr(&Struct(SHARE_ACKNOWLEDGEMENT_BATCH))),
];

// DescribeShareGroupOffsets (90): versions 0-1, flexible; version 1 adds
// only the response's Lag (KIP-1226). Read by kastle's own codec
// (`protocol::share_group_offsets`), which this layout must match.
const DESCRIBE_SHARE_GROUP_OFFSETS: &[Field] = &[
    f("groups", 0, N, Arr(&Struct(DESCRIBE_SHARE_GROUP_OFFSETS_GROUP))),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_GROUP: &[Field] = &[
    f("group_id", 0, N, Str),
    f("topics", 0, N, NArr(&Struct(DESCRIBE_SHARE_GROUP_OFFSETS_TOPIC))),
];
const DESCRIBE_SHARE_GROUP_OFFSETS_TOPIC: &[Field] = &[
    f("topic_name", 0, N, Str),
    f("partitions", 0, N, Arr(&I32)),
];

// AlterShareGroupOffsets (91): version 0, flexible.
const ALTER_SHARE_GROUP_OFFSETS: &[Field] = &[
    f("group_id", 0, N, Str),
    f("topics", 0, N, Arr(&Struct(ALTER_SHARE_GROUP_OFFSETS_TOPIC))),
];
const ALTER_SHARE_GROUP_OFFSETS_TOPIC: &[Field] = &[
    f("topic_name", 0, N, Str),
    f("partitions", 0, N, Arr(&Struct(ALTER_SHARE_GROUP_OFFSETS_PARTITION))),
];
const ALTER_SHARE_GROUP_OFFSETS_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("start_offset", 0, N, I64),
];

// DeleteShareGroupOffsets (92): version 0, flexible.
const DELETE_SHARE_GROUP_OFFSETS: &[Field] = &[
    f("group_id", 0, N, Str),
    f("topics", 0, N, Arr(&Struct(DELETE_SHARE_GROUP_OFFSETS_TOPIC))),
];
const DELETE_SHARE_GROUP_OFFSETS_TOPIC: &[Field] = &[f("topic_name", 0, N, Str)];

// GetTelemetrySubscriptions (71): versions 0-0, flexible from 0.
const GET_TELEMETRY_SUBSCRIPTIONS: &[Field] = &[
    f("client_instance_id", 0, N, Uuid),
];

// PushTelemetry (72): versions 0-0, flexible from 0.
const PUSH_TELEMETRY: &[Field] = &[
    f("client_instance_id", 0, N, Uuid),
    f("subscription_id", 0, N, I32),
    f("terminating", 0, N, Bool),
    f("compression_type", 0, N, I8),
    f("metrics", 0, N, Bytes),
];

// ListConfigResources (74): versions 0-1, flexible from 0 (v0 is KIP-714's
// ListClientMetricsResources, with an empty body).
const LIST_CONFIG_RESOURCES: &[Field] = &[
    f("resource_types", 1, N, Arr(&I8)),
];

// DescribeQuorum (55): versions 0-2, flexible from 0.
const DESCRIBE_QUORUM: &[Field] = &[
    f("topics", 0, N, Arr(&Struct(DESCRIBE_QUORUM_TOPIC_DATA))),
];
const DESCRIBE_QUORUM_TOPIC_DATA: &[Field] = &[
    f("topic_name", 0, N, Str),
    f("partitions", 0, N, Arr(&Struct(DESCRIBE_QUORUM_PARTITION_DATA))),
];
const DESCRIBE_QUORUM_PARTITION_DATA: &[Field] = &[
    f("partition_index", 0, N, I32),
];

// DescribeTopicPartitions (75): versions 0-0, flexible from 0.
const DESCRIBE_TOPIC_PARTITIONS: &[Field] = &[
    f("topics", 0, N, Arr(&Struct(DESCRIBE_TOPIC_PARTITIONS_TOPIC_REQUEST))),
    f("response_partition_limit", 0, N, I32),
    f("cursor", 0, N, OptStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR)),
];
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[Field] = &[
    f("topic_name", 0, N, Str),
    f("partition_index", 0, N, I32),
];
const DESCRIBE_TOPIC_PARTITIONS_TOPIC_REQUEST: &[Field] = &[
    f("name", 0, N, Str),
];


pub(super) static APIS: &[Api] = &[
    api(0, 3, 13, 9, PRODUCE), // Produce
    api(1, 4, 18, 12, FETCH), // Fetch
    api(2, 1, 11, 6, LIST_OFFSETS), // ListOffsets
    api(3, 0, 13, 9, METADATA), // Metadata
    api(8, 2, 10, 8, OFFSET_COMMIT), // OffsetCommit
    api(9, 1, 10, 6, OFFSET_FETCH), // OffsetFetch
    api(10, 0, 6, 3, FIND_COORDINATOR), // FindCoordinator
    api(11, 0, 9, 6, JOIN_GROUP), // JoinGroup
    api(12, 0, 4, 4, HEARTBEAT), // Heartbeat
    api(13, 0, 5, 4, LEAVE_GROUP), // LeaveGroup
    api(14, 0, 5, 4, SYNC_GROUP), // SyncGroup
    api(15, 0, 6, 5, DESCRIBE_GROUPS), // DescribeGroups
    api(16, 0, 5, 3, LIST_GROUPS), // ListGroups
    api(17, 0, 1, NEVER, SASL_HANDSHAKE), // SaslHandshake
    api(18, 0, 5, 3, API_VERSIONS), // ApiVersions
    api(19, 2, 7, 5, CREATE_TOPICS), // CreateTopics
    api(20, 1, 6, 4, DELETE_TOPICS), // DeleteTopics
    api(21, 0, 2, 2, DELETE_RECORDS), // DeleteRecords
    api(22, 0, 5, 2, INIT_PRODUCER_ID), // InitProducerId
    api(23, 2, 4, 4, OFFSET_FOR_LEADER_EPOCH), // OffsetForLeaderEpoch
    api(24, 0, 5, 3, ADD_PARTITIONS_TO_TXN), // AddPartitionsToTxn
    api(25, 0, 4, 3, ADD_OFFSETS_TO_TXN), // AddOffsetsToTxn
    api(26, 0, 5, 3, END_TXN), // EndTxn
    api(27, 1, 2, 1, WRITE_TXN_MARKERS), // WriteTxnMarkers
    api(28, 0, 6, 3, TXN_OFFSET_COMMIT), // TxnOffsetCommit
    api(29, 1, 3, 2, DESCRIBE_ACLS), // DescribeAcls
    api(30, 1, 3, 2, CREATE_ACLS), // CreateAcls
    api(31, 1, 3, 2, DELETE_ACLS), // DeleteAcls
    api(32, 1, 4, 4, DESCRIBE_CONFIGS), // DescribeConfigs
    api(33, 0, 2, 2, ALTER_CONFIGS), // AlterConfigs
    api(35, 1, 5, 2, DESCRIBE_LOG_DIRS), // DescribeLogDirs
    api(36, 0, 2, 2, SASL_AUTHENTICATE), // SaslAuthenticate
    api(37, 0, 3, 2, CREATE_PARTITIONS), // CreatePartitions
    api(42, 0, 3, 2, DELETE_GROUPS), // DeleteGroups
    api(43, 0, 2, 2, ELECT_LEADERS), // ElectLeaders
    api(44, 0, 1, 1, INCREMENTAL_ALTER_CONFIGS), // IncrementalAlterConfigs
    api(45, 0, 1, 0, ALTER_PARTITION_REASSIGNMENTS), // AlterPartitionReassignments
    api(46, 0, 0, 0, LIST_PARTITION_REASSIGNMENTS), // ListPartitionReassignments
    api(47, 0, 0, NEVER, OFFSET_DELETE), // OffsetDelete
    api(48, 0, 1, 1, DESCRIBE_CLIENT_QUOTAS), // DescribeClientQuotas
    api(49, 0, 1, 1, ALTER_CLIENT_QUOTAS), // AlterClientQuotas
    api(50, 0, 0, 0, DESCRIBE_USER_SCRAM_CREDENTIALS), // DescribeUserScramCredentials
    api(51, 0, 0, 0, ALTER_USER_SCRAM_CREDENTIALS), // AlterUserScramCredentials
    api(55, 0, 2, 0, DESCRIBE_QUORUM), // DescribeQuorum
    api(57, 0, 2, 0, UPDATE_FEATURES), // UpdateFeatures
    api(60, 0, 2, 0, DESCRIBE_CLUSTER), // DescribeCluster
    api(61, 0, 0, 0, DESCRIBE_PRODUCERS), // DescribeProducers
    api(65, 0, 0, 0, DESCRIBE_TRANSACTIONS), // DescribeTransactions
    api(66, 0, 2, 0, LIST_TRANSACTIONS), // ListTransactions
    api(68, 0, 1, 0, CONSUMER_GROUP_HEARTBEAT), // ConsumerGroupHeartbeat
    api(69, 0, 1, 0, CONSUMER_GROUP_DESCRIBE), // ConsumerGroupDescribe
    api(76, 1, 1, 0, SHARE_GROUP_HEARTBEAT), // ShareGroupHeartbeat
    api(77, 1, 1, 0, SHARE_GROUP_DESCRIBE), // ShareGroupDescribe
    api(78, 1, 2, 0, SHARE_FETCH), // ShareFetch
    api(79, 1, 2, 0, SHARE_ACKNOWLEDGE), // ShareAcknowledge
    api(90, 0, 1, 0, DESCRIBE_SHARE_GROUP_OFFSETS), // DescribeShareGroupOffsets
    api(91, 0, 0, 0, ALTER_SHARE_GROUP_OFFSETS), // AlterShareGroupOffsets
    api(92, 0, 0, 0, DELETE_SHARE_GROUP_OFFSETS), // DeleteShareGroupOffsets
    api(71, 0, 0, 0, GET_TELEMETRY_SUBSCRIPTIONS), // GetTelemetrySubscriptions
    api(72, 0, 0, 0, PUSH_TELEMETRY), // PushTelemetry
    api(74, 0, 1, 0, LIST_CONFIG_RESOURCES), // ListConfigResources
    api(75, 0, 0, 0, DESCRIBE_TOPIC_PARTITIONS), // DescribeTopicPartitions
    api(88, 0, 1, 0, STREAMS_GROUP_HEARTBEAT), // StreamsGroupHeartbeat
    api(89, 0, 1, 0, STREAMS_GROUP_DESCRIBE), // StreamsGroupDescribe
    api(93, 0, 0, 0, STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE), // StreamsGroupTopologyDescriptionUpdate
    api(56, 2, 3, 0, ALTER_PARTITION), // AlterPartition
    api(58, 0, 0, 0, ENVELOPE), // Envelope
    api(62, 0, 4, 0, BROKER_REGISTRATION), // BrokerRegistration
    api(63, 0, 1, 0, BROKER_HEARTBEAT), // BrokerHeartbeat
    api(67, 0, 0, 0, ALLOCATE_PRODUCER_IDS), // AllocateProducerIds
];
