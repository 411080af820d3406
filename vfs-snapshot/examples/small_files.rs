//! Measures a snapshot of 10,000 small files (1-8 KiB in 100 directories) into a local
//! store, then a second snapshot of the unchanged tree, then one after changing 1%.
//!
//! `cargo run --release -p vfs-snapshot --example small_files`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use vfs_core::{FileSystem, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{Repository, SnapshotOptions, StatCache};

fn content(seed: u64, len: usize) -> Bytes {
    // Half text-like, half noise: roughly what a source tree compresses like.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let out: Vec<u8> = (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                b'a' + (x % 26) as u8
            } else {
                x as u8
            }
        })
        .collect();
    Bytes::from(out)
}

#[tokio::main]
async fn main() -> vfs_core::Result<()> {
    let fs = MemoryFs::new();
    for d in 0..100u64 {
        let dir = VfsPath::new(&format!("/d{d:03}"))?;
        fs.create_dir(&dir, 0o755).await?;
        for f in 0..100u64 {
            let len = 1024 + ((d * 100 + f) * 7919 % (7 * 1024)) as usize;
            fs.write_file(&dir.join(&format!("f{f:03}"))?, content(d * 100 + f, len))
                .await?;
        }
    }
    let store = tempfile::tempdir().map_err(|e| vfs_core::VfsError::from_io("tempdir", e))?;
    let repo = Repository::open_local(store.path()).await?;
    let cache = Arc::new(StatCache::default());
    let options = SnapshotOptions {
        stat_cache: Some(cache),
        ..SnapshotOptions::default()
    };
    let started = Instant::now();
    let (id, first) = repo.snapshot(&fs, &VfsPath::root(), &options).await?;
    println!(
        "full:        {:>8.1?}  files {} bytes {} -> stored {} in {} objects ({} chunks, {} trees) id {id}",
        started.elapsed(),
        first.files,
        first.bytes_total,
        first.bytes_new,
        first.objects_written,
        first.chunks_new,
        first.trees_new
    );
    let started = Instant::now();
    let (_, second) = repo.snapshot(&fs, &VfsPath::root(), &options).await?;
    println!(
        "unchanged:   {:>8.1?}  objects written {}, bytes read {}, files from cache {}",
        started.elapsed(),
        second.objects_written,
        second.bytes_read,
        second.files_cached
    );
    for i in 0..100u64 {
        let path = VfsPath::new(&format!("/d{:03}/f{:03}", i, (i * 37) % 100))?;
        fs.write_file(&path, content(1_000_000 + i, 4096)).await?;
    }
    let started = Instant::now();
    let (_, third) = repo.snapshot(&fs, &VfsPath::root(), &options).await?;
    println!(
        "1% changed:  {:>8.1?}  objects written {}, bytes read {}, bytes new {} ({:.2}% of full)",
        started.elapsed(),
        third.objects_written,
        third.bytes_read,
        third.bytes_new,
        100.0 * third.bytes_new as f64 / first.bytes_new.max(1) as f64
    );
    let started = Instant::now();
    let report = repo.verify(&id).await?;
    println!(
        "verify:      {:>8.1?}  {} trees, {} chunks, ok {}",
        started.elapsed(),
        report.trees,
        report.chunks,
        report.is_ok()
    );
    Ok(())
}
