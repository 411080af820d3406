//! An error in the middle of a snapshot leaves the store valid and no snapshot visible;
//! a retry reuses what was already stored.

mod common;

use common::*;
use std::sync::{Arc, Mutex};

use vfs_core::conformance::Forward;
use vfs_core::{ErrorKind, FileSystem, VfsError, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{Repository, SnapshotOptions};

#[tokio::test]
async fn an_error_mid_snapshot_leaves_no_snapshot_and_a_retry_reuses_the_stored_packs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    // A memory filesystem whose `open` of one path fails with `EIO` while `failing` names it.
    let inner = Arc::new(MemoryFs::new());
    let failing = Arc::new(Mutex::new(Some("/zz".to_owned())));
    let fault = failing.clone();
    let fs = Forward::new(inner.clone(), "flaky").before_open(move |path| {
        match fault.lock().unwrap().as_deref() {
            Some(bad) if bad == path.as_str() => {
                Err(VfsError::new(ErrorKind::Io, "open").with_path(path.as_str()))
            }
            _ => Ok(()),
        }
    });
    // 24 MiB of incompressible data fills at least one 16 MiB pack before the end.
    write(&*inner, "/a1", noise(11, 12 << 20)).await;
    write(&*inner, "/a2", noise(12, 12 << 20)).await;
    write(&*inner, "/zz", "the file that fails").await;

    let err = repo
        .snapshot(&fs, &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.path(), Some("/zz"));
    assert!(repo.list_snapshots().await.unwrap().is_empty());
    let files = store_files(dir.path());
    assert!(
        files.iter().all(|f| !f.starts_with("snapshots/")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("packs/")),
        "a full pack was published: {files:?}"
    );

    // A new process (fresh handle) retries once the fault is gone.
    *failing.lock().unwrap() = None;
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let (id, stats) = repo
        .snapshot(&fs, &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();
    assert!(stats.chunks_reused > 0, "{stats:?}");
    assert!(repo.verify(&id).await.unwrap().is_ok());
    assert_eq!(repo.list_snapshots().await.unwrap().len(), 1);
    let target = MemoryFs::new();
    repo.restore(&id, &target, &p("/r"), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        describe(&*inner, "/").await.len(),
        describe(&target, "/r").await.len()
    );
    assert_eq!(
        target.read_file(&p("/r/a2")).await.unwrap(),
        noise(12, 12 << 20)
    );
}
