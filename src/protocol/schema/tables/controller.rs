//! Request body layouts of the controller listener's own APIs
//! (`ControllerApis`: AlterPartition, Envelope, BrokerRegistration,
//! BrokerHeartbeat, AllocateProducerIds), all flexible from their first
//! version; the same conventions as the parent table.

use super::{f, t, Field, Ty::*, N};

// AlterPartition (56): versions 2-3.
pub(super) const ALTER_PARTITION: &[Field] = &[
    f("broker_id", 2, N, I32),
    f("broker_epoch", 2, N, I64),
    f("topics", 2, N, Arr(&Struct(ALTER_PARTITION_TOPIC_DATA))),
];
pub(super) const ALTER_PARTITION_TOPIC_DATA: &[Field] = &[
    f("topic_id", 2, N, Uuid),
    f("partitions", 2, N, Arr(&Struct(ALTER_PARTITION_PARTITION_DATA))),
];
pub(super) const ALTER_PARTITION_PARTITION_DATA: &[Field] = &[
    f("partition_index", 2, N, I32),
    f("leader_epoch", 2, N, I32),
    f("new_isr", 2, 2, Arr(&I32)),
    f("new_isr_with_epochs", 3, N, Arr(&Struct(ALTER_PARTITION_BROKER_STATE))),
    f("leader_recovery_state", 2, N, I8),
    f("partition_epoch", 2, N, I32),
];
pub(super) const ALTER_PARTITION_BROKER_STATE: &[Field] = &[
    f("broker_id", 3, N, I32),
    f("broker_epoch", 3, N, I64),
];

// Envelope (58): version 0.
pub(super) const ENVELOPE: &[Field] = &[
    f("request_data", 0, N, Bytes),
    f("request_principal", 0, N, NBytes),
    f("client_host_address", 0, N, Bytes),
];

// BrokerRegistration (62): versions 0-4.
pub(super) const BROKER_REGISTRATION: &[Field] = &[
    f("broker_id", 0, N, I32),
    f("cluster_id", 0, N, Str),
    f("incarnation_id", 0, N, Uuid),
    f("listeners", 0, N, Arr(&Struct(BROKER_REGISTRATION_LISTENER))),
    f("features", 0, N, Arr(&Struct(BROKER_REGISTRATION_FEATURE))),
    f("rack", 0, N, NStr),
    f("is_migrating_zk_broker", 1, N, Bool),
    f("log_dirs", 2, N, Arr(&Uuid)),
    f("previous_broker_epoch", 3, N, I64),
];
pub(super) const BROKER_REGISTRATION_LISTENER: &[Field] = &[
    f("name", 0, N, Str),
    f("host", 0, N, Str),
    f("port", 0, N, I16), // uint16: the same two bytes
    f("security_protocol", 0, N, I16),
];
pub(super) const BROKER_REGISTRATION_FEATURE: &[Field] = &[
    f("name", 0, N, Str),
    f("min_supported_version", 0, N, I16),
    f("max_supported_version", 0, N, I16),
];

// BrokerHeartbeat (63): versions 0-1.
pub(super) const BROKER_HEARTBEAT: &[Field] = &[
    f("broker_id", 0, N, I32),
    f("broker_epoch", 0, N, I64),
    f("current_metadata_offset", 0, N, I64),
    f("want_fence", 0, N, Bool),
    f("want_shut_down", 0, N, Bool),
    t(0, "offline_log_dirs", 1, N, Arr(&Uuid)),
];

// AllocateProducerIds (67): version 0.
pub(super) const ALLOCATE_PRODUCER_IDS: &[Field] = &[
    f("broker_id", 0, N, I32),
    f("broker_epoch", 0, N, I64),
];
