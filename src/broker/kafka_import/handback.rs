//! `kastle storage kafka-handback`: a standalone kastle's log directory
//! made one Apache Kafka 4.x starts on and finds kastle's state in. kastle
//! keeps its metadata in its own files (`__kastle_topics/`,
//! `__kastle_configs/`, `__kastle_producer_ids`), which Kafka neither
//! reads nor tolerates (its log manager takes every directory for a
//! partition); the hand-back writes that state as a KRaft snapshot in
//! `__cluster_metadata-0/` (`storage::kafka_metadata_log::writer`), turns
//! kastle's per-partition aborted-transaction index into Kafka's
//! per-segment `.txnindex` files, and only then removes kastle's files.
//!
//! The snapshot's id is chosen so Kafka takes it over its own log: the
//! epoch is the highest leader epoch in the metadata log, the offset one
//! past the log's end, so Kafka's `truncateToLatestSnapshot` starts the log
//! at the snapshot. The KRaft quorum's voters are carried from Kafka's log,
//! or named with `--controller` for a directory kastle created.
//!
//! Crash safety, step by step: the import record first says
//! `state=handing-back` (kastle's files stay current: a start in this state
//! keeps them and marks the snapshot imported); the `.txnindex` files and
//! the snapshot are each written under a temporary name and renamed; then
//! the import record goes (a start now finds both kastle's topics and a
//! metadata log with no import record and refuses, touching nothing:
//! running the hand-back again finishes it); then kastle's topics, configs
//! and producer-id file (a start now imports the snapshot). Run again on a
//! handed-back directory, it does nothing.
//!
//! What the snapshot cannot carry is refused, naming it: SCRAM credentials
//! and ACLs kastle holds, a feature Kafka does not know.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use uuid::Uuid;

use super::{imported_config_file, IMPORT_FILE};
use crate::broker::config_repository::{ConfigRepository, ConfigResource, CONFIGS_DIR};
use crate::broker::finalized_features::FinalizedFeatureStore;
use crate::broker::topics;
use crate::metadata::image::CONFIG_RESOURCE_TOPIC;
use crate::metadata::records::{
    ConfigRecord, FeatureLevelRecord, PartitionRecord, ProducerIdsRecord, TopicRecord,
};
use crate::metadata::{MetadataRecord, RecordAndVersion};
use crate::protocol::versions::FEATURES;
use crate::storage::kafka_metadata_log::{self, writer, METADATA_LOG_DIR};
use crate::storage::leader_epoch::{parse_checkpoint, LEADER_EPOCH_CHECKPOINT};
use crate::storage::txn_index;
use crate::util::fs::{sync_dir, write_atomically};

const CONFIG_RESOURCE_BROKER: i8 = 4;
const CONFIG_RESOURCE_GROUP: i8 = 32;
/// metadata.version 3.7-IV2 (17): PartitionRecord version 1, with the
/// replicas' log directories (Kafka's `partitionRecordVersion`).
const MV_DIRECTORY_ASSIGNMENT: i16 = 17;
/// The features Kafka 4.4 finalizes with FeatureLevelRecords (kraft.version
/// is a control record of the metadata log).
const KAFKA_FEATURES: [&str; 6] = [
    "metadata.version",
    "transaction.version",
    "group.version",
    "eligible.leader.replicas.version",
    "share.version",
    "streams.version",
];
/// The kastle files in `__kastle_configs/` whose content has no place in
/// Kafka's metadata yet.
const NOT_CARRIED: [(&str, &str); 2] =
    [("scram-credentials", "SCRAM credentials"), ("acls", "ACLs")];

/// The controller endpoint a directory kastle created gets as its single
/// KRaft voter: `NAME://HOST:PORT` as in Kafka's `listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for ControllerEndpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not NAME://HOST:PORT (e.g. CONTROLLER://localhost:9093)");
        let (listener, rest) = s.split_once("://").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        if listener.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(ControllerEndpoint {
            listener: listener.to_string(),
            host: host.trim_matches(['[', ']']).to_string(),
            port: port.parse().map_err(|_| bad())?,
        })
    }
}

/// Whether a kastle state file or directory is in `log_dir`.
fn kastle_state_present(log_dir: &Path) -> anyhow::Result<bool> {
    if log_dir.join(topics::TOPICS_DIR).exists()
        || log_dir.join(CONFIGS_DIR).exists()
        || crate::broker::producer_ids::file_path(log_dir).exists()
    {
        return Ok(true);
    }
    for e in std::fs::read_dir(log_dir).with_context(|| format!("listing {}", log_dir.display()))? {
        let e = e.with_context(|| format!("listing {}", log_dir.display()))?;
        if e.path().join(txn_index::TXN_INDEX_FILE).exists() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses kastle state the snapshot cannot carry.
fn check_carried(log_dir: &Path, node_id: i32) -> anyhow::Result<()> {
    let dir = log_dir.join(CONFIGS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if imported_config_file(&name, node_id) || name.ends_with(".tmp") {
            continue;
        }
        let text = std::fs::read_to_string(e.path())
            .with_context(|| format!("reading {}", e.path().display()))?;
        let empty = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        match NOT_CARRIED.iter().find(|(f, _)| *f == name) {
            Some(_) if empty => {}
            Some((_, what)) => bail!(
                "{}: kastle holds {what}, which the hand-back does not write into Kafka's metadata yet; remove them through kastle (or drop the file) first. {} is left as it is",
                e.path().display(),
                log_dir.display()
            ),
            None => bail!(
                "{}: a file the hand-back does not know how to carry to Kafka; {} is left as it is",
                e.path().display(),
                log_dir.display()
            ),
        }
    }
    Ok(())
}

fn record(record: MetadataRecord, version: i16) -> RecordAndVersion {
    RecordAndVersion { record, version }
}

fn config_records(
    out: &mut Vec<RecordAndVersion>,
    rtype: i8,
    name: &str,
    c: &BTreeMap<String, String>,
) {
    for (k, v) in c {
        out.push(record(
            MetadataRecord::Config(ConfigRecord {
                resource_type: rtype,
                resource_name: name.to_string(),
                name: k.clone(),
                value: Some(v.clone()),
            }),
            0,
        ));
    }
}

/// The latest leader epoch of the partition in `dir` (0 with none).
fn leader_epoch(dir: &Path) -> anyhow::Result<i32> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let entries = parse_checkpoint(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(entries.last().map_or(0, |e| e.epoch).max(0))
}

/// kastle's state as Kafka's metadata records, metadata.version first.
/// Returns the records and the partition directories.
fn state_records(
    log_dir: &Path,
    node_id: i32,
    directory_id: Uuid,
    kafka_next_producer_id: i64,
) -> anyhow::Result<(Vec<RecordAndVersion>, Vec<std::path::PathBuf>)> {
    let mut out = Vec::new();
    let features = FinalizedFeatureStore::load(log_dir)?.current();
    for name in features.recorded.keys() {
        if !FEATURES.iter().any(|f| f.name == name) {
            bail!("feature {name} is finalized in kastle but unknown to Kafka 4.4: it cannot be handed back");
        }
    }
    let mv = features.level("metadata.version");
    for name in KAFKA_FEATURES {
        let level = features.level(name);
        if level > 0 {
            out.push(record(
                MetadataRecord::FeatureLevel(FeatureLevelRecord {
                    name: name.to_string(),
                    feature_level: level,
                }),
                0,
            ));
        }
    }
    let next_producer_id = crate::broker::producer_ids::floor(log_dir)?.max(kafka_next_producer_id);
    if next_producer_id > 0 {
        out.push(record(
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: node_id,
                broker_epoch: 0,
                next_producer_id,
            }),
            0,
        ));
    }
    let partition_version = if mv >= MV_DIRECTORY_ASSIGNMENT { 1 } else { 0 };
    let mut dirs = Vec::new();
    let mut topic_configs = Vec::new();
    for f in topics::topic_files(log_dir)? {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let (name, id, count, configs) =
            topics::parse_topic_file(&text).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        out.push(record(
            MetadataRecord::Topic(TopicRecord {
                name: name.clone(),
                topic_id: id,
            }),
            0,
        ));
        for p in 0..count {
            let dir = topics::partition_dir(log_dir, &name, p);
            let epoch = leader_epoch(&dir)?;
            out.push(record(
                MetadataRecord::Partition(PartitionRecord {
                    partition_id: p,
                    topic_id: id,
                    replicas: vec![node_id],
                    isr: vec![node_id],
                    removing_replicas: Vec::new(),
                    adding_replicas: Vec::new(),
                    leader: node_id,
                    leader_recovery_state: 0,
                    leader_epoch: epoch,
                    partition_epoch: epoch,
                    directories: if partition_version >= 1 {
                        vec![directory_id]
                    } else {
                        Vec::new()
                    },
                    eligible_leader_replicas: None,
                    last_known_elr: None,
                }),
                partition_version,
            ));
            dirs.push(dir);
        }
        topic_configs.push((name, configs));
    }
    for (name, configs) in &topic_configs {
        config_records(&mut out, CONFIG_RESOURCE_TOPIC, name, configs);
    }
    if log_dir.join(CONFIGS_DIR).exists() {
        let repo = ConfigRepository::load(log_dir, node_id)?;
        config_records(
            &mut out,
            CONFIG_RESOURCE_BROKER,
            "",
            &repo.get(&ConfigResource::BrokerDefault),
        );
        config_records(
            &mut out,
            CONFIG_RESOURCE_BROKER,
            &node_id.to_string(),
            &repo.get(&ConfigResource::Broker),
        );
        for g in repo.group_names() {
            let c = repo.get(&ConfigResource::Group(g.clone()));
            config_records(&mut out, CONFIG_RESOURCE_GROUP, &g, &c);
        }
    }
    Ok((out, dirs))
}

/// Removes `path` (a file or a directory tree) if it is there.
fn remove(path: &Path, removed: &mut Vec<String>) -> anyhow::Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Ok(()) => {
            removed.push(path.display().to_string());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Hands `log_dir` to Apache Kafka (see the module doc). `controller`: the
/// single voter's endpoint when the directory has no Kafka metadata log
/// with voters. Returns what was done.
pub fn hand_back(
    log_dir: &Path,
    node_id: i32,
    controller: Option<&ControllerEndpoint>,
) -> anyhow::Result<String> {
    let dir = crate::broker::log_dir::LogDir::open(log_dir, node_id, None, |d| {
        bail!(
            "{} has no meta.properties: nothing to hand back",
            d.display()
        )
    })?;
    let directory_id = dir
        .directory_id
        .as_deref()
        .and_then(|d| {
            use base64::Engine;
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(d)
                .ok()?;
            Uuid::from_slice(&b).ok()
        })
        .ok_or_else(|| {
            anyhow!(
                "{}: no valid directory.id, which Kafka's metadata names this directory by",
                log_dir.join("meta.properties").display()
            )
        })?;
    let meta_dir = log_dir.join(METADATA_LOG_DIR);
    let kafka = if kafka_metadata_log::is_kafka_metadata_log(&meta_dir) {
        Some(kafka_metadata_log::read(&meta_dir).map_err(|e| anyhow!("{e}"))?)
    } else {
        None
    };
    if !kastle_state_present(log_dir)? {
        if kafka.is_some() {
            return Ok(format!(
                "{} holds no kastle state: it is Apache Kafka's already",
                log_dir.display()
            ));
        }
        bail!(
            "{} holds neither kastle's state nor a Kafka metadata log",
            log_dir.display()
        );
    }
    check_carried(log_dir, node_id)?;
    let (kraft_version, voters) = match (controller, &kafka) {
        (Some(c), _) => (
            writer::kraft_version_value(1),
            Some(
                writer::single_voter_value(node_id, directory_id, &c.listener, &c.host, c.port)
                    .map_err(|e| anyhow!("{e}"))?,
            ),
        ),
        (None, Some(k)) if k.kraft_version_value.is_some() || k.voters.is_none() => (
            k.kraft_version_value
                .clone()
                .unwrap_or_else(|| writer::kraft_version_value(0)),
            k.voters_value.clone(),
        ),
        _ => bail!(
            "{} has no Kafka metadata log naming the KRaft voters: give the controller listener Kafka will run with, as --controller NAME://HOST:PORT",
            meta_dir.display()
        ),
    };
    let mut kafka_image = crate::metadata::MetadataImage::default();
    for r in kafka.iter().flat_map(|k| &k.records) {
        kafka_image
            .apply(&r.record)
            .map_err(|e| anyhow!("{}: {e}", meta_dir.display()))?;
    }
    let (records, partition_dirs) =
        state_records(log_dir, node_id, directory_id, kafka_image.next_producer_id)?;
    let epoch = kafka.as_ref().map_or(0, |k| k.last_epoch.max(0));
    let end_offset = kafka.as_ref().map_or(0, |k| k.next_offset) + 1;
    let bytes = writer::snapshot_bytes(
        epoch,
        crate::util::time::now_ms(),
        Some(&kraft_version),
        voters.as_deref(),
        &records,
    )
    .map_err(|e| anyhow!("encoding the metadata snapshot: {e}"))?;

    // 1. kastle's files stay current until the snapshot is in place.
    let configs_dir = log_dir.join(CONFIGS_DIR);
    std::fs::create_dir_all(&configs_dir)
        .with_context(|| format!("creating {}", configs_dir.display()))?;
    let state_path = configs_dir.join(IMPORT_FILE);
    write_atomically(
        &state_path,
        b"# kastle: handing the directory back to Apache Kafka; kastle's files are current\nstate=handing-back\n",
    )
    .with_context(|| format!("writing {}", state_path.display()))?;
    // 2. Kafka's per-segment aborted-transaction indexes.
    let mut aborted = 0;
    for e in std::fs::read_dir(log_dir).with_context(|| format!("listing {}", log_dir.display()))? {
        let e = e.with_context(|| format!("listing {}", log_dir.display()))?;
        if e.path().join(txn_index::TXN_INDEX_FILE).exists() || partition_dirs.contains(&e.path()) {
            aborted += txn_index::split_into_segment_indexes(&e.path())
                .map_err(|err| anyhow!("{}: {err}", e.path().display()))?;
        }
    }
    // 3. The snapshot.
    let snapshot = writer::write_snapshot(&meta_dir, end_offset, epoch, &bytes)
        .with_context(|| format!("writing a metadata snapshot into {}", meta_dir.display()))?;
    // 4. kastle's state, the import record first.
    let mut removed = Vec::new();
    remove(&state_path, &mut removed)?;
    sync_dir(&configs_dir).with_context(|| format!("syncing {}", configs_dir.display()))?;
    remove(&log_dir.join(topics::TOPICS_DIR), &mut removed)?;
    sync_dir(log_dir).with_context(|| format!("syncing {}", log_dir.display()))?;
    remove(&configs_dir, &mut removed)?;
    remove(
        &crate::broker::producer_ids::file_path(log_dir),
        &mut removed,
    )?;
    sync_dir(log_dir).with_context(|| format!("syncing {}", log_dir.display()))?;
    drop(dir);
    Ok(format!(
        "{} is ready for Apache Kafka: wrote {} ({} metadata records: {} partitions), {aborted} aborted transactions into per-segment .txnindex files; removed kastle's {}",
        log_dir.display(),
        snapshot.display(),
        records.len(),
        partition_dirs.len(),
        removed.join(", ")
    ))
}

#[cfg(test)]
mod tests;
