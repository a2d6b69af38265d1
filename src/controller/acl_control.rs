//! `AclControlManager`: the active controller's decisions on CreateAcls and
//! DeleteAcls over the cluster's ACLs in the metadata image (Kafka's class
//! of the same name). A new ACL is validated as Kafka's controller does
//! (`AclApis` then `validateNewAcl`), one equal to an ACL the image (or the
//! same request) already has writes nothing and succeeds, and each new one
//! gets a fresh random id in an `AccessControlEntryRecord`. DeleteAcls
//! matches each filter over the image and removes what it selects with
//! `RemoveAccessControlEntryRecord`s, one per ACL however many filters
//! select it. Pure: the `QuorumController` commits the records.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::authorizer::binding_of;
use crate::metadata::records::AccessControlEntryRecord;
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};
use crate::security::acl::{
    self, AclBinding, AclBindingFilter, AclOperation, PatternType, PermissionType, ResourceType,
};

/// Most records one user operation may write (Kafka's
/// `QuorumController.MAX_RECORDS_PER_USER_OP`).
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;
/// The version of both ACL records written.
const ACL_RECORD_VERSION: i16 = 0;

/// Why one creation, one filter or a whole request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    pub code: ResponseError,
    pub message: String,
}

impl AclError {
    fn invalid(message: impl Into<String>) -> AclError {
        AclError {
            code: ResponseError::InvalidRequest,
            message: message.into(),
        }
    }
}

fn record_of(id: Uuid, b: &AclBinding) -> AccessControlEntryRecord {
    AccessControlEntryRecord {
        id,
        resource_type: b.pattern.resource_type.code(),
        resource_name: b.pattern.name.clone(),
        pattern_type: b.pattern.pattern_type.code(),
        principal: b.entry.principal.clone(),
        host: b.entry.host.clone(),
        operation: b.entry.operation.code(),
        permission_type: b.entry.permission.code(),
    }
}

/// CreateAcls' records and its result per creation, in request order.
#[derive(Debug)]
pub struct CreateAclsDecision {
    pub records: Vec<RecordAndVersion>,
    /// `Err` for the whole request (too many records to write at once).
    pub results: Result<Vec<Result<(), AclError>>, AclError>,
}

/// Kafka's `AclControlManager.createAcls`; `new_id` gives random ids (a
/// test passes its own), retried while one is taken.
pub fn create_acls(
    image: &MetadataImage,
    acls: &[AclBinding],
    mut new_id: impl FnMut() -> Uuid,
) -> CreateAclsDecision {
    let existing: BTreeSet<AclBinding> = image.acls.values().map(binding_of).collect();
    let mut to_create: BTreeSet<&AclBinding> = BTreeSet::new();
    let mut used: BTreeSet<Uuid> = BTreeSet::new();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(acls.len());
    for b in acls {
        if let Err(msg) = acl::validate_new(b) {
            results.push(Err(AclError::invalid(msg)));
            continue;
        }
        if !existing.contains(b) && to_create.insert(b) {
            if records.len() >= MAX_RECORDS_PER_USER_OP {
                // BoundedListTooLongException, which the controller
                // answers as a policy violation.
                return CreateAclsDecision {
                    records: Vec::new(),
                    results: Err(AclError {
                        code: ResponseError::PolicyViolation,
                        message: "Unable to perform excessively large batch operation.".to_string(),
                    }),
                };
            }
            let id = loop {
                let id = new_id();
                if !image.acls.contains_key(&id) && used.insert(id) {
                    break id;
                }
            };
            records.push(RecordAndVersion {
                record: MetadataRecord::AccessControlEntry(record_of(id, b)),
                version: ACL_RECORD_VERSION,
            });
        }
        results.push(Ok(()));
    }
    CreateAclsDecision {
        records,
        results: Ok(results),
    }
}

/// Kafka's `validateFilter`.
fn validate_filter(f: &AclBindingFilter) -> Result<(), AclError> {
    if f.resource_type == ResourceType::Unknown || f.pattern_type == PatternType::Unknown {
        return Err(AclError::invalid("Unknown patternFilter."));
    }
    if f.operation == AclOperation::Unknown || f.permission == PermissionType::Unknown {
        return Err(AclError::invalid("Unknown entryFilter."));
    }
    Ok(())
}

/// DeleteAcls' records and, per filter in request order, the ACLs it
/// matched (or why the filter failed).
#[derive(Debug)]
pub struct DeleteAclsDecision {
    pub records: Vec<RecordAndVersion>,
    /// `Err` for the whole request (more removals than one operation may
    /// write: nothing is removed).
    pub results: Result<Vec<Result<Vec<AclBinding>, AclError>>, AclError>,
}

/// Kafka's `AclControlManager.deleteAcls`.
pub fn delete_acls(image: &MetadataImage, filters: &[AclBindingFilter]) -> DeleteAclsDecision {
    let mut removed: BTreeSet<Uuid> = BTreeSet::new();
    let mut results = Vec::with_capacity(filters.len());
    for f in filters {
        if let Err(e) = validate_filter(f) {
            results.push(Err(e));
            continue;
        }
        let mut matched = Vec::new();
        for (id, r) in &image.acls {
            let b = binding_of(r);
            if !f.matches(&b) {
                continue;
            }
            if removed.len() >= MAX_RECORDS_PER_USER_OP {
                return DeleteAclsDecision {
                    records: Vec::new(),
                    results: Err(AclError::invalid(format!(
                        "Cannot remove more than {MAX_RECORDS_PER_USER_OP} acls in a single delete operation."
                    ))),
                };
            }
            removed.insert(*id);
            matched.push(b);
        }
        results.push(Ok(matched));
    }
    let records = removed
        .into_iter()
        .map(|id| RecordAndVersion {
            record: MetadataRecord::RemoveAccessControlEntry { id },
            version: ACL_RECORD_VERSION,
        })
        .collect();
    DeleteAclsDecision {
        records,
        results: Ok(results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{AccessControlEntry, ResourcePattern};

    fn binding(name: &str, pattern: PatternType, op: AclOperation) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: name.into(),
                pattern_type: pattern,
            },
            entry: AccessControlEntry {
                principal: "User:alice".into(),
                host: "*".into(),
                operation: op,
                permission: PermissionType::Allow,
            },
        }
    }

    fn any_filter() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: PermissionType::Any,
        }
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    fn replay(image: &mut MetadataImage, records: &[RecordAndVersion]) {
        for r in records {
            image.apply(&r.record).expect("the image takes the records");
        }
    }

    fn invalid(msg: &str) -> Result<(), AclError> {
        Err(AclError::invalid(msg))
    }

    #[test]
    fn new_acls_are_validated_as_kafkas_controller_validates_them() {
        let image = MetadataImage::default();
        let good = binding("orders", PatternType::Literal, AclOperation::Write);
        let mut unknown_pattern = good.clone();
        unknown_pattern.pattern.pattern_type = PatternType::Unknown;
        let mut match_pattern = good.clone();
        match_pattern.pattern.pattern_type = PatternType::Match;
        let mut any_resource = good.clone();
        any_resource.pattern.resource_type = ResourceType::Any;
        let mut unknown_op = good.clone();
        unknown_op.entry.operation = AclOperation::Unknown;
        let mut any_permission = good.clone();
        any_permission.entry.permission = PermissionType::Any;
        let mut no_colon = good.clone();
        no_colon.entry.principal = "invalid".into();
        let mut empty_principal = good.clone();
        empty_principal.entry.principal = String::new();
        let mut empty_name = good.clone();
        empty_name.pattern.name = String::new();
        let mut cluster = good.clone();
        cluster.pattern.resource_type = ResourceType::Cluster;
        cluster.pattern.name = "other".into();
        let acls = [
            unknown_pattern,
            match_pattern,
            any_resource,
            unknown_op,
            any_permission,
            no_colon,
            empty_principal,
            empty_name,
            cluster,
            good.clone(),
        ];
        let d = create_acls(&image, &acls, ids());
        let parse = "(no colon is present separating the principal type from the principal name)";
        assert_eq!(
            d.results.expect("per creation"),
            vec![
                invalid("Invalid patternType UNKNOWN"),
                invalid("Invalid patternType MATCH"),
                invalid("Invalid resourceType ANY"),
                invalid("Invalid operation UNKNOWN"),
                invalid("Invalid permissionType ANY"),
                invalid(&format!("Could not parse principal from `invalid` {parse}")),
                invalid(&format!("Could not parse principal from `` {parse}")),
                invalid("Invalid empty resource name specified"),
                invalid("The only valid name for the CLUSTER resource is kafka-cluster"),
                Ok(()),
            ]
        );
        // Only the valid ACL is written, with the id handed out.
        assert_eq!(
            d.records,
            vec![RecordAndVersion {
                record: MetadataRecord::AccessControlEntry(record_of(Uuid::from_u128(1), &good)),
                version: 0,
            }]
        );
    }

    #[test]
    fn an_acl_already_there_or_twice_in_a_request_is_written_once() {
        let mut image = MetadataImage::default();
        let a = binding("orders", PatternType::Literal, AclOperation::Write);
        let d = create_acls(&image, &[a.clone(), a.clone()], ids());
        assert_eq!(d.results.expect("ok"), vec![Ok(()), Ok(())]);
        assert_eq!(d.records.len(), 1);
        replay(&mut image, &d.records);
        assert_eq!(image.acls.len(), 1);
        // Created again: success, and nothing written.
        let d = create_acls(&image, std::slice::from_ref(&a), ids());
        assert_eq!(d.results.expect("ok"), vec![Ok(())]);
        assert!(d.records.is_empty());
    }

    #[test]
    fn a_taken_id_is_not_handed_out_again() {
        let mut image = MetadataImage::default();
        let a = binding("orders", PatternType::Literal, AclOperation::Write);
        let d = create_acls(&image, std::slice::from_ref(&a), ids());
        replay(&mut image, &d.records);
        // The id source repeats the taken id first.
        let b = binding("payments", PatternType::Literal, AclOperation::Read);
        let d = create_acls(&image, &[b], ids());
        let MetadataRecord::AccessControlEntry(r) = &d.records[0].record else {
            panic!("not an ACL record: {:?}", d.records);
        };
        assert_eq!(r.id, Uuid::from_u128(2));
        replay(&mut image, &d.records);
        assert_eq!(image.acls.len(), 2);
    }

    #[test]
    fn delete_filters_report_what_they_match_and_remove_each_acl_once() {
        let mut image = MetadataImage::default();
        let lit = binding("orders", PatternType::Literal, AclOperation::Write);
        let pre = binding("ord", PatternType::Prefixed, AclOperation::Read);
        let other = binding("payments", PatternType::Literal, AclOperation::Read);
        let d = create_acls(&image, &[lit.clone(), pre.clone(), other.clone()], ids());
        replay(&mut image, &d.records);
        // MATCH on a name selects the literal and the prefixed ACL that
        // apply to it; ANY selects all; a filter with an UNKNOWN part fails
        // on its own.
        let mut matching = any_filter();
        matching.resource_type = ResourceType::Topic;
        matching.name = Some("orders".into());
        matching.pattern_type = PatternType::Match;
        let mut unknown_pattern = any_filter();
        unknown_pattern.pattern_type = PatternType::Unknown;
        let mut unknown_entry = any_filter();
        unknown_entry.permission = PermissionType::Unknown;
        let d = delete_acls(
            &image,
            &[matching, unknown_pattern, unknown_entry, any_filter()],
        );
        let results = d.results.expect("per filter");
        let mut first = results[0].clone().expect("matched");
        first.sort();
        let mut want = vec![lit.clone(), pre.clone()];
        want.sort();
        assert_eq!(first, want);
        assert_eq!(results[1], Err(AclError::invalid("Unknown patternFilter.")));
        assert_eq!(results[2], Err(AclError::invalid("Unknown entryFilter.")));
        assert_eq!(results[3].as_ref().map(Vec::len), Ok(3));
        // Three ACLs, three removals, though two filters select two of them.
        assert_eq!(d.records.len(), 3);
        replay(&mut image, &d.records);
        assert!(image.acls.is_empty());
        // Nothing left: the filters match nothing and write nothing.
        let d = delete_acls(&image, &[any_filter()]);
        assert_eq!(d.results.expect("ok"), vec![Ok(Vec::new())]);
        assert!(d.records.is_empty());
    }

    #[test]
    fn a_filter_selecting_only_some_acls_leaves_the_others() {
        let mut image = MetadataImage::default();
        let write = binding("orders", PatternType::Literal, AclOperation::Write);
        let read = binding("orders", PatternType::Literal, AclOperation::Read);
        let d = create_acls(&image, &[write.clone(), read.clone()], ids());
        replay(&mut image, &d.records);
        let mut f = any_filter();
        f.operation = AclOperation::Write;
        let d = delete_acls(&image, &[f]);
        assert_eq!(d.results.expect("ok"), vec![Ok(vec![write])]);
        replay(&mut image, &d.records);
        let left: Vec<AclBinding> = image.acls.values().map(binding_of).collect();
        assert_eq!(left, vec![read]);
    }

    #[test]
    fn more_removals_than_one_operation_may_write_fail_the_whole_request() {
        let mut image = MetadataImage::default();
        let acls: Vec<AclBinding> = (0..=MAX_RECORDS_PER_USER_OP)
            .map(|i| binding(&format!("t{i}"), PatternType::Literal, AclOperation::Write))
            .collect();
        // Creating them all at once is over the limit too.
        let d = create_acls(&image, &acls, ids());
        assert!(d.records.is_empty());
        assert_eq!(
            d.results.expect_err("too many").code,
            ResponseError::PolicyViolation
        );
        let half = acls.len() / 2;
        let mut next = ids();
        for part in [&acls[..half], &acls[half..]] {
            let d = create_acls(&image, part, &mut next);
            replay(&mut image, &d.records);
        }
        assert_eq!(image.acls.len(), MAX_RECORDS_PER_USER_OP + 1);
        let d = delete_acls(&image, &[any_filter()]);
        assert!(d.records.is_empty());
        assert_eq!(
            d.results.expect_err("too many"),
            AclError::invalid(format!(
                "Cannot remove more than {MAX_RECORDS_PER_USER_OP} acls in a single delete operation."
            ))
        );
    }
}
