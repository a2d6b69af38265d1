//! A standalone broker's finalized feature levels (KIP-584): the levels
//! UpdateFeatures changed, kept in `__kastle_configs/finalized-features`
//! (`epoch=N` and one `name=level` per line) and written atomically before
//! the change is answered or seen. A cluster broker reads its levels from
//! the metadata image instead (`controller::feature_control::from_image`).

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
        changed: BTreeMap::new(),
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
                out.changed.insert(name.to_string(), level as i16);
            }
            _ => anyhow::bail!("{}: line {} is not name=level", path.display(), n + 1),
        }
    }
    Ok(out)
}

impl FinalizedFeatureStore {
    /// Loads what a previous run persisted in `log_dir`.
    pub fn load(log_dir: &Path) -> anyhow::Result<FinalizedFeatureStore> {
        let dir = log_dir.join(CONFIGS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FinalizedFeatures {
                changed: BTreeMap::new(),
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
            next.changed.insert(name.clone(), *level);
        }
        next.epoch += 1;
        let mut text = format!("epoch={}\n", next.epoch);
        for (name, level) in &next.changed {
            text.push_str(&format!("{name}={level}\n"));
        }
        write_atomically(&self.path, text.as_bytes())?;
        *guard = next;
        Ok(())
    }
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
}
