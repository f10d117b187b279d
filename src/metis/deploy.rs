//! Deploying the three contracts, and the deployment file where the other
//! commands (and a future daemon) find their addresses.
//!
//! BtcLightClient starts from the Bitcoin checkpoint stored in the store
//! (its header, height and chainwork), in Regtest mode for regtest and
//! Mainnet mode (full retargeting) otherwise.

use std::path::Path;

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use bitcoin::consensus::serialize;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::info;

use super::bindings::{
    BtcLightClient, GoatHeaderStore, PaymentSettlement, NETWORK_MAINNET, NETWORK_REGTEST,
    NETWORK_TESTNET4,
};
use super::sender::{Sender, TxPolicy};
use super::sink::{map_transport, provider, Contracts, MetisError};
use crate::btc::network::BtcNetwork;
use crate::store::{Store, StoreError};

/// The `format` field of a deployment file.
pub const DEPLOYMENT_FORMAT: &str = "gmrelay-metis-deployment";
/// Its version.
pub const DEPLOYMENT_VERSION: u32 = 1;

/// A deployment file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Always [`DEPLOYMENT_FORMAT`].
    pub format: String,
    /// [`DEPLOYMENT_VERSION`].
    pub version: u32,
    /// The Metis chain id.
    pub metis_chain_id: u64,
    /// BtcLightClient.
    pub btc_light_client: Address,
    /// GoatHeaderStore.
    pub goat_header_store: Address,
    /// PaymentSettlement.
    pub payment_settlement: Address,
    /// The Bitcoin network BtcLightClient follows.
    pub btc_network: BtcNetwork,
    /// Its checkpoint height.
    pub btc_checkpoint_height: u32,
    /// Its checkpoint hash (display order).
    pub btc_checkpoint_hash: String,
    /// The GOAT chain GoatHeaderStore attests.
    pub goat_chain_id: u64,
    /// The committee.
    pub committee: Vec<Address>,
    /// Its threshold.
    pub threshold: u64,
    /// Confirmations PaymentSettlement requires of BTC payments.
    pub min_btc_confirmations: u64,
    /// How PaymentSettlement learns GOAT blocks: `committee` (GoatHeaderStore,
    /// at `goat_header_store`) or `consensus` (GoatLightClient, at the same key).
    #[serde(default)]
    pub goat_trust: GoatTrust,
    /// The devnet stablecoin on the GOAT chain, if one was deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goat_test_token: Option<Address>,
    /// The deployer.
    pub deployer: Address,
}

/// What vouches for GOAT blocks on Metis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoatTrust {
    /// An M-of-N committee of attesters (GoatHeaderStore).
    #[default]
    Committee,
    /// GOAT's validators' CometBFT commits (GoatLightClient).
    Consensus,
}

/// A deployment file problem.
#[derive(Debug, Error)]
pub enum DeploymentError {
    /// I/O.
    #[error("deployment file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a deployment file.
    #[error("deployment file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Deployment {
    /// The three addresses.
    pub fn contracts(&self) -> Contracts {
        Contracts {
            btc_light_client: self.btc_light_client,
            goat_header_store: self.goat_header_store,
            payment_settlement: self.payment_settlement,
        }
    }

    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self, DeploymentError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let d: Deployment = serde_json::from_str(&text).map_err(|e| DeploymentError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if d.format != DEPLOYMENT_FORMAT || d.version != DEPLOYMENT_VERSION {
            return Err(DeploymentError::Parse {
                path: path.display().to_string(),
                message: format!(
                    "format `{}` version {} (this gmrelay reads `{DEPLOYMENT_FORMAT}` version {DEPLOYMENT_VERSION})",
                    d.format, d.version
                ),
            });
        }
        Ok(d)
    }

    /// Writes the file atomically (a temporary file in the same directory, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), DeploymentError> {
        let io = |source| DeploymentError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).expect("a deployment serializes");
        let tmp = path.with_extension("json.tmp-gmrelay");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// BtcLightClient's constructor arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtcCheckpointArgs {
    /// The checkpoint's 80-byte header.
    pub header: Bytes,
    /// Its height.
    pub height: u32,
    /// Cumulative chainwork up to and including it.
    pub chainwork: U256,
    /// [`NETWORK_MAINNET`], [`NETWORK_REGTEST`] or [`NETWORK_TESTNET4`].
    pub mode: u8,
    /// The timestamps of the 11 blocks ending at the checkpoint, oldest
    /// first (median-time-past of the first headers after it). Blocks below
    /// the store's checkpoint are not stored: their slots repeat the oldest
    /// time known, which only loosens the rule for the first 10 blocks.
    pub times: [u32; 11],
    /// The network's pow limit.
    pub pow_limit: U256,
    /// The network.
    pub network: BtcNetwork,
    /// The checkpoint hash (display order).
    pub hash: String,
}

impl BtcCheckpointArgs {
    /// A checkpoint at the regtest genesis block (for benchmarks and tests
    /// that mine their own chain on top of it).
    pub fn regtest_genesis() -> BtcCheckpointArgs {
        let g = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        BtcCheckpointArgs {
            header: Bytes::from(serialize(&g)),
            height: 0,
            chainwork: U256::from_be_bytes(g.work().to_be_bytes()),
            mode: super::bindings::NETWORK_REGTEST,
            times: [g.time; 11],
            pow_limit: U256::from_be_bytes(BtcNetwork::Regtest.rules().pow_limit_be),
            network: BtcNetwork::Regtest,
            hash: g.block_hash().to_string(),
        }
    }
}

/// Why the checkpoint cannot be taken from the store.
#[derive(Debug, Error)]
pub enum CheckpointArgsError {
    /// Nothing synced.
    #[error("the store holds no Bitcoin chain: run `gmrelay headers sync` first")]
    EmptyStore,
    /// The store lacks the checkpoint's header.
    #[error("the store lacks its checkpoint header {0}")]
    MissingHeader(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A network BtcLightClient cannot secure.
    #[error("BtcLightClient cannot secure Bitcoin signet: signet blocks are authorized by the signet signers' signatures, which the contract does not check, and signet proof of work is trivial, so anyone could relay a heavier fake chain")]
    UnsupportedNetwork,
    /// Testnet3's rules are not implemented on-chain.
    #[error("BtcLightClient implements mainnet, testnet4 (BIP94) and regtest rules; testnet3's minimum-difficulty walk-back without BIP94 is not implemented: stage on testnet4")]
    Testnet3,
}

/// The contract's validation mode for a network: Regtest (no retargeting),
/// Testnet4 (minimum-difficulty blocks, BIP94) or Mainnet.
pub fn contract_mode(network: BtcNetwork) -> u8 {
    match network {
        BtcNetwork::Regtest => NETWORK_REGTEST,
        BtcNetwork::Testnet4 => NETWORK_TESTNET4,
        _ => NETWORK_MAINNET,
    }
}

/// BtcLightClient's constructor arguments from the store's checkpoint.
pub fn checkpoint_args<S: Store>(store: &S) -> Result<BtcCheckpointArgs, CheckpointArgsError> {
    let (network, height, hash) = store.btc_origin()?.ok_or(CheckpointArgsError::EmptyStore)?;
    if network == BtcNetwork::Signet {
        return Err(CheckpointArgsError::UnsupportedNetwork);
    }
    if network == BtcNetwork::Testnet3 {
        return Err(CheckpointArgsError::Testnet3);
    }
    let v = store
        .btc_header(&hash)?
        .ok_or_else(|| CheckpointArgsError::MissingHeader(hash.to_string()))?;
    let time = v.header().time;
    let times = [time; 11];
    Ok(BtcCheckpointArgs {
        header: Bytes::from(serialize(v.header())),
        height,
        chainwork: U256::from_be_bytes(v.chainwork().to_be_bytes()),
        mode: contract_mode(network),
        times,
        pow_limit: U256::from_be_bytes(network.rules().pow_limit_be),
        network,
        hash: hash.to_string(),
    })
}

/// Everything [`deploy`] needs.
#[derive(Debug, Clone)]
pub struct DeployParams {
    /// BtcLightClient's checkpoint.
    pub checkpoint: BtcCheckpointArgs,
    /// Committee members.
    pub committee: Vec<Address>,
    /// Threshold.
    pub threshold: u64,
    /// The attested GOAT chain.
    pub goat_chain_id: u64,
    /// Confirmations required of BTC payments.
    pub min_btc_confirmations: u64,
    /// Deploy GoatLightClient from this trusted CometBFT header instead of
    /// GoatHeaderStore (the committee is then unused).
    pub goat_light_client: Option<super::goatlc::LightClientArgs>,
}

/// Deploys BtcLightClient, GoatHeaderStore and PaymentSettlement from `deployer`
/// on the node at `url` (which must report `chain_id`).
pub async fn deploy(
    url: &str,
    chain_id: u64,
    deployer: PrivateKeySigner,
    params: &DeployParams,
) -> Result<Deployment, MetisError> {
    let from = deployer.address();
    let p: DynProvider = provider(url)?;
    let found = p
        .get_chain_id()
        .await
        .map_err(|e| map_transport(url, "eth_chainId", e))?;
    if found != chain_id {
        return Err(MetisError::WrongChain {
            endpoint: url.to_string(),
            expected: chain_id,
            found,
        });
    }
    let sender = deployer_sender(&p, deployer, url, chain_id);
    let created = |what: &'static str, o: super::sink::TxOutcome| {
        o.contract_address.ok_or_else(|| MetisError::Rpc {
            endpoint: url.to_string(),
            what: what.to_string(),
            message: format!("transaction {} created no contract", o.tx_hash),
        })
    };
    let c = &params.checkpoint;
    let req = BtcLightClient::deploy_builder(
        p.clone(),
        c.header.clone(),
        U256::from(c.height),
        c.chainwork,
        c.mode,
        c.pow_limit,
        c.times,
    )
    .into_transaction_request();
    let what = "deploying BtcLightClient";
    let btc = created(what, sender.send(what, "deployment", req).await?)?;
    info!(address = %btc, "BtcLightClient deployed");
    let (goat, goat_trust) = match &params.goat_light_client {
        None => {
            let req = GoatHeaderStore::deploy_builder(
                p.clone(),
                params.committee.clone(),
                U256::from(params.threshold),
                U256::from(params.goat_chain_id),
            )
            .into_transaction_request();
            let what = "deploying GoatHeaderStore";
            let goat = created(what, sender.send(what, "deployment", req).await?)?;
            info!(address = %goat, "GoatHeaderStore deployed");
            (goat, GoatTrust::Committee)
        }
        Some(a) => {
            let req = super::bindings::GoatLightClient::deploy_builder(
                p.clone(),
                a.comet_chain_id.clone(),
                U256::from(params.goat_chain_id),
                a.height,
                a.secs,
                a.nanos,
                a.header_hash,
                a.next_validators_hash,
                a.validators.clone(),
                U256::from(a.trusting_period),
            )
            .into_transaction_request();
            let what = "deploying GoatLightClient";
            let goat = created(what, sender.send(what, "deployment", req).await?)?;
            info!(address = %goat, height = a.height, "GoatLightClient deployed");
            (goat, GoatTrust::Consensus)
        }
    };
    // PaymentSettlement checks at construction that the light client follows
    // this network (with its proof-of-work limit) and the store this GOAT chain.
    let req = PaymentSettlement::deploy_builder(
        p.clone(),
        btc,
        goat,
        U256::from(params.min_btc_confirmations),
        c.mode,
        U256::from(params.goat_chain_id),
    )
    .into_transaction_request();
    let what = "deploying PaymentSettlement";
    let settlement = created(what, sender.send(what, "deployment", req).await?)?;
    info!(address = %settlement, "PaymentSettlement deployed");
    Ok(Deployment {
        format: DEPLOYMENT_FORMAT.into(),
        version: DEPLOYMENT_VERSION,
        metis_chain_id: chain_id,
        btc_light_client: btc,
        goat_header_store: goat,
        payment_settlement: settlement,
        btc_network: c.network,
        btc_checkpoint_height: c.height,
        btc_checkpoint_hash: c.hash.clone(),
        goat_chain_id: params.goat_chain_id,
        committee: if goat_trust == GoatTrust::Committee {
            params.committee.clone()
        } else {
            Vec::new()
        },
        threshold: if goat_trust == GoatTrust::Committee {
            params.threshold
        } else {
            0
        },
        min_btc_confirmations: params.min_btc_confirmations,
        goat_trust,
        goat_test_token: None,
        deployer: from,
    })
}

/// A sender for deployments: legacy transactions priced from `eth_gasPrice`,
/// as Metis takes them, with no outbox.
fn deployer_sender(
    p: &DynProvider,
    deployer: PrivateKeySigner,
    url: &str,
    chain_id: u64,
) -> Sender {
    Sender::new(
        p.clone(),
        alloy::network::EthereumWallet::from(deployer),
        url,
        chain_id,
        TxPolicy::default(),
        None,
    )
}

/// Deploys an AccessPass (the example service) for `merchant`'s invoices
/// settled by `settlement`; returns its address.
pub async fn deploy_access_pass(
    url: &str,
    chain_id: u64,
    deployer: PrivateKeySigner,
    settlement: Address,
    merchant: Address,
) -> Result<Address, MetisError> {
    let p: DynProvider = provider(url)?;
    let sender = deployer_sender(&p, deployer, url, chain_id);
    let req = super::bindings::AccessPass::deploy_builder(p, settlement, merchant)
        .into_transaction_request();
    let what = "deploying AccessPass";
    let o = sender.send(what, "deployment", req).await?;
    let address = o.contract_address.ok_or_else(|| MetisError::Rpc {
        endpoint: url.to_string(),
        what: what.to_string(),
        message: format!("transaction {} created no contract", o.tx_hash),
    })?;
    info!(address = %address, "AccessPass deployed");
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_file_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/deployment.json");
        let d = Deployment {
            format: DEPLOYMENT_FORMAT.into(),
            version: DEPLOYMENT_VERSION,
            metis_chain_id: 1088,
            btc_light_client: Address::repeat_byte(1),
            goat_header_store: Address::repeat_byte(2),
            payment_settlement: Address::repeat_byte(3),
            btc_network: BtcNetwork::Regtest,
            btc_checkpoint_height: 0,
            btc_checkpoint_hash: "00".into(),
            goat_chain_id: 2345,
            committee: vec![Address::repeat_byte(4)],
            threshold: 1,
            min_btc_confirmations: 6,
            goat_trust: GoatTrust::Committee,
            goat_test_token: None,
            deployer: Address::repeat_byte(5),
        };
        d.save(&path).unwrap();
        assert_eq!(Deployment::load(&path).unwrap(), d);
        std::fs::write(&path, "{\"format\":\"x\"}").unwrap();
        assert!(Deployment::load(&path).is_err());
    }
}
