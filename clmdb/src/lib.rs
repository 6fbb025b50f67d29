//! A small, safe wrapper over C LMDB 0.9.24 (built from source by the
//! `lmdb-rkv-sys` crate), and a deterministic generator of randomized
//! environments.
//!
//! It exists to test and measure `prunedb-engine` against the real C
//! library: every result and error is C's own, unchanged. Reads are
//! zero-copy: slices borrow the transaction they came from.
//!
//! ```no_run
//! use prunedb_clmdb::{flags, CursorOp, Env};
//! # fn main() -> prunedb_clmdb::Result<()> {
//! let env = Env::builder().max_dbs(4).map_size(1 << 24).open("/tmp/db".as_ref())?;
//! let mut txn = env.begin_rw()?;
//! let dbi = txn.open_db(Some("dups"), flags::MDB_CREATE | flags::MDB_DUPSORT)?;
//! txn.put(dbi, b"k", b"a", 0)?;
//! txn.put(dbi, b"k", b"b", 0)?;
//! txn.commit()?;
//! let txn = env.begin_ro()?;
//! let cur = txn.cursor(dbi)?;
//! assert_eq!(cur.get(CursorOp::Last, None, None)?, Some((&b"k"[..], &b"b"[..])));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub use lmdb_rkv_sys as ffi;

mod cursor;
mod env;
mod error;
pub mod flags;
pub mod gen;
mod txn;

pub use cursor::{Cursor, CursorItem, CursorOp, RwCursor};
pub use env::{version, Env, EnvBuilder, EnvInfo};
pub use error::{strerror, Error, Result};
pub use txn::{Dbi, ResetTxn, RoTxn, RwTxn, Stat, Txn};
