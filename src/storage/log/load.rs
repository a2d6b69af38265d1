//! Loading a partition log (Kafka's `LogLoader`): finish or discard an
//! interrupted swap, remove leftovers and orphaned indexes, open every
//! segment (sanity-checking or rebuilding its indexes) and, after an
//! unclean shutdown, recover the active segment.

use std::fs;
use std::path::Path;

use tracing::{info, warn};

use crate::storage::config::LogConfig;
use crate::storage::error::StorageError;
use crate::storage::leader_epoch::LeaderEpochFileCache;
use crate::storage::segment::{
    parse_base_offset, LogSegment, INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX,
};
use crate::storage::swap::{self, CLEANED_SUFFIX, DELETED_SUFFIX, SWAP_SUFFIX};
use crate::util::now_ms;

use super::{fsync_dir, Log};

impl Log {
    /// Loads (or creates) the partition log in `dir`; when `needs_recovery`
    /// (unclean shutdown) with no known recovery point: see [`Log::load`].
    pub fn open(dir: &Path, config: LogConfig, needs_recovery: bool) -> Result<Log, StorageError> {
        Self::load(dir, config, needs_recovery.then_some(0))
    }

    /// Loads (or creates) the partition log in `dir`. Leftover `.deleted`,
    /// `.cleaned`, `.swap` and temp files are removed, as are index files
    /// without a `.log`. Every sealed segment's indexes are sanity-checked
    /// and rebuilt if missing or bad (sealed segments were fsynced at roll).
    /// `recovery_point` is `None` after a clean shutdown; after an unclean
    /// one it is Kafka's recovery point (offsets below it were fsynced; 0
    /// when unknown) and the active segment is scanned from the last indexed
    /// batch below it (from its start if the point is not inside it) and
    /// cut at the first invalid batch.
    pub fn load(
        dir: &Path,
        config: LogConfig,
        recovery_point: Option<i64>,
    ) -> Result<Log, StorageError> {
        config.validate()?;
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, "create log directory", e))?;
        let now = now_ms();
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        // Finish (or discard) a compaction swap a crash interrupted, as
        // Kafka's LogLoader does, before the segments are listed.
        let mut removed_any = swap::complete_interrupted_swaps(dir)?;
        let entries =
            fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list log directory", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir, "list log directory", e))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if name.ends_with(DELETED_SUFFIX)
                || name.ends_with(CLEANED_SUFFIX)
                || name.ends_with(SWAP_SUFFIX)
                || name.ends_with(".tmp")
            {
                // complete_interrupted_swaps already handled these; what
                // is left appeared since and is garbage.
                warn!(file = %path.display(), "removing leftover file");
                fs::remove_file(&path)
                    .map_err(|e| StorageError::io(&path, "remove leftover", e))?;
                removed_any = true;
            } else if let Some(stem) = name.strip_suffix(LOG_FILE_SUFFIX) {
                if let Some(base) = parse_base_offset(stem) {
                    bases.push(base);
                }
            } else if let Some(stem) = name
                .strip_suffix(INDEX_FILE_SUFFIX)
                .or_else(|| name.strip_suffix(TIME_INDEX_FILE_SUFFIX))
            {
                if let Some(base) = parse_base_offset(stem) {
                    index_files.push((base, path));
                }
            }
        }
        bases.sort_unstable();
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                warn!(file = %path.display(), "removing orphaned index file");
                fs::remove_file(&path)
                    .map_err(|e| StorageError::io(&path, "remove orphan index", e))?;
                removed_any = true;
            }
        }

        let mut segments = Vec::with_capacity(bases.len().max(1));
        let mut recovered = None;
        for (i, &base) in bases.iter().enumerate() {
            if let (Some(point), true) = (recovery_point, i + 1 == bases.len()) {
                // The active segment: one recovery scan, no index check
                // first, from the recovery point when it lies inside.
                let (seg, truncated, scanned) =
                    LogSegment::open_and_recover(dir, base, &config, now, point)?;
                recovered = Some((truncated, scanned));
                segments.push(seg);
            } else {
                segments.push(LogSegment::open(dir, base, &config, now)?);
            }
        }
        let mut created = false;
        if segments.is_empty() {
            segments.push(LogSegment::create(dir, 0, &config, now)?);
            created = true;
        }
        let last = segments.len() - 1;
        for seg in &mut segments[..last] {
            // No-op for segments sealed cleanly; trims rebuilt ones.
            seg.on_become_inactive()?;
        }
        let active = &mut segments[last];
        if let Some((truncated, scanned)) = recovered {
            info!(dir = %dir.display(), truncated, scanned, recovery_point, log_end_offset = active.next_offset(), "recovered active segment");
        }
        active.make_active()?;
        if created || removed_any {
            fsync_dir(dir)?;
        }
        let log_start_offset = segments[0].base_offset();
        let log_end_offset = segments[last].next_offset();
        // After a crash, what recovery kept past the recovery point may
        // still be only in the page cache: it is not durable until the next
        // flush (Kafka keeps the old recovery point too).
        let flushed_offset = match recovery_point {
            None => log_end_offset,
            Some(point) => point.min(log_end_offset).max(segments[last].base_offset()),
        };
        // The checkpoint never misses an epoch the log has (it is written
        // before the batch starting the epoch), but may hold entries that
        // recovery or an interrupted truncation cut off: Kafka's loader
        // truncates it to the log the same way.
        let mut epochs = LeaderEpochFileCache::load(dir)?;
        epochs.truncate_from_start(log_start_offset)?;
        epochs.truncate_from_end_in_memory(log_end_offset);
        let log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            flushed_offset,
            epochs,
            scrub: Default::default(),
            #[cfg(test)]
            crash_after_steps: None,
        };
        // Sealed segments are verified once, in the background.
        crate::storage::scrubber::submit(log.scrub_jobs());
        Ok(log)
    }
}
