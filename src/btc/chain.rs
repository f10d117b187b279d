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
        && height % RETARGET_INTERVAL == 0
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
    if height % RETARGET_INTERVAL != 0 {
        if rules.allow_min_difficulty {
            let limit_bits = rules.pow_limit_bits();
            if i64::from(header.time) > i64::from(parent.time) + TARGET_SPACING * 2 {
                return Ok(limit_bits);
            }
            // The bits of the last block that was not a 20-minute exception.
            let mut h = height - 1;
            let mut bits = parent.bits;
            while h % RETARGET_INTERVAL != 0 && bits == limit_bits {
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
            header,
            height,
            chainwork,
            ancestors,
        } = anchor;
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
