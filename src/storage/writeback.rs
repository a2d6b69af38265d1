//! Starting the kernel's write-back of a segment's dirty pages
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a roll's fsync finds
//! little left to write. Advisory: a failure only means the next fsync has
//! more to do.
//!
//! `KASTLE_WRITEBACK=off`, a benchmark switch read once per process, leaves
//! write-back to the kernel's own flusher (BENCHMARKS.md, "Write-back on
//! the append path"); anything else starts it on the appending thread.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KASTLE_WRITEBACK").as_deref() != Ok("off"))
}

/// Starts write-back of `len` bytes of `file` from `from`.
pub fn start(file: &File, from: u64, len: u64) {
    if !enabled() {
        return;
    }
    // SAFETY: a valid descriptor and a byte range.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off_t,
            len as libc::off_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "sync_file_range");
    }
}
