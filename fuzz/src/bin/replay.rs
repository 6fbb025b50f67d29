//! A stable-toolchain harness for the fuzz targets: replays a corpus, then
//! runs a random mutation loop over it, each case under `catch_unwind` and
//! a time limit. Inputs that panic or run too long are saved under
//! `artifacts/<target>/` and make the exit status 1.
//!
//! ```text
//! replay [--write] [--iters N] [--seconds S] [--seed X] [--limit-ms MS] [PATH...]
//! ```
//! The target is `open_traverse`, or with `--write` `write_damaged`. Paths
//! are files or directories (default: `corpus/open_traverse` beside this
//! crate). Without `--iters` or `--seconds` only the corpus is replayed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prunedb_fuzz::{mutate, open_traverse, write_damaged, Rng};

struct Opts {
    write: bool,
    iters: u64,
    seconds: u64,
    seed: u64,
    limit: Duration,
    paths: Vec<PathBuf>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        write: false,
        iters: 0,
        seconds: 0,
        seed: 1,
        limit: Duration::from_millis(2000),
        paths: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--write" => o.write = true,
            "--iters" => o.iters = num("--iters"),
            "--seconds" => o.seconds = num("--seconds"),
            "--seed" => o.seed = num("--seed"),
            "--limit-ms" => o.limit = Duration::from_millis(num("--limit-ms")),
            "-h" | "--help" => {
                println!(
                    "replay [--write] [--iters N] [--seconds S] [--seed X] [--limit-ms MS] [PATH...]"
                );
                std::process::exit(0);
            }
            _ => o.paths.push(PathBuf::from(a)),
        }
    }
    if o.paths.is_empty() {
        o.paths
            .push(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/open_traverse"));
    }
    o
}

fn load(paths: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .expect("read corpus dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for e in entries {
                out.push((e.display().to_string(), std::fs::read(&e).expect("read")));
            }
        } else {
            out.push((p.display().to_string(), std::fs::read(p).expect("read")));
        }
    }
    out
}

enum Outcome {
    Ok,
    Panic(String),
    Slow(Duration),
}

/// The target a case runs: a read of the bytes, or writes through an
/// environment in `dir`.
enum Target {
    Read,
    Write(PathBuf),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Read => "open_traverse",
            Target::Write(_) => "write_damaged",
        }
    }
}

fn run(target: &Target, data: &[u8], limit: Duration) -> Outcome {
    let start = Instant::now();
    match catch_unwind(AssertUnwindSafe(|| match target {
        Target::Read => open_traverse(data),
        Target::Write(dir) => write_damaged(data, dir),
    })) {
        Err(p) => Outcome::Panic(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
        Ok(_) if start.elapsed() > limit => Outcome::Slow(start.elapsed()),
        Ok(_) => Outcome::Ok,
    }
}

fn save(target: &Target, kind: &str, seed: u64, data: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(target.name());
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let path = dir.join(format!("{kind}-{seed:016x}"));
    std::fs::write(&path, data).expect("save artifact");
    path
}

fn main() {
    let o = parse_args();
    // Panics are counted and reported here, not printed one by one.
    std::panic::set_hook(Box::new(|_| {}));
    let target = if o.write {
        let dir = std::env::temp_dir().join(format!("prunedb-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("replay directory");
        Target::Write(dir)
    } else {
        Target::Read
    };
    let corpus = load(&o.paths);
    if corpus.is_empty() {
        eprintln!("no inputs in {:?}", o.paths);
        std::process::exit(2);
    }
    let mut bad = 0u64;
    for (name, data) in &corpus {
        match run(&target, data, o.limit) {
            Outcome::Ok => {}
            Outcome::Panic(m) => {
                bad += 1;
                eprintln!("{name}: panic: {m}");
            }
            Outcome::Slow(t) => {
                bad += 1;
                eprintln!("{name}: took {t:?}");
            }
        }
    }
    println!("replayed {} inputs, {bad} failing", corpus.len());

    // The mutation loop: each case starts from a corpus input or from an
    // earlier mutant that still opened, so damage accumulates.
    let started = Instant::now();
    let mut pool: Vec<Vec<u8>> = corpus.iter().map(|(_, d)| d.clone()).collect();
    let base_len = pool.len();
    let mut rng = Rng::new(o.seed);
    let mut cases = 0u64;
    let mut opened = 0u64;
    loop {
        let out_of_iters = o.iters > 0 && cases >= o.iters;
        let out_of_time = o.seconds > 0 && started.elapsed() >= Duration::from_secs(o.seconds);
        if (o.iters == 0 && o.seconds == 0) || out_of_iters || out_of_time {
            break;
        }
        let seed = o.seed.wrapping_mul(1 << 32).wrapping_add(cases);
        let mut case_rng = Rng::new(seed);
        let mut data = pool[rng.below(pool.len())].clone();
        let other = &pool[case_rng.below(pool.len())].clone();
        for _ in 0..1 + case_rng.below(4) {
            mutate(&mut data, other, &mut case_rng);
        }
        if let Target::Write(_) = target {
            // A panic while a transaction unwinds aborts the process, which
            // `catch_unwind` cannot report: the case is on disk first.
            save(&target, "current", 0, &data);
        }
        match run(&target, &data, o.limit) {
            Outcome::Ok => {
                if prunedb_engine::Snapshot::from_bytes(&data).is_ok() {
                    opened += 1;
                    if pool.len() < base_len + 512 {
                        pool.push(data);
                    } else {
                        let i = base_len + case_rng.below(512);
                        pool[i] = data;
                    }
                }
            }
            Outcome::Panic(m) => {
                bad += 1;
                let p = save(&target, "crash", seed, &data);
                eprintln!("case {seed:#x}: panic: {m} (saved {})", p.display());
            }
            Outcome::Slow(t) => {
                bad += 1;
                let p = save(&target, "slow", seed, &data);
                eprintln!("case {seed:#x}: took {t:?} (saved {})", p.display());
            }
        }
        cases += 1;
        if cases.is_multiple_of(20_000) {
            println!(
                "{cases} cases, {opened} opened, {bad} failing, {:.0}/s",
                cases as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if cases > 0 {
        println!(
            "mutation loop: {cases} cases in {:.1?}, {opened} opened, {bad} failing",
            started.elapsed()
        );
    }
    if let Target::Write(dir) = &target {
        let _ = std::fs::remove_dir_all(dir);
    }
    if bad > 0 {
        std::process::exit(1);
    }
}
