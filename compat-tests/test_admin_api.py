"""Admin APIs through real admin clients: confluent-kafka's AdminClient and
kafka-python's KafkaAdminClient describe and alter topic and broker configs,
grow topics, delete records, describe log dirs and the cluster."""
import time

import pytest

from compat_lib import (ck_admin, ck_consume, ck_create_topic, ck_produce, kp_admin, kp_consume,
                        make_messages, unique_topic)

TIMEOUT = 15


def ck_describe_topic_configs(admin, topic):
    from confluent_kafka.admin import ConfigResource, ResourceType
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(timeout=TIMEOUT)


def ck_partition_count(admin, topic):
    md = admin.list_topics(topic=topic, timeout=TIMEOUT)
    return len(md.topics[topic].partitions)


@pytest.mark.compat("confluent-kafka", "admin")
def test_confluent_configs_describe_and_incremental_alter(broker):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ConfigSource, ResourceType)
    topic = unique_topic("ck-cfg")
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    admin = ck_admin(broker.bootstrap)

    cfg = ck_describe_topic_configs(admin, topic)
    assert cfg["retention.ms"].value == "604800000"
    assert cfg["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["cleanup.policy"].value == "delete"
    assert not any(k.startswith("internal.") for k in cfg)

    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    admin.incremental_alter_configs([res], request_timeout=TIMEOUT)[res].result(timeout=TIMEOUT)
    cfg = ck_describe_topic_configs(admin, topic)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["cleanup.policy"].value == "delete,compact"

    # DELETE returns the key to its default.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SUBTRACT),
    ])
    admin.incremental_alter_configs([res], request_timeout=TIMEOUT)[res].result(timeout=TIMEOUT)
    cfg = ck_describe_topic_configs(admin, topic)
    assert cfg["retention.ms"].value == "604800000"
    assert cfg["cleanup.policy"].value == "delete"

    # An invalid value is refused with INVALID_CONFIG.
    bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "lots", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        admin.incremental_alter_configs([bad], request_timeout=TIMEOUT)[bad].result(timeout=TIMEOUT)
    assert e.value.args[0].code() == 40, e.value

    # The broker: static keys described read-only, dynamic ones changed at run
    # time (and back), read-only ones refused as Kafka refuses them.
    bres = ConfigResource(ResourceType.BROKER, "1")
    bcfg = admin.describe_configs([bres], request_timeout=TIMEOUT)[bres].result(timeout=TIMEOUT)
    assert bcfg["log.dirs"].value == str(broker.data_dir)
    assert bcfg["log.dirs"].is_read_only
    assert bcfg["log.dirs"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert not bcfg["log.cleaner.backoff.ms"].is_read_only
    for op, value, source in ((AlterConfigOpType.SET, "20000", ConfigSource.DYNAMIC_BROKER_CONFIG),
                              (AlterConfigOpType.DELETE, "15000", ConfigSource.DEFAULT_CONFIG)):
        dyn = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
            ConfigEntry("log.cleaner.backoff.ms", value, incremental_operation=op)])
        admin.incremental_alter_configs([dyn], request_timeout=TIMEOUT)[dyn].result(timeout=TIMEOUT)
        bcfg = admin.describe_configs([bres], request_timeout=TIMEOUT)[bres].result(timeout=TIMEOUT)
        assert bcfg["log.cleaner.backoff.ms"].value == value
        assert bcfg["log.cleaner.backoff.ms"].source == source.value
    bad = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.dirs", "/elsewhere", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        admin.incremental_alter_configs([bad], request_timeout=TIMEOUT)[bad].result(timeout=TIMEOUT)
    assert e.value.args[0].code() == 42, e.value
    assert "Cannot update these configs dynamically" in str(e.value)


@pytest.mark.compat("confluent-kafka", "admin")
def test_confluent_partitions_delete_records_and_cluster(broker):
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import NewPartitions
    topic = unique_topic("ck-dr")
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    admin = ck_admin(broker.bootstrap)

    admin.create_partitions([NewPartitions(topic, 3)],
                            request_timeout=TIMEOUT)[topic].result(timeout=TIMEOUT)
    assert ck_partition_count(admin, topic) == 3

    msgs = make_messages(20, "ck", 1)
    ck_produce(broker.bootstrap, topic, msgs)
    tp = TopicPartition(topic, 0, 12)
    res = admin.delete_records([tp], request_timeout=TIMEOUT)
    deleted = next(iter(res.values())).result(timeout=TIMEOUT)
    assert deleted.low_watermark == 12

    # A consumer starting at earliest begins at the new low watermark.
    recs = ck_consume(broker.bootstrap, topic, 1, until_counts={0: 20}, timeout=30,
                      start_offsets={0: -2})
    assert [r.offset for r in recs] == list(range(12, 20))

    cluster = admin.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert cluster.cluster_id
    assert [n.id for n in cluster.nodes] == [1]
    assert cluster.nodes[0].port == broker.port
    assert cluster.controller.id == 1


@pytest.mark.compat("kafka-python", "admin")
def test_kafka_python_configs_partitions_records_log_dirs(broker):
    from kafka import TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType
    admin = kp_admin(broker.bootstrap)
    try:
        topic = unique_topic("kp-adm")
        admin.create_topics([_kp_new_topic(topic, 1)])

        # Legacy AlterConfigs replaces the topic's set, then describe reads it back.
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                            configs={"retention.ms": "7200000"})],
                            incremental=False)
        cfg = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                     config_filter="all")
        entries = _kp_entries(cfg, topic)
        assert entries["retention.ms"]["value"] == "7200000"
        assert entries["max.message.bytes"]["value"] == "1048588"

        # Broker configs.
        bcfg = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")],
                                      config_filter="all")
        bentries = _kp_entries(bcfg, "1")
        assert bentries["log.dirs"]["value"] == str(broker.data_dir)

        admin.create_partitions({topic: 4})
        assert len(admin.describe_topics([topic])[0]["partitions"]) == 4

        msgs = make_messages(10, "kp", 1)
        from compat_lib import kp_produce
        kp_produce(broker.bootstrap, topic, msgs)
        admin.delete_records({TopicPartition(topic, 0): 6})
        recs = kp_consume(broker.bootstrap, topic, 1, {0: 10}, timeout=30,
                          start_offsets={0: 6})
        assert [r.offset for r in recs] == list(range(6, 10))

        dirs = admin.describe_log_dirs()
        text = repr(dirs)
        assert str(broker.data_dir) in text, text[:2000]
        assert topic in text

        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 1, cluster
        assert [b["broker_id"] for b in cluster["brokers"]] == [1], cluster
    finally:
        admin.close()


def _kp_new_topic(name, partitions):
    from kafka.admin import NewTopic
    return NewTopic(name=name, num_partitions=partitions, replication_factor=1)


def _kp_entries(described, name):
    """kafka-python's describe_configs: {type: {name: {key: {...}}}}."""
    for _type, by_name in described.items():
        if name in by_name:
            return by_name[name]
    raise AssertionError(f"{name} not in {described!r}"[:2000])
