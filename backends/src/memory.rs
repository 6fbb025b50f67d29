//! A store that keeps objects in memory.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::RwLock;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::store::{check_nonempty, check_range, validate_key, validate_prefix};
use crate::store::{Health, ObjectInfo, ShardStore};

/// Objects in a sorted map behind a lock. Puts are atomic because the map
/// swaps whole `Bytes` values; reads share the stored buffer (no copy).
#[derive(Debug)]
pub struct MemoryStore {
    name: String,
    objects: RwLock<BTreeMap<String, Bytes>>,
}

impl MemoryStore {
    /// An empty store called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryStore {
            name: name.into(),
            objects: RwLock::new(BTreeMap::new()),
        }
    }

    /// Number of objects held.
    pub fn len(&self) -> usize {
        self.read_map().len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.read_map().is_empty()
    }

    /// Total bytes held.
    pub fn bytes_stored(&self) -> u64 {
        self.read_map().values().map(|v| v.len() as u64).sum()
    }

    // A panic while holding the lock cannot leave the map half-updated
    // (every mutation is a single insert or remove), so poisoning is ignored.
    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, key: &str) -> Result<Bytes> {
        validate_key(key)?;
        self.read_map()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                backend: self.name.clone(),
                key: key.to_owned(),
            })
    }
}

#[async_trait]
impl ShardStore for MemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key)?;
        self.write_map().insert(key.to_owned(), data);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.lookup(key)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        check_nonempty(&self.name, key, &range)?;
        let data = self.lookup(key)?;
        check_range(&self.name, key, &range, data.len() as u64)?;
        // check_range bounded both ends by the length, which is a usize.
        Ok(data.slice(range.start as usize..range.end as usize))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.write_map().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        validate_prefix(prefix)?;
        Ok(self
            .read_map()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectInfo {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    async fn health(&self) -> Result<Health> {
        let start = Instant::now();
        drop(self.read_map());
        Ok(Health {
            latency: start.elapsed(),
        })
    }
}
