//! Applies operations to a real directory on tmpfs through std::fs and walks its tree.

use std::cell::RefCell;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{symlink, DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use vfs_core::{FileKind, OpenOptions as VfsOpenOptions};

use crate::ops::{Listing, Op, SLOTS};
use crate::outcome::{Node, Outcome, StatView, Tree};

/// The directory under test, canonical, without a trailing slash.
pub struct Host {
    root: String,
    /// The open handles of the sequence, by slot.
    handles: RefCell<[Option<File>; SLOTS]>,
}

fn kind_of(file_type: fs::FileType) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_symlink() {
        FileKind::Symlink
    } else if file_type.is_dir() {
        FileKind::Directory
    } else if file_type.is_file() {
        FileKind::File
    } else if file_type.is_fifo() {
        FileKind::Fifo
    } else if file_type.is_socket() {
        FileKind::Socket
    } else if file_type.is_char_device() {
        FileKind::CharDevice
    } else {
        FileKind::BlockDevice
    }
}

fn view(meta: &fs::Metadata) -> StatView {
    StatView::new(
        kind_of(meta.file_type()),
        meta.mode(),
        meta.nlink(),
        meta.size(),
    )
}

fn errno(err: io::Error) -> Outcome {
    Outcome::Errno(err.raw_os_error().unwrap_or(-1))
}

/// `pread` until `len` bytes or the end of the file. Always reads once, even for `len` 0:
/// `pread(2)` of 0 bytes still fails on a directory (EISDIR).
fn read_full_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut filled = 0;
    loop {
        let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
        filled += n;
        if n == 0 || filled == len {
            break;
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// `rm -r` as the trait's contract words it, over plain syscalls: a non-directory (a
/// symlink included) is unlinked; a directory has its entries removed (subdirectories
/// first listed, then emptied) and is then removed, every error reported. (std's
/// `remove_dir_all` differs on purpose: it refuses a file with ENOTDIR and ignores a
/// directory that vanished under it, which only matters in races.) `lstat` of `link/`
/// follows the link, as `rm -r link/` does.
fn remove_all(path: &str) -> io::Result<()> {
    if !fs::symlink_metadata(path)?.is_dir() {
        return fs::remove_file(path);
    }
    let trimmed = path.trim_end_matches('/');
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_str().expect("UTF-8 names").to_owned();
        let child = format!("{trimmed}/{name}");
        if entry.file_type()?.is_dir() {
            remove_all(&child)?;
        } else {
            fs::remove_file(&child)?;
        }
    }
    fs::remove_dir(trimmed)
}

/// `open(2)` with the flags `options` stand for. Through rustix, as std's OpenOptions
/// refuses `truncate` or `create` without write access, which open(2) allows.
fn open_file(path: &str, options: &VfsOpenOptions) -> io::Result<File> {
    let writes = options.write || options.append;
    let reads = options.read || !writes;
    let mut flags = match (reads, writes) {
        (true, true) => OFlags::RDWR,
        (false, true) => OFlags::WRONLY,
        _ => OFlags::RDONLY,
    };
    flags |= OFlags::CLOEXEC;
    if options.append {
        flags |= OFlags::APPEND;
    }
    if options.create || options.create_new {
        flags |= OFlags::CREATE;
    }
    if options.create_new {
        flags |= OFlags::EXCL;
    }
    if options.truncate {
        flags |= OFlags::TRUNC;
    }
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(options.mode))?;
    Ok(File::from(fd))
}

/// EBADF for an empty slot, on both sides.
fn no_handle() -> io::Error {
    io::Error::from(rustix::io::Errno::BADF)
}

impl Host {
    pub fn new(dir: &Path) -> Host {
        let root = fs::canonicalize(dir).expect("canonicalize the test directory");
        Host {
            root: root.to_str().expect("a UTF-8 temp path").to_owned(),
            handles: RefCell::default(),
        }
    }

    pub fn set_root_mode(&self, mode: u32) {
        fs::set_permissions(&self.root, fs::Permissions::from_mode(mode))
            .expect("chmod the test directory");
    }

    /// The host path of a pool path, keeping a trailing slash (which `Path::join` would too,
    /// but string concatenation makes it obvious).
    fn path(&self, path: &str) -> String {
        format!("{}/{path}", self.root)
    }

    /// Whether `op` is left out on both sides, as its result depends on something POSIX
    /// leaves unspecified.
    ///
    /// `remove_dir_all("link/")` where the link lies inside the directory it names (a
    /// target of `.` or of an ancestor): removing the link midway makes every later entry
    /// unreachable through that path, so what is left depends on readdir order, which no
    /// two filesystems share.
    pub fn skips(&self, op: &Op) -> bool {
        let Op::RemoveDirAll { path } = op else {
            return false;
        };
        if !path.ends_with('/') {
            return false;
        }
        let link = self.path(path.trim_end_matches('/'));
        let is_link = fs::symlink_metadata(&link).is_ok_and(|meta| meta.is_symlink());
        let (Ok(target), Some(parent)) = (fs::canonicalize(&link), Path::new(&link).parent())
        else {
            return false;
        };
        is_link && fs::canonicalize(parent).is_ok_and(|parent| parent.starts_with(&target))
    }

    /// `realpath(3)`, as a path within the test directory.
    fn realpath(&self, path: &str) -> io::Result<Outcome> {
        let resolved = fs::canonicalize(path)?;
        let resolved = resolved.to_str().expect("UTF-8 paths");
        Ok(Outcome::Text(match resolved.strip_prefix(&self.root) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => format!("<outside the test directory: {resolved}>"),
        }))
    }

    pub fn apply(&self, op: &Op) -> Outcome {
        self.try_apply(op).unwrap_or_else(errno)
    }

    fn try_apply(&self, op: &Op) -> io::Result<Outcome> {
        let mut handles = self.handles.borrow_mut();
        Ok(match op {
            Op::OpenHandle {
                slot,
                path,
                options,
            } => {
                handles[*slot] = Some(open_file(&self.path(path), options)?);
                Outcome::Done
            }
            Op::HandleWrite { slot, offset, data } => {
                // With O_APPEND, Linux's pwrite writes at the end whatever the offset,
                // as `FileHandle::write_at` does.
                let file = handles[*slot].as_ref().ok_or_else(no_handle)?;
                file.write_all_at(data, *offset)?;
                Outcome::Done
            }
            Op::HandleRead { slot, offset, len } => {
                let file = handles[*slot].as_ref().ok_or_else(no_handle)?;
                Outcome::Data(read_full_at(file, *offset, *len)?)
            }
            Op::HandleSetLen { slot, len } => {
                let file = handles[*slot].as_ref().ok_or_else(no_handle)?;
                file.set_len(*len)?;
                Outcome::Done
            }
            Op::HandleStat { slot } => {
                let file = handles[*slot].as_ref().ok_or_else(no_handle)?;
                Outcome::Stat(view(&file.metadata()?))
            }
            Op::CloseHandle { slot } => {
                handles[*slot].take().ok_or_else(no_handle)?;
                Outcome::Done
            }
            Op::WriteFile { path, data } => {
                // vfs `write_file` creates with 0o644; std's `fs::write` would use 0o666.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(self.path(path))?;
                file.write_all(data)?;
                Outcome::Done
            }
            Op::Append { path, data, create } => {
                let mut file = OpenOptions::new()
                    .append(true)
                    .create(*create)
                    .mode(0o644)
                    .open(self.path(path))?;
                file.write_all(data)?;
                Outcome::Done
            }
            Op::Pwrite { path, offset, data } => {
                let file = OpenOptions::new().write(true).open(self.path(path))?;
                file.write_all_at(data, *offset)?;
                Outcome::Done
            }
            Op::CreateNew { path, mode, data } => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(*mode)
                    .open(self.path(path))?;
                file.write_all(data)?;
                Outcome::Done
            }
            Op::ReadFile { path } => Outcome::Data(fs::read(self.path(path))?),
            Op::Pread { path, offset, len } => {
                let file = File::open(self.path(path))?;
                Outcome::Data(read_full_at(&file, *offset, *len)?)
            }
            Op::Truncate { path, len } => {
                let file = OpenOptions::new().write(true).open(self.path(path))?;
                file.set_len(*len)?;
                Outcome::Done
            }
            Op::CreateDir { path, mode } => {
                DirBuilder::new().mode(*mode).create(self.path(path))?;
                Outcome::Done
            }
            Op::CreateDirAll { path, mode } => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(*mode)
                    .create(self.path(path))?;
                Outcome::Done
            }
            Op::RemoveFile { path } => {
                fs::remove_file(self.path(path))?;
                Outcome::Done
            }
            Op::RemoveDir { path } => {
                fs::remove_dir(self.path(path))?;
                Outcome::Done
            }
            Op::RemoveDirAll { path } => {
                remove_all(&self.path(path))?;
                Outcome::Done
            }
            Op::Rename { from, to } => {
                fs::rename(self.path(from), self.path(to))?;
                Outcome::Done
            }
            Op::Symlink { target, link } => {
                symlink(target, self.path(link))?;
                Outcome::Done
            }
            Op::ReadLink { path } => {
                let target = fs::read_link(self.path(path))?;
                Outcome::Text(target.to_str().expect("UTF-8 targets").to_owned())
            }
            Op::HardLink { existing, new } => {
                // linkat(2) without AT_SYMLINK_FOLLOW: a final symlink is linked, not followed.
                fs::hard_link(self.path(existing), self.path(new))?;
                Outcome::Done
            }
            Op::Stat { path } => Outcome::Stat(view(&fs::metadata(self.path(path))?)),
            Op::Lstat { path } => Outcome::Stat(view(&fs::symlink_metadata(self.path(path))?)),
            Op::ReadDir { path } => {
                let mut entries = Vec::new();
                for entry in fs::read_dir(self.path(path))? {
                    let entry = entry?;
                    let name = entry.file_name().to_str().expect("UTF-8 names").to_owned();
                    entries.push((name, kind_of(entry.file_type()?)));
                }
                entries.sort_by(|x, y| x.0.cmp(&y.0));
                Outcome::Entries(entries)
            }
            Op::Chmod { path, mode } => {
                fs::set_permissions(self.path(path), fs::Permissions::from_mode(*mode))?;
                Outcome::Done
            }
            Op::Chown { path, uid, gid } => {
                std::os::unix::fs::chown(self.path(path), *uid, *gid)?;
                Outcome::Done
            }
            Op::Exists { path } => {
                // The trait's contract: a stat that fails with ENOENT or ENOTDIR means "no".
                match fs::metadata(self.path(path)) {
                    Ok(_) => Outcome::Bool(true),
                    Err(err)
                        if matches!(
                            err.raw_os_error(),
                            Some(code) if code == rustix::io::Errno::NOENT.raw_os_error()
                                || code == rustix::io::Errno::NOTDIR.raw_os_error()
                        ) =>
                    {
                        Outcome::Bool(false)
                    }
                    Err(err) => return Err(err),
                }
            }
            Op::Realpath { path } => self.realpath(&self.path(path))?,
            Op::Open {
                path,
                options,
                data,
            } => {
                let mut file = open_file(&self.path(path), options)?;
                let writes = options.write || options.append;
                let reads = options.read || !writes;
                if writes {
                    if options.append {
                        file.write_all(data)?;
                    } else {
                        file.write_all_at(data, 0)?;
                    }
                }
                if reads {
                    Outcome::Data(read_full_at(&file, 0, 32)?)
                } else {
                    Outcome::Done
                }
            }
            Op::SymlinkChain { len, target } => {
                for i in 0..*len {
                    let to = if i + 1 < *len {
                        format!("z{}", i + 1)
                    } else {
                        target.clone()
                    };
                    symlink(to, self.path(&format!("z{i}")))?;
                }
                let z0 = self.path("z0");
                let stat = fs::metadata(&z0).map_or_else(errno, |meta| Outcome::Stat(view(&meta)));
                let real = self.realpath(&z0).unwrap_or_else(errno);
                for i in 0..*len {
                    fs::remove_file(self.path(&format!("z{i}")))?;
                }
                Outcome::Chain(Box::new(stat), Box::new(real))
            }
            Op::UnlinkedHandle { path, data } => {
                let path = self.path(path);
                let file = OpenOptions::new().read(true).write(true).open(&path)?;
                fs::remove_file(&path)?;
                file.write_all_at(data, 0)?;
                let read = read_full_at(&file, 0, 64)?;
                let stat = view(&file.metadata()?);
                Outcome::AfterUnlink(read, stat)
            }
        })
    }

    /// Every path below the root with its kind, sorted, for drawing the next operation.
    pub fn listing(&self) -> Listing {
        let mut entries = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            let Ok(list) = fs::read_dir(format!("{}/{dir}", self.root)) else {
                continue;
            };
            for entry in list.flatten() {
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name().to_str().expect("UTF-8 names").to_owned();
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if file_type.is_dir() {
                    pending.push(path.clone());
                }
                entries.push((path, kind_of(file_type)));
            }
        }
        entries.sort_by(|x, y| x.0.cmp(&y.0));
        let open_slots = (0..SLOTS)
            .filter(|&slot| self.handles.borrow()[slot].is_some())
            .collect();
        Listing {
            entries,
            open_slots,
        }
    }

    /// Every entry below the root, with its content or target.
    pub fn tree(&self) -> io::Result<Tree> {
        let mut tree = Tree::new();
        tree.insert(
            "/".to_owned(),
            Node {
                stat: view(&fs::symlink_metadata(&self.root)?),
                content: None,
                target: None,
            },
        );
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(format!("{}{dir}", self.root))? {
                let entry = entry?;
                let name = entry.file_name().to_str().expect("UTF-8 names").to_owned();
                let rel = format!("{dir}/{name}");
                let host_path = format!("{}{rel}", self.root);
                let meta = fs::symlink_metadata(&host_path)?;
                let mut node = Node {
                    stat: view(&meta),
                    content: None,
                    target: None,
                };
                match node.stat.kind {
                    FileKind::File => node.content = Some(fs::read(&host_path)?),
                    FileKind::Symlink => {
                        let target = fs::read_link(&host_path)?;
                        node.target = Some(target.to_str().expect("UTF-8 targets").to_owned());
                    }
                    FileKind::Directory => pending.push(rel.clone()),
                    _ => {}
                }
                tree.insert(rel, node);
            }
        }
        Ok(tree)
    }
}
