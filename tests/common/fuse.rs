//! What the FUSE tests share: a filesystem served at a fresh mount point through the
//! kernel, and the external programs (pjdfstest, fsx, coreutils, git) they drive there.
//!
//! The tests need root, `/dev/fuse` and the fuse3 tools; `scripts/test` checks and installs
//! what it can. A missing tool fails the test with what to do, never skips it.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use vfs_core::{FileSystem, MountTable};
use vfs_fuse::{FuseMount, FuseOptions};

/// A filesystem mounted through the kernel at a fresh temporary directory, served from
/// its own multi-threaded runtime; unmounted (and checked to be) on drop.
pub struct Served {
    mount: Option<FuseMount>,
    mountpoint: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

/// Options the tests mount with: the kernel checks permissions (pjdfstest switches to
/// unprivileged users and expects EACCES from mode bits), and other users may enter.
pub fn test_options(fs_name: &str) -> FuseOptions {
    FuseOptions {
        allow_other: true,
        default_permissions: true,
        fs_name: fs_name.to_owned(),
        ..FuseOptions::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the runtime serving the mount")
}

fn fresh_mountpoint() -> tempfile::TempDir {
    preflight();
    tempfile::Builder::new()
        .prefix("vfs-fuse-mnt-")
        .tempdir()
        .expect("create a mount point")
}

impl Served {
    /// Serves `fs` with [`test_options`].
    pub fn new(fs: Arc<dyn FileSystem>, fs_name: &str) -> Served {
        Served::with_options(fs, test_options(fs_name))
    }

    /// Serves `fs` with the options given.
    pub fn with_options(fs: Arc<dyn FileSystem>, options: FuseOptions) -> Served {
        let mountpoint = fresh_mountpoint();
        let runtime = runtime();
        let mount = {
            let _inside = runtime.enter();
            vfs_fuse::mount(fs, mountpoint.path(), options)
                .unwrap_or_else(|err| panic!("mount at {}: {err}", mountpoint.path().display()))
        };
        Served {
            mount: Some(mount),
            mountpoint,
            runtime,
        }
    }

    /// Serves a whole mount table, whose sub-mounts may change while it is served.
    pub fn table(table: Arc<MountTable>, fs_name: &str) -> Served {
        let mountpoint = fresh_mountpoint();
        let runtime = runtime();
        let mount = {
            let _inside = runtime.enter();
            vfs_fuse::mount_table(table, mountpoint.path(), test_options(fs_name))
                .unwrap_or_else(|err| panic!("mount at {}: {err}", mountpoint.path().display()))
        };
        Served {
            mount: Some(mount),
            mountpoint,
            runtime,
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// The runtime serving the mount, to call the filesystem directly beside the kernel.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Unmounts now, failing the test if the unmount fails.
    pub fn unmount(mut self) {
        self.unmount_now();
    }

    fn unmount_now(&mut self) {
        if let Some(mount) = self.mount.take() {
            let _inside = self.runtime.enter();
            mount
                .unmount()
                .unwrap_or_else(|err| panic!("unmount {}: {err}", self.path().display()));
            assert!(
                !is_mountpoint(self.path()),
                "{} is still mounted after unmount",
                self.path().display()
            );
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Unmount without a second panic, so the first one's message is the one shown.
            if let Some(mount) = self.mount.take() {
                let _inside = self.runtime.enter();
                let _ = mount.unmount();
            }
            return;
        }
        self.unmount_now();
    }
}

/// Whether `path` is a mount point, as `/proc/self/mountinfo` lists them.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mounted| mounted == wanted)
}

/// What every FUSE test needs before it mounts, checked once with a message that says
/// how to get it.
fn preflight() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the FUSE tests mount filesystems and switch users: run them as root (scripts/test)"
    );
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: load the fuse module (modprobe fuse) or install fuse3 (scripts/test)"
    );
}

/// The external program a test drives: `$env_var` if set, else the copy `scripts/test`
/// installs under `target/fuse-tools/bin`, else `name` on `PATH`. A missing program fails
/// the test: a FUSE test that silently did not run would read as a pass.
pub fn tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} is not a file; point it at the {name} binary",
            path.display()
        );
        return path;
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/fuse-tools/bin")
        .join(name);
    if installed.is_file() {
        return installed;
    }
    if let Some(found) = on_path(name) {
        return found;
    }
    panic!(
        "{name} not found: run scripts/test (it installs {name} under target/fuse-tools), \
         or set {env_var} to the binary"
    );
}

/// `name` found on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a command to completion and fails the test, with its output, if it did not
/// exit 0.
#[track_caller]
pub fn run_ok(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot start {shown}: {err}"));
    assert!(
        output.status.success(),
        "{shown} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        tail(&output.stdout, 60),
        tail(&output.stderr, 60)
    );
    output
}

/// The last `lines` lines of a program's output, for failure messages.
pub fn tail(output: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A command for `program` with arguments, for [`run_ok`].
pub fn command<I, S>(program: impl AsRef<OsStr>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    command
}
