//! `MDB_db`: the 48-byte record describing one B+tree.

use super::{u16_at, u32_at, u64_at, P_INVALID};

/// Size of an `MDB_db` record on disk.
pub const DB_RECORD_SIZE: usize = 48;

/// Flags of a database (`mdb_dbi_open` flags as persisted in `md_flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DbFlags(pub u16);

impl DbFlags {
    /// Keys compare from their last byte to their first.
    pub const REVERSEKEY: DbFlags = DbFlags(0x02);
    /// A key may hold several sorted values.
    pub const DUPSORT: DbFlags = DbFlags(0x04);
    /// Keys are native unsigned integers (4 or 8 bytes).
    pub const INTEGERKEY: DbFlags = DbFlags(0x08);
    /// With DUPSORT: all values of the database have one size.
    pub const DUPFIXED: DbFlags = DbFlags(0x10);
    /// With DUPSORT: values are native unsigned integers.
    pub const INTEGERDUP: DbFlags = DbFlags(0x20);
    /// With DUPSORT: values compare from their last byte to their first.
    pub const REVERSEDUP: DbFlags = DbFlags(0x40);
    /// Create the named database if it is missing (an open flag, never stored).
    pub const CREATE: DbFlags = DbFlags(0x4_0000u32 as u16);
    /// The flags that are stored in a database record.
    pub const PERSISTENT: DbFlags = DbFlags(0x7e);

    /// No flags.
    pub const fn empty() -> DbFlags {
        DbFlags(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: DbFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Both sets of flags.
    pub const fn union(self, other: DbFlags) -> DbFlags {
        DbFlags(self.0 | other.0)
    }
}

impl core::ops::BitOr for DbFlags {
    type Output = DbFlags;
    fn bitor(self, o: DbFlags) -> DbFlags {
        DbFlags(self.0 | o.0)
    }
}

/// A parsed `MDB_db` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbRecord {
    /// `md_pad`: the value size of a DUPFIXED database's LEAF2 pages; in the
    /// free database's record of a meta page it holds the page size.
    pub pad: u32,
    /// `md_flags`.
    pub flags: DbFlags,
    /// `md_depth`: height of the tree; 0 when empty.
    pub depth: u16,
    /// `md_branch_pages`.
    pub branch_pages: u64,
    /// `md_leaf_pages`.
    pub leaf_pages: u64,
    /// `md_overflow_pages`.
    pub overflow_pages: u64,
    /// `md_entries`: number of key/value pairs (each duplicate counts).
    pub entries: u64,
    /// `md_root`: root page number, or [`P_INVALID`] for an empty tree.
    pub root: u64,
}

impl DbRecord {
    /// An empty tree.
    pub const fn empty(flags: DbFlags) -> DbRecord {
        DbRecord {
            pad: 0,
            flags,
            depth: 0,
            branch_pages: 0,
            leaf_pages: 0,
            overflow_pages: 0,
            entries: 0,
            root: P_INVALID,
        }
    }

    /// Parses a record from at least [`DB_RECORD_SIZE`] bytes.
    pub fn parse(b: &[u8]) -> Option<DbRecord> {
        if b.len() < DB_RECORD_SIZE {
            return None;
        }
        Some(DbRecord {
            pad: u32_at(b, 0)?,
            flags: DbFlags(u16_at(b, 4)?),
            depth: u16_at(b, 6)?,
            branch_pages: u64_at(b, 8)?,
            leaf_pages: u64_at(b, 16)?,
            overflow_pages: u64_at(b, 24)?,
            entries: u64_at(b, 32)?,
            root: u64_at(b, 40)?,
        })
    }

    /// Serialises the record.
    pub fn to_bytes(&self) -> [u8; DB_RECORD_SIZE] {
        let mut b = [0u8; DB_RECORD_SIZE];
        b[0..4].copy_from_slice(&self.pad.to_le_bytes());
        b[4..6].copy_from_slice(&self.flags.0.to_le_bytes());
        b[6..8].copy_from_slice(&self.depth.to_le_bytes());
        b[8..16].copy_from_slice(&self.branch_pages.to_le_bytes());
        b[16..24].copy_from_slice(&self.leaf_pages.to_le_bytes());
        b[24..32].copy_from_slice(&self.overflow_pages.to_le_bytes());
        b[32..40].copy_from_slice(&self.entries.to_le_bytes());
        b[40..48].copy_from_slice(&self.root.to_le_bytes());
        b
    }
}
