//! The object driver against raw object_store calls, on one moto S3 server over HTTP, in
//! the same run: a 64 MiB file written and read, then 1,000 small files created, stat'ed
//! and read. Every store call is counted, so each row shows the requests per operation
//! beside the time.
//!
//! `cargo bench --bench object` (about a minute); `-- --quick` for a smaller run (16 MiB,
//! 200 files).

#[allow(dead_code)]
#[path = "../tests/common/faulty_store.rs"]
mod faulty_store;
#[path = "../tests/common/moto.rs"]
mod moto;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faulty_store::{Faults, Faulty};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use vfs_core::{FileSystem, OpenOptions, VfsPath};
use vfs_drivers::object::{ObjectFs, Tuning};

struct Row {
    what: String,
    driver: (Duration, usize),
    raw: (Duration, usize),
    ops: usize,
}

fn print(rows: &[Row]) {
    println!(
        "{:<34} {:>12} {:>10} {:>12} {:>10} {:>9}",
        "workload", "driver", "req/op", "raw", "req/op", "overhead"
    );
    for row in rows {
        let per = |n: usize| n as f64 / row.ops as f64;
        let overhead = row.driver.0.as_secs_f64() / row.raw.0.as_secs_f64() - 1.0;
        println!(
            "{:<34} {:>10.1}ms {:>10.2} {:>10.1}ms {:>10.2} {:>8.0}%",
            row.what,
            row.driver.0.as_secs_f64() * 1e3,
            per(row.driver.1),
            row.raw.0.as_secs_f64() * 1e3,
            per(row.raw.1),
            overhead * 100.0
        );
    }
}

async fn measure<F, Fut>(requests: &Faults, run: F) -> (Duration, usize)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    requests.reset_counts();
    let started = Instant::now();
    run().await;
    (started.elapsed(), requests.total_requests())
}

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("a valid path")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    // `cargo bench` passes `--bench`; a listing run (`--list`) measures nothing.
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let (big, files) = if quick {
        (16usize << 20, 200usize)
    } else {
        (64usize << 20, 1_000usize)
    };
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
    // Unarmed, the fault wrapper only counts (a multipart part is one request).
    let requests = Arc::new(Faults::default());
    let store: Arc<dyn ObjectStore> = Arc::new(Faulty {
        inner: Arc::new(s3),
        faults: requests.clone(),
    });
    let tuning = Tuning {
        timeout: Duration::from_secs(120),
        ..Tuning::default()
    };
    let part = tuning.part_size;
    let fs = ObjectFs::with_tuning(store.clone(), "driver", tuning, "s3").expect("fs");
    fs.create_dir(&p("/small"), 0o755).await.expect("mkdir");
    let mut rows = Vec::new();
    let data = Bytes::from((0..big).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    const CHUNK: usize = 1 << 20;

    // A large file, written through a handle in 1 MiB writes (multipart, 8 MiB parts) vs
    // a raw multipart upload of the same parts.
    let driver = measure(&requests, || async {
        let handle = fs
            .open(
                &p("/big"),
                OpenOptions::new().write(true).create(true).truncate(true),
            )
            .await
            .expect("open");
        for offset in (0..big).step_by(CHUNK) {
            handle
                .write_at(offset as u64, data.slice(offset..(offset + CHUNK).min(big)))
                .await
                .expect("write");
        }
        handle.close().await.expect("close");
    })
    .await;
    let raw = measure(&requests, || async {
        let mut upload = store
            .put_multipart(&Path::from("raw/big"))
            .await
            .expect("multipart");
        for offset in (0..big).step_by(part) {
            upload
                .put_part(PutPayload::from(
                    data.slice(offset..(offset + part).min(big)),
                ))
                .await
                .expect("part");
        }
        upload.complete().await.expect("complete");
    })
    .await;
    rows.push(Row {
        what: format!("write {} MiB (1 MiB writes)", big >> 20),
        driver,
        raw,
        ops: 1,
    });

    // Read it back sequentially in 1 MiB reads (readahead 4 MiB) vs raw 4 MiB range GETs.
    let driver = measure(&requests, || async {
        let handle = fs
            .open(&p("/big"), OpenOptions::read_only())
            .await
            .expect("open");
        let mut offset = 0u64;
        loop {
            let chunk = handle.read_at(offset, CHUNK).await.expect("read");
            if chunk.is_empty() {
                break;
            }
            offset += chunk.len() as u64;
        }
        assert_eq!(offset as usize, big);
        handle.close().await.expect("close");
    })
    .await;
    let raw = measure(&requests, || async {
        let path = Path::from("raw/big");
        let window = 4usize << 20;
        for offset in (0..big).step_by(window) {
            let end = (offset + window).min(big) as u64;
            store
                .get_range(&path, offset as u64..end)
                .await
                .expect("range");
        }
    })
    .await;
    rows.push(Row {
        what: format!("read {} MiB (1 MiB reads)", big >> 20),
        driver,
        raw,
        ops: 1,
    });
    let driver = measure(&requests, || async {
        let back = fs.read_file(&p("/big")).await.expect("read_file");
        assert_eq!(back.len(), big);
    })
    .await;
    let raw = measure(&requests, || async {
        let back = store
            .get(&Path::from("raw/big"))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(back.len(), big);
    })
    .await;
    rows.push(Row {
        what: format!("read_file {} MiB (one GET)", big >> 20),
        driver,
        raw,
        ops: 1,
    });

    // Small files, one after another: create, stat, read.
    let body = Bytes::from(vec![b's'; 1024]);
    let driver = measure(&requests, || async {
        for i in 0..files {
            fs.write_file(&p(&format!("/small/f{i:05}")), body.clone())
                .await
                .expect("write_file");
        }
    })
    .await;
    let raw = measure(&requests, || async {
        for i in 0..files {
            store
                .put(
                    &Path::from(format!("raw/small/f{i:05}")),
                    body.clone().into(),
                )
                .await
                .expect("put");
        }
    })
    .await;
    rows.push(Row {
        what: format!("create {files} x 1 KiB"),
        driver,
        raw,
        ops: files,
    });
    let driver = measure(&requests, || async {
        for i in 0..files {
            fs.stat(&p(&format!("/small/f{i:05}"))).await.expect("stat");
        }
    })
    .await;
    let raw = measure(&requests, || async {
        for i in 0..files {
            store
                .head(&Path::from(format!("raw/small/f{i:05}")))
                .await
                .expect("head");
        }
    })
    .await;
    rows.push(Row {
        what: format!("stat {files}"),
        driver,
        raw,
        ops: files,
    });
    let driver = measure(&requests, || async {
        for i in 0..files {
            fs.read_file(&p(&format!("/small/f{i:05}")))
                .await
                .expect("read_file");
        }
    })
    .await;
    let raw = measure(&requests, || async {
        for i in 0..files {
            store
                .get(&Path::from(format!("raw/small/f{i:05}")))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
        }
    })
    .await;
    rows.push(Row {
        what: format!("read {files} x 1 KiB"),
        driver,
        raw,
        ops: files,
    });
    let driver = measure(&requests, || async {
        let listed = fs.read_dir(&p("/small")).await.expect("read_dir");
        assert_eq!(listed.len(), files);
    })
    .await;
    let raw = measure(&requests, || async {
        let listed = store
            .list_with_delimiter(Some(&Path::from("raw/small")))
            .await
            .expect("list");
        assert_eq!(listed.objects.len(), files);
    })
    .await;
    rows.push(Row {
        what: format!("read_dir of {files}"),
        driver,
        raw,
        ops: 1,
    });

    println!(
        "object driver vs raw object_store on moto S3 over HTTP ({}), requests counted per op",
        if quick { "--quick" } else { "full" }
    );
    print(&rows);
}
