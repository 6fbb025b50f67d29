//! Environment operations: map growth, MapFull, sync, reopening.

use prunedb_engine::ReadTxn;
use prunedb_engine::{Env, EnvFlags, Error, Iterate, PutFlags};

#[test]
fn a_full_map_grows_and_keeps_its_data() {
    map_grows(EnvFlags::empty());
}

/// A writable map grows too: the file is extended to the new map size
/// before pages are written in place there.
#[test]
fn a_full_writable_map_grows_and_keeps_its_data() {
    map_grows(EnvFlags::WRITEMAP);
}

fn map_grows(flags: EnvFlags) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = Env::builder()
        .map_size(256 << 10)
        .flags(flags)
        .open(dir.path())
        .expect("open");
    let fill = |env: &Env, from: u32, to: u32| -> Result<(), Error> {
        let mut txn = env.write_txn()?;
        let db = txn.open_db(None)?;
        for i in from..to {
            txn.put(db, &i.to_be_bytes(), &[i as u8; 200], PutFlags::empty())?;
        }
        txn.commit()
    };
    fill(&env, 0, 100).expect("fits");
    assert_eq!(fill(&env, 100, 10_000), Err(Error::MapFull));
    env.set_map_size(16 << 20).expect("grow");
    fill(&env, 100, 10_000).expect("fits after growing");
    env.sync(true).expect("sync");
    drop(env);

    // The new size is recorded in the meta page and survives a reopen.
    let env = Env::builder()
        .flags(EnvFlags::RDONLY)
        .open(dir.path())
        .expect("reopen");
    assert_eq!(env.info().expect("info").map_size, 16 << 20);
    let txn = env.read_txn().expect("read");
    let db = txn.open_db(None).expect("main");
    assert_eq!(txn.stat(db).expect("stat").entries, 10_000);
    assert_eq!(
        txn.get(db, &9_999u32.to_be_bytes()).expect("get"),
        Some(&[9_999u32 as u8; 200][..])
    );
}

#[test]
fn a_read_only_environment_refuses_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Env::builder().open(dir.path()).expect("create"));
    let env = Env::builder()
        .flags(EnvFlags::RDONLY)
        .open(dir.path())
        .expect("open");
    assert!(matches!(env.write_txn(), Err(Error::ReadOnly)));
    assert_eq!(env.sync(true), Err(Error::ReadOnly));
}

#[test]
fn a_pinned_snapshot_survives_churn_and_its_release_lets_pages_be_reused() {
    pinned_snapshot_survives_churn(EnvFlags::empty());
}

/// The same with pages written in place: the writer must never write a
/// page the pinned snapshot reads.
#[test]
fn a_pinned_snapshot_survives_churn_in_a_writable_map() {
    pinned_snapshot_survives_churn(EnvFlags::WRITEMAP);
}

fn pinned_snapshot_survives_churn(flags: EnvFlags) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env::builder()
        .map_size(64 << 20)
        .flags(flags)
        .open(dir.path())
        .expect("open");
    let put_all = |round: u8| {
        let mut txn = env.write_txn().expect("txn");
        let db = txn.open_db(None).expect("main");
        for i in 0..2000u32 {
            txn.put(db, &i.to_be_bytes(), &[round; 100], PutFlags::empty())
                .expect("put");
        }
        txn.commit().expect("commit");
    };
    put_all(0);
    let pin = env.pin().expect("pin");
    let snapshot: Vec<(Vec<u8>, Vec<u8>)> = {
        let txn = pin.read_txn().expect("read");
        let db = txn.open_db(None).expect("main");
        txn.iter(db)
            .expect("iter")
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("entry"))
            .collect()
    };
    for round in 1..40 {
        put_all(round);
    }
    // Pages in use, not the file's length: a writable map's file is as
    // long as the map from the start.
    let grown = env.info().expect("info").last_pgno;
    {
        let txn = pin.read_txn().expect("read");
        let db = txn.open_db(None).expect("main");
        let now: Vec<(Vec<u8>, Vec<u8>)> = txn
            .iter(db)
            .expect("iter")
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("entry"))
            .collect();
        assert_eq!(now, snapshot, "the pinned snapshot changed under churn");
    }
    drop(pin);
    for round in 40..80 {
        put_all(round);
    }
    let after = env.info().expect("info").last_pgno;
    assert!(
        after <= grown + grown / 10,
        "the file kept growing after the pin was released: {grown} -> {after}"
    );
}

#[test]
fn handles_and_snapshots_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Env>();
    send_sync::<prunedb_engine::Pin>();
    send::<prunedb_engine::RoTxn<'static>>();
}

/// `NORDAHEAD` turns read-ahead off for the map, as LMDB does with
/// `madvise(MADV_RANDOM)`: the kernel marks the mapping `rr` in smaps;
/// without the flag it does not, so the check can fail both ways. The
/// advice must also survive a map growth, which maps the file anew. The
/// map commits copy pages through (writable, always without read-ahead)
/// is not the one readers fault on, and is left out.
#[cfg(target_os = "linux")]
#[test]
fn nordahead_advises_the_map_random() {
    fn data_map_flags(dir: &std::path::Path) -> Vec<String> {
        data_vm_flags(dir)
            .into_iter()
            .filter(|flags| !has_vm_flag(flags, "wr"))
            .collect()
    }
    let random = |flags: &str| has_vm_flag(flags, "rr");
    for (flags, want) in [(EnvFlags::NORDAHEAD, true), (EnvFlags::empty(), false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = Env::builder()
            .map_size(1 << 20)
            .flags(flags)
            .open(dir.path())
            .expect("open");
        let maps = data_map_flags(dir.path());
        assert_eq!(maps.len(), 1, "one map of the data file: {maps:?}");
        assert_eq!(random(&maps[0]), want, "{flags:?}: {}", maps[0]);
        env.set_map_size(2 << 20).expect("grow");
        let maps = data_map_flags(dir.path());
        assert_eq!(maps.len(), 1, "one map after growth: {maps:?}");
        assert_eq!(random(&maps[0]), want, "{flags:?} grown: {}", maps[0]);
    }
}

/// `EnvBuilder::huge_pages` advises a `WRITEMAP` map `MADV_HUGEPAGE`,
/// which smaps shows as `hg` whether or not the kernel then finds huge
/// pages; it must survive a map growth, and leave every map of an
/// environment without `WRITEMAP`, and every map by default, alone.
#[cfg(target_os = "linux")]
#[test]
fn huge_pages_advise_the_writable_map_only() {
    let huge = |dir: &std::path::Path| -> Vec<bool> {
        data_vm_flags(dir)
            .iter()
            .map(|flags| has_vm_flag(flags, "hg"))
            .collect()
    };
    for (flags, asked, want) in [
        (EnvFlags::WRITEMAP | EnvFlags::NOSYNC, true, true),
        (EnvFlags::WRITEMAP | EnvFlags::NOSYNC, false, false),
        (EnvFlags::NOSYNC, true, false),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = Env::builder()
            .map_size(4 << 20)
            .flags(flags)
            .huge_pages(asked)
            .open(dir.path())
            .expect("open");
        let case = format!("{flags:?}, huge_pages({asked})");
        let maps = huge(dir.path());
        assert!(
            !maps.is_empty() && maps.iter().all(|&h| h == want),
            "{case}: {maps:?}"
        );
        env.set_map_size(8 << 20).expect("grow");
        let mut txn = env.write_txn().expect("txn");
        let db = txn.open_db(None).expect("main");
        for i in 0..2000u32 {
            txn.put(db, &i.to_be_bytes(), &[i as u8; 100], PutFlags::empty())
                .expect("put");
        }
        txn.commit().expect("commit");
        let maps = huge(dir.path());
        assert!(
            !maps.is_empty() && maps.iter().all(|&h| h == want),
            "{case} grown: {maps:?}"
        );
        let txn = env.read_txn().expect("read");
        let db = txn.open_db(None).expect("main");
        assert_eq!(
            txn.get(db, &1999u32.to_be_bytes()).expect("get"),
            Some(&[207u8; 100][..])
        );
    }
}

/// The `VmFlags` of each of this process's mappings of the data file in
/// `dir`.
#[cfg(target_os = "linux")]
fn data_vm_flags(dir: &std::path::Path) -> Vec<String> {
    maps_of(&dir.join("data.mdb"))
        .iter()
        .map(|m| field(m, "VmFlags").expect("VmFlags").to_string())
        .collect()
}

/// Whether a mapping's `VmFlags` include `flag`.
#[cfg(target_os = "linux")]
fn has_vm_flag(flags: &str, flag: &str) -> bool {
    flags.split_whitespace().any(|f| f == flag)
}

/// The `Key: value` lines of each of this process's mappings of `file`,
/// from `/proc/self/smaps`.
#[cfg(target_os = "linux")]
fn maps_of(file: &std::path::Path) -> Vec<Vec<(String, String)>> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let name = file.to_str().expect("utf-8 path");
    let mut maps = Vec::new();
    let mut ours = false;
    for line in smaps.lines() {
        let is_header = line.split_whitespace().next().is_some_and(|f| {
            f.contains('-') && f.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        });
        if is_header {
            // A mapping's header line: its address range first, its file
            // (if any) last.
            ours = line.ends_with(name);
            if ours {
                maps.push(Vec::new());
            }
        } else if let (true, Some((key, value)), Some(fields)) =
            (ours, line.split_once(':'), maps.last_mut())
        {
            fields.push((key.to_string(), value.trim().to_string()));
        }
    }
    maps
}

/// The value of `key` among a mapping's fields.
#[cfg(target_os = "linux")]
fn field<'m>(map: &'m [(String, String)], key: &str) -> Option<&'m str> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Resident bytes of this process's mappings of `file` (`Rss`).
#[cfg(target_os = "linux")]
fn mapped_resident(file: &std::path::Path) -> u64 {
    let kb: u64 = maps_of(file)
        .iter()
        .map(|m| {
            let rss = field(m, "Rss").expect("Rss");
            rss.trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .expect("kB")
        })
        .sum();
    kb << 10
}

/// Under WRITEMAP without sync, the pages a transaction adds at the end of
/// the file are faulted in ahead of the stores, a stretch at a time rather
/// than a fault per page: after the commit the map holds pages past the
/// end of the data. What was written reads back after a reopen.
#[cfg(target_os = "linux")]
#[test]
fn a_writable_map_is_faulted_in_ahead_of_new_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env::builder()
        .map_size(64 << 20)
        .flags(EnvFlags::WRITEMAP | EnvFlags::NOSYNC)
        .open(dir.path())
        .expect("open");
    let value = |i: u32| vec![i as u8; 10_000];
    let mut txn = env.write_txn().expect("txn");
    let db = txn.open_db(None).expect("main");
    for i in 0..1000u32 {
        txn.put(db, &i.to_be_bytes(), &value(i), PutFlags::empty())
            .expect("put");
    }
    txn.commit().expect("commit");
    let info = env.info().expect("info");
    let page_size = {
        let txn = env.read_txn().expect("read");
        let db = txn.open_db(None).expect("main");
        u64::from(txn.stat(db).expect("stat").page_size)
    };
    let data = (info.last_pgno + 1) * page_size;
    let resident = mapped_resident(&dir.path().join("data.mdb"));
    assert!(
        resident > data + (64 << 10),
        "{resident} bytes resident for {data} of data"
    );
    drop(env);

    let env = Env::builder().open(dir.path()).expect("reopen");
    let txn = env.read_txn().expect("read");
    let db = txn.open_db(None).expect("main");
    for i in [0u32, 517, 999] {
        let got = txn.get(db, &i.to_be_bytes()).expect("get");
        assert_eq!(got, Some(&value(i)[..]));
    }
}

/// A writer under WRITEMAP on a full disk gets an error (ENOSPC) from the
/// put that needs a new page, where a store into the map would raise
/// SIGBUS. Needs a small file system of its own, so it is ignored by
/// default; as root:
///
/// ```sh
/// mkdir -p /tmp/tiny && mount -t tmpfs -o size=2m tmpfs /tmp/tiny
/// PRUNEDB_FULL_DIR=/tmp/tiny cargo test -p prunedb-engine --test env_ops -- --ignored full_disk
/// ```
#[test]
#[ignore]
fn a_writable_map_on_a_full_disk_is_an_error_not_a_crash() {
    let root = std::env::var("PRUNEDB_FULL_DIR").expect("PRUNEDB_FULL_DIR: a small file system");
    for flags in [EnvFlags::WRITEMAP | EnvFlags::NOSYNC, EnvFlags::WRITEMAP] {
        let dir = tempfile::tempdir_in(&root).expect("tempdir");
        let env = Env::builder()
            .map_size(256 << 20)
            .flags(flags)
            .open(dir.path())
            .expect("open");
        let mut committed = 0u32;
        let err = 'fill: loop {
            let mut txn = env.write_txn().expect("txn");
            let db = txn.open_db(None).expect("main");
            for i in 0..100 {
                let key = (committed * 100 + i).to_be_bytes();
                if let Err(e) = txn.put(db, &key, &[7u8; 3000], PutFlags::empty()) {
                    break 'fill e;
                }
            }
            txn.commit().expect("commit");
            committed += 1;
        };
        assert_eq!(err, Error::Io(28), "ENOSPC");
        // What was committed before is still there.
        let txn = env.read_txn().expect("read");
        let db = txn.open_db(None).expect("main");
        assert_eq!(
            txn.stat(db).expect("stat").entries,
            u64::from(committed) * 100
        );
    }
}
