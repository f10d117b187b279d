//! Settlement: the contracts' proof structs built from gmrelay proof files,
//! local checks that explain what is missing before anything is sent, and
//! the runner behind `gmrelay metis settle`.
//!
//! BTC: raw transaction (legacy serialization), index, branches in internal
//! byte order, coinbase preimage (single SHA256 of the raw coinbase), and
//! the block header followed by its descendants from the store up to the
//! first header BtcLightClient stores on its best chain (`storedBestAt`).
//! GOAT: attested block hash, transaction index, receipt, receipts-trie
//! nodes and the AuthorizationUsed/Transfer log positions.

use alloy::primitives::{Address, Bytes, B256, U256};
use bitcoin::consensus::serialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::ScriptBuf;
use thiserror::Error;
use tracing::{info, info_span, Instrument};

use super::bindings::payment_settlement::{IBtcLightClient, PaymentSettlement};
use super::bindings::{RAIL_BTC, RAIL_GOAT};
use super::relay::internal;
use super::sink::{InvoiceView, MetisError, MetisSink, TxOutcome};
use crate::btc::network::BtcNetwork;
use crate::btc::proof::{find_payment, verify_proof, BtcProof, PaymentError, ProofError};
use crate::error::{Classify, ErrorClass};
use crate::goat::proof::GoatProof;
use crate::proof::{ProofBody, ProofFile};
use crate::store::{Store, StoreError};

/// Why a settlement was not submitted (or failed).
#[derive(Debug, Error)]
pub enum SettleError {
    /// No such invoice.
    #[error("invoice {0} does not exist on PaymentSettlement: create it first (`gmrelay metis invoice create`)")]
    UnknownInvoice(B256),
    /// Proof and invoice are for different rails.
    #[error("invoice {id} is a {invoice} invoice, the proof is a {proof} payment")]
    WrongRail {
        /// The invoice.
        id: B256,
        /// Its rail.
        invoice: &'static str,
        /// The proof's rail.
        proof: &'static str,
    },
    /// Already settled.
    #[error("invoice {0} is already settled")]
    AlreadySettled(B256),
    /// Expired (Metis clock).
    #[error("invoice {id} expired at {expiry}; the latest Metis block is at {now}")]
    Expired {
        /// The invoice.
        id: B256,
        /// Its expiry.
        expiry: u64,
        /// Metis time.
        now: u64,
    },
    /// The BTC proof does not verify against the local chain.
    #[error("the proof does not verify against the local Bitcoin chain: {0} (run `gmrelay headers sync`, or prove again)")]
    LocalProof(#[from] ProofError),
    /// The transaction does not pay the invoice.
    #[error("the transaction does not pay invoice {id}: {source}")]
    NotPaid {
        /// The invoice.
        id: B256,
        /// Why.
        #[source]
        source: PaymentError,
    },
    /// The GOAT payment does not match the invoice.
    #[error("the GOAT payment does not pay invoice {id}: {message}")]
    GoatNotPaid {
        /// The invoice.
        id: B256,
        /// Why.
        message: String,
    },
    /// A GOAT proof of a plain transfer.
    #[error("the GOAT proof is a plain ERC-20 transfer: PaymentSettlement settles EIP-3009 payments (the nonce names the invoice) only")]
    PlainTransfer,
    /// BtcLightClient stores no best-chain descendant of the block.
    #[error("block {height} ({hash}) has no descendant stored on BtcLightClient's best chain (its tip is at {contract_height}): relay headers first (`gmrelay metis relay-headers`)")]
    NotRelayed {
        /// Block height.
        height: u32,
        /// Block hash.
        hash: String,
        /// The contract's best height.
        contract_height: u64,
    },
    /// Too few confirmations on the contract.
    #[error("block {height} has {have} confirmation(s) on BtcLightClient, PaymentSettlement requires {need}: wait for more blocks, `gmrelay headers sync`, then `gmrelay metis relay-headers`")]
    TooFewConfirmations {
        /// Block height.
        height: u32,
        /// Confirmations on the contract.
        have: u64,
        /// Required.
        need: u64,
    },
    /// The GOAT block is not attested.
    #[error("GOAT block {number} ({hash}) is not attested on GoatHeaderStore: attest the GOAT block first (`gmrelay metis attest-goat --block {number}`)")]
    NotAttested {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Metis failed (a revert carries the decoded custom error).
    #[error(transparent)]
    Metis(#[from] MetisError),
}

impl SettleError {
    /// The name of the contract's custom error, when Metis reverted.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            SettleError::Metis(e) => e.revert().map(|r| r.name.as_str()),
            _ => None,
        }
    }
}

impl Classify for SettleError {
    fn class(&self) -> ErrorClass {
        match self {
            SettleError::Metis(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
}

/// Concatenated 32-byte nodes in internal byte order.
fn concat_nodes(nodes: &[bitcoin::TxMerkleNode]) -> Bytes {
    let mut out = Vec::with_capacity(nodes.len() * 32);
    for n in nodes {
        out.extend_from_slice(n.as_byte_array());
    }
    Bytes::from(out)
}

/// The light client's `TxProof` from a gmrelay proof and the header chain.
pub fn btc_inclusion(proof: &BtcProof, headers: Bytes) -> IBtcLightClient::TxProof {
    IBtcLightClient::TxProof {
        rawTx: Bytes::from(proof.tx.raw.clone()),
        txIndex: U256::from(proof.tx.index),
        merkleBranch: concat_nodes(&proof.tx.merkle_branch),
        coinbasePreimage: B256::from(sha256::Hash::hash(&proof.coinbase.raw).to_byte_array()),
        coinbaseBranch: concat_nodes(&proof.coinbase.merkle_branch),
        headers,
    }
}

/// PaymentSettlement's `BtcProof`.
pub fn btc_settlement_proof(
    proof: &BtcProof,
    headers: Bytes,
    output_index: u32,
) -> PaymentSettlement::BtcProof {
    PaymentSettlement::BtcProof {
        inclusion: btc_inclusion(proof, headers),
        outputIndex: U256::from(output_index),
    }
}

/// The block at `height` (which must be `hash` on the local best chain) and
/// its local best-chain descendants up to the first one BtcLightClient
/// stores on its best chain.
pub async fn btc_header_chain<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    hash: bitcoin::BlockHash,
    height: u32,
) -> Result<Bytes, SettleError> {
    let (tip, _) = store
        .btc_tip()?
        .ok_or_else(|| ProofError::Store("empty store".into()))?;
    if store.btc_best_hash(height)? != Some(hash) {
        return Err(ProofError::NotOnBestChain { hash, height }.into());
    }
    let (contract_height, _) = sink.btc_best().await?;
    let mut out = Vec::new();
    for h in height..=tip.min(contract_height as u32) {
        let Some(bh) = store.btc_best_hash(h)? else {
            break;
        };
        let v = store
            .btc_header(&bh)?
            .ok_or_else(|| ProofError::Store(format!("best-chain header {h} missing")))?;
        out.extend_from_slice(&serialize(v.header()));
        if sink.btc_stored_best_at(u64::from(h)).await? == internal(&bh) {
            return Ok(Bytes::from(out));
        }
    }
    Err(SettleError::NotRelayed {
        height,
        hash: hash.to_string(),
        contract_height,
    })
}

/// PaymentSettlement's `GoatProof` from a gmrelay GOAT proof.
pub fn goat_settlement_proof(
    proof: &GoatProof,
) -> Result<PaymentSettlement::GoatProof, SettleError> {
    let auth = proof
        .log_indexes
        .authorization_used
        .ok_or(SettleError::PlainTransfer)?;
    Ok(PaymentSettlement::GoatProof {
        blockHash: proof.block_hash,
        txIndex: U256::from(proof.tx_index),
        receipt: proof.receipt.clone(),
        proof: proof.proof_nodes.clone(),
        authorizationLogIndex: U256::from(auth),
        transferLogIndex: U256::from(proof.log_indexes.transfer),
    })
}

/// What [`settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleReport {
    /// The invoice.
    pub invoice: B256,
    /// `btc` or `goat`.
    pub rail: &'static str,
    /// The transaction.
    pub outcome: TxOutcome,
    /// BTC: the paying output; GOAT: the transaction index.
    pub source_index: u64,
    /// Headers carried (BTC).
    pub headers: usize,
}

/// Options of [`settle`].
#[derive(Debug, Clone, Copy)]
pub struct SettleOptions {
    /// The Bitcoin network of the store.
    pub network: BtcNetwork,
    /// Skip the local checks and let the contract judge (its custom error comes back decoded).
    pub skip_checks: bool,
}

async fn open_invoice<M: MetisSink>(
    sink: &M,
    id: B256,
    rail: u8,
    skip: bool,
) -> Result<Option<InvoiceView>, SettleError> {
    let inv = sink.invoice(id).await?;
    if skip {
        return Ok(inv);
    }
    let inv = inv.ok_or(SettleError::UnknownInvoice(id))?;
    if inv.rail != rail {
        return Err(SettleError::WrongRail {
            id,
            invoice: inv.rail_name(),
            proof: if rail == RAIL_BTC { "btc" } else { "goat" },
        });
    }
    if inv.status == 2 {
        return Err(SettleError::AlreadySettled(id));
    }
    let now = sink.now().await?;
    if now > inv.expiry {
        return Err(SettleError::Expired {
            id,
            expiry: inv.expiry,
            now,
        });
    }
    Ok(Some(inv))
}

/// Settles invoice `id` with a proof file: checks locally (unless
/// `skip_checks`), builds the contract's proof and submits it.
pub async fn settle<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    file: &ProofFile,
    id: B256,
    options: SettleOptions,
) -> Result<SettleReport, SettleError> {
    let span = info_span!("settle", invoice = %id, rail = file.body.chain());
    async move {
        match &file.body {
            ProofBody::Bitcoin(p) => settle_btc(store, sink, p, id, options).await,
            ProofBody::Goat(p) => settle_goat(sink, p, id, options).await,
        }
    }
    .instrument(span)
    .await
}

async fn settle_btc<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    p: &BtcProof,
    id: B256,
    options: SettleOptions,
) -> Result<SettleReport, SettleError> {
    let skip = options.skip_checks;
    let inv = open_invoice(sink, id, RAIL_BTC, skip).await?;
    let verified = verify_proof(p, store, options.network, 1)?;
    let output_index = match &inv {
        Some(inv) => {
            let script = ScriptBuf::from_bytes(inv.payee.to_vec());
            let amount = u64::try_from(inv.amount).unwrap_or(u64::MAX);
            match find_payment(verified.tx(), &script, amount, &id.0) {
                Ok(pay) => pay.vout,
                Err(source) if !skip => return Err(SettleError::NotPaid { id, source }),
                // Let the contract judge: name the first output to the script, or 0.
                Err(_) => verified
                    .tx()
                    .output
                    .iter()
                    .position(|o| o.script_pubkey == script)
                    .unwrap_or(0) as u32,
            }
        }
        None => 0,
    };
    let headers = btc_header_chain(store, sink, p.block_hash, p.block_height).await?;
    if !skip {
        let (contract_height, _) = sink.btc_best().await?;
        let have = (contract_height + 1).saturating_sub(u64::from(p.block_height));
        let need = sink.min_btc_confirmations().await?;
        if have < need {
            return Err(SettleError::TooFewConfirmations {
                height: p.block_height,
                have,
                need,
            });
        }
    }
    let n_headers = headers.len() / 80;
    let outcome = sink
        .settle_btc(id, btc_settlement_proof(p, headers, output_index))
        .await?;
    info!(gas = outcome.gas_used, tx = %outcome.tx_hash, "BTC invoice settled");
    Ok(SettleReport {
        invoice: id,
        rail: "btc",
        outcome,
        source_index: u64::from(output_index),
        headers: n_headers,
    })
}

async fn settle_goat<M: MetisSink>(
    sink: &M,
    p: &GoatProof,
    id: B256,
    options: SettleOptions,
) -> Result<SettleReport, SettleError> {
    let skip = options.skip_checks;
    let inv = open_invoice(sink, id, RAIL_GOAT, skip).await?;
    let proof = goat_settlement_proof(p)?;
    if !skip {
        if let Err(message) = goat_matches(inv.as_ref(), p, id) {
            return Err(SettleError::GoatNotPaid { id, message });
        }
        if !sink.goat_is_known(p.block_hash).await? {
            return Err(SettleError::NotAttested {
                number: p.block_number,
                hash: p.block_hash,
            });
        }
    }
    let outcome = sink.settle_goat(id, proof).await?;
    info!(gas = outcome.gas_used, tx = %outcome.tx_hash, "GOAT invoice settled");
    Ok(SettleReport {
        invoice: id,
        rail: "goat",
        outcome,
        source_index: p.tx_index,
        headers: 0,
    })
}

fn goat_matches(inv: Option<&InvoiceView>, p: &GoatProof, id: B256) -> Result<(), String> {
    let Some(inv) = inv else { return Ok(()) };
    let pay = &p.payment;
    if pay.nonce != Some(id) {
        return Err(format!(
            "its EIP-3009 nonce is {}, not the invoice id",
            pay.nonce
                .map(|n| n.to_string())
                .unwrap_or_else(|| "absent".into())
        ));
    }
    if inv.asset != pay.token {
        return Err(format!(
            "it pays token {}, the invoice asks {}",
            pay.token, inv.asset
        ));
    }
    let payee = Address::try_from(inv.payee.as_ref())
        .map_err(|_| "the invoice's payee is not 20 bytes".to_string())?;
    if payee != pay.to {
        return Err(format!(
            "it pays {}, the invoice's payee is {payee}",
            pay.to
        ));
    }
    if pay.value < inv.amount {
        return Err(format!(
            "it pays {}, the invoice asks {}",
            pay.value, inv.amount
        ));
    }
    Ok(())
}
