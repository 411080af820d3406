//! What an operation returned, and what a whole tree holds, in a form both sides produce.

use std::collections::BTreeMap;
use std::fmt;

use vfs_core::{ErrorKind, FileKind};

use crate::ops::show_bytes;

/// The comparable part of a stat: no timestamps, inode numbers, ownership or directory
/// sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatView {
    pub kind: FileKind,
    /// `mode & 0o7777`.
    pub mode: u32,
    /// `None` once left out of the comparison (see [`forgive_dir_nlink`]).
    pub nlink: Option<u64>,
    /// Size of files and symlinks; `None` for directories (their size is the driver's own).
    pub size: Option<u64>,
}

impl StatView {
    pub fn new(kind: FileKind, mode: u32, nlink: u64, size: u64) -> StatView {
        StatView {
            kind,
            mode: mode & 0o7777,
            nlink: Some(nlink),
            size: (kind != FileKind::Directory).then_some(size),
        }
    }
}

impl fmt::Display for StatView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{ kind: {:?}, mode: {:#o}", self.kind, self.mode)?;
        if let Some(nlink) = self.nlink {
            write!(f, ", nlink: {nlink}")?;
        }
        if let Some(size) = self.size {
            write!(f, ", size: {size}")?;
        }
        f.write_str(" }")
    }
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Data(Vec<u8>),
    Bool(bool),
    Stat(StatView),
    /// Sorted names with their kinds.
    Entries(Vec<(String, FileKind)>),
    Text(String),
    /// What a handle read after its file was unlinked, and its stat.
    AfterUnlink(Vec<u8>, StatView),
    /// What `stat` and `realpath` of the head of a symlink chain gave.
    Chain(Box<Outcome>, Box<Outcome>),
    Errno(i32),
    /// The driver panicked, with this message.
    Panic(String),
}

pub fn errno_name(errno: i32) -> String {
    let kind = ErrorKind::from_errno(errno);
    if kind.errno() == errno {
        kind.code().to_owned()
    } else {
        format!("errno {errno}")
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Done => f.write_str("Ok(())"),
            Outcome::Data(data) => write!(f, "Ok({})", show_bytes(data)),
            Outcome::Bool(value) => write!(f, "Ok({value})"),
            Outcome::Stat(stat) => write!(f, "Ok({stat})"),
            Outcome::Entries(entries) => {
                f.write_str("Ok([")?;
                for (i, (name, kind)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name:?}: {kind:?}")?;
                }
                f.write_str("])")
            }
            Outcome::Text(text) => write!(f, "Ok({text:?})"),
            Outcome::AfterUnlink(data, stat) => write!(f, "Ok(({}, {stat}))", show_bytes(data)),
            Outcome::Chain(stat, real) => write!(f, "Ok((stat: {stat}, realpath: {real}))"),
            Outcome::Errno(errno) => write!(f, "Err({})", errno_name(*errno)),
            Outcome::Panic(message) => write!(f, "panicked: {message}"),
        }
    }
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub stat: StatView,
    /// A file's content.
    pub content: Option<Vec<u8>>,
    /// A symlink's target.
    pub target: Option<String>,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.stat)?;
        if let Some(content) = &self.content {
            write!(f, " content {}", show_bytes(content))?;
        }
        if let Some(target) = &self.target {
            write!(f, " -> {target:?}")?;
        }
        Ok(())
    }
}

/// A whole tree by path, `/` for the root.
pub type Tree = BTreeMap<String, Node>;

/// Leaves out of the comparison the link count of a directory for which the driver
/// reports 1, in one outcome of each side.
///
/// For subjects whose `dir_nlink` is false: Linux overlayfs reports `nlink` 1 for a
/// directory merged from several layers, where the real count would take listing every
/// layer ("unknown": `find` knows not to rely on it), and so does the overlay driver.
/// tmpfs never reports 1 for a directory (`.` and the entry in the parent make 2), so 1
/// is only ever that "unknown"; every other count the driver reports (a directory of one
/// layer) must still match.
pub fn forgive_dir_nlink(ours: &mut Outcome, tmpfs: &mut Outcome) {
    match (ours, tmpfs) {
        (Outcome::Stat(ours), Outcome::Stat(tmpfs)) => forgive_view(ours, tmpfs),
        (Outcome::AfterUnlink(_, ours), Outcome::AfterUnlink(_, tmpfs)) => {
            forgive_view(ours, tmpfs)
        }
        (Outcome::Chain(ours, _), Outcome::Chain(tmpfs, _)) => forgive_dir_nlink(ours, tmpfs),
        _ => {}
    }
}

fn forgive_view(ours: &mut StatView, tmpfs: &mut StatView) {
    let dirs = ours.kind == FileKind::Directory && tmpfs.kind == FileKind::Directory;
    if dirs && ours.nlink == Some(1) {
        ours.nlink = None;
        tmpfs.nlink = None;
    }
}

/// [`forgive_dir_nlink`] for every path both trees hold.
pub fn forgive_tree_dir_nlink(ours: &mut Tree, tmpfs: &mut Tree) {
    for (path, node) in ours.iter_mut() {
        if let Some(other) = tmpfs.get_mut(path) {
            forgive_view(&mut node.stat, &mut other.stat);
        }
    }
}

/// The differences between two trees, one line each; empty if they are equal.
pub fn diff_trees(ours: &Tree, host: &Tree) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, node) in ours {
        match host.get(path) {
            None => lines.push(format!("{path}: the driver has {node}, tmpfs has nothing")),
            Some(other) if other != node => {
                lines.push(format!("{path}: the driver has {node}, tmpfs has {other}"))
            }
            Some(_) => {}
        }
    }
    for (path, node) in host {
        if !ours.contains_key(path) {
            lines.push(format!("{path}: the driver has nothing, tmpfs has {node}"));
        }
    }
    lines
}
