//! Invoice intake: `InvoiceCreated` events of PaymentSettlement, read from a
//! stored cursor. Each round re-reads the last [`REORG_MARGIN`] blocks, so an
//! invoice whose creation a Metis reorg moved is picked up again; writing
//! a record that exists already changes nothing.

use alloy::eips::BlockNumberOrTag;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use tracing::info;

use super::records::{InvoiceRecord, Stage};
use super::{Ctx, TaskError};
use crate::metis::bindings::PaymentSettlement;
use crate::metis::sink::map_transport;
use crate::rail::Rail;

/// Blocks re-read each round.
pub const REORG_MARGIN: u64 = 32;
/// Bitcoin blocks below the tip scanned again when a Bitcoin invoice is
/// taken in: its payment may have been mined before intake saw it.
pub const BTC_LOOKBACK: u32 = 144;
/// GOAT blocks below our tip searched for the payment of a new GOAT invoice.
pub const GOAT_LOOKBACK: u64 = 1_000;
/// Blocks per `eth_getLogs` request.
pub const LOG_RANGE: u64 = 5_000;

/// One intake round: returns the number of new invoices.
pub async fn round(ctx: &Ctx) -> Result<usize, TaskError> {
    let provider = ctx.sink.provider();
    let url = ctx.sink.endpoint_url();
    let latest = provider
        .get_block_number()
        .await
        .map_err(|e| TaskError::classed(map_transport(url, "eth_blockNumber", e)))?;
    let cursor = ctx
        .records
        .cursor("intake")
        .map_err(TaskError::permanent)?
        .and_then(|v| v.as_u64())
        .unwrap_or(ctx.intake_from);
    let mut from = cursor.saturating_sub(REORG_MARGIN);
    let goat_tip = {
        use crate::store::Store;
        ctx.store
            .goat_tip()
            .map_err(TaskError::permanent)?
            .map(|(n, _)| n)
    };
    let mut new = Vec::new();
    let address = ctx.sink.contracts().payment_settlement;
    while from <= latest {
        let to = latest.min(from + LOG_RANGE - 1);
        let filter = Filter::new()
            .address(address)
            .event_signature(PaymentSettlement::InvoiceCreated::SIGNATURE_HASH)
            .from_block(BlockNumberOrTag::Number(from))
            .to_block(BlockNumberOrTag::Number(to));
        let logs = provider
            .get_logs(&filter)
            .await
            .map_err(|e| TaskError::classed(map_transport(url, "eth_getLogs", e)))?;
        for log in logs {
            if log.removed {
                continue;
            }
            let Ok(ev) = PaymentSettlement::InvoiceCreated::decode_log_data(log.data()) else {
                continue;
            };
            let Some(rail) = Rail::from_u8(ev.rail) else {
                continue;
            };
            if ctx
                .records
                .invoice(&ev.invoiceId)
                .map_err(TaskError::permanent)?
                .is_some()
                || new.iter().any(|r: &InvoiceRecord| r.id == ev.invoiceId)
            {
                continue;
            }
            info!(invoice = %ev.invoiceId, rail = %rail, amount = %ev.amount, "invoice taken in");
            new.push(InvoiceRecord {
                id: ev.invoiceId,
                rail,
                payee: ev.payee.clone(),
                asset: ev.asset,
                amount: ev.amount,
                expiry: ev.expiry,
                stage: Stage::AwaitingPayment,
                payment: None,
                settled_tx: None,
                detail: None,
                created_block: log.block_number.unwrap_or(to),
                deep_at_ms: None,
                settled_at_ms: None,
                // A payment may come a little before intake sees the invoice.
                goat_scan_from: goat_tip.map(|t| t.saturating_sub(GOAT_LOOKBACK)),
            });
        }
        from = to + 1;
    }
    ctx.records
        .save(&new, Some(("intake", &serde_json::json!(latest + 1))))
        .map_err(TaskError::permanent)?;
    if new.iter().any(|r| r.rail == Rail::Btc) {
        look_back_for_btc_payments(ctx)?;
    }
    Ok(new.len())
}

/// A Bitcoin invoice may be taken in after its payment was mined (the
/// daemon was down, or intake lagged): move the Bitcoin scan back
/// [`BTC_LOOKBACK`] blocks below the tip so those blocks are scanned again.
fn look_back_for_btc_payments(ctx: &Ctx) -> Result<(), TaskError> {
    use crate::store::Store;
    let store = &*ctx.store;
    let Some((tip, _)) = store.btc_tip().map_err(TaskError::permanent)? else {
        return Ok(());
    };
    let from = tip.saturating_sub(BTC_LOOKBACK);
    let cursor = ctx
        .records
        .cursor("btc_scan")
        .map_err(TaskError::permanent)?;
    let at = cursor
        .as_ref()
        .and_then(|v| v["height"].as_u64())
        .map(|h| h as u32);
    if at.is_some_and(|h| h <= from) {
        return Ok(());
    }
    let Some(hash) = store.btc_best_hash(from).map_err(TaskError::permanent)? else {
        return Ok(());
    };
    ctx.records
        .save(
            &[],
            Some((
                "btc_scan",
                &serde_json::json!({"height": from, "hash": hash.to_string()}),
            )),
        )
        .map_err(TaskError::permanent)
}
