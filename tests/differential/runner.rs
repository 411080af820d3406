//! Runs sequences on both sides, finds the first divergence, shrinks and reports it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use std::sync::Arc;

use vfs_core::{FileSystem, VfsPath};
use vfs_drivers::memory::{MemoryConfig, MemoryFs};

use crate::host::Host;
use crate::ops::{is_op_name, next_op, sequence_len, Op, Rng};
use crate::outcome::{diff_trees, forgive_dir_nlink, forgive_tree_dir_nlink, Outcome};
use crate::prefill::Layers;

/// What the environment asks for.
pub struct Config {
    pub cases: u64,
    pub base_seed: u64,
    pub keep_going: bool,
    pub skip: Vec<String>,
}

const DEFAULT_CASES: u64 = 200;
const DEFAULT_SEED: u64 = 0x5EED_0000;

fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    let raw = raw.trim();
    let parsed = match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => raw.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={raw:?} is not a number")))
}

impl Config {
    pub fn from_env() -> Config {
        Config {
            cases: env_u64("VFS_DIFF_CASES").unwrap_or(DEFAULT_CASES),
            base_seed: env_u64("VFS_DIFF_SEED").unwrap_or(DEFAULT_SEED),
            keep_going: std::env::var("VFS_DIFF_KEEP_GOING").is_ok_and(|v| v != "0"),
            skip: std::env::var("VFS_DIFF_SKIP")
                .map(|list| {
                    list.split(',')
                        .map(|name| name.trim().to_owned())
                        .filter(|name| !name.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Where the two sides first disagreed.
#[derive(Debug)]
enum Divergence {
    Op {
        index: usize,
        ours: Outcome,
        tmpfs: Outcome,
    },
    Tree(Vec<String>),
}

/// The filesystem under test: a name for reports and a way to make a fresh one for the
/// sequence of a seed.
pub struct Subject {
    pub name: &'static str,
    pub make: fn(seed: u64) -> Made,
    /// Whether every directory link count is compared. False for a subject that may
    /// report 1 ("unknown") for a directory, as overlayfs does for one merged from several
    /// layers: those counts are then left out, on both sides (see
    /// `outcome::forgive_dir_nlink`); other counts are still compared.
    pub dir_nlink: bool,
}

/// A fresh filesystem under test.
pub struct Made {
    pub fs: Arc<dyn FileSystem>,
    /// The scratch directory it lives in, if any, kept until the sequence ends.
    pub scratch: Option<tempfile::TempDir>,
    /// What it starts with, if it does not start empty: the tmpfs directory is filled with
    /// the merged view of these layers before the sequence.
    pub prefill: Option<Layers>,
}

impl Made {
    /// An empty filesystem that needs no scratch directory.
    pub fn empty(fs: Arc<dyn FileSystem>) -> Made {
        Made {
            fs,
            scratch: None,
            prefill: None,
        }
    }
}

/// A memory filesystem owned by the caller, so ownership never diverges from what tmpfs
/// records.
pub fn memory_fs() -> MemoryFs {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    MemoryFs::with_config(MemoryConfig {
        uid,
        gid,
        ..MemoryConfig::default()
    })
}

/// How often each kind of operation succeeded and failed (on both sides alike), to show
/// that the sequences reach the interesting cases.
type Tally = BTreeMap<&'static str, (u64, u64)>;

/// Replays `ops` on a fresh filesystem under test and a fresh tmpfs directory, made for
/// the sequence of `seed`.
fn replay(
    runtime: &tokio::runtime::Runtime,
    subject: &Subject,
    seed: u64,
    ops: &[Op],
) -> Option<Divergence> {
    let mut ops = ops.iter();
    run(
        runtime,
        subject,
        seed,
        |_| ops.next().cloned(),
        &mut Tally::new(),
    )
    .1
}

/// Draws and runs the sequence of `seed`; returns the operations that ran.
fn run_seed(
    runtime: &tokio::runtime::Runtime,
    subject: &Subject,
    seed: u64,
    skip: &[String],
    tally: &mut Tally,
) -> (Vec<Op>, Option<Divergence>) {
    let mut rng = Rng::new(seed);
    let len = sequence_len(&mut rng);
    let mut drawn = 0;
    let next = |host: &Host| {
        drawn += 1;
        (drawn <= len).then(|| next_op(&mut rng, &host.listing(), skip))
    };
    run(runtime, subject, seed, next, tally)
}

/// Runs operations on a fresh filesystem under test and a fresh tmpfs directory (made for
/// the sequence of `seed`), comparing each outcome and then the trees. `next` gives each
/// operation, seeing the tmpfs side.
fn run(
    runtime: &tokio::runtime::Runtime,
    subject: &Subject,
    seed: u64,
    mut next: impl FnMut(&Host) -> Option<Op>,
    tally: &mut Tally,
) -> (Vec<Op>, Option<Divergence>) {
    let dir = tempfile::tempdir_in("/dev/shm").expect("a temporary directory on /dev/shm");
    let Made {
        fs,
        scratch: _scratch,
        prefill,
    } = (subject.make)(seed);
    if let Some(layers) = &prefill {
        layers.write_merged(dir.path());
    }
    let host = Host::new(dir.path());
    let fs: &dyn FileSystem = fs.as_ref();
    let mut ops = Vec::new();
    let mut handles = crate::driver::Handles::default();
    let divergence = runtime.block_on(async {
        // Both roots start with the same mode (tempfile makes a private directory).
        let root_mode = fs
            .stat(&VfsPath::root())
            .await
            .expect("stat the root under test")
            .mode;
        host.set_root_mode(root_mode);
        while let Some(op) = next(&host) {
            ops.push(op);
            let op = &ops[ops.len() - 1];
            if host.skips(op) {
                continue;
            }
            let mut ours = crate::driver::apply(fs, &mut handles, op).await;
            let mut tmpfs = host.apply(op);
            if !subject.dir_nlink {
                forgive_dir_nlink(&mut ours, &mut tmpfs);
            }
            if ours != tmpfs {
                return Some(Divergence::Op {
                    index: ops.len() - 1,
                    ours,
                    tmpfs,
                });
            }
            let counts = tally.entry(op.name()).or_default();
            match ours {
                Outcome::Errno(_) => counts.1 += 1,
                _ => counts.0 += 1,
            }
        }
        let mut ours = match crate::driver::caught(crate::driver::tree(fs)).await {
            Ok(Ok(tree)) => tree,
            Ok(Err(err)) => {
                return Some(Divergence::Tree(vec![format!(
                    "walking the driver failed: {err}"
                )]))
            }
            Err(message) => {
                return Some(Divergence::Tree(vec![format!(
                    "walking the driver panicked: {message}"
                )]))
            }
        };
        let mut tmpfs = host.tree().expect("walk the tmpfs tree");
        if !subject.dir_nlink {
            forgive_tree_dir_nlink(&mut ours, &mut tmpfs);
        }
        let lines = diff_trees(&ours, &tmpfs);
        (!lines.is_empty()).then_some(Divergence::Tree(lines))
    });
    (ops, divergence)
}

/// Greedily drops chunks of operations, then single ones, while the sequence still
/// diverges.
fn shrink(runtime: &tokio::runtime::Runtime, subject: &Subject, seed: u64, ops: &[Op]) -> Vec<Op> {
    let mut current = ops.to_vec();
    let mut chunk = current.len().div_ceil(2).max(1);
    loop {
        let mut progressed = false;
        let mut start = 0;
        while start < current.len() {
            let end = (start + chunk).min(current.len());
            let mut candidate = current[..start].to_vec();
            candidate.extend_from_slice(&current[end..]);
            if replay(runtime, subject, seed, &candidate).is_some() {
                current = candidate;
                progressed = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !progressed {
            return current;
        }
        if !progressed {
            chunk = chunk.div_ceil(2);
        }
    }
}

fn report(
    subject: &Subject,
    seed: u64,
    skip: &[String],
    original_len: usize,
    ops: &[Op],
    divergence: &Divergence,
) -> String {
    let skip = if skip.is_empty() {
        String::new()
    } else {
        format!("VFS_DIFF_SKIP={} ", skip.join(","))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} diverged from Linux tmpfs\nseed: {seed} (rerun: {skip}\
         VFS_DIFF_SEED={seed} VFS_DIFF_CASES=1 cargo test --test differential {})",
        subject.name, subject.name,
    );
    if let Some(layers) = (subject.make)(seed).prefill {
        let _ = writeln!(out, "starting from (the lowers; tmpfs holds their merge):");
        let _ = writeln!(out, "{layers}");
    }
    let _ = writeln!(
        out,
        "minimal sequence ({} of {original_len} ops):",
        ops.len()
    );
    for (i, op) in ops.iter().enumerate() {
        let _ = writeln!(out, "    /* {i:2} */ {op};");
    }
    match divergence {
        Divergence::Op { index, ours, tmpfs } => {
            let _ = writeln!(
                out,
                "first divergence at op {index}: {}\n    {}: {ours}\n    tmpfs:  {tmpfs}",
                ops[*index], subject.name
            );
        }
        Divergence::Tree(lines) => {
            let _ = writeln!(out, "every op agreed, but the final trees differ:");
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

/// A rough class of a divergence, to group many failing seeds into few bugs.
fn signature(ops: &[Op], divergence: &Divergence) -> String {
    match divergence {
        Divergence::Op { index, ours, tmpfs } => {
            let class = |outcome: &Outcome| match outcome {
                Outcome::Errno(_) | Outcome::Panic(_) => outcome.to_string(),
                other => format!("{other:?}")
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            };
            format!(
                "{}: driver {} / tmpfs {}",
                ops[*index].name(),
                class(ours),
                class(tmpfs)
            )
        }
        Divergence::Tree(_) => format!(
            "final tree after {}",
            ops.last().map_or("nothing", |op| op.name())
        ),
    }
}

pub fn run_cases(config: &Config, subject: &Subject) {
    // tmpfs is the reference only for a caller that bypasses permission checks and keeps
    // setuid bits on write (CAP_DAC_OVERRIDE, CAP_FSETID): the memory driver acts as root.
    if !rustix::process::geteuid().is_root() {
        eprintln!("differential: skipped, it compares against tmpfs as root and this is not root");
        return;
    }
    // Created files and directories get exactly the mode asked for, as in the memory
    // driver, which knows no umask. This file is its own test binary, so nothing else in
    // the process depends on the umask.
    if let Some(unknown) = config.skip.iter().find(|name| !is_op_name(name)) {
        panic!("VFS_DIFF_SKIP names {unknown:?}, which is no operation");
    }
    rustix::process::umask(rustix::fs::Mode::empty());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Driver panics are caught and reported as divergences; keep the default hook from
    // printing each of them (shrinking replays a panic many times).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !crate::driver::IN_DRIVER.load(Ordering::Relaxed) {
            default_hook(info);
        }
    }));
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut kinds: Vec<(String, Vec<u64>)> = Vec::new();
    let mut total_ops = 0;
    let mut tally = Tally::new();
    for index in 0..config.cases {
        let seed = config.base_seed.wrapping_add(index);
        let (ops, divergence) = run_seed(&runtime, subject, seed, &config.skip, &mut tally);
        total_ops += ops.len();
        if divergence.is_none() {
            continue;
        }
        let minimal = shrink(&runtime, subject, seed, &ops);
        let divergence =
            replay(&runtime, subject, seed, &minimal).expect("the shrunk sequence diverges");
        let text = report(
            subject,
            seed,
            &config.skip,
            ops.len(),
            &minimal,
            &divergence,
        );
        if !config.keep_going {
            panic!("{text}");
        }
        eprintln!("{text}");
        failures.push(seed);
        let kind = signature(&minimal, &divergence);
        match kinds.iter_mut().find(|(known, _)| *known == kind) {
            Some((_, seeds)) => seeds.push(seed),
            None => kinds.push((kind, vec![seed])),
        }
    }
    if !kinds.is_empty() {
        eprintln!("distinct divergences (op, memory, tmpfs -> seeds):");
        for (kind, seeds) in &kinds {
            let shown: Vec<u64> = seeds.iter().copied().take(5).collect();
            eprintln!("    {kind} -> {} seeds, e.g. {shown:?}", seeds.len());
        }
    }
    eprintln!("operations that ran (ok / failed alike on both sides):");
    for (name, (ok, failed)) in &tally {
        eprintln!("    {name:16} {ok:6} / {failed:6}");
    }
    eprintln!(
        "differential ({}): {} sequences, {total_ops} ops, {} diverged, {:.2?}",
        subject.name,
        config.cases,
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} sequences diverged",
        failures.len(),
        config.cases
    );
}
