//! TimeIndex (`.timeindex`): sparse map from timestamp to offset within one
//! LogSegment. 12-byte entries: timestamp i64 BE, relative offset u32 BE.
//! An entry is added only when the segment's max timestamp so far grows, so
//! timestamps are strictly increasing and offsets non-decreasing.

use std::path::Path;

use super::error::StorageError;
use super::index_file::IndexFile;

pub const TIME_INDEX_ENTRY_SIZE: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

pub struct TimeIndex {
    base_offset: i64,
    inner: IndexFile,
}

fn ts(e: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&e[..8]);
    i64::from_be_bytes(a)
}
fn rel(e: &[u8]) -> u32 {
    u32::from_be_bytes([e[8], e[9], e[10], e[11]])
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64, max_index_size: u32) -> Result<Self, StorageError> {
        Ok(TimeIndex {
            base_offset,
            inner: IndexFile::open(path, TIME_INDEX_ENTRY_SIZE, max_index_size)?,
        })
    }

    pub fn create(
        path: &Path,
        base_offset: i64,
        max_index_size: u32,
    ) -> Result<Self, StorageError> {
        Ok(TimeIndex {
            base_offset,
            inner: IndexFile::create(path, TIME_INDEX_ENTRY_SIZE, max_index_size)?,
        })
    }

    fn entry_at(&self, i: usize) -> TimestampOffset {
        let e = self.inner.entry(i);
        TimestampOffset {
            timestamp: ts(e),
            offset: self.base_offset + i64::from(rel(e)),
        }
    }

    /// Last entry, or (-1, base offset) when empty, as Kafka reports it.
    pub fn last_entry(&self) -> TimestampOffset {
        let n = self.inner.entries();
        if n == 0 {
            TimestampOffset {
                timestamp: -1,
                offset: self.base_offset,
            }
        } else {
            self.entry_at(n - 1)
        }
    }

    /// Kafka's check (last timestamp not below the first, last offset not
    /// below base) tightened to catch a zero-filled untrimmed tail: with
    /// more than one entry timestamps must strictly grow, and the last
    /// offset must not exceed the segment's next offset.
    pub fn sanity_check(&self, next_offset: i64) -> Result<(), StorageError> {
        let n = self.inner.entries();
        if n == 0 {
            return Ok(());
        }
        let first = self.entry_at(0);
        let last = self.entry_at(n - 1);
        let reason = if n > 1 && (last.timestamp <= first.timestamp || last.offset < first.offset) {
            Some(format!(
                "last entry {last:?} is not above first entry {first:?}"
            ))
        } else if last.offset >= next_offset {
            Some(format!(
                "last entry offset {} is not below the next offset {next_offset}",
                last.offset
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(StorageError::CorruptIndex {
                path: self.inner.path().to_path_buf(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Largest entry with timestamp <= `target`, or (-1, base offset).
    pub fn lookup(&self, target: i64) -> TimestampOffset {
        match self.inner.largest_lower_bound(target, ts) {
            Some(i) => self.entry_at(i),
            None => TimestampOffset {
                timestamp: -1,
                offset: self.base_offset,
            },
        }
    }

    /// Appends (timestamp, offset) if the timestamp is strictly greater than
    /// the last entry's. `skip_full_check` uses the slot Kafka keeps free
    /// (see `is_full`) for the final entry written when a segment is sealed.
    pub fn maybe_append(
        &mut self,
        timestamp: i64,
        offset: i64,
        skip_full_check: bool,
    ) -> Result<(), StorageError> {
        if !skip_full_check && self.is_full() {
            return Err(StorageError::IndexFull {
                path: self.inner.path().to_path_buf(),
            });
        }
        let relative = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&relative) {
            return Err(StorageError::OffsetOverflow {
                base_offset: self.base_offset,
                offset,
            });
        }
        let last = self.last_entry();
        if self.inner.entries() > 0 && offset < last.offset {
            return Err(StorageError::NonMonotonicIndexAppend {
                path: self.inner.path().to_path_buf(),
                last: last.offset,
                attempted: offset,
            });
        }
        if timestamp <= last.timestamp {
            return Ok(());
        }
        let mut e = [0u8; TIME_INDEX_ENTRY_SIZE];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&(relative as u32).to_be_bytes());
        self.inner.push(&e)
    }

    /// After an unclean shutdown: keeps the longest prefix of entries with
    /// strictly increasing timestamps and non-decreasing offsets below
    /// `end_offset`, dropping the zero-filled or stale rest.
    pub fn keep_increasing_prefix(&mut self, end_offset: i64) {
        let n = self.inner.entries();
        let mut keep = 0;
        let mut prev: Option<TimestampOffset> = None;
        while keep < n {
            let e = self.entry_at(keep);
            let ok = e.offset >= self.base_offset
                && e.offset < end_offset
                && prev.is_none_or(|p| e.timestamp > p.timestamp && e.offset >= p.offset);
            if !ok {
                break;
            }
            prev = Some(e);
            keep += 1;
        }
        self.inner.keep_prefix(keep);
    }

    /// Removes every entry with offset >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let n = self.inner.entries();
        // Offsets are non-decreasing: keep the prefix below `offset`.
        let mut keep = n;
        while keep > 0 && self.entry_at(keep - 1).offset >= offset {
            keep -= 1;
        }
        self.inner.truncate_entries(keep);
    }

    /// Allocates disk blocks for `n` more entries (see `IndexFile::reserve`):
    /// ENOSPC surfaces here, before an append writes anything.
    pub fn reserve(&mut self, n: usize) -> Result<(), StorageError> {
        self.inner.reserve(n)
    }
    pub fn reset(&mut self) -> Result<(), StorageError> {
        self.inner.clear()
    }
    pub fn entries(&self) -> usize {
        self.inner.entries()
    }
    pub fn max_entries(&self) -> usize {
        self.inner.max_entries()
    }
    /// One slot is reserved for the entry added when the segment is sealed.
    pub fn is_full(&self) -> bool {
        self.inner.entries() + 1 >= self.inner.max_entries()
    }
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn file_len(&self) -> u64 {
        self.inner.file_len()
    }
    pub fn resize(&mut self, max_index_size: u32) -> Result<(), StorageError> {
        self.inner.resize(u64::from(max_index_size))
    }
    /// Grows by one entry if needed so a sealing entry always fits.
    pub fn ensure_one_free_slot(&mut self) -> Result<(), StorageError> {
        if self.inner.entries() >= self.inner.max_entries() {
            let want = ((self.inner.entries() + 1) * TIME_INDEX_ENTRY_SIZE) as u64;
            self.inner.resize(want)?;
        }
        Ok(())
    }
    pub fn trim(&mut self) -> Result<(), StorageError> {
        self.inner.trim()
    }
    pub fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
    pub fn path(&self) -> &Path {
        self.inner.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_lookup_truncate_reopen_trim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000050.timeindex");
        let mut idx = TimeIndex::create(&path, 50, 120).unwrap();
        assert_eq!(idx.max_entries(), 10);
        assert_eq!(
            idx.lookup(5),
            TimestampOffset {
                timestamp: -1,
                offset: 50
            }
        );
        idx.maybe_append(1000, 55, false).unwrap();
        idx.maybe_append(1000, 56, false).unwrap(); // not greater: ignored
        idx.maybe_append(900, 57, false).unwrap(); // older: ignored
        idx.maybe_append(2000, 60, false).unwrap();
        idx.maybe_append(3000, 70, false).unwrap();
        assert_eq!(idx.entries(), 3);
        assert!(
            idx.maybe_append(4000, 65, false).is_err(),
            "offsets may not go back"
        );
        assert_eq!(idx.lookup(999).offset, 50);
        assert_eq!(
            idx.lookup(1000),
            TimestampOffset {
                timestamp: 1000,
                offset: 55
            }
        );
        assert_eq!(
            idx.lookup(2500),
            TimestampOffset {
                timestamp: 2000,
                offset: 60
            }
        );
        assert_eq!(idx.lookup(i64::MAX).offset, 70);
        idx.truncate_to(60);
        assert_eq!(idx.last_entry().offset, 55);
        idx.maybe_append(2000, 60, false).unwrap();
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        drop(idx);
        let mut idx = TimeIndex::open(&path, 50, 120).unwrap();
        idx.sanity_check(61).unwrap();
        assert!(idx.sanity_check(60).is_err());
        assert_eq!(
            idx.last_entry(),
            TimestampOffset {
                timestamp: 2000,
                offset: 60
            }
        );
        idx.ensure_one_free_slot().unwrap();
        idx.maybe_append(5000, 61, true).unwrap();
        assert_eq!(idx.entries(), 3);
    }

    #[test]
    fn full_keeps_one_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.timeindex");
        let mut idx = TimeIndex::create(&path, 0, 36).unwrap();
        idx.maybe_append(1, 1, false).unwrap();
        idx.maybe_append(2, 2, false).unwrap();
        assert!(idx.is_full());
        assert!(idx.maybe_append(3, 3, false).is_err());
        idx.maybe_append(3, 3, true).unwrap();
    }
}
