//! Write path against C LMDB 0.9.24, side by side in the same run.
//!
//! Run with `cargo bench -p prunedb-engine --bench write`. Every measured
//! iteration starts from a fresh environment in a temporary directory
//! (creating, filling and removing it is not timed; the commit is). Both
//! engines run with the same flags: `NOSYNC` everywhere, so the figures
//! measure the engines rather than the disk, and each case again with
//! `WRITEMAP` added.
//!
//! Cases: `bulk_random` (1M random 16-byte keys, 100-byte values, one
//! transaction), `bulk_append` (1M sequential keys with `APPEND`, one
//! transaction), `small_txns` (1000 transactions of 100 random puts),
//! `delete_random` (100k random deletes, one transaction, from a 1M-key
//! database built once by C and copied for every iteration).
//!
//! Each case has a `c` and an `ours` variant; the run ends with the
//! throughput ratios ours/C (above 1.0 means ours is faster), from the
//! median iteration of each, with the range over the iterations.
//! `PRUNEDB_BENCH_N` scales the 1M-key cases down for quick runs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use prunedb_clmdb as c;
use prunedb_engine as e;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const KEY_LEN: usize = 16;
const VAL_LEN: usize = 100;
const MAP_SIZE: u64 = 4 << 30;
const SMALL_TXNS: usize = 1000;
const SMALL_PUTS: usize = 100;
const DELETES: usize = 100_000;

fn entries() -> usize {
    std::env::var("PRUNEDB_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

type Key = [u8; KEY_LEN];

fn random_keys(n: usize, seed: u64) -> Vec<Key> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen()).collect()
}

fn sequential_keys(n: usize) -> Vec<Key> {
    (0..n as u64)
        .map(|i| {
            let mut k = [0u8; KEY_LEN];
            k[8..].copy_from_slice(&i.to_be_bytes());
            k
        })
        .collect()
}

fn value(i: usize) -> [u8; VAL_LEN] {
    let mut v = [0u8; VAL_LEN];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

static DIR_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let n = DIR_SEQ.fetch_add(1, Ordering::Relaxed);
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("bench-write-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn c_env(dir: &Path, writemap: bool) -> c::Env {
    let mut flags = c::flags::MDB_NOSYNC;
    if writemap {
        flags |= c::flags::MDB_WRITEMAP;
    }
    c::Env::builder()
        .map_size(MAP_SIZE as usize)
        .flags(flags)
        .open(dir)
        .unwrap()
}

fn our_env(dir: &Path, writemap: bool) -> e::Env {
    let mut flags = e::EnvFlags::NOSYNC;
    if writemap {
        flags = flags | e::EnvFlags::WRITEMAP;
    }
    e::Env::builder()
        .map_size(MAP_SIZE)
        .flags(flags)
        .open(dir)
        .unwrap()
}

/// The engines under test, behind one interface. `run` gets a fresh
/// environment and returns the time of the measured part.
trait Engine {
    const NAME: &'static str;
    fn puts(dir: &Path, wm: bool, keys: &[Key], flags_append: bool) -> Duration;
    fn small_txns(dir: &Path, wm: bool, keys: &[Key]) -> Duration;
    fn deletes(dir: &Path, wm: bool, keys: &[Key]) -> Duration;
}

struct C;
struct Ours;

impl Engine for C {
    const NAME: &'static str = "c";

    fn puts(dir: &Path, wm: bool, keys: &[Key], append: bool) -> Duration {
        let env = c_env(dir, wm);
        let flags = if append { c::flags::MDB_APPEND } else { 0 };
        let t = Instant::now();
        let mut txn = env.begin_rw().unwrap();
        let dbi = txn.open_db(None, 0).unwrap();
        for (i, k) in keys.iter().enumerate() {
            txn.put(dbi, k, &value(i), flags).unwrap();
        }
        txn.commit().unwrap();
        t.elapsed()
    }

    fn small_txns(dir: &Path, wm: bool, keys: &[Key]) -> Duration {
        let env = c_env(dir, wm);
        let t = Instant::now();
        for (j, chunk) in keys.chunks(SMALL_PUTS).enumerate() {
            let mut txn = env.begin_rw().unwrap();
            let dbi = txn.open_db(None, 0).unwrap();
            for (i, k) in chunk.iter().enumerate() {
                txn.put(dbi, k, &value(j * SMALL_PUTS + i), 0).unwrap();
            }
            txn.commit().unwrap();
        }
        t.elapsed()
    }

    fn deletes(dir: &Path, wm: bool, keys: &[Key]) -> Duration {
        let env = c_env(dir, wm);
        let t = Instant::now();
        let mut txn = env.begin_rw().unwrap();
        let dbi = txn.open_db(None, 0).unwrap();
        for k in keys {
            txn.del(dbi, k, None).unwrap();
        }
        txn.commit().unwrap();
        t.elapsed()
    }
}

impl Engine for Ours {
    const NAME: &'static str = "ours";

    fn puts(dir: &Path, wm: bool, keys: &[Key], append: bool) -> Duration {
        let env = our_env(dir, wm);
        let flags = if append {
            e::PutFlags::APPEND
        } else {
            e::PutFlags::empty()
        };
        let t = Instant::now();
        let mut txn = env.write_txn().unwrap();
        let db = txn.open_db(None).unwrap();
        for (i, k) in keys.iter().enumerate() {
            txn.put(db, k, &value(i), flags).unwrap();
        }
        txn.commit().unwrap();
        t.elapsed()
    }

    fn small_txns(dir: &Path, wm: bool, keys: &[Key]) -> Duration {
        let env = our_env(dir, wm);
        let t = Instant::now();
        for (j, chunk) in keys.chunks(SMALL_PUTS).enumerate() {
            let mut txn = env.write_txn().unwrap();
            let db = txn.open_db(None).unwrap();
            for (i, k) in chunk.iter().enumerate() {
                txn.put(db, k, &value(j * SMALL_PUTS + i), e::PutFlags::empty())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        t.elapsed()
    }

    fn deletes(dir: &Path, wm: bool, keys: &[Key]) -> Duration {
        let env = our_env(dir, wm);
        let t = Instant::now();
        let mut txn = env.write_txn().unwrap();
        let db = txn.open_db(None).unwrap();
        for k in keys {
            txn.del(db, k, None).unwrap();
        }
        txn.commit().unwrap();
        t.elapsed()
    }
}

/// Per-iteration times of every benchmark, for the ratio summary.
type Times = RefCell<BTreeMap<(String, String), Vec<Duration>>>;

/// The source of the delete case: a 1M-key database written by C, built
/// once per run.
struct DeleteSource {
    dir: TempDir,
    victims: Vec<Key>,
}

fn delete_source(n: usize) -> DeleteSource {
    let dir = TempDir::new();
    let keys = random_keys(n, 11);
    {
        let env = c_env(&dir.0, false);
        let mut txn = env.begin_rw().unwrap();
        let dbi = txn.open_db(None, 0).unwrap();
        for (i, k) in keys.iter().enumerate() {
            txn.put(dbi, k, &value(i), 0).unwrap();
        }
        txn.commit().unwrap();
        env.sync(true).unwrap();
    }
    let mut victims = keys;
    victims.shuffle(&mut StdRng::seed_from_u64(12));
    victims.truncate(DELETES.min(n));
    DeleteSource { dir, victims }
}

fn bench_case<E: Engine>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    times: &Times,
    group: &str,
    wm: bool,
    run: impl Fn(&Path, bool) -> Duration,
) {
    let id = if wm {
        format!("{}_writemap", E::NAME)
    } else {
        E::NAME.to_string()
    };
    g.bench_function(&id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = TempDir::new();
                let d = black_box(run(&dir.0, wm));
                times
                    .borrow_mut()
                    .entry((group.to_string(), id.clone()))
                    .or_default()
                    .push(d);
                total += d;
            }
            total
        })
    });
}

fn main() {
    let n = entries();
    let random = random_keys(n, 1);
    let sequential = sequential_keys(n);
    let small = random_keys(SMALL_TXNS * SMALL_PUTS, 3);
    let del = delete_source(n);

    // Every iteration is long (up to seconds), so few samples, one
    // iteration each, and a warm-up of a single iteration.
    let mut crit = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(1))
        .without_plots()
        .configure_from_args();
    let times = Times::default();

    let copy_db = |dir: &Path| {
        std::fs::copy(del.dir.0.join("data.mdb"), dir.join("data.mdb")).unwrap();
    };

    {
        let mut g = crit.benchmark_group("bulk_random");
        g.sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(n as u64));
        for wm in [false, true] {
            bench_case::<C>(&mut g, &times, "bulk_random", wm, |d, wm| {
                C::puts(d, wm, &random, false)
            });
            bench_case::<Ours>(&mut g, &times, "bulk_random", wm, |d, wm| {
                Ours::puts(d, wm, &random, false)
            });
        }
        g.finish();
    }
    {
        let mut g = crit.benchmark_group("bulk_append");
        g.sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(n as u64));
        for wm in [false, true] {
            bench_case::<C>(&mut g, &times, "bulk_append", wm, |d, wm| {
                C::puts(d, wm, &sequential, true)
            });
            bench_case::<Ours>(&mut g, &times, "bulk_append", wm, |d, wm| {
                Ours::puts(d, wm, &sequential, true)
            });
        }
        g.finish();
    }
    {
        let mut g = crit.benchmark_group("small_txns");
        g.sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(SMALL_TXNS as u64));
        for wm in [false, true] {
            bench_case::<C>(&mut g, &times, "small_txns", wm, |d, wm| {
                C::small_txns(d, wm, &small)
            });
            bench_case::<Ours>(&mut g, &times, "small_txns", wm, |d, wm| {
                Ours::small_txns(d, wm, &small)
            });
        }
        g.finish();
    }
    {
        let mut g = crit.benchmark_group("delete_random");
        g.sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(del.victims.len() as u64));
        for wm in [false, true] {
            bench_case::<C>(&mut g, &times, "delete_random", wm, |d, wm| {
                copy_db(d);
                C::deletes(d, wm, &del.victims)
            });
            bench_case::<Ours>(&mut g, &times, "delete_random", wm, |d, wm| {
                copy_db(d);
                Ours::deletes(d, wm, &del.victims)
            });
        }
        g.finish();
    }

    crit.final_summary();
    summary(&times.borrow(), n, del.victims.len());
}

/// Prints each benchmark's throughput (median iteration, with the range)
/// and the ratio ours/C of the medians.
fn summary(times: &BTreeMap<(String, String), Vec<Duration>>, n: usize, deletes: usize) {
    let units = |group: &str| -> (f64, &str) {
        match group {
            "small_txns" => (SMALL_TXNS as f64, "txns/s"),
            "delete_random" => (deletes as f64, "dels/s"),
            _ => (n as f64, "puts/s"),
        }
    };
    let stats = |v: &[Duration]| -> (f64, f64, f64) {
        let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
        s.sort_by(f64::total_cmp);
        (s[s.len() / 2], s[0], s[s.len() - 1])
    };
    println!("\nthroughput (median iteration, [fastest, slowest]) and ratio ours/C:");
    for group in ["bulk_random", "bulk_append", "small_txns", "delete_random"] {
        let (count, unit) = units(group);
        for suffix in ["", "_writemap"] {
            let get = |who: &str| times.get(&(group.to_string(), format!("{who}{suffix}")));
            let (Some(ct), Some(ot)) = (get("c"), get("ours")) else {
                continue;
            };
            let (cm, cmin, cmax) = stats(ct);
            let (om, omin, omax) = stats(ot);
            println!(
                "  {:<24} c {:>9.0} [{:.0}, {:.0}]  ours {:>9.0} [{:.0}, {:.0}] {unit}  ratio {:.2}x",
                format!("{group}{suffix}"),
                count / cm,
                count / cmax,
                count / cmin,
                count / om,
                count / omax,
                count / omin,
                cm / om,
            );
        }
    }
}
