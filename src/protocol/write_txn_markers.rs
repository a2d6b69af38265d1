//! WriteTxnMarkers (27), versions 1-2 (flexible): kastle's own codec of
//! the request, because the `kafka-protocol` crate stops at version 1 and
//! version 2 adds KIP-1228's `TransactionVersion` to each marker (the
//! transaction version the coordinator ended the transaction under, which
//! decides the partition's producer-epoch check). The response is the same
//! in both versions, so the crate's version 1 encodes it
//! (`same_as::SameAsVersion`). Field order and encodings follow Kafka's message
//! definitions; every struct ends with its tagged-field section (read and
//! skipped, written empty).
//!
//! Requests are read only after the schema walker has bounded every length
//! in them (`schema::tables`).

use super::wire::{DecodeError, Reader, Writer};

pub const WRITE_TXN_MARKERS: i16 = 27;
/// The first version with `TransactionVersion`.
pub const TRANSACTION_VERSION_SINCE: i16 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteTxnMarkersRequest {
    pub markers: Vec<WritableTxnMarker>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritableTxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// false = ABORT, true = COMMIT.
    pub transaction_result: bool,
    pub topics: Vec<WritableTxnMarkerTopic>,
    pub coordinator_epoch: i32,
    /// Version 2+ (KIP-1228); 0 in version 1 (0/1: transaction versions
    /// before KIP-890 part 2, 2: TV2).
    pub transaction_version: i8,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritableTxnMarkerTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

impl WriteTxnMarkersRequest {
    /// Reads a request body at `version`.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        Self::read(body, version).map(|(r, _)| r)
    }

    /// Reads a request body at `version`: the request and the bytes it
    /// took (Kafka ignores trailing bytes).
    pub fn read(body: &[u8], version: i16) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(body, "WriteTxnMarkersRequest");
        let markers = r.arr(|r| {
            let producer_id = r.i64()?;
            let producer_epoch = r.i16()?;
            let transaction_result = r.bool()?;
            let topics = r.arr(|r| {
                let t = WritableTxnMarkerTopic {
                    name: r.str()?,
                    partition_indexes: r.arr(|r| r.i32())?,
                };
                r.tags()?;
                Ok(t)
            })?;
            let coordinator_epoch = r.i32()?;
            let transaction_version = if version >= TRANSACTION_VERSION_SINCE {
                r.i8()?
            } else {
                0
            };
            r.tags()?;
            Ok(WritableTxnMarker {
                producer_id,
                producer_epoch,
                transaction_result,
                topics,
                coordinator_epoch,
                transaction_version,
            })
        })?;
        r.tags()?;
        Ok((
            WriteTxnMarkersRequest { markers },
            body.len() - r.remaining(),
        ))
    }

    /// The request body at `version` (the coordinator's sender; a version
    /// 1 body has no transaction version).
    pub fn encode(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::default();
        w.arr(&self.markers, |w, m| {
            w.i64(m.producer_id);
            w.i16(m.producer_epoch);
            w.bool(m.transaction_result);
            w.arr(&m.topics, |w, t| {
                w.str(&t.name);
                w.arr(&t.partition_indexes, |w, p| w.i32(*p));
                w.tags();
            });
            w.i32(m.coordinator_epoch);
            if version >= TRANSACTION_VERSION_SINCE {
                w.i8(m.transaction_version);
            }
            w.tags();
        });
        w.tags();
        w.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

    fn sample(tv: i8) -> WriteTxnMarkersRequest {
        WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: 7,
                producer_epoch: 3,
                transaction_result: true,
                topics: vec![WritableTxnMarkerTopic {
                    name: "t".into(),
                    partition_indexes: vec![0, 2],
                }],
                coordinator_epoch: 5,
                transaction_version: tv,
            }],
        }
    }

    #[test]
    fn version_1_is_the_crates_layout() {
        let r = sample(0);
        let mut body = Bytes::from(r.encode(1));
        let c = kafka_protocol::messages::WriteTxnMarkersRequest::decode(&mut body, 1)
            .expect("the crate reads our v1");
        let m = &c.markers[0];
        assert_eq!(
            (m.producer_id.0, m.producer_epoch, m.coordinator_epoch),
            (7, 3, 5)
        );
        assert!(body.is_empty());
        let mut crate_body = BytesMut::new();
        c.encode(&mut crate_body, 1).unwrap();
        assert_eq!(WriteTxnMarkersRequest::decode(&crate_body, 1).unwrap(), r);
    }

    #[test]
    fn version_2_carries_the_transaction_version() {
        let r = sample(2);
        let v2 = r.encode(2);
        assert_eq!(v2.len(), r.encode(1).len() + 1, "one int8 per marker");
        assert_eq!(WriteTxnMarkersRequest::decode(&v2, 2).unwrap(), r);
        assert!(crate::protocol::schema::check_request_body(27, 2, &v2).is_ok());
        let v1 = WriteTxnMarkersRequest::decode(&r.encode(1), 1).unwrap();
        assert_eq!(v1.markers[0].transaction_version, 0, "version 1's default");
        assert!(WriteTxnMarkersRequest::decode(&v2[..v2.len() - 3], 2).is_err());
    }

    #[test]
    fn the_response_is_encoded_as_version_1() {
        use crate::protocol::same_as::SameAsVersion;
        use kafka_protocol::messages::write_txn_markers_response::WritableTxnMarkerResult;
        use kafka_protocol::messages::{ProducerId, WriteTxnMarkersResponse};
        let r = WriteTxnMarkersResponse::default().with_markers(vec![
            WritableTxnMarkerResult::default().with_producer_id(ProducerId(9)),
        ]);
        let mut ours = BytesMut::new();
        SameAsVersion::<1, _>(r.clone())
            .encode(&mut ours, 2)
            .unwrap();
        let mut v1 = BytesMut::new();
        r.encode(&mut v1, 1).unwrap();
        assert_eq!(ours, v1);
        assert_eq!(
            <SameAsVersion<1, WriteTxnMarkersResponse> as HeaderVersion>::header_version(2),
            1
        );
    }
}
