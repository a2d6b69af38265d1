//! The flexible-version message encoding metadata records use: fixed-width
//! integers, UUIDs, unsigned varints, compact strings and arrays, and the
//! tagged-field section. The reader is bounded by its input: every length
//! is checked against the bytes left before anything is allocated.

use super::MetadataError;

/// Builds one message body.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn uuid(&mut self, v: uuid::Uuid) {
        self.buf.extend_from_slice(v.as_bytes());
    }
    /// Kafka's float64: the IEEE 754 bits, big-endian.
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    /// Kafka's compact (non-null) bytes.
    pub fn bytes(&mut self, v: &[u8], what: &str) -> Result<(), MetadataError> {
        self.compact_len(v.len(), what)?;
        self.buf.extend_from_slice(v);
        Ok(())
    }
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// Length + 1 of a compact string or array (0 is null).
    fn compact_len(&mut self, len: usize, what: &str) -> Result<(), MetadataError> {
        let n = u32::try_from(len)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| MetadataError(format!("{what}: {len} elements is too many")))?;
        self.uvarint(n);
        Ok(())
    }
    pub fn string(&mut self, v: &str, what: &str) -> Result<(), MetadataError> {
        // Kafka's STRING type: at most 32767 bytes.
        if v.len() > i16::MAX as usize {
            return Err(MetadataError(format!(
                "{what}: a string of {} bytes is longer than 32767",
                v.len()
            )));
        }
        self.compact_len(v.len(), what)?;
        self.buf.extend_from_slice(v.as_bytes());
        Ok(())
    }
    pub fn nullable_string(&mut self, v: Option<&str>, what: &str) -> Result<(), MetadataError> {
        match v {
            Some(s) => self.string(s, what),
            None => {
                self.uvarint(0);
                Ok(())
            }
        }
    }
    pub fn i32s(&mut self, v: &[i32], what: &str) -> Result<(), MetadataError> {
        self.compact_len(v.len(), what)?;
        for x in v {
            self.i32(*x);
        }
        Ok(())
    }
    pub fn nullable_i32s(&mut self, v: Option<&[i32]>, what: &str) -> Result<(), MetadataError> {
        match v {
            Some(v) => self.i32s(v, what),
            None => {
                self.uvarint(0);
                Ok(())
            }
        }
    }
    pub fn uuids(&mut self, v: &[uuid::Uuid], what: &str) -> Result<(), MetadataError> {
        self.compact_len(v.len(), what)?;
        for x in v {
            self.uuid(*x);
        }
        Ok(())
    }
    pub fn nullable_uuids(
        &mut self,
        v: Option<&[uuid::Uuid]>,
        what: &str,
    ) -> Result<(), MetadataError> {
        match v {
            Some(v) => self.uuids(v, what),
            None => {
                self.uvarint(0);
                Ok(())
            }
        }
    }
    pub fn array_len(&mut self, len: usize, what: &str) -> Result<(), MetadataError> {
        self.compact_len(len, what)
    }
    /// The tagged-field section: `fields` in ascending tag order, each the
    /// encoded value of one field.
    pub fn tagged(&mut self, fields: Vec<(u32, Writer)>) -> Result<(), MetadataError> {
        let count = u32::try_from(fields.len())
            .map_err(|_| MetadataError("too many tagged fields".to_string()))?;
        self.uvarint(count);
        for (tag, w) in fields {
            self.uvarint(tag);
            let size = u32::try_from(w.buf.len())
                .map_err(|_| MetadataError(format!("tagged field {tag} too large")))?;
            self.uvarint(size);
            self.buf.extend_from_slice(&w.buf);
        }
        Ok(())
    }
}

/// One tagged field's value, encoded by `f`.
pub fn tag(
    tag: u32,
    f: impl FnOnce(&mut Writer) -> Result<(), MetadataError>,
) -> Result<(u32, Writer), MetadataError> {
    let mut w = Writer::default();
    f(&mut w)?;
    Ok((tag, w))
}

/// Reads one message body.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MetadataError> {
        if n > self.remaining() {
            return Err(MetadataError(format!(
                "{what}: needs {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], MetadataError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    pub fn i8(&mut self, what: &str) -> Result<i8, MetadataError> {
        Ok(i8::from_be_bytes(self.fixed(what)?))
    }
    pub fn bool(&mut self, what: &str) -> Result<bool, MetadataError> {
        Ok(self.i8(what)? != 0)
    }
    pub fn i16(&mut self, what: &str) -> Result<i16, MetadataError> {
        Ok(i16::from_be_bytes(self.fixed(what)?))
    }
    pub fn u16(&mut self, what: &str) -> Result<u16, MetadataError> {
        Ok(u16::from_be_bytes(self.fixed(what)?))
    }
    pub fn i32(&mut self, what: &str) -> Result<i32, MetadataError> {
        Ok(i32::from_be_bytes(self.fixed(what)?))
    }
    pub fn i64(&mut self, what: &str) -> Result<i64, MetadataError> {
        Ok(i64::from_be_bytes(self.fixed(what)?))
    }
    pub fn uuid(&mut self, what: &str) -> Result<uuid::Uuid, MetadataError> {
        Ok(uuid::Uuid::from_bytes(self.fixed(what)?))
    }
    pub fn f64(&mut self, what: &str) -> Result<f64, MetadataError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.fixed(what)?)))
    }
    pub fn uvarint(&mut self, what: &str) -> Result<u32, MetadataError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.fixed::<1>(what)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(MetadataError(format!("{what}: malformed varint")))
    }
    /// A compact length: None for null; the count otherwise, refused when
    /// `unit`-byte elements could not fit in what is left.
    fn compact_len(&mut self, unit: usize, what: &str) -> Result<Option<usize>, MetadataError> {
        let n = self.uvarint(what)?;
        if n == 0 {
            return Ok(None);
        }
        let len = (n - 1) as usize;
        if len.saturating_mul(unit.max(1)) > self.remaining() {
            return Err(MetadataError(format!(
                "{what}: length {len} but only {} bytes left",
                self.remaining()
            )));
        }
        Ok(Some(len))
    }
    pub fn nullable_string(&mut self, what: &str) -> Result<Option<String>, MetadataError> {
        let Some(len) = self.compact_len(1, what)? else {
            return Ok(None);
        };
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| MetadataError(format!("{what}: not UTF-8")))
    }
    /// Kafka's compact (non-null) bytes.
    pub fn bytes(&mut self, what: &str) -> Result<Vec<u8>, MetadataError> {
        let len = self
            .compact_len(1, what)?
            .ok_or_else(|| MetadataError(format!("{what}: null where bytes are required")))?;
        Ok(self.take(len, what)?.to_vec())
    }
    pub fn string(&mut self, what: &str) -> Result<String, MetadataError> {
        self.nullable_string(what)?
            .ok_or_else(|| MetadataError(format!("{what}: null where a string is required")))
    }
    pub fn nullable_i32s(&mut self, what: &str) -> Result<Option<Vec<i32>>, MetadataError> {
        let Some(len) = self.compact_len(4, what)? else {
            return Ok(None);
        };
        (0..len)
            .map(|_| self.i32(what))
            .collect::<Result<_, _>>()
            .map(Some)
    }
    pub fn i32s(&mut self, what: &str) -> Result<Vec<i32>, MetadataError> {
        self.nullable_i32s(what)?
            .ok_or_else(|| MetadataError(format!("{what}: null where an array is required")))
    }
    pub fn nullable_uuids(&mut self, what: &str) -> Result<Option<Vec<uuid::Uuid>>, MetadataError> {
        let Some(len) = self.compact_len(16, what)? else {
            return Ok(None);
        };
        (0..len)
            .map(|_| self.uuid(what))
            .collect::<Result<_, _>>()
            .map(Some)
    }
    pub fn uuids(&mut self, what: &str) -> Result<Vec<uuid::Uuid>, MetadataError> {
        self.nullable_uuids(what)?
            .ok_or_else(|| MetadataError(format!("{what}: null where an array is required")))
    }
    /// A non-null array's element count (`min_size`: the least bytes one
    /// element takes).
    pub fn array_len(&mut self, min_size: usize, what: &str) -> Result<usize, MetadataError> {
        self.compact_len(min_size, what)?
            .ok_or_else(|| MetadataError(format!("{what}: null where an array is required")))
    }
    /// The tagged-field section: `known` reads the fields it knows from a
    /// reader over exactly their bytes; unknown tags are skipped, as Kafka
    /// keeps them aside.
    pub fn tagged(
        &mut self,
        mut known: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, MetadataError>,
    ) -> Result<(), MetadataError> {
        let count = self.uvarint("tagged field count")?;
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let t = self.uvarint("tag")?;
            if last.is_some_and(|l| t <= l) {
                return Err(MetadataError(format!(
                    "tagged field {t} out of ascending order"
                )));
            }
            last = Some(t);
            let size = self.uvarint("tagged field size")? as usize;
            let bytes = self.take(size, "tagged field")?;
            let mut sub = Reader::new(bytes);
            if known(t, &mut sub)? && sub.remaining() != 0 {
                return Err(MetadataError(format!(
                    "tagged field {t}: {} bytes left over",
                    sub.remaining()
                )));
            }
        }
        Ok(())
    }
}
