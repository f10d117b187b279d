// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IInvoiceService} from "./interfaces/IInvoiceService.sol";

/*
 * AccessPass: an example service that a payment unlocks.
 *
 * A merchant deploys it next to PaymentSettlement and names it as the `service` of its
 * invoices. When such an invoice settles, PaymentSettlement calls onInvoiceSettled and the
 * pass credits a holder with calls and/or seconds of access, as the invoice's serviceId says:
 *
 *     serviceId = holder (160 bits) << 96 | calls (48 bits) << 48 | seconds (48 bits)
 *
 * The holder is a Metis address (or any key the service recognises); zero means the payer,
 * which only GOAT payments have (a Bitcoin payment has no Metis address: name a holder).
 * The merchant signed the serviceId as part of the terms, so the grant is what it priced.
 * Only invoices of this pass's merchant count: anyone can sign terms naming this contract,
 * but PaymentSettlement reports the signer and the pass ignores strangers (it reverts, and
 * PaymentSettlement records the hook as failed without undoing the settlement).
 *
 * Using it: the service checks hasAccess(holder); a call-metered service has the holder (or
 * the merchant on its behalf) spend a call with use(holder), which emits CallUsed.
 */

/// @title AccessPass
/// @author gmrelay
/// @notice Calls or time of access credited by settled invoices.
contract AccessPass is IInvoiceService {
    /// @notice The PaymentSettlement whose calls count.
    address public immutable settlement;

    /// @notice The merchant whose invoices count.
    address public immutable merchant;

    /// @dev calls (128 bits) | validUntil (64 bits) << 128.
    mapping(address holder => uint256 pass) private _passes;

    /// @notice A settled invoice credited a holder.
    /// @param invoiceId The invoice.
    /// @param holder Who got access.
    /// @param calls Calls now left.
    /// @param validUntil Unix time until which timed access runs.
    event AccessGranted(bytes32 indexed invoiceId, address indexed holder, uint256 calls, uint256 validUntil);

    /// @notice A call was spent.
    /// @param holder Whose call.
    /// @param callsLeft Calls left.
    event CallUsed(address indexed holder, uint256 callsLeft);

    /// @notice onInvoiceSettled came from another contract than the settlement.
    error NotSettlement(address caller);

    /// @notice The invoice belongs to another merchant.
    error ForeignMerchant(address merchant);

    /// @notice Neither a holder in the serviceId nor a payer address.
    error NoHolder(bytes32 invoiceId);

    /// @notice The invoice grants nothing (zero calls and zero seconds).
    error EmptyGrant(bytes32 invoiceId);

    /// @notice Only the holder or the merchant may spend a holder's call.
    error NotAllowed(address caller);

    /// @notice The holder has neither time nor calls left.
    error NoAccess(address holder);

    /// @notice Deploys a pass.
    /// @param settlement_ The PaymentSettlement.
    /// @param merchant_ The merchant whose invoices grant access.
    constructor(address settlement_, address merchant_) {
        settlement = settlement_;
        merchant = merchant_;
    }

    /// @inheritdoc IInvoiceService
    function onInvoiceSettled(bytes32 invoiceId, address merchant_, address payer, uint256, bytes32 serviceId)
        external
    {
        if (msg.sender != settlement) revert NotSettlement(msg.sender);
        if (merchant_ != merchant) revert ForeignMerchant(merchant_);
        address holder = address(uint160(uint256(serviceId) >> 96));
        if (holder == address(0)) holder = payer;
        if (holder == address(0)) revert NoHolder(invoiceId);
        uint256 calls = uint48(uint256(serviceId) >> 48);
        uint256 seconds_ = uint48(uint256(serviceId));
        if (calls == 0 && seconds_ == 0) revert EmptyGrant(invoiceId);
        uint256 pass = _passes[holder];
        uint256 left = uint128(pass) + calls;
        uint256 until = pass >> 128;
        if (seconds_ != 0) until = (until > block.timestamp ? until : block.timestamp) + seconds_;
        _passes[holder] = left | (until << 128);
        emit AccessGranted(invoiceId, holder, left, until);
    }

    /// @notice Spends one call of `holder` (unless its timed access runs). Holder or merchant only.
    /// @param holder The holder.
    function use(address holder) external {
        if (msg.sender != holder && msg.sender != merchant) revert NotAllowed(msg.sender);
        uint256 pass = _passes[holder];
        if (pass >> 128 >= block.timestamp) return;
        uint256 left = uint128(pass);
        if (left == 0) revert NoAccess(holder);
        _passes[holder] = pass - 1;
        emit CallUsed(holder, left - 1);
    }

    /// @notice Whether `holder` may use the service now.
    /// @param holder The holder.
    /// @return True with calls left or timed access running.
    function hasAccess(address holder) external view returns (bool) {
        uint256 pass = _passes[holder];
        return uint128(pass) != 0 || pass >> 128 >= block.timestamp;
    }

    /// @notice A holder's pass.
    /// @param holder The holder.
    /// @return calls Calls left.
    /// @return validUntil Unix time until which timed access runs (0 if never granted).
    function passOf(address holder) external view returns (uint256 calls, uint256 validUntil) {
        uint256 pass = _passes[holder];
        return (uint128(pass), pass >> 128);
    }

    /// @notice The serviceId granting `calls` calls and `seconds_` seconds to `holder`.
    /// @param holder The holder (zero: the GOAT payer).
    /// @param calls Calls granted.
    /// @param seconds_ Seconds granted.
    /// @return The serviceId.
    function serviceIdFor(address holder, uint48 calls, uint48 seconds_) external pure returns (bytes32) {
        return bytes32((uint256(uint160(holder)) << 96) | (uint256(calls) << 48) | uint256(seconds_));
    }
}
