//! The settlement worker: for each open invoice, find its payment and wait
//! for its depth; then settle every payment that is ready in one batch per
//! rail (Bitcoin: after relaying the headers BtcLightClient lacks; GOAT: the
//! committee's attestation inline). The contracts' state decides before
//! every transaction, so a restart or a second relayer never settles twice.

use std::collections::HashMap;

use alloy::primitives::{Address, B256};
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, ScriptBuf, Txid};
use tracing::{info, info_span, warn, Instrument};

use super::records::{InvoiceRecord, Origin, PaymentRef, Stage};
use super::{now_ms, Ctx, TaskError};
use crate::btc::proof::{find_payment, named_reference, BtcProof};
use crate::btc::source::BtcSource;
use crate::error::{Classify, ErrorClass};
use crate::goat::payment::PaymentPolicy;
use crate::goat::proof::GoatProof;
use crate::metis::attest::AttestDomain;
use crate::metis::bindings::PaymentSettlement;
use crate::metis::relay::{relay_headers, RelayOptions};
use crate::metis::settle::{
    block_attestation, btc_block, btc_header_chain, btc_payment, check_btc_payment,
    check_goat_payment, goat_block, goat_fields, goat_group, SettleError,
};
use crate::metis::sink::{InvoiceState, MetisSink, TxOutcome};
use crate::rail::Rail;
use crate::store::Store;

/// Bitcoin blocks scanned below the tip when the daemon starts on a store
/// with no scan cursor.
pub const BTC_INITIAL_SCAN: u32 = 2016;
/// GOAT blocks each payment search reads again below where the last one
/// stopped (a reorg above finality may have moved the payment).
pub const GOAT_RESCAN: u64 = 64;
/// Bitcoin blocks scanned again below the cursor when a reorg replaced it.
pub const BTC_RESCAN_ON_REORG: u32 = 144;
/// Seconds after its expiry an unpaid invoice is given up: a payment mined
/// before the expiry may still be found by a scan that lags.
pub const EXPIRY_GRACE_SECS: u64 = 3_600;
/// Most payments settled in one transaction.
pub const MAX_BATCH: usize = 50;
/// What `finish` notes on a payment the contract skipped in a batch; it is
/// then sent alone, so that its own revert (at the gas estimate, before
/// anything is spent) names the reason.
const SKIPPED: &str = "skipped by the contract in batch";

/// The round's batches: the payments together, [`MAX_BATCH`] at a time, and
/// each one a batch skipped before on its own.
fn batches<P>(ready: Vec<(InvoiceRecord, P)>) -> Vec<Vec<(InvoiceRecord, P)>> {
    let (alone, together): (Vec<_>, Vec<_>) = ready.into_iter().partition(|(inv, _)| {
        inv.detail
            .as_deref()
            .is_some_and(|d| d.starts_with(SKIPPED))
    });
    let mut out: Vec<Vec<(InvoiceRecord, P)>> = Vec::new();
    let mut rest = together.into_iter().peekable();
    while rest.peek().is_some() {
        out.push(rest.by_ref().take(MAX_BATCH).collect());
    }
    out.extend(alone.into_iter().map(|r| vec![r]));
    out
}

/// The proof of a payment at its depth, checked against its invoice,
/// waiting for the round's batch.
enum ReadyProof {
    /// Bitcoin.
    Btc(Box<BtcProof>),
    /// GOAT.
    Goat(Box<GoatProof>),
}

/// One round over every open invoice: each finds its payment and its depth;
/// the ready ones settle in one transaction per rail.
pub async fn round(ctx: &Ctx) -> Result<(), TaskError> {
    let all = ctx.records.invoices().map_err(TaskError::permanent)?;
    let open: Vec<InvoiceRecord> = all.iter().filter(|r| r.stage.is_open()).cloned().collect();
    if open.is_empty() {
        // Nothing changes in an idle round: gauges from what was read.
        stage_gauges(&all);
        return Ok(());
    }
    let btc_found = scan_btc(ctx, &open).await?;
    let steps = open.into_iter().map(|inv| {
        let found = btc_found.get(&inv.id).cloned();
        step(ctx, inv, found)
    });
    let mut btc = Vec::new();
    let mut goat = Vec::new();
    for r in futures::future::join_all(steps).await {
        match r? {
            Some((inv, ReadyProof::Btc(p))) => btc.push((inv, *p)),
            Some((inv, ReadyProof::Goat(p))) => goat.push((inv, *p)),
            None => {}
        }
    }
    let (a, b) = futures::join!(settle_btc_batch(ctx, btc), settle_goat_batch(ctx, goat));
    a?;
    b?;
    update_metrics(ctx)
}

/// One invoice's step; its record is saved when it changed. Returns it
/// with its proof when its payment is ready to settle.
async fn step(
    ctx: &Ctx,
    mut inv: InvoiceRecord,
    found: Option<PaymentRef>,
) -> Result<Option<(InvoiceRecord, ReadyProof)>, TaskError> {
    let span = info_span!("invoice", invoice = %inv.id, rail = %inv.rail());
    let before = inv.clone();
    let result: Result<Option<ReadyProof>, TaskError> = async {
        Ok(match inv.rail() {
            Rail::Btc => btc_invoice(ctx, &mut inv, found.as_ref())
                .await?
                .map(|p| ReadyProof::Btc(Box::new(p))),
            Rail::Goat => goat_invoice(ctx, &mut inv)
                .await?
                .map(|p| ReadyProof::Goat(Box::new(p))),
        })
    }
    .instrument(span)
    .await;
    if let Err(e) = &result {
        inv.detail = Some(e.to_string());
        metrics::counter!("gmrelay_errors_total", "kind" => if e.transient { "transient" } else { "permanent" }).increment(1);
    }
    // Said once per new reason, not every round.
    let news = inv.detail != before.detail;
    if inv != before {
        ctx.records
            .save(std::slice::from_ref(&inv), None)
            .map_err(TaskError::permanent)?;
    }
    match result {
        Err(e) => {
            if news {
                warn!(error = %e.error, transient = e.transient, "invoice step failed");
            }
            Ok(None)
        }
        Ok(ready) => Ok(ready.map(|p| (inv, p))),
    }
}

fn stage_gauges(all: &[InvoiceRecord]) {
    for stage in Stage::ALL {
        let n = all.iter().filter(|r| r.stage == stage).count();
        metrics::gauge!("gmrelay_invoices", "stage" => stage.name()).set(n as f64);
    }
}

/// Refreshes the invoice and outbox gauges after a round that worked.
fn update_metrics(ctx: &Ctx) -> Result<(), TaskError> {
    stage_gauges(&ctx.records.invoices().map_err(TaskError::permanent)?);
    if let Some(outbox) = ctx.sink.sender().and_then(|s| s.outbox().cloned()) {
        for (state, n) in outbox.counts().map_err(TaskError::permanent)? {
            metrics::gauge!("gmrelay_metis_transactions", "state" => state.name()).set(n as f64);
        }
    }
    Ok(())
}

/// The on-chain view first: settled (by us or another relayer), gone, or
/// created with other terms. Returns whether the invoice is still to be
/// worked on.
async fn check_on_chain(ctx: &Ctx, inv: &mut InvoiceRecord) -> Result<bool, TaskError> {
    let state = ctx
        .sink
        .invoice_state(inv.id)
        .await
        .map_err(TaskError::classed)?;
    match state {
        s if s.is_settled() => {
            if inv.stage != Stage::Settled {
                // Ours, sent before a restart? The outbox knows.
                if let Some(tx) = our_settlement(ctx, inv.id)? {
                    mark_settled(inv, tx, "settled by this relayer (before a restart)".into());
                } else {
                    inv.stage = Stage::SettledByOther;
                    inv.detail = Some("settled by another relayer".into());
                    metrics::counter!("gmrelay_duplicates_skipped_total").increment(1);
                    info!("settled by another relayer: skipped");
                }
            }
            Ok(false)
        }
        InvoiceState::Open(hash) if hash != inv.terms().struct_hash() => {
            inv.stage = Stage::Failed;
            inv.detail = Some("created on Metis with other terms than these".into());
            Ok(false)
        }
        InvoiceState::Unknown if inv.origin == Origin::Chain => {
            inv.detail = Some("not (or no longer) on Metis: waiting for it".into());
            Ok(false)
        }
        _ => Ok(true),
    }
}

/// An unpaid invoice past its expiry (and a grace for scans that lag) is
/// given up. Returns whether it was.
fn expired_unpaid(inv: &mut InvoiceRecord) -> bool {
    let expiry = inv.terms().expiry;
    if inv.payment.is_none() && now_ms() / 1000 > expiry.saturating_add(EXPIRY_GRACE_SECS) {
        inv.stage = Stage::Expired;
        inv.detail = Some(format!("expired at {expiry} without a payment"));
        return true;
    }
    false
}

fn mark_settled(inv: &mut InvoiceRecord, tx: B256, detail: String) {
    inv.stage = Stage::Settled;
    inv.settled_tx = Some(tx);
    inv.settled_at_ms.get_or_insert(now_ms());
    inv.detail = Some(detail);
}

/// The relay task's round: while a Bitcoin invoice is open, keep
/// BtcLightClient up to our chain, so that when a payment reaches its depth
/// only the newest headers and the settlement are left to send; with GOAT
/// consensus, keep GoatLightClient inside its trusting period.
pub async fn relay_round(ctx: &Ctx) -> Result<(), TaskError> {
    let open = ctx.records.invoices().map_err(TaskError::permanent)?;
    let any_open = |rail| open.iter().any(|r| r.rail() == rail && r.stage.is_open());
    if any_open(Rail::Btc) {
        relay(ctx).await?;
    }
    // While a GOAT payment waits, settling it moves GoatLightClient on (and
    // proving the latest block first would pass the waiting one's height).
    let any_goat = any_open(Rail::Goat);
    if let (Some(rpc), Some(c), false) = (&ctx.comet, &ctx.config.goat.consensus, any_goat) {
        let _one = ctx.goat_prove_lock.lock().await;
        match crate::metis::goatprove::keep_fresh(
            &*ctx.store,
            rpc,
            &ctx.sink,
            c.trusting_period_secs,
            now_ms() / 1000,
        )
        .await
        {
            Ok(sent) => sent.iter().for_each(record_spend),
            // Never in the way of the Bitcoin relay: said, retried next round.
            Err(e) => warn!(chain = "goat", "keeping GoatLightClient fresh failed: {e}"),
        }
    }
    Ok(())
}

/// Brings BtcLightClient up to our best chain (nothing to send when it is).
async fn relay(ctx: &Ctx) -> Result<(), TaskError> {
    // One relay at a time: concurrent invoices would plan the same batch.
    let _one = ctx.relay_lock.lock().await;
    relay_headers(
        &*ctx.store,
        &ctx.sink,
        RelayOptions {
            batch: ctx.config.metis.header_batch,
            max_retry: std::time::Duration::from_secs(ctx.config.metis.max_retry_secs),
        },
        |b| record_spend(&b.outcome),
    )
    .await
    .map(|_| ())
    .map_err(TaskError::classed)
}

/// The payment is at its depth: note when, then let the contracts' state
/// decide whether there is anything left to do.
async fn deep_enough(ctx: &Ctx, inv: &mut InvoiceRecord) -> Result<bool, TaskError> {
    if inv.deep_at_ms.is_none() {
        inv.deep_at_ms = Some(now_ms());
    }
    if !check_on_chain(ctx, inv).await? {
        return Ok(false);
    }
    inv.stage = Stage::Settling;
    // Saved now, so /status shows the payment and the stage while the
    // transactions are in flight.
    ctx.records
        .save(std::slice::from_ref(inv), None)
        .map_err(TaskError::permanent)?;
    Ok(true)
}

/// Forgets a payment a reorg took out of the best chain: it is found again
/// when it is mined anew.
fn reorged_out(inv: &mut InvoiceRecord, p: &PaymentRef) {
    info!(block = %p.block_hash, height = p.height, tx = %p.tx, "payment reorged out: waiting for it to be mined again");
    inv.payment = None;
    inv.stage = Stage::AwaitingPayment;
    inv.deep_at_ms = None;
    inv.detail = Some(format!(
        "payment {} was in block {} at height {}, reorged out: waiting for it to be mined again",
        p.tx, p.block_hash, p.height
    ));
}

/// The mined settlement of `id` in our outbox, if any.
fn our_settlement(ctx: &Ctx, id: B256) -> Result<Option<B256>, TaskError> {
    let Some(outbox) = ctx.sink.sender().and_then(|s| s.outbox().cloned()) else {
        return Ok(None);
    };
    let id = id.to_string();
    Ok(outbox
        .all()
        .map_err(TaskError::permanent)?
        .into_iter()
        .find(|e| {
            e.purpose.contains(&id)
                && e.what.starts_with("PaymentSettlement.settle")
                && e.state == crate::metis::outbox::TxState::Mined
        })
        .and_then(|e| e.mined_hash))
}

/// Scans the Bitcoin blocks connected since the last round for payments
/// to open invoices (an OP_RETURN carrying the id, an output to its script).
async fn scan_btc(
    ctx: &Ctx,
    open: &[InvoiceRecord],
) -> Result<HashMap<B256, PaymentRef>, TaskError> {
    let mut found = HashMap::new();
    // By the reference their payments carry (several merchants may use one).
    let mut wanted: HashMap<[u8; 32], Vec<&InvoiceRecord>> = HashMap::new();
    for r in open
        .iter()
        .filter(|r| r.rail() == Rail::Btc && r.payment.is_none())
    {
        wanted.entry(r.terms().reference.0).or_default().push(r);
    }
    let store = &*ctx.store;
    let Some((tip, _)) = store.btc_tip().map_err(TaskError::permanent)? else {
        return Ok(found);
    };
    let Some((_, cp, _)) = store.btc_origin().map_err(TaskError::permanent)? else {
        return Ok(found);
    };
    // The cursor is the last block scanned; a reorg moves it back to the fork.
    let mut next = match ctx
        .records
        .cursor("btc_scan")
        .map_err(TaskError::permanent)?
    {
        Some(v) => {
            let height = v["height"].as_u64().unwrap_or(0) as u32;
            let hash = v["hash"].as_str().unwrap_or_default().to_string();
            let ours = store.btc_best_hash(height).map_err(TaskError::permanent)?;
            if ours.map(|h| h.to_string()) == Some(hash) {
                height + 1
            } else {
                // A reorg replaced what was scanned: scan again from below it.
                height.saturating_sub(BTC_RESCAN_ON_REORG).max(cp + 1)
            }
        }
        None => tip.saturating_sub(BTC_INITIAL_SCAN).max(cp + 1),
    };
    while next <= tip {
        let Some(hash) = store.btc_best_hash(next).map_err(TaskError::permanent)? else {
            break;
        };
        if !wanted.is_empty() {
            let block = ctx.btc.block(&hash).await.map_err(TaskError::classed)?;
            for tx in &block.txdata {
                // The contract reads the first OP_RETURN <32 bytes> only.
                let Some(reference) = named_reference(tx) else {
                    continue;
                };
                for inv in wanted.get(&reference).into_iter().flatten() {
                    let script = ScriptBuf::from_bytes(inv.terms().payee.to_vec());
                    let amount = u64::try_from(inv.terms().amount).unwrap_or(u64::MAX);
                    match find_payment(tx, &script, amount, &reference) {
                        Ok(_) => {
                            info!(invoice = %inv.id, txid = %tx.compute_txid(), height = next, "bitcoin payment found");
                            found.insert(
                                inv.id,
                                PaymentRef {
                                    tx: tx.compute_txid().to_string(),
                                    block_hash: hash.to_string(),
                                    height: u64::from(next),
                                },
                            );
                        }
                        Err(e) => {
                            warn!(invoice = %inv.id, txid = %tx.compute_txid(), error = %e, "a transaction names the invoice but does not pay it");
                        }
                    }
                }
            }
        }
        ctx.records
            .save(
                &[],
                Some((
                    "btc_scan",
                    &serde_json::json!({"height": next, "hash": hash.to_string()}),
                )),
            )
            .map_err(TaskError::permanent)?;
        next += 1;
    }
    Ok(found)
}

async fn btc_invoice(
    ctx: &Ctx,
    inv: &mut InvoiceRecord,
    found: Option<&PaymentRef>,
) -> Result<Option<BtcProof>, TaskError> {
    if let Some(p) = found {
        if inv.payment.is_none() {
            inv.payment = Some(p.clone());
            inv.stage = Stage::Confirming;
            inv.detail = None;
        }
    }
    let Some(p) = inv.payment.clone() else {
        expired_unpaid(inv);
        return Ok(None);
    };
    let store = &*ctx.store;
    let block_hash: BlockHash = p
        .block_hash
        .parse()
        .map_err(|_| TaskError::permanent(anyhow::anyhow!("bad block hash in record")))?;
    let height = p.height as u32;
    // Reorged out: forget it; the scan finds it again when it is mined anew.
    if store.btc_best_hash(height).map_err(TaskError::permanent)? != Some(block_hash) {
        reorged_out(inv, &p);
        return Ok(None);
    }
    let (tip, _) = store
        .btc_tip()
        .map_err(TaskError::permanent)?
        .unwrap_or((0, BlockHash::all_zeros()));
    let confirmations = u64::from(tip.saturating_sub(height)) + 1;
    let need = ctx.min_btc_confirmations().await?;
    if confirmations < need {
        inv.stage = Stage::Confirming;
        inv.detail = Some(format!("{confirmations} of {need} confirmations"));
        return Ok(None);
    }
    if !deep_enough(ctx, inv).await? || pending_settlement(ctx, inv)? {
        return Ok(None);
    }
    let txid: Txid =
        p.tx.parse()
            .map_err(|_| TaskError::permanent(anyhow::anyhow!("bad txid in record")))?;
    let proof = crate::btc::proof::prove_tx(
        &ctx.btc,
        store,
        ctx.config.btc.network,
        txid,
        Some(block_hash),
    )
    .await
    .map_err(TaskError::classed)?;
    if let Err(e) = check_btc_payment(store, &proof, &inv.invoice, ctx.config.btc.network) {
        return Err(cannot_settle(inv, e));
    }
    Ok(Some(proof))
}

/// A payment that cannot settle its invoice (it names the invoice but pays
/// too little, or was mined after the expiry): the invoice fails.
fn cannot_settle(inv: &mut InvoiceRecord, e: SettleError) -> TaskError {
    match e {
        SettleError::NotPaid { .. }
        | SettleError::GoatNotPaid { .. }
        | SettleError::Expired { .. } => {
            inv.stage = Stage::Failed;
            TaskError::permanent(e)
        }
        other => TaskError::classed(other),
    }
}

async fn goat_invoice(ctx: &Ctx, inv: &mut InvoiceRecord) -> Result<Option<GoatProof>, TaskError> {
    let store = &*ctx.store;
    if inv.payment.is_none() {
        // A bounded range per round, from where the last search stopped
        // (less a margin a reorg could rewrite), up to our tip.
        let (tip, _) = store
            .goat_tip()
            .map_err(TaskError::permanent)?
            .unwrap_or((0, B256::ZERO));
        let from = inv.goat_scan_from.unwrap_or(0).min(tip);
        let to = tip.min(from + crate::daemon::intake::LOG_RANGE - 1);
        let hits = ctx
            .goat
            .authorization_used(inv.terms().asset, inv.terms().reference, from, to)
            .await
            .map_err(TaskError::classed)?;
        if hits.is_empty() {
            inv.goat_scan_from = Some(to.saturating_sub(GOAT_RESCAN).max(from));
            if to < tip {
                // Still catching up: the next round reads on.
                inv.goat_scan_from = Some(to + 1);
            }
        }
        if let Some((tx, number, hash)) = hits.first() {
            info!(tx = %tx, height = number, "GOAT payment found");
            inv.payment = Some(PaymentRef {
                tx: tx.to_string(),
                block_hash: hash.to_string(),
                height: *number,
            });
            inv.stage = Stage::Confirming;
            inv.detail = None;
        }
    }
    let Some(p) = inv.payment.clone() else {
        expired_unpaid(inv);
        return Ok(None);
    };
    let hash: B256 = p
        .block_hash
        .parse()
        .map_err(|_| TaskError::permanent(anyhow::anyhow!("bad block hash in record")))?;
    let ours = store
        .goat_best_hash(p.height)
        .map_err(TaskError::permanent)?;
    let (tip, _) = store
        .goat_tip()
        .map_err(TaskError::permanent)?
        .unwrap_or((0, B256::ZERO));
    if ours != Some(hash) {
        if ours.is_some() || tip >= p.height {
            reorged_out(inv, &p);
        } else {
            inv.detail = Some(format!("GOAT block {} not synced yet", p.height));
        }
        return Ok(None);
    }
    let (finalized, _) = store
        .goat_finalized()
        .map_err(TaskError::permanent)?
        .unwrap_or((0, B256::ZERO));
    if p.height > finalized {
        inv.stage = Stage::Confirming;
        inv.detail = Some(format!(
            "GOAT block {} not final yet (finalized {finalized})",
            p.height
        ));
        return Ok(None);
    }
    if !deep_enough(ctx, inv).await? || pending_settlement(ctx, inv)? {
        return Ok(None);
    }
    let tx: B256 =
        p.tx.parse()
            .map_err(|_| TaskError::permanent(anyhow::anyhow!("bad tx hash in record")))?;
    let payee = Address::try_from(inv.terms().payee.as_ref())
        .map_err(|_| TaskError::permanent(anyhow::anyhow!("invoice payee is not 20 bytes")))?;
    let policy = PaymentPolicy {
        tokens: vec![inv.terms().asset],
        payees: vec![payee],
        allow_plain_transfers: false,
    };
    let proof =
        crate::goat::proof::prove_payment(&*ctx.goat, store, ctx.config.goat.chain_id, tx, &policy)
            .await
            .map_err(|e| TaskError::transient(anyhow::anyhow!("{e}")))?;
    let checked = goat_fields(&proof).and_then(|f| check_goat_payment(&proof, &inv.invoice, &f));
    if let Err(e) = checked {
        return Err(cannot_settle(inv, e));
    }
    Ok(Some(proof))
}

fn record_spend(o: &crate::metis::sink::TxOutcome) {
    metrics::counter!("gmrelay_metis_gas_total").increment(o.gas_used);
    let fee = o.cost_wei();
    metrics::counter!("gmrelay_metis_fees_wei_total")
        .increment(u64::try_from(fee).unwrap_or(u64::MAX));
}

/// Whether our earlier settlement of the invoice still waits for its
/// receipt (its sender stopped waiting): never send a second one next to it.
fn pending_settlement(ctx: &Ctx, inv: &mut InvoiceRecord) -> Result<bool, TaskError> {
    let Some(outbox) = ctx.sink.sender().and_then(|s| s.outbox().cloned()) else {
        return Ok(false);
    };
    let id = inv.id.to_string();
    let pending = outbox
        .open_entries()
        .map_err(TaskError::permanent)?
        .into_iter()
        .find(|e| e.purpose.contains(&id) && e.what.starts_with("PaymentSettlement.settle"));
    if let Some(e) = pending {
        inv.detail = Some(format!(
            "our settlement {} is pending",
            e.hashes.last().map(|h| h.to_string()).unwrap_or_default()
        ));
        return Ok(true);
    }
    Ok(false)
}

/// The outbox purpose of a settlement: `invoice <id>` or `invoices <id> <id> …`.
fn purpose(invoices: &[InvoiceRecord]) -> String {
    let ids: Vec<String> = invoices.iter().map(|i| i.id.to_string()).collect();
    if ids.len() == 1 {
        format!("invoice {}", ids[0])
    } else {
        format!("invoices {}", ids.join(" "))
    }
}

/// Settles the ready Bitcoin payments: headers relayed first, then one
/// transaction per [`MAX_BATCH`] payments, grouped by block.
async fn settle_btc_batch(
    ctx: &Ctx,
    ready: Vec<(InvoiceRecord, BtcProof)>,
) -> Result<(), TaskError> {
    if ready.is_empty() {
        return Ok(());
    }
    // The contract needs descendants of the payments' blocks: relay what it lacks.
    relay(ctx).await?;
    for chunk in batches(ready) {
        let mut groups: Vec<(BlockHash, PaymentSettlement::BtcGroup)> = Vec::new();
        let mut included = Vec::new();
        let mut left_out = Vec::new();
        for (inv, proof) in &chunk {
            let at = match groups.iter().position(|(h, _)| *h == proof.block_hash) {
                Some(i) => i,
                None => {
                    match btc_header_chain(
                        &*ctx.store,
                        &ctx.sink,
                        proof.block_hash,
                        proof.block_height,
                    )
                    .await
                    {
                        Ok(headers) => {
                            groups.push((
                                proof.block_hash,
                                PaymentSettlement::BtcGroup {
                                    blk: btc_block(proof, headers),
                                    payments: Vec::new(),
                                },
                            ));
                            groups.len() - 1
                        }
                        Err(e) => {
                            let mut inv = inv.clone();
                            inv.detail = Some(e.to_string());
                            left_out.push(inv);
                            continue;
                        }
                    }
                }
            };
            groups[at].1.payments.push(btc_payment(&inv.invoice, proof));
            included.push(inv.clone());
        }
        save(ctx, &left_out)?;
        if included.is_empty() {
            continue;
        }
        let groups: Vec<_> = groups.into_iter().map(|(_, g)| g).collect();
        let what = purpose(&included);
        let sent = ctx.sink.settle_btc(groups, &what).await;
        finish(ctx, included, sent).await?;
    }
    Ok(())
}

/// Settles the ready GOAT payments: one transaction per [`MAX_BATCH`]
/// payments, grouped by block, each block attested inline by this
/// relayer's committee keys unless GoatHeaderStore already stores it.
async fn settle_goat_batch(
    ctx: &Ctx,
    ready: Vec<(InvoiceRecord, GoatProof)>,
) -> Result<(), TaskError> {
    if ready.is_empty() {
        return Ok(());
    }
    let domain = AttestDomain {
        metis_chain_id: ctx.sink.chain_id(),
        store: ctx.sink.contracts().goat_header_store,
    };
    // Oldest block first: GoatLightClient's trusted height only moves up, so
    // a later block proven first would leave an earlier one unprovable.
    let mut ready = ready;
    ready.sort_by_key(|(_, p)| p.block_number);
    for chunk in batches(ready) {
        let mut blocks: Vec<B256> = Vec::new();
        for (_, p) in &chunk {
            if !blocks.contains(&p.block_hash) {
                blocks.push(p.block_hash);
            }
        }
        let mut groups = Vec::new();
        let mut included = Vec::new();
        let mut left_out = Vec::new();
        for hash in blocks {
            let items: Vec<&(InvoiceRecord, GoatProof)> =
                chunk.iter().filter(|(_, p)| p.block_hash == hash).collect();
            let first = &items[0].1;
            if let Some(rpc) = &ctx.comet {
                // GoatLightClient: submit the CometBFT height that makes the
                // block final (after any set change) before settling on it.
                let wanted = [(first.block_number, hash)];
                let _one = ctx.goat_prove_lock.lock().await;
                let proved =
                    crate::metis::goatprove::prove_blocks(&*ctx.store, rpc, &ctx.sink, &wanted)
                        .await;
                if let Ok(sent) = &proved {
                    sent.iter().for_each(record_spend);
                }
                if let Err(e) = proved {
                    if e.class() == ErrorClass::Permanent {
                        tracing::error!(chain = "goat", height = first.block_number, hash = %hash, "GOAT payments cannot settle: {e}");
                    } else {
                        warn!(
                            chain = "goat",
                            height = first.block_number,
                            "GOAT block not made final on Metis yet: {e}"
                        );
                    }
                    for (inv, _) in &items {
                        let mut inv = inv.clone();
                        inv.detail = Some(e.to_string());
                        left_out.push(inv);
                    }
                    continue;
                }
            }
            let built = async {
                let fields = goat_fields(first)?;
                let signatures =
                    block_attestation(&ctx.sink, domain, first.chain_id, &fields, &ctx.attesters)
                        .await?;
                let pairs: Vec<(&crate::metis::invoice::SignedInvoice, &GoatProof)> =
                    items.iter().map(|(i, p)| (&i.invoice, p)).collect();
                goat_group(goat_block(&fields, signatures), &pairs)
            }
            .await;
            match built {
                Ok(group) => {
                    groups.push(group);
                    included.extend(items.iter().map(|(i, _)| i.clone()));
                }
                Err(e) => {
                    for (inv, _) in items {
                        let mut inv = inv.clone();
                        inv.detail = Some(match &e {
                            SettleError::NotAttested { number, .. } => format!(
                                "GOAT block {number} awaits its attestation (no attester keys here: set {})",
                                ctx.config.metis.attester_keys_env
                            ),
                            other => other.to_string(),
                        });
                        left_out.push(inv);
                    }
                }
            }
        }
        save(ctx, &left_out)?;
        if included.is_empty() {
            continue;
        }
        let what = purpose(&included);
        let sent = ctx.sink.settle_goat(groups, &what).await;
        finish(ctx, included, sent).await?;
    }
    Ok(())
}

fn save(ctx: &Ctx, records: &[InvoiceRecord]) -> Result<(), TaskError> {
    if records.is_empty() {
        return Ok(());
    }
    ctx.records
        .save(records, None)
        .map_err(TaskError::permanent)
}

/// After a batch: each invoice's state on the contract says what happened
/// to it (settled by us, by someone else, or skipped and retried next round).
async fn finish(
    ctx: &Ctx,
    mut invoices: Vec<InvoiceRecord>,
    sent: Result<TxOutcome, crate::metis::sink::MetisError>,
) -> Result<(), TaskError> {
    let n = invoices.len() as u64;
    if let Ok(o) = &sent {
        record_spend(o);
        info!(tx = %o.tx_hash, gas = o.gas_used, payments = n, per_payment = o.gas_used / n.max(1), "settlement batch mined");
    }
    for inv in &mut invoices {
        let state = ctx
            .sink
            .invoice_state(inv.id)
            .await
            .map_err(TaskError::classed)?;
        // Another relayer's settlement, pending when ours was simulated, shows
        // as AlreadySettled before the chain's state does.
        let raced =
            matches!(&sent, Err(e) if e.revert().is_some_and(|r| r.name == "AlreadySettled"));
        match (&sent, state.is_settled() || raced) {
            (Ok(o), true) => {
                mark_settled(
                    inv,
                    o.tx_hash,
                    format!(
                        "gas {} for {n} payment(s), {} wei{}{}",
                        o.gas_used,
                        o.cost_wei(),
                        o.l1_fee
                            .map(|f| format!(" (L1 data fee {f} wei)"))
                            .unwrap_or_default(),
                        if state == InvoiceState::SettledServiceFailed {
                            "; its service hook failed"
                        } else {
                            ""
                        }
                    ),
                );
                if let Some(deep) = inv.deep_at_ms {
                    let secs =
                        inv.settled_at_ms.unwrap_or(deep).saturating_sub(deep) as f64 / 1000.0;
                    metrics::histogram!("gmrelay_depth_to_settlement_seconds", "rail" => inv.rail().name())
                        .record(secs);
                }
                metrics::counter!("gmrelay_settlements_total", "rail" => inv.rail().name())
                    .increment(1);
                info!(invoice = %inv.id, tx = %o.tx_hash, "invoice settled");
            }
            (Err(e), true) => {
                // Lost a race with another relayer: counted, not a fault.
                inv.stage = Stage::SettledByOther;
                inv.detail = Some(format!("settled by another relayer ({e})"));
                metrics::counter!("gmrelay_duplicates_refused_total").increment(1);
            }
            (Ok(o), false) => {
                inv.detail = Some(format!(
                    "{SKIPPED} {} (SettlementSkipped): sent alone next round",
                    o.tx_hash
                ));
            }
            (Err(e), false) => {
                inv.detail = Some(e.to_string());
            }
        }
    }
    save(ctx, &invoices)?;
    match sent {
        Err(e) if !invoices.iter().any(|i| i.stage == Stage::SettledByOther) => {
            Err(TaskError::classed(e))
        }
        _ => Ok(()),
    }
}
