// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

import {IGoatHeaderStore} from "./interfaces/IGoatHeaderStore.sol";
import {IInvoiceService} from "./interfaces/IInvoiceService.sol";
import {BtcMerkle} from "./lib/BtcMerkle.sol";
import {MerklePatriciaProof} from "./lib/MerklePatriciaProof.sol";

/// @notice What PaymentSettlement reads from the Bitcoin light client.
interface IBtcHeaderChain {
    /// @notice The light client's rules: 0 Mainnet, 1 Regtest, 2 Testnet4.
    /// @return The network.
    function network() external view returns (uint8);

    /// @notice The light client's proof-of-work limit.
    /// @return The limit.
    function powLimit() external view returns (uint256);

    /// @notice Checks a block header followed by its descendants (48-byte compact records)
    ///         up to a stored header of the best chain.
    /// @param headers The block's 80-byte header, then its descendants.
    /// @return blockHash The block's hash.
    /// @return height Its height.
    /// @return confirmations Best height + 1 - height.
    function verifyHeaderChain(bytes calldata headers)
        external
        view
        returns (bytes32 blockHash, uint256 height, uint256 confirmations);
}

/// @notice ERC-1271 signature validation for merchants that are contracts.
interface IERC1271 {
    /// @notice Whether `signature` is valid for `digest` on behalf of this contract.
    /// @param digest The signed digest.
    /// @param signature The signature.
    /// @return magic 0x1626ba7e if valid.
    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4 magic);
}

/*
 * PaymentSettlement: invoices payable on Bitcoin or GOAT Network, settled on Metis exactly
 * once by a proof of payment (Bitcoin SPV through BtcLightClient; GOAT receipt proof against
 * a committee-attested block), and a service that unlocks on settlement.
 *
 * Invoices
 *   An invoice is its Terms: merchant, ref, rail, payee, asset, amount, expiry, service,
 *   serviceId. Its id is invoiceIdFor(merchant, ref) = keccak256(abi.encode(merchant, ref)).
 *   The payment carries `ref`: on GOAT the EIP-3009 authorization nonce (which a stock x402
 *   client picks itself), on Bitcoin the payload of the transaction's first
 *   `OP_RETURN <32 bytes>` output.
 *     - Signed (costs nothing before payment): the merchant signs the Terms off-chain
 *       (EIP-712, domain {name "gmrelay PaymentSettlement", version "2", chainId = Metis,
 *       verifyingContract = this}); the settlement carries Terms and signature. EOAs sign
 *       with a 65-byte low-s ECDSA signature; a merchant that is a contract is asked through
 *       ERC-1271. Only the settled mark is stored.
 *     - On-chain (createInvoice, msg.sender = merchant): the Terms' EIP-712 struct hash is
 *       stored under the id; the settlement carries the Terms (no signature) and must match it.
 *   One id space: an id is (merchant, ref), so nobody but the merchant can create or sign an
 *   invoice under it, and a merchant's on-chain invoice and its signed terms for the same ref
 *   are the same invoice (the stored terms rule; a signed one is then ignored). Each id settles
 *   once, whichever form it took. A payment names a ref, not a merchant: two merchants who
 *   both sign terms for the same ref and payee can each settle with it (each unlocking only
 *   its own service); payers and merchants use unpredictable refs.
 *
 * Settlement state (one slot per id): 0 none, 1 settled, 2 settled but the service hook
 * failed, any other value = the stored terms hash of an open on-chain invoice.
 *
 * Expiry is judged by the payment's own block time (Bitcoin: the header time of the block
 * holding the transaction; GOAT: the attested block timestamp): an invoice settles when its
 * payment was mined at or before `expiry`, however late the relayer, the attestation or
 * Metis's sequencer is. (Bitcoin header times may run up to two hours ahead of real time;
 * the light client bounds them by Metis's clock + 2 h.)
 *
 * Bitcoin payments: the transaction (legacy serialization, witness stripped) pays the payee's
 * script with ANY number of outputs (their values add up: split payments and batch payouts
 * settle), its first `OP_RETURN <32 bytes>` output names the ref, and it has
 * minBtcConfirmations on the light client's best chain. The payer reported is the first
 * input's outpoint (36 bytes). A transaction names one ref, so it settles one invoice per
 * merchant.
 *
 * GOAT payments: the receipt is read in place from the leaf of its receipts-trie proof (key
 * rlp(txIndex)), status 1, with AuthorizationUsed(authorizer, ref) at `logIndex` and the
 * Transfer(authorizer, payee, value >= amount) right after it, both emitted by the invoice's
 * asset (EIP-3009 tokens emit them in that order, so each Transfer pairs with one
 * authorization). The block is attested by the committee either inline (signatures in the
 * call, nothing stored) or earlier through GoatHeaderStore.attestBlock.
 *
 * Batches: settleBtc and settleGoat take groups (one block each: the Bitcoin headers and
 * coinbase proof, or the GOAT attestation and a pool of trie nodes, shared by the group's
 * payments). A call holding exactly one payment reverts with that payment's error; in a
 * larger batch a failing block or payment is skipped and reported (SettlementSkipped with the
 * revert data) and the rest settle; a payment that fails for want of gas reverts the whole
 * batch (BatchOutOfGas), so gas estimates cover every payment.
 *
 * Service hook: if the Terms name a service contract, it is called after the invoice is
 * marked settled with IInvoiceService.onInvoiceSettled(id, merchant, payer, amount,
 * serviceId) and SERVICE_GAS gas. The call runs only with its full gas allowance available
 * (otherwise the settlement reverts, so a relayer cannot starve it on purpose); if it
 * reverts or runs out of gas the settlement stands, the state says so (2) and
 * ServiceCallFailed is emitted. The service must check msg.sender (this contract) and the
 * merchant (its owner): anyone can settle an invoice they signed themselves.
 */

/// @title PaymentSettlement
/// @author gmrelay
/// @notice Invoices payable on Bitcoin or GOAT Network, settled on Metis with on-chain proofs.
contract PaymentSettlement {

    // ---------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------

    /// @notice Where an invoice is paid: Bitcoin (0) or GOAT Network (1).
    enum Rail {
        BTC,
        GOAT
    }

    /// @notice The terms of an invoice (signed by the merchant, or stored by createInvoice).
    /// @param merchant Signer and owner of the invoice (EOA or ERC-1271 contract).
    /// @param ref What the payment carries: the EIP-3009 nonce (GOAT) or the OP_RETURN payload (BTC).
    /// @param rail 0 BTC, 1 GOAT.
    /// @param payee Bitcoin scriptPubKey (BTC) or 20-byte address (GOAT).
    /// @param asset GOAT token (zero for BTC).
    /// @param amount Minimum amount, in satoshis or token base units.
    /// @param expiry Last payment block time (unix, inclusive) that settles.
    /// @param service Contract called on settlement (IInvoiceService), or zero.
    /// @param serviceId Opaque value passed to the service (e.g. the key to credit).
    struct Terms {
        address merchant;
        bytes32 ref;
        uint8 rail;
        bytes payee;
        address asset;
        uint256 amount;
        uint64 expiry;
        address service;
        bytes32 serviceId;
    }

    /// @notice A Bitcoin block shared by the payments of a group.
    /// @param headers The block's 80-byte header, then its descendants as 48-byte compact
    ///        records, up to a header stored on the light client's best chain.
    /// @param coinbasePreimage The coinbase's first SHA-256 round (fixes the tree depth).
    /// @param coinbaseBranch The coinbase's Merkle branch.
    struct BtcBlock {
        bytes headers;
        bytes32 coinbasePreimage;
        bytes coinbaseBranch;
    }

    /// @notice One Bitcoin payment.
    /// @param terms The invoice's terms.
    /// @param signature The merchant's signature of the terms (empty for on-chain invoices).
    /// @param rawTx The transaction, legacy serialization (no witness).
    /// @param txIndex Its position in the block.
    /// @param merkleBranch Its Merkle branch.
    struct BtcPayment {
        Terms terms;
        bytes signature;
        bytes rawTx;
        uint256 txIndex;
        bytes merkleBranch;
    }

    /// @notice Bitcoin payments in one block.
    /// @param blk The block.
    /// @param payments The payments.
    struct BtcGroup {
        BtcBlock blk;
        BtcPayment[] payments;
    }

    /// @notice An attested GOAT block.
    /// @param blockHash Block hash.
    /// @param number Block number.
    /// @param timestamp Header timestamp.
    /// @param receiptsRoot Receipts root.
    /// @param signatures Committee signatures (packed 65-byte, ascending signers), or empty
    ///        if GoatHeaderStore already stores the attestation.
    struct GoatBlock {
        bytes32 blockHash;
        uint256 number;
        uint256 timestamp;
        bytes32 receiptsRoot;
        bytes signatures;
    }

    /// @notice One GOAT payment.
    /// @param terms The invoice's terms.
    /// @param signature The merchant's signature of the terms (empty for on-chain invoices).
    /// @param txIndex The payment transaction's index in the block.
    /// @param path Pool indexes of its proof's nodes, root first (one byte each), or empty
    ///        if the pool is exactly its proof.
    /// @param logIndex Position of AuthorizationUsed in the receipt's logs (the Transfer follows).
    struct GoatPayment {
        Terms terms;
        bytes signature;
        uint256 txIndex;
        bytes path;
        uint256 logIndex;
    }

    /// @notice GOAT payments in one block.
    /// @param blk The block.
    /// @param nodes Receipts-trie nodes the payments' proofs use (each once).
    /// @param payments The payments.
    struct GoatGroup {
        GoatBlock blk;
        bytes[] nodes;
        GoatPayment[] payments;
    }

    /// @dev A verified payment, as reported in InvoiceSettled.
    struct Paid {
        bytes payer;
        address payerAddress;
        Rail rail;
        bytes32 sourceTx;
        uint256 sourceIndex;
        uint256 amount;
    }

    /// @dev What a verified Bitcoin block gives its payments.
    struct BtcFacts {
        bytes32 blockHash;
        bytes32 merkleRoot;
        uint256 time;
        uint256 depth;
    }

    // ---------------------------------------------------------------------------------
    // Constants and immutables
    // ---------------------------------------------------------------------------------

    /// @notice topic0 of EIP-3009 AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce).
    bytes32 public constant AUTHORIZATION_USED_TOPIC = keccak256("AuthorizationUsed(address,bytes32)");

    /// @notice topic0 of ERC-20 Transfer(address indexed from, address indexed to, uint256 value).
    bytes32 public constant TRANSFER_TOPIC = keccak256("Transfer(address,address,uint256)");

    /// @notice EIP-712 type hash of the invoice terms.
    bytes32 public constant TERMS_TYPEHASH = keccak256(
        "Invoice(address merchant,bytes32 ref,uint8 rail,bytes payee,address asset,uint256 amount,uint64 expiry,address service,bytes32 serviceId)"
    );

    /// @notice EIP-712 domain type hash.
    bytes32 public constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice EIP-712 domain name.
    string public constant NAME = "gmrelay PaymentSettlement";

    /// @notice EIP-712 domain version.
    string public constant VERSION = "2";

    /// @notice Gas given to a service hook.
    uint256 public constant SERVICE_GAS = 100_000;

    /// @notice Longest Bitcoin payee script accepted by createInvoice (consensus MAX_SCRIPT_SIZE).
    uint256 public constant MAX_SCRIPT_LENGTH = 10_000;

    /// @notice Settlement state: settled.
    uint256 public constant SETTLED = 1;

    /// @notice Settlement state: settled, the service hook failed.
    uint256 public constant SETTLED_SERVICE_FAILED = 2;

    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The Bitcoin light client.
    IBtcHeaderChain public immutable btcLightClient;

    /// @notice The GOAT block attestations.
    IGoatHeaderStore public immutable goatHeaderStore;

    /// @notice Confirmations a Bitcoin payment needs.
    uint256 public immutable minBtcConfirmations;

    /// @notice The Bitcoin network the light client was checked against at deployment.
    uint8 public immutable btcNetwork;

    /// @notice The GOAT chain id the header store was checked against at deployment.
    uint256 public immutable goatChainId;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    // ---------------------------------------------------------------------------------
    // Storage
    // ---------------------------------------------------------------------------------

    mapping(bytes32 invoiceId => uint256 state) private _state;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice An invoice was created on-chain.
    /// @param invoiceId invoiceIdFor(merchant, ref).
    /// @param merchant Its merchant (msg.sender of createInvoice).
    /// @param terms Its terms.
    event InvoiceCreated(bytes32 indexed invoiceId, address indexed merchant, Terms terms);

    /// @notice An invoice was settled.
    /// @param invoiceId Invoice id.
    /// @param merchant Its merchant.
    /// @param ref The ref the payment carried.
    /// @param rail 0 BTC, 1 GOAT.
    /// @param payer BTC: the first input's outpoint (36 bytes, raw order); GOAT: the authorizer (20 bytes).
    /// @param sourceTx BTC: txid (internal byte order); GOAT: block hash.
    /// @param sourceIndex BTC: block header time; GOAT: transaction index.
    /// @param amount Amount paid (sum of outputs to the payee, or the transfer's value).
    event InvoiceSettled(
        bytes32 indexed invoiceId,
        address indexed merchant,
        bytes32 ref,
        uint8 rail,
        bytes payer,
        bytes32 sourceTx,
        uint256 sourceIndex,
        uint256 amount
    );

    /// @notice A payment (or a whole group when `item` is type(uint256).max) of a batch was skipped.
    /// @param invoiceId The payment's invoice id (zero for a group).
    /// @param group Group index in the call.
    /// @param item Payment index in the group.
    /// @param reason The revert data (a custom error of this contract or a library).
    event SettlementSkipped(bytes32 indexed invoiceId, uint256 group, uint256 item, bytes reason);

    /// @notice The service hook of a settled invoice reverted or ran out of gas.
    /// @param invoiceId Invoice id.
    /// @param service The service contract.
    event ServiceCallFailed(bytes32 indexed invoiceId, address indexed service);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice A constructor address is zero.
    error ZeroAddress();

    /// @notice The confirmation requirement must be at least 1.
    error InvalidConfirmations();

    /// @notice The light client does not follow the network the deployer named (or uses
    ///         another proof-of-work limit than that network's).
    error LightClientNetwork(uint8 expected, uint8 actual, uint256 powLimit);

    /// @notice The header store attests another GOAT chain than the deployer named.
    error GoatChainMismatch(uint256 expected, uint256 actual);

    /// @notice createInvoice must be called by the terms' merchant.
    error NotMerchant(address merchant, address caller);

    /// @notice The id is already taken (open or settled).
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

    /// @notice The invoice is already settled.
    error AlreadySettled(bytes32 invoiceId);

    /// @notice The signature is not the merchant's over these terms (or there is none).
    error InvalidMerchantSignature(bytes32 invoiceId, address merchant);

    /// @notice The terms differ from the ones stored by createInvoice.
    error TermsMismatch(bytes32 invoiceId);

    /// @notice The payment was mined after the invoice's expiry.
    error PaidAfterExpiry(bytes32 invoiceId, uint256 paymentTime, uint64 expiry);

    /// @notice The terms are for the other rail.
    error WrongRail(uint8 expected, uint8 actual);

    /// @notice The paid amount is below the invoice amount.
    error AmountTooLow(uint256 paid, uint256 required);

    /// @notice The payment goes to another payee (no output to the payee's script, or another Transfer recipient).
    error WrongPayee();

    /// @notice The raw transaction is malformed (or uses the witness serialization) near `offset`.
    error MalformedTx(uint256 offset);

    /// @notice The transaction has no `OP_RETURN <32 bytes>` output.
    error MissingOpReturn();

    /// @notice The payment names another ref.
    error WrongRef(bytes32 expected, bytes32 got);

    /// @notice The Bitcoin block has fewer confirmations than required.
    error InsufficientConfirmations(bytes32 blockHash, uint256 confirmations, uint256 required);

    /// @notice The headers do not start with an 80-byte header.
    error BadHeaders(uint256 length);

    /// @notice The transaction index does not fit 64 bits.
    error TxIndexTooLarge(uint256 txIndex);

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

    /// @notice Not enough gas left to give the service hook its SERVICE_GAS.
    error InsufficientGasForService(uint256 available);

    /// @notice Only this contract calls its batch entry points.
    error OnlySelf();

    /// @notice A call without any payment.
    error EmptyBatch();

    /// @notice A batch step ran out of gas: give the transaction more.
    error BatchOutOfGas();

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the settlement contract and checks what it is wired to.
    /// @param btcLightClient_ The BtcLightClient.
    /// @param goatHeaderStore_ The GoatHeaderStore.
    /// @param minBtcConfirmations_ Confirmations required of Bitcoin payments (>= 1).
    /// @param btcNetwork_ The Bitcoin network the light client must follow (0 Mainnet,
    ///        1 Regtest, 2 Testnet4), with that network's proof-of-work limit.
    /// @param goatChainId_ The GOAT chain the header store must attest.
    constructor(
        IBtcHeaderChain btcLightClient_,
        IGoatHeaderStore goatHeaderStore_,
        uint256 minBtcConfirmations_,
        uint8 btcNetwork_,
        uint256 goatChainId_
    ) {
        if (address(btcLightClient_) == address(0) || address(goatHeaderStore_) == address(0)) revert ZeroAddress();
        if (minBtcConfirmations_ == 0) revert InvalidConfirmations();
        uint8 actual = btcLightClient_.network();
        uint256 limit = btcLightClient_.powLimit();
        if (actual != btcNetwork_ || limit != powLimitOf(btcNetwork_)) {
            revert LightClientNetwork(btcNetwork_, actual, limit);
        }
        uint256 goatChain = goatHeaderStore_.goatChainId();
        if (goatChain != goatChainId_) revert GoatChainMismatch(goatChainId_, goatChain);
        btcLightClient = btcLightClient_;
        goatHeaderStore = goatHeaderStore_;
        minBtcConfirmations = minBtcConfirmations_;
        btcNetwork = btcNetwork_;
        goatChainId = goatChainId_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice The proof-of-work limit of a Bitcoin network, as Bitcoin Core's chain
    ///         parameters state it (`consensus.powLimit`).
    /// @param network 0 Mainnet, 1 Regtest, 2 Testnet4.
    /// @return The limit (zero for an unknown network).
    function powLimitOf(uint8 network) public pure returns (uint256) {
        if (network == 0 || network == 2) return (uint256(1) << 224) - 1; // 00000000ffff…ff
        if (network == 1) return (uint256(1) << 255) - 1; // 7fff…ff
        return 0;
    }

    // ---------------------------------------------------------------------------------
    // Invoices
    // ---------------------------------------------------------------------------------

    /// @notice Creates an invoice on-chain (merchants who prefer it to signed terms).
    /// @param terms The terms; terms.merchant must be msg.sender.
    /// @return id invoiceIdFor(msg.sender, terms.ref).
    function createInvoice(Terms calldata terms) external returns (bytes32 id) {
        if (terms.merchant != msg.sender) revert NotMerchant(terms.merchant, msg.sender);
        id = invoiceIdFor(msg.sender, terms.ref);
        if (_state[id] != 0) revert InvoiceExists(id);
        uint256 payeeLength = terms.payee.length;
        if (terms.rail == uint8(Rail.BTC)) {
            if (payeeLength == 0 || payeeLength > MAX_SCRIPT_LENGTH) revert InvalidPayee();
            if (terms.asset != address(0)) revert InvalidAsset(terms.asset);
        } else if (terms.rail == uint8(Rail.GOAT)) {
            if (payeeLength != 20 || bytes20(terms.payee) == bytes20(0)) revert InvalidPayee();
            if (terms.asset == address(0)) revert InvalidAsset(terms.asset);
        } else {
            revert InvalidRail(terms.rail);
        }
        if (terms.amount == 0) revert ZeroAmount();
        if (terms.expiry < block.timestamp) revert InvalidExpiry(terms.expiry, block.timestamp);
        _state[id] = uint256(termsHash(terms));
        emit InvoiceCreated(id, msg.sender, terms);
    }

    /// @notice The id of the invoice `merchant` signs or creates with `ref`.
    /// @param merchant The merchant.
    /// @param ref The ref its payment carries.
    /// @return keccak256(abi.encode(merchant, ref)).
    function invoiceIdFor(address merchant, bytes32 ref) public pure returns (bytes32) {
        return keccak256(abi.encode(merchant, ref));
    }

    /// @notice The EIP-712 struct hash of the terms (what createInvoice stores).
    /// @param terms The terms.
    /// @return The struct hash.
    function termsHash(Terms calldata terms) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                TERMS_TYPEHASH,
                terms.merchant,
                terms.ref,
                terms.rail,
                keccak256(terms.payee),
                terms.asset,
                terms.amount,
                terms.expiry,
                terms.service,
                terms.serviceId
            )
        );
    }

    /// @notice The EIP-712 digest a merchant signs for the terms.
    /// @param terms The terms.
    /// @return The digest.
    function hashTerms(Terms calldata terms) public view returns (bytes32) {
        return _hashTypedData(termsHash(terms));
    }

    /// @notice Whether an invoice is settled.
    /// @param id Invoice id.
    /// @return True once settled (whatever its service hook did).
    function isSettled(bytes32 id) external view returns (bool) {
        uint256 s = _state[id];
        return s == SETTLED || s == SETTLED_SERVICE_FAILED;
    }

    /// @notice The settlement state of an id: 0 unknown or signed and unpaid, 1 settled,
    ///         2 settled with a failed service hook, else the stored terms hash of an open
    ///         on-chain invoice.
    /// @param id Invoice id.
    /// @return The state word.
    function invoiceState(bytes32 id) external view returns (uint256) {
        return _state[id];
    }

    /// @notice The EIP-712 domain separator (recomputed if the chain id changed).
    /// @return The separator.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    // ---------------------------------------------------------------------------------
    // Bitcoin settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles Bitcoin payments, grouped by block.
    /// @param groups Blocks and their payments.
    /// @return settled Invoices settled by this call.
    function settleBtc(BtcGroup[] calldata groups) external returns (uint256 settled) {
        if (groups.length == 1 && groups[0].payments.length == 1) {
            BtcFacts memory facts = _checkBtcBlock(groups[0].blk);
            _settleBtcPayment(groups[0].payments[0], facts);
            return 1;
        }
        uint256 total;
        for (uint256 g; g < groups.length; ++g) {
            BtcGroup calldata group = groups[g];
            uint256 count = group.payments.length;
            total += count;
            BtcFacts memory facts;
            try this.checkBtcBlock(group.blk) returns (BtcFacts memory f) {
                facts = f;
            } catch (bytes memory reason) {
                emit SettlementSkipped(bytes32(0), g, type(uint256).max, reason);
                continue;
            }
            bytes32[] memory head = new bytes32[](6);
            (head[0], head[2], head[3]) = (bytes32(g), facts.blockHash, facts.merkleRoot);
            (head[4], head[5]) = (bytes32(facts.time), bytes32(facts.depth));
            for (uint256 i; i < count; ++i) {
                head[1] = bytes32(i);
                uint256 before = gasleft();
                if (_step(this.settleBtcStep.selector, head)) {
                    ++settled;
                } else {
                    _outOfGas(before);
                    BtcPayment calldata p = group.payments[i];
                    _skipped(invoiceIdFor(p.terms.merchant, p.terms.ref), g, i);
                }
            }
        }
        if (total == 0) revert EmptyBatch();
    }

    /// @notice Checks a Bitcoin block for settlement: its header chain on the light client's
    ///         best chain with minBtcConfirmations, and its coinbase proof. Relayers may call
    ///         it to pre-check a group.
    /// @param blk The block.
    /// @return facts Block hash, Merkle root, header time and tree depth.
    function checkBtcBlock(BtcBlock calldata blk) external view returns (BtcFacts memory facts) {
        return _checkBtcBlock(blk);
    }

    /// @notice Batch step (only callable by this contract): settles payment `i` of group `g`,
    ///         whose block was checked. The call data is the step's head followed by a verbatim
    ///         copy of the batch's own `groups` encoding, so nothing is re-encoded per payment.
    /// @param g Group index.
    /// @param i Payment index.
    /// @param facts What checkBtcBlock returned for the group's block.
    /// @param groups The batch.
    function settleBtcStep(uint256 g, uint256 i, BtcFacts calldata facts, BtcGroup[] calldata groups) external {
        if (msg.sender != address(this)) revert OnlySelf();
        _settleBtcPayment(groups[g].payments[i], facts);
    }

    function _checkBtcBlock(BtcBlock calldata blk) private view returns (BtcFacts memory facts) {
        bytes calldata headers = blk.headers;
        if (headers.length < 80) revert BadHeaders(headers.length);
        uint256 confirmations;
        (facts.blockHash,, confirmations) = btcLightClient.verifyHeaderChain(headers);
        uint256 required = minBtcConfirmations;
        if (confirmations < required) revert InsufficientConfirmations(facts.blockHash, confirmations, required);
        uint256 time;
        bytes32 root;
        assembly {
            root := calldataload(add(headers.offset, 36))
            time := shr(224, calldataload(add(headers.offset, 68)))
        }
        facts.merkleRoot = root;
        facts.time = ((time & 0xff) << 24) | ((time & 0xff00) << 8) | ((time >> 8) & 0xff00) | (time >> 24);
        facts.depth = BtcMerkle.verifyCoinbase(blk.coinbasePreimage, blk.coinbaseBranch, root);
    }

    function _settleBtcPayment(BtcPayment calldata p, BtcFacts memory facts) private {
        Terms calldata terms = p.terms;
        bytes32 id = _claim(terms, p.signature, Rail.BTC);
        if (facts.time > terms.expiry) revert PaidAfterExpiry(id, facts.time, terms.expiry);
        bytes calldata rawTx = p.rawTx;
        bytes32 txid = BtcMerkle.txid(rawTx);
        BtcMerkle.verifyTx(txid, p.txIndex, p.merkleBranch, facts.depth, facts.merkleRoot);
        (uint256 paid, bytes memory payer) = _parseBtcPayment(rawTx, terms.payee, terms.ref);
        if (paid < terms.amount) revert AmountTooLow(paid, terms.amount);
        _settled(
            id,
            terms,
            Paid({payer: payer, payerAddress: address(0), rail: Rail.BTC, sourceTx: txid, sourceIndex: facts.time, amount: paid})
        );
    }

    /// @dev Walks a legacy-serialized transaction: the sum of the outputs paying `payee`, the
    ///      first input's outpoint, and the first `OP_RETURN <32 bytes>` payload (== ref).
    function _parseBtcPayment(bytes calldata rawTx, bytes calldata payee, bytes32 ref)
        private
        pure
        returns (uint256 paid, bytes memory payer)
    {
        (uint256 p, uint256 outputCount, uint256 firstInput) = _skipInputs(rawTx);
        payer = new bytes(36);
        assembly ("memory-safe") {
            calldatacopy(add(payer, 32), firstInput, 36)
        }
        bytes32 named;
        (paid, named) = _scanOutputs(rawTx, p, outputCount, keccak256(payee), payee.length);
        if (paid == 0) revert WrongPayee();
        if (named != ref) revert WrongRef(ref, named);
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

    /// @dev Scans the outputs: the sum of the values of outputs whose script is the payee's
    ///      (length `payeeLength`, keccak `payeeHash`) and the payload of the first
    ///      `OP_RETURN <32 bytes>` output; checks that only the lock time follows.
    function _scanOutputs(bytes calldata rawTx, uint256 p, uint256 count, bytes32 payeeHash, uint256 payeeLength)
        private
        pure
        returns (uint256 paid, bytes32 named)
    {
        uint256 failure;
        uint256 at; // offset of the malformed output, relative to the transaction
        assembly ("memory-safe") {
            let end := add(rawTx.offset, rawTx.length)
            let m := mload(0x40)
            failure := 4 // until an OP_RETURN <32 bytes> is seen
            for { let j := 0 } lt(j, count) { j := add(j, 1) } {
                let script, len, bad := _output(p, end)
                if bad {
                    failure := 1
                    at := sub(p, rawTx.offset)
                    break
                }
                if eq(len, payeeLength) {
                    calldatacopy(m, script, len)
                    if eq(keccak256(m, len), payeeHash) {
                        // Value: 8 bytes little-endian before the script length.
                        let w := calldataload(p)
                        let value := 0
                        for { let i := 0 } lt(i, 8) { i := add(i, 1) } { value := or(value, shl(shl(3, i), byte(i, w))) }
                        paid := add(paid, value)
                    }
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
            if and(iszero(eq(failure, 1)), iszero(eq(add(p, 4), end))) {
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
        if (failure == 4) revert MissingOpReturn();
    }

    // ---------------------------------------------------------------------------------
    // GOAT settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles GOAT payments, grouped by block.
    /// @param groups Blocks (attested inline or stored) with their trie-node pools and payments.
    /// @return settled Invoices settled by this call.
    function settleGoat(GoatGroup[] calldata groups) external returns (uint256 settled) {
        if (groups.length == 1 && groups[0].payments.length == 1) {
            GoatGroup calldata group = groups[0];
            (bool attested,) = _verifyGoatBlock(group.blk);
            if (!attested) _bubble();
            _settleGoatPayment(group.payments[0], group.nodes, group.payments[0].path, group.blk);
            return 1;
        }
        uint256 total;
        for (uint256 g; g < groups.length; ++g) {
            GoatGroup calldata group = groups[g];
            uint256 count = group.payments.length;
            total += count;
            (bool attested,) = _verifyGoatBlock(group.blk);
            if (!attested) {
                _skipped(bytes32(0), g, type(uint256).max);
                continue;
            }
            bytes32[] memory head = new bytes32[](2);
            head[0] = bytes32(g);
            for (uint256 i; i < count; ++i) {
                head[1] = bytes32(i);
                uint256 before = gasleft();
                if (_step(this.settleGoatStep.selector, head)) {
                    ++settled;
                } else {
                    _outOfGas(before);
                    GoatPayment calldata p = group.payments[i];
                    _skipped(invoiceIdFor(p.terms.merchant, p.terms.ref), g, i);
                }
            }
        }
        if (total == 0) revert EmptyBatch();
    }

    /// @notice Reverts unless the GOAT block is attested (inline signatures or stored).
    /// @param blk The block.
    function checkGoatBlock(GoatBlock calldata blk) external view {
        (bool attested,) = _verifyGoatBlock(blk);
        if (!attested) _bubble();
    }

    /// @notice Batch step (only callable by this contract): settles payment `i` of group `g`,
    ///         whose block was checked (call data: the head, then the batch's encoding verbatim).
    /// @param g Group index.
    /// @param i Payment index.
    /// @param groups The batch.
    function settleGoatStep(uint256 g, uint256 i, GoatGroup[] calldata groups) external {
        if (msg.sender != address(this)) revert OnlySelf();
        GoatGroup calldata group = groups[g];
        GoatPayment calldata p = group.payments[i];
        _settleGoatPayment(p, group.nodes, p.path, group.blk);
    }

    /// @dev Asks the header store whether the block is attested, forwarding the GoatBlock tuple
    ///      as it sits in calldata: its encoding is exactly verifyBlock's argument encoding.
    ///      Returns false with the store's revert data left in returndata.
    function _verifyGoatBlock(GoatBlock calldata blk) private view returns (bool ok, uint256) {
        address store = address(goatHeaderStore);
        bytes4 selector = IGoatHeaderStore.verifyBlock.selector;
        assembly ("memory-safe") {
            let m := mload(0x40)
            // Tuple: 4 static words, the signatures' offset (0xa0 when canonical), length, data.
            let sigOffset := calldataload(add(blk, 0x80))
            let sigLength := calldataload(add(blk, sigOffset))
            let size := add(add(sigOffset, 0x20), and(add(sigLength, 31), not(31)))
            mstore(m, selector)
            calldatacopy(add(m, 4), blk, size)
            ok := staticcall(gas(), store, m, add(4, size), 0, 0)
        }
        return (ok, 0);
    }

    /// @dev Runs a batch step: selector, the `head` words, the offset of the copied batch,
    ///      then the batch's `groups` encoding copied verbatim from this call's calldata.
    ///      True if it settled; otherwise its revert data is left in returndata.
    function _step(bytes4 selector, bytes32[] memory head) private returns (bool ok) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            let n := mload(head)
            mstore(m, selector)
            for { let k := 0 } lt(k, n) { k := add(k, 1) } {
                mstore(add(add(m, 4), shl(5, k)), mload(add(head, shl(5, add(k, 1)))))
            }
            let at := add(add(m, 4), shl(5, n))
            mstore(at, shl(5, add(n, 1))) // the groups follow the head and this offset word
            let start := add(4, calldataload(4))
            let size := sub(calldatasize(), start)
            calldatacopy(add(at, 32), start, size)
            ok := call(gas(), address(), 0, m, add(sub(add(at, 32), m), size), 0, 0)
        }
    }

    /// @dev A step that failed having spent all the gas it was given ran out of gas (or
    ///      could not give its service hook SERVICE_GAS): the whole batch reverts, so that a
    ///      gas estimate never settles on a limit at which payments are skipped for want of
    ///      gas (the step gets 63/64 of what is left; a payment refused on its merits
    ///      returns most of it).
    function _outOfGas(uint256 before) private view {
        bytes4 reason;
        assembly {
            if gt(returndatasize(), 3) {
                returndatacopy(0, 0, 4)
                reason := and(mload(0), shl(224, 0xffffffff))
            }
        }
        // A service hook refused for want of gas is the same case.
        if (gasleft() < before / 63 || reason == InsufficientGasForService.selector) revert BatchOutOfGas();
    }

    /// @dev Emits SettlementSkipped with the last call's revert data (no memory kept).
    function _skipped(bytes32 id, uint256 g, uint256 i) private {
        bytes memory reason;
        uint256 free;
        assembly ("memory-safe") {
            free := mload(0x40)
            reason := free
            mstore(reason, returndatasize())
            returndatacopy(add(reason, 32), 0, returndatasize())
            mstore(0x40, add(add(reason, 32), and(add(returndatasize(), 31), not(31))))
        }
        emit SettlementSkipped(id, g, i, reason);
        assembly ("memory-safe") {
            mstore(0x40, free)
        }
    }

    /// @dev Reverts with the last call's revert data.
    function _bubble() private pure {
        assembly {
            returndatacopy(0, 0, returndatasize())
            revert(0, returndatasize())
        }
    }

    function _settleGoatPayment(GoatPayment calldata p, bytes[] calldata nodes, bytes calldata path, GoatBlock calldata blk)
        private
    {
        Terms calldata terms = p.terms;
        bytes32 id = _claim(terms, p.signature, Rail.GOAT);
        if (blk.timestamp > terms.expiry) revert PaidAfterExpiry(id, blk.timestamp, terms.expiry);
        (address authorizer, address to, uint256 paid) = _goatTransfer(p, nodes, path, blk.receiptsRoot);
        if (terms.payee.length != 20 || to != address(bytes20(terms.payee))) revert WrongPayee();
        if (paid < terms.amount) revert AmountTooLow(paid, terms.amount);
        _settled(
            id,
            terms,
            Paid({
                payer: abi.encodePacked(authorizer),
                payerAddress: authorizer,
                rail: Rail.GOAT,
                sourceTx: blk.blockHash,
                sourceIndex: p.txIndex,
                amount: paid
            })
        );
    }


    /// @dev Proves the payment's receipt (read in place from the proof's leaf) and returns its
    ///      authorized transfer: authorizer, recipient and value.
    function _goatTransfer(GoatPayment calldata p, bytes[] calldata nodes, bytes calldata path, bytes32 root)
        private
        pure
        returns (address authorizer, address to, uint256 value)
    {
        (uint256 receipt, uint256 receiptEnd) = _provenReceipt(p.txIndex, nodes, path, root);
        return _checkTransfer(_readReceipt(receipt, receiptEnd, p.logIndex), p.logIndex, p.terms.asset, p.terms.ref);
    }

    /// @dev The receipt at rlp(txIndex) under `root`, in place in the proof's leaf: [start, end).
    function _provenReceipt(uint256 txIndex, bytes[] calldata nodes, bytes calldata path, bytes32 root)
        private
        pure
        returns (uint256 start, uint256 end)
    {
        (bytes32 key, uint256 keyNibbles) = _rlpIndexKey(txIndex);
        uint256 length;
        (start, length) = MerklePatriciaProof.getFrom(root, key, keyNibbles, nodes, path);
        end = start + length;
    }

    /// @dev AuthorizationUsed(authorizer, ref) and Transfer(authorizer, to, value), both
    ///      emitted by `asset`, at `index` and `index + 1`.
    function _checkTransfer(Transfer memory t, uint256 index, address asset, bytes32 ref)
        private
        pure
        returns (address authorizer, address to, uint256 value)
    {
        if (t.authEmitter != asset) revert WrongToken(t.authEmitter, asset);
        if (t.authTopic0 != AUTHORIZATION_USED_TOPIC || t.authTopics != 3 || t.authDataLength != 0) {
            revert UnexpectedLog(index);
        }
        if (t.authTopic2 != ref) revert WrongRef(ref, t.authTopic2);
        authorizer = _topicAddress(t.authTopic1, index);
        ++index;
        if (t.transferEmitter != asset) revert WrongToken(t.transferEmitter, asset);
        if (t.transferTopic0 != TRANSFER_TOPIC || t.transferTopics != 3 || t.transferDataLength != 32) {
            revert UnexpectedLog(index);
        }
        address from = _topicAddress(t.transferTopic1, index);
        if (from != authorizer) revert WrongPayer(from, authorizer);
        to = _topicAddress(t.transferTopic2, index);
        value = t.value;
    }

    /// @dev The two logs of a payment, as read from its receipt.
    struct Transfer {
        address authEmitter;
        uint256 authTopics;
        bytes32 authTopic0;
        bytes32 authTopic1;
        bytes32 authTopic2;
        uint256 authDataLength;
        address transferEmitter;
        uint256 transferTopics;
        bytes32 transferTopic0;
        bytes32 transferTopic1;
        bytes32 transferTopic2;
        uint256 transferDataLength;
        uint256 value;
    }

    /// @dev Reads a consensus-encoded receipt in calldata [p, end) (type byte || rlp, or rlp):
    ///      requires status 1 and returns logs `logIndex` and `logIndex + 1` (emitter, up to
    ///      three topics and their count, data length, and the first data word). One pass, no
    ///      decoder calls: a receipt is [status, cumulativeGasUsed, logsBloom, logs] and a log
    ///      [address, [topics], data].
    function _readReceipt(uint256 p, uint256 end, uint256 logIndex) private pure returns (Transfer memory t) {
        uint256 failure; // 1 malformed, 2 failed status (detail), 3 log not found (detail)
        uint256 detail;
        assembly ("memory-safe") {
            // RLP item header at q (bounded by e): payload offset and length, whether a list.
            function hdr(q, e) -> pl, len, isList, bad {
                if iszero(lt(q, e)) {
                    bad := 1
                    leave
                }
                let b := byte(0, calldataload(q))
                if lt(b, 0x80) {
                    pl := q
                    len := 1
                    leave
                }
                if gt(b, 0xbf) {
                    isList := 1
                    b := sub(b, 0x40)
                }
                switch lt(b, 0xb8)
                case 1 {
                    pl := add(q, 1)
                    len := sub(b, 0x80)
                }
                default {
                    let ll := sub(b, 0xb7)
                    len := shr(sub(256, shl(3, ll)), calldataload(add(q, 1)))
                    pl := add(add(q, 1), ll)
                }
                if gt(add(pl, len), e) { bad := 1 }
            }
            // Log [address, [topics], data] at q: writes emitter, topic count, topics 0..2,
            // data length and (optionally) the first data word at out; bad if malformed.
            function readLog(q, e, out, wantValue) -> bad {
                let pl, len, isList, b := hdr(q, e)
                if or(b, iszero(isList)) {
                    bad := 1
                    leave
                }
                let le := add(pl, len)
                let apl, alen, al, ab := hdr(pl, le)
                if or(or(ab, al), iszero(eq(alen, 20))) {
                    bad := 1
                    leave
                }
                mstore(out, shr(96, calldataload(apl)))
                let tpl, tlen, tl, tb := hdr(add(apl, 20), le)
                if or(tb, iszero(tl)) {
                    bad := 1
                    leave
                }
                let te := add(tpl, tlen)
                let n := 0
                for {} lt(tpl, te) {} {
                    let vpl, vlen, vl, vb := hdr(tpl, te)
                    if or(or(vb, vl), iszero(eq(vlen, 32))) {
                        bad := 1
                        leave
                    }
                    if lt(n, 3) { mstore(add(out, shl(5, add(n, 2))), calldataload(vpl)) }
                    n := add(n, 1)
                    tpl := add(vpl, 32)
                }
                mstore(add(out, 0x20), n)
                let dpl, dlen, dl, db := hdr(te, le)
                if or(or(db, dl), iszero(eq(add(dpl, dlen), le))) {
                    bad := 1
                    leave
                }
                mstore(add(out, 0xa0), dlen)
                if and(wantValue, eq(dlen, 32)) { mstore(add(out, 0xc0), calldataload(dpl)) } // t.value
            }

            for {} 1 {} {
                if iszero(lt(p, end)) {
                    failure := 1
                    break
                }
                if lt(byte(0, calldataload(p)), 0x80) { p := add(p, 1) } // EIP-2718 type byte
                let pl, len, isList, bad := hdr(p, end)
                if or(bad, or(iszero(isList), iszero(eq(add(pl, len), end)))) {
                    failure := 1
                    break
                }
                // status: one byte (1) or empty (0); a 32-byte pre-Byzantium root is refused.
                let spl, slen, sl, sb := hdr(pl, end)
                if or(or(sb, sl), gt(slen, 1)) {
                    failure := 1
                    break
                }
                let status := 0
                if slen { status := byte(0, calldataload(spl)) }
                if iszero(eq(status, 1)) {
                    failure := 2
                    detail := status
                    break
                }
                let q := add(spl, slen)
                let gpl, glen, gl, gb := hdr(q, end) // cumulativeGasUsed
                if or(gb, gl) {
                    failure := 1
                    break
                }
                let bpl, blen, bl, bb := hdr(add(gpl, glen), end) // logsBloom
                if or(bb, bl) {
                    failure := 1
                    break
                }
                let lpl, llen, ll, lb := hdr(add(bpl, blen), end)
                if or(or(lb, iszero(ll)), iszero(eq(add(lpl, llen), end))) {
                    failure := 1
                    break
                }
                q := lpl
                for { let i := 0 } 1 { i := add(i, 1) } {
                    if iszero(lt(q, end)) {
                        failure := 3
                        detail := i
                        break
                    }
                    let opl, olen, ol, ob := hdr(q, end)
                    if or(ob, iszero(ol)) {
                        failure := 1
                        break
                    }
                    if eq(i, logIndex) {
                        if readLog(q, end, t, 0) {
                            failure := 1
                            break
                        }
                    }
                    if eq(i, add(logIndex, 1)) {
                        if readLog(q, end, add(t, 0xc0), 1) { failure := 1 }
                        break
                    }
                    q := add(opl, olen)
                }
                break
            }
        }
        if (failure == 1) revert MalformedReceipt();
        if (failure == 2) revert ReceiptFailed(detail);
        if (failure == 3) revert LogNotFound(detail);
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

    /// @dev Resolves the terms to an open invoice of `rail` and returns its id. Stored terms
    ///      must match exactly; otherwise the merchant's signature is required.
    function _claim(Terms calldata terms, bytes calldata signature, Rail rail) private view returns (bytes32 id) {
        if (terms.rail != uint8(rail)) revert WrongRail(uint8(rail), terms.rail);
        id = invoiceIdFor(terms.merchant, terms.ref);
        uint256 state = _state[id];
        if (state == SETTLED || state == SETTLED_SERVICE_FAILED) revert AlreadySettled(id);
        if (state != 0) {
            if (bytes32(state) != termsHash(terms)) revert TermsMismatch(id);
        } else if (!_signedByMerchant(terms.merchant, _hashTypedData(termsHash(terms)), signature)) {
            revert InvalidMerchantSignature(id, terms.merchant);
        }
    }

    /// @dev EOA: a 65-byte low-s signature recovering to `merchant`; otherwise, if `merchant`
    ///      has code, its ERC-1271 answer.
    function _signedByMerchant(address merchant, bytes32 digest, bytes calldata signature)
        private
        view
        returns (bool)
    {
        if (signature.length == 65) {
            address signer;
            assembly ("memory-safe") {
                let s := calldataload(add(signature.offset, 32))
                let v := byte(0, calldataload(add(signature.offset, 64)))
                if and(iszero(gt(s, HALF_N)), or(eq(v, 27), eq(v, 28))) {
                    let m := mload(0x40)
                    mstore(m, digest)
                    mstore(add(m, 32), v)
                    mstore(add(m, 64), calldataload(signature.offset))
                    mstore(add(m, 96), s)
                    mstore(0, 0)
                    if iszero(staticcall(gas(), 1, m, 128, 0, 32)) { revert(0, 0) }
                    signer := mload(0)
                }
            }
            if (signer != address(0) && signer == merchant) return true;
        }
        if (merchant.code.length == 0) return false;
        (bool ok, bytes memory answer) =
            merchant.staticcall(abi.encodeCall(IERC1271.isValidSignature, (digest, signature)));
        return ok && answer.length >= 32 && abi.decode(answer, (bytes4)) == IERC1271.isValidSignature.selector;
    }

    /// @dev Marks the invoice settled and calls its service hook, if any.
    function _settled(bytes32 id, Terms calldata terms, Paid memory paid) private {
        _state[id] = SETTLED;
        emit InvoiceSettled(
            id, terms.merchant, terms.ref, uint8(paid.rail), paid.payer, paid.sourceTx, paid.sourceIndex, paid.amount
        );
        address service = terms.service;
        if (service == address(0)) return;
        // EIP-150 leaves the caller 1/64: require enough that the hook gets all of SERVICE_GAS.
        uint256 available = gasleft();
        if (available < SERVICE_GAS + SERVICE_GAS / 63 + 5_000) revert InsufficientGasForService(available);
        bytes memory call_ = abi.encodeCall(
            IInvoiceService.onInvoiceSettled, (id, terms.merchant, paid.payerAddress, paid.amount, terms.serviceId)
        );
        bool ok;
        assembly ("memory-safe") {
            // No return data is copied: a hook cannot make the settlement pay for a large answer.
            ok := call(SERVICE_GAS, service, 0, add(call_, 32), mload(call_), 0, 0)
        }
        if (!ok) {
            _state[id] = SETTLED_SERVICE_FAILED;
            emit ServiceCallFailed(id, service);
        }
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256(bytes(NAME)), keccak256(bytes(VERSION)), block.chainid, address(this))
        );
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32 digest) {
        bytes32 domainSeparator = DOMAIN_SEPARATOR();
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x1901000000000000000000000000000000000000000000000000000000000000)
            mstore(add(m, 2), domainSeparator)
            mstore(add(m, 34), structHash)
            digest := keccak256(m, 66)
        }
    }
}
