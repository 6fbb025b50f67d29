//! Error codes returned by C LMDB.

use std::ffi::CStr;
use std::fmt;

use crate::ffi;

/// An error returned by a C LMDB call: the raw return code, unchanged.
///
/// LMDB's own codes are negative (`MDB_KEYEXIST` = -30799 ... `MDB_BAD_DBI` =
/// -30780); positive codes are `errno` values (`EINVAL`, `EACCES`, `ENOENT`,
/// `ENOMEM`, ...), exactly as C returned them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// The raw return code of the C function.
    pub code: i32,
}

/// Result type of every fallible call in this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `MDB_KEYEXIST`: key/data pair already exists.
    pub const KEYEXIST: i32 = ffi::MDB_KEYEXIST;
    /// `MDB_NOTFOUND`: key/data pair not found (EOF).
    pub const NOTFOUND: i32 = ffi::MDB_NOTFOUND;
    /// `MDB_PAGE_NOTFOUND`: requested page not found (usually corruption).
    pub const PAGE_NOTFOUND: i32 = ffi::MDB_PAGE_NOTFOUND;
    /// `MDB_CORRUPTED`: located page was of the wrong type.
    pub const CORRUPTED: i32 = ffi::MDB_CORRUPTED;
    /// `MDB_PANIC`: update of meta page failed or environment had a fatal error.
    pub const PANIC: i32 = ffi::MDB_PANIC;
    /// `MDB_VERSION_MISMATCH`: environment version mismatch.
    pub const VERSION_MISMATCH: i32 = ffi::MDB_VERSION_MISMATCH;
    /// `MDB_INVALID`: file is not a valid LMDB file.
    pub const INVALID: i32 = ffi::MDB_INVALID;
    /// `MDB_MAP_FULL`: environment map size reached.
    pub const MAP_FULL: i32 = ffi::MDB_MAP_FULL;
    /// `MDB_DBS_FULL`: environment max DBs reached.
    pub const DBS_FULL: i32 = ffi::MDB_DBS_FULL;
    /// `MDB_READERS_FULL`: environment max readers reached.
    pub const READERS_FULL: i32 = ffi::MDB_READERS_FULL;
    /// `MDB_TLS_FULL`: too many TLS keys in use.
    pub const TLS_FULL: i32 = ffi::MDB_TLS_FULL;
    /// `MDB_TXN_FULL`: transaction has too many dirty pages.
    pub const TXN_FULL: i32 = ffi::MDB_TXN_FULL;
    /// `MDB_CURSOR_FULL`: cursor stack too deep (internal error).
    pub const CURSOR_FULL: i32 = ffi::MDB_CURSOR_FULL;
    /// `MDB_PAGE_FULL`: page has not enough space (internal error).
    pub const PAGE_FULL: i32 = ffi::MDB_PAGE_FULL;
    /// `MDB_MAP_RESIZED`: database contents grew beyond environment map size.
    pub const MAP_RESIZED: i32 = ffi::MDB_MAP_RESIZED;
    /// `MDB_INCOMPATIBLE`: operation and DB incompatible, or DB flags changed.
    pub const INCOMPATIBLE: i32 = ffi::MDB_INCOMPATIBLE;
    /// `MDB_BAD_RSLOT`: invalid reuse of reader locktable slot.
    pub const BAD_RSLOT: i32 = ffi::MDB_BAD_RSLOT;
    /// `MDB_BAD_TXN`: transaction must abort, has a child, or is invalid.
    pub const BAD_TXN: i32 = ffi::MDB_BAD_TXN;
    /// `MDB_BAD_VALSIZE`: unsupported size of key/DB name/data, or wrong DUPFIXED size.
    pub const BAD_VALSIZE: i32 = ffi::MDB_BAD_VALSIZE;
    /// `MDB_BAD_DBI`: the specified DBI was changed unexpectedly.
    pub const BAD_DBI: i32 = ffi::MDB_BAD_DBI;
    /// `EINVAL` (22): invalid argument, as C LMDB returns it for misuse.
    pub const EINVAL: i32 = libc::EINVAL;
    /// `EACCES` (13): write operation in a read-only transaction or environment.
    pub const EACCES: i32 = libc::EACCES;

    /// Wraps a raw return code.
    pub fn from_code(code: i32) -> Self {
        Error { code }
    }

    /// The message `mdb_strerror` gives for this code (LMDB's own text for
    /// LMDB codes, the C library's `strerror` text for `errno` values).
    pub fn name(&self) -> String {
        strerror(self.code)
    }

    /// Is this `MDB_NOTFOUND`?
    pub fn is_not_found(&self) -> bool {
        self.code == Self::NOTFOUND
    }
    /// Is this `MDB_KEYEXIST`?
    pub fn is_key_exist(&self) -> bool {
        self.code == Self::KEYEXIST
    }
    /// Is this `MDB_MAP_FULL`?
    pub fn is_map_full(&self) -> bool {
        self.code == Self::MAP_FULL
    }
    /// Is this `MDB_BAD_VALSIZE`?
    pub fn is_bad_valsize(&self) -> bool {
        self.code == Self::BAD_VALSIZE
    }
    /// Is this `MDB_INCOMPATIBLE`?
    pub fn is_incompatible(&self) -> bool {
        self.code == Self::INCOMPATIBLE
    }
    /// Is this `MDB_BAD_TXN`?
    pub fn is_bad_txn(&self) -> bool {
        self.code == Self::BAD_TXN
    }
    /// Is this `MDB_DBS_FULL`?
    pub fn is_dbs_full(&self) -> bool {
        self.code == Self::DBS_FULL
    }
    /// Is this `EINVAL`?
    pub fn is_einval(&self) -> bool {
        self.code == Self::EINVAL
    }
    /// Is this one of LMDB's own codes (as opposed to an `errno` value)?
    pub fn is_lmdb_code(&self) -> bool {
        (ffi::MDB_KEYEXIST..=ffi::MDB_LAST_ERRCODE).contains(&self.code)
    }
}

/// The text `mdb_strerror` returns for any code (0 gives "Successful return: 0").
pub fn strerror(code: i32) -> String {
    // SAFETY: mdb_strerror accepts any int and returns a pointer to a static
    // (or thread-local strerror) NUL-terminated string, which we copy at once.
    unsafe {
        let p = ffi::mdb_strerror(code);
        if p.is_null() {
            return format!("error {code}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Turns a C return code into a `Result`.
pub(crate) fn check(rc: i32) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error { code: rc })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.code, self.name())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code)
    }
}

impl std::error::Error for Error {}
