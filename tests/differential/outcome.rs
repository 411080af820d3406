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
    pub nlink: u64,
    /// Size of files and symlinks; `None` for directories (their size is the driver's own).
    pub size: Option<u64>,
}

impl StatView {
    pub fn new(kind: FileKind, mode: u32, nlink: u64, size: u64) -> StatView {
        StatView {
            kind,
            mode: mode & 0o7777,
            nlink,
            size: (kind != FileKind::Directory).then_some(size),
        }
    }
}

impl fmt::Display for StatView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ kind: {:?}, mode: {:#o}, nlink: {}",
            self.kind, self.mode, self.nlink
        )?;
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
