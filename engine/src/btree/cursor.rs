//! Cursors over a database, with LMDB's dup sub-cursor (`MDB_xcursor`).
//!
//! The state machine follows LMDB's `mdb_cursor_get` op by op, including
//! its end-of-data and failed-search positions, so that any sequence of
//! operations returns what C LMDB returns.

use super::tree::{key_of, Root, Target, TreeCursor};
use super::{node_header, node_key, Cmp, PageSource, Tree};
use crate::error::{Error, Result};
use crate::format::{DbFlags, DbRecord, Node, NodeFlags, MAX_DEPTH, NODE_HEADER_SIZE, P_INVALID};

/// Cursor operations: LMDB's `MDB_cursor_op`, read side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CursorOp {
    /// Position at the first key/value.
    First = 0,
    /// Position at the first value of the current key (DUPSORT).
    FirstDup = 1,
    /// Position at the given key and value (DUPSORT).
    GetBoth = 2,
    /// Position at the given key and the first value not less than the given one (DUPSORT).
    GetBothRange = 3,
    /// Return the current key/value.
    GetCurrent = 4,
    /// Return up to a page of values of the current key (DUPFIXED).
    GetMultiple = 5,
    /// Position at the last key/value.
    Last = 6,
    /// Position at the last value of the current key (DUPSORT).
    LastDup = 7,
    /// Move to the next key/value.
    Next = 8,
    /// Move to the next value of the current key (DUPSORT).
    NextDup = 9,
    /// Return the next page of values of the current key (DUPFIXED).
    NextMultiple = 10,
    /// Move to the first value of the next key.
    NextNoDup = 11,
    /// Move to the previous key/value.
    Prev = 12,
    /// Move to the previous value of the current key (DUPSORT).
    PrevDup = 13,
    /// Move to the last value of the previous key.
    PrevNoDup = 14,
    /// Position at the given key.
    Set = 15,
    /// Position at the given key, returning the stored key.
    SetKey = 16,
    /// Position at the first key not less than the given one.
    SetRange = 17,
    /// Return the previous page of values of the current key (DUPFIXED).
    PrevMultiple = 18,
}

/// A key/value pair borrowed from the snapshot.
pub type Entry<'t> = (&'t [u8], &'t [u8]);

/// A cursor over one database of a snapshot.
pub struct Cursor<'t, S: PageSource + ?Sized> {
    src: &'t S,
    main: TreeCursor<'t>,
    /// The dup sub-cursor of a DUPSORT database.
    sub: Option<TreeCursor<'t>>,
    flags: DbFlags,
    dcmp: Cmp,
}

impl<'t, S: PageSource + ?Sized> Cursor<'t, S> {
    /// A cursor over the tree of database record `rec`, reading pages from `src`.
    pub fn new(src: &'t S, rec: &DbRecord) -> Cursor<'t, S> {
        let flags = rec.flags;
        let main = TreeCursor::new(Tree::from_record(rec, Cmp::for_keys(flags)));
        let dcmp = Cmp::for_dups(flags);
        let sub = flags
            .contains(DbFlags::DUPSORT)
            .then(|| TreeCursor::new(Tree::from_record(&DbRecord::empty(DbFlags(0)), dcmp)));
        Cursor {
            src,
            main,
            sub,
            flags,
            dcmp,
        }
    }

    /// The database's flags.
    pub fn db_flags(&self) -> DbFlags {
        self.flags
    }

    /// Performs one cursor operation, as `mdb_cursor_get` does. `key` and
    /// `data` are the inputs of the SET and GET_BOTH families. Returns
    /// `Ok(None)` where LMDB returns `MDB_NOTFOUND`.
    // Always inlined: what remains after the out-of-line general path is
    // the scan step, which then needs no call and returns in registers.
    #[inline(always)]
    pub fn get(
        &mut self,
        op: CursorOp,
        key: Option<&[u8]>,
        data: Option<&[u8]>,
    ) -> Result<Option<Entry<'t>>> {
        // Scans: a step within the leaf of a database without dups needs
        // none of the state machine below.
        if self.sub.is_none() && matches!(op, CursorOp::Next | CursorOp::Prev) {
            if let Some((page, ki)) = self.main.step_in_leaf(op == CursorOp::Next) {
                if !page.is_leaf2() {
                    let node = leaf_node(&page, ki)?;
                    if !node.flags.contains(NodeFlags::DUPDATA) {
                        return Ok(Some((node.key, self.node_data(&node)?)));
                    }
                }
                // Unusual leaves take the general path from the new index.
                return self.fetch_general(op == CursorOp::Prev);
            }
        }
        self.get_general(op, key, data)
    }

    /// `fetch` with `get`'s result convention, kept out of line so that
    /// `get`'s fast path stays small enough to inline into loops.
    #[inline(never)]
    fn fetch_general(&mut self, last_dup: bool) -> Result<Option<Entry<'t>>> {
        match self.fetch(last_dup) {
            Ok(e) => Ok(Some(e)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every operation, through LMDB's state machine.
    #[inline(never)]
    fn get_general(
        &mut self,
        op: CursorOp,
        key: Option<&[u8]>,
        data: Option<&[u8]>,
    ) -> Result<Option<Entry<'t>>> {
        match self.op(op, key, data) {
            Ok(e) => Ok(Some(e)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn op(&mut self, op: CursorOp, key: Option<&[u8]>, data: Option<&[u8]>) -> Result<Entry<'t>> {
        use CursorOp::*;
        match op {
            First => self.first(),
            Last => self.last(),
            Next | NextDup | NextNoDup => self.next(op),
            Prev | PrevDup | PrevNoDup => self.prev(op),
            GetCurrent => self.current(),
            Set | SetKey | SetRange => {
                let key = key.ok_or(Error::InvalidArgument)?;
                self.set(key, None, op)
            }
            GetBoth | GetBothRange => {
                let key = key.ok_or(Error::InvalidArgument)?;
                let data = data.ok_or(Error::InvalidArgument)?;
                if self.sub.is_none() {
                    return Err(Error::Incompatible);
                }
                self.set(key, Some(data), op)
            }
            FirstDup | LastDup => self.move_dup(op == LastDup),
            GetMultiple => {
                if !self.main.initialized() {
                    return Err(Error::InvalidArgument);
                }
                self.require_dupfixed()?;
                let sub = self.sub.as_ref().ok_or(Error::Incompatible)?;
                if !sub.initialized() || sub.eof() {
                    // LMDB succeeds here without touching key or data.
                    return Ok((&[], &[]));
                }
                self.fetch_multiple()
            }
            NextMultiple => {
                self.require_dupfixed()?;
                let (k, _) = self.next(NextDup)?;
                let sub = self.sub.as_ref().ok_or(Error::Incompatible)?;
                if !sub.initialized() {
                    return Err(Error::NotFound);
                }
                let (_, v) = self.fetch_multiple()?;
                Ok((k, v))
            }
            PrevMultiple => {
                self.require_dupfixed()?;
                let mut k: &[u8] = &[];
                if !self.main.initialized() {
                    k = self.last()?.0;
                }
                let src = self.src;
                let sub = self.sub.as_mut().ok_or(Error::Incompatible)?;
                if !sub.initialized() {
                    return Err(Error::NotFound);
                }
                sub.sibling(src, false)?;
                let (_, v) = self.fetch_multiple()?;
                Ok((k, v))
            }
        }
    }

    fn require_dupfixed(&self) -> Result<()> {
        if self.flags.contains(DbFlags::DUPFIXED) && self.sub.is_some() {
            Ok(())
        } else {
            Err(Error::Incompatible)
        }
    }

    /// All values on the sub-cursor's current LEAF2 page; the sub-cursor
    /// moves to the page's last value.
    fn fetch_multiple(&mut self) -> Result<Entry<'t>> {
        let sub = self.sub.as_mut().ok_or(Error::Incompatible)?;
        let page = sub.page()?;
        let ksize = sub.tree.ksize;
        let all = if page.is_leaf2() {
            page.leaf2_keys(ksize)?
        } else {
            return Err(Error::corrupted(
                page.pgno(),
                "DUPFIXED values not on a LEAF2 page",
            ));
        };
        sub.set_ki(page.len().saturating_sub(1));
        let key = if self.main.initialized() {
            self.main.node().map(|n| n.key).unwrap_or(&[])
        } else {
            &[]
        };
        Ok((key, all))
    }

    /// The value of a leaf node that has no dups (`mdb_node_read`).
    #[inline]
    fn node_data(&self, node: &Node<'t>) -> Result<&'t [u8]> {
        read_value(self.src, node)
    }

    /// Starts the sub-cursor on `node`'s dups (`mdb_xcursor_init1`).
    fn init_sub(&mut self, node: &Node<'t>) -> Result<&mut TreeCursor<'t>> {
        let pgno = self.main.page()?.pgno();
        let tree = Tree::dups(
            node,
            pgno,
            self.dcmp,
            self.flags.contains(DbFlags::DUPFIXED),
        )?;
        let sub = self
            .sub
            .as_mut()
            .ok_or(Error::corrupted(pgno, "dup node in a non-DUPSORT database"))?;
        *sub = TreeCursor::new(tree);
        if matches!(tree.root, Root::Inline(_)) {
            // `mdb_xcursor_init1` leaves a cursor on an inline sub-page
            // positioned at its first value (a sub-database's is not), which
            // decides whether a later GET_BOTH may reuse the page.
            sub.page_search(self.src, Target::First)?;
        }
        Ok(sub)
    }

    fn reset_sub(&mut self) {
        if let Some(sub) = self.sub.as_mut() {
            sub.reset();
        }
    }

    /// Key and value at the main cursor's position, starting the sub-cursor
    /// at its first (or last) value when the key has dups.
    fn fetch(&mut self, last_dup: bool) -> Result<Entry<'t>> {
        let page = self.main.page()?;
        if page.is_leaf2() {
            return Ok((self.main.key()?, &[]));
        }
        let node = self.main.node()?;
        if node.flags.contains(NodeFlags::DUPDATA) {
            let src = self.src;
            let sub = self.init_sub(&node)?;
            let v = if last_dup {
                sub.last(src)?
            } else {
                sub.first(src)?
            };
            Ok((node.key, v))
        } else {
            Ok((node.key, self.node_data(&node)?))
        }
    }

    fn first(&mut self) -> Result<Entry<'t>> {
        self.reset_sub();
        if !self.main.initialized() || self.main.top() > 0 {
            self.main.page_search(self.src, Target::First)?;
        }
        self.main.set_initialized();
        self.main.set_eof(false);
        self.main.set_ki(0);
        self.fetch(false)
    }

    fn last(&mut self) -> Result<Entry<'t>> {
        // As in `first`: a last key without dups leaves no dup position.
        self.reset_sub();
        // As `mdb_cursor_last` of 0.9.24: no shortcut on C_EOF (see
        // `TreeCursor::last`).
        if !self.main.initialized() || self.main.top() > 0 {
            self.main.page_search(self.src, Target::Last)?;
        }
        let n = self.main.page()?.len();
        self.main.set_ki(n.saturating_sub(1));
        self.main.set_initialized();
        self.main.set_eof(true);
        self.fetch(true)
    }

    fn dup_node(&self) -> Result<Option<Node<'t>>> {
        let page = self.main.page()?;
        if self.main.ki() >= page.len() || page.is_leaf2() {
            return Ok(None);
        }
        Ok(Some(page.node(self.main.ki())?))
    }

    fn next(&mut self, op: CursorOp) -> Result<Entry<'t>> {
        if !self.main.initialized() {
            return self.first();
        }
        let n = self.main.page()?.len();
        if self.main.eof() {
            if self.main.ki() + 1 >= n {
                return Err(Error::NotFound);
            }
            self.main.set_eof(false);
        }
        if self.sub.is_some() {
            let node = self.dup_node()?;
            match node {
                Some(node) if node.flags.contains(NodeFlags::DUPDATA) => {
                    if op == CursorOp::Next || op == CursorOp::NextDup {
                        let src = self.src;
                        let sub = self.sub.as_mut().ok_or(Error::Incompatible)?;
                        match sub.next(src) {
                            Ok(v) => return Ok((node.key, v)),
                            Err(Error::NotFound) if op == CursorOp::Next => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                _ => {
                    self.reset_sub();
                    if op == CursorOp::NextDup {
                        return Err(Error::NotFound);
                    }
                }
            }
        }
        // `step_next` repeats the end-of-data check; it is a no-op now.
        self.main.step_next(self.src)?;
        self.fetch(false)
    }

    fn prev(&mut self, op: CursorOp) -> Result<Entry<'t>> {
        if !self.main.initialized() {
            self.last()?;
            self.main.set_initialized();
            let k = self.main.ki();
            self.main.set_ki(k + 1);
        }
        if self.sub.is_some() {
            if let Some(node) = self.dup_node()? {
                if node.flags.contains(NodeFlags::DUPDATA) {
                    if op == CursorOp::Prev || op == CursorOp::PrevDup {
                        let src = self.src;
                        let sub = self.sub.as_mut().ok_or(Error::Incompatible)?;
                        match sub.prev(src) {
                            Ok(v) => {
                                self.main.set_eof(false);
                                return Ok((node.key, v));
                            }
                            Err(Error::NotFound) if op == CursorOp::Prev => {}
                            Err(e) => return Err(e),
                        }
                    }
                } else {
                    self.reset_sub();
                    if op == CursorOp::PrevDup {
                        return Err(Error::NotFound);
                    }
                }
            }
        }
        self.main.step_prev(self.src)?;
        self.fetch(true)
    }

    fn current(&mut self) -> Result<Entry<'t>> {
        if !self.main.initialized() {
            return Err(Error::InvalidArgument);
        }
        let page = self.main.page()?;
        let n = page.len();
        if n == 0 || self.main.ki() >= n {
            self.main.set_ki(n);
            return Err(Error::NotFound);
        }
        if page.is_leaf2() {
            return Ok((self.main.key()?, &[]));
        }
        let node = self.main.node()?;
        if node.flags.contains(NodeFlags::DUPDATA) {
            let sub = self.sub.as_mut().ok_or(Error::Incompatible)?;
            if !sub.initialized() {
                return Err(Error::InvalidArgument);
            }
            let sp = sub.page()?;
            if sp.is_empty() || sub.ki() >= sp.len() {
                sub.set_ki(sp.len());
                return Err(Error::NotFound);
            }
            return Ok((node.key, sub.key()?));
        }
        Ok((node.key, self.node_data(&node)?))
    }

    fn move_dup(&mut self, last: bool) -> Result<Entry<'t>> {
        if !self.main.initialized() {
            return Err(Error::InvalidArgument);
        }
        if self.sub.is_none() {
            return Err(Error::Incompatible);
        }
        let n = self.main.page()?.len();
        if self.main.ki() >= n {
            self.main.set_ki(n);
            return Err(Error::NotFound);
        }
        // LMDB leaves C_EOF alone here: after LAST, FIRST_DUP then NEXT_DUP
        // still reports the end of the data.
        let node = self.main.node()?;
        if !node.flags.contains(NodeFlags::DUPDATA) {
            return Ok((node.key, self.node_data(&node)?));
        }
        let src = self.src;
        let sub = self.sub.as_mut().ok_or(Error::Incompatible)?;
        if !sub.initialized() {
            return Err(Error::InvalidArgument);
        }
        let v = if last {
            sub.last(src)?
        } else {
            sub.first(src)?
        };
        Ok((node.key, v))
    }

    fn set(&mut self, key: &[u8], data: Option<&[u8]>, op: CursorOp) -> Result<Entry<'t>> {
        // LMDB rejects an empty key before it touches the dup sub-cursor,
        // so a following GET_CURRENT still sees the current value.
        if key.is_empty() {
            return Err(Error::BadValSize);
        }
        self.reset_sub();
        let exact = !matches!(op, CursorOp::SetRange);
        let k = cursor_set(&mut self.main, self.src, key, exact)?;
        let page = self.main.page()?;
        if page.is_leaf2() {
            return Ok((k, &[]));
        }
        let node = self.main.node()?;
        if node.flags.contains(NodeFlags::DUPDATA) {
            let src = self.src;
            let sub = self.init_sub(&node)?;
            let v = match data {
                None => sub.first(src)?,
                Some(d) => cursor_set(sub, src, d, op == CursorOp::GetBoth)?,
            };
            return Ok((node.key, v));
        }
        let v = self.node_data(&node)?;
        if let Some(d) = data {
            let ord = self.dcmp.compare(d, v);
            if ord != core::cmp::Ordering::Equal
                && (op == CursorOp::GetBoth || ord == core::cmp::Ordering::Greater)
            {
                return Err(Error::NotFound);
            }
        }
        Ok((node.key, v))
    }

    /// Number of values of the current key (`mdb_cursor_count`).
    ///
    /// Like LMDB, this clears the cursor's end-of-data mark when it sits on
    /// an item, so a following NEXT looks at that item's remaining values.
    pub fn count(&mut self) -> Result<u64> {
        if self.sub.is_none() {
            return Err(Error::Incompatible);
        }
        if !self.main.initialized() {
            return Err(Error::InvalidArgument);
        }
        let page = self.main.page()?;
        if self.main.ki() >= page.len() {
            return Err(Error::NotFound);
        }
        self.main.set_eof(false);
        let sub = self.sub.as_ref().ok_or(Error::Incompatible)?;
        let node = self.main.node()?;
        if !node.flags.contains(NodeFlags::DUPDATA) {
            return Ok(1);
        }
        if !sub.initialized() {
            return Err(Error::InvalidArgument);
        }
        Ok(sub.tree.entries)
    }

    /// The page stack of the main cursor, root first: each page number and
    /// the index within it. Used by tools that walk trees.
    pub fn path(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        (0..self.main.depth()).filter_map(|l| self.main.level(l).map(|(p, i)| (p.pgno(), i)))
    }
}

/// The value of a leaf node that has no dups: inline, or in an overflow run.
#[inline]
pub(crate) fn read_value<'t, S: PageSource + ?Sized>(
    src: &'t S,
    node: &Node<'t>,
) -> Result<&'t [u8]> {
    // Inline values, the common case, without a call.
    if !node.flags.contains(NodeFlags::BIGDATA) {
        return Ok(node.value);
    }
    match node.overflow_pgno() {
        Some(pgno) => src.overflow_value(pgno, node.data_size),
        None => Ok(node.value),
    }
}

/// `mdb_cursor_set` on one tree: positions at `key` (with `exact`) or at
/// the first key not less than it.
///
/// A positioned cursor first tries its current leaf, as LMDB does. The
/// answer is the same as a fresh descent's except for the end-of-data mark:
/// LMDB's shortcuts that fail leave it as it was (a descent clears it, a
/// failed SET_RANGE sets it), and NEXT, GET_MULTIPLE and count read it
/// afterwards. Dup sub-cursors on inline sub-pages always take this path.
fn cursor_set<'t, S: PageSource + ?Sized>(
    tc: &mut TreeCursor<'t>,
    src: &'t S,
    key: &[u8],
    exact: bool,
) -> Result<&'t [u8]> {
    use core::cmp::Ordering::*;
    if key.is_empty() || !tc.initialized() {
        return tc.set(src, key, exact);
    }
    let page = tc.page()?;
    let n = page.len();
    if n == 0 {
        tc.set_ki(0);
        return Err(Error::NotFound);
    }
    let (cmp, ksize) = (tc.tree.cmp, tc.tree.ksize);
    let mut ord = cmp.compare(key, key_of(&page, 0, ksize)?);
    if ord == Equal {
        tc.set_ki(0);
        return set_done(tc);
    }
    if ord == Greater {
        if n > 1 {
            ord = cmp.compare(key, key_of(&page, n - 1, ksize)?);
            if ord == Equal {
                tc.set_ki(n - 1);
                return set_done(tc);
            }
            if ord == Less {
                let ki = tc.ki();
                if ki < n && cmp.compare(key, key_of(&page, ki, ksize)?) == Equal {
                    return set_done(tc);
                }
                // The key falls inside this leaf: search it alone.
                tc.set_eof(false);
                let (found, is_exact) = tc.node_search(key)?;
                if exact && !is_exact {
                    return Err(Error::NotFound);
                }
                if !found {
                    if let Err(e) = tc.sibling(src, true) {
                        tc.set_eof(true);
                        return Err(e);
                    }
                }
                return set_done(tc);
            }
        }
        // Past this leaf's last key: if no ancestor has a right neighbour,
        // there is nothing further.
        let top = tc.top();
        let last_leaf = (0..top).all(|l| matches!(tc.level(l), Some((p, i)) if i + 1 >= p.len()));
        if last_leaf {
            tc.set_ki(n);
            return Err(Error::NotFound);
        }
    } else if tc.top() == 0 {
        // Before the first key of a single-leaf tree.
        tc.set_ki(0);
        if exact {
            return Err(Error::NotFound);
        }
        return set_done(tc);
    }
    tc.set(src, key, exact)
}

/// The common end of a successful `cursor_set` (`set1` in `mdb.c`).
fn set_done<'t>(tc: &mut TreeCursor<'t>) -> Result<&'t [u8]> {
    tc.set_initialized();
    tc.set_eof(false);
    tc.key()
}

/// Looks up `key` and returns its (first) value (`mdb_get`), without the
/// bookkeeping of a full cursor: one descent that keeps only the current
/// page, with the same checks a cursor's descent makes (page bounds and
/// number, page kind at each level, the recorded depth).
pub fn get<'t, S: PageSource + ?Sized>(
    src: &'t S,
    rec: &DbRecord,
    key: &[u8],
) -> Result<Option<&'t [u8]>> {
    if key.is_empty() {
        return Err(Error::BadValSize);
    }
    if rec.root == P_INVALID || rec.depth == 0 {
        return Ok(None);
    }
    let cmp = Cmp::for_keys(rec.flags);
    let depth = rec.depth as usize;
    let ksize = rec.pad as usize;
    let mut pgno = rec.root;
    let mut level = 0usize;
    let page = loop {
        let page = src.tree_page(pgno)?;
        let leaf_level = level + 1 == depth;
        let fits = if leaf_level {
            page.is_leaf() && (!page.is_leaf2() || ksize > 0)
        } else {
            page.is_branch() && !page.is_empty()
        };
        if !fits {
            return Err(Error::corrupted(pgno, "page kind does not fit tree depth"));
        }
        if leaf_level {
            break page;
        }
        if level + 1 >= MAX_DEPTH {
            return Err(Error::corrupted(pgno, "tree too deep"));
        }
        // The child whose range holds `key`: the last node whose key is not
        // greater (node 0 of a branch stands for everything below node 1).
        let (i, exact) = search_nodes(&page, key, cmp, 1)?;
        let i = if exact { i } else { i - 1 };
        pgno = branch_child(&page, i)?;
        level += 1;
    };
    let (i, exact) = if page.is_leaf2() {
        let mut i = 0;
        let mut ord = core::cmp::Ordering::Less;
        let (mut low, mut high) = (0usize, page.len());
        while low < high {
            i = low + (high - low) / 2;
            ord = cmp.compare(key, page.leaf2_key(i, ksize)?);
            match ord {
                core::cmp::Ordering::Equal => break,
                core::cmp::Ordering::Greater => low = i + 1,
                core::cmp::Ordering::Less => high = i,
            }
        }
        (i, ord == core::cmp::Ordering::Equal)
    } else {
        search_nodes(&page, key, cmp, 0)?
    };
    if !exact {
        return Ok(None);
    }
    if page.is_leaf2() {
        return Ok(Some(&[]));
    }
    let node = page.node(i)?;
    if node.flags.contains(NodeFlags::DUPDATA) {
        let dcmp = Cmp::for_dups(rec.flags);
        let tree = Tree::dups(
            &node,
            page.pgno(),
            dcmp,
            rec.flags.contains(DbFlags::DUPFIXED),
        )?;
        let mut sub = TreeCursor::new(tree);
        return sub.first(src).map(Some);
    }
    read_value(src, &node).map(Some)
}

/// Binary search of the nodes `from..` of a branch or non-LEAF2 leaf
/// (`mdb_node_search`): the index of the first key not less than `key`
/// (`len` if none) and whether it is equal. Keys are read with the same
/// bounds checks as [`Page::node`](crate::format::Page::node), without
/// decoding the values.
#[inline]
fn search_nodes(
    page: &crate::format::Page<'_>,
    key: &[u8],
    cmp: Cmp,
    from: usize,
) -> Result<(usize, bool)> {
    // One loop per ordering, so the comparison inlines into it.
    match cmp {
        Cmp::Bytes => search_by(page, key, from, |a, b| a.cmp(b)),
        other => search_by(page, key, from, |a, b| other.compare(a, b)),
    }
}

#[inline(always)]
fn search_by(
    page: &crate::format::Page<'_>,
    key: &[u8],
    from: usize,
    cmp: impl Fn(&[u8], &[u8]) -> core::cmp::Ordering,
) -> Result<(usize, bool)> {
    let bytes = page.bytes();
    let n = page.len();
    let lower = page.lower();
    let bad = || Error::corrupted(page.pgno(), "node out of bounds");
    let (mut low, mut high) = (from, n);
    while low < high {
        let i = low + (high - low) / 2;
        // `i < n`, so its pointer lies below `lower`.
        let k = node_key(bytes, lower, i).ok_or_else(bad)?;
        match cmp(key, k) {
            core::cmp::Ordering::Equal => return Ok((i, true)),
            core::cmp::Ordering::Greater => low = i + 1,
            core::cmp::Ordering::Less => high = i,
        }
    }
    Ok((low, false))
}

/// Node `i` of a leaf page (not LEAF2), with the checks of
/// [`Page::node`](crate::format::Page::node) for a leaf: the pointer, the
/// node header, the key and the inline value (or overflow page number) all
/// inside the page.
#[inline(always)]
fn leaf_node<'t>(page: &crate::format::Page<'t>, i: usize) -> Result<Node<'t>> {
    let bytes = page.bytes();
    let lower = page.lower();
    let node = (|| {
        if i >= page.len() {
            return None;
        }
        let (off, h) = node_header(bytes, lower, i)?;
        let lo = u16::from_le_bytes([h[0], h[1]]) as usize;
        let hi = u16::from_le_bytes([h[2], h[3]]) as usize;
        let flags = NodeFlags(u16::from_le_bytes([h[4], h[5]]));
        let ks = u16::from_le_bytes([h[6], h[7]]) as usize;
        let kstart = off + NODE_HEADER_SIZE;
        let key = bytes.get(kstart..kstart + ks)?;
        let data_size = lo | (hi << 16);
        let vlen = if flags.contains(NodeFlags::BIGDATA) {
            8
        } else {
            data_size
        };
        let vstart = kstart + ks;
        let value = bytes.get(vstart..vstart.checked_add(vlen)?)?;
        Some(Node {
            key,
            flags,
            value,
            data_size,
            child: 0,
        })
    })();
    node.ok_or_else(|| Error::corrupted(page.pgno(), "node out of bounds"))
}

/// The child page number of node `i` of a branch page.
#[inline]
fn branch_child(page: &crate::format::Page<'_>, i: usize) -> Result<u64> {
    let (_, h) = (i < page.len())
        .then(|| node_header(page.bytes(), page.lower(), i))
        .flatten()
        .ok_or(Error::corrupted(page.pgno(), "node out of bounds"))?;
    let lo = u16::from_le_bytes([h[0], h[1]]) as u64;
    let hi = u16::from_le_bytes([h[2], h[3]]) as u64;
    let top = u16::from_le_bytes([h[4], h[5]]) as u64;
    Ok(lo | (hi << 16) | (top << 32))
}

impl<'t, S: PageSource + ?Sized> Cursor<'t, S> {
    /// The leaf node under the main cursor (not on LEAF2 pages).
    pub fn current_node(&self) -> Result<Node<'t>> {
        if !self.main.initialized() {
            return Err(Error::InvalidArgument);
        }
        self.main.node()
    }
}
