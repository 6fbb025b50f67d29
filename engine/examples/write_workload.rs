//! One run of a write benchmark case, by C LMDB or by this engine, for
//! counting instructions: `valgrind --tool=callgrind` counts the same
//! total for the same binary and input whatever else the machine does,
//! where wall times on a shared machine vary by tens of percent.
//!
//! ```sh
//! cargo build --release -p prunedb-engine --example write_workload
//! valgrind --tool=callgrind target/release/examples/write_workload ours small writemap
//! valgrind --tool=callgrind target/release/examples/write_workload c small writemap
//! ```
//!
//! Arguments: `c` or `ours`; the case, `small` (1000 transactions of 100
//! random puts), `tiny` (10,000 transactions of one random put), `bulk`
//! (200k random puts in one transaction), `append` (200k sequential keys
//! with APPEND), `delete` (`bulk`, then every tenth key deleted in a
//! second transaction) or `delete1m` (the write benchmark's
//! `delete_random`: 100k random deletes in one transaction from a copy of
//! a 1M-key database written by C, which is built once under `target/`
//! and kept; the copy, synced, is made before the timed part, so the
//! instruction counts include building the keys and copying);
//! `writemap`, `huge` (`writemap` with, for ours, the
//! map backed by huge pages:
//! [`EnvBuilder::huge_pages`](e::EnvBuilder::huge_pages)), `plain`, or
//! `pwrite` (plain, but commits write every page with `pwrite` as C LMDB
//! does: [`EnvBuilder::commit_through_map`](e::EnvBuilder::commit_through_map)).
//! Keys are 16 random bytes, values 100 bytes, `NOSYNC` throughout, as in
//! `cargo bench --bench write`, unless a fourth argument `sync` asks for
//! synced commits. The environment goes to a temporary
//! directory under `target/`, removed afterwards. The time from opening
//! the environment to the last commit goes to standard error, with the
//! process's user and system time and minor page faults over it, and the
//! number of the last page in use (how far the file grew).

use prunedb_clmdb as c;
use prunedb_engine as e;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (who, case, mode, synced) = match &args[..] {
        [who, case, mode] => (who, case, mode, false),
        [who, case, mode, sync] if sync == "sync" => (who, case, mode, true),
        _ => {
            eprintln!(
                "usage: write_workload c|ours small|tiny|bulk|append|delete|delete1m \
                 writemap|huge|plain|pwrite [sync]"
            );
            std::process::exit(2);
        }
    };
    let writemap = mode == "writemap" || mode == "huge";
    let keys: Vec<[u8; 16]> = match case.as_str() {
        "append" => (0..200_000u64)
            .map(|i| {
                let mut k = [0u8; 16];
                k[8..].copy_from_slice(&i.to_be_bytes());
                k
            })
            .collect(),
        "small" => random_keys(100_000, 3),
        "tiny" => random_keys(10_000, 3),
        "delete1m" => Vec::new(),
        _ => random_keys(200_000, 3),
    };
    let per_txn = match case.as_str() {
        "small" => 100,
        "tiny" => 1,
        _ => keys.len().max(1),
    };
    let append = case == "append";
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = target.join(format!("write-workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let doomed: Vec<[u8; 16]> = match case.as_str() {
        "delete" => keys.iter().step_by(10).copied().collect(),
        "delete1m" => {
            let (source, mut victims) = c_million(&target.join("write-workload-c1m"));
            let to = dir.join("data.mdb");
            std::fs::copy(source.join("data.mdb"), &to).unwrap();
            std::fs::File::open(&to).unwrap().sync_all().unwrap();
            victims.shuffle(&mut rand::rngs::StdRng::seed_from_u64(12));
            victims.truncate(100_000);
            victims
        }
        _ => Vec::new(),
    };
    let value = [7u8; 100];
    let usage = Usage::now();
    let start = std::time::Instant::now();
    let last_pgno = match who.as_str() {
        "c" => {
            let mut flags = if synced { 0 } else { c::flags::MDB_NOSYNC };
            if writemap {
                flags |= c::flags::MDB_WRITEMAP;
            }
            let env = c::Env::builder()
                .map_size(4 << 30)
                .flags(flags)
                .open(&dir)
                .unwrap();
            let put_flags = if append { c::flags::MDB_APPEND } else { 0 };
            for chunk in keys.chunks(per_txn) {
                let mut txn = env.begin_rw().unwrap();
                let dbi = txn.open_db(None, 0).unwrap();
                for k in chunk {
                    txn.put(dbi, k, &value, put_flags).unwrap();
                }
                txn.commit().unwrap();
            }
            let mut txn = env.begin_rw().unwrap();
            let dbi = txn.open_db(None, 0).unwrap();
            for k in &doomed {
                txn.del(dbi, k, None).unwrap();
            }
            txn.commit().unwrap();
            env.info().unwrap().last_pgno as u64
        }
        "ours" => {
            let mut flags = if synced {
                e::EnvFlags::empty()
            } else {
                e::EnvFlags::NOSYNC
            };
            if writemap {
                flags = flags | e::EnvFlags::WRITEMAP;
            }
            let env = e::Env::builder()
                .map_size(4 << 30)
                .flags(flags)
                .commit_through_map(mode != "pwrite")
                .huge_pages(mode == "huge")
                .open(&dir)
                .unwrap();
            let put_flags = if append {
                e::PutFlags::APPEND
            } else {
                e::PutFlags::empty()
            };
            for chunk in keys.chunks(per_txn) {
                let mut txn = env.write_txn().unwrap();
                let db = txn.open_db(None).unwrap();
                for k in chunk {
                    txn.put(db, k, &value, put_flags).unwrap();
                }
                txn.commit().unwrap();
            }
            let mut txn = env.write_txn().unwrap();
            let db = txn.open_db(None).unwrap();
            for k in &doomed {
                txn.del(db, k, None).unwrap();
            }
            txn.commit().unwrap();
            env.info().unwrap().last_pgno
        }
        _ => {
            eprintln!("the engine is `c` or `ours`");
            std::process::exit(2);
        }
    };
    let elapsed = start.elapsed();
    let used = Usage::now().since(&usage);
    eprintln!(
        "{:.3} ms (user {} ms, system {} ms, {} minor faults), last page {last_pgno}",
        elapsed.as_secs_f64() * 1e3,
        used.user_ms,
        used.system_ms,
        used.minor_faults,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn random_keys(n: usize, seed: u64) -> Vec<[u8; 16]> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen()).collect()
}

/// The 1M-key database of the write benchmark's delete case, written by
/// C with the benchmark's keys and values, at `dir` (built once, then
/// kept), and its keys.
fn c_million(dir: &std::path::Path) -> (std::path::PathBuf, Vec<[u8; 16]>) {
    let keys = random_keys(1_000_000, 11);
    let done = dir.join("complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let env = c::Env::builder()
            .map_size(4 << 30)
            .flags(c::flags::MDB_NOSYNC)
            .open(dir)
            .unwrap();
        let mut txn = env.begin_rw().unwrap();
        let dbi = txn.open_db(None, 0).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let mut v = [0u8; 100];
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            txn.put(dbi, k, &v, 0).unwrap();
        }
        txn.commit().unwrap();
        env.sync(true).unwrap();
        std::fs::write(done, b"").unwrap();
    }
    (dir.to_path_buf(), keys)
}

/// The process's CPU time and minor page faults so far, from
/// `/proc/self/stat` (zero where that is not readable).
struct Usage {
    user_ms: u64,
    system_ms: u64,
    minor_faults: u64,
}

impl Usage {
    fn now() -> Usage {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // The fields after the command name, which is in parentheses and
        // may hold spaces: state is field 3, minflt 10, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let field = |n: usize| -> u64 {
            rest.split_whitespace()
                .nth(n - 3)
                .and_then(|f| f.parse().ok())
                .unwrap_or(0)
        };
        // Times are in clock ticks of USER_HZ, which Linux fixes at 100.
        Usage {
            user_ms: field(14) * 10,
            system_ms: field(15) * 10,
            minor_faults: field(10),
        }
    }

    fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user_ms: self.user_ms.saturating_sub(earlier.user_ms),
            system_ms: self.system_ms.saturating_sub(earlier.system_ms),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}
