//! Progress reporting through a watch channel.

mod common;

use common::*;
use vfs_core::VfsPath;
use vfs_snapshot::{
    progress_channel, Phase, Progress, Repository, RestoreOptions, SnapshotOptions,
};

#[tokio::test]
async fn snapshot_and_restore_report_progress_to_done() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = populated().await;

    let (tx, mut rx) = progress_channel();
    // A watcher collecting every state it sees, running beside the snapshot.
    let watcher = tokio::spawn(async move {
        let mut seen: Vec<Progress> = Vec::new();
        while rx.changed().await.is_ok() {
            let now = rx.borrow_and_update().clone();
            let done = now.phase == Phase::Done;
            seen.push(now);
            if done {
                break;
            }
        }
        seen
    });
    let options = SnapshotOptions {
        progress: Some(tx.clone()),
        ..SnapshotOptions::default()
    };
    let (id, stats) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &options)
        .await
        .unwrap();
    let seen = watcher.await.unwrap();
    let last = seen.last().unwrap().clone();
    assert_eq!(last.phase, Phase::Done);
    assert_eq!(last.files_done, last.files_total);
    assert_eq!(last.bytes_done, last.bytes_total);
    // Hard links are read once: two extra links of /etc/hosts.
    assert_eq!(last.files_total, stats.files - 2);
    assert!(last.bytes_total > 5 << 20);
    // Monotonic: never goes backwards.
    for pair in seen.windows(2) {
        assert!(pair[1].files_done >= pair[0].files_done);
        assert!(pair[1].bytes_done >= pair[0].bytes_done);
    }
    assert_eq!(*tx.borrow(), last);

    // Restore, reading only the final state.
    let (tx, rx) = progress_channel();
    let options = RestoreOptions {
        progress: Some(tx),
        ..RestoreOptions::default()
    };
    let target = vfs_drivers::MemoryFs::new();
    let restored = repo
        .restore(&id, &target, &p("/r"), &options)
        .await
        .unwrap();
    let last = rx.borrow().clone();
    assert_eq!(last.phase, Phase::Done);
    assert_eq!(last.files_total, stats.files);
    assert_eq!(last.files_done, restored.files + restored.hardlinks);
    assert_eq!(last.bytes_done, last.bytes_total);
}

#[tokio::test]
async fn progress_without_receiver_is_harmless_and_errors_stop_before_done() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = populated().await;
    let (tx, rx) = progress_channel();
    drop(rx);
    let options = SnapshotOptions {
        progress: Some(tx.clone()),
        ..SnapshotOptions::default()
    };
    repo.snapshot(fs.as_ref(), &VfsPath::root(), &options)
        .await
        .unwrap();
    assert_eq!(tx.borrow().phase, Phase::Done);

    let (tx, rx) = progress_channel();
    let options = SnapshotOptions {
        progress: Some(tx),
        ..SnapshotOptions::default()
    };
    assert!(repo
        .snapshot(fs.as_ref(), &p("/missing"), &options)
        .await
        .is_err());
    assert_ne!(rx.borrow().phase, Phase::Done);
}
