//! The calls FUSE needs beyond the shared conformance suite, checked against the host
//! tree itself: special files, the nofollow metadata calls, rename flags, fallocate.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use bytes::Bytes;
use vfs_core::{FileKind, FileSystem, OpenOptions, RenameFlags, SetTime, Timestamp, VfsPath};

use super::HostFs;

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).unwrap()
}

/// A fresh host directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("vfs-host-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code<T>(result: vfs_core::Result<T>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.code(),
    }
}

#[tokio::test]
async fn make_node_creates_fifos_and_sockets_with_the_exact_mode() {
    let dir = Dir::new("mknod");
    let fs = HostFs::new(&dir.0).unwrap();
    fs.make_node(&p("/fifo"), FileKind::Fifo, 0o604, 0)
        .await
        .unwrap();
    fs.make_node(&p("/sock"), FileKind::Socket, 0o600, 0)
        .await
        .unwrap();

    let fifo = std::fs::symlink_metadata(dir.0.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o7777, 0o604, "past the umask");
    assert!(std::fs::symlink_metadata(dir.0.join("sock"))
        .unwrap()
        .file_type()
        .is_socket());
    assert_eq!(fs.lstat(&p("/fifo")).await.unwrap().kind, FileKind::Fifo);

    assert_eq!(
        code(fs.make_node(&p("/fifo"), FileKind::Fifo, 0o600, 0).await),
        "EEXIST"
    );
    assert_eq!(
        code(fs.make_node(&p("/file"), FileKind::File, 0o600, 0).await),
        "EINVAL"
    );
    assert_eq!(
        code(fs.make_node(&p("/gone/x"), FileKind::Fifo, 0o600, 0).await),
        "ENOENT"
    );
    assert!(
        !dir.0.join("file").exists(),
        "a refused mknod creates nothing"
    );
}

#[tokio::test]
async fn nofollow_calls_change_the_symlink_not_its_target() {
    let dir = Dir::new("nofollow");
    let fs = HostFs::new(&dir.0).unwrap();
    fs.write_file(&p("/target"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    fs.symlink("target", &p("/link")).await.unwrap();
    fs.symlink("nowhere", &p("/dangling")).await.unwrap();
    let target_mtime = fs.stat(&p("/target")).await.unwrap().mtime;

    let past = Timestamp::from_parts(1_000_000_000, 5);
    fs.set_times_nofollow(&p("/link"), SetTime::Omit, SetTime::At(past))
        .await
        .unwrap();
    let link = std::fs::symlink_metadata(dir.0.join("link")).unwrap();
    assert_eq!((link.mtime(), link.mtime_nsec()), (1_000_000_000, 5));
    assert_eq!(fs.stat(&p("/target")).await.unwrap().mtime, target_mtime);

    // A dangling link can be changed itself; following it would be ENOENT.
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    fs.set_owner_nofollow(&p("/dangling"), Some(uid), Some(gid))
        .await
        .unwrap();
    fs.set_times_nofollow(&p("/dangling"), SetTime::Now, SetTime::Now)
        .await
        .unwrap();
    assert_eq!(
        code(fs.set_owner(&p("/dangling"), Some(uid), None).await),
        "ENOENT"
    );
    assert_eq!(
        code(
            fs.set_times_nofollow(&p("/missing"), SetTime::Now, SetTime::Now)
                .await
        ),
        "ENOENT"
    );
}

#[tokio::test]
async fn rename_flags_follow_renameat2() {
    let dir = Dir::new("rename");
    let fs = HostFs::new(&dir.0).unwrap();
    fs.write_file(&p("/a"), Bytes::from_static(b"a"))
        .await
        .unwrap();
    fs.write_file(&p("/b"), Bytes::from_static(b"b"))
        .await
        .unwrap();
    let no_replace = RenameFlags {
        no_replace: true,
        ..RenameFlags::default()
    };
    let exchange = RenameFlags {
        exchange: true,
        ..RenameFlags::default()
    };

    assert_eq!(
        code(fs.rename_with(&p("/a"), &p("/b"), no_replace).await),
        "EEXIST"
    );
    assert_eq!(
        fs.read_file(&p("/b")).await.unwrap(),
        "b",
        "nothing replaced"
    );
    fs.rename_with(&p("/a"), &p("/c"), no_replace)
        .await
        .unwrap();

    fs.rename_with(&p("/c"), &p("/b"), exchange).await.unwrap();
    assert_eq!(fs.read_file(&p("/b")).await.unwrap(), "a");
    assert_eq!(fs.read_file(&p("/c")).await.unwrap(), "b");
    assert_eq!(
        code(fs.rename_with(&p("/c"), &p("/none"), exchange).await),
        "ENOENT"
    );
}

#[tokio::test]
async fn allocate_grows_the_file_and_keeps_its_content() {
    let dir = Dir::new("fallocate");
    let fs = HostFs::new(&dir.0).unwrap();
    fs.write_file(&p("/f"), Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let handle = fs
        .open(&p("/f"), OpenOptions::new().read(true).write(true))
        .await
        .unwrap();
    handle.allocate(4096, 8192).await.unwrap();
    assert_eq!(handle.stat().await.unwrap().size, 12288);
    handle.allocate(0, 10).await.unwrap();
    assert_eq!(
        handle.stat().await.unwrap().size,
        12288,
        "allocate never shrinks"
    );
    assert_eq!(&handle.read_at(0, 5).await.unwrap()[..], b"hello");
}

#[tokio::test]
async fn punch_hole_zeroes_a_range_and_keeps_the_size() {
    let dir = Dir::new("punch");
    let fs = HostFs::new(&dir.0).unwrap();
    fs.write_file(&p("/f"), Bytes::from(vec![7u8; 3 * 4096]))
        .await
        .unwrap();
    let handle = fs
        .open(&p("/f"), OpenOptions::new().read(true).write(true))
        .await
        .unwrap();
    handle.punch_hole(100, 4096 + 50).await.unwrap();
    let content = handle.read_at(0, 3 * 4096).await.unwrap();
    assert_eq!(content.len(), 3 * 4096, "the size is kept");
    assert!(content[..100].iter().all(|b| *b == 7));
    assert!(content[100..4096 + 150].iter().all(|b| *b == 0));
    assert!(content[4096 + 150..].iter().all(|b| *b == 7));
}

/// The two calls a snapshot walk leans on are the driver's own, not the trait's
/// fallbacks: an open file lists its xattrs through its descriptor, and a listing comes
/// with each entry's metadata (a symlink's own, through the directory's descriptor).
#[tokio::test]
async fn handle_xattrs_and_read_dir_plus_are_served_by_the_host() {
    let dir = Dir::new("plus");
    let fs = HostFs::new(&dir.0).unwrap();
    if !fs.capabilities().xattrs {
        panic!(
            "the host directory under {} stores no user xattrs",
            dir.0.display()
        );
    }
    std::fs::write(dir.0.join("f"), "content").unwrap();
    std::os::unix::fs::symlink("f", dir.0.join("link")).unwrap();
    fs.set_xattr(
        &p("/f"),
        "user.k",
        Bytes::from_static(b"v"),
        vfs_core::XattrMode::Upsert,
    )
    .await
    .unwrap();

    let handle = fs.open(&p("/f"), OpenOptions::read_only()).await.unwrap();
    let xattrs = handle.xattrs().await.unwrap();
    assert_eq!(
        xattrs,
        vec![("user.k".to_owned(), Bytes::from_static(b"v"))]
    );

    let mut plus = fs.read_dir_plus(&p("/")).await.unwrap();
    plus.sort_by(|a, b| a.0.cmp(&b.0));
    let on_disk = |name: &str| std::fs::symlink_metadata(dir.0.join(name)).unwrap();
    assert_eq!(plus.len(), 2);
    assert_eq!((plus[0].0.as_str(), plus[0].1.kind), ("f", FileKind::File));
    assert_eq!(plus[0].1.ino, on_disk("f").ino());
    assert_eq!(
        (plus[1].0.as_str(), plus[1].1.kind),
        ("link", FileKind::Symlink)
    );
    assert_eq!(plus[1].1.ino, on_disk("link").ino());
}
