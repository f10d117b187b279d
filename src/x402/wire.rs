//! x402 messages on the wire (v2, with v1 shapes accepted), as the npm SDK
//! `@x402/*` 2.27.0 sends them: the protocol types come from the
//! `x402-types` crate; the facilitator's answers and the error codes the
//! spec names are here. Headers carry base64 JSON, at most [`MAX_HEADER`]
//! bytes.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use x402_types::proto::v2;

/// `PaymentRequirements` (v2): scheme, network (CAIP-2), amount, asset, payTo,
/// maxTimeoutSeconds, extra.
pub type Requirements = v2::PaymentRequirements;
/// `PaymentPayload` (v2): what the client signed, with the requirements it accepted.
pub type Payload = v2::PaymentPayload<Requirements, Value>;
/// The 402 answer: `PaymentRequired` (v2).
pub type PaymentRequired = v2::PaymentRequired<Requirements>;
/// `resource` of a 402 or a payload.
pub type ResourceInfo = v2::ResourceInfo;

/// Header of a 402 (base64 JSON [`PaymentRequired`]).
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// Header of the client's retry (base64 JSON [`Payload`]).
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// Header of the result (base64 JSON [`SettleResponse`]).
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// v1's retry header.
pub const X_PAYMENT: &str = "X-PAYMENT";
/// v1's result header.
pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
/// The largest header (or facilitator request body) accepted, bytes.
pub const MAX_HEADER: usize = 16 * 1024;

/// Why a payment is refused: the codes the x402 spec names, and gmrelay's
/// own for the Bitcoin scheme and its invoices (clients treat all as opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The payer's balance is below the amount.
    InsufficientFunds,
    /// The EIP-712 signature does not recover the authorization's `from`.
    InvalidSignature,
    /// `validAfter` is in the future.
    ValidAfter,
    /// `validBefore` has passed, or is too close to settle in time.
    ValidBefore,
    /// The authorized value is not the required amount.
    ValueMismatch,
    /// The authorization pays someone other than `payTo`.
    RecipientMismatch,
    /// A network this facilitator does not settle.
    InvalidNetwork,
    /// The payload is malformed.
    InvalidPayload,
    /// The requirements are malformed or name an asset not accepted.
    InvalidRequirements,
    /// The payload's scheme differs from the requirements'.
    InvalidScheme,
    /// A scheme this facilitator does not settle.
    UnsupportedScheme,
    /// An x402 version other than 1 or 2.
    InvalidVersion,
    /// On-chain state refuses it: authorization used or failing, or the
    /// payment was settled and reported already.
    InvalidTransactionState,
    /// A Bitcoin payment transaction that does not pay the invoice, or that
    /// the node refuses.
    InvalidBtcTransaction,
    /// gmrelay invoice terms that do not match the payment or are not signed.
    InvalidInvoice,
    /// Paid, not settled on Metis yet (Bitcoin confirmations; a slow Metis):
    /// retry with the same payload.
    SettlementPending,
    /// A failure while verifying (a node unreachable…).
    UnexpectedVerify,
    /// A failure while settling.
    UnexpectedSettle,
}

impl Reason {
    /// The code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InsufficientFunds => "insufficient_funds",
            Reason::InvalidSignature => "invalid_exact_evm_payload_signature",
            Reason::ValidAfter => "invalid_exact_evm_payload_authorization_valid_after",
            Reason::ValidBefore => "invalid_exact_evm_payload_authorization_valid_before",
            Reason::ValueMismatch => "invalid_exact_evm_payload_authorization_value_mismatch",
            Reason::RecipientMismatch => "invalid_exact_evm_payload_recipient_mismatch",
            Reason::InvalidNetwork => "invalid_network",
            Reason::InvalidPayload => "invalid_payload",
            Reason::InvalidRequirements => "invalid_payment_requirements",
            Reason::InvalidScheme => "invalid_scheme",
            Reason::UnsupportedScheme => "unsupported_scheme",
            Reason::InvalidVersion => "invalid_x402_version",
            Reason::InvalidTransactionState => "invalid_transaction_state",
            Reason::InvalidBtcTransaction => "invalid_exact_bip122_payload_transaction",
            Reason::InvalidInvoice => "invalid_gmrelay_invoice",
            Reason::SettlementPending => "settlement_pending",
            Reason::UnexpectedVerify => "unexpected_verify_error",
            Reason::UnexpectedSettle => "unexpected_settle_error",
        }
    }
}

/// A refusal: its code and what exactly is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {message}", reason.code())]
pub struct Problem {
    /// The code.
    pub reason: Reason,
    /// What, naming the field.
    pub message: String,
}

impl From<WireError> for Problem {
    fn from(e: WireError) -> Problem {
        let reason = match e {
            WireError::Version { .. } => Reason::InvalidVersion,
            _ => Reason::InvalidPayload,
        };
        Problem::new(reason, e.to_string())
    }
}

impl Problem {
    /// A refusal with `reason`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// `POST /verify` and `POST /settle` bodies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    /// 1 or 2.
    pub x402_version: u8,
    /// The client's payload.
    pub payment_payload: Payload,
    /// What the resource server asks.
    pub payment_requirements: Requirements,
}

/// `POST /verify`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether `/settle` would go ahead.
    pub is_valid: bool,
    /// The code, when not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// What is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// Who pays (the authorization's `from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

impl VerifyResponse {
    /// Valid, paid by `payer`.
    pub fn valid(payer: Option<String>) -> Self {
        VerifyResponse {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer,
        }
    }
    /// Refused.
    pub fn invalid(p: &Problem, payer: Option<String>) -> Self {
        VerifyResponse {
            is_valid: false,
            invalid_reason: Some(p.reason.code().into()),
            invalid_message: Some(p.message.clone()),
            payer,
        }
    }
}

/// `POST /settle`'s answer (also the `PAYMENT-RESPONSE` header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Settled (on Metis, by proof).
    pub success: bool,
    /// The code, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// What is wrong or awaited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Who paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The payment transaction on the paying chain (GOAT hash or Bitcoin
    /// txid); empty when none was sent.
    pub transaction: String,
    /// The paying chain (CAIP-2).
    pub network: String,
    /// The amount paid, base units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// `{"gmrelay": {invoiceId, state, metisTransaction, …}}`: the Metis side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// Why a header or body could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Longer than [`MAX_HEADER`].
    #[error("{what}: {len} bytes, more than the {MAX_HEADER} accepted")]
    TooLarge {
        /// Which header.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Not base64.
    #[error("{what}: not base64 ({message})")]
    Base64 {
        /// Which header.
        what: &'static str,
        /// The decoder's complaint.
        message: String,
    },
    /// An x402 version other than 1 and 2.
    #[error("{what}: x402Version {version}: only 1 and 2 are spoken")]
    Version {
        /// Which header.
        what: &'static str,
        /// The version sent.
        version: u64,
    },
    /// Not the JSON expected.
    #[error("{what}: {message}")]
    Json {
        /// Which header.
        what: &'static str,
        /// serde's complaint (field and position).
        message: String,
    },
}

/// base64 (standard, padded) of `value`'s JSON.
pub fn encode_header<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("wire types serialize");
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// The JSON in a base64 header (standard or URL-safe alphabet, padded or not).
pub fn decode_header_json(what: &'static str, header: &str) -> Result<Value, WireError> {
    if header.len() > MAX_HEADER {
        return Err(WireError::TooLarge {
            what,
            len: header.len(),
        });
    }
    let h = header.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(h)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(h))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(h))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h))
        .map_err(|e| WireError::Base64 {
            what,
            message: e.to_string(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| WireError::Json {
        what,
        message: e.to_string(),
    })
}

/// A payload from a `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1) header.
pub fn decode_payload(what: &'static str, header: &str) -> Result<Payload, WireError> {
    let v = decode_header_json(what, header)?;
    payload_from_json(what, v, None)
}

/// A payload from JSON: v2 as is; v1 (`{x402Version: 1, scheme, network,
/// payload}`) lifted to v2 with `accepted` taken from `v1_requirements`
/// (or built from the payload's scheme and network alone).
pub fn payload_from_json(
    what: &'static str,
    mut v: Value,
    v1_requirements: Option<&Requirements>,
) -> Result<Payload, WireError> {
    let json_err = |message: String| WireError::Json { what, message };
    let version = v
        .get("x402Version")
        .and_then(Value::as_u64)
        .ok_or_else(|| json_err("x402Version: missing or not a number".into()))?;
    match version {
        2 => {}
        1 => {
            let scheme = v.get("scheme").cloned().unwrap_or(Value::Null);
            let network = v
                .get("network")
                .and_then(Value::as_str)
                .map(network_from_v1)
                .unwrap_or_default();
            let accepted = match v1_requirements {
                Some(r) => serde_json::to_value(r).expect("requirements serialize"),
                None => serde_json::json!({
                    "scheme": scheme, "network": network, "amount": "0", "payTo": "",
                    "maxTimeoutSeconds": 0, "asset": "", "extra": null,
                }),
            };
            let obj = v
                .as_object_mut()
                .ok_or_else(|| json_err("not a JSON object".into()))?;
            obj.insert("x402Version".into(), 2.into());
            obj.insert("accepted".into(), accepted);
            obj.remove("scheme");
            obj.remove("network");
        }
        version => return Err(WireError::Version { what, version }),
    }
    typed(what, v)
}

/// `v` as `T`; an error names the field's path (`accepted.maxTimeoutSeconds`).
fn typed<T: serde::de::DeserializeOwned>(what: &'static str, v: Value) -> Result<T, WireError> {
    serde_path_to_error::deserialize(v).map_err(|e| WireError::Json {
        what,
        message: if e.path().to_string() == "." {
            e.inner().to_string()
        } else {
            format!("{}: {}", e.path(), e.inner())
        },
    })
}

/// v1 requirements (`maxAmountRequired`, plain network names) as v2.
pub fn requirements_from_json(what: &'static str, mut v: Value) -> Result<Requirements, WireError> {
    if let Some(obj) = v.as_object_mut() {
        if !obj.contains_key("amount") {
            if let Some(a) = obj.remove("maxAmountRequired") {
                obj.insert("amount".into(), a);
            }
        }
        if let Some(n) = obj.get("network").and_then(Value::as_str) {
            let n = network_from_v1(n);
            obj.insert("network".into(), n.into());
        }
        for v1_only in ["resource", "description", "mimeType", "outputSchema"] {
            obj.remove(v1_only);
        }
    }
    typed(what, v)
}

/// A facilitator request body, v1 or v2 shapes.
pub fn request_from_json(body: &[u8]) -> Result<FacilitatorRequest, WireError> {
    if body.len() > 4 * MAX_HEADER {
        return Err(WireError::TooLarge {
            what: "request body",
            len: body.len(),
        });
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::Json {
        what: "request body",
        message: e.to_string(),
    })?;
    let version = v
        .get("x402Version")
        .and_then(Value::as_u64)
        .or_else(|| {
            v.get("paymentPayload")
                .and_then(|p| p.get("x402Version"))
                .and_then(Value::as_u64)
        })
        .unwrap_or(2);
    let requirements = requirements_from_json(
        "paymentRequirements",
        v.get("paymentRequirements").cloned().unwrap_or(Value::Null),
    )?;
    let payload = payload_from_json(
        "paymentPayload",
        v.get("paymentPayload").cloned().unwrap_or(Value::Null),
        Some(&requirements),
    )?;
    Ok(FacilitatorRequest {
        x402_version: u8::try_from(version).unwrap_or(u8::MAX),
        payment_payload: payload,
        payment_requirements: requirements,
    })
}

/// v1 network names gmrelay settles, as CAIP-2 (others pass through).
pub fn network_from_v1(name: &str) -> String {
    match name {
        "goat" => "eip155:2345".into(),
        "goat-testnet3" => "eip155:48816".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock_payload() -> Value {
        // The shape @x402/fetch 2.27.0 sends for the EVM exact scheme.
        serde_json::json!({
            "x402Version": 2,
            "resource": {"url": "http://127.0.0.1:4021/paid", "description": "d", "mimeType": "application/json"},
            "accepted": {
                "scheme": "exact", "network": "eip155:2345", "amount": "10000",
                "asset": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                "maxTimeoutSeconds": 600, "extra": {"name": "USD Coin", "version": "2"}
            },
            "payload": {
                "signature": "0x00",
                "authorization": {"from": "0x0000000000000000000000000000000000000001",
                    "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "value": "10000",
                    "validAfter": "0", "validBefore": "99999999999", "nonce": "0x11"}
            }
        })
    }

    #[test]
    fn a_stock_payload_round_trips_through_the_header() {
        let v = stock_payload();
        let header = encode_header(&v);
        let p = decode_payload(PAYMENT_SIGNATURE, &header).unwrap();
        assert_eq!(p.accepted.network.to_string(), "eip155:2345");
        assert_eq!(p.accepted.amount, "10000");
        assert_eq!(p.payload["authorization"]["value"], "10000");
        let again = serde_json::to_value(&p).unwrap();
        assert_eq!(again["accepted"], v["accepted"]);
        assert_eq!(again["resource"]["url"], v["resource"]["url"]);
    }

    #[test]
    fn bad_headers_are_refused_with_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("%%%", "not base64"),
            (&encode_header(&"just a string"), "x402Version"),
            (
                &encode_header(&serde_json::json!({"x402Version": 3})),
                "only 1 and 2",
            ),
            (
                &encode_header(&serde_json::json!({"x402Version": 2, "payload": {}})),
                "accepted",
            ),
        ];
        for (header, want) in cases {
            let e = decode_payload(PAYMENT_SIGNATURE, header)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{header}: `{e}` lacks `{want}`");
        }
        let big = "A".repeat(MAX_HEADER + 1);
        assert!(matches!(
            decode_payload(PAYMENT_SIGNATURE, &big),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn v1_shapes_are_lifted_to_v2() {
        let body = serde_json::json!({
            "x402Version": 1,
            "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "goat",
                "payload": {"signature": "0x", "authorization": {}}},
            "paymentRequirements": {"scheme": "exact", "network": "goat", "maxAmountRequired": "5",
                "resource": "http://x/y", "description": "", "mimeType": "", "payTo": "0x00",
                "maxTimeoutSeconds": 60, "asset": "0x00", "extra": null}
        });
        let r = request_from_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(r.x402_version, 1);
        assert_eq!(r.payment_requirements.amount, "5");
        assert_eq!(r.payment_requirements.network.to_string(), "eip155:2345");
        assert_eq!(r.payment_payload.accepted.amount, "5");
    }

    #[test]
    fn every_reason_has_its_own_code() {
        use std::collections::HashSet;
        let all = [
            Reason::InsufficientFunds,
            Reason::InvalidSignature,
            Reason::ValidAfter,
            Reason::ValidBefore,
            Reason::ValueMismatch,
            Reason::RecipientMismatch,
            Reason::InvalidNetwork,
            Reason::InvalidPayload,
            Reason::InvalidRequirements,
            Reason::InvalidScheme,
            Reason::UnsupportedScheme,
            Reason::InvalidVersion,
            Reason::InvalidTransactionState,
            Reason::InvalidBtcTransaction,
            Reason::InvalidInvoice,
            Reason::SettlementPending,
            Reason::UnexpectedVerify,
            Reason::UnexpectedSettle,
        ];
        let codes: HashSet<_> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
    }
}
