//! Positional vectored writes (`pwritev`), block allocation (`fallocate`)
//! and the file system's kind (`fstatfs`), which std lacks. All `unsafe`
//! of writing through the data file (not the map) lives here.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::io::AsRawFd;

/// Most buffers one call takes (`IOV_MAX` on Linux, macOS and the BSDs).
const IOV_MAX: usize = 1024;

/// Writes all of `bufs` at `offset` in one system call when the kernel
/// takes them whole, as LMDB's `mdb_page_flush` does for a run of
/// neighbouring pages. Unlike a seek and a `writev` it costs one call, not
/// two, and leaves the file position alone.
pub(crate) fn write_all_at(
    file: &File,
    mut bufs: &mut [IoSlice<'_>],
    offset: u64,
) -> io::Result<()> {
    let mut offset = offset;
    while !bufs.is_empty() {
        let count = bufs.len().min(IOV_MAX) as libc::c_int;
        let at =
            libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (std
        // documents it), `count` of them are readable for the duration of
        // the call, and each points at a live borrowed buffer of its
        // length. The kernel only reads them.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                bufs.as_ptr().cast::<libc::iovec>(),
                count,
                at,
            )
        };
        match n {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n if n > 0 => {
                offset += n as u64;
                IoSlice::advance_slices(&mut bufs, n as usize);
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Whether a store through a writable shared map of `file` can fail only
/// where a `pwrite` would, once the file's blocks are allocated: so on the
/// file systems that overwrite allocated blocks in place (ext2/3/4 and
/// tmpfs). Copy-on-write file systems (btrfs, ZFS, XFS with shared
/// extents) need new space on every overwrite, and network ones a server:
/// a store that finds neither raises SIGBUS instead of returning an error.
#[cfg(target_os = "linux")]
pub(crate) fn overwrites_in_place(file: &File) -> bool {
    // SAFETY: `statfs` is a plain C struct, for which all zeroes is a value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is valid for the call and `st` is a live,
    // writable `statfs` the kernel fills in.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    // `f_type` and the magic numbers are `long` on some targets and
    // `unsigned int` on others: compared as one wide type.
    #[allow(clippy::unnecessary_cast)]
    let kind = st.f_type as i64;
    #[allow(clippy::unnecessary_cast)]
    let qualifies = kind == libc::EXT4_SUPER_MAGIC as i64 || kind == libc::TMPFS_MAGIC as i64;
    qualifies
}

/// See the Linux version: elsewhere no file system is known to qualify.
#[cfg(not(target_os = "linux"))]
pub(crate) fn overwrites_in_place(_file: &File) -> bool {
    false
}

/// Allocates the file's blocks for `len` bytes at `offset`, extending the
/// file if it is shorter (`fallocate` with no flags): afterwards stores
/// through a map there cannot find the disk full.
#[cfg(target_os = "linux")]
pub(crate) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let too_big = || io::Error::from_raw_os_error(libc::EFBIG);
    let at = libc::off_t::try_from(offset).map_err(|_| too_big())?;
    let len = libc::off_t::try_from(len).map_err(|_| too_big())?;
    loop {
        // SAFETY: the descriptor is valid for the call; no memory is passed.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, at, len) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// See the Linux version; never called elsewhere, as no file system
/// qualifies for stores through a map there.
#[cfg(not(target_os = "linux"))]
pub(crate) fn allocate(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}
