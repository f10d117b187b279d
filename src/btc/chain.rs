//! The Bitcoin header chain: a pure verification core.
//!
//! [`HeaderChain`] validates headers against the consensus rules of a
//! [`Rules`] set, keeps the chainwork of every branch it has seen, follows the
//! heaviest one and reports reorgs as values ([`ChainEvent::TipChanged`]). It
//! does no I/O and never reads the clock: the caller passes `now` in, and every
//! accepted batch comes back as a [`ChangeSet`] for a store to persist.
//!
//! Only a window of the best chain is kept in memory (the last
//! [`HeaderChain::DEFAULT_WINDOW`] headers): enough to check a retarget, the
//! median time past and the testnet minimum-difficulty walk-back for any
//! reorg up to [`HeaderChain::max_reorg_depth`] blocks deep. Older headers
//! live in the store.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::pow::{CompactTarget, Target, Work};
use bitcoin::BlockHash;
use thiserror::Error;

use super::network::{
    Rules, MAX_FUTURE_BLOCK_TIME, MAX_TIMEWARP, MEDIAN_TIME_SPAN, RETARGET_INTERVAL, TARGET_SPACING,
};

/// A header that passed every consensus check gmrelay makes, with its
/// height and the chainwork up to and including it. Only the chain creates
/// these, so a stored or relayed `ValidatedHeader` has always been checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ValidatedHeader {
    header: Header,
    hash: BlockHash,
    height: u32,
    chainwork: Work,
}

impl ValidatedHeader {
    /// The 80-byte header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Its hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }
    /// Its height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Total work of the chain up to and including this header, counted from
    /// the checkpoint's declared chainwork.
    pub fn chainwork(&self) -> Work {
        self.chainwork
    }

    /// Rebuilds a header read back from gmrelay's own store. The store only
    /// ever holds headers that were validated before they were written, and
    /// the hash is recomputed here so a corrupted record cannot pass as
    /// another block.
    pub fn from_store(
        header: Header,
        height: u32,
        chainwork: Work,
        expected_hash: BlockHash,
    ) -> Result<Self, BlockHash> {
        let hash = header.block_hash();
        if hash != expected_hash {
            return Err(hash);
        }
        Ok(ValidatedHeader {
            header,
            hash,
            height,
            chainwork,
        })
    }
}

impl fmt::Debug for ValidatedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatedHeader")
            .field("height", &self.height)
            .field("hash", &self.hash)
            .finish()
    }
}

/// The consensus rule a header broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `prev_blockhash` names no header gmrelay knows.
    UnknownParent(BlockHash),
    /// `bits` do not decode to a positive target within the pow limit.
    BadTarget {
        /// The offending compact value.
        bits: u32,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The hash is above the target.
    InsufficientWork,
    /// `bits` differ from what the difficulty rules require.
    BadBits {
        /// What the rules require.
        expected: u32,
        /// What the header has.
        got: u32,
    },
    /// Timestamp not above the median of the previous eleven.
    TimeTooOld {
        /// The median time past.
        median_time_past: u32,
    },
    /// Timestamp more than two hours after `now`.
    TimeTooNew {
        /// The latest acceptable timestamp.
        max: u32,
    },
    /// BIP94: the first block of a period dated more than 600 s before its parent.
    TimewarpAttack {
        /// The parent's timestamp.
        parent_time: u32,
    },
    /// Version below the BIP34/66/65 minimum at this height.
    BadVersion {
        /// The minimum version at this height.
        min: i32,
    },
    /// A fork that leaves the chain at or below the trusted checkpoint.
    ForkBelowCheckpoint {
        /// The checkpoint height.
        checkpoint: u32,
    },
    /// A header the rules need is not held: a fork deeper than the window
    /// of headers kept in memory, or a file without the anchors it needs.
    MissingAncestor {
        /// Height of the missing header.
        height: u32,
    },
    /// Batch headers that do not link to each other.
    BrokenLink {
        /// The hash the header should have named as its parent.
        expected_parent: BlockHash,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::UnknownParent(p) => write!(f, "unknown parent {p}"),
            Rule::BadTarget { bits, reason } => write!(f, "bad target: bits {bits:#010x} {reason}"),
            Rule::InsufficientWork => f.write_str("proof of work: hash above target"),
            Rule::BadBits { expected, got } => {
                write!(f, "bad difficulty bits: expected {expected:#010x}, got {got:#010x}")
            }
            Rule::TimeTooOld { median_time_past } => write!(
                f,
                "timestamp not after the median time past {median_time_past}"
            ),
            Rule::TimeTooNew { max } => {
                write!(f, "timestamp more than 2 h in the future (max {max})")
            }
            Rule::TimewarpAttack { parent_time } => write!(
                f,
                "BIP94 timewarp: first block of a period more than 600 s before its parent ({parent_time})"
            ),
            Rule::BadVersion { min } => write!(f, "version below {min} (BIP34/66/65)"),
            Rule::ForkBelowCheckpoint { checkpoint } => {
                write!(f, "fork at or below the trusted checkpoint height {checkpoint}")
            }
            Rule::MissingAncestor { height } => write!(
                f,
                "needs the header at height {height}, which is not held (fork deeper than the in-memory window, or a missing anchor)"
            ),
            Rule::BrokenLink { expected_parent } => {
                write!(f, "does not link to the previous header {expected_parent}")
            }
        }
    }
}

/// A rejected header: which one, where, and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("header {hash} at height {height} rejected: {rule}")]
pub struct ChainError {
    /// Height the header would have had (0 when its parent is unknown).
    pub height: u32,
    /// The header's hash.
    pub hash: BlockHash,
    /// The broken rule.
    pub rule: Rule,
}

/// What an accepted batch did to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// Every header was already known.
    Unchanged,
    /// The best tip moved. A plain extension has an empty `reverted`.
    TipChanged {
        /// Height and hash of the last common header of old and new best chains.
        fork_point: (u32, BlockHash),
        /// Headers that left the best chain, highest first.
        reverted: Vec<ValidatedHeader>,
        /// Headers that joined the best chain, lowest first.
        connected: Vec<ValidatedHeader>,
    },
    /// The batch built a side branch lighter than (or as heavy as) the best chain.
    SideBranch {
        /// The side branch's tip.
        tip: ValidatedHeader,
    },
}

/// Everything a store must write to persist one accepted batch, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// New headers (best chain and side branches) to index by hash.
    pub headers: Vec<ValidatedHeader>,
    /// Drop best-chain entries above this height before writing `best`.
    pub truncate_best_above: Option<u32>,
    /// New best-chain entries (height, hash), lowest first.
    pub best: Vec<(u32, BlockHash)>,
    /// The new best tip, when it moved.
    pub tip: Option<(u32, BlockHash)>,
}

impl ChangeSet {
    /// Appends a later change-set, so that writing the result once is the
    /// same as writing `self` and then `later`.
    pub fn merge(&mut self, later: ChangeSet) {
        self.headers.extend(later.headers);
        if let Some(h) = later.truncate_best_above {
            self.best.retain(|(height, _)| *height <= h);
            self.truncate_best_above = Some(self.truncate_best_above.map_or(h, |t| t.min(h)));
        }
        self.best.extend(later.best);
        if later.tip.is_some() {
            self.tip = later.tip;
        }
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.best.is_empty() && self.truncate_best_above.is_none()
    }
}

/// The outcome of [`HeaderChain::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// What happened, for the caller and its logs.
    pub event: ChainEvent,
    /// What to persist.
    pub changes: ChangeSet,
}

/// Block hashes are uniformly distributed: their first eight bytes are a
/// perfectly good hash, and far cheaper than SipHash on 32 bytes.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut buf = [0u8; 8];
        let n = bytes.len().min(8);
        buf[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(buf);
    }
}

type HashIndex<V> = HashMap<BlockHash, V, BuildHasherDefault<PrefixHasher>>;

/// A trusted starting point: a header the operator vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The hash the operator vouches for (the configured checkpoint's).
    /// `header` must hash to it: whoever served the header is not trusted.
    pub trusted_hash: BlockHash,
    /// The checkpoint header.
    pub header: Header,
    /// Its height.
    pub height: u32,
    /// Chainwork up to and including it (an offset: only differences matter).
    pub chainwork: Work,
    /// Up to 10 headers just below it, lowest first, for the median-time-past
    /// rule of the next headers. They must link to each other and to `header`.
    pub ancestors: Vec<Header>,
}

/// Caches the work of the last `bits` seen: work changes once per period,
/// and computing it is a 256-bit division.
#[derive(Clone, Copy)]
struct WorkCache {
    bits: u32,
    work: Work,
}

impl WorkCache {
    fn work(&mut self, bits: CompactTarget, target: Target) -> Work {
        if self.bits != bits.to_consensus() {
            self.bits = bits.to_consensus();
            self.work = target.to_work();
        }
        self.work
    }
}

/// Decodes compact `bits` the way Bitcoin Core's `DeriveTarget` does:
/// negative, zero, overflowing or above-limit targets are errors.
pub fn decode_target(bits: CompactTarget, pow_limit: Target) -> Result<Target, Rule> {
    let raw = bits.to_consensus();
    let size = raw >> 24;
    let word = raw & 0x007f_ffff;
    let bad = |reason| Rule::BadTarget { bits: raw, reason };
    if word != 0 && raw & 0x0080_0000 != 0 {
        return Err(bad("is negative"));
    }
    if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
        return Err(bad("overflows 256 bits"));
    }
    let target = Target::from_compact(bits);
    if target == Target::ZERO {
        return Err(bad("is zero"));
    }
    if target > pow_limit {
        return Err(bad("is above the network's pow limit"));
    }
    Ok(target)
}

/// Context-free checks: the target decodes and the hash meets it.
/// Returns the hash and the target.
pub fn check_proof_of_work(header: &Header, rules: &Rules) -> Result<(BlockHash, Target), Rule> {
    let target = decode_target(header.bits, rules.pow_limit())?;
    let hash = header.block_hash();
    if !target.is_met_by(hash) {
        return Err(Rule::InsufficientWork);
    }
    Ok((hash, target))
}

/// The checks that need the previous headers, given as an [`Ancestry`].
/// Returns the header's hash and target.
///
/// `floor` is the lowest height the ancestry can ever hold (the genesis
/// block, or the lowest header stored below a checkpoint): fewer than eleven
/// timestamps are used for the median time past only below it. A header the
/// rules need that is missing at or above `floor` is an error, never a
/// skipped check.
pub fn check_contextual(
    rules: &Rules,
    header: &Header,
    height: u32,
    ancestry: &impl Ancestry,
    floor: u32,
    now: u32,
) -> Result<(BlockHash, Target), Rule> {
    let (hash, target) = check_proof_of_work(header, rules)?;
    let missing = |height| Rule::MissingAncestor { height };
    let parent = ancestry.at(height - 1).ok_or(missing(height - 1))?;

    let expected = expected_bits(rules, header, height, parent, ancestry).map_err(missing)?;
    if header.bits != expected {
        return Err(Rule::BadBits {
            expected: expected.to_consensus(),
            got: header.bits.to_consensus(),
        });
    }

    let (mtp, used) = median_time_past(height, ancestry);
    let wanted = (height.saturating_sub(floor) as usize).min(MEDIAN_TIME_SPAN);
    if used < wanted {
        return Err(missing(height - used as u32 - 1));
    }
    if header.time <= mtp {
        return Err(Rule::TimeTooOld {
            median_time_past: mtp,
        });
    }

    if rules.enforce_bip94
        && height.is_multiple_of(RETARGET_INTERVAL)
        && i64::from(header.time) < i64::from(parent.time) - MAX_TIMEWARP
    {
        return Err(Rule::TimewarpAttack {
            parent_time: parent.time,
        });
    }

    let max_time = i64::from(now) + MAX_FUTURE_BLOCK_TIME;
    if i64::from(header.time) > max_time {
        return Err(Rule::TimeTooNew {
            max: max_time.min(i64::from(u32::MAX)) as u32,
        });
    }

    let min = rules.min_version(height);
    if header.version.to_consensus() < min {
        return Err(Rule::BadVersion { min });
    }
    Ok((hash, target))
}

/// Read access to the headers below the one being checked.
pub trait Ancestry {
    /// The header at `height` on the branch being extended, if known.
    fn at(&self, height: u32) -> Option<&Header>;
}

/// Bitcoin Core's `GetNextWorkRequired`: the `bits` a header at `height`
/// must carry. `Err(h)` names the height of a header the rule needs but the
/// ancestry does not hold.
pub fn expected_bits(
    rules: &Rules,
    header: &Header,
    height: u32,
    parent: &Header,
    ancestry: &impl Ancestry,
) -> Result<CompactTarget, u32> {
    // Regtest: every block carries the genesis bits (by induction over
    // Core's rules: boundaries copy the parent, and the minimum-difficulty
    // walk-back can only find the pow limit).
    if rules.no_retargeting {
        return Ok(parent.bits);
    }
    if !height.is_multiple_of(RETARGET_INTERVAL) {
        if rules.allow_min_difficulty {
            let limit_bits = rules.pow_limit_bits();
            if i64::from(header.time) > i64::from(parent.time) + TARGET_SPACING * 2 {
                return Ok(limit_bits);
            }
            // The bits of the last block that was not a 20-minute exception.
            let mut h = height - 1;
            let mut bits = parent.bits;
            while !h.is_multiple_of(RETARGET_INTERVAL) && bits == limit_bits {
                h -= 1;
                bits = ancestry.at(h).ok_or(h)?.bits;
            }
            return Ok(bits);
        }
        return Ok(parent.bits);
    }
    if rules.no_retargeting {
        return Ok(parent.bits);
    }
    let first_height = height - RETARGET_INTERVAL;
    let first = ancestry.at(first_height).ok_or(first_height)?;
    Ok(rules.retarget(first.time, first.bits, parent.time, parent.bits))
}

/// Median of the timestamps of the (up to) eleven headers below `height`,
/// and how many timestamps were available.
pub fn median_time_past(height: u32, ancestry: &impl Ancestry) -> (u32, usize) {
    let mut times = [0u32; MEDIAN_TIME_SPAN];
    let mut n = 0;
    let mut h = height;
    while n < MEDIAN_TIME_SPAN && h > 0 {
        h -= 1;
        match ancestry.at(h) {
            Some(header) => {
                times[n] = header.time;
                n += 1;
            }
            None => break,
        }
    }
    let times = &mut times[..n];
    times.sort_unstable();
    (times.get(n / 2).copied().unwrap_or(0), n)
}

#[derive(Clone, Copy)]
struct Entry {
    header: Header,
    hash: BlockHash,
    chainwork: Work,
}

/// A branch under validation: `segment[i]` is at height `start + i`, and
/// everything below `start` comes from the best-chain window.
struct BranchView<'a> {
    window: &'a VecDeque<Entry>,
    window_base: u32,
    start: u32,
    segment: &'a [Entry],
}

impl Ancestry for BranchView<'_> {
    fn at(&self, height: u32) -> Option<&Header> {
        if height >= self.start {
            self.segment
                .get((height - self.start) as usize)
                .map(|e| &e.header)
        } else {
            let i = height.checked_sub(self.window_base)? as usize;
            self.window.get(i).map(|e| &e.header)
        }
    }
}

#[derive(Clone, Copy)]
struct SideEntry {
    entry: Entry,
    height: u32,
}

/// The header chain: the best chain's recent window, side branches, and the
/// rules to extend them.
pub struct HeaderChain {
    rules: &'static Rules,
    checkpoint_height: u32,
    /// Lowest height ever held: the lowest header stored below the checkpoint.
    floor: u32,
    /// Best chain, `window[i]` at height `window_base + i`.
    window: VecDeque<Entry>,
    window_base: u32,
    best_index: HashIndex<u32>,
    side: HashIndex<SideEntry>,
    capacity: usize,
    work_cache: WorkCache,
}

impl fmt::Debug for HeaderChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tip = self.tip();
        f.debug_struct("HeaderChain")
            .field("network", &self.rules.network)
            .field("tip_height", &tip.height)
            .field("tip_hash", &tip.hash)
            .field("window", &self.window.len())
            .field("side", &self.side.len())
            .finish()
    }
}

/// Why a chain could not be started from an anchor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnchorError {
    /// The header offered as the checkpoint is another block.
    #[error("the header given for the checkpoint at height {height} hashes to {served}, not to the trusted checkpoint hash {trusted}: refusing to anchor on it")]
    NotTheCheckpoint {
        /// Checkpoint height.
        height: u32,
        /// The configured checkpoint hash.
        trusted: BlockHash,
        /// What the offered header hashes to.
        served: BlockHash,
    },
    /// The checkpoint header's proof of work is invalid.
    #[error("checkpoint header {hash} at height {height}: {rule}")]
    BadCheckpoint {
        /// Checkpoint height.
        height: u32,
        /// Checkpoint hash.
        hash: BlockHash,
        /// What is wrong.
        rule: Rule,
    },
    /// The headers below the checkpoint do not link to it.
    #[error("header below the checkpoint at height {height} does not link to the header above it")]
    BrokenAncestry {
        /// Height of the header that does not link.
        height: u32,
    },
    /// Not exactly `min(10, height)` headers below the checkpoint.
    #[error("a checkpoint at height {height} needs {expected} headers below it for the median-time-past rule, got {got}")]
    WrongAncestorCount {
        /// How many are needed.
        expected: usize,
        /// How many were given.
        got: usize,
        /// Checkpoint height.
        height: u32,
    },
}

impl HeaderChain {
    /// Headers of the best chain kept in memory: two retarget periods and the
    /// median-time-past span, so a reorg up to one period deep can be checked.
    pub const DEFAULT_WINDOW: usize = 2 * RETARGET_INTERVAL as usize + MEDIAN_TIME_SPAN;

    /// How many headers below a checkpoint at `height` an [`Anchor`] carries.
    pub fn anchor_ancestors(height: u32) -> u32 {
        height.min(MEDIAN_TIME_SPAN as u32 - 1)
    }

    /// The change-set that stores the anchor itself (the checkpoint and the
    /// headers below it), written once when a store is created.
    pub fn anchor_changes(&self) -> ChangeSet {
        let headers: Vec<ValidatedHeader> = (self.window_base..)
            .zip(self.window.iter())
            .map(|(height, e)| ValidatedHeader {
                header: e.header,
                hash: e.hash,
                height,
                chainwork: e.chainwork,
            })
            .collect();
        let best = headers.iter().map(|v| (v.height, v.hash)).collect();
        let tip = headers.last().map(|v| (v.height, v.hash));
        ChangeSet {
            headers,
            truncate_best_above: None,
            best,
            tip,
        }
    }

    /// Starts a chain at a trusted checkpoint.
    pub fn from_anchor(rules: &'static Rules, anchor: Anchor) -> Result<Self, AnchorError> {
        Self::from_anchor_with_window(rules, anchor, Self::DEFAULT_WINDOW)
    }

    /// Like [`HeaderChain::from_anchor`] with a chosen window size.
    pub fn from_anchor_with_window(
        rules: &'static Rules,
        anchor: Anchor,
        capacity: usize,
    ) -> Result<Self, AnchorError> {
        let Anchor {
            trusted_hash,
            header,
            height,
            chainwork,
            ancestors,
        } = anchor;
        // The one check every anchoring path (sync, import, benches) goes
        // through: the trust root is the configured hash, never the bytes.
        let served = header.block_hash();
        if served != trusted_hash {
            return Err(AnchorError::NotTheCheckpoint {
                height,
                trusted: trusted_hash,
                served,
            });
        }
        let (hash, _) =
            check_proof_of_work(&header, rules).map_err(|rule| AnchorError::BadCheckpoint {
                height,
                hash: header.block_hash(),
                rule,
            })?;
        let expected = Self::anchor_ancestors(height) as usize;
        if ancestors.len() != expected {
            return Err(AnchorError::WrongAncestorCount {
                expected,
                got: ancestors.len(),
                height,
            });
        }
        // Link the ancestors backwards from the trusted hash.
        let mut expected = header.prev_blockhash;
        let mut entries = Vec::with_capacity(ancestors.len() + 1);
        for (i, a) in ancestors.iter().enumerate().rev() {
            let h = a.block_hash();
            let a_height = height - (ancestors.len() - i) as u32;
            if h != expected {
                return Err(AnchorError::BrokenAncestry { height: a_height });
            }
            expected = a.prev_blockhash;
            entries.push(Entry {
                header: *a,
                hash: h,
                // Never a tip: the work below the checkpoint is not counted.
                chainwork: Work::from_be_bytes([0; 32]),
            });
        }
        entries.reverse();
        entries.push(Entry {
            header,
            hash,
            chainwork,
        });
        let window_base = height - ancestors.len() as u32;
        let mut chain = HeaderChain {
            rules,
            checkpoint_height: height,
            floor: height - ancestors.len() as u32,
            window: VecDeque::with_capacity(capacity.max(entries.len()) + 1),
            window_base,
            best_index: HashIndex::default(),
            side: HashIndex::default(),
            capacity: capacity.max(MEDIAN_TIME_SPAN + 1),
            work_cache: WorkCache {
                bits: 0,
                work: Work::from_be_bytes([0; 32]),
            },
        };
        for (i, e) in entries.into_iter().enumerate() {
            chain.best_index.insert(e.hash, window_base + i as u32);
            chain.window.push_back(e);
        }
        Ok(chain)
    }

    /// Restores a chain from headers read back from the store: the best
    /// chain's last headers, lowest first, ending at the tip.
    pub fn restore(
        rules: &'static Rules,
        checkpoint_height: u32,
        recent: Vec<ValidatedHeader>,
        capacity: usize,
    ) -> Option<Self> {
        let first = recent.first()?;
        let window_base = first.height;
        let mut chain = HeaderChain {
            rules,
            checkpoint_height,
            floor: checkpoint_height - Self::anchor_ancestors(checkpoint_height),
            window: VecDeque::with_capacity(capacity + 1),
            window_base,
            best_index: HashIndex::default(),
            side: HashIndex::default(),
            capacity: capacity.max(MEDIAN_TIME_SPAN + 1),
            work_cache: WorkCache {
                bits: 0,
                work: Work::from_be_bytes([0; 32]),
            },
        };
        for (i, v) in recent.iter().enumerate() {
            if v.height != window_base + i as u32 {
                return None;
            }
            if i > 0 && v.header.prev_blockhash != recent[i - 1].hash {
                return None;
            }
            chain.best_index.insert(v.hash, v.height);
            chain.window.push_back(Entry {
                header: v.header,
                hash: v.hash,
                chainwork: v.chainwork,
            });
        }
        Some(chain)
    }

    /// The network rules in force.
    pub fn rules(&self) -> &'static Rules {
        self.rules
    }

    /// The trusted checkpoint's height.
    pub fn checkpoint_height(&self) -> u32 {
        self.checkpoint_height
    }

    /// The best tip.
    pub fn tip(&self) -> ValidatedHeader {
        let e = self.window.back().expect("window never empty");
        ValidatedHeader {
            header: e.header,
            hash: e.hash,
            height: self.window_base + self.window.len() as u32 - 1,
            chainwork: e.chainwork,
        }
    }

    /// The lowest best-chain height kept in memory.
    pub fn lowest_height(&self) -> u32 {
        self.window_base
    }

    /// How deep a reorg the in-memory window can still validate.
    pub fn max_reorg_depth(&self) -> u32 {
        (self.capacity as u32).saturating_sub(RETARGET_INTERVAL + MEDIAN_TIME_SPAN as u32)
    }

    /// The best-chain header at `height`, if it is in the window.
    pub fn best_at(&self, height: u32) -> Option<ValidatedHeader> {
        let i = height.checked_sub(self.window_base)? as usize;
        self.window.get(i).map(|e| ValidatedHeader {
            header: e.header,
            hash: e.hash,
            height,
            chainwork: e.chainwork,
        })
    }

    /// Height of `hash` if it is on the best chain's window.
    pub fn best_height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.best_index.get(hash).copied()
    }

    /// Whether the chain knows `hash`, on the best chain's window or a side branch.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.best_index.contains_key(hash) || self.side.contains_key(hash)
    }

    /// Validates a batch of headers, each the child of the one before, the
    /// first a child of any known header, and applies it. All or nothing: on
    /// the first invalid header the chain is left as it was.
    pub fn connect(&mut self, headers: &[Header], now: u32) -> Result<Connected, ChainError> {
        // Skip headers already known (a source may resend the tip).
        let mut skip = 0;
        while skip < headers.len() && self.contains(&headers[skip].block_hash()) {
            skip += 1;
        }
        let headers = &headers[skip..];
        let Some(first) = headers.first() else {
            return Ok(Connected {
                event: ChainEvent::Unchanged,
                changes: ChangeSet::default(),
            });
        };

        // Where does the batch attach?
        let parent_hash = first.prev_blockhash;
        let (start, mut segment, fork_height) = if let Some(&h) = self.best_index.get(&parent_hash)
        {
            (h + 1, Vec::with_capacity(headers.len()), h)
        } else if self.side.contains_key(&parent_hash) {
            let path = self.side_path(parent_hash);
            let fork_height = path[0].height - 1;
            // The side branch must still hang from the best chain: its lowest
            // entries may have been pruned with the window's tail.
            if self.best_index.get(&path[0].entry.header.prev_blockhash) != Some(&fork_height) {
                return Err(ChainError {
                    height: path[0].height,
                    hash: first.block_hash(),
                    rule: Rule::MissingAncestor {
                        height: fork_height,
                    },
                });
            }
            let start = fork_height + 1;
            let mut seg: Vec<Entry> = Vec::with_capacity(path.len() + headers.len());
            seg.extend(path.iter().map(|s| s.entry));
            (start, seg, fork_height)
        } else {
            return Err(ChainError {
                height: 0,
                hash: first.block_hash(),
                rule: Rule::UnknownParent(parent_hash),
            });
        };
        let tip_height = self.window_base + self.window.len() as u32 - 1;
        if fork_height < tip_height {
            let reject = |rule| ChainError {
                height: fork_height + 1,
                hash: first.block_hash(),
                rule,
            };
            if fork_height < self.checkpoint_height {
                return Err(reject(Rule::ForkBelowCheckpoint {
                    checkpoint: self.checkpoint_height,
                }));
            }
        }
        let side_len = segment.len();
        let mut parent_work = match segment.last() {
            Some(e) => e.chainwork,
            None => self.window[(fork_height - self.window_base) as usize].chainwork,
        };
        let mut prev_hash = parent_hash;
        let mut work_cache = self.work_cache;
        for (i, header) in headers.iter().enumerate() {
            let height = start + (side_len + i) as u32;
            if header.prev_blockhash != prev_hash {
                return Err(ChainError {
                    height,
                    hash: header.block_hash(),
                    rule: Rule::BrokenLink {
                        expected_parent: prev_hash,
                    },
                });
            }
            let view = BranchView {
                window: &self.window,
                window_base: self.window_base,
                start,
                segment: &segment,
            };
            let (hash, target) = check_contextual(
                self.rules, header, height, &view, self.floor, now,
            )
            .map_err(|rule| ChainError {
                height,
                hash: header.block_hash(),
                rule,
            })?;
            let chainwork = parent_work + work_cache.work(header.bits, target);
            segment.push(Entry {
                header: *header,
                hash,
                chainwork,
            });
            parent_work = chainwork;
            prev_hash = hash;
        }
        self.work_cache = work_cache;
        Ok(self.apply(start, fork_height, side_len, segment))
    }

    /// Side-branch entries from the one attached to the best chain up to `tip`.
    fn side_path(&self, tip: BlockHash) -> Vec<SideEntry> {
        let mut path = Vec::new();
        let mut cursor = tip;
        while let Some(s) = self.side.get(&cursor) {
            path.push(*s);
            cursor = s.entry.header.prev_blockhash;
        }
        path.reverse();
        path
    }

    fn apply(
        &mut self,
        start: u32,
        fork_height: u32,
        side_len: usize,
        segment: Vec<Entry>,
    ) -> Connected {
        let validated = |i: usize, e: &Entry| ValidatedHeader {
            header: e.header,
            hash: e.hash,
            height: start + i as u32,
            chainwork: e.chainwork,
        };
        let new_headers: Vec<ValidatedHeader> = segment
            .iter()
            .enumerate()
            .skip(side_len)
            .map(|(i, e)| validated(i, e))
            .collect();
        let best_work = self.window.back().expect("window never empty").chainwork;
        let new_tip = *segment.last().expect("segment is not empty");

        if new_tip.chainwork <= best_work {
            for v in &new_headers {
                self.side.insert(
                    v.hash,
                    SideEntry {
                        entry: Entry {
                            header: v.header,
                            hash: v.hash,
                            chainwork: v.chainwork,
                        },
                        height: v.height,
                    },
                );
            }
            let tip = *new_headers.last().expect("batch is not empty");
            return Connected {
                event: ChainEvent::SideBranch { tip },
                changes: ChangeSet {
                    headers: new_headers,
                    ..ChangeSet::default()
                },
            };
        }

        // The branch is heavier: it becomes the best chain.
        let keep = (fork_height - self.window_base + 1) as usize;
        let mut reverted = Vec::new();
        while self.window.len() > keep {
            let e = self.window.pop_back().expect("len > keep");
            let height = self.window_base + self.window.len() as u32;
            self.best_index.remove(&e.hash);
            self.side.insert(e.hash, SideEntry { entry: e, height });
            reverted.push(ValidatedHeader {
                header: e.header,
                hash: e.hash,
                height,
                chainwork: e.chainwork,
            });
        }
        let mut connected = Vec::with_capacity(segment.len());
        let mut best = Vec::with_capacity(segment.len());
        for (i, e) in segment.iter().enumerate() {
            self.side.remove(&e.hash);
            let v = validated(i, e);
            self.best_index.insert(e.hash, v.height);
            self.window.push_back(*e);
            best.push((v.height, v.hash));
            connected.push(v);
        }
        self.trim();
        let fork_hash = if fork_height >= self.window_base {
            self.window[(fork_height - self.window_base) as usize].hash
        } else {
            segment[0].header.prev_blockhash
        };
        let tip = connected.last().expect("segment is not empty");
        Connected {
            changes: ChangeSet {
                headers: new_headers,
                truncate_best_above: if reverted.is_empty() {
                    None
                } else {
                    Some(fork_height)
                },
                best,
                tip: Some((tip.height, tip.hash)),
            },
            event: ChainEvent::TipChanged {
                fork_point: (fork_height, fork_hash),
                reverted,
                connected,
            },
        }
    }

    /// Keeps the window within capacity and forgets side branches below it.
    fn trim(&mut self) {
        let before = self.window_base;
        while self.window.len() > self.capacity {
            let e = self.window.pop_front().expect("len > capacity");
            self.best_index.remove(&e.hash);
            self.window_base += 1;
        }
        if self.window_base != before && !self.side.is_empty() {
            let base = self.window_base;
            self.side.retain(|_, s| s.height > base);
        }
    }

    /// Number of side-branch headers held in memory.
    pub fn side_len(&self) -> usize {
        self.side.len()
    }
}

/// Work as a decimal-free hex string, for logs and status output.
pub fn work_hex(work: Work) -> String {
    let bytes = work.to_be_bytes();
    let s = hex::encode(bytes);
    let trimmed = s.trim_start_matches('0');
    format!("0x{}", if trimmed.is_empty() { "0" } else { trimmed })
}

/// Parses the output of [`work_hex`] (or bitcoind's 64-digit `chainwork`).
pub fn parse_work(s: &str) -> Option<Work> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let padded = format!("{s:0>64}");
    let bytes: [u8; 32] = hex::decode(padded).ok()?.try_into().ok()?;
    Some(Work::from_be_bytes(bytes))
}

/// The hash of the all-zero block, used as "no parent".
pub fn zero_hash() -> BlockHash {
    BlockHash::all_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btc::network::{test_rules, REGTEST};
    use bitcoin::block::Version;
    use bitcoin::TxMerkleNode;
    use proptest::prelude::*;

    const NOW: u32 = 2_000_000_000;
    const T0: u32 = 1_600_000_000;

    fn genesis(rules: &Rules) -> Header {
        mine(Header {
            version: Version::from_consensus(1),
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: T0,
            bits: rules.pow_limit_bits(),
            nonce: 0,
        })
    }

    /// Searches a nonce that meets the header's own target.
    fn mine(mut h: Header) -> Header {
        let target = Target::from_compact(h.bits);
        while !target.is_met_by(h.block_hash()) {
            h.nonce += 1;
        }
        h
    }

    /// A nonce whose hash misses the target.
    fn unmine(mut h: Header) -> Header {
        let target = Target::from_compact(h.bits);
        while target.is_met_by(h.block_hash()) {
            h.nonce += 1;
        }
        h
    }

    fn child(parent: &Header, dt: u32, bits: CompactTarget, tag: u32) -> Header {
        mine(Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: parent.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array(
                bitcoin::hashes::sha256d::Hash::hash(&tag.to_le_bytes()).to_byte_array(),
            ),
            time: parent.time + dt,
            bits,
            nonce: 0,
        })
    }

    fn start(rules: &'static Rules) -> (HeaderChain, Header) {
        let g = genesis(rules);
        let chain = HeaderChain::from_anchor(
            rules,
            Anchor {
                header: g,
                trusted_hash: g.block_hash(),
                height: 0,
                chainwork: g.work(),
                ancestors: vec![],
            },
        )
        .unwrap();
        (chain, g)
    }

    /// `n` headers on top of `parent`, `dt` seconds apart, with the bits the rules want.
    fn extend(chain: &HeaderChain, parent: &Header, n: u32, dt: u32, tag: u32) -> Vec<Header> {
        let mut out = Vec::new();
        let mut p = *parent;
        let mut bits = p.bits;
        for i in 0..n {
            let mut h = child(&p, dt, bits, tag.wrapping_mul(1_000_003) ^ i);
            // Ask the rules what the bits must be, given the ancestry so far.
            let height = chain.best_height_of(&parent.block_hash()).unwrap_or(0) + 1 + i;
            let ancestry = Known(chain, &out, height - i);
            let want = expected_bits(chain.rules(), &h, height, &p, &ancestry).unwrap();
            if want != h.bits {
                h.bits = want;
                h = mine(h);
            }
            bits = h.bits;
            out.push(h);
            p = h;
        }
        out
    }

    struct Known<'a>(&'a HeaderChain, &'a [Header], u32);
    impl Ancestry for Known<'_> {
        fn at(&self, height: u32) -> Option<&Header> {
            if height >= self.2 {
                self.1.get((height - self.2) as usize)
            } else {
                let i = height.checked_sub(self.0.window_base)? as usize;
                self.0.window.get(i).map(|e| &e.header)
            }
        }
    }

    fn rule_of(chain: &mut HeaderChain, headers: &[Header]) -> Rule {
        chain.connect(headers, NOW).unwrap_err().rule
    }

    #[test]
    fn table_of_rules_on_regtest() {
        let rules: &'static Rules = &REGTEST;
        let (mut chain, g) = start(rules);
        let good = extend(&chain, &g, 20, 600, 1);
        chain.connect(&good, NOW).unwrap();
        let tip = *good.last().unwrap();
        let bits = tip.bits;

        type Case = (
            &'static str,
            Box<dyn Fn() -> Vec<Header>>,
            fn(&Rule) -> bool,
        );
        let cases: Vec<Case> = vec![
            (
                "valid child",
                Box::new(move || vec![child(&tip, 600, bits, 9)]),
                |_| false,
            ),
            (
                "unknown parent",
                Box::new(move || {
                    let mut h = child(&tip, 600, bits, 9);
                    h.prev_blockhash = BlockHash::from_byte_array([7; 32]);
                    vec![mine(h)]
                }),
                |r| matches!(r, Rule::UnknownParent(_)),
            ),
            (
                "broken link inside a batch",
                Box::new(move || {
                    let a = child(&tip, 600, bits, 11);
                    let b = child(&tip, 1200, bits, 12);
                    vec![a, b]
                }),
                |r| matches!(r, Rule::BrokenLink { .. }),
            ),
            (
                "hash above target",
                Box::new(move || vec![unmine(child(&tip, 600, bits, 9))]),
                |r| *r == Rule::InsufficientWork,
            ),
            (
                "negative target",
                Box::new(move || {
                    let mut h = child(&tip, 600, bits, 9);
                    h.bits = CompactTarget::from_consensus(0x20923456);
                    vec![h]
                }),
                |r| {
                    matches!(
                        r,
                        Rule::BadTarget {
                            reason: "is negative",
                            ..
                        }
                    )
                },
            ),
            (
                "target above the pow limit",
                Box::new(move || {
                    let mut h = child(&tip, 600, bits, 9);
                    h.bits = CompactTarget::from_consensus(0x2100ffff);
                    vec![mine(h)]
                }),
                |r| matches!(r, Rule::BadTarget { .. }),
            ),
            (
                "bits other than required",
                Box::new(move || {
                    let mut h = child(&tip, 600, bits, 9);
                    h.bits = CompactTarget::from_consensus(0x207ffffe);
                    vec![mine(h)]
                }),
                |r| {
                    matches!(
                        r,
                        Rule::BadBits {
                            expected: 0x207fffff,
                            got: 0x207ffffe
                        }
                    )
                },
            ),
            (
                "time at the median time past",
                Box::new(move || {
                    let mut h = child(&tip, 0, bits, 9);
                    h.time = tip.time - 5 * 600;
                    vec![mine(h)]
                }),
                |r| matches!(r, Rule::TimeTooOld { .. }),
            ),
            (
                "time more than 2 h ahead",
                Box::new(move || {
                    let mut h = child(&tip, 0, bits, 9);
                    h.time = NOW + 7201;
                    vec![mine(h)]
                }),
                |r| matches!(r, Rule::TimeTooNew { .. }),
            ),
            (
                "version 1 after BIP34",
                Box::new(move || {
                    let mut h = child(&tip, 600, bits, 9);
                    h.version = Version::from_consensus(1);
                    vec![mine(h)]
                }),
                |r| *r == Rule::BadVersion { min: 4 },
            ),
        ];
        for (name, make, expect) in cases {
            let before = chain.tip();
            let headers = make();
            match chain.connect(&headers, NOW) {
                Ok(_) if name == "valid child" => {}
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => {
                    assert!(expect(&e.rule), "{name}: wrong rule {:?}", e.rule);
                    assert_eq!(chain.tip(), before, "{name}: chain changed on rejection");
                    // The error names the height and the hash.
                    let text = e.to_string();
                    assert!(text.contains(&e.hash.to_string()), "{name}: {text}");
                }
            }
        }
    }

    #[test]
    fn exactly_two_hours_ahead_is_accepted() {
        let (mut chain, g) = start(&REGTEST);
        let mut h = child(&g, 0, g.bits, 1);
        h.time = NOW + 7200;
        chain.connect(&[mine(h)], NOW).unwrap();
    }

    /// Retargets under mainnet rules, on unmined headers: `expected_bits`
    /// is pure, so the arithmetic is checked without mainnet proof of work
    /// (the real mainnet boundaries are checked in `real_mainnet_retargets`).
    #[test]
    fn retarget_every_2016_blocks_with_clamp() {
        let rules = &crate::btc::network::MAINNET;
        let old_bits = CompactTarget::from_consensus(0x1b0404cb);
        let mk = |time: u32| Header {
            version: Version::from_consensus(4),
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: old_bits,
            nonce: 0,
        };
        struct M(std::collections::HashMap<u32, Header>);
        impl Ancestry for M {
            fn at(&self, h: u32) -> Option<&Header> {
                self.0.get(&h)
            }
        }
        let first = mk(T0);
        for (span, want) in [
            (1_209_600i64, 1.0),     // on schedule: unchanged
            (604_800, 2.0),          // twice as fast: twice as hard
            (2_419_200, 0.5),        // twice as slow: half as hard
            (1, 4.0),                // clamped at 4x
            (-50_000, 4.0),          // a timewarp (last before first): clamped
            (100 * 1_209_600, 0.25), // clamped at 1/4
        ] {
            let last = mk((i64::from(T0) + span) as u32);
            let ancestry = M([(2016 * 100, first), (2016 * 101 - 1, last)]
                .into_iter()
                .collect());
            let next = mk(last.time + 600);
            let bits = expected_bits(rules, &next, 2016 * 101, &last, &ancestry).unwrap();
            let ratio = Target::from_compact(old_bits).difficulty_float()
                / Target::from_compact(bits).difficulty_float();
            assert!(
                (1.0 / ratio - want).abs() / want < 0.001,
                "span {span}: {} vs {want}",
                1.0 / ratio
            );
            // Off the boundary the bits must not change.
            let off = expected_bits(rules, &next, 2016 * 101 + 1, &last, &ancestry).unwrap();
            assert_eq!(off, old_bits);
        }
        // Easier than the pow limit is capped at the limit.
        let easy = CompactTarget::from_consensus(0x1d00ffff);
        let mut f = mk(T0);
        f.bits = easy;
        let mut l = mk(T0 + 4 * 1_209_600);
        l.bits = easy;
        let ancestry = M([(2016, f), (4031, l)].into_iter().collect());
        assert_eq!(expected_bits(rules, &mk(0), 4032, &l, &ancestry), Ok(easy));
    }

    #[test]
    fn testnet_min_difficulty_rules() {
        let rules = test_rules(true, false, false);
        let (mut chain, g) = start(rules);
        // Make the difficulty harder than the limit first.
        let period = extend(&chain, &g, 2016, 150, 3);
        chain.connect(&period, NOW).unwrap();
        let hard = period.last().unwrap().bits;
        assert_ne!(hard, rules.pow_limit_bits());
        let tip = *period.last().unwrap();
        // More than 20 minutes later: must be the pow limit.
        let late_ok = child(&tip, 1201, rules.pow_limit_bits(), 1);
        let late_bad = child(&tip, 1201, hard, 2);
        assert!(matches!(
            rule_of(&mut chain, &[late_bad]),
            Rule::BadBits { .. }
        ));
        chain.connect(&[late_ok], NOW).unwrap();
        // Then back to the last real difficulty (walking back over the exception).
        let normal_bad = child(&late_ok, 60, rules.pow_limit_bits(), 3);
        assert!(matches!(
            rule_of(&mut chain, &[normal_bad]),
            Rule::BadBits { expected, .. } if expected == hard.to_consensus()
        ));
        chain.connect(&[child(&late_ok, 60, hard, 4)], NOW).unwrap();
    }

    #[test]
    fn bip94_timewarp_is_refused() {
        let rules = test_rules(false, false, true);
        let (mut chain, g) = start(rules);
        let period = extend(&chain, &g, 2015, 600, 8);
        chain.connect(&period, NOW).unwrap();
        let last = *period.last().unwrap();
        let want = expected_bits(rules, &last, 2016, &last, &Known(&chain, &[], 2016)).unwrap();
        // 601 s before the parent: the timewarp rule.
        let mut warp = child(&last, 0, want, 1);
        warp.time = last.time - 601;
        let warp = mine(warp);
        assert!(matches!(
            rule_of(&mut chain, &[warp]),
            Rule::TimewarpAttack { .. }
        ));
        // 600 s before is allowed (it is still above the median time past).
        let mut ok = child(&last, 0, want, 2);
        ok.time = last.time - 600;
        chain.connect(&[mine(ok)], NOW).unwrap();
    }

    #[test]
    fn timewarp_attempt_without_bip94_is_clamped() {
        // An attacker dates the last block of a period far in the future to
        // make the next period easy: the retarget clamps the timespan at 4x.
        let rules = test_rules(false, false, false);
        let first = genesis(rules);
        let mut last = first;
        last.time = first.time + 100 * 1_209_600;
        let a = rules.retarget(
            first.time,
            first.bits,
            last.time,
            CompactTarget::from_consensus(0x1f0fffff),
        );
        let b = rules.retarget(
            first.time,
            first.bits,
            first.time + 4 * 1_209_600,
            CompactTarget::from_consensus(0x1f0fffff),
        );
        assert_eq!(a, b);
        // And a negative timespan (last dated before first) clamps at 1/4.
        let c = rules.retarget(
            first.time,
            first.bits,
            first.time - 5000,
            CompactTarget::from_consensus(0x1f0fffff),
        );
        let d = rules.retarget(
            first.time,
            first.bits,
            first.time + 302_400,
            CompactTarget::from_consensus(0x1f0fffff),
        );
        assert_eq!(c, d);
    }

    #[test]
    fn heavier_fork_reorgs_and_lighter_fork_is_kept_aside() {
        let (mut chain, g) = start(&REGTEST);
        let main = extend(&chain, &g, 10, 600, 1);
        chain.connect(&main, NOW).unwrap();
        let fork_base = main[4]; // height 5
                                 // Lighter fork: 3 headers from height 6 (main reaches 10).
        let fork = extend(&chain, &fork_base, 3, 601, 2);
        let c = chain.connect(&fork, NOW).unwrap();
        assert!(matches!(c.event, ChainEvent::SideBranch { tip } if tip.height() == 8));
        assert_eq!(chain.tip().height(), 10);
        assert!(c.changes.best.is_empty() && c.changes.tip.is_none());
        // Equal work: the first seen stays.
        let more = extend_from_side(&chain, &fork, 2, 3);
        let c = chain.connect(&more, NOW).unwrap();
        assert!(matches!(c.event, ChainEvent::SideBranch { .. }));
        assert_eq!(chain.tip().hash(), main[9].block_hash());
        // Heavier: one more.
        let all: Vec<Header> = fork.iter().chain(more.iter()).copied().collect();
        let last = extend_from_side(&chain, &all, 1, 4);
        let c = chain.connect(&last, NOW).unwrap();
        let ChainEvent::TipChanged {
            fork_point,
            reverted,
            connected,
        } = c.event
        else {
            panic!("no reorg: {:?}", c.event)
        };
        assert_eq!(fork_point, (5, fork_base.block_hash()));
        assert_eq!(
            reverted.iter().map(|v| v.height()).collect::<Vec<_>>(),
            vec![10, 9, 8, 7, 6]
        );
        assert_eq!(
            connected.iter().map(|v| v.height()).collect::<Vec<_>>(),
            vec![6, 7, 8, 9, 10, 11]
        );
        assert_eq!(c.changes.truncate_best_above, Some(5));
        assert_eq!(chain.tip().height(), 11);
        // The old branch is now a side branch and can win back.
        assert!(chain.contains(&main[9].block_hash()));
        let back = extend_from_side(&chain, &main[5..], 2, 5);
        let c = chain.connect(&back, NOW).unwrap();
        assert!(matches!(c.event, ChainEvent::TipChanged { .. }));
        assert_eq!(chain.tip().hash(), back[1].block_hash());
    }

    /// Extends the last header of `branch` (not on the best chain) by `n`.
    fn extend_from_side(chain: &HeaderChain, branch: &[Header], n: u32, tag: u32) -> Vec<Header> {
        let mut p = *branch.last().unwrap();
        (0..n)
            .map(|i| {
                let h = child(&p, 600, chain.rules().pow_limit_bits(), 900 + tag * 31 + i);
                p = h;
                h
            })
            .collect()
    }

    #[test]
    fn batches_are_all_or_nothing() {
        let (mut chain, g) = start(&REGTEST);
        let mut batch = extend(&chain, &g, 10, 600, 1);
        batch[7] = unmine(batch[7]);
        let e = chain.connect(&batch, NOW).unwrap_err();
        assert_eq!(e.height, 8);
        assert_eq!(chain.tip().height(), 0);
        assert!(!chain.contains(&batch[0].block_hash()));
    }

    #[test]
    fn resent_headers_are_skipped() {
        let (mut chain, g) = start(&REGTEST);
        let batch = extend(&chain, &g, 5, 600, 1);
        chain.connect(&batch, NOW).unwrap();
        let c = chain.connect(&batch, NOW).unwrap();
        assert_eq!(c.event, ChainEvent::Unchanged);
        assert!(c.changes.is_empty());
    }

    #[test]
    fn fork_below_checkpoint_is_refused() {
        let rules: &'static Rules = &REGTEST;
        let (mut chain, g) = start(rules);
        let main = extend(&chain, &g, 30, 600, 1);
        chain.connect(&main, NOW).unwrap();
        // Re-anchor at height 20 (with its 10 ancestors) and fork from 19.
        let anchor = Anchor {
            header: main[19],
            trusted_hash: main[19].block_hash(),
            height: 20,
            chainwork: main[19].work(),
            ancestors: main[9..19].to_vec(),
        };
        let mut chain = HeaderChain::from_anchor(rules, anchor).unwrap();
        let fork = vec![child(&main[18], 601, main[18].bits, 3)];
        assert_eq!(
            rule_of(&mut chain, &fork),
            Rule::ForkBelowCheckpoint { checkpoint: 20 }
        );
        // Ancestors must link to the checkpoint.
        let bad = Anchor {
            header: main[19],
            trusted_hash: main[19].block_hash(),
            height: 20,
            chainwork: main[19].work(),
            ancestors: main[8..18].to_vec(),
        };
        assert!(matches!(
            HeaderChain::from_anchor(rules, bad),
            Err(AnchorError::BrokenAncestry { height: 19 })
        ));
    }

    #[test]
    fn forks_deeper_than_the_window_need_their_ancestors() {
        let rules = test_rules(false, false, false);
        let g = genesis(rules);
        let mut chain = HeaderChain::from_anchor_with_window(
            rules,
            Anchor {
                header: g,
                trusted_hash: g.block_hash(),
                height: 0,
                chainwork: g.work(),
                ancestors: vec![],
            },
            40,
        )
        .unwrap();
        let main = extend(&chain, &g, 100, 600, 1);
        for b in main.chunks(7) {
            chain.connect(b, NOW).unwrap();
        }
        assert_eq!(chain.lowest_height(), 61);
        // A fork from height 65 needs the 11 timestamps below 66: 55..65.
        let fork = vec![child(&main[64], 601, main[64].bits, 4)];
        assert!(matches!(
            rule_of(&mut chain, &fork),
            Rule::MissingAncestor { .. }
        ));
        // A fork from height 80 is fine.
        let fork = vec![child(&main[79], 601, main[79].bits, 5)];
        chain.connect(&fork, NOW).unwrap();
    }

    #[test]
    fn a_side_branch_whose_base_was_pruned_is_not_reattached() {
        let rules: &'static Rules = &REGTEST;
        let g = genesis(rules);
        let mut chain = HeaderChain::from_anchor_with_window(
            rules,
            Anchor {
                header: g,
                trusted_hash: g.block_hash(),
                height: 0,
                chainwork: g.work(),
                ancestors: vec![],
            },
            40,
        )
        .unwrap();
        let main = extend(&chain, &g, 40, 600, 1);
        chain.connect(&main, NOW).unwrap();
        // A lighter side branch from height 25 (heights 26..=35).
        let side = extend_from_side(&chain, &main[..25], 10, 7);
        assert!(matches!(
            chain.connect(&side, NOW).unwrap().event,
            ChainEvent::SideBranch { .. }
        ));
        // The best chain moves on; the window's tail (and the side branch's
        // base) is pruned, but its upper entries are still held.
        let more = extend(&chain, &main[39], 30, 600, 2);
        chain.connect(&more, NOW).unwrap();
        assert!(chain.lowest_height() > 26);
        assert!(chain.contains(&side[9].block_hash()));
        // Extending it must not hang it from the wrong best-chain header.
        let next = extend_from_side(&chain, &side, 40, 8);
        let e = chain.connect(&next, NOW).unwrap_err();
        assert!(
            matches!(e.rule, Rule::MissingAncestor { .. }),
            "{:?}",
            e.rule
        );
        assert_eq!(chain.tip().height(), 70);
    }

    /// Real mainnet headers (tests/fixtures/btc/mainnet.json).
    fn mainnet_fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/fixtures/btc/mainnet.json")).unwrap()
    }

    /// A header from the fixture's hex.
    fn decode(v: &serde_json::Value) -> Header {
        bitcoin::consensus::deserialize(&hex::decode(v.as_str().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_header_that_is_not_the_checkpoint_is_refused_whatever_its_work() {
        // A real mainnet header with valid proof of work, offered for the
        // checkpoint it is not (what a hostile node or a man in the middle
        // of a plain-http RPC connection would do).
        let fixture = mainnet_fixture();
        let cp = &fixture["checkpoint"];
        let builtin = crate::btc::checkpoint::Checkpoint::builtin(crate::btc::BtcNetwork::Mainnet);
        let other = decode(&cp["next"]);
        let ancestors: Vec<Header> = cp["below"].as_array().unwrap().iter().map(decode).collect();
        let err = HeaderChain::from_anchor(
            &crate::btc::network::MAINNET,
            Anchor {
                trusted_hash: builtin.hash,
                header: other,
                height: builtin.height,
                chainwork: other.work(),
                ancestors,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            AnchorError::NotTheCheckpoint {
                height: builtin.height,
                trusted: builtin.hash,
                served: other.block_hash(),
            }
        );
    }

    #[test]
    fn real_mainnet_checkpoint_and_next_header() {
        let fixture = mainnet_fixture();
        let cp = &fixture["checkpoint"];
        let header = decode(&cp["header"]);
        let builtin = crate::btc::checkpoint::Checkpoint::builtin(crate::btc::BtcNetwork::Mainnet);
        assert_eq!(header.block_hash(), builtin.hash);
        assert_eq!(cp["height"].as_u64().unwrap() as u32, builtin.height);
        let ancestors: Vec<Header> = cp["below"].as_array().unwrap().iter().map(decode).collect();
        let mut chain = HeaderChain::from_anchor(
            &crate::btc::network::MAINNET,
            Anchor {
                trusted_hash: builtin.hash,
                header,
                height: builtin.height,
                chainwork: header.work(),
                ancestors: ancestors.clone(),
            },
        )
        .unwrap();
        let next = decode(&cp["next"]);
        let c = chain.connect(&[next], 1_800_000_000).unwrap();
        assert!(matches!(c.event, ChainEvent::TipChanged { .. }));
        // The same header a nonce away fails proof of work at mainnet difficulty.
        let mut bad = next;
        bad.nonce ^= 1;
        let e = chain.connect(&[bad], 1_800_000_000).unwrap_err();
        assert_eq!(e.rule, Rule::InsufficientWork);
        assert_eq!(e.height, builtin.height + 1);
    }

    #[test]
    fn real_mainnet_retargets() {
        let fixture = mainnet_fixture();
        let rules = &crate::btc::network::MAINNET;
        let mut checked = 0;
        for r in fixture["retargets"].as_array().unwrap() {
            let first_height = r["first_height"].as_u64().unwrap() as u32;
            let (first, last, next) = (decode(&r["first"]), decode(&r["last"]), decode(&r["next"]));
            assert_eq!(next.prev_blockhash, last.block_hash());
            check_proof_of_work(&next, rules).unwrap();
            let mut known = std::collections::HashMap::new();
            known.insert(first_height, first);
            known.insert(first_height + 2015, last);
            struct M(std::collections::HashMap<u32, Header>);
            impl Ancestry for M {
                fn at(&self, h: u32) -> Option<&Header> {
                    self.0.get(&h)
                }
            }
            let height = first_height + 2016;
            assert_eq!(
                expected_bits(rules, &next, height, &last, &M(known.clone())),
                Ok(next.bits)
            );
            // One second more or less in the period changes nothing after
            // compact rounding only if the change is tiny; a different first
            // timestamp of a day does change the expected bits.
            let mut shifted = known.clone();
            let mut f2 = first;
            f2.time -= 86_400;
            shifted.insert(first_height, f2);
            assert_ne!(
                expected_bits(rules, &next, height, &last, &M(shifted)),
                Ok(next.bits)
            );
            // Without the period's first header the rule cannot be checked.
            known.remove(&first_height);
            assert_eq!(
                expected_bits(rules, &next, height, &last, &M(known)),
                Err(first_height)
            );
            checked += 1;
        }
        assert!(checked >= 2);
    }

    #[test]
    fn decode_target_matches_core() {
        let limit = REGTEST.pow_limit();
        for (bits, ok) in [
            (0x207fffffu32, true),
            (0x1d00ffff, true),
            (0x00000000, false),
            (0x01003456, false), // decodes to zero
            (0x04923456, false), // negative
            (0x23000001, false), // overflow (size 35)
            (0x22000100, false), // overflow (size 34, word > 0xff)
            (0x21010000, false), // overflow (size 33, word > 0xffff)
            (0x21008000, false), // above the regtest limit
        ] {
            assert_eq!(
                decode_target(CompactTarget::from_consensus(bits), limit).is_ok(),
                ok,
                "{bits:#x}"
            );
        }
    }

    #[test]
    fn work_hex_round_trips() {
        let w = genesis(&REGTEST).work() + genesis(&REGTEST).work();
        assert_eq!(parse_work(&work_hex(w)), Some(w));
        assert_eq!(work_hex(w), "0x4");
        assert_eq!(parse_work("zz"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Random trees of headers: the chain always ends on the longest
        /// branch (all regtest headers weigh the same; ties go to the first
        /// seen), and the change-sets rebuild the same best chain in a store.
        #[test]
        fn random_trees_follow_the_heaviest_branch(
            ops in proptest::collection::vec((0usize..8, 1u32..6), 1..25)
        ) {
            let (mut chain, g) = start(&REGTEST);
            let store = crate::store::MemStore::default();
            crate::store::Store::btc_init(&store, crate::btc::BtcNetwork::Regtest, (0, g.block_hash()), &chain.anchor_changes()).unwrap();
            // Branch tips: (tip header, height).
            let mut tips: Vec<(Header, u32)> = vec![(g, 0)];
            let mut best = (0u32, g.block_hash());
            let mut tag = 0u32;
            for (pick, n) in ops {
                let (base, base_h) = tips[pick % tips.len()];
                let mut p = base;
                let mut batch = Vec::new();
                for _ in 0..n {
                    tag += 1;
                    let h = child(&p, 600 + tag % 7, REGTEST.pow_limit_bits(), tag);
                    batch.push(h);
                    p = h;
                }
                let c = chain.connect(&batch, NOW).unwrap();
                crate::store::Store::btc_apply(&store, &c.changes).unwrap();
                let new_h = base_h + n;
                if new_h > best.0 {
                    best = (new_h, p.block_hash());
                }
                // A branch from a non-tip point forks; from a tip, it extends.
                tips.push((p, new_h));
                prop_assert_eq!(chain.tip().height(), best.0);
                prop_assert_eq!(chain.tip().hash(), best.1);
            }
            // The store's best chain links from the tip down to genesis.
            let (th, thash) = crate::store::Store::btc_tip(&store).unwrap().unwrap();
            prop_assert_eq!((th, thash), best);
            let mut hash = thash;
            for h in (0..=th).rev() {
                prop_assert_eq!(crate::store::Store::btc_best_hash(&store, h).unwrap(), Some(hash));
                let v = crate::store::Store::btc_header(&store, &hash).unwrap().unwrap();
                hash = v.header().prev_blockhash;
            }
        }
    }
}
