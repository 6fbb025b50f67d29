//! A commit's pages copied into the data file through a second, writable
//! map, where C LMDB without `WRITEMAP` calls `pwrite` for each run of
//! neighbouring pages.
//!
//! A small transaction writes a hundred scattered pages, and each `pwrite`
//! pays a system call and the file system's write path; a store through a
//! map pays a page fault only when the page is first written after the
//! kernel last wrote it back. Everything else stays as without `WRITEMAP`:
//! the map readers use is read-only, and nothing reaches the file before
//! the commit.
//!
//! A store through a map has no error return: it raises SIGBUS where a
//! `pwrite` would fail. So the map is used only where it cannot fail: on
//! file systems that overwrite allocated blocks in place
//! ([`fileio::overwrites_in_place`]), in blocks allocated beforehand
//! ([`CommitMap::reserve`]; pages it cannot allocate go out with `pwrite`,
//! which returns the error), and only for pages the caller expects in the
//! page cache: a store to a page that is not there reads it from disk
//! first, which a `pwrite` of the whole page does not.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fileio;
use super::mmap::Mmap;
use crate::error::Result;

/// The writable map of the data file that commits copy pages through.
pub(crate) struct CommitMap {
    map: Mmap,
    /// Bytes from the start of the file that have blocks allocated, as far
    /// as this process knows; changed only by the writer.
    allocated: AtomicU64,
}

impl CommitMap {
    /// Maps `len` bytes of `file` for commits to copy pages through, or
    /// `None` if the file system does not qualify, or the address space
    /// has no room for a second map of the map size (commits then use
    /// `pwrite`).
    pub(crate) fn open(file: &File, len: usize) -> Option<CommitMap> {
        if !fileio::overwrites_in_place(file) {
            return None;
        }
        let map = Mmap::map(file, len, true).ok()?;
        // A fault reads no neighbours: the pages written are scattered, and
        // whole, so read-around would only fill the cache with others.
        map.advise_random().ok()?;
        Some(CommitMap {
            map,
            // Nothing is known yet: a file written by C LMDB under
            // WRITEMAP has holes wherever it never wrote.
            allocated: AtomicU64::new(0),
        })
    }

    /// Makes sure the file has blocks for its first `end` bytes, extending
    /// it if it is shorter. Called by the writer, before its copies.
    pub(crate) fn reserve(&self, file: &File, end: u64) -> Result<()> {
        // C LMDB under WRITEMAP truncates the file to its map size when it
        // opens it, which may be below what this process allocated.
        let len = file.metadata()?.len();
        let have = self.allocated.load(Ordering::Acquire).min(len);
        if end > have {
            fileio::allocate(file, have, end - have)?;
        }
        self.allocated.store(have.max(end), Ordering::Release);
        Ok(())
    }

    /// Copies `bytes` into the file at `off`, which must hold only pages
    /// the write transaction allocated (so no snapshot reads them).
    /// Returns false, copying nothing, if the range is outside the map or
    /// past what [`CommitMap::reserve`] allocated.
    pub(crate) fn copy(&self, off: u64, bytes: &[u8]) -> bool {
        let end = off.saturating_add(bytes.len() as u64);
        if end > self.allocated.load(Ordering::Acquire) {
            return false;
        }
        let Ok(off) = usize::try_from(off) else {
            return false;
        };
        match self.map.run_mut(off, bytes.len()) {
            Some(mut run) => {
                run.bytes_mut().copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "fstatfs, mmap and fallocate are foreign calls Miri does not run"
    )]
    fn copies_stay_within_blocks_reserved_since_the_file_last_shrank() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("create");
        let Some(m) = CommitMap::open(&file, 1 << 16) else {
            return; // not a file system stores through a map are safe on
        };
        let page = [7u8; 4096];
        assert!(!m.copy(0, &page), "nothing reserved yet");
        m.reserve(&file, 2 * 4096).expect("reserve");
        assert_eq!(file.metadata().expect("len").len(), 2 * 4096);
        assert!(m.copy(4096, &page));
        assert!(!m.copy(2 * 4096, &page), "past the reserved end");
        // Shortened behind the writer's back: what was reserved beyond the
        // new end is gone, and a copy there would raise SIGBUS.
        file.set_len(4096).expect("truncate");
        m.reserve(&file, 4096).expect("reserve");
        assert!(!m.copy(4096, &page), "cut off by the truncation");
        m.reserve(&file, 2 * 4096).expect("reserve again");
        assert!(m.copy(4096, &page));
        let mut back = [0u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut back, 4096).expect("read");
        assert_eq!(back, page, "the copy is the file's content");
    }
}
