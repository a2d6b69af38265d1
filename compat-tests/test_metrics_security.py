"""The Prometheus endpoint over TLS and behind HTTP basic authentication
(kastle's metrics.prometheus.ssl.* and metrics.prometheus.basic.auth.* keys),
scraped with Python's urllib over a real TLS handshake."""
import base64
import http.client
import ssl
import urllib.error
import urllib.request

from conftest import free_port
from test_tls import KEY_PASSWORD, Pki


def _get(url, context=None, auth=None):
    req = urllib.request.Request(url)
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(req, timeout=10, context=context) as r:
        return r.status, r.read().decode()


def test_metrics_over_tls_with_basic_auth(broker_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    port = free_port()
    broker_factory({
        "metrics.prometheus.listener": f"127.0.0.1:{port}",
        "metrics.prometheus.ssl.keystore.location": pki.path("keystore.pem"),
        "metrics.prometheus.ssl.key.password": KEY_PASSWORD,
        "metrics.prometheus.basic.auth.user": "prometheus",
        "metrics.prometheus.basic.auth.password": "s3cret:pw",
    })
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    url = f"https://localhost:{port}/metrics"
    status, body = _get(url, ctx, auth="prometheus:s3cret:pw")
    assert status == 200 and "kastle_connections_accepted_total" in body
    for auth in (None, "prometheus:wrong", "other:s3cret:pw"):
        try:
            _get(url, ctx, auth=auth)
            raise AssertionError(f"scrape with {auth!r} was not refused")
        except urllib.error.HTTPError as e:
            assert e.code == 401
            assert e.headers["WWW-Authenticate"].startswith('Basic realm="kastle metrics"')
    # Plain HTTP on the TLS port gets no metrics.
    try:
        _get(f"http://127.0.0.1:{port}/metrics", auth="prometheus:s3cret:pw")
        raise AssertionError("plain HTTP served on the TLS endpoint")
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        pass


def test_metrics_basic_auth_without_tls(broker_factory):
    port = free_port()
    broker_factory({
        "metrics.prometheus.listener": f"127.0.0.1:{port}",
        "metrics.prometheus.basic.auth.user": "prometheus",
        "metrics.prometheus.basic.auth.password": "pw",
    })
    url = f"http://127.0.0.1:{port}/metrics"
    assert _get(url, auth="prometheus:pw")[0] == 200
    try:
        _get(url)
        raise AssertionError("unauthenticated scrape served")
    except urllib.error.HTTPError as e:
        assert e.code == 401
