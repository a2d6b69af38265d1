//! `ScramCredentialStore`: the SCRAM credentials of
//! Describe/AlterUserScramCredentials (KIP-554), checked as Kafka's
//! controller checks them and persisted where Kafka keeps them in its
//! metadata log: here `<log.dirs>/__kastle_configs/scram-credentials`, one
//! line per user and mechanism holding the salt, StoredKey, ServerKey and
//! iteration count (never the password). The file is replaced atomically
//! before a change is visible, so an acknowledged change survives a crash.
//! In a cluster the store holds no file: it follows the metadata image's
//! UserScramCredentialRecords (`follow_image`), which the active controller
//! writes (`controller::scram_control`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kafka_protocol::ResponseError;

use crate::broker::config_repository::CONFIGS_DIR;
use crate::metadata::MetadataImage;
use crate::security::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::util::fs::write_atomically;

const FILE: &str = "scram-credentials";

type Credentials = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// A per-user outcome: the error code and message, or success.
pub type UserResult = (String, Result<(), (ResponseError, String)>);

/// One upsertion as AlterUserScramCredentials carries it.
pub struct Upsertion {
    pub name: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// A refusal: the error code and message.
pub type Refusal = (ResponseError, String);

/// What an AlterUserScramCredentials request changes, and whom it refuses.
#[derive(Debug, Default)]
pub struct ScramAlteration {
    pub deletions: Vec<(String, ScramMechanism)>,
    /// Each accepted upsertion's credential: the salted password turned
    /// into StoredKey and ServerKey, as Kafka's `finishUpsertion`.
    pub upsertions: Vec<(String, ScramMechanism, ScramCredential)>,
    pub errors: Vec<(String, Refusal)>,
}

impl ScramAlteration {
    /// Per-user outcomes in Kafka's order: the deletions, the upsertions,
    /// then the refused users.
    pub fn results(&self) -> Vec<(String, Result<(), Refusal>)> {
        self.deletions
            .iter()
            .map(|(n, _)| (n.clone(), Ok(())))
            .chain(self.upsertions.iter().map(|(n, _, _)| (n.clone(), Ok(()))))
            .chain(self.errors.iter().map(|(n, e)| (n.clone(), Err(e.clone()))))
            .collect()
    }
}

const ALTERED_TWICE: &str = "A user credential cannot be altered twice in the same request";

/// Kafka's `validateScramUsernameAndMechanism`.
fn check_name_and_mechanism(name: &str, code: i8) -> Result<ScramMechanism, Refusal> {
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    ScramMechanism::from_type(code).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".into(),
        )
    })
}

/// The request's deletions (user, mechanism code) and upsertions, as
/// [`decide`] takes them.
pub fn changes_of(
    req: &kafka_protocol::messages::AlterUserScramCredentialsRequest,
) -> (Vec<(String, i8)>, Vec<Upsertion>) {
    let deletions = req
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .collect();
    let upsertions = req
        .upsertions
        .iter()
        .map(|u| Upsertion {
            name: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    (deletions, upsertions)
}

/// Kafka's `ScramControlManager.alterCredentials` validation: a user named
/// twice (among deletions and upsertions together) is refused with
/// DUPLICATE_RESOURCE and none of its changes is made; `exists` says
/// whether a credential is there to delete.
pub fn decide(
    exists: impl Fn(&str, ScramMechanism) -> bool,
    deletions: Vec<(String, i8)>,
    upsertions: Vec<Upsertion>,
) -> ScramAlteration {
    let mut out = ScramAlteration::default();
    let has_error = |out: &ScramAlteration, n: &str| out.errors.iter().any(|(u, _)| u == n);
    let dup = || (ResponseError::DuplicateResource, ALTERED_TWICE.to_string());
    let mut ups: Vec<(String, ScramMechanism, Upsertion)> = Vec::new();
    for (name, code) in deletions {
        if has_error(&out, &name) {
            continue;
        }
        if let Some(i) = out.deletions.iter().position(|(u, _)| *u == name) {
            out.deletions.remove(i);
            out.errors.push((name, dup()));
            continue;
        }
        match check_name_and_mechanism(&name, code) {
            Err(e) => out.errors.push((name, e)),
            Ok(m) if exists(&name, m) => out.deletions.push((name, m)),
            Ok(_) => out.errors.push((
                name,
                (
                    ResponseError::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist".into(),
                ),
            )),
        }
    }
    for u in upsertions {
        if has_error(&out, &u.name) {
            continue;
        }
        let in_dels = out.deletions.iter().position(|(n, _)| *n == u.name);
        let in_ups = ups.iter().position(|(n, _, _)| *n == u.name);
        if in_dels.is_some() || in_ups.is_some() {
            if let Some(i) = in_dels {
                out.deletions.remove(i);
            }
            if let Some(i) = in_ups {
                ups.remove(i);
            }
            out.errors.push((u.name, dup()));
            continue;
        }
        let checked = check_name_and_mechanism(&u.name, u.mechanism).and_then(|m| {
            if u.iterations < MIN_ITERATIONS {
                Err((
                    ResponseError::UnacceptableCredential,
                    "Too few iterations".into(),
                ))
            } else if u.iterations > MAX_ITERATIONS {
                Err((
                    ResponseError::UnacceptableCredential,
                    "Too many iterations".into(),
                ))
            } else {
                Ok(m)
            }
        });
        match checked {
            Err(e) => out.errors.push((u.name, e)),
            Ok(m) => ups.push((u.name.clone(), m, u)),
        }
    }
    out.upsertions = ups
        .into_iter()
        .map(|(name, m, u)| {
            let cred =
                ScramCredential::from_salted_password(m, &u.salt, &u.salted_password, u.iterations);
            (name, m, cred)
        })
        .collect();
    out
}

/// The SCRAM credentials an image holds, by user and mechanism (what a
/// cluster broker's `ScramCredentialStore` follows).
pub fn credentials_of(
    image: &MetadataImage,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<ScramMechanism, ScramCredential>>
{
    let mut out: std::collections::BTreeMap<_, std::collections::BTreeMap<_, _>> =
        Default::default();
    for ((name, code), c) in &image.scram {
        // The image refuses unknown mechanisms; skip one defensively.
        let Some(m) = ScramMechanism::from_type(*code) else {
            continue;
        };
        out.entry(name.clone()).or_default().insert(
            m,
            ScramCredential {
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            },
        );
    }
    out
}

pub struct ScramCredentialStore {
    /// The file a standalone node keeps; `None` in a cluster, where the
    /// credentials follow the metadata image.
    path: Option<PathBuf>,
    credentials: RwLock<Credentials>,
}

impl ScramCredentialStore {
    /// Loads what a previous run persisted in `log_dir`.
    pub fn load(log_dir: &Path) -> anyhow::Result<ScramCredentialStore> {
        let dir = log_dir.join(CONFIGS_DIR);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(FILE);
        let mut credentials = Credentials::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let parsed = (|| {
                        let mut it = line.splitn(3, ' ');
                        let mechanism = ScramMechanism::from_name(it.next()?)?;
                        let user = String::from_utf8(B64.decode(it.next()?).ok()?).ok()?;
                        let cred = ScramCredential::parse_line(it.next()?)?;
                        Some((user, mechanism, cred))
                    })();
                    match parsed {
                        Some((user, m, c)) => {
                            credentials.entry(user).or_default().insert(m, c);
                        }
                        None => {
                            anyhow::bail!("{}: line {} is not a credential", path.display(), n + 1)
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
        Ok(ScramCredentialStore {
            path: Some(path),
            credentials: RwLock::new(credentials),
        })
    }

    /// A cluster broker's store: no file, empty until the first metadata
    /// image (the credentials are the cluster's, in its metadata log).
    pub fn for_cluster() -> ScramCredentialStore {
        ScramCredentialStore {
            path: None,
            credentials: RwLock::new(Credentials::new()),
        }
    }

    /// Takes the credentials of a new metadata image (cluster mode).
    pub fn follow_image(&self, image: &MetadataImage) {
        let next = credentials_of(image);
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// A user's credential for a mechanism (what SCRAM authentication uses).
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let c = self.credentials.read().unwrap_or_else(|p| p.into_inner());
        c.get(user)?.get(&mechanism).cloned()
    }

    /// AlterUserScramCredentials on a standalone node, checked as Kafka's
    /// controller checks it (`controller::scram_control::decide`). The
    /// accepted changes are persisted together; results are the deletions,
    /// then the upsertions, then the refused users.
    pub fn alter(
        &self,
        deletions: Vec<(String, i8)>,
        upsertions: Vec<Upsertion>,
    ) -> Vec<UserResult> {
        let mut guard = self.credentials.write().unwrap_or_else(|p| p.into_inner());
        let exists = |n: &str, m: ScramMechanism| guard.get(n).is_some_and(|c| c.contains_key(&m));
        let decided = decide(exists, deletions, upsertions);
        let ScramAlteration {
            deletions: dels,
            upsertions: ups,
            errors,
        } = decided;
        let mut next = guard.clone();
        for (name, m) in &dels {
            if let Some(c) = next.get_mut(name) {
                c.remove(m);
                if c.is_empty() {
                    next.remove(name);
                }
            }
        }
        for (name, m, cred) in &ups {
            next.entry(name.clone())
                .or_default()
                .insert(*m, cred.clone());
        }
        let accepted: Vec<String> = dels
            .into_iter()
            .map(|(n, _)| n)
            .chain(ups.into_iter().map(|(n, _, _)| n))
            .collect();
        let persisted = match &self.path {
            _ if accepted.is_empty() => Ok(()),
            None => Err(
                "SCRAM credentials are the cluster's: alter them through the controller"
                    .to_string(),
            ),
            Some(path) => write_atomically(path, render(&next).as_bytes()).map_err(|e| {
                tracing::error!(error = %e, "SCRAM credentials not persisted");
                format!("SCRAM credentials could not be persisted: {e}")
            }),
        };
        if persisted.is_ok() {
            *guard = next;
        }
        accepted
            .into_iter()
            .map(|n| match &persisted {
                Ok(()) => (n, Ok(())),
                Err(m) => (n, Err((ResponseError::KafkaStorageError, m.clone()))),
            })
            .chain(errors.into_iter().map(|(n, e)| (n, Err(e))))
            .collect()
    }

    /// DescribeUserScramCredentials: every user with a credential when
    /// `users` is None or empty, else the named ones (RESOURCE_NOT_FOUND
    /// for a user without one, DUPLICATE_RESOURCE for a repeated name).
    /// Each user's (mechanism, iterations) pairs, or its error.
    #[allow(clippy::type_complexity)]
    pub fn describe(
        &self,
        users: Option<Vec<String>>,
    ) -> Vec<(
        String,
        Result<Vec<(ScramMechanism, i32)>, (ResponseError, String)>,
    )> {
        let c = self.credentials.read().unwrap_or_else(|p| p.into_inner());
        let info = |u: &str| -> Option<Vec<(ScramMechanism, i32)>> {
            let m = c.get(u)?;
            Some(m.iter().map(|(m, c)| (*m, c.iterations)).collect())
        };
        match users.filter(|u| !u.is_empty()) {
            None => c
                .keys()
                .filter_map(|u| Some((u.clone(), Ok(info(u)?))))
                .collect(),
            Some(names) => {
                let mut seen: Vec<(String, bool)> = Vec::new();
                for n in names {
                    match seen.iter_mut().find(|(s, _)| *s == n) {
                        Some(e) => e.1 = true,
                        None => seen.push((n, false)),
                    }
                }
                seen.into_iter()
                    .map(|(u, dup)| {
                        let r = if dup {
                            Err((
                                ResponseError::DuplicateResource,
                                format!("Cannot describe SCRAM credentials for the same user twice in a single request: {u}"),
                            ))
                        } else {
                            info(&u).ok_or_else(|| {
                                (
                                    ResponseError::ResourceNotFound,
                                    format!("Attempt to describe a user credential that does not exist: {u}"),
                                )
                            })
                        };
                        (u, r)
                    })
                    .collect()
            }
        }
    }
}

fn render(c: &Credentials) -> String {
    let mut out = String::from("# SCRAM credentials: mechanism, base64 user name, salted keys\n");
    for (user, creds) in c {
        for (m, cred) in creds {
            out.push_str(&format!(
                "{} {} {}\n",
                m.name(),
                B64.encode(user),
                cred.to_line()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, mechanism: i8, iterations: i32) -> Upsertion {
        Upsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: vec![7; 32],
        }
    }

    #[test]
    fn alter_checks_as_kafka_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ScramCredentialStore::load(dir.path()).expect("load");
        let r = s.alter(
            vec![("ghost".into(), 1)],
            vec![
                up("alice", 1, 8192),
                up("", 1, 8192),
                up("bob", 3, 8192),
                up("carol", 2, 100),
                up("dave", 2, 20000),
                up("eve", 1, 4096),
                up("eve", 2, 4096),
            ],
        );
        let code = |u: &str| {
            r.iter()
                .find(|(n, _)| n == u)
                .map(|(_, r)| r.as_ref().err().map(|e| e.0))
        };
        assert_eq!(code("alice"), Some(None));
        assert_eq!(code("ghost"), Some(Some(ResponseError::ResourceNotFound)));
        assert_eq!(code(""), Some(Some(ResponseError::UnacceptableCredential)));
        assert_eq!(
            code("bob"),
            Some(Some(ResponseError::UnsupportedSaslMechanism))
        );
        assert_eq!(
            code("carol"),
            Some(Some(ResponseError::UnacceptableCredential))
        );
        assert_eq!(
            code("dave"),
            Some(Some(ResponseError::UnacceptableCredential))
        );
        assert_eq!(code("eve"), Some(Some(ResponseError::DuplicateResource)));
        assert!(s.get("alice", ScramMechanism::Sha256).is_some());
        assert!(s.get("eve", ScramMechanism::Sha256).is_none());
        let again = ScramCredentialStore::load(dir.path()).expect("reload");
        assert_eq!(
            again.get("alice", ScramMechanism::Sha256),
            s.get("alice", ScramMechanism::Sha256)
        );
        let d = again.describe(Some(vec!["alice".into(), "x".into(), "x".into()]));
        assert_eq!(d[0].1, Ok(vec![(ScramMechanism::Sha256, 8192)]));
        assert_eq!(
            d[1].1.as_ref().err().map(|e| e.0),
            Some(ResponseError::DuplicateResource)
        );
        let r = again.alter(vec![("alice".into(), 1)], vec![]);
        assert!(r[0].1.is_ok());
        assert!(again.describe(None).is_empty());
    }
}
