//! The serializable actions a runtime drives the layer with — `mountFs`, `unmountFs`,
//! `listMounts`, `snapshotRootFilesystem`, restore, diff, export, import, the snapshot
//! list and the file operations a host UI needs without FUSE — with agentOS's names and
//! camelCase JSON, and the [`Vfs`] that runs them.
//!
//! Errors are [`ActionError`] values (`{code: "ENOENT", message, path}`); what callbacks
//! did in agentOS becomes a [`VfsEvent`] stream ([`Vfs::subscribe`]). The mount table a
//! runtime starts with can come from a file ([`MountsConfig`]). The `server` module puts
//! all of it behind JSON-RPC for hosts in other languages.

mod action;
mod config;
mod error;
mod event;
mod payload;
mod vfs;

pub use action::{
    Action, ActionOutput, ArchiveFormat, ChangeRow, DiffSummary, ExportSummary, FileContent,
    RestoreSummary, SnapshotRow, SnapshotStatsRow, SnapshotSummary, StatRow, ACTION_NAMES,
};
pub use config::{MountSpec, MountsConfig};
pub use error::ActionError;
pub use event::VfsEvent;
pub use payload::{Encoding, Payload};
pub use vfs::{ImportSource, Vfs, READ_FILE_MAX};
