//! Writes the seed corpus: a few small environments written by C LMDB,
//! each exercising different structures (named databases, dup sub-pages and
//! sub-databases, DUPFIXED, integer keys, overflow values, a two-level tree,
//! free pages), plus a synthetic file with 512-byte pages and trees nested
//! as deep as a reader allows. Run from the `fuzz` directory:
//!
//! ```text
//! cargo run --release --features seeds --bin make_seeds
//! ```

use std::path::Path;

use prunedb_clmdb::flags::*;
use prunedb_clmdb::{Env, Result};

fn env(dir: &Path) -> Result<Env> {
    Env::builder().max_dbs(8).map_size(16 << 20).open(dir)
}

/// Named databases of every kind, each small.
fn kinds(dir: &Path) -> Result<()> {
    let env = env(dir)?;
    let mut txn = env.begin_rw()?;
    let plain = txn.open_db(Some("plain"), MDB_CREATE)?;
    for i in 0..12u8 {
        txn.put(plain, &[b'k', i], &[i; 20], 0)?;
    }
    txn.put(plain, b"big", &[9u8; 5000], 0)?;
    let dups = txn.open_db(Some("dups"), MDB_CREATE | MDB_DUPSORT)?;
    for k in 0..3u8 {
        for v in 0..3u8 {
            txn.put(dups, &[b'a' + k], &[b'v', v], 0)?;
        }
    }
    let fixed = txn.open_db(
        Some("fixed"),
        MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
    )?;
    for v in 0..5u32 {
        txn.put(fixed, b"f", &v.to_le_bytes(), 0)?;
    }
    let ints = txn.open_db(Some("ints"), MDB_CREATE | MDB_INTEGERKEY)?;
    for v in [1u64, 256, 65536, 1 << 40] {
        txn.put(ints, &v.to_le_bytes(), b"x", 0)?;
    }
    let rev = txn.open_db(
        Some("rev"),
        MDB_CREATE | MDB_REVERSEKEY | MDB_DUPSORT | MDB_REVERSEDUP,
    )?;
    for k in [&b"ab"[..], b"ba", b"b"] {
        txn.put(rev, k, b"zy", 0)?;
        txn.put(rev, k, b"yz", 0)?;
    }
    txn.commit()
}

/// Dup sub-databases (plain and DUPFIXED) next to sub-pages.
fn subdbs(dir: &Path) -> Result<()> {
    let env = env(dir)?;
    let mut txn = env.begin_rw()?;
    let dups = txn.open_db(Some("dups"), MDB_CREATE | MDB_DUPSORT)?;
    for v in 0..90u32 {
        txn.put(dups, b"many", format!("value{v:010}").as_bytes(), 0)?;
    }
    txn.put(dups, b"one", b"1", 0)?;
    txn.put(dups, b"two", b"1", 0)?;
    txn.put(dups, b"two", b"2", 0)?;
    let fixed = txn.open_db(Some("fixed"), MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED)?;
    for v in 0..520u32 {
        txn.put(fixed, b"lots", &v.to_be_bytes(), 0)?;
    }
    txn.put(fixed, b"few", &7u32.to_be_bytes(), 0)?;
    txn.put(fixed, b"few", &8u32.to_be_bytes(), 0)?;
    txn.commit()
}

/// A main database two levels deep, then deletions in later transactions
/// so the free database has records.
fn deep_and_free(dir: &Path) -> Result<()> {
    let env = env(dir)?;
    let mut txn = env.begin_rw()?;
    let main = txn.open_db(None, 0)?;
    for i in 0..260u32 {
        txn.put(main, format!("key{i:05}").as_bytes(), &[i as u8; 24], 0)?;
    }
    txn.commit()?;
    for round in 0..3u32 {
        let mut txn = env.begin_rw()?;
        for i in (round..260).step_by(7) {
            txn.del(main, format!("key{i:05}").as_bytes(), None)?;
        }
        txn.commit()?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/open_traverse");
    std::fs::create_dir_all(&out).expect("corpus dir");
    type Maker = fn(&Path) -> Result<()>;
    let makers: [(&str, Maker); 3] = [
        ("kinds", kinds),
        ("subdbs", subdbs),
        ("deep_and_free", deep_and_free),
    ];
    for (name, make) in makers {
        let dir = std::env::temp_dir().join(format!("prunedb-seed-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        make(&dir)?;
        let data = std::fs::read(dir.join("data.mdb")).expect("read data file");
        std::fs::write(out.join(name), &data).expect("write seed");
        println!("{name}: {} bytes", data.len());
        std::fs::remove_dir_all(&dir).ok();
    }
    // Not written by C LMDB: 512-byte pages and the deepest nesting, which
    // C LMDB (using the OS page size) never produces in a small file.
    let data = prunedb_fuzz::deepest_file();
    std::fs::write(out.join("deepest"), &data).expect("write seed");
    println!("deepest: {} bytes", data.len());
    Ok(())
}
