//! Java `.properties` text as Kafka reads `server.properties` (and kastle
//! reads `meta.properties` and its own state files).

use super::{err, ConfigError};

/// Parses Java `.properties` text: `key=value` or `key: value`, `#`/`!`
/// comments, backslash line continuations and escapes.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            if lines.peek().is_some() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        let entry = std::mem::take(&mut logical);
        let (k, v) = split_entry(&entry);
        let k = unescape(k.trim_end());
        if k.is_empty() {
            return err(format!("invalid properties line without a key: {raw:?}"));
        }
        out.push((k, unescape(v.trim())));
    }
    Ok(out)
}

/// `.properties` escaping: backslashes and line breaks always; in keys also
/// the separators, whitespace and comment marks.
pub fn escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | ' ' | '#' | '!' if key => {
                out.push('\\');
                out.push(c);
            }
            // A leading space of a value would be trimmed on reading.
            ' ' if i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

fn split_entry(entry: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in entry.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&entry[..i], &entry[i + 1..]),
            c if c.is_whitespace() => {
                let rest = entry[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (&entry[..i], rest);
            }
            _ => {}
        }
    }
    (entry, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}
