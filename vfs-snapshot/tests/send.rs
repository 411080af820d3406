//! Every long-running repository future is `Send`, so callers can `tokio::spawn` it
//! (a server answering each request from its own task). The check is the compile.

use std::sync::Arc;

use vfs_core::{FileSystem, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_snapshot::{
    AgentOsExportOptions, GcOptions, ImportOptions, Repository, RestoreOptions, SnapshotId,
    SnapshotOptions,
};

fn spawnable<F: std::future::Future + Send + 'static>(future: F) -> F {
    future
}

#[allow(dead_code)]
async fn every_future_can_be_spawned(repo: Arc<Repository>, id: SnapshotId, other: SnapshotId) {
    let fs: Arc<dyn FileSystem> = Arc::new(MemoryFs::new());
    let root = VfsPath::root();
    macro_rules! spawn {
        ($($captured:ident),* => $call:expr) => {{
            $(let $captured = $captured.clone();)*
            drop(tokio::spawn(spawnable(async move { let _ = $call; })));
        }};
    }
    spawn!(repo, fs, root => repo.snapshot(fs.as_ref(), &root, &SnapshotOptions::default()).await);
    spawn!(repo, fs, root => repo.restore(&id, fs.as_ref(), &root, &RestoreOptions::default()).await);
    spawn!(repo => repo.diff(&id, &other).await);
    spawn!(repo, fs, root => repo.diff_live(&id, fs.as_ref(), &root, &SnapshotOptions::default()).await);
    spawn!(repo => repo.export_tar(&id, Vec::new()).await);
    spawn!(repo => repo.export_tar_zst(&id, Vec::new(), 3).await);
    spawn!(repo => repo.import_tar(std::io::empty(), &ImportOptions::default()).await);
    spawn!(repo => repo.import_tar_zst(std::io::empty(), &ImportOptions::default()).await);
    spawn!(repo => repo.export_agentos_json(&id, &AgentOsExportOptions::default()).await);
    spawn!(repo => repo.import_agentos_json(b"{}", &ImportOptions::default()).await);
    spawn!(repo => repo.verify(&id).await);
    spawn!(repo => repo.gc(&[], &GcOptions::default()).await);
}

#[test]
fn the_check_is_the_compile() {
    // Naming the function keeps it compiled.
    let _ = every_future_can_be_spawned;
}
