//! Errors as values: an errno-mapped kind, the operation, the path and a source.

use std::error::Error as StdError;
use std::fmt;

/// The result type of every filesystem operation.
pub type Result<T, E = VfsError> = std::result::Result<T, E>;

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $variant:ident => $errno:ident, $message:literal; )*) => {
        /// What went wrong, as a POSIX errno.
        ///
        /// The set is the one agentOS callers see (`ENOENT`, `EEXIST`, ...) plus what a mount
        /// table, FUSE and object storage add. [`ErrorKind::code`] gives the string JS expects.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            /// The errno string, e.g. `"ENOENT"`.
            pub fn code(self) -> &'static str {
                match self { $(ErrorKind::$variant => stringify!($errno),)* }
            }

            /// The platform's errno number, e.g. `libc::ENOENT`.
            pub fn errno(self) -> i32 {
                match self { $(ErrorKind::$variant => libc::$errno,)* }
            }

            /// The human description, as `strerror` words it.
            pub fn message(self) -> &'static str {
                match self { $(ErrorKind::$variant => $message,)* }
            }
        }
    };
}

error_kinds! {
    /// `ENOENT`: no such file or directory.
    NotFound => ENOENT, "no such file or directory";
    /// `EEXIST`: the target already exists.
    AlreadyExists => EEXIST, "file already exists";
    /// `ENOTDIR`: a path component, or the target, is not a directory.
    NotADirectory => ENOTDIR, "not a directory";
    /// `EISDIR`: the target is a directory where a non-directory was required.
    IsADirectory => EISDIR, "is a directory";
    /// `ENOTEMPTY`: the directory is not empty.
    DirectoryNotEmpty => ENOTEMPTY, "directory not empty";
    /// `EACCES`: permission denied.
    PermissionDenied => EACCES, "permission denied";
    /// `EPERM`: operation not permitted.
    NotPermitted => EPERM, "operation not permitted";
    /// `EROFS`: the filesystem or mount is read-only.
    ReadOnly => EROFS, "read-only file system";
    /// `EXDEV`: the operation would cross mounts.
    CrossesDevices => EXDEV, "cross-device link";
    /// `EBUSY`: the resource is in use (a mount point, a mount with open handles).
    Busy => EBUSY, "resource busy";
    /// `ELOOP`: too many levels of symbolic links.
    Loop => ELOOP, "too many levels of symbolic links";
    /// `ENAMETOOLONG`: a name or the path is too long.
    NameTooLong => ENAMETOOLONG, "file name too long";
    /// `EINVAL`: invalid argument.
    InvalidInput => EINVAL, "invalid argument";
    /// `ENOSPC`: no space (bytes or inodes) left.
    NoSpace => ENOSPC, "no space left on device";
    /// `ENOTSUP`: the driver cannot do this (see its capabilities).
    Unsupported => ENOTSUP, "operation not supported";
    /// `ENOSYS`: the operation is not implemented.
    NotImplemented => ENOSYS, "function not implemented";
    /// `EIO`: an I/O error in the backing storage.
    Io => EIO, "input/output error";
    /// `ENOMEM`: out of memory.
    OutOfMemory => ENOMEM, "out of memory";
    /// `EBADF`: the handle was not opened for this kind of access.
    BadHandle => EBADF, "bad file descriptor";
    /// `ETIMEDOUT`: the backing storage did not answer in time.
    TimedOut => ETIMEDOUT, "connection timed out";
    /// `EFBIG`: the file would grow past the largest size the driver supports.
    FileTooLarge => EFBIG, "file too large";
    /// `EMLINK`: too many hard links.
    TooManyLinks => EMLINK, "too many links";
    /// `ENODATA`: the extended attribute does not exist.
    NoAttribute => ENODATA, "no data available";
    /// `ERANGE`: a value is out of range (e.g. an xattr too large).
    OutOfRange => ERANGE, "numerical result out of range";
}

impl ErrorKind {
    /// The kind for an errno number; unknown numbers become [`ErrorKind::Io`].
    pub fn from_errno(errno: i32) -> ErrorKind {
        // EOPNOTSUPP equals ENOTSUP on Linux but not everywhere.
        if errno == libc::EOPNOTSUPP {
            return ErrorKind::Unsupported;
        }
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.errno() == errno)
            .unwrap_or(ErrorKind::Io)
    }

    /// The kind for an errno string such as `"ENOENT"`.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.code() == code)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error from a filesystem operation.
///
/// Displays on one line the way Node.js words fs errors, so JS callers can keep their
/// message parsing: `ENOENT: no such file or directory, stat '/a/b'`.
///
/// ```
/// use vfs_core::{ErrorKind, VfsError};
///
/// let err = VfsError::new(ErrorKind::NotFound, "stat").with_path("/a/b");
/// assert_eq!(err.code(), "ENOENT");
/// assert_eq!(err.to_string(), "ENOENT: no such file or directory, stat '/a/b'");
/// ```
pub struct VfsError {
    kind: ErrorKind,
    operation: &'static str,
    path: Option<String>,
    detail: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl VfsError {
    /// An error of `kind` raised by `operation` (`"stat"`, `"rename"`, ...).
    pub fn new(kind: ErrorKind, operation: &'static str) -> VfsError {
        VfsError {
            kind,
            operation,
            path: None,
            detail: None,
            source: None,
        }
    }

    /// Attaches the path the operation was about.
    pub fn with_path(mut self, path: impl Into<String>) -> VfsError {
        self.path = Some(path.into());
        self
    }

    /// Attaches a sentence that says more than the errno does.
    pub fn with_detail(mut self, detail: impl Into<String>) -> VfsError {
        self.detail = Some(detail.into());
        self
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> VfsError {
        self.source = Some(source.into());
        self
    }

    /// Wraps an `std::io::Error`, keeping its errno when it has one.
    pub fn from_io(operation: &'static str, err: std::io::Error) -> VfsError {
        let kind = match err.raw_os_error() {
            Some(errno) => ErrorKind::from_errno(errno),
            None => match err.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                    ErrorKind::InvalidInput
                }
                std::io::ErrorKind::TimedOut => ErrorKind::TimedOut,
                std::io::ErrorKind::Unsupported => ErrorKind::Unsupported,
                std::io::ErrorKind::OutOfMemory => ErrorKind::OutOfMemory,
                _ => ErrorKind::Io,
            },
        };
        VfsError::new(kind, operation).with_source(err)
    }

    /// The errno kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno string, e.g. `"ENOENT"`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The platform's errno number.
    pub fn errno(&self) -> i32 {
        self.kind.errno()
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The path the operation was about, when it had one.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The extra sentence, when there is one.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Rewrites the path, keeping everything else; the mount table uses it to turn a
    /// driver's mount-relative path back into the path its caller used.
    pub fn map_path(mut self, map: impl FnOnce(&str) -> String) -> VfsError {
        if let Some(path) = self.path.take() {
            self.path = Some(map(&path));
        }
        self
    }
}

impl fmt::Display for VfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}, {}",
            self.kind.code(),
            self.kind.message(),
            self.operation
        )?;
        if let Some(path) = &self.path {
            write!(f, " '{path}'")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfsError")
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("detail", &self.detail)
            .field("source", &self.source)
            .finish()
    }
}

impl StdError for VfsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl From<VfsError> for std::io::Error {
    fn from(err: VfsError) -> std::io::Error {
        std::io::Error::from_raw_os_error(err.errno())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_errno_and_code() {
        for &kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_errno(kind.errno()), kind, "{kind}");
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let io = std::io::Error::from_raw_os_error(libc::ENOTEMPTY);
        let err = VfsError::from_io("rmdir", io).with_path("/d");
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
        assert!(err
            .to_string()
            .starts_with("ENOTEMPTY: directory not empty, rmdir '/d'"));
    }

    #[test]
    fn unknown_errno_is_eio() {
        assert_eq!(ErrorKind::from_errno(99_999), ErrorKind::Io);
    }
}
