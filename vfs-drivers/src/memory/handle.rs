//! Open files, and the content operations they share with the whole-file calls.

use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{async_trait, ErrorKind, FileHandle, Metadata, Result, Timestamp, VfsError};

use super::file_data::MAX_FILE_SIZE;
use super::inode::{Body, Inode};

/// An open file or directory. It holds the inode itself, so it keeps working after the
/// path is unlinked or renamed over, as a file descriptor does.
pub(crate) struct MemoryHandle {
    inode: Arc<Inode>,
    /// Only for error messages.
    path: String,
    read: bool,
    write: bool,
    append: bool,
}

impl MemoryHandle {
    pub(crate) fn new(
        inode: Arc<Inode>,
        path: String,
        read: bool,
        write: bool,
        append: bool,
    ) -> MemoryHandle {
        MemoryHandle {
            inode,
            path,
            read,
            write,
            append,
        }
    }

    fn fail(&self, kind: ErrorKind, op: &'static str) -> VfsError {
        VfsError::new(kind, op).with_path(self.path.as_str())
    }
}

#[async_trait]
impl FileHandle for MemoryHandle {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        if !self.read {
            return Err(self.fail(ErrorKind::BadHandle, "read"));
        }
        read_content(&self.inode, offset, len).map_err(|kind| self.fail(kind, "read"))
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<usize> {
        if !self.write {
            return Err(self.fail(ErrorKind::BadHandle, "write"));
        }
        write_content(&self.inode, offset, &data, self.append)
            .map_err(|kind| self.fail(kind, "write"))
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        // Linux's ftruncate gives EINVAL, not EBADF, on a handle not open for writing.
        if !self.write {
            return Err(self.fail(ErrorKind::InvalidInput, "ftruncate"));
        }
        set_len_content(&self.inode, len).map_err(|kind| self.fail(kind, "ftruncate"))
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn punch_hole(&self, offset: u64, len: u64) -> Result<()> {
        if !self.write {
            return Err(self.fail(ErrorKind::BadHandle, "fallocate"));
        }
        let Body::File(content) = &self.inode.body else {
            return Err(self.fail(ErrorKind::IsADirectory, "fallocate"));
        };
        let mut content = content.write();
        content.punch_hole(self.inode.usage(), offset, len);
        self.inode.sync_file(&content);
        drop(content);
        self.inode.touch_modified(Timestamp::now());
        Ok(())
    }

    async fn stat(&self) -> Result<Metadata> {
        Ok(self.inode.metadata())
    }
}

/// Up to `len` bytes at `offset` of a regular file.
pub(crate) fn read_content(inode: &Inode, offset: u64, len: usize) -> Result<Bytes, ErrorKind> {
    let Body::File(content) = &inode.body else {
        return Err(ErrorKind::IsADirectory);
    };
    if offset > MAX_FILE_SIZE {
        // A negative `off_t`.
        return Err(ErrorKind::InvalidInput);
    }
    content.read().read(offset, len)
}

/// Writes `data` at `offset` (at the end if `append`, atomically with respect to other
/// writers) and updates mtime and ctime. Returns the bytes written, short when the file
/// reaches the largest size or the filesystem its byte limit.
pub(crate) fn write_content(
    inode: &Inode,
    offset: u64,
    data: &[u8],
    append: bool,
) -> Result<usize, ErrorKind> {
    let Body::File(content) = &inode.body else {
        return Err(ErrorKind::IsADirectory);
    };
    let mut content = content.write();
    let offset = if append { content.size() } else { offset };
    if offset > MAX_FILE_SIZE {
        return Err(ErrorKind::InvalidInput);
    }
    if data.is_empty() {
        return Ok(0);
    }
    if offset >= MAX_FILE_SIZE {
        return Err(ErrorKind::FileTooLarge);
    }
    let room = MAX_FILE_SIZE - offset;
    let data = match usize::try_from(room) {
        Ok(room) if room < data.len() => &data[..room],
        _ => data,
    };
    let written = content.write(inode.usage(), offset, data)?;
    inode.sync_file(&content);
    drop(content);
    inode.touch_modified(Timestamp::now());
    Ok(written)
}

/// Truncates or extends a regular file; mtime and ctime change only if the size does,
/// as `truncate(2)` on tmpfs.
pub(crate) fn set_len_content(inode: &Inode, len: u64) -> Result<(), ErrorKind> {
    let Body::File(content) = &inode.body else {
        return Err(ErrorKind::IsADirectory);
    };
    if len > MAX_FILE_SIZE {
        return Err(ErrorKind::InvalidInput);
    }
    let mut content = content.write();
    let old = content.size();
    content.set_len(inode.usage(), len);
    inode.sync_file(&content);
    drop(content);
    if old != len {
        inode.touch_modified(Timestamp::now());
    }
    Ok(())
}
