//! A consistent view of the environment at one meta page: the core of a read
//! transaction, over any [`PageSource`].

use alloc::vec::Vec;

use crate::btree::{self, Cursor, PageSource};
use crate::error::{Error, Result};
use crate::format::{DbRecord, Meta, NodeFlags, FREE_DBI, MAIN_DBI};

/// The statistics of one database (`MDB_stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Page size of the environment.
    pub page_size: u32,
    /// Height of the tree.
    pub depth: u32,
    /// Number of branch pages.
    pub branch_pages: u64,
    /// Number of leaf pages.
    pub leaf_pages: u64,
    /// Number of overflow pages.
    pub overflow_pages: u64,
    /// Number of entries.
    pub entries: u64,
}

impl Stat {
    /// The statistics held in a database record.
    pub fn from_record(rec: &DbRecord, page_size: usize) -> Stat {
        Stat {
            page_size: page_size as u32,
            depth: rec.depth as u32,
            branch_pages: rec.branch_pages,
            leaf_pages: rec.leaf_pages,
            overflow_pages: rec.overflow_pages,
            entries: rec.entries,
        }
    }
}

/// A snapshot of the environment: a meta page and the pages it reaches.
pub struct Snapshot<S> {
    meta: Meta,
    src: S,
}

impl<S: PageSource> Snapshot<S> {
    /// The snapshot described by `meta`, reading pages from `src`.
    pub fn new(meta: Meta, src: S) -> Snapshot<S> {
        Snapshot { meta, src }
    }

    /// The meta page this snapshot reads.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The transaction id of the snapshot.
    pub fn txnid(&self) -> u64 {
        self.meta.txnid
    }

    /// The page source.
    pub fn source(&self) -> &S {
        &self.src
    }

    /// The main database's record.
    pub fn main_db(&self) -> DbRecord {
        self.meta.dbs[MAIN_DBI]
    }

    /// The free-page database's record.
    pub fn free_db(&self) -> DbRecord {
        self.meta.dbs[FREE_DBI]
    }

    /// The record of the named database `name`, as stored in the main
    /// database. [`Error::NotFound`] if there is none;
    /// [`Error::Incompatible`] if `name` is a plain key of the main database.
    pub fn named_db(&self, name: &[u8]) -> Result<DbRecord> {
        let main = self.main_db();
        let mut c = Cursor::new(&self.src, &main);
        match c.get(btree::CursorOp::Set, Some(name), None)? {
            None => Err(Error::NotFound),
            Some((_, value)) => {
                let node = c.current_node()?;
                if !node.flags.contains(NodeFlags::SUBDATA)
                    || node.flags.contains(NodeFlags::DUPDATA)
                {
                    return Err(Error::Incompatible);
                }
                DbRecord::parse(value).ok_or(Error::corrupted(
                    c.path().last().map(|p| p.0).unwrap_or(0),
                    "short named database record",
                ))
            }
        }
    }

    /// The names of the named databases stored in the main database.
    pub fn db_names(&self) -> Result<Vec<&[u8]>> {
        let main = self.main_db();
        let mut c = Cursor::new(&self.src, &main);
        let mut names = Vec::new();
        let mut op = btree::CursorOp::First;
        // A hostile tree can reach one leaf through many parents, which a
        // cursor would follow for practically ever: each leaf is read once.
        let mut leaves = alloc::collections::BTreeSet::new();
        let mut leaf = None;
        while let Some((k, _)) = c.get(op, None, None)? {
            let here = c.path().last().map(|p| p.0);
            if here != leaf {
                leaf = here;
                if !leaves.insert(here) {
                    return Err(Error::corrupted(here.unwrap_or(0), "page referenced twice"));
                }
            }
            if c.current_node()?.flags.contains(NodeFlags::SUBDATA) {
                names.push(k);
            }
            op = btree::CursorOp::NextNoDup;
        }
        Ok(names)
    }

    /// The value stored under `key` (the first one, for DUPSORT).
    #[inline]
    pub fn get<'s>(&'s self, db: &DbRecord, key: &[u8]) -> Result<Option<&'s [u8]>> {
        btree::get(&self.src, db, key)
    }

    /// A cursor over the tree of `db`.
    pub fn cursor<'s>(&'s self, db: &DbRecord) -> Cursor<'s, S> {
        Cursor::new(&self.src, db)
    }

    /// Statistics of a database.
    pub fn stat(&self, db: &DbRecord) -> Stat {
        Stat::from_record(db, self.src.page_size())
    }
}

impl<'a> Snapshot<SliceSource<'a>> {
    /// The newest snapshot of a whole data file held in memory: the newer
    /// valid meta page, with pages bounded by the slice and by the meta's
    /// last page. Needs no file system, so it works without `std`.
    pub fn from_bytes(file: &'a [u8]) -> Result<Self> {
        let (meta, pgno) = crate::format::newest_meta(file)?;
        meta.validate(pgno)?;
        let ps = meta.page_size();
        let need = meta.last_pgno.saturating_add(1).saturating_mul(ps as u64);
        let len = (file.len() as u64).min(need) as usize;
        let src = SliceSource::new(&file[..len], ps)?;
        Ok(Snapshot::new(meta, src))
    }
}

/// Pages of a data file held in a byte slice (a file read into memory, a
/// fuzzer's input), bounded by the slice.
#[derive(Clone, Copy, Debug)]
pub struct SliceSource<'a> {
    bytes: &'a [u8],
    page_size: usize,
}

impl<'a> SliceSource<'a> {
    /// Pages of `bytes`, which starts with page 0. The page size must be a
    /// power of two between [`MIN_PAGE_SIZE`](crate::format::MIN_PAGE_SIZE)
    /// and [`MAX_PAGE_SIZE`](crate::format::MAX_PAGE_SIZE).
    pub fn new(bytes: &'a [u8], page_size: usize) -> Result<SliceSource<'a>> {
        if !(crate::format::MIN_PAGE_SIZE..=crate::format::MAX_PAGE_SIZE).contains(&page_size)
            || !page_size.is_power_of_two()
        {
            return Err(Error::InvalidArgument);
        }
        Ok(SliceSource { bytes, page_size })
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> SliceSource<'a> {
    /// `count` pages from `pgno`, borrowed for as long as the bytes live.
    #[inline]
    pub fn page_bytes(&self, pgno: u64, count: u64) -> Result<&'a [u8]> {
        let r = page_span(pgno, count, self.page_size, self.bytes.len())?;
        Ok(&self.bytes[r])
    }
}

/// The byte range of `count` pages from `pgno` in a source of `len`
/// bytes, or [`Error::Corrupted`] if they do not all lie inside it.
#[inline]
pub(crate) fn page_span(
    pgno: u64,
    count: u64,
    page_size: usize,
    len: usize,
) -> Result<core::ops::Range<usize>> {
    let ps = page_size as u64;
    let range = pgno
        .checked_mul(ps)
        .and_then(|s| Some((s, s.checked_add(count.checked_mul(ps)?)?)));
    match range {
        Some((s, e)) if e <= len as u64 => Ok(s as usize..e as usize),
        _ => Err(Error::corrupted(pgno, "page beyond the snapshot")),
    }
}

impl PageSource for SliceSource<'_> {
    #[inline]
    fn page_size(&self) -> usize {
        self.page_size
    }

    #[inline]
    fn pages(&self, pgno: u64, count: u64) -> Result<&[u8]> {
        self.page_bytes(pgno, count)
    }
}
