//! Write cursors: CURRENT, MULTIPLE, delete-and-continue, RESERVE-like use.

use prunedb_engine::{CursorOp, DbFlags, Env, Error, Iterate, PutFlags, ReadTxn};

fn env(dir: &std::path::Path) -> Env {
    Env::builder()
        .max_dbs(4)
        .map_size(32 << 20)
        .open(dir)
        .expect("open")
}

#[test]
fn delete_while_iterating_visits_every_item_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(dir.path());
    let mut txn = env.write_txn().expect("txn");
    let db = txn.create_db(Some("d"), DbFlags::DUPSORT).expect("db");
    for k in 0..50u32 {
        for v in 0..(k % 5 + 1) {
            txn.put(
                db,
                format!("k{k:03}").as_bytes(),
                format!("v{v}").as_bytes(),
                PutFlags::empty(),
            )
            .expect("put");
        }
    }
    let mut seen = 0;
    let mut kept = 0;
    {
        let mut c = txn.cursor_mut(db).expect("cursor");
        let mut op = CursorOp::First;
        while let Some((k, v)) = c.get(op, None, None).expect("get") {
            let (k, v) = (k.to_vec(), v.to_vec());
            seen += 1;
            op = CursorOp::Next;
            if v == b"v0" {
                c.del(PutFlags::empty()).expect("del");
            } else {
                kept += 1;
                assert!(k.starts_with(b"k"));
            }
        }
    }
    assert_eq!(seen, (0..50u32).map(|k| k % 5 + 1).sum::<u32>());
    assert_eq!(txn.stat(db).expect("stat").entries, kept);
    assert!(txn
        .iter(db)
        .expect("iter")
        .all(|e| e.expect("entry").1 != b"v0"));
    txn.commit().expect("commit");
}

#[test]
fn put_current_replaces_the_value_under_the_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(dir.path());
    let mut txn = env.write_txn().expect("txn");
    let db = txn.open_db(None).expect("main");
    txn.put(db, b"a", b"1", PutFlags::empty()).expect("put");
    txn.put(db, b"b", b"2", PutFlags::empty()).expect("put");
    {
        let mut c = txn.cursor_mut(db).expect("cursor");
        c.get(CursorOp::Last, None, None).expect("last");
        c.put(b"b", &[7u8; 5000], PutFlags::CURRENT)
            .expect("current");
        assert_eq!(
            c.put(b"a", b"x", PutFlags::CURRENT),
            Err(Error::InvalidArgument)
        );
        let (k, v) = c
            .get(CursorOp::GetCurrent, None, None)
            .expect("cur")
            .expect("some");
        assert_eq!((k, v.len()), (&b"b"[..], 5000));
    }
    assert_eq!(txn.get(db, b"b").expect("get").map(<[u8]>::len), Some(5000));
    txn.commit().expect("commit");
}

#[test]
fn multiple_stores_fixed_values_and_reads_them_back_in_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(dir.path());
    let mut txn = env.write_txn().expect("txn");
    let db = txn
        .create_db(
            Some("f"),
            DbFlags::DUPSORT | DbFlags::DUPFIXED | DbFlags::INTEGERDUP,
        )
        .expect("db");
    let vals: Vec<u8> = (0..3000u32).rev().flat_map(|v| v.to_le_bytes()).collect();
    let n = {
        let mut c = txn.cursor_mut(db).expect("cursor");
        c.put_multiple(b"key", &vals, 4, PutFlags::empty())
            .expect("multiple")
    };
    assert_eq!(n, 3000);
    txn.commit().expect("commit");

    let txn = env.read_txn().expect("read");
    let db = txn.open_db(Some("f")).expect("db");
    let mut c = txn.cursor(db).expect("cursor");
    c.get(CursorOp::Set, Some(b"key"), None).expect("set");
    let mut all = Vec::new();
    let mut op = CursorOp::GetMultiple;
    while let Some((_, chunk)) = c.get(op, None, None).expect("multiple") {
        all.extend(
            chunk
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4"))),
        );
        op = CursorOp::NextMultiple;
    }
    assert_eq!(all, (0..3000u32).collect::<Vec<_>>());
}

#[test]
fn reserve_hands_out_space_to_fill_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(dir.path());
    let mut txn = env.write_txn().expect("txn");
    let db = txn.open_db(None).expect("main");
    for (key, len) in [(&b"small"[..], 40usize), (b"big", 10_000)] {
        let space = txn
            .reserve(db, key, len, PutFlags::empty())
            .expect("reserve");
        assert_eq!(space.len(), len);
        for (i, b) in space.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
    }
    let dups = txn.create_db(Some("d"), DbFlags::DUPSORT).expect("db");
    assert_eq!(
        txn.reserve(dups, b"k", 4, PutFlags::empty()).map(|_| ()),
        Err(Error::InvalidArgument)
    );
    txn.commit().expect("commit");
    let txn = env.read_txn().expect("read");
    let db = txn.open_db(None).expect("main");
    for (key, len) in [(&b"small"[..], 40usize), (b"big", 10_000)] {
        let v = txn.get(db, key).expect("get").expect("present");
        assert_eq!(v.len(), len);
        assert!(v.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }
}
