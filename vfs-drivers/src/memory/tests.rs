//! Behaviour specific to the memory driver: accounting, limits, link counts, locking.
//! The generic POSIX semantics are the shared conformance suite's job.

use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{FileSystem, OpenOptions, SetTime, Timestamp, VfsPath, XattrMode};

use super::{MemoryConfig, MemoryFs};

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).unwrap()
}

fn code<T>(result: vfs_core::Result<T>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.code(),
    }
}

fn limited(max_bytes: Option<u64>, max_inodes: Option<u64>) -> MemoryFs {
    MemoryFs::with_config(MemoryConfig {
        max_bytes,
        max_inodes,
        ..MemoryConfig::default()
    })
}

#[tokio::test]
async fn holes_take_no_blocks_and_read_as_zeros() {
    let fs = MemoryFs::new();
    let f = p("/sparse");
    fs.write_file(&f, Bytes::new()).await.unwrap();
    fs.pwrite(&f, 1 << 20, Bytes::from_static(b"x"))
        .await
        .unwrap();
    let meta = fs.stat(&f).await.unwrap();
    assert_eq!(meta.size, (1 << 20) + 1);
    assert_eq!(meta.blocks, 8, "one 4 KiB page");
    assert_eq!(fs.usage.bytes(), 4096);
    let hole = fs.pread(&f, 4096, 8192).await.unwrap();
    assert_eq!(hole.len(), 8192);
    assert!(hole.iter().all(|&b| b == 0));
    let all = fs.read_file(&f).await.unwrap();
    assert_eq!(all.len(), (1 << 20) + 1);
    assert_eq!(all[1 << 20], b'x');
    assert!(all[..1 << 20].iter().all(|&b| b == 0));

    // Extending allocates nothing either.
    fs.truncate(&f, 1 << 30).await.unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().blocks, 8);
}

#[tokio::test]
async fn reads_past_the_written_part_of_a_page_see_zeros() {
    let fs = MemoryFs::new();
    let f = p("/short");
    fs.write_file(&f, Bytes::from_static(b"abc")).await.unwrap();
    fs.truncate(&f, 4096).await.unwrap();
    let all = fs.read_file(&f).await.unwrap();
    assert_eq!((all.len(), &all[..3]), (4096, &b"abc"[..]));
    assert!(all[3..].iter().all(|&b| b == 0));
    assert_eq!(fs.pread(&f, 1, 4).await.unwrap(), &b"bc\0\0"[..]);
    fs.pwrite(&f, 5000, Bytes::from_static(b"z")).await.unwrap();
    let across = fs.pread(&f, 2, 10_000).await.unwrap();
    assert_eq!(across.len(), 4999);
    assert_eq!((across[0], across[4998]), (b'c', b'z'));
    assert!(across[1..4998].iter().all(|&b| b == 0));
}

#[tokio::test]
async fn truncating_down_drops_the_tail_for_good() {
    let fs = MemoryFs::new();
    let f = p("/t");
    fs.write_file(&f, Bytes::from(vec![7u8; 10_000]))
        .await
        .unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().blocks, 24);
    fs.truncate(&f, 5000).await.unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().blocks, 16);
    assert_eq!(fs.usage.bytes(), 8192);
    fs.truncate(&f, 10_000).await.unwrap();
    let data = fs.read_file(&f).await.unwrap();
    assert!(data[..5000].iter().all(|&b| b == 7));
    assert!(
        data[5000..].iter().all(|&b| b == 0),
        "stale bytes came back"
    );
    fs.truncate(&f, 0).await.unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().blocks, 0);
    assert_eq!(fs.usage.bytes(), 0);
}

#[tokio::test]
async fn a_read_keeps_its_bytes_when_the_file_changes() {
    let fs = MemoryFs::new();
    let f = p("/f");
    fs.write_file(&f, Bytes::from_static(b"hello world"))
        .await
        .unwrap();
    let before = fs.pread(&f, 0, 5).await.unwrap();
    let whole = fs.read_file(&f).await.unwrap();
    fs.pwrite(&f, 0, Bytes::from_static(b"HELLO"))
        .await
        .unwrap();
    fs.truncate(&f, 2).await.unwrap();
    assert_eq!(before, "hello");
    assert_eq!(whole, "hello world");
    assert_eq!(fs.read_file(&f).await.unwrap(), "HE");
}

#[tokio::test]
async fn byte_limit_gives_enospc_and_space_comes_back() {
    let fs = limited(Some(8192), None);
    let a = p("/a");
    fs.write_file(&a, Bytes::from(vec![1u8; 8192]))
        .await
        .unwrap();
    assert_eq!(
        code(fs.write_file(&p("/b"), Bytes::from_static(b"x")).await),
        "ENOSPC"
    );
    // The failed write_file still created the file, as open(O_CREAT) + write(2) would.
    assert_eq!(fs.stat(&p("/b")).await.unwrap().size, 0);
    // Holes are free.
    fs.truncate(&p("/b"), 1 << 40).await.unwrap();

    let statfs = fs.statfs(&VfsPath::root()).await.unwrap();
    assert_eq!(
        (statfs.block_size, statfs.blocks, statfs.blocks_free),
        (4096, 2, 0)
    );

    // An open handle keeps an unlinked file's space until it goes.
    let handle = fs.open(&a, OpenOptions::read_only()).await.unwrap();
    fs.remove_file(&a).await.unwrap();
    assert_eq!(
        code(fs.write_file(&p("/c"), Bytes::from_static(b"x")).await),
        "ENOSPC"
    );
    assert_eq!(handle.read_at(0, 3).await.unwrap(), &[1u8, 1, 1][..]);
    drop(handle);
    fs.write_file(&p("/c"), Bytes::from(vec![2u8; 4096]))
        .await
        .unwrap();

    // A write that only partly fits is short, then fails.
    let handle = fs
        .open(&p("/c"), OpenOptions::new().write(true))
        .await
        .unwrap();
    assert_eq!(
        handle
            .write_at(4000, Bytes::from(vec![3u8; 8192]))
            .await
            .unwrap(),
        4096 + 96
    );
    assert_eq!(
        code(handle.write_at(8192, Bytes::from_static(b"y")).await),
        "ENOSPC"
    );
    assert_eq!(fs.stat(&p("/c")).await.unwrap().size, 8192);
    // Overwriting within allocated pages needs no new space.
    fs.pwrite(&p("/c"), 0, Bytes::from(vec![4u8; 8192]))
        .await
        .unwrap();
    // Replacing a file's whole content reuses its space.
    fs.write_file(&p("/c"), Bytes::from(vec![5u8; 8192]))
        .await
        .unwrap();
}

#[tokio::test]
async fn inode_limit_counts_the_root_and_every_kind() {
    let fs = limited(None, Some(4));
    fs.create_dir(&p("/d"), 0o755).await.unwrap();
    fs.write_file(&p("/f"), Bytes::new()).await.unwrap();
    fs.symlink("f", &p("/l")).await.unwrap();
    assert_eq!(code(fs.create_dir(&p("/d2"), 0o755).await), "ENOSPC");
    assert_eq!(code(fs.write_file(&p("/f2"), Bytes::new()).await), "ENOSPC");
    assert_eq!(code(fs.symlink("f", &p("/l2")).await), "ENOSPC");
    // EEXIST comes before ENOSPC, and hard links take no inode.
    assert_eq!(code(fs.create_dir(&p("/d"), 0o755).await), "EEXIST");
    fs.hard_link(&p("/f"), &p("/f3")).await.unwrap();
    let statfs = fs.statfs(&p("/d")).await.unwrap();
    assert_eq!((statfs.files, statfs.files_free), (4, 0));
    fs.remove_file(&p("/l")).await.unwrap();
    fs.symlink("f", &p("/l2")).await.unwrap();
}

#[tokio::test]
async fn directory_link_counts_follow_subdirectories() {
    let fs = MemoryFs::new();
    let nlink = |path: &'static str| {
        let fs = &fs;
        async move { fs.stat(&p(path)).await.unwrap().nlink }
    };
    assert_eq!(nlink("/").await, 2);
    fs.create_dir(&p("/a"), 0o755).await.unwrap();
    fs.create_dir(&p("/a/b"), 0o755).await.unwrap();
    fs.create_dir(&p("/a/c"), 0o755).await.unwrap();
    fs.write_file(&p("/a/file"), Bytes::new()).await.unwrap();
    assert_eq!(nlink("/").await, 3);
    assert_eq!(nlink("/a").await, 4);
    assert_eq!(nlink("/a/b").await, 2);
    fs.rename(&p("/a/b"), &p("/b")).await.unwrap();
    assert_eq!((nlink("/").await, nlink("/a").await), (4, 3));
    // Over an empty directory: the victim's link to its parent goes.
    fs.rename(&p("/b"), &p("/a/c")).await.unwrap();
    assert_eq!((nlink("/").await, nlink("/a").await), (3, 3));
    fs.remove_dir(&p("/a/c")).await.unwrap();
    assert_eq!(nlink("/a").await, 2);
    // A removed directory still open reports no links.
    fs.create_dir(&p("/gone"), 0o755).await.unwrap();
    let handle = fs
        .open(&p("/gone"), OpenOptions::read_only())
        .await
        .unwrap();
    fs.remove_dir(&p("/gone")).await.unwrap();
    assert_eq!(handle.stat().await.unwrap().nlink, 0);
    assert_eq!(code(handle.read_at(0, 1).await), "EISDIR");
    // tmpfs sizes a directory at 20 bytes per entry, `.` and `..` included.
    assert_eq!(fs.stat(&p("/a")).await.unwrap().size, 60);
}

#[tokio::test]
async fn hard_links_share_the_inode() {
    let fs = MemoryFs::new();
    fs.write_file(&p("/a"), Bytes::from_static(b"one"))
        .await
        .unwrap();
    fs.hard_link(&p("/a"), &p("/b")).await.unwrap();
    let (a, b) = (
        fs.stat(&p("/a")).await.unwrap(),
        fs.stat(&p("/b")).await.unwrap(),
    );
    assert_eq!((a.ino, a.nlink), (b.ino, 2));
    fs.write_file(&p("/b"), Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(fs.read_file(&p("/a")).await.unwrap(), "two");
    // Renaming one link onto another of the same inode changes nothing.
    fs.rename(&p("/a"), &p("/b")).await.unwrap();
    assert!(fs.exists(&p("/a")).await.unwrap());
    assert_eq!(fs.stat(&p("/a")).await.unwrap().nlink, 2);
    fs.remove_file(&p("/a")).await.unwrap();
    assert_eq!(fs.stat(&p("/b")).await.unwrap().nlink, 1);
    fs.create_dir(&p("/d"), 0o755).await.unwrap();
    assert_eq!(code(fs.hard_link(&p("/d"), &p("/d2")).await), "EPERM");
    assert_eq!(code(fs.hard_link(&p("/d"), &p("/b")).await), "EEXIST");
    // A link to a symlink links the symlink itself.
    fs.symlink("nowhere", &p("/s")).await.unwrap();
    fs.hard_link(&p("/s"), &p("/s2")).await.unwrap();
    assert_eq!(fs.read_link(&p("/s2")).await.unwrap(), "nowhere");
}

#[tokio::test]
async fn symlinks_resolve_like_linux() {
    let fs = MemoryFs::new();
    fs.create_dir(&p("/a"), 0o755).await.unwrap();
    fs.create_dir(&p("/a/b"), 0o755).await.unwrap();
    fs.write_file(&p("/a/b/f"), Bytes::from_static(b"data"))
        .await
        .unwrap();
    fs.symlink("../a/b", &p("/a/up")).await.unwrap();
    fs.symlink("/a/b/f", &p("/abs")).await.unwrap();
    fs.symlink("b/", &p("/a/slash")).await.unwrap();
    assert_eq!(fs.read_file(&p("/a/up/f")).await.unwrap(), "data");
    assert_eq!(fs.read_file(&p("/abs")).await.unwrap(), "data");
    assert!(fs.stat(&p("/a/slash")).await.unwrap().is_dir());
    assert!(
        fs.lstat(&p("/a/up/")).await.unwrap().is_dir(),
        "a trailing slash follows"
    );
    assert!(fs.lstat(&p("/a/up")).await.unwrap().is_symlink());
    assert_eq!(fs.realpath(&p("/a/up/f")).await.unwrap().as_str(), "/a/b/f");
    assert_eq!(code(fs.stat(&p("/abs/")).await), "ENOTDIR");
    assert_eq!(code(fs.read_link(&p("/a")).await), "EINVAL");

    fs.symlink("loop2", &p("/loop1")).await.unwrap();
    fs.symlink("loop1", &p("/loop2")).await.unwrap();
    assert_eq!(code(fs.stat(&p("/loop1")).await), "ELOOP");
    assert!(fs.lstat(&p("/loop1")).await.unwrap().is_symlink());
    assert_eq!(
        code(fs.write_file(&p("/loop1"), Bytes::new()).await),
        "ELOOP"
    );

    // A chain of exactly 40 symlinks resolves; 41 do not.
    fs.write_file(&p("/end"), Bytes::from_static(b"end"))
        .await
        .unwrap();
    fs.symlink("end", &p("/c0")).await.unwrap();
    for i in 1..41 {
        fs.symlink(&format!("c{}", i - 1), &p(&format!("/c{i}")))
            .await
            .unwrap();
    }
    assert_eq!(fs.read_file(&p("/c39")).await.unwrap(), "end");
    assert_eq!(code(fs.read_file(&p("/c40")).await), "ELOOP");

    // O_CREAT through a dangling symlink creates its target; O_EXCL refuses it.
    fs.symlink("b/new", &p("/a/dangling")).await.unwrap();
    assert_eq!(
        code(
            fs.open(
                &p("/a/dangling"),
                OpenOptions::new().write(true).create_new(true)
            )
            .await
        ),
        "EEXIST"
    );
    assert!(!fs.exists(&p("/a/dangling")).await.unwrap());
    fs.write_file(&p("/a/dangling"), Bytes::from_static(b"made"))
        .await
        .unwrap();
    assert_eq!(fs.read_file(&p("/a/b/new")).await.unwrap(), "made");
    assert!(fs.lstat(&p("/a/dangling")).await.unwrap().is_symlink());
    // `..` cannot climb out of the root.
    fs.symlink("../../../a", &p("/a/b/high")).await.unwrap();
    assert!(fs.stat(&p("/a/b/high/b/f")).await.unwrap().is_file());
}

#[tokio::test]
async fn create_dir_all_and_realpath_match_linux() {
    let fs = MemoryFs::new();
    fs.create_dir_all(&p("/x/y/z"), 0o700).await.unwrap();
    fs.create_dir_all(&p("/x/y"), 0o755).await.unwrap();
    assert_eq!(fs.stat(&p("/x/y")).await.unwrap().mode, 0o700);
    fs.write_file(&p("/x/f"), Bytes::new()).await.unwrap();
    assert_eq!(code(fs.create_dir_all(&p("/x/f"), 0o755).await), "EEXIST");
    assert_eq!(
        code(fs.create_dir_all(&p("/x/f/g"), 0o755).await),
        "ENOTDIR"
    );
    fs.symlink("y", &p("/x/ly")).await.unwrap();
    fs.create_dir_all(&p("/x/ly/new"), 0o755).await.unwrap();
    assert!(fs.stat(&p("/x/y/new")).await.unwrap().is_dir());

    fs.symlink("f/", &p("/x/lf")).await.unwrap();
    fs.symlink("../../../x/./y/..", &p("/x/y/z/up"))
        .await
        .unwrap();
    fs.symlink("/x/y/z/up/ly", &p("/abs")).await.unwrap();
    let real = |path: &'static str| {
        let fs = &fs;
        async move {
            fs.realpath(&p(path))
                .await
                .map(|path| path.as_str().to_owned())
        }
    };
    assert_eq!(code(real("/x/lf").await), "ENOTDIR");
    assert_eq!(real("/x/y/z/up").await.unwrap(), "/x");
    assert_eq!(real("/abs/z/").await.unwrap(), "/x/y/z");
    assert_eq!(real("/").await.unwrap(), "/");
    assert_eq!(code(real("/x/f/").await), "ENOTDIR");
    assert_eq!(code(real("/x/nope").await), "ENOENT");
}

#[tokio::test]
async fn rename_rules() {
    let fs = MemoryFs::new();
    for dir in ["/a", "/a/b", "/a/b/c", "/e", "/full"] {
        fs.create_dir(&p(dir), 0o755).await.unwrap();
    }
    fs.write_file(&p("/full/x"), Bytes::new()).await.unwrap();
    fs.write_file(&p("/f"), Bytes::from_static(b"f"))
        .await
        .unwrap();
    assert_eq!(code(fs.rename(&p("/a"), &p("/a/b/c/a")).await), "EINVAL");
    assert_eq!(code(fs.rename(&p("/a"), &p("/a/b")).await), "EINVAL");
    assert_eq!(code(fs.rename(&p("/a/b/c"), &p("/a")).await), "ENOTEMPTY");
    assert_eq!(code(fs.rename(&p("/e"), &p("/full")).await), "ENOTEMPTY");
    assert_eq!(code(fs.rename(&p("/f"), &p("/e")).await), "EISDIR");
    assert_eq!(code(fs.rename(&p("/e"), &p("/f")).await), "ENOTDIR");
    assert_eq!(code(fs.rename(&p("/"), &p("/z")).await), "EBUSY");
    assert_eq!(code(fs.rename(&p("/e"), &p("/")).await), "EBUSY");
    assert_eq!(code(fs.rename(&p("/nope"), &p("/z")).await), "ENOENT");
    assert_eq!(code(fs.rename(&p("/f"), &p("/nope/z")).await), "ENOENT");
    assert_eq!(code(fs.rename(&p("/f/"), &p("/z")).await), "ENOTDIR");
    fs.rename(&p("/f"), &p("/f")).await.unwrap();
    fs.rename(&p("/a"), &p("/a")).await.unwrap();

    // A handle keeps the replaced file.
    fs.write_file(&p("/g"), Bytes::from_static(b"g"))
        .await
        .unwrap();
    let old = fs.open(&p("/g"), OpenOptions::read_only()).await.unwrap();
    let before = fs.stat(&p("/e")).await.unwrap().mtime;
    fs.rename(&p("/f"), &p("/g")).await.unwrap();
    assert_eq!(old.read_at(0, 10).await.unwrap(), "g");
    assert_eq!(old.stat().await.unwrap().nlink, 0);
    assert_eq!(fs.read_file(&p("/g")).await.unwrap(), "f");
    assert!(!fs.exists(&p("/f")).await.unwrap());

    // Across directories, a directory moves with its subtree and its `..`.
    fs.rename(&p("/a/b"), &p("/e/b")).await.unwrap();
    assert!(fs.stat(&p("/e/b/c")).await.unwrap().is_dir());
    fs.symlink("../..", &p("/e/b/c/up")).await.unwrap();
    assert!(fs.stat(&p("/e/b/c/up/b")).await.unwrap().is_dir());
    assert!(fs.stat(&p("/e")).await.unwrap().mtime >= before);
    // Moving a directory over an empty one.
    fs.rename(&p("/e/b/c"), &p("/a")).await.unwrap();
    assert!(fs.stat(&p("/a/up")).await.unwrap().is_dir());
}

#[tokio::test]
async fn timestamps_follow_posix() {
    let fs = MemoryFs::new();
    let f = p("/f");
    let dir = p("/d");
    fs.create_dir(&dir, 0o755).await.unwrap();
    let f_in = p("/d/f");
    let t0 = fs.stat(&dir).await.unwrap();
    fs.write_file(&f_in, Bytes::from_static(b"x"))
        .await
        .unwrap();
    let t1 = fs.stat(&dir).await.unwrap();
    assert!(t1.mtime >= t0.mtime && t1.ctime >= t0.ctime);
    let created = fs.stat(&f_in).await.unwrap();
    assert_eq!(created.atime, created.btime);
    assert_eq!(created.mtime, created.ctime);

    fs.write_file(&f, Bytes::from_static(b"x")).await.unwrap();
    let set = Timestamp::from_parts(1_000, 5);
    fs.set_times(&f, SetTime::At(set), SetTime::At(set))
        .await
        .unwrap();
    let meta = fs.stat(&f).await.unwrap();
    assert_eq!((meta.atime, meta.mtime), (set, set));
    assert!(meta.ctime > set);

    fs.set_permissions(&f, 0o600).await.unwrap();
    let after_chmod = fs.stat(&f).await.unwrap();
    assert_eq!(after_chmod.mtime, set, "chmod leaves mtime");
    assert!(after_chmod.ctime >= meta.ctime);

    fs.set_times(&f, SetTime::Omit, SetTime::Omit)
        .await
        .unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().ctime, after_chmod.ctime);

    fs.pread(&f, 0, 1).await.unwrap();
    assert_eq!(
        fs.stat(&f).await.unwrap().atime,
        set,
        "reads leave atime (noatime)"
    );
    fs.pwrite(&f, 0, Bytes::from_static(b"y")).await.unwrap();
    assert!(fs.stat(&f).await.unwrap().mtime > set);

    // Truncating to the same size changes nothing; O_TRUNC always touches.
    fs.set_times(&f, SetTime::Now, SetTime::At(set))
        .await
        .unwrap();
    fs.truncate(&f, 1).await.unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().mtime, set);
    fs.truncate(&f, 0).await.unwrap();
    assert!(fs.stat(&f).await.unwrap().mtime > set);
    fs.set_times(&f, SetTime::Now, SetTime::At(set))
        .await
        .unwrap();
    fs.open(&f, OpenOptions::new().write(true).truncate(true))
        .await
        .unwrap();
    assert!(fs.stat(&f).await.unwrap().mtime > set);
}

#[tokio::test]
async fn modes_and_owners() {
    let fs = MemoryFs::with_config(MemoryConfig {
        uid: 1000,
        gid: 100,
        ..MemoryConfig::default()
    });
    let root = fs.stat(&VfsPath::root()).await.unwrap();
    assert_eq!(
        (root.ino, root.mode, root.uid, root.gid),
        (1, 0o755, 1000, 100)
    );
    fs.create_dir(&p("/d"), 0o7777).await.unwrap();
    assert_eq!(fs.stat(&p("/d")).await.unwrap().mode, 0o1777);
    fs.open(
        &p("/f"),
        OpenOptions::new().write(true).create(true).mode(0o4755),
    )
    .await
    .unwrap();
    assert_eq!(fs.stat(&p("/f")).await.unwrap().mode, 0o4755);
    fs.set_owner(&p("/f"), None, Some(5)).await.unwrap();
    let meta = fs.stat(&p("/f")).await.unwrap();
    assert_eq!(
        (meta.mode, meta.uid, meta.gid),
        (0o755, 1000, 5),
        "chown drops setuid"
    );
    fs.set_permissions(&p("/d"), 0o2775).await.unwrap();
    fs.set_owner(&p("/d"), Some(7), Some(8)).await.unwrap();
    fs.create_dir(&p("/d/sub"), 0o755).await.unwrap();
    fs.write_file(&p("/d/file"), Bytes::new()).await.unwrap();
    let sub = fs.stat(&p("/d/sub")).await.unwrap();
    assert_eq!(
        (sub.mode, sub.uid, sub.gid),
        (0o2755, 1000, 8),
        "setgid is inherited"
    );
    let file = fs.stat(&p("/d/file")).await.unwrap();
    assert_eq!((file.mode, file.gid), (0o644, 8));
    assert_eq!(
        fs.stat(&p("/d")).await.unwrap().mode,
        0o2775,
        "chown keeps a dir's setgid"
    );
    fs.symlink("f", &p("/l")).await.unwrap();
    assert_eq!(fs.lstat(&p("/l")).await.unwrap().mode, 0o777);
    assert_eq!(fs.lstat(&p("/l")).await.unwrap().size, 1);
}

#[tokio::test]
async fn xattrs_follow_linux_limits() {
    let fs = MemoryFs::new();
    let f = p("/f");
    fs.write_file(&f, Bytes::new()).await.unwrap();
    let value = Bytes::from_static(b"v");
    fs.set_xattr(&f, "user.a", value.clone(), XattrMode::Upsert)
        .await
        .unwrap();
    fs.set_xattr(&f, "trusted.b", value.clone(), XattrMode::CreateOnly)
        .await
        .unwrap();
    assert_eq!(fs.get_xattr(&f, "user.a").await.unwrap(), "v");
    assert_eq!(fs.list_xattrs(&f).await.unwrap(), ["trusted.b", "user.a"]);
    assert_eq!(
        code(
            fs.set_xattr(&f, "user.a", value.clone(), XattrMode::CreateOnly)
                .await
        ),
        "EEXIST"
    );
    assert_eq!(
        code(
            fs.set_xattr(&f, "user.z", value.clone(), XattrMode::ReplaceOnly)
                .await
        ),
        "ENODATA"
    );
    assert_eq!(code(fs.get_xattr(&f, "user.z").await), "ENODATA");
    assert_eq!(code(fs.remove_xattr(&f, "user.z").await), "ENODATA");
    assert_eq!(
        code(
            fs.set_xattr(&f, "other.a", value.clone(), XattrMode::Upsert)
                .await
        ),
        "ENOTSUP"
    );
    assert_eq!(
        code(
            fs.set_xattr(&f, "user.", value.clone(), XattrMode::Upsert)
                .await
        ),
        "EINVAL"
    );
    assert_eq!(
        code(fs.set_xattr(&f, "", value.clone(), XattrMode::Upsert).await),
        "ERANGE"
    );
    let long = format!("user.{}", "n".repeat(251));
    assert_eq!(
        code(
            fs.set_xattr(&f, &long, value.clone(), XattrMode::Upsert)
                .await
        ),
        "ERANGE"
    );
    fs.set_xattr(&f, &long[..255], value.clone(), XattrMode::Upsert)
        .await
        .unwrap();
    let big = Bytes::from(vec![0u8; 65537]);
    assert_eq!(
        code(fs.set_xattr(&f, "user.big", big, XattrMode::Upsert).await),
        "ERANGE"
    );
    fs.set_xattr(
        &f,
        "user.max",
        Bytes::from(vec![0u8; 65536]),
        XattrMode::Upsert,
    )
    .await
    .unwrap();
    // Name checks come before the path lookup, as on Linux 6.13 and later.
    assert_eq!(
        code(
            fs.set_xattr(&p("/nope"), "", value.clone(), XattrMode::Upsert)
                .await
        ),
        "ERANGE"
    );
    assert_eq!(code(fs.get_xattr(&p("/nope"), "").await), "ERANGE");
    assert_eq!(code(fs.get_xattr(&p("/nope"), "user.x").await), "ENOENT");
    fs.remove_xattr(&f, "user.a").await.unwrap();
    assert_eq!(code(fs.get_xattr(&f, "user.a").await), "ENODATA");
}

#[tokio::test]
async fn handle_access_modes() {
    let fs = MemoryFs::new();
    let f = p("/f");
    fs.write_file(&f, Bytes::from_static(b"abc")).await.unwrap();
    let read_only = fs.open(&f, OpenOptions::read_only()).await.unwrap();
    assert_eq!(
        code(read_only.write_at(0, Bytes::from_static(b"x")).await),
        "EBADF"
    );
    assert_eq!(code(read_only.set_len(0).await), "EINVAL");
    let write_only = fs.open(&f, OpenOptions::new().write(true)).await.unwrap();
    assert_eq!(code(write_only.read_at(0, 1).await), "EBADF");
    // No access flag at all opens for reading, like O_RDONLY.
    let none = fs.open(&f, OpenOptions::new()).await.unwrap();
    assert_eq!(none.read_at(1, 10).await.unwrap(), "bc");
    let append = fs.open(&f, OpenOptions::new().append(true)).await.unwrap();
    append.write_at(0, Bytes::from_static(b"d")).await.unwrap();
    assert_eq!(fs.read_file(&f).await.unwrap(), "abcd");
    assert_eq!(
        code(
            write_only
                .write_at(u64::MAX, Bytes::from_static(b"x"))
                .await
        ),
        "EINVAL"
    );
    assert_eq!(
        code(
            write_only
                .write_at(i64::MAX as u64, Bytes::from_static(b"x"))
                .await
        ),
        "EFBIG"
    );
    assert_eq!(code(fs.truncate(&f, u64::MAX).await), "EINVAL");
    assert_eq!(read_only.read_at(1 << 40, 10).await.unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_lose_nothing() {
    const TASKS: usize = 8;
    const APPENDS: usize = 500;
    let fs = Arc::new(MemoryFs::new());
    let log = p("/log");
    fs.write_file(&log, Bytes::new()).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let fs = Arc::clone(&fs);
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let handle = fs
                .open(&log, OpenOptions::new().append(true))
                .await
                .unwrap();
            for i in 0..APPENDS {
                // 700 bytes, so records straddle page boundaries.
                let record = format!("{task:02}:{i:05}-|").repeat(70);
                let written = handle.write_at(0, Bytes::from(record)).await.unwrap();
                assert_eq!(written, 700);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let data = fs.read_file(&log).await.unwrap();
    assert_eq!(data.len(), TASKS * APPENDS * 700);
    let mut seen = [0usize; TASKS];
    for record in data.chunks(700) {
        let first = &record[..10];
        assert!(record.chunks(10).all(|part| part == first), "torn append");
        let task: usize = std::str::from_utf8(&first[..2]).unwrap().parse().unwrap();
        let index: usize = std::str::from_utf8(&first[3..8]).unwrap().parse().unwrap();
        assert_eq!(index, seen[task], "appends of one task out of order");
        seen[task] += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_on_separate_files_and_directories() {
    let fs = Arc::new(MemoryFs::new());
    let mut tasks = Vec::new();
    for task in 0..8 {
        let fs = Arc::clone(&fs);
        tasks.push(tokio::spawn(async move {
            let dir = p(&format!("/t{task}"));
            fs.create_dir(&dir, 0o755).await.unwrap();
            for i in 0..300 {
                let f = dir.join(&format!("f{i}")).unwrap();
                let body = Bytes::from(format!("{task}-{i}").repeat(100));
                fs.write_file(&f, body.clone()).await.unwrap();
                assert_eq!(fs.read_file(&f).await.unwrap(), body);
                let shared = p(&format!("/shared-{task}-{i}"));
                fs.write_file(&shared, body.clone()).await.unwrap();
                fs.rename(&shared, &dir.join(&format!("moved{i}")).unwrap())
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    fs.remove_file(&f).await.unwrap();
                }
            }
            fs.read_dir(&dir).await.unwrap().len()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 450);
    }
    assert_eq!(fs.read_dir(&VfsPath::root()).await.unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossing_renames_and_removals_do_not_deadlock() {
    // Directories that swap places between two parents while other tasks create,
    // remove and rename inside them: lock ordering must hold in every arrangement.
    let fs = Arc::new(MemoryFs::new());
    for dir in ["/x", "/y", "/x/in", "/y/in"] {
        fs.create_dir(&p(dir), 0o755).await.unwrap();
    }
    let mut tasks = Vec::new();
    for task in 0..6 {
        let fs = Arc::clone(&fs);
        tasks.push(tokio::spawn(async move {
            for i in 0..400 {
                let (a, b) = match (task + i) % 4 {
                    0 => ("/x/in", "/y/in/in2"),
                    1 => ("/y/in/in2", "/x/in"),
                    2 => ("/y/in", "/x/in/y2"),
                    _ => ("/x/in/y2", "/y/in"),
                };
                let _ = fs.rename(&p(a), &p(b)).await;
                let f = p(&format!("/x/in/f{task}"));
                let _ = fs.write_file(&f, Bytes::from_static(b"z")).await;
                let _ = fs.create_dir(&p(&format!("/y/in/d{task}")), 0o755).await;
                let _ = fs.remove_dir(&p(&format!("/y/in/d{task}"))).await;
                let _ = fs.remove_file(&f).await;
            }
        }));
    }
    let all = futures::future::join_all(tasks);
    tokio::time::timeout(std::time::Duration::from_secs(60), all)
        .await
        .expect("deadlock");
    // Every directory is still reachable exactly once: nothing was lost or duplicated.
    let mut dirs = 0;
    let mut pending = vec![VfsPath::root()];
    while let Some(dir) = pending.pop() {
        for entry in fs.read_dir(&dir).await.unwrap() {
            if entry.kind == vfs_core::FileKind::Directory {
                dirs += 1;
                pending.push(dir.join(&entry.name).unwrap());
            }
        }
    }
    assert_eq!(dirs, 4);
}

#[test]
fn very_deep_trees_drop_without_recursion() {
    let fs = MemoryFs::new();
    futures::executor::block_on(async {
        fs.create_dir(&p("/top"), 0o755).await.unwrap();
        // Each round nests the tree one level deeper using only short paths.
        for _ in 0..100_000 {
            fs.create_dir(&p("/x"), 0o755).await.unwrap();
            fs.rename(&p("/top"), &p("/x/top")).await.unwrap();
            fs.rename(&p("/x"), &p("/top")).await.unwrap();
        }
    });
    assert_eq!(fs.usage.inodes(), 100_002);
    let usage = Arc::clone(&fs.usage);
    drop(fs);
    assert_eq!(usage.inodes(), 0);
}

#[test]
fn config_rejects_unknown_fields() {
    let config: MemoryConfig = serde_json::from_str(r#"{"maxInodes": 10, "gid": 4}"#).unwrap();
    assert_eq!(config.max_inodes, Some(10));
    assert_eq!(config.gid, 4);
    assert!(serde_json::from_str::<MemoryConfig>(r#"{"max_inodes": 10}"#).is_err());
    assert_eq!(
        serde_json::from_str::<MemoryConfig>("{}").unwrap(),
        MemoryConfig::default()
    );
    let fs = MemoryFs::new();
    assert_eq!(fs.kind(), "memory");
    assert!(fs.capabilities().hard_links);
}

fn flags(no_replace: bool, exchange: bool) -> vfs_core::RenameFlags {
    vfs_core::RenameFlags {
        no_replace,
        exchange,
    }
}

#[tokio::test]
async fn rename_no_replace_and_exchange() {
    let fs = MemoryFs::new();
    for dir in ["/d", "/d/sub", "/e"] {
        fs.create_dir(&p(dir), 0o755).await.unwrap();
    }
    fs.write_file(&p("/f"), Bytes::from_static(b"f"))
        .await
        .unwrap();
    fs.write_file(&p("/e/g"), Bytes::from_static(b"g"))
        .await
        .unwrap();
    let noreplace = flags(true, false);
    let exchange = flags(false, true);
    assert_eq!(
        code(fs.rename_with(&p("/f"), &p("/e/g"), noreplace).await),
        "EEXIST"
    );
    assert_eq!(
        code(
            fs.rename_with(&p("/f"), &p("/e/g"), flags(true, true))
                .await
        ),
        "EINVAL"
    );
    assert_eq!(
        code(fs.rename_with(&p("/f"), &p("/nope"), exchange).await),
        "ENOENT"
    );
    assert_eq!(
        code(fs.rename_with(&p("/d"), &p("/d/sub"), exchange).await),
        "EINVAL"
    );

    // Across directories, a file and a directory swap, link counts follow.
    fs.rename_with(&p("/e/g"), &p("/d"), exchange)
        .await
        .unwrap();
    assert!(fs.stat(&p("/e/g")).await.unwrap().is_dir());
    assert!(fs.stat(&p("/e/g/sub")).await.unwrap().is_dir());
    assert_eq!(fs.read_file(&p("/d")).await.unwrap(), "g");
    assert_eq!(fs.stat(&p("/")).await.unwrap().nlink, 3, "/e only");
    assert_eq!(
        fs.stat(&p("/e")).await.unwrap().nlink,
        3,
        "g is a directory"
    );
    // `..` of the moved directory is its new parent.
    fs.symlink("../..", &p("/e/g/sub/up")).await.unwrap();
    assert_eq!(fs.realpath(&p("/e/g/sub/up")).await.unwrap(), p("/e"));

    // Within one directory.
    fs.rename_with(&p("/f"), &p("/d"), exchange).await.unwrap();
    assert_eq!(fs.read_file(&p("/f")).await.unwrap(), "g");
    assert_eq!(fs.read_file(&p("/d")).await.unwrap(), "f");
    fs.rename_with(&p("/d"), &p("/h"), noreplace).await.unwrap();
    assert_eq!(fs.read_file(&p("/h")).await.unwrap(), "f");
}

#[tokio::test]
async fn special_nodes_and_nofollow_metadata() {
    let fs = MemoryFs::new();
    fs.make_node(&p("/fifo"), vfs_core::FileKind::Fifo, 0o640, 0)
        .await
        .unwrap();
    fs.make_node(&p("/dev"), vfs_core::FileKind::CharDevice, 0o600, 0x0105)
        .await
        .unwrap();
    let fifo = fs.lstat(&p("/fifo")).await.unwrap();
    assert_eq!(
        (fifo.kind, fifo.mode, fifo.nlink),
        (vfs_core::FileKind::Fifo, 0o640, 1)
    );
    assert_eq!(fs.lstat(&p("/dev")).await.unwrap().rdev, 0x0105);
    assert_eq!(
        code(
            fs.make_node(&p("/fifo"), vfs_core::FileKind::Fifo, 0o640, 0)
                .await
        ),
        "EEXIST"
    );
    assert_eq!(
        code(
            fs.make_node(&p("/d"), vfs_core::FileKind::Directory, 0o755, 0)
                .await
        ),
        "EINVAL"
    );
    assert_eq!(
        code(fs.open(&p("/fifo"), OpenOptions::read_only()).await),
        "ENOTSUP"
    );
    assert_eq!(code(fs.read_file(&p("/fifo")).await), "ENOTSUP");
    fs.hard_link(&p("/fifo"), &p("/fifo2")).await.unwrap();
    assert_eq!(fs.lstat(&p("/fifo")).await.unwrap().nlink, 2);

    fs.write_file(&p("/target"), Bytes::new()).await.unwrap();
    fs.symlink("target", &p("/link")).await.unwrap();
    fs.set_owner_nofollow(&p("/link"), Some(7), Some(8))
        .await
        .unwrap();
    let (link, target) = (
        fs.lstat(&p("/link")).await.unwrap(),
        fs.stat(&p("/link")).await.unwrap(),
    );
    assert_eq!((link.uid, link.gid), (7, 8));
    assert_eq!((target.uid, target.gid), (0, 0));
    let at = SetTime::At(Timestamp(1_000_000_007));
    fs.set_times_nofollow(&p("/link"), at, at).await.unwrap();
    assert_eq!(
        fs.lstat(&p("/link")).await.unwrap().mtime,
        Timestamp(1_000_000_007)
    );
    assert_ne!(
        fs.stat(&p("/link")).await.unwrap().mtime,
        Timestamp(1_000_000_007)
    );
}

#[tokio::test]
async fn punched_holes_read_as_zeros_and_free_whole_pages() {
    let fs = MemoryFs::new();
    let f = p("/f");
    fs.write_file(&f, Bytes::from(vec![b'x'; 3 * 4096]))
        .await
        .unwrap();
    let handle = fs.open(&f, OpenOptions::new().write(true)).await.unwrap();
    handle.punch_hole(100, 8192).await.unwrap();
    let meta = fs.stat(&f).await.unwrap();
    assert_eq!(meta.size, 3 * 4096, "the size stays");
    assert_eq!(meta.blocks, 16, "the middle page is a hole again");
    let data = fs.read_file(&f).await.unwrap();
    assert!(data[..100].iter().all(|&b| b == b'x'));
    assert!(data[100..8292].iter().all(|&b| b == 0));
    assert!(data[8292..].iter().all(|&b| b == b'x'));
    // Past the end and over holes: nothing to do, nothing allocated.
    handle.punch_hole(1 << 40, 1 << 40).await.unwrap();
    assert_eq!(fs.stat(&f).await.unwrap().size, 3 * 4096);
    // Within the first page only (fsx found this panicking on an empty page range).
    handle.punch_hole(10, 20).await.unwrap();
    let data = fs.read_file(&f).await.unwrap();
    assert!(data[..10].iter().all(|&b| b == b'x'));
    assert!(data[10..30].iter().all(|&b| b == 0));
    handle.punch_hole(0, 4096).await.unwrap();
    assert!(fs.read_file(&f).await.unwrap()[..4096]
        .iter()
        .all(|&b| b == 0));
    let reader = fs.open(&f, OpenOptions::read_only()).await.unwrap();
    assert_eq!(code(reader.punch_hole(0, 1).await), "EBADF");
}
