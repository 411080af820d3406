//! vfs-layer: a virtual filesystem layer for sandboxed runtimes.
//!
//! A runtime boots a guest whose root is a [`MountTable`](core::MountTable), attaches and
//! detaches storage at runtime, snapshots it, exports it and serves it through FUSE.
//! This facade re-exports the workspace's crates and adds the [`actions`] a runtime drives
//! it with and the [`server`] that puts them behind JSON-RPC:
//!
//! - [`core`]: the `FileSystem` contract, paths, errors, the mount table, the registry;
//! - [`drivers`]: the storage drivers (`memory`, `host_dir`, `overlay`, `s3`/`object`);
//! - [`snapshot`]: content-addressed snapshots and the read-only `snapshot` driver;
//! - [`fuse`]: serves any `FileSystem`, a whole mount table included, through the kernel.
//!
//! [`registry`] gives a driver registry holding every driver the workspace ships.
//!
//! On top of them, [`actions`] holds the serializable actions (`mountFs`, `unmountFs`,
//! `snapshotRootFilesystem`, ...) and the [`actions::Vfs`] that runs them, and [`server`]
//! serves those actions as JSON-RPC 2.0 over stdio or a Unix socket (PROTOCOL.md).
//!
//! ```
//! use std::sync::Arc;
//! use vfs_layer::core::{FileSystem, MountOptions, MountTable, VfsPath};
//! use vfs_layer::drivers::memory::MemoryFs;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> vfs_layer::core::Result<()> {
//! let root = MountTable::new();
//! root.mount(&VfsPath::root(), Arc::new(MemoryFs::new()), MountOptions::default()).await?;
//! root.mount(&VfsPath::new("/work")?, Arc::new(MemoryFs::new()), MountOptions::default()).await?;
//! root.write_file(&VfsPath::new("/work/notes.txt")?, "hello".into()).await?;
//! assert_eq!(root.read_file(&VfsPath::new("/work/notes.txt")?).await?, "hello");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod actions;
pub mod server;

pub use vfs_core as core;
pub use vfs_drivers as drivers;
pub use vfs_fuse as fuse;
pub use vfs_snapshot as snapshot;

/// A driver registry with every driver of the workspace: the built-ins of `vfs-drivers`
/// and the read-only `snapshot` driver (which `vfs-drivers` cannot register, as
/// `vfs-snapshot` depends on it).
///
/// ```
/// let registry = vfs_layer::registry();
/// for id in ["memory", "host_dir", "overlay", "s3", "object", "snapshot"] {
///     assert!(registry.ids().iter().any(|known| known == id), "{id}");
/// }
/// ```
pub fn registry() -> core::DriverRegistry {
    let registry = drivers::builtin_registry();
    // The built-ins use other ids, so the snapshot driver cannot collide with them.
    if let Err(err) = snapshot::register_snapshot_driver(&registry) {
        unreachable!("the snapshot driver id collided with a built-in: {err}");
    }
    registry
}

/// Compiles the README's example as a doc test, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
