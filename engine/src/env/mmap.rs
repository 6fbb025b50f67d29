//! The memory map of the data file. All `unsafe` of the map lives here.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::unix::io::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::btree::PageSource;
use crate::error::Result;

/// A shared mapping of a file: read-only, or writable for `WRITEMAP`.
pub(crate) struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
    writable: bool,
    /// How far [`Mmap::fault_in`] has faulted the map in, in bytes;
    /// `usize::MAX` once the kernel has refused the request as unknown.
    faulted: AtomicUsize,
}

// SAFETY: the pointer stays valid until `Drop`, which needs exclusive
// access. Bytes are read through per-page slices of pages no writer
// changes while they are readable (LMDB's copy-on-write rule), and written
// only through `MapRun`s of pages no reader can reach.
unsafe impl Send for Mmap {}
// SAFETY: as above.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `file` shared, so writes by other processes (C
    /// LMDB writers) become visible; writable when `writable` is set, in
    /// which case writes must stay within the file's length (a write past
    /// its end raises SIGBUS).
    pub(crate) fn map(file: &File, len: usize, writable: bool) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh mapping at an address the kernel chooses; the file
        // descriptor is valid for the duration of the call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr,
            len,
            writable,
            faulted: AtomicUsize::new(0),
        })
    }

    /// Turns the kernel's read-ahead off for the map (`MDB_NORDAHEAD`): a
    /// fault then reads the one page, which serves random access to a
    /// database larger than memory better than reading its neighbours.
    pub(crate) fn advise_random(&self) -> io::Result<()> {
        // SAFETY: `ptr`/`len` are exactly the mapping `mmap` returned;
        // the advice changes no bytes.
        if unsafe { libc::madvise(self.ptr, self.len, libc::MADV_RANDOM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Asks the kernel to back the map with transparent huge pages
    /// (`MADV_HUGEPAGE`, see [`EnvBuilder::huge_pages`](super::EnvBuilder::huge_pages)).
    /// Advice only: a kernel without them refuses it, and the map works as
    /// before, so a refusal is no error.
    pub(crate) fn advise_huge_pages(&self) {
        // SAFETY: `ptr`/`len` are exactly the mapping `mmap` returned;
        // the advice changes no bytes.
        let _ = unsafe { libc::madvise(self.ptr, self.len, libc::MADV_HUGEPAGE) };
    }

    /// The pages of the map up to `valid` bytes, which must not exceed the
    /// file's length: touching a mapped page past the end of the file would
    /// raise SIGBUS, so callers bound every view by the size they measured.
    pub(crate) fn view(&self, valid: usize, page_size: usize) -> MapSource<'_> {
        MapSource {
            base: self.ptr as *const u8,
            len: valid.min(self.len),
            page_size,
            _map: PhantomData,
        }
    }

    /// `len` bytes at `off` of a writable map, for the write transaction to
    /// fill in place; `None` if the map is read-only or the range does not
    /// fit. The caller asks only for pages it allocated: pages past the end
    /// of every snapshot, or reclaimed from free-DB records older than every
    /// reader. No reader can reach those, and the writer holds one run per
    /// page, so the run's bytes are its alone.
    pub(crate) fn run_mut(&self, off: usize, len: usize) -> Option<MapRun> {
        if !self.writable || off.checked_add(len).is_none_or(|end| end > self.len) {
            return None;
        }
        // SAFETY: `off + len <= self.len`, so the pointer stays inside the
        // mapping, which is not null.
        let ptr = unsafe { (self.ptr as *mut u8).add(off) };
        Some(MapRun {
            ptr: NonNull::new(ptr)?,
            len,
        })
    }

    /// Faults in the bytes `off..off + len` of a writable map for writing,
    /// and `ahead` bytes after them, in one system call
    /// (`MADV_POPULATE_WRITE`), unless an earlier call reached that far.
    /// For pages past the end of the data: the writer's stores there would
    /// otherwise each take a page fault, which in a sparse file also has
    /// the kernel read around the page and allocate its block, one page at
    /// a time.
    ///
    /// An error means the kernel could not back the asked pages (ENOSPC on
    /// a full disk): a store there would have raised SIGBUS. A kernel
    /// without the request (before Linux 5.14) leaves the faults to the
    /// stores, as before.
    pub(crate) fn fault_in(&self, off: usize, len: usize, ahead: usize) -> io::Result<()> {
        let Some(end) = off.checked_add(len).filter(|&e| e <= self.len) else {
            return Ok(());
        };
        if !self.writable || end <= self.faulted.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The request takes whole pages of the system's.
        let off = off - off % os_page_size();
        let len = end - off;
        let wide = end.saturating_add(ahead).min(self.len);
        // Ahead of need, the pages are a bonus: if the disk cannot hold
        // them, ask again for just the pages needed.
        let done = match self.populate_write(off, wide - off) {
            Ok(()) => wide,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.faulted.store(usize::MAX, Ordering::Relaxed);
                return Ok(());
            }
            Err(_) => {
                self.populate_write(off, len).map_err(|e| {
                    // EFAULT: a store would have raised SIGBUS, which for
                    // pages inside the file means the file system could not
                    // allocate them, what `pwrite` reports as ENOSPC.
                    match e.raw_os_error() {
                        Some(libc::EFAULT) => io::Error::from_raw_os_error(libc::ENOSPC),
                        _ => e,
                    }
                })?;
                end
            }
        };
        self.faulted.fetch_max(done, Ordering::Relaxed);
        Ok(())
    }

    fn populate_write(&self, off: usize, len: usize) -> io::Result<()> {
        // SAFETY: `off + len <= self.len` (checked by the caller), so the
        // range lies inside the mapping, which is writable; faulting pages
        // in changes none of their bytes.
        let r = unsafe {
            libc::madvise(
                (self.ptr as *mut u8).add(off).cast(),
                len,
                libc::MADV_POPULATE_WRITE,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Flushes the whole map to disk (`msync`), waiting for the writes
    /// unless `wait` is false.
    pub(crate) fn flush(&self, wait: bool) -> io::Result<()> {
        let flags = if wait { libc::MS_SYNC } else { libc::MS_ASYNC };
        // SAFETY: `ptr`/`len` are exactly the mapping `mmap` returned.
        if unsafe { libc::msync(self.ptr, self.len, flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes at `off` with volatile reads, for data that
    /// another process may be writing (the meta pages).
    pub(crate) fn read_volatile(&self, off: usize, buf: &mut [u8]) -> bool {
        if off.checked_add(buf.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        let base = self.ptr as *const u8;
        // Whole aligned words where the bytes allow (the meta pages start
        // pages), then byte by byte: a byte loop over both metas was a
        // tenth of a one-put transaction.
        let mut i = 0;
        if (base as usize + off) % 8 == 0 {
            while i + 8 <= buf.len() {
                // SAFETY: `off + i + 8 <= len`, checked above, so the read
                // is inside the mapping, and 8-aligned since the mapping
                // and `off + i` are; volatile because a writer may change
                // the word.
                let w = unsafe { std::ptr::read_volatile(base.add(off + i).cast::<u64>()) };
                buf[i..i + 8].copy_from_slice(&w.to_ne_bytes());
                i += 8;
            }
        }
        for (j, b) in buf.iter_mut().enumerate().skip(i) {
            // SAFETY: `off + j < len`, checked above, so the read is inside
            // the mapping; volatile because a writer may change the byte.
            *b = unsafe { std::ptr::read_volatile(base.add(off + j)) };
        }
        true
    }

    /// Stores `bytes` at `off` of a writable map with volatile stores, the
    /// last 8 bytes (a meta page's txnid) last, as one aligned word after a
    /// release fence: LMDB's order for a meta page written in place, which
    /// readers of other processes rely on as they read the map. The rest
    /// goes a word at a time where it starts aligned, else a byte at a
    /// time. Returns false if the map is read-only or the range does not
    /// fit or the last word is not aligned.
    pub(crate) fn store_volatile_last_word(&self, off: usize, bytes: &[u8]) -> bool {
        let Some(body) = bytes.len().checked_sub(8) else {
            return false;
        };
        let base = self.ptr as *mut u8;
        let fits = off
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.len);
        if !self.writable || !fits || (base as usize + off + body) % 8 != 0 {
            return false;
        }
        let words = if (base as usize + off) % 8 == 0 {
            body / 8
        } else {
            0
        };
        for (i, w) in bytes[..words * 8].chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            // SAFETY: `off + 8 * i + 8 <= off + body <= len`, checked above,
            // so the store is inside the writable mapping, and aligned since
            // `base + off` is; volatile because readers of other processes
            // may read the word meanwhile.
            unsafe {
                std::ptr::write_volatile(
                    base.add(off + 8 * i).cast::<u64>(),
                    u64::from_ne_bytes(word),
                )
            };
        }
        for (i, &b) in bytes[..body].iter().enumerate().skip(words * 8) {
            // SAFETY: `off + i < off + body <= len`, checked above, so the
            // store is inside the writable mapping; volatile because
            // readers of other processes may read the byte meanwhile.
            unsafe { std::ptr::write_volatile(base.add(off + i), b) };
        }
        std::sync::atomic::fence(Ordering::Release);
        let mut last = [0u8; 8];
        last.copy_from_slice(&bytes[body..]);
        // SAFETY: `off + body + 8 <= len` and 8-aligned, checked above.
        unsafe {
            std::ptr::write_volatile(base.add(off + body).cast::<u64>(), u64::from_ne_bytes(last))
        };
        true
    }

    /// The mapping's address (`me_map`), for environment info.
    pub(crate) fn addr(&self) -> usize {
        self.ptr as usize
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned; no borrow of
        // the bytes outlives `self`.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Pages of the memory map, bounded by the snapshot's last page and the
/// file's length. Each page is lent out on its own, never the map as a
/// whole: a writable map changes in places no snapshot reads, and a slice
/// over those places would claim they do not change.
#[derive(Clone, Copy)]
pub struct MapSource<'env> {
    base: *const u8,
    len: usize,
    page_size: usize,
    _map: PhantomData<&'env [u8]>,
}

// SAFETY: a view only lends shared slices of pages that do not change while
// it lives (LMDB's copy-on-write rule), as a `&[u8]` would.
unsafe impl Send for MapSource<'_> {}
// SAFETY: as above.
unsafe impl Sync for MapSource<'_> {}

impl core::fmt::Debug for MapSource<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MapSource")
            .field("len", &self.len)
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl<'env> MapSource<'env> {
    /// `count` pages from `pgno`, borrowed for as long as the map lives.
    #[inline]
    pub fn page_bytes(&self, pgno: u64, count: u64) -> Result<&'env [u8]> {
        let r = crate::snapshot::page_span(pgno, count, self.page_size, self.len)?;
        // SAFETY: `r` lies inside the mapping (`len` does not exceed it),
        // which outlives `'env`; the pages of a snapshot are not written
        // while a reader of it lives (copy-on-write).
        Ok(unsafe { std::slice::from_raw_parts(self.base.add(r.start), r.len()) })
    }

    /// Bytes of the map the view covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PageSource for MapSource<'_> {
    #[inline]
    fn page_size(&self) -> usize {
        self.page_size
    }

    #[inline]
    fn pages(&self, pgno: u64, count: u64) -> Result<&[u8]> {
        self.page_bytes(pgno, count)
    }
}

/// Pages of a writable map that the write transaction fills in place
/// (`WRITEMAP`). Not `Clone`: one run per page, so its bytes have one owner.
pub(crate) struct MapRun {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a run is an exclusive claim on bytes of a `Sync` mapping, like a
// `&mut [u8]`, which may move to another thread.
unsafe impl Send for MapRun {}

impl MapRun {
    /// The run's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `Mmap::run_mut` checked that `ptr..ptr + len` lies in the
        // mapping, which outlives the write transaction holding the run;
        // no one else reads or writes these pages (see `run_mut`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The run's bytes, to write.
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// The operating system's page size: LMDB's default page size.
pub(crate) fn os_page_size() -> usize {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n >= crate::format::MIN_PAGE_SIZE as libc::c_long
        && n <= crate::format::MAX_PAGE_SIZE as libc::c_long
    {
        n as usize
    } else {
        4096
    }
}
