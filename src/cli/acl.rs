//! `kastle acl list|create|delete`: Kafka's `kafka-acls.sh --list/--add/--remove`
//! over DescribeAcls, CreateAcls and DeleteAcls, with one flag per ACL field
//! instead of `--allow-principal`/`--deny-principal`/`--topic`/`--group`...
//! The resource type and name are positionals; `--principal`, `--host` and
//! `--operation` may repeat (every combination is one ACL, or one filter).
//! As `kafka-acls.sh`, an operation the resource type cannot grant is a
//! usage error before anything is sent, and a resource name given without
//! `--pattern` is a LITERAL one.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{sb, Client};
use super::{check, flag, print_json, print_table, Args, CliError, Common, Flag};
use crate::security::acl::{
    AclOperation, PatternType, PermissionType, ResourceType, CLUSTER_NAME, WILDCARD,
};

pub const SUBCOMMANDS: &[&str] = &["list", "create", "delete"];

pub const SPEC: &[Flag] = &[
    flag(&["--pattern", "--resource-pattern-type"], true),
    flag(&["--principal"], true),
    flag(&["--host"], true),
    flag(&["--operation"], true),
    flag(&["--permission"], true),
];

/// Resource types by the name the CLI takes (Kafka's, lower case, `-`).
const RESOURCE_TYPES: &[ResourceType] = &[
    ResourceType::Any,
    ResourceType::Topic,
    ResourceType::Group,
    ResourceType::Cluster,
    ResourceType::TransactionalId,
    ResourceType::DelegationToken,
    ResourceType::User,
];

const OPERATIONS: &[AclOperation] = &[
    AclOperation::Any,
    AclOperation::All,
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
    AclOperation::CreateTokens,
    AclOperation::DescribeTokens,
    AclOperation::TwoPhaseCommit,
];

const PATTERNS: &[PatternType] = &[
    PatternType::Any,
    PatternType::Match,
    PatternType::Literal,
    PatternType::Prefixed,
];

const PERMISSIONS: &[PermissionType] = &[
    PermissionType::Any,
    PermissionType::Allow,
    PermissionType::Deny,
];

/// `DESCRIBE_CONFIGS`, `describe-configs`, `DescribeConfigs` and
/// `describeconfigs` all name the same thing, as `kafka-acls.sh` takes
/// both Kafka's enum names and its camel-case operation names.
fn same_name(kafka: &str, given: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    squash(kafka) == squash(given)
}

fn named<T: Copy>(
    all: &[T],
    name: impl Fn(T) -> &'static str,
    given: &str,
    what: &str,
) -> Result<T, CliError> {
    all.iter()
        .copied()
        .find(|v| same_name(name(*v), given))
        .ok_or_else(|| {
            let names: Vec<String> = all
                .iter()
                .map(|v| name(*v).to_ascii_lowercase().replace('_', "-"))
                .collect();
            CliError::Usage(format!(
                "{what} {given:?}: expected one of {}",
                names.join(", ")
            ))
        })
}

/// The CLI's name of a resource type (`transactional-id`).
pub fn type_name(t: ResourceType) -> String {
    t.name().to_ascii_lowercase().replace('_', "-")
}

/// One ACL as an answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    pub resource_type: i8,
    pub name: String,
    pub pattern: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl Acl {
    fn row(&self) -> Vec<String> {
        vec![
            ResourceType::from_code(self.resource_type)
                .name()
                .to_string(),
            self.name.clone(),
            PatternType::from_code(self.pattern).name().to_string(),
            self.principal.clone(),
            self.host.clone(),
            AclOperation::from_code(self.operation).name().to_string(),
            PermissionType::from_code(self.permission)
                .name()
                .to_string(),
        ]
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "resource_type": ResourceType::from_code(self.resource_type).name(),
            "name": self.name,
            "pattern": PatternType::from_code(self.pattern).name(),
            "principal": self.principal,
            "host": self.host,
            "operation": AclOperation::from_code(self.operation).name(),
            "permission": PermissionType::from_code(self.permission).name(),
        })
    }
}

const HEADERS: &[&str] = &[
    "RESOURCE_TYPE",
    "NAME",
    "PATTERN",
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
];

/// A filter of DescribeAcls/DeleteAcls: `None` matches any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

/// Every value of a repeatable flag, or one `None` (any) when it is absent.
fn any_or_each(args: &Args, name: &str) -> Vec<Option<String>> {
    match args.values(name) {
        [] => vec![None],
        vs => vs.iter().cloned().map(Some).collect(),
    }
}

fn operations(args: &Args) -> Result<Vec<AclOperation>, CliError> {
    args.values("--operation")
        .iter()
        .map(|o| named(OPERATIONS, AclOperation::name, o, "--operation"))
        .collect()
}

/// Kafka's `validateOperation`: an ACL for an operation its resource type
/// has none of (READ on the cluster) is refused before it is sent.
fn check_operations(t: ResourceType, ops: &[AclOperation]) -> Result<(), CliError> {
    if matches!(t, ResourceType::Any) {
        return Ok(());
    }
    let supported = t.supported_operations();
    for op in ops {
        if !matches!(op, AclOperation::All | AclOperation::Any) && !supported.contains(op) {
            let names: Vec<&str> = supported.iter().map(|o| o.name()).collect();
            return Err(CliError::Usage(format!(
                "resource type {} only supports operations ALL, {}",
                t.name(),
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// The filters `list`/`delete` arguments say: resource type (default any),
/// name (default any; LITERAL unless `--pattern` says otherwise), and one
/// filter per combination of the repeated `--principal/--host/--operation`.
pub fn filters(args: &Args) -> Result<Vec<Filter>, CliError> {
    let resource_type = match args.positional.first() {
        Some(t) => named(RESOURCE_TYPES, ResourceType::name, t, "resource type")?,
        None => ResourceType::Any,
    };
    let name = args.positional.get(1).cloned();
    if args.positional.len() > 2 {
        return Err(CliError::Usage(format!(
            "unexpected argument {:?}",
            args.positional[2]
        )));
    }
    let pattern = match args.value("--pattern") {
        Some(p) => named(PATTERNS, PatternType::name, p, "--pattern")?,
        None if name.is_some() => PatternType::Literal,
        None => PatternType::Any,
    };
    let permission = match args.value("--permission") {
        Some(p) => named(PERMISSIONS, PermissionType::name, p, "--permission")?,
        None => PermissionType::Any,
    };
    let mut ops = operations(args)?;
    check_operations(resource_type, &ops)?;
    if ops.is_empty() {
        ops.push(AclOperation::Any);
    }
    let mut out = Vec::new();
    for principal in any_or_each(args, "--principal") {
        for host in any_or_each(args, "--host") {
            for op in &ops {
                out.push(Filter {
                    resource_type,
                    name: name.clone(),
                    pattern,
                    principal: principal.clone(),
                    host: host.clone(),
                    operation: *op,
                    permission,
                });
            }
        }
    }
    Ok(out)
}

/// The ACLs `create` arguments say: one per principal, host and operation.
pub fn creations(args: &Args) -> Result<Vec<Acl>, CliError> {
    let t = args.positional(0, "resource type")?;
    let resource_type = named(RESOURCE_TYPES, ResourceType::name, t, "resource type")?;
    if resource_type == ResourceType::Any {
        return Err(CliError::Usage(
            "resource type any is a filter: create needs a resource type".into(),
        ));
    }
    let name = match (args.positional.get(1), resource_type) {
        (Some(n), _) => n.clone(),
        (None, ResourceType::Cluster) => CLUSTER_NAME.to_string(),
        (None, _) => return Err(CliError::Usage("missing resource name".into())),
    };
    if args.positional.len() > 2 {
        return Err(CliError::Usage(format!(
            "unexpected argument {:?}",
            args.positional[2]
        )));
    }
    let pattern = match args.value("--pattern") {
        Some(p) => named(PATTERNS, PatternType::name, p, "--pattern")?,
        None => PatternType::Literal,
    };
    if !matches!(pattern, PatternType::Literal | PatternType::Prefixed) {
        return Err(CliError::Usage(format!(
            "--pattern {}: ACLs are created LITERAL or PREFIXED",
            pattern.name()
        )));
    }
    let permission = match args.value("--permission") {
        Some(p) => named(PERMISSIONS, PermissionType::name, p, "--permission")?,
        None => PermissionType::Allow,
    };
    if permission == PermissionType::Any {
        return Err(CliError::Usage(
            "--permission any is a filter: create takes allow or deny".into(),
        ));
    }
    let principals = args.values("--principal");
    if principals.is_empty() {
        return Err(CliError::Usage(
            "create needs --principal (User:NAME)".into(),
        ));
    }
    let ops = operations(args)?;
    if ops.is_empty() {
        return Err(CliError::Usage("create needs --operation".into()));
    }
    if ops.contains(&AclOperation::Any) {
        return Err(CliError::Usage(
            "--operation any is a filter: name the operation to grant".into(),
        ));
    }
    check_operations(resource_type, &ops)?;
    let hosts = match args.values("--host") {
        [] => vec![WILDCARD.to_string()],
        hs => hs.to_vec(),
    };
    let mut out = Vec::new();
    for principal in principals {
        for host in &hosts {
            for op in &ops {
                out.push(Acl {
                    resource_type: resource_type.code(),
                    name: name.clone(),
                    pattern: pattern.code(),
                    principal: principal.clone(),
                    host: host.clone(),
                    operation: op.code(),
                    permission: permission.code(),
                });
            }
        }
    }
    Ok(out)
}

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let Some((sub, rest)) = argv.split_first() else {
        return Err(CliError::Usage("kastle acl: list|create|delete".into()));
    };
    let args = Args::parse(rest, SPEC)?;
    let common = args.common()?;
    match sub.as_str() {
        "list" | "describe" => {
            let filters = filters(&args)?;
            let mut client = Client::connect(&common).await?;
            let acls = describe_acls(&mut client, &filters).await?;
            print_acls(&common, &acls);
            Ok(())
        }
        "create" | "add" => {
            let acls = creations(&args)?;
            let mut client = Client::connect(&common).await?;
            create(&mut client, &common, &acls).await
        }
        "delete" | "remove" => {
            if args.positional.is_empty() {
                return Err(CliError::Usage(
                    "kastle acl delete: give the resource type (any for every type)".into(),
                ));
            }
            let filters = filters(&args)?;
            let mut client = Client::connect(&common).await?;
            delete(&mut client, &common, &filters).await
        }
        other => Err(CliError::Usage(format!("unknown acl command {other:?}"))),
    }
}

fn print_acls(common: &Common, acls: &[Acl]) {
    if common.json {
        print_json(&json!(acls.iter().map(Acl::json).collect::<Vec<_>>()));
    } else {
        let rows: Vec<Vec<String>> = acls.iter().map(Acl::row).collect();
        print_table(HEADERS, &rows);
    }
}

/// DescribeAcls for each filter; the ACLs that match any, sorted, once each.
pub async fn describe_acls(client: &mut Client, filters: &[Filter]) -> Result<Vec<Acl>, CliError> {
    let mut out = Vec::new();
    for f in filters {
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type.code())
            .with_resource_name_filter(f.name.as_deref().map(sb))
            .with_pattern_type_filter(f.pattern.code())
            .with_principal_filter(f.principal.as_deref().map(sb))
            .with_host_filter(f.host.as_deref().map(sb))
            .with_operation(f.operation.code())
            .with_permission_type(f.permission.code());
        let (resp, _) = client.send(&req, 3).await?;
        check(
            || "listing ACLs".to_string(),
            resp.error_code,
            resp.error_message.as_ref().map(|m| m.to_string()),
        )?;
        for r in &resp.resources {
            out.extend(r.acls.iter().map(|a| Acl {
                resource_type: r.resource_type,
                name: r.resource_name.to_string(),
                pattern: r.pattern_type,
                principal: a.principal.to_string(),
                host: a.host.to_string(),
                operation: a.operation,
                permission: a.permission_type,
            }));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// CreateAcls: a status per ACL; the first refusal is the command's error.
async fn create(client: &mut Client, common: &Common, acls: &[Acl]) -> Result<(), CliError> {
    let req = CreateAclsRequest::default().with_creations(
        acls.iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(a.resource_type)
                    .with_resource_name(sb(&a.name))
                    .with_resource_pattern_type(a.pattern)
                    .with_principal(sb(&a.principal))
                    .with_host(sb(&a.host))
                    .with_operation(a.operation)
                    .with_permission_type(a.permission)
            })
            .collect(),
    );
    let (resp, _) = client.send(&req, 3).await?;
    if resp.results.len() != acls.len() {
        return Err(CliError::Other(format!(
            "CreateAcls answered {} results for {} ACLs",
            resp.results.len(),
            acls.len()
        )));
    }
    let mut first_error = None;
    let mut rows = Vec::new();
    let mut listed = Vec::new();
    for (acl, r) in acls.iter().zip(&resp.results) {
        let status = if r.error_code == 0 {
            "OK".to_string()
        } else {
            super::error_name(r.error_code)
        };
        keep_first_error(
            &mut first_error,
            "creating ACLs",
            r.error_code,
            &r.error_message,
        );
        let mut row = acl.row();
        row.push(status.clone());
        rows.push(row);
        let mut j = acl.json();
        j["status"] = json!(status);
        listed.push(j);
    }
    if common.json {
        print_json(&json!(listed));
    } else {
        let mut headers = HEADERS.to_vec();
        headers.push("STATUS");
        print_table(&headers, &rows);
    }
    first_error.map_or(Ok(()), Err)
}

/// DeleteAcls: prints the ACLs each filter matched (and so deleted); a
/// filter's or an ACL's error is the command's error.
async fn delete(client: &mut Client, common: &Common, filters: &[Filter]) -> Result<(), CliError> {
    let req = DeleteAclsRequest::default().with_filters(
        filters
            .iter()
            .map(|f| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(f.resource_type.code())
                    .with_resource_name_filter(f.name.as_deref().map(sb))
                    .with_pattern_type_filter(f.pattern.code())
                    .with_principal_filter(f.principal.as_deref().map(sb))
                    .with_host_filter(f.host.as_deref().map(sb))
                    .with_operation(f.operation.code())
                    .with_permission_type(f.permission.code())
            })
            .collect(),
    );
    let (resp, _) = client.send(&req, 3).await?;
    let mut first_error = None;
    let mut deleted = Vec::new();
    for r in &resp.filter_results {
        if keep_first_error(
            &mut first_error,
            "deleting ACLs",
            r.error_code,
            &r.error_message,
        ) {
            continue;
        }
        for m in &r.matching_acls {
            if keep_first_error(
                &mut first_error,
                "deleting an ACL",
                m.error_code,
                &m.error_message,
            ) {
                continue;
            }
            deleted.push(Acl {
                resource_type: m.resource_type,
                name: m.resource_name.to_string(),
                pattern: m.pattern_type,
                principal: m.principal.to_string(),
                host: m.host.to_string(),
                operation: m.operation,
                permission: m.permission_type,
            });
        }
    }
    deleted.sort();
    deleted.dedup();
    if first_error.is_none() || !deleted.is_empty() {
        print_acls(common, &deleted);
    }
    first_error.map_or(Ok(()), Err)
}

/// Records a result's error as the command's error unless an earlier one
/// was; true when the result is an error.
fn keep_first_error(
    first: &mut Option<CliError>,
    doing: &str,
    code: i16,
    message: &Option<StrBytes>,
) -> bool {
    if code == 0 {
        return false;
    }
    first.get_or_insert_with(|| {
        CliError::kafka(doing, code, message.as_ref().map(|m| m.to_string()))
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Args {
        let v: Vec<String> = s.iter().map(|a| a.to_string()).collect();
        Args::parse(&v, SPEC).unwrap()
    }

    #[test]
    fn names_are_kafkas_in_any_spelling() {
        let f = filters(&args(&[
            "transactional-id",
            "tx",
            "--operation",
            "TwoPhaseCommit",
            "--permission",
            "DENY",
        ]))
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].resource_type, ResourceType::TransactionalId);
        assert_eq!(f[0].pattern, PatternType::Literal);
        assert_eq!(f[0].operation, AclOperation::TwoPhaseCommit);
        assert_eq!(f[0].permission, PermissionType::Deny);
        assert_eq!(type_name(ResourceType::DelegationToken), "delegation-token");
        let e = filters(&args(&["topik"])).unwrap_err().to_string();
        assert!(e.contains("transactional-id"), "{e}");
    }

    #[test]
    fn filters_default_to_any_and_multiply_out() {
        let f = filters(&args(&[])).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].resource_type, f[0].pattern, f[0].operation),
            (ResourceType::Any, PatternType::Any, AclOperation::Any)
        );
        assert_eq!(f[0].name, None);
        let f = filters(&args(&[
            "topic",
            "--principal",
            "User:a",
            "--principal",
            "User:b",
            "--operation",
            "read",
            "--operation",
            "write",
        ]))
        .unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].pattern, PatternType::Any);
    }

    #[test]
    fn creations_are_checked_as_kafka_acls_checks_them() {
        let c = creations(&args(&[
            "cluster",
            "--principal",
            "User:a",
            "--operation",
            "idempotent-write",
        ]))
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name, CLUSTER_NAME);
        assert_eq!(c[0].host, WILDCARD);
        assert_eq!(c[0].permission, PermissionType::Allow.code());
        let e = creations(&args(&[
            "cluster",
            "--principal",
            "User:a",
            "--operation",
            "read",
        ]))
        .unwrap_err();
        assert!(
            matches!(e, CliError::Usage(ref m) if m.contains("only supports")),
            "{e}"
        );
        for bad in [
            &["topic", "t", "--operation", "read"][..],
            &["topic", "t", "--principal", "User:a"],
            &[
                "topic",
                "t",
                "--principal",
                "User:a",
                "--operation",
                "read",
                "--pattern",
                "match",
            ],
            &["any", "t", "--principal", "User:a", "--operation", "read"],
        ] {
            assert!(
                matches!(creations(&args(bad)), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
    }
}
