//! SASL/PLAIN (RFC 4616) as Kafka's server checks it: one message,
//! `[authzid] NUL authcid NUL passwd`, checked against the users the JAAS
//! configuration declares.

use std::collections::BTreeMap;

/// Checks one PLAIN message against `users` (name → password). On success
/// the authenticated user name; on failure the message Kafka gives the
/// client.
pub fn authenticate(msg: &[u8], users: &BTreeMap<String, String>) -> Result<String, String> {
    let text = String::from_utf8_lossy(msg);
    let parts: Vec<&str> = text.split('\u{0}').collect();
    if parts.len() != 3 {
        return Err(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        ));
    }
    let (authzid, user, password) = (parts[0], parts[1], parts[2]);
    if user.is_empty() {
        return Err("Authentication failed: username not specified".into());
    }
    if password.is_empty() {
        return Err("Authentication failed: password not specified".into());
    }
    let ok = users
        .get(user)
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), password.as_bytes()));
    if !ok {
        return Err("Authentication failed: Invalid username or password".into());
    }
    if !authzid.is_empty() && authzid != user {
        return Err(
            "Authentication failed: Client requested an authorization id that is different from username"
                .into(),
        );
    }
    Ok(user.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_users_as_kafka() {
        let users: BTreeMap<String, String> = [("alice".to_string(), "s3cret".to_string())].into();
        assert_eq!(authenticate(b"\0alice\0s3cret", &users), Ok("alice".into()));
        assert_eq!(
            authenticate(b"alice\0alice\0s3cret", &users),
            Ok("alice".into())
        );
        assert_eq!(
            authenticate(b"\0alice\0nope", &users).unwrap_err(),
            "Authentication failed: Invalid username or password"
        );
        assert_eq!(
            authenticate(b"\0bob\0s3cret", &users).unwrap_err(),
            "Authentication failed: Invalid username or password"
        );
        assert!(authenticate(b"alice", &users)
            .unwrap_err()
            .contains("expected 3 tokens, got 1"));
        assert!(authenticate(b"bob\0alice\0s3cret", &users)
            .unwrap_err()
            .contains("authorization id"));
    }
}
