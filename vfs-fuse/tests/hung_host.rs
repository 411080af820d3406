//! A host directory whose calls hang holds up its own requests only: the rest of a served
//! mount table goes on being served, however few reader threads the mount has.
//!
//! The hung storage is real: the host directory lies inside a second vfs-fuse mount whose
//! lookups of `/stuck/*` wait at a gate, so the host driver's syscalls block in the kernel
//! as they would on a dead NFS server.

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vfs_core::conformance::Forward;
use vfs_core::{FileSystem, MountOptions, MountTable, VfsPath};
use vfs_drivers::host::HostFs;
use vfs_drivers::MemoryFs;
use vfs_fuse::FuseOptions;

const HUNG: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_host_calls_hold_up_no_other_mount() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, served) = (dir.path().join("storage"), dir.path().join("served"));
    fs::create_dir(&storage).unwrap();
    fs::create_dir(&served).unwrap();

    let backing = MemoryFs::new();
    backing
        .create_dir(&VfsPath::new("/stuck").unwrap(), 0o755)
        .await
        .unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let hook = (gate.clone(), entered.clone());
    let hung = Forward::new(Arc::new(backing), "hung").before_stat(move |path| {
        let (gate, entered) = hook.clone();
        let hold = path.as_str().starts_with("/stuck/");
        async move {
            if hold {
                entered.fetch_add(1, Ordering::SeqCst);
                let _ = gate.acquire().await;
            }
        }
    });
    let storage_mount = vfs_fuse::mount(Arc::new(hung), &storage, FuseOptions::default()).unwrap();

    let root = MemoryFs::new();
    root.write_file(
        &VfsPath::new("/fast").unwrap(),
        Bytes::from_static(b"served"),
    )
    .await
    .unwrap();
    let table = Arc::new(MountTable::new());
    table
        .mount(&VfsPath::root(), Arc::new(root), MountOptions::default())
        .await
        .unwrap();
    let host: Arc<dyn FileSystem> = Arc::new(HostFs::new(&storage).unwrap());
    table
        .mount(&VfsPath::new("/h").unwrap(), host, MountOptions::default())
        .await
        .unwrap();
    let options = FuseOptions {
        reader_threads: 2,
        ..FuseOptions::default()
    };
    let served_mount = vfs_fuse::mount_table(table.clone(), &served, options).unwrap();

    // More hung host calls than the served mount has reader threads.
    let stuck: Vec<_> = (0..HUNG)
        .map(|i| {
            let path = served.join(format!("h/stuck/f{i}"));
            tokio::task::spawn_blocking(move || fs::symlink_metadata(path))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while entered.load(Ordering::SeqCst) < HUNG {
        assert!(
            Instant::now() < deadline,
            "only {} of {HUNG} hung lookups reached the storage: the served mount's readers are \
             blocked in host calls",
            entered.load(Ordering::SeqCst)
        );
        tokio::task::yield_now().await;
    }
    // Every one of them still waits, and the memory root answers.
    let fast = served.join("fast");
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || fs::read(fast)),
    )
    .await
    .expect("a hung host call held up the memory root")
    .unwrap()
    .unwrap();
    assert_eq!(read, b"served");
    assert!(stuck.iter().all(|task| !task.is_finished()));

    gate.add_permits(HUNG);
    for task in stuck {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
    served_mount.unmount().unwrap();
    storage_mount.unmount().unwrap();
}
