//! The request quota (`request_percentage`) as Kafka's
//! `ClientRequestQuotaManager` applies it: a client over it gets the
//! throttle in the `throttle_time_ms` of every API's response, whichever
//! place the field has in the body (first, after the API keys of
//! ApiVersions, after the partitions of Produce, after the error of
//! OffsetDelete; in the header chunk of a Fetch whose records go by
//! reference). A tiny quota makes every request after the first over it;
//! each API is asked on a new connection, since the throttled one is muted.

use kafka_protocol::messages::fetch_request::ReplicaState;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, DescribeClusterRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, ListGroupsRequest, MetadataRequest, OffsetDeleteRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::support::admin::alter_quota;
use crate::support::fetch::{fetch_request, FetchArgs};
use crate::support::produce::{produce_request, single_partition};
use crate::support::topics::create_topic;
use crate::support::*;

#[test]
fn request_quota_throttle_reaches_every_response() {
    let b = Broker::start(&[]);
    let mut admin = b.client();
    create_topic(&mut admin, "rq", 1, &[]);
    let records = simple_batch(5, 100, now_ms(), 1);
    let p = single_partition(admin.call(9, &produce_request("rq", 0, -1, &records)));
    assert_eq!(
        (
            p.error_code,
            b.client()
                .call(3, &ApiVersionsRequest::default())
                .throttle_time_ms
        ),
        (NONE, 0)
    );
    // 0.00001% of a thread: the burst allowance is gone after the first
    // request.
    assert_eq!(
        alter_quota(
            &mut admin,
            &[("client-id", Some(CLIENT_ID))],
            &[("request_percentage", 0.00001, false)],
            false
        ),
        NONE
    );
    let fresh = || {
        let mut c = b.client();
        // Over the quota by now; each throttled request mutes only its own
        // connection.
        c.call(1, &MetadataRequest::default().with_topics(Some(vec![])));
        b.client()
    };
    let group = || GroupId(StrBytes::from_static_str("g"));
    let mut seen: Vec<(&str, i32)> = vec![
        ("ApiVersions v0 (no field)", 1),
        ("Metadata v1 (no field)", 1),
    ];
    fresh().call(0, &ApiVersionsRequest::default());
    fresh().call(1, &MetadataRequest::default().with_topics(Some(vec![])));
    seen.push((
        "ApiVersions v1",
        fresh()
            .call(1, &ApiVersionsRequest::default())
            .throttle_time_ms,
    ));
    seen.push((
        "ApiVersions v3",
        fresh()
            .call(3, &ApiVersionsRequest::default())
            .throttle_time_ms,
    ));
    seen.push((
        "Metadata v12",
        fresh()
            .call(12, &MetadataRequest::default().with_topics(None))
            .throttle_time_ms,
    ));
    for v in [3, 9] {
        let r = fresh().call(v, &produce_request("rq", 0, -1, &records));
        assert_eq!(r.responses[0].partition_responses[0].error_code, NONE);
        seen.push((
            if v == 3 { "Produce v3" } else { "Produce v9" },
            r.throttle_time_ms,
        ));
    }
    let f = fresh().call(12, &fetch_request("rq", 0, &FetchArgs::default()));
    assert_eq!(f.responses[0].partitions[0].high_watermark, 15);
    assert!(f.responses[0].partitions[0]
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty()));
    seen.push(("Fetch v12", f.throttle_time_ms));
    let od = fresh().call(
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(group())
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(tn("rq"))
                .with_partitions(vec![OffsetDeleteRequestPartition::default()])]),
    );
    assert_ne!(od.error_code, NONE, "no such group");
    seen.push(("OffsetDelete v0", od.throttle_time_ms));
    seen.push((
        "ListGroups v4",
        fresh()
            .call(4, &ListGroupsRequest::default())
            .throttle_time_ms,
    ));
    seen.push((
        "DescribeCluster v0",
        fresh()
            .call(0, &DescribeClusterRequest::default())
            .throttle_time_ms,
    ));
    seen.push((
        "FindCoordinator v4",
        fresh()
            .call(
                4,
                &FindCoordinatorRequest::default()
                    .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
            )
            .throttle_time_ms,
    ));
    seen.push((
        "Heartbeat v4",
        fresh()
            .call(4, &HeartbeatRequest::default().with_group_id(group()))
            .throttle_time_ms,
    ));
    let unthrottled: Vec<_> = seen.iter().filter(|(_, ms)| *ms <= 0).collect();
    assert!(
        unthrottled.is_empty(),
        "no throttle in {unthrottled:?} (all: {seen:?})"
    );
}

/// Kafka answers a follower's Fetch (replica id ≥ 0 at v<15, a
/// ReplicaState at v15+) exempt from the request quota and outside the
/// client fetch quota (`KafkaApis.handleFetchRequest`), while a consumer's
/// Fetch from the same client id is throttled by both.
#[test]
fn follower_fetch_is_exempt_from_client_quotas() {
    let b = Broker::start(&[]);
    let mut admin = b.client();
    create_topic(&mut admin, "rqf", 1, &[]);
    let records = simple_batch(5, 50, now_ms(), 1);
    let p = single_partition(admin.call(9, &produce_request("rqf", 0, -1, &records)));
    assert_eq!(p.error_code, NONE);
    // A tiny request quota and a one-byte-per-second fetch quota: every
    // consumer fetch after the first is over both.
    assert_eq!(
        alter_quota(
            &mut admin,
            &[("client-id", Some(CLIENT_ID))],
            &[
                ("request_percentage", 0.00001, false),
                ("consumer_byte_rate", 1.0, false)
            ],
            false
        ),
        NONE
    );
    let fresh = || {
        let mut c = b.client();
        c.call(1, &MetadataRequest::default().with_topics(Some(vec![])));
        b.client()
    };
    let consumer = fresh().call(12, &fetch_request("rqf", 0, &FetchArgs::default()));
    assert!(
        consumer.throttle_time_ms > 0,
        "consumer fetch not throttled: {consumer:?}"
    );
    // ANONYMOUS without an authorizer may CLUSTER_ACTION. The replica id
    // names no replica of this single-broker partition; the partition's
    // error is not the point, the throttle is.
    let v12 = fetch_request("rqf", 0, &FetchArgs::default()).with_replica_id(BrokerId(2));
    let follower = fresh().call(12, &v12);
    let v15 = fetch_request("rqf", 0, &FetchArgs::default()).with_replica_state(
        ReplicaState::default()
            .with_replica_id(BrokerId(2))
            .with_replica_epoch(1),
    );
    let follower15 = fresh().call(15, &v15);
    for (what, r) in [("v12", &follower), ("v15", &follower15)] {
        assert_eq!(r.error_code, NONE, "{what}: {r:?}");
        assert_eq!(
            r.throttle_time_ms, 0,
            "{what} follower fetch throttled: {r:?}"
        );
        assert_eq!(r.responses.len(), 1, "{what}: {r:?}");
    }
    // Still over the quota: the next consumer fetch is throttled again.
    let again = fresh().call(12, &fetch_request("rqf", 0, &FetchArgs::default()));
    assert!(again.throttle_time_ms > 0, "{again:?}");
}
