//! Kafka's ACL model and its decision, as the KRaft `StandardAuthorizer`
//! makes it: resource types, pattern types (LITERAL, PREFIXED; MATCH and ANY
//! in filters), operations and their implications, ALLOW/DENY with deny
//! winning, principals (`User:*` matches every one) and hosts (`*`, an
//! address, or a CIDR range), super users and
//! `allow.everyone.if.no.acl.found`. Pure: the caller passes the ACLs and
//! the settings in.

use std::net::IpAddr;

use super::KafkaPrincipal;

/// The wildcard resource name (`*`) and host (`*`).
pub const WILDCARD: &str = "*";
/// The wildcard principal: every principal matches it.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The one valid name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($v:ident = $c:expr, $s:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($v,)* }

        impl $name {
            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$v => $c,)* }
            }
            /// From a wire code: codes this version does not know read as
            /// UNKNOWN, as Kafka's `fromCode`.
            pub fn from_code(code: i8) -> $name {
                match code { $($c => $name::$v,)* _ => $name::Unknown }
            }
            /// Kafka's enum name (what `kafka-acls` prints).
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

codes!(
    /// Kafka's `ResourceType`.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

codes!(
    /// Kafka's `PatternType` (KIP-290).
    PatternType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

codes!(
    /// Kafka's `AclOperation`.
    AclOperation {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

codes!(
    /// Kafka's `AclPermissionType`.
    PermissionType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

impl ResourceType {
    /// The operations an ACL on this resource type can grant (Kafka's
    /// `AclEntry.supportedOperations`): what authorized-operations
    /// bitfields are computed over.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            _ => &[],
        }
    }
}

/// A resource pattern of a stored ACL (LITERAL or PREFIXED).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

/// Who, from where, may or may not do what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// `Type:name`, as given (`User:*` for everyone).
    pub principal: String,
    /// `*`, an address, or (KIP-1276) a CIDR range.
    pub host: String,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}

/// What DescribeAcls and DeleteAcls select with: `None` strings and ANY
/// codes match everything; MATCH selects the ACLs that apply to a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

impl AclBindingFilter {
    /// Kafka refuses a filter with an UNKNOWN part.
    pub fn is_unknown(&self) -> bool {
        self.resource_type == ResourceType::Unknown
            || self.pattern_type == PatternType::Unknown
            || self.operation == AclOperation::Unknown
            || self.permission == PermissionType::Unknown
    }

    /// Whether the filter's resource part selects `pattern` (Kafka's
    /// `ResourcePatternFilter.matches`).
    pub fn matches_pattern(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return *name == pattern.name;
        }
        match pattern.pattern_type {
            PatternType::Literal => *name == pattern.name || pattern.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&pattern.name),
            _ => false,
        }
    }

    /// Whether the filter selects `acl`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let e = &acl.entry;
        self.matches_pattern(&acl.pattern)
            && self.principal.as_ref().is_none_or(|p| *p == e.principal)
            && self.host.as_ref().is_none_or(|h| *h == e.host)
            && (self.operation == AclOperation::Any || self.operation == e.operation)
            && (self.permission == PermissionType::Any || self.permission == e.permission)
    }
}

/// Why a new ACL is refused (Kafka answers INVALID_REQUEST with the text).
pub fn validate_new(acl: &AclBinding) -> Result<(), String> {
    let p = &acl.pattern;
    let e = &acl.entry;
    if matches!(p.resource_type, ResourceType::Any | ResourceType::Unknown) {
        return Err(format!("Invalid resourceType {}", p.resource_type));
    }
    if !matches!(p.pattern_type, PatternType::Literal | PatternType::Prefixed) {
        return Err(format!("Invalid patternType {}", p.pattern_type));
    }
    if matches!(e.operation, AclOperation::Any | AclOperation::Unknown) {
        return Err(format!("Invalid operation {}", e.operation));
    }
    if !matches!(e.permission, PermissionType::Allow | PermissionType::Deny) {
        return Err(format!("Invalid permissionType {}", e.permission));
    }
    if p.resource_type == ResourceType::Cluster && p.name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if p.name.is_empty() {
        return Err("Invalid empty resource name specified".to_string());
    }
    if !e.principal.contains(':') {
        return Err(format!(
            "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
            e.principal
        ));
    }
    if e.host.contains('/') && Cidr::parse(&e.host).is_none() {
        return Err(format!("Invalid CIDR notation in host: {}", e.host));
    }
    Ok(())
}

/// An address range `addr/bits` (KIP-1276 host patterns).
struct Cidr {
    net: IpAddr,
    bits: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = s.split_once('/')?;
        let net: IpAddr = addr.parse().ok()?;
        let bits: u32 = bits.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { net, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn prefix(a: u128, b: u128, bits: u32, width: u32) -> bool {
            if bits == 0 {
                return true;
            }
            let shift = width - bits;
            (a >> shift) == (b >> shift)
        }
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                prefix(u32::from(n).into(), u32::from(i).into(), self.bits, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix(n.into(), i.into(), self.bits, 128),
            _ => false,
        }
    }
}

/// Whether an ACL's host admits a client at `client`.
fn host_matches(acl_host: &str, client: IpAddr) -> bool {
    if acl_host == WILDCARD {
        return true;
    }
    if acl_host.contains('/') {
        return Cidr::parse(acl_host).is_some_and(|c| c.contains(client));
    }
    match acl_host.parse::<IpAddr>() {
        Ok(ip) => ip == client,
        Err(_) => acl_host == client.to_string(),
    }
}

fn principal_matches(acl_principal: &str, principal: &KafkaPrincipal) -> bool {
    if acl_principal == WILDCARD_PRINCIPAL {
        return true;
    }
    match acl_principal.split_once(':') {
        Some((t, n)) => t == principal.principal_type && n == principal.name,
        None => false,
    }
}

/// Whether an ACL's resource pattern applies to `name`.
fn pattern_applies(pattern: &ResourcePattern, resource_type: ResourceType, name: &str) -> bool {
    pattern.resource_type == resource_type
        && match pattern.pattern_type {
            PatternType::Literal => pattern.name == name || pattern.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&pattern.name),
            _ => false,
        }
}

/// Whether an ACL with operation `acl_op` and `permission` covers `op`:
/// ALL covers everything; an ALLOW of READ, WRITE, DELETE or ALTER also
/// grants DESCRIBE, one of ALTER_CONFIGS also DESCRIBE_CONFIGS. A DENY
/// covers only its own operation (or ALL).
fn operation_covers(acl_op: AclOperation, permission: PermissionType, op: AclOperation) -> bool {
    use AclOperation::*;
    if acl_op == All || acl_op == op {
        return true;
    }
    if permission != PermissionType::Allow {
        return false;
    }
    match op {
        Describe => matches!(acl_op, Read | Write | Delete | Alter),
        DescribeConfigs => acl_op == AlterConfigs,
        _ => false,
    }
}

/// The authorizer's settings (`super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// Principals, as `Type:name`, allowed everything.
    pub super_users: Vec<String>,
    /// Whether a resource without any ACL is open to everyone.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    /// From the two keys' values (`super.users` is `;`-separated).
    pub fn new(super_users: &str, allow_everyone_if_no_acl_found: bool) -> AuthorizerSettings {
        AuthorizerSettings {
            super_users: super_users
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        let p = principal.to_string();
        self.super_users.contains(&p)
    }
}

/// Who asks, and from where.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    pub principal: &'a KafkaPrincipal,
    pub host: IpAddr,
}

/// Decides one action on one resource (`StandardAuthorizer.authorize`):
/// super users may do everything; otherwise a matching DENY refuses, else
/// a matching ALLOW grants; a resource no ACL applies to at all follows
/// `allow.everyone.if.no.acl.found`; anything else is refused.
pub fn authorize<'a>(
    settings: &AuthorizerSettings,
    acls: impl IntoIterator<Item = &'a AclBinding>,
    who: &Requester<'_>,
    op: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if settings.is_super_user(who.principal) {
        return true;
    }
    let mut resource_has_acls = false;
    let mut allowed = false;
    for acl in acls {
        if !pattern_applies(&acl.pattern, resource_type, name) {
            continue;
        }
        resource_has_acls = true;
        let e = &acl.entry;
        if !principal_matches(&e.principal, who.principal)
            || !host_matches(&e.host, who.host)
            || !operation_covers(e.operation, e.permission, op)
        {
            continue;
        }
        match e.permission {
            PermissionType::Deny => return false,
            PermissionType::Allow => allowed = true,
            _ => {}
        }
    }
    allowed || (!resource_has_acls && settings.allow_everyone_if_no_acl_found)
}

/// Whether `op` is allowed on at least one resource of the type (Kafka's
/// `Authorizer.authorizeByResourceType`, what idempotent producers are
/// checked with): some LITERAL or PREFIXED ALLOW that no DENY dominates
/// (a DENY on `*` refuses all).
pub fn authorize_by_resource_type(
    settings: &AuthorizerSettings,
    acls: &[AclBinding],
    who: &Requester<'_>,
    op: AclOperation,
    resource_type: ResourceType,
) -> bool {
    // A hard-coded name first: super users and an open resource type pass.
    if authorize(settings, acls, who, op, resource_type, "hardcode") {
        return true;
    }
    let mut deny_literal = Vec::new();
    let mut deny_prefixed = Vec::new();
    let mut allow = Vec::new();
    for acl in acls {
        let (p, e) = (&acl.pattern, &acl.entry);
        if p.resource_type != resource_type
            || !host_matches(&e.host, who.host)
            || !principal_matches(&e.principal, who.principal)
            || (e.operation != op && e.operation != AclOperation::All)
        {
            continue;
        }
        match e.permission {
            PermissionType::Deny => match p.pattern_type {
                PatternType::Literal if p.name == WILDCARD => return false,
                PatternType::Literal => deny_literal.push(p.name.as_str()),
                PatternType::Prefixed => deny_prefixed.push(p.name.as_str()),
                _ => {}
            },
            PermissionType::Allow => {
                if p.pattern_type == PatternType::Literal && p.name == WILDCARD {
                    return true;
                }
                allow.push(p);
            }
            _ => {}
        }
    }
    allow.iter().any(|p| {
        if p.pattern_type == PatternType::Literal && deny_literal.contains(&p.name.as_str()) {
            return false;
        }
        !deny_prefixed.iter().any(|d| p.name.starts_with(d))
    })
}

/// The bitfield of the operations `who` may do on a resource, over the
/// type's supported operations (KIP-430 authorized-operations fields).
pub fn authorized_operations(
    settings: &AuthorizerSettings,
    acls: &[AclBinding],
    who: &Requester<'_>,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    resource_type
        .supported_operations()
        .iter()
        .filter(|op| authorize(settings, acls, who, **op, resource_type, name))
        .fold(0, |bits, op| bits | (1 << op.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        host: &str,
        op: AclOperation,
        perm: PermissionType,
    ) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: rt,
                name: name.to_string(),
                pattern_type: pt,
            },
            entry: AccessControlEntry {
                principal: principal.to_string(),
                host: host.to_string(),
                operation: op,
                permission: perm,
            },
        }
    }

    fn topic_allow(name: &str, pt: PatternType, principal: &str, op: AclOperation) -> AclBinding {
        acl(
            ResourceType::Topic,
            name,
            pt,
            principal,
            "*",
            op,
            PermissionType::Allow,
        )
    }

    const LIT: PatternType = PatternType::Literal;
    const PRE: PatternType = PatternType::Prefixed;

    fn alice() -> KafkaPrincipal {
        KafkaPrincipal::user("alice")
    }

    fn who(p: &KafkaPrincipal) -> Requester<'_> {
        Requester {
            principal: p,
            host: "10.0.0.5".parse().unwrap(),
        }
    }

    fn check(acls: &[AclBinding], op: AclOperation, topic: &str) -> bool {
        let p = alice();
        authorize(
            &AuthorizerSettings::default(),
            acls,
            &who(&p),
            op,
            ResourceType::Topic,
            topic,
        )
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_read_unknown() {
        for c in 0..=15 {
            assert_eq!(AclOperation::from_code(c).code(), c);
        }
        assert_eq!(AclOperation::from_code(16), AclOperation::Unknown);
        assert_eq!(ResourceType::from_code(-1), ResourceType::Unknown);
        assert_eq!(PatternType::from_code(4), PatternType::Prefixed);
        assert_eq!(PermissionType::from_code(3).name(), "ALLOW");
    }

    #[test]
    fn literal_prefixed_and_wildcard_resources() {
        use AclOperation::*;
        let acls = [topic_allow("orders", LIT, "User:alice", Read)];
        assert!(check(&acls, Read, "orders"));
        assert!(!check(&acls, Read, "orders2"));
        let acls = [topic_allow("ord", PRE, "User:alice", Read)];
        assert!(check(&acls, Read, "orders") && check(&acls, Read, "ord"));
        assert!(!check(&acls, Read, "or"));
        let acls = [topic_allow("*", LIT, "User:alice", Read)];
        assert!(check(&acls, Read, "anything"));
        // A prefixed "*" is a prefix, not a wildcard.
        let acls = [topic_allow("*", PRE, "User:alice", Read)];
        assert!(!check(&acls, Read, "anything"));
    }

    #[test]
    fn wildcard_principal_and_hosts() {
        use AclOperation::*;
        assert!(check(&[topic_allow("t", LIT, "User:*", Write)], Write, "t"));
        assert!(!check(
            &[topic_allow("t", LIT, "User:bob", Write)],
            Write,
            "t"
        ));
        let host = |h: &str| {
            [acl(
                ResourceType::Topic,
                "t",
                LIT,
                "User:alice",
                h,
                Write,
                PermissionType::Allow,
            )]
        };
        assert!(check(&host("10.0.0.5"), Write, "t"));
        assert!(!check(&host("10.0.0.6"), Write, "t"));
        assert!(check(&host("10.0.0.0/24"), Write, "t"));
        assert!(!check(&host("10.0.1.0/24"), Write, "t"));
        assert!(check(&host("0.0.0.0/0"), Write, "t"));
        assert!(!check(&host("::/0"), Write, "t"));
    }

    #[test]
    fn deny_wins_over_allow() {
        use AclOperation::*;
        let acls = [
            topic_allow("*", LIT, "User:*", All),
            acl(
                ResourceType::Topic,
                "secret",
                PRE,
                "User:alice",
                "*",
                Read,
                PermissionType::Deny,
            ),
        ];
        assert!(!check(&acls, Read, "secret-1"));
        assert!(check(&acls, Write, "secret-1"));
        assert!(check(&acls, Read, "public"));
        // A DENY of READ does not deny DESCRIBE, which WRITE implies.
        assert!(check(&acls, Describe, "secret-1"));
    }

    #[test]
    fn implications() {
        use AclOperation::*;
        for op in [Read, Write, Delete, Alter, Describe, All] {
            assert!(
                check(&[topic_allow("t", LIT, "User:alice", op)], Describe, "t"),
                "{op}"
            );
        }
        for op in [Create, AlterConfigs, DescribeConfigs] {
            assert!(
                !check(&[topic_allow("t", LIT, "User:alice", op)], Describe, "t"),
                "{op}"
            );
        }
        assert!(check(
            &[topic_allow("t", LIT, "User:alice", AlterConfigs)],
            DescribeConfigs,
            "t"
        ));
        assert!(!check(
            &[topic_allow("t", LIT, "User:alice", Read)],
            Write,
            "t"
        ));
        // DENY ALL refuses everything.
        let deny_all = acl(
            ResourceType::Topic,
            "t",
            LIT,
            "User:alice",
            "*",
            All,
            PermissionType::Deny,
        );
        assert!(!check(
            &[topic_allow("t", LIT, "User:alice", All), deny_all],
            Describe,
            "t"
        ));
    }

    #[test]
    fn super_users_and_allow_everyone() {
        let p = alice();
        let deny = [acl(
            ResourceType::Topic,
            "t",
            LIT,
            "User:alice",
            "*",
            AclOperation::All,
            PermissionType::Deny,
        )];
        let supers = AuthorizerSettings::new(" User:bob ; User:alice;", false);
        assert_eq!(supers.super_users, vec!["User:bob", "User:alice"]);
        assert!(authorize(
            &supers,
            &deny,
            &who(&p),
            AclOperation::Write,
            ResourceType::Topic,
            "t"
        ));
        let open = AuthorizerSettings::new("", true);
        // No ACL on the resource: open to everyone.
        assert!(authorize(
            &open,
            &deny,
            &who(&p),
            AclOperation::Write,
            ResourceType::Topic,
            "u"
        ));
        // An ACL on it, for someone else: closed.
        let bob = [topic_allow("u", LIT, "User:bob", AclOperation::Write)];
        assert!(!authorize(
            &open,
            &bob,
            &who(&p),
            AclOperation::Write,
            ResourceType::Topic,
            "u"
        ));
        let closed = AuthorizerSettings::default();
        assert!(!authorize(
            &closed,
            &[],
            &who(&p),
            AclOperation::Write,
            ResourceType::Topic,
            "u"
        ));
    }

    #[test]
    fn by_resource_type() {
        use AclOperation::*;
        let p = alice();
        let s = AuthorizerSettings::default();
        let by = |acls: &[AclBinding]| {
            authorize_by_resource_type(&s, acls, &who(&p), Write, ResourceType::Topic)
        };
        assert!(!by(&[]));
        assert!(by(&[topic_allow("t", LIT, "User:alice", Write)]));
        assert!(!by(&[topic_allow("t", LIT, "User:alice", Read)]));
        let deny_pre = acl(
            ResourceType::Topic,
            "t",
            PRE,
            "User:alice",
            "*",
            Write,
            PermissionType::Deny,
        );
        assert!(!by(&[
            topic_allow("tx", LIT, "User:alice", Write),
            deny_pre.clone()
        ]));
        assert!(by(&[topic_allow("ux", LIT, "User:alice", Write), deny_pre]));
        let deny_star = acl(
            ResourceType::Topic,
            "*",
            LIT,
            "User:alice",
            "*",
            Write,
            PermissionType::Deny,
        );
        assert!(!by(&[
            topic_allow("ux", LIT, "User:alice", Write),
            deny_star
        ]));
    }

    #[test]
    fn filters_select_as_kafka() {
        let lit = topic_allow("orders", LIT, "User:alice", AclOperation::Read);
        let star = topic_allow("*", LIT, "User:alice", AclOperation::Read);
        let pre = topic_allow("ord", PRE, "User:alice", AclOperation::Read);
        let f = |pt: PatternType, name: Option<&str>| AclBindingFilter {
            resource_type: ResourceType::Any,
            name: name.map(str::to_string),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: PermissionType::Any,
        };
        let sel = |f: &AclBindingFilter| {
            [&lit, &star, &pre]
                .iter()
                .map(|a| f.matches(a))
                .collect::<Vec<_>>()
        };
        assert_eq!(sel(&f(PatternType::Any, None)), [true, true, true]);
        assert_eq!(
            sel(&f(PatternType::Any, Some("orders"))),
            [true, false, false]
        );
        assert_eq!(
            sel(&f(PatternType::Match, Some("orders"))),
            [true, true, true]
        );
        assert_eq!(
            sel(&f(PatternType::Match, Some("other"))),
            [false, true, false]
        );
        assert_eq!(sel(&f(LIT, None)), [true, true, false]);
        assert_eq!(sel(&f(PRE, Some("ord"))), [false, false, true]);
        let mut by_op = f(PatternType::Any, None);
        by_op.operation = AclOperation::Write;
        assert_eq!(sel(&by_op), [false, false, false]);
        by_op.operation = AclOperation::Read;
        by_op.principal = Some("User:alice".into());
        assert_eq!(sel(&by_op), [true, true, true]);
        assert!(AclBindingFilter {
            pattern_type: PatternType::Unknown,
            ..f(PatternType::Any, None)
        }
        .is_unknown());
    }

    #[test]
    fn new_acls_are_validated() {
        let ok = topic_allow("t", LIT, "User:alice", AclOperation::Read);
        assert_eq!(validate_new(&ok), Ok(()));
        let mut bad = ok.clone();
        bad.pattern.pattern_type = PatternType::Match;
        assert_eq!(
            validate_new(&bad),
            Err("Invalid patternType MATCH".to_string())
        );
        let mut bad = ok.clone();
        bad.entry.operation = AclOperation::Any;
        assert_eq!(validate_new(&bad), Err("Invalid operation ANY".to_string()));
        let mut bad = ok.clone();
        bad.entry.principal = "alice".into();
        assert!(validate_new(&bad).is_err());
        let mut bad = ok.clone();
        bad.pattern.name.clear();
        assert!(validate_new(&bad).is_err());
        let mut bad = ok.clone();
        bad.entry.host = "10.0.0.0/33".into();
        assert!(validate_new(&bad).is_err());
        let mut cluster = ok.clone();
        cluster.pattern.resource_type = ResourceType::Cluster;
        assert!(validate_new(&cluster).is_err());
        cluster.pattern.name = CLUSTER_NAME.into();
        assert_eq!(validate_new(&cluster), Ok(()));
    }

    #[test]
    fn operations_bitfield() {
        let p = alice();
        let acls = [topic_allow("t", LIT, "User:alice", AclOperation::Read)];
        let bits = authorized_operations(
            &AuthorizerSettings::default(),
            &acls,
            &who(&p),
            ResourceType::Topic,
            "t",
        );
        assert_eq!(bits, (1 << 3) | (1 << 8));
    }
}
