// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title BtcMerkle
/// @author gmrelay
/// @notice Bitcoin transaction-inclusion checks shared by BtcLightClient and PaymentSettlement.
/// @dev Hashes are in internal byte order. The checks close the known Merkle-tree weaknesses
///      (see BtcLightClient's file notes for the reasoning):
///        - CVE-2017-12842 node posing as a leaf: a 64-byte transaction is refused (txid);
///        - CVE-2017-12842 leaf posing as a node: the coinbase (index 0) must prove into the
///          same root with a branch of the same depth (verifyCoinbase), which fixes the
///          tree depth; a transaction's branch must have exactly that depth;
///        - CVE-2012-2459 duplicated padding nodes: a walk that enters a right node equal to
///          its left sibling is refused, so each transaction has one provable index.
library BtcMerkle {
    /// @notice Deepest Merkle branch accepted (a block cannot hold 2^32 transactions).
    uint256 internal constant MAX_DEPTH = 32;

    /// @notice 64-byte transactions are refused (CVE-2017-12842).
    error SixtyFourByteTransaction();

    /// @notice A Merkle branch is not a multiple of 32 bytes or is deeper than 32 levels.
    error BadMerkleProofLength(uint256 length);

    /// @notice The coinbase branch and the transaction branch have different depths.
    error MerkleDepthMismatch(uint256 txDepth, uint256 coinbaseDepth);

    /// @notice The index does not fit the tree depth given by the branch.
    error TxIndexOutOfRange(uint256 txIndex, uint256 depth);

    /// @notice At `level` the proof walks into a duplicated (padding) node (CVE-2012-2459).
    error DuplicateMerkleNode(uint256 level);

    /// @notice The transaction's branch does not lead to the header's Merkle root.
    error MerkleRootMismatch(bytes32 computed, bytes32 expected);

    /// @notice The coinbase branch does not lead to the header's Merkle root.
    error CoinbaseProofMismatch(bytes32 computed, bytes32 expected);

    /// @notice The txid (double SHA-256) of a legacy-serialized transaction; refuses 64 bytes.
    /// @param rawTx The transaction without witness data.
    /// @return h The txid in internal byte order.
    function txid(bytes calldata rawTx) internal view returns (bytes32 h) {
        if (rawTx.length == 64) revert SixtyFourByteTransaction();
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, rawTx.offset, rawTx.length)
            if iszero(staticcall(gas(), 2, m, rawTx.length, m, 32)) { revert(0, 0) }
            if iszero(staticcall(gas(), 2, m, 32, m, 32)) { revert(0, 0) }
            h := mload(m)
        }
    }

    /// @notice Checks the coinbase branch (leaf sha256(coinbasePreimage), index 0) against the
    ///         root and returns the tree depth it fixes.
    /// @param coinbasePreimage The coinbase's first SHA-256 round (its txid is sha256 of it).
    /// @param coinbaseBranch Siblings of the coinbase, leaf level first.
    /// @param merkleRoot The block header's Merkle root.
    /// @return depth Levels of the block's Merkle tree.
    function verifyCoinbase(bytes32 coinbasePreimage, bytes calldata coinbaseBranch, bytes32 merkleRoot)
        internal
        view
        returns (uint256 depth)
    {
        depth = _depth(coinbaseBranch.length);
        bytes32 leaf;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, coinbasePreimage)
            if iszero(staticcall(gas(), 2, m, 32, m, 32)) { revert(0, 0) }
            leaf := mload(m)
        }
        bytes32 computed = root(leaf, 0, coinbaseBranch);
        if (computed != merkleRoot) revert CoinbaseProofMismatch(computed, merkleRoot);
    }

    /// @notice Checks a transaction's branch against the root at the depth verifyCoinbase fixed.
    /// @param leaf The transaction's txid.
    /// @param txIndex Its position in the block.
    /// @param branch Its siblings, leaf level first.
    /// @param depth The depth the coinbase branch fixed.
    /// @param merkleRoot The block header's Merkle root.
    function verifyTx(bytes32 leaf, uint256 txIndex, bytes calldata branch, uint256 depth, bytes32 merkleRoot)
        internal
        view
    {
        uint256 txDepth = _depth(branch.length);
        if (txDepth != depth) revert MerkleDepthMismatch(txDepth, depth);
        if (txIndex >> depth != 0) revert TxIndexOutOfRange(txIndex, depth);
        bytes32 computed = root(leaf, txIndex, branch);
        if (computed != merkleRoot) revert MerkleRootMismatch(computed, merkleRoot);
    }

    /// @notice verifyTx after verifyCoinbase, for a single transaction.
    /// @param leaf The transaction's txid.
    /// @param txIndex Its position in the block.
    /// @param branch Its siblings, leaf level first.
    /// @param coinbasePreimage The coinbase's first SHA-256 round.
    /// @param coinbaseBranch The coinbase's siblings.
    /// @param merkleRoot The block header's Merkle root.
    function verifyInclusion(
        bytes32 leaf,
        uint256 txIndex,
        bytes calldata branch,
        bytes32 coinbasePreimage,
        bytes calldata coinbaseBranch,
        bytes32 merkleRoot
    ) internal view {
        uint256 txDepth = _depth(branch.length);
        if (coinbaseBranch.length != branch.length) revert MerkleDepthMismatch(txDepth, coinbaseBranch.length / 32);
        if (txIndex >> txDepth != 0) revert TxIndexOutOfRange(txIndex, txDepth);
        bytes32 computed = root(leaf, txIndex, branch);
        if (computed != merkleRoot) revert MerkleRootMismatch(computed, merkleRoot);
        verifyCoinbase(coinbasePreimage, coinbaseBranch, merkleRoot);
    }

    /// @notice Folds a branch (32-byte siblings, leaf level first) from `leaf` at `index`.
    /// @dev Reverts with DuplicateMerkleNode if the walk enters a right node equal to its left
    ///      sibling (padding).
    /// @param leaf Starting hash.
    /// @param index Position of the leaf.
    /// @param branch Siblings.
    /// @return node The root the branch leads to.
    function root(bytes32 leaf, uint256 index, bytes calldata branch) internal view returns (bytes32 node) {
        uint256 duplicate; // 1 + level of a padding step, or 0
        assembly ("memory-safe") {
            let m := mload(0x40)
            node := leaf
            let ptr := branch.offset
            let end := add(ptr, branch.length)
            for { let level := 0 } lt(ptr, end) {
                ptr := add(ptr, 32)
                level := add(level, 1)
            } {
                let sibling := calldataload(ptr)
                switch and(shr(level, index), 1)
                case 0 {
                    mstore(m, node)
                    mstore(add(m, 32), sibling)
                }
                default {
                    if eq(sibling, node) {
                        duplicate := add(level, 1)
                        break
                    }
                    mstore(m, sibling)
                    mstore(add(m, 32), node)
                }
                if iszero(staticcall(gas(), 2, m, 64, m, 32)) { revert(0, 0) }
                if iszero(staticcall(gas(), 2, m, 32, m, 32)) { revert(0, 0) }
                node := mload(m)
            }
        }
        if (duplicate != 0) revert DuplicateMerkleNode(duplicate - 1);
    }

    function _depth(uint256 branchLength) private pure returns (uint256) {
        if (branchLength % 32 != 0 || branchLength > MAX_DEPTH * 32) revert BadMerkleProofLength(branchLength);
        return branchLength / 32;
    }
}
