//! Escape attempts against the host driver: each one must fail with a clean errno (or stay
//! inside the root, as a chrooted process would), and afterwards everything outside the
//! root must be exactly as it was: the canary's content, its times (its atime is set
//! older than its mtime, so with `relatime` any read through the driver would move it),
//! its inode, mode, owner, links and xattrs, and no entry added or removed anywhere
//! outside. The checks themselves read with `O_NOATIME`, so they disturb nothing.
#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags, Timespec, Timestamps};
use vfs_core::{ErrorKind, FileKind, FileSystem, OpenOptions, SetTime, VfsPath, XattrMode};
use vfs_drivers::host::HostFs;

const SECRET: &[u8] = b"CANARY-SECRET: nothing may read or change this file";

#[path = "common/scratch.rs"]
mod common_scratch;

fn scratch() -> &'static Path {
    common_scratch::scratch("vfs-host-escape-tests-")
}

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("valid test path")
}

/// Asserts a clean failure: one of the errnos the attempt may give.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: vfs_core::Result<T>, kinds: &[ErrorKind]) {
    match result {
        Ok(value) => panic!("expected one of {kinds:?}, but it succeeded with {value:?}"),
        Err(err) => assert!(
            kinds.contains(&err.kind()),
            "expected one of {kinds:?}, got {err}"
        ),
    }
}

#[track_caller]
fn enoent<T: std::fmt::Debug>(result: vfs_core::Result<T>) {
    refused(result, &[ErrorKind::NotFound]);
}

fn noatime_fd(path: &Path, flags: OFlags) -> OwnedFd {
    rustix::fs::open(
        path,
        flags | OFlags::NOATIME | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|err| panic!("open {path:?} with O_NOATIME: {err}"))
}

/// Everything observable about a host tree, read without moving any atime. The subtree of
/// `skip` (the driver's root, which the attempts may legitimately change) is left out.
fn snapshot(base: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![base.to_path_buf()];
    while let Some(path) = pending.pop() {
        let stat = rustix::fs::statx(
            rustix::fs::CWD,
            &path,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS,
        )
        .unwrap_or_else(|err| panic!("statx {path:?}: {err}"));
        let kind = u32::from(stat.stx_mode) & 0o170000;
        if path == skip {
            seen.insert(path, format!("the driver root, kind {kind:o}"));
            continue;
        }
        let mut line = format!(
            "mode {:o} uid {} gid {} nlink {} size {} ino {} atime {}.{} mtime {}.{} ctime {}.{}",
            stat.stx_mode,
            stat.stx_uid,
            stat.stx_gid,
            stat.stx_nlink,
            stat.stx_size,
            stat.stx_ino,
            stat.stx_atime.tv_sec,
            stat.stx_atime.tv_nsec,
            stat.stx_mtime.tv_sec,
            stat.stx_mtime.tv_nsec,
            stat.stx_ctime.tv_sec,
            stat.stx_ctime.tv_nsec,
        );
        match kind {
            0o040000 => {
                let fd = noatime_fd(&path, OFlags::RDONLY | OFlags::DIRECTORY);
                let mut names = BTreeSet::new();
                for entry in rustix::fs::Dir::new(fd).expect("read dir") {
                    let name = entry.expect("dir entry").file_name().to_bytes().to_vec();
                    if name != b"." && name != b".." {
                        names.insert(String::from_utf8(name).expect("utf-8 test names"));
                    }
                }
                line += &format!(" entries {names:?}");
                pending.extend(names.iter().map(|name| path.join(name)));
            }
            0o100000 => {
                let mut content = Vec::new();
                std::fs::File::from(noatime_fd(&path, OFlags::RDONLY))
                    .read_to_end(&mut content)
                    .expect("read with O_NOATIME");
                line += &format!(" content {:?}", String::from_utf8_lossy(&content));
            }
            // Symlinks are not read: readlink would move their atime, which is recorded so
            // that a driver following one is caught. Their size stands for the target.
            _ => {}
        }
        let mut names = vec![0u8; 4096];
        if let Ok(len) = rustix::fs::llistxattr(&path, &mut names[..]) {
            for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
                let mut value = vec![0u8; 4096];
                let name = String::from_utf8_lossy(name).into_owned();
                let len = rustix::fs::lgetxattr(&path, &name, &mut value[..]).unwrap_or(0);
                line += &format!(" xattr {name}={:?}", &value[..len]);
            }
        }
        seen.insert(path, line);
    }
    seen
}

/// A base directory holding the driver's `root/` and, beside it, `outside/` with the
/// canary, a directory, a symlink and xattrs; and the driver over `root/`.
struct Sandbox {
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
    /// An absolute host path that nothing may create.
    never: PathBuf,
    fs: Arc<HostFs>,
    before: BTreeMap<PathBuf, String>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let base = tempfile::Builder::new()
            .prefix("case-")
            .tempdir_in(scratch())
            .expect("create a sandbox")
            .keep();
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        std::fs::write(outside.join("canary"), SECRET).unwrap();
        std::fs::write(outside.join("dir/inner"), "inner outside").unwrap();
        std::os::unix::fs::symlink("canary", outside.join("link")).unwrap();
        let _ = rustix::fs::setxattr(
            outside.join("canary"),
            "user.canary",
            b"outside xattr",
            rustix::fs::XattrFlags::empty(),
        );
        // atime before mtime: relatime then updates atime on the next read, any read.
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_500_000_000,
                tv_nsec: 0,
            },
        };
        for path in ["canary", "dir/inner", "dir", ""] {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                outside.join(path),
                &times,
                AtFlags::empty(),
            )
            .unwrap();
        }
        let never = PathBuf::from(format!(
            "/dev/shm/vfs-host-escape-never-{}-{}",
            std::process::id(),
            base.file_name().unwrap().to_string_lossy()
        ));
        let fs = Arc::new(HostFs::new(&root).expect("build the host driver"));
        let before = snapshot(&base, &root);
        Sandbox {
            base,
            root,
            outside,
            never,
            fs,
            before,
        }
    }

    /// The canary's absolute host path.
    fn canary(&self) -> String {
        self.outside.join("canary").to_str().unwrap().to_owned()
    }

    /// The outside directory's absolute host path.
    fn outside_dir(&self) -> String {
        self.outside.to_str().unwrap().to_owned()
    }

    /// Plants a symlink inside the root from the host side.
    fn plant(&self, target: &str, link: &str) {
        let link = self.root.join(link);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    #[track_caller]
    fn assert_untouched(&self) {
        let after = snapshot(&self.base, &self.root);
        for (path, line) in &self.before {
            assert_eq!(after.get(path), Some(line), "{path:?} changed");
        }
        assert_eq!(
            after.len(),
            self.before.len(),
            "entries appeared outside the root"
        );
        assert!(!self.never.exists(), "{:?} was created", self.never);
        let mut content = Vec::new();
        std::fs::File::from(noatime_fd(&self.outside.join("canary"), OFlags::RDONLY))
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, SECRET);
    }
}

async fn must_not_be_the_secret(fs: &HostFs, path: &str) {
    if let Ok(content) = fs.read_file(&p(path)).await {
        assert_ne!(&content[..], SECRET, "{path} read the canary");
    }
}

#[test]
fn dotdot_above_the_root_is_refused_at_the_path_boundary() {
    for path in [
        "/..",
        "/../outside/canary",
        "/a/../../outside/canary",
        "/./../..",
    ] {
        assert_eq!(
            VfsPath::new(path).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{path}"
        );
    }
    let sandbox = Sandbox::new();
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_symlink_to_the_canary_reads_and_stats_nothing() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    enoent(fs.read_file(&p("/abs")).await);
    enoent(fs.stat(&p("/abs")).await);
    enoent(fs.pread(&p("/abs"), 0, 10).await);
    enoent(
        fs.open(&p("/abs"), OpenOptions::read_only())
            .await
            .map(drop),
    );
    assert!(!fs.exists(&p("/abs")).await.unwrap());
    // The link itself is inside and may be looked at.
    assert_eq!(fs.read_link(&p("/abs")).await.unwrap(), sandbox.canary());
    assert_eq!(fs.lstat(&p("/abs")).await.unwrap().kind, FileKind::Symlink);
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotdot_chains_inside_a_symlink_stop_at_the_root() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant("../outside/canary", "up1");
    sandbox.plant(
        &format!("{}{}", "../".repeat(40), &sandbox.canary()[1..]),
        "up40",
    );
    sandbox.plant("../../../outside/canary", "d/e/up3");
    sandbox.plant("/../../../outside/canary", "rooted");
    for link in ["/up1", "/up40", "/d/e/up3", "/rooted"] {
        enoent(fs.read_file(&p(link)).await);
        enoent(fs.stat(&p(link)).await);
    }
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_symlink_chain_climbing_a_level_per_hop_stays_inside() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant("../l2", "a/b/c/l1");
    sandbox.plant("../l3", "a/b/l2");
    sandbox.plant("../l4", "a/l3");
    sandbox.plant("../outside/canary", "l4");
    enoent(fs.read_file(&p("/a/b/c/l1")).await);
    enoent(
        fs.write_file(&p("/a/b/c/l1"), Bytes::from_static(b"x"))
            .await,
    );
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dotdot_symlink_used_as_a_directory_component_climbs_no_further_than_the_root() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant("..", "up");
    sandbox.plant("../../../..", "a/b/c/up4");
    for path in [
        "/up/outside/canary",
        "/up/up/up/outside/canary",
        "/a/b/c/up4/outside/canary",
    ] {
        enoent(fs.read_file(&p(path)).await);
    }
    let mut listed: Vec<String> = fs
        .read_dir(&p("/up/up"))
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        ["a", "up"],
        "/up/up lists the driver root, not its parent"
    );
    assert_eq!(
        fs.realpath(&p("/a/b/c/up4")).await.unwrap(),
        VfsPath::root()
    );
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_into_proc_self_root_and_cwd_lead_nowhere() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    let canary = sandbox.canary();
    sandbox.plant("/proc/self/root", "self_root");
    sandbox.plant(&format!("/proc/self/root{canary}"), "self_root_canary");
    sandbox.plant("/proc/self/cwd", "self_cwd");
    sandbox.plant("/proc/thread-self/root", "thread_root");
    sandbox.plant("/proc/1/root", "init_root");
    for path in [
        format!("/self_root{canary}"),
        "/self_root_canary".to_owned(),
        format!("/self_cwd{canary}"),
        format!("/thread_root{canary}"),
        format!("/init_root{canary}"),
    ] {
        enoent(fs.read_file(&p(&path)).await);
        enoent(fs.stat(&p(&path)).await);
    }
    enoent(fs.read_dir(&p("/self_root")).await);
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_fd_magic_links_are_never_followed() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    // An open descriptor of the canary in this very process, named through /proc.
    let held = noatime_fd(&sandbox.outside.join("canary"), OFlags::PATH);
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    sandbox.plant(&link, "fd_link");
    sandbox.plant("/proc/self/fd", "fds");
    enoent(fs.read_file(&p("/fd_link")).await);
    enoent(fs.read_dir(&p("/fds")).await);
    // A symlink named `proc` makes `/proc/...` targets point at themselves.
    sandbox.plant(&format!("{link}/x"), "proc");
    refused(
        fs.read_file(&p("/proc")).await,
        &[ErrorKind::Loop, ErrorKind::NotFound],
    );
    drop(held);
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_to_an_outside_directory_as_an_intermediate_component() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.outside_dir(), "out");
    sandbox.plant("../outside", "rel_out");
    for dir in ["/out", "/rel_out"] {
        for name in ["canary", "dir/inner", "link"] {
            let path = format!("{dir}/{name}");
            enoent(fs.read_file(&p(&path)).await);
            enoent(fs.lstat(&p(&path)).await);
            enoent(fs.realpath(&p(&path)).await);
        }
        enoent(fs.read_dir(&p(dir)).await);
        enoent(fs.read_dir(&p(&format!("{dir}/dir"))).await);
        enoent(fs.statfs(&p(dir)).await);
    }
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_creates_through_outside_symlinks_create_nothing_outside() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    sandbox.plant(&sandbox.outside_dir(), "out");
    sandbox.plant(sandbox.never.to_str().unwrap(), "never");
    let data = || Bytes::from_static(b"pwned");
    enoent(fs.write_file(&p("/abs"), data()).await);
    enoent(fs.write_file(&p("/never"), data()).await);
    enoent(fs.write_file(&p("/out/canary"), data()).await);
    enoent(fs.write_file(&p("/out/new"), data()).await);
    let create = OpenOptions::new().write(true).create(true);
    enoent(fs.open(&p("/abs"), create).await.map(drop));
    enoent(fs.open(&p("/never"), create).await.map(drop));
    enoent(
        fs.open(&p("/out/new"), create.create_new(true))
            .await
            .map(drop),
    );
    enoent(
        fs.open(&p("/out/canary"), OpenOptions::new().append(true))
            .await
            .map(drop),
    );
    // create_new never follows the final symlink at all.
    refused(
        fs.open(&p("/abs"), OpenOptions::new().write(true).create_new(true))
            .await
            .map(drop),
        &[ErrorKind::AlreadyExists],
    );
    enoent(fs.pwrite(&p("/abs"), 0, data()).await);
    enoent(fs.truncate(&p("/abs"), 0).await);
    enoent(fs.truncate(&p("/out/canary"), 0).await);
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_an_absolute_symlink_lands_inside_the_root_when_the_path_exists_there() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    // Recreate the canary's directory path inside the root: the link now resolves there.
    fs.create_dir_all(&p(&sandbox.outside_dir()), 0o755)
        .await
        .unwrap();
    fs.write_file(&p("/abs"), Bytes::from_static(b"inside"))
        .await
        .unwrap();
    assert_eq!(fs.read_file(&p(&sandbox.canary())).await.unwrap(), "inside");
    let inside = sandbox.root.join(&sandbox.canary()[1..]);
    assert_eq!(std::fs::read(inside).unwrap(), b"inside");
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_symlink_and_link_through_an_outside_symlink_place_nothing_outside() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.outside_dir(), "out");
    fs.write_file(&p("/file"), Bytes::from_static(b"inside"))
        .await
        .unwrap();
    enoent(fs.create_dir(&p("/out/sub"), 0o777).await);
    // `mkdir -p` meets the dangling link at /out and answers as mkdir(2) does there.
    refused(
        fs.create_dir_all(&p("/out/sub/deeper"), 0o777).await,
        &[ErrorKind::AlreadyExists],
    );
    enoent(fs.symlink("/file", &p("/out/evil")).await);
    enoent(fs.hard_link(&p("/file"), &p("/out/planted")).await);
    enoent(fs.rename(&p("/file"), &p("/out/stolen")).await);
    assert_eq!(fs.read_file(&p("/file")).await.unwrap(), "inside");
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_changes_through_outside_symlinks_touch_nothing() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    sandbox.plant(&sandbox.outside_dir(), "out");
    for path in ["/abs", "/out/canary", "/out/dir", "/out"] {
        let path = p(path);
        enoent(fs.set_permissions(&path, 0o777).await);
        enoent(fs.set_owner(&path, Some(4242), Some(4242)).await);
        enoent(fs.set_times(&path, SetTime::Now, SetTime::Now).await);
        enoent(
            fs.set_times(&path, SetTime::At(vfs_core::Timestamp(0)), SetTime::Omit)
                .await,
        );
    }
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xattrs_through_outside_symlinks_are_neither_read_nor_written() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    sandbox.plant(&sandbox.outside_dir(), "out");
    let clean = [ErrorKind::NotFound];
    for path in ["/abs", "/out/canary"] {
        let path = p(path);
        refused(fs.get_xattr(&path, "user.canary").await, &clean);
        refused(fs.list_xattrs(&path).await, &clean);
        let value = Bytes::from_static(b"pwned");
        refused(
            fs.set_xattr(&path, "user.canary", value, XattrMode::Upsert)
                .await,
            &clean,
        );
        refused(fs.remove_xattr(&path, "user.canary").await, &clean);
    }
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_links_cannot_reach_outside_files() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    sandbox.plant(&sandbox.outside_dir(), "out");
    enoent(fs.hard_link(&p("/out/canary"), &p("/stolen")).await);
    enoent(fs.hard_link(&p("/out/link"), &p("/stolen")).await);
    enoent(fs.hard_link(&p("/abs/"), &p("/stolen")).await);
    // Linking the symlink links the symlink itself, which still leads nowhere.
    fs.hard_link(&p("/abs"), &p("/copy")).await.unwrap();
    assert_eq!(fs.lstat(&p("/copy")).await.unwrap().kind, FileKind::Symlink);
    enoent(fs.read_file(&p("/copy")).await);
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_an_outside_symlink_then_writing_through_it() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.canary(), "abs");
    sandbox.plant(&sandbox.outside_dir(), "out");
    fs.create_dir(&p("/d"), 0o755).await.unwrap();
    fs.rename(&p("/abs"), &p("/d/moved")).await.unwrap();
    enoent(
        fs.write_file(&p("/d/moved"), Bytes::from_static(b"pwned"))
            .await,
    );
    enoent(fs.read_file(&p("/d/moved")).await);
    fs.rename(&p("/out"), &p("/d/out")).await.unwrap();
    enoent(
        fs.write_file(&p("/d/out/canary"), Bytes::from_static(b"pwned"))
            .await,
    );
    enoent(fs.rename(&p("/d/out/canary"), &p("/grabbed")).await);
    // Renaming onto the symlink replaces the link, not what it names.
    fs.write_file(&p("/f"), Bytes::from_static(b"inside"))
        .await
        .unwrap();
    fs.rename(&p("/f"), &p("/d/moved")).await.unwrap();
    assert_eq!(fs.read_file(&p("/d/moved")).await.unwrap(), "inside");
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_through_outside_symlinks_remove_only_links() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.outside_dir(), "out");
    sandbox.plant(&sandbox.outside_dir(), "out2");
    sandbox.plant(&sandbox.canary(), "abs");
    enoent(fs.remove_file(&p("/out/canary")).await);
    enoent(fs.remove_dir(&p("/out/dir")).await);
    enoent(fs.remove_dir_all(&p("/out/dir")).await);
    refused(fs.remove_dir(&p("/out")).await, &[ErrorKind::NotADirectory]);
    fs.remove_dir_all(&p("/out")).await.unwrap();
    fs.remove_file(&p("/abs")).await.unwrap();
    // A tree holding an outside symlink is removed without following it.
    fs.create_dir(&p("/tree"), 0o755).await.unwrap();
    fs.rename(&p("/out2"), &p("/tree/out2")).await.unwrap();
    fs.remove_dir_all(&p("/tree")).await.unwrap();
    assert!(fs.read_dir(&p("/")).await.unwrap().is_empty());
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_slashes_on_outside_symlinks_follow_into_the_root_only() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant(&sandbox.outside_dir(), "out");
    enoent(fs.lstat(&p("/out/")).await);
    enoent(fs.stat(&p("/out/")).await);
    enoent(fs.read_dir(&p("/out/")).await);
    enoent(fs.read_link(&p("/out/")).await);
    enoent(fs.hard_link(&p("/out/"), &p("/x")).await);
    refused(
        fs.remove_file(&p("/out/")).await,
        &[ErrorKind::NotADirectory],
    );
    refused(
        fs.rename(&p("/out/"), &p("/x")).await,
        &[ErrorKind::NotADirectory],
    );
    refused(
        fs.create_dir(&p("/out/"), 0o755).await,
        &[ErrorKind::AlreadyExists],
    );
    refused(
        fs.symlink("/", &p("/out/")).await,
        &[ErrorKind::AlreadyExists],
    );
    refused(fs.remove_dir_all(&p("/out/")).await, &[ErrorKind::NotFound]);
    assert_eq!(fs.lstat(&p("/out")).await.unwrap().kind, FileKind::Symlink);
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_the_guest_plants_itself_are_confined_the_same_way() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    fs.symlink(&sandbox.canary(), &p("/abs")).await.unwrap();
    fs.symlink("../../../../../../../../../../outside/canary", &p("/rel"))
        .await
        .unwrap();
    fs.symlink(&sandbox.outside_dir(), &p("/out"))
        .await
        .unwrap();
    fs.symlink("/", &p("/slash")).await.unwrap();
    for path in [
        "/abs",
        "/rel",
        "/out/canary",
        "/slash/out/canary",
        "/slash/slash/abs",
    ] {
        enoent(fs.read_file(&p(path)).await);
        enoent(fs.write_file(&p(path), Bytes::from_static(b"pwned")).await);
    }
    assert_eq!(
        fs.realpath(&p("/slash/slash")).await.unwrap(),
        VfsPath::root()
    );
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_loop_made_of_dotdots_is_eloop() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant("../../loop", "loop");
    sandbox.plant("a/../../b", "b");
    sandbox.plant("b", "a");
    for path in ["/loop", "/b", "/a"] {
        refused(fs.read_file(&p(path)).await, &[ErrorKind::Loop]);
        refused(fs.realpath(&p(path)).await, &[ErrorKind::Loop]);
    }
    refused(
        fs.write_file(&p("/loop"), Bytes::from_static(b"x")).await,
        &[ErrorKind::Loop],
    );
    sandbox.assert_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_handles_created_through_tricks_only_ever_see_inside_files() {
    let sandbox = Sandbox::new();
    let fs = &sandbox.fs;
    sandbox.plant("/target", "dangling");
    // create through a dangling absolute symlink: the target is created inside the root.
    let handle = fs
        .open(
            &p("/dangling"),
            OpenOptions::new().write(true).create(true).mode(0o600),
        )
        .await
        .unwrap();
    handle
        .write_at(0, Bytes::from_static(b"made inside"))
        .await
        .unwrap();
    handle.close().await.unwrap();
    assert_eq!(
        std::fs::read(sandbox.root.join("target")).unwrap(),
        b"made inside"
    );
    // Now swap the link for one pointing out; the open handle is unaffected, new opens fail.
    std::fs::remove_file(sandbox.root.join("dangling")).unwrap();
    sandbox.plant(&sandbox.canary(), "dangling");
    enoent(fs.read_file(&p("/dangling")).await);
    sandbox.assert_untouched();
}

/// One step of the race workload; every outcome must be inside or a clean errno.
async fn race_step(fs: &HostFs, step: usize, errors: &Mutex<BTreeSet<String>>) {
    let clean = |err: vfs_core::VfsError| {
        let allowed = [
            ErrorKind::NotFound,
            ErrorKind::NotADirectory,
            ErrorKind::AlreadyExists,
            ErrorKind::DirectoryNotEmpty,
            ErrorKind::Busy,
            ErrorKind::Loop,
            ErrorKind::IsADirectory,
        ];
        assert!(
            allowed.contains(&err.kind()),
            "unclean error in the race: {err}"
        );
        errors.lock().unwrap().insert(err.code().to_owned());
    };
    for dir in ["/swap", "/swap_rel", "/d/swap"] {
        let file = format!("{dir}/canary");
        match fs.read_file(&p(&file)).await {
            Ok(content) => assert_ne!(&content[..], SECRET, "{file} read the canary"),
            Err(err) => clean(err),
        }
        match fs.stat(&p(&file)).await {
            Ok(meta) => assert_ne!(meta.size, SECRET.len() as u64, "{file} stat'ed the canary"),
            Err(err) => clean(err),
        }
        match fs.read_dir(&p(dir)).await {
            Ok(entries) => assert!(
                entries
                    .iter()
                    .all(|entry| entry.name != "dir" && entry.name != "link"),
                "{dir} listed the outside directory"
            ),
            Err(err) => clean(err),
        }
        let data = Bytes::from(format!("w{step}"));
        match step % 6 {
            0 => fs.write_file(&p(&file), data).await.unwrap_or_else(clean),
            1 => fs.pwrite(&p(&file), 0, data).await.unwrap_or_else(clean),
            2 => fs
                .set_permissions(&p(&file), 0o640)
                .await
                .unwrap_or_else(clean),
            3 => {
                let new = p(&format!("{dir}/new{step}"));
                match fs.create_dir(&new, 0o755).await {
                    Ok(()) => fs.remove_dir(&new).await.unwrap_or_else(clean),
                    Err(err) => clean(err),
                }
            }
            4 => fs
                .set_times(&p(&file), SetTime::Now, SetTime::Now)
                .await
                .unwrap_or_else(clean),
            _ => {
                let options = OpenOptions::new().read(true).write(true).create(true);
                match fs.open(&p(&format!("{dir}/sub/f")), options).await {
                    Ok(handle) => {
                        handle.write_at(0, Bytes::from_static(b"h")).await.unwrap();
                        assert_ne!(&handle.read_at(0, 64).await.unwrap()[..], SECRET);
                    }
                    Err(err) => clean(err),
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_swapped_for_a_symlink_in_a_tight_loop_never_leaks() {
    let sandbox = Sandbox::new();
    let root = sandbox.root.clone();
    // Three directories inside the root, each with a decoy "canary", and beside each a
    // symlink out: absolute, relative, and relative from deeper down.
    for dir in ["swap", "swap_rel", "d/swap"] {
        std::fs::create_dir_all(root.join(dir).join("sub")).unwrap();
        std::fs::write(root.join(dir).join("canary"), "decoy").unwrap();
    }
    sandbox.plant(&sandbox.outside_dir(), "swap_alt");
    sandbox.plant("../outside", "swap_rel_alt");
    sandbox.plant("../../outside", "d/swap_alt");

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, root) = (Arc::clone(&stop), Arc::clone(&swaps), root.clone());
        std::thread::spawn(move || {
            let pairs = [
                ("swap", "swap_alt"),
                ("swap_rel", "swap_rel_alt"),
                ("d/swap", "d/swap_alt"),
            ];
            // Bounded even if the workload hangs.
            for round in 0..5_000_000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (a, b) = pairs[round % pairs.len()];
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    root.join(a),
                    rustix::fs::CWD,
                    root.join(b),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .expect("exchange a directory and a symlink");
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let errors = Arc::new(Mutex::new(BTreeSet::new()));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (fs, errors) = (Arc::clone(&sandbox.fs), Arc::clone(&errors));
            tokio::spawn(async move {
                for step in 0..1500 {
                    race_step(&fs, worker * 10_000 + step, &errors).await;
                }
            })
        })
        .collect();
    let mut outcome = Ok(());
    for worker in workers {
        if let Err(err) = worker.await {
            outcome = Err(err);
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("the swapper thread");
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
    assert!(
        swaps.load(Ordering::Relaxed) > 100,
        "the swapper hardly ran"
    );
    eprintln!(
        "{} swaps; errors seen: {:?}",
        swaps.load(Ordering::Relaxed),
        errors.lock().unwrap()
    );
    sandbox.assert_untouched();
    // The decoys took the writes: inside files did change.
    must_not_be_the_secret(&sandbox.fs, "/swap/canary").await;
}
