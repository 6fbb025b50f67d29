//! Positional vectored writes (`pwritev`), which std lacks on stable. All
//! `unsafe` of writing through the data file (not the map) lives here.

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
