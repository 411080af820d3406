//! Kernel structures turned into the contract's types and back.

use rustix::fs::{FileType, StatVfs, Statx, StatxFlags, StatxTimestamp, Timespec};
use rustix::io::Errno;
use vfs_core::{FileKind, Metadata, SetTime, StatFs, Timestamp};

/// The contract's metadata from a `statx` result.
pub(super) fn metadata(stat: &Statx) -> Result<Metadata, Errno> {
    let st_mode = u32::from(stat.stx_mode);
    // Every Linux file type has a kind; anything else is a corrupt answer.
    let kind = FileKind::from_mode(st_mode).ok_or(Errno::IO)?;
    let btime = if stat.stx_mask & StatxFlags::BTIME.bits() != 0 {
        timestamp(&stat.stx_btime)
    } else {
        // Filesystems without a birth time leave it unset rather than invent one.
        Timestamp::EPOCH
    };
    Ok(Metadata {
        kind,
        size: stat.stx_size,
        mode: st_mode & 0o7777,
        uid: stat.stx_uid,
        gid: stat.stx_gid,
        nlink: u64::from(stat.stx_nlink),
        ino: stat.stx_ino,
        blocks: stat.stx_blocks,
        rdev: rustix::fs::makedev(stat.stx_rdev_major, stat.stx_rdev_minor),
        atime: timestamp(&stat.stx_atime),
        mtime: timestamp(&stat.stx_mtime),
        ctime: timestamp(&stat.stx_ctime),
        btime,
    })
}

fn timestamp(time: &StatxTimestamp) -> Timestamp {
    Timestamp::from_parts(time.tv_sec, time.tv_nsec)
}

/// The kind a directory entry's `d_type` names; `None` when the filesystem does not say
/// (`DT_UNKNOWN`) and a stat must.
pub(super) fn entry_kind(file_type: FileType) -> Option<FileKind> {
    Some(match file_type {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Directory,
        FileType::Symlink => FileKind::Symlink,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        _ => return None,
    })
}

/// The contract's statfs from `fstatvfs`; counts are in fragment-size units, as POSIX
/// defines `f_blocks`.
pub(super) fn statfs(stat: &StatVfs) -> StatFs {
    StatFs {
        block_size: u32::try_from(stat.f_frsize).unwrap_or(u32::MAX),
        blocks: stat.f_blocks,
        blocks_free: stat.f_bfree,
        blocks_available: stat.f_bavail,
        files: stat.f_files,
        files_free: stat.f_ffree,
        name_max: u32::try_from(stat.f_namemax).unwrap_or(u32::MAX),
    }
}

/// A `utimensat` time.
pub(super) fn timespec(time: SetTime) -> Timespec {
    match time {
        SetTime::Omit => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        SetTime::Now => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        SetTime::At(time) => {
            let (secs, nanos) = time.to_parts();
            Timespec {
                tv_sec: secs,
                tv_nsec: i64::from(nanos),
            }
        }
    }
}
