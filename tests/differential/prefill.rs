//! What a pre-filled subject starts with: layers of entries, as OCI image layers hold
//! them (whiteouts `.wh.name` and opaque markers `.wh..wh..opq` included), drawn from the
//! sequence's seed. One description builds both sides: each layer becomes a memory
//! filesystem (the lowers of an overlay), and their merged view, computed here as an OCI
//! runtime applies layers (independently of the overlay's code), is written into the tmpfs
//! directory.
//!
//! The entries use the names the operations draw from (`ops::TOP_NAMES` at the top,
//! `ops::DEEP_NAMES` below), so the operations hit them: lower files, directories merged
//! from two layers, entries a whiteout or an opaque directory hides, symlinks from one
//! layer into another. File contents are upper-case letters, so a report shows which bytes
//! came from the pre-fill. There are no hard links: overlayfs breaks lower hard links on
//! copy-up (documented on `OverlayFs`), which tmpfs cannot mirror.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{FileSystem, VfsPath};

use crate::ops::{show_bytes, Rng, DEEP_NAMES, TOP_NAMES};
use crate::runner::memory_fs;

/// One entry of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        target: String,
    },
    /// `.wh.<name>` beside the name: hides it in the layers beneath.
    Whiteout,
    /// `.wh..wh..opq` in the directory (which the same layer holds): hides everything the
    /// layers beneath hold in it.
    Opaque,
}

/// A path as its components, so that a map orders parents before their children.
type Key = Vec<String>;

fn key(path: &str) -> Key {
    path.split('/')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Layers, topmost first; each an ordered list of entries (a directory before what it
/// holds, its opaque marker right after it).
#[derive(Clone, Debug)]
pub struct Layers {
    pub layers: Vec<Vec<(String, Entry)>>,
}

const FILE_MODES: &[u32] = &[0o644, 0o644, 0o600, 0o755, 0o4755, 0o2755, 0o400];
const DIR_MODES: &[u32] = &[0o755, 0o755, 0o700, 0o777, 0o1777, 0o2755, 0o555];
/// Directories at this depth hold nothing, as the operations draw paths up to three deep.
const MAX_DEPTH: usize = 3;

fn names_at(depth: usize) -> &'static [&'static str] {
    if depth == 0 {
        TOP_NAMES
    } else {
        DEEP_NAMES
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn data(rng: &mut Rng) -> Vec<u8> {
    let letter = b'A' + rng.below(24) as u8;
    match rng.below(12) {
        0 => Vec::new(),
        // Several pages, one letter (so that it prints short).
        1 => vec![letter; rng.range(3000, 9000) as usize],
        _ => (0..rng.range(1, 12))
            .map(|i| letter + (i % 3) as u8)
            .collect(),
    }
}

/// A relative target without `..` (see `ops::symlink_target`) for the link `name`: a
/// pool path, a sibling, `.`, the link itself (a loop) or nothing.
fn target(rng: &mut Rng, name: &str) -> String {
    let pool = |rng: &mut Rng| {
        let mut path = rng.pick(TOP_NAMES).to_owned();
        for _ in 0..rng.below(3) {
            path.push('/');
            path.push_str(rng.pick(DEEP_NAMES));
        }
        path
    };
    match rng.below(10) {
        0 => rng.pick(&[".", "./", "./e", "e/"]).to_owned(),
        1 => name.to_owned(),
        2 => format!("{}/", pool(rng)),
        3 | 4 => rng.pick(DEEP_NAMES).to_owned(),
        5 => "nowhere".to_owned(),
        _ => pool(rng),
    }
}

fn file_or_symlink(rng: &mut Rng, name: &str) -> Entry {
    if rng.percent(65) {
        Entry::File {
            mode: rng.pick(FILE_MODES),
            data: data(rng),
        }
    } else {
        Entry::Symlink {
            target: target(rng, name),
        }
    }
}

/// A random tree below `dir` (at `depth`), for the bottom layer.
fn bottom_tree(rng: &mut Rng, dir: &str, depth: usize, out: &mut Vec<(String, Entry)>) {
    for &name in names_at(depth) {
        if !rng.percent(60) {
            continue;
        }
        let path = join(dir, name);
        if rng.percent(45) {
            out.push((
                path.clone(),
                Entry::Dir {
                    mode: rng.pick(DIR_MODES),
                },
            ));
            if depth + 1 < MAX_DEPTH {
                bottom_tree(rng, &path, depth + 1, out);
            }
        } else {
            out.push((path, file_or_symlink(rng, name)));
        }
    }
}

/// A random layer over `below` (the merged view of the layers beneath) below `dir`:
/// whiteouts of what is beneath, files and symlinks over it, directories merged with it
/// (some opaque) or replacing it.
fn upper_tree(
    rng: &mut Rng,
    dir: &str,
    depth: usize,
    below: &BTreeMap<Key, Entry>,
    out: &mut Vec<(String, Entry)>,
) {
    for &name in names_at(depth) {
        let path = join(dir, name);
        let beneath = below.get(&key(&path));
        if !rng.percent(if beneath.is_some() { 60 } else { 30 }) {
            continue;
        }
        let roll = rng.below(100);
        if roll < 30 && (beneath.is_some() || roll < 3) {
            out.push((path, Entry::Whiteout));
        } else if roll < 70 {
            out.push((
                path.clone(),
                Entry::Dir {
                    mode: rng.pick(DIR_MODES),
                },
            ));
            let merges = matches!(beneath, Some(Entry::Dir { .. }));
            if merges && rng.percent(30) {
                out.push((path.clone(), Entry::Opaque));
            }
            if depth + 1 < MAX_DEPTH {
                upper_tree(rng, &path, depth + 1, below, out);
            }
        } else {
            out.push((path, file_or_symlink(rng, name)));
        }
    }
}

/// Applies `layer` over the merged view `merged` of the layers beneath it, as an OCI
/// runtime unpacks a layer: whiteouts and opaque markers remove what is beneath; a
/// directory over a directory keeps what that holds (and takes the upper's metadata); any
/// other entry replaces what is there, with everything below it.
fn apply(merged: &mut BTreeMap<Key, Entry>, layer: &[(String, Entry)]) {
    let remove_below = |merged: &mut BTreeMap<Key, Entry>, at: &Key, with_itself: bool| {
        merged.retain(|path, _| !(path.starts_with(at) && (with_itself || path.len() > at.len())));
    };
    for (path, entry) in layer {
        match entry {
            Entry::Whiteout => remove_below(merged, &key(path), true),
            Entry::Opaque => remove_below(merged, &key(path), false),
            _ => {}
        }
    }
    for (path, entry) in layer {
        let at = key(path);
        match entry {
            Entry::Whiteout | Entry::Opaque => {}
            Entry::Dir { .. } if matches!(merged.get(&at), Some(Entry::Dir { .. })) => {
                merged.insert(at, entry.clone());
            }
            _ => {
                remove_below(merged, &at, true);
                merged.insert(at, entry.clone());
            }
        }
    }
}

impl Layers {
    /// Two layers for the sequence of `seed`: a bottom tree, and a top layer over it.
    pub fn for_seed(seed: u64) -> Layers {
        let mut rng = Rng::new(seed ^ 0x00A1_1CE5_ED1A_7E25_u64);
        let mut bottom = Vec::new();
        bottom_tree(&mut rng, "", 0, &mut bottom);
        let mut below = BTreeMap::new();
        apply(&mut below, &bottom);
        let mut top = Vec::new();
        if rng.percent(3) {
            // The whole bottom hidden.
            top.push((String::new(), Entry::Opaque));
        }
        upper_tree(&mut rng, "", 0, &below, &mut top);
        Layers {
            layers: vec![top, bottom],
        }
    }

    /// What the layers show merged, parents first.
    pub fn merged(&self) -> BTreeMap<Key, Entry> {
        let mut merged = BTreeMap::new();
        for layer in self.layers.iter().rev() {
            apply(&mut merged, layer);
        }
        merged
    }

    /// Each layer as a memory filesystem owned by the caller, topmost first.
    pub fn build(&self) -> Vec<Arc<dyn FileSystem>> {
        self.layers
            .iter()
            .map(|layer| {
                let fs = memory_fs();
                futures::executor::block_on(fill_layer(&fs, layer));
                Arc::new(fs) as Arc<dyn FileSystem>
            })
            .collect()
    }

    /// Writes the merged view into the directory `root`.
    pub fn write_merged(&self, root: &Path) {
        let merged = self.merged();
        for (at, entry) in &merged {
            let path = root.join(at.join("/"));
            match entry {
                Entry::Dir { .. } => std::fs::create_dir(&path).expect("pre-fill: mkdir"),
                Entry::File { data, .. } => std::fs::write(&path, data).expect("pre-fill: write"),
                Entry::Symlink { target } => {
                    std::os::unix::fs::symlink(target, &path).expect("pre-fill: symlink")
                }
                Entry::Whiteout | Entry::Opaque => unreachable!("merged views hold no markers"),
            }
        }
        // Modes last, so that no setgid directory passes its bit on.
        for (at, entry) in &merged {
            if let Entry::Dir { mode } | Entry::File { mode, .. } = entry {
                std::fs::set_permissions(
                    root.join(at.join("/")),
                    std::fs::Permissions::from_mode(*mode),
                )
                .expect("pre-fill: chmod");
            }
        }
    }
}

async fn fill_layer(fs: &dyn FileSystem, layer: &[(String, Entry)]) {
    let vpath = |path: &str| VfsPath::new(&format!("/{path}")).expect("pre-fill paths are valid");
    for (path, entry) in layer {
        let result = match entry {
            Entry::Dir { .. } => fs.create_dir(&vpath(path), 0o700).await,
            Entry::File { data, .. } => {
                fs.write_file(&vpath(path), Bytes::copy_from_slice(data))
                    .await
            }
            Entry::Symlink { target } => fs.symlink(target, &vpath(path)).await,
            Entry::Whiteout => {
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
                let whiteout = vpath(&join(dir, &format!(".wh.{name}")));
                fs.write_file(&whiteout, Bytes::new()).await
            }
            Entry::Opaque => {
                let marker = vpath(&join(path, ".wh..wh..opq"));
                fs.write_file(&marker, Bytes::new()).await
            }
        };
        result.unwrap_or_else(|err| panic!("pre-fill: {path}: {entry:?}: {err}"));
    }
    for (path, entry) in layer {
        if let Entry::Dir { mode } | Entry::File { mode, .. } = entry {
            fs.set_permissions(&vpath(path), *mode)
                .await
                .expect("pre-fill: chmod");
        }
    }
}

fn show(f: &mut fmt::Formatter<'_>, path: &str, entry: &Entry) -> fmt::Result {
    let dir = if path.is_empty() {
        "/".to_owned()
    } else {
        format!("/{path}/")
    };
    match entry {
        Entry::Dir { mode } => write!(f, "{dir} {mode:#o}"),
        Entry::File { mode, data } => write!(f, "/{path} {mode:#o} {}", show_bytes(data)),
        Entry::Symlink { target } => write!(f, "/{path} -> {target:?}"),
        Entry::Whiteout => write!(f, "/{path} whited out"),
        Entry::Opaque => write!(f, "{dir} opaque"),
    }
}

impl fmt::Display for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, layer) in self.layers.iter().enumerate() {
            write!(f, "    lower {} (", index + 1)?;
            f.write_str(match index {
                0 => "top",
                i if i + 1 == self.layers.len() => "bottom",
                _ => "middle",
            })?;
            f.write_str("):")?;
            if layer.is_empty() {
                f.write_str(" empty")?;
            }
            for (path, entry) in layer {
                f.write_str("\n        ")?;
                show(f, path, entry)?;
            }
            f.write_str("\n")?;
        }
        f.write_str("    merged (what tmpfs starts with):")?;
        let merged = self.merged();
        if merged.is_empty() {
            f.write_str(" empty")?;
        }
        for (at, entry) in &merged {
            f.write_str("\n        ")?;
            show(f, &at.join("/"), entry)?;
        }
        Ok(())
    }
}
