//! alloy bindings generated from the committed contract artifacts
//! (`contracts/artifacts/*.json`: ABI and creation bytecode), and a decoder
//! that names any custom error the three contracts can revert with.

use std::fmt;
use std::sync::OnceLock;

use alloy::dyn_abi::{DynSolValue, ErrorExt};
use alloy::json_abi::JsonAbi;
use alloy::primitives::hex;

/// `BtcLightClient` (and the `IBtcLightClient.TxProof` struct its ABI uses).
pub mod btc_light_client {
    alloy::sol!(
        #[allow(missing_docs, clippy::too_many_arguments)]
        #[sol(rpc)]
        #[derive(Debug)]
        BtcLightClient,
        "contracts/artifacts/BtcLightClient.json"
    );
}

/// `GoatHeaderStore`.
pub mod goat_header_store {
    alloy::sol!(
        #[allow(missing_docs, clippy::too_many_arguments)]
        #[sol(rpc)]
        #[derive(Debug)]
        GoatHeaderStore,
        "contracts/artifacts/GoatHeaderStore.json"
    );
}

/// `PaymentSettlement` (with its `BtcProof`, `GoatProof` and `Invoice` structs).
pub mod payment_settlement {
    alloy::sol!(
        #[allow(missing_docs, clippy::too_many_arguments)]
        #[sol(rpc)]
        #[derive(Debug)]
        PaymentSettlement,
        "contracts/artifacts/PaymentSettlement.json"
    );
}

/// `AccessPass`, the example service a settlement unlocks.
pub mod access_pass {
    alloy::sol!(
        #[allow(missing_docs, clippy::too_many_arguments)]
        #[sol(rpc)]
        #[derive(Debug)]
        AccessPass,
        "contracts/artifacts/AccessPass.json"
    );
}

/// `GoatLightClient`: GOAT blocks made final by GOAT's CometBFT consensus.
pub mod goat_light_client {
    alloy::sol!(
        #[allow(missing_docs, clippy::too_many_arguments)]
        #[sol(rpc)]
        #[derive(Debug)]
        GoatLightClient,
        "contracts/artifacts/GoatLightClient.json"
    );
}

pub use access_pass::AccessPass;
pub use btc_light_client::BtcLightClient;
pub use goat_header_store::GoatHeaderStore;
pub use goat_light_client::GoatLightClient;
pub use payment_settlement::PaymentSettlement;

/// `PaymentSettlement.Rail`: 0 BTC.
pub const RAIL_BTC: u8 = 0;
/// `PaymentSettlement.Rail`: 1 GOAT.
pub const RAIL_GOAT: u8 = 1;
/// `BtcLightClient.Network`: 0 Mainnet (full retargeting).
pub const NETWORK_MAINNET: u8 = 0;
/// `BtcLightClient.Network`: 1 Regtest (no retargeting).
pub const NETWORK_REGTEST: u8 = 1;
/// `BtcLightClient.Network`: 2 Testnet4 (mainnet rules, minimum-difficulty blocks, BIP94).
pub const NETWORK_TESTNET4: u8 = 2;

const ARTIFACTS: [(&str, &str); 4] = [
    (
        "PaymentSettlement",
        include_str!("../../contracts/artifacts/PaymentSettlement.json"),
    ),
    (
        "BtcLightClient",
        include_str!("../../contracts/artifacts/BtcLightClient.json"),
    ),
    (
        "GoatHeaderStore",
        include_str!("../../contracts/artifacts/GoatHeaderStore.json"),
    ),
    (
        "AccessPass",
        include_str!("../../contracts/artifacts/AccessPass.json"),
    ),
];

fn abis() -> &'static [(&'static str, JsonAbi)] {
    static ABIS: OnceLock<Vec<(&'static str, JsonAbi)>> = OnceLock::new();
    ABIS.get_or_init(|| {
        ARTIFACTS
            .iter()
            .map(|(name, text)| {
                #[derive(serde::Deserialize)]
                struct Artifact {
                    abi: JsonAbi,
                }
                let a: Artifact =
                    serde_json::from_str(text).expect("committed artifacts are valid JSON ABIs");
                (*name, a.abi)
            })
            .collect()
    })
}

/// A revert reason decoded against the error sets of PaymentSettlement,
/// BtcLightClient and GoatHeaderStore (plus Solidity's `Error(string)` and
/// `Panic(uint256)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRevert {
    /// The contract whose ABI declares the error (`Solidity` for Error/Panic,
    /// empty when unknown).
    pub contract: &'static str,
    /// The error's name (`unknown` when no ABI declares the selector).
    pub name: String,
    /// `(parameter name, value)` pairs.
    pub args: Vec<(String, String)>,
    /// The raw revert data.
    pub data: Vec<u8>,
}

impl DecodedRevert {
    /// `Name(arg=value, …)`.
    pub fn signature(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(n, v)| {
                if n.is_empty() {
                    v.clone()
                } else {
                    format!("{n}={v}")
                }
            })
            .collect();
        format!("{}({})", self.name, args.join(", "))
    }
}

impl fmt::Display for DecodedRevert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.contract.is_empty() {
            write!(f, "unknown revert data 0x{}", hex::encode(&self.data))
        } else {
            write!(f, "{} [{}]", self.signature(), self.contract)?;
            if let Some(hint) = hint(&self.name) {
                write!(f, ": {hint}")?;
            }
            Ok(())
        }
    }
}

/// What an operator should do about a custom error, when there is something to say.
fn hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "UnknownHeader" | "NotOnBestChain" => {
            "the block is not on the light client's best chain: run `gmrelay metis relay-headers` (and check for a reorg)"
        }
        "InsufficientConfirmations" => {
            "wait for more Bitcoin blocks, sync them and run `gmrelay metis relay-headers`"
        }
        "UnknownGoatBlock" => "the GOAT block is not attested: pass the committee's signatures inline or `gmrelay metis attest-goat --block <n>`",
        "InvalidMerchantSignature" => "the invoice terms are not signed by their merchant for this PaymentSettlement and chain",
        "TermsMismatch" => "the terms differ from the ones the merchant stored with createInvoice",
        "AlreadySettled" => "the invoice is already settled",
        "PaidAfterExpiry" => "the payment was mined after the invoice's expiry",
        "LightClientNetwork" => "the BtcLightClient follows another Bitcoin network than the one named at deployment",
        "InsufficientGasForService" => "give the transaction more gas: the service hook needs its full allowance",
        "TooFewAttestations" => "collect more committee signatures",
        "UnknownParent" => "the batch does not start on a stored header: relay from a stored ancestor",
        _ => return None,
    })
}

fn render(v: &DynSolValue) -> String {
    match v {
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::FixedBytes(w, size) => format!("0x{}", hex::encode(&w[..*size])),
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Array(a) | DynSolValue::FixedArray(a) | DynSolValue::Tuple(a) => {
            format!("[{}]", a.iter().map(render).collect::<Vec<_>>().join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// Decodes revert data into the named custom error of one of the
/// contracts. Never fails: unknown data is kept raw.
pub fn decode_revert(data: &[u8]) -> DecodedRevert {
    let unknown = || DecodedRevert {
        contract: "",
        name: "unknown".into(),
        args: Vec::new(),
        data: data.to_vec(),
    };
    if data.len() < 4 {
        return unknown();
    }
    let selector: [u8; 4] = data[..4].try_into().expect("4 bytes");
    // Error(string) and Panic(uint256).
    if selector == [0x08, 0xc3, 0x79, 0xa0] {
        if let Ok(DynSolValue::String(s)) =
            alloy::dyn_abi::DynSolType::String.abi_decode(&data[4..])
        {
            return DecodedRevert {
                contract: "Solidity",
                name: "Error".into(),
                args: vec![(String::new(), format!("{s:?}"))],
                data: data.to_vec(),
            };
        }
    }
    if selector == [0x4e, 0x48, 0x7b, 0x71] {
        if let Ok(DynSolValue::Uint(code, _)) =
            alloy::dyn_abi::DynSolType::Uint(256).abi_decode(&data[4..])
        {
            return DecodedRevert {
                contract: "Solidity",
                name: "Panic".into(),
                args: vec![("code".into(), format!("{code:#x}"))],
                data: data.to_vec(),
            };
        }
    }
    for (contract, abi) in abis() {
        for error in abi.errors() {
            if error.selector().0 != selector {
                continue;
            }
            if let Ok(decoded) = error.decode_error(data) {
                let args = error
                    .inputs
                    .iter()
                    .zip(decoded.body.iter())
                    .map(|(p, v)| (p.name.clone(), render(v)))
                    .collect();
                return DecodedRevert {
                    contract,
                    name: error.name.clone(),
                    args,
                    data: data.to_vec(),
                };
            }
        }
    }
    unknown()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError;

    #[test]
    fn decodes_custom_errors_of_each_contract() {
        let e = PaymentSettlement::AmountTooLow {
            paid: alloy::primitives::U256::from(5),
            required: alloy::primitives::U256::from(9),
        };
        let d = decode_revert(&e.abi_encode());
        assert_eq!(d.contract, "PaymentSettlement");
        assert_eq!(d.signature(), "AmountTooLow(paid=5, required=9)");
        let e = BtcLightClient::BadBits {
            height: alloy::primitives::U256::from(2016),
            expected: 0x1d00ffff,
            got: 0x207fffff,
        };
        let d = decode_revert(&e.abi_encode());
        assert_eq!(d.name, "BadBits");
        assert_eq!(d.contract, "BtcLightClient");
        let e = GoatHeaderStore::TooFewAttestations {
            got: alloy::primitives::U256::from(2),
            need: alloy::primitives::U256::from(3),
        };
        assert_eq!(
            decode_revert(&e.abi_encode()).signature(),
            "TooFewAttestations(got=2, need=3)"
        );
        let d = decode_revert(&[1, 2, 3, 4, 5]);
        assert_eq!(d.name, "unknown");
        assert!(d.to_string().contains("0x0102030405"));
    }
}
