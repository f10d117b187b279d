// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {RlpCalldata} from "./RlpCalldata.sol";

/// @title MerklePatriciaProof
/// @author gmrelay
/// @notice Inclusion proofs for Ethereum's hexary Merkle-Patricia trie, read from calldata.
/// @dev The proof is the list of RLP-encoded nodes on the path from the root, as returned by
///      eth_getProof or built by alloy-trie: every node referenced by HASH is one element;
///      nodes shorter than 32 bytes are embedded ("inline") in their parent and are not
///      separate elements. Node kinds:
///        - branch: 17 items, children 0..15 and a value (item 16);
///        - extension: [hex-prefix path (flag 0/1), child reference];
///        - leaf: [hex-prefix path (flag 2/3), value].
///      A child reference is a 32-byte string (keccak of the child node), an embedded list
///      (the inline child node itself), or the empty string (no child). Every element must be
///      used: trailing unused nodes are rejected.
library MerklePatriciaProof {
    /// @notice Proof element `nodeIndex` does not hash to the reference its parent (or the root) holds.
    error MptNodeHashMismatch(uint256 nodeIndex);

    /// @notice The node reached after `nodeIndex` proof elements is not a valid trie node.
    error MptMalformedNode(uint256 nodeIndex);

    /// @notice The key is not in the trie: the path diverges after `nodeIndex` proof elements.
    error MptKeyNotFound(uint256 nodeIndex);

    /// @notice The path needs proof element `nodeIndex`, which is missing.
    error MptMissingNode(uint256 nodeIndex);

    /// @notice The value was found after `used` elements but the proof has `given`.
    error MptUnusedNodes(uint256 used, uint256 given);

    /// @notice Walks `proof` from `root` along `key` and returns the value stored there.
    /// @param root The trie root hash.
    /// @param key The key, left-aligned (first nibble in the top 4 bits).
    /// @param keyNibbles Number of nibbles of `key` (<= 64).
    /// @param proof RLP-encoded nodes, root first.
    /// @return valueOffset Calldata offset of the value bytes.
    /// @return valueLength Length of the value.
    function get(bytes32 root, bytes32 key, uint256 keyNibbles, bytes[] calldata proof)
        internal
        pure
        returns (uint256 valueOffset, uint256 valueLength)
    {
        return getFrom(root, key, keyNibbles, proof, _empty());
    }

    /// @notice Like get, with the proof's nodes picked from a shared pool: node i of the walk is
    ///         `pool[uint8(path[i])]`, so payments whose proofs share nodes (the upper levels of
    ///         one block's receipts trie) send each node once. An empty `path` walks the pool
    ///         itself in order (the plain proof). Node indexes in errors are walk positions.
    /// @param root The trie root hash.
    /// @param key The key, left-aligned.
    /// @param keyNibbles Number of nibbles of `key` (<= 64).
    /// @param pool RLP-encoded nodes.
    /// @param path One byte per walk step: the pool index of that step's node; or empty.
    /// @return valueOffset Calldata offset of the value bytes.
    /// @return valueLength Length of the value.
    function getFrom(bytes32 root, bytes32 key, uint256 keyNibbles, bytes[] calldata pool, bytes calldata path)
        internal
        pure
        returns (uint256 valueOffset, uint256 valueLength)
    {
        Walk memory w = Walk({key: key, keyNibbles: keyNibbles, keyPos: 0, used: 0});
        uint256 steps = path.length == 0 ? pool.length : path.length;
        bytes32 expected = root;
        bool isInline;
        uint256 ptr; // current node item: [ptr, end)
        uint256 end;
        for (;;) {
            if (!isInline) {
                if (w.used >= steps) revert MptMissingNode(w.used);
                uint256 at = path.length == 0 ? w.used : uint8(path[w.used]);
                if (at >= pool.length) revert MptMissingNode(w.used);
                bytes calldata node = pool[at];
                assembly {
                    ptr := node.offset
                    end := add(ptr, node.length)
                }
                if (_keccak(ptr, node.length) != expected) revert MptNodeHashMismatch(w.used);
                unchecked {
                    ++w.used;
                }
            }
            (bool found, uint256 a, uint256 b) = _step(w, ptr, end);
            if (found) {
                (valueOffset, valueLength) = (a, b);
                break;
            }
            (isInline, expected, ptr, end) = _follow(a, b, w.used);
        }
        if (w.used != steps) revert MptUnusedNodes(w.used, steps);
    }

    /// @dev An empty calldata slice.
    function _empty() private pure returns (bytes calldata e) {
        assembly {
            e.offset := 0
            e.length := 0
        }
    }

    struct Walk {
        bytes32 key;
        uint256 keyNibbles;
        uint256 keyPos;
        uint256 used;
    }

    /// @dev Processes the node [ptr, end). Returns (true, valueOffset, valueLength) when the
    ///      value is found, else (false, childRefOffset, nodeListEnd).
    function _step(Walk memory w, uint256 ptr, uint256 end) private pure returns (bool found, uint256 a, uint256 b) {
        (uint256 first, uint256 listEnd) = RlpCalldata.list(ptr, end);
        if (listEnd != end) revert MptMalformedNode(w.used);
        uint256 second = RlpCalldata.skip(first, listEnd);
        uint256 third = RlpCalldata.skip(second, listEnd);
        if (third == listEnd) {
            // Leaf or extension: [path, value | child].
            (bool leaf, uint256 pathNibbles) = _matchPath(first, listEnd, w);
            w.keyPos += pathNibbles;
            if (leaf) {
                if (w.keyPos != w.keyNibbles) revert MptKeyNotFound(w.used);
                (a, b) = RlpCalldata.string_(second, listEnd);
                return (true, a, b);
            }
            if (pathNibbles == 0) revert MptMalformedNode(w.used);
            return (false, second, listEnd);
        }
        // Branch: 17 items, children 0..15 then the value.
        uint256 slot = w.keyPos == w.keyNibbles ? 16 : _nibble(w.key, w.keyPos);
        uint256 child = _skipChildren(first, listEnd, slot, w.used);
        if (slot == 16) {
            (a, b) = RlpCalldata.string_(child, listEnd);
            if (b == 0) revert MptKeyNotFound(w.used);
            return (true, a, b);
        }
        unchecked {
            ++w.keyPos;
        }
        return (false, child, listEnd);
    }
    /// @dev Skips `count` children of a branch node. A child is an empty string (0x80), a
    ///      32-byte hash (0xa0 + 32 bytes) or an inline node shorter than 32 bytes (a short
    ///      list); anything else is malformed. One loop instead of a decoder call per child.
    function _skipChildren(uint256 p, uint256 end, uint256 count, uint256 used) private pure returns (uint256) {
        uint256 bad;
        assembly {
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                if iszero(lt(p, end)) {
                    bad := 1
                    break
                }
                let b := byte(0, calldataload(p))
                switch lt(b, 0xc0)
                case 1 {
                    if iszero(and(gt(b, 0x7f), lt(b, 0xa1))) {
                        bad := 1
                        break
                    }
                    p := add(p, sub(b, 0x7f))
                }
                default {
                    if gt(b, 0xdf) {
                        bad := 1
                        break
                    }
                    p := add(p, sub(b, 0xbf))
                }
            }
            if gt(p, end) { bad := 1 }
        }
        if (bad != 0) revert MptMalformedNode(used);
        return p;
    }


    /// @dev Resolves the child reference item at `child` (inside a node ending at `end`).
    function _follow(uint256 child, uint256 end, uint256 used)
        private
        pure
        returns (bool isInline, bytes32 expected, uint256 ptr, uint256 nodeEnd)
    {
        (bool isList, uint256 payload, uint256 len) = RlpCalldata.item(child, end);
        if (isList) {
            // Inline node: the embedded list itself, shorter than 32 bytes.
            nodeEnd = payload + len;
            if (nodeEnd - child >= 32) revert MptMalformedNode(used);
            return (true, bytes32(0), child, nodeEnd);
        }
        if (len == 32) {
            assembly {
                expected := calldataload(payload)
            }
            return (false, expected, 0, 0);
        }
        if (len == 0) revert MptKeyNotFound(used);
        revert MptMalformedNode(used);
    }

    /// @dev Matches the hex-prefix path item at `ptr` against the key from `keyPos`.
    ///      Returns whether the node is a leaf and how many nibbles the path has.
    function _matchPath(uint256 ptr, uint256 end, Walk memory w) private pure returns (bool leaf, uint256 pathNibbles) {
        uint256 used = w.used;
        uint256 keyPos = w.keyPos;
        (uint256 payload, uint256 len) = RlpCalldata.string_(ptr, end);
        if (len == 0) revert MptMalformedNode(used);
        uint256 flag;
        assembly {
            flag := shr(4, byte(0, calldataload(payload)))
        }
        if (flag > 3) revert MptMalformedNode(used);
        leaf = flag >= 2;
        uint256 odd = flag & 1;
        pathNibbles = 2 * len - 2 + odd;
        if (keyPos + pathNibbles > w.keyNibbles) revert MptKeyNotFound(used);
        // Nibble j of the path is nibble (j + 2 - odd) of the payload.
        for (uint256 j; j < pathNibbles; ++j) {
            uint256 q = j + 2 - odd;
            uint256 b;
            assembly {
                b := byte(0, calldataload(add(payload, shr(1, q))))
            }
            uint256 pathNibble = (q & 1 == 0) ? b >> 4 : b & 0x0f;
            if (pathNibble != _nibble(w.key, keyPos + j)) revert MptKeyNotFound(used);
        }
    }

    /// @dev Nibble `i` of a left-aligned key.
    function _nibble(bytes32 key, uint256 i) private pure returns (uint256) {
        return (uint256(key) >> (252 - 4 * i)) & 0x0f;
    }

    /// @dev keccak256 of calldata [ptr, ptr + len).
    function _keccak(uint256 ptr, uint256 len) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, ptr, len)
            h := keccak256(m, len)
        }
    }
}
