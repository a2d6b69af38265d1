//! Kafka framing: a 4-byte big-endian size, then that many bytes.
//!
//! The claimed size is checked against `socket.request.max.bytes` before any
//! byte of the body is read. A body of up to 1 MiB (the clients' default
//! `max.request.size`) gets its whole buffer at once, so a typical produce
//! request is received without a reallocation and copy; above that the
//! buffer grows only as bytes arrive, so a peer claiming 100 MiB and sending
//! 10 bytes costs 1 MiB, not 100 MiB. A connection's idle timer restarts
//! with every byte read, inside a frame too, as Kafka's does.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// First allocation for a frame body; doubled as data arrives.
const INITIAL_CHUNK: usize = 1024 * 1024;

#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    Closed,
    /// The peer closed or failed mid-frame.
    Io(std::io::Error),
    TooLarge {
        size: i64,
        max: usize,
    },
    NegativeSize(i32),
    /// No byte arrived for `connections.max.idle.ms`.
    Idle,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::Io(e) => write!(f, "i/o error mid-frame: {e}"),
            FrameError::TooLarge { size, max } => {
                write!(
                    f,
                    "request size {size} exceeds socket.request.max.bytes ({max})"
                )
            }
            FrameError::NegativeSize(s) => write!(f, "invalid negative request size {s}"),
            FrameError::Idle => f.write_str("idle for connections.max.idle.ms"),
        }
    }
}

/// Reads one frame; no time limit (the caller bounds the whole read).
pub async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
) -> Result<BytesMut, FrameError> {
    let size = read_size(rd, max, None).await?;
    read_body(rd, size, None).await
}

/// Reads one frame, failing with [`FrameError::Idle`] when no byte arrives
/// for `idle`.
pub async fn read_frame_within<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    idle: Duration,
) -> Result<BytesMut, FrameError> {
    let size = read_size(rd, max, Some(idle)).await?;
    read_body(rd, size, Some(idle)).await
}

/// Resolves once the peer has closed the connection (or it failed) with
/// none of its bytes left unread, to be raced against a request's handling
/// so that a client which gave up mid-request is noticed at once, not when
/// the handling ends. If the peer pipelined bytes behind the request, they
/// stay buffered for the next read (which sees any close behind them) and
/// this never resolves.
pub async fn peer_gone<R: AsyncRead + Unpin>(rd: &mut BufReader<R>) {
    match rd.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// One read, failing with [`FrameError::Idle`] if no byte arrives within
/// `idle`: any byte counts as activity, as Kafka's selector counts any
/// read on a channel (so a frame may take longer than `idle` in all).
async fn timed<T>(
    idle: Option<Duration>,
    read: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<std::io::Result<T>, FrameError> {
    match idle {
        None => Ok(read.await),
        Some(d) => tokio::time::timeout(d, read)
            .await
            .map_err(|_| FrameError::Idle),
    }
}

/// Reads a frame's size prefix and checks it against `max`.
pub async fn read_size<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    idle: Option<Duration>,
) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match timed(idle, rd.read(&mut len[got..])).await? {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let size = i32::from_be_bytes(len);
    if size < 0 {
        return Err(FrameError::NegativeSize(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max,
        });
    }
    Ok(size)
}

/// Reads a frame body of `size` bytes (its size already read).
pub async fn read_body<R: AsyncRead + Unpin>(
    rd: &mut R,
    size: usize,
    idle: Option<Duration>,
) -> Result<BytesMut, FrameError> {
    let mut buf = BytesMut::with_capacity(size.min(INITIAL_CHUNK));
    while buf.len() < size {
        let remaining = size - buf.len();
        if buf.capacity() == buf.len() {
            buf.reserve(remaining.min(buf.capacity().max(INITIAL_CHUNK)));
        }
        let n = timed(idle, (&mut *rd).take(remaining as u64).read_buf(&mut buf))
            .await?
            .map_err(FrameError::Io)?;
        if n == 0 {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn reads_consecutive_frames() {
        let mut data = framed(b"hello");
        data.extend(framed(b""));
        data.extend(framed(&[7u8; 200_000]));
        let mut rd = &data[..];
        assert_eq!(&read_frame(&mut rd, 1 << 20).await.unwrap()[..], b"hello");
        assert_eq!(read_frame(&mut rd, 1 << 20).await.unwrap().len(), 0);
        assert_eq!(read_frame(&mut rd, 1 << 20).await.unwrap().len(), 200_000);
        assert!(matches!(
            read_frame(&mut rd, 1 << 20).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn oversized_and_negative_sizes_are_refused_before_reading() {
        let data = framed(&[0u8; 100]);
        assert!(matches!(
            read_frame(&mut &data[..], 99).await,
            Err(FrameError::TooLarge { size: 100, max: 99 })
        ));
        let neg = (-5i32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &neg[..], 99).await,
            Err(FrameError::NegativeSize(-5))
        ));
    }

    #[tokio::test]
    async fn truncated_frames_are_errors_not_hangs() {
        let data = framed(b"0123456789");
        assert!(matches!(
            read_frame(&mut &data[..8], 1 << 20).await,
            Err(FrameError::Io(_))
        ));
        assert!(matches!(
            read_frame(&mut &data[..2], 1 << 20).await,
            Err(FrameError::Io(_))
        ));
    }

    #[tokio::test]
    async fn a_huge_claim_allocates_only_what_arrives() {
        // Claims 100 MiB, sends 10 bytes, then EOF.
        let mut data = (100i32 << 20).to_be_bytes().to_vec();
        data.extend_from_slice(b"0123456789");
        assert!(matches!(
            read_frame(&mut &data[..], 104_857_600).await,
            Err(FrameError::Io(_))
        ));
    }

    #[tokio::test]
    async fn every_byte_restarts_the_idle_timer_and_silence_ends_it() {
        let idle = Some(Duration::from_millis(300));
        // A byte every 120 ms: 720 ms for the whole frame, never 300 ms idle.
        let (mut client, mut server) = tokio::io::duplex(64);
        let trickle = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for b in framed(b"hi") {
                tokio::time::sleep(Duration::from_millis(120)).await;
                client.write_all(&[b]).await.unwrap();
            }
            // Then silence mid-frame.
            client.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(client);
        });
        let size = read_size(&mut server, 1 << 20, idle).await.unwrap();
        assert_eq!(
            &read_body(&mut server, size, idle).await.unwrap()[..],
            b"hi"
        );
        let size = read_size(&mut server, 1 << 20, idle).await.unwrap();
        assert!(matches!(
            read_body(&mut server, size, idle).await,
            Err(FrameError::Idle)
        ));
        trickle.abort();
    }
}
