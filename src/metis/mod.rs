//! Metis settlement: the Rust side of the contracts in `contracts/`
//! (documented in `contracts/README.md`).
//!
//! * [`bindings`]: alloy bindings generated from the committed artifacts and
//!   a decoder that names the contracts' custom errors.
//! * [`sink`]: the [`MetisSink`](sink::MetisSink) trait (what the relayer
//!   reads from and writes to the contracts) and its alloy implementation.
//! * [`relay`]: brings BtcLightClient up to the local best Bitcoin chain.
//! * [`attest`]: EIP-712 committee attestations of GOAT blocks.
//! * [`goatlc`]: GoatLightClient's calldata from CometBFT light blocks.
//! * [`goatprove`]: makes GOAT blocks final on GoatLightClient (submits the
//!   CometBFT heights that prove them).
//! * [`invoice`]: invoice terms, signed off-chain (EIP-712) or created on-chain.
//! * [`settle`]: the contracts' proof structs built from gmrelay proof files.
//! * [`deploy`]: deployment and the deployment file.
//! * [`sender`]: legacy EIP-155 transactions priced from `eth_gasPrice`,
//!   as Metis's sequencer takes them, replaced when stuck.
//! * [`outbox`]: every transaction recorded before it is broadcast.
//! * [`gasbench`]: `gmrelay bench gas`.

pub mod attest;
pub mod bindings;
pub mod cmd;
pub mod deploy;
pub mod gasbench;
pub mod goatlc;
pub mod goatprove;
pub mod invoice;
pub mod outbox;
pub mod relay;
pub mod sender;
pub mod settle;
pub mod sink;

use alloy::primitives::{keccak256, Address, B256};
use alloy::sol_types::SolValue;

/// The id PaymentSettlement gives the invoice of `merchant` whose payment
/// carries `reference` (the EIP-3009 nonce or the Bitcoin OP_RETURN payload):
/// `keccak256(abi.encode(merchant, reference))`. Nobody but the merchant can
/// sign or create an invoice with it.
pub fn invoice_id(merchant: Address, reference: B256) -> B256 {
    keccak256((merchant, reference).abi_encode())
}
