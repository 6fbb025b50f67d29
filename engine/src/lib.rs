//! prunedb-engine: a pure-Rust, byte-compatible reimplementation of LMDB 0.9.
//!
//! The layers import downward only: [`format`](mod@format) (byte layouts) under
//! [`btree`] (search and cursors over a [`btree::PageSource`]) under
//! [`snapshot`] (a consistent view at one meta page); the `std` feature adds
//! the environment: files, the memory map and transactions.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod btree;
pub mod error;
pub mod format;
pub mod snapshot;
pub mod walk;

#[cfg(feature = "std")]
mod env;
#[cfg(feature = "std")]
mod iter;

pub use btree::write::PutFlags;
pub use btree::{CursorOp, Entry};
pub use error::{Error, Result};
pub use format::DbFlags;
pub use snapshot::{Snapshot, Stat};

#[cfg(feature = "std")]
pub use env::CopyFlags;
#[cfg(feature = "std")]
pub use env::{
    env_paths, lockfile, Database, Env, EnvBuilder, EnvFlags, EnvInfo, MapSource, Nested, Pin,
    ReadTxn, RoTxn, RwCursor, RwTxn, WriteState,
};
#[cfg(feature = "std")]
pub use iter::{Dups, Iter, Iterate};

/// A cursor over a database of a read transaction on the memory map.
#[cfg(feature = "std")]
pub type RoCursor<'txn, 'env> = btree::Cursor<'txn, MapSource<'env>>;
