//! The segment manifest: what a reader needs to locate, rebuild and verify
//! any page of a segment, authenticated with the lake key.

use serde::{Deserialize, Serialize};

use crate::codec::MAX_SHARDS;
use crate::crypto::{Keys, LakeId, LakeKey, TAG_LEN};
use crate::{Error, Result};

/// Format version written by this crate.
pub const MANIFEST_VERSION: u16 = 1;

const MAGIC: &[u8; 8] = b"PDBSEGM\0";

/// Shard lengths are multiples of this, the SIMD kernel's vector width.
pub const SHARD_ALIGN: usize = 64;

/// One page record of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageEntry {
    /// Page number in the environment.
    pub pgno: u64,
    /// Transaction id of the checkpoint this version belongs to.
    pub txnid: u64,
    /// Byte offset of the record in the segment's data (the data shards laid
    /// end to end).
    pub offset: u64,
    /// Record length: page length plus the 16-byte tag.
    pub length: u32,
}

impl PageEntry {
    /// Length of the page the record decrypts to.
    pub fn page_len(&self) -> usize {
        (self.length as usize).saturating_sub(TAG_LEN)
    }
}

/// Describes one segment. Untrusted until [`Manifest::verify`] (or
/// [`crate::SegmentReader::new`], which calls it) has checked its MAC.
///
/// Serde serialisation carries every field including the MAC, so a manifest
/// stored in any serde format can be verified after loading. The compact
/// binary form of [`Manifest::to_bytes`] is the one the MAC is computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub(crate) version: u16,
    pub(crate) lake_id: LakeId,
    pub(crate) segment_id: u64,
    pub(crate) salt: [u8; 16],
    pub(crate) k: u16,
    pub(crate) m: u16,
    pub(crate) shard_len: u64,
    pub(crate) data_len: u64,
    pub(crate) shard_hashes: Vec<[u8; 32]>,
    pub(crate) pages: Vec<PageEntry>,
    pub(crate) mac: [u8; 32],
}

impl Manifest {
    /// Format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The lake this segment belongs to.
    pub fn lake_id(&self) -> &LakeId {
        &self.lake_id
    }

    /// Segment id, unique within the lake.
    pub fn segment_id(&self) -> u64 {
        self.segment_id
    }

    /// Number of data shards.
    pub fn k(&self) -> usize {
        usize::from(self.k)
    }

    /// Number of parity shards.
    pub fn m(&self) -> usize {
        usize::from(self.m)
    }

    /// k + m.
    pub fn total_shards(&self) -> usize {
        self.k() + self.m()
    }

    /// Length of every shard in bytes.
    pub fn shard_len(&self) -> usize {
        self.shard_len as usize
    }

    /// Bytes of records; the data shards hold these followed by zero padding.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// The blake3 hash shard `index` must have.
    pub fn shard_hash(&self, index: usize) -> Option<&[u8; 32]> {
        self.shard_hashes.get(index)
    }

    /// The page table, in record order.
    pub fn pages(&self) -> &[PageEntry] {
        &self.pages
    }

    /// Smallest and largest checkpoint txnid in the segment.
    pub fn txnid_range(&self) -> Option<(u64, u64)> {
        let min = self.pages.iter().map(|p| p.txnid).min()?;
        let max = self.pages.iter().map(|p| p.txnid).max()?;
        Some((min, max))
    }

    /// The canonical encoding without the MAC: what the MAC covers.
    fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(80 + 32 * self.shard_hashes.len() + 28 * self.pages.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.lake_id);
        b.extend_from_slice(&self.segment_id.to_le_bytes());
        b.extend_from_slice(&self.salt);
        b.extend_from_slice(&self.k.to_le_bytes());
        b.extend_from_slice(&self.m.to_le_bytes());
        b.extend_from_slice(&self.shard_len.to_le_bytes());
        b.extend_from_slice(&self.data_len.to_le_bytes());
        b.extend_from_slice(&(self.shard_hashes.len() as u32).to_le_bytes());
        for h in &self.shard_hashes {
            b.extend_from_slice(h);
        }
        b.extend_from_slice(&(self.pages.len() as u32).to_le_bytes());
        for p in &self.pages {
            b.extend_from_slice(&p.pgno.to_le_bytes());
            b.extend_from_slice(&p.txnid.to_le_bytes());
            b.extend_from_slice(&p.offset.to_le_bytes());
            b.extend_from_slice(&p.length.to_le_bytes());
        }
        b
    }

    pub(crate) fn seal(&mut self, keys: &Keys) {
        self.mac = *keys.manifest_mac(&self.body()).as_bytes();
    }

    /// The compact binary form: canonical body followed by the 32-byte MAC.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.body();
        b.extend_from_slice(&self.mac);
        b
    }

    /// Parses [`Manifest::to_bytes`] output. Checks the structure only; call
    /// [`Manifest::verify`] before trusting it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest> {
        let mut r = Reader(bytes);
        if r.take(8)? != MAGIC {
            return Err(Error::ManifestFormat("bad magic"));
        }
        let version = r.u16()?;
        if version != MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let lake_id = r.array::<16>()?;
        let segment_id = r.u64()?;
        let salt = r.array::<16>()?;
        let k = r.u16()?;
        let m = r.u16()?;
        let shard_len = r.u64()?;
        let data_len = r.u64()?;
        let n_hashes = r.u32()? as usize;
        if n_hashes > MAX_SHARDS {
            return Err(Error::ManifestFormat("too many shard hashes"));
        }
        let shard_hashes = (0..n_hashes)
            .map(|_| r.array::<32>())
            .collect::<Result<Vec<_>>>()?;
        let n_pages = r.u32()? as usize;
        if n_pages > r.0.len() / 28 {
            return Err(Error::ManifestFormat("page table longer than the manifest"));
        }
        let pages = (0..n_pages)
            .map(|_| {
                Ok(PageEntry {
                    pgno: r.u64()?,
                    txnid: r.u64()?,
                    offset: r.u64()?,
                    length: r.u32()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mac = r.array::<32>()?;
        if !r.0.is_empty() {
            return Err(Error::ManifestFormat("trailing bytes"));
        }
        let manifest = Manifest {
            version,
            lake_id,
            segment_id,
            salt,
            k,
            m,
            shard_len,
            data_len,
            shard_hashes,
            pages,
            mac,
        };
        manifest.check_structure()?;
        Ok(manifest)
    }

    /// Checks the MAC under `key`, then that the manifest describes a
    /// possible segment. A manifest altered in any field, or checked under
    /// another lake's key, fails with [`Error::ManifestAuth`].
    pub fn verify(&self, key: &LakeKey) -> Result<()> {
        self.verify_with(&key.keys())
    }

    pub(crate) fn verify_with(&self, keys: &Keys) -> Result<()> {
        if self.version != MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion(self.version));
        }
        // blake3::Hash compares in constant time.
        if keys.manifest_mac(&self.body()) != blake3::Hash::from(self.mac) {
            return Err(Error::ManifestAuth);
        }
        self.check_structure()
    }

    /// Consistency a MAC cannot give: a correctly keyed writer with a bug, or
    /// a hand-built value, must still not lead readers out of bounds.
    fn check_structure(&self) -> Result<()> {
        let (k, m) = (self.k(), self.m());
        if k == 0 || k + m > MAX_SHARDS {
            return Err(Error::ManifestFormat("k and m out of range"));
        }
        if self.shard_hashes.len() != k + m {
            return Err(Error::ManifestFormat("shard hash count is not k + m"));
        }
        if self.shard_len == 0 || !self.shard_len.is_multiple_of(SHARD_ALIGN as u64) {
            return Err(Error::ManifestFormat(
                "shard length not a positive multiple of 64",
            ));
        }
        let capacity = self
            .shard_len
            .checked_mul(k as u64)
            .filter(|&c| c <= usize::MAX as u64 / 2)
            .ok_or(Error::ManifestFormat("segment too large"))?;
        if self.data_len > capacity {
            return Err(Error::ManifestFormat("records exceed the data shards"));
        }
        if self.pages.len() > u32::MAX as usize {
            return Err(Error::ManifestFormat("too many records"));
        }
        let mut next = 0u64;
        for p in &self.pages {
            if p.offset != next || (p.length as usize) < TAG_LEN {
                return Err(Error::ManifestFormat(
                    "page table is not a packed run of records",
                ));
            }
            next = next
                .checked_add(u64::from(p.length))
                .filter(|&n| n <= self.data_len)
                .ok_or(Error::ManifestFormat("page table runs past the data"))?;
        }
        if next != self.data_len {
            return Err(Error::ManifestFormat("page table does not cover the data"));
        }
        Ok(())
    }
}

/// Bounds-checked little-endian cursor.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::ManifestFormat("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}
