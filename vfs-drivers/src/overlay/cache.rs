//! A cache of merged lookups, so resolving a path does not probe every layer for every
//! directory on the way each time.
//!
//! It relies on what overlayfs relies on: lowers never change, and the upper changes only
//! through the overlay. Every change of the namespace (and every copy-up) runs under the
//! overlay's lock, and releasing that lock moves the cache to a new generation, which
//! makes every entry cached before stale at once. A lookup is cached with the generation
//! read before its first layer call, so an entry computed while a change was under way
//! is already stale when the change ends.
//!
//! What a cached entry may be used for: for a directory on the way, only its layers and
//! kind matter, and those change only with the namespace. For the final entry of a path
//! the metadata matters too, and the upper's changes without a namespace change (a write
//! through a handle moves size and mtime), so a cached final lookup is used only when no
//! upper layer is in it: a missing name, or an entry only lowers hold, whose metadata
//! cannot change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::lookup::{Lookup, Resolved, Want, UPPER};

/// How many lookups of names the cache holds before it starts over.
const CAPACITY: usize = 1 << 14;
/// How many whole resolutions each of its six maps holds before it starts over (a
/// resolution keeps every directory of its path, so they are fewer).
const RESOLUTIONS: usize = 1 << 10;

/// Cached lookups by path, valid for one generation.
#[derive(Default)]
pub(crate) struct LookupCache {
    /// Caches nothing: the lowers may change beneath the overlay.
    off: bool,
    generation: AtomicU64,
    entries: Map<Lookup>,
    /// Whole resolutions, by what was asked: one map per [`Want`] and trailing slash.
    resolutions: [Map<Resolved>; 6],
}

/// Path -> (generation, value).
type Map<T> = RwLock<ahash::HashMap<String, (u64, Arc<T>)>>;

/// Which map of [`LookupCache::resolutions`] a request goes to.
fn slot(want: Want, trailing_slash: bool) -> usize {
    let want = match want {
        Want::Follow => 0,
        Want::NoFollow => 1,
        Want::Parent => 2,
    };
    want * 2 + usize::from(trailing_slash)
}

impl LookupCache {
    /// A cache that keeps nothing, for lowers that may change beneath the overlay.
    pub(crate) fn off() -> LookupCache {
        LookupCache {
            off: true,
            ..LookupCache::default()
        }
    }

    /// The current generation; read it before the layer calls whose result is cached.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes every entry stale: the namespace changed.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached lookup of `path`, if it is current and fit for use: `last` asks for
    /// the final entry of a path, which must not involve the upper.
    pub(crate) fn get(&self, path: &str, last: bool) -> Option<Arc<Lookup>> {
        if self.off {
            return None;
        }
        let current = self.generation();
        let entries = self.entries.read();
        let (generation, lookup) = entries.get(path)?;
        if *generation != current {
            return None;
        }
        if last && lookup.hits.iter().any(|hit| hit.layer == UPPER) {
            return None;
        }
        Some(Arc::clone(lookup))
    }

    /// The cached resolution of `path` as `want` asks for it.
    pub(crate) fn get_resolved(
        &self,
        path: &str,
        trailing_slash: bool,
        want: Want,
    ) -> Option<Arc<Resolved>> {
        if self.off {
            return None;
        }
        let current = self.generation();
        let map = self.resolutions.get(slot(want, trailing_slash))?.read();
        let (generation, resolved) = map.get(path)?;
        (*generation == current).then(|| Arc::clone(resolved))
    }

    /// Caches a resolution whose final entry involves no upper layer (see the module
    /// documentation); others are not cached.
    pub(crate) fn insert_resolved(
        &self,
        path: &str,
        trailing_slash: bool,
        want: Want,
        resolved: &Arc<Resolved>,
    ) {
        let upper = resolved.lookup.hits.iter().any(|hit| hit.layer == UPPER);
        if self.off || upper || resolved.generation != self.generation() {
            return;
        }
        let Some(map) = self.resolutions.get(slot(want, trailing_slash)) else {
            return;
        };
        let mut map = map.write();
        if map.len() >= RESOLUTIONS {
            map.clear();
        }
        map.insert(path.to_owned(), (resolved.generation, Arc::clone(resolved)));
    }

    /// Caches `lookup` of `path`, computed in `generation`.
    pub(crate) fn insert(&self, path: &str, generation: u64, lookup: Arc<Lookup>) {
        if self.off || generation != self.generation() {
            // A change ended while it was computed: it may already be stale.
            return;
        }
        let mut entries = self.entries.write();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(path.to_owned(), (generation, lookup));
    }
}
