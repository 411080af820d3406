//! Hard links: shared inodes, link counts, refusals.

use bytes::Bytes;

use super::{assert_errno, assert_kind, Fixture, Must};
use crate::{ErrorKind, FileKind};

async fn link(fx: &Fixture, existing: &str, new: &str) {
    let (existing, new) = (fx.path(existing), fx.path(new));
    fx.fs
        .hard_link(&existing, &new)
        .await
        .must(format_args!("hard_link {existing} {new}"));
}

/// Two names of one inode: same ino, nlink 2 on both, a write through one is read through
/// the other.
pub async fn hard_link_shares_content_and_inode(fx: Fixture) {
    if !fx.supports_hard_links().await {
        return;
    }
    fx.mkdir("d").await;
    fx.write("a", "original").await;
    link(&fx, "a", "d/b").await;
    let (a, b) = (fx.stat("a").await, fx.stat("d/b").await);
    assert_eq!(a.ino, b.ino);
    assert_eq!((a.nlink, b.nlink), (2, 2));
    assert_eq!(fx.read("d/b").await, "original");
    fx.write("d/b", "changed through b").await;
    assert_eq!(fx.read("a").await, "changed through b");
    let path = fx.path("a");
    fx.fs
        .pwrite(&path, 17, Bytes::from_static(b"!"))
        .await
        .must("pwrite a at its end");
    assert_eq!(fx.read("d/b").await, "changed through b!");
    link(&fx, "d/b", "c").await;
    assert_eq!(fx.stat("a").await.nlink, 3);
    assert_eq!(fx.stat("c").await.ino, a.ino);
}

/// Removing one name keeps the other with its content; nlink drops back.
pub async fn unlinking_one_hard_link_keeps_the_other(fx: Fixture) {
    if !fx.supports_hard_links().await {
        return;
    }
    fx.write("a", "survives").await;
    link(&fx, "a", "b").await;
    let path = fx.path("a");
    fx.fs.remove_file(&path).await.must("remove_file a");
    assert_eq!(fx.names("").await, ["b"]);
    assert_eq!(fx.read("b").await, "survives");
    assert_eq!(fx.stat("b").await.nlink, 1);
    // The same inode can be linked again from its remaining name.
    link(&fx, "b", "a").await;
    assert_eq!(fx.stat("a").await.nlink, 2);
}

/// A hard link to a directory is `EPERM`.
pub async fn hard_link_to_dir_is_eperm(fx: Fixture) {
    if !fx.supports_hard_links().await {
        return;
    }
    fx.mkdir("d").await;
    let (existing, new) = (fx.path("d"), fx.path("link"));
    assert_errno(
        fx.fs.hard_link(&existing, &new).await,
        ErrorKind::NotPermitted,
        format_args!("hard_link {existing} {new}"),
    );
    assert_eq!(fx.names("").await, ["d"]);
    assert_eq!(fx.stat("d").await.nlink, 2);
}

/// A hard link over any existing name is `EEXIST`, and nothing changes.
pub async fn hard_link_over_existing_is_eexist(fx: Fixture) {
    if !fx.supports_hard_links().await {
        return;
    }
    let caps = fx.caps();
    fx.write("a", "a").await;
    fx.write("b", "b").await;
    fx.mkdir("d").await;
    let mut names = vec!["b", "d", "a"];
    if caps.symlinks {
        fx.symlink("nowhere", "dangling").await;
        names.push("dangling");
    }
    for name in names {
        let (existing, new) = (fx.path("a"), fx.path(name));
        assert_errno(
            fx.fs.hard_link(&existing, &new).await,
            ErrorKind::AlreadyExists,
            format_args!("hard_link {existing} {new}"),
        );
    }
    assert_eq!(fx.read("b").await, "b");
    assert_eq!(fx.stat("a").await.nlink, 1);
}

/// A hard link to a missing name is `ENOENT`, as is one into a missing directory.
pub async fn hard_link_of_missing_is_enoent(fx: Fixture) {
    if !fx.supports_hard_links().await {
        return;
    }
    fx.write("a", "a").await;
    for (existing, new) in [("missing", "new"), ("a", "missing/new")] {
        let (existing, new) = (fx.path(existing), fx.path(new));
        assert_errno(
            fx.fs.hard_link(&existing, &new).await,
            ErrorKind::NotFound,
            format_args!("hard_link {existing} {new}"),
        );
    }
    assert_eq!(fx.names("").await, ["a"]);
}

/// A hard link to a symlink links the symlink itself, not its target.
pub async fn hard_link_to_a_symlink_links_the_symlink_itself(fx: Fixture) {
    if !fx.supports_hard_links().await || !fx.supports_symlinks().await {
        return;
    }
    fx.write("f", "x").await;
    fx.symlink("f", "lf").await;
    fx.symlink("nowhere", "dangling").await;
    link(&fx, "lf", "lf2").await;
    link(&fx, "dangling", "dangling2").await;
    let meta = fx.lstat("lf2").await;
    assert_kind(&meta, FileKind::Symlink, "lstat lf2");
    assert_eq!(meta.nlink, 2);
    assert_eq!(meta.ino, fx.lstat("lf").await.ino);
    assert_eq!(fx.stat("f").await.nlink, 1, "the target got no link");
    let path = fx.path("dangling2");
    assert_eq!(fx.fs.read_link(&path).await.must("read_link"), "nowhere");
    assert_eq!(fx.read("lf2").await, "x");
}
