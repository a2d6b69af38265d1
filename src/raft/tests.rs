//! The quorum's storage against openraft's own storage test suite, and
//! what must survive a restart: appended entries, the vote, the snapshot.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::{blank_ent, log_id, StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, RaftLogReader, Vote};
use uuid::Uuid;

use super::*;
use crate::metadata::records::{FeatureLevelRecord, TopicRecord};
use crate::metadata::{MetadataRecord, RecordAndVersion};

struct Builder;

impl StoreBuilder<TypeConfig, DurableLogStore, MetadataStateMachine, tempfile::TempDir>
    for Builder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, DurableLogStore, MetadataStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DurableLogStore::open(dir.path()).expect("open log");
        let sm = MetadataStateMachine::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn batch(records: Vec<MetadataRecord>) -> MetadataBatch {
    MetadataBatch {
        records: records
            .into_iter()
            .map(|record| RecordAndVersion { record, version: 0 }.encode().unwrap())
            .collect(),
    }
}

fn normal(term: u64, index: u64, b: MetadataBatch) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(b),
    }
}

fn topic(name: &str, id: u128) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: Uuid::from_u128(id),
    })
}

#[tokio::test]
async fn log_vote_and_snapshot_survive_a_restart_and_a_torn_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = DurableLogStore::open(dir.path()).unwrap();
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
        log.blocking_append([
            blank_ent::<TypeConfig>(1, 1, 1),
            normal(1, 2, batch(vec![topic("a", 1)])),
            normal(1, 3, batch(vec![topic("b", 2)])),
        ])
        .await
        .unwrap();
        log.truncate(log_id(1, 1, 3)).await.unwrap();
        log.blocking_append([normal(2, 3, batch(vec![topic("c", 3)]))])
            .await
            .unwrap();
    }
    // A half-written frame at the end, as a crash mid-append leaves it.
    let path = dir.path().join("log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0, 0, 1, 0, 9, 9]);
    std::fs::write(&path, &bytes).unwrap();
    let mut log = DurableLogStore::open(dir.path()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 3)));
    let entries = log.try_get_log_entries(..).await.unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len() - 6);

    // The state machine: a batch that breaks an invariant changes nothing.
    let mut sm = MetadataStateMachine::open(dir.path()).unwrap();
    let results = sm
        .apply([
            entries[1].clone(),
            entries[2].clone(),
            normal(2, 4, batch(vec![topic("d", 4), topic("a", 5)])),
            normal(
                2,
                5,
                batch(vec![MetadataRecord::FeatureLevel(FeatureLevelRecord {
                    name: "metadata.version".into(),
                    feature_level: 27,
                })]),
            ),
        ])
        .await
        .unwrap();
    assert!(results[2]
        .error
        .as_deref()
        .unwrap()
        .contains("already exists"));
    let names = |image: &crate::metadata::MetadataImage| {
        image.topic_ids.keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(names(&sm.image()), ["a", "c"]);
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(2, 1, 5)));
    log.purge(log_id(2, 1, 3)).await.unwrap();
    drop((log, sm));
    let reopened = MetadataStateMachine::open(dir.path()).unwrap();
    assert_eq!(reopened.last_applied(), Some(log_id(2, 1, 5)));
    assert_eq!(names(&reopened.image()), ["a", "c"]);
    assert_eq!(reopened.image().features["metadata.version"], 27);
    let mut log = DurableLogStore::open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 1, 3)));
    assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
}
