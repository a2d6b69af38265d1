//! Who may see what on the console. Security is on when the broker has an
//! authorizer (`authorizer.class.name`), a SASL listener, or SCRAM
//! credentials; then every request needs HTTP basic authentication checked
//! against the broker's own credentials (a SASL/PLAIN user of any listener's
//! JAAS configuration, or a SCRAM credential: the password salted with the
//! stored salt and iterations must give the stored key), and the user is
//! the principal `User:<name>` Kafka would give the same login over SASL.
//! With an authorizer, what the console shows is what that principal may
//! DESCRIBE (topics, groups), DESCRIBE_CONFIGS (configs) or READ (records)
//! per the ACLs, decided by the broker's authorizer from the HTTP client's
//! address, exactly as for a Kafka request.

use std::net::IpAddr;

use base64::Engine;
use subtle::ConstantTimeEq;

use crate::handlers::KafkaApis;
use crate::security::acl::{AclOperation, ResourceType};
use crate::security::scram::{ScramCredential, ScramMechanism};
use crate::security::KafkaPrincipal;

/// Kafka's name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// Longest `user:password` accepted, before any hashing is done.
pub const MAX_CREDENTIALS_BYTES: usize = 1024;

/// Whether the console must authenticate its users.
pub fn security_on(apis: &KafkaApis) -> bool {
    apis.authorizer.is_some()
        || !apis.sasl.listeners.is_empty()
        || !apis.sasl.declared_scram.is_empty()
        || !apis.scram.describe(None).is_empty()
}

/// The viewer of one request: who (none when security is off) and from
/// where.
pub struct Viewer<'a> {
    apis: &'a KafkaApis,
    pub principal: Option<KafkaPrincipal>,
    host: IpAddr,
    /// The broker itself (the sampler): sees everything.
    unrestricted: bool,
}

impl<'a> Viewer<'a> {
    /// Checks the request's `Authorization` header. `None`: refused (no,
    /// malformed or wrong credentials while security is on).
    pub fn authenticate(
        apis: &'a KafkaApis,
        authorization: Option<&str>,
        host: IpAddr,
    ) -> Option<Viewer<'a>> {
        if !security_on(apis) {
            return Some(Viewer {
                apis,
                principal: None,
                host,
                unrestricted: false,
            });
        }
        let (user, password) = basic_credentials(authorization?)?;
        if !password_matches(apis, &user, &password) {
            return None;
        }
        Some(Viewer {
            apis,
            principal: Some(KafkaPrincipal::user(user)),
            host,
            unrestricted: false,
        })
    }

    /// The broker's own view, for sampling: nothing filtered.
    pub fn everyone(apis: &'a KafkaApis) -> Viewer<'a> {
        Viewer {
            apis,
            principal: None,
            host: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            unrestricted: true,
        }
    }

    /// Whether the viewer may do `op` on the resource.
    pub fn may(&self, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        match (&self.apis.authorizer, &self.principal) {
            _ if self.unrestricted => true,
            (None, _) => true,
            (Some(a), Some(p)) => a.authorize(p, self.host, op, resource_type, name),
            // An authorizer makes security on: every viewer authenticated.
            (Some(_), None) => false,
        }
    }

    pub fn may_describe_topic(&self, topic: &str) -> bool {
        self.may(AclOperation::Describe, ResourceType::Topic, topic)
    }

    pub fn may_describe_group(&self, group: &str) -> bool {
        self.may(AclOperation::Describe, ResourceType::Group, group)
    }
}

/// `Basic base64(user:password)` → (user, password).
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || token.len() > MAX_CREDENTIALS_BYTES * 2 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    if decoded.len() > MAX_CREDENTIALS_BYTES {
        return None;
    }
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    if user.is_empty() || password.is_empty() {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}

/// The broker's verdict on a login: a PLAIN user of any SASL listener, or
/// a SCRAM credential (stored or declared) of either mechanism.
fn password_matches(apis: &KafkaApis, user: &str, password: &str) -> bool {
    let plain = apis.sasl.listeners.values().any(|l| {
        l.plain_users
            .get(user)
            .is_some_and(|p| bool::from(p.as_bytes().ct_eq(password.as_bytes())))
    });
    if plain {
        return true;
    }
    ScramMechanism::ALL.into_iter().any(|m| {
        let stored = apis.scram.get(user, m).or_else(|| {
            apis.sasl
                .declared_scram
                .get(&(user.to_string(), m))
                .cloned()
        });
        stored.is_some_and(|c| scram_password_matches(m, &c, password))
    })
}

/// Whether `password` salted as `stored` was gives its stored key.
pub fn scram_password_matches(m: ScramMechanism, stored: &ScramCredential, password: &str) -> bool {
    let given = ScramCredential::from_password(m, password, &stored.salt, stored.iterations);
    bool::from(given.stored_key.as_slice().ct_eq(&stored.stored_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_parsed_strictly() {
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        assert_eq!(
            basic_credentials(&format!("Basic {}", b64("alice:s3:cret"))),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(
            basic_credentials(&format!("basic {}", b64("a:b"))),
            Some(("a".into(), "b".into()))
        );
        for bad in [
            format!("Bearer {}", b64("a:b")),
            format!("Basic {}", b64("nocolon")),
            format!("Basic {}", b64(":pw")),
            format!("Basic {}", b64("user:")),
            "Basic !!!".to_string(),
            "Basic".to_string(),
            format!("Basic {}", b64(&"x:".repeat(600))),
        ] {
            assert_eq!(basic_credentials(&bad), None, "{bad}");
        }
    }

    #[test]
    fn scram_passwords_are_checked_against_the_stored_key() {
        let m = ScramMechanism::Sha256;
        let c = ScramCredential::from_password(m, "right", b"salt", 4096);
        assert!(scram_password_matches(m, &c, "right"));
        assert!(!scram_password_matches(m, &c, "wrong"));
    }
}
