//! The driver's operations as plain blocking functions over the root; `mod.rs` decides
//! which thread runs them.
//!
//! Every function reaches the host only through [`Root`]: a confined `openat2` for
//! anything that walks a path, and `*at` calls that get one plain name in a directory
//! reached that way and never follow it. Where a trailing slash would make the kernel
//! follow a final symlink in such a call, the function checks what the slash requires
//! itself (through a confined lookup) and hands the kernel the bare name.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use rustix::buffer::spare_capacity;
use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, Timestamps, Uid};
use rustix::io::Errno;
use vfs_core::{
    DirEntry, ErrorKind, FileKind, Metadata, OpenOptions, Result, SetTime, StatFs, VfsError,
    VfsPath, MAX_SYMLINK_HOPS,
};

use super::convert;
use super::fd_ops;
use super::root::{fail, fail_kind, io_fail, is_dir, kernel_path, statx_at, statx_fd, DirFd, Root};

/// `S_ISGID`: a directory created in a setgid directory inherits it.
const SET_GID: u32 = 0o2000;

pub(super) fn stat(root: &Root, path: &VfsPath, follow: bool) -> Result<Metadata> {
    let op = if follow { "stat" } else { "lstat" };
    let stat = root.statx(path, follow).map_err(|e| fail(op, path, e))?;
    convert::metadata(&stat).map_err(|e| fail(op, path, e))
}

pub(super) fn read_dir(root: &Root, path: &VfsPath) -> Result<Vec<DirEntry>> {
    list_dir(root, path, true)
}

/// The entries of a directory with their `lstat` metadata: one `statx` per entry relative
/// to the directory's descriptor, where a path lookup would walk from the root each time.
pub(super) fn read_dir_plus(root: &Root, path: &VfsPath) -> Result<Vec<(String, Metadata)>> {
    let mut entries = Vec::new();
    for_each_entry(root, path, true, |dir, entry| {
        match statx_at(dir, entry.file_name()) {
            Ok(stat) => entries.push((entry_name(entry), convert::metadata(&stat)?)),
            // Removed since it was listed.
            Err(Errno::NOENT) => {}
            Err(errno) => return Err(errno),
        }
        Ok(())
    })
    .map_err(|errno| fail("scandir", path, errno))?;
    Ok(entries)
}

/// The entries of a directory; with `follow` unset, a symlink at `path` is refused
/// rather than listed through.
fn list_dir(root: &Root, path: &VfsPath, follow: bool) -> Result<Vec<DirEntry>> {
    let mut entries = Vec::new();
    for_each_entry(root, path, follow, |dir, entry| {
        let kind = match convert::entry_kind(entry.file_type()) {
            Some(kind) => kind,
            // DT_UNKNOWN: this filesystem does not say in its listing, so ask the entry.
            None => match statx_at(dir, entry.file_name()) {
                Ok(stat) => FileKind::from_mode(u32::from(stat.stx_mode)).ok_or(Errno::IO)?,
                // Removed since it was listed.
                Err(Errno::NOENT) => return Ok(()),
                Err(errno) => return Err(errno),
            },
        };
        entries.push(DirEntry {
            name: entry_name(entry),
            kind,
            ino: entry.ino(),
        });
        Ok(())
    })
    .map_err(|errno| fail("scandir", path, errno))?;
    Ok(entries)
}

/// Calls `visit` with the directory's descriptor and each entry but `.` and `..`.
fn for_each_entry(
    root: &Root,
    path: &VfsPath,
    follow: bool,
    mut visit: impl FnMut(BorrowedFd<'_>, &rustix::fs::DirEntry) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = root.openat2(&*kernel_path(path), flags, Mode::empty())?;
    let mut dir = Dir::new(fd)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        if matches!(entry.file_name().to_bytes(), b"." | b"..") {
            continue;
        }
        visit(dir.fd()?, &entry)?;
    }
    Ok(())
}

fn entry_name(entry: &rustix::fs::DirEntry) -> String {
    String::from_utf8_lossy(entry.file_name().to_bytes()).into_owned()
}

pub(super) fn create_dir(root: &Root, path: &VfsPath, mode: u32) -> Result<()> {
    const OP: &str = "mkdir";
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return Err(fail_kind(OP, path, ErrorKind::AlreadyExists));
    };
    rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(mode & 0o7777))
        .map_err(|e| fail(OP, path, e))?;
    exact_dir_mode(&dir, name, mode & 0o7777);
    Ok(())
}

/// Gives a directory just created the mode it was asked for, which the process umask may
/// have trimmed (the contract has no umask: the guest applied its own). A setgid bit
/// inherited from the parent stays, as Linux keeps it. Best effort: the directory exists
/// either way, and a host filesystem without modes keeps its own.
fn exact_dir_mode(dir: &DirFd<'_>, name: &str, mode: u32) {
    let Ok(stat) = statx_at(dir.as_fd(), name) else {
        return;
    };
    let current = u32::from(stat.stx_mode) & 0o7777;
    let wanted = mode | (current & SET_GID);
    if current == wanted || !is_dir(&stat) {
        return;
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::openat(dir, name, flags, Mode::empty()) {
        let _ = fd_ops::chmod(fd.as_fd(), wanted);
    }
}

/// `mkdir -p`: creates each missing directory from the top down; an existing component
/// must be (or lead through a symlink to) a directory.
pub(super) fn create_dir_all(root: &Root, path: &VfsPath, mode: u32) -> Result<()> {
    // As `FileSystem::create_dir_all`'s default: create first, climb only on ENOENT, and
    // answer an existing non-directory with mkdir's own errno (EEXIST), as `mkdir -p` does.
    let mut pending = vec![path.without_trailing_slash()];
    while let Some(dir) = pending.last() {
        match create_dir(root, dir, mode) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => match dir.parent() {
                Some(parent) => {
                    pending.push(parent);
                    continue;
                }
                None => return Err(err),
            },
            Err(err) => {
                if !matches!(stat(root, dir, true), Ok(meta) if meta.is_dir()) {
                    return Err(err);
                }
            }
        }
        pending.pop();
    }
    Ok(())
}

/// `rm -r`: removes a directory and everything beneath it, or a single non-directory.
/// Descending never follows a symlink, even one swapped in for a directory meanwhile, so
/// only what lies beneath `path` is removed. The one symlink followed is one `path` itself
/// names with a trailing slash: as `rm -r link/`, that empties the directory the link
/// leads to, then fails to remove the link as a directory (`ENOTDIR`).
pub(super) fn remove_dir_all(root: &Root, path: &VfsPath) -> Result<()> {
    if !stat(root, path, false)?.is_dir() {
        return remove_file(root, path);
    }
    let top = path.without_trailing_slash();
    // Depth-first without recursion, so deep trees cannot overflow the stack.
    let mut pending = vec![(top.clone(), false)];
    while let Some((dir, listed)) = pending.pop() {
        if listed {
            remove_dir(root, &dir)?;
            continue;
        }
        pending.push((dir.clone(), true));
        // The top is listed as given: its trailing slash, if any, follows a symlink there.
        let listing = if dir == top { path } else { &dir };
        for entry in list_dir(root, listing, false)? {
            let child = dir.join(&entry.name)?;
            if entry.kind == FileKind::Directory {
                pending.push((child, false));
            } else {
                remove_file(root, &child)?;
            }
        }
    }
    Ok(())
}

pub(super) fn remove_file(root: &Root, path: &VfsPath) -> Result<()> {
    const OP: &str = "unlink";
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return Err(fail_kind(OP, path, ErrorKind::IsADirectory));
    };
    if path.has_trailing_slash() {
        // Linux refuses unlink("name/") whatever is there; the errno says what it found.
        let stat = statx_at(dir.as_fd(), name).map_err(|e| fail(OP, path, e))?;
        let kind = if is_dir(&stat) {
            ErrorKind::IsADirectory
        } else {
            ErrorKind::NotADirectory
        };
        return Err(fail_kind(OP, path, kind));
    }
    rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(|e| fail(OP, path, e))
}

pub(super) fn remove_dir(root: &Root, path: &VfsPath) -> Result<()> {
    const OP: &str = "rmdir";
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return Err(fail_kind(OP, path, ErrorKind::Busy));
    };
    rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR).map_err(|e| fail(OP, path, e))
}

pub(super) fn rename(
    root: &Root,
    from: &VfsPath,
    to: &VfsPath,
    flags: vfs_core::RenameFlags,
) -> Result<()> {
    const OP: &str = "rename";
    let Some((from_dir, from_name)) = root.parent(from).map_err(|e| fail(OP, from, e))? else {
        return Err(fail_kind(OP, from, ErrorKind::Busy));
    };
    let Some((to_dir, to_name)) = root.parent(to).map_err(|e| fail(OP, to, e))? else {
        return Err(fail_kind(OP, to, ErrorKind::Busy));
    };
    if from.has_trailing_slash() || to.has_trailing_slash() {
        // A trailing slash on either side requires the source to be a directory itself
        // (a symlink to one does not count).
        let stat = statx_at(from_dir.as_fd(), from_name).map_err(|e| fail(OP, from, e))?;
        if !is_dir(&stat) {
            return Err(fail_kind(OP, from, ErrorKind::NotADirectory));
        }
    }
    let mut kernel_flags = rustix::fs::RenameFlags::empty();
    if flags.no_replace {
        kernel_flags |= rustix::fs::RenameFlags::NOREPLACE;
    }
    if flags.exchange {
        kernel_flags |= rustix::fs::RenameFlags::EXCHANGE;
    }
    if kernel_flags.is_empty() {
        return rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)
            .map_err(|e| fail(OP, from, e));
    }
    // The host filesystem decides what it supports (EINVAL where it cannot), as it would
    // for a process calling renameat2 there.
    rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, kernel_flags)
        .map_err(|e| fail(OP, from, e))
}

/// `mknod(2)` of a FIFO, socket or device beneath the root, with the exact mode asked for.
pub(super) fn make_node(
    root: &Root,
    path: &VfsPath,
    kind: FileKind,
    mode: u32,
    rdev: u64,
) -> Result<()> {
    const OP: &str = "mknod";
    let file_type = match kind {
        FileKind::Fifo => FileType::Fifo,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharacterDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
        FileKind::File | FileKind::Directory | FileKind::Symlink => {
            return Err(fail_kind(OP, path, ErrorKind::InvalidInput))
        }
    };
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return Err(fail_kind(OP, path, ErrorKind::AlreadyExists));
    };
    if path.has_trailing_slash() {
        return Err(name_with_slash_exists(&dir, name, OP, path));
    }
    let mode = mode & 0o7777;
    rustix::fs::mknodat(&dir, name, file_type, Mode::from_raw_mode(mode), rdev)
        .map_err(|e| fail(OP, path, e))?;
    // Past the process umask, as for files and directories; best effort likewise.
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::openat(&dir, name, flags, Mode::empty()) {
        let _ = fd_ops::chmod(fd.as_fd(), mode);
    }
    Ok(())
}

pub(super) fn symlink(root: &Root, target: &str, link: &VfsPath) -> Result<()> {
    const OP: &str = "symlink";
    if target.is_empty() {
        // The kernel refuses an empty target before it looks at the link's path.
        return Err(fail_kind(OP, link, ErrorKind::NotFound));
    }
    let Some((dir, name)) = root.parent(link).map_err(|e| fail(OP, link, e))? else {
        return Err(fail_kind(OP, link, ErrorKind::AlreadyExists));
    };
    if link.has_trailing_slash() {
        return Err(name_with_slash_exists(&dir, name, OP, link));
    }
    rustix::fs::symlinkat(target, &dir, name).map_err(|e| fail(OP, link, e))
}

/// What Linux answers when asked to create `name/`: `EEXIST` if something is there,
/// else `ENOENT` (a new name cannot carry a trailing slash).
fn name_with_slash_exists(
    dir: &DirFd<'_>,
    name: &str,
    operation: &'static str,
    path: &VfsPath,
) -> VfsError {
    match statx_at(dir.as_fd(), name) {
        Ok(_) => fail_kind(operation, path, ErrorKind::AlreadyExists),
        Err(errno) => fail(operation, path, errno),
    }
}

pub(super) fn read_link(root: &Root, path: &VfsPath) -> Result<String> {
    const OP: &str = "readlink";
    if path.has_trailing_slash() {
        // The slash follows the link; what it reaches is a directory, never a symlink.
        root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
        return Err(fail_kind(OP, path, ErrorKind::InvalidInput));
    }
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return Err(fail_kind(OP, path, ErrorKind::InvalidInput));
    };
    let target = rustix::fs::readlinkat(&dir, name, Vec::new()).map_err(|e| fail(OP, path, e))?;
    Ok(target
        .into_string()
        .unwrap_or_else(|err| String::from_utf8_lossy(err.into_cstring().as_bytes()).into_owned()))
}

pub(super) fn hard_link(root: &Root, existing: &VfsPath, new: &VfsPath) -> Result<()> {
    const OP: &str = "link";
    // Linux looks up the existing path, then creates the new name (ENOENT, EEXIST), and
    // only then refuses a directory (EPERM); the errno order follows that.
    let source = if existing.has_trailing_slash() {
        // The slash follows a symlink and requires a directory, which cannot be linked.
        root.resolve(existing, true)
            .map_err(|e| fail(OP, existing, e))?;
        None
    } else {
        let source = root.parent(existing).map_err(|e| fail(OP, existing, e))?;
        if let Some((dir, name)) = &source {
            statx_at(dir.as_fd(), *name).map_err(|e| fail(OP, existing, e))?;
        }
        source
    };
    let Some((to_dir, to_name)) = root.parent(new).map_err(|e| fail(OP, new, e))? else {
        return Err(fail_kind(OP, new, ErrorKind::AlreadyExists));
    };
    if new.has_trailing_slash() {
        return Err(name_with_slash_exists(&to_dir, to_name, OP, new));
    }
    let Some((from_dir, from_name)) = source else {
        return Err(match statx_at(to_dir.as_fd(), to_name) {
            Ok(_) => fail_kind(OP, new, ErrorKind::AlreadyExists),
            Err(_) => fail_kind(OP, existing, ErrorKind::NotPermitted),
        });
    };
    // No AT_SYMLINK_FOLLOW: a symlink is linked itself, never followed out of the root.
    rustix::fs::linkat(&from_dir, from_name, &to_dir, to_name, AtFlags::empty())
        .map_err(|e| fail(OP, existing, e))
}

pub(super) fn set_permissions(root: &Root, path: &VfsPath, mode: u32) -> Result<()> {
    const OP: &str = "chmod";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    fd_ops::chmod(fd.as_fd(), mode & 0o7777).map_err(|e| fail(OP, path, e))
}

pub(super) fn set_owner(
    root: &Root,
    path: &VfsPath,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    const OP: &str = "chown";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    rustix::fs::chownat(
        &fd,
        "",
        uid.map(Uid::from_raw),
        gid.map(Gid::from_raw),
        AtFlags::EMPTY_PATH,
    )
    .map_err(|e| fail(OP, path, e))
}

/// `lchown`: the entry itself, a symlink included. A trailing slash follows a symlink
/// there, as the kernel's lookup would.
pub(super) fn set_owner_nofollow(
    root: &Root,
    path: &VfsPath,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    const OP: &str = "lchown";
    if path.has_trailing_slash() {
        return set_owner(root, path, uid, gid);
    }
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return set_owner(root, path, uid, gid);
    };
    rustix::fs::chownat(
        &dir,
        name,
        uid.map(Uid::from_raw),
        gid.map(Gid::from_raw),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| fail(OP, path, e))
}

/// `utimensat(.., AT_SYMLINK_NOFOLLOW)`: the entry itself, a symlink included.
pub(super) fn set_times_nofollow(
    root: &Root,
    path: &VfsPath,
    atime: SetTime,
    mtime: SetTime,
) -> Result<()> {
    const OP: &str = "lutimes";
    if path.has_trailing_slash() {
        return set_times(root, path, atime, mtime);
    }
    let Some((dir, name)) = root.parent(path).map_err(|e| fail(OP, path, e))? else {
        return set_times(root, path, atime, mtime);
    };
    let times = Timestamps {
        last_access: convert::timespec(atime),
        last_modification: convert::timespec(mtime),
    };
    rustix::fs::utimensat(&dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| fail(OP, path, e))
}

pub(super) fn set_times(root: &Root, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
    const OP: &str = "utimes";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    let times = Timestamps {
        last_access: convert::timespec(atime),
        last_modification: convert::timespec(mtime),
    };
    rustix::fs::utimensat(&fd, "", &times, AtFlags::EMPTY_PATH).map_err(|e| fail(OP, path, e))
}

pub(super) fn statfs(root: &Root, path: &VfsPath) -> Result<StatFs> {
    const OP: &str = "statfs";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    let stat = rustix::fs::fstatvfs(&fd).map_err(|e| fail(OP, path, e))?;
    Ok(convert::statfs(&stat))
}

/// Opens a file as `open(2)` would, confined beneath the root.
pub(super) fn open(root: &Root, path: &VfsPath, options: &OpenOptions) -> Result<File> {
    open_fd(root, path, options)
        .map(File::from)
        .map_err(|e| fail("open", path, e))
}

fn open_fd(root: &Root, path: &VfsPath, options: &OpenOptions) -> Result<OwnedFd, Errno> {
    let access = access_flags(options);
    let mode = options.mode & 0o7777;
    let create = access | OFlags::CREATE | OFlags::EXCL;
    let path = kernel_path(path);
    if options.create_new {
        let fd = root.openat2(&*path, create, Mode::from_raw_mode(mode))?;
        exact_file_mode(&fd, mode);
        return Ok(fd);
    }
    if !options.create {
        return root.openat2(&*path, access, Mode::empty());
    }
    // O_CREAT alone cannot tell whether it created the file, and only a new file may get
    // the exact mode. So: create exclusively, else open what is there without following
    // it; a symlink there is followed as O_CREAT does, below.
    match root.openat2(&*path, create, Mode::from_raw_mode(mode)) {
        Ok(fd) => {
            exact_file_mode(&fd, mode);
            return Ok(fd);
        }
        Err(Errno::EXIST) => {}
        Err(errno) => return Err(errno),
    }
    match root.openat2(&*path, access | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(fd) => return refuse_dir(fd),
        // A symlink (ELOOP), or a name removed since.
        Err(Errno::LOOP | Errno::NOENT) => {}
        Err(errno) => return Err(errno),
    }
    create_through_symlinks(root, path.as_bytes(), access, mode)
}

/// open(2) with O_CREAT refuses a directory, even for reading.
fn refuse_dir(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if rustix::fs::fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(Errno::ISDIR);
    }
    Ok(fd)
}

/// `open(2)` with `O_CREAT` (not `O_EXCL`) of a path whose last component is a symlink,
/// replayed one final symlink at a time, every hop again a confined lookup, so that what
/// is created is known to be new. As the kernel does, each hop walks the target's parent,
/// answers a final name with a trailing slash with `EISDIR` (whether it exists or not),
/// refuses `.`, `..` and other directories with `EISDIR`, follows a symlink, opens
/// anything else and creates a missing name.
///
/// The kernel counts every symlink of the whole walk against its limit, those inside
/// targets included, where each hop here starts afresh. A plain lookup of the whole path
/// walks the very same symlinks up to where `O_CREAT` stops (it differs only at a missing
/// name, where it fails, and at a trailing slash, where it goes on), so its `ELOOP` is
/// the kernel's answer; it is asked before anything is created. One case stays
/// approximate: a trailing slash after a symlink that itself leads on, where the plain
/// lookup goes further than `O_CREAT`; that answers `EISDIR`.
fn create_through_symlinks(
    root: &Root,
    path: &[u8],
    access: OFlags,
    mode: u32,
) -> Result<OwnedFd, Errno> {
    let create = access | OFlags::CREATE | OFlags::EXCL;
    let plain = || root.openat2(path, OFlags::PATH, Mode::empty()).err();
    let mut target: Cow<'_, [u8]> = Cow::Borrowed(path);
    let mut hops = 0;
    for _ in 0..=MAX_SYMLINK_HOPS {
        let slash = target.ends_with(b"/");
        let entry = match final_entry(root, &target) {
            Ok(entry) => entry,
            // The target's parent cannot be walked: the plain lookup fails there too.
            Err(errno) if hops == 0 => return Err(errno),
            Err(errno) => return Err(plain().unwrap_or(errno)),
        };
        match entry {
            FinalEntry::Dots => return Err(plain().unwrap_or(Errno::ISDIR)),
            FinalEntry::Symlink(next) if !slash => {
                hops += 1;
                target = Cow::Owned(next);
            }
            // The approximate case above: no lookup tells where the kernel stops counting.
            FinalEntry::Symlink(_) => return Err(Errno::ISDIR),
            _ if slash => {
                return Err(match plain() {
                    Some(Errno::LOOP) => Errno::LOOP,
                    _ => Errno::ISDIR,
                })
            }
            // The plain open walks what O_CREAT would and opens the same file.
            FinalEntry::Other => return refuse_dir(root.openat2(path, access, Mode::empty())?),
            FinalEntry::Gone => {
                if hops > 0 && plain() == Some(Errno::LOOP) {
                    return Err(Errno::LOOP);
                }
                match root.openat2(&*target, create, Mode::from_raw_mode(mode)) {
                    Ok(fd) => {
                        exact_file_mode(&fd, mode);
                        return Ok(fd);
                    }
                    // Created since: look again.
                    Err(Errno::EXIST) => {}
                    Err(errno) => return Err(errno),
                }
            }
        }
    }
    Err(Errno::LOOP)
}

/// What the last component of a path is, not following it.
enum FinalEntry {
    /// `.`, `..` or the root: a directory, which `O_CREAT` refuses.
    Dots,
    /// A symlink, with where it leads as a root-relative path.
    Symlink(Vec<u8>),
    /// Anything else.
    Other,
    /// Nothing: a name to create.
    Gone,
}

/// What the last component of `path` (a root-relative path; trailing slashes are
/// ignored) names, without following it; an error if its parent cannot be walked.
fn final_entry(root: &Root, path: &[u8]) -> Result<FinalEntry, Errno> {
    let end = path
        .iter()
        .rposition(|&byte| byte != b'/')
        .map_or(0, |at| at + 1);
    let path = &path[..end];
    let cut = path.iter().rposition(|&byte| byte == b'/');
    let (parent, name) = match cut {
        Some(cut) if path[..cut].iter().any(|&byte| byte != b'/') => {
            (&path[..cut], &path[cut + 1..])
        }
        Some(cut) => (&b"/"[..], &path[cut + 1..]),
        None => (&b"/"[..], path),
    };
    if matches!(name, b"" | b"." | b"..") {
        return Ok(FinalEntry::Dots);
    }
    let dir = root.openat2(parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
    let link = match rustix::fs::readlinkat(&dir, name, Vec::new()) {
        Ok(link) => link.into_bytes(),
        Err(Errno::INVAL) => return Ok(FinalEntry::Other),
        Err(Errno::NOENT) => return Ok(FinalEntry::Gone),
        Err(errno) => return Err(errno),
    };
    if link.first() == Some(&b'/') {
        return Ok(FinalEntry::Symlink(link));
    }
    // Relative to the link's directory: the kernel resolves `parent` again, confined.
    let mut next = Vec::with_capacity(parent.len() + 1 + link.len());
    next.extend_from_slice(parent);
    next.push(b'/');
    next.extend_from_slice(&link);
    Ok(FinalEntry::Symlink(next))
}

/// Gives a file just created the mode it was asked for, past the process umask; best
/// effort, as for directories.
fn exact_file_mode(fd: &OwnedFd, mode: u32) {
    let _ = rustix::fs::fchmod(fd, Mode::from_raw_mode(mode));
}

/// The access and behaviour flags of `open(2)` for `options`, without creation flags.
///
/// `O_NONBLOCK` keeps opening a FIFO from hanging until a writer comes (regular files and
/// directories ignore it); `O_NOCTTY` keeps a terminal device from becoming the process's
/// controlling terminal.
fn access_flags(options: &OpenOptions) -> OFlags {
    let mut flags = match (options.read, options.writes()) {
        (true, true) => OFlags::RDWR,
        (false, true) => OFlags::WRONLY,
        (_, false) => OFlags::RDONLY,
    };
    if options.append {
        flags |= OFlags::APPEND;
    }
    if options.truncate {
        flags |= OFlags::TRUNC;
    }
    flags | OFlags::NONBLOCK | OFlags::NOCTTY
}

/// Reads up to `len` bytes at `offset`, fewer only at the end of the file.
pub(super) fn read_at(file: &File, offset: u64, len: usize) -> Result<Bytes, Errno> {
    /// The first buffer's size: most reads are small, and a large `len` need not be
    /// allocated before the file shows it has that much.
    const FIRST_CHUNK: usize = 1 << 20;
    if len == 0 {
        // The kernel still checks the handle (EBADF on a write-only one) for an empty read.
        rustix::io::pread(file, &mut [0u8; 0], offset)?;
        return Ok(Bytes::new());
    }
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(len.min(FIRST_CHUNK))
        .map_err(|_| Errno::NOMEM)?;
    while buf.len() < len {
        if buf.len() == buf.capacity() {
            let grow = (len - buf.len()).min(buf.len().max(FIRST_CHUNK));
            buf.try_reserve_exact(grow).map_err(|_| Errno::NOMEM)?;
        }
        let at = offset.checked_add(buf.len() as u64).ok_or(Errno::INVAL)?;
        // There is spare capacity here (`spare_capacity` insists): the loop runs only
        // while `buf.len() < len`, and the buffer grew above when it was full.
        match rustix::io::pread(file, spare_capacity(&mut buf), at) {
            Ok(0) => break,
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    // The allocator may have given more room than asked for, and pread filled it all.
    buf.truncate(len);
    if buf.capacity() > FIRST_CHUNK / 4 && buf.capacity() > 2 * buf.len() {
        buf.shrink_to_fit();
    }
    Ok(Bytes::from(buf))
}

/// Writes `data` at `offset` (at the end under `O_APPEND`, which Linux's pwrite honours);
/// returns how much was written.
pub(super) fn write_at(file: &File, offset: u64, data: &[u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::pwrite(file, data, offset) {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

pub(super) fn read_file(root: &Root, path: &VfsPath) -> Result<Bytes> {
    let file = open(root, path, &OpenOptions::read_only())?;
    // The size is a hint only (the file may change): it saves regrowing the buffer.
    let size = statx_fd(file.as_fd())
        .map(|stat| stat.stx_size)
        .unwrap_or(0);
    let mut content = Vec::new();
    content
        .try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX))
        .map_err(|_| fail_kind("read", path, ErrorKind::OutOfMemory))?;
    (&file)
        .read_to_end(&mut content)
        .map_err(|err| io_fail("read", path, err))?;
    Ok(Bytes::from(content))
}

pub(super) fn write_file(root: &Root, path: &VfsPath, data: &[u8]) -> Result<()> {
    let options = OpenOptions::new().write(true).create(true).truncate(true);
    let file = open(root, path, &options)?;
    (&file)
        .write_all(data)
        .map_err(|err| io_fail("write", path, err))
}

pub(super) fn pread(root: &Root, path: &VfsPath, offset: u64, len: usize) -> Result<Bytes> {
    let file = open(root, path, &OpenOptions::read_only())?;
    read_at(&file, offset, len).map_err(|e| fail("read", path, e))
}

pub(super) fn pwrite(root: &Root, path: &VfsPath, offset: u64, data: &[u8]) -> Result<()> {
    let file = open(root, path, &OpenOptions::new().write(true))?;
    file.write_all_at(data, offset)
        .map_err(|err| io_fail("write", path, err))
}

pub(super) fn truncate(root: &Root, path: &VfsPath, len: u64) -> Result<()> {
    let file = open(root, path, &OpenOptions::new().write(true))?;
    rustix::fs::ftruncate(&file, len).map_err(|e| fail("truncate", path, e))
}
