//! What each FUSE request does to the filesystem underneath, in terms of nodes, names
//! and handles; `server` adapts them to fuser's callbacks and replies.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fuser::{
    FileAttr, Generation, INodeNo, OpenAccMode, OpenFlags, RenameFlags, ReplyDirectory,
    ReplyDirectoryPlus, Request, TimeOrNow,
};
use parking_lot::Mutex;
use vfs_core::{
    write_all_at, Capabilities, DirEntry, ErrorKind, FileHandle, FileKind, FileSystem, Metadata,
    MountTable, OpenOptions, Result, VfsError, VfsPath, XattrMode,
};

use crate::acl;
use crate::attr::{file_attr, file_type, node_kind, set_time};
use crate::nodes::{NodeKey, NodeTable, Seen, SINGLE_SCOPE, VIRTUAL_SCOPE};

const S_ISGID: u32 = 0o2000;
const S_ISUID: u32 = 0o4000;
/// Entries a `readdirplus` reply stats at once; about what one reply page holds.
const READDIR_BATCH: usize = 16;

/// The settings the handlers need.
pub(crate) struct Settings {
    pub(crate) attr_ttl: Duration,
    pub(crate) entry_ttl: Duration,
    pub(crate) max_write: u32,
    pub(crate) remembered_inodes: usize,
}

/// One open file.
pub(crate) struct OpenFile {
    node: u64,
    pub(crate) handle: Box<dyn FileHandle>,
}

/// One open directory: its listing, taken at `opendir` so offsets stay stable.
pub(crate) struct OpenDir {
    entries: Vec<DirEntry>,
}

/// What an entry reply carries: the attributes (their `ino` is the node id) and the
/// node's generation.
pub(crate) struct Entry {
    pub(crate) attr: FileAttr,
    pub(crate) generation: Generation,
}

/// Who made a request.
#[derive(Clone, Copy)]
pub(crate) struct Caller {
    uid: u32,
    gid: u32,
}

impl Caller {
    pub(crate) fn of(req: &Request) -> Caller {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
        }
    }
}

/// The state every handler task shares.
pub(crate) struct Inner {
    pub(crate) fs: Arc<dyn FileSystem>,
    table: Option<Arc<MountTable>>,
    pub(crate) nodes: Mutex<NodeTable>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    pub(crate) dirs: Mutex<HashMap<u64, Arc<OpenDir>>>,
    next_handle: AtomicU64,
    pub(crate) settings: Settings,
}

impl Inner {
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        table: Option<Arc<MountTable>>,
        settings: Settings,
    ) -> Inner {
        Inner {
            fs,
            table,
            nodes: Mutex::new(NodeTable::new(settings.remembered_inodes)),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            settings,
        }
    }

    pub(crate) fn path(&self, node: u64) -> Result<VfsPath> {
        self.nodes.lock().path_of(node)
    }

    pub(crate) fn child(&self, parent: u64, name: &OsStr) -> Result<VfsPath> {
        self.path(parent)?.join(utf8(name)?)
    }

    /// The scope inode numbers at `path` are unique in: its mount.
    pub(crate) fn scope(&self, path: &VfsPath) -> u64 {
        match &self.table {
            None => SINGLE_SCOPE,
            Some(table) => table
                .mount_of(path)
                .map_or(VIRTUAL_SCOPE, |mount| mount.mount_id.0),
        }
    }

    pub(crate) fn capabilities(&self, path: &VfsPath) -> Capabilities {
        match &self.table {
            None => self.fs.capabilities(),
            Some(table) => table.capabilities_at(path).unwrap_or_default(),
        }
    }

    /// Registers `name` in `parent` (at `path`, with `meta`) as an entry the kernel will
    /// count a lookup of, and returns what to answer.
    pub(crate) fn entry(&self, parent: u64, name: &str, path: &VfsPath, meta: &Metadata) -> Entry {
        let key = (meta.ino != 0).then(|| NodeKey {
            scope: self.scope(path),
            ino: meta.ino,
        });
        let seen = Seen {
            kind: meta.kind,
            btime: meta.btime,
            nlink: meta.nlink,
        };
        let (node, generation) = self.nodes.lock().remember(parent, name, key, seen);
        Entry {
            attr: file_attr(node, meta),
            generation: Generation(generation),
        }
    }

    pub(crate) fn file(&self, fh: u64) -> Result<Arc<OpenFile>> {
        self.files
            .lock()
            .get(&fh)
            .cloned()
            .ok_or_else(|| VfsError::new(ErrorKind::BadHandle, "read"))
    }

    pub(crate) fn any_open_file(&self, node: u64) -> Option<Arc<OpenFile>> {
        self.files
            .lock()
            .values()
            .find(|open| open.node == node)
            .cloned()
    }

    pub(crate) fn add_handle<T>(&self, map: &Mutex<HashMap<u64, Arc<T>>>, value: T) -> u64 {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        map.lock().insert(fh, Arc::new(value));
        fh
    }

    /// The attributes of `node`, through the open handle `fh` if given, else by path
    /// (an unlinked file still open answers through any of its handles).
    pub(crate) async fn getattr(&self, node: u64, fh: Option<u64>) -> Result<FileAttr> {
        if let Some(open) = fh.and_then(|fh| self.file(fh).ok()) {
            return Ok(file_attr(node, &open.handle.stat().await?));
        }
        match self.path(node) {
            Ok(path) => Ok(file_attr(node, &self.fs.lstat(&path).await?)),
            Err(err) => match self.any_open_file(node) {
                Some(open) => Ok(file_attr(node, &open.handle.stat().await?)),
                None => Err(err),
            },
        }
    }

    pub(crate) async fn lookup(&self, parent: u64, name: &OsStr) -> Result<Entry> {
        let path = self.child(parent, name)?;
        let meta = self.fs.lstat(&path).await?;
        Ok(self.entry(parent, utf8(name)?, &path, &meta))
    }

    /// Makes a just-created entry belong to the caller, with the group of a setgid
    /// parent directory (whose driver passed on the setgid bit to subdirectories), as
    /// Linux's `inode_init_owner`, and returns its metadata.
    pub(crate) async fn settle_owner(&self, caller: Caller, path: &VfsPath) -> Result<Metadata> {
        let meta = self.fs.lstat(path).await?;
        if meta.uid == caller.uid && meta.gid == caller.gid {
            return Ok(meta);
        }
        if !self.capabilities(path).ownership {
            return Ok(meta);
        }
        let parent = path.parent().unwrap_or_else(VfsPath::root);
        let parent_meta = self.fs.stat(&parent).await?;
        let gid = if parent_meta.mode & S_ISGID != 0 {
            parent_meta.gid
        } else {
            caller.gid
        };
        if meta.uid == caller.uid && meta.gid == gid {
            return Ok(meta);
        }
        self.fs
            .set_owner_nofollow(path, Some(caller.uid), Some(gid))
            .await?;
        if meta.mode & (S_ISUID | S_ISGID) != 0 && !meta.is_symlink() {
            // chown clears setuid/setgid; a new file keeps the bits it was created with.
            self.fs.set_permissions(path, meta.mode).await?;
        }
        self.fs.lstat(path).await
    }

    pub(crate) async fn created(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        path: &VfsPath,
    ) -> Result<Entry> {
        let meta = self.settle_owner(caller, path).await?;
        Ok(self.entry(parent, utf8(name)?, path, &meta))
    }

    pub(crate) async fn mkdir(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Entry> {
        let path = self.child(parent, name)?;
        self.fs.create_dir(&path, mode & !umask & 0o7777).await?;
        self.created(caller, parent, name, &path).await
    }

    pub(crate) async fn mknod(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<Entry> {
        let path = self.child(parent, name)?;
        let kind = node_kind(mode).ok_or_else(|| invalid("mknod", &path))?;
        if kind == FileKind::Directory || kind == FileKind::Symlink {
            return Err(invalid("mknod", &path));
        }
        self.fs
            .make_node(&path, kind, mode & !umask & 0o7777, u64::from(rdev))
            .await?;
        self.created(caller, parent, name, &path).await
    }

    pub(crate) async fn symlink(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        target: &Path,
    ) -> Result<Entry> {
        let path = self.child(parent, name)?;
        let target = target
            .to_str()
            .ok_or_else(|| invalid("symlink", &path).with_detail("target is not UTF-8"))?;
        self.fs.symlink(target, &path).await?;
        self.created(caller, parent, name, &path).await
    }

    pub(crate) async fn link(&self, node: u64, new_parent: u64, new_name: &OsStr) -> Result<Entry> {
        let existing = self.path(node)?;
        let new = self.child(new_parent, new_name)?;
        self.fs.hard_link(&existing, &new).await?;
        let meta = self.fs.lstat(&new).await?;
        Ok(self.entry(new_parent, utf8(new_name)?, &new, &meta))
    }

    pub(crate) async fn unlink(&self, parent: u64, name: &OsStr, dir: bool) -> Result<()> {
        let path = self.child(parent, name)?;
        let name = utf8(name)?;
        let dying = self.nodes.lock().removing(parent, name);
        let result = if dir {
            self.fs.remove_dir(&path).await
        } else {
            self.fs.remove_file(&path).await
        };
        let mut nodes = self.nodes.lock();
        if result.is_ok() {
            nodes.removed(parent, name);
        }
        nodes.removal_done(dying);
        result
    }

    pub(crate) async fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<()> {
        let from = self.child(parent, name)?;
        let to = self.child(new_parent, new_name)?;
        if !(RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE).contains(flags) {
            return Err(invalid("rename", &from).with_detail("unsupported rename flags"));
        }
        let flags = vfs_core::RenameFlags {
            no_replace: flags.contains(RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(RenameFlags::RENAME_EXCHANGE),
        };
        let (name, new_name) = (utf8(name)?, utf8(new_name)?);
        // What the rename replaces dies with it (an exchange keeps both).
        let dying = if flags.exchange {
            None
        } else {
            self.nodes.lock().removing(new_parent, new_name)
        };
        let result = self.fs.rename_with(&from, &to, flags).await;
        let mut nodes = self.nodes.lock();
        if result.is_ok() {
            if !flags.exchange {
                nodes.removed(new_parent, new_name);
            }
            nodes.rename(parent, name, new_parent, new_name, flags.exchange);
        }
        nodes.removal_done(dying);
        result
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn setattr(
        &self,
        node: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Result<FileAttr> {
        let open = fh.and_then(|fh| self.file(fh).ok());
        let by_path = mode.is_some()
            || uid.is_some()
            || gid.is_some()
            || atime.is_some()
            || mtime.is_some()
            || (size.is_some() && open.is_none());
        let path = match (self.path(node), &open) {
            (Ok(path), _) => Some(path),
            // An unlinked file still open: only what its handle can do.
            (Err(_), Some(_)) if !by_path => None,
            (Err(err), _) => return Err(err),
        };
        let named = || {
            path.as_ref()
                .ok_or_else(|| VfsError::new(ErrorKind::NotFound, "setattr"))
        };
        if let Some(size) = size {
            match &open {
                Some(open) => open.handle.set_len(size).await?,
                None => self.fs.truncate(named()?, size).await?,
            }
        }
        if let Some(mode) = mode {
            self.fs.set_permissions(named()?, mode & 0o7777).await?;
        }
        if uid.is_some() || gid.is_some() {
            self.fs.set_owner_nofollow(named()?, uid, gid).await?;
        }
        if atime.is_some() || mtime.is_some() {
            self.fs
                .set_times_nofollow(named()?, set_time(atime), set_time(mtime))
                .await?;
        }
        match (&path, &open) {
            (Some(path), _) => Ok(file_attr(node, &self.fs.lstat(path).await?)),
            (None, Some(open)) => Ok(file_attr(node, &open.handle.stat().await?)),
            (None, None) => Err(VfsError::new(ErrorKind::NotFound, "setattr")),
        }
    }

    pub(crate) async fn open(&self, node: u64, flags: OpenFlags) -> Result<u64> {
        let path = self.path(node)?;
        let handle = self.fs.open(&path, open_options(flags)).await?;
        Ok(self.add_handle(&self.files, OpenFile { node, handle }))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(Entry, u64)> {
        let path = self.child(parent, name)?;
        let mut options = open_options(OpenFlags(flags));
        options.mode = mode & !umask & 0o7777;
        let exclusive = flags & libc::O_EXCL != 0;
        // Creating exclusively first tells whether this call made the file, and so
        // whether it gets the caller as its owner.
        // The file can go between the two opens; O_CREAT must not answer ENOENT for that,
        // so try again, a few times, as the kernel's own open does.
        let mut attempts = 0;
        let (handle, made) = loop {
            attempts += 1;
            match self.fs.open(&path, options.create_new(true)).await {
                Ok(handle) => break (handle, true),
                Err(err) if err.kind() == ErrorKind::AlreadyExists && !exclusive => {
                    match self.fs.open(&path, options).await {
                        Ok(handle) => break (handle, false),
                        Err(err) if err.kind() == ErrorKind::NotFound && attempts < 8 => {}
                        Err(err) => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            }
        };
        let meta = if made {
            self.settle_owner(caller, &path).await
        } else {
            handle.stat().await
        };
        let meta = match meta {
            Ok(meta) => meta,
            Err(err) => {
                let _ = handle.close().await;
                return Err(err);
            }
        };
        let entry = self.entry(parent, utf8(name)?, &path, &meta);
        let fh = self.add_handle(
            &self.files,
            OpenFile {
                node: entry.attr.ino.0,
                handle,
            },
        );
        Ok((entry, fh))
    }

    pub(crate) async fn write(&self, fh: u64, offset: u64, data: Bytes) -> Result<u32> {
        let open = self.file(fh)?;
        let len = data.len();
        write_all_at(open.handle.as_ref(), offset, data).await?;
        Ok(len as u32)
    }

    pub(crate) async fn release(&self, fh: u64) -> Result<()> {
        let open = self.files.lock().remove(&fh);
        match open {
            Some(open) => open.handle.close().await,
            None => Ok(()),
        }
    }

    pub(crate) async fn opendir(&self, node: u64) -> Result<u64> {
        let path = self.path(node)?;
        let entries = self.fs.read_dir(&path).await?;
        Ok(self.add_handle(&self.dirs, OpenDir { entries }))
    }

    pub(crate) fn listing(&self, fh: u64) -> Result<Arc<OpenDir>> {
        self.dirs
            .lock()
            .get(&fh)
            .cloned()
            .ok_or_else(|| VfsError::new(ErrorKind::BadHandle, "readdir"))
    }

    pub(crate) fn readdir(
        &self,
        node: u64,
        fh: u64,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<()> {
        let listing = self.listing(fh)?;
        let dir = self.path(node)?;
        let single_scope = self.table.is_none().then_some(SINGLE_SCOPE);
        let mut nodes = self.nodes.lock();
        let parent = nodes.parent_of(node);
        let dots = [(".", node), ("..", parent)];
        let total = 2 + listing.entries.len() as u64;
        for index in offset..total {
            let full = match index {
                0 | 1 => {
                    let (name, ino) = dots[index as usize];
                    reply.add(INodeNo(ino), index + 1, fuser::FileType::Directory, name)
                }
                _ => {
                    let entry = &listing.entries[(index - 2) as usize];
                    // The id the name has or will have when looked up, so `d_ino`
                    // and `st_ino` agree.
                    let known = nodes.child(node, &entry.name);
                    let ino = match known {
                        Some(id) => id,
                        None if entry.ino == 0 => entry.ino,
                        None => {
                            let scope = match single_scope {
                                Some(scope) => scope,
                                None => self.scope(&dir.join(&entry.name)?),
                            };
                            let key = NodeKey {
                                scope,
                                ino: entry.ino,
                            };
                            nodes.listed_id(key, entry.kind)
                        }
                    };
                    reply.add(INodeNo(ino), index + 1, file_type(entry.kind), &entry.name)
                }
            };
            if full {
                break;
            }
        }
        Ok(())
    }

    pub(crate) async fn readdirplus(
        &self,
        node: u64,
        fh: u64,
        offset: u64,
        reply: &mut ReplyDirectoryPlus,
    ) -> Result<()> {
        let listing = self.listing(fh)?;
        let dir = self.path(node)?;
        let ttl = self.settings.entry_ttl;
        let mut index = offset;
        // `.` and `..` carry attributes but no lookup the kernel counts.
        while index < 2 {
            let (name, ino, path) = if index == 0 {
                (".", node, dir.clone())
            } else {
                let parent = self.nodes.lock().parent_of(node);
                ("..", parent, dir.parent().unwrap_or_else(VfsPath::root))
            };
            let meta = self.fs.lstat(&path).await?;
            let generation = Generation(self.nodes.lock().generation_of(ino));
            if reply.add(
                INodeNo(ino),
                index + 1,
                name,
                &ttl,
                &file_attr(ino, &meta),
                generation,
            ) {
                return Ok(());
            }
            index += 1;
        }
        let start = (index - 2) as usize;
        for batch in listing
            .entries
            .get(start..)
            .unwrap_or(&[])
            .chunks(READDIR_BATCH)
        {
            let stats = futures::future::join_all(batch.iter().map(|entry| async {
                let path = dir.join(&entry.name)?;
                let meta = self.fs.lstat(&path).await?;
                Ok::<_, VfsError>((path, meta))
            }))
            .await;
            for (entry, stat) in batch.iter().zip(stats) {
                index += 1;
                // Gone since opendir: leave it out, as a fresh listing would.
                let Ok((path, meta)) = stat else {
                    continue;
                };
                let Entry { attr, generation } = self.entry(node, &entry.name, &path, &meta);
                if reply.add(attr.ino, index, &entry.name, &ttl, &attr, generation) {
                    // It did not fit: the kernel never saw it, so it counts no lookup.
                    self.nodes.lock().forget(attr.ino.0, 1);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn getxattr(&self, node: u64, name: &OsStr, size: u32) -> Result<Bytes> {
        let path = self.path(node)?;
        let name = utf8(name)?;
        if acl::is_acl(name) {
            return Err(VfsError::new(ErrorKind::NoAttribute, "getxattr").with_path(path.as_str()));
        }
        let value = self.fs.get_xattr(&path, name).await?;
        check_xattr_size(value.len(), size, &path)?;
        Ok(value)
    }

    pub(crate) async fn listxattr(&self, node: u64, size: u32) -> Result<Vec<u8>> {
        let path = self.path(node)?;
        let mut list = Vec::new();
        for name in self.fs.list_xattrs(&path).await? {
            if acl::is_acl(&name) {
                continue;
            }
            list.extend_from_slice(name.as_bytes());
            list.push(0);
        }
        check_xattr_size(list.len(), size, &path)?;
        Ok(list)
    }

    pub(crate) async fn setxattr(
        &self,
        caller: Caller,
        node: u64,
        name: &OsStr,
        value: Bytes,
        flags: i32,
    ) -> Result<()> {
        let path = self.path(node)?;
        if acl::is_acl(utf8(name)?) {
            return self.set_acl(caller, &path, utf8(name)?, &value).await;
        }
        let mode = match flags {
            0 => XattrMode::Upsert,
            libc::XATTR_CREATE => XattrMode::CreateOnly,
            libc::XATTR_REPLACE => XattrMode::ReplaceOnly,
            _ => return Err(invalid("setxattr", &path)),
        };
        self.fs.set_xattr(&path, utf8(name)?, value, mode).await
    }

    /// An ACL that restates permission bits is the `chmod` it means (see [`acl`]).
    pub(crate) async fn set_acl(
        &self,
        caller: Caller,
        path: &VfsPath,
        name: &str,
        value: &[u8],
    ) -> Result<()> {
        let refuse = |kind| VfsError::new(kind, "setxattr").with_path(path.as_str());
        let Some(bits) = (name == acl::ACCESS).then(|| acl::mode_of(value)).flatten() else {
            return Err(refuse(ErrorKind::Unsupported)
                .with_detail("only ACLs that the permission bits can express are stored"));
        };
        let meta = self.fs.stat(path).await?;
        // As for chmod: only the owner (or root) may change the mode.
        if caller.uid != 0 && caller.uid != meta.uid {
            return Err(refuse(ErrorKind::NotPermitted));
        }
        self.fs
            .set_permissions(path, (meta.mode & 0o7000) | bits)
            .await
    }

    /// `access(2)` when the kernel does not check modes itself (no `default_permissions`).
    pub(crate) async fn access(&self, caller: Caller, node: u64, mask: i32) -> Result<()> {
        let path = self.path(node)?;
        let meta = self.fs.lstat(&path).await?;
        if mask == libc::F_OK {
            return Ok(());
        }
        let wanted = (mask & 0o7) as u32;
        let granted = if caller.uid == 0 {
            // Root may read and write anything, and execute what anyone may.
            let exec = if meta.is_dir() || meta.mode & 0o111 != 0 {
                1
            } else {
                0
            };
            6 | exec
        } else if caller.uid == meta.uid {
            (meta.mode >> 6) & 7
        } else if caller.gid == meta.gid {
            (meta.mode >> 3) & 7
        } else {
            meta.mode & 7
        };
        if wanted & !granted != 0 {
            return Err(
                VfsError::new(ErrorKind::PermissionDenied, "access").with_path(path.as_str())
            );
        }
        Ok(())
    }

    pub(crate) async fn fallocate(
        &self,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
        let open = self.file(fh)?;
        const KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        const ZERO_RANGE: i32 = libc::FALLOC_FL_ZERO_RANGE;
        match mode {
            0 => open.handle.allocate(offset, length).await,
            // Without preallocation there is nothing to reserve when the size stays.
            KEEP_SIZE => Ok(()),
            PUNCH_HOLE => open.handle.punch_hole(offset, length).await,
            // Zeroing a range is a hole over it, then the size it asks for.
            ZERO_RANGE => {
                open.handle.punch_hole(offset, length).await?;
                open.handle.allocate(offset, length).await
            }
            _ if mode == ZERO_RANGE | KEEP_SIZE => open.handle.punch_hole(offset, length).await,
            _ => Err(VfsError::new(ErrorKind::Unsupported, "fallocate")
                .with_detail("supported: mode 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE and ZERO_RANGE")),
        }
    }
}

/// What a negative entry carries: node id 0 says "no such name", the rest is unused.
pub(crate) fn negative_attr() -> Metadata {
    Metadata {
        kind: FileKind::File,
        size: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        nlink: 0,
        ino: 0,
        blocks: 0,
        rdev: 0,
        atime: vfs_core::Timestamp::EPOCH,
        mtime: vfs_core::Timestamp::EPOCH,
        ctime: vfs_core::Timestamp::EPOCH,
        btime: vfs_core::Timestamp::EPOCH,
    }
}

pub(crate) fn utf8(name: &OsStr) -> Result<&str> {
    name.to_str().ok_or_else(|| {
        VfsError::new(ErrorKind::InvalidInput, "lookup").with_detail("name is not UTF-8")
    })
}

fn invalid(op: &'static str, path: &VfsPath) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, op).with_path(path.as_str())
}

fn check_xattr_size(len: usize, size: u32, path: &VfsPath) -> Result<()> {
    if size != 0 && len > size as usize {
        return Err(VfsError::new(ErrorKind::OutOfRange, "getxattr").with_path(path.as_str()));
    }
    Ok(())
}

fn open_options(flags: OpenFlags) -> OpenOptions {
    let (read, write) = match flags.acc_mode() {
        OpenAccMode::O_RDONLY => (true, false),
        OpenAccMode::O_WRONLY => (false, true),
        OpenAccMode::O_RDWR => (true, true),
    };
    OpenOptions::new()
        .read(read)
        .write(write)
        .append(flags.0 & libc::O_APPEND != 0)
        .truncate(flags.0 & libc::O_TRUNC != 0)
}
