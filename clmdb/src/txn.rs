//! Transactions (`MDB_txn`) and database handles (`MDB_dbi`).

use std::ffi::CString;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

use crate::cursor::{Cursor, RwCursor};
use crate::env::Env;
use crate::error::{check, Error, Result};
use crate::ffi;

/// A database handle (`MDB_dbi`). Handles are plain numbers: one opened in
/// a transaction that commits stays valid for the whole environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dbi(pub ffi::MDB_dbi);

impl Dbi {
    /// The free-page database (`FREE_DBI` = 0). Readable with a cursor.
    pub const FREE: Dbi = Dbi(0);
    /// The main (unnamed) database (`MAIN_DBI` = 1).
    pub const MAIN: Dbi = Dbi(1);
}

/// Statistics of a database (`MDB_stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stat {
    /// Page size.
    pub psize: u32,
    /// Depth (height) of the B-tree, 0 when empty.
    pub depth: u32,
    /// Number of branch (internal) pages.
    pub branch_pages: usize,
    /// Number of leaf pages.
    pub leaf_pages: usize,
    /// Number of overflow pages.
    pub overflow_pages: usize,
    /// Number of data items (every duplicate counts).
    pub entries: usize,
}

impl From<ffi::MDB_stat> for Stat {
    fn from(s: ffi::MDB_stat) -> Self {
        Stat {
            psize: s.ms_psize,
            depth: s.ms_depth,
            branch_pages: s.ms_branch_pages,
            leaf_pages: s.ms_leaf_pages,
            overflow_pages: s.ms_overflow_pages,
            entries: s.ms_entries,
        }
    }
}

/// Builds an `MDB_val` that points at `data` (C only reads through it).
pub(crate) fn val_in(data: &[u8]) -> ffi::MDB_val {
    ffi::MDB_val {
        mv_size: data.len(),
        mv_data: data.as_ptr() as *mut libc::c_void,
    }
}

/// Turns an `MDB_val` that C filled into a slice.
///
/// # Safety
/// `v` must describe `mv_size` readable bytes that stay valid and unchanged
/// for `'a`.
pub(crate) unsafe fn val_out<'a>(v: &ffi::MDB_val) -> &'a [u8] {
    if v.mv_size == 0 || v.mv_data.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(v.mv_data as *const u8, v.mv_size) }
    }
}

/// The operations common to read-only and read-write transactions.
/// [`RoTxn`] and [`RwTxn`] dereference to it, so a function taking `&Txn`
/// accepts both.
///
/// Slices returned by [`Txn::get`] and by cursors borrow the transaction:
/// for a read-write transaction this prevents any write while they live.
pub struct Txn<'env> {
    ptr: NonNull<ffi::MDB_txn>,
    rdonly: bool,
    _env: PhantomData<&'env Env>,
}

impl<'env> Txn<'env> {
    /// The raw handle, for calls this wrapper does not cover.
    pub fn as_ptr(&self) -> *mut ffi::MDB_txn {
        self.ptr.as_ptr()
    }

    /// The transaction ID (`mdb_txn_id`): the snapshot's txnid for a read
    /// transaction, the ID it will commit as for a write transaction.
    pub fn id(&self) -> usize {
        // SAFETY: valid txn handle.
        unsafe { ffi::mdb_txn_id(self.as_ptr()) }
    }

    /// Opens a database (`mdb_dbi_open`). `None` is the main database;
    /// `flags` are raw [`crate::flags::db`] bits. Without `MDB_CREATE`, a
    /// missing name gives `MDB_NOTFOUND` as an error, and a named database
    /// needs `max_dbs` > 0 (else `MDB_DBS_FULL`).
    ///
    /// In a read-only transaction every flag goes to C unchanged (C answers
    /// `MDB_CREATE` of a missing name with `EACCES`). In a read-write
    /// transaction use [`RwTxn::open_db`], which takes `&mut self` because
    /// `MDB_CREATE` writes: called through `&Txn` on a write transaction
    /// with `MDB_CREATE`, this method returns `EACCES` without calling C.
    pub fn open_db(&self, name: Option<&str>, flags: u32) -> Result<Dbi> {
        if !self.rdonly && flags & ffi::MDB_CREATE != 0 {
            return Err(Error { code: libc::EACCES });
        }
        self.open_db_raw(name, flags)
    }

    fn open_db_raw(&self, name: Option<&str>, flags: u32) -> Result<Dbi> {
        let cname = match name {
            Some(n) => Some(CString::new(n).map_err(|_| Error { code: libc::EINVAL })?),
            None => None,
        };
        let mut dbi: ffi::MDB_dbi = 0;
        // SAFETY: valid txn; the name is NUL-terminated (or null for the
        // main DB) and outlives the call; `dbi` is a valid out-pointer.
        check(unsafe {
            ffi::mdb_dbi_open(
                self.as_ptr(),
                cname.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                flags,
                &mut dbi,
            )
        })?;
        Ok(Dbi(dbi))
    }

    /// The flags of a database (`mdb_dbi_flags`), e.g. `MDB_DUPSORT`.
    pub fn db_flags(&self, dbi: Dbi) -> Result<u32> {
        let mut f = 0;
        // SAFETY: valid txn and out-pointer; C validates the dbi.
        check(unsafe { ffi::mdb_dbi_flags(self.as_ptr(), dbi.0, &mut f) })?;
        Ok(f)
    }

    /// Statistics of a database (`mdb_stat`).
    pub fn stat(&self, dbi: Dbi) -> Result<Stat> {
        let mut st = std::mem::MaybeUninit::<ffi::MDB_stat>::uninit();
        // SAFETY: valid txn; C fills the struct on success and validates dbi.
        check(unsafe { ffi::mdb_stat(self.as_ptr(), dbi.0, st.as_mut_ptr()) })?;
        // SAFETY: initialized by the successful call.
        Ok(Stat::from(unsafe { st.assume_init() }))
    }

    /// Looks a key up (`mdb_get`). Zero-copy: the slice points into the map
    /// (or the transaction's dirty page) and borrows the transaction. For a
    /// DUPSORT database this is the first (smallest) duplicate.
    /// `MDB_NOTFOUND` is `Ok(None)`; any other code is an error.
    pub fn get<'t>(&'t self, dbi: Dbi, key: &[u8]) -> Result<Option<&'t [u8]>> {
        let mut k = val_in(key);
        let mut d = ffi::MDB_val {
            mv_size: 0,
            mv_data: ptr::null_mut(),
        };
        // SAFETY: valid txn; `k` points at `key` (read only); `d` is an
        // out-parameter.
        let rc = unsafe { ffi::mdb_get(self.as_ptr(), dbi.0, &mut k, &mut d) };
        match rc {
            0 => {
                // SAFETY: C set `d` to data inside the map or a page owned by
                // this txn, valid until the txn ends or writes; the borrow of
                // `self` (and `&mut self` on writes) ensures neither happens
                // while the slice lives.
                Ok(Some(unsafe { val_out(&d) }))
            }
            ffi::MDB_NOTFOUND => Ok(None),
            code => Err(Error { code }),
        }
    }

    /// Opens a read cursor on `dbi` (`mdb_cursor_open`). Results borrow the
    /// transaction. In a read-write transaction, [`RwTxn::cursor_mut`] gives
    /// a cursor that can also write.
    pub fn cursor(&self, dbi: Dbi) -> Result<Cursor<'_>> {
        Cursor::open(self.as_ptr(), dbi)
    }
}

/// A read-only transaction (`mdb_txn_begin` with `MDB_RDONLY`). Aborted on
/// drop. Not `Send`: without `MDB_NOTLS` its reader slot belongs to the thread.
pub struct RoTxn<'env> {
    txn: Txn<'env>,
}

impl<'env> RoTxn<'env> {
    pub(crate) fn begin(env: &'env Env) -> Result<Self> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid env; `raw` is an out-pointer.
        check(unsafe {
            ffi::mdb_txn_begin(env.as_ptr(), ptr::null_mut(), ffi::MDB_RDONLY, &mut raw)
        })?;
        Ok(RoTxn {
            txn: Txn {
                ptr: NonNull::new(raw).ok_or(Error { code: libc::ENOMEM })?,
                rdonly: true,
                _env: PhantomData,
            },
        })
    }

    /// Aborts the transaction (`mdb_txn_abort`), releasing its reader slot.
    pub fn abort(self) {
        // Drop aborts.
    }

    /// Commits the read transaction (`mdb_txn_commit`): for a read
    /// transaction this only keeps the database handles it opened alive.
    pub fn commit(self) -> Result<()> {
        let p = self.txn.as_ptr();
        std::mem::forget(self);
        // SAFETY: valid txn, consumed here (forget skips the abort in Drop).
        check(unsafe { ffi::mdb_txn_commit(p) })
    }

    /// Releases the snapshot but keeps the reader slot (`mdb_txn_reset`);
    /// [`ResetTxn::renew`] starts a new snapshot on it.
    pub fn reset(self) -> ResetTxn<'env> {
        let p = self.txn.ptr;
        std::mem::forget(self);
        // SAFETY: valid read-only txn; afterwards it may only be renewed or
        // aborted, which is all `ResetTxn` offers.
        unsafe { ffi::mdb_txn_reset(p.as_ptr()) };
        ResetTxn {
            ptr: p,
            _env: PhantomData,
        }
    }
}

impl<'env> Deref for RoTxn<'env> {
    type Target = Txn<'env>;
    fn deref(&self) -> &Txn<'env> {
        &self.txn
    }
}

impl Drop for RoTxn<'_> {
    fn drop(&mut self) {
        // SAFETY: valid txn; no cursor or slice borrows it anymore.
        unsafe { ffi::mdb_txn_abort(self.txn.as_ptr()) }
    }
}

/// A read-only transaction after `mdb_txn_reset`: holds no snapshot.
/// Aborted on drop.
pub struct ResetTxn<'env> {
    ptr: NonNull<ffi::MDB_txn>,
    _env: PhantomData<&'env Env>,
}

impl<'env> ResetTxn<'env> {
    /// Takes a new snapshot (`mdb_txn_renew`). On error the handle is aborted.
    pub fn renew(self) -> Result<RoTxn<'env>> {
        let p = self.ptr;
        std::mem::forget(self);
        // SAFETY: valid reset txn.
        let rc = unsafe { ffi::mdb_txn_renew(p.as_ptr()) };
        if rc != 0 {
            // SAFETY: still a valid handle; abort frees it.
            unsafe { ffi::mdb_txn_abort(p.as_ptr()) };
            return Err(Error { code: rc });
        }
        Ok(RoTxn {
            txn: Txn {
                ptr: p,
                rdonly: true,
                _env: PhantomData,
            },
        })
    }
}

impl Drop for ResetTxn<'_> {
    fn drop(&mut self) {
        // SAFETY: valid (reset) txn handle.
        unsafe { ffi::mdb_txn_abort(self.ptr.as_ptr()) }
    }
}

/// A read-write transaction (top-level or nested). Aborted on drop unless
/// committed. Writes take `&mut self`, so no slice read from the
/// transaction can be alive across a write.
pub struct RwTxn<'env> {
    txn: Txn<'env>,
}

impl<'env> RwTxn<'env> {
    pub(crate) fn begin(env: &'env Env, parent: *mut ffi::MDB_txn, flags: u32) -> Result<Self> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid env; parent is null or a live write txn that the
        // caller borrows mutably for the child's lifetime.
        check(unsafe { ffi::mdb_txn_begin(env.as_ptr(), parent, flags, &mut raw) })?;
        Ok(RwTxn {
            txn: Txn {
                ptr: NonNull::new(raw).ok_or(Error { code: libc::ENOMEM })?,
                rdonly: false,
                _env: PhantomData,
            },
        })
    }

    /// Begins a nested write transaction (`mdb_txn_begin` with this one as
    /// parent). The parent cannot be used until the child commits or aborts.
    pub fn begin_nested(&mut self) -> Result<RwTxn<'_>> {
        let mut raw = ptr::null_mut();
        // SAFETY: the env of a live txn; `self` is a live write txn, borrowed
        // mutably for the child's lifetime.
        let env = unsafe { ffi::mdb_txn_env(self.as_ptr()) };
        // SAFETY: as above.
        check(unsafe { ffi::mdb_txn_begin(env, self.as_ptr(), 0, &mut raw) })?;
        Ok(RwTxn {
            txn: Txn {
                ptr: NonNull::new(raw).ok_or(Error { code: libc::ENOMEM })?,
                rdonly: false,
                _env: PhantomData,
            },
        })
    }

    /// Opens (with `MDB_CREATE`: creates) a database (`mdb_dbi_open`).
    pub fn open_db(&mut self, name: Option<&str>, flags: u32) -> Result<Dbi> {
        self.txn.open_db_raw(name, flags)
    }

    /// Stores a key/value pair (`mdb_put`) with raw [`crate::flags::put`]
    /// flags (`MDB_NOOVERWRITE`, `MDB_NODUPDATA`, `MDB_APPEND`,
    /// `MDB_APPENDDUP`). Errors are C's codes, unchanged (e.g. `MDB_KEYEXIST`,
    /// `MDB_MAP_FULL`, `MDB_BAD_VALSIZE`).
    pub fn put(&mut self, dbi: Dbi, key: &[u8], val: &[u8], flags: u32) -> Result<()> {
        let mut k = val_in(key);
        let mut d = val_in(val);
        // SAFETY: valid write txn; C reads `key`/`val` through the vals and
        // does not write through them (with MDB_RESERVE it only overwrites
        // the `d` struct itself).
        check(unsafe { ffi::mdb_put(self.as_ptr(), dbi.0, &mut k, &mut d, flags) })
    }

    /// Reserves `len` bytes for the value of `key` (`mdb_put` with
    /// `MDB_RESERVE` added to `flags`) and returns that space to fill.
    /// The space is zeroed first (C leaves it unspecified).
    pub fn reserve(&mut self, dbi: Dbi, key: &[u8], len: usize, flags: u32) -> Result<&mut [u8]> {
        let mut k = val_in(key);
        let mut d = ffi::MDB_val {
            mv_size: len,
            mv_data: ptr::null_mut(),
        };
        // SAFETY: valid write txn; C sets `d.mv_data` to `len` writable bytes.
        check(unsafe {
            ffi::mdb_put(
                self.as_ptr(),
                dbi.0,
                &mut k,
                &mut d,
                flags | ffi::MDB_RESERVE,
            )
        })?;
        if len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: C reserved `len` bytes at `d.mv_data` inside a dirty page of
        // this txn; it stays valid until the next write, which `&mut self`
        // excludes while the slice lives. Zeroing makes every byte initialized.
        unsafe {
            ptr::write_bytes(d.mv_data as *mut u8, 0, len);
            Ok(std::slice::from_raw_parts_mut(d.mv_data as *mut u8, len))
        }
    }

    /// Deletes a key (all its duplicates), or with `Some(val)` one
    /// duplicate of a DUPSORT database (`mdb_del`). In a non-DUPSORT
    /// database `val` is ignored by C. A missing key is
    /// `Err(MDB_NOTFOUND)`, as in C.
    pub fn del(&mut self, dbi: Dbi, key: &[u8], val: Option<&[u8]>) -> Result<()> {
        let mut k = val_in(key);
        let mut d = val.map(val_in);
        let dp = d
            .as_mut()
            .map_or(ptr::null_mut(), |d| d as *mut ffi::MDB_val);
        // SAFETY: valid write txn; vals point at caller data, read only.
        check(unsafe { ffi::mdb_del(self.as_ptr(), dbi.0, &mut k, dp) })
    }

    /// Empties a database (`mdb_drop` with `del = 0`) or, with `delete`,
    /// deletes it from the environment and closes the handle (`del = 1`).
    pub fn drop_db(&mut self, dbi: Dbi, delete: bool) -> Result<()> {
        // SAFETY: valid write txn; C validates the dbi.
        check(unsafe { ffi::mdb_drop(self.as_ptr(), dbi.0, delete as i32) })
    }

    /// Opens a cursor that can also write (`mdb_cursor_open`).
    pub fn cursor_mut(&mut self, dbi: Dbi) -> Result<RwCursor<'_>> {
        RwCursor::open(self.as_ptr(), dbi)
    }

    /// Commits (`mdb_txn_commit`). The handle is freed even on error.
    pub fn commit(self) -> Result<()> {
        let p = self.txn.as_ptr();
        std::mem::forget(self);
        // SAFETY: valid txn, consumed here (forget skips the abort in Drop).
        check(unsafe { ffi::mdb_txn_commit(p) })
    }

    /// Aborts (`mdb_txn_abort`); the same as dropping.
    pub fn abort(self) {
        // Drop aborts.
    }
}

impl<'env> Deref for RwTxn<'env> {
    type Target = Txn<'env>;
    fn deref(&self) -> &Txn<'env> {
        &self.txn
    }
}

impl Drop for RwTxn<'_> {
    fn drop(&mut self) {
        // SAFETY: valid txn; no cursor, child or slice borrows it anymore.
        unsafe { ffi::mdb_txn_abort(self.txn.as_ptr()) }
    }
}

impl std::fmt::Debug for Txn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("id", &self.id())
            .field("rdonly", &self.rdonly)
            .finish()
    }
}

impl std::fmt::Debug for RoTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RoTxn").field(&self.txn).finish()
    }
}

impl std::fmt::Debug for RwTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RwTxn").field(&self.txn).finish()
    }
}

impl std::fmt::Debug for ResetTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetTxn").field("ptr", &self.ptr).finish()
    }
}
