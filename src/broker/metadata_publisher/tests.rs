//! The publisher diff over images built from real metadata records.

use uuid::Uuid;

use super::*;
use crate::metadata::records::*;
use crate::metadata::RecordAndVersion;

fn rec(record: MetadataRecord, version: i16) -> RecordAndVersion {
    RecordAndVersion { record, version }
}

fn broker(id: i32, port: u16) -> RecordAndVersion {
    rec(
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            is_migrating_zk_broker: false,
            incarnation_id: Uuid::from_u128(id as u128),
            broker_epoch: i64::from(port),
            end_points: vec![
                BrokerEndpoint {
                    name: "CLIENT".into(),
                    host: format!("c{id}"),
                    port: 1,
                    security_protocol: 0,
                },
                BrokerEndpoint {
                    name: "INTERNAL".into(),
                    host: format!("b{id}"),
                    port,
                    security_protocol: 0,
                },
            ],
            features: Vec::new(),
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
            log_dirs: Vec::new(),
            cordoned_log_dirs: None,
        }),
        3,
    )
}

const T: Uuid = Uuid::from_u128(0x77);

fn partition(id: i32, replicas: &[i32], leader: i32) -> RecordAndVersion {
    rec(
        MetadataRecord::Partition(PartitionRecord {
            partition_id: id,
            topic_id: T,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            leader,
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories: Vec::new(),
            eligible_leader_replicas: None,
            last_known_elr: None,
        }),
        1,
    )
}

fn apply(image: &MetadataImage, records: &[RecordAndVersion]) -> MetadataImage {
    let mut next = image.clone();
    for r in records {
        next.apply(&r.record).expect("applies");
    }
    next
}

fn base() -> MetadataImage {
    apply(
        &MetadataImage::default(),
        &[broker(1, 9001), broker(2, 9002), broker(3, 9003)],
    )
}

fn with_topic(image: &MetadataImage) -> MetadataImage {
    apply(
        image,
        &[
            rec(
                MetadataRecord::Topic(TopicRecord {
                    name: "t".into(),
                    topic_id: T,
                }),
                0,
            ),
            rec(
                MetadataRecord::Config(ConfigRecord {
                    resource_type: 2,
                    resource_name: "t".into(),
                    name: "retention.ms".into(),
                    value: Some("10".into()),
                }),
                0,
            ),
            partition(0, &[1, 2], 1),
            partition(1, &[2, 3], 2),
            partition(2, &[3, 1], 3),
        ],
    )
}

#[test]
fn a_new_topic_gives_the_local_replicas() {
    let (old, new) = (base(), with_topic(&base()));
    let c = local_changes(&old, &new, 1, "INTERNAL");
    assert_eq!(c.iter().map(|c| c.partition).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(c[0].leader_endpoint, None, "node 1 leads partition 0");
    assert_eq!(c[1].leader_endpoint.as_deref(), Some("b3:9003"));
    assert_eq!(c[1].topic, "t");
    assert_eq!(c[1].topic_configs["retention.ms"], "10");
    assert_eq!(c[1].registration.as_ref().unwrap().replicas, [3, 1]);
    // Nothing changed: nothing to do.
    assert!(local_changes(&new, &new, 1, "INTERNAL").is_empty());
    // A node with no replica sees nothing.
    assert!(local_changes(&old, &new, 4, "INTERNAL").is_empty());
}

#[test]
fn leader_changes_reassignment_and_deletion() {
    let old = with_topic(&base());
    let mut change = PartitionChangeRecord::new(T, 1);
    change.leader = 3;
    let new = apply(&old, &[rec(MetadataRecord::PartitionChange(change), 0)]);
    let c = local_changes(&old, &new, 2, "INTERNAL");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].leader_endpoint.as_deref(), Some("b3:9003"));
    assert_eq!(c[0].registration.as_ref().unwrap().leader_epoch, 1);
    // Reassigned away from node 2: partition 0 now on [1, 3].
    let mut away = PartitionChangeRecord::new(T, 0);
    away.replicas = Some(vec![1, 3]);
    away.isr = Some(vec![1, 3]);
    let moved = apply(&old, &[rec(MetadataRecord::PartitionChange(away), 0)]);
    let c = local_changes(&old, &moved, 2, "INTERNAL");
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].partition, c[0].registration.is_none()), (0, true));
    let c = local_changes(&old, &moved, 3, "INTERNAL");
    assert_eq!(
        (c[0].partition, c[0].leader_endpoint.as_deref()),
        (0, Some("b1:9001"))
    );
    // The topic removed: every local replica goes.
    let gone = apply(&old, &[rec(MetadataRecord::RemoveTopic { topic_id: T }, 0)]);
    let c = local_changes(&old, &gone, 3, "INTERNAL");
    assert_eq!(c.iter().map(|c| c.partition).collect::<Vec<_>>(), [1, 2]);
    assert!(c.iter().all(|c| c.registration.is_none() && c.topic == "t"));
}

#[test]
fn a_leader_with_a_new_endpoint_is_followed_there() {
    let old = with_topic(&base());
    let new = apply(&old, &[broker(3, 9999)]);
    let c = local_changes(&old, &new, 1, "INTERNAL");
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].partition, c[0].leader_endpoint.as_deref()),
        (2, Some("b3:9999"))
    );
    // Node 3 leads its own partitions: no endpoint, nothing changes.
    assert!(local_changes(&old, &new, 3, "INTERNAL").is_empty());
}
