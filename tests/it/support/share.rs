//! Share group (KIP-932) helpers: ShareFetch and ShareAcknowledge of one
//! partition at any version (v2 through kastle's own codec, KIP-1206's
//! acquire mode and KIP-1222's RENEW), and what their answers acquired or
//! refused.

use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic,
};
use kafka_protocol::messages::{
    GroupId, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse,
};
use kafka_protocol::protocol::Decodable;
use kastle::protocol::share_v2::{
    write_share_acknowledge, write_share_fetch, ShareFetchV2Fields, BATCH_OPTIMIZED,
};
use uuid::Uuid;

use super::{sb, Client};

/// Kafka's acknowledge types.
pub const ACCEPT: i8 = 1;
pub const RELEASE: i8 = 2;
pub const REJECT: i8 = 3;
pub const RENEW: i8 = 4;

/// One acknowledgement batch: first offset, last offset, its one type.
pub type Ack = (i64, i64, i8);

/// What a ShareFetch asks besides its session and acknowledgements.
#[derive(Clone, Copy)]
pub struct Ask {
    pub max_wait_ms: i32,
    pub max_bytes: i32,
    pub max_records: i32,
    /// ShareAcquireMode (v2).
    pub mode: i8,
    /// IsRenewAck (v2).
    pub renew: bool,
}

/// An ordinary fetch that does not wait.
pub const FETCH: Ask = Ask {
    max_wait_ms: 0,
    max_bytes: 1 << 20,
    max_records: 500,
    mode: BATCH_OPTIMIZED,
    renew: false,
};

/// A renew-only ShareFetch: it asks for nothing.
pub const RENEW_ONLY: Ask = Ask {
    max_wait_ms: 0,
    max_bytes: 0,
    max_records: 0,
    mode: BATCH_OPTIMIZED,
    renew: true,
};

/// A ShareFetch of partition 0 of `topic` at `version`, acknowledging
/// `acks` on the way (v2 is written by kastle's codec; its response has
/// v1's layout).
#[allow(clippy::too_many_arguments)]
pub fn fetch_at(
    c: &mut Client,
    version: i16,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    acks: &[Ack],
    ask: Ask,
) -> ShareFetchResponse {
    let part = FetchPartition::default()
        .with_partition_index(0)
        .with_acknowledgement_batches(
            acks.iter()
                .map(|(f, l, t)| {
                    AcknowledgementBatch::default()
                        .with_first_offset(*f)
                        .with_last_offset(*l)
                        .with_acknowledge_types(vec![*t])
                })
                .collect(),
        );
    let req = ShareFetchRequest::default()
        .with_group_id(Some(GroupId(sb(group))))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(ask.max_wait_ms)
        .with_max_bytes(ask.max_bytes)
        .with_max_records(ask.max_records)
        .with_batch_size(ask.max_records)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![part])]);
    if version < 2 {
        return c.call(version, &req);
    }
    let fields = ShareFetchV2Fields {
        share_acquire_mode: ask.mode,
        is_renew_ack: ask.renew,
    };
    let body = write_share_fetch(&req, fields).expect("a v2 body");
    let corr = c.next_corr();
    c.send(78, 2, corr, &body);
    let (got, mut resp) = c.recv(78, 2);
    assert_eq!(got, corr, "correlation id");
    ShareFetchResponse::decode(&mut resp, 1).expect("v2's response is v1's layout")
}

/// A v1 ShareFetch of partition 0 of `topic` that waits up to 200 ms for
/// records, acknowledging `acks` on the way.
pub fn fetch_waiting(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    acks: &[Ack],
) -> ShareFetchResponse {
    let ask = Ask {
        max_wait_ms: 200,
        ..FETCH
    };
    fetch_at(c, 1, group, member, epoch, topic, acks, ask)
}

/// (first, last, delivery count) of every acquired range in the answer.
pub fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .flat_map(|p| p.acquired_records.iter())
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

/// (partition, acknowledge error) of every partition answered.
pub fn ack_errors(r: &ShareFetchResponse) -> Vec<(i32, i16)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.acknowledge_error_code))
        .collect()
}

/// A ShareAcknowledge of partition 0 of `topic` at `version`: (top-level
/// error, AcquisitionLockTimeoutMs (v2 only), the partitions' errors).
pub fn acknowledge(
    c: &mut Client,
    version: i16,
    (group, member, epoch): (&str, &str, i32),
    topic: Uuid,
    acks: &[Ack],
    renew: bool,
) -> (i16, Option<i32>, Vec<i16>) {
    let req = ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(sb(group))))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(epoch)
        .with_topics(vec![AcknowledgeTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(
                    acks.iter()
                        .map(|(f, l, t)| {
                            AckBatch::default()
                                .with_first_offset(*f)
                                .with_last_offset(*l)
                                .with_acknowledge_types(vec![*t])
                        })
                        .collect(),
                )])]);
    let errors = |r: &ShareAcknowledgeResponse| -> Vec<i16> {
        r.responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    };
    if version < 2 {
        let r: ShareAcknowledgeResponse = c.call(version, &req);
        return (r.error_code, None, errors(&r));
    }
    let body = write_share_acknowledge(&req, renew).expect("a v2 body");
    let corr = c.next_corr();
    c.send(79, 2, corr, &body);
    let (got, resp) = c.recv(79, 2);
    assert_eq!(got, corr, "correlation id");
    // ThrottleTimeMs, ErrorCode, ErrorMessage (null here), then v2's
    // AcquisitionLockTimeoutMs; the rest is v1's layout.
    assert_eq!(resp[6], 0, "a null error message");
    let lock = i32::from_be_bytes([resp[7], resp[8], resp[9], resp[10]]);
    let mut v1 = bytes::Bytes::from([&resp[..7], &resp[11..]].concat());
    let r = ShareAcknowledgeResponse::decode(&mut v1, 1).expect("v1's layout around the lock");
    (r.error_code, Some(lock), errors(&r))
}
