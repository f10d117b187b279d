//! GOAT Network (EVM): the header light client and stablecoin payment proofs.
//!
//! * [`header`]: strict parsing of RPC block JSON, canonical RLP, the block
//!   hash computed by gmrelay.
//! * [`receipts`]: EIP-2718 receipt encoding for any transaction type, and
//!   the receipts trie (root, proofs) with alloy-trie.

pub mod header;
pub mod receipts;
