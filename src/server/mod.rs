//! JSON-RPC 2.0 over stdio or a Unix socket, for hosts in other languages; PROTOCOL.md
//! at the repository root is the wire reference.
//!
//! Each message is a frame — a 4-byte big-endian length and that many bytes of UTF-8
//! JSON — followed by the binary frames its JSON announces with `"attachments": n`, so
//! file content travels without base64. Requests of one connection run concurrently and
//! are answered as they finish; every [`VfsEvent`](crate::actions::VfsEvent) is pushed to
//! every connection as an `event` notification.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vfs_layer::actions::Vfs;
//!
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! # let repository = vfs_layer::snapshot::Repository::open_local(std::path::Path::new(".vfs-store")).await.unwrap();
//! let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repository));
//! let socket = std::path::Path::new("/run/vfs.sock");
//! vfs_layer::server::serve_unix(vfs, socket, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod connection;
mod frame;
mod stdin;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::task::JoinSet;

pub use connection::serve_stream;
pub use frame::Limits;

use crate::actions::Vfs;

/// How long running requests get to finish when a socket server shuts down.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one client on stdin/stdout until stdin closes, then waits for the requests
/// still running and returns. Nothing else may write to stdout meanwhile.
pub async fn serve_stdio(vfs: Arc<Vfs>) -> std::io::Result<()> {
    serve_stdio_until(vfs, std::future::pending()).await
}

/// As [`serve_stdio`], also stopping when `shutdown` completes (a signal): no further
/// message is read, and the requests already running finish and are answered first,
/// where dropping a [`serve_stdio`] future would cancel them midway.
pub async fn serve_stdio_until(
    vfs: Arc<Vfs>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let events = vfs.subscribe();
    connection::serve_stream_until(
        vfs,
        events,
        stdin::Stdin::new()?,
        tokio::io::stdout(),
        Limits::default(),
        shutdown,
    )
    .await;
    Ok(())
}

/// Serves any number of clients on a Unix socket at `path` until `shutdown` completes.
///
/// The socket is created with mode `0600` (the server can read and write the host
/// paths its mounts and exports name). A stale socket file nobody listens on is
/// replaced; a live one is `AddrInUse`. On shutdown the socket file is removed, no new
/// message is read, the requests already running finish and are answered (for up to
/// 10 s), and the connections are closed.
pub async fn serve_unix(
    vfs: Arc<Vfs>,
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_unix_with(vfs, path, shutdown, Limits::default()).await
}

/// As [`serve_unix`] with explicit frame limits.
pub async fn serve_unix_with(
    vfs: Arc<Vfs>,
    path: &Path,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> std::io::Result<()> {
    let listener = bind(path).await?;
    let mut connections = JoinSet::new();
    let (stopping, stop) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (reader, writer) = stream.into_split();
                    let mut stop = stop.clone();
                    let stop = async move {
                        // An error means the server is gone, which is a stop as well.
                        let _ = stop.wait_for(|stopping| *stopping).await;
                    };
                    connections.spawn(connection::serve_stream_until(
                        vfs.clone(),
                        vfs.subscribe(),
                        reader,
                        writer,
                        limits,
                        stop,
                    ));
                }
                // Out of descriptors and the like: let connections finish and retry.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(path);
    // Requests already running finish and are answered; a client that does not read its
    // answers is cut off after the grace period.
    let _ = stopping.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drained).await;
    connections.shutdown().await;
    Ok(())
}

async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        match tokio::net::UnixStream::connect(path).await {
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("a server already listens on {}", path.display()),
                ))
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}
