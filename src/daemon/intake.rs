//! Invoice intake: `InvoiceCreated` events of PaymentSettlement, read from a
//! stored cursor, and signed invoices handed in over the HTTP API
//! ([`take_signed`]). Each round re-reads the last [`REORG_MARGIN`] blocks,
//! so an invoice whose creation a Metis reorg moved is picked up again;
//! writing a record that exists already changes nothing.

use alloy::eips::BlockNumberOrTag;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use tracing::info;

use super::records::{InvoiceRecord, Origin};
use super::{Ctx, TaskError};
use crate::metis::bindings::PaymentSettlement;
use crate::metis::invoice::{SignedInvoice, Terms};
use crate::metis::settle::{check_invoice, SettleError};
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
            let Some(terms) = Terms::from_sol(&ev.terms) else {
                continue;
            };
            if terms.id() != ev.invoiceId {
                continue;
            }
            if ctx
                .records
                .invoice(&ev.invoiceId)
                .map_err(TaskError::permanent)?
                .is_some()
                || new.iter().any(|r: &InvoiceRecord| r.id == ev.invoiceId)
            {
                continue;
            }
            info!(invoice = %ev.invoiceId, rail = %terms.rail, amount = %terms.amount, "invoice taken in");
            let mut record = InvoiceRecord::new(
                SignedInvoice::on_chain(terms),
                Origin::Chain,
                log.block_number.unwrap_or(to),
            );
            // A payment may come a little before intake sees the invoice.
            record.goat_scan_from = goat_tip.map(|t| t.saturating_sub(GOAT_LOOKBACK));
            new.push(record);
        }
        from = to + 1;
    }
    ctx.records
        .save(&new, Some(("intake", &serde_json::json!(latest + 1))))
        .map_err(TaskError::permanent)?;
    if new.iter().any(|r| r.rail() == Rail::Btc) {
        look_back_for_btc_payments(ctx).map_err(TaskError::permanent)?;
    }
    Ok(new.len())
}

/// A Bitcoin invoice may be taken in after its payment was mined (the
/// daemon was down, or intake lagged): move the Bitcoin scan back
/// [`BTC_LOOKBACK`] blocks below the tip so those blocks are scanned again.
fn look_back_for_btc_payments(ctx: &Ctx) -> Result<(), crate::store::StoreError> {
    use crate::store::Store;
    let store = &*ctx.store;
    let Some((tip, _)) = store.btc_tip()? else {
        return Ok(());
    };
    let from = tip.saturating_sub(BTC_LOOKBACK);
    let cursor = ctx.records.cursor("btc_scan")?;
    let at = cursor
        .as_ref()
        .and_then(|v| v["height"].as_u64())
        .map(|h| h as u32);
    if at.is_some_and(|h| h <= from) {
        return Ok(());
    }
    let Some(hash) = store.btc_best_hash(from)? else {
        return Ok(());
    };
    ctx.records.save(
        &[],
        Some((
            "btc_scan",
            &serde_json::json!({"height": from, "hash": hash.to_string()}),
        )),
    )
}

/// What [`take_signed`] did with an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// New: the daemon now watches for its payment.
    New,
    /// Already known (handed in before, or created on-chain).
    Known,
}

/// Takes in a signed invoice: checks it as the contract will (shape, the
/// merchant's EOA signature for this PaymentSettlement and chain, or the
/// stored terms of an on-chain invoice; not settled yet) and starts
/// watching for its payment, looking back as for invoices read from the chain.
pub async fn take_signed(ctx: &Ctx, invoice: SignedInvoice) -> Result<Taken, SettleError> {
    let id = invoice.id();
    let known = ctx.records.invoice(&id)?;
    if known
        .as_ref()
        .is_some_and(|r| r.invoice.terms == invoice.terms)
    {
        return Ok(Taken::Known);
    }
    check_invoice(&ctx.sink, &invoice, invoice.terms.rail).await?;
    if known.is_some() {
        return Err(SettleError::Conflict(id));
    }
    let rail = invoice.terms.rail;
    let mut record = InvoiceRecord::new(invoice, Origin::Signed, 0);
    let goat_tip = {
        use crate::store::Store;
        ctx.store.goat_tip()?.map(|(n, _)| n)
    };
    record.goat_scan_from = goat_tip.map(|t| t.saturating_sub(GOAT_LOOKBACK));
    info!(invoice = %id, rail = %rail, amount = %record.terms().amount, "signed invoice taken in");
    ctx.records.save(std::slice::from_ref(&record), None)?;
    if rail == Rail::Btc {
        look_back_for_btc_payments(ctx)?;
    }
    ctx.news.notify_waiters();
    Ok(Taken::New)
}
