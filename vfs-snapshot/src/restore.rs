//! Writing a snapshot back into any filesystem.

use bytes::Bytes;
use futures::StreamExt;
use vfs_core::{
    write_all_at, ErrorKind, FileSystem, OpenOptions, Result, SetTime, Timestamp, VfsError,
    VfsPath, XattrMode,
};

use crate::digest::{Digest, SnapshotId};
use crate::progress::{report, Phase, ProgressSender};
use crate::store::Repository;
use crate::tree::{Attrs, ChunkRef, Node};

/// How many chunks of a file are fetched ahead of the one being written.
const RESTORE_WINDOW: usize = 4;

/// How a snapshot is restored.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Set owners as recorded. Drivers without ownership, and `EPERM` from a host driver
    /// run without privilege, are counted in [`RestoreStats::skipped_owners`], not fatal.
    pub owners: bool,
    /// Set extended attributes as recorded, where the target supports them.
    pub xattrs: bool,
    /// Where to publish [`Progress`](crate::Progress) (see
    /// [`progress_channel`](crate::progress_channel)).
    pub progress: Option<ProgressSender>,
}

impl Default for RestoreOptions {
    fn default() -> RestoreOptions {
        RestoreOptions {
            owners: true,
            xattrs: true,
            progress: None,
        }
    }
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Regular files written (hard links excluded).
    pub files: u64,
    /// Directories created or, for the target itself, updated.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// File bytes written.
    pub bytes: u64,
    /// Fifos, sockets and devices left out: the `FileSystem` contract cannot create them.
    pub skipped_specials: Vec<String>,
    /// Entries whose owner could not be set.
    pub skipped_owners: u64,
    /// Entries whose xattrs could not be set (target without xattrs).
    pub skipped_xattrs: u64,
}

impl Repository {
    /// Writes snapshot `id` into `fs` at `path`, which must be missing (it is created) or
    /// an empty directory. Content is read and checked chunk by chunk, so a corrupt or
    /// missing object stops the restore with `EIO` naming it; what was written before
    /// stays and the error says where it stopped.
    ///
    /// Directories get their final mode and times after their content, so a read-only
    /// directory is still filled and its mtime is the recorded one.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository, id: vfs_snapshot::SnapshotId, fs: &dyn vfs_core::FileSystem) -> vfs_core::Result<()> {
    /// let stats = repo.restore(&id, fs, &vfs_core::VfsPath::new("/restored")?, &Default::default()).await?;
    /// println!("{} files", stats.files);
    /// # Ok(()) }
    /// ```
    pub async fn restore(
        &self,
        id: &SnapshotId,
        fs: &dyn FileSystem,
        path: &VfsPath,
        options: &RestoreOptions,
    ) -> Result<RestoreStats> {
        let root = path.without_trailing_slash();
        match fs.lstat(&root).await {
            Ok(meta) if meta.is_dir() => {
                if !fs.read_dir(&root).await?.is_empty() {
                    return Err(VfsError::new(ErrorKind::DirectoryNotEmpty, "restore")
                        .with_path(root.as_str())
                        .with_detail("restore writes into a missing or empty directory"));
                }
            }
            Ok(_) => {
                return Err(
                    VfsError::new(ErrorKind::AlreadyExists, "restore").with_path(root.as_str())
                )
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {
                fs.create_dir_all(&root, 0o700).await?
            }
            Err(err) => return Err(err),
        }
        let caps = fs.capabilities();
        let mut stats = RestoreStats::default();
        let progress = options.progress.as_ref();
        // Totals from the record when there is one; restore itself does not need it.
        let (files_total, bytes_total) = match self.snapshot_info(id).await {
            Ok(info) => (info.files, info.bytes),
            Err(_) => (0, 0),
        };
        report(progress, |p| {
            p.phase = Phase::Content;
            p.files_total = files_total;
            p.bytes_total = bytes_total;
        });
        // Directories whose attributes are set at the end, in pre-order; applied in
        // reverse, every directory comes after everything inside it.
        let mut dirs: Vec<(VfsPath, Attrs)> = Vec::new();
        // Canonical pre-order (names sorted, a directory's content right after it), the
        // order hard links were recorded in, so a link's first path always exists.
        let mut pending: Vec<(VfsPath, Node)> = vec![(root.clone(), Node::Directory { tree: *id })];
        while let Some((target, node)) = pending.pop() {
            match node {
                Node::Directory { tree } => {
                    if target != root {
                        fs.create_dir(&target, 0o700).await?;
                    }
                    let tree = self.read_tree(&tree).await?;
                    stats.dirs += 1;
                    dirs.push((target.clone(), tree.attrs));
                    for entry in tree.entries.into_iter().rev() {
                        pending.push((target.join(&entry.name)?, entry.node));
                    }
                }
                Node::File {
                    attrs,
                    chunks,
                    hardlink,
                    size,
                } => {
                    if let Some(first) = hardlink {
                        let first = root.join_relative(&first)?;
                        if caps.hard_links {
                            fs.hard_link(&first, &target).await?;
                            stats.hardlinks += 1;
                            // The record counts every link as a file, so progress does.
                            report(progress, |p| {
                                p.files_done += 1;
                                p.bytes_done += size;
                            });
                            continue;
                        }
                    }
                    let written = self.write_chunks(fs, &target, &chunks).await?;
                    stats.bytes += written;
                    stats.files += 1;
                    report(progress, |p| {
                        p.files_done += 1;
                        p.bytes_done += written;
                    });
                    self.apply_attrs(fs, &target, &attrs, options, &mut stats)
                        .await?;
                }
                Node::Symlink { target: link, .. } => {
                    // Owner and times of a link itself are out of reach: the contract's
                    // chown and utimes follow links.
                    fs.symlink(&link, &target).await?;
                    stats.symlinks += 1;
                }
                Node::Special { .. } => stats.skipped_specials.push(target.to_string()),
            }
        }
        report(progress, |p| p.phase = Phase::Finishing);
        for (dir, attrs) in dirs.iter().rev() {
            self.apply_attrs(fs, dir, attrs, options, &mut stats)
                .await?;
        }
        report(progress, |p| p.phase = Phase::Done);
        Ok(stats)
    }

    async fn write_chunks(
        &self,
        fs: &dyn FileSystem,
        path: &VfsPath,
        chunks: &[ChunkRef],
    ) -> Result<u64> {
        let handle = fs
            .open(
                path,
                OpenOptions::new().write(true).create_new(true).mode(0o600),
            )
            .await?;
        let mut offset = 0u64;
        // Chunks are fetched, decompressed and checked a few at a time as their own
        // tasks (every core works), and written in order: memory stays bounded.
        // Ids by value: a closure over `&ChunkRef` makes the future not `Send` for rustc
        // (rust-lang/rust#102211), and callers spawn it.
        let ids: Vec<Digest> = chunks.iter().map(|chunk| chunk.id).collect();
        let mut fetched = std::pin::pin!(futures::stream::iter(ids)
            .map(|id| self.spawn_read_blob(id))
            .buffered(RESTORE_WINDOW));
        while let Some(data) = fetched.next().await {
            let data: Bytes = data.map_err(|err| {
                let detail = format!("restoring {path}: {err}");
                VfsError::new(err.kind(), "restore")
                    .with_path(path.as_str())
                    .with_detail(detail)
            })?;
            let len = data.len() as u64;
            write_all_at(handle.as_ref(), offset, data).await?;
            offset += len;
        }
        handle.close().await?;
        Ok(offset)
    }

    async fn apply_attrs(
        &self,
        fs: &dyn FileSystem,
        path: &VfsPath,
        attrs: &Attrs,
        options: &RestoreOptions,
        stats: &mut RestoreStats,
    ) -> Result<()> {
        let caps = fs.capabilities();
        if options.xattrs && !attrs.xattrs.is_empty() {
            if caps.xattrs {
                for (name, value) in &attrs.xattrs {
                    fs.set_xattr(path, name, Bytes::from(value.clone()), XattrMode::Upsert)
                        .await?;
                }
            } else {
                stats.skipped_xattrs += 1;
            }
        }
        if options.owners {
            if caps.ownership {
                match fs.set_owner(path, Some(attrs.uid), Some(attrs.gid)).await {
                    Ok(()) => {}
                    Err(err)
                        if matches!(
                            err.kind(),
                            ErrorKind::NotPermitted | ErrorKind::Unsupported
                        ) =>
                    {
                        stats.skipped_owners += 1
                    }
                    Err(err) => return Err(err),
                }
            } else {
                stats.skipped_owners += 1;
            }
        }
        // After chown, which clears setuid/setgid bits on some systems.
        if caps.permissions {
            fs.set_permissions(path, attrs.mode).await?;
        }
        if caps.set_times {
            let mtime = SetTime::At(Timestamp(attrs.mtime));
            fs.set_times(path, mtime, mtime).await?;
        }
        Ok(())
    }
}

trait JoinRelative {
    fn join_relative(&self, rel: &str) -> Result<VfsPath>;
}

impl JoinRelative for VfsPath {
    /// Joins a `a/b/c` path recorded in a tree; each part is validated by `join`, so a
    /// hostile tree cannot name `..` or leave the restore root.
    fn join_relative(&self, rel: &str) -> Result<VfsPath> {
        let mut out = self.clone();
        for part in rel.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(VfsError::new(ErrorKind::Io, "restore")
                    .with_path(rel)
                    .with_detail("a hard link in the snapshot names an invalid path"));
            }
            out = out.join(part)?;
        }
        Ok(out)
    }
}
