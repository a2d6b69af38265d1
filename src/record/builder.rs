//! Encoder for real v2 record batches (varint record fields, CRC-32C).
//! Not a production write path: the broker stores what producers send.
//! It exists so tests, benchmarks and internal tools can produce genuine
//! batches without hand-assembling bytes.

use bytes::{BufMut, BytesMut};

use super::batch::{
    compute_crc, Compression, COMPRESSION_CODEC_MASK, CONTROL_FLAG_MASK, CRC_OFFSET, CURRENT_MAGIC,
    LOG_OVERHEAD, NO_PRODUCER_ID, NO_SEQUENCE, RECORD_BATCH_OVERHEAD, TRANSACTIONAL_FLAG_MASK,
};
use super::compression;
use super::varint::{write_varint, write_varlong};

/// Builds one v2 batch. `build` writes the records uncompressed, and
/// `compression_codec` then only flips the attribute bits (a batch a real
/// producer never sends, handy for error paths); `build_compressed`
/// really compresses the records section with the codec.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub attributes: i16,
    records: Vec<u8>,
    count: i32,
    last_offset_delta: i32,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub fn new(base_timestamp: i64) -> Self {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            base_timestamp,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: NO_SEQUENCE,
            attributes: 0,
            records: Vec::new(),
            count: 0,
            last_offset_delta: -1,
            max_timestamp: -1,
        }
    }

    /// Idempotent/transactional producer identity.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, on: bool) -> Self {
        self.set_flag(TRANSACTIONAL_FLAG_MASK, on);
        self
    }

    pub fn control(mut self, on: bool) -> Self {
        self.set_flag(CONTROL_FLAG_MASK, on);
        self
    }

    pub fn compression_codec(mut self, codec: u8) -> Self {
        self.attributes = (self.attributes & !COMPRESSION_CODEC_MASK)
            | (i16::from(codec) & COMPRESSION_CODEC_MASK);
        self
    }

    fn set_flag(&mut self, mask: i16, on: bool) {
        if on {
            self.attributes |= mask;
        } else {
            self.attributes &= !mask;
        }
    }

    /// Appends a record whose offset delta is its index in the batch.
    pub fn push(
        self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        timestamp: i64,
    ) -> Self {
        let delta = self.count;
        self.push_record(delta, timestamp, key, value, headers)
    }

    /// Appends a record with an explicit offset delta (lets tests build
    /// batches a real producer never would).
    pub fn push_record(
        mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Self {
        let mut body =
            Vec::with_capacity(16 + key.map_or(0, |k| k.len()) + value.map_or(0, |v| v.len()));
        body.push(0); // record attributes, unused in v2
        write_varlong(&mut body, timestamp.wrapping_sub(self.base_timestamp));
        write_varint(&mut body, offset_delta);
        write_bytes(&mut body, key);
        write_bytes(&mut body, value);
        write_varint(&mut body, headers.len() as i32);
        for (k, v) in headers {
            write_bytes(&mut body, Some(k.as_bytes()));
            write_bytes(&mut body, Some(v));
        }
        write_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(&body);
        self.count += 1;
        self.last_offset_delta = self.last_offset_delta.max(offset_delta);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Encodes header + records and fills in batchLength and the CRC.
    pub fn build(&self) -> BytesMut {
        self.encode(self.attributes, &self.records)
    }

    /// Like `build`, but the records section is compressed with `codec`
    /// (Kafka's default settings, see [`compression::compress`]) and the
    /// attribute codec bits say so. Panics on an unknown codec id.
    pub fn build_compressed(&self, codec: u8) -> BytesMut {
        let c = Compression::from_id(codec).expect("known codec id");
        let records = compression::compress(c, &self.records).expect("in-memory compression");
        let attributes = (self.attributes & !COMPRESSION_CODEC_MASK)
            | (i16::from(codec) & COMPRESSION_CODEC_MASK);
        self.encode(attributes, &records)
    }

    fn encode(&self, attributes: i16, records: &[u8]) -> BytesMut {
        let total = RECORD_BATCH_OVERHEAD + records.len();
        let mut out = BytesMut::with_capacity(total);
        out.put_i64(self.base_offset);
        out.put_i32((total - LOG_OVERHEAD) as i32);
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(CURRENT_MAGIC);
        out.put_u32(0); // CRC, patched below
        out.put_i16(attributes);
        out.put_i32(self.last_offset_delta.max(0));
        out.put_i64(self.base_timestamp);
        out.put_i64(if self.count == 0 {
            self.base_timestamp
        } else {
            self.max_timestamp
        });
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.count);
        out.put_slice(records);
        let crc = compute_crc(&out);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

fn write_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}
