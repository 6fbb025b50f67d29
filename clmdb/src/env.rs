//! Environments: `MDB_env`.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};

use crate::error::{check, Error, Result};
use crate::ffi;
use crate::txn::{RoTxn, RwTxn, Stat};

/// Builder for an [`Env`]: collects the settings C requires before
/// `mdb_env_open` (`mdb_env_set_mapsize`, `mdb_env_set_maxdbs`,
/// `mdb_env_set_maxreaders`) and the open flags and file mode.
///
/// Unset values keep C's defaults (map size 1 MiB, no named databases,
/// 126 readers).
#[derive(Clone, Debug)]
pub struct EnvBuilder {
    flags: u32,
    map_size: Option<usize>,
    max_dbs: Option<u32>,
    max_readers: Option<u32>,
    mode: u32,
}

impl Default for EnvBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvBuilder {
    /// A builder with no flags, C's default sizes, and file mode `0o644`.
    pub fn new() -> Self {
        EnvBuilder {
            flags: 0,
            map_size: None,
            max_dbs: None,
            max_readers: None,
            mode: 0o644,
        }
    }

    /// Sets the raw `mdb_env_open` flags (see [`crate::flags::env`]),
    /// replacing any set before.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the map size in bytes (`mdb_env_set_mapsize`).
    pub fn map_size(mut self, size: usize) -> Self {
        self.map_size = Some(size);
        self
    }

    /// Sets the maximum number of named databases (`mdb_env_set_maxdbs`).
    pub fn max_dbs(mut self, n: u32) -> Self {
        self.max_dbs = Some(n);
        self
    }

    /// Sets the size of the reader table (`mdb_env_set_maxreaders`).
    pub fn max_readers(mut self, n: u32) -> Self {
        self.max_readers = Some(n);
        self
    }

    /// Sets the Unix mode of the files C creates.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Creates the `MDB_env`, applies the settings and calls `mdb_env_open`.
    ///
    /// `path` is a directory (holding `data.mdb` and `lock.mdb`) unless
    /// `MDB_NOSUBDIR` is set, in which case it is the data file itself and
    /// the lock file is `path` + `-lock`. The directory must exist.
    pub fn open(&self, path: &Path) -> Result<Env> {
        let cpath = path_to_cstring(path)?;
        let mut raw: *mut ffi::MDB_env = ptr::null_mut();
        // SAFETY: mdb_env_create writes a fresh handle into `raw`.
        check(unsafe { ffi::mdb_env_create(&mut raw) })?;
        let env = Env {
            // mdb_env_create never returns success with a null handle.
            ptr: NonNull::new(raw).ok_or(Error { code: libc::ENOMEM })?,
        };
        // From here `env` closes the handle on drop, also on error.
        if let Some(size) = self.map_size {
            // SAFETY: valid handle, not yet opened.
            check(unsafe { ffi::mdb_env_set_mapsize(env.as_ptr(), size) })?;
        }
        if let Some(n) = self.max_dbs {
            // SAFETY: valid handle, not yet opened.
            check(unsafe { ffi::mdb_env_set_maxdbs(env.as_ptr(), n) })?;
        }
        if let Some(n) = self.max_readers {
            // SAFETY: valid handle, not yet opened.
            check(unsafe { ffi::mdb_env_set_maxreaders(env.as_ptr(), n) })?;
        }
        // SAFETY: valid handle; `cpath` is NUL-terminated and outlives the call.
        check(unsafe {
            ffi::mdb_env_open(
                env.as_ptr(),
                cpath.as_ptr(),
                self.flags,
                self.mode as ffi::mdb_mode_t,
            )
        })?;
        Ok(env)
    }
}

pub(crate) fn path_to_cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error { code: libc::EINVAL })
}

/// Information about an environment (`MDB_envinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvInfo {
    /// Address of the map if `MDB_FIXEDMAP` was used (else 0).
    pub map_addr: usize,
    /// Size of the data memory map.
    pub map_size: usize,
    /// Number of the last used page.
    pub last_pgno: usize,
    /// ID of the last committed transaction.
    pub last_txnid: usize,
    /// Number of reader slots in the lock file.
    pub max_readers: u32,
    /// Number of reader slots used so far (high-water mark).
    pub num_readers: u32,
}

/// An open C LMDB environment (`MDB_env`). Closed with `mdb_env_close` on drop.
///
/// LMDB environment handles may be shared between threads, so `Env` is
/// `Send + Sync`; transactions borrow it and cannot outlive it.
pub struct Env {
    ptr: NonNull<ffi::MDB_env>,
}

// SAFETY: an MDB_env may be used from any thread concurrently (LMDB's
// documented threading model); every function we call on `&Env` is one of
// the thread-safe ones, and `set_mapsize` takes `&mut self`.
unsafe impl Send for Env {}
// SAFETY: see above.
unsafe impl Sync for Env {}

impl Env {
    /// Shorthand for `EnvBuilder::new()`.
    pub fn builder() -> EnvBuilder {
        EnvBuilder::new()
    }

    /// The raw handle, for calls this wrapper does not cover.
    pub fn as_ptr(&self) -> *mut ffi::MDB_env {
        self.ptr.as_ptr()
    }

    /// Begins a read-only transaction (`mdb_txn_begin` with `MDB_RDONLY`).
    pub fn begin_ro(&self) -> Result<RoTxn<'_>> {
        RoTxn::begin(self)
    }

    /// Begins a read-write transaction (`mdb_txn_begin`, no parent).
    /// Blocks while another write transaction is active (in any process).
    pub fn begin_rw(&self) -> Result<RwTxn<'_>> {
        RwTxn::begin(self, ptr::null_mut(), 0)
    }

    /// Begins a read-write transaction with raw `mdb_txn_begin` flags
    /// (`MDB_NOSYNC`, `MDB_NOMETASYNC`).
    pub fn begin_rw_with_flags(&self, flags: u32) -> Result<RwTxn<'_>> {
        RwTxn::begin(self, ptr::null_mut(), flags)
    }

    /// Statistics of the main database (`mdb_env_stat`).
    pub fn stat(&self) -> Result<Stat> {
        let mut st = std::mem::MaybeUninit::<ffi::MDB_stat>::uninit();
        // SAFETY: valid handle; C fills the whole struct on success.
        check(unsafe { ffi::mdb_env_stat(self.as_ptr(), st.as_mut_ptr()) })?;
        // SAFETY: initialized by the successful call above.
        Ok(Stat::from(unsafe { st.assume_init() }))
    }

    /// Environment information (`mdb_env_info`).
    pub fn info(&self) -> Result<EnvInfo> {
        let mut info = std::mem::MaybeUninit::<ffi::MDB_envinfo>::uninit();
        // SAFETY: valid handle; C fills the whole struct on success.
        check(unsafe { ffi::mdb_env_info(self.as_ptr(), info.as_mut_ptr()) })?;
        // SAFETY: initialized by the successful call above.
        let i = unsafe { info.assume_init() };
        Ok(EnvInfo {
            map_addr: i.me_mapaddr as usize,
            map_size: i.me_mapsize,
            last_pgno: i.me_last_pgno,
            last_txnid: i.me_last_txnid,
            max_readers: i.me_maxreaders,
            num_readers: i.me_numreaders,
        })
    }

    /// Flushes buffers to disk (`mdb_env_sync`); `force` syncs even with
    /// `MDB_NOSYNC`/`MDB_MAPASYNC`.
    pub fn sync(&self, force: bool) -> Result<()> {
        // SAFETY: valid handle.
        check(unsafe { ffi::mdb_env_sync(self.as_ptr(), force as i32) })
    }

    /// Clears stale reader slots of dead processes (`mdb_reader_check`);
    /// returns how many were cleared.
    pub fn reader_check(&self) -> Result<i32> {
        let mut dead = 0;
        // SAFETY: valid handle, `dead` is a valid out-pointer.
        check(unsafe { ffi::mdb_reader_check(self.as_ptr(), &mut dead) })?;
        Ok(dead)
    }

    /// The reader table as `mdb_reader_list` prints it (one line per slot in
    /// use, after a header line).
    pub fn reader_list(&self) -> Result<String> {
        unsafe extern "C" fn collect(msg: *const libc::c_char, ctx: *mut libc::c_void) -> i32 {
            // SAFETY: `ctx` is the `&mut String` passed below, alive for the
            // whole mdb_reader_list call; `msg` is a NUL-terminated string.
            unsafe {
                let out = &mut *(ctx as *mut String);
                out.push_str(&CStr::from_ptr(msg).to_string_lossy());
            }
            0
        }
        let mut out = String::new();
        // SAFETY: valid handle; the callback only touches `out` through ctx.
        let rc = unsafe {
            ffi::mdb_reader_list(
                self.as_ptr(),
                Some(collect),
                &mut out as *mut String as *mut libc::c_void,
            )
        };
        if rc < 0 {
            return Err(Error { code: rc });
        }
        Ok(out)
    }

    /// Sets the map size (`mdb_env_set_mapsize`) of an open environment.
    /// C requires that no transaction of this process is active, which
    /// `&mut self` guarantees. A size of 0 adopts the size another process set.
    pub fn set_mapsize(&mut self, size: usize) -> Result<()> {
        // SAFETY: valid handle; no transaction borrows the env.
        check(unsafe { ffi::mdb_env_set_mapsize(self.as_ptr(), size) })
    }

    /// Copies the environment to `path` (`mdb_env_copy2`), a directory that
    /// must exist and be empty (or a file path under `MDB_NOSUBDIR`);
    /// `compact` sets `MDB_CP_COMPACT` (omit free pages, renumber).
    pub fn copy(&self, path: &Path, compact: bool) -> Result<()> {
        let cpath = path_to_cstring(path)?;
        let flags = if compact { ffi::MDB_CP_COMPACT } else { 0 };
        // SAFETY: valid handle; `cpath` is NUL-terminated and outlives the call.
        check(unsafe { ffi::mdb_env_copy2(self.as_ptr(), cpath.as_ptr(), flags) })
    }

    /// The maximum key size (`mdb_env_get_maxkeysize`): 511 for 0.9.24.
    pub fn max_key_size(&self) -> usize {
        // SAFETY: valid handle.
        unsafe { ffi::mdb_env_get_maxkeysize(self.as_ptr()) as usize }
    }

    /// The environment flags (`mdb_env_get_flags`).
    pub fn flags(&self) -> Result<u32> {
        let mut f = 0;
        // SAFETY: valid handle and out-pointer.
        check(unsafe { ffi::mdb_env_get_flags(self.as_ptr(), &mut f) })?;
        Ok(f)
    }

    /// Sets (`on = true`) or clears flags that may change after open
    /// (`MDB_NOSYNC`, `MDB_NOMETASYNC`, `MDB_MAPASYNC`, `MDB_NOMEMINIT`);
    /// `mdb_env_set_flags`.
    pub fn set_flags(&self, flags: u32, on: bool) -> Result<()> {
        // SAFETY: valid handle.
        check(unsafe { ffi::mdb_env_set_flags(self.as_ptr(), flags, on as i32) })
    }

    /// The path given at open (`mdb_env_get_path`).
    pub fn path(&self) -> Result<PathBuf> {
        let mut p: *const libc::c_char = ptr::null();
        // SAFETY: valid handle and out-pointer.
        check(unsafe { ffi::mdb_env_get_path(self.as_ptr(), &mut p) })?;
        // SAFETY: C returns its own NUL-terminated copy of the path, alive
        // as long as the env; we copy it at once.
        let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }

    /// The maximum number of reader slots (`mdb_env_get_maxreaders`).
    pub fn max_readers(&self) -> Result<u32> {
        let mut n = 0;
        // SAFETY: valid handle and out-pointer.
        check(unsafe { ffi::mdb_env_get_maxreaders(self.as_ptr(), &mut n) })?;
        Ok(n)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // SAFETY: the handle is valid and no transaction borrows it anymore.
        unsafe { ffi::mdb_env_close(self.as_ptr()) }
    }
}

/// The version of the linked C library (`mdb_version`): `(major, minor,
/// patch, version string)`, e.g. `(0, 9, 24, "LMDB 0.9.24: (July 24, 2019)")`.
pub fn version() -> (i32, i32, i32, String) {
    let (mut a, mut b, mut c) = (0, 0, 0);
    // SAFETY: valid out-pointers; returns a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ffi::mdb_version(&mut a, &mut b, &mut c)) };
    (a, b, c, s.to_string_lossy().into_owned())
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("ptr", &self.ptr).finish()
    }
}
