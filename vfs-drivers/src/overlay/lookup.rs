//! Path resolution in the merged view.
//!
//! The overlay resolves every path itself, one component at a time, because no layer can:
//! a symlink in one layer may point at a directory that exists only in another, absolute
//! targets start at the overlay's root, and whiteouts and opaque markers decide what a
//! layer may contribute. Each directory on the way is a [`Dir`]: the layers in which it
//! exists as a directory and contributes to the merge, topmost first. A name is then
//! looked up only in those layers ([`OverlayFs::lookup_child`]):
//!
//! - the first layer holding the name gives its kind and metadata;
//! - a non-directory hides everything beneath it;
//! - a directory merges with the directories of the same name beneath it, until a layer
//!   whose directory is opaque, a layer with a whiteout for the name, or a layer where
//!   the name is not a directory;
//! - a layer without the name but with a whiteout for it hides the name below.
//!
//! Since every directory of a resolved path exists as a directory in each of its layers,
//! the path names the same object in each layer: layers are addressed with the overlay's
//! own paths, never rewritten.

use std::sync::Arc;

use vfs_core::{ErrorKind, Metadata, Result, VfsError, VfsPath, MAX_NAME_BYTES, MAX_SYMLINK_HOPS};

use super::whiteout::is_reserved;
use super::{fail, OverlayFs};

/// The index of the upper layer.
pub(crate) const UPPER: usize = 0;

/// Whether an error means the name is not there (in a layer being probed).
pub(crate) fn absent(err: &VfsError) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// An entry as one layer holds it.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    /// The layer index (0 is the upper).
    pub(crate) layer: usize,
    /// The layer's metadata of the entry, inode number untranslated.
    pub(crate) meta: Metadata,
}

/// A directory of the merged view and the layers that contribute to it.
#[derive(Clone, Debug)]
pub(crate) struct Dir {
    /// Its path (no symlinks in it).
    pub(crate) path: VfsPath,
    /// The layers where it is a contributing directory, topmost first; never empty.
    pub(crate) hits: Vec<Hit>,
}

impl Dir {
    /// The contributing layers, topmost first.
    pub(crate) fn layers(&self) -> impl Iterator<Item = usize> + '_ {
        self.hits.iter().map(|hit| hit.layer)
    }

    /// Whether the upper holds this directory.
    pub(crate) fn in_upper(&self) -> bool {
        self.hits.first().is_some_and(|hit| hit.layer == UPPER)
    }
}

/// The merged lookup of one name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lookup {
    /// The layers holding the visible entry, topmost first: one for a non-directory,
    /// every merged layer for a directory, none when the name does not exist.
    pub(crate) hits: Vec<Hit>,
    /// The layer whose whiteout ended the search, if one did.
    pub(crate) whiteout: Option<usize>,
}

impl Lookup {
    /// The visible entry.
    pub(crate) fn top(&self) -> Option<&Hit> {
        self.hits.first()
    }

    /// Whether a lower layer contributes to the entry.
    pub(crate) fn has_lower(&self) -> bool {
        self.hits.iter().any(|hit| hit.layer != UPPER)
    }
}

/// What a walk does with the final component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// Follow a final symlink (`stat`).
    Follow,
    /// Do not follow it, unless the path ends in a slash (`lstat`).
    NoFollow,
    /// Never follow it, and leave the trailing slash to the caller, whose meaning
    /// differs per operation (`unlink`, `mkdir`, `rename`...).
    Parent,
}

/// Where a path leads.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The directories from the root down to the entry's parent; when `name` is `None`,
    /// down to the entry itself.
    pub(crate) chain: Vec<Dir>,
    /// The entry's name in its parent; `None` when the path ends without a name: it is
    /// `/`, or a followed symlink target ended in `.` or `..` (the entry is then the last
    /// directory of `chain`).
    pub(crate) name: Option<String>,
    /// The resolved path of the entry (no symlinks in its directories).
    pub(crate) path: VfsPath,
    /// The entry in the merged view.
    pub(crate) lookup: Lookup,
    /// The entry must be a directory: the path, or the symlink target that supplied the
    /// final name, ended in a slash.
    pub(crate) must_dir: bool,
    /// Symlinks followed so far.
    pub(crate) hops: usize,
    /// The cache generation the resolution started in.
    pub(crate) generation: u64,
}

impl Resolved {
    /// The visible entry, if any.
    pub(crate) fn top(&self) -> Option<&Hit> {
        self.lookup.top()
    }

    /// The parent directory, when the entry has a name.
    pub(crate) fn parent(&self) -> Option<&Dir> {
        match self.name {
            Some(_) => self.chain.last(),
            None => None,
        }
    }

    /// The entry as a directory, if it is one.
    pub(crate) fn as_dir(&self) -> Option<Dir> {
        match &self.name {
            None => self.chain.last().cloned(),
            Some(_) => match self.lookup.top() {
                Some(hit) if hit.meta.is_dir() => Some(Dir {
                    path: self.path.clone(),
                    hits: self.lookup.hits.clone(),
                }),
                _ => None,
            },
        }
    }
}

/// The state of a walk.
struct Walk {
    chain: Vec<Dir>,
    /// Names still to resolve, the next one last.
    pending: Vec<String>,
    must_dir: bool,
    hops: usize,
    /// The cache generation read before the walk's first layer call.
    generation: u64,
}

impl Walk {
    fn push_target(&mut self, target: &str) {
        self.pending.extend(
            target
                .split('/')
                .filter(|name| !name.is_empty())
                .rev()
                .map(str::to_owned),
        );
        if target.starts_with('/') {
            // Absolute targets start again from the overlay's root, kept at index 0.
            self.chain.truncate(1);
        }
    }
}

impl OverlayFs {
    /// The root directory: the upper's root over the lowers' roots down to the first
    /// opaque one. Which lowers contribute is found once, as lowers never change.
    pub(crate) async fn root_dir(&self) -> Result<Dir> {
        let root = VfsPath::root();
        let upper = self.upper.lstat(&root).await?;
        let lowers = self
            .root_lowers
            .get_or_try_init(|| self.find_root_lowers())
            .await?;
        let mut hits = Vec::with_capacity(1 + lowers.len());
        hits.push(Hit {
            layer: UPPER,
            meta: upper,
        });
        hits.extend(lowers.iter().cloned());
        Ok(Dir { path: root, hits })
    }

    async fn find_root_lowers(&self) -> Result<Vec<Hit>> {
        let root = VfsPath::root();
        let mut hits = Vec::new();
        if self.layers.len() > 1 && self.is_opaque(UPPER, &root).await? {
            return Ok(hits);
        }
        for layer in 1..self.layers.len() {
            let meta = self.layer(layer)?.lstat(&root).await?;
            if !meta.is_dir() {
                return Err(VfsError::new(ErrorKind::Io, "lookup")
                    .with_path("/")
                    .with_detail(format!(
                        "the root of lower layer {layer} is not a directory"
                    )));
            }
            hits.push(Hit { layer, meta });
            if layer + 1 < self.layers.len() && self.is_opaque(layer, &root).await? {
                break;
            }
        }
        Ok(hits)
    }

    /// Looks `name` (at `path`, inside `dir`) up in the layers of `dir`.
    pub(crate) async fn lookup_child(
        &self,
        dir: &Dir,
        name: &str,
        path: &VfsPath,
    ) -> Result<Lookup> {
        let layers: Vec<usize> = dir.layers().collect();
        let mut lookup = Lookup::default();
        for (pos, &layer) in layers.iter().enumerate() {
            let below = pos + 1 < layers.len();
            match self.layer(layer)?.lstat(path).await {
                Ok(meta) => {
                    let is_dir = meta.is_dir();
                    if !lookup.hits.is_empty() && !is_dir {
                        // A non-directory beneath a directory is hidden, and so is all
                        // below it.
                        break;
                    }
                    lookup.hits.push(Hit { layer, meta });
                    if !is_dir || !below || self.is_opaque(layer, path).await? {
                        break;
                    }
                }
                Err(err) if absent(&err) => {
                    if !below {
                        break;
                    }
                    if self.has_whiteout(layer, &dir.path, name).await? {
                        lookup.whiteout = Some(layer);
                        break;
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(lookup)
    }

    /// Whether a layer beneath `above` would show something at `name` in `dir` if the
    /// layers down to `above` held nothing there: what decides whether removing or
    /// moving the entry needs a whiteout, or replacing it an opaque directory.
    pub(crate) async fn exists_below(&self, dir: &Dir, name: &str, above: usize) -> Result<bool> {
        let path = dir.path.join(name)?;
        let layers: Vec<usize> = dir.layers().filter(|&layer| layer > above).collect();
        for (pos, &layer) in layers.iter().enumerate() {
            match self.layer(layer)?.lstat(&path).await {
                Ok(_) => return Ok(true),
                Err(err) if absent(&err) => {
                    if pos + 1 < layers.len() && self.has_whiteout(layer, &dir.path, name).await? {
                        return Ok(false);
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }

    /// Resolves `path` (errors name `path` and `op`), for a change: an owned copy.
    pub(crate) async fn walk(
        &self,
        path: &VfsPath,
        want: Want,
        op: &'static str,
    ) -> Result<Resolved> {
        Ok(Arc::unwrap_or_clone(self.resolve(path, want, op).await?))
    }

    /// Resolves `path` (errors name `path` and `op`), from the cache when it can.
    pub(crate) async fn resolve(
        &self,
        path: &VfsPath,
        want: Want,
        op: &'static str,
    ) -> Result<Arc<Resolved>> {
        let trailing = path.has_trailing_slash();
        if let Some(resolved) = self.cache.get_resolved(path.as_str(), trailing, want) {
            return Ok(resolved);
        }
        let resolved = Arc::new(self.walk_uncached(path, want, op).await?);
        self.cache
            .insert_resolved(path.as_str(), trailing, want, &resolved);
        Ok(resolved)
    }

    async fn walk_uncached(
        &self,
        path: &VfsPath,
        want: Want,
        op: &'static str,
    ) -> Result<Resolved> {
        let generation = self.cache.generation();
        let root = match self.cache.get("/", false) {
            Some(cached) => Dir {
                path: VfsPath::root(),
                hits: cached.hits.clone(),
            },
            None => {
                let root = self.root_dir().await?;
                let lookup = Lookup {
                    hits: root.hits.clone(),
                    whiteout: None,
                };
                self.cache.insert("/", generation, Arc::new(lookup));
                root
            }
        };
        let walk = Walk {
            chain: vec![root],
            pending: path.components().rev().map(str::to_owned).collect(),
            must_dir: path.has_trailing_slash(),
            hops: 0,
            generation,
        };
        self.walk_from(walk, want, op, path).await
    }

    /// For `open` with `create`: follows the symlink `target` that `resolved` (a
    /// [`Want::Parent`] resolution) ended on, to the entry it names, which may be missing.
    pub(crate) async fn follow_for_create(
        &self,
        resolved: Resolved,
        target: &str,
        op: &'static str,
        path: &VfsPath,
    ) -> Result<Resolved> {
        let hops = resolved.hops + 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(fail(ErrorKind::Loop, op, path));
        }
        if target.is_empty() {
            return Err(fail(ErrorKind::NotFound, op, path));
        }
        let mut walk = Walk {
            chain: resolved.chain,
            pending: Vec::new(),
            must_dir: target.ends_with('/'),
            hops,
            generation: resolved.generation,
        };
        walk.push_target(target);
        self.walk_from(walk, Want::Parent, op, path).await
    }

    async fn walk_from(
        &self,
        mut walk: Walk,
        want: Want,
        op: &'static str,
        path: &VfsPath,
    ) -> Result<Resolved> {
        loop {
            let Some(name) = walk.pending.pop() else {
                // Ended on a directory without a name: `/`, or a target ending in `.`/`..`.
                // Its metadata may come from the cache: look it up afresh.
                let fresh = self.refresh_last(&mut walk.chain).await?;
                let Some(dir) = walk.chain.last() else {
                    return Err(fail(ErrorKind::Io, op, path).with_detail("empty resolution"));
                };
                let entry = dir.path.clone();
                return Ok(Resolved {
                    chain: walk.chain,
                    name: None,
                    path: entry,
                    lookup: fresh,
                    must_dir: walk.must_dir,
                    hops: walk.hops,
                    generation: walk.generation,
                });
            };
            let last = walk.pending.is_empty();
            match name.as_str() {
                "." => continue,
                ".." => {
                    // `..` of the root is the root, as in a chroot.
                    if walk.chain.len() > 1 {
                        walk.chain.pop();
                    }
                    continue;
                }
                _ => {}
            }
            // Only symlink targets can hold names this long; paths are validated.
            if name.len() > MAX_NAME_BYTES {
                return Err(fail(ErrorKind::NameTooLong, op, path));
            }
            let Some(dir) = walk.chain.last() else {
                return Err(fail(ErrorKind::Io, op, path).with_detail("empty resolution"));
            };
            let child = dir
                .path
                .join(&name)
                .map_err(|err| fail(err.kind(), op, path))?;
            let lookup = if is_reserved(&name) {
                // Whiteouts, markers and temporaries are not entries of the merged view.
                Lookup::default()
            } else if let Some(cached) = self.cache.get(child.as_str(), last) {
                Lookup::clone(&cached)
            } else {
                let lookup = self.lookup_child(dir, &name, &child).await?;
                self.cache
                    .insert(child.as_str(), walk.generation, Arc::new(lookup.clone()));
                lookup
            };
            let Some(top) = lookup.top() else {
                if last {
                    return Ok(Resolved {
                        chain: walk.chain,
                        name: Some(name),
                        path: child,
                        lookup,
                        must_dir: walk.must_dir,
                        hops: walk.hops,
                        generation: walk.generation,
                    });
                }
                return Err(fail(ErrorKind::NotFound, op, path));
            };
            let follow = !last || want == Want::Follow || (want == Want::NoFollow && walk.must_dir);
            if top.meta.is_symlink() && follow {
                walk.hops += 1;
                if walk.hops > MAX_SYMLINK_HOPS {
                    return Err(fail(ErrorKind::Loop, op, path));
                }
                let target = self.layer(top.layer)?.read_link(&child).await?;
                if target.is_empty() {
                    return Err(fail(ErrorKind::NotFound, op, path));
                }
                if last && target.ends_with('/') {
                    walk.must_dir = true;
                }
                walk.push_target(&target);
                continue;
            }
            if !last {
                if !top.meta.is_dir() {
                    return Err(fail(ErrorKind::NotADirectory, op, path));
                }
                walk.chain.push(Dir {
                    path: child,
                    hits: lookup.hits,
                });
                continue;
            }
            if want != Want::Parent && walk.must_dir && !top.meta.is_dir() {
                return Err(fail(ErrorKind::NotADirectory, op, path));
            }
            return Ok(Resolved {
                chain: walk.chain,
                name: Some(name),
                path: child,
                lookup,
                must_dir: walk.must_dir,
                hops: walk.hops,
                generation: walk.generation,
            });
        }
    }

    /// Looks the last directory of `chain` up afresh (its hits may come from the cache,
    /// whose metadata can be stale), updating the chain; returns its lookup.
    async fn refresh_last(&self, chain: &mut [Dir]) -> Result<Lookup> {
        let fresh = match chain {
            [] => Lookup::default(),
            [_root] => Lookup {
                hits: self.root_dir().await?.hits,
                whiteout: None,
            },
            [.., parent, last] => {
                let name = last.path.file_name().unwrap_or_default().to_owned();
                self.lookup_child(parent, &name, &last.path).await?
            }
        };
        if let Some(last) = chain.last_mut() {
            if fresh.top().is_some_and(|top| top.meta.is_dir()) {
                last.hits = fresh.hits.clone();
            }
        }
        Ok(fresh)
    }
}
