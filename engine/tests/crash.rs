//! Crash safety of the write path.
//!
//! **Kill tests.** A child process (this test binary, re-executed with
//! `PRUNEDB_CRASH_CHILD` set, running only `crash_child_entry`) commits a
//! deterministic sequence of transactions with sync on, and prints
//! `commit <index> <txnid> <checksum>` only after `commit()` has returned.
//! The parent kills it with SIGKILL after a random delay, then checks that
//! (a) our engine opens the environment at some transaction index at least
//! the last one reported, and its contents equal the model after exactly
//! that prefix of the sequence, (b) C LMDB reads the same contents, and
//! (c) `walk::check` finds no problem. The next child continues from
//! whatever the environment holds, so later rounds also exercise writing
//! after a crash (free-list reuse across recoveries).
//!
//! **Torn writes.** A crash after some data pages of a commit reached the
//! disk but before its meta page did (with sync on, LMDB's order guarantees
//! the meta is never ahead of the data). The test takes the file before a
//! commit and the file after it, and builds files holding a random subset
//! of the changed data pages: whole, torn at a sector boundary, random
//! garbage or zeros, the meta page left as before. The previous commit must
//! be intact everywhere, and the next commit must write over the debris.
//!
//! The quick batch runs in the default suite; the long one with
//! `cargo test -p prunedb-engine --test crash -- --ignored`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prunedb_clmdb as c;
use prunedb_engine::walk::{self, Descend, Visit, Walker};
use prunedb_engine::{Database, DbFlags, Env, EnvFlags, Error, Iterate, PutFlags, ReadTxn, RwTxn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Set in the child: `dir;seed;scale`.
const CHILD_VAR: &str = "PRUNEDB_CRASH_CHILD";
/// The main database's key holding the number of workload transactions
/// committed so far.
const INDEX_KEY: &[u8] = b"\0index";
const MAP_SIZE: u64 = 1 << 30;
const PLAIN: &str = "plain";
const DUPS: &str = "dups";

/// Held by each test that opens environments. Our lock file marks this
/// process alive with an open-file-description lock at its pid, and a child
/// forked by a kill test holds a copy of that description until it execs:
/// C LMDB, which takes a classic lock at the same offset, would then fail
/// `begin_ro` with EAGAIN. The tests take turns instead.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// The workload: a deterministic function of (seed, index), independent of
// the database's contents, so the child needs no state to resume and the
// parent can replay any prefix.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Db {
    Plain,
    Dups,
}

#[derive(Clone, Debug)]
enum Op {
    Put(Db, Vec<u8>, Vec<u8>),
    Del(Db, Vec<u8>, Option<Vec<u8>>),
}

fn txn_ops(seed: u64, index: u64, scale: usize) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let n = rng.gen_range(1..=scale);
    // A key space small enough that keys are overwritten and deleted often.
    let key_space = 40 * scale as u32;
    let key = |rng: &mut StdRng| {
        let k: u32 = rng.gen_range(0..key_space);
        // Varied key lengths, sharing prefixes.
        let mut v = format!("k{k:08}").into_bytes();
        v.extend(std::iter::repeat_n(b'x', (k % 7) as usize * 9));
        v
    };
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let roll: u32 = rng.gen_range(0..100);
        let op = match roll {
            0..=44 => {
                let len = if rng.gen_ratio(1, 25) {
                    // An overflow run of one to four pages.
                    rng.gen_range(2_100..14_000)
                } else {
                    rng.gen_range(0..300)
                };
                let mut v = vec![0u8; len];
                rng.fill(&mut v[..]);
                Op::Put(Db::Plain, key(&mut rng), v)
            }
            45..=64 => Op::Del(Db::Plain, key(&mut rng), None),
            65..=89 => {
                // Few dup keys, so some grow past a sub-page into a
                // sub-database and shrink back.
                let k = format!("d{:04}", rng.gen_range(0..(scale as u32 / 4).max(4))).into_bytes();
                let v = format!("v{:06}", rng.gen_range(0..3000u32)).into_bytes();
                Op::Put(Db::Dups, k, v)
            }
            90..=97 => {
                let k = format!("d{:04}", rng.gen_range(0..(scale as u32 / 4).max(4))).into_bytes();
                let v = format!("v{:06}", rng.gen_range(0..3000u32)).into_bytes();
                Op::Del(Db::Dups, k, Some(v))
            }
            _ => {
                let k = format!("d{:04}", rng.gen_range(0..(scale as u32 / 4).max(4))).into_bytes();
                Op::Del(Db::Dups, k, None)
            }
        };
        ops.push(op);
    }
    ops
}

/// FNV-1a over the operations: what the child reports for each commit.
fn checksum(ops: &[Op]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        // Length-delimit each field.
        h ^= b.len() as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    };
    for op in ops {
        match op {
            Op::Put(db, k, v) => {
                eat(&[1, *db as u8]);
                eat(k);
                eat(v);
            }
            Op::Del(db, k, v) => {
                eat(&[2, *db as u8]);
                eat(k);
                eat(v.as_deref().unwrap_or(b"-"));
            }
        }
    }
    h
}

/// The expected contents after a prefix of the workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    index: u64,
    plain: BTreeMap<Vec<u8>, Vec<u8>>,
    dups: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>,
}

impl Model {
    fn apply(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Put(Db::Plain, k, v) => {
                    self.plain.insert(k.clone(), v.clone());
                }
                Op::Put(Db::Dups, k, v) => {
                    self.dups.entry(k.clone()).or_default().insert(v.clone());
                }
                Op::Del(Db::Plain, k, _) => {
                    self.plain.remove(k);
                }
                Op::Del(Db::Dups, k, None) => {
                    self.dups.remove(k);
                }
                Op::Del(Db::Dups, k, Some(v)) => {
                    if let Some(set) = self.dups.get_mut(k) {
                        set.remove(v);
                        if set.is_empty() {
                            self.dups.remove(k);
                        }
                    }
                }
            }
        }
        self.index += 1;
    }

    fn advance_to(&mut self, seed: u64, scale: usize, index: u64) {
        assert!(index >= self.index, "the environment went back in time");
        while self.index < index {
            let ops = txn_ops(seed, self.index + 1, scale);
            self.apply(&ops);
        }
    }
}

/// Runs workload transaction `index` in `txn`.
fn run_ops(txn: &mut RwTxn<'_>, index: u64, ops: &[Op]) {
    let plain = txn.create_db(Some(PLAIN), DbFlags::empty()).unwrap();
    let dups = txn.create_db(Some(DUPS), DbFlags::DUPSORT).unwrap();
    for op in ops {
        let r = match op {
            Op::Put(db, k, v) => {
                let d = if *db == Db::Plain { plain } else { dups };
                txn.put(d, k, v, PutFlags::empty())
            }
            Op::Del(db, k, v) => {
                let d = if *db == Db::Plain { plain } else { dups };
                txn.del(d, k, v.as_deref())
            }
        };
        match r {
            Ok(()) | Err(Error::NotFound) => {}
            Err(e) => panic!("txn {index}: {op:?}: {e}"),
        }
    }
    txn.put(
        Database::MAIN,
        INDEX_KEY,
        &index.to_le_bytes(),
        PutFlags::empty(),
    )
    .unwrap();
}

fn stored_index<T: ReadTxn>(txn: &T) -> u64 {
    match txn.get(Database::MAIN, INDEX_KEY).unwrap() {
        Some(v) => u64::from_le_bytes(v.try_into().expect("8-byte index")),
        None => 0,
    }
}

fn open_rw(dir: &Path, flags: EnvFlags) -> Env {
    Env::builder()
        .max_dbs(4)
        .map_size(MAP_SIZE)
        .flags(flags)
        .open(dir)
        .unwrap()
}

/// Commits the next workload transaction; returns (index, txnid, checksum).
fn commit_next(env: &Env, seed: u64, scale: usize) -> (u64, u64, u64) {
    let mut txn = env.write_txn().unwrap();
    let index = stored_index(&txn) + 1;
    let ops = txn_ops(seed, index, scale);
    run_ops(&mut txn, index, &ops);
    let id = txn.id();
    txn.commit().unwrap();
    (index, id, checksum(&ops))
}

// ---------------------------------------------------------------------------
// The child.

/// The child's entry point: a no-op unless re-executed by a kill test.
#[test]
fn crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_VAR) else {
        return;
    };
    let mut parts = spec.split(';');
    let dir = PathBuf::from(parts.next().unwrap());
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let scale: usize = parts.next().unwrap().parse().unwrap();
    let flags = EnvFlags(parts.next().unwrap().parse().unwrap());
    let env = open_rw(&dir, flags);
    let mut out = std::io::stdout();
    loop {
        let (index, id, sum) = commit_next(&env, seed, scale);
        // One write per line: a pipe write this short is atomic, so the
        // parent never sees a partial report.
        let line = format!("commit {index} {id} {sum:016x}\n");
        out.write_all(line.as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Reading an environment back, three ways.

type Contents = (u64, Vec<(Vec<u8>, Vec<u8>)>, Vec<(Vec<u8>, Vec<Vec<u8>>)>);

fn model_contents(m: &Model) -> Contents {
    (
        m.index,
        m.plain
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        m.dups
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect(),
    )
}

fn group(items: impl Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut out: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for (k, v) in items {
        match out.last_mut() {
            Some((lk, vals)) if *lk == k => vals.push(v),
            _ => out.push((k, vec![v])),
        }
    }
    out
}

/// Contents as our engine reads them, after `walk::check` of the snapshot.
/// Returns the contents and the snapshot's txnid.
fn read_ours(dir: &Path) -> (Contents, u64) {
    let env = Env::builder()
        .max_dbs(4)
        .flags(EnvFlags::RDONLY)
        .open(dir)
        .unwrap();
    let txn = env.read_txn().unwrap();
    let report = walk::check(txn.snapshot()).unwrap();
    assert!(report.is_ok(), "integrity check failed:\n{report}");
    let index = stored_index(&txn);
    let collect = |name: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        match txn.open_db(Some(name)) {
            Ok(db) => txn
                .iter(db)
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect(),
            Err(Error::NotFound) => Vec::new(),
            Err(e) => panic!("open {name}: {e}"),
        }
    };
    let plain = collect(PLAIN);
    let dups = group(collect(DUPS).into_iter());
    ((index, plain, dups), txn.id())
}

/// Contents as C LMDB reads them.
fn read_c(dir: &Path) -> Contents {
    let env = c::Env::builder()
        .max_dbs(4)
        .map_size(MAP_SIZE as usize)
        .open(dir)
        .unwrap();
    let txn = env.begin_ro().unwrap();
    let main = txn.open_db(None, 0).unwrap();
    let index = txn
        .get(main, INDEX_KEY)
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
    let collect = |name: &str, flags: u32| -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        match txn.open_db(Some(name), flags) {
            Ok(dbi) => c::gen::model_db(&txn, dbi).unwrap(),
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => panic!("C open {name}: {e}"),
        }
    };
    let plain = collect(PLAIN, 0)
        .into_iter()
        .map(|(k, mut v)| {
            assert_eq!(v.len(), 1);
            (k, v.pop().unwrap())
        })
        .collect();
    let dups = collect(DUPS, c::flags::MDB_DUPSORT);
    (index, plain, dups)
}

/// Checks the environment in `dir` against the model, advancing the model
/// to whatever prefix the environment holds, which must be at least
/// `min_index`. Returns the txnid of the environment's snapshot.
fn verify(dir: &Path, model: &mut Model, seed: u64, scale: usize, min_index: u64) -> u64 {
    let (ours, txnid) = read_ours(dir);
    let index = ours.0;
    assert!(
        index >= min_index,
        "txn {min_index} was reported committed, the environment holds {index}"
    );
    model.advance_to(seed, scale, index);
    let want = model_contents(model);
    assert!(
        ours == want,
        "our engine's contents differ from the model at {index}"
    );
    let theirs = read_c(dir);
    assert!(
        theirs == want,
        "C LMDB's contents differ from the model at {index}"
    );
    txnid
}

// ---------------------------------------------------------------------------
// Kill tests.

/// One child run on an environment opened with `flags`, killed after
/// `delay`. Returns the reports it printed: (index, txnid, checksum).
fn run_child(
    dir: &Path,
    flags: EnvFlags,
    seed: u64,
    scale: usize,
    delay: Duration,
) -> Vec<(u64, u64, u64)> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "crash_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_VAR,
            format!("{};{seed};{scale};{}", dir.display(), flags.0),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("child exited on its own ({status}):\n{err}");
        }
        std::thread::sleep(Duration::from_millis(1).min(deadline - Instant::now()));
    }
    // `Child::kill` sends SIGKILL: no destructor, no flush, no unwinding.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut reports = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest may print its "test ... " prefix on the first line.
        let Some(at) = line.find("commit ") else {
            continue;
        };
        let rest = &line[at + "commit ".len()..];
        let f: Vec<&str> = rest.split(' ').collect();
        if f.len() != 3 || f[2].len() != 16 {
            continue;
        }
        reports.push((
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            u64::from_str_radix(f[2], 16).unwrap(),
        ));
    }
    reports
}

struct KillStats {
    kills: usize,
    reported: u64,
    found: u64,
    unreported_found: u64,
}

/// What one batch of kills runs: the child's environment flags, its
/// workload, and how many kills at most how long after the start.
struct Batch {
    flags: EnvFlags,
    seed: u64,
    scale: usize,
    kills: usize,
    max_delay_ms: u64,
}

fn kill_batch(name: &str, b: Batch) -> KillStats {
    let Batch {
        flags,
        seed,
        scale,
        kills,
        max_delay_ms,
    } = b;
    let dir = scratch(name);
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let mut model = Model::default();
    let mut last_reported = 0u64;
    let mut stats = KillStats {
        kills: 0,
        reported: 0,
        found: 0,
        unreported_found: 0,
    };
    for round in 0..kills {
        // Some kills land while the environment is being opened or during
        // the first commit, most in the middle of a run of commits.
        let delay = Duration::from_millis(rng.gen_range(1..=max_delay_ms));
        let reports = run_child(&dir, flags, seed, scale, delay);
        for w in reports.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "round {round}: reports skip a txn");
            assert_eq!(w[1].1, w[0].1 + 1, "round {round}: txnids skip");
        }
        if let Some(first) = reports.first() {
            assert_eq!(first.0, last_reported + 1, "round {round}: first report");
        }
        // The child's view of each transaction must be the model's.
        for &(index, _, sum) in &reports {
            assert_eq!(
                sum,
                checksum(&txn_ops(seed, index, scale)),
                "round {round}: checksum of txn {index}"
            );
        }
        let min = reports.last().map_or(last_reported, |r| r.0);
        let txnid = verify(&dir, &mut model, seed, scale, min);
        if let Some(&(_, id, _)) = reports.last() {
            assert!(
                txnid >= id,
                "round {round}: txnid {id} reported, {txnid} found"
            );
        }
        stats.kills += 1;
        stats.reported += reports.len() as u64;
        stats.unreported_found += model.index - min;
        stats.found = model.index;
        last_reported = model.index;
    }
    stats
}

#[test]
fn kill_during_commits_quick() {
    quick_batch("quick", EnvFlags::empty(), 0x5eed_0001, 20);
}

/// The same with pages written in place in a writable map.
#[test]
fn kill_during_commits_quick_writemap() {
    quick_batch("quick-writemap", EnvFlags::WRITEMAP, 0x5eed_0002, 12);
}

fn quick_batch(name: &str, flags: EnvFlags, seed: u64, kills: usize) {
    let _serial = serial();
    let t = Instant::now();
    let s = kill_batch(
        name,
        Batch {
            flags,
            seed,
            scale: 24,
            kills,
            max_delay_ms: 300,
        },
    );
    eprintln!(
        "{} kills, {} commits reported, {} found, {} found but unreported, {:.1?}",
        s.kills,
        s.reported,
        s.found,
        s.unreported_found,
        t.elapsed()
    );
    assert!(s.found > 0, "no transaction was ever committed");
}

/// The long batch: `cargo test -p prunedb-engine --test crash -- --ignored`.
#[test]
#[ignore]
fn kill_during_commits_long() {
    let _serial = serial();
    let t = Instant::now();
    let runs = [
        (EnvFlags::empty(), 24, 150, 400),
        (EnvFlags::empty(), 200, 100, 800),
        (EnvFlags::empty(), 4, 150, 100),
        (EnvFlags::WRITEMAP, 24, 150, 400),
        (EnvFlags::WRITEMAP, 200, 100, 800),
    ];
    for (i, (flags, scale, kills, delay)) in runs.into_iter().enumerate() {
        let s = kill_batch(
            &format!("long-{i}"),
            Batch {
                flags,
                seed: 0x5eed_1000 + i as u64,
                scale,
                kills,
                max_delay_ms: delay,
            },
        );
        eprintln!(
            "scale {scale}: {} kills, {} commits reported, {} found, {} found but unreported, {:.1?}",
            s.kills,
            s.reported,
            s.found,
            s.unreported_found,
            t.elapsed()
        );
        assert!(s.found > 0);
    }
}

// ---------------------------------------------------------------------------
// Torn writes.

/// What reached the disk of one page of the interrupted commit.
#[derive(Clone, Copy, Debug)]
enum Debris {
    Whole,
    /// The first `n` 512-byte sectors of the new page, the rest as before.
    Torn(usize),
    Garbage,
    Zeros,
    Missing,
}

fn page_of(file: &[u8], pgno: usize, ps: usize) -> Option<&[u8]> {
    file.get(pgno * ps..(pgno + 1) * ps)
}

#[test]
fn torn_commit_keeps_previous_commit() {
    let _serial = serial();
    let seed = 0x7042_0001;
    let scale = 40;
    let dir = scratch("torn-base");
    let ps;
    let mut model = Model::default();
    {
        let env = open_rw(&dir, EnvFlags::empty());
        ps = env.page_size();
        for _ in 0..60 {
            commit_next(&env, seed, scale);
        }
    }
    let data = |d: &Path| d.join("data.mdb");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut trials = 0;
    for step in 0..12 {
        // The file at commit N, and after commit N+1.
        let before = std::fs::read(data(&dir)).unwrap();
        let (base_txnid, live) = {
            let env = Env::builder()
                .max_dbs(4)
                .flags(EnvFlags::RDONLY)
                .open(&dir)
                .unwrap();
            let txn = env.read_txn().unwrap();
            let mut w = Walker::new(txn.snapshot());
            w.walk(&mut |_: &Visit<'_>| Ok(Descend::Into)).unwrap();
            (txn.id(), w.live().clone())
        };
        verify(&dir, &mut model, seed, scale, 0);
        {
            let env = open_rw(&dir, EnvFlags::empty());
            commit_next(&env, seed, scale);
        }
        let after = std::fs::read(data(&dir)).unwrap();
        let meta_slot = ((base_txnid + 1) & 1) as usize;
        let npages = after.len().div_ceil(ps);
        let mut changed = Vec::new();
        for pgno in 0..npages {
            let (a, b) = (page_of(&before, pgno, ps), page_of(&after, pgno, ps));
            if a == b {
                continue;
            }
            if pgno < 2 {
                assert_eq!(pgno, meta_slot, "commit wrote the current meta page");
                continue;
            }
            // Copy-on-write: the commit never writes a page the previous
            // snapshot can read.
            assert!(
                !live.contains(pgno as u64),
                "step {step}: commit overwrote page {pgno}, live in txn {base_txnid}"
            );
            changed.push(pgno);
        }
        assert!(!changed.is_empty());
        for _ in 0..6 {
            trials += 1;
            let tdir = scratch("torn-trial");
            let mut file = before.clone();
            for &pgno in &changed {
                let debris = match rng.gen_range(0..5) {
                    0 => Debris::Whole,
                    1 => Debris::Torn(rng.gen_range(1..ps / 512)),
                    2 => Debris::Garbage,
                    3 => Debris::Zeros,
                    _ => Debris::Missing,
                };
                let new = page_of(&after, pgno, ps).unwrap();
                let end = (pgno + 1) * ps;
                if file.len() < end {
                    if matches!(debris, Debris::Missing) {
                        continue;
                    }
                    // The file grew: the region in between reads as zeros.
                    file.resize(end, 0);
                }
                let page = &mut file[pgno * ps..end];
                match debris {
                    Debris::Whole => page.copy_from_slice(new),
                    Debris::Torn(n) => page[..n * 512].copy_from_slice(&new[..n * 512]),
                    Debris::Garbage => rng.fill(page),
                    Debris::Zeros => page.fill(0),
                    Debris::Missing => {}
                }
            }
            std::fs::write(data(&tdir), &file).unwrap();
            // The previous commit, intact for us and for C.
            let mut m = model.clone();
            let txnid = verify(&tdir, &mut m, seed, scale, model.index);
            assert_eq!(txnid, base_txnid);
            assert_eq!(m.index, model.index, "the interrupted commit is visible");
            // The next writer writes over the debris.
            {
                let env = open_rw(&tdir, EnvFlags::empty());
                commit_next(&env, seed, scale);
            }
            verify(&tdir, &mut m, seed, scale, model.index + 1);
        }
    }
    eprintln!("{trials} torn commits recovered");
}
