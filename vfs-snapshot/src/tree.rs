//! The canonical encoding of one directory (format version 1, see FORMAT.md).
//!
//! Every field has one encoding and entries are sorted by name bytes, so equal trees give
//! equal bytes and therefore equal digests on any machine.

use vfs_core::{ErrorKind, FileKind, Result, VfsError};

use crate::digest::Digest;

/// The first bytes of every tree blob: a magic and the format version.
const TREE_MAGIC: &[u8; 5] = b"VFST\x01";

/// Attributes every node carries (a directory's are in its own tree blob).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time in nanoseconds since the epoch.
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// One piece of a file's content: the chunk's digest and its uncompressed length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// The SHA-256 of the chunk's bytes.
    pub id: Digest,
    /// Its length in bytes.
    pub len: u32,
}

/// What an entry of a directory is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file: its content as a list of chunks.
    File {
        /// Owner, mode, time, xattrs.
        attrs: Attrs,
        /// Size in bytes (the sum of the chunk lengths).
        size: u64,
        /// The content, in order.
        chunks: Vec<ChunkRef>,
        /// For the second and later links of a hard-linked file: the path, relative to
        /// the snapshot root, of its first link in canonical order.
        hardlink: Option<String>,
    },
    /// A subdirectory: the digest of its tree blob, which holds its attributes.
    Directory {
        /// The subtree's digest.
        tree: Digest,
    },
    /// A symbolic link.
    Symlink {
        /// Owner, mode, time, xattrs.
        attrs: Attrs,
        /// The target as stored.
        target: String,
    },
    /// A fifo, socket or device node.
    Special {
        /// Which of them.
        kind: FileKind,
        /// Owner, mode, time, xattrs.
        attrs: Attrs,
        /// The device number (0 for fifos and sockets).
        rdev: u64,
        /// As for files.
        hardlink: Option<String>,
    },
}

impl Node {
    /// The kind of object this node is.
    pub fn kind(&self) -> FileKind {
        match self {
            Node::File { .. } => FileKind::File,
            Node::Directory { .. } => FileKind::Directory,
            Node::Symlink { .. } => FileKind::Symlink,
            Node::Special { kind, .. } => *kind,
        }
    }
}

/// One named entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name within the directory.
    pub name: String,
    /// What it is.
    pub node: Node,
}

/// A directory: its own attributes and its entries sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// The directory's own owner, mode, time and xattrs.
    pub attrs: Attrs,
    /// The entries, sorted by name bytes, names unique.
    pub entries: Vec<Entry>,
}

fn kind_code(kind: FileKind) -> u8 {
    match kind {
        FileKind::File => 1,
        FileKind::Directory => 2,
        FileKind::Symlink => 3,
        FileKind::Fifo => 4,
        FileKind::CharDevice => 5,
        FileKind::BlockDevice => 6,
        FileKind::Socket => 7,
    }
}

fn kind_from_code(code: u8) -> Option<FileKind> {
    Some(match code {
        1 => FileKind::File,
        2 => FileKind::Directory,
        3 => FileKind::Symlink,
        4 => FileKind::Fifo,
        5 => FileKind::CharDevice,
        6 => FileKind::BlockDevice,
        7 => FileKind::Socket,
        _ => return None,
    })
}

impl Tree {
    /// The canonical bytes of this tree. Entries are sorted here, so callers may build
    /// them in any order.
    pub fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut out = Vec::with_capacity(64 + entries.len() * 96);
        out.extend_from_slice(TREE_MAGIC);
        put_attrs(&mut out, &self.attrs);
        put_u32(&mut out, entries.len() as u32);
        for entry in entries {
            put_bytes(&mut out, entry.name.as_bytes());
            out.push(kind_code(entry.node.kind()));
            match &entry.node {
                Node::File {
                    attrs,
                    size,
                    chunks,
                    hardlink,
                } => {
                    put_attrs(&mut out, attrs);
                    put_bytes(&mut out, hardlink.as_deref().unwrap_or("").as_bytes());
                    put_u64(&mut out, *size);
                    put_u32(&mut out, chunks.len() as u32);
                    for chunk in chunks {
                        out.extend_from_slice(&chunk.id.0);
                        put_u32(&mut out, chunk.len);
                    }
                }
                Node::Directory { tree } => out.extend_from_slice(&tree.0),
                Node::Symlink { attrs, target } => {
                    put_attrs(&mut out, attrs);
                    put_bytes(&mut out, target.as_bytes());
                }
                Node::Special {
                    attrs,
                    rdev,
                    hardlink,
                    ..
                } => {
                    put_attrs(&mut out, attrs);
                    put_bytes(&mut out, hardlink.as_deref().unwrap_or("").as_bytes());
                    put_u64(&mut out, *rdev);
                }
            }
        }
        out
    }

    /// Parses a tree blob, refusing anything that is not canonical (`EIO` naming the blob:
    /// a tree that does not parse is a corrupt store).
    pub fn decode(id: &Digest, data: &[u8]) -> Result<Tree> {
        let mut r = Reader { data, pos: 0, id };
        if r.take(TREE_MAGIC.len())? != TREE_MAGIC {
            return Err(r.bad("not a version 1 tree"));
        }
        let attrs = r.attrs()?;
        let count = r.u32()? as usize;
        // Each entry takes at least 8 bytes, so a huge count in a short blob is corrupt;
        // checking first keeps a bad count from reserving memory.
        if count > data.len() / 8 {
            return Err(r.bad("entry count past the blob's end"));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.string()?;
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains('/')
                || name.contains('\0')
            {
                return Err(r.bad("invalid entry name"));
            }
            if let Some(last) = entries.last() {
                if last.name.as_bytes() >= name.as_bytes() {
                    return Err(r.bad("entries not sorted or not unique"));
                }
            }
            let kind = kind_from_code(r.u8()?).ok_or_else(|| r.bad("unknown entry kind"))?;
            let node = match kind {
                FileKind::File => {
                    let attrs = r.attrs()?;
                    let hardlink = r.hardlink()?;
                    let size = r.u64()?;
                    let n = r.u32()? as usize;
                    if n > data.len() / 36 {
                        return Err(r.bad("chunk count past the blob's end"));
                    }
                    let mut chunks = Vec::with_capacity(n);
                    let mut total: u64 = 0;
                    for _ in 0..n {
                        let id = r.digest()?;
                        let len = r.u32()?;
                        total = total.saturating_add(u64::from(len));
                        chunks.push(ChunkRef { id, len });
                    }
                    if total != size {
                        return Err(r.bad("file size differs from its chunks' total"));
                    }
                    Node::File {
                        attrs,
                        size,
                        chunks,
                        hardlink,
                    }
                }
                FileKind::Directory => Node::Directory { tree: r.digest()? },
                FileKind::Symlink => {
                    let attrs = r.attrs()?;
                    let target = r.string()?;
                    Node::Symlink { attrs, target }
                }
                kind => {
                    let attrs = r.attrs()?;
                    let hardlink = r.hardlink()?;
                    let rdev = r.u64()?;
                    Node::Special {
                        kind,
                        attrs,
                        rdev,
                        hardlink,
                    }
                }
            };
            entries.push(Entry { name, node });
        }
        if r.pos != data.len() {
            return Err(r.bad("trailing bytes"));
        }
        Ok(Tree { attrs, entries })
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

fn put_attrs(out: &mut Vec<u8>, attrs: &Attrs) {
    put_u32(out, attrs.mode);
    put_u32(out, attrs.uid);
    put_u32(out, attrs.gid);
    out.extend_from_slice(&attrs.mtime.to_le_bytes());
    let mut xattrs: Vec<&(String, Vec<u8>)> = attrs.xattrs.iter().collect();
    xattrs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    put_u32(out, xattrs.len() as u32);
    for (name, value) in xattrs {
        put_bytes(out, name.as_bytes());
        put_bytes(out, value);
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    id: &'a Digest,
}

impl<'a> Reader<'a> {
    fn bad(&self, why: &str) -> VfsError {
        VfsError::new(ErrorKind::Io, "decode tree")
            .with_path(format!("tree {}", self.id))
            .with_detail(format!("{why} at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len());
        match end {
            Some(end) => {
                let slice = &self.data[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.bad("truncated")),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn i64(&mut self) -> Result<i64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(b))
    }

    fn digest(&mut self) -> Result<Digest> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(Digest(b))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String> {
        let bytes = self.bytes()?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(self.bad("a name is not UTF-8")),
        }
    }

    fn hardlink(&mut self) -> Result<Option<String>> {
        let link = self.string()?;
        Ok(if link.is_empty() { None } else { Some(link) })
    }

    fn attrs(&mut self) -> Result<Attrs> {
        let mode = self.u32()?;
        let uid = self.u32()?;
        let gid = self.u32()?;
        let mtime = self.i64()?;
        let n = self.u32()? as usize;
        if n > self.data.len() / 8 {
            return Err(self.bad("xattr count past the blob's end"));
        }
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let value = self.bytes()?.to_vec();
            if let Some(last) = xattrs.last() {
                if last.0.as_bytes() >= name.as_bytes() {
                    return Err(self.bad("xattrs not sorted or not unique"));
                }
            }
            xattrs.push((name, value));
        }
        Ok(Attrs {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        Tree {
            attrs: Attrs {
                mode: 0o755,
                ..Attrs::default()
            },
            entries: vec![
                Entry {
                    name: "b".into(),
                    node: Node::Symlink {
                        attrs: Attrs::default(),
                        target: "a".into(),
                    },
                },
                Entry {
                    name: "a".into(),
                    node: Node::File {
                        attrs: Attrs {
                            mode: 0o644,
                            uid: 1,
                            gid: 2,
                            mtime: -5,
                            xattrs: vec![("user.x".into(), b"1".to_vec())],
                        },
                        size: 3,
                        chunks: vec![ChunkRef {
                            id: Digest::of(b"abc"),
                            len: 3,
                        }],
                        hardlink: None,
                    },
                },
            ],
        }
    }

    #[test]
    fn encoding_is_sorted_and_round_trips() {
        let tree = sample();
        let bytes = tree.encode();
        let back = Tree::decode(&Digest::of(&bytes), &bytes).unwrap();
        assert_eq!(back.entries[0].name, "a");
        assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let err = Tree::decode(&Digest::of(b""), &bytes[..len]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Tree::decode(&Digest::of(b""), &longer).is_err());
    }
}
