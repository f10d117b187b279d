// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title GoatBlockCommitment
/// @author gmrelay
/// @notice What the IGoatHeaderStore implementations (GoatHeaderStore, GoatLightClient) keep
///         per GOAT block, under its hash: keccak256(abi.encode(number, timestamp,
///         receiptsRoot)). Their attestation views return it, so both must compute it alike.
library GoatBlockCommitment {
    /// @notice keccak256(abi.encode(number, timestamp, receiptsRoot)).
    /// @param blockNumber Block number.
    /// @param blockTime Header timestamp.
    /// @param receiptsRoot Receipts root.
    /// @return c The commitment.
    function hash(uint256 blockNumber, uint256 blockTime, bytes32 receiptsRoot) internal pure returns (bytes32 c) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, blockNumber)
            mstore(add(m, 32), blockTime)
            mstore(add(m, 64), receiptsRoot)
            c := keccak256(m, 96)
        }
    }
}
