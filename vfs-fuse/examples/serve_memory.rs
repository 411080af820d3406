//! Serves an empty memory filesystem at a path until SIGTERM or Ctrl-C.
//!
//! ```text
//! cargo run -p vfs-fuse --example serve_memory -- /mnt/mem [--allow-other] [--ttl-ms N] [--table]
//!     [--reader-threads N]
//! ```
//!
//! With `--table` it serves a mount table instead: one memory filesystem at `/` and
//! another at `/sub`, so `/mnt/mem/sub` is a second mount inside the FUSE mount.
//!
//! Prints `mounted <path>` on stdout once the mount is live, so scripts (pjdfstest,
//! fio, benchmarks) can wait for that line instead of sleeping.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use vfs_core::{MountOptions, MountTable, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_fuse::FuseOptions;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut mountpoint: Option<PathBuf> = None;
    let mut table = false;
    let mut options = FuseOptions {
        fs_name: "memory".to_owned(),
        ..FuseOptions::default()
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--allow-other" => options.allow_other = true,
            "--table" => table = true,
            "--reader-threads" => {
                options.reader_threads = args
                    .next()
                    .ok_or("--reader-threads needs a value")?
                    .parse()?;
            }
            "--ttl-ms" => {
                let ms: u64 = args.next().ok_or("--ttl-ms needs a value")?.parse()?;
                options.attr_ttl = Duration::from_millis(ms);
                options.entry_ttl = Duration::from_millis(ms);
            }
            _ if mountpoint.is_none() => mountpoint = Some(PathBuf::from(arg)),
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let mountpoint =
        mountpoint.ok_or("usage: serve_memory <mountpoint> [--allow-other] [--ttl-ms N]")?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mount = if table {
        let table = Arc::new(MountTable::new());
        let defaults = MountOptions::default();
        table
            .mount(&VfsPath::root(), Arc::new(MemoryFs::new()), defaults)
            .await?;
        table
            .mount(&VfsPath::new("/sub")?, Arc::new(MemoryFs::new()), defaults)
            .await?;
        vfs_fuse::mount_table(table, &mountpoint, options)?
    } else {
        vfs_fuse::mount(Arc::new(MemoryFs::new()), &mountpoint, options)?
    };
    println!("mounted {}", mountpoint.display());
    std::io::stdout().flush()?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    mount.unmount()?;
    Ok(())
}
