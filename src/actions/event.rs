//! What a host subscribes to instead of passing callbacks: mounts coming and going,
//! snapshot progress and results, driver failures.

use serde::{Deserialize, Serialize};
use vfs_core::MountInfo;
use vfs_snapshot::{Phase, Progress};

use super::action::SnapshotStatsRow;

/// One event of a [`Vfs`](super::Vfs), in JSON `{"type": "mounted", ...}`.
///
/// ```
/// use vfs_layer::actions::VfsEvent;
///
/// let event = VfsEvent::DriverError {
///     path: Some("/work".into()), kind: Some("s3".into()), operation: "unmountFs".into(),
///     code: "EIO".into(), message: "shutdown failed".into(),
/// };
/// assert_eq!(serde_json::to_value(&event).unwrap()["type"], "driverError");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum VfsEvent {
    /// A filesystem was mounted.
    Mounted {
        /// The new mount's row (`path`, `kind`, `readOnly`, `mountId`).
        #[serde(flatten)]
        mount: MountInfo,
    },
    /// A filesystem was unmounted.
    Unmounted {
        /// The row of the mount that went away.
        #[serde(flatten)]
        mount: MountInfo,
        /// Whether handles were still open (a lazy unmount).
        lazy: bool,
    },
    /// A snapshot or restore moved on. Reports are coalesced: a slow reader sees the
    /// latest state, not every step.
    SnapshotProgress {
        /// `snapshot` or `restore`.
        operation: String,
        /// The tree path captured or restored into.
        path: String,
        /// `listing`, `content`, `finishing` or `done`.
        phase: String,
        /// Files processed.
        files_done: u64,
        /// Files to process (known after listing).
        files_total: u64,
        /// Content bytes processed.
        bytes_done: u64,
        /// Content bytes to process.
        bytes_total: u64,
    },
    /// A snapshot was stored (by snapshotRootFilesystem or importSnapshot).
    SnapshotFinished {
        /// The tree path captured, or `import` for an import.
        path: String,
        /// The new snapshot's id.
        snapshot_id: String,
        /// The tag pointed at it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// What it cost.
        stats: SnapshotStatsRow,
    },
    /// A driver or the snapshot store failed: a driver's shutdown after unmount, or an
    /// action that failed with `EIO`.
    DriverError {
        /// The path concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// The driver id, when a mount is concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        /// The action that saw it.
        operation: String,
        /// The errno string.
        code: String,
        /// The error on one line.
        message: String,
    },
}

impl VfsEvent {
    pub(crate) fn progress(operation: &str, path: &str, progress: &Progress) -> VfsEvent {
        let phase = match progress.phase {
            Phase::Listing => "listing",
            Phase::Content => "content",
            Phase::Finishing => "finishing",
            Phase::Done => "done",
        };
        VfsEvent::SnapshotProgress {
            operation: operation.to_owned(),
            path: path.to_owned(),
            phase: phase.to_owned(),
            files_done: progress.files_done,
            files_total: progress.files_total,
            bytes_done: progress.bytes_done,
            bytes_total: progress.bytes_total,
        }
    }
}
