//! Path resolution: from a validated path to an inode, or to the directory and name an
//! operation creates or removes.
//!
//! The fast path walks the components of the already-normalized path without allocating
//! and takes each directory's read lock only for the one lookup in it. The first symlink
//! on the way sends the whole resolution to the general walker, which keeps a stack of
//! pending names so that symlink targets (which may hold `.` and `..`) splice in.

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;

use vfs_core::{ErrorKind, Result, VfsPath, MAX_NAME_BYTES, MAX_SYMLINK_HOPS};

use super::inode::Inode;
use super::{fail, MemoryFs};

/// An inode the resolution either borrowed (the root: no reference count traffic on the
/// inode every lookup starts from) or took a reference to.
pub(crate) enum NodeRef<'a> {
    Borrowed(&'a Arc<Inode>),
    Owned(Arc<Inode>),
}

impl Deref for NodeRef<'_> {
    type Target = Arc<Inode>;

    fn deref(&self) -> &Arc<Inode> {
        match self {
            NodeRef::Borrowed(node) => node,
            NodeRef::Owned(node) => node,
        }
    }
}

/// Where a path that names an entry to create or remove leads.
pub(crate) enum Resolved<'a> {
    /// The path ends in no name of a directory: it is `/`, or a followed symlink target
    /// ended in `.`, `..` or `/`. Linux's `LAST_ROOT`/`LAST_DOT`/`LAST_DOTDOT` cases.
    Node(NodeRef<'a>),
    /// The entry `name` of the directory `dir` (which may or may not exist).
    Entry {
        dir: NodeRef<'a>,
        name: Cow<'a, str>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Follow,
    NoFollow,
    Parent,
}

/// Directory locks the fast walk holds at once before it falls back to references, so
/// that a deep path cannot recurse deep.
const HELD_LOCKS: usize = 16;

/// What the fast walk did: finished, or met a symlink and hands `f` back so the general
/// walker can run it (after every lock the fast walk took has been released).
enum Walked<R, F> {
    Done(Result<R>),
    Slow(F),
}

/// The names of a normalized path, first to last: what `VfsPath::components` gives, with
/// a cheap "is this the last one" and without the generic iterator adapters, whose
/// overhead is a measurable part of a lookup.
struct Names<'p> {
    rest: &'p str,
}

impl<'p> Names<'p> {
    fn new(path: &'p VfsPath) -> Names<'p> {
        let normalized = path.as_str();
        Names {
            rest: normalized.strip_prefix('/').unwrap_or(normalized),
        }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn next(&mut self) -> Option<&'p str> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.split_once('/') {
            Some((name, rest)) => {
                self.rest = rest;
                Some(name)
            }
            None => Some(std::mem::take(&mut self.rest)),
        }
    }
}

/// The fast walk of one path.
struct Fast<'p> {
    path: &'p VfsPath,
    follow: bool,
    op: &'static str,
}

impl Fast<'_> {
    fn fail<R, F>(&self, kind: ErrorKind) -> Walked<R, F> {
        Walked::Done(Err(fail(kind, self.op, self.path)))
    }

    /// Looks up the next name in `dir`, holding `dir`'s read lock while it goes on down.
    fn descend<R, F>(
        &self,
        dir: &Arc<Inode>,
        names: &mut Names<'_>,
        held: usize,
        f: F,
    ) -> Walked<R, F>
    where
        F: FnOnce(&Arc<Inode>) -> Result<R>,
    {
        let Some(name) = names.next() else {
            return Walked::Done(f(dir));
        };
        let Some(lock) = dir.dir() else {
            return self.fail(ErrorKind::NotADirectory);
        };
        let entries = lock.read();
        let Some(child) = entries.entries.get(name) else {
            return self.fail(ErrorKind::NotFound);
        };
        if names.is_empty() {
            return self.last(child, f);
        }
        if child.symlink_target().is_some() {
            return Walked::Slow(f);
        }
        if held + 1 < HELD_LOCKS {
            return self.descend(child, names, held + 1, f);
        }
        let child = Arc::clone(child);
        drop(entries);
        self.descend_owned(child, names, f)
    }

    /// The rest of a deep walk, one lock and one reference at a time.
    fn descend_owned<R, F>(&self, mut cur: Arc<Inode>, names: &mut Names<'_>, f: F) -> Walked<R, F>
    where
        F: FnOnce(&Arc<Inode>) -> Result<R>,
    {
        while let Some(name) = names.next() {
            let Some(lock) = cur.dir() else {
                return self.fail(ErrorKind::NotADirectory);
            };
            let entries = lock.read();
            let Some(child) = entries.entries.get(name) else {
                return self.fail(ErrorKind::NotFound);
            };
            if names.is_empty() {
                return self.last(child, f);
            }
            if child.symlink_target().is_some() {
                return Walked::Slow(f);
            }
            let child = Arc::clone(child);
            drop(entries);
            cur = child;
        }
        Walked::Done(f(&cur))
    }

    /// The final name found `child`.
    fn last<R, F>(&self, child: &Arc<Inode>, f: F) -> Walked<R, F>
    where
        F: FnOnce(&Arc<Inode>) -> Result<R>,
    {
        let trailing = self.path.has_trailing_slash();
        if child.symlink_target().is_some() && (self.follow || trailing) {
            return Walked::Slow(f);
        }
        if trailing && !child.is_dir() {
            return self.fail(ErrorKind::NotADirectory);
        }
        Walked::Done(f(child))
    }
}

/// The state of the general walker.
struct Walk<'a> {
    /// Names still to resolve, the next one last.
    pending: Vec<Cow<'a, str>>,
    /// The result must be a directory: the path had a trailing slash, or the symlink
    /// that supplied the final name had one.
    must_dir: bool,
    hops: usize,
    /// The names of the directories walked through, for `realpath`.
    trail: Option<Vec<Cow<'a, str>>>,
}

impl<'a> Walk<'a> {
    fn push_target(&mut self, target: &str) {
        self.pending.extend(
            target
                .split('/')
                .filter(|name| !name.is_empty())
                .rev()
                .map(|name| Cow::Owned(name.to_owned())),
        );
    }
}

impl MemoryFs {
    /// Runs `f` on the inode `path` names, following a final symlink if `follow` (a
    /// trailing slash always follows and requires a directory).
    ///
    /// When no symlink is on the way, the walk holds the read lock of each directory it
    /// passes through until `f` returns instead of taking a reference to each one:
    /// that costs no reference count traffic, the dearest part of a lookup. `f` must
    /// therefore not lock any of those directories again. Read locks are taken parent
    /// before child like every other lock here, so holding them cannot deadlock.
    pub(crate) fn with_node<R>(
        &self,
        path: &VfsPath,
        follow: bool,
        op: &'static str,
        f: impl FnOnce(&Arc<Inode>) -> Result<R>,
    ) -> Result<R> {
        let mut names = Names::new(path);
        if names.is_empty() {
            return f(&self.root);
        }
        let walk = Fast { path, follow, op };
        match walk.descend(&self.root, &mut names, 0, f) {
            Walked::Done(result) => result,
            Walked::Slow(f) => {
                let want = if follow { Want::Follow } else { Want::NoFollow };
                match self.walk_path(path, want, op)? {
                    Resolved::Node(node) => f(&node),
                    // `walk_path` gives entries only for `Want::Parent`.
                    Resolved::Entry { .. } => Err(fail(ErrorKind::Io, op, path)),
                }
            }
        }
    }

    /// The inode `path` names (see [`MemoryFs::with_node`]).
    pub(crate) fn lookup(
        &self,
        path: &VfsPath,
        follow: bool,
        op: &'static str,
    ) -> Result<Arc<Inode>> {
        self.with_node(path, follow, op, |node| Ok(Arc::clone(node)))
    }

    /// The directory and name that `path` creates or removes, its final component never
    /// followed. The caller handles `path`'s trailing slash, whose meaning differs per
    /// operation.
    pub(crate) fn parent_of<'a>(
        &'a self,
        path: &'a VfsPath,
        op: &'static str,
    ) -> Result<Resolved<'a>> {
        let Some(name) = path.file_name() else {
            return Ok(Resolved::Node(NodeRef::Borrowed(&self.root)));
        };
        let mut cur = NodeRef::Borrowed(&self.root);
        let mut names = path.components();
        names.next_back();
        for component in names {
            let Some(dir) = cur.dir() else {
                return Err(fail(ErrorKind::NotADirectory, op, path));
            };
            let entries = dir.read();
            let Some(child) = entries.entries.get(component) else {
                return Err(fail(ErrorKind::NotFound, op, path));
            };
            if child.symlink_target().is_some() {
                drop(entries);
                return self.walk_path(path, Want::Parent, op);
            }
            let child = Arc::clone(child);
            drop(entries);
            cur = NodeRef::Owned(child);
        }
        if cur.dir().is_none() {
            return Err(fail(ErrorKind::NotADirectory, op, path));
        }
        Ok(Resolved::Entry {
            dir: cur,
            name: Cow::Borrowed(name),
        })
    }

    /// Follows the symlink `target` found in `dir` for `open` with `create`, which creates
    /// a missing target: the directory and name the target leads to. `hops` carries the
    /// count of symlinks followed so far across calls.
    pub(crate) fn follow_for_create<'a>(
        &'a self,
        dir: NodeRef<'a>,
        target: &str,
        hops: &mut usize,
        op: &'static str,
        path: &VfsPath,
    ) -> Result<Resolved<'a>> {
        *hops += 1;
        if *hops > MAX_SYMLINK_HOPS {
            return Err(fail(ErrorKind::Loop, op, path));
        }
        let mut walk = Walk {
            pending: Vec::new(),
            must_dir: false,
            hops: *hops,
            trail: None,
        };
        walk.push_target(target);
        let start = if target.starts_with('/') {
            NodeRef::Borrowed(&self.root)
        } else {
            dir
        };
        let resolved = self.walk(start, &mut walk, Want::Parent, op, path);
        *hops = walk.hops;
        resolved
    }

    /// The canonical path: every symlink resolved, `.` and `..` applied physically.
    pub(crate) fn canonical(&self, path: &VfsPath) -> Result<VfsPath> {
        const OP: &str = "realpath";
        let mut walk = Walk {
            pending: path.components().rev().map(Cow::Borrowed).collect(),
            must_dir: path.has_trailing_slash(),
            hops: 0,
            trail: Some(Vec::new()),
        };
        self.walk(
            NodeRef::Borrowed(&self.root),
            &mut walk,
            Want::Follow,
            OP,
            path,
        )?;
        let mut canonical = String::with_capacity(path.as_str().len());
        for name in walk.trail.iter().flatten() {
            canonical.push('/');
            canonical.push_str(name);
        }
        if canonical.is_empty() {
            return Ok(VfsPath::root());
        }
        VfsPath::new(&canonical).map_err(|err| fail(err.kind(), OP, path))
    }

    fn walk_path<'a>(
        &'a self,
        path: &'a VfsPath,
        want: Want,
        op: &'static str,
    ) -> Result<Resolved<'a>> {
        let mut walk = Walk {
            pending: path.components().rev().map(Cow::Borrowed).collect(),
            must_dir: path.has_trailing_slash(),
            hops: 0,
            trail: None,
        };
        self.walk(NodeRef::Borrowed(&self.root), &mut walk, want, op, path)
    }

    fn walk<'a>(
        &'a self,
        mut cur: NodeRef<'a>,
        walk: &mut Walk<'a>,
        want: Want,
        op: &'static str,
        path: &VfsPath,
    ) -> Result<Resolved<'a>> {
        loop {
            let Some(name) = walk.pending.pop() else {
                return Ok(Resolved::Node(cur));
            };
            let last = walk.pending.is_empty();
            let Some(dir) = cur.dir() else {
                return Err(fail(ErrorKind::NotADirectory, op, path));
            };
            match &*name {
                "." => continue,
                ".." => {
                    // `..` of the root is the root, as in a chroot.
                    if let Some(parent) = cur.parent() {
                        cur = NodeRef::Owned(parent);
                        if let Some(trail) = &mut walk.trail {
                            trail.pop();
                        }
                    }
                    continue;
                }
                _ => {}
            }
            // Only symlink targets can hold names this long; the path was validated.
            if name.len() > MAX_NAME_BYTES {
                return Err(fail(ErrorKind::NameTooLong, op, path));
            }
            if last && want == Want::Parent {
                return Ok(Resolved::Entry { dir: cur, name });
            }
            let child = dir.read().entries.get(&*name).cloned();
            let Some(child) = child else {
                return Err(fail(ErrorKind::NotFound, op, path));
            };
            if let Some(target) = child.symlink_target() {
                if !last || want == Want::Follow || walk.must_dir {
                    walk.hops += 1;
                    if walk.hops > MAX_SYMLINK_HOPS {
                        return Err(fail(ErrorKind::Loop, op, path));
                    }
                    if last && target.ends_with('/') {
                        walk.must_dir = true;
                    }
                    walk.push_target(target);
                    if target.starts_with('/') {
                        cur = NodeRef::Borrowed(&self.root);
                        if let Some(trail) = &mut walk.trail {
                            trail.clear();
                        }
                    }
                    continue;
                }
            }
            if let Some(trail) = &mut walk.trail {
                trail.push(name);
            }
            if last {
                if walk.must_dir && !child.is_dir() {
                    return Err(fail(ErrorKind::NotADirectory, op, path));
                }
                return Ok(Resolved::Node(NodeRef::Owned(child)));
            }
            cur = NodeRef::Owned(child);
        }
    }
}
