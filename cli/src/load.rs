//! `prunedb load`: reads the portable dump `mdb_dump` writes (both the
//! `bytevalue` and the `print` format, one or several databases) into an
//! environment, accepting the same input and options as LMDB 0.9.24's
//! `mdb_load`, with its messages and exit codes.
//!
//! The input is read the way `mdb_load` reads it: header lines with
//! `fgets` into a buffer that starts at 4096 bytes and is shared with the
//! data lines, data lines grown to any length, and escapes decoded in
//! place. Reproducing the buffer (rather than parsing lines cleanly) keeps
//! the corner cases identical: a header line without `=` is "unexpected
//! format" only when no `=` is left anywhere in the buffer, a `\\` after an
//! earlier escape on the same print-format line decodes as 0.9.24 decodes
//! it, and a last line without a newline is an unexpected end of input.
//!
//! One difference is deliberate: `mdb_load` commits every 100 entries,
//! so an interrupted load leaves a database partly loaded. Here each
//! database is loaded in one write transaction: after an interruption it
//! is either whole or as it was before.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};

use prunedb_engine::{DbFlags, Env, EnvFlags, Error, PutFlags};

use crate::compat::strerror;
use crate::getopt::{Getopt, Item};
use crate::LMDB_VERSION;

const USAGE: &str = "[-V] [-f input] [-n] [-s name] [-N] [-T] dbpath";

/// The header keywords that set database flags, in `mdb_load`'s order.
const FLAG_NAMES: [(&[u8], DbFlags); 6] = [
    (b"reversekey", DbFlags::REVERSEKEY),
    (b"dupsort", DbFlags::DUPSORT),
    (b"integerkey", DbFlags::INTEGERKEY),
    (b"dupfixed", DbFlags::DUPFIXED),
    (b"integerdup", DbFlags::INTEGERDUP),
    (b"reversedup", DbFlags::REVERSEDUP),
];

/// `mdb_env_get_maxkeysize() * 2 + 2`: the key buffer's first size.
const KEY_BUF: usize = 511 * 2 + 2;
/// The header and data buffer's first size.
const DATA_BUF: usize = 4096;

/// How the loader ended early: the exit code, after its message is printed.
struct Exit(i32);

/// What a failure of the input stream or of standard error means: the
/// tool ends with failure.
impl From<io::Error> for Exit {
    fn from(_: io::Error) -> Exit {
        Exit(1)
    }
}

/// Runs `load` with `args` (the arguments after the command name).
/// Returns the exit code.
pub fn run(prog: &str, args: &[OsString]) -> io::Result<i32> {
    Ok(match load(prog, args) {
        Ok(()) => 0,
        Err(Exit(rc)) => rc,
    })
}

fn usage(prog: &str) -> Exit {
    eprintln!("usage: {prog} {USAGE}");
    Exit(1)
}

/// Byte input with the two C stdio calls `mdb_load` uses.
struct Input {
    r: Box<dyn BufRead>,
}

impl Input {
    /// `fgetc`: the next byte, or `None` at the end (or on a read error,
    /// which stdio reports the same way).
    fn getc(&mut self) -> Option<u8> {
        let buf = self.r.fill_buf().ok()?;
        let c = *buf.first()?;
        self.r.consume(1);
        Some(c)
    }

    /// `fgets(buf + at, n)`: reads up to `n - 1` bytes, stopping after a
    /// newline, and stores them at `buf[at..]` followed by a NUL. Returns
    /// false, leaving `buf` alone, when nothing could be read.
    fn gets(&mut self, buf: &mut [u8], at: usize, n: usize) -> bool {
        let max = n.saturating_sub(1).min(buf.len().saturating_sub(at + 1));
        let mut got = 0;
        while got < max {
            let Ok(chunk) = self.r.fill_buf() else { break };
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(max - got);
            let (len, done) = match chunk[..take].iter().position(|&c| c == b'\n') {
                Some(i) => (i + 1, true),
                None => (take, false),
            };
            buf[at + got..at + got + len].copy_from_slice(&chunk[..len]);
            self.r.consume(len);
            got += len;
            if done {
                break;
            }
        }
        if got == 0 && max > 0 {
            return false;
        }
        buf[at + got] = 0;
        true
    }
}

/// The bytes of the C string at `b[at..]` (up to its NUL).
fn cstr(b: &[u8], at: usize) -> &[u8] {
    let s = b.get(at..).unwrap_or(&[]);
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// Replaces the first newline anywhere in the buffer with a NUL, as
/// `mdb_load` does before using a header value as a string.
fn cut_newline(b: &mut [u8]) {
    if let Some(i) = b.iter().position(|&c| c == b'\n') {
        b[i] = 0;
    }
}

/// `strtoul(s, NULL, base)` as `sscanf` uses it: leading white space, an
/// optional sign, at least one digit. `None` when no digit follows.
fn scan_unsigned(s: &[u8], base: u32) -> Option<u64> {
    let mut i = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    if base == 16
        && s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
    }
    let digits = s[i.min(s.len())..]
        .iter()
        .take_while(|c| (**c as char).is_digit(base))
        .count();
    if digits == 0 {
        return None;
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for &c in &s[i..i + digits] {
        let d = u64::from((c as char).to_digit(base).unwrap_or(0));
        match v
            .checked_mul(u64::from(base))
            .and_then(|x| x.checked_add(d))
        {
            Some(x) => v = x,
            None => overflow = true,
        }
    }
    Some(if overflow {
        u64::MAX
    } else if neg {
        v.wrapping_neg()
    } else {
        v
    })
}

/// `atoi`: `(int) strtol(s, NULL, 10)`, 0 when there is no number.
fn atoi(s: &[u8]) -> i32 {
    let t = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let (neg, t) = match s.get(t) {
        Some(b'-') => (true, t + 1),
        Some(b'+') => (false, t + 1),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for &c in s[t.min(s.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
    {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    let v = if neg {
        if v == i64::MAX {
            i64::MIN
        } else {
            -v
        }
    } else {
        v
    };
    // The C conversion from long to int keeps the low 32 bits.
    v as i32
}

/// One hex digit pair decoded the way `mdb_load` does it (valid for the
/// digits `isxdigit` accepts, in either case).
fn unhex(hi: u8, lo: u8) -> u8 {
    let d = |c: u8| {
        let x = c & 0x4f;
        if x & 0x40 != 0 {
            x - 55
        } else {
            x
        }
    };
    (d(hi) << 4) | d(lo)
}

/// The header settings that outlive one database's header.
#[derive(Default)]
struct Header {
    /// `-T`: plain text, no header and no `DATA=END`.
    no_header: bool,
    /// `format=print` seen (or `-T`); it is never turned off again.
    print: bool,
    /// The database to load into: `-s`, then each header's `database=`.
    subname: Option<Vec<u8>>,
    /// Flags of the database from the last header.
    flags: DbFlags,
    map_addr: u64,
    map_size: u64,
    max_readers: u32,
}

struct Loader<'p> {
    prog: &'p str,
    input: Input,
    lineno: u64,
    eof: bool,
    hdr: Header,
    /// The header and data buffer, as large as `mdb_load`'s.
    dbuf: Vec<u8>,
    /// The key buffer.
    kbuf: Vec<u8>,
}

/// Which buffer a line goes to.
#[derive(Clone, Copy)]
enum Buf {
    Key,
    Data,
}

impl Loader<'_> {
    fn fail(&self, msg: impl AsRef<[u8]>) -> Exit {
        let mut e = io::stderr().lock();
        let _ = write!(e, "{}: line {}: ", self.prog, self.lineno);
        let _ = e.write_all(msg.as_ref());
        let _ = e.write_all(b"\n");
        Exit(1)
    }

    fn badend(&mut self) {
        self.eof = true;
        let _ = self.fail("unexpected end of input");
    }

    /// Reads one database's header, up to `HEADER=END` or the end of the
    /// input. The database's flags start from none.
    fn read_header(&mut self) -> Result<(), Exit> {
        self.hdr.flags = DbFlags::empty();
        loop {
            let n = self.dbuf.len();
            if !self.input.gets(&mut self.dbuf, 0, n) {
                return Ok(());
            }
            self.lineno += 1;
            let line = cstr(&self.dbuf, 0);
            if let Some(v) = line.strip_prefix(b"VERSION=") {
                let version = atoi(v);
                if version > 3 {
                    return Err(self.fail(format!("unsupported VERSION {version}")));
                }
            } else if line.starts_with(b"HEADER=END") {
                return Ok(());
            } else if let Some(v) = line.strip_prefix(b"format=") {
                if v.starts_with(b"print") {
                    self.hdr.print = true;
                } else if !v.starts_with(b"bytevalue") {
                    let mut msg = b"unsupported FORMAT ".to_vec();
                    msg.extend_from_slice(v);
                    return Err(self.fail(msg));
                }
            } else if line.starts_with(b"database=") {
                cut_newline(&mut self.dbuf);
                self.hdr.subname = Some(cstr(&self.dbuf, 9).to_vec());
            } else if let Some(v) = line.strip_prefix(b"type=") {
                if !v.starts_with(b"btree") {
                    let mut msg = b"unsupported type ".to_vec();
                    msg.extend_from_slice(v);
                    return Err(self.fail(msg));
                }
            } else if line.starts_with(b"mapaddr=") {
                cut_newline(&mut self.dbuf);
                let v = cstr(&self.dbuf, 8);
                match scan_unsigned(v, 16) {
                    Some(a) => self.hdr.map_addr = a,
                    None => return Err(self.invalid("mapaddr", 8)),
                }
            } else if line.starts_with(b"mapsize=") {
                cut_newline(&mut self.dbuf);
                match scan_unsigned(cstr(&self.dbuf, 8), 10) {
                    Some(s) => self.hdr.map_size = s,
                    None => return Err(self.invalid("mapsize", 8)),
                }
            } else if line.starts_with(b"maxreaders=") {
                cut_newline(&mut self.dbuf);
                match scan_unsigned(cstr(&self.dbuf, 11), 10) {
                    // `%u` keeps the low 32 bits of what strtoul read.
                    Some(r) => self.hdr.max_readers = r as u32,
                    None => return Err(self.invalid("maxreaders", 11)),
                }
            } else if let Some(f) = FLAG_NAMES
                .iter()
                .find(|(name, _)| line.starts_with(name) && line.get(name.len()) == Some(&b'='))
            {
                self.hdr.flags = self.hdr.flags | f.1;
            } else {
                // The search for '=' covers the whole buffer, so text left
                // there by longer earlier lines counts too.
                let Some(eq) = self.dbuf.iter().position(|&c| c == b'=') else {
                    return Err(self.fail("unexpected format"));
                };
                self.dbuf[eq] = 0;
                let mut msg = b"unrecognized keyword ignored: ".to_vec();
                msg.extend_from_slice(cstr(&self.dbuf, 0));
                let _ = self.fail(msg);
            }
        }
    }

    fn invalid(&self, what: &str, at: usize) -> Exit {
        let mut msg = format!("invalid {what} ").into_bytes();
        msg.extend_from_slice(cstr(&self.dbuf, at));
        self.fail(msg)
    }

    /// Reads and decodes one data line into `which` buffer; returns its
    /// length, or `None` at `DATA=END`, at the end of the input or on
    /// malformed input (after reporting it).
    fn read_line(&mut self, which: Buf) -> Option<usize> {
        let mut buf = std::mem::take(match which {
            Buf::Key => &mut self.kbuf,
            Buf::Data => &mut self.dbuf,
        });
        let r = self.read_line_into(&mut buf);
        *match which {
            Buf::Key => &mut self.kbuf,
            Buf::Data => &mut self.dbuf,
        } = buf;
        r
    }

    fn read_line_into(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        if !self.hdr.no_header {
            let Some(c) = self.input.getc() else {
                self.eof = true;
                return None;
            };
            if c != b' ' {
                self.lineno += 1;
                let n = buf.len();
                if self.input.gets(buf, 0, n) && c == b'D' && buf.starts_with(b"ATA=END") {
                    return None;
                }
                self.badend();
                return None;
            }
        }
        let n = buf.len();
        if !self.input.gets(buf, 0, n) {
            self.eof = true;
            return None;
        }
        self.lineno += 1;
        // Grow the buffer until the line's newline is in it.
        let mut chunk = 0;
        let mut total = cstr(buf, 0).len();
        let mut last = total;
        while last == 0 || buf[chunk + last - 1] != b'\n' {
            let size = buf.len();
            buf.resize(size * 2, 0);
            chunk = total;
            if !self.input.gets(buf, chunk, size + 1) {
                self.badend();
                return None;
            }
            last = cstr(buf, chunk).len();
            total += last;
        }
        let end = total - 1;
        buf[end] = 0;
        let (mut c1, mut c2) = (0, 0);
        if self.hdr.print {
            while c2 < end {
                if buf[c2] != b'\\' {
                    buf[c1] = buf[c2];
                    c1 += 1;
                    c2 += 1;
                } else if buf[c2 + 1] == b'\\' {
                    // 0.9.24 keeps the byte already at the output position
                    // (a backslash only while no escape came before).
                    c1 += 1;
                    c2 += 2;
                } else {
                    if c2 + 3 > end
                        || !buf[c2 + 1].is_ascii_hexdigit()
                        || !buf[c2 + 2].is_ascii_hexdigit()
                    {
                        self.badend();
                        return None;
                    }
                    buf[c1] = unhex(buf[c2 + 1], buf[c2 + 2]);
                    c1 += 1;
                    c2 += 3;
                }
            }
        } else {
            if end & 1 == 1 {
                self.badend();
                return None;
            }
            while c2 < end {
                if !buf[c2].is_ascii_hexdigit() || !buf[c2 + 1].is_ascii_hexdigit() {
                    self.badend();
                    return None;
                }
                buf[c1] = unhex(buf[c2], buf[c2 + 1]);
                c1 += 1;
                c2 += 2;
            }
        }
        Some(c1)
    }

    /// Loads the databases of the input into `env`, one write transaction
    /// each.
    fn load_all(&mut self, env: &Env, put_flags: PutFlags) -> Result<(), Exit> {
        let mut first = true;
        while !self.eof {
            if !first && !self.hdr.no_header {
                self.read_header()?;
            }
            first = false;
            let mut txn = env
                .write_txn()
                .map_err(|e| lmdb_fail("mdb_txn_begin", &e))?;
            let name = match &self.hdr.subname {
                None => None,
                // The engine names databases with strings.
                Some(n) => Some(
                    std::str::from_utf8(n)
                        .map_err(|_| lmdb_fail("mdb_open", &Error::InvalidArgument))?
                        .to_owned(),
                ),
            };
            let db = txn
                .create_db(name.as_deref(), self.hdr.flags)
                .map_err(|e| lmdb_fail("mdb_open", &e))?;
            while let Some(klen) = self.read_line(Buf::Key) {
                let Some(dlen) = self.read_line(Buf::Data) else {
                    return Err(self.fail("failed to read key value"));
                };
                match txn.put(db, &self.kbuf[..klen], &self.dbuf[..dlen], put_flags) {
                    Ok(()) => {}
                    Err(Error::KeyExist) if put_flags != PutFlags::empty() => {}
                    Err(e) => return Err(lmdb_fail("mdb_cursor_put", &e)),
                }
            }
            if let Err(e) = txn.commit() {
                return Err(self.fail(format!("txn_commit: {}", strerror(e.code()))));
            }
        }
        Ok(())
    }
}

/// Reports a failed LMDB call as `mdb_load` does.
fn lmdb_fail(call: &str, e: &Error) -> Exit {
    let rc = e.code();
    eprintln!("{call} failed, error {rc} {}", strerror(rc));
    Exit(1)
}

fn load(prog: &str, args: &[OsString]) -> Result<(), Exit> {
    if args.is_empty() {
        return Err(usage(prog));
    }
    let mut input: Box<dyn BufRead> = Box::new(BufReader::new(io::stdin()));
    let mut hdr = Header::default();
    let mut env_flags = EnvFlags::empty();
    let mut put_flags = PutFlags::empty();
    let mut opts = Getopt::new(args, "f:ns:NTV");
    for item in opts.by_ref() {
        match item {
            Item::Opt(b'V', _) => {
                println!("{LMDB_VERSION}");
                return Err(Exit(0));
            }
            Item::Opt(b'f', Some(path)) => match File::open(&path) {
                Ok(f) => input = Box::new(BufReader::with_capacity(1 << 16, f)),
                Err(e) => {
                    eprintln!(
                        "{prog}: {}: reopen: {}",
                        path.to_string_lossy(),
                        strerror(e.raw_os_error().unwrap_or(libc::EIO))
                    );
                    return Err(Exit(1));
                }
            },
            Item::Opt(b'n', _) => env_flags = env_flags | EnvFlags::NOSUBDIR,
            Item::Opt(b's', Some(name)) => {
                // strdup stops at the first NUL, which an argument cannot hold.
                hdr.subname = Some(crate::getopt::bytes(&name).to_vec());
            }
            Item::Opt(b'N', _) => put_flags = PutFlags::NOOVERWRITE | PutFlags::NODUPDATA,
            Item::Opt(b'T', _) => {
                hdr.no_header = true;
                hdr.print = true;
            }
            Item::Opt(..) => return Err(usage(prog)),
            Item::Error(msg) => {
                eprintln!("{prog}: {msg}");
                return Err(usage(prog));
            }
        }
    }
    let [envname] = opts.operands() else {
        return Err(usage(prog));
    };
    let mut loader = Loader {
        prog,
        input: Input { r: input },
        lineno: 0,
        eof: false,
        hdr,
        dbuf: vec![0; DATA_BUF],
        kbuf: vec![0; KEY_BUF],
    };
    if !loader.hdr.no_header {
        loader.read_header()?;
    }
    let mut builder = Env::builder().max_dbs(u32::MAX / 2);
    if loader.hdr.max_readers != 0 {
        builder = builder.max_readers(loader.hdr.max_readers);
    }
    if loader.hdr.map_size != 0 {
        builder = builder.map_size(loader.hdr.map_size);
    }
    if loader.hdr.map_addr != 0 {
        env_flags = env_flags | EnvFlags::FIXEDMAP;
    }
    let env = builder
        .flags(env_flags)
        .open(envname)
        .map_err(|e| lmdb_fail("mdb_env_open", &e))?;
    loader.load_all(&env, put_flags)
}

/// Decodes `input` line by line as data lines, for tests of the decoder.
#[cfg(test)]
fn decode_lines(input: &[u8], print: bool, no_header: bool) -> Vec<Option<Vec<u8>>> {
    let mut l = Loader {
        prog: "t",
        input: Input {
            r: Box::new(BufReader::new(io::Cursor::new(input.to_vec()))),
        },
        lineno: 0,
        eof: false,
        hdr: Header {
            print,
            no_header,
            ..Header::default()
        },
        dbuf: vec![0; DATA_BUF],
        kbuf: vec![0; KEY_BUF],
    };
    let mut out = Vec::new();
    while !l.eof {
        let r = l.read_line(Buf::Data).map(|n| l.dbuf[..n].to_vec());
        let stop = r.is_none();
        out.push(r);
        if stop {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_escapes_decode_as_0924() {
        let got = decode_lines(b" a\\\\b\n \\41\\\\b\n \\5cx\n", true, false);
        assert_eq!(
            got,
            [
                Some(b"a\\b".to_vec()),
                Some(b"A4b".to_vec()),
                Some(b"\\x".to_vec()),
                None
            ]
        );
    }

    #[test]
    fn hex_lines_and_long_lines() {
        let long = "ab".repeat(5000);
        let input = format!(" 00fF\n {long}\n 0\n");
        let got = decode_lines(input.as_bytes(), false, false);
        assert_eq!(got[0], Some(vec![0, 255]));
        assert_eq!(got[1].as_ref().map(Vec::len), Some(5000));
        assert_eq!(got[2], None, "odd length is an error");
    }

    #[test]
    fn missing_newline_is_an_error() {
        let got = decode_lines(b"abc", true, true);
        assert_eq!(got, [None]);
    }

    #[test]
    fn numbers_scan_like_c() {
        assert_eq!(scan_unsigned(b" 42x", 10), Some(42));
        assert_eq!(scan_unsigned(b"-1", 10), Some(u64::MAX));
        assert_eq!(scan_unsigned(b"x", 10), None);
        assert_eq!(scan_unsigned(b"0x7f0000", 16), Some(0x7f0000));
        assert_eq!(
            scan_unsigned(b"99999999999999999999999", 10),
            Some(u64::MAX)
        );
        assert_eq!(atoi(b"3\n"), 3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"-7"), -7);
    }
}
