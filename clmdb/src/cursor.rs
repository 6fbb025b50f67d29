//! Cursors (`MDB_cursor`) and cursor operations (`MDB_cursor_op`).

use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use crate::error::{check, Error, Result};
use crate::ffi;
use crate::txn::{val_in, val_out, Dbi};

/// The cursor operations of `mdb_cursor_get`; the discriminants are C's
/// `MDB_cursor_op` values. See the crate README for what C sets for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum CursorOp {
    /// `MDB_FIRST` (0): first key; first duplicate of it.
    First = ffi::MDB_FIRST,
    /// `MDB_FIRST_DUP` (1): first duplicate of the current key.
    FirstDup = ffi::MDB_FIRST_DUP,
    /// `MDB_GET_BOTH` (2): position at exactly this key and value.
    GetBoth = ffi::MDB_GET_BOTH,
    /// `MDB_GET_BOTH_RANGE` (3): this key, first duplicate >= value.
    GetBothRange = ffi::MDB_GET_BOTH_RANGE,
    /// `MDB_GET_CURRENT` (4): the current key/value.
    GetCurrent = ffi::MDB_GET_CURRENT,
    /// `MDB_GET_MULTIPLE` (5): DUPFIXED: the current dup page's values.
    GetMultiple = ffi::MDB_GET_MULTIPLE,
    /// `MDB_LAST` (6): last key; last duplicate of it.
    Last = ffi::MDB_LAST,
    /// `MDB_LAST_DUP` (7): last duplicate of the current key.
    LastDup = ffi::MDB_LAST_DUP,
    /// `MDB_NEXT` (8): next item (next duplicate, or next key).
    Next = ffi::MDB_NEXT,
    /// `MDB_NEXT_DUP` (9): next duplicate of the current key.
    NextDup = ffi::MDB_NEXT_DUP,
    /// `MDB_NEXT_MULTIPLE` (10): DUPFIXED: next page of duplicates.
    NextMultiple = ffi::MDB_NEXT_MULTIPLE,
    /// `MDB_NEXT_NODUP` (11): first duplicate of the next key.
    NextNodup = ffi::MDB_NEXT_NODUP,
    /// `MDB_PREV` (12): previous item.
    Prev = ffi::MDB_PREV,
    /// `MDB_PREV_DUP` (13): previous duplicate of the current key.
    PrevDup = ffi::MDB_PREV_DUP,
    /// `MDB_PREV_NODUP` (14): last duplicate of the previous key.
    PrevNodup = ffi::MDB_PREV_NODUP,
    /// `MDB_SET` (15): position at exactly this key (key not returned by C).
    Set = ffi::MDB_SET,
    /// `MDB_SET_KEY` (16): position at exactly this key, return key and value.
    SetKey = ffi::MDB_SET_KEY,
    /// `MDB_SET_RANGE` (17): position at the first key >= this key.
    SetRange = ffi::MDB_SET_RANGE,
    /// `MDB_PREV_MULTIPLE` (18): DUPFIXED: previous page of duplicates.
    PrevMultiple = ffi::MDB_PREV_MULTIPLE,
}

impl CursorOp {
    /// Every operation, in C's numeric order.
    pub const ALL: [CursorOp; 19] = [
        CursorOp::First,
        CursorOp::FirstDup,
        CursorOp::GetBoth,
        CursorOp::GetBothRange,
        CursorOp::GetCurrent,
        CursorOp::GetMultiple,
        CursorOp::Last,
        CursorOp::LastDup,
        CursorOp::Next,
        CursorOp::NextDup,
        CursorOp::NextMultiple,
        CursorOp::NextNodup,
        CursorOp::Prev,
        CursorOp::PrevDup,
        CursorOp::PrevNodup,
        CursorOp::Set,
        CursorOp::SetKey,
        CursorOp::SetRange,
        CursorOp::PrevMultiple,
    ];

    /// The raw `MDB_cursor_op` value.
    pub fn raw(self) -> ffi::MDB_cursor_op {
        self as ffi::MDB_cursor_op
    }

    /// The operation with this raw value, if any.
    pub fn from_raw(op: ffi::MDB_cursor_op) -> Option<CursorOp> {
        CursorOp::ALL.get(op as usize).copied()
    }

    /// C's name, e.g. `"MDB_GET_BOTH_RANGE"`.
    pub fn name(self) -> &'static str {
        match self {
            CursorOp::First => "MDB_FIRST",
            CursorOp::FirstDup => "MDB_FIRST_DUP",
            CursorOp::GetBoth => "MDB_GET_BOTH",
            CursorOp::GetBothRange => "MDB_GET_BOTH_RANGE",
            CursorOp::GetCurrent => "MDB_GET_CURRENT",
            CursorOp::GetMultiple => "MDB_GET_MULTIPLE",
            CursorOp::Last => "MDB_LAST",
            CursorOp::LastDup => "MDB_LAST_DUP",
            CursorOp::Next => "MDB_NEXT",
            CursorOp::NextDup => "MDB_NEXT_DUP",
            CursorOp::NextMultiple => "MDB_NEXT_MULTIPLE",
            CursorOp::NextNodup => "MDB_NEXT_NODUP",
            CursorOp::Prev => "MDB_PREV",
            CursorOp::PrevDup => "MDB_PREV_DUP",
            CursorOp::PrevNodup => "MDB_PREV_NODUP",
            CursorOp::Set => "MDB_SET",
            CursorOp::SetKey => "MDB_SET_KEY",
            CursorOp::SetRange => "MDB_SET_RANGE",
            CursorOp::PrevMultiple => "MDB_PREV_MULTIPLE",
        }
    }

    /// Does the operation read the key argument (`SET`, `SET_KEY`,
    /// `SET_RANGE`, `GET_BOTH`, `GET_BOTH_RANGE`)?
    pub fn takes_key(self) -> bool {
        matches!(
            self,
            CursorOp::Set
                | CursorOp::SetKey
                | CursorOp::SetRange
                | CursorOp::GetBoth
                | CursorOp::GetBothRange
        )
    }

    /// Does the operation read the value argument (`GET_BOTH`,
    /// `GET_BOTH_RANGE`)?
    pub fn takes_val(self) -> bool {
        matches!(self, CursorOp::GetBoth | CursorOp::GetBothRange)
    }
}

/// What a successful `mdb_cursor_get` left in its key and data arguments.
///
/// `None` means C did not write that `MDB_val` (it still holds what was
/// passed in: the caller's key for `SET`, nothing for `GET_MULTIPLE` on an
/// uninitialized dup cursor, ...). `Some` is what C wrote, borrowed from
/// the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorItem<'a> {
    /// The key C returned, if it wrote one.
    pub key: Option<&'a [u8]>,
    /// The value C returned, if it wrote one.
    pub val: Option<&'a [u8]>,
}

/// A private copy of an input key or value, so that after the call a
/// pointer into it can only mean "C left this `MDB_val` unchanged".
/// Keys (at most 511 bytes) stay on the stack: no allocation per call.
#[allow(clippy::large_enum_variant)]
enum InBuf {
    None,
    Stack([u8; 512], usize),
    Heap(Vec<u8>),
}

impl InBuf {
    fn new(data: Option<&[u8]>) -> InBuf {
        match data {
            None => InBuf::None,
            Some(d) if d.len() <= 512 => {
                let mut b = [0u8; 512];
                b[..d.len()].copy_from_slice(d);
                InBuf::Stack(b, d.len())
            }
            Some(d) => InBuf::Heap(d.to_vec()),
        }
    }

    fn val(&self) -> ffi::MDB_val {
        match self {
            InBuf::None => ffi::MDB_val {
                mv_size: 0,
                mv_data: ptr::null_mut(),
            },
            InBuf::Stack(b, n) => val_in(&b[..*n]),
            InBuf::Heap(v) => val_in(v),
        }
    }
}

/// Shared body of all cursor reads.
///
/// # Safety
/// `c` must be a live cursor; the returned slices are only valid while the
/// cursor's transaction is alive and has not written since.
unsafe fn raw_get<'a>(
    c: *mut ffi::MDB_cursor,
    op: CursorOp,
    key: Option<&[u8]>,
    val: Option<&[u8]>,
) -> Result<Option<CursorItem<'a>>> {
    let kbuf = InBuf::new(key);
    let vbuf = InBuf::new(val);
    let (k0, d0) = (kbuf.val(), vbuf.val());
    let (mut k, mut d) = (k0, d0);
    // SAFETY: live cursor (caller); `k`/`d` point at our private buffers,
    // which C only reads, or are null/0 for ops that take no input.
    let rc = unsafe { ffi::mdb_cursor_get(c, &mut k, &mut d, op.raw()) };
    match rc {
        0 => {
            // C wrote a val iff its pointer changed: C's pointers go into the
            // map or into txn-owned pages, never into our private buffers.
            let key = (k.mv_data != k0.mv_data || k.mv_size != k0.mv_size)
                // SAFETY: C set it to txn-owned memory (caller's guarantee).
                .then(|| unsafe { val_out(&k) });
            let val = (d.mv_data != d0.mv_data || d.mv_size != d0.mv_size)
                // SAFETY: as above.
                .then(|| unsafe { val_out(&d) });
            Ok(Some(CursorItem { key, val }))
        }
        ffi::MDB_NOTFOUND => Ok(None),
        code => Err(Error { code }),
    }
}

fn open_raw(txn: *mut ffi::MDB_txn, dbi: Dbi) -> Result<NonNull<ffi::MDB_cursor>> {
    let mut c = ptr::null_mut();
    // SAFETY: `txn` is a live txn borrowed by the caller; `c` is an out-pointer.
    check(unsafe { ffi::mdb_cursor_open(txn, dbi.0, &mut c) })?;
    NonNull::new(c).ok_or(Error { code: libc::ENOMEM })
}

fn count_raw(c: *mut ffi::MDB_cursor) -> Result<usize> {
    let mut n = 0usize;
    // SAFETY: live cursor and out-pointer.
    check(unsafe { ffi::mdb_cursor_count(c, &mut n) })?;
    Ok(n)
}

/// A read cursor. Returned slices borrow the transaction (`'txn`), not the
/// cursor, so they outlive it. Closed (`mdb_cursor_close`) on drop.
pub struct Cursor<'txn> {
    ptr: NonNull<ffi::MDB_cursor>,
    _txn: PhantomData<&'txn ()>,
}

impl<'txn> Cursor<'txn> {
    pub(crate) fn open(txn: *mut ffi::MDB_txn, dbi: Dbi) -> Result<Self> {
        Ok(Cursor {
            ptr: open_raw(txn, dbi)?,
            _txn: PhantomData,
        })
    }

    /// The raw handle.
    pub fn as_ptr(&self) -> *mut ffi::MDB_cursor {
        self.ptr.as_ptr()
    }

    /// The database of the cursor (`mdb_cursor_dbi`).
    pub fn dbi(&self) -> Dbi {
        // SAFETY: live cursor.
        Dbi(unsafe { ffi::mdb_cursor_dbi(self.as_ptr()) })
    }

    /// `mdb_cursor_get`, reporting exactly which of key and value C wrote.
    /// `MDB_NOTFOUND` is `Ok(None)`; any other non-zero code is `Err`.
    ///
    /// `key`/`val` are the inputs of `SET*`/`GET_BOTH*`; C gets a non-null
    /// `MDB_val` for both arguments on every call (holding the input, or
    /// empty), as a C caller normally passes them.
    pub fn get_raw(
        &self,
        op: CursorOp,
        key: Option<&[u8]>,
        val: Option<&[u8]>,
    ) -> Result<Option<CursorItem<'txn>>> {
        // SAFETY: live cursor; 'txn borrows the transaction, which for a
        // write txn is a shared borrow that excludes writes.
        unsafe { raw_get(self.as_ptr(), op, key, val) }
    }

    /// `mdb_cursor_get` returning `(key, value)`. An `MDB_val` that C did
    /// not write comes back as an empty slice (keys are never empty in
    /// LMDB, so an empty key always means "not returned"; use
    /// [`Cursor::get_raw`] to tell an unwritten value from an empty one).
    /// `MDB_NOTFOUND` is `Ok(None)`.
    pub fn get(
        &self,
        op: CursorOp,
        key: Option<&[u8]>,
        val: Option<&[u8]>,
    ) -> Result<Option<(&'txn [u8], &'txn [u8])>> {
        Ok(self
            .get_raw(op, key, val)?
            .map(|it| (it.key.unwrap_or(&[]), it.val.unwrap_or(&[]))))
    }

    /// Number of duplicates of the current key (`mdb_cursor_count`); C
    /// returns `MDB_INCOMPATIBLE` on a non-DUPSORT DB and `EINVAL` on an
    /// unpositioned cursor.
    pub fn count(&self) -> Result<usize> {
        count_raw(self.as_ptr())
    }
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        // SAFETY: live cursor whose txn is still alive ('txn borrow).
        unsafe { ffi::mdb_cursor_close(self.as_ptr()) }
    }
}

/// A cursor of a read-write transaction that can also write. Reads return
/// slices borrowing the cursor, so none is alive across a write.
pub struct RwCursor<'txn> {
    inner: Cursor<'txn>,
}

impl<'txn> RwCursor<'txn> {
    pub(crate) fn open(txn: *mut ffi::MDB_txn, dbi: Dbi) -> Result<Self> {
        Ok(RwCursor {
            inner: Cursor::open(txn, dbi)?,
        })
    }

    /// The raw handle.
    pub fn as_ptr(&self) -> *mut ffi::MDB_cursor {
        self.inner.as_ptr()
    }

    /// The database of the cursor (`mdb_cursor_dbi`).
    pub fn dbi(&self) -> Dbi {
        self.inner.dbi()
    }

    /// As [`Cursor::get_raw`], borrowing the cursor.
    pub fn get_raw(
        &self,
        op: CursorOp,
        key: Option<&[u8]>,
        val: Option<&[u8]>,
    ) -> Result<Option<CursorItem<'_>>> {
        self.inner.get_raw(op, key, val)
    }

    /// As [`Cursor::get`], borrowing the cursor.
    pub fn get(
        &self,
        op: CursorOp,
        key: Option<&[u8]>,
        val: Option<&[u8]>,
    ) -> Result<Option<(&[u8], &[u8])>> {
        self.inner.get(op, key, val)
    }

    /// `mdb_cursor_count`.
    pub fn count(&self) -> Result<usize> {
        self.inner.count()
    }

    /// `mdb_cursor_put` with raw flags (`MDB_CURRENT`, `MDB_NODUPDATA`,
    /// `MDB_NOOVERWRITE`, `MDB_APPEND`, `MDB_APPENDDUP`). The cursor is left
    /// on the written item.
    pub fn put(&mut self, key: &[u8], val: &[u8], flags: u32) -> Result<()> {
        let mut k = val_in(key);
        let mut d = val_in(val);
        // SAFETY: live cursor of a write txn borrowed mutably; C only reads
        // through the vals (without MDB_RESERVE/MDB_MULTIPLE).
        check(unsafe {
            ffi::mdb_cursor_put(
                self.as_ptr(),
                &mut k,
                &mut d,
                flags & !(ffi::MDB_RESERVE | ffi::MDB_MULTIPLE),
            )
        })
    }

    /// `mdb_cursor_put` with `MDB_RESERVE` added to `flags`: returns the
    /// zeroed space of `len` bytes for the value to be written into.
    pub fn reserve(&mut self, key: &[u8], len: usize, flags: u32) -> Result<&mut [u8]> {
        let mut k = val_in(key);
        let mut d = ffi::MDB_val {
            mv_size: len,
            mv_data: ptr::null_mut(),
        };
        // SAFETY: live cursor of a write txn; C points `d` at `len` bytes.
        check(unsafe {
            ffi::mdb_cursor_put(
                self.as_ptr(),
                &mut k,
                &mut d,
                (flags & !ffi::MDB_MULTIPLE) | ffi::MDB_RESERVE,
            )
        })?;
        if len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: C reserved `len` writable bytes in a dirty page of the txn,
        // valid until the next write, which `&mut self` excludes meanwhile.
        unsafe {
            ptr::write_bytes(d.mv_data as *mut u8, 0, len);
            Ok(std::slice::from_raw_parts_mut(d.mv_data as *mut u8, len))
        }
    }

    /// `mdb_cursor_put` with `MDB_MULTIPLE` (DUPFIXED only): stores the
    /// `data.len() / elem_size` contiguous values of `data` as duplicates of
    /// `key`; returns the count C reports back in `data[1].mv_size` (all of
    /// them on success; C stops at the first failing value and returns its
    /// error). `data.len()` must be a non-zero multiple of `elem_size`:
    /// otherwise this returns `EINVAL` without calling C.
    pub fn put_multiple(
        &mut self,
        key: &[u8],
        data: &[u8],
        elem_size: usize,
        flags: u32,
    ) -> Result<usize> {
        if elem_size == 0 || data.len() % elem_size != 0 {
            return Err(Error { code: libc::EINVAL });
        }
        let mut k = val_in(key);
        let mut d = [
            ffi::MDB_val {
                mv_size: elem_size,
                mv_data: data.as_ptr() as *mut libc::c_void,
            },
            ffi::MDB_val {
                mv_size: data.len() / elem_size,
                mv_data: ptr::null_mut(),
            },
        ];
        // SAFETY: live cursor of a write txn; MDB_MULTIPLE makes C read an
        // array of two MDB_vals, which `d` is; C only reads `data`.
        check(unsafe {
            ffi::mdb_cursor_put(
                self.as_ptr(),
                &mut k,
                d.as_mut_ptr(),
                flags | ffi::MDB_MULTIPLE,
            )
        })?;
        Ok(d[1].mv_size)
    }

    /// `mdb_cursor_del`: deletes the current item, or with `MDB_NODUPDATA`
    /// all duplicates of the current key.
    pub fn del(&mut self, flags: u32) -> Result<()> {
        // SAFETY: live cursor of a write txn borrowed mutably.
        check(unsafe { ffi::mdb_cursor_del(self.as_ptr(), flags) })
    }
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor").field("dbi", &self.dbi()).finish()
    }
}

impl std::fmt::Debug for RwCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwCursor")
            .field("dbi", &self.dbi())
            .finish()
    }
}
