//! Cursors of a write transaction: reads, `mdb_cursor_put` (with CURRENT
//! and MULTIPLE) and `mdb_cursor_del`.
//!
//! A write may split or merge the pages under a cursor, so the cursor keeps
//! its position as the key and value it stands on and finds them again
//! after each write, rather than holding page references across it.

use core::cmp::Ordering;

use super::write::RwTxn;
use super::{Database, ReadTxn};
use crate::btree::write::PutFlags;
use crate::btree::{Cmp, Cursor, CursorOp, Entry};
use crate::error::{Error, Result};
use crate::format::DbFlags;

/// A cursor of a write transaction over one database.
pub struct RwCursor<'t, 'env> {
    txn: &'t mut RwTxn<'env>,
    db: Database,
    /// The key and value under the cursor.
    pos: Option<(Vec<u8>, Vec<u8>)>,
    /// The item under the cursor was deleted; `pos` is now its successor,
    /// which the next NEXT returns without moving (LMDB's `C_DEL`).
    deleted: bool,
    /// NEXT has run past the last item.
    eof: bool,
}

impl<'t, 'env> RwCursor<'t, 'env> {
    pub(super) fn new(txn: &'t mut RwTxn<'env>, db: Database) -> Result<Self> {
        txn.db_record(db)?;
        Ok(RwCursor {
            txn,
            db,
            pos: None,
            deleted: false,
            eof: false,
        })
    }

    fn flags(&self) -> Result<DbFlags> {
        self.txn.db_flags(self.db)
    }

    /// A read cursor standing where this one stands.
    fn restore(&self) -> Result<Cursor<'_, super::WriteState<'env>>> {
        let mut c = self.txn.cursor(self.db)?;
        if let Some((k, v)) = &self.pos {
            let dup = self.flags()?.contains(DbFlags::DUPSORT);
            let found = if dup {
                c.get(CursorOp::GetBoth, Some(k), Some(v))?
            } else {
                c.get(CursorOp::Set, Some(k), None)?
            };
            if found.is_none() {
                return Err(Error::InvalidArgument);
            }
        }
        Ok(c)
    }

    /// Performs one cursor operation (`mdb_cursor_get`); `Ok(None)` for
    /// `MDB_NOTFOUND`.
    pub fn get(
        &mut self,
        op: CursorOp,
        key: Option<&[u8]>,
        data: Option<&[u8]>,
    ) -> Result<Option<Entry<'_>>> {
        use CursorOp::*;
        let relative = !matches!(
            op,
            First | Last | Set | SetKey | SetRange | GetBoth | GetBothRange
        );
        if relative
            && self.pos.is_none()
            && !matches!(op, Next | Prev | NextNoDup | PrevNoDup | NextDup | PrevDup)
        {
            return Err(Error::InvalidArgument);
        }
        if self.deleted && matches!(op, Next | NextDup | NextNoDup | GetCurrent) {
            // The successor is already under the cursor.
            self.deleted = false;
            if self.pos.is_none() {
                return Ok(None);
            }
            // NEXT_NODUP still leaves the successor's key.
            if op != NextNoDup {
                return self.entry_for(GetCurrent);
            }
        }
        if self.eof && matches!(op, Next | NextDup | NextNoDup) {
            return Ok(None);
        }
        let (found, multiple_last) = {
            let mut c = if relative {
                self.restore()?
            } else {
                self.txn.cursor(self.db)?
            };
            let got = c.get(op, key, data)?;
            let last = match (op, got) {
                (GetMultiple | NextMultiple | PrevMultiple, Some((_, v))) => c
                    .get(GetCurrent, None, None)?
                    .map(|(_, cur)| cur.to_vec())
                    .or(Some(v.to_vec())),
                _ => None,
            };
            (got.map(|(k, v)| (k.to_vec(), v.to_vec())), last)
        };
        self.deleted = false;
        match found {
            Some((k, v)) => {
                self.eof = false;
                let stored = multiple_last.unwrap_or(v);
                let key = if k.is_empty() {
                    self.pos.as_ref().map(|p| p.0.clone()).unwrap_or(k)
                } else {
                    k
                };
                self.pos = Some((key, stored));
                self.entry_for(op)
            }
            None => {
                if matches!(op, Next | NextDup | NextNoDup) {
                    self.eof = true;
                }
                Ok(None)
            }
        }
    }

    /// The entry for the current position, borrowed from the transaction.
    fn entry_for(&mut self, op: CursorOp) -> Result<Option<Entry<'_>>> {
        let multiple = matches!(
            op,
            CursorOp::GetMultiple | CursorOp::NextMultiple | CursorOp::PrevMultiple
        );
        let mut c = self.restore()?;
        if multiple {
            return c.get(CursorOp::GetMultiple, None, None);
        }
        c.get(CursorOp::GetCurrent, None, None)
    }

    /// Stores `data` under `key` (`mdb_cursor_put`) and moves the cursor to
    /// it. With [`PutFlags::CURRENT`] the item under the cursor is replaced:
    /// `key` must be its key, and in a DUPSORT database `data` must sort
    /// where the current value does.
    pub fn put(&mut self, key: &[u8], data: &[u8], flags: PutFlags) -> Result<()> {
        if flags.contains(PutFlags::CURRENT) {
            let Some((ck, cv)) = self.pos.clone() else {
                return Err(Error::InvalidArgument);
            };
            let f = self.flags()?;
            let kc = Cmp::for_keys(f);
            if kc.compare(key, &ck) != Ordering::Equal {
                return Err(Error::InvalidArgument);
            }
            if f.contains(DbFlags::DUPSORT) {
                if Cmp::for_dups(f).compare(data, &cv) != Ordering::Equal {
                    return Err(Error::InvalidArgument);
                }
                // Same value under the dup ordering: nothing changes.
                return Ok(());
            }
            self.txn.put(self.db, &ck, data, PutFlags::empty())?;
            self.pos = Some((ck, data.to_vec()));
            return Ok(());
        }
        self.txn.put(self.db, key, data, flags)?;
        self.pos = Some((key.to_vec(), data.to_vec()));
        self.deleted = false;
        self.eof = false;
        Ok(())
    }

    /// Stores several values of one key of a DUPFIXED database
    /// (`MDB_MULTIPLE`): `values` holds them back to back, each `size`
    /// bytes. Returns how many were stored.
    pub fn put_multiple(
        &mut self,
        key: &[u8],
        values: &[u8],
        size: usize,
        flags: PutFlags,
    ) -> Result<usize> {
        if !self.flags()?.contains(DbFlags::DUPFIXED) || size == 0 || values.len() % size != 0 {
            return Err(Error::InvalidArgument);
        }
        let mut n = 0;
        for v in values.chunks_exact(size) {
            match self.txn.put(self.db, key, v, flags) {
                Ok(()) => n += 1,
                Err(Error::KeyExist) if !flags.contains(PutFlags::NODUPDATA) => n += 1,
                Err(e) => return Err(e),
            }
            self.pos = Some((key.to_vec(), v.to_vec()));
        }
        Ok(n)
    }

    /// Deletes the item under the cursor (`mdb_cursor_del`); with
    /// [`PutFlags::NODUPDATA`] every value of its key. The cursor then
    /// stands on the following item.
    pub fn del(&mut self, flags: PutFlags) -> Result<()> {
        let Some((k, v)) = self.pos.clone() else {
            return Err(Error::InvalidArgument);
        };
        if self.deleted {
            return Err(Error::NotFound);
        }
        let dup = self.flags()?.contains(DbFlags::DUPSORT);
        if dup && !flags.contains(PutFlags::NODUPDATA) {
            self.txn.del(self.db, &k, Some(&v))?;
        } else {
            self.txn.del(self.db, &k, None)?;
        }
        // Find the successor of what was deleted.
        let next = {
            let mut c = self.txn.cursor(self.db)?;
            let mut got = if dup && !flags.contains(PutFlags::NODUPDATA) {
                c.get(CursorOp::GetBothRange, Some(&k), Some(&v))?
            } else {
                None
            };
            if got.is_none() {
                got = c.get(CursorOp::SetRange, Some(&k), None)?;
                if let Some((gk, _)) = got {
                    if gk == &k[..] && (!dup || flags.contains(PutFlags::NODUPDATA)) {
                        got = c.get(CursorOp::NextNoDup, None, None)?;
                    }
                }
            }
            got.map(|(a, b)| (a.to_vec(), b.to_vec()))
        };
        self.pos = next;
        self.deleted = true;
        Ok(())
    }

    /// Number of values of the current key (`mdb_cursor_count`).
    pub fn count(&self) -> Result<u64> {
        if !self.flags()?.contains(DbFlags::DUPSORT) {
            return Err(Error::Incompatible);
        }
        self.restore()?.count()
    }
}

impl<'env> RwTxn<'env> {
    /// A cursor that can write.
    pub fn cursor_mut(&mut self, db: Database) -> Result<RwCursor<'_, 'env>> {
        RwCursor::new(self, db)
    }
}
