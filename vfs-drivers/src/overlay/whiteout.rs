//! Whiteouts and opaque directories, stored in the upper with the OCI layer convention.
//!
//! - A deleted lower entry `name` is hidden by an empty regular file `.wh.name` beside it.
//! - A directory whose lower counterparts must not show through holds `.wh..wh..opq`.
//! - Every other name starting with `.wh.` is reserved: users cannot create such names,
//!   listings never show them, and lookups answer `ENOENT`. The overlay uses the
//!   `.wh..wh.` space for its temporary copy-up names (`.wh..wh..tmp.N`), which OCI
//!   tools ignore as they ignore every `.wh..wh.` metadata name but the opaque marker.
//!
//! These are plain files, so the convention survives on any upper driver (memory, a host
//! directory, an object store) and an upper is directly a tar/OCI layer.

use bytes::Bytes;
use vfs_core::{ErrorKind, FileKind, Result, VfsPath};

use super::lookup::{absent, UPPER};
use super::OverlayFs;

/// What every whiteout and marker name starts with.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// The marker file of an opaque directory.
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The prefix of the overlay's temporary names in the upper.
pub(crate) const TEMP_PREFIX: &str = ".wh..wh..tmp.";

/// Whether `name` is in the reserved `.wh.` space.
pub(crate) fn is_reserved(name: &str) -> bool {
    name.starts_with(WHITEOUT_PREFIX)
}

/// The name a whiteout entry hides, if `name` is a whiteout (and not another marker).
pub(crate) fn whited_out(name: &str) -> Option<&str> {
    let hidden = name.strip_prefix(WHITEOUT_PREFIX)?;
    if hidden.is_empty() || is_reserved(hidden) {
        None
    } else {
        Some(hidden)
    }
}

/// The whiteout of `name` in `dir`; `None` when `name` is too long to have one (a
/// 252-byte or longer name: `.wh.` would push it past 255 bytes).
fn whiteout_path(dir: &VfsPath, name: &str) -> Option<VfsPath> {
    dir.join(&format!("{WHITEOUT_PREFIX}{name}")).ok()
}

impl OverlayFs {
    /// Whether layer `layer` holds a whiteout for `name` in `dir`.
    pub(crate) async fn has_whiteout(
        &self,
        layer: usize,
        dir: &VfsPath,
        name: &str,
    ) -> Result<bool> {
        let Some(path) = whiteout_path(dir, name) else {
            return Ok(false);
        };
        match self.layer(layer)?.lstat(&path).await {
            Ok(_) => Ok(true),
            Err(err) if absent(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Whether directory `dir` of layer `layer` is opaque.
    pub(crate) async fn is_opaque(&self, layer: usize, dir: &VfsPath) -> Result<bool> {
        let path = dir.join(OPAQUE_MARKER)?;
        match self.layer(layer)?.lstat(&path).await {
            Ok(_) => Ok(true),
            Err(err) if absent(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Hides `name` of the lowers with a whiteout in the upper directory `dir`, which must
    /// exist there.
    pub(crate) async fn create_whiteout(&self, dir: &VfsPath, name: &str) -> Result<()> {
        let Some(path) = whiteout_path(dir, name) else {
            return Err(vfs_core::VfsError::new(ErrorKind::NameTooLong, "whiteout")
                .with_path(dir.as_str())
                .with_detail(format!(
                    "a lower entry named with {} bytes cannot be hidden: its whiteout \
                     name would pass 255 bytes",
                    name.len()
                )));
        };
        self.upper.write_file(&path, Bytes::new()).await
    }

    /// Removes the upper whiteout of `name` in `dir`; a missing one is fine.
    pub(crate) async fn remove_whiteout(&self, dir: &VfsPath, name: &str) -> Result<()> {
        let Some(path) = whiteout_path(dir, name) else {
            return Ok(());
        };
        match self.upper.remove_file(&path).await {
            Err(err) if absent(&err) => Ok(()),
            other => other,
        }
    }

    /// Marks the upper directory `dir` opaque. With `keep_times`, its atime and mtime are
    /// put back afterwards, so the marker is not seen as a change of the directory.
    pub(crate) async fn make_opaque(&self, dir: &VfsPath, keep_times: bool) -> Result<()> {
        let saved = if keep_times {
            self.saved_times(dir).await
        } else {
            None
        };
        self.upper
            .write_file(&dir.join(OPAQUE_MARKER)?, Bytes::new())
            .await?;
        self.restore_times(dir, saved).await;
        Ok(())
    }

    /// Removes every reserved entry (whiteouts, the opaque marker, leftover temporaries)
    /// from the upper directory `dir`, so that it can be removed or replaced.
    pub(crate) async fn clear_reserved(&self, dir: &VfsPath) -> Result<()> {
        for entry in self.layer(UPPER)?.read_dir(dir).await? {
            if !is_reserved(&entry.name) {
                continue;
            }
            let path = dir.join(&entry.name)?;
            if entry.kind == FileKind::Directory {
                self.upper.remove_dir_all(&path).await?;
            } else {
                self.upper.remove_file(&path).await?;
            }
        }
        Ok(())
    }
}
