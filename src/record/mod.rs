//! Record batch v2 (magic 2) handled as raw bytes: header parsing, produce-side
//! validation, in-place rewrites done by the leader on append (offsets, log
//! append time, partition leader epoch) and cheap record-level iteration.
//! Keys and values are never copied out. Compressed batches are decompressed
//! (within a budget, see `compression::decompression_budget`) to validate
//! their records and for record-exact timestamp look-ups, and re-encoded
//! only when a topic's `compression.type` asks for another codec
//! (`batch::recompress_batch`).

pub mod batch;
pub mod builder;
pub mod compression;
pub mod control;
pub mod default_record;
pub mod varint;

pub use batch::{
    assign_offsets, batch_records, iter_batches, recompress_batch, record_timestamps,
    set_log_append_time, set_partition_leader_epoch, validate_produce_records, verify_crc,
    BatchHeader, BatchIter, BatchSummary, Compression, RecordError, RecordInfo,
    RecordTimestampIter, RecordTimestamps, TimestampType, ValidatedRecords, ValidationConfig,
    LOG_OVERHEAD, RECORD_BATCH_OVERHEAD,
};
pub use builder::BatchBuilder;
pub use compression::{
    codec_allowed_for_produce_version, compress, decompress, decompression_budget, CompressionError,
};
pub use control::{ControlRecordError, ControlRecordType, EndTransactionMarker};
pub use default_record::{read_record, records, MalformedRecord, Record, RecordIter};
