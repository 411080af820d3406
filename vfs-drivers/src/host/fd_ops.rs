//! Calls on `O_PATH` descriptors that Linux offers no plain `f*` form for.
//!
//! A descriptor from a confined lookup pins one inode. `chmod` reaches it with
//! `fchmodat2(fd, "", AT_EMPTY_PATH)` (Linux 6.6); xattrs, and `chmod` on older kernels,
//! go through the descriptor's `/proc/thread-self/fd/N` entry, a magic link that the
//! kernel resolves to exactly that inode, with no path walk anyone could race. (`fgetxattr`
//! and friends refuse `O_PATH` descriptors with `EBADF`; opening the file for reading
//! instead would need read permission and would open devices and FIFOs.)

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::fs::Mode;
use rustix::io::Errno;

use super::root::{statx_fd, Root};

/// The `/proc` path of an open descriptor of this thread.
pub(super) fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/thread-self/fd/{}", fd.as_raw_fd())
}

/// Whether `/proc` is a live procfs whose descriptor links lead back to the root, which
/// the xattr calls (and `chmod` before Linux 6.6) depend on.
pub(super) fn proc_works(root: &Root) -> bool {
    let through_proc = rustix::fs::statx(
        rustix::fs::CWD,
        proc_path(root.fd()),
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::INO,
    );
    match (through_proc, statx_fd(root.fd())) {
        (Ok(linked), Ok(direct)) => {
            (linked.stx_ino, linked.stx_dev_major, linked.stx_dev_minor)
                == (direct.stx_ino, direct.stx_dev_major, direct.stx_dev_minor)
        }
        _ => false,
    }
}

/// Sets the permission bits of the inode `fd` holds (an `O_PATH` descriptor is fine).
pub(super) fn chmod(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    match fchmodat2(fd, mode) {
        // ENOSYS before Linux 6.6; EPERM or EINVAL from seccomp profiles that do not know
        // the syscall. The /proc route gives the real answer, EPERM included.
        Err(errno @ (Errno::NOSYS | Errno::PERM | Errno::INVAL)) => {
            match chmod_via_proc(fd, mode) {
                // No /proc: no race-free way is left, so refuse rather than walk a path.
                Err(Errno::NOENT) if errno == Errno::NOSYS => Err(Errno::NOTSUP),
                Err(Errno::NOENT) => Err(errno),
                other => other,
            }
        }
        other => other,
    }
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`, which rustix does not wrap.
fn fchmodat2(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: fchmodat2 takes a descriptor that stays open for the call, a pointer to a
    // NUL-terminated string that outlives it, and two integers; it writes no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode as libc::c_uint,
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
}

fn chmod_via_proc(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    rustix::fs::chmod(proc_path(fd), Mode::from_raw_mode(mode))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;

    use rustix::fs::OFlags;

    use super::*;

    /// A scratch directory on tmpfs, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vfs-host-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn o_path(path: &std::path::Path) -> std::os::fd::OwnedFd {
        rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn both_chmod_routes_change_the_inode_the_descriptor_holds() {
        let dir = scratch("chmod");
        let file = dir.0.join("f");
        std::fs::write(&file, "x").unwrap();
        let fd = o_path(&file);
        let mode = || std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
        chmod_via_proc(fd.as_fd(), 0o640).unwrap();
        assert_eq!(mode(), 0o640);
        chmod(fd.as_fd(), 0o7005).unwrap();
        assert_eq!(mode(), 0o7005);
        // The descriptor, not the name: after a rename the same inode changes.
        std::fs::rename(&file, dir.0.join("g")).unwrap();
        std::fs::write(&file, "new file at the old name").unwrap();
        chmod_via_proc(fd.as_fd(), 0o600).unwrap();
        assert_eq!(
            std::fs::metadata(dir.0.join("g"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o600
        );
        assert_ne!(mode(), 0o600);
    }

    #[test]
    fn proc_links_lead_back_to_the_descriptor() {
        let dir = scratch("proc");
        let root = super::super::root::Root::open(&dir.0).unwrap();
        assert!(proc_works(&root));
    }
}
