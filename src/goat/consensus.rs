//! GOAT through its own consensus: a CometBFT light block (signed header,
//! validator sets, the block's transactions) verified from a trusted state
//! by tendermint-rs's light-client verifier (secp256k1 validators), then
//! tx0 (`/goat.goat.v1.MsgNewEthBlock`) read from the block: a verified
//! height H makes final the EVM block its payload names as parent.
//!
//! Pure: no I/O and no wall clock (`now` is a parameter). The tx0 reader is
//! strict, as GoatLightClient's is (fields in ascending order, no duplicate
//! singular field, known wire types), so the relayer and the contract read
//! one encoding one way.

use alloy::primitives::B256;
use bitcoin::hashes::{sha256, Hash as _};
use tendermint::block::signed_header::SignedHeader;
use tendermint::validator::Set as ValidatorSet;
use tendermint::{Hash, Time};
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{TrustedBlockState, UntrustedBlockState};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};
use thiserror::Error;

/// The type URL of tx0's message.
pub const MSG_NEW_ETH_BLOCK: &str = "/goat.goat.v1.MsgNewEthBlock";
/// goatd accepts at most this many transactions in a block.
pub const MAX_TXS: usize = 16;

/// Why a light block is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConsensusError {
    /// tendermint-rs's verifier refused it (signatures, power, sets, time).
    #[error("height {height}: {reason}")]
    Verifier {
        /// The height.
        height: u64,
        /// The verifier's verdict.
        reason: String,
    },
    /// The transactions do not hash to the header's `data_hash`.
    #[error("height {height}: the {count} transactions do not hash to data_hash {data_hash}")]
    DataHash {
        /// The height.
        height: u64,
        /// How many transactions were given.
        count: usize,
        /// The header's.
        data_hash: String,
    },
    /// No transaction, or more than goatd allows.
    #[error("height {height}: {count} transactions (a GOAT block holds 1 to {MAX_TXS})")]
    TxCount {
        /// The height.
        height: u64,
        /// How many.
        count: usize,
    },
    /// tx0 is not a well-formed `MsgNewEthBlock` transaction.
    #[error("height {height}: tx0 {what}")]
    Tx0 {
        /// The height.
        height: u64,
        /// What is wrong, naming the field.
        what: String,
    },
}

/// The EVM block tx0 carries (GOAT's `ExecutionPayload`, the fields gmrelay uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthPayload {
    /// `parent_hash` (field 1): the EVM block this height makes final.
    pub parent_hash: B256,
    /// `receipts_root` (4).
    pub receipts_root: B256,
    /// `block_number` (7).
    pub block_number: u64,
    /// `timestamp` (10).
    pub timestamp: u64,
    /// `block_hash` (13).
    pub block_hash: B256,
}

/// What is trusted: a verified header's height, time and next validator set.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The CometBFT chain id.
    pub chain_id: tendermint::chain::Id,
    /// Height.
    pub height: tendermint::block::Height,
    /// Header time.
    pub time: Time,
    /// The set that signs the next height.
    pub next_validators: ValidatorSet,
    /// Its hash (the header's `next_validators_hash`).
    pub next_validators_hash: Hash,
}

/// A CometBFT block as the RPC serves it: `/commit` (signed header),
/// `/validators` at H and H+1, `/block` (the transactions).
#[derive(Debug, Clone)]
pub struct LightBlock {
    /// Header and commit.
    pub signed_header: SignedHeader,
    /// The set at this height.
    pub validators: ValidatorSet,
    /// The set at the next height.
    pub next_validators: ValidatorSet,
    /// The block's transactions, tx0 first.
    pub txs: Vec<Vec<u8>>,
}

/// A verified block: the new trusted state and the EVM block it makes final.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Trust moves here.
    pub trusted: Trusted,
    /// tx0's payload: `parent_hash` is final.
    pub payload: EthPayload,
    /// The CometBFT header hash.
    pub header_hash: Hash,
}

/// Verifies `block` from `trusted` (adjacent or skipping, as tendermint-rs
/// decides with `options`), its transactions against `data_hash`, and reads
/// tx0.
pub fn verify(
    trusted: &Trusted,
    block: &LightBlock,
    options: &Options,
    now: Time,
) -> Result<Verified, ConsensusError> {
    let header = &block.signed_header.header;
    let height = header.height.value();
    let untrusted = UntrustedBlockState {
        signed_header: &block.signed_header,
        validators: &block.validators,
        next_validators: Some(&block.next_validators),
    };
    let trusted_state = TrustedBlockState {
        chain_id: &trusted.chain_id,
        header_time: trusted.time,
        height: trusted.height,
        next_validators: &trusted.next_validators,
        next_validators_hash: trusted.next_validators_hash,
    };
    match ProdVerifier::default().verify_update_header(untrusted, trusted_state, options, now) {
        Verdict::Success => {}
        Verdict::NotEnoughTrust(tally) => {
            return Err(ConsensusError::Verifier {
                height,
                reason: format!("not enough trust: {tally}"),
            })
        }
        Verdict::Invalid(detail) => {
            return Err(ConsensusError::Verifier {
                height,
                reason: detail.to_string(),
            })
        }
    }
    let count = block.txs.len();
    if count == 0 || count > MAX_TXS {
        return Err(ConsensusError::TxCount { height, count });
    }
    let computed = data_hash(&block.txs);
    if header.data_hash != Some(computed) {
        return Err(ConsensusError::DataHash {
            height,
            count,
            data_hash: header
                .data_hash
                .map(|h| h.to_string())
                .unwrap_or_else(|| "(none)".into()),
        });
    }
    let payload = read_tx0(&block.txs[0]).map_err(|what| ConsensusError::Tx0 { height, what })?;
    Ok(Verified {
        trusted: Trusted {
            chain_id: header.chain_id.clone(),
            height: header.height,
            time: header.time,
            next_validators: block.next_validators.clone(),
            next_validators_hash: header.next_validators_hash,
        },
        payload,
        header_hash: header.hash(),
    })
}

/// `data_hash`: the RFC-6962 Merkle root over sha256 of each transaction.
pub fn data_hash(txs: &[Vec<u8>]) -> Hash {
    let leaves: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| sha256::Hash::hash(t).to_byte_array())
        .collect();
    Hash::Sha256(tendermint::merkle::simple_hash_from_byte_vectors::<
        tendermint::crypto::default::Sha256,
    >(&leaves))
}

/// A strict protobuf reader: fields in ascending order, a singular field
/// once, wire types 0 (varint) and 2 (bytes) only.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    last: u64,
    what: &'static str,
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Fields {
            buf,
            pos: 0,
            last: 0,
            what,
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| format!("{}: truncated varint at byte {}", self.what, self.pos))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "{}: varint too long at byte {}",
            self.what, self.pos
        ))
    }

    /// The next field `(number, value)`; `repeated` lists the numbers that may repeat.
    fn next(&mut self, repeated: &[u64]) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        if number == 0 || number < self.last || (number == self.last && !repeated.contains(&number))
        {
            return Err(format!(
                "{}: field {number} at byte {at} is out of order or repeated",
                self.what
            ));
        }
        self.last = number;
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length".to_string())?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or_else(|| format!("{}: field {number} overruns the message", self.what))?;
                let v = &self.buf[self.pos..end];
                self.pos = end;
                Value::Bytes(v)
            }
            w => {
                return Err(format!(
                    "{}: field {number} has wire type {w} (only varint and bytes are expected)",
                    self.what
                ))
            }
        };
        Ok(Some((number, value)))
    }
}

fn bytes32(v: &[u8], field: &str) -> Result<B256, String> {
    if v.len() != 32 {
        return Err(format!("payload.{field}: {} bytes, 32 expected", v.len()));
    }
    Ok(B256::from_slice(v))
}

fn bytes_of<'a>(v: Value<'a>, what: &str) -> Result<&'a [u8], String> {
    match v {
        Value::Bytes(b) => Ok(b),
        Value::Varint(_) => Err(format!("{what}: a varint where bytes are expected")),
    }
}

/// Reads tx0: `TxRaw{1 body}` → `TxBody{1 messages[0]}` → `Any{1 type_url =
/// MSG_NEW_ETH_BLOCK, 2 value}` → `MsgNewEthBlock{1 proposer, 2 payload}` →
/// `ExecutionPayload`.
pub fn read_tx0(tx: &[u8]) -> Result<EthPayload, String> {
    // TxRaw: the body is field 1.
    let mut raw = Fields::new(tx, "TxRaw");
    let body = match raw.next(&[3])? {
        Some((1, v)) => bytes_of(v, "TxRaw.body_bytes")?,
        _ => return Err("TxRaw: body_bytes (field 1) does not come first".into()),
    };
    while raw.next(&[3])?.is_some() {}
    // TxBody: messages (field 1) first; the first message is tx0's.
    let mut b = Fields::new(body, "TxBody");
    let any = match b.next(&[1])? {
        Some((1, v)) => bytes_of(v, "TxBody.messages")?,
        _ => return Err("TxBody: no message".into()),
    };
    // Any{type_url, value}.
    let mut a = Fields::new(any, "Any");
    let type_url = match a.next(&[])? {
        Some((1, v)) => bytes_of(v, "Any.type_url")?,
        _ => return Err("Any: type_url (field 1) missing".into()),
    };
    if type_url != MSG_NEW_ETH_BLOCK.as_bytes() {
        return Err(format!(
            "message type `{}` is not {MSG_NEW_ETH_BLOCK}",
            String::from_utf8_lossy(type_url)
        ));
    }
    let msg = match a.next(&[])? {
        Some((2, v)) => bytes_of(v, "Any.value")?,
        _ => return Err("Any: value (field 2) missing".into()),
    };
    if a.next(&[])?.is_some() {
        return Err("Any: a field after value".into());
    }
    // MsgNewEthBlock{1 proposer, 2 payload}.
    let mut m = Fields::new(msg, "MsgNewEthBlock");
    let mut payload = None;
    while let Some((n, v)) = m.next(&[])? {
        match n {
            1 => {}
            2 => payload = Some(bytes_of(v, "MsgNewEthBlock.payload")?),
            n => return Err(format!("MsgNewEthBlock: unknown field {n}")),
        }
    }
    let payload = payload.ok_or("MsgNewEthBlock: payload (field 2) missing")?;
    let mut p = Fields::new(payload, "ExecutionPayload");
    let (mut parent, mut receipts, mut number, mut time, mut hash) = (None, None, None, None, None);
    while let Some((n, v)) = p.next(&[14, 24])? {
        match (n, v) {
            (1, Value::Bytes(b)) => parent = Some(bytes32(b, "parent_hash")?),
            (4, Value::Bytes(b)) => receipts = Some(bytes32(b, "receipts_root")?),
            (7, Value::Varint(x)) => number = Some(x),
            (10, Value::Varint(x)) => time = Some(x),
            (13, Value::Bytes(b)) => hash = Some(bytes32(b, "block_hash")?),
            (1 | 4 | 13, _) | (7 | 10, _) => {
                return Err(format!(
                    "ExecutionPayload: field {n} has the wrong wire type"
                ))
            }
            _ => {}
        }
    }
    let need = |v: Option<B256>, f: &str| v.ok_or_else(|| format!("payload.{f} missing"));
    Ok(EthPayload {
        parent_hash: need(parent, "parent_hash")?,
        receipts_root: need(receipts, "receipts_root")?,
        block_number: number.ok_or("payload.block_number missing")?,
        timestamp: time.unwrap_or(0),
        block_hash: need(hash, "block_hash")?,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-delimited protobuf field.
pub fn field_bytes(out: &mut Vec<u8>, n: u64, b: &[u8]) {
    put_varint(out, n << 3 | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a varint protobuf field.
pub fn field_varint(out: &mut Vec<u8>, n: u64, v: u64) {
    put_varint(out, n << 3);
    put_varint(out, v);
}

/// tx0 as goatd lays it out: `TxRaw{1 body{1 messages[0] = Any{1 type_url,
/// 2 MsgNewEthBlock{1 proposer, 2 payload}}}}` (no auth info, no
/// signatures), `payload` being the encoded `ExecutionPayload`.
pub fn encode_tx0(proposer: &[u8], payload: &[u8], type_url: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    field_bytes(&mut msg, 1, proposer);
    field_bytes(&mut msg, 2, payload);
    let mut any = Vec::new();
    field_bytes(&mut any, 1, type_url.as_bytes());
    field_bytes(&mut any, 2, &msg);
    let mut body = Vec::new();
    field_bytes(&mut body, 1, &any);
    let mut raw = Vec::new();
    field_bytes(&mut raw, 1, &body);
    raw
}

/// Building blocks for tests and benchmarks: secp256k1 validators,
/// GOAT-shaped tx0, signed headers and commits (tendermint-testgen makes
/// ed25519 only). Keys are derived from small seeds: never real ones.
#[allow(missing_docs, clippy::too_many_arguments, clippy::unwrap_used)]
pub mod testgen {
    use super::*;
    use k256::ecdsa::signature::Signer;
    use k256::ecdsa::SigningKey;
    use tendermint::block::{self, parts, CommitSig, Header, Id as BlockId};
    use tendermint::vote::{Type, ValidatorIndex, Vote};
    use tendermint::{account, validator, PublicKey, Signature};

    /// A validator: its key and power.
    pub struct Val {
        pub key: SigningKey,
        pub power: u64,
    }

    impl Val {
        pub fn new(seed: u8, power: u64) -> Val {
            let mut s = [0u8; 32];
            s[31] = seed;
            s[0] = 0x42;
            Val {
                key: SigningKey::from_slice(&s).unwrap(),
                power,
            }
        }
        pub fn public(&self) -> PublicKey {
            PublicKey::from_raw_secp256k1(
                &self.key.verifying_key().to_encoded_point(true).to_bytes(),
            )
            .unwrap()
        }
        pub fn info(&self) -> validator::Info {
            validator::Info::new(self.public(), self.power.try_into().unwrap())
        }
        pub fn address(&self) -> account::Id {
            account::Id::from(self.public())
        }
    }

    pub fn set(vals: &[Val]) -> ValidatorSet {
        ValidatorSet::without_proposer(vals.iter().map(Val::info).collect())
    }

    /// `payload` (ExecutionPayload bytes) wrapped as tx0: TxRaw{body{messages[0]
    /// = Any{type_url, MsgNewEthBlock{proposer, payload}}}, auth_info, signatures}.
    pub fn wrap(payload: &[u8], type_url: &str) -> Vec<u8> {
        let mut raw = encode_tx0(b"goat1proposer", payload, type_url);
        field_bytes(&mut raw, 2, &[1, 2, 3]);
        field_bytes(&mut raw, 3, &[9; 65]);
        raw
    }

    /// tx0 as goatd builds it, carrying `p`.
    pub fn tx0(p: &EthPayload, type_url: &str) -> Vec<u8> {
        let mut payload = Vec::new();
        field_bytes(&mut payload, 1, p.parent_hash.as_slice());
        field_bytes(&mut payload, 3, &[7; 32]);
        field_bytes(&mut payload, 4, p.receipts_root.as_slice());
        field_varint(&mut payload, 7, p.block_number);
        field_varint(&mut payload, 8, 30_000_000);
        field_varint(&mut payload, 10, p.timestamp);
        field_bytes(&mut payload, 12, b"1000000000");
        field_bytes(&mut payload, 13, p.block_hash.as_slice());
        field_bytes(&mut payload, 14, &[0x02, 0xf8]);
        field_bytes(&mut payload, 14, &[0x02, 0xf9]);
        wrap(&payload, type_url)
    }

    pub fn payload(n: u64) -> EthPayload {
        EthPayload {
            parent_hash: B256::repeat_byte(n as u8),
            receipts_root: B256::repeat_byte(0xee),
            block_number: n + 1,
            timestamp: 1_700_000_000 + n,
            block_hash: B256::repeat_byte(n as u8 + 1),
        }
    }

    pub fn time(secs: i64) -> Time {
        Time::from_unix_timestamp(secs, 0).unwrap()
    }

    /// A header at `height` signed by the `signers` of `vals` (indexes),
    /// with `next` as the next set and `txs` as data.
    pub fn block(
        chain: &str,
        height: u64,
        secs: i64,
        last: Option<BlockId>,
        vals: &[Val],
        next: &[Val],
        signers: &[usize],
        txs: Vec<Vec<u8>>,
    ) -> LightBlock {
        let validators = set(vals);
        let next_validators = set(next);
        let header = Header {
            version: tendermint::block::header::Version { block: 11, app: 0 },
            chain_id: chain.parse().unwrap(),
            height: height.try_into().unwrap(),
            time: time(secs),
            last_block_id: last,
            last_commit_hash: Some(Hash::Sha256([1; 32])),
            data_hash: Some(data_hash(&txs)),
            validators_hash: validators.hash(),
            next_validators_hash: next_validators.hash(),
            consensus_hash: Hash::Sha256([2; 32]),
            app_hash: vec![3; 32].try_into().unwrap(),
            last_results_hash: Some(Hash::Sha256([4; 32])),
            evidence_hash: Some(Hash::Sha256([5; 32])),
            proposer_address: vals[0].address(),
        };
        let block_id = BlockId {
            hash: header.hash(),
            part_set_header: parts::Header::new(1, Hash::Sha256([6; 32])).unwrap(),
        };
        // Signatures in the set's order (power, then address), as CometBFT
        // lays a commit out; `signers` index `vals`.
        let signatures = validators
            .validators()
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let Some((k, v)) = vals
                    .iter()
                    .enumerate()
                    .find(|(_, v)| v.address() == info.address)
                else {
                    return CommitSig::BlockIdFlagAbsent;
                };
                if !signers.contains(&k) {
                    return CommitSig::BlockIdFlagAbsent;
                }
                let vote = Vote {
                    vote_type: Type::Precommit,
                    height: header.height,
                    round: block::Round::default(),
                    block_id: Some(block_id),
                    timestamp: Some(time(secs + 1)),
                    validator_address: v.address(),
                    validator_index: ValidatorIndex::try_from(i as u32).unwrap(),
                    signature: None,
                    extension: vec![],
                    extension_signature: None,
                };
                let bytes = vote.into_signable_vec(header.chain_id.clone());
                let sig: k256::ecdsa::Signature = v.key.sign(&bytes);
                CommitSig::BlockIdFlagCommit {
                    validator_address: v.address(),
                    timestamp: time(secs + 1),
                    signature: Signature::new(sig.to_bytes()).unwrap(),
                }
            })
            .collect();
        let commit = block::Commit {
            height: header.height,
            round: block::Round::default(),
            block_id,
            signatures,
        };
        LightBlock {
            signed_header: SignedHeader::new(header, commit).unwrap(),
            validators,
            next_validators,
            txs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testgen::*;
    use super::*;
    use std::time::Duration;

    const CHAIN: &str = "goat-devnet";

    fn options() -> Options {
        Options {
            trust_threshold: Default::default(),
            trusting_period: Duration::from_secs(36 * 3600),
            clock_drift: Duration::from_secs(10),
        }
    }

    fn trusted(vals: &[Val], height: u64, secs: i64) -> Trusted {
        let s = set(vals);
        Trusted {
            chain_id: CHAIN.parse().unwrap(),
            height: height.try_into().unwrap(),
            time: time(secs),
            next_validators_hash: s.hash(),
            next_validators: s,
        }
    }

    /// A block at height 11 (time 1,003) of chain CHAIN.
    fn at11(vals: &[Val], next: &[Val], signers: &[usize], txs: Vec<Vec<u8>>) -> LightBlock {
        block(CHAIN, 11, 1_003, None, vals, next, signers, txs)
    }

    fn three() -> Vec<Val> {
        (1..=3).map(|i| Val::new(i, 10)).collect()
    }

    #[test]
    fn a_commit_by_the_trusted_set_makes_tx0s_parent_final() {
        let vals = three();
        let t = trusted(&vals, 10, 1_000);
        let b = at11(
            &vals,
            &vals,
            &[0, 1, 2],
            vec![tx0(&payload(5), MSG_NEW_ETH_BLOCK), vec![1]],
        );
        let v = verify(&t, &b, &options(), time(1_010)).unwrap();
        assert_eq!(v.payload, payload(5));
        assert_eq!(v.trusted.height.value(), 11);
        assert_eq!(v.header_hash, b.signed_header.header.hash());
    }

    #[test]
    fn broken_blocks_are_refused_with_what_is_wrong() {
        let vals = three();
        let t = trusted(&vals, 10, 1_000);
        let good_tx = || vec![tx0(&payload(5), MSG_NEW_ETH_BLOCK)];
        let now = time(1_010);
        // Two of three equal validators: not more than 2/3.
        let b = at11(&vals, &vals, &[0, 1], good_tx());
        let e = verify(&t, &b, &options(), now).unwrap_err().to_string();
        assert!(e.contains("height 11: insufficient signers overlap"), "{e}");
        // Another chain.
        let b = block(
            "goat-other",
            11,
            1_003,
            None,
            &vals,
            &vals,
            &[0, 1, 2],
            good_tx(),
        );
        let e = verify(&t, &b, &options(), now).unwrap_err().to_string();
        assert!(e.contains("chain-id mismatch"), "{e}");
        // A set that is not the trusted next set.
        let others: Vec<Val> = (7..=9).map(|i| Val::new(i, 10)).collect();
        let b = at11(&others, &others, &[0, 1, 2], good_tx());
        let e = verify(&t, &b, &options(), now).unwrap_err().to_string();
        assert!(e.contains("invalid next validator set"), "{e}");
        // Transactions that are not the header's.
        let mut b = at11(&vals, &vals, &[0, 1, 2], good_tx());
        b.txs.push(vec![1]);
        assert!(matches!(
            verify(&t, &b, &options(), now),
            Err(ConsensusError::DataHash { .. })
        ));
        // A wrong type URL in tx0.
        let b = at11(
            &vals,
            &vals,
            &[0, 1, 2],
            vec![tx0(&payload(5), "/cosmos.bank.v1beta1.MsgSend")],
        );
        let e = verify(&t, &b, &options(), now).unwrap_err().to_string();
        assert!(e.contains("MsgSend"), "{e}");
        // tx0 not first: the first transaction is not a MsgNewEthBlock.
        let b = at11(
            &vals,
            &vals,
            &[0, 1, 2],
            vec![vec![0x0a, 0x00], tx0(&payload(5), MSG_NEW_ETH_BLOCK)],
        );
        assert!(matches!(
            verify(&t, &b, &options(), now),
            Err(ConsensusError::Tx0 { .. })
        ));
        // Too old a trusted state.
        let b = at11(&vals, &vals, &[0, 1, 2], good_tx());
        let e = verify(&t, &b, &options(), time(1_000 + 40 * 3600))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not within trusting period"), "{e}");
    }

    #[test]
    fn a_validator_set_change_carries_trust_to_the_new_set() {
        let vals = three();
        let next: Vec<Val> = (2..=5).map(|i| Val::new(i, 10)).collect();
        let t = trusted(&vals, 10, 1_000);
        let b = at11(
            &vals,
            &next,
            &[0, 1, 2],
            vec![tx0(&payload(5), MSG_NEW_ETH_BLOCK)],
        );
        let v = verify(&t, &b, &options(), time(1_010)).unwrap();
        let b2 = block(
            CHAIN,
            12,
            1_006,
            None,
            &next,
            &next,
            &[0, 1, 2],
            vec![tx0(&payload(6), MSG_NEW_ETH_BLOCK)],
        );
        let v2 = verify(&v.trusted, &b2, &options(), time(1_010)).unwrap();
        assert_eq!(v2.payload.parent_hash, payload(6).parent_hash);
        // The old set alone cannot sign for the new one.
        let b3 = block(
            CHAIN,
            13,
            1_009,
            None,
            &vals,
            &vals,
            &[0, 1, 2],
            vec![tx0(&payload(7), MSG_NEW_ETH_BLOCK)],
        );
        assert!(verify(&v2.trusted, &b3, &options(), time(1_010)).is_err());
    }

    #[test]
    fn the_tx0_reader_is_strict() {
        let good = tx0(&payload(5), MSG_NEW_ETH_BLOCK);
        assert_eq!(read_tx0(&good).unwrap(), payload(5));
        // Field out of order / repeated in the payload.
        let mut p = Vec::new();
        field_bytes(&mut p, 4, &[0; 32]);
        field_bytes(&mut p, 1, &[0; 32]);
        let e = read_tx0(&wrap(&p, MSG_NEW_ETH_BLOCK)).unwrap_err();
        assert!(e.contains("out of order"), "{e}");
        // Truncated.
        assert!(read_tx0(&good[..good.len() - 40]).is_err());
        // A short hash.
        let mut p = Vec::new();
        field_bytes(&mut p, 1, &[0; 31]);
        let raw = wrap(&p, MSG_NEW_ETH_BLOCK);
        assert!(read_tx0(&raw).unwrap_err().contains("31 bytes"));
    }

    proptest::proptest! {
        #[test]
        fn the_tx0_reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = read_tx0(&bytes);
        }
    }
}
