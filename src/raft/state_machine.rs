//! `MetadataStateMachine`: openraft's state machine over Kafka metadata.
//! Each committed entry's batch of framed records is applied to the
//! `MetadataImage` all or nothing; a snapshot is the image written back as
//! records (`MetadataImage::to_records`, Kafka's snapshot content) and is
//! kept in `snapshot.json` beside the log, replaced atomically, so a
//! restarted controller starts from it and replays only the log after it.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::{ApplyResult, MetadataBatch, NodeId, StorageError, TypeConfig};
use crate::metadata::{MetadataError, MetadataImage, RecordAndVersion};
use crate::util::fs::write_atomically;

/// A snapshot as kept on disk.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

struct Inner {
    dir: PathBuf,
    image: MetadataImage,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<StoredSnapshot>,
    snapshots_built: u64,
}

/// The replicated metadata; clones share it (the snapshot builder is one).
#[derive(Clone)]
pub struct MetadataStateMachine {
    inner: Arc<Mutex<Inner>>,
}

/// A snapshot's bytes: each record framed by Kafka's serde, behind a
/// 4-byte length.
fn encode_image(image: &MetadataImage) -> Result<Vec<u8>, MetadataError> {
    let mut out = Vec::new();
    for r in image.to_records() {
        let bytes = r.encode()?;
        let len = u32::try_from(bytes.len())
            .map_err(|_| MetadataError(format!("a record of {} bytes", bytes.len())))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

fn decode_image(mut data: &[u8]) -> Result<MetadataImage, MetadataError> {
    let mut image = MetadataImage::default();
    while !data.is_empty() {
        let (len, rest) = data
            .split_first_chunk::<4>()
            .ok_or_else(|| MetadataError("snapshot: truncated record length".into()))?;
        let len = u32::from_be_bytes(*len) as usize;
        let record = rest
            .get(..len)
            .ok_or_else(|| MetadataError(format!("snapshot: record of {len} bytes truncated")))?;
        image.apply(&RecordAndVersion::decode(record)?.record)?;
        data = &rest[len..];
    }
    Ok(image)
}

/// Applies a batch to a copy of the image: all of it or nothing.
fn apply_batch(
    image: &MetadataImage,
    batch: &MetadataBatch,
) -> Result<MetadataImage, MetadataError> {
    let mut next = image.clone();
    for bytes in &batch.records {
        next.apply(&RecordAndVersion::decode(bytes)?.record)?;
    }
    Ok(next)
}

fn snapshot_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageError::from(StorageIOError::write_snapshot(None, &e))
}

impl MetadataStateMachine {
    /// Opens the state machine in `dir`, from its last snapshot if any.
    pub fn open(dir: &Path) -> io::Result<MetadataStateMachine> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let path = dir.join("snapshot.json");
        let snapshot: Option<StoredSnapshot> = match std::fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            image: MetadataImage::default(),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
            snapshots_built: 0,
        };
        if let Some(s) = snapshot {
            inner.image = decode_image(&s.data)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            inner.last_applied = s.meta.last_log_id;
            inner.membership = s.meta.last_membership.clone();
            inner.snapshot = Some(s);
        }
        Ok(MetadataStateMachine {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The image is replaced whole, never left half-applied.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> MetadataImage {
        self.lock().image.clone()
    }

    /// The id of the last entry applied.
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.lock().last_applied
    }
}

impl Inner {
    fn save_snapshot(&mut self, s: StoredSnapshot) -> io::Result<()> {
        let bytes = serde_json::to_vec(&s).map_err(io::Error::other)?;
        write_atomically(&self.dir.join("snapshot.json"), &bytes)?;
        self.snapshot = Some(s);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut inner = self.lock();
        let data = encode_image(&inner.image).map_err(snapshot_err)?;
        inner.snapshots_built += 1;
        let snapshot_id = match inner.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, inner.snapshots_built),
            None => format!("--{}", inner.snapshots_built),
        };
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.membership.clone(),
            snapshot_id,
        };
        inner
            .save_snapshot(StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            })
            .map_err(snapshot_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotBuilder = MetadataStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut results = Vec::new();
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => ApplyResult::default(),
                EntryPayload::Normal(batch) => match apply_batch(&inner.image, &batch) {
                    Ok(next) => {
                        inner.image = next;
                        ApplyResult::default()
                    }
                    // A refused batch changes nothing on any node: every
                    // replica refuses it the same way.
                    Err(e) => ApplyResult { error: Some(e.0) },
                },
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                    ApplyResult::default()
                }
            };
            results.push(result);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image = decode_image(&data).map_err(snapshot_err)?;
        let mut inner = self.lock();
        inner
            .save_snapshot(StoredSnapshot {
                meta: meta.clone(),
                data,
            })
            .map_err(snapshot_err)?;
        inner.image = image;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let inner = self.lock();
        Ok(inner.snapshot.as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}
