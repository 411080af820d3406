//! The runtime mount table: filesystems attached and detached at paths while other tasks do
//! I/O, served together as one [`FileSystem`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{ErrorKind, Result, VfsError};
use crate::filesystem::{FileHandle, FileSystem};
use crate::metadata::{
    Capabilities, DirEntry, FileKind, Metadata, OpenOptions, RenameFlags, SetTime, StatFs,
    Timestamp, XattrMode,
};
use crate::path::{is_within, rebase_str, VfsPath};
use crate::read_only::ReadOnlyFs;

/// Identifies one mount for the life of its table. Ids are never reused, so a path mounted,
/// unmounted and mounted again gets a new id (unlike backends that pack a small index into
/// inode numbers and serve stale files after it wraps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MountId(pub u64);

impl fmt::Display for MountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a filesystem is mounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct MountOptions {
    /// Refuse every mutation beneath the mount with `EROFS`.
    pub read_only: bool,
}

/// How a filesystem is unmounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct UnmountOptions {
    /// Detach even while handles are open (`umount -l`): open handles keep working, new
    /// lookups no longer see the mount. Without it, open handles make unmount fail with
    /// `EBUSY`.
    pub lazy: bool,
}

/// One row of [`MountTable::list`]. It never holds the driver's config, which can carry
/// credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountInfo {
    /// Where the filesystem is mounted.
    pub path: VfsPath,
    /// The driver id (`"memory"`, `"host_dir"`, ...).
    pub kind: String,
    /// Whether mutations are refused.
    pub read_only: bool,
    /// The mount's id, never reused.
    pub mount_id: MountId,
}

/// What happened to the table, for subscribers ([`MountTable::subscribe`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum MountEvent {
    /// A filesystem was mounted.
    Mounted {
        /// The new mount.
        mount: MountInfo,
    },
    /// A filesystem was unmounted.
    Unmounted {
        /// The mount that went away.
        mount: MountInfo,
        /// Whether handles were still open (a lazy unmount).
        lazy: bool,
    },
    /// The driver's `shutdown` failed after it was unmounted; the unmount itself stood.
    ShutdownFailed {
        /// The mount that went away.
        mount: MountInfo,
        /// The errno string.
        code: String,
        /// The error, on one line.
        message: String,
    },
}

struct Mount {
    info: MountInfo,
    fs: Arc<dyn FileSystem>,
    open_handles: AtomicUsize,
}

/// An immutable view of the mounts, swapped whole on every change so readers take no lock.
#[derive(Default)]
struct Table {
    mounts: HashMap<String, Arc<Mount>, ahash::RandomState>,
    /// For every proper ancestor of a mount point, the names beneath it that lead to a
    /// mount point, so directory listings show mount points and their missing ancestors.
    mount_children: HashMap<String, BTreeSet<String>, ahash::RandomState>,
    /// The greatest depth of any mount point; deeper ancestors need no lookup.
    max_depth: usize,
}

impl Table {
    fn with_mounts(mounts: impl IntoIterator<Item = Arc<Mount>>) -> Table {
        let mut table = Table::default();
        for mount in mounts {
            let path = mount.info.path.clone();
            table.max_depth = table.max_depth.max(path.depth());
            let mut child = path.as_str();
            for ancestor in path.ancestors().skip(1) {
                let name = &child[child.rfind('/').map_or(0, |cut| cut + 1)..];
                table
                    .mount_children
                    .entry(ancestor.to_owned())
                    .or_default()
                    .insert(name.to_owned());
                child = ancestor;
            }
            table.mounts.insert(path.as_str().to_owned(), mount);
        }
        table
    }

    /// The mount whose path is the longest prefix of `path`.
    fn covering(&self, path: &VfsPath) -> Option<&Arc<Mount>> {
        let skip = path.depth().saturating_sub(self.max_depth);
        path.ancestors()
            .skip(skip)
            .find_map(|ancestor| self.mounts.get(ancestor))
    }
}

/// Where a path lands: the mount serving it and the path inside that mount.
struct Resolved<'a> {
    mount: Arc<Mount>,
    inner: Cow<'a, VfsPath>,
}

impl Resolved<'_> {
    fn fs(&self) -> &dyn FileSystem {
        self.mount.fs.as_ref()
    }

    /// Turns the driver's mount-relative error path back into the caller's path.
    fn outer_error(&self, err: VfsError) -> VfsError {
        let prefix = self.mount.info.path.as_str();
        if prefix == "/" {
            return err;
        }
        err.map_path(|inner| {
            if inner.starts_with('/') {
                rebase_str(inner, prefix)
            } else {
                inner.to_owned()
            }
        })
    }
}

/// A set of filesystems mounted at paths, itself a [`FileSystem`].
///
/// - Resolution takes the longest mount-point prefix; the driver sees the path relative to
///   its mount root. Lookups load an immutable table through an atomic pointer: mount and
///   unmount never block I/O, and I/O never blocks them.
/// - Mounts nest. A mount point appears in its parent's listing (as a directory) and stats as
///   the mounted filesystem's root. A missing mount point is created in the filesystem
///   beneath it, like `mkdir -p` (as agentOS does), when that filesystem is writable; under a
///   read-only mount, or where nothing is mounted, it is shown as a virtual directory.
/// - Mounting over an existing mount point is `EEXIST`; over a non-directory, `ENOTDIR`.
/// - `rename` and `hard_link` across mounts are `EXDEV`; every mutation beneath a read-only
///   mount is `EROFS`; removing or renaming a mount point, or renaming a directory that holds
///   one, is `EBUSY`; creating anything at a mount point is `EEXIST`; creating beneath a
///   virtual directory is `EROFS`.
/// - Unmounting a path that is not a mount point is `EINVAL`; one with mounts beneath it,
///   or with open handles unless lazy, is `EBUSY`. Unmount calls the driver's `shutdown`.
/// - Symlinks are resolved by the driver holding them, within that driver: an absolute
///   target starts at the driver's root, not the table's. (Served through FUSE the kernel
///   walks paths itself, so links there cross mounts as on Linux.)
///
/// ```
/// # async fn demo(memory: std::sync::Arc<dyn vfs_core::FileSystem>,
/// #               workspace: std::sync::Arc<dyn vfs_core::FileSystem>) -> vfs_core::Result<()> {
/// use vfs_core::{FileSystem, MountOptions, MountTable, UnmountOptions, VfsPath};
///
/// let table = MountTable::new();
/// table.mount(&VfsPath::root(), memory, MountOptions::default()).await?;
/// let work = VfsPath::new("/work")?;
/// table.mount(&work, workspace, MountOptions { read_only: true }).await?;
/// assert_eq!(table.list().len(), 2);
/// let err = table.write_file(&work.join("x")?, "data".into()).await.unwrap_err();
/// assert_eq!(err.code(), "EROFS");
/// table.unmount(&work, UnmountOptions::default()).await?;
/// # Ok(()) }
/// ```
pub struct MountTable {
    table: ArcSwap<Table>,
    /// Serializes mount and unmount with each other only; readers never take it.
    writer: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    events: broadcast::Sender<MountEvent>,
    virtual_times: Timestamp,
    hooks: parking_lot::RwLock<Vec<(ChangeHookId, ChangeHook)>>,
    next_hook: AtomicU64,
}

type ChangeHook = Arc<dyn Fn(&MountEvent) + Send + Sync>;

/// Identifies a hook added with [`MountTable::on_change`], to remove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChangeHookId(u64);

impl Default for MountTable {
    fn default() -> MountTable {
        MountTable::new()
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 1024;

impl MountTable {
    /// An empty table.
    pub fn new() -> MountTable {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        MountTable {
            table: ArcSwap::from_pointee(Table::default()),
            writer: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            events,
            virtual_times: Timestamp::now(),
            hooks: parking_lot::RwLock::new(Vec::new()),
            next_hook: AtomicU64::new(1),
        }
    }

    /// Mounts `fs` at `path`, creating a missing mount point (see the type's rustdoc).
    pub async fn mount(
        &self,
        path: &VfsPath,
        fs: Arc<dyn FileSystem>,
        options: MountOptions,
    ) -> Result<MountId> {
        let path = path.without_trailing_slash();
        let _writer = self.writer.lock().await;
        let current = self.table.load_full();
        if current.mounts.contains_key(path.as_str()) {
            return Err(VfsError::new(ErrorKind::AlreadyExists, "mount")
                .with_path(path.as_str())
                .with_detail("something is already mounted there"));
        }
        self.prepare_mount_point(&current, &path).await?;
        let kind = fs.kind().to_owned();
        let fs: Arc<dyn FileSystem> = if options.read_only {
            Arc::new(ReadOnlyFs::new(fs))
        } else {
            fs
        };
        let id = MountId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mount = Arc::new(Mount {
            info: MountInfo {
                path,
                kind,
                read_only: options.read_only,
                mount_id: id,
            },
            fs,
            open_handles: AtomicUsize::new(0),
        });
        let info = mount.info.clone();
        let mounts = current.mounts.values().cloned().chain([mount]);
        self.table.store(Arc::new(Table::with_mounts(mounts)));
        let event = MountEvent::Mounted { mount: info };
        self.run_hooks(&event);
        // Nobody listening is fine: events are for whoever subscribed.
        let _ = self.events.send(event);
        Ok(id)
    }

    async fn prepare_mount_point(&self, table: &Table, path: &VfsPath) -> Result<()> {
        let Some(parent) = table.covering(path) else {
            return Ok(());
        };
        let resolved = Resolved {
            inner: Cow::Owned(
                path.strip_prefix(&parent.info.path)
                    .unwrap_or_else(VfsPath::root),
            ),
            mount: parent.clone(),
        };
        let located = resolved.fs().stat(&resolved.inner).await;
        match located {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(VfsError::new(ErrorKind::NotADirectory, "mount").with_path(path.as_str())),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                if parent.info.read_only {
                    return Ok(());
                }
                resolved
                    .fs()
                    .create_dir_all(&resolved.inner, 0o755)
                    .await
                    .map_err(|err| resolved.outer_error(err))
            }
            Err(err) => Err(resolved.outer_error(err)),
        }
    }

    /// Detaches the filesystem mounted at `path` and shuts its driver down.
    pub async fn unmount(&self, path: &VfsPath, options: UnmountOptions) -> Result<MountInfo> {
        let path = path.without_trailing_slash();
        let _writer = self.writer.lock().await;
        let current = self.table.load_full();
        let Some(mount) = current.mounts.get(path.as_str()).cloned() else {
            return Err(VfsError::new(ErrorKind::InvalidInput, "umount")
                .with_path(path.as_str())
                .with_detail("not a mount point"));
        };
        if let Some(child) = current
            .mounts
            .keys()
            .find(|other| other.as_str() != path.as_str() && is_within(other, path.as_str()))
        {
            return Err(VfsError::new(ErrorKind::Busy, "umount")
                .with_path(path.as_str())
                .with_detail(format!("{child} is mounted beneath it")));
        }
        let open = mount.open_handles.load(Ordering::Acquire);
        if open > 0 && !options.lazy {
            return Err(VfsError::new(ErrorKind::Busy, "umount")
                .with_path(path.as_str())
                .with_detail(format!(
                    "{open} open handle(s); unmount lazily to detach anyway"
                )));
        }
        let remaining = current
            .mounts
            .values()
            .filter(|other| other.info.mount_id != mount.info.mount_id)
            .cloned();
        self.table.store(Arc::new(Table::with_mounts(remaining)));
        let info = mount.info.clone();
        self.run_hooks(&MountEvent::Unmounted {
            mount: info.clone(),
            lazy: open > 0,
        });
        if let Err(err) = mount.fs.shutdown().await {
            let _ = self.events.send(MountEvent::ShutdownFailed {
                mount: info.clone(),
                code: err.code().to_owned(),
                message: err.to_string(),
            });
        }
        let _ = self.events.send(MountEvent::Unmounted {
            mount: info.clone(),
            lazy: open > 0,
        });
        Ok(info)
    }

    /// The mount points, sorted: where inode numbers start a new namespace, as a
    /// snapshot's hard-link matching needs (`SnapshotOptions::device_roots`).
    ///
    /// ```
    /// let table = vfs_core::MountTable::new();
    /// assert!(table.mount_points().is_empty());
    /// ```
    pub fn mount_points(&self) -> Vec<VfsPath> {
        self.list().into_iter().map(|mount| mount.path).collect()
    }

    /// The mounts, sorted by path. Never holds driver config.
    pub fn list(&self) -> Vec<MountInfo> {
        let mut mounts: Vec<MountInfo> = self
            .table
            .load()
            .mounts
            .values()
            .map(|mount| mount.info.clone())
            .collect();
        mounts.sort_by(|a, b| a.path.cmp(&b.path));
        mounts
    }

    /// Runs `hook` on every mount and unmount from now on, synchronously, after the
    /// table changed and before `mount`/`unmount` return (an unmount's hook runs before
    /// the driver's shutdown). A FUSE server uses it to drop the kernel's cached entries
    /// so that no process sees the old tree once the call has returned; the broadcast
    /// [`MountTable::subscribe`] gives no such ordering. The hook must be quick.
    pub fn on_change(&self, hook: impl Fn(&MountEvent) + Send + Sync + 'static) -> ChangeHookId {
        let id = ChangeHookId(self.next_hook.fetch_add(1, Ordering::Relaxed));
        self.hooks.write().push((id, Arc::new(hook)));
        id
    }

    /// Removes a hook added with [`MountTable::on_change`]; false if it was not there.
    pub fn remove_change_hook(&self, id: ChangeHookId) -> bool {
        let mut hooks = self.hooks.write();
        let before = hooks.len();
        hooks.retain(|(hook_id, _)| *hook_id != id);
        hooks.len() != before
    }

    fn run_hooks(&self, event: &MountEvent) {
        // Cloned out so a hook may add or remove hooks without deadlocking.
        let hooks: Vec<ChangeHook> = self.hooks.read().iter().map(|(_, h)| h.clone()).collect();
        for hook in hooks {
            hook(event);
        }
    }

    /// Events from now on: mounted, unmounted, shutdown failed.
    pub fn subscribe(&self) -> broadcast::Receiver<MountEvent> {
        self.events.subscribe()
    }

    /// The capabilities of the mount serving `path` (`None` where nothing is mounted).
    pub fn capabilities_at(&self, path: &VfsPath) -> Option<Capabilities> {
        self.table
            .load()
            .covering(path)
            .map(|mount| mount.fs.capabilities())
    }

    /// The mount serving `path` (the longest mount-point prefix), `None` where nothing
    /// is mounted (a virtual directory, or nothing at all). FUSE keys its inodes by it.
    pub fn mount_of(&self, path: &VfsPath) -> Option<MountInfo> {
        self.table
            .load()
            .covering(path)
            .map(|mount| mount.info.clone())
    }

    /// Whether `path` is a virtual directory: an ancestor of a mount point that no
    /// mounted filesystem holds.
    pub fn is_virtual(&self, path: &VfsPath) -> bool {
        let table = self.table.load();
        table.mount_children.contains_key(path.as_str()) && table.covering(path).is_none()
    }

    /// The number of handles open on the mount at `path`.
    pub fn open_handles(&self, path: &VfsPath) -> Option<usize> {
        self.table
            .load()
            .mounts
            .get(path.as_str())
            .map(|mount| mount.open_handles.load(Ordering::Acquire))
    }

    fn resolve<'p>(&self, operation: &'static str, path: &'p VfsPath) -> Result<Resolved<'p>> {
        let table = self.table.load();
        let Some(mount) = table.covering(path) else {
            return Err(self.uncovered_error(&table, operation, path));
        };
        let inner = if mount.info.path.is_root() {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(
                path.strip_prefix(&mount.info.path)
                    .unwrap_or_else(VfsPath::root),
            )
        };
        Ok(Resolved {
            mount: mount.clone(),
            inner,
        })
    }

    /// Where nothing is mounted only virtual directories exist, and they cannot change.
    fn uncovered_error(&self, table: &Table, operation: &'static str, path: &VfsPath) -> VfsError {
        let kind = match operation {
            _ if !table.mount_children.contains_key(path.as_str()) => ErrorKind::NotFound,
            "open" | "read" | "write" | "truncate" => ErrorKind::IsADirectory,
            _ => ErrorKind::ReadOnly,
        };
        VfsError::new(kind, operation).with_path(path.as_str())
    }

    /// Resolves a path whose entry is about to be created: mount points and their virtual
    /// ancestors already exist, and nothing can be created where nothing is mounted.
    fn resolve_for_create<'p>(
        &self,
        operation: &'static str,
        path: &'p VfsPath,
    ) -> Result<Resolved<'p>> {
        let table = self.table.load();
        if table.mounts.contains_key(path.as_str())
            || table.mount_children.contains_key(path.as_str())
        {
            return Err(VfsError::new(ErrorKind::AlreadyExists, operation).with_path(path.as_str()));
        }
        drop(table);
        self.resolve(operation, path).map_err(|err| {
            if err.kind() == ErrorKind::NotFound {
                VfsError::new(ErrorKind::ReadOnly, operation)
                    .with_path(path.as_str())
                    .with_detail("nothing is mounted there")
            } else {
                err
            }
        })
    }

    /// Resolves a path whose entry is about to be removed or moved: mount points and
    /// directories holding them are busy.
    fn resolve_for_detach<'p>(
        &self,
        operation: &'static str,
        path: &'p VfsPath,
    ) -> Result<Resolved<'p>> {
        let table = self.table.load();
        if table.mounts.contains_key(path.as_str())
            || table.mount_children.contains_key(path.as_str())
        {
            return Err(VfsError::new(ErrorKind::Busy, operation)
                .with_path(path.as_str())
                .with_detail("a mount point is there or beneath it"));
        }
        drop(table);
        self.resolve(operation, path)
    }

    fn virtual_dir(&self, path: &VfsPath) -> Metadata {
        let table = self.table.load();
        let subdirs = table
            .mount_children
            .get(path.as_str())
            .map_or(0, BTreeSet::len);
        Metadata {
            kind: FileKind::Directory,
            size: 0,
            mode: 0o555,
            uid: 0,
            gid: 0,
            nlink: 2 + subdirs as u64,
            ino: virtual_ino(path.as_str()),
            blocks: 0,
            rdev: 0,
            atime: self.virtual_times,
            mtime: self.virtual_times,
            ctime: self.virtual_times,
            btime: self.virtual_times,
        }
    }

    fn is_virtual_dir(&self, path: &VfsPath) -> bool {
        self.table.load().mount_children.contains_key(path.as_str())
    }

    /// Where a listing of `path` comes from: the mount serving it, or `None` for a
    /// virtual directory (only mount points beneath it), which lists as empty.
    fn listing_source<'p>(&self, path: &'p VfsPath) -> Result<Option<Resolved<'p>>> {
        match self.resolve("scandir", path) {
            Ok(resolved) => Ok(Some(resolved)),
            Err(_) if self.is_virtual_dir(path) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// What a mount listed at `path`, errors named by the caller's path; a directory the
    /// driver lacks but the table holds mount points in lists as empty.
    fn listing<T>(
        &self,
        path: &VfsPath,
        source: &Resolved<'_>,
        listed: Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        match listed {
            Err(err) if err.kind() == ErrorKind::NotFound && self.is_virtual_dir(path) => {
                Ok(Vec::new())
            }
            other => other.map_err(|err| source.outer_error(err)),
        }
    }

    async fn stat_with(&self, path: &VfsPath, follow: bool) -> Result<Metadata> {
        let operation = if follow { "stat" } else { "lstat" };
        let resolved = match self.resolve(operation, path) {
            Ok(resolved) => resolved,
            Err(_) if self.is_virtual_dir(path) => return Ok(self.virtual_dir(path)),
            Err(err) => return Err(err),
        };
        let result = if follow {
            resolved.fs().stat(&resolved.inner).await
        } else {
            resolved.fs().lstat(&resolved.inner).await
        };
        match result {
            Err(err) if err.kind() == ErrorKind::NotFound && self.is_virtual_dir(path) => {
                Ok(self.virtual_dir(path))
            }
            other => other.map_err(|err| resolved.outer_error(err)),
        }
    }
}

/// A stable inode number for a virtual directory, far from any driver's counter.
fn virtual_ino(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    hasher.finish() | (1 << 63)
}

/// A handle that counts itself against its mount, so unmount knows it is busy.
struct MountedHandle {
    inner: Box<dyn FileHandle>,
    _guard: OpenHandleGuard,
}

struct OpenHandleGuard(Arc<Mount>);

impl OpenHandleGuard {
    fn new(mount: Arc<Mount>) -> OpenHandleGuard {
        mount.open_handles.fetch_add(1, Ordering::AcqRel);
        OpenHandleGuard(mount)
    }
}

impl Drop for OpenHandleGuard {
    fn drop(&mut self) {
        self.0.open_handles.fetch_sub(1, Ordering::AcqRel);
    }
}

#[async_trait]
impl FileHandle for MountedHandle {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
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

    async fn stat(&self) -> Result<Metadata> {
        self.inner.stat().await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    async fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        self.inner.allocate(offset, len).await
    }

    async fn punch_hole(&self, offset: u64, len: u64) -> Result<()> {
        self.inner.punch_hole(offset, len).await
    }

    async fn xattrs(&self) -> Result<Vec<(String, Bytes)>> {
        self.inner.xattrs().await
    }
}

/// Forwards a call to the mount serving the path, mapping error paths back.
/// `forward!(self.resolve_for_create, ...)` resolves with that method instead (a path
/// that may not exist yet, or one that must not be a mount point).
macro_rules! forward {
    ($self:ident . $resolve:ident, $op:literal, $path:expr, |$fs:ident, $inner:ident| $call:expr) => {{
        let resolved = $self.$resolve($op, $path)?;
        let $fs = resolved.fs();
        let $inner: &VfsPath = &resolved.inner;
        $call.await.map_err(|err| resolved.outer_error(err))
    }};
    ($self:ident, $op:literal, $path:expr, |$fs:ident, $inner:ident| $call:expr) => {
        forward!($self.resolve, $op, $path, |$fs, $inner| $call)
    };
}

#[async_trait]
impl FileSystem for MountTable {
    fn kind(&self) -> &str {
        "mount_table"
    }

    /// The root mount's capabilities; [`MountTable::capabilities_at`] answers per path.
    fn capabilities(&self) -> Capabilities {
        self.capabilities_at(&VfsPath::root())
            .unwrap_or_else(|| Capabilities::default().as_read_only())
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        let resolved = match self.resolve("open", path) {
            Err(err) if options.creates() && err.kind() == ErrorKind::NotFound => {
                self.resolve_for_create("open", path)?
            }
            other => other?,
        };
        let guard = OpenHandleGuard::new(resolved.mount.clone());
        let inner = resolved
            .fs()
            .open(&resolved.inner, options)
            .await
            .map_err(|err| resolved.outer_error(err))?;
        Ok(Box::new(MountedHandle {
            inner,
            _guard: guard,
        }))
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.stat_with(path, true).await
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.stat_with(path, false).await
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        let mut entries = match self.listing_source(path)? {
            Some(resolved) => {
                let listed = resolved.fs().read_dir(&resolved.inner).await;
                self.listing(path, &resolved, listed)?
            }
            None => Vec::new(),
        };
        let table = self.table.load();
        if let Some(children) = table.mount_children.get(path.as_str()) {
            let mut synthetic: BTreeMap<&str, u64> =
                children.iter().map(|name| (name.as_str(), 0)).collect();
            for entry in &mut entries {
                if let Some(ino) = synthetic.get_mut(entry.name.as_str()) {
                    entry.kind = FileKind::Directory;
                    *ino = entry.ino;
                }
            }
            for (name, ino) in synthetic {
                if ino == 0 {
                    let child = path.join(name)?;
                    entries.push(DirEntry {
                        name: name.to_owned(),
                        kind: FileKind::Directory,
                        ino: virtual_ino(child.as_str()),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// The driver's own listing with metadata, except at mount points (and virtual
    /// directories), whose metadata is what `lstat` through the table gives: the mounted
    /// root's.
    async fn read_dir_plus(&self, path: &VfsPath) -> Result<Vec<(String, Metadata)>> {
        let mut entries = match self.listing_source(path)? {
            Some(resolved) => {
                let listed = resolved.fs().read_dir_plus(&resolved.inner).await;
                self.listing(path, &resolved, listed)?
            }
            None => Vec::new(),
        };
        let mounted: Vec<String> = match self.table.load().mount_children.get(path.as_str()) {
            Some(children) => children.iter().cloned().collect(),
            None => return Ok(entries),
        };
        entries.retain(|(name, _)| !mounted.contains(name));
        for name in mounted {
            match self.lstat(&path.join(&name)?).await {
                Ok(meta) => entries.push((name, meta)),
                // Unmounted since the table was read.
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(entries)
    }

    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        forward!(self.resolve_for_create, "mkdir", path, |fs, inner| fs
            .create_dir(inner, mode))
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        if self.is_virtual_dir(path) || self.table.load().mounts.contains_key(path.as_str()) {
            return Err(VfsError::new(ErrorKind::IsADirectory, "unlink").with_path(path.as_str()));
        }
        forward!(self, "unlink", path, |fs, inner| fs.remove_file(inner))
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        forward!(self.resolve_for_detach, "rmdir", path, |fs, inner| fs
            .remove_dir(inner))
    }

    /// Refused up front when a mount point is at or beneath `path`: the default's walk
    /// would empty the mounted filesystems before failing on their mount points. With
    /// none beneath, the whole tree is one driver's, which removes it itself.
    async fn remove_dir_all(&self, path: &VfsPath) -> Result<()> {
        forward!(self.resolve_for_detach, "rm", path, |fs, inner| fs
            .remove_dir_all(inner))
    }

    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        let source = self.resolve_for_detach("rename", from)?;
        let target = self.resolve_for_detach("rename", to)?;
        if source.mount.info.mount_id != target.mount.info.mount_id {
            return Err(VfsError::new(ErrorKind::CrossesDevices, "rename").with_path(from.as_str()));
        }
        source
            .fs()
            .rename(&source.inner, &target.inner)
            .await
            .map_err(|err| source.outer_error(err))
    }

    async fn rename_with(&self, from: &VfsPath, to: &VfsPath, flags: RenameFlags) -> Result<()> {
        let source = self.resolve_for_detach("rename", from)?;
        let target = self.resolve_for_detach("rename", to)?;
        if source.mount.info.mount_id != target.mount.info.mount_id {
            return Err(VfsError::new(ErrorKind::CrossesDevices, "rename").with_path(from.as_str()));
        }
        source
            .fs()
            .rename_with(&source.inner, &target.inner, flags)
            .await
            .map_err(|err| source.outer_error(err))
    }

    async fn make_node(&self, path: &VfsPath, kind: FileKind, mode: u32, rdev: u64) -> Result<()> {
        forward!(self.resolve_for_create, "mknod", path, |fs, inner| fs
            .make_node(inner, kind, mode, rdev))
    }

    async fn set_owner_nofollow(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        forward!(self, "lchown", path, |fs, inner| fs
            .set_owner_nofollow(inner, uid, gid))
    }

    async fn set_times_nofollow(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<()> {
        forward!(self, "lutimes", path, |fs, inner| fs
            .set_times_nofollow(inner, atime, mtime))
    }

    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        forward!(self.resolve_for_create, "symlink", link, |fs, inner| fs
            .symlink(target, inner))
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        if self.is_virtual_dir(path) || self.table.load().mounts.contains_key(path.as_str()) {
            return Err(VfsError::new(ErrorKind::InvalidInput, "readlink").with_path(path.as_str()));
        }
        forward!(self, "readlink", path, |fs, inner| fs.read_link(inner))
    }

    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        let source = self.resolve("link", existing)?;
        let target = self.resolve_for_create("link", new)?;
        if source.mount.info.mount_id != target.mount.info.mount_id {
            return Err(VfsError::new(ErrorKind::CrossesDevices, "link").with_path(new.as_str()));
        }
        source
            .fs()
            .hard_link(&source.inner, &target.inner)
            .await
            .map_err(|err| source.outer_error(err))
    }

    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        forward!(self, "chmod", path, |fs, inner| fs
            .set_permissions(inner, mode))
    }

    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        forward!(self, "chown", path, |fs, inner| fs
            .set_owner(inner, uid, gid))
    }

    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        forward!(self, "utimes", path, |fs, inner| fs
            .set_times(inner, atime, mtime))
    }

    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        forward!(self, "statfs", path, |fs, inner| fs.statfs(inner))
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        forward!(self, "getxattr", path, |fs, inner| fs
            .get_xattr(inner, name))
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> Result<()> {
        forward!(self, "setxattr", path, |fs, inner| fs
            .set_xattr(inner, name, value, mode))
    }

    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        forward!(self, "listxattr", path, |fs, inner| fs.list_xattrs(inner))
    }

    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> Result<()> {
        forward!(self, "removexattr", path, |fs, inner| fs
            .remove_xattr(inner, name))
    }

    /// Unmounts everything, deepest first, lazily.
    async fn shutdown(&self) -> Result<()> {
        let mut mounts = self.list();
        mounts.sort_by_key(|info| std::cmp::Reverse(info.path.depth()));
        for info in mounts {
            self.unmount(&info.path, UnmountOptions { lazy: true })
                .await?;
        }
        Ok(())
    }

    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        forward!(self, "open", path, |fs, inner| fs.read_file(inner))
    }

    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        let resolved = match self.resolve("open", path) {
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.resolve_for_create("open", path)?
            }
            other => other?,
        };
        resolved
            .fs()
            .write_file(&resolved.inner, data)
            .await
            .map_err(|err| resolved.outer_error(err))
    }

    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
        forward!(self, "read", path, |fs, inner| fs.pread(inner, offset, len))
    }

    async fn pwrite(&self, path: &VfsPath, offset: u64, data: Bytes) -> Result<()> {
        forward!(self, "write", path, |fs, inner| fs
            .pwrite(inner, offset, data))
    }

    async fn truncate(&self, path: &VfsPath, len: u64) -> Result<()> {
        forward!(self, "truncate", path, |fs, inner| fs.truncate(inner, len))
    }

    async fn exists(&self, path: &VfsPath) -> Result<bool> {
        if self.is_virtual_dir(path) {
            return Ok(true);
        }
        match self.resolve("access", path) {
            Ok(resolved) => resolved
                .fs()
                .exists(&resolved.inner)
                .await
                .map_err(|err| resolved.outer_error(err)),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Resolves symlinks within the mount serving `path` and returns the path as the
    /// table sees it.
    async fn realpath(&self, path: &VfsPath) -> Result<VfsPath> {
        if self.is_virtual_dir(path) {
            return Ok(path.without_trailing_slash());
        }
        let resolved = self.resolve("realpath", path)?;
        let inner = resolved
            .fs()
            .realpath(&resolved.inner)
            .await
            .map_err(|err| resolved.outer_error(err))?;
        Ok(inner.rebase_onto(&resolved.mount.info.path))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn change_hooks_run_before_mount_and_unmount_return() {
        let table = MountTable::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let id = table.on_change(move |event| {
            let entry = match event {
                MountEvent::Mounted { mount } => format!("+{}", mount.path.as_str()),
                MountEvent::Unmounted { mount, .. } => format!("-{}", mount.path.as_str()),
                MountEvent::ShutdownFailed { .. } => "!".to_owned(),
            };
            log.lock().unwrap().push(entry);
        });
        let deep = VfsPath::new("/x/y").unwrap();
        let mounted = table
            .mount(&deep, Arc::new(MountTable::new()), MountOptions::default())
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["+/x/y"]);

        let inside = VfsPath::new("/x/y/z").unwrap();
        assert_eq!(table.mount_of(&inside).map(|m| m.mount_id), Some(mounted));
        assert_eq!(table.mount_of(&deep).map(|m| m.mount_id), Some(mounted));
        let above = VfsPath::new("/x").unwrap();
        assert_eq!(table.mount_of(&above), None);
        assert!(table.is_virtual(&above));
        assert!(!table.is_virtual(&deep));

        table
            .unmount(&deep, UnmountOptions::default())
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["+/x/y", "-/x/y"]);
        assert!(!table.is_virtual(&above));
        assert!(table.remove_change_hook(id));
        assert!(!table.remove_change_hook(id));
        table
            .mount(&deep, Arc::new(MountTable::new()), MountOptions::default())
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2, "a removed hook runs no more");
    }
}
