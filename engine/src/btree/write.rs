//! B+tree updates: insert and delete with copy-on-write, page split,
//! rebalance and merge, overflow runs, and DUPSORT values in sub-pages and
//! sub-databases. The shapes follow LMDB's, so C LMDB reads and continues
//! writing what this code writes.

use alloc::vec::Vec;
use core::cmp::Ordering;

use super::levels::Levels;
use super::pagebuf as pb;
use super::{Cmp, PageSource};
use crate::error::{Error, Result};
use crate::format::{
    DbFlags, DbRecord, NodeFlags, Page, PageFlags, DB_RECORD_SIZE, MAX_DEPTH, MAX_KEY_SIZE,
    NODE_HEADER_SIZE, PAGE_HEADER_SIZE, P_INVALID,
};

/// Pages a write transaction can change.
pub trait PageStore: PageSource {
    /// Makes page `pgno` writable, copying it to a new page number if it is
    /// not yet dirty in this transaction; returns the writable number.
    ///
    /// A page it copies must first pass [`check_nodes`]: the write path
    /// edits dirty pages with unchecked offsets and does not check them
    /// again.
    fn touch(&mut self, pgno: u64) -> Result<u64>;
    /// The bytes of a dirty page (or run of `count` pages).
    fn page_mut(&mut self, pgno: u64) -> Result<&mut [u8]>;
    /// Allocates `count` consecutive dirty pages. Their bytes are left as
    /// they were (as LMDB leaves a reused page): callers write the header
    /// and every byte they use.
    fn alloc(&mut self, count: u64) -> Result<u64>;
    /// Releases `count` pages starting at `pgno`.
    fn free(&mut self, pgno: u64, count: u64);
    /// Whether `pgno` was written by this transaction.
    fn is_dirty(&self, pgno: u64) -> bool;
}

/// Flags of a put (`mdb_put` / `mdb_cursor_put`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PutFlags(pub u32);

impl PutFlags {
    /// Fail with KeyExist if the key exists.
    pub const NOOVERWRITE: PutFlags = PutFlags(0x10);
    /// DUPSORT: fail with KeyExist if the pair exists.
    pub const NODUPDATA: PutFlags = PutFlags(0x20);
    /// Replace the item at the cursor.
    pub const CURRENT: PutFlags = PutFlags(0x40);
    /// Reserve space for the value and return it.
    pub const RESERVE: PutFlags = PutFlags(0x10000);
    /// The key sorts after every key in the database.
    pub const APPEND: PutFlags = PutFlags(0x20000);
    /// The value sorts after every value of the key.
    pub const APPENDDUP: PutFlags = PutFlags(0x40000);
    /// DUPFIXED: store several contiguous values.
    pub const MULTIPLE: PutFlags = PutFlags(0x80000);

    /// No flags.
    pub const fn empty() -> PutFlags {
        PutFlags(0)
    }
    /// Whether every flag of `o` is set.
    pub const fn contains(self, o: PutFlags) -> bool {
        self.0 & o.0 == o.0
    }
}

impl core::ops::BitOr for PutFlags {
    type Output = PutFlags;
    fn bitor(self, o: PutFlags) -> PutFlags {
        PutFlags(self.0 | o.0)
    }
}

/// The largest node that stays on a page (`me_nodemax`): bigger values go
/// to overflow pages, bigger dup sets to sub-databases.
pub fn node_max(page_size: usize) -> usize {
    (((page_size - PAGE_HEADER_SIZE) / 2) & !1) - 2
}

/// Pages in an overflow run holding `size` bytes (`OVPAGES`).
pub fn overflow_count(size: usize, page_size: usize) -> u64 {
    ((PAGE_HEADER_SIZE - 1 + size) / page_size + 1) as u64
}

const FILL_THRESHOLD: usize = 250;

/// One tree being changed: its record and ordering. The record's counts
/// change saturating: a damaged file may hold any value there.
struct TreeRef<'r> {
    rec: &'r mut DbRecord,
    cmp: Cmp,
    /// LEAF2 key size, for DUPFIXED sub-databases.
    ksize: usize,
}

/// A root-to-leaf path: page numbers and the index within each.
#[derive(Default)]
struct Path {
    // One spare slot: a root split adds a level above a tree of the
    // deepest depth a search accepts.
    pg: Levels<u64, { MAX_DEPTH + 1 }>,
    ki: Levels<usize, { MAX_DEPTH + 1 }>,
}

impl Path {
    fn top(&self) -> usize {
        self.pg.len() - 1
    }
}

/// A node to add to a leaf.
enum NewNode<'a> {
    /// A leaf node from its parts, built in place on the page: `data` is
    /// the inline value or a BIGDATA node's overflow page number, `dsize`
    /// the value's size.
    Leaf {
        key: &'a [u8],
        data: &'a [u8],
        dsize: usize,
        flags: NodeFlags,
    },
    /// A LEAF2 key.
    Leaf2(&'a [u8]),
}

impl NewNode<'_> {
    /// The node's raw bytes, for the (rarer) paths that rebuild pages.
    fn to_vec(&self) -> Vec<u8> {
        match *self {
            NewNode::Leaf {
                key,
                data,
                dsize,
                flags,
            } => pb::leaf_node(key, data, dsize, flags),
            NewNode::Leaf2(k) => k.to_vec(),
        }
    }
}

/// Where a put's value goes: inline, or in an overflow run (its first
/// page number, as the node stores it).
struct ValueNode {
    flags: NodeFlags,
    overflow: Option<[u8; 8]>,
}

impl ValueNode {
    fn node<'a>(&'a self, key: &'a [u8], data: &'a [u8]) -> NewNode<'a> {
        NewNode::Leaf {
            key,
            data: match &self.overflow {
                Some(pg) => pg,
                None => data,
            },
            dsize: data.len(),
            flags: self.flags,
        }
    }
}

/// The size limits of a put (`MDB_BAD_VALSIZE`): a key of 1 to 511 bytes
/// (4 or 8 under INTEGERKEY), a dup value no longer than a key and not
/// empty under DUPFIXED, any value under 4 GiB.
fn check_sizes(dbf: DbFlags, key: &[u8], data: &[u8]) -> Result<()> {
    let bad_key = key.is_empty()
        || key.len() > MAX_KEY_SIZE
        || (dbf.contains(DbFlags::INTEGERKEY) && key.len() != 4 && key.len() != 8);
    let bad_dup =
        DupInfo::of(dbf).is_some_and(|d| data.len() > MAX_KEY_SIZE || (d.fixed && data.is_empty()));
    if bad_key || bad_dup || (data.len() as u64) >= (u32::MAX as u64) {
        return Err(Error::BadValSize);
    }
    Ok(())
}

/// Checks that every node of `page` lies inside it, between `mp_upper`
/// and the end, as the write path's unchecked edits of a dirty copy of it
/// need (and [`copy_used`] copies no more).
///
/// The same checks as [`Page::node`] makes of each node, in one tight pass:
/// this runs for every page a write transaction copies.
pub fn check_nodes(page: &Page<'_>) -> Result<()> {
    if page.is_leaf2() {
        return Ok(());
    }
    let b = page.bytes();
    let upper = page.upper();
    let branch = page.is_branch();
    let node_ok = |ptr: &[u8]| -> Option<()> {
        let off = u16::from_le_bytes([ptr[0], ptr[1]]) as usize;
        if off < upper {
            return None;
        }
        let h = b.get(off..off + NODE_HEADER_SIZE)?;
        let ksize = u16::from_le_bytes([h[6], h[7]]) as usize;
        let vlen = if branch {
            0
        } else if u16::from_le_bytes([h[4], h[5]]) & NodeFlags::BIGDATA.0 != 0 {
            8
        } else {
            u16::from_le_bytes([h[0], h[1]]) as usize
                | (u16::from_le_bytes([h[2], h[3]]) as usize) << 16
        };
        (off + NODE_HEADER_SIZE + ksize + vlen <= b.len()).then_some(())
    };
    let ok = b
        .get(PAGE_HEADER_SIZE..page.lower())
        .is_some_and(|ptrs| ptrs.chunks_exact(2).all(|p| node_ok(p).is_some()));
    match ok {
        true => Ok(()),
        false => Err(Error::corrupted(page.pgno(), "node out of bounds")),
    }
}

/// Copies tree page `src` into `dst` (`mdb_page_copy`): the header, the
/// node pointers and the nodes, but not the free space between them, which
/// is half the page on average. The bounds come from the header as copied,
/// so a check of `dst` sees what was copied; a header whose bounds do not
/// fit the page has the whole page copied, for [`Page::new`] to reject.
pub fn copy_used(dst: &mut [u8], src: &[u8]) {
    let len = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..len], &src[..len]);
    if len < PAGE_HEADER_SIZE {
        dst.copy_from_slice(src);
        return;
    }
    dst[..PAGE_HEADER_SIZE].copy_from_slice(&src[..PAGE_HEADER_SIZE]);
    let at = |o: usize| u16::from_le_bytes([dst[o], dst[o + 1]]);
    let (flags, lower, upper) = (at(10), at(12) as usize, at(14) as usize);
    if !(PAGE_HEADER_SIZE <= lower && lower <= upper && upper <= len) {
        dst.copy_from_slice(src);
    } else if flags & PageFlags::LEAF2.0 != 0 {
        // LEAF2 keys sit packed after the header, not at the end.
        let used = len - (upper - lower);
        dst[PAGE_HEADER_SIZE..used].copy_from_slice(&src[PAGE_HEADER_SIZE..used]);
    } else {
        dst[PAGE_HEADER_SIZE..lower].copy_from_slice(&src[PAGE_HEADER_SIZE..lower]);
        dst[upper..].copy_from_slice(&src[upper..]);
    }
}

/// A tree page, read through the checked accessors of [`Page`]. Its nodes
/// are not all checked here, which would cost a pass over the page on
/// every descent: only dirty pages are edited, and a page becomes dirty
/// either built by this code or copied by [`PageStore::touch`], which
/// checks it once.
#[inline]
fn validated<S: PageSource + ?Sized>(s: &S, pgno: u64) -> Result<Page<'_>> {
    s.tree_page(pgno)
}

/// Descends to the leaf where `key` belongs (`mdb_page_search` +
/// `mdb_node_search`). Returns the path and whether `key` was found.
/// Fills `path`, which must be empty, rather than returning it: a path is
/// a few hundred bytes, and moving it out through a `Result` cost a copy
/// per put.
fn search<S: PageStore + ?Sized>(
    s: &S,
    t: &TreeRef<'_>,
    key: &[u8],
    path: &mut Path,
) -> Result<bool> {
    search_leaf(s, t, key, path).map(|(_, exact)| exact)
}

/// [`search`], also handing back the leaf it ends on, already validated,
/// for callers that read the node found before changing anything.
fn search_leaf<'s, S: PageStore + ?Sized>(
    s: &'s S,
    t: &TreeRef<'_>,
    key: &[u8],
    path: &mut Path,
) -> Result<(Page<'s>, bool)> {
    let mut pgno = t.rec.root;
    loop {
        if path.pg.len() >= MAX_DEPTH || path.pg.len() >= t.rec.depth as usize {
            return Err(Error::corrupted(pgno, "tree deeper than recorded"));
        }
        let page = validated(s, pgno)?;
        if page.is_leaf() {
            // Loading the whole leaf at once costs little more than the
            // first miss of its binary search: the bulk insert runs a
            // quarter faster.
            super::prefetch::prefetch(page.bytes());
        }
        let (idx, exact) = node_search(&page, key, t.cmp, t.ksize)?;
        if !path.pg.push(pgno) {
            return Err(Error::corrupted(pgno, "tree deeper than recorded"));
        }
        if page.is_leaf() {
            if path.pg.len() != t.rec.depth as usize {
                return Err(Error::corrupted(pgno, "leaf above the recorded depth"));
            }
            path.ki.push(idx);
            return Ok((page, exact));
        }
        let Some(last) = page.len().checked_sub(1) else {
            return Err(Error::corrupted(pgno, "empty branch page"));
        };
        let i = if idx >= page.len() {
            last
        } else if !exact {
            idx.saturating_sub(1)
        } else {
            idx
        };
        path.ki.push(i);
        pgno = page.node(i)?.child;
    }
}

/// Descends along the last child of every page to the end of the last
/// leaf (`mdb_page_search` with `MDB_PS_LAST`): where an appended key goes.
fn search_last<S: PageStore + ?Sized>(s: &S, t: &TreeRef<'_>, path: &mut Path) -> Result<()> {
    let mut pgno = t.rec.root;
    loop {
        if path.pg.len() >= MAX_DEPTH || path.pg.len() >= t.rec.depth as usize {
            return Err(Error::corrupted(pgno, "tree deeper than recorded"));
        }
        let page = validated(s, pgno)?;
        if !path.pg.push(pgno) {
            return Err(Error::corrupted(pgno, "tree deeper than recorded"));
        }
        if page.is_leaf() {
            if path.pg.len() != t.rec.depth as usize {
                return Err(Error::corrupted(pgno, "leaf above the recorded depth"));
            }
            path.ki.push(page.len());
            return Ok(());
        }
        let Some(i) = page.len().checked_sub(1) else {
            return Err(Error::corrupted(pgno, "empty branch page"));
        };
        path.ki.push(i);
        pgno = page.node(i)?.child;
    }
}

/// The first index whose key is not less than `key`, and whether it is equal.
fn node_search(page: &Page<'_>, key: &[u8], cmp: Cmp, ksize: usize) -> Result<(usize, bool)> {
    let n = page.len();
    let (mut lo, mut hi) = (if page.is_leaf() { 0 } else { 1 }, n);
    let (leaf2, bytes, lower) = (page.is_leaf2(), page.bytes(), page.lower());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let k = if leaf2 {
            page.leaf2_key(mid, ksize)?
        } else {
            super::node_key(bytes, lower, mid)
                .ok_or(Error::corrupted(page.pgno(), "node out of bounds"))?
        };
        match cmp.compare(key, k) {
            Ordering::Equal => return Ok((mid, true)),
            Ordering::Greater => lo = mid + 1,
            Ordering::Less => hi = mid,
        }
    }
    Ok((lo, false))
}

/// Makes every page of `path` dirty, fixing parent pointers and the root.
fn touch_path<S: PageStore + ?Sized>(
    s: &mut S,
    t: &mut TreeRef<'_>,
    path: &mut Path,
) -> Result<()> {
    for l in 0..path.pg.len() {
        let old = path.pg[l];
        let new = s.touch(old)?;
        if new != old {
            if l == 0 {
                t.rec.root = new;
            } else {
                let parent = path.pg[l - 1];
                pb::set_child(s.page_mut(parent)?, path.ki[l - 1], new);
            }
            path.pg[l] = new;
        }
    }
    Ok(())
}

/// Raw nodes (or LEAF2 keys) of pages being split or merged, in order:
/// the bytes of all of them in one buffer, so taking a page apart costs
/// two allocations rather than one per node.
#[derive(Default)]
struct Nodes {
    buf: Vec<u8>,
    /// Start and length of each node in `buf`.
    spans: Vec<(usize, usize)>,
}

impl Nodes {
    fn with_capacity(bytes: usize, n: usize) -> Nodes {
        Nodes {
            buf: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(n),
        }
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    fn get(&self, i: usize) -> &[u8] {
        let (s, l) = self.spans[i];
        &self.buf[s..s + l]
    }
    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|&(s, l)| &self.buf[s..s + l])
    }
    fn push(&mut self, n: &[u8]) {
        self.insert(self.spans.len(), n);
    }
    /// Inserts `n` before node `i`. Its bytes go at the end of the
    /// buffer: only the order of the spans matters.
    fn insert(&mut self, i: usize, n: &[u8]) {
        self.spans.insert(i, (self.buf.len(), n.len()));
        self.buf.extend_from_slice(n);
    }
    /// Replaces node `i` with `n`.
    fn set(&mut self, i: usize, n: &[u8]) {
        self.spans[i] = (self.buf.len(), n.len());
        self.buf.extend_from_slice(n);
    }
    /// Moves the nodes from `at` on into a new list.
    fn split_off(&mut self, at: usize) -> Nodes {
        let mut right = Nodes::with_capacity(self.buf.len(), self.len() - at);
        for &(s, l) in &self.spans[at..] {
            right.push(&self.buf[s..s + l]);
        }
        self.spans.truncate(at);
        right
    }
    /// Splits before node `at` into the nodes of a left and a right page,
    /// and returns the right ones with the separator that goes up to the
    /// parent: the right page's first key. On a branch level that first
    /// node then gives up its key, as branch node 0 carries none.
    fn split_at_separator(&mut self, at: usize, leaf2: bool, branch: bool) -> (Nodes, Vec<u8>) {
        let mut right = self.split_off(at);
        let sep = if leaf2 {
            right.get(0).to_vec()
        } else {
            pb::raw_key(right.get(0)).to_vec()
        };
        if branch {
            right.set(0, &pb::branch_node(&[], pb::raw_child(right.get(0))));
        }
        (right, sep)
    }
    fn extend(&mut self, other: &Nodes) {
        for n in other.iter() {
            self.push(n);
        }
    }
}

/// The raw nodes of a page, in order (LEAF2 keys for LEAF2 pages).
fn page_nodes(p: &[u8], ksize: usize) -> Nodes {
    let n = pb::nkeys(p);
    let mut nodes = Nodes::with_capacity(p.len(), n + 1);
    if pb::leaf2(p) {
        for i in 0..n {
            nodes.push(pb::leaf2_key(p, i, ksize));
        }
    } else {
        for i in 0..n {
            nodes.push(pb::node_bytes(p, i));
        }
    }
    nodes
}

/// Rewrites page `p` to hold exactly `nodes`.
fn fill_page(p: &mut [u8], pgno: u64, flags: u16, pad: usize, nodes: &Nodes, leaf2: bool) -> bool {
    pb::init(p, pgno, flags);
    pb::set_pad(p, pad);
    for (i, n) in nodes.iter().enumerate() {
        let ok = if leaf2 {
            pb::add_leaf2(p, i, n)
        } else {
            pb::add_node(p, i, n)
        };
        if !ok {
            return false;
        }
    }
    true
}

fn space(n: &[u8], leaf2: bool) -> usize {
    if leaf2 {
        n.len()
    } else {
        pb::node_space(n.len())
    }
}

/// Where to split `nodes` (which do not fit one page) so both halves fit:
/// the middle, moved as little as possible; with APPEND the new last node
/// starts a leaf of its own so sequential loads fill pages, and a branch
/// page passes on its last node with it (as C's `mdb_page_split` does for
/// a node added at the end). A branch half keeps two nodes wherever the
/// page has four: LMDB requires two on every branch page, and C's
/// `mdb_rebalance` asserts it.
fn split_point(
    nodes: &Nodes,
    cap: usize,
    leaf2: bool,
    branch: bool,
    append_at_end: bool,
) -> Option<usize> {
    let n = nodes.len();
    let size = |i: usize| {
        let l = nodes.spans[i].1;
        if leaf2 {
            l
        } else {
            pb::node_space(l)
        }
    };
    let total: usize = (0..n).map(size).sum();
    let fits = |s: usize| {
        let left: usize = (0..s).map(size).sum();
        let mut right = total - left;
        if branch {
            // The right page's first node loses its key.
            right = right - size(s) + pb::node_space(NODE_HEADER_SIZE);
        }
        left <= cap && right <= cap
    };
    let least = if branch && n >= 4 { 2 } else { 1 };
    if append_at_end {
        let s = n.saturating_sub(least);
        if s >= least && fits(s) {
            return Some(s);
        }
    }
    // Nearest the middle with `least` nodes a side; with one if only that
    // fits (nodes near half a page each, on the smallest pages).
    let mid = n.div_ceil(2).clamp(1, n - 1);
    let nearest = |least: usize| {
        (0..n)
            .flat_map(|d| [mid.checked_add(d), mid.checked_sub(d)])
            .flatten()
            .filter(|&s| s >= least && s + least <= n)
            .find(|&s| fits(s))
    };
    nearest(least).or_else(|| nearest(1))
}

/// The tree-changing operations of one write transaction.
pub struct Writer<'s, S: PageStore + ?Sized> {
    s: &'s mut S,
    page_size: usize,
}

impl<'s, S: PageStore + ?Sized> Writer<'s, S> {
    /// Operations on the pages of `s`.
    pub fn new(s: &'s mut S) -> Self {
        let page_size = s.page_size();
        Writer { s, page_size }
    }

    fn cap(&self) -> usize {
        self.page_size - PAGE_HEADER_SIZE
    }

    /// Inserts `node` at the leaf of `path`, splitting pages up the path as
    /// needed. The path must be dirty.
    fn insert(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        node: NewNode,
        append: bool,
    ) -> Result<()> {
        let top = path.top();
        let leaf = path.pg[top];
        let idx = path.ki[top];
        let p = self.s.page_mut(leaf)?;
        let ok = match node {
            NewNode::Leaf {
                key,
                data,
                dsize,
                flags,
            } => pb::add_leaf(p, idx, key, data, dsize, flags),
            NewNode::Leaf2(k) => pb::add_leaf2(p, idx, k),
        };
        if ok {
            return Ok(());
        }
        let leaf2 = matches!(node, NewNode::Leaf2(_));
        let n = pb::nkeys(p);
        let append_at_end = append && idx == n;
        if append_at_end && n >= 1 {
            // What `split_point` picks for an appended node: the page
            // keeps its nodes and the new one starts the next page. Build
            // that directly instead of taking the page apart.
            let (flags, pad) = self.page_kind(leaf)?;
            let rp = self.new_right_page(t, flags, pad)?;
            let p = self.s.page_mut(rp)?;
            let (ok, sep) = match node {
                NewNode::Leaf {
                    key,
                    data,
                    dsize,
                    flags,
                } => (pb::add_leaf(p, 0, key, data, dsize, flags), key),
                NewNode::Leaf2(k) => (pb::add_leaf2(p, 0, k), k),
            };
            if !ok {
                return Err(Error::corrupted(leaf, "node too large for a page"));
            }
            return self.add_separator(t, path, top, rp, sep, true);
        }
        let mut nodes = page_nodes(p, t.ksize);
        nodes.insert(idx, &node.to_vec());
        self.split(t, path, top, nodes, leaf2, append_at_end)
    }

    /// The flags (less `DIRTY`) and LEAF2 key size of dirty page `pgno`:
    /// what a page split off it takes.
    fn page_kind(&mut self, pgno: u64) -> Result<(u16, usize)> {
        let p = self.s.page_mut(pgno)?;
        Ok((
            pb::flags(p) & !(PageFlags::DIRTY.0),
            u16::from_le_bytes([p[8], p[9]]) as usize,
        ))
    }

    /// Allocates an empty page with `flags` and LEAF2 key size `pad`, to
    /// go right of the page it is split off, and counts it in the tree's
    /// record.
    fn new_right_page(&mut self, t: &mut TreeRef<'_>, flags: u16, pad: usize) -> Result<u64> {
        let rp = self.s.alloc(1)?;
        if flags & PageFlags::BRANCH.0 != 0 {
            t.rec.branch_pages = t.rec.branch_pages.saturating_add(1);
        } else {
            t.rec.leaf_pages = t.rec.leaf_pages.saturating_add(1);
        }
        let p = self.s.page_mut(rp)?;
        pb::init(p, rp, flags);
        pb::set_pad(p, pad);
        Ok(rp)
    }

    /// Splits the page at `level` of `path`, whose new contents `nodes` do
    /// not fit one page, and inserts the separator into the parent.
    fn split(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        level: usize,
        mut nodes: Nodes,
        leaf2: bool,
        append_at_end: bool,
    ) -> Result<()> {
        let pgno = path.pg[level];
        let (flags, pad) = self.page_kind(pgno)?;
        let branch = flags & PageFlags::BRANCH.0 != 0;
        let s = split_point(&nodes, self.cap(), leaf2, branch, append_at_end)
            .ok_or(Error::corrupted(pgno, "node too large to split"))?;
        let (right, sep) = nodes.split_at_separator(s, leaf2, branch);
        let rp = self.new_right_page(t, flags, pad)?;
        let ok_l = fill_page(self.s.page_mut(pgno)?, pgno, flags, pad, &nodes, leaf2);
        let ok_r = fill_page(self.s.page_mut(rp)?, rp, flags, pad, &right, leaf2);
        if !ok_l || !ok_r {
            return Err(Error::corrupted(pgno, "split halves do not fit"));
        }
        self.add_separator(t, path, level, rp, &sep, append_at_end)
    }

    /// Inserts the separator `sep` of the new right page `rp` of the page at
    /// `level` into its parent, splitting the parent (or growing a new
    /// root) as needed.
    fn add_separator(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        level: usize,
        rp: u64,
        sep: &[u8],
        append_at_end: bool,
    ) -> Result<()> {
        let pgno = path.pg[level];
        let sep_node = pb::branch_node(sep, rp);
        if level == 0 {
            // The root split: grow the tree by one level.
            let root = self.s.alloc(1)?;
            let p = self.s.page_mut(root)?;
            pb::init(p, root, PageFlags::BRANCH.0);
            pb::add_node(p, 0, &pb::branch_node(&[], pgno));
            pb::add_node(p, 1, &sep_node);
            t.rec.root = root;
            t.rec.depth = t.rec.depth.saturating_add(1);
            t.rec.branch_pages = t.rec.branch_pages.saturating_add(1);
            if !path.pg.insert(0, root) || !path.ki.insert(0, 0) {
                return Err(Error::corrupted(root, "tree deeper than a path holds"));
            }
            return Ok(());
        }
        let parent = path.pg[level - 1];
        let at = path.ki[level - 1] + 1;
        let p = self.s.page_mut(parent)?;
        if pb::add_node(p, at, &sep_node) {
            return Ok(());
        }
        let at_end = at == pb::nkeys(p);
        let mut pnodes = page_nodes(p, 0);
        pnodes.insert(at, &sep_node);
        self.split(t, path, level - 1, pnodes, false, append_at_end && at_end)
    }

    /// Removes the node at the leaf of `path` and rebalances. The path must
    /// be dirty.
    fn remove(&mut self, t: &mut TreeRef<'_>, path: &mut Path) -> Result<()> {
        let top = path.top();
        let leaf = path.pg[top];
        let idx = path.ki[top];
        let p = self.s.page_mut(leaf)?;
        if pb::leaf2(p) {
            pb::del_leaf2(p, idx, t.ksize);
        } else {
            pb::del_node(p, idx);
        }
        self.rebalance(t, path, top)
    }

    /// Restores the fill invariants of the page at `level` after a removal
    /// (`mdb_rebalance`): collapse the root, or merge with or borrow from a
    /// sibling.
    fn rebalance(&mut self, t: &mut TreeRef<'_>, path: &mut Path, level: usize) -> Result<()> {
        let pgno = path.pg[level];
        let (n, fill, branch) = {
            let p = self.s.page_mut(pgno)?;
            (
                pb::nkeys(p),
                pb::fill(p, self.page_size),
                pb::flags(p) & PageFlags::BRANCH.0 != 0,
            )
        };
        let minkeys = 1 + branch as usize;
        if fill >= FILL_THRESHOLD && n >= minkeys {
            return Ok(());
        }
        if level == 0 {
            if n == 0 {
                // The tree is empty.
                self.s.free(pgno, 1);
                *t.rec = DbRecord {
                    root: P_INVALID,
                    depth: 0,
                    leaf_pages: 0,
                    branch_pages: 0,
                    overflow_pages: 0,
                    entries: 0,
                    ..*t.rec
                };
                path.pg.clear();
                path.ki.clear();
            } else if branch && n == 1 {
                // A branch root with one child: the child becomes the root.
                let child = {
                    let p = self.s.page_mut(pgno)?;
                    pb::raw_child(pb::node_bytes(p, 0))
                };
                self.s.free(pgno, 1);
                t.rec.root = child;
                t.rec.depth = t.rec.depth.saturating_sub(1);
                t.rec.branch_pages = t.rec.branch_pages.saturating_sub(1);
                path.pg.remove(0);
                path.ki.remove(0);
            }
            return Ok(());
        }
        let parent = path.pg[level - 1];
        let pi = path.ki[level - 1];
        let pn = pb::nkeys(self.s.page_mut(parent)?);
        if pn < 2 {
            // A single-child parent is collapsed when the parent rebalances.
            return self.rebalance(t, path, level - 1);
        }
        // Merge with or borrow from the left sibling, or the right one for
        // the leftmost child.
        let (li, ri) = if pi > 0 { (pi - 1, pi) } else { (pi, pi + 1) };
        let (lpg, rpg) = {
            let p = self.s.page_mut(parent)?;
            (
                pb::raw_child(pb::node_bytes(p, li)),
                pb::raw_child(pb::node_bytes(p, ri)),
            )
        };
        let sib_level_pg = if pi > 0 { lpg } else { rpg };
        let sib = self.s.touch(sib_level_pg)?;
        if sib != sib_level_pg {
            let sidx = if pi > 0 { li } else { ri };
            pb::set_child(self.s.page_mut(parent)?, sidx, sib);
        }
        let (lpg, rpg) = if pi > 0 { (sib, pgno) } else { (pgno, sib) };
        let sep_key = {
            let p = self.s.page_mut(parent)?;
            pb::raw_key(pb::node_bytes(p, ri)).to_vec()
        };
        let (flags, pad, leaf2) = {
            let p = self.s.page_mut(lpg)?;
            (
                pb::flags(p),
                u16::from_le_bytes([p[8], p[9]]) as usize,
                pb::leaf2(p),
            )
        };
        let mut all = page_nodes(self.s.page_mut(lpg)?, t.ksize);
        let mut rnodes = page_nodes(self.s.page_mut(rpg)?, t.ksize);
        if branch && !rnodes.is_empty() {
            // The right page's first node regains the separator as its key.
            rnodes.set(0, &pb::branch_node(&sep_key, pb::raw_child(rnodes.get(0))));
        }
        all.extend(&rnodes);
        let total: usize = all.iter().map(|x| space(x, leaf2)).sum();
        if total <= self.cap() {
            // Merge the right page into the left and drop the separator.
            if !fill_page(self.s.page_mut(lpg)?, lpg, flags, pad, &all, leaf2) {
                return Err(Error::corrupted(lpg, "merged page does not fit"));
            }
            self.s.free(rpg, 1);
            if branch {
                t.rec.branch_pages = t.rec.branch_pages.saturating_sub(1);
            } else {
                t.rec.leaf_pages = t.rec.leaf_pages.saturating_sub(1);
            }
            pb::del_node(self.s.page_mut(parent)?, ri);
            path.ki[level - 1] = li;
            path.pg[level] = lpg;
            return self.rebalance(t, path, level - 1);
        }
        // Redistribute the nodes of both pages evenly.
        let s = split_point(&all, self.cap(), leaf2, branch, false)
            .ok_or(Error::corrupted(lpg, "cannot redistribute"))?;
        let (right, sep) = all.split_at_separator(s, leaf2, branch);
        let ok = fill_page(self.s.page_mut(lpg)?, lpg, flags, pad, &all, leaf2)
            && fill_page(self.s.page_mut(rpg)?, rpg, flags, pad, &right, leaf2);
        if !ok {
            return Err(Error::corrupted(lpg, "redistributed pages do not fit"));
        }
        // Replace the separator; the parent may need to split for a longer key.
        pb::del_node(self.s.page_mut(parent)?, ri);
        path.ki[level - 1] = ri;
        path.pg.truncate(level);
        path.ki.truncate(level);
        let node = pb::branch_node(&sep, rpg);
        let p = self.s.page_mut(parent)?;
        if pb::add_node(p, ri, &node) {
            return Ok(());
        }
        let mut pnodes = page_nodes(p, 0);
        pnodes.insert(ri, &node);
        self.split(t, path, level - 1, pnodes, false, false)
    }

    /// Stores `data` as the value node for `key`: inline, or in a new
    /// overflow run when the node would be larger than `node_max`.
    fn value_node(
        &mut self,
        t: &mut TreeRef<'_>,
        key: &[u8],
        data: &[u8],
        flags: NodeFlags,
    ) -> Result<ValueNode> {
        if NODE_HEADER_SIZE + key.len() + data.len() > node_max(self.page_size) {
            let count = overflow_count(data.len(), self.page_size);
            let pgno = self.s.alloc(count)?;
            let run = self.s.page_mut(pgno)?;
            run[..PAGE_HEADER_SIZE].fill(0);
            run[0..8].copy_from_slice(&pgno.to_le_bytes());
            run[10..12].copy_from_slice(&PageFlags::OVERFLOW.0.to_le_bytes());
            run[12..16].copy_from_slice(&(count as u32).to_le_bytes());
            let (value, tail) = run[PAGE_HEADER_SIZE..].split_at_mut(data.len());
            value.copy_from_slice(data);
            tail.fill(0);
            t.rec.overflow_pages = t.rec.overflow_pages.saturating_add(count);
            return Ok(ValueNode {
                flags: NodeFlags(flags.0 | NodeFlags::BIGDATA.0),
                overflow: Some(pgno.to_le_bytes()),
            });
        }
        Ok(ValueNode {
            flags,
            overflow: None,
        })
    }

    /// Frees the overflow run of a BIGDATA node.
    fn free_overflow(&mut self, t: &mut TreeRef<'_>, pgno: u64) -> Result<()> {
        let count = self.overflow_run(pgno)?;
        self.s.free(pgno, count);
        t.rec.overflow_pages = t.rec.overflow_pages.saturating_sub(count);
        Ok(())
    }

    /// The length of the overflow run at `pgno`, as its first page says,
    /// checked to lie in the file: a damaged count must not free (list as
    /// reusable) pages that do not exist, billions of them.
    fn overflow_run(&self, pgno: u64) -> Result<u64> {
        let first = self.s.pages(pgno, 1)?;
        let count = crate::format::overflow_pages(first).unwrap_or(0) as u64;
        if count == 0 {
            return Err(Error::corrupted(pgno, "empty overflow run"));
        }
        self.s.pages(pgno, count)?;
        Ok(count)
    }

    /// Frees every page of a tree (`mdb_drop0`), including overflow runs and
    /// dup sub-databases below it.
    pub fn free_tree(&mut self, rec: &DbRecord) -> Result<()> {
        if rec.root == P_INVALID || rec.depth == 0 {
            return Ok(());
        }
        // Each entry carries the depth of the tree it belongs to: a dup
        // sub-database's pages count their levels from its own root.
        let mut stack = alloc::vec![(rec.root, 1usize, rec.depth as usize)];
        // A damaged tree may reach one page from many parents: walking it
        // again each time would take exponential time (and free it twice).
        let mut seen = alloc::collections::BTreeSet::new();
        while let Some((pgno, level, depth)) = stack.pop() {
            if level > depth || level > MAX_DEPTH {
                return Err(Error::corrupted(pgno, "tree deeper than recorded"));
            }
            if !seen.insert(pgno) {
                return Err(Error::corrupted(pgno, "page reached twice"));
            }
            let page = validated(&*self.s, pgno)?;
            let mut children = Vec::new();
            let mut runs = Vec::new();
            if page.is_branch() {
                for i in 0..page.len() {
                    children.push((page.node(i)?.child, level + 1, depth));
                }
            } else if !page.is_leaf2() {
                for i in 0..page.len() {
                    let node = page.node(i)?;
                    if let Some(ov) = node.overflow_pgno() {
                        runs.push((ov, self.overflow_run(ov)?));
                    } else if node.flags.contains(NodeFlags::DUPDATA)
                        && node.flags.contains(NodeFlags::SUBDATA)
                    {
                        if let Some(sub) = DbRecord::parse(node.value) {
                            if sub.root != P_INVALID {
                                stack.push((sub.root, 1, sub.depth as usize));
                            }
                        }
                    }
                }
            }
            for (ov, n) in runs {
                self.s.free(ov, n);
            }
            self.s.free(pgno, 1);
            for c in children {
                stack.push(c);
            }
        }
        Ok(())
    }
}

/// How a DUPSORT database's values are kept.
#[derive(Clone, Copy)]
struct DupInfo {
    cmp: Cmp,
    fixed: bool,
    integer: bool,
}

impl DupInfo {
    fn of(flags: DbFlags) -> Option<DupInfo> {
        flags.contains(DbFlags::DUPSORT).then(|| DupInfo {
            cmp: Cmp::for_dups(flags),
            fixed: flags.contains(DbFlags::DUPFIXED),
            integer: flags.contains(DbFlags::INTEGERDUP),
        })
    }
}

/// What a put did, for the caller's entry count and reserved space.
pub struct PutOutcome {
    /// Whether a new key/value pair was added (false: a value replaced, or
    /// an existing dup left as is).
    pub added: bool,
}

impl<'s, S: PageStore + ?Sized> Writer<'s, S> {
    /// Stores `data` under `key` in the tree of `rec` (`mdb_put`).
    pub fn put(
        &mut self,
        rec: &mut DbRecord,
        key: &[u8],
        data: &[u8],
        flags: PutFlags,
    ) -> Result<PutOutcome> {
        let dbf = rec.flags;
        check_sizes(dbf, key, data)?;
        let dup = DupInfo::of(dbf);
        let cmp = Cmp::for_keys(dbf);
        let mut t = TreeRef { rec, cmp, ksize: 0 };
        self.plant_root(&mut t)?;
        let mut path = Path::default();
        let exact = if flags.contains(PutFlags::APPEND) {
            // The key must sort after the last key of the database. As C
            // does (`mdb_cursor_last`, then one comparison), descend along
            // the last children rather than search: an equal key is
            // KeyExist even where a plain put would replace or add a dup.
            search_last(&*self.s, &t, &mut path)?;
            let top = path.top();
            let page = validated(&*self.s, path.pg[top])?;
            if let Some(last) = page.len().checked_sub(1) {
                let k = super::tree::key_of(&page, last, 0)?;
                if t.cmp.compare(key, k) != Ordering::Greater {
                    return Err(Error::KeyExist);
                }
            }
            false
        } else {
            search(&*self.s, &t, key, &mut path)?
        };
        touch_path(self.s, &mut t, &mut path)?;
        let top = path.top();
        if !exact {
            if flags.contains(PutFlags::CURRENT) {
                return Err(Error::NotFound);
            }
            let node = self.value_node(&mut t, key, data, NodeFlags(0))?;
            self.insert(
                &mut t,
                &mut path,
                node.node(key, data),
                flags.contains(PutFlags::APPEND),
            )?;
            t.rec.entries = t.rec.entries.saturating_add(1);
            return Ok(PutOutcome { added: true });
        }
        if flags.contains(PutFlags::NOOVERWRITE) {
            return Err(Error::KeyExist);
        }
        let leaf = path.pg[top];
        let idx = path.ki[top];
        let (nflags, old) = {
            let page = validated(&*self.s, leaf)?;
            let node = page.node(idx)?;
            // Only a dup put reads the old value after the page changes;
            // a plain overwrite needs just its overflow run.
            let value = if dup.is_some() {
                node.value.to_vec()
            } else {
                Vec::new()
            };
            (node.flags, (value, node.data_size, node.overflow_pgno()))
        };
        if nflags.contains(NodeFlags::SUBDATA) && !nflags.contains(NodeFlags::DUPDATA) {
            // A named database's record: only the database layer may change it.
            return Err(Error::Incompatible);
        }
        let Some(d) = dup else {
            return self
                .replace_value(&mut t, &mut path, key, data, old.2)
                .map(|_| PutOutcome { added: false });
        };
        let added = self.put_dup(&mut t, &mut path, key, data, flags, d, nflags, old.0, old.2)?;
        if added {
            t.rec.entries = t.rec.entries.saturating_add(1);
        }
        Ok(PutOutcome { added })
    }

    /// Appends `key` to a database without DUPSORT (`MDB_APPEND`) and
    /// returns its last leaf afterwards. Passed back as `tail` for the next
    /// append, while nothing else has changed the tree in between, that
    /// leaf is still the last and dirty: a key that fits goes at its end
    /// with one comparison, without descending from the root, as a C
    /// cursor left at the end appends. Sequential loads are mostly that.
    pub fn append(
        &mut self,
        rec: &mut DbRecord,
        key: &[u8],
        data: &[u8],
        flags: PutFlags,
        tail: Option<u64>,
    ) -> Result<u64> {
        if rec.flags.contains(DbFlags::DUPSORT) || !flags.contains(PutFlags::APPEND) {
            return Err(Error::InvalidArgument);
        }
        if let Some(leaf) = tail {
            if self.append_to(rec, leaf, key, data)? {
                return Ok(leaf);
            }
        }
        self.put(rec, key, data, flags)?;
        let t = TreeRef {
            cmp: Cmp::for_keys(rec.flags),
            rec,
            ksize: 0,
        };
        let mut path = Path::default();
        search_last(&*self.s, &t, &mut path)?;
        Ok(path.pg[path.top()])
    }

    /// Adds `key` at the end of `leaf`, the last leaf of the tree, if it is
    /// dirty and the node fits there inline. Returns false where the full
    /// put must run instead (a split, an overflow value).
    fn append_to(
        &mut self,
        rec: &mut DbRecord,
        leaf: u64,
        key: &[u8],
        data: &[u8],
    ) -> Result<bool> {
        check_sizes(rec.flags, key, data)?;
        if !self.s.is_dirty(leaf)
            || NODE_HEADER_SIZE + key.len() + data.len() > node_max(self.page_size)
        {
            return Ok(false);
        }
        let n = {
            let page = validated(&*self.s, leaf)?;
            if !page.is_leaf() || page.is_leaf2() {
                return Ok(false);
            }
            let Some(last) = page.len().checked_sub(1) else {
                return Ok(false);
            };
            let k = super::tree::key_of(&page, last, 0)?;
            if Cmp::for_keys(rec.flags).compare(key, k) != Ordering::Greater {
                return Err(Error::KeyExist);
            }
            page.len()
        };
        let p = self.s.page_mut(leaf)?;
        if !pb::add_leaf(p, n, key, data, data.len(), NodeFlags(0)) {
            return Ok(false);
        }
        rec.entries = rec.entries.saturating_add(1);
        Ok(true)
    }

    fn is_last_leaf(&self, _t: &TreeRef<'_>, path: &Path) -> Result<bool> {
        for l in 0..path.top() {
            let page = validated(&*self.s, path.pg[l])?;
            if path.ki[l] + 1 < page.len() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Replaces the value of the node at the path's leaf.
    fn replace_value(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        key: &[u8],
        data: &[u8],
        old_overflow: Option<u64>,
    ) -> Result<()> {
        let top = path.top();
        let (leaf, idx) = (path.pg[top], path.ki[top]);
        if old_overflow.is_none() {
            let p = self.s.page_mut(leaf)?;
            let nb = pb::node_bytes(p, idx);
            let cur = nb.len() - NODE_HEADER_SIZE - key.len();
            if cur == data.len()
                && NODE_HEADER_SIZE + key.len() + data.len() <= node_max(self.page_size)
            {
                pb::overwrite_data(p, idx, data);
                return Ok(());
            }
        }
        if let Some(ov) = old_overflow {
            // A run this transaction wrote is rewritten in place when it is
            // big enough: saving the free list relies on this to settle.
            let need = overflow_count(data.len(), self.page_size);
            let have = crate::format::overflow_pages(self.s.pages(ov, 1)?).unwrap_or(0) as u64;
            if self.s.is_dirty(ov)
                && have >= need
                && NODE_HEADER_SIZE + key.len() + data.len() > node_max(self.page_size)
            {
                let run = self.s.page_mut(ov)?;
                let (value, tail) = run[PAGE_HEADER_SIZE..].split_at_mut(data.len());
                value.copy_from_slice(data);
                tail.fill(0);
                pb::set_node_dsize(self.s.page_mut(leaf)?, idx, data.len());
                return Ok(());
            }
            self.free_overflow(t, ov)?;
        }
        pb::del_node(self.s.page_mut(leaf)?, idx);
        let node = self.value_node(t, key, data, NodeFlags(0))?;
        self.insert(t, path, node.node(key, data), false)
    }

    /// Adds `data` to the values of an existing DUPSORT key. Returns whether
    /// a value was added.
    #[allow(clippy::too_many_arguments)]
    fn put_dup(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        key: &[u8],
        data: &[u8],
        flags: PutFlags,
        d: DupInfo,
        nflags: NodeFlags,
        old: Vec<u8>,
        old_overflow: Option<u64>,
    ) -> Result<bool> {
        let top = path.top();
        let (leaf, idx) = (path.pg[top], path.ki[top]);
        if !nflags.contains(NodeFlags::DUPDATA) {
            // One value so far: compare with it.
            let old_val = match old_overflow {
                Some(ov) => {
                    let size = self.node_dsize(leaf, idx)?;
                    self.s.overflow_value(ov, size)?.to_vec()
                }
                None => old,
            };
            if d.cmp.compare(data, &old_val) == Ordering::Equal {
                if flags.contains(PutFlags::NODUPDATA) || flags.contains(PutFlags::APPENDDUP) {
                    return Err(Error::KeyExist);
                }
                return Ok(false);
            }
            if d.fixed && old_val.len() != data.len() {
                return Err(Error::BadValSize);
            }
            if flags.contains(PutFlags::APPENDDUP)
                && d.cmp.compare(data, &old_val) == Ordering::Less
            {
                return Err(Error::KeyExist);
            }
            let mut vals = alloc::vec![old_val, data.to_vec()];
            vals.sort_by(|a, b| d.cmp.compare(a, b));
            if let Some(ov) = old_overflow {
                self.free_overflow(t, ov)?;
            }
            let sub = build_subpage(&vals, d.fixed, leaf, true);
            return self.store_dups(t, path, key, sub, d, &vals).map(|_| true);
        }
        if nflags.contains(NodeFlags::SUBDATA) {
            let mut sub = DbRecord::parse(&old)
                .ok_or(Error::corrupted(leaf, "short dup sub-database record"))?;
            let added = self.subdb_put(&mut sub, data, flags, d)?;
            let p = self.s.page_mut(leaf)?;
            pb::overwrite_data(p, idx, &sub.to_bytes());
            return Ok(added);
        }
        // Values on a sub-page.
        let page = Page::new(&old, leaf)?;
        let ksize = if d.fixed { page.pad() as usize } else { 0 };
        let mut vals = Vec::with_capacity(page.len() + 1);
        for i in 0..page.len() {
            vals.push(super::tree::key_of(&page, i, ksize)?.to_vec());
        }
        let pos = vals.binary_search_by(|v| d.cmp.compare(v, data));
        let at = match pos {
            Ok(_) => {
                if flags.contains(PutFlags::NODUPDATA) || flags.contains(PutFlags::APPENDDUP) {
                    return Err(Error::KeyExist);
                }
                return Ok(false);
            }
            Err(at) => at,
        };
        if flags.contains(PutFlags::APPENDDUP) && at != vals.len() {
            return Err(Error::KeyExist);
        }
        if d.fixed && data.len() != ksize {
            return Err(Error::BadValSize);
        }
        vals.insert(at, data.to_vec());
        // Grow the sub-page as LMDB does: DUPFIXED in steps of four values,
        // otherwise by exactly the new node.
        let grown = if d.fixed {
            let room = pb::size_left(&old);
            if room >= ksize {
                old.len()
            } else {
                old.len() + 4 * ksize
            }
        } else {
            old.len() + pb::node_space(NODE_HEADER_SIZE + data.len())
        };
        let sub = build_subpage_sized(&vals, d.fixed, leaf, grown);
        self.store_dups(t, path, key, sub, d, &vals).map(|_| true)
    }

    fn node_dsize(&mut self, leaf: u64, idx: usize) -> Result<usize> {
        let page = validated(&*self.s, leaf)?;
        Ok(page.node(idx)?.data_size)
    }

    /// Writes the dup set `vals` of `key` back to the leaf: as the sub-page
    /// `sub` if the node stays small enough, else as a new sub-database.
    fn store_dups(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        key: &[u8],
        sub: Vec<u8>,
        d: DupInfo,
        vals: &[Vec<u8>],
    ) -> Result<()> {
        let top = path.top();
        let (leaf, idx) = (path.pg[top], path.ki[top]);
        let rec_bytes;
        let node = if NODE_HEADER_SIZE + key.len() + sub.len() > node_max(self.page_size) {
            rec_bytes = self.new_subdb(vals, d)?.to_bytes();
            NewNode::Leaf {
                key,
                data: &rec_bytes,
                dsize: DB_RECORD_SIZE,
                flags: NodeFlags(NodeFlags::DUPDATA.0 | NodeFlags::SUBDATA.0),
            }
        } else {
            NewNode::Leaf {
                key,
                data: &sub,
                dsize: sub.len(),
                flags: NodeFlags::DUPDATA,
            }
        };
        pb::del_node(self.s.page_mut(leaf)?, idx);
        self.insert(t, path, node, false)
    }

    /// A one-page sub-database holding `vals`.
    fn new_subdb(&mut self, vals: &[Vec<u8>], d: DupInfo) -> Result<DbRecord> {
        let root = self.s.alloc(1)?;
        let ksize = if d.fixed { vals[0].len() } else { 0 };
        let flags = if d.fixed {
            PageFlags::LEAF.0 | PageFlags::LEAF2.0
        } else {
            PageFlags::LEAF.0
        };
        let mut nodes = Nodes::default();
        for v in vals {
            if d.fixed {
                nodes.push(v);
            } else {
                nodes.push(&pb::leaf_node(v, &[], 0, NodeFlags(0)));
            }
        }
        let p = self.s.page_mut(root)?;
        if !fill_page(p, root, flags, ksize, &nodes, d.fixed) {
            return Err(Error::corrupted(root, "dup set larger than a page"));
        }
        let mut f = DbFlags(0);
        if d.fixed {
            f = DbFlags::DUPFIXED;
            if d.integer {
                f = f | DbFlags::INTEGERKEY;
            }
        }
        Ok(DbRecord {
            pad: ksize as u32,
            flags: f,
            depth: 1,
            branch_pages: 0,
            leaf_pages: 1,
            overflow_pages: 0,
            entries: vals.len() as u64,
            root,
        })
    }

    /// Inserts a value into a dup sub-database.
    fn subdb_put(
        &mut self,
        sub: &mut DbRecord,
        data: &[u8],
        flags: PutFlags,
        d: DupInfo,
    ) -> Result<bool> {
        let ksize = sub.pad as usize;
        if d.fixed && data.len() != ksize {
            return Err(Error::BadValSize);
        }
        let mut t = TreeRef {
            rec: sub,
            cmp: d.cmp,
            ksize,
        };
        let mut path = Path::default();
        let exact = search(&*self.s, &t, data, &mut path)?;
        if exact {
            if flags.contains(PutFlags::NODUPDATA) || flags.contains(PutFlags::APPENDDUP) {
                return Err(Error::KeyExist);
            }
            return Ok(false);
        }
        if flags.contains(PutFlags::APPENDDUP) {
            let top = path.top();
            let page = validated(&*self.s, path.pg[top])?;
            if path.ki[top] < page.len() || !self.is_last_leaf(&t, &path)? {
                return Err(Error::KeyExist);
            }
        }
        touch_path(self.s, &mut t, &mut path)?;
        let node = if d.fixed {
            NewNode::Leaf2(data)
        } else {
            NewNode::Leaf {
                key: data,
                data: &[],
                dsize: 0,
                flags: NodeFlags(0),
            }
        };
        self.insert(&mut t, &mut path, node, flags.contains(PutFlags::APPENDDUP))?;
        t.rec.entries = t.rec.entries.saturating_add(1);
        Ok(true)
    }

    /// Deletes `key` (all its values), or with `data` one value of a
    /// DUPSORT key (`mdb_del`). Returns how many values were removed.
    pub fn del(&mut self, rec: &mut DbRecord, key: &[u8], data: Option<&[u8]>) -> Result<u64> {
        // Like `mdb_cursor_set`, only an empty key is rejected; a longer
        // key than any stored one is simply not found.
        if key.is_empty() {
            return Err(Error::BadValSize);
        }
        if key.len() > MAX_KEY_SIZE {
            return Err(Error::NotFound);
        }
        if rec.root == P_INVALID || rec.depth == 0 {
            return Err(Error::NotFound);
        }
        let dup = DupInfo::of(rec.flags);
        let cmp = Cmp::for_keys(rec.flags);
        let mut t = TreeRef { rec, cmp, ksize: 0 };
        let mut path = Path::default();
        let (nflags, value, dsize, ov) = {
            let (page, exact) = search_leaf(&*self.s, &t, key, &mut path)?;
            if !exact {
                return Err(Error::NotFound);
            }
            let node = page.node(path.ki[path.top()])?;
            // Only dups need the value after the page changes: a plain
            // delete would copy it for nothing.
            let value = if dup.is_some() || node.flags.contains(NodeFlags::DUPDATA) {
                node.value.to_vec()
            } else {
                Vec::new()
            };
            (node.flags, value, node.data_size, node.overflow_pgno())
        };
        if nflags.contains(NodeFlags::SUBDATA) && !nflags.contains(NodeFlags::DUPDATA) {
            return Err(Error::Incompatible);
        }
        let top = path.top();
        let d = dup.filter(|_| nflags.contains(NodeFlags::DUPDATA));
        if let (Some(d), Some(data)) = (d, data) {
            return self.del_dup(&mut t, &mut path, key, data, d, nflags, value);
        }
        if let (Some(data), None) = (data, d) {
            if dup.is_some() {
                // A DUPSORT key with one value: it must match.
                let cur = match ov {
                    Some(o) => self.s.overflow_value(o, dsize)?,
                    None => &value[..],
                };
                let dc = dup.map(|d| d.cmp).unwrap_or(Cmp::Bytes);
                if dc.compare(data, cur) != Ordering::Equal {
                    return Err(Error::NotFound);
                }
            }
        }
        touch_path(self.s, &mut t, &mut path)?;
        let removed = if nflags.contains(NodeFlags::DUPDATA) {
            if nflags.contains(NodeFlags::SUBDATA) {
                let sub = DbRecord::parse(&value).ok_or(Error::corrupted(
                    path.pg[top],
                    "short dup sub-database record",
                ))?;
                self.free_tree(&sub)?;
                sub.entries
            } else {
                pb::nkeys(&value) as u64
            }
        } else {
            if let Some(o) = ov {
                self.free_overflow(&mut t, o)?;
            }
            1
        };
        self.remove(&mut t, &mut path)?;
        t.rec.entries = t.rec.entries.saturating_sub(removed);
        Ok(removed)
    }

    #[allow(clippy::too_many_arguments)]
    fn del_dup(
        &mut self,
        t: &mut TreeRef<'_>,
        path: &mut Path,
        key: &[u8],
        data: &[u8],
        d: DupInfo,
        nflags: NodeFlags,
        value: Vec<u8>,
    ) -> Result<u64> {
        let top = path.top();
        let leaf = path.pg[top];
        if nflags.contains(NodeFlags::SUBDATA) {
            let mut sub = DbRecord::parse(&value)
                .ok_or(Error::corrupted(leaf, "short dup sub-database record"))?;
            let ksize = sub.pad as usize;
            {
                let mut st = TreeRef {
                    rec: &mut sub,
                    cmp: d.cmp,
                    ksize,
                };
                let mut sp = Path::default();
                let exact = search(&*self.s, &st, data, &mut sp)?;
                if !exact {
                    return Err(Error::NotFound);
                }
                touch_path(self.s, &mut st, &mut sp)?;
                self.remove(&mut st, &mut sp)?;
                st.rec.entries = st.rec.entries.saturating_sub(1);
            }
            touch_path(self.s, t, path)?;
            if sub.entries == 0 {
                self.remove(t, path)?;
            } else {
                pb::overwrite_data(
                    self.s.page_mut(path.pg[top])?,
                    path.ki[top],
                    &sub.to_bytes(),
                );
            }
            t.rec.entries = t.rec.entries.saturating_sub(1);
            return Ok(1);
        }
        let page = Page::new(&value, leaf)?;
        let ksize = if d.fixed { page.pad() as usize } else { 0 };
        let mut vals = Vec::with_capacity(page.len());
        for i in 0..page.len() {
            vals.push(super::tree::key_of(&page, i, ksize)?.to_vec());
        }
        let at = vals
            .binary_search_by(|v| d.cmp.compare(v, data))
            .map_err(|_| Error::NotFound)?;
        vals.remove(at);
        touch_path(self.s, t, path)?;
        if vals.is_empty() {
            self.remove(t, path)?;
        } else {
            // Shrink the sub-page to its contents (`mdb_node_shrink`).
            // LMDB leaves a DUPFIXED sub-page alone rather than give it an
            // odd size.
            let exact = PAGE_HEADER_SIZE + vals.len() * ksize;
            let sub = if d.fixed && exact % 2 == 1 {
                build_subpage_sized(&vals, true, leaf, value.len())
            } else {
                build_subpage(&vals, d.fixed, leaf, false)
            };
            pb::del_node(self.s.page_mut(path.pg[top])?, path.ki[top]);
            let node = pb::leaf_node(key, &sub, sub.len(), NodeFlags::DUPDATA);
            // The node shrank: it fits where the old one was.
            if !pb::add_node(self.s.page_mut(path.pg[top])?, path.ki[top], &node) {
                return Err(Error::corrupted(leaf, "shrunk dup node does not fit"));
            }
            self.rebalance(t, path, top)?;
        }
        t.rec.entries = t.rec.entries.saturating_sub(1);
        Ok(1)
    }
}

impl<'s, S: PageStore + ?Sized> Writer<'s, S> {
    /// Gives an empty tree its first page, an empty leaf, so an insert has
    /// somewhere to go.
    fn plant_root(&mut self, t: &mut TreeRef<'_>) -> Result<()> {
        if t.rec.root != P_INVALID && t.rec.depth != 0 {
            return Ok(());
        }
        let root = self.s.alloc(1)?;
        pb::init(self.s.page_mut(root)?, root, PageFlags::LEAF.0);
        *t.rec = DbRecord {
            root,
            depth: 1,
            leaf_pages: 1,
            branch_pages: 0,
            overflow_pages: 0,
            entries: 0,
            ..*t.rec
        };
        Ok(())
    }

    /// Where the value of `key` lies in this transaction's dirty pages:
    /// the page (or overflow run) number and the byte range within it. Used
    /// to hand out the space a RESERVE put set aside.
    pub fn value_location(
        &self,
        rec: &DbRecord,
        key: &[u8],
    ) -> Result<(u64, core::ops::Range<usize>)> {
        let mut rec = *rec;
        let t = TreeRef {
            cmp: Cmp::for_keys(rec.flags),
            rec: &mut rec,
            ksize: 0,
        };
        let mut path = Path::default();
        let exact = search(&*self.s, &t, key, &mut path)?;
        if !exact {
            return Err(Error::NotFound);
        }
        let leaf = path.pg[path.top()];
        let page = validated(&*self.s, leaf)?;
        let node = page.node(path.ki[path.top()])?;
        if let Some(ov) = node.overflow_pgno() {
            return Ok((ov, PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + node.data_size));
        }
        // The value is a sub-slice of the page: its offset is the distance
        // between the two slices' starts.
        let start = node.value.as_ptr() as usize - page.bytes().as_ptr() as usize;
        Ok((leaf, start..start + node.value.len()))
    }

    /// Stores a node with node flags `nflags` (a named database's record,
    /// `F_SUBDATA`) under `key`, replacing one with the same flags.
    pub fn put_node_flags(
        &mut self,
        rec: &mut DbRecord,
        key: &[u8],
        data: &[u8],
        nflags: NodeFlags,
    ) -> Result<()> {
        if key.is_empty() || key.len() > MAX_KEY_SIZE {
            return Err(Error::BadValSize);
        }
        let cmp = Cmp::for_keys(rec.flags);
        let mut t = TreeRef { rec, cmp, ksize: 0 };
        self.plant_root(&mut t)?;
        let mut path = Path::default();
        let exact = search(&*self.s, &t, key, &mut path)?;
        touch_path(self.s, &mut t, &mut path)?;
        let top = path.top();
        if exact {
            let page = validated(&*self.s, path.pg[top])?;
            let node = page.node(path.ki[top])?;
            if node.flags != nflags {
                return Err(Error::Incompatible);
            }
            if node.value.len() == data.len() {
                pb::overwrite_data(self.s.page_mut(path.pg[top])?, path.ki[top], data);
                return Ok(());
            }
            pb::del_node(self.s.page_mut(path.pg[top])?, path.ki[top]);
            t.rec.entries = t.rec.entries.saturating_sub(1);
        }
        self.insert(
            &mut t,
            &mut path,
            NewNode::Leaf {
                key,
                data,
                dsize: data.len(),
                flags: nflags,
            },
            false,
        )?;
        t.rec.entries = t.rec.entries.saturating_add(1);
        Ok(())
    }

    /// Deletes the node under `key` if it has node flags `nflags`.
    pub fn del_node_flags(
        &mut self,
        rec: &mut DbRecord,
        key: &[u8],
        nflags: NodeFlags,
    ) -> Result<()> {
        if rec.root == P_INVALID || rec.depth == 0 {
            return Err(Error::NotFound);
        }
        let cmp = Cmp::for_keys(rec.flags);
        let mut t = TreeRef { rec, cmp, ksize: 0 };
        let mut path = Path::default();
        let exact = search(&*self.s, &t, key, &mut path)?;
        if !exact {
            return Err(Error::NotFound);
        }
        let top = path.top();
        let flags = validated(&*self.s, path.pg[top])?.node(path.ki[top])?.flags;
        if flags != nflags {
            return Err(Error::Incompatible);
        }
        touch_path(self.s, &mut t, &mut path)?;
        self.remove(&mut t, &mut path)?;
        t.rec.entries = t.rec.entries.saturating_sub(1);
        Ok(())
    }
}

/// A sub-page holding exactly `vals` (DUPFIXED: with room for `spare`
/// more values when `spare` is set, as LMDB leaves for two more).
fn build_subpage(vals: &[Vec<u8>], fixed: bool, pgno: u64, spare: bool) -> Vec<u8> {
    let size = if fixed {
        let k = vals[0].len();
        PAGE_HEADER_SIZE + (vals.len() + if spare { 2 } else { 0 }) * k
    } else {
        PAGE_HEADER_SIZE
            + vals
                .iter()
                .map(|v| pb::node_space(NODE_HEADER_SIZE + v.len()))
                .sum::<usize>()
    };
    build_subpage_sized(vals, fixed, pgno, size)
}

fn build_subpage_sized(vals: &[Vec<u8>], fixed: bool, pgno: u64, size: usize) -> Vec<u8> {
    let mut p = alloc::vec![0u8; size];
    let flags = PageFlags::LEAF.0
        | PageFlags::SUBP.0
        | PageFlags::DIRTY.0
        | if fixed { PageFlags::LEAF2.0 } else { 0 };
    pb::init(&mut p, pgno, flags);
    if fixed {
        pb::set_pad(&mut p, vals[0].len());
    }
    for (i, v) in vals.iter().enumerate() {
        if fixed {
            pb::add_leaf2(&mut p, i, v);
        } else {
            pb::add_node(&mut p, i, &pb::leaf_node(v, &[], 0, NodeFlags(0)));
        }
    }
    p
}
