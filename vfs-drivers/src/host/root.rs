//! The root directory handle and every lookup beneath it.
//!
//! All resolution of a multi-component path goes through `openat2(2)` with
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` relative to the root's `O_PATH` descriptor, so
//! the kernel itself keeps `..`, absolute symlinks and symlinks swapped in mid-lookup
//! inside the tree. The other `*at` calls only ever receive a directory descriptor obtained
//! that way plus one plain name (never `..`, never holding `/`), and never follow a final
//! symlink, so they cannot leave the directory they were given.

use std::borrow::Cow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Statx, StatxFlags};
use rustix::io::Errno;
use vfs_core::{ErrorKind, Result, VfsError, VfsPath};

/// Absolute symlink targets and `..` resolve as if the root were `/` (chroot-like), and
/// `/proc` magic links are refused with `ELOOP`.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// When the kernel reports (`EAGAIN`) that a rename or mount anywhere on the system raced
/// with a `..` a lookup walked, the lookup is retried: first at once (a race is usually a
/// single rename), then with a growing sleep, so a busy system (another process renaming
/// in a loop) still gets through; only after this long does it give up with `EBUSY`.
const RACE_SPINS: usize = 16;
const RACE_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);
const RACE_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_millis(2);

/// What `statx` is asked for: the classic fields and the birth time.
const STATX_MASK: StatxFlags = StatxFlags::BASIC_STATS.union(StatxFlags::BTIME);

/// The driver's root directory, held open for the driver's lifetime.
pub(super) struct Root {
    fd: OwnedFd,
}

/// A directory descriptor beneath the root: the root's own, borrowed, or one opened for
/// the call.
pub(super) enum DirFd<'a> {
    Root(BorrowedFd<'a>),
    Opened(OwnedFd),
}

impl AsFd for DirFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Root(fd) => *fd,
            DirFd::Opened(fd) => fd.as_fd(),
        }
    }
}

impl Root {
    /// Opens `host_path` as the root and checks that the kernel confines lookups.
    pub(super) fn open(host_path: &Path) -> Result<Root> {
        let shown = host_path.display();
        let fd = rustix::fs::open(
            host_path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| {
            errno_error("mount", errno).with_detail(format!("host directory '{shown}'"))
        })?;
        let root = Root { fd };
        match root.openat2(".", OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
            Ok(_) => Ok(root),
            // ENOSYS on kernels before 5.6; EPERM or ENOSYS from seccomp filters that
            // predate the syscall. Without it there is no race-free confinement.
            Err(errno) => Err(errno_error("mount", errno).with_detail(
                "openat2(2) with RESOLVE_IN_ROOT is unavailable (Linux 5.6 or later is \
                 needed); the host driver cannot confine lookups without it",
            )),
        }
    }

    /// The root's own descriptor.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `openat2` beneath the root. `path` is a driver path (absolute paths are taken from
    /// the root under `RESOLVE_IN_ROOT`); `O_CLOEXEC` is always added.
    pub(super) fn openat2<P>(&self, path: P, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno>
    where
        P: rustix::path::Arg + Copy,
    {
        let flags = flags | OFlags::CLOEXEC;
        let mut races = 0;
        let mut backoff = std::time::Duration::from_micros(10);
        let mut first_sleep: Option<std::time::Instant> = None;
        loop {
            match rustix::fs::openat2(&self.fd, path, flags, mode, RESOLVE) {
                Err(Errno::AGAIN) if races < RACE_SPINS => {
                    races += 1;
                    std::thread::yield_now();
                }
                Err(Errno::AGAIN) => {
                    let since = *first_sleep.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= RACE_BUDGET {
                        return Err(Errno::BUSY);
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RACE_MAX_BACKOFF);
                }
                Err(Errno::INTR) => {}
                other => return other,
            }
        }
    }

    /// An `O_PATH` descriptor of what `path` names, following a final symlink (and any
    /// symlink a trailing slash asks to follow) when `follow` is set.
    pub(super) fn resolve(&self, path: &VfsPath, follow: bool) -> Result<OwnedFd, Errno> {
        let flags = if follow {
            OFlags::PATH
        } else {
            OFlags::PATH | OFlags::NOFOLLOW
        };
        self.openat2(&*kernel_path(path), flags, Mode::empty())
    }

    /// The directory holding `path`'s last component, with that component; `None` for the
    /// root, which has no parent here.
    pub(super) fn parent<'p>(
        &self,
        path: &'p VfsPath,
    ) -> Result<Option<(DirFd<'_>, &'p str)>, Errno> {
        let (Some(parent), Some(name)) = (path.parent_str(), path.file_name()) else {
            return Ok(None);
        };
        let dir = if parent == "/" {
            DirFd::Root(self.fd.as_fd())
        } else {
            DirFd::Opened(self.openat2(parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?)
        };
        Ok(Some((dir, name)))
    }

    /// `statx` of what `path` names, following a final symlink when `follow` is set.
    pub(super) fn statx(&self, path: &VfsPath, follow: bool) -> Result<Statx, Errno> {
        if path.is_root() {
            return statx_fd(self.fd());
        }
        if path.depth() == 1 && !path.has_trailing_slash() {
            // One name beneath the root, not followed: a single statx, which cannot leave
            // the root. Only a symlink there needs the confined walk below.
            let name = path.file_name().unwrap_or(".");
            let stat = statx_at(self.fd(), name)?;
            if !follow || !is_symlink(&stat) {
                return Ok(stat);
            }
        }
        statx_fd(self.resolve(path, follow)?.as_fd())
    }
}

/// `path` as the kernel should see it beneath the root: the normalized path, plus the
/// trailing slash the caller wrote, which makes the kernel require (and follow to) a
/// directory.
pub(super) fn kernel_path(path: &VfsPath) -> Cow<'_, str> {
    if path.has_trailing_slash() && !path.is_root() {
        Cow::Owned(format!("{}/", path.as_str()))
    } else {
        Cow::Borrowed(path.as_str())
    }
}

/// `statx` of an open descriptor (`O_PATH` ones included).
pub(super) fn statx_fd(fd: BorrowedFd<'_>) -> Result<Statx, Errno> {
    rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, STATX_MASK)
}

/// `statx` of one name in a directory, not following it.
pub(super) fn statx_at(dir: BorrowedFd<'_>, name: impl rustix::path::Arg) -> Result<Statx, Errno> {
    rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, STATX_MASK)
}

/// Whether a `statx` result is a symlink.
pub(super) fn is_symlink(stat: &Statx) -> bool {
    u32::from(stat.stx_mode) & 0o170000 == 0o120000
}

/// Whether a `statx` result is a directory.
pub(super) fn is_dir(stat: &Statx) -> bool {
    u32::from(stat.stx_mode) & 0o170000 == 0o040000
}

/// The error for a kernel errno, without a path.
pub(super) fn errno_error(operation: &'static str, errno: Errno) -> VfsError {
    let raw = errno.raw_os_error();
    let kind = match errno {
        // Linux's value-too-large for xattrs has no kind of its own; ERANGE is the one
        // callers already handle for oversized xattrs.
        Errno::TOOBIG => ErrorKind::OutOfRange,
        _ => ErrorKind::from_errno(raw),
    };
    let error = VfsError::new(kind, operation);
    if kind == ErrorKind::Io && errno != Errno::IO {
        // Keep the kernel's own word where the kinds have none for it (ESPIPE, ...).
        return error.with_source(std::io::Error::from_raw_os_error(raw));
    }
    error
}

/// The error for a kernel errno about a driver path (never the host path).
pub(super) fn fail(operation: &'static str, path: &VfsPath, errno: Errno) -> VfsError {
    errno_error(operation, errno).with_path(path.as_str())
}

/// An error of `kind` about a driver path.
pub(super) fn fail_kind(operation: &'static str, path: &VfsPath, kind: ErrorKind) -> VfsError {
    VfsError::new(kind, operation).with_path(path.as_str())
}

/// The error for a failed `std::io` call about a driver path.
pub(super) fn io_fail(operation: &'static str, path: &VfsPath, err: std::io::Error) -> VfsError {
    match Errno::from_io_error(&err) {
        Some(errno) => fail(operation, path, errno),
        None => VfsError::from_io(operation, err).with_path(path.as_str()),
    }
}
