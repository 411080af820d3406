//! A mount table served through FUSE while a sub-mount is mounted and unmounted at
//! runtime, over and over, with a reader going through the kernel all along.
//!
//! Every generation is a fresh memory filesystem whose files reuse the inode numbers of
//! the one before, holding a marker that names its generation (with a length of its own).
//! Right after each mount the kernel must serve the new generation's files and listing;
//! right after each unmount, none of them. The reader thread must never read a
//! generation that was already unmounted when it opened the file, nor one not yet
//! mounted, nor a marker of the wrong length (stale cached attributes).
//!
//! 1,000 cycles by default; `VFS_FUSE_CYCLES=N` runs N.
#![cfg(target_os = "linux")]

#[path = "common/fuse.rs"]
mod common_fuse;

use std::io::ErrorKind as IoErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common_fuse::Served;
use vfs_core::{FileSystem, MountOptions, MountTable, UnmountOptions, VfsPath};
use vfs_drivers::memory::MemoryFs;

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("valid test path")
}

fn cycles() -> u64 {
    std::env::var("VFS_FUSE_CYCLES")
        .ok()
        .and_then(|cycles| cycles.parse().ok())
        .unwrap_or(1_000)
}

/// The marker of a generation: its number, then padding whose length depends on it, so
/// that a size cached from another generation shows as a wrong length.
fn marker(generation: u64) -> String {
    format!(
        "generation {generation}\n{}",
        "#".repeat((generation % 13) as usize)
    )
}

/// The generation a marker names, if it is exactly a marker.
fn parse_marker(text: &str) -> Option<u64> {
    let generation = text
        .strip_prefix("generation ")?
        .split('\n')
        .next()?
        .parse()
        .ok()?;
    (text == marker(generation)).then_some(generation)
}

/// What the reader may know about the churn: generations only grow; `started` is the
/// newest generation whose mount has begun, `unmounted` the newest whose unmount has
/// returned.
#[derive(Default)]
struct Progress {
    started: AtomicU64,
    unmounted: AtomicU64,
    stop: AtomicBool,
}

/// Reads the marker through the kernel until told to stop; returns how many reads saw a
/// generation, or the first wrong thing seen.
fn read_loop(marker_path: &Path, progress: &Progress) -> Result<u64, String> {
    let mut seen = 0;
    while !progress.stop.load(Ordering::SeqCst) {
        let gone_before = progress.unmounted.load(Ordering::SeqCst);
        let read = std::fs::read(marker_path);
        let started_after = progress.started.load(Ordering::SeqCst);
        let text = match read {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // Between generations there is no marker; a mount going away under an open
            // may also end the read with ENOENT.
            Err(err) if err.kind() == IoErrorKind::NotFound => continue,
            Err(err) => return Err(format!("reading {}: {err}", marker_path.display())),
        };
        let Some(generation) = parse_marker(&text) else {
            return Err(format!("read a wrong marker {text:?}"));
        };
        if generation <= gone_before {
            return Err(format!(
                "read generation {generation}, unmounted before the read began (newest unmounted: {gone_before})"
            ));
        }
        if generation > started_after {
            return Err(format!(
                "read generation {generation} before it was mounted (newest started: {started_after})"
            ));
        }
        seen += 1;
    }
    Ok(seen)
}

#[test]
fn runtime_mounts_and_unmounts_never_show_a_stale_tree() {
    let table = Arc::new(MountTable::new());
    let served = Served::table(Arc::clone(&table), "churn");
    served.runtime().block_on(async {
        table
            .mount(
                &VfsPath::root(),
                Arc::new(MemoryFs::new()),
                MountOptions::default(),
            )
            .await
            .expect("mount the root");
        table
            .create_dir(&p("/sub"), 0o755)
            .await
            .expect("create the mount point");
    });
    let sub = served.path().join("sub");
    let marker_path = sub.join("marker");
    let progress = Arc::new(Progress::default());

    let reader = {
        let (marker_path, progress) = (marker_path.clone(), Arc::clone(&progress));
        std::thread::spawn(move || read_loop(&marker_path, &progress))
    };

    let cycles = cycles();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for generation in 1..=cycles {
            progress.started.store(generation, Ordering::SeqCst);
            let fs = Arc::new(MemoryFs::new());
            served.runtime().block_on(async {
                fs.write_file(&p("/marker"), Bytes::from(marker(generation)))
                    .await
                    .expect("write the marker");
                fs.write_file(&p(&format!("/gen-{generation}")), Bytes::new())
                    .await
                    .expect("write the generation's own file");
                table
                    .mount(&p("/sub"), fs, MountOptions::default())
                    .await
                    .expect("mount the generation");
            });

            let read = std::fs::read_to_string(&marker_path)
                .unwrap_or_else(|err| panic!("generation {generation} mounted, marker: {err}"));
            assert_eq!(
                parse_marker(&read),
                Some(generation),
                "right after mounting generation {generation} the kernel served {read:?}"
            );
            let mut names = list(&sub);
            names.sort();
            assert_eq!(
                names,
                [format!("gen-{generation}"), "marker".to_owned()],
                "listing right after mounting generation {generation}"
            );

            served.runtime().block_on(async {
                table
                    .unmount(&p("/sub"), UnmountOptions { lazy: true })
                    .await
                    .expect("unmount the generation");
            });
            progress.unmounted.store(generation, Ordering::SeqCst);

            match std::fs::read(&marker_path) {
                Err(err) if err.kind() == IoErrorKind::NotFound => {}
                other => panic!(
                    "right after unmounting generation {generation}, the marker read gave {other:?}"
                ),
            }
            assert_eq!(
                list(&sub),
                Vec::<String>::new(),
                "listing right after unmounting generation {generation}"
            );
        }
    }));
    progress.stop.store(true, Ordering::SeqCst);
    let reads = reader.join().expect("the reader thread panicked");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    let reads =
        reads.unwrap_or_else(|wrong| panic!("the reader saw a stale or wrong file: {wrong}"));
    assert!(
        reads > 0,
        "the reader never read a marker in {cycles} cycles"
    );
    served.unmount();
    println!("{cycles} mount/unmount cycles; the reader read {reads} markers, each current");
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("list {}: {err}", dir.display()))
        .map(|entry| {
            entry
                .expect("read a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}
