//! The leader's view of the metadata log's replicas, as DescribeQuorum (API
//! 55) reports it (Kafka's `LeaderState.ReplicaState` and
//! `RaftUtil.singletonDescribeQuorumResponse`).
//!
//! Voters' log end offsets come from openraft's replication metrics; what
//! openraft does not keep, the times, is recorded here: the transport notes
//! each append a voter acknowledged ([`ReplicaStates::voter_fetched`]: its
//! last fetch, and its last catch-up when its log reached the commit index
//! the leader sent), the controller notes each broker's metadata fetch
//! ([`ReplicaStates::observer_fetched`]: brokers are the observers). Times
//! belong to one leader term, as Kafka's `LeaderState` does: a new term
//! starts them over.
//!
//! Offsets follow kastle's metadata-log convention (an entry's Raft index is
//! its offset): a log end offset is the last index + 1, the high watermark
//! the committed (applied) index + 1.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use kafka_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::NodeId;

/// The metadata log's topic and partition (Kafka's
/// `Topic.CLUSTER_METADATA_TOPIC_PARTITION`).
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const METADATA_PARTITION: i32 = 0;
/// How long a broker that stopped fetching stays an observer (Kafka's
/// `LeaderState.OBSERVER_SESSION_TIMEOUT_MS`).
pub const OBSERVER_SESSION_TIMEOUT: Duration = Duration::from_secs(300);

/// Wall-clock milliseconds (Kafka's `currentTimeMs`).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A replica's last fetch and last catch-up in one leader term (-1: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Times {
    term: u64,
    last_fetch_ms: i64,
    last_caught_up_ms: i64,
}

impl Times {
    fn new(term: u64) -> Times {
        Times {
            term,
            last_fetch_ms: -1,
            last_caught_up_ms: -1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Observer {
    times: Times,
    log_end_offset: i64,
}

/// One voter's controller listener (v2's `Nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterEndpoint {
    pub host: String,
    pub port: u16,
}

/// What the leader knows of the quorum at one moment (from openraft's
/// metrics): the input of [`ReplicaStates::describe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumView {
    pub leader_id: i32,
    pub term: u64,
    pub high_watermark: i64,
    /// Each voter's log end offset (-1 unknown); the leader's is its own.
    pub voters: BTreeMap<i32, i64>,
}

impl QuorumView {
    /// The view of `node_id` from its openraft metrics; `None` unless it
    /// leads the quorum.
    pub fn from_metrics(
        m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
        node_id: i32,
    ) -> Option<QuorumView> {
        let me = NodeId::try_from(node_id).ok()?;
        if m.current_leader != Some(me) || m.state != openraft::ServerState::Leader {
            return None;
        }
        let end = |index: Option<u64>| index.map_or(0, |i| i as i64 + 1);
        let replication = m.replication.as_ref();
        let voters = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|v| {
                let leo = if v == me {
                    end(m.last_log_index)
                } else {
                    replication
                        .and_then(|r| r.get(&v))
                        .map_or(-1, |matched| end(matched.map(|l| l.index)))
                };
                (v as i32, leo)
            })
            .collect();
        Some(QuorumView {
            leader_id: node_id,
            term: m.current_term,
            high_watermark: end(m.last_applied.map(|l| l.index)),
            voters,
        })
    }
}

/// The replicas' times, shared by the transport and the controller.
#[derive(Debug, Default)]
pub struct ReplicaStates {
    /// The controller listener name the voters' endpoints are reported under.
    listener_name: String,
    endpoints: BTreeMap<i32, VoterEndpoint>,
    voters: Mutex<BTreeMap<i32, Times>>,
    observers: Mutex<BTreeMap<i32, Observer>>,
}

impl ReplicaStates {
    pub fn new(listener_name: String, endpoints: BTreeMap<i32, VoterEndpoint>) -> ReplicaStates {
        ReplicaStates {
            listener_name,
            endpoints,
            ..ReplicaStates::default()
        }
    }

    /// The voters' controller endpoints by id.
    pub fn endpoints(&self) -> &BTreeMap<i32, VoterEndpoint> {
        &self.endpoints
    }

    /// Voter `id` acknowledged an append of `term`'s leader: its log now
    /// ends at index `matched`; `leader_commit` is the commit index the
    /// leader sent with it (caught up when the voter has everything
    /// committed, Kafka's fetch offset at or past the leader's end).
    pub fn voter_fetched(
        &self,
        id: i32,
        term: u64,
        matched: Option<u64>,
        leader_commit: Option<u64>,
        now_ms: i64,
    ) {
        let Ok(mut voters) = self.voters.lock() else {
            return;
        };
        let t = voters.entry(id).or_insert_with(|| Times::new(term));
        if t.term != term {
            *t = Times::new(term);
        }
        t.last_fetch_ms = now_ms;
        if leader_commit.is_none_or(|c| matched.is_some_and(|m| m >= c)) {
            t.last_caught_up_ms = now_ms;
        }
    }

    /// Broker `id` fetched the metadata after `after_offset` (the last
    /// offset it has) from the leader of `term`, whose applied offset is
    /// `applied`.
    pub fn observer_fetched(&self, id: i32, term: u64, after_offset: i64, applied: i64, now: i64) {
        let Ok(mut observers) = self.observers.lock() else {
            return;
        };
        let o = observers.entry(id).or_insert(Observer {
            times: Times::new(term),
            log_end_offset: -1,
        });
        if o.times.term != term {
            o.times = Times::new(term);
        }
        o.times.last_fetch_ms = now;
        o.log_end_offset = after_offset.max(-1) + 1;
        if after_offset >= applied {
            o.times.last_caught_up_ms = now;
        }
    }

    /// DescribeQuorum's answer at `version`: `view` is `None` when this
    /// node does not lead the quorum (NOT_LEADER_OR_FOLLOWER, as Kafka's
    /// `KafkaRaftClient.handleDescribeQuorumRequest`).
    pub fn describe(
        &self,
        request: &DescribeQuorumRequest,
        view: Option<&QuorumView>,
        version: i16,
        now_ms: i64,
    ) -> DescribeQuorumResponse {
        if !names_metadata_partition(request) {
            return partition_level_error(request, ResponseError::UnknownTopicOrPartition, version);
        }
        let Some(view) = view else {
            return singleton(
                error_partition(
                    METADATA_PARTITION,
                    ResponseError::NotLeaderOrFollower,
                    version,
                ),
                version,
            );
        };
        let voter_times = self.voters.lock().map(|v| v.clone()).unwrap_or_default();
        let voters = view
            .voters
            .iter()
            .map(|(&id, &leo)| {
                let times = if id == view.leader_id {
                    Times {
                        term: view.term,
                        last_fetch_ms: now_ms,
                        last_caught_up_ms: now_ms,
                    }
                } else {
                    voter_times
                        .get(&id)
                        .filter(|t| t.term == view.term)
                        .copied()
                        .unwrap_or(Times::new(view.term))
                };
                replica_state(id, leo, times, version)
            })
            .collect();
        let expired = now_ms - OBSERVER_SESSION_TIMEOUT.as_millis() as i64;
        let observers = self
            .observers
            .lock()
            .map(|o| o.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, o)| {
                !view.voters.contains_key(id)
                    && o.times.term == view.term
                    && o.times.last_fetch_ms >= expired
            })
            .map(|(id, o)| replica_state(id, o.log_end_offset, o.times, version))
            .collect();
        let partition = PartitionData::default()
            .with_partition_index(METADATA_PARTITION)
            .with_leader_id(BrokerId(view.leader_id))
            .with_leader_epoch(i32::try_from(view.term).unwrap_or(i32::MAX))
            .with_high_watermark(view.high_watermark)
            .with_current_voters(voters)
            .with_observers(observers);
        let mut resp = singleton(partition, version);
        if version >= 2 {
            resp.nodes = view
                .voters
                .keys()
                .map(|&id| {
                    let listeners = self
                        .endpoints
                        .get(&id)
                        .map(|e| {
                            vec![Listener::default()
                                .with_name(StrBytes::from_string(self.listener_name.clone()))
                                .with_host(StrBytes::from_string(e.host.clone()))
                                .with_port(e.port)]
                        })
                        .unwrap_or_default();
                    Node::default()
                        .with_node_id(BrokerId(id))
                        .with_listeners(listeners)
                })
                .collect();
        }
        resp
    }
}

/// Kafka's `RaftUtil.hasValidTopicPartition`: exactly the metadata
/// partition.
fn names_metadata_partition(request: &DescribeQuorumRequest) -> bool {
    matches!(request.topics.as_slice(), [t] if t.topic_name.0.as_str() == METADATA_TOPIC
        && matches!(t.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION))
}

fn replica_state(id: i32, log_end_offset: i64, t: Times, _version: i16) -> ReplicaState {
    // v2's replica directory id stays Kafka's NO_DIRECTORY_ID (the zero
    // uuid): kastle's voters have no directory ids (a static quorum).
    ReplicaState::default()
        .with_replica_id(BrokerId(id))
        .with_log_end_offset(log_end_offset)
        .with_last_fetch_timestamp(t.last_fetch_ms)
        .with_last_caught_up_timestamp(t.last_caught_up_ms)
}

fn error_partition(index: i32, error: ResponseError, version: i16) -> PartitionData {
    let p = PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error.code());
    if version >= 2 {
        p.with_error_message(Some(StrBytes::from_string(error.to_string())))
    } else {
        p
    }
}

fn singleton(partition: PartitionData, _version: i16) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition])])
}

/// Kafka's `DescribeQuorumRequest.getPartitionLevelErrorResponse`: every
/// requested partition with `error`.
pub fn partition_level_error(
    request: &DescribeQuorumRequest,
    error: ResponseError,
    version: i16,
) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                TopicData::default()
                    .with_topic_name(t.topic_name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| error_partition(p.partition_index, error, version))
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// Kafka's `DescribeQuorumRequest.getErrorResponse`: the error at the top
/// (its message from v2, where the field exists).
pub fn top_level_error(
    error: ResponseError,
    message: Option<String>,
    version: i16,
) -> DescribeQuorumResponse {
    let resp = DescribeQuorumResponse::default().with_error_code(error.code());
    if version >= 2 {
        resp.with_error_message(Some(StrBytes::from_string(
            message.unwrap_or_else(|| error.to_string()),
        )))
    } else {
        resp
    }
}

#[cfg(test)]
#[path = "replica_states_tests.rs"]
mod tests;
