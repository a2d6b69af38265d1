//! Memory-mapped file of fixed-size entries shared by OffsetIndex and
//! TimeIndex. Owns the Kafka index lifecycle: preallocate on creation,
//! grow back to full size when a segment becomes active again, trim to the
//! real entry count when the segment is rolled or closed.
//!
//! No file descriptor is kept once the file is mapped (as in Kafka): a
//! broker with 10,000 partitions would otherwise hold three descriptors per
//! segment and run out under a common `ulimit -n`. The rare resize reopens
//! the file by path.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use super::error::StorageError;

pub(crate) struct IndexFile {
    path: PathBuf,
    /// `None` for a zero-length file, which cannot be mapped.
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
}

fn round_down(size: u64, entry_size: usize) -> u64 {
    size - size % entry_size as u64
}

impl IndexFile {
    /// Opens an existing index or creates a new one. A new or empty file is
    /// preallocated to `max_index_size`; an existing file keeps its length and
    /// is assumed to be trimmed, i.e. every entry in it is real. That
    /// assumption is what the owners' sanity checks verify.
    pub fn open(path: &Path, entry_size: usize, max_index_size: u32) -> Result<Self, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StorageError::io(path, "open index", e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io(path, "stat index", e))?
            .len();
        if len % entry_size as u64 != 0 {
            return Err(StorageError::CorruptIndex {
                path: path.to_path_buf(),
                reason: format!("size {len} is not a multiple of the entry size {entry_size}"),
            });
        }
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            mmap: None,
            entry_size,
            entries: (len / entry_size as u64) as usize,
            max_entries: 0,
        };
        if len == 0 {
            idx.resize_file(&file, u64::from(max_index_size))?;
        } else {
            idx.map(&file, len)?;
        }
        Ok(idx)
    }

    /// Creates a fresh, empty, preallocated index, discarding any old file.
    pub fn create(
        path: &Path,
        entry_size: usize,
        max_index_size: u32,
    ) -> Result<Self, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| StorageError::io(path, "create index", e))?;
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            mmap: None,
            entry_size,
            entries: 0,
            max_entries: 0,
        };
        idx.resize_file(&file, u64::from(max_index_size))?;
        Ok(idx)
    }

    fn map(&mut self, file: &File, len: u64) -> Result<(), StorageError> {
        self.mmap = None;
        if len > 0 {
            // SAFETY: the mapping is backed by a file this broker owns
            // exclusively; nothing else truncates or writes it while mapped
            // (we drop the map before every set_len), so the memory stays
            // valid for the map's lifetime.
            let m = unsafe { MmapOptions::new().len(len as usize).map_mut(file) }
                .map_err(|e| StorageError::io(&self.path, "mmap index", e))?;
            self.mmap = Some(m);
        }
        self.max_entries = (len / self.entry_size as u64) as usize;
        Ok(())
    }

    /// Changes the file length (rounded down to whole entries, never below
    /// the live entries) and remaps.
    pub fn resize(&mut self, size: u64) -> Result<(), StorageError> {
        let cur_len = (self.max_entries * self.entry_size) as u64;
        if self.mmap.is_some() && self.target_len(size) == cur_len {
            return Ok(());
        }
        let file = self.reopen()?;
        self.resize_file(&file, size)
    }

    fn target_len(&self, size: u64) -> u64 {
        let min = (self.entries * self.entry_size) as u64;
        round_down(size, self.entry_size).max(min)
    }

    /// A fresh read-write handle: none is kept while the file is mapped.
    fn reopen(&self) -> Result<File, StorageError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| StorageError::io(&self.path, "reopen index", e))
    }

    fn resize_file(&mut self, file: &File, size: u64) -> Result<(), StorageError> {
        let new_len = self.target_len(size);
        // Unmap first: touching mapped pages beyond a shrunk file is SIGBUS.
        self.mmap = None;
        file.set_len(new_len)
            .map_err(|e| StorageError::io(&self.path, "resize index", e))?;
        self.map(file, new_len)
    }

    /// Shrinks the file to exactly the live entries (Kafka's trimToValidSize).
    pub fn trim(&mut self) -> Result<(), StorageError> {
        self.resize((self.entries * self.entry_size) as u64)
    }

    pub fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let start = i * self.entry_size;
        match &self.mmap {
            Some(m) => &m[start..start + self.entry_size],
            None => &[],
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        debug_assert_eq!(bytes.len(), self.entry_size);
        if self.entries >= self.max_entries {
            return Err(StorageError::IndexFull {
                path: self.path.clone(),
            });
        }
        let start = self.entries * self.entry_size;
        let Some(m) = self.mmap.as_mut() else {
            return Err(StorageError::IndexFull {
                path: self.path.clone(),
            });
        };
        m[start..start + self.entry_size].copy_from_slice(bytes);
        self.entries += 1;
        Ok(())
    }

    /// Drops every entry, keeping the file's length. The file is cut to
    /// zero and extended again rather than zeroed through the mapping: after
    /// a crash an untrimmed index counts as full, and writing zeroes over
    /// all of it would dirty (and keep resident) `max_index_size` bytes per
    /// index, gigabytes for a broker with a thousand partitions.
    pub fn clear(&mut self) -> Result<(), StorageError> {
        let len = self.file_len();
        self.entries = 0;
        self.mmap = None;
        let file = self.reopen()?;
        file.set_len(0)
            .and_then(|()| file.set_len(len))
            .map_err(|e| StorageError::io(&self.path, "clear index", e))?;
        self.map(&file, len)
    }

    /// Drops entries beyond `n`, zeroing them so a crash before the next
    /// trim cannot resurrect stale entries.
    pub fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        if let Some(m) = self.mmap.as_mut() {
            m[n * self.entry_size..self.entries * self.entry_size].fill(0);
        }
        self.entries = n;
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        if let Some(m) = &self.mmap {
            m.flush()
                .map_err(|e| StorageError::io(&self.path, "msync index", e))?;
        }
        Ok(())
    }

    pub fn entries(&self) -> usize {
        self.entries
    }
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }
    pub fn file_len(&self) -> u64 {
        (self.max_entries * self.entry_size) as u64
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binary search for the last entry whose key (decoded by `key`) is
    /// <= `target`; `None` if the first entry is already greater.
    pub fn largest_lower_bound(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        if self.entries == 0 || key(self.entry(0)) > target {
            return None;
        }
        let (mut lo, mut hi) = (0usize, self.entries - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if key(self.entry(mid)) <= target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Some(lo)
    }
}
