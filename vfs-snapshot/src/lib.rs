//! Content-addressed snapshots of any [`vfs_core::FileSystem`], a whole mount table
//! included.
//!
//! File content is cut into content-defined chunks (FastCDC, 1 MiB average), each stored
//! once under its SHA-256, zstd-compressed, packed with others into pack objects with an
//! index; each directory is a canonical sorted encoding of its entries, hashed the same
//! way; the root tree's digest is the snapshot id. The store is any
//! `object_store::ObjectStore`, a local directory by default. The format is described in
//! `FORMAT.md` beside this crate.
//!
//! [`Repository`] does it all: `snapshot` (with a [`StatCache`] for incremental runs and
//! torn-read detection, and [`Progress`] through a watch channel), `restore`, `diff` and
//! `diff_live`, `verify`, `gc`, tags and listing, `export_tar` / `export_tar_zst` /
//! `import_tar` / `import_tar_zst`, and the agentOS JSON export both ways
//! (`export_agentos` / `import_agentos_json`). [`SnapshotFs`] mounts a snapshot as a
//! read-only filesystem (registry id `snapshot`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vfs_core::{FileSystem, VfsPath};
//! use vfs_snapshot::{Repository, RestoreOptions, SnapshotOptions};
//!
//! # async fn demo(source: Arc<dyn FileSystem>, target: Arc<dyn FileSystem>) -> vfs_core::Result<()> {
//! let repo = Repository::open_local(std::path::Path::new("/var/lib/snapshots")).await?;
//! let (id, stats) = repo.snapshot(source.as_ref(), &VfsPath::root(), &SnapshotOptions::default()).await?;
//! repo.tag("after-boot", &id).await?;
//! repo.restore(&id, target.as_ref(), &VfsPath::new("/restored")?, &RestoreOptions::default()).await?;
//! assert!(repo.verify(&id).await?.is_ok());
//! # let _ = stats; Ok(()) }
//! ```

mod agentos;
mod diff;
mod digest;
mod driver;
mod fan_out;
mod gc;
mod progress;
mod restore;
mod snapshot;
mod store;
mod tar_export;
mod tar_import;
mod tree;
mod url;
mod verify;

pub use agentos::{
    AgentOsEntry, AgentOsExportOptions, AgentOsExportStats, AgentOsFilesystem, AgentOsSnapshot,
    AgentOsSource, AGENTOS_FORMAT, AGENTOS_KIND,
};
pub use diff::{Change, ChangeKind};
pub use digest::{Digest, SnapshotId};
pub use driver::{
    register_snapshot_driver, SnapshotDriverConfig, SnapshotDriverFactory, SnapshotFs,
    SNAPSHOT_DRIVER_ID,
};
pub use gc::{GcOptions, GcStats};
pub use progress::{progress_channel, Phase, Progress, ProgressSender};
pub use restore::{RestoreOptions, RestoreStats};
pub use snapshot::{SnapshotOptions, SnapshotStats, StatCache};
pub use store::{BlobKind, BlobLocation, Repository, SnapshotInfo, FORMAT_VERSION};
pub use tar_export::ExportStats;
pub use tar_import::ImportOptions;
pub use tree::{Attrs, ChunkRef, Entry, Node, Tree};
pub use url::StoreUrl;
pub use verify::{Problem, ProblemKind, VerifyReport};
