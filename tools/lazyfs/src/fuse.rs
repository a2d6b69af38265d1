//! The FUSE side of kastle-lazyfs: turns kernel requests into calls on the
//! lazy model (`state.rs`), and serves the control file `/.lazyfs-ctl`
//! (write a command, read the last reply).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::state::{State, CTL_INO, CTL_NAME, ROOT_INO, TRASH_NAME};

/// Attribute and entry cache time: the mount is the only writer.
const TTL: Duration = Duration::from_secs(1);

pub struct LazyFs {
    state: Mutex<State>,
    /// The control file's last reply (what a read returns).
    ctl_reply: Mutex<String>,
}

fn errno(e: &io::Error) -> Errno {
    match e.raw_os_error() {
        Some(c) if c > 0 => Errno::from_i32(c),
        _ => match e.kind() {
            io::ErrorKind::NotFound => Errno::ENOENT,
            io::ErrorKind::InvalidInput => Errno::EINVAL,
            _ => Errno::EIO,
        },
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH
    }
}

fn kind_of(md: &fs::Metadata) -> FileType {
    FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile)
}

fn attr_of(ino: u64, md: &fs::Metadata, size: u64) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time(md.atime(), md.atime_nsec()),
        mtime: time(md.mtime(), md.mtime_nsec()),
        ctime: time(md.ctime(), md.ctime_nsec()),
        crtime: time(md.ctime(), md.ctime_nsec()),
        kind: kind_of(md),
        perm: (md.mode() & 0o7777) as u16,
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

fn ctl_attr(len: u64) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(CTL_INO),
        size: len,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind: FileType::RegularFile,
        perm: 0o600,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl LazyFs {
    pub fn new(state: State) -> LazyFs {
        LazyFs {
            state: Mutex::new(state),
            ctl_reply: Mutex::new(String::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, unless a crash has frozen the mount.
    fn live(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let s = self.lock();
        if s.crashed {
            return Err(Errno::EIO);
        }
        Ok(s)
    }

    fn getattr_of(s: &mut State, ino: u64) -> io::Result<FileAttr> {
        if ino == CTL_INO {
            return Ok(ctl_attr(0));
        }
        let n = s.node(ino)?;
        let real = s.real(&n.path);
        let size = n.size;
        let is_dir = n.is_dir;
        let md = fs::symlink_metadata(&real)?;
        Ok(attr_of(ino, &md, if is_dir { md.len() } else { size }))
    }

    /// Looks up (and counts) the entry at `parent/name`.
    fn entry(s: &mut State, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        if parent == ROOT_INO && name == CTL_NAME {
            return Ok(ctl_attr(0));
        }
        if parent == ROOT_INO && name == TRASH_NAME {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let rel = s.child_path(parent, name)?;
        let md = fs::symlink_metadata(s.real(&rel))?;
        let ino = s.ino_for(&rel, &md);
        Self::getattr_of(s, ino)
    }

    fn ctl_write(&self, data: &[u8]) -> Result<(), Errno> {
        let cmd = String::from_utf8_lossy(data).trim().to_string();
        let mut s = self.lock();
        let reply = s.control(&cmd);
        drop(s);
        let mut out = self.ctl_reply.lock().unwrap_or_else(|p| p.into_inner());
        match reply {
            Ok(text) => {
                eprintln!("kastle-lazyfs: {cmd}: {text}");
                *out = text;
                Ok(())
            }
            Err(e) => {
                eprintln!("kastle-lazyfs: {cmd}: {e}");
                *out = format!("error: {e}\n");
                Err(Errno::EINVAL)
            }
        }
    }
}

macro_rules! tri {
    ($reply:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                $reply.error(e);
                return;
            }
        }
    };
}

macro_rules! io {
    ($reply:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                $reply.error(errno(&e));
                return;
            }
        }
    };
}

impl Filesystem for LazyFs {
    fn destroy(&mut self) {
        self.lock().shutdown();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == ROOT_INO && name == CTL_NAME {
            reply.entry(&Duration::ZERO, &ctl_attr(0), Generation(0));
            return;
        }
        let mut s = tri!(reply, self.live());
        let attr = io!(reply, Self::entry(&mut s, parent.0, name));
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino.0 == CTL_INO {
            reply.attr(&Duration::ZERO, &ctl_attr(0));
            return;
        }
        let mut s = tri!(reply, self.live());
        let attr = io!(reply, Self::getattr_of(&mut s, ino.0));
        reply.attr(&TTL, &attr);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if ino.0 == CTL_INO {
            reply.attr(&Duration::ZERO, &ctl_attr(0));
            return;
        }
        let mut s = tri!(reply, self.live());
        let real = io!(reply, s.node(ino.0).map(|n| s.real(&n.path)));
        if let Some(size) = size {
            io!(reply, s.set_size(ino.0, size));
        }
        if let Some(mode) = mode {
            io!(
                reply,
                fs::set_permissions(&real, fs::Permissions::from_mode(mode & 0o7777))
            );
        }
        if uid.is_some() || gid.is_some() {
            io!(reply, std::os::unix::fs::lchown(&real, uid, gid));
        }
        if let Some(t) = mtime {
            let t = match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            if let Ok(f) = fs::File::options().write(true).open(&real) {
                let _ = f.set_modified(t);
            }
        }
        let attr = io!(reply, Self::getattr_of(&mut s, ino.0));
        reply.attr(&TTL, &attr);
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(Errno::EPERM);
            return;
        }
        let mut s = tri!(reply, self.live());
        let rel = io!(reply, s.child_path(parent.0, name));
        io!(
            reply,
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o7777 & !umask)
                .open(s.real(&rel))
        );
        s.created(parent.0, &rel);
        let attr = io!(reply, Self::entry(&mut s, parent.0, name));
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut s = tri!(reply, self.live());
        let rel = io!(reply, s.child_path(parent.0, name));
        io!(
            reply,
            fs::DirBuilder::new()
                .mode(mode & 0o7777 & !umask)
                .create(s.real(&rel))
        );
        s.created(parent.0, &rel);
        let attr = io!(reply, Self::entry(&mut s, parent.0, name));
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = tri!(reply, self.live());
        let rel = io!(reply, s.child_path(parent.0, name));
        io!(reply, s.remove(parent.0, &rel, false));
        reply.ok();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = tri!(reply, self.live());
        let rel = io!(reply, s.child_path(parent.0, name));
        io!(reply, s.remove(parent.0, &rel, true));
        reply.ok();
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let bits = flags.bits();
        if bits & !libc::RENAME_NOREPLACE != 0 {
            reply.error(Errno::EINVAL);
            return;
        }
        let mut s = tri!(reply, self.live());
        let from = io!(reply, s.child_path(parent.0, name));
        let to = io!(reply, s.child_path(newparent.0, newname));
        io!(
            reply,
            s.rename(
                parent.0,
                &from,
                newparent.0,
                &to,
                bits & libc::RENAME_NOREPLACE != 0
            )
        );
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == CTL_INO {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
            return;
        }
        let s = tri!(reply, self.live());
        io!(reply, s.node(ino.0));
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if ino.0 == CTL_INO {
            let text = self
                .ctl_reply
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let text = if text.is_empty() {
                self.lock().stats_text()
            } else {
                text
            };
            let b = text.as_bytes();
            let from = (offset as usize).min(b.len());
            let to = from.saturating_add(size as usize).min(b.len());
            reply.data(&b[from..to]);
            return;
        }
        let mut s = tri!(reply, self.live());
        let data = io!(reply, s.read(ino.0, offset, size));
        reply.data(&data);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if ino.0 == CTL_INO {
            tri!(reply, self.ctl_write(data));
            reply.written(data.len() as u32);
            return;
        }
        let mut s = tri!(reply, self.live());
        io!(reply, s.write(ino.0, offset, data));
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut s = tri!(reply, self.live());
        io!(reply, s.sync_file(ino.0));
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let s = tri!(reply, self.live());
        let n = io!(reply, s.node(ino.0));
        if !n.is_dir {
            reply.error(Errno::ENOTDIR);
            return;
        }
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut s = tri!(reply, self.live());
        let dir = io!(reply, s.node(ino.0).map(|n| n.path.clone()));
        let real = s.real(&dir);
        let rd = io!(reply, fs::read_dir(&real));
        let mut entries: Vec<(u64, FileType, std::ffi::OsString)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (ROOT_INO, FileType::Directory, "..".into()),
        ];
        let mut names: Vec<(std::ffi::OsString, fs::Metadata)> = Vec::new();
        for e in rd {
            let e = io!(reply, e);
            let name = e.file_name();
            if ino.0 == ROOT_INO && name == TRASH_NAME {
                continue;
            }
            let md = io!(reply, e.metadata());
            names.push((name, md));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, md) in names {
            let rel = dir.join(&name);
            let child = s.ino_for(&rel, &md);
            entries.push((child, kind_of(&md), name));
        }
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut s = tri!(reply, self.live());
        io!(reply, s.sync_dir(ino.0));
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = tri!(reply, self.live());
        let path = match std::ffi::CString::new(s.backing.as_os_str().as_encoded_bytes()) {
            Ok(p) => p,
            Err(_) => {
                reply.error(Errno::EINVAL);
                return;
            }
        };
        // SAFETY: statvfs is a plain C struct; all-zero bytes are a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a zeroed out-struct of the right type.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            reply.error(errno(&io::Error::last_os_error()));
            return;
        }
        reply.statfs(
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
            st.f_files,
            st.f_ffree,
            st.f_bsize as u32,
            st.f_namemax as u32,
            st.f_frsize as u32,
        );
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = tri!(reply, self.live());
        let rel = io!(reply, s.child_path(parent.0, name));
        io!(
            reply,
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o7777 & !umask)
                .open(s.real(&rel))
        );
        s.created(parent.0, &rel);
        let attr = io!(reply, Self::entry(&mut s, parent.0, name));
        reply.created(
            &TTL,
            &attr,
            Generation(0),
            FileHandle(0),
            FopenFlags::empty(),
        );
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut s = tri!(reply, self.live());
        let size = io!(reply, s.node(ino.0).map(|n| n.size));
        match mode {
            0 => {
                let end = offset.saturating_add(length);
                if end > size {
                    io!(reply, s.set_size(ino.0, end));
                }
                reply.ok();
            }
            libc::FALLOC_FL_KEEP_SIZE => reply.ok(),
            _ => reply.error(Errno::EOPNOTSUPP),
        }
    }
}
