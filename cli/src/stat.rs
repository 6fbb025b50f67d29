//! `prunedb stat`: the statistics `mdb_stat` (LMDB 0.9.24) prints, in the
//! same format, with the same options and exit codes.

use std::ffi::OsString;
use std::io::{self, Write};

use prunedb_engine::{CursorOp, Database, ReadTxn, Stat};

use crate::compat::{self, strerror, Opened, MDB_NOTFOUND};
use crate::getopt::{Getopt, Item};
use crate::LMDB_VERSION;

const USAGE: &str = "[-V] [-n] [-e] [-r[r]] [-f[f[f]]] [-a|-s subdb] dbpath";

fn usage(prog: &str) -> i32 {
    eprintln!("usage: {prog} {USAGE}");
    1
}

fn prstat(out: &mut impl Write, s: &Stat) -> io::Result<()> {
    writeln!(out, "  Tree depth: {}", s.depth)?;
    writeln!(out, "  Branch pages: {}", s.branch_pages)?;
    writeln!(out, "  Leaf pages: {}", s.leaf_pages)?;
    writeln!(out, "  Overflow pages: {}", s.overflow_pages)?;
    writeln!(out, "  Entries: {}", s.entries)
}

/// Runs `stat` with `args` (the arguments after the command name),
/// writing to `out`. Returns the exit code.
pub fn run(prog: &str, args: &[OsString], out: &mut impl Write) -> io::Result<i32> {
    let mut alldbs = false;
    let mut envinfo = false;
    let mut nosubdir = false;
    let mut freinfo = 0u32;
    let mut rdrinfo = 0u32;
    let mut subname: Option<OsString> = None;
    let mut opts = Getopt::new(args, "Vaefnrs:");
    for item in opts.by_ref() {
        match item {
            Item::Opt(b'V', _) => {
                writeln!(out, "{LMDB_VERSION}")?;
                return Ok(0);
            }
            Item::Opt(b'a', _) => {
                if subname.is_some() {
                    return Ok(usage(prog));
                }
                alldbs = true;
            }
            Item::Opt(b'e', _) => envinfo = true,
            Item::Opt(b'f', _) => freinfo += 1,
            Item::Opt(b'n', _) => nosubdir = true,
            Item::Opt(b'r', _) => rdrinfo += 1,
            Item::Opt(b's', arg) => {
                if alldbs {
                    return Ok(usage(prog));
                }
                subname = arg;
            }
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

    let opened = match compat::open_for_stat(envname, nosubdir) {
        Ok(o) => o,
        Err(rc) => {
            eprintln!("mdb_env_open failed, error {rc} {}", strerror(rc));
            return Ok(1);
        }
    };
    let env = &opened.env;

    if envinfo {
        print_envinfo(out, &opened)?;
    }

    if rdrinfo > 0 {
        writeln!(out, "Reader Table Status")?;
        reader_list(out, &opened, &[])?;
        if rdrinfo > 1 {
            // The slots of dead processes are reported as `mdb_reader_check`
            // would clear them; this tool writes nothing, and the next C
            // writer clears them for real.
            let stale = opened.readers.stale();
            writeln!(out, "  {} stale readers cleared.", stale.len())?;
            reader_list(out, &opened, &stale)?;
        }
        if subname.is_none() && !alldbs && freinfo == 0 {
            // mdb_stat returns the last fputs result (1 with glibc) here.
            return Ok(1);
        }
    }

    let Some(txn) = compat::read_txn(env) else {
        return Ok(1);
    };
    let snap = txn.snapshot();

    if freinfo > 0 {
        writeln!(out, "Freelist Status")?;
        prstat(out, &snap.stat(&snap.free_db()))?;
        let mut cursor = match txn.cursor(Database::FREE) {
            Ok(c) => c,
            Err(e) => {
                let rc = compat::code(&e);
                eprintln!("mdb_cursor_open failed, error {rc} {}", strerror(rc));
                return Ok(1);
            }
        };
        let mut pages: u64 = 0;
        let mut op = CursorOp::First;
        // A cursor error ends the walk; mdb_stat then goes on with the
        // main database as it does at the end of the list.
        while let Ok(Some((key, data))) = cursor.get(op, None, None) {
            op = CursorOp::Next;
            let Some(ids) = FreeRecord::parse(data) else {
                break;
            };
            pages = pages.wrapping_add(ids.count);
            if freinfo > 1 && !print_free_record(out, key, &ids, freinfo > 2)? {
                break;
            }
        }
        writeln!(out, "  Free pages: {pages}")?;
    }

    let Some(rec) = compat::chosen_db(snap, subname.as_deref()) else {
        return Ok(1);
    };
    out.write_all(b"Status of ")?;
    match &subname {
        None => out.write_all(b"Main DB")?,
        Some(name) => out.write_all(crate::getopt::bytes(name))?,
    }
    out.write_all(b"\n")?;
    prstat(out, &snap.stat(&rec))?;

    let mut rc = 0;
    if alldbs {
        for named in compat::NamedDbs::new(snap) {
            let (key, sub) = match named {
                Ok(n) => n,
                Err(code) => {
                    rc = code;
                    break;
                }
            };
            let Some(sub) = sub else {
                continue;
            };
            out.write_all(b"Status of ")?;
            out.write_all(key)?;
            out.write_all(b"\n")?;
            prstat(out, &snap.stat(&sub))?;
        }
    }
    if rc == MDB_NOTFOUND {
        rc = 0;
    }
    Ok(i32::from(rc != 0))
}

fn print_envinfo(out: &mut impl Write, o: &Opened) -> io::Result<()> {
    let (last_pgno, last_txnid) = match o.env.info() {
        Ok(i) => (i.last_pgno, i.last_txnid),
        Err(_) => (0, 0),
    };
    let ps = o.env.page_size() as u64;
    writeln!(out, "Environment Info")?;
    writeln!(out, "  Map address: {}", crate::pointer(o.map_addr))?;
    writeln!(out, "  Map size: {}", o.map_size)?;
    writeln!(out, "  Page size: {ps}")?;
    writeln!(out, "  Max pages: {}", o.map_size / ps.max(1))?;
    writeln!(out, "  Number of pages used: {}", last_pgno.wrapping_add(1))?;
    writeln!(out, "  Last transaction ID: {last_txnid}")?;
    writeln!(out, "  Max readers: {}", o.readers.max_readers)?;
    writeln!(out, "  Number of readers used: {}", o.readers.num_readers)
}

/// Prints the reader table as `mdb_reader_list` does, leaving out the
/// slots in `skip`.
fn reader_list(out: &mut impl Write, o: &Opened, skip: &[u32]) -> io::Result<()> {
    let mut first = true;
    for s in o.readers.used.iter().filter(|s| !skip.contains(&s.index)) {
        if first {
            first = false;
            writeln!(out, "    pid     thread     txnid")?;
        }
        if s.txnid == u64::MAX {
            writeln!(out, "{:10} {:x} -", s.pid, s.tid)?;
        } else {
            writeln!(out, "{:10} {:x} {}", s.pid, s.tid, s.txnid)?;
        }
    }
    if first {
        writeln!(out, "(no active readers)")?;
    }
    Ok(())
}

/// A record of the free-page database: a count and that many page numbers
/// (an `MDB_IDL`, sorted in descending order).
struct FreeRecord<'a> {
    count: u64,
    ids: &'a [u8],
}

impl<'a> FreeRecord<'a> {
    fn parse(data: &'a [u8]) -> Option<FreeRecord<'a>> {
        let count = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        Some(FreeRecord {
            count,
            ids: &data[8..],
        })
    }

    /// Page number `i` of the list; `None` past the end of the record.
    fn id(&self, i: usize) -> Option<u64> {
        let b = self
            .ids
            .get(i.checked_mul(8)?..i.checked_mul(8)?.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

/// Prints the `-ff` summary line of one free-page record and, for `-fff`,
/// its runs of consecutive pages. Returns `false` if the record is shorter
/// than its count says (a corrupted record ends the walk).
fn print_free_record(
    out: &mut impl Write,
    key: &[u8],
    rec: &FreeRecord<'_>,
    runs: bool,
) -> io::Result<bool> {
    let Ok(n) = usize::try_from(rec.count) else {
        return Ok(false);
    };
    let ids: Option<Vec<u64>> = (0..n).map(|i| rec.id(i)).collect();
    let Some(ids) = ids else {
        return Ok(false);
    };
    let mut txnid = [0u8; 8];
    let k = key.len().min(8);
    txnid[..k].copy_from_slice(&key[..k]);
    let txnid = u64::from_le_bytes(txnid);

    // Walk from the smallest page up (the list is stored descending):
    // a page not above its predecessor breaks the order, and `span` grows
    // while a run of that length ending here is contiguous.
    let mut bad = "";
    let mut span = 0usize;
    let mut prev = 1u64;
    for i in (0..n).rev() {
        let mut pg = ids[i];
        if pg <= prev {
            bad = " [bad sequence]";
        }
        prev = pg;
        pg = pg.wrapping_add(span as u64);
        while i >= span && ids[i - span] == pg {
            span += 1;
            pg = pg.wrapping_add(1);
        }
    }
    writeln!(
        out,
        "    Transaction {txnid}, {n} pages, maxspan {span}{bad}"
    )?;
    if runs {
        let mut j = n;
        while j > 0 {
            j -= 1;
            let pg = ids[j];
            let mut run = 1u64;
            while j > 0 && ids[j - 1] == pg.wrapping_add(run) {
                j -= 1;
                run += 1;
            }
            if run > 1 {
                writeln!(out, "     {pg:9}[{run}]")?;
            } else {
                writeln!(out, "     {pg:9}")?;
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ids: &[u64]) -> Vec<u8> {
        let mut v = (ids.len() as u64).to_le_bytes().to_vec();
        for id in ids {
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    fn show(ids: &[u64], runs: bool) -> (bool, String) {
        let data = record(ids);
        let rec = FreeRecord::parse(&data).unwrap();
        let mut out = Vec::new();
        let ok = print_free_record(&mut out, &7u64.to_le_bytes(), &rec, runs).unwrap();
        (ok, String::from_utf8(out).unwrap())
    }

    #[test]
    fn free_record_summary_and_runs() {
        let (ok, s) = show(&[10, 9, 8, 5, 3], true);
        assert!(ok);
        assert_eq!(
            s,
            "    Transaction 7, 5 pages, maxspan 3\n             3\n             5\n             8[3]\n"
        );
    }

    #[test]
    fn free_record_bad_sequence() {
        let (_, s) = show(&[5, 5], false);
        assert_eq!(s, "    Transaction 7, 2 pages, maxspan 1 [bad sequence]\n");
        let (_, s) = show(&[4, 1], false);
        assert_eq!(s, "    Transaction 7, 2 pages, maxspan 1 [bad sequence]\n");
    }

    #[test]
    fn short_free_record_stops_the_walk() {
        let mut data = record(&[9, 8]);
        data.truncate(data.len() - 3);
        let rec = FreeRecord::parse(&data).unwrap();
        let mut out = Vec::new();
        assert!(!print_free_record(&mut out, &[1], &rec, true).unwrap());
        assert!(out.is_empty());
        assert!(FreeRecord::parse(&[1, 2, 3]).is_none());
    }
}
