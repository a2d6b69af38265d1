//! A cluster broker's group coordinator follows the leadership of
//! `__consumer_offsets` (Kafka's `GroupCoordinator.onElection` /
//! `onResignation`, called by the `BrokerMetadataPublisher`): it
//! coordinates exactly the groups of the partitions it leads. On election
//! a partition loads (its groups answer COORDINATOR_LOAD_IN_PROGRESS until
//! then): the coordinator waits until the new leader's high watermark
//! covers its log end, i.e. until everything in its log is committed to
//! the ISR, then replays the partition. On resignation its groups are
//! dropped and their pending JoinGroup/SyncGroup answered NOT_COORDINATOR.
//! A standalone broker never comes here: it loads everything at start.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use tokio::sync::{watch, Notify};

use super::api::{JoinOutcome, SyncOutcome};
use super::coordinator::{GroupConfig, GroupCoordinator, GroupCoordinatorShard, PartitionLoad};
use super::loader::GroupLoader;
use super::record_serde::OFFSETS_TOPIC;
use super::writer::CoordinatorWriter;
use crate::broker::ReplicaManager;
use crate::coordinator::loader::committed_leader;
use crate::util::now_ms;

impl GroupCoordinator {
    /// A cluster broker's coordinator: nothing loaded, no group
    /// coordinated until the metadata image makes this broker a leader of
    /// `__consumer_offsets` partitions ([`Self::on_metadata`]).
    pub fn for_cluster(
        config: GroupConfig,
        replicas: Arc<ReplicaManager>,
        default_partitions: i32,
    ) -> Arc<GroupCoordinator> {
        Arc::new(GroupCoordinator {
            shard: Mutex::new(GroupCoordinatorShard {
                leadership: Some(BTreeMap::new()),
                ..GroupCoordinatorShard::default()
            }),
            config,
            writer: CoordinatorWriter::in_cluster(replicas, OFFSETS_TOPIC, default_partitions),
            timer_wake: Notify::new(),
            stopping: watch::channel(false).0,
        })
    }

    /// The metadata image changed: `num_partitions` is the topic's
    /// partition count (0 when it does not exist yet) and `led` the
    /// partitions this broker leads with their leader epochs. Partitions
    /// no longer led resign; newly led ones start loading. Must run inside
    /// the tokio runtime. A standalone coordinator ignores it.
    pub fn on_metadata(self: &Arc<Self>, num_partitions: i32, led: BTreeMap<i32, i32>) {
        self.writer.set_num_partitions(num_partitions);
        let mut elected = Vec::new();
        {
            let mut shard = self.lock();
            let Some(current) = shard.leadership.as_ref() else {
                return;
            };
            let resigned: Vec<i32> = current
                .keys()
                .filter(|p| !led.contains_key(p))
                .copied()
                .collect();
            for p in resigned {
                self.unload(&mut shard, p);
            }
            let Some(current) = shard.leadership.as_mut() else {
                return;
            };
            for (&p, &epoch) in &led {
                match current.get_mut(&p) {
                    // Still the leader: the loaded state stays valid.
                    Some(l) => l.epoch = l.epoch.max(epoch),
                    None => {
                        current.insert(
                            p,
                            PartitionLoad {
                                epoch,
                                loaded: false,
                            },
                        );
                        elected.push((p, epoch));
                    }
                }
            }
        }
        for (p, epoch) in elected {
            tracing::info!(
                partition = p,
                leader_epoch = epoch,
                "group coordinator elected for {OFFSETS_TOPIC}-{p}; loading"
            );
            tokio::spawn(self.clone().load_partition(p, epoch));
        }
    }

    /// Whether partition `p` is still loading for the election at `epoch`.
    fn still_loading(&self, p: i32, epoch: i32) -> bool {
        self.lock()
            .leadership
            .as_ref()
            .and_then(|l| l.get(&p))
            .is_some_and(|l| !l.loaded && l.epoch == epoch)
    }

    fn stopped(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Loads partition `p` for the election at `epoch` and starts serving
    /// its groups, unless the election is over first.
    async fn load_partition(self: Arc<Self>, p: i32, epoch: i32) {
        let started = std::time::Instant::now();
        let Some(partition) = committed_leader(
            OFFSETS_TOPIC,
            p,
            epoch,
            || self.writer.partition(p),
            || !self.stopped() && self.still_loading(p, epoch),
        )
        .await
        else {
            return;
        };
        let num_partitions = self.writer.num_partitions();
        let replay = partition.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            GroupLoader::load_partition(&replay, num_partitions)
        })
        .await;
        let loaded = match loaded {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::error!(partition = p, error = %format!("{e:#}"), "loading {OFFSETS_TOPIC} failed; its groups stay unavailable");
                return;
            }
            Err(e) => {
                tracing::error!(partition = p, error = %e, "loading {OFFSETS_TOPIC} failed; its groups stay unavailable");
                return;
            }
        };
        let records = loaded.records;
        {
            let mut shard = self.lock();
            let current = shard.leadership.as_ref().and_then(|l| l.get(&p)).copied();
            if current
                != Some(PartitionLoad {
                    epoch,
                    loaded: false,
                })
            {
                return;
            }
            let GroupCoordinatorShard {
                groups,
                offsets,
                leadership,
            } = &mut *shard;
            let open_txns = loaded.merge_into(
                groups,
                offsets,
                now_ms(),
                self.config.consumer_session_timeout_ms,
                self.config.streams_session_timeout_ms,
            );
            if let Some(l) = leadership.as_mut().and_then(|l| l.get_mut(&p)) {
                l.loaded = true;
            }
            tracing::info!(
                partition = p,
                leader_epoch = epoch,
                records,
                groups_with_open_txn_offsets = open_txns,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "loaded {OFFSETS_TOPIC}-{p}"
            );
        }
        // Loaded members' session timers are due.
        self.timer_wake.notify_one();
    }

    /// Resigns partition `p`: its groups and offsets are dropped from
    /// memory (the log keeps them for the next leader) and their waiting
    /// JoinGroup/SyncGroup answered NOT_COORDINATOR.
    fn unload(&self, shard: &mut GroupCoordinatorShard, p: i32) {
        if let Some(l) = shard.leadership.as_mut() {
            l.remove(&p);
        }
        let ids: Vec<String> = shard
            .groups
            .groups
            .keys()
            .chain(shard.groups.consumer_groups.keys())
            .chain(shard.groups.streams_groups.keys())
            .chain(shard.offsets.group_ids())
            .filter(|g| self.partition_for(g) == p)
            .cloned()
            .collect();
        let now = now_ms();
        let mut dropped = 0usize;
        for id in ids {
            if let Some(g) = shard.groups.groups.get_mut(&id) {
                let mut timers = Vec::new();
                for m in g.members.values_mut() {
                    if let Some(tx) = m.join_waiter.take() {
                        let _ = tx.send(JoinOutcome::error(
                            ResponseError::NotCoordinator,
                            &m.member_id,
                        ));
                    }
                    if let Some(tx) = m.sync_waiter.take() {
                        let _ = tx.send(SyncOutcome::error(ResponseError::NotCoordinator));
                    }
                    timers.push(m.heartbeat_timer.take());
                }
                for t in timers {
                    shard.groups.timers.cancel(t);
                }
                dropped += 1;
            }
            dropped += usize::from(shard.groups.consumer_groups.contains_key(&id));
            dropped += usize::from(shard.groups.streams_groups.contains_key(&id));
            shard.groups.remove_group(&id, now);
            shard.offsets.remove_group(&id);
        }
        tracing::info!(
            partition = p,
            groups = dropped,
            "group coordinator resigned {OFFSETS_TOPIC}-{p}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::coordinator::group::api::{Answer, CommitPartition, Committer, JoinParams};
    use crate::coordinator::group::coordinator::offsets_topic_spec;
    use std::time::Duration;

    const NOT_COORDINATOR: i16 = 16;
    const LOAD_IN_PROGRESS: i16 = 14;

    fn open(dir: &std::path::Path) -> Arc<GroupCoordinator> {
        let (config, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.display().to_string()),
            ("offsets.topic.num.partitions".into(), "3".into()),
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ])
        .unwrap();
        let config = Arc::new(config);
        let (_trigger, signal) = crate::util::shutdown::channel();
        std::mem::forget(_trigger);
        let replicas = ReplicaManager::open(config.clone(), false, signal).unwrap();
        let (partitions, configs) = offsets_topic_spec(&config);
        replicas
            .create_topic(OFFSETS_TOPIC, partitions, 1, configs)
            .unwrap();
        GroupCoordinator::for_cluster(GroupConfig::from_broker(&config), replicas, partitions)
    }

    fn commit(
        c: &GroupCoordinator,
        offset: i64,
    ) -> Result<Option<super::super::writer::DurableWait>, i16> {
        let parts = [CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: None,
        }];
        let committer = Committer {
            group_id: "g",
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
        };
        c.commit_offsets(committer, -1, 2, &parts)
            .map(|(codes, wait)| {
                assert_eq!(codes, vec![0]);
                wait
            })
    }

    fn fetched(c: &GroupCoordinator) -> Result<i64, i16> {
        c.fetch_offsets("g", Some(vec![("t".into(), vec![0])]), false)
            .map(|out| out[0].1[0].offset)
    }

    async fn until_loaded(c: &GroupCoordinator) {
        for _ in 0..200 {
            if fetched(c) != Err(LOAD_IN_PROGRESS) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the partition never loaded");
    }

    #[tokio::test]
    async fn groups_follow_the_leadership_of_their_partition() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let p = c.partition_for("g");
        let all: BTreeMap<i32, i32> = (0..3).map(|p| (p, 0)).collect();
        // Nothing led: not the coordinator of any group.
        assert_eq!(fetched(&c), Err(NOT_COORDINATOR));
        assert!(commit(&c, 1).is_err());

        c.on_metadata(3, all.clone());
        until_loaded(&c).await;
        assert_eq!(fetched(&c), Ok(-1));
        let wait = commit(&c, 42).unwrap().unwrap();
        wait.wait(5_000).await.unwrap();
        assert_eq!(fetched(&c), Ok(42));

        // A member waiting in JoinGroup when the partition resigns is told
        // NOT_COORDINATOR (the initial rebalance delay keeps it waiting).
        let join = c.join_group(
            JoinParams {
                group_id: "g".into(),
                member_id: String::new(),
                group_instance_id: None,
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), bytes::Bytes::new())],
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                require_known_member_id: false,
            },
            &crate::coordinator::group::consumer::NoTopics,
        );
        let Answer::Later(rx) = join else {
            panic!("the join answered at once");
        };
        let mut others = all.clone();
        others.remove(&p);
        c.on_metadata(3, others.clone());
        assert_eq!(rx.await.unwrap().error, NOT_COORDINATOR);
        assert_eq!(fetched(&c), Err(NOT_COORDINATOR));
        assert!(c.describe_group("g").is_err());

        // Elected again (the local replica's epoch stands in for the new
        // one): the log brings the offsets back.
        others.insert(p, 0);
        c.on_metadata(3, others);
        until_loaded(&c).await;
        assert_eq!(fetched(&c), Ok(42));
    }
}
