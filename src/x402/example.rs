//! `gmrelay x402 serve-example`: a paid HTTP resource in front of gmrelay's
//! facilitator, as a merchant would run one.
//!
//! `GET /paid` without a payment answers 402 with `PAYMENT-REQUIRED`
//! offering both rails: GOAT `exact` (EIP-3009, any nonce the client picks)
//! and Bitcoin `exact` (a fresh invoice signed by the merchant, its `ref`
//! in `extra.opReturn`). With a `PAYMENT-SIGNATURE` (or v1 `X-PAYMENT`) it
//! signs the invoice terms (GOAT: `ref` = the client's nonce), asks the
//! facilitator to `/settle`, and answers:
//! - 200 with the resource and `PAYMENT-RESPONSE` once
//!   `PaymentSettlement.isSettled(id)` holds on Metis;
//! - 202 with `PAYMENT-RESPONSE` (`settlement_pending`) and `Retry-After`
//!   while the payment confirms: send the same header again;
//! - 409 when this payment was settled and unlocked already (a replay);
//! - 402 with the reason when the payment is refused; 400 when the header
//!   cannot be read.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, Context, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tracing::info;

use super::wire::{
    self, decode_payload, encode_header, PaymentRequired, Reason, Requirements, SettleResponse,
};
use crate::btc::network::BtcNetwork;
use crate::config::Config;
use crate::metis::bindings::PaymentSettlement;
use crate::metis::invoice::{SignedInvoice, Terms};
use crate::rail::Rail;

/// The paid path.
pub const PAID_PATH: &str = "/paid";

/// What the example sells, and how it reaches the facilitator and Metis.
pub struct Example {
    merchant: PrivateKeySigner,
    facilitator: String,
    http: reqwest::Client,
    metis: DynProvider,
    metis_chain_id: u64,
    settlement: Address,
    goat: Option<Requirements>,
    btc: Option<(BtcNetwork, String, bitcoin::ScriptBuf, u64)>,
    max_timeout: u64,
    resource_url: String,
    unlocked: Mutex<HashSet<B256>>,
}

impl Example {
    /// Builds it from the settings: `[x402.example]`, the GOAT token's
    /// EIP-712 name and version (read from GOAT), the Metis deployment.
    pub async fn new(config: &Config, resource_url: String) -> Result<Example> {
        let e = &config.x402.example;
        let merchant = crate::app::signer_from(
            e.merchant_key_file.as_deref(),
            &e.merchant_key_env,
            "x402.example.merchant_key",
        )?;
        let facilitator = match &e.facilitator_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!(
                "http://{}",
                config.run.http.as_deref().ok_or_else(|| anyhow!(
                    "x402.example.facilitator_url is unset and so is run.http: where is the facilitator?"
                ))?
            ),
        };
        let (contracts, _) = crate::app::metis_contracts(config)?;
        let metis = crate::metis::sink::provider(&config.metis_rpc_url())?;
        let goat = match &e.goat_pay_to {
            None => None,
            Some(pay_to) => {
                let asset: Address = match &e.goat_asset {
                    Some(a) => a.parse().expect("validated"),
                    None => config
                        .goat
                        .tokens
                        .first()
                        .ok_or_else(|| {
                            anyhow!("x402.example.goat_asset is unset and goat.tokens is empty")
                        })?
                        .parse()
                        .map_err(|_| anyhow!("goat.tokens[0] is not an address"))?,
                };
                let provider = crate::metis::sink::provider(&config.goat_rpc_url())?;
                let token = super::evm::IEip3009::new(asset, &provider);
                let name = token.name().call().await.with_context(|| {
                    format!("name() of GOAT token {asset} at {}", config.goat_rpc_url())
                })?;
                let version = token.version().call().await.with_context(|| {
                    format!("version() of GOAT token {asset} (an EIP-3009 token has one)")
                })?;
                Some(serde_json::from_value(json!({
                    "scheme": "exact",
                    "network": format!("eip155:{}", config.goat.chain_id),
                    "amount": e.goat_amount,
                    "asset": asset.to_string(),
                    "payTo": pay_to.parse::<Address>().expect("validated").to_string(),
                    "maxTimeoutSeconds": e.max_timeout_secs,
                    "extra": {"name": name, "version": version},
                }))?)
            }
        };
        let btc = match &e.btc_pay_to {
            None => None,
            Some(a) => {
                let network = config.btc.network;
                let script = crate::app::parse_script(a, network)
                    .with_context(|| format!("x402.example.btc_pay_to `{a}`"))?;
                Some((network, a.clone(), script, e.btc_amount_sat))
            }
        };
        if goat.is_none() && btc.is_none() {
            return Err(anyhow!(
                "nothing to sell: set x402.example.goat_pay_to and/or x402.example.btc_pay_to"
            ));
        }
        Ok(Example {
            merchant,
            facilitator,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(config.x402.settle_timeout_secs + 30))
                .build()?,
            metis,
            metis_chain_id: config.metis.chain_id,
            settlement: contracts.payment_settlement,
            goat,
            btc,
            max_timeout: e.max_timeout_secs,
            resource_url,
            unlocked: Mutex::new(HashSet::new()),
        })
    }

    fn sign(&self, terms: Terms) -> Result<SignedInvoice> {
        Ok(SignedInvoice::sign(
            terms,
            &self.merchant,
            self.metis_chain_id,
            self.settlement,
        )?)
    }

    /// The offers of a 402: GOAT as configured; Bitcoin with a fresh invoice.
    fn offers(&self) -> Result<Vec<Requirements>> {
        let mut accepts = Vec::new();
        if let Some(g) = &self.goat {
            accepts.push(g.clone());
        }
        if let Some((network, address, script, amount)) = &self.btc {
            let now = crate::daemon::now_ms() / 1000;
            let terms = Terms {
                merchant: self.merchant.address(),
                reference: crate::metis::invoice::random_ref()?,
                rail: Rail::Btc,
                payee: Bytes::from(script.to_bytes()),
                asset: Address::ZERO,
                amount: U256::from(*amount),
                expiry: now + self.max_timeout,
                service: Address::ZERO,
                service_id: B256::ZERO,
            };
            let reference = terms.reference;
            let invoice = self.sign(terms)?;
            accepts.push(serde_json::from_value(json!({
                "scheme": "exact",
                "network": network.caip2(),
                "amount": amount.to_string(),
                "asset": super::btc::asset(*network),
                "payTo": address,
                "maxTimeoutSeconds": self.max_timeout,
                "extra": {
                    "opReturn": hex::encode(reference),
                    "invoiceId": invoice.id(),
                    "gmrelay": {"invoice": invoice},
                },
            }))?);
        }
        Ok(accepts)
    }

    fn payment_required(&self, error: Option<String>) -> Response {
        let offers = match self.offers() {
            Ok(o) => o,
            Err(e) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response()
            }
        };
        let pr = PaymentRequired {
            x402_version: x402_types::proto::v2::X402Version2,
            error,
            resource: Some(wire::ResourceInfo {
                url: self.resource_url.clone(),
                description: Some("gmrelay example: a resource paid on GOAT or Bitcoin, settled on Metis by proof".into()),
                mime_type: Some("application/json".into()),
            }),
            accepts: offers,
            extensions: Default::default(),
        };
        let mut r = (StatusCode::PAYMENT_REQUIRED, axum::Json(&pr)).into_response();
        if let Ok(v) = encode_header(&pr).parse() {
            r.headers_mut().insert(wire::PAYMENT_REQUIRED, v);
        }
        r
    }

    /// The requirements a paid request is settled under, with the invoice.
    fn requirements_for(&self, payload: &wire::Payload) -> Result<Requirements, String> {
        let accepted = &payload.accepted;
        if let Some(g) = self.goat.as_ref().filter(|g| g.network == accepted.network) {
            let same = g.scheme == accepted.scheme
                && g.amount == accepted.amount
                && g.asset.eq_ignore_ascii_case(&accepted.asset)
                && g.pay_to.eq_ignore_ascii_case(&accepted.pay_to);
            if !same {
                return Err("the accepted GOAT offer is not this resource's (scheme, amount, asset or payTo differ)".into());
            }
            let p = super::evm::payment(&payload.payload).map_err(|e| e.to_string())?;
            let a = &p.authorization;
            let terms = Terms {
                merchant: self.merchant.address(),
                reference: a.nonce,
                rail: Rail::Goat,
                payee: Bytes::copy_from_slice(a.to.as_slice()),
                asset: g.asset.parse().map_err(|_| "asset".to_string())?,
                amount: super::evm::parse_uint(&g.amount).unwrap_or_default(),
                expiry: u64::try_from(a.validBefore).unwrap_or(u64::MAX),
                service: Address::ZERO,
                service_id: B256::ZERO,
            };
            let invoice = self.sign(terms).map_err(|e| format!("{e:#}"))?;
            let mut req = g.clone();
            let mut extra = req.extra.take().unwrap_or_else(|| json!({}));
            extra["gmrelay"] = json!({"invoice": invoice});
            req.extra = Some(extra);
            return Ok(req);
        }
        if let Some((network, address, _, amount)) = &self.btc {
            if accepted.network.to_string() == network.caip2() {
                let invoice = super::invoice_in(accepted.extra.as_ref())
                    .map_err(|e| e.to_string())?
                    .ok_or("the accepted Bitcoin offer carries no invoice")?;
                invoice
                    .verify(self.metis_chain_id, self.settlement)
                    .map_err(|e| e.to_string())?;
                if invoice.terms.merchant != self.merchant.address()
                    || accepted.pay_to != *address
                    || accepted.amount != amount.to_string()
                {
                    return Err("the accepted Bitcoin offer is not one this resource made".into());
                }
                return Ok(accepted.clone());
            }
        }
        Err(format!("network {} is not offered here", accepted.network))
    }

    async fn is_settled(&self, id: B256) -> bool {
        PaymentSettlement::new(self.settlement, &self.metis)
            .isSettled(id)
            .call()
            .await
            .unwrap_or(false)
    }
}

fn json_response(status: StatusCode, body: Value, settle: Option<&SettleResponse>) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Some(s) = settle {
        if let Ok(v) = encode_header(s).parse() {
            r.headers_mut().insert(wire::PAYMENT_RESPONSE, v);
        }
    }
    r
}

async fn paid(State(ex): State<Arc<Example>>, headers: HeaderMap) -> Response {
    let header = headers
        .get(wire::PAYMENT_SIGNATURE)
        .map(|v| (wire::PAYMENT_SIGNATURE, v))
        .or_else(|| headers.get(wire::X_PAYMENT).map(|v| (wire::X_PAYMENT, v)));
    let Some((name, value)) = header else {
        return ex.payment_required(None);
    };
    let Ok(text) = value.to_str() else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("{name}: not ASCII")}),
            None,
        );
    };
    let payload = match decode_payload(name, text) {
        Ok(p) => p,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": e.to_string()}),
                None,
            )
        }
    };
    let requirements = match ex.requirements_for(&payload) {
        Ok(r) => r,
        Err(why) => return ex.payment_required(Some(why)),
    };
    // The invoice this resource signed: only its settlement unlocks it.
    let expected = super::invoice_in(requirements.extra.as_ref())
        .ok()
        .flatten()
        .map(|i| i.id());
    let body = json!({
        "x402Version": 2,
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    });
    let settle: SettleResponse = match ex
        .http
        .post(format!("{}/settle", ex.facilitator))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => match r.json().await {
            Ok(s) => s,
            Err(e) => {
                return json_response(
                    StatusCode::BAD_GATEWAY,
                    json!({"error": format!("facilitator: {e}")}),
                    None,
                )
            }
        },
        Err(e) => {
            return json_response(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("facilitator {}: {e}", ex.facilitator)}),
                None,
            )
        }
    };
    let gm = settle
        .extensions
        .as_ref()
        .and_then(|e| e.get("gmrelay"))
        .cloned()
        .unwrap_or(Value::Null);
    let id: Option<B256> = gm["invoiceId"].as_str().and_then(|s| s.parse().ok());
    if settle.success {
        let Some(id) = id.filter(|i| Some(*i) == expected) else {
            return json_response(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("the facilitator named invoice {id:?}, not this resource's {expected:?}")}),
                None,
            );
        };
        if !ex.is_settled(id).await {
            return json_response(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("the facilitator says settled, PaymentSettlement.isSettled({id}) says no")}),
                Some(&settle),
            );
        }
        if !ex.unlocked.lock().expect("lock").insert(id) {
            return json_response(
                StatusCode::CONFLICT,
                json!({"error": format!("invoice {id} unlocked this resource already")}),
                None,
            );
        }
        info!(invoice = %id, network = %settle.network, transaction = %settle.transaction, "x402: paid, settled on Metis, resource served");
        return json_response(
            StatusCode::OK,
            json!({
                "resource": "the paid content: 42",
                "invoiceId": id,
                "network": settle.network,
                "transaction": settle.transaction,
                "metisTransaction": gm["metisTransaction"],
            }),
            Some(&settle),
        );
    }
    let reason = settle.error_reason.clone().unwrap_or_default();
    if reason == Reason::SettlementPending.code() {
        let mut r = json_response(
            StatusCode::ACCEPTED,
            json!({"status": "pending", "message": settle.error_message, "invoiceId": id,
                   "retryAfterSeconds": 1}),
            Some(&settle),
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    }
    if reason == Reason::InvalidTransactionState.code()
        && settle
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("reported already"))
    {
        return json_response(
            StatusCode::CONFLICT,
            json!({"error": reason, "message": settle.error_message}),
            Some(&settle),
        );
    }
    ex.payment_required(Some(format!(
        "{reason}: {}",
        settle.error_message.unwrap_or_default()
    )))
}

/// Serves until SIGINT/SIGTERM; prints the paid URL first.
pub async fn serve(config: &Config, listen: Option<SocketAddr>) -> Result<()> {
    let addr: SocketAddr = match listen {
        Some(a) => a,
        None => config.x402.example.listen.parse().expect("validated"),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (x402.example.listen / --http)"))?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}{PAID_PATH}");
    let ex = Arc::new(Example::new(config, url.clone()).await?);
    println!("paid resource {url} (facilitator {})", ex.facilitator);
    let app = Router::new()
        .route(PAID_PATH, get(paid))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(ex);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
