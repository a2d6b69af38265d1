//! The broker-wide pool request buffers are taken from
//! (`queued.max.request.bytes`, Kafka's `SimpleMemoryPool` of KIP-72).
//!
//! A connection that has read a request's size asks the pool for that many
//! bytes before it reads the body. Like Kafka's non-strict pool, a request
//! is granted whenever any memory is left, so the pool may dip below zero by
//! at most one request (`socket.request.max.bytes`) and a request larger
//! than what is free still makes progress. With nothing left the reader
//! waits, sending no error: the client's requests stay unread in the socket
//! until another request's buffer is released, which happens when that
//! request's in-order part (append, validation, the response's making) is
//! done, as Kafka's handler releases it after `KafkaApis.handle`. Not set
//! (the default, -1) or 0: no pool, as in Kafka.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

pub struct MemoryPool {
    /// `queued.max.request.bytes`; `None`: unbounded.
    capacity: Option<i64>,
    /// Bytes not granted; negative by at most one request.
    available: AtomicI64,
    /// Readers waiting for memory are woken when a lease is released.
    released: Notify,
}

/// Bytes granted to one request, given back when dropped.
pub struct Lease {
    pool: Arc<MemoryPool>,
    bytes: i64,
}

impl MemoryPool {
    /// A pool of `queued_max_request_bytes` (not positive: unbounded).
    pub fn new(queued_max_request_bytes: i64) -> Arc<MemoryPool> {
        let capacity = (queued_max_request_bytes > 0).then_some(queued_max_request_bytes);
        Arc::new(MemoryPool {
            capacity,
            available: AtomicI64::new(capacity.unwrap_or(0)),
            released: Notify::new(),
        })
    }

    /// Bytes not granted (Kafka's `MemoryPoolAvailable`); 0 when unbounded.
    pub fn available(&self) -> i64 {
        self.available.load(Ordering::Acquire)
    }

    /// Grants `size` bytes if any memory is free (Kafka's non-strict
    /// `tryAllocate`). Zero bytes and an unbounded pool always succeed.
    pub fn try_allocate(self: &Arc<Self>, size: usize) -> Option<Lease> {
        let bytes = i64::try_from(size).unwrap_or(i64::MAX);
        if self.capacity.is_none() || bytes == 0 {
            return Some(Lease {
                pool: self.clone(),
                bytes: 0,
            });
        }
        let mut free = self.available.load(Ordering::Acquire);
        while free >= 1 {
            match self.available.compare_exchange_weak(
                free,
                free - bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Lease {
                        pool: self.clone(),
                        bytes,
                    })
                }
                Err(now) => free = now,
            }
        }
        None
    }

    /// Waits until [`MemoryPool::try_allocate`] grants `size` bytes.
    pub async fn allocate(self: &Arc<Self>, size: usize) -> Lease {
        loop {
            // Registered before trying, so a release in between wakes us.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(lease) = self.try_allocate(size) {
                return lease;
            }
            released.await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.pool.available.fetch_add(self.bytes, Ordering::AcqRel);
            self.pool.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn non_strict_grants_while_any_memory_is_free() {
        let pool = MemoryPool::new(100);
        let a = pool.try_allocate(60).expect("60 of 100");
        // 40 left: a larger request is still granted, the pool goes negative.
        let b = pool.try_allocate(90).expect("90 with 40 left");
        assert_eq!(pool.available(), -50);
        assert!(pool.try_allocate(1).is_none(), "nothing left");
        drop(a);
        assert_eq!(pool.available(), 10);
        assert!(pool.try_allocate(1).is_some());
        drop(b);
        assert_eq!(pool.available(), 100);
    }

    #[test]
    fn unbounded_pools_and_empty_requests_always_succeed() {
        for unbounded in [-1, 0] {
            let pool = MemoryPool::new(unbounded);
            let leases: Vec<_> = (0..10).map(|_| pool.try_allocate(1 << 30)).collect();
            assert!(leases.iter().all(Option::is_some));
        }
        let pool = MemoryPool::new(10);
        let _all = pool.try_allocate(10).expect("all of it");
        assert!(
            pool.try_allocate(0).is_some(),
            "an empty body needs no memory"
        );
    }

    #[tokio::test]
    async fn a_waiting_reader_proceeds_when_a_lease_is_released() {
        let pool = MemoryPool::new(10);
        let held = pool.try_allocate(10).expect("all of it");
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.allocate(5).await.bytes }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "waits while the pool is empty");
        drop(held);
        let granted = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the release")
            .expect("task");
        assert_eq!(granted, 5);
    }
}
