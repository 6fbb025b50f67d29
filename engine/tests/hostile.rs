//! Hostile input: a corrupted or crafted data file never makes the reader
//! panic, read out of bounds or loop; it only yields `Error` values.
//!
//! Real environments are written by C LMDB (`prunedb_clmdb`), checked clean
//! by `walk::check`, then mutated many times over (bit flips, byte
//! overwrites, truncation, pages copied over others) and read in full: the
//! page walker, the checker, the free lists, cursors forward and backward
//! over every database, and gets of known keys. Each case runs under
//! `catch_unwind`; a panic or a case that runs too long fails the test with
//! its seed. Crafted cases target each structural check by hand.

use prunedb_engine::ReadTxn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use prunedb_clmdb as c;
use prunedb_engine as e;

use c::gen::{self, GenOptions};
use e::btree::PageSource;
use e::walk::{self, Descend, PageKind, TreeId, Visit};
use e::{CursorOp, DbFlags, Env, Error, Snapshot};

/// Cursor steps allowed per scan: far more than any fixture holds, so a
/// scan ends by reaching the end, yet a hostile tree that reaches one leaf
/// through many parents cannot keep a case busy for long.
const STEP_BUDGET: usize = 20_000;
/// The longest a single case may take before it counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(5);

/// A small deterministic generator (xorshift64*), so the test needs no
/// random crate and every case replays from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A key and its first value.
type Pair = (Vec<u8>, Vec<u8>);

/// Keys known to be in each database of a fixture (by name; `None` is the
/// main database).
struct Known {
    dbs: Vec<(Option<String>, Vec<Pair>)>,
}

/// A C LMDB environment of `gen::random_env` as bytes, with a sample of
/// its keys.
fn fixture(dir: &Path, seed: u64) -> (Vec<u8>, Known) {
    let opts = GenOptions {
        entries: 40,
        big_dups: 200,
        txns: 3,
        ..GenOptions::small()
    };
    let specs = gen::random_env(dir, seed, &opts).expect("generate");
    let env = gen::open_env(dir, &opts, 0).expect("open C env");
    let model = gen::model(&env, &specs).expect("model");
    drop(env);
    let mut dbs = Vec::new();
    for (name, entries) in model {
        let sample = entries
            .iter()
            .step_by(5)
            .map(|(k, vals)| (k.clone(), vals[0].clone()))
            .collect();
        dbs.push((name, sample));
    }
    let bytes = std::fs::read(dir.join("data.mdb")).expect("read data file");
    (bytes, Known { dbs })
}

/// Every cursor movement over one database, bounded by [`STEP_BUDGET`].
fn scan<S: PageSource>(snap: &Snapshot<S>, rec: &e::format::DbRecord, keys: &[(Vec<u8>, Vec<u8>)]) {
    let runs = [
        (CursorOp::First, CursorOp::Next),
        (CursorOp::Last, CursorOp::Prev),
        (CursorOp::First, CursorOp::NextNoDup),
        (CursorOp::Last, CursorOp::PrevNoDup),
    ];
    for (start, step) in runs {
        let mut cur = snap.cursor(rec);
        let mut op = start;
        for _ in 0..STEP_BUDGET {
            match cur.get(op, None, None) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
            let _ = cur.count();
            op = step;
        }
    }
    let dupfixed = rec.flags.contains(DbFlags::DUPFIXED);
    for (k, v) in keys {
        let _ = snap.get(rec, k);
        let mut cur = snap.cursor(rec);
        let _ = cur.get(CursorOp::Set, Some(k), None);
        let _ = cur.get(CursorOp::GetCurrent, None, None);
        let _ = cur.get(CursorOp::LastDup, None, None);
        let _ = cur.get(CursorOp::PrevDup, None, None);
        let _ = cur.get(CursorOp::FirstDup, None, None);
        let _ = cur.get(CursorOp::NextDup, None, None);
        let _ = cur.count();
        for _ in 0..3 {
            let _ = cur.get(CursorOp::Next, None, None);
        }
        let _ = cur.get(CursorOp::SetRange, Some(k), None);
        for _ in 0..3 {
            let _ = cur.get(CursorOp::Prev, None, None);
        }
        let _ = cur.get(CursorOp::SetKey, Some(k), None);
        let _ = cur.get(CursorOp::GetBoth, Some(k), Some(v));
        let _ = cur.get(CursorOp::GetBothRange, Some(k), Some(v));
        if dupfixed {
            let _ = cur.get(CursorOp::GetMultiple, None, None);
            let _ = cur.get(CursorOp::NextMultiple, None, None);
            let _ = cur.get(CursorOp::PrevMultiple, None, None);
        }
    }
}

/// Reads everything a reader can reach in `snap`; returns the reads that
/// failed (with `Error` values, never panics).
fn traverse<S: PageSource>(snap: &Snapshot<S>, known: &Known) -> Vec<String> {
    let mut failures = Vec::new();
    let mut pages = 0u64;
    let mut visitor = |v: &Visit<'_>| {
        pages += v.count;
        Ok(Descend::Into)
    };
    if let Err(e) = walk::walk(snap, &mut visitor) {
        failures.push(format!("walk: {e}"));
    }
    match walk::check(snap) {
        Ok(report) if report.is_ok() => {}
        Ok(report) => failures.push(format!("check: {report}")),
        Err(e) => failures.push(format!("check: {e}")),
    }
    let mut free = 0u64;
    let r = walk::free_records(snap, |_, idl| {
        free += idl.iter().count() as u64;
        Ok(())
    });
    if let Err(e) = r {
        failures.push(format!("free records: {e}"));
    }

    let mut recs = vec![snap.main_db(), snap.free_db()];
    match snap.db_names() {
        Ok(names) => {
            for n in names {
                if let Ok(rec) = snap.named_db(n) {
                    recs.push(rec);
                }
            }
        }
        Err(e) => failures.push(format!("db names: {e}")),
    }
    for (name, keys) in &known.dbs {
        let rec = match name {
            None => Ok(snap.main_db()),
            Some(n) => snap.named_db(n.as_bytes()),
        };
        match rec {
            Ok(rec) => scan(snap, &rec, keys),
            Err(e) => failures.push(format!("open {name:?}: {e}")),
        }
    }
    for rec in &recs {
        scan(snap, rec, &[]);
    }
    failures
}

/// Opens `bytes` as a data file through the memory-mapped environment and
/// reads it through the transaction API.
fn traverse_env(dir: &Path, bytes: &[u8], known: &Known) -> Vec<String> {
    std::fs::write(dir.join("data.mdb"), bytes).expect("write data file");
    let env = match Env::builder()
        .max_dbs(16)
        .flags(e::EnvFlags::NOSYNC)
        .open(dir)
    {
        Ok(env) => env,
        Err(e) => return vec![format!("env open: {e}")],
    };
    let txn = match env.read_txn() {
        Ok(txn) => txn,
        Err(e) => return vec![format!("read txn: {e}")],
    };
    let mut failures = traverse(txn.snapshot(), known);
    for (name, keys) in &known.dbs {
        let db = match txn.open_db(name.as_deref()) {
            Ok(db) => db,
            Err(e) => {
                failures.push(format!("txn open {name:?}: {e}"));
                continue;
            }
        };
        let _ = txn.stat(db);
        for (k, _) in keys.iter().take(8) {
            let _ = txn.get(db, k);
        }
    }
    let _ = txn.db_names();
    drop(txn);
    write_damaged(&env, known);
    failures
}

/// Writes to a damaged environment: puts over existing and new keys and
/// deletes, then a commit. Errors are expected; a panic is a failure.
fn write_damaged(env: &Env, known: &Known) {
    let Ok(mut txn) = env.write_txn() else {
        return;
    };
    for (name, keys) in &known.dbs {
        let Ok(db) = txn.open_db(name.as_deref()) else {
            continue;
        };
        for (i, (k, v)) in keys.iter().take(6).enumerate() {
            let _ = match i % 3 {
                0 => txn.put(db, k, v, e::PutFlags::empty()),
                1 => txn.del(db, k, None),
                _ => txn.put(db, &[k.as_slice(), b"+"].concat(), v, e::PutFlags::empty()),
            };
        }
    }
    let _ = txn.commit();
}

/// Damages `file` in one of several ways chosen by `rng`; returns a label.
fn mutate(file: &mut Vec<u8>, ps: usize, rng: &mut Rng) -> &'static str {
    let npages = (file.len() / ps).max(1);
    match rng.below(8) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(file.len());
                file[i] ^= 1 << rng.below(8);
            }
            "bit flips"
        }
        1 => {
            // Bits in page and node headers, where they matter most.
            for _ in 0..1 + rng.below(4) {
                let page = rng.below(npages) * ps;
                let off = if rng.below(2) == 0 {
                    rng.below(16)
                } else {
                    rng.below(64.min(ps))
                };
                if let Some(b) = file.get_mut(page + off) {
                    *b ^= 1 << rng.below(8);
                }
            }
            "header bit flips"
        }
        2 => {
            let i = rng.below(file.len());
            let n = 1 + rng.below(16);
            let fill = [0u8, 0xff, rng.next() as u8][rng.below(3)];
            for b in file.iter_mut().skip(i).take(n) {
                *b = if rng.below(2) == 0 {
                    fill
                } else {
                    rng.next() as u8
                };
            }
            "byte overwrite"
        }
        3 => {
            let len = if rng.below(2) == 0 {
                rng.below(npages) * ps
            } else {
                rng.below(file.len())
            };
            file.truncate(len);
            "truncate"
        }
        4 => {
            let (a, b) = (rng.below(npages), rng.below(npages));
            let src: Vec<u8> = file[a * ps..(a + 1) * ps].to_vec();
            file[b * ps..(b + 1) * ps].copy_from_slice(&src);
            "page copied over another"
        }
        5 => {
            // A page number planted where page numbers live: branch node
            // children, overflow references, record roots.
            let page = rng.below(npages) * ps;
            let off = 16 + rng.below(ps - 24);
            let val = [
                rng.below(npages) as u64,
                u64::MAX,
                (page / ps) as u64,
                rng.next(),
            ][rng.below(4)];
            let n = [2usize, 4, 8][rng.below(3)];
            file[page + off..page + off + n].copy_from_slice(&val.to_le_bytes()[..n]);
            "page number planted"
        }
        6 => {
            let page = rng.below(npages) * ps;
            let fill = rng.next() as u8;
            file[page + 16..page + ps].fill(fill);
            "page body filled"
        }
        _ => {
            // Swap the two meta pages' txnids' low byte, or damage a meta.
            let m = rng.below(2) * ps;
            let off = 16 + rng.below(136);
            file[m + off] ^= 1 << rng.below(8);
            "meta bit flip"
        }
    }
}

#[test]
fn clean_environments_check_clean() {
    for seed in [1u64, 2, 3] {
        let dir = tempdir(&format!("clean-{seed}"));
        let (bytes, known) = fixture(&dir, seed);
        let snap = Snapshot::from_bytes(&bytes).expect("open from bytes");
        let report = walk::check(&snap).expect("check");
        assert!(report.is_ok(), "seed {seed}: {report}");
        assert!(report.live_pages > 10 && report.trees >= 10, "{report}");
        assert_eq!(traverse(&snap, &known), Vec::<String>::new(), "seed {seed}");
        assert_eq!(
            traverse_env(&dir, &bytes, &known),
            Vec::<String>::new(),
            "seed {seed}"
        );
        // Every page is in exactly one tree or free list.
        assert_eq!(
            report.live_pages + report.free_pages + 2,
            report.last_pgno + 1,
            "{report}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("prunedb-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `case` under `catch_unwind` and a time limit; returns a failure
/// description, if any.
fn guarded(label: &str, case: impl FnOnce()) -> Option<String> {
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(case));
    let took = start.elapsed();
    match r {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Some(format!("{label}: panic: {msg}"))
        }
        Ok(()) if took > CASE_LIMIT => Some(format!("{label}: took {took:?}")),
        Ok(()) => None,
    }
}

#[test]
fn random_damage_never_panics() {
    let cases: u64 = std::env::var("PRUNEDB_HOSTILE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1200);
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut failures = Vec::new();
    let (mut ran, mut opened, mut reported) = (0u64, 0u64, 0u64);
    for fix in 0..2u64 {
        let dir = tempdir(&format!("flip-{fix}"));
        let (clean, known) = fixture(&dir, 100 + fix);
        let ps = Snapshot::from_bytes(&clean)
            .expect("clean")
            .source()
            .page_size();
        for i in 0..cases / 2 {
            if Instant::now() > deadline {
                break;
            }
            let seed = fix << 32 | i;
            let mut rng = Rng::new(seed);
            let mut file = clean.clone();
            let mut labels = Vec::new();
            for _ in 0..1 + rng.below(3) {
                labels.push(mutate(&mut file, ps, &mut rng));
            }
            let label = format!("fixture {fix}, seed {seed} ({})", labels.join(", "));
            // Every tenth case also goes through a file and the memory map.
            let through_env = i % 10 == 0;
            let r = guarded(&label, || {
                if let Ok(snap) = Snapshot::from_bytes(&file) {
                    opened += 1;
                    reported += !traverse(&snap, &known).is_empty() as u64;
                }
                if through_env {
                    traverse_env(&dir, &file, &known);
                }
            });
            failures.extend(r);
            ran += 1;
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    eprintln!("{ran} damaged files read, {opened} opened, {reported} with errors");
    assert!(ran >= 10, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A fixture with a deep main tree, overflow values, dup sub-pages, a dup
/// sub-database and DUPFIXED values in both forms.
fn crafted_fixture(dir: &Path) -> Vec<u8> {
    use c::flags::*;
    let env = c::Env::builder()
        .max_dbs(4)
        .map_size(64 << 20)
        .open(dir)
        .expect("open C env");
    let mut txn = env.begin_rw().expect("txn");
    let main = txn.open_db(None, 0).expect("main");
    // 200-byte keys keep branch pages narrow: a few hundred keys give a
    // tree three levels deep.
    for i in 0..1000u32 {
        txn.put(main, format!("k{i:0199}").as_bytes(), &[i as u8; 20], 0)
            .expect("put");
    }
    for i in 0..3u32 {
        txn.put(main, format!("big{i}").as_bytes(), &vec![7u8; 9000], 0)
            .expect("put big");
    }
    let dups = txn
        .open_db(Some("dups"), MDB_CREATE | MDB_DUPSORT)
        .expect("dups");
    for k in 0..5u8 {
        for v in 0..4u8 {
            txn.put(dups, &[b'a' + k], &[b'v', v], 0).expect("put dup");
        }
    }
    for v in 0..300u32 {
        txn.put(dups, b"many", format!("value{v:05}").as_bytes(), 0)
            .expect("put many");
    }
    let fixed = txn
        .open_db(Some("fixed"), MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED)
        .expect("fixed");
    for v in 0..6u32 {
        txn.put(fixed, b"few", &v.to_le_bytes(), 0)
            .expect("put few");
    }
    for v in 0..2000u32 {
        txn.put(fixed, b"lots", &v.to_le_bytes(), 0)
            .expect("put lots");
    }
    txn.commit().expect("commit");
    drop(env);
    std::fs::read(dir.join("data.mdb")).expect("read")
}

/// What the walker saw of a clean file: each page with its tree and parent.
struct Seen {
    pgno: u64,
    kind: PageKind,
    db: Option<Vec<u8>>,
    dups: bool,
    depth: usize,
}

fn survey(bytes: &[u8]) -> Vec<Seen> {
    let snap = Snapshot::from_bytes(bytes).expect("clean");
    let report = walk::check(&snap).expect("check");
    assert!(report.is_ok(), "{report}");
    let mut out = Vec::new();
    let mut v = |v: &Visit<'_>| {
        out.push(Seen {
            pgno: v.pgno,
            kind: v.kind,
            db: match v.tree.db {
                walk::DbId::Named(n) => Some(n.to_vec()),
                _ => None,
            },
            dups: v.tree.dups_of.is_some(),
            depth: v.depth,
        });
        Ok(Descend::Into)
    };
    walk::walk(&snap, &mut v).expect("walk");
    out
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// The file offset of a leaf node's value found by `pick` in the named
/// database `db`.
fn node_value_offset(
    bytes: &[u8],
    seen: &[Seen],
    db: &[u8],
    pick: impl Fn(&e::format::Node<'_>) -> bool,
) -> usize {
    let snap = Snapshot::from_bytes(bytes).expect("clean");
    for s in seen {
        if s.db.as_deref() != Some(db) || s.dups || s.kind != PageKind::Leaf {
            continue;
        }
        let page = snap.source().tree_page(s.pgno).expect("page");
        for i in 0..page.len() {
            let node = page.node(i).expect("node");
            if pick(&node) {
                return node.value.as_ptr() as usize - bytes.as_ptr() as usize;
            }
        }
    }
    panic!("no such node in {}", String::from_utf8_lossy(db));
}

#[test]
fn crafted_corruption_is_reported() {
    let dir = tempdir("crafted");
    let clean = crafted_fixture(&dir);
    let seen = survey(&clean);
    let snap = Snapshot::from_bytes(&clean).expect("clean");
    let ps = snap.source().page_size();
    let meta_pg = (snap.txnid() & 1) as usize;
    let main_depth = snap.main_db().depth as usize;
    let last = snap.meta().last_pgno;
    assert!(main_depth >= 3, "main depth {main_depth}");
    let known = Known {
        dbs: vec![
            (
                None,
                vec![(format!("k{:0199}", 1).into_bytes(), vec![1; 20])],
            ),
            (Some("dups".into()), vec![(b"a".to_vec(), b"v\0".to_vec())]),
            (Some("fixed".into()), vec![(b"few".to_vec(), vec![0; 4])]),
        ],
    };
    // The newest meta page's main-DB record (meta payload offset 72).
    let main_rec = meta_pg * ps + 16 + 72;
    let main_branches: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.db.is_none() && s.kind == PageKind::Branch && !s.dups)
        .collect();
    let root = main_branches
        .iter()
        .find(|s| s.depth == 0)
        .expect("root")
        .pgno;
    let mid = main_branches
        .iter()
        .find(|s| s.depth == 1)
        .expect("level 1")
        .pgno as usize;
    let leaf = seen
        .iter()
        .find(|s| s.db.is_none() && s.kind == PageKind::Leaf && s.depth == main_depth - 1)
        .expect("leaf")
        .pgno as usize;
    let ovf = seen
        .iter()
        .find(|s| s.kind == PageKind::Overflow)
        .expect("overflow")
        .pgno as usize;
    let subpage = node_value_offset(&clean, &seen, b"dups", |n| {
        n.flags.0 == 0x04 && n.key == b"a"
    });
    let leaf2_subpage = node_value_offset(&clean, &seen, b"fixed", |n| {
        n.flags.0 == 0x04 && n.key == b"few"
    });
    let subdb = node_value_offset(&clean, &seen, b"fixed", |n| {
        n.flags.0 == 0x06 && n.key == b"lots"
    });
    let child0 = move |b: &[u8], page: usize| {
        b[page * ps + usize::from(get_u16(b, page * ps + 16))..].as_ptr() as usize
            - b.as_ptr() as usize
    };

    type Patch = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Patch)> = vec![
        (
            "meta root beyond the last page",
            Box::new(move |b| put_u64(b, main_rec + 40, last + 5)),
        ),
        (
            "meta last page beyond the file",
            Box::new(move |b| put_u64(b, meta_pg * ps + 16 + 120, last * 4)),
        ),
        (
            "page pointing to itself",
            Box::new(move |b| {
                let n = child0(b, mid);
                put_u16(b, n, mid as u16);
                put_u16(b, n + 2, (mid >> 16) as u16);
            }),
        ),
        (
            "branch pointing to an ancestor",
            Box::new(move |b| {
                let n = child0(b, mid);
                put_u16(b, n, root as u16);
                put_u16(b, n + 2, (root >> 16) as u16);
            }),
        ),
        (
            "overflow count huge",
            Box::new(move |b| {
                b[ovf * ps + 12..ovf * ps + 16].copy_from_slice(&u32::MAX.to_le_bytes())
            }),
        ),
        (
            "overflow count zero",
            Box::new(move |b| b[ovf * ps + 12..ovf * ps + 16].fill(0)),
        ),
        (
            "node offset past the page end",
            Box::new(move |b| put_u16(b, leaf * ps + 16, (ps - 2) as u16)),
        ),
        (
            "node offset inside the pointer array",
            Box::new(move |b| put_u16(b, leaf * ps + 16, 16)),
        ),
        (
            "lower > upper",
            Box::new(move |b| {
                let upper = get_u16(b, leaf * ps + 14);
                put_u16(b, leaf * ps + 12, upper + 2);
            }),
        ),
        (
            "upper past the page end",
            Box::new(move |b| put_u16(b, leaf * ps + 14, ps as u16 + 2)),
        ),
        (
            "depth one too many",
            Box::new(move |b| put_u16(b, main_rec + 6, main_depth as u16 + 1)),
        ),
        (
            "depth one too few",
            Box::new(move |b| put_u16(b, main_rec + 6, main_depth as u16 - 1)),
        ),
        (
            "depth huge",
            Box::new(move |b| put_u16(b, main_rec + 6, u16::MAX)),
        ),
        (
            "leaf claims to be a branch",
            Box::new(move |b| put_u16(b, leaf * ps + 10, 0x01)),
        ),
        (
            "LEAF2 sub-page with key size 0",
            Box::new(move |b| put_u16(b, leaf2_subpage + 8, 0)),
        ),
        (
            "LEAF2 sub-page with a huge key size",
            Box::new(move |b| put_u16(b, leaf2_subpage + 8, u16::MAX)),
        ),
        (
            "DUPFIXED sub-database with key size 0",
            Box::new(move |b| b[subdb..subdb + 4].fill(0)),
        ),
        (
            "DUPFIXED sub-database with a huge key size",
            Box::new(move |b| b[subdb..subdb + 4].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "dup sub-database root is a meta page",
            Box::new(move |b| put_u64(b, subdb + 40, 1)),
        ),
        (
            "dup sub-database deeper than the cursor stack",
            Box::new(move |b| put_u16(b, subdb + 6, 40)),
        ),
        (
            "DUPSORT sub-page claiming to be a branch",
            Box::new(move |b| put_u16(b, subpage + 10, 0x51)),
        ),
        (
            "DUPSORT sub-page with lower > upper",
            Box::new(move |b| put_u16(b, subpage + 12, 0xfff0)),
        ),
    ];

    let mut failures = Vec::new();
    for (what, patch) in &cases {
        let mut file = clean.clone();
        patch(&mut file);
        let r = guarded(what, || {
            let snap = match Snapshot::from_bytes(&file) {
                Ok(s) => s,
                // Rejected at open: that is a report too.
                Err(Error::Corrupted { .. }) => return,
                Err(e) => panic!("open failed with {e:?}, not Corrupted"),
            };
            let report = walk::check(&snap).expect("check");
            assert!(!report.is_ok(), "not reported");
            let mut v = |_: &Visit<'_>| Ok(Descend::Into);
            // Pages past the file's end that no tree uses only show up as
            // unaccounted pages in the check; everything else stops a walk.
            match walk::walk(&snap, &mut v) {
                Err(Error::Corrupted { .. }) => {}
                Ok(()) if *what == "meta last page beyond the file" => {}
                r => panic!("walk gave {r:?}"),
            }
            traverse(&snap, &known);
            traverse_env(&dir, &file, &known);
        });
        failures.extend(r);
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn referenced_twice_is_reported_once_per_page() {
    let dir = tempdir("twice");
    let clean = crafted_fixture(&dir);
    let seen = survey(&clean);
    let ps = Snapshot::from_bytes(&clean).unwrap().source().page_size();
    // Point the second child of a level-1 branch at its first child.
    let mid = seen
        .iter()
        .find(|s| s.db.is_none() && s.kind == PageKind::Branch && s.depth == 1)
        .expect("level 1")
        .pgno as usize;
    let mut file = clean.clone();
    let p = mid * ps;
    let n0 = p + usize::from(get_u16(&file, p + 16));
    let n1 = p + usize::from(get_u16(&file, p + 18));
    let child: [u8; 6] = file[n0..n0 + 6].try_into().unwrap();
    let first = u64::from(get_u16(&child, 0)) | u64::from(get_u16(&child, 2)) << 16;
    file[n1..n1 + 6].copy_from_slice(&child);
    let snap = Snapshot::from_bytes(&file).unwrap();
    let report = walk::check(&snap).unwrap();
    let twice: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == walk::ProblemKind::ReferencedTwice)
        .collect();
    assert_eq!(twice.len(), 1, "{report}");
    assert_eq!(twice[0].pgno, first);
    assert_eq!(twice[0].tree, Some(TreeId::MAIN));
    // The page that lost its parent is neither live nor free any more.
    assert!(report
        .problems
        .iter()
        .any(|p| matches!(p.kind, walk::ProblemKind::Unaccounted { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn free_records_match_c_lmdb() {
    let dir = tempdir("free");
    let opts = GenOptions::small();
    gen::random_env(&dir, 7, &opts).expect("generate");
    let env = gen::open_env(&dir, &opts, 0).expect("open C env");
    let txn = env.begin_ro().expect("txn");
    let c_free = gen::model_db(&txn, c::Dbi(0)).expect("C free db");
    drop(txn);
    drop(env);
    let bytes = std::fs::read(dir.join("data.mdb")).expect("read");
    let snap = Snapshot::from_bytes(&bytes).expect("open");
    let mut ours = Vec::new();
    walk::free_records(&snap, |txnid, idl| {
        let mut v = Vec::with_capacity(8 * (idl.len() + 1));
        v.extend_from_slice(&(idl.len() as u64).to_le_bytes());
        for p in idl.iter() {
            v.extend_from_slice(&p.to_le_bytes());
        }
        ours.push((txnid.to_le_bytes().to_vec(), vec![v]));
        Ok(())
    })
    .expect("free records");
    assert!(!ours.is_empty());
    // C's values may carry unused words after the list; compare the lists.
    let trim = |v: &Vec<u8>| {
        let n = u64::from_le_bytes(v[..8].try_into().unwrap()) as usize;
        v[..8 * (n + 1)].to_vec()
    };
    let theirs: Vec<_> = c_free
        .iter()
        .map(|(k, vals)| (k.clone(), vals.iter().map(trim).collect::<Vec<_>>()))
        .collect();
    assert_eq!(ours, theirs);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn skipped_pages_leave_out_their_subtrees() {
    let dir = tempdir("skip");
    let clean = crafted_fixture(&dir);
    let snap = Snapshot::from_bytes(&clean).expect("open");
    let all = survey(&clean);
    // Skip the main root: only the free database's pages remain.
    let root = snap.main_db().root;
    let mut visited = Vec::new();
    let mut v = |v: &Visit<'_>| {
        visited.push(v.pgno);
        Ok(if v.pgno == root {
            Descend::Skip
        } else {
            Descend::Into
        })
    };
    walk::walk(&snap, &mut v).expect("walk");
    let free: Vec<u64> = all
        .iter()
        .filter(|s| s.db.is_none() && s.depth == 0 && s.pgno == snap.free_db().root)
        .map(|s| s.pgno)
        .collect();
    assert_eq!(visited.len(), free.len() + 1, "{visited:?}");
    assert_eq!(visited.last(), Some(&root));
    // Skipping a named database's leaf-holding page leaves out that
    // database but nothing else.
    let named_roots: Vec<u64> = all
        .iter()
        .filter(|s| s.db.is_some() && !s.dups && s.depth == 0)
        .map(|s| s.pgno)
        .collect();
    let skip = named_roots[0];
    let mut n = 0usize;
    let mut v = |v: &Visit<'_>| {
        n += 1;
        Ok(if v.pgno == skip {
            Descend::Skip
        } else {
            Descend::Into
        })
    };
    walk::walk(&snap, &mut v).expect("walk");
    let under: usize = all
        .iter()
        .filter(|s| s.db == all.iter().find(|a| a.pgno == skip).unwrap().db)
        .count();
    assert_eq!(n, all.len() - under + 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// A synthetic data file with 512-byte pages: a main database whose tree is
/// `MAX_DEPTH` levels deep (one node per branch page), holding the record
/// of a DUPSORT named database just as deep, whose only key holds a dup
/// sub-database just as deep. The deepest nesting a walk can meet (the
/// check reports the single-child branch pages, as LMDB's writers never
/// leave any, but walks them all). It is the
/// fuzz corpus seed that `fuzz/src/bin/make_seeds.rs` writes.
fn deepest_file() -> Vec<u8> {
    include_bytes!("../../fuzz/corpus/open_traverse/deepest").to_vec()
}

#[test]
fn deepest_nesting_fits_a_small_stack() {
    let file = deepest_file();
    // The walk keeps branch pages on a heap stack and cursors keep fixed
    // arrays, so even a debug build reads the deepest nesting in 128 KiB
    // (it needs about 64).
    let known = Known {
        dbs: vec![
            (None, vec![(b"db".to_vec(), Vec::new())]),
            (Some("db".into()), vec![(b"k".to_vec(), b"v".to_vec())]),
        ],
    };
    std::thread::Builder::new()
        .stack_size(128 << 10)
        .spawn(move || {
            let snap = Snapshot::from_bytes(&file).expect("open");
            let report = walk::check(&snap).expect("check");
            // One node per branch page is what makes it deep, and what
            // LMDB's writers never leave: each is reported, nothing else.
            let single = walk::ProblemKind::Corrupted("branch page with a single child");
            assert!(report.problems.iter().all(|p| p.kind == single), "{report}");
            assert_eq!(report.problem_count, 3 * (e::format::MAX_DEPTH as u64 - 1));
            assert_eq!(report.trees, 3);
            assert_eq!(report.live_pages, 3 * e::format::MAX_DEPTH as u64);
            let db = snap.named_db(b"db").expect("named db");
            assert_eq!(snap.get(&db, b"k").expect("get"), Some(&b"v"[..]));
            // Everything reads as known; only the check's report differs.
            let differences = traverse(&snap, &known);
            assert!(
                differences.iter().all(|d| d.starts_with("check: ")),
                "{differences:?}"
            );
        })
        .expect("spawn")
        .join()
        .expect("walk of the deepest file");
}

/// The modes the write cases run in: plain, and writing in place in the map.
fn write_modes() -> [e::EnvFlags; 2] {
    [
        e::EnvFlags::NOSYNC,
        e::EnvFlags::NOSYNC | e::EnvFlags::WRITEMAP,
    ]
}

/// `dir/case`, made anew with `bytes` as its only file, the data file.
fn fresh_case(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let case = dir.join("case");
    let _ = std::fs::remove_dir_all(&case);
    std::fs::create_dir_all(&case).expect("case dir");
    std::fs::write(case.join("data.mdb"), bytes).expect("write");
    case
}

/// A small environment by C LMDB with a free-page record (the second
/// commit rewrote pages the first wrote) and a value in an overflow run
/// in the named database `big`.
fn free_list_fixture(dir: &Path) -> Vec<u8> {
    let env = c::Env::builder()
        .max_dbs(2)
        .map_size(16 << 20)
        .open(dir)
        .expect("open C env");
    let mut txn = env.begin_rw().expect("txn");
    let main = txn.open_db(None, 0).expect("main");
    for i in 0..600u32 {
        txn.put(main, format!("key{i:05}").as_bytes(), &[1u8; 40], 0)
            .expect("put");
    }
    let big = txn.open_db(Some("big"), c::flags::MDB_CREATE).expect("big");
    txn.put(big, b"big", &vec![9u8; 10_000], 0)
        .expect("put big");
    txn.commit().expect("commit");
    let mut txn = env.begin_rw().expect("txn");
    let main = txn.open_db(None, 0).expect("main");
    for i in (0..600u32).step_by(7) {
        txn.put(main, format!("key{i:05}").as_bytes(), &[2u8; 40], 0)
            .expect("put");
    }
    txn.commit().expect("commit");
    drop(env);
    std::fs::read(dir.join("data.mdb")).expect("read")
}

/// Writes through damage that only a write meets: a free list naming a
/// page in use or a meta page, an empty branch page, the last possible
/// transaction number, an overflow run claiming billions of pages. Each
/// must end in an error, in both write modes, without a panic (a debug
/// build checks the copy that a free list naming the page being copied
/// would make overlap itself, which under WRITEMAP is undefined behaviour),
/// and within the case time limit.
#[test]
fn writes_meet_crafted_damage_with_errors() {
    let dir = tempdir("write-crafted");
    let clean = free_list_fixture(&dir);
    let seen = survey(&clean);
    let snap = Snapshot::from_bytes(&clean).expect("clean");
    let ps = snap.source().page_size();
    let free_root = snap.free_db().root as usize;
    let main_root = snap.main_db().root;
    assert!(snap.main_db().depth >= 2, "the main root must be a branch");
    // The free record's key (its txnid) and page list (a count, then
    // page numbers). The record of the last commit is not reusable yet,
    // so each case also files it under txnid 1.
    let (key, idl) = {
        let page = snap
            .source()
            .tree_page(free_root as u64)
            .expect("free page");
        let node = page.node(0).expect("free record");
        let at = |b: &[u8]| b.as_ptr() as usize - clean.as_ptr() as usize;
        (at(node.key), at(node.value))
    };
    let big = node_value_offset(&clean, &seen, b"big", |n| n.overflow_pgno().is_some());
    let big_run = u64::from_le_bytes(clean[big..big + 8].try_into().unwrap()) as usize;
    let newest_meta = (snap.txnid() & 1) as usize;

    type Craft = Box<dyn Fn(&mut Vec<u8>)>;
    // Each case with whether the write must fail: damaged counts need not
    // stop it, only keep it from overflowing.
    let cases: Vec<(&str, bool, Craft)> = vec![
        (
            "free list names the main root",
            true,
            Box::new(move |f| {
                put_u64(f, key, 1);
                put_u64(f, idl, 1);
                put_u64(f, idl + 8, main_root);
            }),
        ),
        (
            "free list names a meta page",
            true,
            Box::new(move |f| {
                put_u64(f, key, 1);
                put_u64(f, idl, 1);
                put_u64(f, idl + 8, 1);
            }),
        ),
        (
            "empty branch page",
            true,
            Box::new(move |f| put_u16(f, main_root as usize * ps + 12, 16)),
        ),
        (
            "last transaction number",
            true,
            Box::new(move |f| {
                // u64::MAX is odd: it belongs in meta page 1, whose
                // txnid follows the header, five fields and two records.
                put_u64(f, ps + 16 + 128, u64::MAX);
            }),
        ),
        (
            "overflow run of billions of pages",
            true,
            Box::new(move |f| {
                let at = big_run * ps + 12;
                f[at..at + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
            }),
        ),
        (
            "main database counts at their limit",
            false,
            Box::new(move |f| {
                // The main record's entries and leaf pages in the newest meta.
                let rec = newest_meta * ps + 16 + 72;
                put_u64(f, rec + 16, u64::MAX);
                put_u64(f, rec + 32, u64::MAX);
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (what, must_fail, craft) in &cases {
        let mut bytes = clean.clone();
        craft(&mut bytes);
        for flags in write_modes() {
            let label = format!("{what} ({flags:?})");
            let case_dir = fresh_case(&dir, &bytes);
            let outcome = guarded(&label, || {
                let env = Env::builder()
                    .max_dbs(2)
                    .flags(flags)
                    .open(&case_dir)
                    .expect("the damage is past what opening reads");
                let result = (|| -> e::Result<()> {
                    let mut txn = env.write_txn()?;
                    let main = txn.open_db(None)?;
                    for i in 0..600u32 {
                        txn.put(
                            main,
                            format!("key{i:05}").as_bytes(),
                            b"new",
                            e::PutFlags::empty(),
                        )?;
                    }
                    txn.put(main, b"a new key", b"new", e::PutFlags::empty())?;
                    let big = txn.open_db(Some("big"))?;
                    txn.del(big, b"big", None)?;
                    txn.commit()
                })();
                assert!(
                    !must_fail || matches!(result, Err(Error::Corrupted { .. })),
                    "{label}: {result:?}"
                );
            });
            failures.extend(outcome);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Meta pages that disagree on the page size are refused at open: the
/// newer one would otherwise have readers look for it a page size away,
/// past the end of a short file, where reading the map raises SIGBUS (which
/// would end this test's process).
#[test]
fn meta_pages_disagreeing_on_the_page_size_are_refused() {
    let dir = tempdir("meta-page-size");
    let clean = free_list_fixture(&dir);
    let ps = Snapshot::from_bytes(&clean)
        .expect("clean")
        .source()
        .page_size();
    // Meta page 1 claims 8 times the page size and the newest txnid; the
    // file ends at the end of its second page.
    let mut bytes = clean[..2 * ps].to_vec();
    let meta1 = ps + 16;
    let pad = meta1 + 24;
    let claimed = (ps * 8) as u32;
    bytes[pad..pad + 4].copy_from_slice(&claimed.to_le_bytes());
    put_u64(&mut bytes, meta1 + 128, 1001);
    for flags in write_modes() {
        let case_dir = fresh_case(&dir, &bytes);
        let opened = Env::builder()
            .map_size(16 << 20)
            .flags(flags)
            .open(&case_dir)
            .and_then(|env| env.read_txn().map(|_| ()));
        assert!(
            matches!(opened, Err(Error::Corrupted { .. })),
            "{flags:?}: {opened:?}"
        );
    }
}

/// Emptying a tree whose branch reaches one page from every child (a
/// crafted DAG; nested, it took the walk exponential time) is refused: a
/// page reached twice is an error, not a second walk and a second free.
#[test]
fn emptying_a_tree_that_reaches_a_page_twice_is_refused() {
    let dir = tempdir("reached-twice");
    let clean = free_list_fixture(&dir);
    let snap = Snapshot::from_bytes(&clean).expect("clean");
    let ps = snap.source().page_size();
    let root = snap.main_db().root as usize * ps;
    assert!(snap.main_db().depth >= 2, "the main root must be a branch");
    let mut bytes = clean.clone();
    // Every branch node's child, in the first 6 bytes of its header, made
    // node 0's.
    let nkeys = (get_u16(&bytes, root + 12) as usize - 16) / 2;
    let node = |b: &[u8], i: usize| root + get_u16(b, root + 16 + 2 * i) as usize;
    let first: Vec<u8> = bytes[node(&bytes, 0)..node(&bytes, 0) + 6].to_vec();
    for i in 1..nkeys {
        let at = node(&bytes, i);
        bytes[at..at + 6].copy_from_slice(&first);
    }
    for flags in write_modes() {
        let case_dir = fresh_case(&dir, &bytes);
        let env = Env::builder()
            .max_dbs(2)
            .flags(flags)
            .open(&case_dir)
            .expect("open");
        let mut txn = env.write_txn().expect("write txn");
        let main = txn.open_db(None).expect("main");
        let cleared = txn.clear_db(main);
        assert!(
            matches!(cleared, Err(Error::Corrupted { .. })),
            "{flags:?}: {cleared:?}"
        );
    }
}
