//! Tests of the Kafka metadata import's own pieces: the import record and
//! the feature levels kastle finalizes.

use super::*;

#[test]
fn the_import_record_is_read_strictly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(IMPORT_FILE);
    assert_eq!(read_state(&path).expect("absent"), ImportState::None);
    std::fs::write(&path, "state=importing\n").expect("write");
    assert_eq!(
        read_state(&path).expect("importing"),
        ImportState::InProgress
    );
    std::fs::write(&path, "state=done\nnext.offset=247\n").expect("write");
    assert_eq!(read_state(&path).expect("done"), ImportState::Done(247));
    std::fs::write(&path, "state=done\nnext.offset=x\n").expect("write");
    assert!(read_state(&path).is_err());
    std::fs::write(&path, "something=else\n").expect("write");
    assert!(read_state(&path).is_err());
}

#[test]
fn features_beyond_kastles_levels_are_finalized_at_its_highest() {
    let mut image = MetadataImage::default();
    image.features.insert("metadata.version".into(), 33);
    image.features.insert("share.version".into(), 2);
    image
        .features
        .insert("eligible.leader.replicas.version".into(), 1);
    image.features.insert("transaction.version".into(), 2);
    let got: BTreeMap<String, i16> = imported_features(&image).into_iter().collect();
    assert_eq!(got["metadata.version"], 33);
    // kastle serves share groups up to level 2 (KIP-1191), and not ELR at all.
    assert_eq!(got["share.version"], 2);
    assert_eq!(got["eligible.leader.replicas.version"], 0);
    assert_eq!(got["transaction.version"], 2);
    // Kafka records no level-0 feature; kastle records the 0.
    assert_eq!(got["streams.version"], 0);
}
