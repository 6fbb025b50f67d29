//! prunedb-engine: a pure-Rust, byte-compatible reimplementation of LMDB 0.9.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;
