//! `prunedb check`: an integrity check of an environment, in the spirit of
//! libmdbx's `mdbx_chk`, built on the engine's page walker
//! ([`prunedb_engine::walk::check`]). It verifies, for the newest snapshot,
//! that every page is reached exactly once, that no page is both in a tree
//! and free, the structure and key order (and dup order) of every tree, and
//! that each database record's counters match its tree. It reads only: the
//! environment may be in use.
//!
//! Exit codes: 0 when clean (with a short summary), 1 when problems were
//! found (each one naming the page, the database and what is wrong), 2 for
//! a usage error or an environment that cannot be opened.

use std::ffi::OsString;
use std::io::{self, Write};

use prunedb_engine::format::DbRecord;
use prunedb_engine::walk::{self, DbId, Descend, Problem, TreeSummary, Visit, Visitor, Walker};
use prunedb_engine::{MapSource, Snapshot};

use crate::compat::{self, strerror};
use crate::getopt::{bytes, Getopt, Item};
use crate::LMDB_VERSION;

const USAGE: &str = "[-V] [-n] [-q] [-s name] dbpath";

/// Exit code when problems were found.
const FOUND: i32 = 1;
/// Exit code for usage errors and unreadable environments.
const TROUBLE: i32 = 2;

fn usage(prog: &str) -> i32 {
    eprintln!("usage: {prog} {USAGE}");
    TROUBLE
}

/// Runs `check` with `args` (the arguments after the command name).
/// Returns the exit code.
pub fn run(prog: &str, args: &[OsString]) -> io::Result<i32> {
    let mut nosubdir = false;
    let mut quiet = false;
    let mut subname: Option<OsString> = None;
    let mut opts = Getopt::new(args, "nqs:V");
    for item in opts.by_ref() {
        match item {
            Item::Opt(b'V', _) => {
                println!("{LMDB_VERSION}");
                return Ok(0);
            }
            Item::Opt(b'n', _) => nosubdir = true,
            Item::Opt(b'q', _) => quiet = true,
            Item::Opt(b's', name) => subname = name,
            Item::Opt(..) => return Ok(usage(prog)),
            Item::Error(msg) => {
                eprintln!("{prog}: {msg}");
                return Ok(usage(prog));
            }
        }
    }
    let [envname] = opts.operands() else {
        return Ok(usage(prog));
    };
    let path = envname.to_string_lossy();
    let opened = match compat::open(envname, nosubdir) {
        Ok(o) => o,
        Err(rc) => {
            eprintln!("{prog}: {path}: cannot open: {}", strerror(rc));
            return Ok(TROUBLE);
        }
    };
    let txn = match opened.env.read_txn() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{prog}: {path}: cannot read: {}", strerror(e.code()));
            return Ok(TROUBLE);
        }
    };
    let snap = txn.snapshot();
    let mut out = io::stdout().lock();
    let rc = match &subname {
        None => check_all(prog, &path, snap, quiet, &mut out)?,
        Some(name) => check_one(prog, &path, snap, bytes(name), quiet, &mut out)?,
    };
    out.flush()?;
    Ok(rc)
}

/// Checks the whole snapshot: every tree and the page accounting.
fn check_all(
    prog: &str,
    path: &str,
    snap: &Snapshot<MapSource<'_>>,
    quiet: bool,
    out: &mut impl Write,
) -> io::Result<i32> {
    let report = match walk::check(snap) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: {path}: check stopped: {e}");
            return Ok(FOUND);
        }
    };
    if !report.is_ok() {
        writeln!(
            out,
            "{path}: {} problem(s) at transaction {}",
            report.problem_count,
            snap.txnid()
        )?;
        write!(out, "{report}")?;
        return Ok(FOUND);
    }
    if !quiet {
        writeln!(out, "{path}: ok at transaction {}", snap.txnid())?;
        writeln!(
            out,
            "  pages: last {}, {} in trees, {} free in {} record(s); {} tree(s)",
            report.last_pgno,
            report.live_pages,
            report.free_pages,
            report.free_records,
            report.trees
        )?;
        summary(out, "main db", &snap.main_db())?;
        if let Ok(names) = snap.db_names() {
            for name in names {
                if let Ok(rec) = snap.named_db(name) {
                    summary(out, &format!("db {}", String::from_utf8_lossy(name)), &rec)?;
                }
            }
        }
    }
    Ok(0)
}

fn summary(out: &mut impl Write, what: &str, rec: &DbRecord) -> io::Result<()> {
    writeln!(
        out,
        "  {what}: {} entries, depth {}, {} branch, {} leaf, {} overflow page(s)",
        rec.entries, rec.depth, rec.branch_pages, rec.leaf_pages, rec.overflow_pages
    )
}

/// Collects what a walk of one database finds.
#[derive(Default)]
struct Collect<'a> {
    problems: Vec<Problem<'a>>,
    trees: u64,
    pages: u64,
}

impl<'a> Visitor<'a> for Collect<'a> {
    fn page(&mut self, v: &Visit<'a>) -> prunedb_engine::Result<Descend> {
        self.pages += v.count;
        Ok(Descend::Into)
    }

    fn problem(&mut self, p: Problem<'a>) -> prunedb_engine::Result<()> {
        self.problems.push(p);
        Ok(())
    }

    fn tree_done(&mut self, _: &TreeSummary<'a>) -> prunedb_engine::Result<()> {
        self.trees += 1;
        Ok(())
    }
}

/// Checks one named database: its tree and its dup sub-databases (the
/// page accounting of the whole file needs the whole walk).
fn check_one(
    prog: &str,
    path: &str,
    snap: &Snapshot<MapSource<'_>>,
    name: &[u8],
    quiet: bool,
    out: &mut impl Write,
) -> io::Result<i32> {
    let shown = String::from_utf8_lossy(name);
    let rec = match snap.named_db(name) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: {path}: database {shown}: {}", strerror(e.code()));
            return Ok(TROUBLE);
        }
    };
    let mut c = Collect::default();
    let r = Walker::new(snap)
        .checking(true)
        .walk_db(&mut c, DbId::Named(name), &rec);
    if let Err(e) = r {
        eprintln!("{prog}: {path}: check stopped: {e}");
        return Ok(FOUND);
    }
    if !c.problems.is_empty() {
        writeln!(
            out,
            "{path}: db {shown}: {} problem(s) at transaction {}",
            c.problems.len(),
            snap.txnid()
        )?;
        for p in &c.problems {
            writeln!(out, "  {p}")?;
        }
        return Ok(FOUND);
    }
    if !quiet {
        writeln!(
            out,
            "{path}: db {shown}: ok at transaction {} ({} page(s) in {} tree(s))",
            snap.txnid(),
            c.pages,
            c.trees
        )?;
        summary(out, &format!("db {shown}"), &rec)?;
    }
    Ok(0)
}
