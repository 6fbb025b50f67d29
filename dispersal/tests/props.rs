//! Property tests: random segments, random survivor sets, every tamper case.

use proptest::prelude::*;
use prunedb_dispersal::{
    Error, LakeKey, Manifest, Segment, SegmentBuilder, SegmentConfig, SegmentReader,
};

const LAKE: [u8; 16] = *b"lake-under-test!";

struct Fixture {
    key: LakeKey,
    pages: Vec<(u64, u64, Vec<u8>)>,
    segment: Segment,
    shards: Vec<Vec<u8>>,
    reader: SegmentReader,
}

fn page_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn build(k: usize, m: usize, sizes: &[usize], seed: u64) -> Fixture {
    let key = LakeKey::new([seed as u8 ^ 0x5A; 32]);
    let config = SegmentConfig {
        k,
        m,
        target_size: usize::MAX,
        threads: 1 + (seed as usize % 2),
    };
    let mut builder = SegmentBuilder::new(&key, LAKE, seed, config).unwrap();
    let mut pages = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let (pgno, txnid) = (i as u64 * 3 + 1, 100 + (i as u64 % 3));
        let bytes = page_bytes(len, seed ^ i as u64);
        builder.push(pgno, txnid, &bytes).unwrap();
        pages.push((pgno, txnid, bytes));
    }
    let segment = builder.finish().unwrap();
    let shards: Vec<Vec<u8>> = segment.shards().map(<[u8]>::to_vec).collect();
    let manifest = Manifest::from_bytes(&segment.manifest().to_bytes()).unwrap();
    let reader = SegmentReader::new(&key, manifest).unwrap();
    Fixture {
        key,
        pages,
        segment,
        shards,
        reader,
    }
}

fn segment_shape() -> impl Strategy<Value = (usize, usize, Vec<usize>, u64)> {
    (
        1usize..=8,
        0usize..=8,
        prop::collection::vec(0usize..5000, 1..24),
        any::<u64>(),
    )
}

/// Rebuilds every page from the given survivors only, by range decoding.
fn read_all_from(f: &Fixture, survivors: &[usize]) -> Result<Vec<Vec<u8>>, Error> {
    f.pages
        .iter()
        .map(|(pgno, txnid, _)| {
            let loc = f.reader.locate(*pgno, *txnid)?;
            let mut pieces = Vec::new();
            for piece in &loc.pieces {
                let sources: Vec<(usize, &[u8])> = survivors
                    .iter()
                    .map(|&s| (s, &f.shards[s][piece.range.clone()]))
                    .collect();
                pieces.push(f.reader.decode_range(piece, &sources)?);
            }
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            f.reader.open_page(&loc, &refs)
        })
        .collect()
}

fn only(f: &Fixture, survivors: &[usize]) -> Vec<Option<Vec<u8>>> {
    (0..f.shards.len())
        .map(|i| survivors.contains(&i).then(|| f.shards[i].clone()))
        .collect()
}

fn as_refs(shards: &[Option<Vec<u8>>]) -> Vec<Option<&[u8]>> {
    shards.iter().map(|s| s.as_deref()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any k shards give back every page, by range decode and by full decode,
    /// and regenerate every other shard exactly.
    #[test]
    fn any_k_shards_rebuild_everything(
        (k, m, sizes, seed) in segment_shape(),
        pick in any::<prop::sample::Index>(),
    ) {
        let f = build(k, m, &sizes, seed);
        let n = k + m;
        let all: Vec<usize> = (0..n).collect();
        let survivors: Vec<usize> = {
            // A random k-subset: rotate a shuffled order by the sampled index.
            let mut order = all.clone();
            let mut s = seed | 1;
            for i in (1..n).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                order.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let start = pick.index(n);
            (0..k).map(|j| order[(start + j) % n]).collect()
        };
        let want: Vec<Vec<u8>> = f.pages.iter().map(|p| p.2.clone()).collect();
        prop_assert_eq!(read_all_from(&f, &survivors)?, want.clone());

        let held = only(&f, &survivors);
        let decoded = f.reader.decode_all(&as_refs(&held))?;
        prop_assert_eq!(decoded.into_iter().map(|p| p.bytes).collect::<Vec<_>>(), want);
        for i in 0..n {
            prop_assert_eq!(&f.reader.regenerate_shard(i, &as_refs(&held))?, &f.shards[i]);
        }
    }

    /// k - 1 shards are refused with NotEnoughShards, never answered.
    #[test]
    fn k_minus_one_shards_are_refused((k, m, sizes, seed) in segment_shape()) {
        let f = build(k, m, &sizes, seed);
        let survivors: Vec<usize> = (m + 1..k + m).collect();
        prop_assert_eq!(survivors.len(), k - 1);
        fn not_enough<T>(r: Result<T, Error>) -> bool {
            matches!(r, Err(Error::NotEnoughShards { .. }))
        }
        prop_assert!(not_enough(read_all_from(&f, &survivors)));
        let held = only(&f, &survivors);
        prop_assert!(not_enough(f.reader.decode_all(&as_refs(&held))));
        if let Some(lost) = (0..k + m).find(|i| !survivors.contains(i)) {
            prop_assert!(not_enough(f.reader.regenerate_shard(lost, &as_refs(&held))));
        }
    }

    /// A flipped bit, a truncation, or a shard under another index counts as
    /// a missing shard: with exactly k supplied, one bad one means refusal;
    /// with one more good shard, the right bytes.
    #[test]
    fn damaged_shards_count_as_missing(
        (k, m, sizes, seed) in (1usize..=6, 1usize..=6, prop::collection::vec(1usize..3000, 1..10), any::<u64>()),
        victim in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
        bit in 0u8..8,
        how in 0u8..3,
    ) {
        let f = build(k, m, &sizes, seed);
        let n = k + m;
        let v = victim.index(k + 1);
        let mut held = only(&f, &(0..=k).collect::<Vec<_>>());
        match how {
            0 => { let b = held[v].as_mut().unwrap(); let i = byte.index(b.len()); b[i] ^= 1 << bit; }
            1 => { let b = held[v].as_mut().unwrap(); b.truncate(byte.index(b.len())); }
            _ => { held[v] = Some(f.shards[(v + 1 + byte.index(n - 1)) % n].clone()); }
        }
        if held[v].as_deref() == Some(f.shards[v].as_slice()) {
            return Ok(()); // the substitute happened to be identical (m = 0 padding)
        }
        let want: Vec<Vec<u8>> = f.pages.iter().map(|p| p.2.clone()).collect();
        let got = f.reader.decode_all(&as_refs(&held))?;
        prop_assert_eq!(got.into_iter().map(|p| p.bytes).collect::<Vec<_>>(), want);
        prop_assert_eq!(&f.reader.regenerate_shard(v, &as_refs(&held))?, &f.shards[v]);
        prop_assert_eq!(f.reader.check_shard(v, held[v].as_deref().unwrap()).is_err(), true);

        let spare = (0..=k).find(|&i| i != v).unwrap();
        held[spare] = None;
        let r = f.reader.decode_all(&as_refs(&held));
        prop_assert!(matches!(r, Err(Error::NotEnoughShards { .. })), "{:?}", r.map(|p| p.len()));
    }

    /// Any change to any byte of the manifest is caught, by parsing or by
    /// the MAC; so is checking it under another key.
    #[test]
    fn tampered_manifest_is_refused(
        (k, m, sizes, seed) in (1usize..=4, 0usize..=4, prop::collection::vec(1usize..500, 1..6), any::<u64>()),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let f = build(k, m, &sizes, seed);
        let mut bytes = f.segment.manifest().to_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let verdict = Manifest::from_bytes(&bytes).and_then(|mf| SegmentReader::new(&f.key, mf).map(|_| ()));
        prop_assert!(verdict.is_err());

        let other = LakeKey::new([!(seed as u8 ^ 0x5A); 32]);
        let r = SegmentReader::new(&other, f.segment.manifest().clone());
        prop_assert!(matches!(r, Err(Error::ManifestAuth)));
    }

    /// Direct range reads that return the wrong bytes are caught by the AEAD:
    /// bit flips, another shard's range, or another record's ciphertext.
    #[test]
    fn wrong_range_bytes_fail_authentication(
        (k, m, sizes, seed) in (1usize..=6, 1usize..=6, prop::collection::vec(1usize..3000, 2..10), any::<u64>()),
        which in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
        how in 0u8..3,
    ) {
        let f = build(k, m, &sizes, seed);
        let a = which.index(f.pages.len());
        let (pgno, txnid, ref want) = f.pages[a];
        let loc = f.reader.locate(pgno, txnid)?;
        let mut record: Vec<u8> = loc.pieces.iter().flat_map(|p| f.shards[p.shard][p.range.clone()].to_vec()).collect();
        match how {
            0 => { let b = bit.index(record.len() * 8); record[b / 8] ^= 1 << (b % 8); }
            1 => {
                // The same columns of a different shard.
                let shift = 1 + other.index(k + m - 1);
                record = loc.pieces.iter().flat_map(|p| {
                    let s = (p.shard + shift) % (k + m);
                    f.shards[s][p.range.clone()].to_vec()
                }).collect();
            }
            _ => {
                // Another record's ciphertext, cut or padded to this length.
                let b = (a + 1 + other.index(f.pages.len() - 1)) % f.pages.len();
                let lb = f.reader.locate(f.pages[b].0, f.pages[b].1)?;
                let mut theirs: Vec<u8> = lb.pieces.iter().flat_map(|p| f.shards[p.shard][p.range.clone()].to_vec()).collect();
                theirs.resize(record.len(), 0);
                record = theirs;
            }
        }
        let mut split = Vec::new();
        let mut at = 0;
        for p in &loc.pieces {
            split.push(&record[at..at + p.len()]);
            at += p.len();
        }
        let r = f.reader.open_page(&loc, &split);
        if let Ok(page) = &r {
            // Only possible when the substitute is byte-identical.
            prop_assert_eq!(page, want);
        } else {
            prop_assert!(matches!(r, Err(Error::PageAuth { .. })), "{:?}", r);
        }

        // read_page falls back to decoding from other shards and still
        // returns the right page, since only the direct read was bad.
        let mut direct_used = false;
        let page = f.reader.read_page(pgno, txnid, |range| {
            if loc.pieces.contains(range) && !direct_used {
                let i = loc.pieces.iter().position(|p| p == range).unwrap();
                if i + 1 == loc.pieces.len() { direct_used = true; }
                return Some(split[i].to_vec());
            }
            Some(f.shards[range.shard][range.range.clone()].to_vec())
        })?;
        prop_assert_eq!(&page, want);
    }
}

#[test]
fn default_code_any_twenty_of_a_hundred() {
    let sizes = vec![4096; 60];
    let f = build(20, 80, &sizes, 1);
    assert_eq!(f.shards.len(), 100);
    // The last 20 (all parity), a spread-out mix, and data shards only.
    for survivors in [
        (80..100).collect::<Vec<_>>(),
        (0..100).step_by(5).collect(),
        (0..20).collect(),
    ] {
        let got = read_all_from(&f, &survivors).unwrap();
        assert!(got.iter().zip(&f.pages).all(|(g, p)| *g == p.2));
    }
    let r = read_all_from(&f, &(81..100).collect::<Vec<_>>());
    assert_eq!(
        r,
        Err(Error::NotEnoughShards {
            needed: 20,
            available: 19
        })
    );
}

#[test]
fn swapped_page_table_entries_break_the_mac() {
    let f = build(3, 2, &[100, 100, 100], 9);
    let mut json: serde_json::Value = serde_json::to_value(f.segment.manifest()).unwrap();
    let pages = json["pages"].as_array_mut().unwrap();
    let (a, b) = (pages[0]["pgno"].clone(), pages[1]["pgno"].clone());
    pages[0]["pgno"] = b;
    pages[1]["pgno"] = a;
    let tampered: Manifest = serde_json::from_value(json).unwrap();
    assert_eq!(tampered.verify(&f.key), Err(Error::ManifestAuth));

    // Untouched, the serde form verifies and reads.
    let json = serde_json::to_string(f.segment.manifest()).unwrap();
    let back: Manifest = serde_json::from_str(&json).unwrap();
    let reader = SegmentReader::new(&f.key, back).unwrap();
    let loc = reader.locate(4, 101).unwrap();
    let pieces: Vec<&[u8]> = loc
        .pieces
        .iter()
        .map(|p| &f.shards[p.shard][p.range.clone()])
        .collect();
    assert_eq!(reader.open_page(&loc, &pieces).unwrap(), f.pages[1].2);
}

#[test]
fn a_page_is_one_range_read_unless_it_straddles() {
    let f = build(20, 80, &vec![4096; 300], 5);
    let shard_len = f.reader.manifest().shard_len();
    let mut straddling = 0;
    for (pgno, txnid, _) in &f.pages {
        let loc = f.reader.locate(*pgno, *txnid).unwrap();
        assert!(loc
            .pieces
            .iter()
            .all(|p| p.shard < 20 && p.range.end <= shard_len));
        match loc.pieces.len() {
            1 => {}
            2 => {
                straddling += 1;
                assert_eq!(loc.pieces[0].range.end, shard_len);
                assert_eq!(loc.pieces[1].range.start, 0);
                assert_eq!(loc.pieces[1].shard, loc.pieces[0].shard + 1);
            }
            n => panic!("{n} pieces"),
        }
    }
    assert!(straddling <= 19);
}

#[test]
fn builder_limits() {
    let key = LakeKey::new([1; 32]);
    let config = SegmentConfig {
        target_size: 10_000,
        ..SegmentConfig::default()
    };
    let mut b = SegmentBuilder::new(&key, LAKE, 1, config).unwrap();
    b.push(1, 1, &[0; 4096]).unwrap();
    assert_eq!(
        b.push(1, 1, &[0; 10]),
        Err(Error::DuplicatePage { pgno: 1, txnid: 1 })
    );
    b.push(2, 1, &[0; 4096]).unwrap();
    assert!(matches!(
        b.push(3, 1, &[0; 4096]),
        Err(Error::SegmentFull { .. })
    ));
    assert_eq!(b.len(), 2);
    // One oversized record is always accepted into an empty segment.
    let mut b = SegmentBuilder::new(&key, LAKE, 2, config).unwrap();
    b.push(1, 1, &[7; 50_000]).unwrap();
    let seg = b.finish().unwrap();
    let reader = SegmentReader::new(&key, seg.manifest().clone()).unwrap();
    let shards: Vec<Option<&[u8]>> = seg.shards().map(Some).collect();
    assert_eq!(
        reader.decode_all(&shards).unwrap()[0].bytes,
        vec![7; 50_000]
    );
    assert!(matches!(
        reader.locate(9, 9),
        Err(Error::PageNotFound { .. })
    ));
}

#[test]
fn reused_buffers_give_the_same_pages() {
    let key = LakeKey::new([4; 32]);
    let config = SegmentConfig {
        target_size: 1 << 20,
        threads: 2,
        ..SegmentConfig::default()
    };
    let mut previous: Option<Segment> = None;
    // A large segment first, then smaller ones reusing its (dirty) buffers.
    for (seg, count) in [(1u64, 200usize), (2, 50), (3, 120)] {
        let mut b = SegmentBuilder::new(&key, LAKE, seg, config).unwrap();
        if let Some(old) = previous.take() {
            b.reuse(old);
        }
        let pages: Vec<Vec<u8>> = (0..count)
            .map(|i| page_bytes(4096, seg * 1000 + i as u64))
            .collect();
        for (i, p) in pages.iter().enumerate() {
            b.push(i as u64, seg, p).unwrap();
        }
        let s = b.finish().unwrap();
        let reader = SegmentReader::new(&key, s.manifest().clone()).unwrap();
        // Parity only: every page must come from the re-encoded parity.
        let shards: Vec<Option<&[u8]>> = s
            .shards()
            .enumerate()
            .map(|(i, b)| (i >= 80).then_some(b))
            .collect();
        let got = reader.decode_all(&shards).unwrap();
        assert!(got.iter().map(|p| &p.bytes).eq(pages.iter()));
        previous = Some(s);
    }
}
