//! A wrapper that makes any filesystem read-only.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{ErrorKind, Result, VfsError};
use crate::filesystem::{FileHandle, FileSystem};
use crate::metadata::{
    Capabilities, DirEntry, FileKind, Metadata, OpenOptions, RenameFlags, SetTime, StatFs,
    XattrMode,
};
use crate::path::VfsPath;

/// Serves a filesystem with every mutation refused with `EROFS`, before the inner
/// filesystem is asked, so nothing reaches it. Reads pass straight through.
///
/// The mount table wraps read-only mounts in it; it works over any [`FileSystem`].
///
/// ```
/// # async fn demo(inner: std::sync::Arc<dyn vfs_core::FileSystem>) -> vfs_core::Result<()> {
/// use std::sync::Arc;
/// use vfs_core::{FileSystem, ReadOnlyFs, VfsPath};
///
/// let fs = ReadOnlyFs::new(inner);
/// let err = fs.write_file(&VfsPath::new("/x")?, "data".into()).await.unwrap_err();
/// assert_eq!(err.code(), "EROFS");
/// # Ok(()) }
/// ```
pub struct ReadOnlyFs {
    inner: Arc<dyn FileSystem>,
}

impl ReadOnlyFs {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn FileSystem>) -> ReadOnlyFs {
        ReadOnlyFs { inner }
    }

    /// The wrapped filesystem.
    pub fn inner(&self) -> &Arc<dyn FileSystem> {
        &self.inner
    }
}

fn refuse<T>(operation: &'static str, path: &VfsPath) -> Result<T> {
    Err(VfsError::new(ErrorKind::ReadOnly, operation).with_path(path.as_str()))
}

#[async_trait]
impl FileSystem for ReadOnlyFs {
    fn kind(&self) -> &str {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities().as_read_only()
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        if options.mutates() {
            return refuse("open", path);
        }
        self.inner.open(path, options).await
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.inner.stat(path).await
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.inner.lstat(path).await
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        self.inner.read_dir(path).await
    }

    async fn read_dir_plus(&self, path: &VfsPath) -> Result<Vec<(String, Metadata)>> {
        self.inner.read_dir_plus(path).await
    }

    async fn create_dir(&self, path: &VfsPath, _mode: u32) -> Result<()> {
        refuse("mkdir", path)
    }

    async fn create_dir_all(&self, path: &VfsPath, _mode: u32) -> Result<()> {
        refuse("mkdir", path)
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        refuse("unlink", path)
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        refuse("rmdir", path)
    }

    async fn remove_dir_all(&self, path: &VfsPath) -> Result<()> {
        refuse("rm", path)
    }

    async fn rename(&self, from: &VfsPath, _to: &VfsPath) -> Result<()> {
        refuse("rename", from)
    }

    async fn symlink(&self, _target: &str, link: &VfsPath) -> Result<()> {
        refuse("symlink", link)
    }

    async fn rename_with(&self, from: &VfsPath, _to: &VfsPath, _flags: RenameFlags) -> Result<()> {
        refuse("rename", from)
    }

    async fn make_node(
        &self,
        path: &VfsPath,
        _kind: FileKind,
        _mode: u32,
        _rdev: u64,
    ) -> Result<()> {
        refuse("mknod", path)
    }

    async fn set_owner_nofollow(
        &self,
        path: &VfsPath,
        _uid: Option<u32>,
        _gid: Option<u32>,
    ) -> Result<()> {
        refuse("lchown", path)
    }

    async fn set_times_nofollow(
        &self,
        path: &VfsPath,
        _atime: SetTime,
        _mtime: SetTime,
    ) -> Result<()> {
        refuse("lutimes", path)
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        self.inner.read_link(path).await
    }

    async fn hard_link(&self, _existing: &VfsPath, new: &VfsPath) -> Result<()> {
        refuse("link", new)
    }

    async fn set_permissions(&self, path: &VfsPath, _mode: u32) -> Result<()> {
        refuse("chmod", path)
    }

    async fn set_owner(&self, path: &VfsPath, _uid: Option<u32>, _gid: Option<u32>) -> Result<()> {
        refuse("chown", path)
    }

    async fn set_times(&self, path: &VfsPath, _atime: SetTime, _mtime: SetTime) -> Result<()> {
        refuse("utimes", path)
    }

    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.inner.statfs(path).await
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        self.inner.get_xattr(path, name).await
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        _name: &str,
        _value: Bytes,
        _mode: XattrMode,
    ) -> Result<()> {
        refuse("setxattr", path)
    }

    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        self.inner.list_xattrs(path).await
    }

    async fn remove_xattr(&self, path: &VfsPath, _name: &str) -> Result<()> {
        refuse("removexattr", path)
    }

    async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }

    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        self.inner.read_file(path).await
    }

    async fn write_file(&self, path: &VfsPath, _data: Bytes) -> Result<()> {
        refuse("write", path)
    }

    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        self.inner.pread(path, offset, len).await
    }

    async fn pwrite(&self, path: &VfsPath, _offset: u64, _data: Bytes) -> Result<()> {
        refuse("write", path)
    }

    async fn truncate(&self, path: &VfsPath, _len: u64) -> Result<()> {
        refuse("truncate", path)
    }

    async fn exists(&self, path: &VfsPath) -> Result<bool> {
        self.inner.exists(path).await
    }

    async fn realpath(&self, path: &VfsPath) -> Result<VfsPath> {
        self.inner.realpath(path).await
    }
}
