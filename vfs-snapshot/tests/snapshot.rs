//! Snapshot, restore, dedup, diff, verify and mount-table cases.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use vfs_core::{ErrorKind, FileSystem, MountOptions, MountTable, SetTime, Timestamp, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{
    ChangeKind, ProblemKind, Repository, RestoreOptions, SnapshotOptions, StatCache,
};

async fn repo() -> (tempfile::TempDir, Arc<Repository>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    (dir, repo)
}

fn opts() -> SnapshotOptions {
    SnapshotOptions::default()
}

#[tokio::test]
async fn round_trip_restores_an_identical_tree() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (id, stats) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    assert!(
        stats.files >= 8 && stats.symlinks == 3 && stats.dirs == 7,
        "{stats:?}"
    );
    assert!(
        stats.chunks_new >= 3,
        "the 5 MiB file is several chunks: {stats:?}"
    );

    let target = MemoryFs::new();
    let rs = repo
        .restore(&id, &target, &p("/restored"), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(rs.hardlinks, 2);
    assert_eq!(
        describe(fs.as_ref(), "/").await,
        describe(&target, "/restored").await
    );

    // Snapshot of the restored copy: the same id.
    let (again, _) = repo
        .snapshot(&target, &p("/restored"), &opts())
        .await
        .unwrap();
    assert_eq!(again, id);
}

#[tokio::test]
async fn restore_into_root_of_fresh_fs() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    let target = MemoryFs::new();
    repo.restore(&id, &target, &VfsPath::root(), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        describe(fs.as_ref(), "/").await,
        describe(&target, "/").await
    );
}

#[tokio::test]
async fn restore_refuses_a_non_empty_target() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    let err = repo
        .restore(&id, fs.as_ref(), &p("/etc"), &RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
}

#[tokio::test]
async fn same_tree_gives_same_id_across_stores_and_filesystems() {
    let (_d1, r1) = repo().await;
    let (_d2, r2) = repo().await;
    let a = populated().await;
    let b = populated().await;
    let (ia, _) = r1
        .snapshot(a.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    let (ib, _) = r2
        .snapshot(b.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    // Creation order left different ctimes and inode numbers; ids ignore both.
    assert_eq!(ia, ib);
    let (ia2, _) = r1
        .snapshot(a.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    assert_eq!(ia, ia2);
}

#[tokio::test]
async fn normalize_ignores_times_and_owners() {
    let (_dir, repo) = repo().await;
    let a = populated().await;
    let b = populated().await;
    b.set_owner(&p("/etc/hosts"), Some(5), Some(5))
        .await
        .unwrap();
    let t = SetTime::At(Timestamp(42));
    b.set_times(&p("/etc/conf.d/a.conf"), t, t).await.unwrap();
    let plain = opts();
    let norm = SnapshotOptions {
        normalize: true,
        ..opts()
    };
    let (pa, _) = repo
        .snapshot(a.as_ref(), &VfsPath::root(), &plain)
        .await
        .unwrap();
    let (pb, _) = repo
        .snapshot(b.as_ref(), &VfsPath::root(), &plain)
        .await
        .unwrap();
    assert_ne!(pa, pb);
    let (na, _) = repo
        .snapshot(a.as_ref(), &VfsPath::root(), &norm)
        .await
        .unwrap();
    let (nb, _) = repo
        .snapshot(b.as_ref(), &VfsPath::root(), &norm)
        .await
        .unwrap();
    assert_eq!(na, nb);
}

#[tokio::test]
async fn second_snapshot_of_unchanged_tree_writes_no_objects() {
    let (dir, repo) = repo().await;
    let fs = populated().await;
    let (id, first) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    let before = store_files(dir.path());
    assert!(first.objects_written >= 3, "{first:?}");
    let (again, second) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    assert_eq!(id, again);
    assert_eq!(second.objects_written, 0);
    assert_eq!((second.chunks_new, second.trees_new), (0, 0));
    assert_eq!(store_files(dir.path()), before);

    // A fresh handle on the same store dedups against what the indexes say.
    let reopened = Repository::open_local(dir.path()).await.unwrap();
    let (_, third) = reopened
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    assert_eq!(third.objects_written, 0);
    assert_eq!(store_files(dir.path()), before);
}

#[tokio::test]
async fn small_files_are_packed_into_few_objects() {
    let (dir, repo) = repo().await;
    let fs = MemoryFs::new();
    for d in 0..20 {
        fs.create_dir(&p(&format!("/d{d}")), 0o755).await.unwrap();
        for f in 0..50 {
            write(
                &fs,
                &format!("/d{d}/f{f}"),
                noise(d * 100 + f, 1024 + (f as usize) * 37),
            )
            .await;
        }
    }
    let (_, stats) = repo.snapshot(&fs, &VfsPath::root(), &opts()).await.unwrap();
    assert_eq!(stats.files, 1000);
    assert_eq!(stats.chunks_new, 1000);
    // One pack, its index, the snapshot record (and the config written at open).
    assert!(stats.objects_written <= 4, "{stats:?}");
    assert!(store_files(dir.path()).len() <= 5);
}

#[tokio::test]
async fn stat_cache_skips_unchanged_files_and_torn_check_passes() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let cache = Arc::new(StatCache::default());
    let options = SnapshotOptions {
        stat_cache: Some(cache.clone()),
        ..opts()
    };
    let (id1, first) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &options)
        .await
        .unwrap();
    assert_eq!(first.files_cached, 0);
    assert!(first.unstable.is_empty());
    write(fs.as_ref(), "/home/user/notes.txt", "changed").await;
    let (id2, second) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &options)
        .await
        .unwrap();
    assert_ne!(id1, id2);
    // Every file but the changed one (hard links count once) comes from the cache.
    assert_eq!(second.files_cached, first.files - 2 - 1);
    assert_eq!(second.bytes_read, "changed".len() as u64);
    let changes = repo.diff(&id1, &id2).await.unwrap();
    assert!(changes
        .iter()
        .any(|c| c.path == "/home/user/notes.txt" && c.kind == ChangeKind::Modified));
}

/// The cache follows the tree: files a completed snapshot did not see beneath its root
/// are forgotten, files outside that root are kept.
#[tokio::test]
async fn stat_cache_forgets_removed_files_beneath_the_root_only() {
    let (_dir, repo) = repo().await;
    let fs = MemoryFs::new();
    fs.create_dir_all(&p("/a"), 0o755).await.unwrap();
    fs.create_dir_all(&p("/b"), 0o755).await.unwrap();
    for name in ["/a/1", "/a/2", "/a/3", "/b/1"] {
        write(&fs, name, name).await;
    }
    let cache = Arc::new(StatCache::default());
    let options = SnapshotOptions {
        stat_cache: Some(cache.clone()),
        ..opts()
    };
    repo.snapshot(&fs, &p("/a"), &options).await.unwrap();
    repo.snapshot(&fs, &p("/b"), &options).await.unwrap();
    assert_eq!(cache.len(), 4);

    fs.remove_file(&p("/a/2")).await.unwrap();
    fs.remove_file(&p("/a/3")).await.unwrap();
    fs.create_dir(&p("/a/3"), 0o755).await.unwrap(); // no longer a regular file
    let (_, stats) = repo.snapshot(&fs, &p("/a"), &options).await.unwrap();
    assert_eq!(stats.files_cached, 1);
    assert_eq!(cache.len(), 2, "/a/1 and /b/1 are left: {cache:?}");

    // /b's entry still serves /b.
    let (_, stats) = repo.snapshot(&fs, &p("/b"), &options).await.unwrap();
    assert_eq!((stats.files, stats.files_cached), (1, 1));
}

#[tokio::test]
async fn diff_reports_each_kind_of_change() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (a, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    assert!(repo.diff(&a, &a).await.unwrap().is_empty());

    write(fs.as_ref(), "/etc/new.txt", "new").await; // added (and /etc's mtime changes)
    fs.remove_dir_all(&p("/home/user/empty")).await.unwrap(); // removed
    write(fs.as_ref(), "/etc/conf.d/a.conf", "a=2\n").await; // modified
    fs.remove_file(&p("/srv/same1")).await.unwrap();
    fs.create_dir(&p("/srv/same1"), 0o755).await.unwrap(); // type changed
    fs.set_permissions(&p("/srv/same2"), 0o600).await.unwrap(); // metadata
    let (b, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    let changes = repo.diff(&a, &b).await.unwrap();
    let find = |path: &str| changes.iter().find(|c| c.path == path).map(|c| c.kind);
    assert_eq!(find("/etc/new.txt"), Some(ChangeKind::Added));
    assert_eq!(find("/home/user/empty"), Some(ChangeKind::Removed));
    assert_eq!(find("/etc/conf.d/a.conf"), Some(ChangeKind::Modified));
    assert_eq!(find("/srv/same1"), Some(ChangeKind::TypeChanged));
    assert_eq!(find("/srv/same2"), Some(ChangeKind::MetadataChanged));
    assert_eq!(find("/etc"), Some(ChangeKind::MetadataChanged));
    // Unchanged paths are not listed.
    assert_eq!(find("/home/user/big.bin"), None);
    assert_eq!(find("/etc/hosts"), None);
    let reverse = repo.diff(&b, &a).await.unwrap();
    assert!(reverse
        .iter()
        .any(|c| c.path == "/etc/new.txt" && c.kind == ChangeKind::Removed));
}

#[tokio::test]
async fn verify_passes_on_a_whole_snapshot() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (id, stats) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    let report = repo.verify(&id).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.trees, stats.trees_new);
    assert_eq!(report.chunks, stats.chunks_new);
}

fn packs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    store_files(dir)
        .into_iter()
        .filter(|f| f.starts_with("packs/"))
        .map(|f| dir.join(f))
        .collect()
}

#[tokio::test]
async fn verify_and_restore_detect_a_flipped_byte() {
    let (dir, repo) = repo().await;
    let fs = MemoryFs::new();
    write(&fs, "/a", noise(1, 3000)).await;
    write(&fs, "/b", noise(2, 3000)).await;
    let (id, _) = repo.snapshot(&fs, &VfsPath::root(), &opts()).await.unwrap();
    let pack = packs(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    // Inside the first blob, which is /a's chunk (files are added before trees).
    let at = repo
        .locate(&vfs_snapshot::Digest::of(&noise(1, 3000)))
        .unwrap();
    bytes[at.offset as usize + at.length as usize / 2] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();

    let report = repo.verify(&id).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let problem = &report.problems[0];
    assert_eq!(problem.kind, ProblemKind::Corrupt);
    assert_eq!(problem.path, "/a");
    assert_eq!(problem.blob, vfs_snapshot::Digest::of(&noise(1, 3000)));
    assert!(problem.object.as_deref().unwrap().starts_with("packs/"));

    let target = MemoryFs::new();
    let err = repo
        .restore(&id, &target, &p("/r"), &RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains(&problem.blob.to_string()), "{err}");
    assert!(err.to_string().contains("/r/a"), "{err}");
}

#[tokio::test]
async fn verify_detects_a_missing_pack() {
    let (dir, repo) = repo().await;
    let fs = populated().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    for pack in packs(dir.path()) {
        std::fs::remove_file(pack).unwrap();
    }
    let report = repo.verify(&id).await.unwrap();
    assert_eq!(
        report.problems.len(),
        1,
        "the root tree is gone, nothing below is reachable"
    );
    assert_eq!(report.problems[0].kind, ProblemKind::Missing);
    assert_eq!(report.problems[0].path, "/");
}

#[tokio::test]
async fn tags_and_listing() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (a, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    write(fs.as_ref(), "/x", "x").await;
    let (b, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    repo.tag("base", &a).await.unwrap();
    repo.tag("latest", &b).await.unwrap();
    assert_eq!(repo.resolve("base").await.unwrap(), a);
    assert_eq!(repo.resolve(&b.to_string()).await.unwrap(), b);
    let tags = repo.list_tags().await.unwrap();
    assert_eq!(tags, vec![("base".to_owned(), a), ("latest".to_owned(), b)]);
    let list = repo.list_snapshots().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, a);
    assert!(list[1].files == list[0].files + 1 && list[1].bytes == list[0].bytes + 1);
    for bad in ["", ".hidden", "a/b", "../x", "sp ace"] {
        assert_eq!(
            repo.tag(bad, &a).await.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{bad}"
        );
    }
    let unknown = vfs_snapshot::Digest::of(b"nothing");
    assert_eq!(
        repo.tag("x", &unknown).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    repo.untag("base").await.unwrap();
    assert_eq!(repo.list_tags().await.unwrap().len(), 1);
}

#[tokio::test]
async fn snapshot_of_a_mount_table_captures_every_mount() {
    let (_dir, repo) = repo().await;
    let table = MountTable::new();
    table
        .mount(&VfsPath::root(), populated().await, MountOptions::default())
        .await
        .unwrap();
    let work = Arc::new(MemoryFs::new());
    write(work.as_ref(), "/w.txt", "work").await;
    // Same inode numbers as files in the root mount, each with nlink 2: with the mount
    // points as device roots they are not taken for links of each other.
    work.hard_link(&p("/w.txt"), &p("/w2.txt")).await.unwrap();
    table
        .mount(&p("/workspace"), work, MountOptions::default())
        .await
        .unwrap();
    let data = Arc::new(MemoryFs::new());
    write(data.as_ref(), "/d.bin", noise(3, 10_000)).await;
    table
        .mount(
            &p("/home/user/data"),
            data,
            MountOptions { read_only: true },
        )
        .await
        .unwrap();

    let roots: Vec<VfsPath> = table.list().into_iter().map(|m| m.path).collect();
    let options = SnapshotOptions {
        device_roots: roots,
        ..opts()
    };
    let (id, stats) = repo
        .snapshot(&table, &VfsPath::root(), &options)
        .await
        .unwrap();
    assert_eq!(stats.files, 9 + 2 + 1, "{stats:?}");

    let target = MemoryFs::new();
    repo.restore(&id, &target, &VfsPath::root(), &RestoreOptions::default())
        .await
        .unwrap();
    let scopes = ["workspace", "home/user/data"];
    assert_eq!(
        describe_scoped(&table, "/", &scopes).await,
        describe_scoped(&target, "/", &scopes).await
    );
    assert_eq!(
        target.read_file(&p("/workspace/w2.txt")).await.unwrap(),
        Bytes::from("work")
    );
    assert_eq!(
        target.read_file(&p("/home/user/data/d.bin")).await.unwrap(),
        Bytes::from(noise(3, 10_000))
    );
}

#[tokio::test]
async fn snapshot_of_a_file_is_enotdir() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let err = repo
        .snapshot(fs.as_ref(), &p("/etc/hosts"), &opts())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    assert!(repo.list_snapshots().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_subdirectory_snapshot_restores_alone() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (id, stats) = repo
        .snapshot(fs.as_ref(), &p("/home"), &opts())
        .await
        .unwrap();
    assert_eq!(stats.files, 3);
    let target = MemoryFs::new();
    repo.restore(&id, &target, &p("/h"), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        describe(fs.as_ref(), "/home").await,
        describe(&target, "/h").await
    );
}

#[tokio::test]
async fn any_object_store_works_and_concurrent_writers_do_not_corrupt_it() {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let a = Repository::open(store.clone()).await.unwrap();
    let b = Repository::open(store.clone()).await.unwrap();
    let fs1 = populated().await;
    let fs2 = populated().await;
    write(fs2.as_ref(), "/only-in-2", noise(4, 100_000)).await;
    let (root, options) = (VfsPath::root(), opts());
    let (r1, r2) = tokio::join!(
        a.snapshot(fs1.as_ref(), &root, &options),
        b.snapshot(fs2.as_ref(), &root, &options)
    );
    let (id1, id2) = (r1.unwrap().0, r2.unwrap().0);
    let c = Repository::open(store).await.unwrap();
    assert!(c.verify(&id1).await.unwrap().is_ok());
    assert!(c.verify(&id2).await.unwrap().is_ok());
    assert_eq!(c.list_snapshots().await.unwrap().len(), 2);
    let target = MemoryFs::new();
    c.restore(&id2, &target, &p("/r"), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        describe(fs2.as_ref(), "/").await,
        describe(&target, "/r").await
    );
}

/// One repository shared by concurrent snapshots of overlapping trees: each dedups
/// against blobs the others still have in flight, and must wait for them rather than
/// fail or publish a record naming blobs that are not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_snapshots_through_one_repository_share_blobs_in_flight() {
    for round in 0..3u8 {
        let (_dir, repo) = repo().await;
        let mut trees = Vec::new();
        for variant in 0..4u8 {
            let fs = populated().await;
            write(fs.as_ref(), "/variant", Bytes::from(vec![variant; 10])).await;
            trees.push(fs);
        }
        let root = VfsPath::root();
        let runs = trees.iter().map(|fs| {
            let (repo, fs, root) = (repo.clone(), fs.clone(), root.clone());
            tokio::spawn(async move { repo.snapshot(fs.as_ref(), &root, &opts()).await })
        });
        let mut ids = Vec::new();
        for run in futures::future::join_all(runs).await {
            let (id, _) = run
                .unwrap()
                .unwrap_or_else(|err| panic!("round {round}: {err}"));
            ids.push(id);
        }
        let reopened = Repository::open(repo.store().clone()).await.unwrap();
        for id in &ids {
            assert!(
                reopened.verify(id).await.unwrap().is_ok(),
                "round {round}: {id}"
            );
        }
        assert_eq!(reopened.list_snapshots().await.unwrap().len(), 4);
    }
}

/// On a multi-threaded runtime the walk and the reads fan out over threads; the result
/// must be the very tree a one-thread walk records: same id, links matched the same way.
#[test]
fn a_fanned_out_snapshot_of_a_host_tree_matches_a_one_thread_one() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for d in 0..12 {
        let sub = tree.join(format!("d{d:02}")).join("inner");
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..25u8 {
            std::fs::write(
                sub.join(format!("f{f}")),
                vec![f ^ d as u8; 100 + f as usize],
            )
            .unwrap();
        }
        std::os::unix::fs::symlink(format!("inner/f{d}"), tree.join(format!("d{d:02}/link")))
            .unwrap();
    }
    std::fs::hard_link(tree.join("d03/inner/f1"), tree.join("d09/hard")).unwrap();
    std::fs::write(tree.join("big"), noise(5, 3 << 20)).unwrap();
    let take = |runtime: tokio::runtime::Runtime| {
        let (tree, store) = (tree.clone(), tempfile::tempdir().unwrap());
        runtime.block_on(async move {
            let repo = Repository::open_local(store.path()).await.unwrap();
            let fs = vfs_drivers::host::HostFs::new(&tree).unwrap();
            let options = SnapshotOptions {
                normalize: true,
                ..SnapshotOptions::default()
            };
            let (id, stats) = repo
                .snapshot(&fs, &VfsPath::root(), &options)
                .await
                .unwrap();
            (id, stats.files, stats.dirs, stats.symlinks)
        })
    };
    let one = take(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
    let many = take(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    assert_eq!(one, many);
    assert_eq!((one.1, one.2, one.3), (12 * 25 + 2, 1 + 12 * 2, 12));
}

/// The id of a fixed tree is fixed: it depends on the tree's content and FORMAT.md's
/// encoding only, not on the machine, the driver's inode numbers, how the walk is done or
/// how packs are named. A change here is a format change (FORMAT.md's version).
#[tokio::test]
async fn a_fixed_tree_has_a_fixed_id() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &opts())
        .await
        .unwrap();
    assert_eq!(id.to_string(), GOLDEN_ID);
}

const GOLDEN_ID: &str = "361f5cf6d52e1b5c0e8c8667742465ccdf9e11b8326f2430554410a3b01d3d1e";

/// host_dir's fast paths (one listing with metadata per directory, xattrs through the
/// open file) capture what the generic calls capture: the same tree, the same id.
#[tokio::test(flavor = "multi_thread")]
async fn host_fast_paths_give_the_ids_of_the_generic_calls() {
    let (_store, repo) = repo().await;
    let tree = tempfile::tempdir().unwrap();
    let host: Arc<dyn FileSystem> = Arc::new(vfs_drivers::host::HostFs::new(tree.path()).unwrap());
    assert!(
        host.capabilities().xattrs,
        "the test needs user xattrs on the host"
    );
    populate(host.as_ref()).await;
    let generic = vfs_core::conformance::Forward::new(host.clone(), "generic").with_xattrs();
    let root = VfsPath::root();
    let (fast, _) = repo.snapshot(host.as_ref(), &root, &opts()).await.unwrap();
    let (slow, _) = repo.snapshot(&generic, &root, &opts()).await.unwrap();
    assert_eq!(fast, slow);

    // The file's xattr is in the id: removing it changes the id, through both paths.
    host.remove_xattr(&p("/etc/hosts"), "user.origin")
        .await
        .unwrap();
    let (fast_bare, _) = repo.snapshot(host.as_ref(), &root, &opts()).await.unwrap();
    let (slow_bare, _) = repo.snapshot(&generic, &root, &opts()).await.unwrap();
    assert_ne!(fast_bare, fast);
    assert_eq!(fast_bare, slow_bare);
}
