//! Bitcoin: consensus rules, the header chain, the bitcoind source, the sync
//! runner, header files and payment proofs.

pub mod chain;
pub mod checkpoint;
pub mod headerfile;
pub mod network;
pub mod proof;
pub mod rpc;
pub mod source;
pub mod sync;

pub use chain::{ChainError, ChainEvent, ChangeSet, HeaderChain, Rule, ValidatedHeader};
pub use network::BtcNetwork;
