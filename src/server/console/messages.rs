//! The console's message browser: N records of one partition from an
//! offset or a timestamp, read through the same partition read a consumer's
//! Fetch uses (read_uncommitted: up to the high watermark; control batches
//! skipped), with each key, header value and value rendered as text, pretty
//! JSON or hex. Everything is bounded: records per request
//! ([`MAX_RECORDS`]), bytes read from the log ([`MAX_READ_BYTES`]),
//! bytes a compressed batch may inflate to ([`MAX_DECOMPRESSED_BYTES`]) and
//! bytes of each field shown ([`MAX_SHOWN_BYTES`]; the rest is cut and
//! marked `truncated`).

use serde_json::{json, Value};

use crate::broker::topics::validate_topic_name;
use crate::handlers::KafkaApis;
use crate::record::batch::{batch_records, BatchHeader, RECORD_BATCH_OVERHEAD};
use crate::record::default_record::records;
use crate::security::acl::{AclOperation, ResourceType};

use super::api::{ApiError, Params};
use super::auth::Viewer;

/// Records one request may ask for.
pub const MAX_RECORDS: usize = 500;
/// Records shown when the request does not say.
pub const DEFAULT_RECORDS: usize = 20;
/// Bytes of log read for one request, in reads of [`READ_CHUNK_BYTES`].
pub const MAX_READ_BYTES: usize = 8 << 20;
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Bytes one compressed batch may inflate to.
pub const MAX_DECOMPRESSED_BYTES: usize = 16 << 20;
/// Bytes of a key, header value or value shown; JSON is parsed only up to
/// [`MAX_JSON_BYTES`].
pub const MAX_SHOWN_BYTES: usize = 4096;
pub const MAX_JSON_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Hex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    Offset(i64),
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub topic: String,
    pub partition: i32,
    pub start: Start,
    pub limit: usize,
    pub format: Format,
}

impl Query {
    /// `topic`, `partition` (default 0), `offset` or `timestamp` (ms; neither:
    /// the log start), `limit` (1..=[`MAX_RECORDS`]), `format`
    /// (`text`, `json`, `hex`).
    pub fn parse(params: &Params) -> Result<Query, ApiError> {
        params.only(&[
            "topic",
            "partition",
            "offset",
            "timestamp",
            "limit",
            "format",
        ])?;
        let topic = params
            .get("topic")
            .ok_or_else(|| ApiError::bad("the topic parameter is required"))?
            .to_string();
        validate_topic_name(&topic).map_err(|m| ApiError::bad(format!("topic: {m}")))?;
        let partition = params.int("partition", 0, i32::MAX as i64)?.unwrap_or(0) as i32;
        let start = match (
            params.int("offset", 0, i64::MAX)?,
            params.int("timestamp", 0, i64::MAX)?,
        ) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad("give an offset or a timestamp, not both"))
            }
            (Some(o), None) => Start::Offset(o),
            (None, Some(t)) => Start::Timestamp(t),
            (None, None) => Start::Beginning,
        };
        let limit = params
            .int("limit", 1, MAX_RECORDS as i64)?
            .map_or(DEFAULT_RECORDS, |n| n as usize);
        let format = match params.get("format").unwrap_or("text") {
            "text" => Format::Text,
            "json" => Format::Json,
            "hex" => Format::Hex,
            other => {
                return Err(ApiError::bad(format!(
                    "format: {other:?} is not one of text, json, hex"
                )))
            }
        };
        Ok(Query {
            topic,
            partition,
            start,
            limit,
            format,
        })
    }
}

/// Reads the records `q` asks for, if the viewer may READ the topic.
pub fn browse(apis: &KafkaApis, viewer: &Viewer<'_>, q: &Query) -> Result<Value, ApiError> {
    if !viewer.may(AclOperation::Read, ResourceType::Topic, &q.topic) {
        return Err(ApiError::forbidden(format!(
            "not authorized to read topic {}",
            q.topic
        )));
    }
    let topic = apis
        .replicas
        .topics
        .get(&q.topic)
        .ok_or_else(|| ApiError::not_found(format!("no topic {}", q.topic)))?;
    let partition = topic.partition(q.partition).ok_or_else(|| {
        ApiError::not_found(format!(
            "topic {} has no partition {}",
            q.topic, q.partition
        ))
    })?;
    let state = partition.state();
    let (log_start, end) = (state.log_start_offset, state.high_watermark);
    let unavailable = |e: crate::broker::partition::PartitionError| {
        ApiError::unavailable(format!("{}-{}: {:?}", q.topic, q.partition, e.code()))
    };
    let first = match q.start {
        Start::Beginning => log_start,
        Start::Offset(o) if o < log_start || o > end => {
            return Err(ApiError::bad(format!(
                "offset {o} is outside the partition's log [{log_start}, {end}]"
            )))
        }
        Start::Offset(o) => o,
        Start::Timestamp(ts) => partition
            .offset_for_timestamp(ts, false)
            .map_err(unavailable)?
            .map_or(end, |(_, offset)| offset),
    };
    let mut shown = Vec::new();
    let mut at = first;
    let mut read = 0usize;
    'reading: while shown.len() < q.limit && at < end && read < MAX_READ_BYTES {
        let plan = partition
            .fetch(at, READ_CHUNK_BYTES, true)
            .map_err(unavailable)?;
        let bytes = plan
            .read()
            .map_err(|e| ApiError::unavailable(format!("{}-{}: {e}", q.topic, q.partition)))?;
        if bytes.is_empty() {
            break;
        }
        read += bytes.len();
        let mut pos = 0usize;
        let mut progressed = false;
        while bytes.len() - pos >= RECORD_BATCH_OVERHEAD {
            let buf = &bytes[pos..];
            let corrupt = |e: &dyn std::fmt::Display| {
                ApiError::unavailable(format!("{}-{} at offset {at}: {e}", q.topic, q.partition))
            };
            let h = BatchHeader::parse(buf).map_err(|e| corrupt(&e))?;
            let size = h.total_size();
            if size > buf.len() || size < RECORD_BATCH_OVERHEAD {
                break; // a partial batch ends the read
            }
            pos += size;
            progressed = true;
            if !h.is_control() {
                let section =
                    batch_records(&buf[..size], MAX_DECOMPRESSED_BYTES).map_err(|e| corrupt(&e))?;
                for r in records(&section, h.records_count) {
                    let r = r.map_err(|e| corrupt(&e))?;
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    if offset < at || offset >= end {
                        continue;
                    }
                    if shown.len() >= q.limit {
                        break 'reading;
                    }
                    let log_append = h.timestamp_type_is_log_append();
                    let timestamp = if log_append {
                        h.max_timestamp
                    } else {
                        h.base_timestamp + r.timestamp_delta
                    };
                    let headers: Vec<Value> = r
                        .headers()
                        .map(|(k, v)| {
                            json!({
                                "key": String::from_utf8_lossy(&k[..k.len().min(MAX_SHOWN_BYTES)]),
                                "value": render(v, q.format),
                            })
                        })
                        .collect();
                    shown.push(json!({
                        "offset": offset,
                        "timestamp": timestamp,
                        "timestamp_type": if log_append { "LogAppendTime" } else { "CreateTime" },
                        "key": render(r.key, q.format),
                        "value": render(r.value, q.format),
                        "headers": headers,
                    }));
                }
            }
            at = at.max(h.last_offset() + 1);
        }
        if !progressed {
            break;
        }
    }
    let next = shown
        .last()
        .and_then(|r| r["offset"].as_i64())
        .map_or(at.min(end), |o| o + 1);
    Ok(json!({
        "topic": q.topic,
        "partition": q.partition,
        "log_start_offset": log_start,
        "high_watermark": end,
        "first_offset": first,
        "next_offset": next,
        "format": match q.format { Format::Text => "text", Format::Json => "json", Format::Hex => "hex" },
        "records": shown,
    }))
}

/// One field as shown: null stays null; otherwise its size, whether it was
/// cut, and the text. JSON that does not parse is shown as text with
/// `"json": false`.
pub fn render(bytes: Option<&[u8]>, format: Format) -> Value {
    let Some(b) = bytes else {
        return Value::Null;
    };
    let head = &b[..b.len().min(MAX_SHOWN_BYTES)];
    let cut = b.len() > head.len();
    match format {
        Format::Text => {
            json!({"size": b.len(), "truncated": cut, "text": String::from_utf8_lossy(head)})
        }
        Format::Hex => {
            let mut s = String::with_capacity(head.len() * 3);
            for (i, byte) in head.iter().enumerate() {
                if i > 0 {
                    s.push(if i % 16 == 0 { '\n' } else { ' ' });
                }
                s.push_str(&format!("{byte:02x}"));
            }
            json!({"size": b.len(), "truncated": cut, "text": s})
        }
        Format::Json => {
            let parsed = (b.len() <= MAX_JSON_BYTES)
                .then(|| serde_json::from_slice::<Value>(b).ok())
                .flatten()
                .and_then(|v| serde_json::to_string_pretty(&v).ok());
            match parsed {
                Some(pretty) => {
                    let mut end = pretty.len().min(MAX_SHOWN_BYTES);
                    while !pretty.is_char_boundary(end) {
                        end -= 1;
                    }
                    json!({"size": b.len(), "truncated": end < pretty.len(), "json": true, "text": &pretty[..end]})
                }
                None => {
                    json!({"size": b.len(), "truncated": cut, "json": false, "text": String::from_utf8_lossy(head)})
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<Query, ApiError> {
        Query::parse(&Params::parse(q)?)
    }

    #[test]
    fn queries_are_validated() {
        let q = query("topic=orders&partition=2&offset=5&limit=3&format=hex").unwrap();
        assert_eq!(
            q,
            Query {
                topic: "orders".into(),
                partition: 2,
                start: Start::Offset(5),
                limit: 3,
                format: Format::Hex
            }
        );
        let q = query("topic=a.b&timestamp=1700000000000").unwrap();
        assert_eq!(q.start, Start::Timestamp(1_700_000_000_000));
        assert_eq!(
            (q.partition, q.limit, q.format),
            (0, DEFAULT_RECORDS, Format::Text)
        );
        for bad in [
            "",
            "topic=",
            "topic=bad/name",
            "topic=t&partition=-1",
            "topic=t&partition=x",
            "topic=t&offset=1&timestamp=2",
            "topic=t&limit=0",
            "topic=t&limit=100000",
            "topic=t&format=xml",
            "topic=t&offset=99999999999999999999",
            "topic=t&nonsense=1",
            "topic=t&topic=u",
        ] {
            let e = query(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}: {e:?}");
        }
    }

    #[test]
    fn fields_render_bounded_in_each_format() {
        assert_eq!(render(None, Format::Text), Value::Null);
        let v = render(Some(b"{\"a\":[1,2]}"), Format::Json);
        assert_eq!(v["text"], "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        assert_eq!(v["json"], true);
        let v = render(Some(b"not json"), Format::Json);
        assert_eq!(
            (v["json"].clone(), v["text"].clone()),
            (json!(false), json!("not json"))
        );
        let v = render(Some(&[0u8, 1, 0xab]), Format::Hex);
        assert_eq!(v["text"], "00 01 ab");
        let big = vec![b'x'; MAX_SHOWN_BYTES + 10];
        let v = render(Some(&big), Format::Text);
        assert_eq!(v["truncated"], true);
        assert_eq!(v["size"], MAX_SHOWN_BYTES + 10);
        assert_eq!(v["text"].as_str().map(str::len), Some(MAX_SHOWN_BYTES));
    }
}
