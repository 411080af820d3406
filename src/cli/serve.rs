//! `vfs serve`: the actions over JSON-RPC on stdio or a Unix socket, until the input
//! ends or Ctrl-C / SIGTERM; then every mount is detached so drivers shut down cleanly.

use std::path::Path;
use std::sync::Arc;

use vfs_layer::actions::{MountsConfig, Vfs};
use vfs_layer::core::{DriverDescriptor, MountOptions, VfsError, VfsPath};
use vfs_layer::snapshot::Repository;

use super::output::Failure;
use super::store::Context;

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        // Without a SIGTERM handler, Ctrl-C still stops the server.
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The runtime's starting tree: the config's mounts, or a memory root.
async fn boot(vfs: &Vfs, mounts: Option<&Path>) -> Result<(), Failure> {
    match mounts {
        Some(path) => vfs.boot(&MountsConfig::load(path)?).await?,
        None => {
            let memory = DriverDescriptor::new("memory", serde_json::json!({}));
            vfs.mount_fs(&VfsPath::root(), &memory, MountOptions::default())
                .await?;
        }
    }
    Ok(())
}

/// Detaches every mount, deepest first, so each driver gets its shutdown.
async fn unmount_all(vfs: &Vfs) {
    let mut mounts = vfs.list_mounts();
    mounts.sort_by_key(|mount| std::cmp::Reverse(mount.path.depth()));
    for mount in mounts {
        // Lazy: a request cut off by the shutdown may still hold a handle. A failure
        // here is reported as a driverError event; the process is ending either way.
        let _ = vfs.unmount_fs(&mount.path, true).await;
    }
}

/// Serves until the peer goes away or a signal arrives.
pub async fn serve(
    cx: &Context,
    socket: Option<&Path>,
    mounts: Option<&Path>,
) -> Result<(), Failure> {
    let repo = Repository::open_url(&cx.store).await?;
    let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repo));
    boot(&vfs, mounts).await?;
    let served = match socket {
        Some(path) => vfs_layer::server::serve_unix(vfs.clone(), path, shutdown_signal()).await,
        // On a signal, running requests finish and are answered before the mounts go.
        None => vfs_layer::server::serve_stdio_until(vfs.clone(), shutdown_signal()).await,
    };
    unmount_all(&vfs).await;
    served.map_err(|err| {
        let at = socket.map_or_else(|| "stdio".to_owned(), |p| p.display().to_string());
        VfsError::from_io("serve", err).with_path(at).into()
    })
}
