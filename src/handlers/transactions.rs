//! Transaction APIs: InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions,
//! ListTransactions. The coordinator does the work; this module maps
//! requests and errors.

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::group::OFFSETS_TOPIC;
use crate::coordinator::txn::coordinator::{fenced_error, TV_0, TV_2};
use crate::handlers::{decode, malformed, ready, Pending, Request};
use crate::security::acl::{AclOperation, ResourceType};
use crate::util::now_ms;
use crate::util::re2::FullMatch;

/// InitProducerId for a transactional producer (the caller routes requests
/// without a transactional id to the idempotent path).
pub fn init_producer_id(req: Request, request: InitProducerIdRequest) -> Pending {
    let txn_id = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let expected =
        (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
    let txn_allowed = txn_writable(&req, &txn_id);
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        let mut resp = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        if !txn_allowed {
            resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            return req.respond(&resp);
        }
        match apis
            .txns
            .init_producer_id(&txn_id, request.transaction_timeout_ms, expected)
            .await
        {
            Ok((pid, epoch)) => {
                resp.producer_id = ProducerId(pid);
                resp.producer_epoch = epoch;
            }
            Err(e) => {
                // InitProducerId before v4 knows no PRODUCER_FENCED.
                let e = if e == ResponseError::ProducerFenced && req.version() < 4 {
                    ResponseError::InvalidProducerEpoch
                } else {
                    e
                };
                resp.error_code = e.code();
            }
        }
        req.respond(&resp)
    })
}

/// Whether the client may WRITE with the transactional id.
fn txn_writable(req: &Request, txn_id: &str) -> bool {
    req.ctx
        .authorize(AclOperation::Write, ResourceType::TransactionalId, txn_id)
}

/// One transaction's part of an AddPartitionsToTxn request: id, producer id,
/// epoch, verify-only flag, partitions by topic.
type TxnPartitions = (String, i64, i16, bool, Vec<(TopicName, Vec<i32>)>);

pub fn add_partitions_to_txn(req: Request, body: Bytes) -> Pending {
    let request: AddPartitionsToTxnRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    let version = req.version();
    // v4+ comes from brokers: CLUSTER_ACTION on the cluster replaces the
    // client's TRANSACTIONAL_ID and TOPIC WRITE checks.
    let broker = version >= 4;
    if broker && !req.ctx.authorize_cluster(AclOperation::ClusterAction) {
        return ready(
            req.respond(
                &AddPartitionsToTxnResponse::default()
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
            ),
        );
    }
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        // v4+ batches several transactions (sent broker-to-coordinator);
        // v0-3 carry one, from the client.
        let txns: Vec<TxnPartitions> = if version >= 4 {
            request
                .transactions
                .into_iter()
                .map(|t| {
                    (
                        t.transactional_id.0.to_string(),
                        t.producer_id.0,
                        t.producer_epoch,
                        t.verify_only,
                        t.topics
                            .into_iter()
                            .map(|x| (x.name, x.partitions))
                            .collect(),
                    )
                })
                .collect()
        } else {
            vec![(
                request.v3_and_below_transactional_id.0.to_string(),
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                false,
                request
                    .v3_and_below_topics
                    .into_iter()
                    .map(|x| (x.name, x.partitions))
                    .collect(),
            )]
        };
        let mut results = Vec::with_capacity(txns.len());
        for (txn_id, pid, epoch, verify_only, topics) in txns {
            // Unknown partitions fail the request; the others are "not attempted".
            let mut unknown = Vec::new();
            let mut refused = Vec::new();
            let mut wanted = Vec::new();
            let txn_ok = broker || txn_writable(&req, &txn_id);
            for (name, parts) in &topics {
                // The cluster's partitions when in one (Kafka's
                // `metadataCache.contains`), this broker's otherwise.
                let image = apis.cluster.as_ref().map(|c| c.image());
                let local = apis.replicas.topics.get(&name.0);
                let known = |p: i32| match &image {
                    Some(image) => image
                        .topic_by_name(&name.0)
                        .is_some_and(|t| t.partitions.contains_key(&p)),
                    None => local.as_ref().is_some_and(|t| t.partition(p).is_some()),
                };
                // Kafka leaves internal topics out of what a client may add
                let topic_ok = broker
                    || (!crate::broker::topics::is_internal_topic(&name.0)
                        && req
                            .ctx
                            .authorize(AclOperation::Write, ResourceType::Topic, &name.0));
                for p in parts {
                    if !topic_ok {
                        refused.push((name.0.to_string(), *p));
                        continue;
                    }
                    if known(*p) {
                        wanted.push((name.0.to_string(), *p));
                    } else {
                        unknown.push((name.0.to_string(), *p));
                    }
                }
            }
            // A broker's verify-only question is answered per partition
            // (Kafka's `handleVerifyPartitionsInTransaction`).
            let mut not_in_txn: Vec<((String, i32), ResponseError)> = Vec::new();
            let outcome = if !txn_ok {
                Err(ResponseError::TransactionalIdAuthorizationFailed)
            } else if unknown.is_empty() && refused.is_empty() && verify_only && broker {
                apis.txns
                    .verify_partitions(&txn_id, pid, epoch, &wanted)
                    .map(|codes| {
                        not_in_txn = wanted
                            .iter()
                            .zip(codes)
                            .filter_map(|(p, c)| c.map(|e| (p.clone(), e)))
                            .collect();
                    })
            } else if unknown.is_empty() && refused.is_empty() {
                // v4+ (from a partition leader) adds for a transaction
                // version 2 client (Produce v12, TxnOffsetCommit v5).
                let client_tv = if version > 3 { TV_2 } else { TV_0 };
                apis.txns
                    .add_partitions(
                        &txn_id,
                        pid,
                        epoch,
                        &wanted,
                        verify_only,
                        version,
                        client_tv,
                    )
                    .await
            } else {
                Err(ResponseError::OperationNotAttempted)
            };
            let code_for = |t: &str, p: i32| -> i16 {
                if !txn_ok {
                    ResponseError::TransactionalIdAuthorizationFailed.code()
                } else if refused.iter().any(|(ut, up)| ut == t && *up == p) {
                    ResponseError::TopicAuthorizationFailed.code()
                } else if unknown.iter().any(|(ut, up)| ut == t && *up == p) {
                    ResponseError::UnknownTopicOrPartition.code()
                } else if let Some((_, e)) =
                    not_in_txn.iter().find(|((nt, np), _)| nt == t && *np == p)
                {
                    e.code()
                } else {
                    outcome.err().map_or(0, |e| e.code())
                }
            };
            let topic_results: Vec<AddPartitionsToTxnTopicResult> = topics
                .iter()
                .map(|(name, parts)| {
                    AddPartitionsToTxnTopicResult::default()
                        .with_name(name.clone())
                        .with_results_by_partition(
                            parts
                                .iter()
                                .map(|p| {
                                    AddPartitionsToTxnPartitionResult::default()
                                        .with_partition_index(*p)
                                        .with_partition_error_code(code_for(&name.0, *p))
                                })
                                .collect(),
                        )
                })
                .collect();
            results.push((txn_id, topic_results));
        }
        let mut resp = AddPartitionsToTxnResponse::default();
        if version >= 4 {
            resp.results_by_transaction = results
                .into_iter()
                .map(|(id, topic_results)| {
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(kafka_protocol::messages::TransactionalId(
                            StrBytes::from_string(id),
                        ))
                        .with_topic_results(topic_results)
                })
                .collect();
        } else if let Some((_, topic_results)) = results.into_iter().next() {
            resp.results_by_topic_v3_and_below = topic_results;
        }
        req.respond(&resp)
    })
}

pub fn add_offsets_to_txn(req: Request, body: Bytes) -> Pending {
    let request: AddOffsetsToTxnRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    let version = req.version();
    let refused = if !txn_writable(&req, &request.transactional_id.0) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &request.group_id.0)
    {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = refused {
        return ready(req.respond(&AddOffsetsToTxnResponse::default().with_error_code(e.code())));
    }
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        let partition = apis.groups.partition_for(&request.group_id.0);
        let result = apis
            .txns
            .add_partitions(
                &request.transactional_id.0,
                request.producer_id.0,
                request.producer_epoch,
                &[(OFFSETS_TOPIC.to_string(), partition)],
                false,
                version,
                // Only transaction version 1 clients send AddOffsetsToTxn.
                TV_0,
            )
            .await;
        let code = result.err().map_or(0, |e| e.code());
        req.respond(&AddOffsetsToTxnResponse::default().with_error_code(code))
    })
}

pub fn end_txn(req: Request, body: Bytes) -> Pending {
    let request: EndTxnRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    let version = req.version();
    if !txn_writable(&req, &request.transactional_id.0) {
        return ready(
            req.respond(
                &EndTxnResponse::default()
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
            ),
        );
    }
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        let result = apis
            .txns
            .end_txn(
                &request.transactional_id.0,
                request.producer_id.0,
                request.producer_epoch,
                request.committed,
                version,
            )
            .await;
        // v5 carries the producer id and epoch to continue with; an error
        // carries -1 for both.
        let mut resp = EndTxnResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        match result {
            Ok((pid, epoch)) if version >= 5 => {
                resp.producer_id = ProducerId(pid);
                resp.producer_epoch = epoch;
            }
            Ok(_) => {}
            Err(e) => {
                let e = if e == ResponseError::ProducerFenced {
                    fenced_error(version)
                } else {
                    e
                };
                resp.error_code = e.code();
            }
        }
        req.respond(&resp)
    })
}

pub fn describe_transactions(req: Request, body: Bytes) -> Pending {
    let request: DescribeTransactionsRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        let mut states = Vec::with_capacity(request.transactional_ids.len());
        for id in request.transactional_ids {
            let mut s = DescribedState::default().with_transactional_id(id.clone());
            if !req
                .ctx
                .authorize(AclOperation::Describe, ResourceType::TransactionalId, &id.0)
            {
                s.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
                states.push(s);
                continue;
            }
            match apis.txns.describe(&id.0).await {
                Err(e) => s.error_code = e.code(),
                Ok(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (t, p) in &m.partitions {
                        match topics.last_mut() {
                            Some(last) if last.topic.0.as_str() == t.as_str() => {
                                last.partitions.push(*p)
                            }
                            _ => topics.push(
                                TopicData::default()
                                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                                    .with_partitions(vec![*p]),
                            ),
                        }
                    }
                    s = s
                        .with_transaction_state(StrBytes::from_static_str(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics);
                }
            }
            states.push(s);
        }
        req.respond(&DescribeTransactionsResponse::default().with_transaction_states(states))
    })
}

pub fn list_transactions(req: Request, body: Bytes) -> Pending {
    let request: ListTransactionsRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    // v2 (KIP-1152): an RE2 pattern the whole transactional id must match;
    // empty or null means no filter, an invalid one fails the request.
    let pattern = match request.transactional_id_pattern.as_deref() {
        None | Some("") => None,
        Some(p) => match FullMatch::new(p) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::debug!(pattern = p, error = %e, "invalid transactional id pattern");
                return ready(
                    req.respond(
                        &ListTransactionsResponse::default()
                            .with_error_code(ResponseError::InvalidRegularExpression.code()),
                    ),
                );
            }
        },
    };
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        const STATES: [&str; 8] = [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "Dead",
            "PrepareEpochFence",
        ];
        let filters: Vec<String> = request
            .state_filters
            .iter()
            .map(|s| s.to_string())
            .collect();
        let unknown: Vec<StrBytes> = request
            .state_filters
            .iter()
            .filter(|s| !STATES.contains(&s.as_str()))
            .cloned()
            .collect();
        let now = now_ms();
        let all = match apis.txns.list().await {
            Ok(all) => all,
            Err(e) => {
                return req.respond(
                    &ListTransactionsResponse::default()
                        .with_unknown_state_filters(unknown)
                        .with_error_code(e.code()),
                )
            }
        };
        let listed = all
            .into_iter()
            .filter(|m| filters.is_empty() || filters.iter().any(|f| f == m.state.name()))
            .filter(|m| {
                request.producer_id_filters.is_empty()
                    || request
                        .producer_id_filters
                        .contains(&ProducerId(m.producer_id))
            })
            // v1 (KIP-994): only transactions running longer than the filter.
            // One with no transaction open has start time -1, and so counts,
            // as in Kafka, as running longer than any duration.
            .filter(|m| {
                request.duration_filter < 0
                    || now.saturating_sub(m.start_ms) > request.duration_filter
            })
            .filter(|m| {
                pattern
                    .as_ref()
                    .is_none_or(|p| p.matches(&m.transactional_id))
            })
            // Only the transactional ids the client may describe.
            .filter(|m| {
                req.ctx.authorize(
                    AclOperation::Describe,
                    ResourceType::TransactionalId,
                    &m.transactional_id,
                )
            })
            .map(|m| {
                ListedState::default()
                    .with_transactional_id(kafka_protocol::messages::TransactionalId(
                        StrBytes::from_string(m.transactional_id),
                    ))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(StrBytes::from_static_str(m.state.name()))
            })
            .collect();
        req.respond(
            &ListTransactionsResponse::default()
                .with_unknown_state_filters(unknown)
                .with_transaction_states(listed),
        )
    })
}
