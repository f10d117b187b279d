//! The proof file envelope shared by every rail.
//!
//! ```json
//! { "format": "gmrelay-payment-proof", "version": 1, "chain": "bitcoin", ... }
//! ```
//!
//! `chain` selects the body; the README documents each body's fields.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::btc::proof::{BtcProof, PROOF_FORMAT, PROOF_VERSION};
use crate::goat::proof::GoatProof;

/// A proof file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofFile {
    /// Always `gmrelay-payment-proof`.
    pub format: String,
    /// The format version ([`PROOF_VERSION`]).
    pub version: u32,
    /// The rail and its body.
    #[serde(flatten)]
    pub body: ProofBody,
}

/// The rail-specific part of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "chain", rename_all = "lowercase")]
pub enum ProofBody {
    /// A Bitcoin transaction's inclusion.
    Bitcoin(BtcProof),
    /// A GOAT Network stablecoin payment (a receipt in the receipts trie).
    Goat(GoatProof),
}

impl ProofBody {
    /// The `chain` tag of this body.
    pub fn chain(&self) -> &'static str {
        match self {
            ProofBody::Bitcoin(_) => "bitcoin",
            ProofBody::Goat(_) => "goat",
        }
    }
}

/// A proof file that cannot be read.
#[derive(Debug, Error)]
pub enum ProofFileError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a proof file.
    #[error("{path}:{line}:{column}: {message}")]
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
    /// Another format or version.
    #[error("{path}: format `{format}` version {version} is not supported (this gmrelay reads `{PROOF_FORMAT}` version {PROOF_VERSION})")]
    Unsupported {
        /// The file.
        path: String,
        /// Its format.
        format: String,
        /// Its version.
        version: u32,
    },
}

impl ProofFile {
    /// Wraps a Bitcoin proof.
    pub fn bitcoin(proof: BtcProof) -> Self {
        ProofFile {
            format: PROOF_FORMAT.into(),
            version: PROOF_VERSION,
            body: ProofBody::Bitcoin(proof),
        }
    }

    /// Wraps a GOAT proof.
    pub fn goat(proof: GoatProof) -> Self {
        ProofFile {
            format: PROOF_FORMAT.into(),
            version: PROOF_VERSION,
            body: ProofBody::Goat(proof),
        }
    }

    /// Parses a proof file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ProofFileError> {
        let parse_err = |e: serde_json::Error| ProofFileError::Parse {
            path: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let given: serde_json::Value = serde_json::from_str(text).map_err(parse_err)?;
        // The envelope first, so an old or foreign file gets a clear message.
        let format = given["format"].as_str().unwrap_or_default().to_string();
        let version = given["version"].as_u64().unwrap_or(0);
        if format != PROOF_FORMAT || version != u64::from(PROOF_VERSION) {
            return Err(ProofFileError::Unsupported {
                path: origin.to_string(),
                format,
                version: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        // Typed from the text, so type errors keep their line and column.
        let parsed: ProofFile = serde_json::from_str(text).map_err(parse_err)?;
        // serde cannot refuse unknown fields through a flattened, tagged
        // body: compare the keys with what the parsed proof writes back.
        let known = serde_json::to_value(&parsed).expect("a proof serializes");
        if let (Some(g), Some(k)) = (given.as_object(), known.as_object()) {
            if let Some(extra) = g.keys().find(|key| !k.contains_key(*key)) {
                return Err(ProofFileError::Parse {
                    path: origin.to_string(),
                    line: 0,
                    column: 0,
                    message: format!("unknown field `{extra}`"),
                });
            }
        }
        Ok(parsed)
    }

    /// Reads a proof file.
    pub fn load(path: &Path) -> Result<Self, ProofFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProofFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Writes the proof atomically (a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), ProofFileError> {
        let io = |source| ProofFileError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_string_pretty(self).expect("a proof serializes");
        let tmp = path.with_extension("tmp-gmrelay");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
