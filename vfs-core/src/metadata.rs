//! What a stat returns and what a directory listing holds.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The type of a filesystem object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
}

impl FileKind {
    /// The `S_IFMT` bits of `st_mode` for this kind.
    pub fn mode_bits(self) -> u32 {
        // The traditional values, the same on every Unix; libc's `mode_t` width varies.
        match self {
            FileKind::File => 0o100000,
            FileKind::Directory => 0o040000,
            FileKind::Symlink => 0o120000,
            FileKind::Fifo => 0o010000,
            FileKind::CharDevice => 0o020000,
            FileKind::BlockDevice => 0o060000,
            FileKind::Socket => 0o140000,
        }
    }

    /// The kind named by the `S_IFMT` bits of an `st_mode`.
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        let format = mode & 0o170000;
        [
            FileKind::File,
            FileKind::Directory,
            FileKind::Symlink,
            FileKind::Fifo,
            FileKind::CharDevice,
            FileKind::BlockDevice,
            FileKind::Socket,
        ]
        .into_iter()
        .find(|kind| kind.mode_bits() == format)
    }
}

/// A point in time, in nanoseconds since the Unix epoch (negative before it).
///
/// `i64` nanoseconds span the years 1678 to 2262, which covers every timestamp
/// a filesystem of today holds and keeps comparisons and serialization trivial.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// From seconds and nanoseconds, as `struct timespec` holds them.
    pub fn from_parts(secs: i64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        )
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards negative infinity) and the nanoseconds
    /// past them, as `struct timespec` holds them.
    pub fn to_parts(self) -> (i64, u32) {
        (
            self.0.div_euclid(1_000_000_000),
            self.0.rem_euclid(1_000_000_000) as u32,
        )
    }

    /// Milliseconds since the epoch, as JavaScript's `mtimeMs` holds them.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        let (secs, nanos) = self.to_parts();
        if secs >= 0 {
            UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos)
        } else {
            UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
                + std::time::Duration::from_nanos(u64::from(nanos))
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Timestamp {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(i64::try_from(after.as_nanos()).unwrap_or(i64::MAX)),
            Err(before) => Timestamp(
                i64::try_from(before.duration().as_nanos())
                    .map(|nanos| -nanos)
                    .unwrap_or(i64::MIN),
            ),
        }
    }
}

/// What `stat` and `lstat` return.
///
/// `mode` holds the permission bits only (`0o7777`); [`Metadata::st_mode`] adds the type
/// bits for callers that expect a POSIX `st_mode`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The object's type.
    pub kind: FileKind,
    /// Size in bytes; a symlink's is the length of its target.
    pub size: u64,
    /// Permission bits, including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Number of hard links (directories: 2 plus their subdirectories).
    pub nlink: u64,
    /// Inode number, unique within one driver instance.
    pub ino: u64,
    /// Allocated 512-byte blocks; less than `size / 512` for sparse files.
    pub blocks: u64,
    /// Device number for character and block devices, else 0.
    pub rdev: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last content change.
    pub mtime: Timestamp,
    /// Last metadata or content change.
    pub ctime: Timestamp,
    /// Creation.
    pub btime: Timestamp,
}

impl Metadata {
    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.kind == FileKind::Symlink
    }

    /// The POSIX `st_mode`: type bits and permission bits.
    pub fn st_mode(&self) -> u32 {
        self.kind.mode_bits() | (self.mode & 0o7777)
    }
}

/// One entry of a directory listing: its name, its type and its inode number, so callers
/// need no stat per entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirEntry {
    /// The name within the directory (never `.` or `..`).
    pub name: String,
    /// The entry's type, not following symlinks.
    pub kind: FileKind,
    /// The entry's inode number.
    pub ino: u64,
}

/// How a time is set by `set_times` (`utimensat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SetTime {
    /// Leave the time as it is (`UTIME_OMIT`).
    Omit,
    /// The current time (`UTIME_NOW`).
    Now,
    /// This time.
    At(Timestamp),
}

/// Usage and limits of a filesystem, as `statvfs` reports them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatFs {
    /// The block size the counts below are in.
    pub block_size: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Blocks available to unprivileged users.
    pub blocks_available: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// The longest name.
    pub name_max: u32,
}

/// The flags of `renameat2`, for [`FileSystem::rename_with`](crate::FileSystem::rename_with).
///
/// ```
/// use vfs_core::RenameFlags;
///
/// assert!(RenameFlags::default().is_empty());
/// assert!(!RenameFlags { no_replace: true, ..RenameFlags::default() }.is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RenameFlags {
    /// Fail with `EEXIST` if the target exists (`RENAME_NOREPLACE`).
    pub no_replace: bool,
    /// Swap source and target atomically; both must exist (`RENAME_EXCHANGE`).
    pub exchange: bool,
}

impl RenameFlags {
    /// Whether no flag is set: a plain `rename`.
    pub fn is_empty(&self) -> bool {
        !self.no_replace && !self.exchange
    }
}

/// How `set_xattr` treats an existing attribute (`XATTR_CREATE` / `XATTR_REPLACE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Upsert,
    /// Fail with `EEXIST` if it exists.
    CreateOnly,
    /// Fail with `ENODATA` if it does not exist.
    ReplaceOnly,
}

/// How `open` opens a file, as `open(2)` flags do.
///
/// ```
/// use vfs_core::OpenOptions;
///
/// let create = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600);
/// assert!(create.write && create.create && create.truncate);
/// assert_eq!(OpenOptions::read_only(), OpenOptions::new().read(true));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OpenOptions {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Every write goes to the end of the file (`O_APPEND`); implies writing.
    pub append: bool,
    /// Create the file if it is missing (`O_CREAT`).
    pub create: bool,
    /// Create the file, failing with `EEXIST` if anything exists at the path, symlinks
    /// included (`O_CREAT | O_EXCL`).
    pub create_new: bool,
    /// Truncate to zero length (`O_TRUNC`); needs write access.
    pub truncate: bool,
    /// Permission bits of a created file.
    pub mode: u32,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            create: false,
            create_new: false,
            truncate: false,
            mode: 0o644,
        }
    }
}

impl OpenOptions {
    /// All flags off, mode `0o644`.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Open an existing file for reading.
    pub fn read_only() -> OpenOptions {
        OpenOptions::new().read(true)
    }

    /// Sets `read`.
    pub fn read(mut self, on: bool) -> OpenOptions {
        self.read = on;
        self
    }

    /// Sets `write`.
    pub fn write(mut self, on: bool) -> OpenOptions {
        self.write = on;
        self
    }

    /// Sets `append`.
    pub fn append(mut self, on: bool) -> OpenOptions {
        self.append = on;
        self
    }

    /// Sets `create`.
    pub fn create(mut self, on: bool) -> OpenOptions {
        self.create = on;
        self
    }

    /// Sets `create_new`.
    pub fn create_new(mut self, on: bool) -> OpenOptions {
        self.create_new = on;
        self
    }

    /// Sets `truncate`.
    pub fn truncate(mut self, on: bool) -> OpenOptions {
        self.truncate = on;
        self
    }

    /// Sets the mode of a created file.
    pub fn mode(mut self, mode: u32) -> OpenOptions {
        self.mode = mode;
        self
    }

    /// Whether the handle may write.
    pub fn writes(&self) -> bool {
        self.write || self.append
    }

    /// Whether the call may create a file.
    pub fn creates(&self) -> bool {
        self.create || self.create_new
    }

    /// Whether the call changes anything: a read-only mount refuses it with `EROFS`.
    pub fn mutates(&self) -> bool {
        self.writes() || self.creates() || self.truncate
    }
}

/// What a driver can do, declared up front so callers (and FUSE) answer with the right
/// errno instead of discovering it by failure. The conformance suite checks each claim:
/// a capability that is `false` must fail with `ENOTSUP` (or `EPERM` for hard links, as
/// Linux does on filesystems without them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Capabilities {
    /// Nothing can be changed; every mutation fails with `EROFS`.
    pub read_only: bool,
    /// Symbolic links can be created and are followed.
    pub symlinks: bool,
    /// Hard links can be created.
    pub hard_links: bool,
    /// Extended attributes can be read and written.
    pub xattrs: bool,
    /// Permission bits are stored (`chmod`).
    pub permissions: bool,
    /// Owner and group are stored (`chown`).
    pub ownership: bool,
    /// Access and modification times can be set (`utimes`).
    pub set_times: bool,
    /// `write_at` works at any offset of an existing file, not only by appending.
    pub random_writes: bool,
    /// `O_APPEND` writes are atomic with respect to other appenders.
    pub atomic_append: bool,
    /// `rename` replaces its target atomically.
    pub atomic_rename: bool,
    /// Holes in files take no space.
    pub sparse_files: bool,
    /// An unlinked file stays readable and writable through handles opened before.
    pub open_unlinked: bool,
    /// Empty directories persist (object stores may drop them).
    pub empty_directories: bool,
}

impl Capabilities {
    /// Everything a POSIX filesystem such as tmpfs does.
    pub fn posix() -> Capabilities {
        Capabilities {
            read_only: false,
            symlinks: true,
            hard_links: true,
            xattrs: true,
            permissions: true,
            ownership: true,
            set_times: true,
            random_writes: true,
            atomic_append: true,
            atomic_rename: true,
            sparse_files: true,
            open_unlinked: true,
            empty_directories: true,
        }
    }

    /// The same capabilities with nothing writable.
    pub fn as_read_only(self) -> Capabilities {
        Capabilities {
            read_only: true,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_and_join() {
        let t = Timestamp::from_parts(1_700_000_000, 123);
        assert_eq!(t.to_parts(), (1_700_000_000, 123));
        assert_eq!(Timestamp(-1).to_parts(), (-1, 999_999_999));
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        assert_eq!(
            Timestamp::from(Timestamp(-1_500_000_000).to_system_time()),
            Timestamp(-1_500_000_000)
        );
    }

    #[test]
    fn kinds_round_trip_through_mode_bits() {
        assert_eq!(FileKind::File.mode_bits(), libc::S_IFREG);
        assert_eq!(FileKind::Symlink.mode_bits(), libc::S_IFLNK);
        for kind in [
            FileKind::File,
            FileKind::Directory,
            FileKind::Symlink,
            FileKind::Fifo,
        ] {
            assert_eq!(FileKind::from_mode(kind.mode_bits() | 0o755), Some(kind));
        }
    }
}
