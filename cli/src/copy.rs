//! `prunedb copy`: LMDB 0.9.24's `mdb_copy`. Copies an environment from
//! one read transaction while writers go on, to a new directory (or, with
//! `-n`, a new file), or to standard output when no destination is given;
//! `-c` compacts. Its arguments are read the way `mdb_copy` reads them
//! (flags only before the paths, each on its own, no `getopt`), with the
//! same messages and exit codes.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;

use prunedb_engine::CopyFlags;

use crate::compat::{self, strerror};
use crate::LMDB_VERSION;

/// Runs `copy` with `args` (the arguments after the command name).
/// Returns the exit code.
pub fn run(prog: &str, args: &[OsString]) -> io::Result<i32> {
    let mut nosubdir = false;
    let mut flags = CopyFlags::empty();
    let mut rest = args;
    let mut ok = true;
    while let Some(a) = rest.first() {
        let a = a.as_bytes();
        if a.first() != Some(&b'-') {
            break;
        }
        match a {
            b"-n" => nosubdir = true,
            b"-c" => flags = flags | CopyFlags::COMPACT,
            b"-V" => {
                println!("{LMDB_VERSION}");
                return Ok(0);
            }
            _ => {
                ok = false;
                break;
            }
        }
        rest = &rest[1..];
    }
    let (src, dst) = match rest {
        [s] if ok => (s, None),
        [s, d] if ok => (s, Some(d)),
        _ => {
            eprintln!("usage: {prog} [-V] [-c] [-n] srcpath [dstpath]");
            return Ok(1);
        }
    };
    let opened = match compat::open(src, nosubdir) {
        Ok(o) => o,
        Err(rc) => return Ok(fail(prog, "opening environment", rc)),
    };
    let r = match dst {
        Some(d) => opened.env.copy_to(d, flags),
        None => {
            let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            opened
                .env
                .copy_to_writer(&mut out, flags)
                .and_then(|()| out.flush().map_err(Into::into))
        }
    };
    match r {
        Ok(()) => Ok(0),
        Err(e) => Ok(fail(prog, "copying", e.code())),
    }
}

fn fail(prog: &str, act: &str, rc: i32) -> i32 {
    eprintln!("{prog}: {act} failed, error {rc} ({})", strerror(rc));
    1
}
