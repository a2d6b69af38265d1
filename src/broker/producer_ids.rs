//! Producer id allocation for InitProducerId: ids unique across restarts
//! and, in a cluster, across brokers.
//!
//! A standalone node hands out ids from blocks of its own file and persists
//! the end of the current block *before* using it, so a crash can only skip
//! ids, never reuse one. One fsync per block, not per producer. A cluster
//! broker takes its blocks from the controller instead
//! ([`super::rpc_producer_id_manager`]), as Kafka's brokers do.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use kafka_protocol::ResponseError;

use super::rpc_producer_id_manager::{ProducerIdsChannel, RpcProducerIdManager};
use crate::util::fs::write_atomically;

pub const BLOCK_SIZE: i64 = 1000;
const FILE_NAME: &str = "__kastle_producer_ids";

struct Block {
    next: i64,
    end: i64,
}

/// Where a node's producer ids come from.
pub enum ProducerIdManager {
    /// A standalone node: its own file.
    File(FileProducerIds),
    /// A cluster broker: blocks from the active controller.
    Controller(Arc<RpcProducerIdManager>),
}

impl ProducerIdManager {
    /// A standalone node's ids, continuing from its file in `log_dir`.
    pub fn load(log_dir: &Path) -> anyhow::Result<ProducerIdManager> {
        FileProducerIds::load(log_dir).map(ProducerIdManager::File)
    }

    /// A cluster broker's ids: none until [`Self::connect`].
    pub fn from_controller(broker_id: i32) -> ProducerIdManager {
        ProducerIdManager::Controller(RpcProducerIdManager::new(broker_id))
    }

    /// Gives a cluster broker its way to the controllers (once registered).
    pub fn connect(&self, channel: Arc<dyn ProducerIdsChannel>) {
        if let ProducerIdManager::Controller(m) = self {
            m.connect(channel);
        }
    }

    /// A producer id never handed out before (by this broker or an earlier
    /// run; in a cluster, by any broker). The error is InitProducerId's:
    /// KAFKA_STORAGE_ERROR when the file cannot be written,
    /// COORDINATOR_LOAD_IN_PROGRESS while a cluster broker waits for a block.
    pub fn generate(&self) -> Result<i64, ResponseError> {
        match self {
            ProducerIdManager::File(f) => f.generate().map_err(|e| {
                tracing::error!(error = %format!("{e:#}"), "allocating a producer id");
                ResponseError::KafkaStorageError
            }),
            ProducerIdManager::Controller(m) => m.generate(),
        }
    }
}

pub struct FileProducerIds {
    path: PathBuf,
    block: Mutex<Block>,
}

/// Makes sure no id below `next` is ever handed out by a standalone node
/// using `log_dir` (the ids Kafka's controller gave out, on import).
pub fn raise_floor(log_dir: &Path, next: i64) -> anyhow::Result<()> {
    let current = FileProducerIds::load(log_dir)?;
    let start = current.block.lock().unwrap_or_else(|p| p.into_inner()).next;
    if next > start {
        write_atomically(
            &current.path,
            format!("next.block.start={next}\n").as_bytes(),
        )
        .with_context(|| format!("writing {}", current.path.display()))?;
    }
    Ok(())
}

/// The lowest producer id a standalone node using `log_dir` may still
/// hand out (every id below may have been used).
pub fn floor(log_dir: &Path) -> anyhow::Result<i64> {
    let current = FileProducerIds::load(log_dir)?;
    let next = current.block.lock().unwrap_or_else(|p| p.into_inner()).next;
    Ok(next)
}

/// The file of a standalone node's producer id blocks.
pub fn file_path(log_dir: &Path) -> PathBuf {
    log_dir.join(FILE_NAME)
}

impl FileProducerIds {
    fn load(log_dir: &Path) -> anyhow::Result<FileProducerIds> {
        let path = log_dir.join(FILE_NAME);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let v = text
                    .lines()
                    .find_map(|l| l.strip_prefix("next.block.start="))
                    .with_context(|| format!("{} has no next.block.start", path.display()))?;
                let n: i64 = v
                    .trim()
                    .parse()
                    .with_context(|| format!("{}: bad next.block.start {v:?}", path.display()))?;
                if n < 0 {
                    bail!("{}: negative next.block.start {n}", path.display());
                }
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        // The previous run may have used ids up to `start`; begin there with
        // an empty block so the first allocation persists a fresh one.
        Ok(FileProducerIds {
            path,
            block: Mutex::new(Block {
                next: start,
                end: start,
            }),
        })
    }

    /// A producer id never handed out before, by this node or an earlier run.
    fn generate(&self) -> anyhow::Result<i64> {
        let mut b = self.block.lock().unwrap_or_else(|p| p.into_inner());
        if b.next >= b.end {
            let end = b
                .next
                .checked_add(BLOCK_SIZE)
                .context("producer id space exhausted")?;
            write_atomically(&self.path, format!("next.block.start={end}\n").as_bytes())
                .with_context(|| {
                    format!("persisting producer id block to {}", self.path.display())
                })?;
            b.end = end;
        }
        let id = b.next;
        b.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::load(dir.path()).unwrap();
        let a: Vec<i64> = (0..5).map(|_| m.generate().unwrap()).collect();
        assert_eq!(a, vec![0, 1, 2, 3, 4]);
        drop(m);
        let m = ProducerIdManager::load(dir.path()).unwrap();
        let b = m.generate().unwrap();
        assert!(
            b >= BLOCK_SIZE,
            "{b} reuses an id of the previous run's block"
        );
        for _ in 0..BLOCK_SIZE + 5 {
            m.generate().unwrap();
        }
        drop(m);
        let m = ProducerIdManager::load(dir.path()).unwrap();
        assert!(m.generate().unwrap() >= 3 * BLOCK_SIZE);
    }
}
