//! LMDB 0.9's on-disk structures as byte layouts (64-bit little-endian).
//!
//! Everything here is a view over borrowed bytes: nothing is copied and
//! nothing is trusted. Each accessor checks its bounds against the slice it
//! was given, so a hostile file can only produce [`Error::Corrupted`](crate::Error::Corrupted).
//! `docs/format.md` describes the layouts in full.

mod db;
mod meta;
mod page;

pub use db::{DbFlags, DbRecord, DB_RECORD_SIZE};
pub use meta::{both_metas, newer_meta, newest_meta, Meta, META_SIZE};
pub use page::{
    overflow_pages, Node, NodeFlags, Page, PageFlags, NODE_HEADER_SIZE, PAGE_HEADER_SIZE,
};

/// The magic number at the start of a meta page's payload.
pub const MAGIC: u32 = 0xBEEF_C0DE;
/// The data format version this engine reads and writes.
pub const DATA_VERSION: u32 = 1;
/// The lock file format version of LMDB 0.9 (`MDB_LOCK_VERSION`).
pub const LOCK_VERSION: u32 = 1;
/// Index of the free-page database in a meta page's database array.
pub const FREE_DBI: usize = 0;
/// Index of the main database in a meta page's database array.
pub const MAIN_DBI: usize = 1;
/// Number of meta pages at the start of the file.
pub const NUM_METAS: u64 = 2;
/// Sentinel root page number of an empty tree (`P_INVALID`).
pub const P_INVALID: u64 = u64::MAX;
/// Smallest page size LMDB accepts.
pub const MIN_PAGE_SIZE: usize = 512;
/// Largest page size LMDB accepts.
pub const MAX_PAGE_SIZE: usize = 0x10000;
/// The longest key LMDB 0.9 accepts by default (`MDB_MAXKEYSIZE`).
pub const MAX_KEY_SIZE: usize = 511;
/// The deepest tree a cursor can follow (`CURSOR_STACK`).
pub const MAX_DEPTH: usize = 32;

#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[inline]
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}
