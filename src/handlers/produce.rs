//! Produce: validate each partition's batches, append them (offsets are
//! assigned inside the partition's append), then wait for the high watermark
//! to cover them when the client asked for acknowledgements.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::partition::Partition;
use crate::coordinator::txn::TransactionCoordinator;
use crate::handlers::{decode, malformed, ready, Pending, Reply, Request};
use crate::record::batch;
use crate::record::compression;
use crate::record::validator::{self, TimestampType, ValidationConfig};
use crate::record::RecordError;
use crate::util::now_ms;

fn partition_error(
    index: i32,
    code: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

fn record_error_response(index: i32, e: &RecordError, version: i16) -> PartitionProduceResponse {
    let code =
        ResponseError::try_from_code(e.kafka_error_code()).unwrap_or(ResponseError::CorruptMessage);
    let mut r = partition_error(index, code, Some(e.to_string()));
    // record_errors exists from v8 (KIP-467).
    if let (Some(record_index), true) = (e.record_index(), version >= 8) {
        r.record_errors = vec![BatchIndexAndErrorMessage::default()
            .with_batch_index(record_index)
            .with_batch_index_error_message(Some(StrBytes::from_string(e.to_string())))];
    }
    r
}

/// A successful append still awaiting its acknowledgement.
struct AwaitingAck {
    topic_pos: usize,
    partition_pos: usize,
    partition: Arc<Partition>,
    end_offset: i64,
}

/// Takes ownership of a partition's record bytes for in-place offset
/// assignment; copies only if the frame is still shared.
fn into_mut(records: Bytes) -> BytesMut {
    match records.try_into_mut() {
        Ok(m) => m,
        Err(shared) => BytesMut::from(&shared[..]),
    }
}

fn append_partition(
    txns: &TransactionCoordinator,
    partition: &Arc<Partition>,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
    now: i64,
    version: i16,
) -> Result<(PartitionProduceResponse, i64), Box<PartitionProduceResponse>> {
    let settings = partition.settings();
    if acks == -1 && settings.min_insync_replicas > 1 {
        return Err(Box::new(partition_error(
            index,
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "min.insync.replicas is {} but only 1 replica is in sync",
                settings.min_insync_replicas
            )),
        )));
    }
    let records = records.unwrap_or_default();
    // Kafka checks the codec against the request version before anything
    // else (ProduceRequest.validateRecords): zstd needs Produce v7+.
    for (i, (_, h)) in batch::iter_batches(&records).enumerate() {
        if !compression::codec_allowed_for_produce_version(h.compression(), version) {
            let e = RecordError::UnsupportedCompressionType {
                batch_index: i,
                codec: h.compression(),
            };
            return Err(Box::new(record_error_response(index, &e, version)));
        }
    }
    let vcfg = ValidationConfig {
        max_message_bytes: settings.max_message_bytes.max(0) as usize,
        timestamp_type: if settings.log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        timestamp_before_max_ms: settings.timestamp_before_max_ms,
        timestamp_after_max_ms: settings.timestamp_after_max_ms,
        compacted: settings.compacted,
        single_batch: true,
    };
    let validated = validator::validate_produce_records(&records, now, &vcfg).map_err(|e| {
        tracing::debug!(topic = %partition.topic, partition = index, error = %e, "rejected produce batch");
        Box::new(record_error_response(index, &e, version))
    })?;
    if let Some(h) = validated
        .batches
        .first()
        .map(|b| b.header)
        .filter(|h| h.is_transactional())
    {
        // KIP-890: a transactional batch must belong to a transaction that
        // has this partition in it.
        if let Err(code) =
            txns.verify_partition(h.producer_id, h.producer_epoch, &partition.topic, index)
        {
            let msg = (code == ResponseError::InvalidTxnState)
                .then(|| "Partition was not added to the transaction".to_string());
            return Err(Box::new(partition_error(index, code, msg)));
        }
    }
    let mut buf = into_mut(records);
    if let Some(target) = settings.compression_codec {
        // The topic names a codec: re-encode batches that use another one
        // (producer ids, sequences and transactional bits are kept).
        if validated
            .batches
            .iter()
            .any(|b| b.header.compression() != target)
        {
            let budget = compression::decompression_budget(vcfg.max_message_bytes);
            buf = validator::recompress_batch(&buf, target, budget)
                .map_err(|e| Box::new(record_error_response(index, &e, version)))?;
            if buf.len() > vcfg.max_message_bytes {
                let e = RecordError::MessageTooLarge {
                    batch_index: 0,
                    size: buf.len(),
                    max: vcfg.max_message_bytes,
                };
                return Err(Box::new(record_error_response(index, &e, version)));
            }
        }
    }
    if settings.log_append_time {
        batch::set_log_append_time(&mut buf, now)
            .map_err(|e| Box::new(record_error_response(index, &e, version)))?;
    }
    match partition.append(&mut buf, &validated) {
        Ok(out) => {
            let r = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(out.base_offset)
                .with_log_append_time_ms(if settings.log_append_time && !out.duplicate {
                    now
                } else {
                    -1
                })
                .with_log_start_offset(out.log_start_offset);
            Ok((r, out.last_offset + 1))
        }
        Err(e) => {
            tracing::warn!(topic = %partition.topic, partition = index, error = %e, "append failed");
            Err(Box::new(partition_error(
                index,
                e.code(),
                Some(e.to_string()),
            )))
        }
    }
}

pub fn handle(req: Request, body: Bytes) -> Pending {
    let request: ProduceRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    let apis = req.ctx.apis.clone();
    let acks = request.acks;
    let version = req.version();
    let now = now_ms();
    let valid_acks = matches!(acks, -1..=1);
    let mut responses: Vec<TopicProduceResponse> = Vec::with_capacity(request.topic_data.len());
    let mut awaiting: Vec<AwaitingAck> = Vec::new();
    let mut any_error = false;

    for (topic_pos, td) in request.topic_data.into_iter().enumerate() {
        let topic = if version >= 13 {
            apis.replicas.topics.get_by_id(&td.topic_id)
        } else {
            apis.replicas.topics.get(&td.name.0)
        };
        let missing = if version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let mut partitions = Vec::with_capacity(td.partition_data.len());
        for (partition_pos, pd) in td.partition_data.into_iter().enumerate() {
            let result = if !valid_acks {
                Err(partition_error(
                    pd.index,
                    ResponseError::InvalidRequiredAcks,
                    None,
                ))
            } else {
                match topic.as_ref() {
                    None => Err(partition_error(pd.index, missing, None)),
                    Some(t) if t.internal => Err(partition_error(
                        pd.index,
                        ResponseError::InvalidTopicException,
                        Some(format!("Cannot append to internal topic {}", t.name)),
                    )),
                    Some(t) => match t.partition(pd.index) {
                        None => Err(partition_error(
                            pd.index,
                            ResponseError::UnknownTopicOrPartition,
                            None,
                        )),
                        Some(p) => append_partition(
                            &apis.txns, p, pd.index, pd.records, acks, now, version,
                        )
                        .map_err(|e| *e)
                        .map(|(r, end)| {
                            awaiting.push(AwaitingAck {
                                topic_pos,
                                partition_pos,
                                partition: p.clone(),
                                end_offset: end,
                            });
                            r
                        }),
                    },
                }
            };
            partitions.push(result.unwrap_or_else(|r| {
                any_error = true;
                r
            }));
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(td.name)
                .with_topic_id(td.topic_id)
                .with_partition_responses(partitions),
        );
    }

    apis.metrics.count_produce(&responses);
    if acks == 0 {
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
                .wait_for_high_watermark(a.end_offset, deadline)
                .await
            {
                let r = &mut responses[a.topic_pos].partition_responses[a.partition_pos];
                req.ctx.apis.metrics.produce_errors.add(code.code());
                r.error_code = code.code();
                r.base_offset = -1;
                r.log_append_time_ms = -1;
            }
        }
        req.respond(&ProduceResponse::default().with_responses(responses))
    })
}
