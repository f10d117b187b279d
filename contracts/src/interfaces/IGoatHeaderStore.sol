// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title IGoatHeaderStore
/// @author gmrelay
/// @notice What PaymentSettlement needs from the committee-attested GOAT header store.
interface IGoatHeaderStore {
    /// @notice Receipts-trie root of an attested GOAT block.
    /// @param blockHash keccak256 of the block header's RLP.
    /// @return root The header's receiptsRoot, or zero if the block was never attested.
    function receiptsRoot(bytes32 blockHash) external view returns (bytes32 root);
}
