//! One B+tree and a cursor position inside it (`MDB_cursor` without the
//! dup sub-cursor).

use super::{Cmp, PageSource};
use crate::error::{Error, Result};
use crate::format::{DbRecord, Node, NodeFlags, Page, MAX_DEPTH, P_INVALID};

/// What the tree holds: a database's keys, or the values of one key of a
/// DUPSORT database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeKind {
    /// A main, named or free database: leaf nodes hold key and value.
    Keys,
    /// A dup sub-tree: leaf keys are the values, with no data of their own.
    Dups,
}

/// Where a tree's root is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Root<'t> {
    /// No pages: the tree is empty.
    Empty,
    /// A page of the environment.
    Page(u64),
    /// A sub-page stored inside a leaf node's value.
    Inline(Page<'t>),
}

/// The description of one tree that a cursor walks.
#[derive(Clone, Copy, Debug)]
pub struct Tree<'t> {
    pub(crate) root: Root<'t>,
    /// Height: every path from the root has exactly this many pages.
    pub(crate) depth: usize,
    /// The ordering of this tree's keys.
    pub(crate) cmp: Cmp,
    /// Size of each key on LEAF2 pages (`md_pad`).
    pub(crate) ksize: usize,
    /// Number of entries, as recorded.
    pub(crate) entries: u64,
}

impl<'t> Tree<'t> {
    /// The tree described by a database record.
    pub fn from_record(rec: &DbRecord, cmp: Cmp) -> Tree<'t> {
        Tree {
            root: if rec.root == P_INVALID || rec.depth == 0 {
                Root::Empty
            } else {
                Root::Page(rec.root)
            },
            depth: rec.depth as usize,
            cmp,
            ksize: rec.pad as usize,
            entries: rec.entries,
        }
    }

    /// The dup sub-tree held by leaf node `node` (which has `F_DUPDATA`) of
    /// page `pgno`: a sub-database record or an inline sub-page.
    pub fn dups(node: &Node<'t>, pgno: u64, cmp: Cmp, dupfixed: bool) -> Result<Tree<'t>> {
        if node.flags.contains(NodeFlags::SUBDATA) {
            let rec = DbRecord::parse(node.value)
                .ok_or(Error::corrupted(pgno, "short dup sub-database record"))?;
            if rec.root == P_INVALID || rec.depth == 0 {
                return Err(Error::corrupted(pgno, "empty dup sub-database"));
            }
            return Ok(Tree::from_record(&rec, cmp));
        }
        if node.flags.contains(NodeFlags::BIGDATA) {
            return Err(Error::corrupted(pgno, "dup sub-page in an overflow run"));
        }
        let sub = Page::new(node.value, pgno)?;
        if !sub.is_leaf() || sub.is_empty() {
            return Err(Error::corrupted(pgno, "dup sub-page is not a leaf"));
        }
        let ksize = if dupfixed { sub.pad() as usize } else { 0 };
        Ok(Tree {
            root: Root::Inline(sub),
            depth: 1,
            cmp,
            ksize,
            entries: sub.len() as u64,
        })
    }

    /// Whether the tree has no pages.
    pub fn is_empty(&self) -> bool {
        matches!(self.root, Root::Empty)
    }
}

/// Where a descent should go.
#[derive(Clone, Copy)]
pub(crate) enum Target<'k> {
    First,
    Last,
    Key(&'k [u8]),
}

const C_INITIALIZED: u8 = 1;
const C_EOF: u8 = 2;

/// A position in one tree: the stack of pages from the root to a leaf and
/// the index within each (LMDB's `mc_pg`, `mc_ki`, `mc_flags`).
#[derive(Clone)]
pub(crate) struct TreeCursor<'t> {
    pub(crate) tree: Tree<'t>,
    pages: [Option<Page<'t>>; MAX_DEPTH],
    ki: [usize; MAX_DEPTH],
    snum: usize,
    flags: u8,
}

impl<'t> TreeCursor<'t> {
    pub(crate) fn new(tree: Tree<'t>) -> TreeCursor<'t> {
        TreeCursor {
            tree,
            pages: [None; MAX_DEPTH],
            ki: [0; MAX_DEPTH],
            snum: 0,
            flags: 0,
        }
    }

    #[inline]
    pub(crate) fn initialized(&self) -> bool {
        self.flags & C_INITIALIZED != 0
    }
    #[inline]
    pub(crate) fn eof(&self) -> bool {
        self.flags & C_EOF != 0
    }
    #[inline]
    pub(crate) fn set_eof(&mut self, on: bool) {
        if on {
            self.flags |= C_EOF
        } else {
            self.flags &= !C_EOF
        }
    }
    #[inline]
    pub(crate) fn set_initialized(&mut self) {
        self.flags |= C_INITIALIZED;
    }
    /// Forgets the position (`mc_flags &= ~(C_INITIALIZED|C_EOF)`).
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.flags = 0;
    }
    /// Index of the top of the stack.
    #[inline]
    pub(crate) fn top(&self) -> usize {
        self.snum.saturating_sub(1)
    }
    /// The leaf (top) page. Callers only ask when a page was pushed.
    #[inline]
    pub(crate) fn page(&self) -> Result<Page<'t>> {
        self.snum
            .checked_sub(1)
            .and_then(|t| self.pages[t])
            .ok_or(Error::InvalidArgument)
    }
    #[inline]
    pub(crate) fn ki(&self) -> usize {
        self.ki[self.top()]
    }
    #[inline]
    pub(crate) fn set_ki(&mut self, i: usize) {
        let t = self.top();
        self.ki[t] = i;
    }
    /// Number of pages on the stack.
    pub(crate) fn depth(&self) -> usize {
        self.snum
    }
    /// Page `level` of the stack and the index within it.
    pub(crate) fn level(&self, level: usize) -> Option<(Page<'t>, usize)> {
        if level < self.snum {
            self.pages[level].map(|p| (p, self.ki[level]))
        } else {
            None
        }
    }

    fn load<S: PageSource + ?Sized>(
        &self,
        src: &'t S,
        pgno: u64,
        level: usize,
    ) -> Result<Page<'t>> {
        let page = src.tree_page(pgno)?;
        self.check_level(&page, level)?;
        Ok(page)
    }

    /// Checks that a page sits where the tree's depth says it must: branch
    /// pages above the last level, a leaf at it. This is what makes a cycle
    /// of page pointers impossible to follow forever.
    fn check_level(&self, page: &Page<'t>, level: usize) -> Result<()> {
        let ok = if Some(level) == self.tree.depth.checked_sub(1) {
            page.is_leaf() && (!page.is_leaf2() || self.tree.ksize > 0)
        } else {
            page.is_branch() && !page.is_empty()
        };
        if ok {
            Ok(())
        } else {
            Err(Error::corrupted(
                page.pgno(),
                "page kind does not fit tree depth",
            ))
        }
    }

    fn push(&mut self, page: Page<'t>) -> Result<()> {
        if self.snum >= MAX_DEPTH {
            return Err(Error::corrupted(page.pgno(), "tree too deep"));
        }
        self.pages[self.snum] = Some(page);
        self.ki[self.snum] = 0;
        self.snum += 1;
        Ok(())
    }

    /// Binary search of the top page (`mdb_node_search`): sets the index to
    /// the first entry not less than `key` and reports an exact match.
    /// Returns `false` as `found` when every entry is less than `key`.
    pub(crate) fn node_search(&mut self, key: &[u8]) -> Result<(bool, bool)> {
        let page = self.page()?;
        let n = page.len();
        let mut low: isize = if page.is_leaf() { 0 } else { 1 };
        let mut high: isize = n as isize - 1;
        let mut i: isize = 0;
        let mut ord = core::cmp::Ordering::Equal;
        let cmp = self.tree.cmp;
        while low <= high {
            i = (low + high) >> 1;
            let k = key_of(&page, i as usize, self.tree.ksize)?;
            ord = cmp.compare(key, k);
            match ord {
                core::cmp::Ordering::Equal => break,
                core::cmp::Ordering::Greater => low = i + 1,
                core::cmp::Ordering::Less => high = i - 1,
            }
        }
        if ord == core::cmp::Ordering::Greater {
            i += 1;
        }
        let exact = ord == core::cmp::Ordering::Equal && n > 0;
        self.set_ki(i as usize);
        Ok(((i as usize) < n, exact))
    }

    /// Descends from the root to a leaf (`mdb_page_search`).
    pub(crate) fn page_search<S: PageSource + ?Sized>(
        &mut self,
        src: &'t S,
        target: Target<'_>,
    ) -> Result<()> {
        // Until the descent succeeds the cursor has no position: a failed
        // descent must not leave a half-filled stack that later moves trust.
        self.snum = 0;
        self.flags = 0;
        let root = match self.tree.root {
            Root::Empty => return Err(Error::NotFound),
            Root::Page(pgno) => self.load(src, pgno, 0)?,
            Root::Inline(page) => {
                self.check_level(&page, 0)?;
                page
            }
        };
        self.push(root)?;
        loop {
            let page = self.page()?;
            if page.is_leaf() {
                break;
            }
            let i = match target {
                Target::First => 0,
                Target::Last => page.len().saturating_sub(1),
                Target::Key(key) => {
                    let (found, exact) = self.node_search(key)?;
                    if !found {
                        page.len().saturating_sub(1)
                    } else if !exact {
                        self.ki().saturating_sub(1)
                    } else {
                        self.ki()
                    }
                }
            };
            self.set_ki(i);
            let child = page.node(i)?.child;
            let level = self.snum;
            let next = self.load(src, child, level)?;
            self.push(next)?;
        }
        if self.snum != self.tree.depth {
            let pgno = self.page()?.pgno();
            return Err(Error::corrupted(pgno, "leaf above the recorded depth"));
        }
        self.flags = C_INITIALIZED;
        Ok(())
    }

    /// Moves to the neighbouring leaf (`mdb_cursor_sibling`). When there is
    /// no neighbour the position is unchanged; when a page on the way fails
    /// to load, the cursor is left unpositioned, as LMDB leaves it.
    pub(crate) fn sibling<S: PageSource + ?Sized>(
        &mut self,
        src: &'t S,
        right: bool,
    ) -> Result<()> {
        if self.snum < 2 {
            return Err(Error::NotFound);
        }
        let saved_top = self.snum;
        // Find the lowest ancestor that has a neighbour in this direction.
        let mut level = self.snum - 2;
        loop {
            let page = self.pages[level].ok_or(Error::InvalidArgument)?;
            let ki = self.ki[level];
            let has = if right { ki + 1 < page.len() } else { ki > 0 };
            if has {
                break;
            }
            if level == 0 {
                return Err(Error::NotFound);
            }
            level -= 1;
        }
        // The stack is updated in place (copying it cost more than the move
        // itself on every leaf change of a scan).
        self.ki[level] = if right {
            self.ki[level] + 1
        } else {
            self.ki[level] - 1
        };
        let mut l = level;
        while l + 1 < saved_top {
            let step = self.pages[l]
                .ok_or(Error::InvalidArgument)
                .and_then(|parent| parent.node(self.ki[l]))
                .and_then(|node| self.load(src, node.child, l + 1));
            let page = match step {
                Ok(page) => page,
                Err(e) => {
                    self.flags = 0;
                    return Err(e);
                }
            };
            self.pages[l + 1] = Some(page);
            self.ki[l + 1] = if right {
                0
            } else {
                page.len().saturating_sub(1)
            };
            l += 1;
        }
        self.prefetch_next_leaf(src, right);
        Ok(())
    }

    /// Starts loading the leaf after the current one in the direction of
    /// a scan, while the scan reads this one: leaves lie in the file in no
    /// order the CPU could guess.
    fn prefetch_next_leaf<S: PageSource + ?Sized>(&self, src: &'t S, right: bool) {
        let Some(level) = self.snum.checked_sub(2) else {
            return;
        };
        let (Some(parent), ki) = (self.pages[level], self.ki[level]) else {
            return;
        };
        let next = if right {
            ki.checked_add(1)
        } else {
            ki.checked_sub(1)
        };
        let child = next
            .filter(|&i| i < parent.len())
            .and_then(|i| parent.node(i).ok());
        if let Some(bytes) = child.and_then(|n| src.pages(n.child, 1).ok()) {
            super::prefetch::prefetch(bytes);
        }
    }

    /// Moves one entry within the current leaf, if that is all LMDB's NEXT
    /// (or PREV) would do on a tree without dups: the cursor is positioned,
    /// not at the end of the data, and the neighbour is on this leaf.
    /// Returns the leaf and the new index; the caller reads the node, with
    /// its usual checks.
    #[inline]
    pub(crate) fn step_in_leaf(&mut self, forward: bool) -> Option<(Page<'t>, usize)> {
        if self.flags != C_INITIALIZED || self.snum == 0 {
            return None;
        }
        let t = self.snum - 1;
        let page = self.pages[t]?;
        let ki = self.ki[t];
        let to = if forward { ki + 1 } else { ki.checked_sub(1)? };
        if to >= page.len() {
            return None;
        }
        self.ki[t] = to;
        Some((page, to))
    }

    /// The key at the current index of the leaf.
    #[inline]
    pub(crate) fn key(&self) -> Result<&'t [u8]> {
        key_of(&self.page()?, self.ki(), self.tree.ksize)
    }

    /// The current leaf node (not for LEAF2 pages).
    #[inline]
    pub(crate) fn node(&self) -> Result<Node<'t>> {
        self.page()?.node(self.ki())
    }

    /// `mdb_cursor_first` on a tree without dups: returns the first key.
    pub(crate) fn first<S: PageSource + ?Sized>(&mut self, src: &'t S) -> Result<&'t [u8]> {
        if !self.initialized() || self.top() > 0 {
            self.page_search(src, Target::First)?;
        }
        self.flags = C_INITIALIZED;
        self.set_ki(0);
        self.key()
    }

    /// `mdb_cursor_last` on a tree without dups: returns the last key.
    pub(crate) fn last<S: PageSource + ?Sized>(&mut self, src: &'t S) -> Result<&'t [u8]> {
        // LMDB 0.9.24 descends again whatever C_EOF says: a dup cursor that
        // PREV_MULTIPLE moved to an earlier leaf keeps C_EOF from its LAST.
        if !self.initialized() || self.top() > 0 {
            self.page_search(src, Target::Last)?;
        }
        let n = self.page()?.len();
        self.set_ki(n.saturating_sub(1));
        self.flags = C_INITIALIZED | C_EOF;
        self.key()
    }

    /// `mdb_cursor_next` on a tree without dups.
    pub(crate) fn next<S: PageSource + ?Sized>(&mut self, src: &'t S) -> Result<&'t [u8]> {
        if !self.initialized() {
            return self.first(src);
        }
        self.step_next(src)?;
        self.key()
    }

    /// `mdb_cursor_prev` on a tree without dups.
    pub(crate) fn prev<S: PageSource + ?Sized>(&mut self, src: &'t S) -> Result<&'t [u8]> {
        if !self.initialized() {
            self.last(src)?;
            let k = self.ki();
            self.set_ki(k + 1);
        }
        self.step_prev(src)?;
        self.key()
    }

    /// The index movement of `mdb_cursor_next`, after any dup handling.
    pub(crate) fn step_next<S: PageSource + ?Sized>(&mut self, src: &'t S) -> Result<()> {
        let n = self.page()?.len();
        if self.eof() {
            if self.ki() + 1 >= n {
                return Err(Error::NotFound);
            }
            self.set_eof(false);
        }
        if self.ki() + 1 >= n {
            match self.sibling(src, true) {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.set_eof(true);
                    Err(e)
                }
            }
        } else {
            let k = self.ki();
            self.set_ki(k + 1);
            Ok(())
        }
    }

    /// The index movement of `mdb_cursor_prev`, after any dup handling.
    pub(crate) fn step_prev<S: PageSource + ?Sized>(&mut self, src: &'t S) -> Result<()> {
        self.set_eof(false);
        if self.ki() == 0 {
            self.sibling(src, false)
        } else {
            let k = self.ki();
            self.set_ki(k - 1);
            Ok(())
        }
    }

    /// `mdb_cursor_set` on a tree without dups: positions at `key` (exact)
    /// or at the first key not less than it.
    pub(crate) fn set<S: PageSource + ?Sized>(
        &mut self,
        src: &'t S,
        key: &[u8],
        exact: bool,
    ) -> Result<&'t [u8]> {
        if key.is_empty() {
            return Err(Error::BadValSize);
        }
        self.page_search(src, Target::Key(key))?;
        let (found, is_exact) = self.node_search(key)?;
        if exact && !is_exact {
            return Err(Error::NotFound);
        }
        if !found {
            if let Err(e) = self.sibling(src, true) {
                self.set_eof(true);
                return Err(e);
            }
        }
        self.flags = C_INITIALIZED;
        self.key()
    }
}

/// Key `i` of a leaf or branch page.
#[inline]
pub(crate) fn key_of<'t>(page: &Page<'t>, i: usize, ksize: usize) -> Result<&'t [u8]> {
    if page.is_leaf2() {
        page.leaf2_key(i, ksize)
    } else {
        Ok(page.node(i)?.key)
    }
}
