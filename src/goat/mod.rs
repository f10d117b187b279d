//! GOAT Network (EVM): the header light client and stablecoin payment proofs.
//!
//! * [`header`]: strict parsing of RPC block JSON, canonical RLP, the block
//!   hash computed by gmrelay.
//! * [`receipts`]: EIP-2718 receipt encoding for any transaction type, and
//!   the receipts trie (root, proofs) with alloy-trie.
//! * [`payment`]: EIP-3009 and ERC-20 payments found in receipts.
//! * [`chain`]: the header chain (pure): links, finality, reorgs.
//! * [`proof`]: payment proofs and their verification against the store.
//! * [`checkpoint`]: trusted starting points (`headers/goat-<network>.json`).
//! * [`source`]: the [`source::GoatSource`] trait and the alloy JSON-RPC client.
//! * [`sync`]: the sync runner (batched header fetching, retries, finality).
//! * [`consensus`]: CometBFT light blocks verified (pure): commits, tx0, `data_hash`.
//! * [`comet`]: the CometBFT RPC client (`/commit`, `/validators`, `/block`).
//! * [`follow`]: follows GOAT's consensus from a trusted header; finality for [`sync`].
//! * [`devnet`]: anvil, the test stablecoin and EIP-3009 signing for demos and tests.
//! * [`abci`], [`cometnet`]: the devnet's GOAT consensus: real CometBFT nodes
//!   and the ABCI app that plays goatd's part.

pub mod abci;
pub mod chain;
pub mod checkpoint;
pub mod cmd;
pub mod comet;
pub mod cometnet;
pub mod consensus;
pub mod devnet;
pub mod follow;
pub mod header;
pub mod payment;
pub mod proof;
pub mod receipts;
pub mod source;
pub mod sync;
