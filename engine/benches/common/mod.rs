//! What the read benchmarks share: the environment of random keys, built
//! once with C LMDB, and C's `mdb_get` timed without the wrapper; and the
//! alternating rounds the ratio summaries come from.

// Each benchmark binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Barrier;
use std::time::Duration;

use prunedb_clmdb as c;
use prunedb_clmdb::ffi;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const KEY_LEN: usize = 16;
pub const VAL_LEN: usize = 100;
pub type Key = [u8; KEY_LEN];

/// `n` random keys, in insertion order; the same every run.
pub fn keys(n: usize) -> Vec<Key> {
    let mut rng = StdRng::seed_from_u64(42);
    (0..n).map(|_| rng.gen()).collect()
}

/// Builds an environment of `keys` with random values, with C, unless a
/// complete one is already at `dir` (it is cached between runs).
pub fn build_c_env(dir: &Path, keys: &[Key], map_size: usize) {
    let done = dir.join("complete");
    if done.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let env = c::Env::builder()
        .map_size(map_size)
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

/// `mdb_get` called directly, so C is timed without the wrapper's
/// bookkeeping (which costs about as many instructions as a cursor step),
/// as a C program would call it.
pub fn raw_get(txn: &c::RoTxn<'_>, dbi: c::Dbi, key: &[u8]) -> usize {
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

/// Runs `f` on one thread per key list, all at once, and returns the
/// longest thread's time.
pub fn parallel<F>(per_thread: &[Vec<Key>], f: F) -> Duration
where
    F: Fn(&[Key], &Barrier) -> Duration + Sync,
{
    let start = Barrier::new(per_thread.len());
    std::thread::scope(|s| {
        let hs: Vec<_> = per_thread
            .iter()
            .map(|ks| {
                let (f, start) = (&f, &start);
                s.spawn(move || f(ks, start))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

/// Runs one round of C's side and ours, each going first in every other
/// round, so that neither always finds the caches as the other left them.
/// Returns (C's time, ours).
pub fn alternate(
    round: usize,
    c: impl FnOnce() -> Duration,
    ours: impl FnOnce() -> Duration,
) -> (Duration, Duration) {
    if round % 2 == 0 {
        let c = c();
        (c, ours())
    } else {
        let o = ours();
        (c(), o)
    }
}

/// Throughput ratios ours/C over alternating rounds: load from other
/// processes drifts over the seconds a benchmark takes, and rounds that
/// alternate see it alike.
pub struct Ratios {
    /// C's best round over our best round.
    pub best: f64,
    /// The median of the per-round ratios.
    pub median: f64,
    /// The lowest and highest per-round ratio.
    pub range: (f64, f64),
}

impl Ratios {
    /// The ratios of `pairs` of (C's time, ours).
    pub fn of(pairs: &[(Duration, Duration)]) -> Ratios {
        let best_c = pairs.iter().map(|p| p.0).min().unwrap();
        let best_o = pairs.iter().map(|p| p.1).min().unwrap();
        let mut r: Vec<f64> = pairs
            .iter()
            .map(|(c, o)| c.as_secs_f64() / o.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        Ratios {
            best: best_c.as_secs_f64() / best_o.as_secs_f64(),
            median: r[r.len() / 2],
            range: (r[0], r[r.len() - 1]),
        }
    }
}

impl std::fmt::Display for Ratios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "best-round ratio {:.3}x   median ratio {:.3}x   (range {:.3}..{:.3})",
            self.best, self.median, self.range.0, self.range.1
        )
    }
}

/// Criterion's point estimate of `group/bench` from this run, in
/// nanoseconds per iteration: the first of `fields` (such as `"slope"`,
/// `"mean"`) that its `estimates.json` holds.
pub fn estimate(group: &str, bench: &str, fields: &[&str]) -> Option<f64> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion");
    let p = root.join(group).join(bench).join("new/estimates.json");
    let s = std::fs::read_to_string(p).ok()?;
    let at = fields.iter().find_map(|f| s.find(&format!("\"{f}\":{{")))?;
    let rest = &s[at..];
    let pe = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[pe..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse().ok()
}
