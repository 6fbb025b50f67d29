//! Lake configuration: which backends, how shards are coded and written,
//! and where the key lives. Read from TOML.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fanout::{FanOut, FanOutConfig};
use crate::local::LocalStore;
use crate::memory::MemoryStore;
use crate::s3::{S3Config, S3Store};
use crate::store::ShardStore;

/// One backend of the lake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendConfig {
    /// A directory on a local (or mounted) filesystem.
    Local {
        /// The directory; created if missing.
        path: PathBuf,
        /// Fsync every put (default). Turning it off keeps puts atomic but
        /// not durable across power loss.
        #[serde(default = "yes")]
        fsync: bool,
    },
    /// A bucket (and prefix) on S3-compatible object storage.
    S3(Box<S3Config>),
    /// Process memory; gone when the process exits. For tests.
    Memory {
        /// Name used in logs; defaults to `memory-<index>`.
        #[serde(default)]
        name: Option<String>,
    },
}

fn yes() -> bool {
    true
}

impl BackendConfig {
    /// Builds the store this entry describes. `index` is its position in
    /// the lake, used for default names.
    pub fn open(&self, index: usize) -> Result<Arc<dyn ShardStore>> {
        Ok(match self {
            BackendConfig::Local { path, fsync } => Arc::new(LocalStore::open_with(path, *fsync)?),
            BackendConfig::S3(config) => Arc::new(S3Store::new(config)?),
            BackendConfig::Memory { name } => Arc::new(MemoryStore::new(
                name.clone().unwrap_or_else(|| format!("memory-{index}")),
            )),
        })
    }
}

/// A lake: its backends, its coding parameters, its write and read policy,
/// and where its key is.
///
/// ```toml
/// k = 20
/// m = 80
/// write_threshold = 90
/// hedge_delay_ms = 50
/// key_file = "/etc/prunedb/lake.key"
///
/// [[backend]]
/// kind = "local"
/// path = "/var/lib/prunedb/lake/b000"
///
/// [[backend]]
/// kind = "s3"
/// endpoint = "http://127.0.0.1:9000"
/// bucket = "lake"
/// prefix = "b001"
/// access_key_id = "..."
/// secret_access_key = "..."
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// The backends, in placement order (shard `i` of segment `s` goes to
    /// backend `(i + s) mod N`). Written `[[backend]]` in TOML.
    #[serde(rename = "backend", default)]
    pub backends: Vec<BackendConfig>,
    /// Data shards per segment.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Parity shards per segment.
    #[serde(default = "default_m")]
    pub m: usize,
    /// Acknowledgements needed before a segment counts as written; absent
    /// means `n - n/10` (90 of 100), never less than `k`.
    #[serde(default)]
    pub write_threshold: Option<usize>,
    /// How long a page read waits for its data shard before asking others.
    #[serde(default = "default_hedge_delay_ms")]
    pub hedge_delay_ms: u64,
    /// Spare requests per hedge round (see [`FanOutConfig::hedge_spare`]).
    #[serde(default = "default_hedge_spare")]
    pub hedge_spare: usize,
    /// Requests in flight at once per operation.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Per-request timeout in milliseconds; absent for none.
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// Bound on a whole read, in milliseconds; absent for none.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: Option<u64>,
    /// How long a failing backend is asked last by reads, in milliseconds.
    #[serde(default = "default_suspect_for_ms")]
    pub suspect_for_ms: u64,
    /// File holding the lake key. Only the path is kept here; the key is
    /// read by the component that encrypts.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_k() -> usize {
    20
}
fn default_m() -> usize {
    80
}
fn default_hedge_delay_ms() -> u64 {
    50
}
fn default_hedge_spare() -> usize {
    2
}
fn default_max_concurrency() -> usize {
    128
}
fn default_suspect_for_ms() -> u64 {
    10_000
}
fn default_read_timeout_ms() -> Option<u64> {
    Some(60_000)
}

impl LakeConfig {
    /// The embedded default: `k + m` local directories `b000`, `b001`, ...
    /// under `root`, so a whole lake runs on one machine with no server.
    pub fn embedded(root: impl AsRef<Path>, k: usize, m: usize) -> Self {
        let root = root.as_ref();
        LakeConfig {
            backends: (0..k + m)
                .map(|i| BackendConfig::Local {
                    path: root.join(format!("b{i:03}")),
                    fsync: true,
                })
                .collect(),
            k,
            m,
            write_threshold: None,
            hedge_delay_ms: default_hedge_delay_ms(),
            hedge_spare: default_hedge_spare(),
            max_concurrency: default_max_concurrency(),
            request_timeout_ms: None,
            read_timeout_ms: default_read_timeout_ms(),
            suspect_for_ms: default_suspect_for_ms(),
            key_file: Some(root.join("lake.key")),
        }
    }

    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: LakeConfig =
            toml::from_str(text).map_err(|e| Error::Config(format!("lake config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// The configuration as TOML (secrets included: this is for writing a
    /// configuration file, not for logs; logs use `Debug`, which redacts).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Config(format!("lake config: {e}")))
    }

    /// Shards per segment, `k + m`.
    pub fn n(&self) -> usize {
        self.k + self.m
    }

    /// The write threshold in force.
    pub fn effective_write_threshold(&self) -> usize {
        let n = self.n();
        self.write_threshold
            .unwrap_or_else(|| (n - n / 10).max(self.k).min(n))
    }

    /// Checks the numbers against each other.
    pub fn validate(&self) -> Result<()> {
        let n = self.n();
        let fail = |msg: String| Err(Error::Config(msg));
        if self.k == 0 {
            return fail("k must be at least 1".into());
        }
        if n > 256 {
            return fail(format!("k + m = {n} exceeds 256 shards"));
        }
        if self.backends.len() < n {
            // With fewer backends than shards one backend would hold two
            // shards of a segment, and losing it would cost two.
            return fail(format!(
                "{} backends configured but k + m = {n} shards need one backend each",
                self.backends.len()
            ));
        }
        let t = self.effective_write_threshold();
        if t < self.k || t > n {
            return fail(format!(
                "write_threshold {t} must lie between k = {} and k + m = {n}",
                self.k
            ));
        }
        if self.max_concurrency == 0 {
            return fail("max_concurrency must be at least 1".into());
        }
        Ok(())
    }

    /// The fan-out settings this configuration describes.
    pub fn fanout_config(&self) -> FanOutConfig {
        FanOutConfig {
            write_threshold: self.effective_write_threshold(),
            max_concurrency: self.max_concurrency,
            hedge_delay: Duration::from_millis(self.hedge_delay_ms),
            hedge_spare: self.hedge_spare,
            request_timeout: self.request_timeout_ms.map(Duration::from_millis),
            read_timeout: self.read_timeout_ms.map(Duration::from_millis),
            suspect_for: Duration::from_millis(self.suspect_for_ms),
        }
    }

    /// Builds every backend, in order.
    pub fn open_backends(&self) -> Result<Vec<Arc<dyn ShardStore>>> {
        self.backends
            .iter()
            .enumerate()
            .map(|(i, b)| b.open(i))
            .collect()
    }

    /// Validates, builds every backend and returns the fan-out over them.
    pub fn open(&self) -> Result<FanOut> {
        self.validate()?;
        FanOut::new(self.open_backends()?, self.fanout_config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
k = 2
m = 1
write_threshold = 2
hedge_delay_ms = 20
key_file = "/tmp/lake.key"

[[backend]]
kind = "local"
path = "/tmp/x/b0"

[[backend]]
kind = "memory"

[[backend]]
kind = "s3"
endpoint = "http://127.0.0.1:9000"
bucket = "lake"
prefix = "b2"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI-secret"
max_retries = 5
"#;

    #[test]
    fn parses_example() {
        let c = LakeConfig::from_toml(EXAMPLE).unwrap();
        assert_eq!((c.k, c.m, c.n()), (2, 1, 3));
        assert_eq!(c.effective_write_threshold(), 2);
        assert_eq!(c.backends.len(), 3);
        match &c.backends[2] {
            BackendConfig::S3(s3) => {
                assert_eq!(s3.bucket, "lake");
                assert_eq!(s3.max_retries, 5);
                assert!(s3.path_style);
                assert_eq!(s3.region, "us-east-1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.fanout_config().hedge_delay, Duration::from_millis(20));
    }

    #[test]
    fn debug_redacts_credentials() {
        let c = LakeConfig::from_toml(EXAMPLE).unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn round_trips_through_toml() {
        let c = LakeConfig::from_toml(EXAMPLE).unwrap();
        let again = LakeConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn rejects_bad_numbers_and_unknown_fields() {
        let too_few = EXAMPLE.replace("m = 1", "m = 2");
        assert!(LakeConfig::from_toml(&too_few).is_err());
        let low = EXAMPLE.replace("write_threshold = 2", "write_threshold = 1");
        assert!(LakeConfig::from_toml(&low).is_err());
        let typo = EXAMPLE.replace("hedge_delay_ms", "hedge_dely_ms");
        assert!(LakeConfig::from_toml(&typo).is_err());
        let s3_typo = EXAMPLE.replace("max_retries", "max_retry");
        assert!(LakeConfig::from_toml(&s3_typo).is_err());
        let kind = EXAMPLE.replace("kind = \"memory\"", "kind = \"floppy\"");
        assert!(LakeConfig::from_toml(&kind).is_err());
    }

    #[test]
    fn embedded_default_is_valid_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let c = LakeConfig::embedded(dir.path(), 20, 80);
        c.validate().unwrap();
        assert_eq!(c.effective_write_threshold(), 90);
        let fan = c.open().unwrap();
        assert_eq!(fan.backends().len(), 100);
        assert!(dir.path().join("b000").is_dir());
        assert!(dir.path().join("b099").is_dir());
        let text = c.to_toml().unwrap();
        assert_eq!(LakeConfig::from_toml(&text).unwrap(), c);
    }
}
