//! The memory driver against its peers, in one run: a bare `HashMap<String, Vec<u8>>` (the
//! floor any in-memory filesystem pays), the `vfs` crate's `MemoryFS`, and `std::fs` on a
//! tmpfs directory (/dev/shm); then the same operations through a `MountTable` holding 64
//! mounts against the driver called directly.
//!
//! `cargo bench --bench memory` (add `-- --quick` for a shorter run). The table in
//! BENCHMARKS.md comes from this file.
//!
//! The memory driver's futures complete without waiting, so they are polled once with a
//! no-op waker: the figures are the driver's cost, not an executor's.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
#[path = "common/ready.rs"]
mod ready;
use ready::ready;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use vfs_core::{FileSystem, MountOptions, MountTable, VfsPath};
use vfs_drivers::memory::MemoryFs;

const FILE_SIZE: usize = 4096;
const STAT_FILES: usize = 1_000;
const DIR_ENTRIES: usize = 10_000;
const MOUNTS: usize = 64;

fn payload() -> Bytes {
    Bytes::from(vec![0xA5; FILE_SIZE])
}

fn vpaths(dir: &str, count: usize) -> Vec<VfsPath> {
    (0..count)
        .map(|n| VfsPath::new(&format!("{dir}/f{n}")).expect("bench path"))
        .collect()
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("/bench/f{n}")).collect()
}

/// A subject under test: how to set it up and do each operation.
trait Subject {
    fn label(&self) -> &'static str;
    fn create_write(&mut self, index: usize);
    fn stat(&self, index: usize) -> u64;
    fn read(&self, index: usize) -> usize;
    fn list(&self) -> usize;
    fn unlink(&mut self, index: usize);
    /// Drops everything created so far, for the next sample.
    fn reset(&mut self);
}

struct BareMap {
    keys: Vec<String>,
    data: Vec<u8>,
    map: HashMap<String, Vec<u8>>,
}

impl Subject for BareMap {
    fn label(&self) -> &'static str {
        "HashMap (bare)"
    }
    fn create_write(&mut self, index: usize) {
        self.map.insert(self.keys[index].clone(), self.data.clone());
    }
    fn stat(&self, index: usize) -> u64 {
        self.map
            .get(&self.keys[index])
            .map_or(0, |v| v.len() as u64)
    }
    fn read(&self, index: usize) -> usize {
        self.map
            .get(&self.keys[index])
            .map_or(0, |v| v.clone().len())
    }
    fn list(&self) -> usize {
        let names: Vec<String> = self
            .map
            .keys()
            .map(|key| key.rsplit('/').next().unwrap_or_default().to_owned())
            .collect();
        names.len()
    }
    fn unlink(&mut self, index: usize) {
        self.map.remove(&self.keys[index]);
    }
    fn reset(&mut self) {
        self.map = HashMap::new();
    }
}

struct Ours {
    label: &'static str,
    paths: Vec<VfsPath>,
    dir: VfsPath,
    data: Bytes,
    fs: Arc<dyn FileSystem>,
    make: fn() -> Arc<dyn FileSystem>,
}

impl Subject for Ours {
    fn label(&self) -> &'static str {
        self.label
    }
    fn create_write(&mut self, index: usize) {
        ready(self.fs.write_file(&self.paths[index], self.data.clone())).expect("write");
    }
    fn stat(&self, index: usize) -> u64 {
        ready(self.fs.stat(&self.paths[index])).expect("stat").size
    }
    fn read(&self, index: usize) -> usize {
        ready(self.fs.read_file(&self.paths[index]))
            .expect("read")
            .len()
    }
    fn list(&self) -> usize {
        ready(self.fs.read_dir(&self.dir)).expect("readdir").len()
    }
    fn unlink(&mut self, index: usize) {
        ready(self.fs.remove_file(&self.paths[index])).expect("unlink");
    }
    fn reset(&mut self) {
        self.fs = (self.make)();
        ready(self.fs.create_dir_all(&self.dir, 0o755)).expect("mkdir");
    }
}

fn memory_fs() -> Arc<dyn FileSystem> {
    Arc::new(MemoryFs::new())
}

/// A table of 64 memory mounts (the root and 63 under /mnt), with the subject at
/// /mnt/m31.
fn mounted_fs() -> Arc<dyn FileSystem> {
    let table = MountTable::new();
    ready(table.mount(&VfsPath::root(), memory_fs(), MountOptions::default())).expect("mount");
    for n in 1..MOUNTS {
        let path = VfsPath::new(&format!("/mnt/m{n:02}")).expect("mount path");
        ready(table.mount(&path, memory_fs(), MountOptions::default())).expect("mount");
    }
    Arc::new(table)
}

struct CrateVfs {
    keys: Vec<String>,
    data: Vec<u8>,
    fs: vfs::MemoryFS,
}

impl Subject for CrateVfs {
    fn label(&self) -> &'static str {
        "vfs::MemoryFS"
    }
    fn create_write(&mut self, index: usize) {
        use vfs::FileSystem as _;
        let mut file = self.fs.create_file(&self.keys[index]).expect("create");
        file.write_all(&self.data).expect("write");
    }
    fn stat(&self, index: usize) -> u64 {
        use vfs::FileSystem as _;
        self.fs.metadata(&self.keys[index]).expect("stat").len
    }
    fn read(&self, index: usize) -> usize {
        use vfs::FileSystem as _;
        let mut content = Vec::with_capacity(FILE_SIZE);
        let mut file = self.fs.open_file(&self.keys[index]).expect("open");
        file.read_to_end(&mut content).expect("read");
        content.len()
    }
    fn list(&self) -> usize {
        use vfs::FileSystem as _;
        self.fs.read_dir("/bench").expect("readdir").count()
    }
    fn unlink(&mut self, index: usize) {
        use vfs::FileSystem as _;
        self.fs.remove_file(&self.keys[index]).expect("unlink");
    }
    fn reset(&mut self) {
        use vfs::FileSystem as _;
        self.fs = vfs::MemoryFS::new();
        self.fs.create_dir("/bench").expect("mkdir");
    }
}

struct StdTmpfs {
    root: tempfile::TempDir,
    keys: Vec<PathBuf>,
    data: Vec<u8>,
}

impl Subject for StdTmpfs {
    fn label(&self) -> &'static str {
        "std::fs on tmpfs"
    }
    fn create_write(&mut self, index: usize) {
        std::fs::write(&self.keys[index], &self.data).expect("write");
    }
    fn stat(&self, index: usize) -> u64 {
        std::fs::metadata(&self.keys[index]).expect("stat").len()
    }
    fn read(&self, index: usize) -> usize {
        std::fs::read(&self.keys[index]).expect("read").len()
    }
    fn list(&self) -> usize {
        std::fs::read_dir(self.root.path().join("bench"))
            .expect("readdir")
            .map(|entry| {
                let entry = entry.expect("entry");
                (entry.file_name(), entry.file_type().expect("type"))
            })
            .count()
    }
    fn unlink(&mut self, index: usize) {
        std::fs::remove_file(&self.keys[index]).expect("unlink");
    }
    fn reset(&mut self) {
        let dir = self.root.path().join("bench");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("mkdir");
    }
}

fn subjects(count: usize) -> Vec<Box<dyn Subject>> {
    let tmp = tempfile::tempdir_in("/dev/shm").expect("a tmpfs directory at /dev/shm");
    let std_keys = (0..count)
        .map(|n| tmp.path().join(format!("bench/f{n}")))
        .collect();
    let mut list: Vec<Box<dyn Subject>> = vec![
        Box::new(Ours {
            label: "vfs-layer memory",
            paths: vpaths("/bench", count),
            dir: VfsPath::new("/bench").expect("dir"),
            data: payload(),
            fs: memory_fs(),
            make: memory_fs,
        }),
        Box::new(BareMap {
            keys: names(count),
            data: payload().to_vec(),
            map: HashMap::new(),
        }),
        Box::new(CrateVfs {
            keys: names(count),
            data: payload().to_vec(),
            fs: vfs::MemoryFS::new(),
        }),
        Box::new(StdTmpfs {
            root: tmp,
            keys: std_keys,
            data: payload().to_vec(),
        }),
        Box::new(Ours {
            label: "memory via MountTable(64)",
            paths: vpaths("/mnt/m31/bench", count),
            dir: VfsPath::new("/mnt/m31/bench").expect("dir"),
            data: payload(),
            fs: mounted_fs(),
            make: mounted_fs,
        }),
    ];
    for subject in &mut list {
        subject.reset();
    }
    list
}

/// Creation and unlink consume names, so each sample starts from an empty directory and
/// times only the operations themselves.
fn consuming(c: &mut Criterion, group_name: &str, capacity: usize, unlink: bool) {
    let mut group = c.benchmark_group(group_name);
    for mut subject in subjects(capacity) {
        group.bench_function(BenchmarkId::from_parameter(subject.label()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let batch = (iters - done).min(capacity as u64) as usize;
                    subject.reset();
                    if unlink {
                        for index in 0..batch {
                            subject.create_write(index);
                        }
                    }
                    let start = Instant::now();
                    for index in 0..batch {
                        if unlink {
                            subject.unlink(black_box(index));
                        } else {
                            subject.create_write(black_box(index));
                        }
                    }
                    total += start.elapsed();
                    done += batch as u64;
                }
                total
            });
        });
    }
    group.finish();
}

fn create_write(c: &mut Criterion) {
    consuming(c, "create+write 4KiB", 20_000, false);
}

fn unlink(c: &mut Criterion) {
    consuming(c, "unlink", 20_000, true);
}

fn lookups(c: &mut Criterion) {
    let mut subjects = subjects(STAT_FILES);
    for subject in &mut subjects {
        for index in 0..STAT_FILES {
            subject.create_write(index);
        }
    }
    let mut group = c.benchmark_group("stat");
    for subject in &subjects {
        let mut index = 0;
        group.bench_function(BenchmarkId::from_parameter(subject.label()), |b| {
            b.iter(|| {
                index = (index + 1) % STAT_FILES;
                subject.stat(black_box(index))
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("read 4KiB");
    for subject in &subjects {
        let mut index = 0;
        group.bench_function(BenchmarkId::from_parameter(subject.label()), |b| {
            b.iter(|| {
                index = (index + 1) % STAT_FILES;
                subject.read(black_box(index))
            })
        });
    }
    group.finish();
}

fn readdir(c: &mut Criterion) {
    let mut subjects = subjects(DIR_ENTRIES);
    for subject in &mut subjects {
        for index in 0..DIR_ENTRIES {
            subject.create_write(index);
        }
    }
    let mut group = c.benchmark_group("readdir 10k");
    for subject in &subjects {
        group.bench_function(BenchmarkId::from_parameter(subject.label()), |b| {
            b.iter(|| assert_eq!(subject.list(), DIR_ENTRIES))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = create_write, lookups, readdir, unlink
}
criterion_main!(benches);
