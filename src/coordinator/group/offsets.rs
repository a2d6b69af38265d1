//! Committed offsets of one group and their expiration
//! (`offsets.retention.minutes`), following Kafka's rules: offsets of an
//! Empty group expire `retention` after the group became Empty (after the
//! commit itself for a group that never had members); while a consumer
//! group has members, only offsets of topics it no longer subscribes to
//! expire, `retention` after their commit. An explicit expire timestamp
//! (OffsetCommit v2-v4 `retention_time_ms`) wins.

use std::collections::HashMap;

use super::persistence::OffsetValue;

/// (topic, partition) → committed offset.
pub type OffsetMap = HashMap<(String, i32), OffsetValue>;

/// What the group's state says about expiring its offsets.
pub enum ExpirationBase {
    /// Empty group with members once: retention counts from this moment.
    StateTimestamp(i64),
    /// Simple group (never had members): from each commit.
    CommitTimestamp,
    /// Non-empty consumer group: unsubscribed topics expire from their
    /// commit, subscribed ones never.
    Unsubscribed(std::collections::HashSet<String>),
    /// Non-empty group of another protocol: nothing expires.
    Never,
}

/// Keys of the offsets that have expired at `now`.
pub fn expired(offsets: &OffsetMap, base: &ExpirationBase, retention_ms: i64, now: i64) -> Vec<(String, i32)> {
    offsets
        .iter()
        .filter(|((topic, _), v)| {
            if let Some(expire) = v.expire_timestamp {
                if !matches!(base, ExpirationBase::Never) {
                    return now >= expire;
                }
            }
            let since = match base {
                ExpirationBase::StateTimestamp(ts) => (*ts).max(0),
                ExpirationBase::CommitTimestamp => v.commit_timestamp,
                ExpirationBase::Unsubscribed(subscribed) => {
                    if subscribed.contains(topic) {
                        return false;
                    }
                    v.commit_timestamp
                }
                ExpirationBase::Never => return false,
            };
            now.saturating_sub(since) >= retention_ms
        })
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(ts: i64) -> OffsetValue {
        OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ts,
            expire_timestamp: None,
        }
    }

    #[test]
    fn expiry_rules() {
        let mut m = OffsetMap::new();
        m.insert(("a".into(), 0), off(0));
        m.insert(("b".into(), 0), off(900));
        assert_eq!(expired(&m, &ExpirationBase::CommitTimestamp, 500, 1000).len(), 1);
        assert_eq!(expired(&m, &ExpirationBase::StateTimestamp(100), 500, 1000).len(), 2);
        assert_eq!(expired(&m, &ExpirationBase::StateTimestamp(600), 500, 1000).len(), 0);
        let subscribed = ["a".to_string()].into_iter().collect();
        assert!(expired(&m, &ExpirationBase::Unsubscribed(subscribed), 50, 1000) == vec![("b".to_string(), 0)]);
        assert!(expired(&m, &ExpirationBase::Never, 0, 1000).is_empty());
    }
}
