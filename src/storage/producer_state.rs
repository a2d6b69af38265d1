//! ProducerStateManager: per-partition state of idempotent producers, as in
//! Kafka. For each producer id it keeps the epoch and the metadata of the
//! last [`NUM_BATCHES_TO_RETAIN`] batches appended, which is what lets a
//! retried batch be recognised as a duplicate instead of appended twice.
//!
//! The state survives restarts through `<offset>.snapshot` files in Kafka's
//! format (see [`snapshot`]) in the partition directory, taken at segment
//! roll and at clean shutdown, plus a scan of the batch headers the log holds
//! after the snapshot's offset. As in Kafka a snapshot keeps only each
//! producer's last batch, so after a restart the older of its last five
//! batches are known only if that scan meets them. Callers validate and
//! update the state under the partition's single-writer lock, so two
//! in-flight retries of one batch can never both append.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::record::batch::BatchHeader;
use crate::record::control::EndTransactionMarker;
use crate::record::RECORD_BATCH_OVERHEAD;
use crate::storage::error::StorageError;
use crate::storage::log::Log;
use crate::storage::txn_index::AbortedTxn;

pub mod snapshot;

use snapshot::{ReadError, SnapshotFormat};

/// Kafka keeps the metadata of this many recent batches per producer.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Snapshots kept on disk; older ones are removed after a new one lands.
const SNAPSHOTS_TO_KEEP: usize = 2;
const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Bytes read at a time while rebuilding state from the log.
const SCAN_CHUNK: usize = 1 << 20;
/// Bytes read at a time while replaying batch headers: several small
/// batches' headers per read, a small fraction of a large batch.
const HEADER_WINDOW: usize = 4096;

pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub epoch: i16,
    /// Oldest first; at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> Self {
        ProducerStateEntry {
            producer_id,
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .copied()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    }

    fn add_batch(&mut self, epoch: i16, meta: BatchMetadata) {
        if epoch != self.epoch {
            // A new epoch starts the sequence history afresh.
            self.batches.clear();
            self.epoch = epoch;
        }
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
        self.last_timestamp = meta.timestamp;
    }
}

/// Why a producer's batch was refused (Kafka's codes in parentheses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerError {
    /// INVALID_PRODUCER_EPOCH (47): an older epoch than the partition knows.
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// INVALID_TXN_STATE (48): a non-transactional write while the
    /// producer has a transaction open on this partition.
    InvalidTxnState {
        producer_id: i64,
        txn_first_offset: i64,
    },
    /// INVALID_TXN_STATE (48): the first transactional batch of a
    /// transaction on this partition whose verification with the
    /// transaction coordinator is missing or stale (Kafka's
    /// `batchMissingRequiredVerification`).
    UnverifiedTransaction { producer_id: i64 },
    /// TRANSACTION_COORDINATOR_FENCED (52): a marker from a transaction
    /// coordinator older than one whose marker this partition has written
    /// for the producer (Kafka's `checkCoordinatorEpoch`).
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current: i32,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrderSequence {
        producer_id: i64,
        first_seq: i32,
        last_seq: i32,
        epoch: i16,
        current_epoch: i16,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45): a batch of a producer with a
    /// KIP-890 verification in progress here whose first sequence is above
    /// the lowest one that verification has seen: that lower batch (refused
    /// by its verification, say) must land first, or its retry would be out
    /// of order forever.
    AheadOfVerifiedSequence {
        producer_id: i64,
        first_seq: i32,
        lowest_seq: i32,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45): the first batch here of a
    /// transaction version 2 producer with no batches here does not start
    /// at sequence 0.
    FirstSequenceNotZero { producer_id: i64, first_seq: i32 },
}

impl ProducerError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ProducerError::InvalidProducerEpoch { .. } => 47,
            ProducerError::OutOfOrderSequence { .. }
            | ProducerError::AheadOfVerifiedSequence { .. }
            | ProducerError::FirstSequenceNotZero { .. } => 45,
            ProducerError::CoordinatorFenced { .. } => 52,
            ProducerError::InvalidTxnState { .. } | ProducerError::UnverifiedTransaction { .. } => {
                48
            }
        }
    }
}

impl std::fmt::Display for ProducerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerError::InvalidProducerEpoch { producer_id, epoch, current } => write!(
                f,
                "epoch of producer {producer_id} is {epoch}, which is smaller than the last seen epoch {current}"
            ),
            ProducerError::InvalidTxnState { producer_id, txn_first_offset } => write!(
                f,
                "expected a transactional write from producer {producer_id}, whose transaction began at offset {txn_first_offset}"
            ),
            ProducerError::CoordinatorFenced { producer_id, coordinator_epoch, current } => write!(
                f,
                "marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, older than the last seen {current}"
            ),
            ProducerError::UnverifiedTransaction { producer_id } => write!(
                f,
                "record of producer {producer_id} was not part of an ongoing transaction"
            ),
            ProducerError::OutOfOrderSequence { producer_id, first_seq, last_seq, epoch, current_epoch } => write!(
                f,
                "out of order sequence number for producer {producer_id}: {first_seq} (incoming seq. number) at epoch {epoch}, last sequence {last_seq} at epoch {current_epoch}"
            ),
            ProducerError::AheadOfVerifiedSequence { producer_id, first_seq, lowest_seq } => write!(
                f,
                "out of order sequence number for producer {producer_id}: {first_seq} (incoming seq. number), {lowest_seq} (earliest sequence its transaction verification has seen)"
            ),
            ProducerError::FirstSequenceNotZero { producer_id, first_seq } => write!(
                f,
                "invalid sequence number for producer {producer_id}: {first_seq} (incoming seq. number); a transaction version 2 producer with no state here must start at 0"
            ),
        }
    }
}

impl std::error::Error for ProducerError {}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Not an idempotent batch, or a valid next batch: append it.
    Append,
    /// The same batch was appended before: answer with its original offsets.
    Duplicate(BatchMetadata),
}

/// Sequence numbers wrap from Int32.MAX to 0.
fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// Last sequence of a batch, wrapping as Kafka's `incrementSequence` does.
pub fn last_sequence(h: &BatchHeader) -> i32 {
    if h.base_sequence == NO_SEQUENCE {
        return NO_SEQUENCE;
    }
    let inc = h.last_offset_delta.max(0);
    if h.base_sequence > i32::MAX - inc {
        inc - (i32::MAX - h.base_sequence) - 1
    } else {
        h.base_sequence + inc
    }
}

pub struct ProducerStateManager {
    dir: PathBuf,
    producers: BTreeMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset → producer id. The smallest key is
    /// the first unstable offset, which bounds the last stable offset.
    ongoing: BTreeMap<i64, i64>,
    /// ABORT markers met while replaying the log at start-up, for the
    /// partition to (re-)enter into its transaction index.
    replayed_aborts: Vec<AbortedTxn>,
    expiration_ms: i64,
    last_expiry_check_ms: i64,
    /// KIP-890 verifications started on this partition (Kafka's
    /// `VerificationStateEntry`s), by producer id: in memory only, cleared
    /// by the producer's next transactional batch or marker (see
    /// [`Self::apply_control`]), bounded by [`MAX_VERIFICATION_STATES`] and
    /// `producer.id.expiration.ms`. While one exists the producer's batches
    /// are held to its lowest sequence ([`Self::check_verified`]).
    verification_states: BTreeMap<i64, VerificationStateEntry>,
    next_verification_guard: u64,
}

/// Verifications in progress one partition keeps at most; past it a new
/// one is refused (retriably) until older ones finish or expire.
pub const MAX_VERIFICATION_STATES: usize = 10_000;

/// A verification of a producer's transaction with its coordinator, begun
/// before the first transactional batch of the transaction is appended
/// here. Its guard is unique on the partition, so a verification answered
/// after the transaction ended (a marker cleared the entry) or for an
/// older one cannot admit the batch (Kafka's ABA protection).
///
/// It also keeps the lowest first sequence of the batches that began or
/// joined it (at the highest epoch seen), and the producer's batches above
/// that sequence are refused until the entry goes: when the lowest batch
/// fails verification (a retriable error) and a later in-flight batch of
/// the producer passes, appending the later one would leave the retried
/// lower batch out of order forever (Kafka's `VerificationStateEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationStateEntry {
    pub guard: u64,
    pub epoch: i16,
    pub timestamp: i64,
    pub lowest_sequence: i32,
    /// Begun by a transaction version 2 request (Produce v12+, Kafka's
    /// `supportsEpochBump`); fixed when the entry is created.
    pub supports_epoch_bump: bool,
}

impl VerificationStateEntry {
    /// Kafka's `maybeUpdateLowestSequenceAndEpoch`: a lower sequence at
    /// the same epoch lowers the mark; a higher epoch restarts the
    /// sequences, so its sequence replaces the mark whatever it is.
    fn note_batch(&mut self, sequence: i32, epoch: i16) {
        if epoch == self.epoch && sequence < self.lowest_sequence {
            self.lowest_sequence = sequence;
        }
        if epoch > self.epoch {
            self.epoch = epoch;
            self.lowest_sequence = sequence;
        }
    }
}

/// What an append of a transactional batch presents: `Sentinel` when the
/// transaction was already ongoing here (nothing was verified), or the
/// guard of the verification the coordinator confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationGuard {
    Sentinel,
    Guard(u64),
}

impl ProducerStateManager {
    /// Loads the newest usable snapshot at or below the log end and replays
    /// the log's batch headers after it.
    pub fn load(
        dir: &Path,
        log: &Log,
        expiration_ms: i64,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let mut mgr = ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: BTreeMap::new(),
            ongoing: BTreeMap::new(),
            replayed_aborts: Vec::new(),
            expiration_ms,
            last_expiry_check_ms: now_ms,
            verification_states: BTreeMap::new(),
            next_verification_guard: 1,
        };
        let log_end = log.log_end_offset();
        let mut snapshots = mgr.list_snapshots()?;
        // Snapshots past the log end describe data recovery truncated away.
        for (offset, path) in snapshots.iter().filter(|(o, _)| *o > log_end) {
            tracing::warn!(path = %path.display(), offset, log_end, "removing snapshot beyond the log end");
            let _ = fs::remove_file(path);
        }
        snapshots.retain(|(o, _)| *o <= log_end);
        let mut replay_from = log.log_start_offset();
        // Newest first; a corrupt snapshot is deleted and the next older one
        // tried, down to none (a replay of the whole log), as Kafka's
        // loadFromSnapshot does with a CorruptSnapshotException.
        while let Some((offset, path)) = snapshots.pop() {
            match snapshot::read_snapshot(&path) {
                Ok(loaded) => {
                    if loaded.format == SnapshotFormat::LegacyKastle {
                        tracing::info!(path = %path.display(), "loading a producer snapshot in kastle's former format (KPS1); the next snapshot is written in Kafka's");
                    }
                    // Kafka drops the producers that expired while it was down
                    // as it loads them.
                    mgr.producers = loaded
                        .entries
                        .into_iter()
                        .filter(|e| !is_expired(e, now_ms, expiration_ms))
                        .map(|e| (e.producer_id, e))
                        .collect();
                    mgr.ongoing = mgr
                        .producers
                        .values()
                        .filter_map(|e| e.current_txn_first_offset.map(|o| (o, e.producer_id)))
                        .collect();
                    replay_from = offset.max(log.log_start_offset());
                    break;
                }
                Err(ReadError::Corrupt(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "failed to load producer snapshot: deleting it, producer state is rebuilt from an older snapshot or the log");
                    if let Err(e) = fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "could not delete a corrupt producer snapshot");
                    }
                }
                Err(ReadError::Io(e)) => {
                    return Err(StorageError::io(&path, "read producer snapshot", e))
                }
            }
        }
        mgr.replay(log, replay_from)?;
        mgr.remove_expired(now_ms);
        Ok(mgr)
    }

    /// Rebuilds state from the batch headers in `[from, log end)`. Only the
    /// headers are read (Kafka's loader reads batch headers too), a small
    /// window at a time, plus the body of each transaction marker: after a
    /// crash with large segments this replays whole gigabytes of log.
    fn replay(&mut self, log: &Log, from: i64) -> Result<(), StorageError> {
        let end = log.log_end_offset();
        let mut offset = from;
        let mut window = vec![0u8; HEADER_WINDOW];
        let dir = self.dir.clone();
        let read_err = |e| StorageError::io(&dir, "read for producer state", e);
        while offset < end {
            let plan = log.read_plan(offset, SCAN_CHUNK, true, i64::MAX)?;
            if plan.is_empty() {
                break;
            }
            let mut next = offset;
            // The plan holds whole batches: walk their headers.
            let mut pos = 0usize;
            while pos + RECORD_BATCH_OVERHEAD <= plan.len {
                let n = HEADER_WINDOW.min(plan.len - pos);
                plan.file
                    .read_exact_at(&mut window[..n], plan.position + pos as u64)
                    .map_err(read_err)?;
                let mut at = 0usize;
                while at + RECORD_BATCH_OVERHEAD <= n {
                    let h = BatchHeader::parse(&window[at..at + RECORD_BATCH_OVERHEAD])?;
                    let size = h.total_size();
                    if size < RECORD_BATCH_OVERHEAD || pos + at + size > plan.len {
                        break; // not a whole batch of the plan: stop here
                    }
                    if h.producer_id >= 0 && h.last_offset() >= offset {
                        if h.is_control() {
                            let mut body = vec![0u8; size];
                            plan.file
                                .read_exact_at(&mut body, plan.position + (pos + at) as u64)
                                .map_err(read_err)?;
                            self.replay_control(&h, &body);
                        } else {
                            self.apply(&h);
                        }
                    }
                    next = h.last_offset() + 1;
                    at += size;
                }
                if at == 0 {
                    break;
                }
                pos += at;
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }

    /// Applies a transaction marker batch read in full during a replay.
    fn replay_control(&mut self, h: &BatchHeader, batch: &[u8]) {
        match EndTransactionMarker::from_batch(batch) {
            Ok(m) => {
                if let Some(aborted) = self.apply_control(h, m.commit, m.coordinator_epoch) {
                    self.replayed_aborts.push(aborted);
                }
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), offset = h.base_offset, error = %e, "skipping a control batch that holds no transaction marker");
            }
        }
    }

    /// Decides whether a client batch is new, a duplicate, or invalid
    /// (no KIP-890 verification presented: see [`Self::check_verified`]).
    pub fn check(&self, h: &BatchHeader) -> Result<ProducerCheck, ProducerError> {
        self.check_verified(h, None)
    }

    /// Decides whether a client batch is new, a duplicate, or invalid, in
    /// Kafka's order (`UnifiedLog.analyzeAndValidateProducerState`, then
    /// `ProducerAppendInfo.checkProducerEpoch`, `checkSequence` and
    /// `appendDataBatch`): a duplicate is answered first; then the epoch;
    /// then, with `presented` (a verified request), the verification of a
    /// transactional batch that opens a transaction here
    /// ([`Self::check_verification`]); then the sequence, where a
    /// verification in progress for the producer holds back a batch above
    /// its lowest sequence, and a transaction version 2 producer without
    /// batches here must start at 0; last, a non-transactional write inside
    /// the producer's open transaction.
    pub fn check_verified(
        &self,
        h: &BatchHeader,
        presented: Option<VerificationGuard>,
    ) -> Result<ProducerCheck, ProducerError> {
        if h.producer_id < 0 {
            return Ok(ProducerCheck::Append);
        }
        let last_seq = last_sequence(h);
        let entry = self.producers.get(&h.producer_id);
        let (current_epoch, current_last_seq) = entry
            .map_or((NO_PRODUCER_EPOCH, NO_SEQUENCE), |e| {
                (e.epoch, e.last_seq())
            });
        let stale_epoch = || ProducerError::InvalidProducerEpoch {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            current: current_epoch,
        };
        if h.base_sequence == NO_SEQUENCE {
            // Written by a coordinator (transactional offset commits): Kafka
            // checks only the epoch of such batches, no sequence.
            if h.producer_epoch < current_epoch {
                return Err(stale_epoch());
            }
            return Ok(ProducerCheck::Append);
        }
        if let Some(dup) =
            entry.and_then(|e| e.find_duplicate(h.producer_epoch, h.base_sequence, last_seq))
        {
            return Ok(ProducerCheck::Duplicate(dup));
        }
        if h.producer_epoch < current_epoch {
            return Err(stale_epoch());
        }
        if let Some(presented) = presented {
            if !self.check_verification(h, presented) {
                return Err(ProducerError::UnverifiedTransaction {
                    producer_id: h.producer_id,
                });
            }
        }
        // Kafka consults the producer's verification entry for every client
        // batch of the producer, transactional or not, while it exists.
        if let Some(v) = self.verification_states.get(&h.producer_id) {
            let no_batches = entry.is_none_or(|e| e.batches.is_empty());
            if v.supports_epoch_bump && h.base_sequence != 0 && no_batches {
                return Err(ProducerError::FirstSequenceNotZero {
                    producer_id: h.producer_id,
                    first_seq: h.base_sequence,
                });
            }
            if h.base_sequence > v.lowest_sequence {
                return Err(ProducerError::AheadOfVerifiedSequence {
                    producer_id: h.producer_id,
                    first_seq: h.base_sequence,
                    lowest_seq: v.lowest_sequence,
                });
            }
        }
        let out_of_order = || ProducerError::OutOfOrderSequence {
            producer_id: h.producer_id,
            first_seq: h.base_sequence,
            last_seq: current_last_seq,
            epoch: h.producer_epoch,
            current_epoch,
        };
        if h.producer_epoch != current_epoch {
            // A bumped epoch must restart at 0, unless the partition knows
            // nothing of this producer (its state may have expired).
            if h.base_sequence != 0 && current_epoch != NO_PRODUCER_EPOCH {
                return Err(out_of_order());
            }
        } else if current_epoch != NO_PRODUCER_EPOCH
            && !in_sequence(current_last_seq, h.base_sequence)
        {
            return Err(out_of_order());
        }
        if let Some(first) = entry.and_then(|e| e.current_txn_first_offset) {
            if !h.is_transactional() {
                return Err(ProducerError::InvalidTxnState {
                    producer_id: h.producer_id,
                    txn_first_offset: first,
                });
            }
        }
        Ok(ProducerCheck::Append)
    }

    /// Records an appended batch (its header carries the assigned offsets).
    pub fn apply(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.is_control() {
            return;
        }
        if h.is_transactional() {
            // The transaction now has its first offset here (or had one).
            self.verification_states.remove(&h.producer_id);
        }
        let meta = BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        };
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerStateEntry::empty(h.producer_id));
        // Kafka's appendDataBatch records every data batch, also those a
        // coordinator wrote without a sequence (transactional offset commits):
        // their last offset is the producer's last data offset (the cleaner
        // keeps that batch, the snapshot records it), while `check` never
        // looks them up as duplicates.
        entry.add_batch(h.producer_epoch, meta);
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
    }

    /// Records a COMMIT or ABORT marker written at `h.base_offset`; returns
    /// the aborted transaction to index, if it was an abort of data here.
    pub fn apply_control(
        &mut self,
        h: &BatchHeader,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Option<AbortedTxn> {
        // The transaction ended: a verification begun for it is stale. Not
        // one a transaction version 2 request began at the marker's epoch:
        // the end bumped the epoch to the marker's, so that verification is
        // for the producer's next transaction, which may have begun before
        // this marker arrived (Kafka's `updateProducers`).
        if self
            .verification_states
            .get(&h.producer_id)
            .is_none_or(|v| !(v.supports_epoch_bump && v.epoch == h.producer_epoch))
        {
            self.verification_states.remove(&h.producer_id);
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerStateEntry::empty(h.producer_id));
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        entry.last_timestamp = h.max_timestamp;
        let first = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&first);
        if commit {
            return None;
        }
        let lso = self.first_unstable_offset().unwrap_or(h.base_offset + 1);
        Some(AbortedTxn {
            producer_id: h.producer_id,
            first_offset: first,
            last_offset: h.base_offset,
            last_stable_offset: lso,
        })
    }

    /// Kafka's `ProducerAppendInfo.checkProducerEpoch` for a COMMIT/ABORT
    /// marker the coordinator writes, by the transaction version the
    /// marker names (WriteTxnMarkers v2, KIP-1228): before transaction
    /// version 2 its epoch may not be below the producer's; from 2 on the
    /// end bumped the epoch, so it must be above it, except for a retry of
    /// a marker already written (the same epoch with no transaction open
    /// here, or the epoch at its maximum). Then, as Kafka's
    /// `checkCoordinatorEpoch`, a marker from an older coordinator epoch
    /// than the last marker written for the producer is fenced.
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        transaction_version: i8,
    ) -> Result<(), ProducerError> {
        let (current, open, current_coordinator) =
            self.producers
                .get(&producer_id)
                .map_or((NO_PRODUCER_EPOCH, false, -1), |e| {
                    (
                        e.epoch,
                        e.current_txn_first_offset.is_some(),
                        e.coordinator_epoch,
                    )
                });
        let tv2 = transaction_version >= 2;
        let stale = if tv2 {
            epoch <= current
        } else {
            epoch < current
        };
        let retry = tv2 && epoch == current && (!open || epoch == i16::MAX);
        if stale && !retry {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current,
            });
        }
        if current_coordinator > coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current: current_coordinator,
            });
        }
        Ok(())
    }

    /// First offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Whether the producer has a transaction open here at this epoch
    /// (Kafka's `hasOngoingTransaction`).
    pub fn has_ongoing_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && e.epoch == epoch)
    }

    /// Begins (or joins) the verification of a producer's transaction
    /// before its first batch here (Kafka's
    /// `maybeCreateVerificationStateEntry`), for a batch whose first
    /// sequence is `sequence`: a new entry takes the sequence, the epoch and
    /// whether the request is of transaction version 2
    /// (`supports_epoch_bump`); an existing one keeps its guard and that
    /// flag, and notes the sequence and epoch
    /// ([`VerificationStateEntry::note_batch`]). `None` when
    /// [`MAX_VERIFICATION_STATES`] are in progress.
    pub fn maybe_create_verification_state(
        &mut self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
        supports_epoch_bump: bool,
        now_ms: i64,
    ) -> Option<u64> {
        if let Some(e) = self.verification_states.get_mut(&producer_id) {
            e.note_batch(sequence, epoch);
            return Some(e.guard);
        }
        if self.verification_states.len() >= MAX_VERIFICATION_STATES {
            return None;
        }
        let guard = self.next_verification_guard;
        self.next_verification_guard += 1;
        self.verification_states.insert(
            producer_id,
            VerificationStateEntry {
                guard,
                epoch,
                timestamp: now_ms,
                lowest_sequence: sequence,
                supports_epoch_bump,
            },
        );
        Some(guard)
    }

    /// Whether a transactional batch may be appended: it continues a
    /// transaction open here at its epoch, or presents the guard of the
    /// verification in progress (Kafka's `batchMissingRequiredVerification`).
    pub fn check_verification(&self, h: &BatchHeader, presented: VerificationGuard) -> bool {
        if !h.is_transactional() || h.is_control() || h.producer_id < 0 {
            return true;
        }
        if self.has_ongoing_txn(h.producer_id, h.producer_epoch) {
            return true;
        }
        match presented {
            VerificationGuard::Sentinel => false,
            VerificationGuard::Guard(g) => self
                .verification_states
                .get(&h.producer_id)
                .is_some_and(|e| e.guard == g),
        }
    }

    /// The verification in progress for a producer (tests, diagnostics).
    pub fn verification_state(&self, producer_id: i64) -> Option<VerificationStateEntry> {
        self.verification_states.get(&producer_id).copied()
    }

    /// The open transaction of a producer, if any.
    pub fn ongoing_txn(&self, producer_id: i64) -> Option<i64> {
        self.producers
            .get(&producer_id)
            .and_then(|e| e.current_txn_first_offset)
    }

    /// ABORT markers found by the start-up replay (drained once).
    pub fn take_replayed_aborts(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.replayed_aborts)
    }

    /// `producer.id.expiration.ms` changed (a dynamic broker config): the
    /// next expiry check uses it.
    pub fn set_expiration_ms(&mut self, expiration_ms: i64) {
        self.expiration_ms = expiration_ms;
    }

    /// Drops producers idle for `producer.id.expiration.ms`, at most once a
    /// minute.
    pub fn maybe_remove_expired(&mut self, now_ms: i64) {
        if now_ms - self.last_expiry_check_ms >= 60_000 {
            self.remove_expired(now_ms);
        }
    }

    fn remove_expired(&mut self, now_ms: i64) {
        self.last_expiry_check_ms = now_ms;
        let expiration_ms = self.expiration_ms;
        self.producers
            .retain(|_, e| !is_expired(e, now_ms, expiration_ms));
        // Kafka expires verification entries on the same clock.
        self.verification_states
            .retain(|_, v| now_ms.saturating_sub(v.timestamp) < expiration_ms);
    }

    pub fn producers(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    fn list_snapshots(&self) -> Result<Vec<(i64, PathBuf)>, StorageError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, "list snapshots", e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // Kafka lists regular files only.
            if !path.is_file() {
                continue;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
                if let Ok(offset) = stem.parse::<i64>() {
                    out.push((offset, path));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes `<offset>.snapshot` in Kafka's format, atomically, and prunes
    /// older snapshots. Like Kafka, skips the write when the newest snapshot
    /// is already at `offset`: nothing was appended since, so only
    /// expirations could differ, and those are redone after loading. A broker
    /// restarted without new writes then closes each partition without an
    /// fsync here. A snapshot at `offset` in kastle's former format is
    /// rewritten, so that kafka-dump-log (and Kafka) can read the newest one.
    pub fn take_snapshot(&mut self, offset: i64) -> Result<(), StorageError> {
        if self
            .list_snapshots()?
            .last()
            .is_some_and(|(o, path)| *o == offset && snapshot::is_kafka_format(path))
        {
            return Ok(());
        }
        let path = self.dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"));
        let tmp = path.with_extension("snapshot.tmp");
        let bytes = snapshot::encode_snapshot(self.producers.values());
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })();
        written.map_err(|e| StorageError::io(&tmp, "write snapshot", e))?;
        fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, "rename snapshot", e))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(&self.dir, "fsync directory", e))?;
        let snapshots = self.list_snapshots()?;
        if snapshots.len() > SNAPSHOTS_TO_KEEP {
            for (_, old) in &snapshots[..snapshots.len() - SNAPSHOTS_TO_KEEP] {
                let _ = fs::remove_file(old);
            }
        }
        Ok(())
    }
}

/// Kafka's `isProducerExpired`: no open transaction, and idle for at least
/// `producer.id.expiration.ms`.
fn is_expired(e: &ProducerStateEntry, now_ms: i64, expiration_ms: i64) -> bool {
    e.current_txn_first_offset.is_none() && now_ms.saturating_sub(e.last_timestamp) >= expiration_ms
}

#[cfg(test)]
mod tests;
