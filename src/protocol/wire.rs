//! The compact encodings of a flexible message, read and written: kastle's
//! own codecs for the messages (or versions) the `kafka-protocol` crate has
//! no types for (`protocol::streams`, `protocol::share_group_offsets`,
//! `protocol::write_txn_markers`, `protocol::offsets_by_id`,
//! `protocol::delete_groups`, `protocol::describe_log_dirs`).

/// A malformed message.
#[derive(Debug)]
pub struct DecodeError {
    what: &'static str,
    reason: &'static str,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Reads the compact encodings of a flexible message.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { buf, what }
    }

    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            what: self.what,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(self.err("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.take(1)?[0] as i8)
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    pub fn uuid(&mut self) -> Result<uuid::Uuid, DecodeError> {
        let b = self.take(16)?;
        uuid::Uuid::from_slice(b).map_err(|_| self.err("bad uuid"))
    }

    /// A compact nullable string.
    pub fn nstr(&mut self) -> Result<Option<String>, DecodeError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let b = self.take((n - 1) as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| self.err("string is not UTF-8"))
    }
    pub fn str(&mut self) -> Result<String, DecodeError> {
        self.nstr()?.ok_or_else(|| self.err("null string"))
    }

    /// A compact nullable array.
    pub fn narr<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let n = (n - 1) as usize;
        // Every element takes at least one byte: the bound on the capacity.
        if n > self.buf.len() {
            return Err(self.err("array longer than the message"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(Some(v))
    }
    pub fn arr<T>(
        &mut self,
        item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.narr(item)?.ok_or_else(|| self.err("null array"))
    }

    /// A nullable struct's presence marker.
    pub fn present(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? >= 0)
    }

    /// Skips a struct's tagged fields.
    pub fn tags(&mut self) -> Result<(), DecodeError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// Writes the compact encodings of a flexible message.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub fn i8(&mut self, v: i8) {
        self.0.push(v as u8);
    }
    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    pub fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn uuid(&mut self, v: &uuid::Uuid) {
        self.0.extend_from_slice(v.as_bytes());
    }
    pub fn nstr(&mut self, v: Option<&str>) {
        match v {
            None => self.uvarint(0),
            Some(s) => {
                // Callers bound strings far below u32::MAX (frame limits).
                self.uvarint(u32::try_from(s.len() + 1).unwrap_or(u32::MAX));
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }
    pub fn str(&mut self, v: &str) {
        self.nstr(Some(v));
    }
    pub fn narr<T>(&mut self, v: Option<&[T]>, mut item: impl FnMut(&mut Self, &T)) {
        match v {
            None => self.uvarint(0),
            Some(xs) => {
                self.uvarint(u32::try_from(xs.len() + 1).unwrap_or(u32::MAX));
                for x in xs {
                    item(self, x);
                }
            }
        }
    }
    pub fn arr<T>(&mut self, v: &[T], item: impl FnMut(&mut Self, &T)) {
        self.narr(Some(v), item);
    }
    pub fn tags(&mut self) {
        self.uvarint(0);
    }
}
