//! LogConfig: the per-topic settings the storage layer obeys (Kafka's
//! `segment.bytes`, `segment.ms`, `segment.index.bytes`, `index.interval.bytes`).

use super::error::StorageError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when an append would push the active segment past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is this old.
    pub segment_ms: u64,
    /// `segment.index.bytes`: preallocated size of each index file.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: log bytes between OffsetIndex entries.
    pub index_interval_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
        }
    }
}

impl LogConfig {
    /// Index entries store file positions as 32-bit values and Kafka caps
    /// `segment.bytes` at Int.MaxValue for the same reason.
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.segment_bytes == 0 || self.segment_bytes > i32::MAX as u64 {
            return Err(StorageError::InvalidConfig(format!(
                "segment_bytes must be in 1..={}, got {}",
                i32::MAX,
                self.segment_bytes
            )));
        }
        // Need room for at least a couple of entries in either index.
        if self.segment_index_bytes < 24 {
            return Err(StorageError::InvalidConfig(format!(
                "segment_index_bytes must be >= 24, got {}",
                self.segment_index_bytes
            )));
        }
        Ok(())
    }
}
