//! Absolute, normalized, validated paths.

use std::fmt;
use std::str::FromStr;

use crate::error::{ErrorKind, Result, VfsError};

/// The longest name (one path component) in bytes, as on Linux.
pub const MAX_NAME_BYTES: usize = 255;
/// The longest path in bytes, as Linux's `PATH_MAX` (4096 including the trailing NUL).
pub const MAX_PATH_BYTES: usize = 4095;

/// An absolute path, normalized and validated once at the boundary.
///
/// Parsing collapses repeated slashes and `.`, resolves `..` lexically and rejects NUL
/// bytes, relative paths and `..` above the root with `EINVAL`, names over 255 bytes and
/// paths over 4095 bytes with `ENAMETOOLONG`. Drivers therefore never see `..`.
///
/// A trailing slash is remembered ([`VfsPath::has_trailing_slash`]) because POSIX gives it
/// meaning: `file/` must fail with `ENOTDIR`, and `link/` follows the symlink.
///
/// ```
/// use vfs_core::VfsPath;
///
/// let path = VfsPath::new("/usr//lib/./x/../bin/")?;
/// assert_eq!(path.as_str(), "/usr/lib/bin");
/// assert!(path.has_trailing_slash());
/// assert_eq!(path.file_name(), Some("bin"));
/// assert_eq!(VfsPath::new("/..").unwrap_err().code(), "EINVAL");
/// # Ok::<(), vfs_core::VfsError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VfsPath {
    normalized: String,
    trailing_slash: bool,
}

impl VfsPath {
    /// The root, `/`.
    pub fn root() -> VfsPath {
        VfsPath {
            normalized: "/".to_owned(),
            trailing_slash: false,
        }
    }

    /// Parses and validates an absolute path.
    pub fn new(path: &str) -> Result<VfsPath> {
        let invalid = |detail: &str| {
            VfsError::new(ErrorKind::InvalidInput, "path")
                .with_path(path.escape_debug().to_string())
                .with_detail(detail.to_owned())
        };
        if path.len() > MAX_PATH_BYTES {
            return Err(
                VfsError::new(ErrorKind::NameTooLong, "path").with_detail(format!(
                    "path is {} bytes, over {MAX_PATH_BYTES}",
                    path.len()
                )),
            );
        }
        if path.as_bytes().contains(&0) {
            return Err(invalid("path contains a NUL byte"));
        }
        if !path.starts_with('/') {
            return Err(invalid("path is not absolute"));
        }
        let mut normalized = String::with_capacity(path.len());
        for component in path.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    let Some(cut) = normalized.rfind('/') else {
                        return Err(invalid("path climbs above the root"));
                    };
                    normalized.truncate(cut);
                }
                name => {
                    check_name_length(name, path)?;
                    normalized.push('/');
                    normalized.push_str(name);
                }
            }
        }
        // A trailing `/.` or `/..` names a directory just as a trailing slash does.
        let trailing_slash = !normalized.is_empty()
            && (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/.."));
        if normalized.is_empty() {
            normalized.push('/');
        }
        Ok(VfsPath {
            normalized,
            trailing_slash,
        })
    }

    /// The normalized path, without a trailing slash (except for the root).
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.normalized.len() == 1
    }

    /// Whether the caller wrote a trailing slash, which requires the target to be a
    /// directory (following a final symlink).
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// The same path without the trailing-slash requirement.
    pub fn without_trailing_slash(&self) -> VfsPath {
        VfsPath {
            normalized: self.normalized.clone(),
            trailing_slash: false,
        }
    }

    /// The names from the root down; empty for `/`.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        self.normalized[1..]
            .split('/')
            .filter(|name| !name.is_empty())
    }

    /// The number of components; 0 for `/`.
    pub fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.normalized.bytes().filter(|&b| b == b'/').count()
        }
    }

    /// The last component; `None` for `/`.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.normalized.rsplit('/').next()
        }
    }

    /// The parent directory; `None` for `/`.
    pub fn parent(&self) -> Option<VfsPath> {
        self.parent_str().map(|parent| VfsPath {
            normalized: parent.to_owned(),
            trailing_slash: false,
        })
    }

    /// The parent directory as a string slice; `None` for `/`.
    pub fn parent_str(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        let cut = self.normalized.rfind('/').unwrap_or(0);
        Some(if cut == 0 {
            "/"
        } else {
            &self.normalized[..cut]
        })
    }

    /// This path and each of its ancestors up to `/`, longest first.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let mut next = Some(self.normalized.as_str());
        std::iter::from_fn(move || {
            let current = next?;
            next = match current.rfind('/') {
                _ if current == "/" => None,
                Some(0) => Some("/"),
                Some(cut) => Some(&current[..cut]),
                None => None,
            };
            Some(current)
        })
    }

    /// Appends one name, validating it: it must not be empty, `.`, `..`, or hold `/` or NUL.
    pub fn join(&self, name: &str) -> Result<VfsPath> {
        let bad = |detail: &str| {
            VfsError::new(ErrorKind::InvalidInput, "path")
                .with_path(format!("{}/{}", self.as_str(), name.escape_debug()))
                .with_detail(detail.to_owned())
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(bad("not a file name"));
        }
        if name.contains('/') || name.contains('\0') {
            return Err(bad("a file name cannot hold '/' or NUL"));
        }
        check_name_length(name, name)?;
        let mut normalized = String::with_capacity(self.normalized.len() + 1 + name.len());
        normalized.push_str(self.as_str());
        if !self.is_root() {
            normalized.push('/');
        }
        normalized.push_str(name);
        if normalized.len() > MAX_PATH_BYTES {
            return Err(VfsError::new(ErrorKind::NameTooLong, "path").with_path(normalized));
        }
        Ok(VfsPath {
            normalized,
            trailing_slash: false,
        })
    }

    /// Whether `prefix` is this path or one of its ancestors, component-wise
    /// (`/ab` does not start with `/a`).
    pub fn starts_with(&self, prefix: &VfsPath) -> bool {
        is_within(self.as_str(), prefix.as_str())
    }

    /// This path seen from inside `prefix`: `/mnt/a/b` within `/mnt` is `/a/b`.
    /// Keeps the trailing-slash requirement.
    pub fn strip_prefix(&self, prefix: &VfsPath) -> Option<VfsPath> {
        if !self.starts_with(prefix) {
            return None;
        }
        let rest = if prefix.is_root() {
            self.as_str()
        } else {
            &self.normalized[prefix.normalized.len()..]
        };
        Some(VfsPath {
            normalized: if rest.is_empty() {
                "/".to_owned()
            } else {
                rest.to_owned()
            },
            trailing_slash: self.trailing_slash,
        })
    }

    /// The inverse of [`VfsPath::strip_prefix`]: `/a/b` placed under `/mnt` is `/mnt/a/b`.
    pub fn rebase_onto(&self, prefix: &VfsPath) -> VfsPath {
        VfsPath {
            normalized: rebase_str(self.as_str(), prefix.as_str()),
            trailing_slash: self.trailing_slash,
        }
    }
}

/// Whether `path` is `prefix` or lies beneath it; both normalized.
pub(crate) fn is_within(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path.starts_with(prefix)
        && (path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/')
}

/// Joins a normalized mount-relative path onto a normalized prefix.
pub(crate) fn rebase_str(relative: &str, prefix: &str) -> String {
    match (prefix, relative) {
        ("/", relative) => relative.to_owned(),
        (prefix, "/") => prefix.to_owned(),
        (prefix, relative) => format!("{prefix}{relative}"),
    }
}

fn check_name_length(name: &str, whole: &str) -> Result<()> {
    if name.len() > MAX_NAME_BYTES {
        return Err(VfsError::new(ErrorKind::NameTooLong, "path")
            .with_path(whole.to_owned())
            .with_detail(format!(
                "a name is {} bytes, over {MAX_NAME_BYTES}",
                name.len()
            )));
    }
    Ok(())
}

impl fmt::Display for VfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so width and alignment flags work in tables.
        if self.trailing_slash {
            f.pad(&format!("{}/", self.normalized))
        } else {
            f.pad(&self.normalized)
        }
    }
}

impl fmt::Debug for VfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl FromStr for VfsPath {
    type Err = VfsError;

    fn from_str(path: &str) -> Result<VfsPath> {
        VfsPath::new(path)
    }
}

impl TryFrom<&str> for VfsPath {
    type Error = VfsError;

    fn try_from(path: &str) -> Result<VfsPath> {
        VfsPath::new(path)
    }
}

impl TryFrom<String> for VfsPath {
    type Error = VfsError;

    fn try_from(path: String) -> Result<VfsPath> {
        VfsPath::new(&path)
    }
}

impl AsRef<str> for VfsPath {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for VfsPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VfsPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<VfsPath, D::Error> {
        let raw = String::deserialize(deserializer)?;
        VfsPath::new(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> VfsPath {
        VfsPath::new(s).unwrap()
    }

    #[test]
    fn normalizes_slashes_dots_and_dotdots() {
        assert_eq!(p("/").as_str(), "/");
        assert_eq!(p("//a///b/").as_str(), "/a/b");
        assert_eq!(p("/a/./b/../c").as_str(), "/a/c");
        assert_eq!(p("/a/..").as_str(), "/");
        assert!(
            !p("/a/..").has_trailing_slash(),
            "the root carries no requirement"
        );
        assert!(p("/a/b/.").has_trailing_slash());
        assert!(!p("/a/b").has_trailing_slash());
    }

    #[test]
    fn rejects_bad_input_with_the_right_errno() {
        assert_eq!(VfsPath::new("a/b").unwrap_err().code(), "EINVAL");
        assert_eq!(VfsPath::new("").unwrap_err().code(), "EINVAL");
        assert_eq!(VfsPath::new("/a\0b").unwrap_err().code(), "EINVAL");
        assert_eq!(VfsPath::new("/a/../..").unwrap_err().code(), "EINVAL");
        let long_name = format!("/{}", "x".repeat(256));
        assert_eq!(VfsPath::new(&long_name).unwrap_err().code(), "ENAMETOOLONG");
        assert!(VfsPath::new(&format!("/{}", "x".repeat(255))).is_ok());
        let long_path = "/abcdefgh".repeat(512);
        assert_eq!(VfsPath::new(&long_path).unwrap_err().code(), "ENAMETOOLONG");
    }

    #[test]
    fn parent_name_and_ancestors() {
        let path = p("/a/b/c");
        assert_eq!(path.parent().unwrap().as_str(), "/a/b");
        assert_eq!(path.file_name(), Some("c"));
        assert_eq!(p("/a").parent_str(), Some("/"));
        assert_eq!(VfsPath::root().parent(), None);
        let ancestors: Vec<_> = path.ancestors().collect();
        assert_eq!(ancestors, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(path.components().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(path.depth(), 3);
        assert_eq!(VfsPath::root().depth(), 0);
        assert_eq!(VfsPath::root().components().count(), 0);
    }

    #[test]
    fn prefixes_are_component_wise() {
        assert!(p("/a/b").starts_with(&p("/a")));
        assert!(!p("/ab").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&VfsPath::root()));
        assert_eq!(
            p("/mnt/x/y").strip_prefix(&p("/mnt")).unwrap().as_str(),
            "/x/y"
        );
        assert_eq!(p("/mnt").strip_prefix(&p("/mnt")).unwrap().as_str(), "/");
        assert_eq!(p("/x").rebase_onto(&p("/mnt")).as_str(), "/mnt/x");
        assert_eq!(VfsPath::root().rebase_onto(&p("/mnt")).as_str(), "/mnt");
        assert_eq!(p("/x").rebase_onto(&VfsPath::root()).as_str(), "/x");
    }

    #[test]
    fn join_validates_the_name() {
        assert_eq!(VfsPath::root().join("a").unwrap().as_str(), "/a");
        assert_eq!(p("/a").join("b").unwrap().as_str(), "/a/b");
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert_eq!(p("/a").join(bad).unwrap_err().code(), "EINVAL", "{bad:?}");
        }
    }
}
