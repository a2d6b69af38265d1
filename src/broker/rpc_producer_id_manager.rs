//! `RPCProducerIdManager` (Kafka's class of the same name): a cluster
//! broker's producer ids come from blocks the active controller hands out
//! (AllocateProducerIds), so no two brokers ever give out the same id.
//!
//! As Kafka's: ids are claimed from the current block without waiting; when
//! 90 % of it is used the next block is requested; at most one request is
//! in flight; a refused request waits [`RETRY_BACKOFF`] before the next
//! one; and while no block is at hand InitProducerId answers
//! COORDINATOR_LOAD_IN_PROGRESS, which clients retry. The first block is
//! requested as soon as the broker has registered (Kafka waits for the
//! first InitProducerId), so a fresh broker rarely has to answer that.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::AllocateProducerIdsResponse;
use kafka_protocol::ResponseError;

/// Kafka's `RPCProducerIdManager.RETRY_BACKOFF_MS`.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Kafka's `PID_PREFETCH_THRESHOLD`: the share of a block used before the
/// next is requested.
const PREFETCH_THRESHOLD: f64 = 0.90;

/// Sends AllocateProducerIds (with the broker's id and current epoch) to
/// the active controller; `Err` when no controller answered in time.
pub trait ProducerIdsChannel: Send + Sync {
    fn allocate_producer_ids(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<AllocateProducerIdsResponse, String>> + Send>>;
}

/// Ids `first..=last`, `next` the one to claim.
#[derive(Debug, Clone, Copy)]
struct Block {
    first: i64,
    len: i32,
    next: i64,
}

impl Block {
    const EMPTY: Block = Block {
        first: 0,
        len: 0,
        next: 0,
    };

    fn last(&self) -> i64 {
        self.first + i64::from(self.len) - 1
    }
}

struct State {
    current: Block,
    /// The block fetched ahead, taken when `current` runs out.
    prefetched: Option<Block>,
    /// One AllocateProducerIds at a time (cleared when the prefetched block
    /// becomes current, as Kafka's, or when the request failed).
    in_flight: bool,
    /// No request before this, after a refused one.
    backoff_until: Option<Instant>,
}

pub struct RpcProducerIdManager {
    broker_id: i32,
    state: Mutex<State>,
    /// Set once the broker has registered with the controllers.
    channel: OnceLock<Arc<dyn ProducerIdsChannel>>,
}

impl RpcProducerIdManager {
    pub fn new(broker_id: i32) -> Arc<RpcProducerIdManager> {
        Arc::new(RpcProducerIdManager {
            broker_id,
            state: Mutex::new(State {
                current: Block::EMPTY,
                prefetched: None,
                in_flight: false,
                backoff_until: None,
            }),
            channel: OnceLock::new(),
        })
    }

    /// Connects the manager to the controllers and fetches the first block.
    pub fn connect(self: &Arc<Self>, channel: Arc<dyn ProducerIdsChannel>) {
        if self.channel.set(channel).is_ok() {
            let mut s = self.lock();
            self.maybe_request_next_block(&mut s);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A producer id no broker of the cluster handed out before, or
    /// COORDINATOR_LOAD_IN_PROGRESS while the next block is on its way.
    pub fn generate(self: &Arc<Self>) -> Result<i64, ResponseError> {
        let mut s = self.lock();
        loop {
            let b = s.current;
            if b.next <= b.last() {
                s.current.next += 1;
                let prefetch_at = b.first + (f64::from(b.len) * PREFETCH_THRESHOLD) as i64;
                if b.next == prefetch_at {
                    self.maybe_request_next_block(&mut s);
                }
                return Ok(b.next);
            }
            match s.prefetched.take() {
                Some(next) => {
                    s.current = next;
                    s.in_flight = false;
                }
                None => {
                    self.maybe_request_next_block(&mut s);
                    return Err(ResponseError::CoordinatorLoadInProgress);
                }
            }
        }
    }

    fn maybe_request_next_block(self: &Arc<Self>, s: &mut State) {
        if s.backoff_until.is_some_and(|t| Instant::now() < t)
            || s.prefetched.is_some()
            || s.in_flight
        {
            return;
        }
        let Some(channel) = self.channel.get().cloned() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        s.in_flight = true;
        s.backoff_until = None;
        let me = self.clone();
        runtime.spawn(async move {
            let answer = channel.allocate_producer_ids().await;
            me.on_response(answer);
        });
    }

    fn on_response(&self, answer: Result<AllocateProducerIdsResponse, String>) {
        let mut s = self.lock();
        let resp = match answer {
            Ok(r) => r,
            Err(e) => {
                // Kafka's onTimeout: the next claim may ask again at once.
                tracing::warn!(broker = self.broker_id, "AllocateProducerIds: {e}");
                s.in_flight = false;
                return;
            }
        };
        let accepted = match ResponseError::try_from_code(resp.error_code) {
            None => {
                let (start, len) = (resp.producer_id_start.0, resp.producer_id_len);
                if start < s.current.last() {
                    tracing::error!(
                        broker = self.broker_id,
                        start,
                        current = s.current.first,
                        "producer id block is not after the current one"
                    );
                    false
                } else if start < 0 || len < 0 || start > i64::MAX - i64::from(len) {
                    tracing::error!(
                        broker = self.broker_id,
                        start,
                        len,
                        "invalid producer id block"
                    );
                    false
                } else {
                    tracing::debug!(broker = self.broker_id, start, len, "producer id block");
                    s.prefetched = Some(Block {
                        first: start,
                        len,
                        next: start,
                    });
                    true
                }
            }
            Some(e) => {
                tracing::warn!(broker = self.broker_id, error = ?e, "AllocateProducerIds refused");
                false
            }
        };
        if !accepted {
            s.backoff_until = Some(Instant::now() + RETRY_BACKOFF);
            s.in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ProducerId;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// Hands out consecutive blocks of `len` (or a refusal), counting calls.
    struct Blocks {
        next: AtomicI64,
        calls: AtomicI64,
        len: i32,
        error: i16,
    }

    impl ProducerIdsChannel for Blocks {
        fn allocate_producer_ids(
            &self,
        ) -> Pin<Box<dyn Future<Output = Result<AllocateProducerIdsResponse, String>> + Send>>
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let first = self.next.fetch_add(i64::from(self.len), Ordering::SeqCst);
            let resp = AllocateProducerIdsResponse::default()
                .with_error_code(self.error)
                .with_producer_id_start(ProducerId(first))
                .with_producer_id_len(self.len);
            Box::pin(async move { Ok(resp) })
        }
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn blocks_are_prefetched_and_used_in_order() {
        let m = RpcProducerIdManager::new(1);
        assert_eq!(m.generate(), Err(ResponseError::CoordinatorLoadInProgress));
        let ch = Arc::new(Blocks {
            next: AtomicI64::new(0),
            calls: AtomicI64::new(0),
            len: 10,
            error: 0,
        });
        m.connect(ch.clone());
        settle().await;
        let mut ids = Vec::new();
        for _ in 0..25 {
            ids.push(m.generate().expect("an id"));
            settle().await;
        }
        assert_eq!(ids, (0..25).collect::<Vec<i64>>());
        // The first block, then one prefetch at 90 % of each block used.
        assert_eq!(ch.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refusal_backs_off_and_answers_load_in_progress() {
        let m = RpcProducerIdManager::new(1);
        let ch = Arc::new(Blocks {
            next: AtomicI64::new(0),
            calls: AtomicI64::new(0),
            len: 10,
            error: ResponseError::StaleBrokerEpoch.code(),
        });
        m.connect(ch.clone());
        settle().await;
        assert_eq!(m.generate(), Err(ResponseError::CoordinatorLoadInProgress));
        settle().await;
        // Within the backoff no second request goes out.
        assert_eq!(ch.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(RETRY_BACKOFF + Duration::from_millis(10)).await;
        assert_eq!(m.generate(), Err(ResponseError::CoordinatorLoadInProgress));
        settle().await;
        assert_eq!(ch.calls.load(Ordering::SeqCst), 2);
    }
}
