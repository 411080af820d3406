//! Diff of a snapshot against a live filesystem.

mod common;

use std::sync::Arc;

use common::*;
use vfs_core::{FileSystem, VfsPath};
use vfs_snapshot::{Change, ChangeKind, Repository, SnapshotOptions, StatCache};

async fn object_count(repo: &Repository) -> usize {
    use futures::TryStreamExt;
    let all: Vec<_> = repo.store().list(None).try_collect().await.unwrap();
    all.len()
}

#[tokio::test]
async fn live_diff_matches_snapshot_diff_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = populated().await;
    let cache = Arc::new(StatCache::default());
    let options = SnapshotOptions {
        stat_cache: Some(cache.clone()),
        ..SnapshotOptions::default()
    };
    let root = VfsPath::root();
    let (a, _) = repo.snapshot(fs.as_ref(), &root, &options).await.unwrap();
    let objects = object_count(&repo).await;

    // Unchanged: no differences, nothing written.
    assert_eq!(
        repo.diff_live(&a, fs.as_ref(), &root, &options)
            .await
            .unwrap(),
        Vec::<Change>::new()
    );
    assert_eq!(object_count(&repo).await, objects);

    write(fs.as_ref(), "/etc/hosts", "10.0.0.1 changed\n").await;
    fs.set_permissions(&p("/etc/conf.d/a.conf"), 0o600)
        .await
        .unwrap();
    write(fs.as_ref(), "/srv/new.txt", "new").await;
    fs.remove_file(&p("/srv/same2")).await.unwrap();
    fs.remove_file(&p("/etc/empty")).await.unwrap();
    fs.create_dir(&p("/etc/empty"), 0o755).await.unwrap();

    let live = repo
        .diff_live(&a, fs.as_ref(), &root, &options)
        .await
        .unwrap();
    assert_eq!(
        object_count(&repo).await,
        objects,
        "a live diff stores nothing"
    );
    let find = |path: &str| live.iter().find(|c| c.path == path).map(|c| c.kind);
    assert_eq!(find("/etc/hosts"), Some(ChangeKind::Modified), "{live:?}");
    assert_eq!(
        find("/etc/conf.d/a.conf"),
        Some(ChangeKind::MetadataChanged)
    );
    assert_eq!(find("/srv/new.txt"), Some(ChangeKind::Added));
    assert_eq!(find("/srv/same2"), Some(ChangeKind::Removed));
    assert_eq!(find("/etc/empty"), Some(ChangeKind::TypeChanged));

    // The same answer as snapshotting the live tree and diffing two snapshots.
    let (b, _) = repo.snapshot(fs.as_ref(), &root, &options).await.unwrap();
    assert_eq!(repo.diff(&a, &b).await.unwrap(), live);
}

#[tokio::test]
async fn live_diff_of_a_subtree_and_without_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = populated().await;
    let options = SnapshotOptions::default();
    let (a, _) = repo
        .snapshot(fs.as_ref(), &p("/home"), &options)
        .await
        .unwrap();
    write(fs.as_ref(), "/home/user/notes.txt", "HELLO").await;
    write(fs.as_ref(), "/etc/outside", "not in the subtree").await;
    let live = repo
        .diff_live(&a, fs.as_ref(), &p("/home"), &options)
        .await
        .unwrap();
    let paths: Vec<(&str, ChangeKind)> = live.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    // Overwriting a file leaves its directory's mtime alone; paths are relative to
    // the captured root.
    assert_eq!(paths, vec![("/user/notes.txt", ChangeKind::Modified)]);
    // A missing source is an error, not an empty diff.
    assert!(repo
        .diff_live(&a, fs.as_ref(), &p("/nope"), &options)
        .await
        .is_err());
}
