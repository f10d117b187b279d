//! Where GOAT data comes from: the [`GoatSource`] trait and [`GoatRpc`],
//! an alloy JSON-RPC client over HTTP (polling) or WebSocket (`newHeads`
//! subscription).
//!
//! A source is never trusted: headers are parsed strictly from the raw JSON
//! (an unknown field is an error) and must hash to the hash the node
//! claims; the chain then checks links and finality, and receipts must
//! rebuild the header's receiptsRoot.

use std::future::Future;
use std::time::Duration;

use alloy::primitives::B256;
use alloy::rpc::client::{ClientBuilder, RpcClient};
use alloy::transports::{RpcError, TransportErrorKind};
use serde_json::value::RawValue;
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;

use super::header::{GoatHeader, HeaderError, RpcHeader};
use crate::error::{Classify, ErrorClass};

/// A source failure, classed for retrying.
#[derive(Debug, Error)]
pub enum GoatSourceError {
    /// Could not reach the node, or it timed out, or rate-limited us.
    #[error("{endpoint}: {message}")]
    Unavailable {
        /// The node's URL.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// The node refused the request's credentials (HTTP 401/403).
    #[error("{endpoint}: access refused ({message}); check goat.rpc_url")]
    Auth {
        /// The node's URL.
        endpoint: String,
        /// What the node said.
        message: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{endpoint}: {method} failed: RPC error {code}: {message}")]
    Rpc {
        /// The node's URL.
        endpoint: String,
        /// The method.
        method: String,
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// An answer that is not what the protocol says.
    #[error("{endpoint}: {method}: malformed answer: {message}")]
    Malformed {
        /// The node's URL.
        endpoint: String,
        /// The method.
        method: String,
        /// What is wrong.
        message: String,
    },
    /// A header that does not parse strictly or does not hash to its hash.
    #[error("{endpoint}: {error}")]
    Header {
        /// The node's URL.
        endpoint: String,
        /// The failure.
        #[source]
        error: HeaderError,
    },
    /// Data that contradicts itself between two calls (the node may have reorged).
    #[error("{endpoint}: inconsistent data: {message}")]
    Inconsistent {
        /// The node's URL.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
}

impl Classify for GoatSourceError {
    fn class(&self) -> ErrorClass {
        match self {
            GoatSourceError::Unavailable { .. } | GoatSourceError::Inconsistent { .. } => {
                ErrorClass::Transient
            }
            // -32005: limit exceeded; -32603: internal error (often a node
            // under load); 429 is mapped to Unavailable.
            GoatSourceError::Rpc { code, .. } if *code == -32005 || *code == -32603 => {
                ErrorClass::Transient
            }
            GoatSourceError::Rpc { .. }
            | GoatSourceError::Auth { .. }
            | GoatSourceError::Malformed { .. }
            | GoatSourceError::Header { .. } => ErrorClass::Permanent,
        }
    }
}

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// The block number.
    pub block_number: u64,
    /// The block hash.
    pub block_hash: B256,
    /// The transaction's index in the block.
    pub tx_index: u64,
}

/// A source of GOAT headers and receipts.
pub trait GoatSource: Sync {
    /// A human-readable name for logs and errors.
    fn endpoint(&self) -> String;
    /// `eth_chainId`.
    fn chain_id(&self) -> impl Future<Output = Result<u64, GoatSourceError>> + Send;
    /// `eth_blockNumber`.
    fn head_number(&self) -> impl Future<Output = Result<u64, GoatSourceError>> + Send;
    /// The block the node tags `finalized` (number, hash computed by gmrelay),
    /// or `None` when it has none.
    fn finalized(
        &self,
    ) -> impl Future<Output = Result<Option<(u64, B256)>, GoatSourceError>> + Send;
    /// Canonical headers `from .. from + count` in one batched request
    /// (fewer when the node's chain is shorter). Each is parsed strictly and
    /// hashes to the hash the node claims.
    fn headers(
        &self,
        from: u64,
        count: u64,
    ) -> impl Future<Output = Result<Vec<GoatHeader>, GoatSourceError>> + Send;
    /// The header with this hash, if the node has it.
    fn header_by_hash(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Option<GoatHeader>, GoatSourceError>> + Send;
    /// Every receipt of a block, as raw RPC JSON (`eth_getBlockReceipts`,
    /// falling back to one `eth_getTransactionReceipt` per transaction).
    fn block_receipts(
        &self,
        hash: B256,
    ) -> impl Future<Output = Result<Vec<Value>, GoatSourceError>> + Send;
    /// The block and index of a mined transaction.
    fn tx_location(
        &self,
        tx: B256,
    ) -> impl Future<Output = Result<Option<TxLocation>, GoatSourceError>> + Send;
    /// Waits until the node may have a new head: a `newHeads` notification
    /// on WebSocket, or `poll` elapsed on HTTP.
    fn wait_for_head(&self, poll: Duration) -> impl Future<Output = ()> + Send;
}

/// An alloy JSON-RPC client for a GOAT (or any EVM) node.
pub struct GoatRpc {
    client: RpcClient,
    url: String,
    timeout: Duration,
    ws: bool,
    use_block_receipts: bool,
    heads: Mutex<Option<alloy::pubsub::RawSubscription>>,
}

impl std::fmt::Debug for GoatRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoatRpc").field("url", &self.url).finish()
    }
}

fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

fn parse_quantity(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

impl GoatRpc {
    /// The transactions in blocks `from..=to` in which `token` emitted
    /// `AuthorizationUsed(_, nonce)` (`eth_getLogs` with the nonce as topic 2), as (transaction, block
    /// number, block hash). Where to look, not what to trust: the payment is
    /// proven against gmrelay's own header chain afterwards.
    pub async fn authorization_used(
        &self,
        token: alloy::primitives::Address,
        nonce: B256,
        from: u64,
        to: u64,
    ) -> Result<Vec<(B256, u64, B256)>, GoatSourceError> {
        let filter = serde_json::json!({
            "fromBlock": format!("{from:#x}"),
            "toBlock": format!("{to:#x}"),
            "address": token,
            "topics": [super::payment::AUTHORIZATION_USED_TOPIC, null, nonce],
        });
        let logs: Vec<Value> = self.call("eth_getLogs", [filter]).await?;
        let mut out = Vec::new();
        for log in logs {
            let field = |k: &str| -> Result<&str, GoatSourceError> {
                log.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| GoatSourceError::Malformed {
                        endpoint: self.url.clone(),
                        method: "eth_getLogs".into(),
                        message: format!("log without `{k}`"),
                    })
            };
            if log.get("removed").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let bad = |k: &str| GoatSourceError::Malformed {
                endpoint: self.url.clone(),
                method: "eth_getLogs".into(),
                message: format!("`{k}` does not parse"),
            };
            let tx: B256 = field("transactionHash")?
                .parse()
                .map_err(|_| bad("transactionHash"))?;
            let hash: B256 = field("blockHash")?.parse().map_err(|_| bad("blockHash"))?;
            let number = u64::from_str_radix(field("blockNumber")?.trim_start_matches("0x"), 16)
                .map_err(|_| bad("blockNumber"))?;
            out.push((tx, number, hash));
        }
        Ok(out)
    }

    /// Connects to `url`: `http(s)://` for polling, `ws(s)://` for a
    /// `newHeads` subscription. Every request times out after `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, GoatSourceError> {
        let unavailable = |message: String| GoatSourceError::Unavailable {
            endpoint: url.to_string(),
            message,
        };
        let ws = url.starts_with("ws://") || url.starts_with("wss://");
        let client = if ws {
            let connect = ClientBuilder::default().ws(alloy::providers::WsConnect::new(url));
            tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| unavailable(format!("WebSocket connect timed out after {timeout:?}")))?
                .map_err(|e| unavailable(e.to_string()))?
        } else {
            let parsed = url.parse().map_err(|e| GoatSourceError::Malformed {
                endpoint: url.to_string(),
                method: "connect".into(),
                message: format!("not a URL: {e}"),
            })?;
            ClientBuilder::default().http(parsed)
        };
        Ok(GoatRpc {
            client,
            url: url.to_string(),
            timeout,
            ws,
            use_block_receipts: true,
            heads: Mutex::new(None),
        })
    }

    /// Never calls `eth_getBlockReceipts` (for nodes without it, and to test
    /// the per-transaction fallback).
    pub fn without_block_receipts(mut self) -> Self {
        self.use_block_receipts = false;
        self
    }

    fn map_err(&self, method: &str, e: RpcError<TransportErrorKind>) -> GoatSourceError {
        let endpoint = self.url.clone();
        match e {
            RpcError::ErrorResp(p) => GoatSourceError::Rpc {
                endpoint,
                method: method.into(),
                code: p.code,
                message: p.message.to_string(),
            },
            RpcError::Transport(TransportErrorKind::HttpError(h))
                if h.status == 401 || h.status == 403 =>
            {
                GoatSourceError::Auth {
                    endpoint,
                    message: format!("HTTP {}", h.status),
                }
            }
            RpcError::Transport(TransportErrorKind::HttpError(h))
                if h.status < 500 && h.status != 429 =>
            {
                GoatSourceError::Malformed {
                    endpoint,
                    method: method.into(),
                    message: format!(
                        "HTTP {}: {}",
                        h.status,
                        h.body.chars().take(200).collect::<String>()
                    ),
                }
            }
            RpcError::Transport(k) => GoatSourceError::Unavailable {
                endpoint,
                message: format!("{method}: {k}"),
            },
            RpcError::NullResp => GoatSourceError::Malformed {
                endpoint,
                method: method.into(),
                message: "null result".into(),
            },
            other => GoatSourceError::Malformed {
                endpoint,
                method: method.into(),
                message: other.to_string(),
            },
        }
    }

    async fn call<P, R>(&self, method: &'static str, params: P) -> Result<R, GoatSourceError>
    where
        P: alloy::rpc::json_rpc::RpcSend,
        R: alloy::rpc::json_rpc::RpcRecv,
    {
        let fut = self.client.request::<P, R>(method, params);
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(GoatSourceError::Unavailable {
                endpoint: self.url.clone(),
                message: format!("{method}: timed out after {:?}", self.timeout),
            }),
            Ok(r) => r.map_err(|e| self.map_err(method, e)),
        }
    }

    /// Sends one JSON-RPC batch of `method` calls; returns the raw results in order.
    async fn batch<P>(
        &self,
        method: &'static str,
        params: Vec<P>,
    ) -> Result<Vec<Option<Box<RawValue>>>, GoatSourceError>
    where
        P: alloy::rpc::json_rpc::RpcSend,
    {
        let mut batch = self.client.new_batch();
        let mut waiters = Vec::with_capacity(params.len());
        for p in &params {
            waiters.push(
                batch
                    .add_call::<_, Option<Box<RawValue>>>(method, p)
                    .map_err(|e| self.map_err(method, e))?,
            );
        }
        let timeout = self.timeout;
        let run = async {
            batch.send().await.map_err(|e| self.map_err(method, e))?;
            let mut out = Vec::with_capacity(waiters.len());
            for w in waiters {
                out.push(w.await.map_err(|e| self.map_err(method, e))?);
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| GoatSourceError::Unavailable {
                endpoint: self.url.clone(),
                message: format!(
                    "{method} batch of {}: timed out after {timeout:?}",
                    params.len()
                ),
            })?
    }

    fn parse_header(&self, raw: &RawValue) -> Result<(GoatHeader, B256), GoatSourceError> {
        let v: Value = serde_json::from_str(raw.get()).map_err(|e| GoatSourceError::Malformed {
            endpoint: self.url.clone(),
            method: "eth_getBlockByNumber".into(),
            message: e.to_string(),
        })?;
        RpcHeader::parse(&v)
            .and_then(RpcHeader::verified)
            .map_err(|error| GoatSourceError::Header {
                endpoint: self.url.clone(),
                error,
            })
    }

    async fn ensure_subscription(&self) -> bool {
        let mut guard = self.heads.lock().await;
        if guard.is_some() {
            return true;
        }
        let id: Result<B256, _> = self.call("eth_subscribe", ("newHeads",)).await;
        match id {
            Ok(id) => {
                let Some(frontend) = self.client.pubsub_frontend() else {
                    return false;
                };
                match frontend.get_subscription(id).await {
                    Ok(sub) => {
                        *guard = Some(sub);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "newHeads subscription failed; polling");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "eth_subscribe newHeads failed; polling");
                false
            }
        }
    }
}

impl GoatSource for GoatRpc {
    fn endpoint(&self) -> String {
        self.url.clone()
    }

    async fn chain_id(&self) -> Result<u64, GoatSourceError> {
        let v: Value = self.call("eth_chainId", ()).await?;
        parse_quantity(&v).ok_or_else(|| GoatSourceError::Malformed {
            endpoint: self.url.clone(),
            method: "eth_chainId".into(),
            message: format!("`{v}` is not a quantity"),
        })
    }

    async fn head_number(&self) -> Result<u64, GoatSourceError> {
        let v: Value = self.call("eth_blockNumber", ()).await?;
        parse_quantity(&v).ok_or_else(|| GoatSourceError::Malformed {
            endpoint: self.url.clone(),
            method: "eth_blockNumber".into(),
            message: format!("`{v}` is not a quantity"),
        })
    }

    async fn finalized(&self) -> Result<Option<(u64, B256)>, GoatSourceError> {
        let raw: Option<Box<RawValue>> = self
            .call("eth_getBlockByNumber", ("finalized", false))
            .await?;
        match raw {
            None => Ok(None),
            Some(r) => {
                let (h, hash) = self.parse_header(&r)?;
                Ok(Some((h.number, hash)))
            }
        }
    }

    async fn headers(&self, from: u64, count: u64) -> Result<Vec<GoatHeader>, GoatSourceError> {
        let params: Vec<(String, bool)> = (from..from.saturating_add(count))
            .map(|n| (quantity(n), false))
            .collect();
        let raws = self.batch("eth_getBlockByNumber", params).await?;
        let mut out = Vec::with_capacity(raws.len());
        for (i, raw) in raws.into_iter().enumerate() {
            let Some(raw) = raw else { break };
            let (h, _) = self.parse_header(&raw)?;
            let want = from + i as u64;
            if h.number != want {
                return Err(GoatSourceError::Inconsistent {
                    endpoint: self.url.clone(),
                    message: format!("asked for block {want}, got block {}", h.number),
                });
            }
            out.push(h);
        }
        Ok(out)
    }

    async fn header_by_hash(&self, hash: B256) -> Result<Option<GoatHeader>, GoatSourceError> {
        let raw: Option<Box<RawValue>> = self.call("eth_getBlockByHash", (hash, false)).await?;
        match raw {
            None => Ok(None),
            // The caller checks that it is the block asked for (the
            // checkpoint fetch refuses another block at once, never retrying).
            Some(r) => Ok(Some(self.parse_header(&r)?.0)),
        }
    }

    async fn block_receipts(&self, hash: B256) -> Result<Vec<Value>, GoatSourceError> {
        if self.use_block_receipts {
            match self
                .call::<_, Option<Vec<Value>>>("eth_getBlockReceipts", (hash,))
                .await
            {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {
                    return Err(GoatSourceError::Inconsistent {
                        endpoint: self.url.clone(),
                        message: format!("no receipts for block {hash} (reorged out?)"),
                    })
                }
                // Method not found / not supported: fall back.
                Err(GoatSourceError::Rpc { code, .. }) if code == -32601 || code == -32602 => {
                    tracing::debug!(
                        code,
                        "eth_getBlockReceipts unsupported; per-transaction fallback"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let block: Option<Value> = self.call("eth_getBlockByHash", (hash, false)).await?;
        let block = block.ok_or_else(|| GoatSourceError::Inconsistent {
            endpoint: self.url.clone(),
            message: format!("block {hash} not found (reorged out?)"),
        })?;
        let txs: Vec<B256> = block
            .get("transactions")
            .and_then(Value::as_array)
            .ok_or_else(|| GoatSourceError::Malformed {
                endpoint: self.url.clone(),
                method: "eth_getBlockByHash".into(),
                message: "no `transactions` array".into(),
            })?
            .iter()
            .map(|t| {
                t.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| GoatSourceError::Malformed {
                        endpoint: self.url.clone(),
                        method: "eth_getBlockByHash".into(),
                        message: format!("transaction `{t}` is not a hash"),
                    })
            })
            .collect::<Result<_, _>>()?;
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<(B256,)> = txs.iter().map(|t| (*t,)).collect();
        let raws = self.batch("eth_getTransactionReceipt", params).await?;
        raws.into_iter()
            .zip(&txs)
            .map(|(r, tx)| {
                let r = r.ok_or_else(|| GoatSourceError::Inconsistent {
                    endpoint: self.url.clone(),
                    message: format!("no receipt for transaction {tx} of block {hash}"),
                })?;
                serde_json::from_str(r.get()).map_err(|e| GoatSourceError::Malformed {
                    endpoint: self.url.clone(),
                    method: "eth_getTransactionReceipt".into(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    async fn tx_location(&self, tx: B256) -> Result<Option<TxLocation>, GoatSourceError> {
        let r: Option<Value> = self.call("eth_getTransactionReceipt", (tx,)).await?;
        let Some(r) = r else { return Ok(None) };
        let bad = |what: &str| GoatSourceError::Malformed {
            endpoint: self.url.clone(),
            method: "eth_getTransactionReceipt".into(),
            message: format!("receipt of {tx}: bad `{what}`"),
        };
        Ok(Some(TxLocation {
            block_number: r
                .get("blockNumber")
                .and_then(parse_quantity)
                .ok_or_else(|| bad("blockNumber"))?,
            block_hash: r
                .get("blockHash")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("blockHash"))?,
            tx_index: r
                .get("transactionIndex")
                .and_then(parse_quantity)
                .ok_or_else(|| bad("transactionIndex"))?,
        }))
    }

    async fn wait_for_head(&self, poll: Duration) {
        if self.ws && self.ensure_subscription().await {
            let mut guard = self.heads.lock().await;
            if let Some(sub) = guard.as_mut() {
                match tokio::time::timeout(poll.max(Duration::from_secs(1)) * 10, sub.recv()).await
                {
                    Ok(Ok(_)) | Err(_) => return,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "newHeads subscription ended; resubscribing");
                        *guard = None;
                    }
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}
