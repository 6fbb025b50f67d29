//! Commits without `WRITEMAP` that copy reused pages into the file through
//! a writable map (`EnvBuilder::commit_through_map`, the default) write
//! the very file that commits writing every page with `pwrite` write, and
//! really skip the system call.

use prunedb_engine::{Env, EnvFlags, PutFlags};
use rand::{Rng, SeedableRng};

/// Random puts and deletes over a few thousand keys, values inline and
/// on overflow pages, with aborted and nested transactions: enough churn
/// that most commits reuse freed pages.
fn churn(env: &Env, txns: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for t in 0..txns {
        let mut txn = env.write_txn().expect("begin");
        let db = txn.open_db(None).expect("main");
        for _ in 0..40 {
            let key = rng.gen_range(0u32..3000).to_be_bytes();
            if rng.gen_ratio(1, 4) {
                match txn.del(db, &key, None) {
                    Ok(()) | Err(prunedb_engine::Error::NotFound) => {}
                    Err(e) => panic!("del: {e:?}"),
                }
            } else {
                let len = if rng.gen_ratio(1, 50) {
                    9000
                } else {
                    rng.gen_range(1..300)
                };
                let value = vec![rng.gen::<u8>(); len];
                txn.put(db, &key, &value, PutFlags::empty()).expect("put");
            }
        }
        if t % 5 == 0 {
            let mut nested = txn.nested().expect("nested");
            let key = rng.gen_range(0u32..3000).to_be_bytes();
            nested
                .put(db, &key, b"nested", PutFlags::empty())
                .expect("put");
            if t % 10 == 0 {
                nested.commit().expect("nested commit");
            }
        }
        if t % 7 == 3 {
            txn.abort();
        } else {
            txn.commit().expect("commit");
        }
    }
}

fn open(dir: &std::path::Path, flags: EnvFlags, through_map: bool) -> Env {
    Env::builder()
        .map_size(64 << 20)
        .flags(flags)
        .commit_through_map(through_map)
        .open(dir)
        .expect("open")
}

#[test]
fn map_commits_write_the_same_file_as_pwrite_commits() {
    for flags in [EnvFlags::NOSYNC, EnvFlags::empty()] {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let (by_map, by_pwrite) = (open(a.path(), flags, true), open(b.path(), flags, false));
        assert!(!by_pwrite.commits_through_map());
        churn(&by_map, 150);
        churn(&by_pwrite, 150);
        drop((by_map, by_pwrite));
        let read = |d: &tempfile::TempDir| std::fs::read(d.path().join("data.mdb")).expect("read");
        let (x, y) = (read(&a), read(&b));
        assert_eq!(x.len(), y.len(), "{flags:?}: file lengths");
        let ps = 4096.min(x.len());
        let first_diff = x.iter().zip(&y).position(|(p, q)| p != q);
        assert!(
            first_diff.is_none(),
            "{flags:?}: files differ first in page {}",
            first_diff.unwrap_or(0) / ps
        );
    }
}

/// Write system calls of the calling thread so far (`syscw` of Linux's
/// per-thread I/O accounting), which the other tests' threads do not move.
#[cfg(target_os = "linux")]
fn write_calls() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").expect("thread io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("syscw")
}

/// With the map, a commit that reuses the pages earlier commits of this
/// process wrote makes about one write call (its meta page); without, one
/// per run of pages. Fails if the map path is silently not taken.
#[cfg(target_os = "linux")]
#[test]
fn reused_pages_go_through_the_map_without_a_write_call() {
    let calls = |through_map: bool| {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = open(dir.path(), EnvFlags::NOSYNC, through_map);
        churn(&env, 100);
        let before = write_calls();
        churn(&env, 100);
        (write_calls() - before, env.commits_through_map())
    };
    let (by_pwrite, _) = calls(false);
    let (by_map, used) = calls(true);
    eprintln!("write calls over 100 transactions: {by_map} with the map, {by_pwrite} without");
    if !used {
        eprintln!("the temporary directory's file system takes no commit map: nothing to compare");
        return;
    }
    // 100 transactions, 85 of them committed, of ~40 changes each.
    assert!(by_pwrite > 85 * 20, "pwrite calls: {by_pwrite}");
    assert!(
        by_map * 5 < by_pwrite,
        "write calls with the map: {by_map}, without: {by_pwrite}"
    );
}
