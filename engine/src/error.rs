//! The engine's error type, mirroring LMDB's return codes.

use core::fmt;

/// Errors returned by the engine. The variants mirror LMDB's return codes so
/// that code ported from LMDB, heed or lmdb-rkv finds the cases it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `MDB_NOTFOUND`: the key or data item was not found.
    NotFound,
    /// `MDB_KEYEXIST`: the key/data pair already exists.
    KeyExist,
    /// `MDB_MAP_FULL`: the environment's map size is reached.
    MapFull,
    /// `MDB_DBS_FULL`: the environment's `max_dbs` is reached.
    DbsFull,
    /// `MDB_READERS_FULL`: the reader table is full.
    ReadersFull,
    /// `MDB_TXN_FULL`: the transaction has too many dirty pages.
    TxnFull,
    /// `MDB_BAD_VALSIZE`: a key or value has an unsupported size.
    BadValSize,
    /// `MDB_BAD_DBI`: the database handle is not valid here.
    BadDbi,
    /// `MDB_BAD_TXN`: the transaction cannot be used any more.
    BadTxn,
    /// `MDB_INCOMPATIBLE`: the operation does not fit the database's flags,
    /// or a named database was opened with flags it was not created with.
    Incompatible,
    /// `MDB_INVALID`: the file is not an LMDB environment (no valid meta page).
    Invalid,
    /// `MDB_VERSION_MISMATCH`: the environment was written by an incompatible
    /// version of the format.
    VersionMismatch,
    /// `MDB_CORRUPTED`: a page failed validation. `pgno` names the page.
    Corrupted {
        /// The page number where the corruption was detected.
        pgno: u64,
        /// What was wrong with it.
        what: &'static str,
    },
    /// `MDB_MAP_RESIZED`: another process grew the map beyond this handle's;
    /// call `Env::set_map_size(0)` with no transaction running.
    MapResized,
    /// The environment is already open in this process with other flags.
    /// One process keeps one handle per environment (opening it again with
    /// the same flags shares that handle), because POSIX record locks
    /// belong to the process and closing any descriptor drops them all.
    AlreadyOpen,
    /// `EINVAL`: an argument was not valid for the operation or state.
    InvalidArgument,
    /// `EACCES`: the environment is read-only.
    ReadOnly,
    /// An operating system error (`errno`).
    Io(i32),
}

impl Error {
    /// The LMDB return code that corresponds to this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::KeyExist => -30799,
            Error::NotFound => -30798,
            Error::Corrupted { .. } => -30796,
            Error::VersionMismatch => -30794,
            Error::Invalid => -30793,
            Error::MapFull => -30792,
            Error::DbsFull => -30791,
            Error::ReadersFull => -30790,
            Error::TxnFull => -30788,
            Error::Incompatible => -30784,
            Error::BadTxn => -30782,
            Error::BadValSize => -30781,
            Error::BadDbi => -30780,
            Error::MapResized => -30785,
            Error::AlreadyOpen => 16,
            Error::InvalidArgument => 22,
            Error::ReadOnly => 13,
            Error::Io(e) => *e,
        }
    }

    pub(crate) fn corrupted(pgno: u64, what: &'static str) -> Error {
        Error::Corrupted { pgno, what }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("MDB_NOTFOUND: No matching key/data pair found"),
            Error::KeyExist => f.write_str("MDB_KEYEXIST: Key/data pair already exists"),
            Error::MapFull => f.write_str("MDB_MAP_FULL: Environment mapsize limit reached"),
            Error::DbsFull => f.write_str("MDB_DBS_FULL: Environment maxdbs limit reached"),
            Error::ReadersFull => {
                f.write_str("MDB_READERS_FULL: Environment maxreaders limit reached")
            }
            Error::TxnFull => f.write_str("MDB_TXN_FULL: Transaction has too many dirty pages"),
            Error::BadValSize => f.write_str(
                "MDB_BAD_VALSIZE: Unsupported size of key/DB name/data, or wrong DUPFIXED size",
            ),
            Error::BadDbi => {
                f.write_str("MDB_BAD_DBI: The specified DBI handle was closed/changed unexpectedly")
            }
            Error::BadTxn => {
                f.write_str("MDB_BAD_TXN: Transaction must abort, has a child, or is invalid")
            }
            Error::Incompatible => {
                f.write_str("MDB_INCOMPATIBLE: Operation and DB incompatible, or DB flags changed")
            }
            Error::Invalid => f.write_str("MDB_INVALID: File is not an LMDB file"),
            Error::VersionMismatch => {
                f.write_str("MDB_VERSION_MISMATCH: Database environment version mismatch")
            }
            Error::Corrupted { pgno, what } => {
                write!(
                    f,
                    "MDB_CORRUPTED: Located page was wrong type (page {pgno}: {what})"
                )
            }
            Error::MapResized => f.write_str("MDB_MAP_RESIZED: Database contents grew beyond environment mapsize"),
            Error::AlreadyOpen => f.write_str("Device or resource busy (environment already open in this process with other flags)"),
            Error::InvalidArgument => f.write_str("Invalid argument"),
            Error::ReadOnly => f.write_str("Permission denied (read-only environment)"),
            Error::Io(e) => write!(f, "I/O error (errno {e})"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.raw_os_error().unwrap_or(5))
    }
}

/// The engine's result type.
pub type Result<T> = core::result::Result<T, Error>;
