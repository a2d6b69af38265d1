//! Measures the three ways a fetch response's record data can reach a
//! socket on this machine, to choose the broker's fetch path:
//!
//! * `pread`: read the region into a buffer, then `write` it (two copies);
//! * `mmap`: map the segment file and `write` from the mapping (one copy by
//!   the kernel, plus page-table work per mapping);
//! * `sendfile`: page cache to socket inside the kernel (one copy, no
//!   user-space buffer), which is what Kafka's `transferTo` does.
//!
//! A file of `--mib` MiB (default 512) is written and read once so it sits in
//! the page cache; a reader thread drains a loopback TCP connection while the
//! writer sends the file in regions of `--region-kib` KiB (default 1024, the
//! default `max.partition.fetch.bytes`). Reported per method: MB/s and the
//! writer thread's CPU time per GB.
//!
//! Run: `cargo run --release --example zero_copy_probe [-- --mib 512 --region-kib 1024 --rounds 3]`

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, Debug)]
enum Method {
    Pread,
    Mmap,
    Sendfile,
}

fn send(method: Method, file: &File, sock: &mut TcpStream, total: usize, region: usize) {
    let mut buf = vec![0u8; region];
    let mut pos = 0usize;
    while pos < total {
        let len = region.min(total - pos);
        match method {
            Method::Pread => {
                file.read_exact_at(&mut buf[..len], pos as u64)
                    .expect("pread");
                sock.write_all(&buf[..len]).expect("write");
            }
            Method::Mmap => {
                // One mapping per region, as a fetch of one partition would.
                // SAFETY: the file is not modified while mapped.
                let map = unsafe {
                    memmap2::MmapOptions::new()
                        .offset(pos as u64)
                        .len(len)
                        .map(file)
                        .expect("mmap")
                };
                sock.write_all(&map).expect("write");
            }
            Method::Sendfile => {
                let mut off = pos as i64;
                let mut left = len;
                while left > 0 {
                    // SAFETY: valid descriptors and offset pointer.
                    let n = unsafe {
                        libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, left)
                    };
                    assert!(n > 0, "sendfile: {}", std::io::Error::last_os_error());
                    left -= n as usize;
                }
            }
        }
        pos += len;
    }
}

fn main() {
    let mib = arg("--mib", 512);
    let region = arg("--region-kib", 1024) * 1024;
    let rounds = arg("--rounds", 3);
    let total = mib << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("segment.log");
    {
        let mut f = File::create(&path).expect("create");
        let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..mib {
            f.write_all(&block).expect("write file");
        }
    }
    let file = File::open(&path).expect("open");
    // Warm the page cache.
    let mut sink = vec![0u8; 1 << 20];
    let mut warm = File::open(&path).expect("open");
    while warm.read(&mut sink).expect("read") > 0 {}

    println!(
        "file {mib} MiB, region {} KiB, {rounds} rounds",
        region / 1024
    );
    println!("{:<9} {:>10} {:>16}", "method", "MB/s", "writer CPU s/GB");
    for method in [Method::Pread, Method::Mmap, Method::Sendfile] {
        let mut best_rate = 0f64;
        let mut cpu_per_gb = f64::MAX;
        for _ in 0..rounds {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let reader = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().expect("accept");
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0usize;
                loop {
                    let n = s.read(&mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                got
            });
            let mut sock = TcpStream::connect(addr).expect("connect");
            let cpu0 = thread_cpu_secs();
            let t0 = Instant::now();
            send(method, &file, &mut sock, total, region);
            drop(sock);
            let got = reader.join().expect("reader");
            let secs = t0.elapsed().as_secs_f64();
            let cpu = thread_cpu_secs() - cpu0;
            assert_eq!(got, total);
            best_rate = best_rate.max(total as f64 / 1e6 / secs);
            cpu_per_gb = cpu_per_gb.min(cpu / (total as f64 / 1e9));
        }
        println!(
            "{:<9} {:>10.0} {:>16.3}",
            format!("{method:?}").to_lowercase(),
            best_rate,
            cpu_per_gb
        );
    }
}
