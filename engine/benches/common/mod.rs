//! What the read benchmarks share: the environment of random keys, built
//! once with C LMDB, and C's `mdb_get` timed without the wrapper.

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
