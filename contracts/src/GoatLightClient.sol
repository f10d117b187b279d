// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IGoatHeaderStore} from "./interfaces/IGoatHeaderStore.sol";
import {DataContract} from "./lib/DataContract.sol";
import {GoatBlockCommitment} from "./lib/GoatBlockCommitment.sol";
import {RlpCalldata} from "./lib/RlpCalldata.sol";

/*
 * GoatLightClient: GOAT Network blocks made final on Metis by GOAT's own consensus.
 *
 * GOAT runs CometBFT v0.38 (unmodified) with secp256k1 validators. Every CometBFT block
 * carries the EVM block as its first transaction (tx0): a cosmos TxRaw whose body's first
 * message is `/goat.goat.v1.MsgNewEthBlock {1 proposer, 2 payload ExecutionPayload}`.
 * ProcessProposal only accepts a tx0 whose payload.parent_hash is the EVM head after the
 * previous CometBFT height, and payload.block_number = that head's number + 1. So a commit
 * for CometBFT height H (> 2/3 of the voting power precommitted its header), plus tx0's
 * inclusion in the header's data_hash, proves the EVM block `payload.parent_hash` final.
 * The EVM header (RLP, keccak = parent_hash) then gives its number, timestamp and receipts
 * root, which verifyBlock (IGoatHeaderStore) serves to PaymentSettlement exactly like
 * GoatHeaderStore's stored attestations: keccak256(abi.encode(number, timestamp,
 * receiptsRoot)) under the EVM block hash.
 *
 * What is checked, per submit (CometBFT encodings, v0.38):
 *   - Header.Hash: RFC-6962 SHA-256 Merkle root over the 14 proto-encoded header fields,
 *     computed here from the fields (the chain id is this contract's, never the caller's).
 *   - Votes: sha256 of the varint-length-prefixed CanonicalVote {type = precommit, height,
 *     round, block_id {hash, part_set_header}, timestamp, chain_id}, 64-byte r||s signatures
 *     with s <= n/2 (CometBFT refuses the high-s twin), recovered with ecrecover against
 *     the validator's Ethereum address (keccak of its uncompressed key: the same key). The
 *     relayer passes each signature's y parity in the top bit of s (EIP-2098 style: CometBFT
 *     has no recovery id). The malleable twin of a real signature (n - s >= 2^255) cannot even
 *     be written in that form; s in (n/2, 2^255) is refused as HighS. Only COMMIT votes are
 *     passed; a NIL vote signs no block id, so it cannot verify as a vote for the header. One
 *     vote per validator (bitmap).
 *   - Power: signed power > 2/3 of the set's total (integer arithmetic as CometBFT's
 *     VerifyCommitLight: signed > total * 2 / 3).
 *   - Validator sets: the client stores the set that signs the next header, i.e. the one whose
 *     hash is the trusted header's next_validators_hash. A header is accepted only if its
 *     validators_hash equals it. Heights may be skipped (CometBFT's skipping verification
 *     with the untrusted header's set equal to the trusted next set, where "> 1/3 of the
 *     trusted set" and "> 2/3 of the header's set" are the same check); when a header names
 *     another next_validators_hash, the caller passes that set (uncompressed keys and powers,
 *     in set order) and it is proven against the hash (SimpleValidator{PublicKey{secp256k1:
 *     compressed key}, power} leaves) and stored. The relayer therefore submits the last
 *     header of each validator set (where next_validators_hash changes) before skipping past
 *     it.
 *   - Adjacent headers (trusted height + 1) must also link: last_block_id.hash = trusted hash.
 *   - Time: the header is newer than the trusted one, at most MAX_CLOCK_DRIFT seconds ahead of
 *     Metis's clock, and the trusted header is younger than the trusting period (keep it well
 *     below GOAT's evidence age, 48 h and 100,000 blocks).
 *   - tx0: the leftmost Merkle path to data_hash (leaf sha256(0x00 || sha256(tx)), inner
 *     sha256(0x01 || l || r)); a path that always goes left proves index 0 whatever the
 *     number of transactions. Its protobuf is parsed strictly: TxRaw fields in order, the
 *     body's first field is messages[0], Any = exactly {type_url, value}, MsgNewEthBlock =
 *     {[proposer], payload} and nothing else, the whole ExecutionPayload walked with
 *     ascending field numbers (only the repeated fields 14 and 24 may repeat) and known wire
 *     types. Protobuf decoders keep the LAST value of a repeated scalar field, so a payload
 *     with two parent_hash fields would be read differently by goatd and by a parser that
 *     stops at the first: the ordering check makes that impossible. The EVM header's number
 *     must be payload.block_number - 1.
 *
 * Ancestors: submit proves only the EVM block named by the height it verifies, and the trusted
 * height only moves up, so the EVM blocks of skipped heights could never be proven by submit.
 * They are final all the same (ancestors of a final block), and proveAncestors(headers) proves
 * them from a block already stored: headers[0] is that block's RLP header (its keccak must be
 * stored, else UnknownGoatBlock), each next header must hash to the parent hash (RLP item 0) of
 * the one before (EvmHeaderMismatch) and carry its number - 1 (EvmNumberMismatch); each is
 * stored like submit's block (same commitment, same BlockAttested). The keccak chain down from
 * a final block is the whole proof: no signature, no CometBFT height. A block already stored
 * is skipped (no second event), the walk goes on past it. At least two headers (TooFewHeaders).
 * The header reader is submit's (_readEvmHeader, which also returns the parent hash).
 *
 * Misbehaviour: two commits at one height for different headers, each signed by > 2/3 of the
 * stored set, prove that at least 1/3 of it equivocated. submitMisbehaviour then freezes the
 * client: every submit, proveAncestors, further misbehaviour and verifyBlock revert with
 * ClientFrozen.
 *
 * Storage: one slot holds the stored set's data contract, the trusted height (32 bits: four
 * centuries of 3-second blocks) and time (ns, 64 bits: until 2554); a zero data contract means
 * frozen. The trusted header hash and next_validators_hash take one slot each. The stored set
 * (20-byte Ethereum address and 8-byte power per validator, then the total power) lives in the
 * code of a data contract written once per set and read with EXTCODECOPY: cheaper than
 * passing the set in calldata on every submit (Metis also charges L1 data for calldata), and
 * no commitment to check. Each proven EVM block costs one fresh slot.
 *
 * Events: BlockAttested (GoatHeaderStore's event, same signature) per proven EVM block and
 * ValidatorSetUpdated per stored set; the trusted CometBFT header is read with trustedState.
 *
 * Calldata of submit (the relayer reads it from CometBFT RPC /commit and /block):
 *   header       LightHeader: the 14 header fields (chain id implied; hashes are 32 bytes,
 *                as in every header after height 1).
 *   commit       round (4 bytes, big-endian) || part_set_header.total (4) || part_set_header
 *                .hash (32) || votes, each 77 bytes: validator index (1) || timestamp seconds
 *                (8, big-endian int64) || nanos (4) || r (32) || s with the y parity in bit 255
 *                (32).
 *   tx0          the raw first transaction of the block.
 *   tx0Proof     the Merkle aunts of tx0, from the leaf up (empty for a block of one tx).
 *   evmHeader    the RLP header of EVM block payload.parent_hash.
 *   nextValidators  empty unless next_validators_hash != validators_hash; then 72-byte records
 *                x (32) || y (32) || voting power (8, big-endian), in set order.
 *
 * Calldata of proveAncestors: headers, the RLP EVM headers newest first (eth_getBlockByHash of
 * each parent hash in turn), headers[0] being a block already proven final.
 */

/// @title GoatLightClient
/// @author gmrelay
/// @notice GOAT Network EVM blocks proven final by GOAT's CometBFT consensus (no committee).
contract GoatLightClient is IGoatHeaderStore {
    // ---------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------

    /// @notice The fields of a CometBFT header except the chain id (this contract's own).
    /// @param versionBlock version.block (11 for CometBFT v0.38).
    /// @param versionApp version.app.
    /// @param height Height.
    /// @param timeSeconds Header time, seconds since the Unix epoch.
    /// @param timeNanos Header time, nanoseconds.
    /// @param lastBlockHash last_block_id.hash.
    /// @param lastPartsTotal last_block_id.part_set_header.total.
    /// @param lastPartsHash last_block_id.part_set_header.hash.
    /// @param lastCommitHash last_commit_hash.
    /// @param dataHash data_hash (Merkle root of the transactions' sha256).
    /// @param validatorsHash validators_hash.
    /// @param nextValidatorsHash next_validators_hash.
    /// @param consensusHash consensus_hash.
    /// @param appHash app_hash.
    /// @param lastResultsHash last_results_hash.
    /// @param evidenceHash evidence_hash.
    /// @param proposerAddress proposer_address (RIPEMD160(SHA256(compressed key))).
    struct LightHeader {
        uint64 versionBlock;
        uint64 versionApp;
        uint64 height;
        uint64 timeSeconds;
        uint32 timeNanos;
        bytes32 lastBlockHash;
        uint32 lastPartsTotal;
        bytes32 lastPartsHash;
        bytes32 lastCommitHash;
        bytes32 dataHash;
        bytes32 validatorsHash;
        bytes32 nextValidatorsHash;
        bytes32 consensusHash;
        bytes32 appHash;
        bytes32 lastResultsHash;
        bytes32 evidenceHash;
        address proposerAddress;
    }

    // ---------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------

    /// @notice Largest validator set (GOAT allows 20).
    uint256 public constant MAX_VALIDATORS = 64;

    /// @notice How far (seconds) a header's time may run ahead of Metis's clock (CometBFT's
    ///         light client default).
    uint256 public constant MAX_CLOCK_DRIFT = 10;

    /// @notice Longest CometBFT chain id (CometBFT's MaxChainIDLen).
    uint256 public constant MAX_CHAIN_ID_LENGTH = 50;

    /// @notice The type URL of tx0's first message.
    string public constant MSG_NEW_ETH_BLOCK = "/goat.goat.v1.MsgNewEthBlock";

    /// @dev The type URL left-aligned in a word, and its length.
    uint256 private constant TYPE_URL_WORD = 0x2f676f61742e676f61742e76312e4d73674e6577457468426c6f636b00000000;
    uint256 private constant TYPE_URL_LENGTH = 28;

    /// @dev Selectors of MalformedProtobuf(uint256) and UnexpectedTypeUrl(bytes32), left-aligned.
    uint256 private constant MALFORMED_PROTOBUF = 0x2549c92c00000000000000000000000000000000000000000000000000000000;
    uint256 private constant UNEXPECTED_TYPE_URL = 0x946d2a9400000000000000000000000000000000000000000000000000000000;

    uint256 private constant COMMIT_HEAD = 40;
    uint256 private constant VOTE_SIZE = 77;
    uint256 private constant RECORD_SIZE = 72;
    uint256 private constant MEMBER_SIZE = 28;
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    uint256 private constant FIELD_P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f;
    uint256 private constant ADDRESS_MASK = 0x00ffffffffffffffffffffffffffffffffffffffff;

    /// @dev The bound given to RlpCalldata.item for the EVM header's items: none (each item is
    ///      checked against the list's end here).
    uint256 private constant OPEN = type(uint256).max;

    /// @dev ExecutionPayload fields (bit = field number) that are varints (7, 8, 9, 10, 16, 17),
    ///      length-delimited (1-6, 11-15, 24) and repeated (14, 24).
    uint256 private constant PAYLOAD_VARINTS = 0x30780;
    uint256 private constant PAYLOAD_BYTES = 0x100f87e;
    uint256 private constant PAYLOAD_REPEATED = 0x1004000;

    // ---------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------

    /// @notice The GOAT EVM chain id (2345 mainnet, 48816 testnet3).
    uint256 public immutable goatChainId;

    /// @notice Seconds after its time during which a trusted header can be built upon.
    uint256 public immutable trustingPeriod;

    bytes32 private immutable _chainId0;
    bytes32 private immutable _chainId1;
    uint256 private immutable _chainIdLength;

    /// @dev The stored set's data contract (160) | trusted height (32) << 160 | trusted time in
    ///      ns (64) << 192. A zero data contract means frozen.
    uint256 private _state;

    /// @dev The trusted header's hash.
    bytes32 private _trustedHash;

    /// @dev The trusted header's next_validators_hash: the hash of the stored set.
    bytes32 private _nextValidatorsHash;

    /// @dev EVM blockHash => keccak256(abi.encode(number, timestamp, receiptsRoot)).
    mapping(bytes32 blockHash => bytes32 commitment) private _final;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice An EVM block was proven final (the same event as GoatHeaderStore's): by submit
    ///         (the CometBFT header that proved it is the new trusted header, see trustedState)
    ///         or by proveAncestors (as the parent of a block proven final).
    /// @param blockHash EVM block hash.
    /// @param number Block number.
    /// @param timestamp Header timestamp.
    /// @param receiptsRoot Receipts root.
    event BlockAttested(bytes32 indexed blockHash, uint256 number, uint256 timestamp, bytes32 receiptsRoot);

    /// @notice A new validator set is stored.
    /// @param validatorsHash Its CometBFT hash.
    /// @param size Number of validators.
    /// @param totalPower Total voting power.
    event ValidatorSetUpdated(bytes32 indexed validatorsHash, uint256 size, uint256 totalPower);

    /// @notice Misbehaviour was proven: the client is frozen for good.
    /// @param height The height with two commits.
    /// @param headerHashA One header's hash.
    /// @param headerHashB The other's.
    event Frozen(uint256 indexed height, bytes32 headerHashA, bytes32 headerHashB);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice Misbehaviour was proven: nothing is accepted or served any more.
    error ClientFrozen();

    /// @notice verifyBlock was given committee signatures: only consensus proofs count here.
    error SignaturesNotSupported();

    /// @notice No EVM block proven final matches these fields (verifyBlock), or the first
    ///         header given to proveAncestors is not a block proven final.
    error UnknownGoatBlock(bytes32 blockHash);

    /// @notice The header is not above the trusted height.
    error HeightNotAfterTrusted(uint256 trustedHeight, uint256 height);

    /// @notice The header's validators_hash is not the trusted next_validators_hash.
    error ValidatorSetMismatch(bytes32 expected, bytes32 got);

    /// @notice An adjacent header's last_block_id.hash is not the trusted header's hash.
    error LastBlockIdMismatch(bytes32 expected, bytes32 got);

    /// @notice The header's time (ns) is not after the trusted header's.
    error HeaderTimeNotAfterTrusted(uint256 trustedTime, uint256 time);

    /// @notice The header's time (s) is beyond Metis's clock + MAX_CLOCK_DRIFT.
    error HeaderFromFuture(uint256 time, uint256 now_);

    /// @notice The trusted header (time in s) is older than the trusting period.
    error TrustingPeriodExpired(uint256 trustedTime, uint256 now_);

    /// @notice The commit is not a 40-byte head followed by 77-byte votes.
    error MalformedCommit(uint256 length);

    /// @notice A vote names a validator index outside the set.
    error VoteIndexOutOfRange(uint256 validatorIndex, uint256 size);

    /// @notice Two votes name the same validator.
    error DuplicateVote(uint256 validatorIndex);

    /// @notice A vote's s is above n/2 (CometBFT refuses the malleable twin).
    error HighS(uint256 validatorIndex);

    /// @notice A vote does not recover to its validator's address (wrong chain, block, round,
    ///         time or parity, or a NIL vote passed as a commit vote).
    error BadVoteSignature(uint256 validatorIndex, address recovered);

    /// @notice The votes hold at most 2/3 of the voting power.
    error InsufficientVotingPower(uint256 signedPower, uint256 totalPower);

    /// @notice tx0's Merkle path does not lead to data_hash.
    error DataHashMismatch(bytes32 dataHash, bytes32 computed);

    /// @notice tx0 is not well-formed protobuf at `offset` (from tx0's start).
    error MalformedProtobuf(uint256 offset);

    /// @notice tx0's first message is not MsgNewEthBlock (the type URL's first 32 bytes).
    error UnexpectedTypeUrl(bytes32 typeUrl);

    /// @notice The EVM header is not an RLP list of at least 12 items (item 0, the parent hash,
    ///         and item 5, the receipts root, 32-byte strings) at calldata `offset`.
    error MalformedEvmHeader(uint256 offset);

    /// @notice keccak256 of the EVM header is not the payload's parent_hash (submit), or not
    ///         the parent hash of the header before it (proveAncestors).
    error EvmHeaderMismatch(bytes32 parentHash, bytes32 headerHash);

    /// @notice The EVM header's number is not payload.block_number - 1 (submit), or not its
    ///         child header's number - 1 (proveAncestors: payloadNumber is the child's number).
    error EvmNumberMismatch(uint256 payloadNumber, uint256 headerNumber);

    /// @notice proveAncestors was given fewer than two headers (a stored block and an ancestor).
    error TooFewHeaders(uint256 count);

    /// @notice The validator set passed does not hash to the expected hash.
    error ValidatorSetHashMismatch(bytes32 expected, bytes32 computed);

    /// @notice A validator set was passed though next_validators_hash did not change.
    error UnexpectedValidatorSet();

    /// @notice A validator set is not 1..MAX_VALIDATORS whole 72-byte records.
    error InvalidValidatorSetLength(uint256 length);

    /// @notice A validator's key is not a point of secp256k1.
    error KeyNotOnCurve(uint256 index);

    /// @notice A validator's voting power is zero or not an int64.
    error InvalidVotingPower(uint256 index);

    /// @notice The same key appears twice in a validator set.
    error DuplicateValidator(address validator);

    /// @notice Writing the validator set's data contract failed.
    error ValidatorSetStorageFailed();

    /// @notice The two headers are not at one height with different hashes.
    error NoConflict(uint256 heightA, uint256 heightB);

    /// @notice Bad constructor parameter (chain id length, zero height or trusting period).
    error InvalidConfiguration();

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the client at a trusted CometBFT header.
    /// @param chainId_ The CometBFT chain id ("goat-mainnet", "goat-testnet3").
    /// @param goatChainId_ The EVM chain id (2345, 48816).
    /// @param trustedHeight Height of the trusted header (> 0).
    /// @param trustedTimeSeconds Its time, seconds.
    /// @param trustedTimeNanos Its time, nanoseconds.
    /// @param trustedHeaderHash Its hash.
    /// @param nextValidatorsHash Its next_validators_hash.
    /// @param validators The set with that hash: 72-byte records x || y || power (8 bytes).
    /// @param trustingPeriod_ Seconds a trusted header stays usable (> 0).
    constructor(
        string memory chainId_,
        uint256 goatChainId_,
        uint64 trustedHeight,
        uint64 trustedTimeSeconds,
        uint32 trustedTimeNanos,
        bytes32 trustedHeaderHash,
        bytes32 nextValidatorsHash,
        bytes memory validators,
        uint256 trustingPeriod_
    ) {
        uint256 length = bytes(chainId_).length;
        if (length == 0 || length > MAX_CHAIN_ID_LENGTH || trustedHeight == 0 || trustingPeriod_ == 0) {
            revert InvalidConfiguration();
        }
        bytes32 c0;
        bytes32 c1;
        assembly {
            c0 := mload(add(chainId_, 32))
            c1 := mload(add(chainId_, 64))
        }
        // Keep only the chain id's bytes (the rest of the words is whatever followed in memory).
        if (length < 32) {
            c0 &= bytes32(~(type(uint256).max >> (8 * length)));
            c1 = 0;
        } else {
            c1 &= bytes32(~(type(uint256).max >> (8 * (length - 32))));
        }
        _chainId0 = c0;
        _chainId1 = c1;
        _chainIdLength = length;
        goatChainId = goatChainId_;
        trustingPeriod = trustingPeriod_;
        uint256 time = uint256(trustedTimeSeconds) * 1e9 + trustedTimeNanos;
        if (trustedHeight > type(uint32).max || time > type(uint64).max) revert InvalidConfiguration();
        address pointer = _storeValidators(validators, nextValidatorsHash);
        _state = uint256(uint160(pointer)) | (uint256(trustedHeight) << 160) | (time << 192);
        _trustedHash = trustedHeaderHash;
        _nextValidatorsHash = nextValidatorsHash;
    }

    // ---------------------------------------------------------------------------------
    // Headers
    // ---------------------------------------------------------------------------------

    /// @notice Verifies the CometBFT header `header` and its commit, makes the EVM block named
    ///         by its tx0's parent_hash final, and trusts the header. Anyone may call.
    /// @param header The header's fields.
    /// @param commit round (4) || parts total (4) || parts hash (32) || 77-byte votes (see top).
    /// @param tx0 The block's first transaction (TxRaw with MsgNewEthBlock).
    /// @param tx0Proof tx0's Merkle aunts from the leaf up.
    /// @param evmHeader RLP header of the EVM block payload.parent_hash.
    /// @param nextValidators Empty, or the next set (72-byte records) when it changes.
    function submit(
        LightHeader calldata header,
        bytes calldata commit,
        bytes calldata tx0,
        bytes32[] calldata tx0Proof,
        bytes calldata evmHeader,
        bytes calldata nextValidators
    ) external {
        (uint256 state, bytes32 headerHash) = _verifyHeader(header, commit);
        _proveEvmBlock(header.dataHash, tx0, tx0Proof, evmHeader);
        _advance(header, state, headerHash, nextValidators);
    }

    /// @dev Checks the header against the trusted state and its commit; returns the state
    ///      word that trusts it (with the stored set's data contract) and its hash.
    function _verifyHeader(LightHeader calldata header, bytes calldata commit)
        private
        view
        returns (uint256 state, bytes32 headerHash)
    {
        state = _checkHeader(header);
        headerHash = _headerHash(header, _chainId0, _chainId1, _chainIdLength);
        _checkCommit(state, headerHash, uint32(state >> 160), commit);
    }

    /// @dev Makes `header` the trusted header (`state` from _checkHeader), storing its next
    ///      validator set if it changes.
    function _advance(LightHeader calldata header, uint256 state, bytes32 headerHash, bytes calldata nextValidators)
        private
    {
        bytes32 next = header.nextValidatorsHash;
        if (next != header.validatorsHash) {
            state = (state & ~ADDRESS_MASK) | uint160(_storeValidators(nextValidators, next));
            _nextValidatorsHash = next;
        } else {
            if (nextValidators.length != 0) revert UnexpectedValidatorSet();
        }
        _state = state;
        _trustedHash = headerHash;
    }

    /// @dev Proves tx0 under dataHash, checks the EVM header against its parent_hash and
    ///      stores the EVM block as final.
    function _proveEvmBlock(bytes32 dataHash, bytes calldata tx0, bytes32[] calldata tx0Proof, bytes calldata evmHeader)
        private
    {
        (bytes32 parent, uint256 payloadNumber) = _readTx0(tx0, tx0Proof, dataHash);
        (, uint256 number, uint256 timestamp, bytes32 receiptsRoot) = _readEvmHeader(evmHeader, parent);
        if (number + 1 != payloadNumber) revert EvmNumberMismatch(payloadNumber, number);
        _final[parent] = GoatBlockCommitment.hash(number, timestamp, receiptsRoot);
        emit BlockAttested(parent, number, timestamp, receiptsRoot);
    }

    /// @notice Proves final the ancestors of an EVM block already proven final, walking parent
    ///         hashes down from it: for blocks whose proving CometBFT height was skipped or
    ///         passed (submit only moves up). Anyone may call.
    /// @dev headers[0] must hash to a stored block (UnknownGoatBlock otherwise); each following
    ///      header must hash to the parent hash (RLP item 0) of the one before it
    ///      (EvmHeaderMismatch(expected, got)) and carry its number - 1
    ///      (EvmNumberMismatch(childNumber, number)). Each is stored and BlockAttested emitted as
    ///      by submit; a block already stored is left as it is (no event) and the walk goes on.
    /// @param headers RLP headers, newest first: a stored block, then at least one ancestor
    ///        (TooFewHeaders otherwise).
    function proveAncestors(bytes[] calldata headers) external {
        if (uint160(_state) == 0) revert ClientFrozen();
        uint256 count = headers.length;
        if (count < 2) revert TooFewHeaders(count);
        bytes32 hash = _keccak(headers[0]);
        if (_final[hash] == 0) revert UnknownGoatBlock(hash);
        (bytes32 parent, uint256 child,,) = _readEvmHeader(headers[0], hash);
        for (uint256 i = 1; i < count; ++i) {
            (bytes32 grandparent, uint256 number, uint256 timestamp, bytes32 receiptsRoot) =
                _readEvmHeader(headers[i], parent);
            if (number + 1 != child) revert EvmNumberMismatch(child, number);
            if (_final[parent] == 0) {
                _final[parent] = GoatBlockCommitment.hash(number, timestamp, receiptsRoot);
                emit BlockAttested(parent, number, timestamp, receiptsRoot);
            }
            parent = grandparent;
            child = number;
        }
    }

    /// @notice Freezes the client given two commits of the stored validator set for one
    ///         height and two different headers (at least 1/3 of the set equivocated).
    /// @param a One header.
    /// @param commitA Its commit (same encoding as submit's).
    /// @param b The other header.
    /// @param commitB Its commit.
    function submitMisbehaviour(
        LightHeader calldata a,
        bytes calldata commitA,
        LightHeader calldata b,
        bytes calldata commitB
    ) external {
        uint256 st = _state;
        if (uint160(st) == 0) revert ClientFrozen();
        uint256 height = a.height;
        bytes32 c0 = _chainId0;
        bytes32 c1 = _chainId1;
        uint256 clen = _chainIdLength;
        bytes32 hashA = _headerHash(a, c0, c1, clen);
        bytes32 hashB = _headerHash(b, c0, c1, clen);
        if (b.height != height || hashA == hashB) revert NoConflict(height, b.height);
        _checkCommit(st, hashA, height, commitA);
        _checkCommit(st, hashB, height, commitB);
        _state &= ~ADDRESS_MASK;
        emit Frozen(height, hashA, hashB);
    }

    // ---------------------------------------------------------------------------------
    // IGoatHeaderStore
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IGoatHeaderStore
    /// @dev Only blocks stored by submit or proveAncestors count: `signatures` must be empty.
    function verifyBlock(
        bytes32 blockHash,
        uint256 number,
        uint256 timestamp,
        bytes32 receiptsRoot,
        bytes calldata signatures
    ) external view {
        if (uint160(_state) == 0) revert ClientFrozen();
        if (signatures.length != 0) revert SignaturesNotSupported();
        bytes32 stored = _final[blockHash];
        if (stored == 0 || stored != GoatBlockCommitment.hash(number, timestamp, receiptsRoot)) {
            revert UnknownGoatBlock(blockHash);
        }
    }

    /// @notice Whether an EVM block was proven final.
    /// @param blockHash EVM block hash.
    /// @return True if submit or proveAncestors proved it.
    function isKnown(bytes32 blockHash) external view returns (bool) {
        return _final[blockHash] != 0;
    }

    /// @notice The stored commitment keccak256(abi.encode(number, timestamp, receiptsRoot)), or zero.
    /// @param blockHash EVM block hash.
    /// @return The commitment.
    function attestation(bytes32 blockHash) external view returns (bytes32) {
        return _final[blockHash];
    }

    // ---------------------------------------------------------------------------------
    // State views
    // ---------------------------------------------------------------------------------

    /// @notice The trusted header.
    /// @return height Its height.
    /// @return timeNanos Its time in nanoseconds since the Unix epoch.
    /// @return headerHash Its hash.
    /// @return nextValidatorsHash Its next_validators_hash (the stored set's hash).
    /// @return frozen Whether misbehaviour froze the client.
    function trustedState()
        external
        view
        returns (uint256 height, uint256 timeNanos, bytes32 headerHash, bytes32 nextValidatorsHash, bool frozen)
    {
        uint256 st = _state;
        return (uint32(st >> 160), st >> 192, _trustedHash, _nextValidatorsHash, uint160(st) == 0);
    }

    /// @notice The stored validator set (the set that signs the next header).
    /// @return validators Ethereum addresses of the keys, in set order.
    /// @return powers Their voting powers.
    /// @return totalPower The sum.
    function validatorSet()
        external
        view
        returns (address[] memory validators, uint256[] memory powers, uint256 totalPower)
    {
        address pointer = address(uint160(_state));
        uint256 dataSize = DataContract.size(pointer);
        uint256 size = dataSize < 8 ? 0 : (dataSize - 8) / MEMBER_SIZE;
        validators = new address[](size);
        powers = new uint256[](size);
        bytes memory packed = new bytes(size * MEMBER_SIZE + 8);
        uint256 to;
        assembly {
            to := add(packed, 32)
        }
        DataContract.read(pointer, to, 0, packed.length);
        assembly {
            totalPower := shr(192, mload(add(to, mul(size, MEMBER_SIZE))))
        }
        for (uint256 i; i < size; ++i) {
            uint256 word;
            uint256 power;
            assembly {
                let at := add(add(packed, 32), mul(i, MEMBER_SIZE))
                word := shr(96, mload(at))
                power := shr(192, mload(add(at, 20)))
            }
            validators[i] = address(uint160(word));
            powers[i] = power;
        }
    }

    /// @notice The CometBFT chain id.
    /// @return The chain id.
    function chainId() external view returns (string memory) {
        bytes memory out = new bytes(_chainIdLength);
        bytes32 c0 = _chainId0;
        bytes32 c1 = _chainId1;
        assembly {
            mstore(add(out, 32), c0)
            mstore(add(out, 64), c1)
        }
        return string(out);
    }

    // ---------------------------------------------------------------------------------
    // Encoding helpers (views for relayers and tests)
    // ---------------------------------------------------------------------------------

    /// @notice CometBFT Header.Hash of `header` under chain id `chainId_`.
    /// @param chainId_ Chain id (at most 64 bytes here).
    /// @param header The other fields.
    /// @return The header hash.
    function hashHeader(string calldata chainId_, LightHeader calldata header) external view returns (bytes32) {
        (bytes32 c0, bytes32 c1, uint256 clen) = _chainIdWords(chainId_);
        return _headerHash(header, c0, c1, clen);
    }

    /// @notice CometBFT VoteSignBytes: the length-prefixed CanonicalVote. The block id is
    ///         omitted (a NIL vote) when hash, total and parts hash are all zero; otherwise
    ///         both hashes are 32 bytes.
    /// @param chainId_ Chain id (at most 64 bytes here).
    /// @param voteType 1 prevote, 2 precommit (0 omitted).
    /// @param height Height.
    /// @param round Round.
    /// @param blockHash Block id hash.
    /// @param partsTotal Part set header total.
    /// @param partsHash Part set header hash.
    /// @param timeSeconds Vote time, seconds (may be negative: Go's zero time).
    /// @param timeNanos Vote time, nanoseconds.
    /// @return out The sign bytes (the validator signs their sha256).
    function voteSignBytes(
        string calldata chainId_,
        uint8 voteType,
        int64 height,
        int64 round,
        bytes32 blockHash,
        uint32 partsTotal,
        bytes32 partsHash,
        int64 timeSeconds,
        uint32 timeNanos
    ) external pure returns (bytes memory out) {
        (bytes32 c0, bytes32 c1, uint256 clen) = _chainIdWords(chainId_);
        out = new bytes(256);
        uint256 body;
        assembly {
            body := add(out, 34)
        }
        uint256 tsAt = _writeVotePrefix(
            body, voteType, uint64(height), uint64(round), blockHash, partsTotal, partsHash
        );
        uint256 end = _writeVoteTail(tsAt, uint64(timeSeconds), timeNanos, c0, c1, clen);
        uint256 start = _lengthPrefix(body, end);
        assembly {
            let n := sub(end, start)
            // Shift the encoding to the start of `out` (it begins 0..2 bytes in).
            let src := start
            let dst := add(out, 32)
            for { let k := 0 } lt(k, n) { k := add(k, 32) } { mstore(add(dst, k), mload(add(src, k))) }
            mstore(out, n)
        }
    }

    /// @notice CometBFT ValidatorSet.Hash of a set given as 72-byte records x || y || power.
    /// @param validators The records, in set order.
    /// @return The hash.
    function hashValidatorSet(bytes calldata validators) external view returns (bytes32) {
        (bytes32 hash,,) = _parseValidators(validators);
        return hash;
    }

    // ---------------------------------------------------------------------------------
    // Internals: header and commit
    // ---------------------------------------------------------------------------------

    /// @dev Checks `header` against the trusted state; returns the state word that trusts it:
    ///      the stored set's data contract | its height << 160 | its time (ns) << 192.
    function _checkHeader(LightHeader calldata header) private view returns (uint256 state) {
        uint256 st = _state;
        if (uint160(st) == 0) revert ClientFrozen();
        uint256 trustedHeight = uint32(st >> 160);
        uint256 trustedTime = st >> 192;
        uint256 height = header.height;
        if (height <= trustedHeight || height > type(uint32).max) revert HeightNotAfterTrusted(trustedHeight, height);
        if (block.timestamp >= trustedTime / 1e9 + trustingPeriod) {
            revert TrustingPeriodExpired(trustedTime / 1e9, block.timestamp);
        }
        uint256 seconds_ = header.timeSeconds;
        uint256 time = seconds_ * 1e9 + header.timeNanos;
        if (time <= trustedTime) revert HeaderTimeNotAfterTrusted(trustedTime, time);
        if (seconds_ > block.timestamp + MAX_CLOCK_DRIFT) revert HeaderFromFuture(seconds_, block.timestamp);
        state = uint160(st) | (height << 160) | (time << 192);
        bytes32 expected = _nextValidatorsHash;
        if (header.validatorsHash != expected) revert ValidatorSetMismatch(expected, header.validatorsHash);
        if (height == trustedHeight + 1) {
            bytes32 trustedHash = _trustedHash;
            if (header.lastBlockHash != trustedHash) revert LastBlockIdMismatch(trustedHash, header.lastBlockHash);
        }
    }

    /// @dev Header.Hash: the Merkle root of the 14 encoded fields (cdcEncode wrappers; zero
    ///      varints omitted as proto3 does). Fields are read straight from the calldata struct
    ///      (masked to their types).
    function _headerHash(LightHeader calldata h, bytes32 c0, bytes32 c1, uint256 clen)
        private
        view
        returns (bytes32 root)
    {
        uint256 leaves;
        uint256 s;
        uint256 w0;
        uint256 w1;
        assembly {
            leaves := mload(0x40)
            s := add(leaves, 448) // leaf input scratch: 0x00 || field bytes
            mstore(s, 0)
            w0 := and(calldataload(h), 0xffffffffffffffff)
            w1 := and(calldataload(add(h, 32)), 0xffffffffffffffff)
        }
        uint256 p = s + 1;
        // 0: version Consensus{1 block, 2 app}
        _leaf(s, _tagVarint(_tagVarint(p, 0x08, w0), 0x10, w1), leaves);
        // 1: chain id (StringValue)
        _leaf(s, _stringField(p, 0x0a, c0, c1, clen), leaves + 32);
        // 2: height (Int64Value)
        assembly {
            w0 := and(calldataload(add(h, 64)), 0xffffffffffffffff)
        }
        _leaf(s, _tagVarint(p, 0x08, w0), leaves + 64);
        // 3: time (Timestamp{1 seconds, 2 nanos})
        assembly {
            w0 := and(calldataload(add(h, 96)), 0xffffffffffffffff)
            w1 := and(calldataload(add(h, 128)), 0xffffffff)
        }
        _leaf(s, _tagVarint(_tagVarint(p, 0x08, w0), 0x10, w1), leaves + 96);
        // 4: last_block_id BlockID{1 hash, 2 PartSetHeader{1 total, 2 hash}}
        bytes32 hash;
        bytes32 partsHash;
        assembly {
            hash := calldataload(add(h, 160))
            w0 := and(calldataload(add(h, 192)), 0xffffffff)
            partsHash := calldataload(add(h, 224))
        }
        _leaf(s, _blockId(p, hash, w0, partsHash), leaves + 128);
        assembly {
            // 5..12: the eight 32-byte hashes (BytesValue)
            for { let i := 0 } lt(i, 8) { i := add(i, 1) } {
                mstore(s, 0x000a200000000000000000000000000000000000000000000000000000000000)
                mstore(add(s, 3), calldataload(add(h, shl(5, add(i, 8)))))
                if iszero(staticcall(gas(), 2, s, 35, add(leaves, shl(5, add(i, 5))), 32)) { revert(0, 0) }
            }
            // 13: proposer address (BytesValue, 20 bytes)
            mstore(s, 0x000a140000000000000000000000000000000000000000000000000000000000)
            mstore(add(s, 3), shl(96, calldataload(add(h, 512))))
            if iszero(staticcall(gas(), 2, s, 23, add(leaves, 416), 32)) { revert(0, 0) }
        }
        root = _merkleRoot(leaves, 14, s);
    }

    /// @dev sha256 of memory [from, to) into memory at `out`.
    function _leaf(uint256 from, uint256 to, uint256 out) private view {
        assembly {
            if iszero(staticcall(gas(), 2, from, sub(to, from), out, 32)) { revert(0, 0) }
        }
    }

    /// @dev If clen != 0: the tag, clen and the string (c0 || c1, at most 64 bytes) at p.
    ///      Returns the next offset.
    function _stringField(uint256 p, uint256 tag, bytes32 c0, bytes32 c1, uint256 clen)
        private
        pure
        returns (uint256 q)
    {
        assembly {
            q := p
            if clen {
                mstore8(q, tag)
                mstore8(add(q, 1), clen)
                mstore(add(q, 2), c0)
                mstore(add(q, 34), c1)
                q := add(q, add(2, clen))
            }
        }
    }

    /// @dev Writes BlockID{1 hash (32 bytes), 2 PartSetHeader{1 total, 2 hash (32 bytes)}} at p.
    function _blockId(uint256 p, bytes32 hash, uint256 total, bytes32 partsHash) private pure returns (uint256) {
        assembly {
            mstore8(p, 0x0a)
            mstore8(add(p, 1), 0x20)
            mstore(add(p, 2), hash)
            mstore8(add(p, 34), 0x12)
        }
        uint256 q = _tagVarint(p + 36, 0x08, total);
        assembly {
            mstore8(q, 0x12)
            mstore8(add(q, 1), 0x20)
            mstore(add(q, 2), partsHash)
            q := add(q, 34)
            mstore8(add(p, 35), sub(q, add(p, 36)))
        }
        return q;
    }

    /// @dev If v != 0: the tag byte and v as a varint at p. Returns the next offset.
    function _tagVarint(uint256 p, uint256 tag, uint256 v) private pure returns (uint256) {
        if (v == 0) return p;
        assembly {
            mstore8(p, tag)
            p := add(p, 1)
            // Two bytes a round (mstore8 keeps the low byte: or(v, 0x80) is the low 7 bits
            // with the continuation bit).
            for {} gt(v, 0x3fff) {} {
                mstore8(p, or(v, 0x80))
                mstore8(add(p, 1), or(shr(7, v), 0x80))
                v := shr(14, v)
                p := add(p, 2)
            }
            if gt(v, 0x7f) {
                mstore8(p, or(v, 0x80))
                v := shr(7, v)
                p := add(p, 1)
            }
            mstore8(p, v)
            p := add(p, 1)
        }
        return p;
    }

    /// @dev RFC-6962 root of n (>= 1) 32-byte nodes at `nodes` (overwritten), with 65 bytes
    ///      of scratch at `s`. Pairing neighbours level by level and carrying an odd last node
    ///      up gives the same tree as CometBFT's split at the largest power of two below n.
    function _merkleRoot(uint256 nodes, uint256 n, uint256 s) private view returns (bytes32 root) {
        assembly {
            mstore8(s, 1) // inner node prefix; the pairs below are written after it
            for {} gt(n, 1) {} {
                let half := shr(1, n)
                for { let i := 0 } lt(i, half) { i := add(i, 1) } {
                    let at := add(nodes, shl(6, i))
                    mstore(add(s, 1), mload(at))
                    mstore(add(s, 33), mload(add(at, 32)))
                    if iszero(staticcall(gas(), 2, s, 65, add(nodes, shl(5, i)), 32)) { revert(0, 0) }
                }
                if and(n, 1) { mstore(add(nodes, shl(5, half)), mload(add(nodes, shl(5, sub(n, 1))))) }
                n := sub(n, half)
            }
            root := mload(nodes)
        }
    }

    /// @dev CanonicalVote fields 1-4 at p: type, height, round (sfixed64, little-endian) and
    ///      the block id (omitted when all zero). Returns where the timestamp goes.
    function _writeVotePrefix(
        uint256 p,
        uint256 voteType,
        uint256 height,
        uint256 round,
        bytes32 blockHash,
        uint256 partsTotal,
        bytes32 partsHash
    ) private pure returns (uint256) {
        p = _tagVarint(p, 0x08, voteType);
        p = _fixed64(p, 0x11, height);
        p = _fixed64(p, 0x19, round);
        if (blockHash != 0 || partsTotal != 0 || partsHash != 0) {
            uint256 q = _blockId(p + 2, blockHash, partsTotal, partsHash);
            assembly {
                mstore8(p, 0x22)
                mstore8(add(p, 1), sub(q, add(p, 2)))
            }
            p = q;
        }
        return p;
    }

    /// @dev If v != 0: the tag and v as 8 little-endian bytes at p.
    function _fixed64(uint256 p, uint256 tag, uint256 v) private pure returns (uint256) {
        if (v == 0) return p;
        assembly {
            mstore8(p, tag)
            for { let k := 0 } lt(k, 8) { k := add(k, 1) } { mstore8(add(p, add(k, 1)), shr(shl(3, k), v)) }
            p := add(p, 9)
        }
        return p;
    }

    /// @dev CanonicalVote fields 5-6 at p: the timestamp (always present) and the chain id.
    function _writeVoteTail(uint256 p, uint256 seconds_, uint256 nanos, bytes32 c0, bytes32 c1, uint256 clen)
        private
        pure
        returns (uint256 q)
    {
        q = _tagVarint(_tagVarint(p + 2, 0x08, seconds_), 0x10, nanos);
        assembly {
            mstore8(p, 0x2a)
            mstore8(add(p, 1), sub(q, add(p, 2)))
        }
        q = _stringField(q, 0x32, c0, c1, clen);
    }

    /// @dev Writes the varint length of [body, end) just before body (1 or 2 bytes: the
    ///      body is shorter than 16384 bytes); returns where the sign bytes start.
    function _lengthPrefix(uint256 body, uint256 end) private pure returns (uint256 start) {
        assembly {
            let n := sub(end, body)
            switch lt(n, 0x80)
            case 1 {
                start := sub(body, 1)
                mstore8(start, n)
            }
            default {
                start := sub(body, 2)
                mstore8(start, or(and(n, 0x7f), 0x80))
                mstore8(add(start, 1), shr(7, n))
            }
        }
    }

    /// @dev Reverts unless the votes in `commit` hold > 2/3 of the power of the set stored
    ///      in the data contract named by the state word `state` for the block `headerHash` at
    ///      `height`.
    function _checkCommit(uint256 state, bytes32 headerHash, uint256 height, bytes calldata commit) private view {
        uint256 length = commit.length;
        if (length < COMMIT_HEAD || (length - COMMIT_HEAD) % VOTE_SIZE != 0) revert MalformedCommit(length);
        address pointer = address(uint160(state));
        uint256 m;
        uint256 size;
        uint256 total;
        uint256 dataSize = DataContract.size(pointer);
        assembly {
            m := mload(0x40)
        }
        // The data: members (28 bytes each, at most 64) || total (8). Members at m, then the
        // total; later the ecrecover input at m + 0x700 and the sign bytes' body at m + 0x782
        // (2 bytes before it for the length).
        DataContract.read(pointer, m, 0, dataSize);
        assembly {
            size := div(sub(dataSize, 8), MEMBER_SIZE)
            total := shr(192, mload(add(m, mul(size, MEMBER_SIZE))))
        }
        uint256 body = m + 0x782;
        uint256 tsAt = _commitPrefix(body, headerHash, height, commit);
        uint256 signed = _tally(m, tsAt, size, commit);
        if (signed <= total * 2 / 3) revert InsufficientVotingPower(signed, total);
    }

    /// @dev Writes the votes' common CanonicalVote fields (precommit, height, the commit's
    ///      round, the block id) at body; returns where the timestamp goes.
    function _commitPrefix(uint256 body, bytes32 headerHash, uint256 height, bytes calldata commit)
        private
        pure
        returns (uint256)
    {
        uint256 round;
        uint256 partsTotal;
        bytes32 partsHash;
        assembly {
            let head := calldataload(commit.offset)
            round := shr(224, head)
            partsTotal := and(shr(192, head), 0xffffffff)
            partsHash := calldataload(add(commit.offset, 8))
        }
        return _writeVotePrefix(body, 2, height, round, headerHash, partsTotal, partsHash);
    }

    /// @dev Verifies each vote against the member list at `m` (the sign bytes' common part
    ///      is written at m + 0x782, the timestamp goes at tsAt); returns the power that
    ///      signed. Per vote: the timestamp (_tagVarint) and the chain id (copied from m +
    ///      0x900) complete the CanonicalVote, its varint length goes in front (as
    ///      _lengthPrefix, inlined: this loop is the hot path), sha256 is the digest (at m +
    ///      0x700), ecrecover the signer.
    function _tally(uint256 m, uint256 tsAt, uint256 size, bytes calldata commit) private view returns (uint256 signed) {
        _chainIdField(m);
        uint256 seen;
        uint256 at;
        uint256 end;
        assembly {
            mstore8(tsAt, 0x2a) // CanonicalVote.timestamp's tag; its length goes after it
            at := add(commit.offset, COMMIT_HEAD)
            end := add(commit.offset, commit.length)
        }
        while (at < end) {
            uint256 index;
            uint256 w;
            uint256 q;
            assembly {
                w := calldataload(at)
                index := byte(0, w)
            }
            if (index >= size) revert VoteIndexOutOfRange(index, size);
            if ((seen >> index) & 1 != 0) revert DuplicateVote(index);
            seen |= 1 << index;
            assembly {
                q := gt(and(calldataload(add(at, 45)), not(shl(255, 1))), HALF_N)
            }
            if (q != 0) revert HighS(index);
            unchecked {
                q = _tagVarint(_tagVarint(tsAt + 2, 0x08, uint64(w >> 184)), 0x10, uint32(w >> 152));
            }
            assembly {
                mstore8(add(tsAt, 1), sub(q, add(tsAt, 2)))
                let tpl := add(m, 0x900)
                mstore(q, mload(tpl))
                mstore(add(q, 32), mload(add(tpl, 32)))
                q := add(q, mload(add(m, 0x8e0)))
                let body := add(m, 0x782)
                let n := sub(q, body)
                let start := sub(body, 1)
                switch lt(n, 0x80)
                case 1 { mstore8(start, n) }
                default {
                    start := sub(body, 2)
                    mstore8(start, or(n, 0x80))
                    mstore8(add(start, 1), shr(7, n))
                }
                let e := add(m, 0x700)
                if iszero(staticcall(gas(), 2, start, sub(q, start), e, 32)) { revert(0, 0) }
                // ecrecover(digest, v from bit 255 of vs, r, s).
                let vs := calldataload(add(at, 45))
                mstore(add(e, 32), add(27, shr(255, vs)))
                mstore(add(e, 64), calldataload(add(at, 13)))
                mstore(add(e, 96), and(vs, not(shl(255, 1))))
                mstore(0, 0)
                if iszero(staticcall(gas(), 1, e, 128, 0, 32)) { revert(0, 0) }
                q := mload(0)
                w := mload(add(m, mul(index, MEMBER_SIZE))) // address (20) || power (8)
                signed := add(signed, shr(192, shl(160, w)))
                at := add(at, VOTE_SIZE)
            }
            if (q != w >> 96) revert BadVoteSignature(index, address(uint160(q)));
        }
    }

    /// @dev Writes the CanonicalVote chain id field (6) at m + 0x900 and its length at m + 0x8e0.
    function _chainIdField(uint256 m) private view {
        bytes32 c0 = _chainId0;
        bytes32 c1 = _chainId1;
        uint256 clen = _chainIdLength;
        assembly {
            let tpl := add(m, 0x900)
            mstore8(tpl, 0x32)
            mstore8(add(tpl, 1), clen)
            mstore(add(tpl, 2), c0)
            mstore(add(tpl, 34), c1)
            mstore(add(m, 0x8e0), add(clen, 2))
        }
    }

    // ---------------------------------------------------------------------------------
    // Internals: tx0 and the EVM header
    // ---------------------------------------------------------------------------------

    /// @dev Proves tx0 at index 0 under `dataHash` and returns its payload's parent_hash and
    ///      block_number.
    function _readTx0(bytes calldata tx0, bytes32[] calldata proof, bytes32 dataHash)
        private
        view
        returns (bytes32 parent, uint256 payloadNumber)
    {
        bytes32 node;
        assembly {
            let m := mload(0x40)
            calldatacopy(add(m, 1), tx0.offset, tx0.length)
            if iszero(staticcall(gas(), 2, add(m, 1), tx0.length, add(m, 1), 32)) { revert(0, 0) }
            mstore8(m, 0)
            if iszero(staticcall(gas(), 2, m, 33, 0, 32)) { revert(0, 0) }
            node := mload(0)
            mstore8(m, 1)
            for { let i := 0 } lt(i, proof.length) { i := add(i, 1) } {
                mstore(add(m, 1), node)
                mstore(add(m, 33), calldataload(add(proof.offset, shl(5, i))))
                if iszero(staticcall(gas(), 2, m, 65, 0, 32)) { revert(0, 0) }
                node := mload(0)
            }
        }
        if (node != dataHash) revert DataHashMismatch(dataHash, node);
        uint256 base;
        uint256 end;
        assembly {
            base := tx0.offset
            end := add(tx0.offset, tx0.length)
        }
        return _parseTx0(base, end);
    }

    /// @dev Strict parse of TxRaw -> TxBody.messages[0] -> Any -> MsgNewEthBlock ->
    ///      ExecutionPayload, in place in calldata [base, end). Reverts MalformedProtobuf with
    ///      the offending field's offset from tx0's start, or UnexpectedTypeUrl.
    function _parseTx0(uint256 base, uint256 end) private pure returns (bytes32 parent, uint256 payloadNumber) {
        assembly {
            function bad(p, b) {
                mstore(0, MALFORMED_PROTOBUF)
                mstore(4, sub(p, b))
                revert(0, 36)
            }
            // A varint of at most 10 bytes at p, before e.
            function rv(p, e, b) -> v, q {
                if iszero(lt(p, e)) { bad(p, b) }
                v := byte(0, calldataload(p))
                q := add(p, 1)
                if gt(v, 0x7f) {
                    v := and(v, 0x7f)
                    let shift := 7
                    for {} 1 {} {
                        if iszero(lt(q, e)) { bad(p, b) }
                        let y := byte(0, calldataload(q))
                        q := add(q, 1)
                        v := or(v, shl(shift, and(y, 0x7f)))
                        if lt(y, 0x80) { break }
                        shift := add(shift, 7)
                        if gt(shift, 63) { bad(p, b) }
                    }
                }
            }
            // One field at p: number, wire type, value start, next field, varint value.
            function fld(p, e, b) -> f, wt, start, next, value {
                let tg
                tg, start := rv(p, e, b)
                f := shr(3, tg)
                wt := and(tg, 7)
                if or(iszero(f), gt(f, 0x1fffffff)) { bad(p, b) }
                switch wt
                case 0 { value, next := rv(start, e, b) }
                case 2 {
                    let len
                    len, start := rv(start, e, b)
                    next := add(start, len)
                }
                case 1 { next := add(start, 8) }
                case 5 { next := add(start, 4) }
                default { bad(p, b) }
                if gt(next, e) { bad(p, b) }
            }
            // The length-delimited field `want` at p, or revert.
            function expect(p, e, b, want) -> start, next {
                let f, wt, s, n, v := fld(p, e, b)
                if or(iszero(eq(f, want)), iszero(eq(wt, 2))) { bad(p, b) }
                start := s
                next := n
            }
            // ExecutionPayload: ascending field numbers (only 14 and 24 repeat), known wire
            // types; parent_hash (1, 32 bytes, required) and block_number (7). One-byte tags
            // and lengths (the common case) are read inline.
            function payload(p, e, b) -> parentHash, blockNumber {
                let last := 0
                let have := 0
                for {} lt(p, e) {} {
                    let f := byte(0, calldataload(p))
                    let q := add(p, 1)
                    if gt(f, 0x7f) { f, q := rv(p, e, b) }
                    let wt := and(f, 7)
                    f := shr(3, f)
                    if or(or(iszero(f), gt(f, 0x1fffffff)), or(lt(f, last), and(eq(f, last), iszero(and(shr(f, PAYLOAD_REPEATED), 1))))) {
                        bad(p, b)
                    }
                    let n
                    switch wt
                    case 2 {
                        if and(shr(f, PAYLOAD_VARINTS), 1) { bad(p, b) }
                        let len := byte(0, calldataload(q))
                        switch lt(len, 0x80)
                        case 1 { q := add(q, 1) }
                        default { len, q := rv(q, e, b) }
                        n := add(q, len)
                        if eq(f, 1) {
                            if iszero(eq(len, 32)) { bad(p, b) }
                            parentHash := calldataload(q)
                            have := 1
                        }
                    }
                    case 0 {
                        if and(shr(f, PAYLOAD_BYTES), 1) { bad(p, b) }
                        let v
                        v, n := rv(q, e, b)
                        if eq(f, 7) { blockNumber := v }
                    }
                    case 1 {
                        if and(shr(f, or(PAYLOAD_VARINTS, PAYLOAD_BYTES)), 1) { bad(p, b) }
                        n := add(q, 8)
                    }
                    case 5 {
                        if and(shr(f, or(PAYLOAD_VARINTS, PAYLOAD_BYTES)), 1) { bad(p, b) }
                        n := add(q, 4)
                    }
                    default { bad(p, b) }
                    if gt(n, e) { bad(p, b) }
                    last := f
                    p := n
                }
                if iszero(have) { bad(e, b) }
            }
            // TxRaw {1 body_bytes, 2 auth_info_bytes, 3 repeated signatures}: body first.
            let body, p := expect(base, end, base, 1)
            let bodyEnd := p
            {
                let last := 1
                for {} lt(p, end) {} {
                    let f, wt, s, n, v := fld(p, end, base)
                    if or(or(iszero(eq(wt, 2)), or(lt(f, 2), gt(f, 3))), or(lt(f, last), and(eq(f, last), eq(f, 2)))) {
                        bad(p, base)
                    }
                    last := f
                    p := n
                }
            }
            // TxBody: messages[0] is the first field. Any {1 type_url, 2 value}, exactly.
            let any, anyEnd := expect(body, bodyEnd, base, 1)
            let url, q := expect(any, anyEnd, base, 1)
            if or(iszero(eq(sub(q, url), TYPE_URL_LENGTH)), iszero(eq(shr(32, calldataload(url)), shr(32, TYPE_URL_WORD)))) {
                let word := calldataload(url)
                if lt(sub(q, url), 32) { word := and(word, not(shr(shl(3, sub(q, url)), not(0)))) }
                mstore(0, UNEXPECTED_TYPE_URL)
                mstore(4, word)
                revert(0, 36)
            }
            let value, valueEnd := expect(q, anyEnd, base, 2)
            if iszero(eq(valueEnd, anyEnd)) { bad(q, base) }
            // MsgNewEthBlock {1 proposer, 2 payload}, exactly.
            let f, wt, s, n, v := fld(value, valueEnd, base)
            if and(eq(f, 1), eq(wt, 2)) { f, wt, s, n, v := fld(n, valueEnd, base) }
            if or(or(iszero(eq(f, 2)), iszero(eq(wt, 2))), iszero(eq(n, valueEnd))) { bad(value, base) }
            parent, payloadNumber := payload(s, n, base)
        }
    }

    /// @dev Checks keccak256(rlp) == expectedHash (EvmHeaderMismatch otherwise) and reads the
    ///      parent hash (item 0), receipts root (5), number (8) and timestamp (11) from the
    ///      header list, in place. Every item is bounded by the list's end (MalformedEvmHeader
    ///      otherwise); the encoding is fixed by the hash.
    function _readEvmHeader(bytes calldata rlp, bytes32 expectedHash)
        private
        pure
        returns (bytes32 parentHash, uint256 blockNumber, uint256 blockTime, bytes32 receiptsRoot)
    {
        bytes32 hash;
        uint256 begin;
        uint256 end;
        assembly {
            begin := rlp.offset
            end := add(begin, rlp.length)
            let m := mload(0x40)
            calldatacopy(m, begin, rlp.length)
            hash := keccak256(m, rlp.length)
        }
        if (hash != expectedHash) revert EvmHeaderMismatch(expectedHash, hash);
        // Items are decoded without RlpCalldata's bound (OPEN) and checked against the list's
        // end here, so that a bad header reverts with MalformedEvmHeader.
        (bool isList, uint256 p, uint256 len) = RlpCalldata.item(begin, OPEN);
        if (!isList || p + len != end) revert MalformedEvmHeader(0);
        unchecked {
            // Lengths are below 2^64 and calldata offsets far below: no sum here can wrap.
            // Item 0, the parent hash: a 32-byte string (prefix 0xa0).
            uint256 bad;
            assembly {
                bad := or(gt(add(p, 33), end), iszero(eq(byte(0, calldataload(p)), 0xa0)))
                parentHash := calldataload(add(p, 1))
            }
            if (bad != 0) revert MalformedEvmHeader(p);
            p += 33;
            for (uint256 i = 1; i < 12; ++i) {
                uint256 at = p;
                (isList, p, len) = RlpCalldata.item(at, OPEN);
                uint256 start = p;
                p += len;
                if (p > end) revert MalformedEvmHeader(at);
                // The receipts root (item 5, 32 bytes), number (8) and timestamp (11) are strings.
                if ((0x920 >> i) & 1 != 0) {
                    if (isList || len > 32) revert MalformedEvmHeader(at);
                    uint256 v = RlpCalldata.loadBE(start, len);
                    if (i == 5) {
                        if (len != 32) revert MalformedEvmHeader(at);
                        receiptsRoot = bytes32(v);
                    } else if (i == 8) {
                        blockNumber = v;
                    } else {
                        blockTime = v;
                    }
                }
            }
        }
    }

    /// @dev keccak256 of calldata bytes (copied to free memory, which is not claimed).
    function _keccak(bytes calldata data) private pure returns (bytes32 hash) {
        assembly {
            let m := mload(0x40)
            calldatacopy(m, data.offset, data.length)
            hash := keccak256(m, data.length)
        }
    }

    // ---------------------------------------------------------------------------------
    // Internals: validator sets
    // ---------------------------------------------------------------------------------

    /// @dev Proves `records` against `expected` and stores the set in a new data contract;
    ///      returns its address.
    function _storeValidators(bytes memory records, bytes32 expected) private returns (address pointer) {
        (bytes32 hash, bytes memory blob, uint256 total) = _parseValidators(records);
        if (hash != expected) revert ValidatorSetHashMismatch(expected, hash);
        uint256 size = (blob.length - 8) / MEMBER_SIZE;
        pointer = DataContract.write(blob);
        if (pointer == address(0)) revert ValidatorSetStorageFailed();
        emit ValidatorSetUpdated(hash, size, total);
    }

    /// @dev The CometBFT hash of a set of 72-byte records (x || y || power), the data
    ///      contract's data (address (20) || power (8) per validator, then the total power
    ///      (8)) and the total power. Keys must be on the curve (so that the stored address is the key's: with a
    ///      made-up y of the right parity the hash would still match), powers in
    ///      1..int64 max with a total of at most CometBFT's MaxTotalVotingPower, keys distinct.
    function _parseValidators(bytes memory records)
        private
        view
        returns (bytes32 hash, bytes memory blob, uint256 total)
    {
        uint256 length = records.length;
        uint256 n = length / RECORD_SIZE;
        if (length % RECORD_SIZE != 0 || n == 0 || n > MAX_VALIDATORS) revert InvalidValidatorSetLength(length);
        blob = new bytes(n * MEMBER_SIZE + 40); // the total and slack for whole-word writes
        bytes memory leaves = new bytes(n * 32);
        bytes memory scratch = new bytes(128);
        uint256 s;
        assembly {
            s := add(scratch, 32)
        }
        for (uint256 i; i < n; ++i) {
            uint256 x;
            uint256 y;
            uint256 power;
            uint256 account;
            assembly {
                let rec := add(add(records, 32), mul(i, RECORD_SIZE))
                x := mload(rec)
                y := mload(add(rec, 32))
                power := shr(192, mload(add(rec, 64)))
                account := and(keccak256(rec, 64), ADDRESS_MASK)
            }
            if (x >= FIELD_P || y >= FIELD_P || mulmod(y, y, FIELD_P) != addmod(mulmod(mulmod(x, x, FIELD_P), x, FIELD_P), 7, FIELD_P)) {
                revert KeyNotOnCurve(i);
            }
            total += power;
            if (power == 0 || power > uint64(type(int64).max) || total > uint64(type(int64).max) / 8) {
                revert InvalidVotingPower(i);
            }
            for (uint256 j; j < i; ++j) {
                uint256 other;
                assembly {
                    other := shr(96, mload(add(add(blob, 32), mul(j, MEMBER_SIZE))))
                }
                if (other == account) revert DuplicateValidator(address(uint160(account)));
            }
            uint256 p;
            assembly {
                mstore(add(add(blob, 32), mul(i, MEMBER_SIZE)), or(shl(96, account), shl(32, power)))
                // SimpleValidator{1 PublicKey{2 secp256k1: 33 bytes}, 2 voting_power}
                mstore(s, 0x000a231221000000000000000000000000000000000000000000000000000000)
                mstore8(add(s, 5), add(2, and(y, 1)))
                mstore(add(s, 6), x)
            }
            p = _tagVarint(s + 38, 0x10, power);
            assembly {
                if iszero(staticcall(gas(), 2, s, sub(p, s), add(add(leaves, 32), shl(5, i)), 32)) { revert(0, 0) }
            }
        }
        uint256 nodes;
        assembly {
            nodes := add(leaves, 32)
            // The total power after the members: the data is members || total.
            mstore(add(add(blob, 32), mul(n, MEMBER_SIZE)), shl(192, total))
            mstore(blob, add(8, mul(n, MEMBER_SIZE)))
        }
        hash = _merkleRoot(nodes, n, s);
    }

    // ---------------------------------------------------------------------------------
    // Internals: misc
    // ---------------------------------------------------------------------------------

    /// @dev A chain id of at most 64 bytes as two left-aligned words and its length.
    function _chainIdWords(string calldata id) private pure returns (bytes32 c0, bytes32 c1, uint256 clen) {
        clen = bytes(id).length;
        if (clen > 64) revert InvalidConfiguration();
        bytes memory padded = new bytes(64);
        assembly {
            calldatacopy(add(padded, 32), id.offset, clen)
            c0 := mload(add(padded, 32))
            c1 := mload(add(padded, 64))
        }
    }
}
