//! Merged directory listings.

use std::collections::{HashMap, HashSet};

use vfs_core::{DirEntry, FileKind, Result};

use super::lookup::Dir;
use super::whiteout::{is_reserved, whited_out};
use super::OverlayFs;

/// One name of a listing while the layers are merged.
struct Merging {
    name: String,
    kind: FileKind,
    layer: usize,
    ino: u64,
    /// A lower layer has a directory of the same name beneath this directory.
    maybe_merged: bool,
}

impl OverlayFs {
    /// The merged entries of `dir`: each visible name once, with the kind of its topmost
    /// layer; whiteouts, opaque markers and temporaries hidden, and the names they hide.
    ///
    /// Inode numbers are those `lstat` reports: for a directory merged from several
    /// layers, that of its lowest layer (see [`OverlayFs`]), which takes one lookup of
    /// the name; every other entry costs nothing beyond the layers' listings.
    pub(crate) async fn merged_list(&self, dir: &Dir) -> Result<Vec<DirEntry>> {
        let mut merged: Vec<Merging> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut hidden: HashSet<String> = HashSet::new();
        for hit in &dir.hits {
            let listing = self.layer(hit.layer)?.read_dir(&dir.path).await?;
            // A layer's whiteouts hide the names of the layers beneath it, not its own.
            let mut whiteouts = Vec::new();
            for entry in listing {
                if is_reserved(&entry.name) {
                    if let Some(name) = whited_out(&entry.name) {
                        whiteouts.push(name.to_owned());
                    }
                    continue;
                }
                if hidden.contains(&entry.name) {
                    continue;
                }
                match index.get(&entry.name) {
                    Some(&at) => {
                        if let Some(seen) = merged.get_mut(at) {
                            if seen.kind == FileKind::Directory && entry.kind == FileKind::Directory
                            {
                                seen.maybe_merged = true;
                            }
                        }
                    }
                    None => {
                        index.insert(entry.name.clone(), merged.len());
                        merged.push(Merging {
                            name: entry.name,
                            kind: entry.kind,
                            layer: hit.layer,
                            ino: entry.ino,
                            maybe_merged: false,
                        });
                    }
                }
            }
            hidden.extend(whiteouts);
        }
        let mut entries = Vec::with_capacity(merged.len());
        for item in merged {
            let ino = if item.maybe_merged {
                // Which layers really merge depends on opaque markers and whiteouts the
                // listings do not show; the lookup knows.
                let path = dir.path.join(&item.name)?;
                let lookup = self.lookup_child(dir, &item.name, &path).await?;
                match lookup.hits.last() {
                    Some(bottom) => self.inos.map(bottom.layer, bottom.meta.ino),
                    None => continue,
                }
            } else {
                self.inos.map(item.layer, item.ino)
            };
            entries.push(DirEntry {
                name: item.name,
                kind: item.kind,
                ino,
            });
        }
        Ok(entries)
    }
}
