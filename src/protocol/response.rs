//! Response framing: size prefix, response header, body encoded by the
//! `kafka-protocol` crate at the request's version.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// Encodes a complete response frame (4-byte size, header, body).
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    api_version: i16,
    body: &R,
) -> anyhow::Result<BytesMut> {
    let header_version = R::header_version(api_version);
    encode_with_header_version(correlation_id, header_version, api_version, body)
}

pub fn encode_with_header_version<R: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body_version: i16,
    body: &R,
) -> anyhow::Result<BytesMut> {
    let body_size = body.compute_size(body_version)?;
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut buf = BytesMut::with_capacity(4 + header_size + body_size);
    buf.put_i32((header_size + body_size) as i32);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        // Empty tagged-field section.
        buf.put_u8(0);
    }
    body.encode(&mut buf, body_version)?;
    anyhow::ensure!(
        buf.len() == 4 + header_size + body_size,
        "encoded response size {} differs from computed {}",
        buf.len(),
        4 + header_size + body_size
    );
    Ok(buf)
}

/// The response header version for an API; ApiVersions always answers with
/// header v0 so that a client of any version can read the error.
pub fn response_header_version(key: ApiKey, api_version: i16) -> i16 {
    key.response_header_version(api_version)
}

/// A response frame as a list of buffers: encoded fields plus, by
/// reference, the record sets read from the log, so a fetch response is
/// written to the socket without copying its records into one buffer.
pub fn encode_response_chunked<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    api_version: i16,
    body: &R,
    records: &[bytes::Bytes],
) -> anyhow::Result<Vec<bytes::Bytes>> {
    let header_version = R::header_version(api_version);
    let body_size = body.compute_size(api_version)?;
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut buf = ChunkedBuf::new(records);
    buf.head.put_i32((header_size + body_size) as i32);
    buf.head.put_i32(correlation_id);
    if header_version >= 1 {
        buf.head.put_u8(0);
    }
    body.encode(&mut buf, api_version)?;
    let chunks = buf.finish();
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    anyhow::ensure!(
        total == 4 + header_size + body_size,
        "encoded response size {total} differs from computed {}",
        4 + header_size + body_size
    );
    Ok(chunks)
}

/// Below this, copying a record set is cheaper than a separate buffer.
const MIN_SHARED_CHUNK: usize = 4096;

/// An encoder target that copies small fields into a growing head buffer but
/// takes a known record set by reference when the encoder writes exactly it.
struct ChunkedBuf<'a> {
    head: BytesMut,
    done: Vec<bytes::Bytes>,
    /// Total bytes in `done`.
    done_len: usize,
    records: &'a [bytes::Bytes],
}

impl<'a> ChunkedBuf<'a> {
    fn new(records: &'a [bytes::Bytes]) -> Self {
        ChunkedBuf {
            head: BytesMut::with_capacity(1024),
            done: Vec::new(),
            done_len: 0,
            records,
        }
    }

    fn shared(&self, src: &[u8]) -> Option<&bytes::Bytes> {
        if src.len() < MIN_SHARED_CHUNK {
            return None;
        }
        self.records
            .iter()
            .find(|r| r.as_ptr() == src.as_ptr() && r.len() == src.len())
    }

    fn finish(mut self) -> Vec<bytes::Bytes> {
        if !self.head.is_empty() {
            self.done.push(self.head.split().freeze());
        }
        self.done
    }
}

// SAFETY: every method delegates to the head `BytesMut`, whose own BufMut
// implementation upholds the contract; `put_slice` only adds whole buffers
// to `done` in between.
unsafe impl BufMut for ChunkedBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: forwarded under the caller's guarantee.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.shared(src).cloned() {
            Some(records) => {
                if !self.head.is_empty() {
                    let h = self.head.split().freeze();
                    self.done_len += h.len();
                    self.done.push(h);
                }
                self.done_len += records.len();
                self.done.push(records);
            }
            None => self.head.extend_from_slice(src),
        }
    }
}

impl kafka_protocol::protocol::buf::ByteBufMut for ChunkedBuf<'_> {
    fn offset(&self) -> usize {
        self.done_len + self.head.len()
    }

    // Message encoders never seek (only record-batch builders do); keep
    // these total by confining them to the head buffer.
    fn seek(&mut self, offset: usize) {
        let local = offset.saturating_sub(self.done_len);
        if local > self.head.len() {
            self.head.resize(local, 0);
        } else {
            self.head.truncate(local);
        }
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        let start = r.start.saturating_sub(self.done_len).min(self.head.len());
        let end = r
            .end
            .saturating_sub(self.done_len)
            .clamp(start, self.head.len());
        &mut self.head[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;

    #[test]
    fn chunked_encoding_equals_contiguous_and_shares_records() {
        let big = bytes::Bytes::from(vec![7u8; 10_000]);
        let small = bytes::Bytes::from(vec![9u8; 10]);
        let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_partitions(vec![
                PartitionData::default().with_records(Some(big.clone())),
                PartitionData::default()
                    .with_partition_index(1)
                    .with_records(Some(small.clone())),
            ])]);
        for version in [4i16, 12, 16] {
            let flat = encode_response(5, version, &resp).unwrap();
            let chunks =
                encode_response_chunked(5, version, &resp, &[big.clone(), small.clone()]).unwrap();
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(&flat[..], &joined[..], "v{version}");
            assert!(
                chunks.iter().any(|c| c.as_ptr() == big.as_ptr()),
                "records shared by reference"
            );
        }
    }
}
