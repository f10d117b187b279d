//! The application context: everything built from the settings (store,
//! Bitcoin and GOAT sources, checkpoints, the Metis sink and its key),
//! in one place, so the CLI, the daemon and the HTTP API build them alike.
//! Nothing here parses arguments or prints.

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, bail, Context, Result};
use bitcoin::{Address as BtcAddress, ScriptBuf};

use crate::btc::checkpoint::Checkpoint;
use crate::btc::network::BtcNetwork;
use crate::btc::rpc::{Auth, BitcoindRpc};
use crate::btc::sync::SyncOptions;
use crate::config::{Config, GoatFinality};
use crate::goat::chain::Finality;
use crate::goat::checkpoint::GoatCheckpoint;
use crate::goat::payment::PaymentPolicy;
use crate::goat::source::GoatRpc;
use crate::goat::sync::GoatSyncOptions;
use crate::metis::deploy::Deployment;
use crate::metis::sink::{AlloySink, Contracts};
use crate::store::RocksStore;

/// The bitcoind client the settings describe.
pub fn btc_source(config: &Config) -> Result<BitcoindRpc> {
    let b = &config.btc;
    let auth = match (&b.cookie_file, &b.rpc_user, &b.rpc_password) {
        (Some(c), _, _) => Auth::Cookie(crate::config::expand_home(c)),
        (None, Some(u), Some(p)) => Auth::UserPass(u.clone(), p.clone()),
        _ => Auth::None,
    };
    Ok(BitcoindRpc::new(
        &config.btc_rpc_url(),
        auth,
        config.btc_timeout(),
    )?)
}

/// The checkpoint the settings select.
pub fn btc_checkpoint(config: &Config) -> Result<Checkpoint> {
    Ok(match &config.btc.checkpoint_file {
        Some(p) => Checkpoint::load(&crate::config::expand_home(p), config.btc.network)?,
        None => Checkpoint::builtin(config.btc.network),
    })
}

/// Opens the store in the data directory.
pub fn open_store(config: &Config) -> Result<RocksStore> {
    let dir = config.store_dir();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    Ok(RocksStore::open(&dir)?)
}

/// Bitcoin sync tuning from the settings.
pub fn btc_sync_options(config: &Config) -> SyncOptions {
    SyncOptions {
        batch_size: config.btc.batch_size,
        max_retry: Duration::from_secs(config.btc.max_retry_secs),
        ..SyncOptions::default()
    }
}

/// Parses an address (of `network`) or a hex scriptPubKey.
pub fn parse_script(s: &str, network: BtcNetwork) -> Result<ScriptBuf> {
    if let Ok(addr) = s.parse::<BtcAddress<bitcoin::address::NetworkUnchecked>>() {
        let addr = addr
            .require_network(network.bitcoin_network())
            .with_context(|| format!("address {s} is not a Bitcoin {network} address"))?;
        return Ok(addr.script_pubkey());
    }
    let bytes = hex::decode(s).with_context(|| format!("`{s}` is neither an address nor hex"))?;
    Ok(ScriptBuf::from_bytes(bytes))
}

/// Parses a 32-byte hex invoice id.
pub fn parse_invoice_id(s: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(s.trim_start_matches("0x"))
        .with_context(|| format!("invoice id `{s}` is not hex"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow!("invoice id is {} bytes, expected 32", b.len()))
}

/// The finality policy the settings select.
pub fn goat_finality(config: &Config) -> Finality {
    if config.goat.consensus.is_some() {
        return Finality::Consensus;
    }
    match config.goat.finality {
        GoatFinality::Finalized => Finality::Tag,
        GoatFinality::Depth(n) => Finality::Depth(n),
    }
}

/// The checkpoint the settings select.
pub fn goat_checkpoint(config: &Config) -> Result<GoatCheckpoint> {
    Ok(match &config.goat.checkpoint_file {
        Some(p) => GoatCheckpoint::load(&crate::config::expand_home(p), config.goat.chain_id)?,
        None => GoatCheckpoint::builtin(config.goat.chain_id)?,
    })
}

/// The GOAT consensus follower `[goat.consensus]` configures (None: the
/// EVM-only mode), anchored in `store`.
pub async fn goat_consensus<St: crate::store::Store>(
    config: &Config,
    store: &St,
) -> Result<Option<crate::goat::follow::ConsensusFollower>, crate::goat::follow::FollowError> {
    let Some(c) = &config.goat.consensus else {
        return Ok(None);
    };
    let path = crate::config::expand_home(&c.checkpoint_file);
    let checkpoint = crate::goat::follow::ConsensusCheckpoint::load(&path)?;
    let rpc = crate::goat::comet::CometRpc::new(
        &c.rpc_url,
        Duration::from_secs(config.goat.timeout_secs),
    )?;
    let opts = crate::goat::follow::FollowOptions {
        trusting_period: Duration::from_secs(c.trusting_period_secs),
        clock_drift: Duration::from_secs(c.clock_drift_secs),
    };
    Ok(Some(
        crate::goat::follow::ConsensusFollower::open(rpc, store, &checkpoint, opts).await?,
    ))
}

/// GoatLightClient's constructor arguments when `[goat.consensus]` is set:
/// the consensus follower's trusted state, brought up to the node's latest
/// height first (never the RPC's word alone), refused when older than half
/// the trusting period.
pub async fn goat_light_client_args<St: crate::store::Store>(
    config: &Config,
    store: &St,
) -> Result<Option<crate::metis::goatlc::LightClientArgs>> {
    let Some(c) = &config.goat.consensus else {
        return Ok(None);
    };
    let mut follower = goat_consensus(config, store)
        .await?
        .ok_or_else(|| anyhow!("[goat.consensus] is not set"))?;
    follower.advance(store).await?;
    let age = tendermint::Time::now()
        .duration_since(follower.trusted_time())
        .unwrap_or_default();
    if age.as_secs() > c.trusting_period_secs / 2 {
        bail!(
            "the latest verified GOAT header (height {}) is {} s old, more than half of goat.consensus.trusting_period_secs ({}): the CometBFT node at {} is not advancing",
            follower.height(),
            age.as_secs(),
            c.trusting_period_secs,
            c.rpc_url
        );
    }
    Ok(Some(follower.light_client_args(c.trusting_period_secs)?))
}

/// Sync tuning from the settings.
pub fn goat_sync_options(config: &Config) -> GoatSyncOptions {
    GoatSyncOptions {
        batch_size: u64::from(config.goat.batch_size),
        max_retry: Duration::from_secs(config.goat.max_retry_secs),
        ..GoatSyncOptions::default()
    }
}

/// The payment policy from the settings.
pub fn goat_policy(config: &Config) -> PaymentPolicy {
    PaymentPolicy {
        tokens: config.goat_tokens(),
        payees: config.goat_payees(),
        allow_plain_transfers: config.goat.allow_plain_transfers,
    }
}

/// Connects to the configured GOAT node.
pub async fn goat_source(config: &Config) -> Result<GoatRpc> {
    Ok(GoatRpc::connect(
        &config.goat_rpc_url(),
        Duration::from_secs(config.goat.timeout_secs),
    )
    .await?)
}

/// The relayer's signing key, from the variable named by metis.key_env.
pub fn relayer_key(config: &Config) -> Result<PrivateKeySigner> {
    if let Some(path) = &config.metis.keystore {
        let path = crate::config::expand_home(path);
        let password = match &config.metis.keystore_password_file {
            Some(file) => {
                let file = crate::config::expand_home(file);
                std::fs::read_to_string(&file)
                    .with_context(|| format!("metis.keystore_password_file {}", file.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string()
            }
            None => {
                let pw_var = &config.metis.keystore_password_env;
                std::env::var(pw_var).map_err(|_| {
                    anyhow!("environment variable {pw_var} (metis.keystore_password_env) is not set: it must hold the password of {} (or set metis.keystore_password_file)", path.display())
                })?
            }
        };
        return PrivateKeySigner::decrypt_keystore(&path, password)
            .with_context(|| format!("metis.keystore {}: cannot decrypt", path.display()));
    }
    if let Some(path) = &config.metis.key_file {
        let path = crate::config::expand_home(path);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("metis.key_file {}", path.display()))?;
        return text.trim().parse().map_err(|_| {
            anyhow!(
                "metis.key_file {}: not a 32-byte hex private key",
                path.display()
            )
        });
    }
    let var = &config.metis.key_env;
    let v = std::env::var(var).map_err(|_| {
        anyhow!("environment variable {var} (metis.key_env) is not set: it must hold the Metis account's hex private key")
    })?;
    v.trim().parse().map_err(|_| {
        anyhow!("environment variable {var} (metis.key_env) is not a 32-byte hex private key")
    })
}

/// The deployment the settings select: the deployment file, with metis.* address overrides.
pub fn metis_contracts(config: &Config) -> Result<(Contracts, Option<Deployment>)> {
    let path = config.metis_deployment_file();
    let file = if path.exists() {
        Some(Deployment::load(&path)?)
    } else {
        None
    };
    let m = &config.metis;
    let pick = |key: &str, over: &Option<String>, from_file: Option<Address>| -> Result<Address> {
        match over {
            Some(a) => Ok(a.parse().expect("validated by Config::validate")),
            None => from_file.ok_or_else(|| {
                anyhow!(
                    "no {key} address: {} does not exist (run `gmrelay contracts deploy`) and metis.{key} is not set",
                    path.display()
                )
            }),
        }
    };
    let c = Contracts {
        btc_light_client: pick(
            "btc_light_client",
            &m.btc_light_client,
            file.as_ref().map(|d| d.btc_light_client),
        )?,
        goat_header_store: pick(
            "goat_header_store",
            &m.goat_header_store,
            file.as_ref().map(|d| d.goat_header_store),
        )?,
        payment_settlement: pick(
            "payment_settlement",
            &m.payment_settlement,
            file.as_ref().map(|d| d.payment_settlement),
        )?,
    };
    Ok((c, file))
}

fn metis_timeout(config: &Config) -> Duration {
    Duration::from_secs(config.metis.timeout_secs)
}

/// Connects to Metis with the deployment's contracts; `write` loads the relayer key.
pub async fn metis_sink(config: &Config, write: bool) -> Result<AlloySink> {
    let (c, _) = metis_contracts(config)?;
    let key = if write {
        Some(relayer_key(config)?)
    } else {
        None
    };
    Ok(AlloySink::connect(
        &config.metis_rpc_url(),
        config.metis.chain_id,
        c,
        key,
        metis_timeout(config),
    )
    .await?)
}

/// A flag set by SIGINT or SIGTERM (tokio signals; a second signal exits at
/// once). Long commands stop between two atomic writes when it is set.
/// Needs a running Tokio runtime.
pub fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::Ordering;
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            // The store is consistent either way: every batch is one atomic write.
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("interrupt: finishing the current batch (again to exit now)");
        }
    });
    flag
}

/// This operator's GOAT attester keys: the devnet committee on a regtest
/// devnet with `metis.devnet_attesters`, else the keys in the variable
/// named by `metis.attester_keys_env` (none when it is unset).
pub fn attester_keys(config: &Config) -> Result<Vec<PrivateKeySigner>> {
    if config.metis.devnet_attesters {
        return Ok(crate::metis::attest::devnet_attester_keys());
    }
    let var = &config.metis.attester_keys_env;
    match std::env::var(var) {
        Ok(v) => Ok(crate::metis::attest::parse_keys(&v, var)?),
        Err(_) => Ok(Vec::new()),
    }
}

/// A 32-byte hex secret from `file` (trimmed) or else from the environment
/// variable `env`; `what` names the setting in errors (never the value).
pub fn secret_from(file: Option<&Path>, env: &str, what: &str) -> Result<B256> {
    let (text, origin) = match file {
        Some(path) => {
            let path = crate::config::expand_home(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{what}_file {}", path.display()))?;
            (text, format!("{what}_file {}", path.display()))
        }
        None => {
            let text = std::env::var(env).map_err(|_| {
                anyhow!(
                    "neither {what}_file nor the environment variable {env} ({what}_env) is set"
                )
            })?;
            (text, format!("environment variable {env} ({what}_env)"))
        }
    };
    let t = text.trim();
    let hex = t.strip_prefix("0x").unwrap_or(t);
    let bytes = hex::decode(hex)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow!("{origin} does not hold a 32-byte hex private key"))?;
    Ok(B256::from_slice(&bytes))
}

/// An Ethereum-style signing key from `file` or the variable `env` (see [`secret_from`]).
pub fn signer_from(file: Option<&Path>, env: &str, what: &str) -> Result<PrivateKeySigner> {
    let secret = secret_from(file, env, what)?;
    PrivateKeySigner::from_bytes(&secret)
        .map_err(|_| anyhow!("{what}: not a valid secp256k1 private key"))
}
