// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title RlpCalldata
/// @author gmrelay
/// @notice Zero-copy RLP reader over calldata. Items are addressed by absolute calldata
///         offsets; every read is bounded by an explicit `end` offset and reverts with
///         MalformedRlp when an item would cross it.
/// @dev Canonical-encoding rules (shortest length forms, no leading zeros) are not enforced:
///      every input this reader sees is committed by a hash (block header, trie node), so its
///      bytes are fixed and the parse is deterministic.
library RlpCalldata {
    /// @notice The RLP data at calldata offset `offset` is malformed or out of bounds.
    error MalformedRlp(uint256 offset);

    /// @notice Decodes the item header at `ptr`.
    /// @param ptr Calldata offset of the item.
    /// @param end Calldata offset the item must not cross.
    /// @return isList True for a list, false for a byte string.
    /// @return payload Calldata offset of the payload.
    /// @return length Payload length in bytes; the item ends at payload + length.
    function item(uint256 ptr, uint256 end) internal pure returns (bool isList, uint256 payload, uint256 length) {
        uint256 bad;
        // Unchecked: lengths come from at most 8 length bytes (< 2^64) and calldata offsets
        // are far below 2^64, so no sum here can wrap.
        assembly {
            switch lt(ptr, end)
            case 0 { bad := 1 }
            default {
                let prefix := byte(0, calldataload(ptr))
                switch lt(prefix, 0x80)
                case 1 {
                    payload := ptr
                    length := 1
                }
                default {
                    if gt(prefix, 0xbf) {
                        isList := 1
                        prefix := sub(prefix, 0x40)
                    }
                    // prefix is now 0x80..0xbf for both strings and lists.
                    switch lt(prefix, 0xb8)
                    case 1 {
                        payload := add(ptr, 1)
                        length := sub(prefix, 0x80)
                    }
                    default {
                        let lengthOfLength := sub(prefix, 0xb7)
                        length := shr(sub(256, shl(3, lengthOfLength)), calldataload(add(ptr, 1)))
                        payload := add(add(ptr, 1), lengthOfLength)
                    }
                }
                if gt(add(payload, length), end) { bad := 1 }
            }
        }
        if (bad != 0) revert MalformedRlp(ptr);
    }


    /// @notice Decodes a list item at `ptr`.
    /// @param ptr Calldata offset of the item.
    /// @param end Calldata offset the item must not cross.
    /// @return payload Offset of the first element.
    /// @return payloadEnd Offset just past the last element.
    function list(uint256 ptr, uint256 end) internal pure returns (uint256 payload, uint256 payloadEnd) {
        (bool isList, uint256 p, uint256 len) = item(ptr, end);
        if (!isList) revert MalformedRlp(ptr);
        unchecked {
            return (p, p + len);
        }
    }

    /// @notice Decodes a byte-string item at `ptr`.
    /// @param ptr Calldata offset of the item.
    /// @param end Calldata offset the item must not cross.
    /// @return payload Offset of the string's bytes.
    /// @return length Number of bytes.
    function string_(uint256 ptr, uint256 end) internal pure returns (uint256 payload, uint256 length) {
        bool isList;
        (isList, payload, length) = item(ptr, end);
        if (isList) revert MalformedRlp(ptr);
    }

    /// @notice Offset just past the item at `ptr`.
    /// @param ptr Calldata offset of the item.
    /// @param end Calldata offset the item must not cross.
    /// @return The offset of the next item.
    function skip(uint256 ptr, uint256 end) internal pure returns (uint256) {
        (, uint256 payload, uint256 len) = item(ptr, end);
        unchecked {
            return payload + len;
        }
    }

    /// @notice Reads a 32-byte string item.
    /// @param ptr Calldata offset of the item.
    /// @param end Calldata offset the item must not cross.
    /// @return value The 32 bytes.
    /// @return next Offset of the next item.
    function bytes32Item(uint256 ptr, uint256 end) internal pure returns (bytes32 value, uint256 next) {
        (uint256 payload, uint256 len) = string_(ptr, end);
        if (len != 32) revert MalformedRlp(ptr);
        assembly {
            value := calldataload(payload)
        }
        next = payload + 32;
    }

    /// @notice Reads a big-endian unsigned integer item of at most 32 bytes.
    /// @param ptr Calldata offset of the item.
    /// @param end Calldata offset the item must not cross.
    /// @return value The integer.
    /// @return next Offset of the next item.
    function uintItem(uint256 ptr, uint256 end) internal pure returns (uint256 value, uint256 next) {
        (uint256 payload, uint256 len) = string_(ptr, end);
        if (len > 32) revert MalformedRlp(ptr);
        value = loadBE(payload, len);
        next = payload + len;
    }

    /// @notice Big-endian integer of `len` (<= 32) bytes at calldata offset `ptr`; 0 when len == 0.
    /// @param ptr Calldata offset.
    /// @param len Number of bytes.
    /// @return value The integer.
    function loadBE(uint256 ptr, uint256 len) internal pure returns (uint256 value) {
        assembly {
            // shr by 256 yields 0, which is the value of an empty string.
            value := shr(sub(256, shl(3, len)), calldataload(ptr))
        }
    }
}
