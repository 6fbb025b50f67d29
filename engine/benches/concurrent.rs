//! Reads while a writer commits, against C LMDB 0.9.24 in the same run.
//!
//! Run with `cargo bench -p prunedb-engine --bench concurrent` (about a
//! minute). An environment of 200k random 16-byte keys with 100-byte values
//! is built once by C under the target directory; each run copies it twice,
//! one copy for C and one for us, both opened with their lock files. For
//! each library in turn, a writer thread commits small transactions (10
//! overwrites of random keys, NOSYNC) at a fixed pace while 2 reader threads
//! do random gets, 1000 per read transaction (so beginning and ending read
//! txns is part of the cost). The pace is the same for both (a faster
//! writer would otherwise take more of the 2 cores from its own readers).
//! The run ends with gets/s and the ratio ours/C (above 1.0 means we are
//! faster): from criterion's estimates, then from rounds that alternate C
//! and ours, so drifting load from other processes hits both alike.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{build_c_env, estimate, keys, parallel, raw_get, Key, VAL_LEN};
use criterion::{Criterion, Throughput};
use prunedb_clmdb as c;
use prunedb_engine as e;
use prunedb_engine::ReadTxn;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const ENTRIES: usize = 200_000;
/// Gets per read transaction, and per measured batch.
const BATCH: usize = 1000;
const READERS: usize = 2;
/// Puts per write transaction.
const PUTS: usize = 10;
/// Write transactions per second the writer aims at.
const COMMITS_PER_SEC: u64 = 500;
const MAP_SIZE: usize = 1 << 30;

fn tmp() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf()
}

/// A fresh copy of the base environment's data file (no lock file: the
/// library creates its own).
fn copy_of(base: &Path, name: &str) -> PathBuf {
    let dir = tmp().join(format!("bench-concurrent-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(base.join("data.mdb"), dir.join("data.mdb")).unwrap();
    dir
}

/// A writer thread, paused until started.
struct Writer {
    run: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn spawn(
        keys: Arc<Vec<Key>>,
        mut commit: impl FnMut(&[(Key, [u8; VAL_LEN])]) + Send + 'static,
    ) -> Writer {
        let run = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let (r, s, n) = (run.clone(), stop.clone(), commits.clone());
        let thread = std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(9);
            let period = Duration::from_nanos(1_000_000_000 / COMMITS_PER_SEC);
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                if !r.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    next = Instant::now();
                    continue;
                }
                let puts: Vec<(Key, [u8; VAL_LEN])> = (0..PUTS)
                    .map(|_| {
                        let mut v = [0u8; VAL_LEN];
                        rng.fill(&mut v[..]);
                        (*keys.choose(&mut rng).unwrap(), v)
                    })
                    .collect();
                commit(&puts);
                n.fetch_add(1, Ordering::Relaxed);
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    // Behind: do not try to catch up in a burst.
                    next = now;
                }
            }
        });
        Writer {
            run,
            stop,
            commits,
            thread: Some(thread),
        }
    }

    fn set_running(&self, on: bool) {
        self.run.store(on, Ordering::Relaxed);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn c_gets(env: &c::Env, keys: &[Key], iters: u64, start: &Barrier) -> Duration {
    let mut i = 0;
    start.wait();
    let t = Instant::now();
    for _ in 0..iters {
        let txn = env.begin_ro().unwrap();
        for _ in 0..BATCH {
            black_box(raw_get(&txn, c::Dbi::MAIN, &keys[i]));
            i = if i + 1 == keys.len() { 0 } else { i + 1 };
        }
    }
    t.elapsed()
}

fn our_gets(env: &e::Env, keys: &[Key], iters: u64, start: &Barrier) -> Duration {
    let mut i = 0;
    start.wait();
    let t = Instant::now();
    for _ in 0..iters {
        let txn = env.read_txn().unwrap();
        for _ in 0..BATCH {
            let v = txn.get(e::Database::MAIN, &keys[i]).unwrap();
            black_box(v.expect("every looked-up key exists").len());
            i = if i + 1 == keys.len() { 0 } else { i + 1 };
        }
    }
    t.elapsed()
}

fn main() {
    let keys = Arc::new(keys(ENTRIES));
    let base = tmp().join(format!("bench-concurrent-base-{ENTRIES}"));
    build_c_env(&base, &keys, MAP_SIZE);

    let cenv = Arc::new(
        c::Env::builder()
            .map_size(MAP_SIZE)
            .flags(c::flags::MDB_NOSYNC)
            .open(&copy_of(&base, "c"))
            .unwrap(),
    );
    {
        let t = cenv.begin_ro().unwrap();
        assert_eq!(t.open_db(None, 0).unwrap(), c::Dbi::MAIN);
        t.commit().unwrap();
    }
    let oenv = e::Env::builder()
        .map_size(MAP_SIZE as u64)
        .flags(e::EnvFlags::NOSYNC)
        .open(copy_of(&base, "ours"))
        .unwrap();

    let c_writer = {
        let env = cenv.clone();
        Writer::spawn(keys.clone(), move |puts| {
            let mut txn = env.begin_rw().unwrap();
            for (k, v) in puts {
                txn.put(c::Dbi::MAIN, k, v, 0).unwrap();
            }
            txn.commit().unwrap();
        })
    };
    let our_writer = {
        let env = oenv.clone();
        Writer::spawn(keys.clone(), move |puts| {
            let mut txn = env.write_txn().unwrap();
            for (k, v) in puts {
                txn.put(e::Database::MAIN, k, v, e::PutFlags::empty())
                    .unwrap();
            }
            txn.commit().unwrap();
        })
    };

    let per_thread: Vec<Vec<Key>> = (0..READERS as u64)
        .map(|t| {
            let mut l = keys.to_vec();
            l.shuffle(&mut StdRng::seed_from_u64(100 + t));
            l
        })
        .collect();

    let mut crit = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let group = format!("concurrent_get_{READERS}t");
    let mut g = crit.benchmark_group(&group);
    g.throughput(Throughput::Elements((BATCH * READERS) as u64));
    let mut rates = Vec::new();
    for (name, writer) in [("c", &c_writer), ("ours", &our_writer)] {
        let before = (writer.commits.load(Ordering::Relaxed), Instant::now());
        writer.set_running(true);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| match name {
                "c" => parallel(&per_thread, |ks, st| c_gets(&cenv, ks, iters, st)),
                _ => parallel(&per_thread, |ks, st| our_gets(&oenv, ks, iters, st)),
            })
        });
        writer.set_running(false);
        let commits = writer.commits.load(Ordering::Relaxed) - before.0;
        rates.push((name, commits as f64 / before.1.elapsed().as_secs_f64()));
    }
    g.finish();
    crit.final_summary();
    for (name, rate) in &rates {
        println!("{name} writer: {rate:.0} commits/s during its benchmark");
    }
    print_ratio(&group);
    interleaved(&cenv, &oenv, &c_writer, &our_writer, &per_thread);
}

/// Reads criterion's estimates of this run; prints gets/s and ours/C.
fn print_ratio(group: &str) {
    // The slope is the estimate criterion prints for these linear samples.
    let mean = |bench: &str| estimate(group, bench, &["slope", "mean"]);
    // The estimates are nanoseconds per iteration: BATCH gets on each reader.
    let gets_per_sec = |ns: f64| (BATCH * READERS) as f64 / (ns * 1e-9);
    match (mean("c"), mean("ours")) {
        (Some(ct), Some(ot)) => println!(
            "\n{group}: C {:.2} M gets/s, ours {:.2} M gets/s, ratio ours/C {:.3}x",
            gets_per_sec(ct) / 1e6,
            gets_per_sec(ot) / 1e6,
            ct / ot
        ),
        _ => println!("\n{group}: no estimates"),
    }
}

/// C and ours in alternating rounds, each with its own writer running.
fn interleaved(
    cenv: &c::Env,
    oenv: &e::Env,
    c_writer: &Writer,
    our_writer: &Writer,
    per_thread: &[Vec<Key>],
) {
    const ROUNDS: usize = 20;
    const ITERS: u64 = 200;
    let round = |w: &Writer, f: &dyn Fn() -> Duration| {
        w.set_running(true);
        std::thread::sleep(Duration::from_millis(20));
        let t = f();
        w.set_running(false);
        t
    };
    let pairs: Vec<(Duration, Duration)> = (0..ROUNDS)
        .map(|_| {
            let c = round(c_writer, &|| {
                parallel(per_thread, |ks, st| c_gets(cenv, ks, ITERS, st))
            });
            let o = round(our_writer, &|| {
                parallel(per_thread, |ks, st| our_gets(oenv, ks, ITERS, st))
            });
            (c, o)
        })
        .collect();
    let gets = (ITERS as usize * BATCH * READERS) as f64;
    let best_c = pairs.iter().map(|p| p.0).min().unwrap().as_secs_f64();
    let best_o = pairs.iter().map(|p| p.1).min().unwrap().as_secs_f64();
    let mut r: Vec<f64> = pairs
        .iter()
        .map(|(c, o)| c.as_secs_f64() / o.as_secs_f64())
        .collect();
    r.sort_by(f64::total_cmp);
    println!(
        "interleaved ({ROUNDS} rounds): best C {:.2} M gets/s, best ours {:.2} M gets/s, \
         best-round ratio {:.3}x, median ratio {:.3}x (range {:.3}..{:.3})",
        gets / best_c / 1e6,
        gets / best_o / 1e6,
        best_c / best_o,
        r[r.len() / 2],
        r[0],
        r[r.len() - 1]
    );
}
