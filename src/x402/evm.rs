//! The `exact` scheme on GOAT (EVM): an EIP-3009 `transferWithAuthorization`
//! signed by the payer. [`check`] is pure (fields, time window, EIP-712
//! signature); [`check_on_chain`] asks the token (its EIP-712 domain, the
//! nonce unused, the balance, a simulated transfer); [`submit`] sends it.

use std::time::Duration;

use alloy::primitives::{Address, Bytes, Signature, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{eip712_domain, SolCall, SolStruct};
use serde_json::Value;

use super::wire::{Problem, Reason, Requirements};

alloy::sol! {
    /// The EIP-3009 `TransferWithAuthorization` message (EIP-712 struct).
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

alloy::sol! {
    /// What the facilitator asks of an EIP-3009 token.
    #[allow(missing_docs, clippy::too_many_arguments)]
    #[sol(rpc)]
    interface IEip3009 {
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function name() external view returns (string);
        function version() external view returns (string);
        function balanceOf(address account) external view returns (uint256);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
    }
}

/// The EIP-712 domain of an EIP-3009 token.
pub fn domain(
    name: &str,
    version: &str,
    chain_id: u64,
    token: Address,
) -> alloy::sol_types::Eip712Domain {
    eip712_domain! {
        name: name.to_string(),
        version: version.to_string(),
        chain_id: chain_id,
        verifying_contract: token,
    }
}

/// The EIP-712 signing hash of an authorization for `token`.
pub fn authorization_hash(
    name: &str,
    version: &str,
    chain_id: u64,
    token: Address,
    auth: &TransferWithAuthorization,
) -> B256 {
    auth.eip712_signing_hash(&domain(name, version, chain_id, token))
}

/// What the requirements ask, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmTerms {
    /// The chain (from `eip155:<id>`).
    pub chain_id: u64,
    /// The token.
    pub asset: Address,
    /// Who is paid.
    pub pay_to: Address,
    /// How much, base units.
    pub amount: U256,
    /// The token's EIP-712 name (`extra.name`).
    pub name: String,
    /// Its EIP-712 version (`extra.version`).
    pub version: String,
}

/// A signed authorization, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmPayment {
    /// The authorization.
    pub authorization: TransferWithAuthorization,
    /// 65 bytes r‖s‖v.
    pub signature: Signature,
}

impl EvmPayment {
    /// `(v, r, s)` as `transferWithAuthorization` takes them.
    pub fn vrs(&self) -> (u8, B256, B256) {
        (
            27 + u8::from(self.signature.v()),
            B256::from(self.signature.r().to_be_bytes::<32>()),
            B256::from(self.signature.s().to_be_bytes::<32>()),
        )
    }
}

fn bad(reason: Reason, m: impl Into<String>) -> Problem {
    Problem::new(reason, m)
}

/// Reads the requirements of an `exact` payment on `eip155:<chain_id>`.
pub fn terms(req: &Requirements, chain_id: u64) -> Result<EvmTerms, Problem> {
    let want = format!("eip155:{chain_id}");
    if req.network.to_string() != want {
        return Err(bad(
            Reason::InvalidNetwork,
            format!("network {} is not GOAT ({want})", req.network),
        ));
    }
    let r = Reason::InvalidRequirements;
    let asset = req
        .asset
        .parse()
        .map_err(|_| bad(r, format!("asset `{}` is not a 0x address", req.asset)))?;
    let pay_to = req
        .pay_to
        .parse()
        .map_err(|_| bad(r, format!("payTo `{}` is not a 0x address", req.pay_to)))?;
    let amount = parse_uint(&req.amount).ok_or_else(|| {
        bad(
            r,
            format!(
                "amount `{}` is not a whole number of base units",
                req.amount
            ),
        )
    })?;
    let extra = req.extra.as_ref();
    let field = |k: &str| {
        extra
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(r, format!("extra.{k}: the token's EIP-712 {k} is required")))
    };
    Ok(EvmTerms {
        chain_id,
        asset,
        pay_to,
        amount,
        name: field("name")?,
        version: field("version")?,
    })
}

/// A decimal (or 0x hex) unsigned integer.
pub fn parse_uint(s: &str) -> Option<U256> {
    if let Some(h) = s.strip_prefix("0x") {
        U256::from_str_radix(h, 16).ok()
    } else {
        U256::from_str_radix(s, 10).ok()
    }
}

/// Reads `payload` = `{signature, authorization {from, to, value,
/// validAfter, validBefore, nonce}}`.
pub fn payment(payload: &Value) -> Result<EvmPayment, Problem> {
    let r = Reason::InvalidPayload;
    let auth = payload
        .get("authorization")
        .ok_or_else(|| bad(r, "payload.authorization is missing"))?;
    let s = |k: &str| {
        auth.get(k).and_then(Value::as_str).ok_or_else(|| {
            bad(
                r,
                format!("payload.authorization.{k}: missing or not a string"),
            )
        })
    };
    let addr = |k: &str| -> Result<Address, Problem> {
        s(k)?
            .parse()
            .map_err(|_| bad(r, format!("payload.authorization.{k}: not a 0x address")))
    };
    let uint = |k: &str| -> Result<U256, Problem> {
        // Numbers as JSON numbers are tolerated too.
        let v = auth.get(k);
        match v {
            Some(Value::Number(n)) => n.as_u64().map(U256::from),
            Some(Value::String(t)) => parse_uint(t),
            _ => None,
        }
        .ok_or_else(|| {
            bad(
                r,
                format!("payload.authorization.{k}: not an unsigned integer"),
            )
        })
    };
    let nonce: B256 = s("nonce")?
        .parse()
        .map_err(|_| bad(r, "payload.authorization.nonce: not 32 bytes of 0x hex"))?;
    let authorization = TransferWithAuthorization {
        from: addr("from")?,
        to: addr("to")?,
        value: uint("value")?,
        validAfter: uint("validAfter")?,
        validBefore: uint("validBefore")?,
        nonce,
    };
    let sig_hex = payload
        .get("signature")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(r, "payload.signature: missing or not a string"))?;
    let sig_bytes: Bytes = sig_hex
        .parse()
        .map_err(|_| bad(r, "payload.signature: not 0x hex"))?;
    let signature = Signature::try_from(sig_bytes.as_ref()).map_err(|_| {
        bad(
            Reason::InvalidSignature,
            format!(
                "payload.signature: {} bytes; a 65-byte EOA signature is required (smart-wallet signatures are not supported)",
                sig_bytes.len()
            ),
        )
    })?;
    Ok(EvmPayment {
        authorization,
        signature,
    })
}

/// secp256k1 order / 2: a larger `s` is refused by EIP-3009 tokens.
const HALF_N: U256 = U256::from_limbs([
    0xdfe92f46681b20a0,
    0x5d576e7357a4501d,
    0xffffffffffffffff,
    0x7fffffffffffffff,
]);

/// The address that signed `hash`, by libsecp256k1 (several times faster
/// than the pure-Rust recovery; `/verify` does one per request).
pub fn recover(hash: &B256, sig: &Signature) -> Option<Address> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    static CTX: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> =
        std::sync::OnceLock::new();
    let ctx = CTX.get_or_init(secp256k1::Secp256k1::verification_only);
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let id = RecoveryId::from_i32(i32::from(sig.v())).ok()?;
    let rs = RecoverableSignature::from_compact(&compact, id).ok()?;
    let key = ctx
        .recover_ecdsa(&secp256k1::Message::from_digest(hash.0), &rs)
        .ok()?;
    let uncompressed = key.serialize_uncompressed();
    Some(Address::from_raw_public_key(&uncompressed[1..]))
}

/// The checks that need no chain: [`check_fields`], then
/// [`check_signature`]. Returns the payer.
pub fn check(
    t: &EvmTerms,
    p: &EvmPayment,
    now: u64,
    min_validity: u64,
) -> Result<Address, Problem> {
    check_fields(t, p, now, min_validity)?;
    check_signature(t, p)
}

/// Recipient, value, time window (`now`, with `min_validity` seconds left
/// to mine it) and a low `s`: cheap, no key recovery.
pub fn check_fields(
    t: &EvmTerms,
    p: &EvmPayment,
    now: u64,
    min_validity: u64,
) -> Result<(), Problem> {
    let a = &p.authorization;
    if a.to != t.pay_to {
        return Err(bad(
            Reason::RecipientMismatch,
            format!("authorization.to {} is not payTo {}", a.to, t.pay_to),
        ));
    }
    if a.value != t.amount {
        return Err(bad(
            Reason::ValueMismatch,
            format!(
                "authorization.value {} is not the amount {}",
                a.value, t.amount
            ),
        ));
    }
    if a.validAfter > U256::from(now) {
        return Err(bad(
            Reason::ValidAfter,
            format!(
                "authorization.validAfter {} is after now ({now})",
                a.validAfter
            ),
        ));
    }
    if a.validBefore < U256::from(now.saturating_add(min_validity)) {
        return Err(bad(
            Reason::ValidBefore,
            format!(
                "authorization.validBefore {} leaves less than {min_validity} s from now ({now})",
                a.validBefore
            ),
        ));
    }
    if p.signature.s() > HALF_N {
        return Err(bad(
            Reason::InvalidSignature,
            "payload.signature: high s (the token refuses malleable signatures)",
        ));
    }
    Ok(())
}

/// The EIP-712 signature recovers `authorization.from` (under the domain the
/// requirements name). Returns the payer.
pub fn check_signature(t: &EvmTerms, p: &EvmPayment) -> Result<Address, Problem> {
    let a = &p.authorization;
    let hash = authorization_hash(&t.name, &t.version, t.chain_id, t.asset, a);
    let signer = recover(&hash, &p.signature).ok_or_else(|| {
        bad(
            Reason::InvalidSignature,
            "payload.signature: recovers no key",
        )
    })?;
    if signer != a.from {
        return Err(bad(
            Reason::InvalidSignature,
            format!(
                "payload.signature recovers {signer}, not authorization.from {} (domain {} v{} chain {} token {})",
                a.from, t.name, t.version, t.chain_id, t.asset
            ),
        ));
    }
    Ok(a.from)
}

/// The checks against the token on GOAT, after [`check_fields`]: its
/// EIP-712 domain is the one the requirements name (`domain_separator`, read
/// once by the caller) and the transfer succeeds when simulated from
/// `submitter`, which proves the signature as the token reads it. When it
/// does not, the signature, the nonce and the balance are checked in turn
/// for the code that says why.
pub async fn check_on_chain<P: Provider>(
    provider: &P,
    t: &EvmTerms,
    p: &EvmPayment,
    domain_separator: B256,
    submitter: Address,
) -> Result<(), Problem> {
    let want = domain(&t.name, &t.version, t.chain_id, t.asset).separator();
    if domain_separator != want {
        return Err(bad(
            Reason::InvalidRequirements,
            format!(
                "extra.name/extra.version ({} / {}) are not the EIP-712 domain of token {}",
                t.name, t.version, t.asset
            ),
        ));
    }
    // The simulated transfer answers for all (nonce unused, balance,
    // signature as the token sees it): one call on the happy path. Only a
    // refusal asks the token why, for the specific code.
    let simulated = provider.call(transfer_request(t, p).from(submitter)).await;
    let Err(revert) = simulated else {
        return Ok(());
    };
    check_signature(t, p)?;
    let token = IEip3009::new(t.asset, provider);
    let a = &p.authorization;
    let used = token.authorizationState(a.from, a.nonce);
    let balance = token.balanceOf(a.from);
    let (used, balance) = tokio::join!(used.call(), balance.call());
    let node = |e: alloy::contract::Error| bad(Reason::UnexpectedVerify, format!("GOAT node: {e}"));
    if used.map_err(node)? {
        return Err(bad(
            Reason::InvalidTransactionState,
            format!(
                "authorization nonce {} of {} is used on GOAT",
                a.nonce, a.from
            ),
        ));
    }
    let balance = balance.map_err(node)?;
    if balance < a.value {
        return Err(bad(
            Reason::InsufficientFunds,
            format!(
                "{} holds {balance} of {}, less than {}",
                a.from, t.asset, a.value
            ),
        ));
    }
    Err(bad(
        Reason::InvalidTransactionState,
        format!("transferWithAuthorization reverts when simulated: {revert}"),
    ))
}

/// `transferWithAuthorization(…, v, r, s)` of `p` on the token, as a transaction.
fn transfer_request(t: &EvmTerms, p: &EvmPayment) -> TransactionRequest {
    let a = &p.authorization;
    let (v, r, s) = p.vrs();
    let call = IEip3009::transferWithAuthorizationCall {
        from: a.from,
        to: a.to,
        value: a.value,
        validAfter: a.validAfter,
        validBefore: a.validBefore,
        nonce: a.nonce,
        v,
        r,
        s,
    };
    TransactionRequest::default()
        .to(t.asset)
        .input(call.abi_encode().into())
}

/// The token's `DOMAIN_SEPARATOR()`.
pub async fn domain_separator<P: Provider>(provider: &P, token: Address) -> Result<B256, Problem> {
    IEip3009::new(token, provider)
        .DOMAIN_SEPARATOR()
        .call()
        .await
        .map_err(|e| {
            bad(
                Reason::UnexpectedVerify,
                format!("DOMAIN_SEPARATOR() of {token}: {e}"),
            )
        })
}

/// Sends the transfer from the provider's wallet; returns its hash once the
/// node took it (the caller records it before waiting, so a retry never
/// sends it again).
pub async fn send<P: Provider>(
    provider: &P,
    t: &EvmTerms,
    p: &EvmPayment,
) -> Result<B256, Problem> {
    let pending = provider
        .send_transaction(transfer_request(t, p))
        .await
        .map_err(|e| {
            bad(
                Reason::UnexpectedSettle,
                format!("sending transferWithAuthorization on GOAT: {e}"),
            )
        })?;
    Ok(*pending.tx_hash())
}

/// Waits up to `timeout` for `hash`'s receipt; a revert is refused.
pub async fn mined<P: Provider>(
    provider: &P,
    hash: B256,
    timeout: Duration,
) -> Result<(), Problem> {
    let started = std::time::Instant::now();
    loop {
        match provider.get_transaction_receipt(hash).await {
            Ok(Some(r)) if r.status() => return Ok(()),
            Ok(Some(_)) => {
                return Err(bad(
                    Reason::InvalidTransactionState,
                    format!("GOAT transaction {hash} reverted"),
                ))
            }
            Ok(None) | Err(_) if started.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(None) => {
                return Err(bad(
                    Reason::SettlementPending,
                    format!(
                        "GOAT transaction {hash}: no receipt after {} s",
                        timeout.as_secs()
                    ),
                ))
            }
            Err(e) => {
                return Err(bad(
                    Reason::UnexpectedSettle,
                    format!("GOAT transaction {hash}: {e}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use alloy::signers::SignerSync;

    fn setup() -> (EvmTerms, EvmPayment, PrivateKeySigner) {
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap();
        let t = EvmTerms {
            chain_id: 2345,
            asset: Address::repeat_byte(0xaa),
            pay_to: Address::repeat_byte(0xbb),
            amount: U256::from(10_000u64),
            name: "USD Coin".into(),
            version: "2".into(),
        };
        let authorization = TransferWithAuthorization {
            from: key.address(),
            to: t.pay_to,
            value: t.amount,
            validAfter: U256::ZERO,
            validBefore: U256::from(1_000u64),
            nonce: B256::repeat_byte(1),
        };
        let hash = authorization_hash(&t.name, &t.version, 2345, t.asset, &authorization);
        let signature = key.sign_hash_sync(&hash).unwrap();
        (
            t,
            EvmPayment {
                authorization,
                signature,
            },
            key,
        )
    }

    #[test]
    fn a_well_signed_authorization_passes_and_each_broken_field_is_named() {
        let (t, p, key) = setup();
        assert_eq!(check(&t, &p, 100, 6).unwrap(), key.address());
        type Edit = fn(&mut EvmTerms, &mut EvmPayment);
        let cases: Vec<(&str, Edit, Reason)> = vec![
            (
                "recipient",
                |_, p| p.authorization.to = Address::ZERO,
                Reason::RecipientMismatch,
            ),
            (
                "value",
                |_, p| p.authorization.value += U256::from(1),
                Reason::ValueMismatch,
            ),
            (
                "valid after",
                |_, p| p.authorization.validAfter = U256::from(101),
                Reason::ValidAfter,
            ),
            (
                "valid before",
                |_, p| p.authorization.validBefore = U256::from(105),
                Reason::ValidBefore,
            ),
            (
                "nonce",
                |_, p| p.authorization.nonce = B256::repeat_byte(2),
                Reason::InvalidSignature,
            ),
            (
                "domain version",
                |t, _| t.version = "1".into(),
                Reason::InvalidSignature,
            ),
            ("chain", |t, _| t.chain_id = 48816, Reason::InvalidSignature),
            (
                "high s",
                |_, p| {
                    let n = U256::from_be_slice(
                        &hex::decode(
                            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
                        )
                        .unwrap(),
                    );
                    p.signature =
                        Signature::new(p.signature.r(), n - p.signature.s(), !p.signature.v());
                },
                Reason::InvalidSignature,
            ),
        ];
        for (name, edit, want) in cases {
            let (mut t, mut p, _) = setup();
            edit(&mut t, &mut p);
            let e = check(&t, &p, 100, 6).unwrap_err();
            assert_eq!(e.reason, want, "{name}: {e}");
        }
    }

    #[test]
    fn the_stock_payload_shape_parses_and_bad_fields_are_named() {
        let (_, p, _) = setup();
        let a = &p.authorization;
        let good = serde_json::json!({
            "signature": format!("0x{}", hex::encode(p.signature.as_bytes())),
            "authorization": {
                "from": a.from.to_string(), "to": a.to.to_string(), "value": "10000",
                "validAfter": "0", "validBefore": "1000", "nonce": a.nonce.to_string(),
            }
        });
        assert_eq!(payment(&good).unwrap(), p);
        for (path, value, want) in [
            (
                "/authorization/from",
                serde_json::json!("nope"),
                "authorization.from",
            ),
            (
                "/authorization/value",
                serde_json::json!("-1"),
                "authorization.value",
            ),
            (
                "/authorization/nonce",
                serde_json::json!("0x12"),
                "authorization.nonce",
            ),
            ("/signature", serde_json::json!("0x1234"), "2 bytes"),
        ] {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = value;
            let e = payment(&v).unwrap_err().to_string();
            assert!(e.contains(want), "{path}: `{e}`");
        }
    }

    #[test]
    fn half_n_is_the_curve_order_halved() {
        let n = U256::from_be_slice(
            &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
                .unwrap(),
        );
        assert_eq!(HALF_N, n >> 1);
    }
}

#[cfg(test)]
mod recover_tests {
    use super::*;
    use alloy::signers::SignerSync;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn libsecp256k1_recovers_what_alloy_recovers(key in 1u64.., msg in any::<[u8; 32]>()) {
            let signer = alloy::signers::local::PrivateKeySigner::from_bytes(&B256::from(U256::from(key))).unwrap();
            let hash = B256::from(msg);
            let sig = signer.sign_hash_sync(&hash).unwrap();
            prop_assert_eq!(recover(&hash, &sig), Some(signer.address()));
            prop_assert_eq!(recover(&hash, &sig), sig.recover_address_from_prehash(&hash).ok());
        }
    }
}
