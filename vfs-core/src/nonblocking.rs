//! Threads a driver call must not block.
//!
//! A frontend may poll a request on a thread it cannot spare: vfs-fuse polls each request
//! once on the thread that read it from the kernel, which saves two thread wake-ups when
//! the driver has nothing to wait for. If a driver blocked that thread in a syscall (a
//! host directory on a hung NFS server), requests for every other mount would wait behind
//! it. So the frontend marks the thread for that poll, and a driver whose calls block
//! checks the mark and hands the call to a thread pool instead: the poll returns pending
//! and the request goes on elsewhere.

use std::cell::Cell;

thread_local! {
    static FORBIDDEN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` with the current thread marked as one no driver call may block, and
/// restores the previous mark afterwards (also when `work` panics).
///
/// ```
/// assert!(vfs_core::blocking_allowed());
/// let inside = vfs_core::forbid_blocking(vfs_core::blocking_allowed);
/// assert!(!inside);
/// assert!(vfs_core::blocking_allowed());
/// ```
pub fn forbid_blocking<R>(work: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORBIDDEN.with(|mark| mark.set(self.0));
        }
    }
    let _restore = Restore(FORBIDDEN.with(|mark| mark.replace(true)));
    work()
}

/// Whether a driver call may block the current thread in a syscall: `false` inside
/// [`forbid_blocking`]. Drivers whose calls block consult it before running one inline.
///
/// ```
/// // A blocking driver's choice, in short:
/// let inline = vfs_core::blocking_allowed();
/// assert!(inline, "outside forbid_blocking, running the syscall here is fine");
/// ```
pub fn blocking_allowed() -> bool {
    !FORBIDDEN.with(Cell::get)
}
