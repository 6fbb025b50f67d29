//! `MDB_meta`: the payload of the two meta pages at the start of the file.

use super::{
    u32_at, u64_at, DbRecord, PageFlags, DATA_VERSION, DB_RECORD_SIZE, FREE_DBI, MAGIC, MAIN_DBI,
    PAGE_HEADER_SIZE,
};
use crate::error::{Error, Result};

/// Size of the `MDB_meta` payload (after the page header).
pub const META_SIZE: usize = 136;

/// A parsed meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// `mm_address`: the fixed map address, if `MDB_FIXEDMAP` was used.
    pub address: u64,
    /// `mm_mapsize`: the map size the environment was last given.
    pub map_size: u64,
    /// `mm_dbs[FREE_DBI]`, `mm_dbs[MAIN_DBI]`.
    pub dbs: [DbRecord; 2],
    /// `mm_last_pg`: the last page in use.
    pub last_pgno: u64,
    /// `mm_txnid`: the transaction that wrote this meta.
    pub txnid: u64,
}

impl Meta {
    /// Parses and validates the meta page `pgno` (0 or 1) from its bytes.
    /// Mirrors LMDB: a page without `P_META` or without the magic is
    /// [`Error::Invalid`], a different format version [`Error::VersionMismatch`].
    pub fn parse(page: &[u8], pgno: u64) -> Result<Meta> {
        let p = page
            .get(..PAGE_HEADER_SIZE + META_SIZE)
            .ok_or(Error::Invalid)?;
        let flags = PageFlags(super::u16_at(p, 10).ok_or(Error::Invalid)?);
        if !flags.contains(PageFlags::META) {
            return Err(Error::Invalid);
        }
        let m = &p[PAGE_HEADER_SIZE..];
        if u32_at(m, 0) != Some(MAGIC) {
            return Err(Error::Invalid);
        }
        if u32_at(m, 4) != Some(DATA_VERSION) {
            return Err(Error::VersionMismatch);
        }
        let bad = || Error::corrupted(pgno, "short meta");
        let free = DbRecord::parse(&m[24..24 + DB_RECORD_SIZE]).ok_or_else(bad)?;
        let main = DbRecord::parse(&m[72..72 + DB_RECORD_SIZE]).ok_or_else(bad)?;
        Ok(Meta {
            address: u64_at(m, 8).ok_or_else(bad)?,
            map_size: u64_at(m, 16).ok_or_else(bad)?,
            dbs: [free, main],
            last_pgno: u64_at(m, 120).ok_or_else(bad)?,
            txnid: u64_at(m, 128).ok_or_else(bad)?,
        })
    }

    /// The page size recorded in the meta (`mm_psize`, kept in the free
    /// database record's `md_pad`).
    pub fn page_size(&self) -> usize {
        self.dbs[FREE_DBI].pad as usize
    }

    /// The environment flags recorded in the meta (`mm_flags`, kept in the
    /// free database record's `md_flags`).
    pub fn env_flags(&self) -> u16 {
        self.dbs[FREE_DBI].flags.0
    }

    /// The main database's record.
    pub fn main_db(&self) -> &DbRecord {
        &self.dbs[MAIN_DBI]
    }

    /// The free-page database's record.
    pub fn free_db(&self) -> &DbRecord {
        &self.dbs[FREE_DBI]
    }

    /// Serialises the meta payload (without the page header).
    pub fn to_bytes(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&DATA_VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.address.to_le_bytes());
        b[16..24].copy_from_slice(&self.map_size.to_le_bytes());
        b[24..72].copy_from_slice(&self.dbs[0].to_bytes());
        b[72..120].copy_from_slice(&self.dbs[1].to_bytes());
        b[120..128].copy_from_slice(&self.last_pgno.to_le_bytes());
        b[128..136].copy_from_slice(&self.txnid.to_le_bytes());
        b
    }

    /// Checks the fields a reader relies on against the file it came from.
    pub fn validate(&self, pgno: u64) -> Result<()> {
        let ps = self.page_size();
        if !(super::MIN_PAGE_SIZE..=super::MAX_PAGE_SIZE).contains(&ps) || !ps.is_power_of_two() {
            return Err(Error::corrupted(pgno, "meta page size"));
        }
        if self.last_pgno < 1 {
            return Err(Error::corrupted(pgno, "meta last page"));
        }
        for db in &self.dbs {
            if db.root != super::P_INVALID && (db.root < 2 || db.root > self.last_pgno) {
                return Err(Error::corrupted(pgno, "meta root beyond the last page"));
            }
        }
        Ok(())
    }
}

/// Reads both meta pages at the start of a data file's bytes and returns
/// the newer one with its page number (see [`both_metas`] and
/// [`newer_meta`]). The result is not yet [validated](Meta::validate).
pub fn newest_meta(file: &[u8]) -> Result<(Meta, u64)> {
    let [m0, m1] = both_metas(|off, buf| {
        let src = usize::try_from(off)
            .ok()
            .and_then(|o| file.get(o..o.checked_add(buf.len())?));
        src.map(|src| buf.copy_from_slice(src)).is_some()
    })?;
    Ok(newer_meta(m0, m1))
}

/// Reads both meta pages through `read`, which fills a buffer from a file
/// offset (false if it cannot), as `mdb_env_read_header` does: both must
/// be meta pages of this format, the page size (which places meta page 1)
/// comes from meta page 0, and meta page 1 must agree with it: one that
/// says otherwise would have readers look for it elsewhere, past the end
/// of a short file.
pub fn both_metas(mut read: impl FnMut(u64, &mut [u8]) -> bool) -> Result<[Meta; 2]> {
    let mut buf = [0u8; PAGE_HEADER_SIZE + META_SIZE];
    if !read(0, &mut buf) {
        return Err(Error::Invalid);
    }
    let m0 = Meta::parse(&buf, 0)?;
    let ps = m0.page_size();
    if !(super::MIN_PAGE_SIZE..=super::MAX_PAGE_SIZE).contains(&ps) || !ps.is_power_of_two() {
        return Err(Error::corrupted(0, "meta page size"));
    }
    if !read(ps as u64, &mut buf) {
        return Err(Error::Invalid);
    }
    let m1 = Meta::parse(&buf, 1)?;
    if m1.page_size() != ps {
        return Err(Error::corrupted(1, "meta pages disagree on the page size"));
    }
    Ok([m0, m1])
}

/// The newer of the two meta pages, with its page number.
pub fn newer_meta(m0: Meta, m1: Meta) -> (Meta, u64) {
    if m1.txnid > m0.txnid {
        (m1, 1)
    } else {
        (m0, 0)
    }
}
