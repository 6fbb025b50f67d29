//! Command-line options parsed the way glibc's `getopt(3)` parses them, so
//! that every invocation accepted by `mdb_stat`/`mdb_dump` is accepted here
//! with the same meaning: clustered flags (`-ff`, `-an`), option arguments
//! attached or separate (`-sNAME`, `-s NAME`), `--` ending the options,
//! and operands allowed between options (glibc permutes them to the end
//! unless `POSIXLY_CORRECT` is set).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// One result of the parser.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// An option character and, for options declared with `:`, its argument.
    Opt(u8, Option<OsString>),
    /// A parse error, with glibc's diagnostic (without the program name).
    Error(String),
}

/// A getopt-style parser over the arguments after the program name.
pub struct Getopt<'a> {
    args: &'a [OsString],
    spec: &'static [u8],
    /// Index of the argument being parsed.
    idx: usize,
    /// Position inside a cluster of short options; 0 when between arguments.
    pos: usize,
    operands: Vec<OsString>,
    /// Stop at the first operand instead of permuting.
    posix: bool,
}

impl<'a> Getopt<'a> {
    /// A parser of `args` (program name excluded) for the option string
    /// `spec` (getopt syntax: a letter, followed by `:` if it takes an
    /// argument).
    pub fn new(args: &'a [OsString], spec: &'static str) -> Getopt<'a> {
        Getopt {
            args,
            spec: spec.as_bytes(),
            idx: 0,
            pos: 0,
            operands: Vec::new(),
            posix: std::env::var_os("POSIXLY_CORRECT").is_some(),
        }
    }

    /// Whether option `c` exists, and whether it takes an argument.
    fn lookup(&self, c: u8) -> Option<bool> {
        if c == b':' {
            return None;
        }
        let i = self.spec.iter().position(|&s| s == c)?;
        Some(self.spec.get(i + 1) == Some(&b':'))
    }

    /// The operands, in their original order. Meaningful once the parser
    /// has returned `None`.
    pub fn operands(&self) -> &[OsString] {
        &self.operands
    }
}

impl Iterator for Getopt<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let arg = self.args.get(self.idx)?.as_bytes();
            if self.pos == 0 {
                if arg == b"--" {
                    self.operands
                        .extend(self.args[self.idx + 1..].iter().cloned());
                    self.idx = self.args.len();
                    return None;
                }
                if arg.len() < 2 || arg[0] != b'-' {
                    if self.posix {
                        self.operands.extend(self.args[self.idx..].iter().cloned());
                        self.idx = self.args.len();
                        return None;
                    }
                    self.operands.push(self.args[self.idx].clone());
                    self.idx += 1;
                    continue;
                }
                self.pos = 1;
            }
            let c = arg[self.pos];
            self.pos += 1;
            let at_end = self.pos >= arg.len();
            let item = match self.lookup(c) {
                None => Item::Error(format!("invalid option -- '{}'", char::from(c))),
                Some(false) => Item::Opt(c, None),
                Some(true) if !at_end => {
                    let rest = OsStr::from_bytes(&arg[self.pos..]).to_owned();
                    self.pos = arg.len();
                    Item::Opt(c, Some(rest))
                }
                Some(true) => match self.args.get(self.idx + 1) {
                    Some(next) => {
                        self.idx += 1;
                        Item::Opt(c, Some(next.clone()))
                    }
                    None => Item::Error(format!(
                        "option requires an argument -- '{}'",
                        char::from(c)
                    )),
                },
            };
            if self.pos >= arg.len() {
                self.pos = 0;
                self.idx += 1;
            }
            return Some(item);
        }
    }
}

/// The bytes of an argument, for printing it the way C prints a `char *`.
pub fn bytes(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], spec: &'static str) -> (Vec<Item>, Vec<String>) {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut g = Getopt::new(&args, spec);
        g.posix = false;
        let items: Vec<Item> = g.by_ref().collect();
        let ops = g
            .operands()
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect();
        (items, ops)
    }

    fn opt(c: u8, a: Option<&str>) -> Item {
        Item::Opt(c, a.map(OsString::from))
    }

    #[test]
    fn clusters_and_arguments() {
        let (items, ops) = parse(&["-ff", "-an", "-sNAME", "-s", "x", "db"], "Vaefnrs:");
        assert_eq!(
            items,
            vec![
                opt(b'f', None),
                opt(b'f', None),
                opt(b'a', None),
                opt(b'n', None),
                opt(b's', Some("NAME")),
                opt(b's', Some("x")),
            ]
        );
        assert_eq!(ops, vec!["db"]);
    }

    #[test]
    fn permutes_operands_and_stops_at_double_dash() {
        let (items, ops) = parse(&["db", "-e", "--", "-a"], "Vaefnrs:");
        assert_eq!(items, vec![opt(b'e', None)]);
        assert_eq!(ops, vec!["db", "-a"]);
        let (items, ops) = parse(&["-", "-es", "-a"], "Vaefnrs:");
        assert_eq!(items, vec![opt(b'e', None), opt(b's', Some("-a"))]);
        assert_eq!(ops, vec!["-"]);
    }

    #[test]
    fn errors() {
        let (items, _) = parse(&["-ex", "-s"], "Vaefnrs:");
        assert_eq!(
            items,
            vec![
                opt(b'e', None),
                Item::Error("invalid option -- 'x'".into()),
                Item::Error("option requires an argument -- 's'".into()),
            ]
        );
        let (items, _) = parse(&["-:", "--all"], "s:");
        assert_eq!(items[0], Item::Error("invalid option -- ':'".into()));
        assert_eq!(items[1], Item::Error("invalid option -- '-'".into()));
    }
}
