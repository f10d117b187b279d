//! Brings BtcLightClient up to the local best Bitcoin chain.
//!
//! The contract stores only batch tips (see contracts/README.md). Planning
//! reads the contract: if its best tip is on our best chain, relaying starts
//! right after it; otherwise (the contract followed a fork we reorged away
//! from) it starts after the highest of our best-chain headers the contract
//! stores. Each step re-plans from the contract's state, so a transient
//! failure (or another relayer racing us) is retried safely.

use std::time::Duration;

use alloy::primitives::{Bytes, B256};
use backoff::ExponentialBackoff;
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use thiserror::Error;
use tracing::{info, info_span, warn, Instrument};

use super::sink::{MetisError, MetisSink, TxOutcome};
use crate::error::{Classify, ErrorClass};
use crate::store::{Store, StoreError};

/// Why relaying stopped.
#[derive(Debug, Error)]
pub enum RelayError {
    /// The store holds no Bitcoin chain.
    #[error("the store holds no Bitcoin chain: run `gmrelay headers sync` first")]
    EmptyStore,
    /// The contract is ahead of the store.
    #[error("BtcLightClient's best tip is at height {contract_height} ({contract_hash}), above the local tip {local_height}: run `gmrelay headers sync` first")]
    ContractAhead {
        /// The contract's best height.
        contract_height: u64,
        /// Its hash (display order).
        contract_hash: String,
        /// The store's tip height.
        local_height: u32,
    },
    /// None of our best-chain headers down to the checkpoint is stored.
    #[error("BtcLightClient stores none of the local best chain's headers between {from} and {to}: it was deployed from another checkpoint or network (check the deployment file)")]
    NoCommonHeader {
        /// Lowest height searched.
        from: u32,
        /// Highest height searched.
        to: u32,
    },
    /// The store lacks a best-chain header it claims.
    #[error("the store's best chain has no header at height {0}")]
    Gap(u32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Metis failed.
    #[error(transparent)]
    Metis(#[from] MetisError),
}

impl Classify for RelayError {
    fn class(&self) -> ErrorClass {
        match self {
            RelayError::Metis(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
}

/// Internal byte order of a Bitcoin block hash, as the contract stores it.
pub fn internal(hash: &bitcoin::BlockHash) -> B256 {
    B256::from(hash.to_byte_array())
}

/// The display form of a contract hash (internal byte order).
pub fn display(hash: B256) -> String {
    bitcoin::BlockHash::from_byte_array(hash.0).to_string()
}

/// What to submit next: heights `from..=to` of the local best chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPlan {
    /// First height to submit.
    pub from: u32,
    /// The local tip.
    pub to: u32,
    /// The contract's best height when planned.
    pub contract_height: u64,
    /// Whether the contract's best tip is on another branch.
    pub fork: bool,
}

/// Plans the next submission (None: the contract is up to date).
pub async fn plan<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
) -> Result<Option<RelayPlan>, RelayError> {
    let (_, cp_height, _) = store.btc_origin()?.ok_or(RelayError::EmptyStore)?;
    let (tip, _) = store.btc_tip()?.ok_or(RelayError::EmptyStore)?;
    let (contract_height, contract_hash) = sink.btc_best().await?;
    if contract_height > u64::from(tip) {
        return Err(RelayError::ContractAhead {
            contract_height,
            contract_hash: display(contract_hash),
            local_height: tip,
        });
    }
    let ch = contract_height as u32;
    let ours_at = store.btc_best_hash(ch)?.map(|h| internal(&h));
    if ours_at == Some(contract_hash) {
        return Ok((ch < tip).then_some(RelayPlan {
            from: ch + 1,
            to: tip,
            contract_height,
            fork: false,
        }));
    }
    // The contract follows another branch: find the highest of our
    // best-chain headers it stores (batch tips and the checkpoint).
    let low = cp_height;
    let mut h = ch.min(tip);
    loop {
        if let Some(hash) = store.btc_best_hash(h)? {
            if sink.btc_is_stored(internal(&hash)).await? {
                // Our tip itself is stored (as an equally heavy side tip):
                // nothing to send until our chain grows.
                if h >= tip {
                    return Ok(None);
                }
                return Ok(Some(RelayPlan {
                    from: h + 1,
                    to: tip,
                    contract_height,
                    fork: true,
                }));
            }
        }
        if h <= low {
            return Err(RelayError::NoCommonHeader {
                from: low,
                to: ch.min(tip),
            });
        }
        h -= 1;
    }
}

/// One submitted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// First height.
    pub from: u32,
    /// Last height.
    pub to: u32,
    /// The transaction.
    pub outcome: TxOutcome,
}

impl BatchReport {
    /// Headers in the batch.
    pub fn count(&self) -> u32 {
        self.to - self.from + 1
    }
    /// Gas per header.
    pub fn gas_per_header(&self) -> u64 {
        self.outcome.gas_used / u64::from(self.count())
    }
}

/// Options of [`relay_headers`].
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Headers per transaction.
    pub batch: u32,
    /// How long to retry transient failures.
    pub max_retry: Duration,
}

/// Submits the local best chain's headers the contract lacks, in batches;
/// `on_batch` sees each batch as it is mined.
pub async fn relay_headers<S: Store, M: MetisSink>(
    store: &S,
    sink: &M,
    options: RelayOptions,
    mut on_batch: impl FnMut(&BatchReport),
) -> Result<Vec<BatchReport>, RelayError> {
    let span = info_span!("relay_headers", endpoint = %sink.endpoint());
    async move {
        let mut done = Vec::new();
        let mut backoff = new_backoff(options.max_retry);
        loop {
            let step = async {
                let Some(p) = plan(store, sink).await? else {
                    return Ok(None);
                };
                if p.fork {
                    info!(
                        contract_height = p.contract_height,
                        from = p.from,
                        "BtcLightClient follows another branch: resubmitting from the highest common stored header"
                    );
                }
                let to = p.to.min(p.from + options.batch.max(1) - 1);
                let headers = store.btc_best_range(p.from, to)?;
                if headers.len() as u32 != to - p.from + 1 {
                    return Err(RelayError::Gap(p.from + headers.len() as u32));
                }
                // 48-byte compact records: the contract knows each prevHash.
                let parent = internal(&headers[0].header().prev_blockhash);
                let mut bytes = Vec::with_capacity(headers.len() * 48);
                for v in &headers {
                    let raw: [u8; 80] = serialize(v.header())
                        .try_into()
                        .expect("a header serializes to 80 bytes");
                    bytes.extend_from_slice(&super::settle::compact_header(&raw));
                }
                let outcome = sink.btc_submit_compact(parent, Bytes::from(bytes)).await?;
                Ok(Some(BatchReport {
                    from: p.from,
                    to,
                    outcome,
                }))
            };
            match step.await {
                Ok(None) => return Ok(done),
                Ok(Some(report)) => {
                    info!(
                        from = report.from,
                        to = report.to,
                        gas = report.outcome.gas_used,
                        "headers relayed"
                    );
                    on_batch(&report);
                    done.push(report);
                    backoff = new_backoff(options.max_retry);
                }
                Err(e) if e.is_transient() => {
                    use backoff::backoff::Backoff;
                    match backoff.next_backoff() {
                        Some(wait) => {
                            metrics::counter!("gmrelay_metis_retries_total").increment(1);
                            warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "relay step failed; re-planning from the contract's state");
                            tokio::time::sleep(wait).await;
                        }
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    .instrument(span)
    .await
}

/// The retry policy for transient Metis failures.
pub fn new_backoff(max: Duration) -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_millis(250),
        max_interval: Duration::from_secs(10),
        max_elapsed_time: Some(max),
        ..ExponentialBackoff::default()
    }
}
