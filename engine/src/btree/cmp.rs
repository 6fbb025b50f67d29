//! Key and value orderings, as LMDB's comparison functions define them.

use core::cmp::Ordering;

use crate::format::DbFlags;

/// One of LMDB's built-in orderings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// Bytewise, then shorter first (`mdb_cmp_memn`).
    Bytes,
    /// Bytewise from the last byte backwards, then shorter first
    /// (`mdb_cmp_memnr`, for REVERSEKEY and REVERSEDUP).
    ReverseBytes,
    /// Native (little-endian) unsigned integers (`mdb_cmp_int`,
    /// `mdb_cmp_cint`, `mdb_cmp_long`, for INTEGERKEY and INTEGERDUP).
    Integer,
}

/// Bytewise, then shorter first. Keys of a search mostly differ within
/// their first 8 bytes: those are compared as one big-endian word, inline,
/// before a call to `memcmp` settles the rest.
#[inline]
fn bytes(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

impl Cmp {
    /// The ordering of a database's keys.
    pub fn for_keys(flags: DbFlags) -> Cmp {
        if flags.contains(DbFlags::REVERSEKEY) {
            Cmp::ReverseBytes
        } else if flags.contains(DbFlags::INTEGERKEY) {
            Cmp::Integer
        } else {
            Cmp::Bytes
        }
    }

    /// The ordering of a DUPSORT database's values.
    pub fn for_dups(flags: DbFlags) -> Cmp {
        if flags.contains(DbFlags::INTEGERDUP) {
            Cmp::Integer
        } else if flags.contains(DbFlags::REVERSEDUP) {
            Cmp::ReverseBytes
        } else {
            Cmp::Bytes
        }
    }

    /// Compares `a` with `b`.
    #[inline]
    pub fn compare(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Cmp::Bytes => bytes(a, b),
            Cmp::ReverseBytes => {
                // Walk both from the end; the shorter one runs out first.
                let common = a.len().min(b.len());
                let (ra, rb) = (&a[a.len() - common..], &b[b.len() - common..]);
                for (x, y) in ra.iter().rev().zip(rb.iter().rev()) {
                    if x != y {
                        return x.cmp(y);
                    }
                }
                a.len().cmp(&b.len())
            }
            Cmp::Integer => {
                // LMDB requires equal sizes here; comparing the sizes first
                // keeps the order total when a hostile file mixes them.
                if a.len() != b.len() {
                    return a.len().cmp(&b.len());
                }
                if a.len() == 8 {
                    let x = u64::from_le_bytes(a.try_into().unwrap_or([0; 8]));
                    let y = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    return x.cmp(&y);
                }
                if a.len() == 4 {
                    let x = u32::from_le_bytes(a.try_into().unwrap_or([0; 4]));
                    let y = u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
                    return x.cmp(&y);
                }
                a.iter().rev().cmp(b.iter().rev())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_bytes_compares_from_the_end() {
        let c = Cmp::ReverseBytes;
        assert_eq!(c.compare(b"ab", b"ba"), Ordering::Greater);
        assert_eq!(c.compare(b"b", b"ab"), Ordering::Less);
        assert_eq!(c.compare(b"ab", b"ab"), Ordering::Equal);
        assert_eq!(c.compare(b"za", b"b"), Ordering::Less);
    }

    #[test]
    fn integers_compare_by_value() {
        let c = Cmp::Integer;
        assert_eq!(
            c.compare(&256u32.to_le_bytes(), &1u32.to_le_bytes()),
            Ordering::Greater
        );
        assert_eq!(
            c.compare(&(1u64 << 40).to_le_bytes(), &7u64.to_le_bytes()),
            Ordering::Greater
        );
        assert_eq!(c.compare(&[1, 0], &[0, 1]), Ordering::Less);
    }
}
