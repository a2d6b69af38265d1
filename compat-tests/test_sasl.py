"""SASL on a SASL_PLAINTEXT listener with real clients: confluent-kafka
(librdkafka) and kafka-python produce and consume with PLAIN and
SCRAM-SHA-256/512, a wrong password fails with Kafka's message, SCRAM
credentials are managed with the admin API and with Kafka's own
kafka-configs (``ConfigCommand``), and survive a restart. KIP-368: with
``connections.max.reauth.ms`` the Java client (PLAIN) and librdkafka
(OAUTHBEARER, its unsecured tokens) re-authenticate on their open
connections while producing.

The broker has a PLAINTEXT listener (administration) beside the
SASL_PLAINTEXT one; PLAIN users come from the listener's JAAS config as
the apache/kafka image sets it.
"""
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

import jvm_lib
from compat_lib import unique_topic
from conftest import free_port

N = 50
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" '
        'user_admin="admin-secret" user_alice="alice-secret";')


@pytest.fixture
def sasl_broker(broker_factory):
    """(broker, sasl bootstrap): PLAINTEXT on broker.port, SASL_PLAINTEXT beside it."""
    plain_port, sasl_port = free_port(), free_port()
    listeners = f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
    b = broker_factory({
        "listeners": listeners,
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "connection.failed.authentication.delay.ms": "50",
    }, port=plain_port)
    return b, f"127.0.0.1:{sasl_port}"


def rdkafka_conf(bootstrap, mechanism, user, password):
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def rdkafka_roundtrip(conf):
    topic = unique_topic("sasl")
    p = Producer(dict(conf))
    errors = []
    for i in range(N):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                  on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(30) == 0 and not errors, errors
    c = Consumer(dict(conf, **{"group.id": unique_topic("g"), "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    try:
        for _ in range(200):
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value().decode())
            if len(got) == N:
                break
    finally:
        c.close()
    assert got == [f"v{i}" for i in range(N)]


def kafka_python_roundtrip(bootstrap, mechanism, user, password):
    from kafka import KafkaConsumer, KafkaProducer
    kw = dict(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
              sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    topic = unique_topic("sasl-kp")
    p = KafkaProducer(**kw)
    for i in range(N):
        p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    p.flush(30)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000,
                      group_id=unique_topic("g"), **kw)
    got = []
    for m in c:
        got.append(m.value.decode())
        if len(got) == N:
            break
    c.close()
    assert got == [f"v{i}" for i in range(N)]


def add_scram(admin_bootstrap, user, password, mechanism, iterations=8192):
    admin = AdminClient({"bootstrap.servers": admin_bootstrap})
    futs = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        user, ScramCredentialInfo(mechanism, iterations), password.encode())])
    for f in futs.values():
        f.result(30)


def test_plain_with_confluent_kafka_and_kafka_python(sasl_broker):
    _, sasl = sasl_broker
    rdkafka_roundtrip(rdkafka_conf(sasl, "PLAIN", "alice", "alice-secret"))
    kafka_python_roundtrip(sasl, "PLAIN", "alice", "alice-secret")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_with_confluent_kafka_and_kafka_python(sasl_broker, mechanism):
    b, sasl = sasl_broker
    m = ScramMechanism.SCRAM_SHA_256 if mechanism.endswith("256") else ScramMechanism.SCRAM_SHA_512
    add_scram(b.bootstrap, "carol", "carol-secret", m)
    rdkafka_roundtrip(rdkafka_conf(sasl, mechanism, "carol", "carol-secret"))
    kafka_python_roundtrip(sasl, mechanism, "carol", "carol-secret")
    # Durable: a restarted broker still knows the credential.
    b.stop()
    b.start()
    rdkafka_roundtrip(rdkafka_conf(sasl, mechanism, "carol", "carol-secret"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_wrong_password_fails_clearly(sasl_broker, mechanism):
    b, sasl = sasl_broker
    add_scram(b.bootstrap, "alice", "alice-scram", ScramMechanism.SCRAM_SHA_256)
    errors = []
    conf = rdkafka_conf(sasl, mechanism, "alice", "wrong")
    conf["error_cb"] = errors.append
    admin = AdminClient(conf)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    admin.poll(2)  # serves error_cb
    text = " ".join(str(e) for e in errors)
    expected = ("Invalid username or password" if mechanism == "PLAIN"
                else "invalid credentials with SASL mechanism SCRAM-SHA-256")
    assert "Authentication failed" in text and expected in text, text
    # kafka-python logs the failure and keeps retrying until its bootstrap
    # timeout: it never connects.
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism=mechanism, sasl_plain_username="alice",
                      sasl_plain_password="wrong", bootstrap_timeout_ms=3000)


def test_kafka_configs_manages_scram_credentials(sasl_broker, tmp_path):
    b, sasl = sasl_broker
    T = "org.apache.kafka.tools.ConfigCommand"
    bs = ["--bootstrap-server", b.bootstrap]
    p = jvm_lib.jvm_run("kafka4", T, [*bs, "--alter", "--add-config",
                                      "SCRAM-SHA-256=[iterations=8192,password=dave-secret]",
                                      "--entity-type", "users", "--entity-name", "dave"],
                        timeout=120, jvm_opts=("-Xmx256m",))
    assert "Completed updating config for user dave" in p.stdout, p.stdout
    rdkafka_roundtrip(rdkafka_conf(sasl, "SCRAM-SHA-256", "dave", "dave-secret"))
    p = jvm_lib.jvm_run("kafka4", T, [*bs, "--describe", "--entity-type", "users",
                                      "--entity-name", "dave"], timeout=120, jvm_opts=("-Xmx256m",))
    assert "SCRAM-SHA-256=iterations=8192" in p.stdout, p.stdout
    p = jvm_lib.jvm_run("kafka4", T, [*bs, "--alter", "--delete-config", "SCRAM-SHA-256",
                                      "--entity-type", "users", "--entity-name", "dave"],
                        timeout=120, jvm_opts=("-Xmx256m",))
    assert "Completed updating config for user dave" in p.stdout, p.stdout
    p = jvm_lib.jvm_run("kafka4", T, [*bs, "--describe", "--entity-type", "users",
                                      "--entity-name", "dave"], timeout=120, jvm_opts=("-Xmx256m",))
    assert "SCRAM" not in p.stdout, p.stdout


def test_clients_reauthenticate_while_producing(broker_factory, monkeypatch, tmp_path):
    """KIP-368: the Java client's ProducerPerformance (PLAIN, 2 s sessions)
    and librdkafka (OAUTHBEARER, 5 s sessions) produce for several
    sessions' worth of time; the broker re-authenticates their connections in place
    instead of closing them."""
    # The authenticator logs each re-authentication at debug.
    monkeypatch.setenv("RUST_LOG", "info,kastle::network=debug")
    plain_port, sasl_port = free_port(), free_port()
    listeners = f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
    b = broker_factory({
        "listeners": listeners,
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        "connections.max.reauth.ms": "2000",
        # librdkafka re-authenticates at 90% of the session: 5 s leaves it
        # half a second on a loaded machine.
        "listener.name.sasl_plaintext.oauthbearer.connections.max.reauth.ms": "5000",
    }, port=plain_port)
    sasl = f"127.0.0.1:{sasl_port}"
    topic = unique_topic("reauth-java")
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'username="alice" password="alice-secret";')
    props = tmp_path / "producer.properties"
    props.write_text(f"bootstrap.servers={sasl}\nsecurity.protocol=SASL_PLAINTEXT\n"
                     f"sasl.mechanism=PLAIN\nsasl.jaas.config={jaas}\nacks=all\n")
    p = jvm_lib.jvm_run("kafka4", "org.apache.kafka.tools.ProducerPerformance", [
        "--topic", topic, "--num-records", 350, "--record-size", 100, "--throughput", 50,
        "--command-config", props], timeout=120, jvm_opts=("-Xmx256m",))
    assert "350 records sent" in p.stdout, p.stdout + p.stderr
    log = b.log_path.read_text()
    java_reauths = log.count("re-authentication done")
    assert java_reauths >= 2, log[-5000:]

    conf = {"bootstrap.servers": sasl, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice"}
    producer = Producer(conf)
    topic = unique_topic("reauth-rdkafka")
    errors, delivered = [], []
    deadline = time.monotonic() + 10
    i = 0
    while time.monotonic() < deadline:
        producer.produce(topic, value=f"v{i}".encode(),
                         on_delivery=lambda err, msg: errors.append(err) if err else delivered.append(1))
        producer.poll(0.1)
        i += 1
    assert producer.flush(30) == 0 and not errors, errors
    assert len(delivered) == i
    log = b.log_path.read_text()
    assert "mechanism=OAUTHBEARER lifetime=Some(5000)" in log, log[-5000:]
    assert log.count("re-authentication done") >= java_reauths + 2, log[-5000:]
    assert "session expired without re-authentication" not in log, log[-5000:]
