//! Entry points of the fuzz targets (`fuzz/`, cargo-fuzz): each takes
//! arbitrary bytes to one family of kastle's input parsers, through the
//! same functions the broker calls on network or disk input. Nothing here
//! parses by itself; a target that finds a panic, an abort or a hang has
//! found it in the code below. Not a stable API.

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::coordinator::group::loader::GroupLoader;
use crate::coordinator::txn::TransactionCoordinator;
use crate::protocol::{parse_request_header, versions};
use crate::record::batch::{self, compute_crc, CRC_OFFSET, LOG_OVERHEAD};
use crate::record::compression::decompression_budget;
use crate::record::validator::{self, TimestampType, ValidationConfig};
use crate::record::{control::EndTransactionMarker, records};

/// Decodes `body` as the request type of `key`, as `handlers::decode`
/// does for it (schema walker, then the crate's decoder). `None` for a
/// key without a decoder here.
fn decode_body(
    header: &crate::protocol::RequestHeader,
    key: ApiKey,
    body: Bytes,
) -> Option<Result<(), String>> {
    macro_rules! decoders {
        ($($k:ident => $t:ty),* $(,)?) => {
            match key {
                $(ApiKey::$k => Some(crate::handlers::decode::<$t>(header, body).map(|r| after_decode(&r))),)*
                _ => None,
            }
        };
    }
    decoders! {
        Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest, ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest, DeleteTopics => DeleteTopicsRequest,
        InitProducerId => InitProducerIdRequest, DescribeProducers => DescribeProducersRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest, AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest, FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest, SyncGroup => SyncGroupRequest, Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest, OffsetCommit => OffsetCommitRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest, OffsetFetch => OffsetFetchRequest,
        ListGroups => ListGroupsRequest, DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest, OffsetDelete => OffsetDeleteRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        ShareGroupHeartbeat => ShareGroupHeartbeatRequest,
        ShareGroupDescribe => ShareGroupDescribeRequest, ShareFetch => ShareFetchRequest,
        ShareAcknowledge => ShareAcknowledgeRequest,
        AlterShareGroupOffsets => AlterShareGroupOffsetsRequest,
        DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest,
        DescribeConfigs => DescribeConfigsRequest, AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        CreatePartitions => CreatePartitionsRequest, DeleteRecords => DeleteRecordsRequest,
        DescribeCluster => DescribeClusterRequest, DescribeQuorum => DescribeQuorumRequest,
        UpdateFeatures => UpdateFeaturesRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
        ListConfigResources => ListConfigResourcesRequest, DescribeLogDirs => DescribeLogDirsRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, ElectLeaders => ElectLeadersRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        CreateAcls => CreateAclsRequest, DeleteAcls => DeleteAclsRequest,
        DescribeAcls => DescribeAclsRequest, DescribeClientQuotas => DescribeClientQuotasRequest,
        AlterClientQuotas => AlterClientQuotasRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        SaslHandshake => SaslHandshakeRequest, SaslAuthenticate => SaslAuthenticateRequest,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
        PushTelemetry => PushTelemetryRequest,
    }
}

/// Decodes one request body (at a version) of an API served with kastle's
/// own codec.
type OwnCodecDecoder = fn(&[u8], i16) -> Result<(), String>;

/// The decoder of an API (or of a version of it) served with kastle's own
/// codec.
fn own_codec_decoder(api_key: i16, api_version: i16) -> Option<OwnCodecDecoder> {
    use crate::protocol::offsets_by_id::{self, OFFSETS_BY_ID_SINCE, TXN_OFFSETS_BY_ID_SINCE};
    use crate::protocol::streams::{
        StreamsGroupDescribeRequest, StreamsGroupHeartbeatRequest,
        StreamsGroupTopologyDescriptionUpdateRequest, STREAMS_GROUP_DESCRIBE,
        STREAMS_GROUP_HEARTBEAT, STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE,
    };
    use crate::protocol::{share_group_offsets, write_txn_markers};
    // The offset APIs' versions naming topics by id (past the crate).
    if api_key == 28 && api_version >= TXN_OFFSETS_BY_ID_SINCE {
        return Some(|b, _| {
            offsets_by_id::read_txn_offset_commit(b)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
    if api_version >= OFFSETS_BY_ID_SINCE {
        match api_key {
            8 => {
                return Some(|b, _| {
                    offsets_by_id::read_offset_commit(b)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }
            9 => {
                return Some(|b, _| {
                    offsets_by_id::read_offset_fetch(b)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }
            _ => {}
        }
    }
    // ShareFetch and ShareAcknowledge v2 (past the crate).
    if api_version >= crate::protocol::share_v2::SHARE_V2 {
        use crate::protocol::share_v2;
        match api_key {
            78 => return Some(|b, _| share_v2::read_share_fetch(b).map(|_| ())),
            79 => return Some(|b, _| share_v2::read_share_acknowledge(b).map(|_| ())),
            _ => {}
        }
    }
    match api_key {
        STREAMS_GROUP_HEARTBEAT => Some(|b, _| {
            StreamsGroupHeartbeatRequest::decode(b)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        STREAMS_GROUP_DESCRIBE => Some(|b, v| {
            StreamsGroupDescribeRequest::decode(b, v)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE => Some(|b, _| {
            StreamsGroupTopologyDescriptionUpdateRequest::decode(b)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        share_group_offsets::DESCRIBE_SHARE_GROUP_OFFSETS => Some(|b, _| {
            share_group_offsets::DescribeShareGroupOffsetsRequest::decode(b)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        write_txn_markers::WRITE_TXN_MARKERS => Some(|b, v| {
            write_txn_markers::WriteTxnMarkersRequest::decode(b, v)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        _ => None,
    }
}

/// What a decoded request's handler parses next from its bytes: a
/// Produce request's record batches go through produce validation.
fn after_decode<T: 'static>(request: &T) {
    let any: &dyn std::any::Any = request;
    if let Some(p) = any.downcast_ref::<ProduceRequest>() {
        for r in p
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .filter_map(|p| p.records.as_ref())
        {
            let _ = validator::validate_produce_records(r, 0, &ValidationConfig::default());
        }
    }
}

/// One request frame (without its 4-byte size prefix) as a broker
/// listener's dispatch reads it: the header, the version check, the body
/// decoded through the schema walker. `Err` is what closes the connection.
pub fn request_frame(frame: &[u8]) -> Result<(), String> {
    let frame = Bytes::copy_from_slice(frame);
    let header = parse_request_header(&frame).map_err(|e| e.to_string())?;
    if !versions::is_supported(header.api_key, header.api_version) {
        return Err(format!(
            "unsupported {} v{}",
            header.api_key, header.api_version
        ));
    }
    let body = frame.slice(header.len..);
    // kastle's own codecs (KIP-1071 streams groups, versions the crate
    // lacks), walker first as in their handlers.
    if let Some(decode) = own_codec_decoder(header.api_key, header.api_version) {
        crate::protocol::schema::check_request_body(header.api_key, header.api_version, &body)
            .map_err(|e| e.to_string())?;
        return decode(&body, header.api_version);
    }
    let key = ApiKey::try_from(header.api_key).map_err(|_| "unknown api key".to_string())?;
    decode_body(&header, key, body).unwrap_or_else(|| Err(format!("no decoder for {key:?}")))
}

/// One request frame as a controller listener reads it
/// (`ControllerApis::handle`): the private raft and metadata-fetch APIs,
/// or one of its Kafka APIs at a version the crate decodes, its body vetted
/// (`controller_apis::vet_body`) and decoded; an Envelope's embedded
/// request the same way.
pub fn controller_frame(frame: &[u8]) -> Result<(), String> {
    use crate::clients::private_apis::{MetadataFetchRequest, METADATA_FETCH_KEY, RAFT_RPC_KEY};
    use crate::handlers::controller_apis::{vet_body, CONTROLLER_APIS, FORWARDABLE_APIS};
    use kafka_protocol::protocol::Decodable;

    let frame = Bytes::copy_from_slice(frame);
    let header = parse_request_header(&frame).map_err(|e| e.to_string())?;
    let mut body = frame.slice(header.len..);
    match header.api_key {
        RAFT_RPC_KEY => {
            return serde_json::from_slice::<crate::raft::network::RaftRpc>(&body)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        METADATA_FETCH_KEY => return MetadataFetchRequest::decode(&body).map(|_| ()),
        _ => {}
    }
    let api = ApiKey::try_from(header.api_key).map_err(|_| "unknown api key".to_string())?;
    let range = api.valid_versions();
    let version = header.api_version;
    if !CONTROLLER_APIS.contains(&api) || version < range.min || version > range.max {
        return Err("not served".into());
    }
    if api == ApiKey::ApiVersions {
        return Ok(());
    }
    vet_body(api, version, &body).map_err(|e| e.to_string())?;
    if api != ApiKey::Envelope {
        return decode_controller_body(api, version, body);
    }
    let envelope = EnvelopeRequest::decode(&mut body, version).map_err(|e| e.to_string())?;
    let _ = envelope
        .request_principal
        .as_deref()
        .map(crate::handlers::envelope::deserialize_principal);
    let _ = crate::handlers::envelope::parse_client_address(&envelope.client_host_address);
    let data = envelope.request_data;
    let inner = parse_request_header(&data).map_err(|e| e.to_string())?;
    let api = ApiKey::try_from(inner.api_key).map_err(|_| "unknown api key".to_string())?;
    let range = api.valid_versions();
    if !FORWARDABLE_APIS.contains(&api)
        || inner.api_version < range.min
        || inner.api_version > range.max
    {
        return Err("not forwardable".into());
    }
    let body = data.slice(inner.len..);
    vet_body(api, inner.api_version, &body).map_err(|e| e.to_string())?;
    decode_controller_body(api, inner.api_version, body)
}

/// The crate's decoder of a controller listener's API (`dispatch`).
fn decode_controller_body(api: ApiKey, version: i16, mut body: Bytes) -> Result<(), String> {
    use kafka_protocol::protocol::Decodable;
    macro_rules! decoders {
        ($($k:ident => $t:ty),* $(,)?) => {
            match api {
                $(ApiKey::$k => <$t>::decode(&mut body, version).map(|_| ()).map_err(|e| e.to_string()),)*
                _ => Err(format!("no decoder for {api:?}")),
            }
        };
    }
    decoders! {
        BrokerRegistration => BrokerRegistrationRequest, BrokerHeartbeat => BrokerHeartbeatRequest,
        AlterPartition => AlterPartitionRequest, AllocateProducerIds => AllocateProducerIdsRequest,
        CreateTopics => CreateTopicsRequest, DeleteTopics => DeleteTopicsRequest,
        CreatePartitions => CreatePartitionsRequest, ElectLeaders => ElectLeadersRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        AlterClientQuotas => AlterClientQuotasRequest, CreateAcls => CreateAclsRequest,
        DeleteAcls => DeleteAclsRequest, AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeQuorum => DescribeQuorumRequest, DescribeCluster => DescribeClusterRequest,
        UpdateFeatures => UpdateFeaturesRequest,
    }
}

/// Whether [`request_frame`] has a decoder for every API the broker
/// serves (checked by a unit test, so a new API is not left unfuzzed).
pub fn every_supported_api_has_a_decoder() -> Result<(), String> {
    for s in versions::SUPPORTED {
        let header = crate::protocol::RequestHeader {
            api_key: s.key as i16,
            api_version: s.max,
            correlation_id: 0,
            client_id: None,
            len: 0,
        };
        if decode_body(&header, s.key, Bytes::new()).is_none() {
            return Err(format!("no decoder for {:?}", s.key));
        }
    }
    for (key, _, hi) in versions::SUPPORTED_OWN_CODEC {
        if own_codec_decoder(*key, *hi).is_none() {
            return Err(format!("no decoder for api {key}"));
        }
    }

    use crate::handlers::controller_apis::CONTROLLER_APIS;
    for api in CONTROLLER_APIS
        .iter()
        .filter(|a| **a != ApiKey::ApiVersions && **a != ApiKey::Envelope)
    {
        if let Err(e) = decode_controller_body(*api, 0, Bytes::new()) {
            if e.starts_with("no decoder") {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Record batches as produced (`data[1..]`), validated under a topic
/// config chosen by `data[0]`, then re-encoded to another codec; also
/// read as a follower or the log's own readers read stored batches. Bit 7
/// of `data[0]` rewrites each framed batch's CRC first, so the fuzzer
/// reaches the checks behind it.
pub fn record_batches(data: &[u8]) {
    const STORED_READER_BUDGET: usize = 1 << 20;
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if flags & 0x80 != 0 {
        fix_crcs(&mut buf);
    }
    let cfg = ValidationConfig {
        max_message_bytes: 1 << 16,
        timestamp_type: if flags & 1 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        timestamp_before_max_ms: if flags & 2 != 0 { 1000 } else { i64::MAX },
        timestamp_after_max_ms: 3_600_000,
        compacted: flags & 4 != 0,
        single_batch: flags & 8 != 0,
    };
    let now = 1_700_000_000_000;
    if let Ok(v) = validator::validate_produce_records(&buf, now, &cfg) {
        let target = (flags >> 4) & 0x7;
        for b in &v.batches {
            let whole = &buf[b.position..b.position + b.header.total_size()];
            let _ = validator::recompress_batch(whole, target, decompression_budget(1 << 16));
        }
    }
    // The readers of stored batches: iteration, records, timestamps, markers.
    // Their budget is a parameter; 1 MiB reaches the same over-budget paths
    // as the broker's 16 to 256 MiB without spending most of the campaign
    // expanding a few hundred bytes of zstd (137 exec/s in the 2026-12-04 run).
    let budget = STORED_READER_BUDGET;
    for (at, h) in batch::iter_batches(&buf) {
        let whole = &buf[at..at + h.total_size()];
        let _ = batch::verify_crc(whole);
        if h.is_control() {
            let _ = EndTransactionMarker::from_batch(whole);
        }
        if let Ok(section) = batch::batch_records(whole, budget) {
            for r in records(&section, h.records_count) {
                let Ok(r) = r else { break };
                for _ in r.headers() {}
            }
        }
        if let Ok(batch::RecordTimestamps::Records(ts)) =
            batch::record_timestamps_within(whole, budget)
        {
            for _ in ts {}
        }
    }
}

/// Rewrites the CRC-32C of every batch that frames within `buf`.
fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while let Some(h) = buf
        .get(pos..)
        .and_then(|b| batch::BatchHeader::parse(b).ok())
    {
        let size = h.total_size();
        if size <= CRC_OFFSET + 4 || size < LOG_OVERHEAD || pos + size > buf.len() {
            return;
        }
        let crc = compute_crc(&buf[pos..pos + size]);
        buf[pos + CRC_OFFSET..pos + CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        pos += size;
    }
}

/// Log bytes of a coordinator's internal partition, replayed as loading
/// replays them: `data[0]` even for `__consumer_offsets` (then the loaded
/// state built, as at start-up), odd for `__transaction_state`.
pub fn coordinator_log(data: &[u8]) {
    let Some((&which, log)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        let mut l = GroupLoader::default();
        l.replay_log(log, 0, 1);
        let _ = l.finish(1_700_000_000_000, 45_000, 45_000);
    } else {
        let _ = TransactionCoordinator::replay_log(log, 0);
    }
}

/// The files kastle reads from disk, `data[0]` choosing which: offset
/// checkpoints, the leader-epoch checkpoint, producer-state snapshots,
/// properties files (`meta.properties`, `server.properties`), topic
/// metadata files, metadata records, the controller's raft log, and Apache
/// Kafka's metadata log (a snapshot, a segment).
pub fn storage_file(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(bytes);
    match which % 9 {
        0 => drop(crate::storage::offset_checkpoint::parse(&text)),
        1 => drop(crate::storage::leader_epoch::parse_checkpoint(&text)),
        2 => drop(crate::storage::producer_state::snapshot::decode_snapshot(
            bytes,
        )),
        3 => drop(crate::config::parse_properties(&text)),
        4 => drop(crate::broker::topics::parse_topic_file(&text)),
        5 => drop(crate::metadata::RecordAndVersion::decode(bytes)),
        6 => drop(crate::raft::log_store::parse_log(bytes)),
        7 => drop(crate::storage::kafka_metadata_log::read_snapshot_bytes(
            bytes,
        )),
        _ => drop(crate::storage::kafka_metadata_log::read_segment_bytes(
            bytes,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_api_is_fuzzed() {
        every_supported_api_has_a_decoder().expect("a decoder per supported API");
    }

    /// A flexible (v2) request header of `key` at `version`.
    fn header(key: i16, version: i16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&key.to_be_bytes());
        h.extend_from_slice(&version.to_be_bytes());
        h.extend_from_slice(&7i32.to_be_bytes());
        h.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        h.push(0); // no tagged fields
        h
    }

    /// The controller listener decoded its own APIs (BrokerRegistration,
    /// BrokerHeartbeat, AlterPartition, AllocateProducerIds, Envelope)
    /// without the schema walker: a body claiming 2^32-2 listeners made
    /// the crate reserve that many and abort the process. Now refused.
    #[test]
    fn a_controller_request_claiming_huge_counts_is_refused() {
        let mut frame = header(62, 0); // BrokerRegistration v0
        frame.extend_from_slice(&1i32.to_be_bytes()); // broker id
        frame.extend_from_slice(&[2, b'c']); // cluster id "c"
        frame.extend_from_slice(&[0; 16]); // incarnation id
        frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // listeners: 2^32-2
        let err = controller_frame(&frame).expect_err("refused");
        assert!(err.contains("BrokerRegistration v0"), "{err}");
        // The same claim inside an Envelope's embedded CreateTopics.
        let mut inner = header(19, 7); // CreateTopics v7
        inner.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut env = header(58, 0);
        env.push(inner.len() as u8 + 1);
        env.extend_from_slice(&inner);
        env.push(0); // null principal
        env.extend_from_slice(&[5, 127, 0, 0, 1]);
        env.push(0);
        let err = controller_frame(&env).expect_err("refused");
        assert!(err.contains("CreateTopics v7"), "{err}");
    }
}
