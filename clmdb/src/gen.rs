//! A deterministic generator of randomized C LMDB environments, and a reader
//! that turns any environment into a plain model for comparisons.
//!
//! [`random_env`] fills every kind of database LMDB has (plain, DUPSORT,
//! DUPFIXED, INTEGERKEY with 4- and 8-byte keys, INTEGERDUP, REVERSEKEY,
//! REVERSEDUP, empty) over several transactions, some aborted, with
//! deletions of keys and of single duplicates, overwrites, overflow values,
//! inline dup sub-pages and dup sub-databases. The same seed and options
//! always give the same contents (the RNG is ChaCha8 seeded from `seed`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cursor::CursorOp;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::flags::*;
use crate::txn::{Dbi, RwTxn, Txn};

/// A database of a generated environment: its name (`None` = main DB) and
/// its persistent flags (without `MDB_CREATE`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DbSpec {
    /// The name, or `None` for the main database.
    pub name: Option<String>,
    /// The `mdb_dbi_open` flags the database was created with, minus `MDB_CREATE`.
    pub flags: u32,
}

/// Size and shape of a generated environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenOptions {
    /// Keys written per database over the whole run (before deletions).
    pub entries: usize,
    /// Duplicates of each "big" key (a dup sub-database); DUPSORT databases
    /// get two such keys.
    pub big_dups: usize,
    /// Number of write transactions (the first and the last always commit;
    /// of the others about one in four aborts).
    pub txns: usize,
    /// Create the single-file form (`MDB_NOSUBDIR`): the data file is
    /// `dir/data.mdb` and the lock file `dir/data.mdb-lock`.
    pub nosubdir: bool,
    /// The map size.
    pub map_size: usize,
}

impl GenOptions {
    /// Small: quick enough for unit tests (a few thousand items, < 1 s).
    pub fn small() -> Self {
        GenOptions {
            entries: 150,
            big_dups: 1200,
            txns: 5,
            nosubdir: false,
            map_size: 64 << 20,
        }
    }

    /// Large: tens of thousands of items per environment, for fuzz seeds
    /// and benchmarks.
    pub fn large() -> Self {
        GenOptions {
            entries: 5000,
            big_dups: 6000,
            txns: 12,
            nosubdir: false,
            map_size: 1 << 30,
        }
    }

    /// The same options in the `MDB_NOSUBDIR` form.
    pub fn with_nosubdir(mut self) -> Self {
        self.nosubdir = true;
        self
    }
}

impl Default for GenOptions {
    fn default() -> Self {
        Self::small()
    }
}

/// The path to pass to `mdb_env_open` for an environment generated in `dir`:
/// `dir` itself, or `dir/data.mdb` with `nosubdir`.
pub fn env_path(dir: &Path, opts: &GenOptions) -> PathBuf {
    if opts.nosubdir {
        dir.join("data.mdb")
    } else {
        dir.to_path_buf()
    }
}

/// Opens (creating `dir` if needed) the environment [`random_env`] writes,
/// with the same settings: `max_dbs` 16, `opts.map_size`, `MDB_NOSUBDIR`
/// when asked, plus `extra_flags`.
pub fn open_env(dir: &Path, opts: &GenOptions, extra_flags: u32) -> Result<Env> {
    std::fs::create_dir_all(dir).map_err(|e| Error {
        code: e.raw_os_error().unwrap_or(libc::EIO),
    })?;
    let flags = extra_flags | if opts.nosubdir { MDB_NOSUBDIR } else { 0 };
    Env::builder()
        .max_dbs(16)
        .map_size(opts.map_size)
        .flags(flags)
        .open(&env_path(dir, opts))
}

/// What a database kind stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Main,
    Plain,
    DupSort,
    DupFixed,
    Int4,
    Int8,
    IntDup8,
    IntDup4,
    RevKey,
    RevDup,
    Empty,
    Emptied,
}

const KINDS: [(Kind, Option<&str>, u32); 12] = [
    (Kind::Main, None, 0),
    (Kind::Plain, Some("db_plain"), 0),
    (Kind::DupSort, Some("db_dupsort"), MDB_DUPSORT),
    (
        Kind::DupFixed,
        Some("db_dupfixed"),
        MDB_DUPSORT | MDB_DUPFIXED,
    ),
    (Kind::Int4, Some("db_int4"), MDB_INTEGERKEY),
    (Kind::Int8, Some("db_int8"), MDB_INTEGERKEY),
    (
        Kind::IntDup8,
        Some("db_intdup"),
        MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
    ),
    (
        Kind::IntDup4,
        Some("db_intdup4"),
        MDB_DUPSORT | MDB_INTEGERDUP,
    ),
    (Kind::RevKey, Some("db_revkey"), MDB_REVERSEKEY),
    (
        Kind::RevDup,
        Some("db_revdup"),
        MDB_DUPSORT | MDB_REVERSEDUP,
    ),
    (Kind::Empty, Some("db_empty"), 0),
    (Kind::Emptied, Some("db_emptied"), MDB_DUPSORT),
];

/// The databases [`random_env`] creates, in creation order.
pub fn db_specs() -> Vec<DbSpec> {
    KINDS
        .iter()
        .map(|(_, n, f)| DbSpec {
            name: n.map(str::to_owned),
            flags: *f,
        })
        .collect()
}

/// Per-database generator state.
struct DbGen {
    kind: Kind,
    dbi: Dbi,
    /// Key prefixes (suffixes for REVERSEKEY) shared by many keys.
    affixes: Vec<Vec<u8>>,
    /// Value affixes for REVERSEDUP.
    val_affixes: Vec<Vec<u8>>,
    /// DUPFIXED value size.
    fixed: usize,
    /// Keys written so far (some may since be deleted or aborted).
    keys: Vec<Vec<u8>>,
    /// (key, dup) pairs written so far, for dup deletions.
    dups: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys holding many duplicates.
    big_keys: Vec<Vec<u8>>,
}

fn rand_bytes(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    // A small alphabet sometimes, so that keys share bytes and compare deep.
    if rng.gen_bool(0.3) {
        for b in v.iter_mut() {
            *b = b"abcd"[rng.gen_range(0..4)];
        }
    } else {
        rng.fill(&mut v[..]);
    }
    v
}

fn key_len(rng: &mut ChaCha8Rng) -> usize {
    match rng.gen_range(0..100) {
        0..=59 => rng.gen_range(1..=24),
        60..=89 => rng.gen_range(25..=200),
        _ => rng.gen_range(201..=511),
    }
}

fn data_len(rng: &mut ChaCha8Rng) -> usize {
    match rng.gen_range(0..100) {
        0..=4 => 0,
        5..=64 => rng.gen_range(1..=64),
        65..=89 => rng.gen_range(65..=2000),
        // Past the node size limit (~2 KiB with 4 KiB pages): overflow pages.
        _ => rng.gen_range(2001..=5 * 4096),
    }
}

impl DbGen {
    fn new(kind: Kind, dbi: Dbi, rng: &mut ChaCha8Rng) -> DbGen {
        let affixes = (0..6)
            .map(|_| {
                let n = rng.gen_range(1..=300);
                rand_bytes(rng, n)
            })
            .collect();
        let val_affixes = (0..4)
            .map(|_| {
                let n = rng.gen_range(1..=100);
                rand_bytes(rng, n)
            })
            .collect();
        DbGen {
            kind,
            dbi,
            affixes,
            val_affixes,
            fixed: rng.gen_range(4..=40),
            keys: Vec::new(),
            dups: Vec::new(),
            big_keys: Vec::new(),
        }
    }

    fn is_dup(&self) -> bool {
        matches!(
            self.kind,
            Kind::DupSort
                | Kind::DupFixed
                | Kind::IntDup8
                | Kind::IntDup4
                | Kind::RevDup
                | Kind::Emptied
        )
    }

    fn new_key(&self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        match self.kind {
            Kind::Int4 => rng.gen::<u32>().to_ne_bytes().to_vec(),
            Kind::Int8 => rng.gen::<u64>().to_ne_bytes().to_vec(),
            _ => {
                let len = key_len(rng);
                let mut k = if rng.gen_bool(0.5) {
                    let a = self.affixes.choose(rng).unwrap().clone();
                    let rest = len.saturating_sub(a.len()).max(1);
                    let mut s = rand_bytes(rng, rest);
                    if self.kind == Kind::RevKey {
                        // REVERSEKEY compares from the end: share suffixes.
                        s.extend_from_slice(&a);
                        s
                    } else {
                        let mut a = a;
                        a.append(&mut s);
                        a
                    }
                } else {
                    rand_bytes(rng, len)
                };
                k.truncate(511);
                if self.kind == Kind::Main && k.starts_with(b"db_") {
                    k[0] = b'D';
                }
                k
            }
        }
    }

    fn new_val(&self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        match self.kind {
            Kind::DupSort | Kind::Emptied => {
                let n = match rng.gen_range(0..10) {
                    0..=6 => rng.gen_range(1..=32),
                    7..=8 => rng.gen_range(33..=200),
                    _ => rng.gen_range(201..=511),
                };
                rand_bytes(rng, n)
            }
            Kind::RevDup => {
                let n = rng.gen_range(1..=120);
                let mut v = rand_bytes(rng, n);
                if rng.gen_bool(0.5) {
                    v.extend_from_slice(self.val_affixes.choose(rng).unwrap());
                }
                v.truncate(511);
                v
            }
            Kind::DupFixed => rand_bytes(rng, self.fixed),
            Kind::IntDup8 => rng.gen::<u64>().to_ne_bytes().to_vec(),
            Kind::IntDup4 => rng.gen::<u32>().to_ne_bytes().to_vec(),
            _ => {
                let n = data_len(rng);
                rand_bytes(rng, n)
            }
        }
    }

    /// How many duplicates an ordinary key of a DUPSORT DB gets.
    fn ndups(&self, rng: &mut ChaCha8Rng) -> usize {
        match rng.gen_range(0..10) {
            0..=5 => 1,
            6..=8 => rng.gen_range(2..=8),
            _ => rng.gen_range(9..=40),
        }
    }
}

/// Ignores the codes a random workload expects (`MDB_NOTFOUND` for a key
/// deleted or aborted earlier, `MDB_KEYEXIST` for a repeated duplicate).
fn tolerate(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.is_not_found() || e.is_key_exist() => Ok(()),
        r => r,
    }
}

fn insert_batch(txn: &mut RwTxn<'_>, g: &mut DbGen, n: usize, rng: &mut ChaCha8Rng) -> Result<()> {
    for _ in 0..n {
        // Sometimes overwrite (or add a dup to) an existing key.
        let key = if !g.keys.is_empty() && rng.gen_bool(0.1) {
            g.keys.choose(rng).unwrap().clone()
        } else {
            g.new_key(rng)
        };
        let nd = if g.is_dup() { g.ndups(rng) } else { 1 };
        for _ in 0..nd {
            let val = g.new_val(rng);
            tolerate(txn.put(g.dbi, &key, &val, 0))?;
            if g.is_dup() {
                g.dups.push((key.clone(), val));
            }
        }
        g.keys.push(key);
    }
    Ok(())
}

fn big_keys(
    txn: &mut RwTxn<'_>,
    g: &mut DbGen,
    opts: &GenOptions,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    if matches!(g.kind, Kind::Main | Kind::Plain | Kind::RevKey | Kind::Int4) {
        // A few values of several pages (overflow runs), never deleted.
        for _ in 0..3 {
            let key = g.new_key(rng);
            let n = rng.gen_range(3 * 4096..=6 * 4096);
            tolerate(txn.put(g.dbi, &key, &rand_bytes(rng, n), 0))?;
        }
        return Ok(());
    }
    if !g.is_dup() {
        return Ok(());
    }
    for _ in 0..2 {
        let key = g.new_key(rng);
        if g.kind == Kind::DupFixed {
            // One MDB_MULTIPLE put of all the values, through a cursor.
            let mut vals: Vec<Vec<u8>> = (0..opts.big_dups).map(|_| g.new_val(rng)).collect();
            vals.sort();
            vals.dedup();
            let flat: Vec<u8> = vals.concat();
            let mut c = txn.cursor_mut(g.dbi)?;
            c.put_multiple(&key, &flat, g.fixed, 0)?;
            g.dups.extend(vals.into_iter().map(|v| (key.clone(), v)));
        } else {
            for _ in 0..opts.big_dups {
                let val = g.new_val(rng);
                tolerate(txn.put(g.dbi, &key, &val, 0))?;
                g.dups.push((key.clone(), val));
            }
        }
        g.keys.push(key.clone());
        g.big_keys.push(key);
    }
    Ok(())
}

/// Sorted 8-byte integer keys written with `MDB_APPEND` through a cursor.
fn append_batch(txn: &mut RwTxn<'_>, g: &mut DbGen, n: usize, rng: &mut ChaCha8Rng) -> Result<()> {
    let mut ks: Vec<u64> = (0..n).map(|_| rng.gen_range(0..u64::MAX / 2)).collect();
    ks.sort_unstable();
    ks.dedup();
    let mut c = txn.cursor_mut(g.dbi)?;
    for k in ks {
        let key = k.to_ne_bytes().to_vec();
        let val = g.new_val(rng);
        c.put(&key, &val, MDB_APPEND)?;
        g.keys.push(key);
    }
    Ok(())
}

fn delete_batch(txn: &mut RwTxn<'_>, g: &mut DbGen, n: usize, rng: &mut ChaCha8Rng) -> Result<()> {
    for _ in 0..n {
        if g.is_dup() && !g.dups.is_empty() && rng.gen_bool(0.6) {
            let i = rng.gen_range(0..g.dups.len());
            let (k, v) = g.dups.swap_remove(i);
            tolerate(txn.del(g.dbi, &k, Some(&v)))?;
        } else if !g.keys.is_empty() {
            let i = rng.gen_range(0..g.keys.len());
            let k = g.keys.swap_remove(i);
            tolerate(txn.del(g.dbi, &k, None))?;
        }
    }
    // Thin out the big keys' duplicates with a cursor, leaving sub-databases
    // with free pages behind.
    if !g.big_keys.is_empty() && rng.gen_bool(0.5) {
        let key = g.big_keys.choose(rng).unwrap().clone();
        let mut c = txn.cursor_mut(g.dbi)?;
        if c.get(CursorOp::Set, Some(&key), None)?.is_some() {
            let mut i = 0usize;
            loop {
                if i % 3 == 0 {
                    c.del(0)?;
                    // After a delete the cursor already sits on the next
                    // item, which may belong to the next key.
                    match c.get(CursorOp::GetCurrent, None, None)? {
                        Some((k, _)) if k == key.as_slice() => {}
                        _ => break,
                    }
                } else if c.get(CursorOp::NextDup, None, None)?.is_none() {
                    break;
                }
                i += 1;
                if i > 400 {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Creates a C LMDB environment in `dir` (created if missing; it should be
/// empty) and fills it with randomized contents determined by `seed` and
/// `opts`. Returns the databases it holds (see [`db_specs`]).
///
/// The environment is closed on return; open it with [`open_env`].
pub fn random_env(dir: &Path, seed: u64, opts: &GenOptions) -> Result<Vec<DbSpec>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let env = open_env(dir, opts, 0)?;
    let specs = db_specs();
    let mut gens = Vec::new();
    {
        let mut txn = env.begin_rw()?;
        for (kind, name, flags) in KINDS {
            let dbi = txn.open_db(name, flags | MDB_CREATE)?;
            gens.push(DbGen::new(kind, dbi, &mut rng));
        }
        txn.commit()?;
    }
    let txns = opts.txns.max(1);
    let per_txn = opts.entries.div_ceil(txns);
    for t in 0..txns {
        let mut txn = env.begin_rw()?;
        for g in gens.iter_mut() {
            if g.kind == Kind::Empty {
                continue;
            }
            if t == 0 {
                big_keys(&mut txn, g, opts, &mut rng)?;
                if g.kind == Kind::Int8 {
                    append_batch(&mut txn, g, per_txn / 2, &mut rng)?;
                }
            }
            insert_batch(&mut txn, g, per_txn, &mut rng)?;
            if t > 0 {
                delete_batch(&mut txn, g, per_txn / 3, &mut rng)?;
            }
            // A nested transaction, committed or aborted.
            if rng.gen_bool(0.2) {
                let commit = rng.gen_bool(0.5);
                let mut child = txn.begin_nested()?;
                insert_batch(&mut child, g, 3, &mut rng)?;
                delete_batch(&mut child, g, 2, &mut rng)?;
                if commit {
                    child.commit()?;
                } else {
                    child.abort();
                }
            }
        }
        let last = t + 1 == txns;
        if last {
            // Empty this DB; its pages go to the free list.
            let g = gens.iter().find(|g| g.kind == Kind::Emptied).unwrap();
            txn.drop_db(g.dbi, false)?;
        }
        if t > 0 && !last && rng.gen_bool(0.25) {
            txn.abort();
        } else {
            txn.commit()?;
        }
    }
    Ok(specs)
}

/// The contents of one database in C's cursor order: each key once, with
/// all its values (duplicates in C's order; one value for non-DUPSORT DBs).
pub type DbModel = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// The contents of an environment: database name (`None` = main DB) to
/// [`DbModel`]. The main DB's model includes the named databases' records
/// (their values are the raw 48-byte `MDB_db` structs).
pub type Model = BTreeMap<Option<String>, DbModel>;

/// Reads a whole database with `MDB_NEXT` from `MDB_FIRST` (C's order).
pub fn model_db(txn: &Txn<'_>, dbi: Dbi) -> Result<DbModel> {
    let c = txn.cursor(dbi)?;
    let mut out: DbModel = Vec::new();
    let mut op = CursorOp::First;
    while let Some((k, v)) = c.get(op, None, None)? {
        match out.last_mut() {
            Some((lk, vals)) if lk.as_slice() == k => vals.push(v.to_vec()),
            _ => out.push((k.to_vec(), vec![v.to_vec()])),
        }
        op = CursorOp::Next;
    }
    Ok(out)
}

/// Reads every database of `dbs` through C cursors in one read transaction.
pub fn model(env: &Env, dbs: &[DbSpec]) -> Result<Model> {
    let txn = env.begin_ro()?;
    let mut m = Model::new();
    for spec in dbs {
        let dbi = txn.open_db(spec.name.as_deref(), spec.flags & !MDB_CREATE)?;
        m.insert(spec.name.clone(), model_db(&txn, dbi)?);
    }
    Ok(m)
}
