"""Every client of the suite produces and consumes a few records over SASL_SSL
(SCRAM-SHA-512) and over mutual TLS (``ssl.client.auth=required``), against
one broker per module with both listeners (and a PLAINTEXT one where the
administrator creates topics and the SCRAM credential): kcat, confluent-kafka,
kafka-python, aiokafka, kafkajs, franz-go, sarama 1.61 (SCRAM through
franz-go's SCRAM client behind sarama's interface), and the Java client
(Kafka 4.4's console producer and consumer, one JVM for both listeners), and
Kafka Streams (exactly-once WordCount) over each listener.
kcat's librdkafka before 2.6.1 cannot do SCRAM with a Kafka 4 broker
(test_kcat): kcat uses PLAIN over SASL_SSL there.

Flink (its Kafka connector, on a local mini cluster) and Spark
(spark-sql-kafka, local master) each run one bounded job per listener that
reads a topic and writes a copy through the connector. Kafka Connect (one
distributed worker over SASL_SSL) runs a FileStream source and sink pair per
listener, the mTLS pair's task clients overridden to the mTLS listener.
Debian's sarama 1.22 has no SCRAM client of its own. Certificates are made
per module with openssl (test_tls.Pki).
"""
import asyncio
import re
from pathlib import Path

import pytest

from compat_lib import (ck_consume, ck_create_topic, ck_produce, kcat, kp_consume, kp_produce,
                        make_messages, node_run, per_partition_counts, unique_topic, verify)
from conftest import Broker, free_port
from jvm_lib import jvm_procs  # noqa: F401 - the fixture
from test_tls import KEY_PASSWORD, Pki

N = 20
USER, PASSWORD = "sam", "sam-secret"
# PLAIN beside SCRAM on the SASL_SSL listener, for kcat only (test_kcat)
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        f'user_{USER}="{PASSWORD}";')


class Secure:
    """The module's broker and how each client reaches its two secure listeners."""

    def __init__(self, broker, pki, sasl_ssl, mtls):
        self.broker, self.pki = broker, pki
        self.listeners = {"sasl_ssl": sasl_ssl, "mtls": mtls}

    def sec(self, kind):
        """The driver spec's "security" object (gomod/internal/drv, node/driver.js)."""
        if kind == "sasl_ssl":
            return {"protocol": "SASL_SSL", "ca": self.pki.path("ca.pem"),
                    "mechanism": "SCRAM-SHA-512", "username": USER, "password": PASSWORD}
        return {"protocol": "SSL", "ca": self.pki.path("ca.pem"),
                "cert": self.pki.path("client.pem"), "key": self.pki.path("client.key")}

    def rdkafka(self, kind):
        s = self.sec(kind)
        if kind == "sasl_ssl":
            return {"security.protocol": "SASL_SSL", "ssl.ca.location": s["ca"],
                    "sasl.mechanism": s["mechanism"], "sasl.username": USER,
                    "sasl.password": PASSWORD}
        return {"security.protocol": "SSL", "ssl.ca.location": s["ca"],
                "ssl.certificate.location": s["cert"], "ssl.key.location": s["key"]}

    def java(self, kind, workdir: Path):
        """The Java client's properties (JSSE with Kafka's PEM stores, Kafka's
        SCRAM client), as "key=value" lines."""
        pki = self.pki
        trust = ["ssl.truststore.type=PEM", f"ssl.truststore.location={pki.path('ca.pem')}"]
        if kind == "sasl_ssl":
            return ["security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
                    f'required username="{USER}" password="{PASSWORD}";', *trust]
        keystore = workdir / "client-keystore.pem"
        keystore.write_text(Path(pki.path("client.key")).read_text()
                            + Path(pki.path("client.pem")).read_text())
        return ["security.protocol=SSL", *trust, "ssl.keystore.type=PEM",
                f"ssl.keystore.location={keystore}"]

    def kafka_python(self, kind):
        s = self.sec(kind)
        if kind == "sasl_ssl":
            return dict(security_protocol="SASL_SSL", ssl_cafile=s["ca"],
                        sasl_mechanism=s["mechanism"], sasl_plain_username=USER,
                        sasl_plain_password=PASSWORD)
        return dict(security_protocol="SSL", ssl_cafile=s["ca"], ssl_certfile=s["cert"],
                    ssl_keyfile=s["key"])


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    from test_sasl import add_scram
    from confluent_kafka.admin import ScramMechanism
    pki = Pki(tmp_path_factory.mktemp("secure-pki"))
    plain, sasl_ssl, mtls = free_port(), free_port(), free_port()
    listeners = (f"PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl_ssl},"
                 f"MTLS://127.0.0.1:{mtls}")
    b = Broker(tmp_path_factory.mktemp("secure-broker"), name="kastle (secure clients)",
               port=plain, overrides={
                   "listeners": listeners,
                   "advertised.listeners": listeners.replace("127.0.0.1", "localhost")
                   .replace("PLAINTEXT://localhost", "PLAINTEXT://127.0.0.1"),
                   "listener.security.protocol.map":
                       "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
                   "ssl.keystore.type": "PEM",
                   "ssl.keystore.location": pki.path("keystore.pem"),
                   "ssl.key.password": KEY_PASSWORD,
                   "ssl.truststore.type": "PEM",
                   "ssl.truststore.location": pki.path("ca.pem"),
                   "listener.name.mtls.ssl.client.auth": "required",
                   "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
                   "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
               })
    b.start()
    try:
        add_scram(b.bootstrap, USER, PASSWORD, ScramMechanism.SCRAM_SHA_512)
        yield Secure(b, pki, f"localhost:{sasl_ssl}", f"localhost:{mtls}")
    finally:
        b.stop(check=False)


KINDS = ["sasl_ssl", "mtls"]


def _topic(secure, client, kind):
    topic = unique_topic(f"sec-{client}-{kind}")
    ck_create_topic(secure.broker.bootstrap, topic, 1)
    return topic, make_messages(N, f"{client}-{kind}", 1)


@pytest.mark.compat("kcat", "security")
@pytest.mark.parametrize("kind", KINDS)
def test_kcat(secure, kind):
    """kcat's librdkafka (2.0.2 here) repeats the client nonce in its SCRAM
    client-final message (librdkafka#4895, fixed in 2.6.1), which Kafka 4.x
    refuses (the strict RFC 5802 nonce check): kastle refuses it too, and kcat
    goes over SASL_SSL with PLAIN."""
    topic, _ = _topic(secure, "kcat", kind)
    conf = secure.rdkafka(kind)
    bs = ["-b", secure.listeners[kind]]
    if kind == "sasl_ssl":
        x = [a for k, v in conf.items() for a in ("-X", f"{k}={v}")]
        version = kcat("-V").stdout.decode()
        m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", version)
        if m and tuple(map(int, m.groups())) < (2, 6, 1):
            out = kcat("-L", *bs, *x, "-m", "5", check=False)
            assert out.returncode != 0 and b"invalid credentials with SASL mechanism SCRAM-SHA-512" \
                in out.stderr, out.stderr.decode()[-2000:]
            conf = dict(conf, **{"sasl.mechanism": "PLAIN"})
    x = [a for k, v in conf.items() for a in ("-X", f"{k}={v}")]
    values = [f"kcat-{i}" for i in range(N)]
    kcat("-P", *bs, *x, "-t", topic, input_bytes="\n".join(values).encode() + b"\n")
    out = kcat("-C", *bs, *x, "-t", topic, "-o", "beginning", "-c", str(N), "-e", "-q")
    assert out.stdout.decode().split() == values


@pytest.mark.compat("confluent-kafka", "security")
@pytest.mark.parametrize("kind", KINDS)
def test_confluent_kafka(secure, kind):
    topic, msgs = _topic(secure, "ck", kind)
    bs, conf = secure.listeners[kind], secure.rdkafka(kind)
    ck_produce(bs, topic, msgs, **conf)
    verify(ck_consume(bs, topic, 1, per_partition_counts(msgs), timeout=60, **conf), msgs)


@pytest.mark.compat("kafka-python", "security")
@pytest.mark.parametrize("kind", KINDS)
def test_kafka_python(secure, kind):
    topic, msgs = _topic(secure, "kp", kind)
    bs, conf = secure.listeners[kind], secure.kafka_python(kind)
    kp_produce(bs, topic, msgs, **conf)
    verify(kp_consume(bs, topic, 1, per_partition_counts(msgs), timeout=60, **conf), msgs)


@pytest.mark.compat("aiokafka", "security")
@pytest.mark.parametrize("kind", KINDS)
def test_aiokafka(secure, kind):
    from aiokafka.helpers import create_ssl_context
    from test_aiokafka import ak_consume, ak_produce
    topic, msgs = _topic(secure, "ak", kind)
    s = secure.sec(kind)
    ctx = create_ssl_context(cafile=s["ca"], certfile=s.get("cert"), keyfile=s.get("key"))
    conf = {"ssl_context": ctx}
    if kind == "sasl_ssl":
        conf.update(security_protocol="SASL_SSL", sasl_mechanism=s["mechanism"],
                    sasl_plain_username=USER, sasl_plain_password=PASSWORD)
    else:
        conf.update(security_protocol="SSL")
    bs = secure.listeners[kind]
    asyncio.run(asyncio.wait_for(ak_produce(bs, topic, msgs, **conf), 120))
    got = asyncio.run(asyncio.wait_for(ak_consume(bs, topic, 1, per_partition_counts(msgs), **conf), 120))
    verify(got, msgs)


@pytest.mark.compat("kafkajs", "security")
@pytest.mark.parametrize("kind", KINDS)
def test_kafkajs(secure, kind):
    from compat_lib import Rec, _unb64, msgs_to_spec
    topic, msgs = _topic(secure, "kjs", kind)
    spec = {"bootstrap": secure.listeners[kind], "topic": topic, "security": secure.sec(kind)}
    node_run("produce", dict(spec, messages=msgs_to_spec(msgs), createPartitions=None, gzip=False))
    recs, _ = node_run("consume", dict(spec, partitions=1, until={"0": N}, timeoutMs=60_000))
    verify([Rec(r["p"], int(r["o"]), _unb64(r["k"]), _unb64(r["v"]),
                [(k, _unb64(v)) for k, v in r["h"]], int(r["t"]), None) for r in recs], msgs)


@pytest.fixture(scope="module")
def go_drivers(tmp_path_factory):
    from gomod_lib import build_driver
    return {"franz-go": build_driver(tmp_path_factory, "franz"),
            "sarama-1.61": build_driver(tmp_path_factory, "sarama")}


@pytest.mark.compat("{client}", "security")
@pytest.mark.parametrize("client", ["franz-go", "sarama-1.61"])
@pytest.mark.parametrize("kind", KINDS)
def test_go_clients(secure, go_drivers, client, kind):
    from gomod_lib import go_run, records
    from compat_lib import msgs_to_spec
    topic, msgs = _topic(secure, client.split("-")[0], kind)
    spec = {"bootstrap": secure.listeners[kind], "topic": topic, "security": secure.sec(kind)}
    go_run(go_drivers[client], "produce", dict(spec, messages=msgs_to_spec(msgs)))
    lines, _ = go_run(go_drivers[client], "consume",
                      dict(spec, partitions=1, until={"0": N}, timeoutMs=60_000))
    verify(records(lines), msgs)


@pytest.mark.compat("java-4.4", "security")
@pytest.mark.compat("kafka-tools", "security")
def test_java_client(secure, tmp_path):
    """Kafka 4.4's console producer and consumer (one JVM) over both listeners:
    JSSE with Kafka's PEM trust and key stores, and Kafka's SCRAM client."""
    import jvm_lib
    from test_kafka_tools import T, run_tools
    jvm_lib.jvm_module("kafka4")  # skips when the JVM drivers are not built
    props = {kind: secure.java(kind, tmp_path) for kind in KINDS}
    script, topics = [], {}
    for kind in KINDS:
        topic, _ = _topic(secure, "java", kind)
        topics[kind] = topic
        cfg = tmp_path / f"{kind}.properties"
        cfg.write_text("\n".join(props[kind]) + "\n")
        bs = ["--bootstrap-server", secure.listeners[kind]]
        script += [
            {"name": f"produce-{kind}", "main": T + "ConsoleProducer", "fork": False,
             "args": [*bs, "--topic", topic, "--producer.config", str(cfg)],
             "stdin": "".join(f"java-{kind}-{i}\n" for i in range(N))},
            {"name": f"consume-{kind}", "main": T + "consumer.ConsoleConsumer", "fork": False,
             "args": [*bs, "--topic", topic, "--from-beginning", "--max-messages", str(N),
                      "--timeout-ms", "30000", "--consumer.config", str(cfg)],
             "stdin": None},
        ]
    out = run_tools(script, tmp_path)
    for name, r in out.items():
        assert r["rc"] == 0, f"{name}: {r['out'][-3000:]}\n{r['err'][-3000:]}"
    for kind in KINDS:
        got = [ln for ln in out[f"consume-{kind}"]["out"].split() if ln.startswith("java-")]
        assert got == [f"java-{kind}-{i}" for i in range(N)]


@pytest.mark.compat("kafka-streams", "security")
@pytest.mark.parametrize("kind", KINDS)
def test_kafka_streams(secure, kind, jvm_procs, tmp_path):  # noqa: F811 - fixture
    """Kafka Streams (jvm/kafka-streams' WordCount: exactly_once_v2, a
    repartition topic and a changelog, so transactions and consumer groups too)
    over SASL_SSL with SCRAM-SHA-512 and over mTLS; its output read back over
    PLAINTEXT."""
    import struct
    from frameworks_lib import TopicTail, create_topics, produce
    from test_kafka_streams import MAIN, MODULE, JVM_OPTS
    bs = secure.broker.bootstrap
    src, out = unique_topic(f"sec-streams-{kind}-in"), unique_topic(f"sec-streams-{kind}-out")
    create_topics(bs, {src: 1, out: 1})
    lines = 30
    produce(bs, src, [(None, None, b"alpha beta", None)] * lines)
    cfg = tmp_path / "client.properties"
    cfg.write_text("\n".join(secure.java(kind, tmp_path)) + "\n")
    app = jvm_procs(MODULE, MAIN, [secure.listeners[kind], unique_topic(f"sec-app-{kind}"),
                                   tmp_path / "state", src, out, cfg],
                    jvm_opts=JVM_OPTS, label=f"streams-{kind}")
    app.wait_for(lambda e: e.get("state") == "RUNNING", 120, "RUNNING state")
    tail = TopicTail(bs, out, 1)
    try:
        def counted(t):
            return {(r[2], struct.unpack(">q", r[3])[0]) for r in t.records} >= \
                {(b"alpha", lines), (b"beta", lines)}
        tail.read_until(counted, 90, f"counts of {lines}")
    finally:
        tail.close()


@pytest.mark.timeout(240)
@pytest.mark.compat("kafka-connect", "security")
def test_kafka_connect(secure, jvm_procs, tmp_path):  # noqa: F811 - fixture
    """Kafka Connect 4.x (distributed worker, FileStream connectors): the
    worker itself (its group, its config/offset/status topics) and the tasks'
    default clients over SASL_SSL with SCRAM-SHA-512, and a second source and
    sink pair whose task clients go over mTLS (``producer.override.*`` /
    ``consumer.override.*``, Connect's default override policy allowing it).
    Each sink file must hold its source lines in order."""
    from frameworks_lib import create_topics
    from test_kafka_connect import start_worker, wait_lines, wait_running, worker_props
    import jvm_lib
    jvm_lib.jvm_module("kafka-connect")
    sasl = dict(line.split("=", 1) for line in secure.java("sasl_ssl", tmp_path))
    mtls = dict(line.split("=", 1) for line in secure.java("mtls", tmp_path))
    group = unique_topic("sec-connect")
    port = free_port()
    extra = dict(sasl)
    for prefix in ("producer.", "consumer.", "admin."):
        extra.update({prefix + k: v for k, v in sasl.items()})
    props = worker_props(tmp_path / "worker.properties", secure.listeners["sasl_ssl"], group,
                         port, extra)
    topics = {kind: unique_topic(f"sec-connect-{kind}") for kind in KINDS}
    create_topics(secure.broker.bootstrap, {t: 1 for t in topics.values()})
    files = {}
    for kind in KINDS:
        files[kind] = (tmp_path / f"{kind}-source.txt", tmp_path / f"{kind}-sink.txt")
        files[kind][0].write_text("")
    w, rest = start_worker(jvm_procs, props, port, "connect-secure")
    for kind in KINDS:
        src, sink = files[kind]
        source_cfg = {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                      "tasks.max": "1", "file": str(src), "topic": topics[kind]}
        sink_cfg = {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                    "tasks.max": "1", "file": str(sink), "topics": topics[kind]}
        if kind == "mtls":
            for client, cfg in (("producer", source_cfg), ("consumer", sink_cfg)):
                cfg[f"{client}.override.bootstrap.servers"] = secure.listeners["mtls"]
                # (the worker's sasl.* settings stay, unused over SSL)
                cfg.update({f"{client}.override.{k}": v for k, v in mtls.items()})
        rest.until("POST", "/connectors", {"name": f"source-{kind}", "config": source_cfg},
                   worker=w)
        rest.until("POST", "/connectors", {"name": f"sink-{kind}", "config": sink_cfg}, worker=w)
    lines = {kind: [f"connect-{kind}-{i}" for i in range(N)] for kind in KINDS}
    for kind in KINDS:
        wait_running(rest, f"source-{kind}", w)
        wait_running(rest, f"sink-{kind}", w)
        files[kind][0].write_text("".join(line + "\n" for line in lines[kind]))
    for kind in KINDS:
        assert wait_lines(files[kind][1], N, w) == lines[kind], kind
    w.stop()


def _framework_topics(secure, name):
    """Per listener: (input topic filled with N values over PLAINTEXT, output topic)."""
    from frameworks_lib import create_topics, produce
    bs = secure.broker.bootstrap
    topics = {}
    for kind in KINDS:
        src, out = unique_topic(f"sec-{name}-{kind}-in"), unique_topic(f"sec-{name}-{kind}-out")
        create_topics(bs, {src: 1, out: 1})
        produce(bs, src, [(0, None, f"{name}-{kind}-{i}".encode(), None) for i in range(N)])
        topics[kind] = (src, out)
    return topics


def _assert_copies(secure, topics, name):
    """Each output holds every input value tagged by the framework, in order
    (one partition, and the job's only writer)."""
    from frameworks_lib import TopicTail
    for kind, (_src, out) in topics.items():
        tail = TopicTail(secure.broker.bootstrap, out, 1)
        try:
            tail.read_until(lambda t: len(t.records) >= N, 60, f"{N} records")
            tail.read_to_end()
        finally:
            tail.close()
        assert [r[3].decode() for r in tail.records] == \
            [f"{name}-{kind}-{i}|{name}" for i in range(N)], kind


@pytest.mark.compat("flink", "security")
def test_flink(secure, tmp_path):
    """Flink 2.x's Kafka connector (KafkaSource, KafkaSink) consumes and
    produces over SASL_SSL with SCRAM and over mTLS, one bounded pipeline per
    listener in one job."""
    import jvm_lib
    from test_flink import JVM_OPTS, MODULE
    jvm_lib.jvm_module(MODULE)
    topics = _framework_topics(secure, "flink")
    args = []
    for kind, (src, out) in topics.items():
        cfg = tmp_path / f"{kind}.properties"
        cfg.write_text("\n".join(secure.java(kind, tmp_path)) + "\n")
        args += [secure.listeners[kind], cfg, src, out]
    jvm_lib.jvm_run(MODULE, "kastle.compat.flink.CopyJob", args, timeout=180, jvm_opts=JVM_OPTS)
    _assert_copies(secure, topics, "flink")


@pytest.mark.compat("spark", "security")
def test_spark(secure, tmp_path):
    """Spark 4.x's Kafka source and sink (batch) read and write over SASL_SSL
    with SCRAM and over mTLS, one job per listener in one JVM."""
    import json
    import jvm_lib
    from test_spark import JVM_OPTS, MAIN, MODULE
    jvm_lib.jvm_module(MODULE)
    topics = _framework_topics(secure, "spark")
    copies = []
    for kind, (src, out) in topics.items():
        options = dict(line.split("=", 1) for line in secure.java(kind, tmp_path))
        copies.append({"bootstrap": secure.listeners[kind], "options": options,
                       "input": src, "output": out})
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"copies": copies}))
    jvm_lib.jvm_run(MODULE, MAIN, [secure.broker.bootstrap, spec], timeout=180, jvm_opts=JVM_OPTS)
    _assert_copies(secure, topics, "spark")
