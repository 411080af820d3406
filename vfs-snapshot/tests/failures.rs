//! An error in the middle of a snapshot leaves the store valid and no snapshot visible;
//! a retry reuses what was already stored.

mod common;

use common::*;
use vfs_core::{
    async_trait, Capabilities, DirEntry, ErrorKind, FileHandle, FileSystem, Metadata, OpenOptions,
    Result, SetTime, StatFs, VfsError, VfsPath,
};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{Repository, SnapshotOptions};

/// A memory filesystem whose `open` of one path fails with `EIO`.
struct Flaky {
    inner: MemoryFs,
    fail: Option<String>,
}

#[async_trait]
impl FileSystem for Flaky {
    fn kind(&self) -> &str {
        "flaky"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn open(&self, path: &VfsPath, options: OpenOptions) -> Result<Box<dyn FileHandle>> {
        if self.fail.as_deref() == Some(path.as_str()) {
            return Err(VfsError::new(ErrorKind::Io, "open").with_path(path.as_str()));
        }
        self.inner.open(path, options).await
    }
    async fn stat(&self, path: &VfsPath) -> Result<Metadata> {
        self.inner.stat(path).await
    }
    async fn lstat(&self, path: &VfsPath) -> Result<Metadata> {
        self.inner.lstat(path).await
    }
    async fn read_dir(&self, path: &VfsPath) -> Result<Vec<DirEntry>> {
        self.inner.read_dir(path).await
    }
    async fn create_dir(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.inner.create_dir(path, mode).await
    }
    async fn remove_file(&self, path: &VfsPath) -> Result<()> {
        self.inner.remove_file(path).await
    }
    async fn remove_dir(&self, path: &VfsPath) -> Result<()> {
        self.inner.remove_dir(path).await
    }
    async fn rename(&self, from: &VfsPath, to: &VfsPath) -> Result<()> {
        self.inner.rename(from, to).await
    }
    async fn symlink(&self, target: &str, link: &VfsPath) -> Result<()> {
        self.inner.symlink(target, link).await
    }
    async fn read_link(&self, path: &VfsPath) -> Result<String> {
        self.inner.read_link(path).await
    }
    async fn hard_link(&self, existing: &VfsPath, new: &VfsPath) -> Result<()> {
        self.inner.hard_link(existing, new).await
    }
    async fn set_permissions(&self, path: &VfsPath, mode: u32) -> Result<()> {
        self.inner.set_permissions(path, mode).await
    }
    async fn set_owner(&self, path: &VfsPath, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.inner.set_owner(path, uid, gid).await
    }
    async fn set_times(&self, path: &VfsPath, atime: SetTime, mtime: SetTime) -> Result<()> {
        self.inner.set_times(path, atime, mtime).await
    }
    async fn statfs(&self, path: &VfsPath) -> Result<StatFs> {
        self.inner.statfs(path).await
    }
}

#[tokio::test]
async fn an_error_mid_snapshot_leaves_no_snapshot_and_a_retry_reuses_the_stored_packs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let mut fs = Flaky {
        inner: MemoryFs::new(),
        fail: Some("/zz".to_owned()),
    };
    // 24 MiB of incompressible data fills at least one 16 MiB pack before the end.
    write(&fs.inner, "/a1", noise(11, 12 << 20)).await;
    write(&fs.inner, "/a2", noise(12, 12 << 20)).await;
    write(&fs.inner, "/zz", "the file that fails").await;

    let err = repo
        .snapshot(&fs, &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.path(), Some("/zz"));
    assert!(repo.list_snapshots().await.unwrap().is_empty());
    let files = store_files(dir.path());
    assert!(
        files.iter().all(|f| !f.starts_with("snapshots/")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("packs/")),
        "a full pack was published: {files:?}"
    );

    // A new process (fresh handle) retries once the fault is gone.
    fs.fail = None;
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let (id, stats) = repo
        .snapshot(&fs, &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();
    assert!(stats.chunks_reused > 0, "{stats:?}");
    assert!(repo.verify(&id).await.unwrap().is_ok());
    assert_eq!(repo.list_snapshots().await.unwrap().len(), 1);
    let target = MemoryFs::new();
    repo.restore(&id, &target, &p("/r"), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        describe(&fs.inner, "/").await.len(),
        describe(&target, "/r").await.len()
    );
    assert_eq!(
        target.read_file(&p("/r/a2")).await.unwrap(),
        noise(12, 12 << 20)
    );
}
