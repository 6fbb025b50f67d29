//! Shard stores for the prunedb lake, and the fan-out that writes a
//! segment's shards to many of them and reads pages back quickly when some
//! are slow, dead or lying.
//!
//! - [`ShardStore`] is the one async interface every backend implements:
//!   atomic put, get, ranged get, delete, list by prefix, health; failures
//!   are typed ([`Error::NotFound`], [`Error::Unavailable`],
//!   [`Error::Timeout`], [`Error::Corrupt`], ...).
//! - Stores: [`LocalStore`] (a directory; the embedded default),
//!   [`S3Store`] (S3-compatible object storage), [`MemoryStore`], and
//!   [`FaultyStore`], which wraps any of them with injected latency,
//!   errors, bit flips, outages and a bandwidth cap.
//! - [`FanOut`] writes `n` shards with a success threshold and cancels the
//!   stragglers, and reads a page from its data shard with hedged range
//!   reads to other shards, returning verified bytes only. It never
//!   decodes.
//! - [`LakeConfig`] is the TOML lake configuration.
#![deny(missing_docs)]

mod config;
mod error;
mod fanout;
mod fault;
mod local;
mod memory;
mod placement;
mod s3;
mod store;

pub use config::{BackendConfig, LakeConfig};
pub use error::{Error, ErrorKind, Result};
pub use fanout::{
    AcceptAll, ChunkedBlake3, FanOut, FanOutConfig, Fetched, MissingReason, MissingShard,
    ReadOutcome, ReadPlan, ReadStats, ShardLocation, ShardPiece, ShardVerifier, ShardWrite,
    WholeShardBlake3, WriteReport,
};
pub use fault::{FaultConfig, FaultStats, FaultyStore, Latency, Outage};
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use placement::{backend_for_shard, segment_prefix, shard_key};
pub use s3::{S3Config, S3Store, Secret};
pub use store::{validate_key, validate_prefix, Health, ObjectInfo, ShardStore};
