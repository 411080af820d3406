//! Import of a tar or tar.zst stream as a snapshot, refusing unsafe entries.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Instant;

use fastcdc::v2020::FastCDC;
use tokio::sync::mpsc;
use vfs_core::{ErrorKind, FileKind, Result, Timestamp, VfsError, MAX_NAME_BYTES, MAX_PATH_BYTES};

use crate::digest::{Digest, SnapshotId};
use crate::snapshot::{
    store_chunk, store_new, Counters, SnapshotStats, CHUNK_AVG, CHUNK_MAX, CHUNK_MIN,
};
use crate::store::{BlobKind, Repository, SnapshotInfo, FORMAT_VERSION};
use crate::tree::{Attrs, ChunkRef, Entry, Node, Tree};

/// Limits and permissions of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Accept character and block device entries (refused by default: a snapshot restored
    /// by a privileged process could otherwise plant device nodes).
    pub allow_devices: bool,
    /// The largest file accepted, in bytes (`EFBIG` past it).
    pub max_file_size: u64,
    /// The most content bytes in the whole archive (`EFBIG` past it).
    pub max_total_size: u64,
    /// The most entries (`EINVAL` past it).
    pub max_entries: u64,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            allow_devices: false,
            max_file_size: 64 << 30,
            max_total_size: 1 << 40,
            max_entries: 10_000_000,
        }
    }
}

/// One parsed header, validated.
struct Header {
    path: String,
    kind: FileKind,
    attrs: Attrs,
    /// Symlink target, or for a hard link the path it links to.
    link: Option<String>,
    is_hardlink: bool,
    rdev: u64,
}

enum Event {
    Entry(Header),
    Chunk(Vec<u8>),
    Failed(VfsError),
}

fn bad(path: &str, why: &str) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, "import tar")
        .with_path(path)
        .with_detail(why.to_owned())
}

fn io_bad(err: std::io::Error) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, "import tar")
        .with_detail("malformed archive")
        .with_source(err)
}

/// Normalizes an archive path to `a/b/c` (the root is ""), refusing absolute paths, `..`,
/// NUL, non-UTF-8 and names or paths past the limits `VfsPath` enforces.
fn clean_path(raw: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| bad(&String::from_utf8_lossy(raw), "path is not UTF-8"))?;
    if text.starts_with('/') {
        return Err(bad(text, "absolute path"));
    }
    if text.contains('\0') {
        return Err(bad(text, "NUL in path"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad(text, "'..' in path")),
            name if name.len() > MAX_NAME_BYTES => return Err(bad(text, "name too long")),
            name => parts.push(name),
        }
    }
    let joined = parts.join("/");
    if joined.len() + 1 > MAX_PATH_BYTES {
        return Err(bad(text, "path too long"));
    }
    Ok(joined)
}

/// Whether a relative symlink target, resolved from the link's directory, stays inside the
/// tree. Absolute targets resolve from the root of whatever filesystem the snapshot is
/// restored into (drivers confine them there), so they are accepted.
pub(crate) fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth: i64 = link_path.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

fn parse_pax_mtime(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, f),
        None => (text, ""),
    };
    let negative = secs.starts_with('-');
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        let digit = c.to_digit(10)? as i64;
        nanos += digit * 10i64.pow(8 - i as u32);
    }
    let nanos = if negative { -nanos } else { nanos };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}

/// The blocking side: reads the archive, validates each header, and sends headers and
/// content chunks (cut with the same FastCDC parameters as snapshots, so an import of an
/// exported snapshot dedups against it) over a bounded channel.
fn parse<R: Read>(input: R, options: &ImportOptions, tx: &mpsc::Sender<Event>) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    let mut total: u64 = 0;
    let mut count: u64 = 0;
    for entry in archive.entries().map_err(io_bad)? {
        let mut entry = entry.map_err(io_bad)?;
        let header = entry.header().clone();
        let entry_type = header.entry_type();
        if matches!(entry_type, tar::EntryType::XGlobalHeader) {
            continue;
        }
        count += 1;
        if count > options.max_entries {
            return Err(bad("", "too many entries"));
        }
        let path = clean_path(&entry.path_bytes())?;
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
            tar::EntryType::Link => FileKind::File,
            tar::EntryType::Directory => FileKind::Directory,
            tar::EntryType::Symlink => FileKind::Symlink,
            tar::EntryType::Fifo => FileKind::Fifo,
            tar::EntryType::Char => FileKind::CharDevice,
            tar::EntryType::Block => FileKind::BlockDevice,
            _ => return Err(bad(&path, "unsupported entry type")),
        };
        if path.is_empty() && kind != FileKind::Directory {
            return Err(bad(&path, "the root must be a directory"));
        }
        if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) && !options.allow_devices {
            return Err(bad(&path, "device node (allow_devices is off)"));
        }
        let mut attrs = Attrs {
            mode: header.mode().map_err(io_bad)? & 0o7777,
            uid: u32::try_from(header.uid().map_err(io_bad)?)
                .map_err(|_| bad(&path, "uid out of range"))?,
            gid: u32::try_from(header.gid().map_err(io_bad)?)
                .map_err(|_| bad(&path, "gid out of range"))?,
            mtime: i64::try_from(header.mtime().map_err(io_bad)?)
                .ok()
                .and_then(|s| s.checked_mul(1_000_000_000))
                .ok_or_else(|| bad(&path, "mtime out of range"))?,
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().map_err(io_bad)? {
            for ext in exts {
                let ext = ext.map_err(io_bad)?;
                let Ok(key) = ext.key() else { continue };
                if key == "mtime" {
                    attrs.mtime = parse_pax_mtime(ext.value_bytes())
                        .ok_or_else(|| bad(&path, "bad pax mtime"))?;
                } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    attrs.xattrs.retain(|(n, _)| n != name);
                    attrs
                        .xattrs
                        .push((name.to_owned(), ext.value_bytes().to_vec()));
                }
            }
        }
        attrs
            .xattrs
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let is_hardlink = entry_type == tar::EntryType::Link;
        let link = match (kind, is_hardlink) {
            (_, true) => {
                let raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad(&path, "hard link without a target"))?;
                let target = clean_path(&raw)?;
                if target.is_empty() {
                    return Err(bad(&path, "hard link to the root"));
                }
                Some(target)
            }
            (FileKind::Symlink, false) => {
                let raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad(&path, "symlink without a target"))?;
                let target = String::from_utf8(raw.to_vec())
                    .map_err(|_| bad(&path, "symlink target is not UTF-8"))?;
                if target.is_empty() || target.contains('\0') || target.len() >= MAX_PATH_BYTES {
                    return Err(bad(&path, "invalid symlink target"));
                }
                if !link_stays_inside(&path, &target) {
                    return Err(bad(&path, "symlink leads out of the tree"));
                }
                Some(target)
            }
            _ => None,
        };
        let rdev = match kind {
            FileKind::CharDevice | FileKind::BlockDevice => makedev(
                header.device_major().map_err(io_bad)?.unwrap_or(0),
                header.device_minor().map_err(io_bad)?.unwrap_or(0),
            ),
            _ => 0,
        };
        let size = if kind == FileKind::File && !is_hardlink {
            entry.size()
        } else {
            0
        };
        if size > options.max_file_size {
            return Err(VfsError::new(ErrorKind::FileTooLarge, "import tar")
                .with_path(path)
                .with_detail("file larger than max_file_size"));
        }
        total = total.saturating_add(size);
        if total > options.max_total_size {
            return Err(VfsError::new(ErrorKind::FileTooLarge, "import tar")
                .with_path(path)
                .with_detail("archive content past max_total_size"));
        }
        let send = |event: Event| {
            tx.blocking_send(event).map_err(|_| {
                VfsError::new(ErrorKind::Io, "import tar").with_detail("import was abandoned")
            })
        };
        send(Event::Entry(Header {
            path,
            kind,
            attrs,
            link,
            is_hardlink,
            rdev,
        }))?;
        if size > 0 {
            let mut buf: Vec<u8> = Vec::new();
            let mut eof = false;
            let mut read_total: u64 = 0;
            loop {
                while !eof && buf.len() < CHUNK_MAX as usize {
                    let start = buf.len();
                    buf.resize(start + (1 << 20), 0);
                    let n = entry.read(&mut buf[start..]).map_err(io_bad)?;
                    buf.truncate(start + n);
                    read_total += n as u64;
                    eof = n == 0;
                }
                if buf.is_empty() {
                    break;
                }
                let cut = FastCDC::new(&buf, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)
                    .next()
                    .map(|c| c.length)
                    .unwrap_or(buf.len())
                    .clamp(1, buf.len());
                let rest = buf.split_off(cut);
                send(Event::Chunk(std::mem::replace(&mut buf, rest)))?;
            }
            if read_total != size {
                return Err(bad("", "archive truncated inside a file"));
            }
        }
    }
    Ok(())
}

/// An entry as imported.
pub(crate) struct Item {
    pub(crate) kind: FileKind,
    pub(crate) attrs: Attrs,
    pub(crate) chunks: Vec<ChunkRef>,
    pub(crate) target: Option<String>,
    pub(crate) rdev: u64,
    /// For hard links: the path of the entry whose content this shares.
    pub(crate) link_of: Option<String>,
    pub(crate) hardlink: Option<String>,
}

/// Canonical order of relative paths: depth-first, pre-order, names sorted by bytes,
/// which is the order of their component lists.
fn canonical(a: &str, b: &str) -> CmpOrdering {
    a.split('/')
        .map(str::as_bytes)
        .cmp(b.split('/').map(str::as_bytes))
}

fn parent_of(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

impl Repository {
    /// Reads a tar stream (ustar, pax or GNU) and stores it as a snapshot, returning its
    /// id. Refused with `EINVAL` and no snapshot: absolute paths, `..`, non-UTF-8 names,
    /// relative symlinks that climb out of the tree, hard links to entries not before them,
    /// a path both a directory and not (or beneath a non-directory), device nodes unless
    /// allowed, unsupported entry types, malformed or truncated archives; `EFBIG` past the
    /// size limits. Directories the archive implies but does not list get mode `0o755`,
    /// owner 0 and time 0. A later entry for the same path replaces an earlier one of the
    /// same kind, as tar extraction does. Blobs stored before a refusal are kept (they are
    /// harmless and a retry reuses them); the snapshot record is written only on success.
    ///
    /// Reading runs on the blocking pool, so `input` may be a file or a pipe.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository) -> vfs_core::Result<()> {
    /// let file = std::fs::File::open("rootfs.tar").map_err(|e| vfs_core::VfsError::from_io("open", e))?;
    /// let (id, _) = repo.import_tar(file, &Default::default()).await?;
    /// # let _ = id; Ok(()) }
    /// ```
    pub async fn import_tar<R: Read + Send + 'static>(
        &self,
        input: R,
        options: &ImportOptions,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        // The writer lock keeps gc from removing blobs this import dedups against.
        let lock = self.lock_writer().await?;
        let result = self.import_tar_locked(input, options).await;
        lock.release().await;
        result
    }

    async fn import_tar_locked<R: Read + Send + 'static>(
        &self,
        input: R,
        options: &ImportOptions,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel::<Event>(8);
        let parse_options = options.clone();
        let parser = tokio::task::spawn_blocking(move || {
            if let Err(err) = parse(input, &parse_options, &tx) {
                let _ = tx.blocking_send(Event::Failed(err));
            }
        });
        let counters = Counters::default();
        let mut items: BTreeMap<String, Item> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut failure = None;
        while let Some(event) = rx.recv().await {
            match event {
                Event::Failed(err) => {
                    failure = Some(err);
                    break;
                }
                Event::Chunk(data) => {
                    let Some(item) = current.as_ref().and_then(|p| items.get_mut(p)) else {
                        failure = Some(bad("", "content without an entry"));
                        break;
                    };
                    counters
                        .bytes_read
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    match store_chunk(self, data, &counters).await {
                        Ok(chunk) => item.chunks.push(chunk),
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                }
                Event::Entry(header) => {
                    if let Err(err) = add_entry(&mut items, header, &mut current) {
                        failure = Some(err);
                        break;
                    }
                }
            }
        }
        // Dropping the receiver ends the parser if it is still sending.
        drop(rx);
        let _ = parser.await;
        if let Some(err) = failure {
            return Err(err);
        }
        self.finish_import(items, counters, started, "tar").await
    }

    /// As [`Repository::import_tar`] for a zstd-compressed tar.
    pub async fn import_tar_zst<R: Read + Send + 'static>(
        &self,
        input: R,
        options: &ImportOptions,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        let decoder = zstd::stream::read::Decoder::new(input).map_err(io_bad)?;
        self.import_tar(decoder, options).await
    }

    /// Builds and stores the trees of imported entries (keyed by relative path, `""` the
    /// root) and publishes the snapshot record; shared by the tar and agentOS imports.
    pub(crate) async fn finish_import(
        &self,
        mut items: BTreeMap<String, Item>,
        counters: Counters,
        started: Instant,
        source: &str,
    ) -> Result<(SnapshotId, SnapshotStats)> {
        // Directories the archive implies.
        items.entry(String::new()).or_insert_with(implied_dir);
        let paths: Vec<String> = items.keys().cloned().collect();
        for path in &paths {
            let mut parent = parent_of(path);
            while !path.is_empty() {
                match items.get(parent) {
                    Some(item) if item.kind == FileKind::Directory => {}
                    Some(_) => return Err(bad(path, "entry beneath a non-directory")),
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
        // Hard links: share the content of what they name; the first in canonical order
        // is stored plainly, the others name it.
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        let link_paths: Vec<String> = items
            .iter()
            .filter(|(_, i)| i.link_of.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        for path in link_paths {
            let mut origin = path.clone();
            let mut hops = 0;
            while let Some(next) = items.get(&origin).and_then(|i| i.link_of.clone()) {
                origin = next;
                hops += 1;
                if hops > items.len() {
                    return Err(bad(&path, "hard link loop"));
                }
            }
            let Some(source) = items.get(&origin) else {
                return Err(bad(&path, "hard link to an entry not in the archive"));
            };
            if source.kind == FileKind::Directory || source.kind == FileKind::Symlink {
                return Err(bad(&path, "hard link to a directory or symlink"));
            }
            let (kind, attrs, chunks, rdev) = (
                source.kind,
                source.attrs.clone(),
                source.chunks.clone(),
                source.rdev,
            );
            if let Some(item) = items.get_mut(&path) {
                item.kind = kind;
                item.attrs = attrs;
                item.chunks = chunks;
                item.rdev = rdev;
            }
            groups
                .entry(origin.clone())
                .or_insert_with(|| vec![origin])
                .push(path);
        }
        for (_, mut members) in groups {
            members.sort_by(|a, b| canonical(a, b));
            let Some(first) = members.first().cloned() else {
                continue;
            };
            for member in members.iter().skip(1) {
                if let Some(item) = items.get_mut(member) {
                    item.hardlink = Some(first.clone());
                }
            }
            if let Some(item) = items.get_mut(&first) {
                item.hardlink = None;
            }
        }

        // Trees, deepest first.
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for path in items.keys().filter(|p| !p.is_empty()) {
            children
                .entry(parent_of(path))
                .or_default()
                .push(path.as_str());
        }
        let mut dirs: Vec<&str> = items
            .iter()
            .filter(|(_, i)| i.kind == FileKind::Directory)
            .map(|(p, _)| p.as_str())
            .collect();
        dirs.sort_by_key(|p| {
            std::cmp::Reverse(if p.is_empty() {
                0
            } else {
                p.split('/').count()
            })
        });
        let mut trees: HashMap<&str, Digest> = HashMap::new();
        let mut referenced = Vec::new();
        let mut stats = SnapshotStats::default();
        for dir in dirs {
            let mut entries = Vec::new();
            for &child in children.get(dir).map(Vec::as_slice).unwrap_or(&[]) {
                let Some(item) = items.get(child) else {
                    continue;
                };
                let name = child.rsplit('/').next().unwrap_or(child).to_owned();
                let node = match item.kind {
                    FileKind::Directory => {
                        let Some(tree) = trees.get(child) else {
                            continue;
                        };
                        Node::Directory { tree: *tree }
                    }
                    FileKind::File => {
                        referenced.extend(item.chunks.iter().map(|c| c.id));
                        let size: u64 = item.chunks.iter().map(|c| u64::from(c.len)).sum();
                        stats.files += 1;
                        stats.bytes_total += size;
                        Node::File {
                            attrs: item.attrs.clone(),
                            size,
                            chunks: item.chunks.clone(),
                            hardlink: item.hardlink.clone(),
                        }
                    }
                    FileKind::Symlink => {
                        stats.symlinks += 1;
                        Node::Symlink {
                            attrs: Attrs {
                                mode: 0o777,
                                ..Attrs::default()
                            },
                            target: item.target.clone().unwrap_or_default(),
                        }
                    }
                    kind => {
                        stats.specials += 1;
                        Node::Special {
                            kind,
                            attrs: item.attrs.clone(),
                            rdev: item.rdev,
                            hardlink: item.hardlink.clone(),
                        }
                    }
                };
                entries.push(Entry { name, node });
            }
            let attrs = items.get(dir).map(|i| i.attrs.clone()).unwrap_or_default();
            let bytes = Tree { attrs, entries }.encode();
            let id = Digest::of(&bytes);
            store_new(self, id, BlobKind::Tree, bytes, &counters).await?;
            referenced.push(id);
            trees.insert(dir, id);
            stats.dirs += 1;
        }
        let id = *trees.get("").ok_or_else(|| bad("", "no root"))?;
        self.wait_until_stored(&referenced, "import tar", &counters.objects_written)
            .await?;
        let info = SnapshotInfo {
            version: FORMAT_VERSION,
            id,
            time: Timestamp::now().as_nanos(),
            source: source.to_owned(),
            files: stats.files,
            dirs: stats.dirs,
            bytes: stats.bytes_total,
        };
        if self.publish_snapshot(&info).await? {
            counters.objects_written.fetch_add(1, Ordering::Relaxed);
        }
        counters.fill(&mut stats);
        stats.duration = started.elapsed();
        Ok((id, stats))
    }
}

pub(crate) fn implied_dir() -> Item {
    Item {
        kind: FileKind::Directory,
        attrs: Attrs {
            mode: 0o755,
            ..Attrs::default()
        },
        chunks: Vec::new(),
        target: None,
        rdev: 0,
        link_of: None,
        hardlink: None,
    }
}

fn add_entry(
    items: &mut BTreeMap<String, Item>,
    header: Header,
    current: &mut Option<String>,
) -> Result<()> {
    let link_of = if header.is_hardlink {
        header.link.clone()
    } else {
        None
    };
    if let Some(target) = &link_of {
        if !items.contains_key(target) {
            return Err(bad(&header.path, "hard link to an entry not before it"));
        }
        if *target == header.path {
            return Err(bad(&header.path, "hard link to itself"));
        }
    }
    if let Some(existing) = items.get(&header.path) {
        let same_kind =
            existing.kind == header.kind && existing.link_of.is_none() && link_of.is_none();
        if !same_kind {
            return Err(bad(&header.path, "path listed twice with different kinds"));
        }
    }
    let target = if header.kind == FileKind::Symlink {
        header.link
    } else {
        None
    };
    items.insert(
        header.path.clone(),
        Item {
            kind: header.kind,
            attrs: header.attrs,
            chunks: Vec::new(),
            target,
            rdev: header.rdev,
            link_of,
            hardlink: None,
        },
    );
    *current = Some(header.path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path(b"./a//b/").unwrap(), "a/b");
        assert_eq!(clean_path(b"./").unwrap(), "");
        for bad in [&b"/etc"[..], b"a/../../x", b"..", b"a\0b", b"\xff"] {
            assert!(clean_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn symlink_escape_is_detected() {
        assert!(link_stays_inside("a/b", "../c"));
        assert!(!link_stays_inside("a/b", "../../c"));
        assert!(!link_stays_inside("b", "../x"));
        assert!(link_stays_inside("b", "/etc/x"));
        assert!(link_stays_inside("a/b", "x/../../y"));
        assert!(!link_stays_inside("a/b", "x/../../../y"));
    }

    #[test]
    fn pax_times_parse_to_nanoseconds() {
        assert_eq!(parse_pax_mtime(b"1.5"), Some(1_500_000_000));
        assert_eq!(parse_pax_mtime(b"-1.25"), Some(-1_250_000_000));
        assert_eq!(parse_pax_mtime(b"12"), Some(12_000_000_000));
        assert_eq!(parse_pax_mtime(b"x"), None);
    }
}
