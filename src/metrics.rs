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

use metrics_exporter_prometheus::PrometheusBuilder;
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

/// Serves `/metrics` on `addr` (needs a running Tokio runtime).
pub fn serve(addr: &str) -> Result<(), MetricsError> {
    let err = |message: String| MetricsError {
        addr: addr.to_string(),
        message,
    };
    let sock: SocketAddr = addr.parse().map_err(|e| err(format!("{e}")))?;
    PrometheusBuilder::new()
        .with_http_listener(sock)
        .install()
        .map_err(|e| err(e.to_string()))?;
    describe();
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
}
