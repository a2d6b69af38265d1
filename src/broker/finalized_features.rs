//! A standalone broker's finalized feature levels (KIP-584), kept in
//! `__kastle_configs/finalized-features` (`epoch=N` and one `name=level`
//! per line): the levels a new directory starts at (Kafka's `format`,
//! `protocol::versions::bootstrap_levels`), written before its
//! `meta.properties` ([`FinalizedFeatureStore::format`]), and every
//! UpdateFeatures change, written atomically
//! before it is answered or seen. A directory an older kastle formatted has
//! no file until its first change; its other levels are the unrecorded ones
//! (`Feature::unrecorded`). A cluster broker reads its levels from the
//! metadata image instead (`controller::feature_control::from_image`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::broker::config_repository::CONFIGS_DIR;
use crate::protocol::versions::FinalizedFeatures;
use crate::util::fs::write_atomically;

const FILE: &str = "finalized-features";

pub struct FinalizedFeatureStore {
    path: PathBuf,
    current: RwLock<FinalizedFeatures>,
}

fn parse(path: &Path, text: &str) -> anyhow::Result<FinalizedFeatures> {
    let mut out = FinalizedFeatures {
        recorded: BTreeMap::new(),
        epoch: 0,
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line
            .split_once('=')
            .and_then(|(k, v)| Some((k.trim(), v.trim().parse::<i64>().ok()?)));
        match parsed {
            Some(("epoch", e)) if e >= 0 => out.epoch = e,
            Some((name, level))
                if name != "epoch" && (0..=i64::from(i16::MAX)).contains(&level) =>
            {
                out.recorded.insert(name.to_string(), level as i16);
            }
            _ => anyhow::bail!("{}: line {} is not name=level", path.display(), n + 1),
        }
    }
    Ok(out)
}

impl FinalizedFeatureStore {
    /// Records the levels a new directory starts at (epoch 0); called
    /// before its `meta.properties` is written (`LogDir::open`).
    pub fn format(log_dir: &Path, levels: &[(String, i16)]) -> anyhow::Result<()> {
        let dir = log_dir.join(CONFIGS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        write(&path, 0, &levels.iter().cloned().collect())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }

    /// Loads what a previous run persisted in `log_dir`: the levels written
    /// at format time and the changes since; a directory an older kastle
    /// formatted may have no file.
    pub fn load(log_dir: &Path) -> anyhow::Result<FinalizedFeatureStore> {
        let dir = log_dir.join(CONFIGS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FinalizedFeatures {
                recorded: BTreeMap::new(),
                epoch: 0,
            },
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        Ok(FinalizedFeatureStore {
            path,
            current: RwLock::new(current),
        })
    }

    pub fn current(&self) -> FinalizedFeatures {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `changes` durable, then visible; the epoch moves by one.
    pub fn apply(&self, changes: &[(String, i16)]) -> std::io::Result<()> {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        for (name, level) in changes {
            next.recorded.insert(name.clone(), *level);
        }
        next.epoch += 1;
        write(&self.path, next.epoch, &next.recorded)?;
        *guard = next;
        Ok(())
    }
}

fn write(path: &Path, epoch: i64, levels: &BTreeMap<String, i16>) -> std::io::Result<()> {
    let mut text = format!("epoch={epoch}\n");
    for (name, level) in levels {
        text.push_str(&format!("{name}={level}\n"));
    }
    write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_a_reload_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FinalizedFeatureStore::load(dir.path()).expect("load");
        assert_eq!(store.current().epoch, 0);
        assert!(store.current().consumer_protocol_enabled());
        store
            .apply(&[("group.version".to_string(), 0)])
            .expect("apply");
        let again = FinalizedFeatureStore::load(dir.path()).expect("reload");
        assert_eq!(again.current().epoch, 1);
        assert!(!again.current().consumer_protocol_enabled());
        std::fs::write(dir.path().join(CONFIGS_DIR).join(FILE), "group.version=x\n")
            .expect("write");
        assert!(FinalizedFeatureStore::load(dir.path()).is_err());
    }

    #[test]
    fn a_new_directory_records_its_levels_and_an_old_one_keeps_version_1() {
        use crate::protocol::versions::{bootstrap_levels, TRANSACTION_VERSION};
        let new = tempfile::tempdir().expect("tempdir");
        let levels = bootstrap_levels(&[]);
        FinalizedFeatureStore::format(new.path(), &levels).expect("format");
        let store = FinalizedFeatureStore::load(new.path()).expect("load");
        assert_eq!(store.current().level(TRANSACTION_VERSION), 2);
        assert_eq!(store.current().epoch, 0);
        // Pinned at format time, as `kafka-storage format --feature`.
        let pinned = tempfile::tempdir().expect("tempdir");
        let one = bootstrap_levels(&[(TRANSACTION_VERSION.to_string(), 1)]);
        FinalizedFeatureStore::format(pinned.path(), &one).expect("format");
        let store = FinalizedFeatureStore::load(pinned.path()).expect("load");
        assert_eq!(store.current().level(TRANSACTION_VERSION), 1);
        // An older kastle's directory (no file): version 1, nothing written,
        // and a later change records only itself.
        let old = tempfile::tempdir().expect("tempdir");
        let store = FinalizedFeatureStore::load(old.path()).expect("load");
        assert_eq!(store.current().level(TRANSACTION_VERSION), 1);
        assert!(!old.path().join(CONFIGS_DIR).join(FILE).exists());
        store
            .apply(&[("group.version".to_string(), 0)])
            .expect("apply");
        let again = FinalizedFeatureStore::load(old.path()).expect("reload");
        assert_eq!(again.current().level(TRANSACTION_VERSION), 1);
        store
            .apply(&[(TRANSACTION_VERSION.to_string(), 2)])
            .expect("apply");
        let again = FinalizedFeatureStore::load(old.path()).expect("reload");
        assert_eq!(again.current().level(TRANSACTION_VERSION), 2);
    }
}
