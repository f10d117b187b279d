//! GOAT (EVM) block headers: strict parsing of the JSON an RPC node serves,
//! canonical RLP encoding and decoding, and the block hash
//! `keccak256(rlp(header))` computed by gmrelay itself.
//!
//! A header field gmrelay does not know must fail loudly, never hash wrongly:
//! [`GoatHeader::from_rpc_json`] accepts exactly the consensus header fields
//! (in their fork order) plus an explicit allow-list of keys RPC nodes add
//! to a block object ([`IGNORED_RPC_KEYS`]). Any other key is an error naming
//! it, and an optional fork field without the fields of the earlier forks
//! (say `requestsHash` without `withdrawalsRoot`) is an error too.

use std::fmt;

use alloy::primitives::{keccak256, Address, Bloom, Bytes, B256, B64, U256};
use alloy_rlp::{Decodable, Encodable};
use serde_json::{Map, Value};
use thiserror::Error;

/// Keys of an `eth_getBlockByNumber` block object that are not header
/// fields and are ignored (the hash is compared separately).
pub const IGNORED_RPC_KEYS: &[&str] = &[
    "hash",
    "size",
    "totalDifficulty",
    "transactions",
    "uncles",
    "withdrawals",
    "sealFields",
    "author",
];

/// The consensus header fields in RLP order, as JSON keys. The first 15
/// are mandatory; the rest arrive with the forks of [`HeaderShape`].
pub const HEADER_FIELDS: [&str; 21] = [
    "parentHash",
    "sha3Uncles",
    "miner",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "logsBloom",
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "extraData",
    "mixHash",
    "nonce",
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
];

/// Number of mandatory (pre-London) header fields.
const MANDATORY: usize = 15;

/// A header that cannot be parsed, or whose hash is not the one claimed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The JSON is not an object.
    #[error("block header: expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A key that is neither a header field nor an allow-listed RPC key.
    #[error("block header{at}: unknown field `{field}` (gmrelay refuses to hash a header with a field it does not know)", at = at(*.number))]
    UnknownField {
        /// The block number, when already parsed.
        number: Option<u64>,
        /// The key.
        field: String,
    },
    /// A mandatory field is missing.
    #[error("block header{at}: missing field `{field}`", at = at(*.number))]
    MissingField {
        /// The block number, when already parsed.
        number: Option<u64>,
        /// The key.
        field: &'static str,
    },
    /// A field whose value does not parse.
    #[error("block header{at}: field `{field}`: {message}", at = at(*.number))]
    BadField {
        /// The block number, when already parsed.
        number: Option<u64>,
        /// The key.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A fork field without the fields of the earlier forks.
    #[error("block header{at}: field `{field}` present without `{missing}` (fork fields must appear in order: baseFeePerGas, withdrawalsRoot, blobGasUsed+excessBlobGas+parentBeaconBlockRoot, requestsHash)", at = at(*.number))]
    OutOfOrder {
        /// The block number, when already parsed.
        number: Option<u64>,
        /// The field present.
        field: &'static str,
        /// The earlier field missing.
        missing: &'static str,
    },
    /// Header RLP that does not decode canonically.
    #[error("header RLP: {0}")]
    Rlp(String),
    /// The computed hash differs from the claimed one.
    #[error("block {number}: header hashes to {computed}, the node claims {claimed}")]
    HashMismatch {
        /// The block number.
        number: u64,
        /// keccak256(rlp(header)) computed by gmrelay.
        computed: B256,
        /// The `hash` the JSON carries.
        claimed: B256,
    },
}

fn at(number: Option<u64>) -> String {
    number.map(|n| format!(" {n}")).unwrap_or_default()
}

/// Which fork's header layout a header has (by its number of fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HeaderShape {
    /// 15 fields (pre-London).
    Frontier,
    /// 16 fields: + baseFeePerGas (EIP-1559).
    London,
    /// 17 fields: + withdrawalsRoot (EIP-4895).
    Shanghai,
    /// 20 fields: + blobGasUsed, excessBlobGas (EIP-4844), parentBeaconBlockRoot (EIP-4788).
    Cancun,
    /// 21 fields: + requestsHash (EIP-7685).
    Prague,
}

impl HeaderShape {
    /// The number of RLP fields of this shape.
    pub fn field_count(self) -> usize {
        match self {
            HeaderShape::Frontier => 15,
            HeaderShape::London => 16,
            HeaderShape::Shanghai => 17,
            HeaderShape::Cancun => 20,
            HeaderShape::Prague => 21,
        }
    }

    fn from_count(n: usize) -> Option<Self> {
        Some(match n {
            15 => HeaderShape::Frontier,
            16 => HeaderShape::London,
            17 => HeaderShape::Shanghai,
            20 => HeaderShape::Cancun,
            21 => HeaderShape::Prague,
            _ => return None,
        })
    }
}

impl fmt::Display for HeaderShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderShape::Frontier => "Frontier",
            HeaderShape::London => "London",
            HeaderShape::Shanghai => "Shanghai",
            HeaderShape::Cancun => "Cancun",
            HeaderShape::Prague => "Prague",
        })
    }
}

/// An EVM block header with every consensus field, as GOAT (and Ethereum)
/// hash it. Optional fields follow the fork order; the constructors refuse
/// a later one without the earlier ones, so the encoding is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoatHeader {
    /// `parentHash`.
    pub parent_hash: B256,
    /// `sha3Uncles`.
    pub ommers_hash: B256,
    /// `miner`.
    pub beneficiary: Address,
    /// `stateRoot`.
    pub state_root: B256,
    /// `transactionsRoot`.
    pub transactions_root: B256,
    /// `receiptsRoot`.
    pub receipts_root: B256,
    /// `logsBloom`.
    pub logs_bloom: Bloom,
    /// `difficulty`.
    pub difficulty: U256,
    /// `number`.
    pub number: u64,
    /// `gasLimit`.
    pub gas_limit: u64,
    /// `gasUsed`.
    pub gas_used: u64,
    /// `timestamp`.
    pub timestamp: u64,
    /// `extraData`.
    pub extra_data: Bytes,
    /// `mixHash` (prevRandao after the merge).
    pub mix_hash: B256,
    /// `nonce`.
    pub nonce: B64,
    /// `baseFeePerGas` (London).
    pub base_fee_per_gas: Option<u64>,
    /// `withdrawalsRoot` (Shanghai).
    pub withdrawals_root: Option<B256>,
    /// `blobGasUsed` (Cancun).
    pub blob_gas_used: Option<u64>,
    /// `excessBlobGas` (Cancun).
    pub excess_blob_gas: Option<u64>,
    /// `parentBeaconBlockRoot` (Cancun).
    pub parent_beacon_block_root: Option<B256>,
    /// `requestsHash` (Prague).
    pub requests_hash: Option<B256>,
}

/// A header parsed from RPC JSON with the hash the node claims for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcHeader {
    /// The header.
    pub header: GoatHeader,
    /// The node's `hash`.
    pub claimed_hash: B256,
}

/// The outcome of comparing the computed hash with the claimed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCheck {
    /// keccak256(rlp(header)) equals `hash`.
    Match(B256),
    /// They differ.
    Mismatch {
        /// Computed by gmrelay.
        computed: B256,
        /// Claimed by the JSON.
        claimed: B256,
    },
}

impl RpcHeader {
    /// Parses a block object and compares the hashes (without failing on a mismatch).
    pub fn parse(v: &Value) -> Result<Self, HeaderError> {
        let header = GoatHeader::from_rpc_json(v)?;
        let obj = v.as_object().expect("checked by from_rpc_json");
        let claimed_hash = match obj.get("hash") {
            Some(h) => parse_fixed::<32>(h, "hash", Some(header.number)).map(B256::from)?,
            None => {
                return Err(HeaderError::MissingField {
                    number: Some(header.number),
                    field: "hash",
                })
            }
        };
        Ok(RpcHeader {
            header,
            claimed_hash,
        })
    }

    /// Compares keccak256(rlp(header)) with the claimed hash.
    pub fn check(&self) -> HashCheck {
        let computed = self.header.hash_slow();
        if computed == self.claimed_hash {
            HashCheck::Match(computed)
        } else {
            HashCheck::Mismatch {
                computed,
                claimed: self.claimed_hash,
            }
        }
    }

    /// The header, when its hash is the claimed one; a [`HeaderError::HashMismatch`] otherwise.
    pub fn verified(self) -> Result<(GoatHeader, B256), HeaderError> {
        match self.check() {
            HashCheck::Match(h) => Ok((self.header, h)),
            HashCheck::Mismatch { computed, claimed } => Err(HeaderError::HashMismatch {
                number: self.header.number,
                computed,
                claimed,
            }),
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn hex_str<'a>(
    v: &'a Value,
    field: &'static str,
    number: Option<u64>,
) -> Result<&'a str, HeaderError> {
    let bad = |message: String| HeaderError::BadField {
        number,
        field,
        message,
    };
    let s = v.as_str().ok_or_else(|| {
        bad(format!(
            "expected a 0x-prefixed hex string, got {}",
            json_kind(v)
        ))
    })?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| bad(format!("`{s}` lacks the 0x prefix")))?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("`{s}` is not hex")));
    }
    Ok(digits)
}

/// Parses a `0x…` QUANTITY of at most `max_bits` bits.
fn parse_quantity(
    v: &Value,
    field: &'static str,
    number: Option<u64>,
    max_bits: usize,
) -> Result<U256, HeaderError> {
    let digits = hex_str(v, field, number)?;
    let bad = |message: String| HeaderError::BadField {
        number,
        field,
        message,
    };
    if digits.is_empty() {
        return Err(bad("empty quantity `0x`".into()));
    }
    let value = U256::from_str_radix(digits, 16)
        .map_err(|_| bad(format!("`0x{digits}` does not fit 256 bits")))?;
    if value.bit_len() > max_bits {
        return Err(bad(format!("`0x{digits}` does not fit {max_bits} bits")));
    }
    Ok(value)
}

fn parse_u64(v: &Value, field: &'static str, number: Option<u64>) -> Result<u64, HeaderError> {
    parse_quantity(v, field, number, 64).map(|q| q.to::<u64>())
}

fn parse_data(v: &Value, field: &'static str, number: Option<u64>) -> Result<Vec<u8>, HeaderError> {
    let digits = hex_str(v, field, number)?;
    hex::decode(digits).map_err(|e| HeaderError::BadField {
        number,
        field,
        message: format!("not whole bytes of hex: {e}"),
    })
}

fn parse_fixed<const N: usize>(
    v: &Value,
    field: &'static str,
    number: Option<u64>,
) -> Result<[u8; N], HeaderError> {
    let bytes = parse_data(v, field, number)?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| HeaderError::BadField {
        number,
        field,
        message: format!("{len} bytes, expected {N}"),
    })
}

impl GoatHeader {
    /// Parses a block object as `eth_getBlockByNumber` / `eth_getBlockByHash`
    /// return it. Unknown keys and out-of-order fork fields are errors.
    pub fn from_rpc_json(v: &Value) -> Result<Self, HeaderError> {
        let obj: &Map<String, Value> = v
            .as_object()
            .ok_or_else(|| HeaderError::NotAnObject(json_kind(v)))?;
        // The number first, so that every later error can name the block.
        let number = match obj.get("number") {
            Some(n) => parse_u64(n, "number", None)?,
            None => {
                return Err(HeaderError::MissingField {
                    number: None,
                    field: "number",
                })
            }
        };
        let n = Some(number);
        if let Some(key) = obj.keys().find(|k| {
            !HEADER_FIELDS.contains(&k.as_str()) && !IGNORED_RPC_KEYS.contains(&k.as_str())
        }) {
            return Err(HeaderError::UnknownField {
                number: n,
                field: key.clone(),
            });
        }
        // `null` counts as absent for the optional fields only.
        let present = |f: &str| obj.get(f).is_some_and(|v| !v.is_null());
        for field in &HEADER_FIELDS[..MANDATORY] {
            if !present(field) {
                return Err(HeaderError::MissingField { number: n, field });
            }
        }
        // Fork fields: present ones must form a prefix of the fork order, and
        // the three Cancun fields come together.
        let optional = &HEADER_FIELDS[MANDATORY..];
        let mut last_missing: Option<&'static str> = None;
        for field in optional {
            if present(field) {
                if let Some(missing) = last_missing {
                    return Err(HeaderError::OutOfOrder {
                        number: n,
                        field,
                        missing,
                    });
                }
            } else if last_missing.is_none() {
                last_missing = Some(field);
            }
        }
        let count = MANDATORY + optional.iter().filter(|f| present(f)).count();
        if HeaderShape::from_count(count).is_none() {
            // 18 or 19: some but not all of the Cancun fields.
            let missing = ["excessBlobGas", "parentBeaconBlockRoot"]
                .into_iter()
                .find(|f| !present(f))
                .unwrap_or("parentBeaconBlockRoot");
            return Err(HeaderError::OutOfOrder {
                number: n,
                field: "blobGasUsed",
                missing,
            });
        }
        let get = |f: &'static str| obj.get(f).filter(|v| !v.is_null());
        let req = |f: &'static str| get(f).expect("presence checked");
        let b256 = |f: &'static str| parse_fixed::<32>(req(f), f, n).map(B256::from);
        let opt_b256 = |f: &'static str| {
            get(f)
                .map(|v| parse_fixed::<32>(v, f, n).map(B256::from))
                .transpose()
        };
        let opt_u64 = |f: &'static str| get(f).map(|v| parse_u64(v, f, n)).transpose();
        Ok(GoatHeader {
            parent_hash: b256("parentHash")?,
            ommers_hash: b256("sha3Uncles")?,
            beneficiary: Address::from(parse_fixed::<20>(req("miner"), "miner", n)?),
            state_root: b256("stateRoot")?,
            transactions_root: b256("transactionsRoot")?,
            receipts_root: b256("receiptsRoot")?,
            logs_bloom: Bloom::from(parse_fixed::<256>(req("logsBloom"), "logsBloom", n)?),
            difficulty: parse_quantity(req("difficulty"), "difficulty", n, 256)?,
            number,
            gas_limit: parse_u64(req("gasLimit"), "gasLimit", n)?,
            gas_used: parse_u64(req("gasUsed"), "gasUsed", n)?,
            timestamp: parse_u64(req("timestamp"), "timestamp", n)?,
            extra_data: Bytes::from(parse_data(req("extraData"), "extraData", n)?),
            mix_hash: b256("mixHash")?,
            nonce: B64::from(parse_fixed::<8>(req("nonce"), "nonce", n)?),
            base_fee_per_gas: opt_u64("baseFeePerGas")?,
            withdrawals_root: opt_b256("withdrawalsRoot")?,
            blob_gas_used: opt_u64("blobGasUsed")?,
            excess_blob_gas: opt_u64("excessBlobGas")?,
            parent_beacon_block_root: opt_b256("parentBeaconBlockRoot")?,
            requests_hash: opt_b256("requestsHash")?,
        })
    }

    /// The fork layout. Only the constructors of this module build headers
    /// whose optional fields form a valid prefix; a hand-built header with a
    /// gap gets the shape of its longest valid prefix... and `check_shape`
    /// refuses it before encoding.
    pub fn shape(&self) -> HeaderShape {
        HeaderShape::from_count(self.field_count()).unwrap_or(HeaderShape::Frontier)
    }

    fn field_count(&self) -> usize {
        MANDATORY
            + [
                self.base_fee_per_gas.is_some(),
                self.withdrawals_root.is_some(),
                self.blob_gas_used.is_some(),
                self.excess_blob_gas.is_some(),
                self.parent_beacon_block_root.is_some(),
                self.requests_hash.is_some(),
            ]
            .iter()
            .filter(|p| **p)
            .count()
    }

    /// Checks that the optional fields form a valid fork prefix (for headers
    /// built in code rather than parsed).
    pub fn check_shape(&self) -> Result<HeaderShape, HeaderError> {
        let flags = [
            ("baseFeePerGas", self.base_fee_per_gas.is_some()),
            ("withdrawalsRoot", self.withdrawals_root.is_some()),
            ("blobGasUsed", self.blob_gas_used.is_some()),
            ("excessBlobGas", self.excess_blob_gas.is_some()),
            (
                "parentBeaconBlockRoot",
                self.parent_beacon_block_root.is_some(),
            ),
            ("requestsHash", self.requests_hash.is_some()),
        ];
        let mut missing = None;
        for (field, p) in flags {
            if p {
                if let Some(missing) = missing {
                    return Err(HeaderError::OutOfOrder {
                        number: Some(self.number),
                        field,
                        missing,
                    });
                }
            } else if missing.is_none() {
                missing = Some(field);
            }
        }
        HeaderShape::from_count(self.field_count()).ok_or(HeaderError::OutOfOrder {
            number: Some(self.number),
            field: "blobGasUsed",
            missing: "parentBeaconBlockRoot",
        })
    }

    fn payload_length(&self) -> usize {
        let mut len = self.parent_hash.length()
            + self.ommers_hash.length()
            + self.beneficiary.length()
            + self.state_root.length()
            + self.transactions_root.length()
            + self.receipts_root.length()
            + self.logs_bloom.length()
            + self.difficulty.length()
            + self.number.length()
            + self.gas_limit.length()
            + self.gas_used.length()
            + self.timestamp.length()
            + self.extra_data.length()
            + self.mix_hash.length()
            + self.nonce.length();
        len += self.base_fee_per_gas.map_or(0, |v| v.length());
        len += self.withdrawals_root.map_or(0, |v| v.length());
        len += self.blob_gas_used.map_or(0, |v| v.length());
        len += self.excess_blob_gas.map_or(0, |v| v.length());
        len += self.parent_beacon_block_root.map_or(0, |v| v.length());
        len += self.requests_hash.map_or(0, |v| v.length());
        len
    }

    /// Appends `rlp(header)`: a list of the fields in consensus order.
    pub fn encode_rlp(&self, out: &mut Vec<u8>) {
        alloy_rlp::Header {
            list: true,
            payload_length: self.payload_length(),
        }
        .encode(out);
        self.parent_hash.encode(out);
        self.ommers_hash.encode(out);
        self.beneficiary.encode(out);
        self.state_root.encode(out);
        self.transactions_root.encode(out);
        self.receipts_root.encode(out);
        self.logs_bloom.encode(out);
        self.difficulty.encode(out);
        self.number.encode(out);
        self.gas_limit.encode(out);
        self.gas_used.encode(out);
        self.timestamp.encode(out);
        self.extra_data.encode(out);
        self.mix_hash.encode(out);
        self.nonce.encode(out);
        if let Some(v) = self.base_fee_per_gas {
            v.encode(out);
        }
        if let Some(v) = self.withdrawals_root {
            v.encode(out);
        }
        if let Some(v) = self.blob_gas_used {
            v.encode(out);
        }
        if let Some(v) = self.excess_blob_gas {
            v.encode(out);
        }
        if let Some(v) = self.parent_beacon_block_root {
            v.encode(out);
        }
        if let Some(v) = self.requests_hash {
            v.encode(out);
        }
    }

    /// `rlp(header)`.
    pub fn rlp(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload_length() + 4);
        self.encode_rlp(&mut out);
        out
    }

    /// `keccak256(rlp(header))`: the block hash.
    pub fn hash_slow(&self) -> B256 {
        keccak256(self.rlp())
    }

    /// Decodes `rlp(header)` strictly: one list, a valid fork shape, no
    /// trailing bytes, and canonical encoding (re-encoding gives the input).
    pub fn decode_rlp(bytes: &[u8]) -> Result<Self, HeaderError> {
        let rlp = |e: alloy_rlp::Error| HeaderError::Rlp(e.to_string());
        let mut buf = bytes;
        let h = alloy_rlp::Header::decode(&mut buf).map_err(rlp)?;
        if !h.list {
            return Err(HeaderError::Rlp("not a list".into()));
        }
        if buf.len() != h.payload_length {
            return Err(HeaderError::Rlp(format!(
                "list of {} bytes followed by {} trailing bytes",
                h.payload_length,
                buf.len().saturating_sub(h.payload_length)
            )));
        }
        let b = &mut buf;
        let mut header = GoatHeader {
            parent_hash: Decodable::decode(b).map_err(rlp)?,
            ommers_hash: Decodable::decode(b).map_err(rlp)?,
            beneficiary: Decodable::decode(b).map_err(rlp)?,
            state_root: Decodable::decode(b).map_err(rlp)?,
            transactions_root: Decodable::decode(b).map_err(rlp)?,
            receipts_root: Decodable::decode(b).map_err(rlp)?,
            logs_bloom: Decodable::decode(b).map_err(rlp)?,
            difficulty: Decodable::decode(b).map_err(rlp)?,
            number: Decodable::decode(b).map_err(rlp)?,
            gas_limit: Decodable::decode(b).map_err(rlp)?,
            gas_used: Decodable::decode(b).map_err(rlp)?,
            timestamp: Decodable::decode(b).map_err(rlp)?,
            extra_data: Decodable::decode(b).map_err(rlp)?,
            mix_hash: Decodable::decode(b).map_err(rlp)?,
            nonce: Decodable::decode(b).map_err(rlp)?,
            ..GoatHeader::default()
        };
        if !b.is_empty() {
            header.base_fee_per_gas = Some(Decodable::decode(b).map_err(rlp)?);
        }
        if !b.is_empty() {
            header.withdrawals_root = Some(Decodable::decode(b).map_err(rlp)?);
        }
        if !b.is_empty() {
            header.blob_gas_used = Some(Decodable::decode(b).map_err(rlp)?);
            header.excess_blob_gas = Some(Decodable::decode(b).map_err(rlp)?);
            header.parent_beacon_block_root = Some(Decodable::decode(b).map_err(rlp)?);
        }
        if !b.is_empty() {
            header.requests_hash = Some(Decodable::decode(b).map_err(rlp)?);
        }
        if !b.is_empty() {
            return Err(HeaderError::Rlp(format!(
                "block {}: {} bytes after the last known field (requestsHash): a newer header layout gmrelay does not know",
                header.number,
                b.len()
            )));
        }
        if header.rlp() != bytes {
            return Err(HeaderError::Rlp(format!(
                "block {}: non-canonical encoding",
                header.number
            )));
        }
        Ok(header)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/eth/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn real_headers_of_every_shape_hash_to_their_hash() {
        for (name, shape) in [
            ("london", HeaderShape::London),
            ("london_15537393", HeaderShape::London),
            ("shanghai", HeaderShape::Shanghai),
            ("cancun", HeaderShape::Cancun),
            ("prague", HeaderShape::Prague),
            ("prague_23094898", HeaderShape::Prague),
            ("prague_24630100", HeaderShape::Prague),
        ] {
            let parsed = RpcHeader::parse(&fixture(name)).unwrap();
            assert_eq!(parsed.header.shape(), shape, "{name}");
            assert!(
                matches!(parsed.check(), HashCheck::Match(_)),
                "{name}: {:?}",
                parsed.check()
            );
            let rlp = parsed.header.rlp();
            assert_eq!(
                GoatHeader::decode_rlp(&rlp).unwrap(),
                parsed.header,
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_field_fails_loudly() {
        let mut v = fixture("prague");
        v["blockAccessListHash"] = Value::String(format!("0x{}", "00".repeat(32)));
        let err = GoatHeader::from_rpc_json(&v).unwrap_err();
        assert!(
            matches!(&err, HeaderError::UnknownField { field, .. } if field == "blockAccessListHash"),
            "{err}"
        );
        assert!(err.to_string().contains("23182607"), "{err}");
    }

    #[test]
    fn fork_fields_out_of_order_fail() {
        let mut v = fixture("prague");
        v.as_object_mut().unwrap().remove("withdrawalsRoot");
        let err = GoatHeader::from_rpc_json(&v).unwrap_err();
        assert!(
            matches!(
                err,
                HeaderError::OutOfOrder {
                    field: "blobGasUsed",
                    missing: "withdrawalsRoot",
                    ..
                }
            ),
            "{err}"
        );
        let mut v = fixture("cancun");
        v.as_object_mut().unwrap().remove("excessBlobGas");
        assert!(matches!(
            GoatHeader::from_rpc_json(&v).unwrap_err(),
            HeaderError::OutOfOrder { .. }
        ));
    }

    #[test]
    fn malformed_values_are_named() {
        let mut v = fixture("london");
        v["gasUsed"] = Value::from(5);
        let err = GoatHeader::from_rpc_json(&v).unwrap_err().to_string();
        assert!(err.contains("gasUsed") && err.contains("number"), "{err}");
        let mut v = fixture("london");
        v["miner"] = Value::String("0x1234".into());
        let err = GoatHeader::from_rpc_json(&v).unwrap_err().to_string();
        assert!(
            err.contains("miner") && err.contains("2 bytes, expected 20"),
            "{err}"
        );
        let mut v = fixture("london");
        v.as_object_mut().unwrap().remove("mixHash");
        let err = GoatHeader::from_rpc_json(&v).unwrap_err().to_string();
        assert!(err.contains("missing field `mixHash`"), "{err}");
    }

    #[test]
    fn tampered_field_is_a_mismatch_naming_both_hashes() {
        let mut v = fixture("shanghai");
        v["gasUsed"] = Value::String("0x1".into());
        let parsed = RpcHeader::parse(&v).unwrap();
        let err = parsed.verified().unwrap_err();
        assert!(
            matches!(
                err,
                HeaderError::HashMismatch {
                    number: 17034871,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rlp_decoding_is_strict() {
        let h = RpcHeader::parse(&fixture("cancun")).unwrap().header;
        let mut rlp = h.rlp();
        rlp.push(0x80);
        assert!(GoatHeader::decode_rlp(&rlp).is_err());
        // An extra (unknown) field after requestsHash inside the list.
        let prague = RpcHeader::parse(&fixture("prague")).unwrap().header;
        let rlp = prague.rlp();
        let mut body = &rlp[..];
        alloy_rlp::Header::decode(&mut body).unwrap();
        let mut payload = body.to_vec();
        payload.push(0x80);
        let mut out = Vec::new();
        alloy_rlp::Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut out);
        out.extend_from_slice(&payload);
        let err = GoatHeader::decode_rlp(&out).unwrap_err().to_string();
        assert!(err.contains("newer header layout"), "{err}");
        assert!(GoatHeader::decode_rlp(&out).is_err());
    }

    /// A GOAT-shaped header: 33-byte extraData (GOAT's consensus layer puts
    /// a 1-byte version and a 32-byte hash there) and Prague's requestsHash.
    pub(crate) fn goat_like_header() -> GoatHeader {
        let mut extra = vec![0x01];
        extra.extend_from_slice(&[0xab; 32]);
        GoatHeader {
            parent_hash: B256::repeat_byte(0x11),
            ommers_hash: B256::repeat_byte(0x1d),
            beneficiary: Address::repeat_byte(0xbc),
            state_root: B256::repeat_byte(0x22),
            transactions_root: B256::repeat_byte(0x33),
            receipts_root: B256::repeat_byte(0x44),
            logs_bloom: Bloom::default(),
            difficulty: U256::ZERO,
            number: 5_000_000,
            gas_limit: 30_000_000,
            gas_used: 1_234_567,
            timestamp: 1_750_000_000,
            extra_data: Bytes::from(extra),
            mix_hash: B256::repeat_byte(0x55),
            nonce: B64::ZERO,
            base_fee_per_gas: Some(1_000_000),
            withdrawals_root: Some(B256::repeat_byte(0x56)),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::repeat_byte(0x57)),
            requests_hash: Some(B256::repeat_byte(0x58)),
        }
    }

    #[test]
    fn goat_shaped_header_round_trips() {
        let h = goat_like_header();
        assert_eq!(h.check_shape().unwrap(), HeaderShape::Prague);
        assert_eq!(h.extra_data.len(), 33);
        let rlp = h.rlp();
        let back = GoatHeader::decode_rlp(&rlp).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.hash_slow(), h.hash_slow());
        assert_eq!(h.hash_slow(), keccak256(&rlp));
        // The same header as JSON parses back to the same hash.
        let json = serde_json::json!({
            "parentHash": h.parent_hash, "sha3Uncles": h.ommers_hash, "miner": h.beneficiary,
            "stateRoot": h.state_root, "transactionsRoot": h.transactions_root,
            "receiptsRoot": h.receipts_root, "logsBloom": h.logs_bloom,
            "difficulty": "0x0", "number": format!("{:#x}", h.number),
            "gasLimit": format!("{:#x}", h.gas_limit), "gasUsed": format!("{:#x}", h.gas_used),
            "timestamp": format!("{:#x}", h.timestamp), "extraData": h.extra_data,
            "mixHash": h.mix_hash, "nonce": h.nonce, "baseFeePerGas": "0xf4240",
            "withdrawalsRoot": h.withdrawals_root, "blobGasUsed": "0x0", "excessBlobGas": "0x0",
            "parentBeaconBlockRoot": h.parent_beacon_block_root, "requestsHash": h.requests_hash,
            "hash": h.hash_slow(), "size": "0x300", "transactions": [], "uncles": [],
        });
        let parsed = RpcHeader::parse(&json).unwrap();
        assert_eq!(parsed.header, h);
        assert_eq!(parsed.check(), HashCheck::Match(h.hash_slow()));
    }

    #[test]
    fn hand_built_header_with_gap_is_refused() {
        let mut h = goat_like_header();
        h.withdrawals_root = None;
        assert!(h.check_shape().is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_prague_header_round_trips(
            number in proptest::prelude::any::<u64>(),
            ts in proptest::prelude::any::<u64>(),
            extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            diff in proptest::prelude::any::<[u8; 32]>(),
        ) {
            let mut h = goat_like_header();
            h.number = number;
            h.timestamp = ts;
            h.extra_data = Bytes::from(extra);
            h.difficulty = U256::from_be_bytes(diff);
            let back = GoatHeader::decode_rlp(&h.rlp()).unwrap();
            proptest::prop_assert_eq!(back, h);
        }
    }
}
