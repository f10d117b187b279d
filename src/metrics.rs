//! Prometheus metrics.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `gmrelay_tip_height` | gauge | chain | height of the best tip gmrelay follows |
//! | `gmrelay_node_height` | gauge | chain | height the node reports |
//! | `gmrelay_headers_accepted_total` | counter | chain | headers validated and stored |
//! | `gmrelay_reorgs_total` | counter | chain | reorgs followed |
//! | `gmrelay_source_retries_total` | counter | chain | transient source failures retried |
//! | `gmrelay_sync_errors_total` | counter | chain | sync rounds that failed |

use std::net::SocketAddr;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use thiserror::Error;

/// The endpoint could not be started.
#[derive(Debug, Error)]
#[error("metrics endpoint {addr}: {message}")]
pub struct MetricsError {
    /// The address.
    pub addr: String,
    /// What failed.
    pub message: String,
}

static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("the first and only metrics recorder of the process");
            describe();
            handle
        })
        .clone()
}

/// Runs the recorder's upkeep (histogram buckets) every few seconds, for
/// as long as the runtime lives.
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            handle.run_upkeep();
        }
    });
}

/// Serves `/metrics` on `addr` (needs a running Tokio runtime).
pub fn serve(addr: &str) -> Result<(), MetricsError> {
    let err = |message: String| MetricsError {
        addr: addr.to_string(),
        message,
    };
    let sock: SocketAddr = addr.parse().map_err(|e| err(format!("{e}")))?;
    let handle = recorder();
    spawn_upkeep(handle.clone());
    let listener = std::net::TcpListener::bind(sock).map_err(|e| err(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err(e.to_string()))?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| err(e.to_string()))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            async move { h.render() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

fn describe() {
    metrics::describe_gauge!(
        "gmrelay_tip_height",
        "Height of the best tip gmrelay follows"
    );
    metrics::describe_gauge!("gmrelay_node_height", "Height the node reports");
    metrics::describe_counter!(
        "gmrelay_headers_accepted_total",
        "Headers validated and stored"
    );
    metrics::describe_counter!("gmrelay_reorgs_total", "Reorgs followed");
    metrics::describe_counter!(
        "gmrelay_source_retries_total",
        "Transient source failures retried"
    );
    metrics::describe_counter!("gmrelay_sync_errors_total", "Sync rounds that failed");
    metrics::describe_gauge!("gmrelay_lag_blocks", "Node height minus our tip");
    metrics::describe_gauge!("gmrelay_node_up", "1 when the last round reached the node");
    metrics::describe_gauge!("gmrelay_invoices", "Invoices the daemon tracks, by stage");
    metrics::describe_gauge!(
        "gmrelay_metis_transactions",
        "Outbox transactions, by state"
    );
    metrics::describe_counter!("gmrelay_metis_gas_total", "Gas spent on Metis");
    metrics::describe_counter!(
        "gmrelay_metis_fees_wei_total",
        "Wei spent on Metis (gas and L1 data fee)"
    );
    metrics::describe_gauge!("gmrelay_signer_balance_wei", "The Metis signer's balance");
    metrics::describe_counter!("gmrelay_errors_total", "Invoice steps that failed, by kind");
    metrics::describe_counter!(
        "gmrelay_settlements_total",
        "Invoices settled by this relayer, by rail"
    );
    metrics::describe_counter!(
        "gmrelay_duplicates_skipped_total",
        "Invoices found settled by another relayer"
    );
    metrics::describe_counter!(
        "gmrelay_duplicates_refused_total",
        "Our settlements refused on-chain as already settled"
    );
    metrics::describe_histogram!(
        "gmrelay_depth_to_settlement_seconds",
        "From the payment reaching its depth to its settlement"
    );
    metrics::describe_counter!(
        "gmrelay_task_restarts_total",
        "Daemon task restarts, by task"
    );
    metrics::describe_counter!(
        "gmrelay_metis_replacements_total",
        "Stuck transactions replaced at a higher gas price"
    );
}
