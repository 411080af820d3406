//! Storage drivers for vfs-layer, each a [`vfs_core::FileSystem`].
//!
//! - [`memory`]: [`MemoryFs`], a POSIX filesystem in memory with tmpfs semantics;
//! - [`host`]: `HostFs`, a host directory, confined beneath its root by the kernel;
//! - [`overlay`]: `OverlayFs`, one writable upper over read-only lowers, OCI whiteouts.
//!
//! [`builtin_registry`] builds them from `{ "id", "config" }` descriptors.

mod builtin;
pub mod host;
pub mod memory;
pub mod object;
pub mod overlay;

pub use builtin::{builtin_registry, register_builtins};
pub use memory::{MemoryConfig, MemoryFs};
pub use vfs_core;
