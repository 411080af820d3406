//! Copy-up: bringing a lower entry into the upper before it is changed.
//!
//! A file is streamed in [`COPY_CHUNK`]-sized `read_at`/`write_at` calls into a temporary
//! `.wh..wh..tmp.N` file beside its final place, given the lower entry's ownership (when
//! the upper stores it), mode, xattrs and times, and then renamed into place: readers see
//! the lower file or the whole copy, never a partial one, and a failed copy-up leaves
//! nothing behind. All-zero chunks are skipped when the upper has sparse files, so holes
//! stay holes. Directories are copied up the same way (metadata only), parents first; a
//! symlink is recreated with the same target, owner and times. The upper parent's atime and mtime are put
//! back afterwards, so a copy-up is not seen as a change of the directory.

use vfs_core::{
    write_all_at, ErrorKind, FileHandle, FileKind, Metadata, OpenOptions, Result, SetTime,
    VfsError, VfsPath, XattrMode,
};

use super::lookup::{absent, Dir, Hit, Resolved, UPPER};
use super::whiteout::TEMP_PREFIX;
use super::OverlayFs;

/// How many bytes a copy-up reads and writes at once.
pub const COPY_CHUNK: usize = 1 << 20;

/// How many temporary names a copy-up tries before giving up.
const TEMP_ATTEMPTS: usize = 64;

impl OverlayFs {
    /// Makes every directory of `chain` exist in the upper, copying up those that do not.
    pub(crate) async fn copy_up_chain(&self, chain: &mut [Dir]) -> Result<()> {
        for dir in chain.iter_mut() {
            if dir.in_upper() {
                continue;
            }
            // An earlier step of the same operation may have copied it up already.
            match self.upper.lstat(&dir.path).await {
                Ok(meta) if meta.is_dir() => {
                    dir.hits.insert(0, Hit { layer: UPPER, meta });
                    continue;
                }
                Ok(_) => {
                    return Err(VfsError::new(ErrorKind::Io, "copy-up")
                        .with_path(dir.path.as_str())
                        .with_detail(
                            "the upper holds a non-directory beneath a visible directory",
                        ))
                }
                Err(err) if absent(&err) => {}
                Err(err) => return Err(err),
            }
            let Some(top) = dir.hits.first().cloned() else {
                return Err(VfsError::new(ErrorKind::Io, "copy-up").with_path(dir.path.as_str()));
            };
            self.copy_dir_up(&dir.path, &top).await?;
            let meta = self.upper.lstat(&dir.path).await?;
            dir.hits.insert(0, Hit { layer: UPPER, meta });
        }
        Ok(())
    }

    /// Makes the entry `resolved` names exist in the upper. `limit` copies only that many
    /// bytes of a file's content (an `O_TRUNC` open copies none).
    pub(crate) async fn copy_up(&self, resolved: &mut Resolved, limit: Option<u64>) -> Result<()> {
        self.copy_up_chain(&mut resolved.chain).await?;
        if resolved.name.is_none() {
            // The entry is the chain's last directory, now in the upper.
            if let Some(dir) = resolved.chain.last() {
                resolved.lookup.hits = dir.hits.clone();
            }
            return Ok(());
        }
        let Some(top) = resolved.top().cloned() else {
            return Err(
                VfsError::new(ErrorKind::NotFound, "copy-up").with_path(resolved.path.as_str())
            );
        };
        if top.layer == UPPER {
            return Ok(());
        }
        let path = &resolved.path;
        match top.meta.kind {
            FileKind::File => self.copy_file_up(path, &top, limit).await?,
            FileKind::Symlink => self.copy_symlink_up(path, &top).await?,
            FileKind::Directory => self.copy_dir_up(path, &top).await?,
            other => {
                return Err(VfsError::new(ErrorKind::Unsupported, "copy-up")
                    .with_path(path.as_str())
                    .with_detail(format!(
                    "a {other:?} cannot be copied up: the FileSystem contract cannot create one"
                )))
            }
        }
        let meta = self.upper.lstat(path).await?;
        if top.meta.is_dir() {
            resolved.lookup.hits.insert(0, Hit { layer: UPPER, meta });
        } else {
            resolved.lookup.hits = vec![Hit { layer: UPPER, meta }];
        }
        Ok(())
    }

    /// Copies the whole merged subtree of the directory `resolved` names into the upper
    /// and marks it opaque: afterwards the upper alone holds it, so it can be renamed
    /// there. Costs a full copy of every lower file beneath; hard links between lower
    /// files are not kept (each name gets its own copy).
    pub(crate) async fn copy_up_tree(&self, resolved: &mut Resolved) -> Result<()> {
        self.copy_up(resolved, None).await?;
        let Some(top) = resolved.as_dir() else {
            return Err(VfsError::new(ErrorKind::NotADirectory, "copy-up")
                .with_path(resolved.path.as_str()));
        };
        // Depth-first without recursion; every directory on the stack is in the upper.
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            for entry in self.merged_list(&dir).await? {
                let child = dir.path.join(&entry.name)?;
                let lookup = self.lookup_child(&dir, &entry.name, &child).await?;
                let Some(hit) = lookup.top().cloned() else {
                    continue;
                };
                if hit.meta.is_dir() {
                    let mut hits = lookup.hits;
                    if hit.layer != UPPER {
                        self.copy_dir_up(&child, &hit).await?;
                        let meta = self.upper.lstat(&child).await?;
                        hits.insert(0, Hit { layer: UPPER, meta });
                    }
                    // A directory only the upper holds is complete already.
                    if hits.iter().any(|hit| hit.layer != UPPER) {
                        stack.push(Dir { path: child, hits });
                    }
                    continue;
                }
                if hit.layer == UPPER {
                    continue;
                }
                match hit.meta.kind {
                    FileKind::File => self.copy_file_up(&child, &hit, None).await?,
                    FileKind::Symlink => self.copy_symlink_up(&child, &hit).await?,
                    other => {
                        return Err(VfsError::new(ErrorKind::Unsupported, "copy-up")
                            .with_path(child.as_str())
                            .with_detail(format!("a {other:?} cannot be copied up")))
                    }
                }
            }
        }
        // Everything is in the upper now; the lowers must no longer show through.
        self.make_opaque(&resolved.path, true).await?;
        resolved.lookup.hits.truncate(1);
        Ok(())
    }

    /// Copies the lower file `path` (as `top` holds it) up, at most `limit` bytes of it.
    async fn copy_file_up(&self, path: &VfsPath, top: &Hit, limit: Option<u64>) -> Result<()> {
        let parent = parent_of(path)?;
        let saved = self.saved_times(&parent).await;
        let len = limit.map_or(top.meta.size, |limit| limit.min(top.meta.size));
        // Private until its metadata is set, unless the upper cannot set the mode later.
        let mode = if self.upper.capabilities().permissions {
            0o600
        } else {
            top.meta.mode & 0o777
        };
        let (temp, handle) = self.create_temp_file(&parent, mode).await?;
        let copied = async {
            if len > 0 {
                let source = self
                    .layer(top.layer)?
                    .open(path, OpenOptions::read_only())
                    .await?;
                let copied = self.copy_data(source.as_ref(), handle.as_ref(), len).await;
                let closed = source.close().await;
                let (covered, written) = copied?;
                closed?;
                if written < covered {
                    // The file ends in a hole that was skipped.
                    handle.set_len(covered).await?;
                }
            }
            handle.close().await?;
            drop(handle);
            self.copy_metadata(&temp, top.layer, path, &top.meta)
                .await?;
            // Readers opening the file wait for this short step, so none is left behind.
            let _moves = self.handle_moves.write().await;
            self.upper.rename(&temp, path).await?;
            self.move_lower_handles(top.layer, path).await;
            Ok(())
        }
        .await;
        if let Err(err) = copied {
            // Best effort: the temporary name is hidden from the merged view anyway.
            let _ = self.upper.remove_file(&temp).await;
            return Err(err);
        }
        self.restore_times(&parent, saved).await;
        Ok(())
    }

    /// Moves the handles open on the lower file or directory `path` of `layer`, just
    /// copied up, to the copy.
    async fn move_lower_handles(&self, layer: usize, path: &VfsPath) {
        for slot in self.open_lowers.take(&(layer, path.as_str().to_owned())) {
            // A handle that cannot be moved keeps reading the lower copy, as overlayfs
            // did before Linux 4.19.
            if let Ok(handle) = self.upper.open(path, OpenOptions::read_only()).await {
                slot.move_to_upper(handle);
            }
        }
    }

    /// Streams `len` bytes from `source` to `target`; returns how far the source went and
    /// the end of the last chunk actually written (less when trailing zeros were skipped).
    async fn copy_data(
        &self,
        source: &dyn FileHandle,
        target: &dyn FileHandle,
        len: u64,
    ) -> Result<(u64, u64)> {
        let caps = self.upper.capabilities();
        let skip_zeros = caps.sparse_files && caps.random_writes;
        let (mut offset, mut written) = (0u64, 0u64);
        while offset < len {
            let want =
                usize::try_from(len - offset).map_or(COPY_CHUNK, |left| left.min(COPY_CHUNK));
            let chunk = source.read_at(offset, want).await?;
            if chunk.is_empty() {
                // The lower file is shorter than its stat said; copy what there is.
                break;
            }
            let size = chunk.len() as u64;
            if !(skip_zeros && chunk.iter().all(|&byte| byte == 0)) {
                write_all_at(target, offset, chunk).await?;
                written = offset + size;
            }
            offset += size;
        }
        Ok((offset, written))
    }

    /// Recreates the lower symlink `path` in the upper.
    async fn copy_symlink_up(&self, path: &VfsPath, top: &Hit) -> Result<()> {
        let target = self.layer(top.layer)?.read_link(path).await?;
        let parent = parent_of(path)?;
        let saved = self.saved_times(&parent).await;
        let mut created = None;
        for _ in 0..TEMP_ATTEMPTS {
            let temp = self.temp_path(&parent)?;
            match self.upper.symlink(&target, &temp).await {
                Ok(()) => {
                    created = Some(temp);
                    break;
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        let Some(temp) = created else {
            return Err(temp_exhausted(&parent));
        };
        self.copy_symlink_metadata(&temp, &top.meta).await;
        if let Err(err) = self.upper.rename(&temp, path).await {
            let _ = self.upper.remove_file(&temp).await;
            return Err(err);
        }
        self.restore_times(&parent, saved).await;
        Ok(())
    }

    /// Gives a recreated symlink the lower one's owner and times, where the upper can
    /// set them on a symlink itself. Best effort, as `cp -P --preserve`: the link works
    /// either way, and an upper without `lchown`/`lutimes` keeps its own.
    async fn copy_symlink_metadata(&self, link: &VfsPath, meta: &Metadata) {
        let caps = self.upper.capabilities();
        if caps.ownership {
            let _ = self
                .upper
                .set_owner_nofollow(link, Some(meta.uid), Some(meta.gid))
                .await;
        }
        if caps.set_times {
            let _ = self
                .upper
                .set_times_nofollow(link, SetTime::At(meta.atime), SetTime::At(meta.mtime))
                .await;
        }
    }

    /// Creates the directory `path` in the upper with the metadata of `top`, the layer
    /// that shows it (its content stays where it is).
    async fn copy_dir_up(&self, path: &VfsPath, top: &Hit) -> Result<()> {
        let parent = parent_of(path)?;
        let saved = self.saved_times(&parent).await;
        let mode = if self.upper.capabilities().permissions {
            0o700
        } else {
            top.meta.mode & 0o1777
        };
        let mut created = None;
        for _ in 0..TEMP_ATTEMPTS {
            let temp = self.temp_path(&parent)?;
            match self.upper.create_dir(&temp, mode).await {
                Ok(()) => {
                    created = Some(temp);
                    break;
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        let Some(temp) = created else {
            return Err(temp_exhausted(&parent));
        };
        let moved = async {
            self.copy_metadata(&temp, top.layer, path, &top.meta)
                .await?;
            let _moves = self.handle_moves.write().await;
            self.upper.rename(&temp, path).await?;
            self.move_lower_handles(top.layer, path).await;
            Ok(())
        }
        .await;
        if let Err(err) = moved {
            let _ = self.upper.remove_dir(&temp).await;
            return Err(err);
        }
        self.restore_times(&parent, saved).await;
        Ok(())
    }

    /// Gives the upper entry `target` the ownership, mode, xattrs and times of `meta`,
    /// the metadata of `source` in layer `layer`, as far as the upper stores them.
    async fn copy_metadata(
        &self,
        target: &VfsPath,
        layer: usize,
        source: &VfsPath,
        meta: &Metadata,
    ) -> Result<()> {
        let caps = self.upper.capabilities();
        if caps.ownership {
            let current = self.upper.lstat(target).await?;
            if (current.uid, current.gid) != (meta.uid, meta.gid) {
                match self
                    .upper
                    .set_owner(target, Some(meta.uid), Some(meta.gid))
                    .await
                {
                    // An unprivileged host upper cannot give files away; like `cp -p`,
                    // the copy keeps the caller's ownership then.
                    Err(err) if err.kind() == ErrorKind::NotPermitted => {}
                    other => other?,
                }
            }
        }
        if caps.permissions {
            // After chown, which clears setuid and setgid.
            self.upper
                .set_permissions(target, meta.mode & 0o7777)
                .await?;
        }
        if caps.xattrs {
            self.copy_xattrs(layer, source, target).await?;
        }
        if caps.set_times {
            self.upper
                .set_times(target, SetTime::At(meta.atime), SetTime::At(meta.mtime))
                .await?;
        }
        Ok(())
    }

    async fn copy_xattrs(&self, layer: usize, source: &VfsPath, target: &VfsPath) -> Result<()> {
        let lower = self.layer(layer)?;
        let names = match lower.list_xattrs(source).await {
            Ok(names) => names,
            // A lower without xattrs has none to copy.
            Err(err) if err.kind() == ErrorKind::Unsupported => return Ok(()),
            Err(err) => return Err(err),
        };
        for name in names {
            let value = match lower.get_xattr(source, &name).await {
                Ok(value) => value,
                Err(err) if err.kind() == ErrorKind::NoAttribute => continue,
                Err(err) => return Err(err),
            };
            match self
                .upper
                .set_xattr(target, &name, value, XattrMode::Upsert)
                .await
            {
                // A namespace the upper does not take (e.g. `security.` on some hosts)
                // is dropped, as `cp --preserve=xattr` drops it.
                Err(err) if err.kind() == ErrorKind::Unsupported => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// A fresh temporary file of mode `mode` in the upper directory `dir`, open for
    /// writing.
    async fn create_temp_file(
        &self,
        dir: &VfsPath,
        mode: u32,
    ) -> Result<(VfsPath, Box<dyn FileHandle>)> {
        let options = OpenOptions::new().write(true).create_new(true).mode(mode);
        for _ in 0..TEMP_ATTEMPTS {
            let temp = self.temp_path(dir)?;
            match self.upper.open(&temp, options).await {
                Ok(handle) => return Ok((temp, handle)),
                // A leftover of an interrupted copy-up: try the next name.
                Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(temp_exhausted(dir))
    }

    fn temp_path(&self, dir: &VfsPath) -> Result<VfsPath> {
        let n = self
            .temp_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        dir.join(&format!("{TEMP_PREFIX}{n:x}"))
    }

    /// The upper directory's metadata, to put its times back after a hidden change.
    pub(crate) async fn saved_times(&self, dir: &VfsPath) -> Option<Metadata> {
        if !self.upper.capabilities().set_times {
            return None;
        }
        self.upper.lstat(dir).await.ok()
    }

    /// Puts back the atime and mtime `saved` held.
    pub(crate) async fn restore_times(&self, dir: &VfsPath, saved: Option<Metadata>) {
        if let Some(meta) = saved {
            // Best effort: the change itself succeeded, and a parent's mtime is no reason
            // to fail it.
            let _ = self
                .upper
                .set_times(dir, SetTime::At(meta.atime), SetTime::At(meta.mtime))
                .await;
        }
    }
}

fn parent_of(path: &VfsPath) -> Result<VfsPath> {
    path.parent().ok_or_else(|| {
        VfsError::new(ErrorKind::Busy, "copy-up")
            .with_path("/")
            .with_detail("the root has no parent to copy into")
    })
}

fn temp_exhausted(dir: &VfsPath) -> VfsError {
    VfsError::new(ErrorKind::AlreadyExists, "copy-up")
        .with_path(dir.as_str())
        .with_detail("no free temporary name for the copy-up")
}
