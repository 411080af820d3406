//! Where the driver's blocking syscalls run, so they never stall an async worker thread.

use tokio::runtime::{Handle, RuntimeFlavor};
use vfs_core::{ErrorKind, Result, VfsError};

/// How [`HostFs`](super::HostFs) keeps its blocking syscalls off the async runtime's
/// worker threads.
///
/// A stat or a 4 KiB read on a local filesystem takes about a microsecond; handing it to
/// tokio's blocking pool with `spawn_blocking` costs some twenty times that (a thread wake
/// up and a task wake up per call), so it would make every small operation an order of
/// magnitude slower than `std::fs`. [`Blocking::Auto`], the default, avoids that cost on a
/// multi-threaded runtime with `block_in_place`: the call runs on the calling thread while
/// tokio moves the worker's other tasks to a fresh thread, so nothing queued behind it
/// waits, even when the host filesystem hangs (NFS, FUSE, a dying disk). Measured on tmpfs,
/// it adds about 5% to a stat, against about 2000% for `spawn_blocking`.
///
/// One `block_in_place` caveat: the calling *task* is blocked for the duration of the
/// syscall, so other futures it polls concurrently (`join!`, `select!`) wait too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blocking {
    /// Decide per call from the runtime the caller is on: `block_in_place` on a
    /// multi-threaded tokio runtime, `spawn_blocking` on a current-thread one (where
    /// `block_in_place` is not allowed and the one thread must not block) and on a thread
    /// marked by [`vfs_core::forbid_blocking`] (a FUSE reader thread), and on the calling
    /// thread outside any tokio runtime (an executor such as
    /// `futures::executor::block_on` owns that thread anyway).
    ///
    /// Tokio refuses `block_in_place` (it panics) inside a `LocalSet` driven by a
    /// multi-threaded runtime's `block_on`; callers in that setting choose
    /// [`Blocking::SpawnBlocking`].
    #[default]
    Auto,
    /// Every call goes to tokio's blocking pool (`spawn_blocking`), as `tokio::fs` does:
    /// safe in every runtime setting, about 20 µs per call. Outside a runtime, calls run
    /// on the calling thread.
    SpawnBlocking,
    /// Every call runs on the calling thread. The fastest choice, for host directories on
    /// local storage that never stalls (tmpfs, a local SSD) or callers that are not async
    /// workers; on a slow or hung filesystem it blocks the worker thread that made the call.
    Inline,
}

impl Blocking {
    /// Runs `job` where this strategy says; `operation` names it in the error a runtime
    /// shutting down mid-call produces.
    pub(crate) async fn run<T, F>(self, operation: &'static str, job: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let handle = match self {
            Blocking::Inline => return job(),
            Blocking::Auto | Blocking::SpawnBlocking => match Handle::try_current() {
                Ok(handle) => handle,
                Err(_) => return job(),
            },
        };
        if self == Blocking::Auto
            && handle.runtime_flavor() == RuntimeFlavor::MultiThread
            && vfs_core::blocking_allowed()
        {
            return tokio::task::block_in_place(job);
        }
        match handle.spawn_blocking(job).await {
            Ok(result) => result,
            // The job itself never panics; if it did, the panic belongs to the caller.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(VfsError::new(ErrorKind::Io, operation)
                .with_detail("the async runtime shut down during the call")),
        }
    }
}
