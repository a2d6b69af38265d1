//! The aborted-transaction index of a partition (Kafka's `.txnindex`): one
//! entry per aborted transaction, so read_committed fetches can tell
//! consumers which producers' records in a range to drop.
//!
//! Kafka keeps one such file per segment; kastle keeps one per partition
//! (`aborted-transactions.txnindex`), pruned as the log start moves. Entries
//! are appended when an ABORT marker is written; the file is fsynced before
//! every producer-state snapshot, and anything after the newest snapshot is
//! re-derived from the log's control batches on start-up, so a crash can
//! lose no entry. With no such file (a directory Kafka wrote, or one
//! handed back to it), Kafka's per-segment `<base>.txnindex` files are
//! read into it; a hand-back splits it into those files again.

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
        let (all, torn) = match fs::read(&path) {
            Ok(d) => (decode_all(&d), d.len() % ENTRY_SIZE != 0),
            // None yet: Kafka's per-segment files, if Kafka wrote the log
            // (or kastle handed it back), become kastle's file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let from_segments = read_segment_indexes(dir)?;
                let any = !from_segments.is_empty();
                (from_segments, any)
            }
            Err(e) => return Err(StorageError::io(&path, "read transaction index", e)),
        };
        let entries: Vec<AbortedTxn> = all
            .iter()
            .copied()
            .filter(|e| e.last_offset >= log_start && e.last_offset < log_end)
            .collect();
        let rewrite = entries.len() != all.len() || torn;
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

fn decode_all(data: &[u8]) -> Vec<AbortedTxn> {
    data.chunks_exact(ENTRY_SIZE)
        .map_while(AbortedTxn::decode)
        .collect()
}

/// The base offsets of the segments in `dir` (`<20 digits>.log`).
fn segment_bases(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let entries =
        fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list partition directory", e))?;
    let mut bases: Vec<i64> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".log")?;
            (stem.len() == 20).then(|| stem.parse().ok()).flatten()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

fn segment_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.txnindex"))
}

/// The entries of Kafka's per-segment `<base>.txnindex` files in `dir`, in
/// marker order, without duplicates.
fn read_segment_indexes(dir: &Path) -> Result<Vec<AbortedTxn>, StorageError> {
    let mut out = Vec::new();
    for base in segment_bases(dir)? {
        let path = segment_index_path(dir, base);
        match fs::read(&path) {
            Ok(d) => out.extend(decode_all(&d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&path, "read transaction index", e)),
        }
    }
    out.sort_by_key(|e| (e.last_offset, e.producer_id));
    out.dedup();
    Ok(out)
}

/// Hands kastle's per-partition index in `dir` back to Kafka's layout:
/// every aborted transaction goes into the `<base>.txnindex` of the
/// segment holding its ABORT marker (each file replaced atomically, with
/// the entries Kafka's own file had kept), then kastle's file is removed.
/// Entries whose segment is gone are dropped, as retention would. Returns
/// how many entries were written; no kastle file is no work.
pub fn split_into_segment_indexes(dir: &Path) -> Result<usize, StorageError> {
    let path = dir.join(TXN_INDEX_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StorageError::io(&path, "read transaction index", e)),
    };
    let mut entries = decode_all(&data);
    entries.extend(read_segment_indexes(dir)?);
    entries.sort_by_key(|e| (e.last_offset, e.producer_id));
    entries.dedup();
    let bases = segment_bases(dir)?;
    let mut written = 0;
    for (i, base) in bases.iter().enumerate() {
        let end = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let mine: Vec<&AbortedTxn> = entries
            .iter()
            .filter(|e| e.last_offset >= *base && e.last_offset < end)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut bytes = Vec::with_capacity(mine.len() * ENTRY_SIZE);
        for e in &mine {
            bytes.extend_from_slice(&e.encode());
        }
        let seg = segment_index_path(dir, *base);
        crate::util::fs::write_atomically(&seg, &bytes)
            .map_err(|e| StorageError::io(&seg, "write transaction index", e))?;
        written += mine.len();
    }
    fs::remove_file(&path).map_err(|e| StorageError::io(&path, "remove transaction index", e))?;
    crate::util::fs::sync_dir(dir).map_err(|e| StorageError::io(dir, "sync", e))?;
    Ok(written)
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

    #[test]
    fn split_into_kafkas_segment_files_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for base in [0, 10, 20] {
            fs::write(dir.path().join(format!("{base:020}.log")), b"").unwrap();
        }
        // Kafka's own file for segment 0 already has one entry.
        fs::write(
            segment_index_path(dir.path(), 0),
            e(7, 0, 2).encode().as_slice(),
        )
        .unwrap();
        let mut idx = TransactionIndex::open(dir.path(), 0, 30).unwrap();
        // Kafka's per-segment entry became kastle's.
        assert_eq!(idx.collect(0, 30), vec![e(7, 0, 2)]);
        idx.append(e(1, 3, 5)).unwrap();
        idx.append(e(2, 8, 12)).unwrap();
        idx.append(e(1, 21, 25)).unwrap();
        idx.sync().unwrap();
        drop(idx);
        assert_eq!(split_into_segment_indexes(dir.path()).unwrap(), 4);
        assert!(!dir.path().join(TXN_INDEX_FILE).exists());
        let file = |b: i64| fs::read(segment_index_path(dir.path(), b)).unwrap();
        assert_eq!(decode_all(&file(0)), vec![e(7, 0, 2), e(1, 3, 5)]);
        assert_eq!(decode_all(&file(10)), vec![e(2, 8, 12)]);
        assert_eq!(file(20).len(), ENTRY_SIZE);
        // Idempotent; and kastle reopening reads Kafka's files again.
        assert_eq!(split_into_segment_indexes(dir.path()).unwrap(), 0);
        let idx = TransactionIndex::open(dir.path(), 0, 30).unwrap();
        assert_eq!(idx.collect(0, 30).len(), 4);
    }
}
