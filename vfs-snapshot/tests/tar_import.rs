//! Import of tar and tar.zst: round trips to the same id, and hostile archives refused
//! with a clear error and no snapshot.

mod common;

use common::*;
use vfs_core::{ErrorKind, FileSystem, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{ImportOptions, Repository, RestoreOptions, SnapshotOptions};

async fn new_repo() -> (tempfile::TempDir, std::sync::Arc<Repository>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    (dir, repo)
}

#[tokio::test]
async fn export_then_import_gives_the_same_id() {
    let (_dir, repo) = new_repo().await;
    let fs = populated().await;
    let long_dir = format!("/{}", "d".repeat(120));
    fs.create_dir(&p(&long_dir), 0o755).await.unwrap();
    write(
        fs.as_ref(),
        &format!("{long_dir}/{}", "é".repeat(60)),
        "long",
    )
    .await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();

    let mut tar_bytes = Vec::new();
    repo.export_tar(&id, &mut tar_bytes).await.unwrap();
    let (imported, stats) = repo
        .import_tar(std::io::Cursor::new(tar_bytes), &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(imported, id);
    assert_eq!(
        stats.chunks_new, 0,
        "everything dedups against the snapshot"
    );

    let mut zst = Vec::new();
    repo.export_tar_zst(&id, &mut zst, 3).await.unwrap();
    let (from_zst, _) = repo
        .import_tar_zst(std::io::Cursor::new(zst), &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(from_zst, id);

    // And into a fresh store, restored, it is the same tree.
    let (_d2, other) = new_repo().await;
    let mut tar_bytes = Vec::new();
    repo.export_tar(&id, &mut tar_bytes).await.unwrap();
    let (again, _) = other
        .import_tar(std::io::Cursor::new(tar_bytes), &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(again, id);
    let target = MemoryFs::new();
    other
        .restore(&again, &target, &p("/r"), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        describe(fs.as_ref(), "/").await,
        describe(&target, "/r").await
    );
}

#[tokio::test]
async fn gnu_tar_archives_import() {
    if std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no tar on this machine; skipped");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("a/b")).unwrap();
    std::fs::write(src.path().join("a/b/file"), noise(5, 300_000)).unwrap();
    std::fs::write(src.path().join("top"), "top").unwrap();
    std::fs::hard_link(src.path().join("top"), src.path().join("a/top.link")).unwrap();
    std::os::unix::fs::symlink("b/file", src.path().join("a/sym")).unwrap();
    let out = std::process::Command::new("tar")
        .args(["--format=pax", "-C"])
        .arg(src.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_dir, repo) = new_repo().await;
    let (id, stats) = repo
        .import_tar(std::io::Cursor::new(out.stdout), &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((stats.files, stats.symlinks, stats.dirs), (3, 1, 3));
    let target = MemoryFs::new();
    let rs = repo
        .restore(&id, &target, &p("/r"), &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(rs.hardlinks, 1);
    assert_eq!(
        target.read_file(&p("/r/a/b/file")).await.unwrap(),
        noise(5, 300_000)
    );
    assert_eq!(target.read_link(&p("/r/a/sym")).await.unwrap(), "b/file");
    let meta = target.lstat(&p("/r/top")).await.unwrap();
    assert_eq!(meta.nlink, 2);
}

/// A raw ustar header with any name bytes (the tar crate refuses unsafe ones).
fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        h.set_device_major(4).unwrap();
        h.set_device_minor(1).unwrap();
    }
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// One raw entry: name, type, content, link name.
type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

fn archive(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend(raw_header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

use tar::EntryType as T;

#[tokio::test]
async fn hostile_archives_are_refused_without_a_snapshot() {
    let (_dir, repo) = new_repo().await;
    let ok = archive(&[(b"a", T::Regular, b"x", b"")]);
    let mut truncated = ok.clone();
    truncated.truncate(300);
    let mut big_header = archive(&[(b"big", T::Regular, b"", b"")]);
    {
        // Claims 10 bytes of content that are not there.
        let mut h = tar::Header::new_ustar();
        h.set_path("big").unwrap();
        h.set_size(10);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        big_header[..512].copy_from_slice(h.as_bytes());
        big_header.truncate(512 + 5);
    }
    let mut bad_checksum = ok.clone();
    bad_checksum[0] = b'b';
    let cases: Vec<(&str, Vec<u8>, ImportOptions, ErrorKind)> = vec![
        (
            "dotdot",
            archive(&[(b"../x", T::Regular, b"x", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "inner dotdot",
            archive(&[(b"a/../../x", T::Regular, b"x", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "absolute",
            archive(&[(b"/etc/passwd", T::Regular, b"x", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "symlink out",
            archive(&[(b"a/l", T::Symlink, b"", b"../../etc")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "symlink empty",
            archive(&[(b"l", T::Symlink, b"", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "hardlink out",
            archive(&[(b"h", T::Link, b"", b"../x")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "hardlink absolute",
            archive(&[(b"h", T::Link, b"", b"/etc/shadow")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "hardlink missing",
            archive(&[(b"h", T::Link, b"", b"nothere")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "hardlink forward",
            archive(&[(b"h", T::Link, b"", b"a"), (b"a", T::Regular, b"x", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "hardlink to dir",
            archive(&[(b"d/", T::Directory, b"", b""), (b"h", T::Link, b"", b"d")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "hardlink to self",
            archive(&[(b"a", T::Regular, b"x", b""), (b"a", T::Link, b"", b"a")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "char device",
            archive(&[(b"tty", T::Char, b"", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "block device",
            archive(&[(b"sda", T::Block, b"", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "file too big",
            archive(&[(b"a", T::Regular, b"0123456789", b"")]),
            ImportOptions {
                max_file_size: 5,
                ..ImportOptions::default()
            },
            ErrorKind::FileTooLarge,
        ),
        (
            "total too big",
            archive(&[
                (b"a", T::Regular, b"01234", b""),
                (b"b", T::Regular, b"01234", b""),
            ]),
            ImportOptions {
                max_total_size: 8,
                ..ImportOptions::default()
            },
            ErrorKind::FileTooLarge,
        ),
        (
            "too many entries",
            archive(&[(b"a", T::Regular, b"", b""), (b"b", T::Regular, b"", b"")]),
            ImportOptions {
                max_entries: 1,
                ..ImportOptions::default()
            },
            ErrorKind::InvalidInput,
        ),
        (
            "file then dir",
            archive(&[
                (b"a", T::Regular, b"x", b""),
                (b"a/", T::Directory, b"", b""),
            ]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "beneath a file",
            archive(&[
                (b"a", T::Regular, b"x", b""),
                (b"a/b", T::Regular, b"y", b""),
            ]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "root as file",
            archive(&[(b"./", T::Regular, b"x", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "non utf8 name",
            archive(&[(b"\xff\xfe", T::Regular, b"x", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "unsupported type",
            archive(&[(b"s", T::GNUSparse, b"", b"")]),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "truncated content",
            big_header,
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "bad checksum",
            bad_checksum,
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
        (
            "garbage",
            noise(9, 4096),
            ImportOptions::default(),
            ErrorKind::InvalidInput,
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, bytes, options, kind) in cases {
        let result = repo.import_tar(std::io::Cursor::new(bytes), &options).await;
        let err = match result {
            Ok((id, _)) => panic!("{name}: accepted as {id}"),
            Err(err) => err,
        };
        assert_eq!(err.kind(), kind, "{name}: {err}");
        let why = match name {
            "dotdot" | "inner dotdot" | "hardlink out" => "'..'",
            "absolute" | "hardlink absolute" => "absolute",
            "symlink out" => "out of the tree",
            "symlink empty" => "symlink",
            "hardlink missing" | "hardlink forward" => "not before it",
            "hardlink to dir" => "directory",
            "hardlink to self" => "itself",
            "char device" | "block device" => "device",
            "file too big" => "max_file_size",
            "total too big" => "max_total_size",
            "too many entries" => "too many",
            "file then dir" => "twice",
            "beneath a file" => "non-directory",
            "root as file" => "root",
            "non utf8 name" => "UTF-8",
            "truncated content" => "truncated",
            _ => "malformed",
        };
        assert!(err.to_string().contains(why), "{name}: {err}");
        assert!(!err.to_string().is_empty());
    }
    assert!(repo.list_snapshots().await.unwrap().is_empty());
    // Not zstd at all.
    let err = repo
        .import_tar_zst(std::io::Cursor::new(ok.clone()), &ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // The valid one is accepted, and devices are when asked.
    repo.import_tar(std::io::Cursor::new(ok), &ImportOptions::default())
        .await
        .unwrap();
    let dev = archive(&[(b"tty", T::Char, b"", b"")]);
    let options = ImportOptions {
        allow_devices: true,
        ..ImportOptions::default()
    };
    let (_, stats) = repo
        .import_tar(std::io::Cursor::new(dev), &options)
        .await
        .unwrap();
    assert_eq!(stats.specials, 1);
}
