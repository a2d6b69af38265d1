//! DescribeShareGroupOffsets (90), versions 0-1 (flexible): kastle's own
//! codec, because the `kafka-protocol` crate stops at version 0 and
//! version 1 adds KIP-1226's `Lag` to each partition of the response. The
//! request is the same in both versions. Field order and encodings follow
//! Kafka's message definitions; every struct ends with its tagged-field
//! section (read and skipped, written empty).
//!
//! Requests are read only after the schema walker has bounded every length
//! in them (`schema::tables`).

use super::wire::{DecodeError, Reader, Writer};

pub const DESCRIBE_SHARE_GROUP_OFFSETS: i16 = 90;

/// The lag of a partition whose lag is unknown (and version 0's default).
pub const UNKNOWN_LAG: i64 = -1;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeShareGroupOffsetsRequest {
    pub groups: Vec<RequestGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestGroup {
    pub group_id: String,
    /// None: every share partition of the group with state.
    pub topics: Option<Vec<RequestTopic>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestTopic {
    pub topic_name: String,
    pub partitions: Vec<i32>,
}

impl DescribeShareGroupOffsetsRequest {
    /// Reads a request body (either version: they are the same).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        Self::read(body).map(|(r, _)| r)
    }

    /// Reads a request body: the request and the bytes it took (Kafka
    /// ignores trailing bytes).
    pub fn read(body: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(body, "DescribeShareGroupOffsetsRequest");
        let groups = r.arr(|r| {
            let group_id = r.str()?;
            let topics = r.narr(|r| {
                let t = RequestTopic {
                    topic_name: r.str()?,
                    partitions: r.arr(|r| r.i32())?,
                };
                r.tags()?;
                Ok(t)
            })?;
            r.tags()?;
            Ok(RequestGroup { group_id, topics })
        })?;
        r.tags()?;
        Ok((
            DescribeShareGroupOffsetsRequest { groups },
            body.len() - r.remaining(),
        ))
    }

    /// The request body (for clients and tests).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.arr(&self.groups, |w, g| {
            w.str(&g.group_id);
            w.narr(g.topics.as_deref(), |w, t| {
                w.str(&t.topic_name);
                w.arr(&t.partitions, |w, p| w.i32(*p));
                w.tags();
            });
            w.tags();
        });
        w.tags();
        w.0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeShareGroupOffsetsResponse {
    pub throttle_time_ms: i32,
    pub groups: Vec<ResponseGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseGroup {
    pub group_id: String,
    pub topics: Vec<ResponseTopic>,
    pub error_code: i16,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseTopic {
    pub topic_name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<ResponsePartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePartition {
    pub partition_index: i32,
    pub start_offset: i64,
    pub leader_epoch: i32,
    /// Version 1+ (KIP-1226); [`UNKNOWN_LAG`] when unknown.
    pub lag: i64,
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl Default for ResponsePartition {
    fn default() -> Self {
        ResponsePartition {
            partition_index: 0,
            start_offset: 0,
            leader_epoch: 0,
            lag: UNKNOWN_LAG,
            error_code: 0,
            error_message: None,
        }
    }
}

impl DescribeShareGroupOffsetsResponse {
    /// The response body at `version`.
    pub fn write(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::default();
        w.i32(self.throttle_time_ms);
        w.arr(&self.groups, |w, g| {
            w.str(&g.group_id);
            w.arr(&g.topics, |w, t| {
                w.str(&t.topic_name);
                w.uuid(&t.topic_id);
                w.arr(&t.partitions, |w, p| {
                    w.i32(p.partition_index);
                    w.i64(p.start_offset);
                    w.i32(p.leader_epoch);
                    if version >= 1 {
                        w.i64(p.lag);
                    }
                    w.i16(p.error_code);
                    w.nstr(p.error_message.as_deref());
                    w.tags();
                });
                w.tags();
            });
            w.i16(g.error_code);
            w.nstr(g.error_message.as_deref());
            w.tags();
        });
        w.tags();
        w.0
    }

    /// Reads a response body at `version` (for clients and tests); a
    /// version 0 partition's lag is [`UNKNOWN_LAG`].
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "DescribeShareGroupOffsetsResponse");
        let throttle_time_ms = r.i32()?;
        let groups = r.arr(|r| {
            let group_id = r.str()?;
            let topics = r.arr(|r| {
                let topic_name = r.str()?;
                let topic_id = r.uuid()?;
                let partitions = r.arr(|r| {
                    let partition_index = r.i32()?;
                    let start_offset = r.i64()?;
                    let leader_epoch = r.i32()?;
                    let lag = if version >= 1 { r.i64()? } else { UNKNOWN_LAG };
                    let p = ResponsePartition {
                        partition_index,
                        start_offset,
                        leader_epoch,
                        lag,
                        error_code: r.i16()?,
                        error_message: r.nstr()?,
                    };
                    r.tags()?;
                    Ok(p)
                })?;
                r.tags()?;
                Ok(ResponseTopic {
                    topic_name,
                    topic_id,
                    partitions,
                })
            })?;
            let g = ResponseGroup {
                group_id,
                topics,
                error_code: r.i16()?,
                error_message: r.nstr()?,
            };
            r.tags()?;
            Ok(g)
        })?;
        r.tags()?;
        r.end()?;
        Ok(DescribeShareGroupOffsetsResponse {
            throttle_time_ms,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::describe_share_group_offsets_response as crate_resp;
    use kafka_protocol::protocol::Decodable;

    fn sample() -> DescribeShareGroupOffsetsResponse {
        DescribeShareGroupOffsetsResponse {
            throttle_time_ms: 5,
            groups: vec![ResponseGroup {
                group_id: "g".into(),
                topics: vec![ResponseTopic {
                    topic_name: "t".into(),
                    topic_id: uuid::Uuid::from_u128(9),
                    partitions: vec![
                        ResponsePartition {
                            partition_index: 0,
                            start_offset: 4,
                            leader_epoch: 1,
                            lag: 6,
                            ..Default::default()
                        },
                        ResponsePartition {
                            partition_index: 1,
                            start_offset: -1,
                            error_code: 29,
                            error_message: Some("Topic authorization failed.".into()),
                            ..Default::default()
                        },
                    ],
                }],
                error_code: 0,
                error_message: None,
            }],
        }
    }

    #[test]
    fn version_0_is_the_crates_layout() {
        let r = sample();
        let mut body = Bytes::from(r.write(0));
        let c = kafka_protocol::messages::DescribeShareGroupOffsetsResponse::decode(&mut body, 0)
            .expect("the crate reads our v0");
        let p: &crate_resp::DescribeShareGroupOffsetsResponsePartition =
            &c.groups[0].topics[0].partitions[1];
        assert_eq!(
            (p.partition_index, p.start_offset, p.error_code),
            (1, -1, 29)
        );
        assert_eq!(c.throttle_time_ms, 5);
        assert!(body.is_empty());
    }

    #[test]
    fn version_1_carries_the_lag() {
        let r = sample();
        let v1 = r.write(1);
        assert_eq!(
            v1.len(),
            r.write(0).len() + 2 * 8,
            "one int64 per partition"
        );
        assert_eq!(
            DescribeShareGroupOffsetsResponse::decode(&v1, 1).unwrap(),
            r
        );
        let v0 = DescribeShareGroupOffsetsResponse::decode(&r.write(0), 0).unwrap();
        assert_eq!(v0.groups[0].topics[0].partitions[0].lag, UNKNOWN_LAG);
    }

    #[test]
    fn requests_round_trip() {
        let req = DescribeShareGroupOffsetsRequest {
            groups: vec![
                RequestGroup {
                    group_id: "a".into(),
                    topics: None,
                },
                RequestGroup {
                    group_id: "b".into(),
                    topics: Some(vec![RequestTopic {
                        topic_name: "t".into(),
                        partitions: vec![0, 2],
                    }]),
                },
            ],
        };
        let body = req.encode();
        assert_eq!(
            DescribeShareGroupOffsetsRequest::decode(&body).unwrap(),
            req
        );
        assert!(crate::protocol::schema::check_request_body(90, 1, &body).is_ok());
        assert!(DescribeShareGroupOffsetsRequest::decode(&body[..body.len() - 2]).is_err());
    }
}
