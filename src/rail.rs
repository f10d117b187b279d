//! The payment rails, one spelling for the CLI, the daemon, the contracts
//! and the proofs.

use serde::{Deserialize, Serialize};

/// Where a payment is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Rail {
    /// Bitcoin: an output to the invoice's script and an OP_RETURN with its id.
    Btc,
    /// GOAT Network: an EIP-3009 stablecoin transfer whose nonce is the id.
    Goat,
}

impl Rail {
    /// The contracts' `uint8` (PaymentSettlement's `Rail` enum).
    pub fn as_u8(self) -> u8 {
        match self {
            Rail::Btc => crate::metis::bindings::RAIL_BTC,
            Rail::Goat => crate::metis::bindings::RAIL_GOAT,
        }
    }

    /// From the contracts' `uint8`.
    pub fn from_u8(v: u8) -> Option<Rail> {
        match v {
            x if x == crate::metis::bindings::RAIL_BTC => Some(Rail::Btc),
            x if x == crate::metis::bindings::RAIL_GOAT => Some(Rail::Goat),
            _ => None,
        }
    }

    /// `btc` or `goat`.
    pub fn name(self) -> &'static str {
        match self {
            Rail::Btc => "btc",
            Rail::Goat => "goat",
        }
    }
}

impl std::fmt::Display for Rail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_numbering_round_trips() {
        for r in [Rail::Btc, Rail::Goat] {
            assert_eq!(Rail::from_u8(r.as_u8()), Some(r));
        }
        assert_eq!(Rail::from_u8(9), None);
        assert_eq!(serde_json::to_string(&Rail::Goat).unwrap(), "\"goat\"");
    }
}
