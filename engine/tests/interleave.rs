//! One environment, written in turns by this engine and by C LMDB 0.9.24:
//! each writer continues the other's trees, named databases, dup
//! sub-pages and sub-databases, overflow runs and free-page records. After
//! every turn both read back exactly the model, C's `mdb_stat` entries
//! match, and the integrity check is clean.

use prunedb_engine::ReadTxn;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use prunedb_clmdb as c;
use prunedb_engine::{walk, CursorOp, Database, DbFlags, Env, EnvFlags, PutFlags, RwTxn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MAP_SIZE: u64 = 1 << 28;
const MAX_DBS: u32 = 8;

/// The databases: name (None: main) and flags.
const DBS: [(Option<&str>, u16); 5] = [
    (None, 0),
    (Some("plain"), 0),
    (Some("dups"), 0x04),
    // DUPSORT | DUPFIXED | INTEGERDUP, 8-byte values.
    (Some("fixed"), 0x04 | 0x10 | 0x20),
    (Some("rev"), 0x02),
];

fn dupsort(i: usize) -> bool {
    DBS[i].1 & 0x04 != 0
}

/// Keys in each database's order, values per key in dup order (the
/// orders are chosen below so that plain byte order is right).
type Model = Vec<BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>>;

fn order_key(i: usize, k: &[u8]) -> Vec<u8> {
    // REVERSEKEY compares from the last byte.
    if DBS[i].1 & 0x02 != 0 {
        k.iter().rev().copied().collect()
    } else {
        k.to_vec()
    }
}

fn order_val(i: usize, v: &[u8]) -> Vec<u8> {
    // INTEGERDUP: native little-endian integers.
    if DBS[i].1 & 0x20 != 0 {
        v.iter().rev().copied().collect()
    } else {
        v.to_vec()
    }
}

/// The model's pairs of database `i` in the database's order.
fn pairs(model: &Model, i: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys: Vec<&Vec<u8>> = model[i].keys().collect();
    keys.sort_by_key(|k| order_key(i, k));
    let mut out = Vec::new();
    for k in keys {
        let mut vals: Vec<&Vec<u8>> = model[i][k].iter().collect();
        vals.sort_by_key(|v| order_val(i, v));
        out.extend(vals.into_iter().map(|v| (k.clone(), v.clone())));
    }
    out
}

/// What a writer can do; both engines implement it.
trait Write {
    fn put(&mut self, db: usize, k: &[u8], v: &[u8]);
    fn del(&mut self, db: usize, k: &[u8], v: Option<&[u8]>);
    fn clear(&mut self, db: usize);
}

struct Ours<'a, 'e> {
    txn: &'a mut RwTxn<'e>,
    dbs: &'a [Database],
}

impl Write for Ours<'_, '_> {
    fn put(&mut self, db: usize, k: &[u8], v: &[u8]) {
        self.txn
            .put(self.dbs[db], k, v, PutFlags::empty())
            .unwrap_or_else(|e| panic!("our put into {:?}: {e:?}", DBS[db].0));
    }
    fn del(&mut self, db: usize, k: &[u8], v: Option<&[u8]>) {
        self.txn
            .del(self.dbs[db], k, v)
            .unwrap_or_else(|e| panic!("our del from {:?}: {e:?}", DBS[db].0));
    }
    fn clear(&mut self, db: usize) {
        self.txn.clear_db(self.dbs[db]).unwrap();
    }
}

struct Theirs<'a, 'e> {
    txn: &'a mut c::RwTxn<'e>,
    dbis: &'a [c::Dbi],
}

impl Write for Theirs<'_, '_> {
    fn put(&mut self, db: usize, k: &[u8], v: &[u8]) {
        self.txn
            .put(self.dbis[db], k, v, 0)
            .unwrap_or_else(|e| panic!("C put into {:?}: {e:?}", DBS[db].0));
    }
    fn del(&mut self, db: usize, k: &[u8], v: Option<&[u8]>) {
        self.txn
            .del(self.dbis[db], k, v)
            .unwrap_or_else(|e| panic!("C del from {:?}: {e:?}", DBS[db].0));
    }
    fn clear(&mut self, db: usize) {
        self.txn.drop_db(self.dbis[db], false).unwrap();
    }
}

fn key(i: usize, n: u32) -> Vec<u8> {
    match DBS[i].1 {
        0x02 => format!("{n}-shared-suffix").into_bytes(),
        _ if n % 17 == 0 => {
            let mut k = vec![b'p'; 300];
            k.extend(format!("{n:05}").bytes());
            k
        }
        _ => format!("k{n:05}").into_bytes(),
    }
}

fn value(i: usize, rng: &mut StdRng) -> Vec<u8> {
    if DBS[i].1 & 0x10 != 0 {
        return rng.gen_range(0u64..1 << 40).to_le_bytes().to_vec();
    }
    let len = if !dupsort(i) && rng.gen_ratio(1, 8) {
        rng.gen_range(2000..12000)
    } else {
        rng.gen_range(1..if dupsort(i) { 120 } else { 300 })
    };
    let b = rng.gen_range(b'a'..=b'z');
    let mut v = vec![b; len];
    v[0] = rng.gen();
    v
}

/// One transaction of random changes, applied to the writer and the model.
fn random_txn(w: &mut dyn Write, model: &mut Model, rng: &mut StdRng) {
    for _ in 0..rng.gen_range(20..120) {
        let i = rng.gen_range(0..DBS.len());
        let n = rng.gen_range(0..400u32);
        let k = key(i, n);
        match rng.gen_range(0..10) {
            0..=5 => {
                let v = value(i, rng);
                w.put(i, &k, &v);
                let e = model[i].entry(k).or_default();
                if !dupsort(i) {
                    e.clear();
                }
                e.insert(v);
            }
            6 if dupsort(i) => {
                // Grow one key's dup set past a sub-page: a sub-database.
                for _ in 0..rng.gen_range(20..200) {
                    let v = value(i, rng);
                    w.put(i, &k, &v);
                    model[i].entry(k.clone()).or_default().insert(v);
                }
            }
            7 if dupsort(i) => {
                // Shrink a key's dups one by one, sometimes to nothing.
                let Some(vals) = model[i].get(&k).cloned() else {
                    continue;
                };
                let keep = if rng.gen() { 0 } else { vals.len() / 2 };
                for v in vals.iter().skip(keep) {
                    w.del(i, &k, Some(v));
                    model[i].get_mut(&k).unwrap().remove(v);
                }
                if model[i][&k].is_empty() {
                    model[i].remove(&k);
                }
            }
            9 if rng.gen_ratio(1, 20) && i > 0 => {
                w.clear(i);
                model[i].clear();
            }
            _ => {
                if model[i].contains_key(&k) {
                    w.del(i, &k, None);
                    model[i].remove(&k);
                }
            }
        }
    }
}

fn open_ours(dir: &Path, flags: EnvFlags) -> Env {
    Env::builder()
        .max_dbs(MAX_DBS)
        .map_size(MAP_SIZE)
        .flags(flags)
        .open(dir)
        .unwrap()
}

fn open_c(dir: &Path) -> c::Env {
    c::Env::builder()
        .max_dbs(MAX_DBS)
        .map_size(MAP_SIZE as usize)
        .flags(c::flags::MDB_NOSYNC)
        .open(dir)
        .unwrap()
}

/// A turn of ours, on an environment opened with `flags`: a few
/// transactions, one aborted, one with a nested transaction that aborts
/// and one with a nested one that commits.
fn our_turn(dir: &Path, flags: EnvFlags, model: &mut Model, rng: &mut StdRng) {
    let env = open_ours(dir, flags);
    for t in 0..4 {
        let saved = model.clone();
        let mut txn = env.write_txn().unwrap();
        let dbs = DBS
            .iter()
            .map(|(n, f)| txn.create_db(*n, DbFlags(*f)).unwrap())
            .collect::<Vec<_>>();
        random_txn(
            &mut Ours {
                txn: &mut txn,
                dbs: &dbs,
            },
            model,
            rng,
        );
        if t <= 1 {
            let before = model.clone();
            let mut nested = txn.nested().unwrap();
            random_txn(
                &mut Ours {
                    txn: &mut nested,
                    dbs: &dbs,
                },
                model,
                rng,
            );
            if t == 0 {
                nested.commit().unwrap();
            } else {
                nested.abort();
                *model = before;
            }
        }
        if t == 2 {
            txn.abort();
            *model = saved;
        } else {
            txn.commit().unwrap();
        }
    }
}

/// A turn of C's, shaped like ours.
fn c_turn(dir: &Path, model: &mut Model, rng: &mut StdRng) {
    let env = open_c(dir);
    for t in 0..4 {
        let saved = model.clone();
        let mut txn = env.begin_rw().unwrap();
        let dbis = DBS
            .iter()
            .map(|(n, f)| txn.open_db(*n, *f as u32 | c::flags::MDB_CREATE).unwrap())
            .collect::<Vec<_>>();
        random_txn(
            &mut Theirs {
                txn: &mut txn,
                dbis: &dbis,
            },
            model,
            rng,
        );
        if t <= 1 {
            let before = model.clone();
            let mut child = txn.begin_nested().unwrap();
            random_txn(
                &mut Theirs {
                    txn: &mut child,
                    dbis: &dbis,
                },
                model,
                rng,
            );
            if t == 0 {
                child.commit().unwrap();
            } else {
                child.abort();
                *model = before;
            }
        }
        if t == 2 {
            txn.abort();
            *model = saved;
        } else {
            txn.commit().unwrap();
        }
    }
}

/// Both engines read exactly the model; C's entry counts match; the
/// integrity check is clean. Returns the last page and the pages in use.
fn check_both(dir: &Path, model: &Model, turn: &str) -> (u64, u64) {
    let env = Env::builder()
        .max_dbs(MAX_DBS)
        .flags(EnvFlags::RDONLY)
        .open(dir)
        .unwrap();
    let r = env.read_txn().unwrap();
    for (i, (name, _)) in DBS.iter().enumerate() {
        let db = r.open_db(*name).unwrap();
        let mut cur = r.cursor(db).unwrap();
        let mut got = Vec::new();
        let mut op = CursorOp::First;
        while let Some((k, v)) = cur.get(op, None, None).unwrap() {
            // The main database also holds the named databases' records.
            if name.is_some() || !DBS.iter().any(|(n, _)| n.map(str::as_bytes) == Some(k)) {
                got.push((k.to_vec(), v.to_vec()));
            }
            op = CursorOp::Next;
        }
        assert!(
            got == pairs(model, i),
            "after {turn}: our read of {name:?} differs from the model ({} pairs, model {})",
            got.len(),
            pairs(model, i).len()
        );
    }
    let report = walk::check(r.snapshot()).unwrap();
    assert!(report.is_ok(), "after {turn}: integrity check:\n{report}");
    let last = (report.last_pgno, report.live_pages);
    drop(r);
    drop(env);

    let cenv = open_c(dir);
    let t = cenv.begin_ro().unwrap();
    for (i, (name, _)) in DBS.iter().enumerate() {
        let dbi = t.open_db(*name, 0).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = c::gen::model_db(&t, dbi)
            .unwrap()
            .into_iter()
            .filter(|(k, _)| {
                name.is_some() || !DBS.iter().any(|(n, _)| n.map(str::as_bytes) == Some(k))
            })
            .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
            .collect();
        assert!(
            got == pairs(model, i),
            "after {turn}: C's read of {name:?} differs from the model"
        );
        let named = if name.is_none() { DBS.len() - 1 } else { 0 };
        let entries: usize = model[i].values().map(|s| s.len()).sum::<usize>() + named;
        assert_eq!(
            t.stat(dbi).unwrap().entries,
            entries,
            "after {turn}: C's entries of {name:?}"
        );
    }
    last
}

/// Turns of C and of ours, whose environment is opened with `flags`.
fn interleave(seed: u64, c_first: bool, turns: usize, flags: EnvFlags) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model: Model = vec![BTreeMap::new(); DBS.len()];
    let mut lasts = Vec::new();
    for turn in 0..turns {
        let c_turn_now = (turn % 2 == 0) == c_first;
        let who = if c_turn_now { "C" } else { "ours" };
        if c_turn_now {
            c_turn(dir.path(), &mut model, &mut rng);
        } else {
            our_turn(dir.path(), flags, &mut model, &mut rng);
        }
        lasts.push(check_both(
            dir.path(),
            &model,
            &format!("turn {turn} ({who})"),
        ));
    }
    // Both writers reuse the pages the other freed. LMDB reuses a
    // transaction's pages only two commits later and only when it needs
    // pages, so a margin stays free; a writer that ignored the other's
    // free records would grow past it. (The integrity check has already
    // shown that no page is lost.)
    for &(last, live) in &lasts {
        assert!(
            last <= 2 * live + 100,
            "free pages are not reused: (last page, live pages) by turn {lasts:?}"
        );
    }
}

#[test]
fn ours_then_c_then_ours() {
    interleave(1, false, 8, EnvFlags::NOSYNC);
}

#[test]
fn c_creates_then_ours() {
    interleave(2, true, 8, EnvFlags::NOSYNC);
}

/// Our turns write in place in a writable map (C's turns cannot: C LMDB
/// refuses nested transactions under WRITEMAP, and its turns nest).
#[test]
fn c_and_our_writemap_take_turns() {
    interleave(3, true, 8, EnvFlags::NOSYNC | EnvFlags::WRITEMAP);
}

/// Sequential loads with APPEND, keys long enough that branch pages split
/// too. C's split of a branch page at its end leaves two nodes on the new
/// page, and C's `mdb_rebalance` relies on two under every branch (it
/// asserts it); ours once gave the appended child a branch page of its
/// own, so a later delete left an empty leaf behind (and APPEND read the
/// empty leaf as the end of the tree). C must be able to delete every key
/// of a tree we appended, in any order, and the check must pass between.
#[test]
fn c_deletes_every_key_of_a_tree_we_appended() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let mut k = format!("{i:08}").into_bytes();
            k.resize(
                if i % 7 == 0 {
                    400
                } else {
                    40 + (i % 50) as usize
                },
                b'k',
            );
            k
        })
        .collect();
    let checked = |env: &Env, after: &str| {
        let r = env.read_txn().unwrap();
        let report = walk::check(r.snapshot()).unwrap();
        assert!(report.is_ok(), "after {after}: {report}");
        r.stat(Database::MAIN).unwrap().entries
    };
    // Small transactions, checked after each: a split leaves its mark on
    // the tree's last pages only until the next appends fill them.
    let env = open_ours(dir.path(), EnvFlags::NOSYNC);
    for (t, chunk) in keys.chunks(40).enumerate() {
        let mut txn = env.write_txn().unwrap();
        for k in chunk {
            txn.put(Database::MAIN, k, b"v", PutFlags::APPEND).unwrap();
        }
        txn.commit().unwrap();
        let done = t * 40 + chunk.len();
        assert_eq!(checked(&env, &format!("append {t}")), done as u64);
    }
    let mut order = keys.clone();
    rand::seq::SliceRandom::shuffle(&mut order[..], &mut StdRng::seed_from_u64(9));
    drop(env);
    // One engine at a time in this process: they share the lock file's
    // liveness locks.
    for (t, chunk) in order.chunks(4000).enumerate() {
        {
            let cenv = open_c(dir.path());
            let mut txn = cenv.begin_rw().unwrap();
            let dbi = txn.open_db(None, 0).unwrap();
            for k in chunk {
                txn.del(dbi, k, None).unwrap();
            }
            txn.commit().unwrap();
        }
        let env = open_ours(dir.path(), EnvFlags::NOSYNC);
        let left = checked(&env, &format!("C's delete turn {t}"));
        assert_eq!(left, (keys.len() - (t + 1) * 4000) as u64);
    }
}
