//! A store on S3-compatible object storage (AWS S3, MinIO, Garage, Ceph RGW,
//! ...), through the `object_store` crate.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{check_nonempty, validate_key, validate_prefix};
use crate::store::{Health, ObjectInfo, ShardStore};

/// A string that never shows up in `Debug` or `Display` output.
///
/// Used for credentials in configuration, so that logging a configuration
/// (or an error that embeds one) cannot leak them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The wrapped value; call this only where the value is handed to the
    /// component that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// Settings of one S3-compatible backend.
///
/// Credentials come from `access_key_id`/`secret_access_key` (and optionally
/// `session_token`); when those are absent, from the environment variables
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; when
/// those are absent too, building the store fails unless `anonymous` is set.
/// The store never falls back to an instance-metadata endpoint.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Base URL of the service, e.g. `http://127.0.0.1:9000`; absent means
    /// AWS's regional endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region used for request signing.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name. The bucket must exist.
    pub bucket: String,
    /// Key prefix inside the bucket under which this backend's objects
    /// live, so several backends can share a bucket. Empty for none.
    #[serde(default)]
    pub prefix: String,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Session token for temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Send unsigned requests (public buckets, test servers).
    #[serde(default)]
    pub anonymous: bool,
    /// Path-style requests (`endpoint/bucket/key`) rather than
    /// virtual-hosted style (`bucket.endpoint/key`). MinIO, Garage and Ceph
    /// RGW usually want path style.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Allow plain `http://` endpoints. Defaults to whether the endpoint
    /// starts with `http://`.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// TCP connect timeout.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Timeout of a single HTTP request (one attempt).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Retries of a failed request (5xx, connection errors, timeouts).
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
    /// Initial backoff between retries; doubles each time.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Upper bound on the time spent retrying one request.
    #[serde(default = "default_retry_timeout_ms")]
    pub retry_timeout_ms: u64,
    /// Upper bound on a whole operation, retries included; past it the
    /// operation fails with [`Error::Timeout`].
    #[serde(default = "default_operation_timeout_ms")]
    pub operation_timeout_ms: u64,
    /// Objects larger than this are uploaded as multipart uploads with
    /// parts of this size (at least 5 MiB, S3's minimum part size).
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold_bytes: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_max_retries() -> usize {
    3
}
fn default_retry_backoff_ms() -> u64 {
    100
}
fn default_retry_timeout_ms() -> u64 {
    30_000
}
fn default_operation_timeout_ms() -> u64 {
    120_000
}
fn default_multipart_threshold() -> u64 {
    64 << 20
}

const MIN_PART: u64 = 5 << 20;

impl S3Config {
    /// Settings for `bucket` at `endpoint` with every other field at its
    /// default.
    pub fn new(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        S3Config {
            endpoint: Some(endpoint.into()),
            region: default_region(),
            bucket: bucket.into(),
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            anonymous: false,
            path_style: true,
            allow_http: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_retries: default_max_retries(),
            retry_backoff_ms: default_retry_backoff_ms(),
            retry_timeout_ms: default_retry_timeout_ms(),
            operation_timeout_ms: default_operation_timeout_ms(),
            multipart_threshold_bytes: default_multipart_threshold(),
        }
    }

    /// Sets static credentials.
    pub fn with_credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.access_key_id = Some(Secret::new(access_key_id));
        self.secret_access_key = Some(Secret::new(secret_access_key));
        self
    }

    /// Sets the key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written out by hand so that adding a field forces a decision on
        // whether it may be shown.
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("anonymous", &self.anonymous)
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff_ms", &self.retry_backoff_ms)
            .field("retry_timeout_ms", &self.retry_timeout_ms)
            .field("operation_timeout_ms", &self.operation_timeout_ms)
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .finish()
    }
}

/// A backend in an S3-compatible bucket. Cheap to clone (shares the HTTP
/// connection pool).
#[derive(Clone)]
pub struct S3Store {
    name: String,
    client: Arc<AmazonS3>,
    prefix: String,
    operation_timeout: Duration,
    request_timeout: Duration,
    part_size: u64,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds a store from `config`. No request is sent; use
    /// [`ShardStore::health`] to check connectivity.
    pub fn new(config: &S3Config) -> Result<Self> {
        let prefix = config.prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            validate_key(&prefix)
                .map_err(|e| Error::Config(format!("s3 prefix {:?}: {e}", config.prefix)))?;
        }
        if config.bucket.is_empty() {
            return Err(Error::Config("s3 bucket name is empty".into()));
        }
        let allow_http = config.allow_http.unwrap_or_else(|| {
            config
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
        });
        let client_options = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .with_timeout(Duration::from_millis(config.request_timeout_ms));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(config.retry_backoff_ms),
                max_backoff: Duration::from_millis(config.retry_backoff_ms.saturating_mul(16)),
                base: 2.0,
            },
            max_retries: config.max_retries,
            retry_timeout: Duration::from_millis(config.retry_timeout_ms),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(client_options)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (key_id, secret, token) = match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => (
                Some(id.expose().to_owned()),
                Some(secret.expose().to_owned()),
                config.session_token.as_ref().map(|t| t.expose().to_owned()),
            ),
            (None, None) => (
                env("AWS_ACCESS_KEY_ID"),
                env("AWS_SECRET_ACCESS_KEY"),
                env("AWS_SESSION_TOKEN"),
            ),
            _ => {
                return Err(Error::Config(
                    "s3: access_key_id and secret_access_key must be given together".into(),
                ))
            }
        };
        match (key_id, secret) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
                if let Some(token) = token {
                    builder = builder.with_token(token);
                }
            }
            _ if config.anonymous => builder = builder.with_skip_signature(true),
            _ => {
                return Err(Error::Config(format!(
                    "s3 bucket {:?}: no credentials (set access_key_id and secret_access_key, \
                     or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or anonymous = true)",
                    config.bucket
                )))
            }
        }
        // object_store's own error text can include the endpoint but never
        // the credentials; still, keep it out of the message on principle.
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("s3 bucket {:?}: {e}", config.bucket)))?;
        let name = match &config.endpoint {
            Some(endpoint) => format!("s3:{endpoint}/{}/{prefix}", config.bucket),
            None => format!("s3:{}/{prefix}", config.bucket),
        };
        Ok(S3Store {
            name,
            client: Arc::new(client),
            prefix,
            operation_timeout: Duration::from_millis(config.operation_timeout_ms),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            part_size: config.multipart_threshold_bytes.max(MIN_PART),
        })
    }

    fn path(&self, key: &str) -> Result<ObjectPath> {
        validate_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjectPath::parse(&full).map_err(|_| Error::InvalidKey {
            key: key.to_owned(),
            reason: "not a valid object path",
        })
    }

    fn key_of(&self, path: &ObjectPath) -> Option<String> {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            return Some(full.to_owned());
        }
        full.strip_prefix(&self.prefix)?
            .strip_prefix('/')
            .map(str::to_owned)
    }

    async fn run<T, F>(&self, key: &str, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = object_store::Result<T>>,
    {
        match tokio::time::timeout(self.operation_timeout, fut).await {
            Ok(result) => result.map_err(|e| self.map_err(key, e)),
            Err(_) => Err(Error::Timeout {
                backend: self.name.clone(),
                after: self.operation_timeout,
            }),
        }
    }

    fn map_err(&self, key: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                backend: self.name.clone(),
                key: key.to_owned(),
            },
            other => {
                let chain = error_chain(&other);
                // Only the transport's own wording counts: object_store's
                // retry summary mentions "retry_timeout" on every failure.
                if chain.to_ascii_lowercase().contains("timed out") {
                    Error::Timeout {
                        backend: self.name.clone(),
                        after: self.request_timeout,
                    }
                } else {
                    Error::Unavailable {
                        backend: self.name.clone(),
                        reason: chain,
                    }
                }
            }
        }
    }

    async fn put_multipart(&self, key: &str, path: &ObjectPath, data: Bytes) -> Result<()> {
        let mut upload = self.run(key, self.client.put_multipart(path)).await?;
        let mut parts = Vec::new();
        let mut offset = 0usize;
        // part_size is at least 5 MiB and at most the configured threshold,
        // which fits a usize on every supported target.
        let part = usize::try_from(self.part_size).unwrap_or(usize::MAX);
        while offset < data.len() {
            let end = data.len().min(offset.saturating_add(part));
            parts.push(upload.put_part(PutPayload::from_bytes(data.slice(offset..end))));
            offset = end;
        }
        let uploaded = self
            .run(key, futures::future::try_join_all(parts))
            .await
            .map(|_| ());
        let result = match uploaded {
            Ok(()) => self.run(key, upload.complete()).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if result.is_err() {
            // Best effort: an unaborted upload only costs storage until the
            // bucket's lifecycle rule (or an operator) removes it.
            let _ = tokio::time::timeout(self.operation_timeout, upload.abort()).await;
        }
        result
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[async_trait]
impl ShardStore for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let path = self.path(key)?;
        if data.len() as u64 > self.part_size {
            return self.put_multipart(key, &path, data).await;
        }
        self.run(key, self.client.put(&path, PutPayload::from_bytes(data)))
            .await
            .map(|_| ())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        self.run(key, async {
            let result = self.client.get(&path).await?;
            result.bytes().await
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        check_nonempty(&self.name, key, &range)?;
        let path = self.path(key)?;
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let invalid = |size| Error::InvalidRange {
            backend: self.name.clone(),
            key: key.to_owned(),
            start: range.start,
            end: range.end,
            size,
        };
        let result = self
            .run(key, async {
                let result = self.client.get_opts(&path, options).await?;
                let size = result.meta.size;
                let got = result.range.clone();
                Ok((size, got, result.bytes().await?))
            })
            .await;
        match result {
            Ok((size, got, bytes)) => {
                // S3 clips a range that runs past the end; the trait
                // promises exactly the requested bytes or an error.
                if got != range || bytes.len() as u64 != range.end - range.start {
                    return Err(invalid(Some(size)));
                }
                Ok(bytes)
            }
            Err(Error::Unavailable { reason, .. })
                if reason.contains("416")
                    || reason.contains("Range Not Satisfiable")
                    || reason.contains("InvalidRange")
                    || reason.contains("Wanted range starting at") =>
            {
                Err(invalid(None))
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.run(key, self.client.delete(&path)).await {
            Err(Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        validate_prefix(prefix)?;
        // object_store lists by whole path segments; list the deepest
        // directory the prefix names completely and filter the rest.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let full_dir = match (self.prefix.is_empty(), dir.is_empty()) {
            (true, _) => dir.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{dir}", self.prefix),
        };
        let list_path = if full_dir.is_empty() {
            None
        } else {
            Some(ObjectPath::parse(&full_dir).map_err(|_| Error::InvalidKey {
                key: prefix.to_owned(),
                reason: "not a valid object path",
            })?)
        };
        let metas: Vec<_> = self
            .run(prefix, self.client.list(list_path.as_ref()).try_collect())
            .await?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let key = self.key_of(&m.location)?;
                (key.starts_with(prefix) && validate_key(&key).is_ok())
                    .then_some(ObjectInfo { key, size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn health(&self) -> Result<Health> {
        let start = Instant::now();
        // A listing of a key that never exists proves the bucket is there
        // and the credentials work, and is cheap on every implementation.
        let probe = match self.prefix.is_empty() {
            true => ObjectPath::from("prunedb-health-probe"),
            false => ObjectPath::from(format!("{}/prunedb-health-probe", self.prefix)),
        };
        self.run("", async {
            let mut stream = self.client.list(Some(&probe));
            stream.try_next().await.map(|_| ())
        })
        .await?;
        Ok(Health {
            latency: start.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let config = S3Config::new("http://127.0.0.1:1", "b")
            .with_credentials("AKIAEXAMPLEKEYID", "very-secret-value");
        let shown = format!("{config:?}");
        assert!(!shown.contains("AKIAEXAMPLEKEYID"), "{shown}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("<redacted>"));
        let store = S3Store::new(&config).unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }

    #[test]
    fn missing_credentials_are_a_config_error() {
        let mut config = S3Config::new("http://127.0.0.1:1", "b");
        config.access_key_id = Some(Secret::new("id"));
        assert!(matches!(S3Store::new(&config), Err(Error::Config(_))));
        config.anonymous = true;
        config.access_key_id = None;
        assert!(S3Store::new(&config).is_ok());
    }

    #[test]
    fn prefix_mapping() {
        let config = S3Config::new("http://127.0.0.1:1", "b")
            .with_credentials("a", "b")
            .with_prefix("/lake/b07/");
        let store = S3Store::new(&config).unwrap();
        let path = store.path("seg/1").unwrap();
        assert_eq!(path.as_ref(), "lake/b07/seg/1");
        assert_eq!(store.key_of(&path).as_deref(), Some("seg/1"));
        assert_eq!(store.key_of(&ObjectPath::from("lake/b070/x")), None);
        assert!(store.path("../x").is_err());
    }
}
