//! ShareFetch and ShareAcknowledge version 2 (KIP-1206's record-limit
//! acquisition, KIP-1222's RENEW acknowledgements): kastle's own codec,
//! because the `kafka-protocol` crate stops at version 1. Version 2 only
//! inserts fields at fixed places, so a request is read as the crate's
//! version 1 once those bytes are taken out, and a response is the crate's
//! version 1 with the new field put in:
//! - ShareFetch request: `ShareAcquireMode` (int8) and `IsRenewAck` (bool)
//!   after `BatchSize`; the response is version 1's
//!   (`same_as::SameAsVersion`).
//! - ShareAcknowledge request: `IsRenewAck` (bool) after
//!   `ShareSessionEpoch`; the response adds `AcquisitionLockTimeoutMs`
//!   (int32) after the top-level `ErrorMessage`.
//!
//! Both messages are flexible in every version. Requests are read only
//! after the schema walker has bounded every length in them
//! (`schema::tables`).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::wire::{DecodeError, Reader};

/// The first version of both APIs with the RENEW acknowledge type and
/// ShareFetch's acquire mode.
pub const SHARE_V2: i16 = 2;
/// The newest version the crate reads and writes.
const CRATE_VERSION: i16 = 1;

/// Kafka's `ShareAcquireMode`: the ids ShareFetch v2 carries.
pub const BATCH_OPTIMIZED: i8 = 0;
pub const RECORD_LIMIT: i8 = 1;

/// ShareFetch's version 2 fields (their defaults below version 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareFetchV2Fields {
    pub share_acquire_mode: i8,
    pub is_renew_ack: bool,
}

/// `body` without `len` bytes at `at`, as the crate's version 1 reads it.
fn without(body: &[u8], at: usize, len: usize) -> Bytes {
    let mut v1 = BytesMut::with_capacity(body.len().saturating_sub(len));
    v1.put_slice(&body[..at]);
    v1.put_slice(&body[at + len..]);
    v1.freeze()
}

/// Reads a ShareFetch v2 body.
pub fn read_share_fetch(body: &[u8]) -> Result<(ShareFetchRequest, ShareFetchV2Fields), String> {
    let mut r = Reader::new(body, "ShareFetchRequest v2");
    let head = (|| -> Result<(usize, ShareFetchV2Fields), DecodeError> {
        r.nstr()?; // GroupId
        r.nstr()?; // MemberId
                   // ShareSessionEpoch, MaxWaitMs, MinBytes, MaxBytes, MaxRecords,
                   // BatchSize.
        for _ in 0..6 {
            r.i32()?;
        }
        let at = body.len() - r.remaining();
        let fields = ShareFetchV2Fields {
            share_acquire_mode: r.i8()?,
            is_renew_ack: r.bool()?,
        };
        Ok((at, fields))
    })();
    let (at, fields) = head.map_err(|e| e.to_string())?;
    let mut v1 = without(body, at, 2);
    let req = ShareFetchRequest::decode(&mut v1, CRATE_VERSION)
        .map_err(|e| format!("ShareFetchRequest v2: {e:#}"))?;
    Ok((req, fields))
}

/// Reads a ShareAcknowledge v2 body: the request and its `IsRenewAck`.
pub fn read_share_acknowledge(body: &[u8]) -> Result<(ShareAcknowledgeRequest, bool), String> {
    let mut r = Reader::new(body, "ShareAcknowledgeRequest v2");
    let head = (|| -> Result<(usize, bool), DecodeError> {
        r.nstr()?; // GroupId
        r.nstr()?; // MemberId
        r.i32()?; // ShareSessionEpoch
        let at = body.len() - r.remaining();
        Ok((at, r.bool()?))
    })();
    let (at, is_renew_ack) = head.map_err(|e| e.to_string())?;
    let mut v1 = without(body, at, 1);
    let req = ShareAcknowledgeRequest::decode(&mut v1, CRATE_VERSION)
        .map_err(|e| format!("ShareAcknowledgeRequest v2: {e:#}"))?;
    Ok((req, is_renew_ack))
}

/// `req` encoded by the crate at version 1, with `extra` put in at the
/// offset `at` finds.
fn v1_with<T: Encodable>(
    req: &T,
    at: impl FnOnce(&[u8]) -> Result<usize, DecodeError>,
    extra: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let mut v1 = BytesMut::new();
    req.encode(&mut v1, CRATE_VERSION)?;
    let at = at(&v1)?;
    let mut out = Vec::with_capacity(v1.len() + extra.len());
    out.extend_from_slice(&v1[..at]);
    out.extend_from_slice(extra);
    out.extend_from_slice(&v1[at..]);
    Ok(out)
}

/// A ShareFetch v2 body (the clients' side, for tests).
pub fn write_share_fetch(
    req: &ShareFetchRequest,
    fields: ShareFetchV2Fields,
) -> anyhow::Result<Vec<u8>> {
    let extra = [
        fields.share_acquire_mode as u8,
        u8::from(fields.is_renew_ack),
    ];
    v1_with(
        req,
        |b| {
            let mut r = Reader::new(b, "ShareFetchRequest v1");
            r.nstr()?;
            r.nstr()?;
            for _ in 0..6 {
                r.i32()?;
            }
            Ok(b.len() - r.remaining())
        },
        &extra,
    )
}

/// A ShareAcknowledge v2 body (the clients' side, for tests).
pub fn write_share_acknowledge(
    req: &ShareAcknowledgeRequest,
    is_renew_ack: bool,
) -> anyhow::Result<Vec<u8>> {
    v1_with(
        req,
        |b| {
            let mut r = Reader::new(b, "ShareAcknowledgeRequest v1");
            r.nstr()?;
            r.nstr()?;
            r.i32()?;
            Ok(b.len() - r.remaining())
        },
        &[u8::from(is_renew_ack)],
    )
}

/// Where a ShareAcknowledge response's `AcquisitionLockTimeoutMs` goes:
/// after ThrottleTimeMs, ErrorCode and ErrorMessage.
fn ack_response_lock_at(b: &[u8]) -> Result<usize, DecodeError> {
    let mut r = Reader::new(b, "ShareAcknowledgeResponse v1");
    r.i32()?;
    r.i16()?;
    r.nstr()?;
    Ok(b.len() - r.remaining())
}

/// A ShareAcknowledge v2 response body: the crate's version 1 with
/// `AcquisitionLockTimeoutMs` (the group's `share.record.lock.duration.ms`)
/// put in after the top-level ErrorMessage. Encoded once and answered as
/// `response::Written<1>` (every version's response header is v1).
pub fn write_share_acknowledge_response(
    body: &ShareAcknowledgeResponse,
    acquisition_lock_timeout_ms: i32,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.compute_size(CRATE_VERSION)? + 4);
    body.encode(&mut out, CRATE_VERSION)?;
    let at = ack_response_lock_at(&out)?;
    out.splice(at..at, acquisition_lock_timeout_ms.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::share_acknowledge_request::{
        AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckReqBatch,
    };
    use kafka_protocol::messages::share_acknowledge_response::{
        PartitionData, ShareAcknowledgeTopicResponse,
    };
    use kafka_protocol::messages::share_fetch_request::{
        AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
    };
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::StrBytes;
    use uuid::Uuid;

    use crate::protocol::schema::check_request_body;

    fn fetch() -> ShareFetchRequest {
        ShareFetchRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_static_str("g"))))
            .with_member_id(Some(StrBytes::from_static_str("m")))
            .with_share_session_epoch(3)
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_max_records(7)
            .with_batch_size(5)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(Uuid::from_u128(9))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition_index(2)
                    .with_acknowledgement_batches(vec![
                        AcknowledgementBatch::default()
                            .with_first_offset(10)
                            .with_last_offset(12)
                            .with_acknowledge_types(vec![4]),
                    ])])])
            .with_forgotten_topics_data(vec![ForgottenTopic::default()
                .with_topic_id(Uuid::from_u128(8))
                .with_partitions(vec![0, 1])])
    }

    /// Kafka 4.4's ShareFetchRequest v2 layout, written by hand.
    fn fetch_v2_by_hand(mode: i8, renew: bool) -> Vec<u8> {
        let mut b = vec![2, b'g', 2, b'm'];
        for v in [3i32, 500, 1, 1 << 20, 7, 5] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.push(mode as u8);
        b.push(u8::from(renew));
        b.push(2); // one topic
        b.extend_from_slice(Uuid::from_u128(9).as_bytes());
        b.push(2); // one partition
        b.extend_from_slice(&2i32.to_be_bytes());
        b.push(2); // one batch
        b.extend_from_slice(&10i64.to_be_bytes());
        b.extend_from_slice(&12i64.to_be_bytes());
        b.extend_from_slice(&[2, 4, 0]); // types [4], batch tags
        b.extend_from_slice(&[0, 0]); // partition tags, topic tags
        b.push(2); // one forgotten topic
        b.extend_from_slice(Uuid::from_u128(8).as_bytes());
        b.push(3);
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&[0, 0]); // forgotten topic tags, top tags
        b
    }

    #[test]
    fn share_fetch_v2_reads_kafkas_layout() {
        let body = fetch_v2_by_hand(RECORD_LIMIT, true);
        check_request_body(78, 2, &body).expect("the schema walker accepts v2");
        let (req, fields) = read_share_fetch(&body).expect("reads");
        assert_eq!(req, fetch());
        assert_eq!(
            fields,
            ShareFetchV2Fields {
                share_acquire_mode: RECORD_LIMIT,
                is_renew_ack: true
            }
        );
        let again = write_share_fetch(&req, fields).expect("writes");
        assert_eq!(again, body);
        for cut in [0, 3, 20, 29, body.len() - 1] {
            assert!(read_share_fetch(&body[..cut]).is_err(), "cut at {cut}");
            assert!(
                check_request_body(78, 2, &body[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn share_acknowledge_v2_request_and_response() {
        let req = ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_static_str("g"))))
            .with_member_id(Some(StrBytes::from_static_str("m")))
            .with_share_session_epoch(4)
            .with_topics(vec![AcknowledgeTopic::default()
                .with_topic_id(Uuid::from_u128(9))
                .with_partitions(vec![AcknowledgePartition::default()
                    .with_partition_index(0)
                    .with_acknowledgement_batches(vec![AckReqBatch::default()
                        .with_first_offset(0)
                        .with_last_offset(1)
                        .with_acknowledge_types(vec![4, 1])])])]);
        let body = write_share_acknowledge(&req, true).expect("writes");
        // GroupId, MemberId, ShareSessionEpoch, then IsRenewAck.
        assert_eq!(&body[..9], &[2, b'g', 2, b'm', 0, 0, 0, 4, 1]);
        check_request_body(79, 2, &body).expect("the schema walker accepts v2");
        assert_eq!(read_share_acknowledge(&body).expect("reads"), (req, true));
        assert!(read_share_acknowledge(&body[..8]).is_err());

        let resp = ShareAcknowledgeResponse::default()
            .with_throttle_time_ms(1)
            .with_error_message(Some(StrBytes::from_static_str("x")))
            .with_responses(vec![ShareAcknowledgeTopicResponse::default()
                .with_topic_id(Uuid::from_u128(9))
                .with_partitions(vec![PartitionData::default().with_error_code(3)])]);
        let mut v1 = BytesMut::new();
        resp.encode(&mut v1, 1).expect("v1");
        let b = write_share_acknowledge_response(&resp, 30_000).expect("encodes");
        assert_eq!(b.len(), v1.len() + 4);
        // ThrottleTimeMs, ErrorCode, ErrorMessage "x", then the lock.
        assert_eq!(&b[..8], &v1[..8]);
        assert_eq!(&b[8..12], &30_000i32.to_be_bytes());
        assert_eq!(&b[12..], &v1[8..]);
    }
}
