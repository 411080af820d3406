//! Garbage collection and the lock objects that make it safe beside running snapshots.
//!
//! The rule (FORMAT.md, "Garbage collection"): every writer (snapshot or import) holds a
//! `locks/writer-*` object from before it looks at the indexes until after its record is
//! published; `gc` holds `locks/gc-*` and deletes nothing while a writer lock exists. Both
//! create their own lock first and then list the others, so of a writer and a gc that
//! start together at least one sees the other: the writer then backs off until the gc is
//! done, and reloads the indexes before deduplicating, so it never relies on a blob gc
//! removed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use vfs_core::{ErrorKind, Result, Timestamp, VfsError};

use crate::digest::{Digest, SnapshotId};
use crate::store::{snapshot_key, store_error, Repository};
use crate::tree::Node;

/// A gc lock older than this is taken as left by a crashed gc and ignored by writers.
const GC_LOCK_STALE: Duration = Duration::from_secs(3600);

/// How often a waiting writer or gc looks at the locks again.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// How `gc` decides.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Snapshot records, packs and indexes younger than this are kept whatever else is
    /// true: a snapshot just finished and not yet tagged survives, and clock skew between
    /// writers and the store is covered. Zero collects everything unreferenced.
    pub keep_recent: Duration,
    /// How long to wait for running writers to finish before giving up with `EBUSY`.
    pub wait: Duration,
    /// A writer lock older than this is taken as left by a crashed writer and ignored.
    pub stale_writer: Duration,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            keep_recent: Duration::from_secs(3600),
            wait: Duration::from_secs(600),
            stale_writer: Duration::from_secs(24 * 3600),
        }
    }
}

/// What `gc` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Snapshots kept (tagged, named in `keep`, or recent).
    pub snapshots_kept: u64,
    /// Snapshot records removed.
    pub snapshots_removed: Vec<SnapshotId>,
    /// Packs removed.
    pub packs_removed: u64,
    /// Index objects removed.
    pub indexes_removed: u64,
    /// Bytes of the packs removed.
    pub bytes_freed: u64,
    /// Packs kept: a kept snapshot needs one of their blobs, or they are recent.
    pub packs_kept: u64,
    /// Names in `keep` that resolve to an id the store has no snapshot of (yet): there
    /// is nothing of theirs to keep.
    pub keep_missing: Vec<String>,
}

static LOCK_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other lock has: the digest of process id, time and a counter.
fn unique_name() -> String {
    let seed = format!(
        "{}-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanos(),
        LOCK_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Digest::of(seed.as_bytes()).to_hex()[..32].to_owned()
}

fn age(meta: &ObjectMeta) -> Duration {
    let then = meta.last_modified.timestamp_nanos_opt().unwrap_or(i64::MIN);
    let now = Timestamp::now().as_nanos();
    // A time in the future (skew) counts as brand new.
    Duration::from_nanos(u64::try_from(now.saturating_sub(then)).unwrap_or(0))
}

/// A lock object in the store, removed when released or dropped.
///
/// Dropping it (a cancelled snapshot, import or gc future) removes the lock from a task
/// on the current runtime, so a caller that gives up does not leave a lock that blocks gc
/// until it turns stale. Without a runtime the lock turns stale in time.
pub(crate) struct LockGuard {
    store: Arc<dyn ObjectStore>,
    key: String,
    released: bool,
}

impl LockGuard {
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Removes the lock. Failing to is not an error of the operation it guarded (it is
    /// over); the lock turns stale in time.
    pub(crate) async fn release(mut self) {
        let _ = self.store.delete(&StorePath::from(self.key.as_str())).await;
        // Only now: a future dropped during the delete leaves the lock to `Drop`.
        self.released = true;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
            runtime.spawn(async move {
                let _ = store.delete(&StorePath::from(key)).await;
            });
        }
    }
}

impl Repository {
    async fn list_metas(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.store()
            .list(Some(&StorePath::from(prefix)))
            .try_collect()
            .await
            .map_err(|err| store_error("list", prefix, err))
    }

    /// Locks of one kind (`writer` or `gc`) younger than `stale`, other than `mine`.
    async fn live_locks(&self, kind: &str, stale: Duration, mine: &str) -> Result<Vec<String>> {
        let prefix = format!("locks/{kind}-");
        Ok(self
            .list_metas("locks")
            .await?
            .into_iter()
            .filter(|m| {
                let key = m.location.to_string();
                key.starts_with(&prefix) && key != mine && age(m) < stale
            })
            .map(|m| m.location.to_string())
            .collect())
    }

    async fn put_lock(&self, kind: &str) -> Result<LockGuard> {
        let key = format!("locks/{kind}-{}", unique_name());
        let body = format!(
            "{{\"version\":1,\"kind\":\"{kind}\",\"pid\":{}}}",
            std::process::id()
        );
        self.put_if_absent(&key, Bytes::from(body).into()).await?;
        Ok(LockGuard {
            store: self.store().clone(),
            key,
            released: false,
        })
    }

    /// Takes a writer lock, waiting while a gc runs, then reloads the indexes so nothing
    /// a finished gc removed is deduplicated against. The lock goes when the guard is
    /// released or dropped.
    pub(crate) async fn lock_writer(&self) -> Result<LockGuard> {
        loop {
            let lock = self.put_lock("writer").await?;
            let gcs = match self.live_locks("gc", GC_LOCK_STALE, lock.key()).await {
                Ok(gcs) => gcs,
                Err(err) => {
                    lock.release().await;
                    return Err(err);
                }
            };
            if gcs.is_empty() {
                if let Err(err) = self.load_indexes().await {
                    lock.release().await;
                    return Err(err);
                }
                return Ok(lock);
            }
            // A gc is running: step aside so it can finish, then try again.
            lock.release().await;
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Removes what no kept snapshot needs: snapshot records not kept, then the index
    /// objects and packs none of whose blobs a kept snapshot reaches (and packs no index
    /// names, left by a crash). Kept are: every tagged snapshot, every snapshot `keep`
    /// names (ids or tags), and everything younger than `options.keep_recent`.
    ///
    /// Safe beside running snapshots, in this process or others: gc waits until no
    /// writer holds a lock (up to `options.wait`, then `EBUSY`), and writers wait while
    /// gc holds its lock. A pack is removed only whole, so a pack holding one needed blob
    /// stays with all its blobs. Only one gc runs at a time (`EBUSY` otherwise). A kept
    /// snapshot that cannot be read stops gc before anything is deleted.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository) -> vfs_core::Result<()> {
    /// repo.untag("old-build").await?;
    /// let stats = repo.gc(&["release"], &vfs_snapshot::GcOptions::default()).await?;
    /// println!("freed {} bytes", stats.bytes_freed);
    /// # Ok(()) }
    /// ```
    pub async fn gc(&self, keep: &[&str], options: &GcOptions) -> Result<GcStats> {
        let lock = self.put_lock("gc").await?;
        let result = self.gc_locked(lock.key(), keep, options).await;
        lock.release().await;
        result
    }

    async fn gc_locked(&self, lock: &str, keep: &[&str], options: &GcOptions) -> Result<GcStats> {
        if !self.live_locks("gc", GC_LOCK_STALE, lock).await?.is_empty() {
            return Err(VfsError::new(ErrorKind::Busy, "gc")
                .with_path("locks")
                .with_detail("another gc is running"));
        }
        let started = Instant::now();
        loop {
            let writers = self
                .live_locks("writer", options.stale_writer, lock)
                .await?;
            let Some(first) = writers.first() else { break };
            if started.elapsed() >= options.wait {
                return Err(VfsError::new(ErrorKind::Busy, "gc")
                    .with_path(first.clone())
                    .with_detail(format!("{} snapshot writers still running", writers.len())));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
        // From here no writer runs until this gc's lock is gone.
        self.load_indexes().await?;
        let mut stats = GcStats::default();

        // Which snapshots stay.
        let mut wanted: HashSet<SnapshotId> = HashSet::new();
        let mut names: HashMap<SnapshotId, String> = HashMap::new();
        for name in keep {
            let id = self.resolve(name).await?;
            wanted.insert(id);
            names.insert(id, (*name).to_owned());
        }
        for (_, id) in self.list_tags().await? {
            wanted.insert(id);
        }
        let now = Timestamp::now().as_nanos();
        let recent = i64::try_from(options.keep_recent.as_nanos()).unwrap_or(i64::MAX);
        let mut kept: HashSet<SnapshotId> = HashSet::new();
        let mut doomed = Vec::new();
        for info in self.list_snapshots().await? {
            if wanted.contains(&info.id) || now.saturating_sub(info.time) < recent {
                kept.insert(info.id);
            } else {
                doomed.push(info.id);
            }
        }
        // Only snapshots that exist are walked; a named id with no record has no blobs
        // to protect (a snapshot still being written is protected by the lock instead).
        for id in wanted.iter().filter(|id| !kept.contains(id)) {
            let name = names.get(id).cloned().unwrap_or_else(|| id.to_hex());
            stats.keep_missing.push(name);
        }
        stats.keep_missing.sort();
        stats.snapshots_kept = kept.len() as u64;

        // Everything they reach; an unreadable kept tree stops gc before any deletion.
        let mut reachable: HashSet<Digest> = HashSet::new();
        let mut pending: Vec<Digest> = kept.iter().copied().collect();
        while let Some(tree_id) = pending.pop() {
            if !reachable.insert(tree_id) {
                continue;
            }
            let tree = self.read_tree(&tree_id).await.map_err(|err| {
                VfsError::new(ErrorKind::Io, "gc")
                    .with_path(format!("tree {tree_id}"))
                    .with_detail(format!(
                        "a kept snapshot cannot be read, nothing deleted: {err}"
                    ))
            })?;
            for entry in tree.entries {
                match entry.node {
                    Node::Directory { tree } => pending.push(tree),
                    Node::File { chunks, .. } => reachable.extend(chunks.iter().map(|c| c.id)),
                    _ => {}
                }
            }
        }

        // Packs: needed if any index says one of its blobs is reachable.
        let indexes = self.loaded_indexes();
        let mut needed_packs: HashSet<Digest> = HashSet::new();
        let mut indexes_of: HashMap<Digest, Vec<String>> = HashMap::new();
        let mut empty_indexes = Vec::new();
        for (key, pack, blobs) in &indexes {
            match pack {
                Some(pack) => {
                    if blobs.iter().any(|b| reachable.contains(b)) {
                        needed_packs.insert(*pack);
                    }
                    indexes_of.entry(*pack).or_default().push(key.clone());
                }
                None => empty_indexes.push(key.clone()),
            }
        }
        let index_metas: HashMap<String, ObjectMeta> = self
            .list_metas("index")
            .await?
            .into_iter()
            .map(|m| (m.location.to_string(), m))
            .collect();
        let young = |meta: Option<&ObjectMeta>| meta.is_some_and(|m| age(m) < options.keep_recent);

        // Records first: once they are gone nothing points into the packs below.
        for id in &doomed {
            let key = snapshot_key(id);
            match self.store().delete(&StorePath::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(store_error("gc", &key, err)),
            }
            stats.snapshots_removed.push(*id);
        }
        for key in empty_indexes {
            if !young(index_metas.get(&key)) {
                self.delete_index(&key, &mut stats).await?;
            }
        }
        for meta in self.list_metas("packs").await? {
            let key = meta.location.to_string();
            let Some(pack) = key
                .rsplit('/')
                .next()
                .and_then(|hex| Digest::from_hex(hex).ok())
            else {
                continue;
            };
            let its_indexes = indexes_of.get(&pack).cloned().unwrap_or_default();
            let keep_pack = needed_packs.contains(&pack)
                || age(&meta) < options.keep_recent
                || its_indexes.iter().any(|k| young(index_metas.get(k)));
            if keep_pack {
                stats.packs_kept += 1;
                continue;
            }
            // Indexes before the pack: a reader never finds a blob whose pack is gone.
            for index_key in &its_indexes {
                self.delete_index(index_key, &mut stats).await?;
            }
            match self.store().delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(store_error("gc", &key, err)),
            }
            stats.packs_removed += 1;
            stats.bytes_freed += meta.size;
        }
        Ok(stats)
    }

    async fn delete_index(&self, key: &str, stats: &mut GcStats) -> Result<()> {
        match self.store().delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(store_error("gc", key, err)),
        }
        self.forget_index(key);
        stats.indexes_removed += 1;
        Ok(())
    }
}
