//! GOAT checkpoints: `headers/goat-<network>.json`.
//!
//! A checkpoint names a block the operator vouches for (a recent finalized
//! block, read from a node or an explorer the operator trusts). Its header
//! is fetched from the source and must hash to the named hash. The devnet
//! file instead asks for the node's genesis block, fetched at start: only
//! acceptable on a local devnet.
//!
//! A file whose `hash` is `null` (and that is not a devnet file) is a
//! placeholder and is refused: gmrelay never invents a trusted hash.

use std::path::Path;

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// GOAT mainnet chain id.
pub const GOAT_MAINNET: u64 = 2345;
/// GOAT testnet3 chain id.
pub const GOAT_TESTNET3: u64 = 48816;

/// A checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoatCheckpointFile {
    /// Free text for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The chain id the block belongs to (`null` on a devnet file: any).
    pub chain_id: Option<u64>,
    /// The block number.
    pub number: Option<u64>,
    /// The block hash; `null` marks a placeholder that must be filled in.
    pub hash: Option<B256>,
    /// Trust the node's genesis block (devnets only).
    #[serde(default)]
    pub devnet_genesis: bool,
    /// Where the values come from.
    #[serde(default)]
    pub source: String,
}

/// A usable checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoatCheckpoint {
    /// A block the operator vouches for.
    Trusted {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: B256,
    },
    /// The node's genesis block, trusted as served (devnets only).
    DevnetGenesis,
}

/// A checkpoint that cannot be used.
#[derive(Debug, Error)]
pub enum GoatCheckpointError {
    /// The file could not be read.
    #[error("GOAT checkpoint file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a checkpoint file.
    #[error("GOAT checkpoint file {path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A placeholder without a hash.
    #[error("GOAT checkpoint file {path} is a placeholder without a block hash ({source_note}): set `number` and `hash` to a recent finalized GOAT block you trust, or point goat.checkpoint_file at such a file")]
    Placeholder {
        /// The file.
        path: String,
        /// Its `source` field.
        source_note: String,
    },
    /// A checkpoint of another chain.
    #[error("GOAT checkpoint file {path} is for chain id {found}, the config says {expected}")]
    WrongChain {
        /// The file.
        path: String,
        /// The file's chain id.
        found: u64,
        /// The configured chain id.
        expected: u64,
    },
    /// Missing values.
    #[error("GOAT checkpoint file {path}: {message}")]
    Incomplete {
        /// The file.
        path: String,
        /// What is missing.
        message: String,
    },
}

const MAINNET: &str = include_str!("../../headers/goat-mainnet.json");
const TESTNET3: &str = include_str!("../../headers/goat-testnet3.json");
const DEVNET: &str = include_str!("../../headers/goat-devnet.json");

impl GoatCheckpointFile {
    /// Parses a file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, GoatCheckpointError> {
        serde_json::from_str(text).map_err(|e| GoatCheckpointError::Parse {
            path: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Checks the file against the configured chain id and turns it into a checkpoint.
    pub fn resolve(
        &self,
        origin: &str,
        chain_id: u64,
    ) -> Result<GoatCheckpoint, GoatCheckpointError> {
        if let Some(found) = self.chain_id {
            if found != chain_id {
                return Err(GoatCheckpointError::WrongChain {
                    path: origin.into(),
                    found,
                    expected: chain_id,
                });
            }
        }
        if self.devnet_genesis {
            if self.hash.is_some() {
                return Err(GoatCheckpointError::Incomplete {
                    path: origin.into(),
                    message: "a devnet_genesis file takes no hash".into(),
                });
            }
            return Ok(GoatCheckpoint::DevnetGenesis);
        }
        let Some(hash) = self.hash else {
            return Err(GoatCheckpointError::Placeholder {
                path: origin.into(),
                source_note: self.source.clone(),
            });
        };
        if self.chain_id.is_none() {
            return Err(GoatCheckpointError::Incomplete {
                path: origin.into(),
                message: "`chain_id` is required with a hash".into(),
            });
        }
        let number = self.number.ok_or_else(|| GoatCheckpointError::Incomplete {
            path: origin.into(),
            message: "`number` is required with a hash".into(),
        })?;
        Ok(GoatCheckpoint::Trusted { number, hash })
    }
}

impl GoatCheckpoint {
    /// Reads and resolves a checkpoint file.
    pub fn load(path: &Path, chain_id: u64) -> Result<Self, GoatCheckpointError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GoatCheckpointError::Read {
            path: origin.clone(),
            source,
        })?;
        GoatCheckpointFile::parse(&text, &origin)?.resolve(&origin, chain_id)
    }

    /// The built-in checkpoint for a chain id: `headers/goat-mainnet.json`
    /// (2345), `headers/goat-testnet3.json` (48816), else `headers/goat-devnet.json`.
    pub fn builtin(chain_id: u64) -> Result<Self, GoatCheckpointError> {
        let (name, text) = builtin_file(chain_id);
        GoatCheckpointFile::parse(text, name)?.resolve(name, chain_id)
    }
}

/// The built-in file name and text for a chain id.
pub fn builtin_file(chain_id: u64) -> (&'static str, &'static str) {
    match chain_id {
        GOAT_MAINNET => ("headers/goat-mainnet.json", MAINNET),
        GOAT_TESTNET3 => ("headers/goat-testnet3.json", TESTNET3),
        _ => ("headers/goat-devnet.json", DEVNET),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_placeholders_are_refused_and_devnet_resolves() {
        for id in [GOAT_MAINNET, GOAT_TESTNET3] {
            let err = GoatCheckpoint::builtin(id).unwrap_err();
            assert!(
                matches!(err, GoatCheckpointError::Placeholder { .. }),
                "{err}"
            );
        }
        assert_eq!(
            GoatCheckpoint::builtin(31337).unwrap(),
            GoatCheckpoint::DevnetGenesis
        );
    }

    #[test]
    fn trusted_file_resolves_and_checks_chain() {
        let text = r#"{"chain_id": 2345, "number": 10, "hash": "0x1111111111111111111111111111111111111111111111111111111111111111", "source": "test"}"#;
        let f = GoatCheckpointFile::parse(text, "t.json").unwrap();
        assert!(matches!(
            f.resolve("t.json", 2345).unwrap(),
            GoatCheckpoint::Trusted { number: 10, .. }
        ));
        assert!(matches!(
            f.resolve("t.json", 48816),
            Err(GoatCheckpointError::WrongChain { .. })
        ));
        let err = GoatCheckpointFile::parse(
            r#"{"chain_id": 1, "number": 1, "hash": null, "typo": 1}"#,
            "t.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("typo"), "{err}");
    }
}
