//! Inodes: what a directory entry points at, shared by hard links and open handles.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use vfs_core::{FileKind, Metadata, Timestamp};

use super::file_data::FileData;
use super::usage::Usage;

/// tmpfs counts this many bytes per directory entry in a directory's size.
const BOGO_DIRENT_SIZE: u64 = 20;

/// Directory entries. ahash because names come from untrusted guests (keyed hashing
/// resists collision flooding) and it is several times faster than SipHash on short names.
pub(crate) type Entries = HashMap<Box<str>, Arc<Inode>, ahash::RandomState>;

/// One file, directory or symlink.
///
/// The attributes `stat` reports are atomics, read without any lock (as Linux's
/// `generic_fillattr` reads the inode's fields), so a stat costs no lock beyond the
/// directory lookups. Writers of an attribute store it while holding whatever lock
/// orders the change (the content lock for size, the directory lock for link counts).
///
/// Lock order, outermost first: a directory's `DirData` before its children's (parents
/// before children, which the rename code keeps too), any `DirData` before a file's
/// `FileData`; `xattrs` is a leaf: nothing is locked while it is held.
pub(crate) struct Inode {
    pub(crate) ino: u64,
    pub(crate) btime: Timestamp,
    attrs: Attrs,
    /// Empty for almost every inode, which costs no allocation.
    pub(crate) xattrs: Mutex<BTreeMap<Box<str>, Bytes>>,
    pub(crate) body: Body,
    usage: Arc<Usage>,
}

struct Attrs {
    mode: AtomicU32,
    uid: AtomicU32,
    gid: AtomicU32,
    /// A directory's is derived from `DirData` by [`Inode::sync_dir`].
    nlink: AtomicU64,
    /// A file's content size, a directory's tmpfs-style size, a symlink's target length.
    size: AtomicU64,
    blocks: AtomicU64,
    atime: AtomicI64,
    mtime: AtomicI64,
    ctime: AtomicI64,
}

pub(crate) enum Body {
    File(RwLock<FileData>),
    Dir(RwLock<DirData>),
    Symlink(Box<str>),
    /// A FIFO, socket or device node: nothing but its kind and device number.
    Special {
        kind: FileKind,
        rdev: u64,
    },
}

pub(crate) struct DirData {
    pub(crate) entries: Entries,
    /// For `..` in symlink targets and the rename subtree check; dangling for the root.
    pub(crate) parent: Weak<Inode>,
    pub(crate) subdirs: u64,
    /// Set under this lock when the directory is removed, so a create that resolved it
    /// before cannot add an entry nobody can reach.
    pub(crate) removed: bool,
}

/// What a new inode starts with.
pub(crate) struct NewInode {
    pub(crate) ino: u64,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) now: Timestamp,
}

impl Inode {
    /// The caller has reserved the inode (and `data`'s pages) in `usage`; dropping the
    /// inode releases them.
    pub(crate) fn new(new: NewInode, mut body: Body, usage: Arc<Usage>) -> Inode {
        let now = new.now.as_nanos();
        let (nlink, size, blocks) = match &mut body {
            Body::File(content) => {
                let content = content.get_mut();
                (1, content.size(), content.blocks())
            }
            Body::Dir(_) => (2, 2 * BOGO_DIRENT_SIZE, 0),
            Body::Symlink(target) => (1, target.len() as u64, 0),
            Body::Special { .. } => (1, 0, 0),
        };
        Inode {
            ino: new.ino,
            btime: new.now,
            attrs: Attrs {
                mode: AtomicU32::new(new.mode),
                uid: AtomicU32::new(new.uid),
                gid: AtomicU32::new(new.gid),
                nlink: AtomicU64::new(nlink),
                size: AtomicU64::new(size),
                blocks: AtomicU64::new(blocks),
                atime: AtomicI64::new(now),
                mtime: AtomicI64::new(now),
                ctime: AtomicI64::new(now),
            },
            xattrs: Mutex::new(BTreeMap::new()),
            body,
            usage,
        }
    }

    pub(crate) fn new_dir_body(parent: Weak<Inode>, hasher: &ahash::RandomState) -> Body {
        Body::Dir(RwLock::new(DirData {
            entries: HashMap::with_hasher(hasher.clone()),
            parent,
            subdirs: 0,
            removed: false,
        }))
    }

    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    pub(crate) fn kind(&self) -> FileKind {
        match self.body {
            Body::File(_) => FileKind::File,
            Body::Dir(_) => FileKind::Directory,
            Body::Symlink(_) => FileKind::Symlink,
            Body::Special { kind, .. } => kind,
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    pub(crate) fn dir(&self) -> Option<&RwLock<DirData>> {
        match &self.body {
            Body::Dir(dir) => Some(dir),
            _ => None,
        }
    }

    pub(crate) fn symlink_target(&self) -> Option<&str> {
        match &self.body {
            Body::Symlink(target) => Some(target),
            _ => None,
        }
    }

    /// The parent directory, if this is a directory that has one.
    pub(crate) fn parent(&self) -> Option<Arc<Inode>> {
        self.dir().and_then(|dir| dir.read().parent.upgrade())
    }

    pub(crate) fn metadata(&self) -> Metadata {
        let attrs = &self.attrs;
        Metadata {
            kind: self.kind(),
            size: attrs.size.load(Relaxed),
            mode: attrs.mode.load(Relaxed),
            uid: attrs.uid.load(Relaxed),
            gid: attrs.gid.load(Relaxed),
            nlink: attrs.nlink.load(Relaxed),
            ino: self.ino,
            blocks: attrs.blocks.load(Relaxed),
            rdev: match self.body {
                Body::Special { rdev, .. } => rdev,
                _ => 0,
            },
            atime: Timestamp(attrs.atime.load(Relaxed)),
            mtime: Timestamp(attrs.mtime.load(Relaxed)),
            ctime: Timestamp(attrs.ctime.load(Relaxed)),
            btime: self.btime,
        }
    }

    pub(crate) fn mode(&self) -> u32 {
        self.attrs.mode.load(Relaxed)
    }

    pub(crate) fn gid(&self) -> u32 {
        self.attrs.gid.load(Relaxed)
    }

    pub(crate) fn set_mode(&self, mode: u32) {
        self.attrs.mode.store(mode, Relaxed);
    }

    /// Clears `bits` of the mode when all of `when` are set.
    pub(crate) fn clear_mode_bits(&self, bits: u32, when: u32) {
        // A failed update means the condition does not hold: nothing to clear.
        let _ = self.attrs.mode.fetch_update(Relaxed, Relaxed, |mode| {
            (mode & when == when && mode & bits != 0).then_some(mode & !bits)
        });
    }

    pub(crate) fn set_uid(&self, uid: u32) {
        self.attrs.uid.store(uid, Relaxed);
    }

    pub(crate) fn set_gid(&self, gid: u32) {
        self.attrs.gid.store(gid, Relaxed);
    }

    pub(crate) fn set_atime(&self, time: Timestamp) {
        self.attrs.atime.store(time.as_nanos(), Relaxed);
    }

    pub(crate) fn set_mtime(&self, time: Timestamp) {
        self.attrs.mtime.store(time.as_nanos(), Relaxed);
    }

    /// A metadata change: ctime.
    pub(crate) fn touch_changed(&self, now: Timestamp) {
        self.attrs.ctime.store(now.as_nanos(), Relaxed);
    }

    /// A content change: mtime and ctime.
    pub(crate) fn touch_modified(&self, now: Timestamp) {
        self.attrs.mtime.store(now.as_nanos(), Relaxed);
        self.attrs.ctime.store(now.as_nanos(), Relaxed);
    }

    /// Counts a new hard link; false if the inode has no links left (it was unlinked and
    /// lives on only through handles), which must not come back.
    pub(crate) fn add_link(&self) -> bool {
        self.attrs
            .nlink
            .fetch_update(Relaxed, Relaxed, |n| (n != 0).then_some(n + 1))
            .is_ok()
    }

    pub(crate) fn drop_link(&self) {
        let _ = self
            .attrs
            .nlink
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Publishes a file's size and blocks; called with its content lock held.
    pub(crate) fn sync_file(&self, content: &FileData) {
        self.attrs.size.store(content.size(), Relaxed);
        self.attrs.blocks.store(content.blocks(), Relaxed);
    }

    /// Publishes a directory's size and link count; called with its lock held.
    pub(crate) fn sync_dir(&self, dir: &DirData) {
        let nlink = if dir.removed { 0 } else { 2 + dir.subdirs };
        self.attrs.nlink.store(nlink, Relaxed);
        let size = BOGO_DIRENT_SIZE * (2 + dir.entries.len() as u64);
        self.attrs.size.store(size, Relaxed);
    }
}

impl Drop for Inode {
    fn drop(&mut self) {
        self.usage.release_inode();
        match &mut self.body {
            Body::File(content) => self.usage.release_pages(content.get_mut().pages()),
            Body::Dir(dir) => {
                // Tear the subtree down with an explicit stack: rename can nest directories
                // far deeper than any path reaches, and recursive drops would overflow.
                let mut pending: Vec<Arc<Inode>> = dir
                    .get_mut()
                    .entries
                    .drain()
                    .map(|(_, child)| child)
                    .collect();
                while let Some(child) = pending.pop() {
                    if let Ok(mut child) = Arc::try_unwrap(child) {
                        if let Body::Dir(dir) = &mut child.body {
                            pending.extend(dir.get_mut().entries.drain().map(|(_, c)| c));
                        }
                        // `child` drops here with no entries left, so this does not recurse.
                    }
                }
            }
            Body::Symlink(_) | Body::Special { .. } => {}
        }
    }
}
