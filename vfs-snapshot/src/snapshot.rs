//! Taking a snapshot: walk, chunk and store file content, encode directories bottom-up,
//! publish the snapshot record last.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastcdc::v2020::FastCDC;
use parking_lot::Mutex;
use vfs_core::{
    ErrorKind, FileKind, FileSystem, Metadata, OpenOptions, Result, Timestamp, VfsError, VfsPath,
};

use crate::digest::{Digest, SnapshotId};
use crate::fan_out::{for_each_job, try_for_each_job};
use crate::progress::{report, Phase, ProgressSender};
use crate::store::{compress, BlobKind, Repository, SnapshotInfo, FORMAT_VERSION};
use crate::tree::{Attrs, ChunkRef, Entry, Node, Tree};

/// Content-defined chunking bounds: 1 MiB average as the format asks, a quarter of it as
/// minimum (files smaller than that are one chunk) and four times it as maximum.
pub(crate) const CHUNK_MIN: u32 = 256 << 10;
pub(crate) const CHUNK_AVG: u32 = 1 << 20;
pub(crate) const CHUNK_MAX: u32 = 4 << 20;

/// How many bytes one `read_at` asks for.
const READ_SIZE: usize = 1 << 20;

/// Chunks at least this large are hashed and compressed on the blocking pool; smaller
/// ones inline, where a thread hop would cost more than the work.
const BLOCKING_THRESHOLD: usize = 64 << 10;

/// How many times a file that changes while it is read is read again.
const TORN_RETRIES: usize = 3;

/// Remembers, per path, the chunks of a file as it was last read, so an unchanged file is
/// not read again. A hit needs the same size, mtime, inode number and ctime; any change
/// to a file's content changes its ctime, so a hit is never stale short of a clock or
/// driver that lies.
///
/// Keep one per source filesystem and pass it to every snapshot of that filesystem. A
/// snapshot that completes forgets the files beneath its root it did not see (removed,
/// or no longer regular files), so the cache tracks the tree rather than everything the
/// tree ever held; files outside the root are left alone.
///
/// ```
/// use std::sync::Arc;
/// use vfs_snapshot::{SnapshotOptions, StatCache};
///
/// let cache = Arc::new(StatCache::default());
/// let options = SnapshotOptions { stat_cache: Some(cache.clone()), ..SnapshotOptions::default() };
/// assert!(cache.is_empty() && options.stat_cache.is_some());
/// ```
#[derive(Default)]
pub struct StatCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
    /// Counts the snapshots that used the cache; each entry keeps the last one that saw
    /// its file.
    generation: AtomicU64,
}

/// What the cache knows of an unchanged file: its chunks, and its xattrs if they were
/// read with the same ctime.
type CacheHit = (Vec<ChunkRef>, Option<Vec<(String, Vec<u8>)>>);

#[derive(Clone)]
struct CacheEntry {
    size: u64,
    mtime: Timestamp,
    ctime: Timestamp,
    ino: u64,
    chunks: Vec<ChunkRef>,
    /// The file's xattrs, when they were read with the same ctime as the rest (a change
    /// to an xattr changes the ctime), so an unchanged file is not even asked for them.
    xattrs: Option<Vec<(String, Vec<u8>)>>,
    /// The generation of the last snapshot that saw the file.
    seen: u64,
}

impl StatCache {
    /// How many files it remembers.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    /// The chunks, and the xattrs when known, remembered for a file whose size, mtime,
    /// ctime and inode still match.
    fn lookup(&self, path: &str, meta: &Metadata, generation: u64) -> Option<CacheHit> {
        let mut entries = self.entries.lock();
        let hit = entries.get_mut(path)?;
        let same = hit.size == meta.size
            && hit.mtime == meta.mtime
            && hit.ctime == meta.ctime
            && hit.ino == meta.ino;
        if !same {
            return None;
        }
        hit.seen = hit.seen.max(generation);
        Some((hit.chunks.clone(), hit.xattrs.clone()))
    }

    /// Starts a snapshot's use of the cache: the generation its lookups and inserts mark.
    fn begin(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Forgets the files beneath `root` that the snapshot of `generation` did not see. A
    /// later snapshot sharing the cache marks what it sees with a higher generation, so
    /// this never drops its entries; at worst a file is read again.
    fn forget_unseen(&self, root: &VfsPath, generation: u64) {
        let prefix = if root.is_root() {
            "/".to_owned()
        } else {
            format!("{}/", root.as_str())
        };
        self.entries
            .lock()
            .retain(|path, entry| entry.seen >= generation || !path.starts_with(&prefix));
    }

    fn insert(
        &self,
        path: &str,
        meta: &Metadata,
        chunks: &[ChunkRef],
        xattrs: Option<Vec<(String, Vec<u8>)>>,
        generation: u64,
    ) {
        self.entries.lock().insert(
            path.to_owned(),
            CacheEntry {
                size: meta.size,
                mtime: meta.mtime,
                ctime: meta.ctime,
                ino: meta.ino,
                chunks: chunks.to_vec(),
                xattrs,
                seen: generation,
            },
        );
    }
}

impl std::fmt::Debug for StatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatCache")
            .field("files", &self.len())
            .finish()
    }
}

/// How a snapshot is taken.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// Record every uid, gid and mtime as 0, so the id depends on names, modes, content
    /// and links only (reproducible ids across machines and checkouts).
    pub normalize: bool,
    /// Paths (within the captured filesystem) where inode numbers start a new namespace:
    /// the mount points of a [`vfs_core::MountTable`]. Two entries are hard links of each
    /// other only if they share an inode number beneath the same deepest root here.
    pub device_roots: Vec<VfsPath>,
    /// Reuse the chunks of files unchanged since the last snapshot that used this cache.
    pub stat_cache: Option<Arc<StatCache>>,
    /// How many files are read at once.
    pub concurrency: usize,
    /// Where to publish [`Progress`](crate::Progress) (see
    /// [`progress_channel`](crate::progress_channel)).
    pub progress: Option<ProgressSender>,
}

impl Default for SnapshotOptions {
    fn default() -> SnapshotOptions {
        SnapshotOptions {
            normalize: false,
            device_roots: Vec::new(),
            stat_cache: None,
            concurrency: 16,
            progress: None,
        }
    }
}

/// What a snapshot did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Regular files captured.
    pub files: u64,
    /// Directories captured, the root included.
    pub dirs: u64,
    /// Symlinks captured.
    pub symlinks: u64,
    /// Fifos, sockets and device nodes captured.
    pub specials: u64,
    /// The sum of the captured files' sizes.
    pub bytes_total: u64,
    /// File bytes actually read (less than the total when the stat cache hits).
    pub bytes_read: u64,
    /// Compressed bytes of the blobs this snapshot added to the store.
    pub bytes_new: u64,
    /// Chunks this snapshot added.
    pub chunks_new: u64,
    /// Chunks the store already had (or another file of this snapshot stored).
    pub chunks_reused: u64,
    /// Trees this snapshot added.
    pub trees_new: u64,
    /// Trees the store already had.
    pub trees_reused: u64,
    /// Files whose chunks came from the stat cache without reading them.
    pub files_cached: u64,
    /// Objects written to the store (packs, indexes, the snapshot record).
    pub objects_written: u64,
    /// Files that kept changing while they were read, through every retry; what was
    /// stored for them is the last read, which may mix old and new content.
    pub unstable: Vec<String>,
    /// Entries that disappeared between the listing and the read; left out.
    pub vanished: Vec<String>,
    /// Wall-clock time of the whole snapshot.
    pub duration: Duration,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_new: AtomicU64,
    pub(crate) chunks_new: AtomicU64,
    pub(crate) chunks_reused: AtomicU64,
    pub(crate) trees_new: AtomicU64,
    pub(crate) trees_reused: AtomicU64,
    pub(crate) files_cached: AtomicU64,
    pub(crate) objects_written: AtomicU64,
    /// Hash only, store nothing: used to compare a live tree with a snapshot.
    pub(crate) dry_run: bool,
}

impl Counters {
    /// Copies the counts into `stats`.
    pub(crate) fn fill(&self, stats: &mut SnapshotStats) {
        stats.bytes_read = self.bytes_read.load(Ordering::Relaxed);
        stats.bytes_new = self.bytes_new.load(Ordering::Relaxed);
        stats.chunks_new = self.chunks_new.load(Ordering::Relaxed);
        stats.chunks_reused = self.chunks_reused.load(Ordering::Relaxed);
        stats.trees_new = self.trees_new.load(Ordering::Relaxed);
        stats.trees_reused = self.trees_reused.load(Ordering::Relaxed);
        stats.files_cached = self.files_cached.load(Ordering::Relaxed);
        stats.objects_written = self.objects_written.load(Ordering::Relaxed);
    }
}

/// One entry found by the walk; indices are in canonical pre-order.
struct WalkNode {
    name: String,
    rel: String,
    path: VfsPath,
    meta: Metadata,
    attrs: Attrs,
    target: Option<String>,
    hardlink: Option<String>,
    children: Vec<usize>,
    chunks: Vec<ChunkRef>,
    tree: Option<Digest>,
    vanished: bool,
}

struct FileRead {
    chunks: Vec<ChunkRef>,
    xattrs: Vec<(String, Vec<u8>)>,
    meta: Metadata,
    unstable: bool,
}

fn attrs_of(meta: &Metadata, xattrs: Vec<(String, Vec<u8>)>, normalize: bool) -> Attrs {
    Attrs {
        mode: meta.mode & 0o7777,
        uid: if normalize { 0 } else { meta.uid },
        gid: if normalize { 0 } else { meta.gid },
        mtime: if normalize { 0 } else { meta.mtime.as_nanos() },
        xattrs,
    }
}

fn is_gone(err: &VfsError) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

async fn read_xattrs(
    fs: &dyn FileSystem,
    path: &VfsPath,
    kind: FileKind,
) -> Result<Vec<(String, Vec<u8>)>> {
    // Xattr calls follow symlinks, so a link's own attributes are out of reach.
    if kind == FileKind::Symlink {
        return Ok(Vec::new());
    }
    let names = match fs.list_xattrs(path).await {
        Ok(names) => names,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::Unsupported | ErrorKind::NotImplemented
            ) =>
        {
            return Ok(Vec::new())
        }
        Err(err) => return Err(err),
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match fs.get_xattr(path, &name).await {
            Ok(value) => out.push((name, value.to_vec())),
            // Removed between the listing and the read: it was not there at the end.
            Err(err) if err.kind() == ErrorKind::NoAttribute => {}
            Err(err) => return Err(err),
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// A regular file's xattrs, through its open handle where the driver can (no path lookup,
/// and about the very file read), else through its path.
async fn read_file_xattrs(
    fs: &dyn FileSystem,
    path: &VfsPath,
    handle: &dyn vfs_core::FileHandle,
) -> Result<Vec<(String, Vec<u8>)>> {
    match handle.xattrs().await {
        Ok(xattrs) => {
            let mut out: Vec<(String, Vec<u8>)> = xattrs
                .into_iter()
                .map(|(name, value)| (name, value.to_vec()))
                .collect();
            out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Ok(out)
        }
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::Unsupported | ErrorKind::NotImplemented
            ) =>
        {
            read_xattrs(fs, path, FileKind::File).await
        }
        Err(err) => Err(err),
    }
}

/// Hashes a chunk and, when the store lacks it, compresses and stores it.
pub(crate) async fn store_chunk(
    repo: &Repository,
    data: Vec<u8>,
    counters: &Counters,
) -> Result<ChunkRef> {
    let len = data.len() as u32;
    let id = if data.len() >= BLOCKING_THRESHOLD {
        let (id, data_back) = tokio::task::spawn_blocking(move || (Digest::of(&data), data))
            .await
            .map_err(|err| VfsError::new(ErrorKind::Io, "snapshot").with_source(err))?;
        store_new(repo, id, BlobKind::Chunk, data_back, counters).await?;
        id
    } else {
        let id = Digest::of(&data);
        store_new(repo, id, BlobKind::Chunk, data, counters).await?;
        id
    };
    Ok(ChunkRef { id, len })
}

pub(crate) async fn store_new(
    repo: &Repository,
    id: Digest,
    kind: BlobKind,
    data: Vec<u8>,
    counters: &Counters,
) -> Result<()> {
    let (new_counter, reused_counter) = match kind {
        BlobKind::Chunk => (&counters.chunks_new, &counters.chunks_reused),
        BlobKind::Tree => (&counters.trees_new, &counters.trees_reused),
    };
    if counters.dry_run {
        return Ok(());
    }
    if !repo.reserve_blob(id) {
        reused_counter.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let raw_length = data.len();
    let compressed = if raw_length >= BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(move || compress(&data))
            .await
            .map_err(|err| VfsError::new(ErrorKind::Io, "compress").with_source(err))
            .and_then(|r| r)
    } else {
        compress(&data)
    };
    let compressed = match compressed {
        Ok(c) => c,
        Err(err) => {
            repo.release_blob(&id);
            return Err(err);
        }
    };
    new_counter.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes_new
        .fetch_add(compressed.len() as u64, Ordering::Relaxed);
    repo.push_blob(id, kind, raw_length, compressed, &counters.objects_written)
        .await
}

/// How many bytes of a file are buffered at most: the chunks that start early enough in
/// this window (at least one maximum chunk before its end, or anywhere at the end of the
/// file) are cut, hashed and compressed in one go on the blocking pool, and the rest
/// carried over. Two maximum chunks keep the carried-over copy at most one window.
const WINDOW: usize = 2 * CHUNK_MAX as usize;

/// One chunk cut from a window: its place there, its id, and its compressed bytes when
/// it was small enough to compress speculatively in the same hop.
struct CutChunk {
    offset: usize,
    len: usize,
    id: Digest,
    compressed: Option<Result<Vec<u8>>>,
}

/// Cuts the chunks of `buf` that are final (FastCDC decides a cut from the bytes after
/// the chunk's start only, up to one maximum chunk), hashes them and compresses the small
/// ones. Returns the chunks and how many bytes of `buf` they cover.
fn cut_window(buf: &[u8], eof: bool, compress_small: bool) -> (Vec<CutChunk>, usize) {
    let mut out = Vec::new();
    let mut consumed = 0;
    for c in FastCDC::new(buf, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX) {
        if !eof && c.offset + CHUNK_MAX as usize > buf.len() {
            break;
        }
        let data = &buf[c.offset..c.offset + c.length];
        let compressed = (compress_small && c.length < BLOCKING_THRESHOLD).then(|| compress(data));
        out.push(CutChunk {
            offset: c.offset,
            len: c.length,
            id: Digest::of(data),
            compressed,
        });
        consumed = c.offset + c.length;
    }
    (out, consumed)
}

fn join_error(operation: &'static str, err: tokio::task::JoinError) -> VfsError {
    VfsError::new(ErrorKind::Io, operation).with_source(err)
}

/// One permit per core: hashing and compression jobs wait for one before they take a
/// blocking thread, so they never crowd out the task that reads the files (a driver may
/// read on the calling thread) and their buffers in flight stay bounded.
fn cpu_permits() -> Arc<tokio::sync::Semaphore> {
    static CPU: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    CPU.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(tokio::sync::Semaphore::new(cores))
    })
    .clone()
}

/// Runs CPU-bound `job` on the blocking pool once a core is free.
pub(crate) async fn on_cpu<T: Send + 'static>(
    operation: &'static str,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let permit = cpu_permits()
        .acquire_owned()
        .await
        .map_err(|err| VfsError::new(ErrorKind::Io, operation).with_source(err))?;
    tokio::task::spawn_blocking(move || {
        let out = job();
        drop(permit);
        out
    })
    .await
    .map_err(|err| join_error(operation, err))
}

/// Stores the chunks cut from one window, in order: the new large ones are compressed
/// concurrently on the blocking pool, each claimed first so no two writers compress it.
async fn store_window(
    repo: &Repository,
    buf: &Arc<Vec<u8>>,
    cut: Vec<CutChunk>,
    counters: &Counters,
) -> Result<Vec<ChunkRef>> {
    let mut refs = Vec::with_capacity(cut.len());
    let mut jobs = Vec::new();
    for c in cut {
        refs.push(ChunkRef {
            id: c.id,
            len: c.len as u32,
        });
        if counters.dry_run {
            continue;
        }
        if !repo.reserve_blob(c.id) {
            counters.chunks_reused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match c.compressed {
            Some(compressed) => jobs.push((c.id, c.len, None, Some(compressed))),
            None => {
                let buf = buf.clone();
                let (offset, len) = (c.offset, c.len);
                let job = tokio::spawn(on_cpu("compress", move || {
                    compress(&buf[offset..offset + len])
                }));
                jobs.push((c.id, c.len, Some(job), None));
            }
        }
    }
    let mut first_error = None;
    for (id, len, job, ready) in jobs {
        let compressed = match (job, ready) {
            (Some(job), _) => job
                .await
                .map_err(|e| join_error("compress", e))
                .and_then(|r| r)
                .and_then(|r| r),
            (None, Some(ready)) => ready,
            (None, None) => unreachable!("a job or its result"),
        };
        let result = match (compressed, first_error.is_some()) {
            (Ok(compressed), false) => {
                counters.chunks_new.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes_new
                    .fetch_add(compressed.len() as u64, Ordering::Relaxed);
                repo.push_blob(
                    id,
                    BlobKind::Chunk,
                    len,
                    compressed,
                    &counters.objects_written,
                )
                .await
            }
            (Ok(_), true) => {
                repo.release_blob(&id);
                Ok(())
            }
            (Err(err), _) => {
                repo.release_blob(&id);
                Err(err)
            }
        };
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(refs),
    }
}

/// Reads a file in one pass, cutting it into content-defined chunks as it goes, so memory
/// stays at one window (two maximum chunks) plus one read whatever the file's size;
/// cutting, hashing and compressing run on the blocking pool, so files read at once use
/// every core. The file's size, mtime and ctime are compared before and after the pass;
/// a change means the content may be torn, and the file is read again.
async fn read_file(
    repo: &Repository,
    fs: &dyn FileSystem,
    path: &VfsPath,
    mut before: Metadata,
    counters: &Counters,
) -> Result<FileRead> {
    let mut attempt = 0;
    let compress_small = !counters.dry_run;
    loop {
        attempt += 1;
        let handle = fs.open(path, OpenOptions::read_only()).await?;
        // Before the content: a change to them changes the ctime, which the stat after
        // the pass compares.
        let xattrs = read_file_xattrs(fs, path, handle.as_ref()).await?;
        let mut chunks = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut offset = 0u64;
        let mut eof = false;
        loop {
            while !eof && buf.len() < WINDOW {
                let want = READ_SIZE.min(WINDOW - buf.len());
                let data = handle.read_at(offset, want).await?;
                if data.is_empty() {
                    eof = true;
                } else {
                    offset += data.len() as u64;
                    let short = data.len() < want;
                    if buf.is_empty() && short {
                        // Most files arrive in one read: take the driver's buffer as it is
                        // (no copy when nothing else holds it).
                        buf = Vec::from(data);
                    } else {
                        if buf.capacity() < WINDOW {
                            // One allocation for the whole window: growing by doubling
                            // would copy it and fault fresh pages in at every step.
                            let expected = usize::try_from(before.size).unwrap_or(WINDOW);
                            buf.reserve_exact(
                                WINDOW.min(expected.max(buf.len() + data.len())) - buf.len(),
                            );
                        }
                        buf.extend_from_slice(&data);
                    }
                    // A short read at the size the walk saw is the end: it saves asking
                    // again. Growth since is caught by the stat after the pass.
                    if short && offset >= before.size {
                        eof = true;
                    }
                }
            }
            if buf.is_empty() {
                break;
            }
            let (cut, consumed, window) = if eof && buf.len() < BLOCKING_THRESHOLD {
                // A small file: a thread hop would cost more than the work.
                let (cut, consumed) = cut_window(&buf, eof, compress_small);
                (cut, consumed, buf)
            } else {
                on_cpu("snapshot", move || {
                    let (cut, consumed) = cut_window(&buf, eof, compress_small);
                    (cut, consumed, buf)
                })
                .await?
            };
            let window = Arc::new(window);
            chunks.extend(store_window(repo, &window, cut, counters).await?);
            buf = Arc::try_unwrap(window).unwrap_or_else(|shared| shared.as_ref().clone());
            buf.drain(..consumed);
        }
        let after = handle.stat().await?;
        let _ = handle.close().await;
        counters.bytes_read.fetch_add(offset, Ordering::Relaxed);
        let stable = after.size == before.size
            && after.mtime == before.mtime
            && after.ctime == before.ctime
            && offset == after.size;
        if stable || attempt > TORN_RETRIES {
            return Ok(FileRead {
                chunks,
                xattrs,
                meta: after,
                unstable: !stable,
            });
        }
        before = after;
    }
}

impl Repository {
    /// Captures the tree at `path` of `fs` (any driver, a whole mount table included) and
    /// returns its id and what it cost.
    ///
    /// Publication order makes it crash-safe: chunks and trees go into packs, each pack
    /// before its index, and the snapshot record last, after every blob it needs is
    /// indexed. An error anywhere leaves no snapshot record; a retry reuses the blobs
    /// already indexed.
    ///
    /// ```
    /// # async fn demo(fs: std::sync::Arc<dyn vfs_core::FileSystem>) -> vfs_core::Result<()> {
    /// use vfs_snapshot::{Repository, SnapshotOptions};
    ///
    /// let repo = Repository::open_local(std::path::Path::new("/tmp/store")).await?;
    /// let root = vfs_core::VfsPath::root();
    /// let (id, stats) = repo.snapshot(fs.as_ref(), &root, &SnapshotOptions::default()).await?;
    /// println!("{id}: {} files, {} new chunks", stats.files, stats.chunks_new);
    /// # Ok(()) }
    /// ```
    pub async fn snapshot(
        &self,
        fs: &dyn FileSystem,
        path: &VfsPath,
        options: &SnapshotOptions,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        // The writer lock keeps gc from removing blobs this snapshot dedups against.
        let lock = self.lock_writer().await?;
        let result = self.capture(fs, path, options, None).await;
        lock.release().await;
        result
    }

    /// The snapshot walk. With `live`, nothing is stored: every tree built goes into
    /// `live` by digest instead, and chunks are only hashed, so a live tree can be
    /// compared with a stored one by the same digests.
    pub(crate) async fn capture(
        &self,
        fs: &dyn FileSystem,
        path: &VfsPath,
        options: &SnapshotOptions,
        live: Option<&Mutex<HashMap<Digest, Tree>>>,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        let started = Instant::now();
        let counters = Counters {
            dry_run: live.is_some(),
            ..Counters::default()
        };
        let mut stats = SnapshotStats::default();
        let root = path.without_trailing_slash();

        let mut nodes = self.walk(fs, &root, options, &mut stats).await?;

        // File content: first links only (later links share the inode, so the content).
        let files: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].meta.kind == FileKind::File && nodes[i].hardlink.is_none())
            .collect();
        let progress = options.progress.as_ref();
        report(progress, |p| {
            p.phase = Phase::Content;
            p.files_total = files.len() as u64;
            p.bytes_total = files.iter().map(|&i| nodes[i].meta.size).sum();
        });
        let generation = options.stat_cache.as_ref().map_or(0, |cache| cache.begin());
        let job = |n: usize| {
            let i = files[n];
            let node = &nodes[i];
            let counters = &counters;
            let cache = options.stat_cache.as_ref();
            async move {
                let (path, meta) = (&node.path, node.meta.clone());
                if let Some(cache) = cache {
                    // Without remembered xattrs the file is read again: its handle gives
                    // them as cheaply as the path would.
                    if let Some((chunks, Some(xattrs))) =
                        cache.lookup(path.as_str(), &meta, generation)
                    {
                        // A dry run needs only the digests, stored or not.
                        if counters.dry_run || chunks.iter().all(|c| self.locate(&c.id).is_some()) {
                            counters.files_cached.fetch_add(1, Ordering::Relaxed);
                            counters
                                .chunks_reused
                                .fetch_add(chunks.len() as u64, Ordering::Relaxed);
                            return Ok((
                                i,
                                Some(FileRead {
                                    chunks,
                                    xattrs,
                                    meta,
                                    unstable: false,
                                }),
                            ));
                        }
                    }
                }
                match read_file(self, fs, path, meta, counters).await {
                    Ok(read) => {
                        if let (Some(cache), false) = (cache, read.unstable) {
                            cache.insert(
                                path.as_str(),
                                &read.meta,
                                &read.chunks,
                                Some(read.xattrs.clone()),
                                generation,
                            );
                        }
                        Ok((i, Some(read)))
                    }
                    Err(err) if is_gone(&err) => Ok((i, None)),
                    Err(err) => Err(err),
                }
            }
        };
        let mut reads: Vec<(usize, Option<FileRead>)> = Vec::with_capacity(files.len());
        // A failure fails the snapshot: reading the rest would only cost time.
        try_for_each_job(files.len(), options.concurrency, job, |(i, read)| {
            let size = read.as_ref().map(|r: &FileRead| r.meta.size).unwrap_or(0);
            report(progress, |p| {
                p.files_done += 1;
                p.bytes_done += size;
            });
            reads.push((i, read));
        })
        .await?;
        if let Some(cache) = &options.stat_cache {
            cache.forget_unseen(&root, generation);
        }
        for (i, read) in reads {
            let node = &mut nodes[i];
            match read {
                Some(read) => {
                    if read.unstable {
                        stats.unstable.push(node.path.to_string());
                    }
                    node.attrs = attrs_of(&read.meta, read.xattrs, options.normalize);
                    node.meta = read.meta;
                    node.chunks = read.chunks;
                }
                None => {
                    node.vanished = true;
                    stats.vanished.push(node.path.to_string());
                }
            }
        }
        // Later links take their first link's content and attributes (one inode).
        let by_rel: HashMap<String, usize> = (0..nodes.len())
            .filter(|&i| nodes[i].meta.kind != FileKind::Directory)
            .map(|i| (nodes[i].rel.clone(), i))
            .collect();
        for i in 0..nodes.len() {
            if let Some(first) = nodes[i]
                .hardlink
                .as_ref()
                .and_then(|rel| by_rel.get(rel))
                .copied()
            {
                if nodes[first].vanished {
                    // The first link went away: this one becomes a plain copy-less entry
                    // only if it can be read; simplest honest answer is to drop it too.
                    nodes[i].vanished = true;
                    stats.vanished.push(nodes[i].path.to_string());
                    continue;
                }
                nodes[i].chunks = nodes[first].chunks.clone();
                nodes[i].attrs = nodes[first].attrs.clone();
                nodes[i].meta = nodes[first].meta.clone();
            }
        }

        report(progress, |p| p.phase = Phase::Finishing);
        // Directories bottom-up: pre-order indices reversed put children before parents.
        let mut referenced: Vec<Digest> = Vec::new();
        for i in (0..nodes.len()).rev() {
            if nodes[i].meta.kind != FileKind::Directory {
                continue;
            }
            let mut entries = Vec::with_capacity(nodes[i].children.len());
            for &c in &nodes[i].children {
                let child = &nodes[c];
                if child.vanished {
                    continue;
                }
                let node = match child.meta.kind {
                    FileKind::File => {
                        referenced.extend(child.chunks.iter().map(|c| c.id));
                        Node::File {
                            attrs: child.attrs.clone(),
                            size: child.chunks.iter().map(|c| u64::from(c.len)).sum(),
                            chunks: child.chunks.clone(),
                            hardlink: child.hardlink.clone(),
                        }
                    }
                    FileKind::Directory => match child.tree {
                        Some(tree) => Node::Directory { tree },
                        None => continue,
                    },
                    // A link is its target: the contract can neither set a link's own
                    // owner nor its times (chown and utimes follow links), so recording
                    // them would make a restored tree snapshot to a different id.
                    FileKind::Symlink => Node::Symlink {
                        attrs: Attrs {
                            mode: 0o777,
                            ..Attrs::default()
                        },
                        target: child.target.clone().unwrap_or_default(),
                    },
                    kind => Node::Special {
                        kind,
                        attrs: child.attrs.clone(),
                        rdev: child.meta.rdev,
                        hardlink: child.hardlink.clone(),
                    },
                };
                entries.push(Entry {
                    name: child.name.clone(),
                    node,
                });
            }
            let tree = Tree {
                attrs: nodes[i].attrs.clone(),
                entries,
            };
            let bytes = tree.encode();
            let id = Digest::of(&bytes);
            match live {
                Some(live) => {
                    live.lock().insert(id, tree);
                }
                None => store_new(self, id, BlobKind::Tree, bytes, &counters).await?,
            }
            referenced.push(id);
            nodes[i].tree = Some(id);
        }
        let id = nodes
            .first()
            .and_then(|root| root.tree)
            .ok_or_else(|| VfsError::new(ErrorKind::Io, "snapshot").with_path(root.as_str()))?;

        if live.is_some() {
            counters.fill(&mut stats);
            stats.duration = started.elapsed();
            report(progress, |p| p.phase = Phase::Done);
            return Ok((id, stats));
        }
        // Every blob the record will reach must be indexed before the record exists.
        self.wait_until_stored(&referenced, "snapshot", &counters.objects_written)
            .await
            .map_err(|err| err.with_path(root.as_str()))?;

        for node in nodes.iter().filter(|n| !n.vanished) {
            match node.meta.kind {
                FileKind::File => {
                    stats.files += 1;
                    stats.bytes_total += node.chunks.iter().map(|c| u64::from(c.len)).sum::<u64>();
                }
                FileKind::Directory => stats.dirs += 1,
                FileKind::Symlink => stats.symlinks += 1,
                _ => stats.specials += 1,
            }
        }
        let info = SnapshotInfo {
            version: FORMAT_VERSION,
            id,
            time: Timestamp::now().as_nanos(),
            source: root.to_string(),
            files: stats.files,
            dirs: stats.dirs,
            bytes: stats.bytes_total,
        };
        if self.publish_snapshot(&info).await? {
            counters.objects_written.fetch_add(1, Ordering::Relaxed);
        }

        counters.fill(&mut stats);
        stats.duration = started.elapsed();
        report(progress, |p| p.phase = Phase::Done);
        Ok((id, stats))
    }

    /// Lists the tree depth-first with names sorted by bytes (the canonical order),
    /// without recursion so deep trees cannot overflow the stack. Hard links are matched
    /// here, so "first link" means first in canonical order.
    ///
    /// Two passes: the calls (listing, lstat, xattrs, link targets) go level by level,
    /// each level's at once on every core, since a driver whose calls block its thread
    /// would otherwise cost one round trip per entry in a row; then the nodes are put in
    /// canonical order from what was learned.
    async fn walk(
        &self,
        fs: &dyn FileSystem,
        root: &VfsPath,
        options: &SnapshotOptions,
        stats: &mut SnapshotStats,
    ) -> Result<Vec<WalkNode>> {
        let root_meta = fs.lstat(root).await?;
        if !root_meta.is_dir() {
            return Err(VfsError::new(ErrorKind::NotADirectory, "snapshot")
                .with_path(root.as_str())
                .with_detail("a snapshot captures a directory"));
        }
        let root_probe = probe(fs, root, root_meta).await?;
        let mut listings = self.list_levels(fs, root, options).await?;

        let mut roots: Vec<&VfsPath> = options.device_roots.iter().collect();
        // Deepest first, so the first match is the deepest root holding a path.
        roots.sort_by_key(|r| std::cmp::Reverse(r.depth()));
        let scope_of = |path: &VfsPath| -> usize {
            roots
                .iter()
                .position(|r| path.starts_with(r))
                .map(|p| p + 1)
                .unwrap_or(0)
        };
        let mut first_links: HashMap<(usize, u64), String> = HashMap::new();
        let mut nodes: Vec<WalkNode> = Vec::new();
        // (path, name, rel, parent, what the first pass learned)
        let mut stack: Vec<(VfsPath, String, String, Option<usize>, Probe)> =
            vec![(root.clone(), String::new(), String::new(), None, root_probe)];
        while let Some((path, name, rel, parent, probe)) = stack.pop() {
            let Probe::Found {
                meta,
                xattrs,
                target,
            } = probe
            else {
                stats.vanished.push(path.to_string());
                continue;
            };
            let attrs = attrs_of(&meta, xattrs, options.normalize);
            let mut hardlink = None;
            if !matches!(meta.kind, FileKind::Directory | FileKind::Symlink) && meta.nlink > 1 {
                let key = (scope_of(&path), meta.ino);
                match first_links.get(&key) {
                    Some(first) => hardlink = Some(first.clone()),
                    None => {
                        first_links.insert(key, rel.clone());
                    }
                }
            }
            let index = nodes.len();
            let is_dir = meta.is_dir();
            if let Some(parent) = parent {
                nodes[parent].children.push(index);
            }
            if is_dir {
                let mut entries = listings.remove(&path).unwrap_or_default();
                entries.sort_by(|a, b| b.0.as_bytes().cmp(a.0.as_bytes()));
                for (child_name, child, child_probe) in entries {
                    let child_rel = if rel.is_empty() {
                        child_name.clone()
                    } else {
                        format!("{rel}/{child_name}")
                    };
                    stack.push((child, child_name, child_rel, Some(index), child_probe));
                }
            }
            nodes.push(WalkNode {
                name,
                rel,
                path,
                meta,
                attrs,
                target,
                hardlink,
                children: Vec::new(),
                chunks: Vec::new(),
                tree: None,
                vanished: false,
            });
        }
        Ok(nodes)
    }

    /// The first pass of [`Repository::walk`]: every directory's entries with what a
    /// probe learned of each, by directory path. A directory that went away after its
    /// parent was listed counts as empty; the root must be listable.
    async fn list_levels(
        &self,
        fs: &dyn FileSystem,
        root: &VfsPath,
        options: &SnapshotOptions,
    ) -> Result<HashMap<VfsPath, Vec<Listed>>> {
        let mut listings: HashMap<VfsPath, Vec<Listed>> = HashMap::new();
        let mut level: Vec<VfsPath> = vec![root.clone()];
        while !level.is_empty() {
            // Per directory of the level (by index): its entries with their metadata.
            let mut listed: Vec<(usize, Result<DirListing>)> = Vec::with_capacity(level.len());
            let list = |i: usize| {
                let dir = &level[i];
                async move { (i, fs.read_dir_plus(dir).await) }
            };
            let fatal = |i: usize, err: &VfsError| !(is_gone(err) && level[i] != *root);
            for_each_job(level.len(), options.concurrency, list, |(i, result)| {
                let stop = matches!(&result, Err(err) if fatal(i, err));
                listed.push((i, result));
                if stop {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .await;
            let mut children: Vec<(usize, VfsPath, String, Metadata)> = Vec::new();
            for (i, result) in listed {
                match result {
                    Ok(entries) => {
                        for (name, meta) in entries {
                            children.push((i, level[i].join(&name)?, name, meta));
                        }
                    }
                    Err(err) if !fatal(i, &err) => {}
                    Err(err) => return Err(err),
                }
            }
            let mut probes: Vec<Option<Probe>> = Vec::new();
            probes.resize_with(children.len(), || None);
            let look = |k: usize| {
                let (_, path, _, meta) = &children[k];
                async move { probe(fs, path, meta.clone()).await.map(|found| (k, found)) }
            };
            try_for_each_job(children.len(), options.concurrency, look, |(k, found)| {
                probes[k] = Some(found);
            })
            .await?;
            let mut next = Vec::new();
            for dir in &level {
                listings.entry(dir.clone()).or_default();
            }
            for ((i, path, name, _), probe) in children.into_iter().zip(probes) {
                let Some(probe) = probe else {
                    unreachable!("without an error, for_each_job runs every job once")
                };
                if matches!(&probe, Probe::Found { meta, .. } if meta.is_dir()) {
                    next.push(path.clone());
                }
                if let Some(entries) = listings.get_mut(&level[i]) {
                    entries.push((name, path, probe));
                }
            }
            level = next;
        }
        Ok(listings)
    }
}

/// A directory's entries as `read_dir_plus` gives them: names with their metadata.
type DirListing = Vec<(String, Metadata)>;

/// One directory entry as the walk's first pass found it: name, path, and its probe.
type Listed = (String, VfsPath, Probe);

/// What the walk learned of one entry: its metadata, xattrs and link target, or that it
/// went away between its parent's listing and the calls about it.
enum Probe {
    Found {
        meta: Metadata,
        xattrs: Vec<(String, Vec<u8>)>,
        target: Option<String>,
    },
    Vanished,
}

/// The calls the walk makes about one entry beyond its `lstat`: xattrs (but a regular
/// file's) and a symlink's target.
async fn probe(fs: &dyn FileSystem, path: &VfsPath, meta: Metadata) -> Result<Probe> {
    let xattrs = match meta.kind {
        // A regular file's come with its content (see `read_file`), or from the stat cache.
        FileKind::File => Vec::new(),
        kind => match read_xattrs(fs, path, kind).await {
            Ok(xattrs) => xattrs,
            Err(err) if is_gone(&err) => return Ok(Probe::Vanished),
            Err(err) => return Err(err),
        },
    };
    let target = match meta.kind {
        FileKind::Symlink => match fs.read_link(path).await {
            Ok(target) => Some(target),
            Err(err) if is_gone(&err) || err.kind() == ErrorKind::InvalidInput => {
                return Ok(Probe::Vanished)
            }
            Err(err) => return Err(err),
        },
        _ => None,
    };
    Ok(Probe::Found {
        meta,
        xattrs,
        target,
    })
}
