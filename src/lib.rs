#![warn(missing_docs)]
//! gmrelay: an SPV light-client relayer that settles x402 payments across
//! Bitcoin, GOAT Network and Metis.
//!
//! The crate is a library with a thin binary (`src/bin/gmrelay.rs`).
//! Verification cores are pure: no I/O and no wall clock. Time and data are
//! passed in, and every mutation comes back as a change-set that a [`store`]
//! persists atomically.
//!
//! * [`btc`]: Bitcoin header chain (proof of work, retargets, median time
//!   past, chainwork, reorgs), the bitcoind source, the sync runner and
//!   payment proofs.
//! * [`goat`]: GOAT Network header light client (strict header hashing,
//!   links, finality, reorgs), receipts-trie proofs and EIP-3009 stablecoin
//!   payment proofs.
//! * [`store`]: RocksDB persistence with named column families and a schema
//!   version.
//! * [`config`]: layered settings (defaults < file < environment < flags).

pub mod app;
pub mod bench;
pub mod btc;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod devnet;
pub mod devtools;
pub mod error;
pub mod goat;
pub mod metis;
pub mod metrics;
pub mod proof;
pub mod rail;
pub mod retry;
pub mod store;
pub mod telemetry;
pub mod x402;
