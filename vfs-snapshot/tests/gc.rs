//! Garbage collection: what it frees, what it keeps, and gc beside a running snapshot.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use object_store::ObjectStoreExt;
use vfs_core::{ErrorKind, FileSystem, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{GcOptions, Repository, RestoreOptions, SnapshotOptions};

fn now_gc() -> GcOptions {
    GcOptions {
        keep_recent: Duration::ZERO,
        ..GcOptions::default()
    }
}

async fn store_bytes(repo: &Repository) -> u64 {
    use futures::TryStreamExt;
    let all: Vec<object_store::ObjectMeta> = repo.store().list(None).try_collect().await.unwrap();
    all.iter().map(|m| m.size).sum()
}

async fn other_tree() -> Arc<MemoryFs> {
    let fs = Arc::new(MemoryFs::new());
    fs.create_dir(&p("/data"), 0o755).await.unwrap();
    write(fs.as_ref(), "/data/a.bin", noise(99, 3 << 20)).await;
    write(fs.as_ref(), "/data/b.txt", "other").await;
    fs
}

#[tokio::test]
async fn gc_after_untag_frees_space_and_keeps_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let root = VfsPath::root();
    let fs_a = populated().await;
    let (a, _) = repo
        .snapshot(fs_a.as_ref(), &root, &SnapshotOptions::default())
        .await
        .unwrap();
    repo.tag("a", &a).await.unwrap();
    let fs_b = other_tree().await;
    let (b, _) = repo
        .snapshot(fs_b.as_ref(), &root, &SnapshotOptions::default())
        .await
        .unwrap();
    repo.tag("b", &b).await.unwrap();

    // Both tagged: nothing to collect.
    let stats = repo.gc(&[], &now_gc()).await.unwrap();
    assert_eq!(
        (stats.packs_removed, stats.snapshots_kept),
        (0, 2),
        "{stats:?}"
    );
    let before = store_bytes(&repo).await;

    repo.untag("b").await.unwrap();
    let stats = repo.gc(&[], &now_gc()).await.unwrap();
    assert_eq!(stats.snapshots_removed, vec![b]);
    assert!(
        stats.packs_removed >= 1 && stats.bytes_freed > 3 << 20,
        "{stats:?}"
    );
    let after = store_bytes(&repo).await;
    assert!(after + (3 << 20) < before, "{before} -> {after}");

    // What remains is whole, in this handle and in a fresh one.
    assert!(repo.verify(&a).await.unwrap().is_ok());
    let fresh = Repository::open_local(dir.path()).await.unwrap();
    assert!(fresh.verify(&a).await.unwrap().is_ok());
    assert!(fresh.snapshot_info(&b).await.is_err());
    let target = MemoryFs::new();
    fresh
        .restore(&a, &target, &p("/r"), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        describe(fs_a.as_ref(), "/").await,
        describe(&target, "/r").await
    );

    // Snapshotting b again after gc stores it again and it verifies.
    let (b2, stats) = repo
        .snapshot(fs_b.as_ref(), &root, &SnapshotOptions::default())
        .await
        .unwrap();
    assert_eq!(b2, b);
    assert!(stats.chunks_new >= 1, "{stats:?}");
    assert!(repo.verify(&b).await.unwrap().is_ok());
}

#[tokio::test]
async fn gc_keeps_named_and_recent_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = other_tree().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();
    // Recent (default keep_recent) and untagged: kept.
    let stats = repo.gc(&[], &GcOptions::default()).await.unwrap();
    assert!(stats.snapshots_removed.is_empty() && stats.packs_removed == 0);
    // Named by id: kept.
    let stats = repo.gc(&[&id.to_hex()], &now_gc()).await.unwrap();
    assert!(stats.snapshots_removed.is_empty() && stats.packs_removed == 0);
    assert!(repo.verify(&id).await.unwrap().is_ok());
    // An unknown keep name is an error, and nothing is deleted.
    assert!(repo.gc(&["no-such-tag"], &now_gc()).await.is_err());
    assert!(repo.verify(&id).await.unwrap().is_ok());
    // Neither: collected.
    let stats = repo.gc(&[], &now_gc()).await.unwrap();
    assert_eq!(stats.snapshots_removed, vec![id]);
    assert!(repo.list_snapshots().await.unwrap().is_empty());
}

#[tokio::test]
async fn gc_waits_for_writers_and_refuses_when_they_stay() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let lock = object_store::path::Path::from("locks/writer-test");
    repo.store()
        .put(&lock, bytes::Bytes::from_static(b"{}").into())
        .await
        .unwrap();
    let options = GcOptions {
        wait: Duration::from_millis(100),
        ..now_gc()
    };
    let err = repo.gc(&[], &options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    // A lock past stale_writer is taken as abandoned.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let options = GcOptions {
        stale_writer: Duration::from_millis(10),
        ..options
    };
    repo.gc(&[], &options).await.unwrap();
    // gc releases its own lock.
    repo.store().delete(&lock).await.unwrap();
    let (_id, _) = repo
        .snapshot(
            &MemoryFs::new(),
            &VfsPath::root(),
            &SnapshotOptions::default(),
        )
        .await
        .unwrap();
}

/// The hazard: a snapshot that dedups against blobs of a snapshot gc is removing. Two
/// handles (as two processes would have), gc started at varying points of the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_concurrent_with_a_snapshot_keeps_it_verifiable() {
    let fs = populated().await;
    let root = VfsPath::root();
    // Normalized: adding and removing a file changes its directory's mtime.
    let normalized = SnapshotOptions {
        normalize: true,
        ..SnapshotOptions::default()
    };
    // The new snapshot's id, known in advance: ids do not depend on the store.
    write(fs.as_ref(), "/srv/extra", "one more file").await;
    let scratch = tempfile::tempdir().unwrap();
    let (b, _) = Repository::open_local(scratch.path())
        .await
        .unwrap()
        .snapshot(fs.as_ref(), &root, &normalized)
        .await
        .unwrap();
    fs.remove_file(&p("/srv/extra")).await.unwrap();

    let mut orders = (0, 0);
    // (gc delay, snapshot delay) in ms: gc starting first, together, or mid-snapshot.
    for (delay_ms, snap_delay) in [(0u64, 0u64), (0, 5), (0, 30), (1, 0), (3, 0), (30, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let writer = Repository::open_local(dir.path()).await.unwrap();
        let collector = Repository::open_local(dir.path()).await.unwrap();
        // An old, unkept snapshot sharing almost every blob with the new one.
        writer
            .snapshot(fs.as_ref(), &root, &normalized)
            .await
            .unwrap();
        write(fs.as_ref(), "/srv/extra", "one more file").await;
        // The writer's handle knows the old blobs, as a long-lived process would.
        // Polled together on one task: they interleave at every store call.
        let keep = b.to_hex();
        let snap = async {
            tokio::time::sleep(Duration::from_millis(snap_delay)).await;
            writer.snapshot(fs.as_ref(), &root, &normalized).await
        };
        let gc = async {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            collector.gc(&[keep.as_str()], &now_gc()).await
        };
        let (snap, gc) = tokio::join!(snap, gc);
        let (id, _) = snap.unwrap();
        let gc = gc.unwrap();
        // gc first removes the old snapshot's packs, which the writer's handle had
        // indexed; gc second finds the old record and the new one sharing blobs.
        if gc.packs_removed > 0 {
            orders.0 += 1;
        } else {
            orders.1 += 1;
        }
        assert_eq!(id, b);
        // Whichever went first, the new snapshot is whole.
        for handle in [&writer, &collector] {
            handle.load_indexes().await.unwrap();
            let report = handle.verify(&b).await.unwrap();
            assert!(report.is_ok(), "delay {delay_ms}: {report:?}");
        }
        let fresh = Repository::open_local(dir.path()).await.unwrap();
        assert!(fresh.verify(&b).await.unwrap().is_ok(), "delay {delay_ms}");
        fs.remove_file(&p("/srv/extra")).await.unwrap();
    }
    // Both orders happened: gc removing blobs the writer's handle knew, and not.
    assert!(orders.0 > 0 && orders.1 > 0, "{orders:?}");
}

async fn lock_keys(repo: &Repository) -> Vec<String> {
    use futures::TryStreamExt;
    let locks: Vec<object_store::ObjectMeta> = repo
        .store()
        .list(Some(&object_store::path::Path::from("locks")))
        .try_collect()
        .await
        .unwrap();
    locks.iter().map(|m| m.location.to_string()).collect()
}

/// A caller that gives up on a snapshot (a dropped future: a cancelled request, a
/// timeout) must not leave a writer lock that keeps gc waiting until the lock is stale.
#[tokio::test]
async fn a_dropped_snapshot_leaves_no_writer_lock() {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let repo = Repository::open(store).await.unwrap();
    let fs = other_tree().await;
    let root = VfsPath::root();
    let options = SnapshotOptions::default();
    let mut snapshot = Box::pin(repo.snapshot(fs.as_ref(), &root, &options));
    // The in-memory store answers at once, so the first poll takes the lock and runs
    // until the 3 MiB file's hashing goes to the blocking pool.
    assert!(futures::poll!(snapshot.as_mut()).is_pending());
    assert_eq!(
        lock_keys(&repo).await.len(),
        1,
        "the snapshot holds its lock"
    );
    drop(snapshot);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lock_keys(&repo).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock outlived its snapshot"
        );
        tokio::task::yield_now().await;
    }
    // No writer left: a gc that will not wait for one goes ahead.
    let no_wait = GcOptions {
        wait: Duration::ZERO,
        ..now_gc()
    };
    repo.gc(&[], &no_wait).await.unwrap();
}
