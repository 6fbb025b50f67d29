//! What the LMDB 0.9 tools see when they open an environment, reproduced
//! without writing anything: the error codes `mdb_env_open` returns for
//! missing or foreign files, the map size and address `mdb_env_info`
//! reports, the reader table as it looks after a C opener has set up the
//! lock file, and `mdb_strerror`'s messages.

use std::ffi::OsStr;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use prunedb_engine::btree::Cursor;
use prunedb_engine::format::DbRecord;
use prunedb_engine::lockfile::{self, ReaderSlot};
use prunedb_engine::{env_paths, CursorOp, Env, EnvFlags, Error, MapSource, RoTxn, Snapshot};

use crate::lockprobe;

/// `MDB_NOTFOUND`.
pub const MDB_NOTFOUND: i32 = -30798;
/// `MDB_INVALID`.
const MDB_INVALID: i32 = -30793;
/// `MDB_VERSION_MISMATCH`.
const MDB_VERSION_MISMATCH: i32 = -30794;

const EBADF: i32 = 9;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;

/// The text `mdb_strerror` gives for `code`: LMDB's own message for its
/// codes, the C library's `strerror` for `errno` values.
pub fn strerror(code: i32) -> String {
    let lmdb = match code {
        0 => "Successful return: 0",
        -30799 => "MDB_KEYEXIST: Key/data pair already exists",
        -30798 => "MDB_NOTFOUND: No matching key/data pair found",
        -30797 => "MDB_PAGE_NOTFOUND: Requested page not found",
        -30796 => "MDB_CORRUPTED: Located page was wrong type",
        -30795 => "MDB_PANIC: Update of meta page failed or environment had fatal error",
        -30794 => "MDB_VERSION_MISMATCH: Database environment version mismatch",
        -30793 => "MDB_INVALID: File is not an LMDB file",
        -30792 => "MDB_MAP_FULL: Environment mapsize limit reached",
        -30791 => "MDB_DBS_FULL: Environment maxdbs limit reached",
        -30790 => "MDB_READERS_FULL: Environment maxreaders limit reached",
        -30789 => "MDB_TLS_FULL: Thread-local storage keys full - too many environments open",
        -30788 => "MDB_TXN_FULL: Transaction has too many dirty pages - transaction too big",
        -30787 => "MDB_CURSOR_FULL: Internal error - cursor stack limit reached",
        -30786 => "MDB_PAGE_FULL: Internal error - page has no more space",
        -30785 => "MDB_MAP_RESIZED: Database contents grew beyond environment mapsize",
        -30784 => "MDB_INCOMPATIBLE: Operation and DB incompatible, or DB flags changed",
        -30783 => "MDB_BAD_RSLOT: Invalid reuse of reader locktable slot",
        -30782 => "MDB_BAD_TXN: Transaction must abort, has a child, or is invalid",
        -30781 => "MDB_BAD_VALSIZE: Unsupported size of key/DB name/data, or wrong DUPFIXED size",
        -30780 => "MDB_BAD_DBI: The specified DBI handle was closed/changed unexpectedly",
        _ => "",
    };
    if !lmdb.is_empty() {
        return lmdb.to_string();
    }
    // std's message is strerror's text followed by " (os error N)".
    let msg = std::io::Error::from_raw_os_error(code).to_string();
    match msg.rfind(" (os error ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

/// The LMDB return code of an engine error.
pub fn code(e: &Error) -> i32 {
    e.code()
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(EBADF)
}

/// The reader table as `mdb_env_info` and `mdb_reader_list` see it right
/// after a C tool opened the environment.
pub struct Readers {
    /// `me_maxreaders`.
    pub max_readers: u32,
    /// `mti_numreaders`.
    pub num_readers: u32,
    /// The slots `0..numreaders` that a process owns.
    pub used: Vec<ReaderSlot>,
    /// The lock file, kept open for probing per-process locks.
    file: Option<File>,
}

impl Readers {
    /// The used slots whose process no longer holds its pid lock, as
    /// `mdb_reader_check` finds them (each pid probed once, all its slots
    /// counted).
    pub fn stale(&self) -> Vec<u32> {
        let Some(file) = &self.file else {
            return Vec::new();
        };
        let mut seen: Vec<i32> = Vec::new();
        let mut stale = Vec::new();
        for (i, s) in self.used.iter().enumerate() {
            if seen.contains(&s.pid) {
                continue;
            }
            seen.push(s.pid);
            if !lockprobe::locked_by_other(file, i64::from(s.pid)) {
                stale.extend(
                    self.used[i..]
                        .iter()
                        .filter(|o| o.pid == s.pid)
                        .map(|o| o.index),
                );
            }
        }
        stale
    }
}

/// An environment opened the way the C tools open it.
pub struct Opened {
    /// The environment.
    pub env: Env,
    /// `me_mapsize`: the newest meta's map size, raised to cover its last page.
    pub map_size: u64,
    /// `me_mapaddr`: the newest meta's fixed address (0 when not fixed).
    pub map_addr: u64,
    /// The reader table.
    pub readers: Readers,
}

/// Opens the environment at `path` read-only, failing with the code
/// `mdb_env_open(MDB_RDONLY)` would return. The read takes a slot in the
/// reader table, so a live writer cannot reuse the pages it reads.
pub fn open(path: &OsStr, nosubdir: bool) -> Result<Opened, i32> {
    open_with(path, nosubdir, EnvFlags::empty())
}

/// Opens the environment for `stat`, which reads only meta pages and
/// database records, without a reader slot: taking one would raise the
/// table's high-water mark that `stat -e` reports, and the report must be
/// the table as `mdb_stat` would find it.
pub fn open_for_stat(path: &OsStr, nosubdir: bool) -> Result<Opened, i32> {
    open_with(path, nosubdir, EnvFlags::NOLOCK)
}

fn open_with(path: &OsStr, nosubdir: bool, extra: EnvFlags) -> Result<Opened, i32> {
    let path = Path::new(path);
    let flags = if nosubdir {
        EnvFlags::NOSUBDIR | extra
    } else {
        extra
    };
    let (data, lock) = env_paths(path, flags);
    // LMDB opens (creating if needed) the lock file before the data file,
    // so a missing directory shows up as the lock file's error.
    check_lock_path(&lock)?;
    let file = File::open(&data).map_err(|e| errno(&e))?;
    let meta = file.metadata().map_err(|e| errno(&e))?;
    if meta.is_dir() {
        // open(2) of a directory read-only succeeds; the header read fails.
        return Err(EISDIR);
    }
    if meta.len() == 0 {
        // An empty file counts as a new environment, whose meta pages a
        // read-only descriptor cannot write.
        return Err(EBADF);
    }
    drop(file);
    let readers = readers(&lock)?;
    let env = Env::builder()
        .flags(flags | EnvFlags::RDONLY)
        .max_dbs(u32::MAX / 2)
        .open(path)
        .map_err(|e| code(&e))?;
    let metas = env.metas().map_err(|e| code(&e))?;
    let newest = match metas {
        [Some(a), Some(b)] => Some(if b.txnid > a.txnid { b } else { a }),
        [a, b] => a.or(b),
    }
    .ok_or(MDB_INVALID)?;
    let ps = env.page_size() as u64;
    let used = newest.last_pgno.saturating_add(1).saturating_mul(ps);
    Ok(Opened {
        env,
        map_size: newest.map_size.max(used),
        map_addr: newest.address,
        readers,
    })
}

/// Fails as LMDB's `open(lockpath, O_RDWR | O_CREAT)` would, without
/// creating the file.
fn check_lock_path(lock: &Path) -> Result<(), i32> {
    match std::fs::metadata(lock) {
        Ok(m) if m.is_dir() => Err(EISDIR),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let parent: PathBuf = match lock.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            match std::fs::metadata(&parent) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(ENOTDIR),
                Err(e) => Err(errno(&e)),
            }
        }
        Err(e) => Err(errno(&e)),
    }
}

/// The reader table after a C opener's lock setup. The first opener (no
/// other process holds the shared lock on byte 0) resets the table and
/// grows a short file to the default size; later openers take the file as
/// they find it, refusing a foreign one.
fn readers(lock: &Path) -> Result<Readers, i32> {
    let default_len = lockfile::len_for_readers(lockfile::DEFAULT_READERS);
    let Ok(file) = File::open(lock) else {
        return Ok(Readers {
            max_readers: lockfile::DEFAULT_READERS,
            num_readers: 0,
            used: Vec::new(),
            file: None,
        });
    };
    let bytes = std::fs::read(lock).map_err(|e| errno(&e))?;
    let len = bytes.len() as u64;
    if !lockprobe::locked_by_other(&file, 0) {
        let max_readers = if len < default_len {
            lockfile::DEFAULT_READERS
        } else {
            lockfile::max_readers_for_len(len).unwrap_or(lockfile::DEFAULT_READERS)
        };
        return Ok(Readers {
            max_readers,
            num_readers: 0,
            used: Vec::new(),
            file: Some(file),
        });
    }
    let header = lockfile::parse_header(&bytes, len).ok_or(MDB_INVALID)?;
    if header.magic != lockfile::LOCK_MAGIC {
        return Err(MDB_INVALID);
    }
    if header.format != lockfile::LOCK_FORMAT {
        return Err(MDB_VERSION_MISMATCH);
    }
    Ok(Readers {
        max_readers: header.max_readers,
        num_readers: header.num_readers,
        used: lockfile::reader_slots(&bytes)
            .filter(ReaderSlot::is_used)
            .collect(),
        file: Some(file),
    })
}

/// A read transaction, or `None` after reporting `mdb_txn_begin`'s
/// failure as the tools do.
pub fn read_txn(env: &Env) -> Option<RoTxn<'_>> {
    match env.read_txn() {
        Ok(t) => Some(t),
        Err(e) => {
            let rc = code(&e);
            eprintln!("mdb_txn_begin failed, error {rc} {}", strerror(rc));
            None
        }
    }
}

/// The record of the database a tool's `-s NAME` names, or of the main
/// one; `None` after reporting `mdb_open`'s failure as the tools do.
pub fn chosen_db(snap: &Snapshot<MapSource<'_>>, name: Option<&OsStr>) -> Option<DbRecord> {
    let Some(name) = name else {
        return Some(snap.main_db());
    };
    match snap.named_db(crate::getopt::bytes(name)) {
        Ok(r) => Some(r),
        Err(e) => {
            let rc = code(&e);
            eprintln!("mdb_open failed, error {rc} {}", strerror(rc));
            None
        }
    }
}

/// The databases `mdb_stat -a` and `mdb_dump -a` visit: each key of the
/// main database in order, with its record, or `None` where `mdb_open`
/// would fail on it (a plain key, a damaged record). Keys holding a NUL
/// are passed over: C cannot name them. A read error ends the walk with
/// its LMDB code.
pub struct NamedDbs<'s, 'env> {
    snap: &'s Snapshot<MapSource<'env>>,
    cursor: Cursor<'s, MapSource<'env>>,
    op: CursorOp,
    done: bool,
}

impl<'s, 'env> NamedDbs<'s, 'env> {
    /// The walk over `snap`'s main database.
    pub fn new(snap: &'s Snapshot<MapSource<'env>>) -> Self {
        NamedDbs {
            snap,
            cursor: snap.cursor(&snap.main_db()),
            op: CursorOp::First,
            done: false,
        }
    }
}

impl<'s> Iterator for NamedDbs<'s, '_> {
    type Item = Result<(&'s [u8], Option<DbRecord>), i32>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let key = match self.cursor.get(self.op, None, None) {
                Ok(Some((k, _))) => k,
                Ok(None) => break,
                Err(e) => {
                    self.done = true;
                    return Some(Err(code(&e)));
                }
            };
            self.op = CursorOp::NextNoDup;
            if !key.contains(&0) {
                return Some(Ok((key, self.snap.named_db(key).ok())));
            }
        }
        self.done = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(strerror(2), "No such file or directory");
        assert_eq!(
            strerror(MDB_NOTFOUND),
            "MDB_NOTFOUND: No matching key/data pair found"
        );
        assert_eq!(strerror(21), "Is a directory");
    }
}
