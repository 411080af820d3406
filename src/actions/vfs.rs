//! [`Vfs`]: the mount table, the driver registry, the snapshot repository and the event
//! stream behind one value that runs actions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use vfs_core::{
    DirEntry, DriverDescriptor, DriverRegistry, ErrorKind, FileHandle, FileSystem, MountEvent,
    MountInfo, MountOptions, MountTable, OpenOptions, UnmountOptions, VfsError, VfsPath,
};
use vfs_snapshot::{
    progress_channel, AgentOsExportOptions, ImportOptions, Repository, RestoreOptions, SnapshotId,
    SnapshotOptions, SnapshotStats, StatCache,
};

use super::action::{
    Action, ActionOutput, ArchiveFormat, ChangeRow, DiffSummary, ExportSummary, FileContent,
    RestoreSummary, SnapshotRow, SnapshotStatsRow, SnapshotSummary, StatRow,
};
use super::config::MountsConfig;
use super::error::ActionError;
use super::event::VfsEvent;
use super::payload::Payload;

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 1024;

/// The largest file `readFile` returns whole (1 GiB, the size of a request's attachments):
/// a bigger one would sit in memory at once, per request, before any limit could refuse
/// it. Larger files go through an export to a hostPath, or FUSE.
pub const READ_FILE_MAX: u64 = 1 << 30;

/// Where an import reads its archive from.
#[derive(Clone, Debug)]
pub enum ImportSource {
    /// A file on the host.
    HostPath(PathBuf),
    /// The archive bytes.
    Bytes(Bytes),
}

/// The runtime's filesystem: a [`MountTable`] root, the [`DriverRegistry`] mounts are
/// built from, the snapshot [`Repository`] and an event stream. Every action is a typed
/// method here and a serializable [`Action`] for [`Vfs::dispatch`].
///
/// ```
/// use std::sync::Arc;
/// use vfs_layer::actions::{Action, ActionOutput, Vfs};
/// use vfs_layer::core::{DriverDescriptor, MountOptions, VfsPath};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = std::env::temp_dir().join(format!("vfs-actions-doc-{}", std::process::id()));
/// let repository = vfs_layer::snapshot::Repository::open_local(&store).await?;
/// let vfs = Vfs::new(vfs_layer::registry(), repository);
/// let memory = DriverDescriptor::new("memory", serde_json::json!({}));
/// vfs.mount_fs(&VfsPath::root(), &memory, MountOptions::default()).await?;
/// vfs.write_file(&VfsPath::new("/hello.txt")?, "hi".into()).await?;
///
/// let action: Action = serde_json::from_str(r#"{"method": "readFile", "params": {"path": "/hello.txt"}}"#)?;
/// let ActionOutput::File(file) = vfs.dispatch(action).await? else { unreachable!() };
/// assert_eq!(file.data.bytes().unwrap().as_ref(), b"hi");
/// # std::fs::remove_dir_all(&store)?;
/// # Ok(()) }
/// ```
pub struct Vfs {
    table: Arc<MountTable>,
    registry: DriverRegistry,
    repository: Arc<Repository>,
    events: broadcast::Sender<VfsEvent>,
    /// One stat cache per captured path, so repeated snapshots of a tree skip reading
    /// unchanged files.
    stat_caches: std::sync::Mutex<StatCaches>,
}

/// The stat caches of the most recently captured paths: a host that snapshots many
/// different paths keeps [`STAT_CACHE_PATHS`] of them, not one per path ever captured.
#[derive(Default)]
struct StatCaches {
    by_path: HashMap<String, (Arc<StatCache>, u64)>,
    uses: u64,
}

/// How many captured paths keep a stat cache.
const STAT_CACHE_PATHS: usize = 16;

impl StatCaches {
    fn for_path(&mut self, key: String) -> Arc<StatCache> {
        self.uses += 1;
        let uses = self.uses;
        if !self.by_path.contains_key(&key) && self.by_path.len() >= STAT_CACHE_PATHS {
            let oldest = self
                .by_path
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(path, _)| path.clone());
            if let Some(oldest) = oldest {
                self.by_path.remove(&oldest);
            }
        }
        let (cache, used) = self.by_path.entry(key).or_default();
        *used = uses;
        cache.clone()
    }
}

impl Vfs {
    /// A Vfs with an empty mount table; a runtime then mounts `/` (usually `memory`),
    /// directly or through [`Vfs::boot`].
    pub fn new(registry: DriverRegistry, repository: Arc<Repository>) -> Vfs {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        Vfs {
            table: Arc::new(MountTable::new()),
            registry,
            repository,
            events,
            stat_caches: std::sync::Mutex::new(StatCaches::default()),
        }
    }

    /// Mounts the config's mounts in order. On an error, unmounts what this call mounted
    /// (in reverse) and returns the error, its message naming the failed mount.
    pub async fn boot(&self, config: &MountsConfig) -> Result<(), ActionError> {
        let mut mounted: Vec<VfsPath> = Vec::new();
        for (index, spec) in config.mounts.iter().enumerate() {
            let result = async {
                let path = parse_path(&spec.path)?;
                self.mount_fs(&path, &spec.driver, spec.mount_options())
                    .await?;
                Ok::<_, ActionError>(path)
            }
            .await;
            match result {
                Ok(path) => mounted.push(path),
                Err(mut err) => {
                    for path in mounted.iter().rev() {
                        // Best effort: the boot error is what the caller needs to see.
                        let _ = self.unmount_fs(path, true).await;
                    }
                    let code = format!("{}: ", err.code);
                    let detail = err.message.strip_prefix(&code).unwrap_or(&err.message);
                    err.message = format!("{code}mount #{} ({}): {detail}", index + 1, spec.path);
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Events from now on: mounted, unmounted, snapshot progress and results, driver
    /// errors. A receiver that falls more than 1024 events behind gets `Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<VfsEvent> {
        self.events.subscribe()
    }

    /// The mount table (a [`FileSystem`] for FUSE or direct I/O). Mounts made on it
    /// directly bypass the actions and so send no [`VfsEvent`]; its own
    /// [`MountTable::subscribe`] still reports them.
    pub fn table(&self) -> &Arc<MountTable> {
        &self.table
    }

    /// The snapshot repository.
    pub fn repository(&self) -> &Arc<Repository> {
        &self.repository
    }

    /// The driver registry mounts are built from.
    pub fn registry(&self) -> &DriverRegistry {
        &self.registry
    }

    fn emit(&self, event: VfsEvent) {
        // Nobody listening is fine: events are for whoever subscribed.
        let _ = self.events.send(event);
    }

    /// Runs one action. An action that fails with `EIO` also sends a
    /// [`VfsEvent::DriverError`].
    pub async fn dispatch(&self, action: Action) -> Result<ActionOutput, ActionError> {
        let method = action.method();
        let result = self.run(action).await;
        if let Err(err) = &result {
            if err.kind() == ErrorKind::Io {
                let kind = err
                    .path
                    .as_deref()
                    .and_then(|path| VfsPath::new(path).ok())
                    .and_then(|path| self.mount_covering(&path))
                    .map(|mount| mount.kind);
                self.emit(VfsEvent::DriverError {
                    path: err.path.clone(),
                    kind,
                    operation: method.to_owned(),
                    code: err.code.clone(),
                    message: err.message.clone(),
                });
            }
        }
        result
    }

    async fn run(&self, action: Action) -> Result<ActionOutput, ActionError> {
        Ok(match action {
            Action::MountFs {
                path,
                driver,
                options,
                read_only,
            } => {
                let options = MountOptions {
                    read_only: options.read_only || read_only.unwrap_or(false),
                };
                ActionOutput::Mount(self.mount_fs(&parse_path(&path)?, &driver, options).await?)
            }
            Action::UnmountFs { path, lazy } => {
                ActionOutput::Mount(self.unmount_fs(&parse_path(&path)?, lazy).await?)
            }
            Action::ListMounts => ActionOutput::Mounts(self.list_mounts()),
            Action::SnapshotRootFilesystem {
                path,
                tag,
                normalize,
            } => {
                let path = parse_path(path.as_deref().unwrap_or("/"))?;
                ActionOutput::Snapshot(
                    self.snapshot_root_filesystem(&path, tag.as_deref(), normalize)
                        .await?,
                )
            }
            Action::RestoreSnapshot { snapshot, path } => ActionOutput::Restored(
                self.restore_snapshot(&snapshot, &parse_path(&path)?)
                    .await?,
            ),
            Action::DiffSnapshots { from, to, path } => {
                let path = parse_path(path.as_deref().unwrap_or("/"))?;
                ActionOutput::Diff(self.diff_snapshots(&from, to.as_deref(), &path).await?)
            }
            Action::ExportSnapshot {
                snapshot,
                format,
                host_path,
                encoding,
            } => {
                let host_path = host_path.as_deref().map(parse_host_path).transpose()?;
                let mut summary = self
                    .export_snapshot(&snapshot, format, host_path.as_deref())
                    .await?;
                summary.data = summary.data.map(|data| data.with_encoding(encoding));
                ActionOutput::Exported(summary)
            }
            Action::ImportSnapshot {
                format,
                data,
                host_path,
                tag,
            } => {
                let source = match (data, host_path) {
                    (Some(data), None) => ImportSource::Bytes(payload_bytes(&data)?),
                    (None, Some(host_path)) => ImportSource::HostPath(parse_host_path(&host_path)?),
                    _ => {
                        return Err(ActionError::invalid(
                            "importSnapshot takes exactly one of data and hostPath",
                        ))
                    }
                };
                ActionOutput::Snapshot(self.import_snapshot(format, source, tag.as_deref()).await?)
            }
            Action::ListSnapshots => ActionOutput::Snapshots(self.list_snapshots().await?),
            Action::ReadFile { path, encoding } => {
                let data = self.read_file(&parse_path(&path)?).await?;
                ActionOutput::File(FileContent {
                    size: data.len() as u64,
                    data: Payload::new(data).with_encoding(encoding),
                })
            }
            Action::WriteFile { path, data } => {
                let path = parse_path(&path)?;
                self.write_file(&path, payload_bytes(&data)?).await?;
                ActionOutput::Done
            }
            Action::ReadDirEntries { path } => {
                ActionOutput::Entries(self.read_dir_entries(&parse_path(&path)?).await?)
            }
            Action::Stat { path, no_follow } => {
                ActionOutput::Stat(self.stat(&parse_path(&path)?, no_follow).await?)
            }
            Action::Mkdir {
                path,
                recursive,
                mode,
            } => {
                self.mkdir(&parse_path(&path)?, recursive, mode.unwrap_or(0o755))
                    .await?;
                ActionOutput::Done
            }
            Action::Remove { path, recursive } => {
                self.remove(&parse_path(&path)?, recursive).await?;
                ActionOutput::Done
            }
            Action::Rename { from, to } => {
                self.rename(&parse_path(&from)?, &parse_path(&to)?).await?;
                ActionOutput::Done
            }
        })
    }

    fn mount_covering(&self, path: &VfsPath) -> Option<MountInfo> {
        self.table
            .list()
            .into_iter()
            .filter(|mount| path.starts_with(&mount.path))
            .max_by_key(|mount| mount.path.depth())
    }

    /// `mountFs`: builds the driver (`EINVAL` for an unknown id or a bad config, before
    /// anything is mounted) and mounts it at `path`.
    pub async fn mount_fs(
        &self,
        path: &VfsPath,
        driver: &DriverDescriptor,
        options: MountOptions,
    ) -> Result<MountInfo, ActionError> {
        let fs = self
            .registry
            .build(driver)
            .await
            .map_err(|err| ActionError::from(err).with_path(path.as_str()))?;
        let id = match self.table.mount(path, fs.clone(), options).await {
            Ok(id) => id,
            Err(err) => {
                // The driver was never attached; release what it holds.
                let _ = fs.shutdown().await;
                return Err(err.into());
            }
        };
        let info = self
            .table
            .list()
            .into_iter()
            .find(|mount| mount.mount_id == id)
            .ok_or_else(|| {
                ActionError::new(ErrorKind::Busy, "unmounted while being mounted")
                    .with_path(path.as_str())
            })?;
        self.emit(VfsEvent::Mounted {
            mount: info.clone(),
        });
        Ok(info)
    }

    /// `unmountFs`: detaches the mount at `path` and shuts its driver down; `lazy` detaches
    /// even with open handles.
    pub async fn unmount_fs(&self, path: &VfsPath, lazy: bool) -> Result<MountInfo, ActionError> {
        let mut table_events = self.table.subscribe();
        let info = self.table.unmount(path, UnmountOptions { lazy }).await?;
        let mut was_lazy = false;
        // The table reported this unmount (and any shutdown failure) before returning.
        while let Ok(event) = table_events.try_recv() {
            match event {
                MountEvent::ShutdownFailed {
                    mount,
                    code,
                    message,
                } if mount.mount_id == info.mount_id => self.emit(VfsEvent::DriverError {
                    path: Some(mount.path.as_str().to_owned()),
                    kind: Some(mount.kind),
                    operation: "unmountFs".to_owned(),
                    code,
                    message,
                }),
                MountEvent::Unmounted { mount, lazy } if mount.mount_id == info.mount_id => {
                    was_lazy = lazy;
                }
                _ => {}
            }
        }
        self.emit(VfsEvent::Unmounted {
            mount: info.clone(),
            lazy: was_lazy,
        });
        Ok(info)
    }

    /// `listMounts`: the mounts sorted by path, never with driver config.
    pub fn list_mounts(&self) -> Vec<MountInfo> {
        self.table.list()
    }

    /// `snapshotRootFilesystem`: captures the tree at `path` (every mount beneath it
    /// included), optionally tags it, and sends progress and a finished event. A bad tag
    /// is refused before anything is read.
    pub async fn snapshot_root_filesystem(
        &self,
        path: &VfsPath,
        tag: Option<&str>,
        normalize: bool,
    ) -> Result<SnapshotSummary, ActionError> {
        if let Some(tag) = tag {
            self.check_tag(tag).await?;
        }
        let cache = self
            .stat_caches
            .lock()
            // The map stays consistent even if a holder panicked: entries are inserted whole.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .for_path(format!("{normalize}:{path}"));
        let (progress, watcher) = progress_channel();
        let forward = self.forward_progress("snapshot", path.as_str(), watcher);
        let options = SnapshotOptions {
            normalize,
            device_roots: self.table.mount_points(),
            stat_cache: Some(cache),
            progress: Some(progress),
            ..SnapshotOptions::default()
        };
        let (repository, table, root) = (self.repository.clone(), self.table.clone(), path.clone());
        let result = run_detached(move || async move {
            let result = repository
                .snapshot(table.as_ref() as &dyn FileSystem, &root, &options)
                .await;
            // Dropping the progress sender ends the forwarding task.
            drop(options);
            Ok(result?)
        })
        .await;
        let _ = forward.await;
        let (id, stats) = result?;
        self.finish_snapshot(path.as_str(), id, &stats, tag).await
    }

    async fn check_tag(&self, tag: &str) -> Result<(), ActionError> {
        // resolve() validates the name first; a valid name that names nothing yet is fine.
        match self.repository.resolve(tag).await {
            Err(err) if err.kind() == ErrorKind::InvalidInput => Err(err.into()),
            _ => Ok(()),
        }
    }

    async fn finish_snapshot(
        &self,
        source: &str,
        id: SnapshotId,
        stats: &SnapshotStats,
        tag: Option<&str>,
    ) -> Result<SnapshotSummary, ActionError> {
        if let Some(tag) = tag {
            self.repository.tag(tag, &id).await?;
        }
        let summary = SnapshotSummary {
            snapshot_id: id.to_hex(),
            tag: tag.map(str::to_owned),
            stats: SnapshotStatsRow::from(stats),
        };
        self.emit(VfsEvent::SnapshotFinished {
            path: source.to_owned(),
            snapshot_id: summary.snapshot_id.clone(),
            tag: summary.tag.clone(),
            stats: summary.stats.clone(),
        });
        Ok(summary)
    }

    /// Sends every progress change as an event until the sender is dropped.
    fn forward_progress(
        &self,
        operation: &'static str,
        path: &str,
        mut watcher: tokio::sync::watch::Receiver<vfs_snapshot::Progress>,
    ) -> tokio::task::JoinHandle<()> {
        let events = self.events.clone();
        let path = path.to_owned();
        tokio::spawn(async move {
            while watcher.changed().await.is_ok() {
                let event = VfsEvent::progress(operation, &path, &watcher.borrow_and_update());
                let _ = events.send(event);
            }
        })
    }

    async fn resolve(&self, name: &str) -> Result<SnapshotId, ActionError> {
        self.repository.resolve(name).await.map_err(|err| {
            let mut err = ActionError::from(err);
            if err.path.is_none() {
                err.path = Some(name.to_owned());
            }
            err
        })
    }

    /// `restoreSnapshot`: writes snapshot `snapshot` (id or tag) into the missing or empty
    /// directory `path` of the tree.
    pub async fn restore_snapshot(
        &self,
        snapshot: &str,
        path: &VfsPath,
    ) -> Result<RestoreSummary, ActionError> {
        let id = self.resolve(snapshot).await?;
        // An unknown id fails here, before the target directory is created.
        self.repository.snapshot_info(&id).await?;
        let (progress, watcher) = progress_channel();
        let forward = self.forward_progress("restore", path.as_str(), watcher);
        let options = RestoreOptions {
            progress: Some(progress),
            ..RestoreOptions::default()
        };
        let (repository, table, root) = (self.repository.clone(), self.table.clone(), path.clone());
        let result = run_detached(move || async move {
            let result = repository
                .restore(&id, table.as_ref() as &dyn FileSystem, &root, &options)
                .await;
            drop(options);
            Ok(result?)
        })
        .await;
        let _ = forward.await;
        let stats = result?;
        Ok(RestoreSummary {
            snapshot_id: id.to_hex(),
            files: stats.files,
            dirs: stats.dirs,
            symlinks: stats.symlinks,
            bytes: stats.bytes,
        })
    }

    /// `diffSnapshots`: from snapshot `from` to snapshot `to`, or to the live tree at
    /// `path` when `to` is `None`.
    pub async fn diff_snapshots(
        &self,
        from: &str,
        to: Option<&str>,
        path: &VfsPath,
    ) -> Result<DiffSummary, ActionError> {
        let from = self.resolve(from).await?;
        let to = match to {
            Some(to) => Some(self.resolve(to).await?),
            None => None,
        };
        let options = SnapshotOptions {
            device_roots: self.table.mount_points(),
            ..SnapshotOptions::default()
        };
        let (repository, table, root) = (self.repository.clone(), self.table.clone(), path.clone());
        let changes = run_detached(move || async move {
            Ok(match to {
                Some(to) => repository.diff(&from, &to).await?,
                None => {
                    repository
                        .diff_live(&from, table.as_ref() as &dyn FileSystem, &root, &options)
                        .await?
                }
            })
        })
        .await?;
        Ok(DiffSummary {
            changes: changes
                .into_iter()
                .map(|change| ChangeRow {
                    path: change.path,
                    kind: change.kind.name().to_owned(),
                })
                .collect(),
        })
    }

    /// `exportSnapshot`: the archive of `snapshot` written to `host_path` (through a
    /// temporary file beside it, renamed into place, so a failed export leaves nothing),
    /// or returned as bytes when `host_path` is `None`.
    pub async fn export_snapshot(
        &self,
        snapshot: &str,
        format: ArchiveFormat,
        host_path: Option<&Path>,
    ) -> Result<ExportSummary, ActionError> {
        let id = self.resolve(snapshot).await?;
        let Some(host_path) = host_path else {
            let bytes = export_into(self.repository.clone(), id, format, Vec::new()).await?;
            return Ok(ExportSummary {
                snapshot_id: id.to_hex(),
                format,
                size: bytes.len() as u64,
                host_path: None,
                data: Some(Payload::new(bytes)),
            });
        };
        let shown = host_path.display().to_string();
        let host_error = |op: &'static str| {
            let shown = shown.clone();
            move |err: std::io::Error| {
                ActionError::from(VfsError::from_io(op, err).with_path(shown))
            }
        };
        let file_name = host_path.file_name().ok_or_else(|| {
            ActionError::invalid("hostPath names no file").with_path(shown.clone())
        })?;
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(file_name);
        partial_name.push(format!(".{}.partial", std::process::id()));
        let partial = host_path.with_file_name(partial_name);
        let file = std::fs::File::create_new(&partial).map_err(host_error("export"))?;
        let written = async {
            let out = std::io::BufWriter::new(file);
            let out = export_into(self.repository.clone(), id, format, out).await?;
            let file = out
                .into_inner()
                .map_err(|err| host_error("export")(err.into_error()))?;
            file.sync_all().map_err(host_error("export"))?;
            let size = file.metadata().map_err(host_error("export"))?.len();
            std::fs::rename(&partial, host_path).map_err(host_error("export"))?;
            Ok::<_, ActionError>(size)
        }
        .await;
        let size = match written {
            Ok(size) => size,
            Err(err) => {
                let _ = std::fs::remove_file(&partial);
                return Err(err);
            }
        };
        Ok(ExportSummary {
            snapshot_id: id.to_hex(),
            format,
            size,
            host_path: Some(shown),
            data: None,
        })
    }

    /// `importSnapshot`: stores an archive as a snapshot (`EINVAL`, and no snapshot, for a
    /// malformed one) and optionally tags it.
    pub async fn import_snapshot(
        &self,
        format: ArchiveFormat,
        source: ImportSource,
        tag: Option<&str>,
    ) -> Result<SnapshotSummary, ActionError> {
        if let Some(tag) = tag {
            self.check_tag(tag).await?;
        }
        let options = ImportOptions::default();
        let (id, stats) = match (format, source) {
            (ArchiveFormat::AgentOs, source) => {
                let json = match source {
                    ImportSource::Bytes(bytes) => bytes,
                    ImportSource::HostPath(path) => Bytes::from(
                        tokio::fs::read(&path)
                            .await
                            .map_err(|err| host_io("import", &path, err))?,
                    ),
                };
                self.repository.import_agentos_json(&json, &options).await?
            }
            (format, ImportSource::Bytes(bytes)) => {
                let reader = std::io::Cursor::new(bytes);
                match format {
                    ArchiveFormat::TarZst => {
                        self.repository.import_tar_zst(reader, &options).await?
                    }
                    _ => self.repository.import_tar(reader, &options).await?,
                }
            }
            (format, ImportSource::HostPath(path)) => {
                let file =
                    std::fs::File::open(&path).map_err(|err| host_io("import", &path, err))?;
                match format {
                    ArchiveFormat::TarZst => self.repository.import_tar_zst(file, &options).await?,
                    _ => self.repository.import_tar(file, &options).await?,
                }
            }
        };
        self.finish_snapshot("import", id, &stats, tag).await
    }

    /// `listSnapshots`: every snapshot with the tags naming it, oldest first.
    pub async fn list_snapshots(&self) -> Result<Vec<SnapshotRow>, ActionError> {
        let mut tags: HashMap<SnapshotId, Vec<String>> = HashMap::new();
        for (name, id) in self.repository.list_tags().await? {
            tags.entry(id).or_default().push(name);
        }
        Ok(self
            .repository
            .list_snapshots()
            .await?
            .iter()
            .map(|info| SnapshotRow::new(info, tags.remove(&info.id).unwrap_or_default()))
            .collect())
    }

    /// `readFile`: a whole file, refused with `EFBIG` over [`READ_FILE_MAX`] before any of
    /// it is read.
    pub async fn read_file(&self, path: &VfsPath) -> Result<Bytes, ActionError> {
        let handle = self.table.open(path, OpenOptions::read_only()).await?;
        let result = read_bounded(handle.as_ref(), path).await;
        let closed = handle.close().await;
        let data = result?;
        closed?;
        Ok(data)
    }

    /// `writeFile`: creates or replaces a file.
    pub async fn write_file(&self, path: &VfsPath, data: Bytes) -> Result<(), ActionError> {
        Ok(self.table.write_file(path, data).await?)
    }

    /// `readDirEntries`: names with kinds (mount points included), sorted by name.
    pub async fn read_dir_entries(&self, path: &VfsPath) -> Result<Vec<DirEntry>, ActionError> {
        let mut entries = self.table.read_dir(path).await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// `stat` (`lstat` with `no_follow`).
    pub async fn stat(&self, path: &VfsPath, no_follow: bool) -> Result<StatRow, ActionError> {
        let meta = if no_follow {
            self.table.lstat(path).await?
        } else {
            self.table.stat(path).await?
        };
        Ok(StatRow::from(&meta))
    }

    /// `mkdir` (`mkdir -p` with `recursive`).
    pub async fn mkdir(
        &self,
        path: &VfsPath,
        recursive: bool,
        mode: u32,
    ) -> Result<(), ActionError> {
        if mode > 0o7777 {
            return Err(
                ActionError::invalid(format!("mode {mode:#o} has bits beyond 0o7777"))
                    .with_path(path.as_str()),
            );
        }
        if recursive {
            Ok(self.table.create_dir_all(path, mode).await?)
        } else {
            Ok(self.table.create_dir(path, mode).await?)
        }
    }

    /// `remove`: a file, symlink or empty directory; with `recursive`, a whole tree.
    /// Mount points cannot be removed (`EBUSY`): unmount them.
    pub async fn remove(&self, path: &VfsPath, recursive: bool) -> Result<(), ActionError> {
        // Checked first: a recursive removal would otherwise empty a mount beneath the
        // path before failing on its mount point.
        self.refuse_mount_points(path)?;
        let meta = self.table.lstat(path).await?;
        if !meta.is_dir() {
            return Ok(self.table.remove_file(path).await?);
        }
        if recursive {
            Ok(self.table.remove_dir_all(path).await?)
        } else {
            Ok(self.table.remove_dir(path).await?)
        }
    }

    /// `rename`: within one mount; `EXDEV` across mounts.
    pub async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<(), ActionError> {
        // As on Linux, a mount point (or a directory holding one) does not move.
        self.refuse_mount_points(from)?;
        self.refuse_mount_points(to)?;
        Ok(self.table.rename(from, to).await?)
    }

    /// `EBUSY` when a mount sits at `path` or beneath it.
    fn refuse_mount_points(&self, path: &VfsPath) -> Result<(), ActionError> {
        match self
            .table
            .list()
            .into_iter()
            .find(|mount| mount.path.starts_with(path))
        {
            Some(mount) => Err(ActionError::new(
                ErrorKind::Busy,
                format!(
                    "{} is mounted there or beneath it; unmount it first",
                    mount.path
                ),
            )
            .with_path(path.as_str())),
            None => Ok(()),
        }
    }
}

/// Validates a guest path: absolute, no NUL, not climbing above the root, within the
/// length limits.
fn parse_path(path: &str) -> Result<VfsPath, ActionError> {
    VfsPath::new(path).map_err(|err| {
        let mut err = ActionError::from(err);
        err.path = Some(path.escape_debug().to_string());
        err
    })
}

/// Host paths must be absolute: the server's working directory is not the caller's.
fn parse_host_path(path: &str) -> Result<PathBuf, ActionError> {
    if path.is_empty() || path.contains('\0') || !path.starts_with('/') {
        return Err(
            ActionError::invalid("hostPath must be an absolute host path")
                .with_path(path.escape_debug().to_string()),
        );
    }
    Ok(PathBuf::from(path))
}

fn host_io(operation: &'static str, path: &Path, err: std::io::Error) -> ActionError {
    VfsError::from_io(operation, err)
        .with_path(path.display().to_string())
        .into()
}

fn payload_bytes(payload: &Payload) -> Result<Bytes, ActionError> {
    match (payload.bytes(), payload.attachment_index()) {
        (Some(bytes), _) => Ok(bytes.clone()),
        (None, index) => Err(ActionError::invalid(format!(
            "the payload names attachment {} but none was sent with the request",
            index.unwrap_or_default()
        ))),
    }
}

/// Writes the archive of `id` to `out` and gives `out` back.
async fn export_into<W: std::io::Write + Send + 'static>(
    repository: Arc<Repository>,
    id: SnapshotId,
    format: ArchiveFormat,
    mut out: W,
) -> Result<W, ActionError> {
    run_detached(move || async move {
        match format {
            ArchiveFormat::Tar => {
                repository.export_tar(&id, &mut out).await?;
            }
            ArchiveFormat::TarZst => {
                repository.export_tar_zst(&id, &mut out, 3).await?;
            }
            ArchiveFormat::AgentOs => {
                let json = repository
                    .export_agentos_json(&id, &AgentOsExportOptions::default())
                    .await?;
                out.write_all(&json)
                    .map_err(|err| ActionError::from(VfsError::from_io("export", err)))?;
            }
        }
        Ok(out)
    })
    .await
}

/// Runs the store work of an action as its own task: it runs to completion even if the
/// caller stops waiting (a client that disconnects mid-snapshot), so it is never left
/// half-done, and its store lock is given back as it ends.
async fn run_detached<T, F, Fut>(make: F) -> Result<T, ActionError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ActionError>> + Send + 'static,
{
    tokio::spawn(make()).await.map_err(|err| {
        ActionError::new(ErrorKind::Io, format!("the snapshot task failed: {err}"))
    })?
}

/// Reads a whole file through `handle`, failing with `EFBIG` as soon as it is known to
/// be over [`READ_FILE_MAX`]: by its size first, and while reading if it grows.
async fn read_bounded(handle: &dyn FileHandle, path: &VfsPath) -> Result<Bytes, ActionError> {
    let too_big = || {
        ActionError::from(
            VfsError::new(ErrorKind::FileTooLarge, "readFile")
                .with_path(path.as_str())
                .with_detail(format!(
                    "over {READ_FILE_MAX} bytes; export it to a hostPath or read it through FUSE"
                )),
        )
    };
    let size = handle.stat().await?.size;
    if size > READ_FILE_MAX {
        return Err(too_big());
    }
    let mut content = bytes::BytesMut::with_capacity(size as usize);
    loop {
        let chunk = handle.read_at(content.len() as u64, 1 << 20).await?;
        if chunk.is_empty() {
            return Ok(content.freeze());
        }
        if content.len() as u64 + chunk.len() as u64 > READ_FILE_MAX {
            return Err(too_big());
        }
        content.extend_from_slice(&chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_caches_keep_the_most_recently_used_paths() {
        let mut caches = StatCaches::default();
        let first: Vec<Arc<StatCache>> = (0..STAT_CACHE_PATHS)
            .map(|i| caches.for_path(format!("/p{i}")))
            .collect();
        // /p0 used again: /p1 is now the least recently used.
        assert!(Arc::ptr_eq(&caches.for_path("/p0".into()), &first[0]));
        caches.for_path("/new".into());
        assert_eq!(caches.by_path.len(), STAT_CACHE_PATHS);
        assert!(!caches.by_path.contains_key("/p1"));
        assert!(Arc::ptr_eq(&caches.for_path("/p0".into()), &first[0]));
        assert!(Arc::ptr_eq(&caches.for_path("/p2".into()), &first[2]));
    }
}
