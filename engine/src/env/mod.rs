//! The environment: files, the memory map, and read transactions over it.

mod commit_map;
mod copy;
mod fileio;
mod lock;
pub mod lockfile;
mod mmap;
mod rwcursor;
mod write;

pub use copy::CopyFlags;
pub use rwcursor::RwCursor;
pub use write::{Nested, RwTxn, WriteState};

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::btree::{Cursor, PageSource};
use crate::error::{Error, Result};
use crate::format::{DbFlags, DbRecord, Meta, META_SIZE, PAGE_HEADER_SIZE};
use crate::snapshot::{Snapshot, Stat};

pub use mmap::MapSource;
use mmap::Mmap;

/// Environment flags (`mdb_env_open` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EnvFlags(pub u32);

impl EnvFlags {
    /// Use a fixed address for the map.
    pub const FIXEDMAP: EnvFlags = EnvFlags(0x01);
    /// The path is the data file itself; the lock file is `path` + `-lock`.
    pub const NOSUBDIR: EnvFlags = EnvFlags(0x4000);
    /// Don't fsync after commit.
    pub const NOSYNC: EnvFlags = EnvFlags(0x10000);
    /// Open read-only.
    pub const RDONLY: EnvFlags = EnvFlags(0x20000);
    /// Don't fsync the meta page after commit.
    pub const NOMETASYNC: EnvFlags = EnvFlags(0x40000);
    /// Use a writable map: the data file is extended to the map size and
    /// write transactions write their pages in place in the map, flushed
    /// with `msync` at commit, instead of into buffers written out with
    /// `pwrite`. Faster for databases that fit in memory; as in LMDB, a
    /// write to a page not in memory first reads it in.
    pub const WRITEMAP: EnvFlags = EnvFlags(0x80000);
    /// Flush the writable map asynchronously.
    pub const MAPASYNC: EnvFlags = EnvFlags(0x100000);
    /// Reader slots belong to transactions, not threads. Always so here:
    /// every read transaction takes a slot of its own and frees it when it
    /// ends, so the flag changes nothing but is accepted and recorded.
    pub const NOTLS: EnvFlags = EnvFlags(0x200000);
    /// Take no locks.
    pub const NOLOCK: EnvFlags = EnvFlags(0x400000);
    /// Don't read ahead: faults on the map read only the page touched
    /// (`madvise(MADV_RANDOM)`), for databases larger than memory.
    pub const NORDAHEAD: EnvFlags = EnvFlags(0x800000);
    /// Don't zero malloc'd pages before writing them. Changes nothing
    /// here, though accepted and recorded: the unused bytes of a page
    /// written out hold zeros or bytes of earlier pages of the same
    /// environment (reused buffers), never other memory of the process,
    /// which is what LMDB zeroes against.
    pub const NOMEMINIT: EnvFlags = EnvFlags(0x1000000);

    /// No flags.
    pub const fn empty() -> EnvFlags {
        EnvFlags(0)
    }
    /// Whether every flag of `o` is set.
    pub const fn contains(self, o: EnvFlags) -> bool {
        self.0 & o.0 == o.0
    }
}

impl core::ops::BitOr for EnvFlags {
    type Output = EnvFlags;
    fn bitor(self, o: EnvFlags) -> EnvFlags {
        EnvFlags(self.0 | o.0)
    }
}

/// Information about the environment (`MDB_envinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvInfo {
    /// Address of the map, if fixed (0 otherwise, as `mdb_stat` prints it).
    pub map_addr: u64,
    /// Size of the map.
    pub map_size: u64,
    /// The last page used.
    pub last_pgno: u64,
    /// The last committed transaction.
    pub last_txnid: u64,
    /// Size of the reader table.
    pub max_readers: u32,
    /// Reader slots in use.
    pub num_readers: u32,
}

/// Options for opening an environment.
#[derive(Clone, Debug)]
pub struct EnvBuilder {
    flags: EnvFlags,
    max_dbs: u32,
    max_readers: u32,
    map_size: Option<u64>,
    commit_through_map: bool,
    huge_pages: bool,
}

impl Default for EnvBuilder {
    fn default() -> Self {
        EnvBuilder {
            flags: EnvFlags::empty(),
            max_dbs: 0,
            max_readers: 126,
            map_size: None,
            commit_through_map: true,
            huge_pages: false,
        }
    }
}

impl EnvBuilder {
    /// Sets the environment flags.
    pub fn flags(mut self, flags: EnvFlags) -> Self {
        self.flags = flags;
        self
    }
    /// Sets how many named databases may be opened (`mdb_env_set_maxdbs`).
    pub fn max_dbs(mut self, n: u32) -> Self {
        self.max_dbs = n;
        self
    }
    /// Sets the size of the reader table (`mdb_env_set_maxreaders`).
    pub fn max_readers(mut self, n: u32) -> Self {
        self.max_readers = n;
        self
    }
    /// Sets the map size (`mdb_env_set_mapsize`).
    pub fn map_size(mut self, n: u64) -> Self {
        self.map_size = Some(n);
        self
    }

    /// Whether commits without `WRITEMAP` may copy their pages into the
    /// data file through a writable map of it rather than with `pwrite`
    /// (default: yes). They do so only on Linux file systems that
    /// overwrite allocated blocks in place (ext2/3/4, tmpfs), after
    /// allocating the blocks, and only for pages likely in the page cache
    /// (reused pages that this process's earlier commits wrote): there a
    /// store cannot fail where a `pwrite` would not, and saves a system
    /// call per page. New pages at the end of the file, and every page
    /// elsewhere, go out with `pwrite`. The map read transactions use
    /// stays read-only either way. `false` writes every page with
    /// `pwrite`, as C LMDB does.
    pub fn commit_through_map(mut self, yes: bool) -> Self {
        self.commit_through_map = yes;
        self
    }

    /// Whether a `WRITEMAP` environment asks Linux to back its map with
    /// transparent huge pages (`MADV_HUGEPAGE`; default: no). Where the
    /// page cache keeps files in large folios (XFS, and ext4 on recent
    /// kernels), the pages the database grows into then come 2 MiB at a
    /// time, and one TLB entry covers 512 of them: without sync, loads of
    /// 200k keys ran 17–55% faster than with `WRITEMAP` alone, and
    /// transactions of 100 random puts 7–37% (see the README). The price
    /// is that the kernel then writes back and evicts 2 MiB at a time: one
    /// changed page makes its 2 MiB dirty (synced commits of 100 random
    /// puts ran 1.6 times slower), and a database larger than memory is
    /// cached, and read in, 2 MiB at a time. Meant for building a database
    /// that fits in memory with `NOSYNC`, as a node's initial sync does.
    /// Does nothing without `WRITEMAP`, or where the kernel has no
    /// transparent huge pages; an environment this process already has
    /// open keeps its map.
    pub fn huge_pages(mut self, yes: bool) -> Self {
        self.huge_pages = yes;
        self
    }

    /// Opens (or, unless read-only, creates) the environment at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Env> {
        Env::open_with(path.as_ref(), self)
    }
}

/// A handle to a database of an environment, valid in every transaction
/// of that environment (LMDB's `MDB_dbi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Database {
    dbi: u32,
}

impl Database {
    /// The free-page database (`FREE_DBI`).
    pub const FREE: Database = Database { dbi: 0 };
    /// The main database (`MAIN_DBI`).
    pub const MAIN: Database = Database { dbi: 1 };

    /// The handle's index (`MDB_dbi`).
    pub fn dbi(&self) -> u32 {
        self.dbi
    }
}

struct EnvInner {
    path: PathBuf,
    flags: EnvFlags,
    file: File,
    map: Mmap,
    /// Whether the map is to be backed by huge pages
    /// ([`EnvBuilder::huge_pages`]).
    huge_pages: bool,
    /// The writable map commits copy pages through, without `WRITEMAP`
    /// where the file system allows it (see [`EnvBuilder::commit_through_map`]).
    commit_map: Option<commit_map::CommitMap>,
    map_size: u64,
    page_size: usize,
    max_readers: u32,
    max_dbs: u32,
    /// File length in bytes as last measured; it only grows.
    file_len: AtomicU64,
    /// Names of the databases opened so far; the index is the dbi.
    dbis: Mutex<Vec<Option<Vec<u8>>>>,
    /// Held by the one write transaction; it keeps what one write
    /// transaction leaves the next.
    writer: Mutex<write::Recycled>,
    /// The shared lock file, unless opened with NOLOCK (or read-only where
    /// the lock file cannot be written).
    lock: Option<lock::LockFile>,
    /// Snapshots read by this process's live read transactions, with counts.
    readers: Mutex<std::collections::BTreeMap<u64, usize>>,
}

/// An open LMDB environment.
///
/// Cloning is cheap and shares the environment.
#[derive(Clone)]
pub struct Env {
    inner: Arc<EnvInner>,
}

/// The paths of the data and lock files of an environment.
pub fn env_paths(path: &Path, flags: EnvFlags) -> (PathBuf, PathBuf) {
    if flags.contains(EnvFlags::NOSUBDIR) {
        let mut lock = path.as_os_str().to_owned();
        lock.push("-lock");
        (path.to_path_buf(), PathBuf::from(lock))
    } else {
        (path.join("data.mdb"), path.join("lock.mdb"))
    }
}

/// Writes the two meta pages of a new environment (`mdb_env_init_meta`).
fn init_metas(file: &File, opts: &EnvBuilder) -> Result<()> {
    let ps = mmap::os_page_size();
    let map_size = opts.map_size.unwrap_or(DEFAULT_MAP_SIZE);
    let map_size = map_size.div_ceil(ps as u64) * ps as u64;
    let mut free = DbRecord::empty(DbFlags::INTEGERKEY);
    free.pad = ps as u32;
    free.flags = DbFlags(
        free.flags.0 | (opts.flags.0 & (EnvFlags::NOSUBDIR.0 | EnvFlags::FIXEDMAP.0)) as u16,
    );
    let meta = Meta {
        address: 0,
        map_size,
        dbs: [free, DbRecord::empty(DbFlags::empty())],
        last_pgno: 1,
        txnid: 0,
    };
    let mut pages = vec![0u8; 2 * ps];
    for i in 0..2 {
        let p = &mut pages[i * ps..(i + 1) * ps];
        p[0..8].copy_from_slice(&(i as u64).to_le_bytes());
        p[10..12].copy_from_slice(&crate::format::PageFlags::META.0.to_le_bytes());
        p[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE].copy_from_slice(&meta.to_bytes());
    }
    file.write_all_at(&pages, 0)?;
    file.sync_data()?;
    Ok(())
}

/// LMDB's default map size.
const DEFAULT_MAP_SIZE: u64 = 1 << 20;

/// Reads both meta pages from `read` (a function that fills a buffer at a
/// file offset) and returns the newer one, as `mdb_env_read_header` does
/// (see [`crate::format::both_metas`]).
fn read_metas(read: impl Fn(u64, &mut [u8]) -> bool) -> Result<(Meta, [Option<Meta>; 2])> {
    let [m0, m1] = crate::format::both_metas(read)?;
    let (pick, _) = crate::format::newer_meta(m0, m1);
    Ok((pick, [Some(m0), Some(m1)]))
}

impl Env {
    /// Options for opening an environment.
    pub fn builder() -> EnvBuilder {
        EnvBuilder::default()
    }

    /// Opens the environment at `path` read-only with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Env> {
        Env::builder().open(path)
    }

    fn open_with(path: &Path, opts: EnvBuilder) -> Result<Env> {
        // One process must hold one handle per environment: POSIX record
        // locks belong to the process, and closing any descriptor of the
        // lock file would drop them all. A second open shares the first.
        let mut open_envs = OPEN_ENVS.lock().map_err(|_| Error::BadTxn)?;
        open_envs.retain(|(_, w)| w.strong_count() > 0);
        let (data_path, lock_path) = env_paths(path, opts.flags);
        if let Ok(md) = std::fs::metadata(&data_path) {
            use std::os::unix::fs::MetadataExt;
            let id = (md.dev(), md.ino());
            if let Some(inner) = open_envs
                .iter()
                .find(|(k, _)| *k == id)
                .and_then(|(_, w)| w.upgrade())
            {
                if inner.flags != opts.flags {
                    return Err(Error::AlreadyOpen);
                }
                return Ok(Env { inner });
            }
        }
        let read_only = opts.flags.contains(EnvFlags::RDONLY);
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .create(!read_only)
            .truncate(false)
            .open(&data_path)?;
        let mut len = file.metadata()?.len();
        if len == 0 && !read_only {
            init_metas(&file, &opts)?;
            len = file.metadata()?.len();
        }
        let (meta, _) = read_metas(|off, buf| file.read_exact_at(buf, off).is_ok())?;
        let page_size = meta.page_size();
        meta.validate(if meta.txnid & 1 == 1 { 1 } else { 0 })?;
        let map_size = opts.map_size.unwrap_or(0).max(meta.map_size).max(len);
        let map_len = usize::try_from(map_size).map_err(|_| Error::InvalidArgument)?;
        let writable = writable_map(opts.flags);
        if writable && len < map_size {
            // A writable map is written past the data's end: the file must
            // cover it all, as LMDB extends it under WRITEMAP.
            file.set_len(map_size)?;
            len = map_size;
        }
        let map = open_map(&file, map_len, opts.flags, opts.huge_pages)?;
        let commit_map = if writable || read_only || !opts.commit_through_map {
            None
        } else {
            commit_map::CommitMap::open(&file, map_len)
        };
        let lock = if opts.flags.contains(EnvFlags::NOLOCK) {
            None
        } else {
            match lock::LockFile::open(&lock_path, opts.max_readers) {
                // Read the metas again: a writer may have committed before
                // we held our share of the lock.
                Ok(opened) => {
                    let (now, _) = read_metas(|off, buf| file.read_exact_at(buf, off).is_ok())?;
                    Some(opened.finish(now.txnid)?)
                }
                Err(Error::Io(e)) if read_only && (e == libc::EACCES || e == libc::EROFS) => None,
                Err(e) => return Err(e),
            }
        };
        let env = Env {
            inner: Arc::new(EnvInner {
                path: path.to_path_buf(),
                flags: opts.flags,
                file,
                map,
                huge_pages: opts.huge_pages,
                commit_map,
                map_size,
                page_size,
                max_readers: opts.max_readers,
                max_dbs: opts.max_dbs,
                file_len: AtomicU64::new(len),
                dbis: Mutex::new(vec![None, None]),
                writer: Mutex::new(Default::default()),
                lock,
                readers: Mutex::new(Default::default()),
            }),
        };
        {
            use std::os::unix::fs::MetadataExt;
            let md = env.inner.file.metadata()?;
            open_envs.push(((md.dev(), md.ino()), Arc::downgrade(&env.inner)));
        }
        Ok(env)
    }

    /// The path the environment was opened with.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    /// The flags the environment was opened with.
    pub fn flags(&self) -> EnvFlags {
        self.inner.flags
    }
    /// The page size.
    pub fn page_size(&self) -> usize {
        self.inner.page_size
    }
    /// The longest key accepted (`mdb_env_get_maxkeysize`).
    pub fn max_key_size(&self) -> usize {
        crate::format::MAX_KEY_SIZE
    }
    /// How many named databases may be opened.
    pub fn max_dbs(&self) -> u32 {
        self.inner.max_dbs
    }

    /// The newest meta page, read from the map.
    fn current_meta(&self) -> Result<Meta> {
        let (meta, _) = read_metas(|off, buf| self.inner.map.read_volatile(off as usize, buf))?;
        Ok(meta)
    }

    /// Both meta pages, as stored.
    pub fn metas(&self) -> Result<[Option<Meta>; 2]> {
        Ok(read_metas(|off, buf| self.inner.map.read_volatile(off as usize, buf))?.1)
    }

    /// Environment information (`mdb_env_info`).
    pub fn info(&self) -> Result<EnvInfo> {
        let meta = self.current_meta()?;
        // The reader table's size and high-water mark live in the lock
        // file: the live one this handle shares, or else the file as it is
        // on disk; without a valid one, what this handle was opened with.
        let (max_readers, num_readers) = match &self.inner.lock {
            Some(l) => (l.max_readers(), l.num_readers()),
            None => self
                .read_lock_file()
                .ok()
                .flatten()
                .and_then(|b| lockfile::parse_header(&b, b.len() as u64))
                .filter(|h| h.is_valid())
                .map_or((self.inner.max_readers, 0), |h| {
                    (h.max_readers, h.num_readers)
                }),
        };
        Ok(EnvInfo {
            map_addr: if self.inner.flags.contains(EnvFlags::FIXEDMAP) {
                self.inner.map.addr() as u64
            } else {
                0
            },
            map_size: self.inner.map_size,
            last_pgno: meta.last_pgno,
            last_txnid: meta.txnid,
            max_readers,
            num_readers,
        })
    }

    /// The contents of the lock file, or `None` if there is none (an
    /// environment copied without it, or never opened by C LMDB). Read-only:
    /// the file is neither created nor locked.
    pub fn read_lock_file(&self) -> Result<Option<Vec<u8>>> {
        let (_, lock) = env_paths(&self.inner.path, self.inner.flags);
        match std::fs::read(lock) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Statistics of the main database (`mdb_env_stat`).
    pub fn stat(&self) -> Result<Stat> {
        let meta = self.current_meta()?;
        Ok(Stat::from_record(meta.main_db(), self.inner.page_size))
    }

    /// Starts a read transaction on the newest committed snapshot.
    pub fn read_txn(&self) -> Result<RoTxn<'_>> {
        let (meta, reader) = self.register()?;
        match self.txn_on(meta, reader) {
            Ok(txn) => Ok(txn),
            Err((e, reader)) => {
                self.unregister(&reader, meta.txnid);
                Err(e)
            }
        }
    }

    /// Holds the newest committed snapshot for as long as the returned pin
    /// lives: no writer, of this process or another, reuses its pages.
    /// Read it through [`Pin::read_txn`] as often as needed.
    pub fn pin(&self) -> Result<Pin> {
        let (meta, reader) = self.register()?;
        Ok(Pin {
            env: self.clone(),
            meta,
            reader,
        })
    }

    /// Registers a reader of the newest snapshot: a reader slot, or this
    /// process's registry without a lock file.
    fn register(&self) -> Result<(Meta, Reader)> {
        // Reading the meta and registering its txnid under one lock keeps a
        // writer from reclaiming the snapshot's pages in between.
        let (meta, reader) = match &self.inner.lock {
            Some(lock) => {
                // Publish the snapshot in a reader slot before reading its
                // meta, so no writer can reclaim its pages in between.
                let slot = lock.acquire_slot()?;
                let meta = match self
                    .published_meta(lock, slot)
                    .and_then(|m| self.check_meta(m))
                {
                    Ok(m) => m,
                    Err(e) => {
                        lock.release_slot(slot);
                        return Err(e);
                    }
                };
                (meta, Reader::Slot(slot))
            }
            None => {
                let mut readers = self.inner.readers.lock().map_err(|_| Error::BadTxn)?;
                let meta = self.check_meta(self.current_meta()?)?;
                *readers.entry(meta.txnid).or_insert(0) += 1;
                (meta, Reader::Local)
            }
        };
        Ok((meta, reader))
    }

    /// The meta page a new reader uses, with its txnid already in the
    /// reader's `slot`: the one `mti_txnid` names, as C readers take
    /// `me_metas[mti_txnid & 1]`. The newer of the two meta pages may be
    /// one a writer is writing at this moment (a reader copying it would
    /// get the new txnid with the old roots); the page `mti_txnid` names
    /// was complete before that txnid was published, and is only rewritten
    /// by the commit after next, which first publishes another txnid: so a
    /// copy taken while `mti_txnid` stays put is whole (a seqlock read).
    fn published_meta(&self, lock: &lock::LockFile, slot: u32) -> Result<Meta> {
        let ps = self.inner.page_size;
        let mut buf = [0u8; PAGE_HEADER_SIZE + META_SIZE];
        for _ in 0..1000 {
            let txnid = lock.pin(slot);
            let at = (txnid & 1) as usize;
            if !self.inner.map.read_volatile(at * ps, &mut buf) {
                return Err(Error::Invalid);
            }
            std::sync::atomic::fence(Ordering::Acquire);
            if lock.txnid() != txnid {
                continue;
            }
            let meta = Meta::parse(&buf, at as u64)?;
            if meta.txnid == txnid {
                return Ok(meta);
            }
            // `mti_txnid` names a page that does not hold it: the lock file
            // does not follow this data file (a writer without locks).
            break;
        }
        // Fall back to the newest meta page; the slot must not be newer
        // than the snapshot it protects.
        let pinned = lock.pin(slot);
        let meta = self.current_meta()?;
        if meta.txnid < pinned {
            lock.set_slot(slot, meta.txnid);
        }
        Ok(meta)
    }

    /// A read transaction on `meta`, whose reader is already registered.
    /// On failure the reader is handed back for release.
    fn txn_on(
        &self,
        meta: Meta,
        reader: Reader,
    ) -> core::result::Result<RoTxn<'_>, (Error, Reader)> {
        let need = self.snapshot_len(&meta);
        let len = match self.file_len(need) {
            Ok(len) => len,
            Err(e) => return Err((e, reader)),
        };
        let src = self
            .inner
            .map
            .view(len.min(need) as usize, self.inner.page_size);
        Ok(RoTxn {
            env: self,
            snap: Snapshot::new(meta, src),
            dbs: core::cell::RefCell::new(Vec::new()),
            reader,
        })
    }

    /// Bytes of the data file that the pages of `meta`'s snapshot span.
    fn snapshot_len(&self, meta: &Meta) -> u64 {
        let ps = self.inner.page_size as u64;
        meta.last_pgno.saturating_add(1).saturating_mul(ps)
    }

    /// The data file's length, measured again only when the last measure
    /// is short of `need`: the file only grows, and asking the file system
    /// on every transaction would cost a system call each.
    fn file_len(&self, need: u64) -> Result<u64> {
        let mut len = self.inner.file_len.load(Ordering::Acquire);
        if len < need {
            len = self.inner.file.metadata()?.len();
            self.inner.file_len.fetch_max(len, Ordering::AcqRel);
        }
        Ok(len)
    }

    /// Releases what [`Env::register`] took.
    fn unregister(&self, reader: &Reader, txnid: u64) {
        match (reader, &self.inner.lock) {
            (Reader::Slot(slot), Some(lock)) => lock.release_slot(*slot),
            (Reader::Local, _) => {
                if let Ok(mut readers) = self.inner.readers.lock() {
                    if let Some(n) = readers.get_mut(&txnid) {
                        *n -= 1;
                        if *n == 0 {
                            readers.remove(&txnid);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Starts the write transaction, waiting for the current one to end.
    pub fn write_txn(&self) -> Result<RwTxn<'_>> {
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        let local = self.inner.writer.lock().map_err(|_| Error::BadTxn)?;
        let file = match &self.inner.lock {
            Some(l) => Some(l.lock_writer()?),
            None => None,
        };
        let lock = WriteLocks {
            _file: file,
            _local: local,
        };
        let (meta, oldest) = match &self.inner.lock {
            Some(l) => {
                let meta = self.check_meta(self.current_meta()?)?;
                // A writer that died between writing its meta page and
                // publishing its txnid left `mti_txnid` behind. C's next
                // writer starts from the meta page `mti_txnid` names and
                // would overwrite that commit, so republish it, as C's
                // dead-owner recovery does; under the writer mutex the
                // newest meta page is always the last commit.
                if meta.txnid > l.txnid() {
                    l.set_txnid(meta.txnid);
                }
                (meta, l.oldest(meta.txnid))
            }
            None => {
                // Under the registry's lock no reader can register between
                // the meta read and the oldest-reader computation.
                let readers = self.inner.readers.lock().map_err(|_| Error::BadTxn)?;
                let meta = self.check_meta(self.current_meta()?)?;
                let oldest = readers
                    .keys()
                    .next()
                    .map_or(meta.txnid, |&r| r.min(meta.txnid));
                (meta, oldest)
            }
        };
        meta.validate(meta.txnid & 1)?;
        if meta.txnid == u64::MAX {
            // No next transaction number: only a damaged meta page says so.
            return Err(Error::corrupted(
                meta.txnid & 1,
                "transaction number at its limit",
            ));
        }
        let len = self.file_len(self.snapshot_len(&meta))?;
        let map = self.inner.map.view(len as usize, self.inner.page_size);
        let writable = writable_map(self.inner.flags).then_some(&self.inner.map);
        Ok(RwTxn::begin(self, lock, meta, map, writable, oldest))
    }

    /// Whether the environment was opened read-only.
    pub fn read_only(&self) -> bool {
        self.inner.flags.contains(EnvFlags::RDONLY)
    }

    /// The map size: the most the data file may grow to.
    pub fn map_size(&self) -> u64 {
        self.inner.map_size
    }

    /// Whether commits copy reused pages into the data file through a
    /// writable map rather than with `pwrite` (see
    /// [`EnvBuilder::commit_through_map`]): asked for, not `WRITEMAP`, and
    /// on a file system where that is safe.
    pub fn commits_through_map(&self) -> bool {
        self.inner.commit_map.is_some()
    }

    /// Whether commits leave flushing to the operating system: NOSYNC, or
    /// WRITEMAP with MAPASYNC.
    fn lazy_sync(&self) -> bool {
        let f = self.inner.flags;
        f.contains(EnvFlags::NOSYNC) || f.contains(EnvFlags::WRITEMAP | EnvFlags::MAPASYNC)
    }

    /// Flushes committed data to disk (`mdb_env_sync`; `msync` of the map
    /// under WRITEMAP): always with `force`, otherwise only when commits
    /// do not already sync.
    pub fn sync(&self, force: bool) -> Result<()> {
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        if force || !self.lazy_sync() {
            self.flush_data()?;
        }
        Ok(())
    }

    /// Writes the file's data to disk: the map with `msync` under WRITEMAP
    /// (pages written in place), else `fdatasync`.
    fn flush_data(&self) -> Result<()> {
        if writable_map(self.inner.flags) {
            self.inner.map.flush(true)?;
        } else {
            self.inner.file.sync_data()?;
        }
        Ok(())
    }

    /// Changes the map size (`mdb_env_set_mapsize`): the next commit records
    /// it in the meta page. As in LMDB, no transaction of this process may
    /// be running, which `&mut self` ensures for this handle; clones of the
    /// handle must have been dropped. A size of 0 takes the size in use,
    /// rounded up to the current data.
    pub fn set_map_size(&mut self, size: u64) -> Result<()> {
        // The registry's weak reference would keep `get_mut` from seeing
        // that this handle is the only one: take it out while remapping.
        let mut open_envs = OPEN_ENVS.lock().map_err(|_| Error::BadTxn)?;
        let me = Arc::as_ptr(&self.inner);
        let at = open_envs
            .iter()
            .position(|(_, w)| std::ptr::eq(w.as_ptr(), me));
        let entry = at.map(|i| open_envs.swap_remove(i).0);
        let result = match Arc::get_mut(&mut self.inner) {
            Some(inner) => remap(inner, size),
            None => Err(Error::BadTxn),
        };
        if let Some(id) = entry {
            open_envs.push((id, Arc::downgrade(&self.inner)));
        }
        result
    }

    fn dbi_names(&self) -> Vec<Option<Vec<u8>>> {
        self.inner
            .dbis
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Writes a transaction's pages, then its meta page, syncing in between
    /// as the environment's flags ask. `cached` tells the pages likely in
    /// the page cache, which may go through the commit map.
    fn write_commit(
        &self,
        dirty: &write::DirtyPages,
        meta: &Meta,
        cached: impl Fn(u64) -> bool,
    ) -> Result<()> {
        let ps = self.inner.page_size as u64;
        let file = &self.inner.file;
        // Pages with their bytes, neighbours next to each other: one map
        // lookup per page rather than one to list and one to write.
        let pages = dirty.to_write(self.inner.page_size);
        // Where a page run ends, in bytes: a buffer fills whole pages.
        let end_of = |(p, b): &(u64, &[u8])| (p + (b.len() as u64).div_ceil(ps).max(1)) * ps;
        let end = pages.iter().map(end_of).max().unwrap_or(0);
        let map = self.inner.commit_map.as_ref().filter(|m| {
            let cached_end = pages.iter().filter(|(p, _)| cached(*p)).map(end_of).max();
            // Blocks that cannot be allocated leave the pages to `pwrite`,
            // which reports a full disk itself if that is what it is.
            cached_end.is_some_and(|e| m.reserve(file, e).is_ok())
        });
        // Runs of adjacent pages go out in one vectored write, as LMDB's
        // `mdb_page_flush` batches them: one system call per run instead of
        // one per page.
        let mut run: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(WRITE_BATCH.min(pages.len()));
        let mut i = 0;
        while i < pages.len() {
            let start = pages[i].0;
            let mut next = start;
            run.clear();
            while i < pages.len() && pages[i].0 == next && run.len() < WRITE_BATCH {
                run.push(std::io::IoSlice::new(pages[i].1));
                next = end_of(&pages[i]) / ps;
                i += 1;
            }
            if let Some(m) = map.filter(|_| (start..next).all(&cached)) {
                let mut at = start * ps;
                let mut copied = true;
                for b in &run {
                    copied = copied && m.copy(at, b);
                    at += b.len() as u64;
                }
                if copied {
                    continue;
                }
            }
            if run.len() == 1 {
                file.write_all_at(&run[0], start * ps)?;
            } else {
                fileio::write_all_at(file, &mut run, start * ps)?;
            }
        }
        let flags = self.inner.flags;
        if !self.lazy_sync() {
            self.flush_data()?;
        }
        // Under WRITEMAP the meta is stored in place, txnid last, as LMDB
        // does (a `pwrite` per commit was a quarter of a one-put
        // transaction); readers take the meta that the lock file's txnid,
        // published after this, names. Otherwise it goes out with `pwrite`.
        let off = (meta.txnid & 1) * ps + PAGE_HEADER_SIZE as u64;
        let bytes = meta.to_bytes();
        let stored = writable_map(flags)
            && usize::try_from(off)
                .is_ok_and(|o| self.inner.map.store_volatile_last_word(o, &bytes));
        if !stored {
            self.inner.file.write_all_at(&bytes, off)?;
        }
        if !self.lazy_sync() && !flags.contains(EnvFlags::NOMETASYNC) {
            self.inner.file.sync_data()?;
        }
        // The writes above reached `end`, so the file is at least that
        // long: no need to ask the file system on every commit.
        self.inner.file_len.fetch_max(end, Ordering::AcqRel);
        if let Some(l) = &self.inner.lock {
            l.set_txnid(meta.txnid);
        }
        Ok(())
    }

    /// Validates a meta page before a transaction uses it, and checks that
    /// its pages fit this handle's map: another process may have grown the
    /// map (`MDB_MAP_RESIZED`; call [`Env::set_map_size`] with 0).
    fn check_meta(&self, meta: Meta) -> Result<Meta> {
        meta.validate(meta.txnid & 1)?;
        let end = meta
            .last_pgno
            .saturating_add(1)
            .saturating_mul(self.inner.page_size as u64);
        if end > self.inner.map_size {
            return Err(Error::MapResized);
        }
        Ok(meta)
    }

    /// Frees the reader slots of processes that died (`mdb_reader_check`).
    /// Returns how many slots were freed.
    pub fn reader_check(&self) -> Result<usize> {
        match &self.inner.lock {
            Some(l) => l.reader_check(),
            None => Ok(0),
        }
    }

    fn dbi_for(&self, name: Option<&[u8]>) -> Result<Database> {
        let Some(name) = name else {
            return Ok(Database::MAIN);
        };
        let mut dbis = self.inner.dbis.lock().map_err(|_| Error::BadTxn)?;
        if let Some(i) = dbis.iter().position(|n| n.as_deref() == Some(name)) {
            return Ok(Database { dbi: i as u32 });
        }
        if dbis.len() - 2 >= self.inner.max_dbs as usize {
            return Err(Error::DbsFull);
        }
        dbis.push(Some(name.to_vec()));
        Ok(Database {
            dbi: dbis.len() as u32 - 1,
        })
    }

    fn dbi_name(&self, db: Database) -> Result<Vec<u8>> {
        let dbis = self.inner.dbis.lock().map_err(|_| Error::BadTxn)?;
        dbis.get(db.dbi as usize)
            .and_then(|n| n.clone())
            .ok_or(Error::BadDbi)
    }
}

/// Most pages written by one system call at commit (LMDB's
/// `MDB_COMMIT_PAGES`).
const WRITE_BATCH: usize = 64;

/// What every transaction can read: values, cursors, statistics and
/// iterators, over the transaction's own page source.
pub trait ReadTxn {
    /// Where the transaction's pages come from.
    type Source: PageSource;

    /// The page source.
    fn source(&self) -> &Self::Source;

    /// The record of `db` as this transaction sees it.
    fn db_record(&self, db: Database) -> Result<DbRecord>;

    /// The value of `key` in `db` (the first value, for DUPSORT), borrowed
    /// from the transaction.
    #[inline]
    fn get(&self, db: Database, key: &[u8]) -> Result<Option<&[u8]>> {
        let rec = self.db_record(db)?;
        crate::btree::get(self.source(), &rec, key)
    }

    /// A cursor over `db`.
    fn cursor(&self, db: Database) -> Result<Cursor<'_, Self::Source>> {
        let rec = self.db_record(db)?;
        Ok(Cursor::new(self.source(), &rec))
    }

    /// Statistics of `db` (`mdb_stat`).
    fn stat(&self, db: Database) -> Result<Stat> {
        Ok(Stat::from_record(
            &self.db_record(db)?,
            self.source().page_size(),
        ))
    }

    /// The flags of `db`.
    fn db_flags(&self, db: Database) -> Result<DbFlags> {
        Ok(self.db_record(db)?.flags)
    }
}

impl<'env> ReadTxn for RoTxn<'env> {
    type Source = MapSource<'env>;

    #[inline]
    fn source(&self) -> &MapSource<'env> {
        self.snap.source()
    }

    #[inline]
    fn db_record(&self, db: Database) -> Result<DbRecord> {
        RoTxn::db_record(self, db)
    }
}

/// How a read transaction keeps writers off its pages.
enum Reader {
    /// A slot of the shared reader table.
    Slot(u32),
    /// This process's own registry (no lock file).
    Local,
    /// Held by a [`Pin`] that outlives the transaction.
    Borrowed,
}

/// The locks a write transaction holds: this process's, then the shared
/// writer mutex of the lock file.
pub(crate) struct WriteLocks<'env> {
    _file: Option<lock::WriterLock<'env>>,
    _local: std::sync::MutexGuard<'env, write::Recycled>,
}

/// Maps the data file anew at `size` bytes (0: the larger of the size in
/// use and the one the newest meta page records).
fn remap(inner: &mut EnvInner, size: u64) -> Result<()> {
    let len = inner.file.metadata()?.len();
    let recorded = read_metas(|off, buf| inner.map.read_volatile(off as usize, buf))
        .map(|(m, _)| m.map_size)
        .unwrap_or(0);
    let size = if size == 0 {
        inner.map_size.max(recorded)
    } else {
        size
    }
    .max(len);
    let ps = inner.page_size as u64;
    let size = size.div_ceil(ps) * ps;
    let map_len = usize::try_from(size).map_err(|_| Error::InvalidArgument)?;
    let writable = writable_map(inner.flags);
    if writable && len < size {
        inner.file.set_len(size)?;
        inner.file_len.fetch_max(size, Ordering::AcqRel);
    }
    inner.map = open_map(&inner.file, map_len, inner.flags, inner.huge_pages)?;
    if inner.commit_map.is_some() {
        inner.commit_map = commit_map::CommitMap::open(&inner.file, map_len);
    }
    inner.map_size = size;
    Ok(())
}

/// Maps `len` bytes of the data file as `flags` ask: writable under
/// `WRITEMAP`, without read-ahead under `NORDAHEAD`; a writable map backed
/// by huge pages if `huge_pages`.
fn open_map(file: &File, len: usize, flags: EnvFlags, huge_pages: bool) -> Result<Mmap> {
    let writable = writable_map(flags);
    let map = Mmap::map(file, len, writable)?;
    if flags.contains(EnvFlags::NORDAHEAD) {
        map.advise_random()?;
    }
    if writable && huge_pages {
        map.advise_huge_pages();
    }
    Ok(map)
}

/// Whether an environment opened with `flags` writes its pages in place in
/// a writable map (`WRITEMAP`; a read-only one never does).
fn writable_map(flags: EnvFlags) -> bool {
    flags.contains(EnvFlags::WRITEMAP) && !flags.contains(EnvFlags::RDONLY)
}

/// A data file's identity: device and inode.
type FileId = (u64, u64);

/// Environments open in this process, by data file identity.
static OPEN_ENVS: Mutex<Vec<(FileId, std::sync::Weak<EnvInner>)>> = Mutex::new(Vec::new());

/// A read-only transaction: a consistent snapshot of the environment.
pub struct RoTxn<'env> {
    env: &'env Env,
    snap: Snapshot<MapSource<'env>>,
    /// Records of the databases used in this transaction, by dbi.
    dbs: core::cell::RefCell<Vec<Option<DbRecord>>>,
    reader: Reader,
}

impl Drop for RoTxn<'_> {
    fn drop(&mut self) {
        self.env.unregister(&self.reader, self.snap.txnid());
    }
}

/// A snapshot held open: its pages stay as they are, whatever writers do,
/// until the pin is dropped. Owned, so it can live in another structure or
/// thread for as long as needed.
pub struct Pin {
    env: Env,
    meta: Meta,
    reader: Reader,
}

impl Pin {
    /// The pinned snapshot's transaction id.
    pub fn txnid(&self) -> u64 {
        self.meta.txnid
    }

    /// The pinned snapshot's meta page.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The environment.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// A read transaction on the pinned snapshot. It needs no reader slot
    /// of its own: the pin's keeps the pages.
    pub fn read_txn(&self) -> Result<RoTxn<'_>> {
        self.env
            .txn_on(self.meta, Reader::Borrowed)
            .map_err(|(e, _)| e)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.env.unregister(&self.reader, self.meta.txnid);
    }
}

impl<'env> RoTxn<'env> {
    /// The transaction id of the snapshot.
    pub fn id(&self) -> u64 {
        self.snap.txnid()
    }

    /// The environment.
    pub fn env(&self) -> &'env Env {
        self.env
    }

    /// The underlying snapshot, for tools that walk pages.
    pub fn snapshot(&self) -> &Snapshot<MapSource<'env>> {
        &self.snap
    }

    /// Opens a database: the main database for `None`, else a named one.
    /// [`Error::NotFound`] if it does not exist.
    pub fn open_db(&self, name: Option<&str>) -> Result<Database> {
        let name = name.map(str::as_bytes);
        let rec = match name {
            None => self.snap.main_db(),
            Some(n) => self.snap.named_db(n)?,
        };
        let db = self.env.dbi_for(name)?;
        self.cache(db, rec);
        Ok(db)
    }

    fn cache(&self, db: Database, rec: DbRecord) {
        let mut dbs = self.dbs.borrow_mut();
        let i = db.dbi as usize;
        if dbs.len() <= i {
            dbs.resize(i + 1, None);
        }
        dbs[i] = Some(rec);
    }

    /// The record of `db` in this snapshot.
    pub fn db_record(&self, db: Database) -> Result<DbRecord> {
        match db.dbi {
            0 => return Ok(self.snap.free_db()),
            1 => return Ok(self.snap.main_db()),
            _ => {}
        }
        if let Some(Some(rec)) = self.dbs.borrow().get(db.dbi as usize) {
            return Ok(*rec);
        }
        let name = self.env.dbi_name(db)?;
        let rec = self.snap.named_db(&name).map_err(|e| match e {
            Error::NotFound => Error::BadDbi,
            e => e,
        })?;
        self.cache(db, rec);
        Ok(rec)
    }

    /// The names of the named databases.
    pub fn db_names(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .snap
            .db_names()?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect())
    }
}
