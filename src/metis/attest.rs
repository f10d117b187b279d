//! Committee attestations of GOAT blocks (EIP-712, see contracts/README.md):
//! digests computed locally and checked against the contract's, signatures
//! made with this operator's own keys and/or gathered from other members,
//! and the runner behind `gmrelay metis attest-goat`.
//!
//! A member signs only what its own light client validated and finalized:
//! the header comes from the local store, never from the Metis node, and the
//! digest is computed here (the contract's `hashGoatBlock` must agree, so a
//! lying Metis node cannot make a member sign another message). Signatures
//! go to the contract packed and ordered by ascending signer address.

use alloy::primitives::{keccak256, Address, Bytes, Signature, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::{eip712_domain, SolStruct};
use thiserror::Error;
use tracing::{info, info_span, Instrument};

use super::sink::{GoatBlockFields, MetisError, MetisSink, TxOutcome};
use crate::error::{Classify, ErrorClass};
use crate::store::{Store, StoreError};

mod eip712 {
    alloy::sol! {
        /// The EIP-712 message a committee member signs.
        #[derive(Debug)]
        struct GoatBlock {
            uint256 goatChainId;
            uint256 number;
            uint256 timestamp;
            bytes32 blockHash;
            bytes32 receiptsRoot;
        }
    }
}

/// GoatHeaderStore's EIP-712 domain name.
pub const DOMAIN_NAME: &str = "gmrelay GoatHeaderStore";
/// GoatHeaderStore's EIP-712 domain version.
pub const DOMAIN_VERSION: &str = "2";
/// Size of the devnet committee.
pub const DEVNET_COMMITTEE_SIZE: usize = 5;
/// Signatures the devnet committee needs.
pub const DEVNET_THRESHOLD: u64 = 3;

/// Why a GOAT header could not be attested.
#[derive(Debug, Error)]
pub enum AttestError {
    /// The store follows no GOAT chain.
    #[error("the store holds no GOAT chain: run `gmrelay goat sync` first")]
    NoGoatChain,
    /// The block is above the store's finalized block.
    #[error("GOAT block {number} is not finalized yet (finalized: {finalized}): wait and run `gmrelay goat sync`")]
    NotFinalized {
        /// Asked for.
        number: u64,
        /// The store's finalized block.
        finalized: u64,
    },
    /// The store has no best-chain header at that number.
    #[error("GOAT block {0} is not in the store (below its checkpoint?)")]
    NotStored(u64),
    /// The store's GOAT chain and the contract's differ.
    #[error("GoatHeaderStore attests GOAT chain {contract}, the store follows chain {store}")]
    WrongGoatChain {
        /// The contract's chain id.
        contract: u64,
        /// The store's chain id.
        store: u64,
    },
    /// The contract computes another digest than this code.
    #[error("GoatHeaderStore at {store} computes digest {contract} for block {number}, gmrelay computes {local}: wrong metis.chain_id or contract address; refusing to sign")]
    DigestMismatch {
        /// The contract.
        store: Address,
        /// Block number.
        number: u64,
        /// The contract's digest.
        contract: B256,
        /// Ours.
        local: B256,
    },
    /// A key that does not parse.
    #[error("attester key {index} (from {source_name}): not a 32-byte hex private key")]
    BadKey {
        /// Position in the list.
        index: usize,
        /// Where the keys came from.
        source_name: String,
    },
    /// A signature that does not parse or recover.
    #[error("signature {index}: {message}")]
    BadSignature {
        /// Position among the given signatures.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A signature by someone outside the committee.
    #[error("signature {index} is by {signer}, not a committee member")]
    NotMember {
        /// Position among the signatures.
        index: usize,
        /// The recovered signer.
        signer: Address,
    },
    /// Fewer distinct member signatures than the threshold.
    #[error("{got} distinct committee signature(s), the threshold is {need}: add --signature from other members (or more keys)")]
    TooFew {
        /// Valid distinct signatures.
        got: usize,
        /// The committee threshold.
        need: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Metis failed.
    #[error(transparent)]
    Metis(#[from] MetisError),
}

impl Classify for AttestError {
    fn class(&self) -> ErrorClass {
        match self {
            AttestError::Metis(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
}

/// The EIP-712 digest of `GoatBlock(goat_chain_id, number, timestamp,
/// hash, receipts_root)` in the domain of the GoatHeaderStore at `store` on
/// Metis chain `metis_chain_id`.
pub fn attestation_digest(
    metis_chain_id: u64,
    store: Address,
    goat_chain_id: u64,
    block: &GoatBlockFields,
) -> B256 {
    let domain = eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: metis_chain_id,
        verifying_contract: store,
    };
    eip712::GoatBlock {
        goatChainId: U256::from(goat_chain_id),
        number: U256::from(block.number),
        timestamp: U256::from(block.timestamp),
        blockHash: block.hash,
        receiptsRoot: block.receipts_root,
    }
    .eip712_signing_hash(&domain)
}

/// The attested fields of a stored GOAT header.
pub fn block_fields(header: &crate::goat::header::GoatHeader, hash: B256) -> GoatBlockFields {
    GoatBlockFields {
        hash,
        number: header.number,
        timestamp: header.timestamp,
        receipts_root: header.receipts_root,
    }
}

/// `threshold` of the signatures, ordered by ascending signer and packed
/// (65 bytes each), as the contract takes them.
pub fn pack_quorum(mut valid: Vec<(Address, Bytes)>, threshold: u64) -> Result<Bytes, AttestError> {
    if (valid.len() as u64) < threshold {
        return Err(AttestError::TooFew {
            got: valid.len(),
            need: threshold,
        });
    }
    valid.sort_by_key(|(a, _)| *a);
    let mut out = Vec::with_capacity(65 * threshold as usize);
    for (_, sig) in valid.into_iter().take(threshold as usize) {
        out.extend_from_slice(&sig);
    }
    Ok(Bytes::from(out))
}

/// Inline attestation for a settlement: the committee members among `keys`
/// sign the block (the digest checked against the contract's) and a quorum is
/// packed. Keys of non-members are not used.
pub async fn inline_signatures<M: MetisSink>(
    sink: &M,
    domain: AttestDomain,
    goat_chain_id: u64,
    block: &GoatBlockFields,
    keys: &[PrivateKeySigner],
) -> Result<Bytes, AttestError> {
    let digest = attestation_digest(domain.metis_chain_id, domain.store, goat_chain_id, block);
    let theirs = sink.goat_attestation_digest(block).await?;
    if theirs != digest {
        return Err(AttestError::DigestMismatch {
            store: domain.store,
            number: block.number,
            contract: theirs,
            local: digest,
        });
    }
    let (committee, threshold) = sink.goat_committee().await?;
    let valid = keys
        .iter()
        .filter(|k| committee.contains(&k.address()))
        .map(|k| (k.address(), sign_digest(k, digest)))
        .collect();
    pack_quorum(valid, threshold)
}

/// Signs a digest: 65 bytes `r || s || v` (v 27/28, low s).
pub fn sign_digest(key: &PrivateKeySigner, digest: B256) -> Bytes {
    let sig = key
        .sign_hash_sync(&digest)
        .expect("a local secp256k1 key signs any 32-byte digest");
    Bytes::copy_from_slice(&sig.as_bytes())
}

/// Recovers the signer of a 65-byte signature over `digest`.
pub fn recover(index: usize, sig: &[u8], digest: B256) -> Result<Address, AttestError> {
    let bad = |message: String| AttestError::BadSignature { index, message };
    if sig.len() != 65 {
        return Err(bad(format!(
            "{} bytes, expected 65 (r || s || v)",
            sig.len()
        )));
    }
    let parsed = Signature::try_from(sig).map_err(|e| bad(e.to_string()))?;
    parsed
        .recover_address_from_prehash(&digest)
        .map_err(|e| bad(format!("does not recover: {e}")))
}

/// Parses comma-separated hex private keys; `source_name` names them in errors.
pub fn parse_keys(text: &str, source_name: &str) -> Result<Vec<PrivateKeySigner>, AttestError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(index, k)| {
            k.parse::<PrivateKeySigner>()
                .map_err(|_| AttestError::BadKey {
                    index,
                    source_name: source_name.to_string(),
                })
        })
        .collect()
}

/// The devnet committee's deterministic keys: keccak256("gmrelay devnet attester <i>"), i = 1..=5.
/// Never use them outside a devnet.
pub fn devnet_attester_keys() -> Vec<PrivateKeySigner> {
    (1..=DEVNET_COMMITTEE_SIZE)
        .map(|i| {
            let k = keccak256(format!("gmrelay devnet attester {i}"));
            PrivateKeySigner::from_bytes(&k).expect("a keccak digest is a valid key here")
        })
        .collect()
}

/// Keeps the valid, distinct committee signatures, in the given order.
pub fn select_signatures(
    digest: B256,
    signatures: &[Bytes],
    committee: &[Address],
) -> Result<Vec<(Address, Bytes)>, AttestError> {
    let mut out: Vec<(Address, Bytes)> = Vec::new();
    for (index, sig) in signatures.iter().enumerate() {
        let signer = recover(index, sig, digest)?;
        if !committee.contains(&signer) {
            return Err(AttestError::NotMember { index, signer });
        }
        if out.iter().all(|(s, _)| *s != signer) {
            out.push((signer, sig.clone()));
        }
    }
    Ok(out)
}

/// What [`attest_goat`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestReport {
    /// The block number.
    pub number: u64,
    /// The block hash.
    pub hash: B256,
    /// The digest signed.
    pub digest: B256,
    /// Signatures made here with the operator's keys (hex `r||s||v`), to pass to another submitter.
    pub own_signatures: Vec<(Address, Bytes)>,
    /// The submission, unless the header was already known or `submit` was false.
    pub submitted: Option<TxOutcome>,
    /// The contract already knew the header.
    pub already_known: bool,
    /// Signatures submitted.
    pub signatures_used: usize,
}

/// Where the attestation is verified: the Metis chain id and GoatHeaderStore address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestDomain {
    /// Metis chain id.
    pub metis_chain_id: u64,
    /// GoatHeaderStore address.
    pub store: Address,
}

/// Attests the stored, finalized GOAT block `number`: signs with `keys`,
/// adds `external` signatures, and (when `submit`) submits `threshold` of
/// them with `attestBlock`.
pub async fn attest_goat<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    domain: AttestDomain,
    number: u64,
    keys: &[PrivateKeySigner],
    external: &[Bytes],
    submit: bool,
) -> Result<AttestReport, AttestError> {
    let span = info_span!("attest_goat", number);
    async move {
        let (goat_chain_id, _, _) = store.goat_origin()?.ok_or(AttestError::NoGoatChain)?;
        let (finalized, _) = store.goat_finalized()?.ok_or(AttestError::NoGoatChain)?;
        if number > finalized {
            return Err(AttestError::NotFinalized { number, finalized });
        }
        let hash = store
            .goat_best_hash(number)?
            .ok_or(AttestError::NotStored(number))?;
        let header = store
            .goat_header(&hash)?
            .ok_or(AttestError::NotStored(number))?;
        let contract_chain = sink.goat_chain_id().await?;
        if contract_chain != goat_chain_id {
            return Err(AttestError::WrongGoatChain {
                contract: contract_chain,
                store: goat_chain_id,
            });
        }
        let fields = block_fields(header.header(), hash);
        let digest =
            attestation_digest(domain.metis_chain_id, domain.store, goat_chain_id, &fields);
        let theirs = sink.goat_attestation_digest(&fields).await?;
        if theirs != digest {
            return Err(AttestError::DigestMismatch {
                store: domain.store,
                number,
                contract: theirs,
                local: digest,
            });
        }
        let own: Vec<(Address, Bytes)> = keys
            .iter()
            .map(|k| (k.address(), sign_digest(k, digest)))
            .collect();
        let mut report = AttestReport {
            number,
            hash,
            digest,
            own_signatures: own.clone(),
            submitted: None,
            already_known: false,
            signatures_used: 0,
        };
        if sink.goat_is_known(hash).await? {
            report.already_known = true;
            return Ok(report);
        }
        if !submit {
            return Ok(report);
        }
        let (committee, threshold) = sink.goat_committee().await?;
        let mut all: Vec<Bytes> = own.into_iter().map(|(_, s)| s).collect();
        all.extend(external.iter().cloned());
        let valid = select_signatures(digest, &all, &committee)?;
        let packed = pack_quorum(valid, threshold)?;
        report.signatures_used = packed.len() / 65;
        let outcome = sink.goat_attest_block(&fields, packed).await?;
        info!(gas = outcome.gas_used, tx = %outcome.tx_hash, "GOAT block attested");
        report.submitted = Some(outcome);
        Ok(report)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_recover_and_are_filtered() {
        let keys = devnet_attester_keys();
        let committee: Vec<Address> = keys.iter().map(|k| k.address()).collect();
        assert_eq!(
            committee[0],
            "0x9d87D819B40a3192371Cc863E438b6c82366A608"
                .parse::<Address>()
                .unwrap()
        );
        let block = GoatBlockFields {
            hash: B256::repeat_byte(1),
            number: 10,
            timestamp: 1_700_000_000,
            receipts_root: B256::repeat_byte(2),
        };
        let d = attestation_digest(1088, Address::repeat_byte(7), 2345, &block);
        assert_ne!(
            d,
            attestation_digest(1089, Address::repeat_byte(7), 2345, &block)
        );
        assert_ne!(
            d,
            attestation_digest(1088, Address::repeat_byte(7), 48816, &block)
        );
        let later = GoatBlockFields {
            timestamp: 1_700_000_001,
            ..block
        };
        assert_ne!(
            d,
            attestation_digest(1088, Address::repeat_byte(7), 2345, &later)
        );
        let s0 = sign_digest(&keys[0], d);
        assert_eq!(s0.len(), 65);
        assert!(s0[64] == 27 || s0[64] == 28);
        let s1 = sign_digest(&keys[1], d);
        let got = select_signatures(d, &[s0.clone(), s1, s0.clone()], &committee).unwrap();
        assert_eq!(got.len(), 2, "duplicates are dropped");
        let outsider = sign_digest(&PrivateKeySigner::random(), d);
        assert!(matches!(
            select_signatures(d, &[outsider], &committee),
            Err(AttestError::NotMember { index: 0, .. })
        ));
        assert!(matches!(
            recover(0, &s0[..64], d),
            Err(AttestError::BadSignature { .. })
        ));
        let parsed = parse_keys(
            " 0x015325e2f7345cd23ff1da8d6b803e071ce0b11251a3616f6a9d6040f7138f63 ,",
            "X",
        )
        .unwrap();
        assert_eq!(parsed[0].address(), committee[0]);
        assert!(parse_keys("0x12", "X").is_err());
        let packed = pack_quorum(
            keys.iter()
                .rev()
                .take(3)
                .map(|k| (k.address(), sign_digest(k, d)))
                .collect(),
            3,
        )
        .unwrap();
        assert_eq!(packed.len(), 195);
        let signers: Vec<Address> = packed
            .chunks(65)
            .enumerate()
            .map(|(i, c)| recover(i, c, d).unwrap())
            .collect();
        assert!(signers.windows(2).all(|w| w[0] < w[1]), "ascending signers");
        assert!(matches!(
            pack_quorum(vec![(committee[0], s0)], 2),
            Err(AttestError::TooFew { got: 1, need: 2 })
        ));
    }
}
