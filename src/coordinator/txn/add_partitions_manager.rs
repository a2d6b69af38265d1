//! Kafka's `AddPartitionsToTxnManager`: a partition leader's KIP-890
//! verification, before the first transactional batch of a transaction is
//! appended to one of its partitions (or a transactional offset commit to
//! `__consumer_offsets`), that the transaction coordinator has the
//! partition in the producer's open transaction. The coordinator is the
//! leader of the transactional id's `__transaction_state` partition: this
//! broker (answered in place) or another one, asked with a verify-only
//! AddPartitionsToTxn (v5, CLUSTER_ACTION) on the inter-broker listener.
//! For a transaction version 2 client (Produce v12+, TxnOffsetCommit v5+)
//! the question is not verify-only: the coordinator adds the partition to
//! the transaction, starting it if needed (KIP-890 part 2).
//! The answer is translated as Kafka's manager translates it, so callers
//! see the same codes wherever the coordinator lives.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::Mutex as AsyncMutex;

use crate::broker::metadata_cache::MetadataCache;
use crate::clients::network_client::{ClientLimits, NetworkClient};
use crate::clients::ClientSecurity;
use crate::coordinator::txn::coordinator::TV_2;
use crate::coordinator::txn::marker_channel::{route, Route};
use crate::coordinator::txn::transaction_log::TXN_TOPIC;
use crate::coordinator::txn::TransactionCoordinator;

/// The AddPartitionsToTxn version brokers send (the batched, verify-only
/// capable form, the latest as Kafka's
/// `AddPartitionsToTxnRequest.Builder.forBroker` builds it).
const BROKER_VERSION: i16 = 5;
/// Kafka's `add.partitions.to.txn.retry.backoff.ms` and
/// `add.partitions.to.txn.retry.backoff.max.ms` defaults: how often and how
/// long an add answered CONCURRENT_TRANSACTIONS is asked again.
const ADD_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);
const ADD_RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// Which errors the client of the verified request understands (Kafka's
/// `TransactionSupportedOperation`, from the Produce / TxnOffsetCommit
/// version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportedOperation {
    /// Produce ≤ v10, TxnOffsetCommit ≤ v3: TRANSACTION_ABORTABLE unknown,
    /// answered as INVALID_TXN_STATE.
    DefaultError,
    /// Produce v11, TxnOffsetCommit v4: TRANSACTION_ABORTABLE understood.
    GenericErrorSupported,
    /// Produce v12+, TxnOffsetCommit v5+ (transaction version 2): the
    /// partition is added to the transaction, not only verified.
    AddPartition,
}

impl SupportedOperation {
    pub fn for_produce(version: i16) -> SupportedOperation {
        if version > 11 {
            SupportedOperation::AddPartition
        } else if version > 10 {
            SupportedOperation::GenericErrorSupported
        } else {
            SupportedOperation::DefaultError
        }
    }

    pub fn for_txn_offset_commit(version: i16) -> SupportedOperation {
        if version > 4 {
            SupportedOperation::AddPartition
        } else if version > 3 {
            SupportedOperation::GenericErrorSupported
        } else {
            SupportedOperation::DefaultError
        }
    }

    /// Kafka's `supportsEpochBump`: the request is not verify-only.
    fn adds(self) -> bool {
        self == SupportedOperation::AddPartition
    }
}

/// The partitions that failed verification, with Kafka's codes; every
/// partition not in it is in the transaction.
pub type Unverified = HashMap<(String, i32), ResponseError>;

/// One coordinator broker's connection; requests to it go one at a time.
struct CoordinatorLink {
    addr: String,
    client: Arc<AsyncMutex<NetworkClient>>,
}

pub struct AddPartitionsToTxnManager {
    node_id: i32,
    txns: Arc<TransactionCoordinator>,
    /// A cluster broker's image and inter-broker listener; `None` on a
    /// standalone broker, which coordinates every transactional id.
    cluster: Option<(Arc<MetadataCache>, String)>,
    links: Mutex<HashMap<i32, CoordinatorLink>>,
    limits: ClientLimits,
    /// The inter-broker listener's security.
    security: Arc<ClientSecurity>,
}

impl AddPartitionsToTxnManager {
    pub fn new(
        node_id: i32,
        txns: Arc<TransactionCoordinator>,
        cluster: Option<(Arc<MetadataCache>, String)>,
        limits: ClientLimits,
        security: Arc<ClientSecurity>,
    ) -> AddPartitionsToTxnManager {
        AddPartitionsToTxnManager {
            node_id,
            txns,
            cluster,
            links: Mutex::new(HashMap::new()),
            limits,
            security,
        }
    }

    /// Verifies that `partitions` are in the open transaction of
    /// `producer_id` at `epoch`, or with [`SupportedOperation::AddPartition`]
    /// adds them to it (Kafka's `addOrVerifyTransaction`).
    pub async fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        operation: SupportedOperation,
    ) -> Unverified {
        if partitions.is_empty() {
            return Unverified::new();
        }
        // An add meeting the end of the previous transaction is retried
        // here, briefly (Kafka's `maybeRetryOnConcurrentTransactions`:
        // retrying the whole produce request costs the client more).
        let started = tokio::time::Instant::now();
        loop {
            let answer = self
                .ask_coordinator(transactional_id, producer_id, epoch, partitions, operation)
                .await;
            let concurrent = matches!(&answer, Err(ResponseError::ConcurrentTransactions))
                || matches!(&answer, Ok(codes)
                    if codes.contains(&Some(ResponseError::ConcurrentTransactions)));
            if !operation.adds() || !concurrent || started.elapsed() >= ADD_RETRY_TIMEOUT {
                return translate(partitions, answer, operation);
            }
            tokio::time::sleep(ADD_RETRY_BACKOFF).await;
        }
    }

    /// One question to the coordinator of `transactional_id`.
    async fn ask_coordinator(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        operation: SupportedOperation,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let destination = match &self.cluster {
            None => Route::Local,
            Some((cache, listener)) => {
                let image = cache.image();
                let p = self.txns.partition_for(transactional_id);
                route(&image, self.node_id, listener, TXN_TOPIC, p)
            }
        };
        match destination {
            // The coordinator's answer to an add is one error for the whole
            // transaction (Kafka's `handleAddPartitionsToTransaction`).
            Route::Local if operation.adds() => self
                .txns
                .add_partitions(
                    transactional_id,
                    producer_id,
                    epoch,
                    partitions,
                    false,
                    BROKER_VERSION,
                    TV_2,
                )
                .await
                .map(|()| vec![None; partitions.len()]),
            Route::Local => {
                self.txns
                    .verify_partitions(transactional_id, producer_id, epoch, partitions)
            }
            Route::Remote(broker, addr) => {
                self.ask(
                    broker,
                    &addr,
                    transactional_id,
                    producer_id,
                    epoch,
                    partitions,
                    operation.adds(),
                )
                .await
            }
            // No alive leader of the id's partition (Kafka's
            // `getTransactionCoordinator` finding none).
            Route::Deleted | Route::Unknown => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// Sends the verify-only (or, with `add`, adding) request to the
    /// coordinator `broker` and reads its per-partition answer (in
    /// `partitions`' order).
    #[allow(clippy::too_many_arguments)]
    async fn ask(
        &self,
        broker: i32,
        addr: &str,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        add: bool,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let client = self.link(broker, addr);
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    transactional_id.to_string(),
                )))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_verify_only(!add)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            AddPartitionsToTxnTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                .with_partitions(ps)
                        })
                        .collect(),
                ),
        ]);
        let response = {
            let mut c = client.lock().await;
            c.send(&request, BROKER_VERSION).await
        };
        match response {
            Ok(r) => read_response(&r, transactional_id, partitions),
            Err(e) => {
                tracing::warn!(broker, transactional_id, error = %e, "AddPartitionsToTxn verification failed on the network");
                Err(ResponseError::NetworkException)
            }
        }
    }

    fn link(&self, broker: i32, addr: &str) -> Arc<AsyncMutex<NetworkClient>> {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        match links.get(&broker) {
            Some(l) if l.addr == addr => l.client.clone(),
            // New, or the broker came back at another address.
            _ => {
                let client = Arc::new(AsyncMutex::new(
                    NetworkClient::new(
                        addr,
                        &format!("broker-{}-txn-verification", self.node_id),
                        self.limits,
                    )
                    .with_security(self.security.clone()),
                ));
                links.insert(
                    broker,
                    CoordinatorLink {
                        addr: addr.to_string(),
                        client: client.clone(),
                    },
                );
                client
            }
        }
    }
}

/// The coordinator's answer for this transaction, per partition in
/// `partitions`' order; a top-level error is the whole transaction's
/// (CLUSTER_AUTHORIZATION_FAILED becomes INVALID_TXN_STATE: a client must
/// not see the broker's own authorization failure).
fn read_response(
    r: &AddPartitionsToTxnResponse,
    transactional_id: &str,
    partitions: &[(String, i32)],
) -> Result<Vec<Option<ResponseError>>, ResponseError> {
    if r.error_code != 0 {
        let e =
            ResponseError::try_from_code(r.error_code).unwrap_or(ResponseError::UnknownServerError);
        return Err(if e == ResponseError::ClusterAuthorizationFailed {
            ResponseError::InvalidTxnState
        } else {
            e
        });
    }
    let mut codes: HashMap<(&str, i32), i16> = HashMap::new();
    for t in r
        .results_by_transaction
        .iter()
        .filter(|t| t.transactional_id.0.as_str() == transactional_id)
    {
        for tr in &t.topic_results {
            for p in &tr.results_by_partition {
                codes.insert(
                    (tr.name.0.as_str(), p.partition_index),
                    p.partition_error_code,
                );
            }
        }
    }
    Ok(partitions
        .iter()
        .map(|(t, p)| match codes.get(&(t.as_str(), *p)) {
            Some(0) => None,
            Some(c) => {
                Some(ResponseError::try_from_code(*c).unwrap_or(ResponseError::UnknownServerError))
            }
            // The coordinator left it out: not verified.
            None => Some(ResponseError::InvalidTxnState),
        })
        .collect())
}

/// Kafka's `AddPartitionsToTxnHandler` translation: PRODUCER_FENCED is
/// answered INVALID_PRODUCER_EPOCH (what producers expect here), and
/// TRANSACTION_ABORTABLE INVALID_TXN_STATE to clients that predate it.
fn translate(
    partitions: &[(String, i32)],
    answer: Result<Vec<Option<ResponseError>>, ResponseError>,
    operation: SupportedOperation,
) -> Unverified {
    let fix = |e: ResponseError| match e {
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ResponseError::TransactionAbortable if operation == SupportedOperation::DefaultError => {
            ResponseError::InvalidTxnState
        }
        other => other,
    };
    match answer {
        Err(e) => partitions.iter().map(|p| (p.clone(), fix(e))).collect(),
        Ok(codes) => partitions
            .iter()
            .zip(codes)
            .filter_map(|(p, c)| c.map(|e| (p.clone(), fix(e))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    };

    fn parts() -> Vec<(String, i32)> {
        vec![
            ("a".to_string(), 0),
            ("a".to_string(), 1),
            ("b".to_string(), 0),
        ]
    }

    fn response(codes: &[(&str, i32, i16)]) -> AddPartitionsToTxnResponse {
        let mut topics: BTreeMap<&str, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
        for (t, p, c) in codes {
            topics.entry(t).or_default().push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(*c),
            );
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(vec![
            AddPartitionsToTxnResult::default()
                .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                .with_topic_results(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            AddPartitionsToTxnTopicResult::default()
                                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                .with_results_by_partition(ps)
                        })
                        .collect(),
                ),
        ])
    }

    #[test]
    fn per_partition_answers_are_translated_as_kafkas_manager_does() {
        let abortable = ResponseError::TransactionAbortable.code();
        let r = response(&[("a", 0, 0), ("a", 1, abortable), ("b", 0, 0)]);
        let answer = read_response(&r, "tx", &parts());
        let old = translate(&parts(), answer.clone(), SupportedOperation::DefaultError);
        assert_eq!(
            old,
            Unverified::from([(("a".to_string(), 1), ResponseError::InvalidTxnState)])
        );
        let new = translate(&parts(), answer, SupportedOperation::GenericErrorSupported);
        assert_eq!(
            new,
            Unverified::from([(("a".to_string(), 1), ResponseError::TransactionAbortable)])
        );
    }

    #[test]
    fn whole_transaction_errors_reach_every_partition() {
        let fenced = Err(ResponseError::ProducerFenced);
        let u = translate(&parts(), fenced, SupportedOperation::GenericErrorSupported);
        assert_eq!(u.len(), 3);
        assert!(u
            .values()
            .all(|e| *e == ResponseError::InvalidProducerEpoch));
        // The broker's own authorization failure is not shown to clients.
        let r = AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        assert_eq!(
            read_response(&r, "tx", &parts()),
            Err(ResponseError::InvalidTxnState)
        );
        // A partition the coordinator did not answer for is not verified.
        let r = response(&[("a", 0, 0), ("a", 1, 0)]);
        let u = translate(
            &parts(),
            read_response(&r, "tx", &parts()),
            SupportedOperation::DefaultError,
        );
        assert_eq!(
            u,
            Unverified::from([(("b".to_string(), 0), ResponseError::InvalidTxnState)])
        );
    }
}
