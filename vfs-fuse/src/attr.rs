//! Conversions between vfs-core's types and the FUSE protocol's.

use fuser::{Errno, FileAttr, FileType, INodeNo, TimeOrNow};
use vfs_core::{FileKind, Metadata, SetTime, Timestamp, VfsError};

/// The block size `stat` reports (`st_blksize`).
const BLOCK_SIZE: u32 = 4096;

/// The errno the driver reported, unchanged.
pub(crate) fn errno(err: &VfsError) -> Errno {
    Errno::from_i32(err.errno())
}

pub(crate) fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
        FileKind::Socket => FileType::Socket,
    }
}

/// What the kernel caches for node `node`: `st_ino` is the node id (fuser sends one
/// number for both), which the node table keeps stable for the life of the mount.
pub(crate) fn file_attr(node: u64, meta: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(node),
        size: meta.size,
        blocks: meta.blocks,
        atime: meta.atime.to_system_time(),
        mtime: meta.mtime.to_system_time(),
        ctime: meta.ctime.to_system_time(),
        crtime: meta.btime.to_system_time(),
        kind: file_type(meta.kind),
        perm: (meta.mode & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink).unwrap_or(u32::MAX),
        uid: meta.uid,
        gid: meta.gid,
        rdev: u32::try_from(meta.rdev).unwrap_or(u32::MAX),
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// A `utimensat` time from `setattr`; `None` is `UTIME_OMIT`.
pub(crate) fn set_time(time: Option<TimeOrNow>) -> SetTime {
    match time {
        None => SetTime::Omit,
        Some(TimeOrNow::Now) => SetTime::Now,
        Some(TimeOrNow::SpecificTime(at)) => SetTime::At(Timestamp::from(at)),
    }
}

/// The kind `mknod` asks for in the `S_IFMT` bits of its mode (a missing type is a
/// regular file, as `mknod(2)` has it).
pub(crate) fn node_kind(mode: u32) -> Option<FileKind> {
    if mode & libc::S_IFMT == 0 {
        return Some(FileKind::File);
    }
    FileKind::from_mode(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mknod_kinds() {
        assert_eq!(node_kind(libc::S_IFIFO | 0o644), Some(FileKind::Fifo));
        assert_eq!(node_kind(0o644), Some(FileKind::File));
        assert_eq!(node_kind(libc::S_IFCHR), Some(FileKind::CharDevice));
    }

    #[test]
    fn errno_passes_through() {
        let err = VfsError::new(vfs_core::ErrorKind::DirectoryNotEmpty, "rmdir");
        assert_eq!(errno(&err).code(), libc::ENOTEMPTY);
    }
}
