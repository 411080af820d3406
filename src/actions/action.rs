//! The serializable actions and what they return, with agentOS's names and camelCase
//! fields.

use serde::{Deserialize, Serialize};
use vfs_core::{DirEntry, DriverDescriptor, FileKind, Metadata, MountInfo, MountOptions};
use vfs_snapshot::{SnapshotInfo, SnapshotStats};

use super::error::ActionError;
use super::payload::{Encoding, Payload};

/// One request to a [`Vfs`](super::Vfs): the JSON-RPC method name is the tag, the params
/// its fields. Paths are strings here and validated when the action runs, so a bad path
/// is an error carrying its errno (`EINVAL`, `ENAMETOOLONG`) rather than a parse failure.
///
/// ```
/// use vfs_layer::actions::Action;
///
/// let action: Action = serde_json::from_str(
///     r#"{"method": "mountFs", "params": {"path": "/work", "driver": {"id": "memory", "config": {}},
///         "options": {"readOnly": true}}}"#,
/// ).unwrap();
/// assert!(matches!(action, Action::MountFs { .. }));
/// let action = Action::from_rpc("listMounts", None).unwrap();
/// assert_eq!(action, Action::ListMounts);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "method",
    content = "params",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Action {
    /// Builds a driver from the registry and mounts it; returns the mount's row.
    MountFs {
        /// Where to mount (created when missing).
        path: String,
        /// The driver id and its config (`plugin` is accepted as agentOS names it).
        #[serde(alias = "plugin")]
        driver: DriverDescriptor,
        /// `{readOnly}`.
        #[serde(default)]
        options: MountOptions,
        /// agentOS's later descriptor puts `readOnly` beside the path; either sets it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_only: Option<bool>,
    },
    /// Unmounts the filesystem at `path` and shuts its driver down.
    UnmountFs {
        /// The mount point.
        path: String,
        /// Detach even while handles are open.
        #[serde(default)]
        lazy: bool,
    },
    /// The mounts, sorted by path, without driver config.
    ListMounts,
    /// Snapshots the tree at `path` (default `/`, the whole root with every mount) into
    /// the repository.
    SnapshotRootFilesystem {
        /// The directory to capture; `/` when absent.
        #[serde(default)]
        path: Option<String>,
        /// A tag to point at the new snapshot.
        #[serde(default)]
        tag: Option<String>,
        /// Record owners and times as 0 (reproducible ids for the same content).
        #[serde(default)]
        normalize: bool,
    },
    /// Writes a snapshot into a missing or empty directory of the tree.
    RestoreSnapshot {
        /// A 64-digit snapshot id or a tag.
        snapshot: String,
        /// The target directory.
        path: String,
    },
    /// The differences from one snapshot to another, or to the live tree.
    DiffSnapshots {
        /// The older snapshot (id or tag).
        from: String,
        /// The newer snapshot; absent means the live tree at `path`.
        #[serde(default)]
        to: Option<String>,
        /// The live directory compared when `to` is absent (default `/`).
        #[serde(default)]
        path: Option<String>,
    },
    /// Writes a snapshot as an archive, to a host file or back to the caller.
    ExportSnapshot {
        /// A snapshot id or tag.
        snapshot: String,
        /// `tar`, `tar.zst` or `agentos` (agentOS's JSON export).
        format: ArchiveFormat,
        /// An absolute host path to write; absent means the bytes come back in the output.
        #[serde(default)]
        host_path: Option<String>,
        /// How returned bytes travel (default: a binary attachment).
        #[serde(default)]
        encoding: Encoding,
    },
    /// Stores an archive as a snapshot.
    ImportSnapshot {
        /// `tar`, `tar.zst` or `agentos`.
        format: ArchiveFormat,
        /// The archive bytes (exactly one of `data` and `hostPath`).
        #[serde(default)]
        data: Option<Payload>,
        /// An absolute host path to read the archive from.
        #[serde(default)]
        host_path: Option<String>,
        /// A tag to point at the imported snapshot.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Every snapshot in the repository with its tags, oldest first.
    ListSnapshots,
    /// A whole file's content.
    ReadFile {
        /// The file.
        path: String,
        /// How the bytes travel back (default: a binary attachment).
        #[serde(default)]
        encoding: Encoding,
    },
    /// Creates or replaces a file with `data`.
    WriteFile {
        /// The file.
        path: String,
        /// Its new content.
        data: Payload,
    },
    /// A directory's entries with their kinds, in one call.
    ReadDirEntries {
        /// The directory.
        path: String,
    },
    /// Metadata with agentOS's stat fields.
    Stat {
        /// The path; symlinks are followed unless `noFollow`.
        path: String,
        /// `lstat`: describe a symlink itself.
        #[serde(default)]
        no_follow: bool,
    },
    /// Creates a directory.
    Mkdir {
        /// The directory.
        path: String,
        /// Create missing parents and accept an existing directory (`mkdir -p`).
        #[serde(default)]
        recursive: bool,
        /// Permission bits (default `0o755`).
        #[serde(default)]
        mode: Option<u32>,
    },
    /// Removes a file, a symlink or an empty directory; with `recursive`, a whole tree.
    Remove {
        /// What to remove.
        path: String,
        /// Remove a directory with its content.
        #[serde(default)]
        recursive: bool,
    },
    /// Renames within one mount (`EXDEV` across mounts).
    Rename {
        /// The current path.
        from: String,
        /// The new path.
        to: String,
    },
}

/// The method names, as JSON-RPC callers send them.
pub const ACTION_NAMES: &[&str] = &[
    "mountFs",
    "unmountFs",
    "listMounts",
    "snapshotRootFilesystem",
    "restoreSnapshot",
    "diffSnapshots",
    "exportSnapshot",
    "importSnapshot",
    "listSnapshots",
    "readFile",
    "writeFile",
    "readDirEntries",
    "stat",
    "mkdir",
    "remove",
    "rename",
];

/// The actions without params.
const UNIT_ACTIONS: &[&str] = &["listMounts", "listSnapshots"];

impl Action {
    /// Parses a JSON-RPC method and its params: `ENOSYS` for an unknown method, `EINVAL`
    /// naming the problem for wrong types, missing or unknown fields. Actions without
    /// params accept absent, `null`, `{}` and `[]` params.
    pub fn from_rpc(
        method: &str,
        params: Option<serde_json::Value>,
    ) -> Result<Action, ActionError> {
        if !ACTION_NAMES.contains(&method) {
            return Err(ActionError::new(
                vfs_core::ErrorKind::NotImplemented,
                format!("unknown method '{method}'"),
            ));
        }
        let params = match params {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(map))
                if map.is_empty() && UNIT_ACTIONS.contains(&method) =>
            {
                None
            }
            Some(serde_json::Value::Array(list))
                if list.is_empty() && UNIT_ACTIONS.contains(&method) =>
            {
                None
            }
            Some(other) => Some(other),
        };
        let mut envelope = serde_json::Map::new();
        envelope.insert("method".into(), method.into());
        if let Some(params) = params {
            envelope.insert("params".into(), params);
        }
        serde_json::from_value(serde_json::Value::Object(envelope))
            .map_err(|err| ActionError::invalid(format!("bad params for {method}: {err}")))
    }

    /// The JSON-RPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Action::MountFs { .. } => "mountFs",
            Action::UnmountFs { .. } => "unmountFs",
            Action::ListMounts => "listMounts",
            Action::SnapshotRootFilesystem { .. } => "snapshotRootFilesystem",
            Action::RestoreSnapshot { .. } => "restoreSnapshot",
            Action::DiffSnapshots { .. } => "diffSnapshots",
            Action::ExportSnapshot { .. } => "exportSnapshot",
            Action::ImportSnapshot { .. } => "importSnapshot",
            Action::ListSnapshots => "listSnapshots",
            Action::ReadFile { .. } => "readFile",
            Action::WriteFile { .. } => "writeFile",
            Action::ReadDirEntries { .. } => "readDirEntries",
            Action::Stat { .. } => "stat",
            Action::Mkdir { .. } => "mkdir",
            Action::Remove { .. } => "remove",
            Action::Rename { .. } => "rename",
        }
    }

    /// The payload the action carries (writeFile's and importSnapshot's data), for the
    /// server to resolve attachments into.
    pub fn payload_mut(&mut self) -> Option<&mut Payload> {
        match self {
            Action::WriteFile { data, .. } => Some(data),
            Action::ImportSnapshot { data, .. } => data.as_mut(),
            _ => None,
        }
    }
}

/// An archive format of export and import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArchiveFormat {
    /// A POSIX pax tar stream.
    #[serde(rename = "tar")]
    Tar,
    /// A tar stream in one zstd frame.
    #[serde(rename = "tar.zst")]
    TarZst,
    /// agentOS's `snapshot-export` JSON document.
    #[serde(rename = "agentos")]
    AgentOs,
}

/// What an action returns. Serializes as the bare result (`null` for [`ActionOutput::Done`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ActionOutput {
    /// mountFs, unmountFs: the mount's row.
    Mount(MountInfo),
    /// listMounts.
    Mounts(Vec<MountInfo>),
    /// snapshotRootFilesystem, importSnapshot.
    Snapshot(SnapshotSummary),
    /// restoreSnapshot.
    Restored(RestoreSummary),
    /// diffSnapshots.
    Diff(DiffSummary),
    /// exportSnapshot.
    Exported(ExportSummary),
    /// listSnapshots.
    Snapshots(Vec<SnapshotRow>),
    /// readFile.
    File(FileContent),
    /// readDirEntries: name, kind and inode of each entry.
    Entries(Vec<DirEntry>),
    /// stat.
    Stat(StatRow),
    /// writeFile, mkdir, remove, rename.
    Done,
}

impl ActionOutput {
    /// The payload the output carries (readFile's content, an export's bytes), for the
    /// server to move into a binary attachment.
    pub fn payload_mut(&mut self) -> Option<&mut Payload> {
        match self {
            ActionOutput::File(file) => Some(&mut file.data),
            ActionOutput::Exported(export) => export.data.as_mut(),
            _ => None,
        }
    }
}

/// A snapshot taken or imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSummary {
    /// The snapshot id, 64 hex digits.
    pub snapshot_id: String,
    /// The tag pointed at it, if one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// What it cost.
    pub stats: SnapshotStatsRow,
}

/// [`SnapshotStats`] in camelCase JSON, the duration in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatsRow {
    /// Regular files captured.
    pub files: u64,
    /// Directories captured, the root included.
    pub dirs: u64,
    /// Symlinks captured.
    pub symlinks: u64,
    /// The sum of the files' sizes.
    pub bytes_total: u64,
    /// File bytes read.
    pub bytes_read: u64,
    /// Compressed bytes this snapshot added to the store.
    pub bytes_new: u64,
    /// Chunks added.
    pub chunks_new: u64,
    /// Chunks the store already had.
    pub chunks_reused: u64,
    /// Files whose content came from the stat cache without reading.
    pub files_cached: u64,
    /// Wall-clock milliseconds.
    pub duration_ms: u64,
}

impl From<&SnapshotStats> for SnapshotStatsRow {
    fn from(stats: &SnapshotStats) -> SnapshotStatsRow {
        SnapshotStatsRow {
            files: stats.files,
            dirs: stats.dirs,
            symlinks: stats.symlinks,
            bytes_total: stats.bytes_total,
            bytes_read: stats.bytes_read,
            bytes_new: stats.bytes_new,
            chunks_new: stats.chunks_new,
            chunks_reused: stats.chunks_reused,
            files_cached: stats.files_cached,
            duration_ms: u64::try_from(stats.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// What a restore wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSummary {
    /// The snapshot restored.
    pub snapshot_id: String,
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Content bytes written.
    pub bytes: u64,
}

/// The differences between two trees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffSummary {
    /// In canonical path order.
    pub changes: Vec<ChangeRow>,
}

/// One difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRow {
    /// Where, absolute within the compared tree.
    pub path: String,
    /// `added`, `removed`, `modified`, `typeChanged` or `metadataChanged`.
    pub kind: String,
}

/// An archive written.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSummary {
    /// The snapshot exported.
    pub snapshot_id: String,
    /// The archive format.
    pub format: ArchiveFormat,
    /// The archive's size in bytes.
    pub size: u64,
    /// The host file written, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// The archive, when no host path was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Payload>,
}

/// One snapshot of the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRow {
    /// The snapshot id.
    pub snapshot_id: String,
    /// When it was first taken, milliseconds since the epoch.
    pub time_ms: i64,
    /// The path captured.
    pub source: String,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Content bytes.
    pub bytes: u64,
    /// The tags naming it.
    pub tags: Vec<String>,
}

impl SnapshotRow {
    pub(crate) fn new(info: &SnapshotInfo, tags: Vec<String>) -> SnapshotRow {
        SnapshotRow {
            snapshot_id: info.id.to_hex(),
            time_ms: info.time / 1_000_000,
            source: info.source.clone(),
            files: info.files,
            dirs: info.dirs,
            bytes: info.bytes,
            tags,
        }
    }
}

/// A file's content.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileContent {
    /// Its size in bytes.
    pub size: u64,
    /// The bytes.
    pub data: Payload,
}

/// Metadata with the fields of agentOS's (and Node's) `Stats`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatRow {
    /// `file`, `directory`, `symlink`, ...
    pub kind: FileKind,
    /// POSIX `st_mode`: type and permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Always 0: the layer has no device numbers for mounts.
    pub dev: u64,
    /// Device number of a device node.
    pub rdev: u64,
    /// Whether it is a directory.
    pub is_directory: bool,
    /// Whether it is a regular file.
    pub is_file: bool,
    /// Whether it is a symlink (only with `noFollow`).
    pub is_symbolic_link: bool,
    /// Last access, ms since the epoch.
    pub atime_ms: f64,
    /// Last content change.
    pub mtime_ms: f64,
    /// Last metadata change.
    pub ctime_ms: f64,
    /// Creation.
    pub birthtime_ms: f64,
    /// Inode number.
    pub ino: u64,
    /// Hard links.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl From<&Metadata> for StatRow {
    fn from(meta: &Metadata) -> StatRow {
        StatRow {
            kind: meta.kind,
            mode: meta.st_mode(),
            size: meta.size,
            blocks: meta.blocks,
            dev: 0,
            rdev: meta.rdev,
            is_directory: meta.is_dir(),
            is_file: meta.is_file(),
            is_symbolic_link: meta.is_symlink(),
            atime_ms: meta.atime.as_millis_f64(),
            mtime_ms: meta.mtime.as_millis_f64(),
            ctime_ms: meta.ctime.as_millis_f64(),
            birthtime_ms: meta.btime.as_millis_f64(),
            ino: meta.ino,
            nlink: meta.nlink,
            uid: meta.uid,
            gid: meta.gid,
        }
    }
}
