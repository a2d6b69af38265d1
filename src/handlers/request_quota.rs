//! The request quota (`request_percentage`, Kafka's
//! `ClientRequestQuotaManager`): the time a request's in-order part took (less
//! its waits on other brokers, which Kafka spends off its request threads) is
//! recorded against the client's quota and, when over it, the throttle goes
//! into the response's `throttle_time_ms` (the larger of it and a throttle
//! the handler already set, as Kafka takes the larger of the bandwidth and
//! request throttles for Produce and Fetch) and the connection is muted.
//! Kafka exempts what it answers with `sendResponseExemptThrottle`: cluster
//! actions (inter-broker APIs; a ClusterAuthorizationException answer is
//! throttled, but kastle's client listeners serve none of them), a
//! follower's Fetch (replica id ≥ 0, `KafkaApis.handleFetchRequest`; the
//! dispatcher asks the fetch handler) and acks=0 produce, which gets no
//! response; those are not recorded.
//!
//! Handlers encode their responses before the throttle is known, so the
//! field is set in the encoded frame, in place: it is the body's first field
//! for every API but ApiVersions, Produce and OffsetDelete, whose leading
//! fields are walked to find it (only for a throttled response).

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;

use crate::handlers::Reply;
use crate::protocol::{response, schema};

/// Kafka's `ApiKeys.clusterAction` APIs, by key (LeaderAndIsr,
/// StopReplica, UpdateMetadata, ControlledShutdown, WriteTxnMarkers, Vote,
/// BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum, AlterPartition,
/// UpdateFeatures, Envelope, BrokerRegistration, BrokerHeartbeat,
/// AllocateProducerIds, and the share-group state APIs): exempt from the
/// request quota.
const CLUSTER_ACTIONS: &[i16] = &[
    4, 5, 6, 7, 27, 52, 53, 54, 55, 56, 57, 58, 62, 63, 67, 83, 84, 85, 86, 87,
];

/// Whether Kafka exempts `key` from the request quota.
pub fn exempt(key: ApiKey) -> bool {
    CLUSTER_ACTIONS.contains(&(key as i16))
}

/// Kafka's unit: percent of one thread over the window.
pub fn nanos_to_percentage(nanos: u128) -> f64 {
    nanos as f64 * 100.0 / 1e9
}

/// The first version of `key`'s response with a `throttle_time_ms` field
/// (the response JSON specs); `None` for APIs without one (SASL).
fn throttle_since(key: ApiKey) -> Option<i16> {
    use ApiKey::*;
    Some(match key {
        Produce | Fetch | FindCoordinator | Heartbeat | LeaveGroup | SyncGroup | DescribeGroups
        | ListGroups | ApiVersions | DeleteTopics => 1,
        ListOffsets | JoinGroup | CreateTopics | OffsetForLeaderEpoch => 2,
        Metadata | OffsetCommit | OffsetFetch => 3,
        SaslHandshake | SaslAuthenticate => return None,
        _ => 0,
    })
}

/// `reply` with its `throttle_time_ms` raised to `ms` (a response of a
/// version without the field is left as it is).
pub fn with_throttle(reply: Reply, key: ApiKey, version: i16, ms: i32) -> Reply {
    if throttle_since(key).is_none_or(|since| version < since) {
        return reply;
    }
    let warn = |why: &str| {
        // Cannot happen with kastle's own encodings; the mute still applies.
        tracing::warn!(api = ?key, version, why, "request-quota throttle not set in the response");
    };
    match reply {
        Reply::Frame(mut frame) => {
            if let Err(why) = patch(&mut frame, key, version, ms) {
                warn(why);
            }
            Reply::Frame(frame)
        }
        // Fetch: the header and the fields before the record sets are in
        // the first chunk.
        Reply::Chunks(mut chunks) => {
            if let Some(response::Chunk::Mem(first)) = chunks.first() {
                let mut head = BytesMut::from(&first[..]);
                match patch(&mut head, key, version, ms) {
                    Ok(()) => chunks[0] = response::Chunk::Mem(head.freeze()),
                    Err(why) => warn(why),
                }
            } else {
                warn("a response without its header in memory");
            }
            Reply::Chunks(chunks)
        }
        other => other,
    }
}

/// Sets the throttle field of an encoded response to the larger of its
/// value and `ms`; the frame is untouched on error.
fn patch(frame: &mut BytesMut, key: ApiKey, version: i16, ms: i32) -> Result<(), &'static str> {
    let body = body_offset(frame, key, version).ok_or("unexpected response header")?;
    let at = match key {
        ApiKey::ApiVersions => api_versions_throttle(frame, body, version),
        ApiKey::Produce => produce_throttle(frame, body, version),
        // ErrorCode first.
        ApiKey::OffsetDelete => Some(body + 2),
        _ => Some(body),
    }
    .ok_or("response body shorter than its fields")?;
    let field = frame
        .get_mut(at..at + 4)
        .ok_or("response body shorter than its fields")?;
    let current = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    field.copy_from_slice(&current.max(ms).to_be_bytes());
    Ok(())
}

/// A cursor over an encoded body: each step says how far a field reaches,
/// `None` past the end.
struct Walk<'a> {
    b: &'a [u8],
    at: usize,
}

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.at = self.at.checked_add(n).filter(|&e| e <= self.b.len())?;
        Some(())
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = *self.b.get(self.at)?;
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn i16(&mut self) -> Option<i16> {
        let s = self.b.get(self.at..self.at + 2)?;
        self.at += 2;
        Some(i16::from_be_bytes([s[0], s[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        let s = self.b.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// An array's element count (null counts as none).
    fn count(&mut self, flexible: bool) -> Option<usize> {
        if flexible {
            Some(self.uvarint()?.saturating_sub(1) as usize)
        } else {
            Some(self.i32()?.max(0) as usize)
        }
    }

    /// A (nullable) string.
    fn string(&mut self, flexible: bool) -> Option<()> {
        let len = if flexible {
            self.uvarint()?.saturating_sub(1) as usize
        } else {
            self.i16()?.max(0) as usize
        };
        self.skip(len)
    }

    fn tags(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Some(())
    }
}

/// ApiVersionsResponse: ErrorCode, ApiKeys, then ThrottleTimeMs (v1+).
fn api_versions_throttle(frame: &[u8], body: usize, version: i16) -> Option<usize> {
    let flexible = version >= 3;
    let mut w = Walk { b: frame, at: body };
    w.skip(2)?;
    for _ in 0..w.count(flexible)? {
        w.skip(6)?;
        if flexible {
            w.tags()?;
        }
    }
    Some(w.at)
}

/// ProduceResponse: Responses (topics and their partitions), then
/// ThrottleTimeMs (v1+).
fn produce_throttle(frame: &[u8], body: usize, version: i16) -> Option<usize> {
    let flexible = version >= 9;
    let mut w = Walk { b: frame, at: body };
    for _ in 0..w.count(flexible)? {
        if version >= 13 {
            w.skip(16)?; // TopicId
        } else {
            w.string(flexible)?;
        }
        for _ in 0..w.count(flexible)? {
            // Index, ErrorCode, BaseOffset
            w.skip(4 + 2 + 8)?;
            if version >= 2 {
                w.skip(8)?; // LogAppendTimeMs
            }
            if version >= 5 {
                w.skip(8)?; // LogStartOffset
            }
            if version >= 8 {
                for _ in 0..w.count(flexible)? {
                    w.skip(4)?; // BatchIndex
                    w.string(flexible)?;
                    if flexible {
                        w.tags()?;
                    }
                }
                w.string(flexible)?; // ErrorMessage
            }
            if flexible {
                w.tags()?;
            }
        }
        if flexible {
            w.tags()?;
        }
    }
    Some(w.at)
}

/// Where the body starts in a response frame (size prefix, correlation id,
/// then the flexible header's empty tagged-field section; ApiVersions
/// answers with header v0 at every version).
fn body_offset(frame: &[u8], key: ApiKey, version: i16) -> Option<usize> {
    let flexible = schema::is_flexible(key as i16, version)? && key != ApiKey::ApiVersions;
    if !flexible {
        return Some(8);
    }
    // kastle writes no header tags: one zero byte.
    (frame.get(8) == Some(&0)).then_some(9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{
        ApiVersionsResponse, HeartbeatResponse, MetadataResponse, OffsetDeleteResponse,
        ProduceResponse, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

    fn frame_of<R: Encodable + HeaderVersion>(r: &R, version: i16) -> BytesMut {
        response::encode_response(7, version, r).unwrap()
    }

    fn decode_frame<R: Decodable + HeaderVersion>(reply: Reply, version: i16) -> R {
        let Reply::Frame(f) = reply else {
            panic!("not a frame")
        };
        let mut b = f.freeze();
        let header = if R::header_version(version) >= 1 {
            9
        } else {
            8
        };
        assert_eq!(i32::from_be_bytes([b[4], b[5], b[6], b[7]]), 7);
        b.advance(header);
        R::decode(&mut b, version).unwrap()
    }

    #[test]
    fn first_field_patched_in_place_keeping_a_larger_one() {
        for v in [1, 4] {
            let f = frame_of(&HeartbeatResponse::default(), v);
            let r: HeartbeatResponse =
                decode_frame(with_throttle(Reply::Frame(f), ApiKey::Heartbeat, v, 250), v);
            assert_eq!(r.throttle_time_ms, 250);
            let f = frame_of(&HeartbeatResponse::default().with_throttle_time_ms(900), v);
            let r: HeartbeatResponse =
                decode_frame(with_throttle(Reply::Frame(f), ApiKey::Heartbeat, v, 250), v);
            assert_eq!(r.throttle_time_ms, 900);
        }
        // A version without the field is left alone.
        let f = frame_of(&MetadataResponse::default(), 2);
        let before = f.clone();
        let Reply::Frame(after) = with_throttle(Reply::Frame(f), ApiKey::Metadata, 2, 250) else {
            panic!()
        };
        assert_eq!(before, after);
    }

    #[test]
    fn produce_api_versions_and_offset_delete_walked_to_the_field() {
        let part = PartitionProduceResponse::default()
            .with_index(3)
            .with_error_code(87)
            .with_base_offset(42)
            .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                .with_batch_index(1)
                .with_batch_index_error_message(Some(StrBytes::from_static_str("bad")))])
            .with_error_message(Some(StrBytes::from_static_str("invalid record")));
        let topic = TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_responses(vec![part.clone(), part]);
        let produce = ProduceResponse::default().with_responses(vec![topic.clone(), topic]);
        for v in [3, 7, 8, 9, 12, 13] {
            // Byte for byte what the handler would have encoded with it.
            let f = frame_of(&produce, v);
            let Reply::Frame(got) = with_throttle(Reply::Frame(f), ApiKey::Produce, v, 30) else {
                panic!()
            };
            let expected = frame_of(&produce.clone().with_throttle_time_ms(30), v);
            assert_eq!(got, expected, "v{v}");
        }
        let versions = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default().with_api_key(0).with_max_version(13),
            ApiVersion::default().with_api_key(1).with_max_version(17),
        ]);
        for v in [1, 2, 3, 4] {
            let f = frame_of(&versions, v);
            let r: ApiVersionsResponse = decode_frame(
                with_throttle(Reply::Frame(f), ApiKey::ApiVersions, v, 30),
                v,
            );
            assert_eq!(r.throttle_time_ms, 30, "v{v}");
            assert_eq!(r.api_keys, versions.api_keys);
        }
        let f = frame_of(&OffsetDeleteResponse::default().with_error_code(16), 0);
        let r: OffsetDeleteResponse = decode_frame(
            with_throttle(Reply::Frame(f), ApiKey::OffsetDelete, 0, 30),
            0,
        );
        assert_eq!((r.throttle_time_ms, r.error_code), (30, 16));
    }

    #[test]
    fn a_truncated_frame_is_left_as_it_is() {
        let mut f = frame_of(&ProduceResponse::default(), 9);
        f.truncate(10);
        let before = f.clone();
        let Reply::Frame(after) = with_throttle(Reply::Frame(f), ApiKey::Produce, 9, 30) else {
            panic!()
        };
        assert_eq!(before, after);
    }
}
