//! Kafka's `OffsetCheckpointFile`: one offset per partition in a log
//! directory's text checkpoint (`replication-offset-checkpoint` holds each
//! replica's high watermark). The format is Kafka's, so the files read the
//! same to both: a version line (0), a count line, then one
//! `topic partition offset` line per partition. Written atomically
//! (temporary file, fsync, rename, directory fsync).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::util::fs::write_atomically;

/// The only version Kafka writes.
const VERSION: i32 = 0;

/// Offsets by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

pub struct OffsetCheckpointFile {
    path: PathBuf,
}

impl OffsetCheckpointFile {
    pub fn new(dir: &Path, name: &str) -> OffsetCheckpointFile {
        OffsetCheckpointFile {
            path: dir.join(name),
        }
    }

    /// Replaces the file with `offsets`.
    pub fn write(&self, offsets: &Offsets) -> std::io::Result<()> {
        let mut text = format!("{VERSION}\n{}\n", offsets.len());
        for ((topic, partition), offset) in offsets {
            let _ = writeln!(text, "{topic} {partition} {offset}");
        }
        write_atomically(&self.path, text.as_bytes())
    }

    /// The offsets in the file: empty when there is none; `Err` names what
    /// is malformed (Kafka refuses such a file too).
    pub fn read(&self) -> Result<Offsets, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
            Err(e) => return Err(format!("reading {}: {e}", self.path.display())),
        };
        parse(&text).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

pub fn parse(text: &str) -> Result<Offsets, String> {
    let mut lines = text.lines();
    let version: i32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("no version line")?;
    if version != VERSION {
        return Err(format!("unrecognized version {version}"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("no count line")?;
    let mut out = Offsets::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(p), Some(o), None) if !t.is_empty() => p
                .parse::<i32>()
                .ok()
                .zip(o.parse::<i64>().ok())
                .map(|(p, o)| (t, p, o)),
            _ => None,
        };
        let Some((topic, partition, offset)) = parsed else {
            return Err(format!("malformed line {line:?}"));
        };
        out.insert((topic.to_string(), partition), offset);
    }
    if out.len() != count || lines.any(|l| !l.trim().is_empty()) {
        return Err(format!("expected {count} entries"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let f = OffsetCheckpointFile::new(dir.path(), "replication-offset-checkpoint");
        assert_eq!(f.read(), Ok(Offsets::new()));
        let mut offsets = Offsets::new();
        offsets.insert(("orders".into(), 0), 42);
        offsets.insert(("orders".into(), 1), 0);
        offsets.insert(("__consumer_offsets".into(), 7), 9);
        f.write(&offsets).unwrap();
        let text =
            std::fs::read_to_string(dir.path().join("replication-offset-checkpoint")).unwrap();
        assert_eq!(
            text,
            "0\n3\n__consumer_offsets 7 9\norders 0 42\norders 1 0\n"
        );
        assert_eq!(f.read(), Ok(offsets));
    }

    #[test]
    fn malformed_files_are_refused() {
        for bad in [
            "",
            "1\n0\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt x 1\n",
            "0\n1\nt 0 1 2\n",
            "0\n1\nt 0 1\nu 0 2\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("0\n0\n").map(|o| o.len()), Ok(0));
    }
}
