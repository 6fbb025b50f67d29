//! A store that keeps each object as a file under one directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::store::{check_nonempty, check_range, validate_key, validate_prefix};
use crate::store::{Health, ObjectInfo, ShardStore};

/// Where partially written objects wait before their rename. It lives inside
/// the root so the rename never crosses a filesystem, and its leading dot
/// keeps it out of the key space (see [`validate_key`]).
const STAGING: &str = ".staging";

/// Objects as files: key `a/b/c` is the file `ROOT/a/b/c`.
///
/// As on any filesystem, a key cannot be both an object and a directory on
/// the way to other objects (`a` and `a/b` cannot coexist); such a put
/// fails with [`Error::Io`]. The lake's own key scheme never does this.
///
/// A put writes a temporary file under `ROOT/.staging`, fsyncs it, renames it
/// into place and fsyncs the directory, so after a crash an object is either
/// whole or absent. Ranged reads use positioned reads on one open file
/// descriptor, so a concurrent replacement cannot mix two versions.
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    root: PathBuf,
    staging: PathBuf,
    fsync: bool,
    counter: AtomicU64,
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`, and removes
    /// temporary files left by an interrupted put.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(root, true)
    }

    /// Like [`open`](Self::open), with the fsyncs of
    /// [`put`](ShardStore::put) switched on or off.
    ///
    /// Without them a put is still atomic but may be lost on power failure;
    /// meant for tests and throw-away lakes.
    pub fn open_with(root: impl AsRef<Path>, fsync: bool) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let name = format!("local:{}", root.display());
        let staging = root.join(STAGING);
        let io_err = |source| Error::Io {
            backend: name.clone(),
            key: String::new(),
            source,
        };
        fs::create_dir_all(&staging).map_err(io_err)?;
        for entry in fs::read_dir(&staging).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            // Leftovers are garbage by construction; failing to remove one
            // only wastes space, so it must not stop the store from opening.
            let _ = fs::remove_file(entry.path());
        }
        Ok(LocalStore {
            inner: Arc::new(Inner {
                name,
                root,
                staging,
                fsync,
                counter: AtomicU64::new(0),
            }),
        })
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T, F>(&self, key: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Unavailable {
                backend: self.inner.name.clone(),
                reason: format!("I/O task for {key:?} failed: {e}"),
            })?
    }
}

impl Inner {
    fn path_of(&self, key: &str) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.split('/'));
        path
    }

    fn map_io(&self, key: &str, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            // A missing root means the disk or mount is gone, which is an
            // outage of this backend, not a statement about the object.
            if !self.root.is_dir() {
                return Error::Unavailable {
                    backend: self.name.clone(),
                    reason: format!("root directory {} is missing", self.root.display()),
                };
            }
            return Error::NotFound {
                backend: self.name.clone(),
                key: key.to_owned(),
            };
        }
        Error::Io {
            backend: self.name.clone(),
            key: key.to_owned(),
            source: e,
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path_of(key);
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        let new_dirs = !parent.is_dir();
        if new_dirs {
            fs::create_dir_all(&parent).map_err(|e| self.map_io(key, e))?;
        }
        let tmp = self.staging.join(format!(
            "{}-{}.tmp",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.write_and_rename(&tmp, &path, data);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| self.map_io(key, e))?;
        if self.fsync {
            // The rename is durable only once the directory holding the new
            // entry is synced; directories just created need their own
            // entries synced in their parents as well.
            let mut dir = parent.as_path();
            loop {
                sync_dir(dir).map_err(|e| self.map_io(key, e))?;
                if !new_dirs || dir == self.root {
                    break;
                }
                match dir.parent() {
                    Some(p) if p.starts_with(&self.root) => dir = p,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    fn write_and_rename(&self, tmp: &Path, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        file.write_all(data)?;
        if self.fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(tmp, path)
    }

    /// Opens the object's file; a directory at that path (a key that is
    /// only a prefix of other keys) is not an object.
    fn open_object(&self, key: &str) -> Result<File> {
        let file = File::open(self.path_of(key)).map_err(|e| self.map_io(key, e))?;
        let meta = file.metadata().map_err(|e| self.map_io(key, e))?;
        if !meta.is_file() {
            return Err(Error::NotFound {
                backend: self.name.clone(),
                key: key.to_owned(),
            });
        }
        Ok(file)
    }

    fn get(&self, key: &str) -> Result<Bytes> {
        let mut file = self.open_object(key)?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)
            .map_err(|e| self.map_io(key, e))?;
        Ok(Bytes::from(buf))
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let file = self.open_object(key)?;
        let size = file.metadata().map_err(|e| self.map_io(key, e))?.len();
        check_range(&self.name, key, &range, size)?;
        let len = usize::try_from(range.end - range.start).map_err(|_| Error::InvalidRange {
            backend: self.name.clone(),
            key: key.to_owned(),
            start: range.start,
            end: range.end,
            size: Some(size),
        })?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, range.start)
            .map_err(|e| self.map_io(key, e))?;
        Ok(Bytes::from(buf))
    }

    fn delete(&self, key: &str) -> Result<()> {
        match fs::remove_file(self.path_of(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.root.is_dir() => Ok(()),
            Err(e) => Err(self.map_io(key, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Only the directory named by the prefix's complete segments can
        // hold matches; start the walk there instead of at the root.
        let (dir_part, start) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], self.path_of(&prefix[..i])),
            None => ("", self.root.clone()),
        };
        if !self.root.is_dir() {
            return Err(self.map_io(prefix, io::ErrorKind::NotFound.into()));
        }
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned())];
        while let Some((dir, key_prefix)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.map_io(prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.map_io(prefix, e))?;
                let file_name = entry.file_name();
                let Some(name) = file_name.to_str() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let key = if key_prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{key_prefix}/{name}")
                };
                let file_type = entry.file_type().map_err(|e| self.map_io(&key, e))?;
                if file_type.is_dir() {
                    // Descend only where the prefix can still match.
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        stack.push((entry.path(), key));
                    }
                } else if file_type.is_file() && key.starts_with(prefix) {
                    if validate_key(&key).is_err() {
                        continue;
                    }
                    let size = entry.metadata().map_err(|e| self.map_io(&key, e))?.len();
                    out.push(ObjectInfo { key, size });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn health(&self) -> Result<Health> {
        let start = Instant::now();
        if !self.root.is_dir() {
            return Err(Error::Unavailable {
                backend: self.name.clone(),
                reason: format!("root directory {} is missing", self.root.display()),
            });
        }
        // A write probe catches read-only remounts and full disks, which a
        // metadata check would miss.
        let probe = self.staging.join(format!(
            "health-{}-{}.tmp",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let result = fs::write(&probe, b"ok").and_then(|()| fs::remove_file(&probe));
        result.map_err(|e| Error::Unavailable {
            backend: self.name.clone(),
            reason: format!("write probe failed: {e}"),
        })?;
        Ok(Health {
            latency: start.elapsed(),
        })
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl ShardStore for LocalStore {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key)?;
        let k = key.to_owned();
        self.blocking(key, move |inner| inner.put(&k, &data)).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        validate_key(key)?;
        let k = key.to_owned();
        self.blocking(key, move |inner| inner.get(&k)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        validate_key(key)?;
        check_nonempty(&self.inner.name, key, &range)?;
        let k = key.to_owned();
        self.blocking(key, move |inner| inner.get_range(&k, range))
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let k = key.to_owned();
        self.blocking(key, move |inner| inner.delete(&k)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        validate_prefix(prefix)?;
        let p = prefix.to_owned();
        self.blocking(prefix, move |inner| inner.list(&p)).await
    }

    async fn health(&self) -> Result<Health> {
        self.blocking("", |inner| inner.health()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_land_where_keys_say_and_staging_is_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store
            .put("seg/01/shard-3", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("seg/01/shard-3")).unwrap(),
            b"hello"
        );
        assert_eq!(fs::read_dir(dir.path().join(STAGING)).unwrap().count(), 0);
        let listed = store.list("").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "seg/01/shard-3");
    }

    #[tokio::test]
    async fn reopen_clears_leftover_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        drop(LocalStore::open(dir.path()).unwrap());
        fs::write(dir.path().join(STAGING).join("999-1.tmp"), b"half").unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join(STAGING)).unwrap().count(), 0);
        assert!(store.list("").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn missing_root_is_an_outage_not_a_missing_object() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("b0");
        let store = LocalStore::open(&root).unwrap();
        store.put("k", Bytes::from_static(b"v")).await.unwrap();
        fs::remove_dir_all(&root).unwrap();
        let err = store.get("k").await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        assert!(store.health().await.is_err());
    }

    #[tokio::test]
    async fn a_directory_is_not_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.put("a/b", Bytes::from_static(b"x")).await.unwrap();
        assert!(store.get("a").await.unwrap_err().is_not_found());
        assert!(store.get_range("a", 0..1).await.unwrap_err().is_not_found());
        let err = store.put("a", Bytes::from_static(b"y")).await.unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert_eq!(store.get("a/b").await.unwrap(), &b"x"[..]);
    }

    #[tokio::test]
    async fn traversal_keys_are_rejected_before_touching_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("b")).unwrap();
        for key in ["../escape", "/etc/passwd", "a/../../b", ".staging/x"] {
            let err = store.put(key, Bytes::from_static(b"x")).await.unwrap_err();
            assert!(matches!(err, Error::InvalidKey { .. }), "{key}: {err}");
        }
        assert!(!dir.path().join("escape").exists());
    }
}
