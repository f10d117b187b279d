//! Settlement: the contracts' structs built from gmrelay proof files and
//! invoices, local checks that explain what is missing before anything is
//! sent, and the runner behind `gmrelay metis settle`.
//!
//! Every settlement carries the invoice's terms and the merchant's signature
//! (empty for an invoice created on-chain). BTC: the block's 80-byte header
//! then its descendants as 48-byte compact records from the store up to the
//! first header BtcLightClient stores on its best chain (`storedBestAt`),
//! the coinbase proof (shared by a block's payments), and per payment the
//! raw transaction (legacy serialization), its index and branch. GOAT: the
//! block (hash, number, timestamp, receipts root) with the committee's
//! signatures inline unless GoatHeaderStore already stores it, a pool of
//! receipts-trie nodes shared by the block's payments, and per payment the
//! transaction index, its path into the pool and the AuthorizationUsed log
//! position (the receipt is read in place from the proof's leaf).

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use bitcoin::consensus::serialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::ScriptBuf;
use thiserror::Error;
use tracing::{info, info_span, Instrument};

use super::attest::{inline_signatures, AttestDomain, AttestError};
use super::bindings::payment_settlement::PaymentSettlement;
use super::invoice::{InvoiceError, SignedInvoice};
use super::relay::internal;
use super::sink::{GoatBlockFields, InvoiceState, MetisError, MetisSink, TxOutcome};
use crate::btc::network::BtcNetwork;
use crate::btc::proof::{find_payment, verify_proof, BtcProof, PaymentError, ProofError};
use crate::error::{Classify, ErrorClass};
use crate::goat::header::GoatHeader;
use crate::goat::proof::GoatProof;
use crate::proof::{ProofBody, ProofFile};
use crate::rail::Rail;
use crate::store::{Store, StoreError};

/// Why a settlement was not submitted (or failed).
#[derive(Debug, Error)]
pub enum SettleError {
    /// The terms or their signature are refused.
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    /// The terms differ from the ones stored on-chain.
    #[error("invoice {0} was created on-chain with other terms (PaymentSettlement would revert with TermsMismatch)")]
    TermsMismatch(B256),
    /// Another invoice with this id (other terms) is known.
    #[error("invoice {0} is already known with other terms (one ref, two signed invoices of the merchant): the first one stands")]
    Conflict(B256),
    /// Proof and invoice are for different rails.
    #[error("invoice {id} is a {invoice} invoice, the proof is a {proof} payment")]
    WrongRail {
        /// The invoice.
        id: B256,
        /// Its rail.
        invoice: Rail,
        /// The proof's rail.
        proof: Rail,
    },
    /// Already settled.
    #[error("invoice {0} is already settled")]
    AlreadySettled(B256),
    /// The payment was mined after the invoice's expiry.
    #[error("invoice {id} expired at {expiry}; its payment was mined at {paid_at}")]
    Expired {
        /// The invoice.
        id: B256,
        /// Its expiry.
        expiry: u64,
        /// The payment's block time.
        paid_at: u64,
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
    #[error("the GOAT proof is a plain ERC-20 transfer: PaymentSettlement settles EIP-3009 payments (the nonce is the invoice's ref) only")]
    PlainTransfer,
    /// The GOAT proof's header does not decode.
    #[error("GOAT proof for block {number}: header_rlp does not decode: {message}")]
    GoatHeader {
        /// Block number.
        number: u64,
        /// Why.
        message: String,
    },
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
    /// The GOAT block is neither attested on-chain nor signable here.
    #[error("GOAT block {number} ({hash}) is not attested and this relayer holds no committee keys to attest it inline: set GMRELAY_ATTESTER_KEYS (or `gmrelay metis attest-goat --block {number}`)")]
    NotAttested {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// Attesting the block inline failed (boxed: it is large).
    #[error(transparent)]
    Attest(Box<AttestError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Metis failed (a revert carries the decoded custom error).
    #[error(transparent)]
    Metis(#[from] MetisError),
}

impl From<AttestError> for SettleError {
    fn from(e: AttestError) -> Self {
        SettleError::Attest(Box::new(e))
    }
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
            SettleError::Attest(e) => e.class(),
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

/// The 48-byte compact form of an 80-byte header: everything but the
/// previous block's hash (the contract has it).
pub fn compact_header(header: &[u8; 80]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out[..4].copy_from_slice(&header[..4]);
    out[4..].copy_from_slice(&header[36..]);
    out
}

/// PaymentSettlement's `BtcBlock` from a gmrelay proof and its header chain
/// (see [`btc_header_chain`]).
pub fn btc_block(proof: &BtcProof, headers: Bytes) -> PaymentSettlement::BtcBlock {
    PaymentSettlement::BtcBlock {
        headers,
        coinbasePreimage: B256::from(sha256::Hash::hash(&proof.coinbase.raw).to_byte_array()),
        coinbaseBranch: concat_nodes(&proof.coinbase.merkle_branch),
    }
}

/// PaymentSettlement's `BtcPayment`: the invoice and the transaction's inclusion.
pub fn btc_payment(invoice: &SignedInvoice, proof: &BtcProof) -> PaymentSettlement::BtcPayment {
    PaymentSettlement::BtcPayment {
        terms: invoice.terms.to_sol(),
        signature: invoice.signature.clone(),
        rawTx: Bytes::from(proof.tx.raw.clone()),
        txIndex: U256::from(proof.tx.index),
        merkleBranch: concat_nodes(&proof.tx.merkle_branch),
    }
}

/// The block at `height` (which must be `hash` on the local best chain) as
/// 80 bytes, then its local best-chain descendants as 48-byte compact
/// records up to the first one BtcLightClient stores on its best chain.
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
        let raw: [u8; 80] = serialize(v.header())
            .try_into()
            .expect("a header serializes to 80 bytes");
        if h == height {
            out.extend_from_slice(&raw);
        } else {
            out.extend_from_slice(&compact_header(&raw));
        }
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

/// The attested fields of the proof's GOAT block (decoded from its header).
pub fn goat_fields(proof: &GoatProof) -> Result<GoatBlockFields, SettleError> {
    let header =
        GoatHeader::decode_rlp(&proof.header_rlp).map_err(|e| SettleError::GoatHeader {
            number: proof.block_number,
            message: e.to_string(),
        })?;
    Ok(GoatBlockFields {
        hash: proof.block_hash,
        number: header.number,
        timestamp: header.timestamp,
        receipts_root: header.receipts_root,
    })
}

/// The signatures a GOAT block's settlement carries: none when
/// GoatHeaderStore already stores its attestation, else a quorum of
/// `attesters` (inline); without attesters, [`SettleError::NotAttested`].
pub async fn block_attestation<M: MetisSink>(
    sink: &M,
    domain: AttestDomain,
    goat_chain_id: u64,
    fields: &GoatBlockFields,
    attesters: &[PrivateKeySigner],
) -> Result<Bytes, SettleError> {
    if sink.goat_is_known(fields.hash).await? {
        return Ok(Bytes::new());
    }
    if attesters.is_empty() {
        return Err(SettleError::NotAttested {
            number: fields.number,
            hash: fields.hash,
        });
    }
    Ok(inline_signatures(sink, domain, goat_chain_id, fields, attesters).await?)
}

/// PaymentSettlement's `GoatBlock` with inline `signatures` (empty: attested on-chain).
pub fn goat_block(fields: &GoatBlockFields, signatures: Bytes) -> PaymentSettlement::GoatBlock {
    PaymentSettlement::GoatBlock {
        blockHash: fields.hash,
        number: U256::from(fields.number),
        timestamp: U256::from(fields.timestamp),
        receiptsRoot: fields.receipts_root,
        signatures,
    }
}

/// The GOAT payments of one block as a `GoatGroup`: the trie nodes their
/// proofs share are sent once (a pool), each payment naming its nodes by
/// pool index; a single payment sends its proof as the pool.
pub fn goat_group(
    block: PaymentSettlement::GoatBlock,
    items: &[(&SignedInvoice, &GoatProof)],
) -> Result<PaymentSettlement::GoatGroup, SettleError> {
    let mut pool: Vec<Bytes> = Vec::new();
    let mut payments = Vec::with_capacity(items.len());
    let single = items.len() == 1;
    for (invoice, proof) in items {
        let auth = proof
            .log_indexes
            .authorization_used
            .ok_or(SettleError::PlainTransfer)?;
        let mut path = Vec::with_capacity(proof.proof_nodes.len());
        for node in &proof.proof_nodes {
            let at = match pool.iter().position(|n| n == node) {
                Some(i) => i,
                None => {
                    pool.push(node.clone());
                    pool.len() - 1
                }
            };
            path.push(u8::try_from(at).map_err(|_| SettleError::GoatNotPaid {
                id: invoice.id(),
                message: "more than 256 distinct trie nodes in one block's batch".into(),
            })?);
        }
        payments.push(PaymentSettlement::GoatPayment {
            terms: invoice.terms.to_sol(),
            signature: invoice.signature.clone(),
            txIndex: U256::from(proof.tx_index),
            path: if single {
                Bytes::new()
            } else {
                Bytes::from(path)
            },
            logIndex: U256::from(auth),
        });
    }
    Ok(PaymentSettlement::GoatGroup {
        blk: block,
        nodes: pool,
        payments,
    })
}

/// What [`settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleReport {
    /// The invoice.
    pub invoice: B256,
    /// The rail.
    pub rail: Rail,
    /// The transaction.
    pub outcome: TxOutcome,
    /// BTC: the first output paying the invoice; GOAT: the transaction index.
    pub source_index: u64,
    /// Headers carried (BTC: the block's and its compact descendants').
    pub headers: usize,
    /// GOAT: whether the committee's signatures went inline.
    pub inline_attestation: bool,
}

/// Options of [`settle`].
#[derive(Debug, Clone, Copy)]
pub struct SettleOptions<'a> {
    /// The Bitcoin network of the store.
    pub network: BtcNetwork,
    /// Skip the local checks and let the contract judge (its custom error comes back decoded).
    pub skip_checks: bool,
    /// Committee keys this relayer holds, to attest GOAT blocks inline.
    pub attesters: &'a [PrivateKeySigner],
    /// GoatHeaderStore's address (the attestation domain).
    pub goat_header_store: Address,
}

/// Checks an invoice before its settlement: not settled, and either stored
/// on-chain with exactly these terms or signed by its (EOA) merchant.
pub async fn check_invoice<M: MetisSink>(
    sink: &M,
    invoice: &SignedInvoice,
    rail: Rail,
) -> Result<(), SettleError> {
    let id = invoice.id();
    if invoice.terms.rail != rail {
        return Err(SettleError::WrongRail {
            id,
            invoice: invoice.terms.rail,
            proof: rail,
        });
    }
    match sink.invoice_state(id).await? {
        s if s.is_settled() => Err(SettleError::AlreadySettled(id)),
        InvoiceState::Open(hash) if hash != invoice.terms.struct_hash() => {
            Err(SettleError::TermsMismatch(id))
        }
        InvoiceState::Open(_) => Ok(()),
        _ => Ok(invoice.verify(sink.chain_id(), sink.settlement_address())?),
    }
}

/// Settles `invoice` with a proof file: checks locally (unless
/// `skip_checks`), builds the contract's structs and submits them.
pub async fn settle<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    file: &ProofFile,
    invoice: &SignedInvoice,
    options: SettleOptions<'_>,
) -> Result<SettleReport, SettleError> {
    let span = info_span!("settle", invoice = %invoice.id(), rail = file.body.chain());
    async move {
        match &file.body {
            ProofBody::Bitcoin(p) => settle_btc(store, sink, p, invoice, options).await,
            ProofBody::Goat(p) => settle_goat(sink, p, invoice, options).await,
        }
    }
    .instrument(span)
    .await
}

/// Local checks of a Bitcoin payment against the invoice and the store;
/// returns the first paying output.
pub fn check_btc_payment<S: Store>(
    store: &S,
    p: &BtcProof,
    invoice: &SignedInvoice,
    network: BtcNetwork,
) -> Result<u32, SettleError> {
    let id = invoice.id();
    let verified = verify_proof(p, store, network, 1)?;
    let script = ScriptBuf::from_bytes(invoice.terms.payee.to_vec());
    let amount = u64::try_from(invoice.terms.amount).unwrap_or(u64::MAX);
    let pay = find_payment(verified.tx(), &script, amount, &invoice.terms.reference.0)
        .map_err(|source| SettleError::NotPaid { id, source })?;
    // verify_proof checked the header is 80 bytes.
    let time = u64::from(u32::from_le_bytes(
        p.header[68..72].try_into().expect("an 80-byte header"),
    ));
    if time > invoice.terms.expiry {
        return Err(SettleError::Expired {
            id,
            expiry: invoice.terms.expiry,
            paid_at: time,
        });
    }
    Ok(pay.vout)
}

async fn settle_btc<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    p: &BtcProof,
    invoice: &SignedInvoice,
    options: SettleOptions<'_>,
) -> Result<SettleReport, SettleError> {
    let id = invoice.id();
    let mut output_index = 0;
    if !options.skip_checks {
        check_invoice(sink, invoice, Rail::Btc).await?;
        output_index = check_btc_payment(store, p, invoice, options.network)?;
    }
    let headers = btc_header_chain(store, sink, p.block_hash, p.block_height).await?;
    if !options.skip_checks {
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
    let n_headers = 1 + headers.len().saturating_sub(80) / 48;
    let group = PaymentSettlement::BtcGroup {
        blk: btc_block(p, headers),
        payments: vec![btc_payment(invoice, p)],
    };
    let outcome = sink
        .settle_btc(vec![group], &format!("invoice {id}"))
        .await?;
    info!(gas = outcome.gas_used, tx = %outcome.tx_hash, "BTC invoice settled");
    Ok(SettleReport {
        invoice: id,
        rail: Rail::Btc,
        outcome,
        source_index: u64::from(output_index),
        headers: n_headers,
        inline_attestation: false,
    })
}

/// Local checks of a GOAT payment against the invoice (ref, token, payee,
/// amount, expiry by the block's timestamp).
pub fn check_goat_payment(
    p: &GoatProof,
    invoice: &SignedInvoice,
    fields: &GoatBlockFields,
) -> Result<(), SettleError> {
    let id = invoice.id();
    let t = &invoice.terms;
    let pay = &p.payment;
    let fail = |message: String| Err(SettleError::GoatNotPaid { id, message });
    if p.log_indexes.authorization_used.is_none() {
        return Err(SettleError::PlainTransfer);
    }
    if pay.nonce != Some(t.reference) {
        return fail(format!(
            "its EIP-3009 nonce is {}, not the invoice's ref {}",
            pay.nonce
                .map(|n| n.to_string())
                .unwrap_or_else(|| "absent".into()),
            t.reference
        ));
    }
    if t.asset != pay.token {
        return fail(format!(
            "it pays token {}, the invoice asks {}",
            pay.token, t.asset
        ));
    }
    let payee = Address::try_from(t.payee.as_ref()).map_err(|_| SettleError::GoatNotPaid {
        id,
        message: "the invoice's payee is not 20 bytes".into(),
    })?;
    if payee != pay.to {
        return fail(format!(
            "it pays {}, the invoice's payee is {payee}",
            pay.to
        ));
    }
    if pay.value < t.amount {
        return fail(format!(
            "it pays {}, the invoice asks {}",
            pay.value, t.amount
        ));
    }
    if fields.timestamp > t.expiry {
        return Err(SettleError::Expired {
            id,
            expiry: t.expiry,
            paid_at: fields.timestamp,
        });
    }
    Ok(())
}

async fn settle_goat<M: MetisSink>(
    sink: &M,
    p: &GoatProof,
    invoice: &SignedInvoice,
    options: SettleOptions<'_>,
) -> Result<SettleReport, SettleError> {
    let id = invoice.id();
    let fields = goat_fields(p)?;
    if !options.skip_checks {
        check_invoice(sink, invoice, Rail::Goat).await?;
        check_goat_payment(p, invoice, &fields)?;
    }
    let domain = AttestDomain {
        metis_chain_id: sink.chain_id(),
        store: options.goat_header_store,
    };
    let signatures =
        block_attestation(sink, domain, p.chain_id, &fields, options.attesters).await?;
    let inline = !signatures.is_empty();
    let group = goat_group(goat_block(&fields, signatures), &[(invoice, p)])?;
    let outcome = sink
        .settle_goat(vec![group], &format!("invoice {id}"))
        .await?;
    info!(gas = outcome.gas_used, tx = %outcome.tx_hash, inline, "GOAT invoice settled");
    Ok(SettleReport {
        invoice: id,
        rail: Rail::Goat,
        outcome,
        source_index: p.tx_index,
        headers: 0,
        inline_attestation: inline,
    })
}
