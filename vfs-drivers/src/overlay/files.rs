//! Opening, reading and writing files; metadata and xattr changes.

use bytes::Bytes;
use vfs_core::{ErrorKind, FileHandle, Metadata, OpenOptions, Result, SetTime, VfsPath, XattrMode};

use std::sync::Arc;

use super::handle::{DirStat, OverlayHandle, Slot};
use super::lookup::{Resolved, Want, UPPER};
use super::whiteout::is_reserved;
use super::{fail, OverlayFs};

impl OverlayFs {
    pub(crate) async fn open_impl(
        &self,
        path: &VfsPath,
        options: OpenOptions,
    ) -> Result<Box<dyn FileHandle>> {
        const OP: &str = "open";
        if !options.mutates() {
            // A plain read: whichever layer shows the file serves it, without the lock.
            // Held until a lower handle is registered, so a copy-up cannot slip between
            // the lookup and the registration and leave the handle behind on the lower.
            let _moves = self.handle_moves.read().await;
            let resolved = self.resolve(path, Want::Follow, OP).await?;
            if resolved.top().is_none() {
                return Err(fail(ErrorKind::NotFound, OP, path));
            }
            return self.open_in_layer(&resolved, options).await;
        }
        let _guard = self.change().await;
        if !options.creates() {
            let mut resolved = self.walk(path, Want::Follow, OP).await?;
            return self.open_existing(&mut resolved, options, path).await;
        }
        let mut resolved = self
            .resolve_for_create(path, options.create_new, OP)
            .await?;
        if resolved.top().is_none() {
            self.copy_up_chain(&mut resolved.chain).await?;
            let handle = self.upper.open(&resolved.path, options).await?;
            self.drop_whiteout_after_create(&resolved).await;
            return Ok(Box::new(OverlayHandle {
                slot: Slot::new(handle, UPPER),
                inos: self.inos,
                dir: None,
                lower: None,
            }));
        }
        self.open_existing(&mut resolved, options, path).await
    }

    /// Opens the existing entry `resolved` names, copying a lower file up first when the
    /// open writes or truncates.
    async fn open_existing(
        &self,
        resolved: &mut Resolved,
        options: OpenOptions,
        path: &VfsPath,
    ) -> Result<Box<dyn FileHandle>> {
        let Some(top) = resolved.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, "open", path));
        };
        if top.meta.is_dir() && options.mutates() {
            return Err(fail(ErrorKind::IsADirectory, "open", path));
        }
        if top.layer != UPPER && (options.writes() || options.truncate) {
            // `O_TRUNC` needs none of the old content.
            let limit = options.truncate.then_some(0);
            self.copy_up(resolved, limit).await?;
        }
        self.open_in_layer(resolved, options).await
    }

    /// Opens the entry in the layer that shows it; a lower is only ever opened read-only.
    async fn open_in_layer(
        &self,
        resolved: &Resolved,
        options: OpenOptions,
    ) -> Result<Box<dyn FileHandle>> {
        let Some(top) = resolved.top() else {
            return Err(fail(ErrorKind::NotFound, "open", &resolved.path));
        };
        let options = if top.layer == UPPER {
            options
        } else {
            OpenOptions::read_only().mode(options.mode)
        };
        let inner = self.layer(top.layer)?.open(&resolved.path, options).await?;
        let dir = if top.meta.is_dir() {
            self.merged_meta(&resolved.lookup.hits).map(|meta| DirStat {
                ino: meta.ino,
                merged: resolved.lookup.hits.len() > 1,
                layer: top.layer,
            })
        } else {
            None
        };
        let slot = Slot::new(inner, top.layer);
        let lower = if top.layer != UPPER && (top.meta.is_file() || top.meta.is_dir()) {
            let file = (top.layer, resolved.path.as_str().to_owned());
            self.open_lowers.register(&file, &slot);
            Some((Arc::clone(&self.open_lowers), file))
        } else {
            None
        };
        Ok(Box::new(OverlayHandle {
            slot,
            inos: self.inos,
            dir,
            lower,
        }))
    }

    /// Resolves a path that `open` with `create` (or `write_file`) creates or opens:
    /// through symlinks (a dangling one's target is created), to a missing name or an
    /// existing non-symlink.
    async fn resolve_for_create(
        &self,
        path: &VfsPath,
        create_new: bool,
        op: &'static str,
    ) -> Result<Resolved> {
        let mut resolved = self.walk(path, Want::Parent, op).await?;
        loop {
            let Some(name) = &resolved.name else {
                let kind = if create_new {
                    ErrorKind::AlreadyExists
                } else {
                    ErrorKind::IsADirectory
                };
                return Err(fail(kind, op, path));
            };
            if resolved.must_dir {
                return Err(fail(ErrorKind::IsADirectory, op, path));
            }
            if is_reserved(name) {
                return Err(reserved(op, path));
            }
            let Some(top) = resolved.top() else {
                return Ok(resolved);
            };
            if create_new {
                return Err(fail(ErrorKind::AlreadyExists, op, path));
            }
            if !top.meta.is_symlink() {
                return Ok(resolved);
            }
            let target = self.layer(top.layer)?.read_link(&resolved.path).await?;
            resolved = self.follow_for_create(resolved, &target, op, path).await?;
        }
    }

    /// After creating the entry `resolved` names in the upper, removes the upper
    /// whiteout that hid a lower entry of that name.
    pub(crate) async fn drop_whiteout_after_create(&self, resolved: &Resolved) {
        if resolved.lookup.whiteout != Some(UPPER) {
            return;
        }
        if let (Some(parent), Some(name)) = (resolved.parent(), &resolved.name) {
            // Best effort: an entry beside its own whiteout wins over it (the OCI rule),
            // so a leftover whiteout changes nothing visible.
            let _ = self.remove_whiteout(&parent.path, name).await;
        }
    }

    pub(crate) async fn write_file_impl(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        const OP: &str = "open";
        let _guard = self.change().await;
        let mut resolved = self.resolve_for_create(path, false, OP).await?;
        match resolved.top().cloned() {
            None => {
                self.copy_up_chain(&mut resolved.chain).await?;
                self.upper.write_file(&resolved.path, data).await?;
                self.drop_whiteout_after_create(&resolved).await;
                Ok(())
            }
            Some(top) if top.meta.is_dir() => Err(fail(ErrorKind::IsADirectory, OP, path)),
            Some(top) => {
                if top.layer != UPPER {
                    // The old content is replaced whole: copy none of it.
                    self.copy_up(&mut resolved, Some(0)).await?;
                }
                self.upper.write_file(&resolved.path, data).await
            }
        }
    }

    pub(crate) async fn read_file_impl(&self, path: &VfsPath) -> Result<Bytes> {
        let resolved = self.resolve(path, Want::Follow, "read").await?;
        let Some(top) = resolved.top() else {
            return Err(fail(ErrorKind::NotFound, "read", path));
        };
        if top.meta.is_dir() {
            return Err(fail(ErrorKind::IsADirectory, "read", path));
        }
        self.layer(top.layer)?.read_file(&resolved.path).await
    }

    pub(crate) async fn pread_impl(
        &self,
        path: &VfsPath,
        offset: u64,
        len: usize,
    ) -> Result<Bytes> {
        let resolved = self.resolve(path, Want::Follow, "read").await?;
        let Some(top) = resolved.top() else {
            return Err(fail(ErrorKind::NotFound, "read", path));
        };
        if top.meta.is_dir() {
            return Err(fail(ErrorKind::IsADirectory, "read", path));
        }
        self.layer(top.layer)?
            .pread(&resolved.path, offset, len)
            .await
    }

    pub(crate) async fn truncate_impl(&self, path: &VfsPath, len: u64) -> Result<()> {
        const OP: &str = "truncate";
        if len > i64::MAX as u64 {
            // `truncate(2)` refuses a negative length before it looks at the path.
            return Err(fail(ErrorKind::InvalidInput, OP, path));
        }
        let _guard = self.change().await;
        let mut resolved = self.walk(path, Want::Follow, OP).await?;
        let Some(top) = resolved.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        if top.meta.is_dir() {
            return Err(fail(ErrorKind::IsADirectory, OP, path));
        }
        if top.layer != UPPER {
            // What lies past the new length is not worth copying.
            self.copy_up(&mut resolved, Some(len)).await?;
        }
        self.upper.truncate(&resolved.path, len).await
    }

    pub(crate) async fn stat_impl(
        &self,
        path: &VfsPath,
        want: Want,
        op: &'static str,
    ) -> Result<Metadata> {
        let resolved = self.resolve(path, want, op).await?;
        self.merged_meta(&resolved.lookup.hits)
            .ok_or_else(|| fail(ErrorKind::NotFound, op, path))
    }

    /// The metadata of an entry held by `hits`: the topmost layer's, with the overlay's
    /// inode number; a directory merged from several layers reports `nlink` 1 (as
    /// overlayfs: "unknown", which `find` honours) and its lowest layer's inode number.
    pub(crate) fn merged_meta(&self, hits: &[super::lookup::Hit]) -> Option<Metadata> {
        let top = hits.first()?;
        let mut meta = top.meta.clone();
        if meta.is_dir() {
            let bottom = hits.last()?;
            meta.ino = self.inos.map(bottom.layer, bottom.meta.ino);
            if hits.len() > 1 {
                meta.nlink = 1;
            }
        } else {
            meta.ino = self.inos.map(top.layer, meta.ino);
        }
        Some(meta)
    }

    /// Resolves `path` (following symlinks) and copies what it names up, for a change of
    /// its metadata. The caller holds the lock.
    async fn prepare_change(&self, path: &VfsPath, op: &'static str) -> Result<Resolved> {
        let mut resolved = self.walk(path, Want::Follow, op).await?;
        if resolved.top().is_none() {
            return Err(fail(ErrorKind::NotFound, op, path));
        }
        self.copy_up(&mut resolved, None).await?;
        Ok(resolved)
    }

    pub(crate) async fn set_permissions_impl(&self, path: &VfsPath, mode: u32) -> Result<()> {
        if !self.upper.capabilities().permissions {
            return Err(fail(ErrorKind::Unsupported, "chmod", path));
        }
        let _guard = self.change().await;
        let resolved = self.prepare_change(path, "chmod").await?;
        self.upper.set_permissions(&resolved.path, mode).await
    }

    pub(crate) async fn set_owner_impl(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        if !self.upper.capabilities().ownership {
            return Err(fail(ErrorKind::Unsupported, "chown", path));
        }
        let _guard = self.change().await;
        let resolved = self.prepare_change(path, "chown").await?;
        self.upper.set_owner(&resolved.path, uid, gid).await
    }

    /// `lchown`: a symlink itself is copied up (recreated) and changed in the upper.
    pub(crate) async fn set_owner_nofollow_impl(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        const OP: &str = "lchown";
        if !self.upper.capabilities().ownership {
            return Err(fail(ErrorKind::Unsupported, OP, path));
        }
        let _guard = self.change().await;
        let resolved = self.prepare_change_nofollow(path, OP).await?;
        self.upper
            .set_owner_nofollow(&resolved.path, uid, gid)
            .await
    }

    /// `utimensat(.., AT_SYMLINK_NOFOLLOW)`, as [`Self::set_owner_nofollow_impl`].
    pub(crate) async fn set_times_nofollow_impl(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        const OP: &str = "lutimes";
        if !self.upper.capabilities().set_times {
            return Err(fail(ErrorKind::Unsupported, OP, path));
        }
        if atime == SetTime::Omit && mtime == SetTime::Omit {
            return self.stat_impl(path, Want::NoFollow, OP).await.map(drop);
        }
        let _guard = self.change().await;
        let resolved = self.prepare_change_nofollow(path, OP).await?;
        self.upper
            .set_times_nofollow(&resolved.path, atime, mtime)
            .await
    }

    /// Resolves `path` without following a final symlink and copies what it names up.
    /// The caller holds the lock.
    async fn prepare_change_nofollow(&self, path: &VfsPath, op: &'static str) -> Result<Resolved> {
        let mut resolved = self.walk(path, Want::NoFollow, op).await?;
        if resolved.top().is_none() {
            return Err(fail(ErrorKind::NotFound, op, path));
        }
        self.copy_up(&mut resolved, None).await?;
        Ok(resolved)
    }

    pub(crate) async fn set_times_impl(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        if !self.upper.capabilities().set_times {
            return Err(fail(ErrorKind::Unsupported, "utimes", path));
        }
        if atime == SetTime::Omit && mtime == SetTime::Omit {
            // Changes nothing, so copies nothing up; the path must still exist.
            return self.stat_impl(path, Want::Follow, "utimes").await.map(drop);
        }
        let _guard = self.change().await;
        let resolved = self.prepare_change(path, "utimes").await?;
        self.upper.set_times(&resolved.path, atime, mtime).await
    }

    pub(crate) async fn get_xattr_impl(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        const OP: &str = "getxattr";
        if !self.upper.capabilities().xattrs {
            return Err(fail(ErrorKind::Unsupported, OP, path));
        }
        let resolved = self.resolve(path, Want::Follow, OP).await?;
        let Some(top) = resolved.top() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        match self.layer(top.layer)?.get_xattr(&resolved.path, name).await {
            // A lower without xattrs simply has none.
            Err(err) if top.layer != UPPER && err.kind() == ErrorKind::Unsupported => {
                Err(fail(ErrorKind::NoAttribute, OP, path))
            }
            other => other,
        }
    }

    pub(crate) async fn list_xattrs_impl(&self, path: &VfsPath) -> Result<Vec<String>> {
        const OP: &str = "listxattr";
        if !self.upper.capabilities().xattrs {
            return Err(fail(ErrorKind::Unsupported, OP, path));
        }
        let resolved = self.resolve(path, Want::Follow, OP).await?;
        let Some(top) = resolved.top() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        match self.layer(top.layer)?.list_xattrs(&resolved.path).await {
            Err(err) if top.layer != UPPER && err.kind() == ErrorKind::Unsupported => {
                Ok(Vec::new())
            }
            other => other,
        }
    }

    pub(crate) async fn set_xattr_impl(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        if !self.upper.capabilities().xattrs {
            return Err(fail(ErrorKind::Unsupported, "setxattr", path));
        }
        let _guard = self.change().await;
        let resolved = self.prepare_change(path, "setxattr").await?;
        self.upper
            .set_xattr(&resolved.path, name, value, mode)
            .await
    }

    pub(crate) async fn remove_xattr_impl(&self, path: &VfsPath, name: &str) -> Result<()> {
        const OP: &str = "removexattr";
        if !self.upper.capabilities().xattrs {
            return Err(fail(ErrorKind::Unsupported, OP, path));
        }
        let _guard = self.change().await;
        let mut resolved = self.walk(path, Want::Follow, OP).await?;
        let Some(top) = resolved.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        if top.layer != UPPER {
            // Removing what is not there copies nothing up.
            match self.layer(top.layer)?.get_xattr(&resolved.path, name).await {
                Ok(_) => {}
                Err(err)
                    if matches!(err.kind(), ErrorKind::NoAttribute | ErrorKind::Unsupported) =>
                {
                    return Err(fail(ErrorKind::NoAttribute, OP, path))
                }
                Err(err) => return Err(err),
            }
            self.copy_up(&mut resolved, None).await?;
        }
        self.upper.remove_xattr(&resolved.path, name).await
    }
}

/// The error for a name in the reserved `.wh.` space.
pub(crate) fn reserved(op: &'static str, path: &VfsPath) -> vfs_core::VfsError {
    fail(ErrorKind::InvalidInput, op, path)
        .with_detail("names starting with '.wh.' are reserved for whiteouts in an overlay")
}
