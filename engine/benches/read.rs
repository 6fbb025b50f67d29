//! Read path against C LMDB 0.9.24, on the same environment in the same run.
//!
//! Run with `cargo bench -p prunedb-engine --bench read`. The environment
//! (1M random 16-byte keys, 100-byte values, written by C in random order)
//! is built once under the target directory and reused by later runs.
//! Each benchmark has a `c` and an `ours` variant; the run ends with the
//! throughput ratios ours/C (above 1.0 means we are faster). C is called
//! through its raw functions (`mdb_get`, `mdb_cursor_get`), as a C program
//! would; ours through the public safe API, returning checked slices.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use prunedb_clmdb as c;
use prunedb_clmdb::ffi;
use prunedb_engine as e;
use prunedb_engine::{Iterate, ReadTxn};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const ENTRIES: usize = 1_000_000;
const KEY_LEN: usize = 16;
const VAL_LEN: usize = 100;
/// Gets per measured batch.
const BATCH: usize = 1000;

fn env_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-read-{ENTRIES}-{KEY_LEN}-{VAL_LEN}"))
}

/// The keys, in insertion (random) order; the same every run.
fn keys() -> Vec<[u8; KEY_LEN]> {
    let mut rng = StdRng::seed_from_u64(42);
    (0..ENTRIES).map(|_| rng.gen()).collect()
}

/// Builds the environment with C unless a complete one is already there.
fn build_env(dir: &Path, keys: &[[u8; KEY_LEN]]) {
    let done = dir.join("complete");
    if done.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let env = c::Env::builder()
        .map_size(1 << 30)
        .flags(c::flags::MDB_NOSYNC)
        .open(dir)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for chunk in keys.chunks(100_000) {
        let mut txn = env.begin_rw().unwrap();
        // C sets the main database's comparator only in `mdb_dbi_open`.
        let dbi = txn.open_db(None, 0).unwrap();
        for k in chunk {
            let mut v = [0u8; VAL_LEN];
            rng.fill(&mut v[..]);
            txn.put(dbi, k, &v, 0).unwrap();
        }
        txn.commit().unwrap();
    }
    env.sync(true).unwrap();
    std::fs::write(done, b"").unwrap();
}

/// Random existing keys, the lookup order of the get benchmarks.
fn lookups(keys: &[[u8; KEY_LEN]], seed: u64) -> Vec<[u8; KEY_LEN]> {
    let mut l = keys.to_vec();
    l.shuffle(&mut StdRng::seed_from_u64(seed));
    l.truncate(200_000);
    l
}

fn c_gets(env: &c::Env, keys: &[[u8; KEY_LEN]], iters: u64, start: &Barrier) -> Duration {
    let txn = env.begin_ro().unwrap();
    let dbi = txn.open_db(None, 0).unwrap();
    let mut i = 0;
    start.wait();
    let t = Instant::now();
    for _ in 0..iters {
        for _ in 0..BATCH {
            black_box(raw_get(&txn, dbi, &keys[i]));
            i = if i + 1 == keys.len() { 0 } else { i + 1 };
        }
    }
    t.elapsed()
}

/// `mdb_get` called directly, so C is timed without the wrapper's
/// bookkeeping (which costs about as many instructions as a cursor step).
fn raw_get(txn: &c::RoTxn<'_>, dbi: c::Dbi, key: &[u8]) -> usize {
    let mut k = ffi::MDB_val {
        mv_size: key.len(),
        mv_data: key.as_ptr() as *mut _,
    };
    let mut d = ffi::MDB_val {
        mv_size: 0,
        mv_data: std::ptr::null_mut(),
    };
    // SAFETY: a live read transaction and database handle; `k` points at
    // `key`, which C only reads; `d` is an out-parameter.
    let rc = unsafe { ffi::mdb_get(txn.as_ptr(), dbi.0, &mut k, &mut d) };
    assert_eq!(rc, 0);
    d.mv_size
}

fn our_gets(env: &e::Env, keys: &[[u8; KEY_LEN]], iters: u64, start: &Barrier) -> Duration {
    let txn = env.read_txn().unwrap();
    let db = txn.open_db(None).unwrap();
    let mut i = 0;
    start.wait();
    let t = Instant::now();
    for _ in 0..iters {
        for _ in 0..BATCH {
            black_box(txn.get(db, &keys[i]).unwrap());
            i = if i + 1 == keys.len() { 0 } else { i + 1 };
        }
    }
    t.elapsed()
}

/// Runs `f` on `threads` threads at once (each with its own read
/// transaction and key order) and returns the longest thread's time.
fn parallel<F>(threads: usize, per_thread: &[Vec<[u8; KEY_LEN]>], f: F) -> Duration
where
    F: Fn(&[[u8; KEY_LEN]], &Barrier) -> Duration + Sync,
{
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = per_thread[..threads]
            .iter()
            .map(|ks| {
                let (f, start) = (&f, &start);
                s.spawn(move || f(ks, start))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

fn c_scan(env: &c::Env) -> usize {
    let txn = env.begin_ro().unwrap();
    let dbi = txn.open_db(None, 0).unwrap();
    let cur = txn.cursor(dbi).unwrap();
    let mut n = 0;
    let mut op = ffi::MDB_FIRST;
    let null = || ffi::MDB_val {
        mv_size: 0,
        mv_data: std::ptr::null_mut(),
    };
    let (mut k, mut d) = (null(), null());
    // SAFETY: a live cursor of a live read transaction; `k` and `d` are
    // out-parameters that C points into the map.
    while unsafe { ffi::mdb_cursor_get(cur.as_ptr(), &mut k, &mut d, op) } == 0 {
        black_box((k.mv_data, k.mv_size, d.mv_data, d.mv_size));
        n += 1;
        op = ffi::MDB_NEXT;
    }
    n
}

fn our_scan(env: &e::Env) -> usize {
    let txn = env.read_txn().unwrap();
    let db = txn.open_db(None).unwrap();
    let mut cur = txn.cursor(db).unwrap();
    let mut n = 0;
    let mut op = e::CursorOp::First;
    while let Some(kv) = cur.get(op, None, None).unwrap() {
        black_box(kv);
        n += 1;
        op = e::CursorOp::Next;
    }
    n
}

fn our_iter_scan(env: &e::Env) -> usize {
    let txn = env.read_txn().unwrap();
    let db = txn.open_db(None).unwrap();
    let mut n = 0;
    for kv in txn.iter(db).unwrap() {
        black_box(kv.unwrap());
        n += 1;
    }
    n
}

fn main() {
    let keys = keys();
    let dir = env_dir();
    build_env(&dir, &keys);
    let cenv = c::Env::builder()
        .map_size(1 << 30)
        // No lock file on the C side: its reader lock on this process's pid
        // would meet ours. Read transactions are not part of what is timed.
        .flags(c::flags::MDB_RDONLY | c::flags::MDB_NOLOCK)
        .open(&dir)
        .unwrap();
    let oenv = e::Env::builder()
        .flags(e::EnvFlags::RDONLY)
        .open(&dir)
        .unwrap();
    let per_thread: Vec<_> = (0..2).map(|t| lookups(&keys, 100 + t)).collect();
    assert_eq!(c_scan(&cenv), our_scan(&oenv));

    let mut crit = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    for threads in [1usize, 2] {
        let mut g = crit.benchmark_group(format!("get_{threads}t"));
        g.throughput(Throughput::Elements((BATCH * threads) as u64));
        g.bench_function("c", |b| {
            b.iter_custom(|iters| {
                parallel(threads, &per_thread, |ks, st| c_gets(&cenv, ks, iters, st))
            })
        });
        g.bench_function("ours", |b| {
            b.iter_custom(|iters| {
                parallel(threads, &per_thread, |ks, st| {
                    our_gets(&oenv, ks, iters, st)
                })
            })
        });
        g.finish();
    }

    let mut g = crit.benchmark_group("scan");
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.sample_size(10);
    g.bench_function("c", |b| b.iter(|| c_scan(&cenv)));
    g.bench_function("ours", |b| b.iter(|| our_scan(&oenv)));
    g.bench_function("ours_iter", |b| b.iter(|| our_iter_scan(&oenv)));
    g.finish();

    crit.final_summary();
    print_ratios();
    interleaved(&cenv, &oenv, &per_thread);
}

/// Ratios from C and ours run in alternation, round after round (each
/// side first in every other round), so that
/// load from other processes (which drifts over the seconds a criterion
/// group takes) hits both alike. Prints the ratio of the best rounds and
/// the median of the per-round ratios.
fn interleaved(cenv: &c::Env, oenv: &e::Env, per_thread: &[Vec<[u8; KEY_LEN]>]) {
    const ROUNDS: usize = 15;
    const GET_ITERS: u64 = 20;
    let report = |name: &str, pairs: &[(Duration, Duration)]| {
        let best_c = pairs.iter().map(|p| p.0).min().unwrap();
        let best_o = pairs.iter().map(|p| p.1).min().unwrap();
        let mut r: Vec<f64> = pairs
            .iter()
            .map(|(c, o)| c.as_secs_f64() / o.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        println!(
            "  {name:>7}  best-round ratio {:.3}x   median ratio {:.3}x   (range {:.3}..{:.3})",
            best_c.as_secs_f64() / best_o.as_secs_f64(),
            r[r.len() / 2],
            r[0],
            r[r.len() - 1]
        );
    };
    println!("\ninterleaved throughput ratios ours/C ({ROUNDS} alternating rounds):");
    for threads in [1usize, 2] {
        let pairs: Vec<_> = (0..ROUNDS)
            .map(|round| {
                let c = || {
                    parallel(threads, per_thread, |ks, st| {
                        c_gets(cenv, ks, GET_ITERS, st)
                    })
                };
                let o = || {
                    parallel(threads, per_thread, |ks, st| {
                        our_gets(oenv, ks, GET_ITERS, st)
                    })
                };
                // Alternate which side goes first, so that neither always
                // finds the caches as the other left them.
                if round % 2 == 0 {
                    let c = c();
                    (c, o())
                } else {
                    let o = o();
                    (c(), o)
                }
            })
            .collect();
        report(&format!("get_{threads}t"), &pairs);
    }
    let timed = |f: &dyn Fn() -> usize| {
        let t = Instant::now();
        black_box(f());
        t.elapsed()
    };
    let pairs: Vec<_> = (0..ROUNDS)
        .map(|round| {
            if round % 2 == 0 {
                let c = timed(&|| c_scan(cenv));
                (c, timed(&|| our_scan(oenv)))
            } else {
                let o = timed(&|| our_scan(oenv));
                (timed(&|| c_scan(cenv)), o)
            }
        })
        .collect();
    report("scan", &pairs);
}

/// Reads criterion's mean estimates of this run and prints ours/C
/// throughput ratios.
fn print_ratios() {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion");
    let mean = |group: &str, bench: &str| -> Option<f64> {
        let p = root.join(group).join(bench).join("new/estimates.json");
        let s = std::fs::read_to_string(p).ok()?;
        let at = s.find("\"mean\"")?;
        let rest = &s[at..];
        let pe = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
        let num: String = rest[pe..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
            .collect();
        num.parse().ok()
    };
    println!("\nthroughput ratios ours/C (mean time C / mean time ours):");
    for (group, ours) in [
        ("get_1t", "ours"),
        ("get_2t", "ours"),
        ("scan", "ours"),
        ("scan", "ours_iter"),
    ] {
        match (mean(group, "c"), mean(group, ours)) {
            (Some(ct), Some(ot)) => println!("  {group:>7} {ours:<9} {:.3}x", ct / ot),
            _ => println!("  {group:>7} {ours:<9} (no estimate)"),
        }
    }
}
