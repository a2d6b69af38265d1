//! InitProducerId (idempotent producers) and DescribeProducers.

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::handlers::{
    decode, decode_or_close, malformed, ready, transactions, Pending, Reply, Request,
};
use crate::security::acl::{AclOperation, ResourceType};

pub fn init_producer_id(req: Request, body: Bytes) -> Pending {
    let request: InitProducerIdRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    // Kafka refuses a half-given producer identity (KafkaApis checks both).
    if (request.producer_id.0 == -1) != (request.producer_epoch == -1) {
        let resp = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_error_code(ResponseError::InvalidRequest.code());
        return ready(req.respond(&resp));
    }
    if request.transactional_id.is_some() {
        return transactions::init_producer_id(req, request);
    }
    ready(init_idempotent(&req))
}

fn init_idempotent(req: &Request) -> Reply {
    let mut resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or, as
    // Kafka 3+ accepts, WRITE on some topic.
    if !req.ctx.authorize_cluster(AclOperation::IdempotentWrite)
        && !req
            .ctx
            .authorize_by_resource_type(AclOperation::Write, ResourceType::Topic)
    {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return req.respond(&resp);
    }
    // Kafka answers a request without a transactional id with a fresh
    // producer id at epoch 0, whatever id and epoch the client passed
    // (KIP-360's bump for idempotent producers happens client-side).
    match req.ctx.apis.producer_ids.generate() {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => resp.error_code = e.code(),
    }
    req.respond(&resp)
}

pub fn describe_producers(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeProducersRequest);
    let apis = &req.ctx.apis;
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let topic = apis.replicas.topics.get(&t.name.0);
        let readable = req
            .ctx
            .authorize(AclOperation::Read, ResourceType::Topic, &t.name.0);
        let mut partitions = Vec::with_capacity(t.partition_indexes.len());
        for index in t.partition_indexes {
            let mut r = PartitionResponse::default().with_partition_index(index);
            if !readable {
                r.error_code = ResponseError::TopicAuthorizationFailed.code();
                partitions.push(r);
                continue;
            }
            match topic.as_ref().and_then(|t| t.partition(index)) {
                // Kafka gives its default text for a topic it does not know,
                // no message for a partition its topic does not have.
                None => {
                    r.error_code = ResponseError::UnknownTopicOrPartition.code();
                    if topic.is_none() {
                        r.error_message = Some(StrBytes::from_static_str(
                            "This server does not host this topic-partition.",
                        ));
                    }
                }
                Some(p) => match p.producers() {
                    Ok(entries) => {
                        r.active_producers = entries
                            .iter()
                            .map(|e| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(e.producer_id))
                                    .with_producer_epoch(i32::from(e.epoch))
                                    .with_last_sequence(e.last_seq())
                                    .with_last_timestamp(e.last_timestamp)
                                    .with_coordinator_epoch(e.coordinator_epoch)
                                    .with_current_txn_start_offset(
                                        e.current_txn_first_offset.unwrap_or(-1),
                                    )
                            })
                            .collect()
                    }
                    Err(e) => {
                        r.error_code = e.code().code();
                        r.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                },
            }
            partitions.push(r);
        }
        topics.push(
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    req.respond(&DescribeProducersResponse::default().with_topics(topics))
}
