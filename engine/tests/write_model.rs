//! Model-based property tests of write transactions.
//!
//! Random operation sequences run in three places at once: our write
//! transactions, C LMDB 0.9.24 on an environment of its own (the
//! reference: every operation must return the result code C returns), and
//! a `BTreeMap` model applying LMDB's rules. After every commit our
//! snapshot must equal the model, C LMDB must read exactly the model from
//! *our* environment (with the same `mdb_stat` entries), and the integrity
//! check must find nothing wrong.
//!
//! The default run is sized for well under three minutes on two cores.
//! A longer soak (about 9 minutes in a debug build on two cores):
//! `cargo test -p prunedb-engine --test write_model -- --ignored`
//! (`PRUNEDB_MODEL_CASES=n` overrides the number of cases of every test).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prunedb_clmdb as c;
use prunedb_engine::{walk, CursorOp, Database, DbFlags, Env, EnvFlags, PutFlags, ReadTxn, RwTxn};

// ---------------------------------------------------------------------------
// Scratch directories

static DIRS: AtomicUsize = AtomicUsize::new(0);

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "prunedb-write-model-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MAP_SIZE: u64 = 1 << 28;
const MAX_DBS: u32 = 8;

// ---------------------------------------------------------------------------
// Database kinds and their orderings

/// The flags of a database under test, and its DUPFIXED value size.
#[derive(Clone, Copy, Debug)]
struct Kind {
    flags: u16,
    vsize: Option<usize>,
}

const PLAIN: Kind = Kind {
    flags: 0,
    vsize: None,
};
const DUPSORT: Kind = Kind {
    flags: 0x04,
    vsize: None,
};
const DUPFIXED: Kind = Kind {
    flags: 0x04 | 0x10,
    vsize: Some(12),
};
const INTKEY: Kind = Kind {
    flags: 0x08,
    vsize: None,
};
const INTDUP: Kind = Kind {
    flags: 0x04 | 0x20 | 0x10,
    vsize: Some(8),
};
const REVKEY: Kind = Kind {
    flags: 0x02,
    vsize: None,
};
const REVDUP: Kind = Kind {
    flags: 0x04 | 0x40,
    vsize: None,
};

impl Kind {
    fn dupsort(self) -> bool {
        self.flags & 0x04 != 0
    }
    fn intkey(self) -> bool {
        self.flags & 0x08 != 0
    }
    fn revkey(self) -> bool {
        self.flags & 0x02 != 0
    }
    fn intdup(self) -> bool {
        self.flags & 0x20 != 0
    }
    fn revdup(self) -> bool {
        self.flags & 0x40 != 0
    }

    /// A byte string whose plain order is the database's key order.
    /// REVERSEKEY compares from the last byte; INTEGERKEY compares native
    /// (little-endian) integers of one size, which is the same thing.
    fn key_order(self, k: &[u8]) -> Vec<u8> {
        if self.revkey() || self.intkey() {
            k.iter().rev().copied().collect()
        } else {
            k.to_vec()
        }
    }

    /// The same for the values of one DUPSORT key.
    fn val_order(self, v: &[u8]) -> Vec<u8> {
        if self.revdup() || self.intdup() {
            v.iter().rev().copied().collect()
        } else {
            v.to_vec()
        }
    }

    fn c_flags(self) -> u32 {
        self.flags as u32
    }
}

// ---------------------------------------------------------------------------
// The model

#[derive(Clone, Debug)]
struct KeyEntry {
    key: Vec<u8>,
    /// Values by their order; one value unless DUPSORT.
    vals: BTreeMap<Vec<u8>, Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
struct DbModel {
    map: BTreeMap<Vec<u8>, KeyEntry>,
    /// For the main database: the named databases' names, keys of their
    /// records (which the model does not hold as pairs).
    names: Vec<Vec<u8>>,
}

const KEYEXIST: i32 = c::Error::KEYEXIST;
const NOTFOUND: i32 = c::Error::NOTFOUND;
const BAD_VALSIZE: i32 = c::Error::BAD_VALSIZE;
const MAX_KEY: usize = 511;

const F_NOOVERWRITE: u32 = 0x10;
const F_NODUPDATA: u32 = 0x20;
const F_APPEND: u32 = 0x20000;
const F_APPENDDUP: u32 = 0x40000;

impl DbModel {
    fn entries(&self) -> u64 {
        self.map.values().map(|e| e.vals.len() as u64).sum()
    }

    /// Every pair in the database's order.
    fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .values()
            .flat_map(|e| e.vals.values().map(|v| (e.key.clone(), v.clone())))
            .collect()
    }

    /// `mdb_put`, as C LMDB 0.9.24 decides it.
    fn put(&mut self, kind: Kind, key: &[u8], val: &[u8], flags: u32) -> Result<(), i32> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(BAD_VALSIZE);
        }
        if kind.dupsort() && val.len() > MAX_KEY {
            return Err(BAD_VALSIZE);
        }
        let ko = kind.key_order(key);
        if flags & F_APPEND != 0 {
            // C compares with the last key: equal is KEYEXIST too, even
            // for DUPSORT.
            let last = self.map.last_key_value().map(|(k, _)| k);
            if last.into_iter().chain(&self.names).any(|l| ko <= *l) {
                return Err(KEYEXIST);
            }
        } else if flags & F_NOOVERWRITE != 0 && self.map.contains_key(&ko) {
            return Err(KEYEXIST);
        }
        let vo = kind.val_order(val);
        match self.map.get_mut(&ko) {
            None => {
                self.map.insert(
                    ko,
                    KeyEntry {
                        key: key.to_vec(),
                        vals: BTreeMap::from([(vo, val.to_vec())]),
                    },
                );
            }
            Some(e) if !kind.dupsort() => {
                e.vals = BTreeMap::from([(vo, val.to_vec())]);
            }
            Some(e) => {
                if e.vals.contains_key(&vo) {
                    if flags & (F_NODUPDATA | F_APPENDDUP) != 0 {
                        return Err(KEYEXIST);
                    }
                    return Ok(());
                }
                if flags & F_APPENDDUP != 0 {
                    if let Some((last, _)) = e.vals.last_key_value() {
                        if vo < *last {
                            return Err(KEYEXIST);
                        }
                    }
                }
                e.vals.insert(vo, val.to_vec());
            }
        }
        Ok(())
    }

    /// `mdb_del`.
    fn del(&mut self, kind: Kind, key: &[u8], val: Option<&[u8]>) -> Result<(), i32> {
        if key.is_empty() {
            return Err(BAD_VALSIZE);
        }
        let ko = kind.key_order(key);
        let Some(e) = self.map.get_mut(&ko) else {
            return Err(NOTFOUND);
        };
        match val {
            Some(v) if kind.dupsort() => {
                if e.vals.remove(&kind.val_order(v)).is_none() {
                    return Err(NOTFOUND);
                }
                if e.vals.is_empty() {
                    self.map.remove(&ko);
                }
            }
            _ => {
                self.map.remove(&ko);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Keys and values, derived from small random numbers so that they collide

fn universe_key(kind: Kind, k: u16) -> Vec<u8> {
    if kind.intkey() {
        // Spans both halves of the integer, so the high word decides too.
        return ((k % 300) as u64 * 0x1_0000_0007).to_le_bytes().to_vec();
    }
    match k % 53 {
        0 => Vec::new(),
        1 => vec![b'K'; MAX_KEY + 1],
        2..=5 => {
            // Long keys (up to the maximum) that share long prefixes or,
            // for REVERSEKEY, long suffixes.
            let len = 200 + (k as usize * 37) % (MAX_KEY - 199);
            let tag = format!("{:03}", k % 40);
            let mut v = vec![b'L'; len - 3];
            if kind.revkey() {
                v.splice(0..0, tag.bytes());
            } else {
                v.extend(tag.bytes());
            }
            v
        }
        _ if kind.revkey() => format!("{}-common-tail", k % 180).into_bytes(),
        _ => format!("key-{:03}", k % 180).into_bytes(),
    }
}

fn universe_val(kind: Kind, v: u16) -> Vec<u8> {
    if kind.intdup() {
        // Below 2^32: C compares a key's single value with a new one by
        // the low 32 bits only (`mdb_cmp_int`), so larger values would
        // test that quirk rather than the write side.
        return ((v % 500) as u64 * 3).to_le_bytes().to_vec();
    }
    if let Some(sz) = kind.vsize {
        return format!("{:0w$}", (v % 500) as u32 * 7, w = sz).into_bytes();
    }
    let base = format!("{:04}", v % 400);
    if kind.dupsort() {
        let mut out = match v % 71 {
            0 => return vec![b'D'; MAX_KEY + 1],
            1 => return vec![b'd'; MAX_KEY - (v as usize % 3)],
            // No empty values: when a key's single value is empty and a
            // second one arrives, C 0.9.24 drops the empty one (it skips
            // re-inserting a zero-size old value, `if (dkey.mv_size)` in
            // `mdb_cursor_put`), a C bug the model does not copy.
            _ => {
                let pad = (v as usize / 3) % 60;
                vec![b'a' + (v % 26) as u8; pad]
            }
        };
        // Shared prefixes, or suffixes for REVERSEDUP.
        if kind.revdup() {
            out.splice(0..0, base.bytes());
        } else {
            out.extend(base.bytes());
        }
        return out;
    }
    let len = match v % 29 {
        0 | 1 => 1500 + (v as usize % 7) * 1700,
        2 => 2020 + v as usize % 40,
        3 => 0,
        _ => v as usize % 150,
    };
    let mut out = base.into_bytes();
    out.resize(len, b'a' + (v % 26) as u8);
    out.truncate(len);
    out
}

/// The smallest key after `k` in the database's order (for APPEND).
fn key_after(kind: Kind, k: &[u8]) -> Vec<u8> {
    if kind.intkey() {
        let n = u64::from_le_bytes(k.try_into().unwrap());
        return n.wrapping_add(1 + (n % 5)).to_le_bytes().to_vec();
    }
    let mut v = k.to_vec();
    if kind.revkey() {
        v.insert(0, b'z');
    } else {
        v.push(b'z');
    }
    v
}

/// A value after `v` in the dup order (for APPENDDUP).
fn val_after(kind: Kind, v: &[u8]) -> Vec<u8> {
    if kind.intdup() {
        let n = u64::from_le_bytes(v.try_into().unwrap());
        return (n + 1).to_le_bytes().to_vec();
    }
    if kind.vsize.is_some() {
        // Increment as a big-endian number of fixed size.
        let mut out = v.to_vec();
        for b in out.iter_mut().rev() {
            if *b == 0xff {
                *b = 0;
            } else {
                *b += 1;
                return out;
            }
        }
        return v.to_vec();
    }
    let mut out = v.to_vec();
    if kind.revdup() {
        out.insert(0, b'z');
    } else {
        out.push(b'z');
    }
    out
}

// ---------------------------------------------------------------------------
// Operations

#[derive(Clone, Debug)]
enum Op {
    /// `f`: bit 0 NOOVERWRITE, 1 NODUPDATA, 2 APPEND, 3 APPENDDUP; bit 4
    /// picks a key (and value) that makes APPEND(DUP) valid.
    Put {
        db: u8,
        k: u16,
        v: u16,
        f: u8,
    },
    Del {
        db: u8,
        k: u16,
        v: Option<u16>,
    },
    /// Many values into one key (DUPSORT: past the sub-database
    /// threshold), or many keys (others: splits).
    Grow {
        db: u8,
        k: u16,
        v: u16,
        n: u8,
        f: u8,
    },
    /// Deletes `n` values of an existing key, or `n` existing keys.
    Shrink {
        db: u8,
        k: u16,
        n: u8,
        step: u8,
    },
    Clear {
        db: u8,
    },
    DropRecreate {
        db: u8,
    },
}

#[derive(Clone, Debug)]
enum Step {
    Op(Op),
    Nested { ops: Vec<Op>, commit: bool },
}

#[derive(Clone, Debug)]
struct Txn {
    steps: Vec<Step>,
    commit: bool,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>())
            .prop_map(|(db, k, v, f)| Op::Put { db, k, v, f }),
        4 => (any::<u8>(), any::<u16>(), proptest::option::of(any::<u16>()))
            .prop_map(|(db, k, v)| Op::Del { db, k, v }),
        2 => (any::<u8>(), any::<u16>(), any::<u16>(), 5u8..140, any::<u8>())
            .prop_map(|(db, k, v, n, f)| Op::Grow { db, k, v, n, f }),
        2 => (any::<u8>(), any::<u16>(), 1u8..140, 1u8..4)
            .prop_map(|(db, k, n, step)| Op::Shrink { db, k, n, step }),
        1 => any::<u8>().prop_map(|db| Op::Clear { db }),
        1 => any::<u8>().prop_map(|db| Op::DropRecreate { db }),
    ]
}

fn txn_strategy(max_steps: usize) -> impl Strategy<Value = Txn> {
    let step = prop_oneof![
        6 => op_strategy().prop_map(Step::Op),
        1 => (proptest::collection::vec(op_strategy(), 1..8), any::<bool>())
            .prop_map(|(ops, commit)| Step::Nested { ops, commit }),
    ];
    (
        proptest::collection::vec(step, 1..max_steps),
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(steps, commit)| Txn { steps, commit })
}

// ---------------------------------------------------------------------------
// Running a scenario

/// One database of a scenario: `None` is the main database.
#[derive(Clone, Copy, Debug)]
struct Spec {
    name: Option<&'static str>,
    kind: Kind,
}

struct Runner<'a> {
    specs: &'a [Spec],
    models: Vec<DbModel>,
    dbs: Vec<Database>,
    cdbis: Vec<c::Dbi>,
}

fn code(r: prunedb_engine::Result<()>) -> Result<(), i32> {
    r.map_err(|e| e.code())
}

fn ccode(r: c::Result<()>) -> Result<(), i32> {
    r.map_err(|e| e.code)
}

impl Runner<'_> {
    fn idx(&self, db: u8) -> usize {
        db as usize % self.specs.len()
    }

    fn key(&self, i: usize, k: u16, append: bool) -> Vec<u8> {
        let kind = self.specs[i].kind;
        let m = &self.models[i].map;
        if append {
            let last = m
                .values()
                .next_back()
                .map(|e| &e.key)
                .into_iter()
                .chain(&self.models[i].names)
                .max_by_key(|k| kind.key_order(k));
            return match last {
                Some(l) => key_after(kind, l),
                None => universe_key(kind, k | 0x40),
            };
        }
        if k % 3 == 0 && !m.is_empty() {
            let at = (k as usize / 3) % m.len();
            return m.values().nth(at).unwrap().key.clone();
        }
        universe_key(kind, k)
    }

    fn val(&self, i: usize, key: &[u8], v: u16, appenddup: bool) -> Vec<u8> {
        let kind = self.specs[i].kind;
        if appenddup && kind.dupsort() {
            if let Some(e) = self.models[i].map.get(&kind.key_order(key)) {
                let last = e.vals.values().next_back().unwrap();
                return val_after(kind, last);
            }
        }
        universe_val(kind, v)
    }

    #[allow(clippy::too_many_arguments)]
    fn one_put(
        &mut self,
        ours: &mut RwTxn<'_>,
        ct: &mut c::RwTxn<'_>,
        i: usize,
        key: &[u8],
        val: &[u8],
        flags: u32,
        what: &dyn Fn() -> String,
    ) {
        let kind = self.specs[i].kind;
        let want = self.models[i].put(kind, key, val, flags);
        let cres = ccode(ct.put(self.cdbis[i], key, val, flags));
        assert_eq!(cres, want, "model disagrees with C: {}", what());
        let got = code(ours.put(self.dbs[i], key, val, PutFlags(flags)));
        assert_eq!(got, want, "put differs from C: {}", what());
    }

    fn one_del(
        &mut self,
        ours: &mut RwTxn<'_>,
        ct: &mut c::RwTxn<'_>,
        i: usize,
        key: &[u8],
        val: Option<&[u8]>,
        what: &dyn Fn() -> String,
    ) {
        let kind = self.specs[i].kind;
        let want = self.models[i].del(kind, key, val);
        let cres = ccode(ct.del(self.cdbis[i], key, val));
        assert_eq!(cres, want, "model disagrees with C: {}", what());
        let got = code(ours.del(self.dbs[i], key, val));
        assert_eq!(got, want, "del differs from C: {}", what());
    }

    fn apply(&mut self, ours: &mut RwTxn<'_>, ct: &mut c::RwTxn<'_>, op: &Op, nested: bool) {
        match *op {
            Op::Put { db, k, v, f } => {
                let i = self.idx(db);
                let mut flags = 0;
                for (bit, fl) in [F_NOOVERWRITE, F_NODUPDATA, F_APPEND, F_APPENDDUP]
                    .into_iter()
                    .enumerate()
                {
                    if f & (1 << bit) != 0 {
                        flags |= fl;
                    }
                }
                let smart = f & 0x10 != 0;
                let key = self.key(i, k, smart && flags & F_APPEND != 0);
                let val = self.val(i, &key, v, smart && flags & F_APPENDDUP != 0);
                let what = || {
                    format!(
                        "{op:?}: put {:?} key {} val {}",
                        self.specs[i],
                        show(&key),
                        show(&val)
                    )
                };
                let what = what();
                self.one_put(ours, ct, i, &key, &val, flags, &|| what.clone());
            }
            Op::Del { db, k, v } => {
                let i = self.idx(db);
                let key = self.key(i, k, false);
                let kind = self.specs[i].kind;
                let val = v.map(|v| {
                    // Mostly a value the key has.
                    match self.models[i].map.get(&kind.key_order(&key)) {
                        Some(e) if v % 4 != 0 => e
                            .vals
                            .values()
                            .nth(v as usize % e.vals.len())
                            .unwrap()
                            .clone(),
                        _ => universe_val(kind, v),
                    }
                });
                // An empty value looks up by the dup comparator in C,
                // which rejects it only for keys holding a dup page;
                // leave that history-dependent case out.
                if val.as_ref().is_some_and(|v| v.is_empty()) {
                    return;
                }
                let what = format!(
                    "{op:?}: del {:?} key {} val {:?}",
                    self.specs[i],
                    show(&key),
                    val.as_deref().map(show)
                );
                self.one_del(ours, ct, i, &key, val.as_deref(), &|| what.clone());
            }
            Op::Grow { db, k, v, n, f } => {
                let i = self.idx(db);
                let kind = self.specs[i].kind;
                let appending = f & 1 != 0;
                if kind.dupsort() {
                    let key = self.key(i, k, false);
                    for j in 0..n as u16 {
                        let flags = if appending { F_APPENDDUP } else { 0 }
                            | if f & 2 != 0 { F_NODUPDATA } else { 0 };
                        let val = self.val(i, &key, v.wrapping_add(j * 7), appending);
                        let what = format!("{op:?} #{j}: key {} val {}", show(&key), show(&val));
                        self.one_put(ours, ct, i, &key, &val, flags, &|| what.clone());
                    }
                } else {
                    for j in 0..n as u16 {
                        let key = self.key(i, k.wrapping_add(j * 3 + 1), appending);
                        let val = universe_val(kind, v.wrapping_add(j));
                        let flags = if appending { F_APPEND } else { 0 };
                        let what = format!("{op:?} #{j}: key {}", show(&key));
                        self.one_put(ours, ct, i, &key, &val, flags, &|| what.clone());
                    }
                }
            }
            Op::Shrink { db, k, n, step } => {
                let i = self.idx(db);
                let kind = self.specs[i].kind;
                let m = &self.models[i].map;
                if m.is_empty() {
                    return;
                }
                let at = k as usize % m.len();
                if kind.dupsort() {
                    let e = m.values().nth(at).unwrap();
                    let key = e.key.clone();
                    let vals: Vec<Vec<u8>> = e
                        .vals
                        .values()
                        .step_by(step as usize)
                        .take(n as usize)
                        .cloned()
                        .collect();
                    for (j, val) in vals.iter().enumerate() {
                        let what = format!("{op:?} #{j}: key {} val {}", show(&key), show(val));
                        self.one_del(ours, ct, i, &key, Some(val), &|| what.clone());
                    }
                } else {
                    let keys: Vec<Vec<u8>> = m
                        .values()
                        .skip(at)
                        .step_by(step as usize)
                        .take(n as usize)
                        .map(|e| e.key.clone())
                        .collect();
                    for (j, key) in keys.iter().enumerate() {
                        let what = format!("{op:?} #{j}: key {}", show(key));
                        self.one_del(ours, ct, i, key, None, &|| what.clone());
                    }
                }
            }
            Op::Clear { db } => {
                let i = self.idx(db);
                if self.specs[i].name.is_none() && self.specs.len() > 1 {
                    // Emptying the main database would drop the named
                    // databases' records (and leak their pages in C).
                    return;
                }
                ccode(ct.drop_db(self.cdbis[i], false)).unwrap();
                ours.clear_db(self.dbs[i]).unwrap();
                self.models[i].map.clear();
            }
            Op::DropRecreate { db } => {
                let i = self.idx(db);
                let Some(name) = self.specs[i].name else {
                    return;
                };
                if nested {
                    // C closes the handle of a dropped database at once,
                    // even if the nested transaction then aborts.
                    return self.apply(ours, ct, &Op::Clear { db }, nested);
                }
                let kind = self.specs[i].kind;
                ccode(ct.drop_db(self.cdbis[i], true)).unwrap();
                self.cdbis[i] = ct
                    .open_db(Some(name), kind.c_flags() | c::flags::MDB_CREATE)
                    .unwrap();
                ours.drop_db(self.dbs[i]).unwrap();
                self.dbs[i] = ours.create_db(Some(name), DbFlags(kind.flags)).unwrap();
                self.models[i] = DbModel::default();
            }
        }
    }

    fn run_txn(&mut self, env: &Env, cenv: &c::Env, t: &Txn) {
        let saved = self.models.clone();
        let mut ours = env.write_txn().unwrap();
        let mut ct = cenv.begin_rw().unwrap();
        // Handles of databases created or dropped by aborted transactions
        // are closed in C: open them again.
        for (i, s) in self.specs.iter().enumerate() {
            if let Some(name) = s.name {
                self.cdbis[i] = ct.open_db(Some(name), 0).unwrap();
                self.dbs[i] = ours.open_db(Some(name)).unwrap();
            }
        }
        for step in &t.steps {
            match step {
                Step::Op(op) => self.apply(&mut ours, &mut ct, op, false),
                Step::Nested { ops, commit } => {
                    let before = self.models.clone();
                    let mut n = ours.nested().unwrap();
                    let mut cn = ct.begin_nested().unwrap();
                    for op in ops {
                        self.apply(&mut n, &mut cn, op, true);
                    }
                    if *commit {
                        cn.commit().unwrap();
                        n.commit().unwrap();
                    } else {
                        cn.abort();
                        n.abort();
                        self.models = before;
                    }
                }
            }
        }
        if t.commit {
            ct.commit().unwrap();
            ours.commit().unwrap();
        } else {
            ct.abort();
            ours.abort();
            self.models = saved;
        }
    }
}

/// Reads `db` through our read transaction.
fn our_pairs<T: ReadTxn>(txn: &T, db: Database) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = txn.cursor(db).unwrap();
    let mut out = Vec::new();
    let mut op = CursorOp::First;
    while let Some((k, v)) = c.get(op, None, None).unwrap() {
        out.push((k.to_vec(), v.to_vec()));
        op = CursorOp::Next;
    }
    out
}

/// Asserts two lists of pairs are equal, naming the first difference.
fn assert_pairs(got: &[(Vec<u8>, Vec<u8>)], want: &[(Vec<u8>, Vec<u8>)], what: &str) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let item = |l: &[(Vec<u8>, Vec<u8>)]| {
        l.get(at)
            .map(|(k, v)| format!("{} = {}", show(k), show(v)))
            .unwrap_or_else(|| "(end)".into())
    };
    panic!(
        "{what}: {} pairs, the model has {}; first difference at {at}: got {}, want {}",
        got.len(),
        want.len(),
        item(got),
        item(want)
    );
}

/// Checks the committed state of our environment against the models:
/// through our reader, through C LMDB, and with the integrity checker.
///
/// Our environment is closed while C has it open (LMDB does not support
/// one process opening an environment twice) and reopened after.
fn verify(dir: &Path, env: Env, specs: &[Spec], models: &[DbModel], cenv: &c::Env) -> Env {
    let names: Vec<&[u8]> = specs
        .iter()
        .filter_map(|s| s.name.map(str::as_bytes))
        .collect();
    let user = |pairs: Vec<(Vec<u8>, Vec<u8>)>, main: bool| -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .into_iter()
            .filter(|(k, _)| !main || !names.contains(&k.as_slice()))
            .collect()
    };
    let named_in_main = |s: &Spec| {
        if s.name.is_none() {
            names.len() as u64
        } else {
            0
        }
    };

    // (a) our reader.
    let r = env.read_txn().unwrap();
    for (s, m) in specs.iter().zip(models) {
        let db = r.open_db(s.name).unwrap();
        let got = user(our_pairs(&r, db), s.name.is_none());
        assert_pairs(&got, &m.pairs(), &format!("our snapshot of {s:?}"));
        let st = r.stat(db).unwrap();
        assert_eq!(
            st.entries,
            m.entries() + named_in_main(s),
            "our entries of {s:?}"
        );
    }
    // (c) the integrity check.
    let report = walk::check(r.snapshot()).unwrap();
    assert!(report.is_ok(), "integrity check:\n{report}");
    let ours_stat: Vec<_> = specs
        .iter()
        .map(|s| r.stat(r.open_db(s.name).unwrap()).unwrap())
        .collect();
    drop(r);
    let flags = env.flags();
    drop(env);

    // (b) C LMDB reading our environment.
    let cr = c::Env::builder()
        .max_dbs(MAX_DBS)
        .map_size(MAP_SIZE as usize)
        .open(dir)
        .unwrap();
    {
        let t = cr.begin_ro().unwrap();
        for ((s, m), st) in specs.iter().zip(models).zip(&ours_stat) {
            let dbi = t.open_db(s.name, 0).unwrap();
            let got: Vec<(Vec<u8>, Vec<u8>)> = c::gen::model_db(&t, dbi)
                .unwrap()
                .into_iter()
                .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
                .collect();
            let got = user(got, s.name.is_none());
            assert_pairs(&got, &m.pairs(), &format!("C reading our {s:?}"));
            let cst = t.stat(dbi).unwrap();
            assert_eq!(
                cst.entries as u64,
                m.entries() + named_in_main(s),
                "C entries of {s:?}"
            );
            assert_eq!(
                (
                    cst.depth,
                    cst.branch_pages as u64,
                    cst.leaf_pages as u64,
                    cst.overflow_pages as u64
                ),
                (st.depth, st.branch_pages, st.leaf_pages, st.overflow_pages),
                "C's mdb_stat of our {s:?}"
            );
        }
    }
    drop(cr);
    let env = open_ours(dir, flags);

    // The reference environment holds the same (a check of the model).
    let t = cenv.begin_ro().unwrap();
    for (s, m) in specs.iter().zip(models) {
        let dbi = t.open_db(s.name, 0).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = c::gen::model_db(&t, dbi)
            .unwrap()
            .into_iter()
            .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
            .collect();
        assert_pairs(
            &user(got, s.name.is_none()),
            &m.pairs(),
            &format!("C's own {s:?}"),
        );
    }
    env
}

fn open_ours(dir: &Path, flags: EnvFlags) -> Env {
    Env::builder()
        .max_dbs(MAX_DBS)
        .map_size(MAP_SIZE)
        .flags(flags)
        .open(dir)
        .unwrap()
}

/// Runs `txns` on a fresh environment of ours, opened with `flags`, and
/// one of C's, checking after every commit.
fn run_scenario(specs: &[Spec], txns: &[Txn], flags: EnvFlags) {
    let ours_dir = TempDir::new("ours");
    let c_dir = TempDir::new("c");
    let env = open_ours(ours_dir.path(), flags);
    let cenv = c::Env::builder()
        .max_dbs(MAX_DBS)
        .map_size(MAP_SIZE as usize)
        .flags(c::flags::MDB_NOSYNC)
        .open(c_dir.path())
        .unwrap();
    let mut dbs = Vec::new();
    let mut cdbis = Vec::new();
    {
        let mut t = env.write_txn().unwrap();
        let mut ct = cenv.begin_rw().unwrap();
        for s in specs {
            dbs.push(t.create_db(s.name, DbFlags(s.kind.flags)).unwrap());
            cdbis.push(
                ct.open_db(s.name, s.kind.c_flags() | c::flags::MDB_CREATE)
                    .unwrap(),
            );
        }
        ct.commit().unwrap();
        t.commit().unwrap();
    }
    let mut models = vec![DbModel::default(); specs.len()];
    for (s, m) in specs.iter().zip(&mut models) {
        if s.name.is_none() {
            m.names = specs
                .iter()
                .filter_map(|s| Some(s.name?.as_bytes().to_vec()))
                .collect();
        }
    }
    let mut run = Runner {
        specs,
        models,
        dbs,
        cdbis,
    };
    let mut env = verify(ours_dir.path(), env, specs, &run.models, &cenv);
    for t in txns {
        run.run_txn(&env, &cenv, t);
        if t.commit {
            env = verify(ours_dir.path(), env, specs, &run.models, &cenv);
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PRUNEDB_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

thread_local! {
    /// Set while proptest runs cases on this thread: their panics are
    /// reported once, by the runner, instead of once per shrink step.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn quiet_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                default(info);
            }
        }));
    });
}

/// Bytes for a failure message: short and readable.
fn show(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .take(24)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if b.len() > 24 {
        format!("\"{s}\"..({} bytes)", b.len())
    } else {
        format!("\"{s}\"")
    }
}

fn check_kind(specs: &[Spec], flags: EnvFlags, n_cases: u32, max_txns: usize, max_steps: usize) {
    quiet_panics();
    let config = Config {
        cases: cases(n_cases),
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(txn_strategy(max_steps), 1..max_txns);
    QUIET.with(|q| q.set(true));
    let r = runner.run(&strategy, |txns| {
        run_scenario(specs, &txns, flags);
        Ok(())
    });
    QUIET.with(|q| q.set(false));
    if let Err(e) = r {
        panic!("{e}");
    }
}

fn named(kind: Kind) -> [Spec; 1] {
    [Spec {
        name: Some("t"),
        kind,
    }]
}

const CASES: u32 = 64;
const TXNS: usize = 7;
const STEPS: usize = 14;

#[test]
fn model_plain() {
    check_kind(&named(PLAIN), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

#[test]
fn model_dupsort() {
    check_kind(&named(DUPSORT), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

#[test]
fn model_dupsort_dupfixed() {
    check_kind(&named(DUPFIXED), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

#[test]
fn model_integerkey() {
    check_kind(&named(INTKEY), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

#[test]
fn model_dupsort_integerdup_dupfixed() {
    check_kind(&named(INTDUP), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

#[test]
fn model_reversekey() {
    check_kind(&named(REVKEY), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

#[test]
fn model_dupsort_reversedup() {
    check_kind(&named(REVDUP), EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

const MIXED: [Spec; 4] = [
    Spec {
        name: None,
        kind: PLAIN,
    },
    Spec {
        name: Some("plain"),
        kind: PLAIN,
    },
    Spec {
        name: Some("dups"),
        kind: DUPSORT,
    },
    Spec {
        name: Some("ints"),
        kind: INTDUP,
    },
];

#[test]
fn model_main_with_named() {
    check_kind(&MIXED, EnvFlags::NOSYNC, CASES, TXNS, STEPS);
}

/// Every kind at once with `WRITEMAP`: pages written in place in the map,
/// nested transactions aborting over them.
#[test]
fn model_writemap() {
    check_kind(
        &MIXED,
        EnvFlags::NOSYNC | EnvFlags::WRITEMAP,
        CASES,
        TXNS,
        STEPS,
    );
}

/// The long run: many more and longer cases of every kind.
#[test]
#[ignore]
fn model_soak() {
    for kind in [PLAIN, DUPSORT, DUPFIXED, INTKEY, INTDUP, REVKEY, REVDUP] {
        check_kind(&named(kind), EnvFlags::NOSYNC, 400, 14, 30);
    }
    check_kind(&MIXED, EnvFlags::NOSYNC, 600, 14, 30);
    check_kind(&MIXED, EnvFlags::NOSYNC | EnvFlags::WRITEMAP, 600, 14, 30);
}

// ---------------------------------------------------------------------------
// Regressions: cases the model tests found, kept by name.

/// `MDB_APPEND` with a key equal to the last key is KEYEXIST in C (it
/// compares with the last key before anything else).
#[test]
fn regression_append_existing_last_key() {
    for kind in [PLAIN, DUPSORT] {
        run_scenario(
            &named(kind),
            &[op_txn(
                vec![
                    Op::Put {
                        db: 0,
                        k: 7,
                        v: 1,
                        f: 0,
                    },
                    // k % 3 == 0: an existing key; f: APPEND.
                    Op::Put {
                        db: 0,
                        k: 3,
                        v: 2,
                        f: 4,
                    },
                ],
                true,
            )],
            EnvFlags::NOSYNC,
        );
    }
}

fn op_txn(ops: Vec<Op>, commit: bool) -> Txn {
    Txn {
        steps: ops.into_iter().map(Step::Op).collect(),
        commit,
    }
}

/// `mdb_drop(.., 1)` then `mdb_dbi_open(MDB_CREATE)` of the same name in
/// one transaction gives a new, empty database (it used to bring back the
/// dropped record, whose pages were already freed).
#[test]
fn regression_drop_then_create_in_one_txn() {
    run_scenario(
        &named(PLAIN),
        &[
            op_txn(
                vec![Op::Put {
                    db: 0,
                    k: 0,
                    v: 0,
                    f: 20,
                }],
                true,
            ),
            op_txn(vec![Op::DropRecreate { db: 0 }], true),
        ],
        EnvFlags::NOSYNC,
    );
}

/// Emptying a DUPSORT database with a dup sub-database used to fail
/// ("tree deeper than recorded"): the sub-database's root was given a
/// bogus level.
#[test]
fn regression_clear_db_with_dup_subdb() {
    for kind in [DUPSORT, DUPFIXED] {
        run_scenario(
            &named(kind),
            &[
                op_txn(
                    vec![Op::Grow {
                        db: 0,
                        k: 10,
                        v: 0,
                        n: 139,
                        f: 0,
                    }],
                    true,
                ),
                op_txn(vec![Op::Clear { db: 0 }], true),
            ],
            EnvFlags::NOSYNC,
        );
    }
}

/// `mdb_del` of a key longer than 511 bytes is NOTFOUND in C (only an
/// empty key is BAD_VALSIZE).
#[test]
fn regression_del_overlong_key_is_not_found() {
    run_scenario(
        &named(PLAIN),
        &[op_txn(
            vec![Op::Del {
                db: 0,
                k: 42931,
                v: None,
            }],
            false,
        )],
        EnvFlags::NOSYNC,
    );
}

/// Found by the model soak: APPEND of long keys split the last branch page
/// so that the appended child sat alone on a new branch page; deleting the
/// last key under it then left an empty last leaf, and a later APPEND
/// compared with nothing there and succeeded where C (rightly) says
/// KEYEXIST. Branch pages now always keep two children, as in C.
#[test]
fn regression_append_split_branch_keeps_two_children() {
    run_scenario(
        &named(PLAIN),
        &[
            Txn {
                steps: vec![
                    Step::Op(Op::Put {
                        db: 0,
                        k: 11975,
                        v: 0,
                        f: 0,
                    }),
                    Step::Op(Op::Put {
                        db: 0,
                        k: 0,
                        v: 1,
                        f: 20,
                    }),
                    Step::Op(Op::Grow {
                        db: 0,
                        k: 31096,
                        v: 5872,
                        n: 85,
                        f: 162,
                    }),
                    Step::Op(Op::Put {
                        db: 0,
                        k: 0,
                        v: 3,
                        f: 244,
                    }),
                    Step::Op(Op::Shrink {
                        db: 0,
                        k: 26567,
                        n: 9,
                        step: 2,
                    }),
                    Step::Op(Op::Grow {
                        db: 0,
                        k: 0,
                        v: 33162,
                        n: 64,
                        f: 1,
                    }),
                    Step::Op(Op::Put {
                        db: 0,
                        k: 0,
                        v: 0,
                        f: 148,
                    }),
                ],
                commit: true,
            },
            Txn {
                steps: vec![
                    Step::Op(Op::Del {
                        db: 0,
                        k: 14,
                        v: Some(2126),
                    }),
                    Step::Nested {
                        ops: vec![Op::Grow {
                            db: 112,
                            k: 44047,
                            v: 13893,
                            n: 58,
                            f: 243,
                        }],
                        commit: true,
                    },
                    Step::Op(Op::Put {
                        db: 138,
                        k: 6932,
                        v: 11685,
                        f: 92,
                    }),
                    Step::Op(Op::Grow {
                        db: 199,
                        k: 65218,
                        v: 23684,
                        n: 47,
                        f: 121,
                    }),
                    Step::Op(Op::Put {
                        db: 62,
                        k: 44140,
                        v: 40386,
                        f: 65,
                    }),
                    Step::Op(Op::Del {
                        db: 122,
                        k: 51135,
                        v: Some(19820),
                    }),
                    Step::Op(Op::Grow {
                        db: 166,
                        k: 53791,
                        v: 57746,
                        n: 131,
                        f: 189,
                    }),
                ],
                commit: true,
            },
            Txn {
                steps: vec![
                    Step::Op(Op::Put {
                        db: 187,
                        k: 27866,
                        v: 35567,
                        f: 183,
                    }),
                    Step::Op(Op::Shrink {
                        db: 25,
                        k: 33191,
                        n: 100,
                        step: 2,
                    }),
                    Step::Nested {
                        ops: vec![
                            Op::Put {
                                db: 22,
                                k: 6081,
                                v: 55081,
                                f: 248,
                            },
                            Op::Grow {
                                db: 206,
                                k: 21295,
                                v: 42457,
                                n: 13,
                                f: 186,
                            },
                            Op::Put {
                                db: 244,
                                k: 36730,
                                v: 5247,
                                f: 165,
                            },
                            Op::Put {
                                db: 71,
                                k: 39981,
                                v: 30915,
                                f: 172,
                            },
                            Op::Put {
                                db: 254,
                                k: 34832,
                                v: 29573,
                                f: 10,
                            },
                            Op::Del {
                                db: 91,
                                k: 6998,
                                v: Some(41237),
                            },
                            Op::Put {
                                db: 197,
                                k: 59616,
                                v: 2799,
                                f: 106,
                            },
                        ],
                        commit: true,
                    },
                    Step::Op(Op::Put {
                        db: 247,
                        k: 14336,
                        v: 64525,
                        f: 45,
                    }),
                    Step::Op(Op::Put {
                        db: 209,
                        k: 285,
                        v: 4204,
                        f: 111,
                    }),
                    Step::Nested {
                        ops: vec![
                            Op::Shrink {
                                db: 47,
                                k: 6548,
                                n: 15,
                                step: 1,
                            },
                            Op::DropRecreate { db: 247 },
                            Op::Put {
                                db: 225,
                                k: 3997,
                                v: 52969,
                                f: 163,
                            },
                            Op::Del {
                                db: 230,
                                k: 3531,
                                v: Some(24864),
                            },
                            Op::Put {
                                db: 135,
                                k: 63581,
                                v: 44505,
                                f: 224,
                            },
                            Op::Del {
                                db: 165,
                                k: 61907,
                                v: None,
                            },
                            Op::Put {
                                db: 1,
                                k: 44811,
                                v: 10255,
                                f: 161,
                            },
                        ],
                        commit: true,
                    },
                    Step::Op(Op::Put {
                        db: 141,
                        k: 48689,
                        v: 17913,
                        f: 37,
                    }),
                    Step::Op(Op::Put {
                        db: 104,
                        k: 63044,
                        v: 51102,
                        f: 36,
                    }),
                    Step::Nested {
                        ops: vec![
                            Op::Shrink {
                                db: 86,
                                k: 57992,
                                n: 60,
                                step: 2,
                            },
                            Op::Shrink {
                                db: 217,
                                k: 40456,
                                n: 81,
                                step: 1,
                            },
                            Op::Shrink {
                                db: 56,
                                k: 62604,
                                n: 132,
                                step: 1,
                            },
                            Op::Del {
                                db: 136,
                                k: 40922,
                                v: None,
                            },
                        ],
                        commit: false,
                    },
                    Step::Op(Op::Put {
                        db: 199,
                        k: 20205,
                        v: 9626,
                        f: 71,
                    }),
                ],
                commit: true,
            },
        ],
        EnvFlags::NOSYNC,
    );
}
