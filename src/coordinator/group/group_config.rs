//! `GroupConfigManager`: the group coordinator's group configs (the GROUP
//! config resource of Kafka 4.x, KIP-848 era; keys and validation are
//! `broker::group_config`, Kafka's `GroupConfig`). A standalone node
//! describes and alters them itself (persisted in the `ConfigRepository`);
//! a cluster broker takes them from the metadata image (GROUP
//! ConfigRecords the controller validated and wrote) and never alters them
//! itself: its handlers forward the changes to the controller.
//!
//! These keys configure KIP-848 consumer groups, share groups and streams
//! groups. They are stored, validated and described as Kafka does; of
//! them, KIP-848 consumer groups read `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms` (`handlers::consumer_group`), share
//! groups the `share.*` keys of their sessions, locks, delivery limit and
//! start offset (`handlers::share_group`); the others take effect nowhere
//! yet.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::broker::config_helper::{config_source, config_synonyms, ConfigEntry, Layers, Synonym};
use crate::broker::config_repository::{ConfigRepository, ConfigResource, Configs};
use crate::broker::dynamic_config::{
    apply_alter_ops, AlterOp, Alteration, ConfigChangeError, DynamicBrokerConfig,
};
use crate::broker::group_config::{broker_value, validate_group_configs, GROUP_KEYS};
use crate::broker::metadata_cache::MetadataCache;
use crate::config::keys::{broker_config_synonyms, broker_key, render};

/// `ConfigResource.Type.GROUP`: the image's key of a group's configs.
const CONFIG_RESOURCE_GROUP: i8 = 32;

/// Describes and alters group configs (Kafka's group config handling in
/// `ConfigHelper` and the controller, and the coordinator's
/// `GroupConfigManager`).
pub struct GroupConfigManager {
    repository: Arc<ConfigRepository>,
    broker: Arc<DynamicBrokerConfig>,
    /// A cluster broker's metadata image: the groups' configs are its
    /// GROUP ConfigRecords (Kafka's `DynamicConfigPublisher` feeding the
    /// coordinator's `GroupConfigManager`). `None` on a standalone node.
    image: Option<Arc<MetadataCache>>,
}

impl GroupConfigManager {
    /// A standalone node's: group configs persisted in `repository`.
    pub fn new(repository: Arc<ConfigRepository>, broker: Arc<DynamicBrokerConfig>) -> Self {
        GroupConfigManager {
            repository,
            broker,
            image: None,
        }
    }

    /// A cluster broker's: group configs read from the metadata image in
    /// `cache`, altered only through the controller.
    pub fn for_cluster(
        repository: Arc<ConfigRepository>,
        broker: Arc<DynamicBrokerConfig>,
        cache: Arc<MetadataCache>,
    ) -> Self {
        GroupConfigManager {
            repository,
            broker,
            image: Some(cache),
        }
    }

    /// The group's explicitly set configs (Kafka's
    /// `GroupConfigManager.groupConfig`): a cluster broker's from its
    /// latest metadata image, a standalone node's from its repository.
    pub fn group_configs(&self, group: &str) -> Configs {
        match &self.image {
            Some(cache) => cache
                .image()
                .configs
                .get(&(CONFIG_RESOURCE_GROUP, group.to_string()))
                .cloned()
                .unwrap_or_default(),
            None => self
                .repository
                .get(&ConfigResource::Group(group.to_string())),
        }
    }

    /// The groups that have configs (Kafka's `GroupConfigManager.groupIds`,
    /// what ListConfigResources lists for GROUP), by name.
    pub fn group_ids(&self) -> Vec<String> {
        match &self.image {
            Some(cache) => cache
                .image()
                .configs
                .keys()
                .filter(|(t, _)| *t == CONFIG_RESOURCE_GROUP)
                .map(|(_, name)| name.clone())
                .collect(),
            None => self.repository.group_names(),
        }
    }

    /// The group's configs (the set ones, then every other non-internal
    /// key with the broker's default); `wanted` filters by name.
    pub fn describe(
        &self,
        group: &str,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ConfigEntry>, ConfigChangeError> {
        if group.is_empty() {
            return Err(ConfigChangeError {
                code: ResponseError::InvalidRequest,
                message: "Group name must not be empty".into(),
            });
        }
        let set = self.group_configs(group);
        let current = self.broker.current();
        let (per, default) = (self.broker.per_broker(), self.broker.cluster_default());
        let layers = Layers::of(&self.broker, &per, &default);
        let mut out = Vec::new();
        for k in GROUP_KEYS {
            if (k.internal && !set.contains_key(k.name)) || !wanted(k.name) {
                continue;
            }
            let broker_default = k.broker_synonym.and_then(|b| broker_value(&current, b));
            let value = set
                .get(k.name)
                .map(|v| render(k.kind, v))
                .or_else(|| broker_default.clone())
                .or_else(|| k.default.map(str::to_string));
            let mut synonyms = Vec::new();
            if set.contains_key(k.name) {
                synonyms.push(Synonym {
                    name: k.name.to_string(),
                    value: value.clone(),
                    source: config_source::GROUP_CONFIG,
                });
            }
            match k.broker_synonym {
                Some(b) if broker_key(b).is_some() => {
                    synonyms.extend(config_synonyms(
                        b,
                        &broker_config_synonyms(b, true),
                        &layers,
                        false,
                    ));
                }
                Some(b) => synonyms.push(Synonym {
                    name: b.to_string(),
                    value: broker_default,
                    source: config_source::DEFAULT_CONFIG,
                }),
                None => synonyms.push(Synonym {
                    name: k.name.to_string(),
                    value: k.default.map(str::to_string),
                    source: config_source::DEFAULT_CONFIG,
                }),
            }
            let mut entry =
                ConfigEntry::new(k.name, value, synonyms, false, false, k.kind.config_type());
            entry.documentation = k.doc.to_string();
            out.push(entry);
        }
        Ok(out)
    }

    /// AlterConfigs / IncrementalAlterConfigs on a group: the resulting set
    /// is validated as a whole, then persisted.
    pub fn alter(
        &self,
        group: &str,
        alteration: Alteration<'_>,
        validate_only: bool,
    ) -> Result<(), ConfigChangeError> {
        if group.is_empty() {
            return Err(ConfigChangeError {
                code: ResponseError::InvalidRequest,
                message: "Default group resources are not allowed.".into(),
            });
        }
        if self.image.is_some() {
            // The handlers forward a cluster broker's changes.
            return Err(ConfigChangeError {
                code: ResponseError::NotController,
                message: format!(
                    "group {group}: a cluster's group configs are altered by its controller"
                ),
            });
        }
        let resource = ConfigResource::Group(group.to_string());
        let new = match alteration {
            Alteration::Replace(configs) => configs.clone(),
            Alteration::Incremental(ops) => apply_group_ops(self.repository.get(&resource), ops)?,
        };
        validate_group_configs(&new, &self.broker.current())?;
        if validate_only {
            return Ok(());
        }
        self.repository
            .put(&resource, new)
            .map_err(|e| ConfigChangeError {
                code: ResponseError::KafkaStorageError,
                message: format!("persisting the configs of group {group}: {e}"),
            })?;
        tracing::info!(group, "group configs changed");
        Ok(())
    }
}

/// The controller applies group operations itself: APPEND and SUBTRACT are
/// refused for every group key (none is splittable there).
fn apply_group_ops(configs: Configs, ops: &[AlterOp]) -> Result<Configs, ConfigChangeError> {
    apply_alter_ops(
        configs,
        ops,
        |o, what| {
            Err(ConfigChangeError {
                code: ResponseError::InvalidConfig,
                message: format!(
                    "Can't {what} to key {} because its type is not LIST.",
                    o.name
                ),
            })
        },
        |other| ConfigChangeError {
            code: ResponseError::InvalidRequest,
            message: format!("Unknown operations type {other}"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::dynamic_config::op;
    use crate::config::BrokerConfig;

    fn manager() -> (tempfile::TempDir, GroupConfigManager) {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, _) =
            BrokerConfig::from_entries(vec![("log.dirs".into(), dir.path().display().to_string())])
                .unwrap();
        let repo = Arc::new(ConfigRepository::load(dir.path(), 1).unwrap());
        let dynamic = Arc::new(DynamicBrokerConfig::load(Arc::new(cfg), repo.clone()).unwrap());
        (dir, GroupConfigManager::new(repo, dynamic))
    }

    fn set(k: &str, v: &str) -> AlterOp {
        AlterOp {
            name: k.into(),
            op: op::SET,
            value: Some(v.into()),
        }
    }

    #[test]
    fn group_configs_validate_against_the_broker_bounds() {
        let (_d, m) = manager();
        let refuse = |ops: &[AlterOp]| {
            m.alter("g", Alteration::Incremental(ops), false)
                .unwrap_err()
                .message
        };
        assert_eq!(
            refuse(&[set("consumer.session.timeout.ms", "1000")]),
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."
        );
        assert_eq!(refuse(&[set("foo", "1")]), "Unknown group config name: foo");
        assert_eq!(
            refuse(&[set("consumer.session.timeout.ms", "abc")]),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert!(refuse(&[set("share.auto.offset.reset", "middle")]).contains("by_duration"));
        assert!(refuse(&[set("streams.assignor.name", "nope")])
            .contains("Registered assignors are: [sticky]."));
        // Within the broker's bounds the session always outlasts the heartbeat.
        m.alter(
            "g",
            Alteration::Incremental(&[
                set("consumer.heartbeat.interval.ms", "15000"),
                set("consumer.session.timeout.ms", "45000"),
            ]),
            false,
        )
        .unwrap();
        let append = AlterOp {
            name: "streams.rack.aware.assignment.tags".into(),
            op: op::APPEND,
            value: Some("zone".into()),
        };
        assert!(refuse(&[append]).starts_with("Can't APPEND"));
        assert_eq!(
            m.alter(
                "",
                Alteration::Incremental(&[set("consumer.session.timeout.ms", "50000")]),
                false
            )
            .unwrap_err()
            .code,
            ResponseError::InvalidRequest
        );
        m.alter(
            "g",
            Alteration::Incremental(&[set("share.auto.offset.reset", "by_duration:PT1H")]),
            false,
        )
        .unwrap();
    }

    #[test]
    fn a_cluster_brokers_group_configs_are_the_images() {
        let (dir, standalone) = manager();
        standalone
            .alter(
                "g",
                Alteration::Incremental(&[set("consumer.session.timeout.ms", "50000")]),
                false,
            )
            .unwrap();
        let cache = Arc::new(MetadataCache::new());
        let m = GroupConfigManager::for_cluster(
            standalone.repository.clone(),
            standalone.broker.clone(),
            cache.clone(),
        );
        // The repository's copy is not the cluster's.
        assert!(m.group_configs("g").is_empty());
        assert_eq!(standalone.group_ids(), vec!["g".to_string()]);
        assert!(m.group_ids().is_empty());
        let mut image = crate::metadata::MetadataImage::default();
        image.configs.insert(
            (CONFIG_RESOURCE_GROUP, "g".into()),
            [(
                "consumer.session.timeout.ms".to_string(),
                "55000".to_string(),
            )]
            .into(),
        );
        cache.publish(image, 1);
        assert_eq!(m.group_ids(), vec!["g".to_string()]);
        let d = m
            .describe("g", &|k| k == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!(
            (d[0].value.as_deref(), d[0].source),
            (Some("55000"), config_source::GROUP_CONFIG)
        );
        let e = m
            .alter(
                "g",
                Alteration::Incremental(&[set("consumer.session.timeout.ms", "50000")]),
                false,
            )
            .unwrap_err();
        assert_eq!(e.code, ResponseError::NotController);
        drop(dir);
    }

    #[test]
    fn group_configs_describe_with_group_and_broker_sources() {
        let (_d, m) = manager();
        m.alter(
            "g",
            Alteration::Incremental(&[
                set("consumer.session.timeout.ms", "50000"),
                set("streams.num.warmup.replicas", "3"),
            ]),
            false,
        )
        .unwrap();
        let all = m.describe("g", &|_| true).unwrap();
        assert_eq!(
            all.len(),
            22,
            "21 public keys and the internal one that is set"
        );
        let s = all
            .iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!(
            (s.value.as_deref(), s.source),
            (Some("50000"), config_source::GROUP_CONFIG)
        );
        assert_eq!(s.synonyms[1].name, "group.consumer.session.timeout.ms");
        let a = all
            .iter()
            .find(|e| e.name == "streams.assignor.name")
            .unwrap();
        assert_eq!(
            (a.value.as_deref(), a.source),
            (Some("sticky"), config_source::DEFAULT_CONFIG)
        );
        let r = all
            .iter()
            .find(|e| e.name == "share.auto.offset.reset")
            .unwrap();
        assert_eq!(r.synonyms[0].name, "share.auto.offset.reset");
        let w = all
            .iter()
            .find(|e| e.name == "streams.num.warmup.replicas")
            .unwrap();
        assert_eq!(w.synonyms[1].value.as_deref(), Some("2"));
        assert!(m.describe("", &|_| true).is_err());
    }
}
