//! ACLs with Kafka's `StandardAuthorizer` configured: CreateAcls,
//! DescribeAcls and DeleteAcls as Kafka answers them, the ACLs durable
//! across a restart, and requests authorized against them (the client is
//! `User:ANONYMOUS` on a PLAINTEXT listener).

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::messages::{
    CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, DescribeAclsResponse,
    MetadataRequest,
};

use crate::support::fetch::{fetch_response, FetchArgs};
use crate::support::groups::{join, Joiner};
use crate::support::produce::{produce, produce_ok};
use crate::support::topics::{create_topic, md_topic, metadata, try_create_topic};
use crate::support::*;

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

// Kafka's codes.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

pub(crate) fn creation(
    rt: i8,
    name: &str,
    pt: i8,
    principal: &str,
    op: i8,
    perm: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(sb(name))
        .with_resource_pattern_type(pt)
        .with_principal(sb(principal))
        .with_host(sb("*"))
        .with_operation(op)
        .with_permission_type(perm)
}

/// CreateAcls v3: each creation's (error code, message).
pub(crate) fn create_acls(
    c: &mut Client,
    creations: Vec<AclCreation>,
) -> Vec<(i16, Option<String>)> {
    let r = c.call(3, &CreateAclsRequest::default().with_creations(creations));
    r.results
        .into_iter()
        .map(|x| (x.error_code, x.error_message.map(|m| m.to_string())))
        .collect()
}

fn describe(c: &mut Client, rt: i8, name: Option<&str>, pt: i8) -> DescribeAclsResponse {
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(name.map(sb))
        .with_pattern_type_filter(pt)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    c.call(3, &req)
}

/// (resource type, name, pattern type, principal, operation, permission)
/// of every ACL a DescribeAcls answer lists.
fn listed(r: &DescribeAclsResponse) -> Vec<(i8, String, i8, String, i8, i8)> {
    let mut out: Vec<_> = r
        .resources
        .iter()
        .flat_map(|res| {
            res.acls.iter().map(move |a| {
                (
                    res.resource_type,
                    res.resource_name.to_string(),
                    res.pattern_type,
                    a.principal.to_string(),
                    a.operation,
                    a.permission_type,
                )
            })
        })
        .collect();
    out.sort();
    out
}

#[test]
fn acls_are_created_described_deleted_and_durable() {
    let mut b = Broker::start(&[AUTHORIZER, "super.users=User:admin;User:ANONYMOUS"]);
    let mut c = b.client();
    let results = create_acls(
        &mut c,
        vec![
            creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
            creation(TOPIC, "ord", PREFIXED, "User:bob", WRITE, ALLOW),
            creation(TOPIC, "*", LITERAL, "User:*", DESCRIBE, DENY),
            creation(GROUP, "g", LITERAL, "User:alice", READ, ALLOW),
            // Refused one by one, the others stored.
            creation(TOPIC, "", LITERAL, "User:alice", READ, ALLOW),
            creation(TOPIC, "x", LITERAL, "alice", READ, ALLOW),
            creation(
                CLUSTER,
                "not-the-cluster",
                LITERAL,
                "User:alice",
                ALL,
                ALLOW,
            ),
            creation(TOPIC, "x", LITERAL, "User:alice", ALL, ALLOW).with_host(sb("10.0.0.0/33")),
        ],
    );
    let codes: Vec<i16> = results.iter().map(|r| r.0).collect();
    let inv = E::InvalidRequest.code();
    assert_eq!(
        codes,
        [NONE, NONE, NONE, NONE, inv, inv, inv, inv],
        "{results:?}"
    );
    assert_eq!(
        results[6].1.as_deref(),
        Some("The only valid name for the CLUSTER resource is kafka-cluster")
    );
    // A MATCH pattern or an ANY operation cannot be stored: Kafka fails the
    // whole request, without a message.
    let results = create_acls(
        &mut c,
        vec![
            creation(TOPIC, "y", LITERAL, "User:alice", READ, ALLOW),
            creation(TOPIC, "y", MATCH, "User:alice", READ, ALLOW),
        ],
    );
    assert!(
        results
            .iter()
            .all(|r| *r == (E::UnknownServerError.code(), None)),
        "{results:?}"
    );

    let all = describe(&mut c, ANY, None, ANY);
    assert_eq!(all.error_code, NONE);
    assert_eq!(listed(&all).len(), 4);
    // MATCH "orders": the literal, the prefix and the wildcard.
    let matching = describe(&mut c, TOPIC, Some("orders"), MATCH);
    assert_eq!(
        listed(&matching)
            .iter()
            .map(|a| a.1.as_str())
            .collect::<Vec<_>>(),
        ["*", "ord", "orders"]
    );
    // ANY with a name: that exact name only.
    assert_eq!(listed(&describe(&mut c, ANY, Some("orders"), ANY)).len(), 1);
    assert_eq!(listed(&describe(&mut c, ANY, None, PREFIXED)).len(), 1);

    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(
        listed(&describe(&mut c, ANY, None, ANY)),
        listed(&all),
        "after restart"
    );

    let del = c.call(
        3,
        &DeleteAclsRequest::default().with_filters(vec![
            DeleteAclsFilter::default()
                .with_resource_type_filter(TOPIC)
                .with_pattern_type_filter(MATCH)
                .with_resource_name_filter(Some(sb("orders")))
                .with_principal_filter(Some(sb("User:alice")))
                .with_host_filter(None)
                .with_operation(ANY)
                .with_permission_type(ANY),
            DeleteAclsFilter::default()
                .with_resource_type_filter(GROUP)
                .with_pattern_type_filter(ANY)
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(ANY)
                .with_permission_type(ANY),
        ]),
    );
    assert_eq!(del.filter_results.len(), 2);
    let names: Vec<Vec<String>> = del
        .filter_results
        .iter()
        .map(|f| {
            assert_eq!(f.error_code, NONE);
            f.matching_acls
                .iter()
                .map(|a| a.resource_name.to_string())
                .collect()
        })
        .collect();
    assert_eq!(names, [vec!["orders".to_string()], vec!["g".to_string()]]);
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(
        listed(&describe(&mut c, ANY, None, ANY)).len(),
        2,
        "deletions are durable"
    );
}

#[test]
fn without_cluster_rights_the_acl_apis_are_refused() {
    let b = Broker::start(&[AUTHORIZER]);
    let mut c = b.client();
    let r = create_acls(
        &mut c,
        vec![creation(TOPIC, "t", LITERAL, "User:a", READ, ALLOW)],
    );
    assert_eq!(r[0].0, E::ClusterAuthorizationFailed.code());
    assert_eq!(
        describe(&mut c, ANY, None, ANY).error_code,
        E::ClusterAuthorizationFailed.code()
    );
    // SCRAM credentials: DESCRIBE on the cluster to list, ALTER to change,
    // each named user refused once.
    let d: DescribeUserScramCredentialsResponse = c.call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(None),
    );
    assert_eq!(d.error_code, E::ClusterAuthorizationFailed.code());
    assert!(d.results.is_empty());
    let upsert = |name: &str| {
        ScramCredentialUpsertion::default()
            .with_name(sb(name))
            .with_mechanism(1)
            .with_iterations(8192)
            .with_salt(bytes::Bytes::from_static(b"salt"))
            .with_salted_password(bytes::Bytes::from_static(&[7; 32]))
    };
    let a: AlterUserScramCredentialsResponse = c.call(
        0,
        &AlterUserScramCredentialsRequest::default()
            .with_upsertions(vec![upsert("u1"), upsert("u2")])
            .with_deletions(vec![ScramCredentialDeletion::default()
                .with_name(sb("u1"))
                .with_mechanism(1)]),
    );
    let users: Vec<(String, i16)> = a
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    let refused = E::ClusterAuthorizationFailed.code();
    assert_eq!(users, vec![("u1".into(), refused), ("u2".into(), refused)]);
}

#[test]
fn requests_are_authorized_against_the_acls() {
    let mut b = Broker::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]);
    let mut c = b.client();
    create_topic(&mut c, "pub-orders", 1, &[]);
    create_topic(&mut c, "hidden", 1, &[]);
    let anon = "User:ANONYMOUS";
    let r = create_acls(
        &mut c,
        vec![
            creation(TOPIC, "pub-", PREFIXED, anon, WRITE, ALLOW),
            creation(TOPIC, "pub-", PREFIXED, anon, READ, ALLOW),
            creation(GROUP, "g", LITERAL, anon, READ, ALLOW),
            creation(CLUSTER, "kafka-cluster", LITERAL, anon, DESCRIBE, ALLOW),
        ],
    );
    assert!(r.iter().all(|x| x.0 == NONE), "{r:?}");
    // No longer a super user: the ACLs decide.
    b.stop();
    b.restart_with(&["super.users="]);
    let mut c = b.client();
    let records = batch(&[Rec::value(b"v", now_ms())]);
    produce_ok(&mut c, "pub-orders", 0, &records);
    let refused = produce(&mut c, "hidden", 0, &records);
    assert_eq!(refused.error_code, E::TopicAuthorizationFailed.code());

    // Metadata: all topics lists the visible one only; a hidden or missing
    // topic asked for by name is refused alike (no existence leak).
    let all = metadata(&mut c, 12, None, false);
    let names: Vec<&str> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
        .collect();
    assert_eq!(names, ["pub-orders"]);
    let named = metadata(&mut c, 12, Some(&["hidden", "missing", "pub-orders"]), true);
    let code = |n: &str| md_topic(&named, n).map(|t| t.error_code);
    assert_eq!(code("hidden"), Some(E::TopicAuthorizationFailed.code()));
    assert_eq!(code("missing"), Some(E::TopicAuthorizationFailed.code()));
    assert_eq!(code("pub-orders"), Some(NONE));
    // Auto-creation of a describable topic needs CREATE.
    let auto = metadata(&mut c, 12, Some(&["pub-new"]), true);
    assert_eq!(
        auto.topics[0].error_code,
        E::TopicAuthorizationFailed.code()
    );

    // Authorized operations: READ, WRITE and the DESCRIBE they imply.
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(tn("pub-orders")))
        ]))
        .with_include_topic_authorized_operations(true);
    let m = c.call(12, &req);
    assert_eq!(
        m.topics[0].topic_authorized_operations,
        (1 << 3) | (1 << 4) | (1 << 8)
    );

    let f = fetch_response(&mut c, "hidden", 0, &FetchArgs::default());
    assert_eq!(
        f.responses[0].partitions[0].error_code,
        E::TopicAuthorizationFailed.code()
    );
    let f = fetch_response(&mut c, "pub-orders", 0, &FetchArgs::default());
    assert_eq!(f.responses[0].partitions[0].error_code, NONE);

    // Groups: READ on "g" only.
    let find = |c: &mut Client, g: &str| {
        let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![sb(g)]);
        c.call(4, &req).coordinators[0].error_code
    };
    assert_eq!(find(&mut c, "g"), NONE);
    assert_eq!(find(&mut c, "other"), E::GroupAuthorizationFailed.code());
    let meta = consumer_meta();
    let mut j = Joiner::new("other", &meta);
    assert_eq!(
        join(&mut c, &mut j).error_code,
        E::GroupAuthorizationFailed.code()
    );

    // Creating and deleting topics: no CREATE or DELETE.
    let r = try_create_topic(&mut c, "pub-x", 1, &[]);
    assert_eq!(r.error_code, E::TopicAuthorizationFailed.code());

    // The ACL APIs: DESCRIBE on the cluster lists, creating needs ALTER.
    assert_eq!(describe(&mut c, ANY, None, ANY).error_code, NONE);
    let r = create_acls(
        &mut c,
        vec![creation(TOPIC, "t", LITERAL, anon, READ, ALLOW)],
    );
    assert_eq!(r[0].0, E::ClusterAuthorizationFailed.code());
}

fn consumer_meta() -> Vec<u8> {
    crate::support::groups::consumer_subscription(&["pub-orders"])
}
