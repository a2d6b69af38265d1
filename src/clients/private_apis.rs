//! kastle's private API keys on the controller listener and the wire form
//! of their bodies. Kafka's KRaft uses its own Raft RPCs (Vote, Fetch...);
//! kastle runs openraft instead, so the controllers exchange openraft's
//! messages under a key far from Kafka's (32700), and brokers read the
//! committed metadata through a second one (32701) rather than Kafka's
//! Raft Fetch. Both use request header v1 and response header v0, like a
//! non-flexible Kafka API, so they share the listener's framing.

use bytes::{Buf, BufMut, BytesMut};

/// openraft's AppendEntries / Vote / InstallSnapshot, the body being the
/// request serialized as JSON (metadata-sized payloads: JSON is fine and
/// readable in a capture).
pub const RAFT_RPC_KEY: i16 = 32700;
/// A broker's long poll for committed metadata.
pub const METADATA_FETCH_KEY: i16 = 32701;
pub const REQUEST_HEADER_VERSION: i16 = 1;
pub const RESPONSE_HEADER_VERSION: i16 = 0;

/// The most records one metadata fetch answer may carry: the whole image
/// is sent when it changed, so this bounds the image kastle serves.
pub const MAX_FETCH_RECORDS: usize = 1_000_000;
/// The largest framed record accepted in a fetch answer.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The broker's request: "the metadata after `after_offset`" (the last
/// applied log index it has, -1 for none), waiting up to `max_wait_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataFetchRequest {
    pub broker_id: i32,
    pub after_offset: i64,
    pub max_wait_ms: i32,
}

/// The controller's answer. `records` is the whole image (as records, in
/// the order a snapshot holds them) when it moved past `after_offset`,
/// `None` when nothing changed within the wait. `leader_id` names the
/// active controller (-1 unknown), so a broker that asked a follower
/// (error NOT_CONTROLLER) moves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFetchResponse {
    pub error_code: i16,
    pub leader_id: i32,
    pub offset: i64,
    pub records: Option<Vec<Vec<u8>>>,
}

impl MetadataFetchRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(16);
        b.put_i32(self.broker_id);
        b.put_i64(self.after_offset);
        b.put_i32(self.max_wait_ms);
        b.to_vec()
    }

    pub fn decode(mut b: &[u8]) -> Result<MetadataFetchRequest, String> {
        if b.len() < 16 {
            return Err(format!("a metadata fetch request of {} bytes", b.len()));
        }
        Ok(MetadataFetchRequest {
            broker_id: b.get_i32(),
            after_offset: b.get_i64(),
            max_wait_ms: b.get_i32(),
        })
    }
}

impl MetadataFetchResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(self.error_code);
        b.put_i32(self.leader_id);
        b.put_i64(self.offset);
        match &self.records {
            None => b.put_i32(-1),
            Some(records) => {
                b.put_i32(records.len() as i32);
                for r in records {
                    b.put_i32(r.len() as i32);
                    b.put_slice(r);
                }
            }
        }
        b.to_vec()
    }

    pub fn decode(mut b: &[u8]) -> Result<MetadataFetchResponse, String> {
        if b.len() < 18 {
            return Err(format!("a metadata fetch response of {} bytes", b.len()));
        }
        let error_code = b.get_i16();
        let leader_id = b.get_i32();
        let offset = b.get_i64();
        let count = b.get_i32();
        let records = if count < 0 {
            None
        } else {
            let count = count as usize;
            if count > MAX_FETCH_RECORDS {
                return Err(format!("{count} records in a metadata fetch response"));
            }
            let mut out = Vec::with_capacity(count.min(4096));
            for i in 0..count {
                if b.remaining() < 4 {
                    return Err(format!("record {i} of {count}: truncated length"));
                }
                let len = b.get_i32();
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= MAX_RECORD_BYTES && *l <= b.remaining())
                    .ok_or_else(|| format!("record {i} of {count}: bad length {len}"))?;
                out.push(b[..len].to_vec());
                b.advance(len);
            }
            Some(out)
        };
        Ok(MetadataFetchResponse {
            error_code,
            leader_id,
            offset,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_fetch_roundtrips_and_refuses_garbage() {
        let req = MetadataFetchRequest {
            broker_id: 3,
            after_offset: 41,
            max_wait_ms: 500,
        };
        assert_eq!(MetadataFetchRequest::decode(&req.encode()).unwrap(), req);
        let resp = MetadataFetchResponse {
            error_code: 0,
            leader_id: 2,
            offset: 42,
            records: Some(vec![vec![1, 2, 3], vec![]]),
        };
        assert_eq!(MetadataFetchResponse::decode(&resp.encode()).unwrap(), resp);
        let mut bad = resp.encode();
        bad.truncate(bad.len() - 2);
        assert!(MetadataFetchResponse::decode(&bad).is_err());
        assert!(MetadataFetchRequest::decode(&[0; 3]).is_err());
    }
}
