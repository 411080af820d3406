//! Applies operations to a `FileSystem` (the driver under test) and walks its tree.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::FutureExt;
use vfs_core::{
    write_all_at, ErrorKind, FileHandle, FileKind, FileSystem, Metadata, OpenOptions, VfsError,
    VfsPath,
};

use crate::ops::{Op, SLOTS};
use crate::outcome::{Node, Outcome, StatView, Tree};

fn vpath(path: &str) -> VfsPath {
    VfsPath::new(&format!("/{path}")).expect("pool paths are valid")
}

fn view(meta: &Metadata) -> StatView {
    StatView::new(meta.kind, meta.mode, meta.nlink, meta.size)
}

fn outcome(result: Result<Outcome, VfsError>) -> Outcome {
    result.unwrap_or_else(|err| Outcome::Errno(err.errno()))
}

/// Set while an operation runs in the driver, whose panics the panic hook keeps quiet.
pub static IN_DRIVER: AtomicBool = AtomicBool::new(false);

/// Runs driver code, turning a panic into its message.
pub async fn caught<T>(work: impl Future<Output = T>) -> Result<T, String> {
    IN_DRIVER.store(true, Ordering::Relaxed);
    let caught = AssertUnwindSafe(work).catch_unwind().await;
    IN_DRIVER.store(false, Ordering::Relaxed);
    caught.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// Applies `op`; a panic in the driver becomes an outcome too, so it is shrunk and
/// reported like any other divergence.
pub async fn apply(fs: &dyn FileSystem, handles: &mut Handles, op: &Op) -> Outcome {
    match caught(try_apply(fs, handles, op)).await {
        Ok(result) => outcome(result),
        Err(message) => Outcome::Panic(message),
    }
}

async fn write_through(
    fs: &dyn FileSystem,
    path: &str,
    options: OpenOptions,
    data: &[u8],
) -> Result<Outcome, VfsError> {
    let handle = fs.open(&vpath(path), options).await?;
    write_all_at(handle.as_ref(), 0, Bytes::copy_from_slice(data)).await?;
    handle.close().await?;
    Ok(Outcome::Done)
}

/// The open handles of a sequence, by slot.
pub type Handles = [Option<Box<dyn FileHandle>>; SLOTS];

/// EBADF for an empty slot, on both sides.
fn no_handle() -> VfsError {
    VfsError::new(ErrorKind::BadHandle, "handle")
}

async fn try_apply(
    fs: &dyn FileSystem,
    handles: &mut Handles,
    op: &Op,
) -> Result<Outcome, VfsError> {
    Ok(match op {
        Op::OpenHandle {
            slot,
            path,
            options,
        } => {
            // Like `fd = open(..)` then `dup2` over the slot: a failed open leaves it be.
            let handle = fs.open(&vpath(path), *options).await?;
            handles[*slot] = Some(handle);
            Outcome::Done
        }
        Op::HandleWrite { slot, offset, data } => {
            let handle = handles[*slot].as_deref().ok_or_else(no_handle)?;
            write_all_at(handle, *offset, Bytes::copy_from_slice(data)).await?;
            Outcome::Done
        }
        Op::HandleRead { slot, offset, len } => {
            let handle = handles[*slot].as_deref().ok_or_else(no_handle)?;
            Outcome::Data(handle.read_at(*offset, *len).await?.to_vec())
        }
        Op::HandleSetLen { slot, len } => {
            let handle = handles[*slot].as_deref().ok_or_else(no_handle)?;
            handle.set_len(*len).await?;
            Outcome::Done
        }
        Op::HandleStat { slot } => {
            let handle = handles[*slot].as_deref().ok_or_else(no_handle)?;
            Outcome::Stat(view(&handle.stat().await?))
        }
        Op::CloseHandle { slot } => {
            let handle = handles[*slot].take().ok_or_else(no_handle)?;
            handle.close().await?;
            Outcome::Done
        }
        Op::WriteFile { path, data } => {
            fs.write_file(&vpath(path), Bytes::copy_from_slice(data))
                .await?;
            Outcome::Done
        }
        Op::Append { path, data, create } => {
            let options = OpenOptions::new().append(true).create(*create).mode(0o644);
            write_through(fs, path, options, data).await?
        }
        Op::Pwrite { path, offset, data } => {
            fs.pwrite(&vpath(path), *offset, Bytes::copy_from_slice(data))
                .await?;
            Outcome::Done
        }
        Op::CreateNew { path, mode, data } => {
            let options = OpenOptions::new().write(true).create_new(true).mode(*mode);
            write_through(fs, path, options, data).await?
        }
        Op::ReadFile { path } => Outcome::Data(fs.read_file(&vpath(path)).await?.to_vec()),
        Op::Pread { path, offset, len } => {
            Outcome::Data(fs.pread(&vpath(path), *offset, *len).await?.to_vec())
        }
        Op::Truncate { path, len } => {
            fs.truncate(&vpath(path), *len).await?;
            Outcome::Done
        }
        Op::CreateDir { path, mode } => {
            fs.create_dir(&vpath(path), *mode).await?;
            Outcome::Done
        }
        Op::CreateDirAll { path, mode } => {
            fs.create_dir_all(&vpath(path), *mode).await?;
            Outcome::Done
        }
        Op::RemoveFile { path } => {
            fs.remove_file(&vpath(path)).await?;
            Outcome::Done
        }
        Op::RemoveDir { path } => {
            fs.remove_dir(&vpath(path)).await?;
            Outcome::Done
        }
        Op::RemoveDirAll { path } => {
            fs.remove_dir_all(&vpath(path)).await?;
            Outcome::Done
        }
        Op::Rename { from, to } => {
            fs.rename(&vpath(from), &vpath(to)).await?;
            Outcome::Done
        }
        Op::Symlink { target, link } => {
            fs.symlink(target, &vpath(link)).await?;
            Outcome::Done
        }
        Op::ReadLink { path } => Outcome::Text(fs.read_link(&vpath(path)).await?),
        Op::HardLink { existing, new } => {
            fs.hard_link(&vpath(existing), &vpath(new)).await?;
            Outcome::Done
        }
        Op::Stat { path } => Outcome::Stat(view(&fs.stat(&vpath(path)).await?)),
        Op::Lstat { path } => Outcome::Stat(view(&fs.lstat(&vpath(path)).await?)),
        Op::ReadDir { path } => {
            let mut entries: Vec<(String, FileKind)> = fs
                .read_dir(&vpath(path))
                .await?
                .into_iter()
                .map(|entry| (entry.name, entry.kind))
                .collect();
            entries.sort_by(|x, y| x.0.cmp(&y.0));
            Outcome::Entries(entries)
        }
        Op::Chmod { path, mode } => {
            fs.set_permissions(&vpath(path), *mode).await?;
            Outcome::Done
        }
        Op::Chown { path, uid, gid } => {
            fs.set_owner(&vpath(path), *uid, *gid).await?;
            Outcome::Done
        }
        Op::Exists { path } => Outcome::Bool(fs.exists(&vpath(path)).await?),
        Op::Realpath { path } => Outcome::Text(fs.realpath(&vpath(path)).await?.to_string()),
        Op::Open {
            path,
            options,
            data,
        } => {
            let handle = fs.open(&vpath(path), *options).await?;
            if options.writes() {
                write_all_at(handle.as_ref(), 0, Bytes::copy_from_slice(data)).await?;
            }
            let outcome = if options.read || !options.writes() {
                Outcome::Data(handle.read_at(0, 32).await?.to_vec())
            } else {
                Outcome::Done
            };
            handle.close().await?;
            outcome
        }
        Op::SymlinkChain { len, target } => {
            for i in 0..*len {
                let to = if i + 1 < *len {
                    format!("z{}", i + 1)
                } else {
                    target.clone()
                };
                fs.symlink(&to, &vpath(&format!("z{i}"))).await?;
            }
            let z0 = vpath("z0");
            let stat = outcome(fs.stat(&z0).await.map(|meta| Outcome::Stat(view(&meta))));
            let real = outcome(
                fs.realpath(&z0)
                    .await
                    .map(|path| Outcome::Text(path.to_string())),
            );
            for i in 0..*len {
                fs.remove_file(&vpath(&format!("z{i}"))).await?;
            }
            Outcome::Chain(Box::new(stat), Box::new(real))
        }
        Op::UnlinkedHandle { path, data } => {
            let path = vpath(path);
            let handle = fs
                .open(&path, OpenOptions::new().read(true).write(true))
                .await?;
            fs.remove_file(&path).await?;
            write_all_at(handle.as_ref(), 0, Bytes::copy_from_slice(data)).await?;
            let read = handle.read_at(0, 64).await?.to_vec();
            let stat = view(&handle.stat().await?);
            handle.close().await?;
            Outcome::AfterUnlink(read, stat)
        }
    })
}

/// Every entry below the root, with its content or target.
pub async fn tree(fs: &dyn FileSystem) -> Result<Tree, VfsError> {
    let mut tree = Tree::new();
    let root = VfsPath::root();
    tree.insert(
        "/".to_owned(),
        Node {
            stat: view(&fs.lstat(&root).await?),
            content: None,
            target: None,
        },
    );
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in fs.read_dir(&dir).await? {
            let path = dir.join(&entry.name)?;
            let meta = fs.lstat(&path).await?;
            let mut node = Node {
                stat: view(&meta),
                content: None,
                target: None,
            };
            match meta.kind {
                FileKind::File => node.content = Some(fs.read_file(&path).await?.to_vec()),
                FileKind::Symlink => node.target = Some(fs.read_link(&path).await?),
                FileKind::Directory => pending.push(path.clone()),
                _ => {}
            }
            if entry.kind != meta.kind {
                node.target = Some(format!(
                    "<read_dir says {:?}, lstat says {:?}>",
                    entry.kind, meta.kind
                ));
            }
            tree.insert(path.as_str().to_owned(), node);
        }
    }
    Ok(tree)
}
