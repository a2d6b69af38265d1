//! `MetadataImage`: the cluster as the metadata log says it is (brokers,
//! topics and partitions, configs, ACLs, the producer-id block, features,
//! SCRAM credentials and client quotas), built
//! by applying records in log order. Each record is checked against the
//! image before it changes anything, with the invariants Kafka's
//! `ClusterDelta`, `TopicsDelta` and `PartitionRegistration` assert, so a
//! refused record leaves the image as it was.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::records::{
    AccessControlEntryRecord, BrokerEndpoint, BrokerFeature, MetadataRecord, PartitionChangeRecord,
    PartitionRecord, NO_LEADER_CHANGE,
};
use super::MetadataError;

/// `ConfigResource.Type` codes of ConfigRecord.
pub const CONFIG_RESOURCE_TOPIC: i8 = 2;

/// One broker as registered with the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub listeners: Vec<BrokerEndpoint>,
    pub supported_features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub directories: Vec<Uuid>,
}

/// One partition's replicas and leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    pub replicas: Vec<i32>,
    pub directories: Vec<Uuid>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
    pub leader: i32,
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl PartitionRegistration {
    fn from_record(r: &PartitionRecord) -> Self {
        PartitionRegistration {
            replicas: r.replicas.clone(),
            directories: r.directories.clone(),
            isr: r.isr.clone(),
            removing_replicas: r.removing_replicas.clone(),
            adding_replicas: r.adding_replicas.clone(),
            elr: r.eligible_leader_replicas.clone().unwrap_or_default(),
            last_known_elr: r.last_known_elr.clone().unwrap_or_default(),
            leader: r.leader,
            leader_recovery_state: r.leader_recovery_state,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
        }
    }

    /// Kafka's `PartitionRegistration.merge`: the leader epoch moves when
    /// the record names a leader, the partition epoch on every change.
    fn merge(&self, c: &PartitionChangeRecord) -> Self {
        let mut n = self.clone();
        if let Some(v) = &c.replicas {
            n.replicas = v.clone();
        }
        if let Some(v) = &c.directories {
            n.directories = v.clone();
        }
        if let Some(v) = &c.isr {
            n.isr = v.clone();
        }
        if let Some(v) = &c.removing_replicas {
            n.removing_replicas = v.clone();
        }
        if let Some(v) = &c.adding_replicas {
            n.adding_replicas = v.clone();
        }
        if let Some(v) = &c.eligible_leader_replicas {
            n.elr = v.clone();
        }
        if let Some(v) = &c.last_known_elr {
            n.last_known_elr = v.clone();
        }
        if c.leader != NO_LEADER_CHANGE {
            n.leader = c.leader;
            n.leader_epoch = self.leader_epoch.saturating_add(1);
        }
        if c.leader_recovery_state != -1 {
            n.leader_recovery_state = c.leader_recovery_state;
        }
        n.partition_epoch = self.partition_epoch.saturating_add(1);
        n
    }

    /// The invariants every registration keeps.
    fn check(&self, what: &str) -> Result<(), MetadataError> {
        let bad = |why: String| Err(MetadataError(format!("{what}: {why}")));
        if self.replicas.is_empty() {
            return bad("no replicas".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        if !self.replicas.iter().all(|r| *r >= 0 && seen.insert(*r)) {
            return bad(format!("invalid replica list {:?}", self.replicas));
        }
        if let Some(i) = self.isr.iter().find(|i| !self.replicas.contains(i)) {
            return bad(format!(
                "ISR member {i} is not a replica {:?}",
                self.replicas
            ));
        }
        if self.leader != -1 && !self.isr.contains(&self.leader) {
            return bad(format!(
                "leader {} is not in the ISR {:?}",
                self.leader, self.isr
            ));
        }
        if !self.directories.is_empty() && self.directories.len() != self.replicas.len() {
            return bad(format!(
                "{} directories for {} replicas",
                self.directories.len(),
                self.replicas.len()
            ));
        }
        if !matches!(self.leader_recovery_state, 0 | 1) {
            return bad(format!(
                "unknown leader recovery state {}",
                self.leader_recovery_state
            ));
        }
        Ok(())
    }
}

/// One user's SCRAM credential for one mechanism (Kafka's
/// `ScramCredentialData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialData {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// A client-quota entity: (entity type, name) pairs sorted by type; a
/// `None` name is that type's default entity.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// The client quotas by entity, each entity's values by key (Kafka's
/// `ClientQuotasImage`). Values compare by their bits.
#[derive(Debug, Clone, Default)]
pub struct ClientQuotasImage(pub BTreeMap<QuotaEntity, BTreeMap<String, f64>>);

impl PartialEq for ClientQuotasImage {
    fn eq(&self, o: &Self) -> bool {
        self.0.len() == o.0.len()
            && self.0.iter().zip(&o.0).all(|((e1, v1), (e2, v2))| {
                e1 == e2
                    && v1.len() == v2.len()
                    && v1
                        .iter()
                        .zip(v2)
                        .all(|((k1, x1), (k2, x2))| k1 == k2 && x1.to_bits() == x2.to_bits())
            })
    }
}

impl Eq for ClientQuotasImage {}

/// The entity types a client quota may name (Kafka's `ClientQuotaEntity`).
pub const QUOTA_ENTITY_TYPES: [&str; 3] = ["user", "client-id", "ip"];

/// A ClientQuotaRecord's entity, sorted, once it names known types at most
/// once each and does not mix `ip` with the others.
fn quota_entity(entity: &[(String, Option<String>)]) -> Result<QuotaEntity, MetadataError> {
    let mut e = entity.to_vec();
    e.sort();
    let bad = |why: &str| {
        Err(MetadataError(format!(
            "ClientQuotaRecord {entity:?}: {why}"
        )))
    };
    if e.is_empty() {
        return bad("empty entity");
    }
    if e.windows(2).any(|w| w[0].0 == w[1].0) {
        return bad("duplicate entity type");
    }
    if let Some((t, _)) = e
        .iter()
        .find(|(t, _)| !QUOTA_ENTITY_TYPES.contains(&t.as_str()))
    {
        return bad(&format!("unknown entity type {t}"));
    }
    if e.len() > 1 && e.iter().any(|(t, _)| t == "ip") {
        return bad("ip combined with another entity type");
    }
    Ok(e)
}

/// One topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// The cluster's metadata at one offset of the metadata log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Finalized feature levels (`metadata.version` among them).
    pub features: BTreeMap<String, i16>,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<Uuid, TopicImage>,
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Configs by (resource type, resource name).
    pub configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// The first producer id of the next block to hand out.
    pub next_producer_id: i64,
    /// SCRAM credentials by (user name, mechanism type).
    pub scram: BTreeMap<(String, i8), ScramCredentialData>,
    pub client_quotas: ClientQuotasImage,
    /// The cluster's ACLs by id (Kafka's `AclsImage`).
    pub acls: BTreeMap<Uuid, AccessControlEntryRecord>,
}

impl MetadataImage {
    /// The replicas of `reg` on fenced or unregistered brokers (Kafka's
    /// `KRaftMetadataCache` offline replicas in Metadata answers).
    pub fn offline_replicas(&self, reg: &PartitionRegistration) -> Vec<i32> {
        reg.replicas
            .iter()
            .copied()
            .filter(|b| self.brokers.get(b).is_none_or(|r| r.fenced))
            .collect()
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// Brokers clients may be sent to.
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    fn broker_with_epoch(
        &mut self,
        id: i32,
        epoch: i64,
        action: &str,
    ) -> Result<&mut BrokerRegistration, MetadataError> {
        let Some(b) = self.brokers.get_mut(&id) else {
            return Err(MetadataError(format!(
                "Tried to {action} broker {id}, but that broker was not registered."
            )));
        };
        if b.epoch != epoch {
            return Err(MetadataError(format!(
                "Tried to {action} broker {id}, but the given epoch, {epoch}, did not match the current broker epoch, {}.",
                b.epoch
            )));
        }
        Ok(b)
    }

    /// Applies one record; on error the image is unchanged.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                self.brokers.insert(
                    r.broker_id,
                    BrokerRegistration {
                        id: r.broker_id,
                        epoch: r.broker_epoch,
                        incarnation_id: r.incarnation_id,
                        listeners: r.end_points.clone(),
                        supported_features: r.features.clone(),
                        rack: r.rack.clone(),
                        fenced: r.fenced,
                        in_controlled_shutdown: r.in_controlled_shutdown,
                        directories: r.log_dirs.clone(),
                    },
                );
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                self.broker_with_epoch(*broker_id, *broker_epoch, "unregister")?;
                self.brokers.remove(broker_id);
            }
            MetadataRecord::FenceBroker(r) => {
                self.broker_with_epoch(r.id, r.epoch, "fence")?.fenced = true;
            }
            MetadataRecord::UnfenceBroker(r) => {
                self.broker_with_epoch(r.id, r.epoch, "unfence")?.fenced = false;
            }
            MetadataRecord::BrokerRegistrationChange(r) => {
                let fenced = match r.fenced {
                    -1 => Some(false),
                    0 => None,
                    1 => Some(true),
                    other => {
                        return Err(MetadataError(format!(
                            "Unable to replay BrokerRegistrationChangeRecord for broker {}: invalid fenced value {other}",
                            r.broker_id
                        )))
                    }
                };
                let shutdown = match r.in_controlled_shutdown {
                    0 => None,
                    1 => Some(true),
                    other => {
                        return Err(MetadataError(format!(
                            "Unable to replay BrokerRegistrationChangeRecord for broker {}: invalid inControlledShutdown value {other}",
                            r.broker_id
                        )))
                    }
                };
                let b = self.broker_with_epoch(r.broker_id, r.broker_epoch, "change")?;
                if let Some(f) = fenced {
                    b.fenced = f;
                }
                if let Some(s) = shutdown {
                    b.in_controlled_shutdown = s;
                }
                if !r.log_dirs.is_empty() {
                    b.directories = r.log_dirs.clone();
                }
            }
            MetadataRecord::Topic(r) => {
                if let Some(existing) = self.topic_ids.get(&r.name) {
                    return Err(MetadataError(format!(
                        "topic {} already exists with id {existing}",
                        r.name
                    )));
                }
                if self.topics.contains_key(&r.topic_id) {
                    return Err(MetadataError(format!(
                        "topic id {} is already in use",
                        r.topic_id
                    )));
                }
                self.topic_ids.insert(r.name.clone(), r.topic_id);
                self.topics.insert(
                    r.topic_id,
                    TopicImage {
                        name: r.name.clone(),
                        id: r.topic_id,
                        partitions: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition(r) => {
                let Some(topic) = self.topics.get_mut(&r.topic_id) else {
                    return Err(MetadataError(format!(
                        "Tried to create partition {}:{} of a topic that does not exist",
                        r.topic_id, r.partition_id
                    )));
                };
                if r.partition_id < 0 {
                    return Err(MetadataError(format!(
                        "invalid partition id {} for topic {}",
                        r.partition_id, topic.name
                    )));
                }
                let p = PartitionRegistration::from_record(r);
                p.check(&format!("{}-{}", topic.name, r.partition_id))?;
                topic.partitions.insert(r.partition_id, p);
            }
            MetadataRecord::PartitionChange(c) => {
                let Some(topic) = self.topics.get_mut(&c.topic_id) else {
                    return Err(MetadataError(format!(
                        "Tried to change partition {}:{} of a topic that does not exist",
                        c.topic_id, c.partition_id
                    )));
                };
                let what = format!("{}-{}", topic.name, c.partition_id);
                let Some(p) = topic.partitions.get_mut(&c.partition_id) else {
                    return Err(MetadataError(format!(
                        "Tried to change partition {what}, which does not exist"
                    )));
                };
                let merged = p.merge(c);
                merged.check(&what)?;
                *p = merged;
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let Some(topic) = self.topics.remove(topic_id) else {
                    return Err(MetadataError(format!(
                        "Failed to find topic {topic_id} to remove"
                    )));
                };
                self.topic_ids.remove(&topic.name);
                self.configs
                    .remove(&(CONFIG_RESOURCE_TOPIC, topic.name.clone()));
            }
            MetadataRecord::Config(r) => {
                let key = (r.resource_type, r.resource_name.clone());
                match &r.value {
                    Some(v) => {
                        self.configs
                            .entry(key)
                            .or_default()
                            .insert(r.name.clone(), v.clone());
                    }
                    None => {
                        if let Some(m) = self.configs.get_mut(&key) {
                            m.remove(&r.name);
                            if m.is_empty() {
                                self.configs.remove(&key);
                            }
                        }
                    }
                }
            }
            MetadataRecord::ProducerIds(r) => {
                // Blocks are handed out once: the next block never moves back.
                if r.next_producer_id < self.next_producer_id {
                    return Err(MetadataError(format!(
                        "next producer id {} is below the current {}",
                        r.next_producer_id, self.next_producer_id
                    )));
                }
                self.next_producer_id = r.next_producer_id;
            }
            MetadataRecord::UserScramCredential(r) => {
                // Kafka's `ScramMechanism`: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
                if !matches!(r.mechanism, 1 | 2) {
                    return Err(MetadataError(format!(
                        "UserScramCredentialRecord for {}: unknown SCRAM mechanism {}",
                        r.name, r.mechanism
                    )));
                }
                self.scram.insert(
                    (r.name.clone(), r.mechanism),
                    ScramCredentialData {
                        salt: r.salt.clone(),
                        stored_key: r.stored_key.clone(),
                        server_key: r.server_key.clone(),
                        iterations: r.iterations,
                    },
                );
            }
            MetadataRecord::RemoveUserScramCredential(r) => {
                // As Kafka's `ScramControlManager.replay`.
                if self.scram.remove(&(r.name.clone(), r.mechanism)).is_none() {
                    return Err(MetadataError(format!(
                        "Unable to find credential to delete: ScramCredentialKey(username={}, mechanism={})",
                        r.name, r.mechanism
                    )));
                }
            }
            MetadataRecord::ClientQuota(r) => {
                let entity = quota_entity(&r.entity)?;
                let quotas = &mut self.client_quotas.0;
                if r.remove {
                    if let Some(values) = quotas.get_mut(&entity) {
                        values.remove(&r.key);
                        if values.is_empty() {
                            quotas.remove(&entity);
                        }
                    }
                } else {
                    quotas
                        .entry(entity)
                        .or_default()
                        .insert(r.key.clone(), r.value);
                }
            }
            MetadataRecord::AccessControlEntry(r) => {
                if self.acls.contains_key(&r.id) {
                    return Err(MetadataError(format!(
                        "Unable to replay AccessControlEntryRecord {}: an ACL with that ID already exists",
                        r.id
                    )));
                }
                self.acls.insert(r.id, r.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if self.acls.remove(id).is_none() {
                    return Err(MetadataError(format!(
                        "Unable to replay RemoveAccessControlEntryRecord {id}: no acl with that ID found."
                    )));
                }
            }
            MetadataRecord::FeatureLevel(r) => {
                // Level 0 is kept (Kafka removes it): a feature absent
                // here is at the level a new cluster starts at
                // (`controller::feature_control`), which kastle's format
                // does not write as records.
                self.features.insert(r.name.clone(), r.feature_level);
            }
        }
        Ok(())
    }
}

impl MetadataImage {
    /// Records that rebuild this image from nothing (a snapshot's content,
    /// as Kafka's `MetadataImage.write`): features, brokers, topics with
    /// their partitions, configs, the producer-id block, ACLs.
    pub fn to_records(&self) -> Vec<super::RecordAndVersion> {
        use super::records::*;
        use super::RecordAndVersion;
        let mut out = Vec::new();
        let mut push =
            |record: MetadataRecord, version: i16| out.push(RecordAndVersion { record, version });
        for (name, level) in &self.features {
            push(
                MetadataRecord::FeatureLevel(FeatureLevelRecord {
                    name: name.clone(),
                    feature_level: *level,
                }),
                0,
            );
        }
        for b in self.brokers.values() {
            push(
                MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                    broker_id: b.id,
                    is_migrating_zk_broker: false,
                    incarnation_id: b.incarnation_id,
                    broker_epoch: b.epoch,
                    end_points: b.listeners.clone(),
                    features: b.supported_features.clone(),
                    rack: b.rack.clone(),
                    fenced: b.fenced,
                    in_controlled_shutdown: b.in_controlled_shutdown,
                    log_dirs: b.directories.clone(),
                    cordoned_log_dirs: None,
                }),
                3,
            );
        }
        for t in self.topics.values() {
            push(
                MetadataRecord::Topic(TopicRecord {
                    name: t.name.clone(),
                    topic_id: t.id,
                }),
                0,
            );
            for (id, p) in &t.partitions {
                let elr = !p.elr.is_empty() || !p.last_known_elr.is_empty();
                push(
                    MetadataRecord::Partition(PartitionRecord {
                        partition_id: *id,
                        topic_id: t.id,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        removing_replicas: p.removing_replicas.clone(),
                        adding_replicas: p.adding_replicas.clone(),
                        leader: p.leader,
                        leader_recovery_state: p.leader_recovery_state,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        directories: p.directories.clone(),
                        eligible_leader_replicas: elr.then(|| p.elr.clone()),
                        last_known_elr: elr.then(|| p.last_known_elr.clone()),
                    }),
                    if elr { 2 } else { 1 },
                );
            }
        }
        for ((resource_type, resource_name), entries) in &self.configs {
            for (name, value) in entries {
                push(
                    MetadataRecord::Config(ConfigRecord {
                        resource_type: *resource_type,
                        resource_name: resource_name.clone(),
                        name: name.clone(),
                        value: Some(value.clone()),
                    }),
                    0,
                );
            }
        }
        for ((name, mechanism), c) in &self.scram {
            push(
                MetadataRecord::UserScramCredential(UserScramCredentialRecord {
                    name: name.clone(),
                    mechanism: *mechanism,
                    salt: c.salt.clone(),
                    stored_key: c.stored_key.clone(),
                    server_key: c.server_key.clone(),
                    iterations: c.iterations,
                }),
                0,
            );
        }
        for (entity, values) in &self.client_quotas.0 {
            for (key, value) in values {
                push(
                    MetadataRecord::ClientQuota(ClientQuotaRecord {
                        entity: entity.clone(),
                        key: key.clone(),
                        value: *value,
                        remove: false,
                    }),
                    0,
                );
            }
        }
        if self.next_producer_id > 0 {
            push(
                MetadataRecord::ProducerIds(ProducerIdsRecord {
                    broker_id: -1,
                    broker_epoch: -1,
                    next_producer_id: self.next_producer_id,
                }),
                0,
            );
        }
        for acl in self.acls.values() {
            push(MetadataRecord::AccessControlEntry(acl.clone()), 0);
        }
        out
    }
}
