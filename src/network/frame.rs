//! Kafka framing: a 4-byte big-endian size, then that many bytes.
//!
//! The claimed size is checked against `socket.request.max.bytes` before any
//! byte of the body is read. A body of up to 1 MiB (the clients' default
//! `max.request.size`) gets its whole buffer at once, so a typical produce
//! request is received without a reallocation and copy; above that the
//! buffer grows only as bytes arrive, so a peer claiming 100 MiB and sending
//! 10 bytes costs 1 MiB, not 100 MiB.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

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
        }
    }
}

pub async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
) -> Result<BytesMut, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match rd.read(&mut len[got..]).await {
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
    let mut buf = BytesMut::with_capacity(size.min(INITIAL_CHUNK));
    while buf.len() < size {
        let remaining = size - buf.len();
        if buf.capacity() == buf.len() {
            buf.reserve(remaining.min(buf.capacity().max(INITIAL_CHUNK)));
        }
        let n = (&mut *rd)
            .take(remaining as u64)
            .read_buf(&mut buf)
            .await
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
}
