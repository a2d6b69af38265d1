//! `Authorizer`: Kafka's KRaft `StandardAuthorizer` on one node. A
//! standalone node persists its ACLs itself in
//! `<log.dirs>/__kastle_configs/acls`, one ACL per line, replaced
//! atomically before a change is acknowledged. A cluster broker holds no
//! file: its ACLs are the metadata image's (`AccessControlEntryRecord`s the
//! controller wrote), replaced as each fetched image changes them, and
//! until the first image is applied it refuses everyone but super users
//! (Kafka's `AuthorizerNotReadyException`). The decision itself is
//! `security::acl`'s.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use crate::broker::config_repository::CONFIGS_DIR;
use crate::metadata::records::AccessControlEntryRecord;
use crate::metadata::MetadataImage;
use crate::security::acl::{
    self, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AuthorizerSettings,
    PatternType, PermissionType, Requester, ResourcePattern, ResourceType,
};
use crate::security::KafkaPrincipal;
use crate::util::fs::write_atomically;

/// The class name Kafka 4's KRaft brokers are configured with.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const ACLS_FILE: &str = "acls";

pub struct Authorizer {
    settings: AuthorizerSettings,
    /// The standalone node's ACL file; `None` on a cluster broker, whose
    /// ACLs follow the metadata image.
    path: Option<PathBuf>,
    /// Whether the ACLs are there to decide with (a standalone node's at
    /// once, a cluster broker's once the first image is applied).
    loaded: AtomicBool,
    /// Kept sorted and without duplicates (a set: creating an ACL twice
    /// is one ACL, as in Kafka).
    acls: RwLock<BTreeSet<AclBinding>>,
    /// A snapshot as a slice for the decision functions.
    list: RwLock<Vec<AclBinding>>,
}

/// Why a CreateAcls or DeleteAcls could not be stored.
pub type StoreError = String;

impl Authorizer {
    /// Loads the ACLs earlier runs stored.
    pub fn load(log_dir: &Path, settings: AuthorizerSettings) -> anyhow::Result<Authorizer> {
        let dir = log_dir.join(CONFIGS_DIR);
        fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(ACLS_FILE);
        let mut acls = BTreeSet::new();
        match fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let acl = parse_line(line).ok_or_else(|| {
                        anyhow::anyhow!("{}:{}: not an ACL: {line:?}", path.display(), n + 1)
                    })?;
                    acls.insert(acl);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
        let list = acls.iter().cloned().collect();
        Ok(Authorizer {
            settings,
            path: Some(path),
            loaded: AtomicBool::new(true),
            acls: RwLock::new(acls),
            list: RwLock::new(list),
        })
    }

    /// A cluster broker's authorizer: no ACLs until the first metadata
    /// image is applied with [`Authorizer::follow_image`].
    pub fn for_cluster(settings: AuthorizerSettings) -> Authorizer {
        Authorizer {
            settings,
            path: None,
            loaded: AtomicBool::new(false),
            acls: RwLock::new(BTreeSet::new()),
            list: RwLock::new(Vec::new()),
        }
    }

    /// A cluster broker's ACLs follow each fetched image: replaced when the
    /// image's ACLs changed (or on the first image). Kafka's
    /// `AclPublisher` applying the `AclsDelta`.
    pub fn follow_image(&self, old: &MetadataImage, new: &MetadataImage) {
        if self.path.is_some() {
            return;
        }
        if self.loaded.load(Ordering::Acquire) && old.acls == new.acls {
            return;
        }
        let next: BTreeSet<AclBinding> = new.acls.values().map(binding_of).collect();
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        *self.list.write().unwrap_or_else(|e| e.into_inner()) = next.iter().cloned().collect();
        *acls = next;
        if !self.loaded.swap(true, Ordering::AcqRel) {
            tracing::info!(
                acls = acls.len(),
                "the authorizer loaded the cluster's ACLs"
            );
        }
    }

    /// Whether `principal` is refused everything because the ACLs are not
    /// loaded yet (super users never are).
    fn not_ready_for(&self, principal: &KafkaPrincipal) -> bool {
        !self.loaded.load(Ordering::Acquire) && !self.settings.is_super_user(principal)
    }

    fn snapshot(&self) -> RwLockReadGuard<'_, Vec<AclBinding>> {
        self.list.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Persists `next` and makes it the ACL set; the caller holds the
    /// write lock over `acls`, so changes are stored in order.
    fn store(
        &self,
        acls: &mut BTreeSet<AclBinding>,
        next: BTreeSet<AclBinding>,
    ) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Err("a cluster's ACLs are changed through the active controller".to_string());
        };
        let mut text = String::new();
        for acl in &next {
            text.push_str(&format_line(acl));
            text.push('\n');
        }
        write_atomically(path, text.as_bytes())
            .map_err(|e| format!("cannot store ACLs in {}: {e}", path.display()))?;
        *self.list.write().unwrap_or_else(|e| e.into_inner()) = next.iter().cloned().collect();
        *acls = next;
        Ok(())
    }

    /// Adds ACLs already validated; one write for all of them.
    pub fn create(&self, new: &[AclBinding]) -> Result<(), StoreError> {
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        let mut next = acls.clone();
        next.extend(new.iter().cloned());
        if next.len() == acls.len() {
            return Ok(());
        }
        self.store(&mut acls, next)
    }

    /// The ACLs a filter selects.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.snapshot()
            .iter()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect()
    }

    /// Removes what each filter selects; returns, per filter, the ACLs it
    /// removed (an ACL two filters select is reported by both, as Kafka).
    pub fn delete(&self, filters: &[AclBindingFilter]) -> Result<Vec<Vec<AclBinding>>, StoreError> {
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        let current = acls.clone();
        let per_filter: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| current.iter().filter(|a| f.matches(a)).cloned().collect())
            .collect();
        let next: BTreeSet<AclBinding> = current
            .iter()
            .filter(|a| !filters.iter().any(|f| f.matches(a)))
            .cloned()
            .collect();
        if next.len() != current.len() {
            self.store(&mut acls, next)?;
        }
        Ok(per_filter)
    }

    /// Decides one action.
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.not_ready_for(principal) {
            return false;
        }
        let who = Requester { principal, host };
        acl::authorize(
            &self.settings,
            self.snapshot().iter(),
            &who,
            op,
            resource_type,
            name,
        )
    }

    /// `authorizeByResourceType`.
    pub fn authorize_by_resource_type(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.not_ready_for(principal) {
            return false;
        }
        let who = Requester { principal, host };
        acl::authorize_by_resource_type(&self.settings, &self.snapshot(), &who, op, resource_type)
    }

    /// The authorized-operations bitfield of one resource.
    pub fn authorized_operations(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        if self.not_ready_for(principal) {
            return 0;
        }
        let who = Requester { principal, host };
        acl::authorized_operations(&self.settings, &self.snapshot(), &who, resource_type, name)
    }
}

/// The ACL a record holds (Kafka's `StandardAcl.fromRecord`: codes it does
/// not know read as UNKNOWN).
pub fn binding_of(r: &AccessControlEntryRecord) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(r.resource_type),
            name: r.resource_name.clone(),
            pattern_type: PatternType::from_code(r.pattern_type),
        },
        entry: AccessControlEntry {
            principal: r.principal.clone(),
            host: r.host.clone(),
            operation: AclOperation::from_code(r.operation),
            permission: PermissionType::from_code(r.permission_type),
        },
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// `TYPE<TAB>PATTERN<TAB>name<TAB>principal<TAB>host<TAB>OPERATION<TAB>PERMISSION`.
fn format_line(acl: &AclBinding) -> String {
    let (p, e) = (&acl.pattern, &acl.entry);
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        p.resource_type.code(),
        p.pattern_type.code(),
        escape(&p.name),
        escape(&e.principal),
        escape(&e.host),
        e.operation.code(),
        e.permission.code()
    )
}

fn parse_line(line: &str) -> Option<AclBinding> {
    let f: Vec<&str> = line.split('\t').collect();
    let [rt, pt, name, principal, host, op, perm] = f.as_slice() else {
        return None;
    };
    let acl = AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(rt.parse().ok()?),
            name: unescape(name)?,
            pattern_type: PatternType::from_code(pt.parse().ok()?),
        },
        entry: AccessControlEntry {
            principal: unescape(principal)?,
            host: unescape(host)?,
            operation: AclOperation::from_code(op.parse().ok()?),
            permission: PermissionType::from_code(perm.parse().ok()?),
        },
    };
    acl::validate_new(&acl).ok()?;
    Some(acl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_survive_a_reload_and_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Authorizer::load(dir.path(), AuthorizerSettings::default()).expect("load");
        let acl = AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: "odd\tname\\x".into(),
                pattern_type: PatternType::Prefixed,
            },
            entry: AccessControlEntry {
                principal: "User:al\nice".into(),
                host: "*".into(),
                operation: AclOperation::Write,
                permission: PermissionType::Allow,
            },
        };
        a.create(&[acl.clone(), acl.clone()]).expect("create");
        let b = Authorizer::load(dir.path(), AuthorizerSettings::default()).expect("reload");
        let all = AclBindingFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: PermissionType::Any,
        };
        assert_eq!(b.describe(&all), vec![acl.clone()]);
        assert_eq!(
            b.delete(&[all.clone(), all.clone()]).expect("delete"),
            vec![vec![acl.clone()], vec![acl]]
        );
        let c = Authorizer::load(dir.path(), AuthorizerSettings::default()).expect("reload");
        assert!(c.describe(&all).is_empty());
    }
}
