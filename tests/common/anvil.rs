//! A real anvil for the GOAT integration tests: `--chain-id 2345` on a free
//! loopback port, killed on drop (the library's devnet `Anvil`, which finds
//! the binary through `ANVIL_EXE`, then `tools/node_modules/.bin/anvil`).

#![allow(dead_code)]

use serde_json::{json, Value};

/// A running anvil (process management is the library's
/// `gmrelay::goat::devnet::Anvil`), with JSON-RPC helpers for tests.
pub struct TestAnvil {
    inner: gmrelay::goat::devnet::Anvil,
    /// The port.
    pub port: u16,
    http: reqwest::Client,
}

impl TestAnvil {
    /// Starts anvil with chain id 2345 and `extra` arguments.
    pub async fn start(extra: &[&str]) -> Self {
        let inner = gmrelay::goat::devnet::Anvil::start(2345, extra)
            .await
            .unwrap_or_else(|e| panic!("{e} (set ANVIL_EXE)"));
        TestAnvil {
            port: inner.port,
            inner,
            http: reqwest::Client::new(),
        }
    }

    /// The HTTP URL.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .http
            .post(self.url())
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if let Some(err) = resp.get("error") {
            return Err(format!("{method}: {err}"));
        }
        Ok(resp["result"].clone())
    }

    /// A JSON-RPC call that must succeed.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Mines `n` blocks.
    pub async fn mine(&self, n: u64) {
        self.rpc("anvil_mine", json!([format!("{n:#x}")])).await;
    }

    /// The head number.
    pub async fn head(&self) -> u64 {
        let v = self.rpc("eth_blockNumber", json!([])).await;
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}
