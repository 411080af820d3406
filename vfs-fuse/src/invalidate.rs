//! Dropping the kernel's cached entries when a served mount table changes.

use std::ffi::OsStr;

use fuser::{INodeNo, Notifier};
use vfs_core::{MountEvent, VfsPath};

use crate::nodes::{ROOT, VIRTUAL_SCOPE};
use crate::ops::Inner;

/// A filesystem was mounted or unmounted at some path: the kernel forgets the name of
/// the mount point (and of the virtual directories above it, which appear and vanish
/// with mounts) and the attributes of the directories on the way, and this table
/// forgets those names too, so the nodes of the tree that was there answer `ENOENT`
/// instead of serving the new tree under old node ids.
pub(crate) fn on_mount_change(inner: &Inner, notifier: &Notifier, event: &MountEvent) {
    let path = match event {
        MountEvent::Mounted { mount } => &mount.path,
        MountEvent::Unmounted { mount, .. } => {
            inner.nodes.lock().drop_scope(mount.mount_id.0);
            &mount.path
        }
        MountEvent::ShutdownFailed { .. } => return,
    };
    let (entries, dirs) = stale_names(inner, path);
    // The kernel may already have dropped any of these; nothing to do then.
    for (parent, name) in &entries {
        let _ = notifier.inval_entry(INodeNo(*parent), OsStr::new(&**name));
    }
    for dir in dirs {
        let _ = notifier.inval_inode(INodeNo(dir), 0, 0);
    }
}

/// The names to invalidate (and unlink from the table) and the directories whose
/// attributes changed, for a change at `path`.
fn stale_names(inner: &Inner, path: &VfsPath) -> (Vec<(u64, Box<str>)>, Vec<u64>) {
    let mut nodes = inner.nodes.lock();
    let mut entries = Vec::new();
    let mut dirs = vec![ROOT];
    if path.is_root() {
        entries.extend(
            nodes
                .children(ROOT)
                .into_iter()
                .map(|(name, _)| (ROOT, name)),
        );
    } else {
        let names: Vec<&str> = path.components().collect();
        let mut current = ROOT;
        for (depth, name) in names.iter().enumerate() {
            let Some(child) = nodes.child(current, name) else {
                // The kernel may hold a negative entry for a name this table never saw.
                entries.push((current, Box::from(*name)));
                break;
            };
            let last = depth + 1 == names.len();
            if last || nodes.scope_of(child) == Some(VIRTUAL_SCOPE) {
                // Dropping this name drops everything cached beneath it.
                entries.push((current, Box::from(*name)));
                break;
            }
            dirs.push(child);
            current = child;
        }
    }
    for (parent, name) in &entries {
        nodes.unlink(*parent, name);
    }
    (entries, dirs)
}
