//! Copying an environment (`mdb_env_copy2`, `mdb_env_copyfd2`): a hot
//! backup taken from one read transaction, so writers go on while it runs
//! and the copy holds exactly that transaction's snapshot.
//!
//! A plain copy writes the snapshot's meta page into both meta slots and
//! then every page up to the snapshot's last page, as they are. A compacting
//! copy ([`CopyFlags::COMPACT`]) rewrites the trees instead: it walks them
//! depth-first and gives the pages it reaches consecutive numbers (children
//! before the page that refers to them, so the main database's root is the
//! last page, as in LMDB), leaving out free pages and the free database.
//! Page contents are copied unchanged except for the page numbers they hold,
//! so every database record keeps its counters.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{env_paths, Env, EnvFlags};
use crate::btree::PageSource;
use crate::error::{Error, Result};
use crate::format::{
    overflow_pages, u16_at, DbFlags, DbRecord, Meta, NodeFlags, Page, PageFlags, FREE_DBI,
    MAIN_DBI, MAX_DEPTH, META_SIZE, NODE_HEADER_SIZE, NUM_METAS, PAGE_HEADER_SIZE, P_INVALID,
};
use crate::walk::PageSet;

/// Options of [`Env::copy_to`] (`mdb_env_copy2`'s flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CopyFlags(pub u32);

impl CopyFlags {
    /// Omit free pages and renumber the rest consecutively
    /// (`MDB_CP_COMPACT`).
    pub const COMPACT: CopyFlags = CopyFlags(0x01);

    /// No flags: a page-for-page copy.
    pub const fn empty() -> CopyFlags {
        CopyFlags(0)
    }
    /// Whether every flag of `o` is set.
    pub const fn contains(self, o: CopyFlags) -> bool {
        self.0 & o.0 == o.0
    }
}

impl core::ops::BitOr for CopyFlags {
    type Output = CopyFlags;
    fn bitor(self, o: CopyFlags) -> CopyFlags {
        CopyFlags(self.0 | o.0)
    }
}

/// Pages read and written per call in a plain copy.
const CHUNK_PAGES: u64 = 256;

impl Env {
    /// Copies the environment's current snapshot to a new environment at
    /// `path` (`mdb_env_copy2`): the directory `path` (which must exist)
    /// receives `data.mdb`, or with [`EnvFlags::NOSUBDIR`] `path` is the
    /// data file. The data file must not exist yet; no lock file is
    /// written. Writers may commit while the copy runs.
    pub fn copy_to(&self, path: impl AsRef<Path>, flags: CopyFlags) -> Result<()> {
        let (data, _) = env_paths(path.as_ref(), self.flags());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&data)?;
        let mut w = BufWriter::with_capacity(1 << 20, &file);
        self.copy_to_writer(&mut w, flags)?;
        w.flush()?;
        drop(w);
        file.sync_all()?;
        Ok(())
    }

    /// Writes a copy of the current snapshot's data file to `w`
    /// (`mdb_env_copyfd2`), sequentially, so `w` may be a pipe.
    pub fn copy_to_writer(&self, w: &mut dyn Write, flags: CopyFlags) -> Result<()> {
        let txn = self.read_txn()?;
        let snap = txn.snapshot();
        let meta = *snap.meta();
        let src = snap.source();
        if flags.contains(CopyFlags::COMPACT) {
            self.compact(src, &meta, w)
        } else {
            plain(src, &meta, w)
        }
    }

    fn compact<S: PageSource>(&self, src: &S, meta: &Meta, w: &mut dyn Write) -> Result<()> {
        let ps = src.page_size();
        // A counting pass first: the meta pages come first in the output
        // and name the last page, and `w` cannot seek back.
        let mut count = Compactor::new(src, None);
        let main = count.main(meta)?;
        let last = count.next - 1;
        let mut out = Compactor::new(src, Some(w));
        let metas = compact_metas(meta, &main, last, self.map_size(), self.flags(), ps);
        out.emit(&metas)?;
        let main2 = out.main(meta)?;
        if main2 != main || out.next - 1 != last {
            // Only a snapshot changing under the read transaction could
            // make the two passes differ.
            return Err(Error::corrupted(main.root, "tree changed during the copy"));
        }
        Ok(())
    }
}

/// Writes `meta`'s payload into a meta page numbered `pgno`.
fn meta_page(page: &mut [u8], pgno: u64, meta: &Meta) {
    page[0..8].copy_from_slice(&pgno.to_le_bytes());
    page[10..12].copy_from_slice(&PageFlags::META.0.to_le_bytes());
    page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE].copy_from_slice(&meta.to_bytes());
}

/// The page-for-page copy.
fn plain<S: PageSource>(src: &S, meta: &Meta, w: &mut dyn Write) -> Result<()> {
    let ps = src.page_size();
    // Both slots hold the snapshot's meta: the other slot of the live file
    // may already belong to a newer transaction, whose pages are not part
    // of this snapshot.
    let mut head = vec![0u8; 2 * ps];
    for (i, page) in head.chunks_mut(ps).enumerate() {
        meta_page(page, i as u64, meta);
    }
    w.write_all(&head)?;
    let end = meta.last_pgno.saturating_add(1);
    let mut pgno = NUM_METAS;
    while pgno < end {
        let n = CHUNK_PAGES.min(end - pgno);
        match src.pages(pgno, n) {
            Ok(b) => {
                w.write_all(b)?;
                pgno += n;
            }
            Err(_) => {
                // Like mdb_copy, stop at the end of the data file when it is
                // shorter than the snapshot claims (pages never written).
                while pgno < end {
                    let Ok(b) = src.pages(pgno, 1) else {
                        return Ok(());
                    };
                    w.write_all(b)?;
                    pgno += 1;
                }
            }
        }
    }
    Ok(())
}

/// The meta pages of a compacted copy, as LMDB writes them: meta 0 is a
/// new environment's (transaction 0, empty databases), meta 1 holds the
/// main database at transaction 1, unless the main database is empty and
/// has no flags.
fn compact_metas(
    meta: &Meta,
    main: &DbRecord,
    last: u64,
    map_size: u64,
    flags: EnvFlags,
    ps: usize,
) -> Vec<u8> {
    let mut free = DbRecord::empty(DbFlags(
        DbFlags::INTEGERKEY.0 | (flags.0 & (EnvFlags::NOSUBDIR.0 | EnvFlags::FIXEDMAP.0)) as u16,
    ));
    free.pad = ps as u32;
    let m0 = Meta {
        address: meta.address,
        map_size,
        dbs: [free, DbRecord::empty(DbFlags::empty())],
        last_pgno: NUM_METAS - 1,
        txnid: 0,
    };
    let mut m1 = m0;
    if main.root != P_INVALID {
        m1.last_pgno = last;
        m1.dbs[MAIN_DBI] = *main;
    } else {
        m1.dbs[MAIN_DBI].flags = main.flags;
    }
    if main.root != P_INVALID || main.flags.0 != 0 {
        m1.txnid = 1;
    }
    debug_assert_eq!(m1.dbs[FREE_DBI].root, P_INVALID);
    let mut pages = vec![0u8; 2 * ps];
    meta_page(&mut pages[..ps], 0, &m0);
    meta_page(&mut pages[ps..], 1, &m1);
    pages
}

/// One pass of the compacting walk. With no writer it only numbers the
/// pages.
struct Compactor<'a, 'w, S> {
    src: &'a S,
    out: Option<&'w mut dyn Write>,
    /// The next page number of the copy.
    next: u64,
    /// Pages of the source reached so far: a page reached twice (a cycle
    /// or a page shared by two parents) is corruption, not something to
    /// copy twice.
    seen: PageSet,
}

impl<'a, 'w, S: PageSource> Compactor<'a, 'w, S> {
    fn new(src: &'a S, out: Option<&'w mut dyn Write>) -> Self {
        Compactor {
            src,
            out,
            next: NUM_METAS,
            seen: PageSet::new(),
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(w) = self.out.as_mut() {
            w.write_all(bytes)?;
        }
        Ok(())
    }

    /// Copies the main database with everything under it; returns its
    /// record with the new root.
    fn main(&mut self, meta: &Meta) -> Result<DbRecord> {
        let mut rec = *meta.main_db();
        if rec.root != P_INVALID {
            rec.root = self.page(rec.root, 0, 0)?;
        }
        Ok(rec)
    }

    fn reach(&mut self, pgno: u64) -> Result<()> {
        if pgno < NUM_METAS || !self.seen.insert(pgno) {
            return Err(Error::corrupted(pgno, "page referenced twice"));
        }
        Ok(())
    }

    /// Copies the tree page `pgno` at `depth` in its tree, after what it
    /// refers to; `nest` counts the trees above (0 for the main database,
    /// 1 for a named database or a dup sub-database of the main one, 2 for
    /// a named database's dup sub-database). Returns its new number.
    fn page(&mut self, pgno: u64, depth: usize, nest: usize) -> Result<u64> {
        if depth >= MAX_DEPTH {
            return Err(Error::corrupted(pgno, "tree too deep"));
        }
        self.reach(pgno)?;
        let src = self.src;
        let page = Page::new(src.pages(pgno, 1)?, pgno)?;
        let mut copy = page.bytes().to_vec();
        if page.is_branch() {
            for i in 0..page.len() {
                let child = page.node(i)?.child;
                let new = self.page(child, depth + 1, nest)?;
                if new >> 48 != 0 {
                    return Err(Error::corrupted(pgno, "copy too large"));
                }
                let off = node_offset(&page, i)?;
                copy[off..off + 2].copy_from_slice(&(new as u16).to_le_bytes());
                copy[off + 2..off + 4].copy_from_slice(&((new >> 16) as u16).to_le_bytes());
                copy[off + 4..off + 6].copy_from_slice(&((new >> 32) as u16).to_le_bytes());
            }
        } else if !page.is_leaf2() {
            for i in 0..page.len() {
                let node = page.node(i)?;
                let at = node_offset(&page, i)? + NODE_HEADER_SIZE + node.key.len();
                if let Some(first) = node.overflow_pgno() {
                    let new = self.overflow(first)?;
                    copy[at..at + 8].copy_from_slice(&new.to_le_bytes());
                } else if node.flags.contains(NodeFlags::SUBDATA) {
                    // A named database's record, or a dup sub-database's.
                    let mut rec = DbRecord::parse(node.value)
                        .ok_or(Error::corrupted(pgno, "short database record"))?;
                    if rec.root != P_INVALID {
                        if nest >= 2 {
                            return Err(Error::corrupted(pgno, "sub-databases nested too deep"));
                        }
                        rec.root = self.page(rec.root, 0, nest + 1)?;
                    }
                    let bytes = rec.to_bytes();
                    copy[at..at + bytes.len()].copy_from_slice(&bytes);
                }
            }
        }
        let new = self.next;
        self.next += 1;
        copy[0..8].copy_from_slice(&new.to_le_bytes());
        self.emit(&copy)?;
        Ok(new)
    }

    /// Copies the overflow run starting at `pgno`; returns its new first
    /// page number.
    fn overflow(&mut self, pgno: u64) -> Result<u64> {
        let src = self.src;
        let first = src.pages(pgno, 1)?;
        let flags = PageFlags(u16_at(first, 10).unwrap_or(0));
        if !flags.contains(PageFlags::OVERFLOW) {
            return Err(Error::corrupted(pgno, "not an overflow page"));
        }
        let n = u64::from(overflow_pages(first).unwrap_or(0));
        if n == 0 {
            return Err(Error::corrupted(pgno, "empty overflow run"));
        }
        let run = src.pages(pgno, n)?;
        for p in pgno..pgno + n {
            self.reach(p)?;
        }
        let new = self.next;
        self.next += n;
        if self.out.is_some() {
            let mut head = run[..src.page_size()].to_vec();
            head[0..8].copy_from_slice(&new.to_le_bytes());
            self.emit(&head)?;
            self.emit(&run[src.page_size()..])?;
        }
        Ok(new)
    }
}

/// The byte offset of node `i` of `page` (already validated by
/// [`Page::node`]).
fn node_offset(page: &Page<'_>, i: usize) -> Result<usize> {
    u16_at(page.bytes(), PAGE_HEADER_SIZE + 2 * i)
        .map(usize::from)
        .ok_or(Error::corrupted(page.pgno(), "node out of bounds"))
}
