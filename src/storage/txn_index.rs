//! The aborted-transaction index of a partition (Kafka's `.txnindex`): one
//! entry per aborted transaction, so read_committed fetches can tell
//! consumers which producers' records in a range to drop.
//!
//! Kafka keeps one such file per segment; kastle keeps one per partition
//! (`aborted-transactions.txnindex`), pruned as the log start moves. Entries
//! are appended when an ABORT marker is written; the file is fsynced before
//! every producer-state snapshot, and anything after the newest snapshot is
//! re-derived from the log's control batches on start-up, so a crash can
//! lose no entry.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::error::StorageError;

pub const TXN_INDEX_FILE: &str = "aborted-transactions.txnindex";
/// version i16, producer id i64, first offset i64, last offset i64, last stable offset i64.
const ENTRY_SIZE: usize = 34;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&0i16.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(i64::from_be_bytes)
        };
        if b.get(0..2)? != [0, 0] {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

pub struct TransactionIndex {
    path: PathBuf,
    /// Opened on the first append, as Kafka does: most partitions never see
    /// an aborted transaction, and an open descriptor per partition would
    /// count against `ulimit -n`.
    file: Option<File>,
    /// Sorted by `last_offset` (markers are appended in offset order).
    entries: Vec<AbortedTxn>,
}

impl TransactionIndex {
    /// Opens the index, keeping only entries whose marker lies inside
    /// `[log_start, log_end)`: recovery may have truncated the log below a
    /// marker, and retention may have removed older ones.
    pub fn open(
        dir: &Path,
        log_start: i64,
        log_end: i64,
    ) -> Result<TransactionIndex, StorageError> {
        let path = dir.join(TXN_INDEX_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io(&path, "read transaction index", e)),
        };
        let all: Vec<AbortedTxn> = data
            .chunks_exact(ENTRY_SIZE)
            .map_while(AbortedTxn::decode)
            .collect();
        let entries: Vec<AbortedTxn> = all
            .iter()
            .copied()
            .filter(|e| e.last_offset >= log_start && e.last_offset < log_end)
            .collect();
        let rewrite = entries.len() != all.len() || data.len() % ENTRY_SIZE != 0;
        let mut idx = TransactionIndex {
            file: None,
            path,
            entries,
        };
        if rewrite {
            idx.rewrite()?;
        }
        Ok(idx)
    }

    fn rewrite(&mut self) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("txnindex.tmp");
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for e in &self.entries {
            bytes.extend_from_slice(&e.encode());
        }
        let written = (|| -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        written.map_err(|e| StorageError::io(&self.path, "rewrite transaction index", e))?;
        // The old handle points at the replaced file; reopen on next append.
        self.file = None;
        Ok(())
    }

    /// Records an aborted transaction, ignoring one already present (the
    /// start-up replay may re-derive entries written before a crash).
    pub fn append(&mut self, entry: AbortedTxn) -> Result<(), StorageError> {
        if self
            .entries
            .iter()
            .rev()
            .any(|e| e.producer_id == entry.producer_id && e.last_offset == entry.last_offset)
        {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let created = !self.path.exists();
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(|e| StorageError::io(&self.path, "open transaction index", e))?;
                if created {
                    // The new name must survive a crash with the entry.
                    if let Some(dir) = self.path.parent() {
                        File::open(dir)
                            .and_then(|d| d.sync_all())
                            .map_err(|e| StorageError::io(dir, "fsync directory", e))?;
                    }
                }
                self.file.insert(f)
            }
        };
        file.write_all(&entry.encode())
            .map_err(|e| StorageError::io(&self.path, "append transaction index", e))?;
        let pos = self
            .entries
            .partition_point(|e| e.last_offset <= entry.last_offset);
        self.entries.insert(pos, entry);
        Ok(())
    }

    /// Makes appended entries durable; nothing to do if none were appended
    /// since open (entries read at open, or rewritten, are already synced).
    pub fn sync(&self) -> Result<(), StorageError> {
        match &self.file {
            Some(f) => f
                .sync_data()
                .map_err(|e| StorageError::io(&self.path, "fsync transaction index", e)),
            None => Ok(()),
        }
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_bound)`, as
    /// Kafka's `collectAbortedTransactions`.
    pub fn collect(&self, fetch_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let start = self
            .entries
            .partition_point(|e| e.last_offset < fetch_offset);
        self.entries[start..]
            .iter()
            .copied()
            .filter(|e| e.first_offset < upper_bound)
            .collect()
    }

    /// Drops entries wholly below the log start offset.
    pub fn prune_below(&mut self, log_start: i64) -> Result<(), StorageError> {
        if self
            .entries
            .first()
            .is_some_and(|e| e.last_offset < log_start)
        {
            self.entries.retain(|e| e.last_offset >= log_start);
            self.rewrite()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn append_collect_reopen_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TransactionIndex::open(dir.path(), 0, 100).unwrap();
        idx.append(e(1, 0, 5)).unwrap();
        idx.append(e(2, 3, 9)).unwrap();
        idx.append(e(2, 3, 9)).unwrap();
        idx.append(e(1, 20, 30)).unwrap();
        assert_eq!(idx.collect(0, 100).len(), 3);
        assert_eq!(idx.collect(6, 100), vec![e(2, 3, 9), e(1, 20, 30)]);
        assert_eq!(idx.collect(6, 15), vec![e(2, 3, 9)]);
        assert_eq!(idx.collect(31, 100), vec![]);
        idx.sync().unwrap();
        drop(idx);
        // Reopen with the log truncated below the last marker.
        let mut idx = TransactionIndex::open(dir.path(), 0, 25).unwrap();
        assert_eq!(idx.collect(0, 100), vec![e(1, 0, 5), e(2, 3, 9)]);
        idx.prune_below(6).unwrap();
        drop(idx);
        let idx = TransactionIndex::open(dir.path(), 0, 100).unwrap();
        assert_eq!(idx.collect(0, 100), vec![e(2, 3, 9)]);
    }

    #[test]
    fn a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TransactionIndex::open(dir.path(), 0, 100).unwrap();
        idx.append(e(1, 0, 5)).unwrap();
        drop(idx);
        let path = dir.path().join(TXN_INDEX_FILE);
        let mut data = fs::read(&path).unwrap();
        data.extend_from_slice(&[0, 0, 1, 2, 3]);
        fs::write(&path, data).unwrap();
        let idx = TransactionIndex::open(dir.path(), 0, 100).unwrap();
        assert_eq!(idx.collect(0, 100), vec![e(1, 0, 5)]);
        assert_eq!(fs::metadata(&path).unwrap().len(), ENTRY_SIZE as u64);
    }
}
