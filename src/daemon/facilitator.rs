//! The x402 facilitator `gmrelay run` serves when `[x402] enabled`:
//! `GET /supported`, `POST /verify`, `POST /settle`, spoken as the npm SDK
//! `@x402/*` 2.27.0 speaks them.
//!
//! Settling is not a transfer alone: `/settle` submits the payment on its
//! chain (GOAT `transferWithAuthorization`, or the client's Bitcoin
//! transaction), hands its invoice to the daemon, which proves the payment
//! and settles the invoice on Metis, and answers `success` once
//! PaymentSettlement holds it settled (GOAT: within
//! `x402.settle_timeout_secs`; Bitcoin: after its confirmations).
//! Until then it answers `success: false, errorReason: "settlement_pending"`
//! and the same request may be sent again: it resumes, never pays or
//! settles twice. Once `success` has been answered, the payment is spent: a
//! replay gets `invalid_transaction_state`, so a resource unlocks once.
//!
//! The invoice: a resource server that knows gmrelay puts the merchant's
//! signed terms in `paymentRequirements.extra.gmrelay.invoice` (for GOAT
//! with the client's EIP-3009 nonce as `ref`); for a stock x402 server the
//! facilitator signs the terms itself as merchant of record
//! (`x402.invoice_key_file`, else the relayer key), `ref` = the nonce, so one
//! authorization settles one invoice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, Context};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::Router;
use bitcoin::Transaction;
use serde_json::{json, Value};
use tracing::info;

use super::intake::{take_signed, Taken};
use super::records::{Stage, X402Record};
use super::{now_ms, Ctx};
use crate::btc::network::BtcNetwork;
use crate::error::{Classify, ErrorClass};
use crate::metis::invoice::{SignedInvoice, Terms};
use crate::metis::settle::SettleError;
use crate::metis::sink::MetisSink;
use crate::rail::Rail;
use crate::x402::btc::{self as xbtc, BtcTerms};
use crate::x402::evm::{self, EvmPayment, EvmTerms};
use crate::x402::wire::{
    request_from_json, FacilitatorRequest, Problem, Reason, SettleResponse, VerifyResponse,
};

/// The longest-lived authorization taken in, seconds (stock clients sign
/// for `maxTimeoutSeconds`, minutes).
pub const MAX_AUTHORIZATION_SECS: u64 = 24 * 3600;
/// How often `/settle` looks at the invoice while it waits.
const WAIT_STEP: Duration = Duration::from_millis(100);
/// How long `/settle` waits for a Bitcoin settlement (confirmations take
/// minutes on a public network: the client polls).
const BTC_WAIT: Duration = Duration::from_secs(2);

/// A payment, read and typed (one per request, on the stack briefly).
#[allow(clippy::large_enum_variant)]
enum Kind {
    Goat(EvmTerms, EvmPayment),
    Btc(Box<BtcTerms>, Box<Transaction>),
}

/// The facilitator: the daemon's context plus a GOAT wallet.
pub struct Facilitator {
    ctx: Arc<Ctx>,
    goat: DynProvider,
    submitter: Address,
    invoice_key: PrivateKeySigner,
    goat_chain_id: u64,
    btc_network: BtcNetwork,
    tokens: Vec<Address>,
    payees: Vec<Address>,
    settle_timeout: Duration,
    min_validity: u64,
    domains: Mutex<HashMap<Address, B256>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Serialises marking payments reported (one unlock per invoice).
    report_lock: tokio::sync::Mutex<()>,
    /// Serialises GOAT submissions (the submitter's nonce).
    submit_lock: tokio::sync::Mutex<()>,
}

fn now_secs() -> u64 {
    now_ms() / 1000
}

impl Facilitator {
    /// Builds it from the daemon's context: the GOAT submitter key
    /// (`x402.goat_key_file` / `x402.goat_key_env`) and the merchant-of-record
    /// key (`x402.invoice_key_file`, else the relayer key).
    pub async fn new(ctx: Arc<Ctx>) -> anyhow::Result<Facilitator> {
        let x = &ctx.config.x402;
        let submitter_key =
            crate::app::signer_from(x.goat_key_file.as_deref(), &x.goat_key_env, "x402.goat_key")?;
        let invoice_key = match &x.invoice_key_file {
            Some(f) => crate::app::signer_from(Some(f), "", "x402.invoice_key")?,
            None => crate::app::relayer_key(&ctx.config)?,
        };
        let url = ctx.config.goat_rpc_url();
        let submitter = submitter_key.address();
        let goat = ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(submitter_key))
            .connect(&url)
            .await
            .with_context(|| format!("GOAT node at {url} (goat.rpc_url) for the x402 facilitator"))?
            .erased();
        let tokens = ctx
            .config
            .goat
            .tokens
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| anyhow!("goat.tokens: `{t}` is not an address"))
            })
            .collect::<anyhow::Result<Vec<Address>>>()?;
        let payees = ctx
            .config
            .goat
            .payees
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| anyhow!("goat.payees: `{t}` is not an address"))
            })
            .collect::<anyhow::Result<Vec<Address>>>()?;
        info!(%submitter, merchant_of_record = %invoice_key.address(), "x402 facilitator: /supported /verify /settle");
        Ok(Facilitator {
            goat_chain_id: ctx.config.goat.chain_id,
            btc_network: ctx.config.btc.network,
            settle_timeout: Duration::from_secs(x.settle_timeout_secs),
            min_validity: x.min_validity_secs,
            ctx,
            goat,
            submitter,
            invoice_key,
            tokens,
            payees,
            domains: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            report_lock: tokio::sync::Mutex::new(()),
            submit_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The networks: GOAT `eip155:<goat.chain_id>` and Bitcoin `bip122:…`.
    pub fn networks(&self) -> (String, String) {
        (
            format!("eip155:{}", self.goat_chain_id),
            self.btc_network.caip2(),
        )
    }

    /// `GET /supported`.
    pub fn supported(&self) -> Value {
        let (goat, btc) = self.networks();
        let mut kinds = vec![
            json!({"x402Version": 2, "scheme": "exact", "network": goat}),
            json!({"x402Version": 2, "scheme": "exact", "network": btc,
                   "extra": {"asset": xbtc::asset(self.btc_network), "settlement": "spv"}}),
        ];
        if self.goat_chain_id == 2345 {
            kinds.push(json!({"x402Version": 1, "scheme": "exact", "network": "goat"}));
        }
        json!({
            "kinds": kinds,
            "extensions": [],
            "signers": {"eip155:*": [self.submitter.to_string()]},
        })
    }

    fn parse(&self, req: &FacilitatorRequest) -> Result<Kind, Problem> {
        let p = &req.payment_payload;
        let r = &req.payment_requirements;
        if !(1..=2).contains(&req.x402_version) {
            return Err(Problem::new(
                Reason::InvalidVersion,
                format!("x402Version {}: 1 and 2 are spoken", req.x402_version),
            ));
        }
        if r.scheme != "exact" {
            return Err(Problem::new(
                Reason::UnsupportedScheme,
                format!("scheme `{}`: only `exact` is settled here", r.scheme),
            ));
        }
        if p.accepted.scheme != r.scheme {
            return Err(Problem::new(
                Reason::InvalidScheme,
                format!(
                    "the payload accepted scheme `{}`, the requirements ask `{}`",
                    p.accepted.scheme, r.scheme
                ),
            ));
        }
        let (goat, btc) = self.networks();
        let network = r.network.to_string();
        if p.accepted.network.to_string() != network && req.x402_version == 2 {
            return Err(Problem::new(
                Reason::InvalidNetwork,
                format!(
                    "the payload accepted network {}, the requirements ask {network}",
                    p.accepted.network
                ),
            ));
        }
        if network == goat {
            let t = evm::terms(r, self.goat_chain_id)?;
            if !self.tokens.contains(&t.asset) {
                return Err(Problem::new(
                    Reason::InvalidRequirements,
                    format!(
                        "asset {} is not a token this relayer settles (goat.tokens)",
                        t.asset
                    ),
                ));
            }
            Ok(Kind::Goat(t, evm::payment(&p.payload)?))
        } else if network == btc {
            let t = xbtc::terms(r, self.btc_network)?;
            Ok(Kind::Btc(Box::new(t), Box::new(xbtc::payment(&p.payload)?)))
        } else {
            Err(Problem::new(
                Reason::InvalidNetwork,
                format!("network {network}: this facilitator settles {goat} and {btc}"),
            ))
        }
    }

    fn key(&self, k: &Kind) -> String {
        let (goat, btc) = self.networks();
        match k {
            Kind::Goat(t, p) => format!(
                "{goat}/{}/{}/{}",
                t.asset, p.authorization.from, p.authorization.nonce
            )
            .to_lowercase(),
            Kind::Btc(t, _) => format!("{btc}/{}", t.invoice.id()),
        }
    }

    async fn domain_separator(&self, token: Address) -> Result<B256, Problem> {
        if let Some(d) = self.domains.lock().expect("lock").get(&token) {
            return Ok(*d);
        }
        let d = evm::domain_separator(&self.goat, token).await?;
        self.domains.lock().expect("lock").insert(token, d);
        Ok(d)
    }

    /// Every check `/verify` makes; returns the payer.
    async fn check(&self, k: &Kind) -> Result<Option<String>, Problem> {
        match k {
            Kind::Goat(t, p) => {
                evm::check_fields(t, p, now_secs(), self.min_validity)?;
                self.check_goat_policy(t, p)?;
                let domain = self.domain_separator(t.asset).await?;
                evm::check_on_chain(&self.goat, t, p, domain, self.submitter).await?;
                Ok(Some(p.authorization.from.to_string()))
            }
            Kind::Btc(t, tx) => {
                xbtc::check(t, tx)?;
                let sink = &self.ctx.sink;
                t.invoice
                    .verify(sink.chain_id(), sink.settlement_address())
                    .map_err(|e| Problem::new(Reason::InvalidInvoice, e.to_string()))?;
                if t.invoice.terms.expiry < now_secs() {
                    return Err(Problem::new(
                        Reason::InvalidInvoice,
                        format!(
                            "invoice {} expired at {}",
                            t.invoice.id(),
                            t.invoice.terms.expiry
                        ),
                    ));
                }
                self.mempool_accepts(tx).await?;
                Ok(None)
            }
        }
    }

    /// What this relayer settles at all: not a payer paying itself, a payee
    /// of `goat.payees` when that is set, an authorization valid at most
    /// [`MAX_AUTHORIZATION_SECS`] (its invoice expires with it).
    fn check_goat_policy(&self, t: &EvmTerms, p: &EvmPayment) -> Result<(), Problem> {
        let a = &p.authorization;
        if a.from == a.to {
            return Err(Problem::new(
                Reason::RecipientMismatch,
                format!("authorization.from {} pays itself", a.from),
            ));
        }
        if !self.payees.is_empty() && !self.payees.contains(&t.pay_to) {
            return Err(Problem::new(
                Reason::InvalidRequirements,
                format!(
                    "payTo {} is not a payee this relayer settles for (goat.payees)",
                    t.pay_to
                ),
            ));
        }
        let horizon = alloy::primitives::U256::from(now_secs() + MAX_AUTHORIZATION_SECS);
        if a.validBefore > horizon {
            return Err(Problem::new(
                Reason::ValidBefore,
                format!(
                    "authorization.validBefore {} is more than {MAX_AUTHORIZATION_SECS} s away",
                    a.validBefore
                ),
            ));
        }
        Ok(())
    }

    async fn mempool_accepts(&self, tx: &Transaction) -> Result<(), Problem> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let v = self
            .ctx
            .btc
            .call("testmempoolaccept", json!([[hex]]))
            .await
            .map_err(|e| Problem::new(Reason::UnexpectedVerify, format!("bitcoind: {e}")))?;
        let r = &v[0];
        if r["allowed"].as_bool() == Some(true) {
            return Ok(());
        }
        let why = r["reject-reason"].as_str().unwrap_or("refused");
        if why.contains("already") {
            return Ok(()); // in the mempool or the chain already: fine
        }
        Err(Problem::new(
            Reason::InvalidBtcTransaction,
            format!("bitcoind refuses transaction {}: {why}", tx.compute_txid()),
        ))
    }

    /// `POST /verify`.
    pub async fn verify(&self, req: &FacilitatorRequest) -> VerifyResponse {
        let kind = match self.parse(req) {
            Ok(k) => k,
            Err(p) => return VerifyResponse::invalid(&p, None),
        };
        let key = self.key(&kind);
        match self.ctx.records.x402(&key) {
            Ok(Some(r)) if r.reported => {
                return VerifyResponse::invalid(&spent(&r), r.payer.clone())
            }
            Ok(Some(r)) => {
                // Being settled: a retry, for the same requirements only.
                return match check_binding(&r, req) {
                    Ok(()) => VerifyResponse::valid(r.payer),
                    Err(p) => VerifyResponse::invalid(&p, r.payer),
                };
            }
            Ok(None) => {}
            Err(e) => {
                return VerifyResponse::invalid(
                    &Problem::new(Reason::UnexpectedVerify, format!("store: {e}")),
                    None,
                )
            }
        }
        match self.check(&kind).await {
            Ok(payer) => VerifyResponse::valid(payer),
            Err(p) => VerifyResponse::invalid(&p, payer_of(&kind)),
        }
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("lock");
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }

    /// The invoice a payment settles: the merchant's, from the requirements,
    /// or (GOAT, none given) one signed as merchant of record.
    fn invoice_for(&self, k: &Kind, req: &FacilitatorRequest) -> Result<SignedInvoice, Problem> {
        let bad = |m: String| Problem::new(Reason::InvalidInvoice, m);
        match k {
            Kind::Btc(t, _) => Ok(t.invoice.clone()),
            Kind::Goat(t, p) => {
                let a = &p.authorization;
                let given = crate::x402::invoice_in(req.payment_requirements.extra.as_ref())?;
                let invoice = match given {
                    Some(i) => i,
                    None => {
                        let terms = Terms {
                            merchant: self.invoice_key.address(),
                            reference: a.nonce,
                            rail: Rail::Goat,
                            payee: Bytes::copy_from_slice(t.pay_to.as_slice()),
                            asset: t.asset,
                            amount: t.amount,
                            expiry: u64::try_from(a.validBefore).unwrap_or(u64::MAX),
                            service: Address::ZERO,
                            service_id: B256::ZERO,
                        };
                        let sink = &self.ctx.sink;
                        SignedInvoice::sign(
                            terms,
                            &self.invoice_key,
                            sink.chain_id(),
                            sink.settlement_address(),
                        )
                        .map_err(|e| Problem::new(Reason::UnexpectedSettle, e.to_string()))?
                    }
                };
                let i = &invoice.terms;
                if i.rail != Rail::Goat
                    || i.reference != a.nonce
                    || i.payee.as_ref() != a.to.as_slice()
                    || i.asset != t.asset
                    || i.amount > a.value
                {
                    return Err(bad(format!(
                        "invoice {}: its terms (rail, ref = the authorization nonce, payee, asset, amount ≤ value) do not match the payment",
                        invoice.id()
                    )));
                }
                Ok(invoice)
            }
        }
    }

    /// `POST /settle`.
    pub async fn settle(&self, req: &FacilitatorRequest) -> SettleResponse {
        let network = req.payment_requirements.network.to_string();
        let kind = match self.parse(req) {
            Ok(k) => k,
            Err(p) => return failure(&p, &network, None, None),
        };
        let key = self.key(&kind);
        let lock = self.lock_for(&key);
        // Another request works on this payment: say so rather than queue.
        let Ok(_held) = lock.try_lock() else {
            let p = Problem::new(
                Reason::SettlementPending,
                "this payment is being settled by another request: send it again shortly",
            );
            return failure(&p, &network, payer_of(&kind), None);
        };
        let mut record = match self.ctx.records.x402(&key) {
            Ok(Some(r)) if r.reported => {
                return failure(&spent(&r), &network, r.payer.clone(), r.transaction.clone())
            }
            Ok(Some(r)) => {
                if let Err(p) = check_binding(&r, req) {
                    return failure(&p, &network, r.payer.clone(), r.transaction.clone());
                }
                r
            }
            Ok(None) => match self.take_in(&kind, req, &key, &network).await {
                Ok(r) => r,
                Err(p) => return failure(&p, &network, payer_of(&kind), None),
            },
            Err(e) => {
                let p = Problem::new(Reason::UnexpectedSettle, format!("store: {e}"));
                return failure(&p, &network, None, None);
            }
        };
        if record.transaction.is_none() {
            if let Err(p) = self.submit(&kind, &mut record).await {
                let tx = record.transaction.clone();
                return failure(&p, &network, record.payer.clone(), tx);
            }
        }
        let wait = match kind {
            Kind::Goat(..) => self.settle_timeout,
            Kind::Btc(..) => {
                let _ = self.ctx.min_btc_confirmations().await;
                BTC_WAIT.min(self.settle_timeout)
            }
        };
        self.await_settlement(record, &network, wait).await
    }

    /// A new payment: checked, its invoice handed to the daemon, recorded.
    async fn take_in(
        &self,
        kind: &Kind,
        req: &FacilitatorRequest,
        key: &str,
        network: &str,
    ) -> Result<X402Record, Problem> {
        let payer = self.check(kind).await?;
        let invoice = self.invoice_for(kind, req)?;
        let id = invoice.id();
        let taken_already = |why: String| Problem::new(Reason::InvalidTransactionState, why);
        if let Some(other) = self
            .ctx
            .records
            .x402_reported(&id)
            .map_err(|e| Problem::new(Reason::UnexpectedSettle, format!("store: {e}")))?
        {
            return Err(taken_already(format!(
                "invoice {id} unlocked a resource already (payment {other})"
            )));
        }
        match take_signed(&self.ctx, invoice).await {
            Ok(Taken::New) => {}
            Ok(Taken::Known) => {
                let open = self
                    .ctx
                    .records
                    .invoice(&id)
                    .map_err(|e| Problem::new(Reason::UnexpectedSettle, format!("store: {e}")))?
                    .is_some_and(|r| r.stage.is_open());
                if !open {
                    return Err(taken_already(format!(
                        "invoice {id} is settled or closed already: a new payment with its ref settles nothing"
                    )));
                }
            }
            Err(e @ (SettleError::AlreadySettled(_) | SettleError::Conflict(_))) => {
                return Err(Problem::new(Reason::InvalidTransactionState, e.to_string()))
            }
            Err(e) if e.class() == ErrorClass::Transient => {
                return Err(Problem::new(Reason::UnexpectedSettle, e.to_string()))
            }
            Err(e) => return Err(Problem::new(Reason::InvalidInvoice, e.to_string())),
        }
        let record = X402Record {
            key: key.to_string(),
            network: network.to_string(),
            invoice_id: id,
            payer,
            amount: req.payment_requirements.amount.clone(),
            transaction: None,
            reported: false,
            binding: binding(req),
            created_ms: now_ms(),
        };
        self.ctx
            .records
            .save_x402(&record)
            .map_err(|e| Problem::new(Reason::UnexpectedSettle, format!("store: {e}")))?;
        info!(invoice = %id, key, "x402 payment taken in");
        Ok(record)
    }

    /// Sends the payment on its chain and records its transaction as soon as
    /// the node takes it (a retry then waits for it instead of sending
    /// again). GOAT: when the authorization turns out used already (someone
    /// else submitted it), there is nothing to send; the daemon finds the
    /// transfer by its nonce, and one invoice unlocks once whoever paid.
    async fn submit(&self, kind: &Kind, record: &mut X402Record) -> Result<(), Problem> {
        let save = |r: &X402Record| {
            self.ctx
                .records
                .save_x402(r)
                .map_err(|e| Problem::new(Reason::UnexpectedSettle, format!("store: {e}")))
        };
        match kind {
            Kind::Goat(t, p) => {
                let sent = {
                    let _one = self.submit_lock.lock().await;
                    evm::send(&self.goat, t, p).await
                };
                match sent {
                    Ok(hash) => {
                        record.transaction = Some(hash.to_string());
                        save(record)?;
                        evm::mined(&self.goat, hash, self.settle_timeout).await
                    }
                    Err(e) => {
                        let used = evm::IEip3009::new(t.asset, &self.goat)
                            .authorizationState(p.authorization.from, p.authorization.nonce)
                            .call()
                            .await
                            .map_err(|rpc| {
                                Problem::new(
                                    Reason::UnexpectedSettle,
                                    format!("{}; authorizationState: {rpc}", e.message),
                                )
                            })?;
                        if used {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    }
                }
            }
            Kind::Btc(_, tx) => {
                let hex = bitcoin::consensus::encode::serialize_hex(tx.as_ref());
                let txid = tx.compute_txid().to_string();
                match self.ctx.btc.call("sendrawtransaction", json!([hex])).await {
                    Ok(_) => {}
                    Err(e) if e.to_string().contains("already") => {}
                    Err(e) => {
                        return Err(Problem::new(
                            Reason::InvalidBtcTransaction,
                            format!("bitcoind refuses {txid}: {e}"),
                        ))
                    }
                }
                record.transaction = Some(txid);
                save(record)
            }
        }
    }

    async fn await_settlement(
        &self,
        mut record: X402Record,
        network: &str,
        wait: Duration,
    ) -> SettleResponse {
        let started = std::time::Instant::now();
        loop {
            let inv = match self.ctx.records.invoice(&record.invoice_id) {
                Ok(Some(i)) => i,
                found => {
                    let why = match found {
                        Err(e) => format!("store: {e}"),
                        _ => format!("invoice {} is not in the daemon's store", record.invoice_id),
                    };
                    let p = Problem::new(Reason::UnexpectedSettle, why);
                    let tx = record.transaction.clone();
                    return failure(&p, network, record.payer.clone(), tx);
                }
            };
            let tx = record
                .transaction
                .clone()
                .or_else(|| inv.payment.as_ref().map(|p| p.tx.clone()));
            let outcome = match inv.stage {
                Stage::Settled | Stage::SettledByOther => {
                    // One unlock per invoice, whichever payment reports first.
                    let _one = self.report_lock.lock().await;
                    let first = match self.ctx.records.x402_reported(&record.invoice_id) {
                        Ok(None) => Ok(()),
                        Ok(Some(other)) if other == record.key => Ok(()),
                        Ok(Some(other)) => Err(Problem::new(
                            Reason::InvalidTransactionState,
                            format!(
                                "invoice {} unlocked a resource already (payment {other})",
                                record.invoice_id
                            ),
                        )),
                        Err(e) => Err(Problem::new(
                            Reason::UnexpectedSettle,
                            format!("store: {e}"),
                        )),
                    };
                    record.reported = true;
                    record.transaction = tx.clone();
                    let saved = first.and_then(|()| {
                        self.ctx.records.report_x402(&record).map_err(|e| {
                            Problem::new(Reason::UnexpectedSettle, format!("store: {e}"))
                        })
                    });
                    if let Err(p) = saved {
                        // Fail closed: no success that a replay could repeat.
                        return failure(&p, network, record.payer.clone(), tx);
                    }
                    return SettleResponse {
                        success: true,
                        error_reason: None,
                        error_message: None,
                        payer: record.payer.clone(),
                        transaction: tx.unwrap_or_default(),
                        network: network.to_string(),
                        amount: Some(record.amount.clone()),
                        extensions: Some(self.extensions(&inv)),
                    };
                }
                Stage::Failed | Stage::Expired => (Reason::InvalidTransactionState, ""),
                _ if started.elapsed() >= wait => (
                    Reason::SettlementPending,
                    "paid; send the same payment again to resume: ",
                ),
                _ => {
                    tokio::time::sleep(WAIT_STEP).await;
                    continue;
                }
            };
            let p = Problem::new(
                outcome.0,
                format!(
                    "{}invoice {} is {} on Metis ({})",
                    outcome.1,
                    inv.id,
                    inv.stage.name(),
                    inv.detail.clone().unwrap_or_default()
                ),
            );
            let mut r = failure(&p, network, record.payer.clone(), tx);
            r.amount = Some(record.amount.clone());
            r.extensions = Some(self.extensions(&inv));
            return r;
        }
    }

    fn extensions(&self, inv: &super::records::InvoiceRecord) -> Value {
        let mut g = json!({
            "invoiceId": inv.id,
            "state": inv.stage.name(),
            "paymentSettlement": self.ctx.sink.settlement_address(),
            "metisChainId": self.ctx.sink.chain_id(),
        });
        if let Some(tx) = inv.settled_tx {
            g["metisTransaction"] = json!(tx);
        }
        if let Some(p) = &inv.payment {
            g["paymentBlock"] = json!(p.height);
            if inv.rail() == Rail::Btc {
                use crate::store::Store;
                if let Ok(Some((tip, _))) = self.ctx.store.btc_tip() {
                    g["confirmations"] = json!(u64::from(tip).saturating_sub(p.height) + 1);
                }
                if let Some(n) = self.ctx.min_btc_conf.get() {
                    g["requiredConfirmations"] = json!(n);
                }
            }
        }
        json!({ "gmrelay": g })
    }
}

/// What a payment is taken in for: payee, asset, amount (lowercase).
fn binding(req: &FacilitatorRequest) -> String {
    let r = &req.payment_requirements;
    format!("{}|{}|{}|{}", r.network, r.pay_to, r.asset, r.amount).to_lowercase()
}

/// A repeat of a payment taken in for other requirements is refused: the
/// payment binds the resource it was first presented for.
fn check_binding(r: &X402Record, req: &FacilitatorRequest) -> Result<(), Problem> {
    if !r.binding.is_empty() && r.binding != binding(req) {
        return Err(Problem::new(
            Reason::InvalidTransactionState,
            format!(
                "this payment was taken in for other requirements (invoice {}): it pays that resource only",
                r.invoice_id
            ),
        ));
    }
    Ok(())
}

fn payer_of(k: &Kind) -> Option<String> {
    match k {
        Kind::Goat(_, p) => Some(p.authorization.from.to_string()),
        Kind::Btc(..) => None,
    }
}

fn spent(r: &X402Record) -> Problem {
    Problem::new(
        Reason::InvalidTransactionState,
        format!(
            "this payment settled invoice {} and was reported already (transaction {}): a payment unlocks once",
            r.invoice_id,
            r.transaction.as_deref().unwrap_or("-")
        ),
    )
}

fn failure(
    p: &Problem,
    network: &str,
    payer: Option<String>,
    transaction: Option<String>,
) -> SettleResponse {
    SettleResponse {
        success: false,
        error_reason: Some(p.reason.code().into()),
        error_message: Some(p.message.clone()),
        payer,
        transaction: transaction.unwrap_or_default(),
        network: network.to_string(),
        amount: None,
        extensions: None,
    }
}

/// The routes, to merge into the daemon's HTTP router.
pub fn routes(f: Arc<Facilitator>) -> Router {
    Router::new()
        .route("/supported", get(supported))
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .with_state(f)
}

async fn supported(State(f): State<Arc<Facilitator>>) -> Response {
    Json(f.supported()).into_response()
}

fn unreadable(e: crate::x402::wire::WireError) -> Problem {
    Problem::from(e)
}

async fn verify(State(f): State<Arc<Facilitator>>, body: axum::body::Bytes) -> Response {
    let started = std::time::Instant::now();
    let r = match request_from_json(&body) {
        Ok(r) => f.verify(&r).await,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(VerifyResponse::invalid(&unreadable(e), None)),
            )
                .into_response()
        }
    };
    metrics::counter!("gmrelay_x402_requests_total", "op" => "verify",
        "result" => if r.is_valid { "valid" } else { "invalid" })
    .increment(1);
    metrics::histogram!("gmrelay_x402_seconds", "op" => "verify")
        .record(started.elapsed().as_secs_f64());
    Json(r).into_response()
}

async fn settle(State(f): State<Arc<Facilitator>>, body: axum::body::Bytes) -> Response {
    let started = std::time::Instant::now();
    let r = match request_from_json(&body) {
        Ok(r) => f.settle(&r).await,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(failure(&unreadable(e), "", None, None)),
            )
                .into_response()
        }
    };
    let result = if r.success {
        "settled"
    } else if r.error_reason.as_deref() == Some(Reason::SettlementPending.code()) {
        "pending"
    } else {
        "refused"
    };
    metrics::counter!("gmrelay_x402_requests_total", "op" => "settle", "result" => result)
        .increment(1);
    metrics::histogram!("gmrelay_x402_seconds", "op" => "settle")
        .record(started.elapsed().as_secs_f64());
    Json(r).into_response()
}
