//! The `memory` driver: a POSIX filesystem held in memory, modelled on Linux tmpfs.

mod file_data;
mod handle;
mod inode;
mod ops;
mod resolve;
mod usage;
mod xattr;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use vfs_core::{
    async_trait, Capabilities, DirEntry, ErrorKind, FileHandle, FileKind, FileSystem, Metadata,
    OpenOptions, RenameFlags, Result, SetTime, StatFs, Timestamp, VfsError, VfsPath, XattrMode,
};

use self::file_data::PAGE_SIZE;
use self::inode::{Inode, NewInode};
use self::usage::Usage;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;

/// The root directory's inode number.
const ROOT_INO: u64 = 1;

/// What `statfs` reports as free when no limit is configured: 16 TiB of blocks and four
/// billion inodes, "plenty" in the units callers expect.
const UNLIMITED_FREE_BLOCKS: u64 = 1 << 32;
const UNLIMITED_FREE_INODES: u64 = 1 << 32;

/// The configuration of a [`MemoryFs`], as the driver registry reads it from JSON.
///
/// Every field is optional; unknown fields are rejected.
///
/// ```
/// use vfs_drivers::MemoryConfig;
///
/// let config: MemoryConfig = serde_json::from_str(r#"{"maxBytes": 1048576, "uid": 1000}"#)?;
/// assert_eq!(config.max_bytes, Some(1 << 20));
/// assert_eq!(config.max_inodes, None);
/// assert_eq!((config.uid, config.gid), (1000, 0));
/// assert!(serde_json::from_str::<MemoryConfig>(r#"{"maxbytes": 1}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MemoryConfig {
    /// The most bytes file content may take, counted in whole 4 KiB pages as tmpfs
    /// counts them (holes take none). Writes past it fail with `ENOSPC`. `None`: no limit.
    pub max_bytes: Option<u64>,
    /// The most inodes (files, directories, symlinks, the root included). Creating more
    /// fails with `ENOSPC`. `None`: no limit.
    pub max_inodes: Option<u64>,
    /// The owner of the root and of everything created.
    pub uid: u32,
    /// The group of the root and of everything created (except beneath a setgid
    /// directory, whose group is inherited as on Linux).
    pub gid: u32,
}

/// A filesystem in memory with the semantics of Linux tmpfs.
///
/// Inode-based: hard links share an inode and count `nlink`; symlinks resolve relative
/// to their directory, absolute targets from this filesystem's root, with `ELOOP` after
/// [`vfs_core::MAX_SYMLINK_HOPS`]; files are sparse (4 KiB pages allocated on first
/// write); handles keep an unlinked or replaced file alive; rename is atomic; xattrs,
/// byte and inode limits with `ENOSPC`; `renameat2`'s `RENAME_NOREPLACE` and
/// `RENAME_EXCHANGE`; FIFOs, sockets and device nodes (`make_node`), which hold only
/// their metadata: opening one through the driver is `ENOTSUP`, as under FUSE the kernel
/// serves them itself. Errors and their precedence follow Linux.
///
/// Where it differs from tmpfs, by design:
/// - No permission checks: every caller acts as root (as the differential tests against
///   tmpfs run), so `EACCES` never happens, and new inodes belong to the configured
///   `uid`/`gid`.
/// - Reads leave `atime` alone, as a `noatime` mount; `set_times` still sets it.
/// - Modes are applied as given, without a umask.
/// - Opening with none of `read`, `write`, `append` opens for reading (Linux's `O_RDONLY`
///   is the absence of flags). `truncate` and `create` need no write access, as with
///   `open(2)` (`std::fs::OpenOptions` refuses those combinations with `EINVAL`).
/// - xattr names need one of the `user.`, `trusted.`, `security.` or `system.` prefixes
///   (else `ENOTSUP`); `system.` names are stored as given rather than parsed as ACLs;
///   a value over 64 KiB fails with `ERANGE` (Linux: `E2BIG`, which has no `ErrorKind`).
///   xattrs do not count against `maxBytes`.
/// - The root directory has mode `0o755` (a tmpfs mount's default is `0o1777`).
/// - `write_file` swaps the new content in at once when it fits, so a concurrent reader
///   sees the old content or the new, never the empty file `O_TRUNC` + `write` expose.
/// - Reads return slices that share the file's pages (no copy); a later write to the
///   file copies the page first, so what was read never changes.
///
/// Locking: each directory has a read-write lock over its entries and each file one over
/// its content, so unrelated files never wait for each other; only renames between two
/// directories take one filesystem-wide mutex, as Linux's `s_vfs_rename_mutex`. No lock
/// is held across an `.await` (nothing here awaits).
///
/// ```
/// use bytes::Bytes;
/// use vfs_core::{FileSystem, VfsPath};
/// use vfs_drivers::MemoryFs;
///
/// futures::executor::block_on(async {
///     let fs = MemoryFs::new();
///     let dir = VfsPath::new("/docs")?;
///     fs.create_dir(&dir, 0o755).await?;
///     let file = VfsPath::new("/docs/hello.txt")?;
///     fs.write_file(&file, Bytes::from_static(b"hello")).await?;
///     assert_eq!(fs.read_file(&file).await?, "hello");
///     assert_eq!(fs.stat(&file).await?.size, 5);
///     assert_eq!(fs.read_dir(&dir).await?[0].name, "hello.txt");
///     Ok::<(), vfs_core::VfsError>(())
/// })?;
/// # Ok::<(), vfs_core::VfsError>(())
/// ```
pub struct MemoryFs {
    root: Arc<Inode>,
    usage: Arc<Usage>,
    next_ino: AtomicU64,
    /// Serializes renames between two directories, so the subtree check and the parent
    /// pointers it reads cannot change under it.
    rename_lock: Mutex<()>,
    hasher: ahash::RandomState,
    uid: u32,
    gid: u32,
}

impl MemoryFs {
    /// An empty filesystem without limits, owned by root.
    pub fn new() -> MemoryFs {
        MemoryFs::with_config(MemoryConfig::default())
    }

    /// An empty filesystem with `config`'s limits and owner.
    pub fn with_config(config: MemoryConfig) -> MemoryFs {
        let usage = Arc::new(Usage::new(config.max_bytes, config.max_inodes));
        usage.force_inode();
        let hasher = ahash::RandomState::new();
        let root = Inode::new(
            NewInode {
                ino: ROOT_INO,
                mode: 0o755,
                uid: config.uid,
                gid: config.gid,
                now: Timestamp::now(),
            },
            Inode::new_dir_body(Weak::new(), &hasher),
            Arc::clone(&usage),
        );
        MemoryFs {
            root: Arc::new(root),
            usage,
            next_ino: AtomicU64::new(ROOT_INO + 1),
            rename_lock: Mutex::new(()),
            hasher,
            uid: config.uid,
            gid: config.gid,
        }
    }

    /// The identity of an inode about to be created in the directory whose attributes
    /// is `parent`: a setgid directory passes on its group, and its setgid bit to
    /// subdirectories, as Linux's `inode_init_owner`.
    fn new_inode(&self, parent: &Inode, mode: u32, is_dir: bool, now: Timestamp) -> NewInode {
        let (gid, mode) = if parent.mode() & S_ISGID != 0 {
            (parent.gid(), if is_dir { mode | S_ISGID } else { mode })
        } else {
            (self.gid, mode)
        };
        NewInode {
            ino: self.next_ino.fetch_add(1, Ordering::Relaxed),
            mode,
            uid: self.uid,
            gid,
            now,
        }
    }

    fn statfs_now(&self) -> StatFs {
        let block = PAGE_SIZE as u64;
        let used_blocks = self.usage.bytes() / block;
        let (blocks, blocks_free) = match self.usage.max_bytes() {
            Some(max) => (max / block, (max / block).saturating_sub(used_blocks)),
            None => (used_blocks + UNLIMITED_FREE_BLOCKS, UNLIMITED_FREE_BLOCKS),
        };
        let used_inodes = self.usage.inodes();
        let (files, files_free) = match self.usage.max_inodes() {
            Some(max) => (max, max.saturating_sub(used_inodes)),
            None => (used_inodes + UNLIMITED_FREE_INODES, UNLIMITED_FREE_INODES),
        };
        StatFs {
            block_size: PAGE_SIZE as u32,
            blocks,
            blocks_free,
            blocks_available: blocks_free,
            files,
            files_free,
            name_max: vfs_core::MAX_NAME_BYTES as u32,
        }
    }
}

impl Default for MemoryFs {
    fn default() -> MemoryFs {
        MemoryFs::new()
    }
}

impl fmt::Debug for MemoryFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFs")
            .field("bytes", &self.usage.bytes())
            .field("inodes", &self.usage.inodes())
            .field("max_bytes", &self.usage.max_bytes())
            .field("max_inodes", &self.usage.max_inodes())
            .finish_non_exhaustive()
    }
}

/// An error of `kind` from `op` about `path`.
pub(crate) fn fail(kind: ErrorKind, op: &'static str, path: &VfsPath) -> VfsError {
    VfsError::new(kind, op).with_path(path.as_str())
}

#[async_trait]
impl FileSystem for MemoryFs {
    fn kind(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::posix()
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        Ok(Box::new(self.open_handle(path, options)?))
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.with_node(path, true, "stat", |node| Ok(node.metadata()))
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.with_node(path, false, "lstat", |node| Ok(node.metadata()))
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        self.list(path)
    }

    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.mkdir(path, mode)
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        self.unlink(path)
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        self.rmdir(path)
    }

    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        self.rename_entry(from, to, RenameFlags::default())
    }

    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        self.make_symlink(target, link)
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        self.with_node(path, false, "readlink", |node| {
            match node.symlink_target() {
                Some(target) => Ok(target.to_owned()),
                None => Err(fail(ErrorKind::InvalidInput, "readlink", path)),
            }
        })
    }

    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        self.link(existing, new)
    }

    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.chmod(path, mode)
    }

    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.chown(path, true, uid, gid)
    }

    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        self.utimens(path, true, atime, mtime)
    }

    async fn rename_with(&self, from: &VfsPath, to: &VfsPath, flags: RenameFlags) -> Result<()> {
        self.rename_entry(from, to, flags)
    }

    async fn make_node(&self, path: &VfsPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        self.mknod(path, kind, mode, rdev)
    }

    async fn set_owner_nofollow(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        self.chown(path, false, uid, gid)
    }

    async fn set_times_nofollow(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        self.utimens(path, false, atime, mtime)
    }

    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.with_node(path, true, "statfs", |_| Ok(()))?;
        Ok(self.statfs_now())
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        self.xattr_get(path, name)
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        self.xattr_set(path, name, &value, mode)
    }

    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        self.xattr_list(path)
    }

    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        self.xattr_remove(path, name)
    }

    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        self.read_whole(path)
    }

    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        self.write_whole(path, &data)
    }

    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        self.read_range(path, offset, len)
    }

    async fn pwrite(&self, path: &VfsPath, offset: u64, data: Bytes) -> Result<()> {
        self.write_range(path, offset, &data)
    }

    async fn truncate(&self, path: &VfsPath, len: u64) -> Result<()> {
        self.truncate_path(path, len)
    }

    async fn create_dir_all(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.mkdir_all(path, mode)
    }

    async fn realpath(&self, path: &VfsPath) -> Result<VfsPath> {
        self.canonical(path)
    }

    async fn exists(&self, path: &VfsPath) -> Result<bool> {
        match self.with_node(path, true, "exists", |_| Ok(())) {
            Ok(()) => Ok(true),
            Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}
