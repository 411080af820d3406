//! Differential test: drivers against Linux on tmpfs.
//!
//! Seeded random sequences of filesystem operations run both on a fresh filesystem under
//! test (through the `vfs_core::FileSystem` trait) and on a fresh
//! directory under `/dev/shm` (through `std::fs`, `std::os::unix::fs` and rustix). After every
//! operation the outcomes are compared (the value, or the errno: `VfsError::errno()` against
//! `io::Error::raw_os_error()`); after the sequence, the whole tree: names, kinds, contents,
//! symlink targets, permission bits, link counts and file sizes. Timestamps, directory sizes,
//! inode numbers and ownership are not compared.
//!
//! Each operation is drawn against the current tmpfs tree (mostly existing entries, names
//! in existing directories, or a small pool of paths up to three levels deep, now and then
//! with a trailing slash), then kept as plain data, so a sequence replays as it is. The
//! operations: whole-file calls, `open` with any flags, handles kept open across later
//! operations, directories, removal, rename, symlinks (relative targets only: an absolute
//! one, or one with `..`, would leave the test directory on tmpfs), hard links, chmod,
//! chown, stats, listings, realpath and long symlink chains; `ops.rs` lists them.
//!
//! Most subjects start empty. A pre-filled one (the overlay, over lowers holding files,
//! directories, symlinks, whiteouts and opaque directories) starts from layers drawn from
//! the sequence's seed, and the tmpfs directory from their merged view, both built from
//! the one description in `prefill.rs`. A subject may also report link count 1 for a
//! directory ("unknown", as overlayfs does for merged directories): with `dir_nlink`
//! false, those counts are not compared.
//!
//! On a divergence the sequence is shrunk to a minimal one that still diverges and the test
//! panics with the seed, that sequence (one readable call per line) and the first divergence.
//! A panic in the driver counts as a divergence.
//!
//! It runs only as root: the memory driver has no permission checks and acts as root, so
//! tmpfs is the reference only for a caller that bypasses them. The umask is set to 0, so
//! created modes are the ones asked for (this file is its own test binary).
//!
//! - `VFS_DIFF_CASES=N` runs N sequences (default 200, well under a second).
//! - `VFS_DIFF_SEED=S` sets the base seed; sequence `i` uses seed `S + i`.
//! - `VFS_DIFF_KEEP_GOING=1` does not stop at the first failing sequence: it shrinks and
//!   prints every one, groups them by kind, then fails.
//! - `VFS_DIFF_SKIP=create_dir_all,rename` leaves those kinds of operation out (to look
//!   past a known divergence; the names are `Op::name`'s).
//! - `cargo test --test differential -- --nocapture` shows how often each kind of
//!   operation succeeded and failed.

#[path = "differential/driver.rs"]
mod driver;
#[path = "differential/host.rs"]
mod host;
#[path = "differential/ops.rs"]
mod ops;
#[path = "differential/outcome.rs"]
mod outcome;
#[path = "differential/prefill.rs"]
mod prefill;
#[path = "differential/runner.rs"]
mod runner;

use std::sync::Arc;

use runner::{memory_fs, run_cases, Config, Made, Subject};
use vfs_core::{FileSystem, MountOptions, MountTable, VfsPath};
use vfs_drivers::host::HostFs;
use vfs_drivers::overlay::OverlayFs;

#[test]
fn memory_driver_matches_linux_tmpfs() {
    run_cases(
        &Config::from_env(),
        &Subject {
            name: "memory",
            make: |_| Made::empty(Arc::new(memory_fs())),
            dir_nlink: true,
        },
    );
}

/// The trait's default whole-file, recursive and realpath methods, over the memory
/// driver's primitives: every driver that does not override them inherits these.
#[test]
fn default_methods_match_linux_tmpfs() {
    run_cases(
        &Config::from_env(),
        &Subject {
            name: "defaults over memory",
            make: |_| {
                let memory: Arc<dyn FileSystem> = Arc::new(memory_fs());
                Made::empty(Arc::new(
                    vfs_core::conformance::Forward::new(memory, "defaults-only").with_xattrs(),
                ))
            },
            dir_nlink: true,
        },
    );
}

/// The memory driver mounted below another mount, reached through the table.
#[test]
fn memory_in_a_mount_table_matches_linux_tmpfs() {
    run_cases(
        &Config::from_env(),
        &Subject {
            name: "memory in a mount table",
            make: |_| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime to mount with");
                let table = MountTable::new();
                runtime
                    .block_on(table.mount(
                        &VfsPath::root(),
                        Arc::new(memory_fs()),
                        MountOptions::default(),
                    ))
                    .expect("mount the driver under test");
                Made::empty(Arc::new(table))
            },
            dir_nlink: true,
        },
    );
}

#[test]
fn host_driver_matches_linux_tmpfs() {
    run_cases(
        &Config::from_env(),
        &Subject {
            name: "host_dir",
            make: |_| {
                let dir =
                    tempfile::tempdir_in("/dev/shm").expect("a scratch directory on /dev/shm");
                let fs = HostFs::new(dir.path()).expect("a host driver over the scratch directory");
                Made {
                    scratch: Some(dir),
                    ..Made::empty(Arc::new(fs))
                }
            },
            dir_nlink: true,
        },
    );
}

/// The overlay driver: a memory upper over two memory lowers pre-filled from the
/// sequence's seed (files, directories and symlinks in both, directories merged from both,
/// whiteouts and opaque directories in the top one hiding entries of the bottom one; see
/// `prefill.rs`), against a tmpfs directory pre-filled with their merged view, what the
/// overlay must show.
///
/// Directory link counts of 1 are not compared: the overlay reports 1 ("unknown") for a
/// directory merged from several layers, as Linux overlayfs does, since the real count
/// would take listing every layer. The counts of directories held by one layer are.
#[test]
fn overlay_over_prefilled_lowers_matches_linux_tmpfs() {
    run_cases(
        &Config::from_env(),
        &Subject {
            name: "overlay",
            make: |seed| {
                let layers = prefill::Layers::for_seed(seed);
                let upper = Arc::new(memory_fs());
                let fs = OverlayFs::new(upper, layers.build()).expect("an overlay over the lowers");
                Made {
                    prefill: Some(layers),
                    ..Made::empty(Arc::new(fs))
                }
            },
            dir_nlink: false,
        },
    );
}
