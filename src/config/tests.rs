//! The configuration as real compose files and server.properties set it.

use super::env::resolve_env_key;
use super::keys::DEFAULT_LISTENERS;
use super::listeners::default_hostname;
use super::*;
use crate::security::SecurityProtocol;

fn load(entries: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_entries(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .map(|r| r.0)
}

#[test]
fn properties_parsing_handles_comments_separators_and_continuations() {
    let text = "# comment\n! also\nlisteners = PLAINTEXT://:9092\nlog.dirs:/tmp/a\nnum.partitions 3\nadvertised.listeners=PLAINTEXT://a:1,\\\n   OTHER://b:2\nkey\\=x=y\n";
    let p = parse_properties(text).unwrap();
    assert_eq!(
        p,
        vec![
            ("listeners".into(), "PLAINTEXT://:9092".into()),
            ("log.dirs".into(), "/tmp/a".into()),
            ("num.partitions".into(), "3".into()),
            (
                "advertised.listeners".into(),
                "PLAINTEXT://a:1,OTHER://b:2".into()
            ),
            ("key=x".into(), "y".into()),
        ]
    );
}

#[test]
fn env_names_follow_the_apache_kafka_image_convention() {
    assert_eq!(
        env_to_key("KAFKA_ADVERTISED_LISTENERS").as_deref(),
        Some("advertised.listeners")
    );
    assert_eq!(env_to_key("KAFKA_LOG_DIRS").as_deref(), Some("log.dirs"));
    assert_eq!(env_to_key("KAFKA_A__B___C_D").as_deref(), Some("a_b-c.d"));
    assert_eq!(env_to_key("KAFKA_HEAP_OPTS"), None);
    assert_eq!(env_to_key("PATH"), None);
}

#[test]
fn defaults_and_invalid_values() {
    let c = load(&[]).unwrap();
    assert_eq!(c.node_id, 1);
    assert_eq!(c.listeners[0].port, 9092);
    assert_eq!(c.advertised_for("PLAINTEXT").unwrap().host, "localhost");
    assert_eq!(c.log_dir, PathBuf::from("./data"));
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.log_roll_ms, 168 * 3_600_000);
    let e = load(&[("num.partitions", "zero")]).unwrap_err();
    assert!(
        e.0.contains("num.partitions") && e.0.contains("zero"),
        "{e}"
    );
    let e = load(&[("auto.create.topics.enable", "yes")]).unwrap_err();
    assert!(e.0.contains("auto.create.topics.enable"), "{e}");
    let e = load(&[("listeners", "nonsense")]).unwrap_err();
    assert!(e.0.contains("nonsense"), "{e}");
    // The request memory pool must hold the largest request (or be unset).
    let e = load(&[("queued.max.request.bytes", "1048576")]).unwrap_err();
    assert!(e.0.contains("queued.max.request.bytes"), "{e}");
    load(&[
        ("queued.max.request.bytes", "1048576"),
        ("socket.request.max.bytes", "1048576"),
    ])
    .unwrap();
    load(&[("queued.max.request.bytes", "0")]).unwrap();
    // KIP-1331's description plugin: kastle has none to load.
    let class = "org.apache.kafka.server.streams.InMemoryTopologyDescriptionPlugin";
    let e = load(&[("group.streams.topology.description.plugin.class", class)]).unwrap_err();
    assert!(
        e.0.contains("group.streams.topology.description.plugin.class") && e.0.contains(class),
        "{e}"
    );
    load(&[("group.streams.topology.description.plugin.class", " ")]).unwrap();
}

#[test]
fn unknown_keys_warn_and_later_sources_win() {
    let (c, warnings) = BrokerConfig::from_entries(vec![
        ("num.partitions".into(), "2".into()),
        ("made.up".into(), "1".into()),
        ("num.partitions".into(), "5".into()),
    ])
    .unwrap();
    assert_eq!(c.num_partitions, 5);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("made.up"));
}

#[test]
fn advertised_listeners_fall_back_to_listeners() {
    let c = load(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9000,CONTROLLER://127.0.0.1:9093",
        ),
        ("controller.listener.names", "CONTROLLER"),
    ])
    .unwrap();
    assert_eq!(c.advertised.len(), 1);
    assert_eq!(c.advertised_for("PLAINTEXT").unwrap().host, "127.0.0.1");
    let c = load(&[
        ("listeners", "PLAINTEXT://:9000"),
        ("advertised.listeners", "PLAINTEXT://kastle:19000"),
    ])
    .unwrap();
    assert_eq!(c.advertised_for("PLAINTEXT").unwrap().port, 19000);
    // An SSL listener is served (its keystore is read when it is bound).
    let c = load(&[("listeners", "SSL://:9000")]).unwrap();
    assert!(c.security_protocol_of("SSL").uses_tls());
    assert!(load(&[
        ("listeners", "SSL://:9000"),
        ("listener.name.ssl.ssl.client.auth", "sometimes")
    ])
    .is_err());
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_env(vars: &[(&str, &str)]) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
    BrokerConfig::load(None, env(vars), &[])
}

fn adv(c: &BrokerConfig, name: &str) -> String {
    let a = c.advertised_for(name).expect(name);
    format!("{}:{}", a.host, a.port)
}

/// The single-node example of the apache/kafka image's documentation
/// (docker/examples), variable for variable.
#[test]
fn apache_kafka_compose_example() {
    let (c, warnings) = load_env(&[
        ("KAFKA_NODE_ID", "1"),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
        ),
        ("KAFKA_PROCESS_ROLES", "broker,controller"),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
        (
            "KAFKA_LISTENERS",
            "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
        ),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
        (
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
            "1",
        ),
        ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1"),
        ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true"),
        ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
        ("KAFKA_HEAP_OPTS", "-Xmx512M"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.node_id, 1);
    assert_eq!(c.cluster_id.as_deref(), Some("4L6g3nShT-eMCtK--X86sw"));
    assert_eq!(c.log_dir, PathBuf::from("/tmp/kraft-combined-logs"));
    assert_eq!(c.value("group.initial.rebalance.delay.ms"), Some("0"));
    assert!(c.auto_create_topics);
    // Two client listeners, each with its own advertised address; the
    // controller listener is not served.
    assert_eq!(c.advertised.len(), 2);
    assert_eq!(adv(&c, "PLAINTEXT_HOST"), "localhost:9092");
    assert_eq!(adv(&c, "PLAINTEXT"), "broker:19092");
    assert!(c.advertised_for("CONTROLLER").is_none());
    let notes = c.notes.join("\n");
    for k in [
        "process.roles",
        "controller.quorum.voters",
        "controller.listener.names",
        "inter.broker.listener.name",
        "transaction.state.log.min.isr",
    ] {
        assert!(notes.contains(k), "{k} missing from {notes}");
    }
    assert!(
        !notes.contains("offsets.topic.replication.factor"),
        "{notes}"
    );
    assert!(notes.contains("KAFKA_HEAP_OPTS"), "{notes}");
    assert_eq!(
        c.notes.iter().filter(|n| n.contains("not needed")).count(),
        1,
        "one line lists every key that is not needed: {notes}"
    );
}

/// bitnami/kafka's own docker-compose.yml plus the older image switches
/// (KAFKA_KRAFT_CLUSTER_ID, ALLOW_PLAINTEXT_LISTENER, ...).
#[test]
fn bitnami_compose_example() {
    let (c, warnings) = load_env(&[
        ("KAFKA_CFG_NODE_ID", "0"),
        ("KAFKA_CFG_PROCESS_ROLES", "controller,broker"),
        (
            "KAFKA_CFG_LISTENERS",
            "PLAINTEXT://:9092,CONTROLLER://:9093",
        ),
        ("KAFKA_CFG_ADVERTISED_LISTENERS", "PLAINTEXT://:9092"),
        (
            "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ),
        ("KAFKA_CFG_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ("KAFKA_CFG_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
        ("KAFKA_CFG_CONTROLLER_QUORUM_VOTERS", "0@kafka:9093"),
        ("KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE", "false"),
        ("KAFKA_CFG_NUM_PARTITIONS", "3"),
        ("KAFKA_KRAFT_CLUSTER_ID", "abcdefghijklmnopqrstuv"),
        ("KAFKA_ENABLE_KRAFT", "yes"),
        ("ALLOW_PLAINTEXT_LISTENER", "yes"),
        ("KAFKA_HEAP_OPTS", "-Xmx1024m -Xms1024m"),
        ("BITNAMI_DEBUG", "true"),
    ])
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.node_id, 0);
    assert_eq!(c.num_partitions, 3);
    assert!(!c.auto_create_topics);
    assert_eq!(c.cluster_id.as_deref(), Some("abcdefghijklmnopqrstuv"));
    assert_eq!(c.listeners.len(), 2);
    // An empty advertised host means this machine's name, as in Kafka.
    let a = c.advertised_for("PLAINTEXT").unwrap();
    assert_eq!(
        (a.host.as_str(), a.port),
        (default_hostname().as_str(), 9092)
    );
    let notes = c.notes.join("\n");
    for v in [
        "KAFKA_ENABLE_KRAFT",
        "ALLOW_PLAINTEXT_LISTENER",
        "KAFKA_HEAP_OPTS",
        "BITNAMI_DEBUG",
    ] {
        assert!(notes.contains(v), "{v} missing from {notes}");
    }
    // bitnami's own rule: every `_` is a `.`, except in the SASL
    // protocol names; empty values are skipped; legacy aliases.
    let e = read_env(env(&[
        ("KAFKA_CFG_LOG_RETENTION_HOURS", "24"),
        (
            "KAFKA_CFG_LISTENER_NAME_SASL_SSL_SSL_CLIENT_AUTH",
            "required",
        ),
        ("KAFKA_CFG_LOG_SEGMENT_BYTES", ""),
        ("KAFKA_LOGS_DIRS", "/bitnami/kafka/data"),
    ]));
    assert_eq!(
        e.entries,
        env(&[
            ("log.dirs", "/bitnami/kafka/data"),
            ("listener.name.sasl_ssl.ssl.client.auth", "required"),
            ("log.retention.hours", "24"),
        ])
    );
    // The image-specific prefix wins over a plain KAFKA_ variable.
    let (c, _) = load_env(&[
        ("KAFKA_CFG_NUM_PARTITIONS", "4"),
        ("KAFKA_NUM_PARTITIONS", "2"),
    ])
    .unwrap();
    assert_eq!(c.num_partitions, 4);
}

/// A confluentinc/cp-kafka compose file of the ZooKeeper era
/// (cp-all-in-one style): no KAFKA_LISTENERS, ZooKeeper, JMX, Confluent
/// metrics variables, replication factors written for a cluster.
#[test]
fn cp_kafka_compose_example() {
    let (c, warnings) = load_env(&[
        ("KAFKA_BROKER_ID", "1"),
        ("KAFKA_ZOOKEEPER_CONNECT", "zookeeper:2181"),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            "PLAINTEXT://broker:29092,PLAINTEXT_HOST://localhost:9092",
        ),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
        ("KAFKA_DEFAULT_REPLICATION_FACTOR", "3"),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
        ("KAFKA_JMX_PORT", "9101"),
        ("KAFKA_JMX_HOSTNAME", "localhost"),
        ("KAFKA_CONFLUENT_LICENSE_TOPIC_REPLICATION_FACTOR", "1"),
        ("KAFKA_CONFLUENT_BALANCER_TOPIC_REPLICATION_FACTOR", "1"),
        (
            "CONFLUENT_METRICS_REPORTER_BOOTSTRAP_SERVERS",
            "broker:29092",
        ),
        ("CONFLUENT_METRICS_ENABLE", "true"),
        ("CONFLUENT_SUPPORT_CUSTOMER_ID", "anonymous"),
        ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
    ])
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.node_id, 1);
    // listeners derived from the advertised listeners on every interface.
    let bound: Vec<String> = c
        .listeners
        .iter()
        .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
        .collect();
    assert_eq!(
        bound,
        ["PLAINTEXT://0.0.0.0:29092", "PLAINTEXT_HOST://0.0.0.0:9092"]
    );
    assert_eq!(
        c.value("listeners"),
        Some("PLAINTEXT://0.0.0.0:29092,PLAINTEXT_HOST://0.0.0.0:9092")
    );
    assert_eq!(adv(&c, "PLAINTEXT"), "broker:29092");
    assert_eq!(adv(&c, "PLAINTEXT_HOST"), "localhost:9092");
    // A cluster's replication factor is served with one replica.
    assert_eq!(c.default_replication_factor, 1);
    let notes = c.notes.join("\n");
    for k in [
        "zookeeper.connect=zookeeper:2181",
        "offsets.topic.replication.factor=3",
        "default.replication.factor=3",
        "transaction.state.log.min.isr=2",
        "confluent.balancer.topic.replication.factor",
        "KAFKA_JMX_PORT",
        "KAFKA_JMX_HOSTNAME",
        "CONFLUENT_METRICS_ENABLE",
        "listeners not set",
    ] {
        assert!(notes.contains(k), "{k} missing from {notes}");
    }
}

#[test]
fn old_confluent_escaping_is_used_only_when_it_names_a_known_key() {
    let known = |k: &str| k == "listener.name.plaintext_host.max.connections" || k == "a_b";
    // Older cp-kafka documentation: `_` written `___`, `-` written `__`.
    assert_eq!(
        resolve_env_key("LISTENER_NAME_PLAINTEXT___HOST_MAX_CONNECTIONS", known),
        "listener.name.plaintext_host.max.connections"
    );
    // The apache reading wins whenever it names a known key.
    assert_eq!(resolve_env_key("A__B", known), "a_b");
    // Neither known: the apache reading (its unknown-key warning names it).
    assert_eq!(resolve_env_key("X___Y", known), "x-y");
    // Without doubled underscores both readings agree.
    assert_eq!(
        resolve_env_key("LOG_RETENTION_HOURS", |_| false),
        "log.retention.hours"
    );
    // Through the real key table: a plain variable is unaffected.
    let e = read_env(env(&[("KAFKA_LOG_SEGMENT_BYTES", "1048576")]));
    assert_eq!(e.entries, env(&[("log.segment.bytes", "1048576")]));
}

#[test]
fn nothing_a_compose_file_sets_refuses_start_unless_invalid() {
    // A broker-only node, a security map with TLS/SASL entries for
    // names no listener uses, a controller listener mapped to SSL.
    let (c, _) = load_env(&[
        // (Kafka refuses a controller listener in a broker's `listeners`.)
        ("KAFKA_NODE_ID", "4"),
        ("KAFKA_PROCESS_ROLES", "broker"),
        ("KAFKA_LISTENERS", "PLAINTEXT://127.0.0.1:9092"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL,EXTERNAL:SASL_SSL,SSL:SSL",
        ),
        (
            "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS",
            "controller:9093",
        ),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
        ("KAFKA_METADATA_LOG_DIR", "/var/lib/kafka/meta"),
    ])
    .unwrap();
    assert_eq!(c.advertised.len(), 1);
    // Secrets in ignored settings stay out of the log lines.
    let (c, warnings) = load_env(&[
        ("KAFKA_CONFLUENT_LICENSE", "eyJsaWNlbnNl"),
        (
            "KAFKA_SASL_JAAS_CONFIG",
            "PlainLoginModule password=\"s3cret\";",
        ),
    ])
    .unwrap();
    let logged = format!("{warnings:?} {:?}", c.notes);
    assert!(logged.contains("confluent.license=[hidden]"), "{logged}");
    assert!(logged.contains("sasl.jaas.config"), "{logged}");
    assert!(
        !logged.contains("s3cret") && !logged.contains("eyJsaWNlbnNl"),
        "{logged}"
    );
    // Empty listener variables count as unset.
    let (c, _) = load_env(&[
        ("KAFKA_LISTENERS", ""),
        ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:19092"),
    ])
    .unwrap();
    assert_eq!(c.value("listeners"), Some("PLAINTEXT://0.0.0.0:19092"));
    let (c, _) = load_env(&[("KAFKA_LISTENERS", " "), ("KAFKA_ADVERTISED_LISTENERS", "")]).unwrap();
    assert_eq!(c.value("listeners"), Some(DEFAULT_LISTENERS));
    // A client listener on SASL_SSL is kept with its protocol (its keystore
    // is checked when the listener is built: tests/it/tls.rs).
    let (c, _) = load_env(&[
        ("KAFKA_LISTENERS", "PLAINTEXT://:9092,EXTERNAL://:9094"),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_SSL",
        ),
    ])
    .unwrap();
    assert_eq!(
        c.security_protocol_of("EXTERNAL"),
        SecurityProtocol::SaslSsl
    );
    // An unknown protocol is refused, naming it.
    let e = load_env(&[
        ("KAFKA_LISTENERS", "PLAINTEXT://:9092,EXTERNAL://:9094"),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:TLS",
        ),
    ])
    .unwrap_err();
    assert!(e.0.contains("TLS"), "{e}");
    // Invalid values still refuse, naming the variable or key.
    let e = load_env(&[("CLUSTER_ID", "my-kafka-cluster")]).unwrap_err();
    assert!(
        e.0.contains("CLUSTER_ID") && e.0.contains("my-kafka-cluster"),
        "{e}"
    );
    let e = load_env(&[("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "three")]).unwrap_err();
    assert!(e.0.contains("offsets.topic.replication.factor"), "{e}");
    let e = load_env(&[("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://0.0.0.0:9092")]).unwrap_err();
    assert!(e.0.contains("0.0.0.0"), "{e}");
}

#[test]
fn cluster_ids_follow_kafkas_base64_uuid_rule() {
    for ok in [
        "MkU3OEVBNTcwNTJENDM2Qk",
        "5L6g3nShT-eMCtK--X86sw",
        "abcdefghijklmnopqrstuv",
        "kafka-docker-cluster-1",
        "MkU3OEVBNTcwNTJENDM2Qk==",
    ] {
        assert!(validate_cluster_id(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "short",
        "370e4e9e-9f85-4ab4-b509-342b7682c91a",
        "MkU3OEVBNTcwNTJENDM2Q!",
        "MkU3OEVBNTcwNTJENDM2QkA",
    ] {
        assert!(validate_cluster_id(bad).is_err(), "{bad}");
    }
    // CLUSTER_ID wins over bitnami's names; an empty one is not an id.
    let e = read_env(env(&[
        ("KAFKA_KRAFT_CLUSTER_ID", "abcdefghijklmnopqrstuv"),
        ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
    ]));
    assert_eq!(
        e.cluster_id,
        Some(("CLUSTER_ID".into(), "MkU3OEVBNTcwNTJENDM2Qk".into()))
    );
    assert!(read_env(env(&[("CLUSTER_ID", " ")])).cluster_id.is_none());
    assert!(e.entries.is_empty(), "{:?}", e.entries);
}
