//! Kafka's message field encodings, for the records Kafka's coordinators keep
//! in their internal topics (`__consumer_offsets`, `__transaction_state`),
//! which use the same serialization as requests: INT8..INT64, STRING and
//! NULLABLE_STRING (INT16 length), BYTES (INT32 length), arrays (INT32
//! count), and in flexible versions their compact forms (unsigned varint
//! length + 1) and tagged fields.
//!
//! Writing a STRING longer than 32767 bytes fails, as Kafka's generated
//! writers throw "field is too long to be serialized": never truncated.
//! Reading checks every length against what is left and fails on malformed
//! input, never panics and never sizes an allocation from a claimed count.

use bytes::Bytes;

use super::schema::MAX_STRING_LEN;

/// A string field too long for its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTooLong {
    pub field: &'static str,
    pub len: usize,
}

impl std::fmt::Display for FieldTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'{}' field is too long to be serialized ({} bytes)",
            self.field, self.len
        )
    }
}

impl std::error::Error for FieldTooLong {}

/// Appends fields in the classic (non-flexible) encoding.
#[derive(Default)]
pub struct FieldWriter {
    pub out: Vec<u8>,
}

impl FieldWriter {
    pub fn with_capacity(n: usize) -> FieldWriter {
        FieldWriter {
            out: Vec::with_capacity(n),
        }
    }

    pub fn i8(&mut self, v: i8) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// STRING: INT16 length + UTF-8.
    pub fn string(&mut self, field: &'static str, s: &str) -> Result<(), FieldTooLong> {
        let len = i16::try_from(s.len())
            .ok()
            .filter(|_| s.len() <= MAX_STRING_LEN)
            .ok_or(FieldTooLong {
                field,
                len: s.len(),
            })?;
        self.i16(len);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// NULLABLE_STRING: -1 for null.
    pub fn nullable_string(
        &mut self,
        field: &'static str,
        s: Option<&str>,
    ) -> Result<(), FieldTooLong> {
        match s {
            Some(s) => self.string(field, s),
            None => {
                self.i16(-1);
                Ok(())
            }
        }
    }

    /// BYTES: INT32 length.
    pub fn bytes(&mut self, field: &'static str, b: &[u8]) -> Result<(), FieldTooLong> {
        let len = i32::try_from(b.len()).map_err(|_| FieldTooLong {
            field,
            len: b.len(),
        })?;
        self.i32(len);
        self.out.extend_from_slice(b);
        Ok(())
    }

    /// An array's INT32 element count.
    pub fn count(&mut self, field: &'static str, n: usize) -> Result<(), FieldTooLong> {
        let n = i32::try_from(n).map_err(|_| FieldTooLong { field, len: n })?;
        self.i32(n);
        Ok(())
    }

    /// An unsigned varint (Kafka's `writeUnsignedVarint`).
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// COMPACT_STRING (flexible versions): unsigned varint length + 1.
    pub fn compact_string(&mut self, field: &'static str, s: &str) -> Result<(), FieldTooLong> {
        if s.len() > MAX_STRING_LEN {
            return Err(FieldTooLong {
                field,
                len: s.len(),
            });
        }
        self.compact_len(field, Some(s.len()))?;
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// A compact array's element count (flexible versions): unsigned
    /// varint count + 1, 0 for null.
    pub fn compact_len(
        &mut self,
        field: &'static str,
        n: Option<usize>,
    ) -> Result<(), FieldTooLong> {
        let v = match n {
            None => 0,
            Some(n) => u32::try_from(n)
                .ok()
                .and_then(|n| n.checked_add(1))
                .filter(|v| *v <= i32::MAX as u32)
                .ok_or(FieldTooLong { field, len: n })?,
        };
        self.uvarint(v);
        Ok(())
    }

    /// An empty tagged-field section (flexible versions).
    pub fn no_tagged_fields(&mut self) {
        self.uvarint(0);
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads fields; `flexible` selects the compact encodings and tagged fields.
pub struct FieldReader<'a> {
    buf: &'a [u8],
    pos: usize,
    pub flexible: bool,
}

impl<'a> FieldReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        FieldReader {
            buf,
            pos: 0,
            flexible: false,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| DecodeError(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// An unsigned varint of at most 5 bytes (Kafka's `readUnsignedVarint`).
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.take(1)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long".into()))
    }

    /// Length of a string/bytes field in this encoding; None for null.
    fn len(&mut self, wide: bool) -> Result<Option<usize>, DecodeError> {
        let n = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        Ok(usize::try_from(n).ok())
    }

    pub fn nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.len(false)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec())
                    .map(Some)
                    .map_err(|_| DecodeError("invalid UTF-8".into()))
            }
        }
    }

    /// A STRING; a null reads as empty.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }

    /// BYTES; a null reads as empty.
    pub fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        match self.len(true)? {
            None => Ok(Bytes::new()),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
        }
    }

    /// An array's element count (null reads as empty). Every element takes
    /// at least one byte: a count beyond what is left is corrupt and must not
    /// size an allocation.
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.len(true)?.unwrap_or(0);
        if n > self.remaining() {
            return Err(DecodeError(format!(
                "array of {n} elements in a short record"
            )));
        }
        Ok(n)
    }

    /// Skips `n` bytes (an unknown tagged field's value).
    /// The next `n` bytes as a reader of their own (a tagged field's value:
    /// what reads it cannot run into the fields after it).
    pub fn sub(&mut self, n: usize) -> Result<FieldReader<'a>, DecodeError> {
        let buf = self.take(n)?;
        Ok(FieldReader {
            buf,
            pos: 0,
            flexible: self.flexible,
        })
    }

    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// Skips a flexible version's tagged fields (nothing in classic ones).
    pub fn skip_tagged(&mut self) -> Result<(), DecodeError> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.take(len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_past_32767_bytes_fail_instead_of_being_cut() {
        let mut w = FieldWriter::default();
        w.string("group", &"g".repeat(32_767)).unwrap();
        assert_eq!(w.out.len(), 2 + 32_767);
        let long = "g".repeat(32_768);
        assert_eq!(
            w.string("group", &long),
            Err(FieldTooLong {
                field: "group",
                len: 32_768
            })
        );
        assert_eq!(w.out.len(), 2 + 32_767, "nothing written on failure");
    }

    #[test]
    fn classic_and_compact_round_trip_and_truncation_is_an_error() {
        let mut w = FieldWriter::default();
        w.i16(3);
        w.string("a", "abc").unwrap();
        w.nullable_string("b", None).unwrap();
        w.bytes("c", b"xyz").unwrap();
        w.count("d", 2).unwrap();
        w.i32(7);
        w.i32(8);
        let bytes = w.finish();
        let mut r = FieldReader::new(&bytes);
        assert_eq!(r.i16().unwrap(), 3);
        assert_eq!(r.string().unwrap(), "abc");
        assert_eq!(r.nullable_string().unwrap(), None);
        assert_eq!(&r.bytes().unwrap()[..], b"xyz");
        assert_eq!(r.count().unwrap(), 2);
        for cut in 0..bytes.len() {
            let mut r = FieldReader::new(&bytes[..cut]);
            let all = (|| -> Result<(), DecodeError> {
                r.i16()?;
                r.string()?;
                r.nullable_string()?;
                r.bytes()?;
                r.count()?;
                r.i32()?;
                r.i32()?;
                Ok(())
            })();
            assert!(all.is_err(), "cut at {cut}");
        }
        // Compact: length + 1 as a varint.
        let mut r = FieldReader::new(&[4, b'a', b'b', b'c', 0, 1, 0]);
        r.flexible = true;
        assert_eq!(r.string().unwrap(), "abc");
        assert_eq!(r.nullable_string().unwrap(), None);
        assert_eq!(r.count().unwrap(), 0);
        r.skip_tagged().unwrap();
    }
}
