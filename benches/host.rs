//! The host driver against `std::fs` on the same tmpfs directory, in one run: stat, read
//! 4 KiB, create+write 4 KiB, readdir of 10,000 entries.
//!
//! `cargo bench --bench host` (add `-- --quick` for a shorter run). The driver runs where a
//! runtime would run it, in a task on a multi-thread tokio runtime (its default blocking
//! strategy there is `block_in_place`); `std::fs` is called directly.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use vfs_core::{FileSystem, VfsPath};
use vfs_drivers::host::HostFs;

const FILE_SIZE: usize = 4096;
const FILES: usize = 1_000;
const DIR_ENTRIES: usize = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

/// Times `iters` runs of `op` inside one task on the runtime's workers.
fn in_task<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    runtime
        .block_on(runtime.spawn(async move {
            let start = Instant::now();
            for i in 0..iters {
                op(i).await;
            }
            start.elapsed()
        }))
        .expect("the bench task")
}

fn fill(dir: &Path, count: usize) {
    let data = vec![0x5A; FILE_SIZE];
    for n in 0..count {
        std::fs::write(dir.join(format!("f{n}")), &data).expect("fill");
    }
}

fn host_paths(count: usize) -> Arc<Vec<VfsPath>> {
    Arc::new(
        (0..count)
            .map(|n| VfsPath::new(&format!("/d/f{n}")).expect("bench path"))
            .collect(),
    )
}

fn std_paths(dir: &Path, count: usize) -> Vec<PathBuf> {
    (0..count).map(|n| dir.join(format!("f{n}"))).collect()
}

fn lookups(c: &mut Criterion) {
    let runtime = runtime();
    let root = tempfile::tempdir_in("/dev/shm").expect("a tmpfs directory at /dev/shm");
    let dir = root.path().join("d");
    std::fs::create_dir(&dir).expect("mkdir");
    fill(&dir, FILES);
    let fs: Arc<dyn FileSystem> = Arc::new(HostFs::new(root.path()).expect("host driver"));
    let paths = host_paths(FILES);
    let std_files = std_paths(&dir, FILES);

    let mut group = c.benchmark_group("host stat");
    group.bench_function(BenchmarkId::from_parameter("host_dir"), |b| {
        b.iter_custom(|iters| {
            let (fs, paths) = (fs.clone(), paths.clone());
            in_task(&runtime, iters, move |i| {
                let (fs, paths) = (fs.clone(), paths.clone());
                async move {
                    black_box(fs.stat(&paths[i as usize % FILES]).await.expect("stat"));
                }
            })
        })
    });
    group.bench_function(BenchmarkId::from_parameter("std::fs"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % FILES;
            std::fs::metadata(&std_files[i]).expect("stat").len()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("host read 4KiB");
    group.bench_function(BenchmarkId::from_parameter("host_dir"), |b| {
        b.iter_custom(|iters| {
            let (fs, paths) = (fs.clone(), paths.clone());
            in_task(&runtime, iters, move |i| {
                let (fs, paths) = (fs.clone(), paths.clone());
                async move {
                    black_box(
                        fs.read_file(&paths[i as usize % FILES])
                            .await
                            .expect("read"),
                    );
                }
            })
        })
    });
    group.bench_function(BenchmarkId::from_parameter("std::fs"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % FILES;
            std::fs::read(&std_files[i]).expect("read").len()
        })
    });
    group.finish();
}

fn create_write(c: &mut Criterion) {
    let runtime = runtime();
    let root = tempfile::tempdir_in("/dev/shm").expect("a tmpfs directory at /dev/shm");
    let fs: Arc<dyn FileSystem> = Arc::new(HostFs::new(root.path()).expect("host driver"));
    let data = Bytes::from(vec![0xA5; FILE_SIZE]);
    let dir = root.path().join("d");
    let reset = || {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("mkdir");
    };
    // Each sample starts from an empty directory, so every write creates a file.
    const BATCH: u64 = 5_000;
    let paths = host_paths(BATCH as usize);
    let std_files = std_paths(&dir, BATCH as usize);
    let mut group = c.benchmark_group("host create+write 4KiB");
    group.bench_function(BenchmarkId::from_parameter("host_dir"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let batch = (iters - done).min(BATCH);
                reset();
                let (fs, paths, data) = (fs.clone(), paths.clone(), data.clone());
                total += in_task(&runtime, batch, move |i| {
                    let (fs, paths, data) = (fs.clone(), paths.clone(), data.clone());
                    async move {
                        fs.write_file(&paths[i as usize], data)
                            .await
                            .expect("write");
                    }
                });
                done += batch;
            }
            total
        })
    });
    group.bench_function(BenchmarkId::from_parameter("std::fs"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let batch = (iters - done).min(BATCH);
                reset();
                let start = Instant::now();
                for i in 0..batch {
                    std::fs::write(&std_files[i as usize], &data).expect("write");
                }
                total += start.elapsed();
                done += batch;
            }
            total
        })
    });
    group.finish();
}

fn readdir(c: &mut Criterion) {
    let runtime = runtime();
    let root = tempfile::tempdir_in("/dev/shm").expect("a tmpfs directory at /dev/shm");
    let dir = root.path().join("d");
    std::fs::create_dir(&dir).expect("mkdir");
    fill(&dir, DIR_ENTRIES);
    let fs: Arc<dyn FileSystem> = Arc::new(HostFs::new(root.path()).expect("host driver"));
    let listed = VfsPath::new("/d").expect("dir");
    let mut group = c.benchmark_group("host readdir 10k");
    group.bench_function(BenchmarkId::from_parameter("host_dir"), |b| {
        b.iter_custom(|iters| {
            let (fs, listed) = (fs.clone(), listed.clone());
            in_task(&runtime, iters, move |_| {
                let (fs, listed) = (fs.clone(), listed.clone());
                async move {
                    let entries = fs.read_dir(&listed).await.expect("readdir");
                    assert_eq!(entries.len(), DIR_ENTRIES);
                }
            })
        })
    });
    group.bench_function(BenchmarkId::from_parameter("std::fs"), |b| {
        b.iter(|| {
            let entries: Vec<_> = std::fs::read_dir(&dir)
                .expect("readdir")
                .map(|entry| {
                    let entry = entry.expect("entry");
                    (entry.file_name(), entry.file_type().expect("type"))
                })
                .collect();
            assert_eq!(entries.len(), DIR_ENTRIES);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = lookups, create_write, readdir
}
criterion_main!(benches);
