//! Tests of the hand-back: the snapshot it writes read back through
//! `kafka_metadata_log::read`, kastle's files gone, the `.txnindex` split,
//! refusals that change nothing, and a start after an interrupted
//! hand-back keeping kastle's files.

use super::*;
use crate::config::BrokerConfig;
use crate::metadata::MetadataImage;

const NODE: i32 = 1;
const DIR_ID: &str = "AAAAAAAAAAAAAAAAAAAABQ";

fn controller() -> ControllerEndpoint {
    "CONTROLLER://127.0.0.1:9093".parse().expect("endpoint")
}

/// A directory as a standalone kastle leaves it: one topic of two
/// partitions with a config, a leader epoch, an aborted transaction, broker
/// and group configs, features, producer ids.
fn kastle_dir() -> (tempfile::TempDir, Uuid) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(
        d.join("meta.properties"),
        format!(
            "version=1\nnode.id={NODE}\ncluster.id=AAAAAAAAAAAAAAAAAAAAAg\ndirectory.id={DIR_ID}\n"
        ),
    )
    .expect("meta");
    let id = Uuid::from_u128(0x1234);
    let mut configs = BTreeMap::new();
    configs.insert("retention.ms".to_string(), "1000".to_string());
    topics::write_topic_file(d, "t", &id, 2, &configs).expect("topic");
    let p1 = topics::partition_dir(d, "t", 1);
    std::fs::create_dir_all(&p1).expect("partition");
    std::fs::write(p1.join(LEADER_EPOCH_CHECKPOINT), "0\n2\n0 0\n3 17\n").expect("epochs");
    std::fs::write(p1.join("00000000000000000000.log"), b"").expect("segment");
    // one aborted transaction: version, pid 9, first 2, last 5, lso 6
    let mut entry = vec![0u8, 0];
    for v in [9i64, 2, 5, 6] {
        entry.extend_from_slice(&v.to_be_bytes());
    }
    std::fs::write(p1.join(txn_index::TXN_INDEX_FILE), &entry).expect("txnindex");
    let repo = ConfigRepository::load(d, NODE).expect("repo");
    let mut c = BTreeMap::new();
    c.insert("log.cleaner.threads".to_string(), "2".to_string());
    repo.put(&ConfigResource::Broker, c.clone())
        .expect("broker");
    let mut g = BTreeMap::new();
    g.insert(
        "consumer.session.timeout.ms".to_string(),
        "50000".to_string(),
    );
    repo.put(&ConfigResource::Group("g1".into()), g)
        .expect("group");
    FinalizedFeatureStore::format(
        d,
        &[
            ("metadata.version".into(), 33),
            ("transaction.version".into(), 2),
        ],
    )
    .expect("features");
    crate::broker::producer_ids::raise_floor(d, 4000).expect("producer ids");
    (tmp, id)
}

fn image_of(d: &Path) -> (MetadataImage, kafka_metadata_log::MetadataLogContents) {
    let c = kafka_metadata_log::read(&d.join(METADATA_LOG_DIR)).expect("reads back");
    let mut image = MetadataImage::default();
    for r in &c.records {
        image.apply(&r.record).expect("applies");
    }
    (image, c)
}

#[test]
fn kastles_state_becomes_a_snapshot_kafka_reads() {
    let (tmp, id) = kastle_dir();
    let d = tmp.path();
    hand_back(d, NODE, Some(&controller())).expect("handed back");
    let (image, c) = image_of(d);
    assert_eq!(c.snapshot, Some((1, 0)));
    assert_eq!(c.voters, Some(1));
    assert_eq!(c.kraft_version_value, Some(writer::kraft_version_value(1)));
    let t = image.topics.get(&id).expect("topic");
    assert_eq!(t.name, "t");
    assert_eq!(t.partitions.len(), 2);
    let p1 = &t.partitions[&1];
    assert_eq!((p1.leader, p1.leader_epoch), (NODE, 3));
    assert_eq!(p1.replicas, [NODE]);
    assert_eq!(topics::topic_id_string(&p1.directories[0]), DIR_ID);
    assert_eq!(t.partitions[&0].leader_epoch, 0);
    assert_eq!(
        image.configs[&(CONFIG_RESOURCE_TOPIC, "t".to_string())]["retention.ms"],
        "1000"
    );
    assert_eq!(
        image.configs[&(CONFIG_RESOURCE_BROKER, "1".to_string())]["log.cleaner.threads"],
        "2"
    );
    assert_eq!(
        image.configs[&(CONFIG_RESOURCE_GROUP, "g1".to_string())]["consumer.session.timeout.ms"],
        "50000"
    );
    assert_eq!(image.features["metadata.version"], 33);
    assert_eq!(image.features["transaction.version"], 2);
    assert!(!image.features.contains_key("kraft.version"));
    assert_eq!(image.next_producer_id, 4000);
    // metadata.version comes first, as Kafka's snapshots have it.
    assert!(matches!(
        &c.records[0].record,
        MetadataRecord::FeatureLevel(f) if f.name == "metadata.version"
    ));
    // kastle's files are gone; the aborted transaction is Kafka's.
    assert!(!kastle_state_present(d).expect("listing"));
    let p1 = topics::partition_dir(d, "t", 1);
    assert_eq!(
        std::fs::read(p1.join("00000000000000000000.txnindex"))
            .expect("per-segment index")
            .len(),
        34
    );
    // Idempotent.
    let again = hand_back(d, NODE, None).expect("again");
    assert!(again.contains("no kastle state"), "{again}");
}

#[test]
fn a_second_hand_back_supersedes_the_first_and_keeps_the_voters() {
    let (tmp, _) = kastle_dir();
    let d = tmp.path();
    hand_back(d, NODE, Some(&controller())).expect("handed back");
    let (_, first) = image_of(d);
    // kastle took the directory over again and made a topic.
    topics::write_topic_file(d, "u", &Uuid::from_u128(77), 1, &BTreeMap::new()).expect("topic");
    hand_back(d, NODE, None).expect("handed back again, Kafka's voters kept");
    let (image, second) = image_of(d);
    assert_eq!(second.snapshot, Some((2, 0)));
    assert_eq!(second.voters_value, first.voters_value);
    assert!(image.topics.values().any(|t| t.name == "u"));
}

#[test]
fn refusals_change_nothing() {
    let (tmp, _) = kastle_dir();
    let d = tmp.path();
    let listing = |d: &Path| {
        let mut v: Vec<_> = walk(d);
        v.sort();
        v
    };
    let before = listing(d);
    let e = hand_back(d, NODE, None).expect_err("no voters known");
    assert!(format!("{e:#}").contains("--controller"), "{e:#}");
    std::fs::write(d.join(CONFIGS_DIR).join("acls"), "some acl\n").expect("acls");
    let before_acl = listing(d);
    let e = hand_back(d, NODE, Some(&controller())).expect_err("ACLs");
    assert!(format!("{e:#}").contains("ACLs"), "{e:#}");
    assert_eq!(listing(d), before_acl);
    std::fs::remove_file(d.join(CONFIGS_DIR).join("acls")).expect("rm");
    assert_eq!(listing(d), before);
}

fn walk(d: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).expect("list").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.file_name().is_some_and(|n| n != ".lock") {
            out.push((p.clone(), std::fs::read(&p).expect("read")));
        }
    }
    out
}

#[test]
fn a_start_after_an_interrupted_hand_back_keeps_kastles_files() {
    let (tmp, _) = kastle_dir();
    let d = tmp.path();
    // The hand-back got as far as the snapshot.
    let (records, _) = state_records(d, NODE, Uuid::from_u128(5), 0).expect("records");
    let bytes = writer::snapshot_bytes(0, 0, None, None, &records).expect("bytes");
    writer::write_snapshot(&d.join(METADATA_LOG_DIR), 1, 0, &bytes).expect("snapshot");
    let state = d.join(CONFIGS_DIR).join(IMPORT_FILE);
    std::fs::write(&state, "state=handing-back\n").expect("state");
    let topics_before = topics::topic_files(d).expect("topics");
    let (mut config, _) = BrokerConfig::load(None, Vec::new(), &[]).expect("config");
    config.log_dir = d.to_path_buf();
    config.node_id = NODE;
    super::super::import_if_present(&config, Some(DIR_ID)).expect("start");
    assert_eq!(topics::topic_files(d).expect("topics"), topics_before);
    assert_eq!(
        super::super::read_state(&state).expect("state"),
        super::super::ImportState::Done(1)
    );
}
