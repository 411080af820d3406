//! Handles: a layer's own handle, with the overlay's inode numbers in its metadata, and
//! moved from a lower file to its upper copy when the file is copied up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use vfs_core::{async_trait, FileHandle, Metadata, Result};

use super::inode::InoMap;
use super::lookup::UPPER;

/// The handle an [`OverlayHandle`] currently uses, and the layer it belongs to.
pub(crate) struct Slot {
    current: RwLock<(Arc<dyn FileHandle>, usize)>,
    /// The overlay removed the lower file's name (a whiteout hides it, or a rename
    /// replaced it): `stat` counts one link less, as for an unlinked file.
    unlinked: AtomicBool,
}

impl Slot {
    pub(crate) fn new(handle: Box<dyn FileHandle>, layer: usize) -> Arc<Slot> {
        Arc::new(Slot {
            current: RwLock::new((Arc::from(handle), layer)),
            unlinked: AtomicBool::new(false),
        })
    }

    /// Moves the handle to `handle`, of the upper.
    pub(crate) fn move_to_upper(&self, handle: Box<dyn FileHandle>) {
        *self.current.write() = (Arc::from(handle), UPPER);
    }

    fn get(&self) -> (Arc<dyn FileHandle>, usize) {
        let current = self.current.read();
        (Arc::clone(&current.0), current.1)
    }
}

/// Which lower file a handle reads: its layer and path.
pub(crate) type LowerFile = (usize, String);

/// The handles open on lower files, by file, so a copy-up can move them to the copy.
#[derive(Default)]
pub(crate) struct OpenLowers {
    slots: Mutex<HashMap<LowerFile, Vec<Weak<Slot>>>>,
}

impl OpenLowers {
    pub(crate) fn register(&self, file: &LowerFile, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock();
        let open = slots.entry(file.clone()).or_default();
        open.retain(|weak| weak.strong_count() > 0);
        open.push(Arc::downgrade(slot));
    }

    fn unregister(&self, file: &LowerFile, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock();
        if let Some(open) = slots.get_mut(file) {
            open.retain(|weak| {
                weak.strong_count() > 0 && !std::ptr::eq(weak.as_ptr(), Arc::as_ptr(slot))
            });
            if open.is_empty() {
                slots.remove(file);
            }
        }
    }

    /// The overlay removed the name of `file`: its handles keep reading it, one link less.
    pub(crate) fn unlinked(&self, file: &LowerFile) {
        for slot in self.take(file) {
            slot.unlinked.store(true, Ordering::Relaxed);
        }
    }

    /// The handles still open on `file`, which stop being tracked.
    pub(crate) fn take(&self, file: &LowerFile) -> Vec<Arc<Slot>> {
        let open = self.slots.lock().remove(file).unwrap_or_default();
        open.iter().filter_map(Weak::upgrade).collect()
    }
}

/// A handle of the layer that held the file when it was opened: a lower's for a
/// read-only open of an untouched lower file, the upper's otherwise. When a lower file is
/// copied up, its open handles move to the copy (as overlayfs since Linux 4.19), so they
/// see what is written to it from then on.
pub(crate) struct OverlayHandle {
    pub(crate) slot: Arc<Slot>,
    pub(crate) inos: InoMap,
    /// For a directory: the inode number and link count `stat` reports for it.
    pub(crate) dir: Option<(u64, u64)>,
    /// Where the handle is registered while it reads a lower file.
    pub(crate) lower: Option<(Arc<OpenLowers>, LowerFile)>,
}

impl Drop for OverlayHandle {
    fn drop(&mut self) {
        if let Some((open, file)) = &self.lower {
            open.unregister(file, &self.slot);
        }
    }
}

#[async_trait]
impl FileHandle for OverlayHandle {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let (inner, _) = self.slot.get();
        inner.read_at(offset, len).await
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<usize> {
        let (inner, _) = self.slot.get();
        inner.write_at(offset, data).await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        let (inner, _) = self.slot.get();
        inner.set_len(len).await
    }

    async fn sync(&self) -> Result<()> {
        let (inner, _) = self.slot.get();
        inner.sync().await
    }

    async fn stat(&self) -> Result<Metadata> {
        let (inner, layer) = self.slot.get();
        let mut meta = inner.stat().await?;
        match self.dir {
            Some((ino, nlink)) => {
                meta.ino = ino;
                meta.nlink = nlink;
            }
            None => meta.ino = self.inos.map(layer, meta.ino),
        }
        if self.slot.unlinked.load(Ordering::Relaxed) {
            meta.nlink = meta.nlink.saturating_sub(1);
        }
        Ok(meta)
    }

    async fn close(&self) -> Result<()> {
        let (inner, _) = self.slot.get();
        inner.close().await
    }
}
