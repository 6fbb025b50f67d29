//! The memory map of the data file. All `unsafe` of the map lives here.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// A read-only shared mapping of a file.
pub(crate) struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is only read through shared references, and the
// pointer stays valid until `Drop`, which needs exclusive access.
unsafe impl Send for Mmap {}
// SAFETY: as above; concurrent reads of a shared read-only mapping are sound.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `file` read-only and shared, so writes by other
    /// processes (C LMDB writers) become visible.
    pub(crate) fn map(file: &File, len: usize) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping at an address the kernel chooses; the file
        // descriptor is valid for the duration of the call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap { ptr, len })
    }

    /// The mapped bytes up to `valid`, which must not exceed the file's
    /// length: touching a mapped page past the end of the file would raise
    /// SIGBUS, so callers bound every view by the size they measured.
    pub(crate) fn bytes(&self, valid: usize) -> &[u8] {
        let n = valid.min(self.len);
        // SAFETY: `ptr` maps `len >= n` readable bytes for the life of
        // `self`. Pages a reader can reach are never written while its
        // snapshot is live (LMDB's copy-on-write rule), so the slice does not
        // change under the borrow.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, n) }
    }

    /// Copies `buf.len()` bytes at `off` with volatile reads, for data that
    /// another process may be writing (the meta pages).
    pub(crate) fn read_volatile(&self, off: usize, buf: &mut [u8]) -> bool {
        if off.checked_add(buf.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        let base = self.ptr as *const u8;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `off + i < len`, checked above, so the read is inside
            // the mapping; volatile because a writer may change the byte.
            *b = unsafe { std::ptr::read_volatile(base.add(off + i)) };
        }
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
