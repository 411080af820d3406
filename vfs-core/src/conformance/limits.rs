//! Limits: name and path lengths, statfs, large directories.

use std::collections::HashSet;

use bytes::Bytes;

use super::{assert_errno, Fixture, Must};
use crate::{ErrorKind, FileKind, VfsPath, MAX_NAME_BYTES, MAX_PATH_BYTES};

/// A 255-byte name (ASCII or multi-byte UTF-8) works for files and directories.
pub async fn name_of_255_bytes_works(fx: Fixture) {
    let _ = fx.caps();
    let ascii = "n".repeat(MAX_NAME_BYTES);
    // 85 three-byte characters: 255 bytes.
    let wide = "語".repeat(MAX_NAME_BYTES / 3);
    assert_eq!(wide.len(), MAX_NAME_BYTES);
    fx.write(&ascii, "long").await;
    fx.mkdir(&wide).await;
    fx.write(&format!("{wide}/{ascii}"), "nested").await;
    assert_eq!(fx.read(&ascii).await, "long");
    assert_eq!(fx.read(&format!("{wide}/{ascii}")).await, "nested");
    let mut expected = vec![ascii.clone(), wide.clone()];
    expected.sort();
    assert_eq!(fx.names("").await, expected);
    let joined = fx.base.join(&ascii).must("join of a 255-byte name");
    assert_eq!(fx.fs.read_file(&joined).await.must("read_file"), "long");
}

/// A 256-byte name is `ENAMETOOLONG`, whether parsed with `VfsPath::new` or joined.
pub async fn name_of_256_bytes_is_enametoolong(fx: Fixture) {
    let _ = fx.caps();
    let name = "n".repeat(MAX_NAME_BYTES + 1);
    assert_errno(
        VfsPath::new(&format!("{}/{name}", fx.base.as_str())),
        ErrorKind::NameTooLong,
        "VfsPath::new with a 256-byte name",
    );
    assert_errno(
        fx.base.join(&name),
        ErrorKind::NameTooLong,
        "VfsPath::join of a 256-byte name",
    );
    let wide = format!("{}x", "語".repeat(MAX_NAME_BYTES / 3));
    assert_errno(
        fx.base.join(&wide),
        ErrorKind::NameTooLong,
        "VfsPath::join of a 256-byte UTF-8 name",
    );
    assert!(fx.names("").await.is_empty());
}

/// A path over 4095 bytes is `ENAMETOOLONG`.
pub async fn path_over_4095_bytes_is_enametoolong(fx: Fixture) {
    let _ = fx.caps();
    let component = "c".repeat(200);
    let mut path = fx.base.as_str().to_owned();
    while path.len() <= MAX_PATH_BYTES {
        path.push('/');
        path.push_str(&component);
    }
    assert_errno(
        VfsPath::new(&path),
        ErrorKind::NameTooLong,
        format_args!("VfsPath::new of {} bytes", path.len()),
    );
    // Joining past the limit fails too.
    let mut current = fx.base.clone();
    let failed = loop {
        match current.join(&component) {
            Ok(next) => current = next,
            Err(err) => break err,
        }
    };
    assert_eq!(failed.kind(), ErrorKind::NameTooLong, "{failed}");
    assert!(current.as_str().len() <= MAX_PATH_BYTES);
}

/// `statfs` reports consistent numbers.
pub async fn statfs_reports_sane_numbers(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", Bytes::from(vec![7u8; 100_000])).await;
    fx.mkdir("d").await;
    for name in ["", "f", "d"] {
        let path = fx.path(name);
        let stats = fx
            .fs
            .statfs(&path)
            .await
            .must(format_args!("statfs {path}"));
        assert!(stats.block_size > 0, "{path}: {stats:?}");
        assert!(stats.blocks_free <= stats.blocks, "{path}: {stats:?}");
        assert!(
            stats.blocks_available <= stats.blocks_free,
            "{path}: {stats:?}"
        );
        assert!(stats.files_free <= stats.files, "{path}: {stats:?}");
        assert!(stats.name_max > 0, "{path}: {stats:?}");
        assert!(
            stats.name_max as usize >= MAX_NAME_BYTES,
            "{path}: the driver must take 255-byte names: {stats:?}"
        );
    }
}

/// `statfs` of a missing path is `ENOENT`.
pub async fn statfs_of_missing_is_enoent(fx: Fixture) {
    let _ = fx.caps();
    let path = fx.path("missing");
    assert_errno(
        fx.fs.statfs(&path).await,
        ErrorKind::NotFound,
        format_args!("statfs {path}"),
    );
}

/// 2,000 files in one directory are each listed exactly once, with their kind.
pub async fn many_entries_are_listed_exactly_once(fx: Fixture) {
    let _ = fx.caps();
    const COUNT: usize = 2_000;
    fx.mkdir("d").await;
    for i in 0..COUNT {
        fx.write(&format!("d/entry-{i:05}"), Bytes::new()).await;
    }
    let path = fx.path("d");
    let entries = fx.fs.read_dir(&path).await.must("read_dir d");
    assert_eq!(entries.len(), COUNT);
    let mut seen = HashSet::new();
    for entry in &entries {
        assert_eq!(entry.kind, FileKind::File, "{entry:?}");
        assert!(
            seen.insert(entry.name.clone()),
            "{} listed twice",
            entry.name
        );
    }
    for i in 0..COUNT {
        assert!(
            seen.contains(&format!("entry-{i:05}")),
            "entry-{i:05} missing"
        );
    }
    // Removing half leaves exactly the other half.
    for i in (0..COUNT).step_by(2) {
        let path = fx.path(&format!("d/entry-{i:05}"));
        fx.fs.remove_file(&path).await.must("remove_file");
    }
    let names = fx.names("d").await;
    assert_eq!(names.len(), COUNT / 2);
    assert!(names.iter().all(|name| {
        let i: usize = name["entry-".len()..].parse().expect("a number");
        i % 2 == 1
    }));
}

/// Offsets and lengths at the edge of `u64`/`usize` fail cleanly (or read nothing): no
/// panic, no attempt to allocate what was asked, and the file is left as it was.
pub async fn extreme_offsets_and_lengths_fail_cleanly(fx: Fixture) {
    let caps = fx.caps();
    fx.write("f", "keep").await;
    let path = fx.path("f");
    let read = fx.fs.pread(&path, u64::MAX, usize::MAX).await;
    if let Ok(data) = &read {
        assert!(
            data.is_empty(),
            "pread at u64::MAX returned {} bytes",
            data.len()
        );
    } else {
        super::assert_errno_any(read, &[ErrorKind::InvalidInput], "pread at u64::MAX");
    }
    let read = fx
        .fs
        .pread(&path, 0, usize::MAX)
        .await
        .must("pread of usize::MAX bytes");
    assert_eq!(read, "keep");
    if caps.random_writes {
        super::assert_errno_any(
            fx.fs
                .pwrite(&path, u64::MAX - 1, Bytes::from_static(b"xyz"))
                .await,
            &[ErrorKind::FileTooLarge, ErrorKind::InvalidInput],
            "pwrite ending past u64::MAX",
        );
    }
    super::assert_errno_any(
        fx.fs.truncate(&path, u64::MAX).await,
        &[
            ErrorKind::FileTooLarge,
            ErrorKind::InvalidInput,
            ErrorKind::NoSpace,
        ],
        "truncate to u64::MAX",
    );
    assert_eq!(fx.read("f").await, "keep");
}
