//! Crash-safe segment replacement, Kafka's swap protocol (`LocalLog.replaceSegments`
//! and the swap recovery of `LogLoader`): a replacement is written as
//! `<base>.{log,index,timeindex}.cleaned`, renamed to `.swap` (indexes
//! first; the log file's rename is the commit point), the replaced
//! segments' files are renamed `.deleted`, then `.swap` is stripped.
//! [`complete_interrupted_swaps`] finishes or discards an interrupted swap
//! when the log opens, so either the old or the new segments survive a
//! crash, never neither. The log runs the protocol; the cleaner writes the
//! `.cleaned` files and reads the segments through [`SegmentSummary`].

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use crate::record::batch::{CURRENT_MAGIC, MIN_BATCH_LENGTH, RECORD_BATCH_OVERHEAD};
use crate::record::BatchHeader;

use super::error::StorageError;
use super::segment::{
    parse_base_offset, segment_file_name, LogSegment, INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX,
    TIME_INDEX_FILE_SUFFIX,
};

pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const SWAP_SUFFIX: &str = ".swap";
pub const DELETED_SUFFIX: &str = ".deleted";

/// A non-active segment as the cleaner sees it (`Log::cleaner_segments`):
/// summary taken under the partition lock, data read through the shared
/// handle without it.
#[derive(Debug, Clone)]
pub struct SegmentSummary {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub file: Arc<File>,
    /// For error messages only: reads go through `file`.
    pub path: PathBuf,
    /// Bytes of offset-index entries (for grouping).
    pub index_bytes: u64,
    pub largest_timestamp: i64,
    /// Max timestamp of the first batch (`max.compaction.lag.ms` clock).
    pub first_batch_timestamp: Option<i64>,
}

/// Path of a segment file with an extra suffix (`.cleaned`, `.swap`, ...).
pub fn suffixed(dir: &Path, base: i64, file_suffix: &str, extra: &str) -> PathBuf {
    dir.join(format!("{}{extra}", segment_file_name(base, file_suffix)))
}

pub const SEGMENT_SUFFIXES: [&str; 3] =
    [LOG_FILE_SUFFIX, INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX];

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, "remove file", e)),
    }
}

/// Removes the `.cleaned` files of group `base` (a discarded round), and
/// index `.swap` files of a swap that failed before its commit point (the
/// log file's `.swap`); a committed swap is left for the next open to finish.
pub fn discard_cleaned(dir: &Path, base: i64) {
    let committed = suffixed(dir, base, LOG_FILE_SUFFIX, SWAP_SUFFIX).exists();
    for s in SEGMENT_SUFFIXES {
        let mut doomed = vec![suffixed(dir, base, s, CLEANED_SUFFIX)];
        if !committed && s != LOG_FILE_SUFFIX {
            doomed.push(suffixed(dir, base, s, SWAP_SUFFIX));
        }
        for p in doomed {
            if let Err(e) = remove_if_exists(&p) {
                warn!(error = %e, "could not remove a discarded cleaned segment file");
            }
        }
    }
}

/// Renames a segment's three files with `suffix` appended; returns the new
/// paths of those that existed.
pub fn rename_segment_files(seg: &LogSegment, suffix: &str) -> Result<Vec<PathBuf>, StorageError> {
    let mut out = Vec::new();
    for p in [
        seg.log_path(),
        seg.offset_index().path(),
        seg.time_index().path(),
    ] {
        let mut target = p.as_os_str().to_owned();
        target.push(suffix);
        let target = PathBuf::from(target);
        match fs::rename(p, &target) {
            Ok(()) => out.push(target),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(p, "rename segment file", e)),
        }
    }
    Ok(out)
}

/// Swaps the replacement written as `<base>.{log,index,timeindex}.cleaned`
/// in for the segments `replaced` (whose first one starts at `base`):
/// `.cleaned` → `.swap` (the log file's rename commits), the replaced
/// files → `.deleted`, `.swap` → the final names, with the directory
/// fsynced after the commit and at the end. Returns the `.deleted` files.
/// The caller holds the log's lock and opens the new segment afterwards.
pub fn swap_in_cleaned(
    dir: &Path,
    base: i64,
    replaced: &[LogSegment],
) -> Result<Vec<PathBuf>, StorageError> {
    let sync_dir =
        || crate::util::fs::sync_dir(dir).map_err(|e| StorageError::io(dir, "fsync directory", e));
    let cleaned = |suffix: &str| suffixed(dir, base, suffix, CLEANED_SUFFIX);
    let swap = |suffix: &str| suffixed(dir, base, suffix, SWAP_SUFFIX);
    // Indexes first: the log file's rename is the commit point.
    for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
        fs::rename(cleaned(suffix), swap(suffix))
            .map_err(|e| StorageError::io(cleaned(suffix), "rename cleaned segment", e))?;
    }
    sync_dir()?;
    let mut deleted = Vec::new();
    for seg in replaced {
        deleted.extend(rename_segment_files(seg, DELETED_SUFFIX)?);
    }
    for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
        let target = dir.join(segment_file_name(base, suffix));
        fs::rename(swap(suffix), &target)
            .map_err(|e| StorageError::io(swap(suffix), "rename swap segment", e))?;
    }
    sync_dir()?;
    Ok(deleted)
}

/// Finds the offset after the last whole batch of a segment file by reading
/// batch headers (crash recovery only).
fn scan_next_offset(path: &Path, base: i64) -> Result<i64, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io(path, "open swap segment", e))?;
    let len = file
        .metadata()
        .map_err(|e| StorageError::io(path, "stat swap segment", e))?
        .len();
    let mut next = base;
    let mut pos = 0u64;
    let mut hdr = [0u8; RECORD_BATCH_OVERHEAD];
    while pos + RECORD_BATCH_OVERHEAD as u64 <= len {
        file.read_exact_at(&mut hdr, pos)
            .map_err(|e| StorageError::io(path, "read swap segment", e))?;
        let Ok(h) = BatchHeader::parse(&hdr) else {
            break;
        };
        let total = h.total_size() as u64;
        if h.batch_length < MIN_BATCH_LENGTH || h.magic != CURRENT_MAGIC || pos + total > len {
            break;
        }
        next = h.next_offset();
        pos += total;
    }
    Ok(next)
}

/// Leading base offset of a segment-style file name (`000...42.log.swap`).
fn base_of(name: &str) -> Option<i64> {
    parse_base_offset(name.split('.').next()?)
}

/// Kafka's `LogLoader` swap recovery, run before a log's segments load:
/// `.deleted` and `.cleaned` files are removed; `.swap` files at or above
/// the smallest `.cleaned` base are incomplete and removed; the remaining
/// `.swap` files were committed: every ordinary segment file inside the
/// swapped offset range (and at each swap's own base) is removed and the
/// `.swap` suffix stripped. Returns whether anything changed on disk.
pub fn complete_interrupted_swaps(dir: &Path) -> Result<bool, StorageError> {
    let list = |dir: &Path| -> Result<Vec<(PathBuf, String)>, StorageError> {
        let mut out = Vec::new();
        for entry in
            fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list log directory", e))?
        {
            let entry = entry.map_err(|e| StorageError::io(dir, "list log directory", e))?;
            if let Some(name) = entry.file_name().to_str() {
                out.push((entry.path(), name.to_owned()));
            }
        }
        Ok(out)
    };
    let mut changed = false;
    let mut min_cleaned = i64::MAX;
    let mut swaps = Vec::new();
    for (path, name) in list(dir)? {
        if name.ends_with(DELETED_SUFFIX) || name.ends_with(CLEANED_SUFFIX) {
            if name.ends_with(CLEANED_SUFFIX) {
                if let Some(b) = base_of(&name) {
                    min_cleaned = min_cleaned.min(b);
                }
            }
            warn!(file = %path.display(), "removing leftover file");
            remove_if_exists(&path)?;
            changed = true;
        } else if name.ends_with(SWAP_SUFFIX) {
            swaps.push((path, name));
        }
    }
    let mut committed = Vec::new();
    for (path, name) in swaps {
        match base_of(&name) {
            Some(b) if b < min_cleaned => committed.push((path, name, b)),
            _ => {
                warn!(file = %path.display(), "removing swap file of an incomplete clean");
                remove_if_exists(&path)?;
                changed = true;
            }
        }
    }
    let log_swap_suffix = format!("{LOG_FILE_SUFFIX}{SWAP_SUFFIX}");
    let mut range: Option<(i64, i64)> = None;
    let mut swap_bases = HashSet::new();
    for (path, name, base) in &committed {
        if name.ends_with(&log_swap_suffix) {
            let next = scan_next_offset(path, *base)?;
            let (lo, hi) = range.unwrap_or((i64::MAX, i64::MIN));
            range = Some((lo.min(*base), hi.max(next)));
            swap_bases.insert(*base);
        }
    }
    if let Some((lo, hi)) = range {
        for (path, name) in list(dir)? {
            if name.ends_with(SWAP_SUFFIX) || !SEGMENT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                continue;
            }
            if let Some(b) = base_of(&name) {
                if (lo..hi).contains(&b) || swap_bases.contains(&b) {
                    info!(file = %path.display(), "removing segment file replaced by an interrupted clean");
                    remove_if_exists(&path)?;
                    changed = true;
                }
            }
        }
    }
    for (path, name, _) in committed {
        let final_name = name.trim_end_matches(SWAP_SUFFIX);
        let target = dir.join(final_name);
        info!(file = %path.display(), "completing interrupted segment swap");
        fs::rename(&path, &target).map_err(|e| StorageError::io(&path, "rename swap file", e))?;
        changed = true;
    }
    Ok(changed)
}
