//! Share-partition state on its way to `__share_group_state` (KIP-932):
//! the topic made on first need (standalone), each changed share
//! partition's state persisted and awaited before an answer (Kafka's
//! `writeShareGroupState`), and the share sessions a closed connection
//! opened ended, their members' records released at once (Kafka's
//! `ShareSessionCache` disconnect listener). Before each write, the records
//! archived for a dead-letter queue are handed to its writer (KIP-1191).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::broker::share::dlq::{self, DlqWrite};
use crate::broker::share::TopicIdPartition;
use crate::coordinator::group::writer::map_append_error;
use crate::coordinator::share::SHARE_STATE_TOPIC;
use crate::handlers::share_group::share_settings;
use crate::handlers::KafkaApis;

/// Standalone: makes sure `__share_group_state` exists and the share
/// coordinator has it (created on the first write, as Kafka creates it on
/// first need). Blocking when it creates.
pub(crate) fn ensure_share_state_topic(apis: &KafkaApis) -> Result<(), ResponseError> {
    if apis.share_state.has_topic() {
        return Ok(());
    }
    let c = &apis.share_state.config;
    let created = apis
        .replicas
        .get_or_create_internal_topic(SHARE_STATE_TOPIC, c.num_partitions, c.topic_configs())
        .and_then(|t| apis.share_state.adopt_topic(t));
    created.map_err(|e| {
        tracing::warn!(error = %e, "cannot create {SHARE_STATE_TOPIC}");
        ResponseError::CoordinatorNotAvailable
    })
}

/// A connection closed (Kafka's `ShareSessionCache` disconnect listener):
/// the share sessions it opened end and the records their members hold are
/// released at once, their state persisted, as a session closed with the
/// final epoch.
pub(crate) async fn on_connection_closed(apis: Arc<KafkaApis>, connection: u64) {
    for (group, member) in apis.share.connection_sessions(connection) {
        let limit = share_settings(&apis, &group, 0).limits.delivery_count_limit;
        let released = apis
            .share
            .release_connection_session(&group, &member, connection, limit);
        tracing::debug!(
            group,
            member,
            connection,
            partitions = released.len(),
            "share session ended with its connection"
        );
        let failed = persist_share_state(&apis, &group, released).await;
        if !failed.is_empty() {
            tracing::warn!(
                group,
                member,
                ?failed,
                "share state after a disconnect not persisted"
            );
        }
    }
}

/// KIP-1191: the records the share partitions archived by REJECT or at the
/// delivery-count limit go to the writer of the group's dead-letter queue
/// when `share.version` ≥ 2 (Kafka's `supportsShareGroupDLQ`) and the
/// group names a DLQ topic (`errors.deadletterqueue.topic.name`; blank is
/// none, Kafka's `isDLQEnabledForGroup`); else they are only archived.
pub(crate) fn dispatch_dead_letters(apis: &KafkaApis) {
    let letters = apis.share.take_dead_letters();
    if letters.is_empty()
        || apis
            .finalized_features()
            .level(crate::protocol::versions::SHARE_VERSION)
            < 2
    {
        return;
    }
    let mut settings: BTreeMap<String, Option<(String, bool)>> = BTreeMap::new();
    for letter in letters {
        let target = settings
            .entry(letter.group.clone())
            .or_insert_with(|| {
                let c = apis.group_configs.group_configs(&letter.group);
                let topic = c
                    .get("errors.deadletterqueue.topic.name")
                    .filter(|t| !t.is_empty())?
                    .clone();
                let copy = c
                    .get("errors.deadletterqueue.copy.record.enable")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                Some((topic, copy))
            })
            .clone();
        let Some((topic, copy_record)) = target else {
            continue;
        };
        let w = DlqWrite {
            letter,
            topic,
            copy_record,
            may_create: apis.cluster.is_none(),
        };
        let replicas = apis.replicas.clone();
        let written = apis.share.dlq.written.clone();
        apis.share.dlq.offer(w, move |rx| {
            tokio::spawn(dlq::run(rx, replicas, written));
        });
    }
}

/// Kafka's `writeShareGroupState` after a change: persists the state of
/// `group`'s share partitions `tps` that changed and waits until it is
/// durable. Returns the error of each partition whose state could not be
/// made durable. A cluster broker keeps the state in memory only.
pub(crate) async fn persist_share_state(
    apis: &KafkaApis,
    group: &str,
    tps: impl IntoIterator<Item = TopicIdPartition>,
) -> BTreeMap<TopicIdPartition, i16> {
    dispatch_dead_letters(apis);
    let mut failed = BTreeMap::new();
    if apis.cluster.is_some() {
        return failed;
    }
    let tps: Vec<TopicIdPartition> = tps.into_iter().collect();
    if tps.is_empty() {
        return failed;
    }
    if let Err(e) = ensure_share_state_topic(apis) {
        return tps.into_iter().map(|tp| (tp, e.code())).collect();
    }
    let mut waits = Vec::new();
    for tp in tps {
        let leader_epoch = apis
            .replicas
            .topics
            .get_by_id(&tp.0)
            .and_then(|t| t.partition(tp.1).map(|p| p.leader_epoch()))
            .unwrap_or(-1);
        match apis.share_state.write(group, tp, leader_epoch, || {
            apis.share.persisted_state(group, tp)
        }) {
            Ok(Some(w)) => waits.push((tp, w)),
            Ok(None) => {}
            Err(e) => {
                failed.insert(tp, map_append_error(e, false));
            }
        }
    }
    let timeout = apis.share_state.config.write_timeout_ms;
    for (tp, w) in waits {
        if let Err(code) = w.wait(timeout).await {
            tracing::warn!(
                group,
                partition = tp.1,
                code,
                "share state write not durable"
            );
            failed.insert(tp, code);
        }
    }
    failed
}
