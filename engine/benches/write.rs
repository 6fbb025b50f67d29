//! Write path against C LMDB 0.9.24, side by side in the same run.
//!
//! Run with `cargo bench -p prunedb-engine --bench write`. Every measured
//! iteration starts from a fresh environment in a temporary directory
//! (creating, filling and removing it is not timed; the commit is). Both
//! engines run with the same flags: `NOSYNC` everywhere, so the figures
//! measure the engines rather than the disk, and each case again with
//! `WRITEMAP` added. Without `WRITEMAP` ours runs twice: as it opens by
//! default (commits copy reused pages through a writable map, see
//! `EnvBuilder::commit_through_map`), and with every page written by
//! `pwrite` as C writes them (`_pwrite`). With `WRITEMAP` ours runs twice
//! too: as C does, and with the map backed by huge pages
//! (`_writemap_huge`, `EnvBuilder::huge_pages`, an option C does not
//! have: C runs with `WRITEMAP` alone there).
//!
//! Cases: `bulk_random` (1M random 16-byte keys, 100-byte values, one
//! transaction), `bulk_append` (1M sequential keys with `APPEND`, one
//! transaction), `small_txns` (1000 transactions of 100 random puts),
//! `delete_random` (100k random deletes, one transaction, from a 1M-key
//! database built once by C and copied for every iteration).
//!
//! Each case has a `c` and an `ours` variant. After criterion's groups, the
//! run ends with a summary taken apart from them: every case again in
//! rounds that alternate C and ours (`PRUNEDB_BENCH_ROUNDS`, 9 by
//! default, four times as many for the short `small_txns`), with the
//! median round's throughput of each and the ratios ours/C (above 1.0
//! means ours is faster): the median of the per-round ratios, their range,
//! and the ratio of the best rounds.
//! `PRUNEDB_BENCH_N` scales the 1M-key cases down for quick runs, and a
//! filter (`cargo bench -p prunedb-engine --bench write -- small_txns`)
//! picks the cases of both the criterion groups and the summary.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
mod common;
use common::{alternate, Ratios};
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

/// How an environment writes: without `WRITEMAP` as it opens by default,
/// the same with every commit page written by `pwrite` (for C: the same as
/// `Plain`), with `WRITEMAP`, or with `WRITEMAP` and, for ours only, the
/// map backed by huge pages (`EnvBuilder::huge_pages`; C has no such
/// option and runs as with `WriteMap`).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Pwrite,
    WriteMap,
    HugePages,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Plain, Mode::Pwrite, Mode::WriteMap, Mode::HugePages];

    fn suffix(self) -> &'static str {
        match self {
            Mode::Plain => "",
            Mode::Pwrite => "_pwrite",
            Mode::WriteMap => "_writemap",
            Mode::HugePages => "_writemap_huge",
        }
    }

    /// Whether C runs this mode as it runs another one.
    fn same_for_c(self) -> bool {
        matches!(self, Mode::Pwrite | Mode::HugePages)
    }

    fn writemap(self) -> bool {
        matches!(self, Mode::WriteMap | Mode::HugePages)
    }
}

fn c_env(dir: &Path, mode: Mode) -> c::Env {
    let mut flags = c::flags::MDB_NOSYNC;
    if mode.writemap() {
        flags |= c::flags::MDB_WRITEMAP;
    }
    c::Env::builder()
        .map_size(MAP_SIZE as usize)
        .flags(flags)
        .open(dir)
        .unwrap()
}

fn our_env(dir: &Path, mode: Mode) -> e::Env {
    let mut flags = e::EnvFlags::NOSYNC;
    if mode.writemap() {
        flags = flags | e::EnvFlags::WRITEMAP;
    }
    e::Env::builder()
        .map_size(MAP_SIZE)
        .flags(flags)
        .commit_through_map(mode != Mode::Pwrite)
        .huge_pages(mode == Mode::HugePages)
        .open(dir)
        .unwrap()
}

/// The engines under test, behind one interface. `run` gets a fresh
/// environment and returns the time of the measured part.
trait Engine {
    fn puts(dir: &Path, mode: Mode, keys: &[Key], flags_append: bool) -> Duration;
    fn small_txns(dir: &Path, mode: Mode, keys: &[Key]) -> Duration;
    fn deletes(dir: &Path, mode: Mode, keys: &[Key]) -> Duration;
}

struct C;
struct Ours;

impl Engine for C {
    fn puts(dir: &Path, mode: Mode, keys: &[Key], append: bool) -> Duration {
        let env = c_env(dir, mode);
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

    fn small_txns(dir: &Path, mode: Mode, keys: &[Key]) -> Duration {
        let env = c_env(dir, mode);
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

    fn deletes(dir: &Path, mode: Mode, keys: &[Key]) -> Duration {
        let env = c_env(dir, mode);
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
    fn puts(dir: &Path, mode: Mode, keys: &[Key], append: bool) -> Duration {
        let env = our_env(dir, mode);
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

    fn small_txns(dir: &Path, mode: Mode, keys: &[Key]) -> Duration {
        let env = our_env(dir, mode);
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

    fn deletes(dir: &Path, mode: Mode, keys: &[Key]) -> Duration {
        let env = our_env(dir, mode);
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
        let env = c_env(&dir.0, Mode::Plain);
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

/// One benchmark case: C's side and ours, each run on a fresh environment
/// (with `WRITEMAP` when asked) and returning the time of its measured part.
struct Case<'a> {
    group: &'static str,
    /// Operations per run, and what they are.
    count: usize,
    unit: &'static str,
    /// Summary rounds as a multiple of the base count: a case that runs
    /// for a tenth of a second varies more from round to round than the
    /// others, and more of its rounds cost little.
    weight: usize,
    c: Run<'a>,
    ours: Run<'a>,
}

/// One side of a case: the time of its measured part on the environment
/// at the path, written as the mode says.
type Run<'a> = Box<dyn Fn(&Path, Mode) -> Duration + 'a>;

/// Runs `run` on a fresh environment directory, removed afterwards (not
/// timed: `run` returns the time of its measured part).
fn fresh(run: &dyn Fn(&Path, Mode) -> Duration, mode: Mode) -> Duration {
    let dir = TempDir::new();
    black_box(run(&dir.0, mode))
}

/// Alternating rounds per case for the summary (`PRUNEDB_BENCH_ROUNDS`).
fn rounds() -> usize {
    std::env::var("PRUNEDB_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9)
}

fn main() {
    let n = entries();
    let random = random_keys(n, 1);
    let sequential = sequential_keys(n);
    let small = random_keys(SMALL_TXNS * SMALL_PUTS, 3);
    let del = delete_source(n);
    // The copy is flushed before the timed part, so that the kernel
    // writing it back does not run into the deletes.
    let copy_db = |dir: &Path| {
        let to = dir.join("data.mdb");
        std::fs::copy(del.dir.0.join("data.mdb"), &to).unwrap();
        std::fs::File::open(&to).unwrap().sync_all().unwrap();
    };
    let cases = [
        Case {
            group: "bulk_random",
            count: n,
            weight: 1,
            unit: "puts/s",
            c: Box::new(|d, mode| C::puts(d, mode, &random, false)),
            ours: Box::new(|d, mode| Ours::puts(d, mode, &random, false)),
        },
        Case {
            group: "bulk_append",
            count: n,
            weight: 1,
            unit: "puts/s",
            c: Box::new(|d, mode| C::puts(d, mode, &sequential, true)),
            ours: Box::new(|d, mode| Ours::puts(d, mode, &sequential, true)),
        },
        Case {
            group: "small_txns",
            count: SMALL_TXNS,
            weight: 4,
            unit: "txns/s",
            c: Box::new(|d, mode| C::small_txns(d, mode, &small)),
            ours: Box::new(|d, mode| Ours::small_txns(d, mode, &small)),
        },
        Case {
            group: "delete_random",
            count: del.victims.len(),
            weight: 1,
            unit: "dels/s",
            c: Box::new(|d, mode| {
                copy_db(d);
                C::deletes(d, mode, &del.victims)
            }),
            ours: Box::new(|d, mode| {
                copy_db(d);
                Ours::deletes(d, mode, &del.victims)
            }),
        },
    ];

    // Every iteration is long (up to seconds), so few samples, one
    // iteration each, and a warm-up of a single iteration.
    let mut crit = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(1))
        .without_plots()
        .configure_from_args();
    for case in &cases {
        let mut g = crit.benchmark_group(case.group);
        g.sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(case.count as u64));
        for mode in Mode::ALL {
            for (who, run) in [("c", &case.c), ("ours", &case.ours)] {
                if who == "c" && mode.same_for_c() {
                    continue; // the same as C's plain or WRITEMAP run
                }
                g.bench_function(format!("{who}{}", mode.suffix()), |b| {
                    b.iter_custom(|iters| (0..iters).map(|_| fresh(run.as_ref(), mode)).sum())
                });
            }
        }
        g.finish();
    }
    crit.final_summary();
    // Criterion's own filter is the first argument that is not an option
    // (`--bench` comes first from cargo).
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let picked: Vec<&Case<'_>> = cases
        .iter()
        .filter(|c| filter.as_ref().is_none_or(|f| c.group.contains(f.as_str())))
        .collect();
    interleaved(&picked);
}

/// The summary: every case again, in rounds that alternate C and ours, so
/// that load from other processes, which drifts over the minutes the
/// criterion groups take, hits both alike. Prints the median round's
/// throughput of each and the ratios ours/C (above 1.0: ours is faster).
fn interleaved(cases: &[&Case<'_>]) {
    let base = rounds();
    println!("\nthroughput of the median round, and ratios ours/C over alternating rounds:");
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    for case in cases {
        let rounds = base * case.weight;
        for mode in Mode::ALL {
            let pairs: Vec<(Duration, Duration)> = (0..rounds)
                .map(|round| {
                    alternate(
                        round,
                        || fresh(case.c.as_ref(), mode),
                        || fresh(case.ours.as_ref(), mode),
                    )
                })
                .collect();
            let per_sec = |t: f64| case.count as f64 / t;
            println!(
                "  {:<24} c {:>9.0}  ours {:>9.0} {:<7} {}   ({rounds} rounds)",
                format!("{}{}", case.group, mode.suffix()),
                per_sec(median(pairs.iter().map(|p| p.0).collect())),
                per_sec(median(pairs.iter().map(|p| p.1).collect())),
                case.unit,
                Ratios::of(&pairs),
            );
        }
    }
}
