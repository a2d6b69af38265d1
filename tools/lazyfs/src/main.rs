//! kastle-lazyfs: a FUSE pass-through filesystem that loses unsynced data on
//! command, for kastle's simulated power-loss tests
//! (`compat-tests/test_power_loss.py`), in the manner of Jepsen's LazyFS.
//!
//! Usage: `kastle-lazyfs BACKING_DIR MOUNTPOINT` (runs in the foreground until
//! the mount is unmounted). Control: write a command to `MOUNTPOINT/.lazyfs-ctl`,
//! read the reply back from it:
//! - `crash` — power loss: every unsynced page and every metadata change whose
//!   directory was not fsynced is dropped; the mount then answers EIO until it
//!   is unmounted (remount to see the surviving state).
//! - `crash torn=SEED` — as `crash`, but some files (chosen by SEED) keep a
//!   random prefix of their unsynced pages, the last one possibly cut at a
//!   512-byte sector: a torn write. The same SEED makes the same choices for
//!   the same unsynced state.
//! - `stats` — counters and what is unsynced now.
//!
//! A clean unmount without `crash` makes everything durable (a clean shutdown).

mod fuse;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(backing), Some(mnt)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: kastle-lazyfs BACKING_DIR MOUNTPOINT");
        return ExitCode::from(2);
    };
    let backing = match std::fs::canonicalize(backing) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kastle-lazyfs: backing dir {backing}: {e}");
            return ExitCode::from(2);
        }
    };
    let state = match state::State::new(backing.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kastle-lazyfs: preparing {}: {e}", backing.display());
            return ExitCode::from(1);
        }
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("lazyfs".into()),
        fuser::MountOption::Subtype("lazyfs".into()),
    ];
    let fs = fuse::LazyFs::new(state);
    match fuser::mount(fs, PathBuf::from(mnt), &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "kastle-lazyfs: mounting {} at {mnt}: {e}",
                backing.display()
            );
            ExitCode::from(1)
        }
    }
}
