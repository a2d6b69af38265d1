//! The offset APIs' versions that name topics by id (KIP-848's OffsetCommit
//! v10 and OffsetFetch v10, KIP-1319's TxnOffsetCommit v6): kastle's own
//! request codec, because the `kafka-protocol` crate decodes their requests
//! up to the version before only. Each version replaces the topic's `Name`
//! with its `TopicId` at the same place and changes nothing else, so a
//! request is read into the crate's own request type (names left empty,
//! `topic_id` set; TxnOffsetCommit's topic has no such field, so its ids
//! come beside it) and its handler serves it with the logic of the older
//! versions once it has resolved the ids. The crate encodes OffsetCommit's
//! and OffsetFetch's v10 responses itself; TxnOffsetCommit's v6 response
//! is written here ([`TxnOffsetCommitResponseV6`]).
//!
//! Field order and encodings follow Kafka's message definitions (all three
//! versions are flexible); every struct ends with its tagged-field section,
//! read and skipped, written empty. Requests are read only after the schema
//! walker has bounded every length in them (`schema::tables`). The writers
//! are the clients' side, for tests.

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetFetchRequest, ProducerId, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::wire::{DecodeError, Reader, Writer};

/// The first OffsetCommit and OffsetFetch version naming topics by id.
pub const OFFSETS_BY_ID_SINCE: i16 = 10;
/// The first TxnOffsetCommit version naming topics by id.
pub const TXN_OFFSETS_BY_ID_SINCE: i16 = 6;

fn sb(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

/// One committed partition (OffsetCommit and TxnOffsetCommit share the
/// layout): index, offset, leader epoch, metadata.
type Committed = (i32, i64, i32, Option<String>);
/// [`Committed`] borrowed from a request, for the writers.
type CommittedRef<'a> = (i32, i64, i32, Option<&'a str>);

fn read_committed(r: &mut Reader) -> Result<Committed, DecodeError> {
    let c = (r.i32()?, r.i64()?, r.i32()?, r.nstr()?);
    r.tags()?;
    Ok(c)
}

fn write_committed(w: &mut Writer, (index, offset, epoch, metadata): CommittedRef) {
    w.i32(index);
    w.i64(offset);
    w.i32(epoch);
    w.nstr(metadata);
    w.tags();
}

/// The topics of a commit by id (OffsetCommit v10 and TxnOffsetCommit v6
/// share the layout): each topic's id and committed partitions, each
/// partition made by `partition`.
fn read_topics<P>(
    r: &mut Reader,
    partition: impl Fn(Committed) -> P,
) -> Result<Vec<(Uuid, Vec<P>)>, DecodeError> {
    r.arr(|r| {
        let id = r.uuid()?;
        let partitions = r.arr(|r| read_committed(r).map(&partition))?;
        r.tags()?;
        Ok((id, partitions))
    })
}

/// Writes what [`read_topics`] reads.
fn write_topics(w: &mut Writer, topics: &[(Uuid, Vec<CommittedRef>)]) {
    w.arr(topics, |w, (id, partitions)| {
        w.uuid(id);
        w.arr(partitions, |w, p| write_committed(w, *p));
        w.tags();
    });
}

/// Reads an OffsetCommit v10 body.
pub fn read_offset_commit(body: &[u8]) -> Result<OffsetCommitRequest, DecodeError> {
    let mut r = Reader::new(body, "OffsetCommitRequest v10");
    let group_id = r.str()?;
    let generation = r.i32()?;
    let member_id = r.str()?;
    let group_instance_id = r.nstr()?;
    let topics = read_topics(&mut r, |(index, offset, epoch, metadata)| {
        OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset)
            .with_committed_leader_epoch(epoch)
            .with_committed_metadata(metadata.map(sb))
    })?
    .into_iter()
    .map(|(id, partitions)| {
        OffsetCommitRequestTopic::default()
            .with_topic_id(id)
            .with_partitions(partitions)
    })
    .collect();
    r.tags()?;
    Ok(OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group_id)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member_id))
        .with_group_instance_id(group_instance_id.map(sb))
        .with_topics(topics))
}

/// An OffsetCommit v10 body (topic names are not written).
pub fn write_offset_commit(req: &OffsetCommitRequest) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&req.group_id.0);
    w.i32(req.generation_id_or_member_epoch);
    w.str(&req.member_id);
    w.nstr(req.group_instance_id.as_deref());
    let topics: Vec<_> = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_deref(),
                )
            });
            (t.topic_id, partitions.collect())
        })
        .collect();
    write_topics(&mut w, &topics);
    w.tags();
    w.0
}

/// Reads an OffsetFetch v10 body (the v8+ groups layout).
pub fn read_offset_fetch(body: &[u8]) -> Result<OffsetFetchRequest, DecodeError> {
    let mut r = Reader::new(body, "OffsetFetchRequest v10");
    let groups = r.arr(|r| {
        let group_id = r.str()?;
        let member_id = r.nstr()?;
        let member_epoch = r.i32()?;
        let topics = r.narr(|r| {
            let topic_id = r.uuid()?;
            let partition_indexes = r.arr(|r| r.i32())?;
            r.tags()?;
            Ok(OffsetFetchRequestTopics::default()
                .with_topic_id(topic_id)
                .with_partition_indexes(partition_indexes))
        })?;
        r.tags()?;
        Ok(OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb(group_id)))
            .with_member_id(member_id.map(sb))
            .with_member_epoch(member_epoch)
            .with_topics(topics))
    })?;
    let require_stable = r.bool()?;
    r.tags()?;
    Ok(OffsetFetchRequest::default()
        .with_groups(groups)
        .with_require_stable(require_stable))
}

/// An OffsetFetch v10 body (topic names are not written).
pub fn write_offset_fetch(req: &OffsetFetchRequest) -> Vec<u8> {
    let mut w = Writer::default();
    w.arr(&req.groups, |w, g| {
        w.str(&g.group_id.0);
        w.nstr(g.member_id.as_deref());
        w.i32(g.member_epoch);
        w.narr(g.topics.as_deref(), |w, t| {
            w.uuid(&t.topic_id);
            w.arr(&t.partition_indexes, |w, p| w.i32(*p));
            w.tags();
        });
        w.tags();
    });
    w.bool(req.require_stable);
    w.tags();
    w.0
}

/// Reads a TxnOffsetCommit v6 body: the request (names left empty; the
/// crate's topic has no id field) and each topic's id, in order.
pub fn read_txn_offset_commit(
    body: &[u8],
) -> Result<(TxnOffsetCommitRequest, Vec<Uuid>), DecodeError> {
    let mut r = Reader::new(body, "TxnOffsetCommitRequest v6");
    let transactional_id = r.str()?;
    let group_id = r.str()?;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let generation_id = r.i32()?;
    let member_id = r.str()?;
    let group_instance_id = r.nstr()?;
    let topics = read_topics(&mut r, |(index, offset, epoch, metadata)| {
        TxnOffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset)
            .with_committed_leader_epoch(epoch)
            .with_committed_metadata(metadata.map(sb))
    })?;
    r.tags()?;
    let (ids, topics): (Vec<Uuid>, Vec<_>) = topics
        .into_iter()
        .map(|(id, partitions)| {
            (
                id,
                TxnOffsetCommitRequestTopic::default().with_partitions(partitions),
            )
        })
        .unzip();
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(sb(transactional_id)))
        .with_group_id(GroupId(sb(group_id)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(producer_epoch)
        .with_generation_id(generation_id)
        .with_member_id(sb(member_id))
        .with_group_instance_id(group_instance_id.map(sb))
        .with_topics(topics);
    Ok((request, ids))
}

/// A TxnOffsetCommit v6 body, topic `i` named by `ids[i]` (nil when
/// missing; topic names are not written).
pub fn write_txn_offset_commit(req: &TxnOffsetCommitRequest, ids: &[Uuid]) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&req.transactional_id.0);
    w.str(&req.group_id.0);
    w.i64(req.producer_id.0);
    w.i16(req.producer_epoch);
    w.i32(req.generation_id);
    w.str(&req.member_id);
    w.nstr(req.group_instance_id.as_deref());
    let topics: Vec<_> = req
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let partitions = t.partitions.iter().map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_deref(),
                )
            });
            (
                ids.get(i).copied().unwrap_or_default(),
                partitions.collect(),
            )
        })
        .collect();
    write_topics(&mut w, &topics);
    w.tags();
    w.0
}

/// TxnOffsetCommit's v6 response: per topic (by id) the error code of each
/// partition; `to_bytes` is the version-6 body (flexible: response header
/// v1), answered to v6+ requests only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnOffsetCommitResponseV6 {
    pub throttle_time_ms: i32,
    pub topics: Vec<(Uuid, Vec<(i32, i16)>)>,
}

impl TxnOffsetCommitResponseV6 {
    /// The response body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i32(self.throttle_time_ms);
        w.arr(&self.topics, |w, (id, partitions)| {
            w.uuid(id);
            w.arr(partitions, |w, (index, error)| {
                w.i32(*index);
                w.i16(*error);
                w.tags();
            });
            w.tags();
        });
        w.tags();
        w.0
    }

    /// Reads a response body (the clients' side, for tests).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "TxnOffsetCommitResponse v6");
        let throttle_time_ms = r.i32()?;
        let topics = r.arr(|r| {
            let id = r.uuid()?;
            let partitions = r.arr(|r| {
                let p = (r.i32()?, r.i16()?);
                r.tags()?;
                Ok(p)
            })?;
            r.tags()?;
            Ok((id, partitions))
        })?;
        r.tags()?;
        Ok(TxnOffsetCommitResponseV6 {
            throttle_time_ms,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::schema::check_request_body;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn commit() -> OffsetCommitRequest {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(sb("g".into())))
            .with_generation_id_or_member_epoch(4)
            .with_member_id(sb("m".into()))
            .with_group_instance_id(Some(sb("i".into())))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_topic_id(id(7))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(42)
                            .with_committed_leader_epoch(3)
                            .with_committed_metadata(Some(sb("md".into()))),
                        OffsetCommitRequestPartition::default().with_partition_index(2),
                    ]),
                OffsetCommitRequestTopic::default().with_topic_id(id(0)),
            ])
    }

    /// Version 10 is version 9 with each topic's name replaced by its id:
    /// the crate reads our bytes with the uuid swapped for a name.
    #[test]
    fn offset_commit_round_trips_and_differs_from_v9_by_the_id_only() {
        let r = commit();
        let body = write_offset_commit(&r);
        assert_eq!(check_request_body(8, 10, &body), Ok(body.len()));
        assert_eq!(read_offset_commit(&body).unwrap(), r);
        let mut named = r.clone();
        for t in &mut named.topics {
            t.name = TopicName(sb("abcdefghijklmno".into()));
            t.topic_id = Uuid::nil();
        }
        let mut v9 = BytesMut::new();
        named.encode(&mut v9, 9).unwrap();
        // A 15-byte compact string takes 16 bytes, as a uuid does.
        assert_eq!(v9.len(), body.len());
        let back = OffsetCommitRequest::decode(&mut Bytes::from(v9.to_vec()), 9).unwrap();
        assert_eq!(back.topics[0].partitions, r.topics[0].partitions);
        assert!(read_offset_commit(&body[..body.len() - 2]).is_err());
        assert!(check_request_body(8, 10, &body[..body.len() - 2]).is_err());
    }

    #[test]
    fn offset_fetch_round_trips_null_topics_included() {
        let r = OffsetFetchRequest::default()
            .with_require_stable(true)
            .with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb("g".into())))
                    .with_member_id(Some(sb("m".into())))
                    .with_member_epoch(9)
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_topic_id(id(5))
                        .with_partition_indexes(vec![0, 5])])),
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb("h".into())))
                    .with_topics(None),
            ]);
        let body = write_offset_fetch(&r);
        assert_eq!(check_request_body(9, 10, &body), Ok(body.len()));
        assert_eq!(read_offset_fetch(&body).unwrap(), r);
        assert!(read_offset_fetch(&body[..body.len() - 2]).is_err());
    }

    #[test]
    fn txn_offset_commit_and_its_response_round_trip() {
        let r = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(sb("tx".into())))
            .with_group_id(GroupId(sb("g".into())))
            .with_producer_id(ProducerId(11))
            .with_producer_epoch(2)
            .with_generation_id(5)
            .with_member_id(sb("m".into()))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(8)])]);
        let body = write_txn_offset_commit(&r, &[id(3)]);
        assert_eq!(check_request_body(28, 6, &body), Ok(body.len()));
        assert_eq!(read_txn_offset_commit(&body).unwrap(), (r, vec![id(3)]));
        let resp = TxnOffsetCommitResponseV6 {
            throttle_time_ms: 3,
            topics: vec![(id(3), vec![(0, 0), (1, 100)])],
        };
        let bytes = resp.to_bytes();
        // throttle, 1 topic, uuid, 2 partitions of (i32, i16, tags), tags, tags.
        assert_eq!(bytes.len(), 4 + 1 + 16 + 1 + 2 * 7 + 1 + 1);
        assert_eq!(TxnOffsetCommitResponseV6::decode(&bytes).unwrap(), resp);
    }
}
