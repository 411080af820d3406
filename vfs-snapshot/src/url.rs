//! Naming a repository's store by a string, as a command line or a config file does: a
//! local directory (the default), `file:///dir`, or `s3://bucket/prefix`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use vfs_core::{ErrorKind, Result, VfsError};

use crate::store::{store_error, Repository};

/// Where a repository lives, parsed from a URL by [`StoreUrl::parse`].
///
/// ```
/// use vfs_snapshot::StoreUrl;
///
/// assert_eq!(StoreUrl::parse("./.vfs-store")?, StoreUrl::Local("./.vfs-store".into()));
/// assert_eq!(StoreUrl::parse("file:///var/lib/vfs")?, StoreUrl::Local("/var/lib/vfs".into()));
/// assert_eq!(
///     StoreUrl::parse("s3://snapshots/team-a")?,
///     StoreUrl::S3 { bucket: "snapshots".into(), prefix: "team-a".into() },
/// );
/// assert_eq!(StoreUrl::parse("gs://bucket").unwrap_err().code(), "EINVAL");
/// # Ok::<(), vfs_core::VfsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A directory of this machine (a plain path, relative or absolute, or `file:///abs`).
    Local(PathBuf),
    /// A bucket and a key prefix (possibly empty) in S3 or an S3-compatible server.
    S3 {
        /// The bucket name.
        bucket: String,
        /// Keys of the repository start with this prefix (no leading or trailing `/`).
        prefix: String,
    },
}

/// The URL as an error may show it: credentials someone put in it are not repeated.
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn bad_url(url: &str, why: impl Into<String>) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, "open repository")
        .with_path(shown(url))
        .with_detail(why)
}

/// S3's bucket naming rules, checked here so a typo is `EINVAL` at once rather than a
/// signature or DNS failure after retries.
fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Whether an endpoint is on this machine: plain HTTP is allowed there without asking
/// (a local MinIO or moto), never towards another host.
fn is_loopback(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl StoreUrl {
    /// Parses a store URL. Plain paths are local directories; `file://` must be followed
    /// by an absolute path; `s3://bucket[/prefix]` needs a valid bucket name. Any other
    /// scheme, an empty string, or a bad prefix is `EINVAL` naming the URL.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        if url.is_empty() {
            return Err(bad_url(url, "the store URL is empty"));
        }
        if url.contains('\0') {
            return Err(bad_url(url, "the store URL contains a NUL byte"));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(StoreUrl::Local(PathBuf::from(url)));
        };
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad_url(
                        url,
                        "a file:// URL names an absolute directory (file:///dir)",
                    ));
                }
                Ok(StoreUrl::Local(PathBuf::from(rest)))
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if !valid_bucket(bucket) {
                    return Err(bad_url(
                        url,
                        "the bucket name must be 3-63 of a-z 0-9 . - (s3://bucket/prefix)",
                    ));
                }
                let prefix = prefix.trim_matches('/');
                StorePath::parse(prefix).map_err(|err| {
                    bad_url(url, "the key prefix is not a valid object path").with_source(err)
                })?;
                Ok(StoreUrl::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.to_owned(),
                })
            }
            _ => Err(bad_url(
                url,
                format!("unsupported scheme {scheme}:// (a directory, file:///dir or s3://bucket/prefix)"),
            )),
        }
    }

    /// Builds the object store the URL names. A local directory is created if missing.
    ///
    /// For S3, settings come from the environment as the AWS tools read them
    /// (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, ...); plain HTTP is
    /// allowed without `AWS_ALLOW_HTTP` when the endpoint is a loopback address.
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>> {
        match self {
            StoreUrl::Local(dir) => {
                let shown_dir = dir.display().to_string();
                std::fs::create_dir_all(dir).map_err(|err| {
                    VfsError::from_io("open repository", err).with_path(shown_dir.clone())
                })?;
                let store =
                    object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|err| {
                        VfsError::new(ErrorKind::InvalidInput, "open repository")
                            .with_path(shown_dir)
                            .with_source(err)
                    })?;
                Ok(Arc::new(store))
            }
            StoreUrl::S3 { bucket, prefix } => {
                let url = format!("s3://{bucket}/{prefix}");
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    // A CLI or server should report an unreachable store within seconds,
                    // not after object_store's default three minutes of retries.
                    .with_retry(RetryConfig {
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                        ..RetryConfig::default()
                    });
                let endpoint = builder
                    .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
                    .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
                if endpoint.as_deref().is_some_and(is_loopback) {
                    builder = builder.with_allow_http(true);
                }
                let s3 = builder.build().map_err(|err| {
                    bad_url(&url, "cannot configure S3 from the environment").with_source(err)
                })?;
                if prefix.is_empty() {
                    Ok(Arc::new(s3))
                } else {
                    Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
                }
            }
        }
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Local(dir) => write!(f, "{}", dir.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Repository {
    /// Opens (creating if empty) the repository a URL names: a local directory (plain
    /// path or `file:///dir`; the embedded default is `./.vfs-store`) or
    /// `s3://bucket/prefix`, configured from the environment as
    /// [`StoreUrl::object_store`] says. A malformed URL is `EINVAL` naming it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> vfs_core::Result<()> {
    /// let dir = tempfile::tempdir().map_err(|e| vfs_core::VfsError::from_io("mkdtemp", e))?;
    /// let repo = vfs_snapshot::Repository::open_url(&dir.path().display().to_string()).await?;
    /// assert!(repo.list_snapshots().await?.is_empty());
    /// let err = vfs_snapshot::Repository::open_url("ftp://host/x").await.unwrap_err();
    /// assert_eq!(err.code(), "EINVAL");
    /// assert!(err.to_string().contains("ftp://host/x"));
    /// # Ok(()) }
    /// ```
    pub async fn open_url(url: &str) -> Result<Arc<Repository>> {
        let store = StoreUrl::parse(url)?.object_store()?;
        Repository::open(store)
            .await
            .map_err(|err| in_store(err, url))
    }

    /// As [`Repository::open_url`] for callers that only read: a store that holds no
    /// repository yet is `ENOENT` naming the URL, and nothing is created (no directory,
    /// no `config` object).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> vfs_core::Result<()> {
    /// let dir = tempfile::tempdir().map_err(|e| vfs_core::VfsError::from_io("mkdtemp", e))?;
    /// let url = dir.path().join("store").display().to_string();
    /// let err = vfs_snapshot::Repository::open_url_existing(&url).await.unwrap_err();
    /// assert_eq!(err.code(), "ENOENT");
    /// assert!(!dir.path().join("store").exists());
    /// vfs_snapshot::Repository::open_url(&url).await?;
    /// vfs_snapshot::Repository::open_url_existing(&url).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_url_existing(url: &str) -> Result<Arc<Repository>> {
        let parsed = StoreUrl::parse(url)?;
        let missing = || {
            VfsError::new(ErrorKind::NotFound, "open repository")
                .with_path(shown(url))
                .with_detail("no snapshot repository here yet")
        };
        if let StoreUrl::Local(dir) = &parsed {
            // Checked before object_store() would create the directory.
            if !dir.join(CONFIG_KEY).is_file() {
                return Err(missing());
            }
        }
        let store = parsed.object_store()?;
        match store.head(&StorePath::from(CONFIG_KEY)).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Err(missing()),
            Err(err) => return Err(in_store(store_error("head", CONFIG_KEY, err), url)),
        }
        Repository::open(store)
            .await
            .map_err(|err| in_store(err, url))
    }
}

/// The key of the object every repository has (FORMAT.md).
const CONFIG_KEY: &str = "config";

/// Errors from inside a store name a key; this says which store too.
fn in_store(err: VfsError, url: &str) -> VfsError {
    match err.path() {
        Some(key) => {
            let path = format!("{} in {}", key, shown(url));
            err.map_path(|_| path)
        }
        None => err.with_path(shown(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_local() {
        assert_eq!(
            StoreUrl::parse(".vfs-store").unwrap(),
            StoreUrl::Local(".vfs-store".into())
        );
        assert_eq!(
            StoreUrl::parse("/srv/store").unwrap(),
            StoreUrl::Local("/srv/store".into())
        );
    }

    #[test]
    fn s3_urls_split_bucket_and_prefix() {
        assert_eq!(
            StoreUrl::parse("s3://my-bucket").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/a/b/").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
    }

    #[test]
    fn bad_urls_are_einval_naming_the_url() {
        for url in [
            "",
            "s3://",
            "s3:///prefix",
            "s3://UPPER/x",
            "s3://ab",
            "s3://-bucket",
            "s3://bucket/a//b",
            "s3://bucket/a/../b",
            "file://relative/dir",
            "gs://bucket/x",
            "http://example.com/store",
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert_eq!(err.code(), "EINVAL", "{url}");
            assert!(err.to_string().contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn credentials_in_a_url_are_not_repeated() {
        let err = StoreUrl::parse("s3://AKID:hunter2@bucket/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("s3://***@bucket/x"), "{err}");
    }

    #[test]
    fn only_loopback_endpoints_get_plain_http() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://localhost:9000/"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("http://10.0.0.1:9000"));
        assert!(!is_loopback("http://127.0.0.1.example.com"));
        assert!(!is_loopback("https://127.0.0.1:9000"));
    }

    #[tokio::test]
    async fn a_local_url_opens_and_reopens_one_repository() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("store").display());
        Repository::open_url(&url).await.unwrap();
        assert!(dir.path().join("store/config").is_file());
        Repository::open_url(&url).await.unwrap();
    }

    #[tokio::test]
    async fn a_local_path_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = Repository::open_url(&file.display().to_string())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "EEXIST", "{err}");
        assert!(err.to_string().contains(&file.display().to_string()));
    }
}
