//! Kafka's `LogDirFailureChannel` and its handling for a log directory that
//! failed with an I/O error (EIO class): the directory goes offline, and
//! when no log directory is left online the broker halts, as Kafka's
//! `LogManager.handleLogDirFailure` does ("Shutdown broker because all log
//! dirs in ... have failed", `Exit.halt(1)`).
//!
//! kastle has one log directory (`log.dirs` names one), so an offline
//! directory is always the last one and the process exits with status 1
//! right after logging why. No shutdown sequence runs: it would write to
//! the failed disk, and the missing clean-shutdown marker makes the next
//! start recover the logs. Appends acknowledged before are in the page
//! cache or already fsynced (durable mode), so the halt itself loses
//! nothing the disk still had.
//!
//! What counts as a failed directory: errors a disk or filesystem gives
//! when it is broken or gone (EIO, EROFS, ENXIO, ENODEV, ENOTCONN for a
//! FUSE daemon that died, EUCLEAN for a corrupted filesystem). ENOSPC and
//! EDQUOT do not: kastle refuses the append with KAFKA_STORAGE_ERROR and
//! recovers when space returns (Kafka would take the directory offline for
//! these too). Other errors (a file missing, an invalid argument) are
//! answered on the request that met them.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Directories taken offline in this process, at most one per broker's log
/// directory (a handful even for the in-process multi-broker tests).
static OFFLINE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// How the process ends once every log directory failed; replaced in unit
/// tests, which must not exit.
type Halt = fn(i32);

fn halt_process(status: i32) {
    std::process::exit(status)
}

/// Whether `e` means the log directory's disk or filesystem failed (see the
/// module doc), as opposed to a full disk or a per-request problem.
pub fn is_dir_failure(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EROFS | libc::ENXIO | libc::ENODEV | libc::ENOTCONN | libc::EUCLEAN)
    )
}

/// Kafka's `maybeAddOfflineLogDir`: if `e` is a directory failure, logs
/// `msg` with it, takes `log_dir` offline and, since it was the broker's
/// only log directory, halts. Returns false (and does nothing) otherwise.
pub fn maybe_add_offline_log_dir(log_dir: &Path, msg: &str, e: &io::Error) -> bool {
    maybe_add_with(log_dir, msg, e, halt_process)
}

fn maybe_add_with(log_dir: &Path, msg: &str, e: &io::Error, halt: Halt) -> bool {
    if !is_dir_failure(e) {
        return false;
    }
    tracing::error!(log_dir = %log_dir.display(), error = %e, "{msg}");
    let newly = OFFLINE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(log_dir.to_path_buf());
    if newly {
        tracing::warn!("Stopping serving logs in dir {}", log_dir.display());
        // One log directory per broker: it was the last one online.
        tracing::error!(
            "Shutdown broker because all log dirs in {} have failed",
            log_dir.display()
        );
        halt(1);
    }
    true
}

/// Kafka's `OfflineLogDirectoryCount` gauge for the broker whose log
/// directory is `log_dir`.
pub fn offline_log_directory_count(log_dir: &Path) -> usize {
    usize::from(
        OFFLINE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(log_dir),
    )
}

/// The log directory holding partition directory `partition_dir`.
pub fn log_dir_of(partition_dir: &Path) -> &Path {
    partition_dir.parent().unwrap_or(partition_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    static HALTED: AtomicI32 = AtomicI32::new(0);

    fn record_halt(status: i32) {
        HALTED.store(status, Ordering::SeqCst);
    }

    #[test]
    fn eio_takes_the_only_dir_offline_and_halts_but_a_full_disk_does_not() {
        let dir = Path::new("/nonexistent/kastle-log-dir-failure-test");
        let enospc = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(!maybe_add_with(dir, "append", &enospc, record_halt));
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert!(!maybe_add_with(dir, "append", &missing, record_halt));
        assert_eq!(offline_log_directory_count(dir), 0);
        assert_eq!(HALTED.load(Ordering::SeqCst), 0);

        let eio = io::Error::from_raw_os_error(libc::EIO);
        assert!(maybe_add_with(dir, "append", &eio, record_halt));
        assert_eq!(offline_log_directory_count(dir), 1);
        assert_eq!(HALTED.load(Ordering::SeqCst), 1);
        assert_eq!(offline_log_directory_count(Path::new("/elsewhere")), 0);
    }
}
