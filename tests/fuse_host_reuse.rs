//! The host driver through FUSE while its filesystem reuses inode numbers: three threads,
//! each in its own directory, create a directory, a special file and a regular file in
//! it and remove it again, 1,500 times. On ext4 (the disk under `target/`) the
//! numbers freed by one thread's removals come straight back in another thread's new
//! entries, so every name must resolve to the entry it names now, never to the one that
//! held its inode number before.
//!
//! Before vfs-fuse kept its inode numbers for the life of the mount, about 1 call in 400
//! here failed with EEXIST or ESTALE (the same workload on the driver directly passed).
#![cfg(target_os = "linux")]

#[path = "common/fuse.rs"]
mod common_fuse;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common_fuse::Served;
use rustix::fs::{FileType, Mode, CWD};
use vfs_drivers::host::HostFs;

const THREADS: usize = 3;
const ROUNDS: usize = 1_500;

/// One thread's rounds in `top`; every failed call is recorded, not panicked on, so the
/// report shows how many went wrong and how.
fn churn(top: &Path, thread: usize, failures: &Mutex<Vec<String>>) {
    let fail = |what: String| failures.lock().expect("the failure list").push(what);
    for round in 0..ROUNDS {
        let dir = top.join(format!("tmp{round}"));
        if let Err(err) = std::fs::create_dir(&dir) {
            fail(format!("thread {thread} round {round}: mkdir: {err}"));
            continue;
        }
        let kind = [FileType::Fifo, FileType::CharacterDevice, FileType::Socket][round % 3];
        let node = dir.join(format!("node{round}"));
        if let Err(err) = rustix::fs::mknodat(CWD, &node, kind, Mode::from_raw_mode(0o644), 0) {
            fail(format!(
                "thread {thread} round {round}: mknod {kind:?}: {err}"
            ));
        }
        if let Err(err) = std::fs::write(dir.join("file"), b"x") {
            fail(format!("thread {thread} round {round}: create: {err}"));
        }
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            fail(format!("thread {thread} round {round}: rm -r: {err}"));
        }
    }
}

#[test]
fn reused_host_inode_numbers_never_lead_to_another_entry() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuse-test-dirs");
    std::fs::create_dir_all(&base).expect("create target/fuse-test-dirs");
    let dir = tempfile::Builder::new()
        .prefix("host-reuse-")
        .tempdir_in(&base)
        .expect("create a directory on disk");
    let served = Served::new(
        Arc::new(HostFs::new(dir.path()).expect("serve the directory")),
        "host-reuse",
    );
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let top = served.path().join(format!("worker{thread}"));
            std::fs::create_dir(&top).expect("create a worker directory");
            let failures = &failures;
            scope.spawn(move || churn(&top, thread, failures));
        }
    });
    let failures = failures.into_inner().expect("the failure list");
    assert!(
        failures.is_empty(),
        "{} of {} calls failed; the first ones:\n{}",
        failures.len(),
        THREADS * ROUNDS * 4,
        failures[..failures.len().min(10)].join("\n")
    );
    served.unmount();
}
