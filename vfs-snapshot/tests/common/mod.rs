//! Shared fixtures: a tree with every entry kind, and a walk that describes a tree.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{FileKind, FileSystem, SetTime, Timestamp, VfsPath, XattrMode};
use vfs_drivers::MemoryFs;

pub fn p(path: &str) -> VfsPath {
    VfsPath::new(path).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough to chunk.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub async fn write(fs: &dyn FileSystem, path: &str, data: impl Into<Bytes>) {
    fs.write_file(&p(path), data.into()).await.unwrap();
}

/// A tree with directories, empty/small/multi-chunk files, symlinks (relative, absolute,
/// dangling), hard links across directories, xattrs, odd modes, owners and times.
pub async fn populate(fs: &dyn FileSystem) {
    fs.create_dir_all(&p("/etc/conf.d"), 0o755).await.unwrap();
    fs.create_dir_all(&p("/home/user/empty"), 0o700)
        .await
        .unwrap();
    fs.create_dir(&p("/srv"), 0o755).await.unwrap();
    write(fs, "/etc/hosts", "127.0.0.1 localhost\n").await;
    write(fs, "/etc/empty", Bytes::new()).await;
    write(fs, "/etc/conf.d/a.conf", "a=1\n").await;
    write(fs, "/home/user/big.bin", noise(7, 5 * 1024 * 1024 + 123)).await;
    write(fs, "/home/user/notes.txt", "hello").await;
    write(fs, "/srv/same1", "duplicate content").await;
    write(fs, "/srv/same2", "duplicate content").await;
    fs.symlink("hosts", &p("/etc/hosts.link")).await.unwrap();
    fs.symlink("/home/user", &p("/srv/user")).await.unwrap();
    fs.symlink("nowhere", &p("/srv/dangling")).await.unwrap();
    fs.hard_link(&p("/etc/hosts"), &p("/srv/hosts.hard"))
        .await
        .unwrap();
    fs.hard_link(&p("/etc/hosts"), &p("/home/hosts.hard"))
        .await
        .unwrap();
    fs.set_permissions(&p("/home/user/notes.txt"), 0o4750)
        .await
        .unwrap();
    fs.set_owner(&p("/home/user"), Some(1000), Some(1000))
        .await
        .unwrap();
    fs.set_owner(&p("/home/user/notes.txt"), Some(1000), Some(100))
        .await
        .unwrap();
    fs.set_xattr(
        &p("/etc/hosts"),
        "user.origin",
        Bytes::from_static(b"test"),
        XattrMode::Upsert,
    )
    .await
    .unwrap();
    fs.set_xattr(
        &p("/srv"),
        "user.dir",
        Bytes::from_static(b"\x00\x01"),
        XattrMode::Upsert,
    )
    .await
    .unwrap();
    // Times last (everything above touched mtimes), on every entry so two trees built
    // the same way are the same tree; deepest first, as setting a time touches no parent.
    let paths = [
        "/etc/conf.d/a.conf",
        "/etc/conf.d",
        "/etc/hosts",
        "/etc/empty",
        "/home/user/big.bin",
        "/home/user/notes.txt",
        "/home/user/empty",
        "/home/user",
        "/home",
        "/srv/same1",
        "/srv/same2",
        "/srv",
        "/etc",
        "/",
    ];
    for (i, path) in paths.iter().enumerate() {
        let t = SetTime::At(Timestamp(
            1_600_000_000_123_456_789 + i as i64 * 1_000_000_007,
        ));
        fs.set_times(&p(path), t, t).await.unwrap();
    }
}

pub async fn populated() -> Arc<MemoryFs> {
    let fs = Arc::new(MemoryFs::new());
    populate(fs.as_ref()).await;
    fs
}

/// Everything a snapshot must keep about a tree, keyed by path relative to `root`.
/// Hard links are described by the first path (in sorted order) of their inode.
pub async fn describe(fs: &dyn FileSystem, root: &str) -> BTreeMap<String, String> {
    describe_scoped(fs, root, &[]).await
}

/// As `describe`, with inode numbers scoped by the deepest of `scopes` (relative paths of
/// mount points) holding each entry, since every mount numbers its own inodes.
pub async fn describe_scoped(
    fs: &dyn FileSystem,
    root: &str,
    scopes: &[&str],
) -> BTreeMap<String, String> {
    let root = p(root);
    let mut out = BTreeMap::new();
    let mut links: HashMap<(usize, u64), Vec<String>> = HashMap::new();
    let scope_of = |rel: &str| -> usize {
        scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| rel == **s || rel.starts_with(&format!("{s}/")))
            .max_by_key(|(_, s)| s.len())
            .map(|(i, _)| i + 1)
            .unwrap_or(0)
    };
    let mut stack = vec![(root.clone(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        let meta = fs.lstat(&path).await.unwrap();
        let mut xattrs = if meta.kind == FileKind::Symlink {
            Vec::new()
        } else {
            fs.list_xattrs(&path).await.unwrap_or_default()
        };
        xattrs.sort();
        let mut xv = Vec::new();
        for name in xattrs {
            xv.push(format!(
                "{name}={:?}",
                fs.get_xattr(&path, &name).await.unwrap()
            ));
        }
        let mut line = format!("{:?}", meta.kind);
        match meta.kind {
            FileKind::Directory => {
                line += &format!(
                    " mode={:o} uid={} gid={} mtime={} x={xv:?}",
                    meta.mode, meta.uid, meta.gid, meta.mtime.0
                );
                let mut entries = fs.read_dir(&path).await.unwrap();
                entries.sort_by(|a, b| b.name.cmp(&a.name));
                for e in entries {
                    let child_rel = if rel.is_empty() {
                        e.name.clone()
                    } else {
                        format!("{rel}/{}", e.name)
                    };
                    stack.push((path.join(&e.name).unwrap(), child_rel));
                }
            }
            FileKind::Symlink => {
                line += &format!(" -> {}", fs.read_link(&path).await.unwrap());
            }
            _ => {
                let data = fs.read_file(&path).await.unwrap();
                if meta.nlink > 1 {
                    links
                        .entry((scope_of(&rel), meta.ino))
                        .or_default()
                        .push(rel.clone());
                }
                let link = format!("@{}:{}", scope_of(&rel), meta.ino);
                line += &format!(
                    " mode={:o} uid={} gid={} mtime={} size={} sum={} link={link} x={xv:?}",
                    meta.mode,
                    meta.uid,
                    meta.gid,
                    meta.mtime.0,
                    meta.size,
                    vfs_snapshot::Digest::of(&data)
                );
            }
        }
        out.insert(rel, line);
    }
    // Inode numbers differ between trees; what must match is which paths share one.
    // A link group is named by its first path; a lone member within the tree is no group.
    for line in out.values_mut() {
        if let Some(at) = line.find(" link=@") {
            let rest = &line[at + 7..];
            let end = rest.find(' ').unwrap_or(rest.len());
            let (scope, ino) = rest[..end].split_once(':').unwrap();
            let key: (usize, u64) = (scope.parse().unwrap(), ino.parse().unwrap());
            let name = match links.get(&key) {
                Some(group) if group.len() > 1 => group.iter().min().unwrap().clone(),
                _ => String::new(),
            };
            *line = format!("{} link={name}{}", &line[..at], &rest[end..]);
        }
    }
    out
}

/// How many objects the store directory holds, and their paths.
pub fn store_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
