//! Pre-decode validation of Kafka request bodies.
//!
//! `kafka-protocol` sizes its vectors from array counts read straight off the
//! wire, so a tiny frame claiming 2^31 elements aborts the process on allocation
//! failure. Before a body is handed to the crate, `check_request_body` walks it
//! with our own layout tables (`tables.rs`) and refuses it if any count or
//! length is larger than the bytes that remain, if it is truncated, or if a
//! varint is malformed. Anything the walker accepts can therefore only make the
//! crate allocate in proportion to the frame size.
//!
//! The walker never allocates on the success path, and its recursion depth is
//! bounded by the nesting of the static tables, not by the input.

// One field per line reads best for the tables; rustfmt would re-flow them.
#[rustfmt::skip]
mod streams_tables;
#[rustfmt::skip]
mod tables;
#[cfg(test)]
mod tests;

use std::fmt;

use tables::{Field, Ty};

/// Why a request body was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// The body ended inside a fixed-size value or inside a length prefix.
    Truncated { field: String },
    /// A length or element count is larger than the bytes left in the body.
    LengthTooLarge {
        field: String,
        claimed: u64,
        remaining: usize,
    },
    /// A negative length other than the null marker, or a null where the field
    /// is not nullable.
    NegativeLength { field: String, claimed: i64 },
    /// An unsigned varint longer than 5 bytes.
    BadVarint { field: String },
    /// A compact string longer than a STRING can be (32767 bytes): Kafka's
    /// generated readers refuse it ("had invalid length") and close the
    /// connection, since nothing it would be stored in could hold it.
    StringTooLong { field: String, length: u64 },
    /// An optional-struct presence marker other than 1 or -1.
    BadPresenceMarker { field: String, marker: i8 },
    /// A known tagged field whose content does not fill exactly its declared size.
    TaggedFieldSize {
        field: String,
        declared: u32,
        actual: usize,
    },
    /// The API key has no table.
    UnknownApi(i16),
    /// The API key is known but not at this version.
    UnsupportedVersion { api_key: i16, version: i16 },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Truncated { field } => write!(f, "{field}: body truncated"),
            SchemaError::LengthTooLarge {
                field,
                claimed,
                remaining,
            } => write!(
                f,
                "{field}: length or element count {claimed} but only {remaining} bytes remain"
            ),
            SchemaError::NegativeLength { field, claimed } => {
                write!(f, "{field}: invalid length {claimed}")
            }
            SchemaError::BadVarint { field } => write!(f, "{field}: malformed varint"),
            SchemaError::StringTooLong { field, length } => {
                write!(f, "string field {field} had invalid length {length}")
            }
            SchemaError::BadPresenceMarker { field, marker } => {
                write!(f, "{field}: invalid presence marker {marker}")
            }
            SchemaError::TaggedFieldSize {
                field,
                declared,
                actual,
            } => write!(
                f,
                "{field}: tagged field declares {declared} bytes but its content is {actual}"
            ),
            SchemaError::UnknownApi(key) => write!(f, "unknown api key {key}"),
            SchemaError::UnsupportedVersion { api_key, version } => {
                write!(f, "api key {api_key} does not support version {version}")
            }
        }
    }
}

impl std::error::Error for SchemaError {}

/// The longest STRING the protocol carries (`Short.MAX_VALUE` bytes): the
/// non-flexible encoding cannot say more, and Kafka refuses more in the
/// flexible one too.
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// Walks a request body (the bytes after the request header) for `api_key`/`api_version`.
/// Ok(consumed) = number of bytes the message occupies (trailing bytes are allowed, Kafka ignores them).
pub fn check_request_body(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<usize, SchemaError> {
    let api = tables::lookup(api_key).ok_or(SchemaError::UnknownApi(api_key))?;
    if api_version < api.min || api_version > api.max {
        return Err(SchemaError::UnsupportedVersion {
            api_key,
            version: api_version,
        });
    }
    let mut w = Walker {
        buf: body,
        pos: 0,
        version: api_version,
        flexible: api_version >= api.flex,
        path: Path::default(),
    };
    w.walk_struct(api.body)?;
    Ok(w.pos)
}

/// The version range (min, max) the tables describe for an API key, or None if unknown.
pub fn request_versions(api_key: i16) -> Option<(i16, i16)> {
    tables::lookup(api_key).map(|a| (a.min, a.max))
}

/// Whether requests of this api/version use the flexible (compact + tagged fields) encoding.
pub fn is_flexible(api_key: i16, api_version: i16) -> Option<bool> {
    let api = tables::lookup(api_key)?;
    if api_version < api.min || api_version > api.max {
        return None;
    }
    Some(api_version >= api.flex)
}

/// Deeper than any table nests; past it the error path is merely abbreviated.
const MAX_PATH: usize = 8;

/// Field names from the root to the current value, kept without allocating so
/// that the success path stays allocation-free; rendered only for errors.
#[derive(Default)]
struct Path {
    /// Field name and whether it is an array (rendered as `name[]`).
    names: [(&'static str, bool); MAX_PATH],
    depth: usize,
}

impl Path {
    fn render(&self, leaf: &str) -> String {
        let mut s = String::new();
        for (name, is_array) in &self.names[..self.depth.min(MAX_PATH)] {
            s.push_str(name);
            if *is_array {
                s.push_str("[]");
            }
            s.push('.');
        }
        if self.depth > MAX_PATH {
            s.push_str("...");
        }
        s.push_str(leaf);
        s
    }
}

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
    path: Path,
}

/// A length prefix after null handling.
enum Len {
    Null,
    Some(usize),
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self, name: &str) -> SchemaError {
        SchemaError::Truncated {
            field: self.path.render(name),
        }
    }

    fn take(&mut self, n: usize, name: &str) -> Result<&[u8], SchemaError> {
        if n > self.remaining() {
            return Err(self.truncated(name));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn skip(&mut self, n: usize, name: &str) -> Result<(), SchemaError> {
        self.take(n, name).map(|_| ())
    }

    fn read_i8(&mut self, name: &str) -> Result<i8, SchemaError> {
        Ok(self.take(1, name)?[0] as i8)
    }

    fn read_i16(&mut self, name: &str) -> Result<i16, SchemaError> {
        let b = self.take(2, name)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn read_i32(&mut self, name: &str) -> Result<i32, SchemaError> {
        let b = self.take(4, name)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Unsigned varint of at most 5 bytes. Bits beyond 32 in the fifth byte are
    /// dropped, matching both Kafka and `kafka-protocol`, so all three agree on
    /// the value. This is the protocol's unsigned encoding (compact lengths,
    /// tagged fields), not the record format's zig-zag varints
    /// (`record::varint`), which the protocol (layer 0) cannot use anyway.
    fn read_uvarint(&mut self, name: &str) -> Result<u32, SchemaError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.read_i8(name)? as u8;
            value |= u32::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        // The crate would stop here and misread the next byte as the next
        // field; Kafka refuses it, and so do we.
        Err(SchemaError::BadVarint {
            field: self.path.render(name),
        })
    }

    /// Checks a claimed length or count against the bytes left.
    fn bound(&self, claimed: u64, name: &str) -> Result<usize, SchemaError> {
        let remaining = self.remaining();
        if claimed > remaining as u64 {
            return Err(SchemaError::LengthTooLarge {
                field: self.path.render(name),
                claimed,
                remaining,
            });
        }
        Ok(claimed as usize)
    }

    /// Reads a string/bytes/array length prefix in the encoding of this version
    /// and bounds it by the remaining bytes.
    fn read_len(&mut self, name: &str, nullable: bool, wide: bool) -> Result<Len, SchemaError> {
        let claimed: i64 = if self.flexible {
            i64::from(self.read_uvarint(name)?) - 1
        } else if wide {
            i64::from(self.read_i32(name)?)
        } else {
            i64::from(self.read_i16(name)?)
        };
        if claimed == -1 && nullable {
            return Ok(Len::Null);
        }
        if claimed < 0 {
            return Err(SchemaError::NegativeLength {
                field: self.path.render(name),
                claimed,
            });
        }
        Ok(Len::Some(self.bound(claimed as u64, name)?))
    }

    fn walk_struct(&mut self, fields: &'static [Field]) -> Result<(), SchemaError> {
        for field in fields {
            if field.tag.is_none() && field.present_in(self.version) {
                self.walk_value(field.name, field.ty)?;
            }
        }
        if self.flexible {
            self.walk_tagged(fields)?;
        }
        Ok(())
    }

    /// The tagged-field section. Unknown tags are skipped by size. Known tags
    /// are walked with their schema: `kafka-protocol` decodes them in place from
    /// the main buffer and ignores the declared size, so a size-bounded skip
    /// would let an inner array escape the check. We also insist the content
    /// fills exactly the declared size, so the crate and the walker agree on
    /// where the next tag starts.
    fn walk_tagged(&mut self, fields: &'static [Field]) -> Result<(), SchemaError> {
        const NAME: &str = "_tagged_fields";
        let count = self.read_uvarint(NAME)?;
        self.bound(u64::from(count), NAME)?;
        for _ in 0..count {
            let tag = self.read_uvarint(NAME)?;
            let size = self.read_uvarint(NAME)?;
            let len = self.bound(u64::from(size), NAME)?;
            let known = fields
                .iter()
                .find(|f| f.tag == Some(tag) && f.present_in(self.version));
            match known {
                None => self.skip(len, NAME)?,
                Some(field) => {
                    let start = self.pos;
                    let end = start + len;
                    // Walk inside a window of exactly `size` bytes so that a
                    // count inside the tagged field is bounded by its size.
                    let full = self.buf;
                    self.buf = &full[..end];
                    let res = self.walk_value(field.name, field.ty);
                    self.buf = full;
                    res?;
                    if self.pos != end {
                        return Err(SchemaError::TaggedFieldSize {
                            field: self.path.render(field.name),
                            declared: size,
                            actual: self.pos - start,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn walk_value(&mut self, name: &'static str, ty: Ty) -> Result<(), SchemaError> {
        match ty {
            Ty::I8 | Ty::Bool => self.skip(1, name),
            Ty::I16 => self.skip(2, name),
            Ty::I32 => self.skip(4, name),
            Ty::I64 | Ty::F64 => self.skip(8, name),
            Ty::Uuid => self.skip(16, name),
            Ty::Str | Ty::NStr => match self.read_len(name, matches!(ty, Ty::NStr), false)? {
                Len::Null => Ok(()),
                // Only a compact (varint) length can claim more.
                Len::Some(n) if n > MAX_STRING_LEN => Err(SchemaError::StringTooLong {
                    field: self.path.render(name),
                    length: n as u64,
                }),
                Len::Some(n) => self.skip(n, name),
            },
            Ty::Bytes | Ty::NBytes => match self.read_len(name, matches!(ty, Ty::NBytes), true)? {
                Len::Null => Ok(()),
                Len::Some(n) => self.skip(n, name),
            },
            Ty::Arr(elem) | Ty::NArr(elem) => {
                match self.read_len(name, matches!(ty, Ty::NArr(_)), true)? {
                    Len::Null => Ok(()),
                    Len::Some(count) => {
                        // Every element occupies at least one byte, so `count`
                        // iterations are bounded by the body size.
                        for _ in 0..count {
                            match *elem {
                                Ty::Struct(fields) => self.walk_nested(name, true, fields)?,
                                // Errors inside a scalar element name the array itself.
                                scalar => self.walk_value(name, scalar)?,
                            }
                        }
                        Ok(())
                    }
                }
            }
            Ty::Struct(fields) => self.walk_nested(name, false, fields),
            Ty::OptStruct(fields) => match self.read_i8(name)? {
                -1 => Ok(()),
                1 => self.walk_nested(name, false, fields),
                // The crate reads anything but 1 as null while Kafka reads any
                // non-negative marker as present; refuse the ambiguous ones.
                marker => Err(SchemaError::BadPresenceMarker {
                    field: self.path.render(name),
                    marker,
                }),
            },
        }
    }

    fn walk_nested(
        &mut self,
        name: &'static str,
        is_array: bool,
        fields: &'static [Field],
    ) -> Result<(), SchemaError> {
        if self.path.depth < MAX_PATH {
            self.path.names[self.path.depth] = (name, is_array);
        }
        self.path.depth += 1;
        let res = self.walk_struct(fields);
        self.path.depth -= 1;
        res
    }
}
