//! Bitcoin payment proofs: a transaction's Merkle branch to a header on the
//! best chain, with a coinbase branch that pins the tree's depth.
//!
//! The proof file format is documented in the README ("Proof files").
//!
//! Attacks answered here:
//! * CVE-2017-12842, both directions. A 64-byte "payment" is refused, so
//!   an inner node cannot pose as a transaction. A real 64-byte transaction
//!   cannot pose as an inner node either: the proof carries the coinbase's
//!   branch, which is all-left from index 0, and the transaction's branch must
//!   have the same length. The coinbase is a leaf, so its branch length is the
//!   tree's depth; a fake leaf below a 64-byte transaction would need a longer
//!   branch. (tBTC's first fix compared lengths without checking that the
//!   coinbase proof was at index 0 and was a real coinbase: both are checked.)
//! * CVE-2012-2459. A step where the node is a right child equal to its
//!   sibling is the duplicated padding of an odd level: refused, so each
//!   transaction has exactly one valid index. Replay keys never use the index
//!   or the proof bytes anyway: they are `(txid, vout)`.

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{Block, BlockHash, ScriptBuf, Transaction, TxMerkleNode, Txid};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::network::BtcNetwork;
use crate::store::{Store, StoreError};

/// Current version of the proof file format.
pub const PROOF_VERSION: u32 = 1;
/// The `format` field of every gmrelay proof file.
pub const PROOF_FORMAT: &str = "gmrelay-payment-proof";

/// A Bitcoin inclusion proof, as written to and read from a proof file.
/// (Unknown fields are refused by [`crate::proof::ProofFile::parse`].)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtcProof {
    /// The network.
    pub network: BtcNetwork,
    /// The block's hash (display order, as bitcoind prints it).
    pub block_hash: BlockHash,
    /// The block's height.
    pub block_height: u32,
    /// The 80-byte header, hex.
    #[serde(with = "hex_bytes")]
    pub header: Vec<u8>,
    /// The proven transaction.
    pub tx: TxBranch,
    /// The coinbase transaction's branch (index 0), fixing the tree depth.
    pub coinbase: TxBranch,
    /// Confirmations when the proof was built (informational; verification
    /// counts them again from the store).
    pub confirmations: u32,
}

/// A transaction and its Merkle branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxBranch {
    /// The txid (display order).
    pub txid: Txid,
    /// Position in the block.
    pub index: u32,
    /// The transaction without witness data, hex.
    #[serde(with = "hex_bytes")]
    pub raw: Vec<u8>,
    /// Sibling hashes from the leaf up (display order, like txids).
    pub merkle_branch: Vec<TxMerkleNode>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.trim_start_matches("0x")).map_err(serde::de::Error::custom)
    }
}

/// Why a proof could not be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BuildError {
    /// The transaction is not in the block.
    #[error("transaction {txid} is not in block {block}")]
    NotInBlock {
        /// The txid.
        txid: Txid,
        /// The block.
        block: BlockHash,
    },
    /// The block's Merkle tree is mutated (CVE-2012-2459) or does not match its header.
    #[error(
        "block {0}: Merkle root does not match, or the tree is mutated (duplicate transactions)"
    )]
    BadBlock(BlockHash),
    /// A 64-byte transaction cannot be proven safely (CVE-2017-12842).
    #[error("transaction {0} is 64 bytes without witness: its txid is indistinguishable from an inner Merkle node")]
    SixtyFourBytes(Txid),
}

/// Why a proof was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    /// The header field is not 80 bytes of a header.
    #[error("header: {0}")]
    BadHeader(String),
    /// The header does not hash to `block_hash`.
    #[error("header hashes to {computed}, the proof says {claimed}")]
    HeaderHashMismatch {
        /// Computed from the header bytes.
        computed: BlockHash,
        /// Claimed by the proof.
        claimed: BlockHash,
    },
    /// The raw transaction does not decode.
    #[error(
        "{which} transaction (proof field `{}`): raw bytes do not decode: {message}",
        raw_field(which)
    )]
    BadTransaction {
        /// `payment` or `coinbase`.
        which: &'static str,
        /// Decoder message.
        message: String,
    },
    /// The raw transaction carries witness data or trailing bytes.
    #[error("{which} transaction (proof field `{}`): raw bytes are not the canonical non-witness serialization", raw_field(which))]
    NotCanonical {
        /// `payment` or `coinbase`.
        which: &'static str,
    },
    /// The transaction hashes to another txid.
    #[error("{which} transaction hashes to {computed}, the proof says {claimed}")]
    TxidMismatch {
        /// `payment` or `coinbase`.
        which: &'static str,
        /// Computed.
        computed: Txid,
        /// Claimed.
        claimed: Txid,
    },
    /// CVE-2017-12842: a 64-byte transaction.
    #[error("{which} transaction is 64 bytes: refused (CVE-2017-12842)")]
    SixtyFourByteTx {
        /// `payment` or `coinbase`.
        which: &'static str,
    },
    /// The coinbase proof is not a coinbase at index 0.
    #[error("coinbase proof: {0}")]
    BadCoinbase(&'static str),
    /// The two branches differ in length: the transaction is not a leaf.
    #[error("tx branch has {tx} levels but the coinbase branch has {coinbase}: not a leaf of this block's tree (CVE-2017-12842)")]
    DepthMismatch {
        /// Tx branch length.
        tx: usize,
        /// Coinbase branch length.
        coinbase: usize,
    },
    /// The index has bits above the branch's depth.
    #[error("{which}: index {index} does not fit a tree of depth {depth}")]
    IndexOutOfRange {
        /// `payment` or `coinbase`.
        which: &'static str,
        /// The index.
        index: u32,
        /// The depth.
        depth: usize,
    },
    /// CVE-2012-2459: a right child equal to its sibling.
    #[error("{which}: level {level} proves the duplicated copy of an odd level's last node (CVE-2012-2459)")]
    DuplicateLeaf {
        /// `payment` or `coinbase`.
        which: &'static str,
        /// Tree level, 0 = leaves.
        level: usize,
    },
    /// The branch does not lead to the header's Merkle root.
    #[error("{which}: Merkle branch leads to {computed}, the header commits to {expected}")]
    MerkleMismatch {
        /// `payment` or `coinbase`.
        which: &'static str,
        /// Computed root.
        computed: TxMerkleNode,
        /// Header's root.
        expected: TxMerkleNode,
    },
    /// The block is not on gmrelay's best chain (unknown, or reorged out).
    #[error("block {hash} at height {height} is not on the best chain gmrelay follows (unknown or reorged out); sync headers first")]
    NotOnBestChain {
        /// Block hash.
        hash: BlockHash,
        /// Claimed height.
        height: u32,
    },
    /// The proof's height does not match the store.
    #[error("block {hash} is at height {stored}, the proof says {claimed}")]
    HeightMismatch {
        /// Block hash.
        hash: BlockHash,
        /// Height in the store.
        stored: u32,
        /// Height in the proof.
        claimed: u32,
    },
    /// Not enough confirmations.
    #[error("block {hash} has {confirmations} confirmations, {required} required")]
    TooFewConfirmations {
        /// Block hash.
        hash: BlockHash,
        /// Counted from the store's tip.
        confirmations: u32,
        /// Required.
        required: u32,
    },
    /// The proof is for another network.
    #[error("proof is for Bitcoin {found}, the store follows {expected}")]
    WrongNetwork {
        /// Proof's network.
        found: BtcNetwork,
        /// Store's network.
        expected: BtcNetwork,
    },
    /// The store could not be read.
    #[error("store: {0}")]
    Store(String),
}

impl From<StoreError> for ProofError {
    fn from(e: StoreError) -> Self {
        ProofError::Store(e.to_string())
    }
}

fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut engine = sha256d::Hash::engine();
    engine.input(left);
    engine.input(right);
    sha256d::Hash::from_engine(engine).to_byte_array()
}

/// The Merkle branch of leaf `index` among `leaves` (internal byte order),
/// Bitcoin-style: an odd level's last node is paired with itself.
pub fn merkle_branch(leaves: &[[u8; 32]], mut index: usize) -> Vec<[u8; 32]> {
    let mut level: Vec<[u8; 32]> = leaves.to_vec();
    let mut branch = Vec::new();
    while level.len() > 1 {
        let sibling = if index ^ 1 < level.len() {
            level[index ^ 1]
        } else {
            level[index]
        };
        branch.push(sibling);
        level = level
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pair[0])))
            .collect();
        index >>= 1;
    }
    branch
}

/// Folds a branch up from a leaf, refusing the CVE-2012-2459 duplicate and
/// indexes deeper than the branch.
pub fn fold_branch(
    which: &'static str,
    leaf: [u8; 32],
    index: u32,
    branch: &[[u8; 32]],
) -> Result<[u8; 32], ProofError> {
    if branch.len() < 32 && index >> branch.len() != 0 {
        return Err(ProofError::IndexOutOfRange {
            which,
            index,
            depth: branch.len(),
        });
    }
    let mut node = leaf;
    let mut i = index;
    for (level, sibling) in branch.iter().enumerate() {
        node = if i & 1 == 1 {
            if *sibling == node {
                return Err(ProofError::DuplicateLeaf { which, level });
            }
            hash_pair(sibling, &node)
        } else {
            hash_pair(&node, sibling)
        };
        i >>= 1;
    }
    Ok(node)
}

/// Builds a proof for `txid` in `block` at `height`, with `confirmations`.
pub fn build_proof(
    network: BtcNetwork,
    block: &Block,
    height: u32,
    txid: Txid,
    confirmations: u32,
) -> Result<BtcProof, BuildError> {
    let hash = block.block_hash();
    if !block.check_merkle_root() {
        return Err(BuildError::BadBlock(hash));
    }
    let txids: Vec<[u8; 32]> = block
        .txdata
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    // Duplicate txids mean a mutated tree (CVE-2012-2459).
    let mut sorted = txids.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(BuildError::BadBlock(hash));
    }
    let index = txids
        .iter()
        .position(|t| *t == txid.to_byte_array())
        .ok_or(BuildError::NotInBlock { txid, block: hash })?;
    let tx = &block.txdata[index];
    let raw = serialize_no_witness(tx);
    if raw.len() == 64 {
        return Err(BuildError::SixtyFourBytes(txid));
    }
    let coinbase = &block.txdata[0];
    let branch = |i| {
        merkle_branch(&txids, i)
            .into_iter()
            .map(TxMerkleNode::from_byte_array)
            .collect()
    };
    Ok(BtcProof {
        network,
        block_hash: hash,
        block_height: height,
        header: serialize(&block.header),
        tx: TxBranch {
            txid,
            index: index as u32,
            raw,
            merkle_branch: branch(index),
        },
        coinbase: TxBranch {
            txid: coinbase.compute_txid(),
            index: 0,
            raw: serialize_no_witness(coinbase),
            merkle_branch: branch(0),
        },
        confirmations,
    })
}

/// A transaction's legacy (non-witness) serialization.
pub fn serialize_no_witness(tx: &Transaction) -> Vec<u8> {
    let mut stripped = tx.clone();
    for input in &mut stripped.input {
        input.witness.clear();
    }
    serialize(&stripped)
}

/// The proof field that holds the raw bytes of the `payment` or `coinbase`
/// transaction.
fn raw_field(which: &str) -> &'static str {
    if which == "coinbase" {
        "coinbase.raw"
    } else {
        "tx.raw"
    }
}

fn decode_tx(which: &'static str, raw: &[u8]) -> Result<Transaction, ProofError> {
    if raw.len() == 64 {
        return Err(ProofError::SixtyFourByteTx { which });
    }
    let tx: Transaction = deserialize(raw).map_err(|e| ProofError::BadTransaction {
        which,
        message: e.to_string(),
    })?;
    // Reject witness serializations and trailing bytes: the txid must be the
    // hash of exactly these bytes.
    if serialize_no_witness(&tx) != raw {
        return Err(ProofError::NotCanonical { which });
    }
    Ok(tx)
}

/// A proof whose every check passed against the stored chain. Only
/// [`verify_proof`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBtcProof {
    network: BtcNetwork,
    block_hash: BlockHash,
    height: u32,
    confirmations: u32,
    tx: Transaction,
}

impl VerifiedBtcProof {
    /// The proven transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }
    /// Its txid.
    pub fn txid(&self) -> Txid {
        self.tx.compute_txid()
    }
    /// The block holding it.
    pub fn block_hash(&self) -> BlockHash {
        self.block_hash
    }
    /// The block's height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Confirmations counted from the store's tip.
    pub fn confirmations(&self) -> u32 {
        self.confirmations
    }
    /// The network.
    pub fn network(&self) -> BtcNetwork {
        self.network
    }

    /// Finds the payment of an invoice: an output paying `script` at least
    /// `min_amount` satoshis, and an OP_RETURN output carrying `invoice_id`.
    pub fn payment(
        &self,
        script: &ScriptBuf,
        min_amount: u64,
        invoice_id: &[u8; 32],
    ) -> Result<BtcPayment, PaymentError> {
        find_payment(&self.tx, script, min_amount, invoice_id)
    }
}

/// A payment found in a verified transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtcPayment {
    /// The transaction.
    pub txid: Txid,
    /// The first output paying the script.
    pub vout: u32,
    /// The sum of every output paying the script, in satoshis.
    pub amount: u64,
}

/// Why a transaction is not the invoice's payment.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PaymentError {
    /// No output pays the invoice's script.
    #[error("no output pays the invoice's script {0}")]
    NoOutputToScript(String),
    /// Outputs pay the script, but less than the amount.
    #[error("outputs to the invoice's script pay {paid} sat in all, the invoice asks {required}")]
    AmountTooLow {
        /// Sum of the outputs to the script.
        paid: u64,
        /// Required amount.
        required: u64,
    },
    /// The transaction's first `OP_RETURN <32 bytes>` output is missing or
    /// carries another reference.
    #[error("the first OP_RETURN <32 bytes> output does not carry the invoice reference {0}")]
    MissingInvoiceId(String),
}

/// The reference a transaction names: the payload of its first
/// `OP_RETURN <32 bytes>` output (`6a 20 <32 bytes>`), as PaymentSettlement reads it.
pub fn named_reference(tx: &Transaction) -> Option<[u8; 32]> {
    tx.output.iter().find_map(|o| {
        let b = o.script_pubkey.as_bytes();
        (b.len() == 34 && b[0] == 0x6a && b[1] == 0x20)
            .then(|| b[2..].try_into().expect("32 bytes"))
    })
}

/// The invoice-matching rule shared by the CLI, the daemon and the tests, as
/// PaymentSettlement applies it: the first `OP_RETURN <32 bytes>` output
/// names `reference`, and the outputs paying `script` add up to at least
/// `min_amount` satoshis (a payment may be split over several outputs).
pub fn find_payment(
    tx: &Transaction,
    script: &ScriptBuf,
    min_amount: u64,
    reference: &[u8; 32],
) -> Result<BtcPayment, PaymentError> {
    if named_reference(tx).as_ref() != Some(reference) {
        return Err(PaymentError::MissingInvoiceId(hex::encode(reference)));
    }
    let mut first: Option<u32> = None;
    let mut paid: u64 = 0;
    for (vout, o) in tx.output.iter().enumerate() {
        if &o.script_pubkey == script {
            first.get_or_insert(vout as u32);
            paid = paid.saturating_add(o.value.to_sat());
        }
    }
    match first {
        None => Err(PaymentError::NoOutputToScript(script.to_hex_string())),
        Some(_) if paid < min_amount => Err(PaymentError::AmountTooLow {
            paid,
            required: min_amount,
        }),
        Some(vout) => Ok(BtcPayment {
            txid: tx.compute_txid(),
            vout,
            amount: paid,
        }),
    }
}

/// Checks the proof's internal consistency (everything but the chain).
/// Returns the header and the decoded transaction.
pub fn verify_standalone(proof: &BtcProof) -> Result<(Header, Transaction), ProofError> {
    if proof.header.len() != 80 {
        return Err(ProofError::BadHeader(format!(
            "{} bytes, expected 80",
            proof.header.len()
        )));
    }
    let header: Header =
        deserialize(&proof.header).map_err(|e| ProofError::BadHeader(e.to_string()))?;
    let computed = header.block_hash();
    if computed != proof.block_hash {
        return Err(ProofError::HeaderHashMismatch {
            computed,
            claimed: proof.block_hash,
        });
    }
    let tx = decode_tx("payment", &proof.tx.raw)?;
    let txid = tx.compute_txid();
    if txid != proof.tx.txid {
        return Err(ProofError::TxidMismatch {
            which: "payment",
            computed: txid,
            claimed: proof.tx.txid,
        });
    }
    let coinbase = decode_tx("coinbase", &proof.coinbase.raw)?;
    if !coinbase.is_coinbase() {
        return Err(ProofError::BadCoinbase("transaction is not a coinbase"));
    }
    if proof.coinbase.index != 0 {
        return Err(ProofError::BadCoinbase("index is not 0"));
    }
    let cb_txid = coinbase.compute_txid();
    if cb_txid != proof.coinbase.txid {
        return Err(ProofError::TxidMismatch {
            which: "coinbase",
            computed: cb_txid,
            claimed: proof.coinbase.txid,
        });
    }
    let (tb, cb) = (&proof.tx.merkle_branch, &proof.coinbase.merkle_branch);
    if tb.len() != cb.len() {
        return Err(ProofError::DepthMismatch {
            tx: tb.len(),
            coinbase: cb.len(),
        });
    }
    // The coinbase can only be the proven transaction at index 0.
    if proof.tx.index != 0 && tx.is_coinbase() {
        return Err(ProofError::BadCoinbase(
            "a coinbase proven at a non-zero index",
        ));
    }
    let expected = header.merkle_root;
    for (which, leaf, index, branch) in [
        ("coinbase", cb_txid.to_byte_array(), 0, cb),
        ("payment", txid.to_byte_array(), proof.tx.index, tb),
    ] {
        let nodes: Vec<[u8; 32]> = branch.iter().map(|n| n.to_byte_array()).collect();
        let root = fold_branch(which, leaf, index, &nodes)?;
        if root != expected.to_byte_array() {
            return Err(ProofError::MerkleMismatch {
                which,
                computed: TxMerkleNode::from_byte_array(root),
                expected,
            });
        }
    }
    Ok((header, tx))
}

/// Verifies a proof against the stored best chain: everything
/// [`verify_standalone`] checks, plus the block is on the best chain at the
/// claimed height with at least `min_confirmations`.
pub fn verify_proof<St: Store>(
    proof: &BtcProof,
    store: &St,
    network: BtcNetwork,
    min_confirmations: u32,
) -> Result<VerifiedBtcProof, ProofError> {
    if proof.network != network {
        return Err(ProofError::WrongNetwork {
            found: proof.network,
            expected: network,
        });
    }
    let (_, tx) = verify_standalone(proof)?;
    let not_best = || ProofError::NotOnBestChain {
        hash: proof.block_hash,
        height: proof.block_height,
    };
    let stored = store.btc_header(&proof.block_hash)?.ok_or_else(not_best)?;
    if stored.height() != proof.block_height {
        return Err(ProofError::HeightMismatch {
            hash: proof.block_hash,
            stored: stored.height(),
            claimed: proof.block_height,
        });
    }
    if store.btc_best_hash(stored.height())? != Some(proof.block_hash) {
        return Err(not_best());
    }
    let (tip, _) = store
        .btc_tip()?
        .ok_or_else(|| ProofError::Store("empty store".into()))?;
    let confirmations = tip.saturating_sub(stored.height()) + 1;
    if confirmations < min_confirmations {
        return Err(ProofError::TooFewConfirmations {
            hash: proof.block_hash,
            confirmations,
            required: min_confirmations,
        });
    }
    Ok(VerifiedBtcProof {
        network,
        block_hash: proof.block_hash,
        height: stored.height(),
        confirmations,
        tx,
    })
}

/// Why [`prove_tx`] could not prove a transaction.
#[derive(Debug, Error)]
pub enum ProveError {
    /// The node cannot tell which block holds it.
    #[error("the node cannot tell which block holds {0} (unconfirmed, or no -txindex): pass the block hash")]
    BlockUnknown(Txid),
    /// The block is not in the store.
    #[error("block {0} is not in the store: sync headers first")]
    NotSynced(BlockHash),
    /// The block is not on the stored best chain.
    #[error("block {hash} at height {height} is not on the best chain (reorged out)")]
    ReorgedOut {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u32,
    },
    /// The node failed.
    #[error(transparent)]
    Source(#[from] super::source::SourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block does not prove the transaction.
    #[error(transparent)]
    Build(#[from] BuildError),
}

impl crate::error::Classify for ProveError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            ProveError::Source(e) => e.class(),
            // Not synced yet, or a reorg under way: a later round may succeed.
            ProveError::NotSynced(_) | ProveError::ReorgedOut { .. } => {
                crate::error::ErrorClass::Transient
            }
            _ => crate::error::ErrorClass::Permanent,
        }
    }
}

/// Proves transaction `txid` (in `block`, or wherever the node says it is)
/// against the stored best chain: the block must be stored on it, is fetched
/// from the node (its Merkle root checked) and the proof built with the
/// confirmations the store counts. Used alike by `gmrelay btc prove` and
/// the daemon.
pub async fn prove_tx<S: super::source::BtcSource, St: Store>(
    source: &S,
    store: &St,
    network: BtcNetwork,
    txid: Txid,
    block: Option<BlockHash>,
) -> Result<BtcProof, ProveError> {
    let block_hash = match block {
        Some(b) => b,
        None => source
            .tx_block(&txid)
            .await?
            .ok_or(ProveError::BlockUnknown(txid))?,
    };
    let stored = store
        .btc_header(&block_hash)?
        .ok_or(ProveError::NotSynced(block_hash))?;
    let height = stored.height();
    if store.btc_best_hash(height)? != Some(block_hash) {
        return Err(ProveError::ReorgedOut {
            hash: block_hash,
            height,
        });
    }
    let (tip, _) = store.btc_tip()?.ok_or(ProveError::NotSynced(block_hash))?;
    let block = source.block(&block_hash).await?;
    Ok(build_proof(
        network,
        &block,
        height,
        txid,
        tip.saturating_sub(height) + 1,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::block::Version;
    use bitcoin::{absolute, transaction, Amount, OutPoint, Sequence, TxIn, TxOut, Witness};
    use proptest::prelude::*;

    fn tx(tag: u32, coinbase: bool) -> Transaction {
        let mut script_sig = bitcoin::ScriptBuf::new();
        if coinbase {
            script_sig = bitcoin::ScriptBuf::from_bytes(vec![3, tag as u8, (tag >> 8) as u8, 0]);
        }
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: if coinbase {
                    OutPoint::null()
                } else {
                    OutPoint {
                        txid: Txid::from_byte_array([tag as u8; 32]),
                        vout: tag,
                    }
                },
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(u64::from(tag) * 1000),
                script_pubkey: bitcoin::ScriptBuf::from_bytes(vec![0x51; 20]),
            }],
        }
    }

    fn block(n: usize) -> Block {
        let mut txdata = vec![tx(0, true)];
        txdata.extend((1..n).map(|i| tx(i as u32, false)));
        let mut b = Block {
            header: bitcoin::block::Header {
                version: Version::from_consensus(0x2000_0000),
                prev_blockhash: BlockHash::all_zeros(),
                merkle_root: TxMerkleNode::all_zeros(),
                time: 1,
                bits: bitcoin::pow::CompactTarget::from_consensus(0x207fffff),
                nonce: 0,
            },
            txdata,
        };
        b.header.merkle_root = b.compute_merkle_root().unwrap();
        b
    }

    fn proof_of(n: usize, index: usize) -> BtcProof {
        let b = block(n);
        let txid = b.txdata[index].compute_txid();
        build_proof(BtcNetwork::Regtest, &b, 10, txid, 1).unwrap()
    }

    #[test]
    fn proofs_of_every_position_verify() {
        for n in [1usize, 2, 3, 5, 8, 13] {
            for i in 0..n {
                let p = proof_of(n, i);
                verify_standalone(&p).unwrap_or_else(|e| panic!("{n} txs, index {i}: {e}"));
            }
        }
    }

    #[test]
    fn duplicate_last_leaf_is_refused() {
        // Three transactions: the third is paired with itself. Proving it at
        // index 3 (its padding copy) is the CVE-2012-2459 malleation.
        let mut p = proof_of(3, 2);
        p.tx.index = 3;
        assert_eq!(
            verify_standalone(&p),
            Err(ProofError::DuplicateLeaf {
                which: "payment",
                level: 0
            })
        );
    }

    #[test]
    fn sixty_four_byte_transactions_are_refused() {
        // An inner node (two 32-byte hashes) posing as a transaction.
        let mut p = proof_of(4, 1);
        p.tx.raw = [
            p.coinbase.merkle_branch[0].to_byte_array(),
            p.coinbase.merkle_branch[0].to_byte_array(),
        ]
        .concat();
        assert_eq!(
            verify_standalone(&p),
            Err(ProofError::SixtyFourByteTx { which: "payment" })
        );
    }

    #[test]
    fn a_leaf_deeper_than_the_coinbase_is_refused() {
        // A real 64-byte transaction used as an inner node: its "children"
        // sit one level deeper than every real leaf.
        let mut p = proof_of(4, 1);
        p.tx.merkle_branch
            .insert(0, TxMerkleNode::from_byte_array([9; 32]));
        p.tx.index = 3;
        assert_eq!(
            verify_standalone(&p),
            Err(ProofError::DepthMismatch { tx: 3, coinbase: 2 })
        );
    }

    #[test]
    fn coinbase_proof_must_be_a_coinbase_at_index_0() {
        let mut p = proof_of(4, 2);
        p.coinbase.index = 2;
        assert_eq!(
            verify_standalone(&p),
            Err(ProofError::BadCoinbase("index is not 0"))
        );
        let mut p = proof_of(4, 2);
        let other = proof_of(4, 3);
        p.coinbase = other.tx.clone();
        p.coinbase.index = 0;
        assert_eq!(
            verify_standalone(&p),
            Err(ProofError::BadCoinbase("transaction is not a coinbase"))
        );
    }

    #[test]
    fn witness_serialization_is_not_canonical() {
        let mut p = proof_of(4, 2);
        let mut t: Transaction = deserialize(&p.tx.raw).unwrap();
        t.input[0].witness.push([1u8; 33]);
        p.tx.raw = serialize(&t);
        assert_eq!(
            verify_standalone(&p),
            Err(ProofError::NotCanonical { which: "payment" })
        );
    }

    #[test]
    fn undecodable_bytes_are_named_by_their_field() {
        let mut p = proof_of(4, 2);
        p.tx.raw.truncate(20);
        let err = verify_standalone(&p).unwrap_err().to_string();
        assert!(
            err.starts_with("payment transaction (proof field `tx.raw`): raw bytes do not decode"),
            "{err}"
        );
        assert!(!err.contains("transaction transaction"), "{err}");
    }

    #[test]
    fn payment_rules() {
        let mut t = tx(5, false);
        let script = t.output[0].script_pubkey.clone();
        let id = [0xab; 32];
        assert!(matches!(
            find_payment(&t, &script, 1, &id),
            Err(PaymentError::MissingInvoiceId(_))
        ));
        let push = bitcoin::script::PushBytesBuf::try_from(id.to_vec()).unwrap();
        t.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return(push),
        });
        let p = find_payment(&t, &script, 5000, &id).unwrap();
        assert_eq!((p.vout, p.amount), (0, 5000));
        assert_eq!(
            find_payment(&t, &script, 5001, &id),
            Err(PaymentError::AmountTooLow {
                paid: 5000,
                required: 5001
            })
        );
        assert!(matches!(
            find_payment(&t, &ScriptBuf::from_bytes(vec![0x52]), 1, &id),
            Err(PaymentError::NoOutputToScript(_))
        ));
        assert!(matches!(
            find_payment(&t, &script, 1, &[0xac; 32]),
            Err(PaymentError::MissingInvoiceId(_))
        ));
        // A split payment adds up; only the FIRST OP_RETURN <32 bytes> names the reference.
        t.output.push(TxOut {
            value: Amount::from_sat(3000),
            script_pubkey: script.clone(),
        });
        let p = find_payment(&t, &script, 8000, &id).unwrap();
        assert_eq!((p.vout, p.amount), (0, 8000));
        let later = bitcoin::script::PushBytesBuf::try_from(vec![0xcd; 32]).unwrap();
        t.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return(later),
        });
        assert_eq!(named_reference(&t), Some(id));
        assert!(find_payment(&t, &script, 1, &[0xcd; 32]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Branches of random trees fold to the root; any flipped bit of the
        /// leaf, a sibling or the index breaks them.
        #[test]
        fn merkle_branches_verify_and_bit_flips_fail(
            leaves in proptest::collection::vec(any::<[u8; 32]>(), 1..200),
            pick in any::<proptest::sample::Index>(),
            flip in any::<proptest::sample::Index>(),
        ) {
            let mut sorted = leaves.clone();
            sorted.sort();
            sorted.dedup();
            prop_assume!(sorted.len() == leaves.len());
            let index = pick.index(leaves.len());
            let branch = merkle_branch(&leaves, index);
            let root = bitcoin::merkle_tree::calculate_root(
                leaves.iter().map(|l| TxMerkleNode::from_byte_array(*l)),
            ).unwrap();
            prop_assert_eq!(fold_branch("payment", leaves[index], index as u32, &branch).unwrap(), root.to_byte_array());
            // Flip one bit somewhere in (leaf ‖ branch).
            let bits = 256 * (1 + branch.len());
            let bit = flip.index(bits);
            let (mut leaf, mut br) = (leaves[index], branch.clone());
            let target = if bit < 256 { &mut leaf } else { &mut br[bit / 256 - 1] };
            target[(bit % 256) / 8] ^= 1 << (bit % 8);
            let folded = fold_branch("payment", leaf, index as u32, &br);
            prop_assert!(folded.map(|r| r != root.to_byte_array()).unwrap_or(true));
            // Any other index fails (or is refused).
            if !branch.is_empty() {
                let other = (index as u32) ^ (1 << (flip.index(branch.len())));
                let folded = fold_branch("payment", leaves[index], other, &branch);
                prop_assert!(folded.map(|r| r != root.to_byte_array()).unwrap_or(true));
            }
        }

        /// Any flipped byte of a proof file's data fails verification.
        #[test]
        fn tampered_proofs_fail(n in 2usize..40, pick in any::<proptest::sample::Index>(), byte in any::<proptest::sample::Index>(), which in 0u8..4) {
            let index = pick.index(n);
            let mut p = proof_of(n, index);
            match which {
                0 => { let i = byte.index(p.header.len()); p.header[i] ^= 0x01; }
                1 => { let i = byte.index(p.tx.raw.len()); p.tx.raw[i] ^= 0x01; }
                2 => {
                    prop_assume!(!p.tx.merkle_branch.is_empty());
                    let i = byte.index(p.tx.merkle_branch.len());
                    let mut b = p.tx.merkle_branch[i].to_byte_array();
                    b[byte.index(32)] ^= 0x80;
                    p.tx.merkle_branch[i] = TxMerkleNode::from_byte_array(b);
                }
                _ => { let i = byte.index(p.coinbase.raw.len()); p.coinbase.raw[i] ^= 0x01; }
            }
            prop_assert!(verify_standalone(&p).is_err());
        }
    }
}
