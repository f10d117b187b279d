//! Consensus parameters of each Bitcoin network that matter to a header chain.
//!
//! Values are those of Bitcoin Core's `kernel/chainparams.cpp`; rust-bitcoin's
//! [`bitcoin::params::Params`] is used for the retarget arithmetic only (its
//! regtest activation heights predate Core's current ones).

use std::fmt;
use std::str::FromStr;

use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{params::Params, BlockHash, Network};
use serde::{Deserialize, Serialize};

/// Number of blocks between difficulty adjustments.
pub const RETARGET_INTERVAL: u32 = 2016;
/// Two weeks, the target duration of a difficulty period, in seconds.
pub const TARGET_TIMESPAN: i64 = 14 * 24 * 60 * 60;
/// Ten minutes, the target block spacing, in seconds.
pub const TARGET_SPACING: i64 = 10 * 60;
/// How far in the future a header's timestamp may be (Core's `MAX_FUTURE_BLOCK_TIME`).
pub const MAX_FUTURE_BLOCK_TIME: i64 = 2 * 60 * 60;
/// BIP94: how far before its parent the first block of a period may be dated.
pub const MAX_TIMEWARP: i64 = 600;
/// Number of previous blocks whose median time a new header must exceed.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// A Bitcoin network gmrelay can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BtcNetwork {
    /// Bitcoin mainnet.
    Mainnet,
    /// Testnet3 (20-minute minimum-difficulty rule, no BIP94).
    Testnet3,
    /// Testnet4 (BIP94).
    Testnet4,
    /// The default signet.
    Signet,
    /// Regtest: minimum difficulty, no retargeting.
    Regtest,
}

impl BtcNetwork {
    /// All networks, in a stable order.
    pub const ALL: [BtcNetwork; 5] = [
        BtcNetwork::Mainnet,
        BtcNetwork::Testnet3,
        BtcNetwork::Testnet4,
        BtcNetwork::Signet,
        BtcNetwork::Regtest,
    ];

    /// The name used in config files, `headers/<name>.json` and proof files.
    pub fn name(self) -> &'static str {
        match self {
            BtcNetwork::Mainnet => "mainnet",
            BtcNetwork::Testnet3 => "testnet3",
            BtcNetwork::Testnet4 => "testnet4",
            BtcNetwork::Signet => "signet",
            BtcNetwork::Regtest => "regtest",
        }
    }

    /// The rust-bitcoin network.
    pub fn bitcoin_network(self) -> Network {
        match self {
            BtcNetwork::Mainnet => Network::Bitcoin,
            BtcNetwork::Testnet3 => Network::Testnet,
            BtcNetwork::Testnet4 => Network::Testnet4,
            BtcNetwork::Signet => Network::Signet,
            BtcNetwork::Regtest => Network::Regtest,
        }
    }

    /// The chain name bitcoind's `getblockchaininfo` reports.
    pub fn core_chain_name(self) -> &'static str {
        match self {
            BtcNetwork::Mainnet => "main",
            BtcNetwork::Testnet3 => "test",
            BtcNetwork::Testnet4 => "testnet4",
            BtcNetwork::Signet => "signet",
            BtcNetwork::Regtest => "regtest",
        }
    }

    /// Hash of the network's genesis block.
    pub fn genesis_hash(self) -> BlockHash {
        bitcoin::constants::genesis_block(self.bitcoin_network()).block_hash()
    }

    /// The CAIP-2 chain id: `bip122:` and the first 32 hex digits of the genesis hash.
    pub fn caip2(self) -> String {
        format!("bip122:{}", &self.genesis_hash().to_string()[..32])
    }

    /// The consensus rules of this network.
    pub fn rules(self) -> &'static Rules {
        match self {
            BtcNetwork::Mainnet => &MAINNET,
            BtcNetwork::Testnet3 => &TESTNET3,
            BtcNetwork::Testnet4 => &TESTNET4,
            BtcNetwork::Signet => &SIGNET,
            BtcNetwork::Regtest => &REGTEST,
        }
    }
}

impl fmt::Display for BtcNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BtcNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mainnet" | "main" | "bitcoin" => Ok(BtcNetwork::Mainnet),
            "testnet3" | "testnet" | "test" => Ok(BtcNetwork::Testnet3),
            "testnet4" => Ok(BtcNetwork::Testnet4),
            "signet" => Ok(BtcNetwork::Signet),
            "regtest" => Ok(BtcNetwork::Regtest),
            other => Err(format!(
                "unknown Bitcoin network `{other}` (expected mainnet, testnet3, testnet4, signet or regtest)"
            )),
        }
    }
}

/// Header-level consensus rules of one network.
#[derive(Debug)]
pub struct Rules {
    /// Which network these rules belong to.
    pub network: BtcNetwork,
    /// Bitcoin Core's `powLimit` (the largest target), big-endian.
    pub pow_limit_be: [u8; 32],
    /// Minimum-difficulty blocks after 20 minutes (testnet3, testnet4, regtest).
    pub allow_min_difficulty: bool,
    /// `bits` never change (regtest).
    pub no_retargeting: bool,
    /// BIP94: retarget from the period's first block and the timewarp rule (testnet4).
    pub enforce_bip94: bool,
    /// Height from which `version >= 2` (BIP34).
    pub bip34_height: u32,
    /// Height from which `version >= 3` (BIP66).
    pub bip66_height: u32,
    /// Height from which `version >= 4` (BIP65).
    pub bip65_height: u32,
    rust_bitcoin: &'static Params,
}

const fn limit(prefix: [u8; 4], fill: u8) -> [u8; 32] {
    let mut out = [fill; 32];
    out[0] = prefix[0];
    out[1] = prefix[1];
    out[2] = prefix[2];
    out[3] = prefix[3];
    out
}

/// Mainnet.
pub static MAINNET: Rules = Rules {
    network: BtcNetwork::Mainnet,
    pow_limit_be: limit([0, 0, 0, 0], 0xff),
    allow_min_difficulty: false,
    no_retargeting: false,
    enforce_bip94: false,
    bip34_height: 227_931,
    bip66_height: 363_725,
    bip65_height: 388_381,
    rust_bitcoin: &bitcoin::params::MAINNET,
};

/// Testnet3.
pub static TESTNET3: Rules = Rules {
    network: BtcNetwork::Testnet3,
    pow_limit_be: limit([0, 0, 0, 0], 0xff),
    allow_min_difficulty: true,
    no_retargeting: false,
    enforce_bip94: false,
    bip34_height: 21_111,
    bip66_height: 330_776,
    bip65_height: 581_885,
    rust_bitcoin: &bitcoin::params::TESTNET3,
};

/// Testnet4.
pub static TESTNET4: Rules = Rules {
    network: BtcNetwork::Testnet4,
    pow_limit_be: limit([0, 0, 0, 0], 0xff),
    allow_min_difficulty: true,
    no_retargeting: false,
    enforce_bip94: true,
    bip34_height: 1,
    bip66_height: 1,
    bip65_height: 1,
    rust_bitcoin: &bitcoin::params::TESTNET4,
};

/// Signet (the default signet challenge).
pub static SIGNET: Rules = Rules {
    network: BtcNetwork::Signet,
    pow_limit_be: {
        let mut l = [0u8; 32];
        l[2] = 0x03;
        l[3] = 0x77;
        l[4] = 0xae;
        l
    },
    allow_min_difficulty: false,
    no_retargeting: false,
    enforce_bip94: false,
    bip34_height: 1,
    bip66_height: 1,
    bip65_height: 1,
    rust_bitcoin: &bitcoin::params::SIGNET,
};

/// Regtest.
pub static REGTEST: Rules = Rules {
    network: BtcNetwork::Regtest,
    pow_limit_be: limit([0x7f, 0xff, 0xff, 0xff], 0xff),
    allow_min_difficulty: true,
    no_retargeting: true,
    enforce_bip94: false,
    bip34_height: 1,
    bip66_height: 1,
    bip65_height: 1,
    rust_bitcoin: &bitcoin::params::REGTEST,
};

impl Rules {
    /// The pow limit as a target.
    pub fn pow_limit(&self) -> Target {
        Target::from_be_bytes(self.pow_limit_be)
    }

    /// The compact encoding of the pow limit (`0x1d00ffff` on mainnet).
    pub fn pow_limit_bits(&self) -> CompactTarget {
        self.pow_limit().to_compact_lossy()
    }

    /// The minimum header version at `height` (BIP34, BIP66, BIP65).
    pub fn min_version(&self, height: u32) -> i32 {
        if height >= self.bip65_height {
            4
        } else if height >= self.bip66_height {
            3
        } else if height >= self.bip34_height {
            2
        } else {
            1
        }
    }

    /// The `bits` of the first block of a new period, Bitcoin Core's
    /// `CalculateNextWorkRequired`.
    ///
    /// `first_time` is the timestamp of the previous period's first block,
    /// `last` the parent header's time and bits, and `first_bits` the bits of
    /// the period's first block (used instead of `last_bits` under BIP94).
    pub fn retarget(
        &self,
        first_time: u32,
        first_bits: CompactTarget,
        last_time: u32,
        last_bits: CompactTarget,
    ) -> CompactTarget {
        if self.no_retargeting {
            return last_bits;
        }
        let timespan = (i64::from(last_time) - i64::from(first_time))
            .clamp(TARGET_TIMESPAN / 4, TARGET_TIMESPAN * 4);
        let base = if self.enforce_bip94 {
            first_bits
        } else {
            last_bits
        };
        // The clamp above makes the value non-negative; rust-bitcoin clamps
        // again, multiplies, divides and caps at the pow limit like Core.
        CompactTarget::from_next_work_required(base, timespan as u64, self.rust_bitcoin)
    }
}

/// Rules with regtest's easy pow limit but chosen difficulty behaviour, so
/// tests can mine headers in microseconds and still exercise retargets,
/// minimum-difficulty blocks and BIP94.
#[cfg(test)]
pub(crate) fn test_rules(
    allow_min_difficulty: bool,
    no_retargeting: bool,
    enforce_bip94: bool,
) -> &'static Rules {
    let mut params = Params::REGTEST.clone();
    params.no_pow_retargeting = no_retargeting;
    params.allow_min_difficulty_blocks = allow_min_difficulty;
    Box::leak(Box::new(Rules {
        network: BtcNetwork::Regtest,
        pow_limit_be: REGTEST.pow_limit_be,
        allow_min_difficulty,
        no_retargeting,
        enforce_bip94,
        bip34_height: 1,
        bip66_height: 1,
        bip65_height: 1,
        rust_bitcoin: Box::leak(Box::new(params)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_limits_encode_like_core() {
        assert_eq!(MAINNET.pow_limit_bits().to_consensus(), 0x1d00ffff);
        assert_eq!(TESTNET4.pow_limit_bits().to_consensus(), 0x1d00ffff);
        assert_eq!(SIGNET.pow_limit_bits().to_consensus(), 0x1e0377ae);
        assert_eq!(REGTEST.pow_limit_bits().to_consensus(), 0x207fffff);
    }

    #[test]
    fn genesis_bits_are_the_pow_limit() {
        for net in BtcNetwork::ALL {
            let genesis = bitcoin::constants::genesis_block(net.bitcoin_network());
            assert_eq!(genesis.header.bits, net.rules().pow_limit_bits(), "{net}");
        }
    }

    #[test]
    fn caip2_of_mainnet() {
        assert_eq!(
            BtcNetwork::Mainnet.caip2(),
            "bip122:000000000019d6689c085ae165831e93"
        );
    }

    #[test]
    fn names_round_trip() {
        for net in BtcNetwork::ALL {
            assert_eq!(net.name().parse::<BtcNetwork>().unwrap(), net);
        }
        assert!("litecoin".parse::<BtcNetwork>().is_err());
    }
}
