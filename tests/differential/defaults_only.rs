//! A filesystem that forwards only the trait's required methods (and xattrs) to an inner
//! one, so the trait's default implementations of everything else are what runs.

use bytes::Bytes;
use vfs_core::{
    async_trait, Capabilities, DirEntry, FileHandle, FileSystem, Metadata, OpenOptions, Result,
    SetTime, StatFs, VfsPath, XattrMode,
};

pub struct DefaultsOnly<F>(pub F);

#[async_trait]
impl<F: FileSystem> FileSystem for DefaultsOnly<F> {
    fn kind(&self) -> &str {
        "defaults-only"
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        self.0.open(path, options).await
    }
    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.0.stat(path).await
    }
    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.0.lstat(path).await
    }
    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        self.0.read_dir(path).await
    }
    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.0.create_dir(path, mode).await
    }
    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        self.0.remove_file(path).await
    }
    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        self.0.remove_dir(path).await
    }
    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        self.0.rename(from, to).await
    }
    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        self.0.symlink(target, link).await
    }
    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        self.0.read_link(path).await
    }
    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        self.0.hard_link(existing, new).await
    }
    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.0.set_permissions(path, mode).await
    }
    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.0.set_owner(path, uid, gid).await
    }
    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        self.0.set_times(path, atime, mtime).await
    }
    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.0.statfs(path).await
    }
    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        self.0.get_xattr(path, name).await
    }
    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        self.0.set_xattr(path, name, value, mode).await
    }
    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        self.0.list_xattrs(path).await
    }
    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        self.0.remove_xattr(path, name).await
    }
}
