//! The GOAT sync runner: follows a [`GoatSource`] into a [`Store`] through
//! a [`GoatChain`], generic over both so tests can swap either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use thiserror::Error;
use tracing::{debug, info, info_span, warn, Instrument};

use super::chain::{Finality, GoatChain, GoatChainError, GoatEvent, GoatRule, ValidatedGoatHeader};
use super::checkpoint::GoatCheckpoint;
use super::follow::{ConsensusFollower, FollowError};
use super::source::{GoatSource, GoatSourceError};
use crate::error::{Classify, ErrorClass};
use crate::store::{Store, StoreError};

/// A GOAT sync failure.
#[derive(Debug, Error)]
pub enum GoatSyncError {
    /// The source failed (after retries, for transient failures).
    #[error(transparent)]
    Source(#[from] GoatSourceError),
    /// The source served headers the chain refuses.
    #[error("{source_name} served an invalid GOAT chain: {error}")]
    Invalid {
        /// The source.
        source_name: String,
        /// The rejection.
        #[source]
        error: GoatChainError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node follows another chain.
    #[error("{endpoint} reports chain id {found}, the config says goat.chain_id = {expected}")]
    WrongChain {
        /// The node.
        endpoint: String,
        /// Its chain id.
        found: u64,
        /// The configured one.
        expected: u64,
    },
    /// The node does not have the checkpoint block.
    #[error("{endpoint} does not have the checkpoint block {hash} at height {number}: {message}")]
    CheckpointMissing {
        /// The node.
        endpoint: String,
        /// Checkpoint number.
        number: u64,
        /// Checkpoint hash.
        hash: B256,
        /// What happened.
        message: String,
    },
    /// The stored chain cannot be restored.
    #[error("the store's GOAT chain cannot be restored: {0}")]
    Restore(String),
    /// The node has no `finalized` block while finality = "finalized".
    #[error(
        "{endpoint} has no `finalized` block; set goat.finality = {{ depth = N }} for this node"
    )]
    NoFinalizedTag {
        /// The node.
        endpoint: String,
    },
    /// The node's head is below the height gmrelay already holds as final:
    /// a lagging (or load-balanced) backend, not a reorg.
    #[error(
        "{endpoint} is at height {head}, we have finalized {finalized}: waiting for it to catch up"
    )]
    NodeBehind {
        /// The node.
        endpoint: String,
        /// Its head.
        head: u64,
        /// Our finalized height.
        finalized: u64,
    },
    /// The store's GOAT chain starts from another block than the checkpoint.
    #[error("store {path} holds GOAT block {stored} at the checkpoint height {number}, not the configured checkpoint {trusted}: delete {path} and sync again")]
    AnchoredElsewhere {
        /// The store.
        path: String,
        /// Checkpoint number.
        number: u64,
        /// What the store holds there (or `none`).
        stored: String,
        /// The configured hash.
        trusted: B256,
    },
    /// GOAT's consensus could not be followed (RPC, or a commit that fails
    /// verification).
    #[error(transparent)]
    Consensus(#[from] FollowError),
    /// finality = consensus without a consensus follower.
    #[error("GOAT finality by consensus needs [goat.consensus] (rpc_url, checkpoint_file)")]
    NoConsensus,
    /// Ctrl-C or a shutdown request.
    #[error("interrupted")]
    Interrupted,
}

impl GoatSyncError {
    /// Whether the node could not be reached at all (down, refused, timed out).
    pub fn node_unreachable(&self) -> bool {
        matches!(
            self,
            GoatSyncError::Source(GoatSourceError::Unavailable { .. })
        )
    }
}

impl Classify for GoatSyncError {
    fn class(&self) -> ErrorClass {
        match self {
            GoatSyncError::Source(e) => e.class(),
            GoatSyncError::Consensus(e) => e.class(),
            GoatSyncError::NodeBehind { .. } => ErrorClass::Transient,
            // The node may have reorged between two batches: a new round re-reads it.
            GoatSyncError::Invalid { error, .. }
                if matches!(
                    error.rule,
                    GoatRule::UnknownParent(_) | GoatRule::BrokenLink { .. }
                ) =>
            {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }
}

/// Tuning of the runner.
#[derive(Debug, Clone)]
pub struct GoatSyncOptions {
    /// Headers per batched request.
    pub batch_size: u64,
    /// Give up retrying a transient failure after this long.
    pub max_retry: Duration,
    /// First retry delay.
    pub initial_retry: Duration,
}

impl Default for GoatSyncOptions {
    fn default() -> Self {
        GoatSyncOptions {
            batch_size: 200,
            max_retry: Duration::from_secs(60),
            initial_retry: Duration::from_millis(200),
        }
    }
}

/// What one [`GoatSyncer::sync_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoatSyncReport {
    /// Headers newly stored.
    pub new_headers: u64,
    /// Reorgs followed ([`GoatEvent::TipChanged`] with reverted headers).
    pub reorgs: Vec<GoatEvent>,
    /// Tip after the sync.
    pub tip: (u64, B256),
    /// Finalized block after the sync.
    pub finalized: (u64, B256),
    /// Whether the finalized block moved in this round.
    pub finalized_moved: bool,
    /// The node's head.
    pub node_head: u64,
}

/// Retries a source call with exponential backoff while its error is
/// transient (see [`crate::retry`]).
pub async fn with_retry<T, F, Fut>(
    options: &GoatSyncOptions,
    what: &str,
    op: F,
) -> Result<T, GoatSourceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, GoatSourceError>>,
{
    let policy = crate::retry::RetryPolicy::new(options.initial_retry, options.max_retry);
    crate::retry::with_retry(policy, "goat", what, op).await
}

/// Follows one GOAT source into one store.
pub struct GoatSyncer<'a, S: GoatSource, St: Store> {
    source: &'a S,
    store: &'a St,
    chain_id: u64,
    chain: GoatChain,
    options: GoatSyncOptions,
    stop: Option<&'a AtomicBool>,
    consensus: Option<ConsensusFollower>,
}

impl<'a, S: GoatSource, St: Store> GoatSyncer<'a, S, St> {
    /// Checks the source's chain id, then opens the chain from the store or
    /// anchors a new one at the checkpoint.
    pub async fn open(
        source: &'a S,
        store: &'a St,
        checkpoint: GoatCheckpoint,
        chain_id: u64,
        finality: Finality,
        options: GoatSyncOptions,
    ) -> Result<Self, GoatSyncError> {
        let found = with_retry(&options, "eth_chainId", || source.chain_id()).await?;
        if found != chain_id {
            return Err(GoatSyncError::WrongChain {
                endpoint: source.endpoint(),
                found,
                expected: chain_id,
            });
        }
        let anchor = fetch_checkpoint(source, checkpoint, &options).await?;
        let chain = match store.goat_origin()? {
            Some((stored_id, number, hash)) => {
                if (stored_id, number, hash) != (chain_id, anchor.number(), anchor.hash()) {
                    return Err(StoreError::GoatOriginMismatch {
                        path: "store".into(),
                        found_chain_id: stored_id,
                        found_number: number,
                        found_hash: hash,
                        expected_chain_id: chain_id,
                        expected_number: anchor.number(),
                        expected_hash: anchor.hash(),
                    }
                    .into());
                }
                restore(store, finality)?
            }
            None => {
                let chain = GoatChain::from_checkpoint(anchor.clone(), finality);
                store.goat_init(
                    chain_id,
                    (anchor.number(), anchor.hash()),
                    &chain.anchor_changes(),
                )?;
                info!(chain = "goat", chain_id, height = anchor.number(), hash = %anchor.hash(), "new GOAT store anchored at checkpoint");
                chain
            }
        };
        Ok(GoatSyncer {
            source,
            store,
            chain_id,
            chain,
            options,
            stop: None,
            consensus: None,
        })
    }

    /// Takes finality from GOAT's consensus (`Finality::Consensus`): an EVM
    /// block is final when a verified CometBFT height names it as parent.
    pub fn with_consensus(mut self, follower: ConsensusFollower) -> Self {
        self.consensus = Some(follower);
        self
    }

    /// The consensus follower, when finality comes from consensus.
    pub fn consensus(&self) -> Option<&ConsensusFollower> {
        self.consensus.as_ref()
    }

    /// Stops between batches when `flag` becomes true.
    pub fn with_stop_flag(mut self, flag: &'a AtomicBool) -> Self {
        self.stop = Some(flag);
        self
    }

    /// The in-memory chain.
    pub fn chain(&self) -> &GoatChain {
        &self.chain
    }

    /// The chain id followed.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn check_stop(&self) -> Result<(), GoatSyncError> {
        if self.stop.is_some_and(|f| f.load(Ordering::SeqCst)) {
            return Err(GoatSyncError::Interrupted);
        }
        Ok(())
    }

    fn invalid(&self, error: GoatChainError) -> GoatSyncError {
        GoatSyncError::Invalid {
            source_name: self.source.endpoint(),
            error,
        }
    }

    /// Brings the store up to the source's canonical chain: follows reorgs
    /// above finality, refuses them below, advances finality.
    pub async fn sync_once(&mut self) -> Result<GoatSyncReport, GoatSyncError> {
        let span = info_span!("goat_sync", chain = "goat", chain_id = self.chain_id);
        self.sync_inner().instrument(span).await
    }

    async fn sync_inner(&mut self) -> Result<GoatSyncReport, GoatSyncError> {
        let opts = self.options.clone();
        let source = self.source;
        let head = with_retry(&opts, "eth_blockNumber", || source.head_number()).await?;
        metrics::gauge!("gmrelay_node_height", "chain" => "goat").set(head as f64);
        let final_tag = match self.chain.finality() {
            Finality::Tag => Some(
                with_retry(&opts, "eth_getBlockByNumber(finalized)", || {
                    source.finalized()
                })
                .await?
                .ok_or_else(|| GoatSyncError::NoFinalizedTag {
                    endpoint: source.endpoint(),
                })?,
            ),
            Finality::Depth(_) => None,
            Finality::Consensus => {
                let follower = self.consensus.as_mut().ok_or(GoatSyncError::NoConsensus)?;
                follower.advance(self.store).await?
            }
        };
        let finalized = self.chain.finalized().0;
        if head < finalized {
            return Err(GoatSyncError::NodeBehind {
                endpoint: source.endpoint(),
                head,
                finalized,
            });
        }
        let finalized_before = self.chain.finalized();
        let mut report = GoatSyncReport {
            node_head: head,
            ..GoatSyncReport::default()
        };
        let common = self.common_height(head).await?;
        if common < self.chain.tip().number() && common == head {
            // The node's canonical chain is now shorter than ours.
            let out = self.chain.rewind(common).map_err(|e| self.invalid(e))?;
            self.store.goat_apply(&out.changes)?;
            self.note_event(&out.event, &mut report);
        }
        let mut from = common + 1;
        while from <= head {
            self.check_stop()?;
            let count = (head - from + 1).min(opts.batch_size.max(1));
            let started = Instant::now();
            let headers = with_retry(&opts, "eth_getBlockByNumber batch", || {
                source.headers(from, count)
            })
            .await?;
            if headers.is_empty() {
                break;
            }
            let fetched = started.elapsed();
            let n = headers.len() as u64;
            let out = self.chain.connect(&headers).map_err(|e| self.invalid(e))?;
            let mut changes = out.changes;
            if let Some((f, hash)) = final_tag {
                let target = f.min(self.chain.tip().number());
                if target == f {
                    let more = self.chain.finalize(f, hash).map_err(|e| self.invalid(e))?;
                    if more.finalized.is_some() {
                        changes.finalized = more.finalized;
                    }
                }
            }
            self.store.goat_apply(&changes)?;
            report.new_headers += changes.headers.len() as u64;
            metrics::counter!("gmrelay_headers_accepted_total", "chain" => "goat")
                .increment(changes.headers.len() as u64);
            self.note_event(&out.event, &mut report);
            let tip = self.chain.tip();
            metrics::gauge!("gmrelay_tip_height", "chain" => "goat").set(tip.number() as f64);
            debug!(
                chain = "goat",
                height = tip.number(),
                hash = %tip.hash(),
                batch = n,
                fetch_ms = fetched.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                "batch connected"
            );
            from += n;
        }
        // Finality may move without new headers.
        if let Some((f, hash)) = final_tag {
            if f <= self.chain.tip().number() && f > self.chain.finalized().0 {
                let ch = self.chain.finalize(f, hash).map_err(|e| self.invalid(e))?;
                self.store.goat_apply(&ch)?;
            }
        }
        let tip = self.chain.tip();
        report.tip = (tip.number(), tip.hash());
        report.finalized = self.chain.finalized();
        report.finalized_moved = report.finalized != finalized_before;
        info!(chain = "goat", height = tip.number(), hash = %tip.hash(), finalized = report.finalized.0, new = report.new_headers, "synced");
        Ok(report)
    }

    fn note_event(&self, event: &GoatEvent, report: &mut GoatSyncReport) {
        if let GoatEvent::TipChanged {
            fork_point,
            reverted,
            connected,
        } = event
        {
            if !reverted.is_empty() {
                metrics::counter!("gmrelay_reorgs_total", "chain" => "goat").increment(1);
                warn!(
                    chain = "goat",
                    fork_height = fork_point.0,
                    fork_hash = %fork_point.1,
                    reverted = reverted.len(),
                    connected = connected.len(),
                    "GOAT reorg followed (above finality)"
                );
                report.reorgs.push(event.clone());
            }
        }
    }

    /// The highest height where the node's canonical chain and ours agree,
    /// searched from `min(tip, head)` down to the finalized height.
    async fn common_height(&self, head: u64) -> Result<u64, GoatSyncError> {
        let finalized = self.chain.finalized();
        let mut top = self.chain.tip().number().min(head);
        if top < finalized.0 {
            // Never a range upside down (the caller refuses such a node first).
            return Err(GoatSyncError::NodeBehind {
                endpoint: self.source.endpoint(),
                head,
                finalized: finalized.0,
            });
        }
        loop {
            let lowest = top.saturating_sub(63).max(finalized.0);
            let source = self.source;
            let theirs = with_retry(&self.options, "eth_getBlockByNumber batch", || {
                source.headers(lowest, top - lowest + 1)
            })
            .await?;
            for h in theirs.iter().rev() {
                let ours = self.chain.best_at(h.number).map(ValidatedGoatHeader::hash);
                if ours.is_some() && ours == Some(h.hash_slow()) {
                    return Ok(h.number);
                }
            }
            if lowest <= finalized.0 {
                // The node disagrees with our finalized block (or lacks it).
                let (number, hash) = theirs
                    .first()
                    .map(|h| (h.number, h.hash_slow()))
                    .unwrap_or(finalized);
                return Err(self.invalid(GoatChainError {
                    number,
                    hash,
                    rule: GoatRule::ReorgBelowFinality {
                        finalized: finalized.0,
                        fork_point: number.saturating_sub(1),
                    },
                }));
            }
            top = lowest - 1;
        }
    }
}

/// Fetches and checks the checkpoint header.
pub async fn fetch_checkpoint<S: GoatSource>(
    source: &S,
    checkpoint: GoatCheckpoint,
    options: &GoatSyncOptions,
) -> Result<ValidatedGoatHeader, GoatSyncError> {
    match checkpoint {
        GoatCheckpoint::Trusted { number, hash } => {
            let missing = |message: String| GoatSyncError::CheckpointMissing {
                endpoint: source.endpoint(),
                number,
                hash,
                message,
            };
            let header = with_retry(options, "eth_getBlockByHash", || {
                source.header_by_hash(hash)
            })
            .await
            .map_err(|e| missing(e.to_string()))?
            .ok_or_else(|| missing("no such block".into()))?;
            // The one check of the trust root: the served header must hash to
            // the configured hash. A mismatch is permanent and refused at once.
            let header = ValidatedGoatHeader::checkpoint(header, hash).map_err(|error| {
                GoatSyncError::Invalid {
                    source_name: source.endpoint(),
                    error,
                }
            })?;
            if header.number() != number {
                return Err(missing(format!(
                    "the block is at height {}, the checkpoint file says {number}",
                    header.number()
                )));
            }
            Ok(header)
        }
        GoatCheckpoint::DevnetGenesis => {
            let mut hs =
                with_retry(options, "eth_getBlockByNumber(0)", || source.headers(0, 1)).await?;
            let g = hs.pop().ok_or_else(|| GoatSyncError::CheckpointMissing {
                endpoint: source.endpoint(),
                number: 0,
                hash: B256::ZERO,
                message: "no genesis block".into(),
            })?;
            let hash = g.hash_slow();
            Ok(ValidatedGoatHeader::checkpoint(g, hash).expect("hash computed from the header"))
        }
    }
}

/// Rebuilds the in-memory chain from the store (finalized..=tip).
pub fn restore<St: Store>(store: &St, finality: Finality) -> Result<GoatChain, GoatSyncError> {
    let (_, cp_number, cp_hash) = store
        .goat_origin()?
        .ok_or_else(|| GoatSyncError::Restore("no GOAT chain stored".into()))?;
    // The stored chain must start at the checkpoint the origin names.
    let elsewhere = |stored: String| GoatSyncError::AnchoredElsewhere {
        path: store.location(),
        number: cp_number,
        stored,
        trusted: cp_hash,
    };
    match store.goat_best_hash(cp_number)? {
        Some(h) if h == cp_hash => {
            let header = store
                .goat_header(&h)?
                .ok_or_else(|| elsewhere(format!("{h} (its header is missing)")))?;
            if header.hash() != cp_hash {
                return Err(elsewhere(header.hash().to_string()));
            }
        }
        Some(h) => return Err(elsewhere(h.to_string())),
        None => return Err(elsewhere("none".into())),
    }
    let (tip, _) = store
        .goat_tip()?
        .ok_or_else(|| GoatSyncError::Restore("no tip recorded".into()))?;
    let (fin, fin_hash) = store
        .goat_finalized()?
        .ok_or_else(|| GoatSyncError::Restore("no finalized block recorded".into()))?;
    let headers = store.goat_best_range(fin, tip)?;
    if headers.first().map(|h| h.hash()) != Some(fin_hash) || headers.len() as u64 != tip - fin + 1
    {
        return Err(GoatSyncError::Restore(format!(
            "best chain {fin}..={tip} is incomplete or does not start at the finalized block {fin_hash}"
        )));
    }
    GoatChain::restore((cp_number, cp_hash), finality, headers).ok_or_else(|| {
        GoatSyncError::Restore(format!("best chain {fin}..={tip} has a broken link"))
    })
}
