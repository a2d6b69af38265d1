//! Record batch v2 (magic 2) handled as raw bytes: header parsing, produce-side
//! validation, in-place rewrites done by the leader on append (offsets, log
//! append time, partition leader epoch) and cheap record-level iteration.
//! Nothing here decompresses or copies keys/values; compressed batches are
//! validated at the header + CRC level only (see `batch::validate_compressed_batch`).

pub mod batch;
pub mod builder;
pub mod varint;

pub use batch::{
    assign_offsets, iter_batches, record_timestamps, set_log_append_time,
    set_partition_leader_epoch, validate_produce_records, verify_crc, BatchHeader, BatchIter,
    BatchSummary, Compression, RecordError, RecordInfo, RecordTimestampIter, RecordTimestamps,
    TimestampType, ValidatedRecords, ValidationConfig, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD,
};
pub use builder::BatchBuilder;
