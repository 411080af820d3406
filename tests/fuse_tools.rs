//! Ordinary tools on a memory filesystem served through FUSE: `cp -a` of a tree,
//! `tar -x` of an archive, `git init && git add && git commit`, and `rm -rf` of a tree of
//! 10,000 files. Each must succeed and leave exactly the expected tree, checked through
//! the kernel and, for `rm -rf`, in the driver itself.
#![cfg(target_os = "linux")]

#[path = "common/fuse.rs"]
mod common_fuse;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common_fuse::{command, run_ok, Served};
use vfs_core::{FileSystem, VfsPath};
use vfs_drivers::memory::MemoryFs;

fn serve_memory(name: &str) -> (Served, Arc<MemoryFs>) {
    let fs = Arc::new(MemoryFs::new());
    let served = Served::new(Arc::clone(&fs) as Arc<dyn FileSystem>, name);
    (served, fs)
}

/// A scratch directory on tmpfs, off the mount, for sources and archives.
fn tmpfs_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/dev/shm")
        .expect("create a directory on /dev/shm")
}

/// Deterministic bytes for file contents (xorshift), so every run builds the same tree.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A tree with what `cp -a` and tar must carry: nested directories, empty and large
/// files, odd modes, a setgid directory, symlinks (relative, absolute, dangling), a pair
/// of hard links, other owners and fixed past timestamps.
fn build_source(root: &Path) {
    let past = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_600_000_000_123_456_789);
    for (i, dir) in ["a", "a/b", "a/b/c", "d", "e-setgid"].iter().enumerate() {
        std::fs::create_dir_all(root.join(dir)).expect("create a source directory");
        for j in 0..6 {
            let len = match (i + j) % 4 {
                0 => 0,
                1 => 17,
                2 => 4096 + 3,
                _ => 1_100_000 + i,
            };
            let file = root.join(dir).join(format!("file-{j}"));
            std::fs::write(&file, content((i * 10 + j) as u64, len)).expect("write a source file");
            let mode = [0o644, 0o600, 0o755, 0o640, 0o444, 0o700][j];
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
                .expect("chmod a source file");
        }
    }
    std::fs::set_permissions(
        root.join("e-setgid"),
        std::fs::Permissions::from_mode(0o2775),
    )
    .expect("chmod the setgid directory");
    std::fs::set_permissions(root.join("d"), std::fs::Permissions::from_mode(0o750))
        .expect("chmod a directory");
    symlink("b/c/file-1", root.join("a/rel-link")).expect("symlink");
    symlink("/etc/hostname", root.join("abs-link")).expect("symlink");
    symlink("nowhere", root.join("d/dangling")).expect("symlink");
    std::fs::hard_link(root.join("a/file-1"), root.join("d/hard-link")).expect("hard link");
    rustix::fs::chown(
        root.join("d/file-2").as_path(),
        Some(rustix::fs::Uid::from_raw(1)),
        Some(rustix::fs::Gid::from_raw(1)),
    )
    .expect("chown a source file");
    // Timestamps last, deepest first, so that nothing touches them afterwards.
    let mut paths = walk(root);
    paths.reverse();
    for path in paths {
        let times = std::fs::FileTimes::new()
            .set_modified(past)
            .set_accessed(past);
        if std::fs::symlink_metadata(&path).expect("stat").is_symlink() {
            continue;
        }
        std::fs::File::open(&path)
            .and_then(|file| file.set_times(times))
            .unwrap_or_else(|err| panic!("set the times of {}: {err}", path.display()));
    }
}

/// Every path beneath `root`, parents before children, in name order.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("list {}: {err}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        entries.sort();
        for entry in entries.into_iter().rev() {
            if std::fs::symlink_metadata(&entry).expect("lstat").is_dir() {
                pending.push(entry.clone());
            }
            out.push(entry);
        }
    }
    out.sort();
    out
}

/// What a copy must reproduce of one entry.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    content: Vec<u8>,
    link_target: Option<PathBuf>,
    mtime: (i64, i64),
    /// The other paths of the tree sharing this entry's inode.
    hard_links: Vec<PathBuf>,
}

/// The tree beneath `root`, keyed by relative path. `mtime_nanos` is false for copies
/// whose format keeps whole seconds (tar).
fn snapshot(root: &Path, mtime_nanos: bool) -> BTreeMap<PathBuf, Entry> {
    let paths = walk(root);
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for path in &paths {
        let meta = std::fs::symlink_metadata(path).expect("lstat");
        if meta.is_file() {
            let relative = path.strip_prefix(root).expect("beneath root").to_path_buf();
            inodes.entry(meta.ino()).or_default().push(relative);
        }
    }
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::symlink_metadata(path).expect("lstat");
            let relative = path.strip_prefix(root).expect("beneath root").to_path_buf();
            let kind = if meta.is_dir() {
                "dir"
            } else if meta.is_symlink() {
                "symlink"
            } else {
                "file"
            };
            let content = if meta.is_file() {
                std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
            } else {
                Vec::new()
            };
            let hard_links = if meta.is_file() {
                inodes[&meta.ino()]
                    .iter()
                    .filter(|other| **other != relative)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let entry = Entry {
                kind,
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                content,
                link_target: meta
                    .is_symlink()
                    .then(|| std::fs::read_link(path).expect("readlink")),
                // A symlink's times are not what cp or tar are asked to keep here.
                mtime: if meta.is_symlink() {
                    (0, 0)
                } else if mtime_nanos {
                    (meta.mtime(), meta.mtime_nsec())
                } else {
                    (meta.mtime(), 0)
                },
                hard_links,
            };
            (relative, entry)
        })
        .collect()
}

#[track_caller]
fn assert_same_tree(expected: &Path, actual: &Path, mtime_nanos: bool) {
    let want = snapshot(expected, mtime_nanos);
    let got = snapshot(actual, mtime_nanos);
    let missing: Vec<_> = want
        .keys()
        .filter(|path| !got.contains_key(*path))
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|path| !want.contains_key(*path))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} vs {}: missing {missing:?}, extra {extra:?}",
        expected.display(),
        actual.display()
    );
    for (path, entry) in &want {
        let copy = &got[path];
        assert!(
            entry == copy,
            "{} differs: expected {:?}, got {:?}",
            path.display(),
            Entry {
                content: Vec::new(),
                ..clone_meta(entry)
            },
            Entry {
                content: Vec::new(),
                ..clone_meta(copy)
            },
        );
    }
    assert!(want.len() > 30, "the source tree is unexpectedly small");
}

/// An entry's metadata without its content, for readable failure messages.
fn clone_meta(entry: &Entry) -> Entry {
    Entry {
        kind: entry.kind,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        content: format!("{} bytes", entry.content.len()).into_bytes(),
        link_target: entry.link_target.clone(),
        mtime: entry.mtime,
        hard_links: entry.hard_links.clone(),
    }
}

#[test]
fn cp_a_copies_a_tree_onto_the_mount_exactly() {
    let source = tmpfs_dir("vfs-fuse-cp-src-");
    build_source(source.path());
    let (served, _fs) = serve_memory("tools-cp");
    let copy = served.path().join("copy");
    run_ok(&mut command(
        "cp",
        ["-a".as_ref(), source.path().as_os_str(), copy.as_os_str()],
    ));
    assert_same_tree(source.path(), &copy, true);

    // And back off the mount: what the kernel reads from it is the same tree again.
    let back = tmpfs_dir("vfs-fuse-cp-back-");
    let back_copy = back.path().join("copy");
    run_ok(&mut command(
        "cp",
        ["-a".as_ref(), copy.as_os_str(), back_copy.as_os_str()],
    ));
    assert_same_tree(source.path(), &back_copy, true);
    served.unmount();
}

#[test]
fn tar_x_extracts_an_archive_onto_the_mount_exactly() {
    let source = tmpfs_dir("vfs-fuse-tar-src-");
    build_source(source.path());
    let archives = tmpfs_dir("vfs-fuse-tar-archive-");
    let archive = archives.path().join("tree.tar");
    run_ok(&mut command(
        "tar",
        [
            "-cf".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            source.path().as_os_str(),
            ".".as_ref(),
        ],
    ));
    let (served, _fs) = serve_memory("tools-tar");
    let target = served.path().join("extracted");
    std::fs::create_dir(&target).expect("create the extraction directory");
    run_ok(&mut command(
        "tar",
        [
            "-xpf".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            target.as_os_str(),
        ],
    ));
    assert_same_tree(source.path(), &target, false);
    served.unmount();
}

#[test]
fn git_init_add_commit_on_the_mount() {
    let (served, _fs) = serve_memory("tools-git");
    let repo = served.path().join("repo");
    std::fs::create_dir(&repo).expect("create the repository directory");
    let home = tmpfs_dir("vfs-fuse-git-home-");
    let git = |args: &[&str]| {
        let mut git = command("git", args);
        git.current_dir(&repo)
            .env("HOME", home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "vfs test")
            .env("GIT_AUTHOR_EMAIL", "vfs@example.invalid")
            .env("GIT_COMMITTER_NAME", "vfs test")
            .env("GIT_COMMITTER_EMAIL", "vfs@example.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
        String::from_utf8_lossy(&run_ok(&mut git).stdout).into_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    let mut expected = Vec::new();
    for i in 0..40 {
        let dir = repo.join(format!("src/m{}", i % 5));
        std::fs::create_dir_all(&dir).expect("create a source directory");
        let name = format!("src/m{}/f{i}.txt", i % 5);
        std::fs::write(repo.join(&name), content(i, 100 + 997 * i as usize))
            .expect("write a source file");
        expected.push(name);
    }
    symlink("src/m0/f0.txt", repo.join("link")).expect("symlink in the repository");
    expected.push("link".to_owned());
    expected.sort();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "a commit on FUSE"]);

    assert_eq!(
        git(&["status", "--porcelain"]),
        "",
        "a clean work tree after the commit"
    );
    git(&["fsck", "--strict", "--no-progress"]);
    let files: Vec<String> = git(&["ls-tree", "-r", "--name-only", "HEAD"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(files, expected, "the commit's tree");
    assert_eq!(git(&["rev-list", "--count", "HEAD"]).trim(), "1");
    // Fixed names, dates and contents make the commit id itself the expected tree.
    let tree = git(&["rev-parse", "HEAD^{tree}"]);
    let blob = git(&["rev-parse", "HEAD:src/m3/f13.txt"]);
    let hashed = {
        let mut hash = command("git", ["hash-object", "--stdin"]);
        hash.stdin(std::process::Stdio::piped());
        let mut child = hash
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start git hash-object");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&content(13, 100 + 997 * 13))
            .expect("feed git hash-object");
        let output = child.wait_with_output().expect("git hash-object");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(blob, hashed, "a blob's id is its content's");
    assert_eq!(tree.trim().len(), 40);
    served.unmount();
}

#[test]
fn rm_rf_removes_a_tree_of_ten_thousand_files() {
    let (served, fs) = serve_memory("tools-rm");
    let tree = served.path().join("many");
    for dir in 0..100 {
        let dir_path = tree.join(format!("d{dir:03}"));
        std::fs::create_dir_all(&dir_path).expect("create a directory");
        for file in 0..100 {
            std::fs::write(dir_path.join(format!("f{file:03}")), b"x").expect("create a file");
        }
    }
    let count = walk(&tree).len();
    assert_eq!(count, 100 + 10_000, "the tree before rm -rf");
    std::fs::write(served.path().join("keep"), b"kept").expect("write a file beside the tree");

    run_ok(&mut command("rm", ["-rf".as_ref(), tree.as_os_str()]));

    assert!(!tree.exists(), "the tree is still there through the kernel");
    let names: Vec<String> = std::fs::read_dir(served.path())
        .expect("list the mount")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["keep"], "the mount root after rm -rf");
    served.runtime().block_on(async {
        assert!(
            !fs.exists(&VfsPath::new("/many").expect("path"))
                .await
                .expect("exists"),
            "the driver still holds the tree"
        );
        let listing = fs
            .read_dir(&VfsPath::root())
            .await
            .expect("list the driver's root");
        assert_eq!(
            listing.len(),
            1,
            "the driver's root after rm -rf: {listing:?}"
        );
    });
    served.unmount();
}
