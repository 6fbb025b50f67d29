//! What the fuzz targets and the replay harness run on an input: open it as
//! a data file from bytes and read everything a reader can reach
//! ([`open_traverse`]), or open it as an environment on disk and write to
//! it ([`write_damaged`]), the way a hostile file would be met in practice.
//!
//! Every failure must be an `Error` value; a panic, an out-of-bounds read or
//! a traversal that does not end is a bug in the engine.

use prunedb_engine::btree::PageSource;
use prunedb_engine::format::DbRecord;
use prunedb_engine::walk::{self, Descend, Visit};
use prunedb_engine::{CursorOp, DbFlags, Snapshot};

/// Cursor steps per scan. Far more than any seed holds; a hostile tree that
/// reaches one leaf through many parents is cut off here (each step is
/// bounded, so the whole scan is).
pub const STEP_BUDGET: usize = 4096;

/// Keys sampled per database for point lookups.
const SAMPLE: usize = 32;

/// Opens `data` as a data file and reads it in full; returns how many reads
/// failed (with an `Error`).
pub fn open_traverse(data: &[u8]) -> usize {
    match Snapshot::from_bytes(data) {
        Ok(snap) => traverse(&snap),
        Err(_) => 1,
    }
}

/// Reads everything reachable in `snap`: the page walk, the integrity
/// check, the free lists, and every database through cursors and gets.
pub fn traverse<S: PageSource>(snap: &Snapshot<S>) -> usize {
    let mut failures = 0;
    let mut pages = 0u64;
    let mut visitor = |v: &Visit<'_>| {
        pages += v.count;
        // Touch the raw bytes the visitor is given.
        let _ = v.bytes.first().copied().unwrap_or(0) ^ v.bytes.last().copied().unwrap_or(0);
        Ok(Descend::Into)
    };
    failures += walk::walk(snap, &mut visitor).is_err() as usize;
    match walk::check(snap) {
        Ok(report) => {
            // Formatting must not fail on whatever the report names.
            let _ = format!("{report}");
            failures += !report.is_ok() as usize;
        }
        Err(_) => failures += 1,
    }
    let mut free = 0u64;
    let r = walk::free_records(snap, |_, idl| {
        free = free.wrapping_add(idl.iter().fold(0, u64::wrapping_add));
        Ok(())
    });
    failures += r.is_err() as usize;

    let mut recs = vec![snap.main_db(), snap.free_db()];
    match snap.db_names() {
        Ok(names) => {
            for n in names {
                match snap.named_db(n) {
                    Ok(rec) => recs.push(rec),
                    Err(_) => failures += 1,
                }
            }
        }
        Err(_) => failures += 1,
    }
    for rec in &recs {
        failures += scan(snap, rec);
    }
    failures
}

/// Moves cursors over one database every way there is, then looks up a
/// sample of the keys seen.
fn scan<S: PageSource>(snap: &Snapshot<S>, rec: &DbRecord) -> usize {
    let mut failures = 0;
    let mut keys: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let runs = [
        (CursorOp::First, CursorOp::Next),
        (CursorOp::Last, CursorOp::Prev),
        (CursorOp::First, CursorOp::NextNoDup),
        (CursorOp::Last, CursorOp::PrevNoDup),
    ];
    for (run, (start, step)) in runs.into_iter().enumerate() {
        let mut cur = snap.cursor(rec);
        let mut op = start;
        for i in 0..STEP_BUDGET {
            match cur.get(op, None, None) {
                Ok(Some((k, v))) => {
                    if run == 0 && i % 7 == 0 && keys.len() < SAMPLE {
                        keys.push((k.to_vec(), v.to_vec()));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failures += 1;
                    break;
                }
            }
            let _ = cur.count();
            op = step;
        }
    }
    let dupfixed = rec.flags.contains(DbFlags::DUPFIXED);
    // A key that is not there, and an empty one, too.
    keys.push((b"\xff\xff\xff\xff".to_vec(), Vec::new()));
    keys.push((Vec::new(), Vec::new()));
    for (k, v) in &keys {
        let _ = snap.get(rec, k);
        let mut cur = snap.cursor(rec);
        let _ = cur.get(CursorOp::GetCurrent, None, None);
        let _ = cur.get(CursorOp::Set, Some(k), None);
        let _ = cur.get(CursorOp::GetCurrent, None, None);
        let _ = cur.get(CursorOp::LastDup, None, None);
        let _ = cur.get(CursorOp::PrevDup, None, None);
        let _ = cur.get(CursorOp::FirstDup, None, None);
        let _ = cur.get(CursorOp::NextDup, None, None);
        let _ = cur.count();
        for _ in 0..3 {
            let _ = cur.get(CursorOp::Next, None, None);
        }
        let _ = cur.get(CursorOp::SetRange, Some(k), None);
        for _ in 0..3 {
            let _ = cur.get(CursorOp::Prev, None, None);
        }
        let _ = cur.get(CursorOp::SetKey, Some(k), None);
        let _ = cur.get(CursorOp::GetBoth, Some(k), Some(v));
        let _ = cur.get(CursorOp::GetBothRange, Some(k), Some(v));
        let _ = cur.get(CursorOp::PrevNoDup, None, None);
        let _ = cur.get(CursorOp::NextNoDup, None, None);
        if dupfixed {
            let _ = cur.get(CursorOp::GetMultiple, None, None);
            let _ = cur.get(CursorOp::NextMultiple, None, None);
            let _ = cur.get(CursorOp::PrevMultiple, None, None);
        }
        let _ = cur.get(CursorOp::Last, None, None);
        let _ = cur.get(CursorOp::Next, None, None);
        let _ = cur.get(CursorOp::Prev, None, None);
    }
    failures
}

/// Keys read per database before writing to it.
const WRITE_KEYS: usize = 16;

/// Writes `data` as `dir/data.mdb`, opens it as an environment (plain, then
/// again from the same bytes with `WRITEMAP`) and writes to it: puts over
/// keys found there and new ones (one with an overflow value), deletes, an
/// APPEND, a nested transaction aborted and one kept, a commit; then reads
/// the result back and checks it. Returns how many steps failed (with an
/// `Error`, as they should on a damaged file).
pub fn write_damaged(data: &[u8], dir: &std::path::Path) -> usize {
    use prunedb_engine::EnvFlags;
    let mut failures = 0;
    for flags in [EnvFlags::NOSYNC, EnvFlags::NOSYNC | EnvFlags::WRITEMAP] {
        let _ = std::fs::remove_file(dir.join("data.mdb"));
        let _ = std::fs::remove_file(dir.join("lock.mdb"));
        std::fs::write(dir.join("data.mdb"), data).expect("write the data file");
        failures += write_env(dir, flags);
    }
    failures
}

fn write_env(dir: &std::path::Path, flags: prunedb_engine::EnvFlags) -> usize {
    use prunedb_engine::{Env, PutFlags, ReadTxn};
    // A map no bigger than a few times the input: a hostile meta page may
    // ask for terabytes.
    let Ok(env) = Env::builder()
        .max_dbs(16)
        .map_size(1 << 24)
        .flags(flags)
        .open(dir)
    else {
        return 1;
    };
    let mut failures = 0;
    // What is there to overwrite and delete, read first.
    let mut found: Vec<(Option<String>, Vec<Vec<u8>>)> = Vec::new();
    if let Ok(txn) = env.read_txn() {
        let mut names: Vec<Option<String>> = vec![None];
        match txn.db_names() {
            // Only UTF-8 names can be opened by name.
            Ok(n) => names.extend(
                n.into_iter()
                    .filter_map(|n| String::from_utf8(n).ok())
                    .take(8)
                    .map(Some),
            ),
            Err(_) => failures += 1,
        }
        for name in names {
            let Ok(db) = txn.open_db(name.as_deref()) else {
                failures += 1;
                continue;
            };
            let mut keys = Vec::new();
            if let Ok(mut cur) = txn.cursor(db) {
                let mut op = CursorOp::First;
                while keys.len() < WRITE_KEYS {
                    match cur.get(op, None, None) {
                        Ok(Some((k, _))) => keys.push(k.to_vec()),
                        Ok(None) => break,
                        Err(_) => {
                            failures += 1;
                            break;
                        }
                    }
                    op = CursorOp::Next;
                }
            }
            found.push((name, keys));
        }
    }
    let Ok(mut txn) = env.write_txn() else {
        return failures + 1;
    };
    let big = vec![0xa5u8; 3 * 4096 + 17];
    let mut errs = 0;
    let mut step = |r: prunedb_engine::Result<()>| errs += r.is_err() as usize;
    for (name, keys) in &found {
        let Ok(db) = txn.open_db(name.as_deref()) else {
            step(Err(prunedb_engine::Error::BadDbi));
            continue;
        };
        for (i, k) in keys.iter().enumerate() {
            step(match i % 4 {
                0 => txn.put(db, k, b"overwritten", PutFlags::empty()),
                1 => txn.del(db, k, None),
                2 => txn.put(db, &[k.as_slice(), b"+"].concat(), k, PutFlags::empty()),
                _ => txn.put(db, k, b"kept", PutFlags::NOOVERWRITE),
            });
        }
        step(txn.put(db, b"\x00fuzz-new", &big, PutFlags::empty()));
        step(txn.put(
            db,
            b"\xff\xff\xff\xfffuzz-last",
            b"appended",
            PutFlags::APPEND,
        ));
        // A child that deletes and aborts, then one that puts and commits.
        match txn.nested() {
            Ok(mut child) => {
                for k in keys.iter().take(4) {
                    step(child.del(db, k, None));
                }
            }
            Err(e) => step(Err(e)),
        }
        match txn.nested() {
            Ok(mut child) => {
                step(child.put(db, b"\x01fuzz-nested", b"kept", PutFlags::empty()));
                step(child.commit());
            }
            Err(e) => step(Err(e)),
        }
    }
    failures += errs;
    failures += txn.commit().is_err() as usize;
    // What the commit left must read back, or fail with an error.
    if let Ok(txn) = env.read_txn() {
        failures += traverse(txn.snapshot());
    } else {
        failures += 1;
    }
    failures
}

/// A small deterministic generator (xorshift64*) for the replay harness.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Damages `file` once, in a way chosen by `rng`: bit flips, byte
/// overwrites, planted page numbers, truncation, pages copied over others,
/// splices from `other`. The page size is guessed as 4096 when the file
/// does not say.
pub fn mutate(file: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    if file.is_empty() {
        file.extend_from_slice(other);
        return;
    }
    let ps = Snapshot::from_bytes(file)
        .map(|s| s.source().page_size())
        .unwrap_or(4096);
    let npages = (file.len() / ps).max(1);
    let len = file.len();
    match rng.below(10) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                file[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            // Page and node headers, where a bit matters most.
            for _ in 0..1 + rng.below(4) {
                let span = if rng.below(2) == 0 { 16 } else { 96 };
                let off = rng.below(npages) * ps + rng.below(span);
                if let Some(b) = file.get_mut(off) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            let i = rng.below(len);
            let fill = [0u8, 0xff, 0x80, rng.next_u64() as u8][rng.below(4)];
            for b in file.iter_mut().skip(i).take(1 + rng.below(16)) {
                *b = fill;
            }
        }
        3 => {
            // Page numbers, counts and sizes where they live.
            let off = rng.below(len.saturating_sub(8).max(1));
            let val: u64 = [
                rng.below(npages + 2) as u64,
                u64::MAX,
                u32::MAX as u64,
                0,
                1,
                (off / ps) as u64,
                rng.next_u64(),
            ][rng.below(7)];
            let n = [2usize, 4, 8][rng.below(3)].min(len - off);
            file[off..off + n].copy_from_slice(&val.to_le_bytes()[..n]);
        }
        4 => {
            let keep = if rng.below(2) == 0 {
                rng.below(npages) * ps
            } else {
                rng.below(len)
            };
            file.truncate(keep);
        }
        5 if len >= 2 * ps => {
            let (a, b) = (rng.below(npages), rng.below(npages));
            let page = file[a * ps..(a + 1) * ps].to_vec();
            file[b * ps..(b + 1) * ps].copy_from_slice(&page);
        }
        6 if !other.is_empty() => {
            // A page (or any span) of another input.
            let n = 1 + rng.below(ps.min(other.len()));
            let from = rng.below(other.len() - n + 1);
            let to = rng.below(len);
            let end = (to + n).min(len);
            file[to..end].copy_from_slice(&other[from..from + (end - to)]);
        }
        7 => {
            // Node pointers inside a page's pointer array.
            let page = rng.below(npages) * ps;
            let off = page + 16 + 2 * rng.below(8);
            if off + 2 <= len {
                let v = [0u16, 16, (ps - 2) as u16, 0xffff, rng.next_u64() as u16][rng.below(5)];
                file[off..off + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        8 => {
            let extra = rng.below(2 * ps);
            let fill = rng.next_u64() as u8;
            file.resize(len + extra, fill);
        }
        _ => {
            let i = rng.below(len);
            file[i] = rng.next_u64() as u8;
        }
    }
}

/// A synthetic data file with 512-byte pages: a main database whose tree is
/// `MAX_DEPTH` levels deep (one node per branch page), holding the record
/// of a DUPSORT named database just as deep, whose only key holds a dup
/// sub-database just as deep. The deepest nesting a walk can meet.
pub fn deepest_file() -> Vec<u8> {
    const PS: usize = 512;
    const DEPTH: u64 = prunedb_engine::format::MAX_DEPTH as u64;
    let record = |flags: u16, root: u64| {
        prunedb_engine::format::DbRecord {
            pad: 0,
            flags: DbFlags(flags),
            depth: DEPTH as u16,
            branch_pages: DEPTH - 1,
            leaf_pages: 1,
            overflow_pages: 0,
            entries: 1,
            root,
        }
        .to_bytes()
    };
    let last = 2 + 3 * DEPTH - 1;
    let mut file = vec![0u8; (last as usize + 1) * PS];
    let header = |file: &mut Vec<u8>, pgno: u64, flags: u16, lower: u16, upper: u16| {
        let p = pgno as usize * PS;
        put_u64(file, p, pgno);
        put_u16(file, p + 10, flags);
        put_u16(file, p + 12, lower);
        put_u16(file, p + 14, upper);
    };
    // Three chains of DEPTH pages: main, named, dups.
    for chain in 0..3u64 {
        let first = 2 + chain * DEPTH;
        for level in 0..DEPTH {
            let pgno = first + level;
            let p = pgno as usize * PS;
            if level + 1 < DEPTH {
                // A branch with one node: child pgno, empty key.
                let off = PS - 8;
                header(&mut file, pgno, 0x01, 18, off as u16);
                put_u16(&mut file, p + 16, off as u16);
                put_u16(&mut file, p + off, (pgno + 1) as u16);
                continue;
            }
            let (key, flags, value): (&[u8], u16, Vec<u8>) = match chain {
                0 => (b"db", 0x02, record(0x04, first + DEPTH).to_vec()),
                1 => (b"k", 0x06, record(0, first + DEPTH).to_vec()),
                _ => (b"v", 0, Vec::new()),
            };
            let size = (8 + key.len() + value.len() + 1) & !1;
            let off = PS - size;
            header(&mut file, pgno, 0x02, 18, off as u16);
            put_u16(&mut file, p + 16, off as u16);
            put_u16(&mut file, p + off, value.len() as u16);
            put_u16(&mut file, p + off + 4, flags);
            put_u16(&mut file, p + off + 6, key.len() as u16);
            file[p + off + 8..p + off + 8 + key.len()].copy_from_slice(key);
            let v = p + off + 8 + key.len();
            file[v..v + value.len()].copy_from_slice(&value);
        }
    }
    for m in 0..2u64 {
        let p = m as usize * PS;
        put_u64(&mut file, p, m);
        put_u16(&mut file, p + 10, 0x08);
        let meta = prunedb_engine::format::Meta {
            address: 0,
            map_size: file.len() as u64,
            dbs: [
                prunedb_engine::format::DbRecord {
                    pad: PS as u32,
                    ..prunedb_engine::format::DbRecord::empty(DbFlags::INTEGERKEY)
                },
                prunedb_engine::format::DbRecord::parse(&record(0, 2)).expect("record"),
            ],
            last_pgno: last,
            txnid: m,
        };
        file[p + 16..p + 16 + prunedb_engine::format::META_SIZE].copy_from_slice(&meta.to_bytes());
    }
    file
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds are clean: everything in them reads without an error, and
    /// the check finds nothing, but in `deepest` the single-child branch
    /// pages that make it deep (LMDB's writers never leave one, so the
    /// check reports each).
    #[test]
    fn seeds_read_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/open_traverse");
        let single = walk::ProblemKind::Corrupted("branch page with a single child");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let snap = Snapshot::from_bytes(&data).unwrap();
            let report = walk::check(&snap).unwrap();
            let deepest = path.ends_with("deepest");
            if deepest {
                assert!(report.problems.iter().all(|p| p.kind == single), "{report}");
            } else {
                assert!(report.is_ok(), "{report}");
            }
            assert!(report.trees >= 2 && report.live_pages >= 3, "{report}");
            // The check's report is the one failure `traverse` counts there.
            assert_eq!(traverse(&snap), deepest as usize);
            n += 1;
        }
        assert!(n >= 4);
    }
}
