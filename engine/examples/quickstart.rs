//! Creates an LMDB environment with prunedb-engine, writes to it and reads
//! it back. The result opens with C LMDB's tools:
//!
//! ```sh
//! cargo run --release -p prunedb-engine --example quickstart -- target/demo-env
//! mdb_stat -a target/demo-env   # or: cargo run -p prunedb -- stat -a target/demo-env
//! ```

use prunedb_engine::ReadTxn;
use prunedb_engine::{DbFlags, Env, Iterate, PutFlags, Result};

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/demo-env".into());
    std::fs::create_dir_all(&dir)?;
    let env = Env::builder().max_dbs(4).map_size(64 << 20).open(&dir)?;

    let mut txn = env.write_txn()?;
    let blocks = txn.create_db(Some("blocks"), DbFlags::INTEGERKEY)?;
    let owners = txn.create_db(Some("owners"), DbFlags::DUPSORT)?;
    for height in 0u64..10_000 {
        let header = format!("block {height} header");
        txn.put(
            blocks,
            &height.to_le_bytes(),
            header.as_bytes(),
            PutFlags::APPEND,
        )?;
        let owner = format!("account-{:03}", height % 100);
        txn.put(
            owners,
            owner.as_bytes(),
            &height.to_be_bytes(),
            PutFlags::empty(),
        )?;
    }
    txn.commit()?;

    let txn = env.read_txn()?;
    let blocks = txn.open_db(Some("blocks"))?;
    let owners = txn.open_db(Some("owners"))?;
    // `get` borrows from the memory map: no copy, and the borrow checker
    // keeps the slice from outliving the transaction.
    let header: &[u8] = txn.get(blocks, &42u64.to_le_bytes())?.unwrap_or_default();
    println!("block 42: {}", String::from_utf8_lossy(header));
    let held = txn.dups(owners, b"account-007")?.count();
    println!("account-007 owns {held} blocks");
    let last = txn.iter_rev(blocks)?.next().transpose()?;
    if let Some((k, _)) = last {
        println!(
            "tip: {}",
            u64::from_le_bytes(k.try_into().unwrap_or_default())
        );
    }
    println!("{} entries in blocks", txn.stat(blocks)?.entries);
    Ok(())
}
