//! Header files: raw concatenated 80-byte headers, as `headers export`
//! writes and `headers import` / `headers verify` read them.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::BlockHash;
use serde::Serialize;
use thiserror::Error;

use super::chain::{check_proof_of_work, expected_bits, median_time_past, Ancestry, Rule};
use super::network::{
    BtcNetwork, MAX_FUTURE_BLOCK_TIME, MAX_TIMEWARP, MEDIAN_TIME_SPAN, RETARGET_INTERVAL,
};

/// A header file that cannot be read.
#[derive(Debug, Error)]
pub enum HeaderFileError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a whole number of headers.
    #[error("{path}: {len} bytes is not a whole number of 80-byte headers ({rest} bytes left over after header {count})")]
    Length {
        /// The file.
        path: String,
        /// File size.
        len: usize,
        /// Trailing bytes.
        rest: usize,
        /// Whole headers.
        count: usize,
    },
    /// An anchor argument that does not parse.
    #[error("anchor `{arg}`: {message} (expected <height>=<160 hex digits>)")]
    BadAnchor {
        /// The argument.
        arg: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads a header file.
pub fn read_headers(path: &Path) -> Result<Vec<Header>, HeaderFileError> {
    let bytes = std::fs::read(path).map_err(|source| HeaderFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_headers(&bytes, &path.display().to_string())
}

/// Splits bytes into headers; `origin` names the input in errors.
pub fn parse_headers(bytes: &[u8], origin: &str) -> Result<Vec<Header>, HeaderFileError> {
    if !bytes.len().is_multiple_of(80) {
        return Err(HeaderFileError::Length {
            path: origin.to_string(),
            len: bytes.len(),
            rest: bytes.len() % 80,
            count: bytes.len() / 80,
        });
    }
    Ok(bytes
        .chunks_exact(80)
        .map(|c| deserialize(c).expect("any 80 bytes decode as a header"))
        .collect())
}

/// Writes headers to a file atomically (a temporary file, then a rename).
pub fn write_headers(path: &Path, headers: &[Header]) -> Result<(), HeaderFileError> {
    let io = |source| HeaderFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp-gmrelay");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    for h in headers {
        f.write_all(&serialize(h)).map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Parses `<height>=<80-byte hex>`.
pub fn parse_anchor(arg: &str) -> Result<(u32, Header), HeaderFileError> {
    let bad = |message: &str| HeaderFileError::BadAnchor {
        arg: arg.to_string(),
        message: message.to_string(),
    };
    let (h, hex_part) = arg.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let height: u32 = h
        .trim()
        .parse()
        .map_err(|_| bad("height is not a number"))?;
    let bytes = hex::decode(hex_part.trim()).map_err(|_| bad("header is not hex"))?;
    if bytes.len() != 80 {
        return Err(bad("header is not 80 bytes"));
    }
    let header = deserialize(&bytes).map_err(|_| bad("header does not decode"))?;
    Ok((height, header))
}

/// The first bad header of a file.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("header {index} of the file (height {height}, hash {hash}) breaks a rule: {rule}")]
pub struct BadHeader {
    /// 0-based position in the file.
    pub index: usize,
    /// Its height (`u64`: a start height near the top of `u32` is reported,
    /// never wrapped).
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// The rule, as text.
    pub rule: String,
}

/// What a stateless check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Headers checked.
    pub count: usize,
    /// First height.
    pub first_height: u32,
    /// Last height (the first height when the file is empty).
    pub last_height: u32,
    /// Hash of the last header.
    pub last_hash: Option<BlockHash>,
    /// Checks that could not be made for want of earlier headers, as
    /// `(first height, last height, check)`; pass `--anchor` to make them.
    pub unchecked: Vec<(u32, u32, String)>,
}

fn note(unchecked: &mut Vec<(u32, u32, String)>, height: u32, what: String) {
    if let Some(last) = unchecked.iter_mut().rev().find(|u| u.2 == what) {
        if last.1 + 1 == height {
            last.1 = height;
            return;
        }
    }
    unchecked.push((height, height, what));
}

struct MapAncestry<'a>(&'a HashMap<u32, Header>);

impl Ancestry for MapAncestry<'_> {
    fn at(&self, height: u32) -> Option<&Header> {
        self.0.get(&height)
    }
}

/// Checks a header file without any store: links, proof of work, `bits`
/// (retargets included, where the anchors give the period's first header),
/// median time past, BIP94 timewarp, time ≤ `now` + 2 h and version.
/// Returns the first bad header, or a report of what could not be checked.
pub fn verify_file(
    network: BtcNetwork,
    headers: &[Header],
    start_height: u32,
    anchors: &[(u32, Header)],
    now: u32,
) -> Result<VerifyReport, BadHeader> {
    let rules = network.rules();
    let mut known: HashMap<u32, Header> = anchors.iter().copied().collect();
    let mut unchecked = Vec::new();
    let mut last_height = start_height;
    for (i, header) in headers.iter().enumerate() {
        let wide = u64::from(start_height) + i as u64;
        let Ok(height) = u32::try_from(wide) else {
            return Err(BadHeader {
                index: i,
                height: wide,
                hash: header.block_hash(),
                rule: format!(
                    "no header can be above height {} (the file starts at height {start_height}: check the start height)",
                    u32::MAX
                ),
            });
        };
        last_height = height;
        let bad = |rule: Rule| BadHeader {
            index: i,
            height: u64::from(height),
            hash: header.block_hash(),
            rule: rule.to_string(),
        };
        check_proof_of_work(header, rules).map_err(bad)?;
        let view = MapAncestry(&known);
        let parent = if height > 0 {
            view.at(height - 1)
        } else {
            None
        };
        match parent {
            Some(p) => {
                if header.prev_blockhash != p.block_hash() {
                    return Err(bad(Rule::BrokenLink {
                        expected_parent: p.block_hash(),
                    }));
                }
                match expected_bits(rules, header, height, p, &view) {
                    Ok(expected) if expected != header.bits => {
                        return Err(bad(Rule::BadBits {
                            expected: expected.to_consensus(),
                            got: header.bits.to_consensus(),
                        }))
                    }
                    Ok(_) => {}
                    Err(missing) => note(
                        &mut unchecked,
                        height,
                        format!("difficulty bits (needs the header at height {missing})"),
                    ),
                }
                if rules.enforce_bip94
                    && height % RETARGET_INTERVAL == 0
                    && i64::from(header.time) < i64::from(p.time) - MAX_TIMEWARP
                {
                    return Err(bad(Rule::TimewarpAttack {
                        parent_time: p.time,
                    }));
                }
            }
            None if height > 0 => note(
                &mut unchecked,
                height,
                "link, difficulty bits and timewarp (no parent)".into(),
            ),
            None => {}
        }
        // The median of fewer headers than the rule names is not the median
        // time past: check only with the full span, report otherwise.
        let (mtp, used) = median_time_past(height, &view);
        if used == (height as usize).min(MEDIAN_TIME_SPAN) {
            if used > 0 && header.time <= mtp {
                return Err(bad(Rule::TimeTooOld {
                    median_time_past: mtp,
                }));
            }
        } else {
            note(
                &mut unchecked,
                height,
                "median time past (fewer than the previous 11 headers)".into(),
            );
        }
        let max_time = i64::from(now) + MAX_FUTURE_BLOCK_TIME;
        if i64::from(header.time) > max_time {
            return Err(bad(Rule::TimeTooNew {
                max: max_time as u32,
            }));
        }
        let min = rules.min_version(height);
        if header.version.to_consensus() < min {
            return Err(bad(Rule::BadVersion { min }));
        }
        known.insert(height, *header);
    }
    Ok(VerifyReport {
        count: headers.len(),
        first_height: start_height,
        last_height,
        last_hash: headers.last().map(|h| h.block_hash()),
        unchecked,
    })
}
