//! Zig-zag varint / varlong codec used inside record batch v2 records
//! (same encoding as protobuf `sint32`/`sint64`; Kafka's
//! `ByteUtils.readVarint`/`readVarlong`): the one reader and writer of the
//! record format, used by `default_record`, `builder` and the cleaner.
//! Readers are bounds-checked and return `None` on truncation or over-long
//! encodings instead of panicking, because the input comes straight off the
//! network or the disk. The request protocol's unsigned varints (compact
//! strings, tagged fields) are a different encoding and live in `protocol`.

/// Reads an unsigned LEB128 value of at most `max_bytes` bytes.
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    for i in 0..max_bytes {
        let b = *buf.get(*pos + i)?;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            *pos += i + 1;
            return Some(value);
        }
        shift += 7;
    }
    None
}

/// Reads a zig-zag encoded 32-bit varint (max 5 bytes, as Kafka enforces).
/// Inlined with a one-byte fast path: record fields (attributes aside) are
/// mostly one-byte varints, and every record walk reads several.
#[inline(always)]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let raw = match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            u32::from(b)
        }
        _ => u32::try_from(read_unsigned(buf, pos, 5)?).ok()?,
    };
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag encoded 64-bit varlong (max 10 bytes).
#[inline(always)]
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let raw = match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            u64::from(b)
        }
        _ => read_unsigned(buf, pos, 10)?,
    };
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn write_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a zig-zag encoded 32-bit varint.
pub fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_unsigned(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

/// Appends a zig-zag encoded 64-bit varlong.
pub fn write_varlong(out: &mut Vec<u8>, v: i64) {
    write_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_varint_and_varlong() {
        for v in [0, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        for v in [0i64, -1, 1 << 40, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn truncated_and_overlong_are_rejected() {
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80], &mut pos), None);
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut pos),
            None
        );
        assert_eq!(pos, 0);
    }
}
