//! `vfs serve`: the actions over JSON-RPC on stdio or a Unix socket, until the input
//! ends or Ctrl-C / SIGTERM; then every mount is detached so drivers shut down cleanly.
//! With `--fuse-mount DIR` the same mount table is also served through FUSE, so what a
//! client mounts or unmounts shows to every process at once.

use std::path::Path;
use std::sync::Arc;

use vfs_layer::actions::{MountsConfig, Vfs};
use vfs_layer::core::{DriverDescriptor, MountOptions, VfsError, VfsPath};
use vfs_layer::fuse::FuseOptions;
use vfs_layer::snapshot::Repository;

use super::mount;
use super::output::Failure;
use super::store::Context;

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed by the call, not when the
/// future is first polled: a signal sent once a command says it is ready must stop it
/// cleanly, never kill it with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                only.recv().await;
            }
            // Without handlers both signals keep their default action: they end the
            // process, so there is nothing to wait for here.
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}

/// The runtime's starting tree: the config's mounts, or a memory root.
pub async fn boot(vfs: &Vfs, mounts: Option<&Path>) -> Result<(), Failure> {
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
pub async fn unmount_all(vfs: &Vfs) {
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
    fuse_mount: Option<&Path>,
) -> Result<(), Failure> {
    // A wrong mountpoint is refused before the store is opened and the drivers start.
    let fuse_mount = fuse_mount.map(mount::usable_mountpoint).transpose()?;
    let repo = Repository::open_url(&cx.store).await?;
    let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repo));
    boot(&vfs, mounts).await?;
    let fuse_mount = fuse_mount.as_deref();
    let fuse = match fuse_mount.map(|dir| mount::attach(&vfs, dir, FuseOptions::default())) {
        None => None,
        Some(Ok(fuse)) => Some(fuse),
        Some(Err(failure)) => {
            unmount_all(&vfs).await;
            return Err(failure);
        }
    };
    let served = match socket {
        Some(path) => vfs_layer::server::serve_unix(vfs.clone(), path, shutdown_signal()).await,
        // On a signal, running requests finish and are answered before the mounts go.
        None => vfs_layer::server::serve_stdio_until(vfs.clone(), shutdown_signal()).await,
    };
    match fuse {
        Some(fuse) => mount::detach(&vfs, fuse).await?,
        None => unmount_all(&vfs).await,
    }
    served.map_err(|err| {
        let at = socket.map_or_else(|| "stdio".to_owned(), |p| p.display().to_string());
        VfsError::from_io("serve", err).with_path(at).into()
    })
}
