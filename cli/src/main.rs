//! The `prunedb` command-line tool.
//!
//! `prunedb stat`, `dump`, `load` and `copy` work on LMDB environments
//! (written by prunedb or by C LMDB) the way LMDB 0.9.24's `mdb_stat`,
//! `mdb_dump`, `mdb_load` and `mdb_copy` do, with the same options, output
//! and exit codes, so scripts written for those tools work unchanged.
//! `prunedb check` verifies an environment's integrity.

mod check;
mod compat;
mod copy;
mod dump;
mod getopt;
mod load;
mod lockprobe;
mod stat;

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};

/// What `-V` prints: the LMDB release whose tools' output these commands
/// reproduce, in `MDB_VERSION_STRING`'s form, so that version checks
/// written for those tools keep working.
pub const LMDB_VERSION: &str = "LMDB 0.9.24: (July 24, 2019)";

const COMMANDS: &str = "\
usage: prunedb <command> [options] dbpath

commands:
  stat   print environment and database statistics (as mdb_stat)
  dump   dump databases in the portable text format (as mdb_dump)
  load   load databases from the portable text format (as mdb_load)
  copy   copy an environment, optionally compacting it (as mdb_copy)
  check  check the integrity of an environment

Run `prunedb <command> -x` for a command's options.";

/// How C's `printf("%p")` shows an address with glibc.
pub fn pointer(addr: u64) -> String {
    if addr == 0 {
        "(nil)".to_string()
    } else {
        format!("0x{addr:x}")
    }
}

fn run(args: &[OsString]) -> io::Result<i32> {
    let Some(cmd) = args.get(1) else {
        eprintln!("{COMMANDS}");
        return Ok(1);
    };
    let rest = &args[2..];
    match cmd.to_str() {
        Some("stat") => {
            let mut out = BufWriter::new(io::stdout().lock());
            let rc = stat::run("prunedb stat", rest, &mut out)?;
            out.flush()?;
            Ok(rc)
        }
        Some("dump") => dump::run("prunedb dump", rest),
        Some("load") => load::run("prunedb load", rest),
        Some("copy") => copy::run("prunedb copy", rest),
        Some("check") => check::run("prunedb check", rest),
        Some("-h" | "--help" | "help") => {
            println!("{COMMANDS}");
            Ok(0)
        }
        Some("-V" | "--version") => {
            println!("prunedb {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        _ => {
            eprintln!(
                "prunedb: unknown command '{}'\n{COMMANDS}",
                cmd.to_string_lossy()
            );
            Ok(1)
        }
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    // A write error (a closed pipe, a full disk) ends the tool with
    // failure, as the C tools' unchecked writes cannot report it better.
    let code = run(&args).unwrap_or(1);
    std::process::exit(code);
}
