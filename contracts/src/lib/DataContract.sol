// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title DataContract
/// @author gmrelay
/// @notice Data kept in the code of a contract written once and read with EXTCODECOPY
///         (GoatHeaderStore's committee, GoatLightClient's validator set): a fresh account and
///         its code cost less than the storage slots, and reading it back is one EXTCODECOPY.
/// @dev The code is 0x00 (STOP) || data, so that a call to the data contract does nothing.
///      Offsets given to read are offsets into the data (after the STOP byte).
library DataContract {
    /// @notice Deploys a contract whose code is 0x00 || `data`.
    /// @dev The 11-byte init code (PUSH2 len + 1, DUP1, PUSH1 10, RETURNDATASIZE, CODECOPY,
    ///      RETURNDATASIZE, RETURN, then the STOP byte) is written over the tail of `data`'s
    ///      length word for the CREATE and the length is put back: `data` is not copied.
    ///      `data` must be shorter than 65535 bytes.
    /// @param data The data.
    /// @return pointer The data contract, or zero if CREATE failed.
    function write(bytes memory data) internal returns (address pointer) {
        assembly ("memory-safe") {
            let length := mload(data)
            mstore(data, or(or(shl(80, 0x61), shl(64, add(length, 1))), 0x80600a3d393df300))
            pointer := create(0, add(data, 21), add(length, 11))
            mstore(data, length)
        }
    }

    /// @notice The number of data bytes held by `pointer` (zero if it has no code).
    /// @param pointer The data contract.
    /// @return length The data's length.
    function size(address pointer) internal view returns (uint256 length) {
        assembly {
            let codeSize := extcodesize(pointer)
            length := sub(codeSize, gt(codeSize, 0))
        }
    }

    /// @notice Copies `length` data bytes from data offset `from` to memory at `to`.
    /// @param pointer The data contract.
    /// @param to Memory address.
    /// @param from Offset in the data.
    /// @param length Number of bytes.
    function read(address pointer, uint256 to, uint256 from, uint256 length) internal view {
        assembly {
            extcodecopy(pointer, to, add(from, 1), length)
        }
    }
}
