//! GoatLightClient's calldata from a CometBFT light block (see
//! `contracts/src/GoatLightClient.sol` for the encodings): the header's 14
//! fields, the commit's votes (77 bytes each, the y parity CometBFT does not
//! carry found by trial recovery and put in the top bit of `s`), tx0's
//! Merkle path to `data_hash`, validator sets as `x ‖ y ‖ power` records.

use alloy::primitives::{Address, Bytes, B256};
use bitcoin::hashes::{sha256, Hash as _};
use tendermint::block::{CommitSig, Header};
use tendermint::validator::Set as ValidatorSet;
use tendermint::vote::{Type, ValidatorIndex, Vote};
use thiserror::Error;

use super::bindings::goat_light_client::GoatLightClient::LightHeader;
use crate::goat::consensus::LightBlock;

/// Why a block cannot be put in GoatLightClient's form.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    /// A header field the contract takes as 32 bytes is not.
    #[error("height {height}: {field} is not 32 bytes")]
    Hash {
        /// The height.
        height: u64,
        /// The field.
        field: &'static str,
    },
    /// A validator key that is not secp256k1.
    #[error("validator {index}: not a secp256k1 key")]
    Key {
        /// Its index in the set.
        index: usize,
    },
    /// tx0 is not a MsgNewEthBlock transaction.
    #[error("height {height}: tx0 {what}")]
    Tx0 {
        /// The height.
        height: u64,
        /// What is wrong.
        what: String,
    },
    /// A signature that recovers to no key of the set.
    #[error("height {height}: the vote of validator {index} does not recover to its key")]
    Vote {
        /// The height.
        height: u64,
        /// The validator.
        index: usize,
    },
}

fn hash32(
    h: Option<tendermint::Hash>,
    height: u64,
    field: &'static str,
) -> Result<B256, EncodeError> {
    match h {
        Some(tendermint::Hash::Sha256(b)) => Ok(B256::from(b)),
        _ => Err(EncodeError::Hash { height, field }),
    }
}

/// A CometBFT time as (seconds, nanoseconds) since the Unix epoch.
pub fn seconds_nanos(t: tendermint::Time) -> (u64, u32) {
    let n = t.unix_timestamp_nanos();
    ((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
}

/// The header as `LightHeader`.
pub fn light_header(h: &Header) -> Result<LightHeader, EncodeError> {
    let height = h.height.value();
    let (secs, nanos) = seconds_nanos(h.time);
    let last = h.last_block_id;
    let app: [u8; 32] = h
        .app_hash
        .as_bytes()
        .try_into()
        .map_err(|_| EncodeError::Hash {
            height,
            field: "app_hash",
        })?;
    Ok(LightHeader {
        versionBlock: h.version.block,
        versionApp: h.version.app,
        height,
        timeSeconds: secs,
        timeNanos: nanos,
        lastBlockHash: hash32(last.map(|b| b.hash), height, "last_block_id.hash")?,
        lastPartsTotal: last.map(|b| b.part_set_header.total).unwrap_or(0),
        lastPartsHash: hash32(
            last.map(|b| b.part_set_header.hash),
            height,
            "last_block_id.part_set_header.hash",
        )?,
        lastCommitHash: hash32(h.last_commit_hash, height, "last_commit_hash")?,
        dataHash: hash32(h.data_hash, height, "data_hash")?,
        validatorsHash: hash32(Some(h.validators_hash), height, "validators_hash")?,
        nextValidatorsHash: hash32(Some(h.next_validators_hash), height, "next_validators_hash")?,
        consensusHash: hash32(Some(h.consensus_hash), height, "consensus_hash")?,
        appHash: B256::from(app),
        lastResultsHash: hash32(h.last_results_hash, height, "last_results_hash")?,
        evidenceHash: hash32(h.evidence_hash, height, "evidence_hash")?,
        proposerAddress: Address::from_slice(h.proposer_address.as_bytes()),
    })
}

fn uncompressed(set: &ValidatorSet, index: usize) -> Result<secp256k1::PublicKey, EncodeError> {
    let v = set
        .validators()
        .get(index)
        .ok_or(EncodeError::Key { index })?;
    match v.pub_key {
        tendermint::PublicKey::Secp256k1(_) => {}
        _ => return Err(EncodeError::Key { index }),
    }
    secp256k1::PublicKey::from_slice(&v.pub_key.to_bytes()).map_err(|_| EncodeError::Key { index })
}

/// A validator set as GoatLightClient stores it: per validator, in set
/// order, `x (32) ‖ y (32) ‖ power (8, big-endian)`.
pub fn validators(set: &ValidatorSet) -> Result<Bytes, EncodeError> {
    let mut out = Vec::with_capacity(72 * set.validators().len());
    for (i, v) in set.validators().iter().enumerate() {
        let key = uncompressed(set, i)?.serialize_uncompressed();
        out.extend_from_slice(&key[1..]);
        out.extend_from_slice(&v.power.value().to_be_bytes());
    }
    Ok(out.into())
}

/// The commit: `round (4) ‖ parts.total (4) ‖ parts.hash (32)` then, per
/// COMMIT vote, `index (1) ‖ seconds (8) ‖ nanos (4) ‖ r (32) ‖ s|parity<<255 (32)`.
pub fn commit(block: &LightBlock) -> Result<Bytes, EncodeError> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let header = &block.signed_header.header;
    let c = &block.signed_header.commit;
    let height = header.height.value();
    let mut out = Vec::new();
    out.extend_from_slice(&c.round.value().to_be_bytes());
    out.extend_from_slice(&c.block_id.part_set_header.total.to_be_bytes());
    out.extend_from_slice(c.block_id.part_set_header.hash.as_bytes());
    let ctx = secp256k1::Secp256k1::verification_only();
    for (index, sig) in c.signatures.iter().enumerate() {
        let CommitSig::BlockIdFlagCommit {
            validator_address,
            timestamp,
            signature: Some(signature),
        } = sig
        else {
            continue;
        };
        let vote = Vote {
            vote_type: Type::Precommit,
            height: header.height,
            round: c.round,
            block_id: Some(c.block_id),
            timestamp: Some(*timestamp),
            validator_address: *validator_address,
            validator_index: ValidatorIndex::try_from(index as u32)
                .map_err(|_| EncodeError::Vote { height, index })?,
            signature: None,
            extension: vec![],
            extension_signature: None,
        };
        let digest =
            sha256::Hash::hash(&vote.into_signable_vec(header.chain_id.clone())).to_byte_array();
        let want = uncompressed(&block.validators, index)?;
        let rs: [u8; 64] = signature
            .as_bytes()
            .try_into()
            .map_err(|_| EncodeError::Vote { height, index })?;
        let parity = [0, 1]
            .into_iter()
            .find(|v| {
                RecoveryId::from_i32(*v)
                    .and_then(|id| RecoverableSignature::from_compact(&rs, id))
                    .and_then(|s| ctx.recover_ecdsa(&secp256k1::Message::from_digest(digest), &s))
                    .is_ok_and(|k| k == want)
            })
            .ok_or(EncodeError::Vote { height, index })?;
        let (secs, nanos) = seconds_nanos(*timestamp);
        out.push(u8::try_from(index).map_err(|_| EncodeError::Vote { height, index })?);
        out.extend_from_slice(&secs.to_be_bytes());
        out.extend_from_slice(&nanos.to_be_bytes());
        out.extend_from_slice(&rs[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&rs[32..]);
        s[0] |= (parity as u8) << 7;
        out.extend_from_slice(&s);
    }
    Ok(out.into())
}

/// tx0's Merkle aunts up to `data_hash`, leaf level first (the leftmost path).
pub fn tx0_proof(txs: &[Vec<u8>]) -> Vec<B256> {
    fn root(txs: &[Vec<u8>]) -> B256 {
        B256::from(
            crate::goat::consensus::data_hash(txs)
                .as_bytes()
                .try_into()
                .unwrap_or([0u8; 32]),
        )
    }
    fn aunts(txs: &[Vec<u8>], out: &mut Vec<B256>) {
        if txs.len() <= 1 {
            return;
        }
        let k = txs.len().next_power_of_two() / 2;
        aunts(&txs[..k], out);
        out.push(root(&txs[k..]));
    }
    let mut out = Vec::new();
    aunts(txs, &mut out);
    out
}

/// `GoatLightClient.submit`'s arguments.
#[derive(Debug, Clone)]
pub struct SubmitArgs {
    /// The header's fields.
    pub header: LightHeader,
    /// The votes.
    pub commit: Bytes,
    /// tx0, whole.
    pub tx0: Bytes,
    /// tx0's aunts, leaf level first.
    pub tx0_proof: Vec<B256>,
    /// The RLP header of the EVM block tx0 names as parent.
    pub evm_header: Bytes,
    /// The next validator set when it changes, else empty.
    pub next_validators: Bytes,
}

/// `submit`'s arguments for `block`, with `evm_header` (the RLP of the EVM
/// block tx0 names as parent); the next set goes along when it changes.
pub fn submit_args(block: &LightBlock, evm_header: Bytes) -> Result<SubmitArgs, EncodeError> {
    let h = &block.signed_header.header;
    let next_validators = if h.next_validators_hash != h.validators_hash {
        validators(&block.next_validators)?
    } else {
        Bytes::new()
    };
    Ok(SubmitArgs {
        header: light_header(h)?,
        commit: commit(block)?,
        tx0: Bytes::from(block.txs.first().cloned().unwrap_or_default()),
        tx0_proof: tx0_proof(&block.txs),
        evm_header,
        next_validators,
    })
}

/// GoatLightClient's constructor arguments: a trusted header and the set
/// that signs the next one.
#[derive(Debug, Clone)]
pub struct LightClientArgs {
    /// CometBFT chain id.
    pub comet_chain_id: String,
    /// The trusted height.
    pub height: u64,
    /// Its time, seconds.
    pub secs: u64,
    /// Its time, nanoseconds.
    pub nanos: u32,
    /// Its header hash.
    pub header_hash: B256,
    /// Its next_validators_hash.
    pub next_validators_hash: B256,
    /// The next set (72-byte records).
    pub validators: Bytes,
    /// Trusting period, seconds.
    pub trusting_period: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx0_aunts_lead_to_data_hash() {
        for n in 1..=16usize {
            let txs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 3]).collect();
            let proof = tx0_proof(&txs);
            let leaf = |t: &[u8]| {
                let mut b = vec![0u8];
                b.extend_from_slice(&sha256::Hash::hash(t).to_byte_array());
                sha256::Hash::hash(&b).to_byte_array()
            };
            let mut h = leaf(&txs[0]);
            for a in &proof {
                let mut b = vec![1u8];
                b.extend_from_slice(&h);
                b.extend_from_slice(a.as_slice());
                h = sha256::Hash::hash(&b).to_byte_array();
            }
            assert_eq!(
                h.as_slice(),
                crate::goat::consensus::data_hash(&txs).as_bytes(),
                "{n} txs"
            );
        }
    }
}
