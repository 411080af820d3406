//! Metadata: modes, ownership, timestamps and the POSIX rules that update them.

use bytes::Bytes;

use super::{assert_errno, wait_for_clock_past, Fixture, Must, OLD_TIME};
use crate::{ErrorKind, FileKind, Metadata, OpenOptions, SetTime, Timestamp};

/// A time was moved off [`OLD_TIME`] by an operation, to something later.
#[track_caller]
fn assert_moved(time: Timestamp, what: &str) {
    assert!(
        time > OLD_TIME,
        "{what}: expected the time to advance past {OLD_TIME:?}, got {time:?}"
    );
}

/// After a content or directory change, ctime is at least the new mtime.
#[track_caller]
fn assert_ctime_covers_mtime(meta: &Metadata, what: &str) {
    assert!(
        meta.ctime >= meta.mtime,
        "{what}: ctime {:?} is before mtime {:?}",
        meta.ctime,
        meta.mtime
    );
}

/// `st_mode` carries the type bits; `mode` only the permission bits.
pub async fn st_mode_has_the_type_bits(fx: Fixture) {
    let caps = fx.caps();
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    let mut expected = vec![("f", FileKind::File), ("d", FileKind::Directory)];
    if caps.symlinks {
        fx.symlink("f", "l").await;
        expected.push(("l", FileKind::Symlink));
    }
    for (name, kind) in expected {
        let meta = fx.lstat(name).await;
        assert_eq!(meta.kind, kind, "{name}");
        assert_eq!(
            meta.mode & !0o7777,
            0,
            "{name}: mode holds only permission bits"
        );
        assert_eq!(
            meta.st_mode() & 0o170000,
            kind.mode_bits(),
            "{name}: st_mode type bits"
        );
        assert_eq!(FileKind::from_mode(meta.st_mode()), Some(kind));
    }
}

/// A created file gets the mode its `OpenOptions` name (no umask); opening an existing
/// file with another mode changes nothing.
pub async fn new_file_mode_comes_from_open_options(fx: Fixture) {
    if !fx.supports_permissions().await {
        return;
    }
    for (name, mode, create_new) in [
        ("a", 0o600, false),
        ("b", 0o755, false),
        ("c", 0o640, true),
        ("d", 0o7777, false),
    ] {
        let options = OpenOptions::new()
            .write(true)
            .create(!create_new)
            .create_new(create_new)
            .mode(mode);
        let handle = fx.open(name, options).await;
        assert_eq!(handle.stat().await.must("handle stat").mode, mode, "{name}");
        handle.close().await.must("close");
        let meta = fx.stat(name).await;
        assert_eq!(meta.mode, mode, "{name}");
        assert_eq!(meta.st_mode(), FileKind::File.mode_bits() | mode);
    }
    let handle = fx
        .open("a", OpenOptions::new().write(true).create(true).mode(0o777))
        .await;
    handle.close().await.must("close");
    assert_eq!(
        fx.stat("a").await.mode,
        0o600,
        "an existing file keeps its mode"
    );
}

/// `write_file` creates files with mode `0o644`.
pub async fn write_file_creates_mode_0644(fx: Fixture) {
    if !fx.supports_permissions().await {
        return;
    }
    fx.write("f", "x").await;
    assert_eq!(fx.stat("f").await.mode, 0o644);
}

/// `create_dir` keeps the mode it was given, the sticky bit included.
pub async fn create_dir_keeps_its_mode(fx: Fixture) {
    if !fx.supports_permissions().await {
        return;
    }
    for (name, mode) in [("private", 0o700), ("shared", 0o1777), ("plain", 0o755)] {
        let path = fx.path(name);
        fx.fs
            .create_dir(&path, mode)
            .await
            .must(format_args!("create_dir {path}"));
        let meta = fx.stat(name).await;
        assert_eq!(meta.mode, mode, "{name}");
        assert!(meta.is_dir());
    }
}

/// `set_permissions` keeps all twelve bits (setuid, setgid, sticky) and never the type.
pub async fn set_permissions_keeps_all_twelve_bits(fx: Fixture) {
    if !fx.supports_permissions().await {
        return;
    }
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    for (name, kind) in [("f", FileKind::File), ("d", FileKind::Directory)] {
        let path = fx.path(name);
        for mode in [0o7777, 0o4755, 0o2750, 0o1777, 0o000, 0o644] {
            fx.fs
                .set_permissions(&path, mode)
                .await
                .must(format_args!("set_permissions {path} {mode:o}"));
            let meta = fx.stat(name).await;
            assert_eq!(meta.mode, mode, "{name} after chmod {mode:o}");
            assert_eq!(meta.kind, kind, "chmod does not change the type");
            assert_eq!(meta.st_mode(), kind.mode_bits() | mode);
        }
    }
    assert_eq!(fx.read("f").await, "x");
}

/// `set_owner` sets uid and/or gid; `None` leaves each as it is.
pub async fn set_owner_changes_uid_and_gid(fx: Fixture) {
    if !fx.supports_ownership().await {
        return;
    }
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    for name in ["f", "d"] {
        let path = fx.path(name);
        let chown = |uid, gid| {
            let path = path.clone();
            let fs = fx.fs.clone();
            async move {
                fs.set_owner(&path, uid, gid)
                    .await
                    .must(format_args!("set_owner {path} {uid:?} {gid:?}"));
            }
        };
        chown(Some(1000), Some(2000)).await;
        let meta = fx.stat(name).await;
        assert_eq!((meta.uid, meta.gid), (1000, 2000), "{name}");
        chown(None, Some(3000)).await;
        let meta = fx.stat(name).await;
        assert_eq!((meta.uid, meta.gid), (1000, 3000), "{name}");
        chown(Some(4000), None).await;
        let meta = fx.stat(name).await;
        assert_eq!((meta.uid, meta.gid), (4000, 3000), "{name}");
        chown(None, None).await;
        let meta = fx.stat(name).await;
        assert_eq!((meta.uid, meta.gid), (4000, 3000), "{name}");
        chown(Some(0), Some(0)).await;
        let meta = fx.stat(name).await;
        assert_eq!((meta.uid, meta.gid), (0, 0), "{name}");
        assert!(meta.kind == FileKind::File || meta.kind == FileKind::Directory);
    }
}

/// As on Linux, changing the owner of a regular file clears its setuid bit and its
/// setgid bit (when group-executable), even for root.
pub async fn set_owner_clears_setuid_and_setgid(fx: Fixture) {
    if !fx.supports_ownership().await || !fx.supports_permissions().await {
        return;
    }
    fx.write("f", "x").await;
    let path = fx.path("f");
    fx.fs
        .set_permissions(&path, 0o6755)
        .await
        .must("set_permissions 6755");
    fx.fs
        .set_owner(&path, Some(1000), Some(1000))
        .await
        .must("set_owner");
    assert_eq!(fx.stat("f").await.mode, 0o755);
}

/// `set_times` stores both times to the nanosecond, before the epoch too.
pub async fn set_times_sets_exact_nanoseconds(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    let cases = [
        (
            Timestamp(1_234_567_890_123_456_789),
            Timestamp(1_600_000_000_000_000_001),
        ),
        (Timestamp(0), Timestamp(999_999_999)),
        (Timestamp(-1_234_567_890), Timestamp(-1)),
    ];
    for name in ["f", "d"] {
        let path = fx.path(name);
        for (atime, mtime) in cases {
            fx.fs
                .set_times(&path, SetTime::At(atime), SetTime::At(mtime))
                .await
                .must(format_args!("set_times {path}"));
            let meta = fx.stat(name).await;
            assert_eq!((meta.atime, meta.mtime), (atime, mtime), "{name}");
        }
    }
}

/// `SetTime::Omit` leaves that time alone.
pub async fn set_times_omit_leaves_the_time(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    fx.write("f", "x").await;
    let path = fx.path("f");
    let (a, m) = (
        Timestamp(1_100_000_000_000_000_000),
        Timestamp(1_200_000_000_000_000_000),
    );
    let set = |atime, mtime| {
        let path = path.clone();
        let fs = fx.fs.clone();
        async move {
            fs.set_times(&path, atime, mtime)
                .await
                .must(format_args!("set_times {path} {atime:?} {mtime:?}"));
        }
    };
    set(SetTime::At(a), SetTime::At(m)).await;
    set(SetTime::Omit, SetTime::At(OLD_TIME)).await;
    let meta = fx.stat("f").await;
    assert_eq!((meta.atime, meta.mtime), (a, OLD_TIME));
    set(SetTime::At(OLD_TIME), SetTime::Omit).await;
    let meta = fx.stat("f").await;
    assert_eq!((meta.atime, meta.mtime), (OLD_TIME, OLD_TIME));
    set(SetTime::At(a), SetTime::At(m)).await;
    set(SetTime::Omit, SetTime::Omit).await;
    let meta = fx.stat("f").await;
    assert_eq!((meta.atime, meta.mtime), (a, m));
}

/// `SetTime::Now` takes the current time (within a generous second of the wall clock).
pub async fn set_times_now_uses_the_current_time(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    fx.write("f", "x").await;
    fx.age("f").await;
    let path = fx.path("f");
    let before = Timestamp::now();
    fx.fs
        .set_times(&path, SetTime::Now, SetTime::Now)
        .await
        .must("set_times now");
    let after = Timestamp::now();
    let meta = fx.stat("f").await;
    const SLACK: i64 = 1_000_000_000;
    for (which, time) in [("atime", meta.atime), ("mtime", meta.mtime)] {
        assert!(
            time.0 >= before.0 - SLACK && time.0 <= after.0 + SLACK,
            "{which} {time:?} is not now ({before:?}..{after:?})"
        );
    }
    assert_ctime_covers_mtime(&meta, "after set_times now");
    fx.age("f").await;
    fx.fs
        .set_times(&path, SetTime::Omit, SetTime::Now)
        .await
        .must("set_times omit/now");
    let meta = fx.stat("f").await;
    assert_eq!(meta.atime, OLD_TIME);
    assert_moved(meta.mtime, "mtime after set_times now");
}

/// Writing moves mtime and ctime (not atime), through the path and through a handle.
pub async fn write_updates_mtime_and_ctime(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    fx.write("f", "abc").await;
    let path = fx.path("f");
    fx.age("f").await;
    fx.fs
        .pwrite(&path, 3, Bytes::from_static(b"def"))
        .await
        .must("pwrite");
    let meta = fx.stat("f").await;
    assert_moved(meta.mtime, "mtime after pwrite");
    assert_ctime_covers_mtime(&meta, "after pwrite");
    assert_eq!(meta.atime, OLD_TIME, "writing does not touch atime");
    fx.age("f").await;
    let handle = fx.open("f", OpenOptions::new().append(true)).await;
    handle
        .write_at(0, Bytes::from_static(b"!"))
        .await
        .must("append");
    handle.close().await.must("close");
    let meta = fx.stat("f").await;
    assert_moved(meta.mtime, "mtime after an append");
    assert_ctime_covers_mtime(&meta, "after an append");
    fx.age("f").await;
    fx.write("f", "rewritten").await;
    assert_moved(fx.stat("f").await.mtime, "mtime after write_file");
}

/// Truncating (down, up, and on open) moves mtime and ctime.
pub async fn truncate_updates_mtime_and_ctime(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    fx.write("f", "abcdef").await;
    let path = fx.path("f");
    for len in [2, 10] {
        fx.age("f").await;
        fx.fs.truncate(&path, len).await.must("truncate");
        let meta = fx.stat("f").await;
        assert_moved(meta.mtime, &format!("mtime after truncate to {len}"));
        assert_ctime_covers_mtime(&meta, "after truncate");
    }
    fx.age("f").await;
    let handle = fx
        .open("f", OpenOptions::new().write(true).truncate(true))
        .await;
    handle.close().await.must("close");
    assert_moved(fx.stat("f").await.mtime, "mtime after open with truncate");
}

/// chmod (and chown) move ctime but leave mtime and atime alone.
pub async fn set_permissions_updates_ctime_only(fx: Fixture) {
    if !fx.supports_set_times().await || !fx.supports_permissions().await {
        return;
    }
    let caps = fx.caps();
    fx.write("f", "x").await;
    let path = fx.path("f");
    fx.age("f").await;
    let before = fx.stat("f").await;
    wait_for_clock_past(before.ctime).await;
    fx.fs
        .set_permissions(&path, 0o600)
        .await
        .must("set_permissions");
    let meta = fx.stat("f").await;
    assert!(
        meta.ctime > before.ctime,
        "chmod moves ctime: {:?} -> {:?}",
        before.ctime,
        meta.ctime
    );
    assert_eq!((meta.atime, meta.mtime), (OLD_TIME, OLD_TIME));
    if caps.ownership {
        wait_for_clock_past(meta.ctime).await;
        fx.fs
            .set_owner(&path, Some(1234), None)
            .await
            .must("set_owner");
        let after = fx.stat("f").await;
        assert!(after.ctime > meta.ctime, "chown moves ctime");
        assert_eq!((after.atime, after.mtime), (OLD_TIME, OLD_TIME));
    }
}

/// A new hard link moves the file's ctime, not its mtime.
pub async fn hard_link_updates_ctime(fx: Fixture) {
    if !fx.supports_set_times().await || !fx.supports_hard_links().await {
        return;
    }
    fx.write("f", "x").await;
    fx.age("f").await;
    let before = fx.stat("f").await;
    wait_for_clock_past(before.ctime).await;
    let (existing, new) = (fx.path("f"), fx.path("g"));
    fx.fs.hard_link(&existing, &new).await.must("hard_link");
    let meta = fx.stat("f").await;
    assert!(
        meta.ctime > before.ctime,
        "link moves ctime: {:?} -> {:?}",
        before.ctime,
        meta.ctime
    );
    assert_eq!(meta.mtime, OLD_TIME);
    let before = meta;
    wait_for_clock_past(before.ctime).await;
    fx.fs.remove_file(&new).await.must("remove_file g");
    let meta = fx.stat("f").await;
    assert!(
        meta.ctime > before.ctime,
        "unlink of another link moves ctime"
    );
    assert_eq!(meta.mtime, OLD_TIME);
}

/// Creating or removing an entry moves the parent's mtime (and ctime); changing a file's
/// content does not.
pub async fn create_and_remove_update_parent_mtime(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    let caps = fx.caps();
    fx.mkdir("p").await;
    let check = |what: &'static str| {
        let fx = fx.clone();
        async move {
            let meta = fx.stat("p").await;
            assert_moved(meta.mtime, what);
            assert_ctime_covers_mtime(&meta, what);
            fx.age("p").await;
        }
    };
    fx.age("p").await;
    fx.write("p/f", "x").await;
    check("parent mtime after creating a file").await;
    let path = fx.path("p/f");
    fx.fs
        .pwrite(&path, 1, Bytes::from_static(b"y"))
        .await
        .must("pwrite");
    assert_eq!(
        fx.stat("p").await.mtime,
        OLD_TIME,
        "writing a file leaves its directory's mtime"
    );
    fx.fs.remove_file(&path).await.must("remove_file");
    check("parent mtime after removing a file").await;
    fx.mkdir("p/sub").await;
    check("parent mtime after create_dir").await;
    let sub = fx.path("p/sub");
    fx.fs.remove_dir(&sub).await.must("remove_dir");
    check("parent mtime after remove_dir").await;
    let handle = fx
        .open("p/new", OpenOptions::new().write(true).create_new(true))
        .await;
    handle.close().await.must("close");
    check("parent mtime after open with create_new").await;
    if caps.symlinks {
        fx.symlink("new", "p/link").await;
        check("parent mtime after symlink").await;
    }
    if caps.hard_links {
        let (existing, new) = (fx.path("p/new"), fx.path("p/hard"));
        fx.fs.hard_link(&existing, &new).await.must("hard_link");
        check("parent mtime after hard_link").await;
    }
}

/// A rename moves the mtime of both parents (and of the one parent, within a directory).
pub async fn rename_updates_both_parents_mtime(fx: Fixture) {
    if !fx.supports_set_times().await {
        return;
    }
    fx.mkdir("src").await;
    fx.mkdir("dst").await;
    fx.write("src/f", "x").await;
    fx.age("src").await;
    fx.age("dst").await;
    let (from, to) = (fx.path("src/f"), fx.path("dst/f"));
    fx.fs.rename(&from, &to).await.must("rename across");
    for name in ["src", "dst"] {
        let meta = fx.stat(name).await;
        assert_moved(meta.mtime, &format!("{name} mtime after rename"));
        assert_ctime_covers_mtime(&meta, name);
    }
    fx.age("dst").await;
    let (from, to) = (fx.path("dst/f"), fx.path("dst/g"));
    fx.fs.rename(&from, &to).await.must("rename within");
    assert_moved(fx.stat("dst").await.mtime, "dst mtime after rename within");
}

/// Metadata calls on a missing name are `ENOENT`.
pub async fn metadata_calls_on_missing_are_enoent(fx: Fixture) {
    let caps = fx.caps();
    let path = fx.path("missing");
    let what = |op: &str| format!("{op} {path}");
    assert_errno(fx.fs.stat(&path).await, ErrorKind::NotFound, what("stat"));
    assert_errno(fx.fs.lstat(&path).await, ErrorKind::NotFound, what("lstat"));
    if caps.permissions {
        assert_errno(
            fx.fs.set_permissions(&path, 0o644).await,
            ErrorKind::NotFound,
            what("set_permissions"),
        );
    }
    if caps.ownership {
        assert_errno(
            fx.fs.set_owner(&path, Some(1), Some(1)).await,
            ErrorKind::NotFound,
            what("set_owner"),
        );
    }
    if caps.set_times {
        assert_errno(
            fx.fs.set_times(&path, SetTime::Now, SetTime::Now).await,
            ErrorKind::NotFound,
            what("set_times"),
        );
    }
    assert!(!fx.is_there("missing").await);
}
