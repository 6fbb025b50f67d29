//! A read-only view of LMDB 0.9's lock file (`lock.mdb` or `FILE-lock`):
//! the `MDB_txninfo` header and the reader table, in the layout of 64-bit
//! Linux with glibc (40-byte `pthread_mutex_t`, 64-byte cache lines).
//!
//! Everything here is a pure function over the file's bytes and checks
//! every bound: a short or foreign file yields `None`, never a panic.
//! Taking part in the locking protocol (mutexes, `fcntl` locks, claiming a
//! reader slot) is not this module's job.

/// `mti_magic`: the same magic as the data file.
pub const LOCK_MAGIC: u32 = crate::format::MAGIC;
/// `mti_format` written by LMDB 0.9 on Linux: `MDB_LOCK_VERSION` (1) plus
/// `1 << 16` for "readers hold a pid lock".
pub const LOCK_FORMAT: u32 = 0x0001_0001;
/// The default size of the reader table (`DEFAULT_READERS`).
pub const DEFAULT_READERS: u32 = 126;
/// Size of one reader slot (`MDB_reader`, padded to a cache line).
pub const READER_SIZE: usize = 64;
/// Offset of the first reader slot: two cache lines of header (the first
/// holding magic, format, `mti_rmutex`, txnid and numreaders; the second
/// `mti_wmutex`).
pub const READERS_OFFSET: usize = 128;
/// `sizeof(MDB_txninfo)`: the header plus the one slot the C struct
/// declares (`mti_readers[1]`).
pub const TXNINFO_SIZE: usize = READERS_OFFSET + READER_SIZE;

const MAGIC_OFFSET: usize = 0;
const FORMAT_OFFSET: usize = 4;
const TXNID_OFFSET: usize = 48;
const NUMREADERS_OFFSET: usize = 56;

const SLOT_TXNID: usize = 0;
const SLOT_PID: usize = 8;
const SLOT_TID: usize = 16;

/// The header of the lock file (`MDB_txninfo` without the reader table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockHeader {
    /// `mti_magic`; [`LOCK_MAGIC`] in a valid file.
    pub magic: u32,
    /// `mti_format`; [`LOCK_FORMAT`] in a file written by LMDB 0.9 on Linux.
    pub format: u32,
    /// `mti_txnid`: the last committed transaction, as published by the writer.
    pub txnid: u64,
    /// `mti_numreaders`: how many reader slots have ever been used (a
    /// high-water mark, not the number of live readers).
    pub num_readers: u32,
    /// The size of the reader table, derived from the file's length as
    /// LMDB does for every opener but the first.
    pub max_readers: u32,
}

impl LockHeader {
    /// Whether magic and format are the ones LMDB 0.9 on Linux writes.
    pub fn is_valid(&self) -> bool {
        self.magic == LOCK_MAGIC && self.format == LOCK_FORMAT
    }
}

/// One slot of the reader table (`MDB_reader`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderSlot {
    /// Index of the slot in the table.
    pub index: u32,
    /// `mr_txnid`: the snapshot the reader uses; `u64::MAX` when the slot is
    /// owned but no read transaction is active.
    pub txnid: u64,
    /// `mr_pid`: the owning process; 0 when the slot is free.
    pub pid: i32,
    /// `mr_tid`: the owning thread (`pthread_t`); left behind when freed.
    pub tid: u64,
}

impl ReaderSlot {
    /// Whether a process owns the slot.
    pub fn is_used(&self) -> bool {
        self.pid != 0
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    u32_at(b, off).map(|v| v as i32)
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// The size of the reader table of a lock file of `len` bytes, as LMDB
/// computes it when it finds an existing file: the slot declared inside
/// `MDB_txninfo` plus every whole slot after it. `None` if the file is too
/// short to hold the header.
pub fn max_readers_for_len(len: u64) -> Option<u32> {
    let extra = len.checked_sub(TXNINFO_SIZE as u64)?;
    u32::try_from(extra / READER_SIZE as u64 + 1).ok()
}

/// The length LMDB gives a new lock file for `max_readers` slots.
pub fn len_for_readers(max_readers: u32) -> u64 {
    (max_readers.max(1) as u64 - 1) * READER_SIZE as u64 + TXNINFO_SIZE as u64
}

/// Parses the header of a lock file whose full contents (or at least its
/// first [`TXNINFO_SIZE`] bytes) are `bytes`, the file being `file_len`
/// bytes long. `None` if `bytes` is too short.
pub fn parse_header(bytes: &[u8], file_len: u64) -> Option<LockHeader> {
    Some(LockHeader {
        magic: u32_at(bytes, MAGIC_OFFSET)?,
        format: u32_at(bytes, FORMAT_OFFSET)?,
        txnid: u64_at(bytes, TXNID_OFFSET)?,
        num_readers: u32_at(bytes, NUMREADERS_OFFSET)?,
        max_readers: max_readers_for_len(file_len)?,
    })
}

/// Slot `index` of the reader table in `bytes` (the whole lock file).
/// `None` if the file does not hold that slot.
pub fn reader_slot(bytes: &[u8], index: u32) -> Option<ReaderSlot> {
    let base = (index as usize)
        .checked_mul(READER_SIZE)?
        .checked_add(READERS_OFFSET)?;
    let slot = bytes.get(base..base.checked_add(READER_SIZE)?)?;
    Some(ReaderSlot {
        index,
        txnid: u64_at(slot, SLOT_TXNID)?,
        pid: i32_at(slot, SLOT_PID)?,
        tid: u64_at(slot, SLOT_TID)?,
    })
}

/// The slots LMDB looks at: `0..numreaders`, cut short where the file
/// ends (a truncated file must not make a reader look past its end).
/// Free slots are included; filter with [`ReaderSlot::is_used`].
pub fn reader_slots(bytes: &[u8]) -> impl Iterator<Item = ReaderSlot> + '_ {
    let n = u32_at(bytes, NUMREADERS_OFFSET).unwrap_or(0);
    (0..n).map_while(move |i| reader_slot(bytes, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(readers: u32, slots: &[(u64, i32, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; len_for_readers(readers) as usize];
        b[0..4].copy_from_slice(&LOCK_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&LOCK_FORMAT.to_le_bytes());
        b[48..56].copy_from_slice(&7u64.to_le_bytes());
        b[56..60].copy_from_slice(&(slots.len() as u32).to_le_bytes());
        for (i, (txnid, pid, tid)) in slots.iter().enumerate() {
            let o = READERS_OFFSET + i * READER_SIZE;
            b[o..o + 8].copy_from_slice(&txnid.to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&pid.to_le_bytes());
            b[o + 16..o + 24].copy_from_slice(&tid.to_le_bytes());
        }
        b
    }

    #[test]
    fn default_size_is_one_page() {
        assert_eq!(len_for_readers(DEFAULT_READERS), 8192);
        assert_eq!(max_readers_for_len(8192), Some(DEFAULT_READERS));
        assert_eq!(max_readers_for_len(191), None);
        assert_eq!(max_readers_for_len(192), Some(1));
    }

    #[test]
    fn header_and_slots() {
        let b = file(126, &[(5, 100, 0xabc), (u64::MAX, 0, 0xdef)]);
        let h = parse_header(&b, b.len() as u64).unwrap();
        assert!(h.is_valid());
        assert_eq!((h.txnid, h.num_readers, h.max_readers), (7, 2, 126));
        let s: Vec<_> = reader_slots(&b).collect();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].txnid, s[0].pid, s[0].tid), (5, 100, 0xabc));
        assert!(s[0].is_used() && !s[1].is_used());
    }

    #[test]
    fn truncated_files_do_not_panic() {
        let mut b = file(2, &[(1, 1, 1), (2, 2, 2)]);
        // Claim more readers than the file holds.
        b[56..60].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(reader_slots(&b).count(), 2);
        for n in 0..b.len() {
            let _ = parse_header(&b[..n], n as u64);
            let _ = reader_slots(&b[..n]).count();
        }
        assert_eq!(parse_header(&b[..10], 10), None);
    }
}
