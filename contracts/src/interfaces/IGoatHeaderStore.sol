// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title IGoatHeaderStore
/// @author gmrelay
/// @notice What PaymentSettlement needs from the GOAT block attestations.
interface IGoatHeaderStore {
    /// @notice The GOAT chain id the attestations name.
    /// @return The chain id (2345 mainnet, 48816 testnet3).
    function goatChainId() external view returns (uint256);

    /// @notice Reverts unless the block (number, timestamp, hash, receipts root) is attested:
    ///         by `signatures` (a quorum of the committee, inline) or, when `signatures` is
    ///         empty, by an attestation stored earlier with attestBlock.
    /// @param blockHash GOAT block hash.
    /// @param number Its number.
    /// @param timestamp Its header timestamp.
    /// @param receiptsRoot Its receipts root.
    /// @param signatures Packed 65-byte (r, s, v) committee signatures in ascending signer order, or empty.
    function verifyBlock(
        bytes32 blockHash,
        uint256 number,
        uint256 timestamp,
        bytes32 receiptsRoot,
        bytes calldata signatures
    ) external view;
}
