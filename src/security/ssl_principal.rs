//! The principal of a TLS client: its certificate's subject as an RFC 2253
//! distinguished name (the form Java's `X500Principal.getName()` gives and
//! Kafka's `DefaultKafkaPrincipalBuilder` starts from), mapped to a user
//! name by `ssl.principal.mapping.rules` as Kafka's `SslPrincipalMapper`
//! does: rules tried in order, the first that matches the whole name wins,
//! and a name no rule matches fails authentication.

use regex::Regex;
use x509_parser::der_parser::asn1_rs::{Any, Class};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::KafkaPrincipal;

/// Attribute types RFC 2253 names by keyword (and Java prints so); every
/// other type is printed as its dotted OID with a `#hex` DER value.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of a DER certificate as an RFC 2253 string: RDNs from the
/// most specific (last in the certificate) to the least, `,` between them,
/// `+` inside a multi-valued RDN.
pub fn subject_dn(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    Ok(rfc2253(cert.subject()))
}

fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
                    let value = atv.attr_value();
                    match (keyword, directory_string(value)) {
                        (Some(k), Some(s)) => format!("{k}={}", escape(&s)),
                        (Some(k), None) => format!("{k}=#{}", hex(&der_of(value))),
                        (None, _) => format!("{oid}=#{}", hex(&der_of(value))),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The text of a string-typed attribute value (the DirectoryString types
/// and IA5String), or `None` for any other type.
fn directory_string(v: &Any<'_>) -> Option<String> {
    if v.header.class() != Class::Universal || v.header.is_constructed() {
        return None;
    }
    let data: &[u8] = v.data;
    match v.header.tag().0 {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        12 | 18 | 19 | 22 | 26 => std::str::from_utf8(data).ok().map(str::to_string),
        // TeletexString: read as Latin-1, as Java does.
        20 => Some(data.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        30 => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE.
        28 => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// The DER encoding of a value (identifier, length, contents).
fn der_of(v: &Any<'_>) -> Vec<u8> {
    let class = match v.header.class() {
        Class::Universal => 0u8,
        Class::Application => 0x40,
        Class::ContextSpecific => 0x80,
        Class::Private => 0xC0,
    };
    let constructed = if v.header.is_constructed() { 0x20 } else { 0 };
    let tag = v.header.tag().0;
    let mut out = Vec::with_capacity(v.data.len() + 8);
    if tag < 31 {
        out.push(class | constructed | tag as u8);
    } else {
        out.push(class | constructed | 0x1F);
        let mut groups = Vec::new();
        let mut t = tag;
        loop {
            groups.push((t & 0x7F) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i > 0 { g | 0x80 } else { *g });
        }
    }
    let len = v.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(v.data.as_ref());
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 2253 escaping as Java prints it: the special characters with a
/// backslash wherever they are, and every leading and trailing space.
fn escape(s: &str) -> String {
    const SPECIAL: &str = ",=+<>#;\"\\";
    let chars: Vec<char> = s.chars().collect();
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if SPECIAL.contains(c) || i < lead || i >= trail {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

/// One mapping rule.
#[derive(Debug, Clone)]
enum Rule {
    /// `DEFAULT`: the distinguished name as it is.
    Default,
    /// `RULE:pattern/replacement/[LU]`.
    Rule {
        whole: Regex,
        find: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl SslPrincipalMapper {
    /// Parses the rules (comma-separated; a pattern or replacement may hold
    /// commas and backslash-escaped slashes). An invalid rule is an error
    /// naming it, as Kafka refuses it when the listener is configured.
    pub fn from_rules(rules: &str) -> Result<SslPrincipalMapper, String> {
        let s = rules.trim();
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            rest = rest.trim_start();
            if let Some((rule, after)) = parse_rule(rest)? {
                out.push(rule);
                rest = after;
            } else {
                // Not a rule: up to the next comma, which must be blank.
                let (text, after) = rest.split_once(',').unwrap_or((rest, ""));
                if !text.trim().is_empty() {
                    return Err(format!("Invalid rule: {}", text.trim()));
                }
                rest = after;
            }
        }
        Ok(SslPrincipalMapper { rules: out })
    }

    /// The user name for a distinguished name; an error when no rule
    /// applies (Kafka's `NoMatchingRule`: the client is not authenticated).
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for r in &self.rules {
            match r {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Rule {
                    whole,
                    find,
                    replacement,
                    case,
                } => {
                    if !whole.is_match(dn) {
                        continue;
                    }
                    let mapped = find
                        .replace_all(dn, |c: &regex::Captures<'_>| expand(replacement, c))
                        .into_owned();
                    return Ok(match case {
                        Case::Keep => mapped,
                        Case::Lower => mapped.to_lowercase(),
                        Case::Upper => mapped.to_uppercase(),
                    });
                }
            }
        }
        Err(format!("No rules apply to {dn}"))
    }

    /// The principal of a client certificate (DER).
    pub fn principal(&self, cert_der: &[u8]) -> Result<KafkaPrincipal, String> {
        let dn = subject_dn(cert_der)?;
        self.name(&dn).map(KafkaPrincipal::user)
    }
}

/// Parses one rule at the start of `s` (already left-trimmed) and the
/// text after its separating comma; `None` when `s` does not start with a
/// well-formed rule.
fn parse_rule(s: &str) -> Result<Option<(Rule, &str)>, String> {
    let (rule, after) = if let Some(r) = s.strip_prefix("DEFAULT") {
        (Rule::Default, r)
    } else if let Some(r) = s.strip_prefix("RULE:") {
        let Some((pattern, r)) = escaped_part(r) else {
            return Ok(None);
        };
        let Some((replacement, r)) = escaped_part(r) else {
            return Ok(None);
        };
        let (case, r) = match r.as_bytes().first() {
            Some(b'L') => (Case::Lower, &r[1..]),
            Some(b'U') => (Case::Upper, &r[1..]),
            _ => (Case::Keep, r),
        };
        // A slash is escaped in the rule's syntax only.
        let pattern = pattern.replace("\\/", "/");
        let bad = |e: regex::Error| format!("Invalid rule pattern {pattern}: {e}");
        let whole = Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(bad)?;
        let find = Regex::new(&pattern).map_err(bad)?;
        (
            Rule::Rule {
                whole,
                find,
                replacement: replacement.to_string(),
                case,
            },
            r,
        )
    } else {
        return Ok(None);
    };
    // Only blanks may stand between a rule and the next comma.
    let (tail, next) = after.split_once(',').unwrap_or((after, ""));
    if !tail.trim().is_empty() {
        return if matches!(rule, Rule::Default) {
            Err(format!(
                "Invalid rule: {}",
                s.split(',').next().unwrap_or(s).trim()
            ))
        } else {
            Err(format!(
                "Invalid rule: `{}`, unmatched substring: `{}`",
                s.trim(),
                tail.trim()
            ))
        };
    }
    Ok(Some((rule, next)))
}

/// A pattern or replacement ending at an unescaped `/`: the part and the
/// text after the slash.
fn escaped_part(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'/' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// A replacement as Java's `Matcher.appendReplacement` reads it: `\x` is a
/// literal `x`, `$n` the group of the longest number not above the group
/// count, and a `$` naming no group a literal (Kafka escapes those).
fn expand(replacement: &str, caps: &regex::Captures<'_>) -> String {
    let groups = caps.len().saturating_sub(1);
    let chars: Vec<char> = replacement.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '$' {
            let first = chars.get(i + 1).and_then(|d| d.to_digit(10));
            match first {
                Some(d) if d as usize <= groups => {
                    let mut n = d as usize;
                    let mut j = i + 2;
                    while let Some(next) = chars.get(j).and_then(|d| d.to_digit(10)) {
                        let m = n * 10 + next as usize;
                        if m > groups {
                            break;
                        }
                        n = m;
                        j += 1;
                    }
                    out.push_str(caps.get(n).map_or("", |m| m.as_str()));
                    i = j;
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rules: &str, dn: &str) -> Result<String, String> {
        SslPrincipalMapper::from_rules(rules)?.name(dn)
    }

    /// The rules of Kafka's security documentation ("Customizing SSL User
    /// Name") and the names they give.
    #[test]
    fn kafka_documented_rules() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
                     RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
                     RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
                     DEFAULT";
        let m = SslPrincipalMapper::from_rules(rules).expect("valid rules");
        assert_eq!(m.rules.len(), 4);
        assert_eq!(
            m.name("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"),
            Ok("serviceuser".into())
        );
        assert_eq!(
            m.name("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"),
            Ok("adminuser@admin".into())
        );
        assert_eq!(m.name("OU=x,CN=Some.User,O=y"), Ok("some.user".into()));
        // Nothing but DEFAULT matches: the whole name.
        assert_eq!(m.name("O=Org only"), Ok("O=Org only".into()));
        assert_eq!(
            map(
                "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U",
                "CN=duke,OU=ServiceUsers,O=Org"
            ),
            Ok("DUKE".into())
        );
    }

    #[test]
    fn default_and_no_match() {
        assert_eq!(map("DEFAULT", "CN=a,O=b"), Ok("CN=a,O=b".into()));
        let e = map("RULE:^CN=x$/y/", "CN=z").unwrap_err();
        assert!(e.starts_with("No rules apply to CN=z"), "{e}");
        // Empty rules are skipped; no rule at all matches nothing.
        assert!(map(" , ", "CN=a").is_err());
    }

    #[test]
    fn slashes_commas_and_back_references() {
        // An escaped slash in the pattern and in the replacement.
        assert_eq!(
            map("RULE:^CN=(.*)\\/(.*)$/$2\\/$1/", "CN=a/b"),
            Ok("b/a".into())
        );
        // Commas inside a pattern belong to it.
        assert_eq!(
            map("RULE:^CN=([^,]+),O=(.*)$/$1@$2/, DEFAULT", "CN=u,O=o"),
            Ok("u@o".into())
        );
        // A group number past the count is literal ($3 with 2 groups), a
        // longer number is cut to one that exists ($12 with 2 groups = $1 "2").
        assert_eq!(
            map("RULE:^CN=(.*),O=(.*)$/$1-$3/", "CN=u,O=o"),
            Ok("u-$3".into())
        );
        assert_eq!(
            map("RULE:^CN=(.*),O=(.*)$/$12/", "CN=u,O=o"),
            Ok("u2".into())
        );
        // Only whole-name matches apply.
        assert_eq!(
            map("RULE:CN=u/x/, DEFAULT", "CN=u,O=o"),
            Ok("CN=u,O=o".into())
        );
    }

    #[test]
    fn invalid_rules_are_refused() {
        for bad in [
            "DEFAULTa",
            "RULE:^CN=(.*)$/$1/L junk",
            "RULE:^CN=(.*)$/$1",
            "nonsense",
            "RULE:^CN=((.*)$/$1/",
        ] {
            assert!(
                SslPrincipalMapper::from_rules(bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    /// A certificate's subject as Java's `X500Principal.getName()` prints
    /// it: most specific RDN first, specials escaped, attribute types
    /// without an RFC 2253 keyword (emailAddress) as OID=#DER-hex.
    #[test]
    fn certificate_subjects_in_rfc2253_form() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, "Acme, Inc.");
        dn.push(DnType::OrganizationalUnitName, "a+b");
        dn.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            DnValue::Ia5String("example".try_into().expect("ia5")),
        );
        dn.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            DnValue::Ia5String("a@b".try_into().expect("ia5")),
        );
        dn.push(DnType::CommonName, " client#1 ");
        p.distinguished_name = dn;
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("certificate");
        assert_eq!(
            subject_dn(cert.der()).expect("subject"),
            "CN=\\ client\\#1\\ ,1.2.840.113549.1.9.1=#1603614062,DC=example,OU=a\\+b,O=Acme\\, Inc.,C=US"
        );
        let m =
            SslPrincipalMapper::from_rules("RULE:^CN=([^,]*),.*,O=(.*),C=US$/$2/L").expect("rules");
        assert_eq!(
            m.principal(cert.der()).expect("mapped").to_string(),
            "User:acme\\, inc."
        );
        assert!(subject_dn(b"not a certificate").is_err());
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" lead#"), "\\ lead\\#");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(escape("  a b  "), "\\ \\ a b\\ \\ ");
        assert_eq!(hex(&[0x16, 0x0a]), "160a");
    }
}
