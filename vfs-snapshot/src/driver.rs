//! The read-only `snapshot` driver: a [`FileSystem`] over one stored snapshot, fetching
//! trees and chunks lazily as paths are visited and files read.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Deserialize;
use vfs_core::{
    parse_config, Capabilities, DirEntry, DriverFactory, DriverRegistry, ErrorKind, FileHandle,
    FileKind, FileSystem, Metadata, OpenOptions, Result, SetTime, StatFs, Timestamp, VfsError,
    VfsPath, XattrMode,
};

use crate::digest::{Digest, SnapshotId};
use crate::store::Repository;
use crate::tree::{Attrs, ChunkRef, Node, Tree};

/// The registry id of the driver.
pub const SNAPSHOT_DRIVER_ID: &str = "snapshot";

/// Symlink hops allowed in one lookup, as agentOS and Linux allow.
const MAX_HOPS: usize = 40;

/// Default bound on cached chunk bytes.
const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// Configuration of the `snapshot` driver: `{"repository": "/var/lib/snapshots",
/// "snapshot": "<id or tag>", "cacheBytes": 67108864}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotDriverConfig {
    /// A local directory holding the repository.
    pub repository: String,
    /// The snapshot, by 64-digit id or tag.
    pub snapshot: String,
    /// The most chunk bytes kept in memory (default 64 MiB).
    #[serde(default)]
    pub cache_bytes: Option<usize>,
}

/// Chunks by digest, evicted oldest-first past a byte bound.
#[derive(Default)]
struct ChunkCache {
    map: HashMap<Digest, Bytes>,
    order: VecDeque<Digest>,
    bytes: usize,
}

struct Inner {
    repo: Arc<Repository>,
    root: SnapshotId,
    /// Trees are small and a lookup walks many: kept for the mount's life.
    trees: Mutex<HashMap<Digest, Arc<Tree>>>,
    chunks: Mutex<ChunkCache>,
    cache_bytes: usize,
}

/// A mounted snapshot, read-only: every mutation is `EROFS`. Hard links share an inode
/// number (their `nlink` is reported as 1: counting them would mean reading every tree).
///
/// ```
/// # async fn demo(repo: std::sync::Arc<vfs_snapshot::Repository>, id: vfs_snapshot::SnapshotId) -> vfs_core::Result<()> {
/// use vfs_core::FileSystem;
///
/// let fs = vfs_snapshot::SnapshotFs::new(repo, id).await?;
/// let hosts = fs.read_file(&vfs_core::VfsPath::new("/etc/hosts")?).await?;
/// # let _ = hosts; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SnapshotFs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SnapshotFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFs")
            .field("snapshot", &self.inner.root)
            .finish()
    }
}

/// What a path leads to.
enum Found {
    Dir(Arc<Tree>),
    Leaf(Node),
}

fn erofs(operation: &'static str, path: &VfsPath) -> VfsError {
    VfsError::new(ErrorKind::ReadOnly, operation)
        .with_path(path.as_str())
        .with_detail("a snapshot is read-only")
}

/// A stable inode number for a path relative to the snapshot root.
fn ino_of(rel: &str) -> u64 {
    let d = Digest::of(rel.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.0[..8]);
    u64::from_le_bytes(b) | 1
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn meta_of(kind: FileKind, attrs: &Attrs, size: u64, ino: u64, nlink: u64, rdev: u64) -> Metadata {
    let t = Timestamp(attrs.mtime);
    Metadata {
        kind,
        size,
        mode: attrs.mode & 0o7777,
        uid: attrs.uid,
        gid: attrs.gid,
        nlink,
        ino,
        blocks: size.div_ceil(512),
        rdev,
        atime: t,
        mtime: t,
        ctime: t,
        btime: t,
    }
}

impl SnapshotFs {
    /// Mounts snapshot `id` of `repo`, reading its root tree (so a missing or corrupt
    /// snapshot fails here, with `EIO` naming the blob).
    pub async fn new(repo: Arc<Repository>, id: SnapshotId) -> Result<SnapshotFs> {
        SnapshotFs::with_cache(repo, id, DEFAULT_CACHE_BYTES).await
    }

    /// As [`SnapshotFs::new`] with a bound on cached chunk bytes.
    pub async fn with_cache(
        repo: Arc<Repository>,
        id: SnapshotId,
        cache_bytes: usize,
    ) -> Result<SnapshotFs> {
        let fs = SnapshotFs {
            inner: Arc::new(Inner {
                repo,
                root: id,
                trees: Mutex::new(HashMap::new()),
                chunks: Mutex::new(ChunkCache::default()),
                cache_bytes,
            }),
        };
        fs.inner.tree(&id).await?;
        Ok(fs)
    }

    /// The mounted snapshot.
    pub fn id(&self) -> SnapshotId {
        self.inner.root
    }

    /// Resolves `path`, following symlinks on the way (and at the end if `follow`).
    /// Returns the path relative to the root as resolved, and what is there.
    async fn resolve(&self, path: &VfsPath, follow: bool) -> Result<(String, Found)> {
        let not_found = || VfsError::new(ErrorKind::NotFound, "lookup").with_path(path.as_str());
        let mut remaining: VecDeque<String> = path.components().map(str::to_owned).collect();
        // (name, tree) from the root down.
        let mut stack: Vec<(String, Arc<Tree>)> =
            vec![(String::new(), self.inner.tree(&self.inner.root).await?)];
        let mut hops = 0;
        while let Some(part) = remaining.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let Some((_, dir)) = stack.last() else {
                return Err(not_found());
            };
            let Ok(at) = dir
                .entries
                .binary_search_by(|e| e.name.as_bytes().cmp(part.as_bytes()))
            else {
                return Err(not_found());
            };
            let node = dir.entries[at].node.clone();
            match node {
                Node::Directory { tree } => {
                    let tree = self.inner.tree(&tree).await?;
                    stack.push((part, tree));
                }
                Node::Symlink { ref target, .. } if follow || !remaining.is_empty() => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(
                            VfsError::new(ErrorKind::Loop, "lookup").with_path(path.as_str())
                        );
                    }
                    if target.starts_with('/') {
                        stack.truncate(1);
                    }
                    for part in target.split('/').rev() {
                        remaining.push_front(part.to_owned());
                    }
                }
                leaf => {
                    if !remaining.is_empty() {
                        return Err(VfsError::new(ErrorKind::NotADirectory, "lookup")
                            .with_path(path.as_str()));
                    }
                    let rel = stack
                        .iter()
                        .skip(1)
                        .map(|(n, _)| n.as_str())
                        .chain(std::iter::once(part.as_str()))
                        .collect::<Vec<_>>()
                        .join("/");
                    return Ok((rel, Found::Leaf(leaf)));
                }
            }
        }
        let rel = stack
            .iter()
            .skip(1)
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join("/");
        match stack.pop() {
            Some((_, tree)) => Ok((rel, Found::Dir(tree))),
            None => Err(not_found()),
        }
    }

    async fn metadata(&self, path: &VfsPath, follow: bool) -> Result<Metadata> {
        let (rel, found) = self.resolve(path, follow).await?;
        Ok(self.meta_of_found(&rel, &found))
    }

    fn meta_of_found(&self, rel: &str, found: &Found) -> Metadata {
        match found {
            Found::Dir(tree) => {
                let subdirs = tree
                    .entries
                    .iter()
                    .filter(|e| matches!(e.node, Node::Directory { .. }))
                    .count() as u64;
                meta_of(
                    FileKind::Directory,
                    &tree.attrs,
                    4096,
                    ino_of(rel),
                    2 + subdirs,
                    0,
                )
            }
            Found::Leaf(node) => leaf_meta(rel, node),
        }
    }
}

fn leaf_meta(rel: &str, node: &Node) -> Metadata {
    match node {
        Node::File {
            attrs,
            size,
            hardlink,
            ..
        } => meta_of(
            FileKind::File,
            attrs,
            *size,
            ino_of(hardlink.as_deref().unwrap_or(rel)),
            1,
            0,
        ),
        Node::Symlink { attrs, target } => meta_of(
            FileKind::Symlink,
            attrs,
            target.len() as u64,
            ino_of(rel),
            1,
            0,
        ),
        Node::Special {
            kind,
            attrs,
            rdev,
            hardlink,
        } => meta_of(
            *kind,
            attrs,
            0,
            ino_of(hardlink.as_deref().unwrap_or(rel)),
            1,
            *rdev,
        ),
        // Directories are resolved to their trees, never returned as leaves.
        Node::Directory { .. } => meta_of(
            FileKind::Directory,
            &Attrs::default(),
            4096,
            ino_of(rel),
            2,
            0,
        ),
    }
}

impl Inner {
    async fn tree(&self, id: &Digest) -> Result<Arc<Tree>> {
        if let Some(tree) = self.trees.lock().get(id) {
            return Ok(tree.clone());
        }
        let tree = Arc::new(self.repo.read_tree(id).await?);
        self.trees.lock().insert(*id, tree.clone());
        Ok(tree)
    }

    async fn chunk(&self, id: &Digest) -> Result<Bytes> {
        if let Some(data) = self.chunks.lock().map.get(id) {
            return Ok(data.clone());
        }
        let data = self.repo.read_blob(id).await?;
        let mut cache = self.chunks.lock();
        if data.len() <= self.cache_bytes && !cache.map.contains_key(id) {
            cache.bytes += data.len();
            cache.map.insert(*id, data.clone());
            cache.order.push_back(*id);
            while cache.bytes > self.cache_bytes {
                let Some(old) = cache.order.pop_front() else {
                    break;
                };
                if let Some(gone) = cache.map.remove(&old) {
                    cache.bytes -= gone.len();
                }
            }
        }
        Ok(data)
    }
}

/// An open file of a snapshot: its chunk list with each chunk's offset.
struct SnapshotFile {
    inner: Arc<Inner>,
    chunks: Vec<(u64, ChunkRef)>,
    meta: Metadata,
    path: String,
}

#[async_trait]
impl FileHandle for SnapshotFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let size = self.meta.size;
        if offset >= size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = offset.saturating_add(len as u64).min(size);
        // The last chunk starting at or before `offset`.
        let first = self
            .chunks
            .partition_point(|(start, _)| *start <= offset)
            .saturating_sub(1);
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (start, chunk) in &self.chunks[first..] {
            if *start >= end {
                break;
            }
            let data = self.inner.chunk(&chunk.id).await.map_err(|err| {
                let detail = format!("reading {}: {err}", self.path);
                VfsError::new(err.kind(), "read")
                    .with_path(self.path.clone())
                    .with_detail(detail)
            })?;
            let from = offset.saturating_sub(*start) as usize;
            let to = ((end - start) as usize).min(data.len());
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(Bytes::from(out))
    }

    async fn write_at(&self, _offset: u64, _data: Bytes) -> Result<usize> {
        Err(VfsError::new(ErrorKind::BadHandle, "write").with_path(self.path.clone()))
    }

    async fn set_len(&self, _len: u64) -> Result<()> {
        Err(VfsError::new(ErrorKind::BadHandle, "truncate").with_path(self.path.clone()))
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn stat(&self) -> Result<Metadata> {
        Ok(self.meta.clone())
    }
}

#[async_trait]
impl FileSystem for SnapshotFs {
    fn kind(&self) -> &str {
        SNAPSHOT_DRIVER_ID
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::posix().as_read_only()
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        if options.mutates() {
            return Err(erofs("open", path));
        }
        let (rel, found) = self.resolve(path, true).await?;
        let meta = self.meta_of_found(&rel, &found);
        match found {
            Found::Leaf(Node::File { chunks, .. }) => {
                let mut offset = 0u64;
                let chunks = chunks
                    .into_iter()
                    .map(|c| {
                        let at = offset;
                        offset += u64::from(c.len);
                        (at, c)
                    })
                    .collect();
                Ok(Box::new(SnapshotFile {
                    inner: self.inner.clone(),
                    chunks,
                    meta,
                    path: path.to_string(),
                }))
            }
            Found::Dir(_) => {
                Err(VfsError::new(ErrorKind::IsADirectory, "open").with_path(path.as_str()))
            }
            // Devices, fifos and sockets have no content a snapshot could serve.
            Found::Leaf(_) => Err(VfsError::new(ErrorKind::Unsupported, "open")
                .with_path(path.as_str())
                .with_detail("special files in a snapshot cannot be opened")),
        }
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.metadata(path, true).await
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.metadata(path, false).await
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        let (rel, found) = self.resolve(path, true).await?;
        let Found::Dir(tree) = found else {
            return Err(
                VfsError::new(ErrorKind::NotADirectory, "read_dir").with_path(path.as_str())
            );
        };
        Ok(tree
            .entries
            .iter()
            .map(|e| {
                let child = join_rel(&rel, &e.name);
                let ino = match &e.node {
                    Node::File { hardlink, .. } | Node::Special { hardlink, .. } => {
                        ino_of(hardlink.as_deref().unwrap_or(&child))
                    }
                    _ => ino_of(&child),
                };
                DirEntry {
                    name: e.name.clone(),
                    kind: e.node.kind(),
                    ino,
                }
            })
            .collect())
    }

    async fn create_dir(&self, path: &VfsPath, _mode: u32) -> Result<()> {
        Err(erofs("mkdir", path))
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        Err(erofs("unlink", path))
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        Err(erofs("rmdir", path))
    }

    async fn rename(&self, from: &VfsPath, _to: &VfsPath) -> Result<()> {
        Err(erofs("rename", from))
    }

    async fn symlink(&self, _target: &str, link: &VfsPath) -> Result<()> {
        Err(erofs("symlink", link))
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        match self.resolve(path, false).await? {
            (_, Found::Leaf(Node::Symlink { target, .. })) => Ok(target),
            _ => Err(VfsError::new(ErrorKind::InvalidInput, "readlink")
                .with_path(path.as_str())
                .with_detail("not a symlink")),
        }
    }

    async fn hard_link(&self, _existing: &VfsPath, new: &VfsPath) -> Result<()> {
        Err(erofs("link", new))
    }

    async fn set_permissions(&self, path: &VfsPath, _mode: u32) -> Result<()> {
        Err(erofs("chmod", path))
    }

    async fn set_owner(&self, path: &VfsPath, _uid: Option<u32>, _gid: Option<u32>) -> Result<()> {
        Err(erofs("chown", path))
    }

    async fn set_times(&self, path: &VfsPath, _atime: SetTime, _mtime: SetTime) -> Result<()> {
        Err(erofs("utimes", path))
    }

    async fn statfs(&self, _path: &VfsPath) -> Result<StatFs> {
        Ok(StatFs {
            block_size: 4096,
            blocks: 0,
            blocks_free: 0,
            blocks_available: 0,
            files: 0,
            files_free: 0,
            name_max: vfs_core::MAX_NAME_BYTES as u32,
        })
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        let attrs = self.xattrs(path).await?;
        attrs
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| Bytes::from(v))
            .ok_or_else(|| {
                VfsError::new(ErrorKind::NoAttribute, "getxattr").with_path(path.as_str())
            })
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        _name: &str,
        _value: Bytes,
        _mode: XattrMode,
    ) -> Result<()> {
        Err(erofs("setxattr", path))
    }

    async fn list_xattrs(&self, path: &VfsPath) -> Result<Vec<String>> {
        Ok(self
            .xattrs(path)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    async fn remove_xattr(&self, path: &VfsPath, _name: &str) -> Result<()> {
        Err(erofs("removexattr", path))
    }
}

impl SnapshotFs {
    /// Xattr calls follow symlinks, as the contract says.
    async fn xattrs(&self, path: &VfsPath) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(match self.resolve(path, true).await?.1 {
            Found::Dir(tree) => tree.attrs.xattrs.clone(),
            Found::Leaf(Node::File { attrs, .. })
            | Found::Leaf(Node::Special { attrs, .. })
            | Found::Leaf(Node::Symlink { attrs, .. }) => attrs.xattrs,
            Found::Leaf(Node::Directory { .. }) => Vec::new(),
        })
    }
}

/// Builds `snapshot` mounts from [`SnapshotDriverConfig`].
#[derive(Debug, Default)]
pub struct SnapshotDriverFactory;

#[async_trait]
impl DriverFactory for SnapshotDriverFactory {
    async fn build(
        &self,
        _registry: &DriverRegistry,
        config: serde_json::Value,
    ) -> Result<Arc<dyn FileSystem>> {
        let config: SnapshotDriverConfig = parse_config(SNAPSHOT_DRIVER_ID, config)?;
        let repo = Repository::open_local(std::path::Path::new(&config.repository)).await?;
        let id = repo.resolve(&config.snapshot).await?;
        let fs =
            SnapshotFs::with_cache(repo, id, config.cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES))
                .await?;
        Ok(Arc::new(fs))
    }
}

/// Registers the `snapshot` driver in `registry`.
///
/// ```
/// let registry = vfs_core::DriverRegistry::new();
/// vfs_snapshot::register_snapshot_driver(&registry).unwrap();
/// assert!(registry.ids().contains(&"snapshot".to_owned()));
/// ```
pub fn register_snapshot_driver(registry: &DriverRegistry) -> Result<()> {
    registry.register(SNAPSHOT_DRIVER_ID, Arc::new(SnapshotDriverFactory))
}
