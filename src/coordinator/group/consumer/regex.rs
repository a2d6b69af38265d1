//! Regular-expression subscriptions of KIP-848 consumer groups (Kafka's
//! `GroupMetadataManager.maybeUpdateRegularExpressions`,
//! `refreshRegularExpressions`, `handleRegularExpressionsResult` and
//! `Utils.throwIfRegularExpressionIsInvalid`): a member's
//! `SubscribedTopicRegex` is validated when it is new to the group, and the
//! group's regular expressions are resolved together against every topic
//! name (a full match, as RE2J's `matches()`), keeping the topics the
//! member may DESCRIBE. The resolution is written as records type 16, and a
//! changed resolution bumps the group epoch. Kafka resolves on its
//! executor and applies the result as a separate write; kastle resolves
//! within the heartbeat that asks for it (a scan of the topic names), under
//! the same conditions and intervals.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use regex::Regex;

use super::group::{regex_of, ConsumerGroup};
use super::heartbeat::Fail;
use super::member::ConsumerGroupMember;
use super::records::{ConsumerRecord, ResolvedRegularExpression};

/// Kafka's `REGEX_BATCH_REFRESH_MIN_INTERVAL_MS`: a group's regular
/// expressions are resolved at most this often.
pub const REGEX_BATCH_REFRESH_MIN_INTERVAL_MS: i64 = 10_000;

/// The default of Kafka's internal `group.consumer.regex.refresh.interval.ms`:
/// resolutions older than this are refreshed even without new topics (so
/// that changed ACLs are seen).
pub const REGEX_REFRESH_INTERVAL_MS: i64 = 10 * 60 * 1000;

/// Compiles `regex` to match whole topic names (RE2J's `matches()`).
pub fn compile(regex: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{regex})$"))
}

/// RE2J's description of a syntax error, from the Rust `regex` crate's
/// (both are RE2 syntax); an error RE2J has no counterpart for keeps the
/// crate's own words.
fn re2j_description(e: &regex::Error) -> String {
    let text = e.to_string();
    const MAP: &[(&str, &str)] = &[
        ("unclosed group", "missing closing )"),
        ("unopened group", "unexpected )"),
        ("unclosed character class", "missing closing ]"),
        (
            "repetition operator missing expression",
            "missing argument to repetition operator",
        ),
        (
            "incomplete escape sequence",
            "trailing backslash at end of expression",
        ),
        (
            "backreferences are not supported",
            "invalid escape sequence",
        ),
        ("unrecognized escape sequence", "invalid escape sequence"),
        (
            "invalid character class range",
            "invalid character class range",
        ),
        ("invalid repetition count range", "invalid repeat count"),
        ("exceeds the limit", "invalid repeat count"),
        (
            "look-around, including look-ahead and look-behind, is not supported",
            "invalid or unsupported Perl syntax",
        ),
        ("invalid capture group", "invalid named capture"),
        (
            "duplicate capture group name",
            "duplicate capture group name",
        ),
    ];
    for (rust, re2j) in MAP {
        if text.contains(rust) {
            return (*re2j).to_string();
        }
    }
    // The crate's message ends with "error: <what>".
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_string()
}

/// Kafka's `throwIfRegularExpressionIsInvalid`.
pub fn validate(regex: &str) -> Result<(), Fail> {
    compile(regex).map(|_| ()).map_err(|e| {
        (
            ResponseError::InvalidRegularExpression.code(),
            Some(format!(
                "SubscribedTopicRegex `{regex}` is not a valid regular expression: {}.",
                re2j_description(&e)
            )),
        )
    })
}

/// What a member's heartbeat does about regular expressions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RegexUpdate {
    /// The member joined an already resolved regular expression.
    pub bump: bool,
    /// The member was the last subscriber of this one: its tombstone.
    pub tombstone: Option<String>,
    /// The regular expressions to resolve now (all of the group's).
    pub refresh: Option<BTreeSet<String>>,
}

/// Kafka's `maybeUpdateRegularExpressions`, on the group as it was before
/// the member's new metadata. `topics_version` grows when topics are
/// created (Kafka's `lastMetadataImageWithNewTopics`).
pub fn maybe_update(
    g: &ConsumerGroup,
    member: &ConsumerGroupMember,
    updated: &ConsumerGroupMember,
    now_ms: i64,
    topics_version: i64,
) -> Result<RegexUpdate, Fail> {
    let (old, new) = (regex_of(member), regex_of(updated));
    let mut out = RegexUpdate::default();
    let mut require_refresh = false;
    if member.subscribed_topic_regex != updated.subscribed_topic_regex {
        if let Some(o) = old {
            if g.num_subscribed_members(o) == 1 && new != Some(o) {
                out.tombstone = Some(o.to_string());
            }
        }
        if let Some(n) = new {
            if g.num_subscribed_members(n) == 0 {
                validate(n)?;
                require_refresh = true;
            } else {
                out.bump = g.resolved_regular_expressions.contains_key(n);
            }
        }
    }
    let mut subscribed = g.subscribed_regular_expressions();
    if !require_refresh && subscribed.is_empty() {
        return Ok(out);
    }
    let last = g.last_regex_refresh_ms();
    if now_ms <= last.saturating_add(REGEX_BATCH_REFRESH_MIN_INTERVAL_MS) {
        return Ok(out);
    }
    if old != new {
        if let Some(o) = old {
            if let Some(c) = subscribed.get_mut(o) {
                *c -= 1;
                if *c == 0 {
                    subscribed.remove(o);
                }
            }
        }
        if let Some(n) = new {
            *subscribed.entry(n.to_string()).or_default() += 1;
        }
    }
    require_refresh |= subscribed.len() != g.resolved_regular_expressions.len();
    require_refresh |= g.last_regex_version() < topics_version;
    require_refresh |= now_ms > last.saturating_add(REGEX_REFRESH_INTERVAL_MS);
    if require_refresh && !subscribed.is_empty() {
        out.refresh = Some(subscribed.into_keys().collect());
    }
    Ok(out)
}

/// Kafka's `refreshRegularExpressions`: each regular expression's matching
/// topics among `topic_names` that `may_describe` allows (Kafka filters by
/// DESCRIBE with the context of the member whose heartbeat asked). A
/// regular expression that does not compile (validated on arrival, so
/// only one written by another broker) matches nothing.
pub fn resolve(
    gid: &str,
    regexes: &BTreeSet<String>,
    topic_names: &[String],
    may_describe: &dyn Fn(&str) -> bool,
    version: i64,
    now_ms: i64,
) -> BTreeMap<String, ResolvedRegularExpression> {
    let compiled: Vec<(&String, Option<Regex>)> = regexes
        .iter()
        .map(|r| {
            let c = compile(r)
                .map_err(|e| {
                    tracing::error!(group = %gid, regex = %r, error = %e, "a subscribed regular expression does not compile; it matches nothing");
                })
                .ok();
            (r, c)
        })
        .collect();
    let mut out: BTreeMap<String, ResolvedRegularExpression> = regexes
        .iter()
        .map(|r| {
            let v = ResolvedRegularExpression {
                topics: BTreeSet::new(),
                version,
                timestamp: now_ms,
            };
            (r.clone(), v)
        })
        .collect();
    for t in topic_names {
        let mut allowed: Option<bool> = None;
        for (r, c) in &compiled {
            if c.as_ref().is_some_and(|c| c.is_match(t))
                && *allowed.get_or_insert_with(|| may_describe(t))
            {
                if let Some(e) = out.get_mut(*r) {
                    e.topics.insert(t.clone());
                }
            }
        }
    }
    tracing::debug!(group = %gid, topics = topic_names.len(), regexes = ?regexes, "resolved the regular expressions");
    out
}

/// Kafka's `handleRegularExpressionsResult` up to the epoch decision: the
/// records of the new resolutions (of regular expressions still
/// subscribed to) and whether a resolution changed.
pub fn result_records(
    g: &ConsumerGroup,
    resolved: BTreeMap<String, ResolvedRegularExpression>,
) -> (Vec<ConsumerRecord>, bool) {
    let mut changed = false;
    let mut recs = Vec::with_capacity(resolved.len());
    for (regex, new) in resolved {
        if g.num_subscribed_members(&regex) == 0 {
            continue;
        }
        let old = g.resolved_regular_expressions.get(&regex);
        if old.map(|o| &o.topics) != Some(&new.topics) && !(old.is_none() && new.topics.is_empty())
        {
            changed = true;
        }
        recs.push(ConsumerRecord::RegularExpression(
            g.group_id.clone(),
            regex,
            Some(new),
        ));
    }
    (recs, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, regex: Option<&str>) -> ConsumerGroupMember {
        let mut m = ConsumerGroupMember::new(id);
        m.subscribed_topic_regex = regex.map(str::to_string);
        m
    }

    #[test]
    fn invalid_regular_expressions_get_kafkas_message() {
        assert!(validate("foo.*").is_ok());
        assert!(validate("(a|b)[0-9]+").is_ok());
        let (code, msg) = validate("foo(").unwrap_err();
        assert_eq!(code, ResponseError::InvalidRegularExpression.code());
        assert_eq!(
            msg.as_deref(),
            Some(
                "SubscribedTopicRegex `foo(` is not a valid regular expression: missing closing )."
            )
        );
        let (_, msg) = validate("[ab").unwrap_err();
        assert_eq!(
            msg.as_deref(),
            Some(
                "SubscribedTopicRegex `[ab` is not a valid regular expression: missing closing ]."
            )
        );
        let (_, msg) = validate("*x").unwrap_err();
        assert!(msg
            .unwrap()
            .ends_with("missing argument to repetition operator."));
    }

    #[test]
    fn resolution_matches_whole_names_and_filters_describe() {
        let topics: Vec<String> = ["orders", "orders-v2", "reorders", "secret-orders", "pay"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let regexes: BTreeSet<String> = ["orders.*".to_string(), ".*orders".to_string()]
            .into_iter()
            .collect();
        let r = resolve(
            "g",
            &regexes,
            &topics,
            &|t| !t.starts_with("secret"),
            5,
            100,
        );
        let names = |k: &str| -> Vec<&str> { r[k].topics.iter().map(String::as_str).collect() };
        assert_eq!(names("orders.*"), vec!["orders", "orders-v2"]);
        assert_eq!(names(".*orders"), vec!["orders", "reorders"]);
        assert_eq!(r["orders.*"].version, 5);
        assert_eq!(r["orders.*"].timestamp, 100);
    }

    #[test]
    fn refresh_follows_kafkas_conditions() {
        let mut g = ConsumerGroup::new("g");
        let none = member("m1", None);
        let joining = member("m1", Some("t.*"));
        // A new regex: validated and resolved at once.
        let u = maybe_update(&g, &none, &joining, 1_000_000, 0).unwrap();
        assert_eq!(u.refresh, Some(["t.*".to_string()].into_iter().collect()));
        assert!(!u.bump);
        assert!(maybe_update(&g, &none, &member("m1", Some("(")), 1_000_000, 0).is_err());
        // Resolved at t=1_000_000, version 3.
        g.replay(&ConsumerRecord::MemberMetadata(
            "g".into(),
            "m1".into(),
            Some(super::super::records::MemberMetadata::of(&joining)),
        ));
        let resolved = resolve(
            "g",
            &["t.*".to_string()].into_iter().collect(),
            &["t1".to_string()],
            &|_| true,
            3,
            1_000_000,
        );
        let (recs, changed) = result_records(&g, resolved);
        assert!(changed);
        for r in &recs {
            g.replay(r);
        }
        // New topics (version 4) within the minimum interval: not yet.
        let u = maybe_update(&g, &joining, &joining, 1_005_000, 4).unwrap();
        assert_eq!(u.refresh, None);
        // After it: resolved again.
        let u = maybe_update(&g, &joining, &joining, 1_010_001, 4).unwrap();
        assert!(u.refresh.is_some());
        // No new topics: only after the refresh interval.
        let u = maybe_update(&g, &joining, &joining, 1_010_001, 3).unwrap();
        assert_eq!(u.refresh, None);
        let later = 1_000_000 + REGEX_REFRESH_INTERVAL_MS + 1;
        assert!(maybe_update(&g, &joining, &joining, later, 3)
            .unwrap()
            .refresh
            .is_some());
        // A second member joining the resolved regex bumps the epoch; the
        // last one leaving it writes its tombstone.
        let u = maybe_update(
            &g,
            &member("m2", None),
            &member("m2", Some("t.*")),
            1_001_000,
            3,
        )
        .unwrap();
        assert!(u.bump);
        let u = maybe_update(&g, &joining, &member("m1", Some("u.*")), 1_001_000, 3).unwrap();
        assert_eq!(u.tombstone.as_deref(), Some("t.*"));
        // The same resolution again is written (new timestamp) but changes nothing.
        let again = resolve(
            "g",
            &["t.*".to_string()].into_iter().collect(),
            &["t1".to_string()],
            &|_| true,
            4,
            1_020_000,
        );
        let (recs, changed) = result_records(&g, again);
        assert_eq!(recs.len(), 1);
        assert!(!changed);
    }
}
