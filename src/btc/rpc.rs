//! bitcoind's JSON-RPC interface as a [`BtcSource`].
//!
//! Calls are batched (one HTTP request for a whole range of heights), carry a
//! timeout, authenticate with a cookie file (re-read when bitcoind restarts)
//! or a user and password, and report errors classed Transient or Permanent.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::{Block, BlockHash, Txid};
use serde::Deserialize;
use serde_json::{json, Value};

use super::source::{BtcSource, ChainInfo, SourceError};

/// How to authenticate to bitcoind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (a proxy adds them).
    None,
    /// bitcoind's `.cookie` file.
    Cookie(PathBuf),
    /// `rpcuser` / `rpcpassword`.
    UserPass(String, String),
}

/// A bitcoind JSON-RPC client.
#[derive(Debug)]
pub struct BitcoindRpc {
    url: String,
    auth: Auth,
    credentials: RwLock<Option<(String, String)>>,
    http: reqwest::Client,
    max_batch: usize,
}

#[derive(Deserialize)]
struct RpcResponse {
    result: Option<Value>,
    error: Option<RpcErrorObj>,
    id: Option<Value>,
}

#[derive(Deserialize)]
struct RpcErrorObj {
    code: i64,
    message: String,
}

impl BitcoindRpc {
    /// A client for `url` (e.g. `http://127.0.0.1:18443`) with a per-request timeout.
    pub fn new(url: &str, auth: Auth, timeout: Duration) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| SourceError::Unavailable {
                endpoint: url.to_string(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(BitcoindRpc {
            url: url.trim_end_matches('/').to_string(),
            auth,
            credentials: RwLock::new(None),
            http,
            max_batch: 2000,
        })
    }

    fn load_credentials(&self, force: bool) -> Result<Option<(String, String)>, SourceError> {
        if !force {
            if let Some(c) = self.credentials.read().ok().and_then(|c| c.clone()) {
                return Ok(Some(c));
            }
        }
        let creds = match &self.auth {
            Auth::None => return Ok(None),
            Auth::UserPass(u, p) => (u.clone(), p.clone()),
            Auth::Cookie(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SourceError::Auth {
                    endpoint: self.url.clone(),
                    message: format!("cannot read cookie file {}: {e}", path.display()),
                })?;
                let text = text.trim();
                let (u, p) = text.split_once(':').ok_or_else(|| SourceError::Auth {
                    endpoint: self.url.clone(),
                    message: format!("cookie file {} is not `user:password`", path.display()),
                })?;
                (u.to_string(), p.to_string())
            }
        };
        if let Ok(mut slot) = self.credentials.write() {
            *slot = Some(creds.clone());
        }
        Ok(Some(creds))
    }

    fn unavailable(&self, message: impl Into<String>) -> SourceError {
        SourceError::Unavailable {
            endpoint: self.url.clone(),
            message: message.into(),
        }
    }

    fn malformed(&self, method: &str, message: impl Into<String>) -> SourceError {
        SourceError::Malformed {
            endpoint: self.url.clone(),
            method: method.to_string(),
            message: message.into(),
        }
    }

    async fn post(&self, body: &Value) -> Result<Value, SourceError> {
        for attempt in 0..2 {
            let creds = self.load_credentials(attempt > 0)?;
            let mut req = self.http.post(&self.url).json(body);
            if let Some((u, p)) = creds {
                req = req.basic_auth(u, Some(p));
            }
            let resp = req.send().await.map_err(|e| {
                if e.is_timeout() {
                    self.unavailable(format!("timed out: {e}"))
                } else {
                    self.unavailable(format!("cannot reach the node: {e}"))
                }
            })?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                // bitcoind writes a new cookie on restart: re-read it once.
                if attempt == 0 && matches!(self.auth, Auth::Cookie(_)) {
                    continue;
                }
                return Err(SourceError::Auth {
                    endpoint: self.url.clone(),
                    message: "HTTP 401".into(),
                });
            }
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                return Err(self.unavailable("HTTP 503 (work queue full or warming up)"));
            }
            let text = resp
                .text()
                .await
                .map_err(|e| self.unavailable(format!("reading the answer: {e}")))?;
            return serde_json::from_str(&text).map_err(|e| {
                self.malformed(
                    "batch",
                    format!("HTTP {status}: not JSON ({e}): {}", truncate(&text, 200)),
                )
            });
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// One JSON-RPC call.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, SourceError> {
        let mut out = self.batch(method, vec![params]).await?;
        out.pop()
            .ok_or_else(|| self.malformed(method, "empty answer"))?
    }

    /// Many calls of one method in as few HTTP requests as the batch limit
    /// allows; results in the order of `params`, each its own `Result`.
    pub async fn batch(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Result<Value, SourceError>>, SourceError> {
        let mut out = Vec::with_capacity(params.len());
        for chunk in params.chunks(self.max_batch.max(1)) {
            let body: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| json!({"jsonrpc": "1.0", "id": i, "method": method, "params": p}))
                .collect();
            let value = self.post(&Value::Array(body)).await?;
            let responses: Vec<RpcResponse> = serde_json::from_value(value)
                .map_err(|e| self.malformed(method, format!("not a batch answer: {e}")))?;
            if responses.len() != chunk.len() {
                return Err(self.malformed(
                    method,
                    format!("{} answers to {} calls", responses.len(), chunk.len()),
                ));
            }
            let mut slots: Vec<Option<Result<Value, SourceError>>> =
                (0..chunk.len()).map(|_| None).collect();
            for r in responses {
                let id =
                    r.id.as_ref()
                        .and_then(Value::as_u64)
                        .filter(|i| (*i as usize) < chunk.len())
                        .ok_or_else(|| self.malformed(method, "answer with an unknown id"))?;
                slots[id as usize] = Some(match (r.error, r.result) {
                    (Some(e), _) => Err(SourceError::Rpc {
                        endpoint: self.url.clone(),
                        method: method.to_string(),
                        code: e.code,
                        message: e.message,
                    }),
                    (None, Some(v)) => Ok(v),
                    (None, None) => Ok(Value::Null),
                });
            }
            for slot in slots {
                out.push(slot.ok_or_else(|| self.malformed(method, "missing answer"))?);
            }
        }
        Ok(out)
    }

    fn parse_hash(&self, method: &str, v: &Value) -> Result<BlockHash, SourceError> {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.malformed(method, format!("not a block hash: {v}")))
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl BtcSource for BitcoindRpc {
    fn endpoint(&self) -> String {
        self.url.clone()
    }

    async fn chain_info(&self) -> Result<ChainInfo, SourceError> {
        let v = self.call("getblockchaininfo", json!([])).await?;
        let chain = v["chain"]
            .as_str()
            .ok_or_else(|| self.malformed("getblockchaininfo", "no `chain`"))?
            .to_string();
        let blocks = v["blocks"]
            .as_u64()
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(|| self.malformed("getblockchaininfo", "no `blocks`"))?;
        let best_block_hash = self.parse_hash("getblockchaininfo", &v["bestblockhash"])?;
        Ok(ChainInfo {
            chain,
            blocks,
            best_block_hash,
        })
    }

    async fn block_hashes(&self, from: u32, count: u32) -> Result<Vec<BlockHash>, SourceError> {
        let params = (from..from.saturating_add(count))
            .map(|h| json!([h]))
            .collect();
        let mut out = Vec::with_capacity(count as usize);
        for r in self.batch("getblockhash", params).await? {
            match r {
                Ok(v) => out.push(self.parse_hash("getblockhash", &v)?),
                // -8: height out of range: the node's chain ends here.
                Err(SourceError::Rpc { code: -8, .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn headers(&self, hashes: &[BlockHash]) -> Result<Vec<Header>, SourceError> {
        let params = hashes
            .iter()
            .map(|h| json!([h.to_string(), false]))
            .collect();
        let answers = self.batch("getblockheader", params).await?;
        let mut out = Vec::with_capacity(hashes.len());
        for (hash, r) in hashes.iter().zip(answers) {
            let v = r?;
            let hex = v
                .as_str()
                .ok_or_else(|| self.malformed("getblockheader", "not a hex string"))?;
            let header: Header = deserialize_hex(hex)
                .map_err(|e| self.malformed("getblockheader", format!("header {hash}: {e}")))?;
            out.push(header);
        }
        Ok(out)
    }

    async fn block(&self, hash: &BlockHash) -> Result<Block, SourceError> {
        let v = self.call("getblock", json!([hash.to_string(), 0])).await?;
        let hex = v
            .as_str()
            .ok_or_else(|| self.malformed("getblock", "not a hex string"))?;
        let block: Block = deserialize_hex(hex)
            .map_err(|e| self.malformed("getblock", format!("block {hash}: {e}")))?;
        if block.block_hash() != *hash || !block.check_merkle_root() {
            return Err(SourceError::Inconsistent {
                endpoint: self.url.clone(),
                message: format!("block {hash}: header or Merkle root does not match"),
            });
        }
        Ok(block)
    }

    async fn tx_block(&self, txid: &Txid) -> Result<Option<BlockHash>, SourceError> {
        match self
            .call("getrawtransaction", json!([txid.to_string(), 1]))
            .await
        {
            Ok(v) => match v.get("blockhash") {
                Some(h) => Ok(Some(self.parse_hash("getrawtransaction", h)?)),
                None => Ok(None),
            },
            Err(SourceError::Rpc { code: -5, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
