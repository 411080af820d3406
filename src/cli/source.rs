//! What command-line arguments name: a live tree (a host directory, or a mounts config
//! booted through the actions) or a stored snapshot (an id, a unique id prefix, a tag).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use vfs_layer::actions::{MountsConfig, Vfs};
use vfs_layer::core::{DriverDescriptor, ErrorKind, FileSystem, VfsError, VfsPath};
use vfs_layer::snapshot::{Digest, Repository, SnapshotId, SnapshotInfo, StoreUrl};

use super::output::Failure;

/// A tree to read (or restore into), with what a snapshot of it needs to know.
pub struct Live {
    /// The tree.
    pub fs: Arc<dyn FileSystem>,
    /// Where inode numbers start a new namespace (the mount points of a config).
    pub device_roots: Vec<VfsPath>,
    /// How to name it in output.
    pub label: String,
    /// Keeps the booted mounts alive as long as the tree is used.
    _vfs: Option<Arc<Vfs>>,
}

/// Whether a path names a mounts config rather than a directory.
pub fn is_mounts_config(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|ext| ext.to_str()),
        Some("toml" | "json")
    )
}

/// The host directory `dir` served by the `host_dir` driver. The directory must exist.
pub async fn host_dir(dir: &Path, read_only: bool) -> Result<Live, Failure> {
    let shown = dir.display().to_string();
    let meta = std::fs::metadata(dir)
        .map_err(|err| VfsError::from_io("open directory", err).with_path(shown.clone()))?;
    if !meta.is_dir() {
        return Err(Failure::new(
            ErrorKind::NotADirectory,
            "open directory",
            &shown,
            "expected a directory (or a .toml/.json mounts config)",
        ));
    }
    let absolute = std::fs::canonicalize(dir)
        .map_err(|err| VfsError::from_io("open directory", err).with_path(shown.clone()))?;
    let fs = vfs_layer::registry()
        .build(&DriverDescriptor::new(
            "host_dir",
            json!({ "hostPath": absolute, "readOnly": read_only }),
        ))
        .await?;
    Ok(Live {
        fs,
        device_roots: Vec::new(),
        label: absolute.display().to_string(),
        _vfs: None,
    })
}

/// The root of a mount table booted from a mounts config, through the actions.
pub async fn mounts_config(path: &Path, repo: &Arc<Repository>) -> Result<Live, Failure> {
    let config = MountsConfig::load(path)?;
    let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repo.clone()));
    vfs.boot(&config).await?;
    let table = vfs.table().clone();
    let device_roots = table.mount_points();
    Ok(Live {
        fs: table,
        device_roots,
        label: path.display().to_string(),
        _vfs: Some(vfs),
    })
}

/// A directory or a mounts config, by what `arg` looks like.
pub async fn live(arg: &Path, repo: &Arc<Repository>) -> Result<Live, Failure> {
    if is_mounts_config(arg) {
        mounts_config(arg, repo).await
    } else {
        host_dir(arg, true).await
    }
}

/// Opens the store `--store` names for a command that only reads: a store without a
/// repository is refused, instead of one being created as a side effect of a typo.
pub async fn open_store(url: &str) -> Result<Arc<Repository>, Failure> {
    Repository::open_url_existing(url).await.map_err(|err| {
        if err.kind() == ErrorKind::NotFound && err.operation() == "open repository" {
            err.with_detail(
                "no snapshot store here (take a snapshot first, or pass --store / VFS_STORE)",
            )
            .into()
        } else {
            err.into()
        }
    })
}

/// Where a local store is or would be, with symlinks resolved as far as the path exists:
/// used to refuse snapshotting a tree that holds the store itself.
pub fn local_store_dir(url: &str) -> Option<PathBuf> {
    let Ok(StoreUrl::Local(dir)) = StoreUrl::parse(url) else {
        return None;
    };
    let absolute = std::path::absolute(&dir).ok()?;
    // The deepest existing ancestor is resolved; what does not exist yet is appended.
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(existing) {
            return Some(
                missing
                    .iter()
                    .rev()
                    .fold(resolved, |path, name| path.join(name)),
            );
        }
        missing.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
}

/// A store opened by a command that may create it.
pub struct OpenedStore {
    /// The repository.
    pub repo: Arc<Repository>,
    /// The outermost directory created for a local store that did not exist.
    created: Option<PathBuf>,
}

impl OpenedStore {
    /// After the command failed, removes the local store it created, so a refused
    /// command leaves no store behind. A store that existed before is never touched.
    pub fn discard_if_created(self) {
        if let Some(dir) = self.created {
            drop(self.repo);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Opens (creating if needed) the store of a command that writes to it.
pub async fn open_store_for_writing(url: &str) -> Result<OpenedStore, Failure> {
    let created = match StoreUrl::parse(url)? {
        StoreUrl::Local(dir) => dir
            .ancestors()
            .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
            .last()
            .map(Path::to_path_buf),
        StoreUrl::S3 { .. } => None,
    };
    match Repository::open_url(url).await {
        Ok(repo) => Ok(OpenedStore { repo, created }),
        Err(err) => {
            if let Some(dir) = created {
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(err.into())
        }
    }
}

/// The snapshot `name` designates: its 64-digit id, a tag, or an unambiguous prefix of
/// at least 6 hex digits of an id; the snapshot's record must exist.
pub async fn snapshot(
    repo: &Repository,
    name: &str,
) -> Result<(SnapshotId, SnapshotInfo), Failure> {
    let not_found = || {
        Failure::new(
            ErrorKind::NotFound,
            "find snapshot",
            name,
            "no snapshot or tag by this name in the store (see `vfs snapshots`)",
        )
    };
    let is_prefix = (6..64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_hexdigit());
    let id = match repo.resolve(name).await {
        Ok(id) => id,
        Err(err) if err.kind() == ErrorKind::NotFound && is_prefix => {
            by_prefix(repo, name).await?.ok_or_else(not_found)?
        }
        Err(err) if err.kind() == ErrorKind::NotFound => return Err(not_found()),
        Err(err) => return Err(err.into()),
    };
    match repo.snapshot_info(&id).await {
        Ok(info) => Ok((id, info)),
        Err(err) if err.kind() == ErrorKind::NotFound => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

async fn by_prefix(repo: &Repository, prefix: &str) -> Result<Option<Digest>, Failure> {
    let prefix = prefix.to_ascii_lowercase();
    let matches: Vec<Digest> = repo
        .list_snapshots()
        .await?
        .into_iter()
        .map(|info| info.id)
        .filter(|id| id.to_hex().starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Failure::new(
            ErrorKind::InvalidInput,
            "find snapshot",
            &prefix,
            &format!(
                "{} snapshots start with this prefix; give more digits",
                matches.len()
            ),
        )),
    }
}

/// One side of a diff.
pub enum Side {
    /// A stored snapshot.
    Stored(SnapshotId),
    /// A live tree.
    Live(Live),
}

/// Reads a diff argument: a path-like argument (with a `/`, `.` or `..`, or a config
/// file name) is live; otherwise a snapshot name, falling back to a directory of that
/// name when no snapshot has it.
pub async fn side(arg: &str, repo: &Arc<Repository>) -> Result<Side, Failure> {
    let path = Path::new(arg);
    if arg.contains('/') || arg == "." || arg == ".." || is_mounts_config(path) {
        return Ok(Side::Live(live(path, repo).await?));
    }
    match snapshot(repo, arg).await {
        Ok((id, _)) => Ok(Side::Stored(id)),
        Err(err) if err.code() == "ENOENT" && path.is_dir() => {
            Ok(Side::Live(host_dir(path, true).await?))
        }
        Err(err) => Err(err),
    }
}
