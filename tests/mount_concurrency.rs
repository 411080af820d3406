//! I/O under mounts while other tasks mount and unmount in a loop: no panic, no deadlock,
//! no write lost on a mount that stays, and never a file from an unmounted or different
//! mount served at a reused path.
//!
//! `VFS_MOUNT_CYCLES=N` runs more cycles than the default.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vfs_core::{ErrorKind, FileSystem, MountOptions, MountTable, UnmountOptions, VfsPath};
use vfs_drivers::memory::MemoryFs;

const CHURN_PATHS: usize = 4;
const STABLE_MOUNTS: usize = 2;

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("valid test path")
}

fn cycles() -> u64 {
    std::env::var("VFS_MOUNT_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000)
}

/// Each churned mount carries its generation in `/generation`; generations only grow, and
/// `published[k]` is the newest generation whose mount at `/churn/k` has completed.
struct Churn {
    published: Vec<AtomicU64>,
    next_generation: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_under_mounts_survives_mount_churn() {
    let table = Arc::new(MountTable::new());
    table
        .mount(
            &VfsPath::root(),
            Arc::new(MemoryFs::new()),
            MountOptions::default(),
        )
        .await
        .unwrap();
    let mut stable = Vec::new();
    for index in 0..STABLE_MOUNTS {
        let fs = Arc::new(MemoryFs::new());
        table
            .mount(
                &p(&format!("/stable/{index}")),
                fs.clone(),
                MountOptions::default(),
            )
            .await
            .unwrap();
        stable.push(fs);
    }
    let churn = Arc::new(Churn {
        published: (0..CHURN_PATHS).map(|_| AtomicU64::new(0)).collect(),
        next_generation: AtomicU64::new(1),
    });
    let done = Arc::new(AtomicBool::new(false));
    let total_cycles = cycles();

    let churner = {
        let (table, churn) = (table.clone(), churn.clone());
        tokio::spawn(async move {
            for cycle in 0..total_cycles {
                let slot = (cycle as usize) % CHURN_PATHS;
                let path = p(&format!("/churn/{slot}"));
                let generation = churn.next_generation.fetch_add(1, Ordering::SeqCst);
                let fs = Arc::new(MemoryFs::new());
                fs.write_file(&p("/generation"), Bytes::from(generation.to_string()))
                    .await
                    .unwrap();
                table
                    .mount(&path, fs, MountOptions::default())
                    .await
                    .unwrap();
                churn.published[slot].store(generation, Ordering::SeqCst);
                tokio::task::yield_now().await;
                // Lazy, because readers may hold handles open right now.
                table
                    .unmount(&path, UnmountOptions { lazy: true })
                    .await
                    .unwrap();
            }
        })
    };

    let mut readers = Vec::new();
    for reader in 0..2 {
        let (table, churn, done) = (table.clone(), churn.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut served = 0u64;
            let mut slot = reader;
            while !done.load(Ordering::SeqCst) {
                slot = (slot + 1) % CHURN_PATHS;
                let floor = churn.published[slot].load(Ordering::SeqCst);
                match table.read_file(&p(&format!("/churn/{slot}/generation"))).await {
                    Ok(content) => {
                        let text = std::str::from_utf8(&content).expect("generation is text");
                        let generation: u64 = text.parse().expect("a whole generation number");
                        let ceiling = churn.next_generation.load(Ordering::SeqCst);
                        assert!(
                            generation >= floor && generation < ceiling,
                            "/churn/{slot} served generation {generation}, outside [{floor}, {ceiling})"
                        );
                        assert_eq!(
                            generation as usize % CHURN_PATHS,
                            (slot + 1) % CHURN_PATHS,
                            "a generation from another path was served at /churn/{slot}"
                        );
                        served += 1;
                    }
                    // Between unmount and the next mount the path shows the directory below.
                    Err(err) => assert_eq!(err.kind(), ErrorKind::NotFound, "{err}"),
                }
                tokio::task::yield_now().await;
            }
            served
        }));
    }

    let mut writers = Vec::new();
    for index in 0..STABLE_MOUNTS {
        let (table, done) = (table.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut written = 0u64;
            while !done.load(Ordering::SeqCst) {
                let path = p(&format!("/stable/{index}/file-{written}"));
                table
                    .write_file(&path, Bytes::from(format!("{index}:{written}")))
                    .await
                    .unwrap();
                written += 1;
                tokio::task::yield_now().await;
            }
            written
        }));
    }

    // A generous bound that only a deadlock reaches; it asserts liveness, not speed.
    tokio::time::timeout(Duration::from_secs(300), churner)
        .await
        .expect("mount churn deadlocked")
        .unwrap();
    done.store(true, Ordering::SeqCst);
    let mut served = 0;
    for reader in readers {
        served += reader.await.unwrap();
    }
    assert!(served > 0, "readers never saw a churned mount");

    for (index, writer) in writers.into_iter().enumerate() {
        let written = writer.await.unwrap();
        assert!(written > 0);
        let listed = stable[index].read_dir(&VfsPath::root()).await.unwrap();
        assert_eq!(
            listed.len() as u64,
            written,
            "writes lost on stable mount {index}"
        );
        for n in 0..written {
            let content = stable[index]
                .read_file(&p(&format!("/file-{n}")))
                .await
                .unwrap();
            assert_eq!(content, format!("{index}:{n}"));
        }
    }
    assert_eq!(table.list().len(), 1 + STABLE_MOUNTS);
}
