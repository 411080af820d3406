//! The overlay driver: the shared conformance suite (memory over memory, memory over a
//! pre-filled memory lower whose names the upper has whited out, memory over a host
//! directory), then one test per overlay behaviour: whiteouts, opaque directories,
//! copy-up, rename, hard links, inode numbers, stacking and the registry factory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use vfs_core::conformance::Fixture;
use vfs_core::{
    async_trait, Capabilities, DirEntry, DriverDescriptor, DriverRegistry, ErrorKind, FileHandle,
    FileKind, FileSystem, Metadata, OpenOptions, SetTime, StatFs, Timestamp, VfsPath, XattrMode,
};
use vfs_drivers::memory::MemoryFs;
use vfs_drivers::overlay::{OverlayFactory, OverlayFs, COPY_CHUNK};

use vfs_core::conformance::Forward;

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("valid test path")
}

#[track_caller]
fn assert_errno<T: std::fmt::Debug>(result: vfs_core::Result<T>, kind: ErrorKind) {
    match result {
        Ok(value) => panic!("expected {}, got Ok({value:?})", kind.code()),
        Err(err) => assert_eq!(err.kind(), kind, "expected {}, got {err}", kind.code()),
    }
}

fn memory() -> Arc<MemoryFs> {
    Arc::new(MemoryFs::new())
}

/// A memory filesystem holding `files` (`"dir/"` makes a directory, anything else a file
/// with the given content), parents made as needed.
async fn layer_with(entries: &[(&str, &str)]) -> Arc<MemoryFs> {
    let fs = memory();
    fill(fs.as_ref(), entries).await;
    fs
}

async fn fill(fs: &dyn FileSystem, entries: &[(&str, &str)]) {
    for (path, content) in entries {
        if let Some(dir) = path.strip_suffix('/') {
            fs.create_dir_all(&p(dir), 0o755).await.expect("mkdir -p");
        } else {
            let path = p(path);
            if let Some(parent) = path.parent() {
                fs.create_dir_all(&parent, 0o755).await.expect("mkdir -p");
            }
            fs.write_file(&path, Bytes::from(content.to_string()))
                .await
                .expect("write");
        }
    }
}

fn overlay(upper: Arc<MemoryFs>, lowers: Vec<Arc<dyn FileSystem>>) -> OverlayFs {
    OverlayFs::new(upper, lowers).expect("build the overlay")
}

async fn names(fs: &dyn FileSystem, path: &str) -> Vec<String> {
    let mut names: Vec<String> = fs
        .read_dir(&p(path))
        .await
        .expect("read_dir")
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    names.sort();
    names
}

async fn read(fs: &dyn FileSystem, path: &str) -> String {
    String::from_utf8(fs.read_file(&p(path)).await.expect("read_file").to_vec()).expect("utf-8")
}

/// Everything a filesystem holds, for before/after comparisons: per path its kind,
/// mode, owner, size, times, inode, link count, content or target, and xattrs.
async fn snapshot(fs: &dyn FileSystem) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![VfsPath::root()];
    while let Some(dir) = pending.pop() {
        let meta = fs.lstat(&dir).await.expect("lstat");
        out.insert(dir.to_string(), describe(fs, &dir, &meta).await);
        for entry in fs.read_dir(&dir).await.expect("read_dir") {
            let path = dir.join(&entry.name).expect("join");
            if entry.kind == FileKind::Directory {
                pending.push(path);
            } else {
                let meta = fs.lstat(&path).await.expect("lstat");
                out.insert(path.to_string(), describe(fs, &path, &meta).await);
            }
        }
    }
    out
}

async fn describe(fs: &dyn FileSystem, path: &VfsPath, meta: &Metadata) -> String {
    let body = match meta.kind {
        FileKind::File => format!("{:?}", fs.read_file(path).await.expect("read")),
        FileKind::Symlink => fs.read_link(path).await.expect("readlink"),
        _ => String::new(),
    };
    let mut xattrs = Vec::new();
    if meta.kind != FileKind::Symlink {
        for name in fs.list_xattrs(path).await.unwrap_or_default() {
            let value = fs.get_xattr(path, &name).await.expect("getxattr");
            xattrs.push(format!("{name}={value:?}"));
        }
        xattrs.sort();
    }
    format!(
        "{:?} {:o} {}:{} size={} ino={} nlink={} atime={} mtime={} ctime={} {body} {xattrs:?}",
        meta.kind,
        meta.mode,
        meta.uid,
        meta.gid,
        meta.size,
        meta.ino,
        meta.nlink,
        meta.atime.0,
        meta.mtime.0,
        meta.ctime.0,
    )
}

// ---------------------------------------------------------------------------------------
// A probing wrapper: counts what reaches a layer.
// ---------------------------------------------------------------------------------------

/// What reached a probed layer.
#[derive(Default)]
struct Counters {
    read_file_calls: AtomicUsize,
    largest_read_at: AtomicUsize,
    bytes_read: AtomicU64,
    mutations: AtomicUsize,
    shutdowns: AtomicUsize,
}

impl Counters {
    fn mutations(&self) -> usize {
        self.mutations.load(Ordering::SeqCst)
    }

    fn note_read(&self, len: usize, got: usize) {
        self.largest_read_at.fetch_max(len, Ordering::SeqCst);
        self.bytes_read.fetch_add(got as u64, Ordering::SeqCst);
    }
}

/// Any filesystem, with every call that reaches it counted; optionally owning the
/// temporary host directory it serves, so the directory lives exactly as long.
struct Probe {
    inner: Arc<dyn FileSystem>,
    counters: Arc<Counters>,
    _dir: Option<tempfile::TempDir>,
}

impl Probe {
    fn new(inner: Arc<dyn FileSystem>) -> (Arc<Probe>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let probe = Probe {
            inner,
            counters: counters.clone(),
            _dir: None,
        };
        (Arc::new(probe), counters)
    }

    fn mutated(&self) {
        self.counters.mutations.fetch_add(1, Ordering::SeqCst);
    }
}

struct ProbeHandle {
    inner: Box<dyn FileHandle>,
    counters: Arc<Counters>,
}

#[async_trait]
impl FileHandle for ProbeHandle {
    async fn read_at(&self, offset: u64, len: usize) -> vfs_core::Result<Bytes> {
        let data = self.inner.read_at(offset, len).await?;
        self.counters.note_read(len, data.len());
        Ok(data)
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> vfs_core::Result<usize> {
        self.counters.mutations.fetch_add(1, Ordering::SeqCst);
        self.inner.write_at(offset, data).await
    }

    async fn set_len(&self, len: u64) -> vfs_core::Result<()> {
        self.counters.mutations.fetch_add(1, Ordering::SeqCst);
        self.inner.set_len(len).await
    }

    async fn sync(&self) -> vfs_core::Result<()> {
        self.inner.sync().await
    }

    async fn stat(&self) -> vfs_core::Result<Metadata> {
        self.inner.stat().await
    }

    async fn close(&self) -> vfs_core::Result<()> {
        self.inner.close().await
    }
}

#[async_trait]
impl FileSystem for Probe {
    fn kind(&self) -> &str {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn open(
        &self,
        path: &VfsPath,
        options: OpenOptions,
    ) -> vfs_core::Result<Box<dyn FileHandle>> {
        if options.mutates() {
            self.mutated();
        }
        let inner = self.inner.open(path, options).await?;
        Ok(Box::new(ProbeHandle {
            inner,
            counters: self.counters.clone(),
        }))
    }

    async fn stat(&self, path: &VfsPath) -> vfs_core::Result<Metadata> {
        self.inner.stat(path).await
    }

    async fn lstat(&self, path: &VfsPath) -> vfs_core::Result<Metadata> {
        self.inner.lstat(path).await
    }

    async fn read_dir(&self, path: &VfsPath) -> vfs_core::Result<Vec<DirEntry>> {
        self.inner.read_dir(path).await
    }

    async fn create_dir(&self, path: &VfsPath, mode: u32) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.create_dir(path, mode).await
    }

    async fn remove_file(&self, path: &VfsPath) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.remove_file(path).await
    }

    async fn remove_dir(&self, path: &VfsPath) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.remove_dir(path).await
    }

    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.rename(from, to).await
    }

    async fn symlink(&self, target: &str, link: &VfsPath) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.symlink(target, link).await
    }

    async fn read_link(&self, path: &VfsPath) -> vfs_core::Result<String> {
        self.inner.read_link(path).await
    }

    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.hard_link(existing, new).await
    }

    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.set_permissions(path, mode).await
    }

    async fn set_owner(
        &self,
        path: &VfsPath,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.set_owner(path, uid, gid).await
    }

    async fn set_times(
        &self,
        path: &VfsPath,
        atime: SetTime,
        mtime: SetTime,
    ) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.set_times(path, atime, mtime).await
    }

    async fn statfs(&self, path: &VfsPath) -> vfs_core::Result<StatFs> {
        self.inner.statfs(path).await
    }

    async fn get_xattr(&self, path: &VfsPath, name: &str) -> vfs_core::Result<Bytes> {
        self.inner.get_xattr(path, name).await
    }

    async fn set_xattr(
        &self,
        path: &VfsPath,
        name: &str,
        value: Bytes,
        mode: XattrMode,
    ) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.set_xattr(path, name, value, mode).await
    }

    async fn list_xattrs(&self, path: &VfsPath) -> vfs_core::Result<Vec<String>> {
        self.inner.list_xattrs(path).await
    }

    async fn remove_xattr(&self, path: &VfsPath, name: &str) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.remove_xattr(path, name).await
    }

    async fn read_file(&self, path: &VfsPath) -> vfs_core::Result<Bytes> {
        self.counters.read_file_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.read_file(path).await
    }

    async fn write_file(&self, path: &VfsPath, data: Bytes) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.write_file(path, data).await
    }

    async fn pread(&self, path: &VfsPath, offset: u64, len: usize) -> vfs_core::Result<Bytes> {
        let data = self.inner.pread(path, offset, len).await?;
        self.counters.note_read(len, data.len());
        Ok(data)
    }

    async fn pwrite(&self, path: &VfsPath, offset: u64, data: Bytes) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.pwrite(path, offset, data).await
    }

    async fn truncate(&self, path: &VfsPath, len: u64) -> vfs_core::Result<()> {
        self.mutated();
        self.inner.truncate(path, len).await
    }

    async fn shutdown(&self) -> vfs_core::Result<()> {
        self.counters.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.inner.shutdown().await
    }
}

// ---------------------------------------------------------------------------------------
// The conformance suite, three ways.
// ---------------------------------------------------------------------------------------

/// Memory upper over one empty memory lower.
mod memory_over_memory {
    use super::*;

    async fn make() -> Fixture {
        let fs = OverlayFs::new(memory(), vec![memory() as Arc<dyn FileSystem>]).expect("overlay");
        Fixture::new(Arc::new(fs), VfsPath::root())
    }

    vfs_core::conformance_suite!(make);
}

/// As `memory_over_memory`, looking every path up afresh (`lowers_may_change`).
mod memory_over_memory_uncached {
    use super::*;

    async fn make() -> Fixture {
        let fs = OverlayFs::new(memory(), vec![memory() as Arc<dyn FileSystem>])
            .expect("overlay")
            .lowers_may_change();
        Fixture::new(Arc::new(fs), VfsPath::root())
    }

    vfs_core::conformance_suite!(make);
}

/// The names the suite uses most, present in the lower beneath the base and whited out
/// in the upper: creating them goes over whiteouts (directories become opaque), removing
/// them leaves whiteouts again, and the base is a merged directory.
const SHADOWED: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "x", "sub", "src", "dst", "empty", "full", "link", "target",
    "moved", "new", "log", "tree", "outside", "chain", "relative",
];

/// Memory upper over a pre-filled memory lower, the suite working in `/work`, a
/// directory of the lower whose every entry the upper has whited out.
mod memory_over_whited_out_lower {
    use super::*;

    async fn make() -> Fixture {
        let lower = layer_with(&[("/etc/hosts", "lower hosts"), ("/usr/bin/", "")]).await;
        let upper = memory();
        upper.create_dir(&p("/work"), 0o755).await.expect("mkdir");
        for (i, name) in SHADOWED.iter().enumerate() {
            let path = p(&format!("/work/{name}"));
            if i % 2 == 0 {
                // A directory with content, so a name made again must come back empty.
                lower.create_dir_all(&path, 0o755).await.expect("mkdir");
                lower
                    .write_file(
                        &path.join("lower-only").expect("join"),
                        Bytes::from_static(b"hidden"),
                    )
                    .await
                    .expect("write");
            } else {
                lower
                    .create_dir_all(&p("/work"), 0o755)
                    .await
                    .expect("mkdir");
                lower
                    .write_file(&path, Bytes::from_static(b"hidden lower file"))
                    .await
                    .expect("write");
            }
            upper
                .write_file(&p(&format!("/work/.wh.{name}")), Bytes::new())
                .await
                .expect("whiteout");
        }
        let fs = OverlayFs::new(upper, vec![lower as Arc<dyn FileSystem>]).expect("overlay");
        Fixture::new(Arc::new(fs), p("/work"))
    }

    vfs_core::conformance_suite!(make);
}

/// Memory upper over an empty host directory on tmpfs.
#[cfg(target_os = "linux")]
mod memory_over_host {
    use super::*;
    use vfs_drivers::host::HostFs;

    async fn make() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("vfs-overlay-lower-")
            .tempdir_in("/dev/shm")
            .expect("a directory on /dev/shm");
        let host = HostFs::new(dir.path()).expect("host driver");
        // The probe owns the directory, so it is removed when the overlay goes.
        let lower = Probe {
            inner: Arc::new(host),
            counters: Arc::new(Counters::default()),
            _dir: Some(dir),
        };
        let fs = OverlayFs::new(memory(), vec![Arc::new(lower) as Arc<dyn FileSystem>])
            .expect("overlay");
        Fixture::new(Arc::new(fs), VfsPath::root())
    }

    vfs_core::conformance_suite!(make);
}

// ---------------------------------------------------------------------------------------
// Overlay behaviour.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_lower_file_then_recreate_it() {
    let lower = layer_with(&[("/d/f", "lower"), ("/d/keep", "k")]).await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    assert_eq!(read(&fs, "/d/f").await, "lower");

    fs.remove_file(&p("/d/f")).await.expect("unlink");
    assert_errno(fs.stat(&p("/d/f")).await, ErrorKind::NotFound);
    assert_errno(fs.read_file(&p("/d/f")).await, ErrorKind::NotFound);
    assert_errno(fs.remove_file(&p("/d/f")).await, ErrorKind::NotFound);
    assert_eq!(names(&fs, "/d").await, ["keep"]);
    assert!(
        upper.exists(&p("/d/.wh.f")).await.unwrap(),
        "a whiteout hides it"
    );

    fs.write_file(&p("/d/f"), Bytes::from_static(b"upper"))
        .await
        .expect("recreate");
    assert_eq!(read(&fs, "/d/f").await, "upper");
    assert_eq!(names(&fs, "/d").await, ["f", "keep"]);
    assert!(
        !upper.exists(&p("/d/.wh.f")).await.unwrap(),
        "the whiteout is gone"
    );
    assert_eq!(read(lower.as_ref(), "/d/f").await, "lower");

    // Deleted again, the upper copy goes and the whiteout comes back.
    fs.remove_file(&p("/d/f")).await.expect("unlink again");
    assert_errno(fs.stat(&p("/d/f")).await, ErrorKind::NotFound);
    assert!(upper.exists(&p("/d/.wh.f")).await.unwrap());
    assert_eq!(names(&fs, "/d").await, ["keep"]);

    // Recreated as a directory, it is empty and opaque.
    fs.create_dir(&p("/d/f"), 0o755)
        .await
        .expect("mkdir over the whiteout");
    assert!(fs.stat(&p("/d/f")).await.unwrap().is_dir());
    assert!(names(&fs, "/d/f").await.is_empty());
}

#[tokio::test]
async fn rmdir_of_a_lower_only_dir_then_mkdir_comes_back_empty() {
    let lower = layer_with(&[
        ("/a/dir/f1", "1"),
        ("/a/dir/sub/f2", "2"),
        ("/a/other", "o"),
    ])
    .await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);

    assert_errno(
        fs.remove_dir(&p("/a/dir")).await,
        ErrorKind::DirectoryNotEmpty,
    );
    fs.remove_dir_all(&p("/a/dir")).await.expect("rm -r");
    assert_errno(fs.stat(&p("/a/dir")).await, ErrorKind::NotFound);
    assert_eq!(names(&fs, "/a").await, ["other"]);

    fs.create_dir(&p("/a/dir"), 0o700)
        .await
        .expect("mkdir again");
    assert!(
        names(&fs, "/a/dir").await.is_empty(),
        "the lower content stays hidden"
    );
    assert_errno(fs.stat(&p("/a/dir/f1")).await, ErrorKind::NotFound);
    assert_errno(fs.stat(&p("/a/dir/sub")).await, ErrorKind::NotFound);
    assert_eq!(fs.stat(&p("/a/dir")).await.unwrap().mode, 0o700);
    assert!(upper.exists(&p("/a/dir/.wh..wh..opq")).await.unwrap());
    assert!(!upper.exists(&p("/a/.wh.dir")).await.unwrap());

    // The new directory works as any other, and a new file of a lower name is new.
    fs.write_file(&p("/a/dir/f1"), Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert_eq!(names(&fs, "/a/dir").await, ["f1"]);
    assert_eq!(read(&fs, "/a/dir/f1").await, "new");
    assert_eq!(read(lower.as_ref(), "/a/dir/f1").await, "1");
}

#[tokio::test]
async fn rmdir_of_a_merged_dir_whose_upper_holds_only_whiteouts_succeeds() {
    let lower = layer_with(&[("/d/f", "x"), ("/d/g", "y")]).await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    fs.write_file(&p("/d/h"), Bytes::from_static(b"upper file"))
        .await
        .unwrap();
    assert_errno(fs.remove_dir(&p("/d")).await, ErrorKind::DirectoryNotEmpty);
    for name in ["f", "g", "h"] {
        fs.remove_file(&p(&format!("/d/{name}"))).await.unwrap();
    }
    assert_eq!(names(upper.as_ref(), "/d").await, [".wh.f", ".wh.g"]);
    fs.remove_dir(&p("/d"))
        .await
        .expect("rmdir of a dir holding only whiteouts");
    assert_errno(fs.stat(&p("/d")).await, ErrorKind::NotFound);
    assert_eq!(names(upper.as_ref(), "/").await, [".wh.d"]);
    assert!(names(&fs, "/").await.is_empty());
}

#[tokio::test]
async fn rename_of_a_lower_file() {
    let lower = layer_with(&[("/src/f", "content"), ("/dst/", "")]).await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    lower.set_permissions(&p("/src/f"), 0o640).await.unwrap();

    fs.rename(&p("/src/f"), &p("/dst/g")).await.expect("rename");
    assert_eq!(read(&fs, "/dst/g").await, "content");
    assert_eq!(fs.stat(&p("/dst/g")).await.unwrap().mode, 0o640);
    assert_errno(fs.stat(&p("/src/f")).await, ErrorKind::NotFound);
    assert!(names(&fs, "/src").await.is_empty());
    assert_eq!(names(upper.as_ref(), "/src").await, [".wh.f"]);
    assert_eq!(names(upper.as_ref(), "/dst").await, ["g"]);
    assert_eq!(read(lower.as_ref(), "/src/f").await, "content");

    // Over a lower file: replaced, and back over its own old name.
    fill(lower.as_ref(), &[("/dst/old", "old")]).await;
    let fs = overlay(memory(), vec![lower.clone()]);
    fs.rename(&p("/src/f"), &p("/dst/old"))
        .await
        .expect("rename over a lower file");
    assert_eq!(read(&fs, "/dst/old").await, "content");
    fs.rename(&p("/dst/old"), &p("/src/f"))
        .await
        .expect("rename back");
    assert_eq!(read(&fs, "/src/f").await, "content");
    assert_eq!(names(&fs, "/dst").await, Vec::<String>::new());
}

#[tokio::test]
async fn rename_of_a_whole_lower_directory_tree() {
    let lower = layer_with(&[
        ("/data/tree/a", "A"),
        ("/data/tree/sub/b", "B"),
        ("/data/tree/sub/deeper/c", "C"),
        ("/data/tree/gone", "G"),
        ("/data/tree/empty/", ""),
    ])
    .await;
    lower.symlink("sub/b", &p("/data/tree/link")).await.unwrap();
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    // Part of the tree already changed in the upper.
    fs.write_file(&p("/data/tree/sub/new"), Bytes::from_static(b"N"))
        .await
        .unwrap();
    fs.remove_file(&p("/data/tree/gone")).await.unwrap();
    let lower_before = snapshot(lower.as_ref()).await;

    fs.rename(&p("/data/tree"), &p("/moved"))
        .await
        .expect("rename of a lower tree");
    assert_errno(fs.stat(&p("/data/tree")).await, ErrorKind::NotFound);
    assert!(names(&fs, "/data").await.is_empty());
    assert_eq!(names(&fs, "/moved").await, ["a", "empty", "link", "sub"]);
    assert_eq!(names(&fs, "/moved/sub").await, ["b", "deeper", "new"]);
    assert_eq!(read(&fs, "/moved/a").await, "A");
    assert_eq!(read(&fs, "/moved/sub/deeper/c").await, "C");
    assert_eq!(read(&fs, "/moved/sub/new").await, "N");
    assert_eq!(read(&fs, "/moved/link").await, "B");
    assert_eq!(fs.read_link(&p("/moved/link")).await.unwrap(), "sub/b");
    // The upper holds the whole tree, opaque, and a whiteout at the old name.
    assert!(upper.exists(&p("/moved/.wh..wh..opq")).await.unwrap());
    assert_eq!(read(upper.as_ref(), "/moved/sub/deeper/c").await, "C");
    assert!(upper.exists(&p("/data/.wh.tree")).await.unwrap());
    assert_eq!(
        snapshot(lower.as_ref()).await,
        lower_before,
        "the lower is untouched"
    );

    // Moved again, now an upper-only directory: a plain rename keeps its inode.
    let ino = fs.stat(&p("/moved")).await.unwrap().ino;
    fs.rename(&p("/moved"), &p("/again"))
        .await
        .expect("second rename");
    assert_eq!(fs.stat(&p("/again")).await.unwrap().ino, ino);
    assert_eq!(read(&fs, "/again/sub/b").await, "B");
}

#[tokio::test]
async fn rename_of_a_dir_over_an_empty_lower_dir_hides_the_lower_one() {
    let lower = layer_with(&[("/target/hidden", "h")]).await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    fs.remove_file(&p("/target/hidden")).await.unwrap();
    fs.create_dir(&p("/src"), 0o755).await.unwrap();
    fs.write_file(&p("/src/f"), Bytes::from_static(b"f"))
        .await
        .unwrap();
    fs.rename(&p("/src"), &p("/target"))
        .await
        .expect("rename over an empty merged dir");
    assert_eq!(names(&fs, "/target").await, ["f"]);
    assert_errno(fs.stat(&p("/target/hidden")).await, ErrorKind::NotFound);
    assert!(upper.exists(&p("/target/.wh..wh..opq")).await.unwrap());
    assert_errno(fs.stat(&p("/src")).await, ErrorKind::NotFound);
    // A non-empty merged target is refused.
    fill(lower.as_ref(), &[("/full/x", "x")]).await;
    let fs = overlay(memory(), vec![lower.clone()]);
    fs.create_dir(&p("/src"), 0o755).await.unwrap();
    assert_errno(
        fs.rename(&p("/src"), &p("/full")).await,
        ErrorKind::DirectoryNotEmpty,
    );
}

#[tokio::test]
async fn hard_link_after_copy_up_shares_the_upper_inode() {
    let lower = layer_with(&[("/f", "shared")]).await;
    lower.hard_link(&p("/f"), &p("/lower-link")).await.unwrap();
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    assert_eq!(
        fs.stat(&p("/f")).await.unwrap().ino,
        fs.stat(&p("/lower-link")).await.unwrap().ino
    );

    fs.hard_link(&p("/f"), &p("/g"))
        .await
        .expect("link a lower file");
    let (f, g) = (
        fs.stat(&p("/f")).await.unwrap(),
        fs.stat(&p("/g")).await.unwrap(),
    );
    assert_eq!(f.ino, g.ino);
    assert_eq!((f.nlink, g.nlink), (2, 2));
    assert_eq!(
        upper.stat(&p("/f")).await.unwrap().ino,
        upper.stat(&p("/g")).await.unwrap().ino
    );
    fs.write_file(&p("/g"), Bytes::from_static(b"changed"))
        .await
        .unwrap();
    assert_eq!(read(&fs, "/f").await, "changed");

    // As overlayfs without index=on: the copy-up broke the lower's own link.
    assert_eq!(read(&fs, "/lower-link").await, "shared");
    assert_ne!(fs.stat(&p("/lower-link")).await.unwrap().ino, f.ino);
    assert_eq!(read(lower.as_ref(), "/f").await, "shared");

    // A link made after a plain copy-up (by a write) works the same.
    fill(lower.as_ref(), &[("/h", "h")]).await;
    let fs = overlay(memory(), vec![lower.clone()]);
    fs.pwrite(&p("/h"), 1, Bytes::from_static(b"!"))
        .await
        .unwrap();
    fs.hard_link(&p("/h"), &p("/h2")).await.unwrap();
    assert_eq!(fs.stat(&p("/h2")).await.unwrap().nlink, 2);
    assert_eq!(read(&fs, "/h2").await, "h!");
}

const OLD: Timestamp = Timestamp(1_000_000_000_123_456_789);
const OLDER: Timestamp = Timestamp(900_000_000_987_654_321);

#[tokio::test]
async fn copy_up_keeps_mode_owner_times_and_xattrs() {
    let lower = layer_with(&[("/dir/f", "content")]).await;
    for (path, mode) in [("/dir", 0o2750), ("/dir/f", 0o4711)] {
        lower
            .set_owner(&p(path), Some(1234), Some(5678))
            .await
            .unwrap();
        lower.set_permissions(&p(path), mode).await.unwrap();
        lower
            .set_xattr(
                &p(path),
                "user.origin",
                Bytes::from_static(b"lower"),
                XattrMode::Upsert,
            )
            .await
            .unwrap();
    }
    lower
        .set_times(&p("/dir/f"), SetTime::At(OLDER), SetTime::At(OLD))
        .await
        .unwrap();
    lower
        .set_times(&p("/dir"), SetTime::At(OLD), SetTime::At(OLDER))
        .await
        .unwrap();
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);

    // An xattr change copies up, and changes nothing else.
    fs.set_xattr(
        &p("/dir/f"),
        "user.added",
        Bytes::from_static(b"1"),
        XattrMode::CreateOnly,
    )
    .await
    .expect("setxattr copies up");
    let copied = upper
        .stat(&p("/dir/f"))
        .await
        .expect("the upper holds the file");
    assert_eq!(copied.mode, 0o4711);
    assert_eq!((copied.uid, copied.gid), (1234, 5678));
    assert_eq!(copied.atime, OLDER);
    assert_eq!(copied.mtime, OLD);
    assert_eq!(read(upper.as_ref(), "/dir/f").await, "content");
    let mut xattrs = upper.list_xattrs(&p("/dir/f")).await.unwrap();
    xattrs.sort();
    assert_eq!(xattrs, ["user.added", "user.origin"]);
    assert_eq!(
        upper.get_xattr(&p("/dir/f"), "user.origin").await.unwrap(),
        "lower"
    );

    // The parent was copied up with its own metadata, its times kept despite the copy.
    let dir = upper.stat(&p("/dir")).await.unwrap();
    assert_eq!(dir.mode, 0o2750);
    assert_eq!((dir.uid, dir.gid), (1234, 5678));
    assert_eq!((dir.atime, dir.mtime), (OLD, OLDER));
    assert_eq!(
        upper.get_xattr(&p("/dir"), "user.origin").await.unwrap(),
        "lower"
    );
    let seen = fs.stat(&p("/dir/f")).await.unwrap();
    assert_eq!(
        (seen.mode, seen.uid, seen.gid, seen.mtime),
        (0o4711, 1234, 5678, OLD)
    );

    // chmod, chown and utimes each copy up too.
    fill(
        lower.as_ref(),
        &[("/m", "m"), ("/o", "o"), ("/t", "t"), ("/untouched", "u")],
    )
    .await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    fs.set_permissions(&p("/m"), 0o600).await.unwrap();
    fs.set_owner(&p("/o"), Some(7), None).await.unwrap();
    fs.set_times(&p("/t"), SetTime::Omit, SetTime::At(OLD))
        .await
        .unwrap();
    assert_eq!(upper.stat(&p("/m")).await.unwrap().mode, 0o600);
    assert_eq!(upper.stat(&p("/o")).await.unwrap().uid, 7);
    assert_eq!(upper.stat(&p("/t")).await.unwrap().mtime, OLD);
    assert_eq!(lower.stat(&p("/m")).await.unwrap().mode, 0o644);
    // utimes that changes nothing copies nothing up.
    fs.set_times(&p("/untouched"), SetTime::Omit, SetTime::Omit)
        .await
        .unwrap();
    assert!(!upper.exists(&p("/untouched")).await.unwrap());
}

#[tokio::test]
async fn copy_up_of_a_symlink_recreates_it() {
    let lower = layer_with(&[("/d/target", "t")]).await;
    lower.symlink("target", &p("/d/link")).await.unwrap();
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    fs.rename(&p("/d/link"), &p("/d/renamed")).await.unwrap();
    assert!(upper.lstat(&p("/d/renamed")).await.unwrap().is_symlink());
    assert_eq!(upper.read_link(&p("/d/renamed")).await.unwrap(), "target");
    assert_eq!(read(&fs, "/d/renamed").await, "t");
    // chmod through a lower symlink copies up the target, not the link.
    fs.set_permissions(&p("/d/renamed"), 0o600).await.unwrap();
    assert_eq!(upper.stat(&p("/d/target")).await.unwrap().mode, 0o600);
}

#[tokio::test]
async fn large_file_copy_up_streams_in_chunks() {
    const SIZE: usize = 16 << 20;
    let content: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8 | 1).collect();
    let inner = memory();
    inner
        .write_file(&p("/big"), Bytes::from(content.clone()))
        .await
        .unwrap();
    let (lower, counters) = Probe::new(inner);
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone() as Arc<dyn FileSystem>]);

    fs.pwrite(&p("/big"), 5, Bytes::from_static(b"!"))
        .await
        .expect("write copies up");
    assert_eq!(
        counters.read_file_calls.load(Ordering::SeqCst),
        0,
        "never read whole"
    );
    let largest = counters.largest_read_at.load(Ordering::SeqCst);
    assert!(
        largest <= COPY_CHUNK,
        "read_at of {largest} bytes, over the chunk"
    );
    assert_eq!(counters.bytes_read.load(Ordering::SeqCst), SIZE as u64);
    assert_eq!(counters.mutations(), 0);

    let mut expected = content;
    expected[5] = b'!';
    let through_overlay = fs.read_file(&p("/big")).await.unwrap();
    assert!(through_overlay == expected, "the copy differs");
    assert!(upper.read_file(&p("/big")).await.unwrap() == expected);
    assert_eq!(
        counters.read_file_calls.load(Ordering::SeqCst),
        0,
        "reads now go to the upper"
    );
}

#[tokio::test]
async fn truncate_and_o_trunc_copy_only_what_they_keep() {
    let inner = layer_with(&[("/a", "0123456789"), ("/b", "0123456789")]).await;
    let (lower, counters) = Probe::new(inner);
    let fs = overlay(memory(), vec![lower as Arc<dyn FileSystem>]);
    fs.truncate(&p("/a"), 4).await.unwrap();
    assert_eq!(read(&fs, "/a").await, "0123");
    assert_eq!(counters.bytes_read.load(Ordering::SeqCst), 4);
    let handle = fs
        .open(&p("/b"), OpenOptions::new().write(true).truncate(true))
        .await
        .unwrap();
    handle
        .write_at(0, Bytes::from_static(b"new"))
        .await
        .unwrap();
    handle.close().await.unwrap();
    assert_eq!(read(&fs, "/b").await, "new");
    assert_eq!(
        counters.bytes_read.load(Ordering::SeqCst),
        4,
        "O_TRUNC copied no content"
    );
}

#[tokio::test]
async fn copy_up_keeps_holes() {
    let lower = memory();
    lower.write_file(&p("/sparse"), Bytes::new()).await.unwrap();
    lower
        .pwrite(&p("/sparse"), 8 << 20, Bytes::from_static(b"end"))
        .await
        .unwrap();
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone() as Arc<dyn FileSystem>]);
    fs.set_permissions(&p("/sparse"), 0o600).await.unwrap();
    let copied = upper.stat(&p("/sparse")).await.unwrap();
    assert_eq!(copied.size, (8 << 20) + 3);
    assert!(copied.blocks < 64, "the hole was written out: {copied:?}");
    assert_eq!(
        fs.pread(&p("/sparse"), 4 << 20, 4).await.unwrap(),
        vec![0u8; 4]
    );
    assert_eq!(fs.pread(&p("/sparse"), 8 << 20, 10).await.unwrap(), "end");
}

#[tokio::test]
async fn whiteouts_and_opaque_markers_are_plain_files_in_the_upper() {
    let lower = layer_with(&[
        ("/etc/passwd", "root"),
        ("/etc/skel/.bashrc", "rc"),
        ("/opt/app/bin", "b"),
    ])
    .await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    fs.remove_file(&p("/etc/passwd")).await.unwrap();
    fs.remove_dir_all(&p("/etc/skel")).await.unwrap();
    fs.create_dir(&p("/etc/skel"), 0o755).await.unwrap();
    fs.remove_dir_all(&p("/opt/app")).await.unwrap();

    let whiteout = upper
        .lstat(&p("/etc/.wh.passwd"))
        .await
        .expect("a whiteout file");
    assert_eq!((whiteout.kind, whiteout.size), (FileKind::File, 0));
    let marker = upper
        .lstat(&p("/etc/skel/.wh..wh..opq"))
        .await
        .expect("an opaque marker");
    assert_eq!((marker.kind, marker.size), (FileKind::File, 0));
    assert!(upper.lstat(&p("/opt/.wh.app")).await.unwrap().is_file());
    assert_eq!(names(upper.as_ref(), "/etc").await, [".wh.passwd", "skel"]);
    assert_eq!(names(upper.as_ref(), "/etc/skel").await, [".wh..wh..opq"]);
    assert_eq!(names(upper.as_ref(), "/opt").await, [".wh.app"]);
    // None of it shows through the overlay.
    assert_eq!(names(&fs, "/etc").await, ["skel"]);
    assert!(names(&fs, "/etc/skel").await.is_empty());
    assert!(names(&fs, "/opt").await.is_empty());
    for hidden in ["/etc/.wh.passwd", "/etc/skel/.wh..wh..opq", "/opt/.wh.app"] {
        assert_errno(fs.lstat(&p(hidden)).await, ErrorKind::NotFound);
        assert_errno(fs.read_file(&p(hidden)).await, ErrorKind::NotFound);
    }
    // An upper that is itself a filled layer works: a fresh overlay over the same upper
    // and lower sees the same tree.
    let again = overlay(upper.clone(), vec![lower.clone()]);
    assert_eq!(names(&again, "/etc").await, ["skel"]);
    assert!(names(&again, "/etc/skel").await.is_empty());
}

#[tokio::test]
async fn wh_prefixed_names_are_refused_with_einval() {
    let lower = layer_with(&[("/f", "x")]).await;
    let fs = overlay(memory(), vec![lower]);
    for name in ["/.wh.x", "/.wh..wh..opq", "/.wh."] {
        let path = p(name);
        assert_errno(
            fs.write_file(&path, Bytes::new()).await,
            ErrorKind::InvalidInput,
        );
        assert_errno(
            fs.open(&path, OpenOptions::new().write(true).create_new(true))
                .await
                .map(drop),
            ErrorKind::InvalidInput,
        );
        assert_errno(fs.create_dir(&path, 0o755).await, ErrorKind::InvalidInput);
        assert_errno(fs.symlink("f", &path).await, ErrorKind::InvalidInput);
        assert_errno(fs.hard_link(&p("/f"), &path).await, ErrorKind::InvalidInput);
        assert_errno(fs.rename(&p("/f"), &path).await, ErrorKind::InvalidInput);
        assert_errno(fs.stat(&path).await, ErrorKind::NotFound);
    }
    // Through a dangling symlink too.
    fs.symlink(".wh.sneaky", &p("/link")).await.unwrap();
    assert_errno(
        fs.write_file(&p("/link"), Bytes::new()).await,
        ErrorKind::InvalidInput,
    );
    let err = fs.create_dir(&p("/.wh.x"), 0o755).await.unwrap_err();
    assert_eq!(err.path(), Some("/.wh.x"), "{err}");
    assert_eq!(names(&fs, "/").await, ["f", "link"]);
    assert_eq!(read(&fs, "/f").await, "x");
}

#[tokio::test]
async fn read_dir_lists_each_name_once_with_the_topmost_kind() {
    let bottom = layer_with(&[
        ("/d/in-all/b", "b"),
        ("/d/file-then-dir", "bottom file"),
        ("/d/only-bottom", "b"),
        ("/d/whited", "w"),
        ("/d/same", "bottom"),
    ])
    .await;
    let middle = layer_with(&[
        ("/d/in-all/m", "m"),
        ("/d/file-then-dir/inner", "i"),
        ("/d/same", "middle"),
        ("/d/dir-then-file/x", "x"),
    ])
    .await;
    let upper = layer_with(&[
        ("/d/in-all/u", "u"),
        ("/d/same", "upper"),
        ("/d/dir-then-file", "file"),
    ])
    .await;
    upper
        .write_file(&p("/d/.wh.whited"), Bytes::new())
        .await
        .unwrap();
    let fs = overlay(upper, vec![middle, bottom]);

    let entries = fs.read_dir(&p("/d")).await.unwrap();
    let mut kinds: Vec<(String, FileKind)> =
        entries.iter().map(|e| (e.name.clone(), e.kind)).collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        [
            ("dir-then-file".to_owned(), FileKind::File),
            ("file-then-dir".to_owned(), FileKind::Directory),
            ("in-all".to_owned(), FileKind::Directory),
            ("only-bottom".to_owned(), FileKind::File),
            ("same".to_owned(), FileKind::File),
        ]
    );
    assert_eq!(read(&fs, "/d/same").await, "upper");
    assert_eq!(names(&fs, "/d/in-all").await, ["b", "m", "u"]);
    // A directory over a file: the file below is hidden, not merged.
    assert_eq!(names(&fs, "/d/file-then-dir").await, ["inner"]);
    // A file over a directory hides the directory's content.
    assert_errno(
        fs.stat(&p("/d/dir-then-file/x")).await,
        ErrorKind::NotADirectory,
    );
    // Every listed ino is the one lstat reports, and they are distinct.
    let mut inos = std::collections::HashSet::new();
    for entry in &entries {
        let meta = fs.lstat(&p(&format!("/d/{}", entry.name))).await.unwrap();
        assert_eq!(entry.ino, meta.ino, "{}", entry.name);
        assert!(inos.insert(entry.ino), "ino of {} reused", entry.name);
    }
}

#[tokio::test]
async fn inode_numbers_are_stable_and_distinct_across_layers() {
    let lower = layer_with(&[("/dir/a", "a"), ("/dir/b", "b"), ("/x", "x")]).await;
    let upper = layer_with(&[("/y", "y")]).await;
    let fs = overlay(upper, vec![lower]);
    let mut seen = std::collections::HashMap::new();
    for path in ["/", "/dir", "/dir/a", "/dir/b", "/x", "/y"] {
        let ino = fs.lstat(&p(path)).await.unwrap().ino;
        assert_eq!(
            fs.lstat(&p(path)).await.unwrap().ino,
            ino,
            "stable for {path}"
        );
        if let Some(other) = seen.insert(ino, path) {
            panic!("{path} and {other} share ino {ino}");
        }
    }
    // A directory keeps its number when it is copied up (a file created in it).
    let dir_ino = fs.stat(&p("/dir")).await.unwrap().ino;
    fs.write_file(&p("/dir/c"), Bytes::from_static(b"c"))
        .await
        .unwrap();
    assert_eq!(fs.stat(&p("/dir")).await.unwrap().ino, dir_ino);
    assert_eq!(
        fs.stat(&p("/dir")).await.unwrap().nlink,
        1,
        "merged: nlink unknown"
    );
    // A file changes number on copy-up (documented), then keeps the new one.
    let before = fs.stat(&p("/dir/a")).await.unwrap().ino;
    fs.pwrite(&p("/dir/a"), 1, Bytes::from_static(b"!"))
        .await
        .unwrap();
    let after = fs.stat(&p("/dir/a")).await.unwrap().ino;
    assert_ne!(before, after);
    assert_eq!(fs.stat(&p("/dir/a")).await.unwrap().ino, after);
}

#[tokio::test]
async fn handles_read_lower_files_and_write_upper_copies() {
    let lower = layer_with(&[
        ("/f", "lower"),
        ("/dir/", ""),
        ("/g", "gee"),
        ("/gone", "still here"),
    ])
    .await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    let reader = fs.open(&p("/f"), OpenOptions::read_only()).await.unwrap();
    assert_eq!(reader.read_at(0, 100).await.unwrap(), "lower");
    assert_eq!(
        reader.stat().await.unwrap().ino,
        fs.stat(&p("/f")).await.unwrap().ino
    );
    assert!(
        !upper.exists(&p("/f")).await.unwrap(),
        "a read copies nothing up"
    );

    let writer = fs
        .open(&p("/f"), OpenOptions::new().read(true).write(true))
        .await
        .unwrap();
    assert!(
        upper.exists(&p("/f")).await.unwrap(),
        "open for write copied up"
    );
    writer
        .write_at(0, Bytes::from_static(b"UPPER"))
        .await
        .unwrap();
    assert_eq!(writer.read_at(0, 100).await.unwrap(), "UPPER");
    assert_eq!(
        writer.stat().await.unwrap().ino,
        fs.stat(&p("/f")).await.unwrap().ino
    );
    assert_eq!(read(&fs, "/f").await, "UPPER");
    // The handle opened before the copy-up moved to the copy (as Linux >= 4.19).
    assert_eq!(reader.read_at(0, 100).await.unwrap(), "UPPER");
    assert_eq!(
        reader.stat().await.unwrap().ino,
        fs.stat(&p("/f")).await.unwrap().ino
    );
    writer.set_len(2).await.unwrap();
    assert_eq!(reader.stat().await.unwrap().size, 2);
    assert_eq!(read(lower.as_ref(), "/f").await, "lower");
    // A handle follows its lower file through a rename (a copy-up, then an upper rename)
    // and keeps reading it after a whiteout hides its name.
    let moved = fs.open(&p("/g"), OpenOptions::read_only()).await.unwrap();
    let hidden = fs
        .open(&p("/gone"), OpenOptions::read_only())
        .await
        .unwrap();
    fs.rename(&p("/g"), &p("/h")).await.unwrap();
    fs.pwrite(&p("/h"), 0, Bytes::from_static(b"G"))
        .await
        .unwrap();
    assert_eq!(moved.read_at(0, 100).await.unwrap(), "Gee");
    fs.remove_file(&p("/gone")).await.unwrap();
    assert_eq!(hidden.read_at(0, 100).await.unwrap(), "still here");
    // A directory opened for writing is EISDIR.
    assert_errno(
        fs.open(&p("/dir"), OpenOptions::new().write(true))
            .await
            .map(drop),
        ErrorKind::IsADirectory,
    );
}

#[tokio::test]
async fn the_lower_is_never_modified() {
    let inner = layer_with(&[
        ("/etc/hosts", "hosts"),
        ("/etc/conf.d/a", "a"),
        ("/usr/lib/x", "x"),
        ("/usr/share/doc/readme", "readme"),
        ("/var/empty/", ""),
    ])
    .await;
    inner
        .symlink("/etc/hosts", &p("/hosts-link"))
        .await
        .unwrap();
    inner
        .set_xattr(
            &p("/etc/hosts"),
            "user.k",
            Bytes::from_static(b"v"),
            XattrMode::Upsert,
        )
        .await
        .unwrap();
    let before = snapshot(inner.as_ref()).await;
    let (lower, counters) = Probe::new(inner.clone());
    let fs = overlay(memory(), vec![lower as Arc<dyn FileSystem>]);

    fs.write_file(&p("/etc/hosts"), Bytes::from_static(b"mine"))
        .await
        .unwrap();
    fs.pwrite(&p("/usr/lib/x"), 1, Bytes::from_static(b"y"))
        .await
        .unwrap();
    fs.set_permissions(&p("/etc/conf.d/a"), 0o600)
        .await
        .unwrap();
    fs.set_owner(&p("/etc/conf.d"), Some(9), Some(9))
        .await
        .unwrap();
    fs.set_times(&p("/var/empty"), SetTime::Now, SetTime::Now)
        .await
        .unwrap();
    fs.set_xattr(
        &p("/hosts-link"),
        "user.k",
        Bytes::from_static(b"w"),
        XattrMode::Upsert,
    )
    .await
    .unwrap();
    fs.remove_xattr(&p("/etc/hosts"), "user.k").await.unwrap();
    fs.truncate(&p("/usr/share/doc/readme"), 2).await.unwrap();
    fs.rename(&p("/usr/share"), &p("/share")).await.unwrap();
    fs.hard_link(&p("/share/doc/readme"), &p("/readme"))
        .await
        .unwrap();
    fs.remove_dir_all(&p("/etc")).await.unwrap();
    fs.remove_file(&p("/hosts-link")).await.unwrap();
    fs.remove_dir(&p("/var/empty")).await.unwrap();
    fs.create_dir(&p("/var/empty"), 0o700).await.unwrap();
    fs.symlink("x", &p("/usr/lib/y")).await.unwrap();
    let handle = fs
        .open(&p("/usr/lib/x"), OpenOptions::new().append(true))
        .await
        .unwrap();
    handle.write_at(0, Bytes::from_static(b"z")).await.unwrap();
    handle.set_len(1).await.unwrap();

    assert_eq!(counters.mutations(), 0, "a mutating call reached the lower");
    assert_eq!(snapshot(inner.as_ref()).await, before, "the lower changed");
    assert_eq!(names(&fs, "/").await, ["readme", "share", "usr", "var"]);
}

#[tokio::test]
async fn stacked_overlays_honour_the_lower_whiteouts() {
    let base = layer_with(&[
        ("/bin/sh", "sh"),
        ("/bin/ls", "ls"),
        ("/etc/cfg/a", "a"),
        ("/etc/cfg/b", "b"),
    ])
    .await;
    // Layer 1: delete a file, replace a directory with an empty one, add a file.
    let layer1 = memory();
    let first = overlay(layer1.clone(), vec![base.clone()]);
    first.remove_file(&p("/bin/ls")).await.unwrap();
    first.remove_dir_all(&p("/etc/cfg")).await.unwrap();
    first.create_dir(&p("/etc/cfg"), 0o755).await.unwrap();
    first
        .write_file(&p("/etc/cfg/c"), Bytes::from_static(b"c"))
        .await
        .unwrap();
    first
        .write_file(&p("/bin/new"), Bytes::from_static(b"new"))
        .await
        .unwrap();

    // Layer 1's upper used as a lower above the base, as OCI layers stack.
    let top = memory();
    let second = overlay(top.clone(), vec![layer1.clone(), base.clone()]);
    assert_eq!(names(&second, "/bin").await, ["new", "sh"]);
    assert_errno(second.stat(&p("/bin/ls")).await, ErrorKind::NotFound);
    assert_eq!(names(&second, "/etc/cfg").await, ["c"]);
    assert_errno(second.stat(&p("/etc/cfg/a")).await, ErrorKind::NotFound);
    assert_eq!(snapshot_names(&second).await, snapshot_names(&first).await);

    // Changes in the new top layer stack on them.
    second.remove_file(&p("/bin/sh")).await.unwrap();
    second
        .write_file(&p("/bin/ls"), Bytes::from_static(b"ls again"))
        .await
        .unwrap();
    assert_eq!(names(&second, "/bin").await, ["ls", "new"]);
    assert_eq!(read(&second, "/bin/ls").await, "ls again");
    assert_eq!(names(top.as_ref(), "/bin").await, [".wh.sh", "ls"]);

    // A whole overlay as a lower works as well.
    let nested = overlay(memory(), vec![Arc::new(first) as Arc<dyn FileSystem>]);
    assert_eq!(names(&nested, "/bin").await, ["new", "sh"]);
    assert_eq!(names(&nested, "/etc/cfg").await, ["c"]);
    nested.remove_file(&p("/bin/new")).await.unwrap();
    assert_eq!(names(&nested, "/bin").await, ["sh"]);
}

async fn snapshot_names(fs: &dyn FileSystem) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![VfsPath::root()];
    while let Some(dir) = pending.pop() {
        for entry in fs.read_dir(&dir).await.unwrap() {
            let path = dir.join(&entry.name).unwrap();
            out.push(format!("{path} {:?}", entry.kind));
            if entry.kind == FileKind::Directory {
                pending.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn symlinks_resolve_across_layers() {
    // The link is in the upper, its target directory only in the lower.
    let lower = layer_with(&[("/real/dir/f", "found"), ("/abs-target", "abs")]).await;
    let upper = memory();
    let fs = overlay(upper.clone(), vec![lower.clone()]);
    fs.symlink("real/dir", &p("/link")).await.unwrap();
    fs.symlink("/abs-target", &p("/real/dir/abs"))
        .await
        .unwrap();
    assert_eq!(read(&fs, "/link/f").await, "found");
    assert_eq!(read(&fs, "/link/abs").await, "abs");
    assert_eq!(names(&fs, "/link").await, ["abs", "f"]);
    fs.write_file(&p("/link/g"), Bytes::from_static(b"via link"))
        .await
        .unwrap();
    assert_eq!(read(upper.as_ref(), "/real/dir/g").await, "via link");
    assert_eq!(fs.realpath(&p("/link/f")).await.unwrap(), p("/real/dir/f"));
    // Errors name the path the caller gave.
    let err = fs.read_file(&p("/link/missing")).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.path()),
        (ErrorKind::NotFound, Some("/link/missing"))
    );
}

#[tokio::test]
async fn lower_names_too_long_for_a_whiteout_cannot_be_deleted() {
    let long = "n".repeat(252);
    let lower = layer_with(&[(&format!("/{long}") as &str, "x")]).await;
    let fs = overlay(memory(), vec![lower]);
    assert_errno(
        fs.remove_file(&p(&format!("/{long}"))).await,
        ErrorKind::NameTooLong,
    );
    assert_eq!(read(&fs, &format!("/{long}")).await, "x");
}

#[tokio::test]
async fn capabilities_and_statfs_come_from_the_upper() {
    let fs = overlay(memory(), vec![memory() as Arc<dyn FileSystem>]);
    assert_eq!(fs.kind(), "overlay");
    assert_eq!(fs.capabilities(), Capabilities::posix());
    let read_only = Arc::new(vfs_core::ReadOnlyFs::new(memory()));
    assert_errno(
        OverlayFs::new(read_only.clone(), vec![]).map(drop),
        ErrorKind::InvalidInput,
    );
    // A read-only lower is fine: it is only read.
    let fs = OverlayFs::new(memory(), vec![read_only as Arc<dyn FileSystem>]).unwrap();
    fs.write_file(&p("/f"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(fs.statfs(&p("/f")).await.unwrap().name_max, 255);
    assert_errno(fs.statfs(&p("/missing")).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn factory_builds_from_json_and_refuses_bad_configs() {
    let registry = DriverRegistry::new();
    registry
        .register_fn("memory", |_: serde_json::Value| {
            Ok(Arc::new(MemoryFs::new()) as Arc<dyn FileSystem>)
        })
        .unwrap();
    registry
        .register("overlay", Arc::new(OverlayFactory))
        .unwrap();

    let config =
        serde_json::json!({"upper": {"id": "memory", "config": {}}, "lowers": [{"id": "memory"}]});
    let fs = registry
        .build(&DriverDescriptor::new("overlay", config))
        .await
        .expect("build");
    assert_eq!(fs.kind(), "overlay");
    fs.write_file(&p("/f"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(read(fs.as_ref(), "/f").await, "x");

    // An overlay as a layer of an overlay, through the same registry.
    let nested = serde_json::json!({
        "upper": {"id": "memory"},
        "lowers": [{"id": "overlay", "config": {"upper": {"id": "memory"}, "lowers": []}}]
    });
    assert!(registry
        .build(&DriverDescriptor::new("overlay", nested))
        .await
        .is_ok());

    for bad in [
        serde_json::json!({"upper": {"id": "memory"}, "lowers": [], "extra": 1}),
        serde_json::json!({"lowers": [{"id": "memory"}]}),
        serde_json::json!({"upper": {"id": "memory"}}),
        serde_json::json!({"upper": "memory", "lowers": []}),
        serde_json::json!({"upper": {"id": "memory", "conf": {}}, "lowers": []}),
        serde_json::json!({"upper": {"id": "nope"}, "lowers": []}),
        serde_json::json!({"upper": {"id": "memory"}, "lowers": [{"id": "nope"}]}),
        serde_json::json!([]),
        serde_json::Value::Null,
    ] {
        let result = registry
            .build(&DriverDescriptor::new("overlay", bad.clone()))
            .await;
        assert_errno(
            result.map(|fs| fs.kind().to_owned()),
            ErrorKind::InvalidInput,
        );
    }
}

#[tokio::test]
async fn lookups_see_every_change_despite_the_cache() {
    let lower = layer_with(&[("/a/b/f", "lower"), ("/a/b/g", "g"), ("/a/c/", "")]).await;
    let fs = overlay(memory(), vec![lower]);
    // Cached while only the lower holds them...
    assert_eq!(fs.stat(&p("/a/b/f")).await.unwrap().size, 5);
    assert!(fs.stat(&p("/a/b")).await.unwrap().is_dir());
    assert_errno(fs.stat(&p("/a/b/new")).await, ErrorKind::NotFound);
    // ...then changed through a handle, which takes no lock after the copy-up.
    let handle = fs
        .open(&p("/a/b/f"), OpenOptions::new().write(true))
        .await
        .unwrap();
    assert_eq!(fs.stat(&p("/a/b/f")).await.unwrap().size, 5);
    handle
        .write_at(5, Bytes::from_static(b" and more"))
        .await
        .unwrap();
    assert_eq!(fs.stat(&p("/a/b/f")).await.unwrap().size, 14);
    handle.set_len(2).await.unwrap();
    assert_eq!(read(&fs, "/a/b/f").await, "lo");
    // Namespace changes.
    fs.write_file(&p("/a/b/new"), Bytes::from_static(b"n"))
        .await
        .unwrap();
    assert_eq!(read(&fs, "/a/b/new").await, "n");
    assert_eq!(read(&fs, "/a/b/g").await, "g");
    fs.rename(&p("/a/b"), &p("/a/c/b")).await.unwrap();
    assert_errno(fs.stat(&p("/a/b/g")).await, ErrorKind::NotFound);
    assert_errno(fs.read_file(&p("/a/b/f")).await, ErrorKind::NotFound);
    assert_eq!(read(&fs, "/a/c/b/g").await, "g");
    fs.symlink("c/b", &p("/a/b")).await.unwrap();
    assert_eq!(read(&fs, "/a/b/g").await, "g");
    fs.remove_file(&p("/a/c/b/g")).await.unwrap();
    assert_errno(fs.stat(&p("/a/b/g")).await, ErrorKind::NotFound);
    let mode = fs.stat(&p("/a/c")).await.unwrap().mode;
    fs.set_permissions(&p("/a/c"), 0o711).await.unwrap();
    assert_ne!(mode, 0o711);
    assert_eq!(fs.stat(&p("/a/c")).await.unwrap().mode, 0o711);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_one_lower_file_share_one_copy_up() {
    let lower = memory();
    lower
        .write_file(&p("/shared"), Bytes::from(vec![b'.'; 64]))
        .await
        .unwrap();
    let fs = Arc::new(overlay(
        memory(),
        vec![lower.clone() as Arc<dyn FileSystem>],
    ));
    let mut tasks = Vec::new();
    for task in 0..8u8 {
        let fs = fs.clone();
        tasks.push(tokio::spawn(async move {
            fs.pwrite(
                &p("/shared"),
                u64::from(task) * 8,
                Bytes::from(vec![b'a' + task; 8]),
            )
            .await
            .expect("pwrite");
        }));
    }
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let fs = fs.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let data = fs
                        .read_file(&p("/shared"))
                        .await
                        .expect("read during copy-up");
                    assert_eq!(data.len(), 64, "a reader saw a partial copy");
                }
            })
        })
        .collect();
    for task in tasks.into_iter().chain(readers) {
        task.await.expect("task");
    }
    let expected: Vec<u8> = (0..8u8).flat_map(|task| vec![b'a' + task; 8]).collect();
    assert_eq!(
        fs.read_file(&p("/shared")).await.unwrap(),
        expected,
        "no write was lost"
    );
    assert_eq!(read(lower.as_ref(), "/shared").await, ".".repeat(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_and_creates_over_lower_names_stay_consistent() {
    let entries: Vec<(String, String)> = (0..32)
        .map(|i| (format!("/d/f{i}"), format!("lower {i}")))
        .collect();
    let refs: Vec<(&str, &str)> = entries
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let lower = layer_with(&refs).await;
    let fs = Arc::new(overlay(memory(), vec![lower as Arc<dyn FileSystem>]));
    let mut tasks = Vec::new();
    for task in 0..4 {
        let fs = fs.clone();
        tasks.push(tokio::spawn(async move {
            for i in (task..32).step_by(4) {
                let path = p(&format!("/d/f{i}"));
                fs.remove_file(&path).await.expect("unlink");
                if i % 2 == 0 {
                    fs.write_file(&path, Bytes::from(format!("upper {i}")))
                        .await
                        .expect("recreate");
                }
                let _ = fs.read_dir(&p("/d")).await.expect("listing");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let expected: Vec<String> = {
        let mut names: Vec<String> = (0..32).step_by(2).map(|i| format!("f{i}")).collect();
        names.sort();
        names
    };
    assert_eq!(names(fs.as_ref(), "/d").await, expected);
    for i in (0..32).step_by(2) {
        assert_eq!(
            read(fs.as_ref(), &format!("/d/f{i}")).await,
            format!("upper {i}")
        );
    }
}

#[tokio::test]
async fn an_upper_without_xattrs_or_ownership_still_copies_up() {
    let lower = layer_with(&[("/f", "content")]).await;
    lower.set_owner(&p("/f"), Some(42), Some(42)).await.unwrap();
    lower
        .set_xattr(
            &p("/f"),
            "user.k",
            Bytes::from_static(b"v"),
            XattrMode::Upsert,
        )
        .await
        .unwrap();
    let inner = memory();
    let caps = Capabilities {
        xattrs: false,
        ownership: false,
        hard_links: false,
        ..Capabilities::posix()
    };
    // Some capabilities switched off, as an object store would declare.
    let upper = Arc::new(Forward::new(inner.clone(), "limited").with_capabilities(caps));
    let fs = OverlayFs::new(upper, vec![lower as Arc<dyn FileSystem>]).unwrap();
    assert_eq!(fs.capabilities(), caps);
    assert_errno(
        fs.get_xattr(&p("/f"), "user.k").await,
        ErrorKind::Unsupported,
    );
    assert_errno(
        fs.set_owner(&p("/f"), Some(1), None).await,
        ErrorKind::Unsupported,
    );
    assert_errno(
        fs.hard_link(&p("/f"), &p("/g")).await,
        ErrorKind::NotPermitted,
    );
    assert!(
        !inner.exists(&p("/f")).await.unwrap(),
        "refused calls copy nothing up"
    );
    fs.set_permissions(&p("/f"), 0o600).await.unwrap();
    let copied = inner.stat(&p("/f")).await.unwrap();
    assert_eq!(
        (copied.mode, copied.uid),
        (0o600, 0),
        "ownership stays the upper's"
    );
    assert!(inner.list_xattrs(&p("/f")).await.unwrap().is_empty());
    assert_eq!(read(&fs, "/f").await, "content");
}

#[tokio::test]
async fn shutdown_releases_only_the_layers_the_overlay_built() {
    let counters = Arc::new(Counters::default());
    let registry = DriverRegistry::new();
    let shared = counters.clone();
    registry
        .register_fn("probe", move |_: serde_json::Value| {
            Ok(Arc::new(Probe {
                inner: Arc::new(MemoryFs::new()),
                counters: shared.clone(),
                _dir: None,
            }) as Arc<dyn FileSystem>)
        })
        .unwrap();
    registry
        .register("overlay", Arc::new(OverlayFactory))
        .unwrap();
    let config =
        serde_json::json!({"upper": {"id": "probe"}, "lowers": [{"id": "probe"}, {"id": "probe"}]});
    let built = registry
        .build(&DriverDescriptor::new("overlay", config))
        .await
        .unwrap();
    built.shutdown().await.unwrap();
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 3);

    // Layers given to `OverlayFs::new` stay the caller's (a shared base image).
    let (lower, lower_counters) = Probe::new(memory());
    let (upper, upper_counters) = Probe::new(memory());
    let fs = OverlayFs::new(upper, vec![lower.clone() as Arc<dyn FileSystem>]).unwrap();
    fs.shutdown().await.unwrap();
    assert_eq!(lower_counters.shutdowns.load(Ordering::SeqCst), 0);
    assert_eq!(upper_counters.shutdowns.load(Ordering::SeqCst), 0);
}

/// With `lowersMayChange` (the registry's config), changes made to a host lower beside the
/// overlay show through at once: new content and size, a removed name, a new one. Without
/// it the overlay keeps the metadata it first looked up, as documented (overlayfs's rule).
#[tokio::test(flavor = "multi_thread")]
async fn lowers_may_change_shows_what_changed_beside_the_overlay() {
    for may_change in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "old").unwrap();
        std::fs::write(dir.path().join("gone"), "x").unwrap();
        let config = serde_json::json!({
            "upper": {"id": "memory"},
            "lowers": [{"id": "host_dir", "config": {"hostPath": dir.path(), "readOnly": true}}],
            "lowersMayChange": may_change,
        });
        let fs = vfs_layer::registry()
            .build(&DriverDescriptor::new("overlay", config))
            .await
            .unwrap();
        assert_eq!(fs.stat(&p("/f")).await.unwrap().size, 3);
        assert!(fs.exists(&p("/gone")).await.unwrap());
        assert!(!fs.exists(&p("/new")).await.unwrap());

        std::fs::write(dir.path().join("f"), "newer").unwrap();
        std::fs::remove_file(dir.path().join("gone")).unwrap();
        std::fs::write(dir.path().join("new"), "n").unwrap();
        if may_change {
            assert_eq!(fs.stat(&p("/f")).await.unwrap().size, 5);
            assert_eq!(fs.read_file(&p("/f")).await.unwrap(), "newer");
            assert!(!fs.exists(&p("/gone")).await.unwrap());
            assert_eq!(fs.read_file(&p("/new")).await.unwrap(), "n");
        } else {
            assert_eq!(
                fs.stat(&p("/f")).await.unwrap().size,
                3,
                "the cached lookup stands"
            );
        }
        fs.shutdown().await.unwrap();
    }
}
