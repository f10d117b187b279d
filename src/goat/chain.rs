//! The GOAT header chain: a pure verification core (no I/O, no clock).
//!
//! GOAT Network finalizes blocks with a BFT consensus layer; there is no
//! proof of work to weigh branches. gmrelay therefore follows the chain its
//! source calls canonical, and checks what a light client can check without
//! the validator set: each header hashes (keccak256 of its RLP, computed
//! here) to the hash its child names, numbers go up by one, timestamps
//! never go back, and nothing at or below the finalized height ever
//! changes. Unfinalized headers are kept; a reorg above finality is
//! followed and returned as a value ([`GoatEvent::TipChanged`]); a reorg
//! that would revert a finalized header is refused loudly
//! ([`GoatRule::ReorgBelowFinality`]).
//!
//! Finality ([`Finality`]) is either the source's `finalized` block tag
//! (GOAT: head − 1), applied with [`GoatChain::finalize`], or a fixed depth
//! applied on every connect.

use std::collections::VecDeque;
use std::fmt;

use alloy::primitives::{keccak256, B256};
use thiserror::Error;

use super::header::GoatHeader;

/// A header that passed every check the chain makes (or a trusted
/// checkpoint). Only this module and the store's read path build these,
/// and both recompute the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidatedGoatHeader {
    header: GoatHeader,
    hash: B256,
}

impl fmt::Debug for ValidatedGoatHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatedGoatHeader")
            .field("number", &self.header.number)
            .field("hash", &self.hash)
            .finish()
    }
}

impl ValidatedGoatHeader {
    /// The header.
    pub fn header(&self) -> &GoatHeader {
        &self.header
    }
    /// keccak256(rlp(header)).
    pub fn hash(&self) -> B256 {
        self.hash
    }
    /// The block number.
    pub fn number(&self) -> u64 {
        self.header.number
    }
    /// `rlp(header)`.
    pub fn rlp(&self) -> Vec<u8> {
        self.header.rlp()
    }

    /// Rebuilds a header read back from gmrelay's own store: decodes the
    /// RLP strictly and recomputes the hash, so a corrupted record cannot
    /// pass as another block. Returns the hash found on a mismatch.
    pub fn from_store(rlp: &[u8], expected_hash: B256) -> Result<Self, String> {
        let header = GoatHeader::decode_rlp(rlp).map_err(|e| e.to_string())?;
        let hash = keccak256(rlp);
        if hash != expected_hash {
            return Err(format!("record hashes to {hash}"));
        }
        Ok(ValidatedGoatHeader { header, hash })
    }

    /// A trusted checkpoint: the operator vouches for `trusted_hash`; the
    /// header must hash to it.
    pub fn checkpoint(header: GoatHeader, trusted_hash: B256) -> Result<Self, GoatChainError> {
        let hash = header.hash_slow();
        if hash != trusted_hash {
            return Err(GoatChainError {
                number: header.number,
                hash,
                rule: GoatRule::CheckpointMismatch {
                    trusted: trusted_hash,
                },
            });
        }
        Ok(ValidatedGoatHeader { header, hash })
    }
}

/// When a GOAT block counts as final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// The source's `finalized` block tag (GOAT finalizes at head − 1).
    Tag,
    /// Blocks at least this many below the tip.
    Depth(u64),
    /// Blocks a verified CometBFT commit makes final (GOAT's validators'
    /// signatures, checked by [`super::follow`]).
    Consensus,
}

impl fmt::Display for Finality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finality::Tag => f.write_str("the node's `finalized` tag"),
            Finality::Depth(n) => write!(f, "depth {n}"),
            Finality::Consensus => f.write_str("GOAT's CometBFT commits, verified"),
        }
    }
}

/// The rule a header broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoatRule {
    /// The parent is not on the best chain gmrelay follows.
    UnknownParent(B256),
    /// Batch headers that do not link to each other.
    BrokenLink {
        /// The hash the header should have named.
        expected_parent: B256,
    },
    /// `number` is not the parent's plus one.
    BadNumber {
        /// The parent's number.
        parent: u64,
    },
    /// The timestamp is before the parent's.
    TimestampBeforeParent {
        /// The parent's timestamp.
        parent_timestamp: u64,
        /// This header's timestamp.
        timestamp: u64,
    },
    /// The header would revert a finalized block.
    ReorgBelowFinality {
        /// The finalized height.
        finalized: u64,
        /// The height of the last common block.
        fork_point: u64,
    },
    /// A finalized block that is not on the best chain gmrelay follows.
    FinalizedNotOnBestChain {
        /// What the best chain has at that height, if anything.
        ours: Option<B256>,
    },
    /// The checkpoint header does not hash to the trusted hash.
    CheckpointMismatch {
        /// The hash the checkpoint file names.
        trusted: B256,
    },
}

impl fmt::Display for GoatRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoatRule::UnknownParent(p) => write!(
                f,
                "parent {p} is not on the chain gmrelay follows (unknown, or below the headers held)"
            ),
            GoatRule::BrokenLink { expected_parent } => {
                write!(f, "does not link to the previous header {expected_parent}")
            }
            GoatRule::BadNumber { parent } => {
                write!(f, "number is not the parent's ({parent}) plus one")
            }
            GoatRule::TimestampBeforeParent {
                parent_timestamp,
                timestamp,
            } => write!(
                f,
                "timestamp {timestamp} is before the parent's {parent_timestamp}"
            ),
            GoatRule::ReorgBelowFinality {
                finalized,
                fork_point,
            } => write!(
                f,
                "REORG BELOW FINALITY REFUSED: the source's chain forks from ours at height {fork_point}, below the finalized height {finalized}; a finalized block never changes (the source is faulty or on another network)"
            ),
            GoatRule::FinalizedNotOnBestChain { ours } => match ours {
                Some(h) => write!(f, "declared finalized, but the chain gmrelay follows has {h} at that height"),
                None => f.write_str("declared finalized, but gmrelay has no header at that height"),
            },
            GoatRule::CheckpointMismatch { trusted } => {
                write!(f, "served for the checkpoint, but the trusted checkpoint hash is {trusted}: refusing to anchor on it")
            }
        }
    }
}

/// A rejected header: which one, where, and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("GOAT header {hash} at height {number} rejected: {rule}")]
pub struct GoatChainError {
    /// The header's number.
    pub number: u64,
    /// Its hash (computed by gmrelay).
    pub hash: B256,
    /// The broken rule.
    pub rule: GoatRule,
}

/// What an accepted batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoatEvent {
    /// Nothing new.
    Unchanged,
    /// The best tip moved; a plain extension has an empty `reverted`.
    TipChanged {
        /// Number and hash of the last common block.
        fork_point: (u64, B256),
        /// Headers that left the best chain, highest first.
        reverted: Vec<ValidatedGoatHeader>,
        /// Headers that joined it, lowest first.
        connected: Vec<ValidatedGoatHeader>,
    },
}

impl GoatEvent {
    /// Whether this event reverted headers.
    pub fn is_reorg(&self) -> bool {
        matches!(self, GoatEvent::TipChanged { reverted, .. } if !reverted.is_empty())
    }
}

/// Everything a store writes for one accepted batch, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoatChangeSet {
    /// New headers to index by hash.
    pub headers: Vec<ValidatedGoatHeader>,
    /// Drop best-chain entries above this number before writing `best`.
    pub truncate_best_above: Option<u64>,
    /// New best-chain entries (number, hash), lowest first.
    pub best: Vec<(u64, B256)>,
    /// The new tip, when it moved.
    pub tip: Option<(u64, B256)>,
    /// The new finalized block, when it moved.
    pub finalized: Option<(u64, B256)>,
}

impl GoatChangeSet {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
            && self.best.is_empty()
            && self.truncate_best_above.is_none()
            && self.tip.is_none()
            && self.finalized.is_none()
    }

    fn merge(&mut self, other: GoatChangeSet) {
        self.headers.extend(other.headers);
        if other.truncate_best_above.is_some() {
            self.truncate_best_above = other.truncate_best_above;
        }
        self.best.extend(other.best);
        if other.tip.is_some() {
            self.tip = other.tip;
        }
        if other.finalized.is_some() {
            self.finalized = other.finalized;
        }
    }
}

/// The outcome of [`GoatChain::connect`] and [`GoatChain::rewind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoatConnected {
    /// What happened.
    pub event: GoatEvent,
    /// What to persist.
    pub changes: GoatChangeSet,
}

/// The followed chain: the finalized header and every best-chain header
/// above it, in memory (older headers live in the store).
#[derive(Debug, Clone)]
pub struct GoatChain {
    checkpoint: (u64, B256),
    finality: Finality,
    finalized: (u64, B256),
    /// best[0] is the finalized header; the back is the tip.
    best: VecDeque<ValidatedGoatHeader>,
}

impl GoatChain {
    /// A new chain whose only header is the trusted checkpoint (final by definition).
    pub fn from_checkpoint(checkpoint: ValidatedGoatHeader, finality: Finality) -> Self {
        let id = (checkpoint.number(), checkpoint.hash());
        GoatChain {
            checkpoint: id,
            finality,
            finalized: id,
            best: VecDeque::from([checkpoint]),
        }
    }

    /// What a new store records for the checkpoint.
    pub fn anchor_changes(&self) -> GoatChangeSet {
        let cp = self.best[0].clone();
        GoatChangeSet {
            best: vec![(cp.number(), cp.hash())],
            tip: Some((cp.number(), cp.hash())),
            finalized: Some((cp.number(), cp.hash())),
            headers: vec![cp],
            truncate_best_above: None,
        }
    }

    /// Rebuilds the chain from stored best-chain headers `finalized..=tip`
    /// (lowest first). Returns `None` when they do not link.
    pub fn restore(
        checkpoint: (u64, B256),
        finality: Finality,
        headers: Vec<ValidatedGoatHeader>,
    ) -> Option<Self> {
        let first = headers.first()?;
        let finalized = (first.number(), first.hash());
        for w in headers.windows(2) {
            if w[1].header().parent_hash != w[0].hash() || w[1].number() != w[0].number() + 1 {
                return None;
            }
        }
        Some(GoatChain {
            checkpoint,
            finality,
            finalized,
            best: headers.into(),
        })
    }

    /// The checkpoint (number, hash).
    pub fn checkpoint(&self) -> (u64, B256) {
        self.checkpoint
    }
    /// The finality policy.
    pub fn finality(&self) -> Finality {
        self.finality
    }
    /// The finalized block (number, hash).
    pub fn finalized(&self) -> (u64, B256) {
        self.finalized
    }
    /// The best tip.
    pub fn tip(&self) -> &ValidatedGoatHeader {
        self.best
            .back()
            .expect("the chain always holds its finalized header")
    }
    /// Unfinalized headers held.
    pub fn unfinalized_len(&self) -> usize {
        self.best.len() - 1
    }
    /// The best-chain header at `number`, if held in memory (finalized..=tip).
    pub fn best_at(&self, number: u64) -> Option<&ValidatedGoatHeader> {
        let base = self.best[0].number();
        let i = usize::try_from(number.checked_sub(base)?).ok()?;
        self.best.get(i)
    }

    /// Connects headers the source calls canonical, lowest first. The first
    /// one's parent must be on the best chain at or above the finalized
    /// height; headers above that parent are reverted (a reorg).
    pub fn connect(&mut self, headers: &[GoatHeader]) -> Result<GoatConnected, GoatChainError> {
        let unchanged = GoatConnected {
            event: GoatEvent::Unchanged,
            changes: GoatChangeSet::default(),
        };
        // Hash everything once; check the batch's own links.
        let mut batch: Vec<ValidatedGoatHeader> = Vec::with_capacity(headers.len());
        for h in headers {
            let v = ValidatedGoatHeader {
                header: h.clone(),
                hash: h.hash_slow(),
            };
            if let Some(prev) = batch.last() {
                check_link(prev, &v)?;
            }
            batch.push(v);
        }
        // Headers below the finalized one are not held in memory: they are
        // accepted as known only when the batch reaches the finalized header
        // through them (the batch is hash-linked), and refused otherwise.
        let base = &self.best[0];
        let below = batch
            .iter()
            .take_while(|v| v.number() < base.number())
            .count();
        if below > 0 {
            match batch.get(below) {
                Some(v) if v.number() == base.number() && v.hash() == base.hash() => {}
                Some(v) if v.number() == base.number() => {
                    return Err(GoatChainError {
                        number: v.number(),
                        hash: v.hash(),
                        rule: GoatRule::ReorgBelowFinality {
                            finalized: self.finalized.0,
                            fork_point: batch[0].number().saturating_sub(1),
                        },
                    })
                }
                _ => {
                    let v = &batch[0];
                    return Err(GoatChainError {
                        number: v.number(),
                        hash: v.hash(),
                        rule: GoatRule::UnknownParent(v.header().parent_hash),
                    });
                }
            }
        }
        // Skip headers already on the best chain.
        let skip = below
            + batch[below..]
                .iter()
                .take_while(|v| {
                    self.best_at(v.number())
                        .is_some_and(|b| b.hash() == v.hash())
                })
                .count();
        let new = &batch[skip..];
        let Some(first) = new.first() else {
            return Ok(unchanged);
        };
        let parent_number = first.number().checked_sub(1).ok_or(GoatChainError {
            number: first.number(),
            hash: first.hash(),
            rule: GoatRule::UnknownParent(first.header().parent_hash),
        })?;
        let parent = match self.best_at(parent_number) {
            Some(p) if p.hash() == first.header().parent_hash => p.clone(),
            _ => {
                let rule = if parent_number < self.finalized.0 {
                    GoatRule::ReorgBelowFinality {
                        finalized: self.finalized.0,
                        fork_point: parent_number,
                    }
                } else {
                    GoatRule::UnknownParent(first.header().parent_hash)
                };
                return Err(GoatChainError {
                    number: first.number(),
                    hash: first.hash(),
                    rule,
                });
            }
        };
        check_link(&parent, first)?;
        let reverted = self.truncate_above(parent.number());
        for v in new {
            self.best.push_back(v.clone());
        }
        let mut changes = GoatChangeSet {
            headers: new.to_vec(),
            truncate_best_above: (!reverted.is_empty()).then_some(parent.number()),
            best: new.iter().map(|v| (v.number(), v.hash())).collect(),
            tip: Some((self.tip().number(), self.tip().hash())),
            finalized: None,
        };
        if let Finality::Depth(d) = self.finality {
            let target = self.tip().number().saturating_sub(d);
            if target > self.finalized.0 {
                let hash = self
                    .best_at(target)
                    .expect("between finalized and tip")
                    .hash();
                changes.merge(self.finalize(target, hash)?);
            }
        }
        Ok(GoatConnected {
            event: GoatEvent::TipChanged {
                fork_point: (parent.number(), parent.hash()),
                reverted,
                connected: new.to_vec(),
            },
            changes,
        })
    }

    /// Drops best-chain headers above `number` (the source's canonical chain
    /// is now shorter than ours). Refused below the finalized height.
    pub fn rewind(&mut self, number: u64) -> Result<GoatConnected, GoatChainError> {
        if number >= self.tip().number() {
            return Ok(GoatConnected {
                event: GoatEvent::Unchanged,
                changes: GoatChangeSet::default(),
            });
        }
        if number < self.finalized.0 {
            let above = self
                .best_at(self.finalized.0 + 1)
                .unwrap_or_else(|| self.tip());
            return Err(GoatChainError {
                number: above.number(),
                hash: above.hash(),
                rule: GoatRule::ReorgBelowFinality {
                    finalized: self.finalized.0,
                    fork_point: number,
                },
            });
        }
        let reverted = self.truncate_above(number);
        let tip = self.tip().clone();
        Ok(GoatConnected {
            event: GoatEvent::TipChanged {
                fork_point: (tip.number(), tip.hash()),
                reverted,
                connected: vec![],
            },
            changes: GoatChangeSet {
                truncate_best_above: Some(number),
                tip: Some((tip.number(), tip.hash())),
                ..GoatChangeSet::default()
            },
        })
    }

    fn truncate_above(&mut self, number: u64) -> Vec<ValidatedGoatHeader> {
        let mut reverted = Vec::new();
        while self.tip().number() > number {
            reverted.push(self.best.pop_back().expect("above the finalized header"));
        }
        reverted
    }

    /// Marks `number`/`hash` final (it must be on the best chain held in
    /// memory). A height at or below the current finalized one changes
    /// nothing, unless its hash contradicts the chain (an error).
    pub fn finalize(&mut self, number: u64, hash: B256) -> Result<GoatChangeSet, GoatChainError> {
        let ours = self.best_at(number).map(|v| v.hash());
        if number < self.finalized.0 {
            return Ok(GoatChangeSet::default());
        }
        if ours != Some(hash) {
            return Err(GoatChainError {
                number,
                hash,
                rule: GoatRule::FinalizedNotOnBestChain { ours },
            });
        }
        if number == self.finalized.0 {
            return Ok(GoatChangeSet::default());
        }
        while self.best[0].number() < number {
            self.best.pop_front();
        }
        self.finalized = (number, hash);
        Ok(GoatChangeSet {
            finalized: Some((number, hash)),
            ..GoatChangeSet::default()
        })
    }
}

fn check_link(
    parent: &ValidatedGoatHeader,
    child: &ValidatedGoatHeader,
) -> Result<(), GoatChainError> {
    let err = |rule| GoatChainError {
        number: child.number(),
        hash: child.hash(),
        rule,
    };
    if child.header().parent_hash != parent.hash() {
        return Err(err(GoatRule::BrokenLink {
            expected_parent: parent.hash(),
        }));
    }
    if child.number() != parent.number().wrapping_add(1) {
        return Err(err(GoatRule::BadNumber {
            parent: parent.number(),
        }));
    }
    if child.header().timestamp < parent.header().timestamp {
        return Err(err(GoatRule::TimestampBeforeParent {
            parent_timestamp: parent.header().timestamp,
            timestamp: child.header().timestamp,
        }));
    }
    Ok(())
}

/// Builds a chain of `count` synthetic GOAT-shaped headers on `parent`,
/// with `salt` in extraData (different salts give different branches).
/// For tests and benchmarks.
pub fn synthetic_headers(parent: &GoatHeader, count: u64, salt: u8) -> Vec<GoatHeader> {
    let mut out = Vec::with_capacity(count as usize);
    let mut prev = parent.clone();
    for _ in 0..count {
        let mut h = prev.clone();
        h.parent_hash = prev.hash_slow();
        h.number = prev.number + 1;
        h.timestamp = prev.timestamp + 3;
        let mut extra = vec![salt];
        extra.extend_from_slice(keccak256(h.number.to_be_bytes()).as_slice());
        h.extra_data = extra.into();
        out.push(h.clone());
        prev = h;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis() -> GoatHeader {
        GoatHeader {
            number: 100,
            timestamp: 1_000,
            base_fee_per_gas: Some(7),
            withdrawals_root: Some(B256::ZERO),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(B256::ZERO),
            ..GoatHeader::default()
        }
    }

    fn chain(finality: Finality) -> (GoatChain, GoatHeader) {
        let g = genesis();
        let cp = ValidatedGoatHeader::checkpoint(g.clone(), g.hash_slow()).unwrap();
        (GoatChain::from_checkpoint(cp, finality), g)
    }

    #[test]
    fn extends_and_finalizes_at_depth() {
        let (mut c, g) = chain(Finality::Depth(2));
        let hs = synthetic_headers(&g, 5, 0);
        let out = c.connect(&hs).unwrap();
        assert!(!out.event.is_reorg());
        assert_eq!(c.tip().number(), 105);
        assert_eq!(c.finalized().0, 103);
        assert_eq!(out.changes.finalized, Some((103, hs[2].hash_slow())));
        assert_eq!(out.changes.best.len(), 5);
        // Reconnecting the same headers changes nothing.
        assert_eq!(c.connect(&hs).unwrap().event, GoatEvent::Unchanged);
    }

    #[test]
    fn follows_reorg_above_finality() {
        let (mut c, g) = chain(Finality::Depth(10));
        let a = synthetic_headers(&g, 5, 0);
        c.connect(&a).unwrap();
        let b = synthetic_headers(&a[1], 4, 1); // forks at 102
        let out = c.connect(&b).unwrap();
        match out.event {
            GoatEvent::TipChanged {
                fork_point,
                reverted,
                connected,
            } => {
                assert_eq!(fork_point, (102, a[1].hash_slow()));
                assert_eq!(
                    reverted.iter().map(|v| v.number()).collect::<Vec<_>>(),
                    vec![105, 104, 103]
                );
                assert_eq!(connected.len(), 4);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(out.changes.truncate_best_above, Some(102));
        assert_eq!(c.tip().number(), 106);
        // A shorter canonical chain: rewind.
        let out = c.rewind(104).unwrap();
        assert!(out.event.is_reorg());
        assert_eq!(c.tip().hash(), b[1].hash_slow());
    }

    #[test]
    fn refuses_reorg_below_finality() {
        let (mut c, g) = chain(Finality::Depth(2));
        let a = synthetic_headers(&g, 6, 0); // finalized 104
        c.connect(&a).unwrap();
        let b = synthetic_headers(&a[1], 5, 1); // forks at 102 < 104
        let err = c.connect(&b).unwrap_err();
        assert!(
            matches!(
                err.rule,
                GoatRule::ReorgBelowFinality {
                    finalized: 104,
                    fork_point: 102
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("REORG BELOW FINALITY"));
        assert!(matches!(
            c.rewind(103).unwrap_err().rule,
            GoatRule::ReorgBelowFinality { .. }
        ));
        // The chain is untouched.
        assert_eq!(c.tip().hash(), a[5].hash_slow());
    }

    #[test]
    fn checks_links_numbers_and_timestamps() {
        let (mut c, g) = chain(Finality::Tag);
        let mut hs = synthetic_headers(&g, 3, 0);
        hs[2].timestamp = hs[1].timestamp - 1;
        // Re-link after editing.
        let err = c.connect(&hs).unwrap_err();
        assert!(
            matches!(err.rule, GoatRule::TimestampBeforeParent { .. }),
            "{err}"
        );
        let mut hs = synthetic_headers(&g, 3, 0);
        hs[1].gas_used = 1; // changes its hash: hs[2] no longer links
        let err = c.connect(&hs).unwrap_err();
        assert!(matches!(err.rule, GoatRule::BrokenLink { .. }), "{err}");
        let orphan = synthetic_headers(&synthetic_headers(&g, 2, 9)[1], 1, 0);
        let err = c.connect(&orphan).unwrap_err();
        assert!(matches!(err.rule, GoatRule::UnknownParent(_)), "{err}");
    }

    #[test]
    fn tag_finality_needs_the_block_on_our_chain() {
        let (mut c, g) = chain(Finality::Tag);
        let a = synthetic_headers(&g, 4, 0);
        c.connect(&a).unwrap();
        assert_eq!(c.finalized().0, 100);
        let ch = c.finalize(103, a[2].hash_slow()).unwrap();
        assert_eq!(ch.finalized, Some((103, a[2].hash_slow())));
        assert_eq!(c.unfinalized_len(), 1);
        let err = c.finalize(104, B256::repeat_byte(1)).unwrap_err();
        assert!(matches!(err.rule, GoatRule::FinalizedNotOnBestChain { .. }));
        // Older finalized tags change nothing.
        assert!(c.finalize(101, B256::ZERO).unwrap().is_empty());
    }

    #[test]
    fn restore_checks_links() {
        let (mut c, g) = chain(Finality::Depth(100));
        let a = synthetic_headers(&g, 4, 0);
        c.connect(&a).unwrap();
        let held: Vec<_> = (100..=104).map(|n| c.best_at(n).unwrap().clone()).collect();
        let r = GoatChain::restore(c.checkpoint(), Finality::Depth(100), held.clone()).unwrap();
        assert_eq!(r.tip().hash(), c.tip().hash());
        let mut gap = held;
        gap.remove(2);
        assert!(GoatChain::restore(c.checkpoint(), Finality::Depth(100), gap).is_none());
    }
}
