//! Retention decisions: which of a log's oldest segments Kafka's
//! `UnifiedLog.deleteOldSegments` would delete. Kept as pure functions over
//! segment summaries so the rules can be tested without files; `Log` applies
//! the answer (`Log::delete_old_segments`) under the partition lock.
//!
//! Kafka 4.x rules followed here:
//! - three passes in order: log-start-offset breach (always), then
//!   `retention.bytes` and `retention.ms` (only with `cleanup.policy`
//!   containing `delete`); each pass extends the prefix of deletable
//!   segments left by the previous one;
//! - a segment is deletable only while the high watermark has reached the
//!   next segment's base (or the log end for the last segment), so the log
//!   start offset never passes the high watermark;
//! - the last segment is deletable when non-empty (the log then rolls a new
//!   empty active segment first), never when it is empty;
//! - `retention.ms` compares `now - segment.largestTimestamp` (max batch
//!   timestamp, or file mtime without timestamps) strictly against the limit;
//! - `retention.bytes` deletes from the oldest while the log size minus the
//!   segment's size stays at or above the limit.

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    pub size: u64,
    /// Kafka's `largestTimestamp`.
    pub largest_timestamp: i64,
}

/// The topic settings retention obeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `cleanup.policy` contains `delete`.
    pub delete: bool,
    /// `retention.ms`; negative means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`; negative means unlimited.
    pub retention_bytes: i64,
}

/// Extends the deletable prefix from `from` while `predicate` holds, with
/// Kafka's high-watermark and empty-last-segment guards.
fn extend_prefix(
    segs: &[SegmentInfo],
    from: usize,
    log_end: i64,
    high_watermark: i64,
    mut predicate: impl FnMut(&SegmentInfo, Option<&SegmentInfo>) -> bool,
) -> usize {
    let mut i = from;
    while i < segs.len() {
        let next = segs.get(i + 1);
        let last_and_empty = next.is_none() && segs[i].size == 0;
        let upper_bound = next.map_or(log_end, |n| n.base_offset);
        if high_watermark >= upper_bound && predicate(&segs[i], next) && !last_and_empty {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// How many of the oldest segments (`segs`, oldest first, the active one
/// last) retention deletes now.
pub fn deletable_segment_count(
    segs: &[SegmentInfo],
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    policy: &RetentionPolicy,
    now_ms: i64,
) -> usize {
    // DeleteRecords (or a checkpoint) moved the start past whole segments.
    let mut n = extend_prefix(segs, 0, log_end_offset, high_watermark, |_, next| {
        next.is_some_and(|s| s.base_offset <= log_start_offset)
    });
    if !policy.delete {
        return n;
    }
    if policy.retention_bytes >= 0 {
        let size: u64 = segs[n..].iter().map(|s| s.size).sum();
        let limit = policy.retention_bytes as u64;
        if size >= limit {
            let mut diff = size - limit;
            n = extend_prefix(segs, n, log_end_offset, high_watermark, |s, _| {
                if diff >= s.size {
                    diff -= s.size;
                    true
                } else {
                    false
                }
            });
        }
    }
    if policy.retention_ms >= 0 {
        n = extend_prefix(segs, n, log_end_offset, high_watermark, |s, _| {
            now_ms.saturating_sub(s.largest_timestamp) > policy.retention_ms
        });
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn seg(base: i64, size: u64, ts: i64) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            size,
            largest_timestamp: ts,
        }
    }

    fn policy(ms: i64, bytes: i64) -> RetentionPolicy {
        RetentionPolicy {
            delete: true,
            retention_ms: ms,
            retention_bytes: bytes,
        }
    }

    #[test]
    fn time_retention_stops_at_first_young_segment() {
        let segs = [
            seg(0, 100, NOW - 5000),
            seg(10, 100, NOW - 500),
            seg(20, 100, NOW - 5000), // old again, but behind a young one
            seg(30, 100, NOW),
        ];
        assert_eq!(
            deletable_segment_count(&segs, 0, 40, 40, &policy(1000, -1), NOW),
            1
        );
        // Exactly at the limit is kept (strictly greater deletes).
        let segs = [seg(0, 100, NOW - 1000), seg(10, 100, NOW)];
        assert_eq!(
            deletable_segment_count(&segs, 0, 20, 20, &policy(1000, -1), NOW),
            0
        );
        // Unlimited and non-delete policies delete nothing.
        let segs = [seg(0, 100, 0), seg(10, 100, 0)];
        assert_eq!(
            deletable_segment_count(&segs, 0, 20, 20, &policy(-1, -1), NOW),
            0
        );
        let compact = RetentionPolicy {
            delete: false,
            ..policy(1, 1)
        };
        assert_eq!(deletable_segment_count(&segs, 0, 20, 20, &compact, NOW), 0);
    }

    #[test]
    fn active_segment_is_deletable_when_past_retention_and_not_empty() {
        let segs = [seg(0, 100, NOW - 5000), seg(10, 100, NOW - 5000)];
        assert_eq!(
            deletable_segment_count(&segs, 0, 20, 20, &policy(1000, -1), NOW),
            2
        );
        // Not while the high watermark lags the log end.
        assert_eq!(
            deletable_segment_count(&segs, 0, 20, 19, &policy(1000, -1), NOW),
            1
        );
        // An empty last segment is never deleted.
        let segs = [seg(0, 100, NOW - 5000), seg(10, 0, NOW - 5000)];
        assert_eq!(
            deletable_segment_count(&segs, 0, 10, 10, &policy(1000, -1), NOW),
            1
        );
    }

    #[test]
    fn size_retention_deletes_while_remaining_size_stays_over_limit() {
        let segs = [
            seg(0, 100, NOW),
            seg(10, 100, NOW),
            seg(20, 100, NOW),
            seg(30, 50, NOW),
        ];
        // 350 bytes over a 200 limit: 150 to shed. The first segment fits in
        // it (50 left), the second does not.
        assert_eq!(
            deletable_segment_count(&segs, 0, 40, 40, &policy(-1, 200), NOW),
            1
        );
        assert_eq!(
            deletable_segment_count(&segs, 0, 40, 40, &policy(-1, 150), NOW),
            2
        );
        assert_eq!(
            deletable_segment_count(&segs, 0, 40, 40, &policy(-1, 0), NOW),
            4
        );
        assert_eq!(
            deletable_segment_count(&segs, 0, 40, 40, &policy(-1, 1000), NOW),
            0
        );
    }

    #[test]
    fn log_start_breach_applies_to_every_policy() {
        let segs = [seg(0, 100, NOW), seg(10, 100, NOW), seg(20, 100, NOW)];
        let compact = RetentionPolicy {
            delete: false,
            retention_ms: -1,
            retention_bytes: -1,
        };
        assert_eq!(deletable_segment_count(&segs, 15, 30, 30, &compact, NOW), 1);
        assert_eq!(deletable_segment_count(&segs, 20, 30, 30, &compact, NOW), 2);
        // Passes chain: log start removes one, time removes the next.
        let segs = [seg(0, 100, NOW), seg(10, 100, NOW - 9000), seg(20, 1, NOW)];
        assert_eq!(
            deletable_segment_count(&segs, 10, 30, 30, &policy(1000, -1), NOW),
            2
        );
    }
}
