//! The inode table: FUSE node ids, what they stand for, the names the kernel knows them
//! by, and how many lookups it holds on each.
//!
//! The filesystems underneath are path-based, so each node keeps the `(parent, name)`
//! links it was reached through; a node's path is rebuilt by walking its first link up
//! to the root, and rename and unlink only touch the links they change, so the paths of
//! a renamed directory's descendants follow without being visited.
//!
//! Node ids come from a counter and are never reused, so a `(node id, generation)` pair
//! can never name two files and the generation stays [`GENERATION`]. A node stands for
//! a [`NodeKey`]: the mount (its id in a mount table, never reused) and the driver's
//! inode number, kept as two fields rather than packed into one. While the kernel holds
//! a lookup on a node, every name of the same key (hard links) answers with that node.

use std::collections::HashMap;

use vfs_core::{ErrorKind, FileKind, Result, VfsError, VfsPath};

/// The root's node id, fixed by the FUSE protocol.
pub(crate) const ROOT: u64 = 1;

/// The generation of every node (node ids are never reused).
pub(crate) const GENERATION: u64 = 0;

/// Which file a node stands for: the mount's scope and the driver's inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NodeKey {
    /// The mount id in a mount table, [`SINGLE_SCOPE`] for a single filesystem,
    /// [`VIRTUAL_SCOPE`] for a mount table's virtual directories.
    pub(crate) scope: u64,
    pub(crate) ino: u64,
}

/// The scope of every inode of a filesystem served on its own.
pub(crate) const SINGLE_SCOPE: u64 = 0;
/// The scope of a mount table's virtual directories (mount ids start at 1 and count up).
pub(crate) const VIRTUAL_SCOPE: u64 = u64::MAX;

struct Node {
    key: Option<NodeKey>,
    kind: FileKind,
    lookups: u64,
    /// The names the kernel reached this node by; the first one makes its path.
    links: Vec<(u64, Box<str>)>,
}

pub(crate) struct NodeTable {
    nodes: HashMap<u64, Node>,
    by_key: HashMap<NodeKey, u64>,
    dentries: HashMap<(u64, Box<str>), u64>,
    next: u64,
}

impl NodeTable {
    pub(crate) fn new() -> NodeTable {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                key: None,
                kind: FileKind::Directory,
                lookups: 1,
                links: Vec::new(),
            },
        );
        NodeTable {
            nodes,
            by_key: HashMap::new(),
            dentries: HashMap::new(),
            next: ROOT + 1,
        }
    }

    /// The path the kernel knows `node` by.
    pub(crate) fn path_of(&self, node: u64) -> Result<VfsPath> {
        let mut names: Vec<&str> = Vec::new();
        let mut current = node;
        while current != ROOT {
            let link = self
                .nodes
                .get(&current)
                .and_then(|node| node.links.first())
                .ok_or_else(|| stale(node))?;
            names.push(&link.1);
            current = link.0;
            if names.len() > vfs_core::MAX_PATH_BYTES / 2 {
                // Only a cycle of links gets here; a path cannot be that deep.
                return Err(stale(node));
            }
        }
        let mut path = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        if path.is_empty() {
            return Ok(VfsPath::root());
        }
        VfsPath::new(&path)
    }

    /// The node the kernel knows as `name` in `parent`, if any.
    pub(crate) fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.dentries.get(&(parent, Box::from(name))).copied()
    }

    /// The parent node of a directory node (the root is its own parent).
    pub(crate) fn parent_of(&self, node: u64) -> u64 {
        self.nodes
            .get(&node)
            .and_then(|node| node.links.first())
            .map_or(ROOT, |link| link.0)
    }

    /// The scope of a node's key, `None` for the root or an unknown node.
    pub(crate) fn scope_of(&self, node: u64) -> Option<u64> {
        self.nodes.get(&node)?.key.map(|key| key.scope)
    }

    /// Whether the kernel still knows `node`.
    #[cfg(test)]
    pub(crate) fn contains(&self, node: u64) -> bool {
        self.nodes.contains_key(&node)
    }

    /// The node for `key`, found as `name` in `parent`, with one more lookup counted
    /// when `count` (an entry reply the kernel will count); the existing node of that key
    /// when there is one of the same kind, else a new one.
    pub(crate) fn remember(
        &mut self,
        parent: u64,
        name: &str,
        key: Option<NodeKey>,
        kind: FileKind,
        count: bool,
    ) -> u64 {
        let existing = key
            .and_then(|key| self.by_key.get(&key).copied())
            .filter(|id| self.nodes.get(id).is_some_and(|node| node.kind == kind));
        let id = match existing {
            Some(id) => id,
            None => {
                let id = self.next;
                self.next += 1;
                self.nodes.insert(
                    id,
                    Node {
                        key,
                        kind,
                        lookups: 0,
                        links: Vec::new(),
                    },
                );
                if let Some(key) = key {
                    // A key of another kind is a reused driver inode number: the new
                    // file takes the key, the old node lives on until forgotten.
                    self.by_key.insert(key, id);
                }
                id
            }
        };
        self.link(parent, name, id);
        if count {
            if let Some(node) = self.nodes.get_mut(&id) {
                node.lookups += 1;
            }
        }
        id
    }

    /// Records that `name` in `parent` is `id`, replacing whatever it named before.
    fn link(&mut self, parent: u64, name: &str, id: u64) {
        let dentry = (parent, Box::<str>::from(name));
        if let Some(previous) = self.dentries.insert(dentry.clone(), id) {
            if previous != id {
                self.drop_link(previous, &dentry);
            }
        }
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if node.links.contains(&dentry) {
            return;
        }
        if node.kind == FileKind::Directory {
            // A directory has one name; the one just seen is it.
            let old: Vec<(u64, Box<str>)> = std::mem::take(&mut node.links);
            node.links.push(dentry);
            for link in old {
                if self.dentries.get(&link) == Some(&id) {
                    self.dentries.remove(&link);
                }
            }
        } else {
            node.links.push(dentry);
        }
    }

    fn drop_link(&mut self, id: u64, dentry: &(u64, Box<str>)) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.links.retain(|link| link != dentry);
        }
    }

    /// The kernel dropped `count` lookups of `id`; at zero the node is gone.
    pub(crate) fn forget(&mut self, id: u64, count: u64) {
        if id == ROOT {
            return;
        }
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(count);
        if node.lookups > 0 {
            return;
        }
        let Some(node) = self.nodes.remove(&id) else {
            return;
        };
        if let Some(key) = node.key {
            if self.by_key.get(&key) == Some(&id) {
                self.by_key.remove(&key);
            }
        }
        for link in node.links {
            if self.dentries.get(&link) == Some(&id) {
                self.dentries.remove(&link);
            }
        }
    }

    /// `name` in `parent` was removed.
    pub(crate) fn unlink(&mut self, parent: u64, name: &str) {
        let dentry = (parent, Box::<str>::from(name));
        if let Some(id) = self.dentries.remove(&dentry) {
            self.drop_link(id, &dentry);
        }
    }

    /// `name` in `parent` was renamed to `new_name` in `new_parent` (or, with `exchange`,
    /// the two swapped).
    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        exchange: bool,
    ) {
        let from = (parent, Box::<str>::from(name));
        let to = (new_parent, Box::<str>::from(new_name));
        let moved = self.dentries.remove(&from);
        let replaced = self.dentries.remove(&to);
        if let Some(id) = moved {
            self.drop_link(id, &from);
        }
        if let Some(id) = replaced {
            self.drop_link(id, &to);
        }
        if let Some(id) = moved {
            self.link(new_parent, new_name, id);
        }
        if exchange {
            if let Some(id) = replaced {
                self.link(parent, name, id);
            }
        }
    }

    /// The known children of `parent`, for invalidating them all.
    pub(crate) fn children(&self, parent: u64) -> Vec<(Box<str>, u64)> {
        self.dentries
            .iter()
            .filter(|((dir, _), _)| *dir == parent)
            .map(|((_, name), id)| (name.clone(), *id))
            .collect()
    }
}

fn stale(node: u64) -> VfsError {
    VfsError::new(ErrorKind::NotFound, "lookup").with_detail(format!(
        "node {node} has no name left (unlinked or forgotten)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> Option<NodeKey> {
        Some(NodeKey {
            scope: SINGLE_SCOPE,
            ino,
        })
    }

    #[test]
    fn hard_links_share_a_node_and_paths_follow_renames() {
        let mut table = NodeTable::new();
        let dir = table.remember(ROOT, "d", key(2), FileKind::Directory, true);
        let file = table.remember(dir, "f", key(3), FileKind::File, true);
        let link = table.remember(ROOT, "g", key(3), FileKind::File, true);
        assert_eq!(file, link);
        assert_eq!(table.path_of(file).unwrap().as_str(), "/d/f");
        table.rename(ROOT, "d", ROOT, "e", false);
        assert_eq!(table.path_of(file).unwrap().as_str(), "/e/f");
        table.unlink(dir, "f");
        assert_eq!(table.path_of(file).unwrap().as_str(), "/g");
        table.unlink(ROOT, "g");
        assert_eq!(table.path_of(file).unwrap_err().code(), "ENOENT");
    }

    #[test]
    fn forget_removes_a_node_only_at_zero_and_ids_are_not_reused() {
        let mut table = NodeTable::new();
        let a = table.remember(ROOT, "a", key(2), FileKind::File, true);
        table.remember(ROOT, "a", key(2), FileKind::File, true);
        table.forget(a, 1);
        assert!(table.contains(a));
        table.forget(a, 1);
        assert!(!table.contains(a));
        let again = table.remember(ROOT, "a", key(2), FileKind::File, true);
        assert_ne!(again, a);
    }

    #[test]
    fn exchange_swaps_names() {
        let mut table = NodeTable::new();
        let a = table.remember(ROOT, "a", key(2), FileKind::File, true);
        let b = table.remember(ROOT, "b", key(3), FileKind::Directory, true);
        table.rename(ROOT, "a", ROOT, "b", true);
        assert_eq!(table.path_of(a).unwrap().as_str(), "/b");
        assert_eq!(table.path_of(b).unwrap().as_str(), "/a");
    }
}
