//! A CometBFT RPC client for GOAT's consensus (goatd's CometBFT RPC,
//! v0.38): `/status`, `/commit`, `/validators` and `/block`, parsed with
//! tendermint-rpc's response types. It fetches [`LightBlock`]s; it trusts
//! nothing it fetches ([`super::consensus::verify`] does the checking).

use std::time::Duration;

use tendermint::block::signed_header::SignedHeader;
use tendermint::validator::{Info, Set as ValidatorSet};
use tendermint_rpc::endpoint::{block, commit, status, validators};
use thiserror::Error;

use super::consensus::LightBlock;
use crate::error::{Classify, ErrorClass};

/// `/validators` pages at most this many.
const PER_PAGE: usize = 100;

/// A CometBFT RPC failure.
#[derive(Debug, Error)]
pub enum CometError {
    /// The node could not be reached or timed out (retried).
    #[error("CometBFT RPC {endpoint}: {method}: {message}")]
    Unavailable {
        /// The node.
        endpoint: String,
        /// The call.
        method: String,
        /// What happened.
        message: String,
    },
    /// The node answered with an error or with something that is not a
    /// CometBFT v0.38 answer.
    #[error("CometBFT RPC {endpoint}: {method}: {message}")]
    Invalid {
        /// The node.
        endpoint: String,
        /// The call.
        method: String,
        /// What is wrong.
        message: String,
    },
    /// The node does not have this height (pruned, or not there yet).
    #[error("CometBFT RPC {endpoint}: no block at height {height} ({message})")]
    NoHeight {
        /// The node.
        endpoint: String,
        /// The height asked for.
        height: u64,
        /// The node's words.
        message: String,
    },
}

impl Classify for CometError {
    fn class(&self) -> ErrorClass {
        match self {
            CometError::Unavailable { .. } | CometError::NoHeight { .. } => ErrorClass::Transient,
            CometError::Invalid { .. } => ErrorClass::Permanent,
        }
    }
}

/// A CometBFT RPC endpoint.
#[derive(Debug, Clone)]
pub struct CometRpc {
    url: String,
    http: reqwest::Client,
}

impl CometRpc {
    /// A client for `url` (`http://host:26657`), each call bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, CometError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| CometError::Invalid {
                endpoint: url.into(),
                method: "client".into(),
                message: e.to_string(),
            })?;
        Ok(CometRpc {
            url: url.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The endpoint's URL.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    async fn get<R: tendermint_rpc::Response>(
        &self,
        method: &str,
        query: &[(&str, String)],
        height: Option<u64>,
    ) -> Result<R, CometError> {
        let unavailable = |message: String| CometError::Unavailable {
            endpoint: self.url.clone(),
            method: method.into(),
            message,
        };
        let url = reqwest::Url::parse_with_params(&format!("{}/{method}", self.url), query)
            .map_err(|e| CometError::Invalid {
                endpoint: self.url.clone(),
                method: method.into(),
                message: format!("URL: {e}"),
            })?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        // Overload and gateway answers are worth retrying whatever their body.
        let busy = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
        if busy && !body.starts_with(b"{") {
            return Err(unavailable(format!("HTTP {status}")));
        }
        R::from_string(&body).map_err(|e| {
            let message = e.to_string();
            // CometBFT: "height N must be less than or equal to the current
            // blockchain height M" / "is not available, lowest height is".
            match height {
                Some(_) if message.contains("lowest height") => CometError::Invalid {
                    endpoint: self.url.clone(),
                    method: method.into(),
                    message: format!(
                        "{message} (the node pruned it: use an archive node, or a newer checkpoint)"
                    ),
                },
                Some(height) if message.contains("must be less than or equal") => {
                    CometError::NoHeight {
                        endpoint: self.url.clone(),
                        height,
                        message,
                    }
                }
                _ => CometError::Invalid {
                    endpoint: self.url.clone(),
                    method: method.into(),
                    message,
                },
            }
        })
    }

    /// `/status`.
    pub async fn status(&self) -> Result<status::Response, CometError> {
        self.get("status", &[], None).await
    }

    /// The latest committed height.
    pub async fn latest_height(&self) -> Result<u64, CometError> {
        Ok(self.status().await?.sync_info.latest_block_height.value())
    }

    /// `/commit?height=h`: the signed header.
    pub async fn signed_header(&self, height: u64) -> Result<SignedHeader, CometError> {
        let r: commit::Response = self
            .get("commit", &[("height", height.to_string())], Some(height))
            .await?;
        Ok(r.signed_header)
    }

    /// `/validators?height=h`, every page.
    pub async fn validators(&self, height: u64) -> Result<ValidatorSet, CometError> {
        let mut all: Vec<Info> = Vec::new();
        for page in 1..=(super::cometnet::MAX_VALIDATORS * 10 / PER_PAGE + 1) {
            let r: validators::Response = self
                .get(
                    "validators",
                    &[
                        ("height", height.to_string()),
                        ("page", page.to_string()),
                        ("per_page", PER_PAGE.to_string()),
                    ],
                    Some(height),
                )
                .await?;
            let total = usize::try_from(r.total).unwrap_or(0);
            let got = r.validators.len();
            all.extend(r.validators);
            if all.len() >= total || got == 0 {
                break;
            }
        }
        Ok(ValidatorSet::without_proposer(all))
    }

    /// `/block?height=h`: the block's transactions.
    pub async fn txs(&self, height: u64) -> Result<Vec<Vec<u8>>, CometError> {
        let r: block::v0_38::DialectResponse = self
            .get("block", &[("height", height.to_string())], Some(height))
            .await?;
        let r: block::Response = r.into();
        Ok(r.block.data)
    }

    /// Everything [`super::consensus::verify`] needs for height `h`.
    pub async fn light_block(&self, height: u64) -> Result<LightBlock, CometError> {
        let (signed_header, validators, next_validators, txs) = tokio::try_join!(
            self.signed_header(height),
            self.validators(height),
            self.validators(height + 1),
            self.txs(height),
        )?;
        Ok(LightBlock {
            signed_header,
            validators,
            next_validators,
            txs,
        })
    }
}
