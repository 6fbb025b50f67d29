//! The shard-store trait and the key rules every store shares.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};

/// One object as reported by [`ShardStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key, as it was given to [`ShardStore::put`].
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a successful health probe measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Time the probe took, a rough round-trip figure.
    pub latency: Duration,
}

/// A place where shards live: one backend of the lake.
///
/// Keys are relative, `/`-separated paths made of the characters
/// `A-Z a-z 0-9 - _ . =`; no segment may be empty or begin with `.` (see
/// [`validate_key`]). Every store applies the same rules, so a key that works
/// on one store works on all of them.
///
/// All methods are cancel-safe in the sense the fan-out needs: dropping a
/// future never leaves a partially written object visible. A cancelled
/// [`put`](ShardStore::put) may still complete in the background (the bytes
/// are already on their way), in which case the whole object appears.
#[async_trait]
pub trait ShardStore: Send + Sync + std::fmt::Debug {
    /// A short name for logs and errors (e.g. `local:/lake/b007`).
    fn name(&self) -> &str;

    /// Stores `data` under `key`, replacing any previous object.
    ///
    /// Atomic: a concurrent or later reader sees either the old object, or
    /// no object, or all of `data`, never a mix. Durable when it returns
    /// (for stores that have durability).
    async fn put(&self, key: &str, data: Bytes) -> Result<()>;

    /// Reads the whole object.
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// Reads bytes `range.start..range.end` of the object.
    ///
    /// The range must be non-empty and lie inside the object; otherwise the
    /// result is [`Error::InvalidRange`]. A store never returns fewer bytes
    /// than asked for.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;

    /// Removes the object. Removing an absent object succeeds, so deletes
    /// can be retried freely.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Lists every object whose key starts with `prefix` (a plain string
    /// prefix, not necessarily ending at a `/`), sorted by key. An empty
    /// prefix lists everything.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Checks that the backend is reachable and usable.
    async fn health(&self) -> Result<Health>;
}

/// A shared store is a store: lets `Arc<dyn ShardStore>` and `Arc<S>` be
/// used wherever a store is expected (fault wrappers, the fan-out).
#[async_trait]
impl<T: ShardStore + ?Sized> ShardStore for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        (**self).put(key, data).await
    }
    async fn get(&self, key: &str) -> Result<Bytes> {
        (**self).get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        (**self).get_range(key, range).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        (**self).delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        (**self).list(prefix).await
    }
    async fn health(&self) -> Result<Health> {
        (**self).health().await
    }
}

const MAX_KEY_LEN: usize = 1024;

/// Checks a key against the rules every store applies.
///
/// Rejected: empty keys, keys longer than 1024 bytes, absolute keys,
/// empty segments (`a//b`, trailing `/`), segments starting with `.` (this
/// covers `.` and `..` and keeps names that stores use for their own
/// temporary files out of the key space), and any character outside
/// `A-Z a-z 0-9 - _ . = /`.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("empty path segment");
        }
        if segment.starts_with('.') {
            return bad("path segment starts with '.'");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
        {
            return bad("character outside [A-Za-z0-9._=-]");
        }
    }
    Ok(())
}

/// Checks a list prefix: like a key, except that it may be empty and may end
/// with `/` or in the middle of a segment.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    validate_key(trimmed).map_err(|_| Error::InvalidKey {
        key: prefix.to_owned(),
        reason: "invalid list prefix",
    })
}

/// Checks that `range` is non-empty and inside an object of `size` bytes.
pub(crate) fn check_range(backend: &str, key: &str, range: &Range<u64>, size: u64) -> Result<()> {
    if range.start >= range.end || range.end > size {
        return Err(Error::InvalidRange {
            backend: backend.to_owned(),
            key: key.to_owned(),
            start: range.start,
            end: range.end,
            size: Some(size),
        });
    }
    Ok(())
}

/// Rejects empty ranges before any I/O.
pub(crate) fn check_nonempty(backend: &str, key: &str, range: &Range<u64>) -> Result<()> {
    if range.start >= range.end {
        return Err(Error::InvalidRange {
            backend: backend.to_owned(),
            key: key.to_owned(),
            start: range.start,
            end: range.end,
            size: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "seg/0000/shard-007", "x=1/y_2/z-3.bin", "a.b"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "../x",
            "a/../b",
            "a/./b",
            ".hidden",
            "a/.tmp",
            "sp ace",
            "back\\slash",
            "nul\0",
            "ü",
        ] {
            let err = validate_key(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidKey { .. }), "{bad}: {err}");
        }
        assert!(validate_key(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a", "a/", "seg/00", "seg/0000/"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["/", "/a", "a//", "..", "a/../"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert!(check_range("t", "k", &(0..10), 10).is_ok());
        assert!(check_range("t", "k", &(9..10), 10).is_ok());
        assert!(check_range("t", "k", &(5..5), 10).is_err());
        assert!(check_range("t", "k", &(5..11), 10).is_err());
        assert!(check_range("t", "k", &(10..11), 10).is_err());
    }
}
