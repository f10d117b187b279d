// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IInvoiceService} from "../interfaces/IInvoiceService.sol";

/// @title TestMerchantWallet
/// @author gmrelay
/// @notice Test-only ERC-1271 merchant: a contract whose signatures are its owner's ECDSA signatures.
contract TestMerchantWallet {
    /// @notice The EOA whose signatures this wallet accepts.
    address public immutable owner;

    /// @notice Deploys the wallet.
    /// @param owner_ The signing key's address.
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice ERC-1271: 0x1626ba7e if `signature` is the owner's over `digest`.
    /// @param digest The digest.
    /// @param signature 65-byte (r, s, v).
    /// @return magic The ERC-1271 magic value or 0xffffffff.
    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4 magic) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        return ecrecover(digest, v, r, s) == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

/// @title TestHook
/// @author gmrelay
/// @notice Test-only service hook: records calls, or reverts, or burns all its gas.
contract TestHook is IInvoiceService {
    /// @notice 0 record, 1 revert, 2 burn all gas.
    uint256 public immutable mode;

    /// @notice Calls recorded.
    uint256 public calls;

    /// @notice The last invoice id seen.
    bytes32 public lastInvoice;

    /// @notice Deploys the hook.
    /// @param mode_ 0 record, 1 revert, 2 burn all gas.
    constructor(uint256 mode_) {
        mode = mode_;
    }

    /// @inheritdoc IInvoiceService
    function onInvoiceSettled(bytes32 invoiceId, address, address, uint256, bytes32) external {
        if (mode == 1) revert("hook says no");
        if (mode == 2) {
            for (;;) {
                calls += 1;
            }
        }
        calls += 1;
        lastInvoice = invoiceId;
    }
}
