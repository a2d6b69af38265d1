//! The broker's durability flusher: group commit across partitions.
//!
//! In durable mode (`flush.messages` = 1) an append reaches consumers and
//! acknowledgements only once an fsync has covered it. With one flusher per
//! partition, 1,000 active partitions meant 1,000 `fdatasync`s (each one an
//! inode write and a device cache flush) per round, and a task wake-up plus
//! a `spawn_blocking` per partition per batch. Here a partition that wants a
//! flush is queued once (a flag dedupes it); one blocking worker thread
//! takes the whole queue (at most [`MAX_PARTITIONS_PER_FLUSH`] per pass),
//! takes each partition's flush plan (the segments touched since its last
//! flush, and the offset they cover), makes them durable, then publishes
//! each partition's flushed offset (and with it the high watermark).
//!
//! How the files are made durable, per filesystem: fewer than
//! [`SYNCFS_MIN_FILES`] files are `fdatasync`ed one by one; more take one
//! `syncfs(2)` on that filesystem (all its dirty data and metadata written
//! and waited for, then one device cache flush), which on this machine's
//! ext4 made 1,000 files durable in ~15-30 ms against ~450 ms one by one
//! (BENCHMARKS.md, "Many partitions, durable"). The trade: `syncfs` also
//! writes whatever else is dirty on that filesystem. Only on filesystems
//! whose `syncfs` is known to make every file durable (ext4, XFS, Btrfs);
//! elsewhere (FUSE, NFS, overlayfs) each file is `fdatasync`ed.
//!
//! Each partition's segment layout is unchanged: this only decides when
//! and how its own segment files are synced. Page-cache mode
//! (`flush.messages` > 1, `flush.ms`) keeps the partition's own flusher
//! task (`Partition::run_flusher`), as does a follower's `flush_for_fetch`.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::broker::partition::Partition;
use crate::storage::log::FlushPlan;

/// Partitions one pass takes from the queue: the rest wait for the next
/// pass, so one pass's fsyncs, and the delay before its first partition's
/// acknowledgement, stay bounded however many partitions are dirty.
pub const MAX_PARTITIONS_PER_FLUSH: usize = 4096;

/// From this many files on one filesystem in a pass, one `syncfs(2)`
/// replaces their `fdatasync`s.
pub const SYNCFS_MIN_FILES: usize = 8;

/// The queue of partitions waiting for a flush and the worker serving it.
pub struct LogFlusher {
    queue: Mutex<VecDeque<Arc<Partition>>>,
    wake: Condvar,
    batch_limit: usize,
    /// The most partitions one pass has taken (never above the limit).
    largest_pass: AtomicUsize,
}

impl LogFlusher {
    /// The process's flusher; its worker thread starts on first use.
    pub fn global() -> &'static Arc<LogFlusher> {
        static GLOBAL: OnceLock<Arc<LogFlusher>> = OnceLock::new();
        GLOBAL.get_or_init(|| LogFlusher::start(MAX_PARTITIONS_PER_FLUSH))
    }

    /// A flusher with its own worker thread taking at most `batch_limit`
    /// partitions per pass. The thread lives as long as the process (an
    /// idle one waits on a condition variable).
    pub fn start(batch_limit: usize) -> Arc<LogFlusher> {
        let flusher = Arc::new(LogFlusher {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            batch_limit: batch_limit.max(1),
            largest_pass: AtomicUsize::new(0),
        });
        let worker = Arc::clone(&flusher);
        let spawned = std::thread::Builder::new()
            .name("kastle-log-flusher".into())
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            // Without the worker nothing durable would ever be
            // acknowledged: the broker cannot serve in durable mode.
            tracing::error!(error = %e, "cannot start the log flusher thread");
            std::process::abort();
        }
        flusher
    }

    /// Queues `p` for the next pass; the caller has set the partition's
    /// queued flag, so a partition is in the queue at most once.
    pub(crate) fn enqueue(&self, p: Arc<Partition>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.push_back(p);
        drop(q);
        self.wake.notify_one();
    }

    /// Partitions queued and not yet taken by a pass.
    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The most partitions one pass has taken so far.
    pub fn largest_pass(&self) -> usize {
        self.largest_pass.load(Ordering::Acquire)
    }

    fn run(&self) {
        loop {
            let batch: Vec<Arc<Partition>> = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.is_empty() {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                let n = q.len().min(self.batch_limit);
                q.drain(..n).collect()
            };
            self.largest_pass.fetch_max(batch.len(), Ordering::AcqRel);
            flush_pass(batch);
        }
    }
}

/// One pass: plans, syncs per filesystem, publishes.
fn flush_pass(batch: Vec<Arc<Partition>>) {
    let mut plans: Vec<(Arc<Partition>, FlushPlan)> = Vec::with_capacity(batch.len());
    for p in batch {
        // Cleared before the plan is taken: an append the plan misses
        // queues the partition again.
        p.clear_flush_queued();
        if let Some(plan) = p.flush_plan() {
            plans.push((p, plan));
        }
    }
    // Partitions by filesystem (device of the partition directory).
    let mut by_dev: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, (p, _)) in plans.iter().enumerate() {
        by_dev.entry(p.device()).or_default().push(i);
    }
    let mut results: Vec<Option<io::Error>> = (0..plans.len()).map(|_| None).collect();
    for members in by_dev.values() {
        let files: usize = members.iter().map(|&i| plans[i].1.files.len()).sum();
        let any = members
            .iter()
            .find_map(|&i| plans[i].1.files.first().cloned());
        let trusted = any
            .as_ref()
            .is_some_and(|f| syncfs_is_durable(f.as_raw_fd()));
        if files >= SYNCFS_MIN_FILES && trusted {
            if let Some(f) = any {
                if let Err(e) = syncfs(f.as_raw_fd()) {
                    for &i in members {
                        if !plans[i].1.files.is_empty() {
                            results[i] = Some(io::Error::new(e.kind(), e.to_string()));
                        }
                    }
                }
            }
        } else {
            for &i in members {
                if let Err(e) = plans[i].1.sync() {
                    results[i] = Some(e);
                }
            }
        }
    }
    for ((p, plan), err) in plans.into_iter().zip(results) {
        match err {
            None => p.flushed(plan.up_to),
            Some(e) => p.flush_failed(e),
        }
    }
}

/// Filesystems whose `syncfs` writes and waits for every dirty inode and
/// flushes the device, as `fdatasync` of each file would: ext2/3/4, XFS,
/// Btrfs. Elsewhere (FUSE, NFS, overlayfs, ...) what `syncfs` guarantees
/// is the filesystem's own business, so each file is `fdatasync`ed.
const SYNCFS_FILESYSTEMS: &[i64] = &[0xEF53, 0x5846_5342, 0x9123_683E];

fn syncfs_is_durable(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: fstatfs fills the struct it is given; the descriptor is
    // kept open by the caller.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatfs(fd, &mut st) };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64;
    rc == 0 && SYNCFS_FILESYSTEMS.contains(&magic)
}

/// `syncfs(2)` on the filesystem holding `fd`: every dirty page and inode
/// written and waited for, then the device's cache flushed. Errors from
/// writeback since the file was opened are reported (Linux ≥ 5.8).
fn syncfs(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller keeps open.
    let rc = unsafe { libc::syncfs(fd) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::broker::topic_config::TopicSettings;
    use crate::config::BrokerConfig;
    use crate::record::validator::{validate_produce_records, ValidationConfig};
    use crate::record::BatchBuilder;

    fn durable_partitions(
        dir: &std::path::Path,
        n: i32,
        flusher: &Arc<LogFlusher>,
    ) -> Vec<Arc<Partition>> {
        let (config, _) =
            BrokerConfig::from_entries(vec![("log.dirs".into(), dir.display().to_string())])
                .unwrap();
        let settings = TopicSettings::resolve(&BTreeMap::new(), &config);
        assert!(settings.durable, "flush.messages=1 is the default");
        (0..n)
            .map(|i| {
                let p = Partition::open(
                    Arc::from("t"),
                    i,
                    &dir.join(format!("t-{i}")),
                    settings.clone(),
                    None,
                )
                .unwrap();
                p.use_log_flusher(Arc::clone(flusher));
                p
            })
            .collect()
    }

    fn append_one(p: &Partition) -> i64 {
        let bytes = BatchBuilder::new(1_700_000_000_000)
            .push(Some(b"k"), Some(b"v"), &[], 1_700_000_000_000)
            .build()
            .to_vec();
        let v = validate_produce_records(&bytes, 1_700_000_000_000, &ValidationConfig::default())
            .unwrap();
        p.append(&bytes, &v).unwrap().last_offset + 1
    }

    /// Every queued partition is flushed and acknowledged though a pass
    /// takes at most `MAX_PARTITIONS_PER_FLUSH` (here a flusher limited to
    /// 2): the rest wait for later passes, and none is left behind.
    #[tokio::test]
    async fn a_pass_takes_at_most_its_limit_and_every_partition_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = LogFlusher::start(2);
        let parts = durable_partitions(dir.path(), 7, &flusher);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for round in 1..=3 {
            let ends: Vec<i64> = parts.iter().map(|p| append_one(p)).collect();
            for (p, end) in parts.iter().zip(ends) {
                assert_eq!(end, round);
                p.wait_for_high_watermark(end, deadline).await.unwrap();
                assert_eq!(p.state().local_end, end);
            }
        }
        assert!(flusher.largest_pass() >= 1);
        assert!(flusher.largest_pass() <= 2, "{}", flusher.largest_pass());
        assert_eq!(flusher.queued(), 0);
    }

    /// Enough dirty files on one filesystem take the `syncfs` path; the
    /// high watermarks move as with `fdatasync`, and a closed partition in
    /// the queue is skipped.
    #[tokio::test]
    async fn many_partitions_flush_through_syncfs() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = LogFlusher::start(MAX_PARTITIONS_PER_FLUSH);
        let n = (SYNCFS_MIN_FILES * 2) as i32;
        let parts = durable_partitions(dir.path(), n, &flusher);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let ends: Vec<i64> = parts.iter().map(|p| append_one(p)).collect();
        parts[0].close().unwrap();
        for (p, end) in parts.iter().zip(ends).skip(1) {
            p.wait_for_high_watermark(end, deadline).await.unwrap();
            assert_eq!(p.state().high_watermark, 1);
        }
        assert_eq!(flusher.queued(), 0);
    }
}
