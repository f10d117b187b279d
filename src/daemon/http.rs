//! The daemon's HTTP face (axum): `/healthz` (alive), `/readyz` (every
//! source reachable and caught up, signer funded), `/status` (JSON),
//! `/metrics` (Prometheus), `POST /invoices` (a merchant hands in signed
//! terms) and `GET /invoices/{id}` (where an invoice is).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::intake::{take_signed, Taken};
use super::records::Stage;
use super::Ctx;
use crate::error::Classify;
use crate::metis::invoice::SignedInvoice;
use crate::metis::settle::SettleError;

#[derive(Clone)]
struct Web {
    ctx: Arc<Ctx>,
    metrics: PrometheusHandle,
}

/// Serves until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<Ctx>,
    metrics: PrometheusHandle,
    extra: Option<Router>,
    cancel: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(prometheus))
        .route("/invoices", post(submit_invoice))
        .route("/invoices/{id}", get(invoice))
        .with_state(Web { ctx, metrics });
    let app = match extra {
        Some(r) => app.merge(r),
        None => app,
    };
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
}

/// A source whose last good round is older than this is not caught up.
fn stale(ctx: &Ctx) -> Duration {
    Duration::from_millis(ctx.poll_ms * 10).max(Duration::from_secs(30))
}

async fn readyz(State(w): State<Web>) -> Response {
    let why = w.ctx.state.not_ready(&["bitcoin", "goat"], stale(&w.ctx));
    if why.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", why.join("\n")),
        )
            .into_response()
    }
}

async fn status(State(w): State<Web>) -> Response {
    let ctx = &w.ctx;
    let invoices = match ctx.records.invoices() {
        Ok(v) => v,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}\n")).into_response()
        }
    };
    let outbox = ctx
        .sink
        .sender()
        .and_then(|s| s.outbox().cloned())
        .map(|o| o.all().unwrap_or_default())
        .unwrap_or_default();
    let by_stage: serde_json::Map<String, serde_json::Value> = Stage::ALL
        .iter()
        .map(|s| {
            (
                s.name().to_string(),
                json!(invoices.iter().filter(|r| r.stage == *s).count()),
            )
        })
        .collect();
    let open: Vec<_> = invoices.iter().filter(|r| r.stage.is_open()).collect();
    let outbox_open: Vec<_> = outbox
        .iter()
        .filter(|e| e.state.is_open())
        .map(|e| {
            json!({
                "seq": e.seq, "what": e.what, "purpose": e.purpose, "state": e.state,
                "nonce": e.nonce, "gas_price": e.gas_price, "hashes": e.hashes,
            })
        })
        .collect();
    let mut outbox_counts = serde_json::Map::new();
    for s in crate::metis::outbox::TxState::ALL {
        outbox_counts.insert(
            s.name().into(),
            json!(outbox.iter().filter(|e| e.state == s).count()),
        );
    }
    let not_ready = ctx.state.not_ready(&["bitcoin", "goat"], stale(ctx));
    let body = json!({
        "ready": not_ready.is_empty(),
        "not_ready": not_ready,
        "chains": ctx.state.chains(),
        "goat_trust": goat_trust(ctx),
        "signer": ctx.state.signer_status().map(|(a, b)| json!({"address": a, "balance_wei": b})),
        "invoices": {"by_stage": by_stage, "open": open},
        "outbox": {"by_state": outbox_counts, "open": outbox_open},
    });
    Json(body).into_response()
}

/// How GOAT blocks are trusted, for `/status`: the mode, off-chain and on Metis.
fn goat_trust(ctx: &Ctx) -> serde_json::Value {
    match &ctx.config.goat.consensus {
        Some(c) => {
            let st = crate::goat::follow::ConsensusState::new(&*ctx.store)
                .status()
                .ok()
                .flatten();
            json!({
                "mode": "consensus",
                "summary": "GOAT blocks are final when GOAT's validators' CometBFT commits (secp256k1, more than 2/3 of the power) verify from the trusted header; on Metis GoatLightClient checks the same commits",
                "comet_rpc": c.rpc_url,
                "consensus": st,
            })
        }
        None => json!({
            "mode": "evm-only",
            "summary": "weaker: EVM headers from the checkpoint (links and hashes) at the configured finality; GOAT's consensus signatures are not verified, and on Metis the attestation committee is trusted",
        }),
    }
}

/// `POST /invoices` with a [`SignedInvoice`] (JSON): 201 when the daemon now
/// watches for its payment, 200 when it knew it, 400 with the reason when
/// the terms or the signature are refused, 409 when it is already settled or
/// known with other terms.
async fn submit_invoice(State(w): State<Web>, body: axum::body::Bytes) -> Response {
    let invoice: SignedInvoice = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("body: {e}")})),
            )
                .into_response()
        }
    };
    let id = invoice.id();
    match take_signed(&w.ctx, invoice).await {
        Ok(Taken::New) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "status": "watching"})),
        )
            .into_response(),
        Ok(Taken::Known) => {
            (StatusCode::OK, Json(json!({"id": id, "status": "known"}))).into_response()
        }
        Err(e @ (SettleError::AlreadySettled(_) | SettleError::Conflict(_))) => (
            StatusCode::CONFLICT,
            Json(json!({"id": id, "error": e.to_string()})),
        )
            .into_response(),
        Err(e) if e.class() == crate::error::ErrorClass::Transient => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"id": id, "error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"id": id, "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /invoices/{id}`: the daemon's record (stage, payment, settlement).
async fn invoice(State(w): State<Web>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<alloy::primitives::B256>() else {
        return (StatusCode::BAD_REQUEST, "not a 32-byte hex id\n").into_response();
    };
    match w.ctx.records.invoice(&id) {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "unknown invoice\n").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}\n")).into_response(),
    }
}

async fn prometheus(State(w): State<Web>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        w.metrics.render(),
    )
        .into_response()
}
