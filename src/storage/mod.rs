//! Kafka's on-disk log for one partition: segment files (`.log`), the sparse
//! OffsetIndex (`.index`) and TimeIndex (`.timeindex`), LogSegment, and the
//! Log that owns a partition directory (Kafka's UnifiedLog + LocalLog); the
//! crash-safe segment swap (`swap`), producer state, the transaction index,
//! retention decisions and the cleaner, which uses the log and never the
//! other way round; the LogScrubber, which verifies sealed segments once
//! after start-up so a corrupt batch is never served.

pub mod cleaner;
pub mod config;
pub mod error;
mod index_file;
pub mod kafka_metadata_log;
pub mod leader_epoch;
pub mod log;
pub mod offset_checkpoint;
pub mod offset_index;
pub mod producer_state;
pub mod retention;
pub mod scrubber;
pub mod segment;
pub mod swap;
pub mod time_index;
pub mod txn_index;
mod writeback;

pub use config::LogConfig;
pub use error::StorageError;
pub use log::{AppendResult, FlushPlan, Log, ReadPlan};
pub use offset_index::{OffsetIndex, OffsetPosition};
pub use segment::LogSegment;
pub use time_index::{TimeIndex, TimestampOffset};
