//! Follows GOAT's consensus: verifies every CometBFT height from a trusted
//! checkpoint with [`super::consensus::verify`] (tendermint-rs's verifier,
//! secp256k1 commits, tx0 under `data_hash`), and reports the EVM blocks
//! the verified heights make final. The GOAT sync accepts an EVM header as
//! final only when its hash is the one a verified tx0 names as parent.
//!
//! Persisted in the store's `goat_consensus` column family (one atomic
//! batch per round): the trusted state, the last proven EVM block, the
//! CometBFT height that proves each EVM block (the relayer submits that
//! height to GoatLightClient) and the heights where the validator set
//! changes (which GoatLightClient must see in order).

use std::path::Path;
use std::time::Duration;

use alloy::primitives::B256;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tendermint::validator::{Info, Set as ValidatorSet};
use tendermint::{Hash, Time};
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::TrustThreshold;
use thiserror::Error;
use tracing::{debug, info, warn};

use super::comet::{CometError, CometRpc};
use super::consensus::{verify, ConsensusError, Trusted};
use crate::error::{Classify, ErrorClass};
use crate::store::{Store, StoreError};

/// Heights fetched concurrently while catching up.
const FETCH_AHEAD: usize = 8;
/// How long one height's fetch is retried before the round gives up.
const FETCH_RETRY: Duration = Duration::from_secs(20);
/// Heights verified per round (one store batch).
const MAX_PER_ROUND: u64 = 2_000;

/// A trusted CometBFT header: `goat.consensus.checkpoint_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusCheckpoint {
    /// Free text for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// CometBFT chain id (`goat-mainnet`, `goat-testnet3`, `goat-devnet`).
    pub comet_chain_id: String,
    /// The height.
    pub height: u64,
    /// Its header hash (hex, as CometBFT's RPC prints it).
    pub header_hash: String,
    /// Where the values come from.
    #[serde(default)]
    pub source: String,
}

/// A consensus-following failure.
#[derive(Debug, Error)]
pub enum FollowError {
    /// The checkpoint file is unusable.
    #[error("GOAT consensus checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The node serves another header at the checkpoint height, or another chain.
    #[error("{endpoint}: {message}")]
    TrustRoot {
        /// The node.
        endpoint: String,
        /// What differs.
        message: String,
    },
    /// The CometBFT RPC failed.
    #[error(transparent)]
    Rpc(#[from] CometError),
    /// A height failed verification: the node serves a chain GOAT's
    /// validators did not sign.
    #[error("{endpoint} served a CometBFT block that fails verification: {error}")]
    Invalid {
        /// The node.
        endpoint: String,
        /// Why.
        #[source]
        error: ConsensusError,
    },
    /// The store failed or holds something unreadable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state belongs to another checkpoint.
    #[error("store {path} follows GOAT consensus from {stored}, the checkpoint names {configured}: use another data_dir or the old checkpoint")]
    OtherOrigin {
        /// The store.
        path: String,
        /// What it holds.
        stored: String,
        /// What the config names.
        configured: String,
    },
}

impl Classify for FollowError {
    fn class(&self) -> ErrorClass {
        match self {
            FollowError::Rpc(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
}

impl ConsensusCheckpoint {
    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, FollowError> {
        let err = |message: String| FollowError::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let cp: ConsensusCheckpoint = serde_json::from_str(&text)
            .map_err(|e| err(format!("line {} column {}: {e}", e.line(), e.column())))?;
        if cp.height == 0 {
            return Err(err("height: CometBFT heights start at 1".into()));
        }
        cp.hash().map_err(&err)?;
        Ok(cp)
    }

    /// The header hash.
    pub fn hash(&self) -> Result<Hash, String> {
        Hash::from_hex_upper(
            tendermint::hash::Algorithm::Sha256,
            &self.header_hash.to_uppercase(),
        )
        .map_err(|e| format!("header_hash `{}`: {e}", self.header_hash))
    }

    fn origin(&self) -> String {
        format!(
            "{} height {} {}",
            self.comet_chain_id,
            self.height,
            self.header_hash.to_uppercase()
        )
    }
}

/// What the store keeps of the trusted state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrustedRecord {
    chain_id: String,
    height: u64,
    time: Time,
    header_hash: Hash,
    next_validators: Vec<Info>,
    next_validators_hash: Hash,
}

impl TrustedRecord {
    fn of(t: &Trusted, header_hash: Hash) -> Self {
        TrustedRecord {
            chain_id: t.chain_id.to_string(),
            height: t.height.value(),
            time: t.time,
            header_hash,
            next_validators: t.next_validators.validators().clone(),
            next_validators_hash: t.next_validators_hash,
        }
    }

    fn trusted(&self) -> Result<Trusted, String> {
        Ok(Trusted {
            chain_id: self
                .chain_id
                .parse()
                .map_err(|e| format!("chain id: {e}"))?,
            height: self.height.try_into().map_err(|e| format!("height: {e}"))?,
            time: self.time,
            next_validators: ValidatorSet::without_proposer(self.next_validators.clone()),
            next_validators_hash: self.next_validators_hash,
        })
    }
}

/// Where GOAT's consensus stands, for `status` and the relay.
#[derive(Debug, Clone, Serialize)]
pub struct ConsensusStatus {
    /// The CometBFT chain id.
    pub chain_id: String,
    /// The trusted (last verified) height.
    pub height: u64,
    /// Its header hash.
    pub header_hash: String,
    /// Its time.
    pub time: String,
    /// Validators in the next set.
    pub validators: usize,
    /// The last EVM block a verified height made final.
    pub proven: Option<(u64, B256)>,
}

/// Proof of one EVM block: the CometBFT height whose tx0 names it as parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvingHeight {
    /// The CometBFT height.
    pub height: u64,
    /// The EVM block's hash.
    pub evm_hash: B256,
}

const K_ORIGIN: &[u8] = b"origin";
const K_TRUSTED: &[u8] = b"trusted";
const K_PROVEN: &[u8] = b"proven";
const P_EVM: &[u8] = b"evm/";
const P_SET: &[u8] = b"set/";
const P_HEIGHT: &[u8] = b"height/";

fn evm_key(number: u64) -> Vec<u8> {
    [P_EVM, &number.to_be_bytes()].concat()
}

/// The consensus state in a store.
pub struct ConsensusState<'a, St: Store> {
    store: &'a St,
}

impl<'a, St: Store> ConsensusState<'a, St> {
    /// The store's consensus records.
    pub fn new(store: &'a St) -> Self {
        ConsensusState { store }
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.store.location().into(),
            cf: "goat_consensus",
            key: String::new(),
            what: what.to_string(),
        }
    }

    fn trusted_record(&self) -> Result<Option<TrustedRecord>, StoreError> {
        match self.store.consensus_get(K_TRUSTED)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| self.corrupt(&format!("trusted: {e}"))),
        }
    }

    /// The last EVM block proven final.
    pub fn proven(&self) -> Result<Option<(u64, B256)>, StoreError> {
        match self.store.consensus_get(K_PROVEN)? {
            None => Ok(None),
            Some(v) if v.len() == 40 => Ok(Some((
                u64::from_be_bytes(v[..8].try_into().unwrap_or_default()),
                B256::from_slice(&v[8..]),
            ))),
            Some(_) => Err(self.corrupt("proven: bad length")),
        }
    }

    /// The CometBFT height that proves EVM block `number`, if verified.
    pub fn proving_height(&self, number: u64) -> Result<Option<ProvingHeight>, StoreError> {
        match self.store.consensus_get(&evm_key(number))? {
            None => Ok(None),
            Some(v) if v.len() == 40 => Ok(Some(ProvingHeight {
                height: u64::from_be_bytes(v[..8].try_into().unwrap_or_default()),
                evm_hash: B256::from_slice(&v[8..]),
            })),
            Some(_) => Err(self.corrupt("evm index: bad length")),
        }
    }

    /// The EVM block verified height `height` made final (its tx0's parent).
    pub fn evm_at_height(&self, height: u64) -> Result<Option<u64>, StoreError> {
        match self
            .store
            .consensus_get(&[P_HEIGHT, &height.to_be_bytes()].concat())?
        {
            None => Ok(None),
            Some(v) => v
                .try_into()
                .map(|b: [u8; 8]| Some(u64::from_be_bytes(b)))
                .map_err(|_| self.corrupt("height index: bad length")),
        }
    }

    /// Heights in `(after, upto]` where the validator set changes for the
    /// next height (GoatLightClient must be given these in order).
    pub fn set_changes(&self, after: u64, upto: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for (k, _) in self.store.consensus_scan(P_SET)? {
            let h = k
                .get(P_SET.len()..)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| self.corrupt("set index: bad key"))?;
            if h > after && h <= upto {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// For `status`.
    pub fn status(&self) -> Result<Option<ConsensusStatus>, StoreError> {
        let Some(t) = self.trusted_record()? else {
            return Ok(None);
        };
        Ok(Some(ConsensusStatus {
            chain_id: t.chain_id,
            height: t.height,
            header_hash: t.header_hash.to_string(),
            time: t.time.to_rfc3339(),
            validators: t.next_validators.len(),
            proven: self.proven()?,
        }))
    }
}

/// Verification settings.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// How long a verified header stays a trust root (shorter than GOAT's
    /// evidence age, 48 h).
    pub trusting_period: Duration,
    /// Tolerated clock drift.
    pub clock_drift: Duration,
}

/// Follows one CometBFT RPC from a checkpoint.
pub struct ConsensusFollower {
    rpc: CometRpc,
    options: Options,
    trusted: Trusted,
    trusted_hash: Hash,
}

impl ConsensusFollower {
    /// Restores the trusted state from `store`, or establishes it from
    /// `checkpoint`: the node's header at that height must hash to the
    /// checkpoint's hash, and the sets it serves must hash to the header's.
    pub async fn open<St: Store>(
        rpc: CometRpc,
        store: &St,
        checkpoint: &ConsensusCheckpoint,
        opts: FollowOptions,
    ) -> Result<Self, FollowError> {
        let options = Options {
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period: opts.trusting_period,
            clock_drift: opts.clock_drift,
        };
        let state = ConsensusState::new(store);
        let origin = checkpoint.origin();
        if let Some(stored) = store.consensus_get(K_ORIGIN)? {
            let stored = String::from_utf8_lossy(&stored).into_owned();
            if stored != origin {
                return Err(FollowError::OtherOrigin {
                    path: store.location(),
                    stored,
                    configured: origin,
                });
            }
            if let Some(rec) = state.trusted_record()? {
                let trusted = rec.trusted().map_err(|m| state.corrupt(&m))?;
                return Ok(ConsensusFollower {
                    rpc,
                    options,
                    trusted,
                    trusted_hash: rec.header_hash,
                });
            }
        }
        let root = |message: String| FollowError::TrustRoot {
            endpoint: rpc.endpoint().to_string(),
            message,
        };
        let expected = checkpoint.hash().map_err(&root)?;
        let sh = rpc.signed_header(checkpoint.height).await?;
        let header = &sh.header;
        if header.chain_id.as_str() != checkpoint.comet_chain_id {
            return Err(root(format!(
                "chain id {}, the checkpoint says {}",
                header.chain_id, checkpoint.comet_chain_id
            )));
        }
        if header.hash() != expected {
            return Err(root(format!(
                "header at height {} hashes to {}, the checkpoint says {expected}",
                checkpoint.height,
                header.hash()
            )));
        }
        let next = rpc.validators(checkpoint.height + 1).await?;
        if next.hash() != header.next_validators_hash {
            return Err(root(format!(
                "the validators served for height {} hash to {}, header {} says {}",
                checkpoint.height + 1,
                next.hash(),
                checkpoint.height,
                header.next_validators_hash
            )));
        }
        let trusted = Trusted {
            chain_id: header.chain_id.clone(),
            height: header.height,
            time: header.time,
            next_validators: next,
            next_validators_hash: header.next_validators_hash,
        };
        let rec = TrustedRecord::of(&trusted, expected);
        store.consensus_put(&[
            (K_ORIGIN.to_vec(), origin.into_bytes()),
            (
                K_TRUSTED.to_vec(),
                serde_json::to_vec(&rec).map_err(|e| state.corrupt(&e.to_string()))?,
            ),
        ])?;
        info!(chain = "goat", height = checkpoint.height, hash = %expected, "GOAT consensus anchored at checkpoint");
        Ok(ConsensusFollower {
            rpc,
            options,
            trusted,
            trusted_hash: expected,
        })
    }

    /// The trusted height.
    pub fn height(&self) -> u64 {
        self.trusted.height.value()
    }

    /// The RPC followed.
    pub fn rpc(&self) -> &CometRpc {
        &self.rpc
    }

    /// Verifies the heights after the trusted one up to the node's latest
    /// (at most [`MAX_PER_ROUND`]), persists what they prove in one batch
    /// and returns the last EVM block proven final.
    pub async fn advance<St: Store>(
        &mut self,
        store: &St,
    ) -> Result<Option<(u64, B256)>, FollowError> {
        let state = ConsensusState::new(store);
        let latest = self.rpc.latest_height().await?;
        let from = self.height() + 1;
        if latest < from {
            return state.proven().map_err(Into::into);
        }
        let to = latest.min(from + MAX_PER_ROUND - 1);
        let rpc = &self.rpc;
        let policy = crate::retry::RetryPolicy::new(Duration::from_millis(200), FETCH_RETRY);
        let mut blocks = futures::stream::iter(from..=to)
            .map(|h| async move {
                let b = crate::retry::with_retry(policy, "goat", "CometBFT light block", || {
                    rpc.light_block(h)
                })
                .await;
                (h, b)
            })
            .buffered(FETCH_AHEAD);
        // Verify into copies: whatever fails, the verified prefix is saved
        // with the trust it earned, and nothing past it.
        let mut trusted = self.trusted.clone();
        let mut trusted_hash = self.trusted_hash;
        let mut puts = Vec::new();
        let mut proven = None;
        let mut failure = None;
        let now = Time::now();
        let invalid = |error| FollowError::Invalid {
            endpoint: self.rpc.endpoint().to_string(),
            error,
        };
        loop {
            let (asked, block) = match blocks.next().await {
                None => break,
                Some((_, Err(e))) => {
                    failure = Some(FollowError::Rpc(e));
                    break;
                }
                Some((asked, Ok(b))) => (asked, b),
            };
            let header = &block.signed_header.header;
            let h = header.height.value();
            // Every height, in order: a node skipping one would leave a gap.
            if h != asked {
                failure = Some(invalid(ConsensusError::Verifier {
                    height: asked,
                    reason: format!("the node served height {h} when asked for {asked}"),
                }));
                break;
            }
            // Adjacent heights chain by last_block_id (GoatLightClient checks it too).
            if h == trusted.height.value() + 1
                && header.last_block_id.map(|id| id.hash) != Some(trusted_hash)
            {
                failure = Some(invalid(ConsensusError::Verifier {
                    height: h,
                    reason: format!("last_block_id is not the verified header {trusted_hash}"),
                }));
                break;
            }
            let v = match verify(&trusted, &block, &self.options, now) {
                Ok(v) => v,
                Err(e) => {
                    failure = Some(invalid(e));
                    break;
                }
            };
            let Some(number) = v.payload.block_number.checked_sub(1) else {
                failure = Some(invalid(ConsensusError::Tx0 {
                    height: h,
                    what: "payload.block_number is 0".into(),
                }));
                break;
            };
            let mut value = h.to_be_bytes().to_vec();
            value.extend_from_slice(v.payload.parent_hash.as_slice());
            puts.push((evm_key(number), value));
            puts.push((
                [P_HEIGHT, &h.to_be_bytes()].concat(),
                number.to_be_bytes().to_vec(),
            ));
            if header.next_validators_hash != header.validators_hash {
                puts.push(([P_SET, &h.to_be_bytes()].concat(), Vec::new()));
                info!(
                    chain = "goat",
                    height = h,
                    validators = v.trusted.next_validators.validators().len(),
                    "GOAT validator set changes after this height"
                );
            }
            proven = Some((number, v.payload.parent_hash));
            debug!(
                chain = "goat",
                height = h,
                evm = number,
                "CometBFT height verified"
            );
            trusted = v.trusted;
            trusted_hash = v.header_hash;
        }
        drop(blocks);
        if let Some((n, hash)) = proven {
            let mut p = n.to_be_bytes().to_vec();
            p.extend_from_slice(hash.as_slice());
            puts.push((K_PROVEN.to_vec(), p));
            let rec = TrustedRecord::of(&trusted, trusted_hash);
            puts.push((
                K_TRUSTED.to_vec(),
                serde_json::to_vec(&rec).map_err(|e| state.corrupt(&e.to_string()))?,
            ));
            store.consensus_put(&puts)?;
            // Memory follows the store, never ahead of it.
            self.trusted = trusted;
            self.trusted_hash = trusted_hash;
            metrics::gauge!("gmrelay_goat_consensus_height").set(self.height() as f64);
        }
        match failure {
            // A node that stopped answering after some progress: use what
            // was verified now, the next round retries the rest.
            Some(e) if proven.is_some() && e.class() == ErrorClass::Transient => {
                warn!(
                    chain = "goat",
                    height = self.height(),
                    "CometBFT round cut short: {e}"
                );
            }
            Some(e) => return Err(e),
            None => {}
        }
        state.proven().map_err(Into::into)
    }

    /// GoatLightClient's constructor arguments from the trusted state (what
    /// was verified, never re-read from the RPC).
    pub fn light_client_args(
        &self,
        trusting_period: u64,
    ) -> Result<crate::metis::goatlc::LightClientArgs, crate::metis::goatlc::EncodeError> {
        let (secs, nanos) = crate::metis::goatlc::seconds_nanos(self.trusted.time);
        Ok(crate::metis::goatlc::LightClientArgs {
            comet_chain_id: self.trusted.chain_id.to_string(),
            height: self.height(),
            secs,
            nanos,
            header_hash: B256::from_slice(self.trusted_hash.as_bytes()),
            next_validators_hash: B256::from_slice(self.trusted.next_validators_hash.as_bytes()),
            validators: crate::metis::goatlc::validators(&self.trusted.next_validators)?,
            trusting_period,
        })
    }

    /// The trusted header's time.
    pub fn trusted_time(&self) -> Time {
        self.trusted.time
    }
}

/// What `gmrelay goat consensus-checkpoint` found: a checkpoint and what
/// backs it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointReport {
    /// The checkpoint file's content.
    pub checkpoint: ConsensusCheckpoint,
    /// The set that signed it: (CometBFT address, power), in set order.
    pub validators: Vec<(String, u64)>,
    /// Power that signed the commit, and the set's total.
    pub signed_power: (u64, u64),
    /// Nodes that served the same header hash.
    pub agreeing: Vec<String>,
    /// How many of GOAT's genesis validators (headers/goat-genesis-*.json,
    /// for goat-mainnet and goat-testnet3) are still in the set, of how many.
    pub genesis_validators_in_set: Option<(usize, usize)>,
}

/// Reads a candidate checkpoint from `rpc` at `height` (default: the latest
/// height but one) and checks what can be checked without trusting
/// anything yet: the commit is for that header and carries more than 2/3 of
/// the power of the set the node serves (signatures verified), that set
/// hashes to the header's `validators_hash`, every node in `others` serves
/// the same header hash, and how much of GOAT's genesis set is still in it.
/// The operator still decides whether the nodes asked deserve trust.
pub async fn make_checkpoint(
    rpc: &CometRpc,
    height: Option<u64>,
    others: &[CometRpc],
) -> Result<CheckpointReport, FollowError> {
    use tendermint_light_client_verifier::operations::voting_power::{
        ProdVotingPowerCalculator, VotingPowerCalculator,
    };
    let root = |message: String| FollowError::TrustRoot {
        endpoint: rpc.endpoint().to_string(),
        message,
    };
    let h = match height {
        Some(h) => h,
        None => rpc.latest_height().await?.saturating_sub(1).max(1),
    };
    let sh = rpc.signed_header(h).await?;
    let vals = rpc.validators(h).await?;
    let header = &sh.header;
    if vals.hash() != header.validators_hash {
        return Err(root(format!(
            "the validators served for height {h} hash to {}, the header says {}",
            vals.hash(),
            header.validators_hash
        )));
    }
    if header.height.value() != h {
        return Err(root(format!(
            "asked for height {h}, served {}",
            header.height
        )));
    }
    if sh.commit.block_id.hash != header.hash() || sh.commit.height != header.height {
        return Err(root(format!(
            "the commit at height {h} is not for the header served"
        )));
    }
    let tally = ProdVotingPowerCalculator::default()
        .voting_power_in(&sh, &vals, TrustThreshold::TWO_THIRDS)
        .map_err(|e| root(format!("commit at height {h}: {e}")))?;
    if tally.tallied * 3 <= tally.total * 2 {
        return Err(root(format!(
            "the commit at height {h} carries {} of {} voting power, not more than 2/3",
            tally.tallied, tally.total
        )));
    }
    let mut agreeing = vec![rpc.endpoint().to_string()];
    for other in others {
        let theirs = other.signed_header(h).await?.header.hash();
        if theirs != header.hash() {
            return Err(FollowError::TrustRoot {
                endpoint: other.endpoint().to_string(),
                message: format!(
                    "serves header {theirs} at height {h}, {} serves {}: do not trust either before finding out why",
                    rpc.endpoint(),
                    header.hash()
                ),
            });
        }
        agreeing.push(other.endpoint().to_string());
    }
    let genesis = match header.chain_id.as_str() {
        "goat-mainnet" => Some(include_str!("../../headers/goat-genesis-mainnet.json")),
        "goat-testnet3" => Some(include_str!("../../headers/goat-genesis-testnet3.json")),
        _ => None,
    };
    let addresses: Vec<String> = vals
        .validators()
        .iter()
        .map(|v| v.address.to_string())
        .collect();
    let genesis_validators_in_set = genesis.and_then(|text| {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let list = v["validators"].as_array()?;
        let present = list
            .iter()
            .filter(|g| {
                g["address"]
                    .as_str()
                    .is_some_and(|a| addresses.iter().any(|x| x == a))
            })
            .count();
        Some((present, list.len()))
    });
    Ok(CheckpointReport {
        checkpoint: ConsensusCheckpoint {
            comment: None,
            comet_chain_id: header.chain_id.to_string(),
            height: h,
            header_hash: header.hash().to_string(),
            source: format!(
                "{} /commit?height={h}, {} of {} voting power signed",
                agreeing.join(", "),
                tally.tallied,
                tally.total
            ),
        },
        validators: vals
            .validators()
            .iter()
            .map(|v| (v.address.to_string(), v.power.value()))
            .collect(),
        signed_power: (tally.tallied, tally.total),
        agreeing,
        genesis_validators_in_set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GOAT's public genesis validators (headers/goat-genesis-*.json): each
    /// key is a valid compressed secp256k1 point whose CometBFT address
    /// (RIPEMD160(SHA256(key))) is the one recorded, and the set is one
    /// tendermint-rs accepts as a validator set.
    #[test]
    fn goat_genesis_validator_fixtures_are_consistent() {
        for (name, text) in [
            (
                "mainnet",
                include_str!("../../headers/goat-genesis-mainnet.json"),
            ),
            (
                "testnet3",
                include_str!("../../headers/goat-genesis-testnet3.json"),
            ),
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let vals = v["validators"].as_array().unwrap();
            assert_eq!(vals.len(), 3, "{name}: 3 genesis validators");
            let mut infos = Vec::new();
            for val in vals {
                let key = hex::decode(val["pub_key"].as_str().unwrap()).unwrap();
                let pk = tendermint::PublicKey::from_raw_secp256k1(&key)
                    .unwrap_or_else(|| panic!("{name}: {} is not a secp256k1 key", val["pub_key"]));
                let address = tendermint::account::Id::from(pk);
                assert_eq!(
                    address.to_string(),
                    val["address"].as_str().unwrap(),
                    "{name}"
                );
                let power = val["power"].as_u64().unwrap();
                infos.push(Info::new(pk, power.try_into().unwrap()));
            }
            let set = ValidatorSet::without_proposer(infos);
            assert!(set.total_voting_power().value() > 0, "{name}");
            assert_eq!(v["evm_genesis_hash"].as_str().unwrap().len(), 66, "{name}");
        }
    }

    #[test]
    fn a_checkpoint_file_is_refused_with_the_field_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        for (text, want) in [
            (
                r#"{"comet_chain_id":"goat-devnet","height":3,"header_hash":"zz"}"#,
                "header_hash",
            ),
            (
                r#"{"comet_chain_id":"goat-devnet","height":0,"header_hash":"AB"}"#,
                "height",
            ),
            (
                r#"{"comet_chain_id":"goat-devnet","height":3}"#,
                "header_hash",
            ),
            (
                r#"{"comet_chain_id":"x","height":3,"header_hash":"AB","extra":1}"#,
                "extra",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = ConsensusCheckpoint::load(&path).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("cp.json"),
                "{text}: {err}"
            );
        }
        let hash = "A".repeat(64);
        std::fs::write(
            &path,
            format!(r#"{{"comet_chain_id":"goat-devnet","height":3,"header_hash":"{hash}"}}"#),
        )
        .unwrap();
        let cp = ConsensusCheckpoint::load(&path).unwrap();
        assert_eq!(cp.hash().unwrap().to_string(), hash);
    }
}
