// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IGoatHeaderStore} from "./interfaces/IGoatHeaderStore.sol";

/*
 * GoatHeaderStore: GOAT Network block headers attested by an M-of-N committee.
 *
 * A relayer submits a GOAT header's RLP with >= M committee signatures over the EIP-712
 * message GoatHeader(uint256 chainId, uint256 number, bytes32 blockHash), domain
 * {name "gmrelay GoatHeaderStore", version "1", chainId = this chain (Metis),
 * verifyingContract = this contract}. The block hash is computed on-chain as
 * keccak256(headerRlp), so the stored receiptsRoot is exactly the one the attested hash
 * commits to.
 *
 * Gas design (goal: <= 70,000 gas for a 3-of-5 attestation, whole transaction):
 *   - one fresh storage slot per header: blockHash => receiptsRoot, the only field
 *     settlement needs (22.1k). number, timestamp and parentHash are emitted in
 *     HeaderAttested and can be re-derived from the header (whose hash is the key) with
 *     the headerInfo view; storing them would take two more fresh slots (44k), which no
 *     packing avoids: receiptsRoot and parentHash are 256-bit hashes;
 *   - the committee (addresses) lives in the code of a small data contract written once
 *     per committee (read with one EXTCODECOPY, 2.6k) and its address, threshold, size
 *     and update nonce share one storage slot (2.1k), instead of one cold SLOAD per
 *     signer plus one for the threshold;
 *   - duplicates are detected with a bitmap over member positions, so signatures may be
 *     in any order.
 *
 * Committee changes are signed by >= M CURRENT members over
 * CommitteeUpdate(address[] members, uint256 threshold, uint256 nonce) in the same domain,
 * with nonce equal to the number of updates so far (no replay, strict order).
 */

/// @title GoatHeaderStore
/// @author gmrelay
/// @notice Stores receipts roots of GOAT Network blocks attested by an M-of-N committee.
contract GoatHeaderStore is IGoatHeaderStore {
    // ---------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------

    /// @notice EIP-712 type hash of a header attestation.
    bytes32 public constant GOAT_HEADER_TYPEHASH =
        keccak256("GoatHeader(uint256 chainId,uint256 number,bytes32 blockHash)");

    /// @notice EIP-712 type hash of a committee update.
    bytes32 public constant COMMITTEE_UPDATE_TYPEHASH =
        keccak256("CommitteeUpdate(address[] members,uint256 threshold,uint256 nonce)");

    /// @notice EIP-712 domain type hash.
    bytes32 public constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice EIP-712 domain name.
    string public constant NAME = "gmrelay GoatHeaderStore";

    /// @notice EIP-712 domain version.
    string public constant VERSION = "1";

    /// @notice Largest committee accepted.
    uint256 public constant MAX_COMMITTEE_SIZE = 64;

    // ---------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------

    /// @notice Chain id of the GOAT network whose headers are attested (e.g. 2345).
    uint256 public immutable goatChainId;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    /// @dev data contract (160 bits) | threshold (16) | size (16) | update nonce (64).
    uint256 private _committee;

    /// @dev Attested block hash => receiptsRoot (zero: unknown).
    mapping(bytes32 blockHash => bytes32 root) private _receiptsRoots;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice A GOAT header was attested and stored.
    /// @param blockHash keccak256 of the header RLP.
    /// @param number Block number.
    /// @param parentHash Parent block hash.
    /// @param timestamp Block timestamp.
    /// @param receiptsRoot Root of the block's receipts trie.
    event HeaderAttested(
        bytes32 indexed blockHash, uint256 indexed number, bytes32 parentHash, uint256 timestamp, bytes32 receiptsRoot
    );

    /// @notice The committee was replaced.
    /// @param nonce Number of the update (0 for the constructor's committee).
    /// @param members New members.
    /// @param threshold New number of signatures required.
    event CommitteeUpdated(uint256 indexed nonce, address[] members, uint256 threshold);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice Fewer signatures than the threshold.
    error TooFewAttestations(uint256 got, uint256 need);

    /// @notice A signature recovers to an address outside the committee.
    error NotACommitteeMember(address signer);

    /// @notice Two signatures by the same member.
    error DuplicateAttester(address signer);

    /// @notice Signature `index` is not 65 bytes (r || s || v).
    error InvalidSignatureLength(uint256 index, uint256 length);

    /// @notice Signature `index` has a high s (EIP-2).
    error SignatureMalleable(uint256 index);

    /// @notice Signature `index` has v other than 27 or 28.
    error InvalidSignatureV(uint256 index, uint8 v);

    /// @notice Signature `index` does not recover to any address.
    error InvalidSignature(uint256 index);

    /// @notice The header was already attested.
    error HeaderAlreadyKnown(bytes32 blockHash);

    /// @notice The header RLP is not a list of at least 12 fields with 32-byte hashes.
    error MalformedHeader();

    /// @notice The committee update's nonce is not the next one.
    error BadCommitteeNonce(uint256 expected, uint256 got);

    /// @notice A committee must have 1..MAX_COMMITTEE_SIZE members.
    error InvalidCommitteeSize(uint256 size);

    /// @notice The threshold must be between 1 and the committee size.
    error InvalidThreshold(uint256 threshold, uint256 size);

    /// @notice Committee members must be non-zero.
    error ZeroMember(uint256 index);

    /// @notice A committee lists the same address twice.
    error DuplicateMember(address member);

    /// @notice Deploying the committee data contract failed.
    error CommitteeStorageFailed();

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the store with its first committee.
    /// @param members Committee members (distinct, non-zero, at most 64).
    /// @param threshold_ Signatures required (1..members.length).
    /// @param goatChainId_ Chain id of the attested GOAT network (2345 for mainnet).
    constructor(address[] memory members, uint256 threshold_, uint256 goatChainId_) {
        goatChainId = goatChainId_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        _setCommittee(members, threshold_, 0);
    }

    // ---------------------------------------------------------------------------------
    // Headers
    // ---------------------------------------------------------------------------------

    /// @notice Stores the receipts root of a committee-attested GOAT header. Anyone may submit.
    /// @param headerRlp The RLP-encoded block header (its keccak256 is the block hash).
    /// @param signatures At least `threshold` 65-byte signatures (r || s || v) by distinct
    ///        members over the EIP-712 GoatHeader(chainId, number, blockHash), in any order.
    /// @return blockHash The attested block hash.
    function submitHeader(bytes calldata headerRlp, bytes[] calldata signatures) external returns (bytes32 blockHash) {
        blockHash = _keccakCalldata(headerRlp);
        if (_receiptsRoots[blockHash] != 0) revert HeaderAlreadyKnown(blockHash);
        (bytes32 parentHash, bytes32 root, uint256 number, uint256 timestamp) = _parseHeader(headerRlp);
        _verifyAttestations(hashGoatHeader(number, blockHash), signatures);
        _receiptsRoots[blockHash] = root;
        emit HeaderAttested(blockHash, number, parentHash, timestamp, root);
    }

    /// @inheritdoc IGoatHeaderStore
    function receiptsRoot(bytes32 blockHash) external view returns (bytes32 root) {
        return _receiptsRoots[blockHash];
    }

    /// @notice Whether a block hash was attested.
    /// @param blockHash The GOAT block hash.
    /// @return True if attested.
    function isKnown(bytes32 blockHash) external view returns (bool) {
        return _receiptsRoots[blockHash] != 0;
    }

    /// @notice Parses a GOAT header and tells whether it was attested.
    /// @param headerRlp The RLP-encoded block header.
    /// @return blockHash keccak256 of the header.
    /// @return parentHash Field 0.
    /// @return root Field 5 (receiptsRoot).
    /// @return number Field 8.
    /// @return timestamp Field 11.
    /// @return known True if `blockHash` was attested.
    function headerInfo(bytes calldata headerRlp)
        external
        view
        returns (bytes32 blockHash, bytes32 parentHash, bytes32 root, uint256 number, uint256 timestamp, bool known)
    {
        blockHash = _keccakCalldata(headerRlp);
        (parentHash, root, number, timestamp) = _parseHeader(headerRlp);
        known = _receiptsRoots[blockHash] != 0;
    }

    /// @notice EIP-712 digest a member signs to attest a header.
    /// @param number GOAT block number.
    /// @param blockHash GOAT block hash.
    /// @return The digest.
    function hashGoatHeader(uint256 number, bytes32 blockHash) public view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(GOAT_HEADER_TYPEHASH, goatChainId, number, blockHash)));
    }

    // ---------------------------------------------------------------------------------
    // Committee
    // ---------------------------------------------------------------------------------

    /// @notice Replaces the committee, with signatures of at least `threshold` CURRENT members.
    /// @param members New members (distinct, non-zero, at most 64).
    /// @param newThreshold New threshold (1..members.length).
    /// @param nonce Must equal committeeNonce().
    /// @param signatures Signatures over the EIP-712 CommitteeUpdate(members, newThreshold, nonce).
    function updateCommittee(
        address[] calldata members,
        uint256 newThreshold,
        uint256 nonce,
        bytes[] calldata signatures
    ) external {
        uint256 current = uint64(_committee >> 192);
        if (nonce != current) revert BadCommitteeNonce(current, nonce);
        _verifyAttestations(hashCommitteeUpdate(members, newThreshold, nonce), signatures);
        _setCommittee(members, newThreshold, nonce + 1);
    }

    /// @notice EIP-712 digest the current members sign to replace the committee.
    /// @param members New members.
    /// @param newThreshold New threshold.
    /// @param nonce Update nonce.
    /// @return The digest.
    function hashCommitteeUpdate(address[] calldata members, uint256 newThreshold, uint256 nonce)
        public
        view
        returns (bytes32)
    {
        // EIP-712 encodes address[] as keccak256 of the 32-byte-padded elements.
        return _hashTypedData(
            keccak256(abi.encode(COMMITTEE_UPDATE_TYPEHASH, keccak256(abi.encodePacked(members)), newThreshold, nonce))
        );
    }

    /// @notice The current committee.
    /// @return members Member addresses.
    /// @return quorum Signatures required.
    /// @return nonce Updates applied so far (the nonce the next update must carry).
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

    /// @notice Whether `account` is a current committee member.
    /// @param account Address to check.
    /// @return True if a member.
    function isCommitteeMember(address account) external view returns (bool) {
        return _indexOf(_loadMembers(_committee), account) != type(uint256).max;
    }

    /// @notice Number of committee updates so far (the nonce of the next update).
    /// @return The nonce.
    function committeeNonce() external view returns (uint256) {
        return uint64(_committee >> 192);
    }

    /// @notice Current committee threshold.
    /// @return Signatures required.
    function threshold() external view returns (uint256) {
        return uint16(_committee >> 160);
    }

    /// @notice The EIP-712 domain separator (recomputed if the chain id changed since deployment).
    /// @return The domain separator.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    // ---------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------

    /// @dev Extracts parentHash (0), receiptsRoot (5), number (8) and timestamp (11) in one pass.
    ///      The header must be exactly one RLP list whose first 12 items are byte strings
    ///      (hashes of 32 bytes, integers of at most 32 bytes); later items are not inspected.
    function _parseHeader(bytes calldata headerRlp)
        private
        pure
        returns (bytes32 parentHash, bytes32 root, uint256 blockNumber, uint256 blockTime)
    {
        uint256 bad;
        assembly {
            let p := headerRlp.offset
            let end := add(p, headerRlp.length)
            let b := byte(0, calldataload(p))
            let len := 0
            switch lt(b, 0xf8)
            case 1 {
                bad := lt(b, 0xc0)
                len := sub(b, 0xc0)
                p := add(p, 1)
            }
            default {
                let lenOfLen := sub(b, 0xf7)
                len := shr(sub(256, shl(3, lenOfLen)), calldataload(add(p, 1)))
                p := add(add(p, 1), lenOfLen)
            }
            if iszero(eq(add(p, len), end)) { bad := 1 }
            for { let i := 0 } and(lt(i, 12), iszero(bad)) { i := add(i, 1) } {
                if iszero(lt(p, end)) {
                    bad := 1
                    break
                }
                b := byte(0, calldataload(p))
                let item := p // payload offset
                len := 1 // single byte below 0x80 is its own payload
                if gt(b, 0x7f) {
                    switch lt(b, 0xb8)
                    case 1 {
                        item := add(p, 1)
                        len := sub(b, 0x80)
                    }
                    default {
                        if gt(b, 0xbf) {
                            bad := 1 // a list where a string is expected
                            break
                        }
                        let lenOfLen := sub(b, 0xb7)
                        len := shr(sub(256, shl(3, lenOfLen)), calldataload(add(p, 1)))
                        item := add(add(p, 1), lenOfLen)
                    }
                }
                p := add(item, len)
                if gt(p, end) {
                    bad := 1
                    break
                }
                switch i
                case 0 {
                    bad := iszero(eq(len, 32))
                    parentHash := calldataload(item)
                }
                case 5 {
                    bad := iszero(eq(len, 32))
                    root := calldataload(item)
                }
                case 8 {
                    bad := gt(len, 32)
                    blockNumber := shr(sub(256, shl(3, len)), calldataload(item))
                }
                case 11 {
                    bad := gt(len, 32)
                    blockTime := shr(sub(256, shl(3, len)), calldataload(item))
                }
            }
        }
        if (bad != 0 || root == bytes32(0)) revert MalformedHeader();
    }

    /// @dev Reverts unless `signatures` holds >= threshold valid low-s signatures of distinct
    ///      members over `digest`. The committee is read with one EXTCODECOPY; duplicates are
    ///      found with a bitmap over member positions.
    function _verifyAttestations(bytes32 digest, bytes[] calldata signatures) private view {
        uint256 c = _committee;
        uint256 need = uint16(c >> 160);
        if (signatures.length < need) revert TooFewAttestations(signatures.length, need);
        (uint256 failure, uint256 index, uint256 detail) = _checkSignatures(c, digest, signatures);
        if (failure != 0) {
            if (failure == 1) revert InvalidSignatureLength(index, detail);
            if (failure == 2) revert SignatureMalleable(index);
            if (failure == 3) revert InvalidSignatureV(index, uint8(detail));
            if (failure == 4) revert InvalidSignature(index);
            if (failure == 5) revert NotACommitteeMember(address(uint160(detail)));
            revert DuplicateAttester(address(uint160(detail)));
        }
    }

    /// @dev Checks every signature; returns 0 or a failure code (1 length, 2 high s, 3 bad v,
    ///      4 no signer, 5 not a member, 6 duplicate) with the signature index and a detail
    ///      (length, v or signer).
    function _checkSignatures(uint256 c, bytes32 digest, bytes[] calldata signatures)
        private
        view
        returns (uint256 failure, uint256 index, uint256 detail)
    {
        assembly ("memory-safe") {
            // Low-s ECDSA recovery of the 65-byte r || s || v at calldata `sig` (length word first).
            function recover(sig, hash, scratch) -> signer, code, info {
                let len := calldataload(sig)
                if iszero(eq(len, 65)) {
                    code := 1
                    info := len
                    leave
                }
                let sv := calldataload(add(sig, 64))
                if gt(sv, 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0) {
                    code := 2
                    leave
                }
                let v := byte(0, calldataload(add(sig, 96)))
                if iszero(or(eq(v, 27), eq(v, 28))) {
                    code := 3
                    info := v
                    leave
                }
                mstore(scratch, hash)
                mstore(add(scratch, 32), v)
                mstore(add(scratch, 64), calldataload(add(sig, 32)))
                mstore(add(scratch, 96), sv)
                mstore(0, 0)
                if iszero(staticcall(gas(), 1, scratch, 128, 0, 32)) { revert(0, 0) }
                signer := mload(0)
                if iszero(signer) { code := 4 }
            }
            // Position of `who` in the packed 20-byte list, or 2^256 - 1.
            function position(list, n, who) -> pos {
                pos := not(0)
                for { let k := 0 } lt(k, n) { k := add(k, 1) } {
                    if eq(shr(96, mload(add(list, mul(k, 20)))), who) {
                        pos := k
                        leave
                    }
                }
            }

            let size := and(shr(176, c), 0xffff)
            let members := mload(0x40)
            extcodecopy(and(c, 0xffffffffffffffffffffffffffffffffffffffff), members, 1, mul(size, 20))
            mstore(0x20, 0) // bitmap of the member positions seen (scratch word)
            for { let i := 0 } lt(i, signatures.length) { i := add(i, 1) } {
                index := i
                // Element i of bytes[]: its offset is relative to the start of the offsets. The
                // ecrecover input goes after the member list (at most 64 * 20 bytes).
                let signer, code, info :=
                    recover(add(signatures.offset, calldataload(add(signatures.offset, shl(5, i)))), digest, add(members, 0x520))
                if code {
                    failure := code
                    detail := info
                    break
                }
                detail := signer
                let pos := position(members, size, signer)
                if eq(pos, not(0)) {
                    failure := 5
                    break
                }
                let seen := mload(0x20)
                if and(seen, shl(pos, 1)) {
                    failure := 6
                    break
                }
                mstore(0x20, or(seen, shl(pos, 1)))
            }
        }
    }

    /// @dev Position of `account` in the packed member list, or type(uint256).max.
    function _indexOf(bytes memory members, address account) private pure returns (uint256 index) {
        assembly {
            index := not(0)
            let size := div(mload(members), 20)
            let p := add(members, 32)
            for { let i := 0 } lt(i, size) { i := add(i, 1) } {
                if eq(shr(96, mload(add(p, mul(i, 20)))), account) {
                    index := i
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
        assembly {
            // Skip the leading STOP byte of the data contract.
            extcodecopy(pointer, add(members, 32), 1, mul(size, 20))
        }
    }

    /// @dev Validates and stores a committee in a fresh data contract.
    function _setCommittee(address[] memory members, uint256 threshold_, uint256 nonce) private {
        uint256 size = members.length;
        if (size == 0 || size > MAX_COMMITTEE_SIZE) revert InvalidCommitteeSize(size);
        if (threshold_ == 0 || threshold_ > size) revert InvalidThreshold(threshold_, size);
        bytes memory runtime = new bytes(1 + size * 20); // 0x00 (STOP) || members
        for (uint256 i; i < size; ++i) {
            address member = members[i];
            if (member == address(0)) revert ZeroMember(i);
            for (uint256 j; j < i; ++j) {
                if (members[j] == member) revert DuplicateMember(member);
            }
            assembly {
                mstore(add(add(runtime, 33), mul(i, 20)), shl(96, member))
            }
        }
        // Init code: PUSH2 len, DUP1, PUSH1 10, RETURNDATASIZE, CODECOPY, RETURNDATASIZE, RETURN.
        bytes memory init = abi.encodePacked(hex"61", uint16(runtime.length), hex"80600a3d393df3", runtime);
        address pointer;
        assembly {
            pointer := create(0, add(init, 32), mload(init))
        }
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
    }

    function _keccakCalldata(bytes calldata data) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, data.offset, data.length)
            h := keccak256(m, data.length)
        }
    }
}
