//! One live environment shared by processes of this engine and of C LMDB
//! 0.9.24 through LMDB's lock-file protocol, and by threads of one process.
//!
//! The data is an account table: `ACCOUNTS` keys `a/NNN` holding u64
//! balances that always add up to `TOTAL`, plus `s/seq`, which every commit
//! increments, and filler keys `f/xxxxxxxx` whose values (8 bytes to 20 KiB,
//! the big ones on overflow pages) check themselves. Each write transaction
//! moves amounts between random accounts and inserts and deletes fillers, so
//! pages split, merge, overflow and are reused from the free list. Every
//! commit adds exactly 1 to the txnid and to `s/seq`, so a reader checks that
//! `s/seq == txnid - 1`: a snapshot whose meta page and trees came from
//! different commits fails that, and a torn tree fails the sum, the count or
//! a filler's self-check.
//!
//! Child processes are this test binary re-executed with `PRUNEDB_MP_ROLE`
//! set, running only `child_entry`; each child uses one library (ours or C),
//! since both take the per-process liveness lock at the same byte of the
//! lock file and so cannot both hold reader slots in one process. The
//! parent keeps the environment open with our engine throughout, so no
//! child is the sole opener that would reset the lock file (and its
//! mutexes) under the others.
//!
//! - `c_writer_our_readers`, `our_writer_c_readers`: thousands of commits
//!   by one writer while readers of the other library check every snapshot.
//! - `mixed_writers_take_turns`: a C writer and our writer commit
//!   concurrently, serialised by the shared writer mutex (no commit is
//!   lost, and their txnids interleave), readers of both kinds check.
//! - `killed_writer_is_recovered`: a writer (ours or C) killed with SIGKILL
//!   while holding the writer mutex with uncommitted changes; the next
//!   writer (ours or C, all four pairs, plus a waiter already blocked in
//!   this process) takes over the mutex, the dead changes are absent and the
//!   integrity check passes.
//! - `stale_txnid_after_dead_writer`: a writer that died between writing its
//!   meta page and publishing `mti_txnid` leaves the lock file one commit
//!   behind; the next writer of ours must publish the newest meta's txnid,
//!   as C's recovery does, or a later C writer starts from the older meta
//!   and overwrites the newest commit.
//! - `dead_readers_are_reclaimed`: readers (ours and C) killed while holding
//!   read transactions keep their snapshots' pages from reuse until
//!   `reader_check` (ours, then C's `mdb_reader_check`) frees their slots;
//!   after that the writer reuses those pages.
//! - `pinned_reader_survives_churn`: an `Env::pin` in a child keeps its
//!   snapshot byte-identical while C and our writers churn; while pinned
//!   the file grows, after release it stops growing.
//! - `threads_share_one_env`: reader threads and a writer thread on clones
//!   of one `Env`; readers keep going while a write txn is held for a second.
//!
//! Default suite: `cargo test -p prunedb-engine --test multiprocess`.
//! Long variants (ten times the transactions and more readers):
//! `cargo test --release -p prunedb-engine --test multiprocess -- --ignored`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use prunedb_clmdb as c;
use prunedb_engine::walk::{self, Descend, Visit};
use prunedb_engine::{CursorOp, Database, Env, EnvFlags, Iterate, PutFlags, ReadTxn, RwTxn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ACCOUNTS: u32 = 100;
const INITIAL: u64 = 1_000_000;
const TOTAL: u64 = ACCOUNTS as u64 * INITIAL;
/// The filler count the writers steer towards.
const FILL_TARGET: u64 = 300;
const SEQ_KEY: &[u8] = b"s/seq";
const MAP_SIZE: u64 = 1 << 30;

/// Set in a child: its role; the other two give its directory and arguments.
const ROLE_VAR: &str = "PRUNEDB_MP_ROLE";
const DIR_VAR: &str = "PRUNEDB_MP_DIR";
const ARGS_VAR: &str = "PRUNEDB_MP_ARGS";
/// Children print their reports after this tag (the test harness may have
/// printed `test child_entry ... ` on the same line).
const TAG: &str = "@@mp ";
/// Created in the environment's directory to stop looping children.
const STOP: &str = "stop";
/// Created to start the writers.
const GO: &str = "go";
/// Created to make the pinning child drop its pin.
const RELEASE: &str = "release";

/// The tests take turns: each already runs several processes on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mp-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ours,
    C,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::C => "c",
        }
    }
    fn parse(s: &str) -> Kind {
        match s {
            "ours" => Kind::Ours,
            "c" => Kind::C,
            _ => panic!("unknown kind {s}"),
        }
    }
}

fn open_ours(dir: &Path) -> Env {
    open_ours_with(dir, EnvFlags::NOSYNC)
}

fn open_ours_with(dir: &Path, flags: EnvFlags) -> Env {
    Env::builder()
        .map_size(MAP_SIZE)
        .flags(flags)
        .open(dir)
        .unwrap()
}

fn open_c(dir: &Path) -> c::Env {
    let env = c::Env::builder()
        .map_size(MAP_SIZE as usize)
        .flags(c::flags::MDB_NOSYNC)
        .open(dir)
        .unwrap();
    // C sets the main database's comparator in `mdb_dbi_open`; a handle
    // opened in a read txn stays valid for the environment once committed.
    let t = env.begin_ro().unwrap();
    assert_eq!(t.open_db(None, 0).unwrap(), c::Dbi::MAIN);
    t.commit().unwrap();
    env
}

// ---------------------------------------------------------------------------
// The data.

fn acct(i: u32) -> Vec<u8> {
    format!("a/{i:03}").into_bytes()
}

fn filler_key(n: u32) -> Vec<u8> {
    format!("f/{n:08x}").into_bytes()
}

fn u64_of(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().expect("an 8-byte value"))
}

fn filler_byte(stamp: u32, i: usize) -> u8 {
    ((stamp as u64).wrapping_mul(0x9E37_79B9) ^ (i as u64).wrapping_mul(0x85EB_CA6B) >> 5) as u8
}

/// A filler value: its length and a random stamp, then bytes derived from
/// both, so a reader can tell a torn or reused page from the real value.
fn filler_value(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.gen_range(0..100) {
        0..=69 => rng.gen_range(8..300),
        70..=94 => rng.gen_range(300..2500),
        _ => rng.gen_range(4000..20000),
    };
    let stamp: u32 = rng.gen();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.extend_from_slice(&stamp.to_le_bytes());
    v.extend((8..len).map(|i| filler_byte(stamp, i)));
    v
}

fn check_filler(k: &[u8], v: &[u8], deep: bool) -> Result<(), String> {
    let bad = |what: &str| Err(format!("filler {} ({} bytes): {what}", show(k), v.len()));
    if k.len() != 10 || v.len() < 8 {
        return bad("malformed");
    }
    let len = u32::from_le_bytes(v[0..4].try_into().unwrap()) as usize;
    let stamp = u32::from_le_bytes(v[4..8].try_into().unwrap());
    if len != v.len() {
        return bad("length");
    }
    // A spot check of both ends and one byte in 64 keeps readers fast; a
    // deep check looks at every byte.
    let step = if deep { 1 } else { 64 };
    let ends = (8..len.min(24)).chain(len.saturating_sub(16).max(8)..len);
    for i in ends.chain((8..len).step_by(step)) {
        if v[i] != filler_byte(stamp, i) {
            return bad(&format!("byte {i}"));
        }
    }
    Ok(())
}

fn show(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

/// What a reader learns from a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    txnid: u64,
    seq: u64,
    fillers: u64,
}

/// Checks a whole snapshot given in key order: the accounts' count and sum,
/// `s/seq == txnid - 1` (`exact`) or `>=` (see [`seq_matches`]), the
/// fillers' self-checks, and the key order.
fn check_snapshot<'a>(
    txnid: u64,
    entries: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    deep: bool,
    exact: bool,
) -> Result<Seen, String> {
    let mut accounts = 0u32;
    let mut sum = 0u64;
    let mut seq = None;
    let mut fillers = 0;
    let mut prev: Option<&[u8]> = None;
    for (k, v) in entries {
        if prev.is_some_and(|p| p >= k) {
            return Err(format!(
                "key order: {} after {}",
                show(k),
                show(prev.unwrap())
            ));
        }
        prev = Some(k);
        if k.starts_with(b"a/") {
            if v.len() != 8 {
                return Err(format!("account {} holds {} bytes", show(k), v.len()));
            }
            accounts += 1;
            sum += u64_of(v);
        } else if k.starts_with(b"f/") {
            check_filler(k, v, deep)?;
            fillers += 1;
        } else if k == SEQ_KEY {
            seq = Some(u64_of(v));
        }
    }
    let seq = seq.ok_or("no s/seq")?;
    if accounts != ACCOUNTS || sum != TOTAL {
        return Err(format!("txn {txnid}: {accounts} accounts, sum {sum}"));
    }
    seq_matches(txnid, seq, exact)?;
    Ok(Seen {
        txnid,
        seq,
        fillers,
    })
}

/// Whether a snapshot's `s/seq` fits its txnid. Our readers take the meta
/// page `mti_txnid` names and check it still holds that txnid, so the two
/// always match (`exact`). C LMDB 0.9.24's `mdb_txn_renew0` reads
/// `mti_txnid`, then copies `me_metas[txnid & 1]` without checking the
/// page's own txnid: a reader descheduled in between while two or more
/// commits land copies a later commit's roots under the older txnid (its
/// slot, being older, still protects those pages). So a C reader's tree can
/// be newer than its txnid, never older.
fn seq_matches(txnid: u64, seq: u64, exact: bool) -> Result<(), String> {
    if seq + 1 == txnid || (!exact && seq + 1 > txnid) {
        Ok(())
    } else {
        Err(format!(
            "txn {txnid} holds s/seq {seq}: meta and tree disagree"
        ))
    }
}

fn check_ours(txn: &impl ReadTxn, txnid: u64, deep: bool) -> Result<Seen, String> {
    let entries: Vec<(&[u8], &[u8])> = txn
        .iter(Database::MAIN)
        .map_err(|e| format!("iter: {e:?}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("txn {txnid}: {e:?}"))?;
    check_snapshot(txnid, entries.into_iter(), deep, true)
}

fn check_c(txn: &c::Txn<'_>, deep: bool) -> Result<Seen, String> {
    let cur = txn.cursor(c::Dbi::MAIN).map_err(|e| format!("{e:?}"))?;
    let mut entries = Vec::new();
    let mut op = c::CursorOp::First;
    while let Some(kv) = cur.get(op, None, None).map_err(|e| format!("{e:?}"))? {
        entries.push(kv);
        op = c::CursorOp::Next;
    }
    check_snapshot(txn.id() as u64, entries.into_iter(), deep, false)
}

/// A reader's progress check: snapshots never go back in time.
fn advance(last: &mut Seen, now: Seen) -> Result<(), String> {
    if now.txnid < last.txnid || now.seq < last.seq {
        return Err(format!("went back: {last:?} then {now:?}"));
    }
    *last = now;
    Ok(())
}

// ---------------------------------------------------------------------------
// The workload, over either library's write transaction.

trait WTxn {
    fn id(&self) -> u64;
    fn get(&self, k: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, k: &[u8], v: &[u8]);
    fn del(&mut self, k: &[u8]);
    /// The first key at or after `k`.
    fn seek(&self, k: &[u8]) -> Option<Vec<u8>>;
    fn entries(&self) -> u64;
}

impl WTxn for RwTxn<'_> {
    fn id(&self) -> u64 {
        RwTxn::id(self)
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        ReadTxn::get(self, Database::MAIN, k)
            .unwrap()
            .map(<[u8]>::to_vec)
    }
    fn put(&mut self, k: &[u8], v: &[u8]) {
        RwTxn::put(self, Database::MAIN, k, v, PutFlags::empty()).unwrap()
    }
    fn del(&mut self, k: &[u8]) {
        RwTxn::del(self, Database::MAIN, k, None).unwrap()
    }
    fn seek(&self, k: &[u8]) -> Option<Vec<u8>> {
        let mut cur = ReadTxn::cursor(self, Database::MAIN).unwrap();
        let got = cur.get(CursorOp::SetRange, Some(k), None).unwrap();
        got.map(|(k, _)| k.to_vec())
    }
    fn entries(&self) -> u64 {
        ReadTxn::stat(self, Database::MAIN).unwrap().entries
    }
}

impl WTxn for c::RwTxn<'_> {
    fn id(&self) -> u64 {
        c::Txn::id(self) as u64
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        c::Txn::get(self, c::Dbi::MAIN, k)
            .unwrap()
            .map(<[u8]>::to_vec)
    }
    fn put(&mut self, k: &[u8], v: &[u8]) {
        c::RwTxn::put(self, c::Dbi::MAIN, k, v, 0).unwrap()
    }
    fn del(&mut self, k: &[u8]) {
        c::RwTxn::del(self, c::Dbi::MAIN, k, None).unwrap()
    }
    fn seek(&self, k: &[u8]) -> Option<Vec<u8>> {
        let cur = c::Txn::cursor(self, c::Dbi::MAIN).unwrap();
        let got = cur.get(c::CursorOp::SetRange, Some(k), None).unwrap();
        got.map(|(k, _)| k.to_vec())
    }
    fn entries(&self) -> u64 {
        c::Txn::stat(self, c::Dbi::MAIN).unwrap().entries as u64
    }
}

/// Every commit goes through here: `s/seq` must stay `txnid - 1`.
fn bump_seq<T: WTxn + ?Sized>(t: &mut T) {
    let seq = t.get(SEQ_KEY).map_or(0, |v| u64_of(&v) + 1);
    assert_eq!(seq, t.id() - 1, "s/seq out of step with the txnid");
    t.put(SEQ_KEY, &seq.to_le_bytes());
}

/// One transaction of the workload (not committed).
fn workload<T: WTxn + ?Sized>(t: &mut T, rng: &mut StdRng) {
    let n = rng.gen_range(1..=4);
    transfers(t, rng, n);
    bump_seq(t);
    let fillers = t.entries().saturating_sub(ACCOUNTS as u64 + 1);
    let (mut ins, mut del) = (rng.gen_range(0..=4), rng.gen_range(0..=4));
    if fillers > FILL_TARGET {
        del += 3;
    } else if fillers < FILL_TARGET / 2 {
        ins += 3;
    }
    for _ in 0..ins {
        let v = filler_value(rng);
        t.put(&filler_key(rng.gen()), &v);
    }
    for _ in 0..del {
        let is_filler = |k: &Vec<u8>| k.starts_with(b"f/");
        let k = t
            .seek(&filler_key(rng.gen()))
            .filter(is_filler)
            .or_else(|| t.seek(b"f/").filter(is_filler));
        if let Some(k) = k {
            t.del(&k);
        }
    }
}

/// `n` random transfers between accounts.
fn transfers<T: WTxn + ?Sized>(t: &mut T, rng: &mut StdRng, n: u32) {
    for _ in 0..n {
        let a = rng.gen_range(0..ACCOUNTS);
        let mut b = rng.gen_range(0..ACCOUNTS - 1);
        if b >= a {
            b += 1;
        }
        let ba = u64_of(&t.get(&acct(a)).expect("account"));
        let bb = u64_of(&t.get(&acct(b)).expect("account"));
        let amount = rng.gen_range(0..=ba.min(5000));
        t.put(&acct(a), &(ba - amount).to_le_bytes());
        t.put(&acct(b), &(bb + amount).to_le_bytes());
    }
}

/// The smallest transaction: one transfer, so commits come as fast as the
/// writer can make them.
fn tiny<T: WTxn>(t: &mut T, rng: &mut StdRng) {
    transfers(t, rng, 1);
    bump_seq(t);
}

/// Creates the accounts and `FILL_TARGET` fillers (txnid 1, `s/seq` 0).
fn setup(env: &Env, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = env.write_txn().unwrap();
    for i in 0..ACCOUNTS {
        WTxn::put(&mut t, &acct(i), &INITIAL.to_le_bytes());
    }
    bump_seq(&mut t);
    for _ in 0..FILL_TARGET {
        let v = filler_value(&mut rng);
        WTxn::put(&mut t, &filler_key(rng.gen()), &v);
    }
    t.commit().unwrap();
}

/// Runs `txns` workload transactions (about 3% aborted instead of
/// committed), or with `mode` "tiny" tiny ones; with "writemap" ours
/// write their pages in place in a writable map. Returns the txnids
/// committed. `ready` runs once the environment is open, before the first
/// txn.
fn run_writer(
    kind: Kind,
    dir: &Path,
    seed: u64,
    txns: u64,
    mode: &str,
    ready: impl FnOnce(),
) -> Vec<u64> {
    let small = mode == "tiny";
    let mut rng = StdRng::seed_from_u64(seed);
    fn one<T: WTxn>(t: &mut T, rng: &mut StdRng, small: bool) {
        if small {
            tiny(t, rng)
        } else {
            workload(t, rng)
        }
    }
    let mut ids = Vec::new();
    match kind {
        Kind::Ours => {
            let env = match mode {
                "writemap" => open_ours_with(dir, EnvFlags::NOSYNC | EnvFlags::WRITEMAP),
                _ => open_ours(dir),
            };
            ready();
            for _ in 0..txns {
                let mut t = env.write_txn().unwrap();
                one(&mut t, &mut rng, small);
                if rng.gen_ratio(3, 100) {
                    t.abort();
                } else {
                    ids.push(WTxn::id(&t));
                    t.commit().unwrap();
                }
            }
        }
        Kind::C => {
            let env = open_c(dir);
            ready();
            for _ in 0..txns {
                let mut t = env.begin_rw().unwrap();
                one(&mut t, &mut rng, small);
                if rng.gen_ratio(3, 100) {
                    t.abort();
                } else {
                    ids.push(WTxn::id(&t));
                    t.commit().unwrap();
                }
            }
        }
    }
    ids
}

/// The final state, checked by our engine in full, with the integrity check.
fn verify_final(env: &Env) -> Seen {
    let txn = env.read_txn().unwrap();
    let seen = check_ours(&txn, txn.id(), true).unwrap_or_else(|e| panic!("{e}"));
    let report = walk::check(txn.snapshot()).unwrap();
    assert!(report.is_ok(), "integrity check: {report}");
    seen
}

// ---------------------------------------------------------------------------
// Child processes.

/// The child side: runs the role named in `PRUNEDB_MP_ROLE` and exits. In
/// the parent (the variable unset) this test does nothing.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_VAR).unwrap());
    let args: Vec<String> = std::env::var(ARGS_VAR)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let report = |line: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{TAG}{line}").unwrap();
        out.flush().unwrap();
    };
    let kind = Kind::parse(&args[0]);
    match role.as_str() {
        "writer" => {
            let ids = run_writer(
                kind,
                &dir,
                args[1].parse().unwrap(),
                args[2].parse().unwrap(),
                args.get(3).map_or("full", String::as_str),
                // Writers start together, so that concurrent ones overlap
                // however long each took to start.
                || {
                    report("opened".into());
                    while !dir.join(GO).exists() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                },
            );
            report(format!(
                "done {} {} {}",
                ids.len(),
                ids.first().unwrap_or(&0),
                ids.last().unwrap_or(&0)
            ));
        }
        "reader" => child_reader(kind, &dir, report),
        "meta-reader" => child_meta_reader(kind, &dir, report),
        "hold-writer" => {
            // Uncommitted changes that break the invariant, then wait for
            // SIGKILL with the writer mutex held.
            let tag = &args[1];
            let dead = format!("dead/{tag}").into_bytes();
            match kind {
                Kind::Ours => {
                    let env = open_ours(&dir);
                    let mut t = env.write_txn().unwrap();
                    WTxn::put(&mut t, &dead, b"x");
                    WTxn::put(&mut t, &acct(0), &0u64.to_le_bytes());
                    report(format!("ready {}", WTxn::id(&t)));
                    std::thread::sleep(Duration::from_secs(600));
                }
                Kind::C => {
                    let env = open_c(&dir);
                    let mut t = env.begin_rw().unwrap();
                    WTxn::put(&mut t, &dead, b"x");
                    WTxn::put(&mut t, &acct(0), &0u64.to_le_bytes());
                    report(format!("ready {}", WTxn::id(&t)));
                    std::thread::sleep(Duration::from_secs(600));
                }
            }
        }
        "write-once" => {
            // Blocks on the writer mutex; then checks that the dead writer
            // left nothing, and commits one transfer and a marker.
            let tag = &args[1];
            let after = format!("after/{tag}").into_bytes();
            let dead = format!("dead/{tag}").into_bytes();
            let mut rng = StdRng::seed_from_u64(7);
            // What both kinds do inside their transaction; returns its id.
            let mut once = |t: &mut dyn WTxn| {
                assert_eq!(t.get(&dead), None, "the dead writer's change is visible");
                workload(t, &mut rng);
                t.put(&after, b"y");
                t.id()
            };
            let id = match kind {
                Kind::Ours => {
                    let env = open_ours(&dir);
                    report("opened".into());
                    let mut t = env.write_txn().unwrap();
                    let id = once(&mut t);
                    if args.get(2).map(String::as_str) == Some("abort") {
                        t.abort();
                        report(format!("aborted {id}"));
                        std::process::exit(0);
                    }
                    t.commit().unwrap();
                    id
                }
                Kind::C => {
                    let env = open_c(&dir);
                    report("opened".into());
                    let mut t = env.begin_rw().unwrap();
                    let id = once(&mut t);
                    t.commit().unwrap();
                    id
                }
            };
            report(format!("committed {id}"));
        }
        "hold-reader" => match kind {
            Kind::Ours => {
                let env = open_ours(&dir);
                let t = env.read_txn().unwrap();
                check_ours(&t, t.id(), true).unwrap();
                report(format!("ready {}", t.id()));
                std::thread::sleep(Duration::from_secs(600));
            }
            Kind::C => {
                let env = open_c(&dir);
                let t = env.begin_ro().unwrap();
                check_c(&t, true).unwrap();
                report(format!("ready {}", t.id()));
                std::thread::sleep(Duration::from_secs(600));
            }
        },
        "reader-check" => {
            let freed = match kind {
                Kind::Ours => open_ours(&dir).reader_check().unwrap(),
                Kind::C => open_c(&dir).reader_check().unwrap() as usize,
            };
            report(format!("freed {freed}"));
        }
        "pin" => child_pin(&dir, report),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// Reads snapshots until the stop file appears, checking each one.
fn child_reader(kind: Kind, dir: &Path, report: impl Fn(String)) {
    let stop = dir.join(STOP);
    let mut last = Seen::default();
    let mut first = None;
    let mut reads = 0u64;
    let mut distinct = 0u64;
    let mut step = |seen: Seen, reads: &mut u64| {
        if seen.txnid != last.txnid {
            distinct += 1;
        }
        first.get_or_insert(seen.txnid);
        advance(&mut last, seen).unwrap_or_else(|e| panic!("{e}"));
        *reads += 1;
    };
    match kind {
        Kind::Ours => {
            let env = open_ours(dir);
            while !stop.exists() {
                let t = env.read_txn().unwrap();
                let seen =
                    check_ours(&t, t.id(), reads % 16 == 0).unwrap_or_else(|e| panic!("{e}"));
                step(seen, &mut reads);
            }
        }
        Kind::C => {
            let env = open_c(dir);
            while !stop.exists() {
                let t = env.begin_ro().unwrap();
                let seen = check_c(&t, reads % 16 == 0).unwrap_or_else(|e| panic!("{e}"));
                step(seen, &mut reads);
            }
        }
    }
    report(format!(
        "reads {reads} {distinct} {} {}",
        first.unwrap_or(0),
        last.txnid
    ));
}

/// Begins read txns as fast as it can until the stop file appears, checking
/// only that the snapshot's `s/seq` matches its txnid: the meta page and the
/// tree it names come from the same commit.
fn child_meta_reader(kind: Kind, dir: &Path, report: impl Fn(String)) {
    let stop = dir.join(STOP);
    let mut reads = 0u64;
    let check = |id: u64, seq: Option<&[u8]>, exact: bool| {
        let seq = u64_of(seq.expect("s/seq"));
        seq_matches(id, seq, exact).unwrap_or_else(|e| panic!("{e}"));
    };
    match kind {
        Kind::Ours => {
            let env = open_ours(dir);
            while reads % 256 != 0 || !stop.exists() {
                let t = env.read_txn().unwrap();
                check(t.id(), t.get(Database::MAIN, SEQ_KEY).unwrap(), true);
                reads += 1;
            }
        }
        Kind::C => {
            let env = open_c(dir);
            while reads % 256 != 0 || !stop.exists() {
                let t = env.begin_ro().unwrap();
                check(t.id() as u64, t.get(c::Dbi::MAIN, SEQ_KEY).unwrap(), false);
                reads += 1;
            }
        }
    }
    report(format!("reads {reads} 0 0 0"));
}

/// Pins a snapshot, then re-reads it until told to release it: it must stay
/// byte-identical whatever the writers do.
fn child_pin(dir: &Path, report: impl Fn(String)) {
    let env = open_ours(dir);
    let pin = env.pin().unwrap();
    let copy: Vec<(Vec<u8>, Vec<u8>)> = {
        let t = pin.read_txn().unwrap();
        check_ours(&t, pin.txnid(), true).unwrap();
        let v = t
            .iter(Database::MAIN)
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        v
    };
    report(format!("ready {} {}", pin.txnid(), copy.len()));
    let release = dir.join(RELEASE);
    let mut checks = 0u64;
    while !release.exists() {
        let t = pin.read_txn().unwrap();
        assert_eq!(t.id(), pin.txnid());
        let mut n = 0;
        for (e, (k, v)) in t.iter(Database::MAIN).unwrap().zip(&copy) {
            let (k2, v2) = e.unwrap();
            assert!(
                k2 == &k[..] && v2 == &v[..],
                "pinned snapshot changed at {}",
                show(k)
            );
            n += 1;
        }
        assert_eq!(n, copy.len(), "pinned snapshot changed length");
        checks += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(pin);
    report(format!("released {checks}"));
}

/// A running child process, killed on drop if still running.
struct Proc {
    child: Child,
    what: String,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

fn spawn(role: &str, dir: &Path, args: &[&str]) -> Proc {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(DIR_VAR, dir)
        .env(ARGS_VAR, args.join(" "))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find(TAG) {
                if tx.send(line[at + TAG.len()..].to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        sink.lock().unwrap().push_str(&s);
    });
    Proc {
        child,
        what: format!("{role} {}", args.join(" ")),
        lines,
        stderr,
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        panic!(
            "child `{}`: {why}\n--- stderr ---\n{}",
            self.what,
            self.stderr.lock().unwrap()
        );
    }

    /// The next report line, which must start with `word`; its fields.
    fn expect(&mut self, word: &str, timeout: Duration) -> Vec<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                let f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                if f.first().map(String::as_str) != Some(word) {
                    self.fail(&format!("expected `{word}`, got `{line}`"));
                }
                f[1..].to_vec()
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.fail(&format!("no `{word}` within {timeout:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                self.fail(&format!("exited with {status} before `{word}`"))
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for a successful exit.
    fn finish(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    std::thread::sleep(Duration::from_millis(100));
                    self.fail(&format!("exited with {status}"));
                }
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("still running after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How much longer the long variants run.
fn scale(long: bool) -> u64 {
    if long {
        10
    } else {
        1
    }
}

const WAIT: Duration = Duration::from_secs(300);

/// Starts readers, runs writers to completion, stops the readers, and
/// returns the writers' (count, first, last) and the readers' reports.
fn run_scenario(
    dir: &Path,
    writers: &[(Kind, u64, u64)],
    readers: &[Kind],
) -> (Vec<[u64; 3]>, Vec<[u64; 4]>) {
    run_scenario_as(dir, writers, "full", readers, "reader")
}

fn run_scenario_as(
    dir: &Path,
    writers: &[(Kind, u64, u64)],
    mode: &str,
    readers: &[Kind],
    reader_role: &str,
) -> (Vec<[u64; 3]>, Vec<[u64; 4]>) {
    let _ = std::fs::remove_file(dir.join(STOP));
    let _ = std::fs::remove_file(dir.join(GO));
    let mut rs: Vec<Proc> = readers
        .iter()
        .map(|k| spawn(reader_role, dir, &[k.name()]))
        .collect();
    let mut ws: Vec<Proc> = writers
        .iter()
        .map(|(k, seed, n)| {
            spawn(
                "writer",
                dir,
                &[k.name(), &seed.to_string(), &n.to_string(), mode],
            )
        })
        .collect();
    for w in ws.iter_mut() {
        w.expect("opened", WAIT);
    }
    std::fs::write(dir.join(GO), b"").unwrap();
    let mut wout = Vec::new();
    for mut w in ws {
        let f = w.expect("done", WAIT);
        wout.push([0, 1, 2].map(|i| f[i].parse::<u64>().unwrap()));
        w.finish(WAIT);
    }
    std::fs::write(dir.join(STOP), b"").unwrap();
    let mut rout = Vec::new();
    for r in rs.iter_mut() {
        let f = r.expect("reads", WAIT);
        rout.push([0, 1, 2, 3].map(|i| f[i].parse::<u64>().unwrap()));
    }
    for r in rs {
        r.finish(WAIT);
    }
    (wout, rout)
}

fn one_writer_many_readers(name: &str, writer: Kind, reader: Kind, long: bool) {
    one_writer_many_readers_as(name, writer, "full", reader, long)
}

fn one_writer_many_readers_as(name: &str, writer: Kind, mode: &str, reader: Kind, long: bool) {
    let _g = serial();
    let dir = scratch(name);
    let env = open_ours(&dir);
    setup(&env, 1);
    let n = 3000 * scale(long);
    let nreaders = if long { 4 } else { 2 };
    let start = Instant::now();
    let (w, r) = run_scenario_as(
        &dir,
        &[(writer, 2, n)],
        mode,
        &vec![reader; nreaders],
        "reader",
    );
    let secs = start.elapsed().as_secs_f64();
    let seen = verify_final(&env);
    assert_eq!(seen.txnid, 1 + w[0][0], "every commit is there");
    for (i, r) in r.iter().enumerate() {
        println!(
            "{name}: reader {i}: {} snapshots checked, {} distinct, txnids {}..={}",
            r[0], r[1], r[2], r[3]
        );
        assert!(r[1] >= 2, "reader {i} saw no commit land");
    }
    println!(
        "{name}: {} commits by {} in {secs:.1}s, {} fillers at the end",
        w[0][0],
        writer.name(),
        seen.fillers
    );
}

#[test]
fn c_writer_our_readers() {
    one_writer_many_readers("c-writer", Kind::C, Kind::Ours, false);
}

#[test]
fn our_writer_c_readers() {
    one_writer_many_readers("our-writer", Kind::Ours, Kind::C, false);
}

/// Our writer writes its pages in place in a writable map while C readers
/// in other processes read their snapshots through read-only maps.
#[test]
fn our_writemap_writer_c_readers() {
    one_writer_many_readers_as(
        "our-writemap-writer",
        Kind::Ours,
        "writemap",
        Kind::C,
        false,
    );
}

#[test]
#[ignore]
fn long_c_writer_our_readers() {
    one_writer_many_readers("long-c-writer", Kind::C, Kind::Ours, true);
}

#[test]
#[ignore]
fn long_our_writer_c_readers() {
    one_writer_many_readers("long-our-writer", Kind::Ours, Kind::C, true);
}

fn mixed_writers(name: &str, long: bool) {
    let _g = serial();
    let dir = scratch(name);
    let env = open_ours(&dir);
    setup(&env, 3);
    let n = 1500 * scale(long);
    let readers = [Kind::Ours, Kind::C, Kind::Ours, Kind::C];
    let start = Instant::now();
    let (w, r) = run_scenario(&dir, &[(Kind::C, 4, n), (Kind::Ours, 5, n)], &readers);
    let seen = verify_final(&env);
    assert_eq!(seen.txnid, 1 + w[0][0] + w[1][0], "a commit was lost");
    // Both writers were active at once: each committed inside the other's
    // range of txnids.
    assert!(
        w[0][1] < w[1][2] && w[1][1] < w[0][2],
        "the writers never took turns: {w:?}"
    );
    for (i, r) in r.iter().enumerate() {
        println!(
            "{name}: reader {i} ({}): {} snapshots, {} distinct",
            readers[i].name(),
            r[0],
            r[1]
        );
        assert!(r[1] >= 2);
    }
    println!(
        "{name}: C {} and ours {} commits in {:.1}s",
        w[0][0],
        w[1][0],
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn mixed_writers_take_turns() {
    mixed_writers("mixed", false);
}

#[test]
#[ignore]
fn long_mixed_writers_take_turns() {
    mixed_writers("long-mixed", true);
}

/// Commits as fast as a writer can make them while readers of the other
/// library begin read txns as fast as they can. Regression: our reader
/// copied the newer of the two meta pages, which C may still be writing,
/// and got the new txnid with the old roots (whose pages were being reused).
fn fast_commits(name: &str, long: bool) {
    let _g = serial();
    let dir = scratch(name);
    let env = open_ours(&dir);
    setup(&env, 61);
    let n = 20_000 * scale(long);
    let start = Instant::now();
    let (w, r) = run_scenario_as(
        &dir,
        &[(Kind::C, 62, n)],
        "tiny",
        &[Kind::Ours, Kind::Ours],
        "meta-reader",
    );
    let seen = verify_final(&env);
    assert_eq!(seen.txnid, 1 + w[0][0]);
    println!(
        "{name}: C: {} commits in {:.1}s, our read txns begun {:?}",
        w[0][0],
        start.elapsed().as_secs_f64(),
        r.iter().map(|r| r[0]).collect::<Vec<_>>()
    );
    // And the other way round: C readers take the meta page `mti_txnid`
    // names, so our writer must publish it only once the page is written.
    let start = Instant::now();
    let (w2, r) = run_scenario_as(
        &dir,
        &[(Kind::Ours, 63, n / 4)],
        "tiny",
        &[Kind::C, Kind::C],
        "meta-reader",
    );
    let seen = verify_final(&env);
    assert_eq!(seen.txnid, 1 + w[0][0] + w2[0][0]);
    println!(
        "{name}: ours: {} commits in {:.1}s, C read txns begun {:?}",
        w2[0][0],
        start.elapsed().as_secs_f64(),
        r.iter().map(|r| r[0]).collect::<Vec<_>>()
    );
}

#[test]
fn readers_never_see_a_half_written_meta() {
    fast_commits("fast-commits", false);
}

#[test]
#[ignore]
fn long_readers_never_see_a_half_written_meta() {
    fast_commits("long-fast-commits", true);
}

// ---------------------------------------------------------------------------
// Dead writers.

/// One round: `dead` takes the writer mutex with uncommitted changes, a
/// writer of kind `next` (or, for `None`, a thread of this process) blocks
/// behind it; `dead` is killed and the waiter must go on.
fn dead_writer_round(dir: &Path, env: &Env, round: u32, dead: Kind, next: Option<Kind>) {
    let tag = round.to_string();
    let before = verify_final(env);
    let mut holder = spawn("hold-writer", dir, &[dead.name(), &tag]);
    holder.expect("ready", WAIT);
    let done = Arc::new(AtomicBool::new(false));
    let mut waiter = None;
    let mut thread = None;
    match next {
        Some(k) => {
            let mut w = spawn("write-once", dir, &[k.name(), &tag]);
            w.expect("opened", WAIT);
            waiter = Some(w);
        }
        None => {
            let env = env.clone();
            let done = done.clone();
            let tag = tag.clone();
            thread = Some(std::thread::spawn(move || {
                let mut t = env.write_txn().unwrap();
                let dead = format!("dead/{tag}").into_bytes();
                assert_eq!(WTxn::get(&t, &dead), None);
                workload(&mut t, &mut StdRng::seed_from_u64(9));
                WTxn::put(&mut t, format!("after/{tag}").as_bytes(), b"y");
                t.commit().unwrap();
                done.store(true, Ordering::SeqCst);
            }));
        }
    }
    // The waiter must be blocked on the mutex while the holder lives.
    std::thread::sleep(Duration::from_millis(300));
    if let Some(w) = waiter.as_mut() {
        assert!(
            w.running(),
            "round {round}: a second writer ran beside the first"
        );
    } else {
        assert!(
            !done.load(Ordering::SeqCst),
            "round {round}: a second writer ran"
        );
    }
    holder.kill();
    match (waiter, thread) {
        (Some(mut w), _) => {
            w.expect("committed", Duration::from_secs(60));
            w.finish(WAIT);
        }
        (_, Some(t)) => t.join().unwrap(),
        _ => unreachable!(),
    }
    let after = verify_final(env);
    assert_eq!(after.txnid, before.txnid + 1, "round {round}");
    let t = env.read_txn().unwrap();
    assert_eq!(
        t.get(Database::MAIN, format!("dead/{tag}").as_bytes())
            .unwrap(),
        None
    );
    assert_eq!(
        t.get(Database::MAIN, format!("after/{tag}").as_bytes())
            .unwrap(),
        Some(&b"y"[..])
    );
}

#[test]
fn killed_writer_is_recovered() {
    let _g = serial();
    let dir = scratch("dead-writer");
    let env = open_ours(&dir);
    setup(&env, 11);
    let rounds = [
        (Kind::Ours, Some(Kind::Ours)),
        (Kind::Ours, Some(Kind::C)),
        (Kind::C, Some(Kind::Ours)),
        (Kind::C, Some(Kind::C)),
        (Kind::C, None),
        (Kind::Ours, None),
    ];
    for (i, (dead, next)) in rounds.into_iter().enumerate() {
        dead_writer_round(&dir, &env, i as u32, dead, next);
    }
    // And plain writers of both kinds afterwards.
    run_scenario(&dir, &[(Kind::C, 12, 50), (Kind::Ours, 13, 50)], &[]);
    verify_final(&env);
}

/// Offset of `mti_txnid` in the lock file.
const MTI_TXNID: u64 = 48;

#[test]
fn stale_txnid_after_dead_writer() {
    let _g = serial();
    let dir = scratch("stale-txnid");
    let env = open_ours(&dir);
    setup(&env, 21);
    run_scenario(&dir, &[(Kind::C, 22, 20)], &[]);
    let newest = verify_final(&env).txnid;
    // A writer takes the mutex; the lock file is then made to look as if
    // the last commit's writer had died after writing its meta page but
    // before publishing its txnid, and the holder dies too.
    let holder = {
        let mut h = spawn("hold-writer", &dir, &["c", "stale"]);
        h.expect("ready", WAIT);
        h
    };
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("lock.mdb"))
        .unwrap();
    lock.write_all_at(&(newest - 1).to_le_bytes(), MTI_TXNID)
        .unwrap();
    holder.kill();
    // Our writer recovers the mutex and aborts; a C writer follows.
    let mut w = spawn("write-once", &dir, &["ours", "stale-ours", "abort"]);
    w.expect("opened", WAIT);
    w.expect("aborted", WAIT);
    w.finish(WAIT);
    let mut w = spawn("write-once", &dir, &["c", "stale-c"]);
    w.expect("opened", WAIT);
    let id: u64 = w.expect("committed", WAIT)[0].parse().unwrap();
    w.finish(WAIT);
    assert_eq!(id, newest + 1, "C started from an older meta page");
    let after = verify_final(&env);
    assert_eq!(after.txnid, newest + 1);
}

// ---------------------------------------------------------------------------
// Dead readers.

/// The pages of a snapshot (trees and free DB), with a hash of each.
fn snapshot_pages(env: &Env) -> (u64, Vec<(u64, u64, u64)>) {
    use std::hash::{Hash, Hasher};
    let txn = env.read_txn().unwrap();
    let mut pages = Vec::new();
    let mut visit = |v: &Visit<'_>| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        v.bytes.hash(&mut h);
        pages.push((v.pgno, v.count, h.finish()));
        Ok(Descend::Into)
    };
    walk::walk(txn.snapshot(), &mut visit).unwrap();
    (txn.id(), pages)
}

/// How many of `pages` differ in the data file now.
fn changed_pages(dir: &Path, page_size: u64, pages: &[(u64, u64, u64)]) -> usize {
    use std::hash::{Hash, Hasher};
    let file = std::fs::File::open(dir.join("data.mdb")).unwrap();
    pages
        .iter()
        .filter(|(pgno, count, hash)| {
            let mut buf = vec![0u8; (count * page_size) as usize];
            file.read_exact_at(&mut buf, pgno * page_size).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            buf[..].hash(&mut h);
            h.finish() != *hash
        })
        .count()
}

fn slots_of(env: &Env, pid: u32) -> Vec<u64> {
    let bytes = env.read_lock_file().unwrap().unwrap();
    prunedb_engine::lockfile::reader_slots(&bytes)
        .filter(|s| s.pid == pid as i32)
        .map(|s| s.txnid)
        .collect()
}

fn dead_readers_round(dir: &Path, env: &Env, round: u64, reclaimer: Kind) {
    let ps = env.page_size() as u64;
    // Two readers, ours and C's, on two different snapshots.
    let mut held = Vec::new();
    for (i, kind) in [Kind::Ours, Kind::C].into_iter().enumerate() {
        run_scenario(dir, &[(Kind::Ours, 100 + round * 10 + i as u64, 5)], &[]);
        let mut p = spawn("hold-reader", dir, &[kind.name()]);
        let txnid: u64 = p.expect("ready", WAIT)[0].parse().unwrap();
        let (now, pages) = snapshot_pages(env);
        assert_eq!(now, txnid, "nothing committed since the reader began");
        let pid = p.pid();
        assert_eq!(slots_of(env, pid), vec![txnid], "the reader's slot");
        p.kill();
        held.push((kind, pid, txnid, pages));
    }
    // Dead, but their slots still hold the snapshots: heavy churn by both
    // kinds of writer must leave every page of both untouched.
    run_scenario(
        dir,
        &[(Kind::C, 200 + round, 150), (Kind::Ours, 300 + round, 150)],
        &[],
    );
    for (kind, pid, txnid, pages) in &held {
        assert_eq!(
            slots_of(env, *pid),
            vec![*txnid],
            "dead {} reader's slot",
            kind.name()
        );
        assert_eq!(
            changed_pages(dir, ps, pages),
            0,
            "a page of a dead {} reader's snapshot {txnid} was reused while its slot held it",
            kind.name()
        );
    }
    let freed = match reclaimer {
        Kind::Ours => env.reader_check().unwrap(),
        Kind::C => {
            let mut p = spawn("reader-check", dir, &["c"]);
            let n = p.expect("freed", WAIT)[0].parse().unwrap();
            p.finish(WAIT);
            n
        }
    };
    assert_eq!(freed, 2, "{} reader_check", reclaimer.name());
    for (_, pid, _, _) in &held {
        assert!(slots_of(env, *pid).is_empty());
    }
    // With the slots free, the writers reuse those pages.
    run_scenario(
        dir,
        &[(Kind::C, 400 + round, 150), (Kind::Ours, 500 + round, 150)],
        &[],
    );
    for (kind, _, txnid, pages) in &held {
        let n = changed_pages(dir, ps, pages);
        println!(
            "dead {} reader at {txnid}: {n} of its {} pages reused after reader_check",
            kind.name(),
            pages.len()
        );
        assert!(
            n > 0,
            "no page of snapshot {txnid} was reused after reader_check"
        );
    }
    verify_final(env);
}

#[test]
fn dead_readers_are_reclaimed() {
    let _g = serial();
    let dir = scratch("dead-readers");
    let env = open_ours(&dir);
    setup(&env, 31);
    dead_readers_round(&dir, &env, 0, Kind::Ours);
    dead_readers_round(&dir, &env, 1, Kind::C);
}

// ---------------------------------------------------------------------------
// A pinned reader.

fn file_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("data.mdb")).unwrap().len()
}

#[test]
fn pinned_reader_survives_churn() {
    let _g = serial();
    let dir = scratch("pin");
    let env = open_ours(&dir);
    setup(&env, 41);
    // Reach the workload's steady state first.
    run_scenario(&dir, &[(Kind::Ours, 42, 300)], &[]);
    let mut pin = spawn("pin", &dir, &["ours"]);
    let f = pin.expect("ready", WAIT);
    let pinned: u64 = f[0].parse().unwrap();
    let len0 = file_len(&dir);
    run_scenario(&dir, &[(Kind::C, 43, 400), (Kind::Ours, 44, 400)], &[]);
    let len1 = file_len(&dir);
    std::fs::write(dir.join(RELEASE), b"").unwrap();
    let checks: u64 = pin.expect("released", WAIT)[0].parse().unwrap();
    pin.finish(WAIT);
    assert!(checks > 0);
    // Released: the next round reclaims what the pin held, then each kind
    // of writer alone runs in the space freed.
    run_scenario(&dir, &[(Kind::C, 45, 400), (Kind::Ours, 46, 400)], &[]);
    let len2 = file_len(&dir);
    run_scenario(&dir, &[(Kind::C, 47, 400)], &[]);
    let len3 = file_len(&dir);
    run_scenario(&dir, &[(Kind::Ours, 48, 400)], &[]);
    let len4 = file_len(&dir);
    let ps = env.page_size() as u64;
    println!(
        "pin at {pinned}, {checks} re-reads; file pages: {} pinned -> {} after churn; \
         released -> {} after churn, -> {} after C alone, -> {} after ours alone",
        len0 / ps,
        len1 / ps,
        len2 / ps,
        len3 / ps,
        len4 / ps
    );
    assert!(len1 > len0, "no growth at all while pinned");
    assert!(
        len4 - len2 <= (len1 - len0) / 10,
        "the file kept growing after the pin was released"
    );
    // Alone on the same free list, our writer grows the file no more than
    // C's does (a few pages of slack for where each stops).
    assert!(
        len4 - len3 <= len3 - len2 + 8 * ps,
        "ours alone grew the file by {} pages, C alone by {}",
        (len4 - len3) / ps,
        (len3 - len2) / ps
    );
    verify_final(&env);
}

// ---------------------------------------------------------------------------
// Threads.

fn threads(long: bool) {
    let _g = serial();
    let dir = scratch(if long { "long-threads" } else { "threads" });
    let env = open_ours(&dir);
    setup(&env, 51);
    let stop = Arc::new(AtomicBool::new(false));
    let nreaders = 4;
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..nreaders).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<_> = (0..nreaders)
        .map(|i| {
            let env = env.clone();
            let stop = stop.clone();
            let counts = counts.clone();
            std::thread::spawn(move || {
                let mut last = Seen::default();
                let mut longest = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let begin = Instant::now();
                    let t = env.read_txn().unwrap();
                    longest = longest.max(begin.elapsed());
                    let seen = check_ours(&t, t.id(), false).unwrap_or_else(|e| panic!("{e}"));
                    advance(&mut last, seen).unwrap();
                    counts[i].fetch_add(1, Ordering::Relaxed);
                }
                longest
            })
        })
        .collect();
    let n = 400 * scale(long);
    let mut rng = StdRng::seed_from_u64(52);
    let writer = {
        let env = env.clone();
        let counts = counts.clone();
        std::thread::spawn(move || {
            let snapshot = |c: &Vec<AtomicU64>| -> Vec<u64> {
                c.iter().map(|a| a.load(Ordering::Relaxed)).collect()
            };
            let mut held = Vec::new();
            for i in 0..n {
                let mut t = env.write_txn().unwrap();
                workload(&mut t, &mut rng);
                if i % 200 == 100 {
                    // Hold the write txn open for a second: readers must
                    // not wait for it.
                    let before = snapshot(&counts);
                    std::thread::sleep(Duration::from_secs(1));
                    let after = snapshot(&counts);
                    held.push(
                        before
                            .iter()
                            .zip(&after)
                            .map(|(b, a)| a - b)
                            .collect::<Vec<_>>(),
                    );
                }
                t.commit().unwrap();
            }
            held
        })
    };
    let held = writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let longest: Vec<Duration> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let total: Vec<u64> = counts.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    println!("threads: reads per reader {total:?}; during each 1 s write hold {held:?}");
    println!("threads: longest read_txn begin per reader {longest:?}");
    for h in &held {
        for &r in h {
            assert!(
                r >= 5,
                "a reader was held up by an open write txn: {held:?}"
            );
        }
    }
    verify_final(&env);
}

#[test]
fn threads_share_one_env() {
    threads(false);
}

#[test]
#[ignore]
fn long_threads_share_one_env() {
    threads(true);
}
