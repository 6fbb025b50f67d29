//! `prunedb stat` and `prunedb dump` against LMDB 0.9.24's `mdb_stat` and
//! `mdb_dump` on environments written by C LMDB: the same standard output
//! byte for byte, the same exit code; and our dumps load back with
//! `mdb_load` into an environment that `mdb_dump` dumps identically.
//!
//! Needs the LMDB tools (`apt-get install -y lmdb-utils`); set
//! `PRUNEDB_SKIP_LMDB_UTILS=1` to skip these tests where they are missing.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prunedb_clmdb::flags::*;
use prunedb_clmdb::gen::{self, GenOptions};
use prunedb_clmdb::Env as CEnv;

mod common;

const PRUNEDB: &str = env!("CARGO_BIN_EXE_prunedb");

fn have_tools() -> bool {
    common::have_tools(&["mdb_stat", "mdb_dump", "mdb_load"])
}

use common::scratch_dir;

fn run(program: &str, args: &[OsString]) -> Output {
    Command::new(program)
        .args(args)
        .env_remove("POSIXLY_CORRECT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ours(cmd: &str, args: &[OsString]) -> Output {
    let mut all = vec![OsString::from(cmd)];
    all.extend_from_slice(args);
    run(PRUNEDB, &all)
}

fn args(flags: &[&str], path: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = flags.iter().map(OsString::from).collect();
    v.push(path.as_os_str().to_owned());
    v
}

/// Undoes the one deliberate difference of `dump -p`: a backslash in the
/// data is written `\5c` (which every `mdb_load` reads back), where 0.9.24
/// writes it bare. Our data lines hold no other backslash sequence that
/// could be confused with it, since every other escape is of a byte that
/// is not printable.
fn as_0924_print(out: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(out.len());
    for line in out.split_inclusive(|&b| b == b'\n') {
        if line.first() != Some(&b' ') {
            v.extend_from_slice(line);
            continue;
        }
        let mut i = 0;
        while i < line.len() {
            if line[i..].starts_with(b"\\5c") {
                v.push(b'\\');
                i += 3;
            } else {
                v.push(line[i]);
                i += 1;
            }
        }
    }
    v
}

/// Runs `prunedb CMD ARGS` and then the C tool with the same arguments
/// (ours first: it changes nothing, while the C tool takes a reader slot),
/// and asserts equal stdout and exit status.
fn same(cmd: &str, argv: &[OsString]) -> Output {
    let tool = match cmd {
        "stat" => "/usr/bin/mdb_stat",
        _ => "/usr/bin/mdb_dump",
    };
    let mine = ours(cmd, argv);
    let theirs = run(tool, argv);
    let print = cmd == "dump" && argv.iter().any(|a| is_print_flag(a));
    let got = if print {
        as_0924_print(&mine.stdout)
    } else {
        mine.stdout.clone()
    };
    let show = |a: &[OsString]| {
        a.iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if got != theirs.stdout {
        let g = String::from_utf8_lossy(&got);
        let t = String::from_utf8_lossy(&theirs.stdout);
        let line = g
            .lines()
            .zip(t.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(g.lines().count().min(t.lines().count()));
        panic!(
            "{cmd} {}: stdout differs from {tool} at line {}:\n ours: {:?}\n C:    {:?}\n(ours stderr: {})",
            show(argv),
            line + 1,
            g.lines().nth(line),
            t.lines().nth(line),
            String::from_utf8_lossy(&mine.stderr),
        );
    }
    assert_eq!(
        mine.status.code(),
        theirs.status.code(),
        "{cmd} {}: exit status differs from {tool} (ours stderr: {}; C stderr: {})",
        show(argv),
        String::from_utf8_lossy(&mine.stderr),
        String::from_utf8_lossy(&theirs.stderr),
    );
    mine
}

fn is_print_flag(a: &OsStr) -> bool {
    let b = a.as_bytes();
    b.len() > 1 && b[0] == b'-' && b[1] != b's' && b[1] != b'f' && b.contains(&b'p')
}

/// The named databases of an environment, from `mdb_dump -l`.
fn c_names(flags: &[&str], path: &Path) -> Vec<Vec<u8>> {
    let out = run("/usr/bin/mdb_dump", &args(&[flags, &["-l"]].concat(), path));
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Every stat and dump variant worth comparing on one environment.
fn compare_all(path: &Path, nosubdir: bool) {
    let n: &[&str] = if nosubdir { &["-n"] } else { &[] };
    let names = c_names(n, path);
    let with = |f: &[&str]| args(&[n, f].concat(), path);

    for f in [
        &[][..],
        &["-e"],
        &["-f"],
        &["-ff"],
        &["-fff"],
        &["-a"],
        &["-efffa"],
        &["-ae", "-f"],
        &["-r"],
        &["-rr"],
        &["-r", "-a"],
        &["-rre"],
        &["-s", "no such db"],
        &["-sdb_missing"],
        &["-a", "-s", "x"],
        &["-q"],
        &["-s"],
        &["-V"],
    ] {
        same("stat", &with(f));
    }
    // Operands may come before options (glibc permutes them), once only.
    let mut late = vec![path.as_os_str().to_owned(), "-a".into()];
    late.extend(n.iter().map(OsString::from));
    same("stat", &late);
    let mut twice = with(&["-e"]);
    twice.push(path.as_os_str().to_owned());
    same("stat", &twice);

    for f in [
        &[][..],
        &["-p"],
        &["-a"],
        &["-ap"],
        &["-l"],
        &["-pl"],
        &["-s", "no such db"],
        &["-l", "-s", "x"],
        &["-V"],
        &["-z"],
    ] {
        same("dump", &with(f));
    }
    for name in &names {
        let name = OsString::from_vec(name.clone());
        let mut joined = OsString::from("-s");
        joined.push(&name);
        let cases: [(&str, Vec<OsString>); 4] = [
            ("stat", vec!["-fs".into(), name.clone()]),
            ("stat", vec![joined]),
            ("dump", vec!["-s".into(), name.clone()]),
            ("dump", vec!["-p".into(), "-s".into(), name.clone()]),
        ];
        for (cmd, f) in cases {
            let mut v: Vec<OsString> = n.iter().map(OsString::from).collect();
            v.extend(f);
            v.push(path.as_os_str().to_owned());
            same(cmd, &v);
        }
    }
    // The wrong form of the path fails as the C tools fail.
    let other: &[&str] = if nosubdir { &[] } else { &["-n"] };
    if !nosubdir {
        same("stat", &args(&["-n"], &path.join("data.mdb")));
        same("dump", &args(&[], &path.join("data.mdb")));
    } else {
        same("stat", &args(other, path));
        same("dump", &args(other, path));
    }
}

/// Dumps every named database with `prunedb dump -a` (hex and `-p`),
/// loads each dump with `mdb_load` into a fresh environment, and checks
/// that `mdb_dump -a` of the copy equals `mdb_dump -a` of the original.
fn check_load_round_trip(path: &Path, nosubdir: bool, scratch: &Path) {
    let n: &[&str] = if nosubdir { &["-n"] } else { &[] };
    let original = run("/usr/bin/mdb_dump", &args(&[n, &["-a"]].concat(), path));
    if original.status.code() != Some(0) {
        return; // no named databases
    }
    for (i, mode) in [&["-a"][..], &["-a", "-p"]].iter().enumerate() {
        let file = scratch.join(format!("dump{i}.txt"));
        let mut a = args(&[n, mode, &["-f", file.to_str().unwrap()]].concat(), path);
        let mine = ours("dump", &a);
        assert_eq!(mine.status.code(), Some(0), "dump {a:?} failed");
        a.clear();
        let copy = scratch.join(format!("copy{i}"));
        std::fs::create_dir_all(&copy).unwrap();
        let load = run(
            "/usr/bin/mdb_load",
            &[
                OsString::from("-f"),
                file.into_os_string(),
                copy.clone().into(),
            ],
        );
        assert_eq!(
            load.status.code(),
            Some(0),
            "mdb_load of our dump {mode:?} of {path:?} failed: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let again = run("/usr/bin/mdb_dump", &args(&["-a"], &copy));
        if again.stdout != original.stdout {
            let (g, t) = (
                String::from_utf8_lossy(&again.stdout),
                String::from_utf8_lossy(&original.stdout),
            );
            let diff = g.lines().zip(t.lines()).find(|(a, b)| a != b);
            panic!(
                "mdb_dump -a of the environment loaded from our dump {mode:?} differs \
                 from the original: {diff:?}"
            );
        }
    }
}

fn generated(dir: &Path, seed: u64, opts: &GenOptions) -> PathBuf {
    gen::random_env(dir, seed, opts).expect("generate environment");
    gen::env_path(dir, opts)
}

#[test]
fn generated_environments_match() {
    if !have_tools() {
        return;
    }
    let tmp = scratch_dir();
    for (seed, opts) in [
        (1u64, GenOptions::small()),
        (2, GenOptions::small()),
        (3, GenOptions::small().with_nosubdir()),
        (
            4,
            GenOptions {
                entries: 1000,
                big_dups: 2500,
                txns: 8,
                ..GenOptions::small()
            },
        ),
    ] {
        let dir = tmp.path().join(format!("env{seed}"));
        let path = generated(&dir, seed, &opts);
        compare_all(&path, opts.nosubdir);
        let scratch = tmp.path().join(format!("scratch{seed}"));
        std::fs::create_dir_all(&scratch).unwrap();
        check_load_round_trip(&path, opts.nosubdir, &scratch);
    }
}

/// An environment with the cases the generator does not make: a plain key
/// in the main database beside named ones (which `-a` skips and `-s`
/// refuses), names with spaces, NUL and backslashes, values with every
/// byte, overflow values, free pages of several transactions.
fn special_env(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let env = CEnv::builder()
        .max_dbs(10)
        .map_size(32 << 20)
        .open(dir)
        .expect("open C env");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    {
        let mut txn = env.begin_rw().unwrap();
        let main = txn.open_db(None, 0).unwrap();
        txn.put(main, b"plain", b"a\\b\\\\c\x00\xff \\ab", 0)
            .unwrap();
        txn.put(main, b"with\x00nul", &all_bytes, 0).unwrap();
        let big = txn.open_db(Some("big values"), MDB_CREATE).unwrap();
        for i in 0..40u32 {
            let v = vec![(i % 251) as u8; (i as usize) * 700];
            txn.put(big, format!("key {i:03}").as_bytes(), &v, 0)
                .unwrap();
        }
        let dups = txn
            .open_db(Some("back\\slash"), MDB_CREATE | MDB_DUPSORT)
            .unwrap();
        for i in 0..300u32 {
            let k = format!("k\\{}", i % 7);
            txn.put(dups, k.as_bytes(), format!("\\v{i:04}\t").as_bytes(), 0)
                .unwrap();
        }
        let fixed = txn
            .open_db(
                Some("fixed"),
                MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEKEY,
            )
            .unwrap();
        for i in 0..2000u64 {
            txn.put(fixed, &(i % 3).to_le_bytes(), &i.to_le_bytes(), 0)
                .unwrap();
        }
        let int = txn
            .open_db(Some("ints"), MDB_CREATE | MDB_INTEGERKEY)
            .unwrap();
        for i in 0..500u32 {
            txn.put(
                int,
                &(i * 7919).to_le_bytes(),
                &all_bytes[..(i % 256) as usize],
                0,
            )
            .unwrap();
        }
        txn.open_db(Some("empty"), MDB_CREATE | MDB_REVERSEDUP | MDB_DUPSORT)
            .unwrap();
        txn.commit().unwrap();
    }
    for round in 0..3u32 {
        let mut txn = env.begin_rw().unwrap();
        let big = txn.open_db(Some("big values"), 0).unwrap();
        for i in (round..40).step_by(3) {
            let _ = txn.del(big, format!("key {i:03}").as_bytes(), None);
        }
        txn.commit().unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn special_environment_matches() {
    if !have_tools() {
        return;
    }
    let tmp = scratch_dir();
    let path = special_env(&tmp.path().join("special"));
    compare_all(&path, false);
    // The plain key and a name that is not there.
    same("stat", &args(&["-s", "plain"], &path));
    same("dump", &args(&["-s", "plain"], &path));
    same("dump", &args(&["-p", "-s", "plain"], &path));
    same("stat", &args(&["-s", "nosuch"], &path));
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    check_load_round_trip(&path, false, &scratch);

    // -f writes to the file what stdout would get.
    let file = tmp.path().join("out.txt");
    let mine = ours("dump", &args(&["-f", file.to_str().unwrap(), "-a"], &path));
    assert_eq!(mine.status.code(), Some(0));
    assert!(mine.stdout.is_empty());
    let direct = ours("dump", &args(&["-a"], &path));
    assert_eq!(std::fs::read(&file).unwrap(), direct.stdout);
}

#[test]
fn empty_and_main_only_environments_match() {
    if !have_tools() {
        return;
    }
    let tmp = scratch_dir();
    // Never written: both meta pages at txnid 0.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    drop(CEnv::builder().open(&fresh).expect("create env"));
    // Only the main database, in the single-file form.
    let single = tmp.path().join("single.mdb");
    {
        let env = CEnv::builder()
            .flags(MDB_NOSUBDIR)
            .open(&single)
            .expect("create env");
        let mut txn = env.begin_rw().unwrap();
        let main = txn.open_db(None, 0).unwrap();
        for i in 0..100u32 {
            txn.put(main, &i.to_be_bytes(), b"v", 0).unwrap();
        }
        txn.commit().unwrap();
    }
    compare_all(&fresh, false);
    compare_all(&single, true);
}

#[test]
fn errors_match() {
    if !have_tools() {
        return;
    }
    let tmp = scratch_dir();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("emptydir")).unwrap();
    std::fs::write(t.join("emptyfile"), b"").unwrap();
    std::fs::write(t.join("garbage"), vec![0x5a; 10000]).unwrap();
    std::fs::create_dir_all(t.join("emptydata")).unwrap();
    std::fs::write(t.join("emptydata/data.mdb"), b"").unwrap();
    let cases: Vec<Vec<OsString>> = vec![
        args(&[], &t.join("missing")),
        args(&["-n"], &t.join("missing/x")),
        args(&[], &t.join("emptydir")),
        args(&["-n"], &t.join("emptydir")),
        args(&["-n"], &t.join("emptyfile")),
        args(&[], &t.join("emptydata")),
        args(&["-n"], &t.join("garbage")),
        args(&[], &t.join("garbage")),
        vec![],
        vec!["-a".into()],
    ];
    for c in &cases {
        same("stat", c);
        same("dump", c);
    }
}

/// With another process holding the environment open (here: this test,
/// through C LMDB) the tools read the reader table instead of resetting it.
#[test]
fn reader_table_matches_while_in_use() {
    if !have_tools() {
        return;
    }
    let tmp = scratch_dir();
    let dir = tmp.path().join("busy");
    let opts = GenOptions {
        entries: 60,
        big_dups: 50,
        txns: 3,
        ..GenOptions::small()
    };
    let path = generated(&dir, 9, &opts);
    let env = gen::open_env(&dir, &opts, MDB_NOTLS).expect("open env");
    let r1 = env.begin_ro().unwrap();
    let r2 = env.begin_ro().unwrap();
    for f in [&["-e"][..], &["-r"], &["-rr"], &["-rre", "-a"]] {
        same("stat", &args(f, &path));
    }
    same("dump", &args(&["-a"], &path));
    drop(r1);
    same("stat", &args(&["-re"], &path));
    drop(r2);
    drop(env);
}
