//! Reading pages back: locate, fetch directly, decode a range, decode all,
//! regenerate a shard.

use std::ops::Range;
use std::sync::Arc;

use crate::codec::Codec;
use crate::crypto::{LakeKey, RecordId, SegmentCipher};
use crate::manifest::{Manifest, PageEntry};
use crate::{Error, Result};

/// A byte range of one shard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardRange {
    /// Shard index, `0..k + m`.
    pub shard: usize,
    /// Byte range within that shard.
    pub range: Range<usize>,
}

impl ShardRange {
    /// Length of the range.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The same columns in another shard: what to fetch from shard `other`
    /// to rebuild this range by decoding.
    pub fn in_shard(&self, other: usize) -> ShardRange {
        ShardRange {
            shard: other,
            range: self.range.clone(),
        }
    }
}

/// Where a page's record lies: one piece in one data shard, or two when the
/// record straddles a shard boundary (more only if the record is longer than
/// a shard, as in very small segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLocation {
    /// Index of the record in the page table.
    pub record: usize,
    /// The page table entry.
    pub entry: PageEntry,
    /// Data-shard ranges that, concatenated, are the record.
    pub pieces: Vec<ShardRange>,
}

/// A decrypted, verified page version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Page number.
    pub pgno: u64,
    /// Checkpoint txnid.
    pub txnid: u64,
    /// Plaintext page bytes.
    pub bytes: Vec<u8>,
}

/// Reads one segment given its manifest and the lake key.
pub struct SegmentReader {
    manifest: Manifest,
    cipher: SegmentCipher,
    codec: Arc<Codec>,
    /// (pgno, txnid, record index), sorted, for binary search.
    index: Vec<(u64, u64, usize)>,
}

impl SegmentReader {
    /// Verifies the manifest under `key` and prepares to read.
    pub fn new(key: &LakeKey, manifest: Manifest) -> Result<SegmentReader> {
        let codec = Arc::new(Codec::new(manifest.k(), manifest.m())?);
        SegmentReader::with_codec(key, manifest, codec)
    }

    /// Like [`SegmentReader::new`], sharing a prepared codec with matching k, m.
    pub fn with_codec(
        key: &LakeKey,
        manifest: Manifest,
        codec: Arc<Codec>,
    ) -> Result<SegmentReader> {
        let keys = key.keys();
        manifest.verify_with(&keys)?;
        if codec.data_shards() != manifest.k() || codec.parity_shards() != manifest.m() {
            return Err(Error::InvalidConfig(
                "codec k/m differ from the manifest".into(),
            ));
        }
        let cipher = keys.segment_cipher(&manifest.lake_id, manifest.segment_id, &manifest.salt);
        let mut index: Vec<(u64, u64, usize)> = manifest
            .pages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pgno, p.txnid, i))
            .collect();
        index.sort_unstable();
        Ok(SegmentReader {
            manifest,
            cipher,
            codec,
            index,
        })
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the record of page `pgno` at checkpoint `txnid` lies.
    pub fn locate(&self, pgno: u64, txnid: u64) -> Result<PageLocation> {
        let pos = self
            .index
            .binary_search_by(|&(p, t, _)| (p, t).cmp(&(pgno, txnid)))
            .map_err(|_| Error::PageNotFound { pgno, txnid })?;
        Ok(self.locate_record(self.index[pos].2))
    }

    fn locate_record(&self, record: usize) -> PageLocation {
        let entry = self.manifest.pages[record];
        let shard_len = self.manifest.shard_len();
        let mut pieces = Vec::with_capacity(2);
        // verify_with checked offset + length <= data_len <= k * shard_len.
        let mut at = entry.offset as usize;
        let end = at + entry.length as usize;
        while at < end {
            let shard = at / shard_len;
            let start = at % shard_len;
            let stop = (start + (end - at)).min(shard_len);
            pieces.push(ShardRange {
                shard,
                range: start..stop,
            });
            at += stop - start;
        }
        PageLocation {
            record,
            entry,
            pieces,
        }
    }

    /// Decrypts and verifies a page from the bytes of its pieces, in the
    /// order of `loc.pieces`, however they were obtained (direct range reads
    /// or [`SegmentReader::decode_range`]).
    pub fn open_page(&self, loc: &PageLocation, pieces: &[&[u8]]) -> Result<Vec<u8>> {
        if pieces.len() != loc.pieces.len() {
            return Err(Error::InvalidConfig(format!(
                "page has {} pieces, {} given",
                loc.pieces.len(),
                pieces.len()
            )));
        }
        for (want, got) in loc.pieces.iter().zip(pieces) {
            if want.len() != got.len() {
                return Err(Error::ShardLength {
                    index: want.shard,
                    expected: want.len(),
                    actual: got.len(),
                });
            }
        }
        let id = RecordId {
            index: loc.record as u32,
            pgno: loc.entry.pgno,
            txnid: loc.entry.txnid,
            offset: loc.entry.offset,
        };
        if let [one] = pieces {
            return self.cipher.open(id, one);
        }
        self.cipher.open(id, &pieces.concat())
    }

    /// Rebuilds `range` (of any shard) from the same columns of k other
    /// shards: `sources` are (shard index, bytes of those columns). Extra
    /// sources beyond k are ignored. The result is not verified here; the
    /// AEAD check of [`SegmentReader::open_page`] is what catches a bad source.
    pub fn decode_range(&self, range: &ShardRange, sources: &[(usize, &[u8])]) -> Result<Vec<u8>> {
        if range.range.end > self.manifest.shard_len() || range.range.start > range.range.end {
            return Err(Error::InvalidConfig("range outside the shard".into()));
        }
        for &(index, bytes) in sources {
            if bytes.len() != range.len() {
                return Err(Error::ShardLength {
                    index,
                    expected: range.len(),
                    actual: bytes.len(),
                });
            }
        }
        let mut out = self.codec.reconstruct(sources, &[range.shard])?;
        out.pop().ok_or(Error::NotEnoughShards {
            needed: self.manifest.k(),
            available: 0,
        })
    }

    /// Reads one page the way a page fault should: each piece first by a
    /// direct range read of its data shard; if that read fails (`fetch`
    /// returns `None`) or the page does not verify, the pieces are decoded
    /// from the same range of other shards, trying further subsets of the
    /// fetched ranges when one of them turns out bad.
    ///
    /// `fetch(range)` returns the bytes of that shard range, or `None`.
    pub fn read_page<F>(&self, pgno: u64, txnid: u64, mut fetch: F) -> Result<Vec<u8>>
    where
        F: FnMut(&ShardRange) -> Option<Vec<u8>>,
    {
        let loc = self.locate(pgno, txnid)?;
        let direct: Vec<Option<Vec<u8>>> = loc.pieces.iter().map(&mut fetch).collect();
        if direct.iter().all(Option::is_some) {
            let pieces: Vec<&[u8]> = direct.iter().flatten().map(Vec::as_slice).collect();
            match self.open_page(&loc, &pieces) {
                Ok(page) => return Ok(page),
                Err(Error::PageAuth { .. }) => {}
                Err(e) => return Err(e),
            }
        }

        let (k, n) = (self.manifest.k(), self.manifest.total_shards());
        // For each piece: ranges from every other shard that answers with the
        // right length, one spare beyond k so a single bad one can be left out.
        let mut sources: Vec<Vec<(usize, Vec<u8>)>> = Vec::with_capacity(loc.pieces.len());
        for piece in &loc.pieces {
            let mut got = Vec::with_capacity(k + 1);
            for other in (0..n).filter(|&s| s != piece.shard) {
                if got.len() > k {
                    break;
                }
                if let Some(bytes) =
                    fetch(&piece.in_shard(other)).filter(|b| b.len() == piece.len())
                {
                    got.push((other, bytes));
                }
            }
            if got.len() < k {
                return Err(Error::NotEnoughShards {
                    needed: k,
                    available: got.len(),
                });
            }
            sources.push(got);
        }

        let mut last = Error::PageAuth { pgno, txnid };
        // Attempt 0 uses the first k sources of each piece; attempt j leaves
        // out source j - 1 of every piece that has a spare.
        for attempt in 0..=k {
            let mut pieces = Vec::with_capacity(sources.len());
            for (piece, got) in loc.pieces.iter().zip(&sources) {
                let chosen: Vec<(usize, &[u8])> = got
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| attempt == 0 || got.len() <= k || i + 1 != attempt)
                    .map(|(_, (s, b))| (*s, b.as_slice()))
                    .collect();
                pieces.push(self.decode_range(piece, &chosen)?);
            }
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            match self.open_page(&loc, &refs) {
                Ok(page) => return Ok(page),
                Err(e @ Error::PageAuth { .. }) => last = e,
                Err(e) => return Err(e),
            }
            if sources.iter().all(|g| g.len() <= k) {
                break;
            }
        }
        Err(last)
    }

    /// Checks a whole shard against its length and hash.
    pub fn check_shard(&self, index: usize, bytes: &[u8]) -> Result<()> {
        let expected = self.manifest.shard_hash(index).ok_or(Error::ShardIndex {
            index,
            shards: self.manifest.total_shards(),
        })?;
        if bytes.len() != self.manifest.shard_len() {
            return Err(Error::ShardLength {
                index,
                expected: self.manifest.shard_len(),
                actual: bytes.len(),
            });
        }
        if blake3::hash(bytes) != blake3::Hash::from(*expected) {
            return Err(Error::ShardHash(index));
        }
        Ok(())
    }

    /// The shards of `shards` (indexed by shard number; `None` = missing)
    /// that pass [`SegmentReader::check_shard`]. Failing ones count as missing.
    fn good_shards<'a>(&self, shards: &[Option<&'a [u8]>]) -> Result<Vec<(usize, &'a [u8])>> {
        let n = self.manifest.total_shards();
        if shards.len() > n {
            return Err(Error::ShardIndex {
                index: shards.len() - 1,
                shards: n,
            });
        }
        Ok(shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|b| (i, b)))
            .filter(|&(i, b)| self.check_shard(i, b).is_ok())
            .collect())
    }

    /// Rebuilds shard `index` from whole shards (indexed by shard number,
    /// `None` = missing; shards failing their hash are treated as missing),
    /// for repair. The result is checked against the manifest's hash.
    pub fn regenerate_shard(&self, index: usize, shards: &[Option<&[u8]>]) -> Result<Vec<u8>> {
        let n = self.manifest.total_shards();
        if index >= n {
            return Err(Error::ShardIndex { index, shards: n });
        }
        let good = self.good_shards(shards)?;
        if let Some(&(_, b)) = good.iter().find(|&&(i, _)| i == index) {
            return Ok(b.to_vec());
        }
        let mut out = self.codec.reconstruct(&good, &[index])?;
        let shard = out.pop().ok_or(Error::NotEnoughShards {
            needed: self.manifest.k(),
            available: good.len(),
        })?;
        self.check_shard(index, &shard)?;
        Ok(shard)
    }

    /// The segment's record bytes (data shards end to end, padding cut),
    /// rebuilt where needed from whole shards as in
    /// [`SegmentReader::regenerate_shard`].
    pub fn decode_data(&self, shards: &[Option<&[u8]>]) -> Result<Vec<u8>> {
        let k = self.manifest.k();
        let good = self.good_shards(shards)?;
        let missing: Vec<usize> = (0..k)
            .filter(|d| !good.iter().any(|&(i, _)| i == *d))
            .collect();
        let rebuilt = if missing.is_empty() {
            Vec::new()
        } else {
            self.codec.reconstruct(&good, &missing)?
        };
        let mut data = Vec::with_capacity(k * self.manifest.shard_len());
        let mut rebuilt = rebuilt.iter();
        for d in 0..k {
            match good.iter().find(|&&(i, _)| i == d) {
                Some(&(_, b)) => data.extend_from_slice(b),
                None => {
                    let b = rebuilt.next().ok_or(Error::NotEnoughShards {
                        needed: k,
                        available: good.len(),
                    })?;
                    data.extend_from_slice(b);
                }
            }
        }
        data.truncate(self.manifest.data_len() as usize);
        Ok(data)
    }

    /// Every page of the segment, decrypted and verified, in record order.
    pub fn decode_all(&self, shards: &[Option<&[u8]>]) -> Result<Vec<Page>> {
        let data = self.decode_data(shards)?;
        self.manifest
            .pages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let id = RecordId {
                    index: i as u32,
                    pgno: p.pgno,
                    txnid: p.txnid,
                    offset: p.offset,
                };
                // verify_with checked that the page table covers exactly data_len.
                let start = p.offset as usize;
                let record = data
                    .get(start..start + p.length as usize)
                    .ok_or(Error::ManifestFormat("record outside the data"))?;
                Ok(Page {
                    pgno: p.pgno,
                    txnid: p.txnid,
                    bytes: self.cipher.open(id, record)?,
                })
            })
            .collect()
    }
}
