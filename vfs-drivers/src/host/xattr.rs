//! Extended attributes of the inode a confined lookup reached, through its `/proc` entry
//! (see `fd_ops`).

use std::os::fd::{AsFd, BorrowedFd};

use bytes::Bytes;
use rustix::fs::XattrFlags;
use rustix::io::Errno;
use vfs_core::{Result, VfsPath, XattrMode};

use super::fd_ops::proc_path;
use super::root::{fail, Root};

/// How often a read is retried when the value grew between asking its size and reading it.
const GROWTH_RETRIES: usize = 8;

/// Whether the host filesystem under the root stores `user.` xattrs: asking for one that
/// is missing answers `ENODATA` where they are supported and `ENOTSUP` where not.
pub(super) fn supported(root: &Root) -> bool {
    let probe = rustix::fs::getxattr_query(proc_path(root.fd()), "user.vfs-layer.probe");
    matches!(probe, Ok(_) | Err(Errno::NODATA))
}

pub(super) fn get(root: &Root, path: &VfsPath, name: &str) -> Result<Bytes> {
    const OP: &str = "getxattr";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    let link = proc_path(fd.as_fd());
    read_sized(
        || rustix::fs::getxattr_query(&link, name),
        |buf| rustix::fs::getxattr(&link, name, buf),
    )
    .map(Bytes::from)
    .map_err(|e| fail(OP, path, e))
}

pub(super) fn set(
    root: &Root,
    path: &VfsPath,
    name: &str,
    value: &[u8],
    mode: XattrMode,
) -> Result<()> {
    const OP: &str = "setxattr";
    let flags = match mode {
        XattrMode::Upsert => XattrFlags::empty(),
        XattrMode::CreateOnly => XattrFlags::CREATE,
        XattrMode::ReplaceOnly => XattrFlags::REPLACE,
    };
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    rustix::fs::setxattr(proc_path(fd.as_fd()), name, value, flags).map_err(|e| fail(OP, path, e))
}

pub(super) fn list(root: &Root, path: &VfsPath) -> Result<Vec<String>> {
    const OP: &str = "listxattr";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    let link = proc_path(fd.as_fd());
    let names = read_sized(
        || rustix::fs::listxattr_query(&link),
        |buf| rustix::fs::listxattr(&link, buf),
    )
    .map_err(|e| fail(OP, path, e))?;
    Ok(split_names(&names)
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect())
}

/// Every xattr of an open file, names with values, through its descriptor: no path
/// walk, no `/proc`. A name removed between the listing and its read is left out.
pub(super) fn all_of_file(file: BorrowedFd<'_>) -> Result<Vec<(String, Bytes)>, Errno> {
    let names = read_sized(
        || rustix::fs::flistxattr_query(file),
        |buf| rustix::fs::flistxattr(file, buf),
    )?;
    let mut out = Vec::new();
    for name in split_names(&names) {
        let value = read_sized(
            || rustix::fs::fgetxattr_query(file, name),
            |buf| rustix::fs::fgetxattr(file, name, buf),
        );
        match value {
            Ok(value) => out.push((
                String::from_utf8_lossy(name).into_owned(),
                Bytes::from(value),
            )),
            Err(Errno::NODATA) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(out)
}

/// The names in a `listxattr` answer: NUL-terminated, back to back.
fn split_names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
}

pub(super) fn remove(root: &Root, path: &VfsPath, name: &str) -> Result<()> {
    const OP: &str = "removexattr";
    let fd = root.resolve(path, true).map_err(|e| fail(OP, path, e))?;
    rustix::fs::removexattr(proc_path(fd.as_fd()), name).map_err(|e| fail(OP, path, e))
}

/// Reads a value whose size `query` reports, retrying when it grew in between (`ERANGE`).
fn read_sized(
    query: impl Fn() -> Result<usize, Errno>,
    read: impl Fn(&mut [u8]) -> Result<usize, Errno>,
) -> Result<Vec<u8>, Errno> {
    let mut attempts = 0;
    loop {
        let size = query()?;
        if size == 0 {
            // Most inodes have no xattrs: one call tells, a second would only say it again.
            return Ok(Vec::new());
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(size).map_err(|_| Errno::NOMEM)?;
        buf.resize(size, 0);
        match read(&mut buf) {
            Err(Errno::RANGE) if attempts < GROWTH_RETRIES => attempts += 1,
            Err(errno) => return Err(errno),
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
        }
    }
}
