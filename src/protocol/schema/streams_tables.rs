//! The request layouts of KIP-1071's streams group APIs (88, 89) and
//! KIP-1331's StreamsGroupTopologyDescriptionUpdate (93) for the
//! schema walker, in `tables`' form; kastle's own codec
//! (`protocol::streams`) reads what they accept and must match them.

use super::tables::{f, Field, Ty::*, N};

// StreamsGroupHeartbeat (88): versions 0-1, flexible (KIP-1071; kastle's
// own codec in `protocol::streams`, which this layout must match). Version
// 1's request is version 0's (only the response changed).
pub(super) const STREAMS_GROUP_HEARTBEAT: &[Field] = &[
    f("group_id", 0, N, Str),
    f("member_id", 0, N, Str),
    f("member_epoch", 0, N, I32),
    f("endpoint_information_epoch", 0, N, I32),
    f("instance_id", 0, N, NStr),
    f("rack_id", 0, N, NStr),
    f("rebalance_timeout_ms", 0, N, I32),
    f("topology", 0, N, OptStruct(STREAMS_TOPOLOGY)),
    f("active_tasks", 0, N, NArr(&Struct(STREAMS_TASK_IDS))),
    f("standby_tasks", 0, N, NArr(&Struct(STREAMS_TASK_IDS))),
    f("warmup_tasks", 0, N, NArr(&Struct(STREAMS_TASK_IDS))),
    f("process_id", 0, N, NStr),
    // The port is a uint16: two bytes, as an int16.
    f("user_endpoint", 0, N, OptStruct(STREAMS_ENDPOINT)),
    f("client_tags", 0, N, NArr(&Struct(STREAMS_KEY_VALUE))),
    f("task_offsets", 0, N, NArr(&Struct(STREAMS_TASK_OFFSET))),
    f("task_end_offsets", 0, N, NArr(&Struct(STREAMS_TASK_OFFSET))),
    f("shutdown_application", 0, N, Bool),
];
const STREAMS_TOPOLOGY: &[Field] = &[
    f("epoch", 0, N, I32),
    f("subtopologies", 0, N, Arr(&Struct(STREAMS_SUBTOPOLOGY))),
];
const STREAMS_SUBTOPOLOGY: &[Field] = &[
    f("subtopology_id", 0, N, Str),
    f("source_topics", 0, N, Arr(&Str)),
    f("source_topic_regex", 0, N, Arr(&Str)),
    f("state_changelog_topics", 0, N, Arr(&Struct(STREAMS_TOPIC_INFO))),
    f("repartition_sink_topics", 0, N, Arr(&Str)),
    f("repartition_source_topics", 0, N, Arr(&Struct(STREAMS_TOPIC_INFO))),
    f("copartition_groups", 0, N, Arr(&Struct(STREAMS_COPARTITION_GROUP))),
];
const STREAMS_COPARTITION_GROUP: &[Field] = &[
    f("source_topics", 0, N, Arr(&I16)),
    f("source_topic_regex", 0, N, Arr(&I16)),
    f("repartition_source_topics", 0, N, Arr(&I16)),
];
const STREAMS_TOPIC_INFO: &[Field] = &[
    f("name", 0, N, Str),
    f("partitions", 0, N, I32),
    f("replication_factor", 0, N, I16),
    f("topic_configs", 0, N, Arr(&Struct(STREAMS_KEY_VALUE))),
];
const STREAMS_KEY_VALUE: &[Field] = &[
    f("key", 0, N, Str),
    f("value", 0, N, Str),
];
const STREAMS_ENDPOINT: &[Field] = &[
    f("host", 0, N, Str),
    f("port", 0, N, I16),
];
const STREAMS_TASK_OFFSET: &[Field] = &[
    f("subtopology_id", 0, N, Str),
    f("partition", 0, N, I32),
    f("offset", 0, N, I64),
];
const STREAMS_TASK_IDS: &[Field] = &[
    f("subtopology_id", 0, N, Str),
    f("partitions", 0, N, Arr(&I32)),
];

// StreamsGroupDescribe (89): versions 0-1, flexible.
pub(super) const STREAMS_GROUP_DESCRIBE: &[Field] = &[
    f("group_ids", 0, N, Arr(&Str)),
    f("include_authorized_operations", 0, N, Bool),
    f("include_topology_description", 1, N, Bool),
];

// StreamsGroupTopologyDescriptionUpdate (93): version 0, flexible; the
// description is a plain (non-nullable) struct, as are a global store's
// two nodes.
pub(super) const STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE: &[Field] = &[
    f("group_id", 0, N, Str),
    f("member_id", 0, N, Str),
    f("topology_epoch", 0, N, I32),
    f("topology_description", 0, N, Struct(STREAMS_TOPOLOGY_DESCRIPTION)),
];
const STREAMS_TOPOLOGY_DESCRIPTION: &[Field] = &[
    f("subtopologies", 0, N, Arr(&Struct(STREAMS_DESCRIPTION_SUBTOPOLOGY))),
    f("global_stores", 0, N, Arr(&Struct(STREAMS_DESCRIPTION_GLOBAL_STORE))),
];
const STREAMS_DESCRIPTION_SUBTOPOLOGY: &[Field] = &[
    f("subtopology_id", 0, N, Str),
    f("nodes", 0, N, Arr(&Struct(STREAMS_DESCRIPTION_NODE))),
];
const STREAMS_DESCRIPTION_GLOBAL_STORE: &[Field] = &[
    f("source", 0, N, Struct(STREAMS_DESCRIPTION_NODE)),
    f("processor", 0, N, Struct(STREAMS_DESCRIPTION_NODE)),
];
const STREAMS_DESCRIPTION_NODE: &[Field] = &[
    f("name", 0, N, Str),
    f("node_type", 0, N, I8),
    f("source_topics", 0, N, Arr(&Str)),
    f("sink_topic", 0, N, NStr),
    f("stores", 0, N, Arr(&Str)),
    f("successors", 0, N, Arr(&Str)),
];
