//! Black-box tests of finalized feature levels (KIP-584): UpdateFeatures
//! with Kafka's checks and messages, the levels read back through
//! ApiVersions with a moving epoch, group.version 0 turning the KIP-848
//! APIs off (UNSUPPORTED_VERSION, as Kafka's `isConsumerGroupProtocolEnabled`),
//! the change surviving a restart, ALTER on the cluster required, and a
//! cluster broker forwarding the update to the controller, whose
//! FeatureLevelRecord every broker then serves.

use std::time::{Duration, Instant};

use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::*;

use crate::support::cluster::Cluster;
use crate::support::{find_coordinators, sb, Broker, Client, E, NONE};

const SAFE_DOWNGRADE: i8 = 2;
const UPGRADE: i8 = 1;

fn update(
    c: &mut Client,
    version: i16,
    updates: &[(&str, i16, i8)],
    validate_only: bool,
) -> UpdateFeaturesResponse {
    let req = UpdateFeaturesRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_feature_updates(
            updates
                .iter()
                .map(|(n, l, t)| {
                    FeatureUpdateKey::default()
                        .with_feature(sb(n))
                        .with_max_version_level(*l)
                        .with_upgrade_type(*t)
                })
                .collect(),
        );
    c.call(version, &req)
}

/// The finalized levels and their epoch, as `Admin.describeFeatures` reads them.
fn finalized(c: &mut Client) -> (Vec<(String, i16)>, i64) {
    let r: ApiVersionsResponse = c.call(
        4,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("kastle-features-test"))
            .with_client_software_version(sb("1")),
    );
    let mut levels: Vec<(String, i16)> = r
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.max_version_level))
        .collect();
    levels.sort();
    (levels, r.finalized_features_epoch)
}

fn level(levels: &[(String, i16)], name: &str) -> Option<i16> {
    levels.iter().find(|(n, _)| n == name).map(|(_, l)| *l)
}

fn heartbeat_error(c: &mut Client) -> i16 {
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb("features-g")))
        .with_member_id(sb("m-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(5000)
        .with_subscribed_topic_names(Some(vec![]))
        .with_topic_partitions(Some(vec![]));
    c.call::<ConsumerGroupHeartbeatRequest>(0, &req).error_code
}

#[test]
fn update_features_checks_persists_and_gates_the_consumer_protocol() {
    let mut b = Broker::start(&["offsets.topic.num.partitions=1"]);
    find_coordinators(&b);
    let mut c = b.client();
    let (levels, epoch0) = finalized(&mut c);
    assert_eq!(level(&levels, "group.version"), Some(1));

    // A downgrade sent as an upgrade: refused for the whole request, with
    // Kafka's message, and nothing changes.
    let r = update(&mut c, 2, &[("group.version", 0, UPGRADE)], false);
    assert_eq!(r.error_code, E::InvalidUpdateVersion.code());
    assert_eq!(
        r.error_message.as_deref(),
        Some("The update failed for all features since the following feature had an error: Invalid update version 0 for feature group.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
    );
    assert!(r.results.is_empty());
    // A level no node supports, and a feature kastle does not offer.
    let r = update(&mut c, 2, &[("group.version", 2, UPGRADE)], false);
    assert_eq!(r.error_code, E::InvalidUpdateVersion.code());
    assert!(r
        .error_message
        .as_deref()
        .is_some_and(|m| m.ends_with("Local controller 1 only supports versions 0-1")));
    let r = update(
        &mut c,
        2,
        &[("eligible.leader.replicas.version", 1, UPGRADE)],
        false,
    );
    assert!(r
        .error_message
        .as_deref()
        .is_some_and(|m| m.ends_with("Local controller 1 does not support this feature.")));
    // validate_only: accepted, nothing written.
    let r = update(&mut c, 1, &[("group.version", 0, SAFE_DOWNGRADE)], true);
    assert_eq!((r.error_code, r.error_message.as_deref()), (NONE, None));
    assert_eq!(r.results.len(), 1);
    assert_eq!(finalized(&mut c), (levels.clone(), epoch0));
    assert_eq!(heartbeat_error(&mut c), NONE);

    // The downgrade: v1 lists the feature as updated (v2 lists none).
    let r = update(&mut c, 1, &[("group.version", 0, SAFE_DOWNGRADE)], false);
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        r.results
            .iter()
            .map(|f| (f.feature.to_string(), f.error_code))
            .collect::<Vec<_>>(),
        vec![("group.version".to_string(), NONE)]
    );
    let (after, epoch1) = finalized(&mut c);
    assert_eq!(
        level(&after, "group.version"),
        None,
        "level 0 is not listed"
    );
    assert!(epoch1 > epoch0, "the epoch moves: {epoch0} -> {epoch1}");
    assert_eq!(heartbeat_error(&mut c), E::UnsupportedVersion.code());
    let d: ConsumerGroupDescribeResponse = c.call(
        0,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb("features-g"))]),
    );
    assert_eq!(d.groups[0].error_code, E::UnsupportedVersion.code());

    // It survives a restart; the upgrade turns KIP-848 back on.
    b.stop();
    b.restart();
    let mut c = b.client();
    let (levels, epoch) = finalized(&mut c);
    assert_eq!((level(&levels, "group.version"), epoch), (None, epoch1));
    assert_eq!(heartbeat_error(&mut c), E::UnsupportedVersion.code());
    let r = update(&mut c, 2, &[("group.version", 1, UPGRADE)], false);
    assert_eq!((r.error_code, r.results.len()), (NONE, 0));
    assert_eq!(level(&finalized(&mut c).0, "group.version"), Some(1));
    assert_eq!(heartbeat_error(&mut c), NONE);
}

#[test]
fn update_features_needs_alter_on_the_cluster() {
    let b = Broker::start(&[
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:nobody",
    ]);
    let mut c = b.client();
    let r = update(&mut c, 2, &[("group.version", 0, SAFE_DOWNGRADE)], false);
    assert_eq!(r.error_code, E::ClusterAuthorizationFailed.code());
    assert!(r.error_message.is_some());
    assert_eq!(level(&finalized(&mut c).0, "group.version"), Some(1));
}

#[test]
fn a_cluster_broker_forwards_the_update_and_every_broker_serves_it() {
    let mut cl = Cluster::start(3, 0, 0);
    for id in 1..=3 {
        cl.await_brokers(id, &[1, 2, 3], Duration::from_secs(20));
        // A new cluster starts at Kafka 4.4's levels, recorded in its
        // first batch (before the registrations every broker has seen).
        let (levels, _) = finalized(&mut cl.node(id).process.client());
        assert_eq!(level(&levels, "transaction.version"), Some(2), "node {id}");
        assert_eq!(level(&levels, "group.version"), Some(1), "node {id}");
    }
    let mut c1 = cl.node(1).process.client();
    let r = update(&mut c1, 2, &[("group.version", 0, SAFE_DOWNGRADE)], false);
    assert_eq!((r.error_code, r.error_message.as_deref()), (NONE, None));
    // Every broker follows the metadata log to the new level.
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in 1..=3 {
        let mut c = cl.node(id).process.client();
        loop {
            let (levels, epoch) = finalized(&mut c);
            if level(&levels, "group.version").is_none() {
                assert!(epoch > 0, "node {id}: the metadata offset is the epoch");
                assert_eq!(level(&levels, "metadata.version"), Some(33));
                break;
            }
            assert!(Instant::now() < deadline, "node {id} never saw the level");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            heartbeat_error(&mut c),
            E::UnsupportedVersion.code(),
            "node {id}"
        );
    }
    // The brokers registered their supported ranges: a level beyond them
    // is refused by the controller.
    let r = update(&mut c1, 2, &[("group.version", 3, UPGRADE)], false);
    assert_eq!(r.error_code, E::InvalidUpdateVersion.code());
    assert!(
        r.error_message
            .as_deref()
            .is_some_and(|m| m.contains("only supports versions 0-1")),
        "{:?}",
        r.error_message
    );
}

#[test]
fn a_new_directory_starts_at_the_chosen_transaction_version_an_old_one_stays_at_1() {
    // A new directory: the format levels, recorded at once.
    let plain = Broker::start(&[]);
    let (levels, _) = finalized(&mut plain.client());
    assert_eq!(level(&levels, "transaction.version"), Some(2));
    drop(plain);
    let mut b = Broker::start(&["kastle.format.features=transaction.version=1"]);
    let mut c = b.client();
    let (levels, epoch) = finalized(&mut c);
    assert_eq!(level(&levels, "transaction.version"), Some(1));
    assert_eq!(epoch, 0, "the format levels are not a change");
    // Kafka allows the upgrade to 2 (and the downgrade back).
    let r = update(&mut c, 2, &[("transaction.version", 2, UPGRADE)], false);
    assert_eq!((r.error_code, r.error_message.as_deref()), (NONE, None));
    assert_eq!(level(&finalized(&mut c).0, "transaction.version"), Some(2));
    let r = update(
        &mut c,
        2,
        &[("transaction.version", 1, SAFE_DOWNGRADE)],
        false,
    );
    assert_eq!((r.error_code, r.error_message.as_deref()), (NONE, None));
    assert_eq!(finalized(&mut c), (levels.clone(), 2));

    // The directory as an older kastle left it: formatted (meta.properties)
    // with no recorded level. It keeps level 1 across restarts, as Kafka
    // keeps an upgraded cluster's levels; the setting does not apply to it.
    b.stop();
    let recorded = b
        .data_dir
        .join("__kastle_configs")
        .join("finalized-features");
    std::fs::remove_file(&recorded).expect("remove the recorded levels");
    b.restart_with(&["kastle.format.features=transaction.version=2"]);
    let mut c = b.client();
    let (levels, _) = finalized(&mut c);
    assert_eq!(level(&levels, "transaction.version"), Some(1));
    assert_eq!(level(&levels, "group.version"), Some(1));
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(level(&finalized(&mut c).0, "transaction.version"), Some(1));
    // `kafka-features upgrade` moves it, and the change is recorded.
    let r = update(&mut c, 2, &[("transaction.version", 2, UPGRADE)], false);
    assert_eq!((r.error_code, r.error_message.as_deref()), (NONE, None));
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(level(&finalized(&mut c).0, "transaction.version"), Some(2));
}

#[test]
fn format_features_choose_a_new_directorys_levels() {
    let b = Broker::start(&["kastle.format.features=transaction.version=1,group.version=0"]);
    let mut c = b.client();
    let (levels, _) = finalized(&mut c);
    assert_eq!(level(&levels, "transaction.version"), Some(1));
    assert_eq!(level(&levels, "group.version"), None, "level 0");
    assert_eq!(heartbeat_error(&mut c), E::UnsupportedVersion.code());
}
