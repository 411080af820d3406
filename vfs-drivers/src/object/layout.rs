//! How a tree maps onto object keys: name escaping, directory manifests, default metadata.
//!
//! See `LAYOUT.md` beside this file (included in the `object` module's rustdoc) for the
//! format and the reasons behind it.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use object_store::path::Path;
use serde::{Deserialize, Serialize};
use vfs_core::{ErrorKind, Result, Timestamp, VfsError};

/// The name of the object that makes a directory explicit and holds its manifest.
pub const MANIFEST_NAME: &str = ".vfs-dir";

/// The manifest format version this driver writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// A directory's manifest: the directory's own metadata and the entries whose metadata
/// is not the default (symlinks, subdirectories, files with a mode, owner or times set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version.
    pub v: u32,
    /// The directory's own metadata.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub this: Option<Attrs>,
    /// Entries by (unescaped) name.
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
    /// Names too long for one key segment, by the hashed segment that stands for them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub long_names: BTreeMap<String, String>,
}

impl Manifest {
    /// A manifest for a new directory.
    pub fn new(this: Attrs) -> Manifest {
        Manifest {
            v: MANIFEST_VERSION,
            this: Some(this),
            entries: BTreeMap::new(),
            long_names: BTreeMap::new(),
        }
    }

    /// Parses a manifest; a newer version or a malformed one is `EIO`.
    pub fn parse(bytes: &[u8], key: &Path) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|err| {
            VfsError::new(ErrorKind::Io, "read manifest")
                .with_detail(format!("manifest {key} is malformed"))
                .with_source(err)
        })?;
        if manifest.v != MANIFEST_VERSION {
            return Err(
                VfsError::new(ErrorKind::Io, "read manifest").with_detail(format!(
                    "manifest {key} has version {}, this driver reads {MANIFEST_VERSION}",
                    manifest.v
                )),
            );
        }
        Ok(manifest)
    }

    /// The number of subdirectories recorded, for `nlink`.
    pub fn subdirs(&self) -> u64 {
        self.entries
            .values()
            .filter(|entry| matches!(entry, Entry::Dir { .. }))
            .count() as u64
    }
}

/// Metadata kept for an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Access time, ns.
    pub atime: i64,
    /// Modification time, ns.
    pub mtime: i64,
    /// Change time, ns.
    pub ctime: i64,
    /// Birth time, ns.
    pub btime: i64,
    /// Inode number, kept across renames.
    pub ino: u64,
}

impl Attrs {
    /// Fresh attributes stamped now.
    pub fn new(mode: u32, uid: u32, gid: u32, ino: u64) -> Attrs {
        let now = Timestamp::now().as_nanos();
        Attrs {
            mode,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
            btime: now,
            ino,
        }
    }

    /// Attributes with every time set to `time`.
    pub fn at(mode: u32, uid: u32, gid: u32, ino: u64, time: i64) -> Attrs {
        Attrs {
            mode,
            uid,
            gid,
            atime: time,
            mtime: time,
            ctime: time,
            btime: time,
            ino,
        }
    }
}

/// One entry of a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Entry {
    /// A regular file (its content is the object of the same name) with explicit metadata.
    File {
        /// Its metadata.
        #[serde(flatten)]
        attrs: Attrs,
    },
    /// A subdirectory; its metadata is in its own manifest, its inode number here too so
    /// that a listing needs no request per subdirectory.
    Dir {
        /// The subdirectory's inode number.
        ino: u64,
    },
    /// A symlink; it exists only here.
    Symlink {
        /// The target, verbatim.
        target: String,
        /// Its metadata.
        #[serde(flatten)]
        attrs: Attrs,
    },
}

/// Escaped names longer than this are stored under a hashed segment (see [`segment`]):
/// the local-filesystem store stages each write as `<name>#<n>`, which must still fit
/// the host's 255-byte name limit.
pub const LONG_NAME_BYTES: usize = 240;

/// The prefix of the hashed segment that stands for a long name.
pub const LONG_NAME_PREFIX: &str = ".vfs-long-";

/// The key segment of `name`: escaped, or for a long name a hash of it (its directory's
/// manifest maps the hash back to the name for listings).
pub fn segment(name: &str) -> String {
    let escaped = escape(name);
    if escaped.len() <= LONG_NAME_BYTES {
        return escaped;
    }
    #[allow(deprecated)]
    let mut first = std::hash::SipHasher::new_with_keys(1, 2);
    #[allow(deprecated)]
    let mut second = std::hash::SipHasher::new_with_keys(3, 4);
    name.hash(&mut first);
    name.hash(&mut second);
    format!(
        "{LONG_NAME_PREFIX}{:016x}{:016x}",
        first.finish(),
        second.finish()
    )
}

/// Whether `name` is stored under a hashed segment.
pub fn is_long(name: &str) -> bool {
    escape(name).len() > LONG_NAME_BYTES
}

/// Escapes a name for use as one key segment: `%` and ASCII control characters become
/// `%XX`; everything else is kept, so keys written by other tools read back as they are.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '%' || c.is_ascii_control() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`]: `%XX` with two hex digits becomes that byte; anything else (a
/// foreign key's stray `%`) is kept as it is.
pub fn unescape(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let byte = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            if let Some(byte) = byte {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into())
}

/// The key of the entry at `components` beneath `prefix` (no components: the prefix).
pub fn key(prefix: &Path, components: &[String]) -> Result<Path> {
    let mut raw = prefix.as_ref().to_owned();
    for name in components {
        if name == MANIFEST_NAME {
            return Err(reserved(components));
        }
        if !raw.is_empty() {
            raw.push('/');
        }
        raw.push_str(&segment(name));
    }
    Path::parse(&raw).map_err(|err| {
        VfsError::new(ErrorKind::InvalidInput, "key")
            .with_path(display(components))
            .with_source(err)
    })
}

/// The key of the manifest of the directory whose key is `dir`.
pub fn manifest_of(dir: &Path) -> Path {
    dir.clone().join(MANIFEST_NAME)
}

/// The error for a path that names the reserved manifest object.
pub fn reserved(components: &[String]) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, "path")
        .with_path(display(components))
        .with_detail(format!(
            "'{MANIFEST_NAME}' is reserved by the object driver's layout"
        ))
}

/// The mount-relative path of `components`, for errors.
pub fn display(components: &[String]) -> String {
    if components.is_empty() {
        "/".to_owned()
    } else {
        let mut out = String::new();
        for name in components {
            out.push('/');
            out.push_str(name);
        }
        out
    }
}

/// The inode number of an entry that has none stored: a hash of its key, stable across
/// processes built from the same source. Never 0 or 1 (1 is the root).
pub fn hashed_ino(key: &Path) -> u64 {
    // SipHash with fixed keys: the same key gives the same number in every process.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    key.as_ref().hash(&mut hasher);
    let ino = hasher.finish() >> 1;
    ino.max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_keeps_plain_names() {
        for name in [
            "plain",
            "%41",
            "new\nline",
            "back\\slash",
            "file[1].txt",
            "100%",
            "日本語",
        ] {
            assert_eq!(unescape(&escape(name)), name, "{name:?}");
        }
        assert_eq!(escape("file[1].txt"), "file[1].txt");
        assert_eq!(escape("%41"), "%2541");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("a%zz"), "a%zz");
    }

    #[test]
    fn manifests_round_trip_and_refuse_other_versions() {
        let mut manifest = Manifest::new(Attrs::at(0o755, 1, 2, 3, 4));
        manifest.entries.insert("d".into(), Entry::Dir { ino: 7 });
        manifest.entries.insert(
            "l".into(),
            Entry::Symlink {
                target: "../x".into(),
                attrs: Attrs::at(0o777, 0, 0, 9, 5),
            },
        );
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let key = Path::from("k");
        assert_eq!(Manifest::parse(&bytes, &key).unwrap(), manifest);
        assert_eq!(manifest.subdirs(), 1);
        let err = Manifest::parse(br#"{"v": 2}"#, &key).unwrap_err();
        assert_eq!(err.code(), "EIO");
        assert_eq!(Manifest::parse(b"nope", &key).unwrap_err().code(), "EIO");
    }

    #[test]
    fn keys_escape_names_and_refuse_the_manifest_name() {
        let prefix = Path::from("p");
        let k = key(&prefix, &["a b".into(), "%".into()]).unwrap();
        assert_eq!(k.as_ref(), "p/a b/%25");
        assert_eq!(key(&Path::ROOT, &[]).unwrap().as_ref(), "");
        assert_eq!(
            key(&prefix, &[MANIFEST_NAME.into()]).unwrap_err().code(),
            "EINVAL"
        );
        assert_eq!(manifest_of(&Path::ROOT).as_ref(), MANIFEST_NAME);
    }
}
