//! StorageError: every failure of the on-disk log, with the path or offset
//! it concerns so a broker log line is actionable.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::record::RecordError;

#[derive(Debug)]
pub enum StorageError {
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    /// Fetch/ListOffsets outside [log start offset, log end offset].
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// An index failed its sanity check (it is rebuilt, never trusted).
    CorruptIndex {
        path: PathBuf,
        reason: String,
    },
    /// Bytes handed to append/stored on disk are not whole v2 batches.
    InvalidRecords {
        path: Option<PathBuf>,
        offset: i64,
        reason: String,
    },
    /// Offset not representable relative to the segment base (u32/i32).
    OffsetOverflow {
        base_offset: i64,
        offset: i64,
    },
    /// Index append that would break monotonicity (a bug upstream).
    NonMonotonicIndexAppend {
        path: PathBuf,
        last: i64,
        attempted: i64,
    },
    IndexFull {
        path: PathBuf,
    },
    /// A fetch at or past a batch the LogScrubber found corrupt in a
    /// sealed segment (answered CORRUPT_MESSAGE, as Kafka's client-side
    /// CRC check would refuse it).
    CorruptRecords {
        path: PathBuf,
        position: u64,
        offset: i64,
    },
    InvalidConfig(String),
    Record(RecordError),
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, op, source } => {
                write!(f, "I/O error during {op} on {}: {source}", path.display())
            }
            StorageError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            } => write!(
                f,
                "offset {offset} is out of range [{log_start_offset}, {log_end_offset}]"
            ),
            StorageError::CorruptIndex { path, reason } => {
                write!(f, "corrupt index {}: {reason}", path.display())
            }
            StorageError::InvalidRecords {
                path,
                offset,
                reason,
            } => match path {
                Some(p) => write!(
                    f,
                    "invalid records in {} at {offset}: {reason}",
                    p.display()
                ),
                None => write!(f, "invalid records at offset {offset}: {reason}"),
            },
            StorageError::OffsetOverflow {
                base_offset,
                offset,
            } => write!(
                f,
                "offset {offset} cannot be stored relative to segment base {base_offset}"
            ),
            StorageError::NonMonotonicIndexAppend {
                path,
                last,
                attempted,
            } => write!(
                f,
                "index {} append of {attempted} is not above the last entry {last}",
                path.display()
            ),
            StorageError::IndexFull { path } => write!(f, "index {} is full", path.display()),
            StorageError::CorruptRecords {
                path,
                position,
                offset,
            } => write!(
                f,
                "offset {offset} is at or past a corrupt record batch (position {position} of {})",
                path.display()
            ),
            StorageError::InvalidConfig(s) => write!(f, "invalid log config: {s}"),
            StorageError::Record(e) => write!(f, "invalid records: {e}"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            StorageError::Record(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RecordError> for StorageError {
    fn from(e: RecordError) -> Self {
        StorageError::Record(e)
    }
}
