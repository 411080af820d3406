//! Space and inode accounting against the optional limits.

use std::sync::atomic::{AtomicU64, Ordering};

use super::file_data::PAGE_SIZE;

/// What the instance has allocated, shared by its inodes so that an inode freed after its
/// last handle closes gives its space back.
#[derive(Debug)]
pub(crate) struct Usage {
    bytes: AtomicU64,
    inodes: AtomicU64,
    max_bytes: Option<u64>,
    max_inodes: Option<u64>,
}

impl Usage {
    pub(crate) fn new(max_bytes: Option<u64>, max_inodes: Option<u64>) -> Usage {
        Usage {
            bytes: AtomicU64::new(0),
            inodes: AtomicU64::new(0),
            max_bytes,
            max_inodes,
        }
    }

    pub(crate) fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    pub(crate) fn max_inodes(&self) -> Option<u64> {
        self.max_inodes
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn inodes(&self) -> u64 {
        self.inodes.load(Ordering::Relaxed)
    }

    /// Reserves `pages` pages; false if that would pass the byte limit.
    pub(crate) fn reserve_pages(&self, pages: u64) -> bool {
        if pages == 0 {
            return true;
        }
        let Some(bytes) = pages.checked_mul(PAGE_SIZE as u64) else {
            return false;
        };
        reserve(&self.bytes, bytes, self.max_bytes)
    }

    pub(crate) fn release_pages(&self, pages: u64) {
        if pages != 0 {
            self.bytes
                .fetch_sub(pages * PAGE_SIZE as u64, Ordering::Relaxed);
        }
    }

    /// Reserves one inode; false if that would pass the inode limit.
    pub(crate) fn reserve_inode(&self) -> bool {
        reserve(&self.inodes, 1, self.max_inodes)
    }

    /// Counts an inode that must exist whatever the limit says (the root).
    pub(crate) fn force_inode(&self) {
        self.inodes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn release_inode(&self) {
        self.inodes.fetch_sub(1, Ordering::Relaxed);
    }
}

fn reserve(counter: &AtomicU64, amount: u64, limit: Option<u64>) -> bool {
    match limit {
        // Nothing to compare against: one uncontended add instead of a CAS loop.
        None => {
            counter.fetch_add(amount, Ordering::Relaxed);
            true
        }
        Some(limit) => counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(amount).filter(|&total| total <= limit)
            })
            .is_ok(),
    }
}
