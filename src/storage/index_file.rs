//! Memory-mapped file of fixed-size entries shared by OffsetIndex and
//! TimeIndex. Owns the Kafka index lifecycle: preallocate on creation,
//! grow back to full size when a segment becomes active again, trim to the
//! real entry count when the segment is rolled or closed.
//!
//! No file descriptor is kept once the file is mapped (as in Kafka): a
//! broker with 10,000 partitions would otherwise hold three descriptors per
//! segment and run out under a common `ulimit -n`. The rare resize reopens
//! the file by path, and checks that the path still names the file it
//! mapped.
//!
//! Invariant (a full disk never kills the broker): no store goes through
//! the map to a byte that has no disk block allocated behind it. The file
//! is preallocated sparse (`set_len`, as Kafka does: a broker with many
//! partitions must not reserve `segment.index.bytes` twice over for each),
//! and a store into a hole is a SIGBUS when the filesystem has no block to
//! give: the whole broker died instead of one append failing. So the map
//! is written only below `allocated`, a watermark raised ahead of the
//! entries, a page at a time, by [`allocate`] (`fallocate(2)`, or written
//! zeros where the filesystem has none). Its ENOSPC is an ordinary
//! `StorageError::Io`: [`IndexFile::reserve`] lets an append fail with it
//! before any byte is written (KAFKA_STORAGE_ERROR), and a roll or seal
//! that cannot allocate fails cleanly. Tested by
//! `compat-tests/test_disk_full.py` (a real full tmpfs under the broker).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
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
    /// (device, inode) of the mapped file: a reopen by path that finds
    /// another file (the path renamed away and reused) must not resize it,
    /// since truncating a file someone else maps is their SIGBUS.
    identity: (u64, u64),
    /// Bytes from the start of the file known to have blocks allocated:
    /// the map is never written at or above it (module invariant).
    allocated: u64,
}

fn round_down(size: u64, entry_size: usize) -> u64 {
    size - size % entry_size as u64
}

fn identity(path: &Path, file: &File) -> Result<(u64, u64), StorageError> {
    let m = file
        .metadata()
        .map_err(|e| StorageError::io(path, "stat index", e))?;
    Ok((m.dev(), m.ino()))
}

/// Zeros written per call by the fallback of [`allocate`].
const ZERO_CHUNK: usize = 64 << 10;

/// The watermark is raised this many bytes at a time (one page: one
/// `fallocate` per 512 offset-index entries).
const ALLOCATION_CHUNK: u64 = 4096;

/// Allocates blocks for `[0, to)` of `file` (no larger than the file), so
/// stores through a map of it cannot fault for want of space. Uses
/// `fallocate(2)` with mode 0 (already allocated ranges cost nothing, and a
/// hole anywhere below `to` is filled too; the size never changes since
/// `to` is inside the file); where the filesystem does not support it
/// (EOPNOTSUPP), writes zeros over `[from, to)`, `from` being the end of the
/// live entries, which must keep their bytes. ENOSPC (or any error) is
/// returned as is.
fn allocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    if to <= from {
        return Ok(());
    }
    let Ok(len) = libc::off_t::try_from(to) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    loop {
        // SAFETY: a valid, open descriptor and a non-negative range; mode 0
        // allocates blocks, it never changes data.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP) => return write_zeros(file, from, to),
            _ => return Err(e),
        }
    }
}

/// The fallback of [`allocate`]: real zeros, so the blocks exist.
fn write_zeros(file: &File, from: u64, new_len: u64) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut pos = from;
    while pos < new_len {
        let n = (new_len - pos).min(ZERO_CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
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
            identity: identity(path, &file)?,
            allocated: 0,
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
            identity: identity(path, &file)?,
            allocated: 0,
        };
        idx.resize_file(&file, u64::from(max_index_size))?;
        Ok(idx)
    }

    fn map(&mut self, file: &File, len: u64) -> Result<(), StorageError> {
        self.mmap = None;
        if len > 0 {
            // SAFETY: the mapping is backed by a file this broker owns
            // exclusively; nothing else truncates or writes it while mapped
            // (we drop the map before every set_len, and never resize a
            // file that is not the one we mapped), so the memory stays
            // valid for the map's lifetime. Stores go only below
            // `allocated` (see `allocate`), so none can fault on a full disk.
            let m = unsafe { MmapOptions::new().len(len as usize).map_mut(file) }
                .map_err(|e| StorageError::io(&self.path, "mmap index", e))?;
            // No read-ahead on faults: an index is touched an entry at a
            // time, and a fault in a sparse (or fallocated, unwritten) file
            // would otherwise read ahead the device's whole window
            // (`read_ahead_kb`, 8 MiB here) and zero it: with 1,000 active
            // partitions that zeroing was two thirds of the broker's CPU
            // (BENCHMARKS.md, "Many partitions, durable"). Only a hint, so
            // a refusal changes nothing but speed.
            if let Err(e) = m.advise(memmap2::Advice::Random) {
                tracing::debug!(path = %self.path.display(), error = %e, "madvise(MADV_RANDOM) on an index refused");
            }
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
    /// Refuses a file other than the one mapped (the path was renamed away,
    /// e.g. to `.deleted`, and perhaps reused): resizing that one could cut
    /// a file another index maps.
    fn reopen(&self) -> Result<File, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| StorageError::io(&self.path, "reopen index", e))?;
        if identity(&self.path, &file)? != self.identity {
            return Err(StorageError::io(
                &self.path,
                "reopen index",
                io::Error::other("the path no longer names the mapped index file"),
            ));
        }
        Ok(file)
    }

    fn resize_file(&mut self, file: &File, size: u64) -> Result<(), StorageError> {
        let new_len = self.target_len(size);
        // Unmap first: touching mapped pages beyond a shrunk file is SIGBUS.
        self.mmap = None;
        // Growth is sparse: the watermark keeps stores below what is backed.
        self.allocated = self.allocated.min(new_len);
        file.set_len(new_len)
            .map_err(|e| StorageError::io(&self.path, "resize index", e))?;
        self.map(file, new_len)
    }

    /// Makes room for `n` more entries to be stored without a fault: raises
    /// the allocation watermark past them (a page at a time, never past the
    /// file). Appends call it before writing any log data, so a full disk
    /// refuses the append instead of killing the broker. Capped at the
    /// entries that fit.
    pub fn reserve(&mut self, n: usize) -> Result<(), StorageError> {
        let want = (self.entries + n).min(self.max_entries) * self.entry_size;
        self.ensure_allocated(want as u64)
    }

    fn ensure_allocated(&mut self, want: u64) -> Result<(), StorageError> {
        if want <= self.allocated {
            return Ok(());
        }
        let len = self.file_len();
        let to = want
            .div_ceil(ALLOCATION_CHUNK)
            .saturating_mul(ALLOCATION_CHUNK)
            .min(len);
        let live = (self.entries * self.entry_size) as u64;
        let file = self.reopen()?;
        allocate(&file, self.allocated.max(live), to)
            .map_err(|e| StorageError::io(&self.path, "allocate index", e))?;
        self.allocated = to;
        Ok(())
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
        self.ensure_allocated((start + self.entry_size) as u64)?;
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
        self.allocated = 0;
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
        // Entries were stored, so normally backed; an opened file may still
        // have holes (a crash), and zeroing is only a nicety: skip it then.
        let end = (self.entries * self.entry_size) as u64;
        if let Err(e) = self.ensure_allocated(end) {
            tracing::warn!(index = %self.path.display(), error = %e, "not zeroing truncated index entries");
            self.entries = n;
            return;
        }
        if let Some(m) = self.mmap.as_mut() {
            m[n * self.entry_size..self.entries * self.entry_size].fill(0);
        }
        self.entries = n;
    }

    /// Keeps the first `n` entries of a file an unclean shutdown left
    /// untrimmed, zeroing the entries after them up to the first all-zero
    /// one (the preallocated tail is zero already and stays untouched, so
    /// recovery does not dirty megabytes of index pages).
    pub fn keep_prefix(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        let size = self.entry_size;
        let mut end = n;
        while end < self.entries && self.entry(end).iter().any(|&b| b != 0) {
            end += 1;
        }
        if end > n {
            if let Err(e) = self.ensure_allocated((end * size) as u64) {
                tracing::warn!(index = %self.path.display(), error = %e, "not zeroing dropped index entries");
            } else if let Some(m) = self.mmap.as_mut() {
                m[n * size..end * size].fill(0);
            }
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
