//! The crate's single error type.

use std::fmt;
use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a shard store or the fan-out can report.
///
/// The first four variants are the ones a caller branches on: a missing
/// object ([`Error::NotFound`]) is a fact about the data, whereas
/// [`Error::Unavailable`] and [`Error::Timeout`] are facts about the backend
/// and may go away on retry, and [`Error::Corrupt`] means bytes arrived but
/// must not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist on this backend.
    #[error("{backend}: object {key:?} not found")]
    NotFound {
        /// Name of the store that answered.
        backend: String,
        /// The key that was asked for.
        key: String,
    },

    /// The backend could not be reached or refused to serve the request.
    #[error("{backend}: unavailable: {reason}")]
    Unavailable {
        /// Name of the store that failed.
        backend: String,
        /// What went wrong, as reported by the transport or the server.
        reason: String,
    },

    /// The backend did not answer within the allowed time.
    #[error("{backend}: timed out after {after:?}")]
    Timeout {
        /// Name of the store that timed out.
        backend: String,
        /// How long the caller waited.
        after: Duration,
    },

    /// Bytes arrived but failed a check (wrong length, failed hash, failed
    /// verifier); they must be treated as missing.
    #[error("{backend}: corrupt data for {key:?}: {reason}")]
    Corrupt {
        /// Name of the store that served the bytes.
        backend: String,
        /// The key the bytes were read from.
        key: String,
        /// Which check failed.
        reason: String,
    },

    /// The key is not acceptable to the stores (empty, absolute, `..`,
    /// characters outside the allowed set, ...).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A ranged read asked for bytes that are not inside the object.
    #[error("{backend}: invalid range {start}..{end} for {key:?} (object size {size:?})")]
    InvalidRange {
        /// Name of the store that was asked.
        backend: String,
        /// The key of the object.
        key: String,
        /// First byte requested.
        start: u64,
        /// One past the last byte requested.
        end: u64,
        /// The object's size, when the store knows it.
        size: Option<u64>,
    },

    /// A local I/O error that is not one of the above (disk full, permission
    /// denied, ...).
    #[error("{backend}: I/O error on {key:?}: {source}")]
    Io {
        /// Name of the store.
        backend: String,
        /// The key (or path) involved.
        key: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The configuration is invalid or a store could not be built from it.
    #[error("configuration error: {0}")]
    Config(String),

    /// A fan-out write ended before enough backends acknowledged.
    #[error("write quorum not reached: {acked} of {needed} shards acknowledged; {failed} failed")]
    WriteQuorum {
        /// Shards acknowledged before giving up.
        acked: usize,
        /// The configured threshold.
        needed: usize,
        /// Shards whose write failed.
        failed: usize,
        /// Per-shard failures (shard index, error), for logging and repair.
        failures: Vec<(usize, Error)>,
    },

    /// A fan-out read could not gather enough verified shards.
    #[error("not enough shards: {got} verified of {needed} needed; {failed} failed")]
    NotEnoughShards {
        /// Verified ranges gathered before giving up.
        got: usize,
        /// How many are needed to decode.
        needed: usize,
        /// Requests that failed (including failed verification).
        failed: usize,
        /// Per-shard failures (shard index, error).
        failures: Vec<(usize, Error)>,
    },
}

impl Error {
    /// Whether the error says the object is absent (as opposed to the
    /// backend being unhealthy).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether retrying later, or asking another backend, may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Timeout { .. })
    }

    /// A short, stable name of the variant, for metrics and summaries.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::InvalidKey { .. } => ErrorKind::InvalidKey,
            Error::InvalidRange { .. } => ErrorKind::InvalidRange,
            Error::Io { .. } => ErrorKind::Io,
            Error::Config(_) => ErrorKind::Config,
            Error::WriteQuorum { .. } => ErrorKind::WriteQuorum,
            Error::NotEnoughShards { .. } => ErrorKind::NotEnoughShards,
        }
    }
}

/// The variant of an [`Error`] without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Timeout`].
    Timeout,
    /// See [`Error::Corrupt`].
    Corrupt,
    /// See [`Error::InvalidKey`].
    InvalidKey,
    /// See [`Error::InvalidRange`].
    InvalidRange,
    /// See [`Error::Io`].
    Io,
    /// See [`Error::Config`].
    Config,
    /// See [`Error::WriteQuorum`].
    WriteQuorum,
    /// See [`Error::NotEnoughShards`].
    NotEnoughShards,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::InvalidKey => "invalid-key",
            ErrorKind::InvalidRange => "invalid-range",
            ErrorKind::Io => "io",
            ErrorKind::Config => "config",
            ErrorKind::WriteQuorum => "write-quorum",
            ErrorKind::NotEnoughShards => "not-enough-shards",
        };
        f.write_str(s)
    }
}
