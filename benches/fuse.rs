//! The memory driver served through FUSE against bindfs over a tmpfs directory (the usual
//! passthrough FUSE peer) and tmpfs itself (the limit), in one run, every workload through
//! the kernel with `std::fs`: create, stat, 4 KiB random reads, 1 MiB sequential writes
//! and reads, and `rm -rf` of 10,000 files.
//!
//! `bash scripts/bench-fuse` (installs bindfs if missing, then `cargo bench --bench fuse`),
//! as root. `VFS_BENCH_FUSE_ONLY=memory,bindfs,tmpfs` picks targets.
//!
//! Reads start cold where the target has a cache apart from its storage: before each
//! read pass the file's page cache is dropped (`posix_fadvise(DONTNEED)`), so a FUSE
//! target's reads reach its daemon; before stat and rm -rf, the kernel's dentries are
//! dropped, so lookups do too. tmpfs keeps its data and names in those caches; for it the
//! drops do nothing, which is why it is the limit.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vfs_drivers::memory::MemoryFs;
use vfs_layer::fuse::{FuseMount, FuseOptions};

/// Files for create, stat and rm -rf.
const FILES: usize = 10_000;
/// The sequential file, written and read in 1 MiB requests.
const SEQ_BYTES: usize = 512 << 20;
const SEQ_CHUNK: usize = 1 << 20;
/// The random-read file and how many 4 KiB reads land in it.
const RANDOM_FILE: usize = 256 << 20;
const RANDOM_READS: usize = 20_000;
const PAGE: usize = 4096;
/// Runs per workload; the median is reported.
const RUNS: usize = 5;

/// One place to run the workloads at, and what keeps it there.
struct Target {
    name: &'static str,
    dir: PathBuf,
    _keep: Keep,
}

enum Keep {
    Fuse {
        mount: Option<FuseMount>,
        runtime: tokio::runtime::Runtime,
        _mountpoint: tempfile::TempDir,
    },
    Bindfs {
        mountpoint: tempfile::TempDir,
        _source: tempfile::TempDir,
    },
    Tmpfs {
        _dir: tempfile::TempDir,
    },
}

impl Drop for Keep {
    fn drop(&mut self) {
        match self {
            Keep::Fuse { mount, runtime, .. } => {
                if let Some(mount) = mount.take() {
                    let _inside = runtime.enter();
                    if let Err(err) = mount.unmount() {
                        eprintln!("unmount of the vfs mount failed: {err}");
                    }
                }
            }
            Keep::Bindfs { mountpoint, .. } => {
                let status = Command::new("fusermount3")
                    .arg("-u")
                    .arg(mountpoint.path())
                    .status();
                if !matches!(status, Ok(status) if status.success()) {
                    eprintln!("fusermount3 -u {} failed", mountpoint.path().display());
                }
            }
            Keep::Tmpfs { .. } => {}
        }
    }
}

fn shm_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/dev/shm")
        .expect("a directory on /dev/shm (tmpfs)")
}

fn memory_over_fuse() -> Target {
    let mountpoint = tempfile::Builder::new()
        .prefix("vfs-bench-fuse-")
        .tempdir()
        .expect("a mount point");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mount = {
        let _inside = runtime.enter();
        let options = FuseOptions {
            fs_name: "vfs-bench".into(),
            ..FuseOptions::default()
        };
        vfs_layer::fuse::mount(Arc::new(MemoryFs::new()), mountpoint.path(), options)
            .expect("mount the memory driver (run as root with fuse3 installed)")
    };
    Target {
        name: "vfs memory via FUSE",
        dir: mountpoint.path().to_path_buf(),
        _keep: Keep::Fuse {
            mount: Some(mount),
            runtime,
            _mountpoint: mountpoint,
        },
    }
}

fn bindfs_over_tmpfs() -> Target {
    let source = shm_dir("vfs-bench-bindfs-src-");
    let mountpoint = tempfile::Builder::new()
        .prefix("vfs-bench-bindfs-")
        .tempdir()
        .expect("a mount point");
    let status = Command::new("bindfs")
        .arg(source.path())
        .arg(mountpoint.path())
        .status()
        .expect("start bindfs (apt-get install bindfs; scripts/bench-fuse does)");
    assert!(status.success(), "bindfs failed: {status}");
    Target {
        name: "bindfs over tmpfs",
        dir: mountpoint.path().to_path_buf(),
        _keep: Keep::Bindfs {
            mountpoint,
            _source: source,
        },
    }
}

fn tmpfs() -> Target {
    let dir = shm_dir("vfs-bench-tmpfs-");
    Target {
        name: "tmpfs",
        dir: dir.path().to_path_buf(),
        _keep: Keep::Tmpfs { _dir: dir },
    }
}

/// Drops the page cache of a file, so that the next read goes to the filesystem.
fn drop_cache(path: &Path) {
    let file = File::open(path).expect("open to drop its cache");
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
        .expect("posix_fadvise(DONTNEED)");
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    if path.exists() {
        let status = Command::new("rm")
            .arg("-rf")
            .arg(&path)
            .status()
            .expect("rm");
        assert!(status.success());
    }
    path
}

/// Creates `FILES` empty files in a fresh directory; the time of the creates.
fn create(dir: &Path) -> Duration {
    let files = fresh(dir, "create");
    std::fs::create_dir(&files).expect("mkdir");
    let start = Instant::now();
    for n in 0..FILES {
        File::create(files.join(format!("f{n}"))).expect("create");
    }
    start.elapsed()
}

/// Drops the kernel's unused dentries and inodes (`drop_caches` = 2), so that the next
/// lookups go to the filesystem: otherwise what a FUSE target finds cached depends on
/// whether its entries outlived their TTL, which depends on how long the workloads
/// before took. tmpfs keeps its dentries, as its namespace lives in them.
fn drop_dentries() {
    std::fs::write("/proc/sys/vm/drop_caches", "2").expect("drop the dentry cache (needs root)");
}

/// Stats each of the files `create` left, their names looked up afresh.
fn stat(dir: &Path) -> Duration {
    let files = dir.join("create");
    drop_dentries();
    let start = Instant::now();
    for n in 0..FILES {
        let meta = std::fs::metadata(files.join(format!("f{n}"))).expect("stat");
        std::hint::black_box(meta.len());
    }
    start.elapsed()
}

fn fill(path: &Path, bytes: usize) -> Duration {
    let chunk: Vec<u8> = (0..SEQ_CHUNK).map(|i| (i * 7 + 3) as u8).collect();
    let start = Instant::now();
    let mut file = File::create(path).expect("create the sequential file");
    for _ in 0..bytes / SEQ_CHUNK {
        file.write_all(&chunk).expect("write 1 MiB");
    }
    drop(file);
    start.elapsed()
}

fn seq_write(dir: &Path) -> Duration {
    fill(&fresh(dir, "seq"), SEQ_BYTES)
}

fn seq_read(dir: &Path) -> Duration {
    let path = dir.join("seq");
    drop_cache(&path);
    let mut buf = vec![0u8; SEQ_CHUNK];
    let start = Instant::now();
    let mut file = File::open(&path).expect("open the sequential file");
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    let elapsed = start.elapsed();
    assert_eq!(total, SEQ_BYTES, "read back what was written");
    elapsed
}

fn random_read(dir: &Path) -> Duration {
    let path = dir.join("random");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(RANDOM_FILE as u64) {
        fill(&path, RANDOM_FILE);
    }
    drop_cache(&path);
    let file = File::open(&path).expect("open the random-read file");
    let mut buf = [0u8; PAGE];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let pages = (RANDOM_FILE / PAGE) as u64;
    let start = Instant::now();
    for _ in 0..RANDOM_READS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = (state % pages) * PAGE as u64;
        file.read_exact_at(&mut buf, offset).expect("read 4 KiB");
        std::hint::black_box(&buf);
    }
    start.elapsed()
}

/// `rm -rf` of 100 directories of 100 files each; only the rm is timed.
fn rm_rf(dir: &Path) -> Duration {
    let tree = fresh(dir, "tree");
    for d in 0..100 {
        let sub = tree.join(format!("d{d}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..FILES / 100 {
            File::create(sub.join(format!("f{f}"))).expect("create");
        }
    }
    drop_dentries();
    let start = Instant::now();
    let status = Command::new("rm")
        .arg("-rf")
        .arg(&tree)
        .status()
        .expect("rm");
    let elapsed = start.elapsed();
    assert!(status.success() && !tree.exists(), "rm -rf left the tree");
    elapsed
}

/// A workload and how its time reads as a rate.
struct Workload {
    name: &'static str,
    run: fn(&Path) -> Duration,
    unit: Unit,
}

enum Unit {
    /// Operations per second, for this many operations.
    Ops(usize),
    /// Bytes per second, for this many bytes.
    Bytes(usize),
    /// The time itself.
    Time,
}

impl Unit {
    /// Higher is better for every unit but the plain time.
    fn rate(&self, time: Duration) -> f64 {
        let secs = time.as_secs_f64();
        match self {
            Unit::Ops(n) => *n as f64 / secs,
            Unit::Bytes(n) => *n as f64 / secs,
            Unit::Time => secs,
        }
    }

    fn show(&self, time: Duration) -> String {
        let rate = self.rate(time);
        match self {
            Unit::Ops(_) if rate >= 1e6 => format!("{:.2} M/s", rate / 1e6),
            Unit::Ops(_) => format!("{:.0} k/s", rate / 1e3),
            Unit::Bytes(_) => format!("{:.2} GB/s", rate / 1e9),
            Unit::Time => format!("{:.0} ms", rate * 1e3),
        }
    }

    /// How `ours` compares with `peer`, > 1 meaning better.
    fn versus(&self, ours: Duration, peer: Duration) -> f64 {
        match self {
            Unit::Time => peer.as_secs_f64() / ours.as_secs_f64(),
            _ => self.rate(ours) / self.rate(peer),
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once in test mode.
    if std::env::args().any(|arg| arg == "--test") || !std::env::args().any(|a| a == "--bench") {
        println!("fuse bench: run with `cargo bench --bench fuse` (as root)");
        return;
    }
    let workloads = [
        Workload {
            name: "create 10,000 empty files",
            run: create,
            unit: Unit::Ops(FILES),
        },
        Workload {
            name: "stat 10,000 files (dentries dropped)",
            run: stat,
            unit: Unit::Ops(FILES),
        },
        Workload {
            name: "4 KiB random read (256 MiB file, cache dropped)",
            run: random_read,
            unit: Unit::Ops(RANDOM_READS),
        },
        Workload {
            name: "1 MiB sequential write (512 MiB)",
            run: seq_write,
            unit: Unit::Bytes(SEQ_BYTES),
        },
        Workload {
            name: "1 MiB sequential read (512 MiB, cache dropped)",
            run: seq_read,
            unit: Unit::Bytes(SEQ_BYTES),
        },
        Workload {
            name: "rm -rf of 10,000 files in 100 directories (dentries dropped)",
            run: rm_rf,
            unit: Unit::Time,
        },
    ];
    let only = std::env::var("VFS_BENCH_FUSE_ONLY").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|o| o == name))
    };
    let mut targets = Vec::new();
    if wanted("memory") {
        targets.push(memory_over_fuse());
    }
    if wanted("bindfs") {
        targets.push(bindfs_over_tmpfs());
    }
    if wanted("tmpfs") {
        targets.push(tmpfs());
    }

    // Workloads in the order listed (stat uses create's files, read uses write's file),
    // the targets interleaved within each run so that drift hits all of them alike.
    let mut times = vec![vec![Vec::new(); targets.len()]; workloads.len()];
    for _ in 0..RUNS {
        for (w, workload) in workloads.iter().enumerate() {
            for (t, target) in targets.iter().enumerate() {
                times[w][t].push((workload.run)(&target.dir));
            }
        }
    }

    let header: Vec<&str> = targets.iter().map(|t| t.name).collect();
    let bindfs = targets.iter().position(|t| t.name == "bindfs over tmpfs");
    let ours = targets.iter().position(|t| t.name == "vfs memory via FUSE");
    println!();
    println!(
        "| workload | {} |{}",
        header.join(" | "),
        if bindfs.is_some() && ours.is_some() {
            " ours vs bindfs |"
        } else {
            ""
        }
    );
    println!(
        "| --- |{}{}",
        " --- |".repeat(targets.len()),
        if bindfs.is_some() && ours.is_some() {
            " --- |"
        } else {
            ""
        }
    );
    for (w, workload) in workloads.iter().enumerate() {
        let medians: Vec<Duration> = times[w].iter().cloned().map(median).collect();
        let cells: Vec<String> = medians.iter().map(|m| workload.unit.show(*m)).collect();
        let versus = match (ours, bindfs) {
            (Some(o), Some(b)) => {
                format!(" {:.2}x |", workload.unit.versus(medians[o], medians[b]))
            }
            _ => String::new(),
        };
        println!("| {} | {} |{versus}", workload.name, cells.join(" | "));
    }
    println!("\n(median of {RUNS} runs; GB = 10^9 bytes; ratios > 1 mean ours is faster)");
}
