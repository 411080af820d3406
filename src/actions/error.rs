//! The error every action returns: an errno string, a message and the path, as agentOS
//! callers expect them.

use std::fmt;

use serde::{Deserialize, Serialize};
use vfs_core::{ErrorKind, VfsError};

/// A failed action: `{"code": "ENOENT", "message": "...", "path": "/a"}` in JSON.
///
/// Built from a [`VfsError`] (keeping its errno string and path) or directly for input the
/// actions refuse before any filesystem is touched.
///
/// ```
/// use vfs_layer::actions::ActionError;
/// use vfs_layer::core::{ErrorKind, VfsError};
///
/// let err = ActionError::from(VfsError::new(ErrorKind::NotFound, "stat").with_path("/a"));
/// assert_eq!(err.code, "ENOENT");
/// assert_eq!(err.path.as_deref(), Some("/a"));
/// assert_eq!(serde_json::to_value(&err).unwrap()["code"], "ENOENT");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionError {
    /// The errno string (`"ENOENT"`, `"EINVAL"`, ...).
    pub code: String,
    /// One line for humans, worded like Node.js fs errors.
    pub message: String,
    /// The path the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ActionError {
    /// An error of `kind` with a message and no path.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ActionError {
        ActionError {
            code: kind.code().to_owned(),
            message: message.into(),
            path: None,
        }
    }

    /// `EINVAL` with a message: input the actions refuse.
    pub fn invalid(message: impl Into<String>) -> ActionError {
        ActionError::new(ErrorKind::InvalidInput, message)
    }

    /// Sets the path the error is about.
    pub fn with_path(mut self, path: impl Into<String>) -> ActionError {
        self.path = Some(path.into());
        self
    }

    /// The kind for [`ActionError::code`] (`EIO` for a code vfs-core does not know).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_code(&self.code).unwrap_or(ErrorKind::Io)
    }
}

impl From<VfsError> for ActionError {
    fn from(err: VfsError) -> ActionError {
        ActionError {
            code: err.code().to_owned(),
            message: err.to_string(),
            path: err.path().map(str::to_owned),
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // VfsError messages already start with the code; direct ones do not.
        if self.message.starts_with(&self.code) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for ActionError {}
