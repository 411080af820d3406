//! The overlay driver against its layers, in one run: reading an untouched lower file
//! through the overlay vs reading the lower directly (memory and host lowers), and copy-up
//! of a 256 MiB file vs a plain streamed copy of the same bytes between the same drivers.
//!
//! `cargo bench --bench overlay` (add `-- --quick` for a shorter run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
#[path = "common/ready.rs"]
mod ready;
use ready::ready;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vfs_core::{FileSystem, OpenOptions, VfsPath};
use vfs_drivers::host::HostFs;
use vfs_drivers::memory::MemoryFs;
use vfs_drivers::overlay::{OverlayFs, COPY_CHUNK};

const FILES: usize = 1_000;
const FILE_SIZE: usize = 4096;
const BIG_FILE: usize = 256 << 20;

fn paths() -> Vec<VfsPath> {
    (0..FILES)
        .map(|n| VfsPath::new(&format!("/d/f{n}")).expect("bench path"))
        .collect()
}

fn fill(fs: &dyn FileSystem, paths: &[VfsPath]) {
    ready(fs.create_dir(&VfsPath::new("/d").expect("dir"), 0o755)).expect("mkdir");
    let data = Bytes::from(vec![0x3C; FILE_SIZE]);
    for path in paths {
        ready(fs.write_file(path, data.clone())).expect("fill");
    }
}

fn overlay_over(lower: Arc<dyn FileSystem>) -> Arc<dyn FileSystem> {
    Arc::new(OverlayFs::new(Arc::new(MemoryFs::new()), vec![lower]).expect("overlay"))
}

fn lower_reads(c: &mut Criterion) {
    let paths = paths();
    let memory_lower: Arc<dyn FileSystem> = Arc::new(MemoryFs::new());
    fill(memory_lower.as_ref(), &paths);
    let scratch = tempfile::tempdir_in("/dev/shm").expect("a tmpfs directory at /dev/shm");
    // The host driver runs its syscalls inline when no runtime is around, as here.
    let host_lower: Arc<dyn FileSystem> = Arc::new(HostFs::new(scratch.path()).expect("host"));
    fill(host_lower.as_ref(), &paths);

    for (layer, lower) in [("memory", memory_lower), ("host_dir", host_lower)] {
        let overlay = overlay_over(lower.clone());
        let mut group = c.benchmark_group(format!("overlay read 4KiB, {layer} lower"));
        for (label, fs) in [("overlay", overlay), ("lower directly", lower)] {
            let mut i = 0;
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| {
                    i = (i + 1) % FILES;
                    black_box(ready(fs.read_file(&paths[i])).expect("read"))
                })
            });
        }
        group.finish();
    }
}

/// Streams `path` from `from` to `to` in the overlay's chunk size: what copy-up does,
/// without the overlay.
async fn plain_copy(from: &dyn FileSystem, to: &dyn FileSystem, path: &VfsPath) {
    let source = from
        .open(path, OpenOptions::read_only())
        .await
        .expect("open source");
    let target = to
        .open(
            path,
            OpenOptions::new().write(true).create(true).truncate(true),
        )
        .await
        .expect("open target");
    let mut offset = 0u64;
    loop {
        let chunk = source.read_at(offset, COPY_CHUNK).await.expect("read");
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len() as u64;
        vfs_core::write_all_at(target.as_ref(), offset, chunk)
            .await
            .expect("write");
        offset += len;
    }
}

fn copy_up(c: &mut Criterion) {
    let big = VfsPath::new("/big").expect("path");
    let lower: Arc<dyn FileSystem> = Arc::new(MemoryFs::new());
    let content: Vec<u8> = (0..BIG_FILE).map(|n| (n % 251) as u8).collect();
    ready(lower.write_file(&big, Bytes::from(content))).expect("fill the lower");

    let mut group = c.benchmark_group("copy-up 256MiB, memory layers");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(BIG_FILE as u64));
    group.bench_function(
        BenchmarkId::from_parameter("overlay copy-up (chmod)"),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let overlay = overlay_over(lower.clone());
                    let start = Instant::now();
                    ready(overlay.set_permissions(&big, 0o600)).expect("copy-up");
                    total += start.elapsed();
                }
                total
            })
        },
    );
    group.bench_function(BenchmarkId::from_parameter("plain streamed copy"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let upper = MemoryFs::new();
                let start = Instant::now();
                ready(plain_copy(lower.as_ref(), &upper, &big));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = lower_reads, copy_up
}
criterion_main!(benches);
