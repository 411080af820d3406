//! SHA-256 digests: the address of every blob and the id of every snapshot.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use vfs_core::{ErrorKind, Result, VfsError};

/// The SHA-256 of a blob's uncompressed bytes; a snapshot's id is its root tree's digest.
///
/// ```
/// use vfs_snapshot::Digest;
///
/// let d = Digest::of(b"hello");
/// assert_eq!(d.to_string().len(), 64);
/// assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

/// A snapshot is named by the digest of its root tree, so the same tree gives the same id.
pub type SnapshotId = Digest;

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits; anything else is `EINVAL`.
    pub fn from_hex(text: &str) -> Result<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|err| {
            VfsError::new(ErrorKind::InvalidInput, "parse digest")
                .with_path(text)
                .with_detail("a digest is 64 hex digits")
                .with_source(err)
        })?;
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = VfsError;

    fn from_str(text: &str) -> Result<Digest> {
        Digest::from_hex(text)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::from_hex(&text).map_err(serde::de::Error::custom)
    }
}
