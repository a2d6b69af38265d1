//! Crash-safe file replacement: after a crash at any point either the old or
//! the new content is found under the name, never a torn mix, and a rename
//! that was reported done survives power loss (its directory is fsynced).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Fsyncs a directory, making the creations, renames and removals of entries
/// in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `contents`: written and fsynced under a temporary
/// name beside it (`<path>.tmp`), renamed over `path`, then the directory is
/// fsynced.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    {
        let mut f = File::create(tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(tmp, path)?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.properties");
        write_atomically(&p, b"a=1\nb=2\n").unwrap();
        write_atomically(&p, b"a=3\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"a=3\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.properties")]);
    }
}
