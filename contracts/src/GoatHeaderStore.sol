// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IGoatHeaderStore} from "./interfaces/IGoatHeaderStore.sol";
import {DataContract} from "./lib/DataContract.sol";
import {GoatBlockCommitment} from "./lib/GoatBlockCommitment.sol";

/*
 * GoatHeaderStore: GOAT Network blocks attested by an M-of-N committee.
 *
 * What the committee signs: the EIP-712 message
 *     GoatBlock(uint256 goatChainId, uint256 number, uint256 timestamp, bytes32 blockHash,
 *               bytes32 receiptsRoot)
 * in the domain {name "gmrelay GoatHeaderStore", version "2", chainId = Metis's chain id,
 * verifyingContract = this contract}. The digest therefore names the GOAT chain, the Metis
 * chain and this contract: a signature for another deployment or chain is worthless here.
 * Members check all five fields against their own GOAT node before signing.
 *
 * Two ways to use an attestation:
 *   - inline: PaymentSettlement passes the block's fields and the signatures to verifyBlock
 *     (a view) inside the settlement, so a single payment in a block needs one transaction
 *     and nothing is stored for the block;
 *   - stored: attestBlock verifies once and keeps keccak256(number, timestamp, receiptsRoot)
 *     under the block hash (one fresh slot), so later payments in that block pass an empty
 *     signature list.
 *
 * Signatures: packed 65-byte (r, s, v) entries, v in {27, 28}, s <= n/2 (no malleable
 * twin), ordered by strictly ascending signer address. The order makes the signer list a
 * set: a duplicate breaks the order, so no bitmap is needed, and every member is looked up
 * in the committee list read with one EXTCODECOPY.
 *
 * The committee (addresses) lives in the code of a small data contract written once per
 * committee; its address, threshold, size and update nonce share one storage slot.
 * Committee changes are signed by a quorum of the CURRENT committee over
 *     CommitteeUpdate(address[] members, uint256 threshold, uint256 nonce, uint256 deadline)
 * with nonce equal to the number of updates so far (strict order, no replay) and a deadline
 * (unix time, Metis clock) after which the signed update can no longer be submitted: an
 * abandoned update cannot be brought back later by whoever holds it.
 */

/// @title GoatHeaderStore
/// @author gmrelay
/// @notice GOAT Network block attestations (receipts roots and times) by an M-of-N committee.
contract GoatHeaderStore is IGoatHeaderStore {
    // ---------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------

    /// @notice EIP-712 type hash of a block attestation.
    bytes32 public constant GOAT_BLOCK_TYPEHASH = keccak256(
        "GoatBlock(uint256 goatChainId,uint256 number,uint256 timestamp,bytes32 blockHash,bytes32 receiptsRoot)"
    );

    /// @notice EIP-712 type hash of a committee update.
    bytes32 public constant COMMITTEE_UPDATE_TYPEHASH =
        keccak256("CommitteeUpdate(address[] members,uint256 threshold,uint256 nonce,uint256 deadline)");

    /// @notice EIP-712 domain type hash.
    bytes32 public constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice EIP-712 domain name.
    string public constant NAME = "gmrelay GoatHeaderStore";

    /// @notice EIP-712 domain version.
    string public constant VERSION = "2";

    /// @notice Largest committee.
    uint256 public constant MAX_COMMITTEE_SIZE = 64;

    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    // ---------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------

    /// @notice The GOAT chain id the attestations name.
    uint256 public immutable goatChainId;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    /// @dev data contract (160) | threshold (16) << 160 | size (16) << 176 | nonce (64) << 192.
    uint256 private _committee;

    /// @dev blockHash => keccak256(abi.encode(number, timestamp, receiptsRoot)).
    mapping(bytes32 blockHash => bytes32 commitment) private _attested;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice A block attestation was stored.
    /// @param blockHash GOAT block hash.
    /// @param number Block number.
    /// @param timestamp Header timestamp.
    /// @param receiptsRoot Receipts root.
    event BlockAttested(bytes32 indexed blockHash, uint256 number, uint256 timestamp, bytes32 receiptsRoot);

    /// @notice The committee changed.
    /// @param nonce Update number (0 at deployment).
    /// @param members New members.
    /// @param threshold New quorum.
    event CommitteeUpdated(uint256 indexed nonce, address[] members, uint256 threshold);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice Fewer signatures than the threshold.
    error TooFewAttestations(uint256 got, uint256 need);

    /// @notice The signature list is not a whole number of 65-byte entries.
    error InvalidSignaturesLength(uint256 length);

    /// @notice A signer is not in the committee.
    error NotACommitteeMember(address signer);

    /// @notice The same signer appears twice.
    error DuplicateAttester(address signer);

    /// @notice Signers must be in strictly ascending address order.
    error SignersNotSorted(uint256 index);

    /// @notice Signature `index` has s > n/2.
    error SignatureMalleable(uint256 index);

    /// @notice Signature `index` has v other than 27 or 28.
    error InvalidSignatureV(uint256 index, uint8 v);

    /// @notice Signature `index` does not recover to an address.
    error InvalidSignature(uint256 index);

    /// @notice The block is already attested.
    error BlockAlreadyAttested(bytes32 blockHash);

    /// @notice No stored attestation matches these block fields.
    error UnknownGoatBlock(bytes32 blockHash);

    /// @notice A zero block hash or receipts root.
    error InvalidBlock();

    /// @notice The committee update uses another nonce.
    error BadCommitteeNonce(uint256 expected, uint256 got);

    /// @notice The committee update's deadline has passed.
    error UpdateExpired(uint256 deadline, uint256 timestamp);

    /// @notice Committee size out of 1..=MAX_COMMITTEE_SIZE.
    error InvalidCommitteeSize(uint256 size);

    /// @notice Threshold out of 1..=size.
    error InvalidThreshold(uint256 threshold, uint256 size);

    /// @notice A zero member address.
    error ZeroMember(uint256 index);

    /// @notice A member listed twice.
    error DuplicateMember(address member);

    /// @notice Writing the committee's data contract failed.
    error CommitteeStorageFailed();

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the store with its first committee.
    /// @param members Committee members (distinct, non-zero, at most MAX_COMMITTEE_SIZE).
    /// @param threshold_ Signatures required (1..=members.length).
    /// @param goatChainId_ The GOAT chain id attestations name.
    constructor(address[] memory members, uint256 threshold_, uint256 goatChainId_) {
        goatChainId = goatChainId_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        _setCommittee(members, threshold_, 0);
    }

    // ---------------------------------------------------------------------------------
    // Attestations
    // ---------------------------------------------------------------------------------

    /// @notice Verifies and stores a block attestation for later settlements. Anyone may call.
    /// @param blockHash GOAT block hash.
    /// @param number Its number.
    /// @param timestamp Its header timestamp.
    /// @param receiptsRoot Its receipts root.
    /// @param signatures Packed 65-byte committee signatures, ascending signer order.
    function attestBlock(
        bytes32 blockHash,
        uint256 number,
        uint256 timestamp,
        bytes32 receiptsRoot,
        bytes calldata signatures
    ) external {
        if (blockHash == 0 || receiptsRoot == 0) revert InvalidBlock();
        if (_attested[blockHash] != 0) revert BlockAlreadyAttested(blockHash);
        _verifyQuorum(hashGoatBlock(blockHash, number, timestamp, receiptsRoot), signatures);
        _attested[blockHash] = GoatBlockCommitment.hash(number, timestamp, receiptsRoot);
        emit BlockAttested(blockHash, number, timestamp, receiptsRoot);
    }

    /// @inheritdoc IGoatHeaderStore
    function verifyBlock(
        bytes32 blockHash,
        uint256 number,
        uint256 timestamp,
        bytes32 receiptsRoot,
        bytes calldata signatures
    ) external view {
        if (signatures.length == 0) {
            bytes32 stored = _attested[blockHash];
            if (stored == 0 || stored != GoatBlockCommitment.hash(number, timestamp, receiptsRoot)) {
                revert UnknownGoatBlock(blockHash);
            }
            return;
        }
        if (blockHash == 0 || receiptsRoot == 0) revert InvalidBlock();
        _verifyQuorum(hashGoatBlock(blockHash, number, timestamp, receiptsRoot), signatures);
    }

    /// @notice Whether a block attestation is stored.
    /// @param blockHash GOAT block hash.
    /// @return True if attestBlock stored it.
    function isKnown(bytes32 blockHash) external view returns (bool) {
        return _attested[blockHash] != 0;
    }

    /// @notice The stored commitment keccak256(abi.encode(number, timestamp, receiptsRoot)), or zero.
    /// @param blockHash GOAT block hash.
    /// @return The commitment.
    function attestation(bytes32 blockHash) external view returns (bytes32) {
        return _attested[blockHash];
    }

    /// @notice The EIP-712 digest the committee signs for a block.
    /// @param blockHash GOAT block hash.
    /// @param number Its number.
    /// @param timestamp Its header timestamp.
    /// @param receiptsRoot Its receipts root.
    /// @return The digest.
    function hashGoatBlock(bytes32 blockHash, uint256 number, uint256 timestamp, bytes32 receiptsRoot)
        public
        view
        returns (bytes32)
    {
        return _hashTypedData(
            keccak256(abi.encode(GOAT_BLOCK_TYPEHASH, goatChainId, number, timestamp, blockHash, receiptsRoot))
        );
    }

    // ---------------------------------------------------------------------------------
    // Committee
    // ---------------------------------------------------------------------------------

    /// @notice Replaces the committee; signed by a quorum of the current one.
    /// @param members New members.
    /// @param newThreshold New quorum.
    /// @param nonce Must equal committeeNonce().
    /// @param deadline Last unix time (Metis clock) at which the update may be submitted.
    /// @param signatures Packed 65-byte signatures of current members, ascending signer order.
    function updateCommittee(
        address[] calldata members,
        uint256 newThreshold,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signatures
    ) external {
        uint256 current = uint64(_committee >> 192);
        if (nonce != current) revert BadCommitteeNonce(current, nonce);
        if (block.timestamp > deadline) revert UpdateExpired(deadline, block.timestamp);
        _verifyQuorum(hashCommitteeUpdate(members, newThreshold, nonce, deadline), signatures);
        _setCommittee(members, newThreshold, nonce + 1);
    }

    /// @notice The EIP-712 digest of a committee update.
    /// @param members New members.
    /// @param newThreshold New quorum.
    /// @param nonce Update number.
    /// @param deadline Last submission time.
    /// @return The digest.
    function hashCommitteeUpdate(address[] calldata members, uint256 newThreshold, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        // EIP-712 encodes address[] as keccak256 of the 32-byte-padded elements.
        return _hashTypedData(
            keccak256(
                abi.encode(
                    COMMITTEE_UPDATE_TYPEHASH, keccak256(abi.encodePacked(members)), newThreshold, nonce, deadline
                )
            )
        );
    }

    /// @notice The current committee.
    /// @return members Members in the order given at their update.
    /// @return quorum Signatures required.
    /// @return nonce Updates so far.
    function committee() external view returns (address[] memory members, uint256 quorum, uint256 nonce) {
        uint256 c = _committee;
        quorum = uint16(c >> 160);
        nonce = uint64(c >> 192);
        bytes memory packed = _loadMembers(c);
        uint256 size = packed.length / 20;
        members = new address[](size);
        for (uint256 i; i < size; ++i) {
            address member;
            assembly {
                member := shr(96, mload(add(add(packed, 32), mul(i, 20))))
            }
            members[i] = member;
        }
    }

    /// @notice Whether `account` is a current member.
    /// @param account Address.
    /// @return True if a member.
    function isCommitteeMember(address account) external view returns (bool) {
        bytes memory packed = _loadMembers(_committee);
        uint256 size = packed.length / 20;
        for (uint256 i; i < size; ++i) {
            address member;
            assembly {
                member := shr(96, mload(add(add(packed, 32), mul(i, 20))))
            }
            if (member == account) return true;
        }
        return false;
    }

    /// @notice Committee updates so far (the nonce the next update must use).
    /// @return The nonce.
    function committeeNonce() external view returns (uint256) {
        return uint64(_committee >> 192);
    }

    /// @notice Signatures required.
    /// @return The threshold.
    function threshold() external view returns (uint256) {
        return uint16(_committee >> 160);
    }

    /// @notice The EIP-712 domain separator (recomputed if the chain id changed).
    /// @return The separator.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    // ---------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------

    /// @dev Reverts unless `signatures` holds at least `threshold` valid member signatures of
    ///      `digest` in strictly ascending signer order.
    function _verifyQuorum(bytes32 digest, bytes calldata signatures) private view {
        uint256 c = _committee;
        uint256 length = signatures.length;
        if (length % 65 != 0) revert InvalidSignaturesLength(length);
        uint256 need = uint16(c >> 160);
        if (length / 65 < need) revert TooFewAttestations(length / 65, need);
        (uint256 failure, uint256 index, uint256 detail) = _checkSignatures(c, digest, signatures);
        if (failure != 0) {
            if (failure == 2) revert SignatureMalleable(index);
            if (failure == 3) revert InvalidSignatureV(index, uint8(detail));
            if (failure == 4) revert InvalidSignature(index);
            if (failure == 5) revert NotACommitteeMember(address(uint160(detail)));
            if (failure == 6) revert DuplicateAttester(address(uint160(detail)));
            revert SignersNotSorted(index);
        }
    }

    function _checkSignatures(uint256 c, bytes32 digest, bytes calldata signatures)
        private
        view
        returns (uint256 failure, uint256 index, uint256 detail)
    {
        uint256 size = uint16(c >> 176);
        uint256 members;
        assembly ("memory-safe") {
            members := mload(0x40)
        }
        unchecked {
            DataContract.read(address(uint160(c)), members, 0, size * 20);
        }
        assembly ("memory-safe") {
            // ecrecover input after the member list (at most 64 * 20 bytes).
            let scratch := add(members, 0x520)
            let membersEnd := add(members, mul(size, 20))
            let previous := 0
            let count := div(signatures.length, 65)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                index := i
                let sig := add(signatures.offset, mul(i, 65))
                let s := calldataload(add(sig, 32))
                if gt(s, HALF_N) {
                    failure := 2
                    break
                }
                let v := byte(0, calldataload(add(sig, 64)))
                if iszero(or(eq(v, 27), eq(v, 28))) {
                    failure := 3
                    detail := v
                    break
                }
                mstore(scratch, digest)
                mstore(add(scratch, 32), v)
                mstore(add(scratch, 64), calldataload(sig))
                mstore(add(scratch, 96), s)
                mstore(0, 0)
                if iszero(staticcall(gas(), 1, scratch, 128, 0, 32)) { revert(0, 0) }
                let signer := mload(0)
                if iszero(signer) {
                    failure := 4
                    break
                }
                detail := signer
                if iszero(gt(signer, previous)) {
                    failure := 7
                    if eq(signer, previous) { failure := 6 }
                    break
                }
                previous := signer
                let k := members
                for {} lt(k, membersEnd) { k := add(k, 20) } {
                    if eq(shr(96, mload(k)), signer) { break }
                }
                if eq(k, membersEnd) {
                    failure := 5
                    break
                }
            }
        }
    }


    /// @dev The packed 20-byte member addresses from the committee data contract.
    function _loadMembers(uint256 c) private view returns (bytes memory members) {
        address pointer = address(uint160(c));
        uint256 size = uint16(c >> 176);
        members = new bytes(size * 20);
        uint256 to;
        assembly {
            to := add(members, 32)
        }
        DataContract.read(pointer, to, 0, members.length);
    }

    /// @dev Validates and stores a committee in a fresh data contract.
    function _setCommittee(address[] memory members, uint256 threshold_, uint256 nonce) private {
        uint256 size = members.length;
        if (size == 0 || size > MAX_COMMITTEE_SIZE) revert InvalidCommitteeSize(size);
        if (threshold_ == 0 || threshold_ > size) revert InvalidThreshold(threshold_, size);
        bytes memory packed = new bytes(size * 20);
        for (uint256 i; i < size; ++i) {
            address member = members[i];
            if (member == address(0)) revert ZeroMember(i);
            for (uint256 j; j < i; ++j) {
                if (members[j] == member) revert DuplicateMember(member);
            }
            assembly {
                mstore(add(add(packed, 32), mul(i, 20)), shl(96, member))
            }
        }
        address pointer = DataContract.write(packed);
        if (pointer == address(0)) revert CommitteeStorageFailed();
        _committee = uint256(uint160(pointer)) | (threshold_ << 160) | (size << 176) | (nonce << 192);
        emit CommitteeUpdated(nonce, members, threshold_);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256(bytes(NAME)), keccak256(bytes(VERSION)), block.chainid, address(this))
        );
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32 digest) {
        bytes32 domainSeparator = DOMAIN_SEPARATOR();
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x1901000000000000000000000000000000000000000000000000000000000000)
            mstore(add(m, 2), domainSeparator)
            mstore(add(m, 34), structHash)
            digest := keccak256(m, 66)
        }
    }}
