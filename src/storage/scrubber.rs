//! LogScrubber: after start-up, one background thread reads every sealed
//! segment once, rate-limited, and verifies each batch (v2 header sizes,
//! magic, offsets increasing and inside the segment, CRC-32C over the
//! batch). The first bad batch of a partition is recorded in its log's
//! [`ScrubState`]; from then on `Log::read_plan` serves only the batches
//! before it, and a fetch at or past it (inside that segment) fails with
//! CORRUPT_MESSAGE, the error a Kafka consumer turns into "Encountered
//! corrupt message when fetching offset ..." (its `check.crcs` would have
//! refused the bytes anyway). A log line names the file and position, and
//! `kastle_log_corrupt_segments_total` counts the segments found corrupt.
//!
//! Why a scrubber: Kafka verifies CRCs only when recovering unflushed
//! segments, and kastle serves sealed segments zero-copy (sendfile), so a
//! byte flipped on disk would otherwise reach consumers as is. Scanning
//! once in the background keeps fetches zero-copy; the active segment is
//! covered by recovery after an unclean shutdown. Until the scrubber has
//! reached a segment, its bytes are served unverified.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tracing::{debug, error, warn};

use crate::record::batch::MIN_BATCH_LENGTH;
use crate::record::{verify_crc, BatchHeader, RECORD_BATCH_OVERHEAD};

/// Disk read rate of the scrubber: start-up I/O must not starve appends
/// and fetches (a 1 TiB log directory takes about 9 hours).
const SCRUB_BYTES_PER_SEC: u64 = 32 << 20;
/// Bytes read per pread.
const SCRUB_CHUNK: usize = 1 << 20;

/// Segments found corrupt since the process started (the metric).
static CORRUPT_SEGMENTS: AtomicU64 = AtomicU64::new(0);

/// `kastle_log_corrupt_segments_total`.
pub fn corrupt_segments_total() -> u64 {
    CORRUPT_SEGMENTS.load(Ordering::Relaxed)
}

/// The first corrupt batch found in a partition's log.
#[derive(Debug, Clone)]
pub struct CorruptBatch {
    /// The segment's file: the record applies to that file only, so a
    /// segment deleted by retention (or replaced by the cleaner) is no
    /// longer fenced.
    pub file: Weak<File>,
    pub path: PathBuf,
    pub segment_base: i64,
    /// Byte position of the corrupt batch in the segment file.
    pub position: u64,
    /// First offset that cannot be served: the one after the last good
    /// batch (the corrupt header's own offsets cannot be trusted).
    pub offset: i64,
}

/// What the scrubber learned about one log, shared with `Log::read_plan`.
#[derive(Debug, Default)]
pub struct ScrubState {
    /// Fast path for fetches: false until something is found.
    any: AtomicBool,
    corrupt: Mutex<Option<CorruptBatch>>,
}

impl ScrubState {
    /// The corrupt batch inside `file`'s segment, if the scrubber found one.
    pub fn corrupt_in(&self, file: &Arc<File>) -> Option<CorruptBatch> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let guard = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|c| std::ptr::eq(c.file.as_ptr(), Arc::as_ptr(file)))
            .cloned()
    }

    /// Drops the record of `file`'s segment (it was cut and rescanned).
    pub fn forget(&self, file: &Arc<File>) {
        let mut guard = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
        if guard
            .as_ref()
            .is_some_and(|c| std::ptr::eq(c.file.as_ptr(), Arc::as_ptr(file)))
        {
            *guard = None;
            self.any.store(false, Ordering::Release);
        }
    }

    /// A corrupt batch found by another reader of sealed segments (the log
    /// cleaner's CRC check): fenced as the scrubber's finding would be, and
    /// counted in `kastle_log_corrupt_segments_total` unless that segment
    /// was already known corrupt. True if it was news.
    pub fn report(&self, c: CorruptBatch) -> bool {
        if let Some(file) = c.file.upgrade() {
            if self.corrupt_in(&file).is_some() {
                return false;
            }
        }
        CORRUPT_SEGMENTS.fetch_add(1, Ordering::Relaxed);
        self.record(c);
        true
    }

    /// Records `c` unless an earlier segment is already known corrupt.
    fn record(&self, c: CorruptBatch) {
        let mut guard = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
        let replace = match guard.as_ref() {
            None => true,
            Some(old) => old.file.strong_count() == 0 || c.segment_base < old.segment_base,
        };
        if replace {
            *guard = Some(c);
            self.any.store(true, Ordering::Release);
        }
    }
}

/// One sealed segment to verify (weak handles: a segment retention deletes
/// meanwhile is skipped, and keeps no descriptor open while queued).
#[derive(Debug, Clone)]
pub struct ScrubJob {
    pub state: Weak<ScrubState>,
    pub file: Weak<File>,
    pub path: PathBuf,
    pub base_offset: i64,
    /// Bytes of whole batches (the segment's size when queued).
    pub size: u64,
    /// Offset after the segment's last batch.
    pub next_offset: i64,
}

struct Queue {
    jobs: Mutex<VecDeque<Vec<ScrubJob>>>,
    ready: Condvar,
}

fn queue() -> &'static Arc<Queue> {
    static QUEUE: OnceLock<Arc<Queue>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let q = Arc::new(Queue {
            jobs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        });
        let worker = Arc::clone(&q);
        let spawned = std::thread::Builder::new()
            .name("log-scrubber".into())
            .spawn(move || run(&worker));
        if let Err(e) = spawned {
            warn!(error = %e, "could not start the log scrubber; sealed segments go unverified");
        }
        q
    })
}

/// Queues one log's sealed segments, oldest first; they are verified in
/// order and the scan of the log stops at its first corrupt segment.
pub fn submit(jobs: Vec<ScrubJob>) {
    if jobs.is_empty() {
        return;
    }
    let q = queue();
    q.jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_back(jobs);
    q.ready.notify_one();
}

fn run(q: &Queue) {
    let mut pacer = Pacer::new(SCRUB_BYTES_PER_SEC);
    loop {
        let log = {
            let mut jobs = q.jobs.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(j) = jobs.pop_front() {
                    break j;
                }
                jobs = q.ready.wait(jobs).unwrap_or_else(|p| p.into_inner());
            }
        };
        scrub_log(&log, &mut pacer);
    }
}

/// Verifies one log's segments in order, stopping at the first corrupt
/// one, which is logged, counted and recorded in the log's state.
fn scrub_log(jobs: &[ScrubJob], pacer: &mut Pacer) {
    for job in jobs {
        if let Some(c) = scrub_segment(job, pacer) {
            CORRUPT_SEGMENTS.fetch_add(1, Ordering::Relaxed);
            error!(
                segment = %c.path.display(),
                position = c.position,
                offset = c.offset,
                "corrupt record batch in a sealed segment: fetches are served up to offset {} and answered CORRUPT_MESSAGE from there to the segment's end",
                c.offset
            );
            if let Some(state) = job.state.upgrade() {
                state.record(c);
            }
            return;
        }
    }
}

/// Tests: scrub now, on the calling thread, unthrottled.
#[cfg(test)]
pub(crate) fn scrub_now(jobs: &[ScrubJob]) {
    scrub_log(jobs, &mut Pacer::new(u64::MAX));
}

/// Verifies one segment; `Some` names its first bad batch. A segment gone
/// meanwhile, or an I/O error, is skipped (logged), not called corrupt.
fn scrub_segment(job: &ScrubJob, pacer: &mut Pacer) -> Option<CorruptBatch> {
    let (Some(_), Some(file)) = (job.state.upgrade(), job.file.upgrade()) else {
        return None;
    };
    let bad = |position: u64, offset: i64, reason: String| {
        warn!(segment = %job.path.display(), position, offset, %reason, "scrubber: invalid batch");
        Some(CorruptBatch {
            file: Arc::downgrade(&file),
            path: job.path.clone(),
            segment_base: job.base_offset,
            position,
            offset,
        })
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64;
    let mut pos = 0u64;
    let mut expected = job.base_offset;
    while pos < job.size {
        let remaining = job.size - pos;
        if remaining < RECORD_BATCH_OVERHEAD as u64 {
            return bad(pos, expected, format!("{remaining} trailing bytes"));
        }
        // Refill so that at least the header is buffered.
        if pos + RECORD_BATCH_OVERHEAD as u64 > buf_start + buf.len() as u64 || pos < buf_start {
            if let Err(e) = fill(
                &file,
                &mut buf,
                &mut buf_start,
                pos,
                job.size,
                RECORD_BATCH_OVERHEAD,
                pacer,
            ) {
                debug!(segment = %job.path.display(), error = %e, "scrubber skips a segment it cannot read");
                return None;
            }
        }
        let at = (pos - buf_start) as usize;
        let h = match BatchHeader::parse(&buf[at..at + RECORD_BATCH_OVERHEAD]) {
            Ok(h) => h,
            Err(e) => return bad(pos, expected, e.to_string()),
        };
        let total = h.total_size() as u64;
        if h.batch_length < MIN_BATCH_LENGTH
            || h.magic != 2
            || total > remaining
            || h.last_offset_delta < 0
            || h.base_offset < expected
            || h.last_offset() >= job.next_offset
        {
            return bad(pos, expected, format!("implausible batch header {h:?}"));
        }
        let need = total as usize;
        if pos + total > buf_start + buf.len() as u64 {
            if let Err(e) = fill(&file, &mut buf, &mut buf_start, pos, job.size, need, pacer) {
                debug!(segment = %job.path.display(), error = %e, "scrubber skips a segment it cannot read");
                return None;
            }
        }
        let at = (pos - buf_start) as usize;
        if !verify_crc(&buf[at..at + need]) {
            return bad(
                pos,
                expected,
                format!("CRC-32C mismatch in the batch at offset {}", h.base_offset),
            );
        }
        expected = h.next_offset();
        pos += total;
    }
    None
}

/// Reads at least `need` bytes at `pos` (up to a chunk, never past `size`).
fn fill(
    file: &File,
    buf: &mut Vec<u8>,
    buf_start: &mut u64,
    pos: u64,
    size: u64,
    need: usize,
    pacer: &mut Pacer,
) -> std::io::Result<()> {
    let want = need.max(SCRUB_CHUNK).min((size - pos) as usize);
    buf.resize(want, 0);
    pacer.acquire(want);
    file.read_exact_at(buf, pos)?;
    *buf_start = pos;
    Ok(())
}

/// Keeps the scrubber's reads under its byte rate.
struct Pacer {
    bytes_per_sec: u64,
    window_start: Instant,
    window_bytes: u64,
}

impl Pacer {
    fn new(bytes_per_sec: u64) -> Self {
        Pacer {
            bytes_per_sec,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    fn acquire(&mut self, n: usize) {
        self.window_bytes += n as u64;
        let due = Duration::from_secs_f64(self.window_bytes as f64 / self.bytes_per_sec as f64);
        let elapsed = self.window_start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        if self.window_start.elapsed() > Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
    }
}
