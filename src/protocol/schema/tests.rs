//! Tests proving the layout tables match what `kafka-protocol` decodes, and that
//! the walker refuses hostile bodies without panicking or allocating.
//!
//! The central check is a round trip: bodies generated from our tables must be
//! accepted by the walker, decoded by the crate, and re-encoded by the crate to
//! the identical bytes. Any field we got wrong (order, type, version range,
//! nullability, tag) breaks one of those three steps.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::tables::{Field, Ty, APIS};
use super::{check_request_body, is_flexible, request_versions, SchemaError};
use crate::protocol::share_group_offsets::DescribeShareGroupOffsetsRequest as OwnDescribeShareGroupOffsets;
use crate::protocol::streams::{
    StreamsGroupDescribeRequest, StreamsGroupHeartbeatRequest,
    StreamsGroupTopologyDescriptionUpdateRequest,
};
use crate::protocol::write_txn_markers::WriteTxnMarkersRequest as OwnWriteTxnMarkers;

/// Tiny deterministic PRNG (xorshift64*) so failures are reproducible without
/// extra dependencies.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Generates random valid bodies from our tables.
struct Gen<'r> {
    rng: &'r mut Rng,
    version: i16,
    flexible: bool,
}

impl Gen<'_> {
    /// Writes a length prefix; `None` is null.
    fn len(&mut self, out: &mut Vec<u8>, len: Option<usize>, wide: bool) {
        if self.flexible {
            put_uvarint(out, len.map_or(0, |n| n as u32 + 1));
        } else if wide {
            out.extend_from_slice(&len.map_or(-1, |n| n as i32).to_be_bytes());
        } else {
            out.extend_from_slice(&len.map_or(-1, |n| n as i16).to_be_bytes());
        }
    }

    fn value(&mut self, out: &mut Vec<u8>, ty: Ty, never_null: bool) {
        let null = !never_null && self.rng.chance(4);
        match ty {
            Ty::I8 => out.push(self.rng.next() as u8),
            Ty::I16 => out.extend_from_slice(&(self.rng.next() as i16).to_be_bytes()),
            Ty::I32 => out.extend_from_slice(&(self.rng.next() as i32).to_be_bytes()),
            Ty::I64 => out.extend_from_slice(&(self.rng.next() as i64).to_be_bytes()),
            // Finite values only, so float normalisation can't disturb the round trip.
            Ty::F64 => {
                let v = (self.rng.next() as i32) as f64 / 8.0;
                out.extend_from_slice(&v.to_be_bytes())
            }
            Ty::Bool => out.push(self.rng.below(2) as u8),
            Ty::Uuid => {
                for _ in 0..2 {
                    out.extend_from_slice(&self.rng.next().to_be_bytes());
                }
            }
            Ty::Str | Ty::NStr => {
                if null && matches!(ty, Ty::NStr) {
                    self.len(out, None, false);
                } else {
                    let n = self.rng.below(9) as usize;
                    self.len(out, Some(n), false);
                    for _ in 0..n {
                        out.push(b'a' + self.rng.below(26) as u8);
                    }
                }
            }
            Ty::Bytes | Ty::NBytes => {
                if null && matches!(ty, Ty::NBytes) {
                    self.len(out, None, true);
                } else {
                    let n = self.rng.below(9) as usize;
                    self.len(out, Some(n), true);
                    for _ in 0..n {
                        out.push(self.rng.next() as u8);
                    }
                }
            }
            Ty::Arr(elem) | Ty::NArr(elem) => {
                if null && matches!(ty, Ty::NArr(_)) {
                    self.len(out, None, true);
                } else {
                    let n = self.rng.below(4) as usize;
                    self.len(out, Some(n), true);
                    for _ in 0..n {
                        self.value(out, *elem, false);
                    }
                }
            }
            Ty::Struct(fields) => self.strukt(out, fields),
            Ty::OptStruct(fields) => {
                if null {
                    out.push(0xff);
                } else {
                    out.push(1);
                    self.strukt(out, fields);
                }
            }
        }
    }

    fn strukt(&mut self, out: &mut Vec<u8>, fields: &[Field]) {
        for field in fields {
            if field.tag.is_none() && field.present_in(self.version) {
                self.value(out, field.ty, false);
            }
        }
        if !self.flexible {
            return;
        }
        // Known tagged fields in ascending tag order (the crate writes them
        // that way), then unknown ones with tags far above any known tag.
        let mut known: Vec<&Field> = fields
            .iter()
            .filter(|f| f.tag.is_some() && f.present_in(self.version))
            .collect();
        known.sort_by_key(|f| f.tag);
        let mut sections: Vec<(u32, Vec<u8>)> = Vec::new();
        for field in known {
            if self.rng.chance(2) {
                let mut content = Vec::new();
                // The crate omits tagged fields equal to their default (null
                // for the nullable ones), so never generate null here.
                self.value(&mut content, field.ty, true);
                // Nor an empty array (a compact count of 0), the default of
                // a tagged array (BrokerHeartbeat's OfflineLogDirs).
                if matches!(field.ty, Ty::Arr(_)) && content == [1] {
                    continue;
                }
                sections.push((field.tag.unwrap(), content));
            }
        }
        let mut tag = 100;
        for _ in 0..self.rng.below(3) {
            tag += 1 + self.rng.below(50) as u32;
            let n = self.rng.below(5) as usize;
            sections.push((tag, (0..n).map(|_| self.rng.next() as u8).collect()));
        }
        put_uvarint(out, sections.len() as u32);
        for (tag, content) in sections {
            put_uvarint(out, tag);
            put_uvarint(out, content.len() as u32);
            out.extend_from_slice(&content);
        }
    }
}

fn generate(rng: &mut Rng, api_key: i16, version: i16) -> Vec<u8> {
    let api = super::tables::lookup(api_key).unwrap();
    let mut out = Vec::new();
    let mut g = Gen {
        rng,
        version,
        flexible: version >= api.flex,
    };
    g.strukt(&mut out, api.body);
    out
}

/// Every (api, version) the crate can decode: versions past it
/// (`versions::BEYOND_THE_CRATE`) have their own tests beside their handler.
fn all_versions() -> impl Iterator<Item = (i16, i16)> {
    APIS.iter().flat_map(|a| {
        let hi = crate::protocol::versions::BEYOND_THE_CRATE
            .iter()
            .find(|(k, _)| *k as i16 == a.key)
            .map_or(a.max, |(_, crate_max)| *crate_max);
        (a.min..=hi).map(move |v| (a.key, v))
    })
}

/// Bytes consumed by the crate's decode, and its re-encoding of the result.
type Reencoded = (usize, Vec<u8>);

/// Type-erased access to the crate's request type for an API key, so the tests
/// need no feature beyond `broker` + `client`.
struct Ops {
    /// Decodes; returns the bytes consumed.
    decode: fn(&[u8], i16) -> Result<usize, String>,
    /// Decodes, then re-encodes; returns the bytes consumed and the encoding.
    round_trip: fn(&[u8], i16) -> Result<Reencoded, String>,
    /// Encodes the crate's default value.
    encode_default: fn(i16) -> Vec<u8>,
}

fn decode_as<T: Decodable>(body: &[u8], version: i16) -> Result<(T, usize), String> {
    let mut bytes = Bytes::copy_from_slice(body);
    let req = T::decode(&mut bytes, version).map_err(|e| format!("{e:#}"))?;
    Ok((req, body.len() - bytes.len()))
}

fn encode_as<T: Encodable>(req: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).expect("crate encodes");
    buf.to_vec()
}

fn ops<T: Decodable + Encodable + Default>() -> Ops {
    Ops {
        decode: |body, version| decode_as::<T>(body, version).map(|(_, used)| used),
        round_trip: |body, version| {
            decode_as::<T>(body, version).map(|(req, used)| (used, encode_as(&req, version)))
        },
        encode_default: |version| encode_as(&T::default(), version),
    }
}

/// kastle's own request codecs (versions past the crate), as the tests
/// drive them: read with the bytes used, and encoded again.
trait OwnCodec: Sized + Default + PartialEq {
    fn read_at(body: &[u8], version: i16) -> Result<(Self, usize), String>;
    fn encode_at(&self, version: i16) -> Vec<u8>;
}

impl OwnCodec for OwnWriteTxnMarkers {
    fn read_at(body: &[u8], version: i16) -> Result<(Self, usize), String> {
        Self::read(body, version).map_err(|e| e.to_string())
    }
    fn encode_at(&self, version: i16) -> Vec<u8> {
        self.encode(version)
    }
}

/// The own codecs of a single layout (the version is not needed).
macro_rules! own_codec_one_layout {
    ($($t:ty),*) => {$(
        impl OwnCodec for $t {
            fn read_at(body: &[u8], _: i16) -> Result<(Self, usize), String> {
                Self::read(body).map_err(|e| e.to_string())
            }
            fn encode_at(&self, _: i16) -> Vec<u8> {
                self.encode()
            }
        }
    )*};
}
impl OwnCodec for StreamsGroupDescribeRequest {
    fn read_at(body: &[u8], version: i16) -> Result<(Self, usize), String> {
        Self::read(body, version).map_err(|e| e.to_string())
    }
    fn encode_at(&self, version: i16) -> Vec<u8> {
        self.encode(version)
    }
}

own_codec_one_layout!(
    OwnDescribeShareGroupOffsets,
    StreamsGroupHeartbeatRequest,
    StreamsGroupTopologyDescriptionUpdateRequest
);

/// `Ops` for an own codec. Its reader drops unknown tagged fields, so the
/// generated bytes cannot come back as they were: the request must survive
/// its own encoding instead (the generated body then stands for a match).
fn own_ops<T: OwnCodec>() -> Ops {
    Ops {
        decode: |body, version| T::read_at(body, version).map(|(_, used)| used),
        round_trip: |body, version| {
            let (req, used) = T::read_at(body, version)?;
            let encoded = req.encode_at(version);
            let (again, _) = T::read_at(&encoded, version)?;
            Ok((used, if again == req { body.to_vec() } else { encoded }))
        },
        encode_default: |version| T::default().encode_at(version),
    }
}

fn crate_ops(api_key: i16) -> Ops {
    match api_key {
        0 => ops::<ProduceRequest>(),
        1 => ops::<FetchRequest>(),
        2 => ops::<ListOffsetsRequest>(),
        3 => ops::<MetadataRequest>(),
        8 => ops::<OffsetCommitRequest>(),
        9 => ops::<OffsetFetchRequest>(),
        10 => ops::<FindCoordinatorRequest>(),
        11 => ops::<JoinGroupRequest>(),
        12 => ops::<HeartbeatRequest>(),
        13 => ops::<LeaveGroupRequest>(),
        14 => ops::<SyncGroupRequest>(),
        15 => ops::<DescribeGroupsRequest>(),
        16 => ops::<ListGroupsRequest>(),
        17 => ops::<SaslHandshakeRequest>(),
        18 => ops::<ApiVersionsRequest>(),
        19 => ops::<CreateTopicsRequest>(),
        20 => ops::<DeleteTopicsRequest>(),
        21 => ops::<DeleteRecordsRequest>(),
        22 => ops::<InitProducerIdRequest>(),
        23 => ops::<OffsetForLeaderEpochRequest>(),
        24 => ops::<AddPartitionsToTxnRequest>(),
        25 => ops::<AddOffsetsToTxnRequest>(),
        26 => ops::<EndTxnRequest>(),
        27 => own_ops::<OwnWriteTxnMarkers>(),
        28 => ops::<TxnOffsetCommitRequest>(),
        29 => ops::<DescribeAclsRequest>(),
        30 => ops::<CreateAclsRequest>(),
        31 => ops::<DeleteAclsRequest>(),
        32 => ops::<DescribeConfigsRequest>(),
        33 => ops::<AlterConfigsRequest>(),
        35 => ops::<DescribeLogDirsRequest>(),
        36 => ops::<SaslAuthenticateRequest>(),
        37 => ops::<CreatePartitionsRequest>(),
        42 => ops::<DeleteGroupsRequest>(),
        43 => ops::<ElectLeadersRequest>(),
        44 => ops::<IncrementalAlterConfigsRequest>(),
        45 => ops::<AlterPartitionReassignmentsRequest>(),
        46 => ops::<ListPartitionReassignmentsRequest>(),
        47 => ops::<OffsetDeleteRequest>(),
        48 => ops::<DescribeClientQuotasRequest>(),
        49 => ops::<AlterClientQuotasRequest>(),
        50 => ops::<DescribeUserScramCredentialsRequest>(),
        51 => ops::<AlterUserScramCredentialsRequest>(),
        55 => ops::<DescribeQuorumRequest>(),
        57 => ops::<UpdateFeaturesRequest>(),
        60 => ops::<DescribeClusterRequest>(),
        61 => ops::<DescribeProducersRequest>(),
        65 => ops::<DescribeTransactionsRequest>(),
        66 => ops::<ListTransactionsRequest>(),
        68 => ops::<ConsumerGroupHeartbeatRequest>(),
        69 => ops::<ConsumerGroupDescribeRequest>(),
        76 => ops::<ShareGroupHeartbeatRequest>(),
        77 => ops::<ShareGroupDescribeRequest>(),
        78 => ops::<ShareFetchRequest>(),
        79 => ops::<ShareAcknowledgeRequest>(),
        90 => own_ops::<OwnDescribeShareGroupOffsets>(),
        91 => ops::<AlterShareGroupOffsetsRequest>(),
        92 => ops::<DeleteShareGroupOffsetsRequest>(),
        71 => ops::<GetTelemetrySubscriptionsRequest>(),
        72 => ops::<PushTelemetryRequest>(),
        74 => ops::<ListConfigResourcesRequest>(),
        75 => ops::<DescribeTopicPartitionsRequest>(),
        56 => ops::<AlterPartitionRequest>(),
        58 => ops::<EnvelopeRequest>(),
        62 => ops::<BrokerRegistrationRequest>(),
        63 => ops::<BrokerHeartbeatRequest>(),
        67 => ops::<AllocateProducerIdsRequest>(),
        88 => own_ops::<StreamsGroupHeartbeatRequest>(),
        89 => own_ops::<StreamsGroupDescribeRequest>(),
        93 => own_ops::<StreamsGroupTopologyDescriptionUpdateRequest>(),
        other => panic!("no crate type for api {other}"),
    }
}

const ROUND_TRIPS: usize = 300;

#[test]
fn every_required_api_is_covered() {
    let required = [
        0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
        28, 29, 30, 31, 32, 33, 35, 36, 37, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 55, 57, 60, 61,
        65, 66, 68, 69, 71, 72, 74, 75, 76, 77, 78, 79, 88, 89, 90, 91, 92,
        93, // the controller listener's own:
        56, 58, 62, 63, 67,
    ];
    for key in required {
        assert!(request_versions(key).is_some(), "api {key} missing");
    }
    assert_eq!(APIS.len(), required.len());
}

#[test]
fn version_ranges_match_the_crate() {
    use kafka_protocol::protocol::Message;
    fn range<M: Message>() -> (i16, i16) {
        (M::VERSIONS.min, M::VERSIONS.max)
    }
    assert_eq!(request_versions(0), Some(range::<ProduceRequest>()));
    assert_eq!(request_versions(1), Some(range::<FetchRequest>()));
    // ListOffsets v11 is past the crate (versions::BEYOND_THE_CRATE)
    assert_eq!(range::<ListOffsetsRequest>(), (1, 10));
    assert_eq!(request_versions(2), Some((1, 11)));
    assert_eq!(request_versions(3), Some(range::<MetadataRequest>()));
    // ApiVersions v5 is past the crate (versions::BEYOND_THE_CRATE)
    assert_eq!(range::<ApiVersionsRequest>(), (0, 4));
    assert_eq!(request_versions(18), Some((0, 5)));
    assert_eq!(request_versions(19), Some(range::<CreateTopicsRequest>()));
    assert_eq!(request_versions(20), Some(range::<DeleteTopicsRequest>()));
    for key in APIS.iter().map(|a| a.key) {
        let (lo, hi) = request_versions(key).unwrap();
        // kastle's own codecs (streams groups) are flexible from version 0.
        let flex_header =
            |v| ApiKey::try_from(key).map_or(v >= 0, |k| k.request_header_version(v) >= 2);
        for v in lo..=hi {
            // A flexible body always comes with a flexible (v2) request header.
            assert_eq!(is_flexible(key, v), Some(flex_header(v)), "api {key} v{v}");
        }
        assert_eq!(is_flexible(key, hi + 1), None);
    }
    assert_eq!(request_versions(34), None);
    assert_eq!(is_flexible(34, 0), None);
}

/// Whether every field, nested ones too, is in both versions or in neither.
fn same_layout(fields: &[Field], a: i16, b: i16) -> bool {
    fn same_ty(ty: Ty, a: i16, b: i16) -> bool {
        match ty {
            Ty::Arr(t) | Ty::NArr(t) => same_ty(*t, a, b),
            Ty::Struct(fs) | Ty::OptStruct(fs) => same_layout(fs, a, b),
            _ => true,
        }
    }
    fields
        .iter()
        .all(|f| f.present_in(a) == f.present_in(b) && same_ty(f.ty, a, b))
}

/// The versions `handlers::decode` reads as an older one the crate has
/// (`versions::SAME_REQUEST_AS`) have that version's layout: the same
/// fields, the same encodings, and the crate reads and rewrites bodies
/// generated at the newer version byte for byte.
#[test]
fn versions_read_as_an_older_one_have_its_layout() {
    for (key, same) in crate::protocol::versions::SAME_REQUEST_AS {
        let key = *key as i16;
        let api = super::tables::lookup(key).unwrap();
        assert!(api.max > *same, "api {key}: nothing past v{same}");
        for v in same + 1..=api.max {
            assert!(same_layout(api.body, v, *same), "api {key} v{v}");
            assert_eq!(
                is_flexible(key, v),
                is_flexible(key, *same),
                "api {key} v{v}"
            );
            let mut rng = Rng::new(((key as u64) << 16) | v as u64);
            for _ in 0..50 {
                let body = generate(&mut rng, key, v);
                assert_eq!(check_request_body(key, v, &body), Ok(body.len()));
                let (used, encoded) = (crate_ops(key).round_trip)(&body, *same)
                    .unwrap_or_else(|e| panic!("api {key} v{v} as v{same}: {e}"));
                assert_eq!((used, encoded), (body.len(), body), "api {key} v{v}");
            }
        }
    }
    // A layout that changed is told apart: Produce v13 names topics by id.
    let produce = super::tables::lookup(0).unwrap();
    assert!(!same_layout(produce.body, 13, 12));
    assert!(same_layout(produce.body, 12, 11));
}

#[test]
fn round_trip_against_crate_every_api_and_version() {
    let mut checked = 0;
    for (key, version) in all_versions() {
        let mut rng = Rng::new(((key as u64) << 16) | version as u64);
        for i in 0..ROUND_TRIPS {
            let body = generate(&mut rng, key, version);
            let ctx = || format!("api {key} v{version} iteration {i} body {body:02x?}");
            assert_eq!(
                check_request_body(key, version, &body),
                Ok(body.len()),
                "{}",
                ctx()
            );
            let (used, encoded) = (crate_ops(key).round_trip)(&body, version)
                .unwrap_or_else(|e| panic!("crate decode failed: {e} {}", ctx()));
            assert_eq!(used, body.len(), "crate consumed differently: {}", ctx());
            assert_eq!(encoded, body, "re-encode differs: {}", ctx());
            checked += 1;
        }
    }
    assert!(checked > 40_000);
}

#[test]
fn crate_defaults_are_accepted() {
    for (key, version) in all_versions() {
        let body = (crate_ops(key).encode_default)(version);
        assert_eq!(
            check_request_body(key, version, &body),
            Ok(body.len()),
            "api {key} v{version} {body:02x?}"
        );
    }
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut rng = Rng::new(7);
    for (key, version) in all_versions() {
        let mut body = generate(&mut rng, key, version);
        let len = body.len();
        body.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(check_request_body(key, version, &body), Ok(len));
    }
}

fn assert_too_large(res: Result<usize, SchemaError>, field: &str, claimed: u64) {
    match res {
        Err(SchemaError::LengthTooLarge {
            field: f,
            claimed: c,
            ..
        }) => {
            assert_eq!(f, field);
            assert_eq!(c, claimed);
        }
        other => panic!("expected LengthTooLarge for {field}, got {other:?}"),
    }
}

#[test]
fn metadata_huge_topic_count_is_refused_quickly() {
    let start = Instant::now();
    for version in 0..=13 {
        let body: Vec<u8> = if version >= 9 {
            // uvarint 0x80000000 = count 2^31 - 1
            vec![0x80, 0x80, 0x80, 0x80, 0x08]
        } else {
            i32::MAX.to_be_bytes().to_vec()
        };
        assert_too_large(
            check_request_body(3, version, &body),
            "topics",
            i32::MAX as u64,
        );
    }
    assert!(start.elapsed() < Duration::from_millis(100));
    let msg = check_request_body(3, 1, &i32::MAX.to_be_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("topics") && msg.contains("2147483647"),
        "{msg}"
    );
}

#[test]
fn produce_huge_nested_partition_count_is_refused() {
    for version in [3i16, 8] {
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id = null
        body.extend_from_slice(&1i16.to_be_bytes()); // acks
        body.extend_from_slice(&1000i32.to_be_bytes()); // timeout
        body.extend_from_slice(&1i32.to_be_bytes()); // one topic
        body.extend_from_slice(&1i16.to_be_bytes());
        body.push(b't');
        body.extend_from_slice(&i32::MAX.to_be_bytes()); // partitions
        body.extend_from_slice(&[0; 4]);
        let err = check_request_body(0, version, &body).unwrap_err();
        assert_eq!(
            err,
            SchemaError::LengthTooLarge {
                field: "topic_data[].partition_data".into(),
                claimed: i32::MAX as u64,
                remaining: 4,
            }
        );
        assert_eq!(
            err.to_string(),
            "topic_data[].partition_data: length or element count 2147483647 but only 4 bytes remain"
        );
    }
}

#[test]
fn compact_array_with_max_varint_is_refused() {
    // 0xFFFFFFFF as uvarint: count 2^32 - 2.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
    assert_too_large(check_request_body(3, 12, &body), "topics", 0xffff_fffe);
    // DescribeGroups v5: compact array of compact strings.
    assert_too_large(check_request_body(15, 5, &body), "groups", 0xffff_fffe);
}

#[test]
fn string_longer_than_remaining_is_refused() {
    // SaslHandshake v0: mechanism string claims 32767 bytes, 2 remain.
    let body = [0x7f, 0xff, b'a', b'b'];
    assert_eq!(
        check_request_body(17, 0, &body),
        Err(SchemaError::LengthTooLarge {
            field: "mechanism".into(),
            claimed: 32767,
            remaining: 2
        })
    );
    // A negative length other than null, and null where not nullable.
    assert!(matches!(
        check_request_body(17, 0, &[0xff, 0xfe]),
        Err(SchemaError::NegativeLength { claimed: -2, .. })
    ));
    assert!(matches!(
        check_request_body(17, 0, &[0xff, 0xff]),
        Err(SchemaError::NegativeLength { claimed: -1, .. })
    ));
    // Bytes (SaslAuthenticate v0) use an int32 length.
    assert_too_large(
        check_request_body(36, 0, &[0x7f, 0xff, 0xff, 0xff, 1, 2]),
        "auth_bytes",
        i32::MAX as u64,
    );
}

#[test]
fn compact_strings_past_32767_bytes_are_refused_as_kafka_does() {
    // FindCoordinator v4 (flexible): key_type, then a compact array of one
    // compact string of 32768 bytes.
    let key_of = |len: usize| {
        let mut body = vec![0u8, 2];
        put_uvarint(&mut body, len as u32 + 1);
        body.extend(std::iter::repeat_n(b'g', len));
        body.push(0); // tagged fields
        body
    };
    assert!(check_request_body(10, 4, &key_of(32767)).is_ok());
    assert_eq!(
        check_request_body(10, 4, &key_of(32768)),
        Err(SchemaError::StringTooLong {
            field: "coordinator_keys".into(),
            length: 32768
        })
    );
    // Bytes are not strings: a 40,000-byte compact BYTES field is fine
    // (SaslAuthenticate v2).
    let mut auth = Vec::new();
    put_uvarint(&mut auth, 40_001);
    auth.extend(std::iter::repeat_n(0u8, 40_000));
    auth.push(0);
    assert!(check_request_body(36, 2, &auth).is_ok());
}

#[test]
fn overlong_varint_is_refused() {
    // ApiVersions v3: client_software_name length as a 6-byte varint.
    let body = [0x81, 0x80, 0x80, 0x80, 0x80, 0x00, b'a', 0x01, 0x00];
    assert_eq!(
        check_request_body(18, 3, &body),
        Err(SchemaError::BadVarint {
            field: "client_software_name".into()
        })
    );
    // A 5-byte varint is fine as long as it terminates.
    let body = [0x82, 0x80, 0x80, 0x80, 0x00, b'a', 0x01, 0x00];
    assert_eq!(check_request_body(18, 3, &body), Ok(body.len()));
}

#[test]
fn unknown_api_and_version() {
    assert_eq!(
        check_request_body(999, 0, &[]),
        Err(SchemaError::UnknownApi(999))
    );
    assert_eq!(
        check_request_body(18, 6, &[]),
        Err(SchemaError::UnsupportedVersion {
            api_key: 18,
            version: 6
        })
    );
    assert_eq!(
        check_request_body(18, -1, &[]),
        Err(SchemaError::UnsupportedVersion {
            api_key: 18,
            version: -1
        })
    );
}

#[test]
fn known_tagged_field_content_is_walked_and_sized() {
    // Fetch v15 body with every regular field empty and a tagged replica_state.
    let head = |out: &mut Vec<u8>| {
        out.extend_from_slice(&[0; 4]); // max_wait_ms
        out.extend_from_slice(&[0; 4]); // min_bytes
        out.extend_from_slice(&[0; 4]); // max_bytes
        out.push(0); // isolation_level
        out.extend_from_slice(&[0; 8]); // session id + epoch
        out.push(1); // topics: empty
        out.push(1); // forgotten topics: empty
        out.push(1); // rack_id: ""
    };
    // Tag 0 (cluster_id) claims size 1, but its content is a compact string
    // claiming a huge length: must be refused as an inner length problem.
    let mut body = Vec::new();
    head(&mut body);
    body.extend_from_slice(&[1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        check_request_body(1, 15, &body),
        Err(SchemaError::LengthTooLarge { .. })
    ));
    // A correct cluster_id whose declared size disagrees with its content.
    let mut body = Vec::new();
    head(&mut body);
    body.extend_from_slice(&[1, 0, 3, 2, b'c', 0]);
    assert_eq!(
        check_request_body(1, 15, &body),
        Err(SchemaError::TaggedFieldSize {
            field: "cluster_id".into(),
            declared: 3,
            actual: 2
        })
    );
    // The same with a matching size is fine, and the crate agrees.
    let mut body = Vec::new();
    head(&mut body);
    body.extend_from_slice(&[1, 0, 2, 2, b'c']);
    assert_eq!(check_request_body(1, 15, &body), Ok(body.len()));
    assert_eq!((crate_ops(1).decode)(&body, 15), Ok(body.len()));
}

#[test]
fn optional_struct_marker() {
    // DescribeTopicPartitions v0: no topics, limit, then the cursor marker.
    let mut body = vec![1];
    body.extend_from_slice(&[0, 0, 0, 1]);
    for (marker, ok) in [(0xffu8, true), (0, false), (2, false)] {
        let mut b = body.clone();
        b.push(marker);
        b.push(0); // tagged fields
        assert_eq!(check_request_body(75, 0, &b).is_ok(), ok, "marker {marker}");
    }
}

#[test]
fn every_truncation_of_valid_bodies_is_refused() {
    let mut rng = Rng::new(42);
    for (key, version) in all_versions() {
        for _ in 0..20 {
            let body = generate(&mut rng, key, version);
            // The walk is deterministic, so a strict prefix of a body that
            // needs all its bytes can never be accepted.
            for cut in 0..body.len() {
                let res = check_request_body(key, version, &body[..cut]);
                assert!(res.is_err(), "api {key} v{version} cut {cut}: {res:?}");
            }
        }
    }
}

#[test]
fn random_byte_soup_never_panics() {
    let mut rng = Rng::new(1234);
    let start = Instant::now();
    let mut accepted = 0;
    for i in 0..200_000 {
        let api = &APIS[rng.below(APIS.len() as u64) as usize];
        let version = api.min + rng.below((api.max - api.min + 1) as u64) as i16;
        let len = rng.below(64) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Bias some inputs towards huge lengths and counts.
        if i % 3 == 0 && len >= 4 {
            let at = rng.below(len as u64 - 3) as usize;
            body[at..at + 4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        }
        if let Ok(n) = check_request_body(api.key, version, &body) {
            assert!(n <= body.len());
            accepted += 1;
        }
    }
    assert!(accepted > 0);
    // Generous bound: the walk is linear in the body, never in claimed sizes.
    assert!(start.elapsed() < Duration::from_secs(30));
}

/// Damages a valid body in one of several ways.
fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    let n = 1 + rng.below(3);
    for _ in 0..n {
        if body.is_empty() {
            body.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(body.len() as u64) as usize;
        match rng.below(6) {
            0 => body[at] = rng.next() as u8,
            1 => body[at] ^= 1 << rng.below(8),
            2 => body[at] = 0xff,
            3 => body.insert(at, rng.next() as u8),
            4 => {
                body.remove(at);
            }
            _ => {
                let end = (at + 4).min(body.len());
                for b in &mut body[at..end] {
                    *b = 0x7f;
                }
            }
        }
    }
}

#[test]
fn crate_is_safe_on_anything_the_walker_accepts() {
    let mut rng = Rng::new(99);
    let mut accepted = 0;
    let mut both = 0;
    for (key, version) in all_versions() {
        for _ in 0..300 {
            let mut body = generate(&mut rng, key, version);
            mutate(&mut rng, &mut body);
            if let Ok(consumed) = check_request_body(key, version, &body) {
                accepted += 1;
                // Must not abort; it may still refuse (bad UTF-8, bad tag...).
                if let Ok(used) = (crate_ops(key).decode)(&body, version) {
                    // When both succeed they must agree on the message's extent,
                    // otherwise the walker validated different bytes than the
                    // crate read.
                    assert_eq!(used, consumed, "api {key} v{version} {body:02x?}");
                    both += 1;
                }
            }
        }
    }
    assert!(
        accepted > 1000 && both > 1000,
        "accepted {accepted} both {both}"
    );
}
