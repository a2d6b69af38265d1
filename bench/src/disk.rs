//! `kastle-perf disk`: sequential write with `fdatasync` after every block,
//! the ceiling for a produce path that makes every acknowledged batch
//! durable before answering. One block buffer, reused; the file is removed
//! afterwards.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::args::Args;
use crate::common::{payload, r3, MB};
use crate::hist::Histogram;

const KNOWN: &[&str] = &["dir", "size", "block", "json"];

pub fn run(argv: &[String]) -> Result<i32, String> {
    let a = Args::parse("disk", argv, KNOWN)?;
    let dir = PathBuf::from(a.str("dir")?);
    let size_mib: u64 = a.get_or("size", 256)?;
    let block_kib: usize = a.get_or("block", 1024)?;
    let json = a.has("json");
    if size_mib == 0 || size_mib > 1 << 20 {
        return Err("disk: --size (MiB) must be 1..=1048576".into());
    }
    if block_kib == 0 || block_kib > 64 << 10 {
        return Err("disk: --block (KiB) must be 1..=65536".into());
    }
    let block = payload(block_kib * 1024, 0x6469_736b);
    let total = size_mib * 1024 * 1024;
    let path = dir.join(format!("kastle-perf-disk-{}.tmp", std::process::id()));
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("disk: creating {}: {e}", path.display()))?;
    let mut sync_hist = Histogram::new();
    let start = Instant::now();
    let mut written = 0u64;
    let result = (|| {
        while written < total {
            let n = (total - written).min(block.len() as u64) as usize;
            f.write_all(&block[..n])
                .map_err(|e| format!("disk: writing {}: {e}", path.display()))?;
            let s = Instant::now();
            f.sync_data()
                .map_err(|e| format!("disk: fdatasync {}: {e}", path.display()))?;
            sync_hist.record(s.elapsed().as_micros() as u64);
            written += n as u64;
        }
        Ok::<(), String>(())
    })();
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    drop(f);
    let _ = std::fs::remove_file(&path);
    result?;
    let mbps = written as f64 / MB / secs;
    println!(
        "{:.2} MB written in {block_kib} KiB blocks with fdatasync after each in {secs:.3} s: {mbps:.2} MB/sec, fdatasync avg {:.3} ms, p99 {:.3} ms",
        written as f64 / MB,
        sync_hist.avg_ms(),
        sync_hist.percentile_ms(0.99)
    );
    if json {
        let j = serde_json::json!({
            "tool": "disk",
            "dir": dir.display().to_string(),
            "bytes": written,
            "block_kib": block_kib,
            "elapsed_s": r3(secs),
            "mb_per_sec": r3(mbps),
            "fdatasync_avg_ms": r3(sync_hist.avg_ms()),
            "fdatasync_p99_ms": r3(sync_hist.percentile_ms(0.99)),
        });
        println!("{j}");
    }
    Ok(0)
}
