mod common;

use std::process::Command;

use common::TestDir;
use prunedb_clmdb::flags;
use prunedb_clmdb::gen::{self, GenOptions};

#[test]
fn random_env_is_deterministic_and_covers_every_kind() {
    let opts = GenOptions::small();
    let (a, b, c) = (
        TestDir::new("gen-a"),
        TestDir::new("gen-b"),
        TestDir::new("gen-c"),
    );
    let specs = gen::random_env(a.path(), 7, &opts).unwrap();
    assert_eq!(specs, gen::db_specs());
    gen::random_env(b.path(), 7, &opts).unwrap();
    gen::random_env(c.path(), 8, &opts).unwrap();
    let ma = gen::model(&gen::open_env(a.path(), &opts, 0).unwrap(), &specs).unwrap();
    let mb = gen::model(&gen::open_env(b.path(), &opts, 0).unwrap(), &specs).unwrap();
    let mc = gen::model(&gen::open_env(c.path(), &opts, 0).unwrap(), &specs).unwrap();
    assert_eq!(ma, mb, "same seed, same contents");
    assert_ne!(ma, mc, "another seed, other contents");

    let get = |name: &str| &ma[&Some(name.to_string())];
    assert!(get("db_empty").is_empty());
    assert!(get("db_emptied").is_empty());
    for name in ["db_plain", "db_int4", "db_int8", "db_revkey"] {
        let db = get(name);
        assert!(db.len() > opts.entries / 3, "{name}: {}", db.len());
        assert!(db.iter().all(|(_, v)| v.len() == 1));
    }
    for (k, _) in get("db_int4") {
        assert_eq!(k.len(), 4);
    }
    for (k, _) in get("db_int8") {
        assert_eq!(k.len(), 8);
    }
    // Keys from 1 to 511 bytes, values from 0 bytes to several pages.
    let plain = get("db_plain");
    assert!(plain.iter().any(|(k, _)| k.len() == 1 || k.len() < 4));
    assert!(plain.iter().any(|(k, _)| k.len() > 400));
    assert!(plain.iter().any(|(_, v)| v[0].is_empty()));
    let lens: Vec<usize> = plain.iter().map(|(_, v)| v[0].len()).collect();
    assert!(plain.iter().any(|(_, v)| v[0].len() > 3 * 4096), "{lens:?}");
    for name in [
        "db_dupsort",
        "db_dupfixed",
        "db_intdup",
        "db_intdup4",
        "db_revdup",
    ] {
        let db = get(name);
        let max = db.iter().map(|(_, v)| v.len()).max().unwrap();
        assert!(max >= 500, "{name}: biggest key has {max} dups");
        assert!(
            db.iter().any(|(_, v)| (2..=40).contains(&v.len())),
            "{name}"
        );
        assert!(db.iter().any(|(_, v)| v.len() == 1), "{name}");
    }
    let fixed = get("db_dupfixed");
    let sz = fixed[0].1[0].len();
    assert!(fixed.iter().all(|(_, v)| v.iter().all(|d| d.len() == sz)));

    // Stats: overflow pages, dup sub-databases, a free DB with records.
    let env = gen::open_env(a.path(), &opts, 0).unwrap();
    let txn = env.begin_ro().unwrap();
    let plain = txn.open_db(Some("db_plain"), 0).unwrap();
    assert!(txn.stat(plain).unwrap().overflow_pages > 0);
    let free = txn.stat(prunedb_clmdb::Dbi::FREE).unwrap();
    assert!(free.entries > 0, "free DB has records: {free:?}");
    let dups = txn.open_db(Some("db_dupsort"), flags::MDB_DUPSORT).unwrap();
    assert!(txn.stat(dups).unwrap().entries > txn.stat(dups).unwrap().leaf_pages);
}

#[test]
fn nosubdir_variant() {
    let opts = GenOptions::small().with_nosubdir();
    let d = TestDir::new("gen-nosub");
    let specs = gen::random_env(d.path(), 3, &opts).unwrap();
    assert!(d.path().join("data.mdb").is_file());
    assert!(d.path().join("data.mdb-lock").is_file());
    let env = gen::open_env(d.path(), &opts, flags::MDB_RDONLY).unwrap();
    let m = gen::model(&env, &specs).unwrap();
    // Same seed in directory form gives the same contents.
    let d2 = TestDir::new("gen-sub");
    let opts2 = GenOptions::small();
    gen::random_env(d2.path(), 3, &opts2).unwrap();
    let m2 = gen::model(&gen::open_env(d2.path(), &opts2, 0).unwrap(), &specs).unwrap();
    assert_eq!(m, m2);
}

fn tool(name: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new("/usr/bin").join(name);
    p.is_file().then_some(p)
}

#[test]
fn debian_tools_accept_generated_env() {
    let (Some(stat), Some(dump)) = (tool("mdb_stat"), tool("mdb_dump")) else {
        eprintln!("mdb_stat/mdb_dump not installed: skipped");
        return;
    };
    let opts = GenOptions::small();
    let d = TestDir::new("gen-tools");
    let specs = gen::random_env(d.path(), 11, &opts).unwrap();
    let out = Command::new(&stat)
        .arg("-efa")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for s in &specs {
        if let Some(n) = &s.name {
            assert!(
                text.contains(&format!("Status of {n}")),
                "{n} missing in\n{text}"
            );
        }
    }
    let out = Command::new(&dump)
        .arg("-a")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // mdb_dump prints one line pair per item: count data lines of db_plain.
    let env = gen::open_env(d.path(), &opts, 0).unwrap();
    let m = gen::model(&env, &specs).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let section = text
        .split("VERSION=3")
        .find(|s| s.contains("database=db_intdup\n"))
        .expect("db_intdup in dump");
    let body = section.split("HEADER=END\n").nth(1).unwrap();
    let lines = body.lines().filter(|l| l.starts_with(' ')).count();
    let items: usize = m[&Some("db_intdup".into())]
        .iter()
        .map(|(_, v)| v.len())
        .sum();
    assert_eq!(lines, 2 * items);

    // The NOSUBDIR form too.
    let opts = GenOptions::small().with_nosubdir();
    let d = TestDir::new("gen-tools-nosub");
    gen::random_env(d.path(), 12, &opts).unwrap();
    let out = Command::new(&stat)
        .arg("-n")
        .arg("-a")
        .arg(d.path().join("data.mdb"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "slow in debug builds: cargo test -p prunedb-clmdb --release -- --ignored"]
fn large_env_is_deterministic() {
    let opts = GenOptions::large();
    let (a, b) = (TestDir::new("gen-large-a"), TestDir::new("gen-large-b"));
    let specs = gen::random_env(a.path(), 1, &opts).unwrap();
    gen::random_env(b.path(), 1, &opts).unwrap();
    let ma = gen::model(&gen::open_env(a.path(), &opts, 0).unwrap(), &specs).unwrap();
    let mb = gen::model(&gen::open_env(b.path(), &opts, 0).unwrap(), &specs).unwrap();
    assert_eq!(ma, mb);
    let items: usize = ma.values().flatten().map(|(_, v)| v.len()).sum();
    assert!(items > 20_000, "{items}");
}
