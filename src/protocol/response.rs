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

/// The size prefix of a response frame; a response past `i32::MAX` bytes
/// cannot be framed (the connection closes rather than send a wrapped size).
fn frame_size(header_size: usize, body_size: usize) -> anyhow::Result<i32> {
    header_size
        .checked_add(body_size)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| anyhow::anyhow!("response of {body_size} bytes is too large to frame"))
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
    buf.put_i32(frame_size(header_size, body_size)?);
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

/// A response body kastle wrote itself (own codecs past the crate, the
/// controller's private keys), framed under response header `HEADER`:
/// written once, so its size is the bytes' length.
pub struct Written<const HEADER: i16>(pub Vec<u8>);

impl<const HEADER: i16> Encodable for Written<HEADER> {
    fn encode<B: BufMut>(&self, buf: &mut B, _version: i16) -> anyhow::Result<()> {
        buf.put_slice(&self.0);
        Ok(())
    }
    fn compute_size(&self, _version: i16) -> anyhow::Result<usize> {
        Ok(self.0.len())
    }
}

impl<const HEADER: i16> HeaderVersion for Written<HEADER> {
    fn header_version(_version: i16) -> i16 {
        HEADER
    }
}

/// The response header version for an API; ApiVersions always answers with
/// header v0 so that a client of any version can read the error.
pub fn response_header_version(key: ApiKey, api_version: i16) -> i16 {
    key.response_header_version(api_version)
}

/// Bytes of a file, sent with `sendfile(2)` rather than read into memory:
/// the zero-copy half of a fetch response.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: std::sync::Arc<std::fs::File>,
    pub position: u64,
    pub len: usize,
}

/// One piece of an encoded response frame.
#[derive(Debug, Clone)]
pub enum Chunk {
    Mem(bytes::Bytes),
    File(FileRegion),
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Mem(b) => b.len(),
            Chunk::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A record set placed in a response body: already in memory, or a file
/// region standing in the body as a [`placeholder`] of the same length.
#[derive(Debug, Clone)]
pub enum RecordSource {
    Mem(bytes::Bytes),
    File(FileRegion),
}

/// Zeroes that stand for file regions while a body is encoded. The encoder
/// only asks their length and hands the slice to `put_slice`, where it is
/// swapped for the region, so these pages are never touched (they cost
/// address space, not memory).
static PLACEHOLDER: [u8; MAX_FILE_REGION] = [0; MAX_FILE_REGION];

/// Largest file region a response may carry by reference; bigger record
/// sets are read into memory.
pub const MAX_FILE_REGION: usize = 64 << 20;

/// The stand-in for a file region of `len` bytes in a message body, or
/// `None` when the region is too large to be sent by reference.
pub fn placeholder(len: usize) -> Option<bytes::Bytes> {
    (len <= MAX_FILE_REGION).then(|| bytes::Bytes::from_static(&PLACEHOLDER[..len]))
}

/// A response frame as a list of chunks: encoded fields plus, by reference,
/// the record sets (buffers or file regions), so a fetch response goes to
/// the socket without its records being copied into one buffer.
///
/// `records` lists the non-empty record sets in the order the encoder
/// writes them (message field order). Every file region must be matched, or
/// the frame would carry placeholder zeroes, so an unmatched one is an error.
pub fn encode_response_chunked<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    api_version: i16,
    body: &R,
    records: &[RecordSource],
) -> anyhow::Result<Vec<Chunk>> {
    let header_version = R::header_version(api_version);
    let body_size = body.compute_size(api_version)?;
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut buf = ChunkedBuf::new(records);
    buf.head.put_i32(frame_size(header_size, body_size)?);
    buf.head.put_i32(correlation_id);
    if header_version >= 1 {
        buf.head.put_u8(0);
    }
    body.encode(&mut buf, api_version)?;
    let unmatched = buf.records[buf.next..]
        .iter()
        .any(|r| matches!(r, RecordSource::File(_)));
    anyhow::ensure!(
        !unmatched,
        "a file region was not found in the encoded response"
    );
    let chunks = buf.finish();
    let total: usize = chunks.iter().map(Chunk::len).sum();
    anyhow::ensure!(
        total == 4 + header_size + body_size,
        "encoded response size {total} differs from computed {}",
        4 + header_size + body_size
    );
    Ok(chunks)
}

/// Below this, copying a record set is cheaper than a separate buffer.
pub const MIN_SHARED_CHUNK: usize = 4096;

/// An encoder target that copies small fields into a growing head buffer but
/// takes the expected record sets by reference when the encoder writes them.
struct ChunkedBuf<'a> {
    head: BytesMut,
    done: Vec<Chunk>,
    /// Total bytes in `done`.
    done_len: usize,
    records: &'a [RecordSource],
    /// The record set the encoder writes next.
    next: usize,
}

impl<'a> ChunkedBuf<'a> {
    fn new(records: &'a [RecordSource]) -> Self {
        ChunkedBuf {
            head: BytesMut::with_capacity(1024),
            done: Vec::new(),
            done_len: 0,
            records,
            next: 0,
        }
    }

    /// Whether `src` is the next expected record set (same memory, or the
    /// placeholder of the next file region).
    fn matches_next(&self, src: &[u8]) -> Option<&'a RecordSource> {
        let r = self.records.get(self.next)?;
        let hit = match r {
            RecordSource::Mem(b) => b.as_ptr() == src.as_ptr() && b.len() == src.len(),
            RecordSource::File(f) => src.as_ptr() == PLACEHOLDER.as_ptr() && src.len() == f.len,
        };
        hit.then_some(r)
    }

    fn push(&mut self, chunk: Chunk) {
        if !self.head.is_empty() {
            let h = self.head.split().freeze();
            self.done_len += h.len();
            self.done.push(Chunk::Mem(h));
        }
        self.done_len += chunk.len();
        self.done.push(chunk);
    }

    fn finish(mut self) -> Vec<Chunk> {
        if !self.head.is_empty() {
            self.done.push(Chunk::Mem(self.head.split().freeze()));
        }
        self.done
    }
}

// SAFETY: every method delegates to the head `BytesMut`, whose own BufMut
// implementation upholds the contract; `put_slice` only adds whole chunks
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
        match self.matches_next(src) {
            Some(r) => {
                self.next += 1;
                match r {
                    RecordSource::Mem(b) if b.len() < MIN_SHARED_CHUNK => {
                        self.head.extend_from_slice(src)
                    }
                    RecordSource::Mem(b) => self.push(Chunk::Mem(b.clone())),
                    RecordSource::File(f) => self.push(Chunk::File(f.clone())),
                }
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

    fn joined(chunks: &[Chunk]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            match c {
                Chunk::Mem(b) => out.extend_from_slice(b),
                Chunk::File(f) => {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0u8; f.len];
                    f.file.read_exact_at(&mut buf, f.position).unwrap();
                    out.extend_from_slice(&buf);
                }
            }
        }
        out
    }

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
        let records = [RecordSource::Mem(big.clone()), RecordSource::Mem(small)];
        for version in [4i16, 12, 16] {
            let flat = encode_response(5, version, &resp).unwrap();
            let chunks = encode_response_chunked(5, version, &resp, &records).unwrap();
            assert_eq!(&flat[..], &joined(&chunks)[..], "v{version}");
            assert!(
                chunks
                    .iter()
                    .any(|c| matches!(c, Chunk::Mem(b) if b.as_ptr() == big.as_ptr())),
                "records shared by reference"
            );
        }
    }

    #[test]
    fn file_regions_replace_their_placeholders_in_order() {
        use std::io::Write;
        // Two regions of the same length: only the order tells them apart.
        let mut f = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&content).unwrap();
        let file = std::sync::Arc::new(f);
        let a = FileRegion {
            file: file.clone(),
            position: 100,
            len: 8000,
        };
        let b = FileRegion {
            file: file.clone(),
            position: 20_000,
            len: 8000,
        };
        let part = |i: i32, len: usize| {
            PartitionData::default()
                .with_partition_index(i)
                .with_records(Some(placeholder(len).unwrap()))
        };
        let resp = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default()
                .with_partitions(vec![part(0, 8000), part(1, 8000)])]);
        let real = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_partitions(vec![
                PartitionData::default()
                    .with_partition_index(0)
                    .with_records(Some(bytes::Bytes::copy_from_slice(&content[100..8100]))),
                PartitionData::default()
                    .with_partition_index(1)
                    .with_records(Some(bytes::Bytes::copy_from_slice(
                        &content[20_000..28_000],
                    ))),
            ])]);
        let records = [RecordSource::File(a), RecordSource::File(b)];
        for version in [4i16, 12, 16] {
            let chunks = encode_response_chunked(9, version, &resp, &records).unwrap();
            assert_eq!(
                chunks
                    .iter()
                    .filter(|c| matches!(c, Chunk::File(_)))
                    .count(),
                2
            );
            let flat = encode_response(9, version, &real).unwrap();
            assert_eq!(&flat[..], &joined(&chunks)[..], "v{version}");
        }
    }

    #[test]
    fn an_unmatched_file_region_is_an_error_not_zeroes_on_the_wire() {
        let file = std::sync::Arc::new(tempfile::tempfile().unwrap());
        let region = FileRegion {
            file,
            position: 0,
            len: 5000,
        };
        // The body does not carry the placeholder at all.
        let resp = FetchResponse::default();
        assert!(encode_response_chunked(1, 12, &resp, &[RecordSource::File(region)]).is_err());
        assert!(placeholder(MAX_FILE_REGION + 1).is_none());
    }
}
