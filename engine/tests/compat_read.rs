//! Read-side compatibility with C LMDB 0.9.24.
//!
//! Environments are written by the C library (`prunedb_clmdb::gen`) with
//! every kind of database, then read by C and by this engine side by side:
//! full scans, random cursor operation sequences run in lockstep, point
//! gets, statistics, dup counts, and the iterators against a model built
//! from C's scan. Every mismatch names the seed, database and operation
//! history so that it can be replayed.

use prunedb_engine::ReadTxn;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use prunedb_clmdb as c;
use prunedb_engine as e;

use c::gen::{self, DbSpec, GenOptions};
use e::btree::{Cmp, PageSource};
use e::Iterate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the C side opens the (finished, unchanging) environments: without
/// the lock file, so that its reader-slot lock on this process's pid and
/// ours never meet within the one test process.
const C_READ_FLAGS: u32 = c::flags::MDB_RDONLY | c::flags::MDB_NOLOCK;

/// Our operations in C's numeric order (`c::CursorOp::ALL`).
const OPS: [e::CursorOp; 19] = [
    e::CursorOp::First,
    e::CursorOp::FirstDup,
    e::CursorOp::GetBoth,
    e::CursorOp::GetBothRange,
    e::CursorOp::GetCurrent,
    e::CursorOp::GetMultiple,
    e::CursorOp::Last,
    e::CursorOp::LastDup,
    e::CursorOp::Next,
    e::CursorOp::NextDup,
    e::CursorOp::NextMultiple,
    e::CursorOp::NextNoDup,
    e::CursorOp::Prev,
    e::CursorOp::PrevDup,
    e::CursorOp::PrevNoDup,
    e::CursorOp::Set,
    e::CursorOp::SetKey,
    e::CursorOp::SetRange,
    e::CursorOp::PrevMultiple,
];

fn our_op(op: c::CursorOp) -> e::CursorOp {
    let o = OPS[op.raw() as usize];
    assert_eq!(o as u32, op.raw());
    o
}

/// A generated environment on disk.
struct Fixture {
    dir: PathBuf,
    opts: GenOptions,
    specs: Vec<DbSpec>,
}

fn tmp_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat_read")
}

fn generate(name: &str, seed: u64, opts: GenOptions) -> Fixture {
    let dir = tmp_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let specs = gen::random_env(&dir, seed, &opts).unwrap();
    Fixture { dir, opts, specs }
}

impl Fixture {
    fn open_c(&self) -> c::Env {
        gen::open_env(&self.dir, &self.opts, C_READ_FLAGS).unwrap()
    }

    fn open_ours(&self) -> e::Env {
        let flags = if self.opts.nosubdir {
            e::EnvFlags::NOSUBDIR | e::EnvFlags::RDONLY
        } else {
            e::EnvFlags::RDONLY
        };
        e::Env::builder()
            .max_dbs(16)
            .flags(flags)
            .open(gen::env_path(&self.dir, &self.opts))
            .unwrap()
    }
}

/// One database opened on both sides, with what the random operations
/// need to know about it.
struct Pair {
    name: String,
    cdbi: c::Dbi,
    ours: e::Database,
    flags: e::DbFlags,
    /// C's full scan: each key with its values.
    model: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// INTEGERKEY: the size every key must have. C's integer comparators
    /// read `a`'s size from both operands, so other sizes are undefined.
    key_size: Option<usize>,
    /// INTEGERDUP: the size every value must have, for the same reason.
    val_size: Option<usize>,
}

impl Pair {
    fn dupsort(&self) -> bool {
        self.flags.contains(e::DbFlags::DUPSORT)
    }
    fn key_cmp(&self) -> Cmp {
        Cmp::for_keys(self.flags)
    }
    fn flat(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.model
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect()
    }
}

fn open_pairs(fx: &Fixture, ctxn: &c::RoTxn<'_>, otxn: &e::RoTxn<'_>) -> Vec<Pair> {
    let mut out = Vec::new();
    let mut dbs: Vec<(String, c::Dbi, e::Database)> =
        vec![("<free>".into(), c::Dbi::FREE, e::Database::FREE)];
    for spec in &fx.specs {
        let cdbi = ctxn.open_db(spec.name.as_deref(), spec.flags).unwrap();
        let ours = otxn.open_db(spec.name.as_deref()).unwrap();
        let name = spec.name.clone().unwrap_or_else(|| "<main>".into());
        dbs.push((name, cdbi, ours));
    }
    for (name, cdbi, ours) in dbs {
        let flags = otxn.db_flags(ours).unwrap();
        // C only reports the flags of user databases, not FREE_DBI's.
        if cdbi != c::Dbi::FREE {
            assert_eq!(
                ctxn.db_flags(cdbi).unwrap() & 0xffff,
                flags.bits() as u32,
                "{name}: flags"
            );
        }
        let model = gen::model_db(ctxn, cdbi).unwrap();
        let key_size = flags
            .contains(e::DbFlags::INTEGERKEY)
            .then(|| model.first().map_or(8, |(k, _)| k.len()));
        let val_size = flags
            .contains(e::DbFlags::INTEGERDUP)
            .then(|| model.first().map_or(8, |(_, v)| v[0].len()));
        out.push(Pair {
            name,
            cdbi,
            ours,
            flags,
            model,
            key_size,
            val_size,
        });
    }
    out
}

fn our_code(r: &e::Error) -> i32 {
    r.code()
}

type CRes<'a> = c::Result<Option<c::CursorItem<'a>>>;
type ORes<'a> = e::Result<Option<e::Entry<'a>>>;

/// Compares one operation's results: the same outcome, and the bytes of
/// whatever C wrote (C leaves the key untouched for SET, GET_BOTH, ...).
fn same_result(c: &CRes<'_>, o: &ORes<'_>) -> Result<(), String> {
    match (c, o) {
        (Ok(None), Ok(None)) => Ok(()),
        (Err(ce), Err(oe)) if ce.code == our_code(oe) => Ok(()),
        (Ok(Some(ci)), Ok(Some((ok, ov)))) => {
            if let Some(ck) = ci.key {
                if ck != *ok {
                    return Err(format!("key differs: C {:?} ours {:?}", show(ck), show(ok)));
                }
            }
            match ci.val {
                Some(cv) if cv != *ov => {
                    return Err(format!(
                        "value differs: C {:?} ours {:?}",
                        show(cv),
                        show(ov)
                    ))
                }
                // C succeeded without data (GET_MULTIPLE with no dup
                // position): we return an empty value.
                None if !ov.is_empty() => {
                    return Err(format!("C returned no value, ours {:?}", show(ov)))
                }
                _ => {}
            }
            Ok(())
        }
        _ => Err(format!(
            "outcome differs: C {} ours {}",
            show_c(c),
            show_o(o)
        )),
    }
}

fn show(b: &[u8]) -> String {
    if b.len() <= 24 {
        format!("{b:02x?}")
    } else {
        format!("{:02x?}..({} bytes)", &b[..24], b.len())
    }
}

fn show_c(r: &CRes<'_>) -> String {
    match r {
        Ok(None) => "NOTFOUND".into(),
        Ok(Some(i)) => format!(
            "found(key {:?}, val {:?})",
            i.key.map(show),
            i.val.map(show)
        ),
        Err(e) => format!("error {} ({})", e.code, e.name()),
    }
}

fn show_o(r: &ORes<'_>) -> String {
    match r {
        Ok(None) => "NOTFOUND".into(),
        Ok(Some((k, v))) => format!("found(key {}, val {})", show(k), show(v)),
        Err(e) => format!("error {} ({e})", e.code()),
    }
}

/// Byte strings near `b`: one byte changed by one, one byte shorter or
/// longer. Integer keys keep their size and step by one.
fn neighbour(rng: &mut StdRng, b: &[u8], fixed: Option<usize>) -> Vec<u8> {
    if let Some(n) = fixed {
        let mut x = [0u8; 8];
        x[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        let v = u64::from_le_bytes(x);
        let v = if rng.gen_bool(0.5) {
            v.wrapping_add(1)
        } else {
            v.wrapping_sub(1)
        };
        return v.to_le_bytes()[..n].to_vec();
    }
    let mut v = b.to_vec();
    match rng.gen_range(0..4) {
        0 if !v.is_empty() => {
            let i = rng.gen_range(0..v.len());
            v[i] = v[i].wrapping_add(1);
        }
        1 if !v.is_empty() => {
            let i = rng.gen_range(0..v.len());
            v[i] = v[i].wrapping_sub(1);
        }
        2 if v.len() > 1 => {
            if rng.gen_bool(0.5) {
                v.pop();
            } else {
                v.remove(0);
            }
        }
        _ => {
            if rng.gen_bool(0.5) {
                v.push(rng.gen());
            } else {
                v.insert(0, rng.gen());
            }
        }
    }
    v
}

fn random_bytes(rng: &mut StdRng, fixed: Option<usize>) -> Vec<u8> {
    let n = fixed.unwrap_or_else(|| {
        if rng.gen_bool(0.02) {
            0
        } else {
            rng.gen_range(1..=24)
        }
    });
    (0..n)
        .map(|_| {
            if rng.gen_bool(0.5) {
                b"abcd"[rng.gen_range(0..4)]
            } else {
                rng.gen()
            }
        })
        .collect()
}

fn pick_key(rng: &mut StdRng, p: &Pair) -> Vec<u8> {
    let r = rng.gen_range(0..10);
    if !p.model.is_empty() && r < 5 {
        p.model[rng.gen_range(0..p.model.len())].0.clone()
    } else if !p.model.is_empty() && r < 8 {
        let k = &p.model[rng.gen_range(0..p.model.len())].0;
        neighbour(rng, k, p.key_size)
    } else {
        random_bytes(rng, p.key_size)
    }
}

fn pick_val(rng: &mut StdRng, p: &Pair, key: &[u8]) -> Vec<u8> {
    let own = p.model.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let any = |rng: &mut StdRng| -> Option<&Vec<u8>> {
        if p.model.is_empty() {
            return None;
        }
        let vs = &p.model[rng.gen_range(0..p.model.len())].1;
        Some(&vs[rng.gen_range(0..vs.len())])
    };
    let r = rng.gen_range(0..10);
    let base = match own {
        Some(vs) if r < 7 => Some(&vs[rng.gen_range(0..vs.len())]),
        _ if r < 9 => any(rng),
        _ => None,
    };
    let fixed = p.val_size;
    match base {
        Some(v) if rng.gen_bool(0.6) => v.clone(),
        Some(v) if fixed.is_none() || v.len() == fixed.unwrap() => neighbour(rng, v, fixed),
        _ => random_bytes(rng, fixed),
    }
}

/// The leaf index and key count under our cursor, or `None` if it never
/// reached a page.
fn leaf_state(otxn: &e::RoTxn<'_>, cur: &e::RoCursor<'_, '_>) -> Option<(usize, usize)> {
    let (pgno, ki) = cur.path().last()?;
    let page = otxn.snapshot().source().tree_page(pgno).ok()?;
    Some((ki, page.len()))
}

/// Whether C would read past the node array of its leaf for `op`.
///
/// C LMDB 0.9.24 looks at `NODEPTR(mp, ki)` without a bounds check in
/// `mdb_cursor_next` and `mdb_cursor_prev` of a DUPSORT database (and in
/// `mdb_cursor_count`), also right after `mdb_cursor_last` when PREV starts
/// an unpositioned cursor (it bumps `ki` to `NUMKEYS`). When `ki` is past
/// the last node (after a failed SET or SET_RANGE) it then reads a stale
/// pointer in the page's free space; what follows is not defined, so the
/// lockstep test does not issue those operations there.
fn c_reads_past_nodes(p: &Pair, state: Option<(usize, usize)>, op: c::CursorOp) -> bool {
    use c::CursorOp::*;
    if !p.dupsort() {
        return false;
    }
    let past = matches!(state, Some((ki, n)) if ki >= n);
    match op {
        Prev | PrevDup | PrevNodup => past || state.is_none(),
        Next | NextDup | NextNodup | NextMultiple => past,
        _ => false,
    }
}

fn compare_count(c: &c::Result<usize>, o: &e::Result<u64>) -> Result<(), String> {
    match (c, o) {
        (Ok(a), Ok(b)) if *a as u64 == *b => Ok(()),
        (Err(ce), Err(oe)) if ce.code == oe.code() => Ok(()),
        _ => Err(format!(
            "count differs: C {:?} ours {:?}",
            c.map_err(|e| e.code),
            o.as_ref().map_err(|e| e.code())
        )),
    }
}

/// Runs one random sequence of `n` operations on a fresh C cursor and a
/// fresh one of ours.
fn lockstep(
    ctx: &str,
    rng: &mut StdRng,
    ctxn: &c::RoTxn<'_>,
    otxn: &e::RoTxn<'_>,
    p: &Pair,
    n: usize,
) {
    let ccur = ctxn.cursor(p.cdbi).unwrap();
    let mut ocur = otxn.cursor(p.ours).unwrap();
    let mut history: Vec<String> = Vec::new();
    // C's dup sub-cursor holds uninitialized memory until the cursor first
    // lands on a key with duplicates, and NEXT/PREV from a failed SET read
    // it (they start the sub-cursor on whatever tree it last described).
    // Landing on such a key first makes that state defined on both sides.
    if let Some((k, _)) = p.model.iter().find(|(_, vs)| vs.len() > 1) {
        let cr = ccur.get_raw(c::CursorOp::Set, Some(k), None);
        let or = ocur.get(e::CursorOp::Set, Some(k), None);
        history.push(format!("MDB_SET key {} -> {}", show(k), show_c(&cr)));
        if let Err(m) = same_result(&cr, &or) {
            panic!("{ctx} db {}: {m}", p.name);
        }
    }
    for _ in 0..n {
        let state = leaf_state(otxn, &ocur);
        if rng.gen_bool(0.08) {
            if c_reads_past_nodes(p, state, c::CursorOp::Next) {
                continue;
            }
            let cc = ccur.count();
            let oc = ocur.count();
            history.push(format!("count -> {:?}", cc.map_err(|e| e.code)));
            if let Err(m) = compare_count(&cc, &oc) {
                panic!(
                    "{ctx} db {}: {m}\nhistory:\n  {}",
                    p.name,
                    history.join("\n  ")
                );
            }
            continue;
        }
        // Moves are the interesting part; positioning ops start them.
        let op = if rng.gen_bool(0.55) {
            const MOVES: [c::CursorOp; 10] = [
                c::CursorOp::Next,
                c::CursorOp::Prev,
                c::CursorOp::NextDup,
                c::CursorOp::PrevDup,
                c::CursorOp::NextNodup,
                c::CursorOp::PrevNodup,
                c::CursorOp::GetCurrent,
                c::CursorOp::FirstDup,
                c::CursorOp::LastDup,
                c::CursorOp::Next,
            ];
            MOVES[rng.gen_range(0..MOVES.len())]
        } else {
            c::CursorOp::ALL[rng.gen_range(0..19)]
        };
        if c_reads_past_nodes(p, state, op) {
            continue;
        }
        let key = op.takes_key().then(|| pick_key(rng, p));
        let val = op
            .takes_val()
            .then(|| pick_val(rng, p, key.as_deref().unwrap_or(&[])));
        let cr = ccur.get_raw(op, key.as_deref(), val.as_deref());
        let or = ocur.get(our_op(op), key.as_deref(), val.as_deref());
        history.push(format!(
            "{}{}{} -> {}",
            op.name(),
            key.as_deref()
                .map(|k| format!(" key {}", show(k)))
                .unwrap_or_default(),
            val.as_deref()
                .map(|v| format!(" val {}", show(v)))
                .unwrap_or_default(),
            show_c(&cr)
        ));
        if let Err(m) = same_result(&cr, &or) {
            panic!(
                "{ctx} db {}: {} {m}\nours: {}\nhistory:\n  {}",
                p.name,
                op.name(),
                show_o(&or),
                history.join("\n  ")
            );
        }
    }
}

/// Full scans with FIRST/NEXT and LAST/PREV, entry for entry.
fn scans(ctx: &str, ctxn: &c::RoTxn<'_>, otxn: &e::RoTxn<'_>, p: &Pair) {
    for (start, step) in [
        (c::CursorOp::First, c::CursorOp::Next),
        (c::CursorOp::Last, c::CursorOp::Prev),
        (c::CursorOp::First, c::CursorOp::NextNodup),
        (c::CursorOp::Last, c::CursorOp::PrevNodup),
    ] {
        let ccur = ctxn.cursor(p.cdbi).unwrap();
        let mut ocur = otxn.cursor(p.ours).unwrap();
        let mut op = start;
        let mut i = 0usize;
        loop {
            let cr = ccur.get_raw(op, None, None);
            let or = ocur.get(our_op(op), None, None);
            if let Err(m) = same_result(&cr, &or) {
                panic!("{ctx} db {}: scan {} item {i}: {m}", p.name, step.name());
            }
            match cr {
                Ok(Some(_)) => {}
                _ => break,
            }
            if p.dupsort() {
                let cc = ccur.count();
                let oc = ocur.count();
                if let Err(m) = compare_count(&cc, &oc) {
                    panic!("{ctx} db {}: scan {} item {i}: {m}", p.name, step.name());
                }
            }
            op = step;
            i += 1;
        }
    }
}

fn gets(ctx: &str, rng: &mut StdRng, ctxn: &c::RoTxn<'_>, otxn: &e::RoTxn<'_>, p: &Pair) {
    // `mdb_get` refuses FREE_DBI (EINVAL: not a user database); our `get`
    // reads it like any other tree, which the scans above already cover.
    if p.cdbi == c::Dbi::FREE {
        return;
    }
    let mut keys: Vec<Vec<u8>> = p.model.iter().map(|(k, _)| k.clone()).collect();
    for _ in 0..200 {
        keys.push(pick_key(rng, p));
    }
    for k in keys {
        let cr = ctxn.get(p.cdbi, &k);
        let or = otxn.get(p.ours, &k);
        let same = match (&cr, &or) {
            (Ok(a), Ok(b)) => a == b,
            (Err(ce), Err(oe)) => ce.code == oe.code(),
            _ => false,
        };
        assert!(
            same,
            "{ctx} db {}: get {}: C {:?} ours {:?}",
            p.name,
            show(&k),
            cr.map(|v| v.map(show)).map_err(|e| e.code),
            or.map(|v| v.map(show)).map_err(|e| e.code())
        );
    }
}

fn stats(ctx: &str, ctxn: &c::RoTxn<'_>, otxn: &e::RoTxn<'_>, p: &Pair) {
    let cs = ctxn.stat(p.cdbi).unwrap();
    let os = otxn.stat(p.ours).unwrap();
    let cs = (
        cs.psize,
        cs.depth,
        cs.branch_pages as u64,
        cs.leaf_pages as u64,
        cs.overflow_pages as u64,
        cs.entries as u64,
    );
    let os = (
        os.page_size,
        os.depth,
        os.branch_pages,
        os.leaf_pages,
        os.overflow_pages,
        os.entries,
    );
    assert_eq!(cs, os, "{ctx} db {}: stat", p.name);
}

fn check_env(ctx: &str, fx: &Fixture, seed: u64, ops_per_db: usize) {
    let cenv = fx.open_c();
    let oenv = fx.open_ours();
    let ctxn = cenv.begin_ro().unwrap();
    let otxn = oenv.read_txn().unwrap();
    let pairs = open_pairs(fx, &ctxn, &otxn);
    let names: BTreeSet<Vec<u8>> = otxn.db_names().unwrap().into_iter().collect();
    let want: BTreeSet<Vec<u8>> = fx
        .specs
        .iter()
        .filter_map(|s| s.name.as_ref().map(|n| n.as_bytes().to_vec()))
        .collect();
    assert_eq!(names, want, "{ctx}: db_names");
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_c0de);
    for p in &pairs {
        stats(ctx, &ctxn, &otxn, p);
        scans(ctx, &ctxn, &otxn, p);
        gets(ctx, &mut rng, &ctxn, &otxn, p);
        let mut left = ops_per_db;
        while left > 0 {
            let n = rng.gen_range(1..=60).min(left);
            lockstep(ctx, &mut rng, &ctxn, &otxn, p, n);
            left -= n;
        }
        iterators(ctx, &mut rng, &otxn, p);
    }
}

fn bound(rng: &mut StdRng, p: &Pair) -> Bound<Vec<u8>> {
    match rng.gen_range(0..5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(pick_key(rng, p)),
        _ => Bound::Excluded(pick_key(rng, p)),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn collect<'t>(it: impl Iterator<Item = e::Result<e::Entry<'t>>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

/// The iterators against C's full scan.
fn iterators(ctx: &str, rng: &mut StdRng, otxn: &e::RoTxn<'_>, p: &Pair) {
    let flat = p.flat();
    let cmp = p.key_cmp();
    let rev: Vec<_> = flat.iter().rev().cloned().collect();
    assert_eq!(
        collect(otxn.iter(p.ours).unwrap()),
        flat,
        "{ctx} db {}: iter",
        p.name
    );
    assert_eq!(
        collect(otxn.iter_rev(p.ours).unwrap()),
        rev,
        "{ctx} db {}: iter_rev",
        p.name
    );
    let nonempty = |k: &Bound<Vec<u8>>| match k {
        Bound::Included(k) | Bound::Excluded(k) => !k.is_empty(),
        Bound::Unbounded => true,
    };
    for _ in 0..40 {
        let (lo, hi) = (bound(rng, p), bound(rng, p));
        if !nonempty(&lo) || !nonempty(&hi) {
            continue;
        }
        let inside = |k: &[u8]| {
            use std::cmp::Ordering::*;
            let above = match &lo {
                Bound::Included(b) => cmp.compare(k, b) != Less,
                Bound::Excluded(b) => cmp.compare(k, b) == Greater,
                Bound::Unbounded => true,
            };
            let below = match &hi {
                Bound::Included(b) => cmp.compare(k, b) != Greater,
                Bound::Excluded(b) => cmp.compare(k, b) == Less,
                Bound::Unbounded => true,
            };
            above && below
        };
        let want: Vec<_> = flat.iter().filter(|(k, _)| inside(k)).cloned().collect();
        let range = (as_ref(&lo), as_ref(&hi));
        let got = collect(otxn.range(p.ours, range).unwrap());
        assert_eq!(got, want, "{ctx} db {}: range {lo:?}..{hi:?}", p.name);
        let want_rev: Vec<_> = want.iter().rev().cloned().collect();
        let got = collect(otxn.range_rev(p.ours, range).unwrap());
        assert_eq!(
            got, want_rev,
            "{ctx} db {}: range_rev {lo:?}..{hi:?}",
            p.name
        );
    }
    // Prefixes are contiguous only in bytewise order.
    if cmp == Cmp::Bytes {
        for _ in 0..20 {
            let k = pick_key(rng, p);
            let n = rng.gen_range(0..=k.len().min(4));
            let prefix = &k[..n];
            if prefix.is_empty() {
                continue;
            }
            let want: Vec<_> = flat
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .cloned()
                .collect();
            let got = collect(otxn.prefix(p.ours, prefix).unwrap());
            assert_eq!(got, want, "{ctx} db {}: prefix {}", p.name, show(prefix));
        }
    }
    for _ in 0..20 {
        let k = pick_key(rng, p);
        if k.is_empty() {
            continue;
        }
        let want: Vec<Vec<u8>> = p
            .model
            .iter()
            .find(|(m, _)| *m == k)
            .map(|(_, vs)| vs.clone())
            .unwrap_or_default();
        let got: Vec<Vec<u8>> = otxn
            .dups(p.ours, &k)
            .unwrap()
            .map(|v| v.unwrap().to_vec())
            .collect();
        assert_eq!(got, want, "{ctx} db {}: dups {}", p.name, show(&k));
    }
}

fn seeds(default: u64) -> u64 {
    std::env::var("COMPAT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_envs_read_like_c() {
    let n = seeds(10);
    for seed in 0..n {
        let fx = generate(&format!("small-{seed}"), seed, GenOptions::small());
        check_env(&format!("seed {seed} (small)"), &fx, seed, 1200);
        let _ = std::fs::remove_dir_all(&fx.dir);
    }
}

#[test]
fn large_env_reads_like_c() {
    let seed = 1000;
    let fx = generate("large", seed, GenOptions::large());
    check_env("seed 1000 (large)", &fx, seed, 2000);
    let _ = std::fs::remove_dir_all(&fx.dir);
}

#[test]
fn nosubdir_env_reads_like_c() {
    for seed in [7u64, 8] {
        let fx = generate(
            &format!("nosubdir-{seed}"),
            seed,
            GenOptions::small().with_nosubdir(),
        );
        check_env(&format!("seed {seed} (nosubdir)"), &fx, seed, 800);
        let _ = std::fs::remove_dir_all(&fx.dir);
    }
}

/// A small environment written by C for the regression cases below:
/// `dups` (DUPSORT: "a" -> 1,2,3 and "b" -> x,y), `fixed` (DUPFIXED: "k"
/// -> five 4-byte values) and `one` (DUPSORT with the single key "m" ->
/// "1","2", so its root is its only leaf).
fn regression_env(name: &str) -> (PathBuf, Vec<(&'static str, u32)>) {
    let dir = tmp_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dbs = vec![
        ("dups", c::flags::MDB_DUPSORT),
        ("fixed", c::flags::MDB_DUPSORT | c::flags::MDB_DUPFIXED),
        ("one", c::flags::MDB_DUPSORT),
    ];
    let env = c::Env::builder()
        .max_dbs(4)
        .map_size(1 << 22)
        .open(&dir)
        .unwrap();
    let mut txn = env.begin_rw().unwrap();
    let put = |txn: &mut c::RwTxn<'_>, db: &str, f: u32, k: &[u8], vs: &[&[u8]]| {
        let dbi = txn.open_db(Some(db), f | c::flags::MDB_CREATE).unwrap();
        for v in vs {
            txn.put(dbi, k, v, 0).unwrap();
        }
    };
    put(&mut txn, "dups", dbs[0].1, b"a", &[b"1", b"2", b"3"]);
    put(&mut txn, "dups", dbs[0].1, b"b", &[b"x", b"y"]);
    let fixed: Vec<[u8; 4]> = (1u32..=5).map(|i| i.to_be_bytes()).collect();
    let fixed: Vec<&[u8]> = fixed.iter().map(|v| &v[..]).collect();
    put(&mut txn, "fixed", dbs[1].1, b"k", &fixed);
    let many: Vec<[u8; 4]> = (0u32..3000).map(|i| i.to_be_bytes()).collect();
    let many: Vec<&[u8]> = many.iter().map(|v| &v[..]).collect();
    put(&mut txn, "fixed", dbs[1].1, b"z", &many);
    put(&mut txn, "fixed", dbs[1].1, b"zz", &[b"last"]);
    put(&mut txn, "one", dbs[2].1, b"m", &[b"1", b"2"]);
    txn.commit().unwrap();
    (dir, dbs)
}

type Step<'a> = (c::CursorOp, Option<&'a [u8]>, Option<&'a [u8]>);

/// An owned cursor result: NOTFOUND, or the key and value.
type Owned = e::Result<Option<(Vec<u8>, Vec<u8>)>>;

/// Runs `steps` on a C cursor and one of ours over database `db` of the
/// regression environment, checks each step against C, and returns our
/// results as (found, key, value) for the caller's own assertions.
fn replay(name: &str, db: &str, steps: &[Step<'_>]) -> Vec<Owned> {
    let (dir, dbs) = regression_env(name);
    let flags = dbs.iter().find(|d| d.0 == db).unwrap().1;
    let cenv = c::Env::builder()
        .max_dbs(4)
        .flags(C_READ_FLAGS)
        .open(&dir)
        .unwrap();
    let ctxn = cenv.begin_ro().unwrap();
    let cdbi = ctxn.open_db(Some(db), flags).unwrap();
    let ccur = ctxn.cursor(cdbi).unwrap();
    let oenv = e::Env::builder()
        .max_dbs(4)
        .flags(e::EnvFlags::RDONLY)
        .open(&dir)
        .unwrap();
    let otxn = oenv.read_txn().unwrap();
    let odb = otxn.open_db(Some(db)).unwrap();
    let mut ocur = otxn.cursor(odb).unwrap();
    let mut out = Vec::new();
    for (i, &(op, k, v)) in steps.iter().enumerate() {
        let cr = ccur.get_raw(op, k, v);
        let or = ocur.get(our_op(op), k, v);
        if let Err(m) = same_result(&cr, &or) {
            panic!("{name} step {i} {}: {m}", op.name());
        }
        out.push(or.map(|o| o.map(|(k, v)| (k.to_vec(), v.to_vec()))));
    }
    out
}

fn found(v: &[u8]) -> Owned {
    Ok(Some((Vec::new(), v.to_vec())))
}

fn val_of(r: &Owned) -> e::Result<Option<Vec<u8>>> {
    r.clone().map(|o| o.map(|(_, v)| v))
}

/// FIRST_DUP and LAST_DUP keep the end-of-data mark that LAST set, so the
/// NEXT_DUP after them finds nothing (it used to return the second value).
#[test]
fn first_dup_keeps_end_of_data() {
    use c::CursorOp::*;
    let r = replay(
        "reg-first-dup-eof",
        "dups",
        &[
            (Last, None, None),
            (FirstDup, None, None),
            (NextDup, None, None),
        ],
    );
    assert_eq!(val_of(&r[1]), val_of(&found(b"x")));
    assert_eq!(r[2], Ok(None));
}

/// `mdb_cursor_count` clears the end-of-data mark: after LAST, FIRST_DUP,
/// count, a NEXT_DUP moves on to the second value.
#[test]
fn count_clears_end_of_data() {
    let (dir, _) = regression_env("reg-count-eof");
    let oenv = e::Env::builder()
        .max_dbs(4)
        .flags(e::EnvFlags::RDONLY)
        .open(&dir)
        .unwrap();
    let otxn = oenv.read_txn().unwrap();
    let db = otxn.open_db(Some("dups")).unwrap();
    let mut cur = otxn.cursor(db).unwrap();
    cur.get(e::CursorOp::Last, None, None).unwrap();
    cur.get(e::CursorOp::FirstDup, None, None).unwrap();
    assert_eq!(cur.count(), Ok(2));
    let next = cur.get(e::CursorOp::NextDup, None, None).unwrap();
    assert_eq!(next, Some((&b"b"[..], &b"y"[..])));

    let cenv = c::Env::builder()
        .max_dbs(4)
        .flags(C_READ_FLAGS)
        .open(&dir)
        .unwrap();
    let ctxn = cenv.begin_ro().unwrap();
    let cdbi = ctxn.open_db(Some("dups"), c::flags::MDB_DUPSORT).unwrap();
    let ccur = ctxn.cursor(cdbi).unwrap();
    ccur.get(c::CursorOp::Last, None, None).unwrap();
    ccur.get(c::CursorOp::FirstDup, None, None).unwrap();
    assert_eq!(ccur.count().unwrap(), 2);
    assert_eq!(
        ccur.get(c::CursorOp::NextDup, None, None).unwrap(),
        Some((&b"b"[..], &b"y"[..]))
    );
}

/// An empty key fails with BAD_VALSIZE before the dup sub-cursor is
/// touched, so GET_CURRENT still returns the current value afterwards.
#[test]
fn empty_key_leaves_position() {
    use c::CursorOp::*;
    let r = replay(
        "reg-empty-key",
        "dups",
        &[
            (Set, Some(b"a"), None),
            (NextDup, None, None),
            (Set, Some(b""), None),
            (GetCurrent, None, None),
        ],
    );
    assert_eq!(r[2], Err(e::Error::BadValSize));
    assert_eq!(val_of(&r[3]), val_of(&found(b"2")));
}

/// GET_BOTH_RANGE past the last value of an inline sub-page fails on the
/// sub-page itself without marking its end, so GET_MULTIPLE still returns
/// the page's values (it returned nothing before).
#[test]
fn get_both_range_past_inline_values() {
    use c::CursorOp::*;
    let big = 9u32.to_be_bytes();
    let r = replay(
        "reg-both-range-multiple",
        "fixed",
        &[
            (GetBothRange, Some(b"k"), Some(&big)),
            (GetMultiple, None, None),
        ],
    );
    assert_eq!(r[0], Ok(None));
    let all: Vec<u8> = (1u32..=5).flat_map(|i| i.to_be_bytes()).collect();
    assert_eq!(val_of(&r[1]), Ok(Some(all)));
}

/// In a tree whose root is its only leaf, a failed SET before the first
/// key leaves LAST's end-of-data mark in place, so NEXT finds nothing
/// (it used to return the first value of the key under the cursor).
#[test]
fn failed_set_on_root_leaf_keeps_end_of_data() {
    use c::CursorOp::*;
    let r = replay(
        "reg-root-leaf-set",
        "one",
        &[
            (Last, None, None),
            (Set, Some(b"a"), None),
            (Next, None, None),
            (SetRange, Some(b"z"), None),
            (Prev, None, None),
        ],
    );
    assert_eq!(r[1], Ok(None));
    assert_eq!(r[2], Ok(None));
    assert_eq!(r[3], Ok(None));
    assert_eq!(val_of(&r[4]), val_of(&found(b"2")));
}

/// LAST_DUP descends again even when the dup cursor has C_EOF set: after
/// PREV_MULTIPLE moved it to an earlier leaf it used to return that leaf's
/// last value instead of the key's last.
#[test]
fn last_dup_after_prev_multiple() {
    use c::CursorOp::*;
    let r = replay(
        "reg-last-dup-prev-multiple",
        "fixed",
        &[
            (Set, Some(b"z"), None),
            (LastDup, None, None),
            (PrevMultiple, None, None),
            (LastDup, None, None),
        ],
    );
    assert_eq!(val_of(&r[3]), val_of(&found(&2999u32.to_be_bytes())));
}

/// LAST onto a key without dups forgets the dup position, so GET_MULTIPLE
/// returns no values (it used to return the previous key's page).
#[test]
fn last_forgets_dup_position() {
    use c::CursorOp::*;
    let r = replay(
        "reg-last-forgets-dups",
        "fixed",
        &[
            (Set, Some(b"z"), None),
            (Last, None, None),
            (GetMultiple, None, None),
        ],
    );
    assert_eq!(val_of(&r[1]), val_of(&found(b"last")));
    assert_eq!(val_of(&r[2]), Ok(Some(Vec::new())));
}
