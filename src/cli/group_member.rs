//! `kastle consume TOPIC -g GROUP`: the consumer side of the KIP-848
//! consumer group protocol, as much of it as a console consumer needs. The
//! broker assigns (ConsumerGroupHeartbeat); the member reconciles at once
//! (it holds no records between polls), so a revoked partition's position
//! is committed and the partition dropped before the next heartbeat
//! reports what the member owns. Positions are committed with the member
//! epoch (OffsetCommit v9), every [`COMMIT_INTERVAL`] and on the way out,
//! then the member leaves (epoch -1). A fenced member rejoins with epoch 0
//! and commits nothing, as Kafka's consumer does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest};
use uuid::Uuid;

use super::client::{group_id, sb, topic_name, Client};
use super::CliError;

/// How often a member commits the positions it has moved.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The member's rebalance timeout: how long the broker waits for it to
/// give up a revoked partition (Kafka's `max.poll.interval.ms` plays this
/// part; a console consumer revokes at once).
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Coordinator changes and loads are retried this many times in a row.
const MAX_COORDINATOR_RETRIES: u32 = 40;

const UNKNOWN_MEMBER_ID: i16 = 25;
const FENCED_MEMBER_EPOCH: i16 = 110;
const COORDINATOR_ERRORS: [i16; 3] = [14, 15, 16];

/// What a heartbeat changed.
pub enum Change {
    /// The partitions of the topic now assigned.
    Assigned(BTreeSet<i32>),
    /// The member was fenced: it owns nothing and must not commit.
    Fenced,
}

pub struct GroupMember {
    group: String,
    topic: String,
    topic_id: Uuid,
    coordinator: String,
    member_id: String,
    epoch: i32,
    interval: Duration,
    next_heartbeat: Instant,
    /// What the member reported owning in its last heartbeat.
    owned: BTreeSet<i32>,
    /// Whether the broker has answered with an assignment yet.
    pub assignment_received: bool,
    coordinator_retries: u32,
    last_committed: BTreeMap<i32, i64>,
}

impl GroupMember {
    /// A member of `group` subscribed to `topic`, not yet joined (the first
    /// [`GroupMember::poll`] joins).
    pub async fn new(client: &mut Client, group: &str, topic: &str) -> Result<Self, CliError> {
        let version = client
            .version::<ConsumerGroupHeartbeatRequest>(1)
            .map_err(|_| {
                CliError::Other(
                    "consuming as a group member needs the consumer group protocol \
                     (ConsumerGroupHeartbeat, KIP-848: Apache Kafka 4.0+ or kastle)"
                        .into(),
                )
            })?;
        let md = client.metadata(Some(&[topic])).await?;
        let t = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
            .ok_or_else(|| CliError::Other(format!("no metadata for topic {topic}")))?;
        super::check(|| format!("topic {topic}"), t.error_code, None)?;
        let coordinator = client.coordinator(group).await?;
        Ok(GroupMember {
            group: group.to_string(),
            topic: topic.to_string(),
            topic_id: t.topic_id,
            coordinator,
            // From v1 the member names itself (KIP-1082); v0's broker does.
            member_id: if version >= 1 {
                Uuid::new_v4().to_string()
            } else {
                String::new()
            },
            epoch: 0,
            interval: Duration::from_millis(500),
            next_heartbeat: Instant::now(),
            owned: BTreeSet::new(),
            assignment_received: false,
            coordinator_retries: 0,
            last_committed: BTreeMap::new(),
        })
    }

    /// Records that the member now owns `partitions` (revocations done),
    /// to be reported by a heartbeat sent at once.
    pub fn reconciled(&mut self, partitions: &BTreeSet<i32>) {
        if *partitions != self.owned {
            self.owned = partitions.clone();
            self.next_heartbeat = Instant::now();
        }
    }

    /// How long until the next heartbeat is due.
    pub fn until_heartbeat(&self) -> Duration {
        self.next_heartbeat
            .saturating_duration_since(Instant::now())
    }

    fn heartbeat_request(&self) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_member_id(sb(&self.member_id))
            .with_member_epoch(self.epoch)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_subscribed_topic_names(Some(vec![topic_name(&self.topic)]))
            .with_topic_partitions(Some(if self.owned.is_empty() {
                Vec::new()
            } else {
                vec![TopicPartitions::default()
                    .with_topic_id(self.topic_id)
                    .with_partitions(self.owned.iter().copied().collect())]
            }))
    }

    /// Heartbeats when one is due: `Some` when the assignment changed.
    pub async fn poll(&mut self, client: &mut Client) -> Result<Option<Change>, CliError> {
        if Instant::now() < self.next_heartbeat {
            return Ok(None);
        }
        let req = self.heartbeat_request();
        let (resp, _) = client.send_to(&self.coordinator, &req, 1).await?;
        let code = resp.error_code;
        if COORDINATOR_ERRORS.contains(&code) && self.coordinator_retries < MAX_COORDINATOR_RETRIES
        {
            self.coordinator_retries += 1;
            self.coordinator = client.coordinator(&self.group).await?;
            self.next_heartbeat = Instant::now() + Duration::from_millis(250);
            return Ok(None);
        }
        self.coordinator_retries = 0;
        if code == FENCED_MEMBER_EPOCH || code == UNKNOWN_MEMBER_ID {
            self.epoch = 0;
            self.owned.clear();
            self.last_committed.clear();
            self.next_heartbeat = Instant::now();
            return Ok(Some(Change::Fenced));
        }
        super::check(
            || format!("heartbeat of group {}", self.group),
            code,
            resp.error_message.map(|m| m.to_string()),
        )?;
        if let Some(id) = resp.member_id.filter(|id| !id.is_empty()) {
            self.member_id = id.to_string();
        }
        self.epoch = resp.member_epoch;
        self.interval = Duration::from_millis(resp.heartbeat_interval_ms.clamp(100, 30_000) as u64);
        self.next_heartbeat = Instant::now() + self.interval;
        let Some(assignment) = resp.assignment else {
            return Ok(None);
        };
        let assigned: BTreeSet<i32> = assignment
            .topic_partitions
            .iter()
            .filter(|tp| tp.topic_id == self.topic_id)
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect();
        // Nothing assigned may only mean the group's next assignment is not
        // computed yet (KIP-1251 batching: a member joining within the
        // group's assignment interval gets the last one first); the member
        // counts as assigned once the group's assignment caught up.
        self.assignment_received = !assigned.is_empty() || !self.assignment_pending(client).await?;
        Ok(Some(Change::Assigned(assigned)))
    }

    /// Whether the group's target assignment lags its epoch (Kafka's
    /// `Assigning` state), from ConsumerGroupDescribe.
    async fn assignment_pending(&self, client: &mut Client) -> Result<bool, CliError> {
        let req =
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(&self.group)]);
        let (resp, _) = client.send_to(&self.coordinator, &req, 0).await?;
        Ok(resp
            .groups
            .first()
            .is_some_and(|g| g.error_code == 0 && g.assignment_epoch < g.group_epoch))
    }

    /// The group's committed offsets of `partitions` of the topic.
    pub async fn committed(
        &mut self,
        client: &mut Client,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, CliError> {
        let all = super::group::committed(client, &self.coordinator, &self.group).await?;
        Ok(all
            .into_iter()
            .filter(|((t, p), _)| *t == self.topic && partitions.contains(p))
            .map(|((_, p), o)| (p, o))
            .collect())
    }

    /// Commits `positions` that moved since the last commit. A commit the
    /// broker refuses because the member's epoch moved on is left to the
    /// next one (the heartbeat brings the new epoch).
    pub async fn commit(
        &mut self,
        client: &mut Client,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<(), CliError> {
        let moved: Vec<(i32, i64)> = positions
            .iter()
            .filter(|(p, o)| self.last_committed.get(p) != Some(o))
            .map(|(p, o)| (*p, *o))
            .collect();
        if moved.is_empty() || self.epoch <= 0 {
            return Ok(());
        }
        let req = super::group::offset_commit(
            &self.group,
            self.epoch,
            &self.member_id,
            &self.topic,
            moved.iter().copied(),
        );
        let (resp, _) = client.send_to(&self.coordinator, &req, 9).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                match p.error_code {
                    0 => {
                        if let Some((_, o)) = moved.iter().find(|(q, _)| *q == p.partition_index) {
                            self.last_committed.insert(p.partition_index, *o);
                        }
                    }
                    // STALE_MEMBER_EPOCH, FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID
                    // and coordinator moves: the next heartbeat sorts them out.
                    113 | FENCED_MEMBER_EPOCH | UNKNOWN_MEMBER_ID | 14 | 15 | 16 => {
                        self.next_heartbeat = Instant::now();
                    }
                    code => {
                        return Err(CliError::kafka(
                            format!(
                                "committing the offset of group {} for {}-{}",
                                self.group, self.topic, p.partition_index
                            ),
                            code,
                            None,
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// Leaves the group (epoch -1), so the broker reassigns at once.
    pub async fn leave(mut self, client: &mut Client) -> Result<(), CliError> {
        if self.epoch <= 0 {
            return Ok(());
        }
        self.epoch = -1;
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_member_id(sb(&self.member_id))
            .with_member_epoch(-1);
        let (resp, _) = client.send_to(&self.coordinator, &req, 1).await?;
        match resp.error_code {
            0 | UNKNOWN_MEMBER_ID | FENCED_MEMBER_EPOCH => Ok(()),
            code => Err(CliError::kafka(
                format!("leaving group {}", self.group),
                code,
                resp.error_message.map(|m| m.to_string()),
            )),
        }
    }
}
