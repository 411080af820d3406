//! Rename: moves, replacements, and every refusal with its errno.

use super::{assert_errno, Fixture, Must};
use crate::ErrorKind;

async fn rename(fx: &Fixture, from: &str, to: &str) {
    let (from, to) = (fx.path(from), fx.path(to));
    fx.fs
        .rename(&from, &to)
        .await
        .must(format_args!("rename {from} {to}"));
}

/// Both paths of a rename.
fn pair(fx: &Fixture, from: &str, to: &str) -> (crate::VfsPath, crate::VfsPath) {
    (fx.path(from), fx.path(to))
}

/// Renaming a file moves its content and its inode to the new name; the old name is gone.
pub async fn rename_file_moves_content_and_inode(fx: Fixture) {
    let _ = fx.caps();
    fx.write("a", "content").await;
    let ino = fx.stat("a").await.ino;
    rename(&fx, "a", "b").await;
    assert_eq!(fx.read("b").await, "content");
    assert_eq!(fx.stat("b").await.ino, ino, "rename keeps the inode");
    assert!(!fx.is_there("a").await);
    assert_eq!(fx.names("").await, ["b"]);
}

/// Renaming over an existing file replaces it.
pub async fn rename_file_over_file_replaces_it(fx: Fixture) {
    let _ = fx.caps();
    fx.write("a", "new").await;
    fx.write("b", "old content").await;
    let ino = fx.stat("a").await.ino;
    rename(&fx, "a", "b").await;
    assert_eq!(fx.read("b").await, "new");
    let meta = fx.stat("b").await;
    assert_eq!(meta.ino, ino);
    assert_eq!(meta.size, 3);
    assert_eq!(fx.names("").await, ["b"]);
}

/// Renaming into another directory moves the entry between listings.
pub async fn rename_across_directories(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("src").await;
    fx.mkdir("dst").await;
    fx.write("src/f", "x").await;
    rename(&fx, "src/f", "dst/g").await;
    assert!(fx.names("src").await.is_empty());
    assert_eq!(fx.names("dst").await, ["g"]);
    assert_eq!(fx.read("dst/g").await, "x");
}

/// Renaming a directory moves everything beneath it.
pub async fn rename_dir_moves_its_subtree(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.mkdir("d/sub").await;
    fx.write("d/sub/f", "deep").await;
    fx.write("d/g", "shallow").await;
    let ino = fx.stat("d").await.ino;
    rename(&fx, "d", "e").await;
    assert_eq!(fx.stat("e").await.ino, ino);
    assert_eq!(fx.read("e/sub/f").await, "deep");
    assert_eq!(fx.read("e/g").await, "shallow");
    assert_eq!(fx.names("e").await, ["g", "sub"]);
    assert!(!fx.is_there("d").await);
    let old = fx.path("d/sub/f");
    assert_errno(
        fx.fs.stat(&old).await,
        ErrorKind::NotFound,
        format_args!("stat {old} after the move"),
    );
}

/// A directory replaces an empty directory.
pub async fn rename_dir_over_empty_dir_replaces_it(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/f", "x").await;
    fx.mkdir("empty").await;
    let ino = fx.stat("d").await.ino;
    rename(&fx, "d", "empty").await;
    assert_eq!(fx.stat("empty").await.ino, ino);
    assert_eq!(fx.read("empty/f").await, "x");
    assert_eq!(fx.names("").await, ["empty"]);
}

/// Renaming over a non-empty directory is `ENOTEMPTY`; both stay as they were.
pub async fn rename_over_non_empty_dir_is_enotempty(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/f", "from").await;
    fx.mkdir("full").await;
    fx.write("full/g", "to").await;
    let (from, to) = pair(&fx, "d", "full");
    assert_errno(
        fx.fs.rename(&from, &to).await,
        ErrorKind::DirectoryNotEmpty,
        format_args!("rename {from} {to}"),
    );
    assert_eq!(fx.read("d/f").await, "from");
    assert_eq!(fx.read("full/g").await, "to");
    assert_eq!(fx.names("full").await, ["g"]);
}

/// Renaming a file over a directory is `EISDIR`.
pub async fn rename_file_over_dir_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    let (from, to) = pair(&fx, "f", "d");
    assert_errno(
        fx.fs.rename(&from, &to).await,
        ErrorKind::IsADirectory,
        format_args!("rename {from} {to}"),
    );
    assert_eq!(fx.read("f").await, "x");
    assert!(fx.stat("d").await.is_dir());
}

/// Renaming a directory over a file is `ENOTDIR`.
pub async fn rename_dir_over_file_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("f", "x").await;
    let (from, to) = pair(&fx, "d", "f");
    assert_errno(
        fx.fs.rename(&from, &to).await,
        ErrorKind::NotADirectory,
        format_args!("rename {from} {to}"),
    );
    assert_eq!(fx.read("f").await, "x");
    assert!(fx.stat("d").await.is_dir());
}

/// Moving a directory into its own subtree is `EINVAL`.
pub async fn rename_dir_into_own_subtree_is_einval(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.mkdir("d/sub").await;
    fx.mkdir("d/sub/empty").await;
    for to in ["d/new", "d/sub/new", "d/sub/empty"] {
        let (from, to) = pair(&fx, "d", to);
        assert_errno(
            fx.fs.rename(&from, &to).await,
            ErrorKind::InvalidInput,
            format_args!("rename {from} {to}"),
        );
    }
    assert_eq!(fx.names("").await, ["d"]);
    assert_eq!(fx.names("d/sub").await, ["empty"]);
}

/// Renaming a file or directory onto itself succeeds and changes nothing.
pub async fn rename_onto_itself_is_a_no_op(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    fx.write("d/inner", "y").await;
    rename(&fx, "f", "f").await;
    rename(&fx, "d", "d").await;
    rename(&fx, "d/", "d/").await;
    assert_eq!(fx.read("f").await, "x");
    assert_eq!(fx.read("d/inner").await, "y");
    assert_eq!(fx.names("").await, ["d", "f"]);
}

/// Renaming onto another hard link of the same file does nothing: both names remain.
pub async fn rename_onto_another_link_of_the_same_file_is_a_no_op(fx: Fixture) {
    if !fx.supports_hard_links().await {
        return;
    }
    fx.write("a", "shared").await;
    let (a, b) = (fx.path("a"), fx.path("b"));
    fx.fs.hard_link(&a, &b).await.must("hard_link a b");
    rename(&fx, "a", "b").await;
    assert_eq!(fx.names("").await, ["a", "b"]);
    assert_eq!(fx.read("a").await, "shared");
    assert_eq!(fx.read("b").await, "shared");
    assert_eq!(fx.stat("a").await.nlink, 2);
    assert_eq!(fx.stat("a").await.ino, fx.stat("b").await.ino);
}

/// Renaming a missing name is `ENOENT`.
pub async fn rename_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    fx.write("existing", "x").await;
    for to in ["new", "existing"] {
        let (from, to) = pair(&fx, "missing", to);
        assert_errno(
            fx.fs.rename(&from, &to).await,
            ErrorKind::NotFound,
            format_args!("rename {from} {to}"),
        );
    }
    assert_eq!(fx.read("existing").await, "x");
}

/// Renaming into a missing directory is `ENOENT`; the source stays.
pub async fn rename_into_missing_dir_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let (from, to) = pair(&fx, "f", "missing/f");
    assert_errno(
        fx.fs.rename(&from, &to).await,
        ErrorKind::NotFound,
        format_args!("rename {from} {to}"),
    );
    assert_eq!(fx.read("f").await, "x");
}

/// A trailing slash on either side of a file's rename is `ENOTDIR`.
pub async fn rename_file_with_trailing_slash_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    for (from, to) in [("f/", "g"), ("f", "g/"), ("f", "f/")] {
        let (from, to) = pair(&fx, from, to);
        assert_errno(
            fx.fs.rename(&from, &to).await,
            ErrorKind::NotADirectory,
            format_args!("rename {from} {to}"),
        );
    }
    assert_eq!(fx.names("").await, ["f"]);
}

/// Directories rename with trailing slashes on either side.
pub async fn rename_dir_with_trailing_slashes_works(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    rename(&fx, "d/", "e").await;
    rename(&fx, "e", "f/").await;
    rename(&fx, "f/", "g/").await;
    assert_eq!(fx.names("").await, ["g"]);
    assert!(fx.stat("g").await.is_dir());
}

/// Renaming a symlink moves the link itself; its target is untouched.
pub async fn rename_symlink_moves_the_link_not_the_target(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.write("d/f", "x").await;
    fx.symlink("d", "link").await;
    rename(&fx, "link", "moved").await;
    assert_eq!(fx.names("").await, ["d", "moved"]);
    assert!(fx.lstat("moved").await.is_symlink());
    let path = fx.path("moved");
    assert_eq!(fx.fs.read_link(&path).await.must("read_link moved"), "d");
    assert_eq!(fx.read("moved/f").await, "x");
    assert_eq!(fx.names("d").await, ["f"]);
}
