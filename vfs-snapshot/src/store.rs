//! The repository: packs of compressed blobs, their indexes, snapshot records and tags in
//! any `object_store::ObjectStore`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use vfs_core::{ErrorKind, Result, VfsError};

use crate::digest::{Digest, SnapshotId};
use crate::tree::Tree;

/// The repository format version this code writes and reads (FORMAT.md).
pub const FORMAT_VERSION: u32 = 1;

/// A pack is uploaded once its compressed blobs reach this many bytes.
pub(crate) const PACK_TARGET: usize = 16 << 20;

/// zstd level: 3 is zstd's default, fast enough to keep up with reading.
const ZSTD_LEVEL: i32 = 3;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BlobKind {
    /// A piece of file content.
    Chunk,
    /// A directory.
    Tree,
}

/// Where a blob lives: its pack and its byte range there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The digest (name) of the pack holding it.
    pub pack: Digest,
    /// Offset of its compressed bytes in the pack.
    pub offset: u64,
    /// Length of its compressed bytes.
    pub length: u32,
    /// Length once decompressed.
    pub raw_length: u32,
    /// Chunk or tree.
    pub kind: BlobKind,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IndexFile {
    version: u32,
    pack: Digest,
    blobs: Vec<IndexBlob>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IndexBlob {
    id: Digest,
    kind: BlobKind,
    offset: u64,
    length: u32,
    raw_length: u32,
}

/// A pack's name: the SHA-256 of its blob table (per blob: id, kind, offset, length, raw
/// length), not of its bytes. Hashing the bytes again cost a third of a snapshot's
/// hashing; the table names the content as surely, since each blob's id is the digest of
/// what it decompresses to, so two packs with one name hold the same blobs at the same
/// places and a put-if-absent that finds the name taken has nothing left to write.
fn pack_digest(blobs: &[IndexBlob]) -> Digest {
    let mut table = Vec::with_capacity(PACK_TABLE_MAGIC.len() + blobs.len() * 49);
    table.extend_from_slice(PACK_TABLE_MAGIC);
    for blob in blobs {
        table.extend_from_slice(&blob.id.0);
        table.push(match blob.kind {
            BlobKind::Chunk => 1,
            BlobKind::Tree => 2,
        });
        table.extend_from_slice(&blob.offset.to_le_bytes());
        table.extend_from_slice(&blob.length.to_le_bytes());
        table.extend_from_slice(&blob.raw_length.to_le_bytes());
    }
    Digest::of(&table)
}

/// Starts the bytes a pack's name is the digest of (see FORMAT.md).
const PACK_TABLE_MAGIC: &[u8] = b"VFSP\x01";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TagFile {
    version: u32,
    id: SnapshotId,
}

/// What the store says about one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotInfo {
    /// Format version of the record.
    pub version: u32,
    /// The snapshot id (its root tree digest).
    pub id: SnapshotId,
    /// When it was first taken, nanoseconds since the epoch.
    pub time: i64,
    /// The path that was captured.
    pub source: String,
    /// Regular files in it.
    pub files: u64,
    /// Directories in it, the root included.
    pub dirs: u64,
    /// The sum of its files' sizes.
    pub bytes: u64,
}

/// Blobs waiting in the pack being filled.
#[derive(Default)]
struct OpenPack {
    data: Vec<u8>,
    blobs: Vec<IndexBlob>,
}

/// Pack buffers kept for reuse while a snapshot writes. A fresh 16 MiB buffer is mapped
/// anew and every page of it faults in as it fills, which cost a snapshot a tenth of its
/// CPU time; a reused one is already resident. Released when a writer has everything
/// stored, so an idle repository holds none.
#[derive(Default)]
struct SparePacks {
    buffers: Mutex<Vec<Vec<u8>>>,
}

/// At most this many spare buffers are kept (two packs: one filling, one uploading).
const SPARE_PACKS: usize = 2;

impl SparePacks {
    /// A spare buffer, empty, or a new one without capacity.
    fn take(&self) -> Vec<u8> {
        self.buffers.lock().pop().unwrap_or_default()
    }

    /// Frees the spare buffers.
    fn release(&self) {
        self.buffers.lock().clear();
    }

    /// `data` as `Bytes` that give the buffer back here once the last clone is dropped.
    fn lend(self: &Arc<Self>, data: Vec<u8>) -> Bytes {
        Bytes::from_owner(LentPack {
            data,
            home: Arc::downgrade(self),
        })
    }
}

struct LentPack {
    data: Vec<u8>,
    home: std::sync::Weak<SparePacks>,
}

impl AsRef<[u8]> for LentPack {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for LentPack {
    fn drop(&mut self) {
        let Some(home) = self.home.upgrade() else {
            return;
        };
        let mut buffers = home.buffers.lock();
        if buffers.len() < SPARE_PACKS {
            let mut data = std::mem::take(&mut self.data);
            data.clear();
            buffers.push(data);
        }
    }
}

/// How long `Repository::wait_until_stored` waits for another writer's pending blobs
/// without any of them progressing.
const PENDING_STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A content-addressed store of snapshots over any object store.
///
/// Cheap to share (`Arc<Repository>`); several snapshots may run at once, in this process
/// or in others, over one store: every object is named by the digest of its bytes and
/// published with put-if-absent, so writers never overwrite each other.
///
/// ```
/// # async fn demo() -> vfs_core::Result<()> {
/// let dir = std::env::temp_dir().join("vfs-snapshot-doc");
/// let repo = vfs_snapshot::Repository::open_local(&dir).await?;
/// println!("{} snapshots", repo.list_snapshots().await?.len());
/// # Ok(()) }
/// ```
pub struct Repository {
    store: Arc<dyn ObjectStore>,
    index: RwLock<HashMap<Digest, BlobLocation>>,
    /// Blobs added to a pack not yet published: known, so not stored twice.
    pending: Mutex<HashSet<Digest>>,
    /// Woken whenever blobs stop being pending, so a writer that deduplicated against
    /// another writer's blob in flight can wait for it to land.
    settled: tokio::sync::Notify,
    open_pack: Mutex<OpenPack>,
    /// Buffers of uploaded packs, given back once the store let go of them.
    spare_packs: Arc<SparePacks>,
    /// Every index object read or written, by key: its pack and blob locations, so an
    /// index that `gc` removed can be forgotten on the next `load_indexes`.
    loaded: Mutex<HashMap<String, Vec<(Digest, BlobLocation)>>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store.to_string())
            .field("blobs", &self.index.read().len())
            .finish()
    }
}

pub(crate) fn store_error(
    operation: &'static str,
    key: &str,
    err: object_store::Error,
) -> VfsError {
    let kind = match err {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        _ => ErrorKind::Io,
    };
    let error = VfsError::new(kind, operation).with_path(key);
    if kind == ErrorKind::Io {
        error.with_source(err)
    } else {
        // The kind and the key say it all; the store's own words name where it keeps the
        // object (a local store's host path), which is not the caller's business.
        error
    }
}

fn corrupt(operation: &'static str, key: &str, why: impl Into<String>) -> VfsError {
    VfsError::new(ErrorKind::Io, operation)
        .with_path(key)
        .with_detail(why)
}

pub(crate) fn pack_key(pack: &Digest) -> String {
    let hex = pack.to_hex();
    format!("packs/{}/{hex}", &hex[..2])
}

pub(crate) fn snapshot_key(id: &SnapshotId) -> String {
    format!("snapshots/{id}")
}

fn tag_key(name: &str) -> String {
    format!("refs/{name}")
}

/// Tag names: 1–128 of `[A-Za-z0-9._-]`, not starting with `.`, so a tag is always one safe
/// object name in every store.
fn check_tag(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VfsError::new(ErrorKind::InvalidInput, "tag")
            .with_path(name)
            .with_detail("a tag is 1-128 of A-Z a-z 0-9 . _ -, not starting with '.'"))
    }
}

thread_local! {
    /// One zstd context per thread, reused: creating one costs more than compressing a
    /// small blob. Reuse does not change the output (same level, one frame per call).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

pub(crate) fn compress(data: &[u8]) -> Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match cell.as_mut() {
            Some(c) => c,
            None => cell.insert(
                zstd::bulk::Compressor::new(ZSTD_LEVEL)
                    .map_err(|err| VfsError::from_io("compress", err))?,
            ),
        };
        compressor
            .compress(data)
            .map_err(|err| VfsError::from_io("compress", err))
    })
}

/// Decompresses one blob of `capacity` bytes at most, with this thread's context.
pub(crate) fn decompress(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(data, capacity)
    })
}

/// Reads a located blob from its pack, decompresses it and checks its digest.
async fn fetch_located(
    store: &dyn ObjectStore,
    id: &Digest,
    location: BlobLocation,
) -> std::result::Result<Bytes, (bool, VfsError)> {
    let key = pack_key(&location.pack);
    let range = location.offset..location.offset + u64::from(location.length);
    let path = StorePath::from(key.as_str());
    let raw = match store.get_range(&path, range).await {
        Ok(raw) => raw,
        Err(err) => {
            let missing = matches!(err, object_store::Error::NotFound { .. });
            let err = VfsError::new(ErrorKind::Io, "read blob")
                .with_path(format!("blob {id} in {key}"))
                .with_detail(if missing {
                    "the pack is missing"
                } else {
                    "the store failed"
                })
                .with_source(err);
            return Err((missing, err));
        }
    };
    let name = format!("blob {id} in {key}");
    let data = decompress(&raw, location.raw_length as usize).map_err(|err| {
        (
            false,
            corrupt("read blob", &name, "does not decompress").with_source(err),
        )
    })?;
    if Digest::of(&data) != *id {
        return Err((
            false,
            corrupt("read blob", &name, "content does not match its digest"),
        ));
    }
    Ok(Bytes::from(data))
}

impl Repository {
    /// Opens (creating if empty) a repository in `store`, loading every pack index.
    pub async fn open(store: Arc<dyn ObjectStore>) -> Result<Arc<Repository>> {
        let repo = Repository {
            store,
            index: RwLock::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            settled: tokio::sync::Notify::new(),
            open_pack: Mutex::new(OpenPack::default()),
            spare_packs: Arc::default(),
            loaded: Mutex::new(HashMap::new()),
        };
        repo.check_config().await?;
        repo.load_indexes().await?;
        Ok(Arc::new(repo))
    }

    /// Opens (creating) a repository in a local directory, the embedded default.
    pub async fn open_local(dir: &std::path::Path) -> Result<Arc<Repository>> {
        std::fs::create_dir_all(dir).map_err(|err| {
            VfsError::from_io("open repository", err).with_path(dir.display().to_string())
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|err| store_error("open repository", &dir.display().to_string(), err))?;
        Repository::open(Arc::new(store)).await
    }

    /// The object store underneath.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    async fn check_config(&self) -> Result<()> {
        let key = "config";
        let config = ConfigFile {
            format: "vfs-snapshot".into(),
            version: FORMAT_VERSION,
        };
        let bytes = serde_json::to_vec(&config)
            .map_err(|err| VfsError::new(ErrorKind::Io, "open repository").with_source(err))?;
        match self.put_if_absent(key, bytes.into()).await {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                let found = self.get(key).await?;
                let found: ConfigFile = serde_json::from_slice(&found).map_err(|err| {
                    corrupt("open repository", key, "config is not valid JSON").with_source(err)
                })?;
                if found.format != "vfs-snapshot" || found.version != FORMAT_VERSION {
                    return Err(VfsError::new(ErrorKind::InvalidInput, "open repository")
                        .with_path(key)
                        .with_detail(format!(
                            "store holds format {} version {}; this build reads vfs-snapshot version {FORMAT_VERSION}",
                            found.format, found.version
                        )));
                }
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Brings the loaded indexes up to date with the store: index objects published since
    /// the last call are read, and those that disappeared (removed by `gc`) are forgotten,
    /// so their blobs are neither read nor deduplicated against.
    pub async fn load_indexes(&self) -> Result<()> {
        // Only indexes known before the listing may be forgotten: one this process
        // publishes during the listing is recorded after its put, so it is either in the
        // listing or not in `before`.
        let before: HashSet<String> = self.loaded.lock().keys().cloned().collect();
        let keys = self.list_keys("index").await?;
        for key in &keys {
            if self.loaded.lock().contains_key(key) {
                continue;
            }
            let raw = self.get(key).await?;
            let json = zstd::stream::decode_all(raw.as_ref())
                .map_err(|err| corrupt("load index", key, "not zstd").with_source(err))?;
            let file: IndexFile = serde_json::from_slice(&json)
                .map_err(|err| corrupt("load index", key, "not a valid index").with_source(err))?;
            let locations: Vec<(Digest, BlobLocation)> = file
                .blobs
                .iter()
                .map(|blob| {
                    (
                        blob.id,
                        BlobLocation {
                            pack: file.pack,
                            offset: blob.offset,
                            length: blob.length,
                            raw_length: blob.raw_length,
                            kind: blob.kind,
                        },
                    )
                })
                .collect();
            self.remember_index(key, locations);
        }
        let listed: HashSet<&String> = keys.iter().collect();
        for key in before.iter().filter(|k| !listed.contains(k)) {
            self.forget_index(key);
        }
        Ok(())
    }

    fn remember_index(&self, key: &str, locations: Vec<(Digest, BlobLocation)>) {
        {
            let mut index = self.index.write();
            for (id, location) in &locations {
                index.insert(*id, *location);
            }
        }
        self.loaded.lock().insert(key.to_owned(), locations);
    }

    /// Drops an index: its blobs are unknown from now on unless another loaded index
    /// names them too (then that location is used).
    pub(crate) fn forget_index(&self, key: &str) {
        let mut loaded = self.loaded.lock();
        let Some(gone) = loaded.remove(key) else {
            return;
        };
        let mut index = self.index.write();
        for (id, location) in &gone {
            if index.get(id).is_some_and(|l| l.pack == location.pack) {
                index.remove(id);
            }
        }
        // A blob two writers stored at once lives in two packs: keep the other one.
        for locations in loaded.values() {
            for (id, location) in locations {
                index.entry(*id).or_insert(*location);
            }
        }
    }

    /// Every loaded index: its key and the pack and blobs it names.
    pub(crate) fn loaded_indexes(&self) -> Vec<(String, Option<Digest>, Vec<Digest>)> {
        self.loaded
            .lock()
            .iter()
            .map(|(key, locations)| {
                (
                    key.clone(),
                    locations.first().map(|(_, l)| l.pack),
                    locations.iter().map(|(id, _)| *id).collect(),
                )
            })
            .collect()
    }

    /// How many blobs the loaded indexes know.
    pub fn blob_count(&self) -> usize {
        self.index.read().len()
    }

    /// Where a blob is stored, if an index names it.
    pub fn locate(&self, id: &Digest) -> Option<BlobLocation> {
        self.index.read().get(id).copied()
    }

    /// Whether the blob is stored or on its way (in a pack being filled): either way it
    /// need not be stored again.
    /// Claims a blob for this writer: `true` if no one stored or is storing it, and it is
    /// now pending until [`Repository::push_blob`] or [`Repository::release_blob`].
    pub(crate) fn reserve_blob(&self, id: Digest) -> bool {
        if self.index.read().contains_key(&id) {
            return false;
        }
        self.pending.lock().insert(id)
    }

    /// Gives up a reservation whose blob could not be prepared.
    pub(crate) fn release_blob(&self, id: &Digest) {
        self.pending.lock().remove(id);
        self.settled.notify_waiters();
    }

    /// Makes every blob in `needed` indexed before a record may name them; `operation`
    /// names the caller in the error.
    ///
    /// A writer skips blobs another writer reserved, so some of what it needs may still be
    /// compressing, sitting in the shared open pack, or uploading in a pack the other
    /// writer took. The open pack is uploaded whoever filled it; the rest settle as the
    /// other writer goes on. A blob neither indexed nor pending was lost to the other
    /// writer's failed upload: the caller's error to retry.
    pub(crate) async fn wait_until_stored(
        &self,
        needed: &[Digest],
        operation: &'static str,
        objects_written: &AtomicU64,
    ) -> Result<()> {
        self.flush(objects_written).await?;
        loop {
            // Registered before looking, so a change between the look and the wait wakes us.
            let changed = self.settled.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let missing: Vec<Digest> = {
                let index = self.index.read();
                needed
                    .iter()
                    .filter(|d| !index.contains_key(d))
                    .copied()
                    .collect()
            };
            if missing.is_empty() {
                // The writer is done with packs: its spare buffers would only sit resident
                // until the next snapshot.
                self.spare_packs.release();
                return Ok(());
            }
            // A blob is indexed before it leaves `pending`: one that is neither pending now
            // nor indexed on a second look (it may have landed between the two) was lost.
            let not_pending: Vec<Digest> = {
                let pending = self.pending.lock();
                missing
                    .iter()
                    .filter(|d| !pending.contains(d))
                    .copied()
                    .collect()
            };
            if let Some(lost) = {
                let index = self.index.read();
                not_pending.into_iter().find(|d| !index.contains_key(d))
            } {
                return Err(VfsError::new(ErrorKind::Io, operation)
                    .with_detail(format!("blob {lost} was not stored; retry")));
            }
            let in_open_pack = {
                let open = self.open_pack.lock();
                open.blobs.iter().any(|b| missing.contains(&b.id))
            };
            if in_open_pack {
                // A writer that failed after pushing would never upload it.
                self.flush(objects_written).await?;
                continue;
            }
            // A writer dropped between reserving and pushing (a cancelled request) never
            // settles its blobs; without progress for this long, give up rather than hang.
            if tokio::time::timeout(PENDING_STALL_LIMIT, changed)
                .await
                .is_err()
            {
                return Err(VfsError::new(ErrorKind::Io, operation).with_detail(format!(
                    "blob {} stayed pending in another writer for {} s; retry",
                    missing[0],
                    PENDING_STALL_LIMIT.as_secs()
                )));
            }
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Bytes> {
        let path = StorePath::from(key);
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|err| store_error("get", key, err))?;
        result
            .bytes()
            .await
            .map_err(|err| store_error("get", key, err))
    }

    pub(crate) async fn put_if_absent(&self, key: &str, payload: PutPayload) -> Result<()> {
        let path = StorePath::from(key);
        self.store
            .put_opts(&path, payload, PutOptions::from(PutMode::Create))
            .await
            .map(|_| ())
            .map_err(|err| store_error("put", key, err))
    }

    /// Publishes content-addressed bytes: if the object is there already it holds the same
    /// bytes (its name is their digest), so that counts as success. Returns whether it
    /// wrote.
    async fn publish(&self, key: &str, bytes: Bytes) -> Result<bool> {
        match self.put_if_absent(key, bytes.into()).await {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(err),
        }
    }

    pub(crate) async fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let path = StorePath::from(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|err| store_error("list", prefix, err))?;
        let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }

    /// Appends a reserved blob's compressed bytes to the open pack; when the pack is full,
    /// this call uploads it. `objects_written` counts store writes.
    pub(crate) async fn push_blob(
        &self,
        id: Digest,
        kind: BlobKind,
        raw_length: usize,
        compressed: Vec<u8>,
        objects_written: &AtomicU64,
    ) -> Result<()> {
        let full = {
            let mut open = self.open_pack.lock();
            let offset = open.data.len() as u64;
            if open.data.capacity() == 0 {
                open.data = self.spare_packs.take();
                // Growing by doubling would copy a pack's bytes again; untouched capacity
                // costs no memory.
                open.data.reserve_exact(PACK_TARGET.max(compressed.len()));
            }
            open.data.extend_from_slice(&compressed);
            open.blobs.push(IndexBlob {
                id,
                kind,
                offset,
                length: compressed.len() as u32,
                raw_length: raw_length as u32,
            });
            if open.data.len() >= PACK_TARGET {
                Some(std::mem::take(&mut *open))
            } else {
                None
            }
        };
        self.settled.notify_waiters();
        match full {
            Some(pack) => self.upload_pack(pack, objects_written).await,
            None => Ok(()),
        }
    }

    /// Uploads the pack being filled, if it holds anything.
    pub(crate) async fn flush(&self, objects_written: &AtomicU64) -> Result<()> {
        let pack = std::mem::take(&mut *self.open_pack.lock());
        if pack.blobs.is_empty() {
            return Ok(());
        }
        self.upload_pack(pack, objects_written).await
    }

    /// The pack first, then its index: a blob becomes visible only once the bytes it
    /// points at are stored. A crash between the two leaves an unindexed pack, which no
    /// one reads and a later snapshot simply writes again.
    async fn upload_pack(&self, pack: OpenPack, objects_written: &AtomicU64) -> Result<()> {
        let ids: Vec<Digest> = pack.blobs.iter().map(|b| b.id).collect();
        let result = async {
            let pack_id = pack_digest(&pack.blobs);
            if self
                .publish(&pack_key(&pack_id), self.spare_packs.lend(pack.data))
                .await?
            {
                objects_written.fetch_add(1, Ordering::Relaxed);
            }
            let file = IndexFile {
                version: FORMAT_VERSION,
                pack: pack_id,
                blobs: pack.blobs,
            };
            let json = serde_json::to_vec(&file)
                .map_err(|err| VfsError::new(ErrorKind::Io, "write index").with_source(err))?;
            let compressed = compress(&json)?;
            let index_key = format!("index/{}", Digest::of(&compressed));
            if self.publish(&index_key, Bytes::from(compressed)).await? {
                objects_written.fetch_add(1, Ordering::Relaxed);
            }
            let locations = file
                .blobs
                .iter()
                .map(|blob| {
                    (
                        blob.id,
                        BlobLocation {
                            pack: pack_id,
                            offset: blob.offset,
                            length: blob.length,
                            raw_length: blob.raw_length,
                            kind: blob.kind,
                        },
                    )
                })
                .collect();
            self.remember_index(&index_key, locations);
            Ok(())
        }
        .await;
        // Published or failed, these are no longer on their way: a failed pack's blobs
        // must be written again by whoever needs them next.
        {
            let mut pending = self.pending.lock();
            for id in ids {
                pending.remove(&id);
            }
        }
        self.settled.notify_waiters();
        result
    }

    /// Reads a blob, decompresses it and checks its digest. Every failure is `EIO` naming
    /// the blob and its pack: a blob no index names, a pack that is gone, bytes that do
    /// not decompress or do not match the digest.
    pub async fn read_blob(&self, id: &Digest) -> Result<Bytes> {
        self.fetch_blob(id).await.map_err(|(_, err)| err)
    }

    /// As `read_blob`, also telling whether the blob is missing (`true`) rather than
    /// corrupt or unreadable.
    pub(crate) async fn fetch_blob(
        &self,
        id: &Digest,
    ) -> std::result::Result<Bytes, (bool, VfsError)> {
        let Some(location) = self.locate(id) else {
            let err = VfsError::new(ErrorKind::Io, "read blob")
                .with_path(format!("blob {id}"))
                .with_detail("no index names this blob: the store is missing it");
            return Err((true, err));
        };
        fetch_located(self.store.as_ref(), id, location).await
    }

    /// As `read_blob`, started at once as its own task, so several blobs are fetched,
    /// decompressed and checked at the same time on every core; the future resolves to
    /// the blob. Needs a tokio runtime.
    pub(crate) fn spawn_read_blob(
        &self,
        id: Digest,
    ) -> impl std::future::Future<Output = Result<Bytes>> + Send + 'static {
        let store = self.store.clone();
        let location = self.locate(&id);
        let task = tokio::spawn(async move {
            let Some(location) = location else {
                return Err(VfsError::new(ErrorKind::Io, "read blob")
                    .with_path(format!("blob {id}"))
                    .with_detail("no index names this blob: the store is missing it"));
            };
            fetch_located(store.as_ref(), &id, location)
                .await
                .map_err(|(_, err)| err)
        });
        async move {
            task.await.map_err(|err| {
                VfsError::new(ErrorKind::Io, "read blob")
                    .with_path(format!("blob {id}"))
                    .with_source(err)
            })?
        }
    }

    /// Reads and parses a tree blob.
    pub async fn read_tree(&self, id: &Digest) -> Result<Tree> {
        let data = self.read_blob(id).await?;
        Tree::decode(id, &data)
    }

    /// Publishes the snapshot record, the last step of a snapshot. If the same tree was
    /// snapshotted before, its record stays as it was (the first time counts).
    pub(crate) async fn publish_snapshot(&self, info: &SnapshotInfo) -> Result<bool> {
        let json = serde_json::to_vec(info)
            .map_err(|err| VfsError::new(ErrorKind::Io, "write snapshot").with_source(err))?;
        self.publish(&snapshot_key(&info.id), Bytes::from(json))
            .await
    }

    /// The record of one snapshot (`ENOENT` if the store has none).
    pub async fn snapshot_info(&self, id: &SnapshotId) -> Result<SnapshotInfo> {
        let key = snapshot_key(id);
        let data = self.get(&key).await?;
        serde_json::from_slice(&data).map_err(|err| {
            corrupt("read snapshot", &key, "not a valid snapshot record").with_source(err)
        })
    }

    /// Every snapshot in the store, oldest first.
    pub async fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for key in self.list_keys("snapshots").await? {
            let data = self.get(&key).await?;
            let info: SnapshotInfo = serde_json::from_slice(&data).map_err(|err| {
                corrupt("list snapshots", &key, "not a valid snapshot record").with_source(err)
            })?;
            out.push(info);
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Names a snapshot (`refs/<name>`), replacing what the name pointed at. The snapshot
    /// must exist.
    pub async fn tag(&self, name: &str, id: &SnapshotId) -> Result<()> {
        check_tag(name)?;
        self.snapshot_info(id).await?;
        let json = serde_json::to_vec(&TagFile {
            version: FORMAT_VERSION,
            id: *id,
        })
        .map_err(|err| VfsError::new(ErrorKind::Io, "tag").with_source(err))?;
        let key = tag_key(name);
        self.store
            .put(&StorePath::from(key.as_str()), Bytes::from(json).into())
            .await
            .map(|_| ())
            .map_err(|err| store_error("tag", &key, err))
    }

    /// Removes a tag (the snapshot stays).
    pub async fn untag(&self, name: &str) -> Result<()> {
        check_tag(name)?;
        let key = tag_key(name);
        self.store
            .delete(&StorePath::from(key.as_str()))
            .await
            .map_err(|err| store_error("untag", &key, err))
    }

    /// Every tag and the snapshot it names, sorted by name.
    pub async fn list_tags(&self) -> Result<Vec<(String, SnapshotId)>> {
        let mut out = Vec::new();
        for key in self.list_keys("refs").await? {
            let name = key.trim_start_matches("refs/").to_owned();
            out.push((name.clone(), self.read_tag(&key).await?));
        }
        Ok(out)
    }

    async fn read_tag(&self, key: &str) -> Result<SnapshotId> {
        let data = self.get(key).await?;
        let tag: TagFile = serde_json::from_slice(&data)
            .map_err(|err| corrupt("read tag", key, "not a valid tag").with_source(err))?;
        Ok(tag.id)
    }

    /// A snapshot named by its 64-digit id or by a tag.
    pub async fn resolve(&self, name: &str) -> Result<SnapshotId> {
        if name.len() == 64 {
            if let Ok(id) = Digest::from_hex(name) {
                return Ok(id);
            }
        }
        check_tag(name)?;
        self.read_tag(&tag_key(name)).await.map_err(|err| {
            if err.kind() == ErrorKind::NotFound {
                VfsError::new(ErrorKind::NotFound, "resolve snapshot")
                    .with_path(name)
                    .with_detail("no snapshot id or tag by this name")
            } else {
                err
            }
        })
    }
}
