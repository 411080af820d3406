//! The one contract every driver, wrapper and mount table implements.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use crate::error::{ErrorKind, Result, VfsError};
use crate::metadata::{
    Capabilities, DirEntry, FileKind, Metadata, OpenOptions, RenameFlags, SetTime, StatFs,
    XattrMode,
};
use crate::path::VfsPath;

/// The most symlinks one path resolution follows before failing with `ELOOP`, as on Linux.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// An open file.
///
/// A handle keeps working after its path is unlinked or renamed, and after its mount is
/// lazily detached. Offsets are explicit (`pread`/`pwrite` style), so one handle can be
/// shared by concurrent tasks.
#[async_trait]
pub trait FileHandle: Send + Sync {
    /// Reads up to `len` bytes at `offset`; fewer at the end of the file, none past it.
    /// Fails with `EBADF` if the handle was not opened for reading.
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes>;

    /// Writes `data` at `offset` (at the end of the file, whatever `offset` says, if the
    /// handle was opened with `append`) and returns the number of bytes written. Writing
    /// past the end leaves a hole that reads as zeros. Fails with `EBADF` if the handle was
    /// not opened for writing.
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<usize>;

    /// Truncates or extends the file to `len` bytes.
    async fn set_len(&self, len: u64) -> Result<()>;

    /// Makes written data durable, where the driver has a notion of durability.
    async fn sync(&self) -> Result<()>;

    /// The file's current metadata.
    async fn stat(&self) -> Result<Metadata>;

    /// Finishes the handle: drivers that buffer (object stores) publish here and report
    /// the error. Dropping a handle without closing it releases it too, but can lose errors.
    async fn close(&self) -> Result<()> {
        Ok(())
    }

    /// Every extended attribute of the open file, names with values, in no particular
    /// order: what [`FileSystem::list_xattrs`] and [`FileSystem::get_xattr`] answer for
    /// its path, but about the very file this handle reads and without a path lookup
    /// (`flistxattr`, `fgetxattr`). The default fails with `ENOTSUP`, which tells a caller
    /// to use the path calls.
    ///
    /// ```
    /// # async fn demo(fs: &dyn vfs_core::FileSystem) -> vfs_core::Result<()> {
    /// let path = vfs_core::VfsPath::new("/notes.txt")?;
    /// let handle = fs.open(&path, vfs_core::OpenOptions::read_only()).await?;
    /// let xattrs = match handle.xattrs().await {
    ///     Err(err) if err.kind() == vfs_core::ErrorKind::Unsupported => Vec::new(),
    ///     other => other?,
    /// };
    /// println!("{} xattrs", xattrs.len());
    /// # Ok(()) }
    /// ```
    async fn xattrs(&self) -> Result<Vec<(String, Bytes)>> {
        Err(VfsError::new(ErrorKind::Unsupported, "flistxattr")
            .with_detail("this handle cannot list extended attributes; use the path calls"))
    }

    /// Turns `offset..offset + len` into a hole that reads as zeros, keeping the size
    /// (`fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`). The default fails
    /// with `ENOTSUP`.
    async fn punch_hole(&self, offset: u64, len: u64) -> Result<()> {
        let _ = (offset, len);
        Err(VfsError::new(ErrorKind::Unsupported, "fallocate")
            .with_detail("this filesystem cannot punch holes"))
    }

    /// Makes sure `offset..offset + len` is backed by storage, growing the file to
    /// `offset + len` if it is shorter (`fallocate` with mode 0, `posix_fallocate`).
    ///
    /// The default grows the file with `set_len`, which is all a driver without
    /// preallocation can promise; `EFBIG` when the end does not fit a file size.
    async fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= i64::MAX as u64)
            .ok_or_else(|| VfsError::new(ErrorKind::FileTooLarge, "fallocate"))?;
        if end > self.stat().await?.size {
            self.set_len(end).await?;
        }
        Ok(())
    }
}

/// A filesystem: a driver, a wrapper around one, or a whole mount table.
///
/// Object-safe (`Arc<dyn FileSystem>`), `Send + Sync`, every call takes `&self`, so one
/// instance serves many tasks at once. Paths are absolute within the filesystem and
/// already validated ([`VfsPath`]); errors carry the errno, the operation and the path.
///
/// Semantics are those of Linux on tmpfs unless a method says otherwise, and the shared
/// conformance suite (`vfs_core::conformance`, feature `conformance`) holds every driver to
/// them. Where a driver cannot do something, its [`Capabilities`] say so and the call fails
/// with `ENOTSUP`.
///
/// The whole-file calls (`read_file`, `write_file`, `truncate`, `pread`, `pwrite`,
/// `exists`, `create_dir_all`, `remove_dir_all`, `realpath`) have default implementations
/// over the primitive ones, so a driver implements the minimum and overrides what it can
/// do faster.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use vfs_core::{FileSystem, VfsPath};
///
/// async fn copy(fs: Arc<dyn FileSystem>, from: &VfsPath, to: &VfsPath) -> vfs_core::Result<()> {
///     let data: Bytes = fs.read_file(from).await?;
///     fs.write_file(to, data).await
/// }
/// ```
#[async_trait]
pub trait FileSystem: Send + Sync {
    /// The driver's registry id (`"memory"`, `"host_dir"`, ...), shown by `listMounts`.
    fn kind(&self) -> &str;

    /// What this filesystem can do.
    fn capabilities(&self) -> Capabilities;

    /// Opens (and with `create`, creates) a file. Follows symlinks, except that
    /// `create_new` fails with `EEXIST` on any existing entry, a dangling symlink included.
    /// Opening a directory for writing fails with `EISDIR`.
    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>>;

    /// Metadata, following symlinks.
    async fn stat(&self, path: &VfsPath) -> Result<Metadata>;

    /// Metadata of the entry itself, not following a final symlink.
    async fn lstat(&self, path: &VfsPath) -> Result<Metadata>;

    /// The entries of a directory with their kinds, in no particular order, without `.`
    /// and `..`.
    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>>;

    /// The entries of a directory, each with its metadata as [`lstat`](Self::lstat) gives
    /// it, in no particular order: one call where a driver can list and stat together
    /// (FUSE's `readdirplus`), which a tree walk would otherwise pay for per entry. An
    /// entry removed between the listing and its `lstat` is left out.
    ///
    /// ```
    /// # async fn demo(fs: &dyn vfs_core::FileSystem) -> vfs_core::Result<()> {
    /// for (name, meta) in fs.read_dir_plus(&vfs_core::VfsPath::root()).await? {
    ///     println!("{name}: {:?}, {} bytes", meta.kind, meta.size);
    /// }
    /// # Ok(()) }
    /// ```
    async fn read_dir_plus(&self, path: &VfsPath) -> Result<Vec<(String, Metadata)>> {
        let entries = self.read_dir(path).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.lstat(&path.join(&entry.name)?).await {
                Ok(meta) => out.push((entry.name, meta)),
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(out)
    }

    /// Creates one directory; its parent must exist.
    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()>;

    /// Removes a file, symlink or other non-directory (`EISDIR` for a directory).
    async fn remove_file(&self, path: &VfsPath) -> Result<()>;

    /// Removes an empty directory (`ENOTEMPTY` otherwise, `ENOTDIR` for a non-directory).
    async fn remove_dir(&self, path: &VfsPath) -> Result<()>;

    /// Renames atomically where the capabilities say so, replacing a file or an empty
    /// directory at `to`. Renaming onto another link of the same file does nothing.
    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()>;

    /// Creates a symlink at `link` holding `target`, which is stored as given.
    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()>;

    /// The target a symlink holds (`EINVAL` if it is not a symlink).
    async fn read_link(&self, path: &VfsPath) -> Result<String>;

    /// Creates a hard link `new` to `existing` (not following a final symlink).
    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()>;

    /// Sets the permission bits (`0o7777`), following symlinks.
    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()>;

    /// Sets owner and/or group, following symlinks; `None` leaves it as it is.
    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()>;

    /// Sets access and modification times, following symlinks.
    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()>;

    /// Usage and limits of the filesystem holding `path`.
    async fn statfs(&self, path: &VfsPath) -> Result<StatFs>;

    /// Reads an extended attribute (`ENODATA` if it is not set).
    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        let _ = name;
        Err(unsupported("getxattr", path))
    }

    /// Sets an extended attribute.
    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        let _ = (name, value, mode);
        Err(unsupported("setxattr", path))
    }

    /// The names of the extended attributes set on `path`.
    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        Err(unsupported("listxattr", path))
    }

    /// Removes an extended attribute (`ENODATA` if it is not set).
    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        let _ = name;
        Err(unsupported("removexattr", path))
    }

    /// `rename` with `renameat2` flags: `no_replace` fails with `EEXIST` if `to` exists,
    /// `exchange` swaps the two entries atomically (both must exist).
    ///
    /// The default serves the empty flags by `rename` and refuses any flag with `EINVAL`,
    /// as Linux does on filesystems that do not support it.
    async fn rename_with(&self, from: &VfsPath, to: &VfsPath, flags: RenameFlags) -> Result<()> {
        if flags.is_empty() {
            return self.rename(from, to).await;
        }
        Err(VfsError::new(ErrorKind::InvalidInput, "rename")
            .with_path(from.as_str())
            .with_detail("rename flags are not supported by this filesystem"))
    }

    /// Creates a special file (`mknod`): a FIFO, a socket, or a character or block
    /// device numbered `rdev`. Regular files and directories have their own calls
    /// (`EINVAL` here). The default fails with `ENOTSUP`.
    async fn make_node(&self, path: &VfsPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        let _ = (kind, mode, rdev);
        Err(unsupported("mknod", path))
    }

    /// `set_owner` on the entry itself, not following a final symlink (`lchown`).
    ///
    /// The default forwards to `set_owner` for anything but a symlink and fails with
    /// `ENOTSUP` on a symlink.
    async fn set_owner_nofollow(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        if self.lstat(path).await?.is_symlink() {
            return Err(unsupported("lchown", path));
        }
        self.set_owner(path, uid, gid).await
    }

    /// `set_times` on the entry itself, not following a final symlink
    /// (`utimensat` with `AT_SYMLINK_NOFOLLOW`).
    ///
    /// The default forwards to `set_times` for anything but a symlink and fails with
    /// `ENOTSUP` on a symlink.
    async fn set_times_nofollow(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        if self.lstat(path).await?.is_symlink() {
            return Err(unsupported("lutimes", path));
        }
        self.set_times(path, atime, mtime).await
    }

    /// Releases the driver's resources when it is unmounted. Handles already open keep
    /// working; new calls may fail.
    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    /// The whole content of a file.
    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        let handle = self.open(path, OpenOptions::read_only()).await?;
        let mut content = BytesMut::new();
        loop {
            let chunk = handle.read_at(content.len() as u64, READ_CHUNK).await?;
            if chunk.is_empty() {
                break;
            }
            content.extend_from_slice(&chunk);
        }
        handle.close().await?;
        Ok(content.freeze())
    }

    /// Replaces the content of a file, creating it (mode `0o644`) if it is missing.
    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        let options = OpenOptions::new().write(true).create(true).truncate(true);
        let handle = self.open(path, options).await?;
        write_all_at(handle.as_ref(), 0, data).await?;
        handle.close().await
    }

    /// Up to `len` bytes at `offset`.
    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        let handle = self.open(path, OpenOptions::read_only()).await?;
        let data = handle.read_at(offset, len).await?;
        handle.close().await?;
        Ok(data)
    }

    /// Writes `data` at `offset` of an existing file.
    async fn pwrite(&self, path: &VfsPath, offset: u64, data: Bytes) -> Result<()> {
        let handle = self.open(path, OpenOptions::new().write(true)).await?;
        write_all_at(handle.as_ref(), offset, data).await?;
        handle.close().await
    }

    /// Truncates or extends a file to `len` bytes.
    async fn truncate(&self, path: &VfsPath, len: u64) -> Result<()> {
        let handle = self.open(path, OpenOptions::new().write(true)).await?;
        handle.set_len(len).await?;
        handle.close().await
    }

    /// Whether `path` exists, following symlinks (a dangling symlink does not exist).
    async fn exists(&self, path: &VfsPath) -> Result<bool> {
        match self.stat(path).await {
            Ok(_) => Ok(true),
            Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// Creates a directory and any missing parents (`mkdir -p`); succeeds if it exists as a
    /// directory (or a symlink to one), fails with `create_dir`'s errno (`EEXIST` over a
    /// file) otherwise.
    async fn create_dir_all(&self, path: &VfsPath, mode: u32) -> Result<()> {
        // Creating first and climbing only on ENOENT costs one call when the parent exists,
        // and answers every other case with the errno `mkdir` itself gives, as std does.
        let mut pending = vec![path.without_trailing_slash()];
        while let Some(dir) = pending.last() {
            match self.create_dir(dir, mode).await {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => match dir.parent() {
                    Some(parent) => {
                        pending.push(parent);
                        continue;
                    }
                    None => return Err(err),
                },
                Err(err) => {
                    let is_dir = matches!(self.stat(dir).await, Ok(meta) if meta.is_dir());
                    if !is_dir {
                        return Err(err);
                    }
                }
            }
            pending.pop();
        }
        Ok(())
    }

    /// Removes a directory and everything beneath it (`rm -r`), or a single non-directory.
    /// Symlinks are removed, never followed.
    async fn remove_dir_all(&self, path: &VfsPath) -> Result<()> {
        if !self.lstat(path).await?.is_dir() {
            return self.remove_file(path).await;
        }
        // Depth-first without recursion, so deep trees cannot overflow the stack.
        let mut pending = vec![(path.without_trailing_slash(), false)];
        while let Some((dir, listed)) = pending.pop() {
            if listed {
                self.remove_dir(&dir).await?;
                continue;
            }
            pending.push((dir.clone(), true));
            for entry in self.read_dir(&dir).await? {
                let child = dir.join(&entry.name)?;
                if entry.kind == crate::metadata::FileKind::Directory {
                    pending.push((child, false));
                } else {
                    self.remove_file(&child).await?;
                }
            }
        }
        Ok(())
    }

    /// The canonical path: every symlink resolved (`ELOOP` after
    /// [`MAX_SYMLINK_HOPS`]); absolute targets are taken from this filesystem's root.
    async fn realpath(&self, path: &VfsPath) -> Result<VfsPath> {
        let mut resolved = VfsPath::root();
        let mut pending: Vec<String> = path.components().rev().map(str::to_owned).collect();
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name == "." || name == ".." {
                // Only symlink targets hold these; both require a directory to stand in.
                if !self.stat(&resolved).await?.is_dir() {
                    return Err(VfsError::new(ErrorKind::NotADirectory, "realpath")
                        .with_path(path.as_str()));
                }
                if name == ".." {
                    resolved = resolved.parent().unwrap_or_else(VfsPath::root);
                }
                continue;
            }
            let candidate = resolved.join(&name)?;
            let meta = self.lstat(&candidate).await?;
            if meta.is_symlink() {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(VfsError::new(ErrorKind::Loop, "realpath").with_path(path.as_str()));
                }
                let target = self.read_link(&candidate).await?;
                if target.starts_with('/') {
                    resolved = VfsPath::root();
                }
                // A target ending in `/` must name a directory, as `.` after it does.
                if target.ends_with('/') {
                    pending.push(".".to_owned());
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(str::to_owned),
                );
            } else {
                if !meta.is_dir() && !pending.is_empty() {
                    return Err(VfsError::new(ErrorKind::NotADirectory, "realpath")
                        .with_path(path.as_str()));
                }
                resolved = candidate;
            }
        }
        if path.has_trailing_slash() && !self.stat(&resolved).await?.is_dir() {
            return Err(
                VfsError::new(ErrorKind::NotADirectory, "realpath").with_path(path.as_str())
            );
        }
        Ok(resolved)
    }
}

/// How many bytes the default `read_file` asks a handle for at once.
const READ_CHUNK: usize = 1 << 20;

/// Writes all of `data` at `offset`, looping over short writes.
pub async fn write_all_at(handle: &dyn FileHandle, mut offset: u64, mut data: Bytes) -> Result<()> {
    while !data.is_empty() {
        let written = handle.write_at(offset, data.clone()).await?;
        if written == 0 {
            return Err(
                VfsError::new(ErrorKind::Io, "write").with_detail("the driver wrote 0 bytes")
            );
        }
        offset += written as u64;
        let _ = data.split_to(written.min(data.len()));
    }
    Ok(())
}

fn unsupported(operation: &'static str, path: &VfsPath) -> VfsError {
    VfsError::new(ErrorKind::Unsupported, operation).with_path(path.as_str())
}
