//! Replays a coordinator's internal partition at start-up (Kafka's
//! `CoordinatorLoaderImpl`): from the log start to the high watermark,
//! batch by batch, decompressed, handing each data batch's records section
//! and each transaction marker to the coordinator's own replay, which
//! applies them one record at a time. Shared by the group and transaction
//! coordinators, as is [`committed_leader`], the wait a cluster
//! coordinator makes on election before it loads.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::broker::partition::Partition;
use crate::record::batch::{self, BatchHeader};
use crate::record::compression::decompression_budget;
use crate::record::control::EndTransactionMarker;

/// How much is read from the log at once while loading.
const READ_CHUNK: usize = 8 << 20;

/// How often an elected coordinator re-checks that its local replica leads.
const LEADER_POLL: Duration = Duration::from_millis(50);
/// How long one wait for the high watermark lasts before the election is
/// checked again.
const HIGH_WATERMARK_POLL: Duration = Duration::from_millis(500);

/// The local replica of an internal partition this broker was elected to
/// lead at `epoch`, once it leads (the image's change applied: `local()`
/// gives it with that epoch or a later one) and its high watermark covers
/// its log end, i.e. everything in it is committed to the ISR and may be
/// acted on (Kafka's runtime answers from committed state only). `None`
/// when `current()` turns false first: the election is over, or the
/// coordinator stops. `topic` names the partition in warnings.
pub async fn committed_leader(
    topic: &str,
    index: i32,
    epoch: i32,
    local: impl Fn() -> Option<Arc<Partition>>,
    current: impl Fn() -> bool,
) -> Option<Arc<Partition>> {
    let partition = loop {
        if !current() {
            return None;
        }
        if let Some(p) = local().filter(|p| p.is_leader() && p.leader_epoch() >= epoch) {
            break p;
        }
        tokio::time::sleep(LEADER_POLL).await;
    };
    loop {
        if !current() {
            return None;
        }
        let end = partition.log_end_offset()?;
        let deadline = tokio::time::Instant::now() + HIGH_WATERMARK_POLL;
        match partition.wait_for_high_watermark(end, deadline).await {
            Ok(()) => return Some(partition),
            Err(ResponseError::RequestTimedOut) => {}
            Err(e) => {
                tracing::warn!(partition = index, error = ?e, "loading {topic}: waiting for the high watermark");
                tokio::time::sleep(LEADER_POLL).await;
            }
        }
    }
}

/// What the replay sees of one batch.
pub enum LoadedBatch<'a> {
    /// A COMMIT (`commit`) or ABORT marker of `producer_id`'s transaction.
    Marker { producer_id: i64, commit: bool },
    /// A data batch: its header and its (decompressed) records section.
    Records {
        header: &'a BatchHeader,
        section: &'a [u8],
    },
}

/// Replays every batch of `p` below its high watermark into `apply`, in log
/// order. A batch that cannot be decompressed is skipped with a warning
/// (its records are lost to the coordinator, as in Kafka's loader).
pub fn replay(p: &Partition, mut apply: impl FnMut(LoadedBatch<'_>)) -> anyhow::Result<()> {
    // Internal records are written uncompressed, but a batch copied in by
    // a tool may not be; bounded as a produced batch would be.
    let budget = decompression_budget(1 << 20);
    let mut next = p.state().log_start_offset;
    loop {
        let read = p
            .fetch(next, READ_CHUNK, true)
            .map_err(|e| anyhow::anyhow!("reading {}-{}: {e}", p.topic, p.index))?;
        if read.plan.is_none() {
            return Ok(());
        }
        let bytes = read
            .read()
            .map_err(|e| anyhow::anyhow!("reading {}-{}: {e}", p.topic, p.index))?;
        let before = next;
        replay_chunk(&bytes, budget, &mut next, &p.topic, p.index, &mut apply);
        if next <= before {
            return Ok(());
        }
    }
}

/// Replays the batches of one chunk of a partition's log (`bytes`, as read
/// from it) into `apply`, raising `next` past each batch; batches are
/// decompressed within `budget`. `topic` and `index` name the partition in
/// warnings. The part of [`replay`] that only reads bytes, which the fuzz
/// targets (`fuzz/`) drive directly.
pub fn replay_chunk(
    bytes: &[u8],
    budget: usize,
    next: &mut i64,
    topic: &str,
    index: i32,
    apply: &mut impl FnMut(LoadedBatch<'_>),
) {
    for (at, h) in batch::iter_batches(bytes) {
        *next = (*next).max(h.next_offset());
        let whole = &bytes[at..at + h.total_size()];
        if h.is_control() {
            // A COMMIT/ABORT marker; other control records concern
            // no coordinator.
            if let Ok(marker) = EndTransactionMarker::from_batch(whole) {
                apply(LoadedBatch::Marker {
                    producer_id: h.producer_id,
                    commit: marker.commit,
                });
            }
            continue;
        }
        let section = match batch::batch_records(whole, budget) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(topic = %topic, partition = index, offset = h.base_offset, error = %e, "skipping an unreadable batch while loading");
                continue;
            }
        };
        apply(LoadedBatch::Records {
            header: &h,
            section: &section,
        });
    }
}
