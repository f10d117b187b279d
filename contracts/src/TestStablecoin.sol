// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.23;

/// @title TestStablecoin
/// @author gmrelay
/// @notice Devnet stand-in for USDC on GOAT Network: an ERC-20 with 6 decimals and
///         EIP-3009 transfer authorizations, signed over the same EIP-712 domain shape
///         as Circle's FiatTokenV2 ({name, version, chainId, verifyingContract}; "USD Coin",
///         "2" by default). x402 "exact" payments on EVM chains are EIP-3009
///         `transferWithAuthorization` calls, which this token accepts unchanged.
/// @dev Differences from USDC: no proxy, no blacklist, no pause, no minter allowances;
///      only the deployer may mint. Signatures are accepted both as (v, r, s) and as
///      `bytes` (FiatTokenV2.2 overloads); a signer with code is verified through
///      EIP-1271 as FiatTokenV2.2 does. ECDSA signatures must be low-s (EIP-2).
contract TestStablecoin {
    // ---------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------

    /// @notice keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    bytes32 public constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice EIP-3009 type hash of `TransferWithAuthorization`.
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @notice EIP-3009 type hash of `ReceiveWithAuthorization`.
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @notice EIP-3009 type hash of `CancelAuthorization`.
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// @dev secp256k1n / 2: the largest `s` accepted (EIP-2).
    uint256 private constant HALF_CURVE_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @dev EIP-1271 magic value, `isValidSignature(bytes32,bytes)` selector.
    bytes4 private constant EIP1271_MAGIC = 0x1626ba7e;

    // ---------------------------------------------------------------------------------
    // Storage
    // ---------------------------------------------------------------------------------

    /// @notice Token name, also the EIP-712 domain name.
    string public name;

    /// @notice Token symbol.
    string public symbol;

    /// @notice EIP-712 domain version (USDC uses "2").
    string public version;

    /// @notice The only account allowed to mint: the deployer.
    address public immutable minter;

    /// @notice Total amount of tokens in existence.
    uint256 public totalSupply;

    /// @notice Balance of each account.
    mapping(address account => uint256) public balanceOf;

    /// @notice Remaining amount `spender` may move on behalf of `owner`.
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @dev EIP-3009 nonce state per authorizer: true once used or canceled.
    mapping(address authorizer => mapping(bytes32 nonce => bool)) private _authorizationStates;

    /// @dev Hashes of name and version, fixed at construction.
    bytes32 private immutable _hashedName;
    bytes32 private immutable _hashedVersion;

    /// @dev Domain separator cached for the chain id seen at construction.
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice ERC-20: `value` tokens moved from `from` to `to` (zero address for mints).
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @notice ERC-20: `owner` set the allowance of `spender` to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice EIP-3009: the authorization `nonce` of `authorizer` was executed.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

    /// @notice EIP-3009: the authorization `nonce` of `authorizer` was canceled.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice Only the deployer may mint.
    error NotMinter(address caller);

    /// @notice Transfers and approvals from or to the zero address are refused.
    error ZeroAddress();

    /// @notice `account` holds `balance`, less than the `needed` amount.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);

    /// @notice `spender` may move `allowance` of the owner's tokens, less than `needed`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    /// @notice decreaseAllowance would go below zero.
    error AllowanceUnderflow(address spender, uint256 allowance, uint256 decrease);

    /// @notice The authorization is valid only after `validAfter` (exclusive).
    error AuthorizationNotYetValid(uint256 validAfter, uint256 timestamp);

    /// @notice The authorization was valid only before `validBefore` (exclusive).
    error AuthorizationExpired(uint256 validBefore, uint256 timestamp);

    /// @notice The nonce of `authorizer` was already used or canceled.
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);

    /// @notice receiveWithAuthorization must be called by the payee.
    error CallerNotPayee(address caller, address payee);

    /// @notice The signature does not verify for the expected signer.
    error InvalidSignature(address expectedSigner);

    /// @notice The ECDSA signature is not 65 bytes long.
    error InvalidSignatureLength(uint256 length);

    /// @notice The ECDSA signature has `s` in the upper half of the curve order (EIP-2).
    error SignatureMalleable();

    /// @notice The ECDSA signature has a `v` other than 27 or 28.
    error InvalidSignatureV(uint8 v);

    // ---------------------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------------------

    /// @notice Deploys the token; the deployer becomes the minter.
    /// @param name_ Token name and EIP-712 domain name (USDC: "USD Coin").
    /// @param symbol_ Token symbol (USDC: "USDC").
    /// @param version_ EIP-712 domain version (USDC: "2").
    constructor(string memory name_, string memory symbol_, string memory version_) {
        name = name_;
        symbol = symbol_;
        version = version_;
        minter = msg.sender;
        _hashedName = keccak256(bytes(name_));
        _hashedVersion = keccak256(bytes(version_));
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    // ---------------------------------------------------------------------------------
    // ERC-20
    // ---------------------------------------------------------------------------------

    /// @notice Number of decimals: 6, as USDC.
    /// @return The number of decimals.
    function decimals() external pure returns (uint8) {
        return 6;
    }

    /// @notice Moves `value` tokens from the caller to `to`.
    /// @param to Recipient.
    /// @param value Amount in base units.
    /// @return Always true (failures revert).
    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Moves `value` tokens from `from` to `to` using the caller's allowance.
    /// @dev An allowance of type(uint256).max is not decreased.
    /// @param from Owner of the tokens.
    /// @param to Recipient.
    /// @param value Amount in base units.
    /// @return Always true (failures revert).
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(msg.sender, allowed, value);
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice Sets the allowance of `spender` over the caller's tokens to `value`.
    /// @param spender Account allowed to spend.
    /// @param value New allowance.
    /// @return Always true (failures revert).
    function approve(address spender, uint256 value) external returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    /// @notice Raises the allowance of `spender` by `increment`.
    /// @param spender Account allowed to spend.
    /// @param increment Amount added to the allowance.
    /// @return Always true (failures revert).
    function increaseAllowance(address spender, uint256 increment) external returns (bool) {
        _approve(msg.sender, spender, allowance[msg.sender][spender] + increment);
        return true;
    }

    /// @notice Lowers the allowance of `spender` by `decrement`.
    /// @param spender Account allowed to spend.
    /// @param decrement Amount removed from the allowance.
    /// @return Always true (failures revert).
    function decreaseAllowance(address spender, uint256 decrement) external returns (bool) {
        uint256 current = allowance[msg.sender][spender];
        if (current < decrement) revert AllowanceUnderflow(spender, current, decrement);
        unchecked {
            _approve(msg.sender, spender, current - decrement);
        }
        return true;
    }

    /// @notice Creates `amount` tokens for `to`. Only the deployer may call it (devnet token).
    /// @param to Recipient of the new tokens.
    /// @param amount Amount in base units.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        totalSupply += amount;
        unchecked {
            // Cannot overflow: every balance is bounded by totalSupply.
            balanceOf[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }

    // ---------------------------------------------------------------------------------
    // EIP-712
    // ---------------------------------------------------------------------------------

    /// @notice The EIP-712 domain separator for the current chain.
    /// @dev Recomputed if the chain id differs from the one at deployment (fork safety).
    /// @return The domain separator.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /// @notice EIP-5267 description of the EIP-712 domain.
    /// @return fields Bit map of the fields used: name, version, chainId, verifyingContract (0x0f).
    /// @return name_ Domain name.
    /// @return version_ Domain version.
    /// @return chainId Current chain id.
    /// @return verifyingContract This contract.
    /// @return salt Unused (zero).
    /// @return extensions Unused (empty).
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name_,
            string memory version_,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", name, version, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    // ---------------------------------------------------------------------------------
    // EIP-3009
    // ---------------------------------------------------------------------------------

    /// @notice Whether the authorization `nonce` of `authorizer` was used or canceled.
    /// @param authorizer Signer of the authorization.
    /// @param nonce Unique 32-byte nonce chosen by the authorizer.
    /// @return True once used or canceled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @notice Executes a transfer signed by `from` (anyone may submit it).
    /// @param from Payer and signer.
    /// @param to Payee.
    /// @param value Amount in base units.
    /// @param validAfter The authorization is valid strictly after this unix time.
    /// @param validBefore The authorization is valid strictly before this unix time.
    /// @param nonce Unique nonce chosen by the payer.
    /// @param v Recovery byte of the signature (27 or 28).
    /// @param r First half of the ECDSA signature.
    /// @param s Second half of the ECDSA signature (low-s).
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    /// @notice Executes a transfer signed by `from`; signature as bytes (65-byte ECDSA, or EIP-1271 data).
    /// @param from Payer and signer.
    /// @param to Payee.
    /// @param value Amount in base units.
    /// @param validAfter The authorization is valid strictly after this unix time.
    /// @param validBefore The authorization is valid strictly before this unix time.
    /// @param nonce Unique nonce chosen by the payer.
    /// @param signature r || s || v for an EOA, or the payload for the signer's EIP-1271 check.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    /// @notice Executes a transfer signed by `from`; only the payee `to` may submit it
    ///         (prevents front-running of deposits into contracts).
    /// @param from Payer and signer.
    /// @param to Payee, must be the caller.
    /// @param value Amount in base units.
    /// @param validAfter The authorization is valid strictly after this unix time.
    /// @param validBefore The authorization is valid strictly before this unix time.
    /// @param nonce Unique nonce chosen by the payer.
    /// @param v Recovery byte of the signature (27 or 28).
    /// @param r First half of the ECDSA signature.
    /// @param s Second half of the ECDSA signature (low-s).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (msg.sender != to) revert CallerNotPayee(msg.sender, to);
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    /// @notice `receiveWithAuthorization` with the signature as bytes.
    /// @param from Payer and signer.
    /// @param to Payee, must be the caller.
    /// @param value Amount in base units.
    /// @param validAfter The authorization is valid strictly after this unix time.
    /// @param validBefore The authorization is valid strictly before this unix time.
    /// @param nonce Unique nonce chosen by the payer.
    /// @param signature r || s || v for an EOA, or the payload for the signer's EIP-1271 check.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        if (msg.sender != to) revert CallerNotPayee(msg.sender, to);
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    /// @notice Cancels an unused authorization of `authorizer` (anyone may submit the signed cancel).
    /// @param authorizer Signer of the authorization to cancel.
    /// @param nonce Nonce of the authorization.
    /// @param v Recovery byte of the signature (27 or 28).
    /// @param r First half of the ECDSA signature.
    /// @param s Second half of the ECDSA signature (low-s).
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        _cancelAuthorization(authorizer, nonce, abi.encodePacked(r, s, v));
    }

    /// @notice `cancelAuthorization` with the signature as bytes.
    /// @param authorizer Signer of the authorization to cancel.
    /// @param nonce Nonce of the authorization.
    /// @param signature r || s || v for an EOA, or the payload for the signer's EIP-1271 check.
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external {
        _cancelAuthorization(authorizer, nonce, signature);
    }

    // ---------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------

    function _transferWithAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) private {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore, block.timestamp);
        _requireUnusedAuthorization(from, nonce);
        bytes32 structHash = keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce));
        _requireValidSignature(from, _hashTypedData(structHash), signature);
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) private {
        _requireUnusedAuthorization(authorizer, nonce);
        bytes32 structHash = keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce));
        _requireValidSignature(authorizer, _hashTypedData(structHash), signature);
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    function _requireUnusedAuthorization(address authorizer, bytes32 nonce) private view {
        if (_authorizationStates[authorizer][nonce]) revert AuthorizationAlreadyUsed(authorizer, nonce);
    }

    function _transfer(address from, address to, uint256 value) private {
        if (from == address(0) || to == address(0)) revert ZeroAddress();
        uint256 balance = balanceOf[from];
        if (balance < value) revert InsufficientBalance(from, balance, value);
        unchecked {
            balanceOf[from] = balance - value;
            // Cannot overflow: the sum of all balances is totalSupply.
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }

    function _approve(address owner, address spender, uint256 value) private {
        if (owner == address(0) || spender == address(0)) revert ZeroAddress();
        allowance[owner][spender] = value;
        emit Approval(owner, spender, value);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(EIP712_DOMAIN_TYPEHASH, _hashedName, _hashedVersion, block.chainid, address(this)));
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32 digest) {
        bytes32 domainSeparator = DOMAIN_SEPARATOR();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// @dev Reverts unless `signature` is valid for `signer` over `digest`: EIP-1271 when the
    ///      signer has code (as FiatTokenV2.2's SignatureChecker), low-s ECDSA otherwise.
    function _requireValidSignature(address signer, bytes32 digest, bytes memory signature) private view {
        if (signer.code.length != 0) {
            (bool ok, bytes memory ret) =
                signer.staticcall(abi.encodeWithSelector(EIP1271_MAGIC, digest, signature));
            if (!ok || ret.length < 32 || abi.decode(ret, (bytes32)) != bytes32(EIP1271_MAGIC)) {
                revert InvalidSignature(signer);
            }
            return;
        }
        if (signature.length != 65) revert InvalidSignatureLength(signature.length);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        if (uint256(s) > HALF_CURVE_ORDER) revert SignatureMalleable();
        if (v != 27 && v != 28) revert InvalidSignatureV(v);
        address recovered = ecrecover(digest, v, r, s);
        if (recovered == address(0) || recovered != signer) revert InvalidSignature(signer);
    }
}
