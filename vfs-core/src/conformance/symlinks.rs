//! Symbolic links: storage, following, loops, the hop limit, realpath, and how every call
//! treats a link.

use bytes::Bytes;

use super::{assert_errno, assert_kind, Fixture, Must};
use crate::{ErrorKind, FileKind, OpenOptions, SetTime, MAX_SYMLINK_HOPS};

/// Builds `chain/l0 -> target`, `chain/l{i} -> l{i-1}` up to `links` links, so that
/// `chain/l{links-1}` takes `links` hops to reach `chain/target`; plus `chain/s -> .`.
async fn build_chain(fx: &Fixture, links: usize) {
    fx.mkdir("chain").await;
    fx.write("chain/target", "end of the chain").await;
    fx.symlink(".", "chain/s").await;
    let mut previous = String::from("target");
    for i in 0..links {
        let name = format!("l{i}");
        fx.symlink(&previous, &format!("chain/{name}")).await;
        previous = name;
    }
}

/// A symlink stores its target exactly as given, and lstat reports it as a symlink whose
/// size is the target's length, with mode `0o777`.
pub async fn symlink_and_read_link_round_trip_verbatim(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    let absolute = fx.target("somewhere/else");
    let targets = [
        "plain",
        "../up/and/over",
        "a//b/./c/",
        "nowhere-at-all",
        absolute.as_str(),
        "héllo 🦀",
    ];
    for (i, target) in targets.iter().enumerate() {
        let name = format!("link{i}");
        fx.symlink(target, &name).await;
        let path = fx.path(&name);
        assert_eq!(
            fx.fs
                .read_link(&path)
                .await
                .must(format_args!("read_link {path}")),
            *target
        );
        let meta = fx.lstat(&name).await;
        assert_kind(&meta, FileKind::Symlink, format_args!("lstat {path}"));
        assert_eq!(meta.size, target.len() as u64, "size of {path}");
        assert_eq!(meta.st_mode(), FileKind::Symlink.mode_bits() | 0o777);
    }
}

/// `stat` follows symlinks (to files and directories); `lstat` describes the link itself.
pub async fn stat_follows_symlinks_and_lstat_does_not(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("file", "content").await;
    fx.mkdir("dir").await;
    fx.write("dir/inner", "x").await;
    fx.symlink("file", "to-file").await;
    fx.symlink("dir", "to-dir").await;
    let file = fx.stat("file").await;
    let followed = fx.stat("to-file").await;
    assert_kind(&followed, FileKind::File, "stat to-file");
    assert_eq!(followed.size, 7);
    assert_eq!(followed.ino, file.ino);
    let link = fx.lstat("to-file").await;
    assert_kind(&link, FileKind::Symlink, "lstat to-file");
    assert_eq!(link.size, 4);
    assert_ne!(link.ino, file.ino);
    assert_kind(&fx.stat("to-dir").await, FileKind::Directory, "stat to-dir");
    assert_kind(&fx.lstat("to-dir").await, FileKind::Symlink, "lstat to-dir");
    assert_eq!(fx.read("to-file").await, "content");
    assert_eq!(fx.names("to-dir").await, ["inner"]);
    fx.write("to-file", "rewritten through the link").await;
    assert_eq!(fx.read("file").await, "rewritten through the link");
    assert!(fx.lstat("to-file").await.is_symlink(), "still a link");
}

/// A dangling symlink: `stat`, `read_file` and paths through it are `ENOENT`; `lstat` and
/// `read_link` work.
pub async fn dangling_symlink_stat_is_enoent_but_lstat_works(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.symlink("nowhere", "dangling").await;
    let path = fx.path("dangling");
    assert_errno(
        fx.fs.stat(&path).await,
        ErrorKind::NotFound,
        format_args!("stat {path}"),
    );
    assert_errno(
        fx.fs.read_file(&path).await,
        ErrorKind::NotFound,
        format_args!("read_file {path}"),
    );
    let through = fx.path("dangling/x");
    assert_errno(
        fx.fs.stat(&through).await,
        ErrorKind::NotFound,
        format_args!("stat {through}"),
    );
    assert_errno(
        fx.fs.create_dir(&through, 0o755).await,
        ErrorKind::NotFound,
        format_args!("create_dir {through}"),
    );
    assert_kind(&fx.lstat("dangling").await, FileKind::Symlink, "lstat");
    assert_eq!(
        fx.fs.read_link(&path).await.must("read_link dangling"),
        "nowhere"
    );
    assert_eq!(fx.names("").await, ["dangling"]);
}

/// `exists` follows symlinks: false for a dangling one, true for one that resolves.
pub async fn exists_is_false_for_a_dangling_symlink(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("file", "x").await;
    fx.symlink("file", "good").await;
    fx.symlink("nowhere", "dangling").await;
    for (name, expected) in [("good", true), ("dangling", false), ("file", true)] {
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

/// Following a symlink loop is `ELOOP` for every call that resolves it; `lstat` of the
/// link itself works.
pub async fn symlink_loop_is_eloop(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.symlink("self", "self").await;
    fx.symlink("pong", "ping").await;
    fx.symlink("ping", "pong").await;
    for name in ["self", "ping", "self/x", "ping/x/y"] {
        let path = fx.path(name);
        let what = |op: &str| format!("{op} {path}");
        assert_errno(fx.fs.stat(&path).await, ErrorKind::Loop, what("stat"));
        assert_errno(
            fx.fs.read_file(&path).await,
            ErrorKind::Loop,
            what("read_file"),
        );
        assert_errno(
            fx.fs
                .open(&path, OpenOptions::new().write(true).create(true))
                .await,
            ErrorKind::Loop,
            what("open with create"),
        );
        assert_errno(
            fx.fs.read_dir(&path).await,
            ErrorKind::Loop,
            what("read_dir"),
        );
    }
    // With a trailing slash the loop must be resolved too (open with create would be
    // EISDIR there, as on Linux, so only lookups are checked).
    let path = fx.path("self/");
    for result in [
        fx.fs.stat(&path).await.map(drop),
        fx.fs.lstat(&path).await.map(drop),
        fx.fs.read_dir(&path).await.map(drop),
    ] {
        assert_errno(result, ErrorKind::Loop, format_args!("lookup of {path}"));
    }
    assert!(fx.lstat("self").await.is_symlink());
    assert!(fx.lstat("ping").await.is_symlink());
}

/// A chain of exactly [`MAX_SYMLINK_HOPS`] links resolves, whether the hops are in one
/// chain or spread over path components.
pub async fn symlink_chain_of_max_hops_resolves(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    build_chain(&fx, MAX_SYMLINK_HOPS).await;
    let last = format!("chain/l{}", MAX_SYMLINK_HOPS - 1);
    assert_eq!(fx.read(&last).await, "end of the chain");
    assert_eq!(fx.stat(&last).await.ino, fx.stat("chain/target").await.ino);
    let path = fx.path(&last);
    assert_eq!(
        fx.fs.realpath(&path).await.must("realpath of the chain"),
        fx.path("chain/target")
    );
    // 40 hops through `s -> .` components.
    let via_components = format!("chain/{}target", "s/".repeat(MAX_SYMLINK_HOPS));
    assert_eq!(fx.read(&via_components).await, "end of the chain");
    // 20 component hops plus a 20-link chain.
    let half = MAX_SYMLINK_HOPS / 2;
    let mixed = format!("chain/{}l{}", "s/".repeat(half), half - 1);
    assert_eq!(fx.read(&mixed).await, "end of the chain");
}

/// One hop more than [`MAX_SYMLINK_HOPS`] is `ELOOP`, counted over the whole resolution.
pub async fn symlink_chain_over_max_hops_is_eloop(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    build_chain(&fx, MAX_SYMLINK_HOPS + 1).await;
    let last = fx.path(&format!("chain/l{MAX_SYMLINK_HOPS}"));
    assert_errno(
        fx.fs.stat(&last).await,
        ErrorKind::Loop,
        format_args!("stat {last}"),
    );
    assert_errno(
        fx.fs.read_file(&last).await,
        ErrorKind::Loop,
        format_args!("read_file {last}"),
    );
    assert_errno(
        fx.fs.realpath(&last).await,
        ErrorKind::Loop,
        format_args!("realpath {last}"),
    );
    assert!(fx
        .lstat(&format!("chain/l{MAX_SYMLINK_HOPS}"))
        .await
        .is_symlink());
    let via_components = fx.path(&format!(
        "chain/{}target",
        "s/".repeat(MAX_SYMLINK_HOPS + 1)
    ));
    assert_errno(
        fx.fs.stat(&via_components).await,
        ErrorKind::Loop,
        format_args!("stat {via_components}"),
    );
    let half = MAX_SYMLINK_HOPS / 2;
    let mixed = fx.path(&format!("chain/{}l{half}", "s/".repeat(half)));
    assert_errno(
        fx.fs.stat(&mixed).await,
        ErrorKind::Loop,
        format_args!("stat {mixed}"),
    );
}

/// A relative target is resolved from the directory holding the link.
pub async fn relative_symlink_resolves_from_its_directory(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("top", "top level").await;
    fx.mkdir("sub").await;
    fx.write("sub/sibling", "next door").await;
    fx.symlink("../top", "sub/up").await;
    fx.symlink("sibling", "sub/side").await;
    fx.symlink("./sub/../sub/sibling", "winding").await;
    assert_eq!(fx.read("sub/up").await, "top level");
    assert_eq!(fx.read("sub/side").await, "next door");
    assert_eq!(fx.read("winding").await, "next door");
    // A link moved elsewhere resolves from its new directory.
    let (from, to) = (fx.path("sub/side"), fx.path("side"));
    fx.fs.rename(&from, &to).await.must("rename sub/side side");
    let path = fx.path("side");
    assert_errno(
        fx.fs.stat(&path).await,
        ErrorKind::NotFound,
        format_args!("stat {path} (now resolving to ./sibling)"),
    );
}

/// An absolute target is resolved from the root of the filesystem.
pub async fn absolute_symlink_resolves_from_the_fs_root(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("dir").await;
    fx.write("dir/file", "absolute").await;
    fx.mkdir("deep").await;
    fx.mkdir("deep/er").await;
    fx.symlink(&fx.target("dir/file"), "deep/er/to-file").await;
    fx.symlink(&fx.target("dir"), "deep/to-dir").await;
    assert_eq!(fx.read("deep/er/to-file").await, "absolute");
    assert_eq!(fx.read("deep/to-dir/file").await, "absolute");
    assert_eq!(fx.names("deep/to-dir").await, ["file"]);
}

/// A symlink to a directory in the middle of a path is followed for every operation.
pub async fn symlink_in_the_middle_of_a_path_is_followed(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.symlink("d", "ld").await;
    fx.write("ld/new", "through the link").await;
    fx.mkdir("ld/sub").await;
    assert_eq!(fx.names("d").await, ["new", "sub"]);
    assert_eq!(fx.read("d/new").await, "through the link");
    assert_kind(&fx.lstat("ld/new").await, FileKind::File, "lstat ld/new");
    let (from, to) = (fx.path("ld/new"), fx.path("ld/renamed"));
    fx.fs.rename(&from, &to).await.must("rename through a link");
    let path = fx.path("ld/renamed");
    fx.fs
        .remove_file(&path)
        .await
        .must("remove_file ld/renamed");
    assert_eq!(fx.names("d").await, ["sub"]);
    assert!(fx.lstat("ld").await.is_symlink());
}

/// `read_link` of a file or directory is `EINVAL`; of a missing name `ENOENT`.
pub async fn read_link_of_non_symlink_is_einval(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    for name in ["f", "d"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.read_link(&path).await,
            ErrorKind::InvalidInput,
            format_args!("read_link {path}"),
        );
    }
    let path = fx.path("missing");
    assert_errno(
        fx.fs.read_link(&path).await,
        ErrorKind::NotFound,
        format_args!("read_link {path}"),
    );
}

/// A symlink over any existing name (file, directory, symlink, dangling symlink) is
/// `EEXIST`, and nothing changes.
pub async fn symlink_over_existing_is_eexist(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    fx.symlink("f", "link").await;
    fx.symlink("nowhere", "dangling").await;
    for name in ["f", "d", "link", "dangling", "d/"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.symlink("other", &path).await,
            ErrorKind::AlreadyExists,
            format_args!("symlink {path}"),
        );
    }
    assert_eq!(fx.read("f").await, "x");
    assert!(fx.stat("d").await.is_dir());
    let path = fx.path("link");
    assert_eq!(fx.fs.read_link(&path).await.must("read_link link"), "f");
    let path = fx.path("dangling");
    assert_eq!(
        fx.fs.read_link(&path).await.must("read_link dangling"),
        "nowhere"
    );
}

/// `realpath` resolves every symlink on the way, relative and absolute, into a path of
/// the filesystem; a path without links is its own realpath.
pub async fn realpath_resolves_every_symlink(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("real").await;
    fx.mkdir("real/inner").await;
    fx.write("real/inner/file", "x").await;
    fx.symlink("real", "l1").await;
    fx.symlink("file", "real/inner/l2").await;
    fx.symlink(&fx.target("l1/inner"), "l3").await;
    fx.symlink("../real/./inner/l2", "real/l4").await;
    let expected = fx.path("real/inner/file");
    for name in ["l1/inner/l2", "l3/l2", "real/l4", "real/inner/file"] {
        let path = fx.path(name);
        assert_eq!(
            fx.fs
                .realpath(&path)
                .await
                .must(format_args!("realpath {path}")),
            expected,
            "realpath {path}"
        );
    }
    let path = fx.path("l1/");
    assert_eq!(
        fx.fs.realpath(&path).await.must("realpath l1/").as_str(),
        fx.path("real").as_str()
    );
    assert_eq!(
        fx.fs.realpath(&fx.base).await.must("realpath of the base"),
        fx.base
    );
}

/// `realpath` of a missing name or a dangling link is `ENOENT`, of a loop `ELOOP`, through
/// a file `ENOTDIR`.
pub async fn realpath_of_missing_or_looping_fails(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("f", "x").await;
    fx.symlink("nowhere", "dangling").await;
    fx.symlink("self", "self").await;
    for (name, kind) in [
        ("missing", ErrorKind::NotFound),
        ("dangling", ErrorKind::NotFound),
        ("self", ErrorKind::Loop),
        ("f/x", ErrorKind::NotADirectory),
        ("f/", ErrorKind::NotADirectory),
    ] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.realpath(&path).await,
            kind,
            format_args!("realpath {path}"),
        );
    }
}

/// Opening a dangling symlink with `create` (not `create_new`) creates its target.
pub async fn create_through_a_dangling_symlink_creates_its_target(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.symlink("target", "relative").await;
    fx.symlink(&fx.target("d/absolute-target"), "absolute")
        .await;
    fx.write("relative", "one").await;
    fx.write("absolute", "two").await;
    assert_eq!(fx.read("target").await, "one");
    assert_eq!(fx.read("d/absolute-target").await, "two");
    assert!(fx.lstat("relative").await.is_symlink());
    assert!(fx.lstat("absolute").await.is_symlink());
    assert_eq!(fx.lstat("target").await.kind, FileKind::File);
}

/// `create_new` on a symlink, dangling or not, is `EEXIST` and creates nothing.
pub async fn create_new_on_a_dangling_symlink_is_eexist(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.write("file", "x").await;
    fx.symlink("target", "dangling").await;
    fx.symlink("file", "good").await;
    for name in ["dangling", "good"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs
                .open(&path, OpenOptions::new().write(true).create_new(true))
                .await,
            ErrorKind::AlreadyExists,
            format_args!("open {path} with create_new"),
        );
    }
    assert!(!fx.is_there("target").await, "the target was not created");
    assert_eq!(fx.read("file").await, "x");
}

/// `link/` follows a symlink to a directory, even for lstat; for a symlink to a file it is
/// `ENOTDIR`.
pub async fn trailing_slash_follows_a_symlink_to_a_dir(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.write("d/inner", "x").await;
    fx.write("f", "x").await;
    fx.symlink("d", "ld").await;
    fx.symlink("f", "lf").await;
    assert_kind(&fx.stat("ld/").await, FileKind::Directory, "stat ld/");
    assert_kind(&fx.lstat("ld/").await, FileKind::Directory, "lstat ld/");
    assert_eq!(fx.lstat("ld/").await.ino, fx.stat("d").await.ino);
    assert_eq!(fx.names("ld/").await, ["inner"]);
    for name in ["lf/"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.stat(&path).await,
            ErrorKind::NotADirectory,
            format_args!("stat {path}"),
        );
        assert_errno(
            fx.fs.lstat(&path).await,
            ErrorKind::NotADirectory,
            format_args!("lstat {path}"),
        );
    }
}

/// `remove_file` of a symlink removes the link, never its target (`link/` is `ENOTDIR`
/// and removes nothing, as on Linux).
pub async fn remove_file_of_a_symlink_removes_only_the_link(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.write("d/inner", "x").await;
    fx.write("f", "y").await;
    fx.symlink("d", "ld").await;
    fx.symlink("f", "lf").await;
    fx.symlink("nowhere", "dangling").await;
    let path = fx.path("ld/");
    assert_errno(
        fx.fs.remove_file(&path).await,
        ErrorKind::NotADirectory,
        format_args!("remove_file {path}"),
    );
    for name in ["ld", "lf", "dangling"] {
        let path = fx.path(name);
        fx.fs
            .remove_file(&path)
            .await
            .must(format_args!("remove_file {path}"));
    }
    assert_eq!(fx.names("").await, ["d", "f"]);
    assert_eq!(fx.read("d/inner").await, "x");
    assert_eq!(fx.read("f").await, "y");
}

/// `remove_dir` of a symlink to a directory is `ENOTDIR`, with or without a slash.
pub async fn remove_dir_of_a_symlink_to_a_dir_is_enotdir(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.symlink("d", "ld").await;
    for name in ["ld", "ld/"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.remove_dir(&path).await,
            ErrorKind::NotADirectory,
            format_args!("remove_dir {path}"),
        );
    }
    assert!(fx.lstat("ld").await.is_symlink());
    assert!(fx.stat("d").await.is_dir());
}

/// `remove_dir_all` of a symlink to a directory removes the link only.
pub async fn remove_dir_all_of_a_symlink_removes_only_the_link(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.write("d/inner", "x").await;
    fx.symlink("d", "ld").await;
    let path = fx.path("ld");
    fx.fs
        .remove_dir_all(&path)
        .await
        .must(format_args!("remove_dir_all {path}"));
    assert_eq!(fx.names("").await, ["d"]);
    assert_eq!(fx.read("d/inner").await, "x");
}

/// `create_dir_all` goes through a symlink to a directory.
pub async fn create_dir_all_through_a_symlink_to_a_dir(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    fx.mkdir("d").await;
    fx.symlink("d", "ld").await;
    let path = fx.path("ld/a/b");
    fx.fs
        .create_dir_all(&path, 0o755)
        .await
        .must(format_args!("create_dir_all {path}"));
    assert!(fx.stat("d/a/b").await.is_dir());
    let path = fx.path("ld");
    fx.fs
        .create_dir_all(&path, 0o755)
        .await
        .must("create_dir_all of a symlink to a dir");
    assert!(fx.lstat("ld").await.is_symlink());
}

/// chmod, chown, utimes and truncate through a symlink act on the target.
pub async fn metadata_calls_follow_symlinks(fx: Fixture) {
    if !fx.supports_symlinks().await {
        return;
    }
    let caps = fx.caps();
    fx.write("f", "content").await;
    fx.symlink("f", "lf").await;
    let link = fx.path("lf");
    let before = fx.lstat("lf").await;
    if caps.permissions {
        fx.fs
            .set_permissions(&link, 0o600)
            .await
            .must("set_permissions lf");
        assert_eq!(fx.stat("f").await.mode, 0o600);
    }
    if caps.ownership {
        fx.fs
            .set_owner(&link, Some(4321), Some(8765))
            .await
            .must("set_owner lf");
        let meta = fx.stat("f").await;
        assert_eq!((meta.uid, meta.gid), (4321, 8765));
    }
    if caps.set_times {
        fx.fs
            .set_times(
                &link,
                SetTime::At(super::OLD_TIME),
                SetTime::At(super::OLD_TIME),
            )
            .await
            .must("set_times lf");
        assert_eq!(fx.stat("f").await.mtime, super::OLD_TIME);
    }
    fx.fs.truncate(&link, 3).await.must("truncate lf");
    assert_eq!(fx.read("f").await, "con");
    fx.fs
        .pwrite(&link, 3, Bytes::from_static(b"!"))
        .await
        .must("pwrite lf at its end");
    assert_eq!(fx.read("f").await, "con!");
    let after = fx.lstat("lf").await;
    assert_kind(&after, FileKind::Symlink, "lstat lf");
    assert_eq!(after.size, before.size, "the link itself is unchanged");
    assert_eq!(after.ino, before.ino);
}
