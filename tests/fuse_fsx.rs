//! fsx (crates.io `fsx`, the File System eXerciser) through the kernel on the memory
//! driver and on an overlay of memory over a host directory, served by vfs-fuse: a seeded
//! sequence of reads, writes, mmap reads and writes, truncates, fallocates, punched
//! holes, copy_file_range, sendfile, fsyncs and reopens of one file, every read checked
//! against fsx's model of the file.
//!
//! 10,000 operations by default; `VFS_FSX_OPS=N` runs N. The binary comes from
//! `$VFS_FSX` (scripts/test installs it).
#![cfg(target_os = "linux")]

#[path = "common/fuse.rs"]
mod common_fuse;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common_fuse::{tail, tool, Served};
use vfs_core::FileSystem;
use vfs_drivers::host::HostFs;
use vfs_drivers::memory::MemoryFs;
use vfs_drivers::overlay::OverlayFs;

/// Every operation fsx 0.3 knows, hole punching included. Files up to 4 MiB and
/// operations up to 256 KiB, so requests span many pages of the kernel's page cache and
/// several FUSE requests.
const FSX_CONFIG: &str = r#"
flen = 4194304

[opsize]
max = 262144

[weights]
close_open = 2
invalidate = 1
mapread = 5
mapwrite = 5
read = 10
write = 10
truncate = 3
fsync = 1
fdatasync = 1
posix_fallocate = 2
sendfile = 1
posix_fadvise = 1
copy_file_range = 2
punch_hole = 1
"#;

/// The same seed on every run, so a failure reproduces with the same operations.
const SEED: u64 = 20_261_126;

fn operations() -> u64 {
    std::env::var("VFS_FSX_OPS")
        .ok()
        .and_then(|ops| ops.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn fsx_passes_on_the_memory_driver() {
    fsx_on("memory", Arc::new(MemoryFs::new()));
}

#[test]
fn fsx_passes_on_an_overlay_of_memory_over_a_host_directory() {
    let lower = tempfile::Builder::new()
        .prefix("vfs-fsx-lower-")
        .tempdir_in(disk_base())
        .expect("create the lower directory");
    // fsx starts from an existing file here, so its first write copies it up.
    std::fs::write(lower.path().join("fsx.data"), vec![0x5a; 300_000]).expect("seed the lower");
    let lower_fs = HostFs::new(lower.path()).expect("serve the lower directory");
    let overlay = OverlayFs::new(Arc::new(MemoryFs::new()), vec![Arc::new(lower_fs)])
        .expect("build the overlay");
    fsx_on("overlay", Arc::new(overlay));
    drop(lower);
}

/// A directory on the disk, so the overlay's lower is a real block filesystem.
fn disk_base() -> std::path::PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuse-test-dirs");
    std::fs::create_dir_all(&base).expect("create target/fuse-test-dirs");
    base
}

fn fsx_on(driver: &str, fs: Arc<dyn FileSystem>) {
    let work = tempfile::Builder::new()
        .prefix("vfs-fsx-")
        .tempdir()
        .expect("create a work directory");
    let config = work.path().join("fsx.toml");
    std::fs::write(&config, FSX_CONFIG).expect("write the fsx configuration");
    let ops = operations();

    let served = Served::new(fs, &format!("fsx-{driver}"));
    let output = Command::new(tool("VFS_FSX", "fsx"))
        .arg("-f")
        .arg(&config)
        .arg("-N")
        .arg(ops.to_string())
        .arg("-S")
        .arg(SEED.to_string())
        .arg("-P")
        .arg(work.path())
        .arg(served.path().join("fsx.data"))
        .output()
        .expect("start fsx");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stdout.contains("All operations completed A-OK!") {
        // fsx dumps its last operations to stderr, and leaves its model of the file as
        // fsx.data.fsxgood in the work directory (kept for inspection).
        let work = work.keep();
        panic!(
            "fsx on {driver} failed ({}), seed {SEED}, {ops} operations; fsx.data.fsxgood in {}:\n\
             {}\n{}",
            output.status,
            work.display(),
            tail(stdout.as_bytes(), 20),
            tail(stderr.as_bytes(), 60),
        );
    }
    served.unmount();
    println!("fsx on {driver}: {ops} operations, seed {SEED}: all verified");
}
