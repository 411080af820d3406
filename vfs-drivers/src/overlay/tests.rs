//! The calls FUSE needs beyond the shared suites: special files created in the upper,
//! the nofollow metadata calls (with copy-up of a lower symlink), rename flags.

use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{FileKind, FileSystem, RenameFlags, SetTime, Timestamp, VfsPath};

use super::OverlayFs;
use crate::memory::MemoryFs;

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).unwrap()
}

fn code<T>(result: vfs_core::Result<T>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.code(),
    }
}

/// An overlay over a lower holding `/dir/file` and `/dir/link -> file`.
async fn overlay() -> (OverlayFs, Arc<MemoryFs>, Arc<MemoryFs>) {
    let lower = Arc::new(MemoryFs::new());
    lower.create_dir(&p("/dir"), 0o755).await.unwrap();
    lower
        .write_file(&p("/dir/file"), Bytes::from_static(b"lower"))
        .await
        .unwrap();
    lower.symlink("file", &p("/dir/link")).await.unwrap();
    let upper = Arc::new(MemoryFs::new());
    let fs = OverlayFs::new(upper.clone(), vec![lower.clone()]).unwrap();
    (fs, upper, lower)
}

#[tokio::test]
async fn make_node_creates_in_the_upper_and_replaces_a_whiteout() {
    let (fs, upper, lower) = overlay().await;
    fs.make_node(&p("/dir/fifo"), FileKind::Fifo, 0o640, 0)
        .await
        .unwrap();
    let meta = fs.lstat(&p("/dir/fifo")).await.unwrap();
    assert_eq!((meta.kind, meta.mode), (FileKind::Fifo, 0o640));
    assert_eq!(
        upper.lstat(&p("/dir/fifo")).await.unwrap().kind,
        FileKind::Fifo
    );

    assert_eq!(
        code(
            fs.make_node(&p("/dir/file"), FileKind::Fifo, 0o600, 0)
                .await
        ),
        "EEXIST"
    );
    assert_eq!(
        code(fs.make_node(&p("/dir/x"), FileKind::File, 0o600, 0).await),
        "EINVAL"
    );
    assert_eq!(
        code(
            fs.make_node(&p("/dir/.wh.x"), FileKind::Fifo, 0o600, 0)
                .await
        ),
        "EINVAL"
    );

    // Over a deleted lower file: the node takes the name, the lower file stays hidden.
    fs.remove_file(&p("/dir/file")).await.unwrap();
    fs.make_node(&p("/dir/file"), FileKind::Socket, 0o600, 0)
        .await
        .unwrap();
    assert_eq!(
        fs.lstat(&p("/dir/file")).await.unwrap().kind,
        FileKind::Socket
    );
    let names: Vec<String> = fs
        .read_dir(&p("/dir"))
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(
        names.iter().filter(|name| *name == "file").count(),
        1,
        "{names:?}"
    );
    assert_eq!(lower.read_file(&p("/dir/file")).await.unwrap(), "lower");
}

#[tokio::test]
async fn nofollow_calls_copy_up_the_symlink_itself() {
    let (fs, upper, lower) = overlay().await;
    let past = Timestamp::from_parts(1_000_000_000, 7);
    fs.set_times_nofollow(&p("/dir/link"), SetTime::Omit, SetTime::At(past))
        .await
        .unwrap();
    fs.set_owner_nofollow(&p("/dir/link"), Some(12), Some(34))
        .await
        .unwrap();

    let link = fs.lstat(&p("/dir/link")).await.unwrap();
    assert_eq!((link.mtime, link.uid, link.gid), (past, 12, 34));
    assert!(upper.lstat(&p("/dir/link")).await.unwrap().is_symlink());
    assert_eq!(fs.read_link(&p("/dir/link")).await.unwrap(), "file");
    let target = fs.stat(&p("/dir/file")).await.unwrap();
    assert_ne!(target.uid, 12, "the target was not changed");
    assert!(
        !upper.exists(&p("/dir/file")).await.unwrap(),
        "the target was not copied up"
    );
    assert_eq!(lower.lstat(&p("/dir/link")).await.unwrap().uid, 0);
    assert_eq!(
        code(
            fs.set_times_nofollow(&p("/dir/none"), SetTime::Now, SetTime::Now)
                .await
        ),
        "ENOENT"
    );
}

#[tokio::test]
async fn copy_up_keeps_a_symlinks_owner_and_times() {
    let (fs, upper, lower) = overlay().await;
    let past = Timestamp::from_parts(1_500_000_000, 0);
    lower
        .set_owner_nofollow(&p("/dir/link"), Some(5), Some(6))
        .await
        .unwrap();
    lower
        .set_times_nofollow(&p("/dir/link"), SetTime::At(past), SetTime::At(past))
        .await
        .unwrap();
    // Linking the symlink copies it up.
    fs.hard_link(&p("/dir/link"), &p("/dir/link2"))
        .await
        .unwrap();
    let copied = upper.lstat(&p("/dir/link")).await.unwrap();
    assert_eq!((copied.uid, copied.gid, copied.mtime), (5, 6, past));
}

#[tokio::test]
async fn rename_no_replace_and_exchange() {
    let (fs, _upper, _lower) = overlay().await;
    let no_replace = RenameFlags {
        no_replace: true,
        ..RenameFlags::default()
    };
    fs.write_file(&p("/new"), Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert_eq!(
        code(
            fs.rename_with(&p("/new"), &p("/dir/file"), no_replace)
                .await
        ),
        "EEXIST"
    );
    assert_eq!(fs.read_file(&p("/dir/file")).await.unwrap(), "lower");
    assert_eq!(
        code(
            fs.rename_with(&p("/none"), &p("/dir/file"), no_replace)
                .await
        ),
        "ENOENT"
    );
    fs.rename_with(&p("/new"), &p("/dir/moved"), no_replace)
        .await
        .unwrap();
    assert_eq!(fs.read_file(&p("/dir/moved")).await.unwrap(), "new");

    let exchange = RenameFlags {
        exchange: true,
        ..RenameFlags::default()
    };
    assert_eq!(
        code(
            fs.rename_with(&p("/dir/moved"), &p("/dir/file"), exchange)
                .await
        ),
        "EINVAL"
    );
    assert_eq!(fs.read_file(&p("/dir/moved")).await.unwrap(), "new");
}

#[tokio::test]
async fn handles_of_copied_up_files_allocate_and_punch_holes() {
    let (fs, upper, _lower) = overlay().await;
    let handle = fs
        .open(
            &p("/dir/file"),
            vfs_core::OpenOptions::new().read(true).write(true),
        )
        .await
        .unwrap();
    handle.allocate(0, 8192).await.unwrap();
    assert_eq!(handle.stat().await.unwrap().size, 8192);
    handle.punch_hole(0, 3).await.unwrap();
    assert_eq!(&handle.read_at(0, 5).await.unwrap()[..], b"\0\0\0er");
    assert_eq!(upper.stat(&p("/dir/file")).await.unwrap().size, 8192);

    let reader = fs
        .open(&p("/dir/link"), vfs_core::OpenOptions::read_only())
        .await
        .unwrap();
    assert!(
        reader.punch_hole(0, 1).await.is_err(),
        "a read-only handle changes nothing"
    );
}
