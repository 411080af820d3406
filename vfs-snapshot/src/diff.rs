//! Comparing two snapshots by digest.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use vfs_core::{FileSystem, Result, VfsPath};

use crate::digest::{Digest, SnapshotId};
use crate::snapshot::SnapshotOptions;
use crate::store::Repository;
use crate::tree::{Node, Tree};

/// How a path differs between two snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Only in the second snapshot (for a directory: its content is not listed).
    Added,
    /// Only in the first snapshot (likewise).
    Removed,
    /// Same kind, different content (file chunks, symlink target, device number).
    Modified,
    /// A different kind of object at the same path (file became directory, ...).
    TypeChanged,
    /// Same content, different mode, owner, mtime, xattrs or hard-link identity.
    MetadataChanged,
}

impl ChangeKind {
    /// The name the actions, the CLI's JSON and agentOS-style hosts use: `added`,
    /// `removed`, `modified`, `typeChanged`, `metadataChanged`.
    ///
    /// ```
    /// assert_eq!(vfs_snapshot::ChangeKind::TypeChanged.name(), "typeChanged");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
            ChangeKind::TypeChanged => "typeChanged",
            ChangeKind::MetadataChanged => "metadataChanged",
        }
    }
}

/// One difference: the path (absolute within the snapshot, `/` for its root) and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// Where, with a leading `/`.
    pub path: String,
    /// How.
    pub kind: ChangeKind,
}

fn child_path(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl Repository {
    /// The differences from snapshot `a` to snapshot `b`, in canonical path order.
    /// Subtrees with equal digests are skipped without being read, so the cost follows
    /// the size of the change, not of the tree.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository, a: vfs_snapshot::SnapshotId, b: vfs_snapshot::SnapshotId) -> vfs_core::Result<()> {
    /// for change in repo.diff(&a, &b).await? {
    ///     println!("{:?} {}", change.kind, change.path);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn diff(&self, a: &SnapshotId, b: &SnapshotId) -> Result<Vec<Change>> {
        self.diff_trees(a, b, None).await
    }

    /// The differences from snapshot `a` to the live tree at `path` of `fs`, as
    /// [`Repository::diff`] reports them (`Added` = only in the live tree).
    ///
    /// The live tree is walked and hashed exactly as [`Repository::snapshot`] would with
    /// the same `options` (so use the snapshot's `normalize` and `device_roots`), but
    /// nothing is stored. With the `stat_cache` the snapshot was taken with, unchanged
    /// files are not read at all, only listed and stat'ed; equal subtrees are then
    /// skipped by digest. Changed files are read once to hash them.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository, id: vfs_snapshot::SnapshotId, fs: &dyn vfs_core::FileSystem) -> vfs_core::Result<()> {
    /// let changes = repo.diff_live(&id, fs, &vfs_core::VfsPath::root(), &Default::default()).await?;
    /// println!("{} paths changed since the snapshot", changes.len());
    /// # Ok(()) }
    /// ```
    pub async fn diff_live(
        &self,
        a: &SnapshotId,
        fs: &dyn FileSystem,
        path: &VfsPath,
        options: &SnapshotOptions,
    ) -> Result<Vec<Change>> {
        let live = Mutex::new(HashMap::new());
        let (b, _) = self.capture(fs, path, options, Some(&live)).await?;
        let live = live.into_inner();
        self.diff_trees(a, &b, Some(&live)).await
    }

    /// The shared comparison; trees of `b` come from `live` when given (a live tree that
    /// was hashed, not stored), else from the store.
    async fn diff_trees(
        &self,
        a: &SnapshotId,
        b: &SnapshotId,
        live: Option<&HashMap<Digest, Tree>>,
    ) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        // (path, tree in a, tree in b); a stack, so deep trees need no recursion.
        let mut pending: Vec<(String, Digest, Digest)> = vec![("/".to_owned(), *a, *b)];
        while let Some((path, ta, tb)) = pending.pop() {
            if ta == tb {
                continue;
            }
            let old = self.read_tree(&ta).await?;
            let new = match live.and_then(|live| live.get(&tb)) {
                Some(tree) => tree.clone(),
                None => self.read_tree(&tb).await?,
            };
            if old.attrs != new.attrs {
                changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::MetadataChanged,
                });
            }
            let mut merged: BTreeMap<&str, (Option<&Node>, Option<&Node>)> = BTreeMap::new();
            for e in &old.entries {
                merged.entry(e.name.as_str()).or_default().0 = Some(&e.node);
            }
            for e in &new.entries {
                merged.entry(e.name.as_str()).or_default().1 = Some(&e.node);
            }
            let mut subdirs = Vec::new();
            for (name, pair) in merged {
                let at = child_path(&path, name);
                let kind = match pair {
                    (Some(_), None) => Some(ChangeKind::Removed),
                    (None, Some(_)) => Some(ChangeKind::Added),
                    (Some(x), Some(y)) if x.kind() != y.kind() => Some(ChangeKind::TypeChanged),
                    (Some(Node::Directory { tree: x }), Some(Node::Directory { tree: y })) => {
                        if x != y {
                            subdirs.push((at.clone(), *x, *y));
                        }
                        None
                    }
                    (Some(x), Some(y)) => compare_leaves(x, y),
                    (None, None) => None,
                };
                if let Some(kind) = kind {
                    changes.push(Change { path: at, kind });
                }
            }
            // Reversed onto the stack so subdirectories come out in name order.
            pending.extend(subdirs.into_iter().rev());
        }
        changes.sort_by(|x, y| x.path.as_bytes().cmp(y.path.as_bytes()));
        Ok(changes)
    }
}

fn compare_leaves(x: &Node, y: &Node) -> Option<ChangeKind> {
    match (x, y) {
        (
            Node::File {
                attrs: ax,
                chunks: cx,
                hardlink: hx,
                ..
            },
            Node::File {
                attrs: ay,
                chunks: cy,
                hardlink: hy,
                ..
            },
        ) => {
            if cx != cy {
                Some(ChangeKind::Modified)
            } else if ax != ay || hx != hy {
                Some(ChangeKind::MetadataChanged)
            } else {
                None
            }
        }
        (
            Node::Symlink {
                attrs: ax,
                target: tx,
            },
            Node::Symlink {
                attrs: ay,
                target: ty,
            },
        ) => {
            if tx != ty {
                Some(ChangeKind::Modified)
            } else if ax != ay {
                Some(ChangeKind::MetadataChanged)
            } else {
                None
            }
        }
        (
            Node::Special {
                attrs: ax,
                rdev: rx,
                hardlink: hx,
                ..
            },
            Node::Special {
                attrs: ay,
                rdev: ry,
                hardlink: hy,
                ..
            },
        ) => {
            if rx != ry {
                Some(ChangeKind::Modified)
            } else if ax != ay || hx != hy {
                Some(ChangeKind::MetadataChanged)
            } else {
                None
            }
        }
        _ => (x != y).then_some(ChangeKind::Modified),
    }
}
