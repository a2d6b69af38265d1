//! Kafka's metadata record types (`metadata/src/main/resources/common/metadata/*.json`):
//! the fields of each, by version, and their encoding. Defaults are
//! Kafka's; a value a version cannot carry is refused on write, as Kafka's
//! generated `write` refuses it (UnsupportedVersionException).

use uuid::Uuid;

use super::codec::{tag, Reader, Writer};
use super::MetadataError;

fn unsupported(record: &str, field: &str, version: i16) -> MetadataError {
    MetadataError(format!(
        "Attempted to write a non-default {field} at version {version} of {record}"
    ))
}

/// One endpoint of a registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A feature range a broker supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerFeature {
    pub name: String,
    pub min_supported_version: i16,
    pub max_supported_version: i16,
}

/// RegisterBrokerRecord (api key 0, versions 0-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBrokerRecord {
    pub broker_id: i32,
    pub is_migrating_zk_broker: bool,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub end_points: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub log_dirs: Vec<Uuid>,
    pub cordoned_log_dirs: Option<Vec<Uuid>>,
}

/// BrokerRegistrationChangeRecord (17, versions 0-3). `fenced`: -1
/// unfenced, 0 no change, 1 fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationChangeRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub fenced: i8,
    pub in_controlled_shutdown: i8,
    pub log_dirs: Vec<Uuid>,
    pub cordoned_log_dirs: Option<Vec<Uuid>>,
}

/// FenceBrokerRecord (7) and UnfenceBrokerRecord (8): a broker id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerIdAndEpoch {
    pub id: i32,
    pub epoch: i64,
}

/// TopicRecord (2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: Uuid,
}

/// PartitionRecord (3, versions 0-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub directories: Vec<Uuid>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

/// `PartitionChangeRecord.leader` when the leader did not change.
pub const NO_LEADER_CHANGE: i32 = -2;

/// PartitionChangeRecord (5, versions 0-2): `None` / -2 / -1 mean "no
/// change" as Kafka's defaults do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionChangeRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub isr: Option<Vec<i32>>,
    pub leader: i32,
    pub replicas: Option<Vec<i32>>,
    pub removing_replicas: Option<Vec<i32>>,
    pub adding_replicas: Option<Vec<i32>>,
    pub leader_recovery_state: i8,
    pub directories: Option<Vec<Uuid>>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

impl PartitionChangeRecord {
    /// A change of nothing yet.
    pub fn new(topic_id: Uuid, partition_id: i32) -> Self {
        PartitionChangeRecord {
            partition_id,
            topic_id,
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
            directories: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }
}

/// ConfigRecord (4): `value` None deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRecord {
    pub resource_type: i8,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

/// ProducerIdsRecord (15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub next_producer_id: i64,
}

/// FeatureLevelRecord (12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLevelRecord {
    pub name: String,
    pub feature_level: i16,
}

/// UserScramCredentialRecord (11): a user's SCRAM credential for one
/// mechanism (Kafka's `ScramMechanism` type: 1 SHA-256, 2 SHA-512), as the
/// salted keys, never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentialRecord {
    pub name: String,
    pub mechanism: i8,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// RemoveUserScramCredentialRecord (22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveUserScramCredentialRecord {
    pub name: String,
    pub mechanism: i8,
}

/// ClientQuotaRecord (14): set (or remove) one quota key of an entity.
/// `entity` is (entity type, entity name) pairs; a `None` name is that
/// type's default entity.
#[derive(Debug, Clone)]
pub struct ClientQuotaRecord {
    pub entity: Vec<(String, Option<String>)>,
    pub key: String,
    pub value: f64,
    pub remove: bool,
}

/// Equal when the bytes would be: the value compares by its bits.
impl PartialEq for ClientQuotaRecord {
    fn eq(&self, o: &Self) -> bool {
        self.entity == o.entity
            && self.key == o.key
            && self.value.to_bits() == o.value.to_bits()
            && self.remove == o.remove
    }
}

impl Eq for ClientQuotaRecord {}

/// AccessControlEntryRecord (18, version 0): one ACL and its id. The codes
/// are Kafka's `ResourceType`, `PatternType`, `AclOperation` and
/// `AclPermissionType` codes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntryRecord {
    pub id: Uuid,
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// A metadata record of a type kastle reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    RegisterBroker(RegisterBrokerRecord),
    UnregisterBroker { broker_id: i32, broker_epoch: i64 },
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    PartitionChange(PartitionChangeRecord),
    FenceBroker(BrokerIdAndEpoch),
    UnfenceBroker(BrokerIdAndEpoch),
    RemoveTopic { topic_id: Uuid },
    FeatureLevel(FeatureLevelRecord),
    ProducerIds(ProducerIdsRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    UserScramCredential(UserScramCredentialRecord),
    RemoveUserScramCredential(RemoveUserScramCredentialRecord),
    ClientQuota(ClientQuotaRecord),
    AccessControlEntry(AccessControlEntryRecord),
    RemoveAccessControlEntry { id: Uuid },
}

impl MetadataRecord {
    /// The record type's api key (`MetadataRecordType`).
    pub fn api_key(&self) -> u16 {
        match self {
            MetadataRecord::RegisterBroker(_) => 0,
            MetadataRecord::UnregisterBroker { .. } => 1,
            MetadataRecord::Topic(_) => 2,
            MetadataRecord::Partition(_) => 3,
            MetadataRecord::Config(_) => 4,
            MetadataRecord::PartitionChange(_) => 5,
            MetadataRecord::FenceBroker(_) => 7,
            MetadataRecord::UnfenceBroker(_) => 8,
            MetadataRecord::RemoveTopic { .. } => 9,
            MetadataRecord::FeatureLevel(_) => 12,
            MetadataRecord::ProducerIds(_) => 15,
            MetadataRecord::BrokerRegistrationChange(_) => 17,
            MetadataRecord::UserScramCredential(_) => 11,
            MetadataRecord::RemoveUserScramCredential(_) => 22,
            MetadataRecord::ClientQuota(_) => 14,
            MetadataRecord::AccessControlEntry(_) => 18,
            MetadataRecord::RemoveAccessControlEntry { .. } => 19,
        }
    }

    /// The highest version of each type (Kafka 4.4's `validVersions`).
    pub fn highest_version(api_key: u16) -> Option<i16> {
        Some(match api_key {
            0 => 4,
            3 | 5 => 2,
            17 => 3,
            1 | 2 | 4 | 7 | 8 | 9 | 11 | 12 | 14 | 15 | 18 | 19 | 22 => 0,
            _ => return None,
        })
    }

    /// The message body at `version` (no frame).
    pub fn write_body(&self, version: i16, w: &mut Writer) -> Result<(), MetadataError> {
        match self {
            MetadataRecord::RegisterBroker(r) => write_register_broker(r, version, w),
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                w.i32(*broker_id);
                w.i64(*broker_epoch);
                w.tagged(Vec::new())
            }
            MetadataRecord::Topic(r) => {
                w.string(&r.name, "TopicRecord.Name")?;
                w.uuid(r.topic_id);
                w.tagged(Vec::new())
            }
            MetadataRecord::Partition(r) => write_partition(r, version, w),
            MetadataRecord::Config(r) => {
                w.i8(r.resource_type);
                w.string(&r.resource_name, "ConfigRecord.ResourceName")?;
                w.string(&r.name, "ConfigRecord.Name")?;
                w.nullable_string(r.value.as_deref(), "ConfigRecord.Value")?;
                w.tagged(Vec::new())
            }
            MetadataRecord::PartitionChange(r) => write_partition_change(r, version, w),
            MetadataRecord::FenceBroker(r) | MetadataRecord::UnfenceBroker(r) => {
                w.i32(r.id);
                w.i64(r.epoch);
                w.tagged(Vec::new())
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                w.uuid(*topic_id);
                w.tagged(Vec::new())
            }
            MetadataRecord::FeatureLevel(r) => {
                w.string(&r.name, "FeatureLevelRecord.Name")?;
                w.i16(r.feature_level);
                w.tagged(Vec::new())
            }
            MetadataRecord::ProducerIds(r) => {
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
                w.i64(r.next_producer_id);
                w.tagged(Vec::new())
            }
            MetadataRecord::BrokerRegistrationChange(r) => write_registration_change(r, version, w),
            MetadataRecord::UserScramCredential(r) => {
                w.string(&r.name, "UserScramCredentialRecord.Name")?;
                w.i8(r.mechanism);
                w.bytes(&r.salt, "Salt")?;
                w.bytes(&r.stored_key, "StoredKey")?;
                w.bytes(&r.server_key, "ServerKey")?;
                w.i32(r.iterations);
                w.tagged(Vec::new())
            }
            MetadataRecord::RemoveUserScramCredential(r) => {
                w.string(&r.name, "RemoveUserScramCredentialRecord.Name")?;
                w.i8(r.mechanism);
                w.tagged(Vec::new())
            }
            MetadataRecord::ClientQuota(r) => {
                w.array_len(r.entity.len(), "Entity")?;
                for (t, n) in &r.entity {
                    w.string(t, "Entity.EntityType")?;
                    w.nullable_string(n.as_deref(), "Entity.EntityName")?;
                    w.tagged(Vec::new())?;
                }
                w.string(&r.key, "ClientQuotaRecord.Key")?;
                w.f64(r.value);
                w.bool(r.remove);
                w.tagged(Vec::new())
            }
            MetadataRecord::AccessControlEntry(r) => {
                w.uuid(r.id);
                w.i8(r.resource_type);
                w.string(&r.resource_name, "AccessControlEntryRecord.ResourceName")?;
                w.i8(r.pattern_type);
                w.string(&r.principal, "AccessControlEntryRecord.Principal")?;
                w.string(&r.host, "AccessControlEntryRecord.Host")?;
                w.i8(r.operation);
                w.i8(r.permission_type);
                w.tagged(Vec::new())
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                w.uuid(*id);
                w.tagged(Vec::new())
            }
        }
    }

    /// Reads the body of a record of type `api_key` at `version`.
    pub fn read_body(api_key: u16, version: i16, r: &mut Reader) -> Result<Self, MetadataError> {
        let rec = match api_key {
            0 => MetadataRecord::RegisterBroker(read_register_broker(version, r)?),
            1 => {
                let broker_id = r.i32("BrokerId")?;
                let broker_epoch = r.i64("BrokerEpoch")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::UnregisterBroker {
                    broker_id,
                    broker_epoch,
                }
            }
            2 => {
                let name = r.string("TopicRecord.Name")?;
                let topic_id = r.uuid("TopicId")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::Topic(TopicRecord { name, topic_id })
            }
            3 => MetadataRecord::Partition(read_partition(version, r)?),
            4 => {
                let resource_type = r.i8("ResourceType")?;
                let resource_name = r.string("ResourceName")?;
                let name = r.string("Name")?;
                let value = r.nullable_string("Value")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::Config(ConfigRecord {
                    resource_type,
                    resource_name,
                    name,
                    value,
                })
            }
            5 => MetadataRecord::PartitionChange(read_partition_change(version, r)?),
            7 | 8 => {
                let id = r.i32("Id")?;
                let epoch = r.i64("Epoch")?;
                r.tagged(|_, _| Ok(false))?;
                let b = BrokerIdAndEpoch { id, epoch };
                if api_key == 7 {
                    MetadataRecord::FenceBroker(b)
                } else {
                    MetadataRecord::UnfenceBroker(b)
                }
            }
            9 => {
                let topic_id = r.uuid("TopicId")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::RemoveTopic { topic_id }
            }
            12 => {
                let name = r.string("FeatureLevelRecord.Name")?;
                let feature_level = r.i16("FeatureLevel")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::FeatureLevel(FeatureLevelRecord {
                    name,
                    feature_level,
                })
            }
            15 => {
                let broker_id = r.i32("BrokerId")?;
                let broker_epoch = r.i64("BrokerEpoch")?;
                let next_producer_id = r.i64("NextProducerId")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::ProducerIds(ProducerIdsRecord {
                    broker_id,
                    broker_epoch,
                    next_producer_id,
                })
            }
            17 => MetadataRecord::BrokerRegistrationChange(read_registration_change(version, r)?),
            11 => {
                let name = r.string("UserScramCredentialRecord.Name")?;
                let mechanism = r.i8("Mechanism")?;
                let salt = r.bytes("Salt")?;
                let stored_key = r.bytes("StoredKey")?;
                let server_key = r.bytes("ServerKey")?;
                let iterations = r.i32("Iterations")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::UserScramCredential(UserScramCredentialRecord {
                    name,
                    mechanism,
                    salt,
                    stored_key,
                    server_key,
                    iterations,
                })
            }
            22 => {
                let name = r.string("RemoveUserScramCredentialRecord.Name")?;
                let mechanism = r.i8("Mechanism")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord {
                    name,
                    mechanism,
                })
            }
            14 => {
                // An entity entry is at least 1+1+1 bytes.
                let n = r.array_len(3, "Entity")?;
                let mut entity = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = r.string("Entity.EntityType")?;
                    let name = r.nullable_string("Entity.EntityName")?;
                    r.tagged(|_, _| Ok(false))?;
                    entity.push((t, name));
                }
                let key = r.string("ClientQuotaRecord.Key")?;
                let value = r.f64("Value")?;
                let remove = r.bool("Remove")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::ClientQuota(ClientQuotaRecord {
                    entity,
                    key,
                    value,
                    remove,
                })
            }
            18 => {
                let out = AccessControlEntryRecord {
                    id: r.uuid("AccessControlEntryRecord.Id")?,
                    resource_type: r.i8("AccessControlEntryRecord.ResourceType")?,
                    resource_name: r.string("AccessControlEntryRecord.ResourceName")?,
                    pattern_type: r.i8("AccessControlEntryRecord.PatternType")?,
                    principal: r.string("AccessControlEntryRecord.Principal")?,
                    host: r.string("AccessControlEntryRecord.Host")?,
                    operation: r.i8("AccessControlEntryRecord.Operation")?,
                    permission_type: r.i8("AccessControlEntryRecord.PermissionType")?,
                };
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::AccessControlEntry(out)
            }
            19 => {
                let id = r.uuid("RemoveAccessControlEntryRecord.Id")?;
                r.tagged(|_, _| Ok(false))?;
                MetadataRecord::RemoveAccessControlEntry { id }
            }
            other => {
                return Err(MetadataError(format!(
                    "metadata record type {other} is not one kastle reads"
                )))
            }
        };
        Ok(rec)
    }
}

fn write_register_broker(
    r: &RegisterBrokerRecord,
    v: i16,
    w: &mut Writer,
) -> Result<(), MetadataError> {
    const N: &str = "RegisterBrokerRecord";
    w.i32(r.broker_id);
    if v >= 2 {
        w.bool(r.is_migrating_zk_broker);
    } else if r.is_migrating_zk_broker {
        return Err(unsupported(N, "isMigratingZkBroker", v));
    }
    w.uuid(r.incarnation_id);
    w.i64(r.broker_epoch);
    w.array_len(r.end_points.len(), "EndPoints")?;
    for e in &r.end_points {
        w.string(&e.name, "EndPoints.Name")?;
        w.string(&e.host, "EndPoints.Host")?;
        w.u16(e.port);
        w.i16(e.security_protocol);
        w.tagged(Vec::new())?;
    }
    w.array_len(r.features.len(), "Features")?;
    for f in &r.features {
        w.string(&f.name, "Features.Name")?;
        w.i16(f.min_supported_version);
        w.i16(f.max_supported_version);
        w.tagged(Vec::new())?;
    }
    w.nullable_string(r.rack.as_deref(), "Rack")?;
    w.bool(r.fenced);
    if v >= 1 {
        w.bool(r.in_controlled_shutdown);
    } else if r.in_controlled_shutdown {
        return Err(unsupported(N, "inControlledShutdown", v));
    }
    let mut tagged = Vec::new();
    if !r.log_dirs.is_empty() {
        if v < 3 {
            return Err(unsupported(N, "logDirs", v));
        }
        tagged.push(tag(0, |t| t.uuids(&r.log_dirs, "LogDirs"))?);
    }
    if let Some(c) = &r.cordoned_log_dirs {
        if v < 4 {
            return Err(unsupported(N, "cordonedLogDirs", v));
        }
        tagged.push(tag(1, |t| t.uuids(c, "CordonedLogDirs"))?);
    }
    w.tagged(tagged)
}

fn read_register_broker(v: i16, r: &mut Reader) -> Result<RegisterBrokerRecord, MetadataError> {
    let broker_id = r.i32("BrokerId")?;
    let is_migrating_zk_broker = v >= 2 && r.bool("IsMigratingZkBroker")?;
    let incarnation_id = r.uuid("IncarnationId")?;
    let broker_epoch = r.i64("BrokerEpoch")?;
    // An endpoint is at least 1+1+2+2+1 bytes, a feature 1+2+2+1.
    let n = r.array_len(7, "EndPoints")?;
    let mut end_points = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("EndPoints.Name")?;
        let host = r.string("EndPoints.Host")?;
        let port = r.u16("EndPoints.Port")?;
        let security_protocol = r.i16("EndPoints.SecurityProtocol")?;
        r.tagged(|_, _| Ok(false))?;
        end_points.push(BrokerEndpoint {
            name,
            host,
            port,
            security_protocol,
        });
    }
    let n = r.array_len(6, "Features")?;
    let mut features = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("Features.Name")?;
        let min_supported_version = r.i16("Features.MinSupportedVersion")?;
        let max_supported_version = r.i16("Features.MaxSupportedVersion")?;
        r.tagged(|_, _| Ok(false))?;
        features.push(BrokerFeature {
            name,
            min_supported_version,
            max_supported_version,
        });
    }
    let rack = r.nullable_string("Rack")?;
    let fenced = r.bool("Fenced")?;
    let in_controlled_shutdown = v >= 1 && r.bool("InControlledShutdown")?;
    let mut log_dirs = Vec::new();
    let mut cordoned_log_dirs = None;
    r.tagged(|t, f| match t {
        0 if v >= 3 => {
            log_dirs = f.uuids("LogDirs")?;
            Ok(true)
        }
        1 if v >= 4 => {
            cordoned_log_dirs = f.nullable_uuids("CordonedLogDirs")?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    Ok(RegisterBrokerRecord {
        broker_id,
        is_migrating_zk_broker,
        incarnation_id,
        broker_epoch,
        end_points,
        features,
        rack,
        fenced,
        in_controlled_shutdown,
        log_dirs,
        cordoned_log_dirs,
    })
}

fn write_registration_change(
    r: &BrokerRegistrationChangeRecord,
    v: i16,
    w: &mut Writer,
) -> Result<(), MetadataError> {
    const N: &str = "BrokerRegistrationChangeRecord";
    w.i32(r.broker_id);
    w.i64(r.broker_epoch);
    let mut tagged = Vec::new();
    if r.fenced != 0 {
        tagged.push(tag(0, |t| {
            t.i8(r.fenced);
            Ok(())
        })?);
    }
    if r.in_controlled_shutdown != 0 {
        if v < 1 {
            return Err(unsupported(N, "inControlledShutdown", v));
        }
        tagged.push(tag(1, |t| {
            t.i8(r.in_controlled_shutdown);
            Ok(())
        })?);
    }
    if !r.log_dirs.is_empty() {
        if v < 2 {
            return Err(unsupported(N, "logDirs", v));
        }
        tagged.push(tag(2, |t| t.uuids(&r.log_dirs, "LogDirs"))?);
    }
    if let Some(c) = &r.cordoned_log_dirs {
        if v < 3 {
            return Err(unsupported(N, "cordonedLogDirs", v));
        }
        tagged.push(tag(3, |t| t.uuids(c, "CordonedLogDirs"))?);
    }
    w.tagged(tagged)
}

fn read_registration_change(
    v: i16,
    r: &mut Reader,
) -> Result<BrokerRegistrationChangeRecord, MetadataError> {
    let mut out = BrokerRegistrationChangeRecord {
        broker_id: r.i32("BrokerId")?,
        broker_epoch: r.i64("BrokerEpoch")?,
        fenced: 0,
        in_controlled_shutdown: 0,
        log_dirs: Vec::new(),
        cordoned_log_dirs: None,
    };
    r.tagged(|t, f| {
        match t {
            0 => out.fenced = f.i8("Fenced")?,
            1 if v >= 1 => out.in_controlled_shutdown = f.i8("InControlledShutdown")?,
            2 if v >= 2 => out.log_dirs = f.uuids("LogDirs")?,
            3 if v >= 3 => out.cordoned_log_dirs = f.nullable_uuids("CordonedLogDirs")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(out)
}

fn write_partition(r: &PartitionRecord, v: i16, w: &mut Writer) -> Result<(), MetadataError> {
    const N: &str = "PartitionRecord";
    w.i32(r.partition_id);
    w.uuid(r.topic_id);
    w.i32s(&r.replicas, "Replicas")?;
    w.i32s(&r.isr, "Isr")?;
    w.i32s(&r.removing_replicas, "RemovingReplicas")?;
    w.i32s(&r.adding_replicas, "AddingReplicas")?;
    w.i32(r.leader);
    w.i32(r.leader_epoch);
    w.i32(r.partition_epoch);
    if v >= 1 {
        w.uuids(&r.directories, "Directories")?;
    } else if !r.directories.is_empty() {
        return Err(unsupported(N, "directories", v));
    }
    let mut tagged = Vec::new();
    if r.leader_recovery_state != 0 {
        tagged.push(tag(0, |t| {
            t.i8(r.leader_recovery_state);
            Ok(())
        })?);
    }
    for (t, field, name) in [
        (1, &r.eligible_leader_replicas, "eligibleLeaderReplicas"),
        (2, &r.last_known_elr, "lastKnownElr"),
    ] {
        if let Some(list) = field {
            if v < 2 {
                return Err(unsupported(N, name, v));
            }
            tagged.push(tag(t, |w| w.i32s(list, name))?);
        }
    }
    w.tagged(tagged)
}

fn read_partition(v: i16, r: &mut Reader) -> Result<PartitionRecord, MetadataError> {
    let mut out = PartitionRecord {
        partition_id: r.i32("PartitionId")?,
        topic_id: r.uuid("TopicId")?,
        replicas: r.i32s("Replicas")?,
        isr: r.i32s("Isr")?,
        removing_replicas: r.i32s("RemovingReplicas")?,
        adding_replicas: r.i32s("AddingReplicas")?,
        leader: r.i32("Leader")?,
        leader_recovery_state: 0,
        leader_epoch: r.i32("LeaderEpoch")?,
        partition_epoch: r.i32("PartitionEpoch")?,
        directories: Vec::new(),
        eligible_leader_replicas: None,
        last_known_elr: None,
    };
    if v >= 1 {
        out.directories = r.uuids("Directories")?;
    }
    r.tagged(|t, f| {
        match t {
            0 => out.leader_recovery_state = f.i8("LeaderRecoveryState")?,
            1 if v >= 2 => {
                out.eligible_leader_replicas = f.nullable_i32s("EligibleLeaderReplicas")?
            }
            2 if v >= 2 => out.last_known_elr = f.nullable_i32s("LastKnownElr")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(out)
}

fn write_partition_change(
    r: &PartitionChangeRecord,
    v: i16,
    w: &mut Writer,
) -> Result<(), MetadataError> {
    const N: &str = "PartitionChangeRecord";
    w.i32(r.partition_id);
    w.uuid(r.topic_id);
    let mut tagged = Vec::new();
    let lists = [
        (0, &r.isr, "isr", 0),
        (2, &r.replicas, "replicas", 0),
        (3, &r.removing_replicas, "removingReplicas", 0),
        (4, &r.adding_replicas, "addingReplicas", 0),
        (6, &r.eligible_leader_replicas, "eligibleLeaderReplicas", 2),
        (7, &r.last_known_elr, "lastKnownElr", 2),
    ];
    for (t, field, name, since) in lists {
        if let Some(list) = field {
            if v < since {
                return Err(unsupported(N, name, v));
            }
            tagged.push(tag(t, |w| w.i32s(list, name))?);
        }
    }
    if r.leader != NO_LEADER_CHANGE {
        tagged.push(tag(1, |w| {
            w.i32(r.leader);
            Ok(())
        })?);
    }
    if r.leader_recovery_state != -1 {
        tagged.push(tag(5, |w| {
            w.i8(r.leader_recovery_state);
            Ok(())
        })?);
    }
    if let Some(dirs) = &r.directories {
        if v < 1 {
            return Err(unsupported(N, "directories", v));
        }
        tagged.push(tag(8, |w| w.uuids(dirs, "Directories"))?);
    }
    tagged.sort_by_key(|(t, _)| *t);
    w.tagged(tagged)
}

fn read_partition_change(v: i16, r: &mut Reader) -> Result<PartitionChangeRecord, MetadataError> {
    let partition_id = r.i32("PartitionId")?;
    let topic_id = r.uuid("TopicId")?;
    let mut out = PartitionChangeRecord::new(topic_id, partition_id);
    r.tagged(|t, f| {
        match t {
            0 => out.isr = f.nullable_i32s("Isr")?,
            1 => out.leader = f.i32("Leader")?,
            2 => out.replicas = f.nullable_i32s("Replicas")?,
            3 => out.removing_replicas = f.nullable_i32s("RemovingReplicas")?,
            4 => out.adding_replicas = f.nullable_i32s("AddingReplicas")?,
            5 => out.leader_recovery_state = f.i8("LeaderRecoveryState")?,
            6 if v >= 2 => {
                out.eligible_leader_replicas = f.nullable_i32s("EligibleLeaderReplicas")?
            }
            7 if v >= 2 => out.last_known_elr = f.nullable_i32s("LastKnownElr")?,
            8 if v >= 1 => out.directories = f.nullable_uuids("Directories")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(out)
}
