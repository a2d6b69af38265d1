//! The cleaned-segment writer: one `<base>.log.cleaned` with its
//! `.index.cleaned` and `.timeindex.cleaned`, indexed by the same rules as
//! `LogSegment::append`, written through the throttle and fsynced before
//! the swap (see [`crate::storage::swap`]).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::record::batch::NO_TIMESTAMP;
use crate::record::BatchHeader;
use crate::storage::error::StorageError;
use crate::storage::offset_index::OffsetIndex;
use crate::storage::segment::{INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX};
use crate::storage::swap::{discard_cleaned, suffixed, CLEANED_SUFFIX};
use crate::storage::time_index::TimeIndex;

use super::throttler::Throttler;

/// Bytes buffered before a write to the cleaned segment.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes one cleaned segment (`<base>.*.cleaned`) with its indexes, using
/// the same index rules as `LogSegment::append`.
pub(super) struct CleanedWriter {
    path: PathBuf,
    file: File,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    buf: Vec<u8>,
    flushed: u64,
    size: u64,
    index_interval: u64,
    bytes_since_index: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl CleanedWriter {
    pub(super) fn create(
        dir: &Path,
        base: i64,
        max_index_bytes: u32,
        index_interval: u32,
    ) -> Result<Self, StorageError> {
        // Debris of an earlier failed round at this base.
        discard_cleaned(dir, base);
        let path = suffixed(dir, base, LOG_FILE_SUFFIX, CLEANED_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, "create cleaned segment", e))?;
        let offset_index = OffsetIndex::create(
            &suffixed(dir, base, INDEX_FILE_SUFFIX, CLEANED_SUFFIX),
            base,
            max_index_bytes,
        )?;
        let time_index = TimeIndex::create(
            &suffixed(dir, base, TIME_INDEX_FILE_SUFFIX, CLEANED_SUFFIX),
            base,
            max_index_bytes,
        )?;
        Ok(CleanedWriter {
            path,
            file,
            offset_index,
            time_index,
            buf: Vec::with_capacity(WRITE_CHUNK),
            flushed: 0,
            size: 0,
            index_interval: u64::from(index_interval),
            bytes_since_index: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base,
        })
    }

    pub(super) fn append(
        &mut self,
        batch: &[u8],
        h: &BatchHeader,
        io: &mut Throttler,
    ) -> Result<(), StorageError> {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if self.bytes_since_index > self.index_interval {
            // A full index only makes look-ups scan further: skip, as appends do.
            if !self.offset_index.is_full() {
                self.offset_index
                    .append(h.last_offset(), self.size as u32)?;
            }
            if !self.time_index.is_full() {
                self.time_index.maybe_append(
                    self.max_timestamp,
                    self.offset_of_max_timestamp,
                    false,
                )?;
            }
            self.bytes_since_index = 0;
        }
        self.buf.extend_from_slice(batch);
        self.size += batch.len() as u64;
        self.bytes_since_index += batch.len() as u64;
        if self.buf.len() >= WRITE_CHUNK {
            self.write_out(io)?;
        }
        Ok(())
    }

    fn write_out(&mut self, io: &mut Throttler) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        io.acquire(self.buf.len());
        self.file
            .write_all_at(&self.buf, self.flushed)
            .map_err(|e| StorageError::io(&self.path, "write cleaned segment", e))?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Seals like `on_become_inactive` and makes everything durable.
    pub(super) fn finish(mut self, io: &mut Throttler) -> Result<u64, StorageError> {
        self.write_out(io)?;
        self.time_index.ensure_one_free_slot()?;
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true)?;
        self.offset_index.trim()?;
        self.time_index.trim()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.file
            .sync_all()
            .map_err(|e| StorageError::io(&self.path, "fsync cleaned segment", e))?;
        Ok(self.size)
    }
}
