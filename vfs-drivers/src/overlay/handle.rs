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

/// What the handle of a directory reports beyond the layer's own metadata.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirStat {
    /// The overlay's inode number of the directory (its lowest layer's, see `OverlayFs`).
    pub(crate) ino: u64,
    /// Whether it was merged from several layers when opened: its link count is then 1,
    /// as `stat` reports it.
    pub(crate) merged: bool,
    /// The layer whose directory was opened. Once a copy-up moved the handle to the
    /// upper, the directory is merged from the upper and that layer.
    pub(crate) layer: usize,
}

/// A handle of the layer that held the file when it was opened: a lower's for a
/// read-only open of an untouched lower file, the upper's otherwise. When a lower file is
/// copied up, its open handles move to the copy (as overlayfs since Linux 4.19), so they
/// see what is written to it from then on.
pub(crate) struct OverlayHandle {
    pub(crate) slot: Arc<Slot>,
    pub(crate) inos: InoMap,
    /// For a directory: what `stat` reports beyond the layer's own handle.
    pub(crate) dir: Option<DirStat>,
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
        let unlinked = self.slot.unlinked.load(Ordering::Relaxed);
        match self.dir {
            // The link count of the directory as it is now, as overlayfs reports it: 1
            // while merged (removed or not), else its one layer's, which is 0 once the
            // overlay removed a directory it holds in the upper. A lower directory the
            // overlay removed (a whiteout hides it) reports 0 too, as the lower keeps it.
            Some(dir) => {
                meta.ino = dir.ino;
                if dir.merged || layer != dir.layer {
                    meta.nlink = 1;
                } else if unlinked {
                    meta.nlink = 0;
                }
            }
            None => {
                meta.ino = self.inos.map(layer, meta.ino);
                if unlinked {
                    meta.nlink = meta.nlink.saturating_sub(1);
                }
            }
        }
        Ok(meta)
    }

    async fn close(&self) -> Result<()> {
        let (inner, _) = self.slot.get();
        inner.close().await
    }

    // Both change the file, so the handle is an upper one (opens for writing copy up);
    // a read-only lower handle refuses them as it refuses writes.
    async fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        let (inner, _) = self.slot.get();
        inner.allocate(offset, len).await
    }

    async fn punch_hole(&self, offset: u64, len: u64) -> Result<()> {
        let (inner, _) = self.slot.get();
        inner.punch_hole(offset, len).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use vfs_core::{FileSystem, OpenOptions, VfsPath};

    use crate::memory::MemoryFs;
    use crate::overlay::OverlayFs;

    fn p(path: &str) -> VfsPath {
        VfsPath::new(path).expect("a valid path")
    }

    /// A directory handle reports the link count the directory has now, not the one it
    /// had when opened (found by the differential test against tmpfs).
    #[test]
    fn directory_handles_report_the_current_link_count() {
        futures::executor::block_on(async {
            let lower = Arc::new(MemoryFs::new());
            lower.create_dir(&p("/low"), 0o755).await?;
            lower.create_dir(&p("/low2"), 0o755).await?;
            let fs = OverlayFs::new(Arc::new(MemoryFs::new()), vec![lower])?;
            let read = OpenOptions::read_only();

            // A directory only the upper holds: its own live count, 0 once removed.
            fs.create_dir(&p("/up"), 0o755).await?;
            let up = fs.open(&p("/up"), read).await?;
            fs.create_dir(&p("/up/sub"), 0o755).await?;
            assert_eq!(up.stat().await?.nlink, 3);
            fs.remove_dir(&p("/up/sub")).await?;
            fs.remove_dir(&p("/up")).await?;
            assert_eq!(up.stat().await?.nlink, 0);

            // A directory only a lower holds, removed by the overlay: 0 as well.
            let low = fs.open(&p("/low"), read).await?;
            assert_eq!(low.stat().await?.nlink, 2);
            fs.remove_dir(&p("/low")).await?;
            assert_eq!(low.stat().await?.nlink, 0);

            // Copied up by a change inside it, it is merged from then on: 1.
            let low2 = fs.open(&p("/low2"), read).await?;
            fs.write_file(&p("/low2/f"), Bytes::from_static(b"x"))
                .await?;
            assert_eq!(low2.stat().await?.nlink, 1);
            Ok::<(), vfs_core::VfsError>(())
        })
        .expect("the overlay works");
    }
}
