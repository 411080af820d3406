//! Export of a snapshot as a tar stream (POSIX pax), plain or zstd-compressed.

use std::collections::VecDeque;
use std::io::Write;

use bytes::Bytes;
use futures::future::Either;
use futures::{FutureExt, StreamExt};

use vfs_core::{ErrorKind, FileKind, Result, VfsError};

use crate::digest::{Digest, SnapshotId};
use crate::store::Repository;
use crate::tree::{Attrs, Node};

/// The longest name a ustar header holds by itself; longer ones go in a pax record.
const USTAR_NAME_MAX: usize = 100;

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Entries written (the root `./` included).
    pub entries: u64,
    /// File content bytes written.
    pub bytes: u64,
    /// Sockets left out: tar has no entry type for them.
    pub skipped: Vec<String>,
}

fn io_error(err: std::io::Error) -> VfsError {
    VfsError::from_io("export tar", err)
}

/// One pax record: `"<len> <key>=<value>\n"`, where `len` counts the whole record, its own
/// digits included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn pad<W: Write>(out: &mut W, len: u64) -> Result<()> {
    let rem = (len % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem]).map_err(io_error)?;
    }
    Ok(())
}

/// Linux's encoding of a device number.
fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

fn dev_minor(rdev: u64) -> u32 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32
}

/// How many items (headers and chunks) the export fetches ahead of the writer: at most
/// this many chunks are in memory at once.
const FETCH_WINDOW: usize = 16;

/// A header to write, owned, as the export walk queues it.
struct OwnedEntry {
    path: String,
    kind: tar::EntryType,
    attrs: Attrs,
    size: u64,
    link: Option<String>,
    rdev: u64,
}

/// One step of the export, in output order.
enum ExportItem {
    /// A header; `true` when the entry is complete with it (not a regular file).
    Header(OwnedEntry, bool),
    /// A chunk to fetch.
    Chunk(Digest),
    /// A fetched chunk's content.
    Data(Bytes),
    /// A regular file's end: its path and size.
    EndFile(String, u64),
    /// A socket left out.
    Skipped(String),
}

/// The export walk: nodes still to visit (popped from the end) and the items planned.
struct ExportWalk {
    pending: Vec<(String, Node)>,
    queue: VecDeque<ExportItem>,
}

struct TarEntry<'a> {
    path: String,
    kind: tar::EntryType,
    attrs: &'a Attrs,
    size: u64,
    link: Option<&'a str>,
    rdev: u64,
}

/// Writes a pax header (when needed) and the ustar header of one entry.
fn write_headers<W: Write>(out: &mut W, entry: &TarEntry<'_>) -> Result<()> {
    let mut pax = Vec::new();
    let (secs, nanos) = vfs_core::Timestamp(entry.attrs.mtime).to_parts();
    // Always recorded, so nanoseconds and pre-1970 times survive; pax readers prefer it.
    pax_record(&mut pax, "mtime", format!("{secs}.{nanos:09}").as_bytes());
    if entry.path.len() > USTAR_NAME_MAX || !entry.path.is_ascii() {
        pax_record(&mut pax, "path", entry.path.as_bytes());
    }
    if let Some(link) = entry.link {
        if link.len() > USTAR_NAME_MAX || !link.is_ascii() {
            pax_record(&mut pax, "linkpath", link.as_bytes());
        }
    }
    for (name, value) in &entry.attrs.xattrs {
        pax_record(&mut pax, &format!("SCHILY.xattr.{name}"), value);
    }
    let mut xh = tar::Header::new_ustar();
    // The pax header's own name is informational; a fixed one keeps output deterministic.
    xh.set_path("PaxHeader").map_err(io_error)?;
    xh.set_entry_type(tar::EntryType::XHeader);
    xh.set_size(pax.len() as u64);
    xh.set_mode(0o644);
    xh.set_mtime(0);
    xh.set_cksum();
    out.write_all(xh.as_bytes()).map_err(io_error)?;
    out.write_all(&pax).map_err(io_error)?;
    pad(out, pax.len() as u64)?;

    let mut h = tar::Header::new_ustar();
    // Names too long for ustar are in the pax record; the header keeps a truncated copy
    // cut on a character boundary, as readers ignore it.
    let mut short = entry.path.as_str();
    let mut cut = short.len().min(USTAR_NAME_MAX);
    while !short.is_char_boundary(cut) {
        cut -= 1;
    }
    short = &short[..cut];
    if h.set_path(short).is_err() {
        h.as_old_mut().name = [0; 100];
        h.as_old_mut().name[..short.len()].copy_from_slice(short.as_bytes());
    }
    h.set_entry_type(entry.kind);
    h.set_mode(entry.attrs.mode & 0o7777);
    h.set_uid(u64::from(entry.attrs.uid));
    h.set_gid(u64::from(entry.attrs.gid));
    h.set_mtime(secs.max(0) as u64);
    h.set_size(entry.size);
    if let Some(link) = entry.link {
        let mut cut = link.len().min(USTAR_NAME_MAX);
        while !link.is_char_boundary(cut) {
            cut -= 1;
        }
        h.set_link_name_literal(&link.as_bytes()[..cut])
            .map_err(io_error)?;
    }
    if matches!(entry.kind, tar::EntryType::Char | tar::EntryType::Block) {
        h.set_device_major(dev_major(entry.rdev))
            .map_err(io_error)?;
        h.set_device_minor(dev_minor(entry.rdev))
            .map_err(io_error)?;
    }
    h.set_cksum();
    out.write_all(h.as_bytes()).map_err(io_error)
}

impl Repository {
    /// Writes snapshot `id` to `out` as a POSIX pax tar stream, in canonical order (depth
    /// first, names sorted by bytes), so one snapshot always gives the same bytes.
    ///
    /// Each entry has a pax header with its nanosecond mtime, its xattrs
    /// (`SCHILY.xattr.*`, as GNU tar and bsdtar read them) and, past 100 bytes, its path or
    /// link target. The root is `./`; other paths are relative (`etc/hosts`, `etc/`).
    /// Later links of a hard-linked file are hard-link entries naming the first. Content is
    /// fetched and checked as tasks, a bounded window of chunks ahead of the writer, so
    /// memory does not grow with file size; a corrupt or missing chunk stops the export
    /// with `EIO` naming it. Needs a tokio runtime.
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository, id: vfs_snapshot::SnapshotId) -> vfs_core::Result<()> {
    /// let mut tar = Vec::new();
    /// repo.export_tar(&id, &mut tar).await?;
    /// # Ok(()) }
    /// ```
    pub async fn export_tar<W: Write + Send>(
        &self,
        id: &SnapshotId,
        mut out: W,
    ) -> Result<ExportStats> {
        let mut stats = ExportStats::default();
        let start = ExportWalk {
            pending: vec![(String::new(), Node::Directory { tree: *id })],
            queue: VecDeque::new(),
        };
        // The walk yields headers and chunk ids in output order; chunks are fetched,
        // decompressed and checked as tasks, up to FETCH_WINDOW items ahead of the writer,
        // so memory stays bounded while every core works.
        let items = futures::stream::unfold(start, move |mut walk| async move {
            loop {
                if let Some(item) = walk.queue.pop_front() {
                    return Some((Ok(item), walk));
                }
                let (rel, node) = walk.pending.pop()?;
                if let Err(err) = self.plan(rel, node, &mut walk).await {
                    walk.pending.clear();
                    return Some((Err(err), walk));
                }
            }
        })
        // Boxed: the unfold closure's async block, named in the outer future's type, makes
        // rustc reject that future as `Send` (rust-lang/rust#102211), and callers spawn it.
        .boxed();
        let mut ready = std::pin::pin!(items
            .map(|item| match item {
                Ok(ExportItem::Chunk(id)) => Either::Left(
                    self.spawn_read_blob(id)
                        .map(|data| data.map(ExportItem::Data)),
                ),
                other => Either::Right(futures::future::ready(other)),
            })
            .buffered(FETCH_WINDOW));
        let mut written = 0u64;
        while let Some(item) = ready.next().await {
            match item? {
                ExportItem::Header(entry, counts) => {
                    write_headers(
                        &mut out,
                        &TarEntry {
                            path: entry.path,
                            kind: entry.kind,
                            attrs: &entry.attrs,
                            size: entry.size,
                            link: entry.link.as_deref(),
                            rdev: entry.rdev,
                        },
                    )?;
                    written = 0;
                    if counts {
                        stats.entries += 1;
                    }
                }
                ExportItem::Data(data) => {
                    out.write_all(&data).map_err(io_error)?;
                    written += data.len() as u64;
                }
                ExportItem::EndFile(rel, size) => {
                    if written != size {
                        return Err(VfsError::new(ErrorKind::Io, "export tar")
                            .with_path(rel)
                            .with_detail("chunks do not add up to the file's size"));
                    }
                    pad(&mut out, written)?;
                    stats.entries += 1;
                    stats.bytes += written;
                }
                ExportItem::Skipped(rel) => stats.skipped.push(rel),
                ExportItem::Chunk(_) => unreachable!("chunks are fetched"),
            }
        }
        // The end-of-archive marker: two zero blocks.
        out.write_all(&[0u8; 1024]).map_err(io_error)?;
        out.flush().map_err(io_error)?;
        Ok(stats)
    }

    /// Turns one node of the export walk into the items it writes, in order.
    async fn plan(&self, rel: String, node: Node, walk: &mut ExportWalk) -> Result<()> {
        let header =
            |path: String, kind, attrs: Attrs, size, link: Option<String>, rdev| OwnedEntry {
                path,
                kind,
                attrs,
                size,
                link,
                rdev,
            };
        match node {
            Node::Directory { tree } => {
                let tree = self.read_tree(&tree).await?;
                let path = if rel.is_empty() {
                    "./".to_owned()
                } else {
                    format!("{rel}/")
                };
                walk.queue.push_back(ExportItem::Header(
                    header(path, tar::EntryType::Directory, tree.attrs, 0, None, 0),
                    true,
                ));
                for entry in tree.entries.into_iter().rev() {
                    let child = if rel.is_empty() {
                        entry.name
                    } else {
                        format!("{rel}/{}", entry.name)
                    };
                    walk.pending.push((child, entry.node));
                }
            }
            Node::File {
                attrs,
                size,
                chunks,
                hardlink,
            } => {
                if let Some(first) = hardlink {
                    walk.queue.push_back(ExportItem::Header(
                        header(rel, tar::EntryType::Link, attrs, 0, Some(first), 0),
                        true,
                    ));
                    return Ok(());
                }
                walk.queue.push_back(ExportItem::Header(
                    header(rel.clone(), tar::EntryType::Regular, attrs, size, None, 0),
                    false,
                ));
                walk.queue
                    .extend(chunks.iter().map(|chunk| ExportItem::Chunk(chunk.id)));
                walk.queue.push_back(ExportItem::EndFile(rel, size));
            }
            Node::Symlink { attrs, target } => {
                walk.queue.push_back(ExportItem::Header(
                    header(rel, tar::EntryType::Symlink, attrs, 0, Some(target), 0),
                    true,
                ));
            }
            Node::Special {
                kind,
                attrs,
                rdev,
                hardlink,
            } => {
                let (kind, link) = match (hardlink, kind) {
                    (_, FileKind::Socket) => {
                        walk.queue.push_back(ExportItem::Skipped(rel));
                        return Ok(());
                    }
                    (Some(first), _) => (tar::EntryType::Link, Some(first)),
                    (None, FileKind::Fifo) => (tar::EntryType::Fifo, None),
                    (None, FileKind::CharDevice) => (tar::EntryType::Char, None),
                    (None, _) => (tar::EntryType::Block, None),
                };
                walk.queue.push_back(ExportItem::Header(
                    header(rel, kind, attrs, 0, link, rdev),
                    true,
                ));
            }
        }
        Ok(())
    }

    /// As [`Repository::export_tar`], compressed with zstd at `level` (3 is zstd's
    /// default) into one frame: a `.tar.zst` that `tar -I zstd -xf` reads.
    ///
    /// Compression runs on zstd's own worker threads, one per core, beside the task that
    /// fetches and writes the archive. zstd's multi-threaded output does not depend on
    /// how many workers there are, so the same snapshot gives the same bytes anywhere.
    pub async fn export_tar_zst<W: Write + Send>(
        &self,
        id: &SnapshotId,
        out: W,
        level: i32,
    ) -> Result<ExportStats> {
        let mut encoder = zstd::stream::write::Encoder::new(out, level).map_err(io_error)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        encoder
            .multithread(u32::try_from(workers).unwrap_or(1))
            .map_err(io_error)?;
        let stats = self.export_tar(id, &mut encoder).await?;
        encoder.finish().map_err(io_error)?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for value_len in 0..1200 {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; value_len]);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{value_len}");
        }
    }

    #[test]
    fn device_numbers_split_as_linux_does() {
        // makedev(8, 1) and makedev(259, 65536)
        assert_eq!((dev_major(0x801), dev_minor(0x801)), (8, 1));
        let (major, minor): (u64, u64) = (259, 65536);
        let rdev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12);
        assert_eq!((dev_major(rdev), dev_minor(rdev)), (259, 65536));
    }
}
