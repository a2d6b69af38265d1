//! One replica fetcher task (Kafka's `ReplicaFetcherThread` over
//! `AbstractFetcherThread`): for the partitions it follows from one leader,
//! truncate by OffsetForLeaderEpoch (Kafka's `truncateToEpochEndOffsets`),
//! then fetch with the follower's replica id and broker epoch, append the
//! leader's batches as they are, and (durable mode) fsync before the next
//! fetch reports the new offset, so the leader's high watermark only covers
//! what this replica has on disk (see `partition/replication.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{
    FetchPartition as FetchReqPartition, FetchTopic, ReplicaState,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::broker::partition::{Partition, PartitionError};
use crate::broker::replica_fetcher_manager::{
    FetchPartition, FetchState, FetcherHandle, PartitionKey,
};
use crate::broker::replication_quota_manager::ReplicationQuotas;
use crate::clients::network_client::{ClientLimits, NetworkClient};
use crate::config::BrokerConfig;
use crate::util::shutdown::ShutdownSignal;

/// Kafka's `replica.fetch.*` settings.
#[derive(Debug, Clone, Copy)]
pub struct FetcherSettings {
    pub max_bytes: i32,
    pub min_bytes: i32,
    pub wait_max_ms: i32,
    pub backoff: Duration,
    pub response_max_bytes: i32,
    pub request_timeout: Duration,
}

impl FetcherSettings {
    pub fn from_config(c: &BrokerConfig) -> FetcherSettings {
        let int = |k: &str| c.int(k).clamp(0, i64::from(i32::MAX)) as i32;
        FetcherSettings {
            max_bytes: int("replica.fetch.max.bytes"),
            min_bytes: int("replica.fetch.min.bytes").max(1),
            wait_max_ms: int("replica.fetch.wait.max.ms"),
            backoff: Duration::from_millis(int("replica.fetch.backoff.ms") as u64),
            response_max_bytes: int("replica.fetch.response.max.bytes"),
            request_timeout: Duration::from_millis(int("request.timeout.ms").max(1000) as u64),
        }
    }
}

/// The highest version kastle's broker advertises (the leader is kastle).
fn version(key: ApiKey) -> i16 {
    crate::protocol::versions::support(key as i16).map_or(0, |s| s.max)
}

/// Kafka's `OffsetForLeaderEpochResponse.UNDEFINED_EPOCH(_OFFSET)`.
const UNDEFINED: i64 = -1;

pub async fn run(
    handle: Arc<FetcherHandle>,
    node_id: i32,
    fetcher_id: u64,
    settings: FetcherSettings,
    broker_epoch: Arc<AtomicI64>,
    quotas: Arc<ReplicationQuotas>,
    shutdown: ShutdownSignal,
) {
    let limits = ClientLimits {
        request_timeout: settings.request_timeout
            + Duration::from_millis(settings.wait_max_ms.max(0) as u64),
        max_response_bytes: (settings.response_max_bytes.max(0) as usize)
            .saturating_add(settings.max_bytes.max(0) as usize)
            .saturating_add(1 << 20),
        ..ClientLimits::default()
    };
    let mut fetcher = Fetcher {
        client: NetworkClient::new(
            handle.endpoint.clone(),
            &format!("broker-{node_id}-fetcher-{fetcher_id}"),
            limits,
        )
        .with_security(handle.security.clone()),
        handle,
        node_id,
        settings,
        broker_epoch,
        quotas,
        lag: HashMap::new(),
    };
    loop {
        if fetcher.handle.stopped.load(Ordering::Acquire) || shutdown.is_shutting_down() {
            return;
        }
        let now = Instant::now();
        let parts: Vec<(PartitionKey, FetchPartition)> = fetcher
            .handle
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let ready: Vec<_> = parts
            .iter()
            .filter(|(_, p)| p.state != FetchState::Fenced)
            .filter(|(_, p)| p.delayed_until.is_none_or(|d| d <= now))
            .cloned()
            .collect();
        if ready.is_empty() {
            let next = parts
                .iter()
                .filter(|(_, p)| p.state != FetchState::Fenced)
                .filter_map(|(_, p)| p.delayed_until)
                .min();
            let sleep = async {
                match next {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = fetcher.handle.wake.notified() => {}
                _ = sleep => {}
                _ = shutdown.wait() => return,
            }
            continue;
        }
        let truncating: Vec<_> = ready
            .iter()
            .filter(|(_, p)| p.state == FetchState::Truncating)
            .cloned()
            .collect();
        let outcome = if truncating.is_empty() {
            tokio::select! {
                r = fetcher.fetch(&ready) => r,
                _ = shutdown.wait() => return,
            }
        } else {
            tokio::select! {
                r = fetcher.truncate(&truncating) => r,
                _ = shutdown.wait() => return,
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(leader = fetcher.handle.leader_id, endpoint = %fetcher.handle.endpoint, error = %e, "replica fetch failed; backing off");
            tokio::select! {
                _ = tokio::time::sleep(settings.backoff) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

struct Fetcher {
    client: NetworkClient,
    handle: Arc<FetcherHandle>,
    node_id: i32,
    settings: FetcherSettings,
    broker_epoch: Arc<AtomicI64>,
    quotas: Arc<ReplicationQuotas>,
    /// Each partition's lag behind the leader's high watermark after its
    /// last answer (Kafka's `PartitionFetchState.lag`); absent: unknown.
    lag: HashMap<PartitionKey, i64>,
}

impl Fetcher {
    /// Kafka's `shouldFollowerThrottle`: a replica not caught up with the
    /// leader's high watermark, of a throttled partition, while the
    /// follower quota is exceeded, is left out of the request.
    fn should_follower_throttle(&self, key: &PartitionKey, p: &FetchPartition) -> bool {
        let in_sync = self.lag.get(key).is_some_and(|l| *l <= 0);
        !in_sync
            && p.partition.settings().follower_throttled.contains(key.1)
            && self.quotas.follower.is_quota_exceeded()
    }

    /// Updates a partition's entry if it is still the one the request was
    /// built from (same leader epoch): metadata may have moved it meanwhile.
    fn update(&self, key: &PartitionKey, epoch: i32, f: impl FnOnce(&mut FetchPartition)) {
        if let Some(p) = self.handle.lock().get_mut(key) {
            if p.leader_epoch == epoch {
                f(p);
            }
        }
    }

    fn delay(&self, key: &PartitionKey, epoch: i32) {
        let until = Instant::now() + self.settings.backoff;
        self.update(key, epoch, |p| p.delayed_until = Some(until));
    }

    /// A partition-level error: fenced ones wait for metadata, others retry
    /// after `replica.fetch.backoff.ms` (Kafka's `handlePartitionsWithErrors`).
    fn partition_error(&self, key: &PartitionKey, epoch: i32, code: ResponseError) {
        tracing::info!(topic = %key.0, partition = key.1, leader_epoch = epoch, error = ?code, "replica fetch error");
        if code == ResponseError::FencedLeaderEpoch {
            self.update(key, epoch, |p| p.state = FetchState::Fenced);
        } else {
            self.delay(key, epoch);
        }
    }

    async fn truncate(&mut self, parts: &[(PartitionKey, FetchPartition)]) -> anyhow::Result<()> {
        let mut by_topic: BTreeMap<Arc<str>, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        let mut no_epochs = Vec::new();
        for (key, p) in parts {
            match p.partition.latest_local_epoch() {
                Some(epoch) => by_topic.entry(key.0.clone()).or_default().push(
                    OffsetForLeaderPartition::default()
                        .with_partition(key.1)
                        .with_current_leader_epoch(p.leader_epoch)
                        .with_leader_epoch(epoch),
                ),
                None => no_epochs.push((key, p)),
            }
        }
        // An empty epoch cache means an empty log: nothing to truncate.
        for (key, p) in no_epochs {
            let end = p.partition.log_end_offset().unwrap_or(0);
            self.update(key, p.leader_epoch, |e| e.state = FetchState::Fetching(end));
        }
        if by_topic.is_empty() {
            return Ok(());
        }
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetForLeaderTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = self
            .client
            .send(&req, version(ApiKey::OffsetForLeaderEpoch))
            .await?;
        for t in resp.topics {
            for r in t.partitions {
                let key: PartitionKey = (Arc::from(t.topic.0.as_str()), r.partition);
                let Some((_, p)) = parts.iter().find(|(k, _)| *k == key) else {
                    continue;
                };
                if r.error_code != 0 {
                    let code = ResponseError::try_from_code(r.error_code)
                        .unwrap_or(ResponseError::UnknownServerError);
                    self.partition_error(&key, p.leader_epoch, code);
                    continue;
                }
                match truncation_target(&p.partition, r.leader_epoch, r.end_offset) {
                    Ok((target, complete)) => {
                        if let Err(e) = p.partition.truncate_to(target) {
                            tracing::error!(topic = %key.0, partition = key.1, error = %e, "truncation failed");
                            self.delay(&key, p.leader_epoch);
                            continue;
                        }
                        tracing::info!(topic = %key.0, partition = key.1, offset = target, leader_epoch = p.leader_epoch, "truncated to the leader's epoch end offset");
                        if complete {
                            let end = p.partition.log_end_offset().unwrap_or(target);
                            self.update(&key, p.leader_epoch, |e| {
                                e.state = FetchState::Fetching(end)
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %key.0, partition = key.1, error = %e, "truncation failed");
                        self.delay(&key, p.leader_epoch);
                    }
                }
            }
        }
        Ok(())
    }

    async fn fetch(&mut self, parts: &[(PartitionKey, FetchPartition)]) -> anyhow::Result<()> {
        let v = version(ApiKey::Fetch);
        let mut topics: BTreeMap<Arc<str>, FetchTopic> = BTreeMap::new();
        if self.lag.len() > parts.len() {
            self.lag
                .retain(|k, _| parts.iter().any(|(key, _)| key == k));
        }
        let mut throttled = false;
        for (key, p) in parts {
            let FetchState::Fetching(offset) = p.state else {
                continue;
            };
            if self.should_follower_throttle(key, p) {
                throttled = true;
                continue;
            }
            let t = topics.entry(key.0.clone()).or_insert_with(|| {
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(key.0.to_string())))
                    .with_topic_id(p.topic_id)
            });
            t.partitions.push(
                FetchReqPartition::default()
                    .with_partition(key.1)
                    .with_current_leader_epoch(p.leader_epoch)
                    .with_fetch_offset(offset)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(p.partition.state().log_start_offset)
                    .with_partition_max_bytes(self.settings.max_bytes),
            );
        }
        if topics.is_empty() {
            if throttled {
                // Kafka's fetcher waits `replica.fetch.backoff.ms` when
                // every partition is held back.
                tokio::time::sleep(self.settings.backoff).await;
            }
            return Ok(());
        }
        let epoch = self.broker_epoch.load(Ordering::Acquire);
        let mut req = FetchRequest::default()
            .with_max_wait_ms(self.settings.wait_max_ms)
            .with_min_bytes(self.settings.min_bytes)
            .with_max_bytes(self.settings.response_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics.into_values().collect());
        if v >= 15 {
            req = req.with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.node_id))
                    .with_replica_epoch(epoch),
            );
        } else {
            req = req.with_replica_id(BrokerId(self.node_id));
        }
        let resp = self.client.send(&req, v).await?;
        // Stopped meanwhile (leadership moved): the answer is from a leader
        // that may no longer be one, and must not touch any log.
        if self.handle.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        if resp.error_code != 0 {
            anyhow::bail!("fetch answered with error code {}", resp.error_code);
        }
        for t in resp.responses {
            for r in t.partitions {
                let Some((key, p)) = parts.iter().find(|(k, p)| {
                    k.1 == r.partition_index
                        && if v >= 13 {
                            p.topic_id == t.topic_id
                        } else {
                            *k.0 == *t.topic.0.as_str()
                        }
                }) else {
                    continue;
                };
                let FetchState::Fetching(offset) = p.state else {
                    continue;
                };
                if r.error_code != 0 {
                    let code = ResponseError::try_from_code(r.error_code)
                        .unwrap_or(ResponseError::UnknownServerError);
                    if code == ResponseError::OffsetOutOfRange {
                        if let Err(e) = self.handle_out_of_range(key, p, offset).await {
                            tracing::warn!(topic = %key.0, partition = key.1, error = %e, "out-of-range handling failed");
                            self.delay(key, p.leader_epoch);
                        }
                    } else {
                        self.partition_error(key, p.leader_epoch, code);
                    }
                    continue;
                }
                match self
                    .process(key, p, offset, r.records.as_deref().unwrap_or(&[]))
                    .await
                {
                    Ok(None) => {}
                    Ok(Some(next)) => {
                        if let Some(bytes) = r.records.as_ref().map(|b| b.len()) {
                            if p.partition.settings().follower_throttled.contains(key.1) {
                                self.quotas.follower.record(bytes);
                            }
                        }
                        self.lag
                            .insert(key.clone(), (r.high_watermark - next).max(0));
                        p.partition.update_follower_high_watermark(r.high_watermark);
                        self.update(key, p.leader_epoch, |e| {
                            if e.state == FetchState::Fetching(offset) {
                                e.state = FetchState::Fetching(next);
                            }
                        });
                    }
                    Err(e) => {
                        tracing::error!(topic = %key.0, partition = key.1, error = %e, "appending replicated records failed");
                        self.delay(key, p.leader_epoch);
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends one partition's records; returns the next fetch offset (in
    /// durable mode, only what is fsynced), `None` for a stale answer that
    /// was dropped.
    async fn process(
        &self,
        key: &PartitionKey,
        p: &FetchPartition,
        offset: i64,
        records: &[u8],
    ) -> Result<Option<i64>, PartitionError> {
        {
            // Kafka's fetcher processes an answer under its partition-map
            // lock, only for partitions still fetching at the request's
            // epoch and offset: an answer that arrives after the partition
            // moved to another leader (or was truncated) is dropped, never
            // appended (it may hold the old leader's uncommitted tail).
            let current = self.handle.lock();
            let still = current.get(key).is_some_and(|e| {
                Arc::ptr_eq(&e.partition, &p.partition)
                    && e.leader_epoch == p.leader_epoch
                    && e.state == FetchState::Fetching(offset)
            });
            if !still || p.partition.is_leader() || p.partition.leader_epoch() != p.leader_epoch {
                return Ok(None);
            }
            if records.is_empty() {
                return Ok(Some(offset));
            }
            p.partition.append_as_follower(records)?;
        }
        if p.partition.settings().durable {
            p.partition.flush_for_fetch().await.map(Some)
        } else {
            p.partition
                .log_end_offset()
                .map(Some)
                .ok_or(PartitionError::Closed)
        }
    }

    /// Kafka's `handleOutOfRangeError`: a leader behind us (unclean
    /// election) truncates us to its end; a leader whose log starts after
    /// our end restarts us at its start.
    async fn handle_out_of_range(
        &mut self,
        key: &PartitionKey,
        p: &FetchPartition,
        offset: i64,
    ) -> anyhow::Result<()> {
        let leader_end = self.list_offset(key, p, -1).await?;
        let local_end = p.partition.log_end_offset().unwrap_or(offset);
        let next = if leader_end < local_end {
            p.partition
                .truncate_to(leader_end)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            leader_end
        } else {
            let leader_start = self.list_offset(key, p, -2).await?;
            if leader_start > local_end {
                p.partition
                    .truncate_fully_and_start_at(leader_start)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                leader_start
            } else {
                local_end
            }
        };
        tracing::info!(topic = %key.0, partition = key.1, offset = next, leader_end, "fetch offset out of range; resuming");
        self.update(key, p.leader_epoch, |e| {
            e.state = FetchState::Fetching(next)
        });
        Ok(())
    }

    async fn list_offset(
        &mut self,
        key: &PartitionKey,
        p: &FetchPartition,
        timestamp: i64,
    ) -> anyhow::Result<i64> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(key.0.to_string())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(key.1)
                    .with_current_leader_epoch(p.leader_epoch)
                    .with_timestamp(timestamp)])]);
        let resp = self.client.send(&req, version(ApiKey::ListOffsets)).await?;
        let r = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| anyhow::anyhow!("ListOffsets answered no partition"))?;
        anyhow::ensure!(
            r.error_code == 0,
            "ListOffsets answered error code {}",
            r.error_code
        );
        Ok(r.offset)
    }
}

/// Kafka's `getOffsetTruncationState`: where to cut the local log from the
/// leader's answer for our latest epoch, and whether truncation is done
/// (false: our epoch for the leader's answer differs, ask again).
fn truncation_target(
    partition: &Partition,
    leader_epoch: i32,
    leader_end_offset: i64,
) -> anyhow::Result<(i64, bool)> {
    let local_end = partition
        .log_end_offset()
        .ok_or_else(|| anyhow::anyhow!("partition closed"))?;
    if leader_end_offset == UNDEFINED {
        // The leader knows no epoch at or below ours: keep what the high
        // watermark covers.
        return Ok((partition.state().high_watermark.min(local_end), true));
    }
    if i64::from(leader_epoch) == UNDEFINED {
        return Ok((leader_end_offset.min(local_end), true));
    }
    let ours = partition
        .last_offset_for_leader_epoch(-1, leader_epoch, false)
        .map_err(|e| anyhow::anyhow!("local epoch lookup: {e:?}"))?;
    Ok(match ours {
        Some((epoch, end)) if epoch == leader_epoch => (leader_end_offset.min(end), true),
        Some((_, end)) => (end.min(local_end), false),
        None => (leader_end_offset.min(local_end), true),
    })
}
