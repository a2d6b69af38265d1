"""OAUTHBEARER with signed JWTs checked against a JWKS served over HTTPS,
as Kafka's ``OAuthBearerValidatorCallbackHandler`` does it: the broker
fetches ``sasl.oauthbearer.jwks.endpoint.url`` at start (allowed by
``-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls`` in ``KAFKA_OPTS``,
trusting the IdP's CA through the OAuthBearerLoginModule's
``ssl.truststore.*`` options and showing the IdP, which requires client
certificates, the entry's ``ssl.keystore.*`` one, as Kafka's
``JaasOptionsUtils`` does; without it the broker does not start);
confluent-kafka (librdkafka, its
``oauth_cb``) authenticates with a token signed by the published key; a
token naming a key id the set lacks is refused and makes the broker fetch
the set again at once (``RefreshingHttpsJwks.maybeExpediteRefresh``), so
after a key rotation on the IdP tokens with the new key id are accepted
and tokens with the withdrawn one refused.

The JWTs are RS256, signed with ``openssl dgst`` (no JWT library in the
suite); the HTTPS server is Python's http.server with the test PKI's
certificate.
"""
import base64
import http.server
import json
import ssl
import subprocess
import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from conftest import Broker, BrokerError, free_port
from test_tls import Pki

HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RsaKey:
    def __init__(self, d, kid):
        self.kid = kid
        self.path = d / f"{kid}.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(self.path), "2048"],
                       check=True, capture_output=True, timeout=60)
        out = subprocess.run(["openssl", "rsa", "-in", str(self.path), "-noout", "-modulus"],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        modulus = bytes.fromhex(out.strip().split("=", 1)[1])
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": _b64(modulus), "e": "AQAB"}

    def token(self, sub="alice", kid=None, lifetime=300):
        now = int(time.time())
        head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}).encode())
        claims = _b64(json.dumps({"sub": sub, "aud": "kafka", "iss": "https://idp.test",
                                  "iat": now, "exp": now + lifetime}).encode())
        signing_input = f"{head}.{claims}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.path)],
                             input=signing_input, check=True, capture_output=True,
                             timeout=60).stdout
        return f"{head}.{claims}.{_b64(sig)}"


class JwksServer:
    """HTTPS on 127.0.0.1 serving ``self.keys`` as a JWKS; counts GETs."""

    def __init__(self, pki):
        self.keys = []
        self.gets = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.gets += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path("broker.pem"), pki.path("broker.key"))
        # Mutual TLS: only clients with a certificate of the test CA.
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.path("ca.pem"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    d = tmp_path_factory.mktemp("idp")
    pki = Pki(d / "pki")
    server = JwksServer(pki)
    k1, k2 = RsaKey(d, "k1"), RsaKey(d, "k2")
    server.keys = [k1.jwk]
    plain, sasl = free_port(), free_port()
    listeners = f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
    # The client keystore: key and certificate in one PEM file.
    keystore = d / "jwks-client.pem"
    keystore.write_text((pki.dir / "client.key").read_text() + (pki.dir / "client.pem").read_text())
    trust = f'ssl.truststore.type="PEM" ssl.truststore.location="{pki.path("ca.pem")}"'
    jaas = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            f'{trust} ssl.keystore.type="PEM" ssl.keystore.location="{keystore}";')
    overrides = {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": jaas,
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class":
            HANDLER,
        "sasl.oauthbearer.jwks.endpoint.url": server.url,
        # Only the missing-key-id refresh happens within the test.
        "sasl.oauthbearer.jwks.endpoint.refresh.ms": "3600000",
        "sasl.oauthbearer.expected.audience": "kafka",
        "sasl.oauthbearer.expected.issuer": "https://idp.test",
        "connection.failed.authentication.delay.ms": "0",
    }
    # Without a client certificate the IdP refuses the TLS handshake, so the
    # JWKS cannot be fetched and the broker does not start.
    no_cert = dict(overrides)
    no_cert["listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config"] = (
        f"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required {trust};")
    refused = Broker(tmp_path_factory.mktemp("jwks-no-cert"), name="kastle (JWKS, no cert)",
                     port=plain, overrides=no_cert)
    b = Broker(tmp_path_factory.mktemp("jwks-broker"), name="kastle (JWKS)", port=plain,
               overrides=overrides)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAFKA_OPTS",
                  f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={server.url}")
        with pytest.raises(BrokerError):
            refused.start(timeout=20)
        assert "JWKS" in refused.log_path.read_text(), refused.log_path.read_text()[-2000:]
        assert server.gets == 0, "no JWKS served without a client certificate"
        b.start()
    try:
        yield b, f"127.0.0.1:{sasl}", server, k1, k2
    finally:
        b.stop(check=False)
        server.httpd.shutdown()


def _authenticates(bootstrap, token, timeout=15.0):
    """True once librdkafka's connection with ``token`` answers Metadata,
    False when it reports an authentication failure."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "OAUTHBEARER",
                  "oauth_cb": lambda _config: (token, time.time() + 300, "alice", {}),
                  "error_cb": errors.append})
    try:
        p.poll(0)  # serves oauth_cb
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
                return False
            try:
                p.list_topics(timeout=0.5)
                return True
            except KafkaException:
                p.poll(0.1)
        raise AssertionError(f"neither authenticated nor refused within {timeout}s: {errors}")
    finally:
        p.flush(0)


@pytest.mark.compat("confluent-kafka", "security")
def test_jwks_over_https_with_key_rotation(idp):
    b, bootstrap, server, k1, k2 = idp
    assert server.gets == 1, "fetched once at start"
    assert _authenticates(bootstrap, k1.token())
    # A key id the set lacks: refused, and the set fetched again.
    assert not _authenticates(bootstrap, k2.token(kid="unknown"))
    deadline = time.monotonic() + 10
    while server.gets < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.gets == 2, "an unknown kid refreshes the JWKS at once"
    assert not _authenticates(bootstrap, k2.token(kid="unknown")), "still unknown"

    # The IdP rotates to k2: the first k2 token finds k2 missing and
    # refreshes; a token moments later is accepted; k1 is withdrawn.
    server.keys = [k2.jwk]
    accepted, deadline = False, time.monotonic() + 15
    while not accepted and time.monotonic() < deadline:
        accepted = _authenticates(bootstrap, k2.token())
        if not accepted:
            time.sleep(0.2)
    assert accepted, b.log_tail()
    assert server.gets >= 3
    assert not _authenticates(bootstrap, k1.token())
    log = b.log_path.read_text()
    assert "JWKS refreshed" in log, log[-3000:]
