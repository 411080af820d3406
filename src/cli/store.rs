//! The commands over a snapshot store: snapshot, restore, diff, export, import,
//! snapshots, verify, gc.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vfs_layer::actions::{ArchiveFormat, Vfs};
use vfs_layer::core::{ErrorKind, VfsError, VfsPath};
use vfs_layer::snapshot::{
    progress_channel, Change, ChangeKind, GcOptions, ImportOptions, ProblemKind, Repository,
    RestoreOptions, SnapshotId, SnapshotOptions, SnapshotStats,
};

use super::interrupt::{self, InterruptibleRead};
use super::output::{self, count, duration, size, Failure, ProgressFollower, Report};
use super::source::{self, Side};

/// What every store command knows: the store URL and whether output is for scripts.
pub struct Context {
    /// The `--store` URL.
    pub store: String,
    /// `--json`.
    pub json: bool,
}

impl Context {
    fn bars(&self) -> bool {
        output::bars_visible(self.json)
    }
}

/// The stats of a snapshot or import as JSON, in the actions' camelCase names.
pub fn stats_json(stats: &SnapshotStats) -> Value {
    json!({
        "files": stats.files,
        "dirs": stats.dirs,
        "symlinks": stats.symlinks,
        "specials": stats.specials,
        "bytesTotal": stats.bytes_total,
        "bytesRead": stats.bytes_read,
        "bytesNew": stats.bytes_new,
        "chunksNew": stats.chunks_new,
        "chunksReused": stats.chunks_reused,
        "treesNew": stats.trees_new,
        "treesReused": stats.trees_reused,
        "filesCached": stats.files_cached,
        "objectsWritten": stats.objects_written,
        "unstable": stats.unstable,
        "vanished": stats.vanished,
        "durationMs": u64::try_from(stats.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Two lines on what a snapshot held and what it cost.
pub fn stats_text(stats: &SnapshotStats) -> String {
    let mut text = format!(
        "  {}, {}, {} in {}\n  stored {} new ({} new, {} reused; {} new; {} written)",
        count(stats.files, "file"),
        count(stats.dirs, "dir"),
        size(stats.bytes_total),
        duration(stats.duration),
        size(stats.bytes_new),
        count(stats.chunks_new, "chunk"),
        stats.chunks_reused,
        count(stats.trees_new, "tree"),
        count(stats.objects_written, "store object"),
    );
    if !stats.unstable.is_empty() {
        let _ = write!(
            text,
            "\n  changing while read (stored as last read): {}",
            stats.unstable.join(", ")
        );
    }
    if !stats.vanished.is_empty() {
        let _ = write!(
            text,
            "\n  vanished while read: {}",
            stats.vanished.join(", ")
        );
    }
    text
}

/// Refuses a malformed tag before any work, so a bad `--tag` stores nothing. The store's
/// own rule is applied by asking it to resolve the name: a malformed one is `EINVAL`, a
/// well-formed unknown one `ENOENT`.
async fn check_tag(repo: &Repository, tag: Option<&str>) -> Result<(), Failure> {
    if let Some(tag) = tag {
        match repo.resolve(tag).await {
            Err(err) if err.kind() == ErrorKind::InvalidInput => return Err(err.into()),
            _ => {}
        }
    }
    Ok(())
}

/// `vfs snapshot <dir or config> [--tag T] [--normalize]`.
pub async fn snapshot(
    cx: &Context,
    source: &Path,
    tag: Option<&str>,
    normalize: bool,
) -> Result<Report, Failure> {
    if !source::is_mounts_config(source) {
        if let (Ok(source_dir), Some(store_dir)) = (
            std::fs::canonicalize(source),
            source::local_store_dir(&cx.store),
        ) {
            if store_dir.starts_with(&source_dir) {
                return Err(Failure::new(
                    ErrorKind::InvalidInput,
                    "snapshot",
                    &source_dir.display().to_string(),
                    &format!(
                        "the store {} is inside this directory; pass --store elsewhere",
                        store_dir.display()
                    ),
                ));
            }
        }
    }
    let store = source::open_store_for_writing(&cx.store).await?;
    let result = snapshot_into(cx, &store.repo, source, tag, normalize).await;
    if result.is_err() {
        store.discard_if_created();
    }
    result
}

async fn snapshot_into(
    cx: &Context,
    repo: &Arc<Repository>,
    source: &Path,
    tag: Option<&str>,
    normalize: bool,
) -> Result<Report, Failure> {
    check_tag(repo, tag).await?;
    let live = source::live(source, repo).await?;
    let (progress, watch) = progress_channel();
    let bar = ProgressFollower::start(watch, cx.bars(), "snapshot");
    let options = SnapshotOptions {
        normalize,
        device_roots: live.device_roots.clone(),
        progress: Some(progress),
        ..SnapshotOptions::default()
    };
    // A signal makes the source fail, so the snapshot unwinds and releases its lock.
    let source = interrupt::Interruptible::wrap(live.fs.clone());
    let result = repo
        .snapshot(source.as_ref(), &VfsPath::root(), &options)
        .await;
    drop(options);
    bar.finish();
    let (id, stats) = result?;
    if let Some(tag) = tag {
        repo.tag(tag, &id).await?;
    }
    let mut text = format!("snapshot {id}");
    if let Some(tag) = tag {
        let _ = write!(text, " (tag {tag})");
    }
    let _ = write!(text, "\n  of {}\n{}", live.label, stats_text(&stats));
    Ok(Report {
        text,
        json: json!({
            "snapshotId": id.to_hex(),
            "tag": tag,
            "source": live.label,
            "store": cx.store,
            "stats": stats_json(&stats),
        }),
    })
}

/// `vfs restore <snapshot|tag> <dir>`: into a missing or empty host directory.
pub async fn restore(cx: &Context, name: &str, dir: &Path) -> Result<Report, Failure> {
    let repo = source::open_store(&cx.store).await?;
    let (id, _) = source::snapshot(&repo, name).await?;
    let shown = dir.display().to_string();
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(dir)
                .map_err(|err| VfsError::from_io("restore", err).with_path(shown.clone()))?;
            if entries.next().is_some() {
                return Err(Failure::new(
                    ErrorKind::DirectoryNotEmpty,
                    "restore",
                    &shown,
                    "restore writes into a missing or empty directory",
                ));
            }
        }
        Ok(_) => {
            return Err(Failure::new(
                ErrorKind::AlreadyExists,
                "restore",
                &shown,
                "not a directory; restore writes into a missing or empty directory",
            ))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|err| VfsError::from_io("restore", err).with_path(shown.clone()))?;
        }
        Err(err) => return Err(VfsError::from_io("restore", err).with_path(shown).into()),
    }
    let target = source::host_dir(dir, false).await?;
    let (progress, watch) = progress_channel();
    let bar = ProgressFollower::start(watch, cx.bars(), "restore");
    let options = RestoreOptions {
        progress: Some(progress),
        ..RestoreOptions::default()
    };
    let started = Instant::now();
    let result = repo
        .restore(&id, target.fs.as_ref(), &VfsPath::root(), &options)
        .await;
    drop(options);
    bar.finish();
    let stats = result.map_err(|err| {
        // What was written stays; say so rather than leave the user guessing.
        let err: Failure = err.into();
        Failure::new(
            ErrorKind::from_code(err.code()).unwrap_or(ErrorKind::Io),
            "restore",
            &shown,
            &format!("stopped part way, what was written stays: {err}"),
        )
    })?;
    let elapsed = started.elapsed();
    let mut text = format!(
        "restored {id}\n  into {}\n  {}, {}, {}, {}, {} in {}",
        target.label,
        count(stats.files, "file"),
        count(stats.dirs, "dir"),
        count(stats.symlinks, "symlink"),
        count(stats.hardlinks, "hard link"),
        size(stats.bytes),
        duration(elapsed)
    );
    if !stats.skipped_specials.is_empty() {
        let _ = write!(
            text,
            "\n  special files skipped: {}",
            stats.skipped_specials.join(", ")
        );
    }
    if stats.skipped_owners > 0 {
        let _ = write!(
            text,
            "\n  owners not set (no privilege): {}",
            stats.skipped_owners
        );
    }
    Ok(Report {
        text,
        json: json!({
            "snapshotId": id.to_hex(),
            "path": target.label,
            "files": stats.files,
            "dirs": stats.dirs,
            "symlinks": stats.symlinks,
            "hardlinks": stats.hardlinks,
            "bytes": stats.bytes,
            "skippedSpecials": stats.skipped_specials,
            "skippedOwners": stats.skipped_owners,
            "skippedXattrs": stats.skipped_xattrs,
            "durationMs": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }),
    })
}

fn kind_mark(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "+",
        ChangeKind::Removed => "-",
        ChangeKind::Modified => "M",
        ChangeKind::TypeChanged => "T",
        ChangeKind::MetadataChanged => "m",
    }
}

/// The changes as `+ /added`, `- /removed`, `M /modified`, `T /type`, `m /metadata`
/// lines, or `no differences`.
pub fn changes_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no differences".to_owned();
    }
    let mut text = String::new();
    for change in changes {
        let _ = writeln!(text, "{} {}", kind_mark(change.kind), change.path);
    }
    text.pop();
    text
}

/// The changes as the actions' `{changes: [{path, kind}]}`.
pub fn changes_json(changes: &[Change]) -> Value {
    let rows: Vec<Value> = changes
        .iter()
        .map(|change| json!({ "path": change.path, "kind": change.kind.name() }))
        .collect();
    json!({ "changes": rows })
}

/// `vfs diff <a> <b>`: two snapshots, or a snapshot and a live tree (either order).
pub async fn diff(cx: &Context, a: &str, b: &str, normalize: bool) -> Result<Report, Failure> {
    let repo = source::open_store(&cx.store).await?;
    let first = source::side(a, &repo).await?;
    let second = source::side(b, &repo).await?;
    let live_options = |live: &source::Live| SnapshotOptions {
        normalize,
        device_roots: live.device_roots.clone(),
        ..SnapshotOptions::default()
    };
    let bar = output::spinner(cx.bars(), "diff");
    let result = match (&first, &second) {
        (Side::Stored(a), Side::Stored(b)) => repo.diff(a, b).await,
        (Side::Stored(a), Side::Live(live)) => {
            repo.diff_live(a, live.fs.as_ref(), &VfsPath::root(), &live_options(live))
                .await
        }
        (Side::Live(live), Side::Stored(b)) => repo
            .diff_live(b, live.fs.as_ref(), &VfsPath::root(), &live_options(live))
            .await
            .map(|changes| changes.into_iter().map(reverse).collect()),
        (Side::Live(_), Side::Live(_)) => Err(VfsError::new(ErrorKind::InvalidInput, "diff")
            .with_path(format!("{a} {b}"))
            .with_detail("one side of a diff must be a snapshot (an id or a tag)")),
    };
    bar.finish_and_clear();
    let changes = result?;
    Ok(Report {
        text: changes_text(&changes),
        json: changes_json(&changes),
    })
}

/// A change seen from the other side: what the live tree lacks was removed.
fn reverse(change: Change) -> Change {
    let kind = match change.kind {
        ChangeKind::Added => ChangeKind::Removed,
        ChangeKind::Removed => ChangeKind::Added,
        other => other,
    };
    Change { kind, ..change }
}

/// An archive format, chosen by a file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Archive {
    Tar,
    TarZst,
    AgentOs,
}

impl Archive {
    fn of(path: &Path, operation: &'static str) -> Result<Archive, Failure> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Ok(Archive::TarZst)
        } else if name.ends_with(".tar") {
            Ok(Archive::Tar)
        } else if name.ends_with(".json") {
            Ok(Archive::AgentOs)
        } else {
            Err(Failure::new(
                ErrorKind::InvalidInput,
                operation,
                &path.display().to_string(),
                "the archive name ends in .tar, .tar.zst (.tzst) or .json (agentOS export)",
            ))
        }
    }

    fn action_format(self) -> ArchiveFormat {
        match self {
            Archive::Tar => ArchiveFormat::Tar,
            Archive::TarZst => ArchiveFormat::TarZst,
            Archive::AgentOs => ArchiveFormat::AgentOs,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Archive::Tar => "tar",
            Archive::TarZst => "tar.zst",
            Archive::AgentOs => "agentos",
        }
    }
}

/// `vfs export <snapshot> <out.tar|out.tar.zst|out.json>`, through the
/// `exportSnapshot` action (written beside `out` and renamed into place, so a failed
/// export leaves nothing).
pub async fn export(cx: &Context, name: &str, out: &Path) -> Result<Report, Failure> {
    let format = Archive::of(out, "export")?;
    let repo = source::open_store(&cx.store).await?;
    let (id, _) = source::snapshot(&repo, name).await?;
    let vfs = Vfs::new(vfs_layer::registry(), repo);
    let started = Instant::now();
    let bar = output::spinner(cx.bars(), "export");
    let result = vfs
        .export_snapshot(&id.to_hex(), format.action_format(), Some(out))
        .await;
    bar.finish_and_clear();
    let summary = result?;
    let elapsed = started.elapsed();
    Ok(Report {
        text: format!(
            "exported {id}\n  to {} ({}, {} in {})",
            out.display(),
            format.name(),
            size(summary.size),
            duration(elapsed)
        ),
        json: json!({
            "snapshotId": id.to_hex(),
            "format": format.name(),
            "hostPath": out.display().to_string(),
            "size": summary.size,
            "durationMs": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }),
    })
}

/// `vfs import <file> [--tag T]`: a tar, tar.zst or agentOS JSON export as a snapshot.
pub async fn import(cx: &Context, file: &Path, tag: Option<&str>) -> Result<Report, Failure> {
    let format = Archive::of(file, "import")?;
    let shown = file.display().to_string();
    let input = std::fs::File::open(file)
        .map_err(|err| VfsError::from_io("import", err).with_path(shown.clone()))?;
    let length = input
        .metadata()
        .map_err(|err| VfsError::from_io("import", err).with_path(shown.clone()))?
        .len();
    let store = source::open_store_for_writing(&cx.store).await?;
    let result = import_into(cx, &store.repo, format, input, length, tag, &shown).await;
    if result.is_err() {
        store.discard_if_created();
    }
    result
}

async fn import_into(
    cx: &Context,
    repo: &Repository,
    format: Archive,
    input: std::fs::File,
    length: u64,
    tag: Option<&str>,
    shown: &str,
) -> Result<Report, Failure> {
    check_tag(repo, tag).await?;
    let bar = output::byte_bar(cx.bars(), "import", length);
    let options = ImportOptions::default();
    // A signal makes the archive fail, so the import unwinds and releases its lock.
    let input = InterruptibleRead(bar.wrap_read(input));
    let result = match format {
        Archive::Tar => repo.import_tar(input, &options).await,
        Archive::TarZst => repo.import_tar_zst(input, &options).await,
        Archive::AgentOs => {
            let (mut input, mut json) = (input, Vec::new());
            match std::io::Read::read_to_end(&mut input, &mut json) {
                Ok(_) => repo.import_agentos_json(&json, &options).await,
                Err(err) => Err(VfsError::from_io("import", err)),
            }
        }
    };
    bar.finish_and_clear();
    let (id, stats) = result.map_err(|err| match err.path() {
        Some(inner) if !inner.is_empty() => {
            let path = format!("{shown}: {inner}");
            err.map_path(|_| path)
        }
        _ => err.with_path(shown),
    })?;
    if let Some(tag) = tag {
        repo.tag(tag, &id).await?;
    }
    let mut text = format!("imported {id}");
    if let Some(tag) = tag {
        let _ = write!(text, " (tag {tag})");
    }
    let _ = write!(
        text,
        "\n  from {shown} ({})\n{}",
        format.name(),
        stats_text(&stats)
    );
    Ok(Report {
        text,
        json: json!({
            "snapshotId": id.to_hex(),
            "tag": tag,
            "format": format.name(),
            "stats": stats_json(&stats),
        }),
    })
}

/// `vfs snapshots`: every snapshot with its tags, oldest first.
pub async fn list(cx: &Context) -> Result<Report, Failure> {
    let repo = source::open_store(&cx.store).await?;
    let snapshots = repo.list_snapshots().await?;
    let mut tags: BTreeMap<SnapshotId, Vec<String>> = BTreeMap::new();
    for (name, id) in repo.list_tags().await? {
        tags.entry(id).or_default().push(name);
    }
    let mut rows = Vec::new();
    let mut text = String::new();
    if snapshots.is_empty() {
        text.push_str("no snapshots");
    } else {
        let _ = write!(
            text,
            "{:<12}  {:<19}  {:>8}  {:>10}  {:<24}  tags",
            "id", "taken (UTC)", "files", "size", "source"
        );
    }
    for info in &snapshots {
        let names = tags.get(&info.id).cloned().unwrap_or_default();
        let hex = info.id.to_hex();
        let _ = write!(
            text,
            "\n{:<12}  {:<19}  {:>8}  {:>10}  {:<24}  {}",
            &hex[..12],
            output::timestamp(info.time),
            info.files,
            size(info.bytes),
            info.source,
            names.join(", ")
        );
        rows.push(json!({
            "snapshotId": hex,
            "timeMs": info.time / 1_000_000,
            "source": info.source,
            "files": info.files,
            "dirs": info.dirs,
            "bytes": info.bytes,
            "tags": names,
        }));
    }
    Ok(Report {
        text,
        json: json!({ "snapshots": rows }),
    })
}

/// `vfs verify <snapshot>`: reads every blob it reaches; problems fail the command.
pub async fn verify(cx: &Context, name: &str) -> Result<Report, Failure> {
    let repo = source::open_store(&cx.store).await?;
    let (id, _) = source::snapshot(&repo, name).await?;
    let started = Instant::now();
    let bar = output::spinner(cx.bars(), "verify");
    let result = repo.verify(&id).await;
    bar.finish_and_clear();
    let report = result?;
    let elapsed = started.elapsed();
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| {
            json!({
                "blob": p.blob.to_hex(),
                "object": p.object,
                "path": p.path,
                "kind": match p.kind { ProblemKind::Missing => "missing", ProblemKind::Corrupt => "corrupt" },
                "message": p.message,
            })
        })
        .collect();
    if !report.is_ok() {
        let first = &report.problems[0];
        return Err(Failure::new(
            ErrorKind::Io,
            "verify",
            &id.to_hex(),
            &format!(
                "{} bad blob(s); first: {} needed by {}: {}",
                report.problems.len(),
                first.blob,
                first.path,
                first.message
            ),
        ));
    }
    Ok(Report {
        text: format!(
            "ok {id}\n  {} and {} read and checked in {}",
            count(report.trees, "tree"),
            count(report.chunks, "chunk"),
            duration(elapsed)
        ),
        json: json!({
            "snapshotId": id.to_hex(),
            "ok": report.is_ok(),
            "trees": report.trees,
            "chunks": report.chunks,
            "problems": problems,
        }),
    })
}

/// Parses `90`, `90s`, `15m`, `2h`, `7d` (seconds when there is no unit).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 90s, 15m, 2h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': the unit is s, m, h or d")),
    };
    count
        .checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// `vfs gc [--keep ID|TAG]... [--keep-recent AGE] [--wait AGE]`.
pub async fn gc(
    cx: &Context,
    keep: &[String],
    keep_recent: Duration,
    wait: Duration,
) -> Result<Report, Failure> {
    let repo = source::open_store(&cx.store).await?;
    // A name that matches nothing would silently keep nothing: refuse it instead.
    let mut keep_ids = Vec::new();
    for name in keep {
        keep_ids.push(source::snapshot(&repo, name).await?.0.to_hex());
    }
    let keep_refs: Vec<&str> = keep_ids.iter().map(String::as_str).collect();
    let options = GcOptions {
        keep_recent,
        wait,
        ..GcOptions::default()
    };
    let started = Instant::now();
    let bar = output::spinner(cx.bars(), "gc");
    let result = repo.gc(&keep_refs, &options).await;
    bar.finish_and_clear();
    let stats = result?;
    let elapsed = started.elapsed();
    let removed: Vec<String> = stats
        .snapshots_removed
        .iter()
        .map(|id| id.to_hex())
        .collect();
    let mut text = format!(
        "gc: kept {}, removed {}; removed {} and {}, freed {} ({} kept) in {}",
        count(stats.snapshots_kept, "snapshot"),
        removed.len(),
        count(stats.packs_removed, "pack"),
        count(stats.indexes_removed, "index object"),
        size(stats.bytes_freed),
        count(stats.packs_kept, "pack"),
        duration(elapsed)
    );
    for id in &removed {
        let _ = write!(text, "\n  removed {id}");
    }
    Ok(Report {
        text,
        json: json!({
            "snapshotsKept": stats.snapshots_kept,
            "snapshotsRemoved": removed,
            "packsRemoved": stats.packs_removed,
            "indexesRemoved": stats.indexes_removed,
            "bytesFreed": stats.bytes_freed,
            "packsKept": stats.packs_kept,
            "durationMs": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_units() {
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_age("").is_err());
        assert!(parse_age("1w").is_err());
        assert!(parse_age("h").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }

    #[test]
    fn archive_formats_follow_the_name() {
        assert_eq!(Archive::of(Path::new("a.tar"), "x").unwrap(), Archive::Tar);
        assert_eq!(
            Archive::of(Path::new("a.tar.zst"), "x").unwrap(),
            Archive::TarZst
        );
        assert_eq!(
            Archive::of(Path::new("a.tzst"), "x").unwrap(),
            Archive::TarZst
        );
        assert_eq!(
            Archive::of(Path::new("a.json"), "x").unwrap(),
            Archive::AgentOs
        );
        assert_eq!(
            Archive::of(Path::new("a.zip"), "x").unwrap_err().code(),
            "EINVAL"
        );
    }
}
