//! The inode table: FUSE node ids, what they stand for, the names the kernel knows them
//! by, and how many lookups it holds on each.
//!
//! The filesystems underneath are path-based, so each node keeps the `(parent, name)`
//! links it was reached through; a node's path is rebuilt by walking its first link up
//! to the root, and rename and unlink only touch the links they change, so the paths of
//! a renamed directory's descendants follow without being visited.
//!
//! A node stands for a [`NodeKey`]: the mount (its id in a mount table, never reused)
//! and the driver's inode number, kept as two fields rather than packed into one. The
//! node id is also the `st_ino` processes see (fuser sends one number for both), so it
//! must not change while the file lives: the table remembers which id each key got
//! after the kernel forgets the node, and a key looked up again gets the same id back.
//! Hard links, one key under several names, so share one id.
//!
//! A driver that reuses an inode number for a new file (a host filesystem does) makes
//! one key name two files over time. When the key comes back with another kind or
//! another birth time after its node was forgotten, the id stays and the generation
//! goes up, so the kernel can tell the `(id, generation)` pairs apart, as it does for a
//! disk filesystem's reused inode numbers. While the kernel still holds the old file's
//! node, the new file gets an id of its own instead; a file whose last name is being
//! removed counts as gone from the moment the driver is asked (a host filesystem hands
//! the number to another thread's new file before the removal's reply is back).
//!
//! What is remembered after a forget is bounded: at most `remembered` forgotten keys
//! (the oldest forgotten go first; such a key gets a fresh id if it is ever seen
//! again), 100 to 180 bytes each. Keys of files removed through the
//! mount, and of a sub-mount that was unmounted, are dropped at once.

use std::collections::{HashMap, VecDeque};

use vfs_core::{ErrorKind, FileKind, Result, Timestamp, VfsError, VfsPath};

/// The root's node id, fixed by the FUSE protocol.
pub(crate) const ROOT: u64 = 1;

/// The generation of the root and of every key's first node.
pub(crate) const FIRST_GENERATION: u64 = 0;

/// The most one forgotten key costs: its map entry and its slot in the eviction queue,
/// with the slack both keep for growing (the documented bound of
/// `FuseOptions::remembered_inodes` rests on it).
#[cfg(test)]
const REMEMBERED_BYTES_AT_MOST: usize = 180;

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

/// What a lookup saw of a file, to tell a reused driver inode number from the same file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    pub(crate) kind: FileKind,
    /// The epoch when the driver keeps no birth time.
    pub(crate) btime: Timestamp,
    pub(crate) nlink: u64,
}

impl Seen {
    /// Whether `self` and `other` can be the same file.
    fn same_file(&self, other: &Seen) -> bool {
        let known = self.btime != Timestamp::EPOCH && other.btime != Timestamp::EPOCH;
        self.kind == other.kind && !(known && self.btime != other.btime)
    }
}

/// The id a key was given, kept after the kernel forgets its node.
struct Identity {
    id: u64,
    generation: u64,
    kind: FileKind,
    btime: Timestamp,
    /// When the kernel last forgot the node (an increasing count), 0 while it holds it.
    forgotten: u64,
}

struct Node {
    key: Option<NodeKey>,
    kind: FileKind,
    generation: u64,
    lookups: u64,
    /// The link count the last lookup saw, to know when removing a name removes the file.
    nlink: u64,
    /// Its last name was removed through the mount: once forgotten its key is dropped.
    removed: bool,
    /// Removals of its last name under way in the driver. Once the driver has removed
    /// it, the driver may hand its inode number to a new file before the removal's
    /// reply updates this table, so meanwhile the key names a new file, never this one.
    dying: u32,
    /// The names the kernel reached this node by; the first one makes its path.
    links: Vec<(u64, Box<str>)>,
}

impl Node {
    fn new(key: Option<NodeKey>, generation: u64, seen: &Seen) -> Node {
        Node {
            key,
            kind: seen.kind,
            generation,
            lookups: 0,
            nlink: seen.nlink,
            removed: false,
            dying: 0,
            links: Vec::new(),
        }
    }
}

pub(crate) struct NodeTable {
    nodes: HashMap<u64, Node>,
    identities: HashMap<NodeKey, Identity>,
    /// Forgotten keys, oldest first, each with the count of its forget; an entry whose
    /// count no longer matches its identity's is stale and skipped.
    forgotten: VecDeque<(NodeKey, u64)>,
    forgets: u64,
    /// How many forgotten keys are kept at most.
    remembered: usize,
    dentries: HashMap<(u64, Box<str>), u64>,
    next: u64,
}

impl NodeTable {
    /// A table holding the root, keeping up to `remembered` forgotten keys' ids.
    pub(crate) fn new(remembered: usize) -> NodeTable {
        let mut nodes = HashMap::new();
        let root = Seen {
            kind: FileKind::Directory,
            btime: Timestamp::EPOCH,
            nlink: 2,
        };
        let mut root = Node::new(None, FIRST_GENERATION, &root);
        root.lookups = 1;
        nodes.insert(ROOT, root);
        NodeTable {
            nodes,
            identities: HashMap::new(),
            forgotten: VecDeque::new(),
            forgets: 0,
            remembered,
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

    /// The generation the kernel knows `node` by.
    pub(crate) fn generation_of(&self, node: u64) -> u64 {
        self.nodes
            .get(&node)
            .map_or(FIRST_GENERATION, |node| node.generation)
    }

    /// Whether the kernel still knows `node`.
    #[cfg(test)]
    pub(crate) fn contains(&self, node: u64) -> bool {
        self.nodes.contains_key(&node)
    }

    /// The node for `key` (the file `seen`), found as `name` in `parent`, with one more
    /// lookup counted (an entry reply the kernel counts): the id and generation to
    /// answer with. The id `key` had before, unless the kernel still holds that id for
    /// another file; the generation goes up when `seen` is not the file the id last
    /// stood for.
    pub(crate) fn remember(
        &mut self,
        parent: u64,
        name: &str,
        key: Option<NodeKey>,
        seen: Seen,
    ) -> (u64, u64) {
        let (id, generation) = match key {
            Some(key) => self.identify(key, &seen),
            None => {
                let id = self.fresh_id();
                self.nodes
                    .insert(id, Node::new(None, FIRST_GENERATION, &seen));
                (id, FIRST_GENERATION)
            }
        };
        self.link(parent, name, id);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.lookups += 1;
            node.nlink = seen.nlink;
        }
        (id, generation)
    }

    /// The live node of `key`, made (again) if the kernel holds none.
    fn identify(&mut self, key: NodeKey, seen: &Seen) -> (u64, u64) {
        if let Some(identity) = self.identities.get_mut(&key) {
            let current = Seen {
                kind: identity.kind,
                btime: identity.btime,
                nlink: 0,
            };
            match self.nodes.get(&identity.id) {
                // A directory's birth time may change under one key (an overlay's merged
                // directory once copied up), and the kernel cannot take a second node
                // for a directory it holds; a reused number of a directory still held
                // is served as that directory, as before its reuse.
                Some(node)
                    if !node.removed
                        && node.dying == 0
                        && node.kind == seen.kind
                        && (seen.kind == FileKind::Directory || current.same_file(seen)) =>
                {
                    return (identity.id, node.generation);
                }
                // The kernel holds the id for another file: this one needs its own.
                Some(_) => {}
                None => {
                    if !current.same_file(seen) {
                        identity.generation += 1;
                    }
                    identity.kind = seen.kind;
                    identity.btime = seen.btime;
                    identity.forgotten = 0;
                    let (id, generation) = (identity.id, identity.generation);
                    self.nodes
                        .insert(id, Node::new(Some(key), generation, seen));
                    return (id, generation);
                }
            }
        }
        let id = self.fresh_id();
        self.identities.insert(
            key,
            Identity {
                id,
                generation: FIRST_GENERATION,
                kind: seen.kind,
                btime: seen.btime,
                forgotten: 0,
            },
        );
        self.nodes
            .insert(id, Node::new(Some(key), FIRST_GENERATION, seen));
        (id, FIRST_GENERATION)
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        id
    }

    /// The id a listing shows for `key` before any lookup: the one it has or had, or a
    /// new one kept for it, so `d_ino` and a later `st_ino` agree.
    pub(crate) fn listed_id(&mut self, key: NodeKey, kind: FileKind) -> u64 {
        if let Some(identity) = self.identities.get(&key) {
            return identity.id;
        }
        let id = self.fresh_id();
        self.forgets += 1;
        self.identities.insert(
            key,
            Identity {
                id,
                generation: FIRST_GENERATION,
                kind,
                btime: Timestamp::EPOCH,
                forgotten: self.forgets,
            },
        );
        self.queue_forgotten(key);
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

    /// The kernel dropped `count` lookups of `id`; at zero the node is gone, and its
    /// key's id is remembered for when the file is looked up again (unless it was
    /// removed).
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
        for link in node.links {
            if self.dentries.get(&link) == Some(&id) {
                self.dentries.remove(&link);
            }
        }
        let Some(key) = node.key else {
            return;
        };
        let Some(identity) = self.identities.get_mut(&key) else {
            return;
        };
        // A reused number may have moved the key on to a newer node.
        if identity.id != id {
            return;
        }
        if node.removed {
            self.identities.remove(&key);
            return;
        }
        self.forgets += 1;
        identity.forgotten = self.forgets;
        self.queue_forgotten(key);
    }

    /// Queues `key`, just forgotten, and lets go of the oldest forgotten keys past the
    /// bound.
    fn queue_forgotten(&mut self, key: NodeKey) {
        self.forgotten.push_back((key, self.forgets));
        while self.forgotten.len() > self.remembered {
            let Some((old, when)) = self.forgotten.pop_front() else {
                break;
            };
            if self
                .identities
                .get(&old)
                .is_some_and(|identity| identity.forgotten == when)
            {
                self.identities.remove(&old);
            }
        }
    }

    /// The kernel no longer knows `name` in `parent` (the file itself may live on).
    pub(crate) fn unlink(&mut self, parent: u64, name: &str) {
        let dentry = (parent, Box::<str>::from(name));
        if let Some(id) = self.dentries.remove(&dentry) {
            self.drop_link(id, &dentry);
        }
    }

    /// `name` in `parent` was removed through the mount. When that was the file's last
    /// name (as far as the last lookup saw), its key is dropped once the kernel
    /// forgets it: nothing can look it up again.
    pub(crate) fn removed(&mut self, parent: u64, name: &str) {
        let dentry = (parent, Box::<str>::from(name));
        let Some(id) = self.dentries.remove(&dentry) else {
            return;
        };
        self.drop_link(id, &dentry);
        if let Some(node) = self.nodes.get_mut(&id) {
            if node.links.is_empty() && (node.kind == FileKind::Directory || node.nlink <= 1) {
                node.removed = true;
            }
        }
    }

    /// The driver is about to remove `name` in `parent`: if that is its node's last
    /// name, the node is marked dying until [`NodeTable::removal_done`], and its id is
    /// returned for that call.
    pub(crate) fn removing(&mut self, parent: u64, name: &str) -> Option<u64> {
        let dentry = (parent, Box::<str>::from(name));
        let id = *self.dentries.get(&dentry)?;
        let node = self.nodes.get_mut(&id)?;
        let last = node.links.len() == 1 && node.links[0] == dentry;
        if !last || !(node.kind == FileKind::Directory || node.nlink <= 1) {
            return None;
        }
        node.dying += 1;
        Some(id)
    }

    /// The removal [`NodeTable::removing`] announced has finished, done or not.
    pub(crate) fn removal_done(&mut self, dying: Option<u64>) {
        if let Some(node) = dying.and_then(|id| self.nodes.get_mut(&id)) {
            node.dying = node.dying.saturating_sub(1);
        }
    }

    /// A sub-mount went away: its forgotten keys can never be looked up again (mount
    /// ids are never reused). Keys the kernel still holds go when it forgets them.
    pub(crate) fn drop_scope(&mut self, scope: u64) {
        let nodes = &self.nodes;
        self.identities
            .retain(|key, identity| key.scope != scope || nodes.contains_key(&identity.id));
        let identities = &self.identities;
        self.forgotten
            .retain(|(key, _)| identities.contains_key(key));
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

    fn seen(kind: FileKind, btime: i64) -> Seen {
        Seen {
            kind,
            btime: Timestamp(btime),
            nlink: 1,
        }
    }

    fn a_file() -> Seen {
        seen(FileKind::File, 5)
    }

    fn a_dir() -> Seen {
        seen(FileKind::Directory, 5)
    }

    #[test]
    fn hard_links_share_a_node_and_paths_follow_renames() {
        let mut table = NodeTable::new(16);
        let (dir, _) = table.remember(ROOT, "d", key(2), a_dir());
        let (file, _) = table.remember(dir, "f", key(3), a_file());
        let (link, _) = table.remember(ROOT, "g", key(3), a_file());
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
    fn a_forgotten_file_comes_back_with_its_id_and_generation() {
        let mut table = NodeTable::new(16);
        let (a, generation) = table.remember(ROOT, "a", key(2), a_file());
        table.remember(ROOT, "a", key(2), a_file());
        table.forget(a, 1);
        assert!(table.contains(a));
        table.forget(a, 1);
        assert!(!table.contains(a));
        assert_eq!(table.child(ROOT, "a"), None);
        let (b, _) = table.remember(ROOT, "b", key(3), a_file());
        assert_ne!(b, a);
        // A hard link found first by its other name is still the same file.
        assert_eq!(table.remember(ROOT, "c", key(2), a_file()), (a, generation));
        assert_eq!(table.path_of(a).unwrap().as_str(), "/c");
    }

    #[test]
    fn a_reused_number_keeps_the_id_with_a_new_generation_once_forgotten() {
        let mut table = NodeTable::new(16);
        let (a, generation) = table.remember(ROOT, "a", key(2), a_file());
        table.forget(a, 1);
        // Born later: another file under the same driver inode number.
        assert_eq!(
            table.remember(ROOT, "a", key(2), seen(FileKind::File, 9)),
            (a, generation + 1)
        );
        table.forget(a, 1);
        // And another kind.
        let (id, next) = table.remember(ROOT, "a", key(2), a_dir());
        assert_eq!((id, next), (a, generation + 2));
        assert_eq!(table.generation_of(a), generation + 2);
        // Drivers without birth times: the kind alone tells.
        table.forget(a, 1);
        assert_eq!(
            table.remember(ROOT, "a", key(2), seen(FileKind::Directory, 0)),
            (a, generation + 2)
        );
    }

    #[test]
    fn a_reused_number_of_a_file_still_held_gets_a_new_id() {
        let mut table = NodeTable::new(16);
        let (old, _) = table.remember(ROOT, "old", key(2), a_file());
        table.unlink(ROOT, "old");
        let (new, generation) = table.remember(ROOT, "new", key(2), seen(FileKind::File, 9));
        assert_ne!(new, old);
        assert_eq!(generation, FIRST_GENERATION);
        // The old node going does not take the new file's id with it.
        table.forget(old, 1);
        table.forget(new, 1);
        assert_eq!(
            table
                .remember(ROOT, "new", key(2), seen(FileKind::File, 9))
                .0,
            new
        );
    }

    #[test]
    fn a_number_reused_while_its_file_is_being_removed_names_the_new_file() {
        let mut table = NodeTable::new(16);
        let (old, _) = table.remember(ROOT, "old", key(2), a_dir());
        let dying = table.removing(ROOT, "old");
        assert_eq!(dying, Some(old));
        // The driver removed it and gave its number to a new directory elsewhere,
        // before the removal's reply came back.
        let (new, _) = table.remember(ROOT, "new", key(2), a_dir());
        assert_ne!(new, old);
        table.removed(ROOT, "old");
        table.removal_done(dying);
        assert_eq!(table.path_of(new).unwrap().as_str(), "/new");
        // A removal that failed leaves the node as it was.
        let (kept, _) = table.remember(ROOT, "kept", key(3), a_dir());
        let dying = table.removing(ROOT, "kept");
        table.removal_done(dying);
        assert_eq!(table.remember(ROOT, "kept", key(3), a_dir()).0, kept);
        // A removed file still held is not what a new file of its number is.
        let (gone, _) = table.remember(ROOT, "gone", key(4), a_file());
        table.removed(ROOT, "gone");
        assert_ne!(table.remember(ROOT, "again", key(4), a_file()).0, gone);
        // Removing one of two names kills nothing.
        table.remember(
            ROOT,
            "x",
            key(5),
            Seen {
                nlink: 2,
                ..a_file()
            },
        );
        assert_eq!(table.removing(ROOT, "x"), None);
    }

    #[test]
    fn a_directory_held_keeps_its_id_when_its_birth_time_changes() {
        let mut table = NodeTable::new(16);
        let (d, _) = table.remember(ROOT, "d", key(2), a_dir());
        let (again, _) = table.remember(ROOT, "d", key(2), seen(FileKind::Directory, 9));
        assert_eq!(again, d);
    }

    #[test]
    fn removed_files_and_the_oldest_forgotten_past_the_bound_are_let_go() {
        let mut table = NodeTable::new(2);
        let ids: Vec<u64> = (10..14)
            .map(|ino| {
                let (id, _) = table.remember(ROOT, &ino.to_string(), key(ino), a_file());
                table.forget(id, 1);
                id
            })
            .collect();
        assert_eq!(table.identities.len(), 2);
        // The two forgotten last are kept, the first two get fresh ids.
        assert_eq!(table.remember(ROOT, "13", key(13), a_file()).0, ids[3]);
        assert_eq!(table.remember(ROOT, "12", key(12), a_file()).0, ids[2]);
        assert!(!ids.contains(&table.remember(ROOT, "10", key(10), a_file()).0));

        let mut table = NodeTable::new(16);
        let (gone, _) = table.remember(ROOT, "gone", key(20), a_file());
        table.removed(ROOT, "gone");
        table.forget(gone, 1);
        assert!(table.identities.is_empty());
        // One of two hard links removed: the file lives on under its other name.
        let (kept, _) = table.remember(ROOT, "x", key(21), seen(FileKind::File, 5));
        table.remember(
            ROOT,
            "y",
            key(21),
            Seen {
                nlink: 2,
                ..a_file()
            },
        );
        table.removed(ROOT, "x");
        table.forget(kept, 2);
        assert_eq!(table.remember(ROOT, "y", key(21), a_file()).0, kept);
    }

    #[test]
    fn listing_ids_match_later_lookups_and_dropped_scopes_go() {
        let mut table = NodeTable::new(16);
        let mounted = NodeKey { scope: 7, ino: 2 };
        let listed = table.listed_id(mounted, FileKind::File);
        assert_eq!(table.remember(ROOT, "f", Some(mounted), a_file()).0, listed);
        table.forget(listed, 1);
        table.drop_scope(7);
        assert!(table.identities.is_empty() && table.forgotten.is_empty());
    }

    #[test]
    fn a_forgotten_key_costs_what_the_docs_say() {
        // A map entry with its control byte, and a queue slot, at the worst load each
        // (just after growing: the map half of 7/8 full, the queue half full).
        let entry = std::mem::size_of::<(NodeKey, Identity)>() + 1;
        let slot = std::mem::size_of::<(NodeKey, u64)>();
        assert!(entry * 16 / 7 + slot * 2 <= REMEMBERED_BYTES_AT_MOST);
    }

    #[test]
    fn exchange_swaps_names() {
        let mut table = NodeTable::new(16);
        let (a, _) = table.remember(ROOT, "a", key(2), a_file());
        let (b, _) = table.remember(ROOT, "b", key(3), a_dir());
        table.rename(ROOT, "a", ROOT, "b", true);
        assert_eq!(table.path_of(a).unwrap().as_str(), "/b");
        assert_eq!(table.path_of(b).unwrap().as_str(), "/a");
    }
}
