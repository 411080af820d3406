//! A filesystem that forwards only the trait's required methods (and, on request, xattrs
//! and shutdown) to an inner one, so everything else runs the trait's default methods.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Capabilities, DirEntry, ErrorKind, FileHandle, FileSystem, Metadata, OpenOptions, Result,
    SetTime, StatFs, VfsError, VfsPath, XattrMode,
};

type ShutdownHook = Box<dyn Fn() -> Result<()> + Send + Sync>;
type OpenHook = Box<dyn Fn(&VfsPath) -> Result<()> + Send + Sync>;
type StatHook = Box<
    dyn Fn(&VfsPath) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Tests build probes from it: a driver with capabilities switched off, a shutdown that
/// counts or fails, an `open` that fails for chosen paths, a `stat` that is counted or
/// held back, the defaults-only view of a driver (the differential test runs the trait's defaults through it).
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::conformance::Forward;
/// use vfs_core::{FileSystem, MountTable};
///
/// let probe = Forward::new(Arc::new(MountTable::new()), "probe").on_shutdown(|| Ok(()));
/// assert_eq!(probe.kind(), "probe");
/// ```
pub struct Forward {
    inner: Arc<dyn FileSystem>,
    kind: &'static str,
    capabilities: Capabilities,
    xattrs: bool,
    shutdown: Option<ShutdownHook>,
    before_open: Option<OpenHook>,
    before_stat: Option<StatHook>,
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
            before_open: None,
            before_stat: None,
        }
    }

    /// Runs `hook` before every `open`; an error it returns is the open's (fault injection).
    pub fn before_open(
        mut self,
        hook: impl Fn(&VfsPath) -> Result<()> + Send + Sync + 'static,
    ) -> Forward {
        self.before_open = Some(Box::new(hook));
        self
    }

    /// Awaits `hook(path)` before every `stat` and `lstat` (counting them, or holding one
    /// back until the test releases it).
    pub fn before_stat<F>(mut self, hook: impl Fn(&VfsPath) -> F + Send + Sync + 'static) -> Forward
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.before_stat = Some(Box::new(move |path| Box::pin(hook(path))));
        self
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
        if let Some(hook) = &self.before_open {
            hook(path)?;
        }
        self.inner.open(path, options).await
    }
    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        if let Some(hook) = &self.before_stat {
            hook(path).await;
        }
        self.inner.stat(path).await
    }
    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        if let Some(hook) = &self.before_stat {
            hook(path).await;
        }
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
fn unsupported(operation: &'static str, path: &VfsPath) -> VfsError {
    VfsError::new(ErrorKind::Unsupported, operation).with_path(path.as_str())
}
