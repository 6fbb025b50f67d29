//! Building a segment: pack, encrypt, erasure code, hash, seal the manifest.

use std::collections::HashSet;
use std::sync::Arc;

use crate::codec::Codec;
use crate::crypto::{Keys, LakeId, LakeKey, RecordId, TAG_LEN};
use crate::manifest::{Manifest, PageEntry, MANIFEST_VERSION, SHARD_ALIGN};
use crate::{Error, Result};

/// Parameters of the segments a builder makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Data shards; any `k` shards rebuild the segment. Default 20.
    pub k: usize,
    /// Parity shards. Default 80.
    pub m: usize,
    /// Records are accepted while their total stays within this many bytes
    /// (one record is always accepted, however large). Default 4 MiB.
    pub target_size: usize,
    /// Threads used by [`SegmentBuilder::finish`] to encrypt, encode and hash.
    /// Default 1.
    pub threads: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            k: 20,
            m: 80,
            target_size: 4 << 20,
            threads: 1,
        }
    }
}

/// Collects page versions, then turns them into a [`Segment`].
///
/// Pages are copied into a staging buffer at their final offsets as they are
/// pushed, so `finish` encrypts in place without moving any bytes.
pub struct SegmentBuilder {
    keys: Keys,
    lake_id: LakeId,
    segment_id: u64,
    config: SegmentConfig,
    codec: Arc<Codec>,
    buf: Vec<u8>,
    spare_parity: Vec<u8>,
    pages: Vec<PageEntry>,
    seen: HashSet<(u64, u64)>,
}

impl SegmentBuilder {
    /// A builder for segment `segment_id` of lake `lake_id`. Segment ids
    /// should be unique per lake; nonces stay unique even if one is reused.
    pub fn new(
        key: &LakeKey,
        lake_id: LakeId,
        segment_id: u64,
        config: SegmentConfig,
    ) -> Result<Self> {
        let codec = Arc::new(Codec::new(config.k, config.m)?);
        SegmentBuilder::with_codec(key, lake_id, segment_id, config, codec)
    }

    /// Like [`SegmentBuilder::new`], sharing a prepared codec (whose k and m
    /// must match the config) to skip building its matrices per segment.
    pub fn with_codec(
        key: &LakeKey,
        lake_id: LakeId,
        segment_id: u64,
        config: SegmentConfig,
        codec: Arc<Codec>,
    ) -> Result<Self> {
        if codec.data_shards() != config.k || codec.parity_shards() != config.m {
            return Err(Error::InvalidConfig(
                "codec k/m differ from the config".into(),
            ));
        }
        if config.k > usize::from(u16::MAX) || config.m > usize::from(u16::MAX) {
            return Err(Error::InvalidConfig("k or m too large".into()));
        }
        Ok(SegmentBuilder {
            keys: key.keys(),
            lake_id,
            segment_id,
            config,
            codec,
            buf: Vec::with_capacity(config.target_size.min(64 << 20)),
            spare_parity: Vec::new(),
            pages: Vec::new(),
            seen: HashSet::new(),
        })
    }

    /// Hands this builder the buffers of a segment that is no longer needed
    /// (typically the previous one, once uploaded). Reusing them saves the
    /// allocation and page-fault cost of fresh memory, a noticeable part of a
    /// segment's build time.
    pub fn reuse(&mut self, old: Segment) {
        if self.buf.is_empty() && old.data.capacity() > self.buf.capacity() {
            self.buf = old.data;
            self.buf.clear();
        }
        if old.parity.capacity() > self.spare_parity.capacity() {
            self.spare_parity = old.parity;
        }
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Bytes of records so far (pages plus tags).
    pub fn data_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether a page of `page_len` bytes would still be accepted.
    pub fn fits(&self, page_len: usize) -> bool {
        self.pages.is_empty() || self.buf.len() + page_len + TAG_LEN <= self.config.target_size
    }

    /// Adds the version of page `pgno` written by checkpoint `txnid`.
    ///
    /// Fails with [`Error::SegmentFull`] (leaving the builder unchanged)
    /// when the record would pass the target size: finish this segment and
    /// push the page into the next one.
    pub fn push(&mut self, pgno: u64, txnid: u64, page: &[u8]) -> Result<()> {
        let length = page
            .len()
            .checked_add(TAG_LEN)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or(Error::PageTooLarge(page.len()))?;
        if !self.fits(page.len()) {
            return Err(Error::SegmentFull {
                used: self.buf.len() as u64,
                needed: u64::from(length),
                target: self.config.target_size as u64,
            });
        }
        if self.pages.len() >= u32::MAX as usize {
            return Err(Error::SegmentFull {
                used: self.buf.len() as u64,
                needed: u64::from(length),
                target: self.config.target_size as u64,
            });
        }
        if !self.seen.insert((pgno, txnid)) {
            return Err(Error::DuplicatePage { pgno, txnid });
        }
        self.pages.push(PageEntry {
            pgno,
            txnid,
            offset: self.buf.len() as u64,
            length,
        });
        self.buf.extend_from_slice(page);
        self.buf.extend_from_slice(&[0u8; TAG_LEN]);
        Ok(())
    }

    /// Encrypts every record, computes parity and shard hashes, and seals the
    /// manifest. Uses `config.threads` threads.
    pub fn finish(self) -> Result<Segment> {
        let SegmentBuilder {
            keys,
            lake_id,
            segment_id,
            config,
            codec,
            mut buf,
            spare_parity,
            pages,
            ..
        } = self;
        let (k, m) = (config.k, config.m);
        let threads = config.threads.max(1);
        let data_len = buf.len();
        let shard_len = data_len.div_ceil(k).div_ceil(SHARD_ALIGN).max(1) * SHARD_ALIGN;

        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| Error::Random)?;
        let cipher = keys.segment_cipher(&lake_id, segment_id, &salt);

        // Encrypt: records split into `threads` runs of about equal bytes.
        type Run<'a> = (Vec<(RecordId, usize)>, &'a mut [u8]);
        let mut runs: Vec<Run<'_>> = Vec::new();
        {
            let per_thread = data_len.div_ceil(threads).max(1);
            let mut rest: &mut [u8] = &mut buf[..];
            let mut run: Vec<(RecordId, usize)> = Vec::new();
            let mut run_bytes = 0usize;
            for (index, p) in pages.iter().enumerate() {
                let id = RecordId {
                    index: index as u32,
                    pgno: p.pgno,
                    txnid: p.txnid,
                    offset: p.offset,
                };
                run.push((id, p.length as usize));
                run_bytes += p.length as usize;
                if run_bytes >= per_thread || index + 1 == pages.len() {
                    let (head, tail) = core::mem::take(&mut rest).split_at_mut(run_bytes);
                    runs.push((core::mem::take(&mut run), head));
                    rest = tail;
                    run_bytes = 0;
                }
            }
        }
        let seal_run = |records: Vec<(RecordId, usize)>, bytes: &mut [u8]| -> Result<()> {
            let mut at = 0;
            for (id, len) in records {
                cipher.seal(id, &mut bytes[at..at + len])?;
                at += len;
            }
            Ok(())
        };
        std::thread::scope(|s| {
            let mut runs = runs.into_iter();
            let first = runs.next();
            let handles: Vec<_> = runs
                .map(|(recs, bytes)| s.spawn(move || seal_run(recs, bytes)))
                .collect();
            let mut result = first.map_or(Ok(()), |(recs, bytes)| seal_run(recs, bytes));
            for h in handles {
                let r = h.join().unwrap_or(Err(Error::InvalidConfig(
                    "encryption thread panicked".into(),
                )));
                result = result.and(r);
            }
            result
        })?;

        buf.resize(k * shard_len, 0);
        // Parity starts 64-byte aligned so the kernel may use streaming
        // stores; old contents of a reused buffer are all overwritten.
        let mut parity = spare_parity;
        if parity.len() < m * shard_len + SHARD_ALIGN {
            parity.resize(m * shard_len + SHARD_ALIGN, 0);
        }
        let parity_offset = parity.as_ptr().align_offset(SHARD_ALIGN).min(SHARD_ALIGN);
        let parity_region = parity_offset..parity_offset + m * shard_len;
        {
            let data: Vec<&[u8]> = buf.chunks_exact(shard_len).collect();
            let mut outs: Vec<&mut [u8]> = parity[parity_region.clone()]
                .chunks_exact_mut(shard_len)
                .collect();
            codec.encode_parallel(&data, &mut outs, threads)?;
        }

        let shards: Vec<&[u8]> = buf
            .chunks_exact(shard_len)
            .chain(parity[parity_region.clone()].chunks_exact(shard_len))
            .collect();
        let shard_hashes = hash_shards(&shards, threads);

        let mut manifest = Manifest {
            version: MANIFEST_VERSION,
            lake_id,
            segment_id,
            salt,
            k: k as u16,
            m: m as u16,
            shard_len: shard_len as u64,
            data_len: data_len as u64,
            shard_hashes,
            pages,
            mac: [0; 32],
        };
        manifest.seal(&keys);
        Ok(Segment {
            manifest,
            shard_len,
            data: buf,
            parity,
            parity_region,
        })
    }
}

fn hash_shards(shards: &[&[u8]], threads: usize) -> Vec<[u8; 32]> {
    let per = shards.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let mut groups = shards.chunks(per);
        let first = groups.next();
        let handles: Vec<_> = groups
            .map(|g| {
                s.spawn(move || {
                    g.iter()
                        .map(|b| *blake3::hash(b).as_bytes())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out: Vec<[u8; 32]> = first
            .map(|g| g.iter().map(|b| *blake3::hash(b).as_bytes()).collect())
            .unwrap_or_default();
        for h in handles {
            // A hashing thread cannot panic short of a bug or out-of-memory;
            // hashing the group here again keeps the result complete anyway.
            match h.join() {
                Ok(v) => out.extend(v),
                Err(_) => return shards.iter().map(|b| *blake3::hash(b).as_bytes()).collect(),
            }
        }
        out
    })
}

/// A finished segment: its manifest and its k + m shards.
#[derive(Debug, Clone)]
pub struct Segment {
    manifest: Manifest,
    shard_len: usize,
    data: Vec<u8>,
    /// Backing store of the parity shards, which lie in `parity_region`.
    parity: Vec<u8>,
    parity_region: core::ops::Range<usize>,
}

impl Segment {
    /// The sealed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of shards, k + m.
    pub fn shard_count(&self) -> usize {
        self.manifest.total_shards()
    }

    /// Shard `index` (data shards first, then parity), or `None` past the end.
    pub fn shard(&self, index: usize) -> Option<&[u8]> {
        let k = self.manifest.k();
        let region = if index < k {
            &self.data[..]
        } else {
            &self.parity[self.parity_region.clone()]
        };
        let i = if index < k { index } else { index - k };
        region.get(i * self.shard_len..(i + 1) * self.shard_len)
    }

    /// All shards in index order.
    pub fn shards(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.data
            .chunks_exact(self.shard_len)
            .chain(self.parity[self.parity_region.clone()].chunks_exact(self.shard_len))
    }

    /// The manifest and owned shards, in index order.
    pub fn into_parts(self) -> (Manifest, Vec<Vec<u8>>) {
        let shards = self.shards().map(<[u8]>::to_vec).collect();
        (self.manifest, shards)
    }
}
