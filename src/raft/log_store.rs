//! `DurableLogStore`: the quorum's log and vote on disk (openraft's
//! `RaftLogStorage`). An append is written and fsynced before openraft
//! hears it is persisted; the vote, the committed id and the purge point
//! are each replaced atomically (`util::fs::write_atomically`), so a
//! restarted controller never votes twice in a term nor forgets an
//! acknowledged entry.
//!
//! On disk, in the quorum's directory: `log` (frames of a 4-byte length, a
//! CRC-32C and an entry as JSON), `vote.json`, `committed.json`,
//! `purged.json`. A torn or corrupt frame ends the log at open and is cut
//! off. Truncation and purging rewrite `log` atomically: the metadata log
//! between snapshots is small.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeId, StorageError, TypeConfig};
use crate::util::fs::write_atomically;

/// The largest frame accepted at open: a batch of metadata records is far
/// smaller; a bigger length means a corrupt file.
const MAX_FRAME: usize = 64 << 20;

struct Inner {
    dir: PathBuf,
    log: File,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
}

/// The durable log; clones share it (openraft's log reader is a clone).
#[derive(Clone)]
pub struct DurableLogStore {
    inner: Arc<Mutex<Inner>>,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomically(path, &bytes)
}

fn frame(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) -> io::Result<()> {
    let body = serde_json::to_vec(entry).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_FRAME)
        .ok_or_else(|| io::Error::other(format!("log entry of {} bytes", body.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// The entries of a log file up to the first torn or corrupt frame, and
/// the length of that valid prefix.
pub fn parse_log(bytes: &[u8]) -> (Vec<Entry<TypeConfig>>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let Some(body) = bytes
            .get(pos + 8..pos + 8 + len)
            .filter(|_| len <= MAX_FRAME)
        else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(body) else {
            break;
        };
        out.push(entry);
        pos += 8 + len;
    }
    (out, pos)
}

impl DurableLogStore {
    /// Opens (or creates) the log in `dir`, cutting off a torn tail.
    pub fn open(dir: &Path) -> io::Result<DurableLogStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let path = dir.join("log");
        let mut log = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes)?;
        let (list, valid) = parse_log(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid,
                len = bytes.len(),
                "cutting the quorum log's torn tail"
            );
            log.set_len(valid as u64)?;
            log.sync_all()?;
        }
        let purged: Option<LogId<NodeId>> = read_json(&dir.join("purged.json"))?;
        let entries = list
            .into_iter()
            .filter(|e| purged.is_none_or(|p| e.log_id.index > p.index))
            .map(|e| (e.log_id.index, e))
            .collect();
        Ok(DurableLogStore {
            inner: Arc::new(Mutex::new(Inner {
                vote: read_json(&dir.join("vote.json"))?,
                committed: read_json(&dir.join("committed.json"))?,
                purged,
                dir: dir.to_path_buf(),
                log,
                entries,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written
        // file: every write is whole or atomically replaced.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Replaces `log` with the entries kept in memory.
    fn rewrite(&mut self) -> io::Result<()> {
        let mut bytes = Vec::new();
        for e in self.entries.values() {
            frame(e, &mut bytes)?;
        }
        let path = self.dir.join("log");
        write_atomically(&path, &bytes)?;
        self.log = OpenOptions::new().read(true).append(true).open(&path)?;
        Ok(())
    }
}

fn io_err(verb: fn(io::Error) -> StorageIOError<NodeId>) -> impl Fn(io::Error) -> StorageError {
    move |e| StorageError::from(verb(e))
}

impl RaftLogReader<TypeConfig> for DurableLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let inner = self.lock();
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for DurableLogStore {
    type LogReader = DurableLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.purged);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        write_json(&inner.dir.join("vote.json"), vote)
            .map_err(io_err(|e| StorageIOError::write_vote(&e)))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        let mut inner = self.lock();
        write_json(&inner.dir.join("committed.json"), &committed)
            .map_err(io_err(|e| StorageIOError::write_logs(&e)))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let mut bytes = Vec::new();
        for e in &entries {
            frame(e, &mut bytes).map_err(io_err(|e| StorageIOError::write_logs(&e)))?;
        }
        // Persisted means on disk: written and fsynced before the callback.
        let log = &mut inner.log;
        let written = log.write_all(&bytes).and_then(|()| log.sync_data());
        if let Err(e) = written {
            let msg = e.to_string();
            callback.log_io_completed(Err(e));
            return Err(StorageError::from(StorageIOError::write_logs(
                &io::Error::other(msg),
            )));
        }
        for e in entries {
            inner.entries.insert(e.log_id.index, e);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.entries.split_off(&log_id.index);
        inner
            .rewrite()
            .map_err(io_err(|e| StorageIOError::write_logs(&e)))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        // The purge point first: a crash between the two leaves entries
        // that open() filters out, never a hole.
        write_json(&inner.dir.join("purged.json"), &log_id)
            .map_err(io_err(|e| StorageIOError::write_logs(&e)))?;
        inner.purged = Some(log_id);
        inner.entries = inner.entries.split_off(&log_id.index.saturating_add(1));
        inner
            .rewrite()
            .map_err(io_err(|e| StorageIOError::write_logs(&e)))
    }
}
