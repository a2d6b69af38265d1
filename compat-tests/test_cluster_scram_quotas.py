"""SCRAM credentials and client quotas are the cluster's (issue 17): kept in
the metadata log as Kafka's KRaft mode keeps them, not in each broker's files.

Three combined nodes, each with a SASL_PLAINTEXT client listener beside the
PLAINTEXT one (inter-broker traffic stays PLAINTEXT). The admin requests are
built by Kafka's own message classes (the oracle JVM of jvm/kafka4) and sent
to one chosen node, which forwards them to the active controller; librdkafka
authenticates and produces.

* A SCRAM-SHA-256 and a SCRAM-SHA-512 user created through node 1 authenticate
  on nodes 2 and 3; after a SIGKILL and restart of every node they still do;
  a credential deleted through node 2 stops working everywhere.
* A client-id ``producer_byte_rate`` set through node 2 is listed by
  DescribeClientQuotas on node 3 and throttles a producer on another leader
  (its Produce responses carry throttle_time_ms > 0), also after a SIGKILL and
  restart of every node.
"""
import base64
import hashlib
import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from cluster_lib import KastleCluster
from compat_lib import ck_create_topic, unique_topic

pytestmark = pytest.mark.timeout(420)

DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS = 48, 49
DESCRIBE_SCRAM, ALTER_SCRAM = 50, 51
SHA = {1: ("SCRAM-SHA-256", "sha256"), 2: ("SCRAM-SHA-512", "sha512")}
OVERRIDES = {
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
    "connection.failed.authentication.delay.ms": "50",
    # Two 1 s samples: a burst over the quota is throttled within seconds.
    "quota.window.num": "2",
    "quota.window.size.seconds": "1",
}


@pytest.fixture(scope="module")
def oracle():
    import jvm_lib
    import oracle_lib
    jvm_lib.jvm_module("kafka4")  # skips when the JVM drivers are not built
    proxy = oracle_lib.OracleProxy()
    yield proxy
    proxy.close()


@pytest.fixture
def cluster(broker_factory):
    c = KastleCluster(broker_factory, nodes=3, overrides=OVERRIDES,
                      extra_listener=("SASL_PLAINTEXT", "SASL_PLAINTEXT")).start()
    c.wait_brokers({1, 2, 3})
    return c


_conns = iter(range(1_000_000))


def send(oracle, cluster, node, api, version, body):
    """One request to ``node``'s PLAINTEXT listener, on a connection of its own."""
    msg = oracle.call(addr=cluster.nodes[node].bootstrap, conn=f"scq/{next(_conns)}",
                      api=api, version=version, body=body)
    assert "error" not in msg, msg
    return msg["response"]


def wait_until(what, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def restart_all_after_sigkill(cluster):
    for i in cluster.nodes:
        cluster.kill(i)
    cluster.start()
    cluster.wait_brokers({1, 2, 3})


# -- SCRAM --------------------------------------------------------------------

def upsert(oracle, cluster, node, user, password, mechanism, iterations=8192):
    salt = f"salt-of-{user}".encode()
    salted = hashlib.pbkdf2_hmac(SHA[mechanism][1], password.encode(), salt, iterations)
    r = send(oracle, cluster, node, ALTER_SCRAM, 0, {"deletions": [], "upsertions": [{
        "name": user, "mechanism": mechanism, "iterations": iterations,
        "salt": base64.b64encode(salt).decode(),
        "saltedPassword": base64.b64encode(salted).decode()}]})
    assert [(x["user"], x["errorCode"]) for x in r["results"]] == [(user, 0)], r


def delete(oracle, cluster, node, user, mechanism):
    r = send(oracle, cluster, node, ALTER_SCRAM, 0, {
        "deletions": [{"name": user, "mechanism": mechanism}], "upsertions": []})
    return [(x["user"], x["errorCode"]) for x in r["results"]]


def authenticates(cluster, node, mechanism, user, password, timeout=6):
    """Whether a SASL_PLAINTEXT client bootstrapped on ``node`` alone gets
    Metadata with this credential."""
    conf = {"bootstrap.servers": f"127.0.0.1:{cluster.extra_ports[node]}",
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": SHA[mechanism][0],
            "sasl.username": user, "sasl.password": password,
            "error_cb": lambda e: None}
    try:
        AdminClient(conf).list_topics(timeout=timeout)
        return True
    except KafkaException:
        return False


def test_scram_credentials_are_cluster_wide_and_survive_sigkill(cluster, oracle):
    upsert(oracle, cluster, 1, "ann", "ann-secret", 1)
    upsert(oracle, cluster, 1, "ben", "ben-secret", 2)
    for node in (2, 3, 1):
        wait_until(f"ann on node {node}",
                   lambda: authenticates(cluster, node, 1, "ann", "ann-secret"))
        wait_until(f"ben on node {node}",
                   lambda: authenticates(cluster, node, 2, "ben", "ben-secret"))
    assert not authenticates(cluster, 2, 1, "ann", "wrong", timeout=3)
    # Every node describes the same credentials from its image.
    for node in (1, 2, 3):
        r = send(oracle, cluster, node, DESCRIBE_SCRAM, 0, {"users": None})
        got = {x["user"]: [(c["mechanism"], c["iterations"]) for c in x["credentialInfos"]]
               for x in r["results"]}
        assert got == {"ann": [(1, 8192)], "ben": [(2, 8192)]}, r
    # A client of node 3 produces through the cluster with its credential.
    topic = unique_topic("scq-sasl")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    cluster.wait_isr(topic, 3)
    p = Producer({"bootstrap.servers": f"127.0.0.1:{cluster.extra_ports[3]}",
                  "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                  "sasl.username": "ben", "sasl.password": "ben-secret", "acks": "all"})
    errors = []
    for i in range(30):
        p.produce(topic, f"v{i}".encode(), on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors

    restart_all_after_sigkill(cluster)
    for node in (1, 2, 3):
        wait_until(f"ann on node {node} after the restart",
                   lambda: authenticates(cluster, node, 1, "ann", "ann-secret"), timeout=60)

    assert delete(oracle, cluster, 2, "ann", 1) == [("ann", 0)]
    for node in (1, 2, 3):
        wait_until(f"ann refused on node {node}",
                   lambda: not authenticates(cluster, node, 1, "ann", "ann-secret", timeout=3))
        assert authenticates(cluster, node, 2, "ben", "ben-secret")
    # Deleting it again: the controller no longer has it.
    assert delete(oracle, cluster, 3, "ann", 1) == [("ann", 91)]  # RESOURCE_NOT_FOUND


# -- client quotas --------------------------------------------------------------

CLIENT = "scq-slow-producer"
RATE = 4096


def describe_quota(oracle, cluster, node):
    r = send(oracle, cluster, node, DESCRIBE_CLIENT_QUOTAS, 1, {"components": [
        {"entityType": "client-id", "matchType": 0, "match": CLIENT}], "strict": False})
    assert r["errorCode"] == 0, r
    return [({e["entityType"]: e["entityName"] for e in x["entity"]},
             {v["key"]: v["value"] for v in x["values"]}) for x in r["entries"]]


def throttled_produce(cluster, topic, partition):
    """Produces 16 KiB (four seconds' worth) to one partition with the
    throttled client id; the throttle times the leaders reported."""
    events = []
    p = Producer({"bootstrap.servers": cluster.nodes[3].bootstrap, "client.id": CLIENT,
                  "linger.ms": 50, "compression.type": "none",
                  "throttle_cb": lambda ev: events.append((ev.broker_id, ev.throttle_time))})
    for _ in range(16):
        p.produce(topic, b"q" * 1024, partition=partition)
    assert p.flush(60) == 0
    p.poll(0.5)
    return events


def test_client_quotas_are_cluster_wide_and_survive_sigkill(cluster, oracle):
    r = send(oracle, cluster, 2, ALTER_CLIENT_QUOTAS, 1, {"validateOnly": False, "entries": [{
        "entity": [{"entityType": "client-id", "entityName": CLIENT}],
        "ops": [{"key": "producer_byte_rate", "value": float(RATE), "remove": False}]}]})
    assert [e["errorCode"] for e in r["entries"]] == [0], r
    # Kafka's controller refuses a fractional byte rate.
    r = send(oracle, cluster, 1, ALTER_CLIENT_QUOTAS, 1, {"validateOnly": False, "entries": [{
        "entity": [{"entityType": "client-id", "entityName": "other"}],
        "ops": [{"key": "producer_byte_rate", "value": 1.5, "remove": False}]}]})
    assert [(e["errorCode"], e["errorMessage"]) for e in r["entries"]] == [
        (42, "producer_byte_rate cannot be a fractional value.")], r
    want = [({"client-id": CLIENT}, {"producer_byte_rate": float(RATE)})]
    wait_until("the quota on node 3", lambda: describe_quota(oracle, cluster, 3) == want)

    topic = unique_topic("scq-quota")
    ck_create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    md = cluster.wait_isr(topic, 3)
    # A partition led by another broker than the one the quota was set on.
    partition, leader = next((p.id, p.leader) for p in md.topics[topic].partitions.values()
                             if p.leader != 2)
    events = throttled_produce(cluster, topic, partition)
    assert any(b == leader and t > 0 for b, t in events), events

    restart_all_after_sigkill(cluster)
    for node in (1, 2, 3):
        wait_until(f"the quota on node {node} after the restart",
                   lambda: describe_quota(oracle, cluster, node) == want, timeout=60)
    md = cluster.wait_isr(topic, 3)
    leader = md.topics[topic].partitions[partition].leader
    events = throttled_produce(cluster, topic, partition)
    assert any(b == leader and t > 0 for b, t in events), events

    # Removed through node 1: gone everywhere.
    r = send(oracle, cluster, 1, ALTER_CLIENT_QUOTAS, 1, {"validateOnly": False, "entries": [{
        "entity": [{"entityType": "client-id", "entityName": CLIENT}],
        "ops": [{"key": "producer_byte_rate", "value": 0.0, "remove": True}]}]})
    assert [e["errorCode"] for e in r["entries"]] == [0], r
    for node in (1, 2, 3):
        wait_until(f"no quota on node {node}", lambda: describe_quota(oracle, cluster, node) == [])


# -- controller mutation quota (Envelope) -----------------------------------------

CREATE_TOPICS = 19
MUTATOR = "scq-mutator"


def create_topics(oracle, cluster, node, client_id, topics, partitions):
    """CreateTopics v7 (strict quota mode) sent to ``node`` with ``client_id``;
    the broker forwards it to the controller inside an Envelope that names the
    client, so the controller's quota applies to the client, not the broker."""
    msg = oracle.call(addr=cluster.nodes[node].bootstrap, conn=f"scq/{next(_conns)}",
                      client_id=client_id, api=CREATE_TOPICS, version=7, body={
                          "topics": [{"name": t, "numPartitions": partitions,
                                      "replicationFactor": 1, "assignments": [],
                                      "configs": []} for t in topics],
                          "timeoutMs": 30000, "validateOnly": False})
    assert "error" not in msg, msg
    r = msg["response"]
    return r["throttleTimeMs"], [(t["name"], t["errorCode"]) for t in r["topics"]]


def test_controller_mutation_rate_throttles_the_forwarding_client_only(cluster, oracle):
    # Two partition mutations per second for one client id, set through node 2.
    r = send(oracle, cluster, 2, ALTER_CLIENT_QUOTAS, 1, {"validateOnly": False, "entries": [{
        "entity": [{"entityType": "client-id", "entityName": MUTATOR}],
        "ops": [{"key": "controller_mutation_rate", "value": 2.0, "remove": False}]}]})
    assert [e["errorCode"] for e in r["entries"]] == [0], r
    a, b, c = (unique_topic(f"scq-mut-{x}") for x in "abc")
    # Every node forwards with the client's identity; whichever node
    # receives it, the first topic is admitted (the quota was not yet
    # exceeded), its 20 partitions put the client over the quota, and the
    # second topic of the same request is refused, as Kafka's strict mode does.
    deadline = time.monotonic() + 30
    while True:
        throttle, results = create_topics(oracle, cluster, 3, MUTATOR, [a, b], 20)
        if results[0][1] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the quota record may not have reached the controller yet
    assert results == [(a, 0), (b, 89)], results  # THROTTLING_QUOTA_EXCEEDED
    assert throttle > 0, throttle
    # The client stays throttled for a second request through another node.
    throttle, results = create_topics(oracle, cluster, 1, MUTATOR, [c], 1)
    assert results == [(c, 89)] and throttle > 0, (throttle, results)
    # Another client id is not affected: both of its topics are created at once.
    d, e = (unique_topic(f"scq-free-{x}") for x in "de")
    throttle, results = create_topics(oracle, cluster, 3, "scq-free", [d, e], 20)
    assert results == [(d, 0), (e, 0)] and throttle == 0, (throttle, results)
