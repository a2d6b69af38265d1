//! A standalone broker's group coordinator and its `__consumer_offsets`:
//! the topic is created on first need, as Kafka creates it (the first
//! FindCoordinator for a group, or Metadata auto-creating the name), not at
//! start. Until then the coordinator owns no partition (NOT_COORDINATOR,
//! as Kafka's runtime answers for a partition without a shard); the topic
//! is then handed over, replayed and published. A restart with the topic
//! on disk loads it at start instead (`GroupCoordinator::load`). A cluster
//! broker never comes here: it follows leadership (`leadership`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use super::coordinator::{GroupConfig, GroupCoordinator, GroupCoordinatorShard};
use super::loader::GroupLoader;
use super::writer::CoordinatorWriter;
use crate::broker::topics::Topic;
use crate::config::BrokerConfig;
use crate::util::now_ms;

impl GroupCoordinator {
    /// A standalone broker's coordinator before `__consumer_offsets`
    /// exists: it coordinates no group (NOT_COORDINATOR, which sends
    /// clients to FindCoordinator, whose first group key creates the topic
    /// and hands it over with [`Self::adopt_topic`]). `num_partitions` is
    /// the count the topic will be created with.
    pub fn standalone_without_topic(config: GroupConfig, num_partitions: i32) -> Arc<Self> {
        Arc::new(GroupCoordinator {
            shard: Mutex::new(GroupCoordinatorShard::default()),
            config,
            writer: CoordinatorWriter::standalone_without_topic(num_partitions),
            timer_wake: Notify::new(),
            stopping: watch::channel(false).0,
        })
    }

    /// Whether this broker has its `__consumer_offsets` (always in a
    /// cluster, where each partition's leadership decides instead).
    pub fn has_topic(&self) -> bool {
        self.writer.has_topic()
    }

    /// Standalone: `offsets_topic` was created on first need; its groups
    /// are loaded (none, unless something wrote it before it was handed
    /// over) and from now on this broker coordinates every group. A no-op
    /// when the coordinator has its topic already.
    pub fn adopt_topic(&self, offsets_topic: Arc<Topic>) -> anyhow::Result<()> {
        let mut shard = self.lock();
        if self.writer.has_topic() {
            return Ok(());
        }
        let loaded = GroupLoader::load(&offsets_topic)?;
        let records = loaded.records;
        let GroupCoordinatorShard {
            groups, offsets, ..
        } = &mut *shard;
        loaded.merge_into(
            groups,
            offsets,
            now_ms(),
            self.config.consumer_session_timeout_ms,
            self.config.streams_session_timeout_ms,
        );
        self.writer.set_local_topic(offsets_topic);
        tracing::info!(
            records,
            "group coordinator took over the new __consumer_offsets"
        );
        drop(shard);
        self.timer_wake.notify_one();
        Ok(())
    }
}

/// How many partitions `__consumer_offsets` gets, and its configs (Kafka's
/// internal topic configs), when it has to be created.
pub fn offsets_topic_spec(config: &BrokerConfig) -> (i32, BTreeMap<String, String>) {
    let partitions = i32::try_from(config.int("offsets.topic.num.partitions")).unwrap_or(50);
    let segment_bytes = config.int("offsets.topic.segment.bytes").to_string();
    let configs = [
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), segment_bytes),
        ("compression.type".to_string(), "producer".to_string()),
    ]
    .into_iter()
    .collect();
    (partitions, configs)
}
