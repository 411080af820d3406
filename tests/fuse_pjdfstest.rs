//! pjdfstest (crates.io `pjdfstest`, the POSIX conformance suite) through the kernel on
//! three drivers served by vfs-fuse: memory, an overlay of memory over a host directory,
//! and the host driver. Run as root from the mount root with the configuration in
//! `tests/pjdfstest/<driver>.toml`; every case must pass, or be skipped or expected to fail
//! with a reason written in that file.
//!
//! The binary comes from `$VFS_PJDFSTEST` (scripts/test installs it).
#![cfg(target_os = "linux")]

#[path = "common/fuse.rs"]
mod common_fuse;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common_fuse::{on_path, tail, tool, Served};
use vfs_core::FileSystem;
use vfs_drivers::host::HostFs;
use vfs_drivers::memory::MemoryFs;
use vfs_drivers::overlay::OverlayFs;

#[test]
fn pjdfstest_passes_on_the_memory_driver() {
    pjdfstest_on("memory", Arc::new(MemoryFs::new()));
}

#[test]
fn pjdfstest_passes_on_an_overlay_of_memory_over_a_host_directory() {
    let lower = disk_dir("overlay-lower-");
    // A lower with content, so the cases run in a directory the overlay merges.
    std::fs::create_dir_all(lower.path().join("base/etc")).expect("populate the lower");
    std::fs::write(lower.path().join("base/etc/hosts"), "127.0.0.1 localhost\n")
        .expect("populate the lower");
    let lower_fs = HostFs::new(lower.path()).expect("serve the lower directory");
    let overlay = OverlayFs::new(Arc::new(MemoryFs::new()), vec![Arc::new(lower_fs)])
        .expect("build the overlay");
    pjdfstest_on("overlay", Arc::new(overlay));
    drop(lower);
}

#[test]
fn pjdfstest_passes_on_the_host_driver() {
    let dir = disk_dir("host-");
    pjdfstest_on(
        "host",
        Arc::new(HostFs::new(dir.path()).expect("serve the directory")),
    );
    drop(dir);
}

/// A directory on the disk (not tmpfs), so the host-backed drivers run over a real
/// block filesystem.
fn disk_dir(prefix: &str) -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuse-test-dirs");
    std::fs::create_dir_all(&base).expect("create target/fuse-test-dirs");
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .expect("create a directory on disk");
    // The unprivileged users pjdfstest switches to must be able to reach the tree.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the directory to other users");
    dir
}

/// How one case ended, as pjdfstest prints it after the case's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
    FailedAsExpected,
    PassedUnexpectedly,
}

/// One pjdfstest run: each case's outcome, the message under each failure, and the
/// whole output for the failure report.
struct Run {
    outcomes: BTreeMap<String, Outcome>,
    messages: BTreeMap<String, String>,
    output: String,
}

impl Run {
    fn count(&self, outcome: Outcome) -> usize {
        self.outcomes.values().filter(|o| **o == outcome).count()
    }
}

/// Reads pjdfstest's report: a line per case (`<name> <outcome>`), indented lines under
/// it (reasons, panic messages), and a closing `Summary:` line whose total must agree.
fn parse(output: &str) -> Run {
    let mut run = Run {
        outcomes: BTreeMap::new(),
        messages: BTreeMap::new(),
        output: output.to_owned(),
    };
    let mut last_case: Option<String> = None;
    let mut summary_total = None;
    for line in output.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(case) = &last_case {
                let message = run.messages.entry(case.clone()).or_default();
                if message.lines().count() < 3 && !line.trim().is_empty() {
                    message.push_str(line.trim());
                    message.push('\n');
                }
            }
            continue;
        }
        if let Some(summary) = line.strip_prefix("Summary:") {
            summary_total = summary
                .split(',')
                .find_map(|part| part.trim().strip_suffix(" total"))
                .and_then(|n| n.trim().parse::<usize>().ok());
            continue;
        }
        let Some((name, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let outcome = match rest.trim() {
            "ok" => Outcome::Passed,
            "FAILED" => Outcome::Failed,
            "skipped" => Outcome::Skipped,
            "failed as expected" => Outcome::FailedAsExpected,
            "PASSED UNEXPECTEDLY" => Outcome::PassedUnexpectedly,
            _ => continue,
        };
        run.outcomes.insert(name.to_owned(), outcome);
        last_case = Some(name.to_owned());
    }
    let total = summary_total.unwrap_or_else(|| {
        panic!(
            "pjdfstest printed no summary; its output ends with:\n{}",
            tail(output.as_bytes(), 40)
        )
    });
    assert_eq!(
        total,
        run.outcomes.len(),
        "pjdfstest's summary counts {total} cases, its case lines {}",
        run.outcomes.len()
    );
    run
}

/// The configuration file of a driver, its `[reasons]` table and its expected failures.
struct Config {
    path: PathBuf,
    table: toml::Table,
    reasons: BTreeMap<String, String>,
}

impl Config {
    fn load(driver: &str) -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pjdfstest")
            .join(format!("{driver}.toml"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
        let table: toml::Table = text
            .parse()
            .unwrap_or_else(|err| panic!("parse {}: {err}", path.display()));
        let reasons = table
            .get("reasons")
            .and_then(|reasons| reasons.as_table())
            .map(|reasons| {
                reasons
                    .iter()
                    .map(|(case, why)| {
                        let why = why.as_str().unwrap_or_default().trim().to_owned();
                        assert!(!why.is_empty(), "{}: {case} has no reason", path.display());
                        (case.clone(), why)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Config {
            path,
            table,
            reasons,
        }
    }

    fn expected_failures(&self) -> Vec<String> {
        self.table
            .get("settings")
            .and_then(|settings| settings.get("expected_failures"))
            .and_then(|list| list.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|case| case.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The same configuration with remounts forbidden, written beside `dir`: the main
    /// run skips the EROFS cases, which run on their own afterwards.
    fn without_remounts(&self, dir: &Path) -> PathBuf {
        let mut table = self.table.clone();
        if let Some(settings) = table.get_mut("settings").and_then(|s| s.as_table_mut()) {
            settings.insert("allow_remount".into(), toml::Value::Boolean(false));
        }
        let path = dir.join("no-remount.toml");
        std::fs::write(&path, table.to_string()).expect("write the derived configuration");
        path
    }
}

/// A directory holding a `mount` that calls the real one with `-i`. pjdfstest's EROFS
/// cases run `mount -o remount,ro <mountpoint>`; for a `fuse` mount, mount(8) hands that
/// to the mount.fuse helper, which would try to start a filesystem named after the
/// mount's source. With `-i` it calls mount(2), which remounts the superblock read-only.
fn remount_shim(dir: &Path) -> PathBuf {
    let real = on_path("mount").expect("mount(8) on PATH, for pjdfstest's EROFS cases");
    let shim_dir = dir.join("bin");
    std::fs::create_dir_all(&shim_dir).expect("create the shim directory");
    let shim = shim_dir.join("mount");
    std::fs::write(
        &shim,
        format!("#!/bin/sh\nexec {} -i \"$@\"\n", real.display()),
    )
    .expect("write the mount shim");
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755))
        .expect("make the mount shim executable");
    shim_dir
}

fn pjdfstest(
    mountpoint: &Path,
    config: &Path,
    secondary: &Path,
    shim: &Path,
    patterns: &[&str],
) -> Run {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut search = vec![shim.to_path_buf()];
    search.extend(std::env::split_paths(&path));
    let output = Command::new(tool("VFS_PJDFSTEST", "pjdfstest"))
        .arg("-c")
        .arg(config)
        .arg("-p")
        .arg(mountpoint)
        .arg("-s")
        .arg(secondary)
        .args(patterns)
        .current_dir(mountpoint)
        .env("PATH", std::env::join_paths(search).expect("a PATH"))
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("start pjdfstest");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let run = parse(&stdout);
    // pjdfstest exits non-zero exactly when a case failed, which the caller reports in
    // detail; any other non-zero exit is pjdfstest itself failing.
    let failed = run.count(Outcome::Failed) + run.count(Outcome::PassedUnexpectedly);
    assert!(
        output.status.success() || failed > 0,
        "pjdfstest failed ({}) with no failed case:\n{}\n{stderr}",
        output.status,
        tail(stdout.as_bytes(), 40)
    );
    run
}

fn pjdfstest_on(driver: &str, fs: Arc<dyn FileSystem>) {
    let config = Config::load(driver);
    let work = tempfile::Builder::new()
        .prefix("vfs-pjdfstest-")
        .tempdir()
        .expect("create a work directory");
    // On tmpfs, another filesystem than the mount: the EXDEV cases link and rename into it.
    let secondary = tempfile::Builder::new()
        .prefix("vfs-pjdfstest-secondary-")
        .tempdir_in("/dev/shm")
        .expect("create the secondary directory on /dev/shm");
    std::fs::set_permissions(secondary.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the secondary directory to other users");
    let shim = remount_shim(work.path());

    let served = Served::new(fs, &format!("pjdfstest-{driver}"));
    let main_config = config.without_remounts(work.path());
    let mut run = pjdfstest(served.path(), &main_config, secondary.path(), &shim, &[]);
    let erofs = pjdfstest(
        served.path(),
        &config.path,
        secondary.path(),
        &shim,
        &["erofs"],
    );
    assert!(
        !erofs.outcomes.is_empty(),
        "pjdfstest ran no EROFS case; its output:\n{}",
        erofs.output
    );
    for (case, outcome) in erofs.outcomes {
        let before = run.outcomes.insert(case.clone(), outcome);
        assert_eq!(
            before,
            Some(Outcome::Skipped),
            "{case} ran in the main run although remounts were off"
        );
        // The main run's message for the case is why it was skipped there.
        run.messages.remove(&case);
        if let Some(message) = erofs.messages.get(&case) {
            run.messages.insert(case, message.clone());
        }
    }
    served.unmount();

    let passed = run.count(Outcome::Passed);
    let failed = run.count(Outcome::Failed) + run.count(Outcome::PassedUnexpectedly);
    let skipped = run.count(Outcome::Skipped);
    let expected = run.count(Outcome::FailedAsExpected);
    println!(
        "pjdfstest on {driver}: {passed} passed, {failed} failed, {skipped} skipped, \
         {expected} expected failures, {} cases",
        run.outcomes.len()
    );

    let failures: Vec<String> = run
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed | Outcome::PassedUnexpectedly))
        .map(|(case, outcome)| {
            let message = run.messages.get(case).map(String::as_str).unwrap_or("");
            format!(
                "{case} ({outcome:?}): {}",
                message.trim().replace('\n', " | ")
            )
        })
        .collect();
    let unexplained: Vec<&String> = run
        .outcomes
        .iter()
        .filter(|(case, o)| **o == Outcome::Skipped && !config.reasons.contains_key(*case))
        .map(|(case, _)| case)
        .collect();
    let expected_failures = config.expected_failures();
    let stale: Vec<&String> = config
        .reasons
        .keys()
        .filter(|case| {
            !matches!(
                run.outcomes.get(*case),
                Some(Outcome::Skipped | Outcome::FailedAsExpected)
            )
        })
        .collect();
    let without_reason: Vec<&String> = expected_failures
        .iter()
        .filter(|case| !config.reasons.contains_key(*case))
        .collect();
    assert!(
        failures.is_empty() && unexplained.is_empty() && stale.is_empty() && without_reason.is_empty(),
        "pjdfstest on {driver}: {} failed, {} skipped without a reason in {}, \
         {} reasons for cases that ran, {} expected failures without a reason\n\
         failed:\n  {}\nskipped without a reason: {unexplained:?}\n\
         reasons for cases that ran: {stale:?}\nexpected failures without a reason: {without_reason:?}",
        failures.len(),
        unexplained.len(),
        config.path.display(),
        stale.len(),
        without_reason.len(),
        failures.join("\n  "),
    );
}
