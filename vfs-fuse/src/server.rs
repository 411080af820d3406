//! The FUSE request handlers: each takes what it needs from the request and answers
//! from a task on the tokio runtime (see [`Server::spawn`]), so a slow driver holds up
//! only the requests that wait for it.

use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::SystemTime;

use bytes::Bytes;
use fuser::{
    AccessFlags, BsdFileFlags, FileAttr, FileHandle as Fh, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;
use vfs_core::{ErrorKind, Result, VfsError};

use crate::acl;
use crate::attr::{errno, file_attr};
use crate::nodes::FIRST_GENERATION;
use crate::ops::{negative_attr, utf8, Caller, Entry, Inner};

/// Files keep their page cache across opens: every change made through the mount goes
/// through that cache, and `FUSE_AUTO_INVAL_DATA` drops it when a refreshed mtime or
/// size shows a change made beside the mount.
const FILE_OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_KEEP_CACHE;

/// The `fuser` side: every handler takes what it needs from the request and answers
/// from a task.
pub(crate) struct Server {
    pub(crate) inner: Arc<Inner>,
    pub(crate) runtime: Handle,
    /// How many threads read requests from the kernel.
    pub(crate) readers: usize,
    /// How many of them are polling a request right now.
    pub(crate) polling: AtomicUsize,
}

impl Server {
    /// Runs a request: polled once right here on the reader thread, which finishes it
    /// when the driver has nothing to wait for (the memory driver never does), saving two
    /// thread wake-ups per request; whatever has to wait moves to a tokio task, so a slow
    /// driver holds up no other request.
    ///
    /// A driver whose calls block their thread (host_dir) may do so in that first poll,
    /// a syscall being cheaper than a thread hop, but only while another reader is free:
    /// the last free reader polls under [`vfs_core::forbid_blocking`], so such a driver
    /// hands its call to a thread pool, and a hung host call holds up its own request,
    /// never the whole mount.
    fn spawn<F>(&self, task: impl FnOnce(Arc<Inner>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut task = Box::pin(task(Arc::clone(&self.inner)));
        let _runtime = self.runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let last_free = self.polling.fetch_add(1, Ordering::AcqRel) + 1 >= self.readers;
        let polled = if last_free {
            vfs_core::forbid_blocking(|| task.as_mut().poll(&mut cx))
        } else {
            task.as_mut().poll(&mut cx)
        };
        self.polling.fetch_sub(1, Ordering::AcqRel);
        if polled.is_pending() {
            // A pinned box moves without moving the future; the task polls it again at
            // once with a real waker.
            self.runtime.spawn(task);
        }
    }

    fn entry_reply(inner: &Inner, reply: ReplyEntry, result: Result<Entry>) {
        match result {
            Ok(entry) => reply.entry_with_ttls(
                &inner.settings.attr_ttl,
                &inner.settings.entry_ttl,
                &entry.attr,
                entry.generation,
            ),
            Err(err) => reply.error(errno(&err)),
        }
    }

    fn attr_reply(inner: &Inner, reply: ReplyAttr, result: Result<FileAttr>) {
        match result {
            Ok(attr) => reply.attr(&inner.settings.attr_ttl, &attr),
            Err(err) => reply.error(errno(&err)),
        }
    }
}

fn empty_reply(reply: ReplyEmpty, result: Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(err) => reply.error(errno(&err)),
    }
}

impl Filesystem for Server {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let max_write = self.inner.settings.max_write;
        if let Err(largest) = config.set_max_write(max_write) {
            let _ = config.set_max_write(largest);
        }
        if let Err(largest) = config.set_max_readahead(max_write) {
            let _ = config.set_max_readahead(largest);
        }
        let _ = config.set_max_background(64);
        // Each one separately: an old kernel lacking one still gets the others. Not
        // FUSE_ATOMIC_O_TRUNC: with it the file is truncated inside open, before the
        // kernel's own checks (ETXTBSY on a running executable) can refuse the open;
        // without it the kernel truncates by setattr once they have passed.
        for wanted in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_AUTO_INVAL_DATA,
            InitFlags::FUSE_DONT_MASK,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_MAX_PAGES,
            InitFlags::FUSE_BIG_WRITES,
            InitFlags::FUSE_ASYNC_READ,
        ] {
            let _ = config.add_capabilities(wanted);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.spawn(|inner| async move {
            match inner.lookup(parent.0, &name).await {
                // A negative entry the kernel may cache for the entry TTL: creating the
                // name through the mount replaces it, and a mount table change drops it.
                Err(err) if err.kind() == ErrorKind::NotFound => reply.entry_with_ttls(
                    &inner.settings.attr_ttl,
                    &inner.settings.entry_ttl,
                    &file_attr(0, &negative_attr()),
                    Generation(FIRST_GENERATION),
                ),
                result => Server::entry_reply(&inner, reply, result),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inner.nodes.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<Fh>, reply: ReplyAttr) {
        self.spawn(|inner| async move {
            let result = inner.getattr(ino.0, fh.map(|fh| fh.0)).await;
            Server::attr_reply(&inner, reply, result);
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<Fh>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.spawn(|inner| async move {
            let result = inner
                .setattr(ino.0, fh.map(|fh| fh.0), mode, uid, gid, size, atime, mtime)
                .await;
            Server::attr_reply(&inner, reply, result);
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn(|inner| async move {
            let result = async {
                let path = inner.path(ino.0)?;
                inner.fs.read_link(&path).await
            }
            .await;
            match result {
                Ok(target) => reply.data(target.as_bytes()),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (caller, name) = (Caller::of(req), name.to_owned());
        self.spawn(|inner| async move {
            let result = inner
                .mknod(caller, parent.0, &name, mode, umask, rdev)
                .await;
            Server::entry_reply(&inner, reply, result);
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let (caller, name) = (Caller::of(req), name.to_owned());
        self.spawn(|inner| async move {
            let result = inner.mkdir(caller, parent.0, &name, mode, umask).await;
            Server::entry_reply(&inner, reply, result);
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.spawn(|inner| async move {
            empty_reply(reply, inner.unlink(parent.0, &name, false).await);
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.spawn(|inner| async move {
            empty_reply(reply, inner.unlink(parent.0, &name, true).await);
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let (caller, name, target) = (Caller::of(req), link_name.to_owned(), target.to_owned());
        self.spawn(|inner| async move {
            let result = inner.symlink(caller, parent.0, &name, &target).await;
            Server::entry_reply(&inner, reply, result);
        });
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
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.spawn(|inner| async move {
            let result = inner
                .rename(parent.0, &name, newparent.0, &newname, flags)
                .await;
            empty_reply(reply, result);
        });
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let newname = newname.to_owned();
        self.spawn(|inner| async move {
            let result = inner.link(ino.0, newparent.0, &newname).await;
            Server::entry_reply(&inner, reply, result);
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.spawn(|inner| async move {
            match inner.open(ino.0, flags).await {
                Ok(fh) => reply.opened(Fh(fh), FILE_OPEN_FLAGS),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: Fh,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn(|inner| async move {
            let result = async {
                inner
                    .file(fh.0)?
                    .handle
                    .read_at(offset, size as usize)
                    .await
            }
            .await;
            match result {
                Ok(data) => reply.data(&data),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: Fh,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = Bytes::copy_from_slice(data);
        self.spawn(|inner| async move {
            match inner.write(fh.0, offset, data).await {
                Ok(written) => reply.written(written),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: Fh,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Writes reach the driver as they come; what a driver buffers it publishes at
        // release, where `close` reports it.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: Fh,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(|inner| async move {
            empty_reply(reply, inner.release(fh.0).await);
        });
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: Fh, _datasync: bool, reply: ReplyEmpty) {
        self.spawn(|inner| async move {
            let result = async { inner.file(fh.0)?.handle.sync().await }.await;
            empty_reply(reply, result);
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.spawn(|inner| async move {
            match inner.opendir(ino.0).await {
                Ok(fh) => reply.opened(Fh(fh), FopenFlags::empty()),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: Fh,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.inner.readdir(ino.0, fh.0, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(err) => reply.error(errno(&err)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: Fh,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.spawn(|inner| async move {
            match inner.readdirplus(ino.0, fh.0, offset, &mut reply).await {
                Ok(()) => reply.ok(),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: Fh,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.inner.dirs.lock().remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: Fh, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.spawn(|inner| async move {
            let result = async {
                let path = inner.path(ino.0)?;
                inner.fs.statfs(&path).await
            }
            .await;
            match result {
                Ok(st) => reply.statfs(
                    st.blocks,
                    st.blocks_free,
                    st.blocks_available,
                    st.files,
                    st.files_free,
                    st.block_size,
                    st.name_max,
                    st.block_size,
                ),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (name, value) = (name.to_owned(), Bytes::copy_from_slice(value));
        let caller = Caller::of(req);
        self.spawn(|inner| async move {
            let result = inner.setxattr(caller, ino.0, &name, value, flags).await;
            empty_reply(reply, result);
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = name.to_owned();
        self.spawn(|inner| async move {
            match inner.getxattr(ino.0, &name, size).await {
                Ok(value) if size == 0 => reply.size(value.len() as u32),
                Ok(value) => reply.data(&value),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.spawn(|inner| async move {
            match inner.listxattr(ino.0, size).await {
                Ok(list) if size == 0 => reply.size(list.len() as u32),
                Ok(list) => reply.data(&list),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.spawn(|inner| async move {
            let result = async {
                let path = inner.path(ino.0)?;
                let name = utf8(&name)?;
                if acl::is_acl(name) {
                    // No ACL is ever stored (see `acl`), so there is none to remove.
                    return Err(VfsError::new(ErrorKind::NoAttribute, "removexattr")
                        .with_path(path.as_str()));
                }
                inner.fs.remove_xattr(&path, name).await
            }
            .await;
            empty_reply(reply, result);
        });
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let caller = Caller::of(req);
        self.spawn(|inner| async move {
            empty_reply(reply, inner.access(caller, ino.0, mask.bits()).await);
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (caller, name) = (Caller::of(req), name.to_owned());
        self.spawn(|inner| async move {
            match inner
                .create(caller, parent.0, &name, mode, umask, flags)
                .await
            {
                Ok((entry, fh)) => reply.created(
                    &inner.settings.entry_ttl,
                    &entry.attr,
                    entry.generation,
                    Fh(fh),
                    FILE_OPEN_FLAGS,
                ),
                Err(err) => reply.error(errno(&err)),
            }
        });
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: Fh,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.spawn(|inner| async move {
            empty_reply(reply, inner.fallocate(fh.0, offset, length, mode).await);
        });
    }
}
