//! Visiting every page of a snapshot, and the integrity check built on it.
//!
//! A [`Walker`] goes over all trees of a [`Snapshot`]: the free-page
//! database, the main database, every named database (found as `F_SUBDATA`
//! records in the main database), every dup sub-database, and every overflow
//! run. For each page it calls a [`Visitor`] with the page's number, kind,
//! tree and depth and its raw bytes, before descending into it; the visitor
//! may answer [`Descend::Skip`] to leave out everything reachable only
//! through that page (an unchanged page of a copy-on-write tree means an
//! unchanged subtree).
//!
//! The walk terminates on any input: it remembers every page it reached, so
//! a page referenced twice (or a cycle) is reported instead of followed, the
//! depth of each tree is bounded by [`MAX_DEPTH`], trees nest at most three
//! deep (main, named, dups), and every read is bounds-checked. Corruption is
//! reported to [`Visitor::problem`]; by default that stops the walk with an
//! [`Error::Corrupted`] naming the page, while [`check`] collects all of them
//! in a [`Report`].

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use crate::btree::{Cmp, PageSource};
use crate::error::{Error, Result};
use crate::format::{
    overflow_pages, u16_at, u64_at, DbFlags, DbRecord, Meta, Node, NodeFlags, Page, PageFlags,
    MAX_DEPTH, NUM_METAS, PAGE_HEADER_SIZE, P_INVALID,
};
use crate::snapshot::Snapshot;

/// The kind of a visited page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// A branch page.
    Branch,
    /// A leaf page with node headers.
    Leaf,
    /// A leaf page of packed fixed-size keys (DUPFIXED dup sub-databases).
    Leaf2,
    /// The first page of an overflow run; the visit covers the whole run.
    Overflow,
}

/// The database a tree belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbId<'a> {
    /// The free-page database (`FREE_DBI`).
    Free,
    /// The main database (`MAIN_DBI`).
    Main,
    /// A named database, by name.
    Named(&'a [u8]),
}

/// The tree a page belongs to: a database's own tree, or the dup
/// sub-database of one of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TreeId<'a> {
    /// The database.
    pub db: DbId<'a>,
    /// For a dup sub-database, the key whose values it holds.
    pub dups_of: Option<&'a [u8]>,
}

impl<'a> TreeId<'a> {
    /// The free-page database's tree.
    pub const FREE: TreeId<'static> = TreeId {
        db: DbId::Free,
        dups_of: None,
    };
    /// The main database's tree.
    pub const MAIN: TreeId<'static> = TreeId {
        db: DbId::Main,
        dups_of: None,
    };
}

/// Writes bytes as text when they are printable ASCII, else as hex.
fn write_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    if !b.is_empty() && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        f.write_str("\"")?;
        for c in b {
            write!(f, "{}", *c as char)?;
        }
        f.write_str("\"")
    } else {
        f.write_str("0x")?;
        for c in b {
            write!(f, "{c:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TreeId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.db {
            DbId::Free => f.write_str("free db")?,
            DbId::Main => f.write_str("main db")?,
            DbId::Named(n) => {
                f.write_str("db ")?;
                write_bytes(f, n)?;
            }
        }
        if let Some(k) = self.dups_of {
            f.write_str(", dups of key ")?;
            write_bytes(f, k)?;
        }
        Ok(())
    }
}

/// One visited page (or overflow run).
#[derive(Clone, Copy, Debug)]
pub struct Visit<'a> {
    /// The page number (the first page, for an overflow run).
    pub pgno: u64,
    /// Number of pages: 1, or the length of an overflow run.
    pub count: u64,
    /// What the page is.
    pub kind: PageKind,
    /// The tree the page belongs to.
    pub tree: TreeId<'a>,
    /// Level in its tree: 0 for the root. An overflow run has the level of
    /// the leaf that refers to it.
    pub depth: usize,
    /// The page that refers to this one: its parent branch page, the leaf
    /// holding the value or the database record, or `None` for the roots of
    /// the free and main databases (named in the meta page).
    pub parent: Option<u64>,
    /// The raw bytes: the page, or the whole overflow run.
    pub bytes: &'a [u8],
    /// The validated view of a branch or leaf page.
    pub page: Option<Page<'a>>,
}

/// A visitor's answer for a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descend {
    /// Go on into the page: its children, values and sub-trees.
    Into,
    /// Leave out everything reachable only through this page.
    Skip,
}

/// What is wrong, for a [`Problem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The page failed validation; the text says how.
    Corrupted(&'static str),
    /// The page is reached a second time (shared by two parents, or part of
    /// a cycle). It was not followed again.
    ReferencedTwice,
    /// Keys out of order: within the page, against the previous page, or
    /// outside the range its parent's separators allow.
    KeyOrder,
    /// A counter in a database record differs from what the tree holds.
    /// `pgno` is the tree's root.
    Stat {
        /// The record field: `md_entries`, `md_depth`, `md_branch_pages`,
        /// `md_leaf_pages` or `md_overflow_pages`.
        field: &'static str,
        /// The stored value.
        recorded: u64,
        /// The value found by the walk.
        counted: u64,
    },
    /// A page of a tree is also listed as free.
    LiveAndFree {
        /// The free record that lists it.
        txnid: u64,
    },
    /// A page is listed as free more than once.
    FreeTwice {
        /// The free record with the second listing.
        txnid: u64,
    },
    /// A free record lists a meta page or a page beyond the last page.
    FreeOutOfRange {
        /// The free record.
        txnid: u64,
    },
    /// A free record's page list is malformed (not sorted descending, or
    /// longer than the record).
    BadFreeList {
        /// The free record.
        txnid: u64,
    },
    /// `count` pages starting here are neither in a tree nor free.
    Unaccounted {
        /// Number of pages in the run.
        count: u64,
    },
}

/// A problem found while walking, naming the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem<'a> {
    /// The page at fault (for a counter mismatch, the tree's root; for a
    /// record that cannot be read, the leaf holding it).
    pub pgno: u64,
    /// The tree the page was reached from, if any.
    pub tree: Option<TreeId<'a>>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem<'_> {
    /// The problem as an [`Error::Corrupted`] naming the page.
    pub fn to_error(&self) -> Error {
        let what = match self.kind {
            ProblemKind::Corrupted(what) => what,
            ProblemKind::ReferencedTwice => "page referenced twice",
            ProblemKind::KeyOrder => "keys out of order",
            ProblemKind::Stat { .. } => "database record counters differ from the tree",
            ProblemKind::LiveAndFree { .. } => "page both in a tree and free",
            ProblemKind::FreeTwice { .. } => "page listed as free twice",
            ProblemKind::FreeOutOfRange { .. } => "free page out of range",
            ProblemKind::BadFreeList { .. } => "malformed free page list",
            ProblemKind::Unaccounted { .. } => "page neither in a tree nor free",
        };
        Error::Corrupted {
            pgno: self.pgno,
            what,
        }
    }
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {}", self.pgno)?;
        if let Some(t) = &self.tree {
            write!(f, " ({t})")?;
        }
        f.write_str(": ")?;
        match self.kind {
            ProblemKind::Corrupted(what) => f.write_str(what),
            ProblemKind::ReferencedTwice => f.write_str("referenced twice"),
            ProblemKind::KeyOrder => f.write_str("keys out of order"),
            ProblemKind::Stat {
                field,
                recorded,
                counted,
            } => write!(f, "{field} is {recorded}, the tree has {counted}"),
            ProblemKind::LiveAndFree { txnid } => {
                write!(f, "in a tree and free (free record {txnid})")
            }
            ProblemKind::FreeTwice { txnid } => {
                write!(f, "listed as free twice (again in free record {txnid})")
            }
            ProblemKind::FreeOutOfRange { txnid } => {
                write!(f, "free record {txnid} lists a page out of range")
            }
            ProblemKind::BadFreeList { txnid } => {
                write!(f, "free record {txnid} has a malformed page list")
            }
            ProblemKind::Unaccounted { count } => {
                write!(f, "{count} page(s) neither in a tree nor free")
            }
        }
    }
}

/// What a tree holds, as counted by a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Levels from the root to the leaves.
    pub depth: u64,
    /// Branch pages of the tree itself.
    pub branch_pages: u64,
    /// Leaf pages of the tree itself.
    pub leaf_pages: u64,
    /// Overflow pages of the tree's values (sum of run lengths).
    pub overflow_pages: u64,
    /// Entries: every value of every key, as `md_entries` counts them.
    pub entries: u64,
    /// Pages of the tree's dup sub-databases (not part of the counts above).
    pub sub_pages: u64,
}

/// The end of one tree's walk, for [`Visitor::tree_done`].
#[derive(Clone, Copy, Debug)]
pub struct TreeSummary<'a> {
    /// The tree.
    pub tree: TreeId<'a>,
    /// Its record as stored.
    pub record: DbRecord,
    /// What the walk found in it.
    pub counted: Counts,
    /// Whether the whole tree was walked: nothing skipped, no problem found.
    pub complete: bool,
}

/// What a walk calls back.
pub trait Visitor<'a> {
    /// Called for every page (or overflow run) before what it leads to.
    /// Returning an error stops the walk with it.
    fn page(&mut self, visit: &Visit<'a>) -> Result<Descend>;

    /// Called for every problem found. The default stops the walk with an
    /// [`Error::Corrupted`]; returning `Ok` goes on, leaving out the part
    /// that could not be read.
    fn problem(&mut self, problem: Problem<'a>) -> Result<()> {
        Err(problem.to_error())
    }

    /// Called when a tree's walk ends.
    fn tree_done(&mut self, summary: &TreeSummary<'a>) -> Result<()> {
        let _ = summary;
        Ok(())
    }
}

impl<'a, F: FnMut(&Visit<'a>) -> Result<Descend>> Visitor<'a> for F {
    fn page(&mut self, visit: &Visit<'a>) -> Result<Descend> {
        self(visit)
    }
}

/// A set of page numbers, stored as bitmaps of 512-page chunks so that its
/// size follows the pages actually inserted, not the largest page number.
#[derive(Clone, Debug, Default)]
pub struct PageSet {
    chunks: BTreeMap<u64, [u64; 8]>,
    len: u64,
}

impl PageSet {
    /// An empty set.
    pub fn new() -> PageSet {
        PageSet::default()
    }

    /// Adds `pgno`; returns whether it was not yet in the set.
    pub fn insert(&mut self, pgno: u64) -> bool {
        let words = self.chunks.entry(pgno >> 9).or_insert([0; 8]);
        let (w, bit) = (((pgno >> 6) & 7) as usize, 1u64 << (pgno & 63));
        if words[w] & bit != 0 {
            return false;
        }
        words[w] |= bit;
        self.len += 1;
        true
    }

    /// Whether `pgno` is in the set.
    pub fn contains(&self, pgno: u64) -> bool {
        self.chunks
            .get(&(pgno >> 9))
            .is_some_and(|w| w[((pgno >> 6) & 7) as usize] & (1u64 << (pgno & 63)) != 0)
    }

    /// Number of pages in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(start, count)` for each maximal run of pages in
    /// `from..=to` that are in neither `self` nor `other`. Stretches where
    /// neither set has anything are skipped in one step, so the cost follows
    /// the sets' sizes rather than the width of the range.
    pub fn gaps(&self, other: &PageSet, from: u64, to: u64, mut f: impl FnMut(u64, u64)) {
        let next_chunk = |c: u64| {
            let a = self.chunks.range(c..).next().map(|(k, _)| *k);
            let b = other.chunks.range(c..).next().map(|(k, _)| *k);
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let mut run: Option<u64> = None;
        let mut p = from;
        while p <= to {
            let c = p >> 9;
            if !self.chunks.contains_key(&c) && !other.chunks.contains_key(&c) {
                run.get_or_insert(p);
                match next_chunk(c + 1) {
                    Some(n) if n << 9 <= to => {
                        p = n << 9;
                        continue;
                    }
                    _ => break,
                }
            }
            if self.contains(p) || other.contains(p) {
                if let Some(s) = run.take() {
                    f(s, p - s);
                }
            } else {
                run.get_or_insert(p);
            }
            if p == to {
                break;
            }
            p += 1;
        }
        if let Some(s) = run {
            f(s, to - s + 1);
        }
    }
}

/// One tree being walked.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    id: TreeId<'a>,
    /// The database's flags (for a dup tree, its parent's).
    flags: DbFlags,
    dups: bool,
    cmp: Cmp,
    ksize: usize,
    depth: usize,
}

/// A branch page on the descent stack, with the next child to visit.
#[derive(Clone, Copy)]
struct Frame<'a> {
    page: Page<'a>,
    level: usize,
    /// The key range the page's subtree must stay in: `[low, high)`.
    bounds: (Option<&'a [u8]>, Option<&'a [u8]>),
    next: usize,
    /// The previous separator, for the order check.
    prev_sep: Option<&'a [u8]>,
}

/// What a tree's walk accumulates.
#[derive(Default)]
struct Acc<'a> {
    counts: Counts,
    /// The last key seen, for the order check across pages.
    prev: Option<&'a [u8]>,
    skipped: bool,
}

/// Walks the trees of a snapshot. See the [module documentation](self).
pub struct Walker<'a, S: PageSource> {
    src: &'a S,
    meta: Meta,
    seen: PageSet,
    check: bool,
    /// Problems reported so far; a tree's counters are only compared when
    /// its walk found none.
    problems: u64,
}

impl<'a, S: PageSource> Walker<'a, S> {
    /// A walker over `snap`'s trees.
    pub fn new(snap: &'a Snapshot<S>) -> Walker<'a, S> {
        Walker {
            src: snap.source(),
            meta: *snap.meta(),
            seen: PageSet::new(),
            check: false,
            problems: 0,
        }
    }

    /// Also checks what a reader does not need to stay safe: key order
    /// within and across pages, record counters, LMDB's layout rules.
    pub fn checking(mut self, on: bool) -> Self {
        self.check = on;
        self
    }

    /// The pages reached so far (every page visited, including each page of
    /// every overflow run).
    pub fn live(&self) -> &PageSet {
        &self.seen
    }

    /// Walks the free-page database, then the main database with its named
    /// databases.
    pub fn walk<V: Visitor<'a>>(&mut self, v: &mut V) -> Result<()> {
        self.walk_free(v)?;
        self.walk_main(v)?;
        Ok(())
    }

    /// Walks the free-page database's tree.
    pub fn walk_free<V: Visitor<'a>>(&mut self, v: &mut V) -> Result<Counts> {
        let rec = *self.meta.free_db();
        // The free DB's record keeps the environment flags in `md_flags`;
        // its keys are always 8-byte integers and it never has dups.
        self.tree(v, TreeId::FREE, DbFlags::INTEGERKEY, false, &rec, None)
    }

    /// Walks the main database's tree and every named database in it.
    pub fn walk_main<V: Visitor<'a>>(&mut self, v: &mut V) -> Result<Counts> {
        let rec = *self.meta.main_db();
        self.tree(v, TreeId::MAIN, rec.flags, false, &rec, None)
    }

    /// Walks one database's tree given its record (a named database's
    /// record, for instance), with its dup sub-databases. Named database
    /// records are only followed when `id` is the main database.
    pub fn walk_db<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        id: DbId<'a>,
        rec: &DbRecord,
    ) -> Result<Counts> {
        let tree = TreeId {
            db: id,
            dups_of: None,
        };
        let flags = if id == DbId::Free {
            DbFlags::INTEGERKEY
        } else {
            rec.flags
        };
        self.tree(v, tree, flags, false, rec, None)
    }

    fn report<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        pgno: u64,
        tree: TreeId<'a>,
        kind: ProblemKind,
    ) -> Result<()> {
        self.problems += 1;
        v.problem(Problem {
            pgno,
            tree: Some(tree),
            kind,
        })
    }

    /// Turns a corruption error into a reported problem; other errors (of
    /// the page source) stop the walk.
    fn soft<V: Visitor<'a>>(&mut self, v: &mut V, tree: TreeId<'a>, e: Error) -> Result<()> {
        match e {
            Error::Corrupted { pgno, what } => {
                self.report(v, pgno, tree, ProblemKind::Corrupted(what))
            }
            e => Err(e),
        }
    }

    fn tree<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        id: TreeId<'a>,
        flags: DbFlags,
        dups: bool,
        rec: &DbRecord,
        at: Option<u64>,
    ) -> Result<Counts> {
        let here = at.unwrap_or(self.meta.txnid & 1);
        let before = self.problems;
        if rec.root == P_INVALID {
            if dups {
                self.report(
                    v,
                    here,
                    id,
                    ProblemKind::Corrupted("empty dup sub-database"),
                )?;
            } else if self.check
                && (rec.depth != 0
                    || rec.entries != 0
                    || rec.branch_pages != 0
                    || rec.leaf_pages != 0
                    || rec.overflow_pages != 0)
            {
                self.report(
                    v,
                    here,
                    id,
                    ProblemKind::Corrupted("empty tree with nonzero counters"),
                )?;
            }
            return Ok(Counts::default());
        }
        let depth = rec.depth as usize;
        if depth == 0 || depth > MAX_DEPTH {
            self.report(
                v,
                here,
                id,
                ProblemKind::Corrupted("tree depth out of range"),
            )?;
            return Ok(Counts::default());
        }
        let ctx = Ctx {
            id,
            flags,
            dups,
            cmp: if dups {
                Cmp::for_dups(flags)
            } else {
                Cmp::for_keys(flags)
            },
            ksize: if dups && flags.contains(DbFlags::DUPFIXED) {
                rec.pad as usize
            } else {
                0
            },
            depth,
        };
        let mut acc = Acc::default();
        self.descend(v, &ctx, rec.root, at, &mut acc)?;
        acc.counts.depth = depth as u64;
        let complete = !acc.skipped && self.problems == before;
        if self.check && complete {
            self.compare(v, &ctx, rec, &acc.counts)?;
        }
        v.tree_done(&TreeSummary {
            tree: id,
            record: *rec,
            counted: acc.counts,
            complete,
        })?;
        Ok(acc.counts)
    }

    /// Compares a fully walked tree with its record.
    fn compare<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        rec: &DbRecord,
        c: &Counts,
    ) -> Result<()> {
        // LMDB 0.9.24 does not count a dup sub-database's root in its
        // parent's leaf pages while later 0.9 releases do, so a parent may
        // claim up to its sub-databases' pages on top of its own.
        let slack = c.sub_pages;
        let checks = [
            ("md_entries", rec.entries, c.entries, 0),
            ("md_branch_pages", rec.branch_pages, c.branch_pages, 0),
            ("md_leaf_pages", rec.leaf_pages, c.leaf_pages, slack),
            ("md_overflow_pages", rec.overflow_pages, c.overflow_pages, 0),
        ];
        for (field, recorded, counted, slack) in checks {
            if recorded < counted || recorded - counted > slack {
                self.report(
                    v,
                    rec.root,
                    ctx.id,
                    ProblemKind::Stat {
                        field,
                        recorded,
                        counted,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Checks `key` against the previous key and the range the parent's
    /// separators allow: `[low, high)`.
    fn order<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        pgno: u64,
        key: &'a [u8],
        bounds: (Option<&'a [u8]>, Option<&'a [u8]>),
        prev: &mut Option<&'a [u8]>,
    ) -> Result<()> {
        let cmp = ctx.cmp;
        let bad = prev.is_some_and(|p| cmp.compare(p, key) != Ordering::Less)
            || bounds
                .0
                .is_some_and(|l| cmp.compare(key, l) == Ordering::Less)
            || bounds
                .1
                .is_some_and(|h| cmp.compare(key, h) != Ordering::Less);
        *prev = Some(key);
        if bad {
            self.report(v, pgno, ctx.id, ProblemKind::KeyOrder)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn page<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        pgno: u64,
        level: usize,
        parent: Option<u64>,
        bounds: (Option<&'a [u8]>, Option<&'a [u8]>),
        acc: &mut Acc<'a>,
    ) -> Result<Option<Frame<'a>>> {
        let id = ctx.id;
        // `ctx.depth <= MAX_DEPTH` and leaves sit exactly at `depth - 1`,
        // which bounds the recursion.
        if level >= ctx.depth {
            return self
                .report(
                    v,
                    parent.unwrap_or(pgno),
                    id,
                    ProblemKind::Corrupted("tree deeper than its recorded depth"),
                )
                .map(|()| None);
        }
        if !(NUM_METAS..=self.meta.last_pgno).contains(&pgno) {
            return self
                .report(
                    v,
                    parent.unwrap_or(pgno),
                    id,
                    ProblemKind::Corrupted("page number out of range"),
                )
                .map(|()| None);
        }
        let page = match self.src.tree_page(pgno) {
            Ok(p) => p,
            Err(e) => return self.soft(v, id, e).map(|()| None),
        };
        if !self.seen.insert(pgno) {
            return self
                .report(v, pgno, id, ProblemKind::ReferencedTwice)
                .map(|()| None);
        }
        let leaf_level = level + 1 == ctx.depth;
        if page.is_leaf() != leaf_level {
            return self
                .report(
                    v,
                    pgno,
                    id,
                    ProblemKind::Corrupted("page kind does not fit tree depth"),
                )
                .map(|()| None);
        }
        if page.is_empty() && (page.is_branch() || self.check) {
            return self
                .report(v, pgno, id, ProblemKind::Corrupted("empty page"))
                .map(|()| None);
        }
        if self.check && page.is_branch() && page.len() == 1 {
            // Readers cope, but LMDB requires two children on every branch
            // page: C's `mdb_rebalance` asserts it under a deleted key.
            self.report(
                v,
                pgno,
                id,
                ProblemKind::Corrupted("branch page with a single child"),
            )?;
        }
        if self.check && !page.is_leaf2() && !nodes_in_node_area(&page) {
            self.report(
                v,
                pgno,
                id,
                ProblemKind::Corrupted("node outside the page's node area"),
            )?;
        }
        let kind = if page.is_branch() {
            PageKind::Branch
        } else if page.is_leaf2() {
            if ctx.ksize == 0 {
                return self
                    .report(
                        v,
                        pgno,
                        id,
                        ProblemKind::Corrupted("LEAF2 page outside a DUPFIXED dup tree"),
                    )
                    .map(|()| None);
            }
            if self.check && page.pad() as usize != ctx.ksize {
                self.report(
                    v,
                    pgno,
                    id,
                    ProblemKind::Corrupted("LEAF2 key size differs from the record"),
                )?;
            }
            PageKind::Leaf2
        } else {
            PageKind::Leaf
        };
        match kind {
            PageKind::Branch => acc.counts.branch_pages += 1,
            _ => acc.counts.leaf_pages += 1,
        }
        let visit = Visit {
            pgno,
            count: 1,
            kind,
            tree: id,
            depth: level,
            parent,
            bytes: page.bytes(),
            page: Some(page),
        };
        if v.page(&visit)? == Descend::Skip {
            acc.skipped = true;
            // The key order across the skipped part is unknown.
            acc.prev = None;
            return Ok(None);
        }
        match kind {
            PageKind::Branch => Ok(Some(Frame {
                page,
                level,
                bounds,
                next: 0,
                prev_sep: None,
            })),
            PageKind::Leaf2 => {
                for i in 0..page.len() {
                    let key = match page.leaf2_key(i, ctx.ksize) {
                        Ok(k) => k,
                        Err(e) => return self.soft(v, id, e).map(|()| None),
                    };
                    if self.check {
                        self.order(v, ctx, pgno, key, bounds, &mut acc.prev)?;
                    }
                }
                acc.counts.entries += page.len() as u64;
                Ok(None)
            }
            _ => self.leaf(v, ctx, &page, level, bounds, acc).map(|()| None),
        }
    }

    /// Walks a tree from its root. Branch pages go on an explicit stack (at
    /// most [`MAX_DEPTH`] of them), so a deep tree costs heap, not native
    /// stack; only nested trees (main, named, dups: three at most) recurse.
    fn descend<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        root: u64,
        parent: Option<u64>,
        acc: &mut Acc<'a>,
    ) -> Result<()> {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        if let Some(f) = self.page(v, ctx, root, 0, parent, (None, None), acc)? {
            stack.push(f);
        }
        while let Some(f) = stack.last_mut() {
            let (page, i) = (f.page, f.next);
            if i >= page.len() {
                stack.pop();
                continue;
            }
            f.next += 1;
            let (level, bounds) = (f.level, f.bounds);
            let nodes = page.node(i).and_then(|n| {
                let next = if i + 1 < page.len() {
                    Some(page.node(i + 1)?.key)
                } else {
                    None
                };
                Ok((n, next))
            });
            let (node, next) = match nodes {
                Ok(x) => x,
                Err(e) => {
                    // The rest of this page cannot be trusted either.
                    stack.pop();
                    self.soft(v, ctx.id, e)?;
                    continue;
                }
            };
            if self.check && i > 0 {
                let mut prev = f.prev_sep;
                self.order(v, ctx, page.pgno(), node.key, bounds, &mut prev)?;
                if let Some(f) = stack.last_mut() {
                    f.prev_sep = prev;
                }
            }
            // The child's keys must lie in [this separator, next separator).
            let low = if i == 0 { bounds.0 } else { Some(node.key) };
            let high = next.or(bounds.1);
            let pgno = page.pgno();
            if let Some(f) =
                self.page(v, ctx, node.child, level + 1, Some(pgno), (low, high), acc)?
            {
                stack.push(f);
            }
        }
        Ok(())
    }

    fn leaf<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        page: &Page<'a>,
        level: usize,
        bounds: (Option<&'a [u8]>, Option<&'a [u8]>),
        acc: &mut Acc<'a>,
    ) -> Result<()> {
        let pgno = page.pgno();
        let id = ctx.id;
        for i in 0..page.len() {
            let node = match page.node(i) {
                Ok(n) => n,
                Err(e) => {
                    self.soft(v, id, e)?;
                    continue;
                }
            };
            if self.check {
                self.order(v, ctx, pgno, node.key, bounds, &mut acc.prev)?;
            }
            if ctx.dups {
                // Values of a dup sub-database are keys without data.
                if self.check && (node.flags.0 != 0 || node.data_size != 0) {
                    self.report(
                        v,
                        pgno,
                        id,
                        ProblemKind::Corrupted("dup value node with data"),
                    )?;
                }
                acc.counts.entries += 1;
                continue;
            }
            self.value(v, ctx, &node, pgno, level, acc)?;
        }
        Ok(())
    }

    /// Follows what a leaf node's value leads to: an overflow run, a named
    /// database, a dup sub-page or a dup sub-database.
    fn value<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        node: &Node<'a>,
        pgno: u64,
        level: usize,
        acc: &mut Acc<'a>,
    ) -> Result<()> {
        let id = ctx.id;
        let f = node.flags;
        let (big, sub, dup) = (
            f.contains(NodeFlags::BIGDATA),
            f.contains(NodeFlags::SUBDATA),
            f.contains(NodeFlags::DUPDATA),
        );
        if big && (sub || dup) {
            return self.report(
                v,
                pgno,
                id,
                ProblemKind::Corrupted("conflicting node flags"),
            );
        }
        if (dup && !ctx.flags.contains(DbFlags::DUPSORT)) || (sub && !dup && id != TreeId::MAIN) {
            return self.report(
                v,
                pgno,
                id,
                ProblemKind::Corrupted("node kind does not fit its database"),
            );
        }
        if big {
            acc.counts.entries += 1;
            return self.overflow(v, ctx, node, pgno, level, acc);
        }
        if sub {
            let Some(rec) = DbRecord::parse(node.value).filter(|_| node.value.len() == 48) else {
                return self.report(
                    v,
                    pgno,
                    id,
                    ProblemKind::Corrupted("database record of the wrong size"),
                );
            };
            if dup {
                let tree = TreeId {
                    db: id.db,
                    dups_of: Some(node.key),
                };
                let c = self.tree(v, tree, ctx.flags, true, &rec, Some(pgno))?;
                acc.counts.entries += c.entries;
                acc.counts.sub_pages += c.branch_pages + c.leaf_pages;
            } else {
                acc.counts.entries += 1;
                let tree = TreeId {
                    db: DbId::Named(node.key),
                    dups_of: None,
                };
                self.tree(v, tree, rec.flags, false, &rec, Some(pgno))?;
            }
            return Ok(());
        }
        if dup {
            return self.subpage(v, ctx, node, pgno, acc);
        }
        acc.counts.entries += 1;
        Ok(())
    }

    /// Checks a dup sub-page held in a leaf node.
    fn subpage<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        node: &Node<'a>,
        pgno: u64,
        acc: &mut Acc<'a>,
    ) -> Result<()> {
        let id = TreeId {
            db: ctx.id.db,
            dups_of: Some(node.key),
        };
        let sub = match Page::new(node.value, pgno) {
            Ok(p) => p,
            Err(e) => return self.soft(v, id, e),
        };
        if !sub.is_leaf() || sub.is_empty() {
            return self.report(
                v,
                pgno,
                id,
                ProblemKind::Corrupted("dup sub-page is not a leaf"),
            );
        }
        let sctx = Ctx {
            id,
            dups: true,
            cmp: Cmp::for_dups(ctx.flags),
            ksize: if ctx.flags.contains(DbFlags::DUPFIXED) {
                sub.pad() as usize
            } else {
                0
            },
            depth: 1,
            flags: ctx.flags,
        };
        if sub.is_leaf2() && sctx.ksize == 0 {
            return self.report(
                v,
                pgno,
                id,
                ProblemKind::Corrupted("LEAF2 sub-page outside a DUPFIXED database"),
            );
        }
        let mut prev = None;
        for i in 0..sub.len() {
            let key = if sub.is_leaf2() {
                sub.leaf2_key(i, sctx.ksize)
            } else {
                sub.node(i).map(|n| n.key)
            };
            let key = match key {
                Ok(k) => k,
                Err(e) => return self.soft(v, id, e),
            };
            if self.check {
                self.order(v, &sctx, pgno, key, (None, None), &mut prev)?;
            }
        }
        acc.counts.entries += sub.len() as u64;
        Ok(())
    }

    /// Checks and visits the overflow run of a `F_BIGDATA` node.
    fn overflow<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        ctx: &Ctx<'a>,
        node: &Node<'a>,
        pgno: u64,
        level: usize,
        acc: &mut Acc<'a>,
    ) -> Result<()> {
        let id = ctx.id;
        let bad = |what| ProblemKind::Corrupted(what);
        let Some(first) = node.overflow_pgno() else {
            return self.report(v, pgno, id, bad("short overflow page number"));
        };
        if !(NUM_METAS..=self.meta.last_pgno).contains(&first) {
            return self.report(v, pgno, id, bad("overflow page number out of range"));
        }
        let head = match self.src.pages(first, 1) {
            Ok(b) => b,
            Err(e) => return self.soft(v, id, e),
        };
        let flags = u16_at(head, 10).unwrap_or(0);
        if flags & PageFlags::OVERFLOW.0 == 0 || u64_at(head, 0) != Some(first) {
            return self.report(v, first, id, bad("not an overflow page"));
        }
        let count = overflow_pages(head).unwrap_or(0) as u64;
        let ps = self.src.page_size().max(1) as u64;
        let need = (PAGE_HEADER_SIZE as u64 + node.data_size as u64).div_ceil(ps);
        if count < need.max(1) {
            return self.report(v, first, id, bad("overflow run shorter than its value"));
        }
        if first
            .checked_add(count - 1)
            .is_none_or(|end| end > self.meta.last_pgno)
        {
            return self.report(v, first, id, bad("overflow run beyond the last page"));
        }
        let bytes = match self.src.pages(first, count) {
            Ok(b) => b,
            Err(e) => return self.soft(v, id, e),
        };
        // The run is in the source, so marking it is bounded by its size.
        for p in first..first + count {
            if !self.seen.insert(p) {
                return self.report(v, p, id, ProblemKind::ReferencedTwice);
            }
        }
        acc.counts.overflow_pages += count;
        let visit = Visit {
            pgno: first,
            count,
            kind: PageKind::Overflow,
            tree: id,
            depth: level,
            parent: Some(pgno),
            bytes,
            page: None,
        };
        v.page(&visit)?;
        Ok(())
    }
}

/// Whether every node pointer of a branch or leaf page is even and points
/// into the node area (`upper..`), as LMDB lays pages out.
fn nodes_in_node_area(page: &Page<'_>) -> bool {
    let upper = page.upper();
    (0..page.len()).all(|i| {
        u16_at(page.bytes(), PAGE_HEADER_SIZE + 2 * i)
            .is_some_and(|off| off & 1 == 0 && off as usize >= upper)
    })
}

/// Walks every page of `snap`, stopping at the first problem with an
/// [`Error::Corrupted`] naming the page.
pub fn walk<'a, S: PageSource, V: Visitor<'a>>(snap: &'a Snapshot<S>, v: &mut V) -> Result<()> {
    Walker::new(snap).walk(v)
}

/// A free-page list (`MDB_IDL` as stored): page numbers, descending.
#[derive(Clone, Copy, Debug)]
pub struct Idl<'a> {
    bytes: &'a [u8],
}

impl<'a> Idl<'a> {
    /// Views a free record's value: a count, then that many page numbers
    /// (u64, little-endian). Bytes after them are ignored, as LMDB does.
    pub fn parse(value: &'a [u8], pgno: u64) -> Result<Idl<'a>> {
        let bad = Error::corrupted(pgno, "free page list longer than its record");
        let count = u64_at(value, 0).ok_or(bad.clone())?;
        let need = count
            .checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .filter(|&n| n <= value.len() as u64)
            .ok_or(bad)?;
        Ok(Idl {
            bytes: &value[8..need as usize],
        })
    }

    /// Number of page numbers.
    pub fn len(&self) -> usize {
        self.bytes.len() / 8
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Page number `i`.
    pub fn get(&self, i: usize) -> Option<u64> {
        u64_at(self.bytes, i.checked_mul(8)?)
    }

    /// The page numbers, in stored order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        self.bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
    }
}

/// Reads the free records on a leaf page of the free database: calls
/// `f(txnid, page list, leaf pgno)` for each node.
fn free_leaf<'a, S: PageSource>(
    src: &'a S,
    page: &Page<'a>,
    f: &mut impl FnMut(u64, Idl<'a>, u64) -> Result<()>,
) -> Result<()> {
    let pgno = page.pgno();
    for i in 0..page.len() {
        let node = page.node(i)?;
        let key: [u8; 8] = node
            .key
            .try_into()
            .map_err(|_| Error::corrupted(pgno, "free record key is not 8 bytes"))?;
        let value = match node.overflow_pgno() {
            Some(p) => src.overflow_value(p, node.data_size)?,
            None => node.value,
        };
        f(u64::from_le_bytes(key), Idl::parse(value, pgno)?, pgno)?;
    }
    Ok(())
}

/// Calls `f(txnid, pages)` for every record of the free-page database, in
/// key order. The tree is walked with the same guarantees as [`walk`], so
/// this terminates on any input; a corrupted record stops it with an
/// [`Error::Corrupted`].
pub fn free_records<'a, S: PageSource>(
    snap: &'a Snapshot<S>,
    mut f: impl FnMut(u64, Idl<'a>) -> Result<()>,
) -> Result<()> {
    let src = snap.source();
    let mut visit = |v: &Visit<'a>| {
        if let (PageKind::Leaf, Some(page)) = (v.kind, &v.page) {
            free_leaf(src, page, &mut |t, idl, _| f(t, idl))?;
        }
        Ok(Descend::Into)
    };
    Walker::new(snap).walk_free(&mut visit)?;
    Ok(())
}

/// The most problems a [`Report`] lists; the check goes on counting.
pub const MAX_PROBLEMS: usize = 1000;

/// The result of [`check`].
#[derive(Clone, Debug, Default)]
pub struct Report<'a> {
    /// The problems found, at most [`MAX_PROBLEMS`].
    pub problems: Vec<Problem<'a>>,
    /// Number of problems found, including those not listed.
    pub problem_count: u64,
    /// The snapshot's last page (`mm_last_pg`).
    pub last_pgno: u64,
    /// Pages in trees (including overflow pages).
    pub live_pages: u64,
    /// Pages listed in the free database.
    pub free_pages: u64,
    /// Records in the free database.
    pub free_records: u64,
    /// Trees walked (databases and dup sub-databases).
    pub trees: u64,
}

impl Report<'_> {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problem_count == 0
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "last page {}, {} live, {} free in {} records, {} trees, {} problem(s)",
            self.last_pgno,
            self.live_pages,
            self.free_pages,
            self.free_records,
            self.trees,
            self.problem_count
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        if self.problem_count > self.problems.len() as u64 {
            writeln!(
                f,
                "  ... and {} more",
                self.problem_count - self.problems.len() as u64
            )?;
        }
        Ok(())
    }
}

/// The visitor of [`check`]: collects problems and the free lists.
struct Checker<'a, S> {
    src: &'a S,
    report: Report<'a>,
    /// Free records: (txnid, pages, leaf holding the record).
    free: Vec<(u64, Idl<'a>, u64)>,
}

impl<'a, S> Checker<'a, S> {
    fn add(&mut self, p: Problem<'a>) {
        self.report.problem_count += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(p);
        }
    }
}

impl<'a, S: PageSource> Visitor<'a> for Checker<'a, S> {
    fn page(&mut self, v: &Visit<'a>) -> Result<Descend> {
        if let (TreeId::FREE, PageKind::Leaf, Some(page)) = (v.tree, v.kind, &v.page) {
            // Malformed nodes and overflow runs are the walker's to report;
            // only the record format is checked here.
            let pgno = page.pgno();
            for i in 0..page.len() {
                let Ok(node) = page.node(i) else { continue };
                let value = match node.overflow_pgno() {
                    Some(p) => match self.src.overflow_value(p, node.data_size) {
                        Ok(b) => b,
                        Err(_) => continue,
                    },
                    None => node.value,
                };
                let parsed = <[u8; 8]>::try_from(node.key)
                    .map_err(|_| Error::corrupted(pgno, "free record key is not 8 bytes"))
                    .and_then(|k| Ok((u64::from_le_bytes(k), Idl::parse(value, pgno)?)));
                match parsed {
                    Ok((txnid, idl)) => self.free.push((txnid, idl, pgno)),
                    Err(e) => self.add(Problem {
                        pgno,
                        tree: Some(TreeId::FREE),
                        kind: ProblemKind::Corrupted(match e {
                            Error::Corrupted { what, .. } => what,
                            _ => "unreadable free record",
                        }),
                    }),
                }
            }
        }
        Ok(Descend::Into)
    }

    fn problem(&mut self, p: Problem<'a>) -> Result<()> {
        self.add(p);
        Ok(())
    }

    fn tree_done(&mut self, _: &TreeSummary<'a>) -> Result<()> {
        self.report.trees += 1;
        Ok(())
    }
}

/// Checks the integrity of a snapshot: every page reachable exactly once,
/// structure and key order of every tree, the counters of every database
/// record, the free lists (sorted, in range, no page twice, no page both in
/// a tree and free), and that every page up to the last one is either in a
/// tree or free. Corruption is listed in the [`Report`]; an error is
/// returned only when the page source itself fails.
pub fn check<S: PageSource>(snap: &Snapshot<S>) -> Result<Report<'_>> {
    let meta = snap.meta();
    let mut checker = Checker {
        src: snap.source(),
        report: Report {
            last_pgno: meta.last_pgno,
            ..Report::default()
        },
        free: Vec::new(),
    };
    if let Err(e) = meta.validate(meta.txnid & 1) {
        if let Error::Corrupted { pgno, what } = e {
            checker.add(Problem {
                pgno,
                tree: None,
                kind: ProblemKind::Corrupted(what),
            });
        }
        return Ok(checker.report);
    }
    let mut walker = Walker::new(snap).checking(true);
    walker.walk(&mut checker)?;
    let live = walker.live();
    checker.report.live_pages = live.len();

    let mut free = PageSet::new();
    let recs = core::mem::take(&mut checker.free);
    checker.report.free_records = recs.len() as u64;
    for (txnid, idl, at) in recs {
        if txnid > meta.txnid {
            checker.add(Problem {
                pgno: at,
                tree: Some(TreeId::FREE),
                kind: ProblemKind::Corrupted("free record newer than the snapshot"),
            });
        }
        let mut prev = u64::MAX;
        let mut sorted = true;
        for (i, p) in idl.iter().enumerate() {
            if i > 0 && p >= prev {
                sorted = false;
            }
            prev = p;
            let kind = if !(NUM_METAS..=meta.last_pgno).contains(&p) {
                ProblemKind::FreeOutOfRange { txnid }
            } else if !free.insert(p) {
                ProblemKind::FreeTwice { txnid }
            } else if live.contains(p) {
                ProblemKind::LiveAndFree { txnid }
            } else {
                continue;
            };
            let pgno = if matches!(kind, ProblemKind::FreeOutOfRange { .. }) {
                at
            } else {
                p
            };
            checker.add(Problem {
                pgno,
                tree: Some(TreeId::FREE),
                kind,
            });
        }
        if !sorted {
            checker.add(Problem {
                pgno: at,
                tree: Some(TreeId::FREE),
                kind: ProblemKind::BadFreeList { txnid },
            });
        }
    }
    checker.report.free_pages = free.len();

    let mut gaps = Vec::new();
    live.gaps(&free, NUM_METAS, meta.last_pgno, |start, count| {
        gaps.push((start, count))
    });
    for (start, count) in gaps {
        checker.add(Problem {
            pgno: start,
            tree: None,
            kind: ProblemKind::Unaccounted { count },
        });
    }
    Ok(checker.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_set_gaps_skip_empty_stretches() {
        let mut a = PageSet::new();
        let mut b = PageSet::new();
        for p in [2, 3, 5, 1 << 40] {
            a.insert(p);
        }
        b.insert(4);
        b.insert(7);
        let mut gaps = Vec::new();
        a.gaps(&b, 2, u64::MAX - 1, |s, n| gaps.push((s, n)));
        assert_eq!(
            gaps,
            [
                (6, 1),
                (8, (1 << 40) - 8),
                ((1 << 40) + 1, u64::MAX - 1 - (1 << 40))
            ]
        );
        assert!(a.contains(1 << 40) && !a.contains(6));
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn idl_rejects_counts_past_the_record() {
        let mut v = [0u8; 24];
        v[0] = 2;
        v[8] = 9;
        v[16] = 7;
        let idl = Idl::parse(&v, 5).unwrap();
        assert_eq!(idl.iter().collect::<Vec<_>>(), [9, 7]);
        v[0] = 3;
        assert!(Idl::parse(&v, 5).is_err());
        v[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Idl::parse(&v, 5).is_err());
    }
}
