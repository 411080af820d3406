//! The main job on embedded defaults: boot a memory root, attach storage after boot, work
//! across mounts, list the mounts, print the merged tree, then detach.
//!
//! `cargo run --release --example quickstart`

use std::sync::Arc;

use bytes::Bytes;
use vfs_layer::core::{
    FileKind, FileSystem, MountOptions, MountTable, UnmountOptions, VfsError, VfsPath,
};
use vfs_layer::drivers::memory::MemoryFs;

#[tokio::main(flavor = "current_thread")]
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
    root.create_dir_all(&VfsPath::new("/etc")?, 0o755).await?;
    root.write_file(
        &VfsPath::new("/etc/hostname")?,
        Bytes::from_static(b"guest\n"),
    )
    .await?;

    // After boot: attach a workspace and a read-only base image.
    let base = Arc::new(MemoryFs::new());
    base.create_dir_all(&VfsPath::new("/bin")?, 0o755).await?;
    base.write_file(
        &VfsPath::new("/bin/tool")?,
        Bytes::from_static(b"#!/bin/sh\necho hi\n"),
    )
    .await?;
    root.mount(
        &VfsPath::new("/workspace")?,
        Arc::new(MemoryFs::new()),
        MountOptions::default(),
    )
    .await?;
    root.mount(
        &VfsPath::new("/opt/base")?,
        base,
        MountOptions { read_only: true },
    )
    .await?;

    root.create_dir_all(&VfsPath::new("/workspace/src")?, 0o755)
        .await?;
    root.write_file(
        &VfsPath::new("/workspace/src/main.rs")?,
        Bytes::from_static(b"fn main() {}\n"),
    )
    .await?;
    let refused = root
        .write_file(&VfsPath::new("/opt/base/bin/tool")?, Bytes::new())
        .await
        .expect_err("the base image is mounted read-only");
    println!("writing into the read-only base: {refused}");
    let crossed = root
        .rename(
            &VfsPath::new("/etc/hostname")?,
            &VfsPath::new("/workspace/hostname")?,
        )
        .await
        .expect_err("rename cannot cross mounts");
    println!("renaming across mounts: {crossed}\n");

    println!("mounts:");
    for mount in root.list() {
        let access = if mount.read_only { "ro" } else { "rw" };
        println!(
            "  #{:<3} {:<12} {:<8} {access}",
            mount.mount_id, mount.path, mount.kind
        );
    }

    println!("\ntree:");
    print_tree(&root, &VfsPath::root(), 1).await?;

    root.unmount(&VfsPath::new("/workspace")?, UnmountOptions::default())
        .await?;
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
        let path = dir.join(&entry.name)?;
        let indent = "  ".repeat(depth);
        match entry.kind {
            FileKind::Directory => {
                println!("{indent}{}/", entry.name);
                Box::pin(print_tree(fs, &path, depth + 1)).await?;
            }
            FileKind::Symlink => {
                println!("{indent}{} -> {}", entry.name, fs.read_link(&path).await?)
            }
            _ => println!(
                "{indent}{} ({} bytes)",
                entry.name,
                fs.stat(&path).await?.size
            ),
        }
    }
    Ok(())
}
