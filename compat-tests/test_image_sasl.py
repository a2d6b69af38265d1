"""SASL set up the way each Kafka image documents it, run natively (no Docker
engine here): kastle starts with exactly the environment of the image's SASL
example (the docker-compose files in README's "Security" section) and real
clients (confluent-kafka) authenticate, produce and consume.

* apache/kafka: ``KAFKA_`` + the broker key (``.`` as ``_``, ``_`` as ``__``),
  the users in ``KAFKA_LISTENER_NAME_<L>_PLAIN_SASL_JAAS_CONFIG``;
* bitnami/kafka: ``KAFKA_CFG_*`` keys, users from ``KAFKA_CLIENT_USERS`` /
  ``KAFKA_CLIENT_PASSWORDS`` on ``KAFKA_CLIENT_LISTENER_NAME`` (PLAIN and SCRAM);
* confluentinc/cp-kafka: ``KAFKA_OPTS=-Djava.security.auth.login.config=FILE``
  naming a JAAS file with a ``KafkaServer`` section and a listener-prefixed
  ``<listener>.KafkaServer`` one, which wins on its listener.
"""
import pytest
from confluent_kafka.admin import AdminClient

from compat_lib import ck_consume, ck_produce, make_messages, \
    per_partition_counts, unique_topic, verify
from conftest import free_port
from test_dropin import env_broker  # noqa: F401 - the fixture

CLUSTER_ID = "4L6g3nShT-eMCtK--X86sw"
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


def kraft(prefix, controller):
    """The single-node KRaft settings every image example has."""
    return {f"{prefix}NODE_ID": 1, f"{prefix}PROCESS_ROLES": "broker,controller",
            f"{prefix}CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            f"{prefix}CONTROLLER_QUORUM_VOTERS": f"1@localhost:{controller}",
            f"{prefix}OFFSETS_TOPIC_REPLICATION_FACTOR": 1,
            f"{prefix}TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 1,
            f"{prefix}TRANSACTION_STATE_LOG_MIN_ISR": 1}


def sasl_conf(mechanism, user, password):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}


def roundtrip(bootstrap, conf, n=10):
    topic = unique_topic("image-sasl")
    from confluent_kafka.admin import NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(15)
    msgs = make_messages(n, topic, 1)
    ck_produce(bootstrap, topic, msgs, **conf)
    verify(ck_consume(bootstrap, topic, 1, per_partition_counts(msgs), timeout=30, **conf), msgs)


def refused(bootstrap, conf):
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    with pytest.raises(Exception):
        admin.list_topics(timeout=3)


def test_apache_kafka_image_sasl(env_broker, tmp_path):
    port, controller = free_port(), free_port()
    jaas = (f'{PLAIN_MODULE} required username="admin" password="admin-secret" '
            'user_admin="admin-secret" user_alice="alice-secret";')
    env = {
        **kraft("KAFKA_", controller),
        "KAFKA_LISTENERS": f"SASL_PLAINTEXT://0.0.0.0:{port},CONTROLLER://0.0.0.0:{controller}",
        "KAFKA_ADVERTISED_LISTENERS": f"SASL_PLAINTEXT://localhost:{port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "SASL_PLAINTEXT",
        "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN",
        "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL": "PLAIN",
        "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG": jaas,
        "KAFKA_LOG_DIRS": str(tmp_path / "data"),
        "CLUSTER_ID": CLUSTER_ID,
    }
    b = env_broker(env).start(port)
    bootstrap = f"localhost:{port}"
    roundtrip(bootstrap, sasl_conf("PLAIN", "alice", "alice-secret"))
    refused(bootstrap, sasl_conf("PLAIN", "alice", "wrong"))
    assert "unknown configuration key" not in b.log()


def test_bitnami_kafka_image_sasl(env_broker, tmp_path):
    port, controller = free_port(), free_port()
    env = {
        **kraft("KAFKA_CFG_", controller),
        "KAFKA_CFG_LISTENERS": f"SASL_PLAINTEXT://:{port},CONTROLLER://:{controller}",
        "KAFKA_CFG_ADVERTISED_LISTENERS": f"SASL_PLAINTEXT://localhost:{port}",
        "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP":
            "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "KAFKA_CFG_INTER_BROKER_LISTENER_NAME": "SASL_PLAINTEXT",
        "KAFKA_CFG_SASL_ENABLED_MECHANISMS": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "KAFKA_CFG_SASL_MECHANISM_INTER_BROKER_PROTOCOL": "PLAIN",
        "KAFKA_CLIENT_LISTENER_NAME": "SASL_PLAINTEXT",
        "KAFKA_CLIENT_USERS": "alice,bob",
        "KAFKA_CLIENT_PASSWORDS": "alice-secret,bob-secret",
        "KAFKA_INTER_BROKER_USER": "admin",
        "KAFKA_INTER_BROKER_PASSWORD": "admin-secret",
        "KAFKA_CFG_LOG_DIRS": str(tmp_path / "data"),
        "KAFKA_KRAFT_CLUSTER_ID": CLUSTER_ID,
    }
    b = env_broker(env).start(port)
    bootstrap = f"localhost:{port}"
    roundtrip(bootstrap, sasl_conf("PLAIN", "alice", "alice-secret"))
    roundtrip(bootstrap, sasl_conf("SCRAM-SHA-512", "bob", "bob-secret"))
    roundtrip(bootstrap, sasl_conf("SCRAM-SHA-256", "alice", "alice-secret"))
    refused(bootstrap, sasl_conf("SCRAM-SHA-512", "bob", "wrong"))
    assert "unknown configuration key" not in b.log()


def test_cp_kafka_image_sasl_with_a_jaas_file(env_broker, tmp_path):
    internal, external, controller = free_port(), free_port(), free_port()
    jaas_file = tmp_path / "kafka_server_jaas.conf"
    jaas_file.write_text(f"""
internal.KafkaServer {{
   {PLAIN_MODULE} required
   username="admin"
   password="admin-secret"
   user_admin="admin-secret";
}};

KafkaServer {{
   {PLAIN_MODULE} required
   username="admin"
   password="admin-secret"
   user_admin="admin-secret"
   user_alice="alice-secret";
}};
""")
    env = {
        **kraft("KAFKA_", controller),
        "KAFKA_LISTENERS": f"INTERNAL://0.0.0.0:{internal},EXTERNAL://0.0.0.0:{external},"
                           f"CONTROLLER://0.0.0.0:{controller}",
        "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://localhost:{internal},"
                                      f"EXTERNAL://localhost:{external}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":
            "CONTROLLER:PLAINTEXT,INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN",
        "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL": "PLAIN",
        "KAFKA_OPTS": f"-Djava.security.auth.login.config={jaas_file}",
        "KAFKA_LOG_DIRS": str(tmp_path / "data"),
        "CLUSTER_ID": CLUSTER_ID,
    }
    b = env_broker(env).start(internal)
    # EXTERNAL has no section of its own: KafkaServer's users
    roundtrip(f"localhost:{external}", sasl_conf("PLAIN", "alice", "alice-secret"))
    # INTERNAL's own section replaces KafkaServer there
    roundtrip(f"localhost:{internal}", sasl_conf("PLAIN", "admin", "admin-secret"))
    refused(f"localhost:{internal}", sasl_conf("PLAIN", "alice", "alice-secret"))
    assert "unknown configuration key" not in b.log()
