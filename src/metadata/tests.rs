//! Metadata records against bytes Kafka 4.4's own `MetadataRecordSerde`
//! wrote (a Java program over the kafka-metadata, kafka-clients and
//! kafka-server-common 4.4.0 jars, run once; its output is below), and the
//! image's invariants.

use uuid::Uuid;

use super::records::*;
use super::*;

const REGISTERBROKERRECORD_V3: &str = "010003000000020011112222333344445555666677778888000000000000002a020a504c41494e54455854036232238400000002116d657461646174612e76657273696f6e0007001b00077261636b2d610100010011027a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b";
const REGISTERBROKERRECORD_V0: &str =
    "010000000000011111222233334444555566667777888800000000000000070101000000";
const BROKERREGISTRATIONCHANGERECORD_V2: &str =
    "01110200000002000000000000002a030001ff0101010211027a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b";
const FENCEBROKERRECORD_V0: &str = "01070000000003000000000000006300";
const UNFENCEBROKERRECORD_V0: &str = "01080000000003000000000000006300";
const UNREGISTERBROKERRECORD_V0: &str = "01010000000003000000000000006300";
const TOPICRECORD_V0: &str = "010200076f72646572730123456789abcdef0fedcba98765432100";
const PARTITIONRECORD_V1: &str = "010301000000010123456789abcdef0fedcba98765432104000000010000000200000003030000000100000002010200000003000000010000000000000000047a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b7a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b7a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b00";
const PARTITIONRECORD_V2: &str = "010302000000000123456789abcdef0fedcba98765432103000000010000000202000000010101000000010000000500000009037a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b7a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b0200010101050200000002";
const PARTITIONCHANGERECORD_V0: &str =
    "010500000000000123456789abcdef0fedcba987654321020009030000000100000003010400000003";
const PARTITIONCHANGERECORD_V1: &str = "010501000000020123456789abcdef0fedcba9876543210302090300000004000000050501000821037a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b7a7a7a7a7a7a7a7a1b1b1b1b1b1b1b1b";
const REMOVETOPICRECORD_V0: &str = "0109000123456789abcdef0fedcba98765432100";
const CONFIGRECORD_V0: &str = "01040002076f72646572730d726574656e74696f6e2e6d73053130303000";
const CONFIGRECORD_V0_NULL: &str = "0104000401116c6f672e726574656e74696f6e2e6d730000";
const PRODUCERIDSRECORD_V0: &str = "010f0000000001000000000000002a00000000000007d000";
const FEATURELEVELRECORD_V0: &str = "010c00116d657461646174612e76657273696f6e001b00";
const ACCESSCONTROLENTRYRECORD_V0: &str =
    "0112000123456789abcdef0fedcba98765432102076f7264657273040b557365723a616c696365022a040200";
const REMOVEACCESSCONTROLENTRYRECORD_V0: &str = "0113000123456789abcdef0fedcba98765432100";
const USERSCRAMCREDENTIALRECORD_V0: &str = "010b0006616c696365020401020303040502060000200000";
const REMOVEUSERSCRAMCREDENTIALRECORD_V0: &str = "01160006616c6963650100";
const CLIENTQUOTARECORD_V0: &str = "010e00030a636c69656e742d69640000057573657204626f62001370726f64756365725f627974655f7261746540900200000000000000";
const CLIENTQUOTARECORD_V0_REMOVE: &str = "010e00020369700931302e302e302e310019636f6e6e656374696f6e5f6372656174696f6e5f7261746500000000000000000100";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const TOPIC: Uuid = Uuid::from_u128(0x0123456789abcdef_0fedcba987654321);
const INCARNATION: Uuid = Uuid::from_u128(0x1111222233334444_5555666677778888);
const DIR: Uuid = Uuid::from_u128(0x7a7a7a7a7a7a7a7a_1b1b1b1b1b1b1b1b);

/// Decodes Kafka's bytes to `record` at `version` and encodes back to them.
fn golden(bytes: &str, record: MetadataRecord, version: i16) {
    let bytes = hex(bytes);
    let decoded = RecordAndVersion::decode(&bytes).unwrap();
    assert_eq!(decoded, RecordAndVersion { record, version });
    assert_eq!(decoded.encode().unwrap(), bytes, "{:?}", decoded.record);
    // Every cut short of the whole record is refused, never a panic.
    for n in 0..bytes.len() {
        assert!(RecordAndVersion::decode(&bytes[..n]).is_err(), "{n}");
    }
}

fn register(broker_id: i32, epoch: i64, fenced: bool) -> RegisterBrokerRecord {
    RegisterBrokerRecord {
        broker_id,
        is_migrating_zk_broker: false,
        incarnation_id: INCARNATION,
        broker_epoch: epoch,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: format!("b{broker_id}"),
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![BrokerFeature {
            name: "metadata.version".into(),
            min_supported_version: 7,
            max_supported_version: 27,
        }],
        rack: Some("rack-a".into()),
        fenced,
        in_controlled_shutdown: false,
        log_dirs: vec![DIR],
        cordoned_log_dirs: None,
    }
}

fn partition(p: i32, replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRecord {
    PartitionRecord {
        partition_id: p,
        topic_id: TOPIC,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        directories: vec![],
        eligible_leader_replicas: None,
        last_known_elr: None,
    }
}

#[test]
fn broker_records_match_kafkas_bytes() {
    golden(
        REGISTERBROKERRECORD_V3,
        MetadataRecord::RegisterBroker(register(2, 42, true)),
        3,
    );
    golden(
        REGISTERBROKERRECORD_V0,
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            end_points: vec![],
            features: vec![],
            rack: None,
            log_dirs: vec![],
            ..register(1, 7, false)
        }),
        0,
    );
    golden(
        BROKERREGISTRATIONCHANGERECORD_V2,
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 2,
            broker_epoch: 42,
            fenced: -1,
            in_controlled_shutdown: 1,
            log_dirs: vec![DIR],
            cordoned_log_dirs: None,
        }),
        2,
    );
    let b = BrokerIdAndEpoch { id: 3, epoch: 99 };
    golden(FENCEBROKERRECORD_V0, MetadataRecord::FenceBroker(b), 0);
    golden(UNFENCEBROKERRECORD_V0, MetadataRecord::UnfenceBroker(b), 0);
    golden(
        UNREGISTERBROKERRECORD_V0,
        MetadataRecord::UnregisterBroker {
            broker_id: 3,
            broker_epoch: 99,
        },
        0,
    );
}

#[test]
fn topic_and_partition_records_match_kafkas_bytes() {
    golden(
        TOPICRECORD_V0,
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: TOPIC,
        }),
        0,
    );
    golden(
        PARTITIONRECORD_V1,
        MetadataRecord::Partition(PartitionRecord {
            adding_replicas: vec![3],
            directories: vec![DIR; 3],
            ..partition(1, &[1, 2, 3], &[1, 2], 1)
        }),
        1,
    );
    golden(
        PARTITIONRECORD_V2,
        MetadataRecord::Partition(PartitionRecord {
            leader_recovery_state: 1,
            leader_epoch: 5,
            partition_epoch: 9,
            directories: vec![DIR; 2],
            eligible_leader_replicas: Some(vec![2]),
            ..partition(0, &[1, 2], &[1], 1)
        }),
        2,
    );
    golden(
        PARTITIONCHANGERECORD_V0,
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            isr: Some(vec![1, 3]),
            leader: 3,
            ..PartitionChangeRecord::new(TOPIC, 0)
        }),
        0,
    );
    golden(
        PARTITIONCHANGERECORD_V1,
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            replicas: Some(vec![4, 5]),
            leader_recovery_state: 0,
            directories: Some(vec![DIR; 2]),
            ..PartitionChangeRecord::new(TOPIC, 2)
        }),
        1,
    );
    golden(
        REMOVETOPICRECORD_V0,
        MetadataRecord::RemoveTopic { topic_id: TOPIC },
        0,
    );
}

#[test]
fn config_producer_id_and_feature_records_match_kafkas_bytes() {
    golden(
        CONFIGRECORD_V0,
        MetadataRecord::Config(ConfigRecord {
            resource_type: 2,
            resource_name: "orders".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        }),
        0,
    );
    golden(
        CONFIGRECORD_V0_NULL,
        MetadataRecord::Config(ConfigRecord {
            resource_type: 4,
            resource_name: "".into(),
            name: "log.retention.ms".into(),
            value: None,
        }),
        0,
    );
    golden(
        PRODUCERIDSRECORD_V0,
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 42,
            next_producer_id: 2000,
        }),
        0,
    );
    golden(
        FEATURELEVELRECORD_V0,
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 27,
        }),
        0,
    );
}

fn scram(name: &str, mechanism: i8) -> UserScramCredentialRecord {
    UserScramCredentialRecord {
        name: name.into(),
        mechanism,
        salt: vec![1, 2, 3],
        stored_key: vec![4, 5],
        server_key: vec![6],
        iterations: 8192,
    }
}

fn quota(
    entity: &[(&str, Option<&str>)],
    key: &str,
    value: f64,
    remove: bool,
) -> ClientQuotaRecord {
    ClientQuotaRecord {
        entity: entity
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect(),
        key: key.into(),
        value,
        remove,
    }
}

#[test]
fn scram_and_quota_records_match_kafkas_bytes() {
    golden(
        USERSCRAMCREDENTIALRECORD_V0,
        MetadataRecord::UserScramCredential(scram("alice", 2)),
        0,
    );
    golden(
        REMOVEUSERSCRAMCREDENTIALRECORD_V0,
        MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord {
            name: "alice".into(),
            mechanism: 1,
        }),
        0,
    );
    golden(
        CLIENTQUOTARECORD_V0,
        MetadataRecord::ClientQuota(quota(
            &[("client-id", None), ("user", Some("bob"))],
            "producer_byte_rate",
            1024.5,
            false,
        )),
        0,
    );
    golden(
        CLIENTQUOTARECORD_V0_REMOVE,
        MetadataRecord::ClientQuota(quota(
            &[("ip", Some("10.0.0.1"))],
            "connection_creation_rate",
            0.0,
            true,
        )),
        0,
    );
}

#[test]
fn scram_and_quotas_in_the_image_are_checked_and_round_trip() {
    let mut image = MetadataImage::default();
    let apply = |image: &mut MetadataImage, r: MetadataRecord| image.apply(&r);
    apply(
        &mut image,
        MetadataRecord::UserScramCredential(scram("alice", 1)),
    )
    .unwrap();
    apply(
        &mut image,
        MetadataRecord::UserScramCredential(scram("alice", 2)),
    )
    .unwrap();
    apply(
        &mut image,
        MetadataRecord::UserScramCredential(scram("bob", 1)),
    )
    .unwrap();
    // An unknown mechanism, or removing what is not there, is refused.
    assert!(apply(
        &mut image,
        MetadataRecord::UserScramCredential(scram("x", 3))
    )
    .is_err());
    let remove = |name: &str, mechanism| {
        MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord {
            name: name.into(),
            mechanism,
        })
    };
    apply(&mut image, remove("bob", 1)).unwrap();
    assert!(apply(&mut image, remove("bob", 1)).is_err());
    let set = |e: &[(&str, Option<&str>)], k: &str, v: f64| {
        MetadataRecord::ClientQuota(quota(e, k, v, false))
    };
    // The entity is kept sorted by type whatever the record's order.
    apply(
        &mut image,
        set(
            &[("user", Some("u")), ("client-id", None)],
            "producer_byte_rate",
            1024.0,
        ),
    )
    .unwrap();
    apply(
        &mut image,
        set(&[("client-id", Some("c"))], "request_percentage", 12.5),
    )
    .unwrap();
    apply(
        &mut image,
        set(&[("ip", None)], "connection_creation_rate", 5.0),
    )
    .unwrap();
    apply(
        &mut image,
        set(&[("client-id", Some("gone"))], "consumer_byte_rate", 1.0),
    )
    .unwrap();
    apply(
        &mut image,
        MetadataRecord::ClientQuota(quota(
            &[("client-id", Some("gone"))],
            "consumer_byte_rate",
            0.0,
            true,
        )),
    )
    .unwrap();
    for bad in [
        set(&[], "producer_byte_rate", 1.0),
        set(&[("group", Some("g"))], "producer_byte_rate", 1.0),
        set(
            &[("user", None), ("user", Some("u"))],
            "producer_byte_rate",
            1.0,
        ),
        set(&[("ip", None), ("user", None)], "producer_byte_rate", 1.0),
    ] {
        let before = image.clone();
        assert!(apply(&mut image, bad).is_err());
        assert_eq!(image, before);
    }
    assert_eq!(image.scram.len(), 2);
    assert_eq!(image.client_quotas.0.len(), 3);
    let sorted = vec![
        ("client-id".to_string(), None),
        ("user".to_string(), Some("u".to_string())),
    ];
    assert_eq!(image.client_quotas.0[&sorted]["producer_byte_rate"], 1024.0);
    let mut rebuilt = MetadataImage::default();
    for r in image.to_records() {
        let r = RecordAndVersion::decode(&r.encode().unwrap()).unwrap();
        rebuilt.apply(&r.record).unwrap();
    }
    assert_eq!(rebuilt, image);
}

fn acl(id: Uuid, name: &str) -> AccessControlEntryRecord {
    AccessControlEntryRecord {
        id,
        resource_type: 2,
        resource_name: name.into(),
        pattern_type: 4,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: 4,
        permission_type: 2,
    }
}

#[test]
fn acl_records_match_kafkas_bytes() {
    golden(
        ACCESSCONTROLENTRYRECORD_V0,
        MetadataRecord::AccessControlEntry(acl(TOPIC, "orders")),
        0,
    );
    golden(
        REMOVEACCESSCONTROLENTRYRECORD_V0,
        MetadataRecord::RemoveAccessControlEntry { id: TOPIC },
        0,
    );
}

#[test]
fn the_image_keeps_acls_by_id_and_its_snapshot_rebuilds_them() {
    let mut image = MetadataImage::default();
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    image
        .apply(&MetadataRecord::AccessControlEntry(acl(a, "orders")))
        .unwrap();
    image
        .apply(&MetadataRecord::AccessControlEntry(acl(b, "payments")))
        .unwrap();
    // A second ACL with an id in use, or removing an unknown id, is refused
    // and changes nothing.
    let before = image.clone();
    assert!(image
        .apply(&MetadataRecord::AccessControlEntry(acl(a, "other")))
        .is_err());
    assert!(image
        .apply(&MetadataRecord::RemoveAccessControlEntry {
            id: Uuid::from_u128(3)
        })
        .is_err());
    assert_eq!(image, before);
    let mut rebuilt = MetadataImage::default();
    for r in image.to_records() {
        let r = RecordAndVersion::decode(&r.encode().unwrap()).unwrap();
        rebuilt.apply(&r.record).unwrap();
    }
    assert_eq!(rebuilt, image);
    image
        .apply(&MetadataRecord::RemoveAccessControlEntry { id: a })
        .unwrap();
    assert_eq!(image.acls.keys().copied().collect::<Vec<_>>(), [b]);
    assert_eq!(image.acls[&b].resource_name, "payments");
}

#[test]
fn what_a_version_cannot_carry_is_refused_and_bad_frames_too() {
    let rec = |version| RecordAndVersion {
        record: MetadataRecord::RegisterBroker(register(1, 1, true)),
        version,
    };
    // Log dirs arrived in version 3.
    assert!(rec(2).encode().unwrap_err().0.contains("logDirs"));
    assert!(rec(5).encode().is_err());
    let mut bytes = hex(TOPICRECORD_V0);
    bytes[0] = 2;
    assert!(RecordAndVersion::decode(&bytes)
        .unwrap_err()
        .0
        .contains("unknown frame version 2"));
    let mut bytes = hex(TOPICRECORD_V0);
    bytes.push(0);
    assert!(RecordAndVersion::decode(&bytes)
        .unwrap_err()
        .0
        .contains("garbage"));
    // A huge array count in a few bytes is refused before any allocation.
    let mut bytes = hex(PARTITIONRECORD_V1);
    bytes[23..28].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(RecordAndVersion::decode(&bytes).is_err());
}

#[test]
fn the_image_follows_the_log_and_refuses_what_breaks_its_invariants() {
    let mut image = MetadataImage::default();
    let apply = |image: &mut MetadataImage, r: MetadataRecord| image.apply(&r);
    apply(
        &mut image,
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 27,
        }),
    )
    .unwrap();
    for id in [1, 2] {
        apply(
            &mut image,
            MetadataRecord::RegisterBroker(register(id, 10 + i64::from(id), true)),
        )
        .unwrap();
    }
    assert_eq!(image.unfenced_brokers().count(), 0);
    let unfence = MetadataRecord::UnfenceBroker(BrokerIdAndEpoch { id: 1, epoch: 11 });
    apply(&mut image, unfence).unwrap();
    assert_eq!(
        image.unfenced_brokers().map(|b| b.id).collect::<Vec<_>>(),
        [1]
    );
    // A stale epoch is refused, with Kafka's words.
    let stale = MetadataRecord::FenceBroker(BrokerIdAndEpoch { id: 1, epoch: 3 });
    assert_eq!(
        apply(&mut image, stale).unwrap_err().0,
        "Tried to fence broker 1, but the given epoch, 3, did not match the current broker epoch, 11."
    );
    apply(
        &mut image,
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: TOPIC,
        }),
    )
    .unwrap();
    assert!(apply(
        &mut image,
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: Uuid::from_u128(9)
        })
    )
    .is_err());
    apply(
        &mut image,
        MetadataRecord::Partition(partition(0, &[1, 2], &[1, 2], 1)),
    )
    .unwrap();
    // A leader outside the ISR, an ISR member that is no replica: refused,
    // and the image keeps what it had.
    let before = image.clone();
    assert!(apply(
        &mut image,
        MetadataRecord::Partition(partition(1, &[1, 2], &[2], 1))
    )
    .is_err());
    assert!(apply(
        &mut image,
        MetadataRecord::Partition(partition(1, &[1], &[1, 3], 1))
    )
    .is_err());
    let bad_change = PartitionChangeRecord {
        isr: Some(vec![2]),
        ..PartitionChangeRecord::new(TOPIC, 0)
    };
    assert!(apply(&mut image, MetadataRecord::PartitionChange(bad_change)).is_err());
    assert_eq!(image, before);
    // Leader 1 -> 2: leader epoch and partition epoch move; an ISR-only
    // change moves the partition epoch alone.
    let change = PartitionChangeRecord {
        isr: Some(vec![2]),
        leader: 2,
        ..PartitionChangeRecord::new(TOPIC, 0)
    };
    apply(&mut image, MetadataRecord::PartitionChange(change)).unwrap();
    let change = PartitionChangeRecord {
        isr: Some(vec![2, 1]),
        ..PartitionChangeRecord::new(TOPIC, 0)
    };
    apply(&mut image, MetadataRecord::PartitionChange(change)).unwrap();
    let p = &image.topic_by_name("orders").unwrap().partitions[&0];
    assert_eq!(
        (
            p.leader,
            p.leader_epoch,
            p.partition_epoch,
            p.isr.as_slice()
        ),
        (2, 1, 2, &[2, 1][..])
    );
    apply(
        &mut image,
        MetadataRecord::Config(ConfigRecord {
            resource_type: image::CONFIG_RESOURCE_TOPIC,
            resource_name: "orders".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        }),
    )
    .unwrap();
    apply(
        &mut image,
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 11,
            next_producer_id: 1000,
        }),
    )
    .unwrap();
    assert!(apply(
        &mut image,
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 11,
            next_producer_id: 10
        })
    )
    .is_err());
    // The image's own records rebuild it (a snapshot's content).
    let mut rebuilt = MetadataImage::default();
    for r in image.to_records() {
        let r = RecordAndVersion::decode(&r.encode().unwrap()).unwrap();
        rebuilt.apply(&r.record).unwrap();
    }
    assert_eq!(rebuilt, image);
    // Removing the topic takes its partitions and configs with it.
    apply(&mut image, MetadataRecord::RemoveTopic { topic_id: TOPIC }).unwrap();
    assert!(image.topic_by_name("orders").is_none() && image.configs.is_empty());
    assert!(apply(&mut image, MetadataRecord::RemoveTopic { topic_id: TOPIC }).is_err());
    apply(
        &mut image,
        MetadataRecord::UnregisterBroker {
            broker_id: 2,
            broker_epoch: 12,
        },
    )
    .unwrap();
    assert_eq!(image.brokers.keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(image.next_producer_id, 1000);
    assert_eq!(image.features["metadata.version"], 27);
}
