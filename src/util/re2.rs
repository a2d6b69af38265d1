//! Regular expressions as Kafka matches them: RE2 syntax (Kafka compiles
//! client patterns with RE2/J, e.g. ListTransactions' transactional-id
//! pattern of KIP-1152) and whole-string matching (`Matcher.matches()`).
//!
//! The `regex` crate implements the RE2 syntax; the differences that matter
//! for identifiers are bridged before compiling: `\Q...\E` quoting (what
//! Java's `Pattern.quote` produces) and the ASCII meaning of `\d`, `\w`,
//! `\s` (Unicode-aware in the crate). A pattern RE2/J refuses (lookaround,
//! backreferences, possessive repetition, unbalanced groups) is refused here
//! too (the crate would read `a++` as `(a+)+`: RE2 refuses a repetition of
//! a repetition, so that is checked here). Left as is: the crate also accepts Unicode binary properties such
//! as `\p{Alphabetic}` (RE2/J knows only categories and scripts), `\s` in a
//! negated class counts the vertical tab as space, and `\b` is Unicode-aware.

use regex::Regex;

/// A compiled pattern that must match a whole string.
#[derive(Debug, Clone)]
pub struct FullMatch(Regex);

impl FullMatch {
    /// Compiles `pattern`; the error says why it is not a valid RE2 pattern.
    pub fn new(pattern: &str) -> Result<FullMatch, String> {
        let translated = translate(pattern)?;
        // Compiled alone first, so that an unbalanced pattern such as
        // `a)|(b` cannot pair up with the anchoring group below.
        Regex::new(&translated).map_err(|e| e.to_string())?;
        Regex::new(&format!(r"\A(?:{translated})\z"))
            .map(FullMatch)
            .map_err(|e| e.to_string())
    }

    pub fn matches(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

/// Whether `rest` (after a `{`) is a counted repetition `{n}`, `{n,}` or
/// `{n,m}`; RE2 reads any other `{` as a literal.
fn counted_repetition(rest: &str) -> Option<usize> {
    let end = rest.find('}')?;
    let body = &rest[..end];
    let (lo, hi) = body.split_once(',').unwrap_or((body, "0"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (!lo.is_empty() && digits(lo) && digits(hi)).then_some(end + 1)
}

/// RE2 syntax the crate reads differently, rewritten into syntax it reads
/// as RE2 does; everything else is copied unchanged.
fn translate(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    // After a repetition operator: whether its lazy `?` came too. RE2
    // refuses another operator there ("bad repetition operator").
    let mut after_repeat: Option<bool> = None;
    // Inside a bracketed class, and whether its first member is still to come
    // (a `]` there is a literal).
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if !in_class {
            let repeat_len = match c {
                '*' | '+' | '?' => Some(0),
                '{' => counted_repetition(&chars.clone().take(24).collect::<String>()),
                _ => None,
            };
            if let Some(len) = repeat_len {
                match after_repeat {
                    Some(false) if c == '?' => after_repeat = Some(true),
                    Some(_) => return Err(format!("bad repetition operator at {c}")),
                    None => after_repeat = Some(false),
                }
                out.push(c);
                for _ in 0..len {
                    if let Some(r) = chars.next() {
                        out.push(r);
                    }
                }
                continue;
            }
            after_repeat = None;
            if c == '{' {
                // Not a count: RE2 reads a literal, the crate an error.
                out.push_str(r"\{");
                continue;
            }
        }
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    // A trailing backslash: left for the compiler to refuse.
                    out.push('\\');
                    break;
                };
                class_start = false;
                match (e, in_class) {
                    ('Q', _) => {
                        // Literal up to `\E` or the end of the pattern.
                        let mut literal = String::new();
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            literal.push(q);
                        }
                        if in_class {
                            for l in literal.chars() {
                                out.push_str(&regex::escape(&l.to_string()));
                            }
                        } else {
                            out.push_str(&regex::escape(&literal));
                        }
                    }
                    ('d', false) => out.push_str("[[:digit:]]"),
                    ('D', false) => out.push_str("[[:^digit:]]"),
                    ('w', false) => out.push_str("[[:word:]]"),
                    ('W', false) => out.push_str("[[:^word:]]"),
                    ('s', false) => out.push_str(r"[\t\n\x0C\r ]"),
                    ('S', false) => out.push_str(r"[^\t\n\x0C\r ]"),
                    ('d', true) => out.push_str("[:digit:]"),
                    ('D', true) => out.push_str("[:^digit:]"),
                    ('w', true) => out.push_str("[:word:]"),
                    ('W', true) => out.push_str("[:^word:]"),
                    ('s', true) => out.push_str(r"\t\n\x0C\r "),
                    ('S', true) => out.push_str("[:^space:]"),
                    (e, _) => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                out.push('[');
                in_class = true;
                class_start = true;
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:], copied whole.
                out.push('[');
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
                class_start = false;
            }
            ']' if in_class && !class_start => {
                out.push(']');
                in_class = false;
            }
            c => {
                // `[` inside a class is a literal in RE2; the crate would
                // read a nested class.
                if in_class && c == '[' {
                    out.push_str(r"\[");
                } else {
                    out.push(c);
                }
                class_start = false;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching(pattern: &str, ids: &[&str]) -> Result<Vec<String>, String> {
        let p = FullMatch::new(pattern)?;
        Ok(ids
            .iter()
            .filter(|i| p.matches(i))
            .map(|i| i.to_string())
            .collect())
    }

    const IDS: &[&str] = &["my-special-0", "abcx", "a1", "ab"];

    // Each expectation is what Kafka 4.4 answered to ListTransactions v2
    // with these transactional ids and this pattern.
    #[test]
    fn matches_as_kafka_does() {
        let m = |p| matching(p, IDS).expect(p);
        assert_eq!(m(".*special.*"), vec!["my-special-0"]);
        assert!(m("special").is_empty(), "the whole id must match");
        assert_eq!(m("ab"), vec!["ab"]);
        assert_eq!(m(r"a\d"), vec!["a1"]);
        assert_eq!(m("[[:alpha:]]+"), vec!["abcx", "ab"]);
        assert_eq!(m("a.c."), vec!["abcx"]);
        assert_eq!(m("(?i)AB"), vec!["ab"]);
        assert_eq!(m(r"\Qab\E"), vec!["ab"]);
        assert_eq!(m("ab|abcx"), vec!["abcx", "ab"]);
    }

    #[test]
    fn refuses_what_re2_refuses() {
        for p in [
            "(?=a)ab", r"(a)\1", "(ab(cd", "a++b", "a**", "a{2}{3}", "a???", "a)|(b", r"a\",
        ] {
            assert!(FullMatch::new(p).is_err(), "{p}");
        }
    }

    #[test]
    fn quoting_and_ascii_classes() {
        // Pattern.quote of a prefix with metacharacters, then a wildcard.
        let m = |p| matching(p, &["a.b*c-1", "axb*c-1", "a.b*c-x"]).expect(p);
        assert_eq!(m(r"\Qa.b*c-\E\d"), vec!["a.b*c-1"]);
        assert_eq!(
            m(r"\Qa.b*c-1"),
            vec!["a.b*c-1"],
            "\\Q without \\E quotes to the end"
        );
        // RE2's \d, \w and \s are ASCII; the crate's are Unicode.
        assert!(matching(r"\d", &["٣"]).expect("digit").is_empty());
        assert!(matching(r"\w+", &["é"]).expect("word").is_empty());
        assert_eq!(matching(r"[\d_]+", &["1_2"]).expect("class"), vec!["1_2"]);
        assert_eq!(
            matching(r"[^\s]+", &["a b", "ab"]).expect("negated"),
            vec!["ab"]
        );
        // An escaped backslash before d is a literal backslash and d.
        assert_eq!(
            matching(r"\\d", &["\\d", "1"]).expect("escape"),
            vec!["\\d"]
        );
        assert_eq!(
            matching("[]a]+", &["]a", "b"]).expect("bracket"),
            vec!["]a"]
        );
    }
}
