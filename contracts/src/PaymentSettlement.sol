// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IBtcLightClient} from "./interfaces/IBtcLightClient.sol";
import {IGoatHeaderStore} from "./interfaces/IGoatHeaderStore.sol";
import {MerklePatriciaProof} from "./lib/MerklePatriciaProof.sol";
import {RlpCalldata} from "./lib/RlpCalldata.sol";

/*
 * PaymentSettlement: x402 invoices on Metis, settled exactly once by a proof of payment on
 * Bitcoin (SPV through BtcLightClient) or on GOAT Network (receipt proof against a
 * committee-attested header in GoatHeaderStore).
 *
 * Exactly-once rules:
 *   - an invoice settles at most once (status Open -> Settled);
 *   - a source payment settles at most one invoice: the replay key of a BTC payment is
 *     keccak256(abi.encode(txid, vout)) of the paying output, of a GOAT payment
 *     keccak256(abi.encode(blockHash, txIndex, transferLogIndex)); a used key is refused;
 *   - the payment names the invoice: BTC through an OP_RETURN output `6a 20 <invoiceId>`
 *     (OP_RETURN, a 32-byte push), GOAT through the EIP-3009 authorization nonce
 *     (AuthorizationUsed(authorizer, nonce == invoiceId));
 *   - an invoice settles only while block.timestamp <= expiry (Metis time).
 *
 * Storage for gas: an invoice keeps keccak256(payee) in its own slot and packs asset,
 * expiry, rail and status in one slot, so settlement reads three slots (payee hash,
 * asset|expiry|rail|status, amount) and rewrites one; the payee bytes and serviceId are
 * stored for the views only. Proof bytes stay in calldata: the raw Bitcoin transaction,
 * the receipt and the trie nodes are parsed in place.
 *
 * GOAT receipts: the Merkle-Patricia proof (key rlp(txIndex)) must lead from the attested
 * receiptsRoot to exactly the supplied receipt bytes; typed receipts (EIP-2718, first byte
 * <= 0x7f) and legacy receipts (an RLP list) are accepted; status must be 1. The
 * AuthorizationUsed and Transfer logs must both be emitted by the invoice's asset (a
 * look-alike token at another address does not count) and be adjacent in the receipt
 * (EIP-3009 tokens emit AuthorizationUsed immediately before the Transfer they authorize),
 * which ties the transfer to that authorization. Log indexes are positions in the
 * receipt's log list, not block-wide log indexes.
 *
 * Invoice creation is permissionless and first come, first served: an id can be taken only
 * once. Services should derive ids from data an outsider cannot predict before the
 * creating transaction is public (e.g. keccak256 of a server secret and the request).
 */

/// @title PaymentSettlement
/// @author gmrelay
/// @notice Invoices payable on Bitcoin or GOAT Network, settled on Metis with on-chain proofs.
contract PaymentSettlement {
    using RlpCalldata for uint256;

    // ---------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------

    /// @notice Where an invoice is paid: Bitcoin (0) or GOAT Network (1).
    enum Rail {
        BTC,
        GOAT
    }

    /// @notice Invoice life cycle.
    enum Status {
        None,
        Open,
        Settled
    }

    /// @notice An invoice as returned by the `invoice` view.
    /// @param rail Payment rail.
    /// @param status Life-cycle status.
    /// @param payee Bitcoin scriptPubKey (BTC) or 20-byte address (GOAT).
    /// @param asset GOAT token address (zero for BTC).
    /// @param amount Minimum amount, in satoshis (BTC) or token base units (GOAT).
    /// @param expiry Last unix time (inclusive) at which the invoice may settle.
    /// @param serviceId Opaque service identifier chosen by the creator.
    struct Invoice {
        Rail rail;
        Status status;
        bytes payee;
        address asset;
        uint256 amount;
        uint64 expiry;
        bytes32 serviceId;
    }

    /// @notice Proof of a Bitcoin payment.
    /// @param inclusion SPV proof checked by the light client (raw tx in legacy serialization).
    /// @param outputIndex Index (vout) of the output paying the invoice's script.
    struct BtcProof {
        IBtcLightClient.TxProof inclusion;
        uint256 outputIndex;
    }

    /// @notice Proof of a GOAT (EIP-3009) payment.
    /// @param blockHash Attested GOAT block containing the payment transaction.
    /// @param txIndex Index of the transaction in the block (trie key rlp(txIndex)).
    /// @param receipt The transaction's consensus-encoded receipt (type byte || rlp, or rlp).
    /// @param proof Receipts-trie nodes from the root to the receipt's leaf.
    /// @param authorizationLogIndex Position of AuthorizationUsed in the receipt's logs.
    /// @param transferLogIndex Position of the Transfer in the receipt's logs.
    struct GoatProof {
        bytes32 blockHash;
        uint256 txIndex;
        bytes receipt;
        bytes[] proof;
        uint256 authorizationLogIndex;
        uint256 transferLogIndex;
    }

    /// @dev Storage layout: slot 0 payeeHash; slot 1 asset|expiry|rail|status; slot 2 amount.
    struct StoredInvoice {
        bytes32 payeeHash;
        address asset;
        uint64 expiry;
        Rail rail;
        Status status;
        uint256 amount;
        bytes32 serviceId;
        bytes payee;
    }

    // ---------------------------------------------------------------------------------
    // Constants and immutables
    // ---------------------------------------------------------------------------------

    /// @notice topic0 of EIP-3009 AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce).
    bytes32 public constant AUTHORIZATION_USED_TOPIC = keccak256("AuthorizationUsed(address,bytes32)");

    /// @notice topic0 of ERC-20 Transfer(address indexed from, address indexed to, uint256 value).
    bytes32 public constant TRANSFER_TOPIC = keccak256("Transfer(address,address,uint256)");

    /// @notice Longest Bitcoin payee script accepted (consensus MAX_SCRIPT_SIZE).
    uint256 public constant MAX_SCRIPT_LENGTH = 10_000;

    /// @notice The Bitcoin light client.
    IBtcLightClient public immutable btcLightClient;

    /// @notice The GOAT header store.
    IGoatHeaderStore public immutable goatHeaderStore;

    /// @notice Confirmations a Bitcoin payment needs.
    uint256 public immutable minBtcConfirmations;

    // ---------------------------------------------------------------------------------
    // Storage
    // ---------------------------------------------------------------------------------

    mapping(bytes32 invoiceId => StoredInvoice) private _invoices;

    /// @notice Invoice settled by a payment, by replay key (zero: unused).
    mapping(bytes32 paymentKey => bytes32 invoiceId) public settledBy;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice An invoice was created.
    /// @param invoiceId Invoice id (also the EIP-3009 nonce / OP_RETURN payload of its payment).
    /// @param rail Payment rail (0 BTC, 1 GOAT).
    /// @param creator Account that created it.
    /// @param payee Bitcoin scriptPubKey or 20-byte GOAT address.
    /// @param asset GOAT token (zero for BTC).
    /// @param amount Minimum amount.
    /// @param expiry Last unix time at which it may settle.
    /// @param serviceId Service identifier.
    event InvoiceCreated(
        bytes32 indexed invoiceId,
        uint8 indexed rail,
        address indexed creator,
        bytes payee,
        address asset,
        uint256 amount,
        uint64 expiry,
        bytes32 serviceId
    );

    /// @notice An invoice was settled.
    /// @param invoiceId Invoice id.
    /// @param payer BTC: the first input's outpoint (prev txid || vout LE, 36 bytes, raw
    ///        order); GOAT: the 20-byte authorizer address.
    /// @param rail Payment rail (0 BTC, 1 GOAT).
    /// @param sourceTx BTC: txid (internal byte order); GOAT: block hash.
    /// @param sourceIndex BTC: vout of the paying output; GOAT: transaction index in the block.
    /// @param amount Amount actually paid (output value or transfer value).
    event InvoiceSettled(
        bytes32 indexed invoiceId, bytes payer, uint8 rail, bytes32 sourceTx, uint256 sourceIndex, uint256 amount
    );

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice A constructor address is zero.
    error ZeroAddress();

    /// @notice The confirmation requirement must be at least 1.
    error InvalidConfirmations();

    /// @notice Invoice ids must be non-zero.
    error ZeroInvoiceId();

    /// @notice The id is already taken.
    error InvoiceExists(bytes32 invoiceId);

    /// @notice Rail must be 0 (BTC) or 1 (GOAT).
    error InvalidRail(uint8 rail);

    /// @notice The payee is malformed for the rail (BTC: 1..10,000-byte script; GOAT: non-zero 20-byte address).
    error InvalidPayee();

    /// @notice BTC invoices take no asset; GOAT invoices need one.
    error InvalidAsset(address asset);

    /// @notice Amounts must be non-zero.
    error ZeroAmount();

    /// @notice The expiry is already past at creation.
    error InvalidExpiry(uint64 expiry, uint256 timestamp);

    /// @notice No such invoice.
    error UnknownInvoice(bytes32 invoiceId);

    /// @notice The invoice is already settled.
    error AlreadySettled(bytes32 invoiceId);

    /// @notice The invoice expired (block.timestamp > expiry).
    error InvoiceExpired(bytes32 invoiceId, uint64 expiry, uint256 timestamp);

    /// @notice The proof is for the other rail.
    error WrongRail(uint8 expected, uint8 actual);

    /// @notice The payment (replay key) already settled `invoiceId`.
    error PaymentAlreadyUsed(bytes32 paymentKey, bytes32 invoiceId);

    /// @notice The paid amount is below the invoice amount.
    error AmountTooLow(uint256 paid, uint256 required);

    /// @notice The payment goes to another payee.
    error WrongPayee();

    /// @notice The raw transaction is malformed (or uses the witness serialization) near `offset`.
    error MalformedTx(uint256 offset);

    /// @notice The transaction has `outputCount` outputs; `outputIndex` does not exist.
    error NoPaymentOutput(uint256 outputIndex, uint256 outputCount);

    /// @notice The transaction has no `OP_RETURN <32 bytes>` output.
    error MissingOpReturn();

    /// @notice The payment names another invoice.
    error WrongInvoiceId(bytes32 expected, bytes32 got);

    /// @notice The GOAT block is not attested in the header store.
    error UnknownGoatHeader(bytes32 blockHash);

    /// @notice The transaction index does not fit 64 bits.
    error TxIndexTooLarge(uint256 txIndex);

    /// @notice The supplied receipt differs from the value proven in the receipts trie.
    error ReceiptMismatch();

    /// @notice The receipt is malformed.
    error MalformedReceipt();

    /// @notice The transaction failed (receipt status != 1).
    error ReceiptFailed(uint256 status);

    /// @notice The receipt has no log at `index`.
    error LogNotFound(uint256 index);

    /// @notice The log at `index` is not the expected event (topic0, topic count or data size).
    error UnexpectedLog(uint256 index);

    /// @notice The log was emitted by `emitter`, not by the invoice's asset.
    error WrongToken(address emitter, address asset);

    /// @notice The Transfer is from `from`, not from the authorizer.
    error WrongPayer(address from, address authorizer);

    /// @notice The AuthorizationUsed and Transfer logs are not adjacent.
    error LogsNotAdjacent(uint256 authorizationLogIndex, uint256 transferLogIndex);

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the settlement contract.
    /// @param btcLightClient_ The BtcLightClient.
    /// @param goatHeaderStore_ The GoatHeaderStore.
    /// @param minBtcConfirmations_ Confirmations required of Bitcoin payments (>= 1).
    constructor(IBtcLightClient btcLightClient_, IGoatHeaderStore goatHeaderStore_, uint256 minBtcConfirmations_) {
        if (address(btcLightClient_) == address(0) || address(goatHeaderStore_) == address(0)) revert ZeroAddress();
        if (minBtcConfirmations_ == 0) revert InvalidConfirmations();
        btcLightClient = btcLightClient_;
        goatHeaderStore = goatHeaderStore_;
        minBtcConfirmations = minBtcConfirmations_;
    }

    // ---------------------------------------------------------------------------------
    // Invoices
    // ---------------------------------------------------------------------------------

    /// @notice Creates an invoice. Anyone may call; each id can be used once.
    /// @param id Invoice id: the OP_RETURN payload (BTC) or the EIP-3009 nonce (GOAT) of its payment.
    /// @param rail 0 for BTC, 1 for GOAT.
    /// @param payee Bitcoin scriptPubKey (BTC) or the 20-byte payee address (GOAT).
    /// @param asset GOAT token address (GOAT), zero (BTC).
    /// @param amount Minimum amount in satoshis (BTC) or token base units (GOAT).
    /// @param expiry Last unix time (inclusive, Metis clock) at which it may settle.
    /// @param serviceId Opaque service identifier.
    function createInvoice(
        bytes32 id,
        uint8 rail,
        bytes calldata payee,
        address asset,
        uint256 amount,
        uint64 expiry,
        bytes32 serviceId
    ) external {
        if (id == bytes32(0)) revert ZeroInvoiceId();
        StoredInvoice storage inv = _invoices[id];
        if (inv.status != Status.None) revert InvoiceExists(id);
        if (rail == uint8(Rail.BTC)) {
            if (payee.length == 0 || payee.length > MAX_SCRIPT_LENGTH) revert InvalidPayee();
            if (asset != address(0)) revert InvalidAsset(asset);
        } else if (rail == uint8(Rail.GOAT)) {
            if (payee.length != 20 || bytes20(payee) == bytes20(0)) revert InvalidPayee();
            if (asset == address(0)) revert InvalidAsset(asset);
        } else {
            revert InvalidRail(rail);
        }
        if (amount == 0) revert ZeroAmount();
        if (expiry < block.timestamp) revert InvalidExpiry(expiry, block.timestamp);

        inv.payeeHash = keccak256(payee);
        inv.asset = asset;
        inv.expiry = expiry;
        inv.rail = Rail(rail);
        inv.status = Status.Open;
        inv.amount = amount;
        inv.serviceId = serviceId;
        inv.payee = payee;
        emit InvoiceCreated(id, rail, msg.sender, payee, asset, amount, expiry, serviceId);
    }

    /// @notice Whether an invoice is settled.
    /// @param id Invoice id.
    /// @return True once settled.
    function isSettled(bytes32 id) external view returns (bool) {
        return _invoices[id].status == Status.Settled;
    }

    /// @notice An invoice (status None and empty fields if unknown).
    /// @param id Invoice id.
    /// @return The invoice.
    function invoice(bytes32 id) external view returns (Invoice memory) {
        StoredInvoice storage inv = _invoices[id];
        return Invoice({
            rail: inv.rail,
            status: inv.status,
            payee: inv.payee,
            asset: inv.asset,
            amount: inv.amount,
            expiry: inv.expiry,
            serviceId: inv.serviceId
        });
    }

    /// @notice Replay key of a Bitcoin payment.
    /// @param txid Transaction id (internal byte order).
    /// @param vout Output index.
    /// @return keccak256(abi.encode(txid, vout)).
    function btcPaymentKey(bytes32 txid, uint256 vout) public pure returns (bytes32) {
        return keccak256(abi.encode(txid, vout));
    }

    /// @notice Replay key of a GOAT payment.
    /// @param blockHash GOAT block hash.
    /// @param txIndex Transaction index in the block.
    /// @param transferLogIndex Position of the Transfer log in the receipt.
    /// @return keccak256(abi.encode(blockHash, txIndex, transferLogIndex)).
    function goatPaymentKey(bytes32 blockHash, uint256 txIndex, uint256 transferLogIndex) public pure returns (bytes32) {
        return keccak256(abi.encode(blockHash, txIndex, transferLogIndex));
    }

    // ---------------------------------------------------------------------------------
    // Bitcoin settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles a BTC invoice with an SPV proof of a payment carrying the invoice id.
    /// @dev The transaction must have `minBtcConfirmations` on the light client's best chain,
    ///      output `proof.outputIndex` must pay the invoice's script at least `amount`
    ///      satoshis, and some output must be `OP_RETURN <invoiceId>` (6a 20 <32 bytes>).
    /// @param invoiceId Invoice to settle.
    /// @param proof The payment proof.
    function settleBtc(bytes32 invoiceId, BtcProof calldata proof) external {
        StoredInvoice storage inv = _invoices[invoiceId];
        _requireOpen(inv, invoiceId, Rail.BTC);
        (bytes32 txid,,,) = btcLightClient.verifyTx(proof.inclusion, minBtcConfirmations);

        uint256 outputIndex = proof.outputIndex;
        (uint256 paid, bytes memory payer) =
            _parseBtcPayment(proof.inclusion.rawTx, outputIndex, inv.payeeHash, invoiceId);
        uint256 required = inv.amount;
        if (paid < required) revert AmountTooLow(paid, required);

        _consume(btcPaymentKey(txid, outputIndex), invoiceId);
        inv.status = Status.Settled;
        emit InvoiceSettled(invoiceId, payer, uint8(Rail.BTC), txid, outputIndex, paid);
    }

    /// @dev Walks a legacy-serialized transaction; returns the value of output `outputIndex`
    ///      (whose script must hash to `payeeHash`) and the first input's outpoint, and
    ///      requires an `OP_RETURN <invoiceId>` output.
    function _parseBtcPayment(bytes calldata rawTx, uint256 outputIndex, bytes32 payeeHash, bytes32 invoiceId)
        private
        pure
        returns (uint256 paid, bytes memory payer)
    {
        uint256 p;
        uint256 end;
        assembly {
            p := rawTx.offset
            end := add(p, rawTx.length)
        }
        uint256 start = p;
        p += 4; // version
        uint256 count;
        (count, p) = _varint(p, end, start);
        // Zero inputs is also how the witness serialization (marker 0x00) starts: refused.
        if (count == 0 || p + 36 > end) revert MalformedTx(p - start);
        payer = new bytes(36);
        assembly {
            calldatacopy(add(payer, 32), p, 36)
        }
        for (uint256 i; i < count; ++i) {
            uint256 scriptLength;
            (scriptLength, p) = _varint(p + 36, end, start); // outpoint
            p += scriptLength + 4; // scriptSig, sequence
            if (p > end) revert MalformedTx(end - start);
        }
        (count, p) = _varint(p, end, start);
        if (outputIndex >= count) revert NoPaymentOutput(outputIndex, count);

        bool sawOpReturn;
        bool named;
        bytes32 otherId;
        for (uint256 j; j < count; ++j) {
            if (p + 9 > end) revert MalformedTx(p - start);
            uint256 value = _readLe(p, 8);
            uint256 scriptLength;
            (scriptLength, p) = _varint(p + 8, end, start);
            if (p + scriptLength > end) revert MalformedTx(p - start);
            if (j == outputIndex) {
                bytes32 scriptHash;
                assembly ("memory-safe") {
                    let m := mload(0x40)
                    calldatacopy(m, p, scriptLength)
                    scriptHash := keccak256(m, scriptLength)
                }
                if (scriptHash != payeeHash) revert WrongPayee();
                paid = value;
            }
            if (scriptLength == 34) {
                uint256 head;
                bytes32 data;
                assembly {
                    head := shr(240, calldataload(p))
                    data := calldataload(add(p, 2))
                }
                if (head == 0x6a20) {
                    if (data == invoiceId) {
                        named = true;
                    } else if (!sawOpReturn) {
                        otherId = data;
                    }
                    sawOpReturn = true;
                }
            }
            p += scriptLength;
        }
        if (p + 4 != end) revert MalformedTx(p - start); // lock time, nothing after it
        if (!named) {
            if (sawOpReturn) revert WrongInvoiceId(invoiceId, otherId);
            revert MissingOpReturn();
        }
    }

    /// @dev Bitcoin CompactSize at `p`; returns the value and the offset after it.
    function _varint(uint256 p, uint256 end, uint256 start) private pure returns (uint256 value, uint256 next) {
        if (p >= end) revert MalformedTx(p - start);
        uint256 prefix;
        assembly {
            prefix := byte(0, calldataload(p))
        }
        if (prefix < 0xfd) return (prefix, p + 1);
        uint256 size = prefix == 0xfd ? 2 : prefix == 0xfe ? 4 : 8;
        next = p + 1 + size;
        if (next > end) revert MalformedTx(p - start);
        value = _readLe(p + 1, size);
    }

    /// @dev Little-endian integer of `size` (<= 32) bytes at calldata offset `p`.
    function _readLe(uint256 p, uint256 size) private pure returns (uint256 value) {
        assembly {
            let word := calldataload(p)
            for { let i := 0 } lt(i, size) { i := add(i, 1) } { value := or(value, shl(mul(i, 8), byte(i, word))) }
        }
    }

    // ---------------------------------------------------------------------------------
    // GOAT settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles a GOAT invoice with a receipt proof of an EIP-3009 payment.
    /// @dev The receipt must be in the attested block's receipts trie at key rlp(txIndex),
    ///      have status 1, and contain, emitted by the invoice's asset and adjacent,
    ///      AuthorizationUsed(authorizer, invoiceId) and Transfer(authorizer, payee, value >= amount).
    /// @param invoiceId Invoice to settle.
    /// @param proof The payment proof.
    function settleGoat(bytes32 invoiceId, GoatProof calldata proof) external {
        StoredInvoice storage inv = _invoices[invoiceId];
        address asset = _requireOpen(inv, invoiceId, Rail.GOAT);
        (address authorizer, uint256 paid) = _verifyGoatPayment(inv, asset, invoiceId, proof);

        bytes32 blockHash = proof.blockHash;
        uint256 txIndex = proof.txIndex;
        _consume(goatPaymentKey(blockHash, txIndex, proof.transferLogIndex), invoiceId);
        inv.status = Status.Settled;
        emit InvoiceSettled(invoiceId, abi.encodePacked(authorizer), uint8(Rail.GOAT), blockHash, txIndex, paid);
    }

    /// @dev Proves the receipt and checks its payment logs against the invoice; returns payer and value.
    function _verifyGoatPayment(StoredInvoice storage inv, address asset, bytes32 invoiceId, GoatProof calldata proof)
        private
        view
        returns (address authorizer, uint256 paid)
    {
        bytes32 root = goatHeaderStore.receiptsRoot(proof.blockHash);
        if (root == bytes32(0)) revert UnknownGoatHeader(proof.blockHash);
        (uint256 logsPtr, uint256 logsEnd) = _provenReceiptLogs(root, proof);
        address payee;
        (authorizer, payee, paid) =
            _checkPaymentLogs(logsPtr, logsEnd, proof.authorizationLogIndex, proof.transferLogIndex, asset, invoiceId);
        if (keccak256(abi.encodePacked(payee)) != inv.payeeHash) revert WrongPayee();
        uint256 required = inv.amount;
        if (paid < required) revert AmountTooLow(paid, required);
    }

    /// @dev Verifies the receipt against the receipts root; returns the bounds of its logs list payload.
    function _provenReceiptLogs(bytes32 root, GoatProof calldata proof)
        private
        pure
        returns (uint256 logsPtr, uint256 logsEnd)
    {
        (bytes32 key, uint256 keyNibbles) = _rlpIndexKey(proof.txIndex);
        (uint256 valuePtr, uint256 valueLength) = MerklePatriciaProof.get(root, key, keyNibbles, proof.proof);
        bytes calldata receipt = proof.receipt;
        uint256 p;
        assembly {
            p := receipt.offset
        }
        if (receipt.length != valueLength || _keccak(p, valueLength) != _keccak(valuePtr, valueLength)) {
            revert ReceiptMismatch();
        }
        return _receiptLogs(p, p + valueLength);
    }

    /// @dev Decodes a consensus-encoded receipt in calldata [p, end): requires status 1 and
    ///      returns the bounds of the logs list payload.
    function _receiptLogs(uint256 p, uint256 end) private pure returns (uint256 logsPtr, uint256 logsEnd) {
        if (p >= end) revert MalformedReceipt();
        uint256 first;
        assembly {
            first := byte(0, calldataload(p))
        }
        if (first < 0x80) {
            ++p; // EIP-2718 type byte
        } else if (first < 0xc0) {
            revert MalformedReceipt();
        }
        (uint256 q, uint256 listEnd) = p.list(end);
        if (listEnd != end) revert MalformedReceipt();
        (uint256 statusPtr, uint256 statusLength) = q.string_(end);
        if (statusLength > 1) revert MalformedReceipt(); // pre-Byzantium state root
        uint256 status = RlpCalldata.loadBE(statusPtr, statusLength);
        if (status != 1) revert ReceiptFailed(status);
        q = (statusPtr + statusLength).skip(end); // cumulativeGasUsed
        q = q.skip(end); // logsBloom
        (logsPtr, logsEnd) = q.list(end);
        if (logsEnd != end) revert MalformedReceipt();
    }

    /// @dev Checks the AuthorizationUsed and Transfer logs; returns authorizer, recipient and value.
    function _checkPaymentLogs(
        uint256 logsPtr,
        uint256 logsEnd,
        uint256 authIndex,
        uint256 transferIndex,
        address asset,
        bytes32 invoiceId
    ) private pure returns (address authorizer, address to, uint256 value) {
        if (authIndex + 1 != transferIndex && transferIndex + 1 != authIndex) {
            revert LogsNotAdjacent(authIndex, transferIndex);
        }
        (uint256 authLog, uint256 transferLog) = _findLogs(logsPtr, logsEnd, authIndex, transferIndex);
        authorizer = _checkAuthorizationLog(authLog, logsEnd, authIndex, asset, invoiceId);
        (to, value) = _checkTransferLog(transferLog, logsEnd, transferIndex, asset, authorizer);
    }

    /// @dev Calldata offsets of logs `a` and `b` in the logs list payload [p, end).
    function _findLogs(uint256 p, uint256 end, uint256 a, uint256 b)
        private
        pure
        returns (uint256 logA, uint256 logB)
    {
        uint256 last = a > b ? a : b;
        for (uint256 i; i <= last; ++i) {
            if (p >= end) revert LogNotFound(i);
            if (i == a) logA = p;
            if (i == b) logB = p;
            p = p.skip(end);
        }
    }

    /// @dev AuthorizationUsed(authorizer, nonce == invoiceId) emitted by `asset`; returns the authorizer.
    function _checkAuthorizationLog(uint256 log, uint256 end, uint256 index, address asset, bytes32 invoiceId)
        private
        pure
        returns (address authorizer)
    {
        bytes32[3] memory topics;
        (address emitter,, uint256 dataLength) = _readLog(log, end, topics, index);
        if (emitter != asset) revert WrongToken(emitter, asset);
        if (topics[0] != AUTHORIZATION_USED_TOPIC || dataLength != 0) revert UnexpectedLog(index);
        if (topics[2] != invoiceId) revert WrongInvoiceId(invoiceId, topics[2]);
        authorizer = _topicAddress(topics[1], index);
    }

    /// @dev Transfer(authorizer, to, value) emitted by `asset`; returns recipient and value.
    function _checkTransferLog(uint256 log, uint256 end, uint256 index, address asset, address authorizer)
        private
        pure
        returns (address to, uint256 value)
    {
        bytes32[3] memory topics;
        (address emitter, uint256 dataPtr, uint256 dataLength) = _readLog(log, end, topics, index);
        if (emitter != asset) revert WrongToken(emitter, asset);
        if (topics[0] != TRANSFER_TOPIC || dataLength != 32) revert UnexpectedLog(index);
        address from = _topicAddress(topics[1], index);
        if (from != authorizer) revert WrongPayer(from, authorizer);
        to = _topicAddress(topics[2], index);
        value = RlpCalldata.loadBE(dataPtr, 32);
    }

    /// @dev Decodes log [address, [topics], data] at `ptr`; requires exactly three topics.
    function _readLog(uint256 ptr, uint256 end, bytes32[3] memory topics, uint256 index)
        private
        pure
        returns (address emitter, uint256 dataPtr, uint256 dataLength)
    {
        (uint256 p, uint256 logEnd) = ptr.list(end);
        (uint256 addressPtr, uint256 addressLength) = p.string_(logEnd);
        if (addressLength != 20) revert MalformedReceipt();
        assembly {
            emitter := shr(96, calldataload(addressPtr))
        }
        (uint256 t, uint256 topicsEnd) = (addressPtr + 20).list(logEnd);
        for (uint256 i; i < 3; ++i) {
            if (t >= topicsEnd) revert UnexpectedLog(index);
            (topics[i], t) = t.bytes32Item(topicsEnd);
        }
        if (t != topicsEnd) revert UnexpectedLog(index);
        (dataPtr, dataLength) = topicsEnd.string_(logEnd);
        if (dataPtr + dataLength != logEnd) revert MalformedReceipt();
    }

    /// @dev An indexed address topic (upper 96 bits must be zero).
    function _topicAddress(bytes32 topic, uint256 index) private pure returns (address) {
        if (uint256(topic) >> 160 != 0) revert UnexpectedLog(index);
        return address(uint160(uint256(topic)));
    }

    /// @dev rlp(txIndex) as a left-aligned trie key and its length in nibbles.
    function _rlpIndexKey(uint256 txIndex) private pure returns (bytes32 key, uint256 nibbles) {
        if (txIndex > type(uint64).max) revert TxIndexTooLarge(txIndex);
        if (txIndex == 0) return (bytes32(uint256(0x80) << 248), 2);
        if (txIndex < 0x80) return (bytes32(txIndex << 248), 2);
        uint256 size = 0;
        for (uint256 v = txIndex; v != 0; v >>= 8) ++size;
        key = bytes32(((0x80 + size) << 248) | (txIndex << (248 - 8 * size)));
        nibbles = 2 * (size + 1);
    }

    // ---------------------------------------------------------------------------------
    // Shared
    // ---------------------------------------------------------------------------------

    /// @dev Requires an open, unexpired invoice of `rail`; returns its asset.
    function _requireOpen(StoredInvoice storage inv, bytes32 invoiceId, Rail rail) private view returns (address) {
        Status status = inv.status;
        if (status == Status.None) revert UnknownInvoice(invoiceId);
        if (status == Status.Settled) revert AlreadySettled(invoiceId);
        if (inv.rail != rail) revert WrongRail(uint8(rail), uint8(inv.rail));
        uint64 expiry = inv.expiry;
        if (block.timestamp > expiry) revert InvoiceExpired(invoiceId, expiry, block.timestamp);
        return inv.asset;
    }

    /// @dev Marks a payment as used by `invoiceId`; reverts if already used.
    function _consume(bytes32 paymentKey, bytes32 invoiceId) private {
        bytes32 previous = settledBy[paymentKey];
        if (previous != bytes32(0)) revert PaymentAlreadyUsed(paymentKey, previous);
        settledBy[paymentKey] = invoiceId;
    }

    function _keccak(uint256 ptr, uint256 len) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, ptr, len)
            h := keccak256(m, len)
        }
    }
}
