//! A real anvil for the GOAT integration tests: `--chain-id 2345` on a free
//! loopback port, killed on drop. Self-contained: resolves the binary from
//! `ANVIL_EXE`, then `$CARGO_MANIFEST_DIR/tools/node_modules/.bin/anvil`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The anvil binary.
pub fn anvil_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("ANVIL_EXE") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/.bin/anvil")
}

/// A running anvil.
pub struct TestAnvil {
    child: Child,
    /// The port.
    pub port: u16,
    http: reqwest::Client,
}

impl TestAnvil {
    /// Starts anvil with chain id 2345 and `extra` arguments.
    pub async fn start(extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = anvil_exe();
        let child = Command::new(&exe)
            .args([
                "--chain-id",
                "2345",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (set ANVIL_EXE)", exe.display()));
        let anvil = TestAnvil {
            child,
            port,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while anvil.try_rpc("eth_chainId", json!([])).await.is_err() {
            assert!(Instant::now() < deadline, "anvil did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anvil
    }

    /// The HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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

impl Drop for TestAnvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
