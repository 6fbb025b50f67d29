use thiserror::Error;

/// Everything that can go wrong while building, checking or reading a segment.
///
/// Every variant is a refusal: no function of this crate returns page bytes
/// that did not pass both the shard checks it could make and the AEAD tag.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Codec or builder parameters out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The record does not fit under the segment's target size.
    #[error("segment full: {used} bytes used, {needed} more needed, target {target}")]
    SegmentFull {
        /// Bytes of records already in the segment.
        used: u64,
        /// Bytes the refused record would take.
        needed: u64,
        /// The configured target size.
        target: u64,
    },

    /// The same page version was pushed twice into one segment.
    #[error("page {pgno} at txn {txnid} is already in this segment")]
    DuplicatePage {
        /// Page number.
        pgno: u64,
        /// Checkpoint transaction id.
        txnid: u64,
    },

    /// A page longer than a record can describe.
    #[error("page of {0} bytes is too large for one record")]
    PageTooLarge(usize),

    /// The manifest bytes are malformed or describe an impossible segment.
    #[error("malformed manifest: {0}")]
    ManifestFormat(&'static str),

    /// The manifest was written by an unknown format version.
    #[error("unsupported manifest version {0}")]
    UnsupportedVersion(u16),

    /// The manifest's MAC does not verify: it was altered or the key is wrong.
    #[error("manifest authentication failed (tampered manifest or wrong lake key)")]
    ManifestAuth,

    /// The manifest has no record for this page version.
    #[error("page {pgno} at txn {txnid} is not in this segment")]
    PageNotFound {
        /// Page number.
        pgno: u64,
        /// Checkpoint transaction id.
        txnid: u64,
    },

    /// A shard index outside `0..k+m`.
    #[error("shard index {index} out of range (segment has {shards} shards)")]
    ShardIndex {
        /// The index given.
        index: usize,
        /// Number of shards in the segment.
        shards: usize,
    },

    /// The same shard index was supplied twice.
    #[error("shard {0} supplied more than once")]
    DuplicateShard(usize),

    /// A shard or shard range has the wrong length.
    #[error("shard {index}: expected {expected} bytes, got {actual}")]
    ShardLength {
        /// Shard index.
        index: usize,
        /// Length the manifest or the request implies.
        expected: usize,
        /// Length received.
        actual: usize,
    },

    /// A whole shard does not match its hash in the manifest.
    #[error("shard {0} does not match its hash")]
    ShardHash(usize),

    /// Fewer than k usable shards (or shard ranges) were supplied.
    #[error("not enough good shards: need {needed}, have {available}")]
    NotEnoughShards {
        /// k, the number needed.
        needed: usize,
        /// How many usable ones there were.
        available: usize,
    },

    /// The page record failed AEAD verification: wrong key, corrupted or
    /// substituted bytes, or a range decoded from a bad shard.
    #[error("page {pgno} at txn {txnid} failed authentication")]
    PageAuth {
        /// Page number.
        pgno: u64,
        /// Checkpoint transaction id.
        txnid: u64,
    },

    /// The operating system's random source failed.
    #[error("random source unavailable")]
    Random,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
