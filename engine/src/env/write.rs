//! Write transactions: dirty pages, free-page reuse, and LMDB's commit
//! protocol (data pages, sync, then the meta page at `txnid & 1`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::mmap::{MapRun, Mmap};
use super::{Database, Env, ReadTxn};
use crate::btree::write::{check_nodes, copy_used, PageStore, PutFlags, Writer};
use crate::btree::{Cursor, CursorOp, PageSource};
use crate::error::{Error, Result};
use crate::format::{DbFlags, DbRecord, Meta, NodeFlags, Page, FREE_DBI, MAIN_DBI, NUM_METAS};

/// Hashes page numbers for the dirty-page map: one multiplication
/// (Fibonacci hashing) instead of SipHash, which dominated lookups on the
/// write path. Page numbers are dense integers, which this spreads evenly;
/// a hostile free list can at worst make lookups slow, never wrong.
#[derive(Clone, Copy, Default)]
pub(crate) struct PgnoHasher(u64);

impl Hasher for PgnoHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Reclaimed page numbers (`me_pghead`), kept as LMDB keeps its IDL:
/// sorted in descending order without duplicates, so the lowest page,
/// which single-page allocations take, comes off the end. A `BTreeSet`
/// cost hundreds of instructions per allocation.
#[derive(Clone, Default)]
struct PageList(Vec<u64>);

impl PageList {
    /// Adds pages, keeping the order; a page listed twice (a damaged
    /// free list) is kept once, so it cannot be handed out twice.
    fn extend(&mut self, pages: impl IntoIterator<Item = u64>) {
        self.0.extend(pages);
        self.0.sort_unstable_by(|a, b| b.cmp(a));
        self.0.dedup();
    }

    /// Removes the lowest run of `count` consecutive pages and returns its
    /// first page.
    fn take(&mut self, count: u64) -> Option<u64> {
        if count == 1 {
            return self.0.pop();
        }
        let v = &self.0;
        // From the end, the pages go up; `start` indexes the lowest page
        // of the current run.
        let mut start = v.len().checked_sub(1)?;
        for i in (0..v.len()).rev() {
            if i + 1 < v.len() && v[i] != v[i + 1] + 1 {
                start = i;
            }
            if v[i] - v[start] + 1 == count {
                let first = v[start];
                self.0.drain(i..=start);
                return Some(first);
            }
        }
        None
    }
}

/// The bytes of a dirty page run: a heap buffer written out at commit, or
/// (`WRITEMAP`) the pages themselves in the writable map.
pub(crate) enum PageBuf {
    Heap(Box<[u8]>),
    Map(MapRun),
}

impl PageBuf {
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            PageBuf::Heap(b) => b,
            PageBuf::Map(r) => r.bytes(),
        }
    }

    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            PageBuf::Heap(b) => b,
            PageBuf::Map(r) => r.bytes_mut(),
        }
    }
}

impl Clone for PageBuf {
    /// A copy of the bytes on the heap: what a nested transaction's parent
    /// keeps to return to if the child aborts, since the child goes on
    /// writing the map in place.
    fn clone(&self) -> Self {
        PageBuf::Heap(self.bytes().into())
    }
}

/// A set of page numbers, a bit each, up to the highest one added.
#[derive(Clone, Default)]
struct PageBits(Vec<u64>);

impl PageBits {
    #[inline]
    fn contains(&self, pgno: u64) -> bool {
        let word = usize::try_from(pgno / 64).ok();
        word.and_then(|w| self.0.get(w))
            .is_some_and(|b| b & (1 << (pgno % 64)) != 0)
    }

    fn insert(&mut self, pgno: u64) {
        let Ok(w) = usize::try_from(pgno / 64) else {
            return;
        };
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (pgno % 64);
    }

    fn remove(&mut self, pgno: u64) {
        let word = usize::try_from(pgno / 64).ok();
        if let Some(b) = word.and_then(|w| self.0.get_mut(w)) {
            *b &= !(1 << (pgno % 64));
        }
    }
}

/// Dirty pages by first page number.
///
/// Pages from the end of the file, numbered from `base` (the first page
/// the transaction found unused) on, are most of a large transaction's:
/// they sit in a vector indexed by `pgno - base`, found without hashing,
/// as the write path looks a page up several times per put. Reclaimed
/// pages below `base` go to a hash map, and have a bit set in `low_bits`:
/// most lookups ask after a clean page, or only whether a page is dirty,
/// and the bit answers those without hashing.
#[derive(Default)]
pub(crate) struct DirtyPages {
    base: u64,
    high: Vec<Option<PageBuf>>,
    /// Entries of `high` in use.
    high_len: usize,
    low: HashMap<u64, PageBuf, BuildHasherDefault<PgnoHasher>>,
    low_bits: PageBits,
    /// Entries in heap buffers: when there are none under `WRITEMAP`,
    /// every dirty page is in the map at its own number.
    heap: usize,
}

impl Clone for DirtyPages {
    /// Copies every page into a heap buffer (see `PageBuf::clone`).
    fn clone(&self) -> Self {
        DirtyPages {
            base: self.base,
            high: self.high.clone(),
            high_len: self.high_len,
            low: self.low.clone(),
            low_bits: self.low_bits.clone(),
            heap: self.high_len + self.low.len(),
        }
    }
}

impl DirtyPages {
    /// Empties the set for a transaction whose first unused page is `base`.
    fn reset(&mut self, base: u64) {
        self.base = base;
        self.high.clear();
        self.high_len = 0;
        for &p in self.low.keys() {
            self.low_bits.remove(p);
        }
        self.low.clear();
        self.heap = 0;
    }

    /// Whether every dirty page is in a writable map at its own number.
    #[inline]
    fn all_in_map(&self) -> bool {
        self.heap == 0
    }

    /// The index in `high` of a page from the end of the file. Those are
    /// handed out in order (reclaimed pages all lie below `base`: `reclaim`
    /// checks), so `high` grows only as far as pages are allocated.
    #[inline]
    fn slot(&self, pgno: u64) -> Option<usize> {
        usize::try_from(pgno.checked_sub(self.base)?).ok()
    }

    #[inline]
    pub(crate) fn get(&self, pgno: &u64) -> Option<&[u8]> {
        match self.slot(*pgno) {
            Some(i) => self.high.get(i)?.as_ref().map(PageBuf::bytes),
            None if !self.low_bits.contains(*pgno) => None,
            None => self.low.get(pgno).map(PageBuf::bytes),
        }
    }

    #[inline]
    fn get_mut(&mut self, pgno: &u64) -> Option<&mut [u8]> {
        match self.slot(*pgno) {
            Some(i) => self.high.get_mut(i)?.as_mut().map(PageBuf::bytes_mut),
            None => self.low.get_mut(pgno).map(PageBuf::bytes_mut),
        }
    }

    #[inline]
    fn contains_key(&self, pgno: &u64) -> bool {
        match self.slot(*pgno) {
            Some(i) => self.high.get(i).is_some_and(Option::is_some),
            None => self.low_bits.contains(*pgno),
        }
    }

    fn insert(&mut self, pgno: u64, bytes: PageBuf) {
        let heap = matches!(bytes, PageBuf::Heap(_));
        let old = match self.slot(pgno) {
            Some(i) => {
                if i >= self.high.len() {
                    self.high.resize_with(i + 1, || None);
                }
                let old = self.high[i].replace(bytes);
                if old.is_none() {
                    self.high_len += 1;
                }
                old
            }
            None => {
                self.low_bits.insert(pgno);
                self.low.insert(pgno, bytes)
            }
        };
        self.heap += heap as usize;
        self.heap -= matches!(old, Some(PageBuf::Heap(_))) as usize;
    }

    fn remove(&mut self, pgno: &u64) -> Option<PageBuf> {
        let b = match self.slot(*pgno) {
            Some(i) => {
                let b = self.high.get_mut(i)?.take()?;
                self.high_len -= 1;
                b
            }
            None => {
                self.low_bits.remove(*pgno);
                self.low.remove(pgno)?
            }
        };
        self.heap -= matches!(b, PageBuf::Heap(_)) as usize;
        Some(b)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.high_len == 0 && self.low.is_empty()
    }

    /// The pages a commit must write out (those in heap buffers; pages of
    /// a writable map are in place already), with adjacent pages next to
    /// each other in page order so that they can go out in one write.
    ///
    /// Reclaimed pages are grouped through their dirty bits rather than
    /// sorted: a single page whose lower neighbour is not a dirty single
    /// page starts a group, which takes its upper neighbours while they
    /// are. Overflow runs go alone. Pages from the end of the file are in
    /// order already.
    pub(crate) fn to_write(&self, page_size: usize) -> Vec<(u64, &[u8])> {
        if self.heap == 0 {
            return Vec::new();
        }
        let single = |p: u64| match self.low.get(&p) {
            Some(PageBuf::Heap(b)) if b.len() == page_size => Some(&b[..]),
            _ => None,
        };
        let mut v = Vec::with_capacity(self.low.len() + self.high_len);
        for (&p, b) in &self.low {
            let PageBuf::Heap(b) = b else { continue };
            if b.len() != page_size {
                v.push((p, &b[..]));
                continue;
            }
            let follows = p
                .checked_sub(1)
                .is_some_and(|q| self.low_bits.contains(q) && single(q).is_some());
            if follows {
                continue;
            }
            v.push((p, &b[..]));
            let mut next = p + 1;
            while self.low_bits.contains(next) {
                let Some(b) = single(next) else { break };
                v.push((next, b));
                next += 1;
            }
        }
        let base = self.base;
        v.extend(self.high.iter().enumerate().filter_map(|(i, b)| match b {
            Some(PageBuf::Heap(b)) => Some((base + i as u64, &b[..])),
            _ => None,
        }));
        v
    }

    /// The first page number of every dirty run, in no particular order.
    fn pgnos(&self) -> impl Iterator<Item = u64> + '_ {
        let base = self.base;
        self.high
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_some())
            .map(move |(i, _)| base + i as u64)
            .chain(self.low.keys().copied())
    }

    /// Moves every heap buffer out, leaving the set empty with its tables.
    fn drain_buffers(&mut self) -> impl Iterator<Item = Box<[u8]>> + '_ {
        self.high_len = 0;
        self.heap = 0;
        for &p in self.low.keys() {
            self.low_bits.remove(p);
        }
        self.high
            .drain(..)
            .flatten()
            .chain(self.low.drain().map(|(_, b)| b))
            .filter_map(|b| match b {
                PageBuf::Heap(b) => Some(b),
                PageBuf::Map(_) => None,
            })
    }

    /// Whether the tables are small enough to keep for the next transaction.
    fn worth_keeping(&self) -> bool {
        self.high.capacity() <= RECYCLE_MAP && self.low.capacity() <= RECYCLE_MAP
    }
}

/// What one write transaction hands the next (LMDB's `me_dpages`): page
/// buffers, the dirty map's table and its page-number lists. A transaction
/// of a few puts would otherwise allocate, zero and free every page it
/// touches, and grow the map from nothing, each time. Kept under the
/// environment's writer mutex, which only the write transaction holds.
#[derive(Default)]
pub(crate) struct Recycled {
    dirty: DirtyPages,
    pages: Vec<Box<[u8]>>,
    own: OwnPages,
    /// Emptied page-number lists (`free_pgs`, `pghead`, `loose`,
    /// `reclaimed`, `parsed`): a one-put transaction spent a tenth of its
    /// instructions allocating and freeing them.
    lists: [Vec<u64>; 5],
    /// The emptied table of database states, for the same reason.
    dbs: Vec<Option<DbState>>,
    /// The vectors the free-list save builds its lists in.
    save: SaveBuffers,
}

/// Vectors the free-list save builds its lists and records in, kept from
/// round to round and from commit to commit: allocating and freeing them
/// was 2% of a one-put transaction's instructions.
#[derive(Default)]
pub(crate) struct SaveBuffers {
    lists: Vec<Vec<u64>>,
    bytes: Vec<u8>,
}

impl SaveBuffers {
    /// An empty list, a kept one if there is one.
    fn list(&mut self) -> Vec<u64> {
        let mut v = self.lists.pop().unwrap_or_default();
        v.clear();
        v
    }

    /// Keeps `v` for a later [`list`](Self::list), within bounds.
    fn keep(&mut self, v: Vec<u64>) {
        if self.lists.len() < 8 && v.capacity() <= RECYCLE_LIST {
            self.lists.push(v);
        }
    }
}

/// The pages whose current bytes this process's own commits wrote, since
/// the last commit of any other writer: this code built their nodes, so a
/// later transaction copying one of them needs no [`check_nodes`] pass,
/// which otherwise costs more than the copy. Pages of a file as found, or
/// as another process left it, are all checked.
///
/// A bit per page up to the highest one written, so at most one bit per
/// page of the map. A copy made for a nested transaction starts empty:
/// the set is only a cache, and an empty one means more checks, never
/// fewer.
#[derive(Default)]
pub(crate) struct OwnPages {
    bits: PageBits,
    /// The commit that the set is up to date with.
    txnid: u64,
}

impl Clone for OwnPages {
    fn clone(&self) -> Self {
        OwnPages::default()
    }
}

impl OwnPages {
    #[inline]
    fn contains(&self, pgno: u64) -> bool {
        self.bits.contains(pgno)
    }

    /// Adds the pages of a commit of ours, which produced `txnid`.
    fn record(&mut self, pages: impl Iterator<Item = u64>, txnid: u64) {
        for pgno in pages {
            self.bits.insert(pgno);
        }
        self.txnid = txnid;
    }

    /// The set for a transaction starting from commit `txnid`: emptied if
    /// another writer committed since the set was last brought up to date.
    fn follow(&mut self, txnid: u64) {
        if self.txnid != txnid {
            self.bits = PageBits::default();
            self.txnid = txnid;
        }
    }
}

/// Most page buffers kept between transactions, in bytes: enough for the
/// paths a transaction of a few hundred puts touches, small enough to hold
/// on to for the environment's life.
const RECYCLE_BYTES: usize = 8 << 20;
/// Largest dirty map (in entries) whose table is kept between transactions.
const RECYCLE_MAP: usize = 1 << 14;
/// Largest page-number list (in entries) kept between transactions.
const RECYCLE_LIST: usize = 1 << 16;

/// Least and most bytes a `WRITEMAP` writer faults the map in past a new
/// page at the end of the data (see `WriteState::fault_ahead`).
const FAULT_AHEAD_MIN: usize = 64 << 10;
/// See [`FAULT_AHEAD_MIN`].
const FAULT_AHEAD_MAX: usize = 4 << 20;

/// Single-page buffers free for reuse within a transaction. A copy made
/// for a nested transaction starts without any: buffers are only a cache.
#[derive(Default)]
struct SparePages(Vec<Box<[u8]>>);

impl Clone for SparePages {
    fn clone(&self) -> Self {
        SparePages(Vec::new())
    }
}

/// The page state of a write transaction: its dirty pages over the map,
/// and the free-page bookkeeping.
#[derive(Clone)]
pub struct WriteState<'env> {
    map: super::MapSource<'env>,
    /// The writable map, under `WRITEMAP`: dirty pages are written there
    /// in place rather than in heap buffers written out at commit.
    writable: Option<&'env Mmap>,
    page_size: usize,
    /// Pages written by this transaction, by first page number; overflow
    /// runs are one entry.
    dirty: DirtyPages,
    /// Page buffers to reuse for single dirty pages.
    spare: SparePages,
    /// Pages known to hold what this process's commits wrote.
    own: OwnPages,
    /// First page number never used.
    next_pgno: u64,
    /// Largest page number the map can hold, plus one.
    max_pgno: u64,
    /// Commits leave flushing to the operating system (NOSYNC, or
    /// WRITEMAP with MAPASYNC).
    lazy_sync: bool,
    /// Pages this transaction freed that older snapshots may still read.
    free_pgs: Vec<u64>,
    /// Reclaimed pages, free for reuse now (`me_pghead`).
    pghead: PageList,
    /// Pages allocated and freed again by this transaction.
    loose: Vec<u64>,
    /// Keys of the free-DB records reclaimed into `pghead`.
    reclaimed: Vec<u64>,
    /// Where `reclaim` parses a record's page list.
    parsed: Vec<u64>,
    /// Free-DB records with smaller keys than this may be reclaimed.
    oldest: u64,
    /// Set once no record past the last reclaimed one may be reclaimed. It
    /// stays so until the commit: the only record a transaction adds is
    /// its own, under its txnid, newer than `oldest`; so allocations stop
    /// asking the free DB again (C asks on every one).
    exhausted: bool,
    /// While the free list is saved, allocations reclaim no record: that
    /// would read the free DB halfway through a change. The save reclaims
    /// between its changes itself.
    saving: bool,
    /// Set when saving the free list does not settle quickly: then new
    /// pages come only from the end of the file, which always settles.
    end_only: bool,
    free_db: DbRecord,
}

impl PageSource for WriteState<'_> {
    #[inline]
    fn page_size(&self) -> usize {
        self.page_size
    }

    #[inline]
    fn pages(&self, pgno: u64, count: u64) -> Result<&[u8]> {
        // Under WRITEMAP a dirty page is written where it lies in the map,
        // unless a nested transaction's abort left a heap copy: read there
        // without looking it up, as C's `mdb_page_get` does. The map is
        // only read while `&self` is borrowed, so never while a `&mut`
        // from a run of the same page is live.
        if self.writable.is_some() && self.dirty.all_in_map() {
            return self.map.page_bytes(pgno, count);
        }
        let ps = self.page_size as u64;
        if let Some(p) = self.dirty.get(&pgno) {
            let need = count.saturating_mul(ps);
            return p
                .get(..need as usize)
                .ok_or(Error::corrupted(pgno, "dirty run shorter than asked"));
        }
        self.map.page_bytes(pgno, count)
    }
}

impl WriteState<'_> {
    fn take_from_head(&mut self, count: u64) -> Option<u64> {
        self.pghead.take(count)
    }

    /// Moves the next reclaimable free-DB record into `pghead`. Returns
    /// false when there is none.
    fn reclaim(&mut self) -> Result<bool> {
        if self.exhausted {
            return Ok(false);
        }
        let after = self.reclaimed.last().copied();
        let rec = self.free_db;
        let mut pages = std::mem::take(&mut self.parsed);
        let key = {
            let mut c = Cursor::new(&*self, &rec);
            let got = match after {
                None => c.get(CursorOp::First, None, None)?,
                Some(k) => {
                    let kb = k.to_le_bytes();
                    match c.get(CursorOp::SetRange, Some(&kb), None)? {
                        Some((key, _)) if key == kb => c.get(CursorOp::Next, None, None)?,
                        other => other,
                    }
                }
            };
            let Some((key, val)) = got else {
                self.exhausted = true;
                return Ok(false);
            };
            let key =
                free_key(key).ok_or(Error::corrupted(rec.root, "free-DB key is not a txnid"))?;
            if key >= self.oldest {
                self.exhausted = true;
                return Ok(false);
            }
            if !parse_idl(val, &mut pages) {
                return Err(Error::corrupted(rec.root, "malformed free-page list"));
            }
            // Whether another record can be reclaimed, while the cursor is
            // at hand: records this transaction writes stand under its own
            // txnid or a key already reclaimed, so none can be added.
            self.exhausted = match c.get(CursorOp::Next, None, None)? {
                Some((next, _)) => free_key(next).is_some_and(|k| k >= self.oldest),
                None => true,
            };
            key
        };
        // Every page a free list names was in use before this transaction
        // began, and is not a meta page; any other comes from a damaged file.
        if let Some(&p) = pages
            .iter()
            .find(|&&p| p >= self.dirty.base || p < NUM_METAS)
        {
            let what = if p < NUM_METAS {
                "free-page list names a meta page"
            } else {
                "free-page list names a page past the end"
            };
            return Err(Error::corrupted(p, what));
        }
        self.reclaimed.push(key);
        self.pghead.extend(pages.drain(..));
        self.parsed = pages;
        Ok(true)
    }
}

/// Merges two lists in descending order into one, without duplicates.
fn merge_desc(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    merge_desc_into(a, b, &mut out);
    out
}

/// [`merge_desc`] into `out`, which it empties first.
fn merge_desc_into(a: &[u64], b: &[u64], out: &mut Vec<u64>) {
    out.clear();
    out.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let take_a = j == b.len() || (i < a.len() && a[i] >= b[j]);
        let v = if take_a { a[i] } else { b[j] };
        if take_a {
            i += 1;
        } else {
            j += 1;
        }
        if out.last() != Some(&v) {
            out.push(v);
        }
    }
}

fn free_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(k.try_into().ok()?))
}

/// Parses a free-page list (a count, then that many page numbers) into
/// `pages`; false if it is malformed.
fn parse_idl(v: &[u8], pages: &mut Vec<u64>) -> bool {
    let body = v
        .get(..8)
        .and_then(|n| usize::try_from(u64::from_le_bytes(n.try_into().ok()?)).ok())
        .and_then(|n| v.get(8..n.checked_mul(8)?.checked_add(8)?));
    let Some(body) = body else {
        return false;
    };
    pages.clear();
    pages.extend(
        body.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
    );
    true
}

/// A free-page list as a record stores it (a count, then the page
/// numbers), into `v`, which it empties first.
fn idl_bytes(pages: &[u64], v: &mut Vec<u8>) {
    v.clear();
    v.reserve(8 * (pages.len() + 1));
    v.extend_from_slice(&(pages.len() as u64).to_le_bytes());
    for p in pages {
        v.extend_from_slice(&p.to_le_bytes());
    }
}

impl PageStore for WriteState<'_> {
    fn touch(&mut self, pgno: u64) -> Result<u64> {
        if self.dirty.contains_key(&pgno) {
            return Ok(pgno);
        }
        // A clean page is the map's: its bytes outlive this borrow of
        // `self`, so they go straight into the new dirty page.
        let src = self.map.page_bytes(pgno, 1)?;
        let new = self.alloc_pgno(1)?;
        if new == pgno {
            // Only a damaged free list hands out a page in use. Under
            // WRITEMAP the copy would write the very bytes it reads.
            return Err(Error::corrupted(pgno, "free-page list names a page in use"));
        }
        let mut copy = self.page_copy(new, src)?;
        // The checks `tree_page` and `check_nodes` make, on the copy: it is
        // what later edits trust, and the copy has just brought it into the
        // cache in one sequential pass.
        let checked = Page::new(copy.bytes(), pgno).and_then(|p| {
            if p.stored_pgno() != pgno {
                return Err(Error::corrupted(pgno, "page number in header differs"));
            }
            if self.own.contains(pgno) {
                return Ok(());
            }
            check_nodes(&p)
        });
        if let Err(e) = checked {
            self.loose.push(new);
            self.recycle(copy);
            return Err(e);
        }
        copy.bytes_mut()[0..8].copy_from_slice(&new.to_le_bytes());
        self.dirty.insert(new, copy);
        // What `free` does for a page that is not dirty, without looking
        // it up again.
        self.free_pgs.push(pgno);
        Ok(new)
    }

    fn page_mut(&mut self, pgno: u64) -> Result<&mut [u8]> {
        self.dirty
            .get_mut(&pgno)
            .ok_or(Error::corrupted(pgno, "page is not dirty"))
    }

    fn alloc(&mut self, count: u64) -> Result<u64> {
        let pgno = self.alloc_pgno(count)?;
        let bytes = self.page_buf(pgno, count)?;
        self.dirty.insert(pgno, bytes);
        Ok(pgno)
    }

    fn is_dirty(&self, pgno: u64) -> bool {
        self.dirty.contains_key(&pgno)
    }

    fn free(&mut self, pgno: u64, count: u64) {
        if let Some(buf) = self.dirty.remove(&pgno) {
            // Written by this transaction only: no snapshot can see it.
            if count == 1 {
                self.loose.push(pgno);
                self.recycle(buf);
            } else {
                self.pghead.extend(pgno..pgno + count);
            }
            return;
        }
        self.free_pgs.extend(pgno..pgno + count);
    }
}

impl WriteState<'_> {
    /// Picks the numbers of `count` consecutive pages to write: loose
    /// pages, reclaimed ones, or new ones at the end of the file.
    fn alloc_pgno(&mut self, count: u64) -> Result<u64> {
        Ok('found: {
            if !self.end_only {
                if count == 1 {
                    if let Some(p) = self.loose.pop() {
                        break 'found p;
                    }
                }
                loop {
                    if let Some(p) = self.take_from_head(count) {
                        break 'found p;
                    }
                    if self.saving || !self.reclaim()? {
                        break;
                    }
                }
            }
            let p = self.next_pgno;
            if p + count > self.max_pgno {
                return Err(Error::MapFull);
            }
            if let Some(map) = self.writable {
                map.fault_in(
                    self.byte_offset(p),
                    self.byte_offset(count),
                    self.fault_ahead(p),
                )?;
            }
            self.next_pgno += count;
            p
        })
    }

    /// Where page `pgno` starts in the map (pages allocated lie below
    /// `max_pgno`, inside the map, whose length is a `usize`).
    fn byte_offset(&self, pgno: u64) -> usize {
        usize::try_from(pgno)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.page_size)
    }

    /// How far past a new page at `pgno` to fault the writable map in
    /// with it: an eighth of the data, within bounds, so that a growing
    /// file takes one system call per stretch rather than a fault per
    /// page, while a small one does not gain megabytes of zeroes on disk.
    /// None when commits sync: pages faulted in ahead are dirty, and the
    /// next sync would write them out as zeroes first.
    fn fault_ahead(&self, pgno: u64) -> usize {
        if !self.lazy_sync {
            return 0;
        }
        (self.byte_offset(pgno) / 8).clamp(FAULT_AHEAD_MIN, FAULT_AHEAD_MAX)
    }

    /// Where to write the `count` pages from `pgno`: the pages themselves
    /// in a writable map, else a heap buffer (a spare one when there is
    /// one). The bytes are whatever the pages or the buffer held.
    fn page_buf(&mut self, pgno: u64, count: u64) -> Result<PageBuf> {
        if let Some(map) = self.writable {
            let ps = self.page_size as u64;
            return pgno
                .checked_mul(ps)
                .zip(count.checked_mul(ps))
                .and_then(|(off, len)| {
                    map.run_mut(usize::try_from(off).ok()?, usize::try_from(len).ok()?)
                })
                .map(PageBuf::Map)
                .ok_or(Error::MapFull);
        }
        Ok(PageBuf::Heap(match self.spare.0.pop() {
            Some(b) if count == 1 => b,
            other => {
                if let Some(b) = other {
                    self.spare.0.push(b);
                }
                vec![0u8; (count as usize) * self.page_size].into_boxed_slice()
            }
        }))
    }

    /// Page `pgno` as a copy of `src`: the bytes `src` uses copied into
    /// the page's place in a writable map or into a spare buffer, else the
    /// whole page into a new buffer (copying all of it costs less than
    /// zeroing a new buffer first).
    fn page_copy(&mut self, pgno: u64, src: &[u8]) -> Result<PageBuf> {
        if self.writable.is_none() && self.spare.0.is_empty() {
            return Ok(PageBuf::Heap(src.into()));
        }
        let mut buf = self.page_buf(pgno, 1)?;
        copy_used(buf.bytes_mut(), src);
        Ok(buf)
    }

    /// Keeps a single-page heap buffer no longer needed for reuse.
    fn recycle(&mut self, buf: PageBuf) {
        if let PageBuf::Heap(b) = buf {
            if b.len() == self.page_size {
                self.spare.0.push(b);
            }
        }
    }
}

/// A database as a write transaction sees it.
#[derive(Clone)]
struct DbState {
    rec: DbRecord,
    /// Changed in this transaction: its record must be written back.
    dirty: bool,
    /// Dropped in this transaction: its record must be deleted.
    dropped: bool,
    /// The last leaf, when the last change to the database was an append
    /// (see [`Writer::append`]); every other change forgets it.
    tail: Option<u64>,
}

impl DbState {
    fn new(rec: DbRecord, dirty: bool) -> DbState {
        DbState {
            rec,
            dirty,
            dropped: false,
            tail: None,
        }
    }
}

/// A read-write transaction. Only one exists at a time per environment.
///
/// Values read through it borrow the transaction, so the borrow checker
/// rules out reading a value that a later write in the same transaction
/// may have moved.
pub struct RwTxn<'env> {
    env: &'env Env,
    _lock: super::WriteLocks<'env>,
    txnid: u64,
    base: Meta,
    state: WriteState<'env>,
    dbs: Vec<Option<DbState>>,
    /// Saved states of the enclosing transactions of nested ones.
    parents: Vec<(WriteState<'env>, Vec<Option<DbState>>)>,
}

impl<'env> RwTxn<'env> {
    pub(super) fn begin(
        env: &'env Env,
        lock: super::WriteLocks<'env>,
        meta: Meta,
        map: super::MapSource<'env>,
        writable: Option<&'env Mmap>,
        oldest: u64,
    ) -> Self {
        let ps = env.page_size() as u64;
        let mut lock = lock;
        let mut dirty = std::mem::take(&mut lock._local.dirty);
        dirty.reset(meta.last_pgno + 1);
        let spare = SparePages(std::mem::take(&mut lock._local.pages));
        let mut own = std::mem::take(&mut lock._local.own);
        let [free_pgs, pghead, loose, reclaimed, parsed] = std::mem::take(&mut lock._local.lists);
        let mut dbs = std::mem::take(&mut lock._local.dbs);
        dbs.extend([
            Some(DbState::new(meta.dbs[FREE_DBI], false)),
            Some(DbState::new(meta.dbs[MAIN_DBI], false)),
        ]);
        own.follow(meta.txnid);
        let state = WriteState {
            map,
            writable,
            page_size: env.page_size(),
            dirty,
            spare,
            own,
            next_pgno: meta.last_pgno + 1,
            max_pgno: env.map_size() / ps,
            lazy_sync: env.lazy_sync(),
            free_pgs,
            pghead: PageList(pghead),
            loose,
            reclaimed,
            parsed,
            oldest,
            exhausted: false,
            saving: false,
            end_only: false,
            free_db: meta.dbs[FREE_DBI],
        };
        RwTxn {
            env,
            _lock: lock,
            txnid: meta.txnid + 1,
            base: meta,
            state,
            dbs,
            parents: Vec::new(),
        }
    }

    /// This transaction's id.
    pub fn id(&self) -> u64 {
        self.txnid
    }

    /// The environment.
    pub fn env(&self) -> &'env Env {
        self.env
    }

    fn db_state(&mut self, db: Database) -> Result<&mut DbState> {
        let i = self.db_index(db)?;
        self.dbs[i].as_mut().ok_or(Error::BadDbi)
    }

    /// The index in `dbs` of `db`, its record loaded: for callers that
    /// borrow the record and the page state at once.
    #[inline]
    fn db_index(&mut self, db: Database) -> Result<usize> {
        let i = db.dbi() as usize;
        if i >= self.dbs.len() || self.dbs[i].is_none() {
            let name = self.env.dbi_name(db)?;
            let rec = self.named_record(&name)?.ok_or(Error::BadDbi)?;
            if self.dbs.len() <= i {
                self.dbs.resize(i + 1, None);
            }
            self.dbs[i] = Some(DbState::new(rec, false));
        }
        match &self.dbs[i] {
            Some(s) if !s.dropped => Ok(i),
            _ => Err(Error::BadDbi),
        }
    }

    fn named_record(&self, name: &[u8]) -> Result<Option<DbRecord>> {
        let main = self.main_rec();
        let mut c = Cursor::new(&self.state, &main);
        match c.get(CursorOp::Set, Some(name), None)? {
            None => Ok(None),
            Some((_, v)) => {
                let node = c.current_node()?;
                if node.flags.0 & (NodeFlags::SUBDATA.0 | NodeFlags::DUPDATA.0)
                    != NodeFlags::SUBDATA.0
                {
                    return Err(Error::Incompatible);
                }
                Ok(Some(DbRecord::parse(v).ok_or(Error::corrupted(
                    main.root,
                    "short named database record",
                ))?))
            }
        }
    }

    fn main_rec(&self) -> DbRecord {
        self.dbs[MAIN_DBI]
            .as_ref()
            .map(|s| s.rec)
            .unwrap_or(self.base.dbs[MAIN_DBI])
    }

    /// Opens a database: the main one for `None`, else a named one.
    /// [`Error::NotFound`] if it does not exist.
    pub fn open_db(&mut self, name: Option<&str>) -> Result<Database> {
        self.open_or_create(name, None)
    }

    /// Opens a named database, creating it with `flags` if it is missing
    /// (`mdb_dbi_open` with `MDB_CREATE`). For the main database, `flags`
    /// are added to its stored flags when it is empty.
    pub fn create_db(&mut self, name: Option<&str>, flags: DbFlags) -> Result<Database> {
        self.open_or_create(name, Some(flags))
    }

    fn open_or_create(&mut self, name: Option<&str>, create: Option<DbFlags>) -> Result<Database> {
        let Some(name) = name else {
            if let Some(f) = create {
                let st = self.db_state(Database::MAIN)?;
                let want = DbFlags(st.rec.flags.0 | (f.0 & DbFlags::PERSISTENT.0));
                if want != st.rec.flags {
                    st.rec.flags = want;
                    st.dirty = true;
                }
            }
            return Ok(Database::MAIN);
        };
        // A database dropped earlier in this transaction keeps its record
        // in the main database until commit: it no longer exists.
        let found = match self.named_record(name.as_bytes())? {
            Some(_) if self.dropped_here(name.as_bytes()) => None,
            found => found,
        };
        let rec = match found {
            Some(rec) => rec,
            None => {
                let Some(f) = create else {
                    return Err(Error::NotFound);
                };
                if self.env.read_only() {
                    return Err(Error::ReadOnly);
                }
                let main = self.main_rec().flags;
                if main.contains(DbFlags::DUPSORT) || main.contains(DbFlags::INTEGERKEY) {
                    return Err(Error::Incompatible);
                }
                let db = self.env.dbi_for(Some(name.as_bytes()))?;
                let rec = DbRecord::empty(DbFlags(f.0 & DbFlags::PERSISTENT.0));
                self.set_db(db, DbState::new(rec, true));
                return Ok(db);
            }
        };
        let db = self.env.dbi_for(Some(name.as_bytes()))?;
        let i = db.dbi() as usize;
        let known = self
            .dbs
            .get(i)
            .and_then(|s| s.as_ref())
            .is_some_and(|s| !s.dropped);
        if !known {
            self.set_db(db, DbState::new(rec, false));
        }
        Ok(db)
    }

    /// Whether the named database `name` was dropped in this transaction.
    fn dropped_here(&self, name: &[u8]) -> bool {
        self.env
            .dbi_names()
            .iter()
            .zip(&self.dbs)
            .any(|(n, st)| n.as_deref() == Some(name) && st.as_ref().is_some_and(|s| s.dropped))
    }

    fn set_db(&mut self, db: Database, st: DbState) {
        let i = db.dbi() as usize;
        if self.dbs.len() <= i {
            self.dbs.resize(i + 1, None);
        }
        self.dbs[i] = Some(st);
    }

    fn check_writable(&self, db: Database) -> Result<()> {
        if self.env.read_only() {
            return Err(Error::ReadOnly);
        }
        if db.dbi() == FREE_DBI as u32 {
            return Err(Error::InvalidArgument);
        }
        Ok(())
    }

    /// Stores `data` under `key` (`mdb_put`).
    pub fn put(&mut self, db: Database, key: &[u8], data: &[u8], flags: PutFlags) -> Result<()> {
        self.check_writable(db)?;
        let i = self.db_index(db)?;
        let st = self.dbs[i].as_mut().ok_or(Error::BadDbi)?;
        // Even a failed put may have touched pages; the record tracks them.
        st.dirty = true;
        let tail = st.tail.take();
        let mut w = Writer::new(&mut self.state);
        let appends = PutFlags(PutFlags::APPEND.0 | PutFlags::NOOVERWRITE.0);
        if flags.contains(PutFlags::APPEND)
            && flags.0 & !appends.0 == 0
            && !st.rec.flags.contains(DbFlags::DUPSORT)
        {
            st.tail = Some(w.append(&mut st.rec, key, data, flags, tail)?);
            return Ok(());
        }
        w.put(&mut st.rec, key, data, flags).map(|_| ())
    }

    /// Stores a value of `len` zero bytes under `key` and returns it to be
    /// filled in place (`MDB_RESERVE`). Not for DUPSORT databases, whose
    /// values must be known to be sorted.
    pub fn reserve(
        &mut self,
        db: Database,
        key: &[u8],
        len: usize,
        flags: PutFlags,
    ) -> Result<&mut [u8]> {
        if self.db_flags(db)?.contains(DbFlags::DUPSORT) {
            return Err(Error::InvalidArgument);
        }
        self.put(db, key, &vec![0u8; len], flags)?;
        let rec = self.db_state(db)?.rec;
        let (pgno, range) = Writer::new(&mut self.state).value_location(&rec, key)?;
        let page = self.state.page_mut(pgno)?;
        page.get_mut(range)
            .ok_or(Error::corrupted(pgno, "reserved value out of bounds"))
    }

    /// Deletes `key`, or with `data` one value of a DUPSORT key (`mdb_del`).
    pub fn del(&mut self, db: Database, key: &[u8], data: Option<&[u8]>) -> Result<()> {
        self.check_writable(db)?;
        let i = self.db_index(db)?;
        let st = self.dbs[i].as_mut().ok_or(Error::BadDbi)?;
        st.dirty = true;
        st.tail = None;
        Writer::new(&mut self.state)
            .del(&mut st.rec, key, data)
            .map(|_| ())
    }

    /// Empties `db`, freeing its pages (`mdb_drop(txn, dbi, 0)`).
    pub fn clear_db(&mut self, db: Database) -> Result<()> {
        self.check_writable(db)?;
        let rec = self.db_state(db)?.rec;
        Writer::new(&mut self.state).free_tree(&rec)?;
        let st = self.db_state(db)?;
        st.rec = DbRecord::empty(rec.flags);
        st.rec.pad = rec.pad;
        st.dirty = true;
        st.tail = None;
        Ok(())
    }

    /// Deletes a named database and frees its pages (`mdb_drop(txn, dbi, 1)`).
    pub fn drop_db(&mut self, db: Database) -> Result<()> {
        if db.dbi() <= MAIN_DBI as u32 {
            return self.clear_db(db);
        }
        self.clear_db(db)?;
        let st = self.db_state(db)?;
        st.dropped = true;
        Ok(())
    }

    /// Starts a nested transaction: changes made until the returned guard
    /// commits are undone if it aborts or is dropped.
    pub fn nested(&mut self) -> Result<Nested<'_, 'env>> {
        self.parents.push((self.state.clone(), self.dbs.clone()));
        Ok(Nested {
            txn: self,
            done: false,
        })
    }

    /// Discards every change.
    pub fn abort(self) {}

    /// Commits: writes the named databases' records, saves the free list,
    /// writes the dirty pages, syncs, then writes and syncs the meta page.
    pub fn commit(mut self) -> Result<()> {
        let changed = !self.state.dirty.is_empty()
            || !self.state.free_pgs.is_empty()
            || self.dbs.iter().flatten().any(|s| s.dirty);
        if !changed {
            return Ok(());
        }
        self.save_db_records()?;
        self.save_free_list()?;
        let meta = Meta {
            address: 0,
            map_size: self.env.map_size(),
            dbs: [self.state.free_db, self.main_rec()],
            last_pgno: self.state.next_pgno - 1,
            txnid: self.txnid,
        };
        // A page holding what a commit of this process wrote was in the page
        // cache then, and again when a later transaction copied and freed
        // it: those may go through the commit map. New pages at the end of
        // the file are cheaper to write than to fault in.
        let own = &self.state.own;
        self.env
            .write_commit(&self.state.dirty, &meta, |p| own.contains(p))?;
        let state = &mut self.state;
        state.own.record(state.dirty.pgnos(), meta.txnid);
        Ok(())
    }

    fn save_db_records(&mut self) -> Result<()> {
        if !self.dbs.iter().skip(2).flatten().any(|st| st.dirty) {
            return Ok(());
        }
        let mut main = self.main_rec();
        let names = self.env.dbi_names();
        for (i, st) in self.dbs.iter().enumerate().skip(2) {
            let Some(st) = st else { continue };
            if !st.dirty {
                continue;
            }
            let Some(Some(name)) = names.get(i) else {
                continue;
            };
            let mut w = Writer::new(&mut self.state);
            if st.dropped {
                match w.del_subdb_record(&mut main, name) {
                    Ok(()) | Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            } else {
                w.put_subdb_record(&mut main, name, &st.rec)?;
            }
        }
        if let Some(st) = self.dbs[MAIN_DBI].as_mut() {
            st.rec = main;
        }
        Ok(())
    }

    /// Records the pages this transaction freed (and reclaimed pages it did
    /// not use) in the free DB under its txnid, deleting the records it
    /// reclaimed (`mdb_freelist_save`). Updating the free DB frees and
    /// allocates pages itself, so this repeats until nothing changes.
    ///
    /// Each round first reclaims records until enough reusable pages are
    /// at hand for the round's own changes, as LMDB reclaims while it saves:
    /// taking them from the end of the file instead would grow it on
    /// every commit. Records are reclaimed only between changes, while
    /// the free DB is whole.
    fn save_free_list(&mut self) -> Result<()> {
        // Pages this transaction freed wait under its own txnid until no
        // reader can see them; pages already free for reuse (reclaimed and
        // not used, or allocated and freed again here) go back under the
        // newest reclaimed key, as LMDB does, so the next transaction can
        // take them at once.
        let own_key = self.txnid.to_le_bytes();
        // Reclaimed records deleted so far, and the key the reuse record
        // stands under now.
        let mut deleted = 0;
        let mut reuse_at: Option<[u8; 8]> = None;
        let mut written: Option<(Vec<u64>, Vec<u64>)> = None;
        // `free_pgs[..sorted]` is in descending order: each round sorts
        // only the pages freed since and merges them in.
        let mut sorted = 0;
        let mut bufs = std::mem::take(&mut self._lock._local.save);
        self.state.saving = true;
        for round in 0.. {
            if round == 16 {
                self.state.end_only = true;
            }
            // Enough for a round: the free DB's path copied and split at
            // every level, for each of the records a round writes.
            let want = 4 * (self.state.free_db.depth as usize + 2);
            while !self.state.end_only
                && self.state.pghead.0.len() + self.state.loose.len() < want
                && self.state.reclaim()?
            {}
            // Records are reclaimed in key order, so the last is the
            // newest: the reuse record moves there when a round reclaims
            // one, and must leave the key it stood under.
            let fresh = self.state.reclaimed.len() > deleted;
            for i in deleted..self.state.reclaimed.len() {
                let key = self.state.reclaimed[i].to_le_bytes();
                self.on_free_db(|w, free| w.del(free, &key, None).map(|_| ()))?;
            }
            deleted = self.state.reclaimed.len();
            let reuse_key = self.state.reclaimed.last().map(|k| k.to_le_bytes());
            if fresh {
                if let Some(old) = reuse_at.take() {
                    self.on_free_db(|w, free| match w.del(free, &old, None) {
                        Ok(_) | Err(Error::NotFound) => Ok(()),
                        Err(e) => Err(e),
                    })?;
                }
                written = written.map(|(own, reuse)| {
                    bufs.keep(reuse);
                    (own, Vec::new())
                });
            }
            let freed = &mut self.state.free_pgs;
            freed[sorted..].sort_unstable_by(|a, b| b.cmp(a));
            if sorted > 0 && sorted < freed.len() {
                *freed = merge_desc(&freed[..sorted], &freed[sorted..]);
            }
            sorted = freed.len();
            let mut own = bufs.list();
            own.extend_from_slice(freed);
            let mut loose = bufs.list();
            loose.extend_from_slice(&self.state.loose);
            loose.sort_unstable_by(|a, b| b.cmp(a));
            // `pghead` is already in descending order: merge rather than
            // sort the (often long) whole.
            let mut reuse = bufs.list();
            merge_desc_into(&self.state.pghead.0, &loose, &mut reuse);
            bufs.keep(loose);
            if reuse_key.is_none() {
                let mut all = bufs.list();
                merge_desc_into(&own, &reuse, &mut all);
                bufs.keep(std::mem::replace(&mut own, all));
                reuse.clear();
            }
            let now = (own, reuse);
            if !fresh
                && (written.as_ref() == Some(&now)
                    || (written.is_none() && now.0.is_empty() && now.1.is_empty()))
            {
                bufs.keep(now.0);
                bufs.keep(now.1);
                break;
            }
            let prev = written.take();
            for (key, pages, before) in [
                (Some(own_key), &now.0, prev.as_ref().map(|w| &w.0)),
                (reuse_key, &now.1, prev.as_ref().map(|w| &w.1)),
            ] {
                let Some(key) = key else { continue };
                if before == Some(pages) {
                    continue;
                }
                if pages.is_empty() {
                    // Only an earlier round can have written the record:
                    // the own key is new, and the reuse key's record was
                    // deleted as reclaimed (or, as the old reuse key, when
                    // a newer record was reclaimed).
                    if before.is_some_and(|b| !b.is_empty()) {
                        self.on_free_db(|w, free| match w.del(free, &key, None) {
                            Ok(_) | Err(Error::NotFound) => Ok(()),
                            Err(e) => Err(e),
                        })?;
                    }
                } else {
                    idl_bytes(pages, &mut bufs.bytes);
                    let bytes = &bufs.bytes;
                    self.on_free_db(|w, free| {
                        w.put(free, &key, bytes, PutFlags::empty()).map(|_| ())
                    })?;
                }
            }
            if let Some((own, reuse)) = prev {
                bufs.keep(own);
                bufs.keep(reuse);
            }
            reuse_at = reuse_key.filter(|_| !now.1.is_empty());
            written = Some(now);
        }
        if let Some((own, reuse)) = written {
            bufs.keep(own);
            bufs.keep(reuse);
        }
        if bufs.bytes.capacity() <= 8 * RECYCLE_LIST {
            self._lock._local.save = bufs;
        }
        self.state.saving = false;
        self.state.end_only = false;
        if let Some(st) = self.dbs[FREE_DBI].as_mut() {
            st.rec = self.state.free_db;
        }
        Ok(())
    }

    /// Runs `op` on the free DB, keeping its record where `reclaim` reads
    /// it, so records reclaimed while the free list is saved come from the
    /// tree as it now stands.
    fn on_free_db(
        &mut self,
        op: impl FnOnce(&mut Writer<'_, WriteState<'env>>, &mut DbRecord) -> Result<()>,
    ) -> Result<()> {
        let mut free = self.state.free_db;
        let r = op(&mut Writer::new(&mut self.state), &mut free);
        self.state.free_db = free;
        r
    }
}

impl Drop for RwTxn<'_> {
    /// Hands the page buffers and the dirty map's table to the next write
    /// transaction, within bounds.
    fn drop(&mut self) {
        let ps = self.state.page_size;
        let keep = (RECYCLE_BYTES / ps).max(64);
        let mut pages = std::mem::take(&mut self.state.spare.0);
        let mut dirty = std::mem::take(&mut self.state.dirty);
        // Under WRITEMAP there is usually no buffer to hand on.
        if !dirty.all_in_map() {
            for b in dirty.drain_buffers() {
                if pages.len() >= keep {
                    break;
                }
                if b.len() == ps {
                    pages.push(b);
                }
            }
        }
        pages.truncate(keep);
        let cache = &mut self._lock._local;
        cache.own = std::mem::take(&mut self.state.own);
        if dirty.worth_keeping() {
            dirty.reset(0);
            cache.dirty = dirty;
        }
        cache.pages = pages;
        let st = &mut self.state;
        let lists = [
            &mut st.free_pgs,
            &mut st.pghead.0,
            &mut st.loose,
            &mut st.reclaimed,
            &mut st.parsed,
        ];
        for (kept, list) in cache.lists.iter_mut().zip(lists) {
            if list.capacity() <= RECYCLE_LIST {
                list.clear();
                *kept = std::mem::take(list);
            }
        }
        self.dbs.clear();
        cache.dbs = std::mem::take(&mut self.dbs);
    }
}

/// A nested write transaction (`mdb_txn_begin` with a parent).
pub struct Nested<'p, 'env> {
    txn: &'p mut RwTxn<'env>,
    done: bool,
}

impl<'env> Nested<'_, 'env> {
    /// Keeps the nested transaction's changes in the parent.
    pub fn commit(mut self) -> Result<()> {
        self.txn.parents.pop();
        self.done = true;
        Ok(())
    }

    /// Undoes the nested transaction's changes.
    pub fn abort(self) {}
}

impl<'env> core::ops::Deref for Nested<'_, 'env> {
    type Target = RwTxn<'env>;
    fn deref(&self) -> &RwTxn<'env> {
        self.txn
    }
}

impl<'env> core::ops::DerefMut for Nested<'_, 'env> {
    fn deref_mut(&mut self) -> &mut RwTxn<'env> {
        self.txn
    }
}

impl Drop for Nested<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            if let Some((state, dbs)) = self.txn.parents.pop() {
                // The saved copy left out the cache of pages this process
                // wrote, which no transaction changes before its commit.
                let own = std::mem::take(&mut self.txn.state.own);
                self.txn.state = state;
                self.txn.state.own = own;
                self.txn.dbs = dbs;
            }
        }
    }
}

impl<'env> super::ReadTxn for RwTxn<'env> {
    type Source = WriteState<'env>;

    fn source(&self) -> &WriteState<'env> {
        &self.state
    }

    fn db_record(&self, db: Database) -> Result<DbRecord> {
        match self.dbs.get(db.dbi() as usize) {
            Some(Some(s)) if !s.dropped => Ok(s.rec),
            Some(Some(_)) => Err(Error::BadDbi),
            _ => {
                let name = self.env.dbi_name(db)?;
                self.named_record(&name)?.ok_or(Error::BadDbi)
            }
        }
    }
}

impl<S: PageStore + ?Sized> Writer<'_, S> {
    /// Writes the record of the named database `name` into the main
    /// database (`F_SUBDATA` node).
    pub fn put_subdb_record(
        &mut self,
        main: &mut DbRecord,
        name: &[u8],
        rec: &DbRecord,
    ) -> Result<()> {
        self.put_node_flags(main, name, &rec.to_bytes(), NodeFlags::SUBDATA)
    }

    /// Deletes the record of the named database `name`.
    pub fn del_subdb_record(&mut self, main: &mut DbRecord, name: &[u8]) -> Result<()> {
        self.del_node_flags(main, name, NodeFlags::SUBDATA)
    }
}

#[cfg(test)]
mod tests {
    use super::{DirtyPages, OwnPages, PageBuf, PageList};

    #[test]
    fn pages_to_write_come_once_each_with_neighbours_together() {
        let ps = 16;
        let page = |n: usize| PageBuf::Heap(vec![0u8; n * ps].into_boxed_slice());
        let mut d = DirtyPages::default();
        d.reset(100);
        for p in [7, 5, 10, 6, 100, 101, 3] {
            d.insert(p, page(1));
        }
        // An overflow run, and a single page right after it.
        d.insert(20, page(2));
        d.insert(22, page(1));
        d.remove(&3);
        let got: Vec<u64> = d.to_write(ps).into_iter().map(|(p, _)| p).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [5, 6, 7, 10, 20, 22, 100, 101]);
        let at = |p| got.iter().position(|&q| q == p).unwrap();
        assert_eq!((at(6), at(7)), (at(5) + 1, at(5) + 2));
        assert_eq!(at(101), at(100) + 1);
    }

    #[test]
    fn own_pages_are_forgotten_when_another_writer_commits() {
        let mut own = OwnPages::default();
        own.follow(7);
        own.record([3, 64, 1000].into_iter(), 8);
        assert!(own.contains(3) && own.contains(64) && own.contains(1000));
        assert!(!own.contains(4) && !own.contains(999) && !own.contains(1 << 40));
        // Our own commit 8 is where the next transaction starts: kept.
        own.follow(8);
        assert!(own.contains(1000));
        // Commit 9 came from someone else: nothing is known any more.
        own.follow(9);
        assert!(!own.contains(3) && !own.contains(64) && !own.contains(1000));
        // A nested transaction's saved copy knows nothing either.
        own.record([5].into_iter(), 10);
        assert!(!own.clone().contains(5));
    }

    #[test]
    fn merge_desc_keeps_order_without_duplicates() {
        assert_eq!(
            super::merge_desc(&[9, 5, 2], &[9, 7, 5, 1]),
            [9, 7, 5, 2, 1]
        );
        assert_eq!(super::merge_desc(&[], &[3, 3, 1]), [3, 1]);
        assert_eq!(super::merge_desc(&[4], &[]), [4]);
    }

    #[test]
    fn page_list_takes_lowest_pages_and_runs() {
        let mut l = PageList::default();
        l.extend([9, 3, 4, 7, 12, 10, 11, 4]);
        assert_eq!(l.0, [12, 11, 10, 9, 7, 4, 3]);
        assert_eq!(l.take(3), Some(9));
        assert_eq!(l.0, [12, 7, 4, 3]);
        assert_eq!(l.take(2), Some(3));
        assert_eq!(l.take(2), None);
        assert_eq!(l.take(1), Some(7));
        assert_eq!(l.take(1), Some(12));
        assert_eq!(l.take(1), None);
        assert_eq!(l.take(2), None);
    }
}
