//! `prunedb load`, `copy` and `check` against LMDB 0.9.24's `mdb_load`,
//! `mdb_copy` and the engine's integrity check: loads of `mdb_dump` output
//! give what `mdb_load` gives, with the same messages and exit codes for bad
//! input; an interrupted load leaves each database whole or absent; copies
//! (plain and compacted, also while a writer commits) open with C LMDB and
//! dump like their source; the checker passes clean environments and names
//! the page of each kind of corruption.
//!
//! Needs the LMDB tools (`apt-get install -y lmdb-utils`); set
//! `PRUNEDB_SKIP_LMDB_UTILS=1` to skip these tests where they are missing.

use prunedb_engine::ReadTxn;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use prunedb_clmdb::gen::{self, GenOptions};
use prunedb_engine::format::{NodeFlags, Page, PageFlags, P_INVALID};
use prunedb_engine::walk::{self, Descend, PageKind, TreeId, Visit, Walker};
use prunedb_engine::{CopyFlags, CursorOp, Database, DbFlags, Env, EnvFlags, PutFlags, Snapshot};

mod common;

const PRUNEDB: &str = env!("CARGO_BIN_EXE_prunedb");

fn have_tools() -> bool {
    common::have_tools(&["mdb_dump", "mdb_load", "mdb_copy"])
}

use common::scratch_dir;

/// Runs `program` with `args` and `input` on standard input.
fn run_with(program: &str, args: &[OsString], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("POSIXLY_CORRECT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // A writer thread, so a tool that stops reading early cannot block us.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    out
}

fn ours(cmd: &str, args: &[OsString], input: &[u8]) -> Output {
    let mut all = vec![OsString::from(cmd)];
    all.extend_from_slice(args);
    run_with(PRUNEDB, &all, input)
}

fn os(flags: &[&str], paths: &[&Path]) -> Vec<OsString> {
    let mut v: Vec<OsString> = flags.iter().map(OsString::from).collect();
    v.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    v
}

/// `mdb_dump` of `path` with `flags`; the output, whatever the exit code.
fn c_dump(flags: &[&str], path: &Path) -> Vec<u8> {
    run_with("mdb_dump", &os(flags, &[path]), b"").stdout
}

/// The main database's dump and every named database's, as C sees them.
fn c_dump_everything(path: &Path, nosubdir: bool) -> Vec<u8> {
    let n: &[&str] = if nosubdir { &["-n"] } else { &[] };
    let names: Vec<Vec<u8>> = c_dump(&[n, &["-l"]].concat(), path)
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let mut v = without_records(&c_dump(&[n, &["-p"]].concat(), path), &names);
    v.extend(c_dump(&[n, &["-a"]].concat(), path));
    v
}

/// Loads `input` with `mdb_load` and with `prunedb load` (with `flags`)
/// into fresh environments under `dir`, asserts the same exit code and
/// messages (with the program names exchanged), and returns both
/// environment paths.
fn load_both(dir: &Path, tag: &str, flags: &[&str], input: &[u8]) -> (PathBuf, PathBuf) {
    let c = dir.join(format!("{tag}-c"));
    let o = dir.join(format!("{tag}-ours"));
    std::fs::create_dir_all(&c).unwrap();
    std::fs::create_dir_all(&o).unwrap();
    let co = run_with("mdb_load", &os(flags, &[&c]), input);
    let oo = ours("load", &os(flags, &[&o]), input);
    compare_outputs(
        &format!("load {flags:?} ({tag})"),
        &co,
        &oo,
        "mdb_load",
        "prunedb load",
    );
    (c, o)
}

fn compare_outputs(what: &str, c: &Output, o: &Output, c_prog: &str, o_prog: &str) {
    let c_err = String::from_utf8_lossy(&c.stderr).replace(c_prog, o_prog);
    let o_err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o_err, c_err, "{what}: standard error");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&c.stdout),
        "{what}: standard output"
    );
    assert_eq!(o.status.code(), c.status.code(), "{what}: exit code");
}

/// Asserts two dumps are equal, showing the first line that differs.
#[track_caller]
fn same_dump(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let g: Vec<&[u8]> = got.split(|&c| c == b'\n').collect();
    let w: Vec<&[u8]> = want.split(|&c| c == b'\n').collect();
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    let show = |l: Option<&&[u8]>| l.map(|l| String::from_utf8_lossy(l).into_owned());
    panic!(
        "{what}: dumps differ at line {}: got {:?}, want {:?} ({} and {} lines)",
        i + 1,
        show(g.get(i)),
        show(w.get(i)),
        g.len(),
        w.len()
    );
}

/// A `-p` dump of the main database without the records of the named
/// databases `names` (their root page numbers change when pages do).
fn without_records(dump: &[u8], names: &[Vec<u8>]) -> Vec<u8> {
    let lines: Vec<&[u8]> = dump.split_inclusive(|&c| c == b'\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_data = false;
    while i < lines.len() {
        let l = lines[i];
        if in_data && l.starts_with(b" ") && i + 1 < lines.len() {
            let key = &l[1..l.len() - 1];
            if !names.iter().any(|n| n.as_slice() == key) {
                out.extend_from_slice(l);
                out.extend_from_slice(lines[i + 1]);
            }
            i += 2;
            continue;
        }
        in_data |= l == b"HEADER=END\n";
        out.extend_from_slice(l);
        i += 1;
    }
    out
}

fn generated(dir: &Path, seed: u64, opts: &GenOptions) -> PathBuf {
    gen::random_env(dir, seed, opts).expect("generate environment");
    gen::env_path(dir, opts)
}

#[test]
fn loads_of_random_dumps_match_mdb_load() {
    if !have_tools() {
        return;
    }
    let scratch = scratch_dir();
    for (seed, opts) in [
        (11u64, GenOptions::small()),
        (12, GenOptions::small().with_nosubdir()),
    ] {
        let dir = scratch.path().join(format!("src{seed}"));
        let src = generated(&dir, seed, &opts);
        let n: &[&str] = if opts.nosubdir { &["-n"] } else { &[] };
        let want_named = c_dump(&[n, &["-a"]].concat(), &src);
        for fmt in [&[][..], &["-p"]] {
            let tag = format!("{seed}{}", fmt.join(""));
            // All named databases in one input. In the print format,
            // 0.9.24's mdb_dump writes a backslash bare, which mdb_load then
            // misreads (values change size, which C LMDB accepts even in a
            // DUPFIXED database and prunedb refuses): that input comes from
            // prunedb dump, which escapes it.
            let all = if fmt.is_empty() {
                c_dump(&[n, &["-a"]].concat(), &src)
            } else {
                ours("dump", &os(&[n, fmt, &["-a"]].concat(), &[&src]), b"").stdout
            };
            let (c, o) = load_both(scratch.path(), &format!("{tag}a"), &[], &all);
            same_dump(&c_dump(&["-a"], &c), &want_named, "mdb_load of the dump");
            same_dump(
                &c_dump(&["-a"], &o),
                &c_dump(&["-a"], &c),
                &format!("{tag} -a"),
            );
            // The main database alone (its named-database records load as
            // plain values).
            let main = c_dump(&[n, fmt].concat(), &src);
            let (c, o) = load_both(scratch.path(), &format!("{tag}m"), &[], &main);
            same_dump(
                &c_dump(&["-p"], &o),
                &c_dump(&["-p"], &c),
                &format!("{tag} main"),
            );
            // One database into a name given with -s.
            let one = ours(
                "dump",
                &os(&[n, fmt, &["-s", "db_dupfixed"]].concat(), &[&src]),
                b"",
            )
            .stdout;
            let mut no_name = Vec::new();
            for line in one.split_inclusive(|&c| c == b'\n') {
                if !line.starts_with(b"database=") {
                    no_name.extend_from_slice(line);
                }
            }
            let (c, o) = load_both(scratch.path(), &format!("{tag}s"), &["-s", "x"], &no_name);
            same_dump(
                &c_dump(&["-a"], &o),
                &c_dump(&["-a"], &c),
                &format!("{tag} -s"),
            );
            // Our environments pass the checker.
            let out = ours("check", &os(&[], &[&o]), b"");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        // mdb_load reads our dumps back into what the source holds.
        for fmt in [&[][..], &["-p"]] {
            let dump = ours("dump", &os(&[n, fmt, &["-a"]].concat(), &[&src]), b"").stdout;
            let dst = scratch.path().join(format!("back{seed}{}", fmt.join("")));
            std::fs::create_dir_all(&dst).unwrap();
            let out = run_with("mdb_load", &os(&[], &[&dst]), &dump);
            assert_eq!(out.status.code(), Some(0));
            same_dump(&c_dump(&["-a"], &dst), &want_named, "mdb_load of our dump");
        }
    }
}

#[test]
fn plain_text_and_no_overwrite_match_mdb_load() {
    if !have_tools() {
        return;
    }
    let scratch = scratch_dir();
    let mut text = Vec::new();
    for i in 0..700u32 {
        writeln!(text, "key{:04}\nvalue {i} \\e2\\82\\ac\\\\x", i % 500).unwrap();
    }
    let (c, o) = load_both(scratch.path(), "T", &["-T"], &text);
    assert_eq!(c_dump(&["-p"], &o), c_dump(&["-p"], &c));
    // Into a named DUPSORT database, then again with -N.
    let header = b"VERSION=3\nformat=print\ndatabase=d\ntype=btree\ndupsort=1\nHEADER=END\n";
    let mut first = header.to_vec();
    let mut second = header.to_vec();
    for i in 0..400u32 {
        writeln!(first, " k{}\n v{i}", i % 50).unwrap();
        writeln!(second, " k{}\n w{i}", i % 80).unwrap();
        writeln!(second, " k{}\n v{i}", i % 50).unwrap();
    }
    first.extend_from_slice(b"DATA=END\n");
    second.extend_from_slice(b"DATA=END\n");
    let mut plain = b"VERSION=3\nformat=print\ntype=btree\nHEADER=END\n".to_vec();
    for i in 0..300u32 {
        writeln!(plain, " k{}\n first{i}", i % 100).unwrap();
    }
    plain.extend_from_slice(b"DATA=END\n");
    let mut again = plain.clone();
    again.truncate(again.len() - 9);
    for i in 0..300u32 {
        writeln!(again, " k{}\n second{i}", i % 150).unwrap();
    }
    again.extend_from_slice(b"DATA=END\n");

    // (The main database gets environments of its own: with named
    // databases in it, its dump shows their records' page numbers.)
    let (c, o) = load_both(scratch.path(), "N", &[], &first);
    let (mc, mo) = load_both(scratch.path(), "Nmain", &["-T"], b"");
    for (env, input) in [(0, &second), (1, &plain), (1, &again)] {
        let (c, o) = if env == 0 { (&c, &o) } else { (&mc, &mo) };
        let co = run_with("mdb_load", &os(&["-N"], &[c]), input);
        let oo = ours("load", &os(&["-N"], &[o]), input);
        compare_outputs("load -N", &co, &oo, "mdb_load", "prunedb load");
        if env == 0 {
            same_dump(&c_dump(&["-a"], o), &c_dump(&["-a"], c), "-N dupsort");
        } else {
            same_dump(&c_dump(&["-p"], o), &c_dump(&["-p"], c), "-N main");
        }
    }
    let (c, o) = (mc, mo);
    // Without -N, values are replaced.
    let co = run_with("mdb_load", &os(&[], &[&c]), &again);
    let oo = ours("load", &os(&[], &[&o]), &again);
    compare_outputs("load again", &co, &oo, "mdb_load", "prunedb load");
    same_dump(&c_dump(&["-p"], &o), &c_dump(&["-p"], &c), "overwrite");
}

#[test]
fn bad_input_and_usage_fail_as_mdb_load_does() {
    if !have_tools() {
        return;
    }
    let scratch = scratch_dir();
    let h = "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n";
    let hp = "VERSION=3\nformat=print\ntype=btree\nHEADER=END\n";
    let cases: Vec<(&[&str], String)> = vec![
        (&[], "VERSION=4\n".into()),
        (&[], "VERSION=3\nformat=text\n".into()),
        (&[], "type=hash\n".into()),
        (&[], "mapsize=abc\n".into()),
        (&[], "maxreaders=\n".into()),
        (&[], "mapaddr=zz\n".into()),
        (&[], "no equals sign\n".into()),
        (&[], "VERSION=3\nno equals sign\nHEADER=END\n".into()),
        (
            &[],
            "VERSION=3\nbogus=1\ndupsort=0\nHEADER=END\n 6b\n 76\nDATA=END\n".into(),
        ),
        (&[], format!("{h} 6b6\n 76\nDATA=END\n")),
        (&[], format!("{h} 6b\n 7g\nDATA=END\n")),
        (&[], format!("{h} 6b\n")),
        (&[], format!("{h} 6b\n 76")),
        (&[], format!("{h} 6b\n 76\nDATA=EN\n")),
        (&[], format!("{h} 6b\n 76\nXYZ\n")),
        (&[], format!("{h} 6b\n 76\n")),
        (&[], format!("{h}\n")),
        (&[], format!("{h} \n 76\nDATA=END\n")),
        (&[], format!("{hp} a\\4\n b\nDATA=END\n")),
        (&[], format!("{hp} a\\zz\n b\nDATA=END\n")),
        (&[], format!("{hp} a\\\\b\\41\\\\c\n b\nDATA=END\n")),
        (&[], format!("{h}DATA=END\n{h} 6b\n 76\nDATA=END\n")),
        (&[], String::new()),
        (&["-T"], "a\nb\nc\n".into()),
        (&["-T"], "a\n\nb\nc\n".into()),
        (&["-T"], "\nb\n".into()),
        (&["-N", "-T"], "a\nb\na\nc\n".into()),
        (&["-x"], String::new()),
        (&["-s"], String::new()),
        (&["-V"], String::new()),
        (&["-f", "/nonexistent/input"], String::new()),
    ];
    for (i, (flags, input)) in cases.iter().enumerate() {
        load_both(scratch.path(), &format!("bad{i}"), flags, input.as_bytes());
    }
    // Usage errors and environments that cannot be opened.
    let missing = scratch.path().join("no/such/dir");
    let file = scratch.path().join("plainfile");
    std::fs::write(&file, vec![7u8; 8192]).unwrap();
    for argv in [
        os(&[], &[]),
        os(&[], &[&missing]),
        os(&["-n"], &[&file]),
        os(&[], &[&missing, &missing]),
    ] {
        let c = run_with("mdb_load", &argv, h.as_bytes());
        let o = ours("load", &argv, h.as_bytes());
        compare_outputs(&format!("{argv:?}"), &c, &o, "mdb_load", "prunedb load");
    }
    // -f reads a file.
    let input = scratch.path().join("input.txt");
    std::fs::write(&input, format!("{h} 6b\n 76\nDATA=END\n")).unwrap();
    let f = input.to_str().unwrap();
    load_both(scratch.path(), "file", &["-f", f], b"");
}

/// The input of the interrupted-load test: three named databases, the
/// second one large.
fn big_input(sizes: [u32; 3]) -> Vec<u8> {
    let mut v = Vec::new();
    for (d, n) in sizes.iter().enumerate() {
        write!(
            v,
            "VERSION=3\nformat=bytevalue\ndatabase=db{d}\ntype=btree\nmapsize=1073741824\nHEADER=END\n"
        )
        .unwrap();
        for i in 0..*n {
            let k = format!("{d}-{i:08}");
            let val = format!("value {i} of db{d} {}", "x".repeat((i % 97) as usize));
            writeln!(v, " {}\n {}", hex(k.as_bytes()), hex(val.as_bytes())).unwrap();
        }
        v.extend_from_slice(b"DATA=END\n");
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// Each database of `path` is absent or holds exactly its entries of
/// [`big_input`]; returns how many are present.
fn whole_or_absent(path: &Path, sizes: [u32; 3]) -> usize {
    let env = Env::builder()
        .flags(EnvFlags::RDONLY)
        .max_dbs(8)
        .open(path)
        .expect("open");
    let txn = env.read_txn().expect("read txn");
    let mut present = 0;
    for (d, n) in sizes.iter().enumerate() {
        let db = match txn.open_db(Some(&format!("db{d}"))) {
            Ok(db) => db,
            Err(prunedb_engine::Error::NotFound) => continue,
            Err(e) => panic!("db{d}: {e}"),
        };
        present += 1;
        let mut c = txn.cursor(db).unwrap();
        let mut op = CursorOp::First;
        let mut i = 0;
        while let Some((k, v)) = c.get(op, None, None).unwrap() {
            assert_eq!(k, format!("{d}-{i:08}").as_bytes(), "db{d} entry {i}");
            let want = format!("value {i} of db{d} {}", "x".repeat((i % 97) as usize));
            assert_eq!(v, want.as_bytes());
            i += 1;
            op = CursorOp::Next;
        }
        assert_eq!(i, *n, "db{d} is partly loaded");
    }
    present
}

#[test]
fn interrupted_load_leaves_databases_whole_or_absent() {
    let scratch = scratch_dir();
    let sizes = [20_000, 150_000, 5_000];
    let input = big_input(sizes);
    let file = scratch.path().join("big.txt");
    std::fs::write(&file, &input).unwrap();

    // Deterministic: the input stops in the middle of db1 until the kill.
    let dir = scratch.path().join("pipe");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(PRUNEDB)
        .args(["load".as_ref(), dir.as_os_str()])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let cut = {
        let marker = b"database=db1\n";
        let at = input
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap();
        at + (input.len() - at) / 4
    };
    stdin.write_all(&input[..cut]).unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    loop {
        let data = dir.join("data.mdb");
        if data.exists()
            && std::panic::catch_unwind(|| whole_or_absent(&dir, sizes)).ok() == Some(1)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "db0 never committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(whole_or_absent(&dir, sizes), 1);

    // Kills at several points of a load from a file.
    let mut seen = std::collections::BTreeSet::new();
    for (round, delay) in [50u64, 300, 800, 1500].iter().enumerate() {
        let dir = scratch.path().join(format!("kill{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(PRUNEDB)
            .args([
                "load".as_ref(),
                "-f".as_ref(),
                file.as_os_str(),
                dir.as_os_str(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill();
        child.wait().unwrap();
        if dir.join("data.mdb").exists() {
            seen.insert(whole_or_absent(&dir, sizes));
        }
    }
    eprintln!("databases present after the kills: {seen:?}");
}

#[test]
fn copies_open_in_c_and_dump_like_the_source() {
    if !have_tools() {
        return;
    }
    let scratch = scratch_dir();
    for (seed, opts) in [
        (21u64, GenOptions::small()),
        (22, GenOptions::small().with_nosubdir()),
    ] {
        let dir = scratch.path().join(format!("src{seed}"));
        let src = generated(&dir, seed, &opts);
        let n: &[&str] = if opts.nosubdir { &["-n"] } else { &[] };
        let want = c_dump_everything(&src, opts.nosubdir);
        let src_len = std::fs::metadata(prunedb_engine::env_paths(&src, nflags(opts.nosubdir)).0)
            .unwrap()
            .len();
        for c in [&[][..], &["-c"]] {
            let tag = format!("{seed}{}", c.join(""));
            let dst_dir = scratch.path().join(format!("copy{tag}"));
            std::fs::create_dir_all(&dst_dir).unwrap();
            let dst = if opts.nosubdir {
                dst_dir.join("data.mdb")
            } else {
                dst_dir.clone()
            };
            let out = ours("copy", &os(&[n, c].concat(), &[&src, &dst]), b"");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            same_dump(
                &c_dump_everything(&dst, opts.nosubdir),
                &want,
                &format!("copy {tag}"),
            );
            // C LMDB opens it and can write to it.
            let cenv = gen::open_env(&dst_dir, &opts, 0).expect("C opens the copy");
            let specs = gen::db_specs();
            gen::model(&cenv, &specs).expect("C reads every database");
            let data = prunedb_engine::env_paths(&dst, nflags(opts.nosubdir)).0;
            let bytes = std::fs::read(&data).unwrap();
            let snap = Snapshot::from_bytes(&bytes).unwrap();
            let report = walk::check(&snap).unwrap();
            assert!(report.is_ok(), "copy {tag}: {report}");
            if !c.is_empty() {
                assert!(bytes.len() as u64 <= src_len, "compacted copy is larger");
                assert_eq!(report.free_pages, 0);
                // As large as C's compacted copy.
                let cdst = scratch.path().join(format!("ccopy{tag}"));
                std::fs::create_dir_all(&cdst).unwrap();
                let cd = if opts.nosubdir {
                    cdst.join("data.mdb")
                } else {
                    cdst.clone()
                };
                let o = run_with("mdb_copy", &os(&[n, c].concat(), &[&src, &cd]), b"");
                assert_eq!(o.status.code(), Some(0));
                let clen =
                    std::fs::metadata(prunedb_engine::env_paths(&cd, nflags(opts.nosubdir)).0)
                        .unwrap()
                        .len();
                assert_eq!(
                    bytes.len() as u64,
                    clen,
                    "compacted size differs from mdb_copy -c"
                );
            }
            drop(cenv);
            // To standard output: the same bytes as to a file.
            let piped = ours("copy", &os(&[n, c].concat(), &[&src]), b"");
            assert_eq!(piped.status.code(), Some(0));
            assert!(piped.stdout == bytes, "copy {tag} to standard output");
        }
    }
    // Errors as mdb_copy reports them.
    let src = scratch.path().join("src21");
    let exists = scratch.path().join("copy21");
    let missing = scratch.path().join("missing");
    for argv in [
        os(&[], &[&src, &exists]),
        os(&[], &[&missing, &exists]),
        os(&[], &[&src, &missing]),
        os(&[], &[]),
        os(&["-x"], &[&src, &missing]),
        os(&["-c", "-V"], &[]),
        os(&[], &[&src, &src, &src]),
    ] {
        let c = run_with("mdb_copy", &argv, b"");
        let o = ours("copy", &argv, b"");
        compare_outputs(
            &format!("copy {argv:?}"),
            &c,
            &o,
            "mdb_copy",
            "prunedb copy",
        );
    }
}

fn nflags(nosubdir: bool) -> EnvFlags {
    if nosubdir {
        EnvFlags::NOSUBDIR
    } else {
        EnvFlags::empty()
    }
}

#[test]
fn hot_copy_while_a_writer_commits_is_consistent() {
    let scratch = scratch_dir();
    let src = scratch.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let env = Env::builder()
        .max_dbs(4)
        .map_size(256 << 20)
        .flags(EnvFlags::NOSYNC)
        .open(&src)
        .unwrap();
    {
        let mut txn = env.write_txn().unwrap();
        txn.create_db(Some("t"), DbFlags::empty()).unwrap();
        txn.create_db(Some("d"), DbFlags::DUPSORT).unwrap();
        txn.commit().unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let env = env.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Each commit adds 20 entries and deletes those of three
            // commits back, keeping the invariant: "count" holds the number
            // of keys of "t". The data stays the same size, however many
            // commits run while the copies pin their snapshots.
            let mut i: u64 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut txn = env.write_txn().unwrap();
                let t = txn.open_db(Some("t")).unwrap();
                let d = txn.open_db(Some("d")).unwrap();
                for j in 0..20u64 {
                    let k = (i * 20 + j).to_be_bytes();
                    txn.put(
                        t,
                        &k,
                        &vec![j as u8; (j * 211 % 3000) as usize],
                        PutFlags::empty(),
                    )
                    .unwrap();
                    txn.put(d, &(j % 7).to_be_bytes(), &k, PutFlags::empty())
                        .unwrap();
                }
                if i >= 3 {
                    for j in 0..20u64 {
                        let k = ((i - 3) * 20 + j).to_be_bytes();
                        txn.del(t, &k, None).unwrap();
                        txn.del(d, &(j % 7).to_be_bytes(), Some(&k)).unwrap();
                    }
                }
                let count = (i + 1).min(3) * 20;
                txn.put(
                    Database::MAIN,
                    b"count",
                    &count.to_le_bytes(),
                    PutFlags::empty(),
                )
                .unwrap();
                txn.commit().unwrap();
                i += 1;
            }
            i
        })
    };
    for round in 0..12 {
        let flags = if round % 2 == 0 {
            CopyFlags::empty()
        } else {
            CopyFlags::COMPACT
        };
        let dst = scratch.path().join(format!("copy{round}"));
        std::fs::create_dir_all(&dst).unwrap();
        env.copy_to(&dst, flags).unwrap();
        let bytes = std::fs::read(dst.join("data.mdb")).unwrap();
        let snap = Snapshot::from_bytes(&bytes).unwrap();
        let report = walk::check(&snap).unwrap();
        assert!(report.is_ok(), "copy {round}: {report}");
        let copy = Env::builder()
            .flags(EnvFlags::RDONLY)
            .max_dbs(4)
            .open(&dst)
            .unwrap();
        let txn = copy.read_txn().unwrap();
        let t = txn.open_db(Some("t")).unwrap();
        let count = txn
            .get(Database::MAIN, b"count")
            .unwrap()
            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
        assert_eq!(txn.stat(t).unwrap().entries, count, "copy {round}");
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits = writer.join().unwrap();
    assert!(commits > 0);
}

/// Where the checker test corrupts an environment.
struct Targets {
    /// A leaf page of a named database with at least two nodes.
    leaf: u64,
    /// A branch page with at least two children, and those children.
    branch: (u64, u64, u64),
    /// A page in a tree.
    live: u64,
}

fn find_targets(bytes: &[u8]) -> Targets {
    let snap = Snapshot::from_bytes(bytes).unwrap();
    let mut leaf = None;
    let mut branch = None;
    let mut live = None;
    let mut walker = Walker::new(&snap);
    let mut visit = |v: &Visit<'_>| {
        if let (
            Some(p),
            TreeId {
                db: walk::DbId::Named(name),
                dups_of: None,
            },
        ) = (&v.page, v.tree)
        {
            // A tree with the plain byte-wise key order.
            if name == b"db_plain" && v.kind == PageKind::Leaf && p.len() >= 2 && leaf.is_none() {
                let plain = (0..p.len()).all(|i| p.node(i).unwrap().flags == NodeFlags(0));
                if plain {
                    leaf = Some(v.pgno);
                }
            }
            if v.kind == PageKind::Branch && p.len() >= 2 && branch.is_none() {
                branch = Some((v.pgno, p.node(0).unwrap().child, p.node(1).unwrap().child));
            }
        }
        if v.kind == PageKind::Leaf && v.tree.db != walk::DbId::Free {
            live = Some(v.pgno);
        }
        Ok(Descend::Into)
    };
    walker.walk(&mut visit).unwrap();
    Targets {
        leaf: leaf.expect("a leaf"),
        branch: branch.expect("a branch"),
        live: live.expect("a live page"),
    }
}

fn check_out(path: &Path) -> (Option<i32>, String) {
    let o = ours("check", &os(&[], &[path]), b"");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn checker_passes_clean_envs_and_names_corrupted_pages() {
    let scratch = scratch_dir();
    for seed in 32..35 {
        let src = generated(
            &scratch.path().join(format!("s{seed}")),
            seed,
            &GenOptions::small(),
        );
        let (code, text) = check_out(&src);
        assert_eq!(code, Some(0), "seed {seed}: {text}");
    }
    let src = generated(&scratch.path().join("src"), 31, &GenOptions::small());
    let (code, text) = check_out(&src);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok"), "{text}");
    // One database only.
    let o = ours("check", &os(&["-s", "db_dupsort"], &[&src]), b"");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let clean = std::fs::read(src.join("data.mdb")).unwrap();
    let ps = 4096usize;
    let t = find_targets(&clean);
    let corrupt = |name: &str, f: &dyn Fn(&mut Vec<u8>)| -> (Option<i32>, String) {
        let dir = scratch.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = clean.clone();
        f(&mut b);
        std::fs::write(dir.join("data.mdb"), &b).unwrap();
        check_out(&dir)
    };
    let node_off = |b: &[u8], pgno: u64, i: usize| {
        let at = pgno as usize * ps + 16 + 2 * i;
        pgno as usize * ps + u16::from_le_bytes([b[at], b[at + 1]]) as usize
    };

    // Bit flips in a leaf's first key that put it after the second.
    let (code, text) = corrupt("leafflip", &|b| {
        let n = node_off(b, t.leaf, 0);
        let ksize = u16::from_le_bytes([b[n + 6], b[n + 7]]) as usize;
        b[n + 8..n + 8 + ksize].fill(0xff);
    });
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("page {} ", t.leaf)),
        "leaf flip: {text}"
    );

    // A bit flip in a branch page's flags: neither branch nor leaf.
    let (code, text) = corrupt("branchflip", &|b| {
        b[t.branch.0 as usize * ps + 10] |= PageFlags::LEAF.0 as u8;
    });
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("page {} ", t.branch.0)),
        "branch flip: {text}"
    );

    // A page that appears twice: the branch's second child pointer made
    // equal to its first.
    let (code, text) = corrupt("twice", &|b| {
        let n = node_off(b, t.branch.0, 1);
        let c = t.branch.1;
        b[n..n + 2].copy_from_slice(&(c as u16).to_le_bytes());
        b[n + 2..n + 4].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
        b[n + 4..n + 6].copy_from_slice(&((c >> 32) as u16).to_le_bytes());
    });
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("page {} ", t.branch.1)) && l.contains("twice")),
        "page twice: {text}"
    );

    // A live page added to a free record: the first page number of the
    // newest free record replaced by a live page.
    let free_root = Snapshot::from_bytes(&clean).unwrap().meta().free_db().root;
    assert_ne!(free_root, P_INVALID, "the environment has free pages");
    let (code, text) = corrupt("livefree", &|b| {
        let page = Page::new(
            &b[free_root as usize * ps..(free_root as usize + 1) * ps],
            free_root,
        )
        .unwrap();
        assert!(page.is_leaf(), "free DB of one leaf");
        let i = page.len() - 1;
        let node = page.node(i).unwrap();
        assert!(node.overflow_pgno().is_none());
        let v = node_off(b, free_root, i) + 8 + 8 + 8;
        b[v..v + 8].copy_from_slice(&t.live.to_le_bytes());
    });
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("page {} ", t.live)) && l.contains("free")),
        "live page in a free record: {text}"
    );

    // A truncated file cannot be opened.
    let (code, _) = corrupt("trunc", &|b| b.truncate(100));
    assert_eq!(code, Some(2));
}

/// The checker and compaction on large generated environments (slow; run
/// with `--ignored`).
#[test]
#[ignore]
fn large_generated_environments_check_clean_and_compact() {
    let scratch = scratch_dir();
    for seed in 41..43 {
        let src = generated(
            &scratch.path().join(format!("s{seed}")),
            seed,
            &GenOptions::large(),
        );
        let (code, text) = check_out(&src);
        assert_eq!(code, Some(0), "seed {seed}: {text}");
        let dst = scratch.path().join(format!("c{seed}"));
        std::fs::create_dir_all(&dst).unwrap();
        let out = ours("copy", &os(&["-c"], &[&src, &dst]), b"");
        assert_eq!(out.status.code(), Some(0));
        let (code, text) = check_out(&dst);
        assert_eq!(code, Some(0), "compacted seed {seed}: {text}");
        same_dump(
            &c_dump_everything(&dst, false),
            &c_dump_everything(&src, false),
            "large compacted copy",
        );
    }
}
