//! Produce: validate each partition's batches, append them (offsets are
//! assigned inside the partition's append), then wait for the high watermark
//! to cover them when the client asked for acknowledgements.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::partition::{Partition, PartitionError};
use crate::broker::quota_managers::QuotaType;
use crate::broker::topics::Topic;
use crate::coordinator::txn::add_partitions_manager::SupportedOperation;
use crate::handlers::metadata::{known_elsewhere, topic_name_by_id};
use crate::handlers::{decode, malformed, ready, Pending, Reply, Request};
use crate::record::batch;
use crate::record::compression;
use crate::record::validator;
use crate::record::RecordError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::storage::producer_state::VerificationGuard;
use crate::util::now_ms;

/// A transactional batch's KIP-890 verification: the guard its append
/// presents, or the error the partition is answered with instead.
type Verdict = Result<VerificationGuard, ResponseError>;

/// A failed partition's answer. Kafka's answer carries, besides the code,
/// the log start offset (-1 when Kafka fails the partition before its log
/// is involved, see [`refused_before_the_log`]) and a message only where
/// Kafka has a custom one.
fn failed(
    index: i32,
    code: ResponseError,
    log_start_offset: i64,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(log_start_offset)
        .with_error_message(message.map(StrBytes::from_string))
}

/// Record data Kafka refuses with log start offset -1 and no message: in
/// KafkaApis before the append (`ProduceRequest.validateRecords`: no whole
/// batch, not magic 2, not exactly one batch, zstd before v7, an unreadable
/// batch header), and the exceptions `ReplicaManager.appendToLocalLog`
/// answers as known ones (`CorruptRecordException`,
/// `RecordTooLargeException`). Everything else (LogValidator's batch and
/// record rules, undecodable records) goes through its catch-all, which
/// reports the partition's log start offset.
fn refused_before_the_log(e: &RecordError) -> bool {
    matches!(
        e,
        RecordError::NoBatches
            | RecordError::PartialBatch { .. }
            | RecordError::BatchTooSmall { .. }
            | RecordError::InvalidMagic { .. }
            | RecordError::UnsupportedMagic { .. }
            | RecordError::NotOneBatch { .. }
            | RecordError::UnsupportedCompressionType { .. }
            | RecordError::CrcMismatch { .. }
            | RecordError::MessageTooLarge { .. }
            | RecordError::DecompressedTooLarge { .. }
    )
}

/// The answer to refused record data. Refused records (keyless on a
/// compacted topic, bad timestamps) come as Kafka's
/// `RecordValidationException` does: every refused record in
/// `record_errors` (v8+, KIP-467) and Kafka's summary as the message.
fn record_error_response(
    partition: &Partition,
    index: i32,
    e: &RecordError,
    version: i16,
) -> PartitionProduceResponse {
    let code =
        ResponseError::try_from_code(e.kafka_error_code()).unwrap_or(ResponseError::CorruptMessage);
    let log_start = if refused_before_the_log(e) {
        -1
    } else {
        partition.state().log_start_offset
    };
    let message = e.kafka_record_errors_message(&partition.topic, index);
    let mut r = failed(index, code, log_start, message);
    if version >= 8 {
        r.record_errors = e
            .record_faults()
            .iter()
            .map(|(i, fault)| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(*i)
                    .with_batch_index_error_message(Some(StrBytes::from_string(
                        fault.kafka_message(&partition.topic, index),
                    )))
            })
            .collect();
    }
    r
}

/// A transactional batch that failed verification, as Kafka's
/// `ReplicaManager.handleProduceAppend` answers it (log start offset -1):
/// TRANSACTION_ABORTABLE from v11 (KIP-890; older clients get
/// INVALID_TXN_STATE with Kafka's message), a coordinator that cannot tell
/// yet (CONCURRENT_TRANSACTIONS, below v12) as NOT_ENOUGH_REPLICAS so that
/// every client retries, anything else as it is.
fn verification_failure(index: i32, code: ResponseError, version: i16) -> PartitionProduceResponse {
    match code {
        ResponseError::TransactionAbortable if version > 10 => failed(index, code, -1, None),
        ResponseError::TransactionAbortable | ResponseError::InvalidTxnState => failed(
            index,
            ResponseError::InvalidTxnState,
            -1,
            Some("Partition was not added to the transaction".to_string()),
        ),
        // Transaction version 2 keeps CONCURRENT_TRANSACTIONS (common while
        // the previous transaction ends; the verifier retried it already).
        ResponseError::ConcurrentTransactions if version > 11 => failed(index, code, -1, None),
        ResponseError::ConcurrentTransactions
        | ResponseError::NetworkException
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator => failed(
            index,
            ResponseError::NotEnoughReplicas,
            -1,
            Some(format!(
                "Unable to verify the partition has been added to the transaction. \
                 Underlying error: {}",
                error_name(code)
            )),
        ),
        _ => failed(index, code, -1, None),
    }
}

/// Kafka's `Errors` constant name of the codes [`verification_failure`]
/// names in its message.
fn error_name(code: ResponseError) -> &'static str {
    match code {
        ResponseError::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
        ResponseError::NetworkException => "NETWORK_EXCEPTION",
        ResponseError::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
        ResponseError::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
        ResponseError::NotCoordinator => "NOT_COORDINATOR",
        _ => "UNKNOWN_SERVER_ERROR",
    }
}

/// A failed append: the log start offset, except where Kafka answers -1
/// (a partition that is gone or whose storage failed); no message, as
/// Kafka's catch-all and its known exceptions carry none.
fn append_failure(
    partition: &Partition,
    index: i32,
    e: &PartitionError,
) -> PartitionProduceResponse {
    let log_start = match e {
        PartitionError::Producer(_) => partition.state().log_start_offset,
        _ => -1,
    };
    failed(index, e.code(), log_start, None)
}

/// A successful append still awaiting its acknowledgement.
struct AwaitingAck {
    topic_pos: usize,
    partition_pos: usize,
    partition: Arc<Partition>,
    end_offset: i64,
    leadership: u64,
}

/// Takes ownership of a partition's record bytes for a rewrite inside the
/// CRC (a topic's codec or LogAppendTime); copies if the frame is still
/// shared, which it usually is (the request's other fields are slices of
/// the same buffer). Offset assignment needs no copy (`Log::append_as_leader`).
fn into_mut(records: Bytes) -> BytesMut {
    match records.try_into_mut() {
        Ok(m) => m,
        Err(shared) => BytesMut::from(&shared[..]),
    }
}

fn append_partition(
    partition: &Arc<Partition>,
    index: i32,
    records: Option<Bytes>,
    ctx: &ProduceContext<'_>,
    verdict: Option<Verdict>,
) -> Result<(PartitionProduceResponse, (i64, u64)), Box<PartitionProduceResponse>> {
    let version = ctx.version;
    let now = ctx.now;
    // A failed verification is the partition's answer before anything of
    // its log is looked at (Kafka's `handleProduceAppend` leaves it out of
    // the append).
    let verification = match verdict {
        Some(Err(code)) => {
            tracing::debug!(topic = %partition.topic, partition = index, error = ?code, "transactional batch refused by verification");
            return Err(Box::new(verification_failure(index, code, version)));
        }
        Some(Ok(guard)) => Some(guard),
        None => None,
    };
    let settings = partition.settings();
    // Kafka's `appendRecordsToLeader` asks for the local leader log first: a
    // replica that lost leadership (or left the partition in a reassignment)
    // answers NOT_LEADER_OR_FOLLOWER, which makes the client refresh its
    // metadata, before any min.insync.replicas check (whose retriable
    // NOT_ENOUGH_REPLICAS would keep the client here).
    if !partition.is_leader() {
        return Err(Box::new(failed(
            index,
            ResponseError::NotLeaderOrFollower,
            -1,
            None,
        )));
    }
    if ctx.acks == -1 && partition.below_min_isr(settings.min_insync_replicas) {
        // Kafka's NotEnoughReplicasException from appendRecordsToLeader goes
        // through appendToLocalLog's catch-all: log start offset, no message.
        tracing::debug!(topic = %partition.topic, partition = index, min_insync_replicas = settings.min_insync_replicas, "fewer in-sync replicas than min.insync.replicas");
        return Err(Box::new(failed(
            index,
            ResponseError::NotEnoughReplicas,
            partition.state().log_start_offset,
            None,
        )));
    }
    // The request-level shape (one batch, magic, codec) was checked before
    // the acks (`validator::validate_produce_shape`).
    let mut records = records.unwrap_or_default();
    let vcfg = settings.produce_validation();
    let mut validated = validator::validate_produce_records(&records, now, &vcfg).map_err(|e| {
        tracing::debug!(topic = %partition.topic, partition = index, error = %e, "rejected produce batch");
        Box::new(record_error_response(partition, index, &e, version))
    })?;
    // The records are written as they arrived unless the topic rewrites
    // them (`rewritten`).
    let mut rewritten: Option<BytesMut> = None;
    if let Some(target) = settings.compression_codec {
        // The topic names a codec: re-encode batches that use another one
        // (producer ids, sequences and transactional bits are kept).
        if validated
            .batches
            .iter()
            .any(|b| b.header.compression() != target)
        {
            let budget = compression::decompression_budget(vcfg.max_message_bytes);
            let buf = validator::recompress_batch(&records, target, budget)
                .map_err(|e| Box::new(record_error_response(partition, index, &e, version)))?;
            if buf.len() > vcfg.max_message_bytes {
                let e = RecordError::MessageTooLarge {
                    batch_index: 0,
                    size: buf.len(),
                    max: vcfg.max_message_bytes,
                };
                return Err(Box::new(record_error_response(
                    partition, index, &e, version,
                )));
            }
            rewritten = Some(buf);
        }
    }
    if settings.log_append_time {
        let mut buf = match rewritten.take() {
            Some(buf) => buf,
            None => into_mut(std::mem::take(&mut records)),
        };
        batch::set_log_append_time(&mut buf, now)
            .map_err(|e| Box::new(record_error_response(partition, index, &e, version)))?;
        rewritten = Some(buf);
        // The batch as stored carries the append time; the producer state
        // records it, as Kafka's does from the validated batch.
        for b in &mut validated.batches {
            b.header.max_timestamp = now;
        }
    }
    let stored: &[u8] = rewritten.as_deref().unwrap_or(&records);
    match partition.append_verified(stored, &validated, verification) {
        Ok(out) => {
            // Kafka acknowledges a duplicate with the timestamp the original
            // batch was recorded with, whatever the timestamp type.
            let log_append_time = if out.duplicate {
                out.duplicate_timestamp
            } else if settings.log_append_time {
                now
            } else {
                -1
            };
            let r = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(out.base_offset)
                .with_log_append_time_ms(log_append_time)
                .with_log_start_offset(out.log_start_offset);
            Ok((r, (out.last_offset + 1, out.leadership)))
        }
        Err(e) => {
            match &e {
                PartitionError::Producer(_) => {
                    tracing::debug!(topic = %partition.topic, partition = index, error = %e, "append refused")
                }
                _ => {
                    tracing::warn!(topic = %partition.topic, partition = index, error = %e, "append failed")
                }
            }
            Err(Box::new(append_failure(partition, index, &e)))
        }
    }
}

/// What every partition of one Produce request shares.
struct ProduceContext<'a> {
    acks: i16,
    now: i64,
    version: i16,
    transactional_id: Option<&'a str>,
}

/// Kafka's `handleProduceAppend` before the append: each partition this
/// broker leads that receives the first transactional batch of a
/// transaction begins a verification (a guard), and the transaction
/// coordinator is asked, once for the whole request, whether those
/// partitions are in the producer's transaction; the partition's
/// verification notes the batch's first sequence, and holds back the
/// producer's batches above the lowest one noted until a batch lands (a
/// batch that failed verification must land first). Partitions where the
/// transaction is already open need no question (`Sentinel`). From v12
/// (transaction version 2) the question adds the partitions to the
/// transaction. Skipped without a transactional id, and below v12 with
/// `transaction.partition.verification.enable=false`.
async fn verify_transactions(
    req: &Request,
    topic_data: &[TopicProduceData],
    resolved: &[(Option<Arc<Topic>>, Option<ResponseError>)],
    misshapen: &HashMap<(usize, usize), RecordError>,
    ctx: &ProduceContext<'_>,
) -> HashMap<(usize, usize), Verdict> {
    let mut verdicts = HashMap::new();
    let Some(transactional_id) = ctx.transactional_id else {
        return verdicts;
    };
    let apis = &req.ctx.apis;
    let operation = SupportedOperation::for_produce(ctx.version);
    // Transaction version 2 adds the partition here: never skipped.
    if operation != SupportedOperation::AddPartition
        && !apis
            .dynamic_config
            .current()
            .boolean("transaction.partition.verification.enable")
    {
        return verdicts;
    }
    let mut started = Vec::new();
    let mut producer: Option<(i64, i16)> = None;
    for (topic_pos, (td, (topic, refused))) in topic_data.iter().zip(resolved).enumerate() {
        let Some(t) = topic.as_ref().filter(|t| refused.is_none() && !t.internal) else {
            continue;
        };
        for (partition_pos, pd) in td.partition_data.iter().enumerate() {
            let Some(p) = t
                .partition(pd.index)
                .filter(|_| !misshapen.contains_key(&(topic_pos, partition_pos)))
            else {
                continue;
            };
            // Read where Kafka reads it: a batch shorter than its header
            // is verified too (the log refuses it afterwards). One producer
            // per request: a mix failed the whole request before.
            let Some(txn_producer) =
                validator::transactional_producer(pd.records.as_deref().unwrap_or_default())
            else {
                continue;
            };
            let (producer_id, epoch) = (txn_producer.producer_id, txn_producer.epoch);
            let key = (topic_pos, partition_pos);
            producer = Some((producer_id, epoch));
            // The verification notes the batch's sequence, and whether this
            // is a transaction version 2 request (Kafka's
            // `supportsEpochBump`).
            match p.maybe_start_transaction_verification(
                producer_id,
                txn_producer.base_sequence,
                epoch,
                operation == SupportedOperation::AddPartition,
            ) {
                Err(e) => {
                    verdicts.insert(key, Err(e.code()));
                }
                Ok(VerificationGuard::Sentinel) => {
                    verdicts.insert(key, Ok(VerificationGuard::Sentinel));
                }
                Ok(guard) => started.push((key, (t.name.clone(), pd.index), guard)),
            }
        }
    }
    let Some((producer_id, epoch)) = producer.filter(|_| !started.is_empty()) else {
        return verdicts;
    };
    let partitions: Vec<(String, i32)> = started.iter().map(|(_, tp, _)| tp.clone()).collect();
    let asked = std::time::Instant::now();
    let unverified = apis
        .txn_verifier
        .verify(transactional_id, producer_id, epoch, &partitions, operation)
        .await;
    req.note_off_thread(asked.elapsed());
    for (key, tp, guard) in started {
        let verdict = match unverified.get(&tp) {
            Some(e) => Err(*e),
            None => Ok(guard),
        };
        verdicts.insert(key, verdict);
    }
    verdicts
}

pub async fn handle(req: Request, body: Bytes) -> Pending {
    // Kafka's produce quota counts the whole request (header and body).
    let request_size = (req.header.len + body.len()) as f64;
    let request: ProduceRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    let apis = req.ctx.apis.clone();
    let acks = request.acks;
    let version = req.version();
    let now = now_ms();
    let valid_acks = matches!(acks, -1..=1);
    let ctx = ProduceContext {
        acks,
        now,
        version,
        transactional_id: request.transactional_id.as_ref().map(|t| t.0.as_str()),
    };
    // Kafka's first look at the records (`hasTransactionalRecords`: each
    // partition's first batch): a batch its iterator refuses fails the whole
    // request, CORRUPT_MESSAGE with the iterator's message (a size that
    // overflows: UNKNOWN_SERVER_ERROR).
    let first_batches = validator::first_batches_transactional(
        request
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .map(|p| p.records.as_deref().unwrap_or_default()),
    );
    let mut whole_request_error = first_batches.as_ref().err().map(|refusal| {
        (
            ResponseError::try_from_code(refusal.code).unwrap_or(ResponseError::UnknownServerError),
            refusal.message.clone(),
        )
    });
    // Transactional records need a transactional id and WRITE on it, or the
    // whole request is refused (without an authorizer only the missing id
    // is refused).
    let transactional_refused = first_batches == Ok(true)
        && !ctx.transactional_id.is_some_and(|id| {
            req.ctx.apis.authorizer.is_none()
                || req
                    .ctx
                    .authorize(AclOperation::Write, ResourceType::TransactionalId, id)
        });
    let mut responses: Vec<TopicProduceResponse> = Vec::with_capacity(request.topic_data.len());
    let mut awaiting: Vec<AwaitingAck> = Vec::new();
    let mut any_error = false;
    let mut node_endpoints: Vec<NodeEndpoint> = Vec::new();

    // Each topic as this broker knows it, and whether the client may write
    // to it: decided once, before verification and appends.
    let resolved: Vec<(Option<Arc<Topic>>, Option<ResponseError>)> = request
        .topic_data
        .iter()
        .map(|td| {
            let topic = if version >= 13 {
                apis.replicas.topics.get_by_id(&td.topic_id)
            } else {
                apis.replicas.topics.get(&td.name.0)
            };
            // WRITE on the topic, by name: a topic id resolves first, in
            // a cluster through the image too (a topic with no replica
            // here). An id that resolves to nothing is UNKNOWN_TOPIC_ID,
            // before any authorization (Kafka's `handleProduceRequest`).
            let image_name;
            let name = match (version >= 13, topic.as_ref()) {
                (true, Some(t)) => Some(t.name.as_str()),
                (true, None) => {
                    image_name = topic_name_by_id(&req.ctx.apis, &td.topic_id);
                    image_name.as_deref()
                }
                (false, _) => Some(td.name.0.as_str()),
            };
            let refused = if transactional_refused {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else if name.is_none() {
                // An id that names no topic (unknown, zero, a deleted
                // topic's): before authorization, as Kafka does.
                Some(ResponseError::UnknownTopicId)
            } else if name.is_some_and(|n| {
                !req.ctx
                    .authorize(AclOperation::Write, ResourceType::Topic, n)
            }) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            (topic, refused)
        })
        .collect();
    // Kafka's `ProduceRequest.validateRecords`, for the partitions not
    // refused above: decided before the acks, and such a partition is not
    // verified or appended.
    let misshapen: HashMap<(usize, usize), RecordError> = request
        .topic_data
        .iter()
        .zip(&resolved)
        .enumerate()
        .filter(|(_, (_, (_, refused)))| refused.is_none())
        .flat_map(|(topic_pos, (td, _))| {
            td.partition_data
                .iter()
                .enumerate()
                .filter_map(move |(partition_pos, pd)| {
                    let records = pd.records.as_deref().unwrap_or_default();
                    validator::validate_produce_shape(records, version)
                        .err()
                        .map(|e| ((topic_pos, partition_pos), e))
                })
        })
        .collect();
    // What Kafka reads of the partitions it hands to `handleProduceAppend`
    // (known here or in the cluster, not refused, of the right shape) before
    // the acks, each a whole-request failure, in Kafka's order: a shape
    // refusal that is no `ApiException` (an unknown codec below v7, a second
    // batch whose size overflows: `validator::fails_whole_request`), a batch
    // too short for the producer fields (`validator::producer_fields_unreadable`),
    // transactional batches of more than one producer id and epoch. One
    // header per partition; nothing is verified or appended after them.
    let mut shape_throws = false;
    let mut fields_unreadable = false;
    let mut producers: Vec<(i64, i16)> = Vec::new();
    for (topic_pos, (td, (topic, refused))) in request.topic_data.iter().zip(&resolved).enumerate()
    {
        if refused.is_some() {
            continue;
        }
        for (partition_pos, pd) in td.partition_data.iter().enumerate() {
            let exists = || {
                topic
                    .as_ref()
                    .is_some_and(|t| t.partition(pd.index).is_some())
                    || known_elsewhere(
                        &req,
                        (version < 13).then_some(td.name.0.as_str()),
                        td.topic_id,
                        pd.index,
                    )
            };
            let records = pd.records.as_deref().unwrap_or_default();
            match misshapen.get(&(topic_pos, partition_pos)) {
                Some(e) => shape_throws |= validator::fails_whole_request(e) && exists(),
                None if validator::producer_fields_unreadable(records) => {
                    fields_unreadable |= exists();
                }
                None => {
                    if let Some(p) = validator::transactional_producer(records) {
                        let producer = (p.producer_id, p.epoch);
                        if !producers.contains(&producer) && exists() {
                            producers.push(producer);
                        }
                    }
                }
            }
        }
    }
    if whole_request_error.is_none() {
        whole_request_error = if shape_throws || fields_unreadable {
            Some((ResponseError::UnknownServerError, None))
        } else if producers.len() > 1 {
            Some((
                ResponseError::InvalidProducerIdMapping,
                Some("Transactional records contained more than one producer ID".to_string()),
            ))
        } else {
            None
        };
    }
    // Verified before the acks are looked at: a partition that fails
    // verification is answered so whatever the acks.
    let verdicts = if whole_request_error.is_none() {
        verify_transactions(&req, &request.topic_data, &resolved, &misshapen, &ctx).await
    } else {
        HashMap::new()
    };

    for ((topic_pos, td), (topic, refused)) in
        request.topic_data.into_iter().enumerate().zip(resolved)
    {
        let mut partitions = Vec::with_capacity(td.partition_data.len());
        for (partition_pos, pd) in td.partition_data.into_iter().enumerate() {
            // Kafka's order: the topic or partition it does not know, the
            // request-level shape of the records, a failed transaction
            // verification, then the acks (`ReplicaManager.appendRecords`),
            // then leadership and the log.
            let result = if let Some((code, message)) = &whole_request_error {
                Err(failed(pd.index, *code, -1, message.clone()))
            } else if let Some(code) = refused {
                Err(failed(pd.index, code, -1, None))
            } else {
                // A partition of the cluster this broker hosts no replica
                // of: NOT_LEADER_OR_FOLLOWER, the client refreshes its
                // metadata (Kafka's `getPartitionOrError`).
                let elsewhere = || {
                    let name = (version < 13).then_some(td.name.0.as_str());
                    known_elsewhere(&req, name, td.topic_id, pd.index)
                };
                let partition = topic.as_ref().and_then(|t| t.partition(pd.index));
                match partition {
                    // A known topic without the partition (an id naming
                    // no topic was refused above).
                    None if !elsewhere() => Err(failed(
                        pd.index,
                        ResponseError::UnknownTopicOrPartition,
                        -1,
                        None,
                    )),
                    _ if misshapen.contains_key(&(topic_pos, partition_pos)) => {
                        let e = &misshapen[&(topic_pos, partition_pos)];
                        let code = ResponseError::try_from_code(e.kafka_error_code())
                            .unwrap_or(ResponseError::CorruptMessage);
                        tracing::debug!(topic = %td.name.0, partition = pd.index, error = %e, "rejected produce data");
                        // Kafka answers these with the code alone.
                        Err(failed(pd.index, code, -1, None))
                    }
                    _ if !valid_acks => Err(match verdicts.get(&(topic_pos, partition_pos)) {
                        Some(Err(code)) => verification_failure(pd.index, *code, version),
                        _ => failed(pd.index, ResponseError::InvalidRequiredAcks, -1, None),
                    }),
                    None => Err(failed(
                        pd.index,
                        ResponseError::NotLeaderOrFollower,
                        -1,
                        None,
                    )),
                    Some(p) if topic.as_ref().is_some_and(|t| t.internal) => Err(failed(
                        pd.index,
                        ResponseError::InvalidTopicException,
                        -1,
                        Some(format!("Cannot append to internal topic {}", p.topic)),
                    )),
                    Some(p) => append_partition(
                        p,
                        pd.index,
                        pd.records,
                        &ctx,
                        verdicts.get(&(topic_pos, partition_pos)).copied(),
                    )
                    .map_err(|e| *e)
                    .map(|(r, (end, leadership))| {
                        awaiting.push(AwaitingAck {
                            topic_pos,
                            partition_pos,
                            partition: p.clone(),
                            end_offset: end,
                            leadership,
                        });
                        r
                    }),
                }
            };
            let mut r = result.unwrap_or_else(|r| {
                any_error = true;
                r
            });
            if version >= 10 && r.error_code == ResponseError::NotLeaderOrFollower.code() {
                // KIP-951: point the client at the leader this replica knows.
                if let Some(hint) = topic
                    .as_ref()
                    .and_then(|t| t.partition(r.index))
                    .and_then(|p| p.leader_hint())
                {
                    r.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(hint.leader_id))
                        .with_leader_epoch(hint.leader_epoch);
                    if !node_endpoints
                        .iter()
                        .any(|n: &NodeEndpoint| n.node_id.0 == hint.leader_id)
                    {
                        node_endpoints.push(
                            NodeEndpoint::default()
                                .with_node_id(BrokerId(hint.leader_id))
                                .with_host(StrBytes::from_string(hint.host))
                                .with_port(hint.port),
                        );
                    }
                }
            }
            partitions.push(r);
        }
        responses.push(
            TopicProduceResponse::default()
                // Copied: the decoded name is a slice of the request frame,
                // which would otherwise stay in memory until the acks.
                .with_name(TopicName(StrBytes::from_string(td.name.0.to_string())))
                .with_topic_id(td.topic_id)
                .with_partition_responses(partitions),
        );
    }

    apis.metrics.count_produce(&responses);
    if acks == 0 {
        // No response to carry it, but the connection is still muted.
        let throttle = req.record_quota(QuotaType::Produce, request_size);
        req.throttle(QuotaType::Produce, throttle);
        // The client reads no response; Kafka closes the connection so the
        // client notices a failed acks=0 produce at all.
        return ready(if any_error {
            Reply::Close("acks=0 produce failed".into())
        } else {
            Reply::None
        });
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    Box::pin(async move {
        for a in awaiting {
            if let Err(code) = a
                .partition
                .wait_for_ack(a.end_offset, a.leadership, acks, deadline)
                .await
            {
                let r = &mut responses[a.topic_pos].partition_responses[a.partition_pos];
                req.ctx.apis.metrics.produce_errors.add(code.code());
                r.error_code = code.code();
                r.base_offset = -1;
                r.log_append_time_ms = -1;
            }
        }
        // Recorded once the produce completes, as Kafka's response callback.
        let throttle = req.record_quota(QuotaType::Produce, request_size);
        req.throttle(QuotaType::Produce, throttle);
        req.respond(
            &ProduceResponse::default()
                .with_responses(responses)
                .with_node_endpoints(node_endpoints)
                .with_throttle_time_ms(throttle),
        )
    })
}
