//! Free-page reuse: under steady churn with no long-lived reader the data
//! file stops growing; a read transaction held open keeps every page it
//! can see from being reused, byte for byte.

use std::path::Path;

use prunedb_clmdb as c;
use prunedb_engine::walk::{self, Descend, Visit};
use prunedb_engine::{Database, Env, EnvFlags, PutFlags, ReadTxn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: u32 = 300;

fn open(dir: &Path) -> Env {
    Env::builder()
        .map_size(1 << 30)
        .flags(EnvFlags::NOSYNC)
        .open(dir)
        .unwrap()
}

fn data_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("data.mdb")).unwrap().len()
}

fn key(n: u32) -> [u8; 8] {
    // Scattered, so that updates touch pages all over the tree.
    (n.wrapping_mul(2_654_435_761)).to_be_bytes().repeat(2)[..8]
        .try_into()
        .unwrap()
}

/// One transaction of churn over the same key set: updates (some values
/// big enough for overflow runs), deletions and re-insertions.
fn churn(env: &Env, rng: &mut StdRng) {
    let mut txn = env.write_txn().unwrap();
    let db = txn.open_db(None).unwrap();
    for _ in 0..60 {
        let n = rng.gen_range(0..KEYS);
        match rng.gen_range(0..4) {
            0 => match txn.del(db, &key(n), None) {
                Ok(()) | Err(prunedb_engine::Error::NotFound) => {}
                Err(e) => panic!("del: {e:?}"),
            },
            _ => {
                let len = if n % 10 == 0 {
                    rng.gen_range(3000..9000)
                } else {
                    rng.gen_range(20..400)
                };
                let v = vec![rng.gen::<u8>(); len];
                txn.put(db, &key(n), &v, PutFlags::empty()).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

/// Writes every key in one transaction, values of `byte`, a tenth of them
/// on overflow pages.
fn fill(env: &Env, byte: u8) {
    let mut txn = env.write_txn().unwrap();
    let db = txn.open_db(None).unwrap();
    for n in 0..KEYS {
        let len = if n % 10 == 0 { 6000 } else { 400 };
        txn.put(db, &key(n), &vec![byte; len], PutFlags::empty())
            .unwrap();
    }
    txn.commit().unwrap();
}

fn check(env: &Env) {
    let r = env.read_txn().unwrap();
    let report = walk::check(r.snapshot()).unwrap();
    assert!(report.is_ok(), "integrity check:\n{report}");
}

#[test]
fn steady_churn_stops_the_file_growing() {
    let dir = tempfile::tempdir().unwrap();
    let env = open(dir.path());
    let mut rng = StdRng::seed_from_u64(7);
    fill(&env, 1);
    for _ in 0..100 {
        churn(&env, &mut rng);
    }
    let warm = data_len(dir.path());
    let mut max = warm;
    for i in 0..900 {
        churn(&env, &mut rng);
        max = max.max(data_len(dir.path()));
        if i % 300 == 0 {
            check(&env);
        }
    }
    check(&env);
    // The key set and value sizes stay the same, so after warm-up the
    // pages freed by each transaction serve the following ones.
    assert!(
        max <= warm + warm / 10,
        "the data file grew from {warm} to {max} bytes under steady churn"
    );
    // C LMDB continues the same churn without complaint and reads it all.
    drop(env);
    let cenv = c::Env::builder()
        .map_size(1 << 30)
        .open(dir.path())
        .unwrap();
    for round in 0..50u32 {
        let mut t = cenv.begin_rw().unwrap();
        // Opening the main database sets up its comparator in C.
        let dbi = t.open_db(None, 0).unwrap();
        for n in 0..40 {
            let k = key((round * 40 + n) % KEYS);
            t.put(dbi, &k, &[round as u8; 300], 0).unwrap();
        }
        t.commit().unwrap();
    }
    drop(cenv);
    let env = open(dir.path());
    check(&env);
    assert!(
        data_len(dir.path()) <= warm + warm / 5,
        "C's writes grew the file"
    );
}

/// Every page a snapshot can reach, with its bytes.
fn snapshot_pages(r: &prunedb_engine::RoTxn<'_>) -> Vec<(u64, Vec<u8>)> {
    let mut pages = Vec::new();
    walk::walk(r.snapshot(), &mut |v: &Visit<'_>| {
        pages.push((v.pgno, v.bytes.to_vec()));
        Ok(Descend::Into)
    })
    .unwrap();
    pages
}

fn contents<T: ReadTxn>(r: &T, db: Database) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = r.cursor(db).unwrap();
    let mut out = Vec::new();
    let mut op = prunedb_engine::CursorOp::First;
    while let Some((k, v)) = c.get(op, None, None).unwrap() {
        out.push((k.to_vec(), v.to_vec()));
        op = prunedb_engine::CursorOp::Next;
    }
    out
}

#[test]
fn a_reader_pins_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let env = open(dir.path());
    let mut rng = StdRng::seed_from_u64(11);
    fill(&env, 1);
    for _ in 0..20 {
        churn(&env, &mut rng);
    }
    let ps = env.page_size() as u64;
    let reader = env.read_txn().unwrap();
    let before = contents(&reader, Database::MAIN);
    let pages = snapshot_pages(&reader);
    let pinned_len = data_len(dir.path());
    for i in 0..300 {
        churn(&env, &mut rng);
        if i % 100 == 99 {
            // The pages as the file holds them now, not through the map.
            let file = std::fs::read(dir.path().join("data.mdb")).unwrap();
            for (pgno, bytes) in &pages {
                let at = (pgno * ps) as usize;
                assert!(
                    file.get(at..at + bytes.len()) == Some(&bytes[..]),
                    "page {pgno} of the pinned snapshot was overwritten after {} txns",
                    i + 1
                );
            }
        }
    }
    assert_eq!(contents(&reader, Database::MAIN), before);
    let grown = data_len(dir.path());
    assert!(grown > pinned_len, "the writer had to take new pages");
    drop(reader);

    // Unpinned, the same churn is served by the pages freed meanwhile.
    let unpinned = data_len(dir.path());
    for _ in 0..300 {
        churn(&env, &mut rng);
    }
    check(&env);
    assert!(
        data_len(dir.path()) <= unpinned + unpinned / 10,
        "freed pages were not reused once the reader ended: {unpinned} -> {}",
        data_len(dir.path())
    );
}

/// The txnids of the free DB's records, in order.
fn free_record_ids(env: &Env) -> Vec<u64> {
    let r = env.read_txn().unwrap();
    let mut ids = Vec::new();
    walk::free_records(r.snapshot(), |txnid, _| {
        ids.push(txnid);
        Ok(())
    })
    .unwrap();
    ids
}

/// A transaction that needs more pages than one free record lists takes
/// them from every record old enough before it grows the file, not from
/// the first alone: the records a pinned reader left behind are all used
/// up by one large transaction once the reader is gone.
#[test]
fn a_transaction_reclaims_every_record_it_may() {
    let dir = tempfile::tempdir().unwrap();
    let env = open(dir.path());
    fill(&env, 1);
    let reader = env.read_txn().unwrap();
    for i in 0..8u32 {
        let mut txn = env.write_txn().unwrap();
        let db = txn.open_db(None).unwrap();
        txn.put(db, &key(i * 37), &[i as u8; 400], PutFlags::empty())
            .unwrap();
        txn.commit().unwrap();
    }
    drop(reader);
    let piled = free_record_ids(&env);
    assert!(piled.len() >= 8, "one record per pinned commit: {piled:?}");
    // Every key rewritten: far more pages than the records hold together.
    fill(&env, 2);
    check(&env);
    // All but the newest were older than the large transaction's snapshot;
    // at most one of them may stand again, holding reclaimed pages the
    // transaction left unused.
    let reclaimable = &piled[..piled.len() - 1];
    let left: Vec<u64> = free_record_ids(&env)
        .into_iter()
        .filter(|id| reclaimable.contains(id))
        .collect();
    assert!(
        left.len() <= 1,
        "records {left:?} of {reclaimable:?} were not reclaimed"
    );
}
