//! Background log maintenance (Kafka's `LogManager` scheduled tasks plus the
//! `LogCleaner` thread and `LogCleanerManager` bookkeeping):
//!
//! - **retention**, every `log.retention.check.interval.ms`: each partition
//!   deletes the segments retention allows (`Partition::delete_old_segments`);
//! - **deletion** of the `.deleted` files retention and compaction leave,
//!   `file.delete.delay.ms` later (in-flight fetches keep their open handles
//!   meanwhile, and a restart removes leftovers);
//! - **the cleaner**: picks the compacted partition with the highest dirty
//!   ratio above its `min.cleanable.dirty.ratio` (or past
//!   `max.compaction.lag.ms`), cleans it on a blocking thread
//!   (`storage::cleaner::clean`), persists its first dirty offset in the
//!   partition's `cleaner-offset-checkpoint`, and backs off
//!   `log.cleaner.backoff.ms` when nothing was cleanable. A round that
//!   fails on bad data (a batch failing its CRC) marks the partition
//!   uncleanable as Kafka's `LogCleanerManager` does ([`UncleanablePartitions`]);
//!   one that fails on a failed disk takes the log directory offline
//!   ([`crate::broker::log_dir_failure`]). Its settings
//!   (backoff, I/O rate, dedupe buffer) are read from the current broker
//!   configuration every round, so dynamic broker configs apply at once.
//!
//! Everything stops when the broker begins shutting down; a round cut short
//! leaves only `.cleaned` files, which the next open discards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::broker::log_dir_failure;
use crate::broker::partition::{CleanerView, Partition};
use crate::broker::topic_config::TopicSettings;
use crate::broker::ReplicaManager;
use crate::storage::cleaner::{self, CleanError, CleanTask, OffsetMap, Throttler};
use crate::util::fs::write_atomically;
use crate::util::now_ms;

/// Kafka's checkpoint file name; kastle keeps one per partition directory
/// (same line format: version, count, `topic partition offset`), so it goes
/// with the partition when the topic is deleted.
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// How long a partition whose cleaning met an I/O error that is no failed
/// disk (ENOSPC, EDQUOT, a file gone) is skipped: kastle recovers from a
/// full disk, so this is not final (Kafka would take the log directory
/// offline).
const NO_SPACE_BACKOFF: Duration = Duration::from_secs(600);

/// Kafka's `LogCleanerManager` uncleanable partitions: those whose cleaning
/// failed on bad data (a batch failing its CRC, malformed records). They
/// stay uncleanable until the broker restarts or the partition is deleted;
/// everything else keeps being cleaned and the partition keeps serving.
/// Bounded by the partitions on the broker.
#[derive(Default)]
pub struct UncleanablePartitions {
    partitions: Mutex<Vec<Weak<Partition>>>,
}

impl UncleanablePartitions {
    fn mark(&self, p: &Arc<Partition>) {
        let mut g = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if !g.iter().any(|w| w.as_ptr() == Arc::as_ptr(p)) {
            g.push(Arc::downgrade(p));
        }
    }

    fn contains(&self, p: &Arc<Partition>) -> bool {
        let g = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().any(|w| w.as_ptr() == Arc::as_ptr(p))
    }

    /// Kafka's `maintainUncleanablePartitions`: deleted partitions drop out.
    fn maintain(&self, live: &[Arc<Partition>]) {
        let mut g = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        g.retain(|w| live.iter().any(|p| w.as_ptr() == Arc::as_ptr(p)));
    }

    /// The uncleanable partitions still open.
    pub fn list(&self) -> Vec<Arc<Partition>> {
        let g = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().filter_map(Weak::upgrade).collect()
    }

    /// Kafka's `uncleanable-bytes`: the cleanable bytes of the uncleanable
    /// partitions (what cleaning would have covered).
    pub fn uncleanable_bytes(&self, now_ms: i64) -> u64 {
        self.list()
            .iter()
            .filter_map(|p| {
                let view = p.cleaner_view()?;
                let c = cleanable_section(&view, read_checkpoint(p.dir()), &p.settings(), now_ms);
                Some(c.cleanable_bytes)
            })
            .sum()
    }
}

/// Starts the retention and cleaner tasks; they end when shutdown begins.
pub fn start(broker: &Arc<ReplicaManager>) {
    tokio::spawn(run_retention(broker.clone()));
    if broker.config.boolean("log.cleaner.enable") {
        tokio::spawn(run_cleaner(broker.clone()));
    } else {
        tracing::info!("log cleaner disabled (log.cleaner.enable=false)");
    }
}

/// Removes `files` after `delay_ms`, off the async threads.
fn schedule_delete(handle: &tokio::runtime::Handle, files: Vec<PathBuf>, delay_ms: i64) {
    if files.is_empty() {
        return;
    }
    let delay = Duration::from_millis(delay_ms.max(0) as u64);
    handle.spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = tokio::task::spawn_blocking(move || {
            for f in files {
                match std::fs::remove_file(&f) {
                    Ok(()) => tracing::debug!(file = %f.display(), "deleted segment file"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(file = %f.display(), error = %e, "could not delete segment file"),
                }
            }
        })
        .await;
    });
}

fn partitions(broker: &ReplicaManager) -> Vec<Arc<Partition>> {
    broker
        .topics
        .list()
        .iter()
        .flat_map(|t| t.partitions.iter().cloned())
        .collect()
}

async fn run_retention(broker: Arc<ReplicaManager>) {
    let interval =
        Duration::from_millis(broker.config.int("log.retention.check.interval.ms").max(1) as u64);
    loop {
        tokio::select! {
            _ = broker.stopping() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let b = broker.clone();
        let handle = tokio::runtime::Handle::current();
        // Renames and directory fsyncs: blocking work, off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for p in partitions(&b) {
                match p.delete_old_segments(now) {
                    Ok(files) if !files.is_empty() => {
                        tracing::info!(topic = %p.topic, partition = p.index, files = files.len(), log_start_offset = p.state().log_start_offset, "retention deleted segments");
                        schedule_delete(&handle, files, p.settings().file_delete_delay_ms);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "retention skipped partition");
                    }
                }
            }
        })
        .await;
    }
}

/// The cleanable section of one log (Kafka's `LogToClean` and
/// `LogCleanerManager.cleanableOffsets`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    pub first_dirty_offset: i64,
    pub first_uncleanable_offset: i64,
    pub clean_bytes: u64,
    pub cleanable_bytes: u64,
    pub ratio: f64,
    /// Past `max.compaction.lag.ms`: clean whatever the ratio.
    pub need_compaction_now: bool,
}

impl Cleanable {
    /// Kafka's `grabFilthiestCompactedLog` filter (the ratio must exceed the minimum).
    pub fn eligible(&self, min_ratio: f64) -> bool {
        self.clean_bytes + self.cleanable_bytes > 0
            && ((self.need_compaction_now && self.cleanable_bytes > 0) || self.ratio > min_ratio)
    }
}

/// Sizes of the segments overlapping `[from, to)` the way Kafka's
/// `logSegments(from, to)` counts them (the segment containing `from` too).
fn bytes_between(view: &CleanerView, from: i64, to: i64) -> u64 {
    if from >= to {
        return 0;
    }
    let floor = view.segments.iter().rposition(|s| s.base_offset <= from);
    view.segments
        .iter()
        .enumerate()
        .filter(|(i, s)| s.base_offset < to && (s.base_offset >= from || Some(*i) == floor))
        .map(|(_, s)| s.size)
        .sum()
}

pub fn cleanable_section(
    view: &CleanerView,
    checkpoint: Option<i64>,
    settings: &TopicSettings,
    now_ms: i64,
) -> Cleanable {
    let first_dirty = match checkpoint {
        Some(cp) if cp >= view.log_start_offset && cp <= view.log_end_offset => cp,
        _ => view.log_start_offset,
    };
    // Dirty non-active segments: from the one holding the first dirty offset.
    let dirty_from = view
        .segments
        .iter()
        .rposition(|s| s.base_offset <= first_dirty)
        .unwrap_or(0);
    let dirty = &view.segments[dirty_from.min(view.segments.len())..];
    let mut uncleanable = view
        .active_base_offset
        .min(view.high_watermark)
        .min(view.first_unstable_offset.unwrap_or(i64::MAX));
    if settings.min_compaction_lag_ms > 0 {
        let horizon = now_ms.saturating_sub(settings.min_compaction_lag_ms);
        if let Some(s) = dirty.iter().find(|s| s.largest_timestamp > horizon) {
            uncleanable = uncleanable.min(s.base_offset);
        }
    }
    // Segment-aligned, as Kafka's calculateCleanableBytes.
    let first_uncleanable = if uncleanable >= view.active_base_offset {
        view.active_base_offset
    } else {
        view.segments
            .iter()
            .rev()
            .find(|s| s.base_offset <= uncleanable)
            .or(view.segments.first())
            .map_or(view.active_base_offset, |s| s.base_offset)
    };
    let clean_bytes: u64 = view
        .segments
        .iter()
        .filter(|s| s.base_offset < first_dirty)
        .map(|s| s.size)
        .sum();
    let cleanable_bytes =
        bytes_between(view, first_dirty.min(first_uncleanable), first_uncleanable);
    let total = clean_bytes + cleanable_bytes;
    let ratio = if total == 0 {
        0.0
    } else {
        cleanable_bytes as f64 / total as f64
    };
    let earliest_dirty = dirty
        .iter()
        .filter_map(|s| s.first_batch_timestamp)
        .filter(|&t| t > 0)
        .min();
    let clean_until = now_ms.saturating_sub(settings.max_compaction_lag_ms.max(0));
    Cleanable {
        first_dirty_offset: first_dirty,
        first_uncleanable_offset: first_uncleanable,
        clean_bytes,
        cleanable_bytes,
        ratio,
        need_compaction_now: earliest_dirty.is_some_and(|t| t < clean_until),
    }
}

fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CLEANER_CHECKPOINT_FILE)
}

/// Reads a partition's cleaner checkpoint; `None` if absent or unreadable.
pub fn read_checkpoint(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(checkpoint_path(dir)).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    if count == 0 {
        return None;
    }
    lines
        .next()?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
        .filter(|v: &i64| *v >= 0)
}

fn write_checkpoint(p: &Partition, offset: i64) -> std::io::Result<()> {
    let text = format!("0\n1\n{} {} {offset}\n", p.topic, p.index);
    write_atomically(&checkpoint_path(p.dir()), text.as_bytes())
}

struct CleanerState {
    throttler: Throttler,
    /// The rate `throttler` was built for.
    rate: f64,
    dedupe_buffer_size: usize,
    stop: Arc<AtomicBool>,
    /// Partitions skipped after a full disk, until the instant.
    no_space: HashMap<PathBuf, Instant>,
}

async fn run_cleaner(broker: Arc<ReplicaManager>) {
    let rate = broker
        .current_config()
        .double("log.cleaner.io.max.bytes.per.second");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (b, stop) = (broker.clone(), stop.clone());
        tokio::spawn(async move {
            b.stopping().await;
            stop.store(true, Ordering::Relaxed);
        });
    }
    let mut state = Some(CleanerState {
        throttler: Throttler::new(rate),
        rate,
        dedupe_buffer_size: 1,
        stop: stop.clone(),
        no_space: HashMap::new(),
    });
    while !stop.load(Ordering::Relaxed) {
        let Some(mut st) = state.take() else { return };
        let config = broker.current_config();
        let rate = config.double("log.cleaner.io.max.bytes.per.second");
        if rate != st.rate {
            st.throttler = Throttler::new(rate);
            st.rate = rate;
        }
        st.dedupe_buffer_size = config.int("log.cleaner.dedupe.buffer.size").max(1) as usize;
        let backoff = Duration::from_millis(config.int("log.cleaner.backoff.ms").max(0) as u64);
        let b = broker.clone();
        let handle = tokio::runtime::Handle::current();
        let joined = tokio::task::spawn_blocking(move || {
            let cleaned = clean_filthiest(&b, &mut st, &handle);
            (st, cleaned)
        })
        .await;
        let cleaned = match joined {
            Ok((st, cleaned)) => {
                state = Some(st);
                cleaned
            }
            Err(e) => {
                tracing::error!(error = %e, "log cleaner thread failed; cleaning stops");
                return;
            }
        };
        if !cleaned {
            tokio::select! {
                _ = broker.stopping() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }
}

/// One `tryCleanFilthiestLog`: true if a log was cleaned.
fn clean_filthiest(
    broker: &ReplicaManager,
    st: &mut CleanerState,
    handle: &tokio::runtime::Handle,
) -> bool {
    let now = now_ms();
    st.no_space.retain(|_, until| *until > Instant::now());
    let live = partitions(broker);
    broker.uncleanable.maintain(&live);
    let mut best: Option<(Arc<Partition>, CleanerView, Cleanable, Arc<TopicSettings>)> = None;
    for p in live {
        let settings = p.settings();
        if !settings.compacted
            || st.no_space.contains_key(p.dir())
            || broker.uncleanable.contains(&p)
        {
            continue;
        }
        let Some(view) = p.cleaner_view() else {
            continue;
        };
        let c = cleanable_section(&view, read_checkpoint(p.dir()), &settings, now);
        if !c.eligible(settings.min_cleanable_dirty_ratio) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, _, b, _)| c.ratio > b.ratio) {
            best = Some((p, view, c, settings));
        }
    }
    let Some((p, view, c, settings)) = best else {
        return false;
    };
    let task = CleanTask {
        dir: p.dir().to_path_buf(),
        segments: view.segments,
        first_dirty_offset: c.first_dirty_offset,
        first_uncleanable_offset: c.first_uncleanable_offset,
        segment_bytes: view.config.segment_bytes,
        segment_index_bytes: view.config.segment_index_bytes,
        index_interval_bytes: view.config.index_interval_bytes,
        delete_retention_ms: settings.delete_retention_ms,
        now_ms: now,
        producer_last_offsets: view.producer_last_offsets,
        scrub: view.scrub,
    };
    let mut map = OffsetMap::with_buffer_size(st.dedupe_buffer_size);
    let started = Instant::now();
    let partition = p.clone();
    let mut swap = move |replaced: &[(i64, u64)]| partition.install_cleaned(replaced);
    match cleaner::clean(&task, &mut map, &mut st.throttler, &st.stop, &mut swap) {
        Ok(res) => {
            if let Err(e) = write_checkpoint(&p, res.end_offset) {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "writing the cleaner checkpoint failed");
            }
            tracing::info!(
                topic = %p.topic,
                partition = p.index,
                dirty_ratio = c.ratio,
                first_dirty_offset = c.first_dirty_offset,
                end_offset = res.end_offset,
                keys = map.len(),
                groups = res.groups_swapped,
                records_removed = res.records_removed,
                bytes_read = res.bytes_read,
                bytes_written = res.bytes_written,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cleaned log"
            );
            schedule_delete(handle, res.deleted_files, settings.file_delete_delay_ms);
            true
        }
        Err(CleanError::Aborted) => {
            tracing::debug!(topic = %p.topic, partition = p.index, "cleaning aborted");
            false
        }
        Err(e) => {
            let log_dir = log_dir_failure::log_dir_of(p.dir());
            match e.io_error() {
                // Kafka's `cleanLog`: an IOException takes the directory offline.
                Some(io)
                    if log_dir_failure::maybe_add_offline_log_dir(
                        log_dir,
                        &format!(
                            "Failed to clean up log for {}-{} in dir {} due to IOException",
                            p.topic,
                            p.index,
                            log_dir.display()
                        ),
                        io,
                    ) => {}
                Some(_) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cleaning failed on an I/O error; skipping this partition for a while");
                    st.no_space
                        .insert(p.dir().to_path_buf(), Instant::now() + NO_SPACE_BACKOFF);
                }
                None => {
                    tracing::warn!(
                        topic = %p.topic,
                        partition = p.index,
                        log_dir = %log_dir.display(),
                        error = %e,
                        "Unexpected exception thrown when cleaning log {}. Marking its partition ({}-{}) as uncleanable",
                        p.dir().display(),
                        p.topic,
                        p.index
                    );
                    broker.uncleanable.mark(&p);
                }
            }
            false
        }
    }
}
