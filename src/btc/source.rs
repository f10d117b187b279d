//! Where Bitcoin data comes from: the [`BtcSource`] trait, and a
//! fault-injecting wrapper for tests.
//!
//! A source is never trusted: every header it serves is validated by the
//! [`HeaderChain`](super::chain::HeaderChain), every block is checked against
//! its header's Merkle root.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use bitcoin::block::Header;
use bitcoin::{Block, BlockHash, Txid};
use thiserror::Error;

use crate::error::{Classify, ErrorClass};

/// A source failure, classed for retrying.
#[derive(Debug, Error)]
pub enum SourceError {
    /// Could not reach the node, or it timed out or is warming up.
    #[error("{endpoint}: {message}")]
    Unavailable {
        /// The node's URL.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// The node refused the credentials.
    #[error("{endpoint}: authentication failed ({message}); check btc.cookie_file or btc.rpc_user/btc.rpc_password")]
    Auth {
        /// The node's URL.
        endpoint: String,
        /// What the node said.
        message: String,
    },
    /// The node answered with an error.
    #[error("{endpoint}: {method} failed: RPC error {code}: {message}")]
    Rpc {
        /// The node's URL.
        endpoint: String,
        /// The RPC method.
        method: String,
        /// bitcoind's error code.
        code: i64,
        /// bitcoind's message.
        message: String,
    },
    /// The node's answer is not what the protocol says.
    #[error("{endpoint}: {method}: malformed answer: {message}")]
    Malformed {
        /// The node's URL.
        endpoint: String,
        /// The RPC method.
        method: String,
        /// What is wrong.
        message: String,
    },
    /// The node served data that contradicts itself (a header that does not
    /// hash to the hash asked for, a block whose Merkle root is wrong).
    #[error("{endpoint}: inconsistent data: {message}")]
    Inconsistent {
        /// The node's URL.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// A fault injected by [`FaultySource`].
    #[error("injected fault #{0}")]
    Injected(u64),
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            SourceError::Unavailable { .. } | SourceError::Injected(_) => ErrorClass::Transient,
            // The node may have reorged between two calls: worth a retry.
            SourceError::Inconsistent { .. } => ErrorClass::Transient,
            // -28: warming up; -1 with "Work queue depth exceeded" shows as HTTP 503 (Unavailable).
            SourceError::Rpc { code, .. } if *code == -28 => ErrorClass::Transient,
            SourceError::Rpc { .. } | SourceError::Auth { .. } | SourceError::Malformed { .. } => {
                ErrorClass::Permanent
            }
        }
    }
}

/// What the node says about its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// `main`, `test`, `testnet4`, `signet` or `regtest`.
    pub chain: String,
    /// Height of the node's best header-and-block tip.
    pub blocks: u32,
    /// The node's best block hash.
    pub best_block_hash: BlockHash,
}

/// A source of Bitcoin headers and blocks.
pub trait BtcSource: Sync {
    /// A human-readable name for logs and errors.
    fn endpoint(&self) -> String;
    /// The node's chain and tip.
    fn chain_info(&self) -> impl Future<Output = Result<ChainInfo, SourceError>> + Send;
    /// Hashes of the node's best chain at heights `from .. from + count`
    /// (fewer when the node's chain is shorter).
    fn block_hashes(
        &self,
        from: u32,
        count: u32,
    ) -> impl Future<Output = Result<Vec<BlockHash>, SourceError>> + Send;
    /// The headers with these hashes, in order, as the node serves them
    /// (callers check them with [`check_served`]).
    fn headers(
        &self,
        hashes: &[BlockHash],
    ) -> impl Future<Output = Result<Vec<Header>, SourceError>> + Send;
    /// A full block. Implementations check its Merkle root.
    fn block(&self, hash: &BlockHash) -> impl Future<Output = Result<Block, SourceError>> + Send;
    /// The block a transaction is in, when the node can tell (`txindex`, or
    /// the transaction is in its wallet or mempool history).
    fn tx_block(
        &self,
        txid: &Txid,
    ) -> impl Future<Output = Result<Option<BlockHash>, SourceError>> + Send;
}

/// Checks that a source answered `hashes` with exactly the headers that
/// hash to them: a node that changed its chain between two calls, or lies,
/// is caught here ([`SourceError::Inconsistent`], retried as transient).
pub fn check_served(
    endpoint: &str,
    hashes: &[BlockHash],
    headers: &[Header],
) -> Result<(), SourceError> {
    let inconsistent = |message| SourceError::Inconsistent {
        endpoint: endpoint.to_string(),
        message,
    };
    if headers.len() != hashes.len() {
        return Err(inconsistent(format!(
            "{} headers for {} hashes",
            headers.len(),
            hashes.len()
        )));
    }
    for (h, hash) in headers.iter().zip(hashes) {
        let got = h.block_hash();
        if got != *hash {
            return Err(inconsistent(format!(
                "asked for header {hash}, got one hashing to {got}"
            )));
        }
    }
    Ok(())
}

/// Wraps a source and makes every `every`-th call fail with a transient
/// error, and optionally corrupts one header in every batch. For tests of
/// the retry and rejection paths against a real node.
#[derive(Debug)]
pub struct FaultySource<S> {
    inner: S,
    every: u64,
    corrupt_headers: bool,
    calls: AtomicU64,
    /// Number of faults injected so far.
    pub injected: AtomicU64,
}

impl<S> FaultySource<S> {
    /// Fails every `every`-th call (0: never).
    pub fn new(inner: S, every: u64) -> Self {
        FaultySource {
            inner,
            every,
            corrupt_headers: false,
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    /// Also flips a bit of the nonce of the last header of every batch.
    pub fn corrupting_headers(mut self) -> Self {
        self.corrupt_headers = true;
        self
    }

    fn tick(&self) -> Result<(), SourceError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.every != 0 && n.is_multiple_of(self.every) {
            let k = self.injected.fetch_add(1, Ordering::SeqCst) + 1;
            return Err(SourceError::Injected(k));
        }
        Ok(())
    }
}

impl<S: BtcSource + Send + Sync> BtcSource for FaultySource<S> {
    fn endpoint(&self) -> String {
        format!("faulty({})", self.inner.endpoint())
    }
    async fn chain_info(&self) -> Result<ChainInfo, SourceError> {
        self.tick()?;
        self.inner.chain_info().await
    }
    async fn block_hashes(&self, from: u32, count: u32) -> Result<Vec<BlockHash>, SourceError> {
        self.tick()?;
        self.inner.block_hashes(from, count).await
    }
    async fn headers(&self, hashes: &[BlockHash]) -> Result<Vec<Header>, SourceError> {
        self.tick()?;
        let mut headers = self.inner.headers(hashes).await?;
        if self.corrupt_headers {
            if let Some(last) = headers.last_mut() {
                last.nonce ^= 1;
            }
        }
        Ok(headers)
    }
    async fn block(&self, hash: &BlockHash) -> Result<Block, SourceError> {
        self.tick()?;
        self.inner.block(hash).await
    }
    async fn tx_block(&self, txid: &Txid) -> Result<Option<BlockHash>, SourceError> {
        self.tick()?;
        self.inner.tx_block(txid).await
    }
}

impl<T: BtcSource + Send + Sync> BtcSource for &T {
    fn endpoint(&self) -> String {
        (**self).endpoint()
    }
    fn chain_info(&self) -> impl Future<Output = Result<ChainInfo, SourceError>> + Send {
        (**self).chain_info()
    }
    fn block_hashes(
        &self,
        from: u32,
        count: u32,
    ) -> impl Future<Output = Result<Vec<BlockHash>, SourceError>> + Send {
        (**self).block_hashes(from, count)
    }
    fn headers(
        &self,
        hashes: &[BlockHash],
    ) -> impl Future<Output = Result<Vec<Header>, SourceError>> + Send {
        (**self).headers(hashes)
    }
    fn block(&self, hash: &BlockHash) -> impl Future<Output = Result<Block, SourceError>> + Send {
        (**self).block(hash)
    }
    fn tx_block(
        &self,
        txid: &Txid,
    ) -> impl Future<Output = Result<Option<BlockHash>, SourceError>> + Send {
        (**self).tx_block(txid)
    }
}
