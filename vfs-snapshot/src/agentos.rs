//! The agentOS JSON snapshot export (`snapshot-export`, format
//! `agent-os-filesystem-snapshot-v1`), both ways.
//!
//! That format holds directories, regular files and symlinks with mode, uid and gid; it has
//! no times, xattrs, hard links or special files. Export therefore writes every link of a
//! hard-linked file as a plain file and leaves fifos, sockets and devices out (naming them
//! in [`AgentOsExportStats::skipped`]); import gives every entry mtime 0 and no xattrs.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use vfs_core::{ErrorKind, FileKind, Result, VfsError, MAX_NAME_BYTES, MAX_PATH_BYTES};

use crate::digest::SnapshotId;
use crate::snapshot::{store_chunk, Counters, SnapshotStats, CHUNK_AVG, CHUNK_MAX, CHUNK_MIN};
use crate::store::Repository;
use crate::tar_import::{implied_dir, link_stays_inside, ImportOptions, Item};
use crate::tree::{Attrs, Node};

/// The `kind` of an agentOS snapshot export.
pub const AGENTOS_KIND: &str = "snapshot-export";
/// The `source.format` of an agentOS snapshot export.
pub const AGENTOS_FORMAT: &str = "agent-os-filesystem-snapshot-v1";

/// An agentOS snapshot export document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOsSnapshot {
    /// Always `snapshot-export`.
    pub kind: String,
    /// The filesystem and its format.
    pub source: AgentOsSource,
}

/// `source` of an agentOS export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOsSource {
    /// Always `agent-os-filesystem-snapshot-v1`.
    pub format: String,
    /// The entries.
    pub filesystem: AgentOsFilesystem,
}

/// `source.filesystem` of an agentOS export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOsFilesystem {
    /// Every entry, parents before children.
    pub entries: Vec<AgentOsEntry>,
}

/// One entry of an agentOS export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOsEntry {
    /// Absolute path (`/` is the root).
    pub path: String,
    /// `file`, `directory` or `symlink`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Permission bits as an octal string (`"0644"`).
    pub mode: String,
    /// Owner user id.
    #[serde(default)]
    pub uid: u32,
    /// Owner group id.
    #[serde(default)]
    pub gid: u32,
    /// File content, in `encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `utf8` or `base64` (files only; `utf8` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Limits of an agentOS export.
#[derive(Clone, Debug, Default)]
pub struct AgentOsExportOptions {
    /// The most file content bytes (before encoding) the export may hold; past it the
    /// export fails with `EFBIG` naming the file that crossed it, before reading it.
    pub max_bytes: Option<u64>,
}

/// What an agentOS export left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentOsExportStats {
    /// Entries written.
    pub entries: u64,
    /// File content bytes written (before encoding).
    pub bytes: u64,
    /// Fifos, sockets and devices left out: the format has no type for them.
    pub skipped: Vec<String>,
}

fn invalid(path: &str, why: &str) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, "import agentOS snapshot")
        .with_path(path)
        .with_detail(why.to_owned())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648), as JavaScript's `Buffer` writes it.
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64: length a multiple of 4, padding only at the end; anything else
/// is `None`. Whitespace is not accepted (exports never contain it).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let groups = bytes.len() / 4;
    for (g, quad) in bytes.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && g + 1 != groups) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Parses an octal mode string (`"0644"`, `"755"`): 1–6 octal digits, at most `0o7777`.
fn parse_mode(path: &str, text: &str) -> Result<u32> {
    let ok =
        !text.is_empty() && text.len() <= 6 && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let mode = if ok {
        u32::from_str_radix(text, 8).ok()
    } else {
        None
    };
    match mode {
        Some(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(invalid(
            path,
            "mode must be an octal string of permission bits, at most 7777",
        )),
    }
}

/// `/a/b` -> `a/b` (the root is ""), refusing anything not absolute and normal: empty
/// components, `.`, `..`, NUL, names or paths past the limits.
fn relative_path(path: &str) -> Result<String> {
    if path == "/" {
        return Ok(String::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid(path, "path is not absolute"));
    };
    if path.len() > MAX_PATH_BYTES {
        return Err(invalid(path, "path too long"));
    }
    for part in rest.split('/') {
        match part {
            "" => return Err(invalid(path, "empty path component")),
            "." | ".." => return Err(invalid(path, "'.' or '..' in path")),
            name if name.len() > MAX_NAME_BYTES => return Err(invalid(path, "name too long")),
            name if name.contains('\0') => return Err(invalid(path, "NUL in path")),
            _ => {}
        }
    }
    Ok(rest.to_owned())
}

fn parent_of(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

/// Checks one entry and turns it into an import item plus its decoded content.
fn check_entry(entry: &AgentOsEntry) -> Result<(String, Item, Vec<u8>)> {
    let rel = relative_path(&entry.path)?;
    let path = entry.path.as_str();
    let mode = parse_mode(path, &entry.mode)?;
    let attrs = Attrs {
        mode,
        uid: entry.uid,
        gid: entry.gid,
        mtime: 0,
        xattrs: Vec::new(),
    };
    let mut item = implied_dir();
    item.attrs = attrs;
    let mut content = Vec::new();
    match entry.kind.as_str() {
        "directory" => {
            if entry.content.is_some() || entry.encoding.is_some() || entry.target.is_some() {
                return Err(invalid(path, "a directory has no content or target"));
            }
        }
        "file" => {
            if rel.is_empty() {
                return Err(invalid(path, "the root must be a directory"));
            }
            if entry.target.is_some() {
                return Err(invalid(path, "a file has no target"));
            }
            item.kind = FileKind::File;
            let text = entry.content.as_deref().unwrap_or("");
            content = match entry.encoding.as_deref().unwrap_or("utf8") {
                "utf8" | "utf-8" => text.as_bytes().to_vec(),
                "base64" => base64_decode(text)
                    .ok_or_else(|| invalid(path, "content is not valid base64"))?,
                _ => return Err(invalid(path, "encoding must be utf8 or base64")),
            };
        }
        "symlink" => {
            if rel.is_empty() {
                return Err(invalid(path, "the root must be a directory"));
            }
            if entry.content.is_some() || entry.encoding.is_some() {
                return Err(invalid(path, "a symlink has no content"));
            }
            let target = entry
                .target
                .clone()
                .ok_or_else(|| invalid(path, "symlink without a target"))?;
            if target.is_empty() || target.contains('\0') || target.len() >= MAX_PATH_BYTES {
                return Err(invalid(path, "invalid symlink target"));
            }
            if !link_stays_inside(&rel, &target) {
                return Err(invalid(path, "symlink leads out of the tree"));
            }
            item.kind = FileKind::Symlink;
            // Symlinks are recorded without attributes (FORMAT.md): their own owner and
            // mode cannot be set through the FileSystem contract.
            item.attrs = Attrs {
                mode: 0o777,
                ..Attrs::default()
            };
            item.target = Some(target);
        }
        _ => return Err(invalid(path, "type must be file, directory or symlink")),
    }
    Ok((rel, item, content))
}

impl Repository {
    /// Exports snapshot `id` as an agentOS `snapshot-export` document: the root `/` first,
    /// then every entry in canonical order (depth-first, names sorted by bytes). File
    /// content is `utf8` when it is valid UTF-8, else `base64`. Mode is an octal string;
    /// times, xattrs and hard-link identity are not part of that format and are dropped;
    /// fifos, sockets and devices are left out and named in the stats.
    ///
    /// `max_bytes` bounds the file content (before encoding): past it the export fails
    /// with `EFBIG` naming the file, before that file is read.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository, id: vfs_snapshot::SnapshotId) -> vfs_core::Result<()> {
    /// use vfs_snapshot::AgentOsExportOptions;
    ///
    /// let options = AgentOsExportOptions { max_bytes: Some(64 << 20) };
    /// let (doc, _stats) = repo.export_agentos(&id, &options).await?;
    /// let json = serde_json::to_string(&doc).unwrap_or_default();
    /// # let _ = json; Ok(()) }
    /// ```
    pub async fn export_agentos(
        &self,
        id: &SnapshotId,
        options: &AgentOsExportOptions,
    ) -> Result<(AgentOsSnapshot, AgentOsExportStats)> {
        let mut stats = AgentOsExportStats::default();
        let mut entries = Vec::new();
        let root = self.read_tree(id).await?;
        entries.push(AgentOsEntry {
            path: "/".to_owned(),
            kind: "directory".to_owned(),
            mode: format!("{:04o}", root.attrs.mode),
            uid: root.attrs.uid,
            gid: root.attrs.gid,
            content: None,
            encoding: None,
            target: None,
        });
        // (path, tree) to list; a stack in reverse name order gives canonical pre-order.
        let mut pending = vec![(String::new(), root)];
        while let Some((dir, tree)) = pending.pop() {
            let mut subdirs = Vec::new();
            for entry in tree.entries {
                let path = format!("{dir}/{}", entry.name);
                match entry.node {
                    Node::Directory { tree: sub } => {
                        let sub = self.read_tree(&sub).await?;
                        entries.push(AgentOsEntry {
                            path: path.clone(),
                            kind: "directory".to_owned(),
                            mode: format!("{:04o}", sub.attrs.mode),
                            uid: sub.attrs.uid,
                            gid: sub.attrs.gid,
                            content: None,
                            encoding: None,
                            target: None,
                        });
                        subdirs.push((path, sub));
                    }
                    Node::File {
                        attrs,
                        size,
                        chunks,
                        ..
                    } => {
                        let total = stats.bytes.saturating_add(size);
                        if options.max_bytes.is_some_and(|max| total > max) {
                            return Err(VfsError::new(
                                ErrorKind::FileTooLarge,
                                "export agentOS snapshot",
                            )
                            .with_path(path)
                            .with_detail(format!(
                                "the export would exceed maxBytes ({} bytes)",
                                options.max_bytes.unwrap_or_default()
                            )));
                        }
                        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                        for chunk in &chunks {
                            data.extend_from_slice(&self.read_blob(&chunk.id).await?);
                        }
                        stats.bytes = total;
                        let (content, encoding) = match String::from_utf8(data) {
                            Ok(text) => (text, "utf8"),
                            Err(err) => (base64_encode(err.as_bytes()), "base64"),
                        };
                        entries.push(AgentOsEntry {
                            path,
                            kind: "file".to_owned(),
                            mode: format!("{:04o}", attrs.mode),
                            uid: attrs.uid,
                            gid: attrs.gid,
                            content: Some(content),
                            encoding: Some(encoding.to_owned()),
                            target: None,
                        });
                    }
                    Node::Symlink { target, .. } => entries.push(AgentOsEntry {
                        path,
                        kind: "symlink".to_owned(),
                        mode: "0777".to_owned(),
                        uid: 0,
                        gid: 0,
                        content: None,
                        encoding: None,
                        target: Some(target),
                    }),
                    Node::Special { .. } => stats.skipped.push(path),
                }
            }
            pending.extend(subdirs.into_iter().rev());
        }
        // The loop above emits a directory's files before its subdirectories' contents;
        // sorting by path components restores strict canonical pre-order.
        entries.sort_by(|a, b| {
            let key = |p: &str| -> Vec<Vec<u8>> {
                p.split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.as_bytes().to_vec())
                    .collect()
            };
            key(&a.path).cmp(&key(&b.path))
        });
        stats.entries = entries.len() as u64;
        Ok((
            AgentOsSnapshot {
                kind: AGENTOS_KIND.to_owned(),
                source: AgentOsSource {
                    format: AGENTOS_FORMAT.to_owned(),
                    filesystem: AgentOsFilesystem { entries },
                },
            },
            stats,
        ))
    }

    /// As [`Repository::export_agentos`], serialized to JSON bytes.
    pub async fn export_agentos_json(
        &self,
        id: &SnapshotId,
        options: &AgentOsExportOptions,
    ) -> Result<Vec<u8>> {
        let (doc, _) = self.export_agentos(id, options).await?;
        serde_json::to_vec(&doc)
            .map_err(|err| VfsError::new(ErrorKind::Io, "export agentOS snapshot").with_source(err))
    }

    /// Imports an agentOS `snapshot-export` JSON document as a snapshot. The whole
    /// document is checked before anything is stored, so a refused document stores
    /// nothing: `EINVAL` for malformed JSON, another `kind` or `format`, paths that are
    /// not absolute or contain `.`, `..` or empty components, a path listed twice, modes
    /// that are not octal permission bits, unknown types or encodings, bad base64,
    /// symlinks climbing above the root, entries beneath a non-directory, a root that is
    /// not a directory, more than `max_entries`; `EFBIG` past `max_file_size` or
    /// `max_total_size`. Unlisted parent directories get mode `0755`, owner 0.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository) -> vfs_core::Result<()> {
    /// let json = br#"{"kind":"snapshot-export","source":{"format":"agent-os-filesystem-snapshot-v1",
    ///   "filesystem":{"entries":[{"path":"/etc/hosts","type":"file","mode":"0644","uid":0,"gid":0,
    ///   "content":"127.0.0.1 localhost\n","encoding":"utf8"}]}}}"#;
    /// let (id, stats) = repo.import_agentos_json(json, &Default::default()).await?;
    /// assert_eq!(stats.files, 1);
    /// # let _ = id; Ok(()) }
    /// ```
    pub async fn import_agentos_json(
        &self,
        json: &[u8],
        options: &ImportOptions,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        let doc: AgentOsSnapshot = serde_json::from_slice(json).map_err(|err| {
            invalid("", "not an agentOS snapshot-export document").with_source(err)
        })?;
        self.import_agentos(&doc, options).await
    }

    /// As [`Repository::import_agentos_json`] for a parsed document.
    pub async fn import_agentos(
        &self,
        doc: &AgentOsSnapshot,
        options: &ImportOptions,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        let started = Instant::now();
        if doc.kind != AGENTOS_KIND {
            return Err(invalid("", "kind is not snapshot-export"));
        }
        if doc.source.format != AGENTOS_FORMAT {
            return Err(invalid("", "format is not agent-os-filesystem-snapshot-v1"));
        }
        let entries = &doc.source.filesystem.entries;
        if entries.len() as u64 > options.max_entries {
            return Err(invalid("", "too many entries"));
        }
        // Validation pass: nothing is stored until every entry is known good.
        let mut items: BTreeMap<String, Item> = BTreeMap::new();
        let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut total: u64 = 0;
        for entry in entries {
            let (rel, item, content) = check_entry(entry)?;
            let size = content.len() as u64;
            if size > options.max_file_size {
                return Err(
                    VfsError::new(ErrorKind::FileTooLarge, "import agentOS snapshot")
                        .with_path(entry.path.clone())
                        .with_detail("file larger than max_file_size"),
                );
            }
            total = total.saturating_add(size);
            if total > options.max_total_size {
                return Err(
                    VfsError::new(ErrorKind::FileTooLarge, "import agentOS snapshot")
                        .with_path(entry.path.clone())
                        .with_detail("content past max_total_size"),
                );
            }
            if items.contains_key(&rel) {
                return Err(invalid(&entry.path, "path listed twice"));
            }
            if item.kind == FileKind::File {
                contents.insert(rel.clone(), content);
            }
            items.insert(rel, item);
        }
        items.entry(String::new()).or_insert_with(implied_dir);
        let paths: Vec<String> = items.keys().cloned().collect();
        for path in &paths {
            let mut parent = parent_of(path);
            while !path.is_empty() {
                match items.get(parent) {
                    Some(item) if item.kind == FileKind::Directory => {}
                    Some(_) => {
                        return Err(invalid(
                            &format!("/{path}"),
                            "entry beneath a non-directory",
                        ))
                    }
                    None => {
                        items.insert(parent.to_owned(), implied_dir());
                    }
                }
                if parent.is_empty() {
                    break;
                }
                parent = parent_of(parent);
            }
        }
        // Store pass, under the writer lock so gc keeps what it dedups against.
        let lock = self.lock_writer().await?;
        let result = self.store_import(items, contents, started).await;
        lock.release().await;
        result
    }

    async fn store_import(
        &self,
        mut items: BTreeMap<String, Item>,
        contents: BTreeMap<String, Vec<u8>>,
        started: Instant,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        // Content cut with the snapshot's FastCDC parameters, so an import of
        // an export dedups against the original.
        let counters = Counters::default();
        for (rel, data) in contents {
            let chunks = self.store_content(data, &counters).await?;
            if let Some(item) = items.get_mut(&rel) {
                item.chunks = chunks;
            }
        }
        self.finish_import(items, counters, started, "agentos")
            .await
    }

    async fn store_content(
        &self,
        mut data: Vec<u8>,
        counters: &Counters,
    ) -> Result<Vec<crate::tree::ChunkRef>> {
        use std::sync::atomic::Ordering;
        counters
            .bytes_read
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut chunks = Vec::new();
        while !data.is_empty() {
            let cut = fastcdc::v2020::FastCDC::new(&data, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)
                .next()
                .map(|c| c.length)
                .unwrap_or(data.len())
                .clamp(1, data.len());
            let rest = data.split_off(cut);
            let chunk = std::mem::replace(&mut data, rest);
            chunks.push(store_chunk(self, chunk, counters).await?);
        }
        Ok(chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for len in 0..40usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64_encode(&data);
            assert_eq!(base64_decode(&text).unwrap(), data, "{text}");
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        for bad in ["a", "aGVsbG8", "aGV=bG8=", "a===", "aGVs bG8=", "aGVsbG8*"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn modes_and_paths_are_strict() {
        assert_eq!(parse_mode("/", "0644").unwrap(), 0o644);
        assert_eq!(parse_mode("/", "4755").unwrap(), 0o4755);
        for bad in ["", "0o644", "888", "100644", "-1", "12345678"] {
            assert!(parse_mode("/", bad).is_err(), "{bad}");
        }
        assert_eq!(relative_path("/a/b").unwrap(), "a/b");
        assert_eq!(relative_path("/").unwrap(), "");
        for bad in ["a", "/a/../b", "//a", "/a/", "/./a", "/a\0b", ""] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }
}
