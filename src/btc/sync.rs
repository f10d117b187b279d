//! The sync runner: follows a [`BtcSource`] into a [`Store`] through a
//! [`HeaderChain`], generic over both so tests can swap either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bitcoin::BlockHash;
use thiserror::Error;
use tracing::{debug, info, info_span, warn, Instrument};

use super::chain::{Anchor, AnchorError, ChainError, ChainEvent, HeaderChain, Rule};
use super::checkpoint::Checkpoint;
use super::network::BtcNetwork;
use super::source::{check_served, BtcSource, SourceError};
use crate::error::{Classify, ErrorClass};
use crate::store::{Store, StoreError};

/// A sync failure.
#[derive(Debug, Error)]
pub enum SyncError {
    /// The source failed (after retries, for transient failures).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The source served a header that breaks a consensus rule.
    #[error("{source_name} served an invalid header: {error}")]
    Invalid {
        /// The source.
        source_name: String,
        /// The rejection.
        #[source]
        error: ChainError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checkpoint could not be anchored on what the node served.
    #[error("checkpoint from {endpoint}: {error}")]
    Anchor {
        /// The node that served the anchor.
        endpoint: String,
        /// Why it was refused.
        #[source]
        error: AnchorError,
    },
    /// The store was anchored on another block than the configured checkpoint.
    #[error("store {path} is anchored on block {stored} at height {height}, not on the configured checkpoint {trusted}: it was anchored on a header that is not the checkpoint (a hostile node, or a gmrelay before 0.1.1 that did not check it). Delete {path} and sync again")]
    AnchoredElsewhere {
        /// The store.
        path: String,
        /// Checkpoint height.
        height: u32,
        /// What the store holds there (or `none`).
        stored: String,
        /// The configured checkpoint hash.
        trusted: BlockHash,
    },
    /// The node's chain forks from ours below the headers held in memory.
    #[error("{endpoint} forks from gmrelay's best chain at height {fork_height}, below the {window} headers kept to check a reorg (from height {lowest}): a reorg this deep is not followed automatically. Check the node; if its chain is the real one, move the store away and sync a new one from the checkpoint")]
    ForkBelowWindow {
        /// The node.
        endpoint: String,
        /// The last height both chains share.
        fork_height: u32,
        /// The lowest height held in memory.
        lowest: u32,
        /// Headers held.
        window: usize,
    },
    /// The node follows another chain than the config.
    #[error("{endpoint} follows chain `{found}`, the config says Bitcoin {expected} (chain `{}`)", expected.core_chain_name())]
    WrongChain {
        /// The node.
        endpoint: String,
        /// What it reports.
        found: String,
        /// What the config says.
        expected: BtcNetwork,
    },
    /// The node does not have the checkpoint block.
    #[error("{endpoint} does not have the checkpoint block {hash} at height {height}: {message}")]
    CheckpointMissing {
        /// The node.
        endpoint: String,
        /// Checkpoint height.
        height: u32,
        /// Checkpoint hash.
        hash: BlockHash,
        /// What the node said.
        message: String,
    },
    /// The store holds a chain that cannot be restored.
    #[error("the store's best chain around height {height} cannot be restored: {message}")]
    Restore {
        /// Where.
        height: u32,
        /// What is wrong.
        message: String,
    },
    /// Ctrl-C or a shutdown request.
    #[error("interrupted")]
    Interrupted,
}

impl SyncError {
    /// Whether the node could not be reached at all (down, refused, timed out).
    pub fn node_unreachable(&self) -> bool {
        matches!(self, SyncError::Source(SourceError::Unavailable { .. }))
    }
}

impl Classify for SyncError {
    fn class(&self) -> ErrorClass {
        match self {
            SyncError::Source(e) => e.class(),
            // A node that reorged between two calls of a round serves a
            // batch whose first header names a parent we never saw, or
            // hashes from two branches: the next round starts over.
            SyncError::Invalid { error, .. }
                if matches!(error.rule, Rule::UnknownParent(_) | Rule::BrokenLink { .. }) =>
            {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }
}

/// Tuning of the runner.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Headers fetched per batch (one batched RPC request for hashes, one for headers).
    pub batch_size: u32,
    /// Give up retrying a transient failure after this long.
    pub max_retry: Duration,
    /// First retry delay.
    pub initial_retry: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            batch_size: 2000,
            max_retry: Duration::from_secs(60),
            initial_retry: Duration::from_millis(200),
        }
    }
}

/// What one [`Syncer::sync_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Headers newly stored (best chain and side branches).
    pub new_headers: u64,
    /// Reorgs followed, with their depth.
    pub reorgs: Vec<u32>,
    /// Tip after the sync.
    pub tip_height: u32,
    /// Tip hash after the sync.
    pub tip_hash: Option<BlockHash>,
    /// Whether the node's chain is lighter than the one gmrelay follows.
    pub node_behind: bool,
    /// The node's height.
    pub node_height: u32,
}

/// Progress callback: (local tip height, node tip height).
pub type Progress<'a> = &'a (dyn Fn(u32, u32) + Sync);

/// Follows one source into one store.
pub struct Syncer<'a, S: BtcSource, St: Store> {
    source: &'a S,
    store: &'a St,
    network: BtcNetwork,
    chain: HeaderChain,
    options: SyncOptions,
    stop: Option<&'a AtomicBool>,
}

/// The wall clock as a header timestamp, read at the edge and passed into
/// the pure chain core.
pub fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

/// Retries a source call with exponential backoff while its error is
/// transient (see [`crate::retry`]).
pub async fn with_retry<T, F, Fut>(
    options: &SyncOptions,
    what: &str,
    op: F,
) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SourceError>>,
{
    let policy = crate::retry::RetryPolicy::new(options.initial_retry, options.max_retry);
    crate::retry::with_retry(policy, "bitcoin", what, op).await
}

impl<'a, S: BtcSource, St: Store> Syncer<'a, S, St> {
    /// Opens the chain from the store, or anchors a new one at `checkpoint`
    /// (fetching the checkpoint header and the ten below it from the source).
    pub async fn open(
        source: &'a S,
        store: &'a St,
        checkpoint: &Checkpoint,
        options: SyncOptions,
    ) -> Result<Self, SyncError> {
        let network = checkpoint.network;
        let chain = match store.btc_origin()? {
            Some(_) => restore(store, network, checkpoint)?,
            None => {
                let anchor = fetch_anchor(source, checkpoint, &options).await?;
                let chain = HeaderChain::from_anchor(network.rules(), anchor).map_err(|error| {
                    SyncError::Anchor {
                        endpoint: source.endpoint(),
                        error,
                    }
                })?;
                store.btc_init(
                    network,
                    (checkpoint.height, checkpoint.hash),
                    &chain.anchor_changes(),
                )?;
                info!(network = %network, height = checkpoint.height, hash = %checkpoint.hash, "new store anchored at checkpoint");
                chain
            }
        };
        Ok(Syncer {
            source,
            store,
            network,
            chain,
            options,
            stop: None,
        })
    }

    /// Stops between batches when `flag` becomes true.
    pub fn with_stop_flag(mut self, flag: &'a AtomicBool) -> Self {
        self.stop = Some(flag);
        self
    }

    /// The in-memory chain.
    pub fn chain(&self) -> &HeaderChain {
        &self.chain
    }

    fn check_stop(&self) -> Result<(), SyncError> {
        if self.stop.is_some_and(|f| f.load(Ordering::SeqCst)) {
            return Err(SyncError::Interrupted);
        }
        Ok(())
    }

    /// Brings the store up to the source's best chain (or keeps a heavier
    /// chain gmrelay already follows). Returns what changed.
    pub async fn sync_once(
        &mut self,
        progress: Option<Progress<'_>>,
    ) -> Result<SyncReport, SyncError> {
        let span = info_span!("btc_sync", chain = "bitcoin", network = %self.network);
        self.sync_inner(progress).instrument(span).await
    }

    async fn sync_inner(
        &mut self,
        progress: Option<Progress<'_>>,
    ) -> Result<SyncReport, SyncError> {
        let opts = self.options.clone();
        let source = self.source;
        let info = with_retry(&opts, "getblockchaininfo", || source.chain_info()).await?;
        if info.chain != self.network.core_chain_name() {
            return Err(SyncError::WrongChain {
                endpoint: source.endpoint(),
                found: info.chain,
                expected: self.network,
            });
        }
        metrics::gauge!("gmrelay_node_height", "chain" => "bitcoin").set(f64::from(info.blocks));
        let mut report = SyncReport {
            node_height: info.blocks,
            ..SyncReport::default()
        };
        let common = self.common_height(info.blocks).await?;
        if common < self.chain.tip().height() && self.chain.best_at(common).is_none() {
            return Err(SyncError::ForkBelowWindow {
                endpoint: source.endpoint(),
                fork_height: common,
                lowest: self.chain.lowest_height(),
                window: HeaderChain::DEFAULT_WINDOW,
            });
        }
        let mut from = common + 1;
        while from <= info.blocks {
            self.check_stop()?;
            let count = (info.blocks - from + 1).min(opts.batch_size);
            let started = Instant::now();
            let hashes =
                with_retry(&opts, "getblockhash", || source.block_hashes(from, count)).await?;
            if hashes.is_empty() {
                break;
            }
            let headers = with_retry(&opts, "getblockheader", || async {
                let headers = source.headers(&hashes).await?;
                check_served(&source.endpoint(), &hashes, &headers)?;
                Ok(headers)
            })
            .await?;
            let fetched = started.elapsed();
            let connected =
                self.chain
                    .connect(&headers, now_secs())
                    .map_err(|error| SyncError::Invalid {
                        source_name: source.endpoint(),
                        error,
                    })?;
            self.store.btc_apply(&connected.changes)?;
            report.new_headers += connected.changes.headers.len() as u64;
            metrics::counter!("gmrelay_headers_accepted_total", "chain" => "bitcoin")
                .increment(connected.changes.headers.len() as u64);
            match &connected.event {
                ChainEvent::TipChanged {
                    reverted,
                    connected: added,
                    fork_point,
                } => {
                    if !reverted.is_empty() {
                        metrics::counter!("gmrelay_reorgs_total", "chain" => "bitcoin")
                            .increment(1);
                        warn!(
                            fork_height = fork_point.0,
                            fork_hash = %fork_point.1,
                            reverted = reverted.len(),
                            connected = added.len(),
                            "reorg followed"
                        );
                        report.reorgs.push(reverted.len() as u32);
                    }
                }
                ChainEvent::SideBranch { tip } => {
                    debug!(height = tip.height(), hash = %tip.hash(), "side branch stored");
                }
                ChainEvent::Unchanged => {}
            }
            let tip = self.chain.tip();
            metrics::gauge!("gmrelay_tip_height", "chain" => "bitcoin")
                .set(f64::from(tip.height()));
            debug!(
                height = tip.height(),
                hash = %tip.hash(),
                batch = headers.len(),
                fetch_ms = fetched.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                "batch connected"
            );
            if let Some(p) = progress {
                p(tip.height(), info.blocks);
            }
            from += hashes.len() as u32;
        }
        let tip = self.chain.tip();
        report.tip_height = tip.height();
        report.tip_hash = Some(tip.hash());
        if tip.hash() != info.best_block_hash {
            // The node's best block is not our tip: either it is on our best
            // chain (the node is behind) or on a lighter branch.
            report.node_behind = true;
            if self.chain.best_height_of(&info.best_block_hash).is_none() {
                warn!(node_tip = %info.best_block_hash, our_tip = %tip.hash(), "the node's best chain is not the heaviest chain gmrelay knows");
            }
        }
        info!(height = tip.height(), hash = %tip.hash(), new = report.new_headers, "synced");
        Ok(report)
    }

    /// The highest height where the node's best chain and ours agree.
    async fn common_height(&self, node_height: u32) -> Result<u32, SyncError> {
        let tip = self.chain.tip();
        let lowest = self.chain.checkpoint_height();
        let mut h = tip.height().min(node_height);
        let mut step = 1u32;
        // Walk back exponentially to a height where both agree, then bisect
        // between it and the last height where they did not: the highest
        // common height in O(log depth) calls.
        let mut disagree: Option<u32> = None;
        let good = loop {
            if self.agrees_at(h).await? {
                break h;
            }
            if h <= lowest {
                // The node does not have our checkpoint: connecting will fail
                // with an unknown parent, naming the header.
                return Ok(lowest);
            }
            disagree = Some(h);
            h = h.saturating_sub(step).max(lowest);
            step = step.saturating_mul(2);
        };
        let (mut good, mut bad) = match disagree {
            Some(bad) => (good, bad),
            None => return Ok(good),
        };
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if self.agrees_at(mid).await? {
                good = mid;
            } else {
                bad = mid;
            }
        }
        Ok(good)
    }

    /// Whether the node's best chain and ours hold the same block at `h`.
    async fn agrees_at(&self, h: u32) -> Result<bool, SyncError> {
        let ours = if let Some(v) = self.chain.best_at(h) {
            Some(v.hash())
        } else {
            self.store.btc_best_hash(h)?
        };
        let source = self.source;
        let theirs = with_retry(&self.options, "getblockhash", || source.block_hashes(h, 1))
            .await?
            .first()
            .copied();
        Ok(ours.is_some() && ours == theirs)
    }
}

/// Fetches the checkpoint header and the headers below it, walking
/// `prev_blockhash` back from the trusted hash.
pub async fn fetch_anchor<S: BtcSource>(
    source: &S,
    checkpoint: &Checkpoint,
    options: &SyncOptions,
) -> Result<Anchor, SyncError> {
    let missing = |message: String| SyncError::CheckpointMissing {
        endpoint: source.endpoint(),
        height: checkpoint.height,
        hash: checkpoint.hash,
        message,
    };
    let get = |hash: BlockHash| async move {
        with_retry(options, "getblockheader", || {
            source.headers(std::slice::from_ref(&hash))
        })
        .await
        .map(|mut v| v.pop())
    };
    let header = get(checkpoint.hash)
        .await
        .map_err(|e| missing(e.to_string()))?
        .ok_or_else(|| missing("no header".into()))?;
    // Refused at once, never retried: a node that serves another header for
    // the trusted hash is not going to serve the right one a second later.
    if header.block_hash() != checkpoint.hash {
        return Err(SyncError::Anchor {
            endpoint: source.endpoint(),
            error: AnchorError::NotTheCheckpoint {
                height: checkpoint.height,
                trusted: checkpoint.hash,
                served: header.block_hash(),
            },
        });
    }
    let mut ancestors = Vec::new();
    let mut prev = header.prev_blockhash;
    for _ in 0..HeaderChain::anchor_ancestors(checkpoint.height) {
        let h = get(prev)
            .await
            .map_err(|e| missing(format!("header {prev} below the checkpoint: {e}")))?
            .ok_or_else(|| missing(format!("no header {prev} below the checkpoint")))?;
        prev = h.prev_blockhash;
        ancestors.push(h);
    }
    ancestors.reverse();
    let chainwork = checkpoint.chainwork().unwrap_or_else(|| header.work());
    Ok(Anchor {
        trusted_hash: checkpoint.hash,
        header,
        height: checkpoint.height,
        chainwork,
        ancestors,
    })
}

/// The header stored at the checkpoint's height must be the checkpoint: a
/// store anchored on anything else (by a hostile node, or by an older gmrelay
/// that did not check) is refused, whatever its origin record says.
pub fn check_stored_anchor<St: Store>(
    store: &St,
    checkpoint: &Checkpoint,
) -> Result<(), SyncError> {
    let elsewhere = |stored: String| SyncError::AnchoredElsewhere {
        path: store.location(),
        height: checkpoint.height,
        stored,
        trusted: checkpoint.hash,
    };
    let Some(hash) = store.btc_best_hash(checkpoint.height)? else {
        return Err(elsewhere("none".into()));
    };
    let header = store
        .btc_header(&hash)?
        .ok_or_else(|| elsewhere(format!("{hash} (its header is missing)")))?;
    // `from_store` re-hashed the stored bytes: `hash` is what they hash to.
    if header.hash() != checkpoint.hash {
        return Err(elsewhere(header.hash().to_string()));
    }
    Ok(())
}

/// Rebuilds the in-memory chain from the store's best chain.
pub fn restore<St: Store>(
    store: &St,
    network: BtcNetwork,
    checkpoint: &Checkpoint,
) -> Result<HeaderChain, SyncError> {
    let (found_net, cp_height, cp_hash) = store
        .btc_origin()?
        .expect("restore is only called on an initialised store");
    if found_net != network {
        return Err(StoreError::WrongNetwork {
            path: store.location().into(),
            found: found_net.name().into(),
            expected: network,
        }
        .into());
    }
    if (cp_height, cp_hash) != (checkpoint.height, checkpoint.hash) {
        return Err(StoreError::WrongCheckpoint {
            path: store.location().into(),
            found_height: cp_height,
            found_hash: cp_hash,
            expected_height: checkpoint.height,
            expected_hash: checkpoint.hash,
        }
        .into());
    }
    check_stored_anchor(store, checkpoint)?;
    let (tip_height, _) = store.btc_tip()?.ok_or(SyncError::Restore {
        height: cp_height,
        message: "no tip recorded".into(),
    })?;
    let capacity = HeaderChain::DEFAULT_WINDOW;
    let floor = cp_height - HeaderChain::anchor_ancestors(cp_height);
    let from = tip_height.saturating_sub(capacity as u32 - 1).max(floor);
    let recent = store.btc_best_range(from, tip_height)?;
    HeaderChain::restore(network.rules(), cp_height, recent, capacity).ok_or(SyncError::Restore {
        height: from,
        message: "stored best chain has a gap or a broken link".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(rule: Rule) -> SyncError {
        SyncError::Invalid {
            source_name: "node".into(),
            error: ChainError {
                height: 1,
                hash: crate::btc::chain::zero_hash(),
                rule,
            },
        }
    }

    /// An in-memory node serving one best chain, genesis first (a fake for
    /// this pure-logic test of the runner; the integration tests use bitcoind).
    struct MemSource(Vec<bitcoin::block::Header>);

    impl BtcSource for MemSource {
        fn endpoint(&self) -> String {
            "mem".into()
        }
        async fn chain_info(&self) -> Result<super::super::source::ChainInfo, SourceError> {
            Ok(super::super::source::ChainInfo {
                chain: "regtest".into(),
                blocks: self.0.len() as u32 - 1,
                best_block_hash: self.0.last().unwrap().block_hash(),
            })
        }
        async fn block_hashes(&self, from: u32, count: u32) -> Result<Vec<BlockHash>, SourceError> {
            Ok(self
                .0
                .iter()
                .skip(from as usize)
                .take(count as usize)
                .map(|h| h.block_hash())
                .collect())
        }
        async fn headers(
            &self,
            hashes: &[BlockHash],
        ) -> Result<Vec<bitcoin::block::Header>, SourceError> {
            Ok(hashes
                .iter()
                .filter_map(|x| self.0.iter().find(|h| h.block_hash() == *x).copied())
                .collect())
        }
        async fn block(&self, _: &BlockHash) -> Result<bitcoin::Block, SourceError> {
            unimplemented!("not used by the header sync")
        }
        async fn tx_block(&self, _: &bitcoin::Txid) -> Result<Option<BlockHash>, SourceError> {
            Ok(None)
        }
    }

    /// `n` regtest headers on top of `parent`, tagged so branches differ.
    fn branch(parent: &bitcoin::block::Header, n: usize, tag: u32) -> Vec<bitcoin::block::Header> {
        use bitcoin::hashes::Hash;
        let mut out = Vec::with_capacity(n);
        let mut prev = *parent;
        for i in 0..n {
            let mut h = bitcoin::block::Header {
                version: bitcoin::block::Version::from_consensus(0x2000_0000),
                prev_blockhash: prev.block_hash(),
                merkle_root: bitcoin::TxMerkleNode::from_byte_array(
                    bitcoin::hashes::sha256d::Hash::hash(
                        &[tag.to_le_bytes(), (i as u32).to_le_bytes()].concat(),
                    )
                    .to_byte_array(),
                ),
                time: prev.time + 1,
                bits: prev.bits,
                nonce: 0,
            };
            while !h.target().is_met_by(h.block_hash()) {
                h.nonce += 1;
            }
            out.push(h);
            prev = h;
        }
        out
    }

    #[tokio::test]
    async fn a_fork_below_the_window_is_permanent_and_says_what_to_do() {
        let store = crate::store::MemStore::default();
        let cp = Checkpoint::builtin(BtcNetwork::Regtest);
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        let mut main = vec![genesis];
        main.extend(branch(&genesis, HeaderChain::DEFAULT_WINDOW + 200, 1));
        let node = MemSource(main.clone());
        let opts = SyncOptions {
            max_retry: Duration::from_millis(10),
            ..SyncOptions::default()
        };
        let mut syncer = Syncer::open(&node, &store, &cp, opts.clone())
            .await
            .unwrap();
        syncer.sync_once(None).await.unwrap();
        assert!(
            syncer.chain().best_at(100).is_none(),
            "height 100 left the window"
        );
        // A heavier chain that forks at height 100.
        let mut fork = main[..=100].to_vec();
        fork.extend(branch(&main[100], HeaderChain::DEFAULT_WINDOW + 300, 2));
        let other = MemSource(fork);
        let mut syncer = Syncer::open(&other, &store, &cp, opts).await.unwrap();
        let err = syncer.sync_once(None).await.unwrap_err();
        assert!(
            matches!(
                err,
                SyncError::ForkBelowWindow {
                    fork_height: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_transient(), "retrying cannot help: {err}");
        assert!(err.to_string().contains("move the store away"), "{err}");
    }

    #[test]
    fn a_node_reorging_mid_round_is_transient_a_bad_header_is_not() {
        let h = crate::btc::chain::zero_hash();
        assert!(invalid(Rule::UnknownParent(h)).is_transient());
        assert!(invalid(Rule::BrokenLink { expected_parent: h }).is_transient());
        assert!(!invalid(Rule::InsufficientWork).is_transient());
        assert!(!invalid(Rule::BadBits {
            expected: 1,
            got: 2
        })
        .is_transient());
    }
}
