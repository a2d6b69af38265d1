//! A tiny blocking Kafka client: frames requests by hand (so tests can also
//! send broken ones), encodes and decodes bodies with the `kafka-protocol`
//! crate, and the varint and integer writers raw frames are built with.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, Request};

pub const CLIENT_ID: &str = "kastle-protocol-tests";

pub struct Client {
    pub stream: TcpStream,
    next_corr: i32,
}

/// Request header bytes (v1 or v2) for the given key/version/correlation.
pub fn request_header(api_key: i16, version: i16, corr: i32, header_version: i16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&corr.to_be_bytes());
    if header_version >= 1 {
        h.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
        h.extend_from_slice(CLIENT_ID.as_bytes());
    }
    if header_version >= 2 {
        h.push(0); // empty tagged fields
    }
    h
}

/// Header version the crate says a request uses; v1 for unknown keys.
pub fn req_header_version(api_key: i16, version: i16) -> i16 {
    match ApiKey::try_from(api_key) {
        Ok(k) => k.request_header_version(version),
        Err(_) => 1,
    }
}

pub fn resp_header_version(api_key: i16, version: i16) -> i16 {
    match ApiKey::try_from(api_key) {
        Ok(k) => k.response_header_version(version),
        Err(_) => 0,
    }
}

/// A whole frame (size prefix included) with a header of the crate's version.
pub fn frame(api_key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    frame_with_header(
        api_key,
        version,
        corr,
        req_header_version(api_key, version),
        body,
    )
}

pub fn frame_with_header(
    api_key: i16,
    version: i16,
    corr: i32,
    header_version: i16,
    body: &[u8],
) -> Vec<u8> {
    let h = request_header(api_key, version, corr, header_version);
    let mut f = Vec::with_capacity(4 + h.len() + body.len());
    f.extend_from_slice(&((h.len() + body.len()) as i32).to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(body);
    f
}

pub fn encode<R: Encodable>(req: &R, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    req.encode(&mut b, version).expect("encode request");
    b.to_vec()
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_corr: 1,
        }
    }

    pub fn next_corr(&mut self) -> i32 {
        let c = self.next_corr;
        self.next_corr += 1;
        c
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, api_key: i16, version: i16, corr: i32, body: &[u8]) {
        let f = frame(api_key, version, corr, body);
        self.stream.write_all(&f).expect("write request");
    }

    /// Read one response frame: (correlation id, bytes after the correlation id).
    pub fn recv_frame(&mut self) -> std::io::Result<(i32, Bytes)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        assert!(
            (4..256 * 1024 * 1024).contains(&len),
            "bad response size {len}"
        );
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        let mut b = Bytes::from(buf);
        let corr = b.get_i32();
        Ok((corr, b))
    }

    /// Read one response and strip the response header for (`api_key`, `version`).
    pub fn recv(&mut self, api_key: i16, version: i16) -> (i32, Bytes) {
        let (corr, mut b) = self.recv_frame().expect("read response");
        if resp_header_version(api_key, version) >= 1 {
            skip_tagged_fields(&mut b);
        }
        (corr, b)
    }

    /// Encode `req`, send it, read and decode the response.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let corr = self.next_corr();
        self.send(R::KEY, version, corr, &encode(req, version));
        let (got, mut body) = self.recv(R::KEY, version);
        assert_eq!(got, corr, "correlation id mismatch");
        let resp = R::Response::decode(&mut body, version).expect("decode response");
        assert_eq!(
            body.remaining(),
            0,
            "trailing bytes in response to api {} v{version}",
            R::KEY
        );
        resp
    }

    /// Send without reading a response (acks=0 produce).
    pub fn send_only<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let corr = self.next_corr();
        self.send(R::KEY, version, corr, &encode(req, version));
        corr
    }

    /// Assert the broker closes this connection (EOF or reset) within 10 s,
    /// without sending any response bytes first.
    pub fn expect_closed(&mut self, what: &str) {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "{what}: expected the connection to close, got {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) => {}
            Err(e) => panic!(
                "{what}: expected the connection to close, got error {e} ({:?})",
                e.kind()
            ),
        }
    }
}

pub fn skip_tagged_fields(b: &mut Bytes) {
    let n = get_uvarint(b);
    for _ in 0..n {
        let _tag = get_uvarint(b);
        let len = get_uvarint(b) as usize;
        b.advance(len);
    }
}

/// An unsigned varint, advancing `b` past it.
pub fn get_uvarint(b: &mut impl Buf) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b.get_u8();
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_uvarint(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_i16(v: &mut Vec<u8>, x: i16) {
    v.put_i16(x)
}
pub fn put_i32(v: &mut Vec<u8>, x: i32) {
    v.put_i32(x)
}
