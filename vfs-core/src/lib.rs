//! The core of vfs-layer: the [`FileSystem`] contract every driver implements, validated
//! paths ([`VfsPath`]), errno-carrying errors ([`VfsError`]), the runtime [`MountTable`]
//! and the [`DriverRegistry`] that builds drivers from JSON configs.
//!
//! vfs-core knows no driver; `vfs-drivers` provides them.

#![warn(missing_docs)]

mod error;
mod filesystem;
mod metadata;
mod mount_table;
mod nonblocking;
mod path;
mod read_only;
mod registry;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{ErrorKind, Result, VfsError};
pub use filesystem::{write_all_at, FileHandle, FileSystem, MAX_SYMLINK_HOPS};
pub use metadata::{
    Capabilities, DirEntry, FileKind, Metadata, OpenOptions, RenameFlags, SetTime, StatFs,
    Timestamp, XattrMode,
};
pub use mount_table::{
    ChangeHookId, MountEvent, MountId, MountInfo, MountOptions, MountTable, UnmountOptions,
};
pub use nonblocking::{blocking_allowed, forbid_blocking};
pub use path::{VfsPath, MAX_NAME_BYTES, MAX_PATH_BYTES};
pub use read_only::ReadOnlyFs;
pub use registry::{parse_config, DriverDescriptor, DriverFactory, DriverRegistry};

/// Re-exported so drivers implement the traits with the same macro version.
pub use async_trait::async_trait;
