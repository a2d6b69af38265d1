//! How the group coordinator makes its state durable (Kafka's
//! `PartitionWriter`): records go to the group's `__consumer_offsets`
//! partition as one uncompressed batch, and an answer that depends on them
//! waits for that partition's high watermark (in durable mode, the fsync;
//! on a replicated leader, the ISR: Kafka's coordinators write with
//! acks=all). A standalone broker holds its one `__consumer_offsets` (from
//! the start when it exists then, else from the FindCoordinator that
//! created it); a cluster broker looks the topic up in its `ReplicaManager`
//! on each write, as the local log appears (or is replaced) when the image
//! says so.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::record_serde::{self, FieldTooLong};
use crate::broker::partition::Partition;
use crate::broker::topics::Topic;
use crate::broker::ReplicaManager;

/// Record to append: key, value (None = tombstone).
pub type CoordRecord = (Vec<u8>, Option<Vec<u8>>);

/// A record from its serialized key and value (None: a tombstone). A field
/// too long to serialize fails the write with UNKNOWN_SERVER_ERROR, as
/// Kafka's serialization exception does.
pub fn record(
    key: Result<Vec<u8>, FieldTooLong>,
    value: Option<Result<Vec<u8>, FieldTooLong>>,
) -> Result<CoordRecord, ResponseError> {
    let fail = |e: FieldTooLong| {
        tracing::warn!(error = %e, "a __consumer_offsets record cannot be serialized");
        ResponseError::UnknownServerError
    };
    Ok((key.map_err(fail)?, value.transpose().map_err(fail)?))
}

/// A write the answer must not precede: the high watermark of `partition`
/// has to reach `end_offset` (durable mode: fsynced).
#[derive(Clone)]
pub struct DurableWait {
    partition: Arc<Partition>,
    end_offset: i64,
    /// The partition's leadership when appended (`Partition::wait_for_ack`).
    leadership: u64,
}

impl DurableWait {
    /// Ok, or the error code a group response carries (Kafka's mapping of
    /// append errors to coordinator errors).
    pub async fn wait(&self, timeout_ms: i64) -> Result<(), i16> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(1) as u64);
        // acks=all: a replicated leader waits for the ISR and answers
        // NOT_LEADER_OR_FOLLOWER once it lost leadership; a single replica
        // waits for its high watermark as it always has.
        self.partition
            .wait_for_ack(self.end_offset, self.leadership, -1, deadline)
            .await
            .map_err(|e| map_append_error(e, false))
    }
}

/// Kafka's mapping of a failed `__consumer_offsets` append to what the
/// group client sees.
pub fn map_append_error(e: ResponseError, commit: bool) -> i16 {
    use ResponseError as E;
    let mapped = match e {
        E::UnknownTopicOrPartition
        | E::NotEnoughReplicas
        | E::NotEnoughReplicasAfterAppend
        | E::RequestTimedOut => E::CoordinatorNotAvailable,
        E::NotLeaderOrFollower | E::KafkaStorageError => E::NotCoordinator,
        E::MessageTooLarge | E::RecordListTooLarge | E::InvalidFetchSize => {
            if commit {
                E::InvalidCommitOffsetSize
            } else {
                E::UnknownServerError
            }
        }
        other => other,
    };
    mapped.code()
}

/// Where the internal topic is found.
enum TopicSource {
    /// A standalone broker's own topic: set at start-up when it exists,
    /// else once it is created on first need (Kafka creates the internal
    /// topics lazily too).
    Local(OnceLock<Arc<Topic>>),
    /// A cluster broker's local replica of the topic, by name.
    Replicas(Arc<ReplicaManager>, &'static str),
}

/// Appends to `__consumer_offsets`.
pub struct CoordinatorWriter {
    source: TopicSource,
    /// Cluster mode: the topic's partition count in the metadata image
    /// (Kafka's `numPartitions`); a local log may hold fewer partitions.
    num_partitions: AtomicI32,
}

impl CoordinatorWriter {
    pub fn new(topic: Arc<Topic>) -> CoordinatorWriter {
        let n = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        CoordinatorWriter {
            source: TopicSource::Local(OnceLock::from(topic)),
            num_partitions: AtomicI32::new(n),
        }
    }

    /// A standalone broker's writer before `__consumer_offsets` exists:
    /// `num_partitions` is the count it will be created with (groups map
    /// to partitions already, e.g. for AddOffsetsToTxn).
    pub fn standalone_without_topic(num_partitions: i32) -> CoordinatorWriter {
        CoordinatorWriter {
            source: TopicSource::Local(OnceLock::new()),
            num_partitions: AtomicI32::new(num_partitions.max(1)),
        }
    }

    /// Standalone: `topic` becomes the log; false when there is one
    /// already (or on a cluster broker's writer).
    pub fn set_local_topic(&self, topic: Arc<Topic>) -> bool {
        let TopicSource::Local(cell) = &self.source else {
            return false;
        };
        let n = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if cell.set(topic).is_err() {
            return false;
        }
        self.num_partitions.store(n, Ordering::Release);
        true
    }

    /// False only on a standalone broker before `__consumer_offsets`
    /// exists.
    pub fn has_topic(&self) -> bool {
        match &self.source {
            TopicSource::Local(cell) => cell.get().is_some(),
            TopicSource::Replicas(..) => true,
        }
    }

    /// A cluster broker's writer: `name` is looked up in `replicas` on
    /// each write; `num_partitions` until the image says otherwise.
    pub fn in_cluster(
        replicas: Arc<ReplicaManager>,
        name: &'static str,
        num_partitions: i32,
    ) -> CoordinatorWriter {
        CoordinatorWriter {
            source: TopicSource::Replicas(replicas, name),
            num_partitions: AtomicI32::new(num_partitions.max(1)),
        }
    }

    pub fn topic(&self) -> Option<Arc<Topic>> {
        match &self.source {
            TopicSource::Local(cell) => cell.get().cloned(),
            TopicSource::Replicas(r, name) => r.topics.get(name),
        }
    }

    /// The local replica of partition `index`, if this broker hosts one.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.topic().and_then(|t| t.partition(index).cloned())
    }

    pub fn num_partitions(&self) -> i32 {
        self.num_partitions.load(Ordering::Acquire)
    }

    /// Cluster mode: the partition count the metadata image has.
    pub fn set_num_partitions(&self, n: i32) {
        if n > 0 && matches!(self.source, TopicSource::Replicas(..)) {
            self.num_partitions.store(n, Ordering::Release);
        }
    }

    /// The `__consumer_offsets` partition that holds `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        record_serde::partition_for(group_id, self.num_partitions())
    }

    /// Appends `records` for `group_id` to its partition as one uncompressed
    /// batch. The caller holds the coordinator's lock, which orders the
    /// group's records.
    pub fn append(
        &self,
        group_id: &str,
        records: &[CoordRecord],
    ) -> Result<DurableWait, ResponseError> {
        self.append_batch(group_id, records, None).map(|(w, _)| w)
    }

    /// Like [`Self::append`]; `txn` = Some((producer id, epoch)) writes a
    /// transactional batch without sequence numbers, as Kafka's group
    /// coordinator writes TxnOffsetCommit records. Also returns the offset
    /// of the first record.
    pub fn append_batch(
        &self,
        group_id: &str,
        records: &[CoordRecord],
        txn: Option<(i64, i16)>,
    ) -> Result<(DurableWait, i64), ResponseError> {
        let partition = self
            .partition(self.partition_for(group_id))
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        // Kafka's coordinators append with acks=all, which a leader with
        // fewer in-sync replicas than min.insync.replicas refuses before
        // writing (a single replica keeps the standalone behaviour).
        if partition.is_replicated()
            && partition.below_min_isr(partition.settings().min_insync_replicas)
        {
            tracing::debug!(group = %group_id, "fewer in-sync replicas than min.insync.replicas");
            return Err(ResponseError::NotEnoughReplicas);
        }
        let out = partition.append_records(records, txn).inspect_err(|e| {
            tracing::warn!(group = %group_id, error = %e, "appending group records failed");
        })?;
        if out.duplicate {
            // The partition's producer state took the batch for a retry of
            // an earlier one and appended nothing: the records are not in
            // the log, so the write failed.
            tracing::warn!(group = %group_id, producer_id = ?txn.map(|t| t.0), "transactional offset commit taken for a duplicate batch; nothing was written");
            return Err(ResponseError::UnknownServerError);
        }
        Ok((
            DurableWait {
                partition,
                end_offset: out.last_offset + 1,
                leadership: out.leadership,
            },
            out.base_offset,
        ))
    }
}
