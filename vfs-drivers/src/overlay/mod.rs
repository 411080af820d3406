//! The `overlay` driver: one writable upper over read-only lowers, every layer any
//! [`FileSystem`], with Linux overlayfs semantics and OCI whiteouts.
//!
//! Modules: `lookup` (path resolution in the merged view), `readdir` (merged listings),
//! `copy_up` (streaming copy-up with metadata), `whiteout` (the `.wh.` convention in the
//! upper), `files` and `ops` (the operations), `handle`, `inode` (inode numbers) and
//! `config` ([`OverlayConfig`] and [`OverlayFactory`] for the driver registry).

mod cache;
mod config;
mod copy_up;
mod files;
mod handle;
mod inode;
mod lookup;
mod ops;
mod readdir;
#[cfg(test)]
mod tests;
mod whiteout;

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Mutex, MutexGuard, OnceCell, RwLock};
use vfs_core::{
    async_trait, Capabilities, DirEntry, ErrorKind, FileHandle, FileKind, FileSystem, Metadata,
    OpenOptions, RenameFlags, Result, SetTime, StatFs, Timestamp, VfsError, VfsPath, XattrMode,
};

pub use self::config::{OverlayConfig, OverlayFactory};
pub use self::copy_up::COPY_CHUNK;

use self::cache::LookupCache;
use self::handle::OpenLowers;
use self::inode::InoMap;
use self::lookup::{Hit, Want};
use self::ops::relabel;

/// The most lower layers an overlay takes, as Linux's `OVL_MAX_STACK`.
pub const MAX_LOWERS: usize = 500;

/// One writable upper [`FileSystem`] over any number of read-only lowers, merged as Linux
/// overlayfs merges directories. Every layer is any `dyn FileSystem` (memory, a host
/// directory, an object store, another overlay); lowers are only ever read.
///
/// # Semantics
///
/// - **Lookup**: the topmost layer holding a name wins. A non-directory hides everything
///   beneath it; directories of the same name merge down to the first opaque one. A
///   whiteout hides the name in the layers beneath its own. Lowers may hold whiteouts
///   and opaque markers too (an upper of another overlay used as a lower), so stacked
///   layers behave as stacked OCI layers.
/// - **Whiteouts and opaque directories** are stored in the upper with the OCI layer
///   convention: deleting a lower entry `name` creates an empty file `.wh.name` beside it;
///   a directory that replaces a lower one holds `.wh..wh..opq`. They are plain files, so
///   they survive on any upper driver and the upper is directly a tar/OCI layer. Names
///   starting with `.wh.` are reserved: creating one is `EINVAL`, looking one up is
///   `ENOENT`, listings never show them. (overlayfs uses 0/0 character devices and
///   xattrs instead, which object stores cannot hold.)
/// - **Copy-up**: the first write, open for writing, truncate, chmod, chown, utimes,
///   xattr change or hard link of a lower entry copies it into the upper first, its
///   parent directories included, keeping mode, ownership (where the upper stores it;
///   an upper that refuses `chown` with `EPERM` keeps its own, like `cp -p`), atime and
///   mtime, and xattrs (ctime and btime cannot be set: they are the copy's). Files are
///   streamed in [`COPY_CHUNK`] pieces into a temporary name and renamed into place, so
///   a copy-up is never seen half done; holes stay holes on a sparse upper. An `O_TRUNC`
///   open or `write_file` copies no content, `truncate` only what it keeps. A symlink is
///   recreated with its target, and its owner and times where the upper can set them on
///   a symlink (`lchown`/`lutimes`). Lower fifos, devices and sockets cannot be copied up
///   (`ENOTSUP`); new ones are created in the upper (`mknod`).
/// - **Delete**: removing a lower entry leaves a whiteout; recreating the name removes
///   it. `remove_dir` needs the merged directory empty (`ENOTEMPTY` otherwise) and then
///   clears the whiteouts in its upper part; `create_dir` over a whiteout makes an
///   opaque directory, so a directory removed and made again comes back empty.
/// - **Rename**: a non-directory is copied up if needed and renamed in the upper; a
///   whiteout hides a lower entry left at the old name. A directory held only by the
///   upper is renamed there (atomically, as the upper renames). A directory with lower
///   parts is first copied up whole (every lower file beneath it: a full copy) and made
///   opaque, then renamed: this is **not atomic** and costs a copy of the subtree.
///   overlayfs instead answers `EXDEV` (`redirect_dir=off`, which `mv` handles by
///   copying) or records a redirect xattr; we do the copy so callers need no fallback.
///   Hard links between files of the copied subtree are not kept.
/// - **Hard links**: linking a lower file copies it up and links in the upper, so the
///   two names share one inode from then on. As in overlayfs without `index=on`, a
///   copy-up breaks hard links the lower had: other lower names of the file keep the
///   old content and inode.
/// - **Inode numbers** (`st_ino`, as `xino=on`): the upper's numbers unchanged (when they
///   fit in the bits left by the layer tag), each lower's numbers tagged with the layer
///   index in the top bits, so they never collide across layers. A non-directory reports
///   its topmost layer's number, so a copy-up changes it (overlayfs keeps it through an
///   `origin` xattr; we do not rely on upper xattrs). A directory reports its lowest
///   layer's number, so copying it up (creating a file in it) does not change it; a
///   lower-backed directory renamed becomes an upper one and changes number. Numbers are
///   stable per path between such changes and distinct within a listing.
/// - **Link counts**: a directory merged from several layers reports `nlink` 1, as
///   overlayfs does ("unknown", which `find` honours); others report their layer's. A
///   handle on a directory reports its count as it is now: 1 once merged, and 0 once the
///   overlay removed a directory one layer held (overlayfs reports the lower's own
///   count for a removed lower directory; we report what an unlinked directory has).
/// - **Handles**: a read-only open of a lower file reads the lower directly; an open for
///   writing copies up first and returns the upper's handle. When a lower file or
///   directory is copied up, the handles open on it move to the copy (as overlayfs since
///   Linux 4.19), so they see later writes, truncations and metadata changes. A handle
///   on a lower file whose name the overlay removes keeps reading it, with `nlink` one
///   less, as for an unlinked file.
/// - `statfs` reports the upper's; [`Capabilities`] are the upper's with `read_only`
///   false. Errors name the overlay path the caller gave.
///
/// Namespace changes and copy-ups are serialized by one lock of the overlay; reads and
/// handle I/O take none. Multi-step changes on lower-backed entries (a whiteout and a
/// rename, a subtree copy) are not atomic for concurrent readers, and a failure part way
/// is rolled back where it can be.
///
/// Lookups are cached (directories on the way, and whole resolutions of entries only
/// lowers hold), and every change the overlay makes drops the cache. So, as with
/// overlayfs, neither the lowers nor the upper may be changed other than through the
/// overlay while it is in use; a lower entry's metadata (its atime included) is what it
/// was when first looked up. Where a lower does change beside the overlay, build it with
/// [`OverlayFs::lowers_may_change`] (config `lowersMayChange`), which caches nothing.
///
/// A lower entry whose name is 252 bytes or longer cannot be deleted (`ENAMETOOLONG`):
/// its whiteout name would pass 255 bytes.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use vfs_core::{FileSystem, VfsPath};
/// use vfs_drivers::memory::MemoryFs;
/// use vfs_drivers::overlay::OverlayFs;
///
/// futures::executor::block_on(async {
///     let base = Arc::new(MemoryFs::new());
///     let etc = VfsPath::new("/etc")?;
///     base.create_dir(&etc, 0o755).await?;
///     base.write_file(&VfsPath::new("/etc/hosts")?, Bytes::from_static(b"base")).await?;
///
///     let upper = Arc::new(MemoryFs::new());
///     let fs = OverlayFs::new(upper.clone(), vec![base.clone()])?;
///     let hosts = VfsPath::new("/etc/hosts")?;
///     assert_eq!(fs.read_file(&hosts).await?, "base");
///     fs.write_file(&hosts, Bytes::from_static(b"mine")).await?; // copied up
///     assert_eq!(fs.read_file(&hosts).await?, "mine");
///     assert_eq!(base.read_file(&hosts).await?, "base"); // the lower is untouched
///     fs.remove_file(&hosts).await?; // a whiteout in the upper
///     assert!(upper.exists(&VfsPath::new("/etc/.wh.hosts")?).await?);
///     assert!(fs.read_dir(&etc).await?.is_empty());
///     Ok::<(), vfs_core::VfsError>(())
/// })?;
/// # Ok::<(), vfs_core::VfsError>(())
/// ```
pub struct OverlayFs {
    upper: Arc<dyn FileSystem>,
    /// The upper, then the lowers topmost first: a layer's index is its position here.
    layers: Vec<Arc<dyn FileSystem>>,
    inos: InoMap,
    /// The lowers the root merges, found on first use.
    root_lowers: OnceCell<Vec<Hit>>,
    /// Serializes namespace changes and copy-ups (see [`OverlayFs::change`]).
    lock: Mutex<()>,
    /// Merged lookups, invalidated whenever the lock is released.
    cache: LookupCache,
    /// Handles open on lower files, moved to the upper copy by a copy-up.
    open_lowers: Arc<OpenLowers>,
    /// Read-only opens hold it shared; the rename that ends a file copy-up (and moves
    /// the file's handles) holds it exclusively.
    handle_moves: RwLock<()>,
    /// Whether `shutdown` shuts the layers down too: only when the overlay built them.
    owns_layers: bool,
    /// Numbers the temporary copy-up names; starts from the clock so that names left by
    /// an interrupted earlier instance are unlikely to be met.
    temp_counter: AtomicU64,
}

impl OverlayFs {
    /// An overlay of `upper` over `lowers` (topmost first). The upper must be writable;
    /// at most [`MAX_LOWERS`] lowers (`EINVAL` otherwise).
    ///
    /// The layers stay the caller's: the overlay's `shutdown` leaves them running, so one
    /// lower (a base image) can serve many overlays. Overlays built by [`OverlayFactory`]
    /// own the layers they built and shut them down with themselves.
    pub fn new(upper: Arc<dyn FileSystem>, lowers: Vec<Arc<dyn FileSystem>>) -> Result<OverlayFs> {
        if upper.capabilities().read_only {
            return Err(VfsError::new(ErrorKind::InvalidInput, "mount")
                .with_detail("the upper layer of an overlay must be writable"));
        }
        if lowers.len() > MAX_LOWERS {
            return Err(
                VfsError::new(ErrorKind::InvalidInput, "mount").with_detail(format!(
                    "an overlay takes at most {MAX_LOWERS} lowers, not {}",
                    lowers.len()
                )),
            );
        }
        let inos = InoMap::new(lowers.len());
        let mut layers = Vec::with_capacity(1 + lowers.len());
        layers.push(Arc::clone(&upper));
        layers.extend(lowers);
        Ok(OverlayFs {
            upper,
            layers,
            inos,
            root_lowers: OnceCell::new(),
            lock: Mutex::new(()),
            cache: LookupCache::default(),
            open_lowers: Arc::default(),
            handle_moves: RwLock::new(()),
            owns_layers: false,
            temp_counter: AtomicU64::new(Timestamp::now().as_nanos().unsigned_abs()),
        })
    }

    /// Looks every path up in the layers afresh instead of caching lookups, so changes
    /// made to a lower beside the overlay (the same host directory mounted writable
    /// elsewhere, say) show through: new and removed names, sizes, times, and a
    /// snapshot's stat cache sees them. Costs a probe of each layer per path component.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use bytes::Bytes;
    /// use vfs_core::{FileSystem, VfsPath};
    /// use vfs_drivers::memory::MemoryFs;
    /// use vfs_drivers::overlay::OverlayFs;
    ///
    /// # futures::executor::block_on(async {
    /// let lower = Arc::new(MemoryFs::new());
    /// let notes = VfsPath::new("/notes")?;
    /// lower.write_file(&notes, Bytes::from_static(b"old")).await?;
    /// let overlay = OverlayFs::new(Arc::new(MemoryFs::new()), vec![lower.clone() as Arc<dyn FileSystem>])?
    ///     .lowers_may_change();
    /// assert_eq!(overlay.stat(&notes).await?.size, 3);
    /// lower.write_file(&notes, Bytes::from_static(b"newer")).await?;
    /// assert_eq!(overlay.stat(&notes).await?.size, 5);
    /// # Ok::<(), vfs_core::VfsError>(())
    /// # }).unwrap();
    /// ```
    pub fn lowers_may_change(mut self) -> OverlayFs {
        self.cache = LookupCache::off();
        self
    }

    /// Makes `shutdown` shut the layers down too.
    fn owning_layers(mut self) -> OverlayFs {
        self.owns_layers = true;
        self
    }

    /// The upper layer.
    pub fn upper(&self) -> &Arc<dyn FileSystem> {
        &self.upper
    }

    /// The lower layers, topmost first.
    pub fn lowers(&self) -> &[Arc<dyn FileSystem>] {
        self.layers.get(1..).unwrap_or_default()
    }

    /// Takes the lock every namespace change and copy-up runs under; releasing it
    /// invalidates the lookup cache.
    async fn change(&self) -> ChangeGuard<'_> {
        ChangeGuard {
            _lock: self.lock.lock().await,
            cache: &self.cache,
        }
    }

    /// Layer `index` (0 is the upper).
    fn layer(&self, index: usize) -> Result<&Arc<dyn FileSystem>> {
        // Indices come only from enumerating `layers`; a miss would be a bug here.
        self.layers.get(index).ok_or_else(|| {
            VfsError::new(ErrorKind::Io, "overlay").with_detail(format!("no layer {index}"))
        })
    }
}

impl fmt::Debug for OverlayFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.layers.iter().map(|layer| layer.kind()).collect();
        f.debug_struct("OverlayFs")
            .field("upper", &self.upper.kind())
            .field("lowers", &kinds.get(1..).unwrap_or_default())
            .finish_non_exhaustive()
    }
}

/// Held while the namespace changes: on release, whatever happened, cached lookups
/// become stale.
struct ChangeGuard<'a> {
    _lock: MutexGuard<'a, ()>,
    cache: &'a LookupCache,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        self.cache.invalidate();
    }
}

/// An error of `kind` from `op` about `path`.
pub(crate) fn fail(kind: ErrorKind, op: &'static str, path: &VfsPath) -> VfsError {
    VfsError::new(kind, op).with_path(path.as_str())
}

/// Names the right one of the two paths of a rename or link in its error: errors about
/// anything else (a resolved or internal path) name the first.
fn relabel_pair(err: VfsError, first: &VfsPath, second: &VfsPath) -> VfsError {
    match err.path() {
        Some(path) if path == first.as_str() || path == second.as_str() => err,
        Some(path) if path == first.to_string() || path == second.to_string() => err,
        _ => relabel(err, first),
    }
}

#[async_trait]
impl FileSystem for OverlayFs {
    fn kind(&self) -> &str {
        "overlay"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            ..self.upper.capabilities()
        }
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        self.open_impl(path, options)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.stat_impl(path, Want::Follow, "stat")
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.stat_impl(path, Want::NoFollow, "lstat")
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        self.read_dir_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.create_dir_impl(path, mode)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        self.remove_file_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        self.remove_dir_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        self.rename_impl(from, to, false)
            .await
            .map_err(|err| relabel_pair(err, from, to))
    }

    /// `RENAME_NOREPLACE` is served; `RENAME_EXCHANGE` is `EINVAL`: swapping two entries
    /// that may live in different layers cannot be done atomically here.
    async fn rename_with(&self, from: &VfsPath, to: &VfsPath, flags: RenameFlags) -> Result<()> {
        if flags.exchange {
            return Err(fail(ErrorKind::InvalidInput, "rename", from)
                .with_detail("RENAME_EXCHANGE is not supported by the overlay"));
        }
        self.rename_impl(from, to, flags.no_replace)
            .await
            .map_err(|err| relabel_pair(err, from, to))
    }

    async fn make_node(&self, path: &VfsPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        self.make_node_impl(path, kind, mode, rdev)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn set_owner_nofollow(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        self.set_owner_nofollow_impl(path, uid, gid)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn set_times_nofollow(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        self.set_times_nofollow_impl(path, atime, mtime)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        self.symlink_impl(target, link)
            .await
            .map_err(|err| relabel(err, link))
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        self.read_link_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        self.hard_link_impl(existing, new)
            .await
            .map_err(|err| relabel_pair(err, new, existing))
    }

    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.set_permissions_impl(path, mode)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.set_owner_impl(path, uid, gid)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        self.set_times_impl(path, atime, mtime)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.statfs_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        self.get_xattr_impl(path, name)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        self.set_xattr_impl(path, name, value, mode)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        self.list_xattrs_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        self.remove_xattr_impl(path, name)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn shutdown(&self) -> Result<()> {
        if !self.owns_layers {
            return Ok(());
        }
        // Every layer is released; the first error (the upper's first) is reported.
        let mut first = None;
        for layer in &self.layers {
            if let Err(err) = layer.shutdown().await {
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        self.read_file_impl(path)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        self.write_file_impl(path, data)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        self.pread_impl(path, offset, len)
            .await
            .map_err(|err| relabel(err, path))
    }

    async fn truncate(&self, path: &VfsPath, len: u64) -> Result<()> {
        self.truncate_impl(path, len)
            .await
            .map_err(|err| relabel(err, path))
    }
}
