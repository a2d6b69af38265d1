//! The client side of SCRAM-SHA-256/512 (RFC 5802, Kafka's
//! `ScramSaslClient`), which a node uses to authenticate to another
//! node's SASL listener: the client-first message, the proof from the
//! server's salt and iteration count, and the check of the server's
//! signature, so a node also knows it talks to a server holding the
//! credential. No channel binding (`n,,`), as Kafka's client.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::scram::{ScramMechanism, MIN_ITERATIONS};

/// One exchange, created with the client nonce.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
    /// The ServerSignature expected in the server-final message.
    expected_server_signature: Option<Vec<u8>>,
}

/// RFC 5802's `saslname`: `=` and `,` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// `nonce` must be unpredictable and printable, without a comma.
    pub fn new(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        nonce: String,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={},r={nonce}", sasl_name(user)),
            nonce,
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message answering the server-first message.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| "the SCRAM server-first message is not UTF-8".to_string())?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused the SCRAM exchange: {e}"));
        }
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in text.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = B64.decode(v).ok();
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse::<i32>().ok();
            }
        }
        let invalid = || format!("invalid SCRAM server-first message {text:?}");
        let (nonce, salt, iterations) = match (nonce, salt, iterations) {
            (Some(n), Some(s), Some(i)) => (n, s, i),
            _ => return Err(invalid()),
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("Invalid server nonce: does not start with client nonce".into());
        }
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "Requested iterations {iterations} is less than the minimum {MIN_ITERATIONS} for {}",
                self.mechanism.name()
            ));
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations as u32);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (`v=` the server signature, or `e=`
    /// an error).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "the SCRAM server-final message is not UTF-8".to_string())?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused the SCRAM exchange: {e}"));
        }
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| format!("invalid SCRAM server-final message {text:?}"))?;
        match &self.expected_server_signature {
            Some(expected) if *expected == got => Ok(()),
            Some(_) => Err("Invalid server signature in server final message".into()),
            None => Err("a SCRAM server-final message before the server-first".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::{ScramCredential, ScramServer, Step};

    /// The client against kastle's server: the right password passes and
    /// both sides verify each other; a wrong one is refused by the server.
    #[test]
    fn round_trips_with_the_server() {
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(m, "s3cret", b"salt-bytes", 4096);
            let lookup = |u: &str| (u == "ad,min").then(|| cred.clone());
            let mut client = ScramClient::new(m, "ad,min", "s3cret", "cnonce".into());
            let mut server = ScramServer::new(m, "snonce".into());
            let Ok(Step::Challenge(first)) = server.step(&client.first_message(), lookup) else {
                panic!("server-first expected");
            };
            let fin = client.final_message(&first).expect("client final");
            let Ok(Step::Done(user, last)) = server.step(&fin, lookup) else {
                panic!("server final expected");
            };
            assert_eq!(user, "ad,min");
            client.verify_server_final(&last).expect("server signature");
            assert!(client.verify_server_final(b"v=AAAA").is_err());

            let mut wrong = ScramClient::new(m, "ad,min", "nope", "cnonce".into());
            let mut server = ScramServer::new(m, "snonce".into());
            let Ok(Step::Challenge(first)) = server.step(&wrong.first_message(), lookup) else {
                panic!("server-first expected");
            };
            let fin = wrong.final_message(&first).expect("client final");
            assert!(server.step(&fin, lookup).is_err());
        }
    }

    #[test]
    fn refuses_a_foreign_nonce_and_few_iterations() {
        let mut c = ScramClient::new(ScramMechanism::Sha256, "u", "p", "abc".into());
        assert!(c.final_message(b"r=xyz123,s=c2FsdA==,i=4096").is_err());
        assert!(c.final_message(b"r=abc123,s=c2FsdA==,i=100").is_err());
        assert!(c.final_message(b"e=unknown-user").is_err());
    }
}
