//! One record of a v2 batch (Kafka's `DefaultRecord`): a zero-copy view of
//! its fields, and the iterator over a batch's records section (as stored,
//! or decompressed) that every reader of records shares: produce
//! validation, ListOffsets by timestamp, the cleaner, producer-state replay
//! and the coordinators' loaders.
//!
//! Layout of a record (varints are zig-zag, see [`super::varint`]):
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint | key | valueLength varint | value
//! headerCount varint | (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*
//! ```
//! A record is checked the way `DefaultRecord.readFrom` checks it: every
//! length stays inside the record, the record consumes exactly its declared
//! length, a negative key or value length is null (Kafka reads any negative
//! length there as null), a header key is never null and the header count
//! is never negative. Nothing is read past the slice and nothing panics on
//! malformed input; the first malformed record ends the iteration with an
//! error.

use std::fmt;

use super::varint::{read_varint, read_varlong};

/// Why a records section does not parse: the record at `index` (its
/// position in the batch; the record count when the section has bytes
/// left after the last record) and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedRecord {
    pub index: i32,
    pub reason: &'static str,
}

impl fmt::Display for MalformedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}", self.index, self.reason)
    }
}

impl std::error::Error for MalformedRecord {}

/// One record, borrowed from its records section. Offsets and timestamps
/// are deltas against the batch header's base offset and base timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Unused by the v2 format; kept so a rewrite can carry it over.
    pub attributes: u8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: i32,
    /// Where the headers start in `fields`.
    headers_at: u32,
    /// From the key length to the end of the record.
    fields: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's key, value and headers exactly as stored (from the key
    /// length to the end): what a rewrite that only changes the deltas
    /// copies unchanged.
    pub fn key_value_and_headers(&self) -> &'a [u8] {
        self.fields
    }

    /// The headers as (key, value) pairs; a null header value is `None`.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            buf: &self.fields[self.headers_at as usize..],
            pos: 0,
            left: self.header_count,
        }
    }
}

/// Iterator over a record's headers. The record was checked when it was
/// read, so this cannot fail; it still stops rather than read past its
/// bytes.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    pos: usize,
    left: i32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        let key = read_bytes(self.buf, &mut self.pos, ("", ""))
            .ok()
            .flatten()?;
        let value = read_bytes(self.buf, &mut self.pos, ("", "")).ok()?;
        Some((key, value))
    }
}

/// Reads a varint length and that many bytes (`None` for a negative
/// length) from `buf`, which ends where the record ends. `reasons` are the
/// errors for a malformed length and for bytes past the end.
#[inline(always)]
fn read_bytes<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    reasons: (&'static str, &'static str),
) -> Result<Option<&'a [u8]>, &'static str> {
    let len = read_varint(buf, pos).ok_or(reasons.0)?;
    if len < 0 {
        return Ok(None);
    }
    // `*pos <= buf.len() <= isize::MAX` and `len <= i32::MAX`: no overflow.
    let bytes = buf.get(*pos..*pos + len as usize).ok_or(reasons.1)?;
    *pos += bytes.len();
    Ok(Some(bytes))
}

/// Moves `*pos` past `len` bytes that must end by `end`.
#[inline(always)]
fn skip(pos: &mut usize, len: i32, end: usize, past_end: &'static str) -> Result<(), &'static str> {
    *pos += len as usize;
    if *pos > end {
        return Err(past_end);
    }
    Ok(())
}

/// Reads the record at `*pos` in `section` and moves `*pos` past it; on
/// error, says what is wrong (`*pos` is then unspecified). [`records`] is
/// the usual way in; this is for a reader that keeps its own position.
#[inline(always)]
pub fn read_record<'a>(section: &'a [u8], pos: &mut usize) -> Result<Record<'a>, &'static str> {
    let len = read_varint(section, pos).ok_or("malformed record length")?;
    if len < 0 {
        return Err("negative record length");
    }
    // Every read below is bounded by the record, not the section.
    let body = section
        .get(..*pos + len as usize)
        .ok_or("record length exceeds the batch")?;
    let end = body.len();
    let mut p = *pos;
    let attributes = *body.get(p).ok_or("record body too short")?;
    p += 1;
    let timestamp_delta = read_varlong(body, &mut p).ok_or("malformed timestamp delta")?;
    let offset_delta = read_varint(body, &mut p).ok_or("malformed offset delta")?;
    let fields_at = p;
    let key = read_bytes(body, &mut p, ("malformed key length", "key exceeds record"))?;
    let value = read_bytes(
        body,
        &mut p,
        ("malformed value length", "value exceeds record"),
    )?;
    let header_count = read_varint(body, &mut p).ok_or("malformed header count")?;
    if header_count < 0 {
        return Err("negative header count");
    }
    let headers_at = p;
    for _ in 0..header_count {
        let key_len = read_varint(body, &mut p).ok_or("malformed header key length")?;
        if key_len < 0 {
            return Err("null header key");
        }
        skip(&mut p, key_len, end, "header key exceeds record")?;
        let value_len = read_varint(body, &mut p).ok_or("malformed header value length")?;
        if value_len > 0 {
            skip(&mut p, value_len, end, "header value exceeds record")?;
        }
    }
    if p != end {
        return Err("record size does not match its contents");
    }
    *pos = end;
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count,
        // A record is shorter than its i32 length.
        headers_at: (headers_at - fields_at) as u32,
        fields: &body[fields_at..],
    })
}

/// Iterates the records of a records section. Yields at most `count`
/// records (the header's recordsCount; a negative count is none), then an
/// error if bytes are left over. A section that ends before `count`
/// records, or a malformed record, yields one error and ends the iteration.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    section: &'a [u8],
    pos: usize,
    index: i32,
    count: i32,
    done: bool,
}

/// The records of `section` (a batch's bytes after its header, decompressed
/// if the batch is compressed), of which the batch header declares `count`.
pub fn records(section: &[u8], count: i32) -> RecordIter<'_> {
    RecordIter {
        section,
        pos: 0,
        index: 0,
        count: count.max(0),
        done: false,
    }
}

impl RecordIter<'_> {
    /// Byte position in the section just past the last record read.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn fail(&mut self, index: i32, reason: &'static str) -> MalformedRecord {
        self.done = true;
        MalformedRecord { index, reason }
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, MalformedRecord>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let index = self.index;
        if index >= self.count {
            self.done = true;
            if self.pos != self.section.len() {
                return Some(Err(self.fail(
                    index,
                    "incorrect declared batch size, records still remaining",
                )));
            }
            return None;
        }
        if self.pos >= self.section.len() {
            return Some(Err(
                self.fail(index, "batch declares more records than it contains")
            ));
        }
        self.index += 1;
        match read_record(self.section, &mut self.pos) {
            Ok(r) => Some(Ok(r)),
            Err(reason) => Some(Err(self.fail(index, reason))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        // Every remaining record, plus possibly one error.
        (0, Some((self.count - self.index) as usize + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::varint::{write_varint, write_varlong};

    /// A record: its length, then `fields`.
    fn record(fields: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, fields.len() as i32);
        out.extend_from_slice(fields);
        out
    }

    /// attributes, timestamp delta, offset delta, then `rest` as given.
    fn fields(ts: i64, offset: i32, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8];
        write_varlong(&mut out, ts);
        write_varint(&mut out, offset);
        out.extend_from_slice(rest);
        out
    }

    fn varints(values: &[i32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &v in values {
            write_varint(&mut out, v);
        }
        out
    }

    /// key "k", value "vv", headers [("h", "x"), ("n", null)].
    fn good(offset: i32) -> Vec<u8> {
        let mut rest = varints(&[1]);
        rest.push(b'k');
        rest.extend(varints(&[2]));
        rest.extend_from_slice(b"vv");
        rest.extend(varints(&[2, 1]));
        rest.push(b'h');
        rest.extend(varints(&[1]));
        rest.push(b'x');
        rest.extend(varints(&[1]));
        rest.push(b'n');
        rest.extend(varints(&[-1]));
        record(&fields(-3, offset, &rest))
    }

    fn all(section: &[u8], count: i32) -> Vec<Result<Record<'_>, MalformedRecord>> {
        records(section, count).collect()
    }

    fn only_error(section: &[u8], count: i32) -> MalformedRecord {
        let out = all(section, count);
        let last = *out.last().expect("at least one item");
        assert!(
            out[..out.len() - 1].iter().all(Result::is_ok),
            "one error, at the end: {out:?}"
        );
        last.expect_err("should fail")
    }

    #[test]
    fn reads_every_field_without_copying() {
        let mut section = good(0);
        section.extend(good(1));
        let recs: Vec<_> = all(&section, 2).into_iter().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        let r = recs[1];
        assert_eq!(
            (r.attributes, r.timestamp_delta, r.offset_delta),
            (0, -3, 1)
        );
        assert_eq!((r.key, r.value), (Some(&b"k"[..]), Some(&b"vv"[..])));
        assert_eq!(r.header_count, 2);
        let headers: Vec<_> = r.headers().collect();
        assert_eq!(
            headers,
            vec![(&b"h"[..], Some(&b"x"[..])), (&b"n"[..], None)]
        );
        // Borrowed from the section, not copied.
        let key = r.key.unwrap();
        assert!(section.as_ptr_range().contains(&key.as_ptr()));
        // The key/value/headers bytes start at the key length.
        assert_eq!(r.key_value_and_headers()[..2], [2, b'k']);
        assert_eq!(
            r.key_value_and_headers().len() + 3,
            good(1).len() - 1,
            "attributes, ts delta and offset delta are one byte each here"
        );
        // An empty section with no records is fine, with records it is not.
        assert!(all(&[], 0).is_empty());
        assert!(all(&[], -1).is_empty());
    }

    #[test]
    fn null_and_empty_keys_and_values() {
        let rest = varints(&[-1, 0, 0]);
        let section = record(&fields(0, 0, &rest));
        let r = records(&section, 1).next().unwrap().unwrap();
        assert_eq!((r.key, r.value, r.header_count), (None, Some(&[][..]), 0));
        // Any negative key or value length is null, as in Kafka's
        // DefaultRecord.readFrom (not only -1).
        let rest = varints(&[-2, -7, 0]);
        let section = record(&fields(0, 0, &rest));
        let r = records(&section, 1).next().unwrap().unwrap();
        assert_eq!((r.key, r.value), (None, None));
    }

    #[test]
    fn truncated_varints() {
        // The record length itself.
        assert_eq!(
            only_error(&[0x80], 1),
            MalformedRecord {
                index: 0,
                reason: "malformed record length"
            }
        );
        // Each field's varint cut inside the record.
        let cases: [(&[u8], &str); 4] = [
            (&[0x80], "malformed timestamp delta"),
            (&[0, 0x80], "malformed offset delta"),
            (&[0, 0, 0x80], "malformed key length"),
            (&[0, 0, 0, 0x80], "malformed value length"),
        ];
        for (rest, reason) in cases {
            let mut body = vec![0u8];
            body.extend_from_slice(rest);
            let section = record(&body);
            assert_eq!(only_error(&section, 1).reason, reason, "{rest:?}");
        }
        let section = record(&fields(0, 0, &[0, 0, 0x80]));
        assert_eq!(only_error(&section, 1).reason, "malformed header count");
        // A varint longer than five bytes.
        let section = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(only_error(&section, 1).reason, "malformed record length");
    }

    #[test]
    fn lengths_past_the_end() {
        // Record length beyond the section.
        let mut section = good(0);
        section.pop();
        assert_eq!(
            only_error(&section, 1).reason,
            "record length exceeds the batch"
        );
        // Key, value, header key and header value beyond the record, even
        // when the section has more bytes after it.
        let cases: [(Vec<u8>, &str); 4] = [
            (varints(&[5]), "key exceeds record"),
            (varints(&[-1, 5]), "value exceeds record"),
            (varints(&[-1, -1, 1, 5]), "header key exceeds record"),
            (
                [varints(&[-1, -1, 1, 1]), b"h".to_vec(), varints(&[9])].concat(),
                "header value exceeds record",
            ),
        ];
        for (rest, reason) in cases {
            let mut section = record(&fields(0, 0, &rest));
            section.extend(good(1));
            assert_eq!(only_error(&section, 2).reason, reason);
        }
        // A record whose fields end before its declared length.
        let mut body = fields(0, 0, &varints(&[-1, -1, 0]));
        body.push(0);
        assert_eq!(
            only_error(&record(&body), 1).reason,
            "record size does not match its contents"
        );
        // Zero-length record.
        assert_eq!(only_error(&[0], 1).reason, "record body too short");
    }

    #[test]
    fn negative_lengths_that_are_not_null() {
        assert_eq!(
            only_error(&varints(&[-1]), 1).reason,
            "negative record length"
        );
        assert_eq!(
            only_error(&varints(&[-5]), 1).reason,
            "negative record length"
        );
        let section = record(&fields(0, 0, &varints(&[-1, -1, -1])));
        assert_eq!(only_error(&section, 1).reason, "negative header count");
        let section = record(&fields(0, 0, &varints(&[-1, -1, 1, -1, 0])));
        assert_eq!(only_error(&section, 1).reason, "null header key");
        // A null header value is fine.
        let section = record(&fields(0, 0, &[varints(&[-1, -1, 1, 0, -1])].concat()));
        let r = records(&section, 1).next().unwrap().unwrap();
        assert_eq!(r.headers().collect::<Vec<_>>(), vec![(&b""[..], None)]);
    }

    #[test]
    fn count_mismatches() {
        let mut section = good(0);
        section.extend(good(1));
        // Fewer records than declared.
        assert_eq!(
            only_error(&section, 3),
            MalformedRecord {
                index: 2,
                reason: "batch declares more records than it contains"
            }
        );
        // More bytes than the declared records use.
        let out = all(&section, 1);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1],
            Err(MalformedRecord {
                index: 1,
                reason: "incorrect declared batch size, records still remaining"
            })
        );
        // Zero records declared over a non-empty section.
        assert_eq!(only_error(&section, 0).index, 0);
        // After an error, nothing more.
        let mut it = records(&section, 5);
        assert_eq!(it.by_ref().filter(Result::is_err).count(), 1);
        assert!(it.next().is_none());
        // A huge declared count is bounded by the bytes.
        assert_eq!(all(&section, i32::MAX).len(), 3);
        assert_eq!(all(&section, 2).len(), 2);
    }

    #[test]
    fn every_prefix_of_a_section_fails_cleanly() {
        let mut section = good(0);
        section.extend(good(1));
        for cut in 0..section.len() {
            let out = all(&section[..cut], 2);
            assert!(out.last().is_some_and(Result::is_err), "cut at {cut}");
        }
        // Every byte flipped: never a panic.
        for at in 0..section.len() {
            let mut s = section.clone();
            s[at] ^= 0xff;
            let _ = all(&s, 2);
        }
    }
}
