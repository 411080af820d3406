//! `vfs demo`: the whole story on embedded defaults, through the actions a runtime uses.
//!
//! Boot a memory root; after boot mount a host directory and an overlay (memory upper over
//! that directory); write through both; snapshot the merged root; change one file and
//! snapshot again; diff the two; export a `.tar.zst`; unmount. Snapshots are normalized
//! (owners and times recorded as 0) and the seed files are rewritten each run, so a rerun
//! produces the same ids and its first snapshot stores nothing new.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;
use vfs_layer::actions::{
    Action, ActionOutput, ArchiveFormat, MountsConfig, SnapshotSummary, Vfs, VfsEvent,
};
use vfs_layer::core::{ErrorKind, MountInfo, VfsError, VfsPath};
use vfs_layer::snapshot::Repository;

use super::output::{count, duration, size, Failure, Report};
use super::store::Context;

/// The runtime's boot config: what a guest starts with before anything is attached.
const BOOT: &str = r#"
[[mounts]]
path = "/"
driver = { id = "memory" }
"#;

/// Where the demo keeps its host directory and export, beside the store.
const SCRATCH: &str = ".vfs-demo";

/// The seed files of the host directory: a small project and a 3 MiB data file.
fn seed_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "README.md",
            b"# workspace\n\nA host directory mounted into the guest after boot.\n".to_vec(),
        ),
        (
            "src/main.rs",
            b"fn main() {\n    println!(\"hello from the host\");\n}\n".to_vec(),
        ),
        (
            "src/lib.rs",
            b"pub fn answer() -> u32 {\n    41\n}\n".to_vec(),
        ),
        ("data/events.log", event_log(3 << 20)),
    ]
}

/// A deterministic log of `len` bytes: compressible like real logs, the same on every run.
fn event_log(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 80);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = 0u64;
    while out.len() < len {
        // xorshift64: cheap, seeded, reproducible.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let _ = writeln!(
            Bytes(&mut out),
            "{:08} event=write path=/workspace/f{:04} bytes={} latency_us={}",
            line,
            state % 9973,
            state % 65_536,
            (state >> 20) % 5000
        );
        line += 1;
    }
    out.truncate(len);
    out
}

/// `fmt::Write` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn host_error(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Failure {
    let shown = path.display().to_string();
    move |err| VfsError::from_io(operation, err).with_path(shown).into()
}

/// Recreates the host directory with its seed files, so every run starts the same.
fn seed_host_dir(scratch: &Path) -> Result<(PathBuf, u64), Failure> {
    match std::fs::remove_dir_all(scratch) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(host_error("reset demo directory", scratch)(err)),
    }
    let host = scratch.join("host");
    let mut bytes = 0;
    for (name, content) in seed_files() {
        let path = host.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(host_error("seed", parent))?;
        }
        std::fs::write(&path, &content).map_err(host_error("seed", &path))?;
        bytes += content.len() as u64;
    }
    let host = std::fs::canonicalize(&host).map_err(host_error("seed", &host))?;
    Ok((host, bytes))
}

fn path(text: &str) -> Result<VfsPath, Failure> {
    Ok(VfsPath::new(text)?)
}

/// Runs one action given as a host would send it: a method name and JSON params.
async fn call(vfs: &Vfs, method: &str, params: Value) -> Result<ActionOutput, Failure> {
    let action = Action::from_rpc(method, Some(params))?;
    Ok(vfs.dispatch(action).await?)
}

fn mount_row(output: ActionOutput) -> Result<MountInfo, Failure> {
    match output {
        ActionOutput::Mount(info) => Ok(info),
        other => Err(unexpected("a mount row", &other)),
    }
}

fn unexpected(wanted: &str, got: &ActionOutput) -> Failure {
    Failure::new(
        ErrorKind::Io,
        "demo",
        "",
        &format!("the action returned {got:?} instead of {wanted}"),
    )
}

/// The first 12 digits of a snapshot id, as `vfs snapshots` shows it.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What a rerun says of a snapshot whose every blob the store already held.
const ALREADY_STORED: &str =
    "nothing new: an earlier run stored this exact tree (same content, same id)";

/// Whether a snapshot added nothing to the store: an earlier run took the same tree.
fn stored_before(summary: &SnapshotSummary) -> bool {
    summary.stats.bytes_new == 0 && summary.stats.chunks_new == 0
}

/// What a snapshot held, how long it took (timed here: the action's own figure is in
/// whole milliseconds), and what it added to the store.
fn snapshot_line(summary: &SnapshotSummary, took: Duration) -> String {
    let stats = &summary.stats;
    let mut line = format!(
        "{}  {}, {}, {} in {}\n      stored {} new: {} new, {} reused",
        short(&summary.snapshot_id),
        count(stats.files, "file"),
        count(stats.dirs, "dir"),
        size(stats.bytes_total),
        duration(took),
        size(stats.bytes_new),
        count(stats.chunks_new, "chunk"),
        stats.chunks_reused,
    );
    if stats.files_cached > 0 {
        let _ = write!(
            line,
            "\n      {} unchanged since the last snapshot only stat'ed, not read",
            count(stats.files_cached, "file")
        );
    }
    line
}

fn event_line(event: &VfsEvent) -> Option<String> {
    match event {
        VfsEvent::Mounted { mount } => Some(format!("mounted {} ({})", mount.path, mount.kind)),
        VfsEvent::Unmounted { mount, .. } => {
            Some(format!("unmounted {} ({})", mount.path, mount.kind))
        }
        VfsEvent::SnapshotFinished {
            snapshot_id, tag, ..
        } => Some(format!(
            "snapshotFinished {}{}",
            short(snapshot_id),
            tag.as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        )),
        VfsEvent::DriverError { code, message, .. } => {
            Some(format!("driverError {code}: {message}"))
        }
        _ => None,
    }
}

/// Everything the event stream delivered so far, as one line per kind of event.
fn drain(events: &mut broadcast::Receiver<VfsEvent>) -> (Vec<String>, u64) {
    let mut lines = Vec::new();
    let mut progress = 0;
    loop {
        match events.try_recv() {
            Ok(event) => match event_line(&event) {
                Some(line) => lines.push(line),
                None => progress += 1,
            },
            // Only progress events come in numbers that could overflow the backlog.
            Err(broadcast::error::TryRecvError::Lagged(missed)) => progress += missed,
            Err(_) => break,
        }
    }
    (lines, progress)
}

/// `vfs demo`.
pub async fn run(cx: &Context) -> Result<Report, Failure> {
    let started = Instant::now();
    let mut text = String::new();
    let store_existed = matches!(
        vfs_layer::snapshot::StoreUrl::parse(&cx.store)?,
        vfs_layer::snapshot::StoreUrl::Local(ref dir) if dir.join("config").is_file()
    );
    let repo = Repository::open_url(&cx.store).await?;
    let snapshots_before = repo.list_snapshots().await?.len();
    let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repo));
    let mut events = vfs.subscribe();
    let _ = writeln!(
        text,
        "vfs demo: store {} ({}), scratch ./{SCRATCH}",
        cx.store,
        if store_existed || snapshots_before > 0 {
            format!("{snapshots_before} snapshots already in it")
        } else {
            "new".to_owned()
        }
    );

    // 1. Boot: the guest's root is memory.
    let step = Instant::now();
    vfs.boot(&MountsConfig::from_toml_str(BOOT)?).await?;
    vfs.mkdir(&path("/etc")?, true, 0o755).await?;
    vfs.write_file(&path("/etc/hostname")?, "guest\n".into())
        .await?;
    vfs.mkdir(&path("/home/agent")?, true, 0o755).await?;
    vfs.write_file(&path("/home/agent/notes.md")?, "- boot\n".into())
        .await?;
    let _ = writeln!(
        text,
        "\n1. boot         memory root at /, wrote /etc/hostname and /home/agent/notes.md ({})",
        duration(step.elapsed())
    );

    // 2. After boot: a host directory and an overlay over it, mounted as a host sends it.
    let step = Instant::now();
    let scratch = std::env::current_dir()
        .map_err(|err| VfsError::from_io("demo", err))?
        .join(SCRATCH);
    let (host, seeded) = seed_host_dir(&scratch)?;
    let workspace = mount_row(
        call(
            &vfs,
            "mountFs",
            json!({"path": "/workspace",
                   "driver": {"id": "host_dir", "config": {"hostPath": host, "readOnly": false}}}),
        )
        .await?,
    )?;
    let app = mount_row(
        call(
            &vfs,
            "mountFs",
            json!({"path": "/app", "driver": {"id": "overlay", "config": {
                "upper": {"id": "memory", "config": {}},
                "lowers": [{"id": "host_dir", "config": {"hostPath": host, "readOnly": true}}],
                // Its lower is /workspace's directory, written beside the overlay.
                "lowersMayChange": true}}}),
        )
        .await?,
    )?;
    let _ = writeln!(
        text,
        "2. after boot   mountFs {} -> host_dir {} ({} files, {})\n                \
         mountFs {} -> overlay: memory upper over that directory ({})",
        workspace.path,
        host.display(),
        seed_files().len(),
        size(seeded),
        app.path,
        duration(step.elapsed())
    );

    // 3. Write through both mounts.
    let step = Instant::now();
    vfs.write_file(
        &path("/workspace/NOTES.md")?,
        "written by the guest\n".into(),
    )
    .await?;
    vfs.write_file(
        &path("/app/src/main.rs")?,
        "fn main() {\n    println!(\"patched in the overlay\");\n}\n".into(),
    )
    .await?;
    let on_host = host.join("NOTES.md").is_file();
    let host_main = std::fs::read(host.join("src/main.rs"))
        .map_err(host_error("read", &host.join("src/main.rs")))?;
    let host_untouched = host_main == seed_files()[1].1;
    let _ = writeln!(
        text,
        "3. write        /workspace/NOTES.md -> {} on the host\n                \
         /app/src/main.rs -> copied up into the overlay's memory; host copy {} ({})",
        if on_host { "landed" } else { "MISSING" },
        if host_untouched {
            "unchanged"
        } else {
            "CHANGED"
        },
        duration(step.elapsed())
    );

    // 4. Snapshot the merged root: every mount in one content-addressed tree.
    let step = Instant::now();
    let first = vfs
        .snapshot_root_filesystem(&VfsPath::root(), Some("demo-first"), true)
        .await?;
    let first_took = step.elapsed();
    let rerun = stored_before(&first);
    let _ = writeln!(
        text,
        "4. snapshot     {}\n      {}",
        snapshot_line(&first, first_took),
        if rerun {
            ALREADY_STORED
        } else {
            "the log shows twice (/workspace and /app) but its chunks are stored once"
        }
    );

    // 5. Change one small file, snapshot again: only it and its parent trees are new.
    // The edit goes through the overlay, so the host copy stays as it was (a copy-up);
    // edits through /workspace would show in /app too (lowersMayChange above).
    let changed = "pub fn answer() -> u32 {\n    42\n}\n";
    vfs.write_file(&path("/app/src/lib.rs")?, changed.into())
        .await?;
    let step = Instant::now();
    let second = vfs
        .snapshot_root_filesystem(&VfsPath::root(), Some("demo-second"), true)
        .await?;
    let second_took = step.elapsed();
    let _ = writeln!(
        text,
        "5. change       /app/src/lib.rs ({} bytes), snapshot again\n   snapshot     {}\n      {}",
        changed.len(),
        snapshot_line(&second, second_took),
        if stored_before(&second) {
            ALREADY_STORED
        } else {
            "only the changed file's chunk and the trees above it are new"
        }
    );

    // 6. What changed between the two.
    let step = Instant::now();
    let diff = vfs
        .diff_snapshots(
            &first.snapshot_id,
            Some(&second.snapshot_id),
            &VfsPath::root(),
        )
        .await?;
    let _ = writeln!(
        text,
        "6. diff         {} ({})",
        match diff.changes.len() {
            1 => "1 change".to_owned(),
            n => format!("{n} changes"),
        },
        duration(step.elapsed())
    );
    for change in &diff.changes {
        let _ = writeln!(text, "      {:<16} {}", change.kind, change.path);
    }

    // 7. Export the second snapshot as a compressed tar.
    let step = Instant::now();
    let archive = scratch.join("root.tar.zst");
    let export = vfs
        .export_snapshot(&second.snapshot_id, ArchiveFormat::TarZst, Some(&archive))
        .await?;
    let _ = writeln!(
        text,
        "7. export       ./{SCRATCH}/root.tar.zst, {} for {} of files ({})",
        size(export.size),
        size(second.stats.bytes_total),
        duration(step.elapsed())
    );

    // 8. Detach what was attached after boot.
    let step = Instant::now();
    call(&vfs, "unmountFs", json!({"path": "/app"})).await?;
    call(&vfs, "unmountFs", json!({"path": "/workspace"})).await?;
    let left: Vec<String> = vfs
        .list_mounts()
        .iter()
        .map(|m| format!("{} ({})", m.path, m.kind))
        .collect();
    let _ = writeln!(
        text,
        "8. unmount      /app, /workspace; mounts left: {} ({})",
        left.join(", "),
        duration(step.elapsed())
    );

    let (event_lines, progress_events) = drain(&mut events);
    let _ = writeln!(
        text,
        "\nevents: {}; and {progress_events} snapshotProgress",
        event_lines.join(", ")
    );
    let _ = write!(
        text,
        "done in {}. Next: vfs snapshots | vfs diff demo-first demo-second | vfs restore demo-second /tmp/restored",
        duration(started.elapsed())
    );

    Ok(Report {
        text,
        json: json!({
            "store": cx.store,
            "hostDir": host.display().to_string(),
            "first": first,
            "firstWasStoredBefore": rerun,
            "second": second,
            "diff": diff,
            "export": {"hostPath": archive.display().to_string(), "size": export.size},
            "mountsLeft": vfs.list_mounts(),
            "events": event_lines,
            "durationMs": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }),
    })
}
