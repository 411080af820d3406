//! Whole-file calls: write/read, remove, pread/pwrite, truncate, sparse files, path errors.

use bytes::Bytes;

use super::{assert_errno, assert_kind, pattern, Fixture, Must};
use crate::{ErrorKind, FileKind};

/// `write_file` then `read_file` gives the same bytes; `stat` says a regular file of that size.
pub async fn write_file_then_read_file_round_trips(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "hello, world").await;
    assert_eq!(fx.read("f").await, "hello, world");
    let meta = fx.stat("f").await;
    assert_kind(&meta, FileKind::File, "stat f");
    assert_eq!(meta.size, 12);
    assert_eq!(meta.nlink, 1);
    assert!(meta.is_file() && !meta.is_dir() && !meta.is_symlink());
    assert_eq!(fx.names("").await, ["f"]);
}

/// `write_file` over a longer file leaves only the new content.
pub async fn write_file_replaces_longer_content(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "a much longer first version").await;
    let ino = fx.stat("f").await.ino;
    fx.write("f", "short").await;
    assert_eq!(fx.read("f").await, "short");
    let meta = fx.stat("f").await;
    assert_eq!(meta.size, 5);
    assert_eq!(meta.ino, ino, "write_file rewrites the same inode");
}

/// Writing nothing creates an empty file.
pub async fn write_file_of_nothing_creates_an_empty_file(fx: Fixture) {
    let _ = fx.caps();
    fx.write("empty", Bytes::new()).await;
    assert_eq!(fx.read("empty").await, "");
    let meta = fx.stat("empty").await;
    assert_eq!(meta.size, 0);
    assert_kind(&meta, FileKind::File, "stat empty");
}

/// A file larger than one read chunk comes back byte for byte.
pub async fn large_file_round_trips(fx: Fixture) {
    let _ = fx.caps();
    let data = pattern(3 * 1024 * 1024 + 17, 0x5a);
    fx.write("big", data.clone()).await;
    assert_eq!(fx.stat("big").await.size, data.len() as u64);
    let back = fx.read("big").await;
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the content of a 3 MiB file changed");
}

/// `read_file` of a missing name is `ENOENT`.
pub async fn read_file_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.read_file(&path).await,
        ErrorKind::NotFound,
        format_args!("read_file {path}"),
    );
    let path = fx.path("missing-dir/f");
    assert_errno(
        fx.fs.read_file(&path).await,
        ErrorKind::NotFound,
        format_args!("read_file {path}"),
    );
}

/// `read_file` of a directory is `EISDIR`.
pub async fn read_file_of_dir_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    let path = fx.path("d");
    assert_errno(
        fx.fs.read_file(&path).await,
        ErrorKind::IsADirectory,
        format_args!("read_file {path}"),
    );
}

/// `write_file` onto a directory is `EISDIR` and leaves the directory alone.
pub async fn write_file_onto_dir_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/inner", "x").await;
    let path = fx.path("d");
    assert_errno(
        fx.fs.write_file(&path, Bytes::from_static(b"data")).await,
        ErrorKind::IsADirectory,
        format_args!("write_file {path}"),
    );
    assert!(fx.stat("d").await.is_dir());
    assert_eq!(fx.names("d").await, ["inner"]);
}

/// Creating a file in a missing directory is `ENOENT` and creates nothing.
pub async fn write_file_in_missing_dir_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing/f");
    assert_errno(
        fx.fs.write_file(&path, Bytes::from_static(b"x")).await,
        ErrorKind::NotFound,
        format_args!("write_file {path}"),
    );
    assert!(fx.names("").await.is_empty());
}

/// A file used as a directory in the middle of a path is `ENOTDIR`, for every operation.
pub async fn path_through_a_file_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f/x");
    let what = |op: &str| format!("{op} {path}");
    let fs = &fx.fs;
    assert_errno(fs.stat(&path).await, ErrorKind::NotADirectory, what("stat"));
    assert_errno(
        fs.lstat(&path).await,
        ErrorKind::NotADirectory,
        what("lstat"),
    );
    assert_errno(
        fs.read_file(&path).await,
        ErrorKind::NotADirectory,
        what("read_file"),
    );
    assert_errno(
        fs.write_file(&path, Bytes::from_static(b"y")).await,
        ErrorKind::NotADirectory,
        what("write_file"),
    );
    assert_errno(
        fs.create_dir(&path, 0o755).await,
        ErrorKind::NotADirectory,
        what("create_dir"),
    );
    assert_errno(
        fs.read_dir(&path).await,
        ErrorKind::NotADirectory,
        what("read_dir"),
    );
    assert_errno(
        fs.remove_file(&path).await,
        ErrorKind::NotADirectory,
        what("remove_file"),
    );
    assert_errno(
        fs.remove_dir(&path).await,
        ErrorKind::NotADirectory,
        what("remove_dir"),
    );
    let deeper = fx.path("f/x/y");
    assert_errno(
        fs.stat(&deeper).await,
        ErrorKind::NotADirectory,
        format_args!("stat {deeper}"),
    );
    assert_eq!(fx.read("f").await, "x");
}

/// `file/` is `ENOTDIR` for stat, lstat, open and remove_file, and changes nothing.
pub async fn trailing_slash_on_a_file_is_enotdir(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f/");
    assert!(path.has_trailing_slash());
    let what = |op: &str| format!("{op} {path}");
    let fs = &fx.fs;
    assert_errno(fs.stat(&path).await, ErrorKind::NotADirectory, what("stat"));
    assert_errno(
        fs.lstat(&path).await,
        ErrorKind::NotADirectory,
        what("lstat"),
    );
    assert_errno(
        fs.open(&path, crate::OpenOptions::read_only()).await,
        ErrorKind::NotADirectory,
        what("open"),
    );
    assert_errno(
        fs.read_file(&path).await,
        ErrorKind::NotADirectory,
        what("read_file"),
    );
    assert_errno(
        fs.remove_file(&path).await,
        ErrorKind::NotADirectory,
        what("remove_file"),
    );
    assert_eq!(fx.read("f").await, "x", "the file survives");
}

/// `dir/` works wherever a directory is expected.
pub async fn trailing_slash_on_a_dir_is_accepted(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("d/f", "x").await;
    assert!(fx.stat("d/").await.is_dir());
    assert!(fx.lstat("d/").await.is_dir());
    assert_eq!(fx.names("d/").await, ["f"]);
    let new_dir = fx.path("e/");
    fx.fs
        .create_dir(&new_dir, 0o755)
        .await
        .must(format_args!("create_dir {new_dir}"));
    assert!(fx.stat("e").await.is_dir());
    let gone = fx.path("e/");
    fx.fs
        .remove_dir(&gone)
        .await
        .must(format_args!("remove_dir {gone}"));
    assert!(!fx.is_there("e").await);
}

/// Creating a regular file at `name/` is `EISDIR` and creates nothing.
pub async fn create_with_trailing_slash_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("new/");
    assert_errno(
        fx.fs.write_file(&path, Bytes::from_static(b"x")).await,
        ErrorKind::IsADirectory,
        format_args!("write_file {path}"),
    );
    assert!(!fx.is_there("new").await);
}

/// `remove_file` removes the name from stat and from the listing.
pub async fn remove_file_removes_the_name(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    fx.write("keep", "y").await;
    let path = fx.path("f");
    fx.fs
        .remove_file(&path)
        .await
        .must(format_args!("remove_file {path}"));
    assert_errno(
        fx.fs.stat(&path).await,
        ErrorKind::NotFound,
        format_args!("stat {path} after remove_file"),
    );
    assert_eq!(fx.names("").await, ["keep"]);
    assert_eq!(fx.read("keep").await, "y");
}

/// `remove_file` of a missing name is `ENOENT`.
pub async fn remove_file_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.remove_file(&path).await,
        ErrorKind::NotFound,
        format_args!("remove_file {path}"),
    );
}

/// `remove_file` of a directory (with or without a trailing slash) is `EISDIR`.
pub async fn remove_file_of_dir_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    for name in ["d", "d/"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.remove_file(&path).await,
            ErrorKind::IsADirectory,
            format_args!("remove_file {path}"),
        );
    }
    assert!(fx.stat("d").await.is_dir());
}

/// `pwrite` overwrites in place; `pread` reads any range, short at the end.
pub async fn pread_and_pwrite_work_at_offsets(fx: Fixture) {
    if !fx.supports_random_writes().await {
        return;
    }
    fx.write("f", "abcdefgh").await;
    let path = fx.path("f");
    fx.fs
        .pwrite(&path, 2, Bytes::from_static(b"XYZ"))
        .await
        .must("pwrite at 2");
    assert_eq!(fx.read("f").await, "abXYZfgh");
    assert_eq!(fx.fs.pread(&path, 1, 3).await.must("pread 1..4"), "bXY");
    assert_eq!(fx.fs.pread(&path, 6, 100).await.must("pread 6.."), "gh");
    assert_eq!(fx.fs.pread(&path, 0, 0).await.must("pread of 0 bytes"), "");
    fx.fs
        .pwrite(&path, 6, Bytes::from_static(b"0123"))
        .await
        .must("pwrite across the end");
    assert_eq!(fx.read("f").await, "abXYZf0123");
    assert_eq!(fx.stat("f").await.size, 10);
}

/// `pread` at or past the end of the file returns nothing.
pub async fn pread_past_eof_is_empty(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "abc").await;
    let path = fx.path("f");
    assert_eq!(fx.fs.pread(&path, 3, 10).await.must("pread at EOF"), "");
    assert_eq!(
        fx.fs.pread(&path, 1000, 10).await.must("pread past EOF"),
        ""
    );
    assert_eq!(
        fx.fs
            .pread(&path, 1 << 40, 10)
            .await
            .must("pread far past EOF"),
        ""
    );
}

/// `pwrite` past the end leaves a hole that reads as zeros.
pub async fn pwrite_past_eof_leaves_a_zero_hole(fx: Fixture) {
    if !fx.supports_random_writes().await {
        return;
    }
    fx.write("f", "ab").await;
    let path = fx.path("f");
    fx.fs
        .pwrite(&path, 10, Bytes::from_static(b"cd"))
        .await
        .must("pwrite at 10");
    assert_eq!(fx.read("f").await, &b"ab\0\0\0\0\0\0\0\0cd"[..]);
    assert_eq!(fx.stat("f").await.size, 12);
}

/// `pwrite` on a missing file is `ENOENT` (it never creates).
pub async fn pwrite_on_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.pwrite(&path, 0, Bytes::from_static(b"x")).await,
        ErrorKind::NotFound,
        format_args!("pwrite {path}"),
    );
    assert!(!fx.is_there("missing").await);
}

/// A write at 1 MiB into an empty file: size 1 MiB + len, the hole reads as zeros and (for
/// drivers with sparse files) takes no space.
pub async fn sparse_write_at_one_mib_reads_zeros_in_the_hole(fx: Fixture) {
    let caps = fx.caps();
    const MIB: u64 = 1 << 20;
    fx.write("sparse", Bytes::new()).await;
    let path = fx.path("sparse");
    let result = fx.fs.pwrite(&path, MIB, Bytes::from_static(b"tail")).await;
    if !caps.random_writes {
        assert_errno(
            result,
            ErrorKind::Unsupported,
            format_args!("pwrite {path} at 1 MiB without random writes"),
        );
        return;
    }
    result.must("pwrite at 1 MiB");
    let meta = fx.stat("sparse").await;
    assert_eq!(meta.size, MIB + 4);
    if caps.sparse_files {
        assert!(
            meta.blocks * 512 < MIB,
            "a 1 MiB hole takes no space, but blocks = {}",
            meta.blocks
        );
    }
    let hole = fx
        .fs
        .pread(&path, 4096, 8192)
        .await
        .must("pread in the hole");
    assert_eq!(hole.len(), 8192);
    assert!(hole.iter().all(|&b| b == 0), "the hole reads as zeros");
    let edge = fx
        .fs
        .pread(&path, MIB - 2, 6)
        .await
        .must("pread at the edge");
    assert_eq!(edge, &b"\0\0tail"[..]);
    let all = fx.read("sparse").await;
    assert_eq!(all.len() as u64, MIB + 4);
    assert!(all[..MIB as usize].iter().all(|&b| b == 0));
    assert_eq!(&all[MIB as usize..], b"tail");
}

/// Truncating up extends with zeros.
pub async fn truncate_up_reads_zeros(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "abc").await;
    let path = fx.path("f");
    fx.fs.truncate(&path, 8).await.must("truncate to 8");
    assert_eq!(fx.stat("f").await.size, 8);
    assert_eq!(fx.read("f").await, &b"abc\0\0\0\0\0"[..]);
}

/// Truncating down drops the tail for good: extending again reads zeros, not old data.
pub async fn truncate_down_then_up_reads_zeros_not_old_data(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "abcdefgh").await;
    let path = fx.path("f");
    fx.fs.truncate(&path, 3).await.must("truncate to 3");
    assert_eq!(fx.read("f").await, "abc");
    assert_eq!(fx.stat("f").await.size, 3);
    fx.fs.truncate(&path, 6).await.must("truncate to 6");
    assert_eq!(fx.read("f").await, &b"abc\0\0\0"[..]);
    fx.fs.truncate(&path, 0).await.must("truncate to 0");
    assert_eq!(fx.read("f").await, "");
    assert_eq!(fx.stat("f").await.size, 0);
}

/// Truncating a directory is `EISDIR`.
pub async fn truncate_of_dir_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    let path = fx.path("d");
    assert_errno(
        fx.fs.truncate(&path, 0).await,
        ErrorKind::IsADirectory,
        format_args!("truncate {path}"),
    );
}

/// Truncating a missing file is `ENOENT` and creates nothing.
pub async fn truncate_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.truncate(&path, 10).await,
        ErrorKind::NotFound,
        format_args!("truncate {path}"),
    );
    assert!(!fx.is_there("missing").await);
}

/// `exists` is true for files and directories, false for missing names and for paths
/// through a file.
pub async fn exists_reports_files_dirs_and_missing(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    for (name, expected) in [
        ("f", true),
        ("d", true),
        ("d/", true),
        ("", true),
        ("missing", false),
        ("d/missing", false),
        ("f/x", false),
    ] {
        let path = fx.path(name);
        assert_eq!(
            fx.fs
                .exists(&path)
                .await
                .must(format_args!("exists {path}")),
            expected,
            "exists {path}"
        );
    }
}

/// Names with non-ASCII characters, spaces and punctuation are stored and listed exactly.
pub async fn unicode_and_odd_names_round_trip(fx: Fixture) {
    let _ = fx.caps();
    let names = [
        "héllo wörld",
        "日本語",
        "emoji 🦀",
        "with space",
        " leading",
        "trailing ",
        "a:b;c,d",
        "back\\slash",
        "new\nline",
        "-dash",
        "...dots",
        ".hidden",
        "%41",
    ];
    for (i, name) in names.iter().enumerate() {
        fx.write(name, format!("content {i}")).await;
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(fx.names("").await, expected);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(fx.read(name).await, format!("content {i}"), "{name:?}");
    }
}
