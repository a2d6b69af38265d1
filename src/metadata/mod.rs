//! Kafka's cluster metadata as data: the record types of
//! `__cluster_metadata` ([`records`]), their framing (Kafka's
//! `MetadataRecordSerde`: an unsigned-varint frame version, the record
//! type's api key and version, then the message with its tagged fields),
//! and the [`image::MetadataImage`] they build when applied in order.
//! Pure data: no I/O, no locks; the quorum (`raft`) and the controller
//! decide what is written, every node applies it.

pub mod codec;
pub mod image;
pub mod records;
#[cfg(test)]
mod tests;

use std::fmt;

pub use image::{BrokerRegistration, MetadataImage, PartitionRegistration, TopicImage};
pub use records::MetadataRecord;

/// `AbstractApiMessageSerde`'s frame version.
pub const FRAME_VERSION: u32 = 1;

/// A record that cannot be written or read, or cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError(pub String);

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetadataError {}

/// A record with the version it is (to be) written at (Kafka's
/// `ApiMessageAndVersion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAndVersion {
    pub record: MetadataRecord,
    pub version: i16,
}

impl RecordAndVersion {
    /// The framed bytes, as Kafka's `MetadataRecordSerde.write`.
    pub fn encode(&self) -> Result<Vec<u8>, MetadataError> {
        let key = self.record.api_key();
        let highest = MetadataRecord::highest_version(key).unwrap_or(0);
        if self.version < 0 || self.version > highest {
            return Err(MetadataError(format!(
                "record type {key} has no version {} (highest {highest})",
                self.version
            )));
        }
        let mut w = codec::Writer::default();
        w.uvarint(FRAME_VERSION);
        w.uvarint(u32::from(key));
        w.uvarint(self.version as u32);
        self.record.write_body(self.version, &mut w)?;
        Ok(w.buf)
    }

    /// Reads one framed record that fills `bytes` exactly, as Kafka's
    /// `MetadataRecordSerde.read`.
    pub fn decode(bytes: &[u8]) -> Result<RecordAndVersion, MetadataError> {
        let mut r = codec::Reader::new(bytes);
        let frame = r.uvarint("frame version")?;
        if frame != FRAME_VERSION {
            return Err(MetadataError(format!(
                "Could not deserialize metadata record due to unknown frame version {frame} (only frame version {FRAME_VERSION} is supported)"
            )));
        }
        let key = r.uvarint("api key")?;
        let version = r.uvarint("version")?;
        let key = u16::try_from(key)
            .map_err(|_| MetadataError(format!("metadata record type {key} is out of range")))?;
        let highest = MetadataRecord::highest_version(key).ok_or_else(|| {
            MetadataError(format!(
                "metadata record type {key} is not one kastle reads"
            ))
        })?;
        let version = i16::try_from(version)
            .ok()
            .filter(|v| *v <= highest)
            .ok_or_else(|| {
                MetadataError(format!(
                    "metadata record type {key} has no version {version} (highest {highest})"
                ))
            })?;
        let record = MetadataRecord::read_body(key, version, &mut r)?;
        if r.remaining() != 0 {
            return Err(MetadataError(format!(
                "Found {} byte(s) of garbage after metadata record type {key}",
                r.remaining()
            )));
        }
        Ok(RecordAndVersion { record, version })
    }
}
