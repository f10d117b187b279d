//! Sends Metis transactions the way Metis Andromeda's sequencer (l2geth)
//! takes them: **legacy EIP-155 transactions only**, priced at the node's
//! `eth_gasPrice` (refused above `metis.max_gas_price_gwei`), simulated first
//! so reverts come back as named custom errors, recorded in the outbox
//! before they are broadcast, replaced at the same nonce with a higher price
//! when stuck, and reported with their L1 data fee where the gas price
//! oracle predeploy exists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{address, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol;
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::outbox::{Outbox, OutboxEntry, TxState};
use super::sink::{map_transport, MetisError, TxOutcome};

/// Metis's gas price oracle predeploy (`getL1Fee(bytes)`).
pub const GAS_PRICE_ORACLE: Address = address!("420000000000000000000000000000000000000F");

sol! {
    #[sol(rpc)]
    interface IGasPriceOracle {
        function getL1Fee(bytes memory data) external view returns (uint256);
    }
}

/// How transactions are priced and watched.
#[derive(Debug, Clone, Copy)]
pub struct TxPolicy {
    /// Never pay more than this per gas, wei.
    pub max_gas_price: u128,
    /// A transaction without a receipt this long is replaced at the same
    /// nonce with a 12.5 % higher price (within the cap).
    pub replace_after: Duration,
    /// Give up waiting for a receipt after this long (the entry stays
    /// `sent`; the next reconcile picks it up).
    pub receipt_timeout: Duration,
    /// How often to ask for a receipt.
    pub poll: Duration,
}

impl Default for TxPolicy {
    fn default() -> Self {
        TxPolicy {
            max_gas_price: 100_000_000_000,
            replace_after: Duration::from_secs(30),
            receipt_timeout: Duration::from_secs(60),
            poll: Duration::from_millis(100),
        }
    }
}

/// What [`Sender::reconcile`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Entries found mined.
    pub mined: usize,
    /// Entries found failed, replaced or dropped.
    pub failed: usize,
    /// Entries rebroadcast and still waiting.
    pub pending: usize,
}

/// Signs and sends legacy transactions from one account.
pub struct Sender {
    provider: DynProvider,
    wallet: EthereumWallet,
    from: Address,
    url: String,
    chain_id: u64,
    policy: TxPolicy,
    outbox: Option<Arc<Outbox>>,
    /// One nonce at a time from this process: signed and broadcast in order.
    lock: Mutex<()>,
    oracle: tokio::sync::OnceCell<bool>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("from", &self.from)
            .field("url", &self.url)
            .field("policy", &self.policy)
            .finish()
    }
}

fn rpc_err(url: &str, what: &str, message: impl Into<String>) -> MetisError {
    MetisError::Rpc {
        endpoint: url.to_string(),
        what: what.to_string(),
        message: message.into(),
    }
}

impl Sender {
    /// A sender for `from` (the wallet's default signer) through `provider`
    /// (a plain provider: this type fills and signs itself).
    pub fn new(
        provider: DynProvider,
        wallet: EthereumWallet,
        url: &str,
        chain_id: u64,
        policy: TxPolicy,
        outbox: Option<Arc<Outbox>>,
    ) -> Self {
        let from =
            alloy::network::NetworkWallet::<alloy::network::Ethereum>::default_signer_address(
                &wallet,
            );
        Sender {
            provider,
            wallet,
            from,
            url: url.to_string(),
            chain_id,
            policy,
            outbox,
            lock: Mutex::new(()),
            oracle: tokio::sync::OnceCell::new(),
        }
    }

    /// The signing address.
    pub fn address(&self) -> Address {
        self.from
    }

    /// The outbox, when there is one.
    pub fn outbox(&self) -> Option<&Arc<Outbox>> {
        self.outbox.as_ref()
    }

    fn record(&self, e: &OutboxEntry) -> Result<(), MetisError> {
        if let Some(o) = &self.outbox {
            o.save(e)
                .map_err(|err| rpc_err(&self.url, &e.what, format!("outbox: {err}")))?;
        }
        Ok(())
    }

    /// The node's gas price, refused above the cap.
    async fn gas_price(&self, what: &str) -> Result<u128, MetisError> {
        let price = self
            .provider
            .get_gas_price()
            .await
            .map_err(|e| map_transport(&self.url, "eth_gasPrice", e))?;
        if price > self.policy.max_gas_price {
            return Err(MetisError::GasPriceAboveCap {
                what: what.to_string(),
                price,
                cap: self.policy.max_gas_price,
            });
        }
        Ok(price)
    }

    async fn sign(&self, req: TransactionRequest) -> Result<(B256, Bytes), MetisError> {
        let env = req
            .build(&self.wallet)
            .await
            .map_err(|e| rpc_err(&self.url, "signing", e.to_string()))?;
        debug_assert!(env.is_legacy(), "Metis takes legacy transactions only");
        Ok((*env.tx_hash(), Bytes::from(env.encoded_2718())))
    }

    async fn broadcast(&self, what: &str, raw: &Bytes) -> Result<(), MetisError> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string().to_lowercase();
                // A rebroadcast of what the node already has is not an error.
                if text.contains("already known") || text.contains("already imported") {
                    return Ok(());
                }
                Err(map_transport(&self.url, what, e))
            }
        }
    }

    /// The L1 data fee Metis charges for `raw`, where the oracle exists.
    async fn l1_fee(&self, raw: &Bytes) -> Option<U256> {
        let present = *self
            .oracle
            .get_or_init(|| async {
                self.provider
                    .get_code_at(GAS_PRICE_ORACLE)
                    .await
                    .map(|c| !c.is_empty())
                    .unwrap_or(false)
            })
            .await;
        if !present {
            return None;
        }
        IGasPriceOracle::new(GAS_PRICE_ORACLE, self.provider.clone())
            .getL1Fee(raw.clone())
            .call()
            .await
            .ok()
    }

    /// Simulates, prices, signs, records and sends `req`, then waits for
    /// its receipt (replacing it when stuck). `purpose` is for `/status`.
    pub async fn send(
        &self,
        what: &str,
        purpose: &str,
        req: TransactionRequest,
    ) -> Result<TxOutcome, MetisError> {
        // Nonces are handed out one transaction at a time, up to the
        // broadcast; receipts are awaited concurrently, so several
        // transactions can share a block.
        let one_at_a_time = self.lock.lock().await;
        let req = req.with_from(self.from).with_chain_id(self.chain_id);
        let estimate = self
            .provider
            .estimate_gas(req.clone())
            .await
            .map_err(|e| map_transport(&self.url, what, e))?;
        let gas_limit = estimate + estimate / 5 + 5_000;
        let price = self.gas_price(what).await?;
        let nonce = self.next_nonce(what).await?;
        let mut entry = match &self.outbox {
            Some(o) => o
                .plan(what, purpose)
                .map_err(|e| rpc_err(&self.url, what, format!("outbox: {e}")))?,
            // Without an outbox (one-off commands) the entry lives in memory.
            None => OutboxEntry::planned(0, what, purpose),
        };
        let base = req.with_gas_limit(gas_limit).with_nonce(nonce);
        let (hash, raw) = self.sign(base.clone().with_gas_price(price)).await?;
        entry.state = TxState::Sent;
        entry.nonce = Some(nonce);
        entry.gas_price = Some(price.to_string());
        entry.hashes.push(hash);
        entry.raw = Some(raw.clone());
        // The record lands before the broadcast: a crash in between leaves
        // a `sent` entry that reconcile rebroadcasts or finds mined.
        self.record(&entry)?;
        if let Err(e) = self.broadcast(what, &raw).await {
            entry.state = TxState::Failed;
            entry.error = Some(e.to_string());
            self.record(&entry)?;
            return Err(e);
        }
        info!(what, purpose, tx = %hash, nonce, gas_price = price, "Metis transaction sent");
        drop(one_at_a_time);
        self.wait(&mut entry, base, price).await
    }

    /// The nonce for the next transaction: the node's pending count, or
    /// past our own open outbox entries when the node has not seen them.
    async fn next_nonce(&self, what: &str) -> Result<u64, MetisError> {
        let pending = self
            .provider
            .get_transaction_count(self.from)
            .pending()
            .await
            .map_err(|e| map_transport(&self.url, what, e))?;
        let ours = match &self.outbox {
            Some(o) => o
                .open_entries()
                .map_err(|e| rpc_err(&self.url, what, format!("outbox: {e}")))?
                .iter()
                .filter_map(|e| e.nonce.map(|n| n + 1))
                .max()
                .unwrap_or(0),
            None => 0,
        };
        Ok(pending.max(ours))
    }

    /// Waits for any of `entry`'s hashes to be mined, replacing the
    /// transaction at the same nonce with a higher price when it is stuck.
    async fn wait(
        &self,
        entry: &mut OutboxEntry,
        base: TransactionRequest,
        mut price: u128,
    ) -> Result<TxOutcome, MetisError> {
        let what = entry.what.clone();
        let started = Instant::now();
        let mut last_sent = Instant::now();
        loop {
            if let Some((hash, r)) = self.record_receipt(entry).await? {
                if entry.state == TxState::Failed {
                    return Err(MetisError::TxFailed {
                        what,
                        tx_hash: hash,
                    });
                }
                let l1_fee = self.l1_fee(&entry.raw.clone().unwrap_or_default()).await;
                return Ok(TxOutcome {
                    tx_hash: hash,
                    gas_used: r.gas_used,
                    block_number: r.block_number,
                    gas_price: r.effective_gas_price,
                    l1_fee,
                    contract_address: r.contract_address,
                });
            }
            if started.elapsed() >= self.policy.receipt_timeout {
                return Err(MetisError::Pending {
                    what,
                    tx_hash: *entry.hashes.last().expect("one hash at least"),
                    waited: self.policy.receipt_timeout,
                });
            }
            if last_sent.elapsed() >= self.policy.replace_after {
                let node = self.gas_price(&what).await.unwrap_or(price);
                let bumped = (price + price / 8).max(node).min(self.policy.max_gas_price);
                if bumped > price {
                    let (hash, raw) = self.sign(base.clone().with_gas_price(bumped)).await?;
                    warn!(what = %what, old = price, new = bumped, tx = %hash, "no receipt yet: replaced at the same nonce with a higher gas price");
                    price = bumped;
                    entry.gas_price = Some(price.to_string());
                    entry.hashes.push(hash);
                    entry.raw = Some(raw.clone());
                    self.record(entry)?;
                    self.broadcast(&what, &raw).await?;
                    metrics::counter!("gmrelay_metis_replacements_total").increment(1);
                } else if let Some(raw) = entry.raw.clone() {
                    // At the cap: resend in case the node dropped it.
                    let _ = self.broadcast(&what, &raw).await;
                }
                last_sent = Instant::now();
            }
            tokio::time::sleep(self.policy.poll).await;
        }
    }

    /// Looks for a receipt of any of `e`'s hashes (newest first); when one
    /// is mined, records `e` as mined (status 1) or failed (status 0) and
    /// returns the hash and the receipt.
    async fn record_receipt(
        &self,
        e: &mut OutboxEntry,
    ) -> Result<Option<(B256, TransactionReceipt)>, MetisError> {
        for hash in e.hashes.clone().into_iter().rev() {
            let receipt = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(|err| map_transport(&self.url, &e.what, err))?;
            if let Some(r) = receipt {
                e.mined_hash = Some(hash);
                e.gas_used = Some(r.gas_used);
                e.state = if r.status() {
                    TxState::Mined
                } else {
                    e.error = Some("mined with status 0".into());
                    TxState::Failed
                };
                self.record(e)?;
                return Ok(Some((hash, r)));
            }
        }
        Ok(None)
    }

    /// Looks up the receipts of the open outbox entries once, without
    /// waiting or rebroadcasting, and marks the mined ones (for entries whose
    /// sender stopped waiting: a receipt that came after the timeout).
    pub async fn refresh_open(&self) -> Result<usize, MetisError> {
        let Some(outbox) = &self.outbox else {
            return Ok(0);
        };
        let open = outbox
            .open_entries()
            .map_err(|e| rpc_err(&self.url, "outbox", e.to_string()))?;
        let mut done = 0;
        for mut e in open.into_iter().filter(|e| e.state == TxState::Sent) {
            if self.record_receipt(&mut e).await?.is_some() {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Settles every open outbox entry against the chain: mined ones are
    /// marked, ones whose nonce was used by another transaction are marked
    /// failed, the others are rebroadcast from their raw bytes and waited
    /// for. Run before any new work after a start.
    pub async fn reconcile(&self) -> Result<ReconcileReport, MetisError> {
        let Some(outbox) = &self.outbox else {
            return Ok(ReconcileReport::default());
        };
        let _one_at_a_time = self.lock.lock().await;
        let mut report = ReconcileReport::default();
        let open = outbox
            .open_entries()
            .map_err(|e| rpc_err(&self.url, "reconcile", format!("outbox: {e}")))?;
        for mut e in open {
            let what = e.what.clone();
            let (Some(nonce), Some(raw)) = (e.nonce, e.raw.clone()) else {
                e.state = TxState::Failed;
                e.error = Some("never broadcast (planned when gmrelay stopped)".into());
                self.record(&e)?;
                report.failed += 1;
                continue;
            };
            if self.record_receipt(&mut e).await?.is_some() {
                if e.state == TxState::Mined {
                    report.mined += 1;
                } else {
                    report.failed += 1;
                }
                continue;
            }
            let used = self
                .provider
                .get_transaction_count(self.from)
                .latest()
                .await
                .map_err(|err| map_transport(&self.url, &what, err))?;
            if used > nonce {
                e.state = TxState::Failed;
                e.error = Some(format!(
                    "nonce {nonce} was used by another transaction (replaced or dropped)"
                ));
                self.record(&e)?;
                report.failed += 1;
                continue;
            }
            info!(what = %what, nonce, "rebroadcasting a transaction sent before the restart");
            self.broadcast(&what, &raw).await?;
            let price: u128 = e
                .gas_price
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            // Re-signing needs the request; rebuild it from the raw bytes.
            let base = request_from_raw(&raw)
                .unwrap_or_default()
                .with_from(self.from);
            match self.wait(&mut e, base, price).await {
                Ok(_) => report.mined += 1,
                Err(MetisError::Pending { .. }) => report.pending += 1,
                Err(_) => report.failed += 1,
            }
        }
        Ok(report)
    }
}

/// The request a signed legacy transaction was made from (for a replacement).
fn request_from_raw(raw: &[u8]) -> Option<TransactionRequest> {
    use alloy::consensus::{Transaction, TxEnvelope};
    use alloy::eips::eip2718::Decodable2718;
    let env = TxEnvelope::decode_2718(&mut &raw[..]).ok()?;
    let mut req = TransactionRequest::default()
        .with_input(env.input().clone())
        .with_value(env.value())
        .with_gas_limit(env.gas_limit())
        .with_nonce(env.nonce());
    if let Some(to) = env.to() {
        req = req.with_to(to);
    }
    if let Some(id) = env.chain_id() {
        req = req.with_chain_id(id);
    }
    Some(req)
}
