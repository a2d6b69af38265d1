//! What the group coordinator's operations take and answer: the requests'
//! parameters and outcomes in the coordinator's own terms (the handlers
//! translate them from and to the wire), and answers that arrive later
//! (JoinGroup and SyncGroup long-poll).

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::classic_group::GroupState;
use super::writer::DurableWait;

/// Largest metadata accepted per JoinGroup protocol entry; Kafka has no
/// explicit cap but could never store more in one GroupMetadata record.
pub const MAX_PROTOCOL_METADATA_BYTES: usize = 1024 * 1024;

pub(super) fn code(e: ResponseError) -> i16 {
    e.code()
}

/// An answer now, or later (long poll).
pub enum Answer<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub struct JoinParams {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinMember>,
    pub skip_assignment: bool,
    pub wait: Option<DurableWait>,
}

impl JoinOutcome {
    pub fn error(e: ResponseError, member_id: &str) -> JoinOutcome {
        JoinOutcome::error_code(code(e), member_id)
    }

    pub fn error_code(error: i16, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
            wait: None,
        }
    }
}

/// The parameters a SyncGroup carries.
pub struct SyncParams<'a> {
    pub group_id: &'a str,
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
    pub wait: Option<DurableWait>,
}

impl SyncOutcome {
    pub fn error(e: ResponseError) -> SyncOutcome {
        SyncOutcome::error_code(code(e))
    }

    pub fn error_code(error: i16) -> SyncOutcome {
        SyncOutcome {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
            wait: None,
        }
    }
}

/// Who is committing: the fields OffsetCommit and TxnOffsetCommit use to
/// validate the committer against the group.
pub struct Committer<'a> {
    pub group_id: &'a str,
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
}

pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

pub struct FetchedOffset {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// UNSTABLE_OFFSET_COMMIT when `require_stable` was asked and an open
    /// transaction holds an offset for the partition.
    pub error: i16,
}

pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer".
    pub group_type: &'static str,
}

pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}
