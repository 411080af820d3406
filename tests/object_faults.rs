//! The object driver under a store that misbehaves: failed requests, a store slower than
//! the deadline, short and corrupt bodies, an interrupted multipart upload. Each surfaces
//! as `EIO` or `ETIMEDOUT` naming the operation and the path, never as a panic, a hang or
//! a partly visible file.

#[allow(dead_code)]
#[path = "common/faulty_store.rs"]
mod faulty_store;
#[path = "common/moto.rs"]
mod moto;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faulty_store::{Faults, Faulty};
use object_store::aws::AmazonS3Builder;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use vfs_core::{ErrorKind, FileSystem, OpenOptions, VfsError, VfsPath};
use vfs_drivers::object::{ObjectFs, Tuning};

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("a valid path")
}

fn tuning() -> Tuning {
    Tuning {
        part_size: 1 << 20,
        timeout: Duration::from_millis(300),
        ..Tuning::default()
    }
}

fn faulty(inner: Arc<dyn ObjectStore>, tuning: Tuning) -> (ObjectFs, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(Faulty {
        inner,
        faults: faults.clone(),
    });
    let fs = ObjectFs::with_tuning(store, "", tuning, "object").expect("an object fs");
    (fs, faults)
}

/// The error names an operation and a mount-relative path, and has the expected errno.
#[track_caller]
fn assert_contextual(err: &VfsError, kinds: &[ErrorKind]) {
    assert!(kinds.contains(&err.kind()), "unexpected errno: {err}");
    let path = err.path().unwrap_or_else(|| panic!("no path in {err}"));
    assert!(path.starts_with('/'), "{err}");
    assert!(!err.operation().is_empty(), "{err}");
}

/// A small workload touching every kind of request.
async fn workload(fs: &ObjectFs) -> Result<(), VfsError> {
    fs.create_dir(&p("/d"), 0o755).await?;
    fs.write_file(&p("/d/f"), Bytes::from_static(b"hello"))
        .await?;
    fs.set_permissions(&p("/d/f"), 0o600).await?;
    fs.symlink("f", &p("/d/l")).await?;
    let _ = fs.read_dir(&p("/d")).await?;
    let back = fs.read_file(&p("/d/l")).await?;
    assert_eq!(back, "hello");
    fs.rename(&p("/d/f"), &p("/d/g")).await?;
    let handle = fs
        .open(&p("/d/g"), OpenOptions::new().read(true).write(true))
        .await?;
    handle.write_at(5, Bytes::from_static(b" world")).await?;
    handle.close().await?;
    fs.remove_file(&p("/d/g")).await?;
    fs.remove_file(&p("/d/l")).await?;
    fs.remove_dir(&p("/d")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_request_surfaces_as_eio_with_context() {
    // Count the requests of a clean run, then fail each one of them in turn.
    let (fs, faults) = faulty(Arc::new(InMemory::new()), tuning());
    workload(&fs).await.expect("the clean run");
    let total = faults.requests.load(Ordering::SeqCst);
    assert!(total > 10, "{total} requests");
    for n in 1..=total {
        let (fs, faults) = faulty(Arc::new(InMemory::new()), tuning());
        faults.fail_at.store(n, Ordering::SeqCst);
        let outcome = tokio::time::timeout(Duration::from_secs(10), workload(&fs))
            .await
            .unwrap_or_else(|_| panic!("request {n} failing made the workload hang"));
        let err = outcome.expect_err(&format!("failing request {n} went unnoticed"));
        assert_contextual(&err, &[ErrorKind::Io]);
        assert!(err.to_string().contains("injected failure"), "{err}");
        // The filesystem stays usable after the failure.
        faults.fail_at.store(0, Ordering::SeqCst);
        let _ = fs
            .read_dir(&VfsPath::root())
            .await
            .expect("listing after a failure");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_slower_than_the_deadline_is_etimedout() {
    let (fs, faults) = faulty(Arc::new(InMemory::new()), tuning());
    fs.write_file(&p("/f"), Bytes::from_static(b"data"))
        .await
        .unwrap();
    let handle = fs.open(&p("/f"), OpenOptions::read_only()).await.unwrap();
    faults.delay_gets_ms.store(5_000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let err = fs.read_file(&p("/f")).await.unwrap_err();
    assert_contextual(&err, &[ErrorKind::TimedOut]);
    let err = handle.read_at(0, 4).await.unwrap_err();
    assert_contextual(&err, &[ErrorKind::TimedOut]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the deadline was not kept: {:?}",
        started.elapsed()
    );
    faults.delay_gets_ms.store(0, Ordering::SeqCst);
    assert_eq!(handle.read_at(0, 4).await.unwrap(), "data");
}

#[tokio::test]
async fn a_short_body_is_eio_not_short_data() {
    let (fs, faults) = faulty(Arc::new(InMemory::new()), tuning());
    fs.write_file(&p("/f"), Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let handle = fs.open(&p("/f"), OpenOptions::read_only()).await.unwrap();
    faults.short_bodies.store(true, Ordering::SeqCst);
    let err = fs.read_file(&p("/f")).await.unwrap_err();
    assert_contextual(&err, &[ErrorKind::Io]);
    assert!(err.to_string().contains("bytes where"), "{err}");
    let err = handle.read_at(2, 4).await.unwrap_err();
    assert_contextual(&err, &[ErrorKind::Io]);
    faults.short_bodies.store(false, Ordering::SeqCst);
    assert_eq!(handle.read_at(2, 4).await.unwrap(), "2345");
}

#[tokio::test]
async fn a_body_of_another_version_is_eio_not_wrong_data() {
    let (fs, faults) = faulty(Arc::new(InMemory::new()), tuning());
    fs.write_file(&p("/f"), Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let handle = fs.open(&p("/f"), OpenOptions::read_only()).await.unwrap();
    faults.corrupt_bodies.store(true, Ordering::SeqCst);
    let err = handle.read_at(0, 10).await.unwrap_err();
    assert_contextual(&err, &[ErrorKind::Io]);
    assert!(err.to_string().contains("another version"), "{err}");
    faults.corrupt_bodies.store(false, Ordering::SeqCst);
    assert_eq!(handle.read_at(0, 10).await.unwrap(), "0123456789");
}

#[tokio::test]
async fn a_manifest_that_is_not_json_is_eio() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    store
        .put(
            &Path::from("d/.vfs-dir"),
            PutPayload::from_static(b"{not json"),
        )
        .await
        .unwrap();
    let fs = ObjectFs::new(store, "").unwrap();
    let err = fs.stat(&p("/d")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");
}

/// Writes 3 MiB through a handle (parts of 1 MiB) over `old`, with part 2 failing.
async fn interrupted_upload(fs: &ObjectFs, faults: &Faults) {
    fs.write_file(&p("/big"), Bytes::from_static(b"old content"))
        .await
        .unwrap();
    faults.fail_part_at.store(2, Ordering::SeqCst);
    let handle = fs
        .open(&p("/big"), OpenOptions::new().write(true).truncate(true))
        .await
        .unwrap();
    let chunk = Bytes::from(vec![b'n'; 256 * 1024]);
    let mut failure = None;
    for i in 0..12u64 {
        if let Err(err) = handle.write_at(i * chunk.len() as u64, chunk.clone()).await {
            failure = Some(err);
            break;
        }
    }
    let failure = match failure {
        Some(err) => err,
        None => handle.close().await.expect_err("the upload cannot succeed"),
    };
    assert_contextual(&failure, &[ErrorKind::Io]);
    // The handle stays failed; closing reports it again.
    let again = handle.close().await;
    assert!(again.is_ok() || again.unwrap_err().kind() == ErrorKind::Io);
    assert_eq!(
        faults.aborts.load(Ordering::SeqCst),
        1,
        "the upload was aborted"
    );
    assert_eq!(fs.read_file(&p("/big")).await.unwrap(), "old content");
}

#[tokio::test]
async fn an_interrupted_multipart_upload_is_aborted_and_the_old_object_stays() {
    let (fs, faults) = faulty(Arc::new(InMemory::new()), tuning());
    interrupted_upload(&fs, &faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_multipart_upload_on_s3_leaves_no_parts() {
    let moto = moto::moto();
    let bucket = moto.bucket();
    let s3 = AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_endpoint(&moto.endpoint)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_allow_http(true)
        .build()
        .expect("an s3 client");
    let tuning = Tuning {
        part_size: 5 << 20,
        timeout: Duration::from_secs(30),
        ..Tuning::default()
    };
    let (fs, faults) = faulty(Arc::new(s3), tuning);
    fs.write_file(&p("/big"), Bytes::from_static(b"old content"))
        .await
        .unwrap();
    faults.fail_part_at.store(2, Ordering::SeqCst);
    let handle = fs
        .open(&p("/big"), OpenOptions::new().write(true).truncate(true))
        .await
        .unwrap();
    let chunk = Bytes::from(vec![b'n'; 1 << 20]);
    let mut failure = None;
    for i in 0..16u64 {
        if let Err(err) = handle.write_at(i << 20, chunk.clone()).await {
            failure = Some(err);
            break;
        }
    }
    let failure = failure.unwrap_or_else(|| panic!("part 2 failing went unnoticed"));
    assert_contextual(&failure, &[ErrorKind::Io]);
    assert_eq!(faults.aborts.load(Ordering::SeqCst), 1);
    assert_eq!(fs.read_file(&p("/big")).await.unwrap(), "old content");
    let uploads = moto.get(&format!("/{bucket}?uploads"));
    assert!(
        !uploads.contains("<UploadId>"),
        "a multipart upload was left behind: {uploads}"
    );
}
