//! JAAS login configuration as Kafka reads it for SASL: the
//! `sasl.jaas.config` value (`<LoginModule> <flag> key="value" ...;`) and
//! the `java.security.auth.login.config` file (`Name { ... };` sections),
//! plus what the server takes from them: PLAIN's `user_<name>="password"`
//! options.

use std::collections::BTreeMap;
use std::path::Path;

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '/' && {
            let mut look = chars.clone();
            look.next();
            matches!(look.peek(), Some('/') | Some('*'))
        } {
            chars.next();
            match chars.next() {
                Some('/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => {
                    let mut prev = ' ';
                    for c in chars.by_ref() {
                        if prev == '*' && c == '/' {
                            break;
                        }
                        prev = c;
                    }
                }
            }
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted value".into()),
                    Some('\\') => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(e) => v.push(e),
                        None => return Err("unterminated quoted value".into()),
                    },
                    Some(q) if q == c => break,
                    Some(o) => v.push(o),
                }
            }
            out.push(Tok::Quoted(v));
        } else if matches!(c, ';' | '=' | '{' | '}') {
            chars.next();
            out.push(Tok::Punct(c));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || matches!(c, ';' | '=' | '{' | '}' | '"' | '\'') {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

fn parse_entries(toks: &[Tok], i: &mut usize, until_brace: bool) -> Result<Vec<JaasEntry>, String> {
    let mut entries = Vec::new();
    loop {
        match toks.get(*i) {
            None if !until_brace => return Ok(entries),
            None => return Err("missing '}'".into()),
            Some(Tok::Punct('}')) if until_brace => {
                *i += 1;
                return Ok(entries);
            }
            Some(Tok::Word(module)) => {
                let module = module.clone();
                *i += 1;
                let flag = match toks.get(*i) {
                    Some(Tok::Word(f)) => f.clone(),
                    _ => return Err(format!("login module {module}: control flag expected")),
                };
                if !["required", "requisite", "sufficient", "optional"]
                    .contains(&flag.to_ascii_lowercase().as_str())
                {
                    return Err(format!(
                        "login module {module}: invalid control flag {flag}"
                    ));
                }
                *i += 1;
                let mut options = BTreeMap::new();
                loop {
                    match toks.get(*i) {
                        Some(Tok::Punct(';')) => {
                            *i += 1;
                            break;
                        }
                        Some(Tok::Word(k)) => {
                            let k = k.clone();
                            if toks.get(*i + 1) != Some(&Tok::Punct('=')) {
                                return Err(format!("option {k}: '=' expected"));
                            }
                            let v = match toks.get(*i + 2) {
                                Some(Tok::Word(v)) | Some(Tok::Quoted(v)) => v.clone(),
                                _ => return Err(format!("option {k}: value expected")),
                            };
                            options.insert(k, v);
                            *i += 3;
                        }
                        _ => return Err(format!("login module {module}: ';' expected")),
                    }
                }
                entries.push(JaasEntry {
                    login_module: module,
                    flag,
                    options,
                });
            }
            Some(t) => return Err(format!("unexpected {t:?}")),
        }
    }
}

/// Parses a `sasl.jaas.config` value: one or more login module entries.
pub fn parse_jaas_config(value: &str) -> Result<Vec<JaasEntry>, String> {
    let toks = tokenize(value)?;
    let mut i = 0;
    let entries = parse_entries(&toks, &mut i, false)?;
    if entries.is_empty() {
        return Err("JAAS config entry not terminated by semi-colon".into());
    }
    Ok(entries)
}

/// Parses a JAAS file: `Name { entries };` sections.
pub fn parse_jaas_file_text(text: &str) -> Result<BTreeMap<String, Vec<JaasEntry>>, String> {
    let toks = tokenize(text)?;
    let mut sections = BTreeMap::new();
    let mut i = 0;
    while let Some(t) = toks.get(i) {
        let name = match t {
            Tok::Word(n) => n.clone(),
            other => return Err(format!("section name expected, found {other:?}")),
        };
        if toks.get(i + 1) != Some(&Tok::Punct('{')) {
            return Err(format!("section {name}: '{{' expected"));
        }
        i += 2;
        let entries = parse_entries(&toks, &mut i, true)?;
        if toks.get(i) == Some(&Tok::Punct(';')) {
            i += 1;
        }
        sections.insert(name, entries);
    }
    Ok(sections)
}

/// Reads a JAAS file (`-Djava.security.auth.login.config=<path>`).
pub fn read_jaas_file(path: &Path) -> Result<BTreeMap<String, Vec<JaasEntry>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read JAAS file {}: {e}", path.display()))?;
    parse_jaas_file_text(&text)
}

/// The JAAS file path in a `KAFKA_OPTS`-style JVM option string.
pub fn jaas_file_from_jvm_opts(opts: &str) -> Option<String> {
    opts.split_whitespace().find_map(|o| {
        o.strip_prefix("-Djava.security.auth.login.config=")
            .map(|p| p.trim_matches('"').to_string())
    })
}

/// PLAIN's users: `user_<name>="<password>"` options of the PLAIN login
/// module entries (Kafka's `PlainServerCallbackHandler`).
pub fn plain_users(entries: &[JaasEntry]) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter(|e| e.login_module == PLAIN_LOGIN_MODULE)
        .flat_map(|e| e.options.iter())
        .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_values_and_plain_users() {
        let v = r#"org.apache.kafka.common.security.plain.PlainLoginModule required
            username="admin" password="admin-secret"
            user_admin="admin-secret" user_alice="al\"ice";"#;
        let e = parse_jaas_config(v).expect("valid");
        assert_eq!(e.len(), 1);
        let users = plain_users(&e);
        assert_eq!(users.get("alice").map(String::as_str), Some("al\"ice"));
        assert_eq!(users.get("admin").map(String::as_str), Some("admin-secret"));
        assert!(!users.contains_key("username"));
        assert!(parse_jaas_config("x.Y required a=\"b\"").is_err());
        assert!(parse_jaas_config("x.Y maybe;").is_err());
    }

    #[test]
    fn parses_files_with_sections_and_comments() {
        let f = r#"
            // the broker
            KafkaServer {
                org.apache.kafka.common.security.plain.PlainLoginModule required
                user_bob="b";
                org.apache.kafka.common.security.scram.ScramLoginModule required;
            };
            /* clients */
            KafkaClient { x.Y optional; };
        "#;
        let s = parse_jaas_file_text(f).expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!(plain_users(&s["KafkaServer"]).len(), 1);
        assert_eq!(
            jaas_file_from_jvm_opts("-Xmx1g -Djava.security.auth.login.config=/etc/k/jaas.conf"),
            Some("/etc/k/jaas.conf".into())
        );
    }
}
