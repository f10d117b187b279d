//! The two follow tasks: the Bitcoin and the GOAT header chains, synced into
//! the store round after round. After each round that persisted something
//! they wake the worker, which reads the news from the store.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Ctx, TaskError};
use crate::btc::source::BtcSource;
use crate::btc::sync::{SyncOptions, Syncer};
use crate::error::Classify;
use crate::goat::sync::{GoatSyncOptions, GoatSyncer};

/// How long one round retries a transient source failure before the round
/// fails and the node is reported down (the task then retries the next round).
pub const ROUND_RETRY: Duration = Duration::from_secs(5);

/// Follows Bitcoin until cancelled.
pub async fn btc(ctx: &Ctx, cancel: &CancellationToken) -> Result<(), TaskError> {
    let source = &ctx.btc;
    let cp = crate::app::btc_checkpoint(&ctx.config).map_err(TaskError::permanent)?;
    let mut syncer = Syncer::open(
        source,
        &*ctx.store,
        &cp,
        SyncOptions {
            // The supervisor retries the round: surface a dead node quickly.
            max_retry: ROUND_RETRY.min(Duration::from_secs(ctx.config.btc.max_retry_secs)),
            ..crate::app::btc_sync_options(&ctx.config)
        },
    )
    .await
    .map_err(|e| {
        ctx.state.chain_err(
            "bitcoin",
            &source.endpoint(),
            e.to_string(),
            !e.node_unreachable(),
        );
        TaskError::classed(e)
    })?;
    let poll = Duration::from_millis(ctx.poll_ms);
    loop {
        match syncer.sync_once(None).await {
            Ok(r) => {
                let tip = syncer.chain().tip();
                let need = u64::from(ctx.config.metis.min_btc_confirmations.max(1));
                let deep = u64::from(tip.height()).checked_sub(need - 1);
                ctx.state.chain_ok(
                    "bitcoin",
                    &source.endpoint(),
                    (u64::from(tip.height()), tip.hash().to_string()),
                    deep,
                    u64::from(r.node_height),
                );
                if r.new_headers > 0 || !r.reorgs.is_empty() {
                    debug!(
                        new = r.new_headers,
                        reorgs = r.reorgs.len(),
                        "bitcoin: news"
                    );
                    ctx.news.notify_one();
                }
            }
            Err(e) => round_failed(ctx, "bitcoin", &source.endpoint(), e.node_unreachable(), e)?,
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Follows GOAT until cancelled.
pub async fn goat(ctx: &Ctx, cancel: &CancellationToken) -> Result<(), TaskError> {
    let source = &*ctx.goat;
    let endpoint = ctx.config.goat_rpc_url();
    let cp = crate::app::goat_checkpoint(&ctx.config).map_err(TaskError::permanent)?;
    let mut syncer = GoatSyncer::open(
        source,
        &*ctx.store,
        cp,
        ctx.config.goat.chain_id,
        crate::app::goat_finality(&ctx.config),
        GoatSyncOptions {
            max_retry: ROUND_RETRY.min(Duration::from_secs(ctx.config.goat.max_retry_secs)),
            ..crate::app::goat_sync_options(&ctx.config)
        },
    )
    .await
    .map_err(|e| {
        ctx.state
            .chain_err("goat", &endpoint, e.to_string(), !e.node_unreachable());
        TaskError::classed(e)
    })?;
    if let Some(follower) = crate::app::goat_consensus(&ctx.config, &*ctx.store)
        .await
        .map_err(|e| {
            ctx.state.chain_err("goat", &endpoint, e.to_string(), true);
            TaskError::classed(e)
        })?
    {
        syncer = syncer.with_consensus(follower);
    }
    let poll = Duration::from_millis(ctx.poll_ms);
    loop {
        match syncer.sync_once().await {
            Ok(r) => {
                ctx.state.chain_ok(
                    "goat",
                    &endpoint,
                    (r.tip.0, r.tip.1.to_string()),
                    Some(r.finalized.0),
                    r.node_head,
                );
                if r.new_headers > 0 || !r.reorgs.is_empty() || r.finalized_moved {
                    ctx.news.notify_one();
                }
            }
            Err(e) => round_failed(ctx, "goat", &endpoint, e.node_unreachable(), e)?,
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Reports a failed round; a permanent failure ends the task (the
/// supervisor restarts it later), a transient one is retried next round.
fn round_failed<E>(
    ctx: &Ctx,
    chain: &'static str,
    endpoint: &str,
    unreachable: bool,
    e: E,
) -> Result<(), TaskError>
where
    E: Classify + std::error::Error + Send + Sync + 'static,
{
    ctx.state
        .chain_err(chain, endpoint, e.to_string(), !unreachable);
    if !e.is_transient() {
        return Err(TaskError::classed(e));
    }
    warn!(error = %e, chain, "round failed; retrying");
    Ok(())
}
