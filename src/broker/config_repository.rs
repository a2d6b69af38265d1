//! `ConfigRepository`: the dynamic configs of BROKER and GROUP resources,
//! persisted where Kafka keeps them in its metadata log (`ConfigRecord`s):
//! here, files in `<log.dirs>/__kastle_configs/`:
//!
//! - `broker-<node.id>.properties`: this broker's own dynamic configs;
//! - `broker-default.properties`: the cluster-wide defaults (resource "");
//! - `groups.properties`: group configs, one `<group>/<key>=<value>` line
//!   each (the group id escaped as a `.properties` key).
//!
//! Each file is replaced atomically (temp file, fsync, rename, fsync
//! directory) before the change is visible, so a change that was
//! acknowledged survives a crash. Topic configs live with their topic
//! (`TopicManager`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::parse_properties;
use crate::config::properties::escape;
use crate::util::fs::write_atomically;

pub const CONFIGS_DIR: &str = "__kastle_configs";
const GROUPS_FILE: &str = "groups.properties";
const DEFAULT_FILE: &str = "broker-default.properties";

/// A resource whose dynamic configs the repository keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// This broker (a node id in the request).
    Broker,
    /// The cluster-wide broker defaults (an empty name in the request).
    BrokerDefault,
    Group(String),
}

pub type Configs = BTreeMap<String, String>;

#[derive(Default)]
struct Stored {
    broker: Configs,
    broker_default: Configs,
    groups: BTreeMap<String, Configs>,
}

pub struct ConfigRepository {
    dir: PathBuf,
    node_id: i32,
    stored: Mutex<Stored>,
}

impl ConfigRepository {
    /// Loads what earlier runs persisted (nothing on a new log directory).
    pub fn load(log_dir: &Path, node_id: i32) -> anyhow::Result<ConfigRepository> {
        let dir = log_dir.join(CONFIGS_DIR);
        fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let repo = ConfigRepository {
            dir,
            node_id,
            stored: Mutex::new(Stored::default()),
        };
        let broker = repo.read(&repo.broker_file())?;
        let broker_default = repo.read(&repo.dir.join(DEFAULT_FILE))?;
        let mut groups: BTreeMap<String, Configs> = BTreeMap::new();
        for (k, v) in repo.read(&repo.dir.join(GROUPS_FILE))? {
            let (group, key) = k.rsplit_once('/').ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: entry {k:?} is not <group>/<key>",
                    repo.dir.join(GROUPS_FILE).display()
                )
            })?;
            groups
                .entry(group.to_string())
                .or_default()
                .insert(key.to_string(), v);
        }
        *repo.lock() = Stored {
            broker,
            broker_default,
            groups,
        };
        Ok(repo)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn broker_file(&self) -> PathBuf {
        self.dir.join(format!("broker-{}.properties", self.node_id))
    }

    fn read(&self, path: &Path) -> anyhow::Result<Configs> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Configs::new()),
            Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
        };
        let entries =
            parse_properties(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(entries.into_iter().collect())
    }

    /// The dynamic configs of `resource` (empty when none are set).
    pub fn get(&self, resource: &ConfigResource) -> Configs {
        let s = self.lock();
        match resource {
            ConfigResource::Broker => s.broker.clone(),
            ConfigResource::BrokerDefault => s.broker_default.clone(),
            ConfigResource::Group(g) => s.groups.get(g).cloned().unwrap_or_default(),
        }
    }

    /// The groups that have dynamic configs, by name.
    pub fn group_names(&self) -> Vec<String> {
        self.lock().groups.keys().cloned().collect()
    }

    /// Replaces the dynamic configs of `resource`: persisted first, then
    /// visible. An empty set removes the resource's entry.
    pub fn put(&self, resource: &ConfigResource, configs: Configs) -> std::io::Result<()> {
        let mut s = self.lock();
        match resource {
            ConfigResource::Broker => {
                write_atomically(&self.broker_file(), render(&configs).as_bytes())?;
                s.broker = configs;
            }
            ConfigResource::BrokerDefault => {
                write_atomically(&self.dir.join(DEFAULT_FILE), render(&configs).as_bytes())?;
                s.broker_default = configs;
            }
            ConfigResource::Group(g) => {
                let mut groups = s.groups.clone();
                if configs.is_empty() {
                    groups.remove(g);
                } else {
                    groups.insert(g.clone(), configs);
                }
                write_atomically(
                    &self.dir.join(GROUPS_FILE),
                    render_groups(&groups).as_bytes(),
                )?;
                s.groups = groups;
            }
        }
        Ok(())
    }
}

const HEADER: &str =
    "# kastle dynamic configs (written by kastle; change them with kafka-configs)\n";

fn render(configs: &Configs) -> String {
    let mut s = HEADER.to_string();
    for (k, v) in configs {
        s.push_str(&format!("{}={}\n", escape(k, true), escape(v, false)));
    }
    s
}

fn render_groups(groups: &BTreeMap<String, Configs>) -> String {
    let mut s = HEADER.to_string();
    for (g, configs) in groups {
        for (k, v) in configs {
            s.push_str(&format!(
                "{}/{}={}\n",
                escape(g, true),
                escape(k, true),
                escape(v, false)
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_survive_a_reload_and_odd_group_names_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let repo = ConfigRepository::load(dir.path(), 3).unwrap();
        let mut b = Configs::new();
        b.insert("log.cleaner.backoff.ms".into(), "20000".into());
        repo.put(&ConfigResource::Broker, b.clone()).unwrap();
        let mut d = Configs::new();
        d.insert("min.insync.replicas".into(), "1".into());
        repo.put(&ConfigResource::BrokerDefault, d.clone()).unwrap();
        let odd = "g =:#!\\/x\n y".to_string();
        let mut g = Configs::new();
        g.insert("consumer.session.timeout.ms".into(), "50000".into());
        g.insert("errors.deadletterqueue.topic.name".into(), " dlq\\1".into());
        repo.put(&ConfigResource::Group(odd.clone()), g.clone())
            .unwrap();
        repo.put(&ConfigResource::Group("other".into()), g.clone())
            .unwrap();
        repo.put(&ConfigResource::Group("other".into()), Configs::new())
            .unwrap();

        let again = ConfigRepository::load(dir.path(), 3).unwrap();
        assert_eq!(again.get(&ConfigResource::Broker), b);
        assert_eq!(again.get(&ConfigResource::BrokerDefault), d);
        assert_eq!(again.get(&ConfigResource::Group(odd)), g);
        assert!(again.get(&ConfigResource::Group("other".into())).is_empty());
        assert!(dir
            .path()
            .join(CONFIGS_DIR)
            .join("broker-3.properties")
            .exists());
        // Another node id does not see node 3's own configs.
        let node4 = ConfigRepository::load(dir.path(), 4).unwrap();
        assert!(node4.get(&ConfigResource::Broker).is_empty());
        assert_eq!(node4.get(&ConfigResource::BrokerDefault), d);
    }

    #[test]
    fn a_torn_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join(CONFIGS_DIR);
        fs::create_dir_all(&cdir).unwrap();
        fs::write(cdir.join(GROUPS_FILE), "no-slash-here=1\n").unwrap();
        let e = ConfigRepository::load(dir.path(), 1).err().unwrap();
        assert!(e.to_string().contains("groups.properties"), "{e}");
    }
}
