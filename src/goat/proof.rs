//! GOAT payment proofs: a receipt's Merkle-Patricia branch to the
//! receiptsRoot of a header on the stored GOAT chain, and the two logs that
//! make it a payment.
//!
//! Verification needs only the proof and the stored header chain:
//!
//! 1. `header_rlp` decodes strictly and hashes to `block_hash`, at `block_number`;
//! 2. the block is on the stored best chain, and finalized (or has the
//!    required confirmations);
//! 3. the proof nodes lead from the header's receiptsRoot, under the key
//!    `rlp(tx_index)`, to exactly `receipt`;
//! 4. `receipt` decodes strictly (EIP-2718) and has status 1;
//! 5. the logs at `log_indexes` are `AuthorizationUsed` and `Transfer` from
//!    one contract, the transfer spends the authorizer's tokens, and they
//!    match the `payment` summary the proof states.
//!
//! Only [`verify_goat_proof`] makes a [`VerifiedGoatProof`]; its replay key
//! is (block hash, transaction index, log index of the Transfer).

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::header::{GoatHeader, HeaderError};
use super::payment::{
    check_invoice, payment_at, FoundPayment, Invoice, LogIndexes, PaymentError, PaymentSummary,
};
use super::receipts::{verify_receipt_proof, BlockReceipts, GoatReceipt, ReceiptError};
use crate::store::{Store, StoreError};

/// A GOAT payment proof, as written to and read from a proof file (the
/// `"chain": "goat"` body of [`crate::proof::ProofFile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoatProof {
    /// The EVM chain id (2345 on GOAT mainnet, 48816 on testnet3).
    pub chain_id: u64,
    /// The block number.
    pub block_number: u64,
    /// The block hash.
    pub block_hash: B256,
    /// `rlp(header)`, hex.
    pub header_rlp: Bytes,
    /// The transaction's index in the block (the trie key is `rlp(tx_index)`).
    pub tx_index: u64,
    /// The EIP-2718 encoded receipt, hex.
    pub receipt: Bytes,
    /// Receipts-trie nodes from the root down, hex.
    pub proof_nodes: Vec<Bytes>,
    /// Receipt-local indexes of the payment's logs.
    pub log_indexes: LogIndexes,
    /// What the payment moved (checked against the logs).
    pub payment: PaymentSummary,
}

/// How final a block must be for its proof to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// At or below the stored finalized height.
    Finalized,
    /// At least this many confirmations (the block itself counts as one).
    Confirmations(u64),
}

/// Why a GOAT proof was rejected.
#[derive(Debug, Error)]
pub enum GoatProofError {
    /// The proof is for another chain.
    #[error("proof is for chain id {found}, gmrelay follows GOAT chain id {expected}")]
    WrongChain {
        /// The proof's chain id.
        found: u64,
        /// The configured (and stored) one.
        expected: u64,
    },
    /// The store has no GOAT chain.
    #[error("the store holds no GOAT chain: run `gmrelay goat sync` first")]
    NoChain,
    /// The header bytes do not decode.
    #[error("header_rlp: {0}")]
    Header(#[from] HeaderError),
    /// The header hashes to another hash.
    #[error("header_rlp hashes to {computed}, the proof says block {claimed}")]
    HeaderHashMismatch {
        /// keccak256(header_rlp).
        computed: B256,
        /// The proof's block_hash.
        claimed: B256,
    },
    /// The header's number differs from the proof's.
    #[error("block {hash}: the header's number is {header}, the proof says {claimed}")]
    NumberMismatch {
        /// The block.
        hash: B256,
        /// In the header.
        header: u64,
        /// In the proof.
        claimed: u64,
    },
    /// The block is not on the stored best chain.
    #[error("block {hash} at height {number} is not on the GOAT chain gmrelay follows (unknown, or reorged out); sync first")]
    NotOnBestChain {
        /// The block.
        hash: B256,
        /// Its number.
        number: u64,
    },
    /// The block is not final yet.
    #[error("block {hash} at height {number} is not finalized yet (finalized height {finalized})")]
    NotFinalized {
        /// The block.
        hash: B256,
        /// Its number.
        number: u64,
        /// The stored finalized height.
        finalized: u64,
    },
    /// A plain transfer (no EIP-3009 nonce) in a block that is not final:
    /// its only identity is its position, which a reorg can change.
    #[error("block {hash} at height {number}: a plain transfer counts only once final (finalized height {finalized}); its only identity is its position, which a reorg can move")]
    PlainTransferNotFinal {
        /// The block.
        hash: B256,
        /// Its number.
        number: u64,
        /// The stored finalized height.
        finalized: u64,
    },
    /// Not enough confirmations.
    #[error(
        "block {hash} at height {number} has {confirmations} confirmations, {required} required"
    )]
    TooFewConfirmations {
        /// The block.
        hash: B256,
        /// Its number.
        number: u64,
        /// Confirmations now.
        confirmations: u64,
        /// Required.
        required: u64,
    },
    /// The receipt proof or the receipt bytes are bad.
    #[error("block {number}: {source}")]
    Receipt {
        /// The block number.
        number: u64,
        /// The failure.
        #[source]
        source: Box<ReceiptError>,
    },
    /// The transaction reverted.
    #[error("block {number}, transaction {tx_index}: the receipt's status is not 1 (the transaction failed)")]
    Failed {
        /// The block number.
        number: u64,
        /// The transaction index.
        tx_index: u64,
    },
    /// The logs are not the payment claimed.
    #[error("block {number}, transaction {tx_index}: {source}")]
    Payment {
        /// The block number.
        number: u64,
        /// The transaction index.
        tx_index: u64,
        /// The failure.
        #[source]
        source: PaymentError,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a proof shows on its own (without the stored chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandaloneCheck {
    /// The decoded header.
    pub header: GoatHeader,
    /// The decoded receipt.
    pub receipt: GoatReceipt,
    /// The payment, re-derived from the logs.
    pub payment: PaymentSummary,
}

/// The replay key of a verified payment: something a reorg cannot change.
/// An EIP-3009 payment is keyed by its authorization (token, authorizer,
/// nonce), which the token itself lets be used once, in whatever block the
/// transaction lands. A plain ERC-20 transfer carries no such identity in its
/// receipt, so it is keyed by its position and only ever accepted once final
/// (see [`GoatProofError::PlainTransferNotFinal`]), where positions no longer move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoatReplayKey {
    /// An EIP-3009 `transferWithAuthorization` / `receiveWithAuthorization`.
    Authorization {
        /// The token contract.
        token: Address,
        /// The authorizer (payer).
        authorizer: Address,
        /// The EIP-3009 nonce.
        nonce: B256,
    },
    /// A plain transfer in a finalized block.
    FinalPosition {
        /// The block hash.
        block_hash: B256,
        /// The transaction index.
        tx_index: u64,
        /// The Transfer log's receipt-local index.
        log_index: u64,
    },
}

impl std::fmt::Display for GoatReplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoatReplayKey::Authorization {
                token,
                authorizer,
                nonce,
            } => write!(f, "eip3009:{token}:{authorizer}:{nonce}"),
            GoatReplayKey::FinalPosition {
                block_hash,
                tx_index,
                log_index,
            } => write!(f, "final:{block_hash}:{tx_index}:{log_index}"),
        }
    }
}

/// A proof that passed every check. Only [`verify_goat_proof`] makes these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGoatProof {
    chain_id: u64,
    block_hash: B256,
    block_number: u64,
    tx_index: u64,
    confirmations: u64,
    finalized: bool,
    log_indexes: LogIndexes,
    payment: PaymentSummary,
}

impl VerifiedGoatProof {
    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }
    /// The block hash.
    pub fn block_hash(&self) -> B256 {
        self.block_hash
    }
    /// The block number.
    pub fn block_number(&self) -> u64 {
        self.block_number
    }
    /// The transaction index.
    pub fn tx_index(&self) -> u64 {
        self.tx_index
    }
    /// Confirmations at verification time.
    pub fn confirmations(&self) -> u64 {
        self.confirmations
    }
    /// Whether the block is at or below the stored finalized height.
    pub fn finalized(&self) -> bool {
        self.finalized
    }
    /// Where the logs are.
    pub fn log_indexes(&self) -> LogIndexes {
        self.log_indexes
    }
    /// The verified payment.
    pub fn payment(&self) -> &PaymentSummary {
        &self.payment
    }
    /// The replay key (see [`GoatReplayKey`]).
    pub fn replay_key(&self) -> GoatReplayKey {
        match self.payment.nonce {
            Some(nonce) => GoatReplayKey::Authorization {
                token: self.payment.token,
                authorizer: self.payment.from,
                nonce,
            },
            None => GoatReplayKey::FinalPosition {
                block_hash: self.block_hash,
                tx_index: self.tx_index,
                log_index: self.log_indexes.transfer,
            },
        }
    }
    /// Checks the payment against an invoice.
    pub fn check_invoice(&self, invoice: &Invoice) -> Result<(), PaymentError> {
        check_invoice(&self.payment, invoice)
    }
    /// Checks the payment against the configured tokens and payees.
    pub fn check_policy(&self, policy: &super::payment::PaymentPolicy) -> Result<(), PaymentError> {
        super::payment::check_policy(&self.payment, policy)
    }
}

/// Builds a proof of `found` from a block whose receipts rebuilt its header's root.
pub fn build_goat_proof(
    chain_id: u64,
    header: &GoatHeader,
    block: &BlockReceipts,
    found: &FoundPayment,
) -> Result<GoatProof, ReceiptError> {
    let (receipt, proof_nodes) = block.prove(found.tx_index)?;
    Ok(GoatProof {
        chain_id,
        block_number: header.number,
        block_hash: block.hash(),
        header_rlp: Bytes::from(header.rlp()),
        tx_index: found.tx_index,
        receipt,
        proof_nodes,
        log_indexes: found.log_indexes,
        payment: found.summary.clone(),
    })
}

/// Checks everything a proof shows on its own: the header hash, the
/// receipt's inclusion, its status and the payment logs.
pub fn verify_standalone(
    p: &GoatProof,
    allow_plain: bool,
) -> Result<StandaloneCheck, GoatProofError> {
    let header = GoatHeader::decode_rlp(&p.header_rlp)?;
    let computed = keccak256(&p.header_rlp);
    if computed != p.block_hash {
        return Err(GoatProofError::HeaderHashMismatch {
            computed,
            claimed: p.block_hash,
        });
    }
    if header.number != p.block_number {
        return Err(GoatProofError::NumberMismatch {
            hash: p.block_hash,
            header: header.number,
            claimed: p.block_number,
        });
    }
    let number = header.number;
    let receipt_err = |source| GoatProofError::Receipt {
        number,
        source: Box::new(source),
    };
    verify_receipt_proof(header.receipts_root, p.tx_index, &p.receipt, &p.proof_nodes)
        .map_err(receipt_err)?;
    let receipt = GoatReceipt::decode_2718(&p.receipt).map_err(receipt_err)?;
    if !receipt.succeeded() {
        return Err(GoatProofError::Failed {
            number,
            tx_index: p.tx_index,
        });
    }
    let payment_err = |source| GoatProofError::Payment {
        number,
        tx_index: p.tx_index,
        source,
    };
    let payment = payment_at(&receipt, &p.log_indexes, allow_plain).map_err(payment_err)?;
    if payment != p.payment {
        return Err(payment_err(PaymentError::SummaryMismatch {
            found: Box::new(payment),
            claimed: Box::new(p.payment.clone()),
        }));
    }
    Ok(StandaloneCheck {
        header,
        receipt,
        payment,
    })
}

/// Verifies a proof against the stored GOAT chain.
pub fn verify_goat_proof<S: Store>(
    p: &GoatProof,
    store: &S,
    chain_id: u64,
    acceptance: Acceptance,
    allow_plain: bool,
) -> Result<VerifiedGoatProof, GoatProofError> {
    if p.chain_id != chain_id {
        return Err(GoatProofError::WrongChain {
            found: p.chain_id,
            expected: chain_id,
        });
    }
    let (stored_chain, _, _) = store.goat_origin()?.ok_or(GoatProofError::NoChain)?;
    if stored_chain != chain_id {
        return Err(GoatProofError::WrongChain {
            found: stored_chain,
            expected: chain_id,
        });
    }
    let check = verify_standalone(p, allow_plain)?;
    let number = check.header.number;
    if store.goat_best_hash(number)? != Some(p.block_hash) {
        return Err(GoatProofError::NotOnBestChain {
            hash: p.block_hash,
            number,
        });
    }
    let (tip, _) = store.goat_tip()?.ok_or(GoatProofError::NoChain)?;
    let (finalized, _) = store.goat_finalized()?.ok_or(GoatProofError::NoChain)?;
    let confirmations = tip.saturating_sub(number) + 1;
    let is_final = number <= finalized;
    match acceptance {
        Acceptance::Finalized if !is_final => {
            return Err(GoatProofError::NotFinalized {
                hash: p.block_hash,
                number,
                finalized,
            })
        }
        Acceptance::Confirmations(required) if confirmations < required => {
            return Err(GoatProofError::TooFewConfirmations {
                hash: p.block_hash,
                number,
                confirmations,
                required,
            })
        }
        _ => {}
    }
    if check.payment.nonce.is_none() && !is_final {
        return Err(GoatProofError::PlainTransferNotFinal {
            hash: p.block_hash,
            number,
            finalized,
        });
    }
    Ok(VerifiedGoatProof {
        chain_id,
        block_hash: p.block_hash,
        block_number: number,
        tx_index: p.tx_index,
        confirmations,
        finalized: is_final,
        log_indexes: p.log_indexes,
        payment: check.payment,
    })
}

/// Parses an amount in base units (decimal, or 0x-hex).
pub fn parse_amount(s: &str) -> Result<U256, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => U256::from_str_radix(h, 16),
        None => U256::from_str_radix(s, 10),
    };
    r.map_err(|e| format!("amount `{s}`: {e}"))
}

/// Parses an address (0x-hex, any case).
pub fn parse_address(s: &str) -> Result<Address, String> {
    s.parse::<Address>()
        .map_err(|e| format!("address `{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goat::chain::{synthetic_headers, Finality, GoatChain, ValidatedGoatHeader};
    use crate::goat::payment::{
        find_payments, PaymentPolicy, AUTHORIZATION_USED_TOPIC, TRANSFER_TOPIC,
    };
    use crate::goat::receipts::{receipts_root_and_proof, ReceiptLog};
    use crate::store::MemStore;

    const TOKEN: Address = Address::repeat_byte(0x70);
    const PAYER: Address = Address::repeat_byte(0x01);
    const PAYEE: Address = Address::repeat_byte(0x02);
    const NONCE: B256 = B256::repeat_byte(0xaa);

    fn paying_receipt() -> GoatReceipt {
        let mut r = crate::goat::receipts::tests::synthetic(2, 9, 0);
        r.outcome = crate::goat::receipts::ReceiptOutcome::Status(true);
        r.logs = vec![
            ReceiptLog {
                address: TOKEN,
                topics: vec![AUTHORIZATION_USED_TOPIC, PAYER.into_word(), NONCE],
                data: Bytes::new(),
            },
            ReceiptLog {
                address: TOKEN,
                topics: vec![TRANSFER_TOPIC, PAYER.into_word(), PAYEE.into_word()],
                data: Bytes::from(U256::from(1_000_000u64).to_be_bytes::<32>().to_vec()),
            },
        ];
        r
    }

    /// A chain of 5 headers over a checkpoint, block 102 carrying a payment
    /// in transaction 7 of 40 (one of them GOAT type 0x60).
    fn fixture() -> (MemStore, GoatProof) {
        let store = MemStore::default();
        let mut g = crate::goat::header::tests::goat_like_header();
        g.number = 100;
        let cp = ValidatedGoatHeader::checkpoint(g.clone(), g.hash_slow()).unwrap();
        let mut chain = GoatChain::from_checkpoint(cp, Finality::Depth(2));
        store
            .goat_init(2345, (100, g.hash_slow()), &chain.anchor_changes())
            .unwrap();
        let mut receipts: Vec<GoatReceipt> = (0..40)
            .map(|i| crate::goat::receipts::tests::synthetic([0, 1, 2][i % 3], i as u64, 1))
            .collect();
        receipts[0] = crate::goat::receipts::tests::goat_0x60_receipt();
        receipts[7] = paying_receipt();
        let enc: Vec<Vec<u8>> = receipts.iter().map(GoatReceipt::encode_2718).collect();
        let (root, _) = receipts_root_and_proof(&enc, None);
        let mut hs = synthetic_headers(&g, 5, 0);
        hs[1].receipts_root = root;
        // Re-link after changing block 102.
        let tail = synthetic_headers(&hs[1], 3, 0);
        hs.truncate(2);
        hs.extend(tail);
        let out = chain.connect(&hs).unwrap();
        store.goat_apply(&out.changes).unwrap();
        let block =
            BlockReceipts::from_receipts(102, hs[1].hash_slow(), root, receipts.clone()).unwrap();
        let policy = PaymentPolicy {
            tokens: vec![TOKEN],
            payees: vec![PAYEE],
            allow_plain_transfers: false,
        };
        let found = find_payments(&receipts[7], 7, &policy);
        assert_eq!(found.len(), 1);
        let proof = build_goat_proof(2345, &hs[1], &block, &found[0]).unwrap();
        (store, proof)
    }

    #[test]
    fn proof_verifies_and_exposes_replay_key() {
        let (store, proof) = fixture();
        let v = verify_goat_proof(&proof, &store, 2345, Acceptance::Finalized, false).unwrap();
        assert_eq!(v.block_number(), 102);
        assert_eq!(v.confirmations(), 4);
        assert!(v.finalized());
        // Keyed by the authorization, not by where it landed: a reorg that
        // moves the transaction to another block keeps the key.
        assert_eq!(
            v.replay_key(),
            GoatReplayKey::Authorization {
                token: TOKEN,
                authorizer: v.payment().from,
                nonce: NONCE,
            }
        );
        v.check_invoice(&Invoice {
            token: Some(TOKEN),
            payee: Some(PAYEE),
            min_amount: Some(U256::from(1_000_000u64)),
            nonce: Some(NONCE),
        })
        .unwrap();
        assert!(matches!(
            verify_goat_proof(&proof, &store, 48816, Acceptance::Finalized, false),
            Err(GoatProofError::WrongChain { .. })
        ));
        assert!(matches!(
            verify_goat_proof(&proof, &store, 2345, Acceptance::Confirmations(5), false),
            Err(GoatProofError::TooFewConfirmations { .. })
        ));
    }

    #[test]
    fn proof_file_round_trips() {
        let (_, proof) = fixture();
        let file = crate::proof::ProofFile::goat(proof.clone());
        let text = serde_json::to_string_pretty(&file).unwrap();
        assert!(text.contains("\"chain\": \"goat\""));
        let back = crate::proof::ProofFile::parse(&text, "p.json").unwrap();
        assert_eq!(back, file);
    }

    #[test]
    fn every_tampered_byte_fails() {
        let (store, proof) = fixture();
        let check =
            |p: &GoatProof| verify_goat_proof(p, &store, 2345, Acceptance::Finalized, false);
        for i in 0..proof.receipt.len() {
            let mut p = proof.clone();
            let mut b = p.receipt.to_vec();
            b[i] ^= 0x01;
            p.receipt = b.into();
            assert!(check(&p).is_err(), "receipt byte {i}");
        }
        for (n, node) in proof.proof_nodes.iter().enumerate() {
            for i in 0..node.len() {
                let mut p = proof.clone();
                let mut b = node.to_vec();
                b[i] ^= 0x01;
                p.proof_nodes[n] = b.into();
                assert!(check(&p).is_err(), "node {n} byte {i}");
            }
        }
        for i in 0..proof.header_rlp.len() {
            let mut p = proof.clone();
            let mut b = p.header_rlp.to_vec();
            b[i] ^= 0x01;
            p.header_rlp = b.into();
            assert!(check(&p).is_err(), "header byte {i}");
        }
        let mut p = proof.clone();
        p.tx_index = 8;
        assert!(check(&p).is_err());
        let mut p = proof.clone();
        p.payment.value += U256::from(1);
        assert!(matches!(check(&p), Err(GoatProofError::Payment { .. })));
        let mut p = proof;
        p.log_indexes.authorization_used = None;
        assert!(check(&p).is_err());
    }
}

/// Why a payment could not be proven.
#[derive(Debug, Error)]
pub enum ProvePaymentError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] super::source::GoatSourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The receipts do not rebuild the header's root, or do not decode.
    #[error(transparent)]
    Receipts(#[from] ReceiptError),
    /// No receipt for the transaction.
    #[error("{endpoint}: transaction {tx} is not mined (no receipt)")]
    NotMined {
        /// The node.
        endpoint: String,
        /// The transaction.
        tx: B256,
    },
    /// The block is not in the store.
    #[error("block {number} ({hash}) is not in the store: run `gmrelay goat sync` first")]
    NotSynced {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// The block was reorged out.
    #[error("block {number} ({hash}) is not on the GOAT chain gmrelay follows (reorged out)")]
    ReorgedOut {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// The node's receipt list misses the transaction.
    #[error("block {number} has no transaction {tx_index}")]
    NoTransaction {
        /// Block number.
        number: u64,
        /// Index.
        tx_index: u64,
    },
    /// The transaction pays nothing the policy counts.
    #[error("transaction {tx} (block {number}, index {tx_index}) makes no payment in the configured tokens{to_payees} (receipt status {status})")]
    NoPayment {
        /// The transaction.
        tx: B256,
        /// Block number.
        number: u64,
        /// Index.
        tx_index: u64,
        /// " to the configured payees" when payees are configured.
        to_payees: &'static str,
        /// `1` or `not 1`.
        status: &'static str,
    },
}

/// Proves the first payment of transaction `tx` that `policy` counts: the
/// block must be stored on the best chain, every receipt of the block is
/// fetched and must rebuild the stored header's `receiptsRoot`.
pub async fn prove_payment<S: super::source::GoatSource, St: Store>(
    source: &S,
    store: &St,
    chain_id: u64,
    tx: B256,
    policy: &super::payment::PaymentPolicy,
) -> Result<GoatProof, ProvePaymentError> {
    let loc = source
        .tx_location(tx)
        .await?
        .ok_or_else(|| ProvePaymentError::NotMined {
            endpoint: source.endpoint(),
            tx,
        })?;
    let (number, hash) = (loc.block_number, loc.block_hash);
    let stored = store
        .goat_header(&hash)?
        .ok_or(ProvePaymentError::NotSynced { number, hash })?;
    if store.goat_best_hash(number)? != Some(hash) {
        return Err(ProvePaymentError::ReorgedOut { number, hash });
    }
    let receipts = source.block_receipts(hash).await?;
    let block = BlockReceipts::from_rpc(number, hash, stored.header().receipts_root, &receipts)?;
    let receipt =
        block
            .receipts()
            .get(loc.tx_index as usize)
            .ok_or(ProvePaymentError::NoTransaction {
                number,
                tx_index: loc.tx_index,
            })?;
    let found = super::payment::find_payments(receipt, loc.tx_index, policy);
    let payment = found.first().ok_or(ProvePaymentError::NoPayment {
        tx,
        number,
        tx_index: loc.tx_index,
        to_payees: if policy.payees.is_empty() {
            ""
        } else {
            " to the configured payees"
        },
        status: if receipt.succeeded() { "1" } else { "not 1" },
    })?;
    Ok(build_goat_proof(
        chain_id,
        stored.header(),
        &block,
        payment,
    )?)
}
