//! The main job on embedded defaults: boot a memory root, attach storage after boot (a
//! host directory, a read-only base image and an overlay over it, the first built from a
//! JSON driver descriptor as `mountFs` receives one), work across mounts, list the mounts,
//! print the merged tree, then detach.
//!
//! `cargo run --release --example quickstart`

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use vfs_layer::core::{
    DriverDescriptor, FileKind, FileSystem, MountOptions, MountTable, UnmountOptions, VfsError,
    VfsPath,
};
use vfs_layer::drivers::builtin_registry;
use vfs_layer::drivers::memory::MemoryFs;
use vfs_layer::drivers::overlay::OverlayFs;

fn path(path: &str) -> Result<VfsPath, VfsError> {
    VfsPath::new(path)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), VfsError> {
    // Boot: the guest's root is a memory filesystem.
    let root = MountTable::new();
    let mut events = root.subscribe();
    root.mount(
        &VfsPath::root(),
        Arc::new(MemoryFs::new()),
        MountOptions::default(),
    )
    .await?;
    root.create_dir_all(&path("/etc")?, 0o755).await?;
    root.write_file(&path("/etc/hostname")?, Bytes::from_static(b"guest\n"))
        .await?;

    // After boot: a host directory as the workspace, built from a descriptor as a host
    // process would send it...
    let registry = builtin_registry();
    let host_dir = tempfile::tempdir().map_err(|err| VfsError::from_io("mkdtemp", err))?;
    let workspace = registry
        .build(&DriverDescriptor::new(
            "host_dir",
            json!({ "hostPath": host_dir.path(), "readOnly": false }),
        ))
        .await?;
    root.mount(&path("/workspace")?, workspace, MountOptions::default())
        .await?;

    // ...a read-only base image, and a writable overlay over the same image.
    let base = Arc::new(MemoryFs::new());
    base.create_dir_all(&path("/bin")?, 0o755).await?;
    base.write_file(
        &path("/bin/tool")?,
        Bytes::from_static(b"#!/bin/sh\necho hi\n"),
    )
    .await?;
    let app = OverlayFs::new(Arc::new(MemoryFs::new()), vec![base.clone()])?;
    root.mount(
        &path("/opt/base")?,
        base.clone(),
        MountOptions { read_only: true },
    )
    .await?;
    root.mount(&path("/app")?, Arc::new(app), MountOptions::default())
        .await?;

    root.create_dir_all(&path("/workspace/src")?, 0o755).await?;
    root.write_file(
        &path("/workspace/src/main.rs")?,
        Bytes::from_static(b"fn main() {}\n"),
    )
    .await?;
    // The overlay copies the tool up on write; the base image keeps its bytes.
    root.write_file(
        &path("/app/bin/tool")?,
        Bytes::from_static(b"#!/bin/sh\necho patched\n"),
    )
    .await?;
    root.remove_file(&path("/app/bin/tool")?).await?;
    root.write_file(&path("/app/bin/new")?, Bytes::from_static(b"added\n"))
        .await?;

    let refused = root
        .write_file(&path("/opt/base/bin/tool")?, Bytes::new())
        .await
        .expect_err("the base image is mounted read-only");
    println!("writing into the read-only base: {refused}");
    let crossed = root
        .rename(&path("/etc/hostname")?, &path("/workspace/hostname")?)
        .await
        .expect_err("rename cannot cross mounts");
    println!("renaming across mounts: {crossed}\n");

    println!("mounts:");
    for mount in root.list() {
        let access = if mount.read_only { "ro" } else { "rw" };
        println!(
            "  #{:<3} {:<12} {:<9} {access}",
            mount.mount_id, mount.path, mount.kind
        );
    }

    println!("\ntree:");
    print_tree(&root, &VfsPath::root(), 1).await?;

    let on_host = std::fs::read_to_string(host_dir.path().join("src/main.rs"))
        .map_err(|err| VfsError::from_io("read", err))?;
    println!("\n/workspace/src/main.rs as the host sees it: {on_host:?}");
    let tool = base.read_file(&path("/bin/tool")?).await?;
    println!(
        "the base image's /bin/tool after the overlay patched and deleted it: {:?}",
        String::from_utf8_lossy(&tool)
    );

    for mount in ["/app", "/workspace"] {
        root.unmount(&path(mount)?, UnmountOptions::default())
            .await?;
    }
    println!("\nevents:");
    while let Ok(event) = events.try_recv() {
        println!("  {}", serde_json::to_string(&event).unwrap_or_default());
    }
    Ok(())
}

/// Prints the tree beneath `dir` with sizes, depth first, in name order.
async fn print_tree(fs: &dyn FileSystem, dir: &VfsPath, depth: usize) -> Result<(), VfsError> {
    let mut entries = fs.read_dir(dir).await?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries {
        let child = dir.join(&entry.name)?;
        let indent = "  ".repeat(depth);
        match entry.kind {
            FileKind::Directory => {
                println!("{indent}{}/", entry.name);
                Box::pin(print_tree(fs, &child, depth + 1)).await?;
            }
            FileKind::Symlink => {
                println!("{indent}{} -> {}", entry.name, fs.read_link(&child).await?)
            }
            _ => println!(
                "{indent}{} ({} bytes)",
                entry.name,
                fs.stat(&child).await?.size
            ),
        }
    }
    Ok(())
}
