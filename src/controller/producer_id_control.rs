//! Producer-id blocks decided by the active controller (Kafka's
//! `ProducerIdControlManager.generateNextProducerId`): a registered broker
//! presenting its current epoch gets the next block of
//! [`PRODUCER_ID_BLOCK_SIZE`] ids, recorded as a `ProducerIdsRecord` whose
//! `next_producer_id` is where the following block starts. The record is in
//! the metadata log (and the image's snapshot), so no block is handed out
//! twice, across brokers or restarts. A pure function over the image.

use kafka_protocol::ResponseError;

use crate::metadata::records::ProducerIdsRecord;
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// A block handed to one broker: ids `first..first + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdsBlock {
    pub first: i64,
    pub len: i32,
}

/// The next block for `broker_id` at `broker_epoch` and the record that
/// reserves it. Like Kafka's `ClusterControlManager.checkBrokerEpoch`, an
/// unknown broker and a wrong epoch are both STALE_BROKER_EPOCH (a fenced
/// broker with its current epoch still gets a block); a block that would
/// run past `i64::MAX` is UNKNOWN_SERVER_ERROR, as Kafka's exhaustion.
pub fn generate_next_producer_id(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<(Vec<RecordAndVersion>, ProducerIdsBlock), ResponseError> {
    match image.brokers.get(&broker_id) {
        Some(b) if b.epoch == broker_epoch => {}
        _ => return Err(ResponseError::StaleBrokerEpoch),
    }
    let first = image.next_producer_id;
    if first > i64::MAX - i64::from(PRODUCER_ID_BLOCK_SIZE) {
        return Err(ResponseError::UnknownServerError);
    }
    let block = ProducerIdsBlock {
        first,
        len: PRODUCER_ID_BLOCK_SIZE,
    };
    let record = RecordAndVersion {
        record: MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id,
            broker_epoch,
            next_producer_id: first + i64::from(PRODUCER_ID_BLOCK_SIZE),
        }),
        version: 0,
    };
    Ok((vec![record], block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::tests::{apply, cluster, register};

    fn next(image: &MetadataImage, id: i32) -> (MetadataImage, ProducerIdsBlock) {
        let epoch = image.brokers[&id].epoch;
        let (records, block) = generate_next_producer_id(image, id, epoch).expect("a block");
        (apply(image, &records), block)
    }

    #[test]
    fn consecutive_blocks_never_overlap_across_brokers() {
        let image = cluster(&[None, None, None]);
        let (image, a) = next(&image, 1);
        let (image, b) = next(&image, 2);
        let (image, c) = next(&image, 1);
        assert_eq!(
            a,
            ProducerIdsBlock {
                first: 0,
                len: 1000
            }
        );
        assert_eq!(b.first, 1000);
        assert_eq!(c.first, 2000);
        assert_eq!(image.next_producer_id, 3000);
    }

    #[test]
    fn unknown_broker_and_stale_epoch_are_stale_broker_epoch() {
        let image = cluster(&[None, None]);
        let epoch = image.brokers[&1].epoch;
        assert_eq!(
            generate_next_producer_id(&image, 1, epoch - 1).err(),
            Some(ResponseError::StaleBrokerEpoch)
        );
        assert_eq!(
            generate_next_producer_id(&image, 7, epoch).err(),
            Some(ResponseError::StaleBrokerEpoch)
        );
        assert_eq!(
            generate_next_producer_id(&image, 1, -1).err(),
            Some(ResponseError::StaleBrokerEpoch)
        );
    }

    #[test]
    fn a_fenced_broker_with_its_epoch_gets_a_block_as_in_kafka() {
        // Kafka checks the epoch only, not fencing.
        let image = apply(&MetadataImage::default(), &[register(4, None, true)]);
        let (image, block) = next(&image, 4);
        assert_eq!(block.first, 0);
        assert_eq!(image.next_producer_id, 1000);
    }

    #[test]
    fn the_id_space_runs_out_with_unknown_server_error() {
        let mut image = cluster(&[None]);
        image.next_producer_id = i64::MAX - 999;
        let epoch = image.brokers[&1].epoch;
        assert_eq!(
            generate_next_producer_id(&image, 1, epoch).err(),
            Some(ResponseError::UnknownServerError)
        );
        // The last whole block is still handed out.
        image.next_producer_id = i64::MAX - 1000;
        let (records, block) = generate_next_producer_id(&image, 1, epoch).expect("last block");
        assert_eq!(block.first, i64::MAX - 1000);
        assert_eq!(apply(&image, &records).next_producer_id, i64::MAX);
    }

    #[test]
    fn a_snapshot_replayed_keeps_the_next_block() {
        let image = cluster(&[None, None]);
        let (image, _) = next(&image, 1);
        let (image, _) = next(&image, 2);
        // What a new controller or a restarted one rebuilds from the
        // snapshot: the image's records replayed onto nothing.
        let replayed = apply(&MetadataImage::default(), &image.to_records());
        assert_eq!(replayed.next_producer_id, 2000);
        let (_, block) = next(&replayed, 2);
        assert_eq!(block.first, 2000);
        // A record moving the next id back does not apply.
        let mut back = replayed.clone();
        let stale = MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 11,
            next_producer_id: 1000,
        });
        assert!(back.apply(&stale).is_err());
    }
}
