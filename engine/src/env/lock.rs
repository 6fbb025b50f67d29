//! Taking part in LMDB 0.9's lock-file protocol, so that this process and
//! C LMDB processes share one live environment: the `fcntl` locks, the
//! robust process-shared pthread mutexes inside the file, and the reader
//! table. All `unsafe` of the lock file lives here.
//!
//! The layout is described in `lockfile` (the read-only parser) and in
//! `docs/format.md`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use super::lockfile::{
    len_for_readers, max_readers_for_len, LOCK_FORMAT, LOCK_MAGIC, READERS_OFFSET, READER_SIZE,
};
use crate::error::{Error, Result};

const RMUTEX_OFFSET: usize = 8;
const TXNID_OFFSET: usize = 48;
const NUMREADERS_OFFSET: usize = 56;
const WMUTEX_OFFSET: usize = 64;
/// A reader slot's txnid when it is owned but no read is running.
pub(crate) const IDLE: u64 = u64::MAX;

/// The lock file of an open environment, mapped read-write.
pub(crate) struct LockFile {
    file: File,
    map: *mut u8,
    len: usize,
    max_readers: u32,
    pid: u32,
    /// Reader slots this process owns and is not using.
    idle: Mutex<Vec<u32>>,
    /// Whether the pid lock that marks this process alive is held.
    pid_locked: Mutex<bool>,
}

// SAFETY: the mapping is shared memory accessed only through atomics and
// the process-shared pthread mutexes; the raw pointer stays valid until Drop.
unsafe impl Send for LockFile {}
// SAFETY: as above.
unsafe impl Sync for LockFile {}

/// An `fcntl` lock on one byte. Open-file-description locks conflict with
/// the classic per-process locks C LMDB takes, in other processes and in
/// this one alike, so a C environment open in this same process is seen
/// (classic locks of one process never conflict with each other).
fn flock(fd: i32, cmd: i32, kind: i32, start: u64) -> io::Result<Option<i32>> {
    // SAFETY: a zeroed `flock` is a valid value of the plain C struct.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start as libc::off_t;
    fl.l_len = 1;
    loop {
        // SAFETY: `fd` is an open descriptor and `fl` a valid `flock`.
        let rc = unsafe { libc::fcntl(fd, cmd, &mut fl) };
        if rc == 0 {
            return Ok((cmd == libc::F_OFD_GETLK).then_some(fl.l_type as i32));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// What opening found: whether this process is the only user.
pub(crate) struct Opened {
    pub(crate) lock: LockFile,
    exclusive: bool,
}

impl LockFile {
    /// Opens (creating if needed) the lock file and joins the protocol
    /// (`mdb_env_setup_locks`). The sole opener (re)initialises it and must
    /// call [`Opened::finish`] once it knows the current txnid.
    pub(crate) fn open(path: &Path, max_readers: u32) -> Result<Opened> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let fd = file.as_raw_fd();
        let exclusive = match flock(fd, libc::F_OFD_SETLK, libc::F_WRLCK, 0) {
            Ok(_) => true,
            Err(_) => {
                flock(fd, libc::F_OFD_SETLKW, libc::F_RDLCK, 0)?;
                false
            }
        };
        let mut size = file.metadata()?.len();
        let want = len_for_readers(max_readers);
        let max_readers = if exclusive && size < want {
            file.set_len(want)?;
            size = want;
            max_readers
        } else {
            max_readers_for_len(size).ok_or(Error::Invalid)?
        };
        let len = usize::try_from(size).map_err(|_| Error::Invalid)?;
        // SAFETY: a fresh shared read-write mapping of the whole file, whose
        // length was just measured (or set) and which no one shrinks.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error().into());
        }
        let lock = LockFile {
            file,
            map: map as *mut u8,
            len,
            max_readers,
            pid: std::process::id(),
            idle: Mutex::new(Vec::new()),
            pid_locked: Mutex::new(false),
        };
        if exclusive {
            lock.init()?;
        } else {
            if lock.u32_at(0).load(Ordering::Acquire) != LOCK_MAGIC {
                return Err(Error::Invalid);
            }
            if lock.u32_at(4).load(Ordering::Acquire) != LOCK_FORMAT {
                return Err(Error::VersionMismatch);
            }
        }
        Ok(Opened { lock, exclusive })
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= self.len && off % 4 == 0);
        // SAFETY: in bounds and aligned (checked above; the mapping is page
        // aligned); the memory is shared with other processes, so it is only
        // ever accessed atomically.
        unsafe { &*(self.map.add(off) as *const AtomicU32) }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= self.len && off % 8 == 0);
        // SAFETY: as for `u32_at`.
        unsafe { &*(self.map.add(off) as *const AtomicU64) }
    }

    fn mutex(&self, off: usize) -> *mut libc::pthread_mutex_t {
        assert!(off + std::mem::size_of::<libc::pthread_mutex_t>() <= self.len);
        // SAFETY: in bounds (checked above).
        unsafe { self.map.add(off) as *mut libc::pthread_mutex_t }
    }

    /// Initialises the header and both mutexes, as the sole opener does.
    fn init(&self) -> Result<()> {
        // SAFETY: this process holds the exclusive lock on byte 0, so no one
        // else is using the mutexes while they are reinitialised; the
        // attribute object lives on the stack for the duration of the calls.
        unsafe {
            std::ptr::write_bytes(
                self.map.add(RMUTEX_OFFSET),
                0,
                std::mem::size_of::<libc::pthread_mutex_t>(),
            );
            std::ptr::write_bytes(
                self.map.add(WMUTEX_OFFSET),
                0,
                std::mem::size_of::<libc::pthread_mutex_t>(),
            );
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            let mut rc = libc::pthread_mutexattr_init(&mut attr);
            if rc == 0 {
                rc = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            }
            if rc == 0 {
                rc = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            if rc == 0 {
                rc = libc::pthread_mutex_init(self.mutex(RMUTEX_OFFSET), &attr);
            }
            if rc == 0 {
                rc = libc::pthread_mutex_init(self.mutex(WMUTEX_OFFSET), &attr);
            }
            libc::pthread_mutexattr_destroy(&mut attr);
            if rc != 0 {
                return Err(Error::Io(rc));
            }
        }
        self.u32_at(0).store(LOCK_MAGIC, Ordering::Release);
        self.u32_at(4).store(LOCK_FORMAT, Ordering::Release);
        self.u64_at(TXNID_OFFSET).store(0, Ordering::Release);
        self.u32_at(NUMREADERS_OFFSET).store(0, Ordering::Release);
        Ok(())
    }

    /// The size of the reader table.
    pub(crate) fn max_readers(&self) -> u32 {
        self.max_readers
    }

    /// `mti_txnid`: the last committed transaction.
    pub(crate) fn txnid(&self) -> u64 {
        self.u64_at(TXNID_OFFSET).load(Ordering::Acquire)
    }

    /// Publishes a commit (after its meta page is written).
    pub(crate) fn set_txnid(&self, txnid: u64) {
        self.u64_at(TXNID_OFFSET).store(txnid, Ordering::Release);
    }

    /// `mti_numreaders`: slots ever used.
    pub(crate) fn num_readers(&self) -> u32 {
        self.u32_at(NUMREADERS_OFFSET)
            .load(Ordering::Acquire)
            .min(self.max_readers)
    }

    fn slot_txnid(&self, i: u32) -> &AtomicU64 {
        self.u64_at(READERS_OFFSET + i as usize * READER_SIZE)
    }
    fn slot_pid(&self, i: u32) -> &AtomicU32 {
        self.u32_at(READERS_OFFSET + i as usize * READER_SIZE + 8)
    }
    fn slot_tid(&self, i: u32) -> &AtomicU64 {
        self.u64_at(READERS_OFFSET + i as usize * READER_SIZE + 16)
    }

    /// Locks one of the file's mutexes. A mutex whose owner died is taken
    /// over as LMDB does: clear the dead readers, mark it consistent.
    fn lock_mutex(&self, off: usize) -> Result<()> {
        let m = self.mutex(off);
        // SAFETY: `m` points at a process-shared mutex initialised by the
        // sole opener (us or a C process) and mapped for our lifetime.
        let rc = unsafe { libc::pthread_mutex_lock(m) };
        match rc {
            0 => Ok(()),
            libc::EOWNERDEAD => {
                // The owner died holding it: the data it guarded is LMDB's
                // (a reader slot claim, or a write transaction that never
                // wrote its meta page), which needs no repair.
                if off == WMUTEX_OFFSET {
                    self.clear_stale(false)?;
                } else {
                    self.clear_stale(true)?;
                }
                // SAFETY: we own the mutex after EOWNERDEAD.
                let rc = unsafe { libc::pthread_mutex_consistent(m) };
                if rc != 0 {
                    self.unlock_mutex(off);
                    return Err(Error::Io(rc));
                }
                Ok(())
            }
            e => Err(Error::Io(e)),
        }
    }

    fn unlock_mutex(&self, off: usize) {
        // SAFETY: called only by the thread that locked it.
        unsafe {
            libc::pthread_mutex_unlock(self.mutex(off));
        }
    }

    /// Takes the writer mutex for the life of a write transaction.
    pub(crate) fn lock_writer(&self) -> Result<WriterLock<'_>> {
        self.lock_mutex(WMUTEX_OFFSET)?;
        Ok(WriterLock {
            lock: self,
            _not_send: core::marker::PhantomData,
        })
    }

    /// Claims a reader slot: one this process already owns, else a free
    /// one under the reader mutex.
    pub(crate) fn acquire_slot(&self) -> Result<u32> {
        if let Some(i) = self.idle.lock().map_err(|_| Error::BadTxn)?.pop() {
            return Ok(i);
        }
        {
            let mut held = self.pid_locked.lock().map_err(|_| Error::BadTxn)?;
            if !*held {
                match flock(
                    self.file.as_raw_fd(),
                    libc::F_OFD_SETLK,
                    libc::F_WRLCK,
                    self.pid as u64,
                ) {
                    Ok(_) => *held = true,
                    // Only this process has our pid: a conflicting lock on
                    // that byte is a C environment of ours marking the same
                    // liveness.
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.lock_mutex(RMUTEX_OFFSET)?;
        let n = self.num_readers();
        let free = (0..n).find(|&i| self.slot_pid(i).load(Ordering::Acquire) == 0);
        let i = match free {
            Some(i) => i,
            None if n < self.max_readers => n,
            None => {
                self.unlock_mutex(RMUTEX_OFFSET);
                return Err(Error::ReadersFull);
            }
        };
        // Reset the slot before publishing it in numreaders, then claim it.
        self.slot_pid(i).store(0, Ordering::Release);
        self.slot_txnid(i).store(IDLE, Ordering::Release);
        if i == n {
            self.u32_at(NUMREADERS_OFFSET)
                .store(n + 1, Ordering::Release);
        }
        self.slot_pid(i).store(self.pid, Ordering::Release);
        // SAFETY: pthread_self has no preconditions.
        self.slot_tid(i)
            .store(unsafe { libc::pthread_self() } as u64, Ordering::Release);
        self.unlock_mutex(RMUTEX_OFFSET);
        Ok(i)
    }

    /// Publishes the snapshot a reader uses: the last committed txnid,
    /// re-read until stable so a commit racing with us is not missed.
    pub(crate) fn pin(&self, slot: u32) -> u64 {
        loop {
            let t = self.txnid();
            self.slot_txnid(slot).store(t, Ordering::SeqCst);
            if self.txnid() == t {
                return t;
            }
        }
    }

    /// Sets a reader slot's snapshot explicitly.
    pub(crate) fn set_slot(&self, slot: u32, txnid: u64) {
        self.slot_txnid(slot).store(txnid, Ordering::SeqCst);
    }

    /// Ends a read: the slot stays ours, idle, for the next one.
    pub(crate) fn release_slot(&self, slot: u32) {
        self.slot_txnid(slot).store(IDLE, Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(slot);
        }
    }

    /// The oldest snapshot any reader of any process uses
    /// (`mdb_find_oldest`), at most `newest`.
    pub(crate) fn oldest(&self, newest: u64) -> u64 {
        (0..self.num_readers())
            .filter(|&i| self.slot_pid(i).load(Ordering::Acquire) != 0)
            .map(|i| self.slot_txnid(i).load(Ordering::Acquire))
            .fold(newest, u64::min)
    }

    /// Whether process `pid` holds its liveness lock.
    fn alive(&self, pid: u32) -> bool {
        match flock(
            self.file.as_raw_fd(),
            libc::F_OFD_GETLK,
            libc::F_WRLCK,
            pid as u64,
        ) {
            Ok(Some(kind)) => kind != libc::F_UNLCK,
            // Cannot tell: assume alive, as freeing a live reader's slot
            // would let its pages be reused under it.
            _ => true,
        }
    }

    /// Frees the slots of dead processes (`mdb_reader_check`). Returns how
    /// many were freed.
    pub(crate) fn reader_check(&self) -> Result<usize> {
        self.clear_stale(false)
    }

    fn clear_stale(&self, rmutex_held: bool) -> Result<usize> {
        let mut cleared = 0;
        let mut checked: Vec<u32> = Vec::new();
        for i in 0..self.num_readers() {
            let pid = self.slot_pid(i).load(Ordering::Acquire);
            if pid == 0 || pid == self.pid || checked.contains(&pid) {
                continue;
            }
            checked.push(pid);
            if self.alive(pid) {
                continue;
            }
            if !rmutex_held {
                self.lock_mutex(RMUTEX_OFFSET)?;
            }
            // Re-check under the mutex: a new process may have taken the pid.
            if rmutex_held || !self.alive(pid) {
                for j in i..self.num_readers() {
                    if self.slot_pid(j).load(Ordering::Acquire) == pid {
                        self.slot_pid(j).store(0, Ordering::Release);
                        cleared += 1;
                    }
                }
            }
            if !rmutex_held {
                self.unlock_mutex(RMUTEX_OFFSET);
            }
        }
        Ok(cleared)
    }
}

impl Opened {
    /// Completes opening: the sole opener publishes the current txnid and
    /// lets others in by downgrading its lock (`mdb_env_share_locks`).
    pub(crate) fn finish(self, txnid: u64) -> Result<LockFile> {
        if self.exclusive {
            self.lock.set_txnid(txnid);
            flock(
                self.lock.file.as_raw_fd(),
                libc::F_OFD_SETLK,
                libc::F_RDLCK,
                0,
            )?;
        }
        Ok(self.lock)
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Give back the slots this process owns, then unmap; closing the
        // file releases our fcntl locks.
        if let Ok(idle) = self.idle.lock() {
            for &i in idle.iter() {
                self.slot_pid(i).store(0, Ordering::Release);
            }
        }
        // SAFETY: `map`/`len` are what mmap returned; nothing borrows the
        // mapping beyond `self`.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.len);
        }
    }
}

/// The writer mutex, held while a write transaction lives.
pub(crate) struct WriterLock<'a> {
    lock: &'a LockFile,
    /// A pthread mutex must be unlocked by the thread that locked it.
    _not_send: core::marker::PhantomData<*const ()>,
}

impl Drop for WriterLock<'_> {
    fn drop(&mut self) {
        self.lock.unlock_mutex(WMUTEX_OFFSET);
    }
}
