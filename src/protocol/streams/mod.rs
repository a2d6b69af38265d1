//! The KIP-1071 streams group messages, StreamsGroupHeartbeat (88) and
//! StreamsGroupDescribe (89), versions 0-1, and KIP-1331's
//! StreamsGroupTopologyDescriptionUpdate (93) version 0 (all flexible):
//! kastle's own codec, because the `kafka-protocol` crate has no types for
//! them. Field order and encodings follow Kafka's message definitions;
//! every struct ends with its tagged-field section (read and skipped,
//! written empty).
//!
//! Requests are read only after the schema walker has bounded every
//! length in them (`schema::tables`), so no length read here can make
//! the decoder allocate more than the frame holds.

pub const STREAMS_GROUP_HEARTBEAT: i16 = 88;
pub const STREAMS_GROUP_DESCRIBE: i16 = 89;
pub const STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE: i16 = 93;

/// StreamsGroupHeartbeatResponse.Status codes (Kafka's
/// `StreamsGroupHeartbeatResponse.Status`).
pub mod status {
    pub const STALE_TOPOLOGY: i8 = 0;
    pub const MISSING_SOURCE_TOPICS: i8 = 1;
    pub const INCORRECTLY_PARTITIONED_TOPICS: i8 = 2;
    pub const MISSING_INTERNAL_TOPICS: i8 = 3;
    pub const SHUTDOWN_APPLICATION: i8 = 4;
    pub const ASSIGNMENT_DELAYED: i8 = 5;
    /// Answered from version 1 only (KAFKA-20744).
    pub const MISSING_CLIENT_TAGS: i8 = 6;
}

/// StreamsGroupDescribeResponse.TopologyDescriptionStatus (version 1+).
pub mod description_status {
    /// IncludeTopologyDescription was false.
    pub const NOT_REQUESTED: i8 = 0;
    /// No description is stored for the group (always so without
    /// `group.streams.topology.description.plugin.class`).
    pub const NOT_STORED: i8 = 1;
}

pub use super::wire::{DecodeError, Reader, Writer};

mod description;
use description::{read_topology_description, write_topology_description};
pub use description::{
    StreamsGroupTopologyDescriptionUpdateRequest, StreamsGroupTopologyDescriptionUpdateResponse,
    TopologyDescription, TopologyDescriptionGlobalStore, TopologyDescriptionNode,
    TopologyDescriptionSubtopology,
};

// ---------------------------------------------------------------------
// shared structs
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

fn read_kv(r: &mut Reader<'_>) -> Result<KeyValue, DecodeError> {
    let kv = KeyValue {
        key: r.str()?,
        value: r.str()?,
    };
    r.tags()?;
    Ok(kv)
}
fn write_kv(w: &mut Writer, kv: &KeyValue) {
    w.str(&kv.key);
    w.str(&kv.value);
    w.tags();
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub topic_configs: Vec<KeyValue>,
}

fn read_topic_info(r: &mut Reader<'_>) -> Result<TopicInfo, DecodeError> {
    let t = TopicInfo {
        name: r.str()?,
        partitions: r.i32()?,
        replication_factor: r.i16()?,
        topic_configs: r.arr(read_kv)?,
    };
    r.tags()?;
    Ok(t)
}
fn write_topic_info(w: &mut Writer, t: &TopicInfo) {
    w.str(&t.name);
    w.i32(t.partitions);
    w.i16(t.replication_factor);
    w.arr(&t.topic_configs, write_kv);
    w.tags();
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

fn read_endpoint(r: &mut Reader<'_>) -> Result<Endpoint, DecodeError> {
    let e = Endpoint {
        host: r.str()?,
        port: r.u16()?,
    };
    r.tags()?;
    Ok(e)
}
fn write_endpoint(w: &mut Writer, e: &Endpoint) {
    w.str(&e.host);
    w.u16(e.port);
    w.tags();
}
fn read_opt_endpoint(r: &mut Reader<'_>) -> Result<Option<Endpoint>, DecodeError> {
    if r.present()? {
        read_endpoint(r).map(Some)
    } else {
        Ok(None)
    }
}
fn write_opt_endpoint(w: &mut Writer, e: Option<&Endpoint>) {
    match e {
        None => w.i8(-1),
        Some(e) => {
            w.i8(1);
            write_endpoint(w, e);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOffset {
    pub subtopology_id: String,
    pub partition: i32,
    pub offset: i64,
}

fn read_task_offset(r: &mut Reader<'_>) -> Result<TaskOffset, DecodeError> {
    let t = TaskOffset {
        subtopology_id: r.str()?,
        partition: r.i32()?,
        offset: r.i64()?,
    };
    r.tags()?;
    Ok(t)
}
fn write_task_offset(w: &mut Writer, t: &TaskOffset) {
    w.str(&t.subtopology_id);
    w.i32(t.partition);
    w.i64(t.offset);
    w.tags();
}

/// The tasks of one subtopology: its partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIds {
    pub subtopology_id: String,
    pub partitions: Vec<i32>,
}

fn read_task_ids(r: &mut Reader<'_>) -> Result<TaskIds, DecodeError> {
    let t = TaskIds {
        subtopology_id: r.str()?,
        partitions: r.arr(|r| r.i32())?,
    };
    r.tags()?;
    Ok(t)
}
fn write_task_ids(w: &mut Writer, t: &TaskIds) {
    w.str(&t.subtopology_id);
    w.arr(&t.partitions, |w, p| w.i32(*p));
    w.tags();
}

// ---------------------------------------------------------------------
// StreamsGroupHeartbeat
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopartitionGroup {
    pub source_topics: Vec<i16>,
    pub source_topic_regex: Vec<i16>,
    pub repartition_source_topics: Vec<i16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subtopology {
    pub subtopology_id: String,
    pub source_topics: Vec<String>,
    pub source_topic_regex: Vec<String>,
    pub state_changelog_topics: Vec<TopicInfo>,
    pub repartition_sink_topics: Vec<String>,
    pub repartition_source_topics: Vec<TopicInfo>,
    pub copartition_groups: Vec<CopartitionGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub epoch: i32,
    pub subtopologies: Vec<Subtopology>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsGroupHeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub endpoint_information_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topology: Option<Topology>,
    pub active_tasks: Option<Vec<TaskIds>>,
    pub standby_tasks: Option<Vec<TaskIds>>,
    pub warmup_tasks: Option<Vec<TaskIds>>,
    pub process_id: Option<String>,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Option<Vec<KeyValue>>,
    pub task_offsets: Option<Vec<TaskOffset>>,
    pub task_end_offsets: Option<Vec<TaskOffset>>,
    pub shutdown_application: bool,
}

fn read_subtopology(r: &mut Reader<'_>) -> Result<Subtopology, DecodeError> {
    let s = Subtopology {
        subtopology_id: r.str()?,
        source_topics: r.arr(|r| r.str())?,
        source_topic_regex: r.arr(|r| r.str())?,
        state_changelog_topics: r.arr(read_topic_info)?,
        repartition_sink_topics: r.arr(|r| r.str())?,
        repartition_source_topics: r.arr(read_topic_info)?,
        copartition_groups: r.arr(|r| {
            let g = CopartitionGroup {
                source_topics: r.arr(|r| r.i16())?,
                source_topic_regex: r.arr(|r| r.i16())?,
                repartition_source_topics: r.arr(|r| r.i16())?,
            };
            r.tags()?;
            Ok(g)
        })?,
    };
    r.tags()?;
    Ok(s)
}

fn write_subtopology(w: &mut Writer, s: &Subtopology) {
    w.str(&s.subtopology_id);
    w.arr(&s.source_topics, |w, t| w.str(t));
    w.arr(&s.source_topic_regex, |w, t| w.str(t));
    w.arr(&s.state_changelog_topics, write_topic_info);
    w.arr(&s.repartition_sink_topics, |w, t| w.str(t));
    w.arr(&s.repartition_source_topics, write_topic_info);
    w.arr(&s.copartition_groups, |w, g| {
        w.arr(&g.source_topics, |w, i| w.i16(*i));
        w.arr(&g.source_topic_regex, |w, i| w.i16(*i));
        w.arr(&g.repartition_source_topics, |w, i| w.i16(*i));
        w.tags();
    });
    w.tags();
}

impl StreamsGroupHeartbeatRequest {
    /// Decodes a request body (trailing bytes ignored, as Kafka does).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        Self::read(body).map(|(req, _)| req)
    }

    /// Decodes, returning the bytes consumed.
    pub fn read(body: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(body, "StreamsGroupHeartbeatRequest");
        let req = StreamsGroupHeartbeatRequest {
            group_id: r.str()?,
            member_id: r.str()?,
            member_epoch: r.i32()?,
            endpoint_information_epoch: r.i32()?,
            instance_id: r.nstr()?,
            rack_id: r.nstr()?,
            rebalance_timeout_ms: r.i32()?,
            topology: if r.present()? {
                let t = Topology {
                    epoch: r.i32()?,
                    subtopologies: r.arr(read_subtopology)?,
                };
                r.tags()?;
                Some(t)
            } else {
                None
            },
            active_tasks: r.narr(read_task_ids)?,
            standby_tasks: r.narr(read_task_ids)?,
            warmup_tasks: r.narr(read_task_ids)?,
            process_id: r.nstr()?,
            user_endpoint: read_opt_endpoint(&mut r)?,
            client_tags: r.narr(read_kv)?,
            task_offsets: r.narr(read_task_offset)?,
            task_end_offsets: r.narr(read_task_offset)?,
            shutdown_application: r.bool()?,
        };
        r.tags()?;
        Ok((req, body.len() - r.remaining()))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(&self.group_id);
        w.str(&self.member_id);
        w.i32(self.member_epoch);
        w.i32(self.endpoint_information_epoch);
        w.nstr(self.instance_id.as_deref());
        w.nstr(self.rack_id.as_deref());
        w.i32(self.rebalance_timeout_ms);
        match &self.topology {
            None => w.i8(-1),
            Some(t) => {
                w.i8(1);
                w.i32(t.epoch);
                w.arr(&t.subtopologies, write_subtopology);
                w.tags();
            }
        }
        w.narr(self.active_tasks.as_deref(), write_task_ids);
        w.narr(self.standby_tasks.as_deref(), write_task_ids);
        w.narr(self.warmup_tasks.as_deref(), write_task_ids);
        w.nstr(self.process_id.as_deref());
        write_opt_endpoint(&mut w, self.user_endpoint.as_ref());
        w.narr(self.client_tags.as_deref(), write_kv);
        w.narr(self.task_offsets.as_deref(), write_task_offset);
        w.narr(self.task_end_offsets.as_deref(), write_task_offset);
        w.bool(self.shutdown_application);
        w.tags();
        w.0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub status_code: i8,
    pub status_detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPartition {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointToPartitions {
    pub user_endpoint: Endpoint,
    pub active_partitions: Vec<TopicPartition>,
    pub standby_partitions: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsGroupHeartbeatResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Version 0's int32 AcceptableRecoveryLag (renamed
    /// AcceptableRecoveryLagLegacy in Kafka 4.4, which never sets it).
    pub acceptable_recovery_lag_legacy: i32,
    pub task_offset_interval_ms: i32,
    /// Version 1+ (int64, after TaskOffsetIntervalMs); -1: not provided.
    pub acceptable_recovery_lag: i64,
    pub status: Option<Vec<Status>>,
    pub active_tasks: Option<Vec<TaskIds>>,
    pub standby_tasks: Option<Vec<TaskIds>>,
    pub warmup_tasks: Option<Vec<TaskIds>>,
    /// Version 1+: the broker asks the member for its topology description.
    pub topology_description_required: bool,
    pub endpoint_information_epoch: i32,
    pub partitions_by_user_endpoint: Option<Vec<EndpointToPartitions>>,
}

impl Default for StreamsGroupHeartbeatResponse {
    /// Kafka's defaults: AcceptableRecoveryLag -1, Status `[]` (the field
    /// has no null default, so an error answer carries an empty list).
    fn default() -> Self {
        StreamsGroupHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: 0,
            error_message: None,
            member_id: String::new(),
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            acceptable_recovery_lag_legacy: 0,
            task_offset_interval_ms: 0,
            acceptable_recovery_lag: -1,
            status: Some(Vec::new()),
            active_tasks: None,
            standby_tasks: None,
            warmup_tasks: None,
            topology_description_required: false,
            endpoint_information_epoch: 0,
            partitions_by_user_endpoint: None,
        }
    }
}

fn read_tp(r: &mut Reader<'_>) -> Result<TopicPartition, DecodeError> {
    let t = TopicPartition {
        topic: r.str()?,
        partitions: r.arr(|r| r.i32())?,
    };
    r.tags()?;
    Ok(t)
}
fn write_tp(w: &mut Writer, t: &TopicPartition) {
    w.str(&t.topic);
    w.arr(&t.partitions, |w, p| w.i32(*p));
    w.tags();
}

impl StreamsGroupHeartbeatResponse {
    /// The body at `version`: v0 has the int32 legacy lag after
    /// HeartbeatIntervalMs; v1 drops it and has the int64 lag after
    /// TaskOffsetIntervalMs and TopologyDescriptionRequired after
    /// WarmupTasks.
    pub fn write(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::default();
        w.i32(self.throttle_time_ms);
        w.i16(self.error_code);
        w.nstr(self.error_message.as_deref());
        w.str(&self.member_id);
        w.i32(self.member_epoch);
        w.i32(self.heartbeat_interval_ms);
        if version == 0 {
            w.i32(self.acceptable_recovery_lag_legacy);
        }
        w.i32(self.task_offset_interval_ms);
        if version >= 1 {
            w.i64(self.acceptable_recovery_lag);
        }
        w.narr(self.status.as_deref(), |w, s| {
            w.i8(s.status_code);
            w.str(&s.status_detail);
            w.tags();
        });
        w.narr(self.active_tasks.as_deref(), write_task_ids);
        w.narr(self.standby_tasks.as_deref(), write_task_ids);
        w.narr(self.warmup_tasks.as_deref(), write_task_ids);
        if version >= 1 {
            w.bool(self.topology_description_required);
        }
        w.i32(self.endpoint_information_epoch);
        w.narr(self.partitions_by_user_endpoint.as_deref(), |w, e| {
            write_endpoint(w, &e.user_endpoint);
            w.arr(&e.active_partitions, write_tp);
            w.arr(&e.standby_partitions, write_tp);
            w.tags();
        });
        w.tags();
        w.0
    }

    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "StreamsGroupHeartbeatResponse");
        let resp = StreamsGroupHeartbeatResponse {
            throttle_time_ms: r.i32()?,
            error_code: r.i16()?,
            error_message: r.nstr()?,
            member_id: r.str()?,
            member_epoch: r.i32()?,
            heartbeat_interval_ms: r.i32()?,
            acceptable_recovery_lag_legacy: if version == 0 { r.i32()? } else { 0 },
            task_offset_interval_ms: r.i32()?,
            acceptable_recovery_lag: if version >= 1 { r.i64()? } else { -1 },
            status: r.narr(|r| {
                let s = Status {
                    status_code: r.i8()?,
                    status_detail: r.str()?,
                };
                r.tags()?;
                Ok(s)
            })?,
            active_tasks: r.narr(read_task_ids)?,
            standby_tasks: r.narr(read_task_ids)?,
            warmup_tasks: r.narr(read_task_ids)?,
            topology_description_required: version >= 1 && r.bool()?,
            endpoint_information_epoch: r.i32()?,
            partitions_by_user_endpoint: r.narr(|r| {
                let e = EndpointToPartitions {
                    user_endpoint: read_endpoint(r)?,
                    active_partitions: r.arr(read_tp)?,
                    standby_partitions: r.arr(read_tp)?,
                };
                r.tags()?;
                Ok(e)
            })?,
        };
        r.tags()?;
        r.end()?;
        Ok(resp)
    }
}

// ---------------------------------------------------------------------
// StreamsGroupDescribe
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsGroupDescribeRequest {
    pub group_ids: Vec<String>,
    pub include_authorized_operations: bool,
    /// Version 1+.
    pub include_topology_description: bool,
}

impl StreamsGroupDescribeRequest {
    /// Decodes a request body (trailing bytes ignored, as Kafka does).
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        Self::read(body, version).map(|(req, _)| req)
    }

    /// Decodes, returning the bytes consumed.
    pub fn read(body: &[u8], version: i16) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(body, "StreamsGroupDescribeRequest");
        let req = StreamsGroupDescribeRequest {
            group_ids: r.arr(|r| r.str())?,
            include_authorized_operations: r.bool()?,
            include_topology_description: version >= 1 && r.bool()?,
        };
        r.tags()?;
        Ok((req, body.len() - r.remaining()))
    }

    /// The body at `version` (IncludeTopologyDescription only from v1; at
    /// v0 a true flag is dropped, where Kafka's client refuses to send it).
    pub fn encode(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::default();
        w.arr(&self.group_ids, |w, g| w.str(g));
        w.bool(self.include_authorized_operations);
        if version >= 1 {
            w.bool(self.include_topology_description);
        }
        w.tags();
        w.0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedSubtopology {
    pub subtopology_id: String,
    pub source_topics: Vec<String>,
    pub repartition_sink_topics: Vec<String>,
    pub state_changelog_topics: Vec<TopicInfo>,
    pub repartition_source_topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedTopology {
    pub epoch: i32,
    pub subtopologies: Option<Vec<DescribedSubtopology>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedAssignment {
    pub active_tasks: Vec<TaskIds>,
    pub standby_tasks: Vec<TaskIds>,
    pub warmup_tasks: Vec<TaskIds>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topology_epoch: i32,
    pub process_id: String,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Vec<KeyValue>,
    pub task_offsets: Vec<TaskOffset>,
    pub task_end_offsets: Vec<TaskOffset>,
    pub assignment: DescribedAssignment,
    pub target_assignment: DescribedAssignment,
    pub is_classic: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub group_id: String,
    pub group_state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub topology: Option<DescribedTopology>,
    pub members: Vec<DescribedMember>,
    pub authorized_operations: i32,
    /// Version 1+: non-null only with status AVAILABLE (3).
    pub topology_description: Option<TopologyDescription>,
    /// Version 1+ (`description_status`).
    pub topology_description_status: i8,
    /// Version 1+ (ignorable): the task assignor of the group's next
    /// assignment; null for an error entry.
    pub assignor_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsGroupDescribeResponse {
    pub throttle_time_ms: i32,
    pub groups: Vec<DescribedGroup>,
}

fn write_assignment(w: &mut Writer, a: &DescribedAssignment) {
    w.arr(&a.active_tasks, write_task_ids);
    w.arr(&a.standby_tasks, write_task_ids);
    w.arr(&a.warmup_tasks, write_task_ids);
    w.tags();
}
fn read_assignment(r: &mut Reader<'_>) -> Result<DescribedAssignment, DecodeError> {
    let a = DescribedAssignment {
        active_tasks: r.arr(read_task_ids)?,
        standby_tasks: r.arr(read_task_ids)?,
        warmup_tasks: r.arr(read_task_ids)?,
    };
    r.tags()?;
    Ok(a)
}

impl StreamsGroupDescribeResponse {
    /// The body at `version`: v1 adds TopologyDescription,
    /// TopologyDescriptionStatus and AssignorName to each group.
    pub fn write(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::default();
        w.i32(self.throttle_time_ms);
        w.arr(&self.groups, |w, g| {
            w.i16(g.error_code);
            w.nstr(g.error_message.as_deref());
            w.str(&g.group_id);
            w.str(&g.group_state);
            w.i32(g.group_epoch);
            w.i32(g.assignment_epoch);
            match &g.topology {
                None => w.i8(-1),
                Some(t) => {
                    w.i8(1);
                    w.i32(t.epoch);
                    w.narr(t.subtopologies.as_deref(), |w, s| {
                        w.str(&s.subtopology_id);
                        w.arr(&s.source_topics, |w, t| w.str(t));
                        w.arr(&s.repartition_sink_topics, |w, t| w.str(t));
                        w.arr(&s.state_changelog_topics, write_topic_info);
                        w.arr(&s.repartition_source_topics, write_topic_info);
                        w.tags();
                    });
                    w.tags();
                }
            }
            w.arr(&g.members, |w, m| {
                w.str(&m.member_id);
                w.i32(m.member_epoch);
                w.nstr(m.instance_id.as_deref());
                w.nstr(m.rack_id.as_deref());
                w.str(&m.client_id);
                w.str(&m.client_host);
                w.i32(m.topology_epoch);
                w.str(&m.process_id);
                write_opt_endpoint(w, m.user_endpoint.as_ref());
                w.arr(&m.client_tags, write_kv);
                w.arr(&m.task_offsets, write_task_offset);
                w.arr(&m.task_end_offsets, write_task_offset);
                write_assignment(w, &m.assignment);
                write_assignment(w, &m.target_assignment);
                w.bool(m.is_classic);
                w.tags();
            });
            w.i32(g.authorized_operations);
            if version >= 1 {
                match &g.topology_description {
                    None => w.i8(-1),
                    Some(d) => {
                        w.i8(1);
                        write_topology_description(w, d);
                    }
                }
                w.i8(g.topology_description_status);
                w.nstr(g.assignor_name.as_deref());
            }
            w.tags();
        });
        w.tags();
        w.0
    }

    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "StreamsGroupDescribeResponse");
        let throttle_time_ms = r.i32()?;
        let groups = r.arr(|r| {
            let error_code = r.i16()?;
            let error_message = r.nstr()?;
            let group_id = r.str()?;
            let group_state = r.str()?;
            let group_epoch = r.i32()?;
            let assignment_epoch = r.i32()?;
            let topology = if r.present()? {
                let epoch = r.i32()?;
                let subtopologies = r.narr(|r| {
                    let s = DescribedSubtopology {
                        subtopology_id: r.str()?,
                        source_topics: r.arr(|r| r.str())?,
                        repartition_sink_topics: r.arr(|r| r.str())?,
                        state_changelog_topics: r.arr(read_topic_info)?,
                        repartition_source_topics: r.arr(read_topic_info)?,
                    };
                    r.tags()?;
                    Ok(s)
                })?;
                r.tags()?;
                Some(DescribedTopology {
                    epoch,
                    subtopologies,
                })
            } else {
                None
            };
            let members = r.arr(|r| {
                let m = DescribedMember {
                    member_id: r.str()?,
                    member_epoch: r.i32()?,
                    instance_id: r.nstr()?,
                    rack_id: r.nstr()?,
                    client_id: r.str()?,
                    client_host: r.str()?,
                    topology_epoch: r.i32()?,
                    process_id: r.str()?,
                    user_endpoint: read_opt_endpoint(r)?,
                    client_tags: r.arr(read_kv)?,
                    task_offsets: r.arr(read_task_offset)?,
                    task_end_offsets: r.arr(read_task_offset)?,
                    assignment: read_assignment(r)?,
                    target_assignment: read_assignment(r)?,
                    is_classic: r.bool()?,
                };
                r.tags()?;
                Ok(m)
            })?;
            let authorized_operations = r.i32()?;
            let (topology_description, topology_description_status, assignor_name) = if version >= 1
            {
                let d = if r.present()? {
                    Some(read_topology_description(r)?)
                } else {
                    None
                };
                (d, r.i8()?, r.nstr()?)
            } else {
                (None, 0, None)
            };
            r.tags()?;
            Ok(DescribedGroup {
                error_code,
                error_message,
                group_id,
                group_state,
                group_epoch,
                assignment_epoch,
                topology,
                members,
                authorized_operations,
                topology_description,
                topology_description_status,
                assignor_name,
            })
        })?;
        r.tags()?;
        r.end()?;
        Ok(StreamsGroupDescribeResponse {
            throttle_time_ms,
            groups,
        })
    }
}

#[cfg(test)]
mod tests;
