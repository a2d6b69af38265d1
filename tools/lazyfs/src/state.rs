//! The lazy model behind kastle-lazyfs: what a power loss would keep.
//!
//! The backing directory holds the *durable* state plus every metadata change
//! (create, mkdir, unlink, rmdir, rename) applied at once. Each metadata change
//! is recorded in an undo log with the directories it touches; it becomes
//! durable only when every one of those directories is fsynced (strict ext4
//! semantics: a file's fsync does not make its directory entry durable).
//! Unlinked entries are parked in a trash directory so that an undo can put
//! them back.
//!
//! File data never reaches the backing file before an fsync: writes go to an
//! in-memory overlay of dirty pages per inode (reads see them), size changes
//! (truncate, extend, fallocate) stay in the overlay's logical size.
//! `fsync`/`fdatasync` of a file applies its pages and size to the backing file.
//!
//! `crash` drops everything unsynced: dirty pages (or, with a seed, keeps a
//! seeded random prefix of some files' pages, the last one possibly cut at a
//! sector: a torn write) and every metadata change not made durable, undone
//! newest first. `shutdown` (a clean unmount) makes everything durable.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The overlay's page size (the kernel's).
pub const PAGE: u64 = 4096;
/// A torn page keeps whole sectors of the new data.
const SECTOR: u64 = 512;
/// Inode of the mount's root.
pub const ROOT_INO: u64 = 1;
/// Inode of the control file `/.lazyfs-ctl`.
pub const CTL_INO: u64 = 2;
/// Name of the control file in the mount's root.
pub const CTL_NAME: &str = ".lazyfs-ctl";
/// Name of the trash directory in the backing root (hidden from the mount).
pub const TRASH_NAME: &str = ".lazyfs-trash";

/// Splitmix64: a tiny, seeded, reproducible generator (no dependency).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..=n`.
    pub fn upto(&mut self, n: u64) -> u64 {
        if n == u64::MAX {
            return self.next();
        }
        self.next() % (n + 1)
    }
}

/// One inode the mount has handed out.
pub struct Node {
    /// Path relative to the backing root ("" for the root; in the trash once unlinked).
    pub path: PathBuf,
    pub is_dir: bool,
    /// Regular files: the backing file, opened on first use.
    file: Option<File>,
    /// Dirty pages by page index, each `PAGE` bytes.
    pages: BTreeMap<u64, Vec<u8>>,
    /// The size readers see.
    pub size: u64,
    /// Bytes of the backing file that are still the file's content (a shrink
    /// since the last fsync lowers it; beyond it reads are zeros).
    durable_len: u64,
    /// The size changed since the last fsync.
    size_dirty: bool,
}

impl Node {
    fn dirty(&self) -> bool {
        !self.pages.is_empty() || self.size_dirty
    }
}

/// How to take back one metadata change.
#[derive(Debug)]
enum Undo {
    /// A created entry (file or directory, with whatever it holds now).
    Remove(PathBuf),
    /// An entry moved away (unlink, rmdir, rename): move it back.
    Restore { from: PathBuf, to: PathBuf },
}

/// One metadata change not yet durable.
struct Op {
    what: String,
    /// Directories (inodes) still to be fsynced before the change is durable.
    pending_dirs: Vec<u64>,
    undo: Vec<Undo>,
    /// Trash entries to delete for good once the change is durable.
    trash: Vec<PathBuf>,
    /// rmdir: the removed directory's inode. Once this is durable the directory
    /// is gone, and so is whatever was still pending inside it.
    removes_dir: Option<u64>,
}

#[derive(Default)]
pub struct Stats {
    pub writes: u64,
    pub fsyncs: u64,
    pub fsyncdirs: u64,
    pub meta_ops: u64,
    pub crashes: u64,
    pub last_crash: String,
}

pub struct State {
    pub backing: PathBuf,
    pub nodes: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    next_ino: u64,
    ops: Vec<Op>,
    trash_seq: u64,
    /// After `crash`: every request but the control file's fails with EIO.
    pub crashed: bool,
    pub stats: Stats,
}

fn einval(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl State {
    /// Opens the model over `backing`, clearing a trash left by an unclean exit.
    pub fn new(backing: PathBuf) -> io::Result<State> {
        let trash = backing.join(TRASH_NAME);
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        fs::create_dir(&trash)?;
        let mut nodes = HashMap::new();
        nodes.insert(ROOT_INO, Node::new(PathBuf::new(), true, 0));
        let mut by_path = HashMap::new();
        by_path.insert(PathBuf::new(), ROOT_INO);
        Ok(State {
            backing,
            nodes,
            by_path,
            next_ino: CTL_INO + 1,
            ops: Vec::new(),
            trash_seq: 0,
            crashed: false,
            stats: Stats::default(),
        })
    }

    pub fn real(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.backing.clone()
        } else {
            self.backing.join(rel)
        }
    }

    pub fn node(&self, ino: u64) -> io::Result<&Node> {
        self.nodes
            .get(&ino)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn node_mut(&mut self, ino: u64) -> io::Result<&mut Node> {
        self.nodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    pub fn child_path(&self, parent: u64, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
        let p = self.node(parent)?;
        if !p.is_dir {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(p.path.join(name))
    }

    /// The inode of the backing entry at `rel` (which exists), made on first sight.
    pub fn ino_for(&mut self, rel: &Path, md: &fs::Metadata) -> u64 {
        if let Some(&ino) = self.by_path.get(rel) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes
            .insert(ino, Node::new(rel.to_path_buf(), md.is_dir(), md.len()));
        self.by_path.insert(rel.to_path_buf(), ino);
        ino
    }

    fn file(&mut self, ino: u64) -> io::Result<&File> {
        let real = self.real(&self.node(ino)?.path);
        let n = self.node_mut(ino)?;
        if n.file.is_none() {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&real)
                .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", real.display())))?;
            n.file = Some(f);
        }
        n.file
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))
    }

    /// Reads `len` bytes of the backing file at `off`, zeros past `durable_len`.
    fn read_backing(&mut self, ino: u64, off: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        let durable = self.node(ino)?.durable_len;
        if off >= durable {
            return Ok(());
        }
        let want = (durable - off).min(buf.len() as u64) as usize;
        let f = self.file(ino)?;
        let mut done = 0;
        while done < want {
            let n = f.read_at(&mut buf[done..want], off + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(())
    }

    pub fn read(&mut self, ino: u64, off: u64, size: u32) -> io::Result<Vec<u8>> {
        let fsize = self.node(ino)?.size;
        if off >= fsize {
            return Ok(Vec::new());
        }
        let len = (fsize - off).min(u64::from(size));
        let mut buf = vec![0u8; len as usize];
        self.read_backing(ino, off, &mut buf)?;
        let n = self.node(ino)?;
        let first = off / PAGE;
        let last = (off + len - 1) / PAGE;
        for (&idx, page) in n.pages.range(first..=last) {
            let pstart = idx * PAGE;
            let from = pstart.max(off);
            let to = (pstart + PAGE).min(off + len);
            buf[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&page[(from - pstart) as usize..(to - pstart) as usize]);
        }
        Ok(buf)
    }

    fn page_mut(&mut self, ino: u64, idx: u64) -> io::Result<&mut Vec<u8>> {
        if !self.node(ino)?.pages.contains_key(&idx) {
            let mut page = vec![0u8; PAGE as usize];
            self.read_backing(ino, idx * PAGE, &mut page)?;
            self.node_mut(ino)?.pages.insert(idx, page);
        }
        self.node_mut(ino)?
            .pages
            .get_mut(&idx)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))
    }

    pub fn write(&mut self, ino: u64, off: u64, data: &[u8]) -> io::Result<()> {
        self.stats.writes += 1;
        let end = off
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFBIG))?;
        let mut pos = off;
        while pos < end {
            let idx = pos / PAGE;
            let pstart = idx * PAGE;
            let to = (pstart + PAGE).min(end);
            let page = self.page_mut(ino, idx)?;
            page[(pos - pstart) as usize..(to - pstart) as usize]
                .copy_from_slice(&data[(pos - off) as usize..(to - off) as usize]);
            pos = to;
        }
        let n = self.node_mut(ino)?;
        if end > n.size {
            n.size = end;
            n.size_dirty = true;
        }
        Ok(())
    }

    /// truncate/ftruncate: the new size lives in the overlay until fsync.
    pub fn set_size(&mut self, ino: u64, size: u64) -> io::Result<()> {
        let n = self.node_mut(ino)?;
        if size == n.size {
            return Ok(());
        }
        n.size_dirty = true;
        if size < n.size {
            n.durable_len = n.durable_len.min(size);
            let keep = size.div_ceil(PAGE);
            n.pages.retain(|&idx, _| idx < keep);
            if !size.is_multiple_of(PAGE) {
                if let Some(p) = n.pages.get_mut(&(size / PAGE)) {
                    p[(size % PAGE) as usize..].fill(0);
                }
            }
        }
        n.size = size;
        Ok(())
    }

    /// fsync/fdatasync of a file: its pages and size reach the backing file.
    pub fn sync_file(&mut self, ino: u64) -> io::Result<()> {
        self.stats.fsyncs += 1;
        if ino == CTL_INO || self.node(ino)?.is_dir || !self.node(ino)?.dirty() {
            return Ok(());
        }
        let (size, durable) = {
            let n = self.node(ino)?;
            (n.size, n.durable_len)
        };
        let pages = std::mem::take(&mut self.node_mut(ino)?.pages);
        let f = self.file(ino)?;
        if f.metadata()?.len() > durable {
            f.set_len(durable)?;
        }
        f.set_len(size)?;
        for (idx, page) in &pages {
            let start = idx * PAGE;
            if start >= size {
                continue;
            }
            let n = (size - start).min(PAGE) as usize;
            f.write_all_at(&page[..n], start)?;
        }
        let n = self.node_mut(ino)?;
        n.durable_len = size;
        n.size_dirty = false;
        Ok(())
    }

    /// fsync of a directory: the metadata changes touching it become durable
    /// once all their directories are synced.
    pub fn sync_dir(&mut self, ino: u64) -> io::Result<()> {
        self.stats.fsyncdirs += 1;
        let mut durable_trash = Vec::new();
        let mut synced = vec![ino];
        while let Some(dir) = synced.pop() {
            for op in &mut self.ops {
                let before = op.pending_dirs.len();
                op.pending_dirs.retain(|&d| d != dir);
                if before > 0 && op.pending_dirs.is_empty() {
                    durable_trash.append(&mut op.trash);
                    synced.extend(op.removes_dir);
                }
            }
            self.ops.retain(|op| !op.pending_dirs.is_empty());
        }
        for t in durable_trash {
            let real = self.real(&t);
            let _ = if real.is_dir() {
                fs::remove_dir_all(&real)
            } else {
                fs::remove_file(&real)
            };
        }
        Ok(())
    }

    fn record(&mut self, what: String, mut dirs: Vec<u64>, undo: Vec<Undo>, trash: Vec<PathBuf>) {
        self.stats.meta_ops += 1;
        dirs.dedup();
        self.ops.push(Op {
            what,
            pending_dirs: dirs,
            undo,
            trash,
            removes_dir: None,
        });
    }

    /// A file or directory was created at `rel` (already in the backing dir).
    pub fn created(&mut self, parent: u64, rel: &Path) {
        self.record(
            format!("create {}", rel.display()),
            vec![parent],
            vec![Undo::Remove(rel.to_path_buf())],
            Vec::new(),
        );
    }

    fn trash_path(&mut self) -> PathBuf {
        self.trash_seq += 1;
        Path::new(TRASH_NAME).join(self.trash_seq.to_string())
    }

    /// Moves the inode at `from` (and, for a directory, everything under it) to `to` in the maps.
    fn repath(&mut self, from: &Path, to: &Path) {
        let moved: Vec<(PathBuf, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        for (p, ino) in moved {
            self.by_path.remove(&p);
            let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
            let np = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.path = np.clone();
            }
            // Entries in the trash are not reachable by name.
            if !np.starts_with(TRASH_NAME) {
                self.by_path.insert(np, ino);
            }
        }
    }

    /// unlink/rmdir: the entry goes to the trash, from where an undo restores it.
    pub fn remove(&mut self, parent: u64, rel: &Path, dir: bool) -> io::Result<()> {
        let real = self.real(rel);
        let md = fs::symlink_metadata(&real)?;
        if dir && !md.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        if !dir && md.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if dir && fs::read_dir(&real)?.next().is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
        }
        let removed = self.by_path.get(rel).copied();
        let t = self.trash_path();
        fs::rename(&real, self.real(&t))?;
        self.repath(rel, &t);
        self.record(
            format!("{} {}", if dir { "rmdir" } else { "unlink" }, rel.display()),
            vec![parent],
            vec![Undo::Restore {
                from: t.clone(),
                to: rel.to_path_buf(),
            }],
            vec![t],
        );
        if let (true, Some(op)) = (dir, self.ops.last_mut()) {
            op.removes_dir = removed;
        }
        Ok(())
    }

    pub fn rename(
        &mut self,
        parent: u64,
        from: &Path,
        newparent: u64,
        to: &Path,
        noreplace: bool,
    ) -> io::Result<()> {
        let src = self.real(from);
        let dst = self.real(to);
        let smd = fs::symlink_metadata(&src)?;
        let mut undo = Vec::new();
        let mut trash = Vec::new();
        let replaced = match fs::symlink_metadata(&dst) {
            Ok(dmd) => {
                if noreplace {
                    return Err(io::Error::from_raw_os_error(libc::EEXIST));
                }
                if smd.is_dir() != dmd.is_dir() {
                    return Err(io::Error::from_raw_os_error(if dmd.is_dir() {
                        libc::EISDIR
                    } else {
                        libc::ENOTDIR
                    }));
                }
                if dmd.is_dir() && fs::read_dir(&dst)?.next().is_some() {
                    return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
                }
                let t = self.trash_path();
                fs::rename(&dst, self.real(&t))?;
                self.repath(to, &t);
                trash.push(t.clone());
                Some(t)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Err(e) = fs::rename(&src, &dst) {
            if let Some(t) = &replaced {
                let _ = fs::rename(self.real(t), &dst);
                self.repath(t, to);
            }
            return Err(e);
        }
        self.repath(from, to);
        undo.push(Undo::Restore {
            from: to.to_path_buf(),
            to: from.to_path_buf(),
        });
        if let Some(t) = replaced {
            undo.push(Undo::Restore {
                from: t,
                to: to.to_path_buf(),
            });
        }
        self.record(
            format!("rename {} -> {}", from.display(), to.display()),
            vec![parent, newparent],
            undo,
            trash,
        );
        Ok(())
    }

    pub fn dirty_summary(&self) -> (usize, u64, usize) {
        let files = self.nodes.values().filter(|n| n.dirty()).count();
        let pages = self.nodes.values().map(|n| n.pages.len() as u64).sum();
        (files, pages, self.ops.len())
    }

    pub fn stats_text(&self) -> String {
        let (files, pages, ops) = self.dirty_summary();
        let s = &self.stats;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "writes={} fsyncs={} fsyncdirs={} meta_ops={} dirty_files={files} dirty_pages={pages} \
             pending_meta_ops={ops} crashes={} crashed={}",
            s.writes, s.fsyncs, s.fsyncdirs, s.meta_ops, s.crashes, self.crashed
        );
        if !s.last_crash.is_empty() {
            let _ = writeln!(out, "last crash: {}", s.last_crash);
        }
        out
    }

    /// Power loss. `torn`: a seed; then some files keep a random prefix of
    /// their unsynced pages (the last one possibly cut at a sector boundary).
    pub fn crash(&mut self, torn: Option<u64>) -> String {
        self.stats.crashes += 1;
        let mut report = String::new();
        let mut dropped_pages = 0u64;
        let mut torn_pages = 0u64;
        let mut errors = Vec::new();
        // Data first, through the open descriptors (paths change below).
        let mut inos: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.dirty())
            .map(|(&i, _)| i)
            .collect();
        inos.sort_by(|a, b| {
            let pa = self.nodes.get(a).map(|n| n.path.clone());
            let pb = self.nodes.get(b).map(|n| n.path.clone());
            pa.cmp(&pb)
        });
        let mut rng = torn.map(Rng::new);
        for ino in inos {
            let Some(n) = self.nodes.get_mut(&ino) else {
                continue;
            };
            let pages = std::mem::take(&mut n.pages);
            let (size, path) = (n.size, n.path.clone());
            n.size_dirty = false;
            let total = pages.len() as u64;
            // A fair coin per file: torn (a random prefix kept) or dropped whole.
            let keep = rng
                .as_mut()
                .filter(|_| total > 0)
                .map(|r| if r.next() & 1 == 0 { r.upto(total) } else { 0 })
                .unwrap_or(0);
            dropped_pages += total - keep;
            if keep > 0 {
                let cut_last = rng.as_mut().map(|r| r.upto(PAGE / SECTOR)).unwrap_or(0);
                torn_pages += keep;
                let _ = write!(report, " torn {}:{keep}/{total}pages", path.display());
                let kept: Vec<(u64, Vec<u8>)> = pages.into_iter().take(keep as usize).collect();
                let f = match self.file(ino) {
                    Ok(f) => f,
                    Err(e) => {
                        errors.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                for (k, (idx, page)) in kept.iter().enumerate() {
                    let start = idx * PAGE;
                    if start >= size {
                        continue;
                    }
                    let mut n = (size - start).min(PAGE) as usize;
                    if k + 1 == kept.len() && cut_last > 0 {
                        n = n.min((cut_last * SECTOR) as usize);
                    }
                    if let Err(e) = f.write_all_at(&page[..n], start) {
                        errors.push(format!("{}: {e}", path.display()));
                    }
                }
            }
        }
        // Then metadata, newest first.
        let ops = std::mem::take(&mut self.ops);
        let undone = ops.len();
        for op in ops.iter().rev() {
            for u in &op.undo {
                let r = match u {
                    Undo::Remove(p) => {
                        let real = self.real(p);
                        match fs::symlink_metadata(&real) {
                            Ok(md) if md.is_dir() => fs::remove_dir_all(&real),
                            Ok(_) => fs::remove_file(&real),
                            Err(e) => Err(e),
                        }
                    }
                    Undo::Restore { from, to } => fs::rename(self.real(from), self.real(to)),
                };
                if let Err(e) = r {
                    errors.push(format!("undo {:?} of '{}': {e}", u, op.what));
                }
            }
            let _ = writeln!(report);
            let _ = write!(report, "  undone: {}", op.what);
        }
        let trash = self.backing.join(TRASH_NAME);
        if let Err(e) = fs::remove_dir_all(&trash).and_then(|()| fs::create_dir(&trash)) {
            errors.push(format!("clearing {}: {e}", trash.display()));
        }
        self.crashed = true;
        for n in self.nodes.values_mut() {
            n.file = None;
        }
        let head = format!(
            "seed={} dropped_pages={dropped_pages} torn_pages_kept={torn_pages} meta_ops_undone={undone} errors={}",
            torn.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
            errors.len()
        );
        let mut out = head;
        for e in &errors {
            let _ = write!(out, "\n  error: {e}");
        }
        out.push_str(&report);
        self.stats.last_crash = out.clone();
        out
    }

    /// A clean unmount (no crash before it): everything becomes durable.
    pub fn shutdown(&mut self) {
        if self.crashed {
            return;
        }
        let inos: Vec<u64> = self.nodes.keys().copied().collect();
        for ino in inos {
            if let Err(e) = self.sync_file(ino) {
                eprintln!("kastle-lazyfs: syncing inode {ino} at unmount: {e}");
            }
        }
        let dirs: Vec<u64> = self
            .ops
            .iter()
            .flat_map(|o| o.pending_dirs.clone())
            .collect();
        for d in dirs {
            let _ = self.sync_dir(d);
        }
        let _ = fs::remove_dir_all(self.backing.join(TRASH_NAME));
    }

    /// Parses and runs one control command; the reply text.
    pub fn control(&mut self, cmd: &str) -> io::Result<String> {
        let mut words = cmd.split_whitespace();
        match words.next() {
            Some("crash") => {
                let mut torn = None;
                for w in words {
                    match w.strip_prefix("torn=") {
                        Some(s) => {
                            torn =
                                Some(s.parse::<u64>().map_err(|e| {
                                    einval(format!("crash: bad torn seed {s:?}: {e}"))
                                })?)
                        }
                        None => return Err(einval(format!("crash: unknown argument {w:?}"))),
                    }
                }
                if self.crashed {
                    return Err(einval("already crashed".into()));
                }
                Ok(self.crash(torn))
            }
            Some("stats") | None => Ok(self.stats_text()),
            Some(other) => Err(einval(format!("unknown command {other:?}"))),
        }
    }
}

impl Node {
    fn new(path: PathBuf, is_dir: bool, len: u64) -> Node {
        Node {
            path,
            is_dir,
            file: None,
            pages: BTreeMap::new(),
            size: len,
            durable_len: len,
            size_dirty: false,
        }
    }
}
