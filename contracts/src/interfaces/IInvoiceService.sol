// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title IInvoiceService
/// @author gmrelay
/// @notice A merchant's service contract, called by PaymentSettlement when an invoice naming
///         it settles. The call gets PaymentSettlement.SERVICE_GAS gas; if it reverts, the
///         settlement stands and PaymentSettlement records the failure.
interface IInvoiceService {
    /// @notice An invoice naming this service was settled.
    /// @dev Check msg.sender (the PaymentSettlement) and `merchant` (anyone can settle terms
    ///      they signed themselves, naming any service).
    /// @param invoiceId The invoice id, invoiceIdFor(merchant, ref).
    /// @param merchant The merchant who signed or created the invoice.
    /// @param payer GOAT: the payer's address (the authorizer); Bitcoin: zero.
    /// @param amount Amount paid (satoshis or token base units).
    /// @param serviceId The invoice's serviceId.
    function onInvoiceSettled(bytes32 invoiceId, address merchant, address payer, uint256 amount, bytes32 serviceId)
        external;
}
