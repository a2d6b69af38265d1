//! OffsetIndex (`.index`): sparse map from offset to file position within one
//! LogSegment. 8-byte entries: relative offset u32 BE, position u32 BE, both
//! strictly increasing. Entries point at batch starts; lookups return the
//! closest entry at or below a target and the segment scans forward from there.

use std::path::Path;

use super::error::StorageError;
use super::index_file::IndexFile;

pub const OFFSET_INDEX_ENTRY_SIZE: usize = 8;

/// An OffsetIndex entry in absolute terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

pub struct OffsetIndex {
    base_offset: i64,
    inner: IndexFile,
}

fn rel(e: &[u8]) -> u32 {
    u32::from_be_bytes([e[0], e[1], e[2], e[3]])
}
fn pos(e: &[u8]) -> u32 {
    u32::from_be_bytes([e[4], e[5], e[6], e[7]])
}

impl OffsetIndex {
    /// Opens (or creates, preallocated to `max_index_size`) the index file.
    pub fn open(path: &Path, base_offset: i64, max_index_size: u32) -> Result<Self, StorageError> {
        Ok(OffsetIndex {
            base_offset,
            inner: IndexFile::open(path, OFFSET_INDEX_ENTRY_SIZE, max_index_size)?,
        })
    }

    /// Creates an empty index, replacing whatever file was there.
    pub fn create(
        path: &Path,
        base_offset: i64,
        max_index_size: u32,
    ) -> Result<Self, StorageError> {
        Ok(OffsetIndex {
            base_offset,
            inner: IndexFile::create(path, OFFSET_INDEX_ENTRY_SIZE, max_index_size)?,
        })
    }

    fn entry_at(&self, i: usize) -> OffsetPosition {
        let e = self.inner.entry(i);
        OffsetPosition {
            offset: self.base_offset + i64::from(rel(e)),
            position: pos(e),
        }
    }

    /// Kafka's sanity check plus cheap checks that catch an untrimmed file
    /// (zero-filled tail after an unclean shutdown): the last entry must be
    /// strictly beyond the first and inside the log file.
    pub fn sanity_check(&self, log_size: u64) -> Result<(), StorageError> {
        let n = self.inner.entries();
        if n == 0 {
            return Ok(());
        }
        let first = self.entry_at(0);
        let last = self.entry_at(n - 1);
        let reason = if n > 1 && (last.offset <= first.offset || last.position <= first.position) {
            Some(format!(
                "last entry {last:?} is not above first entry {first:?}"
            ))
        } else if u64::from(last.position) >= log_size {
            Some(format!(
                "last entry position {} is beyond the log size {log_size}",
                last.position
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

    /// After an unclean shutdown: keeps the longest prefix of entries whose
    /// offsets and positions strictly increase (positions inside a log of
    /// `log_size` bytes), dropping the zero-filled or stale rest. Returns the
    /// entries kept.
    pub fn keep_increasing_prefix(&mut self, log_size: u64) -> usize {
        let n = self.inner.entries();
        let mut keep = 0;
        let mut prev: Option<OffsetPosition> = None;
        while keep < n {
            let e = self.entry_at(keep);
            let ok = u64::from(e.position) < log_size
                && prev.is_none_or(|p| e.offset > p.offset && e.position > p.position);
            if !ok {
                break;
            }
            prev = Some(e);
            keep += 1;
        }
        self.inner.keep_prefix(keep);
        keep
    }

    /// Largest entry with offset <= `target_offset`, or (base offset, 0).
    pub fn lookup(&self, target_offset: i64) -> OffsetPosition {
        let base = self.base_offset;
        match self
            .inner
            .largest_lower_bound(target_offset - base, |e| i64::from(rel(e)))
        {
            Some(i) => self.entry_at(i),
            None => OffsetPosition {
                offset: base,
                position: 0,
            },
        }
    }

    /// Largest entry with position <= `position` (positions increase with
    /// offsets); lets a reader find a batch boundary near a byte limit.
    pub fn lookup_by_position(&self, position: u32) -> Option<OffsetPosition> {
        self.inner
            .largest_lower_bound(i64::from(position), |e| i64::from(pos(e)))
            .map(|i| self.entry_at(i))
    }

    /// Adds an entry; offsets must be strictly increasing and fit in the
    /// 32-bit relative form.
    pub fn append(&mut self, offset: i64, position: u32) -> Result<(), StorageError> {
        let relative = offset - self.base_offset;
        if !(0..=i64::from(i32::MAX)).contains(&relative) {
            return Err(StorageError::OffsetOverflow {
                base_offset: self.base_offset,
                offset,
            });
        }
        if let Some(last) = self.last_entry() {
            if offset <= last.offset || position <= last.position {
                return Err(StorageError::NonMonotonicIndexAppend {
                    path: self.inner.path().to_path_buf(),
                    last: last.offset,
                    attempted: offset,
                });
            }
        }
        let mut e = [0u8; OFFSET_INDEX_ENTRY_SIZE];
        e[..4].copy_from_slice(&(relative as u32).to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.inner.push(&e)
    }

    /// Removes every entry with offset >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = match self
            .inner
            .largest_lower_bound(offset - self.base_offset, |e| i64::from(rel(e)))
        {
            None => 0,
            Some(i) if self.entry_at(i).offset == offset => i,
            Some(i) => i + 1,
        };
        self.inner.truncate_entries(keep);
    }

    /// Removes all entries.
    /// Allocates disk blocks for `n` more entries (see `IndexFile::reserve`):
    /// ENOSPC surfaces here, before an append writes anything.
    pub fn reserve(&mut self, n: usize) -> Result<(), StorageError> {
        self.inner.reserve(n)
    }
    pub fn reset(&mut self) -> Result<(), StorageError> {
        self.inner.clear()
    }

    pub fn last_entry(&self) -> Option<OffsetPosition> {
        let n = self.inner.entries();
        (n > 0).then(|| self.entry_at(n - 1))
    }
    pub fn entries(&self) -> usize {
        self.inner.entries()
    }
    pub fn max_entries(&self) -> usize {
        self.inner.max_entries()
    }
    pub fn is_full(&self) -> bool {
        self.inner.entries() >= self.inner.max_entries()
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
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100, 80).unwrap();
        assert_eq!(idx.max_entries(), 10);
        assert_eq!(
            idx.lookup(150),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        for i in 1..=5 {
            idx.append(100 + i * 10, (i * 1000) as u32).unwrap();
        }
        assert!(
            idx.append(150, 9000).is_err(),
            "must be strictly increasing"
        );
        assert!(idx.append(99, 1).is_err());
        assert_eq!(
            idx.lookup(105),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            idx.lookup(110),
            OffsetPosition {
                offset: 110,
                position: 1000
            }
        );
        assert_eq!(
            idx.lookup(139),
            OffsetPosition {
                offset: 130,
                position: 3000
            }
        );
        assert_eq!(
            idx.lookup(1 << 40),
            OffsetPosition {
                offset: 150,
                position: 5000
            }
        );
        assert_eq!(idx.lookup_by_position(2500).unwrap().offset, 120);
        assert!(idx.lookup_by_position(999).is_none());

        idx.truncate_to(130);
        assert_eq!(idx.entries(), 2);
        idx.truncate_to(125);
        assert_eq!(idx.last_entry().unwrap().offset, 120);
        idx.append(130, 3000).unwrap();
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        assert!(idx.is_full());
        drop(idx);

        let mut idx = OffsetIndex::open(&path, 100, 80).unwrap();
        assert_eq!(idx.entries(), 3);
        idx.sanity_check(10_000).unwrap();
        idx.resize(80).unwrap();
        assert!(!idx.is_full());
        idx.append(140, 4000).unwrap();
        assert_eq!(idx.lookup(141).position, 4000);
    }

    #[test]
    fn sanity_check_catches_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.index");
        std::fs::write(&path, [0u8; 13]).unwrap();
        assert!(matches!(
            OffsetIndex::open(&path, 0, 80),
            Err(StorageError::CorruptIndex { .. })
        ));
        // Untrimmed preallocated file: zeros after the real entries.
        let mut idx = OffsetIndex::create(&path, 0, 80).unwrap();
        idx.append(10, 100).unwrap();
        drop(idx);
        let idx = OffsetIndex::open(&path, 0, 80).unwrap();
        assert_eq!(idx.entries(), 10);
        assert!(idx.sanity_check(1000).is_err());
        // Position beyond the log.
        let mut idx = OffsetIndex::create(&path, 0, 80).unwrap();
        idx.append(10, 100).unwrap();
        idx.trim().unwrap();
        assert!(idx.sanity_check(50).is_err());
        assert!(idx.sanity_check(101).is_ok());
    }
}
