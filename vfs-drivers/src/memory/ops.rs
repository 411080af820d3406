//! The operations, synchronous: the async trait methods only forward here, which keeps
//! every lock guard out of the futures.
//!
//! Error precedence follows Linux's `fs/namei.c`: parent resolution errors first, then
//! the checks on the final name in the order `do_mkdirat`, `do_unlinkat`, `do_rmdir`,
//! `do_renameat2`, `do_linkat` and `open_last_lookups` make them.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use vfs_core::{
    DirEntry, ErrorKind, FileKind, OpenOptions, RenameFlags, Result, SetTime, Timestamp, VfsPath,
    MAX_NAME_BYTES, MAX_PATH_BYTES,
};

use super::file_data::{FileData, PAGE_SIZE};
use super::handle::{read_content, set_len_content, write_content, MemoryHandle};
use super::inode::{Body, Inode};
use super::resolve::Resolved;
use super::usage::Usage;
use super::{fail, MemoryFs, S_ISGID, S_ISUID, S_IXGRP};

/// Content built before its file is looked up, so the copy happens outside every lock;
/// gives its pages back if it ends up unused.
struct Prebuilt<'u> {
    data: Option<FileData>,
    usage: &'u Usage,
}

impl Prebuilt<'_> {
    fn take(&mut self) -> FileData {
        self.data.take().unwrap_or_default()
    }
}

impl Drop for Prebuilt<'_> {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            self.usage.release_pages(data.pages());
        }
    }
}

/// What a read under the parent's lock produced: the data, or (for large reads, which
/// should not hold the directory) the inode to read after letting go of it.
enum Read {
    Done(Bytes),
    Later(Arc<Inode>),
}

impl MemoryFs {
    pub(crate) fn open_handle(&self, path: &VfsPath, options: OpenOptions) -> Result<MemoryHandle> {
        let inode = self.open_inode(path, options)?;
        let write = options.writes();
        Ok(MemoryHandle::new(
            inode,
            path.as_str().to_owned(),
            options.read || !write,
            write,
            options.append,
        ))
    }

    fn open_inode(&self, path: &VfsPath, options: OpenOptions) -> Result<Arc<Inode>> {
        if !options.creates() {
            return self.with_node(path, true, "open", |node| {
                open_existing(node, options).map_err(|kind| fail(kind, "open", path))
            });
        }
        let mut prebuilt = Prebuilt {
            data: None,
            usage: &self.usage,
        };
        self.create_file(path, options, &mut prebuilt)
    }

    /// `open` with `create`: the existing file `path` leads to (through symlinks, even
    /// dangling ones, whose target it creates), or a new one holding `prebuilt`'s content.
    fn create_file(
        &self,
        path: &VfsPath,
        options: OpenOptions,
        prebuilt: &mut Prebuilt<'_>,
    ) -> Result<Arc<Inode>> {
        const OP: &str = "open";
        let mut hops = 0;
        let mut must_dir = path.has_trailing_slash();
        let mut resolved = self.parent_of(path, OP)?;
        loop {
            let (dir, name) = match resolved {
                // `/`, or a symlink target ending in `.` or `..`: an existing directory.
                Resolved::Node(_) if options.create_new => {
                    return Err(fail(ErrorKind::AlreadyExists, OP, path))
                }
                Resolved::Node(_) => return Err(fail(ErrorKind::IsADirectory, OP, path)),
                Resolved::Entry { dir, name } => (dir, name),
            };
            if must_dir {
                return Err(fail(ErrorKind::IsADirectory, OP, path));
            }
            let Some(lock) = dir.dir() else {
                return Err(fail(ErrorKind::NotADirectory, OP, path));
            };
            let mut entries = lock.write();
            if entries.removed {
                return Err(fail(ErrorKind::NotFound, OP, path));
            }
            let Some(existing) = entries.entries.get(&*name) else {
                if name.len() > MAX_NAME_BYTES {
                    return Err(fail(ErrorKind::NameTooLong, OP, path));
                }
                if !self.usage.reserve_inode() {
                    return Err(fail(ErrorKind::NoSpace, OP, path));
                }
                let now = Timestamp::now();
                let new = self.new_inode(&dir, options.mode & 0o7777, false, now);
                let body = Body::File(RwLock::new(prebuilt.take()));
                let inode = Arc::new(Inode::new(new, body, Arc::clone(&self.usage)));
                entries
                    .entries
                    .insert(Box::from(&*name), Arc::clone(&inode));
                dir.sync_dir(&entries);
                dir.touch_modified(now);
                return Ok(inode);
            };
            if options.create_new {
                return Err(fail(ErrorKind::AlreadyExists, OP, path));
            }
            if let Some(target) = existing.symlink_target() {
                let target = target.to_owned();
                drop(entries);
                must_dir = target.ends_with('/');
                resolved = self.follow_for_create(dir, &target, &mut hops, OP, path)?;
                continue;
            }
            let existing = Arc::clone(existing);
            drop(entries);
            if let Some(data) = prebuilt.data.take() {
                // Replace the content at once: readers see the old or the new, never empty.
                let Body::File(content) = &existing.body else {
                    prebuilt.data = Some(data);
                    return Err(fail(ErrorKind::IsADirectory, OP, path));
                };
                let old = {
                    let mut content = content.write();
                    let old = content.replace(&self.usage, data);
                    existing.sync_file(&content);
                    old
                };
                existing.touch_modified(Timestamp::now());
                drop(old);
                return Ok(existing);
            }
            return open_existing(&existing, options).map_err(|kind| fail(kind, OP, path));
        }
    }

    pub(crate) fn read_whole(&self, path: &VfsPath) -> Result<Bytes> {
        const OP: &str = "read";
        let read = self.with_node(path, true, OP, |node| match &node.body {
            Body::File(content) => {
                let content = content.read();
                if content.size() <= PAGE_SIZE as u64 {
                    content
                        .read_all()
                        .map(Read::Done)
                        .map_err(|kind| fail(kind, OP, path))
                } else {
                    Ok(Read::Later(Arc::clone(node)))
                }
            }
            Body::Dir(_) => Err(fail(ErrorKind::IsADirectory, OP, path)),
            Body::Symlink(_) => Err(fail(ErrorKind::Loop, OP, path)),
            Body::Special { .. } => Err(fail(ErrorKind::Unsupported, OP, path)),
        })?;
        match read {
            Read::Done(data) => Ok(data),
            Read::Later(node) => match &node.body {
                Body::File(content) => content.read().read_all(),
                _ => Err(ErrorKind::IsADirectory),
            }
            .map_err(|kind| fail(kind, OP, path)),
        }
    }

    pub(crate) fn write_whole(&self, path: &VfsPath, data: &[u8]) -> Result<()> {
        let options = OpenOptions::new().write(true).create(true).truncate(true);
        let Some(content) = FileData::from_slice(&self.usage, data) else {
            // Over the byte limit as a whole: truncate first, then write what fits, as
            // `open(O_TRUNC)` and `write` would.
            let inode = self.open_inode(path, options)?;
            return write_all(&inode, 0, data).map_err(|kind| fail(kind, "write", path));
        };
        let mut prebuilt = Prebuilt {
            data: Some(content),
            usage: &self.usage,
        };
        self.create_file(path, options, &mut prebuilt).map(drop)
    }

    pub(crate) fn read_range(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        const OP: &str = "read";
        let read = self.with_node(path, true, OP, |node| {
            if len <= PAGE_SIZE {
                read_content(node, offset, len)
                    .map(Read::Done)
                    .map_err(|kind| fail(kind, OP, path))
            } else {
                Ok(Read::Later(Arc::clone(node)))
            }
        })?;
        match read {
            Read::Done(data) => Ok(data),
            Read::Later(node) => {
                read_content(&node, offset, len).map_err(|kind| fail(kind, OP, path))
            }
        }
    }

    pub(crate) fn write_range(&self, path: &VfsPath, offset: u64, data: &[u8]) -> Result<()> {
        let inode = self.open_inode(path, OpenOptions::new().write(true))?;
        write_all(&inode, offset, data).map_err(|kind| fail(kind, "write", path))
    }

    pub(crate) fn truncate_path(&self, path: &VfsPath, len: u64) -> Result<()> {
        const OP: &str = "truncate";
        if len > i64::MAX as u64 {
            // `truncate(2)` refuses a negative length before it looks at the path.
            return Err(fail(ErrorKind::InvalidInput, OP, path));
        }
        let inode = self.lookup(path, true, OP)?;
        set_len_content(&inode, len).map_err(|kind| fail(kind, OP, path))
    }

    pub(crate) fn list(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        const OP: &str = "scandir";
        self.with_node(path, true, OP, |node| {
            let Some(dir) = node.dir() else {
                return Err(fail(ErrorKind::NotADirectory, OP, path));
            };
            let dir = dir.read();
            let mut listing = Vec::with_capacity(dir.entries.len());
            listing.extend(dir.entries.iter().map(|(name, child)| DirEntry {
                name: name.to_string(),
                kind: child.kind(),
                ino: child.ino,
            }));
            Ok(listing)
        })
    }

    pub(crate) fn mkdir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        const OP: &str = "mkdir";
        let (dir, name) = match self.parent_of(path, OP)? {
            Resolved::Node(_) => return Err(fail(ErrorKind::AlreadyExists, OP, path)),
            Resolved::Entry { dir, name } => (dir, name),
        };
        let Some(lock) = dir.dir() else {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        };
        let mut entries = lock.write();
        if entries.removed {
            return Err(fail(ErrorKind::NotFound, OP, path));
        }
        if entries.entries.contains_key(&*name) {
            return Err(fail(ErrorKind::AlreadyExists, OP, path));
        }
        if !self.usage.reserve_inode() {
            return Err(fail(ErrorKind::NoSpace, OP, path));
        }
        let now = Timestamp::now();
        // Linux's vfs_mkdir keeps only the permission and sticky bits.
        let new = self.new_inode(&dir, mode & 0o1777, true, now);
        let body = Inode::new_dir_body(Arc::downgrade(&dir), &self.hasher);
        let child = Arc::new(Inode::new(new, body, Arc::clone(&self.usage)));
        entries.entries.insert(Box::from(&*name), child);
        entries.subdirs += 1;
        dir.sync_dir(&entries);
        dir.touch_modified(now);
        Ok(())
    }

    /// `mkdir -p`, as `std::fs::create_dir_all` and coreutils do it: an existing
    /// non-directory at `path` is `EEXIST`, one in the way above it `ENOTDIR`.
    pub(crate) fn mkdir_all(&self, path: &VfsPath, mode: u32) -> Result<()> {
        let mut missing = Vec::new();
        let mut current = path.clone();
        loop {
            match self.mkdir(&current, mode) {
                Ok(()) => break,
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    let Some(parent) = current.parent() else {
                        return Err(err);
                    };
                    missing.push(current);
                    current = parent;
                }
                Err(_) if self.is_dir(&current) => break,
                Err(err) => return Err(err),
            }
        }
        while let Some(dir) = missing.pop() {
            match self.mkdir(&dir, mode) {
                // Someone else may have created it meanwhile.
                Err(_) if self.is_dir(&dir) => {}
                other => other?,
            }
        }
        Ok(())
    }

    fn is_dir(&self, path: &VfsPath) -> bool {
        self.with_node(path, true, "stat", |node| Ok(node.is_dir()))
            .unwrap_or(false)
    }

    pub(crate) fn make_symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        const OP: &str = "symlink";
        if target.is_empty() {
            return Err(fail(ErrorKind::NotFound, OP, link));
        }
        if target.len() > MAX_PATH_BYTES {
            return Err(fail(ErrorKind::NameTooLong, OP, link));
        }
        if target.contains('\0') {
            return Err(fail(ErrorKind::InvalidInput, OP, link));
        }
        self.insert_entry(link, OP, 0o777, Body::Symlink(Box::from(target)))
    }

    /// `mknod`: a FIFO, socket or device node, or an empty regular file.
    pub(crate) fn mknod(&self, path: &VfsPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        const OP: &str = "mknod";
        let body = match kind {
            FileKind::File => Body::File(RwLock::new(FileData::default())),
            FileKind::Fifo | FileKind::Socket | FileKind::CharDevice | FileKind::BlockDevice => {
                Body::Special { kind, rdev }
            }
            FileKind::Directory | FileKind::Symlink => {
                return Err(fail(ErrorKind::InvalidInput, OP, path))
            }
        };
        self.insert_entry(path, OP, mode & 0o7777, body)
    }

    /// Adds a new non-directory inode holding `body` at `path`, with the errors and their
    /// order of Linux's `filename_create`.
    fn insert_entry(&self, path: &VfsPath, op: &'static str, mode: u32, body: Body) -> Result<()> {
        self.add_entry(path, op, |dir, now| {
            if !self.usage.reserve_inode() {
                return Err(fail(ErrorKind::NoSpace, op, path));
            }
            let new = self.new_inode(dir, mode, false, now);
            Ok(Arc::new(Inode::new(new, body, Arc::clone(&self.usage))))
        })
    }

    /// Puts the inode `make` gives at `path`, a name that must not exist yet: the parent's
    /// checks in the order of Linux's `filename_create`, then `make` under the parent's
    /// lock (its own checks come after those), then the parent's times.
    fn add_entry(
        &self,
        path: &VfsPath,
        op: &'static str,
        make: impl FnOnce(&Arc<Inode>, Timestamp) -> Result<Arc<Inode>>,
    ) -> Result<()> {
        let (dir, name) = match self.parent_of(path, op)? {
            Resolved::Node(_) => return Err(fail(ErrorKind::AlreadyExists, op, path)),
            Resolved::Entry { dir, name } => (dir, name),
        };
        let Some(lock) = dir.dir() else {
            return Err(fail(ErrorKind::NotADirectory, op, path));
        };
        let mut entries = lock.write();
        if entries.removed {
            return Err(fail(ErrorKind::NotFound, op, path));
        }
        if entries.entries.contains_key(&*name) {
            return Err(fail(ErrorKind::AlreadyExists, op, path));
        }
        if path.has_trailing_slash() {
            return Err(fail(ErrorKind::NotFound, op, path));
        }
        let now = Timestamp::now();
        let child = make(&dir, now)?;
        entries.entries.insert(Box::from(&*name), child);
        dir.sync_dir(&entries);
        dir.touch_modified(now);
        Ok(())
    }

    pub(crate) fn link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        const OP: &str = "link";
        let source = self.lookup(existing, false, OP)?;
        self.add_entry(new, OP, |_, now| {
            if source.is_dir() {
                return Err(fail(ErrorKind::NotPermitted, OP, existing));
            }
            // Unlinked meanwhile (alive only through handles): no resurrection.
            if !source.add_link() {
                return Err(fail(ErrorKind::NotFound, OP, existing));
            }
            source.touch_changed(now);
            Ok(source)
        })
    }

    pub(crate) fn unlink(&self, path: &VfsPath) -> Result<()> {
        const OP: &str = "unlink";
        let (dir, name) = match self.parent_of(path, OP)? {
            Resolved::Node(_) => return Err(fail(ErrorKind::IsADirectory, OP, path)),
            Resolved::Entry { dir, name } => (dir, name),
        };
        let Some(lock) = dir.dir() else {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        };
        let mut entries = lock.write();
        // Removed first and put back on error: one probe of a possibly large table on
        // the common path instead of two.
        let Some((key, child)) = entries.entries.remove_entry(&*name) else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        if child.is_dir() || path.has_trailing_slash() {
            let kind = if child.is_dir() {
                ErrorKind::IsADirectory
            } else {
                ErrorKind::NotADirectory
            };
            entries.entries.insert(key, child);
            return Err(fail(kind, OP, path));
        }
        drop(key);
        let now = Timestamp::now();
        child.drop_link();
        child.touch_changed(now);
        dir.sync_dir(&entries);
        dir.touch_modified(now);
        drop(entries);
        // The content (possibly large) is freed here, outside the directory's lock,
        // unless a handle or another link still holds it.
        drop(child);
        Ok(())
    }

    pub(crate) fn rmdir(&self, path: &VfsPath) -> Result<()> {
        const OP: &str = "rmdir";
        let (dir, name) = match self.parent_of(path, OP)? {
            Resolved::Node(_) => return Err(fail(ErrorKind::Busy, OP, path)),
            Resolved::Entry { dir, name } => (dir, name),
        };
        let Some(lock) = dir.dir() else {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        };
        let mut entries = lock.write();
        let Some(child) = entries.entries.get(&*name) else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        let Some(child_dir) = child.dir() else {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        };
        {
            let mut child_dir = child_dir.write();
            if !child_dir.entries.is_empty() {
                return Err(fail(ErrorKind::DirectoryNotEmpty, OP, path));
            }
            child_dir.removed = true;
            child.sync_dir(&child_dir);
        }
        let Some(child) = entries.entries.remove(&*name) else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        entries.subdirs = entries.subdirs.saturating_sub(1);
        dir.sync_dir(&entries);
        let now = Timestamp::now();
        child.touch_changed(now);
        dir.touch_modified(now);
        Ok(())
    }

    pub(crate) fn rename_entry(
        &self,
        from: &VfsPath,
        to: &VfsPath,
        flags: RenameFlags,
    ) -> Result<()> {
        const OP: &str = "rename";
        if flags.exchange && flags.no_replace {
            return Err(fail(ErrorKind::InvalidInput, OP, from));
        }
        let source = self.parent_of(from, OP)?;
        let target = self.parent_of(to, OP)?;
        let (src_dir, src_name) = match source {
            Resolved::Node(_) => return Err(fail(ErrorKind::Busy, OP, from)),
            Resolved::Entry { dir, name } => (dir, name),
        };
        let (dst_dir, dst_name) = match target {
            Resolved::Node(_) => return Err(fail(ErrorKind::Busy, OP, to)),
            Resolved::Entry { dir, name } => (dir, name),
        };
        let (Some(src_lock), Some(dst_lock)) = (src_dir.dir(), dst_dir.dir()) else {
            return Err(fail(ErrorKind::NotADirectory, OP, from));
        };
        let slash = from.has_trailing_slash() || to.has_trailing_slash();
        let now = Timestamp::now();

        if Arc::ptr_eq(&src_dir, &dst_dir) {
            // Within one directory: its lock alone orders this against everything else,
            // and no parent pointer changes, so the rename mutex is not needed.
            let mut entries = src_lock.write();
            let Some(moved) = entries.entries.get(&*src_name).cloned() else {
                return Err(fail(ErrorKind::NotFound, OP, from));
            };
            if slash && !moved.is_dir() {
                return Err(fail(ErrorKind::NotADirectory, OP, from));
            }
            let victim = entries.entries.get(&*dst_name).cloned();
            if flags.no_replace && victim.is_some() {
                return Err(fail(ErrorKind::AlreadyExists, OP, to));
            }
            if flags.exchange {
                let Some(victim) = victim else {
                    return Err(fail(ErrorKind::NotFound, OP, to));
                };
                if Arc::ptr_eq(&moved, &victim) {
                    return Ok(());
                }
                entries
                    .entries
                    .insert(Box::from(&*src_name), Arc::clone(&victim));
                entries
                    .entries
                    .insert(Box::from(&*dst_name), Arc::clone(&moved));
                drop(entries);
                src_dir.touch_modified(now);
                moved.touch_changed(now);
                victim.touch_changed(now);
                return Ok(());
            }
            if let Some(victim) = &victim {
                if Arc::ptr_eq(&moved, victim) {
                    return Ok(());
                }
                claim_victim(&moved, victim).map_err(|kind| fail(kind, OP, to))?;
            }
            entries.entries.remove(&*src_name);
            entries
                .entries
                .insert(Box::from(&*dst_name), Arc::clone(&moved));
            if victim.as_ref().is_some_and(|victim| victim.is_dir()) {
                entries.subdirs = entries.subdirs.saturating_sub(1);
            }
            src_dir.sync_dir(&entries);
            drop(entries);
            src_dir.touch_modified(now);
            finish_rename(&moved, victim, now);
            return Ok(());
        }

        let _serialized = self.rename_lock.lock();
        // Parent pointers change only under the rename mutex, so these chains hold until
        // it is released.
        let dst_chain = ancestors(&dst_dir);
        let src_chain = ancestors(&src_dir);
        let within = |chain: &[Arc<Inode>], node: &Arc<Inode>| {
            chain.iter().any(|ancestor| Arc::ptr_eq(ancestor, node))
        };
        // Ancestor first (as Linux's lock_rename), unrelated directories by inode number.
        let src_first = within(&dst_chain, &src_dir)
            || (!within(&src_chain, &dst_dir) && src_dir.ino < dst_dir.ino);
        let (mut src_entries, mut dst_entries) = if src_first {
            let src = src_lock.write();
            (src, dst_lock.write())
        } else {
            let dst = dst_lock.write();
            (src_lock.write(), dst)
        };
        let Some(moved) = src_entries.entries.get(&*src_name).cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, from));
        };
        if dst_entries.removed {
            return Err(fail(ErrorKind::NotFound, OP, to));
        }
        let victim = dst_entries.entries.get(&*dst_name).cloned();
        if slash && !moved.is_dir() {
            return Err(fail(ErrorKind::NotADirectory, OP, from));
        }
        if moved.is_dir() && within(&dst_chain, &moved) {
            return Err(fail(ErrorKind::InvalidInput, OP, to));
        }
        if flags.no_replace && victim.is_some() {
            return Err(fail(ErrorKind::AlreadyExists, OP, to));
        }
        if flags.exchange {
            let Some(victim) = victim else {
                return Err(fail(ErrorKind::NotFound, OP, to));
            };
            if victim.is_dir() && within(&src_chain, &victim) {
                return Err(fail(ErrorKind::InvalidInput, OP, to));
            }
            src_entries
                .entries
                .insert(Box::from(&*src_name), Arc::clone(&victim));
            dst_entries
                .entries
                .insert(Box::from(&*dst_name), Arc::clone(&moved));
            if let Some(moved_dir) = moved.dir() {
                src_entries.subdirs = src_entries.subdirs.saturating_sub(1);
                dst_entries.subdirs += 1;
                moved_dir.write().parent = Arc::downgrade(&dst_dir);
            }
            if let Some(victim_dir) = victim.dir() {
                dst_entries.subdirs = dst_entries.subdirs.saturating_sub(1);
                src_entries.subdirs += 1;
                victim_dir.write().parent = Arc::downgrade(&src_dir);
            }
            src_dir.sync_dir(&src_entries);
            dst_dir.sync_dir(&dst_entries);
            drop(src_entries);
            drop(dst_entries);
            src_dir.touch_modified(now);
            dst_dir.touch_modified(now);
            moved.touch_changed(now);
            victim.touch_changed(now);
            return Ok(());
        }
        if let Some(victim) = &victim {
            if within(&src_chain, victim) {
                return Err(fail(ErrorKind::DirectoryNotEmpty, OP, to));
            }
            if Arc::ptr_eq(&moved, victim) {
                return Ok(());
            }
            claim_victim(&moved, victim).map_err(|kind| fail(kind, OP, to))?;
        }
        src_entries.entries.remove(&*src_name);
        dst_entries
            .entries
            .insert(Box::from(&*dst_name), Arc::clone(&moved));
        if victim.as_ref().is_some_and(|victim| victim.is_dir()) {
            dst_entries.subdirs = dst_entries.subdirs.saturating_sub(1);
        }
        if let Some(moved_dir) = moved.dir() {
            src_entries.subdirs = src_entries.subdirs.saturating_sub(1);
            dst_entries.subdirs += 1;
            moved_dir.write().parent = Arc::downgrade(&dst_dir);
        }
        src_dir.sync_dir(&src_entries);
        dst_dir.sync_dir(&dst_entries);
        drop(src_entries);
        drop(dst_entries);
        src_dir.touch_modified(now);
        dst_dir.touch_modified(now);
        finish_rename(&moved, victim, now);
        Ok(())
    }

    pub(crate) fn chmod(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.with_node(path, true, "chmod", |node| {
            node.set_mode(mode & 0o7777);
            node.touch_changed(Timestamp::now());
            Ok(())
        })
    }

    pub(crate) fn chown(
        &self,
        path: &VfsPath,
        follow: bool,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        let op = if follow { "chown" } else { "lchown" };
        self.with_node(path, follow, op, |node| {
            if let Some(uid) = uid {
                node.set_uid(uid);
            }
            if let Some(gid) = gid {
                node.set_gid(gid);
            }
            if !node.is_dir() {
                // As Linux's chown_common, even for root: setuid always goes, setgid
                // when it means "set group on exec" (group-executable).
                node.clear_mode_bits(S_ISUID, 0);
                node.clear_mode_bits(S_ISGID, S_ISGID | S_IXGRP);
            }
            node.touch_changed(Timestamp::now());
            Ok(())
        })
    }

    pub(crate) fn utimens(
        &self,
        path: &VfsPath,
        follow: bool,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        let op = if follow { "utimes" } else { "lutimes" };
        self.with_node(path, follow, op, |node| {
            if atime == SetTime::Omit && mtime == SetTime::Omit {
                return Ok(());
            }
            let now = Timestamp::now();
            match atime {
                SetTime::Omit => {}
                SetTime::Now => node.set_atime(now),
                SetTime::At(time) => node.set_atime(time),
            }
            match mtime {
                SetTime::Omit => {}
                SetTime::Now => node.set_mtime(now),
                SetTime::At(time) => node.set_mtime(time),
            }
            node.touch_changed(now);
            Ok(())
        })
    }
}

/// Opens an inode `path` already led to, without creating it.
fn open_existing(node: &Arc<Inode>, options: OpenOptions) -> Result<Arc<Inode>, ErrorKind> {
    match &node.body {
        Body::Dir(_) => {
            if options.writes() || options.truncate || options.creates() {
                Err(ErrorKind::IsADirectory)
            } else {
                Ok(Arc::clone(node))
            }
        }
        Body::File(content) => {
            if options.truncate {
                // O_TRUNC sets mtime and ctime even when the file was already empty.
                let old = {
                    let mut content = content.write();
                    let old = content.replace(node.usage(), FileData::default());
                    node.sync_file(&content);
                    old
                };
                node.touch_modified(Timestamp::now());
                drop(old);
            }
            Ok(Arc::clone(node))
        }
        // Resolution follows final symlinks before this is called.
        Body::Symlink(_) => Err(ErrorKind::Loop),
        // A FIFO or device is opened by the kernel serving it, never through a driver.
        Body::Special { .. } => Err(ErrorKind::Unsupported),
    }
}

/// Writes all of `data` at `offset`, stopping with the error (`ENOSPC`, `EFBIG`) that
/// ends a short write.
fn write_all(inode: &Inode, offset: u64, data: &[u8]) -> Result<(), ErrorKind> {
    let mut done = 0;
    while done < data.len() {
        let written = write_content(
            inode,
            offset.saturating_add(done as u64),
            &data[done..],
            false,
        )?;
        if written == 0 {
            return Err(ErrorKind::NoSpace);
        }
        done += written;
    }
    Ok(())
}

/// Checks that `victim` may be replaced by `moved` and, for a directory, marks it removed
/// under its own lock so nothing is created in it afterwards. Called last, when nothing
/// can fail any more.
fn claim_victim(moved: &Inode, victim: &Inode) -> Result<(), ErrorKind> {
    match (moved.is_dir(), victim.dir()) {
        (true, Some(victim_dir)) => {
            let mut victim_dir = victim_dir.write();
            if !victim_dir.entries.is_empty() {
                return Err(ErrorKind::DirectoryNotEmpty);
            }
            victim_dir.removed = true;
            victim.sync_dir(&victim_dir);
            Ok(())
        }
        (true, None) => Err(ErrorKind::NotADirectory),
        (false, Some(_)) => Err(ErrorKind::IsADirectory),
        (false, None) => Ok(()),
    }
}

/// The ctime of the moved inode, and the link count and ctime of the one it replaced.
fn finish_rename(moved: &Inode, victim: Option<Arc<Inode>>, now: Timestamp) {
    moved.touch_changed(now);
    if let Some(victim) = victim {
        if !victim.is_dir() {
            victim.drop_link();
        }
        victim.touch_changed(now);
    }
}

/// `dir` and its ancestors up to the root.
fn ancestors(dir: &Arc<Inode>) -> Vec<Arc<Inode>> {
    let mut chain = vec![Arc::clone(dir)];
    let mut current = Arc::clone(dir);
    while let Some(parent) = current.parent() {
        chain.push(Arc::clone(&parent));
        current = parent;
    }
    chain
}
