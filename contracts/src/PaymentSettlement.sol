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
 * Exactly once, without a replay-key table:
 *   - an invoice settles at most once (status Open -> Settled);
 *   - every payment names exactly ONE invoice, so it can settle at most one:
 *       BTC:  the transaction's FIRST output whose script is `OP_RETURN <32 bytes>`
 *             (6a 20 <id>) names the invoice; later such outputs are ignored. The paying
 *             output (txid, vout) therefore belongs to that one invoice.
 *       GOAT: the EIP-3009 authorization nonce names the invoice, and the Transfer must be
 *             the log RIGHT AFTER its AuthorizationUsed (as EIP-3009 tokens emit them), so
 *             each Transfer log pairs with exactly one authorization, i.e. one invoice. A
 *             token accepts an (authorizer, nonce) pair once.
 *     Hence the replay keys keccak256(txid, vout) and keccak256(blockHash, txIndex,
 *     transferLogIndex) can never settle two invoices, and storing them (a fresh slot,
 *     22,100 gas per settlement) would add nothing; they are reported in InvoiceSettled
 *     through sourceTx / sourceIndex instead. The same transaction seen in two attested
 *     GOAT blocks (or a Bitcoin reorg) still names the same invoice, which settles once;
 *   - an invoice settles only while block.timestamp <= expiry (Metis time). Expiry is judged
 *     when settleBtc / settleGoat runs, not when the payment was made: set it with room for
 *     the confirmations, the relayer's header submission and (GOAT) the committee's
 *     attestation lag, or a timely payment can become unsettleable.
 *
 * Storage for gas: an invoice keeps keccak256(payee) in one slot and amount (96 bits),
 * expiry, rail and status in a second, so BTC settlement reads two slots and rewrites one;
 * GOAT settlement also reads the asset slot. Creator, payee bytes and serviceId are stored
 * for the views only. Proof bytes stay in calldata: the raw Bitcoin transaction, the receipt and
 * the trie nodes are parsed in place.
 *
 * GOAT receipts: the Merkle-Patricia proof (key rlp(txIndex)) must lead from the attested
 * receiptsRoot to exactly the supplied receipt bytes; typed receipts (EIP-2718, first byte
 * <= 0x7f) and legacy receipts (an RLP list) are accepted; status must be 1. Both logs must
 * be emitted by the invoice's asset (a look-alike token at another address does not
 * count). Log indexes are positions in the receipt's log list, not block-wide indexes.
 *
 * Invoice ids are derived on-chain from the creator: id = keccak256(abi.encode(creator, salt))
 * (invoiceIdFor), where creator is msg.sender of createInvoice and salt is any bytes32 the
 * creator picks (unique per invoice). Creation is permissionless, but nobody else can create
 * an invoice under the id a service is about to use, so an id cannot be squatted (taken
 * first with other terms and settled cheaply). The id is still what the payment carries
 * (BTC: the OP_RETURN payload; GOAT: the EIP-3009 nonce), and a creator can compute it
 * before creating the invoice. Payers and relayers should check invoice(id).creator (and
 * its terms) before paying.
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
    /// @param creator Account that created it (its id is invoiceIdFor(creator, salt)).
    /// @param payee Bitcoin scriptPubKey (BTC) or 20-byte address (GOAT).
    /// @param asset GOAT token address (zero for BTC).
    /// @param amount Minimum amount, in satoshis (BTC) or token base units (GOAT).
    /// @param expiry Last unix time (inclusive) at which the invoice may settle.
    /// @param serviceId Opaque service identifier chosen by the creator.
    struct Invoice {
        Rail rail;
        Status status;
        address creator;
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

    /// @dev Storage layout: slot 0 payeeHash; slot 1 `meta` = amount (96 bits) | expiry (64)
    ///      << 96 | rail (8) << 160 | status (8) << 168; slot 2 asset; then the view-only fields.
    struct StoredInvoice {
        bytes32 payeeHash;
        uint256 meta;
        address asset;
        address creator;
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

    uint256 private constant EXPIRY_SHIFT = 96;
    uint256 private constant RAIL_SHIFT = 160;
    uint256 private constant STATUS_SHIFT = 168;

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

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice An invoice was created.
    /// @param invoiceId Invoice id, keccak256(abi.encode(creator, salt)) (also the EIP-3009
    ///        nonce / OP_RETURN payload of its payment).
    /// @param rail Payment rail (0 BTC, 1 GOAT).
    /// @param creator Account that created it (msg.sender of createInvoice).
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

    /// @notice The creator already used this salt (the id is taken).
    error InvoiceExists(bytes32 invoiceId);

    /// @notice Rail must be 0 (BTC) or 1 (GOAT).
    error InvalidRail(uint8 rail);

    /// @notice The payee is malformed for the rail (BTC: 1..10,000-byte script; GOAT: non-zero 20-byte address).
    error InvalidPayee();

    /// @notice BTC invoices take no asset; GOAT invoices need one.
    error InvalidAsset(address asset);

    /// @notice Amounts must be non-zero.
    error ZeroAmount();

    /// @notice Amounts must fit in 96 bits.
    error AmountTooLarge(uint256 amount);

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

    /// @notice The light client returned data that is not a verifyTx result.
    error LightClientResponse();

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

    /// @notice The Transfer log must immediately follow the AuthorizationUsed log.
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

    /// @notice Creates an invoice with id invoiceIdFor(msg.sender, salt) = keccak256(abi.encode(msg.sender,
    ///         salt)). Anyone may call; only msg.sender can create ids derived from its address,
    ///         and each salt can be used once.
    /// @param salt Any bytes32 chosen by the creator, unique among its invoices.
    /// @param rail 0 for BTC, 1 for GOAT.
    /// @param payee Bitcoin scriptPubKey (BTC) or the 20-byte payee address (GOAT).
    /// @param asset GOAT token address (GOAT), zero (BTC).
    /// @param amount Minimum amount in satoshis (BTC) or token base units (GOAT).
    /// @param expiry Last unix time (inclusive, Metis clock) at which it may settle.
    /// @param serviceId Opaque service identifier.
    /// @return id The invoice id: the OP_RETURN payload (BTC) or the EIP-3009 nonce (GOAT) of its payment.
    function createInvoice(
        bytes32 salt,
        uint8 rail,
        bytes calldata payee,
        address asset,
        uint256 amount,
        uint64 expiry,
        bytes32 serviceId
    ) external returns (bytes32 id) {
        id = invoiceIdFor(msg.sender, salt);
        StoredInvoice storage inv = _invoices[id];
        if (inv.meta != 0) revert InvoiceExists(id);
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
        if (amount > type(uint96).max) revert AmountTooLarge(amount);
        if (expiry < block.timestamp) revert InvalidExpiry(expiry, block.timestamp);

        inv.payeeHash = keccak256(payee);
        inv.meta = amount | (uint256(expiry) << EXPIRY_SHIFT) | (uint256(rail) << RAIL_SHIFT)
            | (uint256(Status.Open) << STATUS_SHIFT);
        if (asset != address(0)) inv.asset = asset;
        inv.creator = msg.sender;
        if (serviceId != bytes32(0)) inv.serviceId = serviceId;
        inv.payee = payee;
        emit InvoiceCreated(id, rail, msg.sender, payee, asset, amount, expiry, serviceId);
    }

    /// @notice The id of the invoice `creator` creates (or would create) with `salt`.
    /// @param creator The creating account (msg.sender of createInvoice).
    /// @param salt The creator's salt.
    /// @return keccak256(abi.encode(creator, salt)).
    function invoiceIdFor(address creator, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(creator, salt));
    }

    /// @notice Whether an invoice is settled.
    /// @param id Invoice id.
    /// @return True once settled.
    function isSettled(bytes32 id) external view returns (bool) {
        return _status(_invoices[id].meta) == Status.Settled;
    }

    /// @notice An invoice (status None and empty fields if unknown).
    /// @param id Invoice id.
    /// @return The invoice.
    function invoice(bytes32 id) external view returns (Invoice memory) {
        StoredInvoice storage inv = _invoices[id];
        uint256 meta = inv.meta;
        return Invoice({
            rail: Rail(uint8(meta >> RAIL_SHIFT)),
            status: _status(meta),
            creator: inv.creator,
            payee: inv.payee,
            asset: inv.asset,
            amount: uint96(meta),
            expiry: uint64(meta >> EXPIRY_SHIFT),
            serviceId: inv.serviceId
        });
    }

    // ---------------------------------------------------------------------------------
    // Bitcoin settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles a BTC invoice with an SPV proof of a payment carrying the invoice id.
    /// @dev The transaction must have `minBtcConfirmations` on the light client's best chain,
    ///      output `proof.outputIndex` must pay the invoice's script at least `amount`
    ///      satoshis, and its first `OP_RETURN <32 bytes>` output (6a 20 <id>) must carry the
    ///      invoice id.
    /// @param invoiceId Invoice to settle.
    /// @param proof The payment proof.
    function settleBtc(bytes32 invoiceId, BtcProof calldata proof) external {
        StoredInvoice storage inv = _invoices[invoiceId];
        uint256 meta = _requireOpen(inv, invoiceId, Rail.BTC);
        bytes32 txid = _verifyInclusion(proof.inclusion);

        uint256 outputIndex = proof.outputIndex;
        (uint256 paid, bytes memory payer) =
            _parseBtcPayment(proof.inclusion.rawTx, outputIndex, inv.payeeHash, invoiceId);
        uint256 required = uint96(meta);
        if (paid < required) revert AmountTooLow(paid, required);

        _markSettled(inv, meta);
        emit InvoiceSettled(invoiceId, payer, uint8(Rail.BTC), txid, outputIndex, paid);
    }

    /// @dev Calls btcLightClient.verifyTx(inclusion, minBtcConfirmations) and returns the txid.
    ///      The proof tuple is forwarded as it sits in this call's calldata: an ABI tuple is
    ///      self-contained (its offsets are relative to its own start and point forward), so
    ///      the bytes from its start to the end of calldata are a valid encoding of the same
    ///      value; the light client decodes (and bounds-checks) the very bytes parsed here.
    ///      This avoids re-encoding ~1.5 kB of proof in memory.
    function _verifyInclusion(IBtcLightClient.TxProof calldata inclusion) private view returns (bytes32 txid) {
        address client = address(btcLightClient);
        uint256 confirmations = minBtcConfirmations;
        bytes4 selector = IBtcLightClient.verifyTx.selector;
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            let size := sub(calldatasize(), inclusion)
            mstore(m, selector)
            mstore(add(m, 4), 0x40) // offset of the tuple after (offset, minConfirmations)
            mstore(add(m, 36), confirmations)
            calldatacopy(add(m, 68), inclusion, size)
            ok := staticcall(gas(), client, m, add(68, size), 0, 0)
            if iszero(ok) {
                // Bubble the light client's custom error up unchanged.
                returndatacopy(m, 0, returndatasize())
                revert(m, returndatasize())
            }
            ok := eq(returndatasize(), 0x80)
            if ok {
                returndatacopy(m, 0, 0x20)
                txid := mload(m)
            }
        }
        if (!ok) revert LightClientResponse();
    }

    /// @dev Walks a legacy-serialized transaction; returns the value of output `outputIndex`
    ///      (whose script must hash to `payeeHash`) and the first input's outpoint (36 bytes),
    ///      and requires the first `OP_RETURN <32 bytes>` output to carry `invoiceId`.
    function _parseBtcPayment(bytes calldata rawTx, uint256 outputIndex, bytes32 payeeHash, bytes32 invoiceId)
        private
        pure
        returns (uint256 paid, bytes memory payer)
    {
        (uint256 p, uint256 outputCount, uint256 firstInput) = _skipInputs(rawTx);
        payer = new bytes(36);
        assembly ("memory-safe") {
            calldatacopy(add(payer, 32), firstInput, 36)
        }
        if (outputIndex >= outputCount) revert NoPaymentOutput(outputIndex, outputCount);
        bytes32 named;
        (paid, named) = _scanOutputs(rawTx, p, outputCount, outputIndex, payeeHash);
        if (named != invoiceId) revert WrongInvoiceId(invoiceId, named);
    }

    /// @dev Skips version and inputs; returns the offset of the first output and the output count.
    ///      Zero inputs is also how the witness serialization (marker 0x00) starts: refused.
    function _skipInputs(bytes calldata rawTx)
        private
        pure
        returns (uint256 p, uint256 outputs, uint256 firstInput)
    {
        uint256 bad;
        uint256 start;
        uint256 end;
        assembly ("memory-safe") {
            start := rawTx.offset
            end := add(start, rawTx.length)
            let n
            n, p, bad := _varint(add(start, 4), end)
            firstInput := p
            if or(iszero(n), gt(add(p, 36), end)) { bad := 1 }
            for { let i := 0 } and(iszero(bad), lt(i, n)) { i := add(i, 1) } {
                let len
                len, p, bad := _varint(add(p, 36), end) // outpoint, then the scriptSig length
                if bad { break }
                p := add(p, add(len, 4)) // scriptSig, sequence
                if gt(p, end) { bad := 1 }
            }
            if iszero(bad) { outputs, p, bad := _varint(p, end) }

            // CompactSize at q (bounded by e); err is non-zero if it does not fit, and then
            // next is q (the offset reported by MalformedTx).
            function _varint(q, e) -> v, next, err {
                next := q
                if iszero(lt(q, e)) {
                    err := 1
                    leave
                }
                let b := byte(0, calldataload(q))
                if lt(b, 0xfd) {
                    v := b
                    next := add(q, 1)
                    leave
                }
                let size := 8
                if eq(b, 0xfd) { size := 2 }
                if eq(b, 0xfe) { size := 4 }
                if gt(add(add(q, 1), size), e) {
                    err := 1
                    leave
                }
                next := add(add(q, 1), size)
                let w := calldataload(add(q, 1))
                for { let i := 0 } lt(i, size) { i := add(i, 1) } { v := or(v, shl(shl(3, i), byte(i, w))) }
            }
        }
        if (bad != 0) revert MalformedTx(p > end ? end - start : p - start);
    }

    /// @dev Scans the outputs: returns the value of output `vout` (whose script must hash to
    ///      `payeeHash`) and the payload of the first `OP_RETURN <32 bytes>` output.
    function _scanOutputs(bytes calldata rawTx, uint256 p, uint256 count, uint256 vout, bytes32 payeeHash)
        private
        pure
        returns (uint256 value, bytes32 named)
    {
        uint256 failure;
        uint256 at; // offset of the malformed output, relative to the transaction
        assembly ("memory-safe") {
            let end := add(rawTx.offset, rawTx.length)
            failure := 4 // until an OP_RETURN <32 bytes> is seen
            for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                let script, len, bad := _output(p, end)
                if bad {
                    failure := 1
                    at := sub(p, rawTx.offset)
                    break
                }
                if eq(j, vout) {
                    let m := mload(0x40)
                    calldatacopy(m, script, len)
                    if iszero(eq(keccak256(m, len), payeeHash)) {
                        failure := 3
                        break
                    }
                    // Value: 8 bytes little-endian before the script length.
                    let w := calldataload(p)
                    for { let i := 0 } lt(i, 8) { i := add(i, 1) } { value := or(value, shl(shl(3, i), byte(i, w))) }
                }
                if and(eq(failure, 4), eq(len, 34)) {
                    if eq(shr(240, calldataload(script)), 0x6a20) {
                        failure := 0
                        named := calldataload(add(script, 2))
                    }
                }
                p := add(script, len)
            }
            // Lock time, and nothing after it.
            if and(iszero(eq(failure, 3)), iszero(eq(add(p, 4), end))) {
                failure := 1
                at := sub(p, rawTx.offset)
            }

            // Output at q: returns its script offset and length; err if it does not fit.
            function _output(q, e) -> script, len, err {
                let lenAt := add(q, 8)
                if iszero(lt(lenAt, e)) {
                    err := 1
                    leave
                }
                let b := byte(0, calldataload(lenAt))
                script := add(lenAt, 1)
                len := b
                if gt(b, 0xfc) {
                    let size := 8
                    if eq(b, 0xfd) { size := 2 }
                    if eq(b, 0xfe) { size := 4 }
                    script := add(add(lenAt, 1), size)
                    let w := calldataload(add(lenAt, 1))
                    len := 0
                    for { let i := 0 } lt(i, size) { i := add(i, 1) } { len := or(len, shl(shl(3, i), byte(i, w))) }
                }
                if gt(add(script, len), e) { err := 1 }
            }
        }
        if (failure == 1) revert MalformedTx(at);
        if (failure == 3) revert WrongPayee();
        if (failure == 4) revert MissingOpReturn();
    }

    // ---------------------------------------------------------------------------------
    // GOAT settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles a GOAT invoice with a receipt proof of an EIP-3009 payment.
    /// @dev The receipt must be in the attested block's receipts trie at key rlp(txIndex),
    ///      have status 1, and contain AuthorizationUsed(authorizer, invoiceId) at
    ///      `authorizationLogIndex` and Transfer(authorizer, payee, value >= amount) right after
    ///      it, both emitted by the invoice's asset.
    /// @param invoiceId Invoice to settle.
    /// @param proof The payment proof.
    function settleGoat(bytes32 invoiceId, GoatProof calldata proof) external {
        StoredInvoice storage inv = _invoices[invoiceId];
        uint256 meta = _requireOpen(inv, invoiceId, Rail.GOAT);
        (address authorizer, uint256 paid) = _verifyGoatPayment(inv, uint96(meta), invoiceId, proof);
        _markSettled(inv, meta);
        emit InvoiceSettled(
            invoiceId, abi.encodePacked(authorizer), uint8(Rail.GOAT), proof.blockHash, proof.txIndex, paid
        );
    }

    /// @dev Proves the receipt and checks its payment logs against the invoice; returns payer and value.
    function _verifyGoatPayment(StoredInvoice storage inv, uint256 required, bytes32 invoiceId, GoatProof calldata proof)
        private
        view
        returns (address authorizer, uint256 paid)
    {
        address asset = inv.asset;
        bytes32 root = goatHeaderStore.receiptsRoot(proof.blockHash);
        if (root == bytes32(0)) revert UnknownGoatHeader(proof.blockHash);
        (uint256 logsPtr, uint256 logsEnd) = _provenReceiptLogs(root, proof);
        address payee;
        (authorizer, payee, paid) =
            _checkPaymentLogs(logsPtr, logsEnd, proof.authorizationLogIndex, proof.transferLogIndex, asset, invoiceId);
        if (keccak256(abi.encodePacked(payee)) != inv.payeeHash) revert WrongPayee();
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
        if (transferIndex == 0 || authIndex != transferIndex - 1) revert LogsNotAdjacent(authIndex, transferIndex);
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

    /// @dev Requires an open, unexpired invoice of `rail`; returns its packed meta slot.
    function _requireOpen(StoredInvoice storage inv, bytes32 invoiceId, Rail rail) private view returns (uint256 meta) {
        meta = inv.meta;
        Status status = _status(meta);
        if (status == Status.None) revert UnknownInvoice(invoiceId);
        if (status == Status.Settled) revert AlreadySettled(invoiceId);
        uint8 actual = uint8(meta >> RAIL_SHIFT);
        if (actual != uint8(rail)) revert WrongRail(uint8(rail), actual);
        uint64 expiry = uint64(meta >> EXPIRY_SHIFT);
        if (block.timestamp > expiry) revert InvoiceExpired(invoiceId, expiry, block.timestamp);
    }

    /// @dev Flips the status in the meta slot from Open to Settled.
    function _markSettled(StoredInvoice storage inv, uint256 meta) private {
        inv.meta = (meta & ~(uint256(0xff) << STATUS_SHIFT)) | (uint256(Status.Settled) << STATUS_SHIFT);
    }

    function _status(uint256 meta) private pure returns (Status) {
        return Status(uint8(meta >> STATUS_SHIFT));
    }

    function _keccak(uint256 ptr, uint256 len) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, ptr, len)
            h := keccak256(m, len)
        }
    }
}
