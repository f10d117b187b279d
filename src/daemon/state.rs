//! What the daemon's tasks report, for `/readyz`, `/status` and `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One followed chain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainStatus {
    /// The node's URL.
    pub endpoint: String,
    /// Our tip height.
    pub tip: Option<u64>,
    /// Our tip hash.
    pub tip_hash: Option<String>,
    /// The finalized height (GOAT) or the height with the required
    /// confirmations (Bitcoin).
    pub finalized: Option<u64>,
    /// The node's height.
    pub node_height: Option<u64>,
    /// Node height minus our tip (0 when caught up).
    pub lag: Option<u64>,
    /// Whether the last round reached the node.
    pub reachable: bool,
    /// The last error, if the last round failed.
    pub error: Option<String>,
    /// Seconds since the last successful round.
    pub since_ok_secs: Option<u64>,
    #[serde(skip)]
    last_ok: Option<Instant>,
}

/// The shared state.
#[derive(Debug, Default)]
pub struct DaemonState {
    chains: RwLock<BTreeMap<&'static str, ChainStatus>>,
    signer: RwLock<Option<(String, Option<String>)>>,
    /// Unfunded when the balance is below this (wei, decimal).
    pub min_balance_wei: RwLock<u128>,
    signer_balance: RwLock<Option<u128>>,
}

impl DaemonState {
    /// A new state behind an `Arc`.
    pub fn new() -> Arc<Self> {
        Arc::new(DaemonState::default())
    }

    /// Records a successful round of `chain`.
    pub fn chain_ok(
        &self,
        chain: &'static str,
        endpoint: &str,
        tip: (u64, String),
        finalized: Option<u64>,
        node_height: u64,
    ) {
        let mut map = self.chains.write().expect("state lock");
        let c = map.entry(chain).or_default();
        c.endpoint = endpoint.to_string();
        c.tip = Some(tip.0);
        c.tip_hash = Some(tip.1);
        c.finalized = finalized;
        c.node_height = Some(node_height);
        c.lag = Some(node_height.saturating_sub(tip.0));
        c.reachable = true;
        c.error = None;
        c.last_ok = Some(Instant::now());
        metrics::gauge!("gmrelay_lag_blocks", "chain" => chain)
            .set(node_height.saturating_sub(tip.0) as f64);
        metrics::gauge!("gmrelay_node_up", "chain" => chain).set(1.0);
    }

    /// Records a failed round of `chain`.
    pub fn chain_err(&self, chain: &'static str, endpoint: &str, error: String, reachable: bool) {
        let mut map = self.chains.write().expect("state lock");
        let c = map.entry(chain).or_default();
        c.endpoint = endpoint.to_string();
        c.reachable = reachable;
        c.error = Some(error);
        metrics::gauge!("gmrelay_node_up", "chain" => chain).set(if reachable { 1.0 } else { 0.0 });
    }

    /// Every chain's status.
    pub fn chains(&self) -> BTreeMap<&'static str, ChainStatus> {
        let mut map = self.chains.read().expect("state lock").clone();
        for c in map.values_mut() {
            c.since_ok_secs = c.last_ok.map(|t| t.elapsed().as_secs());
        }
        map
    }

    /// Records the signer and its balance.
    pub fn signer(&self, address: String, balance: Option<u128>) {
        *self.signer.write().expect("state lock") = Some((address, balance.map(|b| b.to_string())));
        *self.signer_balance.write().expect("state lock") = balance;
        if let Some(b) = balance {
            metrics::gauge!("gmrelay_signer_balance_wei").set(b as f64);
        }
    }

    /// The signer's address and balance (wei, decimal).
    pub fn signer_status(&self) -> Option<(String, Option<String>)> {
        self.signer.read().expect("state lock").clone()
    }

    /// Why the daemon is not ready, if it is not: every source reachable and
    /// caught up (its last round succeeded within `stale`), signer funded.
    pub fn not_ready(&self, expected: &[&'static str], stale: Duration) -> Vec<String> {
        let map = self.chains.read().expect("state lock");
        let mut why = Vec::new();
        for chain in expected {
            match map.get(chain) {
                None => why.push(format!("{chain}: no round finished yet")),
                Some(c) => {
                    if let Some(e) = &c.error {
                        why.push(format!("{chain}: {e}"));
                    } else if c.last_ok.is_none_or(|t| t.elapsed() > stale) {
                        why.push(format!("{chain}: no successful round for {stale:?}"));
                    }
                }
            }
        }
        let min = *self.min_balance_wei.read().expect("state lock");
        match *self.signer_balance.read().expect("state lock") {
            Some(b) if b < min => why.push(format!(
                "signer balance {b} wei is below metis.min_signer_balance ({min} wei)"
            )),
            None => why.push("signer balance unknown".into()),
            _ => {}
        }
        why
    }
}
