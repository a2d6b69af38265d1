//! DescribeLogDirs (35) responses at every version kastle serves: the
//! crate's encoding up to version 4, and version 5, past the
//! `kafka-protocol` crate, written here. Version 5 is version 4's layout
//! plus each log directory's `IsCordoned` (a bool after `UsableBytes`):
//! false, as kastle has no `cordoned.log.dirs`. A version 5 request is
//! version 4's (`versions::SAME_REQUEST_AS`).

use kafka_protocol::messages::DescribeLogDirsResponse;

use super::wire::{DecodeError, Reader, Writer};

/// The newest version the crate has.
pub const CRATE_MAX: i16 = 4;

/// The version 5 body (every version from 5 on; older ones are the
/// crate's, `Request::respond_past_crate`).
pub fn write_v5(r: &DescribeLogDirsResponse) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(r.throttle_time_ms);
    w.i16(r.error_code);
    w.arr(&r.results, |w, d| {
        w.i16(d.error_code);
        w.str(d.log_dir.as_str());
        w.arr(&d.topics, |w, t| {
            w.str(t.name.0.as_str());
            w.arr(&t.partitions, |w, p| {
                w.i32(p.partition_index);
                w.i64(p.partition_size);
                w.i64(p.offset_lag);
                w.bool(p.is_future_key);
                w.tags();
            });
            w.tags();
        });
        w.i64(d.total_bytes);
        w.i64(d.usable_bytes);
        // IsCordoned: no directory is cordoned.
        w.bool(false);
        w.tags();
    });
    w.tags();
    w.0
}

/// One partition of a log directory, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirPartition {
    pub partition_index: i32,
    pub partition_size: i64,
    pub offset_lag: i64,
    pub is_future_key: bool,
}

/// One log directory of a version 5 response, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    pub error_code: i16,
    pub log_dir: String,
    pub topics: Vec<(String, Vec<LogDirPartition>)>,
    pub total_bytes: i64,
    pub usable_bytes: i64,
    pub is_cordoned: bool,
}

/// Reads a version 5 response body (for clients and tests): its throttle,
/// top-level error code and log directories.
pub fn read_v5(body: &[u8]) -> Result<(i32, i16, Vec<LogDir>), DecodeError> {
    let mut r = Reader::new(body, "DescribeLogDirsResponse v5");
    let throttle = r.i32()?;
    let error_code = r.i16()?;
    let dirs = r.arr(|r| {
        let error_code = r.i16()?;
        let log_dir = r.str()?;
        let topics = r.arr(|r| {
            let name = r.str()?;
            let partitions = r.arr(|r| {
                let p = LogDirPartition {
                    partition_index: r.i32()?,
                    partition_size: r.i64()?,
                    offset_lag: r.i64()?,
                    is_future_key: r.bool()?,
                };
                r.tags()?;
                Ok(p)
            })?;
            r.tags()?;
            Ok((name, partitions))
        })?;
        let d = LogDir {
            error_code,
            log_dir,
            topics,
            total_bytes: r.i64()?,
            usable_bytes: r.i64()?,
            is_cordoned: r.bool()?,
        };
        r.tags()?;
        Ok(d)
    })?;
    r.tags()?;
    r.end()?;
    Ok((throttle, error_code, dirs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::Encodable;
    use kafka_protocol::protocol::StrBytes;

    fn sample() -> DescribeLogDirsResponse {
        let dir = DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_static_str("/d"))
            .with_topics(vec![DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![DescribeLogDirsPartition::default()
                    .with_partition_index(1)
                    .with_partition_size(300)])])
            .with_total_bytes(1000)
            .with_usable_bytes(400);
        DescribeLogDirsResponse::default()
            .with_throttle_time_ms(2)
            .with_results(vec![dir])
    }

    fn encoded(r: &DescribeLogDirsResponse, version: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        r.encode(&mut b, version).expect("encodes");
        b.to_vec()
    }

    #[test]
    fn version_5_is_version_4_with_is_cordoned_false() {
        let r = sample();
        let v4 = encoded(&r, 4);
        // IsCordoned sits before the directory's tags and the top-level
        // tags, the last two bytes.
        let mut want = v4.clone();
        want.insert(v4.len() - 2, 0);
        assert_eq!(write_v5(&r), want);
        let (throttle, error, dirs) = read_v5(&want).expect("reads");
        assert_eq!((throttle, error, dirs.len()), (2, 0, 1));
        let d = &dirs[0];
        assert_eq!(
            (
                d.log_dir.as_str(),
                d.total_bytes,
                d.usable_bytes,
                d.is_cordoned
            ),
            ("/d", 1000, 400, false)
        );
        assert_eq!(
            d.topics,
            vec![(
                "t".to_string(),
                vec![LogDirPartition {
                    partition_index: 1,
                    partition_size: 300,
                    offset_lag: 0,
                    is_future_key: false
                }]
            )]
        );
        assert!(read_v5(&want[..want.len() - 1]).is_err());
    }
}
