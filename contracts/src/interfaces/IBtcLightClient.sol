// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title IBtcLightClient
/// @author gmrelay
/// @notice What PaymentSettlement needs from the Bitcoin SPV light client.
/// @dev Hashes (block hashes, txids, Merkle nodes) are in Bitcoin's internal byte order:
///      the raw double-SHA256 digest, i.e. the reverse of the hex shown by explorers and RPCs.
interface IBtcLightClient {
    /// @notice An SPV proof that a Bitcoin transaction is in a block of the best chain.
    /// @dev Layout of the Merkle branches: sibling hashes from the leaf level up to (not
    ///      including) the root, 32 bytes each, concatenated; the depth is length / 32.
    /// @param rawTx The transaction in legacy serialization (no witness); its txid is computed on-chain.
    /// @param txIndex Position of the transaction in the block (0 is the coinbase).
    /// @param merkleBranch Merkle branch of the transaction.
    /// @param coinbasePreimage SHA256 (single) of the block's raw coinbase transaction, so that
    ///        the coinbase txid is sha256(coinbasePreimage).
    /// @param coinbaseBranch Merkle branch of the coinbase (index 0); exactly as long as `merkleBranch`.
    /// @param headers The block's 80-byte header followed by its descendants as 48-byte compact
    ///        records (the header without its prevHash: version | merkleRoot | time | bits | nonce),
    ///        length 80 + 48k, up to a header stored on the best chain (just the block's header
    ///        when the block itself is stored).
    struct TxProof {
        bytes rawTx;
        uint256 txIndex;
        bytes merkleBranch;
        bytes32 coinbasePreimage;
        bytes coinbaseBranch;
        bytes headers;
    }

    /// @notice Proves that `proof.rawTx` is in a block of the best chain with enough confirmations.
    /// @param proof The SPV proof.
    /// @param minConfirmations Confirmations required (best height - block height + 1).
    /// @return txid Double-SHA256 of `rawTx` (internal byte order).
    /// @return blockHash Hash of the block containing the transaction.
    /// @return height Height of that block.
    /// @return confirmations Confirmations of that block on the best chain.
    function verifyTx(TxProof calldata proof, uint256 minConfirmations)
        external
        view
        returns (bytes32 txid, bytes32 blockHash, uint256 height, uint256 confirmations);
}
