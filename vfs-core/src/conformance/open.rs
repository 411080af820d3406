//! `open` and its options: create, create_new, truncate, append, access modes.

use bytes::Bytes;

use super::{assert_errno, assert_errno_any, Fixture, Must};
use crate::{ErrorKind, OpenOptions};

/// `create_new` creates a missing file, readable and writable through the handle.
pub async fn create_new_creates_a_missing_file(fx: Fixture) {
    let _ = fx.caps();
    let options = OpenOptions::new().read(true).write(true).create_new(true);
    let handle = fx.open("new", options).await;
    let written = handle
        .write_at(0, Bytes::from_static(b"fresh"))
        .await
        .must("write_at 0");
    assert_eq!(written, 5);
    assert_eq!(handle.read_at(0, 100).await.must("read_at 0"), "fresh");
    handle.close().await.must("close");
    assert_eq!(fx.read("new").await, "fresh");
    assert_eq!(fx.stat("new").await.nlink, 1);
}

/// `create_new` on an existing file or directory is `EEXIST` and leaves it as it was.
pub async fn create_new_on_existing_is_eexist(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "keep").await;
    fx.mkdir("d").await;
    for name in ["f", "d"] {
        let path = fx.path(name);
        let options = OpenOptions::new()
            .write(true)
            .create_new(true)
            .truncate(true);
        assert_errno(
            fx.fs.open(&path, options).await,
            ErrorKind::AlreadyExists,
            format_args!("open {path} with create_new"),
        );
    }
    assert_eq!(fx.read("f").await, "keep");
    assert!(fx.stat("d").await.is_dir());
}

/// Opening a missing file without `create` is `ENOENT`, for reading and for writing.
pub async fn open_missing_without_create_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    for options in [
        OpenOptions::read_only(),
        OpenOptions::new().write(true),
        OpenOptions::new().append(true),
        OpenOptions::new().write(true).truncate(true),
    ] {
        assert_errno(
            fx.fs.open(&path, options).await,
            ErrorKind::NotFound,
            format_args!("open {path} {options:?}"),
        );
    }
    assert!(!fx.is_there("missing").await);
}

/// `create` on an existing file opens it as it is.
pub async fn open_with_create_keeps_existing_content(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "existing").await;
    let ino = fx.stat("f").await.ino;
    let handle = fx
        .open("f", OpenOptions::new().read(true).write(true).create(true))
        .await;
    assert_eq!(handle.read_at(0, 100).await.must("read_at"), "existing");
    handle.close().await.must("close");
    assert_eq!(fx.read("f").await, "existing");
    assert_eq!(fx.stat("f").await.ino, ino);
}

/// `truncate` empties the file on open.
pub async fn open_with_truncate_empties_the_file(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "some old content").await;
    let handle = fx
        .open(
            "f",
            OpenOptions::new().read(true).write(true).truncate(true),
        )
        .await;
    assert_eq!(handle.stat().await.must("handle stat").size, 0);
    assert_eq!(handle.read_at(0, 100).await.must("read_at"), "");
    handle
        .write_at(0, Bytes::from_static(b"new"))
        .await
        .must("write_at");
    handle.close().await.must("close");
    assert_eq!(fx.read("f").await, "new");
}

/// Without `truncate`, writes overwrite in place and keep the rest.
pub async fn write_without_truncate_overwrites_in_place(fx: Fixture) {
    if !fx.supports_random_writes().await {
        return;
    }
    fx.write("f", "abcdef").await;
    let handle = fx.open("f", OpenOptions::new().write(true)).await;
    handle
        .write_at(1, Bytes::from_static(b"XY"))
        .await
        .must("write_at 1");
    handle.close().await.must("close");
    assert_eq!(fx.read("f").await, "aXYdef");
    assert_eq!(fx.stat("f").await.size, 6);
}

/// With `append`, every write goes to the end of the file, whatever offset it names,
/// including after the file grew through another handle.
pub async fn append_writes_go_to_the_end_whatever_the_offset(fx: Fixture) {
    let _ = fx.caps();
    fx.write("log", "abc").await;
    let handle = fx.open("log", OpenOptions::new().append(true)).await;
    for (offset, data) in [(0, "1"), (1, "22"), (1000, "333")] {
        let written = handle
            .write_at(offset, Bytes::from(data))
            .await
            .must(format_args!("append write_at {offset}"));
        assert_eq!(written, data.len());
    }
    assert_eq!(fx.read("log").await, "abc122333");
    let other = fx.open("log", OpenOptions::new().append(true)).await;
    other
        .write_at(0, Bytes::from_static(b"|"))
        .await
        .must("second appender");
    handle
        .write_at(0, Bytes::from_static(b"$"))
        .await
        .must("first appender after the second");
    assert_eq!(fx.read("log").await, "abc122333|$");
    let reader_writer = fx
        .open(
            "log",
            OpenOptions::new().read(true).write(true).append(true),
        )
        .await;
    reader_writer
        .write_at(2, Bytes::from_static(b"#"))
        .await
        .must("append with read");
    assert_eq!(
        reader_writer.read_at(0, 100).await.must("read_at"),
        "abc122333|$#"
    );
    assert_eq!(fx.stat("log").await.size, 12);
}

/// Opening a directory for writing (write, append, truncate, create) is `EISDIR`; opened
/// for reading, reading its content is `EISDIR`.
pub async fn open_dir_for_write_is_eisdir(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    let path = fx.path("d");
    for options in [
        OpenOptions::new().write(true),
        OpenOptions::new().append(true),
        OpenOptions::new().read(true).write(true),
        OpenOptions::new().write(true).truncate(true),
        OpenOptions::new().write(true).create(true),
    ] {
        assert_errno(
            fx.fs.open(&path, options).await,
            ErrorKind::IsADirectory,
            format_args!("open {path} {options:?}"),
        );
    }
    // Linux opens a directory read-only and fails the read; failing the open is as good.
    match fx.fs.open(&path, OpenOptions::read_only()).await {
        Ok(handle) => assert_errno(
            handle.read_at(0, 10).await,
            ErrorKind::IsADirectory,
            format_args!("read_at on a directory handle {path}"),
        ),
        Err(err) => assert_eq!(
            err.kind(),
            ErrorKind::IsADirectory,
            "open {path} read-only: {err}"
        ),
    }
    assert!(fx.stat("d").await.is_dir());
}

/// Reading through a handle opened only for writing is `EBADF`.
pub async fn read_on_write_only_handle_is_ebadf(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "secret").await;
    for options in [
        OpenOptions::new().write(true),
        OpenOptions::new().append(true),
    ] {
        let handle = fx.open("f", options).await;
        assert_errno(
            handle.read_at(0, 10).await,
            ErrorKind::BadHandle,
            format_args!("read_at on a handle opened {options:?}"),
        );
    }
}

/// Writing through a handle opened only for reading is `EBADF`; the file is unchanged.
pub async fn write_on_read_only_handle_is_ebadf(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "original").await;
    let handle = fx.open("f", OpenOptions::read_only()).await;
    assert_errno(
        handle.write_at(0, Bytes::from_static(b"changed")).await,
        ErrorKind::BadHandle,
        "write_at on a read-only handle",
    );
    assert_errno(
        handle.write_at(8, Bytes::from_static(b"more")).await,
        ErrorKind::BadHandle,
        "write_at at the end on a read-only handle",
    );
    assert_eq!(fx.read("f").await, "original");
}

/// `set_len` through a read-only handle fails (`EINVAL` as Linux's `ftruncate`, or
/// `EBADF`) and changes nothing.
pub async fn set_len_on_read_only_handle_fails(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "original").await;
    let handle = fx.open("f", OpenOptions::read_only()).await;
    assert_errno_any(
        handle.set_len(2).await,
        &[ErrorKind::InvalidInput, ErrorKind::BadHandle],
        "set_len on a read-only handle",
    );
    assert_eq!(fx.read("f").await, "original");
}

/// Writing nothing past the end neither extends the file nor fails.
pub async fn empty_write_past_eof_does_not_extend(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "abc").await;
    let handle = fx.open("f", OpenOptions::new().write(true)).await;
    let written = handle.write_at(100, Bytes::new()).await;
    if fx.caps().random_writes {
        assert_eq!(written.must("write_at 100 of nothing"), 0);
    }
    handle.close().await.must("close");
    assert_eq!(fx.stat("f").await.size, 3);
    assert_eq!(fx.read("f").await, "abc");
}
