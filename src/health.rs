//! `kastle health`: a container health check. Connects to a broker, sends
//! one ApiVersions v0 request and succeeds only on a well-formed answer (our
//! correlation id, error code 0, a non-empty API list). Plain blocking
//! `std::net` with one overall deadline: no async runtime, no broker state.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::BrokerConfig;

pub const USAGE: &str = "\
Usage: kastle health [--bootstrap-server HOST:PORT] [--timeout-ms N]
                     [--config FILE] [--override key=value]...

Sends ApiVersions to the broker and exits 0 if it answers correctly, 1 if
not. Without --bootstrap-server it checks this node's first client listener,
read from the same sources as the broker (file, KAFKA_* environment,
--override); a listener on every interface is checked on 127.0.0.1.
Default timeout: 5000 ms.";

const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Largest ApiVersions answer accepted; Kafka's is a few hundred bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
const API_VERSIONS: i16 = 18;
const CORRELATION_ID: i32 = 0x6b61_7374; // "kast"
const CLIENT_ID: &str = "kastle-health";

#[derive(Debug, Default)]
pub struct HealthArgs {
    pub bootstrap: Option<String>,
    pub timeout: Option<Duration>,
    pub config: Option<PathBuf>,
    pub overrides: Vec<String>,
}

/// Parses the arguments after `health`. `Ok(None)` means help was printed.
pub fn parse_args(args: &[String]) -> Result<Option<HealthArgs>, String> {
    let mut out = HealthArgs::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--bootstrap-server" | "--bootstrap-servers" => out.bootstrap = Some(value(flag)?),
            "--timeout-ms" => {
                let v = value(flag)?;
                let ms: u64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|ms| (1..=600_000).contains(ms))
                    .ok_or_else(|| format!("--timeout-ms {v:?}: expected 1..600000"))?;
                out.timeout = Some(Duration::from_millis(ms));
            }
            "--config" => out.config = Some(value(flag)?.into()),
            "--override" => out.overrides.push(value(flag)?),
            other => return Err(format!("unexpected argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(Some(out))
}

/// The address to check when none is given: the first listener that serves
/// clients, with a wildcard host replaced by loopback.
pub fn default_target(config: &BrokerConfig) -> Option<String> {
    let l = config
        .listeners
        .iter()
        .find(|l| config.advertised_for(&l.name).is_some())?;
    let host = match l.host.as_str() {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    Some(if host.contains(':') {
        format!("[{host}]:{}", l.port)
    } else {
        format!("{host}:{}", l.port)
    })
}

/// Runs the check; `Ok` carries a one-line summary, `Err` the reason.
pub fn check(target: &str, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    let deadline = started + timeout;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{target}: no answer within {} ms", timeout.as_millis()))
    };
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: cannot resolve: {e}"))?
        .collect();
    let mut last_err = format!("{target}: resolved to no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("{target} ({addr}): cannot connect: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(|e| format!("{target}: {e}"))?;
    stream
        .write_all(&request())
        .map_err(|e| format!("{target}: sending ApiVersions: {e}"))?;

    let mut size = [0u8; 4];
    read_exact_by(&mut stream, &mut size, &remaining, target)?;
    let size = i32::from_be_bytes(size);
    if size < 4 || size as usize > MAX_RESPONSE_BYTES {
        return Err(format!(
            "{target}: not a Kafka answer (frame size {size}, expected 4..={MAX_RESPONSE_BYTES})"
        ));
    }
    let mut body = vec![0u8; size as usize];
    read_exact_by(&mut stream, &mut body, &remaining, target)?;
    let apis = parse_response(&body).map_err(|e| format!("{target}: {e}"))?;
    Ok(format!(
        "{target}: ok, ApiVersions lists {apis} APIs ({} ms)",
        started.elapsed().as_millis()
    ))
}

/// ApiVersions v0 with request header v1 (every broker since 0.10 answers it;
/// a broker that prefers a newer version still answers v0 in full).
fn request() -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&API_VERSIONS.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    body.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID.as_bytes());
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Checks a v0 response (header v0): correlation id, error code 0, and an
/// API array that is non-empty and fits the frame. Returns the API count.
pub fn parse_response(b: &[u8]) -> Result<usize, String> {
    let i16_at = |i: usize| b.get(i..i + 2).map(|s| i16::from_be_bytes([s[0], s[1]]));
    let i32_at = |i: usize| {
        b.get(i..i + 4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let corr = i32_at(0).ok_or("answer too short for a correlation id")?;
    if corr != CORRELATION_ID {
        return Err(format!(
            "not a Kafka answer (correlation id {corr:#x}, sent {CORRELATION_ID:#x})"
        ));
    }
    let code = i16_at(4).ok_or("answer too short for an error code")?;
    if code != 0 {
        return Err(format!("ApiVersions answered error code {code}"));
    }
    let count = i32_at(6).ok_or("answer too short for the API list")?;
    if count <= 0 {
        return Err(format!("ApiVersions listed {count} APIs"));
    }
    let count = count as usize;
    // Each entry: api key, min version, max version (3 × i16).
    if count > (b.len() - 10) / 6 {
        return Err(format!(
            "API list of {count} entries does not fit a {}-byte answer",
            b.len()
        ));
    }
    Ok(count)
}

fn read_exact_by(
    stream: &mut TcpStream,
    buf: &mut [u8],
    remaining: &impl Fn() -> Result<Duration, String>,
    target: &str,
) -> Result<(), String> {
    let mut filled = 0;
    while filled < buf.len() {
        stream
            .set_read_timeout(Some(remaining()?))
            .map_err(|e| format!("{target}: {e}"))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(format!("{target}: connection closed before a full answer")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                remaining()?;
            }
            Err(e) => return Err(format!("{target}: reading the answer: {e}")),
        }
    }
    Ok(())
}

/// Entry point of `kastle health ARGS`; returns the process exit code
/// (0 healthy, 1 unhealthy, 2 bad arguments or configuration).
pub fn main(args: &[String]) -> u8 {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let target = match args.bootstrap {
        Some(t) => t,
        None => {
            let loaded =
                BrokerConfig::load(args.config.as_deref(), std::env::vars(), &args.overrides);
            let config = match loaded {
                Ok((c, _)) => c,
                Err(e) => {
                    eprintln!("kastle health: configuration: {e}");
                    return 2;
                }
            };
            match default_target(&config) {
                Some(t) => t,
                None => {
                    eprintln!(
                        "kastle health: no client listener in the configuration; \
                         pass --bootstrap-server HOST:PORT"
                    );
                    return 2;
                }
            }
        }
    };
    let timeout = args
        .timeout
        .unwrap_or(Duration::from_millis(DEFAULT_TIMEOUT_MS));
    match check(&target, timeout) {
        Ok(line) => {
            println!("healthy: {line}");
            0
        }
        Err(e) => {
            println!("unhealthy: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(corr: i32, code: i16, count: i32, entries: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&corr.to_be_bytes());
        b.extend_from_slice(&code.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.resize(b.len() + entries * 6, 0);
        b
    }

    #[test]
    fn response_checks() {
        assert_eq!(parse_response(&answer(CORRELATION_ID, 0, 2, 2)), Ok(2));
        assert!(parse_response(&answer(7, 0, 2, 2)).is_err());
        assert!(parse_response(&answer(CORRELATION_ID, 35, 2, 2)).is_err());
        assert!(parse_response(&answer(CORRELATION_ID, 0, 0, 0)).is_err());
        assert!(parse_response(&answer(CORRELATION_ID, 0, 3, 2)).is_err());
        assert!(parse_response(&answer(CORRELATION_ID, 0, i32::MAX, 1)).is_err());
        assert!(parse_response(&[0, 1]).is_err());
    }

    #[test]
    fn arguments() {
        let a: Vec<String> = ["--bootstrap-server", "h:1", "--timeout-ms=250"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = parse_args(&a).unwrap().unwrap();
        assert_eq!(p.bootstrap.as_deref(), Some("h:1"));
        assert_eq!(p.timeout, Some(Duration::from_millis(250)));
        assert!(parse_args(&["--timeout-ms".to_string(), "0".to_string()]).is_err());
        assert!(parse_args(&["--bogus".to_string()]).is_err());
    }

    #[test]
    fn default_target_skips_controllers_and_wildcards() {
        let (c, _) = BrokerConfig::from_entries(vec![
            (
                "listeners".into(),
                "CONTROLLER://:9093,PLAINTEXT://0.0.0.0:19092".into(),
            ),
            ("controller.listener.names".into(), "CONTROLLER".into()),
            (
                "advertised.listeners".into(),
                "PLAINTEXT://kafka:19092".into(),
            ),
        ])
        .unwrap();
        assert_eq!(default_target(&c).as_deref(), Some("127.0.0.1:19092"));
    }
}
