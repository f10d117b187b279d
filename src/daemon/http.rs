//! The daemon's HTTP face (axum): `/healthz` (alive), `/readyz` (every
//! source reachable and caught up, signer funded), `/status` (JSON) and
//! `/metrics` (Prometheus). It only reads what the tasks report.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::records::Stage;
use super::Ctx;

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
    cancel: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(prometheus))
        .with_state(Web { ctx, metrics });
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
        "goat_trust": "EVM headers from the checkpoint (links and hashes); GOAT consensus signatures are not verified in this mode",
        "signer": ctx.state.signer_status().map(|(a, b)| json!({"address": a, "balance_wei": b})),
        "invoices": {"by_stage": by_stage, "open": open},
        "outbox": {"by_state": outbox_counts, "open": outbox_open},
    });
    Json(body).into_response()
}

async fn prometheus(State(w): State<Web>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        w.metrics.render(),
    )
        .into_response()
}
