//! The driver's shared state: the store, the manifest cache, the open-file table, and the
//! lookups every operation is built from.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult,
    UpdateVersion,
};
use parking_lot::Mutex;
use vfs_core::{ErrorKind, FileKind, Metadata, Result, Timestamp, VfsError, VfsPath};

use super::config::Tuning;
use super::handle::{Content, OpenFile};
use super::layout::{self, display, hashed_ino, Attrs, Entry, Manifest};

/// How often a manifest update is retried when another writer got there first.
const MANIFEST_RETRIES: usize = 16;

/// A directory update that only moves its mtime is skipped when the mtime is younger than
/// this: bulk creates in one directory then cost one manifest write per second, not one
/// per file (the directory's mtime is exact to this much, like `relatime` for atime).
const DIR_MTIME_GRANULARITY_NS: i64 = 1_000_000_000;

/// What is known about a directory.
#[derive(Clone, Debug)]
pub(crate) enum DirState {
    /// It has a manifest (with the etag it was read or written with).
    Explicit(Arc<Manifest>, Option<String>),
    /// It exists only because keys lie beneath it (written by another tool).
    Implicit,
}

/// One entry found by a lookup.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    File {
        key: Path,
        size: u64,
        modified: i64,
        etag: Option<String>,
        attrs: Option<Attrs>,
    },
    Dir {
        key: Path,
        state: DirState,
    },
    Symlink {
        target: String,
        attrs: Attrs,
    },
}

impl Node {
    pub(crate) fn kind(&self) -> FileKind {
        match self {
            Node::File { .. } => FileKind::File,
            Node::Dir { .. } => FileKind::Directory,
            Node::Symlink { .. } => FileKind::Symlink,
        }
    }
}

/// The outcome of walking a path: the canonical components of the final entry and what
/// is there (`None`: nothing, though its parent exists and is a directory).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub comps: Vec<String>,
    pub node: Option<Node>,
}

impl Resolved {
    pub(crate) fn parent(&self) -> &[String] {
        &self.comps[..self.comps.len().saturating_sub(1)]
    }

    pub(crate) fn name(&self) -> &str {
        self.comps.last().map(String::as_str).unwrap_or("")
    }
}

pub(crate) struct Inner {
    pub kind: String,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    pub tuning: Tuning,
    dirs: Mutex<HashMap<String, (DirState, Instant)>>,
    dir_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub open: Mutex<HashMap<String, Arc<OpenFile>>>,
    /// Set once the store answered that it cannot do conditional updates (the local
    /// filesystem store); manifests are then overwritten under the in-process lock only.
    no_update_mode: AtomicBool,
}

/// Maps an object_store error to an errno, keeping it as the source.
pub(crate) fn store_error(
    operation: &'static str,
    path: &str,
    err: object_store::Error,
) -> VfsError {
    use object_store::Error as E;
    let kind = match &err {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        E::NotImplemented { .. } | E::NotSupported { .. } => ErrorKind::Unsupported,
        E::InvalidPath { .. } => ErrorKind::InvalidInput,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::Io,
    };
    VfsError::new(kind, operation)
        .with_path(path)
        .with_source(err)
}

impl Inner {
    pub(crate) fn new(
        kind: &str,
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        tuning: Tuning,
    ) -> Inner {
        Inner {
            kind: kind.to_owned(),
            store,
            prefix,
            tuning,
            dirs: Mutex::new(HashMap::new()),
            dir_locks: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            no_update_mode: AtomicBool::new(false),
        }
    }

    /// Runs one store call under the configured deadline: `ETIMEDOUT` past it, the mapped
    /// errno on failure, with the operation and the mount-relative path.
    pub(crate) async fn call<T>(
        &self,
        operation: &'static str,
        path: &str,
        future: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.tuning.timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(store_error(operation, path, err)),
            Err(_) => Err(VfsError::new(ErrorKind::TimedOut, operation)
                .with_path(path)
                .with_detail(format!(
                    "the object store did not answer within {} ms",
                    self.tuning.timeout.as_millis()
                ))),
        }
    }

    pub(crate) fn key(&self, comps: &[String]) -> Result<Path> {
        layout::key(&self.prefix, comps)
    }

    // ---- directories -------------------------------------------------------------------

    fn cached_dir(&self, key: &str) -> Option<DirState> {
        let dirs = self.dirs.lock();
        let (state, at) = dirs.get(key)?;
        (at.elapsed() < self.tuning.cache_ttl).then(|| state.clone())
    }

    pub(crate) fn remember_dir(&self, key: &Path, state: DirState) {
        if self.tuning.cache_ttl.is_zero() {
            return;
        }
        self.dirs
            .lock()
            .insert(key.as_ref().to_owned(), (state, Instant::now()));
    }

    /// Forgets cached directories at or beneath `key`.
    pub(crate) fn forget_dirs(&self, key: &Path) {
        let prefix = format!("{}/", key.as_ref());
        self.dirs
            .lock()
            .retain(|cached, _| cached != key.as_ref() && !cached.starts_with(&prefix));
    }

    /// The state of the directory at `comps`, `None` if there is none. Costs one GET of
    /// the manifest (plus, without one, one LIST), unless cached.
    pub(crate) async fn dir_state(
        &self,
        comps: &[String],
        fresh: bool,
    ) -> Result<Option<DirState>> {
        let key = self.key(comps)?;
        if !fresh {
            if let Some(state) = self.cached_dir(key.as_ref()) {
                return Ok(Some(state));
            }
        }
        let shown = display(comps);
        let manifest_key = layout::manifest_of(&key);
        let got = tokio::time::timeout(self.tuning.timeout, async {
            let result = self.store.get(&manifest_key).await?;
            let etag = result.meta.e_tag.clone();
            let bytes = result.bytes().await?;
            Ok::<_, object_store::Error>((bytes, etag))
        })
        .await;
        let state = match got {
            Ok(Ok((bytes, etag))) => Some(DirState::Explicit(
                Arc::new(Manifest::parse(&bytes, &manifest_key)?),
                etag,
            )),
            Ok(Err(err)) if is_missing(&err) => {
                if comps.is_empty() || self.has_children(&key, &shown).await? {
                    Some(DirState::Implicit)
                } else {
                    None
                }
            }
            Ok(Err(err)) => return Err(store_error("read manifest", &shown, err)),
            Err(_) => {
                return Err(VfsError::new(ErrorKind::TimedOut, "read manifest")
                    .with_path(shown)
                    .with_detail("the object store did not answer in time"))
            }
        };
        if let Some(state) = &state {
            self.remember_dir(&key, state.clone());
        }
        Ok(state)
    }

    /// Whether any key lies beneath `key/` (one LIST request).
    async fn has_children(&self, key: &Path, shown: &str) -> Result<bool> {
        let mut listing = self.store.list(Some(key));
        match tokio::time::timeout(self.tuning.timeout, listing.next()).await {
            Ok(None) => Ok(false),
            Ok(Some(Ok(_))) => Ok(true),
            Ok(Some(Err(err))) => Err(store_error("list", shown, err)),
            Err(_) => Err(VfsError::new(ErrorKind::TimedOut, "list").with_path(shown)),
        }
    }

    fn dir_lock(&self, key: &Path) -> Arc<tokio::sync::Mutex<()>> {
        self.dir_locks
            .lock()
            .entry(key.as_ref().to_owned())
            .or_default()
            .clone()
    }

    /// The attributes a directory without stored ones shows.
    pub(crate) fn default_dir_attrs(&self, key: &Path, comps: &[String]) -> Attrs {
        let ino = if comps.is_empty() { 1 } else { hashed_ino(key) };
        Attrs::at(0o755, self.tuning.uid, self.tuning.gid, ino, 0)
    }

    /// Read-modify-writes the manifest of the directory at `comps`: `change` edits it and
    /// says whether there is anything to write. The write is conditional on the version
    /// read (`If-Match`, or `If-None-Match` for a new manifest), so two writers never
    /// lose each other's entries; on a conflict the manifest is read again and `change`
    /// re-applied. Writers in this process are serialized per directory first.
    pub(crate) async fn update_manifest(
        &self,
        comps: &[String],
        mut change: impl FnMut(&mut Manifest) -> Result<bool>,
    ) -> Result<()> {
        let key = self.key(comps)?;
        let shown = display(comps);
        let lock = self.dir_lock(&key);
        let _serialized = lock.lock().await;
        let manifest_key = layout::manifest_of(&key);
        let mut fresh = false;
        for _ in 0..MANIFEST_RETRIES {
            let (mut manifest, etag) = match self.dir_state(comps, fresh).await? {
                Some(DirState::Explicit(manifest, etag)) => ((*manifest).clone(), etag),
                Some(DirState::Implicit) => {
                    (Manifest::new(self.default_dir_attrs(&key, comps)), None)
                }
                None => {
                    return Err(VfsError::new(ErrorKind::NotFound, "update directory")
                        .with_path(shown)
                        .with_detail("the directory disappeared"))
                }
            };
            if !change(&mut manifest)? {
                return Ok(());
            }
            let body = serde_json::to_vec(&manifest).map_err(|err| {
                VfsError::new(ErrorKind::Io, "update directory")
                    .with_path(shown.clone())
                    .with_source(err)
            })?;
            let mode = match &etag {
                None => PutMode::Create,
                Some(_) if self.no_update_mode.load(Ordering::Relaxed) => PutMode::Overwrite,
                Some(etag) => PutMode::Update(UpdateVersion {
                    e_tag: Some(etag.clone()),
                    version: None,
                }),
            };
            let is_update = matches!(mode, PutMode::Update(_));
            let put = self.store.put_opts(
                &manifest_key,
                PutPayload::from(Bytes::from(body)),
                PutOptions::from(mode),
            );
            match tokio::time::timeout(self.tuning.timeout, put).await {
                Ok(Ok(result)) => {
                    self.remember_dir(&key, DirState::Explicit(Arc::new(manifest), result.e_tag));
                    return Ok(());
                }
                Ok(Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                )) => {
                    fresh = true;
                }
                Ok(Err(object_store::Error::NotImplemented { .. })) if is_update => {
                    self.no_update_mode.store(true, Ordering::Relaxed);
                }
                Ok(Err(err)) => return Err(store_error("update directory", &shown, err)),
                Err(_) => {
                    return Err(VfsError::new(ErrorKind::TimedOut, "update directory")
                        .with_path(shown)
                        .with_detail("the object store did not answer in time"))
                }
            }
        }
        Err(VfsError::new(ErrorKind::Io, "update directory")
            .with_path(shown)
            .with_detail("the directory manifest kept changing under concurrent writers"))
    }

    /// Moves the mtime and ctime of the directory at `comps` to now; with `force` false,
    /// only when they are older than [`DIR_MTIME_GRANULARITY_NS`].
    pub(crate) async fn touch_dir(&self, comps: &[String], force: bool) -> Result<()> {
        let key = self.key(comps)?;
        let defaults = self.default_dir_attrs(&key, comps);
        self.update_manifest(comps, |manifest| {
            let now = Timestamp::now().as_nanos();
            let this = manifest.this.get_or_insert(defaults);
            let age = now - this.mtime;
            if !force && (0..DIR_MTIME_GRANULARITY_NS).contains(&age) {
                return Ok(false);
            }
            this.mtime = now;
            this.ctime = now;
            Ok(true)
        })
        .await
    }

    // ---- lookups -----------------------------------------------------------------------

    async fn head(&self, key: &Path, comps: &[String]) -> Result<Option<object_store::ObjectMeta>> {
        match tokio::time::timeout(self.tuning.timeout, self.store.head(key)).await {
            Ok(Ok(meta)) => Ok(Some(meta)),
            Ok(Err(err)) if is_missing(&err) => Ok(None),
            Ok(Err(err)) => Err(store_error("stat", &display(comps), err)),
            Err(_) => Err(VfsError::new(ErrorKind::TimedOut, "stat")
                .with_path(display(comps))
                .with_detail("the object store did not answer in time")),
        }
    }

    /// The entry `name` of the directory `parent` (in state `parent_state`).
    pub(crate) async fn lookup(
        &self,
        parent: &[String],
        parent_state: &DirState,
        name: &str,
    ) -> Result<Option<Node>> {
        let mut comps = parent.to_vec();
        comps.push(name.to_owned());
        if name == layout::MANIFEST_NAME {
            return Err(layout::reserved(&comps));
        }
        let key = self.key(&comps)?;
        let mut attrs = None;
        if let DirState::Explicit(manifest, _) = parent_state {
            match manifest.entries.get(name) {
                Some(Entry::Symlink { target, attrs }) => {
                    return Ok(Some(Node::Symlink {
                        target: target.clone(),
                        attrs: *attrs,
                    }))
                }
                Some(Entry::Dir { .. }) => {
                    return Ok(self
                        .dir_state(&comps, false)
                        .await?
                        .map(|state| Node::Dir { key, state }))
                }
                Some(Entry::File { attrs: stored }) => attrs = Some(*stored),
                None => {}
            }
        }
        if let Some(meta) = self.head(&key, &comps).await? {
            return Ok(Some(Node::File {
                key,
                size: meta.size,
                modified: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                etag: meta.e_tag,
                attrs,
            }));
        }
        if attrs.is_some() {
            // A stale entry: the object went away behind the layer's back.
            return Ok(None);
        }
        if let Some(state) = self.cached_dir(key.as_ref()) {
            return Ok(Some(Node::Dir { key, state }));
        }
        // Not a file: a directory only if keys lie beneath it (its manifest among them),
        // which one LIST answers; a missing name costs that and the HEAD, no more.
        if !self.has_children(&key, &display(&comps)).await? {
            return Ok(None);
        }
        Ok(self
            .dir_state(&comps, false)
            .await?
            .map(|state| Node::Dir { key, state }))
    }

    /// Walks `path` from the root, following symlinks in the middle (and at the end with
    /// `follow_last`), at most [`vfs_core::MAX_SYMLINK_HOPS`] of them.
    pub(crate) async fn resolve(&self, path: &VfsPath, follow_last: bool) -> Result<Resolved> {
        let op = "resolve";
        let mut current: Vec<String> = Vec::new();
        let mut current_state = match self.dir_state(&[], false).await? {
            Some(state) => state,
            None => DirState::Implicit,
        };
        let mut pending: Vec<String> = path.components().rev().map(str::to_owned).collect();
        let mut hops = 0;
        loop {
            let Some(name) = pending.pop() else {
                let key = self.key(&current)?;
                return Ok(Resolved {
                    comps: current,
                    node: Some(Node::Dir {
                        key,
                        state: current_state,
                    }),
                });
            };
            if name == "." {
                continue;
            }
            if name == ".." {
                current.pop();
                current_state = match self.dir_state(&current, false).await? {
                    Some(state) => state,
                    None => {
                        return Err(VfsError::new(ErrorKind::NotFound, op).with_path(path.as_str()))
                    }
                };
                continue;
            }
            let is_last = pending.is_empty();
            let node = self.lookup(&current, &current_state, &name).await?;
            match node {
                None if is_last => {
                    current.push(name);
                    return Ok(Resolved {
                        comps: current,
                        node: None,
                    });
                }
                None => return Err(VfsError::new(ErrorKind::NotFound, op).with_path(path.as_str())),
                Some(Node::Symlink { target, .. }) if !is_last || follow_last => {
                    hops += 1;
                    if hops > vfs_core::MAX_SYMLINK_HOPS {
                        return Err(VfsError::new(ErrorKind::Loop, op).with_path(path.as_str()));
                    }
                    if target.is_empty() {
                        return Err(VfsError::new(ErrorKind::NotFound, op).with_path(path.as_str()));
                    }
                    if target.starts_with('/') {
                        current.clear();
                        current_state = match self.dir_state(&[], false).await? {
                            Some(state) => state,
                            None => DirState::Implicit,
                        };
                    }
                    if target.ends_with('/') {
                        pending.push(".".to_owned());
                    }
                    pending.extend(
                        target
                            .split('/')
                            .filter(|part| !part.is_empty())
                            .rev()
                            .map(str::to_owned),
                    );
                }
                Some(Node::Dir { key, state }) => {
                    current.push(name);
                    if is_last {
                        return Ok(Resolved {
                            comps: current,
                            node: Some(Node::Dir { key, state }),
                        });
                    }
                    current_state = state;
                }
                Some(other) if is_last => {
                    current.push(name);
                    return Ok(Resolved {
                        comps: current,
                        node: Some(other),
                    });
                }
                Some(_) => {
                    // A file (or unfollowed symlink) with more components after it; a `.`
                    // or `..` after a file is ENOTDIR too.
                    return Err(
                        VfsError::new(ErrorKind::NotADirectory, op).with_path(path.as_str())
                    );
                }
            }
        }
    }

    /// Resolves `path` and applies the trailing-slash rule: `name/` must be a directory.
    pub(crate) async fn resolve_checked(
        &self,
        operation: &'static str,
        path: &VfsPath,
        follow_last: bool,
    ) -> Result<Resolved> {
        let slash = path.has_trailing_slash();
        let resolved = self
            .resolve(path, follow_last || slash)
            .await
            .map_err(|err| with_operation(err, operation, path))?;
        if slash {
            if let Some(node) = &resolved.node {
                if node.kind() != FileKind::Directory {
                    return Err(
                        VfsError::new(ErrorKind::NotADirectory, operation).with_path(path.as_str())
                    );
                }
            }
        }
        Ok(resolved)
    }

    /// Resolves `path`, which must exist.
    pub(crate) async fn existing(
        &self,
        operation: &'static str,
        path: &VfsPath,
        follow_last: bool,
    ) -> Result<(Vec<String>, Node)> {
        let resolved = self.resolve_checked(operation, path, follow_last).await?;
        match resolved.node {
            Some(node) => Ok((resolved.comps, node)),
            None => Err(VfsError::new(ErrorKind::NotFound, operation).with_path(path.as_str())),
        }
    }

    // ---- metadata ----------------------------------------------------------------------

    /// The metadata of a node, with what open handles of this driver changed but have not
    /// yet published.
    pub(crate) async fn metadata(&self, comps: &[String], node: &Node) -> Metadata {
        let (kind, attrs, size, nlink) = match node {
            Node::File {
                key,
                size,
                modified,
                attrs,
                ..
            } => {
                let attrs = attrs.unwrap_or_else(|| self.default_file_attrs(key, *modified));
                (FileKind::File, attrs, *size, 1)
            }
            Node::Dir { key, state } => {
                let (attrs, subdirs) = match state {
                    DirState::Explicit(manifest, _) => (
                        manifest
                            .this
                            .unwrap_or_else(|| self.default_dir_attrs(key, comps)),
                        manifest.subdirs(),
                    ),
                    DirState::Implicit => (self.default_dir_attrs(key, comps), 0),
                };
                let mut attrs = attrs;
                if comps.is_empty() {
                    attrs.ino = 1;
                }
                (FileKind::Directory, attrs, 0, 2 + subdirs)
            }
            Node::Symlink { target, attrs } => (FileKind::Symlink, *attrs, target.len() as u64, 1),
        };
        let mut meta = Metadata {
            kind,
            size,
            mode: attrs.mode & 0o7777,
            uid: attrs.uid,
            gid: attrs.gid,
            nlink,
            ino: attrs.ino,
            blocks: size.div_ceil(512),
            rdev: 0,
            atime: Timestamp(attrs.atime),
            mtime: Timestamp(attrs.mtime),
            ctime: Timestamp(attrs.ctime),
            btime: Timestamp(attrs.btime),
        };
        if let Node::File { key, .. } = node {
            if let Some(file) = self.open_file(key) {
                file.overlay(&mut meta).await;
            }
        }
        meta
    }

    pub(crate) fn default_file_attrs(&self, key: &Path, modified: i64) -> Attrs {
        Attrs::at(
            0o644,
            self.tuning.uid,
            self.tuning.gid,
            hashed_ino(key),
            modified,
        )
    }

    /// The stored-or-default attributes of a file or symlink node (for a change to them).
    pub(crate) fn attrs_of(&self, node: &Node) -> Option<Attrs> {
        match node {
            Node::File {
                key,
                modified,
                attrs,
                ..
            } => Some(attrs.unwrap_or_else(|| self.default_file_attrs(key, *modified))),
            Node::Symlink { attrs, .. } => Some(*attrs),
            Node::Dir { .. } => None,
        }
    }

    // ---- open files --------------------------------------------------------------------

    pub(crate) fn open_file(&self, key: &Path) -> Option<Arc<OpenFile>> {
        self.open.lock().get(key.as_ref()).cloned()
    }

    /// Registers a handle on the file at `key`, sharing the open file if one exists.
    pub(crate) fn attach(
        &self,
        key: &Path,
        comps: &[String],
        content: impl FnOnce() -> Content,
    ) -> Arc<OpenFile> {
        let mut open = self.open.lock();
        let file = open
            .entry(key.as_ref().to_owned())
            .or_insert_with(|| Arc::new(OpenFile::new(key.clone(), comps.to_vec(), content())))
            .clone();
        file.handles.fetch_add(1, Ordering::SeqCst);
        file
    }

    /// Drops a handle's registration; the last one removes the open file from the table.
    pub(crate) fn detach(&self, file: &Arc<OpenFile>) {
        let mut open = self.open.lock();
        if file.handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            let key = file.key.lock().as_ref().to_owned();
            if open.get(&key).is_some_and(|entry| Arc::ptr_eq(entry, file)) {
                open.remove(&key);
            }
        }
    }

    /// Marks the open file at `key` (if any) as no longer reachable by its name.
    pub(crate) fn unlink_open(&self, key: &Path) {
        if let Some(file) = self.open.lock().remove(key.as_ref()) {
            file.unlinked.store(true, Ordering::SeqCst);
        }
    }

    /// Moves open files at or beneath `from` to the same place beneath `to`.
    pub(crate) fn rekey_open(
        &self,
        from: &Path,
        from_comps: &[String],
        to: &Path,
        to_comps: &[String],
    ) -> Vec<Arc<OpenFile>> {
        let mut moved_files = Vec::new();
        let mut open = self.open.lock();
        let from_raw = from.as_ref().to_owned();
        let prefix = format!("{from_raw}/");
        let moving: Vec<String> = open
            .keys()
            .filter(|key| **key == from_raw || key.starts_with(&prefix))
            .cloned()
            .collect();
        for old in moving {
            let Some(file) = open.remove(&old) else {
                continue;
            };
            let rest = &old[from_raw.len()..];
            let new_raw = format!("{}{rest}", to.as_ref());
            let Ok(new_key) = Path::parse(&new_raw) else {
                continue;
            };
            {
                let mut comps = file.comps.lock();
                let tail: Vec<String> = comps[from_comps.len().min(comps.len())..].to_vec();
                let mut moved = to_comps.to_vec();
                moved.extend(tail);
                *comps = moved;
            }
            *file.key.lock() = new_key;
            moved_files.push(file.clone());
            if let Some(replaced) = open.insert(new_raw, file) {
                replaced.unlinked.store(true, Ordering::SeqCst);
            }
        }
        moved_files
    }

    /// After a rename, open files were moved to objects that are copies: the version
    /// their reads were pinned to is gone, so they read the copy unpinned.
    pub(crate) async fn unpin(files: Vec<Arc<OpenFile>>) {
        for file in files {
            if let Content::Remote { etag, .. } = &mut file.state.lock().await.content {
                *etag = None;
            }
        }
    }

    // ---- content -----------------------------------------------------------------------

    /// Uploads `data` as the whole object at `key`: one PUT, or a multipart upload in
    /// parts of the part size when larger (aborted on failure, so the old object stays).
    pub(crate) async fn put_object(
        &self,
        key: &Path,
        shown: &str,
        data: Bytes,
        mode: PutMode,
    ) -> Result<PutResult> {
        if data.len() <= self.tuning.part_size || !matches!(mode, PutMode::Overwrite) {
            return self
                .call(
                    "write",
                    shown,
                    self.store
                        .put_opts(key, PutPayload::from(data), PutOptions::from(mode)),
                )
                .await;
        }
        let mut upload = self
            .call("write", shown, self.store.put_multipart(key))
            .await?;
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + self.tuning.part_size).min(data.len());
            let part = PutPayload::from(data.slice(offset..end));
            if let Err(err) = self.call("write", shown, upload.put_part(part)).await {
                let _ = self.call("write", shown, upload.abort()).await;
                return Err(err);
            }
            offset = end;
        }
        match self.call("write", shown, upload.complete()).await {
            Ok(result) => Ok(result),
            Err(err) => {
                let _ = self.call("write", shown, upload.abort()).await;
                Err(err)
            }
        }
    }

    /// Reads `range` of the object at `key` (the whole object with `None`), checking the
    /// version (`If-Match`) when `etag` is given and the length of what came back: a
    /// changed object or a short or long body is `EIO`, never silently wrong data.
    pub(crate) async fn get_checked(
        &self,
        key: &Path,
        shown: &str,
        range: Option<std::ops::Range<u64>>,
        etag: Option<&str>,
    ) -> Result<(Bytes, object_store::ObjectMeta)> {
        let options = GetOptions {
            if_match: etag.map(str::to_owned),
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let (bytes, meta, served) = self
            .call("read", shown, async {
                let result = self.store.get_opts(key, options).await?;
                let meta = result.meta.clone();
                let served = result.range.clone();
                let bytes = result.bytes().await?;
                Ok((bytes, meta, served))
            })
            .await
            .map_err(|err| {
                if err.kind() == ErrorKind::Io && etag.is_some() {
                    err.with_detail("the object changed since it was opened")
                } else {
                    err
                }
            })?;
        let expected = served.end.saturating_sub(served.start);
        let wanted = match &range {
            Some(range) => range.end.min(meta.size).saturating_sub(range.start),
            None => meta.size,
        };
        if bytes.len() as u64 != expected || expected != wanted {
            return Err(VfsError::new(ErrorKind::Io, "read")
                .with_path(shown)
                .with_detail(format!(
                    "the object store sent {} bytes where {wanted} were due",
                    bytes.len()
                )));
        }
        if let (Some(want), Some(got)) = (etag, meta.e_tag.as_deref()) {
            if want != got {
                return Err(VfsError::new(ErrorKind::Io, "read")
                    .with_path(shown)
                    .with_detail("the object store sent another version of the object"));
            }
        }
        Ok((bytes, meta))
    }
}

/// Whether an error means "nothing there": not found, or (local store) a path through a
/// file, which the host reports as ENOTDIR.
pub(crate) fn is_missing(err: &object_store::Error) -> bool {
    if matches!(err, object_store::Error::NotFound { .. }) {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::ENOTDIR) {
                return true;
            }
        }
        source = current.source();
    }
    false
}

/// Re-labels an error from a walk with the caller's operation, keeping its kind.
fn with_operation(err: VfsError, operation: &'static str, path: &VfsPath) -> VfsError {
    if err.operation() == "resolve" {
        VfsError::new(err.kind(), operation).with_path(path.as_str())
    } else {
        err
    }
}
