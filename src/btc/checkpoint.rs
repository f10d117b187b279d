//! Trusted checkpoints: `headers/<network>.json`.
//!
//! A checkpoint names a height on a 2016-block boundary and the hash of the
//! block there. The header bytes come from the node and must hash to it; the
//! ten headers below it are fetched by walking `prev_blockhash` back from it,
//! so they are as trusted as the checkpoint itself.

use std::path::Path;

use bitcoin::BlockHash;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::network::{BtcNetwork, RETARGET_INTERVAL};

/// A checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The network it belongs to.
    pub network: BtcNetwork,
    /// Its height: a multiple of 2016.
    pub height: u32,
    /// The block hash at that height.
    pub hash: BlockHash,
    /// Chainwork up to and including the block, as bitcoind's `chainwork`
    /// (hex). Optional: only differences of chainwork matter to gmrelay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chainwork: Option<String>,
    /// Where the values come from, for the reader.
    #[serde(default)]
    pub source: String,
}

/// A checkpoint that cannot be used.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("checkpoint file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("checkpoint file {path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint is for another network.
    #[error("checkpoint file {path} is for Bitcoin {found}, but the config follows {expected}")]
    WrongNetwork {
        /// The file.
        path: String,
        /// Its network.
        found: BtcNetwork,
        /// The configured network.
        expected: BtcNetwork,
    },
    /// The height is not on a retarget boundary.
    #[error("checkpoint {path}: height {height} is not a multiple of 2016")]
    NotOnBoundary {
        /// The file.
        path: String,
        /// The height.
        height: u32,
    },
    /// The chainwork is not hex.
    #[error("checkpoint {path}: chainwork `{value}` is not a hex number")]
    BadChainwork {
        /// The file.
        path: String,
        /// The value.
        value: String,
    },
}

const BUILTIN: [(BtcNetwork, &str); 4] = [
    (
        BtcNetwork::Mainnet,
        include_str!("../../headers/mainnet.json"),
    ),
    (
        BtcNetwork::Testnet4,
        include_str!("../../headers/testnet4.json"),
    ),
    (
        BtcNetwork::Signet,
        include_str!("../../headers/signet.json"),
    ),
    (
        BtcNetwork::Regtest,
        include_str!("../../headers/regtest.json"),
    ),
];

impl Checkpoint {
    /// Parses and checks a checkpoint; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, network: BtcNetwork) -> Result<Self, CheckpointError> {
        let cp: Checkpoint = serde_json::from_str(text).map_err(|e| CheckpointError::Parse {
            path: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if cp.network != network {
            return Err(CheckpointError::WrongNetwork {
                path: origin.to_string(),
                found: cp.network,
                expected: network,
            });
        }
        if !cp.height.is_multiple_of(RETARGET_INTERVAL) {
            return Err(CheckpointError::NotOnBoundary {
                path: origin.to_string(),
                height: cp.height,
            });
        }
        if let Some(w) = &cp.chainwork {
            if super::chain::parse_work(w).is_none() {
                return Err(CheckpointError::BadChainwork {
                    path: origin.to_string(),
                    value: w.clone(),
                });
            }
        }
        Ok(cp)
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path, network: BtcNetwork) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), network)
    }

    /// The checkpoint shipped in `headers/` and compiled into the binary;
    /// testnet3 has none (genesis is used).
    pub fn builtin(network: BtcNetwork) -> Self {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == network)
            .map(|(n, text)| {
                Self::parse(text, &format!("headers/{}.json", n.name()), network)
                    .expect("built-in checkpoints are valid (tested)")
            })
            .unwrap_or_else(|| Checkpoint {
                network,
                height: 0,
                hash: network.genesis_hash(),
                chainwork: None,
                source: "genesis block".into(),
            })
    }

    /// The declared chainwork, or `None`.
    pub fn chainwork(&self) -> Option<bitcoin::pow::Work> {
        self.chainwork.as_deref().and_then(super::chain::parse_work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_checkpoints_parse() {
        for net in BtcNetwork::ALL {
            let cp = Checkpoint::builtin(net);
            assert_eq!(cp.network, net);
            assert_eq!(cp.height % RETARGET_INTERVAL, 0);
        }
        assert_eq!(
            Checkpoint::builtin(BtcNetwork::Regtest).hash,
            BtcNetwork::Regtest.genesis_hash()
        );
    }

    #[test]
    fn errors_name_the_place() {
        let err = Checkpoint::parse(
            "{\n \"network\": \"regtest\",\n \"heigth\": 1}",
            "x.json",
            BtcNetwork::Regtest,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("checkpoint file x.json:3:"), "{err}");
        assert!(err.contains("heigth"), "{err}");

        let text = format!(
            "{{\"network\":\"regtest\",\"height\":2017,\"hash\":\"{}\"}}",
            BtcNetwork::Regtest.genesis_hash()
        );
        let err = Checkpoint::parse(&text, "y.json", BtcNetwork::Regtest).unwrap_err();
        assert!(matches!(
            err,
            CheckpointError::NotOnBoundary { height: 2017, .. }
        ));
        let err = Checkpoint::parse(&text, "y.json", BtcNetwork::Mainnet).unwrap_err();
        assert!(matches!(err, CheckpointError::WrongNetwork { .. }));
    }
}
