//! The settlement worker: for each open invoice, find its payment, wait for
//! its depth, relay what the contracts lack (Bitcoin headers, the GOAT
//! attestation) and settle. The contracts' state decides before every
//! transaction, so a restart or a second relayer never settles twice.

use std::collections::HashMap;

use alloy::primitives::{Address, B256};
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, ScriptBuf, Txid};
use tracing::{info, info_span, warn, Instrument};

use super::records::{InvoiceRecord, PaymentRef, Stage};
use super::{now_ms, Ctx, TaskError};
use crate::btc::proof::find_payment;
use crate::btc::source::BtcSource;
use crate::goat::payment::PaymentPolicy;
use crate::metis::attest::{attest_goat, AttestDomain};
use crate::metis::relay::{relay_headers, RelayOptions};
use crate::metis::settle::{settle, SettleError, SettleOptions};
use crate::metis::sink::MetisSink;
use crate::proof::ProofFile;
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

/// One round over every open invoice.
pub async fn round(ctx: &Ctx) -> Result<(), TaskError> {
    let all = ctx.records.invoices().map_err(TaskError::permanent)?;
    let open: Vec<InvoiceRecord> = all.iter().filter(|r| r.stage.is_open()).cloned().collect();
    if open.is_empty() {
        // Nothing changes in an idle round: gauges from what was read.
        stage_gauges(&all);
        return Ok(());
    }
    let btc_found = scan_btc(ctx, &open).await?;
    // Every open invoice at once: their Metis transactions share blocks.
    let steps = open.into_iter().map(|inv| {
        let found = btc_found.get(&inv.id).cloned();
        step(ctx, inv, found)
    });
    for r in futures::future::join_all(steps).await {
        r?;
    }
    update_metrics(ctx)
}

/// One invoice's step; its record is saved when it changed.
async fn step(
    ctx: &Ctx,
    mut inv: InvoiceRecord,
    found: Option<PaymentRef>,
) -> Result<(), TaskError> {
    let span = info_span!("invoice", invoice = %inv.id, rail = %inv.rail);
    let before = inv.clone();
    let result = async {
        match inv.rail {
            Rail::Btc => btc_invoice(ctx, &mut inv, found.as_ref()).await,
            Rail::Goat => goat_invoice(ctx, &mut inv).await,
        }
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
            .save(&[inv], None)
            .map_err(TaskError::permanent)?;
    }
    if let Err(e) = result {
        if news {
            warn!(error = %e.error, transient = e.transient, "invoice step failed");
        }
    }
    Ok(())
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
/// expired. Returns whether the invoice is still to be worked on.
async fn check_on_chain(ctx: &Ctx, inv: &mut InvoiceRecord) -> Result<bool, TaskError> {
    let view = ctx.sink.invoice(inv.id).await.map_err(TaskError::classed)?;
    match view {
        None => {
            inv.detail = Some("not (or no longer) on Metis: waiting for it".into());
            Ok(false)
        }
        Some(v) if v.status == 2 => {
            if inv.stage != Stage::Settled {
                // Ours, sent before a restart? The outbox knows.
                if let Some(tx) = our_settlement(ctx, inv.id)? {
                    inv.stage = Stage::Settled;
                    inv.settled_tx = Some(tx);
                    inv.settled_at_ms.get_or_insert(now_ms());
                    inv.detail = Some("settled by this relayer (before a restart)".into());
                } else {
                    inv.stage = Stage::SettledByOther;
                    inv.detail = Some("settled by another relayer".into());
                    metrics::counter!("gmrelay_duplicates_skipped_total").increment(1);
                    info!("settled by another relayer: skipped");
                }
            }
            Ok(false)
        }
        Some(v) => {
            let now = ctx.sink.now().await.map_err(TaskError::classed)?;
            if now > v.expiry {
                inv.stage = Stage::Expired;
                inv.detail = Some(format!("expired at {} (Metis time {now})", v.expiry));
                return Ok(false);
            }
            Ok(true)
        }
    }
}

/// The relay task's round: while a Bitcoin invoice is open, keep
/// BtcLightClient up to our chain, so that when a payment reaches its depth
/// only the newest headers and the settlement are left to send.
pub async fn relay_round(ctx: &Ctx) -> Result<(), TaskError> {
    let any_btc = ctx
        .records
        .invoices()
        .map_err(TaskError::permanent)?
        .iter()
        .any(|r| r.rail == Rail::Btc && r.stage.is_open());
    if any_btc {
        relay(ctx).await?;
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
    let purpose = format!("invoice {id}");
    Ok(outbox
        .all()
        .map_err(TaskError::permanent)?
        .into_iter()
        .find(|e| {
            e.purpose == purpose
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
    let wanted: HashMap<[u8; 32], &InvoiceRecord> = open
        .iter()
        .filter(|r| r.rail == Rail::Btc && r.payment.is_none())
        .map(|r| (r.id.0, r))
        .collect();
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
                for out in &tx.output {
                    if !out.script_pubkey.is_op_return() {
                        continue;
                    }
                    for ins in out.script_pubkey.instructions().skip(1).flatten() {
                        let bitcoin::script::Instruction::PushBytes(p) = ins else {
                            continue;
                        };
                        let Ok(id) = <[u8; 32]>::try_from(p.as_bytes()) else {
                            continue;
                        };
                        let Some(inv) = wanted.get(&id) else { continue };
                        let script = ScriptBuf::from_bytes(inv.payee.to_vec());
                        let amount = u64::try_from(inv.amount).unwrap_or(u64::MAX);
                        match find_payment(tx, &script, amount, &id) {
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
) -> Result<(), TaskError> {
    if let Some(p) = found {
        if inv.payment.is_none() {
            inv.payment = Some(p.clone());
            inv.stage = Stage::Confirming;
            inv.detail = None;
        }
    }
    let Some(p) = inv.payment.clone() else {
        return Ok(());
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
        return Ok(());
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
        return Ok(());
    }
    if !deep_enough(ctx, inv).await? {
        return Ok(());
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
    // The contract needs descendants of the payment's block: relay what it lacks.
    relay(ctx).await?;
    settle_with(ctx, inv, ProofFile::bitcoin(proof)).await
}

async fn goat_invoice(ctx: &Ctx, inv: &mut InvoiceRecord) -> Result<(), TaskError> {
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
            .authorization_used(inv.asset, inv.id, from, to)
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
        return Ok(());
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
        return Ok(());
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
        return Ok(());
    }
    if !deep_enough(ctx, inv).await? {
        return Ok(());
    }
    let tx: B256 =
        p.tx.parse()
            .map_err(|_| TaskError::permanent(anyhow::anyhow!("bad tx hash in record")))?;
    let payee = Address::try_from(inv.payee.as_ref())
        .map_err(|_| TaskError::permanent(anyhow::anyhow!("invoice payee is not 20 bytes")))?;
    let policy = PaymentPolicy {
        tokens: vec![inv.asset],
        payees: vec![payee],
        allow_plain_transfers: false,
    };
    let proof =
        crate::goat::proof::prove_payment(&*ctx.goat, store, ctx.config.goat.chain_id, tx, &policy)
            .await
            .map_err(|e| TaskError::transient(anyhow::anyhow!("{e}")))?;
    if !ctx
        .sink
        .goat_is_known(proof.block_hash)
        .await
        .map_err(TaskError::classed)?
    {
        if ctx.attesters.is_empty() {
            inv.detail = Some(format!(
                "GOAT block {} awaits its attestation (no attester keys here: set {})",
                proof.block_number, ctx.config.metis.attester_keys_env
            ));
            return Ok(());
        }
        let domain = AttestDomain {
            metis_chain_id: ctx.config.metis.chain_id,
            store: ctx.sink.contracts().goat_header_store,
        };
        let r = attest_goat(
            store,
            &ctx.sink,
            domain,
            proof.block_number,
            &ctx.attesters,
            &[],
            true,
        )
        .await
        .map_err(TaskError::classed)?;
        if let Some(o) = r.submitted {
            record_spend(&o);
            info!(number = r.number, gas = o.gas_used, tx = %o.tx_hash, "GOAT block attested");
        }
    }
    settle_with(ctx, inv, ProofFile::goat(proof)).await
}

fn record_spend(o: &crate::metis::sink::TxOutcome) {
    metrics::counter!("gmrelay_metis_gas_total").increment(o.gas_used);
    let fee = o.cost_wei();
    metrics::counter!("gmrelay_metis_fees_wei_total")
        .increment(u64::try_from(fee).unwrap_or(u64::MAX));
}

async fn settle_with(ctx: &Ctx, inv: &mut InvoiceRecord, file: ProofFile) -> Result<(), TaskError> {
    // Our earlier settlement of it still waits for its receipt (its sender
    // stopped waiting): never send a second one next to it.
    if let Some(outbox) = ctx.sink.sender().and_then(|s| s.outbox().cloned()) {
        let purpose = format!("invoice {}", inv.id);
        let pending = outbox
            .open_entries()
            .map_err(TaskError::permanent)?
            .into_iter()
            .find(|e| e.purpose == purpose && e.what.starts_with("PaymentSettlement.settle"));
        if let Some(e) = pending {
            inv.detail = Some(format!(
                "our settlement {} is pending",
                e.hashes.last().map(|h| h.to_string()).unwrap_or_default()
            ));
            return Ok(());
        }
    }
    let options = SettleOptions {
        network: ctx.config.btc.network,
        skip_checks: false,
    };
    match settle(&*ctx.store, &ctx.sink, &file, inv.id, options).await {
        Ok(r) => {
            record_spend(&r.outcome);
            inv.stage = Stage::Settled;
            inv.settled_tx = Some(r.outcome.tx_hash);
            inv.settled_at_ms = Some(now_ms());
            inv.detail = Some(format!(
                "gas {}, {} wei{}",
                r.outcome.gas_used,
                r.outcome.cost_wei(),
                r.outcome
                    .l1_fee
                    .map(|f| format!(" (L1 data fee {f} wei)"))
                    .unwrap_or_default()
            ));
            if let Some(deep) = inv.deep_at_ms {
                let secs = inv.settled_at_ms.unwrap_or(deep).saturating_sub(deep) as f64 / 1000.0;
                metrics::histogram!("gmrelay_depth_to_settlement_seconds", "rail" => inv.rail.name())
                    .record(secs);
            }
            metrics::counter!("gmrelay_settlements_total", "rail" => inv.rail.name()).increment(1);
            info!(tx = %r.outcome.tx_hash, gas = r.outcome.gas_used, "invoice settled");
            Ok(())
        }
        Err(SettleError::AlreadySettled(_)) => {
            inv.stage = Stage::SettledByOther;
            inv.detail = Some("settled by another relayer".into());
            metrics::counter!("gmrelay_duplicates_skipped_total").increment(1);
            Ok(())
        }
        Err(e) if e.revert_name() == Some("AlreadySettled") => {
            // Another relayer's settlement landed between our check and ours.
            inv.stage = Stage::SettledByOther;
            inv.detail = Some("settled by another relayer (ours refused on-chain)".into());
            metrics::counter!("gmrelay_duplicates_refused_total").increment(1);
            Ok(())
        }
        Err(e @ SettleError::NotPaid { .. }) | Err(e @ SettleError::GoatNotPaid { .. }) => {
            inv.stage = Stage::Failed;
            Err(TaskError::permanent(e))
        }
        Err(e) => {
            // Lost a race with another relayer (our transaction reverted
            // on-chain)? Counted, not a fault.
            if let Ok(Some(v)) = ctx.sink.invoice(inv.id).await {
                if v.status == 2 {
                    inv.stage = Stage::SettledByOther;
                    inv.detail = Some(format!("settled by another relayer ({e})"));
                    metrics::counter!("gmrelay_duplicates_refused_total").increment(1);
                    return Ok(());
                }
            }
            Err(TaskError::classed(e))
        }
    }
}
