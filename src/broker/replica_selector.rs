//! KIP-392 (fetch from the closest replica): which replica a consumer
//! should read a partition from. Kafka ships one selector,
//! `RackAwareReplicaSelector`, named by `replica.selector.class`; without
//! one every consumer reads from the leader. The leader decides, from the
//! client's `client.rack` (Fetch v11+ `rack_id`) and the racks its in-sync
//! replicas' brokers registered, and answers with `preferred_read_replica`
//! instead of records; the client then fetches from that replica.

/// The selector Kafka ships, the only class `replica.selector.class` may
/// name here.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// Whether `replica.selector.class` enables rack-aware reads; any other
/// class is refused at start-up, as Kafka fails to load an unknown one.
pub fn rack_aware_from_config(class: &str) -> Result<bool, String> {
    match class.trim() {
        "" => Ok(false),
        RACK_AWARE_REPLICA_SELECTOR => Ok(true),
        other => Err(format!(
            "replica.selector.class: {other} is not supported (only {RACK_AWARE_REPLICA_SELECTOR})"
        )),
    }
}

/// One replica a consumer could read from (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub broker_id: i32,
    /// The rack its broker registered, `None` without one or without an
    /// endpoint on the client's listener (Kafka's `Node.noNode()`).
    pub rack: Option<String>,
    pub log_end_offset: i64,
    pub time_since_last_caught_up_ms: i64,
}

/// `RackAwareReplicaSelector.select`: the leader when the client names no
/// rack, when no replica shares its rack, or when the leader does; else
/// the replica of its rack that is furthest along (highest log end, then
/// most recently caught up, then highest id).
pub fn select_rack_aware<'a>(
    client_rack: &str,
    leader: &'a ReplicaView,
    replicas: &'a [ReplicaView],
) -> &'a ReplicaView {
    if client_rack.is_empty() {
        return leader;
    }
    let same_rack = |r: &&ReplicaView| r.rack.as_deref() == Some(client_rack);
    if same_rack(&leader) {
        return leader;
    }
    replicas
        .iter()
        .filter(same_rack)
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(
                    b.time_since_last_caught_up_ms
                        .cmp(&a.time_since_last_caught_up_ms),
                )
                .then(a.broker_id.cmp(&b.broker_id))
        })
        .unwrap_or(leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: Option<&str>, leo: i64, since: i64) -> ReplicaView {
        ReplicaView {
            broker_id: id,
            rack: rack.map(str::to_string),
            log_end_offset: leo,
            time_since_last_caught_up_ms: since,
        }
    }

    #[test]
    fn the_leader_unless_another_replica_shares_the_clients_rack() {
        let leader = view(1, Some("a"), 100, 0);
        let replicas = vec![view(2, Some("b"), 90, 10), view(3, Some("c"), 100, 0)];
        assert_eq!(select_rack_aware("", &leader, &replicas).broker_id, 1);
        assert_eq!(select_rack_aware("a", &leader, &replicas).broker_id, 1);
        assert_eq!(select_rack_aware("z", &leader, &replicas).broker_id, 1);
        assert_eq!(select_rack_aware("b", &leader, &replicas).broker_id, 2);
        assert_eq!(select_rack_aware("c", &leader, &replicas).broker_id, 3);
        // A replica without an endpoint on the listener has no rack.
        let hidden = vec![view(2, None, 100, 0)];
        assert_eq!(select_rack_aware("b", &leader, &hidden).broker_id, 1);
    }

    #[test]
    fn within_a_rack_the_furthest_along_wins() {
        let leader = view(1, Some("a"), 100, 0);
        let replicas = vec![
            view(2, Some("b"), 90, 0),
            view(3, Some("b"), 95, 500),
            view(4, Some("b"), 95, 20),
            view(5, Some("b"), 95, 20),
        ];
        // Highest log end; then the most recently caught up; then the id.
        assert_eq!(select_rack_aware("b", &leader, &replicas).broker_id, 5);
    }

    #[test]
    fn only_kafkas_rack_aware_selector_is_accepted() {
        assert_eq!(rack_aware_from_config(""), Ok(false));
        assert_eq!(
            rack_aware_from_config(RACK_AWARE_REPLICA_SELECTOR),
            Ok(true)
        );
        assert!(rack_aware_from_config("com.example.Mine").is_err());
    }
}
