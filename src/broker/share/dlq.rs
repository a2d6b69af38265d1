//! KIP-1191: share groups' dead-letter queue (Kafka's
//! `ShareGroupDLQStateManager`). With `share.version` 2 and a group's
//! `errors.deadletterqueue.topic.name` set, a record a consumer REJECTs,
//! or one archived at its delivery-count limit (released or timed out),
//! is written to that topic: one record per offset, carrying Kafka's
//! `__dlq.errors.*` headers, the original key and value only with
//! `errors.deadletterqueue.copy.record.enable`.
//!
//! The share partition archives the record at once and the write follows
//! on a writer task fed through a bounded queue ([`MAX_QUEUED`]), so no
//! share-partition lock is held across the write; as in Kafka, a failed
//! write is logged and the record stays archived (best effort).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::TopicIdPartition;
use crate::broker::partition::Partition;
use crate::broker::ReplicaManager;
use crate::record::batch::{batch_records, iter_batches, set_log_append_time};
use crate::record::builder::BatchBuilder;
use crate::record::default_record::records;
use crate::record::validator::validate_produce_records;

/// Dead letters queued for the writer at most; past it a dead letter is
/// dropped (logged and counted): the record stays archived.
pub const MAX_QUEUED: usize = 4096;

/// Kafka's DLQ record headers (`ProduceRequestHandler.HEADER_DLQ_*`).
pub const HEADER_TOPIC: &str = "__dlq.errors.topic";
pub const HEADER_PARTITION: &str = "__dlq.errors.partition";
pub const HEADER_OFFSET: &str = "__dlq.errors.offset";
pub const HEADER_GROUP: &str = "__dlq.errors.group";
pub const HEADER_DELIVERY_COUNT: &str = "__dlq.errors.delivery.count";
pub const HEADER_MESSAGE: &str = "__dlq.errors.message";

/// The topic config a DLQ topic must have set to `true`.
pub const TOPIC_DLQ_ENABLE: &str = "errors.deadletterqueue.group.enable";

/// Why a record went to the dead-letter queue (Kafka's
/// `ShareGroupDLQManager.CLIENT_REJECT` / `DELIVERY_COUNT_EXCEEDED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    ClientReject,
    DeliveryCountExceeded,
}

impl Cause {
    /// The `__dlq.errors.message` header's text, Kafka's.
    pub fn message(self) -> &'static str {
        match self {
            Cause::ClientReject => "Offset rejected by client.",
            Cause::DeliveryCountExceeded => "Offset delivery count exceeded the threshold.",
        }
    }
}

/// One archived record a share partition hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub group: String,
    pub tp: TopicIdPartition,
    pub offset: i64,
    pub delivery_count: i16,
    pub cause: Cause,
}

/// A dead letter with the group's DLQ settings at the time it was archived.
#[derive(Debug, Clone)]
pub struct DlqWrite {
    pub letter: DeadLetter,
    /// `errors.deadletterqueue.topic.name` (not blank).
    pub topic: String,
    /// `errors.deadletterqueue.copy.record.enable`.
    pub copy_record: bool,
    /// Whether this broker may create the topic itself (standalone).
    pub may_create: bool,
}

/// The queue in front of the writer task, started on the first dead letter.
#[derive(Default)]
pub struct DeadLetterQueue {
    tx: Mutex<Option<mpsc::Sender<DlqWrite>>>,
    /// Dead letters dropped because the queue was full.
    pub dropped: AtomicU64,
    /// DLQ records written.
    pub written: Arc<AtomicU64>,
}

impl DeadLetterQueue {
    /// Queues `w`; `start` receives the queue's far end the first time
    /// (it spawns the writer). False when the queue is full.
    pub fn offer(&self, w: DlqWrite, start: impl FnOnce(mpsc::Receiver<DlqWrite>)) -> bool {
        let tx = {
            let mut g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_ref() {
                Some(tx) if !tx.is_closed() => tx.clone(),
                _ => {
                    let (tx, rx) = mpsc::channel(MAX_QUEUED);
                    start(rx);
                    *g = Some(tx.clone());
                    tx
                }
            }
        };
        match tx.try_send(w) {
            Ok(()) => true,
            Err(e) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                let w = match e {
                    mpsc::error::TrySendError::Full(w) | mpsc::error::TrySendError::Closed(w) => w,
                };
                tracing::warn!(
                    group = %w.letter.group,
                    offset = w.letter.offset,
                    limit = MAX_QUEUED,
                    "share group dead-letter queue full; record archived without a DLQ write"
                );
                false
            }
        }
    }
}

/// The writer task: writes each queued dead letter off the request path.
pub async fn run(
    mut rx: mpsc::Receiver<DlqWrite>,
    replicas: Arc<ReplicaManager>,
    written: Arc<AtomicU64>,
) {
    while let Some(w) = rx.recv().await {
        let replicas = replicas.clone();
        // Creating a topic and appending block on the disk.
        let done = tokio::task::spawn_blocking(move || {
            let r = write(&replicas, &w);
            (w, r)
        })
        .await;
        match done {
            Ok((_, Ok(()))) => {
                written.fetch_add(1, Ordering::Relaxed);
            }
            Ok((w, Err(e))) => tracing::warn!(
                group = %w.letter.group,
                offset = w.letter.offset,
                dlq_topic = %w.topic,
                error = %e,
                "share group DLQ write failed; the record stays archived"
            ),
            Err(e) => tracing::warn!(error = %e, "share group DLQ writer failed"),
        }
    }
}

/// Kafka's `validateDlqTopic`: the reasons a configured DLQ topic is not
/// written to, in Kafka's order. `exists`: the topic's explicit configs.
pub fn validate_topic(
    group: &str,
    topic: &str,
    prefix: &str,
    exists: Option<&BTreeMap<String, String>>,
    auto_create: bool,
) -> Result<(), String> {
    if topic.is_empty() {
        return Err(format!(
            "Configured DLQ topic name in share group: {group} is empty."
        ));
    }
    if topic.starts_with("__") {
        return Err(format!("Configured DLQ topic name in share group: {group} cannot start with __, topic: {topic}."));
    }
    match exists {
        Some(configs) => {
            let enabled = configs
                .get(TOPIC_DLQ_ENABLE)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            if !enabled {
                return Err(format!("DLQ is not enabled on configured DLQ topic for share group: {group}, topic: {topic}."));
            }
        }
        None if !auto_create => {
            return Err(format!("DLQ topic does not exist and auto create is disabled on cluster for share group: {group}, topic: {topic}."));
        }
        None => {}
    }
    if !prefix.is_empty() && !topic.starts_with(prefix) {
        return Err(format!("Configured DLQ topic name does not comply with the DLQ topic prefix in share group: {group}, topic: {topic}, prefix: {prefix}."));
    }
    Ok(())
}

/// The headers of one DLQ record, in Kafka's order.
pub fn headers(letter: &DeadLetter, source_topic: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (HEADER_TOPIC, source_topic.as_bytes().to_vec()),
        (HEADER_PARTITION, letter.tp.1.to_string().into_bytes()),
        (HEADER_OFFSET, letter.offset.to_string().into_bytes()),
        (HEADER_GROUP, letter.group.as_bytes().to_vec()),
        (
            HEADER_DELIVERY_COUNT,
            letter.delivery_count.to_string().into_bytes(),
        ),
        (HEADER_MESSAGE, letter.cause.message().as_bytes().to_vec()),
    ]
}

/// Writes one dead letter: the topic validated (and created, configured
/// as Kafka creates it), the record appended to the partition Kafka picks
/// (the source partition modulo the DLQ topic's partition count).
fn write(replicas: &ReplicaManager, w: &DlqWrite) -> anyhow::Result<()> {
    let l = &w.letter;
    let config = replicas.current_config();
    let prefix = config.string("errors.deadletterqueue.topic.name.prefix");
    let auto_create =
        config.boolean("errors.deadletterqueue.auto.create.topics.enable") && w.may_create;
    let existing = replicas.topics.get(&w.topic);
    validate_topic(
        &l.group,
        &w.topic,
        prefix,
        existing.as_ref().map(|t| &t.configs),
        auto_create,
    )
    .map_err(anyhow::Error::msg)?;
    let dlq = match existing {
        Some(t) => t,
        None => {
            let configs = BTreeMap::from([
                (TOPIC_DLQ_ENABLE.to_string(), "true".to_string()),
                (
                    "message.timestamp.type".to_string(),
                    "CreateTime".to_string(),
                ),
            ]);
            let partitions = i32::try_from(config.int("num.partitions")).unwrap_or(1);
            match replicas.create_topic(&w.topic, partitions.max(1), 1, configs) {
                Ok(t) => t,
                // Another writer made it meanwhile.
                Err(_) if replicas.topics.get(&w.topic).is_some() => replicas
                    .topics
                    .get(&w.topic)
                    .ok_or_else(|| anyhow::anyhow!("DLQ topic {} vanished", w.topic))?,
                Err(e) => anyhow::bail!("creating DLQ topic {}: {}", w.topic, e.message),
            }
        }
    };
    let source = replicas
        .topics
        .get_by_id(&l.tp.0)
        .ok_or_else(|| anyhow::anyhow!("source topic {} is gone", l.tp.0))?;
    let count = i32::try_from(dlq.partitions.len())
        .unwrap_or(i32::MAX)
        .max(1);
    let target = dlq
        .partition(l.tp.1.rem_euclid(count))
        .ok_or_else(|| anyhow::anyhow!("DLQ topic {} has no partitions", w.topic))?
        .clone();
    let original = match (w.copy_record, source.partition(l.tp.1)) {
        (true, Some(p)) => original_record(p, l.offset),
        _ => None,
    };
    let hs = headers(l, &source.name);
    let hrefs: Vec<(&str, &[u8])> = hs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let (key, value) = original
        .as_ref()
        .map_or((None, None), |(k, v)| (k.as_deref(), v.as_deref()));
    append(&target, key, value, &hrefs)
}

/// A record's key and value (either may be null).
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The key and value of the record at `offset`, if it can still be read.
fn original_record(p: &Partition, offset: i64) -> Option<KeyValue> {
    let settings = p.settings();
    let max = usize::try_from(settings.max_message_bytes.max(1)).unwrap_or(1 << 20);
    let bytes = p.fetch(offset, max, true).ok()?.read().ok()?;
    for (at, h) in iter_batches(&bytes) {
        if h.last_offset() < offset || h.base_offset > offset {
            continue;
        }
        let batch = bytes.get(at..at + h.total_size())?;
        let section =
            batch_records(batch, crate::record::compression::decompression_budget(max)).ok()?;
        for r in records(&section, h.records_count).flatten() {
            if h.base_offset + i64::from(r.offset_delta) == offset {
                return Some((r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec)));
            }
        }
    }
    None
}

/// Appends one uncompressed record stamped now, validated as a producer's.
fn append(
    p: &Partition,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, &[u8])],
) -> anyhow::Result<()> {
    let now = crate::util::now_ms();
    let mut buf = BatchBuilder::new(now)
        .push(key, value, headers, now)
        .build();
    let settings = p.settings();
    let vcfg = settings.produce_validation();
    let mut validated = validate_produce_records(&buf, now, &vcfg)
        .map_err(|e| anyhow::anyhow!("DLQ record refused: {e}"))?;
    if settings.log_append_time {
        set_log_append_time(&mut buf, now).map_err(|e| anyhow::anyhow!("{e}"))?;
        for b in &mut validated.batches {
            b.header.max_timestamp = now;
        }
    }
    p.append(&buf, &validated)
        .map_err(|e| anyhow::anyhow!("appending the DLQ record: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(offset: i64) -> DeadLetter {
        DeadLetter {
            group: "g".into(),
            tp: (uuid::Uuid::nil(), 3),
            offset,
            delivery_count: 2,
            cause: Cause::ClientReject,
        }
    }

    #[test]
    fn the_queue_is_bounded() {
        let q = DeadLetterQueue::default();
        let mut kept = None;
        let w = |o| DlqWrite {
            letter: letter(o),
            topic: "dlq.t".into(),
            copy_record: false,
            may_create: true,
        };
        for o in 0..MAX_QUEUED as i64 {
            assert!(q.offer(w(o), |rx| kept = Some(rx)), "{o}");
        }
        assert!(kept.is_some(), "the writer was started once");
        assert!(!q.offer(w(-1), |_| panic!("started twice")));
        assert_eq!(q.dropped.load(Ordering::Relaxed), 1);
        // Drained, the queue takes dead letters again.
        if let Some(rx) = kept.as_mut() {
            assert_eq!(rx.try_recv().map(|w| w.letter.offset).ok(), Some(0));
        }
        assert!(q.offer(w(-2), |_| panic!("started twice")));
    }

    #[test]
    fn topics_are_validated_in_kafkas_order() {
        let on = BTreeMap::from([(TOPIC_DLQ_ENABLE.to_string(), "true".to_string())]);
        let off = BTreeMap::new();
        assert!(validate_topic("g", "dlq.x", "dlq.", Some(&on), false).is_ok());
        assert!(validate_topic("g", "dlq.x", "dlq.", None, true).is_ok());
        let e = |t, p, ex, a| validate_topic("g", t, p, ex, a).unwrap_err();
        assert!(e("", "dlq.", None, true).contains("is empty"));
        assert!(e("__x", "", None, true).contains("cannot start with __"));
        assert!(e("dlq.x", "dlq.", Some(&off), true).contains("DLQ is not enabled"));
        assert!(e("dlq.x", "dlq.", None, false).contains("auto create is disabled"));
        assert!(e("x", "dlq.", Some(&on), false).contains("prefix"));
        assert!(validate_topic("g", "x", "", Some(&on), false).is_ok());
    }

    #[test]
    fn headers_are_kafkas() {
        let mut l = letter(7);
        l.cause = Cause::DeliveryCountExceeded;
        let h = headers(&l, "src");
        let got: Vec<(&str, String)> = h
            .iter()
            .map(|(k, v)| (*k, String::from_utf8_lossy(v).into_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("__dlq.errors.topic", "src".to_string()),
                ("__dlq.errors.partition", "3".to_string()),
                ("__dlq.errors.offset", "7".to_string()),
                ("__dlq.errors.group", "g".to_string()),
                ("__dlq.errors.delivery.count", "2".to_string()),
                (
                    "__dlq.errors.message",
                    "Offset delivery count exceeded the threshold.".to_string()
                ),
            ]
        );
    }
}
