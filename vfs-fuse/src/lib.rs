//! FUSE frontend: serves any [`FileSystem`], a whole [`MountTable`] included, to real
//! processes through the kernel.
//!
//! - An inode table with lookup counts and `forget`: each node stands for a `(mount,
//!   driver inode)` pair kept as two fields, and its id is the `st_ino` processes see,
//!   the same for the life of the FUSE mount (the table remembers it after the kernel
//!   forgets the node, within [`FuseOptions::remembered_inodes`]); hard links share one
//!   node, a driver inode number reused for another file bumps the generation, and the
//!   path-based filesystem underneath is reached through the names each node was looked
//!   up by, kept current across rename and unlink.
//! - Requests are answered from tasks on the caller's tokio runtime, so a slow driver
//!   only delays the requests that wait for it.
//! - Writes up to [`FuseOptions::max_write`] (1 MiB by default) in one request, readahead
//!   as large, `readdirplus`, `O_APPEND`, `O_EXCL`, `O_TRUNC`, `fallocate` (mode 0 and
//!   `FALLOC_FL_KEEP_SIZE`), xattrs, `statfs`, symlinks, hard links, `renameat2` flags,
//!   `utimensat` with `UTIME_NOW`/`UTIME_OMIT`, `mknod` where the driver supports it;
//!   every errno the driver reports reaches the process unchanged.
//! - New entries belong to the calling process's uid and gid (the group of a setgid
//!   parent directory instead, as Linux does), with the umask the kernel passes applied.
//! - The kernel checks permissions itself (`default_permissions`, on by default).
//! - Served from a [`MountTable`], mounting or unmounting beneath it drops the kernel's
//!   cached entries for that path before `mount`/`unmount` return.
//!
//! Mounting uses the `mount` system call as root and `fusermount3` otherwise (fuser's
//! pure-Rust mount), so no libfuse is linked.
//!
//! ```
//! use std::sync::Arc;
//! use vfs_drivers::MemoryFs;
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let dir = tempfile::tempdir()?;
//!     let options = vfs_fuse::FuseOptions::default();
//!     let mount = vfs_fuse::mount(Arc::new(MemoryFs::new()), dir.path(), options)?;
//!     let file = dir.path().join("hello.txt");
//!     // Blocking I/O on the mount runs off the runtime that answers it.
//!     let read = tokio::task::spawn_blocking(move || {
//!         std::fs::write(&file, "hello")?;
//!         std::fs::read_to_string(&file)
//!     });
//!     assert_eq!(read.await??, "hello");
//!     mount.unmount()?;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod acl;
mod attr;
mod invalidate;
mod nodes;
mod ops;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};
use tokio::runtime::{Handle, RuntimeFlavor};
use vfs_core::{ChangeHookId, ErrorKind, FileSystem, MountTable, Result, VfsError};

use crate::ops::{Inner, Settings};
use crate::server::Server;

/// How a filesystem is served.
///
/// ```
/// let options = vfs_fuse::FuseOptions::default();
/// assert!(options.default_permissions && !options.allow_other);
/// assert!(options.max_write >= 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct FuseOptions {
    /// Let users other than the one who mounted access the mount (`allow_other`; for a
    /// non-root user it needs `user_allow_other` in `/etc/fuse.conf`).
    pub allow_other: bool,
    /// Let the kernel check permission bits, ownership and the `chown`/`chmod` rules
    /// (`default_permissions`). On by default: without it every caller may do anything
    /// the driver allows, since the drivers themselves check no permissions.
    pub default_permissions: bool,
    /// How long the kernel may cache attributes before asking again. Changes made
    /// through the mount show at once whatever it is; it bounds how long a change made
    /// beside the mount (directly on the driver) can go unseen.
    pub attr_ttl: Duration,
    /// How long the kernel may cache a name's lookup.
    pub entry_ttl: Duration,
    /// The largest write the kernel sends in one request, and the readahead window.
    pub max_write: u32,
    /// The name `mount` and `/proc/mounts` show as the source.
    pub fs_name: String,
    /// Threads reading requests from the kernel (the requests themselves run on the
    /// tokio runtime).
    pub reader_threads: usize,
    /// How many files the kernel has forgotten (dropped from its inode cache) keep their
    /// inode number for when they are looked up again; past it the longest forgotten
    /// get a new number then. Each costs 100 to 180 bytes, so the default (2^20) bounds
    /// that memory at about 180 MiB, reached only after a million distinct files were
    /// looked up and evicted. Files removed through the mount, and those of a sub-mount
    /// once unmounted, cost nothing once forgotten.
    pub remembered_inodes: usize,
}

impl Default for FuseOptions {
    fn default() -> FuseOptions {
        FuseOptions {
            allow_other: false,
            default_permissions: true,
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            max_write: 1 << 20,
            fs_name: "vfs".to_owned(),
            reader_threads: 2,
            remembered_inodes: 1 << 20,
        }
    }
}

/// A live FUSE mount. Unmounts when dropped, or explicitly with [`FuseMount::unmount`]
/// to see the error.
pub struct FuseMount {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    hook: Option<(Arc<MountTable>, ChangeHookId)>,
}

impl std::fmt::Debug for FuseMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuseMount")
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

/// Serves `fs` at `mountpoint` until the returned [`FuseMount`] is unmounted or dropped.
///
/// Call it from inside a multi-thread tokio runtime: requests run on it. It returns once
/// the kernel has the mount, so a process can use the mountpoint at once.
pub fn mount(
    fs: Arc<dyn FileSystem>,
    mountpoint: &Path,
    options: FuseOptions,
) -> Result<FuseMount> {
    start(fs, None, mountpoint, options)
}

/// Serves a whole mount table at `mountpoint`, like [`mount`]; mounting and unmounting in
/// `table` while it is served drops the kernel's cached entries for the paths involved
/// before the table's `mount`/`unmount` return, so no process sees the old tree after.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{FileSystem, MountOptions, MountTable, UnmountOptions, VfsPath};
/// use vfs_drivers::MemoryFs;
///
/// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
/// runtime.block_on(async {
///     let dir = tempfile::tempdir()?;
///     let table = Arc::new(MountTable::new());
///     table.mount(&VfsPath::root(), Arc::new(MemoryFs::new()), MountOptions::default()).await?;
///     let mount = vfs_fuse::mount_table(table.clone(), dir.path(), Default::default())?;
///
///     let work = VfsPath::new("/work")?;
///     let workspace = MemoryFs::new();
///     workspace.write_file(&VfsPath::new("/notes")?, "mounted later".into()).await?;
///     table.mount(&work, Arc::new(workspace), MountOptions::default()).await?;
///     let notes = dir.path().join("work/notes");
///     let seen = tokio::task::spawn_blocking(move || std::fs::read_to_string(notes));
///     assert_eq!(seen.await??, "mounted later");
///
///     table.unmount(&work, UnmountOptions { lazy: true }).await?;
///     assert!(!dir.path().join("work/notes").exists());
///     mount.unmount()?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn mount_table(
    table: Arc<MountTable>,
    mountpoint: &Path,
    options: FuseOptions,
) -> Result<FuseMount> {
    let fs: Arc<dyn FileSystem> = table.clone();
    start(fs, Some(table), mountpoint, options)
}

fn start(
    fs: Arc<dyn FileSystem>,
    table: Option<Arc<MountTable>>,
    mountpoint: &Path,
    options: FuseOptions,
) -> Result<FuseMount> {
    let runtime = Handle::try_current().map_err(|_| {
        VfsError::new(ErrorKind::InvalidInput, "mount")
            .with_detail("vfs_fuse::mount must be called inside a tokio runtime")
    })?;
    if runtime.runtime_flavor() != RuntimeFlavor::MultiThread {
        return Err(VfsError::new(ErrorKind::InvalidInput, "mount")
            .with_detail("vfs_fuse::mount needs a multi-thread tokio runtime"));
    }
    let fail = |err: std::io::Error| {
        VfsError::from_io("mount", err).with_path(mountpoint.display().to_string())
    };
    let settings = Settings {
        attr_ttl: options.attr_ttl,
        entry_ttl: options.entry_ttl,
        max_write: options.max_write.max(4096),
        remembered_inodes: options.remembered_inodes,
    };
    let inner = Arc::new(Inner::new(fs, table.clone(), settings));
    let server = Server {
        inner: Arc::clone(&inner),
        runtime,
        readers: options.reader_threads.max(1),
        polling: std::sync::atomic::AtomicUsize::new(0),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(options.fs_name.clone()),
        MountOption::Subtype("vfs".to_owned()),
        MountOption::NoAtime,
    ];
    if options.default_permissions {
        config.mount_options.push(MountOption::DefaultPermissions);
    }
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.reader_threads.max(1));
    config.clone_fd = true;
    // Mounting waits for the kernel's INIT, a blocking read.
    let session = blocking(|| Session::new(server, mountpoint, &config)).map_err(fail)?;
    let notifier = session.notifier();
    let session = session.spawn().map_err(fail)?;
    let hook = table.map(|table| {
        let weak = Arc::downgrade(&inner);
        let id = table.on_change(move |event| {
            if let Some(inner) = weak.upgrade() {
                blocking(|| invalidate::on_mount_change(&inner, &notifier, event));
            }
        });
        (table, id)
    });
    Ok(FuseMount {
        session: Some(session),
        mountpoint: mountpoint.to_owned(),
        hook,
    })
}

/// Runs blocking work from async code without stalling the runtime's other tasks.
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

impl FuseMount {
    /// Where the filesystem is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits for the request threads to finish. A mount still in use
    /// (a process's working directory or open file) is detached lazily, as `umount -l`:
    /// those processes keep being served (while the tokio runtime lives) until they
    /// leave, and this returns at once.
    pub fn unmount(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some((table, id)) = self.hook.take() {
            table.remove_change_hook(id);
        }
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let path = self.mountpoint.clone();
        blocking(move || {
            let joined = match detach(&path)? {
                Detached::Now => session.join(),
                // Processes still using the mount keep being served until they leave;
                // the request threads end by themselves then.
                Detached::Lazily => {
                    drop(session);
                    Ok(())
                }
                Detached::NotPermitted => session.umount_and_join(),
            };
            // Readers still waiting when the kernel tears the connection down see it
            // aborted rather than closed; after an unmount both are the normal end.
            let joined = match joined {
                Err(err) if err.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
                other => other,
            };
            joined.map_err(|err| {
                VfsError::from_io("umount", err).with_path(path.display().to_string())
            })
        })
    }
}

/// How [`detach`] went.
enum Detached {
    /// Unmounted: the request threads are ending.
    Now,
    /// Busy, so detached lazily (`umount -l`): it is served until its last user leaves.
    Lazily,
    /// Not root: fuser's own unmount goes through `fusermount3 -u`.
    NotPermitted,
}

/// Unmounts `path` with the `umount2` system call, lazily if it is busy.
fn detach(path: &Path) -> Result<Detached> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        VfsError::new(ErrorKind::InvalidInput, "umount").with_detail("mountpoint holds NUL")
    })?;
    // SAFETY: `c_path` is a valid NUL-terminated string for the duration of the calls.
    let plain = unsafe { libc::umount2(c_path.as_ptr(), 0) };
    if plain == 0 {
        return Ok(Detached::Now);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EBUSY) => {
            // SAFETY: as above.
            if unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) } == 0 {
                Ok(Detached::Lazily)
            } else {
                Err(VfsError::from_io("umount", std::io::Error::last_os_error())
                    .with_path(path.display().to_string()))
            }
        }
        Some(libc::EPERM) => Ok(Detached::NotPermitted),
        _ => Err(VfsError::from_io("umount", err).with_path(path.display().to_string())),
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        // Dropping cannot report; `unmount` is there for callers who want the error.
        let _ = self.stop();
    }
}
