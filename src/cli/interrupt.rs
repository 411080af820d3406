//! Ctrl-C and SIGTERM during one-shot commands.
//!
//! A snapshot or an import holds a writer lock in the store, and gc waits while one is
//! live; a process killed mid-way would leave its lock for a day. So the first signal
//! asks the work to stop where it can stop cleanly: the tree a snapshot reads and the
//! archive an import reads start failing, the store operation unwinds and releases its
//! lock, and the command exits with 130. Work that cannot be stopped cleanly (gc holds
//! the gc lock, an export writes a temporary file) is left to finish. A second signal
//! exits at once.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use vfs_layer::core::{
    Capabilities, DirEntry, ErrorKind, FileHandle, FileSystem, Metadata, OpenOptions, Result,
    SetTime, StatFs, VfsError, VfsPath, XattrMode,
};

/// The exit code after an interruption, as shells report a SIGINT death.
pub const EXIT_INTERRUPTED: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a signal asked the command to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// What the first signal does to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Nothing to clean up: exit at once.
    Exit,
    /// The command stops cleanly through [`Interruptible`] sources.
    Stop,
    /// The command cannot stop cleanly; it finishes (this names what it is doing).
    Finish(&'static str),
}

/// Watches for SIGINT and SIGTERM for the rest of the process, applying `policy`.
pub fn install(policy: Policy) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            // Without handlers the default (immediate exit) stays in force.
            return;
        };
        let mut first = true;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if !first || policy == Policy::Exit {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            first = false;
            REQUESTED.store(true, Ordering::SeqCst);
            match policy {
                Policy::Stop => eprintln!("vfs: stopping cleanly (again to quit at once)"),
                Policy::Finish(what) => eprintln!(
                    "vfs: finishing {what} so the store is left consistent (again to quit at once)"
                ),
                Policy::Exit => {}
            }
        }
    });
}

fn interrupted(operation: &'static str, path: &str) -> VfsError {
    VfsError::new(ErrorKind::Io, operation)
        .with_path(path)
        .with_detail("interrupted by a signal")
}

fn check(operation: &'static str, path: &VfsPath) -> Result<()> {
    if requested() {
        Err(interrupted(operation, path.as_str()))
    } else {
        Ok(())
    }
}

/// A filesystem that fails every lookup, listing and read once a signal arrived, and
/// otherwise forwards everything unchanged (inode numbers, xattrs, ...), so a snapshot of
/// it is the snapshot of the inner one.
pub struct Interruptible {
    inner: Arc<dyn FileSystem>,
}

impl Interruptible {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn FileSystem>) -> Arc<dyn FileSystem> {
        Arc::new(Interruptible { inner })
    }
}

struct InterruptibleHandle {
    inner: Box<dyn FileHandle>,
    path: String,
}

#[async_trait]
impl FileHandle for InterruptibleHandle {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        if requested() {
            return Err(interrupted("read", &self.path));
        }
        self.inner.read_at(offset, len).await
    }
    async fn write_at(&self, offset: u64, data: Bytes) -> Result<usize> {
        self.inner.write_at(offset, data).await
    }
    async fn set_len(&self, len: u64) -> Result<()> {
        self.inner.set_len(len).await
    }
    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }
    async fn xattrs(&self) -> Result<Vec<(String, Bytes)>> {
        self.inner.xattrs().await
    }
    async fn stat(&self) -> Result<Metadata> {
        self.inner.stat().await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

#[async_trait]
impl FileSystem for Interruptible {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        check("open", path)?;
        let inner = self.inner.open(path, options).await?;
        Ok(Box::new(InterruptibleHandle {
            inner,
            path: path.as_str().to_owned(),
        }))
    }
    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        check("stat", path)?;
        self.inner.stat(path).await
    }
    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        check("lstat", path)?;
        self.inner.lstat(path).await
    }
    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        check("scandir", path)?;
        self.inner.read_dir(path).await
    }
    async fn read_dir_plus(&self, path: &VfsPath) -> Result<Vec<(String, Metadata)>> {
        check("scandir", path)?;
        self.inner.read_dir_plus(path).await
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
        check("readlink", path)?;
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
        check("getxattr", path)?;
        self.inner.get_xattr(path, name).await
    }
    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        self.inner.set_xattr(path, name, value, mode).await
    }
    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        check("listxattr", path)?;
        self.inner.list_xattrs(path).await
    }
    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        self.inner.remove_xattr(path, name).await
    }
    async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }
    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        check("read", path)?;
        self.inner.read_file(path).await
    }
    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        self.inner.write_file(path, data).await
    }
    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        check("read", path)?;
        self.inner.pread(path, offset, len).await
    }
    async fn pwrite(&self, path: &VfsPath, offset: u64, data: Bytes) -> Result<()> {
        self.inner.pwrite(path, offset, data).await
    }
    async fn truncate(&self, path: &VfsPath, len: u64) -> Result<()> {
        self.inner.truncate(path, len).await
    }
    async fn exists(&self, path: &VfsPath) -> Result<bool> {
        check("access", path)?;
        self.inner.exists(path).await
    }
    async fn create_dir_all(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.inner.create_dir_all(path, mode).await
    }
    async fn remove_dir_all(&self, path: &VfsPath) -> Result<()> {
        self.inner.remove_dir_all(path).await
    }
    async fn realpath(&self, path: &VfsPath) -> Result<VfsPath> {
        check("realpath", path)?;
        self.inner.realpath(path).await
    }
}

/// An archive reader that fails once a signal arrived, so an import unwinds.
pub struct InterruptibleRead<R>(pub R);

impl<R: Read> Read for InterruptibleRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if requested() {
            // Not io::ErrorKind::Interrupted: readers retry that one.
            return Err(std::io::Error::other("interrupted by a signal"));
        }
        self.0.read(buf)
    }
}
