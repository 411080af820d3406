//! An open host file.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::FallocateFlags;
use vfs_core::{async_trait, FileHandle, Metadata, Result, VfsPath};

use super::blocking::Blocking;
use super::convert;
use super::ops;
use super::root::{fail, statx_fd};
use super::xattr;

/// A host file opened beneath the root. It holds the kernel's descriptor, so it keeps
/// working after its name is unlinked or renamed, like any open file.
pub(super) struct HostHandle {
    shared: Arc<Shared>,
    blocking: Blocking,
}

/// What the blocking jobs of one handle share.
struct Shared {
    file: File,
    /// The driver path it was opened by, for errors.
    path: VfsPath,
}

impl HostHandle {
    pub(super) fn new(file: File, path: VfsPath, blocking: Blocking) -> HostHandle {
        HostHandle {
            shared: Arc::new(Shared { file, path }),
            blocking,
        }
    }
}

#[async_trait]
impl FileHandle for HostHandle {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("read", move || {
                ops::read_at(&shared.file, offset, len).map_err(|e| fail("read", &shared.path, e))
            })
            .await
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<usize> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("write", move || {
                ops::write_at(&shared.file, offset, &data)
                    .map_err(|e| fail("write", &shared.path, e))
            })
            .await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("ftruncate", move || {
                rustix::fs::ftruncate(&shared.file, len)
                    .map_err(|e| fail("ftruncate", &shared.path, e))
            })
            .await
    }

    async fn sync(&self) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("fsync", move || {
                rustix::fs::fsync(&shared.file).map_err(|e| fail("fsync", &shared.path, e))
            })
            .await
    }

    async fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("fallocate", move || {
                rustix::fs::fallocate(
                    &shared.file,
                    rustix::fs::FallocateFlags::empty(),
                    offset,
                    len,
                )
                .map_err(|e| fail("fallocate", &shared.path, e))
            })
            .await
    }

    async fn punch_hole(&self, offset: u64, len: u64) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("fallocate", move || {
                let mode = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
                rustix::fs::fallocate(&shared.file, mode, offset, len)
                    .map_err(|e| fail("fallocate", &shared.path, e))
            })
            .await
    }

    async fn xattrs(&self) -> Result<Vec<(String, Bytes)>> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("flistxattr", move || {
                xattr::all_of_file(std::os::fd::AsFd::as_fd(&shared.file))
                    .map_err(|e| fail("flistxattr", &shared.path, e))
            })
            .await
    }

    async fn stat(&self) -> Result<Metadata> {
        let shared = Arc::clone(&self.shared);
        self.blocking
            .run("fstat", move || {
                statx_fd(std::os::fd::AsFd::as_fd(&shared.file))
                    .and_then(|stat| convert::metadata(&stat))
                    .map_err(|e| fail("fstat", &shared.path, e))
            })
            .await
    }
}
