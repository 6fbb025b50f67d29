//! Rust iterators over cursors: ranges, prefixes, reverse order, the
//! values of one key.

use core::cmp::Ordering;
use core::ops::{Bound, RangeBounds};

use crate::btree::{Cmp, Cursor, CursorOp, Entry, PageSource};
use crate::env::{Database, ReadTxn};
use crate::error::Result;

/// Where an iterator stops.
enum End {
    Unbounded,
    Key { key: Vec<u8>, inclusive: bool },
    Prefix(Vec<u8>),
}

/// An iterator over the entries of a database, forward or backward.
/// Each item is a key/value pair borrowed from the snapshot; a DUPSORT key
/// yields one item per value.
pub struct Iter<'t, S: PageSource + ?Sized> {
    cursor: Cursor<'t, S>,
    /// The first operation, consumed by the first call to `next`.
    start: Option<Start>,
    step: CursorOp,
    end: End,
    cmp: Cmp,
    reverse: bool,
    done: bool,
}

enum Start {
    First,
    Last,
    From { key: Vec<u8>, inclusive: bool },
}

impl<'t, S: PageSource + ?Sized> Iter<'t, S> {
    /// Iterates `cursor`'s database over `range`, in key order or reversed.
    pub fn new<'r, R: RangeBounds<&'r [u8]>>(
        cursor: Cursor<'t, S>,
        range: R,
        reverse: bool,
    ) -> Self {
        let cmp = Cmp::for_keys(cursor.db_flags());
        let own = |b: Bound<&&[u8]>| match b {
            Bound::Included(k) => Some((k.to_vec(), true)),
            Bound::Excluded(k) => Some((k.to_vec(), false)),
            Bound::Unbounded => None,
        };
        let (from, to) = if reverse {
            (own(range.end_bound()), own(range.start_bound()))
        } else {
            (own(range.start_bound()), own(range.end_bound()))
        };
        Iter {
            cursor,
            start: Some(match from {
                None if reverse => Start::Last,
                None => Start::First,
                Some((key, inclusive)) => Start::From { key, inclusive },
            }),
            step: if reverse {
                CursorOp::Prev
            } else {
                CursorOp::Next
            },
            end: match to {
                None => End::Unbounded,
                Some((key, inclusive)) => End::Key { key, inclusive },
            },
            cmp,
            reverse,
            done: false,
        }
    }

    /// Iterates the keys that start with `prefix`, in key order.
    pub fn prefix(cursor: Cursor<'t, S>, prefix: &[u8]) -> Self {
        let mut it = Iter::new(cursor, (Bound::Included(prefix), Bound::Unbounded), false);
        it.end = End::Prefix(prefix.to_vec());
        it
    }

    fn position(&mut self, start: Start) -> Result<Option<Entry<'t>>> {
        let c = &mut self.cursor;
        match start {
            Start::First => c.get(CursorOp::First, None, None),
            Start::Last => c.get(CursorOp::Last, None, None),
            Start::From { key, inclusive } if !self.reverse => {
                let found = c.get(CursorOp::SetRange, Some(&key), None)?;
                match found {
                    Some((k, _)) if !inclusive && self.cmp.compare(k, &key) == Ordering::Equal => {
                        c.get(CursorOp::NextNoDup, None, None)
                    }
                    other => Ok(other),
                }
            }
            Start::From { key, inclusive } => match c.get(CursorOp::SetRange, Some(&key), None)? {
                None => c.get(CursorOp::Last, None, None),
                Some((k, _)) => {
                    if inclusive && self.cmp.compare(k, &key) == Ordering::Equal {
                        if c.db_flags().contains(crate::DbFlags::DUPSORT) {
                            c.get(CursorOp::LastDup, None, None)
                        } else {
                            c.get(CursorOp::GetCurrent, None, None)
                        }
                    } else {
                        c.get(CursorOp::Prev, None, None)
                    }
                }
            },
        }
    }

    #[inline]
    fn in_range(&self, key: &[u8]) -> bool {
        match &self.end {
            End::Unbounded => true,
            End::Prefix(p) => key.starts_with(p),
            End::Key {
                key: end,
                inclusive,
            } => {
                let o = self.cmp.compare(key, end);
                let o = if self.reverse { o.reverse() } else { o };
                o == Ordering::Less || (*inclusive && o == Ordering::Equal)
            }
        }
    }
}

impl<'t, S: PageSource + ?Sized> Iterator for Iter<'t, S> {
    type Item = Result<Entry<'t>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let got = match self.start.take() {
            Some(start) => self.position(start),
            None => self.cursor.get(self.step, None, None),
        };
        match got {
            Ok(Some((k, v))) if self.in_range(k) => Some(Ok((k, v))),
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The values of one key of a DUPSORT database, in order.
pub struct Dups<'t, S: PageSource + ?Sized> {
    cursor: Cursor<'t, S>,
    key: Option<Vec<u8>>,
    done: bool,
}

impl<'t, S: PageSource + ?Sized> Dups<'t, S> {
    /// The values of `key`.
    pub fn new(cursor: Cursor<'t, S>, key: &[u8]) -> Self {
        Dups {
            cursor,
            key: Some(key.to_vec()),
            done: false,
        }
    }
}

impl<'t, S: PageSource + ?Sized> Iterator for Dups<'t, S> {
    type Item = Result<&'t [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let got = match self.key.take() {
            Some(k) => self.cursor.get(CursorOp::Set, Some(&k), None),
            None if self.cursor.db_flags().contains(crate::DbFlags::DUPSORT) => {
                self.cursor.get(CursorOp::NextDup, None, None)
            }
            None => Ok(None),
        };
        match got {
            Ok(Some((_, v))) => Some(Ok(v)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterators over any transaction's databases.
pub trait Iterate: ReadTxn {
    /// Every entry of `db` in key order.
    fn iter(&self, db: Database) -> Result<Iter<'_, Self::Source>> {
        Ok(Iter::new(self.cursor(db)?, .., false))
    }

    /// Every entry of `db` in reverse key order.
    fn iter_rev(&self, db: Database) -> Result<Iter<'_, Self::Source>> {
        Ok(Iter::new(self.cursor(db)?, .., true))
    }

    /// The entries of `db` whose keys fall in `range`, in key order.
    fn range<'r, R: RangeBounds<&'r [u8]>>(
        &self,
        db: Database,
        range: R,
    ) -> Result<Iter<'_, Self::Source>> {
        Ok(Iter::new(self.cursor(db)?, range, false))
    }

    /// The entries of `db` whose keys fall in `range`, in reverse key order.
    fn range_rev<'r, R: RangeBounds<&'r [u8]>>(
        &self,
        db: Database,
        range: R,
    ) -> Result<Iter<'_, Self::Source>> {
        Ok(Iter::new(self.cursor(db)?, range, true))
    }

    /// The entries of `db` whose keys start with `prefix`.
    fn prefix(&self, db: Database, prefix: &[u8]) -> Result<Iter<'_, Self::Source>> {
        Ok(Iter::prefix(self.cursor(db)?, prefix))
    }

    /// The values of `key` in `db` (one value unless `db` is DUPSORT).
    fn dups(&self, db: Database, key: &[u8]) -> Result<Dups<'_, Self::Source>> {
        Ok(Dups::new(self.cursor(db)?, key))
    }
}

impl<T: ReadTxn + ?Sized> Iterate for T {}
