//! `MetadataCache`: a broker's copy of the committed cluster metadata in
//! cluster mode (Kafka's `KRaftMetadataCache`): the `MetadataImage` as of
//! the last metadata fetch, the log offset it is at, and the brokers
//! clients are told about. Replaced whole on each update, so a reader never
//! sees half a change.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::metadata::{BrokerRegistration, MetadataImage};

#[derive(Default)]
pub struct MetadataCache {
    image: RwLock<Arc<MetadataImage>>,
    /// The metadata log offset (Raft index) the image is at; -1 none yet.
    offset: AtomicI64,
}

impl MetadataCache {
    pub fn new() -> MetadataCache {
        MetadataCache {
            image: RwLock::new(Arc::new(MetadataImage::default())),
            offset: AtomicI64::new(-1),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Acquire)
    }

    /// Installs a newer image; returns the one it replaced.
    pub fn publish(&self, image: MetadataImage, offset: i64) -> Arc<MetadataImage> {
        let mut slot = self.image.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *slot, Arc::new(image));
        self.offset.store(offset, Ordering::Release);
        old
    }

    /// Unfenced brokers with an endpoint on `listener`, by id (Kafka's
    /// `getAliveBrokerNodes(listenerName)`): a broker without that listener
    /// is left out, as Kafka leaves it out.
    pub fn alive_brokers(&self, listener: &str) -> Vec<(BrokerRegistration, String, u16)> {
        let image = self.image();
        image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let e = b.listeners.iter().find(|e| e.name == listener)?;
                Some((b.clone(), e.host.clone(), e.port))
            })
            .collect()
    }

    /// The controller id brokers report to clients: in KRaft mode clients
    /// cannot reach the controllers, so Kafka names an alive broker (a
    /// random one; kastle the lowest id, -1 if none).
    pub fn reported_controller_id(&self) -> i32 {
        self.image()
            .brokers
            .values()
            .find(|b| !b.fenced)
            .map_or(-1, |b| b.id)
    }
}
