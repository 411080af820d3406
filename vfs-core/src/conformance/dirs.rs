//! Directories: create, list, remove, recursive variants, link counts.

use std::collections::{HashMap, HashSet};

use super::{assert_errno, assert_errno_any, assert_kind, Fixture, Must};
use crate::{ErrorKind, FileKind};

/// `create_dir` makes an empty directory with two links.
pub async fn create_dir_makes_an_empty_directory(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    let meta = fx.stat("d").await;
    assert_kind(&meta, FileKind::Directory, "stat d");
    assert_eq!(meta.nlink, 2, "a new directory has . and its name");
    assert!(fx.names("d").await.is_empty());
    assert_eq!(fx.names("").await, ["d"]);
}

/// `create_dir` on any existing name (directory, file, dangling symlink) is `EEXIST`.
pub async fn create_dir_of_existing_is_eexist(fx: Fixture) {
    let caps = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/keep", "x").await;
    fx.write("f", "x").await;
    let mut names = vec!["d", "d/", "f"];
    if caps.symlinks {
        fx.symlink("nowhere", "dangling").await;
        names.push("dangling");
    }
    for name in names {
        let path = fx.path(name);
        assert_errno(
            fx.fs.create_dir(&path, 0o755).await,
            ErrorKind::AlreadyExists,
            format_args!("create_dir {path}"),
        );
    }
    assert_eq!(fx.names("d").await, ["keep"], "the directory is untouched");
    assert_eq!(fx.read("f").await, "x", "the file is untouched");
}

/// `create_dir` whose parent is missing is `ENOENT`.
pub async fn create_dir_in_missing_parent_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing/d");
    assert_errno(
        fx.fs.create_dir(&path, 0o755).await,
        ErrorKind::NotFound,
        format_args!("create_dir {path}"),
    );
    assert!(!fx.is_there("missing").await);
}

/// `create_dir` beneath a file is `ENOTDIR`.
pub async fn create_dir_under_a_file_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f/d");
    assert_errno(
        fx.fs.create_dir(&path, 0o755).await,
        ErrorKind::NotADirectory,
        format_args!("create_dir {path}"),
    );
}

/// `create_dir_all` creates every missing level.
pub async fn create_dir_all_creates_every_missing_level(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("a").await;
    let path = fx.path("a/b/c/d/e");
    fx.fs
        .create_dir_all(&path, 0o755)
        .await
        .must(format_args!("create_dir_all {path}"));
    for name in ["a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e"] {
        assert!(fx.stat(name).await.is_dir(), "{name} is a directory");
    }
    assert!(fx.names("a/b/c/d/e").await.is_empty());
    assert_eq!(fx.names("a/b").await, ["c"]);
}

/// `create_dir_all` of an existing directory (the base included) succeeds and keeps its
/// content.
pub async fn create_dir_all_is_idempotent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("x/y");
    for _ in 0..2 {
        fx.fs
            .create_dir_all(&path, 0o755)
            .await
            .must(format_args!("create_dir_all {path}"));
    }
    fx.write("x/y/f", "kept").await;
    fx.fs
        .create_dir_all(&path, 0o755)
        .await
        .must(format_args!("create_dir_all {path} again"));
    let trailing = fx.path("x/y/");
    fx.fs
        .create_dir_all(&trailing, 0o755)
        .await
        .must(format_args!("create_dir_all {trailing}"));
    fx.fs
        .create_dir_all(&fx.base, 0o755)
        .await
        .must("create_dir_all of the base");
    assert_eq!(fx.read("x/y/f").await, "kept");
}

/// `create_dir_all` over a file fails (`EEXIST` like `mkdir -p`, or `ENOTDIR`); beneath a
/// file it is `ENOTDIR`. The file is untouched.
pub async fn create_dir_all_over_a_file_fails(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f");
    assert_errno_any(
        fx.fs.create_dir_all(&path, 0o755).await,
        &[ErrorKind::AlreadyExists, ErrorKind::NotADirectory],
        format_args!("create_dir_all {path}"),
    );
    let path = fx.path("f/sub/deeper");
    assert_errno(
        fx.fs.create_dir_all(&path, 0o755).await,
        ErrorKind::NotADirectory,
        format_args!("create_dir_all {path}"),
    );
    assert_eq!(fx.read("f").await, "x");
}

/// `read_dir` lists every entry once with its kind (not following symlinks) and its inode
/// number, and never `.` or `..`.
pub async fn read_dir_lists_names_kinds_and_inos(fx: Fixture) {
    let caps = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/file", "x").await;
    fx.mkdir("d/sub").await;
    let mut expected = HashMap::from([("file", FileKind::File), ("sub", FileKind::Directory)]);
    if caps.symlinks {
        fx.symlink("sub", "d/link-to-dir").await;
        fx.symlink("nowhere", "d/dangling").await;
        expected.insert("link-to-dir", FileKind::Symlink);
        expected.insert("dangling", FileKind::Symlink);
    }
    let path = fx.path("d");
    let entries = fx.fs.read_dir(&path).await.must("read_dir d");
    assert_eq!(entries.len(), expected.len(), "entries: {entries:?}");
    let mut seen = HashSet::new();
    for entry in &entries {
        assert!(
            entry.name != "." && entry.name != "..",
            "read_dir lists {:?}",
            entry.name
        );
        assert!(
            seen.insert(entry.name.clone()),
            "{} listed twice",
            entry.name
        );
        let kind = expected
            .get(entry.name.as_str())
            .unwrap_or_else(|| panic!("unexpected entry {entry:?}"));
        assert_eq!(entry.kind, *kind, "kind of {}", entry.name);
        let meta = fx.lstat(&format!("d/{}", entry.name)).await;
        assert_eq!(entry.ino, meta.ino, "ino of {} matches lstat", entry.name);
        assert_eq!(
            entry.kind, meta.kind,
            "kind of {} matches lstat",
            entry.name
        );
    }
    assert!(fx.names("d/sub").await.is_empty());
}

/// `read_dir_plus` lists what `read_dir` lists, each entry with the metadata `lstat`
/// gives it (a symlink's own, not its target's), and fails as `read_dir` does.
pub async fn read_dir_plus_matches_read_dir_and_lstat(fx: Fixture) {
    let caps = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/file", "hello").await;
    fx.mkdir("d/sub").await;
    fx.write("d/sub/inner", "x").await;
    if caps.symlinks {
        fx.symlink("sub", "d/link-to-dir").await;
        fx.symlink("nowhere", "d/dangling").await;
    }
    let path = fx.path("d");
    let mut plus = fx.fs.read_dir_plus(&path).await.must("read_dir_plus d");
    plus.sort_by(|a, b| a.0.cmp(&b.0));
    let listed: Vec<&str> = plus.iter().map(|(name, _)| name.as_str()).collect();
    let mut names = fx.names("d").await;
    names.sort();
    assert_eq!(listed, names, "read_dir_plus lists what read_dir lists");
    for (name, meta) in &plus {
        let lstat = fx.lstat(&format!("d/{name}")).await;
        let fields = |m: &crate::Metadata| {
            (
                m.kind, m.ino, m.size, m.mode, m.nlink, m.uid, m.gid, m.mtime, m.rdev,
            )
        };
        assert_eq!(
            fields(meta),
            fields(&lstat),
            "metadata of {name} matches lstat"
        );
    }
    let file = fx.path("d/file");
    assert_errno(
        fx.fs.read_dir_plus(&file).await,
        ErrorKind::NotADirectory,
        format_args!("read_dir_plus {file}"),
    );
    let missing = fx.path("missing");
    assert_errno(
        fx.fs.read_dir_plus(&missing).await,
        ErrorKind::NotFound,
        format_args!("read_dir_plus {missing}"),
    );
}

/// `read_dir` of a file is `ENOTDIR`.
pub async fn read_dir_of_file_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f");
    assert_errno(
        fx.fs.read_dir(&path).await,
        ErrorKind::NotADirectory,
        format_args!("read_dir {path}"),
    );
}

/// `read_dir` of a missing directory is `ENOENT`.
pub async fn read_dir_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.read_dir(&path).await,
        ErrorKind::NotFound,
        format_args!("read_dir {path}"),
    );
}

/// `remove_dir` removes an empty directory.
pub async fn remove_dir_removes_an_empty_dir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.mkdir("keep").await;
    let path = fx.path("d");
    fx.fs
        .remove_dir(&path)
        .await
        .must(format_args!("remove_dir {path}"));
    assert_errno(
        fx.fs.stat(&path).await,
        ErrorKind::NotFound,
        format_args!("stat {path} after remove_dir"),
    );
    assert_eq!(fx.names("").await, ["keep"]);
}

/// `remove_dir` of a non-empty directory is `ENOTEMPTY` and removes nothing.
pub async fn remove_dir_of_non_empty_is_enotempty(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/f", "x").await;
    fx.mkdir("e").await;
    fx.mkdir("e/sub").await;
    for name in ["d", "e"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.remove_dir(&path).await,
            ErrorKind::DirectoryNotEmpty,
            format_args!("remove_dir {path}"),
        );
    }
    assert_eq!(fx.read("d/f").await, "x");
    assert_eq!(fx.names("e").await, ["sub"]);
}

/// `remove_dir` of a file is `ENOTDIR` and removes nothing.
pub async fn remove_dir_of_file_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f");
    assert_errno(
        fx.fs.remove_dir(&path).await,
        ErrorKind::NotADirectory,
        format_args!("remove_dir {path}"),
    );
    assert_eq!(fx.read("f").await, "x");
}

/// `remove_dir` of a missing name is `ENOENT`.
pub async fn remove_dir_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.remove_dir(&path).await,
        ErrorKind::NotFound,
        format_args!("remove_dir {path}"),
    );
}

/// `remove_dir_all` removes a deep tree with files and symlinks, and never follows the
/// symlinks: their targets outside the tree survive.
pub async fn remove_dir_all_removes_a_deep_tree_but_not_symlink_targets(fx: Fixture) {
    let caps = fx.caps();
    fx.mkdir("outside").await;
    fx.write("outside/precious", "keep me").await;
    fx.write("outside-file", "keep me too").await;
    let mut dir = String::from("tree");
    fx.mkdir(&dir).await;
    for level in 0..12 {
        fx.write(&format!("{dir}/file{level}"), format!("{level}"))
            .await;
        fx.mkdir(&format!("{dir}/empty{level}")).await;
        if caps.symlinks {
            fx.symlink(&fx.target("outside"), &format!("{dir}/abs-link{level}"))
                .await;
            let up = "../".repeat(level + 1);
            fx.symlink(
                &format!("{up}outside-file"),
                &format!("{dir}/rel-link{level}"),
            )
            .await;
            fx.symlink("nowhere", &format!("{dir}/dangling{level}"))
                .await;
        }
        dir.push_str(&format!("/level{level}"));
        fx.mkdir(&dir).await;
    }
    if caps.symlinks {
        // Make sure the links really point outside before removing them.
        assert_eq!(fx.read("tree/level0/abs-link1/precious").await, "keep me");
        assert_eq!(fx.read("tree/level0/rel-link1").await, "keep me too");
    }
    let path = fx.path("tree");
    fx.fs
        .remove_dir_all(&path)
        .await
        .must(format_args!("remove_dir_all {path}"));
    assert!(!fx.is_there("tree").await);
    assert_eq!(fx.names("").await, ["outside", "outside-file"]);
    assert_eq!(fx.names("outside").await, ["precious"]);
    assert_eq!(fx.read("outside/precious").await, "keep me");
    assert_eq!(fx.read("outside-file").await, "keep me too");
}

/// `remove_dir_all` of a file removes just that file; of a missing name it is `ENOENT`.
pub async fn remove_dir_all_of_a_file_removes_it(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f");
    fx.fs
        .remove_dir_all(&path)
        .await
        .must(format_args!("remove_dir_all {path}"));
    assert!(!fx.is_there("f").await);
    assert_errno(
        fx.fs.remove_dir_all(&path).await,
        ErrorKind::NotFound,
        format_args!("remove_dir_all {path} again"),
    );
}

/// A directory's nlink is 2 plus its subdirectories; files do not count.
pub async fn dir_nlink_counts_subdirectories(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    assert_eq!(fx.stat("d").await.nlink, 2);
    fx.mkdir("d/a").await;
    fx.mkdir("d/b").await;
    assert_eq!(fx.stat("d").await.nlink, 4);
    fx.write("d/file", "x").await;
    assert_eq!(fx.stat("d").await.nlink, 4, "files do not add to nlink");
    let path = fx.path("d/a");
    fx.fs.remove_dir(&path).await.must("remove_dir d/a");
    assert_eq!(fx.stat("d").await.nlink, 3);
    let (from, to) = (fx.path("d/b"), fx.path("moved"));
    fx.fs.rename(&from, &to).await.must("rename d/b moved");
    assert_eq!(fx.stat("d").await.nlink, 2, "a subdirectory moved out");
}

/// Every object has its own inode number.
pub async fn inos_are_distinct(fx: Fixture) {
    let _ = fx.caps();
    fx.write("a", "x").await;
    fx.write("b", "x").await;
    fx.mkdir("d").await;
    fx.write("d/c", "x").await;
    let mut inos = HashSet::new();
    for name in ["", "a", "b", "d", "d/c"] {
        let ino = fx.lstat(name).await.ino;
        assert!(inos.insert(ino), "ino {ino} of {name:?} is reused");
    }
    // An ino stays with its file.
    assert_eq!(fx.lstat("a").await.ino, fx.lstat("a").await.ino);
}
