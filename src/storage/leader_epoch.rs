//! Kafka's `LeaderEpochFileCache` with its `LeaderEpochCheckpointFile`: the
//! first offset of every partition leader epoch found in the log, kept in
//! the partition directory's `leader-epoch-checkpoint` file (version line
//! `0`, entry count, then one `epoch startOffset` line per entry, exactly
//! what Kafka writes and reads). Followers truncate with it
//! (OffsetForLeaderEpoch); consumers validate their positions against it.
//!
//! The file is replaced atomically (written under a temporary name, fsynced,
//! renamed, directory fsynced) whenever a new epoch is assigned, before the
//! batch that starts it is written, so the file never misses an entry the
//! log has. It may hold entries past the log end after a crash (or after a
//! truncation whose rewrite did not happen); [`LeaderEpochFileCache::load`]
//! callers cut those with `truncate_from_end(log_end)` as Kafka's loader does.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::error::StorageError;
use crate::util::fs::write_atomically;

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH` / `UNDEFINED_EPOCH`.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's `UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;
const CHECKPOINT_VERSION: i32 = 0;
/// A checkpoint holding more entries than this is refused as corrupt: one
/// entry per leader change, so even a very old partition stays far below.
pub const MAX_CHECKPOINT_ENTRIES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

pub struct LeaderEpochFileCache {
    path: PathBuf,
    /// epoch → start offset; both strictly increasing together.
    epochs: BTreeMap<i32, i64>,
    /// What the file holds (as read, or as last written): a write that
    /// would not change it is skipped, so the load-time truncation and the
    /// leader's re-assignment of the same entry cost no sync at start-up.
    on_disk: BTreeMap<i32, i64>,
}

/// Parses Kafka's checkpoint text; the error names what is wrong.
pub fn parse_checkpoint(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    let version: i32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing version line")?;
    if version != CHECKPOINT_VERSION {
        return Err(format!("unrecognised version {version}"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing entry count")?;
    if count > MAX_CHECKPOINT_ENTRIES {
        return Err(format!("{count} entries exceed the limit"));
    }
    let mut entries = Vec::with_capacity(count);
    for line in lines.by_ref().take(count) {
        let mut parts = line.split_whitespace();
        let (Some(e), Some(o), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("malformed line {line:?}"));
        };
        let (Ok(epoch), Ok(start_offset)) = (e.parse::<i32>(), o.parse::<i64>()) else {
            return Err(format!("malformed line {line:?}"));
        };
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if entries.len() != count {
        return Err(format!("expected {count} entries, found {}", entries.len()));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("content after the entries".into());
    }
    Ok(entries)
}

impl LeaderEpochFileCache {
    /// Loads `dir/leader-epoch-checkpoint` (an absent file is an empty
    /// cache). Entries are re-assigned one by one as Kafka's constructor
    /// does, so a non-monotonic file is repaired rather than trusted.
    pub fn load(dir: &Path) -> Result<LeaderEpochFileCache, StorageError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut cache = LeaderEpochFileCache {
            path,
            epochs: BTreeMap::new(),
            on_disk: BTreeMap::new(),
        };
        let text = match std::fs::read_to_string(&cache.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => {
                return Err(StorageError::io(
                    &cache.path,
                    "read leader epoch checkpoint",
                    e,
                ))
            }
        };
        // Kafka takes the log directory offline over an unreadable
        // checkpoint; an empty cache is the safe reading instead (a follower
        // of this replica then truncates to the high watermark, as before
        // epochs existed), and the next new epoch rewrites the file.
        let entries = match parse_checkpoint(&text) {
            Ok(entries) => entries,
            Err(reason) => {
                warn!(file = %cache.path.display(), reason, "ignoring an unreadable leader epoch checkpoint");
                Vec::new()
            }
        };
        for e in entries {
            if e.epoch < 0 || e.start_offset < 0 {
                warn!(file = %cache.path.display(), ?e, "ignoring invalid leader epoch entry");
                continue;
            }
            cache.assign_in_memory(e);
        }
        // A repaired (non-monotonic) file differs from this and is rewritten
        // by the next change.
        cache.on_disk = cache.epochs.clone();
        Ok(cache)
    }

    fn latest(&self) -> Option<EpochEntry> {
        self.epochs
            .last_key_value()
            .map(|(&epoch, &start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
    }

    fn is_update_needed(&self, e: EpochEntry) -> bool {
        self.latest()
            .is_none_or(|l| e.epoch != l.epoch || e.start_offset < l.start_offset)
    }

    /// Kafka's `maybeTruncateNonMonotonicEntries` then put.
    fn assign_in_memory(&mut self, e: EpochEntry) -> bool {
        if !self.is_update_needed(e) {
            return false;
        }
        while let Some(l) = self.latest() {
            if l.epoch >= e.epoch || l.start_offset >= e.start_offset {
                self.epochs.remove(&l.epoch);
                if l.start_offset != e.start_offset {
                    warn!(file = %self.path.display(), new = ?e, removed = ?l, "new leader epoch entry truncated a conflicting one");
                }
            } else {
                break;
            }
        }
        self.epochs.insert(e.epoch, e.start_offset);
        true
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`),
    /// persisting the file before returning when anything changed. Negative
    /// epochs (batches written without one) are not recorded: Kafka's
    /// recovery skips them too.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), StorageError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if self.assign_in_memory(EpochEntry {
            epoch,
            start_offset,
        }) {
            self.write()?;
        }
        Ok(())
    }

    /// Whether appending a batch of `epoch` at `offset` would change the
    /// cache (the hot path checks this before taking the slow path).
    pub fn needs_assign(&self, epoch: i32, offset: i64) -> bool {
        epoch >= 0
            && offset >= 0
            && self.is_update_needed(EpochEntry {
                epoch,
                start_offset: offset,
            })
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest().map(|e| e.epoch)
    }

    pub fn earliest(&self) -> Option<EpochEntry> {
        self.epochs
            .first_key_value()
            .map(|(&epoch, &start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
    }

    pub fn entries(&self) -> Vec<EpochEntry> {
        self.epochs
            .iter()
            .map(|(&epoch, &start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
            .collect()
    }

    /// Kafka's `endOffsetFor`: the largest epoch ≤ `requested` and the
    /// offset where it ends (the next epoch's start, or `log_end` for the
    /// latest). `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)` when the
    /// requested epoch is undefined or above every known epoch; a requested
    /// epoch below every known one answers with itself and the first known
    /// epoch's start.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        let undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return undefined;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end);
        }
        let Some((_, &higher_start)) = self
            .epochs
            .range((
                std::ops::Bound::Excluded(requested),
                std::ops::Bound::Unbounded,
            ))
            .next()
        else {
            return undefined;
        };
        match self.epochs.range(..=requested).next_back() {
            None => (requested, higher_start),
            Some((&floor, _)) => (floor, higher_start),
        }
    }

    /// Kafka's `epochForOffset`: the epoch the record at `offset` was
    /// written in, if the cache knows.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let mut previous = None;
        for (&epoch, &start) in &self.epochs {
            if start == offset {
                return Some(epoch);
            }
            if start > offset {
                return previous;
            }
            previous = Some(epoch);
        }
        previous
    }

    /// Removes every entry starting at or after `end_offset` (the log was
    /// truncated to it). Persists when something changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), StorageError> {
        if self.truncate_from_end_in_memory(end_offset) {
            self.write()?;
        }
        Ok(())
    }

    /// The loader's truncation to the recovered log end, without writing
    /// (Kafka's `truncateFromEndAsyncFlush`): the entries it drops start
    /// past the log, so a crash before the next write only makes the next
    /// load drop them again. The next change writes the whole cache, and an
    /// epoch the log gains is always written before its batch.
    pub fn truncate_from_end_in_memory(&mut self, end_offset: i64) -> bool {
        let mut changed = false;
        if end_offset >= 0 {
            while let Some(l) = self.latest() {
                if l.start_offset < end_offset {
                    break;
                }
                self.epochs.remove(&l.epoch);
                changed = true;
            }
        }
        changed
    }

    /// Drops entries wholly before `start_offset` (the log start moved
    /// there), keeping the last one that starts at or before it, moved to
    /// start exactly there (Kafka's `truncateFromStart`: exclusive, so an
    /// entry at `start_offset` stays).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), StorageError> {
        let mut last_removed = None;
        let mut changed = false;
        while let Some((&epoch, &start)) = self.epochs.first_key_value() {
            if start > start_offset {
                break;
            }
            self.epochs.remove(&epoch);
            changed |= last_removed.is_some() || start != start_offset;
            last_removed = Some(epoch);
        }
        if let Some(epoch) = last_removed {
            self.epochs.insert(epoch, start_offset);
            // An entry already starting there changes nothing on disk.
            if changed {
                self.write()?;
            }
        }
        Ok(())
    }

    /// Empties the cache and the file (Kafka's `clearAndFlush`).
    pub fn clear(&mut self) -> Result<(), StorageError> {
        self.epochs.clear();
        self.write_file()
    }

    fn write(&mut self) -> Result<(), StorageError> {
        if self.epochs == self.on_disk {
            return Ok(());
        }
        self.write_file()
    }

    fn write_file(&mut self) -> Result<(), StorageError> {
        use std::fmt::Write;
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.epochs.len());
        for (epoch, start) in &self.epochs {
            let _ = writeln!(text, "{epoch} {start}");
        }
        write_atomically(&self.path, text.as_bytes())
            .map_err(|e| StorageError::io(&self.path, "write leader epoch checkpoint", e))?;
        self.on_disk = self.epochs.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
