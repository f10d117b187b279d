//! Makes GOAT EVM blocks final on GoatLightClient: for each block a
//! payment needs, submits the CometBFT height whose tx0 names it as parent
//! (found by the consensus follower, [`crate::goat::follow`]), after the
//! heights where the validator set changed in between, which the contract
//! must see in order. Blocks go in ascending order: the contract's trusted
//! height only moves up, so a block whose proving height it has passed can
//! no longer be proven by a commit; it is then proven from the nearest
//! descendant the contract holds, by the chain of parent hashes
//! (`proveAncestors`, up to [`MAX_ANCESTORS`] blocks).
//!
//! Each submission re-reads the contract, so a restart or another relayer
//! submitting the same heights is harmless.

use alloy::primitives::{Bytes, B256};
use thiserror::Error;
use tracing::info;

use super::goatlc::{submit_args, EncodeError};
use super::sink::{AlloySink, MetisError, MetisSink, TxOutcome};
use crate::error::{Classify, ErrorClass};
use crate::goat::comet::{CometError, CometRpc};
use crate::goat::follow::ConsensusState;
use crate::store::{Store, StoreError};

/// Why a GOAT block could not be made final on Metis.
#[derive(Debug, Error)]
pub enum ProveError {
    /// gmrelay has not verified a CometBFT height that finalizes it yet.
    #[error("GOAT block {number} is not final by verified consensus yet (the CometBFT follower is behind)")]
    NotYetFinal {
        /// The EVM block number.
        number: u64,
    },
    /// The block is not the one consensus made final at its height.
    #[error("GOAT block {number} {hash} is not canonical: GOAT's validators finalized {finalized} at that height")]
    NotCanonical {
        /// The EVM block number.
        number: u64,
        /// The hash asked for.
        hash: B256,
        /// The hash consensus finalized.
        finalized: B256,
    },
    /// GoatLightClient moved past the height that proves the block, and no
    /// descendant it holds is near enough.
    #[error("GOAT block {number} can no longer be proven on GoatLightClient: its CometBFT height {height} is at or below the contract's trusted height {trusted}, and neither a block up to {MAX_ANCESTORS} above it nor the contract's latest block (within {MAX_WALK}) is there to prove it from")]
    Passed {
        /// The EVM block number.
        number: u64,
        /// Its proving height.
        height: u64,
        /// The contract's trusted height.
        trusted: u64,
    },
    /// Misbehaviour froze the contract.
    #[error("GoatLightClient is frozen (a misbehaviour proof showed GOAT's validators signing two blocks at one height): GOAT settlement is stopped until a new light client is deployed")]
    Frozen,
    /// The EVM header is not in the store.
    #[error("GOAT block {number} {hash}: header missing from the store")]
    MissingHeader {
        /// Number.
        number: u64,
        /// Hash.
        hash: B256,
    },
    /// The CometBFT RPC failed.
    #[error(transparent)]
    Rpc(#[from] CometError),
    /// Metis failed.
    #[error(transparent)]
    Metis(#[from] MetisError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block could not be encoded for the contract.
    #[error("CometBFT height {height}: {error}")]
    Encode {
        /// The height.
        height: u64,
        /// Why.
        #[source]
        error: EncodeError,
    },
}

impl Classify for ProveError {
    fn class(&self) -> ErrorClass {
        match self {
            ProveError::NotYetFinal { .. } => ErrorClass::Transient,
            ProveError::Rpc(e) => e.class(),
            ProveError::Metis(e) => e.class(),
            ProveError::Store(_) => ErrorClass::Permanent,
            _ => ErrorClass::Permanent,
        }
    }
}

/// Proves `blocks` (EVM number, hash) final on GoatLightClient (the
/// deployment's GOAT header contract); returns the transactions sent.
pub async fn prove_blocks<St: Store>(
    store: &St,
    rpc: &CometRpc,
    sink: &AlloySink,
    blocks: &[(u64, B256)],
) -> Result<Vec<TxOutcome>, ProveError> {
    let state = ConsensusState::new(store);
    let mut sorted = blocks.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut sent = Vec::new();
    for (number, hash) in sorted {
        if sink.goat_is_known(hash).await? {
            continue;
        }
        let ph = state
            .proving_height(number)?
            .ok_or(ProveError::NotYetFinal { number })?;
        if ph.evm_hash != hash {
            return Err(ProveError::NotCanonical {
                number,
                hash,
                finalized: ph.evm_hash,
            });
        }
        let (trusted, _, frozen) = sink.goat_lc_state().await?;
        if frozen {
            return Err(ProveError::Frozen);
        }
        if ph.height <= trusted {
            // Too late for a commit: prove it from a newer block the contract holds.
            match from_descendant(store, sink, number, hash, trusted).await? {
                Some(txs) => {
                    sent.extend(txs);
                    continue;
                }
                None => {
                    return Err(ProveError::Passed {
                        number,
                        height: ph.height,
                        trusted,
                    })
                }
            }
        }
        for h in state.set_changes(trusted, ph.height.saturating_sub(1))? {
            sent.push(submit_height(store, rpc, sink, h, "validator set change").await?);
        }
        sent.push(
            submit_height(store, rpc, sink, ph.height, &format!("GOAT block {number}")).await?,
        );
    }
    Ok(sent)
}

/// How far above a block a proven descendant is looked for, and the most
/// headers in one `proveAncestors` (about 2 M gas).
pub const MAX_ANCESTORS: u64 = 64;
/// How far below the contract's latest proven block a block is still proven
/// by ancestors (a few chunks; each ancestor costs about 31k gas).
pub const MAX_WALK: u64 = 512;

/// Proves EVM block `number` (`hash`) from a descendant on our best chain
/// that GoatLightClient already holds (the nearest within [`MAX_ANCESTORS`],
/// else the one its trusted height proved, within [`MAX_WALK`]): the headers
/// from it down to the block, each the parent of the one before
/// (`proveAncestors`, in chunks). None when there is no such descendant.
async fn from_descendant<St: Store>(
    store: &St,
    sink: &AlloySink,
    number: u64,
    hash: B256,
    trusted: u64,
) -> Result<Option<Vec<TxOutcome>>, ProveError> {
    if store.goat_best_hash(number)? != Some(hash) {
        return Ok(None);
    }
    // The nearest proven block above, else the block the contract's trusted
    // height proved (always stored by submit), walked down in chunks.
    let mut top = None;
    for n in number + 1..=number + MAX_ANCESTORS {
        let Some(h) = store.goat_best_hash(n)? else {
            break;
        };
        if sink.goat_is_known(h).await? {
            top = Some(n);
            break;
        }
    }
    if top.is_none() {
        let state = ConsensusState::new(store);
        if let Some(e) = state.evm_at_height(trusted)? {
            if let Some(kh) = store.goat_best_hash(e)? {
                if e > number && e - number <= MAX_WALK && sink.goat_is_known(kh).await? {
                    top = Some(e);
                }
            }
        }
    }
    let Some(mut top) = top else {
        return Ok(None);
    };
    let mut sent = Vec::new();
    while top > number {
        let bottom = top.saturating_sub(MAX_ANCESTORS - 1).max(number);
        let mut headers = Vec::new();
        for n in (bottom..=top).rev() {
            let h = store.goat_best_hash(n)?.ok_or(ProveError::MissingHeader {
                number: n,
                hash: B256::ZERO,
            })?;
            let header = store
                .goat_header(&h)?
                .ok_or(ProveError::MissingHeader { number: n, hash: h })?;
            headers.push(Bytes::from(header.rlp()));
        }
        let o = sink
            .goat_lc_prove_ancestors(
                headers,
                &format!("GOAT blocks {bottom}..{top} (ancestors, for block {number})"),
            )
            .await?;
        info!(chain = "goat", evm = number, from = top, to = bottom, gas = o.gas_used, tx = %o.tx_hash, "GOAT blocks proven final on GoatLightClient from a proven descendant");
        sent.push(o);
        top = bottom;
    }
    Ok(Some(sent))
}

/// Keeps GoatLightClient inside its trusting period while no payment needs
/// it: when its trusted header is older than a third of `trusting_period`
/// (seconds), proves the latest EVM block the follower has made final (with
/// any set change on the way). Returns the transactions sent.
pub async fn keep_fresh<St: Store>(
    store: &St,
    rpc: &CometRpc,
    sink: &AlloySink,
    trusting_period: u64,
    now: u64,
) -> Result<Vec<TxOutcome>, ProveError> {
    let (height, time, frozen) = sink.goat_lc_state().await?;
    if frozen || now.saturating_sub(time) < trusting_period / 3 {
        return Ok(Vec::new());
    }
    let Some((number, hash)) = store.goat_finalized()? else {
        return Ok(Vec::new());
    };
    match ConsensusState::new(store).proving_height(number)? {
        Some(ph) if ph.height > height => {
            info!(
                chain = "goat",
                trusted_height = height,
                age_secs = now.saturating_sub(time),
                "GoatLightClient's trusted header is aging: submitting a recent height"
            );
            prove_blocks(store, rpc, sink, &[(number, hash)]).await
        }
        _ => Ok(Vec::new()),
    }
}

/// Submits CometBFT height `h` (and the EVM block its tx0 names as parent).
async fn submit_height<St: Store>(
    store: &St,
    rpc: &CometRpc,
    sink: &AlloySink,
    h: u64,
    why: &str,
) -> Result<TxOutcome, ProveError> {
    let block = rpc.light_block(h).await?;
    let encode = |error| ProveError::Encode { height: h, error };
    let payload =
        crate::goat::consensus::read_tx0(block.txs.first().map(Vec::as_slice).unwrap_or_default())
            .map_err(|what| encode(EncodeError::Tx0 { height: h, what }))?;
    let parent = payload.parent_hash;
    let number = payload.block_number.saturating_sub(1);
    let header = store
        .goat_header(&parent)?
        .ok_or(ProveError::MissingHeader {
            number,
            hash: parent,
        })?;
    let args = submit_args(&block, Bytes::from(header.rlp())).map_err(encode)?;
    let o = sink
        .goat_lc_submit(&args, &format!("CometBFT height {h} ({why})"))
        .await?;
    info!(chain = "goat", height = h, evm = number, gas = o.gas_used, tx = %o.tx_hash, "{why}: GOAT consensus height submitted to GoatLightClient");
    Ok(o)
}
