//! `vfs mount` and `vfs serve --fuse-mount` end to end: the real binary serving a mount
//! table through the kernel's FUSE, used by this process with plain `std::fs`, stopped by
//! a signal (or by its stdin ending) and checked to leave nothing mounted.

#[path = "common/fuse.rs"]
mod fuse;
#[path = "common/server_client.rs"]
mod server_client;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fuse::is_mountpoint;
use server_client::Server;

/// How long starting, unmounting or exiting may take before the test fails instead of
/// hanging (a debug build booting drivers on a loaded machine is slow, never this slow).
const DEADLINE: Duration = Duration::from_secs(60);

/// The binary with a clean environment, run from `cwd`.
fn vfs_command(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vfs"));
    command.current_dir(cwd).env_remove("VFS_STORE");
    command
}

/// A `vfs mount` process, killed (and its mount detached) if a test fails half-way.
struct Mounted {
    child: Child,
    mountpoint: PathBuf,
    /// What the process printed on stdout after its first line.
    stdout_rest: mpsc::Receiver<String>,
}

impl Mounted {
    /// Starts `vfs [global...] mount <mountpoint> [args...]` and waits for the line that
    /// says the mount is live; returns it with the process.
    fn start(cwd: &Path, global: &[&str], mountpoint: &Path, args: &[&str]) -> (Mounted, String) {
        let mut child = vfs_command(cwd)
            .args(global)
            .arg("mount")
            .arg(mountpoint)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vfs mount");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, stdout_rest) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut mounted = Mounted {
            child,
            mountpoint: mountpoint.to_owned(),
            stdout_rest,
        };
        let first = match mounted.stdout_rest.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let status = mounted.child.try_wait().expect("poll vfs mount");
                let mut stderr = String::new();
                if status.is_some() {
                    if let Some(mut pipe) = mounted.child.stderr.take() {
                        let _ = pipe.read_to_string(&mut stderr);
                    }
                }
                panic!("vfs mount printed no line in {DEADLINE:?} (exit {status:?}): {stderr}");
            }
        };
        assert!(
            is_mountpoint(mountpoint),
            "vfs mount said it is live but {} is not in /proc/self/mountinfo: {first}",
            mountpoint.display()
        );
        (mounted, first)
    }

    /// Sends `signal` and waits for the exit; returns the status and stderr.
    fn stop(mut self, signal: i32) -> (ExitStatus, String) {
        let pid = i32::try_from(self.child.id()).expect("a pid fits in pid_t");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal vfs mount");
        let status = wait_with_deadline(&mut self.child);
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        let rest: Vec<String> = self.stdout_rest.try_iter().collect();
        assert!(
            rest.is_empty(),
            "vfs mount printed more than one line: {rest:?}"
        );
        (status, stderr)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // A killed server leaves a dead FUSE mount; take it away so later tests (and
        // the temporary directory's removal) do not trip on it.
        if is_mountpoint(&self.mountpoint) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory")
}

/// Runs `vfs [args...]` to completion; it must fail with exit 1 and one `vfs: CODE` line
/// on stderr. Returns stdout and stderr.
fn fails_with(cwd: &Path, args: &[&str], code: &str) -> (String, String) {
    let out = vfs_command(cwd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vfs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "vfs {args:?}: stdout {stdout} stderr {stderr}"
    );
    assert!(
        stderr.starts_with(&format!("vfs: {code}: ")) && stderr.lines().count() == 1,
        "vfs {args:?}: expected one {code} line, got {stderr:?}"
    );
    (stdout, stderr)
}

/// How many times `path` is listed as a mount point (a stacked mount shows twice).
fn times_mounted(path: &Path) -> usize {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let wanted = path.to_string_lossy();
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|mounted| *mounted == wanted)
        .count()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).expect("canonicalize")
}

/// Host directories behind a config: one the `host_dir` mount writes to, one read-only
/// base beneath an overlay; and the config naming them.
struct Fixture {
    work: tempfile::TempDir,
    host: tempfile::TempDir,
    base: tempfile::TempDir,
    mountpoint: tempfile::TempDir,
    config: PathBuf,
}

fn fixture() -> Fixture {
    let work = temp_dir("vfs-mount-work-");
    let host = temp_dir("vfs-mount-host-");
    let base = temp_dir("vfs-mount-base-");
    let mountpoint = temp_dir("vfs-mount-mnt-");
    std::fs::write(host.path().join("seed.txt"), "seeded on the host\n").unwrap();
    std::fs::write(base.path().join("base.txt"), "from the base\n").unwrap();
    let config = work.path().join("mounts.toml");
    let text = format!(
        r#"[[mounts]]
path = "/"
driver = {{ id = "memory" }}

[[mounts]]
path = "/host"
driver = {{ id = "host_dir", config = {{ hostPath = "{host}", readOnly = false }} }}

[[mounts]]
path = "/layered"
driver = {{ id = "overlay", config = {{ upper = {{ id = "memory" }}, lowers = [{{ id = "host_dir", config = {{ hostPath = "{base}", readOnly = true }} }}] }} }}
"#,
        host = host.path().display(),
        base = base.path().display(),
    );
    std::fs::write(&config, text).unwrap();
    Fixture {
        work,
        host,
        base,
        mountpoint,
        config,
    }
}

#[test]
fn mount_serves_a_config_through_the_kernel_until_sigterm() {
    let fx = fixture();
    let mnt = canonical(fx.mountpoint.path());
    let config = fx.config.to_str().unwrap();
    let (mounted, first) = Mounted::start(fx.work.path(), &["--json"], &mnt, &["--config", config]);

    let doc: Value = serde_json::from_str(&first).expect("the first line is one JSON document");
    assert_eq!(doc["mountpoint"], json!(mnt));
    assert_eq!(doc["config"], json!(config));
    let rows: Vec<(String, String)> = doc["mounts"]
        .as_array()
        .expect("mounts is an array")
        .iter()
        .map(|row| {
            (
                row["path"].as_str().unwrap().to_owned(),
                row["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("/", "memory"),
        ("/host", "host_dir"),
        ("/layered", "overlay"),
    ];
    assert_eq!(
        rows,
        expected.map(|(path, kind)| (path.to_owned(), kind.to_owned()))
    );

    // The host_dir mount: its seed reads through the kernel, a write lands on the host.
    assert_eq!(
        std::fs::read_to_string(mnt.join("host/seed.txt")).unwrap(),
        "seeded on the host\n"
    );
    std::fs::write(mnt.join("host/written.txt"), "through FUSE\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(fx.host.path().join("written.txt")).unwrap(),
        "through FUSE\n"
    );

    // The overlay: the base shows through, a change is copied up and the base kept.
    let layered = mnt.join("layered/base.txt");
    assert_eq!(
        std::fs::read_to_string(&layered).unwrap(),
        "from the base\n"
    );
    std::fs::write(&layered, "changed above\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(&layered).unwrap(),
        "changed above\n"
    );
    assert_eq!(
        std::fs::read_to_string(fx.base.path().join("base.txt")).unwrap(),
        "from the base\n"
    );

    // The memory root, with the mount points listed beside what is written there.
    std::fs::create_dir(mnt.join("scratch")).unwrap();
    std::fs::write(mnt.join("scratch/note"), "in memory").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["host", "layered", "scratch"]);

    let (status, stderr) = mounted.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "a clean stop prints nothing: {stderr}");
    assert!(!is_mountpoint(&mnt), "{} is still mounted", mnt.display());
    // What was served from memory went with the process; the host kept its file.
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
    assert!(fx.host.path().join("written.txt").is_file());
}

#[test]
fn mount_without_a_config_serves_a_memory_root_until_ctrl_c() {
    let work = temp_dir("vfs-mount-work-");
    let mountpoint = temp_dir("vfs-mount-mnt-");
    let mnt = canonical(mountpoint.path());
    let (mounted, first) = Mounted::start(work.path(), &[], &mnt, &["--attr-ttl", "0"]);
    assert_eq!(
        first,
        format!(
            "mounted a memory root at {}: / (memory); Ctrl-C or SIGTERM unmounts",
            mnt.display()
        )
    );
    std::fs::write(mnt.join("hello.txt"), "hello").unwrap();
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello.txt")).unwrap(),
        "hello"
    );

    // A second mount on the same directory is refused; the first keeps serving.
    let shown = mnt.to_str().unwrap();
    fails_with(work.path(), &["mount", shown], "EBUSY");
    assert_eq!(times_mounted(&mnt), 1);
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello.txt")).unwrap(),
        "hello"
    );

    // A process still holding a file does not keep the command from ending: the mount
    // is detached lazily.
    let held = std::fs::File::open(mnt.join("hello.txt")).unwrap();
    let (status, stderr) = mounted.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!is_mountpoint(&mnt));
    drop(held);
    // It took no snapshot, so it created no store where it ran.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn an_unmount_from_outside_ends_the_command_cleanly() {
    let work = temp_dir("vfs-mount-work-");
    let mountpoint = temp_dir("vfs-mount-mnt-");
    let mnt = canonical(mountpoint.path());
    let (mut mounted, _) = Mounted::start(work.path(), &[], &mnt, &[]);
    std::fs::write(mnt.join("a"), "a").unwrap();

    // `umount -l`: the kernel may still hold the file just written (its release reaches
    // the server after close() returns), where a plain umount would fail with EBUSY.
    let c_path = std::ffi::CString::new(mnt.to_str().unwrap()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated path for the duration of the call.
    let unmounted = unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    assert_eq!(unmounted, 0, "umount {}", mnt.display());

    let status = wait_with_deadline(&mut mounted.child);
    let mut stderr = String::new();
    if let Some(mut pipe) = mounted.child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(
        stderr,
        format!(
            "vfs: {} was unmounted from outside; the drivers are shut down\n",
            mnt.display()
        )
    );
    assert!(!is_mountpoint(&mnt));
}

#[test]
fn a_wrong_mountpoint_is_one_error_line_and_mounts_nothing() {
    let fx = fixture();
    let work = fx.work.path();
    let config = fx.config.to_str().unwrap();

    let missing = fx.mountpoint.path().join("missing");
    let (_, stderr) = fails_with(
        work,
        &["mount", missing.to_str().unwrap(), "--config", config],
        "ENOENT",
    );
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(!missing.exists());

    let (_, stderr) = fails_with(work, &["mount", config, "--config", config], "ENOTDIR");
    assert!(stderr.contains("mounts.toml"), "{stderr}");
    assert!(!is_mountpoint(&fx.config));

    // With --json the error is also one document on stdout.
    let (stdout, _) = fails_with(
        work,
        &["--json", "mount", missing.to_str().unwrap()],
        "ENOENT",
    );
    let doc: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(doc["error"]["code"], "ENOENT");
    assert_eq!(
        std::fs::read_dir(work).unwrap().count(),
        1,
        "only the config"
    );
}

#[test]
fn a_bad_config_is_one_error_line_and_mounts_nothing() {
    let fx = fixture();
    let work = fx.work.path();
    let mnt = canonical(fx.mountpoint.path());
    let shown = mnt.to_str().unwrap();

    let missing = work.join("absent.toml");
    fails_with(
        work,
        &["mount", shown, "--config", missing.to_str().unwrap()],
        "ENOENT",
    );

    let unparsable = work.join("broken.toml");
    std::fs::write(&unparsable, "[[mounts]\npath = ").unwrap();
    fails_with(
        work,
        &["mount", shown, "--config", unparsable.to_str().unwrap()],
        "EINVAL",
    );

    // The first mount boots, the second names a host directory that does not exist:
    // the boot is undone and nothing reaches the kernel.
    let half = work.join("half.toml");
    std::fs::write(
        &half,
        r#"[[mounts]]
path = "/"
driver = { id = "memory" }

[[mounts]]
path = "/data"
driver = { id = "host_dir", config = { hostPath = "/nonexistent/vfs-mount-test" } }
"#,
    )
    .unwrap();
    let (_, stderr) = fails_with(
        work,
        &["mount", shown, "--config", half.to_str().unwrap()],
        "ENOENT",
    );
    assert!(stderr.contains("mount #2"), "{stderr}");

    assert!(!is_mountpoint(&mnt));
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
}

#[test]
fn serve_fuse_mount_shows_runtime_mounts_to_the_kernel() {
    let fx = fixture();
    let mnt = canonical(fx.mountpoint.path());
    let store = fx.work.path().join("store");
    let (server, mut client) = Server::stdio(&store, &["--fuse-mount", mnt.to_str().unwrap()]);

    // The FUSE mount is made before the first request is read.
    let rows = client.ok("listMounts", json!({}));
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert!(is_mountpoint(&mnt));
    assert!(!mnt.join("data").exists());

    let host = fx.host.path().to_str().unwrap();
    client.ok(
        "mountFs",
        json!({"path": "/data", "driver": {"id": "host_dir", "config": {"hostPath": host, "readOnly": true}}}),
    );
    // mountFs returns after the kernel's cached entries for /data are dropped.
    assert_eq!(
        std::fs::read_to_string(mnt.join("data/seed.txt")).unwrap(),
        "seeded on the host\n"
    );
    let refused = std::fs::write(mnt.join("data/new.txt"), "x").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EROFS));

    // Lazy: the kernel tells the server a file was closed after close() returned, so a
    // plain unmount right after a read can still see the handle open (EBUSY).
    client.ok("unmountFs", json!({"path": "/data", "lazy": true}));
    assert!(!mnt.join("data/seed.txt").exists());
    // The mount point the table created in the memory root stays, empty.
    assert_eq!(std::fs::read_dir(mnt.join("data")).unwrap().count(), 0);

    client.close_write();
    let status = server.wait();
    assert_eq!(status.code(), Some(0));
    assert!(!is_mountpoint(&mnt), "{} is still mounted", mnt.display());
}

#[test]
fn serve_refuses_a_fuse_mountpoint_that_is_not_a_directory() {
    let fx = fixture();
    let work = fx.work.path();
    let (_, stderr) = fails_with(
        work,
        &[
            "serve",
            "--store",
            "store",
            "--fuse-mount",
            fx.config.to_str().unwrap(),
        ],
        "ENOTDIR",
    );
    assert!(stderr.contains("mounts.toml"), "{stderr}");
    // Refused before the store was opened: nothing was created.
    assert!(!work.join("store").exists());
}
