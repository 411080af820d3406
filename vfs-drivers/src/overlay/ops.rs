//! Namespace operations: create, remove, rename and link, with whiteouts and opaque
//! directories kept in the upper.
//!
//! Every operation that changes the namespace or copies up runs under the overlay's one
//! lock, so its lookups and its steps in the upper are not interleaved with another
//! change. Reads take no lock.

use vfs_core::{DirEntry, ErrorKind, FileKind, Result, StatFs, VfsError, VfsPath, MAX_PATH_BYTES};

use super::files::reserved;
use super::lookup::{Resolved, Want, UPPER};
use super::whiteout::is_reserved;
use super::{fail, OverlayFs};

impl OverlayFs {
    pub(crate) async fn read_dir_impl(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        const OP: &str = "scandir";
        let resolved = self.resolve(path, Want::Follow, OP).await?;
        if resolved.top().is_none() {
            return Err(fail(ErrorKind::NotFound, OP, path));
        }
        let Some(dir) = resolved.as_dir() else {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        };
        self.merged_list(&dir).await
    }

    pub(crate) async fn read_link_impl(&self, path: &VfsPath) -> Result<String> {
        const OP: &str = "readlink";
        let resolved = self.resolve(path, Want::NoFollow, OP).await?;
        let Some(top) = resolved.top() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        if !top.meta.is_symlink() {
            return Err(fail(ErrorKind::InvalidInput, OP, path));
        }
        self.layer(top.layer)?.read_link(&resolved.path).await
    }

    pub(crate) async fn statfs_impl(&self, path: &VfsPath) -> Result<StatFs> {
        self.stat_impl(path, Want::Follow, "statfs").await?;
        self.upper.statfs(&VfsPath::root()).await
    }

    pub(crate) async fn create_dir_impl(&self, path: &VfsPath, mode: u32) -> Result<()> {
        const OP: &str = "mkdir";
        let _guard = self.change().await;
        let mut resolved = self.walk(path, Want::Parent, OP).await?;
        let Some(name) = resolved.name.clone() else {
            return Err(fail(ErrorKind::AlreadyExists, OP, path));
        };
        if is_reserved(&name) {
            return Err(reserved(OP, path));
        }
        if resolved.top().is_some() {
            return Err(fail(ErrorKind::AlreadyExists, OP, path));
        }
        self.copy_up_chain(&mut resolved.chain).await?;
        self.upper.create_dir(&resolved.path, mode).await?;
        if resolved.lookup.whiteout == Some(UPPER) {
            // A directory replacing a deleted lower entry starts empty: lower directories
            // of that name must not show through once the whiteout is gone.
            if let Err(err) = self.make_opaque(&resolved.path, false).await {
                let _ = self.upper.remove_dir(&resolved.path).await;
                return Err(err);
            }
            self.drop_whiteout_after_create(&resolved).await;
        }
        Ok(())
    }

    /// Takes the change lock and readies `path` for a new non-directory entry in the
    /// upper layer: the parent resolved, Linux's `filename_create` errors in its order, the
    /// parent chain copied up. The caller creates the entry there, then drops the whiteout
    /// it may replace.
    async fn prepare_new_entry(
        &self,
        path: &VfsPath,
        op: &'static str,
    ) -> Result<(super::ChangeGuard<'_>, Resolved)> {
        let guard = self.change().await;
        let mut resolved = self.walk(path, Want::Parent, op).await?;
        let Some(name) = resolved.name.clone() else {
            return Err(fail(ErrorKind::AlreadyExists, op, path));
        };
        if resolved.top().is_some() {
            return Err(fail(ErrorKind::AlreadyExists, op, path));
        }
        if path.has_trailing_slash() {
            return Err(fail(ErrorKind::NotFound, op, path));
        }
        if is_reserved(&name) {
            return Err(reserved(op, path));
        }
        self.copy_up_chain(&mut resolved.chain).await?;
        Ok((guard, resolved))
    }

    pub(crate) async fn symlink_impl(&self, target: &str, link: &VfsPath) -> Result<()> {
        const OP: &str = "symlink";
        if !self.upper.capabilities().symlinks {
            return Err(fail(ErrorKind::Unsupported, OP, link));
        }
        // The target checks come first, as in the drivers, so a bad one changes nothing.
        if target.is_empty() {
            return Err(fail(ErrorKind::NotFound, OP, link));
        }
        if target.len() > MAX_PATH_BYTES {
            return Err(fail(ErrorKind::NameTooLong, OP, link));
        }
        if target.contains('\0') {
            return Err(fail(ErrorKind::InvalidInput, OP, link));
        }
        let (_guard, resolved) = self.prepare_new_entry(link, OP).await?;
        self.upper.symlink(target, &resolved.path).await?;
        self.drop_whiteout_after_create(&resolved).await;
        Ok(())
    }

    pub(crate) async fn hard_link_impl(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        const OP: &str = "link";
        if !self.upper.capabilities().hard_links {
            return Err(fail(ErrorKind::NotPermitted, OP, new));
        }
        let _guard = self.change().await;
        let mut source = self.walk(existing, Want::NoFollow, OP).await?;
        let Some(source_top) = source.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, existing));
        };
        let mut target = self.walk(new, Want::Parent, OP).await?;
        let Some(name) = target.name.clone() else {
            return Err(fail(ErrorKind::AlreadyExists, OP, new));
        };
        if target.top().is_some() {
            return Err(fail(ErrorKind::AlreadyExists, OP, new));
        }
        if new.has_trailing_slash() {
            return Err(fail(ErrorKind::NotFound, OP, new));
        }
        if source_top.meta.is_dir() {
            return Err(fail(ErrorKind::NotPermitted, OP, existing));
        }
        if is_reserved(&name) {
            return Err(reserved(OP, new));
        }
        // A lower file is copied up and the link made in the upper: the two names share
        // the upper inode from then on (other lower links of it are not followed).
        self.copy_up(&mut source, None)
            .await
            .map_err(|err| relabel(err, existing))?;
        self.copy_up_chain(&mut target.chain).await?;
        self.upper.hard_link(&source.path, &target.path).await?;
        self.drop_whiteout_after_create(&target).await;
        Ok(())
    }

    pub(crate) async fn remove_file_impl(&self, path: &VfsPath) -> Result<()> {
        const OP: &str = "unlink";
        let _guard = self.change().await;
        let mut resolved = self.walk(path, Want::Parent, OP).await?;
        let (Some(name), Some(parent)) = (resolved.name.clone(), resolved.parent().cloned()) else {
            return Err(fail(ErrorKind::IsADirectory, OP, path));
        };
        let Some(top) = resolved.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        if top.meta.is_dir() {
            return Err(fail(ErrorKind::IsADirectory, OP, path));
        }
        if path.has_trailing_slash() {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        }
        if top.layer != UPPER {
            return self
                .hide_lower_entry(&mut resolved, &parent.path, &name, top.layer)
                .await;
        }
        // The whiteout goes in first (the upper entry beside it still wins), so the lower
        // entry never shows through, even for a moment.
        let whiteout = self.exists_below(&parent, &name, UPPER).await?;
        if whiteout {
            self.create_whiteout(&parent.path, &name).await?;
        }
        if let Err(err) = self.upper.remove_file(&resolved.path).await {
            if whiteout {
                let _ = self.remove_whiteout(&parent.path, &name).await;
            }
            return Err(err);
        }
        Ok(())
    }

    /// Removes an entry that only lowers hold: a whiteout beside it in the upper hides it,
    /// and the handles open on it see it unlinked.
    async fn hide_lower_entry(
        &self,
        resolved: &mut Resolved,
        parent: &VfsPath,
        name: &str,
        layer: usize,
    ) -> Result<()> {
        self.copy_up_chain(&mut resolved.chain).await?;
        self.create_whiteout(parent, name).await?;
        self.open_lowers
            .unlinked(&(layer, resolved.path.as_str().to_owned()));
        Ok(())
    }

    pub(crate) async fn remove_dir_impl(&self, path: &VfsPath) -> Result<()> {
        const OP: &str = "rmdir";
        let _guard = self.change().await;
        let mut resolved = self.walk(path, Want::Parent, OP).await?;
        let (Some(name), Some(parent)) = (resolved.name.clone(), resolved.parent().cloned()) else {
            return Err(fail(ErrorKind::Busy, OP, path));
        };
        let Some(top) = resolved.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, path));
        };
        let Some(dir) = resolved.as_dir() else {
            return Err(fail(ErrorKind::NotADirectory, OP, path));
        };
        if !self.merged_list(&dir).await?.is_empty() {
            return Err(fail(ErrorKind::DirectoryNotEmpty, OP, path));
        }
        if top.layer != UPPER {
            return self
                .hide_lower_entry(&mut resolved, &parent.path, &name, top.layer)
                .await;
        }
        let whiteout = self.exists_below(&parent, &name, UPPER).await?;
        if whiteout {
            self.create_whiteout(&parent.path, &name).await?;
        }
        // Empty in the merged view, the upper directory holds at most whiteouts and
        // markers; they go first so the upper can remove it.
        let removed = async {
            self.clear_reserved(&resolved.path).await?;
            self.upper.remove_dir(&resolved.path).await
        }
        .await;
        if let Err(err) = removed {
            if whiteout {
                let _ = self.remove_whiteout(&parent.path, &name).await;
            }
            return Err(err);
        }
        Ok(())
    }

    /// A FIFO, socket or device node, created in the upper as a symlink is.
    pub(crate) async fn make_node_impl(
        &self,
        path: &VfsPath,
        kind: FileKind,
        mode: u32,
        rdev: u64,
    ) -> Result<()> {
        const OP: &str = "mknod";
        if matches!(
            kind,
            FileKind::File | FileKind::Directory | FileKind::Symlink
        ) {
            return Err(fail(ErrorKind::InvalidInput, OP, path));
        }
        let (_guard, resolved) = self.prepare_new_entry(path, OP).await?;
        self.upper
            .make_node(&resolved.path, kind, mode, rdev)
            .await?;
        self.drop_whiteout_after_create(&resolved).await;
        Ok(())
    }

    /// `rename`; with `no_replace`, `EEXIST` when the target exists, checked under the
    /// same lock as the rename, right after the source is found (Linux's order).
    pub(crate) async fn rename_impl(
        &self,
        from: &VfsPath,
        to: &VfsPath,
        no_replace: bool,
    ) -> Result<()> {
        const OP: &str = "rename";
        let _guard = self.change().await;
        let source = self.walk(from, Want::Parent, OP).await?;
        let target = self.walk(to, Want::Parent, OP).await?;
        if source.name.is_none() {
            return Err(fail(ErrorKind::Busy, OP, from));
        }
        let Some(target_name) = target.name.clone() else {
            return Err(fail(ErrorKind::Busy, OP, to));
        };
        let Some(source_top) = source.top().cloned() else {
            return Err(fail(ErrorKind::NotFound, OP, from));
        };
        if no_replace && target.top().is_some() {
            return Err(fail(ErrorKind::AlreadyExists, OP, to));
        }
        let is_dir = source_top.meta.is_dir();
        if (from.has_trailing_slash() || to.has_trailing_slash()) && !is_dir {
            return Err(fail(ErrorKind::NotADirectory, OP, from));
        }
        if is_dir && target.path != source.path && target.path.starts_with(&source.path) {
            return Err(fail(ErrorKind::InvalidInput, OP, to));
        }
        if let Some(target_top) = target.top().cloned() {
            if source.path == target.path {
                return Ok(());
            }
            if source.path.starts_with(&target.path) {
                return Err(fail(ErrorKind::DirectoryNotEmpty, OP, to));
            }
            let same_file = !is_dir
                && !target_top.meta.is_dir()
                && source_top.layer == target_top.layer
                && source_top.meta.ino == target_top.meta.ino;
            if same_file {
                // Another link of the same file: nothing to do, as rename(2).
                return Ok(());
            }
            match (is_dir, target_top.meta.is_dir()) {
                (true, false) => return Err(fail(ErrorKind::NotADirectory, OP, to)),
                (false, true) => return Err(fail(ErrorKind::IsADirectory, OP, to)),
                (true, true) => {
                    let Some(victim) = target.as_dir() else {
                        return Err(fail(ErrorKind::NotADirectory, OP, to));
                    };
                    if !self.merged_list(&victim).await?.is_empty() {
                        return Err(fail(ErrorKind::DirectoryNotEmpty, OP, to));
                    }
                }
                (false, false) => {}
            }
        }
        if is_reserved(&target_name) {
            return Err(reserved(OP, to));
        }
        if is_dir {
            self.rename_dir(source, target, from, to).await
        } else {
            self.rename_file(source, target, from, to).await
        }
    }

    /// Renames a non-directory: copied up if it is a lower one, renamed in the upper,
    /// and its old name whited out if a lower holds it.
    async fn rename_file(
        &self,
        mut source: Resolved,
        mut target: Resolved,
        from: &VfsPath,
        to: &VfsPath,
    ) -> Result<()> {
        let (Some(name), Some(parent)) = (source.name.clone(), source.parent().cloned()) else {
            return Err(fail(ErrorKind::Busy, "rename", from));
        };
        let whiteout = self.exists_below(&parent, &name, UPPER).await?;
        self.copy_up(&mut source, None)
            .await
            .map_err(|err| relabel(err, from))?;
        self.copy_up_chain(&mut target.chain)
            .await
            .map_err(|err| relabel(err, to))?;
        self.finish_rename(&source, &target, whiteout, from).await
    }

    /// Renames a directory. One held only by the upper is renamed there; one with lower
    /// parts is first copied up whole and made opaque (see [`OverlayFs`]).
    async fn rename_dir(
        &self,
        mut source: Resolved,
        mut target: Resolved,
        from: &VfsPath,
        to: &VfsPath,
    ) -> Result<()> {
        let (Some(name), Some(parent)) = (source.name.clone(), source.parent().cloned()) else {
            return Err(fail(ErrorKind::Busy, "rename", from));
        };
        let (Some(target_name), Some(target_parent)) =
            (target.name.clone(), target.parent().cloned())
        else {
            return Err(fail(ErrorKind::Busy, "rename", to));
        };
        let whiteout = self.exists_below(&parent, &name, UPPER).await?;
        // Lower directories at the new name must not merge into the moved one.
        let opaque = target.lookup.whiteout == Some(UPPER)
            || self
                .exists_below(&target_parent, &target_name, UPPER)
                .await?;
        if source.lookup.has_lower() {
            self.copy_up_tree(&mut source)
                .await
                .map_err(|err| relabel(err, from))?;
        } else if opaque && !self.is_opaque(UPPER, &source.path).await? {
            self.make_opaque(&source.path, true).await?;
        }
        self.copy_up_chain(&mut target.chain)
            .await
            .map_err(|err| relabel(err, to))?;
        if target.top().is_some_and(|top| top.layer == UPPER) {
            // The empty directory being replaced may still hold whiteouts; the upper
            // replaces only an empty directory.
            self.clear_reserved(&target.path)
                .await
                .map_err(|err| relabel(err, to))?;
        }
        self.finish_rename(&source, &target, whiteout, from).await
    }

    /// The last steps of a rename once both sides are in the upper: the whiteout of the
    /// old name (first, so the lower entry never shows through), the rename, and the
    /// removal of a whiteout at the new name.
    async fn finish_rename(
        &self,
        source: &Resolved,
        target: &Resolved,
        whiteout: bool,
        from: &VfsPath,
    ) -> Result<()> {
        let (Some(name), Some(parent)) = (&source.name, source.parent()) else {
            return Err(fail(ErrorKind::Busy, "rename", from));
        };
        if whiteout {
            self.create_whiteout(&parent.path, name).await?;
        }
        if let Err(err) = self.upper.rename(&source.path, &target.path).await {
            if whiteout {
                let _ = self.remove_whiteout(&parent.path, name).await;
            }
            return Err(relabel(err, from));
        }
        self.drop_whiteout_after_create(target).await;
        if let Some(replaced) = target.top().filter(|top| top.layer != UPPER) {
            // A lower file the rename replaced: its open handles see one link less.
            self.open_lowers
                .unlinked(&(replaced.layer, target.path.as_str().to_owned()));
        }
        Ok(())
    }
}

/// Names `path` in an error from a layer.
pub(crate) fn relabel(err: VfsError, path: &VfsPath) -> VfsError {
    if err.path().is_some() {
        err.map_path(|_| path.to_string())
    } else {
        err.with_path(path.to_string())
    }
}
