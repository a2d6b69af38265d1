//! KIP-392 (fetch from the closest replica) in Fetch: the client metadata
//! a v11+ consumer brings, and the leader's choice of the replica that
//! should serve it (`preferred_read_replica`).

use std::sync::Arc;

use crate::broker::partition::Partition;
use crate::broker::replica_selector::{select_rack_aware, ReplicaView};
use crate::metadata::MetadataImage;

/// Kafka's `ClientMetadata` of a consumer's Fetch v11+: such a consumer may
/// read from a follower (up to its high watermark), and with a replica
/// selector the leader points it at the closest replica (KIP-392).
pub(super) struct ClientMetadata {
    pub(super) rack: String,
    pub(super) listener: Arc<str>,
    pub(super) rack_aware: bool,
    pub(super) image: Option<Arc<MetadataImage>>,
}

/// KIP-392 on the leader: the replica the selector prefers for this
/// consumer, when it is not this leader (Kafka's
/// `findPreferredReadReplica`: in-sync followers holding the offset, each
/// with its broker's rack on the client's listener).
pub(super) fn preferred_read_replica(
    partition: &Partition,
    client: &ClientMetadata,
    fetch_offset: i64,
) -> Option<i32> {
    if !client.rack_aware || client.rack.is_empty() {
        return None;
    }
    let image = client.image.as_ref()?;
    let candidates = partition.read_replica_candidates(fetch_offset, crate::util::now_ms())?;
    let rack_of = |id: i32| {
        image
            .brokers
            .get(&id)
            .filter(|b| !b.fenced && b.listeners.iter().any(|e| *e.name == *client.listener))
            .and_then(|b| b.rack.clone())
    };
    let leader_id = image
        .topic_by_name(&partition.topic)
        .and_then(|t| t.partitions.get(&partition.index))
        .map(|p| p.leader)?;
    let leader = ReplicaView {
        broker_id: leader_id,
        rack: rack_of(leader_id),
        log_end_offset: partition.log_end_offset().unwrap_or(0),
        time_since_last_caught_up_ms: 0,
    };
    let replicas: Vec<ReplicaView> = candidates
        .into_iter()
        .map(|(id, leo, since)| ReplicaView {
            broker_id: id,
            rack: rack_of(id),
            log_end_offset: leo,
            time_since_last_caught_up_ms: since,
        })
        .collect();
    let chosen = select_rack_aware(&client.rack, &leader, &replicas);
    (chosen.broker_id != leader_id && chosen.rack.is_some()).then_some(chosen.broker_id)
}
