"""ACLs in a kastle cluster (issue 17): one cluster-wide set kept in the
metadata log, as Kafka's KRaft mode keeps it. Three combined nodes with
Kafka's StandardAuthorizer and ``allow.everyone.if.no.acl.found=true``;
CreateAcls/DeleteAcls sent to one broker (which forwards them to the active
controller) change what every other broker enforces and describes, and the
ACLs survive SIGKILL and restart of every node."""
import time

import pytest
from confluent_kafka import KafkaError
from kafka import KafkaAdminClient
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, ResourcePattern, ResourcePatternFilter,
                         ResourceType)
from kafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

from cluster_lib import KastleCluster
from compat_lib import ck_create_topic, ck_producer, unique_topic

pytestmark = pytest.mark.timeout(300)

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ANONYMOUS = "User:ANONYMOUS"


@pytest.fixture
def cluster(broker_factory):
    c = KastleCluster(broker_factory, nodes=3, overrides={
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "allow.everyone.if.no.acl.found": "true",
    }).start()
    c.wait_brokers({1, 2, 3})
    yield c
    for b in c.nodes.values():
        b.kill()


def admin_on(cluster, node_id):
    """A kafka-python admin bootstrapped from one broker only."""
    return KafkaAdminClient(bootstrap_servers=cluster.nodes[node_id].bootstrap,
                            client_id=f"acl-admin-{node_id}", request_timeout_ms=40_000)


def send_to(admin, node_id, request, timeout=30):
    """Sends ``request`` to broker ``node_id`` itself (not whichever the
    client would pick), retrying while the connection is not ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin._manager.run(admin._manager.send, request, node_id)
        except Exception as e:  # noqa: BLE001 - NodeNotReady while connecting
            if time.monotonic() > deadline:
                raise AssertionError(f"broker {node_id} did not answer: {e!r}") from e
            time.sleep(0.2)


def create_acls(cluster, node_id, acls):
    a = admin_on(cluster, node_id)
    try:
        creations = [KafkaAdminClient._convert_create_acls_resource_request(x) for x in acls]
        resp = send_to(a, node_id, CreateAclsRequest(creations=creations))
        return [(r.error_code, r.error_message or None) for r in resp.results]
    finally:
        a.close()


def describe_acls(cluster, node_id, acl_filter):
    a = admin_on(cluster, node_id)
    try:
        p = acl_filter.resource_pattern
        resp = send_to(a, node_id, DescribeAclsRequest(
            resource_type_filter=p.resource_type, resource_name_filter=p.resource_name,
            pattern_type_filter=p.pattern_type, principal_filter=acl_filter.principal,
            host_filter=acl_filter.host, operation=acl_filter.operation,
            permission_type=acl_filter.permission_type))
        acls, _ = KafkaAdminClient._convert_describe_acls_response_to_acls(resp)
        return sorted((x.resource_pattern.resource_name, x.resource_pattern.pattern_type,
                       x.principal, x.host, x.operation, x.permission_type) for x in acls)
    finally:
        a.close()


def delete_acls(cluster, node_id, filters):
    a = admin_on(cluster, node_id)
    try:
        reqs = [KafkaAdminClient._convert_delete_acls_resource_request(f) for f in filters]
        resp = send_to(a, node_id, DeleteAclsRequest(filters=reqs))
        return [(r.error_code, sorted((m.resource_name, m.operation, m.permission_type)
                                      for m in r.matching_acls))
                for r in resp.filter_results]
    finally:
        a.close()


def produce_error(cluster, topic, partition):
    """Produces one record to ``partition`` (its leader answers): the
    delivery error's code, or None."""
    p = ck_producer(cluster.bootstrap, **{"message.timeout.ms": 10_000,
                                          "client.id": "acl-probe"})
    errors = []
    p.produce(topic, value=b"v", partition=partition,
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors, "no delivery report"
    return None if errors[0] is None else errors[0].code()


def wait_produce(cluster, topic, partitions, want, timeout=60):
    """Waits until a produce to each partition ends with ``want`` (an error
    code or None): brokers apply a committed ACL change as they fetch the
    metadata image."""
    deadline = time.monotonic() + timeout
    got = {}
    while time.monotonic() < deadline:
        got = {p: produce_error(cluster, topic, p) for p in partitions}
        if all(g == want for g in got.values()):
            return
        time.sleep(0.5)
    raise AssertionError(f"produce results {got}, wanted {want} everywhere")


def wait_described(cluster, node_id, acl_filter, want, timeout=30):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = describe_acls(cluster, node_id, acl_filter)
        if got == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"broker {node_id} describes {got}, wanted {want}")


def topic_acl(topic, operation, permission):
    return ACL(principal=ANONYMOUS, host="*", operation=operation, permission_type=permission,
               resource_pattern=ResourcePattern(ResourceType.TOPIC, topic,
                                                ACLResourcePatternType.LITERAL))


def topic_filter(topic):
    return ACLFilter(principal=ANONYMOUS, host="*", operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic,
                                                            ACLResourcePatternType.LITERAL))


def test_acls_are_one_cluster_wide_set_in_the_metadata_log(cluster):
    topic = unique_topic("cluster-acls")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    cluster.wait_isr(topic, 3)
    parts = cluster.partitions(topic)
    leaders = {p.id: p.leader for p in parts.values()}
    # The ACL goes in through broker 1; brokers 2 and 3 must enforce it.
    assert set(leaders.values()) - {1}, f"every partition led by broker 1: {leaders}"
    wait_produce(cluster, topic, list(leaders), None)

    # DESCRIBE allowed (clients still get the topic's metadata), WRITE denied.
    deny_write = topic_acl(topic, ACLOperation.WRITE, ACLPermissionType.DENY)
    allow_describe = topic_acl(topic, ACLOperation.DESCRIBE, ACLPermissionType.ALLOW)
    assert create_acls(cluster, 1, [deny_write, allow_describe]) == [(0, None), (0, None)]
    # Creating an ACL that exists is a success that changes nothing.
    assert create_acls(cluster, 2, [deny_write]) == [(0, None)]
    # The controller validates: a principal without a type is refused.
    bad = ACL(principal="ANONYMOUS", host="*", operation=ACLOperation.READ,
              permission_type=ACLPermissionType.ALLOW,
              resource_pattern=ResourcePattern(ResourceType.TOPIC, topic,
                                               ACLResourcePatternType.LITERAL))
    [(code, msg)] = create_acls(cluster, 3, [bad])
    assert code == 42 and "Could not parse principal" in msg, (code, msg)  # INVALID_REQUEST

    wait_produce(cluster, topic, list(leaders), KafkaError.TOPIC_AUTHORIZATION_FAILED)
    want = sorted([
        (topic, ACLResourcePatternType.LITERAL, ANONYMOUS, "*", ACLOperation.DESCRIBE,
         ACLPermissionType.ALLOW),
        (topic, ACLResourcePatternType.LITERAL, ANONYMOUS, "*", ACLOperation.WRITE,
         ACLPermissionType.DENY),
    ])
    for node in (3, 2, 1):
        wait_described(cluster, node, topic_filter(topic), want)

    # Deleted through broker 2: the filter reports both ACLs it removed.
    [(code, matched)] = delete_acls(cluster, 2, [topic_filter(topic)])
    assert code == 0
    assert matched == sorted([(topic, ACLOperation.DESCRIBE, ACLPermissionType.ALLOW),
                              (topic, ACLOperation.WRITE, ACLPermissionType.DENY)])
    wait_produce(cluster, topic, list(leaders), None)
    for node in (1, 2, 3):
        wait_described(cluster, node, topic_filter(topic), [])
    # Nothing left to delete.
    assert delete_acls(cluster, 3, [topic_filter(topic)]) == [(0, [])]

    # Denied again, then every node is killed and restarted: the ACLs come
    # back from the metadata log, not from any broker's file.
    assert create_acls(cluster, 3, [deny_write, allow_describe]) == [(0, None), (0, None)]
    wait_produce(cluster, topic, list(leaders), KafkaError.TOPIC_AUTHORIZATION_FAILED)
    for b in cluster.nodes.values():
        b.kill()
        assert not (b.data_dir / "__kastle_configs" / "acls").exists()
    cluster.start()
    cluster.wait_brokers({1, 2, 3})
    cluster.wait_isr(topic, 3)
    for node in (1, 2, 3):
        wait_described(cluster, node, topic_filter(topic), want)
    leaders = {p.id: p.leader for p in cluster.partitions(topic).values()}
    wait_produce(cluster, topic, list(leaders), KafkaError.TOPIC_AUTHORIZATION_FAILED)
