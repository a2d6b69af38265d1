//! Taking over a log directory Apache Kafka 4.x wrote (a single KRaft node,
//! combined broker and controller): the cluster metadata in Kafka's
//! `__cluster_metadata-0/` (read by `storage::kafka_metadata_log`) becomes
//! a standalone kastle's own files once, before anything opens them:
//! topics with their ids, partition counts and configs (`__kastle_topics/`),
//! broker and group configs (`__kastle_configs/`), feature levels and the
//! producer ids Kafka's controller handed out. The partition directories
//! (data, `__consumer_offsets`, `__transaction_state`) are read as they
//! are. `__kastle_configs/kafka-metadata-import` records the metadata log
//! offset imported, so a restart does not import again, while a log that
//! Kafka advanced since (Kafka ran on the directory again) is imported anew.
//!
//! Kafka's files are never written, renamed or deleted here (going back,
//! [`handback`] writes Kafka's metadata snapshot). What cannot be
//! carried over faithfully (a multi-node quorum, replicas in another log
//! directory, SCRAM credentials, quotas, ACLs, a feature level beyond
//! kastle's) stops the start with a message naming the file and the cause.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use crate::broker::config_repository::{ConfigRepository, ConfigResource, CONFIGS_DIR};
use crate::broker::finalized_features::FinalizedFeatureStore;
use crate::broker::topics::{self, topic_id_string};
use crate::config::BrokerConfig;
use crate::metadata::image::CONFIG_RESOURCE_TOPIC;
use crate::metadata::MetadataImage;
use crate::protocol::versions::FEATURES;
use crate::storage::kafka_metadata_log::{self, METADATA_LOG_DIR};
use crate::util::fs::write_atomically;

/// The import record, in `__kastle_configs/`.
pub const IMPORT_FILE: &str = "kafka-metadata-import";
/// Kafka's `ConfigResource.Type` codes of the configs carried over.
const CONFIG_RESOURCE_BROKER: i8 = 4;
const CONFIG_RESOURCE_GROUP: i8 = 32;
/// Kafka's `DirectoryId`s that name no particular directory: UNASSIGNED,
/// and MIGRATING (a replica from before directory assignment).
const UNASSIGNED_DIR: u128 = 0;
const MIGRATING_DIR: u128 = 2;

/// What the import record says.
#[derive(Debug, PartialEq, Eq)]
enum ImportState {
    /// No import ever began.
    None,
    /// An import began and did not finish: it may be done again.
    InProgress,
    /// Done, up to this metadata log offset.
    Done(i64),
    /// A hand-back to Kafka began and did not finish: kastle's own files
    /// are current (and a snapshot of them may already be in Kafka's log).
    HandingBack,
}

fn read_state(path: &Path) -> anyhow::Result<ImportState> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ImportState::None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let entries =
        crate::config::parse_properties(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim())
    };
    match (get("state"), get("next.offset")) {
        (Some("importing"), _) => Ok(ImportState::InProgress),
        (Some("handing-back"), _) => Ok(ImportState::HandingBack),
        (Some("done"), Some(o)) => {
            Ok(ImportState::Done(o.parse().map_err(|e| {
                anyhow!("{}: bad next.offset {o:?}: {e}", path.display())
            })?))
        }
        _ => bail!("{}: not an import record kastle wrote", path.display()),
    }
}

/// Imports Kafka's metadata when `config.log_dir` holds a Kafka metadata
/// log not imported yet (or advanced since). `directory_id` is the log
/// directory's own (`meta.properties`). Runs before the topic registry,
/// the config repository and the feature store open.
pub fn import_if_present(config: &BrokerConfig, directory_id: Option<&str>) -> anyhow::Result<()> {
    let log_dir = &config.log_dir;
    let meta_dir = log_dir.join(METADATA_LOG_DIR);
    if !kafka_metadata_log::is_kafka_metadata_log(&meta_dir) {
        return Ok(());
    }
    let state_path = log_dir.join(CONFIGS_DIR).join(IMPORT_FILE);
    let state = read_state(&state_path)?;
    let contents = kafka_metadata_log::read(&meta_dir)
        .map_err(|e| anyhow!("{e}; kastle leaves {} as it is", meta_dir.display()))?;
    match state {
        ImportState::Done(o) if o == contents.next_offset => return Ok(()),
        ImportState::HandingBack => {
            // The metadata log holds nothing newer than kastle's files: at
            // most the snapshot the interrupted hand-back made of them.
            write_done(&state_path, &contents)?;
            tracing::warn!(
                "an interrupted hand-back to Apache Kafka left {}: kastle's own files are current; run `kastle storage kafka-handback` again to hand the directory back",
                state_path.display()
            );
            return Ok(());
        }
        ImportState::Done(o) if o > contents.next_offset => bail!(
            "{} ends at offset {} but kastle imported it up to {o} ({}): the metadata log lost records; kastle leaves both as they are",
            meta_dir.display(),
            contents.next_offset,
            state_path.display()
        ),
        ImportState::None => {
            let own = topics::topic_files(log_dir)
                .with_context(|| format!("listing {}", log_dir.join(topics::TOPICS_DIR).display()))?;
            if let Some(f) = own.first() {
                bail!(
                    "{} holds both Apache Kafka's metadata log ({}) and kastle's own topics ({}), and no record of an import: which is current is unknown; kastle leaves both as they are",
                    log_dir.display(),
                    meta_dir.display(),
                    f.display()
                );
            }
        }
        // Kafka ran on the directory after the import: its metadata is
        // the newer.
        ImportState::Done(_) | ImportState::InProgress => {}
    }
    let mut image = MetadataImage::default();
    for r in &contents.records {
        image
            .apply(&r.record)
            .map_err(|e| anyhow!("{}: {e}", meta_dir.display()))?;
    }
    check_importable(config, directory_id, &meta_dir, contents.voters, &image)?;
    std::fs::create_dir_all(log_dir.join(CONFIGS_DIR))
        .with_context(|| format!("creating {}", log_dir.join(CONFIGS_DIR).display()))?;
    write_atomically(
        &state_path,
        b"# kastle: importing Apache Kafka's metadata log\nstate=importing\n",
    )
    .with_context(|| format!("writing {}", state_path.display()))?;
    write_image(config, &image)?;
    write_done(&state_path, &contents)?;
    tracing::info!(
        "imported Apache Kafka's metadata from {} up to offset {}: {} topics",
        meta_dir.display(),
        contents.next_offset,
        image.topics.len()
    );
    Ok(())
}

/// Records the import done up to the end of `contents`.
fn write_done(
    state_path: &Path,
    contents: &kafka_metadata_log::MetadataLogContents,
) -> anyhow::Result<()> {
    write_atomically(
        state_path,
        format!(
            "# kastle: Apache Kafka's metadata log ({METADATA_LOG_DIR}) imported; Kafka's files are untouched\nstate=done\nnext.offset={}\nsnapshot={}\n",
            contents.next_offset,
            contents
                .snapshot
                .map_or("none".to_string(), |(o, e)| format!("{o:020}-{e:010}.checkpoint"))
        )
        .as_bytes(),
    )
    .with_context(|| format!("writing {}", state_path.display()))
}

/// Refuses what a standalone kastle cannot carry over as it is.
fn check_importable(
    config: &BrokerConfig,
    directory_id: Option<&str>,
    meta_dir: &Path,
    voters: Option<usize>,
    image: &MetadataImage,
) -> anyhow::Result<()> {
    let node = config.node_id;
    let refuse = |what: String| -> anyhow::Result<()> {
        bail!(
            "{}: {what}; kastle runs one standalone node and leaves the directory as it is",
            meta_dir.display()
        )
    };
    if let Some(n) = voters.filter(|n| *n > 1) {
        refuse(format!("the KRaft quorum has {n} voters"))?;
    }
    if let Some(other) = image.brokers.keys().find(|b| **b != node) {
        refuse(format!(
            "broker {other} is registered besides node.id {node}"
        ))?;
    }
    for t in image.topics.values() {
        for (p, reg) in &t.partitions {
            if reg.replicas != [node] {
                refuse(format!(
                    "partition {}-{p} has replicas {:?}, not only node.id {node}",
                    t.name, reg.replicas
                ))?;
            }
            for d in &reg.directories {
                let named = !matches!(d.as_u128(), UNASSIGNED_DIR | MIGRATING_DIR);
                if named && directory_id != Some(topic_id_string(d).as_str()) {
                    refuse(format!(
                        "partition {}-{p} lives in log directory {} but {} is directory {}",
                        t.name,
                        topic_id_string(d),
                        config.log_dir.display(),
                        directory_id.unwrap_or("(no directory.id)")
                    ))?;
                }
            }
        }
        let count = t.partitions.len() as i32;
        if t.partitions.keys().copied().ne(0..count) {
            refuse(format!(
                "topic {} has partitions that are not 0..{count}",
                t.name
            ))?;
        }
    }
    for (name, level) in &image.features {
        match FEATURES.iter().find(|f| f.name == name) {
            Some(f) if (f.min..=f.max).contains(level) || *level == 0 => {}
            // A level above kastle's of a feature that only enables APIs
            // (ELR, share and streams groups): kastle runs it at its highest
            // level (see `imported_features`).
            Some(f) if API_ONLY_FEATURES.contains(&f.name) => {}
            Some(f) => refuse(format!(
                "feature {name} is at level {level}, kastle supports {}..={}",
                f.min, f.max
            ))?,
            None => refuse(format!(
                "feature {name} (level {level}) is unknown to kastle"
            ))?,
        }
    }
    if !image.scram.is_empty() {
        refuse("SCRAM credentials are not imported by kastle yet".into())?;
    }
    if !image.client_quotas.0.is_empty() {
        refuse("client quotas are not imported by kastle yet".into())?;
    }
    if !image.acls.is_empty() {
        refuse("ACLs are not imported by kastle yet".into())?;
    }
    for (rtype, rname) in image.configs.keys() {
        let known = match *rtype {
            CONFIG_RESOURCE_TOPIC | CONFIG_RESOURCE_GROUP => true,
            CONFIG_RESOURCE_BROKER => rname.is_empty() || *rname == node.to_string(),
            _ => false,
        };
        if !known {
            refuse(format!(
                "configs of resource type {rtype} {rname:?} are not imported by kastle"
            ))?;
        }
    }
    Ok(())
}

/// The image's feature levels as kastle finalizes them: a feature kastle
/// does not implement (its highest level 0) stays at 0, with a warning.
/// Features whose levels only enable APIs, so a Kafka level above kastle's
/// runs at kastle's highest; any other level kastle lacks is refused.
const API_ONLY_FEATURES: [&str; 3] = [
    "eligible.leader.replicas.version",
    "share.version",
    "streams.version",
];

fn imported_features(image: &MetadataImage) -> Vec<(String, i16)> {
    let mut out = Vec::new();
    for (name, level) in &image.features {
        match FEATURES.iter().find(|f| f.name == name) {
            Some(f) if *level > f.max && API_ONLY_FEATURES.contains(&f.name) => {
                tracing::warn!(
                    "feature {name} is finalized at level {level} in Kafka's metadata; kastle implements it up to level {} and runs it there",
                    f.max
                );
                out.push((name.clone(), f.max));
            }
            _ => out.push((name.clone(), *level)),
        }
    }
    // Kafka records no level-0 feature; kastle records it, or its
    // directory would read the level of one an older kastle wrote.
    for f in FEATURES {
        if !image.features.iter().any(|(name, _)| name == f.name) {
            out.push((f.name.to_string(), 0));
        }
    }
    out
}

/// The dynamic configs of topic `name` in the image.
fn topic_configs(image: &MetadataImage, name: &str) -> BTreeMap<String, String> {
    image
        .configs
        .get(&(CONFIG_RESOURCE_TOPIC, name.to_string()))
        .cloned()
        .unwrap_or_default()
}

/// Writes the image as a standalone kastle's files.
fn write_image(config: &BrokerConfig, image: &MetadataImage) -> anyhow::Result<()> {
    let log_dir = &config.log_dir;
    let mut written: Vec<PathBuf> = Vec::new();
    for t in image.topics.values() {
        let configs = topic_configs(image, &t.name);
        topics::write_topic_file(log_dir, &t.name, &t.id, t.partitions.len() as i32, &configs)
            .with_context(|| format!("writing topic {} into {}", t.name, log_dir.display()))?;
        written.push(
            log_dir
                .join(topics::TOPICS_DIR)
                .join(format!("{}.properties", t.id)),
        );
    }
    // A re-import: kastle's topic files Kafka's metadata no longer has
    // (kastle's own files; the partition directories stay).
    for f in topics::topic_files(log_dir)? {
        if !written.contains(&f) {
            std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
        }
    }
    let repo = ConfigRepository::load(log_dir, config.node_id)?;
    let empty = BTreeMap::new();
    let broker = |name: &str| {
        image
            .configs
            .get(&(CONFIG_RESOURCE_BROKER, name.to_string()))
            .unwrap_or(&empty)
            .clone()
    };
    repo.put(&ConfigResource::BrokerDefault, broker(""))
        .context("writing the broker default configs")?;
    repo.put(&ConfigResource::Broker, broker(&config.node_id.to_string()))
        .context("writing the broker configs")?;
    for ((rtype, name), configs) in &image.configs {
        if *rtype == CONFIG_RESOURCE_GROUP {
            repo.put(&ConfigResource::Group(name.clone()), configs.clone())
                .with_context(|| format!("writing the configs of group {name}"))?;
        }
    }
    let features = imported_features(image);
    FinalizedFeatureStore::load(log_dir)?
        .apply(&features)
        .context("writing the finalized feature levels")?;
    crate::broker::producer_ids::raise_floor(log_dir, image.next_producer_id)?;
    Ok(())
}

/// The files of `__kastle_configs/` an import writes, whose content a
/// hand-back carries into Kafka's metadata.
fn imported_config_file(name: &str, node_id: i32) -> bool {
    name == IMPORT_FILE
        || name == "finalized-features"
        || name == "broker-default.properties"
        || name == "groups.properties"
        || name == format!("broker-{node_id}.properties")
}

mod handback;
pub use handback::{hand_back, ControllerEndpoint};

#[cfg(test)]
mod tests;
