//! `s3` / `object`: a tree kept in object storage (S3 and the other stores of the
//! [`object_store`] crate), registry ids `s3` and `object`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vfs_core::{FileSystem, VfsPath};
//! use vfs_drivers::object::{ObjectConfig, ObjectFs};
//!
//! # async fn demo() -> vfs_core::Result<()> {
//! // From a config, as `mountFs` receives it...
//! let config: ObjectConfig = serde_json::from_value(serde_json::json!({
//!     "url": "s3://my-bucket/workspaces/alice",
//!     "region": "eu-west-1",
//! })).expect("a valid config");
//! let fs = ObjectFs::from_config(config, "s3")?;
//! fs.write_file(&VfsPath::new("/notes.txt")?, "hello".into()).await?;
//!
//! // ...or over any object_store store (here in memory) and a key prefix.
//! let store = Arc::new(object_store::memory::InMemory::new());
//! let fs = ObjectFs::new(store, "some/prefix")?;
//! assert_eq!(fs.read_file(&VfsPath::new("/notes.txt")?).await.map(|b| b.len()).ok(), None);
//! # Ok(()) }
//! ```
//!
//! # What object storage cannot do
//!
//! [`ObjectFs::capabilities`](vfs_core::FileSystem::capabilities) declares: no hard links
//! (`EPERM`), no xattrs (`ENOTSUP`), no atomic `O_APPEND` across processes, no atomic
//! rename, no sparse files, and no unlinked-but-open files (a handle whose object was
//! removed or replaced fails with `ENOTSUP`). Random writes work by rewriting the object,
//! for objects up to `rewriteLimit` (64 MiB by default); beyond it they are `ENOTSUP`.
//!
//! # When writes become visible
//!
//! - To this driver (its other handles and path calls): at once; handles of one driver
//!   share one state per object.
//! - To other processes: when a handle is closed (or synced, for buffered files),
//!   and at once for whole-file calls (`write_file`, `create_dir`, `symlink`, `rename`,
//!   metadata changes). A file being written stays as it was (or, new, empty) until then.
//! - A file that grows past `partSize` through a handle is uploaded in parts as it is
//!   written (memory bounded by the part size); the object appears when the upload
//!   completes at close. Until then only appends at its end are possible; if the upload
//!   fails it is aborted and the previous object stays intact.
//! - Reads through a handle are pinned to the version opened (`If-Match`): an object
//!   replaced by another process under an open handle reads as `EIO`, never as a mix.
//!
//! # Costs
//!
//! `stat` of a file is one HEAD (its directory's manifest, cached for `cacheTtlMs`, gives
//! its metadata); of a directory, one GET of its manifest, or none when cached. `read_dir`
//! is one LIST per 1,000 entries (plus the manifest). Creating a file is one PUT; its
//! directory's mtime is moved at most once a second by a manifest write. Reads are range
//! GETs; a sequential reader fetches `readahead` bytes at a time.
//!
#![doc = include_str!("LAYOUT.md")]

mod config;
mod handle;
mod layout;
mod store;

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode};
use vfs_core::{
    async_trait, Capabilities, DirEntry, ErrorKind, FileHandle, FileKind, FileSystem, Metadata,
    OpenOptions, Result, SetTime, StatFs, Timestamp, VfsError, VfsPath,
};

pub use config::{ObjectConfig, Secret, Tuning};
pub use layout::MANIFEST_NAME;

use handle::{Content, ObjectHandle};
use layout::{display, hashed_ino, Attrs, Entry, Manifest};
use store::{DirState, Inner, Node};

/// A filesystem kept in an object store. See the [module docs](self) for the layout, the
/// capabilities and when writes become visible.
pub struct ObjectFs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The store's Display names the bucket, never credentials.
        f.debug_struct("ObjectFs")
            .field("kind", &self.inner.kind)
            .field("store", &self.inner.store.to_string())
            .field("prefix", &self.inner.prefix.as_ref())
            .finish()
    }
}

impl ObjectFs {
    /// A filesystem over `store`, beneath the key `prefix` (`""` for the whole store),
    /// with default tuning; its kind is `"object"`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<ObjectFs> {
        ObjectFs::with_tuning(store, prefix, Tuning::default(), "object")
    }

    /// A filesystem over `store` beneath `prefix`, with `tuning`, reporting `kind`.
    pub fn with_tuning(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        tuning: Tuning,
        kind: &str,
    ) -> Result<ObjectFs> {
        let prefix = Path::parse(prefix.trim_matches('/')).map_err(|err| {
            VfsError::new(ErrorKind::InvalidInput, "mount")
                .with_detail("bad key prefix")
                .with_source(err)
        })?;
        Ok(ObjectFs {
            inner: Arc::new(Inner::new(kind, store, prefix, tuning)),
        })
    }

    /// Builds the filesystem a config names; `kind` is the registry id it was built under.
    pub fn from_config(config: ObjectConfig, kind: &str) -> Result<ObjectFs> {
        let (store, prefix, is_s3) = config.build_store()?;
        let tuning = config.tuning(is_s3)?;
        Ok(ObjectFs {
            inner: Arc::new(Inner::new(kind, store, prefix, tuning)),
        })
    }

    /// The registry factory for `kind` (`"s3"` or `"object"`).
    pub fn build(kind: &'static str) -> impl Fn(ObjectConfig) -> Result<Arc<dyn FileSystem>> {
        move |config| Ok(Arc::new(ObjectFs::from_config(config, kind)?) as Arc<dyn FileSystem>)
    }

    /// The store this filesystem keeps its tree in.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    fn err(kind: ErrorKind, operation: &'static str, path: &VfsPath) -> VfsError {
        VfsError::new(kind, operation).with_path(path.as_str())
    }

    /// Adds (or replaces) the entry `name` of the directory `parent` and moves the
    /// directory's mtime.
    async fn set_entry(&self, parent: &[String], name: &str, entry: Option<Entry>) -> Result<()> {
        let name = name.to_owned();
        self.inner
            .update_manifest(parent, |manifest| {
                match &entry {
                    Some(entry) => {
                        manifest.entries.insert(name.clone(), entry.clone());
                    }
                    None => {
                        manifest.entries.remove(&name);
                    }
                }
                stamp_dir(manifest);
                Ok(true)
            })
            .await
    }

    /// Records a long name in its directory's manifest before its object is written, so
    /// listings can show it.
    async fn note_long_name(&self, parent: &[String], name: &str) -> Result<()> {
        if !layout::is_long(name) {
            return Ok(());
        }
        let segment = layout::segment(name);
        let name = name.to_owned();
        self.inner
            .update_manifest(parent, |manifest| {
                if manifest.long_names.get(&segment) == Some(&name) {
                    return Ok(false);
                }
                manifest.long_names.insert(segment.clone(), name.clone());
                Ok(true)
            })
            .await
    }

    /// Changes the stored attributes of whatever `path` names (following symlinks).
    async fn change_attrs(
        &self,
        operation: &'static str,
        path: &VfsPath,
        change: impl Fn(&mut Attrs, FileKind),
    ) -> Result<()> {
        let (comps, node) = self.inner.existing(operation, path, true).await?;
        let now = Timestamp::now().as_nanos();
        match &node {
            Node::Dir { key, .. } => {
                let defaults = self.inner.default_dir_attrs(key, &comps);
                self.inner
                    .update_manifest(&comps, |manifest| {
                        let this = manifest.this.get_or_insert(defaults);
                        change(this, FileKind::Directory);
                        this.ctime = now;
                        Ok(true)
                    })
                    .await
            }
            Node::File { .. } | Node::Symlink { .. } => {
                let Some((name, parent)) = comps.split_last() else {
                    return Err(Self::err(ErrorKind::Io, operation, path));
                };
                let current = self.inner.attrs_of(&node);
                let kind = node.kind();
                let name = name.clone();
                self.inner
                    .update_manifest(parent, |manifest| {
                        let entry = manifest.entries.entry(name.clone());
                        let entry = entry.or_insert_with(|| Entry::File {
                            attrs: current.unwrap_or(Attrs::at(0o644, 0, 0, 2, 0)),
                        });
                        let attrs = match entry {
                            Entry::File { attrs } | Entry::Symlink { attrs, .. } => attrs,
                            Entry::Dir { .. } => return Ok(false),
                        };
                        change(attrs, kind);
                        attrs.ctime = now;
                        Ok(true)
                    })
                    .await
            }
        }
    }

    /// Creates the object of a new, empty file (conditionally: two creators never both
    /// win) and records non-default metadata.
    async fn create_file(
        &self,
        comps: &[String],
        mode: u32,
        path: &VfsPath,
        exclusive: bool,
    ) -> Result<Option<(Option<String>, bool)>> {
        let key = self.inner.key(comps)?;
        let shown = display(comps);
        if let Some((name, parent)) = comps.split_last() {
            self.note_long_name(parent, name).await?;
        }
        let put = self
            .inner
            .put_object(&key, &shown, Bytes::new(), PutMode::Create)
            .await;
        match put {
            Ok(result) => {
                let (name, parent) = comps
                    .split_last()
                    .ok_or_else(|| Self::err(ErrorKind::IsADirectory, "open", path))?;
                let tuning = &self.inner.tuning;
                if mode & 0o7777 != 0o644 {
                    let attrs = Attrs::new(mode & 0o7777, tuning.uid, tuning.gid, hashed_ino(&key));
                    self.set_entry(parent, name, Some(Entry::File { attrs }))
                        .await?;
                } else {
                    self.inner.touch_dir(parent, false).await?;
                }
                Ok(Some((result.e_tag, true)))
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists && !exclusive => Ok(None),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                Err(Self::err(ErrorKind::AlreadyExists, "open", path))
            }
            Err(err) => Err(err),
        }
    }

    /// The entry `path` names itself (a final symlink not followed); `name/` on anything
    /// but a directory is `ENOTDIR`, as unlink and rmdir answer on Linux.
    async fn unfollowed(
        &self,
        operation: &'static str,
        path: &VfsPath,
    ) -> Result<(Vec<String>, Node)> {
        let resolved = self.inner.resolve(path, false).await.map_err(|err| {
            if err.operation() == "resolve" {
                VfsError::new(err.kind(), operation).with_path(path.as_str())
            } else {
                err
            }
        })?;
        match resolved.node {
            None => Err(Self::err(ErrorKind::NotFound, operation, path)),
            Some(node) if path.has_trailing_slash() && node.kind() != FileKind::Directory => {
                Err(Self::err(ErrorKind::NotADirectory, operation, path))
            }
            Some(node) => Ok((resolved.comps, node)),
        }
    }

    /// One GET of the object a path names when its directory's manifest says it is a
    /// plain file (no entry, or a file entry) and no handle of this driver has it open;
    /// `None` sends the caller down the full lookup (directories, symlinks, errors).
    async fn read_file_directly(&self, path: &VfsPath) -> Result<Option<Bytes>> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(None);
        };
        if path.has_trailing_slash() || name == MANIFEST_NAME {
            return Ok(None);
        }
        let Ok(resolved) = self.inner.resolve(&parent, true).await else {
            return Ok(None);
        };
        let Some(Node::Dir { state, .. }) = resolved.node else {
            return Ok(None);
        };
        if let DirState::Explicit(manifest, _) = &state {
            if matches!(
                manifest.entries.get(name),
                Some(Entry::Dir { .. } | Entry::Symlink { .. })
            ) {
                return Ok(None);
            }
        }
        let mut comps = resolved.comps;
        comps.push(name.to_owned());
        let key = self.inner.key(&comps)?;
        if self.inner.open_file(&key).is_some() {
            return Ok(None);
        }
        match self
            .inner
            .get_checked(&key, path.as_str(), None, None)
            .await
        {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Moves one object. A copy then a delete, as S3 does it anyway; the delete (not a
    /// local rename) also removes directories the local store leaves empty.
    async fn copy_then_delete(&self, from: &Path, to: &Path, shown: &str) -> Result<()> {
        self.inner
            .call("rename", shown, self.inner.store.copy(from, to))
            .await?;
        self.inner
            .call("rename", shown, self.inner.store.delete(from))
            .await
    }

    /// Moves every object at or beneath `from` to the same place beneath `to`.
    async fn move_tree(&self, from: &Path, to: &Path, shown: &str) -> Result<()> {
        use futures::TryStreamExt;
        let objects: Vec<object_store::ObjectMeta> = self
            .inner
            .call(
                "rename",
                shown,
                self.inner.store.list(Some(from)).try_collect(),
            )
            .await?;
        let from_raw = from.as_ref();
        for object in objects {
            let rest = &object.location.as_ref()[from_raw.len()..];
            let target = Path::parse(format!("{}{rest}", to.as_ref())).map_err(|err| {
                VfsError::new(ErrorKind::InvalidInput, "rename")
                    .with_path(shown)
                    .with_source(err)
            })?;
            self.copy_then_delete(&object.location, &target, shown)
                .await?;
        }
        Ok(())
    }
}

/// The name a listed key segment stands for; `None` for a hashed long name this
/// directory's manifest does not know (left over by an interrupted create).
fn listed_name(raw: &str, manifest: Option<&Manifest>) -> Option<String> {
    if raw.starts_with(layout::LONG_NAME_PREFIX) {
        return manifest.and_then(|m| m.long_names.get(raw).cloned());
    }
    Some(layout::unescape(raw))
}

/// Moves a directory's mtime and ctime to now.
fn stamp_dir(manifest: &mut Manifest) {
    let now = Timestamp::now().as_nanos();
    if let Some(this) = &mut manifest.this {
        this.mtime = now;
        this.ctime = now;
    }
}

#[async_trait]
impl FileSystem for ObjectFs {
    fn kind(&self) -> &str {
        &self.inner.kind
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read_only: false,
            symlinks: true,
            hard_links: false,
            xattrs: false,
            permissions: true,
            ownership: true,
            set_times: true,
            random_writes: true,
            atomic_append: false,
            atomic_rename: false,
            sparse_files: false,
            open_unlinked: false,
            empty_directories: true,
        }
    }

    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        let writes = options.writes();
        let follow = !options.create_new;
        let resolved = self.inner.resolve_checked("open", path, follow).await?;
        let comps = resolved.comps.clone();
        let (etag, size) = match &resolved.node {
            Some(_) if options.create_new => {
                return Err(Self::err(ErrorKind::AlreadyExists, "open", path))
            }
            Some(Node::Dir { .. }) => return Err(Self::err(ErrorKind::IsADirectory, "open", path)),
            Some(Node::Symlink { .. }) => return Err(Self::err(ErrorKind::Loop, "open", path)),
            Some(Node::File { size, etag, .. }) => (etag.clone(), *size),
            None if !options.creates() => return Err(Self::err(ErrorKind::NotFound, "open", path)),
            None if path.has_trailing_slash() || comps.is_empty() => {
                return Err(Self::err(ErrorKind::IsADirectory, "open", path))
            }
            None => {
                match self
                    .create_file(&comps, options.mode, path, options.create_new)
                    .await?
                {
                    Some((etag, _)) => (etag, 0),
                    None => {
                        // Another creator won the race: open what it made.
                        let (_, node) = self.inner.existing("open", path, true).await?;
                        match node {
                            Node::File { size, etag, .. } => (etag, size),
                            _ => return Err(Self::err(ErrorKind::IsADirectory, "open", path)),
                        }
                    }
                }
            }
        };
        let key = self.inner.key(&comps)?;
        let file = self
            .inner
            .attach(&key, &comps, || Content::Remote { size, etag });
        let handle = ObjectHandle::new(
            self.inner.clone(),
            file,
            options.read || !writes,
            writes,
            options.append,
        );
        if options.truncate && writes {
            handle.set_len(0).await?;
        }
        Ok(Box::new(handle))
    }

    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        let (comps, node) = self.inner.existing("stat", path, true).await?;
        Ok(self.inner.metadata(&comps, &node).await)
    }

    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        let (comps, node) = self.inner.existing("lstat", path, false).await?;
        Ok(self.inner.metadata(&comps, &node).await)
    }

    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        let (comps, node) = self.inner.existing("scandir", path, true).await?;
        let Node::Dir { key, state } = node else {
            return Err(Self::err(ErrorKind::NotADirectory, "scandir", path));
        };
        let listing_prefix =
            (!comps.is_empty() || !self.inner.prefix.as_ref().is_empty()).then_some(&key);
        let listing = self
            .inner
            .call(
                "scandir",
                path.as_str(),
                self.inner.store.list_with_delimiter(listing_prefix),
            )
            .await?;
        let manifest = match &state {
            DirState::Explicit(manifest, _) => Some(manifest.clone()),
            DirState::Implicit => None,
        };
        let entry_of = |name: &str| manifest.as_ref().and_then(|m| m.entries.get(name));
        let mut entries = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for prefix in &listing.common_prefixes {
            let Some(raw) = prefix.filename() else {
                continue;
            };
            let Some(name) = listed_name(raw, manifest.as_deref()) else {
                continue;
            };
            let ino = match entry_of(&name) {
                Some(Entry::Dir { ino }) => *ino,
                _ => hashed_ino(prefix),
            };
            seen.insert(name.clone());
            entries.push(DirEntry {
                name,
                kind: FileKind::Directory,
                ino,
            });
        }
        for object in &listing.objects {
            if object.location.as_ref() == key.as_ref() {
                continue; // a foreign `dir/` marker object
            }
            let Some(raw) = object.location.filename() else {
                continue;
            };
            if raw == MANIFEST_NAME {
                continue;
            }
            let Some(name) = listed_name(raw, manifest.as_deref()) else {
                continue;
            };
            if !seen.insert(name.clone()) {
                continue;
            }
            let ino = match entry_of(&name) {
                Some(Entry::File { attrs }) => attrs.ino,
                _ => hashed_ino(&object.location),
            };
            entries.push(DirEntry {
                name,
                kind: FileKind::File,
                ino,
            });
        }
        if let Some(manifest) = &manifest {
            for (name, entry) in &manifest.entries {
                if let Entry::Symlink { attrs, .. } = entry {
                    if seen.insert(name.clone()) {
                        entries.push(DirEntry {
                            name: name.clone(),
                            kind: FileKind::Symlink,
                            ino: attrs.ino,
                        });
                    }
                }
            }
        }
        Ok(entries)
    }

    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        let resolved = self.inner.resolve_checked("mkdir", path, false).await?;
        if resolved.node.is_some() || resolved.comps.is_empty() {
            return Err(Self::err(ErrorKind::AlreadyExists, "mkdir", path));
        }
        let comps = resolved.comps;
        let key = self.inner.key(&comps)?;
        if let Some((name, parent)) = comps.split_last() {
            self.note_long_name(parent, name).await?;
        }
        let ino = hashed_ino(&key);
        let tuning = &self.inner.tuning;
        let manifest = Manifest::new(Attrs::new(mode & 0o7777, tuning.uid, tuning.gid, ino));
        let body = serde_json::to_vec(&manifest)
            .map_err(|err| Self::err(ErrorKind::Io, "mkdir", path).with_source(err))?;
        let manifest_key = layout::manifest_of(&key);
        let put = self
            .inner
            .call(
                "mkdir",
                path.as_str(),
                self.inner.store.put_opts(
                    &manifest_key,
                    Bytes::from(body).into(),
                    PutMode::Create.into(),
                ),
            )
            .await;
        let result = match put {
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                return Err(Self::err(ErrorKind::AlreadyExists, "mkdir", path))
            }
            other => other?,
        };
        self.inner
            .remember_dir(&key, DirState::Explicit(Arc::new(manifest), result.e_tag));
        let (name, parent) = comps
            .split_last()
            .ok_or_else(|| Self::err(ErrorKind::AlreadyExists, "mkdir", path))?;
        self.set_entry(parent, name, Some(Entry::Dir { ino })).await
    }

    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        let (comps, node) = self.unfollowed("unlink", path).await?;
        let (name, parent) = comps
            .split_last()
            .ok_or_else(|| Self::err(ErrorKind::IsADirectory, "unlink", path))?;
        match &node {
            Node::Dir { .. } => return Err(Self::err(ErrorKind::IsADirectory, "unlink", path)),
            Node::File { key, attrs, .. } => {
                self.inner
                    .call("unlink", path.as_str(), self.inner.store.delete(key))
                    .await?;
                self.inner.unlink_open(key);
                if attrs.is_some() {
                    self.set_entry(parent, name, None).await?;
                } else {
                    self.inner.touch_dir(parent, false).await?;
                }
            }
            Node::Symlink { .. } => self.set_entry(parent, name, None).await?,
        }
        Ok(())
    }

    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        let (comps, node) = self.unfollowed("rmdir", path).await?;
        let Node::Dir { key, state } = node else {
            return Err(Self::err(ErrorKind::NotADirectory, "rmdir", path));
        };
        let Some((name, parent)) = comps.split_last() else {
            return Err(Self::err(ErrorKind::Busy, "rmdir", path));
        };
        let listing = self
            .inner
            .call(
                "rmdir",
                path.as_str(),
                self.inner.store.list_with_delimiter(Some(&key)),
            )
            .await?;
        let has_objects = listing
            .objects
            .iter()
            .any(|o| o.location.filename() != Some(MANIFEST_NAME) && o.location != key);
        let has_links = matches!(&state, DirState::Explicit(m, _) if m.entries.values().any(|e| matches!(e, Entry::Symlink { .. })));
        if has_objects || !listing.common_prefixes.is_empty() || has_links {
            return Err(Self::err(ErrorKind::DirectoryNotEmpty, "rmdir", path));
        }
        let manifest_key = layout::manifest_of(&key);
        match self
            .inner
            .call(
                "rmdir",
                path.as_str(),
                self.inner.store.delete(&manifest_key),
            )
            .await
        {
            Err(err) if err.kind() != ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        self.inner.forget_dirs(&key);
        self.set_entry(parent, name, None).await
    }

    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        let (from_comps, node) = self.inner.existing("rename", from, false).await?;
        let source_is_dir = node.kind() == FileKind::Directory;
        if from.has_trailing_slash() && !source_is_dir {
            return Err(Self::err(ErrorKind::NotADirectory, "rename", from));
        }
        if to.has_trailing_slash() && !source_is_dir {
            return Err(Self::err(ErrorKind::NotADirectory, "rename", to));
        }
        let target = self.inner.resolve_checked("rename", to, false).await?;
        let to_comps = target.comps.clone();
        if from_comps == to_comps {
            return Ok(());
        }
        let (Some((from_name, from_parent)), Some((to_name, to_parent))) =
            (from_comps.split_last(), to_comps.split_last())
        else {
            return Err(Self::err(ErrorKind::Busy, "rename", from));
        };
        let from_key = self.inner.key(&from_comps)?;
        let to_key = self.inner.key(&to_comps)?;
        match (&node, &target.node) {
            (Node::Dir { .. }, _) if to_comps.starts_with(&from_comps) => {
                return Err(Self::err(ErrorKind::InvalidInput, "rename", to))
            }
            (Node::Dir { .. }, Some(Node::File { .. } | Node::Symlink { .. })) => {
                return Err(Self::err(ErrorKind::NotADirectory, "rename", to))
            }
            (Node::File { .. } | Node::Symlink { .. }, Some(Node::Dir { .. })) => {
                return Err(Self::err(ErrorKind::IsADirectory, "rename", to))
            }
            _ => {}
        }
        let shown = from.as_str();
        self.note_long_name(to_parent, to_name).await?;
        match node {
            Node::Dir { state, .. } => {
                if let Some(Node::Dir {
                    key: target_key, ..
                }) = &target.node
                {
                    let listing = self
                        .inner
                        .call(
                            "rename",
                            to.as_str(),
                            self.inner.store.list_with_delimiter(Some(target_key)),
                        )
                        .await?;
                    let busy = !listing.common_prefixes.is_empty()
                        || listing
                            .objects
                            .iter()
                            .any(|o| o.location.filename() != Some(MANIFEST_NAME));
                    let links = match &target.node {
                        Some(Node::Dir {
                            state: DirState::Explicit(m, _),
                            ..
                        }) => !m.entries.is_empty(),
                        _ => false,
                    };
                    if busy || links {
                        return Err(Self::err(ErrorKind::DirectoryNotEmpty, "rename", to));
                    }
                    let _ = self
                        .inner
                        .call(
                            "rename",
                            to.as_str(),
                            self.inner.store.delete(&layout::manifest_of(target_key)),
                        )
                        .await;
                }
                let ino = match &state {
                    DirState::Explicit(m, _) => m
                        .this
                        .map(|a| a.ino)
                        .unwrap_or_else(|| hashed_ino(&from_key)),
                    DirState::Implicit => hashed_ino(&from_key),
                };
                self.move_tree(&from_key, &to_key, shown).await?;
                self.inner.forget_dirs(&from_key);
                self.inner.forget_dirs(&to_key);
                let moved = self
                    .inner
                    .rekey_open(&from_key, &from_comps, &to_key, &to_comps);
                Inner::unpin(moved).await;
                self.set_entry(to_parent, to_name, Some(Entry::Dir { ino }))
                    .await?;
                self.set_entry(from_parent, from_name, None).await?;
            }
            Node::File { .. } | Node::Symlink { .. } => {
                let mut attrs = self
                    .inner
                    .attrs_of(&node)
                    .unwrap_or(Attrs::at(0o644, 0, 0, 2, 0));
                attrs.ctime = Timestamp::now().as_nanos();
                let entry = match &node {
                    Node::Symlink { target, .. } => Entry::Symlink {
                        target: target.clone(),
                        attrs,
                    },
                    _ => Entry::File { attrs },
                };
                if let Node::File { .. } = &node {
                    self.copy_then_delete(&from_key, &to_key, shown).await?;
                } else if let Some(Node::File { key, .. }) = &target.node {
                    self.inner
                        .call("rename", to.as_str(), self.inner.store.delete(key))
                        .await?;
                }
                self.inner.unlink_open(&to_key);
                let moved = self
                    .inner
                    .rekey_open(&from_key, &from_comps, &to_key, &to_comps);
                Inner::unpin(moved).await;
                self.set_entry(to_parent, to_name, Some(entry)).await?;
                self.set_entry(from_parent, from_name, None).await?;
            }
        }
        Ok(())
    }

    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        let resolved = self.inner.resolve_checked("symlink", link, false).await?;
        if resolved.node.is_some() || resolved.comps.is_empty() {
            return Err(Self::err(ErrorKind::AlreadyExists, "symlink", link));
        }
        let key = self.inner.key(&resolved.comps)?;
        let tuning = &self.inner.tuning;
        let attrs = Attrs::new(0o777, tuning.uid, tuning.gid, hashed_ino(&key));
        let name = resolved.name().to_owned();
        let target = target.to_owned();
        self.inner
            .update_manifest(resolved.parent(), |manifest| {
                if manifest.entries.contains_key(&name) {
                    return Err(Self::err(ErrorKind::AlreadyExists, "symlink", link));
                }
                manifest.entries.insert(
                    name.clone(),
                    Entry::Symlink {
                        target: target.clone(),
                        attrs,
                    },
                );
                stamp_dir(manifest);
                Ok(true)
            })
            .await
    }

    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        match self.inner.existing("readlink", path, false).await? {
            (_, Node::Symlink { target, .. }) => Ok(target),
            _ => Err(Self::err(ErrorKind::InvalidInput, "readlink", path)),
        }
    }

    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        let _ = new;
        Err(Self::err(ErrorKind::NotPermitted, "link", existing)
            .with_detail("object storage has no hard links"))
    }

    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.change_attrs("chmod", path, |attrs, _| attrs.mode = mode & 0o7777)
            .await
    }

    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.change_attrs("chown", path, |attrs, kind| {
            if let Some(uid) = uid {
                attrs.uid = uid;
            }
            if let Some(gid) = gid {
                attrs.gid = gid;
            }
            // As Linux does: a chown drops setuid, and setgid when group-executable.
            if kind == FileKind::File && (uid.is_some() || gid.is_some()) {
                attrs.mode &= !0o4000;
                if attrs.mode & 0o010 != 0 {
                    attrs.mode &= !0o2000;
                }
            }
        })
        .await
    }

    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        let now = Timestamp::now().as_nanos();
        let pick = |time: SetTime, current: i64| match time {
            SetTime::Omit => current,
            SetTime::Now => now,
            SetTime::At(at) => at.as_nanos(),
        };
        self.change_attrs("utimes", path, |attrs, _| {
            attrs.atime = pick(atime, attrs.atime);
            attrs.mtime = pick(mtime, attrs.mtime);
        })
        .await
    }

    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.inner.existing("statfs", path, true).await?;
        // Object storage has no fixed size; report a large, constant one.
        const BLOCKS: u64 = 1 << 40;
        Ok(StatFs {
            block_size: 4096,
            blocks: BLOCKS,
            blocks_free: BLOCKS,
            blocks_available: BLOCKS,
            files: BLOCKS,
            files_free: BLOCKS,
            name_max: 255,
        })
    }

    async fn read_file(&self, path: &VfsPath) -> Result<Bytes> {
        if let Some(bytes) = self.read_file_directly(path).await? {
            return Ok(bytes);
        }
        let (comps, node) = self.inner.existing("open", path, true).await?;
        let Node::File { key, .. } = node else {
            return Err(Self::err(ErrorKind::IsADirectory, "read", path));
        };
        if let Some(file) = self.inner.open_file(&key) {
            let state = file.state.lock().await;
            // A failed upload left nothing of its own: the store has the truth.
            let content = if state.poisoned.is_some() {
                &Content::Remote {
                    size: 0,
                    etag: None,
                }
            } else {
                &state.content
            };
            match content {
                Content::Buffered(data) => return Ok(Bytes::copy_from_slice(data)),
                Content::Streaming(_) => {
                    return Err(Self::err(ErrorKind::Unsupported, "read", path).with_detail(
                        "the file is being uploaded in parts; it can be read after close",
                    ))
                }
                Content::Remote { .. } => {}
            }
        }
        let (bytes, _) = self
            .inner
            .get_checked(&key, &display(&comps), None, None)
            .await?;
        Ok(bytes)
    }

    async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<()> {
        let resolved = self.inner.resolve_checked("open", path, true).await?;
        let comps = resolved.comps.clone();
        let (is_new, has_entry) = match &resolved.node {
            Some(Node::Dir { .. }) => return Err(Self::err(ErrorKind::IsADirectory, "open", path)),
            Some(Node::Symlink { .. }) => return Err(Self::err(ErrorKind::Loop, "open", path)),
            Some(Node::File { attrs, .. }) => (false, attrs.is_some()),
            None if path.has_trailing_slash() || comps.is_empty() => {
                return Err(Self::err(ErrorKind::IsADirectory, "open", path))
            }
            None => (true, false),
        };
        let key = self.inner.key(&comps)?;
        if let (true, Some((name, parent))) = (is_new, comps.split_last()) {
            self.note_long_name(parent, name).await?;
        }
        let size = data.len() as u64;
        let result = self
            .inner
            .put_object(&key, &display(&comps), data, PutMode::Overwrite)
            .await?;
        if let Some(file) = self.inner.open_file(&key) {
            file.replaced(size, result.e_tag).await;
        }
        let Some((name, parent)) = comps.split_last() else {
            return Ok(());
        };
        if is_new {
            self.inner.touch_dir(parent, false).await?;
        } else if has_entry {
            let name = name.clone();
            self.inner
                .update_manifest(parent, |manifest| match manifest.entries.get_mut(&name) {
                    Some(Entry::File { attrs }) => {
                        let now = Timestamp::now().as_nanos();
                        attrs.mtime = now;
                        attrs.ctime = now;
                        Ok(true)
                    }
                    _ => Ok(false),
                })
                .await?;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}
