//! The read-only `snapshot` driver.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use vfs_core::{
    DriverDescriptor, DriverRegistry, ErrorKind, FileKind, FileSystem, OpenOptions, SetTime,
    VfsPath, XattrMode,
};
use vfs_snapshot::{register_snapshot_driver, Repository, SnapshotFs, SnapshotOptions};

/// `describe` without hard-link grouping: the driver reports nlink 1 (see SnapshotFs).
async fn describe_plain(
    fs: &dyn FileSystem,
    root: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut out = describe(fs, root).await;
    for line in out.values_mut() {
        if let Some(at) = line.find(" link=") {
            let rest = &line[at + 6..];
            let end = rest.find(' ').unwrap_or(rest.len());
            *line = format!("{}{}", &line[..at], &rest[end..]);
        }
    }
    out
}

async fn mounted() -> (
    tempfile::TempDir,
    Arc<Repository>,
    Arc<vfs_drivers::MemoryFs>,
    SnapshotFs,
) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = populated().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();
    let snap = SnapshotFs::new(repo.clone(), id).await.unwrap();
    (dir, repo, fs, snap)
}

#[tokio::test]
async fn reads_equal_the_source() {
    let (_dir, _repo, fs, snap) = mounted().await;
    assert_eq!(
        describe_plain(&snap, "/").await,
        describe_plain(fs.as_ref(), "/").await
    );
    // Hard links share an inode number.
    let a = snap.stat(&p("/etc/hosts")).await.unwrap();
    let b = snap.stat(&p("/srv/hosts.hard")).await.unwrap();
    let c = snap.lstat(&p("/home/hosts.hard")).await.unwrap();
    assert!(a.ino == b.ino && b.ino == c.ino);
    assert_ne!(a.ino, snap.stat(&p("/etc/empty")).await.unwrap().ino);
    // read_dir gives kinds and the same names.
    let mut names: Vec<(String, FileKind)> = snap
        .read_dir(&p("/srv"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    let mut want: Vec<(String, FileKind)> = fs
        .read_dir(&p("/srv"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(names, want);
    // Symlinks: read_link, and lookups through them (absolute and relative).
    assert_eq!(snap.read_link(&p("/srv/user")).await.unwrap(), "/home/user");
    assert_eq!(
        snap.read_file(&p("/srv/user/notes.txt")).await.unwrap(),
        Bytes::from_static(b"hello")
    );
    assert_eq!(snap.stat(&p("/etc/hosts.link")).await.unwrap().size, a.size);
    assert_eq!(
        snap.lstat(&p("/etc/hosts.link")).await.unwrap().kind,
        FileKind::Symlink
    );
    assert_eq!(
        snap.stat(&p("/srv/dangling")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        snap.stat(&p("/etc/hosts/x")).await.unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        snap.read_link(&p("/etc/hosts")).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        snap.get_xattr(&p("/etc/hosts"), "user.origin")
            .await
            .unwrap(),
        Bytes::from_static(b"test")
    );
    assert_eq!(
        snap.get_xattr(&p("/etc/hosts"), "user.none")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NoAttribute
    );
    assert_eq!(
        snap.realpath(&p("/srv/user/notes.txt")).await.unwrap(),
        p("/home/user/notes.txt")
    );
}

#[tokio::test]
async fn pread_across_chunk_boundaries_with_a_tiny_cache() {
    let (_dir, repo, fs, snap) = mounted().await;
    let small = SnapshotFs::with_cache(repo, snap.id(), 1).await.unwrap();
    let path = p("/home/user/big.bin");
    let size = fs.stat(&path).await.unwrap().size;
    let whole = fs.read_file(&path).await.unwrap();
    assert_eq!(snap.read_file(&path).await.unwrap(), whole);
    let cuts = [
        (0u64, 10usize),
        (256 * 1024 - 3, 10),
        (1 << 20, 3 << 20),
        (size - 5, 100),
        (size, 10),
        (size + 100, 10),
        (12345, 0),
        (0, size as usize + 10),
    ];
    for (offset, len) in cuts {
        let want = fs.pread(&path, offset, len).await.unwrap();
        assert_eq!(
            snap.pread(&path, offset, len).await.unwrap(),
            want,
            "{offset}+{len}"
        );
        assert_eq!(
            small.pread(&path, offset, len).await.unwrap(),
            want,
            "{offset}+{len}"
        );
    }
}

#[tokio::test]
async fn every_mutation_is_erofs() {
    let (_dir, _repo, _fs, snap) = mounted().await;
    assert!(snap.capabilities().read_only);
    assert_eq!(snap.kind(), "snapshot");
    let f = p("/etc/hosts");
    let results = vec![
        snap.write_file(&f, Bytes::from_static(b"x")).await.err(),
        snap.write_file(&p("/new"), Bytes::from_static(b"x"))
            .await
            .err(),
        snap.create_dir(&p("/d"), 0o755).await.err(),
        snap.remove_file(&f).await.err(),
        snap.remove_dir(&p("/srv")).await.err(),
        snap.rename(&f, &p("/moved")).await.err(),
        snap.symlink("x", &p("/l")).await.err(),
        snap.hard_link(&f, &p("/h")).await.err(),
        snap.set_permissions(&f, 0o600).await.err(),
        snap.set_owner(&f, Some(1), None).await.err(),
        snap.set_times(&f, SetTime::Now, SetTime::Now).await.err(),
        snap.set_xattr(&f, "user.x", Bytes::new(), XattrMode::Upsert)
            .await
            .err(),
        snap.remove_xattr(&f, "user.origin").await.err(),
        snap.truncate(&f, 0).await.err(),
        snap.open(&f, OpenOptions::new().write(true)).await.err(),
    ];
    for (i, err) in results.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("mutation {i} succeeded"));
        assert_eq!(err.kind(), ErrorKind::ReadOnly, "mutation {i}: {err}");
    }
    assert_eq!(
        snap.open(&p("/etc"), OpenOptions::read_only())
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::IsADirectory)
    );
}

#[tokio::test]
async fn symlink_loops_are_eloop() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = vfs_drivers::MemoryFs::new();
    fs.symlink("b", &p("/a")).await.unwrap();
    fs.symlink("a", &p("/b")).await.unwrap();
    fs.symlink("../../..", &p("/up")).await.unwrap();
    let (id, _) = repo
        .snapshot(&fs, &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();
    let snap = SnapshotFs::new(repo, id).await.unwrap();
    assert_eq!(
        snap.stat(&p("/a")).await.unwrap_err().kind(),
        ErrorKind::Loop
    );
    // `..` stops at the root.
    assert!(snap.stat(&p("/up")).await.unwrap().is_dir());
}

#[tokio::test]
async fn the_registry_builds_snapshot_mounts() {
    let (dir, repo, fs, snap) = mounted().await;
    repo.tag("base", &snap.id()).await.unwrap();
    let registry = DriverRegistry::new();
    register_snapshot_driver(&registry).unwrap();
    let repo_dir = dir.path().display().to_string();
    for name in ["base".to_owned(), snap.id().to_hex()] {
        let mounted = registry
            .build(&DriverDescriptor::new(
                "snapshot",
                serde_json::json!({"repository": repo_dir, "snapshot": name, "cacheBytes": 1024}),
            ))
            .await
            .unwrap();
        assert_eq!(
            mounted.read_file(&p("/etc/hosts")).await.unwrap(),
            fs.read_file(&p("/etc/hosts")).await.unwrap()
        );
    }
    let bad = [
        serde_json::json!({"repository": repo_dir}),
        serde_json::json!({"repository": repo_dir, "snapshot": "base", "extra": 1}),
        serde_json::json!({"repository": repo_dir, "snapshot": "no-such-tag"}),
        serde_json::json!({"repository": repo_dir, "snapshot": "0".repeat(64)}),
    ];
    for config in bad {
        let err = registry
            .build(&DriverDescriptor::new("snapshot", config.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{config} was accepted"));
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::Io
            ),
            "{config}: {err}"
        );
    }
}
