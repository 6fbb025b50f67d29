//! Pins down what C LMDB 0.9.24 returns for every cursor operation on small
//! hand-built databases. `None` in a `(key, val)` pair means C did not write
//! that argument (see `CursorItem`); `Err(code)` is C's return code.
mod common;

use common::{create, TestDir};
use prunedb_clmdb::{flags::*, Cursor, CursorOp, CursorOp::*, Env, Error, RwTxn};

type Got = Result<Option<(Option<Vec<u8>>, Option<Vec<u8>>)>, i32>;

fn g(c: &Cursor<'_>, op: CursorOp, k: Option<&[u8]>, v: Option<&[u8]>) -> Got {
    c.get_raw(op, k, v)
        .map(|o| o.map(|it| (it.key.map(<[u8]>::to_vec), it.val.map(<[u8]>::to_vec))))
        .map_err(|e| e.code)
}

/// C wrote both key and value.
fn kv(k: &[u8], v: &[u8]) -> Got {
    Ok(Some((Some(k.to_vec()), Some(v.to_vec()))))
}
/// C wrote only the value (the key argument is left as passed).
fn v_only(v: &[u8]) -> Got {
    Ok(Some((None, Some(v.to_vec()))))
}
const NF: Got = Ok(None);
const EINVAL: Got = Err(Error::EINVAL);
const INCOMPAT: Got = Err(Error::INCOMPATIBLE);

fn be(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

/// plain: a=1 c=3 e=5; dups: a=[1] b=[1,2,3] c=[x]; empty: nothing;
/// fixed (DUPSORT|DUPFIXED, 4-byte BE values): few=[0,1,2],
/// k=[0..2000) written with MDB_APPENDDUP, one=[7].
fn build(dir: &TestDir) -> Env {
    let env = common::env(dir);
    let mut t: RwTxn = env.begin_rw().unwrap();
    let plain = t.open_db(Some("plain"), create(0)).unwrap();
    for (k, v) in [("a", "1"), ("c", "3"), ("e", "5")] {
        t.put(plain, k.as_bytes(), v.as_bytes(), 0).unwrap();
    }
    let dups = t.open_db(Some("dups"), create(MDB_DUPSORT)).unwrap();
    for (k, v) in [("a", "1"), ("b", "3"), ("b", "1"), ("b", "2"), ("c", "x")] {
        t.put(dups, k.as_bytes(), v.as_bytes(), 0).unwrap();
    }
    t.open_db(Some("empty"), create(0)).unwrap();
    let fixed = t
        .open_db(Some("fixed"), create(MDB_DUPSORT | MDB_DUPFIXED))
        .unwrap();
    for i in 0..3 {
        t.put(fixed, b"few", &be(i), 0).unwrap();
    }
    {
        let mut c = t.cursor_mut(fixed).unwrap();
        for i in 0..2000 {
            c.put(b"k", &be(i), MDB_APPENDDUP).unwrap();
        }
    }
    t.put(fixed, b"one", &be(7), 0).unwrap();
    t.commit().unwrap();
    env
}

fn open<'t>(txn: &'t prunedb_clmdb::Txn<'_>, name: &str) -> Cursor<'t> {
    let dbi = txn.open_db(Some(name), 0).unwrap();
    txn.cursor(dbi).unwrap()
}

#[test]
fn plain_db_moves() {
    let d = TestDir::new("ops-plain");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "plain");
    // Fresh cursor: GET_CURRENT is EINVAL; NEXT acts as FIRST, PREV as LAST.
    assert_eq!(g(&c, GetCurrent, None, None), EINVAL);
    assert_eq!(g(&c, Next, None, None), kv(b"a", b"1"));
    let c = open(&txn, "plain");
    assert_eq!(g(&c, Prev, None, None), kv(b"e", b"5"));
    assert_eq!(g(&c, First, None, None), kv(b"a", b"1"));
    assert_eq!(g(&c, Last, None, None), kv(b"e", b"5"));
    // Past the end: NOTFOUND, the cursor stays on the last item.
    assert_eq!(g(&c, Next, None, None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"e", b"5"));
    assert_eq!(g(&c, Prev, None, None), kv(b"c", b"3"));
    // Before the start: NOTFOUND, the cursor stays on the first item.
    assert_eq!(g(&c, First, None, None), kv(b"a", b"1"));
    assert_eq!(g(&c, Prev, None, None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"a", b"1"));
    assert_eq!(g(&c, Next, None, None), kv(b"c", b"3"));
}

#[test]
fn plain_db_set_family() {
    let d = TestDir::new("ops-plain-set");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "plain");
    // MDB_SET does not write the key; SET_KEY and SET_RANGE do.
    assert_eq!(g(&c, Set, Some(b"c"), None), v_only(b"3"));
    assert_eq!(g(&c, SetKey, Some(b"c"), None), kv(b"c", b"3"));
    assert_eq!(g(&c, SetRange, Some(b"b"), None), kv(b"c", b"3"));
    assert_eq!(g(&c, SetRange, Some(b"c"), None), kv(b"c", b"3"));
    assert_eq!(g(&c, SetRange, Some(b"f"), None), NF);
    assert_eq!(g(&c, Set, Some(b"b"), None), NF);
    assert_eq!(g(&c, SetKey, Some(b"0"), None), NF);
    // A zero-length key is MDB_BAD_VALSIZE for every SET op.
    for op in [Set, SetKey, SetRange] {
        assert_eq!(
            g(&c, op, Some(b""), None),
            Err(Error::BAD_VALSIZE),
            "{op:?}"
        );
    }
    // A missing key passed to SET (no key argument at all) is EINVAL... but
    // this wrapper always passes an MDB_val, so an absent key is 0 bytes.
    assert_eq!(g(&c, Set, None, None), Err(Error::BAD_VALSIZE));
}

#[test]
fn plain_db_position_after_failed_set() {
    let d = TestDir::new("ops-plain-fail");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "plain");
    assert_eq!(g(&c, Set, Some(b"b"), None), NF);
    let after_set_b_current = g(&c, GetCurrent, None, None);
    let after_set_b_next = g(&c, Next, None, None);
    assert_eq!(after_set_b_current, kv(b"c", b"3"));
    assert_eq!(after_set_b_next, kv(b"e", b"5"));
    let c = open(&txn, "plain");
    assert_eq!(g(&c, SetRange, Some(b"z"), None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), NF);
    assert_eq!(g(&c, Prev, None, None), kv(b"e", b"5"));
}

#[test]
fn dup_ops_on_plain_db() {
    let d = TestDir::new("ops-plain-dup");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "plain");
    // Unpositioned: EINVAL is checked before MDB_INCOMPATIBLE.
    assert_eq!(g(&c, FirstDup, None, None), EINVAL);
    assert_eq!(g(&c, LastDup, None, None), EINVAL);
    assert_eq!(g(&c, GetMultiple, None, None), EINVAL);
    assert_eq!(g(&c, GetBoth, Some(b"a"), Some(b"1")), INCOMPAT);
    assert_eq!(g(&c, GetBothRange, Some(b"a"), Some(b"1")), INCOMPAT);
    assert_eq!(g(&c, NextMultiple, None, None), INCOMPAT);
    assert_eq!(g(&c, PrevMultiple, None, None), INCOMPAT);
    // mdb_cursor_count checks for a DUPSORT DB before the position.
    assert_eq!(c.count().map_err(|e| e.code), Err(Error::INCOMPATIBLE));
    assert_eq!(g(&c, First, None, None), kv(b"a", b"1"));
    assert_eq!(g(&c, FirstDup, None, None), INCOMPAT);
    assert_eq!(g(&c, LastDup, None, None), INCOMPAT);
    assert_eq!(g(&c, GetMultiple, None, None), INCOMPAT);
    assert_eq!(c.count().map_err(|e| e.code), Err(Error::INCOMPATIBLE));
    // NEXT_DUP / PREV_DUP / *_NODUP on a non-DUPSORT DB move like NEXT/PREV.
    assert_eq!(g(&c, NextDup, None, None), kv(b"c", b"3"));
    assert_eq!(g(&c, NextNodup, None, None), kv(b"e", b"5"));
    assert_eq!(g(&c, PrevDup, None, None), kv(b"c", b"3"));
    assert_eq!(g(&c, PrevNodup, None, None), kv(b"a", b"1"));
}

#[test]
fn empty_db() {
    let d = TestDir::new("ops-empty");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "empty");
    for op in [
        First, Last, Next, Prev, NextNodup, PrevNodup, NextDup, PrevDup,
    ] {
        assert_eq!(g(&c, op, None, None), NF, "{op:?}");
    }
    for op in [Set, SetKey, SetRange] {
        assert_eq!(g(&c, op, Some(b"a"), None), NF, "{op:?}");
    }
    assert_eq!(g(&c, GetCurrent, None, None), EINVAL);
    assert_eq!(g(&c, FirstDup, None, None), EINVAL);
    assert_eq!(c.count().map_err(|e| e.code), Err(Error::INCOMPATIBLE));
    assert_eq!(txn.get(c.dbi(), b"a").unwrap(), None);
    // An emptied DUPSORT DB: same answers; count is EINVAL (unpositioned).
    let mut t = env.begin_rw().unwrap();
    let dbi = t.open_db(Some("dups"), 0).unwrap();
    t.drop_db(dbi, false).unwrap();
    assert_eq!(t.stat(dbi).unwrap().depth, 0);
    let c = t.cursor(dbi).unwrap();
    for op in [
        First, Last, Next, Prev, NextNodup, PrevNodup, NextDup, PrevDup,
    ] {
        assert_eq!(g(&c, op, None, None), NF, "{op:?}");
    }
    assert_eq!(g(&c, GetBoth, Some(b"a"), Some(b"1")), NF);
    assert_eq!(g(&c, GetBothRange, Some(b"a"), Some(b"1")), NF);
    assert_eq!(g(&c, GetCurrent, None, None), EINVAL);
    assert_eq!(c.count().map_err(|e| e.code), Err(Error::EINVAL));
}

#[test]
fn dupsort_moves() {
    let d = TestDir::new("ops-dups");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "dups");
    assert_eq!(c.count().map_err(|e| e.code), Err(Error::EINVAL));
    let mut all = Vec::new();
    let mut op = First;
    while let Ok(Some((k, v))) = g(&c, op, None, None) {
        all.push((k.unwrap(), v.unwrap()));
        op = Next;
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> =
        [("a", "1"), ("b", "1"), ("b", "2"), ("b", "3"), ("c", "x")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
    assert_eq!(all, want);
    assert_eq!(g(&c, Last, None, None), kv(b"c", b"x"));
    assert_eq!(g(&c, Prev, None, None), kv(b"b", b"3"));
    assert_eq!(c.count().unwrap(), 3);
    assert_eq!(g(&c, PrevDup, None, None), kv(b"b", b"2"));
    assert_eq!(g(&c, PrevDup, None, None), kv(b"b", b"1"));
    assert_eq!(g(&c, PrevDup, None, None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"b", b"1"));
    assert_eq!(g(&c, NextDup, None, None), kv(b"b", b"2"));
    // FIRST_DUP / LAST_DUP on a key with a dup tree write only the value.
    assert_eq!(g(&c, LastDup, None, None), v_only(b"3"));
    assert_eq!(g(&c, FirstDup, None, None), v_only(b"1"));
    assert_eq!(g(&c, LastDup, None, None), v_only(b"3"));
    assert_eq!(g(&c, NextDup, None, None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"b", b"3"));
    // NEXT_NODUP: first dup of the next key; PREV_NODUP: LAST dup of the
    // previous key.
    assert_eq!(g(&c, NextNodup, None, None), kv(b"c", b"x"));
    assert_eq!(g(&c, PrevNodup, None, None), kv(b"b", b"3"));
    assert_eq!(g(&c, PrevNodup, None, None), kv(b"a", b"1"));
    assert_eq!(g(&c, PrevNodup, None, None), NF);
    assert_eq!(g(&c, NextNodup, None, None), kv(b"b", b"1"));
    // A key with a single value: NEXT_DUP/PREV_DUP are NOTFOUND, FIRST_DUP
    // and LAST_DUP write key AND value, count is 1.
    assert_eq!(g(&c, First, None, None), kv(b"a", b"1"));
    assert_eq!(c.count().unwrap(), 1);
    assert_eq!(g(&c, NextDup, None, None), NF);
    assert_eq!(g(&c, PrevDup, None, None), NF);
    assert_eq!(g(&c, FirstDup, None, None), kv(b"a", b"1"));
    assert_eq!(g(&c, LastDup, None, None), kv(b"a", b"1"));
    // Without DUPFIXED the MULTIPLE ops are incompatible.
    assert_eq!(g(&c, GetMultiple, None, None), INCOMPAT);
    assert_eq!(g(&c, NextMultiple, None, None), INCOMPAT);
}

#[test]
fn dupsort_set_and_get_both() {
    let d = TestDir::new("ops-dups-set");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "dups");
    assert_eq!(g(&c, Set, Some(b"b"), None), v_only(b"1"));
    assert_eq!(g(&c, SetKey, Some(b"b"), None), kv(b"b", b"1"));
    assert_eq!(g(&c, SetRange, Some(b"bb"), None), kv(b"c", b"x"));
    // GET_BOTH / GET_BOTH_RANGE write only the value.
    assert_eq!(g(&c, GetBoth, Some(b"b"), Some(b"2")), v_only(b"2"));
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"b", b"2"));
    assert_eq!(g(&c, GetBoth, Some(b"b"), Some(b"4")), NF);
    // An empty value against a dup tree: MDB_BAD_VALSIZE (it becomes the
    // key of the sub-database search); against a single value it compares.
    assert_eq!(
        g(&c, GetBoth, Some(b"b"), Some(b"")),
        Err(Error::BAD_VALSIZE)
    );
    assert_eq!(
        g(&c, GetBothRange, Some(b"b"), Some(b"")),
        Err(Error::BAD_VALSIZE)
    );
    assert_eq!(g(&c, GetBoth, Some(b"a"), Some(b"")), NF);
    assert_eq!(g(&c, GetBothRange, Some(b"a"), Some(b"")), v_only(b"1"));
    assert_eq!(g(&c, GetBoth, Some(b"zz"), Some(b"1")), NF);
    assert_eq!(g(&c, GetBothRange, Some(b"b"), Some(b"15")), v_only(b"2"));
    assert_eq!(g(&c, GetBothRange, Some(b"b"), Some(b"0")), v_only(b"1"));
    assert_eq!(g(&c, GetBothRange, Some(b"b"), Some(b"3")), v_only(b"3"));
    // No dup >= the value: NOTFOUND (it does not move to the next key).
    assert_eq!(g(&c, GetBothRange, Some(b"b"), Some(b"4")), NF);
    // Single-value keys (plain node): compared directly.
    assert_eq!(g(&c, GetBoth, Some(b"a"), Some(b"1")), v_only(b"1"));
    assert_eq!(g(&c, GetBoth, Some(b"a"), Some(b"0")), NF);
    assert_eq!(g(&c, GetBothRange, Some(b"a"), Some(b"0")), v_only(b"1"));
    assert_eq!(g(&c, GetBothRange, Some(b"a"), Some(b"2")), NF);
    // The key must match exactly for GET_BOTH_RANGE too.
    assert_eq!(g(&c, GetBothRange, Some(b"bb"), Some(b"0")), NF);
    // mdb_get returns the first duplicate.
    assert_eq!(txn.get(c.dbi(), b"b").unwrap(), Some(&b"1"[..]));
}

fn chunk(range: std::ops::Range<u32>) -> Vec<u8> {
    range.flat_map(be).collect()
}

#[test]
fn dupfixed_multiple_ops() {
    let d = TestDir::new("ops-fixed");
    let env = build(&d);
    let txn = env.begin_ro().unwrap();
    let c = open(&txn, "fixed");
    // 4 KiB pages hold (4096 - 16) / 4 = 1020 four-byte dups; appending
    // leaves full pages behind.
    assert_eq!(txn.stat(c.dbi()).unwrap().psize, 4096);
    assert_eq!(g(&c, Set, Some(b"k"), None), v_only(&be(0)));
    assert_eq!(c.count().unwrap(), 2000);
    // GET_MULTIPLE: the whole page holding the current dup; key not written.
    assert_eq!(g(&c, GetMultiple, None, None), v_only(&chunk(0..1020)));
    // NEXT_MULTIPLE: the next page of the same key; writes the key.
    assert_eq!(
        g(&c, NextMultiple, None, None),
        kv(b"k", &chunk(1020..2000))
    );
    // No further page for this key: NOTFOUND (does not go to the next key).
    assert_eq!(g(&c, NextMultiple, None, None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"k", &be(1999)));
    // PREV_MULTIPLE from a positioned cursor: previous page, key not written.
    assert_eq!(g(&c, PrevMultiple, None, None), v_only(&chunk(0..1020)));
    assert_eq!(g(&c, PrevMultiple, None, None), NF);
    // GET_MULTIPLE returns the page from its start, not from the position.
    assert_eq!(g(&c, GetBoth, Some(b"k"), Some(&be(500))), v_only(&be(500)));
    assert_eq!(g(&c, GetMultiple, None, None), v_only(&chunk(0..1020)));
    // ... and moves the position to the page's last dup.
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"k", &be(1019)));
    assert_eq!(g(&c, Next, None, None), kv(b"k", &be(1020)));
    // A key with a single value (no dup page): GET_MULTIPLE succeeds but
    // writes neither key nor value; NEXT_MULTIPLE is NOTFOUND.
    assert_eq!(g(&c, Set, Some(b"one"), None), v_only(&be(7)));
    assert_eq!(g(&c, GetMultiple, None, None), Ok(Some((None, None))));
    assert_eq!(g(&c, NextMultiple, None, None), NF);
    // A key with a few dups (sub-page).
    assert_eq!(g(&c, Set, Some(b"few"), None), v_only(&be(0)));
    assert_eq!(g(&c, GetMultiple, None, None), v_only(&chunk(0..3)));
    assert_eq!(g(&c, NextMultiple, None, None), NF);
    // Fresh cursor: NEXT_MULTIPLE starts at MDB_FIRST and writes the key.
    let c = open(&txn, "fixed");
    assert_eq!(g(&c, NextMultiple, None, None), kv(b"few", &chunk(0..3)));
    // Fresh cursor: PREV_MULTIPLE goes to MDB_LAST ("one", single value).
    let c = open(&txn, "fixed");
    assert_eq!(g(&c, PrevMultiple, None, None), NF);
    assert_eq!(g(&c, GetCurrent, None, None), kv(b"one", &be(7)));
    // Fresh cursor: GET_MULTIPLE is EINVAL (unpositioned).
    let c = open(&txn, "fixed");
    assert_eq!(g(&c, GetMultiple, None, None), EINVAL);
    // Walking the keys by NEXT_NODUP, each dup page by GET/NEXT_MULTIPLE.
    let c = open(&txn, "fixed");
    let mut seen = Vec::new();
    let mut op = First;
    while let Ok(Some((k, _))) = g(&c, op, None, None) {
        let k = k.unwrap();
        let mut vals = Vec::new();
        match g(&c, GetMultiple, None, None).unwrap() {
            Some((None, Some(v))) => vals.extend(v),
            Some((None, None)) => {
                vals.extend(g(&c, GetCurrent, None, None).unwrap().unwrap().1.unwrap())
            }
            other => panic!("{other:?}"),
        }
        while let Some((_, Some(v))) = g(&c, NextMultiple, None, None).unwrap() {
            vals.extend(v);
        }
        seen.push((k, vals.len() / 4));
        op = NextNodup;
    }
    assert_eq!(
        seen,
        vec![
            (b"few".to_vec(), 3),
            (b"k".to_vec(), 2000),
            (b"one".to_vec(), 1)
        ]
    );
}

#[test]
fn dupsort_delete_positions() {
    let d = TestDir::new("ops-del");
    let env = build(&d);
    let mut t = env.begin_rw().unwrap();
    let dbi = t.open_db(Some("dups"), 0).unwrap();
    {
        let mut c = t.cursor_mut(dbi).unwrap();
        assert!(c.get(GetBoth, Some(b"b"), Some(b"2")).unwrap().is_some());
        c.del(0).unwrap();
        // After a delete the cursor sits on the following item.
        assert_eq!(
            c.get(GetCurrent, None, None).unwrap(),
            Some((&b"b"[..], &b"3"[..]))
        );
        // NEXT right after a delete does not skip it... (GET_CURRENT above
        // cleared the "deleted" state, so this moves on).
        assert_eq!(
            c.get(Next, None, None).unwrap(),
            Some((&b"c"[..], &b"x"[..]))
        );
        // Delete all dups of the current key with MDB_NODUPDATA.
        assert!(c.get(Set, Some(b"b"), None).unwrap().is_some());
        c.del(MDB_NODUPDATA).unwrap();
        assert_eq!(
            c.get(GetCurrent, None, None).unwrap(),
            Some((&b"c"[..], &b"x"[..]))
        );
    }
    {
        let mut c = t.cursor_mut(dbi).unwrap();
        assert!(c.get(First, None, None).unwrap().is_some());
        c.del(0).unwrap();
        // Directly after a delete, NEXT returns the item now under the cursor.
        assert_eq!(
            c.get(Next, None, None).unwrap(),
            Some((&b"c"[..], &b"x"[..]))
        );
    }
    {
        // Deleting one dup of several: NEXT_DUP right after it returns the
        // dup that moved under the cursor.
        t.put(dbi, b"d", b"1", 0).unwrap();
        t.put(dbi, b"d", b"2", 0).unwrap();
        t.put(dbi, b"d", b"3", 0).unwrap();
        t.put(dbi, b"e", b"1", 0).unwrap();
        let mut c = t.cursor_mut(dbi).unwrap();
        assert!(c.get(GetBoth, Some(b"d"), Some(b"2")).unwrap().is_some());
        c.del(0).unwrap();
        assert_eq!(
            c.get(NextDup, None, None).unwrap(),
            Some((&b"d"[..], &b"3"[..]))
        );
        // Deleting the last dup of a key removes the key: the cursor is on
        // the next key, and NEXT_DUP right after the delete is NOTFOUND.
        c.del(0).unwrap();
        assert!(c.get(Set, Some(b"d"), None).unwrap().is_some());
        c.del(0).unwrap();
        assert_eq!(c.get(NextDup, None, None).unwrap(), None);
        assert_eq!(
            c.get(GetCurrent, None, None).unwrap(),
            Some((&b"e"[..], &b"1"[..]))
        );
        c.del(0).unwrap();
        // Deleting the last item of the DB: GET_CURRENT is NOTFOUND.
        assert_eq!(c.get(GetCurrent, None, None).unwrap(), None);
    }
    let m = prunedb_clmdb::gen::model_db(&t, dbi).unwrap();
    assert_eq!(m, vec![(b"c".to_vec(), vec![b"x".to_vec()])]);
}

#[test]
fn op_values_and_names_match_c() {
    for (i, op) in CursorOp::ALL.iter().enumerate() {
        assert_eq!(op.raw() as usize, i);
        assert_eq!(CursorOp::from_raw(i as u32), Some(*op));
        assert!(op.name().starts_with("MDB_"));
    }
    assert_eq!(CursorOp::from_raw(19), None);
    assert_eq!(SetRange.raw(), prunedb_clmdb::ffi::MDB_SET_RANGE);
}
