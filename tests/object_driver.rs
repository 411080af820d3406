//! The object driver: the shared conformance suite against object_store's in-memory store,
//! its local-filesystem store (on tmpfs) and S3 on a moto server over HTTP; then what is
//! particular to object storage: the layout another process reads back, plain objects
//! written by other tools, multipart streaming, visibility rules.

#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use vfs_core::conformance::Fixture;
use vfs_core::{DriverDescriptor, FileKind, FileSystem, OpenOptions, SetTime, Timestamp, VfsPath};
use vfs_drivers::object::{ObjectConfig, ObjectFs, Tuning};

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("a valid path")
}

/// A part size small enough that the suite's 3 MiB file streams through a multipart
/// upload (stores other than S3 take parts of any size).
fn small_parts() -> Tuning {
    Tuning {
        part_size: 1 << 20,
        ..Tuning::default()
    }
}

mod memory {
    use super::*;

    async fn make() -> Fixture {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let fs = ObjectFs::with_tuning(store, "tenant/a", small_parts(), "object")
            .expect("an object fs");
        Fixture::new(Arc::new(fs), VfsPath::root())
    }

    vfs_core::conformance_suite!(make);
}

mod local {
    use super::*;

    async fn make() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("vfs-object-")
            .tempdir_in("/dev/shm")
            .expect("a scratch directory on /dev/shm");
        let config: ObjectConfig = serde_json::from_value(serde_json::json!({
            "url": format!("file://{}", dir.path().display()),
            "partSize": 1 << 20,
        }))
        .expect("config");
        let fs = ObjectFs::from_config(config, "object").expect("an object fs");
        Fixture::new(Arc::new(fs), VfsPath::root()).keeping(dir)
    }

    vfs_core::conformance_suite!(make);
}

mod s3 {
    use super::*;

    async fn make() -> Fixture {
        let moto = moto::moto();
        let bucket = moto.bucket();
        let registry = vfs_drivers::builtin_registry();
        let fs = registry
            .build(&DriverDescriptor::new("s3", moto.config(&bucket, "suite")))
            .await
            .expect("an s3 mount on moto");
        assert_eq!(fs.kind(), "s3");
        Fixture::new(fs, VfsPath::root())
    }

    vfs_core::conformance_suite!(make);
}

/// Two drivers over one moto bucket: what one writes, the other reads back.
async fn two_s3_mounts() -> (
    Arc<dyn FileSystem>,
    Arc<dyn FileSystem>,
    Arc<dyn ObjectStore>,
) {
    let moto = moto::moto();
    let bucket = moto.bucket();
    let registry = vfs_drivers::builtin_registry();
    let config = moto.config(&bucket, "shared");
    let a = registry
        .build(&DriverDescriptor::new("s3", config.clone()))
        .await
        .expect("first mount");
    let b = registry
        .build(&DriverDescriptor::new("s3", config.clone()))
        .await
        .expect("second mount");
    let parsed: ObjectConfig = serde_json::from_value(config).expect("config");
    let raw = ObjectFs::from_config(parsed, "s3")
        .expect("fs")
        .store()
        .clone();
    (a, b, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_written_by_one_process_reads_back_in_another() {
    let (a, b, _) = two_s3_mounts().await;
    a.create_dir(&p("/empty"), 0o700).await.unwrap();
    a.create_dir_all(&p("/d/e"), 0o755).await.unwrap();
    a.write_file(&p("/d/e/f"), Bytes::from_static(b"content"))
        .await
        .unwrap();
    a.symlink("e/f", &p("/d/link")).await.unwrap();
    a.set_permissions(&p("/d/e/f"), 0o600).await.unwrap();
    a.set_owner(&p("/d/e/f"), Some(1000), Some(2000))
        .await
        .unwrap();
    let when = Timestamp(1_600_000_000_123_456_789);
    a.set_times(&p("/d/e/f"), SetTime::At(when), SetTime::At(when))
        .await
        .unwrap();

    let meta = b.stat(&p("/d/e/f")).await.unwrap();
    assert_eq!((meta.mode, meta.uid, meta.gid), (0o600, 1000, 2000));
    assert_eq!(meta.mtime, when);
    assert_eq!(meta.ino, a.stat(&p("/d/e/f")).await.unwrap().ino);
    assert_eq!(b.read_link(&p("/d/link")).await.unwrap(), "e/f");
    assert_eq!(b.read_file(&p("/d/link")).await.unwrap(), "content");
    let empty = b.stat(&p("/empty")).await.unwrap();
    assert!(empty.is_dir());
    assert_eq!(empty.mode, 0o700);
    assert!(b.read_dir(&p("/empty")).await.unwrap().is_empty());
    let mut names: Vec<(String, FileKind)> = b
        .read_dir(&p("/d"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    names.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        names,
        [
            ("e".to_owned(), FileKind::Directory),
            ("link".to_owned(), FileKind::Symlink)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_objects_from_other_tools_are_files_under_implicit_directories() {
    let (fs, _, raw) = two_s3_mounts().await;
    let put = |key: &'static str, body: &'static [u8]| {
        let raw = raw.clone();
        async move {
            // Path::parse keeps the key verbatim, as `aws s3 cp` would write it.
            raw.put(&Path::parse(key).unwrap(), PutPayload::from_static(body))
                .await
                .unwrap();
        }
    };
    put("shared/logs/2024/app.log", b"line\n").await;
    put("shared/top.txt", b"top").await;
    put("shared/file[1].txt", b"brackets").await;
    let meta = fs.stat(&p("/logs/2024/app.log")).await.unwrap();
    assert!(meta.is_file());
    assert_eq!((meta.size, meta.mode, meta.nlink), (5, 0o644, 1));
    assert!(
        meta.mtime > Timestamp(1_600_000_000_000_000_000),
        "{meta:?}"
    );
    let dir = fs.stat(&p("/logs")).await.unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.mode, 0o755);
    let mut root: Vec<String> = fs
        .read_dir(&VfsPath::root())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    root.sort();
    assert_eq!(root, ["file[1].txt", "logs", "top.txt"]);
    assert_eq!(fs.read_file(&p("/file[1].txt")).await.unwrap(), "brackets");
    // Writing into an implicit directory works and makes it explicit.
    fs.write_file(&p("/logs/2024/more.log"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    fs.remove_file(&p("/logs/2024/app.log")).await.unwrap();
    assert_eq!(fs.read_file(&p("/logs/2024/more.log")).await.unwrap(), "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_become_visible_to_other_processes_at_close() {
    let (a, b, _) = two_s3_mounts().await;
    a.write_file(&p("/f"), Bytes::from_static(b"old"))
        .await
        .unwrap();
    let handle = a
        .open(&p("/f"), OpenOptions::new().write(true).truncate(true))
        .await
        .unwrap();
    handle
        .write_at(0, Bytes::from_static(b"new content"))
        .await
        .unwrap();
    assert_eq!(a.read_file(&p("/f")).await.unwrap(), "new content");
    assert_eq!(
        b.read_file(&p("/f")).await.unwrap(),
        "old",
        "not before close"
    );
    handle.close().await.unwrap();
    assert_eq!(b.read_file(&p("/f")).await.unwrap(), "new content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_new_has_one_winner_across_processes() {
    let (a, b, _) = two_s3_mounts().await;
    let options = OpenOptions::new().write(true).create_new(true);
    let first = a.open(&p("/lock"), options).await;
    let second = b.open(&p("/lock"), options).await;
    assert!(first.is_ok());
    assert_eq!(second.err().map(|e| e.code()), Some("EEXIST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mkdirs_from_two_processes_lose_no_entry() {
    let (a, b, raw) = two_s3_mounts().await;
    a.create_dir(&p("/d"), 0o755).await.unwrap();
    let mut tasks = Vec::new();
    for (i, fs) in [a.clone(), b.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                fs.create_dir(&p(&format!("/d/{i}-{n}")), 0o755)
                    .await
                    .unwrap();
                fs.symlink("x", &p(&format!("/d/l{i}-{n}"))).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Both processes' manifest entries survived: 20 subdirectories count in nlink and
    // 20 symlinks are listed.
    let fresh = ObjectFs::new(raw, "shared").unwrap();
    let meta = fresh.stat(&p("/d")).await.unwrap();
    assert_eq!(meta.nlink, 22);
    let links = fresh
        .read_dir(&p("/d"))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == FileKind::Symlink)
        .count();
    assert_eq!(links, 20);
}

#[tokio::test]
async fn large_files_stream_in_parts_and_appear_at_close() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let fs = ObjectFs::with_tuning(store.clone(), "", small_parts(), "object").unwrap();
    let handle = fs
        .open(&p("/big"), OpenOptions::new().write(true).create(true))
        .await
        .unwrap();
    let chunk = Bytes::from(vec![7u8; 300 * 1024]);
    for i in 0..20u64 {
        handle
            .write_at(i * chunk.len() as u64, chunk.clone())
            .await
            .unwrap();
    }
    // Past a part, the upload streams: only the empty object exists so far.
    assert_eq!(store.head(&Path::from("big")).await.unwrap().size, 0);
    let err = handle
        .write_at(0, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ENOTSUP");
    handle.close().await.unwrap();
    assert_eq!(
        store.head(&Path::from("big")).await.unwrap().size,
        20 * 300 * 1024
    );
    let back = fs.read_file(&p("/big")).await.unwrap();
    assert!(back.iter().all(|&b| b == 7) && back.len() == 20 * 300 * 1024);
}

#[tokio::test]
async fn the_manifest_name_is_reserved_and_hidden() {
    let fs = ObjectFs::new(Arc::new(InMemory::new()), "").unwrap();
    fs.create_dir(&p("/d"), 0o755).await.unwrap();
    assert!(fs.read_dir(&p("/d")).await.unwrap().is_empty());
    let err = fs
        .write_file(&p("/d/.vfs-dir"), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "EINVAL");
}

#[tokio::test]
async fn registry_builds_both_ids_and_refuses_bad_configs() {
    let registry = vfs_drivers::builtin_registry();
    for id in ["s3", "object"] {
        let fs = registry
            .build(&DriverDescriptor::new(
                id,
                serde_json::json!({"url": "memory://x"}),
            ))
            .await
            .unwrap();
        assert_eq!(fs.kind(), id);
    }
    for bad in [
        serde_json::json!({"url": "memory://", "nope": 1}),
        serde_json::json!({"url": "gopher://x"}),
        serde_json::json!({"url": "s3://b", "partSize": 1024}),
    ] {
        let result = registry
            .build(&DriverDescriptor::new("s3", bad.clone()))
            .await;
        assert_eq!(result.err().map(|e| e.code()), Some("EINVAL"), "{bad}");
    }
    let secret = registry
        .build(&DriverDescriptor::new(
            "s3",
            serde_json::json!({"url": "s3://b", "partSize": 1, "secretAccessKey": "hunter2"}),
        ))
        .await
        .err()
        .unwrap();
    assert!(!format!("{secret} {secret:?}").contains("hunter2"));
}
