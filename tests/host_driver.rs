//! The host driver: the shared conformance suite over a fresh tmpfs directory (once per
//! blocking strategy), then what only a host directory can show: the host's view of what
//! the driver did, the config, read-only mode, and errors that never leak host paths.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vfs_core::conformance::Fixture;
use vfs_core::{
    parse_config, DriverDescriptor, DriverRegistry, ErrorKind, FileKind, FileSystem, OpenOptions,
    SetTime, Timestamp, VfsPath, XattrMode,
};
use vfs_drivers::host::{Blocking, HostConfig, HostFs};

#[path = "common/scratch.rs"]
mod common_scratch;

fn scratch() -> &'static Path {
    common_scratch::scratch("vfs-host-driver-tests-")
}

/// A fresh, empty host directory for one test.
fn fresh_dir() -> PathBuf {
    tempfile::Builder::new()
        .prefix("case-")
        .tempdir_in(scratch())
        .expect("create a fixture directory")
        .keep()
}

/// A fresh, empty host directory that the fixture owns and removes after its case.
fn owned_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("case-")
        .tempdir_in(scratch())
        .expect("create a fixture directory")
}

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("valid test path")
}

#[track_caller]
fn assert_errno<T: std::fmt::Debug>(result: vfs_core::Result<T>, kind: ErrorKind) {
    match result {
        Ok(value) => panic!("expected {}, got Ok({value:?})", kind.code()),
        Err(err) => assert_eq!(err.kind(), kind, "expected {}, got {err}", kind.code()),
    }
}

async fn make() -> Fixture {
    let dir = owned_dir();
    let fs = HostFs::new(dir.path()).expect("build the host driver");
    Fixture::new(Arc::new(fs), VfsPath::root()).keeping(dir)
}

vfs_core::conformance_suite!(make);

/// The suite again with every syscall handed to tokio's blocking pool.
mod spawn_blocking {
    use super::*;

    async fn make() -> Fixture {
        let dir = owned_dir();
        let fs = HostFs::new(dir.path()).expect("build the host driver");
        Fixture::new(
            Arc::new(fs.with_blocking(Blocking::SpawnBlocking)),
            VfsPath::root(),
        )
        .keeping(dir)
    }

    vfs_core::conformance_suite!(make);
}

/// The suite again with every syscall on the calling thread.
mod inline {
    use super::*;

    async fn make() -> Fixture {
        let dir = owned_dir();
        let fs = HostFs::new(dir.path()).expect("build the host driver");
        Fixture::new(
            Arc::new(fs.with_blocking(Blocking::Inline)),
            VfsPath::root(),
        )
        .keeping(dir)
    }

    vfs_core::conformance_suite!(make);
}

/// A recursive picture of a host tree: path -> (kind, mode, size, mtime, content hash).
fn host_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut tree = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list host dir") {
            let path = entry.expect("host dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat host entry");
            let detail = if meta.is_dir() {
                pending.push(path.clone());
                String::new()
            } else if meta.file_type().is_symlink() {
                format!("{:?}", std::fs::read_link(&path).expect("readlink"))
            } else {
                format!("{:?}", std::fs::read(&path).expect("read host file"))
            };
            let line = format!(
                "{:o} {} {} {}.{} {detail}",
                meta.mode(),
                meta.len(),
                meta.nlink(),
                meta.mtime(),
                meta.mtime_nsec()
            );
            tree.insert(
                path.strip_prefix(root).expect("beneath root").to_path_buf(),
                line,
            );
        }
    }
    tree
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_config_refuses_every_mutation_with_erofs_and_changes_nothing() {
    let dir = fresh_dir();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/f"), "content").unwrap();
    std::fs::write(dir.join("empty"), "").unwrap();
    std::os::unix::fs::symlink("d/f", dir.join("link")).unwrap();
    let before = host_tree(&dir);

    let config: HostConfig = parse_config(
        "host_dir",
        serde_json::json!({"hostPath": dir, "readOnly": true}),
    )
    .unwrap();
    let fs = HostFs::build(config).unwrap();
    assert!(fs.capabilities().read_only);

    // Reads work.
    assert_eq!(fs.read_file(&p("/d/f")).await.unwrap(), "content");
    assert_eq!(fs.read_file(&p("/link")).await.unwrap(), "content");
    assert_eq!(fs.read_dir(&p("/")).await.unwrap().len(), 3);
    assert_eq!(fs.pread(&p("/d/f"), 1, 3).await.unwrap(), "ont");
    let handle = fs.open(&p("/d/f"), OpenOptions::read_only()).await.unwrap();
    assert_eq!(handle.read_at(0, 4).await.unwrap(), "cont");
    assert_errno(
        handle.write_at(0, Bytes::from_static(b"x")).await,
        ErrorKind::BadHandle,
    );

    // Every mutation, on existing and missing paths alike, is EROFS.
    let data = || Bytes::from_static(b"x");
    for path in ["/d/f", "/missing", "/d", "/link"] {
        let path = p(path);
        assert_errno(fs.write_file(&path, data()).await, ErrorKind::ReadOnly);
        assert_errno(fs.pwrite(&path, 0, data()).await, ErrorKind::ReadOnly);
        assert_errno(fs.truncate(&path, 0).await, ErrorKind::ReadOnly);
        assert_errno(fs.create_dir(&path, 0o755).await, ErrorKind::ReadOnly);
        assert_errno(fs.create_dir_all(&path, 0o755).await, ErrorKind::ReadOnly);
        assert_errno(fs.remove_file(&path).await, ErrorKind::ReadOnly);
        assert_errno(fs.remove_dir(&path).await, ErrorKind::ReadOnly);
        assert_errno(fs.remove_dir_all(&path).await, ErrorKind::ReadOnly);
        assert_errno(fs.rename(&path, &p("/renamed")).await, ErrorKind::ReadOnly);
        assert_errno(fs.symlink("t", &path).await, ErrorKind::ReadOnly);
        assert_errno(fs.hard_link(&p("/d/f"), &path).await, ErrorKind::ReadOnly);
        assert_errno(fs.set_permissions(&path, 0o777).await, ErrorKind::ReadOnly);
        assert_errno(
            fs.set_owner(&path, Some(1), Some(1)).await,
            ErrorKind::ReadOnly,
        );
        assert_errno(
            fs.set_times(&path, SetTime::Now, SetTime::Now).await,
            ErrorKind::ReadOnly,
        );
        assert_errno(
            fs.set_xattr(&path, "user.x", data(), XattrMode::Upsert)
                .await,
            ErrorKind::ReadOnly,
        );
        assert_errno(fs.remove_xattr(&path, "user.x").await, ErrorKind::ReadOnly);
        for options in [
            OpenOptions::new().write(true),
            OpenOptions::new().append(true),
            OpenOptions::new().read(true).create(true),
            OpenOptions::new().read(true).create_new(true),
            OpenOptions::new().read(true).truncate(true),
        ] {
            assert_errno(fs.open(&path, options).await.map(drop), ErrorKind::ReadOnly);
        }
    }
    assert_eq!(
        host_tree(&dir),
        before,
        "a read-only driver changed the host tree"
    );
}

#[test]
fn config_is_camel_case_rejects_unknown_fields_and_defaults_to_writable() {
    let config: HostConfig =
        parse_config("host_dir", serde_json::json!({"hostPath": "/srv/x"})).unwrap();
    assert_eq!(config, HostConfig::new("/srv/x"));
    assert!(!config.read_only, "readOnly defaults to false");
    for bad in [
        serde_json::json!({"hostPath": "/srv/x", "readonly": true}),
        serde_json::json!({"hostPath": "/srv/x", "extra": 1}),
        serde_json::json!({"host_path": "/srv/x"}),
        serde_json::json!({"readOnly": true}),
        serde_json::json!({}),
        serde_json::Value::Null,
        serde_json::json!({"hostPath": 7}),
        serde_json::json!({"hostPath": "/srv/x", "readOnly": "yes"}),
    ] {
        let err = parse_config::<HostConfig>("host_dir", bad.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
}

#[tokio::test]
async fn registry_builds_it_and_reports_bad_configs_and_roots() {
    let registry = DriverRegistry::new();
    registry.register_fn("host_dir", HostFs::build).unwrap();
    let dir = fresh_dir();
    std::fs::write(dir.join("file"), "x").unwrap();
    let build = |config: serde_json::Value| {
        let registry = &registry;
        async move {
            registry
                .build(&DriverDescriptor::new("host_dir", config))
                .await
        }
    };

    let fs = build(serde_json::json!({"hostPath": dir})).await.unwrap();
    assert_eq!(fs.kind(), "host_dir");
    assert!(!fs.capabilities().read_only);
    assert_eq!(fs.read_file(&p("/file")).await.unwrap(), "x");

    let bad = build(serde_json::json!({"hostPath": dir, "typo": true})).await;
    assert_errno(bad.map(drop), ErrorKind::InvalidInput);
    assert_errno(
        build(serde_json::json!({})).await.map(drop),
        ErrorKind::InvalidInput,
    );
    let missing = build(serde_json::json!({"hostPath": dir.join("missing")})).await;
    assert_errno(missing.map(drop), ErrorKind::NotFound);
    let not_dir = build(serde_json::json!({"hostPath": dir.join("file")})).await;
    assert_errno(not_dir.map(drop), ErrorKind::NotADirectory);
    assert_errno(
        HostFs::new(dir.join("missing")).map(drop),
        ErrorKind::NotFound,
    );
    assert_errno(
        HostFs::new(dir.join("file")).map(drop),
        ErrorKind::NotADirectory,
    );
    assert_errno(HostFs::new("").map(drop), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_created_through_the_driver_appear_on_the_host_with_exact_modes() {
    let dir = fresh_dir();
    let fs = HostFs::new(&dir).unwrap();
    // Modes a umask of 022 or 077 would trim: the driver applies them as given.
    fs.create_dir(&p("/open"), 0o777).await.unwrap();
    fs.create_dir(&p("/open/sticky"), 0o1777).await.unwrap();
    let options = OpenOptions::new().write(true).create(true).mode(0o666);
    let handle = fs.open(&p("/open/shared"), options).await.unwrap();
    handle
        .write_at(0, Bytes::from_static(b"shared data"))
        .await
        .unwrap();
    handle.close().await.unwrap();
    fs.write_file(&p("/open/plain"), Bytes::from_static(b"plain"))
        .await
        .unwrap();

    let mode = |path: &str| {
        std::fs::metadata(dir.join(path))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("open"), 0o40777);
    assert_eq!(mode("open/sticky"), 0o41777);
    assert_eq!(mode("open/shared"), 0o100666);
    assert_eq!(mode("open/plain"), 0o100644);
    assert_eq!(
        std::fs::read(dir.join("open/shared")).unwrap(),
        b"shared data"
    );
    assert_eq!(std::fs::read(dir.join("open/plain")).unwrap(), b"plain");

    // An existing file keeps its mode when opened with create.
    std::fs::set_permissions(
        dir.join("open/plain"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs.write_file(&p("/open/plain"), Bytes::from_static(b"again"))
        .await
        .unwrap();
    assert_eq!(mode("open/plain"), 0o100600);
    assert_eq!(std::fs::read(dir.join("open/plain")).unwrap(), b"again");

    // And the host's changes show through at once: nothing is cached.
    std::fs::write(dir.join("open/plain"), "from the host").unwrap();
    assert_eq!(
        fs.read_file(&p("/open/plain")).await.unwrap(),
        "from the host"
    );
    std::fs::remove_file(dir.join("open/plain")).unwrap();
    assert_errno(fs.stat(&p("/open/plain")).await, ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_stored_verbatim_and_absolute_targets_start_at_the_driver_root() {
    let dir = fresh_dir();
    let fs = HostFs::new(&dir).unwrap();
    fs.create_dir(&p("/etc"), 0o755).await.unwrap();
    fs.write_file(&p("/etc/passwd"), Bytes::from_static(b"guest passwd"))
        .await
        .unwrap();
    fs.symlink("/etc/passwd", &p("/abs")).await.unwrap();
    fs.symlink("etc/../etc/passwd", &p("/rel")).await.unwrap();
    fs.symlink("../../../../etc/passwd", &p("/etc/climb"))
        .await
        .unwrap();

    assert_eq!(
        std::fs::read_link(dir.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    for link in ["/abs", "/rel", "/etc/climb"] {
        assert_eq!(
            fs.read_file(&p(link)).await.unwrap(),
            "guest passwd",
            "{link}"
        );
        assert_eq!(
            fs.realpath(&p(link)).await.unwrap(),
            p("/etc/passwd"),
            "{link}"
        );
    }
    assert_eq!(fs.lstat(&p("/abs")).await.unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.lstat(&p("/abs")).await.unwrap().size, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_ownership_xattrs_links_and_holes_pass_through_to_the_host() {
    let dir = fresh_dir();
    let fs = HostFs::new(&dir).unwrap();
    let file = p("/f");
    fs.write_file(&file, Bytes::from_static(b"x"))
        .await
        .unwrap();

    let atime = Timestamp::from_parts(1_234_567_890, 123_456_789);
    let mtime = Timestamp::from_parts(1_300_000_000, 987_654_321);
    fs.set_times(&file, SetTime::At(atime), SetTime::At(mtime))
        .await
        .unwrap();
    let host = std::fs::metadata(dir.join("f")).unwrap();
    assert_eq!(
        (host.atime(), host.atime_nsec()),
        (1_234_567_890, 123_456_789)
    );
    assert_eq!(
        (host.mtime(), host.mtime_nsec()),
        (1_300_000_000, 987_654_321)
    );
    let meta = fs.stat(&file).await.unwrap();
    assert_eq!((meta.atime, meta.mtime), (atime, mtime));
    fs.set_times(&file, SetTime::Omit, SetTime::Now)
        .await
        .unwrap();
    let meta = fs.stat(&file).await.unwrap();
    assert_eq!(meta.atime, atime);
    assert!(meta.mtime > mtime);

    if rustix::process::geteuid().is_root() {
        fs.set_owner(&file, Some(1234), Some(5678)).await.unwrap();
        let host = std::fs::metadata(dir.join("f")).unwrap();
        assert_eq!((host.uid(), host.gid()), (1234, 5678));
        fs.set_owner(&file, None, Some(42)).await.unwrap();
        let meta = fs.stat(&file).await.unwrap();
        assert_eq!((meta.uid, meta.gid), (1234, 42));
    }

    if fs.capabilities().xattrs {
        fs.set_xattr(
            &file,
            "user.note",
            Bytes::from_static(b"hi"),
            XattrMode::CreateOnly,
        )
        .await
        .unwrap();
        let host = rustix::fs::getxattr(dir.join("f"), "user.note", &mut [0u8; 16][..]).unwrap();
        assert_eq!(host, 2);
        rustix::fs::setxattr(
            dir.join("f"),
            "user.host",
            b"set on host",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        assert_eq!(
            fs.get_xattr(&file, "user.host").await.unwrap(),
            "set on host"
        );
        let mut names = fs.list_xattrs(&file).await.unwrap();
        names.sort();
        assert_eq!(names, ["user.host", "user.note"]);
        fs.remove_xattr(&file, "user.note").await.unwrap();
        assert_errno(
            fs.get_xattr(&file, "user.note").await,
            ErrorKind::NoAttribute,
        );
    }

    fs.hard_link(&file, &p("/g")).await.unwrap();
    let (f, g) = (
        std::fs::metadata(dir.join("f")).unwrap(),
        std::fs::metadata(dir.join("g")).unwrap(),
    );
    assert_eq!((f.ino(), f.nlink()), (g.ino(), 2));
    assert_eq!(fs.stat(&p("/g")).await.unwrap().ino, f.ino());

    fs.pwrite(&file, 64 << 20, Bytes::from_static(b"end"))
        .await
        .unwrap();
    let host = std::fs::metadata(dir.join("f")).unwrap();
    assert_eq!(host.len(), (64 << 20) + 3);
    let meta = fs.stat(&file).await.unwrap();
    assert_eq!(meta.blocks, host.blocks());
    assert!(
        meta.blocks < 64,
        "a 64 MiB hole took {} blocks",
        meta.blocks
    );
    assert_eq!(
        fs.pread(&file, 1 << 20, 4).await.unwrap(),
        Bytes::from_static(&[0; 4])
    );

    let statfs = fs.statfs(&p("/")).await.unwrap();
    let host = rustix::fs::statvfs(&dir).unwrap();
    assert_eq!(statfs.blocks, host.f_blocks);
    assert_eq!(u64::from(statfs.block_size), host.f_frsize);
    assert_eq!(u64::from(statfs.name_max), host.f_namemax);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_driver_path_never_the_host_path() {
    let dir = fresh_dir();
    let fs = HostFs::new(&dir).unwrap();
    fs.write_file(&p("/file"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let host = dir.to_str().unwrap().to_owned();
    let errors = [
        fs.stat(&p("/missing/x")).await.unwrap_err(),
        fs.read_file(&p("/file/x")).await.unwrap_err(),
        fs.create_dir(&p("/file"), 0o755).await.unwrap_err(),
        fs.rename(&p("/missing"), &p("/y")).await.unwrap_err(),
        fs.open(&p("/nope"), OpenOptions::read_only())
            .await
            .map(drop)
            .unwrap_err(),
    ];
    let expected = [
        ("stat", "/missing/x", ErrorKind::NotFound),
        ("open", "/file/x", ErrorKind::NotADirectory),
        ("mkdir", "/file", ErrorKind::AlreadyExists),
        ("rename", "/missing", ErrorKind::NotFound),
        ("open", "/nope", ErrorKind::NotFound),
    ];
    for (err, (operation, path, kind)) in errors.iter().zip(expected) {
        assert_eq!(
            (err.operation(), err.path(), err.kind()),
            (operation, Some(path), kind)
        );
        assert!(!err.to_string().contains(&host), "{err}");
        assert!(!format!("{err:?}").contains(&host), "{err:?}");
    }
}

/// The same small workload through one strategy.
async fn workload(fs: &HostFs, name: &str) {
    let dir = p(&format!("/{name}"));
    fs.create_dir(&dir, 0o755).await.unwrap();
    let file = dir.join("f").unwrap();
    fs.write_file(&file, Bytes::from_static(b"data"))
        .await
        .unwrap();
    assert_eq!(fs.read_file(&file).await.unwrap(), "data");
    let handle = fs
        .open(&file, OpenOptions::new().read(true).write(true))
        .await
        .unwrap();
    handle.write_at(4, Bytes::from_static(b"!")).await.unwrap();
    assert_eq!(handle.read_at(0, 10).await.unwrap(), "data!");
    assert_eq!(handle.stat().await.unwrap().size, 5);
    assert_eq!(fs.read_dir(&dir).await.unwrap().len(), 1);
    fs.remove_dir_all(&dir).await.unwrap();
}

#[test]
fn every_blocking_strategy_works_with_and_without_a_runtime() {
    let dir = fresh_dir();
    let strategies = [Blocking::Auto, Blocking::SpawnBlocking, Blocking::Inline];
    for (n, blocking) in strategies.into_iter().enumerate() {
        let fs = Arc::new(HostFs::new(&dir).unwrap().with_blocking(blocking));

        // No runtime at all: another executor drives the futures.
        futures::executor::block_on(workload(&fs, &format!("none{n}")));

        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        current.block_on(workload(&fs, &format!("current{n}")));

        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        multi.block_on(workload(&fs, &format!("block-on{n}")));
        let tasks: Vec<_> = (0..4)
            .map(|task| {
                let fs = Arc::clone(&fs);
                multi.spawn(async move { workload(&fs, &format!("multi{n}-{task}")).await })
            })
            .collect();
        multi.block_on(async {
            for task in tasks {
                task.await.unwrap();
            }
        });
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_fifo_never_hangs() {
    // Opening a FIFO for writing blocks until a reader comes; with O_NONBLOCK the driver
    // gets ENXIO at once instead, and a read-only open does not wait either.
    let dir = fresh_dir();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let fs = HostFs::new(&dir).unwrap();
    let started = Instant::now();
    let handle = fs
        .open(&p("/fifo"), OpenOptions::read_only())
        .await
        .unwrap();
    assert!(handle.read_at(0, 1).await.is_err(), "pread on a FIFO");
    drop(handle);
    let write = fs.open(&p("/fifo"), OpenOptions::new().write(true)).await;
    assert!(
        write.is_err(),
        "a FIFO without a reader cannot be opened for writing"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fs.lstat(&p("/fifo")).await.unwrap().kind, FileKind::Fifo);
    assert_eq!(fs.read_dir(&p("/")).await.unwrap()[0].kind, FileKind::Fifo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_utf8_are_listed_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let dir = fresh_dir();
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), "x").unwrap();
    let fs = HostFs::new(&dir).unwrap();
    let entries = fs.read_dir(&p("/")).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "bad\u{fffd}name");
    assert_eq!(entries[0].kind, FileKind::File);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_stays_pinned_when_the_host_renames_it() {
    let dir = fresh_dir();
    std::fs::create_dir(dir.join("served")).unwrap();
    std::fs::write(dir.join("served/f"), "original").unwrap();
    let fs = HostFs::new(dir.join("served")).unwrap();
    std::fs::rename(dir.join("served"), dir.join("moved")).unwrap();
    std::fs::create_dir(dir.join("served")).unwrap();
    assert_eq!(fs.read_file(&p("/f")).await.unwrap(), "original");
    assert_eq!(fs.host_path(), dir.join("served"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_capabilities_and_debug() {
    let dir = fresh_dir();
    let fs = HostFs::new(&dir).unwrap();
    assert_eq!(fs.kind(), "host_dir");
    let caps = fs.capabilities();
    assert!(caps.symlinks && caps.hard_links && caps.permissions && caps.sparse_files);
    assert!(!caps.read_only && !fs.is_read_only());
    let shown = format!("{fs:?}");
    assert!(
        shown.contains("HostFs") && shown.contains("Auto"),
        "{shown}"
    );
}
