//! `kastle user list|describe|create|delete`: SCRAM credentials, as
//! Kafka's `kafka-configs.sh --entity-type users` shows and alters them,
//! over DescribeUserScramCredentials and AlterUserScramCredentials
//! (KIP-554). As Kafka's admin client, the password never leaves this
//! process: it sends a random salt and the salted password (PBKDF2 with the
//! mechanism's HMAC, [`ScramMechanism::salted_password`]), from which the
//! broker derives the stored and server keys.

use std::io::{BufRead, Read};

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use serde_json::json;

use super::client::{sb, Client};
use super::{check, flag, print_json, print_table, Args, CliError, Common, Flag};
use crate::security::scram::{ScramMechanism, MIN_ITERATIONS};

pub const SUBCOMMANDS: &[&str] = &["list", "describe", "create", "delete"];

pub const SPEC: &[Flag] = &[
    flag(&["-m", "--mechanism"], true),
    flag(&["--iterations"], true),
    flag(&["--password"], true),
];

/// Bytes of the random salt. Kafka's admin client salts with the text of a
/// 130-bit random number; any unpredictable bytes serve (RFC 5802).
const SALT_BYTES: usize = 24;
/// The longest password read from stdin: a bound on what is buffered.
const MAX_STDIN_PASSWORD_BYTES: u64 = 64 * 1024;

/// One credential a broker reports: user, mechanism and iterations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Credential {
    pub user: String,
    pub mechanism: String,
    pub iterations: i32,
}

fn mechanism_name(code: i8) -> String {
    ScramMechanism::from_type(code).map_or_else(|| format!("UNKNOWN({code})"), |m| m.name().into())
}

fn mechanisms(args: &Args) -> Result<Vec<ScramMechanism>, CliError> {
    let mut out = Vec::new();
    for m in args.values("-m") {
        let mech = ScramMechanism::from_name(&m.to_ascii_uppercase()).ok_or_else(|| {
            CliError::Usage(format!(
                "--mechanism {m:?}: expected SCRAM-SHA-256 or SCRAM-SHA-512"
            ))
        })?;
        if !out.contains(&mech) {
            out.push(mech);
        }
    }
    Ok(out)
}

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let Some((sub, rest)) = argv.split_first() else {
        return Err(CliError::Usage(
            "kastle user: list|describe|create|delete".into(),
        ));
    };
    let args = Args::parse(rest, SPEC)?;
    let common = args.common()?;
    match sub.as_str() {
        "list" | "describe" => {
            let users = if sub == "list" {
                if !args.positional.is_empty() {
                    return Err(CliError::Usage(
                        "kastle user list takes no user (describe USER does)".into(),
                    ));
                }
                None
            } else if args.positional.is_empty() {
                return Err(CliError::Usage("missing user name".into()));
            } else {
                Some(args.positional.as_slice())
            };
            let mut client = Client::connect(&common).await?;
            let (creds, error) = describe(&mut client, users).await?;
            print_credentials(&common, &creds);
            error.map_or(Ok(()), Err)
        }
        "create" | "alter" => {
            let user = args.positional(0, "user name")?.to_string();
            if args.positional.len() > 1 {
                return Err(CliError::Usage(
                    "kastle user create: one user at a time".into(),
                ));
            }
            let mut mechs = mechanisms(&args)?;
            if mechs.is_empty() {
                mechs.push(ScramMechanism::Sha256);
            }
            let iterations: i32 = args.number("--iterations")?.unwrap_or(MIN_ITERATIONS);
            let password = match args.value("--password") {
                Some(p) => p.to_string(),
                None => password_from_stdin()?,
            };
            let mut client = Client::connect(&common).await?;
            let changes = mechs
                .iter()
                .map(|m| {
                    let u = upsertion(&user, *m, &password, iterations)?;
                    Ok((*m, Change::Upsert(u)))
                })
                .collect::<Result<Vec<_>, CliError>>()?;
            alter(&mut client, &common, &user, changes).await
        }
        "delete" => {
            let user = args.positional(0, "user name")?.to_string();
            if args.positional.len() > 1 {
                return Err(CliError::Usage(
                    "kastle user delete: one user at a time".into(),
                ));
            }
            let mut client = Client::connect(&common).await?;
            let mut mechs = mechanisms(&args)?;
            if mechs.is_empty() {
                // Every mechanism the user has; none is Kafka's
                // RESOURCE_NOT_FOUND from the describe.
                let (creds, error) =
                    describe(&mut client, Some(std::slice::from_ref(&user))).await?;
                if let Some(e) = error {
                    return Err(e);
                }
                mechs = creds
                    .iter()
                    .filter_map(|c| ScramMechanism::from_name(&c.mechanism))
                    .collect();
            }
            let changes = mechs
                .iter()
                .map(|m| {
                    let d = ScramCredentialDeletion::default()
                        .with_name(sb(&user))
                        .with_mechanism(m.type_code());
                    (*m, Change::Delete(d))
                })
                .collect();
            alter(&mut client, &common, &user, changes).await
        }
        other => Err(CliError::Usage(format!("unknown user command {other:?}"))),
    }
}

/// The password as the first line of stdin (its line end dropped): one
/// line, so a password typed at a terminal ends with Enter.
fn password_from_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_PASSWORD_BYTES)
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("reading the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(CliError::Usage(
            "give the password with --password or on stdin".into(),
        ));
    }
    Ok(password.to_string())
}

/// An upsertion with a fresh random salt and the salted password.
fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
    iterations: i32,
) -> Result<ScramCredentialUpsertion, CliError> {
    let mut salt = vec![0u8; SALT_BYTES];
    getrandom::fill(&mut salt)
        .map_err(|e| CliError::Other(format!("no random bytes for the salt: {e}")))?;
    // The broker refuses iterations out of range (UNACCEPTABLE_CREDENTIAL,
    // with Kafka's message); only a positive count is computed here.
    let rounds = u32::try_from(iterations)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let salted = mechanism.salted_password(password.as_bytes(), &salt, rounds);
    Ok(ScramCredentialUpsertion::default()
        .with_name(sb(user))
        .with_mechanism(mechanism.type_code())
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted)))
}

fn print_credentials(common: &Common, creds: &[Credential]) {
    if common.json {
        let v: Vec<_> = creds
            .iter()
            .map(|c| json!({"user": c.user, "mechanism": c.mechanism, "iterations": c.iterations}))
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = creds
            .iter()
            .map(|c| {
                vec![
                    c.user.clone(),
                    c.mechanism.clone(),
                    c.iterations.to_string(),
                ]
            })
            .collect();
        print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
    }
}

/// DescribeUserScramCredentials of `users` (`None`: every user with a
/// credential): the credentials, sorted, and the first user's error (Kafka
/// answers RESOURCE_NOT_FOUND for a user without credentials).
pub async fn describe(
    client: &mut Client,
    users: Option<&[String]>,
) -> Result<(Vec<Credential>, Option<CliError>), CliError> {
    let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|us| {
        us.iter()
            .map(|u| UserName::default().with_name(sb(u)))
            .collect()
    }));
    let (resp, _) = client.send(&req, 0).await?;
    check(
        || "describing SCRAM credentials".to_string(),
        resp.error_code,
        resp.error_message.as_ref().map(|m| m.to_string()),
    )?;
    let mut creds = Vec::new();
    let mut error = None;
    for r in &resp.results {
        if r.error_code != 0 {
            error.get_or_insert_with(|| {
                CliError::kafka(
                    format!("user {}", r.user),
                    r.error_code,
                    r.error_message.as_ref().map(|m| m.to_string()),
                )
            });
            continue;
        }
        creds.extend(r.credential_infos.iter().map(|c| Credential {
            user: r.user.to_string(),
            mechanism: mechanism_name(c.mechanism),
            iterations: c.iterations,
        }));
    }
    creds.sort();
    Ok((creds, error))
}

/// One change to one of a user's credentials.
enum Change {
    Upsert(ScramCredentialUpsertion),
    Delete(ScramCredentialDeletion),
}

/// AlterUserScramCredentials, one request per change: Kafka refuses a
/// request naming the same user twice (DUPLICATE_RESOURCE), even for two
/// mechanisms. Prints each change's status; the first refusal is the
/// command's error.
async fn alter(
    client: &mut Client,
    common: &Common,
    user: &str,
    changes: Vec<(ScramMechanism, Change)>,
) -> Result<(), CliError> {
    let mut rows = Vec::new();
    let mut first_error = None;
    for (mechanism, change) in changes {
        let (req, done) = match change {
            Change::Upsert(u) => (
                AlterUserScramCredentialsRequest::default().with_upsertions(vec![u]),
                "UPSERTED",
            ),
            Change::Delete(d) => (
                AlterUserScramCredentialsRequest::default().with_deletions(vec![d]),
                "DELETED",
            ),
        };
        let (resp, _) = client.send(&req, 0).await?;
        // One result per user in the request.
        let r = resp
            .results
            .first()
            .ok_or_else(|| CliError::Other("AlterUserScramCredentials answered no user".into()))?;
        let status = if r.error_code == 0 {
            done.to_string()
        } else {
            super::error_name(r.error_code)
        };
        if r.error_code != 0 && first_error.is_none() {
            first_error = Some(CliError::kafka(
                format!("altering the {} credential of {user}", mechanism.name()),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            ));
        }
        rows.push((mechanism, status));
    }
    if common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(m, s)| json!({"user": user, "mechanism": m.name(), "status": s}))
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(m, s)| vec![user.to_string(), m.name().to_string(), s.clone()])
            .collect();
        print_table(&["USER", "MECHANISM", "STATUS"], &rows);
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::ScramCredential;

    #[test]
    fn upsertion_salts_randomly_and_derives_the_stored_key() {
        let a = upsertion("u", ScramMechanism::Sha512, "pw", 4096).unwrap();
        let b = upsertion("u", ScramMechanism::Sha512, "pw", 4096).unwrap();
        assert_eq!(a.salt.len(), SALT_BYTES);
        assert_ne!(a.salt, b.salt, "a fresh salt each time");
        assert_eq!(a.mechanism, 2);
        // What the broker stores from it verifies the password.
        let stored = ScramCredential::from_salted_password(
            ScramMechanism::Sha512,
            &a.salt,
            &a.salted_password,
            4096,
        );
        assert_eq!(
            stored,
            ScramCredential::from_password(ScramMechanism::Sha512, "pw", &a.salt, 4096)
        );
    }

    #[test]
    fn mechanisms_parse_case_insensitively_once_each() {
        let v: Vec<String> = [
            "-m",
            "scram-sha-512",
            "-m",
            "SCRAM-SHA-512",
            "-m",
            "SCRAM-SHA-256",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = Args::parse(&v, SPEC).unwrap();
        assert_eq!(
            mechanisms(&a).unwrap(),
            [ScramMechanism::Sha512, ScramMechanism::Sha256]
        );
        let bad = Args::parse(&["-m".to_string(), "PLAIN".to_string()], SPEC).unwrap();
        assert!(matches!(mechanisms(&bad), Err(CliError::Usage(_))));
    }
}
