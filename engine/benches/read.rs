//! Read path against C LMDB 0.9.24, on the same environment in the same run.
//!
//! Run with `cargo bench -p prunedb-engine --bench read`. The environment
//! (1M random 16-byte keys, 100-byte values, written by C in random order)
//! is built once under the target directory and reused by later runs.
//! Each benchmark has a `c` and an `ours` variant; the run ends with the
//! throughput ratios ours/C (above 1.0 means we are faster). C is called
//! through its raw functions (`mdb_get`, `mdb_cursor_get`), as a C program
//! would; ours through the public safe API, returning checked slices.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{
    alternate, build_c_env, estimate, keys, parallel, raw_get, Key, Ratios, KEY_LEN, VAL_LEN,
};
use criterion::{Criterion, Throughput};
use prunedb_clmdb as c;
use prunedb_clmdb::ffi;
use prunedb_engine as e;
use prunedb_engine::{Iterate, ReadTxn};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const ENTRIES: usize = 1_000_000;
/// Gets per measured batch.
const BATCH: usize = 1000;

fn env_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-read-{ENTRIES}-{KEY_LEN}-{VAL_LEN}"))
}

/// Random existing keys, the lookup order of the get benchmarks.
fn lookups(keys: &[Key], seed: u64) -> Vec<Key> {
    let mut l = keys.to_vec();
    l.shuffle(&mut StdRng::seed_from_u64(seed));
    l.truncate(200_000);
    l
}

fn c_gets(env: &c::Env, keys: &[Key], iters: u64, start: &Barrier) -> Duration {
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

fn our_gets(env: &e::Env, keys: &[Key], iters: u64, start: &Barrier) -> Duration {
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
    let keys = keys(ENTRIES);
    let dir = env_dir();
    build_c_env(&dir, &keys, 1 << 30);
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
                parallel(&per_thread[..threads], |ks, st| {
                    c_gets(&cenv, ks, iters, st)
                })
            })
        });
        g.bench_function("ours", |b| {
            b.iter_custom(|iters| {
                parallel(&per_thread[..threads], |ks, st| {
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
fn interleaved(cenv: &c::Env, oenv: &e::Env, per_thread: &[Vec<Key>]) {
    const ROUNDS: usize = 15;
    const GET_ITERS: u64 = 20;
    let report = |name: &str, pairs: &[(Duration, Duration)]| {
        println!("  {name:>7}  {}", Ratios::of(pairs));
    };
    println!("\ninterleaved throughput ratios ours/C ({ROUNDS} alternating rounds):");
    for threads in [1usize, 2] {
        let pairs: Vec<_> = (0..ROUNDS)
            .map(|round| {
                let c = || {
                    parallel(&per_thread[..threads], |ks, st| {
                        c_gets(cenv, ks, GET_ITERS, st)
                    })
                };
                let o = || {
                    parallel(&per_thread[..threads], |ks, st| {
                        our_gets(oenv, ks, GET_ITERS, st)
                    })
                };
                alternate(round, c, o)
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
            alternate(
                round,
                || timed(&|| c_scan(cenv)),
                || timed(&|| our_scan(oenv)),
            )
        })
        .collect();
    report("scan", &pairs);
}

/// Reads criterion's mean estimates of this run and prints ours/C
/// throughput ratios.
fn print_ratios() {
    let mean = |group: &str, bench: &str| estimate(group, bench, &["mean"]);
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
