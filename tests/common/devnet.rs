//! A devnet for integration tests (`gmrelay devnet up` in a temporary
//! directory, brought down on drop), Metis's transaction rules as a JSON-RPC
//! proxy, and reading settlements from Metis.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, B256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use gmrelay::metis::bindings::PaymentSettlement;
use serde_json::{json, Value};

use super::cli::{gmrelay, text};
use super::fakenode::{forward, FakeNode, ProxyLog};

fn ok(args: &[&str]) -> String {
    let o = gmrelay(args, &[]);
    assert!(o.status.success(), "gmrelay {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A devnet in a temporary directory, brought down on drop.
pub struct Devnet {
    dir: tempfile::TempDir,
}

impl Devnet {
    pub fn up() -> Self {
        Self::up_with(&[])
    }
    /// `devnet up` with extra arguments (`--goat-consensus`).
    pub fn up_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["devnet", "up", "--dir", dir.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        ok(&args);
        Devnet { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn d(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
    pub fn file(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("devnet.json")).unwrap()).unwrap()
    }
    /// The Metis anvil's URL.
    pub fn metis_url(&self) -> String {
        self.file()["metis_rpc_url"].as_str().unwrap().to_string()
    }
    /// PaymentSettlement's address.
    pub fn settlement(&self) -> Address {
        self.file()["payment_settlement"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = gmrelay(&["devnet", "down", "--dir", self.d()], &[]);
    }
}

/// Metis's rules in front of the Metis anvil: legacy transactions only,
/// priced within 25 % of `eth_gasPrice`; no `eth_sendTransaction`.
pub fn metis_rules_proxy(upstream: String, log: Arc<Mutex<ProxyLog>>) -> FakeNode {
    let up = upstream.clone();
    FakeNode::proxy(
        upstream,
        move |method, params| match method {
            "eth_sendTransaction" => Some("Metis nodes hold no keys".into()),
            "eth_sendRawTransaction" => {
                let raw = params[0].as_str().unwrap_or_default();
                let bytes = hex::decode(raw.trim_start_matches("0x")).ok()?;
                let env = TxEnvelope::decode_2718(&mut bytes.as_slice()).ok()?;
                if !env.is_legacy() {
                    return Some(format!(
                        "transaction type {} not supported (legacy only)",
                        env.tx_type() as u8
                    ));
                }
                let oracle = forward(
                    &up,
                    &json!({"jsonrpc": "2.0", "id": 1, "method": "eth_gasPrice", "params": []}),
                )
                .ok()?;
                let oracle =
                    u128::from_str_radix(oracle["result"].as_str()?.trim_start_matches("0x"), 16)
                        .ok()?;
                let price = env.gas_price()?;
                if price > oracle + oracle / 4 || price + price / 4 < oracle {
                    return Some(format!(
                        "gas price {price} too far from the oracle's {oracle}"
                    ));
                }
                None
            }
            _ => None,
        },
        log,
    )
}

/// The transactions that emitted `InvoiceSettled` for `id`.
pub async fn settled_in(metis: &str, settlement: Address, id: B256) -> Vec<B256> {
    let p = ProviderBuilder::new().connect_http(metis.parse().unwrap());
    p.get_logs(
        &Filter::new()
            .address(settlement)
            .event_signature(PaymentSettlement::InvoiceSettled::SIGNATURE_HASH)
            .topic1(id)
            .from_block(0),
    )
    .await
    .unwrap()
    .into_iter()
    .filter_map(|l| l.transaction_hash)
    .collect()
}
