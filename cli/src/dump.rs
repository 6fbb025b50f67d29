//! `prunedb dump`: the portable dump `mdb_dump` (LMDB 0.9.24) writes, byte
//! for byte, which `mdb_load` (and Berkeley DB's `db_load`) read back.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use prunedb_engine::format::DbRecord;
use prunedb_engine::{CursorOp, DbFlags, MapSource, Snapshot};

use crate::compat::{self, strerror, Opened, MDB_NOTFOUND};
use crate::getopt::{bytes, Getopt, Item};
use crate::LMDB_VERSION;

const USAGE: &str = "[-V] [-f output] [-l] [-n] [-p] [-a|-s subdb] dbpath";

/// The flag lines of the header, in `mdb_dump`'s order.
const FLAG_NAMES: [(DbFlags, &str); 6] = [
    (DbFlags::REVERSEKEY, "reversekey"),
    (DbFlags::DUPSORT, "dupsort"),
    (DbFlags::INTEGERKEY, "integerkey"),
    (DbFlags::DUPFIXED, "dupfixed"),
    (DbFlags::INTEGERDUP, "integerdup"),
    (DbFlags::REVERSEDUP, "reversedup"),
];

const HEX: &[u8; 16] = b"0123456789abcdef";

type Out = BufWriter<Box<dyn Write>>;

fn usage(prog: &str, out: &mut Out) -> io::Result<i32> {
    out.flush()?;
    eprintln!("usage: {prog} {USAGE}");
    Ok(1)
}

/// Runs `dump` with `args` (the arguments after the command name). Output
/// goes to standard output unless `-f` names a file. Returns the exit code.
pub fn run(prog: &str, args: &[OsString]) -> io::Result<i32> {
    let mut out: Out = BufWriter::new(Box::new(io::stdout()));
    let rc = dump(prog, args, &mut out)?;
    out.flush()?;
    Ok(rc)
}

fn dump(prog: &str, args: &[OsString], out: &mut Out) -> io::Result<i32> {
    let mut alldbs = false;
    let mut list = false;
    let mut nosubdir = false;
    let mut print = false;
    let mut subname: Option<OsString> = None;
    let mut opts = Getopt::new(args, "af:lnps:V");
    for item in opts.by_ref() {
        match item {
            Item::Opt(b'V', _) => {
                writeln!(out, "{LMDB_VERSION}")?;
                return Ok(0);
            }
            Item::Opt(c @ (b'l' | b'a'), _) => {
                if c == b'l' {
                    list = true;
                }
                if subname.is_some() {
                    return usage(prog, out);
                }
                alldbs = true;
            }
            Item::Opt(b'f', Some(path)) => {
                // Like freopen(3) on stdout: takes effect at once, and a later
                // -f replaces an earlier one.
                out.flush()?;
                match File::create(&path) {
                    Ok(f) => *out = BufWriter::new(Box::new(f)),
                    Err(e) => {
                        let rc = e.raw_os_error().unwrap_or(libc::EIO);
                        eprintln!(
                            "{prog}: {}: reopen: {}",
                            path.to_string_lossy(),
                            strerror(rc)
                        );
                        return Ok(1);
                    }
                }
            }
            Item::Opt(b'n', _) => nosubdir = true,
            Item::Opt(b'p', _) => print = true,
            Item::Opt(b's', arg) => {
                if alldbs {
                    return usage(prog, out);
                }
                subname = arg;
            }
            Item::Opt(..) => return usage(prog, out),
            Item::Error(msg) => {
                eprintln!("{prog}: {msg}");
                return usage(prog, out);
            }
        }
    }
    let [envname] = opts.operands() else {
        return usage(prog, out);
    };

    let opened = match compat::open(envname, nosubdir) {
        Ok(o) => o,
        Err(rc) => {
            eprintln!("mdb_env_open failed, error {rc} {}", strerror(rc));
            return Ok(1);
        }
    };
    let Some(txn) = compat::read_txn(&opened.env) else {
        return Ok(1);
    };
    let snap = txn.snapshot();
    let Some(rec) = compat::chosen_db(snap, subname.as_deref()) else {
        return Ok(1);
    };
    let dumper = Dumper {
        opened: &opened,
        snap,
        print,
    };

    let mut rc;
    if alldbs {
        let mut count = 0usize;
        rc = MDB_NOTFOUND;
        for named in compat::NamedDbs::new(snap) {
            let (key, sub) = match named {
                Ok(n) => n,
                Err(code) => {
                    rc = code;
                    break;
                }
            };
            count += 1;
            let Some(sub) = sub else {
                continue;
            };
            if list {
                out.write_all(key)?;
                out.write_all(b"\n")?;
            } else {
                let r = dumper.dump(out, &sub, Some(key))?;
                if r != 0 {
                    rc = r;
                    break;
                }
            }
        }
        if count == 0 {
            out.flush()?;
            eprintln!(
                "{prog}: {} does not contain multiple databases",
                envname.to_string_lossy()
            );
            rc = MDB_NOTFOUND;
        } else if rc == MDB_NOTFOUND {
            rc = 0;
        }
    } else {
        rc = dumper.dump(out, &rec, subname.as_deref().map(bytes))?;
    }
    if rc != 0 && rc != MDB_NOTFOUND {
        out.flush()?;
        eprintln!("{prog}: {}: {}", envname.to_string_lossy(), strerror(rc));
    }
    Ok(i32::from(rc != 0))
}

struct Dumper<'a, 'env> {
    opened: &'a Opened,
    snap: &'a Snapshot<MapSource<'env>>,
    print: bool,
}

impl Dumper<'_, '_> {
    /// Dumps one database: the header, every key/value pair (each value of
    /// a DUPSORT key), and the end marker. Returns 0 or the LMDB code of
    /// the error that stopped the walk.
    fn dump(&self, out: &mut Out, rec: &DbRecord, name: Option<&[u8]>) -> io::Result<i32> {
        let flags = DbFlags(rec.flags.bits() & DbFlags::PERSISTENT.bits());
        writeln!(out, "VERSION=3")?;
        writeln!(
            out,
            "format={}",
            if self.print { "print" } else { "bytevalue" }
        )?;
        if let Some(name) = name {
            out.write_all(b"database=")?;
            out.write_all(name)?;
            out.write_all(b"\n")?;
        }
        writeln!(out, "type=btree")?;
        writeln!(out, "mapsize={}", self.opened.map_size)?;
        if self.opened.map_addr != 0 {
            writeln!(out, "mapaddr={}", crate::pointer(self.opened.map_addr))?;
        }
        writeln!(out, "maxreaders={}", self.opened.readers.max_readers)?;
        if flags.contains(DbFlags::DUPSORT) {
            writeln!(out, "duplicates=1")?;
        }
        for (f, n) in FLAG_NAMES {
            if flags.contains(f) {
                writeln!(out, "{n}=1")?;
            }
        }
        writeln!(out, "db_pagesize={}", self.opened.env.page_size())?;
        writeln!(out, "HEADER=END")?;

        let mut cursor = self.snap.cursor(rec);
        let mut op = CursorOp::First;
        let mut line = Vec::new();
        let rc = loop {
            match cursor.get(op, None, None) {
                Ok(Some((k, v))) => {
                    for item in [k, v] {
                        line.clear();
                        self.encode(&mut line, item);
                        out.write_all(&line)?;
                    }
                }
                Ok(None) => break 0,
                Err(e) => break compat::code(&e),
            }
            op = CursorOp::Next;
        };
        writeln!(out, "DATA=END")?;
        Ok(rc)
    }

    /// One data line: a space, then the bytes in hex or, with `-p`,
    /// printable ASCII as is and anything else as `\xx`.
    ///
    /// A backslash is written as `\5c`. That is the one place where this
    /// output differs from 0.9.24's: its `mdb_dump` writes a bare
    /// backslash, which `mdb_load` then reads as the start of an escape
    /// (losing data or failing), and the doubled `\\` of later releases is
    /// decoded wrongly by 0.9.24's `mdb_load` after an earlier escape on the
    /// same line. Every `mdb_load` reads `\5c` back as a backslash.
    fn encode(&self, line: &mut Vec<u8>, b: &[u8]) {
        line.push(b' ');
        for &c in b {
            if !self.print {
                line.extend_from_slice(&[HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
            } else if (0x20..0x7f).contains(&c) && c != b'\\' {
                line.push(c);
            } else {
                line.extend_from_slice(&[
                    b'\\',
                    HEX[usize::from(c >> 4)],
                    HEX[usize::from(c & 15)],
                ]);
            }
        }
        line.push(b'\n');
    }
}
