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
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use prunedb_backends::{AcceptAll, FanOut, FanOutConfig, Fetched, MemoryStore, ShardStore};
//!
//! # fn main() -> prunedb_backends::Result<()> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! # rt.block_on(async {
//! let backends: Vec<Arc<dyn ShardStore>> = (0..5)
//!     .map(|i| Arc::new(MemoryStore::new(format!("m{i}"))) as Arc<dyn ShardStore>)
//!     .collect();
//! // Threshold 0: every shard must be acknowledged.
//! let fan = FanOut::new(backends, FanOutConfig::default())?;
//!
//! // Segment 9: 3 data + 2 parity shards (parity made up here; coding is
//! // not this crate's business).
//! let shards: Vec<Bytes> = (0..5u8).map(|i| Bytes::from(vec![i; 64])).collect();
//! let report = fan.write_segment(9, shards).await?;
//! assert_eq!(report.acked.len(), 5);
//!
//! // Bytes 8..16 of data shard 1: served by its own backend.
//! let out = fan.read_segment(9, 5, 3, Some(1), Some(8..16), &AcceptAll).await?;
//! assert_eq!(out.fetched, Fetched::Primary(prunedb_backends::ShardPiece {
//!     shard: 1,
//!     bytes: Bytes::from(vec![1u8; 8]),
//! }));
//! # Ok(())
//! # })
//! # }
//! ```
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
