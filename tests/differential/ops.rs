//! The operations a sequence is made of, how they are drawn, and how they print.

use std::fmt;

use vfs_core::{FileKind, OpenOptions};

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence on
/// every machine and every version of every dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One filesystem operation. Paths are relative to the root under test, without a leading
/// slash, and may end with a slash (which POSIX gives meaning to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `write_file` (create with 0o644, truncate, write).
    WriteFile {
        path: String,
        data: Vec<u8>,
    },
    /// `open(append)` (optionally with `create`, mode 0o644), then one write.
    Append {
        path: String,
        data: Vec<u8>,
        create: bool,
    },
    /// `pwrite` into an existing file, possibly past its end (a hole).
    Pwrite {
        path: String,
        offset: u64,
        data: Vec<u8>,
    },
    /// `open(write, create_new, mode)`, then one write.
    CreateNew {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    ReadFile {
        path: String,
    },
    Pread {
        path: String,
        offset: u64,
        len: usize,
    },
    Truncate {
        path: String,
        len: u64,
    },
    CreateDir {
        path: String,
        mode: u32,
    },
    CreateDirAll {
        path: String,
        mode: u32,
    },
    RemoveFile {
        path: String,
    },
    RemoveDir {
        path: String,
    },
    RemoveDirAll {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Symlink {
        target: String,
        link: String,
    },
    ReadLink {
        path: String,
    },
    HardLink {
        existing: String,
        new: String,
    },
    Stat {
        path: String,
    },
    Lstat {
        path: String,
    },
    ReadDir {
        path: String,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    /// `chown`, to the caller's own ids or leaving them (`None`); ownership is not
    /// compared, but Linux drops setuid (and group-executable setgid) from a file even
    /// then.
    Chown {
        path: String,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Exists {
        path: String,
    },
    Realpath {
        path: String,
    },
    /// `open` with any flags (Linux's access mode: read-write, write-only or, with neither
    /// `write` nor `append`, read-only), then a write of `data` if it may write (at 0, or
    /// at the end with `append`) and a read of up to 32 bytes at 0 if it may read.
    Open {
        path: String,
        options: OpenOptions,
        data: Vec<u8>,
    },
    /// Opens a handle into slot `slot`, replacing (dropping) the one there if it opens.
    /// Handles live on across the operations that follow (unlinks, renames over,
    /// truncates, hard links...).
    OpenHandle {
        slot: usize,
        path: String,
        options: OpenOptions,
    },
    /// `write_at` through the handle in `slot` (EBADF on both sides if the slot is empty).
    HandleWrite {
        slot: usize,
        offset: u64,
        data: Vec<u8>,
    },
    HandleRead {
        slot: usize,
        offset: u64,
        len: usize,
    },
    HandleSetLen {
        slot: usize,
        len: u64,
    },
    HandleStat {
        slot: usize,
    },
    CloseHandle {
        slot: usize,
    },
    /// A chain of `len` symlinks `/z0 -> z1 -> ... -> z{len-1} -> target`, then `stat` and
    /// `realpath` of `/z0`, then the chain removed again: Linux follows 40 links and fails
    /// the 41st with ELOOP.
    SymlinkChain {
        len: usize,
        target: String,
    },
    /// Opens an existing file read-write, unlinks it, then writes and reads through the
    /// handle and stats it (Linux: the data is there, `nlink` dropped by one).
    UnlinkedHandle {
        path: String,
        data: Vec<u8>,
    },
}

/// Names at the top level; deeper levels draw from `DEEP_NAMES`, so the same few paths are
/// hit again and again and operations collide.
pub const TOP_NAMES: &[&str] = &["a", "b", "c", "d"];
pub const DEEP_NAMES: &[&str] = &["e", "f", "a"];

/// Permission bits `chmod` sets, setuid, setgid and sticky included. The test runs as
/// root, which bypasses permission checks on both sides, so even 0o000 leaves everything
/// reachable; what the bits change is what the kernel does with them (setgid directories
/// pass their group and bit on, writes and chown drop setuid or not).
const CHMOD_MODES: &[u32] = &[0o755, 0o700, 0o644, 0o600, 0o4755, 0o2755, 0o1777, 0o000];
const DIR_MODES: &[u32] = &[0o755, 0o700, 0o777, 0o750, 0o1777];
const FILE_MODES: &[u32] = &[0o644, 0o600, 0o755, 0o666, 0o4755, 0o400];

/// What exists right now (from the tmpfs side): every path below the root with its kind,
/// sorted. Operations are drawn against it so that most of them hit existing entries, but
/// once drawn an operation is plain data: shrinking replays it whatever the state.
pub struct Listing {
    pub entries: Vec<(String, FileKind)>,
    /// The handle slots holding an open handle.
    pub open_slots: Vec<usize>,
}

impl Listing {
    fn dirs(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, kind)| *kind == FileKind::Directory)
            .map(|(path, _)| path.as_str())
    }
}

fn depth(path: &str) -> usize {
    path.trim_end_matches('/').split('/').count()
}

fn pool_path(rng: &mut Rng) -> String {
    let depth = match rng.below(6) {
        0..=2 => 1,
        3 | 4 => 2,
        _ => 3,
    };
    let mut path = rng.pick(TOP_NAMES).to_owned();
    for _ in 1..depth {
        path.push('/');
        path.push_str(rng.pick(DEEP_NAMES));
    }
    path
}

/// What kind of existing entry an operation mostly wants.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefer {
    Anything,
    File,
    Dir,
    Symlink,
    NonDir,
}

impl Prefer {
    fn accepts(self, kind: FileKind) -> bool {
        match self {
            Prefer::Anything => true,
            Prefer::File => kind == FileKind::File,
            Prefer::Dir => kind == FileKind::Directory,
            Prefer::Symlink => kind == FileKind::Symlink,
            Prefer::NonDir => kind != FileKind::Directory,
        }
    }
}

/// What an operation's path argument should mostly be.
#[derive(Clone, Copy)]
enum Want {
    /// Something that exists (what reads, writes, removals and stats act on), mostly of
    /// the kind preferred.
    Existing(Prefer),
    /// A name that may be free (what creations make).
    New,
    /// Either.
    Any,
}

/// An existing entry, a name inside an existing directory (free or not), or any pool
/// path, in proportions set by `want`; never more than three levels deep unless an
/// existing entry is.
fn some_path(rng: &mut Rng, listing: &Listing, want: Want) -> String {
    let (existing, child, prefer) = match want {
        Want::Existing(prefer) => (70, 15, prefer),
        Want::New => (15, 65, Prefer::Anything),
        Want::Any => (45, 35, Prefer::Anything),
    };
    let roll = rng.below(100);
    if roll < existing && !listing.entries.is_empty() {
        let preferred: Vec<&str> = listing
            .entries
            .iter()
            .filter(|(_, kind)| prefer.accepts(*kind))
            .map(|(path, _)| path.as_str())
            .collect();
        if !preferred.is_empty() && rng.percent(80) {
            return preferred[rng.below(preferred.len() as u64) as usize].to_owned();
        }
        return listing.entries[rng.below(listing.entries.len() as u64) as usize]
            .0
            .clone();
    }
    if roll < existing + child {
        let dirs: Vec<&str> = listing.dirs().filter(|dir| depth(dir) < 3).collect();
        // The root counts as a directory too.
        let pick = rng.below(dirs.len() as u64 + 1) as usize;
        return match dirs.get(pick) {
            Some(dir) => format!("{dir}/{}", rng.pick(DEEP_NAMES)),
            None => rng.pick(TOP_NAMES).to_owned(),
        };
    }
    pool_path(rng)
}

/// A path argument, now and then with a trailing slash.
fn path(rng: &mut Rng, listing: &Listing, want: Want) -> String {
    let mut path = some_path(rng, listing, want);
    if rng.percent(8) {
        path.push('/');
    }
    path
}

fn data(rng: &mut Rng) -> Vec<u8> {
    if rng.percent(3) {
        // Several pages, one letter (so that it prints short).
        let letter = b'a' + rng.below(26) as u8;
        return vec![letter; rng.range(3000, 9000) as usize];
    }
    let len = match rng.below(10) {
        0 => 0,
        1 => rng.range(20, 64),
        _ => rng.range(1, 8),
    };
    // One letter per write, so the final content shows which write put which byte.
    let letter = b'a' + rng.below(24) as u8;
    (0..len).map(|i| letter + (i % 3) as u8).collect()
}

/// An offset or length near the start, or now and then far past a small file's end.
fn position(rng: &mut Rng) -> u64 {
    if rng.percent(15) {
        rng.range(4090, 9000)
    } else {
        rng.range(0, 16)
    }
}

/// A relative symlink target, resolved from the link's directory. Targets never hold
/// `..`: on tmpfs they would climb out of the test directory (a link moved to a shallower
/// place would point at the host's `/dev/shm`), while the memory driver's root is its own
/// parent.
fn symlink_target(rng: &mut Rng, listing: &Listing, link: &str) -> String {
    let link = link.trim_end_matches('/');
    let (parent, name) = match link.rsplit_once('/') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, link),
    };
    match rng.below(10) {
        0 => rng.pick(&[".", "./", "", "./a", "a//e"]).to_owned(),
        // A loop onto itself.
        1 => name.to_owned(),
        2 => format!("{}/", pool_path(rng)),
        3..=6 => {
            // An existing entry, seen from the link's directory.
            let reachable: Vec<&str> = listing
                .entries
                .iter()
                .filter_map(|(path, _)| match parent {
                    None => Some(path.as_str()),
                    Some(parent) => path
                        .strip_prefix(parent)
                        .and_then(|rest| rest.strip_prefix('/')),
                })
                .collect();
            if reachable.is_empty() {
                pool_path(rng)
            } else {
                reachable[rng.below(reachable.len() as u64) as usize].to_owned()
            }
        }
        _ => pool_path(rng),
    }
}

/// How often each kind of operation is drawn, by `Op::name`.
const WEIGHTS: &[(u64, &str)] = &[
    (10, "write_file"),
    (5, "append"),
    (6, "pwrite"),
    (5, "create_new"),
    (5, "read_file"),
    (4, "pread"),
    (5, "truncate"),
    (10, "create_dir"),
    (6, "create_dir_all"),
    (5, "remove_file"),
    (4, "remove_dir"),
    (3, "remove_dir_all"),
    (10, "rename"),
    (7, "symlink"),
    (3, "read_link"),
    (5, "hard_link"),
    (4, "stat"),
    (4, "lstat"),
    (4, "read_dir"),
    (4, "chmod"),
    (3, "exists"),
    (2, "realpath"),
    (2, "unlinked_handle"),
    (2, "chown"),
    (6, "open"),
    (6, "open_handle"),
    (4, "handle_write"),
    (3, "handle_read"),
    (2, "handle_set_len"),
    (2, "handle_stat"),
    (1, "close_handle"),
    (1, "symlink_chain"),
];

/// Whether `name` is a kind of operation (for `VFS_DIFF_SKIP`).
pub fn is_op_name(name: &str) -> bool {
    WEIGHTS.iter().any(|(_, known)| *known == name)
}

fn draw(rng: &mut Rng, listing: &Listing) -> Op {
    let total: u64 = WEIGHTS.iter().map(|(weight, _)| weight).sum();
    let mut roll = rng.below(total);
    let mut which = 0;
    while roll >= WEIGHTS[which].0 {
        roll -= WEIGHTS[which].0;
        which += 1;
    }
    let mut kind = WEIGHTS[which].1;
    // An operation on a handle when none is open mostly opens one instead.
    let on_handle = kind.starts_with("handle_") || kind == "close_handle";
    if on_handle && listing.open_slots.is_empty() && rng.percent(70) {
        kind = "open_handle";
    }
    match kind {
        "write_file" => Op::WriteFile {
            path: path(rng, listing, Want::Any),
            data: data(rng),
        },
        "append" => Op::Append {
            path: path(rng, listing, Want::Existing(Prefer::File)),
            data: data(rng),
            create: rng.percent(50),
        },
        "pwrite" => Op::Pwrite {
            path: path(rng, listing, Want::Existing(Prefer::File)),
            offset: position(rng),
            data: data(rng),
        },
        "create_new" => Op::CreateNew {
            path: path(rng, listing, Want::New),
            mode: rng.pick(FILE_MODES),
            data: data(rng),
        },
        "read_file" => Op::ReadFile {
            path: path(rng, listing, Want::Existing(Prefer::File)),
        },
        "pread" => Op::Pread {
            path: path(rng, listing, Want::Existing(Prefer::File)),
            offset: position(rng),
            len: rng.range(0, 24) as usize,
        },
        "truncate" => Op::Truncate {
            path: path(rng, listing, Want::Existing(Prefer::File)),
            len: position(rng),
        },
        "create_dir" => Op::CreateDir {
            path: path(rng, listing, Want::New),
            mode: rng.pick(DIR_MODES),
        },
        "create_dir_all" => Op::CreateDirAll {
            path: path(rng, listing, Want::New),
            mode: rng.pick(DIR_MODES),
        },
        "remove_file" => Op::RemoveFile {
            path: path(rng, listing, Want::Existing(Prefer::NonDir)),
        },
        "remove_dir" => Op::RemoveDir {
            path: path(rng, listing, Want::Existing(Prefer::Dir)),
        },
        "remove_dir_all" => Op::RemoveDirAll {
            path: path(rng, listing, Want::Existing(Prefer::Dir)),
        },
        "rename" => {
            let from = path(rng, listing, Want::Existing(Prefer::Anything));
            let to = if rng.percent(20) {
                // Into its own subtree (EINVAL for a directory).
                format!("{}/{}", from.trim_end_matches('/'), rng.pick(DEEP_NAMES))
            } else {
                path(rng, listing, Want::Any)
            };
            Op::Rename { from, to }
        }
        "symlink" => {
            let link = path(rng, listing, Want::New);
            let target = symlink_target(rng, listing, &link);
            Op::Symlink { target, link }
        }
        "read_link" => Op::ReadLink {
            path: path(rng, listing, Want::Existing(Prefer::Symlink)),
        },
        "hard_link" => Op::HardLink {
            existing: path(rng, listing, Want::Existing(Prefer::NonDir)),
            new: path(rng, listing, Want::New),
        },
        "stat" => Op::Stat {
            path: path(rng, listing, Want::Existing(Prefer::Anything)),
        },
        "lstat" => Op::Lstat {
            path: path(rng, listing, Want::Existing(Prefer::Anything)),
        },
        "read_dir" => Op::ReadDir {
            path: path(rng, listing, Want::Existing(Prefer::Dir)),
        },
        "chmod" => Op::Chmod {
            path: path(rng, listing, Want::Existing(Prefer::Anything)),
            mode: rng.pick(CHMOD_MODES),
        },
        "exists" => Op::Exists {
            path: path(rng, listing, Want::Existing(Prefer::Anything)),
        },
        "realpath" => Op::Realpath {
            path: path(rng, listing, Want::Existing(Prefer::Anything)),
        },
        "unlinked_handle" => Op::UnlinkedHandle {
            path: path(rng, listing, Want::Existing(Prefer::File)),
            data: data(rng),
        },
        "chown" => Op::Chown {
            path: path(rng, listing, Want::Existing(Prefer::Anything)),
            uid: rng.percent(50).then(|| rustix::process::geteuid().as_raw()),
            gid: rng.percent(50).then(|| rustix::process::getegid().as_raw()),
        },
        "open" => Op::Open {
            path: path(rng, listing, Want::Any),
            options: open_options(rng),
            data: if rng.percent(50) {
                Vec::new()
            } else {
                data(rng)
            },
        },
        "open_handle" => Op::OpenHandle {
            slot: rng.below(SLOTS as u64) as usize,
            path: path(rng, listing, Want::Existing(Prefer::File)),
            options: {
                // Mostly both ways, so that the handle can be written and read.
                let mut options = open_options(rng);
                options.read |= rng.percent(60);
                options.write |= rng.percent(60);
                options
            },
        },
        "handle_write" => Op::HandleWrite {
            slot: slot(rng, listing),
            offset: position(rng),
            data: data(rng),
        },
        "handle_read" => Op::HandleRead {
            slot: slot(rng, listing),
            offset: position(rng),
            len: rng.range(0, 24) as usize,
        },
        "handle_set_len" => Op::HandleSetLen {
            slot: slot(rng, listing),
            len: position(rng),
        },
        "handle_stat" => Op::HandleStat {
            slot: slot(rng, listing),
        },
        "symlink_chain" => Op::SymlinkChain {
            len: rng.range(38, 42) as usize,
            target: some_path(rng, listing, Want::Any),
        },
        "close_handle" => Op::CloseHandle {
            slot: slot(rng, listing),
        },
        other => unreachable!("no operation is called {other}"),
    }
}

/// How many handles a sequence keeps open at most.
pub const SLOTS: usize = 3;

/// A slot for an operation on a handle: mostly one holding a handle.
fn slot(rng: &mut Rng, listing: &Listing) -> usize {
    if !listing.open_slots.is_empty() && rng.percent(85) {
        rng.pick(&listing.open_slots)
    } else {
        rng.below(SLOTS as u64) as usize
    }
}

/// Random `open` flags. `read` and `write` both off means read-only, as `O_RDONLY` is the
/// absence of flags.
fn open_options(rng: &mut Rng) -> OpenOptions {
    OpenOptions {
        read: rng.percent(50),
        write: rng.percent(50),
        append: rng.percent(20),
        create: rng.percent(40),
        create_new: rng.percent(15),
        truncate: rng.percent(20),
        mode: rng.pick(FILE_MODES),
    }
}

/// `read+write+create(0o644)`.
fn show_options(options: &OpenOptions) -> String {
    let flags: Vec<&str> = [
        (options.read, "read"),
        (options.write, "write"),
        (options.append, "append"),
        (options.create, "create"),
        (options.create_new, "create_new"),
        (options.truncate, "truncate"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    format!("{}({:#o})", flags.join("+"), options.mode)
}

/// How long the sequence of a seed is: 40 to 80 operations.
pub fn sequence_len(rng: &mut Rng) -> usize {
    rng.range(40, 80) as usize
}

/// The next operation, of none of the kinds named in `skip` (a debugging aid:
/// `VFS_DIFF_SKIP=create_dir_all,rename`).
pub fn next_op(rng: &mut Rng, listing: &Listing, skip: &[String]) -> Op {
    loop {
        let op = draw(rng, listing);
        if !skip.iter().any(|name| name == op.name()) {
            return op;
        }
    }
}

impl Op {
    /// The operation's kind, as `VFS_DIFF_SKIP` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Op::WriteFile { .. } => "write_file",
            Op::Append { .. } => "append",
            Op::Pwrite { .. } => "pwrite",
            Op::CreateNew { .. } => "create_new",
            Op::ReadFile { .. } => "read_file",
            Op::Pread { .. } => "pread",
            Op::Truncate { .. } => "truncate",
            Op::CreateDir { .. } => "create_dir",
            Op::CreateDirAll { .. } => "create_dir_all",
            Op::RemoveFile { .. } => "remove_file",
            Op::RemoveDir { .. } => "remove_dir",
            Op::RemoveDirAll { .. } => "remove_dir_all",
            Op::Rename { .. } => "rename",
            Op::Symlink { .. } => "symlink",
            Op::ReadLink { .. } => "read_link",
            Op::HardLink { .. } => "hard_link",
            Op::Stat { .. } => "stat",
            Op::Lstat { .. } => "lstat",
            Op::ReadDir { .. } => "read_dir",
            Op::Chmod { .. } => "chmod",
            Op::Exists { .. } => "exists",
            Op::Realpath { .. } => "realpath",
            Op::UnlinkedHandle { .. } => "unlinked_handle",
            Op::Open { .. } => "open",
            Op::OpenHandle { .. } => "open_handle",
            Op::HandleWrite { .. } => "handle_write",
            Op::HandleRead { .. } => "handle_read",
            Op::HandleSetLen { .. } => "handle_set_len",
            Op::HandleStat { .. } => "handle_stat",
            Op::CloseHandle { .. } => "close_handle",
            Op::SymlinkChain { .. } => "symlink_chain",
            Op::Chown { .. } => "chown",
        }
    }
}

/// Bytes as a Rust byte-string literal, long runs shortened.
pub fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("b\"");
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let run = bytes[i..].iter().take_while(|&&b| b == byte).count();
        if run > 8 {
            out.push_str(&format!("\" + [{}; {run}] + b\"", escape(byte)));
            i += run;
            continue;
        }
        out.push_str(&escape(byte));
        i += 1;
    }
    out.push('"');
    out.replace("b\"\" + ", "").replace(" + b\"\"", "")
}

fn escape(byte: u8) -> String {
    std::ascii::escape_default(byte).to_string()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |path: &str| format!("\"/{path}\"");
        match self {
            Op::WriteFile { path, data } => {
                write!(f, "fs.write_file({}, {})", p(path), show_bytes(data))
            }
            Op::Append { path, data, create } => write!(
                f,
                "fs.open({}, append{}).write({})",
                p(path),
                if *create { "+create(0o644)" } else { "" },
                show_bytes(data)
            ),
            Op::Pwrite { path, offset, data } => {
                write!(f, "fs.pwrite({}, {offset}, {})", p(path), show_bytes(data))
            }
            Op::CreateNew { path, mode, data } => write!(
                f,
                "fs.open({}, write+create_new({mode:#o})).write({})",
                p(path),
                show_bytes(data)
            ),
            Op::ReadFile { path } => write!(f, "fs.read_file({})", p(path)),
            Op::Pread { path, offset, len } => {
                write!(f, "fs.pread({}, {offset}, {len})", p(path))
            }
            Op::Truncate { path, len } => write!(f, "fs.truncate({}, {len})", p(path)),
            Op::CreateDir { path, mode } => write!(f, "fs.create_dir({}, {mode:#o})", p(path)),
            Op::CreateDirAll { path, mode } => {
                write!(f, "fs.create_dir_all({}, {mode:#o})", p(path))
            }
            Op::RemoveFile { path } => write!(f, "fs.remove_file({})", p(path)),
            Op::RemoveDir { path } => write!(f, "fs.remove_dir({})", p(path)),
            Op::RemoveDirAll { path } => write!(f, "fs.remove_dir_all({})", p(path)),
            Op::Rename { from, to } => write!(f, "fs.rename({}, {})", p(from), p(to)),
            Op::Symlink { target, link } => write!(f, "fs.symlink({target:?}, {})", p(link)),
            Op::ReadLink { path } => write!(f, "fs.read_link({})", p(path)),
            Op::HardLink { existing, new } => {
                write!(f, "fs.hard_link({}, {})", p(existing), p(new))
            }
            Op::Stat { path } => write!(f, "fs.stat({})", p(path)),
            Op::Lstat { path } => write!(f, "fs.lstat({})", p(path)),
            Op::ReadDir { path } => write!(f, "fs.read_dir({})", p(path)),
            Op::Chmod { path, mode } => {
                write!(f, "fs.set_permissions({}, {mode:#o})", p(path))
            }
            Op::Chown { path, uid, gid } => {
                write!(f, "fs.set_owner({}, {uid:?}, {gid:?})", p(path))
            }
            Op::Exists { path } => write!(f, "fs.exists({})", p(path)),
            Op::Realpath { path } => write!(f, "fs.realpath({})", p(path)),
            Op::Open {
                path,
                options,
                data,
            } => {
                write!(f, "fs.open({}, {})", p(path), show_options(options))?;
                if options.writes() {
                    write!(f, ".write({})", show_bytes(data))?;
                }
                if options.read || !options.writes() {
                    f.write_str(".read_at(0, 32)")?;
                }
                Ok(())
            }
            Op::OpenHandle {
                slot,
                path,
                options,
            } => write!(
                f,
                "h{slot} = fs.open({}, {})",
                p(path),
                show_options(options)
            ),
            Op::HandleWrite { slot, offset, data } => {
                write!(f, "h{slot}.write_at({offset}, {})", show_bytes(data))
            }
            Op::HandleRead { slot, offset, len } => {
                write!(f, "h{slot}.read_at({offset}, {len})")
            }
            Op::HandleSetLen { slot, len } => write!(f, "h{slot}.set_len({len})"),
            Op::HandleStat { slot } => write!(f, "h{slot}.stat()"),
            Op::CloseHandle { slot } => write!(f, "h{slot}.close()"),
            Op::SymlinkChain { len, target } => write!(
                f,
                "{{ for i in 0..{len} {{ fs.symlink(if i + 1 < {len} {{ format!(\"z{{}}\", i + 1) }} \
                 else {{ {target:?} }}, format!(\"/z{{i}}\")) }}; (fs.stat(\"/z0\"), \
                 fs.realpath(\"/z0\")) }}"
            ),
            Op::UnlinkedHandle { path, data } => write!(
                f,
                "{{ let h = fs.open({0}, read+write); fs.remove_file({0}); h.write_at(0, {1}); \
                 (h.read_at(0, 64), h.stat()) }}",
                p(path),
                show_bytes(data)
            ),
        }
    }
}
