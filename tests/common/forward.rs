//! A filesystem that forwards only the trait's required methods (and, on request, xattrs
//! and shutdown) to an inner one, so everything else runs the trait's default methods.
//! Tests build probes from it: a driver with capabilities switched off, a shutdown that
//! counts or fails, the defaults-only view of a driver.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{
    async_trait, Capabilities, DirEntry, FileHandle, FileSystem, Metadata, OpenOptions, Result,
    SetTime, StatFs, VfsPath, XattrMode,
};

type ShutdownHook = Box<dyn Fn() -> Result<()> + Send + Sync>;

pub struct Forward {
    inner: Arc<dyn FileSystem>,
    kind: &'static str,
    capabilities: Capabilities,
    xattrs: bool,
    shutdown: Option<ShutdownHook>,
}

impl Forward {
    /// Forwards to `inner` under the driver id `kind`, with `inner`'s capabilities; xattr
    /// calls and shutdown run the trait's defaults until enabled.
    pub fn new(inner: Arc<dyn FileSystem>, kind: &'static str) -> Forward {
        Forward {
            capabilities: inner.capabilities(),
            inner,
            kind,
            xattrs: false,
            shutdown: None,
        }
    }

    /// Reports these capabilities instead of the inner filesystem's.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Forward {
        self.capabilities = capabilities;
        self
    }

    /// Forwards the xattr calls too.
    pub fn with_xattrs(mut self) -> Forward {
        self.xattrs = true;
        self
    }

    /// Runs `hook` as the filesystem's shutdown.
    pub fn on_shutdown(mut self, hook: impl Fn() -> Result<()> + Send + Sync + 'static) -> Forward {
        self.shutdown = Some(Box::new(hook));
        self
    }
}

#[async_trait]
impl FileSystem for Forward {
    fn kind(&self) -> &str {
        self.kind
    }
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
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
    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.inner.create_dir(path, mode).await
    }
    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        self.inner.remove_file(path).await
    }
    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        self.inner.remove_dir(path).await
    }
    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        self.inner.rename(from, to).await
    }
    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        self.inner.symlink(target, link).await
    }
    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        self.inner.read_link(path).await
    }
    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        self.inner.hard_link(existing, new).await
    }
    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.inner.set_permissions(path, mode).await
    }
    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.inner.set_owner(path, uid, gid).await
    }
    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        self.inner.set_times(path, atime, mtime).await
    }
    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.inner.statfs(path).await
    }
    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        if !self.xattrs {
            return Err(unsupported("getxattr", path));
        }
        self.inner.get_xattr(path, name).await
    }
    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        if !self.xattrs {
            return Err(unsupported("setxattr", path));
        }
        self.inner.set_xattr(path, name, value, mode).await
    }
    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        if !self.xattrs {
            return Err(unsupported("listxattr", path));
        }
        self.inner.list_xattrs(path).await
    }
    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        if !self.xattrs {
            return Err(unsupported("removexattr", path));
        }
        self.inner.remove_xattr(path, name).await
    }
    async fn shutdown(&self) -> Result<()> {
        match &self.shutdown {
            Some(hook) => hook(),
            None => Ok(()),
        }
    }
}

/// What the trait's default xattr methods answer.
fn unsupported(operation: &'static str, path: &VfsPath) -> vfs_core::VfsError {
    vfs_core::VfsError::new(vfs_core::ErrorKind::Unsupported, operation).with_path(path.as_str())
}
