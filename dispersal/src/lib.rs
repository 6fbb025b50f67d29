//! Encrypted, erasure-coded segments of page versions for the prunedb lake.
//!
//! A [`SegmentBuilder`] packs page records `(pgno, txnid, bytes)` into a
//! segment, encrypts each with XChaCha20-Poly1305 under keys derived from
//! the lake key, and codes the result with systematic Reed-Solomon into k
//! data and m parity shards (default 20 + 80). The sealed [`Manifest`]
//! holds the shard hashes and page table, and a keyed blake3 MAC over all of
//! it.
//!
//! A [`SegmentReader`] gets any one page back: normally by one direct range
//! read of the data shard holding its ciphertext ([`SegmentReader::locate`]
//! then [`SegmentReader::open_page`]); otherwise by decoding just that byte
//! range from the same columns of any k shards
//! ([`SegmentReader::decode_range`]). It also decodes whole segments and
//! regenerates lost shards for repair.
//!
//! ```
//! use prunedb_dispersal::{LakeKey, Manifest, SegmentBuilder, SegmentConfig, SegmentReader};
//!
//! let key = LakeKey::new([7; 32]);
//! let lake = [1; 16];
//! let mut builder = SegmentBuilder::new(&key, lake, 42, SegmentConfig::default())?;
//! for pgno in 0..256u64 {
//!     builder.push(pgno, 100, &[pgno as u8; 4096])?;
//! }
//! let (manifest, shards) = builder.finish()?.into_parts();
//!
//! // Reader side: verify the manifest, then one range read per page.
//! let reader = SegmentReader::new(&key, Manifest::from_bytes(&manifest.to_bytes())?)?;
//! let loc = reader.locate(9, 100)?;
//! let pieces: Vec<&[u8]> = loc.pieces.iter().map(|p| &shards[p.shard][p.range.clone()]).collect();
//! assert_eq!(pieces.len(), 1);
//! assert_eq!(reader.open_page(&loc, &pieces)?, vec![9; 4096]);
//!
//! // The data shard is gone: decode the same columns of 20 parity shards.
//! let piece = &loc.pieces[0];
//! let sources: Vec<(usize, &[u8])> =
//!     (80..100).map(|s| (s, &shards[s][piece.range.clone()])).collect();
//! let bytes = reader.decode_range(piece, &sources)?;
//! assert_eq!(reader.open_page(&loc, &[&bytes])?, vec![9; 4096]);
//! # Ok::<(), prunedb_dispersal::Error>(())
//! ```
#![deny(missing_docs)]

mod codec;
mod crypto;
mod error;
mod gf;
mod kernel;
mod manifest;
mod reader;
mod segment;

pub use codec::{Codec, MAX_SHARDS};
pub use crypto::{LakeId, LakeKey, TAG_LEN};
pub use error::{Error, Result};
pub use kernel::Backend;
pub use manifest::{Manifest, PageEntry, MANIFEST_VERSION, SHARD_ALIGN};
pub use reader::{Page, PageLocation, SegmentReader, ShardRange};
pub use segment::{Segment, SegmentBuilder, SegmentConfig};
