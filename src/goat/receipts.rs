//! Transaction receipts: EIP-2718 encoding from RPC JSON, strict decoding,
//! and the receipts trie (root and Merkle-Patricia proofs) with alloy-trie.
//!
//! Encoding is generic over the transaction type, so GOAT's own types (such
//! as its 0x60 system transactions) need no special case:
//!
//! * legacy (type 0): `rlp([status or post-state root, cumulativeGasUsed, logsBloom, logs])`
//! * typed (0x01..=0x7f): `type || rlp([status, cumulativeGasUsed, logsBloom, logs])`
//!
//! The trie maps `rlp(transactionIndex)` to the encoded receipt. A rebuilt
//! root must equal the header's `receiptsRoot` before any proof leaves
//! [`BlockReceipts`]: a node serving receipts that do not match is refused,
//! naming the block.

use alloy::primitives::{Address, Bloom, Bytes, B256, U256};
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::proof::ProofRetainer;
use alloy_trie::{HashBuilder, Nibbles, EMPTY_ROOT_HASH};
use serde_json::Value;
use thiserror::Error;

/// A receipt that cannot be encoded, decoded or proven.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiptError {
    /// A JSON receipt with a missing or malformed field.
    #[error("receipt{at}: field `{field}`: {message}", at = at_tx(*.tx_index))]
    BadField {
        /// Its transaction index, when known.
        tx_index: Option<u64>,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Receipt bytes that do not decode strictly.
    #[error("receipt bytes: {0}")]
    Decode(String),
    /// The block's receipts are not exactly transactions 0..n.
    #[error("block {number} ({hash}): receipts are not transactions 0..{count}: {message}")]
    Incomplete {
        /// The block number.
        number: u64,
        /// The block hash.
        hash: B256,
        /// How many receipts were served.
        count: usize,
        /// What is wrong.
        message: String,
    },
    /// The rebuilt root differs from the header's receiptsRoot.
    #[error("block {number} ({hash}): receipts rebuild the root {computed}, the header commits to {expected}; refusing to emit a proof")]
    RootMismatch {
        /// The block number.
        number: u64,
        /// The block hash.
        hash: B256,
        /// Computed from the served receipts.
        computed: B256,
        /// The header's receiptsRoot.
        expected: B256,
    },
    /// No receipt at this index.
    #[error("block {number}: no transaction at index {tx_index} ({count} in the block)")]
    NoSuchTx {
        /// The block number.
        number: u64,
        /// The index asked for.
        tx_index: u64,
        /// Receipts in the block.
        count: usize,
    },
    /// A Merkle-Patricia proof that does not lead to the receipt.
    #[error("receipts-trie proof of transaction {tx_index} against root {root}: {message}")]
    BadProof {
        /// The transaction index.
        tx_index: u64,
        /// The root.
        root: B256,
        /// alloy-trie's message.
        message: String,
    },
}

fn at_tx(i: Option<u64>) -> String {
    i.map(|i| format!(" of transaction {i}"))
        .unwrap_or_default()
}

/// The first field of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// EIP-658 status (Byzantium and later): true for success.
    Status(bool),
    /// Pre-Byzantium intermediate state root (legacy receipts only).
    StateRoot(B256),
}

/// An event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLog {
    /// The emitting contract.
    pub address: Address,
    /// Indexed topics.
    pub topics: Vec<B256>,
    /// Non-indexed data.
    pub data: Bytes,
}

impl ReceiptLog {
    fn payload_length(&self) -> usize {
        self.address.length()
            + alloy_rlp::list_length::<B256, B256>(&self.topics)
            + self.data.length()
    }
}

impl Encodable for ReceiptLog {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        alloy_rlp::Header {
            list: true,
            payload_length: self.payload_length(),
        }
        .encode(out);
        self.address.encode(out);
        alloy_rlp::encode_list::<B256, B256>(&self.topics, out);
        self.data.encode(out);
    }
    fn length(&self) -> usize {
        let p = self.payload_length();
        p + alloy_rlp::length_of_length(p)
    }
}

impl Decodable for ReceiptLog {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let h = alloy_rlp::Header::decode(buf)?;
        if !h.list {
            return Err(alloy_rlp::Error::UnexpectedString);
        }
        if buf.len() < h.payload_length {
            return Err(alloy_rlp::Error::InputTooShort);
        }
        let mut body = &buf[..h.payload_length];
        let log = ReceiptLog {
            address: Decodable::decode(&mut body)?,
            topics: Decodable::decode(&mut body)?,
            data: Decodable::decode(&mut body)?,
        };
        if !body.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch {
                expected: h.payload_length,
                got: h.payload_length - body.len(),
            });
        }
        *buf = &buf[h.payload_length..];
        Ok(log)
    }
}

/// A receipt with every consensus field, of any transaction type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoatReceipt {
    /// The EIP-2718 type byte; 0 for legacy.
    pub tx_type: u8,
    /// Status or post-state root.
    pub outcome: ReceiptOutcome,
    /// Gas used in the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// The receipt's bloom filter.
    pub logs_bloom: Bloom,
    /// The logs, in order.
    pub logs: Vec<ReceiptLog>,
}

fn field<'a>(
    v: &'a Value,
    name: &'static str,
    tx_index: Option<u64>,
) -> Result<&'a Value, ReceiptError> {
    v.get(name)
        .filter(|x| !x.is_null())
        .ok_or_else(|| ReceiptError::BadField {
            tx_index,
            field: name,
            message: "missing".into(),
        })
}

fn hex_digits<'a>(
    v: &'a Value,
    name: &'static str,
    tx_index: Option<u64>,
) -> Result<&'a str, ReceiptError> {
    let bad = |message: String| ReceiptError::BadField {
        tx_index,
        field: name,
        message,
    };
    let s = v
        .as_str()
        .ok_or_else(|| bad("expected a 0x-prefixed hex string".into()))?;
    s.strip_prefix("0x")
        .ok_or_else(|| bad(format!("`{s}` lacks the 0x prefix")))
}

fn quantity(v: &Value, name: &'static str, tx_index: Option<u64>) -> Result<u64, ReceiptError> {
    let d = hex_digits(v, name, tx_index)?;
    u64::from_str_radix(d, 16).map_err(|_| ReceiptError::BadField {
        tx_index,
        field: name,
        message: format!("`0x{d}` is not a 64-bit quantity"),
    })
}

fn data(v: &Value, name: &'static str, tx_index: Option<u64>) -> Result<Vec<u8>, ReceiptError> {
    let d = hex_digits(v, name, tx_index)?;
    hex::decode(d).map_err(|e| ReceiptError::BadField {
        tx_index,
        field: name,
        message: e.to_string(),
    })
}

fn fixed<const N: usize>(
    v: &Value,
    name: &'static str,
    tx_index: Option<u64>,
) -> Result<[u8; N], ReceiptError> {
    let b = data(v, name, tx_index)?;
    let len = b.len();
    b.try_into().map_err(|_| ReceiptError::BadField {
        tx_index,
        field: name,
        message: format!("{len} bytes, expected {N}"),
    })
}

impl GoatReceipt {
    /// Builds a receipt from `eth_getTransactionReceipt` /
    /// `eth_getBlockReceipts` JSON; returns its transaction index too. Only
    /// the consensus fields are read; whatever else the node adds is
    /// irrelevant to the encoding (and a wrong encoding is caught by the
    /// receipts-root check).
    pub fn from_rpc_json(v: &Value) -> Result<(u64, Self), ReceiptError> {
        let tx_index = quantity(
            field(v, "transactionIndex", None)?,
            "transactionIndex",
            None,
        )?;
        let i = Some(tx_index);
        let tx_type = match v.get("type").filter(|t| !t.is_null()) {
            None => 0,
            Some(t) => {
                let ty = quantity(t, "type", i)?;
                if ty > 0x7f {
                    return Err(ReceiptError::BadField {
                        tx_index: i,
                        field: "type",
                        message: format!("{ty:#x} is not an EIP-2718 type (0x00..=0x7f)"),
                    });
                }
                ty as u8
            }
        };
        let outcome = match (
            v.get("status").filter(|s| !s.is_null()),
            v.get("root").filter(|s| !s.is_null()),
        ) {
            (Some(s), _) => match quantity(s, "status", i)? {
                0 => ReceiptOutcome::Status(false),
                1 => ReceiptOutcome::Status(true),
                other => {
                    return Err(ReceiptError::BadField {
                        tx_index: i,
                        field: "status",
                        message: format!("{other} is neither 0 nor 1"),
                    })
                }
            },
            (None, Some(r)) if tx_type == 0 => {
                ReceiptOutcome::StateRoot(B256::from(fixed::<32>(r, "root", i)?))
            }
            _ => {
                return Err(ReceiptError::BadField {
                    tx_index: i,
                    field: "status",
                    message: "missing (and no pre-Byzantium `root` on a legacy receipt)".into(),
                })
            }
        };
        let logs_json = field(v, "logs", i)?
            .as_array()
            .ok_or_else(|| ReceiptError::BadField {
                tx_index: i,
                field: "logs",
                message: "expected an array".into(),
            })?;
        let mut logs = Vec::with_capacity(logs_json.len());
        for l in logs_json {
            let topics = field(l, "topics", i)?
                .as_array()
                .ok_or_else(|| ReceiptError::BadField {
                    tx_index: i,
                    field: "topics",
                    message: "expected an array".into(),
                })?
                .iter()
                .map(|t| fixed::<32>(t, "topics", i).map(B256::from))
                .collect::<Result<Vec<_>, _>>()?;
            logs.push(ReceiptLog {
                address: Address::from(fixed::<20>(field(l, "address", i)?, "address", i)?),
                topics,
                data: Bytes::from(data(field(l, "data", i)?, "data", i)?),
            });
        }
        Ok((
            tx_index,
            GoatReceipt {
                tx_type,
                outcome,
                cumulative_gas_used: quantity(
                    field(v, "cumulativeGasUsed", i)?,
                    "cumulativeGasUsed",
                    i,
                )?,
                logs_bloom: Bloom::from(fixed::<256>(field(v, "logsBloom", i)?, "logsBloom", i)?),
                logs,
            },
        ))
    }

    /// Whether the transaction succeeded (false for pre-Byzantium receipts,
    /// which carry no status).
    pub fn succeeded(&self) -> bool {
        self.outcome == ReceiptOutcome::Status(true)
    }

    fn payload_length(&self) -> usize {
        let first = match self.outcome {
            ReceiptOutcome::Status(s) => u8::from(s).length(),
            ReceiptOutcome::StateRoot(r) => r.length(),
        };
        first
            + self.cumulative_gas_used.length()
            + self.logs_bloom.length()
            + alloy_rlp::list_length(&self.logs)
    }

    /// The EIP-2718 encoding (the receipts-trie value).
    pub fn encode_2718(&self) -> Vec<u8> {
        let p = self.payload_length();
        let mut out = Vec::with_capacity(p + 5);
        self.encode_2718_into(&mut out);
        out
    }

    /// Appends the EIP-2718 encoding to `out`.
    pub fn encode_2718_into(&self, out: &mut Vec<u8>) {
        if self.tx_type != 0 {
            out.push(self.tx_type);
        }
        alloy_rlp::Header {
            list: true,
            payload_length: self.payload_length(),
        }
        .encode(out);
        match self.outcome {
            ReceiptOutcome::Status(s) => u8::from(s).encode(out),
            ReceiptOutcome::StateRoot(r) => r.encode(out),
        }
        self.cumulative_gas_used.encode(out);
        self.logs_bloom.encode(out);
        alloy_rlp::encode_list(&self.logs, out);
    }

    /// Decodes an EIP-2718 receipt strictly: a type byte (0x01..=0x7f) or
    /// none, one list of exactly four fields, no trailing bytes, canonical
    /// encoding. A typed receipt with a 32-byte first field is refused (only
    /// legacy receipts predate EIP-658).
    pub fn decode_2718(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let dec = |e: alloy_rlp::Error| ReceiptError::Decode(e.to_string());
        let (&first, _) = bytes
            .split_first()
            .ok_or_else(|| ReceiptError::Decode("empty".into()))?;
        let (tx_type, mut body) = match first {
            0xc0..=0xff => (0u8, bytes),
            0x01..=0x7f => (first, &bytes[1..]),
            _ => {
                return Err(ReceiptError::Decode(format!(
                    "first byte {first:#04x} is neither an EIP-2718 type nor an RLP list"
                )))
            }
        };
        let h = alloy_rlp::Header::decode(&mut body).map_err(dec)?;
        if !h.list {
            return Err(ReceiptError::Decode("not an RLP list".into()));
        }
        if body.len() != h.payload_length {
            return Err(ReceiptError::Decode(format!(
                "list of {} bytes with {} bytes after it",
                h.payload_length,
                body.len() as i64 - h.payload_length as i64
            )));
        }
        let b = &mut body;
        let first_field = alloy_rlp::Header::decode_bytes(b, false).map_err(dec)?;
        let outcome = match first_field {
            [] => ReceiptOutcome::Status(false),
            [1] => ReceiptOutcome::Status(true),
            r if r.len() == 32 && tx_type == 0 => ReceiptOutcome::StateRoot(B256::from_slice(r)),
            other => {
                return Err(ReceiptError::Decode(format!(
                "status field of {} bytes is neither 0, 1 nor (legacy only) a 32-byte state root",
                other.len()
            )))
            }
        };
        let receipt = GoatReceipt {
            tx_type,
            outcome,
            cumulative_gas_used: Decodable::decode(b).map_err(dec)?,
            logs_bloom: Decodable::decode(b).map_err(dec)?,
            logs: Decodable::decode(b).map_err(dec)?,
        };
        if !b.is_empty() {
            return Err(ReceiptError::Decode(format!(
                "{} bytes after the fourth field (logs)",
                b.len()
            )));
        }
        if receipt.encode_2718() != bytes {
            return Err(ReceiptError::Decode("non-canonical encoding".into()));
        }
        Ok(receipt)
    }
}

/// The trie key of transaction `index`: `rlp(index)`.
pub fn trie_key(index: u64) -> Nibbles {
    let mut k = Vec::with_capacity(9);
    index.encode(&mut k);
    Nibbles::unpack(&k)
}

/// Builds the trie of already-encoded receipts; returns the root and, for
/// `target`, the proof nodes from the root down.
pub fn receipts_root_and_proof(encoded: &[Vec<u8>], target: Option<u64>) -> (B256, Vec<Bytes>) {
    if encoded.is_empty() {
        return (EMPTY_ROOT_HASH, Vec::new());
    }
    let target_key = target.map(trie_key);
    let mut hb = match &target_key {
        Some(k) => HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![*k])),
        None => HashBuilder::default(),
    };
    let n = encoded.len();
    for i in 0..n {
        let index = alloy_trie::root::adjust_index_for_rlp(i, n);
        hb.add_leaf(trie_key(index as u64), &encoded[index]);
    }
    let root = hb.root();
    let proof = match &target_key {
        Some(k) => hb
            .take_proof_nodes()
            .matching_nodes_sorted(k)
            .into_iter()
            .map(|(_, node)| node)
            .collect(),
        None => Vec::new(),
    };
    (root, proof)
}

/// Checks that `proof` leads from `root` to exactly `receipt` under the key
/// `rlp(tx_index)`.
pub fn verify_receipt_proof(
    root: B256,
    tx_index: u64,
    receipt: &[u8],
    proof: &[Bytes],
) -> Result<(), ReceiptError> {
    alloy_trie::proof::verify_proof(root, trie_key(tx_index), Some(receipt.to_vec()), proof)
        .map_err(|e| ReceiptError::BadProof {
            tx_index,
            root,
            // alloy-trie quotes whole nodes; keep the line readable.
            message: format!(
                "{} ({} proof nodes)",
                crate::error::abbreviate_hex(&e.to_string()),
                proof.len()
            ),
        })
}

/// All receipts of one block, checked against the header's receiptsRoot.
/// Only a `BlockReceipts` can emit a proof, so no proof is ever built from
/// receipts that do not rebuild the committed root.
#[derive(Debug, Clone)]
pub struct BlockReceipts {
    number: u64,
    hash: B256,
    receipts_root: B256,
    receipts: Vec<GoatReceipt>,
    encoded: Vec<Vec<u8>>,
}

impl BlockReceipts {
    /// Parses the receipts of block `number`/`hash` from RPC JSON (any
    /// order), checks they are transactions `0..n`, encodes them and
    /// compares the rebuilt root with `receipts_root`.
    pub fn from_rpc(
        number: u64,
        hash: B256,
        receipts_root: B256,
        json: &[Value],
    ) -> Result<Self, ReceiptError> {
        let mut parsed = json
            .iter()
            .map(GoatReceipt::from_rpc_json)
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort_by_key(|(i, _)| *i);
        let incomplete = |message: String| ReceiptError::Incomplete {
            number,
            hash,
            count: json.len(),
            message,
        };
        for (expected, (i, _)) in parsed.iter().enumerate() {
            if *i != expected as u64 {
                return Err(incomplete(format!(
                    "expected transaction index {expected}, found {i}"
                )));
            }
        }
        for (i, r) in json.iter().enumerate() {
            if let Some(bh) = r.get("blockHash").and_then(Value::as_str) {
                if bh.parse::<B256>().ok() != Some(hash) {
                    return Err(incomplete(format!(
                        "receipt {i} belongs to block {bh} (the node may have reorged)"
                    )));
                }
            }
        }
        let receipts: Vec<GoatReceipt> = parsed.into_iter().map(|(_, r)| r).collect();
        Self::from_receipts(number, hash, receipts_root, receipts)
    }

    /// Same as [`Self::from_rpc`] for already decoded receipts, in index order.
    pub fn from_receipts(
        number: u64,
        hash: B256,
        receipts_root: B256,
        receipts: Vec<GoatReceipt>,
    ) -> Result<Self, ReceiptError> {
        let encoded: Vec<Vec<u8>> = receipts.iter().map(GoatReceipt::encode_2718).collect();
        let (computed, _) = receipts_root_and_proof(&encoded, None);
        if computed != receipts_root {
            return Err(ReceiptError::RootMismatch {
                number,
                hash,
                computed,
                expected: receipts_root,
            });
        }
        Ok(BlockReceipts {
            number,
            hash,
            receipts_root,
            receipts,
            encoded,
        })
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The block hash.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The receipts, in transaction order.
    pub fn receipts(&self) -> &[GoatReceipt] {
        &self.receipts
    }

    /// The checked root.
    pub fn root(&self) -> B256 {
        self.receipts_root
    }

    /// The encoded receipt of `tx_index` and its proof nodes (root first).
    pub fn prove(&self, tx_index: u64) -> Result<(Bytes, Vec<Bytes>), ReceiptError> {
        let idx = usize::try_from(tx_index)
            .ok()
            .filter(|i| *i < self.encoded.len())
            .ok_or(ReceiptError::NoSuchTx {
                number: self.number,
                tx_index,
                count: self.encoded.len(),
            })?;
        let (root, proof) = receipts_root_and_proof(&self.encoded, Some(tx_index));
        debug_assert_eq!(root, self.receipts_root);
        Ok((Bytes::from(self.encoded[idx].clone()), proof))
    }
}

/// A U256 from a 32-byte big-endian word.
pub fn word_to_u256(word: &[u8]) -> Option<U256> {
    (word.len() == 32).then(|| U256::from_be_slice(word))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A receipt of `tx_type` with `logs` logs of varying size.
    pub(crate) fn synthetic(tx_type: u8, i: u64, logs: usize) -> GoatReceipt {
        GoatReceipt {
            tx_type,
            outcome: ReceiptOutcome::Status(i % 7 != 3),
            cumulative_gas_used: 21_000 * (i + 1),
            logs_bloom: Bloom::repeat_byte((i % 251) as u8),
            logs: (0..logs)
                .map(|l| ReceiptLog {
                    address: Address::repeat_byte((l + 1) as u8),
                    topics: (0..=(l % 4))
                        .map(|t| B256::repeat_byte(t as u8 + 9))
                        .collect(),
                    data: Bytes::from(vec![i as u8; 32 * (l % 3)]),
                })
                .collect(),
        }
    }

    #[test]
    fn encode_decode_round_trip_every_type() {
        for ty in [0u8, 1, 2, 3, 4, 0x60, 0x7f] {
            let r = synthetic(ty, 5, 3);
            let enc = r.encode_2718();
            if ty == 0 {
                assert!(enc[0] >= 0xc0);
            } else {
                assert_eq!(enc[0], ty);
            }
            assert_eq!(GoatReceipt::decode_2718(&enc).unwrap(), r);
        }
        let mut legacy = synthetic(0, 1, 1);
        legacy.outcome = ReceiptOutcome::StateRoot(B256::repeat_byte(7));
        assert_eq!(
            GoatReceipt::decode_2718(&legacy.encode_2718()).unwrap(),
            legacy
        );
    }

    #[test]
    fn decoding_is_strict() {
        let r = synthetic(2, 1, 2);
        let mut enc = r.encode_2718();
        enc.push(0);
        assert!(GoatReceipt::decode_2718(&enc).is_err());
        // A typed receipt may not carry a state root.
        let mut typed_root = synthetic(2, 1, 0);
        typed_root.outcome = ReceiptOutcome::StateRoot(B256::ZERO);
        assert!(GoatReceipt::decode_2718(&typed_root.encode_2718()).is_err());
        assert!(GoatReceipt::decode_2718(&[0x80]).is_err());
        assert!(GoatReceipt::decode_2718(&[]).is_err());
    }

    #[test]
    fn matches_alloy_ordered_trie_root() {
        for n in [1usize, 2, 3, 16, 127, 128, 129, 300] {
            let enc: Vec<Vec<u8>> = (0..n)
                .map(|i| synthetic([0, 1, 2, 0x60][i % 4], i as u64, i % 5).encode_2718())
                .collect();
            let (root, _) = receipts_root_and_proof(&enc, None);
            assert_eq!(
                root,
                alloy_trie::root::ordered_trie_root_encoded(&enc),
                "n={n}"
            );
            for t in [0, n / 2, n - 1] {
                let (root2, proof) = receipts_root_and_proof(&enc, Some(t as u64));
                assert_eq!(root2, root);
                verify_receipt_proof(root, t as u64, &enc[t], &proof).unwrap();
                // Another index's receipt does not verify under this key.
                if n > 1 {
                    let other = (t + 1) % n;
                    assert!(verify_receipt_proof(root, t as u64, &enc[other], &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn a_bad_proof_error_is_one_readable_line_not_kilobytes_of_nodes() {
        // Receipts with many logs make trie nodes and receipts of kilobytes.
        let enc: Vec<Vec<u8>> = (0..20).map(|i| synthetic(2, i, 12).encode_2718()).collect();
        let (root, proof) = receipts_root_and_proof(&enc, Some(3));
        assert!(enc[4].len() > 1_000, "a large receipt");
        let err = verify_receipt_proof(root, 3, &enc[4], &proof)
            .unwrap_err()
            .to_string();
        assert!(err.len() < 600, "{} characters: {err}", err.len());
        assert!(
            err.contains("bytes)") && err.contains("proof nodes"),
            "{err}"
        );
        assert!(
            err.contains(&root.to_string()),
            "the root stays whole: {err}"
        );
    }

    /// A GOAT system-transaction receipt (type 0x60), modelled on the
    /// shape of the receipts goat-geth serves: zero gas, logs from the
    /// 0xbc10… predeploys.
    pub(crate) fn goat_0x60_receipt() -> GoatReceipt {
        GoatReceipt {
            tx_type: 0x60,
            outcome: ReceiptOutcome::Status(true),
            cumulative_gas_used: 0,
            logs_bloom: Bloom::repeat_byte(0x10),
            logs: vec![ReceiptLog {
                address: "0xbc10000000000000000000000000000000000003"
                    .parse()
                    .unwrap(),
                topics: vec![B256::repeat_byte(0xb7), B256::with_last_byte(0x22)],
                data: Bytes::from(vec![0xbb; 96]),
            }],
        }
    }

    #[test]
    fn goat_0x60_receipt_proves_and_wrong_type_byte_fails() {
        let mut rs: Vec<GoatReceipt> = (0..20).map(|i| synthetic(2, i, 1)).collect();
        rs[0] = goat_0x60_receipt();
        let enc: Vec<Vec<u8>> = rs.iter().map(GoatReceipt::encode_2718).collect();
        let (root, proof) = receipts_root_and_proof(&enc, Some(0));
        let block = BlockReceipts::from_receipts(7, B256::ZERO, root, rs.clone()).unwrap();
        let (bytes, proof2) = block.prove(0).unwrap();
        assert_eq!(proof, proof2);
        assert_eq!(bytes[0], 0x60);
        verify_receipt_proof(root, 0, &bytes, &proof).unwrap();
        assert_eq!(GoatReceipt::decode_2718(&bytes).unwrap(), rs[0]);
        // The same receipt under another type byte is another leaf.
        let mut wrong = bytes.to_vec();
        wrong[0] = 0x02;
        assert!(verify_receipt_proof(root, 0, &wrong, &proof).is_err());
        // A receipt JSON with the wrong type rebuilds another root.
        let mut as_eip1559 = rs.clone();
        as_eip1559[0].tx_type = 2;
        let err = BlockReceipts::from_receipts(7, B256::ZERO, root, as_eip1559).unwrap_err();
        assert!(
            matches!(err, ReceiptError::RootMismatch { number: 7, .. }),
            "{err}"
        );
    }

    #[test]
    fn rpc_json_of_a_0x60_receipt() {
        let v = serde_json::json!({
            "blockHash": "0x74825a896430bbd0bd2d1e77909cfea44ccf8e6150d8c41a1df3ff4445cbf76f",
            "cumulativeGasUsed": "0x0", "effectiveGasPrice": "0x0", "gasUsed": "0x0",
            "from": "0xbc10000000000000000000000000000000001000",
            "to": "0xbc10000000000000000000000000000000000003",
            "logs": [{
                "address": "0xbc10000000000000000000000000000000000003",
                "topics": ["0x829a8683c544ad289ce92d3ce06e9ebad69b18a6916e60ec766c2c217461d8e9",
                           "0x0000000000000000000000000000000000000000000000000000000000000032"],
                "data": "0x", "logIndex": "0x0", "removed": false
            }],
            "logsBloom": format!("0x{}", "00".repeat(256)),
            "status": "0x1", "transactionIndex": "0x0", "type": "0x60", "contractAddress": null
        });
        let (i, r) = GoatReceipt::from_rpc_json(&v).unwrap();
        assert_eq!(i, 0);
        assert_eq!(r.tx_type, 0x60);
        assert!(r.succeeded());
        assert_eq!(r.logs[0].topics.len(), 2);
        let mut bad = v.clone();
        bad["type"] = "0x80".into();
        assert!(GoatReceipt::from_rpc_json(&bad).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_index_of_any_block_proves(n in 1usize..400, pick in 0usize..400) {
            let t = pick % n;
            let enc: Vec<Vec<u8>> = (0..n)
                .map(|i| synthetic([0, 1, 2, 3, 4, 0x60][i % 6], i as u64, i % 3).encode_2718())
                .collect();
            let (root, proof) = receipts_root_and_proof(&enc, Some(t as u64));
            proptest::prop_assert!(verify_receipt_proof(root, t as u64, &enc[t], &proof).is_ok());
        }
    }
}
