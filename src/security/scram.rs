//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses
//! them: the mechanisms and their type codes (KIP-554), the stored form of
//! a credential (salt, StoredKey, ServerKey, iterations; never the
//! password), and the server side of the two-round exchange.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's lowest accepted iteration count for both mechanisms.
pub const MIN_ITERATIONS: i32 = 4096;
/// Kafka's highest accepted iteration count (AlterUserScramCredentials).
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The type code of the admin protocol (KIP-554): 1 and 2; 0 is unknown.
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_type(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.type_code() == code)
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => mac::<Hmac<Sha256>>(key, data),
            ScramMechanism::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's `Hi()`: PBKDF2 with this mechanism's HMAC, one block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out)
                    .expect("HMAC takes keys of any length");
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, iterations, &mut out)
                    .expect("HMAC takes keys of any length");
                out
            }
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A stored SCRAM credential: what the server needs to verify a client and
/// prove itself, from which the password cannot be recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// From the salted password the admin client computed (KIP-554).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// From a password (credentials a deployment declares in clear).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations.max(1) as u32);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// One line: `salt=..,stored_key=..,server_key=..,iterations=..`, the
    /// byte fields in base64.
    pub fn to_line(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    pub fn parse_line(line: &str) -> Option<ScramCredential> {
        let mut salt = None;
        let mut stored_key = None;
        let mut server_key = None;
        let mut iterations = None;
        for part in line.trim().split(',') {
            let (k, v) = part.split_once('=')?;
            match k {
                "salt" => salt = B64.decode(v).ok(),
                "stored_key" => stored_key = B64.decode(v).ok(),
                "server_key" => server_key = B64.decode(v).ok(),
                "iterations" => iterations = v.parse().ok(),
                _ => {}
            }
        }
        Some(ScramCredential {
            salt: salt?,
            stored_key: stored_key?,
            server_key: server_key?,
            iterations: iterations?,
        })
    }
}

/// Why an exchange failed. `Client` messages may be shown to the client;
/// `Internal` ones are logged and the client sees the generic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    Client(String),
    Internal(String),
}

enum State {
    ClientFirst,
    ClientFinal {
        username: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
    server_nonce: String,
}

/// The outcome of one client message.
pub enum Step {
    /// Send this challenge and wait for the next message.
    Challenge(Vec<u8>),
    /// Authenticated as the user; send the final message.
    Done(String, Vec<u8>),
}

impl ScramServer {
    /// `server_nonce` must be unpredictable and contain no comma.
    pub fn new(mechanism: ScramMechanism, server_nonce: String) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::ClientFirst,
            server_nonce,
        }
    }

    /// Processes one client message; `lookup` finds a user's credential.
    pub fn step(
        &mut self,
        msg: &[u8],
        lookup: impl Fn(&str) -> Option<ScramCredential>,
    ) -> Result<Step, ScramError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let text = std::str::from_utf8(msg)
            .map_err(|_| ScramError::Internal("SCRAM message is not UTF-8".into()))?;
        match state {
            State::ClientFirst => {
                let first = parse_client_first(text)?;
                let credential = lookup(&first.username).ok_or_else(|| {
                    ScramError::Internal("Authentication failed: Invalid user credentials".into())
                })?;
                if !first.authzid.is_empty() && first.authzid != first.username {
                    return Err(ScramError::Client(
                        "Authentication failed: Client requested an authorization id that is different from username".into(),
                    ));
                }
                if credential.iterations < MIN_ITERATIONS {
                    return Err(ScramError::Internal(format!(
                        "Iterations {} is less than the minimum {MIN_ITERATIONS} for {}",
                        credential.iterations,
                        self.mechanism.name()
                    )));
                }
                let nonce = format!("{}{}", first.nonce, self.server_nonce);
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&credential.salt),
                    credential.iterations
                );
                let out = server_first.clone().into_bytes();
                self.state = State::ClientFinal {
                    username: first.username,
                    credential,
                    client_first_bare: first.bare,
                    server_first,
                    nonce,
                };
                Ok(Step::Challenge(out))
            }
            State::ClientFinal {
                username,
                credential,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let (without_proof, proof_b64) = text.rsplit_once(",p=").ok_or_else(|| {
                    ScramError::Internal("Invalid SCRAM client final message".into())
                })?;
                let got_nonce = without_proof
                    .split(',')
                    .find_map(|a| a.strip_prefix("r="))
                    .ok_or_else(|| {
                        ScramError::Internal("Invalid SCRAM client final message".into())
                    })?;
                if !without_proof.starts_with("c=") {
                    return Err(ScramError::Internal(
                        "Invalid SCRAM client final message".into(),
                    ));
                }
                if got_nonce != nonce {
                    return Err(ScramError::Internal(
                        "Invalid client nonce in the final client message.".into(),
                    ));
                }
                let proof = B64
                    .decode(proof_b64)
                    .map_err(|_| ScramError::Internal("Invalid SCRAM client proof".into()))?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let m = self.mechanism;
                let client_signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return Err(ScramError::Internal("Invalid client credentials".into()));
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(&client_signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                if !constant_time_eq(&m.hash(&client_key), &credential.stored_key) {
                    return Err(ScramError::Internal("Invalid client credentials".into()));
                }
                let server_signature = m.hmac(&credential.server_key, auth_message.as_bytes());
                let last = format!("v={}", B64.encode(server_signature)).into_bytes();
                Ok(Step::Done(username, last))
            }
            State::Done => Err(ScramError::Internal(
                "Unexpected challenge in SASL server state COMPLETE".into(),
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct ClientFirst {
    authzid: String,
    username: String,
    nonce: String,
    bare: String,
}

/// `gs2-header client-first-message-bare`: `n,[a=authzid],n=name,r=nonce[,ext]`.
fn parse_client_first(text: &str) -> Result<ClientFirst, ScramError> {
    let invalid = || ScramError::Internal(format!("Invalid SCRAM client first message {text:?}"));
    let (cbind, rest) = text.split_once(',').ok_or_else(invalid)?;
    if cbind != "n" && cbind != "y" {
        // Channel binding ("p=...") is not offered.
        return Err(invalid());
    }
    let (authz, bare) = rest.split_once(',').ok_or_else(invalid)?;
    let authzid = match authz {
        "" => String::new(),
        a => sasl_name(a.strip_prefix("a=").ok_or_else(invalid)?).ok_or_else(invalid)?,
    };
    let mut attrs = bare.split(',');
    let name = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or_else(invalid)?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(invalid)?;
    if nonce.is_empty() {
        return Err(invalid());
    }
    Ok(ClientFirst {
        authzid,
        username: sasl_name(name).ok_or_else(invalid)?,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// Decodes RFC 5802's `saslname` (`=2C` is a comma, `=3D` an equals sign).
fn sasl_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example, end to end.
    #[test]
    fn rfc7677_example_authenticates() {
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::from_password(m, "pencil", &salt, 4096);
        let mut server = ScramServer::new(m, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
        let first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let challenge = match server.step(first, |u| (u == "user").then(|| cred.clone())) {
            Ok(Step::Challenge(c)) => c,
            _ => panic!("expected a challenge"),
        };
        assert_eq!(
            String::from_utf8(challenge).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        match server.step(fin, |_| None) {
            Ok(Step::Done(user, last)) => {
                assert_eq!(user, "user");
                assert_eq!(
                    String::from_utf8(last).unwrap(),
                    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
                );
            }
            _ => panic!("expected success"),
        }
    }

    #[test]
    fn wrong_proof_and_unknown_user_fail() {
        let m = ScramMechanism::Sha512;
        let cred = ScramCredential::from_password(m, "secret", b"salt", 4096);
        let mut s = ScramServer::new(m, "srv".into());
        assert!(matches!(
            s.step(b"n,,n=bob,r=abc", |_| None),
            Err(ScramError::Internal(_))
        ));
        let mut s = ScramServer::new(m, "srv".into());
        assert!(s
            .step(b"n,,n=al=3Dice,r=abc", |u| (u == "al=ice")
                .then(|| cred.clone()))
            .is_ok());
        let bad = format!("c=biws,r=abcsrv,p={}", B64.encode([0u8; 64]));
        assert_eq!(
            s.step(bad.as_bytes(), |_| None).err(),
            Some(ScramError::Internal("Invalid client credentials".into()))
        );
    }

    #[test]
    fn credential_lines_round_trip() {
        let c = ScramCredential::from_password(ScramMechanism::Sha256, "p", b"s", 8192);
        assert_eq!(ScramCredential::parse_line(&c.to_line()), Some(c));
        assert_eq!(ScramMechanism::from_type(2), Some(ScramMechanism::Sha512));
        assert_eq!(ScramMechanism::from_type(0), None);
    }
}
