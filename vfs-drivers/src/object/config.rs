//! The driver's JSON config and the stores it names.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;
use vfs_core::{ErrorKind, Result, VfsError};

/// S3's smallest part (except the last) of a multipart upload.
pub const S3_MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// The default part size: large files are uploaded in parts of this size.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// The default stat/manifest cache lifetime.
pub const DEFAULT_CACHE_TTL_MS: u64 = 1_000;
/// The default deadline of one request to the store.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// The default readahead of a handle that reads sequentially.
pub const DEFAULT_READAHEAD: usize = 4 * 1024 * 1024;
/// The default largest object a random write or an append rewrites.
pub const DEFAULT_REWRITE_LIMIT: u64 = 64 * 1024 * 1024;

/// A secret string (a key, a token): kept out of `Debug` output and errors.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The config of the `s3` and `object` drivers.
///
/// ```json
/// { "url": "s3://bucket/some/prefix", "region": "us-east-1",
///   "endpoint": "http://127.0.0.1:5000", "allowHttp": true,
///   "accessKeyId": "...", "secretAccessKey": "...", "partSize": 8388608 }
/// ```
///
/// `url` is `s3://bucket[/prefix]`, `file:///absolute/dir` or `memory://[prefix]`; agentOS's
/// `bucket` + `prefix` fields are accepted instead of `url` (with `chunkSize` as an alias of
/// `partSize`). Credentials missing here come from the standard `AWS_*` environment
/// variables. Secrets never appear in `Debug` output or errors.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectConfig {
    /// Where the tree lives.
    pub url: Option<String>,
    /// agentOS style: the bucket (instead of `url`).
    pub bucket: Option<String>,
    /// agentOS style: the key prefix within `bucket`.
    pub prefix: Option<String>,
    /// A custom S3 endpoint (MinIO, moto, ...).
    pub endpoint: Option<String>,
    /// The S3 region.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<Secret>,
    /// A session token.
    pub session_token: Option<Secret>,
    /// Allow `http://` endpoints.
    #[serde(default)]
    pub allow_http: bool,
    /// Bytes per multipart part (at least 5 MiB for S3).
    #[serde(alias = "chunkSize")]
    pub part_size: Option<usize>,
    /// How long a fetched manifest or stat may be reused, in ms (0: never).
    pub cache_ttl_ms: Option<u64>,
    /// The deadline of one request, in ms; past it the call fails with `ETIMEDOUT`.
    pub timeout_ms: Option<u64>,
    /// How far ahead a sequential reader fetches, in bytes.
    pub readahead: Option<usize>,
    /// The largest object that a random write, an append or a truncate rewrites.
    pub rewrite_limit: Option<u64>,
    /// Owner of entries that have none stored.
    pub uid: Option<u32>,
    /// Group of entries that have none stored.
    pub gid: Option<u32>,
}

/// The tunables the driver runs with, resolved from a config.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Bytes per multipart part.
    pub part_size: usize,
    /// Manifest and stat cache lifetime.
    pub cache_ttl: Duration,
    /// Deadline of one request.
    pub timeout: Duration,
    /// Readahead of sequential readers.
    pub readahead: usize,
    /// Largest object rewritten for a random write.
    pub rewrite_limit: u64,
    /// Default owner.
    pub uid: u32,
    /// Default group.
    pub gid: u32,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            part_size: DEFAULT_PART_SIZE,
            cache_ttl: Duration::from_millis(DEFAULT_CACHE_TTL_MS),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            readahead: DEFAULT_READAHEAD,
            rewrite_limit: DEFAULT_REWRITE_LIMIT,
            uid: 0,
            gid: 0,
        }
    }
}

fn invalid(detail: impl Into<String>) -> VfsError {
    VfsError::new(ErrorKind::InvalidInput, "mount").with_detail(detail)
}

impl ObjectConfig {
    /// The tunables, checked (`EINVAL` for a part size S3 refuses).
    pub fn tuning(&self, is_s3: bool) -> Result<Tuning> {
        let defaults = Tuning::default();
        let part_size = self.part_size.unwrap_or(defaults.part_size);
        if part_size == 0 || (is_s3 && part_size < S3_MIN_PART_SIZE) {
            return Err(invalid(format!(
                "partSize {part_size} is below S3's minimum part of {S3_MIN_PART_SIZE} bytes"
            )));
        }
        let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(invalid("timeoutMs must be positive"));
        }
        Ok(Tuning {
            part_size,
            cache_ttl: Duration::from_millis(self.cache_ttl_ms.unwrap_or(DEFAULT_CACHE_TTL_MS)),
            timeout: Duration::from_millis(timeout_ms),
            readahead: self.readahead.unwrap_or(defaults.readahead),
            rewrite_limit: self.rewrite_limit.unwrap_or(defaults.rewrite_limit),
            uid: self.uid.unwrap_or(0),
            gid: self.gid.unwrap_or(0),
        })
    }

    /// Builds the store the config names and the key prefix within it; whether it is S3.
    pub fn build_store(&self) -> Result<(Arc<dyn ObjectStore>, Path, bool)> {
        let url = match (&self.url, &self.bucket) {
            (Some(url), None) => url.clone(),
            (None, Some(bucket)) => format!(
                "s3://{bucket}/{}",
                self.prefix.as_deref().unwrap_or("").trim_matches('/')
            ),
            (Some(_), Some(_)) => return Err(invalid("give either url or bucket, not both")),
            (None, None) => return Err(invalid("the object driver needs a url (or a bucket)")),
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid(format!("{url}: no bucket")));
            }
            let prefix = parse_prefix(prefix, &url)?;
            let timeout = Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_allow_http(self.allow_http)
                .with_client_options(
                    ClientOptions::new()
                        .with_timeout(timeout)
                        .with_connect_timeout(timeout)
                        .with_allow_http(self.allow_http),
                )
                .with_retry(RetryConfig {
                    max_retries: 3,
                    retry_timeout: timeout,
                    ..RetryConfig::default()
                });
            if let Some(region) = &self.region {
                builder = builder.with_region(region);
            }
            if let Some(endpoint) = &self.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(id) = &self.access_key_id {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) = &self.secret_access_key {
                builder = builder.with_secret_access_key(secret.expose());
            }
            if let Some(token) = &self.session_token {
                builder = builder.with_token(token.expose());
            }
            // The builder's errors name settings, never their secret values.
            let store = builder
                .build()
                .map_err(|err| invalid(format!("{url}: cannot configure S3")).with_source(err))?;
            return Ok((Arc::new(store), prefix, true));
        }
        if self.endpoint.is_some()
            || self.region.is_some()
            || self.access_key_id.is_some()
            || self.secret_access_key.is_some()
            || self.session_token.is_some()
        {
            return Err(invalid(format!(
                "{url}: endpoint, region and credentials apply to s3:// only"
            )));
        }
        if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(invalid(format!("{url}: the directory must be absolute")));
            }
            let store = LocalFileSystem::new_with_prefix(dir)
                .map_err(|err| {
                    VfsError::new(ErrorKind::NotFound, "mount")
                        .with_detail(format!("{url}: cannot open the directory"))
                        .with_source(err)
                })?
                // Removing the last object of a directory removes the directory on disk
                // too; otherwise it would linger as an implicit directory.
                .with_automatic_cleanup(true);
            return Ok((Arc::new(store), Path::ROOT, false));
        }
        if let Some(prefix) = url.strip_prefix("memory://") {
            let prefix = parse_prefix(prefix, &url)?;
            return Ok((Arc::new(InMemory::new()), prefix, false));
        }
        Err(invalid(format!(
            "{url}: unsupported url (s3://, file:// or memory://)"
        )))
    }
}

fn parse_prefix(prefix: &str, url: &str) -> Result<Path> {
    Path::parse(prefix.trim_matches('/'))
        .map_err(|err| invalid(format!("{url}: bad key prefix")).with_source(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Result<ObjectConfig> {
        vfs_core::parse_config("object", json)
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let config = config(serde_json::json!({
            "url": "s3://b/p", "accessKeyId": "AKID", "secretAccessKey": "hunter2",
            "sessionToken": "tok-secret"
        }))
        .unwrap();
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("tok-secret"),
            "{debug}"
        );
    }

    #[test]
    fn urls_and_sizes_are_checked() {
        let bad = [
            serde_json::json!({"url": "ftp://x"}),
            serde_json::json!({}),
            serde_json::json!({"url": "s3://"}),
            serde_json::json!({"url": "memory://", "region": "x"}),
            serde_json::json!({"url": "file://relative"}),
            serde_json::json!({"url": "memory://", "bucket": "b"}),
        ];
        for json in bad {
            let config = config(json.clone()).unwrap();
            assert_eq!(
                config.build_store().err().map(|e| e.code()),
                Some("EINVAL"),
                "{json}"
            );
        }
        let config = config(serde_json::json!({"url": "s3://b", "partSize": 1024})).unwrap();
        assert_eq!(config.tuning(true).unwrap_err().code(), "EINVAL");
        assert!(config.tuning(false).is_ok());
        let (_, prefix, s3) = self::config(serde_json::json!({"url": "memory://a/b/"}))
            .unwrap()
            .build_store()
            .unwrap();
        assert_eq!((prefix.as_ref(), s3), ("a/b", false));
    }
}
