//! Record batch v2 (magic 2) handled as raw bytes: the batch layout and its
//! in-place rewrites (`batch`), one record's layout and the iterator every
//! reader of records shares (`default_record`), control records and
//! transaction markers (`control`), produce validation and recompression
//! (`validator`), codecs (`compression`), zig-zag varints (`varint`) and a
//! batch encoder for internal writers and tests (`builder`). Keys and
//! values are never copied out. Compressed batches are decompressed (within
//! a budget, see `compression::decompression_budget`) to validate their
//! records and for record-exact timestamp look-ups, and re-encoded only when
//! a topic's `compression.type` asks for another codec
//! (`validator::recompress_batch`).

pub mod batch;
pub mod builder;
pub mod compression;
pub mod control;
pub mod default_record;
pub mod error;
pub mod validator;
pub mod varint;

#[cfg(test)]
pub use batch::set_partition_leader_epoch;
pub use batch::{
    assign_offsets, batch_records, iter_batches, leader_prefixes, record_timestamps,
    set_log_append_time, verify_crc, BatchHeader, BatchIter, Compression, LeaderPrefix, RecordInfo,
    RecordTimestampIter, RecordTimestamps, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD,
};
pub use builder::BatchBuilder;
pub use compression::{
    codec_allowed_for_produce_version, compress, decompress, decompression_budget, CompressionError,
};
pub use control::{ControlRecordError, ControlRecordType, EndTransactionMarker};
pub use default_record::{read_record, records, MalformedRecord, Record, RecordIter};
pub use error::{RecordError, RecordFault};
pub use validator::{
    recompress_batch, validate_produce_records, BatchSummary, TimestampType, ValidatedRecords,
    ValidationConfig,
};
