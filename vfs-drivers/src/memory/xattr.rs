//! Extended attributes, with Linux's limits and error precedence.

use bytes::Bytes;
use vfs_core::{ErrorKind, Result, Timestamp, VfsPath, XattrMode};

use super::{fail, MemoryFs};

/// Linux's `XATTR_NAME_MAX`.
const NAME_MAX: usize = 255;
/// Linux's `XATTR_SIZE_MAX`.
const VALUE_MAX: usize = 64 * 1024;
/// The namespaces a name must start with; tmpfs knows these (`system.` for ACLs).
const NAMESPACES: [&str; 4] = ["user.", "trusted.", "security.", "system."];

/// The checks Linux makes while copying the name in (`ERANGE` for an empty or too long
/// name), before it looks at the path (since 6.13 for get and remove too).
fn check_name_length(name: &str, op: &'static str, path: &VfsPath) -> Result<()> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(fail(ErrorKind::OutOfRange, op, path));
    }
    Ok(())
}

/// The checks Linux's `xattr_resolve_name` makes once the inode is found: a known
/// namespace (`ENOTSUP`) and something after its prefix (`EINVAL`).
fn check_namespace(name: &str, op: &'static str, path: &VfsPath) -> Result<()> {
    match NAMESPACES.iter().find(|prefix| name.starts_with(*prefix)) {
        None => Err(fail(ErrorKind::Unsupported, op, path)),
        Some(prefix) if name.len() == prefix.len() || name.contains('\0') => {
            Err(fail(ErrorKind::InvalidInput, op, path))
        }
        Some(_) => Ok(()),
    }
}

impl MemoryFs {
    pub(crate) fn xattr_get(&self, path: &VfsPath, name: &str) -> Result<Bytes> {
        const OP: &str = "getxattr";
        check_name_length(name, OP, path)?;
        self.with_node(path, true, OP, |node| {
            check_namespace(name, OP, path)?;
            node.xattrs
                .lock()
                .get(name)
                .cloned()
                .ok_or_else(|| fail(ErrorKind::NoAttribute, OP, path))
        })
    }

    pub(crate) fn xattr_set(
        &self,
        path: &VfsPath,
        name: &str,
        value: &[u8],
        mode: XattrMode,
    ) -> Result<()> {
        const OP: &str = "setxattr";
        check_name_length(name, OP, path)?;
        if value.len() > VALUE_MAX {
            // Linux says E2BIG, which has no ErrorKind; ERANGE is the nearest.
            return Err(fail(ErrorKind::OutOfRange, OP, path)
                .with_detail(format!("an xattr value is at most {VALUE_MAX} bytes")));
        }
        self.with_node(path, true, OP, |node| {
            check_namespace(name, OP, path)?;
            let mut xattrs = node.xattrs.lock();
            let present = xattrs.contains_key(name);
            match mode {
                XattrMode::CreateOnly if present => {
                    return Err(fail(ErrorKind::AlreadyExists, OP, path))
                }
                XattrMode::ReplaceOnly if !present => {
                    return Err(fail(ErrorKind::NoAttribute, OP, path))
                }
                _ => {}
            }
            // A copy, so a small value never pins a caller's large buffer.
            xattrs.insert(Box::from(name), Bytes::copy_from_slice(value));
            drop(xattrs);
            node.touch_changed(Timestamp::now());
            Ok(())
        })
    }

    pub(crate) fn xattr_list(&self, path: &VfsPath) -> Result<Vec<String>> {
        self.with_node(path, true, "listxattr", |node| {
            let xattrs = node.xattrs.lock();
            Ok(xattrs.keys().map(|name| name.to_string()).collect())
        })
    }

    pub(crate) fn xattr_remove(&self, path: &VfsPath, name: &str) -> Result<()> {
        const OP: &str = "removexattr";
        check_name_length(name, OP, path)?;
        self.with_node(path, true, OP, |node| {
            check_namespace(name, OP, path)?;
            if node.xattrs.lock().remove(name).is_none() {
                return Err(fail(ErrorKind::NoAttribute, OP, path));
            }
            node.touch_changed(Timestamp::now());
            Ok(())
        })
    }
}
