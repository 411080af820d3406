//! The core of vfs-layer: the [`FileSystem`] contract every driver implements, validated
//! paths ([`VfsPath`]), errno-carrying errors ([`VfsError`]), the runtime [`MountTable`]
//! and the [`DriverRegistry`] that builds drivers from JSON configs.
//!
//! vfs-core knows no driver; `vfs-drivers` provides them.

mod error;
mod filesystem;
mod metadata;
mod path;

pub use error::{ErrorKind, Result, VfsError};
pub use filesystem::{write_all_at, FileHandle, FileSystem, MAX_SYMLINK_HOPS};
pub use metadata::{
    Capabilities, DirEntry, FileKind, Metadata, OpenOptions, SetTime, StatFs, Timestamp, XattrMode,
};
pub use path::{VfsPath, MAX_NAME_BYTES, MAX_PATH_BYTES};

/// Re-exported so drivers implement the traits with the same macro version.
pub use async_trait::async_trait;
