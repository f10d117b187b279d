// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IBtcLightClient} from "./interfaces/IBtcLightClient.sol";
import {BtcMerkle} from "./lib/BtcMerkle.sol";

/*
 * =====================================================================================
 *  BtcLightClient: a permissionless Bitcoin SPV light client for Metis (Shanghai EVM)
 * =====================================================================================
 *
 *  Storage design ("store batch tips only")
 *  ----------------------------------------
 *  Storing anything per header costs at least one fresh SSTORE (22,100 gas), more than
 *  twice the 10,000 gas/header goal. So headers are validated in memory, batch by batch,
 *  and only the LAST header of each accepted batch (its "tip") is written:
 *
 *    _headers[hash]  one slot: chainwork (128 bits) | height (32) | timestamp (32) |
 *                    bits (32) | timestamp of the first block of its retarget period (32).
 *                    That is everything needed to validate a child: the parent's bits and
 *                    timestamp, and the period start for the next retarget. A non-zero
 *                    slot means "stored" (chainwork is never zero).
 *    _links[hash]    the nearest stored ancestor known when the tip was stored: the highest
 *                    header of the batch that was indexed on the best chain (_bestAt) when
 *                    the batch was submitted, or else the batch's anchor.
 *                    Stored headers and links form a tree rooted at the checkpoint.
 *    _bestAt[height] the stored headers of the best chain, by height: exactly the link
 *                    chain best -> link(best) -> ... -> checkpoint (kept exact on reorgs).
 *    _bestHash       the heaviest stored tip.
 *
 *  A batch must start from ANY stored header (its first header's prevHash); each next
 *  header must link to the previous. To fork from a header in the middle of an old
 *  batch, resubmit from the closest stored ancestor. A batch holds at most
 *  MAX_BATCH_HEADERS (500) headers: headers inside a batch never become proof anchors,
 *  so the cap bounds proofs. Every link spans at most 500 heights and _bestAt holds the
 *  whole link chain of the best tip, so every block of the best chain (between the
 *  checkpoint and the tip) is at most 500 headers below an indexed best-chain header,
 *  and a proof needs at most 501 headers (~40 kB of calldata), whatever batches a
 *  front-runner submitted. Per batch the contract writes three
 *  fresh slots (~66k gas) plus a few warm updates, independent of the batch size; per
 *  header it pays calldata (80 bytes, ~1.2k gas), two SHA-256 precompile calls and the
 *  checks (~1.5k gas). A 100-header batch costs roughly 3-4k gas per header all-in,
 *  within the 10,000 gas/header goal (measured by contracts/test).
 *
 *  Proving that a block is on the best chain: the caller passes the block's header and
 *  its descendants up to any stored header S with _bestAt[height(S)] == S. The chain is
 *  checked by hash links only: S and all its ancestors were proof-of-work checked when
 *  S was stored, and SHA-256 second preimages are infeasible, so the linked headers are
 *  S's real ancestors. Confirmations = bestHeight - height + 1. A relayer normally stores
 *  the block's confirmations as one batch ending at the tip, so the proof carries the
 *  block header and k-1 more headers, or just the block header if the block is a tip.
 *
 *  Reorgs: when a new tip has strictly more chainwork than the best, the contract walks
 *  the new tip's link chain writing _bestAt until it meets a stored header already in
 *  _bestAt (the stored common ancestor), then walks the old best's link chain down to
 *  that ancestor deleting its stale _bestAt entries. An extension of the best tip costs
 *  one SLOAD for this. The walks are bounded by the number of batches stored on each
 *  branch since the fork, which an attacker can only grow with real proof-of-work.
 *  So that the clean-up walk never deletes an indexed header the new batch passes
 *  through (e.g. a batch anchored below a stored best tip T1 that re-validates T1 and
 *  forks above it), the new tip links to the HIGHEST header of its batch that is
 *  indexed on the best chain, not to its anchor: the walk then stops there. Finding it
 *  costs one cold SLOAD (_bestAt[height]) per batch header at a height in
 *  (anchor, best height], stopping at the first height indexed with another hash (the
 *  batch has left the best chain); extending the best tip checks nothing.
 *  Residual false negative (never a false positive): a batch anchored at a stored header
 *  that is NOT indexed links to that anchor, whose own link may skip an indexed best-chain
 *  header stored later below it; a reorg to such a batch can drop that header's index
 *  entry although it stays an ancestor of the new best. Proofs then anchor at the next
 *  indexed header above it, still at most 500 headers away; _bestAt only ever holds
 *  best-chain headers.
 *
 *  Consensus rules checked per header: link to the parent, double-SHA256 <= target,
 *  target <= pow limit, and `bits` equal to the expected value: the parent's bits inside a
 *  retarget period; at height % 2016 == 0 Bitcoin Core's CalculateNextWorkRequired from
 *  the parent's bits, the parent's timestamp and the timestamp of the first block of the
 *  parent's period (4x clamp, pow-limit cap, GetCompact re-encoding with the sign-bit
 *  rule; the 256-bit multiplication wraps exactly like arith_uint256). Regtest mode: no
 *  retargeting, bits must equal the parent's bits.
 *
 *  Time rules: each header's time must be above the median of the 11 previous times (Core's
 *  median-time-past, checked as "greater than at least 6 of them") and at most
 *  block.timestamp + 2 hours. Each tip stores the 10 times before it (_pastTimes: 25-bit
 *  offsets from its own time, or in full in _pastTimesFull when one does not fit); the
 *  constructor takes the 11 times ending at the checkpoint.
 *
 *  Testnet4 mode: mainnet rules plus the 20-minute rule (a block more than 1200 s after its
 *  parent MUST carry the pow limit's compact bits, as Core's GetNextWorkRequired returns them;
 *  otherwise the period's bits, where Core's walk-back ends), BIP94's retarget from the
 *  period's first block's bits, and BIP94's timewarp limit (a period's first block at most
 *  600 s older than its parent). Stored headers keep the PERIOD's bits, not their own.
 *
 *  Record formats: submitHeaders takes 80-byte headers; submitCompactHeaders(parent, records)
 *  takes 48-byte records (the header without prevHash) and rebuilds each header in memory
 *  with the previous hash. Proofs (verifyTx, verifyHeaderChain) take the block's 80-byte
 *  header followed by 48-byte records of its descendants.
 *
 *  Not checked (documented limitations):
 *    - Block versions and the contents of blocks are not checked (SPV).
 *
 *  Byte order: every hash (block hash, txid, Merkle node) is the raw double-SHA256
 *  digest as it appears inside headers ("internal byte order"), i.e. the reverse of the
 *  hex shown by Bitcoin RPCs and explorers. Proof-of-work compares the digest read as a
 *  little-endian number with the target.
 *
 *  Inclusion proofs and the Merkle-tree weaknesses
 *  -----------------------------------------------
 *  verifyTx takes the raw transaction (txid = dsha256(rawTx) computed on-chain) and:
 *    - CVE-2017-12842, leaf posing as a node: a 64-byte transaction could be read as two
 *      inner hashes, letting a forger extend a branch one level below the leaves. The
 *      coinbase proof fixes the tree depth: the coinbase (index 0) must prove into the
 *      same root with a branch of exactly the same length as the transaction's branch,
 *      and its leaf must be sha256(coinbasePreimage), a hash output. A deeper "coinbase"
 *      would have to be the left half of a 64-byte coinbase (version || 0x01 || 27 zero
 *      bytes), which needs a SHA-256 preimage. (tBTC's first fix, GHSA-wg2x-rv86-mmpx,
 *      did not tie the coinbase proof's depth and index to the transaction's.)
 *    - CVE-2017-12842, node posing as a leaf: rawTx.length == 64 is refused, so the txid
 *      cannot be an inner node (that would need a SHA-256 collision between a 64-byte
 *      node preimage and a transaction of another length). The depth equality does NOT
 *      help here: a matching shallower coinbase proof is easy to build (take an inner node
 *      of the coinbase's path as the "coinbase leaf", with coinbasePreimage = sha256 of
 *      its two 32-byte children), so a 64-byte "transaction" made of an inner node's two
 *      children would prove at that shallower depth. The 64-byte refusal is the ONLY
 *      check that stops this: do not remove or relax it.
 *    - CVE-2012-2459, duplicated nodes: Bitcoin pads odd levels by duplicating the last
 *      node, so positions past the end of a level are copies of their left sibling. With
 *      the depth fixed and txIndex < 2^depth, the proof is refused when, at any level, the
 *      current node is a RIGHT child equal to its left sibling: that is exactly a walk
 *      into padding, i.e. a phantom index >= the number of transactions. Real right
 *      siblings never equal their left sibling (Core rejects such "mutated" blocks), and a
 *      LEFT node equal to its right sibling is the legitimate last node of an odd level,
 *      which is accepted. Each included transaction therefore has exactly one provable
 *      index.
 */

/// @title BtcLightClient
/// @author gmrelay
/// @notice Permissionless Bitcoin header relay keeping the heaviest chain from a checkpoint,
///         with SPV transaction inclusion proofs. See the design notes at the top of the file.
contract BtcLightClient is IBtcLightClient {
    // ---------------------------------------------------------------------------------
    // Types and constants
    // ---------------------------------------------------------------------------------

    /// @notice Validation rules. Mainnet: retargeting every 2016 blocks. Regtest: no
    ///         retargeting. Testnet4: mainnet rules plus the 20-minute minimum-difficulty
    ///         exception and BIP94 (retarget from the period's first block, timewarp limit).
    enum Network {
        Mainnet,
        Regtest,
        Testnet4
    }

    /// @notice Length of a serialized Bitcoin block header.
    uint256 public constant HEADER_LENGTH = 80;

    /// @notice Length of a compact header record (the header without its prevHash).
    uint256 public constant COMPACT_LENGTH = 48;

    /// @notice Largest accepted distance of a header's time beyond block.timestamp (2 hours).
    uint256 public constant MAX_FUTURE_BLOCK_TIME = 7200;

    /// @notice BIP94: a period's first block may be at most this much older than its parent.
    uint256 public constant MAX_TIMEWARP = 600;

    /// @notice Testnet4: a block more than this many seconds after its parent has the
    ///         minimum difficulty (twice the 10-minute spacing).
    uint256 public constant MIN_DIFFICULTY_GAP = 1200;

    /// @dev Window lanes are GUARD | time (see _fastRun).
    uint256 private constant GUARD = 1 << 32;

    /// @dev Bias of the stored 25-bit time offsets.
    uint256 private constant TIME_OFFSET_BIAS = 1 << 24;

    /// @notice Blocks per difficulty period.
    uint256 public constant RETARGET_INTERVAL = 2016;

    /// @notice Expected duration of a difficulty period in seconds (two weeks).
    uint256 public constant TARGET_TIMESPAN = 1_209_600;

    /// @dev Clamp of the measured timespan: [TARGET_TIMESPAN / 4, TARGET_TIMESPAN * 4].
    int256 private constant MIN_TIMESPAN = 302_400;
    int256 private constant MAX_TIMESPAN = 4_838_400;

    /// @notice Most headers accepted in one submitHeaders batch. Headers inside a batch are
    ///         not proof anchors, so this bounds the headers a proof must carry (<= 501).
    uint256 public constant MAX_BATCH_HEADERS = 500;

    /// @dev Running state of a batch (memory keeps the stack shallow).
    struct Cursor {
        bytes32 hash;
        uint256 height;
        uint256 chainwork;
        uint256 time;
        uint256 bits;
        uint256 periodStart;
        uint256 target;
        uint256 blockWork;
        uint256 w0; // times of the 11 blocks ending at `hash`, 64-bit lanes of GUARD | time,
        uint256 w1; // newest in the lowest lane of w0; w2's top lane is unused
        uint256 w2;
        uint256 maxTime; // block.timestamp + MAX_FUTURE_BLOCK_TIME
        uint256 mode; // bit 0: retargeting, bit 1: testnet4 minimum-difficulty rule
    }

    // ---------------------------------------------------------------------------------
    // Immutable configuration
    // ---------------------------------------------------------------------------------

    /// @notice The validation rules in force.
    Network public immutable network;

    /// @notice Highest target (easiest difficulty) allowed.
    uint256 public immutable powLimit;

    /// @notice Hash of the trusted checkpoint header.
    bytes32 public immutable checkpointHash;

    /// @notice Height of the trusted checkpoint header.
    uint256 public immutable checkpointHeight;

    /// @notice Compact encoding of the pow limit (testnet4's minimum-difficulty bits).
    uint32 public immutable minDifficultyBits;

    bool private immutable _retargeting;
    bool private immutable _minDifficultyRule;
    uint256 private immutable _minDifficultyTarget;
    uint256 private immutable _minDifficultyWork;

    // ---------------------------------------------------------------------------------
    // Storage
    // ---------------------------------------------------------------------------------

    /// @dev Stored header (batch tip) => chainwork | height | time | period bits | periodStart.
    mapping(bytes32 hash => uint256 packed) private _headers;

    /// @dev Stored header => the 10 times before it, 25-bit offsets from its own time
    ///      (bit 255 set: they are in _pastTimesFull instead).
    mapping(bytes32 hash => uint256 packed) private _pastTimes;

    /// @dev Stored header => the 10 times before it in full (32 bits each), when an offset
    ///      does not fit.
    mapping(bytes32 hash => uint256[2] times) private _pastTimesFull;

    /// @dev Stored header => nearest stored ancestor (zero for the checkpoint).
    mapping(bytes32 hash => bytes32 ancestor) private _links;

    /// @dev Height => stored header of the best chain at that height (zero if none stored).
    mapping(uint256 height => bytes32 hash) private _bestAt;

    /// @dev The heaviest stored header.
    bytes32 private _bestHash;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice The checkpoint was stored at deployment.
    /// @param hash Checkpoint block hash.
    /// @param height Checkpoint height.
    /// @param chainwork Cumulative work up to and including the checkpoint.
    event CheckpointStored(bytes32 indexed hash, uint256 height, uint256 chainwork);

    /// @notice A batch of headers was validated and its last header stored.
    /// @param tip Hash of the last header of the batch (now stored).
    /// @param firstHeight Height of the first header of the batch.
    /// @param count Number of headers in the batch.
    /// @param anchor Stored header the batch extends.
    /// @param bestTip Best tip after the batch (equals `tip` if the batch became the best chain).
    event HeadersSubmitted(
        bytes32 indexed tip, uint256 firstHeight, uint256 count, bytes32 indexed anchor, bytes32 indexed bestTip
    );

    /// @notice The best chain switched to a branch that does not extend the previous best tip.
    /// @param oldBest Previous best tip.
    /// @param newBest New best tip.
    /// @param ancestorHeight Height of the highest stored header common to both branches.
    event Reorg(bytes32 indexed oldBest, bytes32 indexed newBest, uint256 ancestorHeight);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice Header data is empty or not a multiple of 80 bytes.
    error BadLength(uint256 length);

    /// @notice A batch holds more than MAX_BATCH_HEADERS headers.
    error BatchTooLarge(uint256 count, uint256 max);

    /// @notice The first header's parent is not a stored header.
    error UnknownParent(bytes32 prevHash);

    /// @notice The header at `height` does not link to the previous header of the batch.
    error BrokenLink(uint256 height);

    /// @notice The header's hash is above its target.
    error InsufficientWork(uint256 height, bytes32 hash);

    /// @notice The header's bits differ from the value the consensus rules require.
    error BadBits(uint256 height, uint32 expected, uint32 got);

    /// @notice The target decoded from bits exceeds the pow limit.
    error TargetAboveLimit(uint256 height, uint256 target);

    /// @notice The bits encode a zero, negative or overflowing target.
    error InvalidTarget(uint256 height, uint32 bits);

    /// @notice Cumulative chainwork would not fit in 128 bits.
    error ChainworkOverflow(uint256 height);

    /// @notice Heights must fit in 32 bits.
    error HeightOverflow(uint256 height);

    /// @notice The batch's last header is already stored.
    error HeaderAlreadyStored(bytes32 hash);

    /// @notice Mainnet-mode checkpoints must be at a height multiple of 2016.
    error CheckpointNotOnBoundary(uint256 height);

    /// @notice The checkpoint chainwork must be non-zero and fit in 128 bits.
    error InvalidChainwork(uint256 chainwork);

    /// @notice The pow limit must be non-zero and below 2^256 - 1.
    error InvalidPowLimit(uint256 powLimit);

    /// @notice The hash is not a stored header.
    error UnknownHeader(bytes32 hash);

    /// @notice The header chain of a proof ends at a stored header that is not on the best chain.
    error NotOnBestChain(bytes32 hash);

    /// @notice Header `index` of a proof's header chain does not link to header `index - 1`.
    error BrokenHeaderChain(uint256 index);

    /// @notice The block has fewer confirmations than required.
    error InsufficientConfirmations(bytes32 blockHash, uint256 confirmations, uint256 required);

    // The inclusion errors (SixtyFourByteTransaction, BadMerkleProofLength, …) are
    // BtcMerkle's, and part of this contract's ABI through it.

    /// @notice The header's time is not above the median of the 11 previous times (Core's
    ///         "time-too-old").
    error TimeNotAfterMedian(uint256 height, uint32 time, uint32 medianTimePast);

    /// @notice The header's time is more than 2 hours beyond block.timestamp ("time-too-new").
    error TimeTooFarInFuture(uint256 height, uint32 time, uint256 maxTime);

    /// @notice BIP94 (testnet4): a period's first block is more than 600 s older than its parent.
    error TimewarpAttack(uint256 height, uint32 time, uint32 parentTime);

    /// @notice The last of the 11 checkpoint times must be the checkpoint header's time.
    error BadCheckpointTimes(uint32 given, uint32 headerTime);

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the client from a trusted checkpoint.
    /// @param checkpointHeader The checkpoint's raw 80-byte header.
    /// @param checkpointHeight_ Its height (a multiple of 2016 in Mainnet and Testnet4 modes).
    /// @param checkpointChainwork Cumulative chainwork up to and including the checkpoint.
    /// @param network_ Validation rules (Mainnet = 0, Regtest = 1, Testnet4 = 2).
    /// @param powLimit_ Pow limit of the network, e.g. 0x00000000ffff...ff for mainnet and
    ///        testnet4, 0x7fffff << 232 for regtest.
    /// @param checkpointTimes Timestamps of the 11 blocks ending at the checkpoint, oldest first
    ///        (the last one must equal the checkpoint header's time). For a checkpoint below
    ///        height 10, repeat the genesis time for the missing blocks.
    constructor(
        bytes memory checkpointHeader,
        uint256 checkpointHeight_,
        uint256 checkpointChainwork,
        Network network_,
        uint256 powLimit_,
        uint32[11] memory checkpointTimes
    ) {
        if (checkpointHeader.length != HEADER_LENGTH) revert BadLength(checkpointHeader.length);
        if (powLimit_ == 0 || powLimit_ == type(uint256).max) revert InvalidPowLimit(powLimit_);
        if (network_ != Network.Regtest && checkpointHeight_ % RETARGET_INTERVAL != 0) {
            revert CheckpointNotOnBoundary(checkpointHeight_);
        }
        if (checkpointHeight_ > type(uint32).max) revert HeightOverflow(checkpointHeight_);
        if (checkpointChainwork == 0 || checkpointChainwork > type(uint128).max) {
            revert InvalidChainwork(checkpointChainwork);
        }

        uint256 time = _le32(uint32(bytes4(_slice4(checkpointHeader, 68))));
        uint256 bits = _le32(uint32(bytes4(_slice4(checkpointHeader, 72))));
        if (checkpointTimes[10] != time) revert BadCheckpointTimes(checkpointTimes[10], uint32(time));
        (uint256 target, bool valid) = _decodeCompact(bits);
        if (!valid) revert InvalidTarget(checkpointHeight_, uint32(bits));
        if (target > powLimit_) revert TargetAboveLimit(checkpointHeight_, target);
        bytes32 hash = _dsha256Memory(checkpointHeader);
        if (_reverse(uint256(hash)) > target) revert InsufficientWork(checkpointHeight_, hash);

        network = network_;
        powLimit = powLimit_;
        _retargeting = network_ != Network.Regtest;
        _minDifficultyRule = network_ == Network.Testnet4;
        uint256 minBits = _encodeCompact(powLimit_);
        (uint256 minTarget,) = _decodeCompact(minBits);
        minDifficultyBits = uint32(minBits);
        _minDifficultyTarget = minTarget;
        unchecked {
            _minDifficultyWork = (~minTarget / (minTarget + 1)) + 1;
        }
        checkpointHash = hash;
        checkpointHeight = checkpointHeight_;

        _headers[hash] = _pack(checkpointChainwork, checkpointHeight_, time, bits, time);
        uint256[3] memory w;
        for (uint256 i = 0; i < 11; ++i) {
            // Lane k of the window holds the time of the block k below the checkpoint.
            uint256 k = 10 - i;
            w[k / 4] |= (GUARD | checkpointTimes[i]) << (64 * (k % 4));
        }
        _storeTimes(hash, time, w[0], w[1], w[2]);
        _bestAt[checkpointHeight_] = hash;
        _bestHash = hash;
        emit CheckpointStored(hash, checkpointHeight_, checkpointChainwork);
    }

    // ---------------------------------------------------------------------------------
    // Header submission
    // ---------------------------------------------------------------------------------

    /// @notice Validates a batch of consecutive 80-byte headers and stores its last header.
    ///         Anyone may call.
    /// @dev The first header must extend any stored header; the best tip moves to the batch's
    ///      tip if that has strictly more chainwork (reorgs included). At most
    ///      MAX_BATCH_HEADERS headers (BatchTooLarge).
    /// @param headers Concatenated 80-byte headers, oldest first (1 to 500 of them).
    /// @return tip Hash of the last header of the batch.
    function submitHeaders(bytes calldata headers) external returns (bytes32 tip) {
        uint256 length = headers.length;
        if (length == 0 || length % HEADER_LENGTH != 0) revert BadLength(length);
        uint256 ptr;
        assembly {
            ptr := headers.offset
        }
        return _submit(_prevHashAt(ptr), ptr, length, HEADER_LENGTH);
    }

    /// @notice Same as submitHeaders with compact 48-byte records: each 80-byte header without
    ///         its prevHash, i.e. version(4) | merkleRoot(32) | time(4) | bits(4) | nonce(4), raw
    ///         bytes as in the header. The first record's parent is `parent` (any stored header),
    ///         each next record's parent is the previous record.
    /// @param parent Hash of the stored header the batch extends (internal byte order).
    /// @param headers Concatenated 48-byte records, oldest first (1 to 500 of them).
    /// @return tip Hash of the last header of the batch.
    function submitCompactHeaders(bytes32 parent, bytes calldata headers) external returns (bytes32 tip) {
        uint256 length = headers.length;
        if (length == 0 || length % COMPACT_LENGTH != 0) revert BadLength(length);
        uint256 ptr;
        assembly {
            ptr := headers.offset
        }
        return _submit(parent, ptr, length, COMPACT_LENGTH);
    }

    /// @dev Shared body of both submission forms (`stride` = record length).
    function _submit(bytes32 anchor, uint256 ptr, uint256 length, uint256 stride) private returns (bytes32 tip) {
        uint256 count = length / stride;
        if (count > MAX_BATCH_HEADERS) revert BatchTooLarge(count, MAX_BATCH_HEADERS);
        Cursor memory c;
        {
            uint256 anchorPacked = _headers[anchor];
            if (anchorPacked == 0) revert UnknownParent(anchor);
            c = _cursor(anchor, anchorPacked);
        }
        bytes32 oldBest = _bestHash;
        uint256 oldBestPacked = _headers[oldBest];
        bytes32 link = _validateBatch(c, ptr, ptr + length, stride, _unpackHeight(oldBestPacked));

        tip = c.hash;
        if (_headers[tip] != 0) revert HeaderAlreadyStored(tip);
        if (c.chainwork > type(uint128).max) revert ChainworkOverflow(c.height);
        if (c.height > type(uint32).max) revert HeightOverflow(c.height);
        _headers[tip] = _pack(c.chainwork, c.height, c.time, c.bits, c.periodStart);
        _storeTimes(tip, c.time, c.w0, c.w1, c.w2);
        // Link to the highest header of the batch indexed on the best chain (else the
        // anchor), so that the best chain's indexed headers the batch passed through stay on
        // its link chain and a reorg to it never drops them.
        _links[tip] = link;

        bytes32 bestTip = oldBest;
        if (c.chainwork > _unpackChainwork(oldBestPacked)) {
            _setBest(tip, c.height, oldBest);
            bestTip = tip;
        }
        emit HeadersSubmitted(tip, c.height + 1 - count, count, anchor, bestTip);
    }

    /// @dev Validates the records in calldata [ptr, end) on top of the cursor (at the anchor);
    ///      returns the highest header of the batch indexed on the best chain, or the anchor.
    ///      Only heights up to the best height can be indexed; the scan stops at the first
    ///      height indexed with another hash (the batch has left the best chain there).
    ///      Ordinary headers go through the assembly fast path (_fastRun); whatever it does not
    ///      accept (retarget heights, testnet4 minimum-difficulty candidates, headers in the
    ///      scanned range, and every invalid header) goes through _advance, which applies all
    ///      rules and reverts with the precise error.
    function _validateBatch(Cursor memory c, uint256 ptr, uint256 end, uint256 stride, uint256 oldBestHeight)
        private
        view
        returns (bytes32 link)
    {
        link = c.hash;
        c.maxTime = block.timestamp + MAX_FUTURE_BLOCK_TIME;
        c.mode = (_retargeting ? 1 : 0) | (_minDifficultyRule ? 2 : 0);
        while (ptr < end) {
            if (c.height < oldBestHeight) {
                _advance(c, ptr, stride);
                ptr += stride;
                bytes32 atHeight = _bestAt[c.height];
                if (atHeight == c.hash) link = atHeight;
                else if (atHeight != bytes32(0)) oldBestHeight = 0;
                continue;
            }
            ptr = _fastRun(c, ptr, end, stride);
            if (ptr < end) {
                _advance(c, ptr, stride);
                ptr += stride;
            }
        }
    }

    /// @dev Validates the record at `ptr` as the child of the cursor and advances it (all rules).
    function _advance(Cursor memory c, uint256 ptr, uint256 stride) private view {
        uint256 height = c.height + 1;
        if (stride == HEADER_LENGTH && _prevHashAt(ptr) != c.hash) revert BrokenLink(height);
        (bytes32 hash, uint256 time, uint256 bits) = _hashRecord(ptr, stride, c.hash);

        uint256 expected = c.bits;
        uint256 target = c.target;
        uint256 work = c.blockWork;
        if (_retargeting && height % RETARGET_INTERVAL == 0) {
            // BIP94 (testnet4): the first block of a period may not be more than 600 s older
            // than its parent.
            if (_minDifficultyRule && time + MAX_TIMEWARP < c.time) {
                revert TimewarpAttack(height, uint32(time), uint32(c.time));
            }
            // The period's bits are the bits of its first block: the parent's on mainnet, and
            // BIP94's choice on testnet4 (the parent may be a minimum-difficulty block there).
            expected = _retarget(c.bits, c.periodStart, c.time);
            if (bits == expected) {
                (target, work) = _targetAndWork(height, expected);
                c.bits = expected;
                c.target = target;
                c.blockWork = work;
                c.periodStart = time;
            }
        } else if (_minDifficultyRule && time > c.time + MIN_DIFFICULTY_GAP) {
            // Testnet4: a block more than 20 minutes after its parent has the minimum difficulty.
            expected = minDifficultyBits;
            target = _minDifficultyTarget;
            work = _minDifficultyWork;
        }
        // Otherwise the period's bits (Core's walk-back to the last block that is not a
        // minimum-difficulty block ends at a block carrying them).
        if (bits != expected) revert BadBits(height, uint32(expected), uint32(bits));
        if (_reverse(uint256(hash)) > target) revert InsufficientWork(height, hash);

        _checkTime(c, height, time);
        c.chainwork += work;
        c.time = time;
        c.height = height;
        c.hash = hash;
    }

    /// @dev Median-time-past and future bound; shifts `time` into the cursor's window.
    function _checkTime(Cursor memory c, uint256 height, uint256 time) private pure {
        if (time > c.maxTime) revert TimeTooFarInFuture(height, uint32(time), c.maxTime);
        (uint256 w0, uint256 w1, uint256 w2) = (c.w0, c.w1, c.w2);
        if (_notBefore(w0, w1, w2, time) > 5) revert TimeNotAfterMedian(height, uint32(time), _median(w0, w1, w2));
        (c.w0, c.w1, c.w2) = _push(w0, w1, w2, time);
    }

    /// @dev Fast path: accepts consecutive ordinary headers (not at a retarget height, not a
    ///      testnet4 minimum-difficulty candidate, bits equal to the period's bits, enough work,
    ///      time above the median of the 11 previous times and within the future bound) and
    ///      returns the offset of the first record it did not accept (or `end`). It never
    ///      accepts a header that _advance would refuse, and updates the cursor like _advance.
    function _fastRun(Cursor memory c, uint256 ptr, uint256 end, uint256 stride) private view returns (uint256) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            let hash := mload(c)
            let w0 := mload(add(c, 0x100))
            let w1 := mload(add(c, 0x120))
            let w2 := mload(add(c, 0x140))
            mstore(add(m, 4), hash)
            for {} lt(ptr, end) {} {
                let height := add(mload(add(c, 0x20)), 1)
                let ok := 1
                switch stride
                case 80 {
                    ok := eq(calldataload(add(ptr, 4)), hash)
                    calldatacopy(m, ptr, 80)
                }
                default {
                    // m+4..m+36 holds the parent's hash (the last digest was written there).
                    calldatacopy(m, ptr, 4)
                    calldatacopy(add(m, 36), add(ptr, 4), 44)
                }
                // time | bits, byte-swapped from little-endian in one 64-bit word.
                let x := shr(192, mload(add(m, 68)))
                x := or(shl(8, and(x, 0x00ff00ff00ff00ff)), and(shr(8, x), 0x00ff00ff00ff00ff))
                x := or(shl(16, and(x, 0x0000ffff0000ffff)), and(shr(16, x), 0x0000ffff0000ffff))
                let t := shr(32, x)
                // Every check folds into `ok`; one branch per header.
                ok := and(ok, eq(and(x, 0xffffffff), mload(add(c, 0x80))))
                ok := and(ok, iszero(and(mload(add(c, 0x180)), iszero(mod(height, 2016)))))
                ok := and(ok, iszero(and(shr(1, mload(add(c, 0x180))), gt(t, add(and(w0, 0xffffffff), 1200)))))
                ok := and(ok, iszero(gt(t, mload(add(c, 0x160)))))
                // Median-time-past: count the previous 11 times >= t (lanes are 2^32 | time,
                // so lane - t never borrows and bit 32 says "time >= t"); at most 5 allowed.
                {
                    let tt := mul(t, 0x0000000000000001000000000000000100000000000000010000000000000001)
                    let g := 0x0000000100000000000000010000000000000001000000000000000100000000
                    let s := add(
                        add(shr(32, and(sub(w0, tt), g)), shr(32, and(sub(w1, tt), g))),
                        shr(32, and(sub(w2, tt), shr(64, g)))
                    )
                    ok := and(ok, lt(shr(192, mul(s, 0x0000000000000001000000000000000100000000000000010000000000000001)), 6))
                }
                ok := and(ok, staticcall(gas(), 2, m, 80, add(m, 0x60), 32))
                ok := and(ok, staticcall(gas(), 2, add(m, 0x60), 32, add(m, 4), 32))
                let h := mload(add(m, 4))
                // Proof of work: the digest read as a little-endian number <= target.
                {
                    let v := h
                    v := or(and(shr(8, v), 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff),
                        shl(8, and(v, 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff)))
                    v := or(and(shr(16, v), 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff),
                        shl(16, and(v, 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff)))
                    v := or(and(shr(32, v), 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff),
                        shl(32, and(v, 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff)))
                    v := or(and(shr(64, v), 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff),
                        shl(64, and(v, 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff)))
                    ok := and(ok, iszero(gt(or(shr(128, v), shl(128, v)), mload(add(c, 0xc0)))))
                }
                if iszero(ok) { break }
                mstore(add(c, 0x20), height)
                mstore(add(c, 0x40), add(mload(add(c, 0x40)), mload(add(c, 0xe0))))
                w2 := or(shl(64, w2), shr(192, w1))
                w1 := or(shl(64, w1), shr(192, w0))
                w0 := or(shl(64, w0), or(0x100000000, t))
                hash := h
                ptr := add(ptr, stride)
            }
            mstore(c, hash)
            mstore(add(c, 0x60), and(w0, 0xffffffff))
            mstore(add(c, 0x100), w0)
            mstore(add(c, 0x120), w1)
            mstore(add(c, 0x140), w2)
        }
        return ptr;
    }

    /// @dev Makes `tip` the best header and keeps _bestAt equal to its link chain.
    function _setBest(bytes32 tip, uint256 tipHeight, bytes32 oldBest) private {
        _bestAt[tipHeight] = tip;
        // Walk the new tip's link chain until a header already indexed on the best chain.
        bytes32 x = _links[tip];
        uint256 xHeight = _unpackHeight(_headers[x]);
        while (_bestAt[xHeight] != x) {
            _bestAt[xHeight] = x;
            x = _links[x];
            xHeight = _unpackHeight(_headers[x]);
        }
        if (x != oldBest) {
            // Reorg: x is the highest stored common ancestor (it was on the old link chain).
            // Drop the old branch's entries above it that the new branch did not overwrite.
            bytes32 y = oldBest;
            uint256 yHeight = _unpackHeight(_headers[y]);
            while (yHeight > xHeight) {
                if (_bestAt[yHeight] == y) delete _bestAt[yHeight];
                y = _links[y];
                yHeight = _unpackHeight(_headers[y]);
            }
            emit Reorg(oldBest, tip, xHeight);
        }
        _bestHash = tip;
    }

    // ---------------------------------------------------------------------------------
    // Median-time-past window
    // ---------------------------------------------------------------------------------

    /// @dev Number of window times >= t (the window holds the 11 times ending at the parent).
    function _notBefore(uint256 w0, uint256 w1, uint256 w2, uint256 t) private pure returns (uint256 n) {
        for (uint256 k = 0; k < 11; ++k) {
            if (_lane(w0, w1, w2, k) >= t) ++n;
        }
    }

    /// @dev The median of the window (Core's GetMedianTimePast), for error reports.
    function _median(uint256 w0, uint256 w1, uint256 w2) private pure returns (uint32) {
        uint256[11] memory v;
        for (uint256 k = 0; k < 11; ++k) {
            uint256 x = _lane(w0, w1, w2, k);
            uint256 j = k;
            for (; j > 0 && v[j - 1] > x; --j) {
                v[j] = v[j - 1];
            }
            v[j] = x;
        }
        return uint32(v[5]);
    }

    /// @dev Time of the block k below the window's newest block (k < 11).
    function _lane(uint256 w0, uint256 w1, uint256 w2, uint256 k) private pure returns (uint256) {
        uint256 w = k < 4 ? w0 : (k < 8 ? w1 : w2);
        return uint32(w >> (64 * (k % 4)));
    }

    /// @dev Shifts `t` in as the newest time.
    function _push(uint256 w0, uint256 w1, uint256 w2, uint256 t) private pure returns (uint256, uint256, uint256) {
        return ((w0 << 64) | GUARD | t, (w1 << 64) | (w0 >> 192), (w2 << 64) | (w1 >> 192));
    }

    /// @dev Stores the 10 times before `tip` (its own time is in _headers): as 25-bit offsets
    ///      from the tip's time in one slot when they all fit within +-2^24 s (always, for real
    ///      chains), else in full in _pastTimesFull (flag bit 255 set).
    function _storeTimes(bytes32 tip, uint256 tipTime, uint256 w0, uint256 w1, uint256 w2) private {
        uint256 packed;
        bool fits = true;
        for (uint256 k = 1; k < 11; ++k) {
            uint256 d = _lane(w0, w1, w2, k) + TIME_OFFSET_BIAS;
            if (d < tipTime || (d -= tipTime) >= 1 << 25) {
                fits = false;
                break;
            }
            packed |= d << (25 * (k - 1));
        }
        if (fits) {
            _pastTimes[tip] = packed;
        } else {
            _pastTimes[tip] = 1 << 255;
            uint256 a;
            uint256 b;
            for (uint256 k = 1; k < 11; ++k) {
                if (k <= 8) a |= _lane(w0, w1, w2, k) << (32 * (k - 1));
                else b |= _lane(w0, w1, w2, k) << (32 * (k - 9));
            }
            _pastTimesFull[tip] = [a, b];
        }
    }

    /// @dev The window (lanes 2^32 | time) of the 11 times ending at a stored header.
    function _loadTimes(bytes32 hash, uint256 tipTime) private view returns (uint256 w0, uint256 w1, uint256 w2) {
        uint256 packed = _pastTimes[hash];
        uint256[3] memory w;
        w[0] = GUARD | tipTime;
        if (packed >> 255 == 0) {
            for (uint256 k = 1; k < 11; ++k) {
                uint256 t = ((packed >> (25 * (k - 1))) & 0x1ffffff) + tipTime - TIME_OFFSET_BIAS;
                w[k / 4] |= (GUARD | t) << (64 * (k % 4));
            }
        } else {
            uint256[2] memory full = _pastTimesFull[hash];
            for (uint256 k = 1; k < 11; ++k) {
                uint256 t = k <= 8 ? uint32(full[0] >> (32 * (k - 1))) : uint32(full[1] >> (32 * (k - 9)));
                w[k / 4] |= (GUARD | t) << (64 * (k % 4));
            }
        }
        (w0, w1, w2) = (w[0], w[1], w[2]);
    }

    // ---------------------------------------------------------------------------------
    // Inclusion proofs
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IBtcLightClient
    function verifyTx(TxProof calldata proof, uint256 minConfirmations)
        external
        view
        returns (bytes32 txid, bytes32 blockHash, uint256 height, uint256 confirmations)
    {
        txid = BtcMerkle.txid(proof.rawTx);
        bytes32 merkleRoot;
        (blockHash, merkleRoot, height, confirmations) = _verifyHeaderChain(proof.headers);
        if (confirmations < minConfirmations) {
            revert InsufficientConfirmations(blockHash, confirmations, minConfirmations);
        }
        BtcMerkle.verifyInclusion(
            txid, proof.txIndex, proof.merkleBranch, proof.coinbasePreimage, proof.coinbaseBranch, merkleRoot
        );
    }

    /// @notice Checks that the block of the first header of `headers` is on the best chain.
    /// @param headers The block's 80-byte header followed by its descendants as 48-byte compact
    ///        records (length 80 + 48k), the last one a stored header on the best chain.
    /// @return blockHash Hash of the first header.
    /// @return height Its height.
    /// @return confirmations Its confirmations (best height - height + 1).
    function verifyHeaderChain(bytes calldata headers)
        external
        view
        returns (bytes32 blockHash, uint256 height, uint256 confirmations)
    {
        (blockHash,, height, confirmations) = _verifyHeaderChain(headers);
    }

    /// @dev Returns the first header's hash, Merkle root, height and confirmations.
    function _verifyHeaderChain(bytes calldata headers)
        private
        view
        returns (bytes32 blockHash, bytes32 merkleRoot, uint256 height, uint256 confirmations)
    {
        uint256 length = headers.length;
        if (length < HEADER_LENGTH || (length - HEADER_LENGTH) % COMPACT_LENGTH != 0) revert BadLength(length);
        bytes32 hash;
        assembly ("memory-safe") {
            let ptr := headers.offset
            let end := add(ptr, length)
            merkleRoot := calldataload(add(ptr, 36))
            let m := mload(0x40)
            calldatacopy(m, ptr, 80)
            if iszero(staticcall(gas(), 2, m, 80, add(m, 0x60), 32)) { revert(0, 0) }
            if iszero(staticcall(gas(), 2, add(m, 0x60), 32, add(m, 4), 32)) { revert(0, 0) }
            blockHash := mload(add(m, 4))
            // Each compact record's parent is the previous digest, already at m+4.
            for { ptr := add(ptr, 80) } lt(ptr, end) { ptr := add(ptr, 48) } {
                calldatacopy(m, ptr, 4)
                calldatacopy(add(m, 36), add(ptr, 4), 44)
                if iszero(staticcall(gas(), 2, m, 80, add(m, 0x60), 32)) { revert(0, 0) }
                if iszero(staticcall(gas(), 2, add(m, 0x60), 32, add(m, 4), 32)) { revert(0, 0) }
            }
            hash := mload(add(m, 4))
        }
        uint256 index = 1 + (length - HEADER_LENGTH) / COMPACT_LENGTH;
        uint256 packed = _headers[hash];
        if (packed == 0) revert UnknownHeader(hash);
        uint256 anchorHeight = _unpackHeight(packed);
        uint256 tipHeight = anchorHeight;
        bytes32 best = _bestHash;
        if (hash != best) {
            // Not the tip: it must be indexed on the best chain.
            if (_bestAt[anchorHeight] != hash) revert NotOnBestChain(hash);
            tipHeight = _unpackHeight(_headers[best]);
        }
        // Hash links to a stored header make the chain real, so it cannot reach below height 0.
        if (index - 1 > anchorHeight) revert BrokenHeaderChain(0);
        height = anchorHeight - (index - 1);
        confirmations = tipHeight + 1 - height;
    }

    // ---------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------

    /// @notice Hash of the heaviest stored header.
    /// @return The best tip's hash (internal byte order).
    function bestHash() external view returns (bytes32) {
        return _bestHash;
    }

    /// @notice Height of the heaviest stored header.
    /// @return The best tip's height.
    function bestHeight() external view returns (uint256) {
        return _unpackHeight(_headers[_bestHash]);
    }

    /// @notice Cumulative chainwork of the best tip.
    /// @return The best tip's chainwork.
    function bestChainwork() external view returns (uint256) {
        return _unpackChainwork(_headers[_bestHash]);
    }

    /// @notice Whether `hash` is a stored header (a batch tip or the checkpoint).
    /// @param hash Block hash (internal byte order).
    /// @return True if stored.
    function isStored(bytes32 hash) external view returns (bool) {
        return _headers[hash] != 0;
    }

    /// @notice Cumulative chainwork of a stored header.
    /// @param hash Block hash of a stored header.
    /// @return The chainwork; reverts with UnknownHeader if not stored.
    function chainwork(bytes32 hash) external view returns (uint256) {
        return _unpackChainwork(_stored(hash));
    }

    /// @notice Height of a stored header.
    /// @param hash Block hash of a stored header.
    /// @return The height; reverts with UnknownHeader if not stored.
    function heightOf(bytes32 hash) external view returns (uint256) {
        return _unpackHeight(_stored(hash));
    }

    /// @notice Everything stored about a header.
    /// @param hash Block hash of a stored header.
    /// @return height Block height.
    /// @return timestamp Block timestamp.
    /// @return bits Compact target of its difficulty period (the bits of the period's first
    ///         block; the header's own bits unless it is a testnet4 minimum-difficulty block).
    /// @return periodStartTime Timestamp of the first block of its difficulty period.
    /// @return work Cumulative chainwork.
    /// @return ancestor Nearest stored ancestor (zero for the checkpoint).
    function headerInfo(bytes32 hash)
        external
        view
        returns (
            uint256 height,
            uint256 timestamp,
            uint32 bits,
            uint256 periodStartTime,
            uint256 work,
            bytes32 ancestor
        )
    {
        uint256 packed = _stored(hash);
        height = _unpackHeight(packed);
        timestamp = uint32(packed >> 64);
        bits = uint32(packed >> 32);
        periodStartTime = uint32(packed);
        work = _unpackChainwork(packed);
        ancestor = _links[hash];
    }

    /// @notice The timestamps of the 11 blocks ending at a stored header, oldest first (the
    ///         last one is the header's own time); their median is its median-time-past.
    /// @param hash Block hash of a stored header.
    /// @return times The 11 timestamps.
    function recentTimes(bytes32 hash) external view returns (uint32[11] memory times) {
        uint256 packed = _stored(hash);
        (uint256 w0, uint256 w1, uint256 w2) = _loadTimes(hash, uint32(packed >> 64));
        for (uint256 k = 0; k < 11; ++k) {
            times[10 - k] = uint32(_lane(w0, w1, w2, k));
        }
    }

    /// @notice Median-time-past of a stored header (median of recentTimes): a child's time must
    ///         be above it.
    /// @param hash Block hash of a stored header.
    /// @return The median of the 11 timestamps ending at the header.
    function medianTimePast(bytes32 hash) external view returns (uint32) {
        uint256 packed = _stored(hash);
        (uint256 w0, uint256 w1, uint256 w2) = _loadTimes(hash, uint32(packed >> 64));
        return _median(w0, w1, w2);
    }

    /// @notice Whether a STORED header is on the best chain (false for headers not stored;
    ///         use verifyHeaderChain for any header).
    /// @param hash Block hash.
    /// @return True if `hash` is stored and on the best chain.
    function isOnBestChain(bytes32 hash) external view returns (bool) {
        uint256 packed = _headers[hash];
        return packed != 0 && _bestAt[_unpackHeight(packed)] == hash;
    }

    /// @notice The stored header of the best chain at `height`, if any (useful as a proof anchor).
    /// @param height Block height.
    /// @return hash The stored best-chain header at that height, or zero.
    function storedBestAt(uint256 height) external view returns (bytes32 hash) {
        return _bestAt[height];
    }

    /// @notice Confirmations of a stored best-chain header (0 if not stored or not on the best chain).
    /// @param hash Block hash.
    /// @return Best height - height + 1, or 0.
    function confirmationsOf(bytes32 hash) external view returns (uint256) {
        uint256 packed = _headers[hash];
        if (packed == 0) return 0;
        uint256 height = _unpackHeight(packed);
        if (_bestAt[height] != hash) return 0;
        return _unpackHeight(_headers[_bestHash]) + 1 - height;
    }

    /// @notice Bitcoin Core's retarget (CalculateNextWorkRequired) under this client's pow limit.
    /// @param parentBits Bits of the last block of the period.
    /// @param periodStartTime Timestamp of the first block of the period.
    /// @param parentTime Timestamp of the last block of the period.
    /// @return The bits required of the next block.
    function computeRetarget(uint32 parentBits, uint32 periodStartTime, uint32 parentTime)
        external
        view
        returns (uint32)
    {
        return uint32(_retarget(parentBits, periodStartTime, parentTime));
    }

    // ---------------------------------------------------------------------------------
    // Difficulty arithmetic
    // ---------------------------------------------------------------------------------

    /// @dev CalculateNextWorkRequired: clamp the timespan, scale the parent's target
    ///      (wrapping 256-bit multiply, as arith_uint256), cap at the pow limit, re-encode.
    function _retarget(uint256 parentBits, uint256 periodStart, uint256 parentTime) private view returns (uint256) {
        int256 timespan = int256(parentTime) - int256(periodStart);
        if (timespan < MIN_TIMESPAN) timespan = MIN_TIMESPAN;
        if (timespan > MAX_TIMESPAN) timespan = MAX_TIMESPAN;
        (uint256 target,) = _decodeCompact(parentBits);
        uint256 next;
        unchecked {
            next = (target * uint256(timespan)) / TARGET_TIMESPAN;
        }
        if (next > powLimit) next = powLimit;
        return _encodeCompact(next);
    }

    /// @dev Decodes and checks `bits`; returns the target and the work of one block.
    function _targetAndWork(uint256 height, uint256 bits) private view returns (uint256 target, uint256 work) {
        bool valid;
        (target, valid) = _decodeCompact(bits);
        if (!valid) revert InvalidTarget(height, uint32(bits));
        if (target > powLimit) revert TargetAboveLimit(height, target);
        // 2^256 / (target + 1) without 257-bit arithmetic; target < 2^256 - 1 (pow limit).
        unchecked {
            work = (~target / (target + 1)) + 1;
        }
        if (work > type(uint128).max) revert ChainworkOverflow(height);
    }

    /// @dev arith_uint256::SetCompact; valid = not negative, not overflowing, not zero.
    function _decodeCompact(uint256 bits) private pure returns (uint256 target, bool valid) {
        uint256 size = bits >> 24;
        uint256 word = bits & 0x007fffff;
        if (size <= 3) {
            target = word >> (8 * (3 - size));
        } else {
            target = word << (8 * (size - 3)); // shifts of 256 or more yield 0 (caught as overflow)
        }
        bool negative = word != 0 && (bits & 0x00800000) != 0;
        bool overflow = word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
        valid = !negative && !overflow && target != 0;
    }

    /// @dev arith_uint256::GetCompact for a non-negative value.
    function _encodeCompact(uint256 value) private pure returns (uint256) {
        if (value == 0) return 0;
        uint256 size = _byteLength(value);
        uint256 compact = size <= 3 ? value << (8 * (3 - size)) : value >> (8 * (size - 3));
        // 0x00800000 is the sign bit: if the mantissa would set it, shift one byte more.
        if (compact & 0x00800000 != 0) {
            compact >>= 8;
            ++size;
        }
        return compact | (size << 24);
    }

    /// @dev Number of bytes needed to represent `value` (0 for 0).
    function _byteLength(uint256 value) private pure returns (uint256 n) {
        if (value >> 128 != 0) {
            value >>= 128;
            n += 16;
        }
        if (value >> 64 != 0) {
            value >>= 64;
            n += 8;
        }
        if (value >> 32 != 0) {
            value >>= 32;
            n += 4;
        }
        if (value >> 16 != 0) {
            value >>= 16;
            n += 2;
        }
        if (value >> 8 != 0) {
            value >>= 8;
            n += 1;
        }
        if (value != 0) n += 1;
    }

    // ---------------------------------------------------------------------------------
    // Packing
    // ---------------------------------------------------------------------------------

    function _pack(uint256 work, uint256 height, uint256 time, uint256 bits, uint256 periodStart)
        private
        pure
        returns (uint256)
    {
        return (work << 128) | (height << 96) | (time << 64) | (bits << 32) | periodStart;
    }

    function _unpackChainwork(uint256 packed) private pure returns (uint256) {
        return packed >> 128;
    }

    function _unpackHeight(uint256 packed) private pure returns (uint256) {
        return uint32(packed >> 96);
    }

    function _cursor(bytes32 hash, uint256 packed) private view returns (Cursor memory c) {
        c.hash = hash;
        c.chainwork = packed >> 128;
        c.height = uint32(packed >> 96);
        c.time = uint32(packed >> 64);
        c.bits = uint32(packed >> 32);
        c.periodStart = uint32(packed);
        (c.target, c.blockWork) = _targetAndWork(c.height, c.bits);
        (c.w0, c.w1, c.w2) = _loadTimes(hash, c.time);
    }

    function _stored(bytes32 hash) private view returns (uint256 packed) {
        packed = _headers[hash];
        if (packed == 0) revert UnknownHeader(hash);
    }

    // ---------------------------------------------------------------------------------
    // Byte helpers
    // ---------------------------------------------------------------------------------

    /// @dev prevHash field (bytes 4..36) of the header at calldata offset `ptr`.
    function _prevHashAt(uint256 ptr) private pure returns (bytes32 prev) {
        assembly {
            prev := calldataload(add(ptr, 4))
        }
    }

    /// @dev Byte-swaps a 32-bit value.
    function _le32(uint256 v) private pure returns (uint256) {
        return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
    }

    /// @dev Byte-reverses a 256-bit word (digest bytes -> little-endian number).
    function _reverse(uint256 v) private pure returns (uint256) {
        v = ((v >> 8) & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff)
            | ((v & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff) << 8);
        v = ((v >> 16) & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff)
            | ((v & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff) << 16);
        v = ((v >> 32) & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff)
            | ((v & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff) << 32);
        v = ((v >> 64) & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff)
            | ((v & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff) << 64);
        return (v >> 128) | (v << 128);
    }

    /// @dev Four bytes of `data` at `offset`, left-aligned.
    function _slice4(bytes memory data, uint256 offset) private pure returns (bytes32 out) {
        assembly {
            out := and(mload(add(add(data, 32), offset)), shl(224, 0xffffffff))
        }
    }

    /// @dev Hash, time and bits of the record at `ptr`: an 80-byte header (stride 80) or a
    ///      compact record whose parent is `prev` (stride 48), rebuilt in memory.
    function _hashRecord(uint256 ptr, uint256 stride, bytes32 prev)
        private
        view
        returns (bytes32 h, uint256 time, uint256 bits)
    {
        assembly ("memory-safe") {
            let m := mload(0x40)
            switch stride
            case 80 { calldatacopy(m, ptr, 80) }
            default {
                calldatacopy(m, ptr, 4)
                mstore(add(m, 4), prev)
                calldatacopy(add(m, 36), add(ptr, 4), 44)
            }
            time := shr(224, mload(add(m, 68)))
            bits := shr(224, mload(add(m, 72)))
            if iszero(staticcall(gas(), 2, m, 80, m, 32)) { revert(0, 0) }
            if iszero(staticcall(gas(), 2, m, 32, m, 32)) { revert(0, 0) }
            h := mload(m)
        }
        time = _le32(time);
        bits = _le32(bits);
    }

    /// @dev dsha256 of memory bytes.
    function _dsha256Memory(bytes memory data) private pure returns (bytes32) {
        return sha256(abi.encodePacked(sha256(data)));
    }
}
