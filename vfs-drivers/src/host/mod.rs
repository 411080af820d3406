//! The `host` driver (registry id `host_dir`): a directory of the host served as a
//! [`FileSystem`], confined beneath it. Linux only.
//!
//! # Confinement
//!
//! Nothing outside the root can be read, written, created, linked or stat'ed through the
//! driver, whatever symlinks the tree holds or a host process swaps in during a call. The
//! kernel enforces it, not string checks:
//!
//! - The root is opened once (`O_PATH | O_DIRECTORY`) and every path is resolved relative
//!   to that descriptor with `openat2(2)` and `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`.
//!   The kernel walks each component, follows symlinks as it goes, and treats the root as
//!   `/`: `..` stops there and absolute symlink targets start there, atomically with
//!   respect to concurrent renames (it retries or fails with `EAGAIN` when a rename races
//!   with a `..`; the driver retries, then answers `EBUSY`). `/proc` magic links
//!   (`/proc/self/root`, `/proc/self/fd/N`) are refused with `ELOOP`.
//! - Calls that act on a name rather than on what it leads to (`mkdir`, `unlink`,
//!   `rename`, `symlink`, `link`, `readlink`, `lstat`) first resolve the parent directory
//!   that way, then pass the kernel that descriptor and one plain name, never following
//!   it (`AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`). A trailing slash,
//!   which would make the kernel follow a final symlink there, is checked by the driver
//!   through a confined lookup and never passed to those calls.
//! - Calls that follow the final symlink (`stat`, `open`, `chmod`, `chown`, `utimes`,
//!   `statfs`, xattrs) resolve the whole path to a descriptor and act on that descriptor
//!   (`statx`/`fchownat`/`utimensat` with `AT_EMPTY_PATH`, `fchmodat2`), so the object
//!   checked is the object changed. xattrs, and `chmod` before Linux 6.6, go through the
//!   descriptor's `/proc/thread-self/fd/N` link, which the kernel resolves to that very
//!   inode; without a working `/proc`, xattrs are reported unsupported.
//!
//! So symlinks inside the tree work as symlinks, with the semantics of a process chrooted
//! at the root: an absolute target resolves from the driver's root (as in the `memory`
//! driver and [`FileSystem::realpath`]), and a relative one that climbs above the root
//! stops at it. A symlink pointing at a host path outside the tree therefore names a path
//! *inside* it, which usually does not exist (`ENOENT`). Because escapes are clamped
//! rather than refused, the kernel's `EXDEV` for an escaping lookup never arises; the
//! errnos callers see are the ones a chrooted process would get.
//!
//! What confinement does not cover: a host process that moves a directory out of the tree
//! while a call holds it open can make that call act outside (the host owns the tree; the
//! guest cannot move anything out of it); bind mounts placed inside the tree by the host
//! are crossed like directories; and symlinks the guest creates are stored verbatim, so a
//! host program that later follows them *outside* the driver is not confined by it.
//!
//! # Semantics
//!
//! Those of the host filesystem (Linux on tmpfs for the conformance suite), with:
//! - Modes exactly as given: a created file or directory gets the mode asked for, past the
//!   process umask (the guest applied its own), with a setgid bit inherited from the parent
//!   directory kept. The kernel's permission checks apply as the host process's user.
//! - Names that are not UTF-8 are listed lossily (U+FFFD) and cannot be opened by the name
//!   listed; symlink targets likewise.
//! - Files are opened with `O_NONBLOCK` so that a FIFO in the tree cannot hang an open;
//!   reading one then fails (`pread` on a pipe is `ESPIPE`, reported as `EIO`).
//! - Inode numbers come from the host; a host mount inside the tree may repeat them.
//! - `btime` is the host's birth time, or the epoch where the filesystem keeps none.
//!
//! # Blocking and cost
//!
//! Every call is a handful of syscalls that can block (a slow disk, NFS); [`Blocking`]
//! says how they are kept off the async runtime's workers. The default,
//! [`Blocking::Auto`], uses `block_in_place` on a multi-threaded runtime, which measured
//! about 5% over running the syscalls inline, where `spawn_blocking` per call costs about
//! 20x on a stat.
//!
//! Confinement has a price of its own: a kernel-confined lookup allocates (and closes) an
//! `O_PATH` descriptor. Reading, creating and listing open a descriptor anyway, so they
//! cost what `std::fs` does; a stat of one name beneath the root is a single `statx`
//! relative to the root, also as cheap; but a stat deeper down is `openat2` + `statx` +
//! `close` against `std::fs`'s one `statx`, about 2.5x its time on tmpfs.

// openat2, RESOLVE_IN_ROOT and fchmodat2 are Linux's; elsewhere the driver does not exist.
#![cfg(target_os = "linux")]

mod blocking;
mod convert;
mod fd_ops;
mod handle;
mod ops;
mod root;
#[cfg(test)]
mod tests;
mod xattr;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vfs_core::{
    async_trait, Capabilities, DirEntry, ErrorKind, FileHandle, FileKind, FileSystem, Metadata,
    OpenOptions, RenameFlags, Result, SetTime, StatFs, VfsError, VfsPath, XattrMode,
};

pub use blocking::Blocking;

use handle::HostHandle;
use root::Root;

/// The configuration of a [`HostFs`], as the driver registry reads it from JSON:
/// `{"hostPath": "/srv/workspace", "readOnly": false}`. Unknown fields are rejected.
///
/// `readOnly` defaults to `false`, as every other mount option of this crate does and as
/// a mount without `-o ro` is. (agentOS's TypeScript helper defaults it to `true`; callers
/// porting from it set it explicitly.)
///
/// ```
/// use vfs_drivers::host::HostConfig;
///
/// let config: HostConfig = serde_json::from_str(r#"{"hostPath": "/srv/data"}"#)?;
/// assert_eq!(config.host_path.to_str(), Some("/srv/data"));
/// assert!(!config.read_only);
/// assert!(serde_json::from_str::<HostConfig>(r#"{"hostpath": "/srv/data"}"#).is_err());
/// assert!(serde_json::from_str::<HostConfig>(r#"{"readOnly": true}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostConfig {
    /// The host directory to serve; relative paths are taken from the process's current
    /// directory when the driver is built.
    pub host_path: PathBuf,
    /// Refuse every mutation with `EROFS`.
    #[serde(default)]
    pub read_only: bool,
}

impl HostConfig {
    /// A writable configuration for `host_path`.
    pub fn new(host_path: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            host_path: host_path.into(),
            read_only: false,
        }
    }
}

/// A host directory served as a filesystem, confined beneath it (see the
/// [module documentation](self) for how, and for where it differs from tmpfs).
///
/// The root is opened when the driver is built and held for its lifetime: renaming the
/// host directory afterwards does not change what the driver serves.
///
/// Read-only drivers (`readOnly: true`) refuse every mutation with `EROFS` before touching
/// the host, exactly as [`vfs_core::ReadOnlyFs`] does, and say so in their capabilities;
/// the check lives inside `HostFs` so that no handle to a writable host tree can come out
/// of a read-only configuration.
///
/// ```
/// use bytes::Bytes;
/// use vfs_core::{FileSystem, VfsPath};
/// use vfs_drivers::host::HostFs;
///
/// # let dir = std::env::temp_dir().join(format!("host-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(async {
///     let fs = HostFs::new(&dir)?;
///     let file = VfsPath::new("/hello.txt")?;
///     fs.write_file(&file, Bytes::from_static(b"hello")).await?;
///     assert_eq!(fs.read_file(&file).await?, "hello");
///
///     // A symlink pointing out of the tree leads back into it.
///     fs.symlink("/etc/passwd", &VfsPath::new("/passwd")?).await?;
///     let err = fs.read_file(&VfsPath::new("/passwd")?).await.unwrap_err();
///     assert_eq!(err.code(), "ENOENT");
///     Ok::<(), vfs_core::VfsError>(())
/// })?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HostFs {
    root: Arc<Root>,
    host_path: PathBuf,
    read_only: bool,
    capabilities: Capabilities,
    blocking: Blocking,
}

impl HostFs {
    /// Serves the host directory `root`, writable. Fails with `ENOENT` if it is missing,
    /// `ENOTDIR` if it is not a directory, and `ENOSYS` on kernels without `openat2`
    /// (before Linux 5.6), where it cannot be confined.
    pub fn new(root: impl AsRef<Path>) -> Result<HostFs> {
        HostFs::with_config(HostConfig::new(root.as_ref()))
    }

    /// Serves the directory a configuration names.
    pub fn with_config(config: HostConfig) -> Result<HostFs> {
        let root = Root::open(&config.host_path)?;
        let mut capabilities = Capabilities::posix();
        capabilities.xattrs = fd_ops::proc_works(&root) && xattr::supported(&root);
        if config.read_only {
            capabilities = capabilities.as_read_only();
        }
        Ok(HostFs {
            root: Arc::new(root),
            host_path: config.host_path,
            read_only: config.read_only,
            capabilities,
            blocking: Blocking::default(),
        })
    }

    /// The registry's factory: builds the driver a configuration names, as
    /// `registry.register_fn("host_dir", HostFs::build)` expects.
    pub fn build(config: HostConfig) -> Result<Arc<dyn FileSystem>> {
        Ok(Arc::new(HostFs::with_config(config)?))
    }

    /// Chooses how blocking syscalls are kept off async workers (default
    /// [`Blocking::Auto`]).
    pub fn with_blocking(mut self, blocking: Blocking) -> HostFs {
        self.blocking = blocking;
        self
    }

    /// The host directory as configured.
    pub fn host_path(&self) -> &Path {
        &self.host_path
    }

    /// Whether every mutation is refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// `EROFS` for a mutation of a read-only driver, before anything reaches the host.
    fn writable(&self, operation: &'static str, path: &VfsPath) -> Result<()> {
        if self.read_only {
            return Err(VfsError::new(ErrorKind::ReadOnly, operation).with_path(path.as_str()));
        }
        Ok(())
    }

    /// `ENOTSUP` when the host filesystem (or a missing `/proc`) rules xattrs out.
    fn xattrs(&self, operation: &'static str, path: &VfsPath) -> Result<()> {
        if !self.capabilities.xattrs {
            return Err(VfsError::new(ErrorKind::Unsupported, operation).with_path(path.as_str()));
        }
        Ok(())
    }

    /// Runs a blocking job on the root, on the thread [`Blocking`] chooses.
    async fn run<T, F>(&self, operation: &'static str, job: F) -> Result<T>
    where
        F: FnOnce(&Root) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let root = Arc::clone(&self.root);
        self.blocking.run(operation, move || job(&root)).await
    }
}

impl fmt::Debug for HostFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFs")
            .field("host_path", &self.host_path)
            .field("read_only", &self.read_only)
            .field("blocking", &self.blocking)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FileSystem for HostFs {
    fn kind(&self) -> &str {
        "host_dir"
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        if options.mutates() {
            self.writable("open", path)?;
        }
        let path = path.clone();
        let blocking = self.blocking;
        self.run("open", move |root| {
            let file = ops::open(root, &path, &options)?;
            Ok(Box::new(HostHandle::new(file, path, blocking)) as Box<dyn FileHandle>)
        })
        .await
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        let path = path.clone();
        self.run("stat", move |root| ops::stat(root, &path, true))
            .await
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        let path = path.clone();
        self.run("lstat", move |root| ops::stat(root, &path, false))
            .await
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        let path = path.clone();
        self.run("scandir", move |root| ops::read_dir(root, &path))
            .await
    }

    async fn read_dir_plus(&self, path: &VfsPath) -> Result<Vec<(String, Metadata)>> {
        let path = path.clone();
        self.run("scandir", move |root| ops::read_dir_plus(root, &path))
            .await
    }

    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.writable("mkdir", path)?;
        let path = path.clone();
        self.run("mkdir", move |root| ops::create_dir(root, &path, mode))
            .await
    }

    async fn create_dir_all(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.writable("mkdir", path)?;
        let path = path.clone();
        self.run("mkdir", move |root| ops::create_dir_all(root, &path, mode))
            .await
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        self.writable("unlink", path)?;
        let path = path.clone();
        self.run("unlink", move |root| ops::remove_file(root, &path))
            .await
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        self.writable("rmdir", path)?;
        let path = path.clone();
        self.run("rmdir", move |root| ops::remove_dir(root, &path))
            .await
    }

    async fn remove_dir_all(&self, path: &VfsPath) -> Result<()> {
        self.writable("rm", path)?;
        let path = path.clone();
        self.run("rm", move |root| ops::remove_dir_all(root, &path))
            .await
    }

    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        self.rename_with(from, to, RenameFlags::default()).await
    }

    async fn rename_with(&self, from: &VfsPath, to: &VfsPath, flags: RenameFlags) -> Result<()> {
        self.writable("rename", from)?;
        let (from, to) = (from.clone(), to.clone());
        self.run("rename", move |root| ops::rename(root, &from, &to, flags))
            .await
    }

    async fn make_node(&self, path: &VfsPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        self.writable("mknod", path)?;
        let path = path.clone();
        self.run("mknod", move |root| {
            ops::make_node(root, &path, kind, mode, rdev)
        })
        .await
    }

    async fn set_owner_nofollow(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        self.writable("lchown", path)?;
        let path = path.clone();
        self.run("lchown", move |root| {
            ops::set_owner_nofollow(root, &path, uid, gid)
        })
        .await
    }

    async fn set_times_nofollow(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        self.writable("lutimes", path)?;
        let path = path.clone();
        self.run("lutimes", move |root| {
            ops::set_times_nofollow(root, &path, atime, mtime)
        })
        .await
    }

    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        self.writable("symlink", link)?;
        let (target, link) = (target.to_owned(), link.clone());
        self.run("symlink", move |root| ops::symlink(root, &target, &link))
            .await
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        let path = path.clone();
        self.run("readlink", move |root| ops::read_link(root, &path))
            .await
    }

    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        self.writable("link", new)?;
        let (existing, new) = (existing.clone(), new.clone());
        self.run("link", move |root| ops::hard_link(root, &existing, &new))
            .await
    }

    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.writable("chmod", path)?;
        let path = path.clone();
        self.run("chmod", move |root| ops::set_permissions(root, &path, mode))
            .await
    }

    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.writable("chown", path)?;
        let path = path.clone();
        self.run("chown", move |root| ops::set_owner(root, &path, uid, gid))
            .await
    }

    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        self.writable("utimes", path)?;
        let path = path.clone();
        self.run("utimes", move |root| {
            ops::set_times(root, &path, atime, mtime)
        })
        .await
    }

    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        let path = path.clone();
        self.run("statfs", move |root| ops::statfs(root, &path))
            .await
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        self.xattrs("getxattr", path)?;
        let (path, name) = (path.clone(), name.to_owned());
        self.run("getxattr", move |root| xattr::get(root, &path, &name))
            .await
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        self.writable("setxattr", path)?;
        self.xattrs("setxattr", path)?;
        let (path, name) = (path.clone(), name.to_owned());
        self.run("setxattr", move |root| {
            xattr::set(root, &path, &name, &value, mode)
        })
        .await
    }

    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        self.xattrs("listxattr", path)?;
        let path = path.clone();
        self.run("listxattr", move |root| xattr::list(root, &path))
            .await
    }

    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        self.writable("removexattr", path)?;
        self.xattrs("removexattr", path)?;
        let (path, name) = (path.clone(), name.to_owned());
        self.run("removexattr", move |root| xattr::remove(root, &path, &name))
            .await
    }

    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        let path = path.clone();
        self.run("read", move |root| ops::read_file(root, &path))
            .await
    }

    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        self.writable("write", path)?;
        let path = path.clone();
        self.run("write", move |root| ops::write_file(root, &path, &data))
            .await
    }

    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        let path = path.clone();
        self.run("read", move |root| ops::pread(root, &path, offset, len))
            .await
    }

    async fn pwrite(&self, path: &VfsPath, offset: u64, data: Bytes) -> Result<()> {
        self.writable("write", path)?;
        let path = path.clone();
        self.run("write", move |root| ops::pwrite(root, &path, offset, &data))
            .await
    }

    async fn truncate(&self, path: &VfsPath, len: u64) -> Result<()> {
        self.writable("truncate", path)?;
        let path = path.clone();
        self.run("truncate", move |root| ops::truncate(root, &path, len))
            .await
    }
}
