//! Asks the kernel whether another process holds an `fcntl` lock on a byte
//! of the lock file. LMDB uses such locks to tell whether an environment
//! is in use (byte 0) and whether a reader's process is alive (the byte at
//! the offset of its pid). Probing with `F_GETLK` takes no lock and
//! changes nothing.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether a process other than this one holds a lock that overlaps byte
/// `offset` of `file` (so that a write lock there would be refused).
/// Errors count as "not locked", the answer LMDB acts on in that case.
pub fn locked_by_other(file: &File, offset: i64) -> bool {
    // SAFETY: `flock` is a plain C struct of integers, for which all-zero
    // bytes are a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset as libc::off_t;
    fl.l_len = 1;
    loop {
        // SAFETY: the descriptor is open for the lifetime of `file`, and
        // `fl` is a valid, exclusively borrowed `flock` that F_GETLK fills.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
        if rc == 0 {
            return fl.l_type != libc::F_UNLCK as libc::c_short;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}
