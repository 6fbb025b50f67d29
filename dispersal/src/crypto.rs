//! Keys, nonces and associated data.
//!
//! From the 32-byte lake key, blake3 `derive_key` gives two independent root
//! keys: one for page records, one for manifest MACs. Each segment encrypts
//! under its own key, `keyed_hash(record root, lake id | segment id | salt)`,
//! with the 16-byte salt drawn at random per segment; the XChaCha20 nonce is
//! the salt followed by the record index. A (key, nonce) pair therefore never
//! repeats, even if a writer reuses a segment id after a crash.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::{Error, Result};

const RECORD_CONTEXT: &str = "prunedb 2025 lake page record encryption v1";
const MANIFEST_CONTEXT: &str = "prunedb 2025 lake segment manifest mac v1";
const AAD_DOMAIN: &[u8; 16] = b"prunedb-page-v1\0";

/// Bytes an encrypted record adds to its page: the Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Identifies a lake; bound into every record and manifest.
pub type LakeId = [u8; 16];

/// The secret of a lake. Its `Debug` output hides the bytes.
#[derive(Clone)]
pub struct LakeKey([u8; 32]);

impl LakeKey {
    /// Wraps 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> LakeKey {
        LakeKey(bytes)
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<LakeKey> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|_| Error::Random)?;
        Ok(LakeKey(k))
    }

    pub(crate) fn keys(&self) -> Keys {
        Keys {
            record_root: blake3::derive_key(RECORD_CONTEXT, &self.0),
            manifest_mac: blake3::derive_key(MANIFEST_CONTEXT, &self.0),
        }
    }
}

impl core::fmt::Debug for LakeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LakeKey(..)")
    }
}

/// Keys derived from a lake key.
#[derive(Clone)]
pub(crate) struct Keys {
    record_root: [u8; 32],
    pub(crate) manifest_mac: [u8; 32],
}

impl Keys {
    pub(crate) fn segment_cipher(
        &self,
        lake_id: &LakeId,
        segment_id: u64,
        salt: &[u8; 16],
    ) -> SegmentCipher {
        let mut input = [0u8; 40];
        input[..16].copy_from_slice(lake_id);
        input[16..24].copy_from_slice(&segment_id.to_le_bytes());
        input[24..].copy_from_slice(salt);
        let key = blake3::keyed_hash(&self.record_root, &input);
        SegmentCipher {
            aead: XChaCha20Poly1305::new(key.as_bytes().into()),
            lake_id: *lake_id,
            segment_id,
            salt: *salt,
        }
    }

    pub(crate) fn manifest_mac(&self, body: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.manifest_mac, body)
    }
}

/// The AEAD of one segment, with everything its records bind to.
pub(crate) struct SegmentCipher {
    aead: XChaCha20Poly1305,
    lake_id: LakeId,
    segment_id: u64,
    salt: [u8; 16],
}

/// What a record is: where it sits and which page version it holds.
#[derive(Clone, Copy)]
pub(crate) struct RecordId {
    pub(crate) index: u32,
    pub(crate) pgno: u64,
    pub(crate) txnid: u64,
    pub(crate) offset: u64,
}

impl SegmentCipher {
    fn nonce(&self, index: u32) -> XNonce {
        let mut n = [0u8; 24];
        n[..16].copy_from_slice(&self.salt);
        n[16..20].copy_from_slice(&index.to_le_bytes());
        XNonce::from(n)
    }

    fn aad(&self, id: RecordId) -> [u8; 68] {
        let mut a = [0u8; 68];
        a[..16].copy_from_slice(AAD_DOMAIN);
        a[16..32].copy_from_slice(&self.lake_id);
        a[32..40].copy_from_slice(&self.segment_id.to_le_bytes());
        a[40..44].copy_from_slice(&id.index.to_le_bytes());
        a[44..52].copy_from_slice(&id.pgno.to_le_bytes());
        a[52..60].copy_from_slice(&id.txnid.to_le_bytes());
        a[60..68].copy_from_slice(&id.offset.to_le_bytes());
        a
    }

    /// Encrypts `record[..len - TAG_LEN]` in place and writes the tag after it.
    pub(crate) fn seal(&self, id: RecordId, record: &mut [u8]) -> Result<()> {
        let body_len = record
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(Error::PageTooLarge(record.len()))?;
        let (body, tag_out) = record.split_at_mut(body_len);
        let tag = self
            .aead
            .encrypt_in_place_detached(&self.nonce(id.index), &self.aad(id), body)
            .map_err(|_| Error::PageTooLarge(body_len))?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Verifies and decrypts a whole record, returning the page bytes.
    pub(crate) fn open(&self, id: RecordId, record: &[u8]) -> Result<Vec<u8>> {
        let auth = Error::PageAuth {
            pgno: id.pgno,
            txnid: id.txnid,
        };
        let body_len = record.len().checked_sub(TAG_LEN).ok_or(auth.clone())?;
        let mut page = record[..body_len].to_vec();
        let tag = Tag::from_slice(&record[body_len..]);
        self.aead
            .decrypt_in_place_detached(&self.nonce(id.index), &self.aad(id), &mut page, tag)
            .map_err(|_| auth)?;
        Ok(page)
    }
}
