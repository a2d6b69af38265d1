"""TLS listeners with real clients: confluent-kafka (librdkafka, OpenSSL) and
kafka-python (Python's ssl module) produce and consume through an SSL listener,
with and without client certificates (ssl.client.auth=required), against a
broker whose PEM keystore holds an encrypted PKCS#8 key (ssl.key.password).
Certificates are made per test with the openssl command-line tool."""
import subprocess
from pathlib import Path

import pytest

from compat_lib import (ck_consume, ck_create_topic, ck_produce, kp_consume, kp_produce,
                        make_messages, per_partition_counts, unique_topic, verify)
from conftest import free_port


KEY_PASSWORD = "kastle-key-secret"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    """A CA, the broker's certificate (localhost, 127.0.0.1) with its key
    encrypted, and a client certificate, as PEM files in ``dir``."""

    def __init__(self, d: Path):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.pem", "-days", "2", "-subj", "/CN=kastle compat CA", cwd=d)
        self._issue("broker", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        # The broker's key as an ENCRYPTED PRIVATE KEY (PKCS#8, PBES2 + AES-256).
        _openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "broker.key",
                 "-out", "broker.enc.key", "-passout", f"pass:{KEY_PASSWORD}", cwd=d)
        (d / "keystore.pem").write_text((d / "broker.enc.key").read_text()
                                        + (d / "broker.pem").read_text())
        # An X.509 v3 certificate (with extensions): rustls, as webpki,
        # refuses v1 client certificates, which Java would accept.
        self._issue("client", "/O=kastle/OU=compat/CN=client",
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth")

    def _issue(self, name, subject, ext):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", subject, cwd=self.dir)
        args = ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2"]
        if ext:
            (self.dir / f"{name}.ext").write_text(ext + "\n")
            args += ["-extfile", f"{name}.ext"]
        _openssl(*args, cwd=self.dir)

    def path(self, name) -> str:
        return str(self.dir / name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """One PKI for the file (three RSA keys take seconds); tests only read it."""
    return Pki(tmp_path_factory.mktemp("tls") / "pki")


def _tls_broker(broker_factory, pki, client_auth="none"):
    port, ssl_port = free_port(), free_port()
    b = broker_factory(overrides={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://localhost:{ssl_port}",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": pki.path("keystore.pem"),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki.path("ca.pem"),
        "listener.name.ssl.ssl.client.auth": client_auth,
    }, port=port)
    return b, f"localhost:{ssl_port}"


def _ck_ssl(pki, with_cert):
    cfg = {"security.protocol": "SSL", "ssl.ca.location": pki.path("ca.pem")}
    if with_cert:
        cfg.update({"ssl.certificate.location": pki.path("client.pem"),
                    "ssl.key.location": pki.path("client.key")})
    return cfg


def _kp_ssl(pki, with_cert):
    cfg = dict(security_protocol="SSL", ssl_cafile=pki.path("ca.pem"), ssl_check_hostname=True)
    if with_cert:
        cfg.update(ssl_certfile=pki.path("client.pem"), ssl_keyfile=pki.path("client.key"))
    return cfg


@pytest.mark.parametrize("client_auth", ["none", "required"])
def test_confluent_kafka_over_ssl(broker_factory, pki, client_auth):
    """librdkafka produces and consumes through TLS (hostname verified against
    the broker's certificate); fetched data goes through TLS, not sendfile."""
    b, ssl_bootstrap = _tls_broker(broker_factory, pki, client_auth)
    topic = unique_topic(f"ck-ssl-{client_auth}")
    ck_create_topic(b.bootstrap, topic, 2)
    msgs = make_messages(3_000, "ck-ssl", 2)
    for m in msgs[::100]:
        m.value = m.value * 500  # some large records: bigger fetch responses
    tls = _ck_ssl(pki, with_cert=client_auth == "required")
    ck_produce(ssl_bootstrap, topic, msgs, **tls)
    verify(ck_consume(ssl_bootstrap, topic, 2, per_partition_counts(msgs), timeout=60, **tls), msgs)


@pytest.mark.parametrize("client_auth", ["none", "required"])
def test_kafka_python_over_ssl(broker_factory, pki, client_auth):
    b, ssl_bootstrap = _tls_broker(broker_factory, pki, client_auth)
    topic = unique_topic(f"kp-ssl-{client_auth}")
    ck_create_topic(b.bootstrap, topic, 1)
    msgs = make_messages(1_000, "kp-ssl", 1)
    tls = _kp_ssl(pki, with_cert=client_auth == "required")
    kp_produce(ssl_bootstrap, topic, msgs, **tls)
    verify(kp_consume(ssl_bootstrap, topic, 1, per_partition_counts(msgs), timeout=60, **tls), msgs)


def test_required_client_certificate_refuses_clients_without_one(broker_factory, pki):
    """With ssl.client.auth=required a client without a certificate gets no
    metadata; the same client with one does."""
    from confluent_kafka.admin import AdminClient
    b, ssl_bootstrap = _tls_broker(broker_factory, pki, "required")
    no_cert = AdminClient({"bootstrap.servers": ssl_bootstrap, **_ck_ssl(pki, False)})
    with pytest.raises(Exception):
        no_cert.list_topics(timeout=5)
    with_cert = AdminClient({"bootstrap.servers": ssl_bootstrap, **_ck_ssl(pki, True)})
    md = with_cert.list_topics(timeout=15)
    assert [(br.host, br.port) for br in md.brokers.values()] == \
        [("localhost", int(ssl_bootstrap.rsplit(":", 1)[1]))]
    assert b.alive()


def test_java_client_over_mtls(broker_factory, pki, tmp_path):
    """The Java client (Kafka 4.4's console producer and consumer, JSSE with
    Kafka's PEM key and trust stores) produces and consumes through a listener
    that requires client certificates."""
    import jvm_lib
    from test_kafka_tools import T, run_tools
    jvm_lib.jvm_module("kafka4")  # skips when the JVM drivers are not built
    b, ssl_bootstrap = _tls_broker(broker_factory, pki, "required")
    topic = unique_topic("java-ssl")
    ck_create_topic(b.bootstrap, topic, 1)
    (tmp_path / "client-keystore.pem").write_text(
        Path(pki.path("client.key")).read_text() + Path(pki.path("client.pem")).read_text())
    props = tmp_path / "client-ssl.properties"
    props.write_text("\n".join([
        "security.protocol=SSL",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={pki.path('ca.pem')}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tmp_path / 'client-keystore.pem'}",
    ]) + "\n")
    n = 50
    bs = ["--bootstrap-server", ssl_bootstrap]
    script = [
        {"name": "produce", "main": T + "ConsoleProducer", "fork": False,
         "args": [*bs, "--topic", topic, "--producer.config", str(props)],
         "stdin": "".join(f"java-{i}\n" for i in range(n))},
        {"name": "consume", "main": T + "consumer.ConsoleConsumer", "fork": False,
         "args": [*bs, "--topic", topic, "--from-beginning", "--max-messages", str(n),
                  "--timeout-ms", "30000", "--consumer.config", str(props)],
         "stdin": None},
    ]
    out = run_tools(script, tmp_path)
    for name in ("produce", "consume"):
        assert out[name]["rc"] == 0, f"{name}: {out[name]['out'][-3000:]}\n{out[name]['err'][-3000:]}"
    # (the tool may print a deprecation notice for --*.config first)
    got = [ln for ln in out["consume"]["out"].split() if ln.startswith("java-")]
    assert got == [f"java-{i}" for i in range(n)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl_with_confluent_kafka_and_kafka_python(broker_factory, pki, mechanism):
    """SASL over TLS (SASL_SSL): the handshake first, then SASL authentication
    over the encrypted stream, then produce and consume; a wrong password is
    refused there as on SASL_PLAINTEXT."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, \
        UserScramCredentialUpsertion
    from kafka import KafkaConsumer, KafkaProducer
    from test_sasl import JAAS
    port, sasl_ssl_port = free_port(), free_port()
    b = broker_factory(overrides={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_ssl_port}",
        "advertised.listeners":
            f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://localhost:{sasl_ssl_port}",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": pki.path("keystore.pem"),
        "ssl.key.password": KEY_PASSWORD,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "connection.failed.authentication.delay.ms": "50",
    }, port=port)
    bootstrap = f"localhost:{sasl_ssl_port}"
    user, password = "alice", "alice-secret"
    if mechanism.startswith("SCRAM"):
        user, password = "carol", "carol-secret"
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
                user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                password.encode())]).values():
            f.result(30)
    topic = unique_topic("sasl-ssl")
    ck_create_topic(b.bootstrap, topic, 1)
    msgs = make_messages(500, "sasl-ssl", 1)
    ck = {"security.protocol": "SASL_SSL", "ssl.ca.location": pki.path("ca.pem"),
          "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    ck_produce(bootstrap, topic, msgs, **ck)
    verify(ck_consume(bootstrap, topic, 1, per_partition_counts(msgs), timeout=60, **ck), msgs)
    kp = dict(bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
              ssl_cafile=pki.path("ca.pem"), sasl_mechanism=mechanism,
              sasl_plain_username=user, sasl_plain_password=password)
    p = KafkaProducer(**kp)
    p.send(topic, value=b"from kafka-python").get(30)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=15000, **kp)
    values = [m.value for m in c]
    c.close()
    assert len(values) == len(msgs) + 1 and values[-1] == b"from kafka-python"
    # A wrong password: refused, and the producer reports an authentication error.
    errors = []
    bad = Producer({**ck, "bootstrap.servers": bootstrap, "sasl.password": "wrong",
                    "error_cb": errors.append})
    bad.poll(5)
    bad.flush(1)
    assert any("uthenticat" in str(e) for e in errors), errors
    assert b.alive()
