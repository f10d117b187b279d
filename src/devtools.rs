//! A whole devnet in one directory, for demos and for other people's
//! regtest integration tests: `gmrelay devnet up|down|invoice|pay-btc|
//! pay-goat|mine-btc --dir <d>`.
//!
//! `up` starts a regtest bitcoind and two anvils (GOAT 2345 and Metis 1088,
//! Shanghai, each mining a block every second so finality advances by
//! itself) on free loopback ports, funds the agent's keys, syncs the header
//! store, deploys the contracts and the GOAT test stablecoin, and writes
//! `<d>/gmrelay.toml` (ready for `gmrelay run`) and `<d>/devnet.json`
//! (endpoints, chain ids, contracts, keys, pids). Nothing here is used by
//! the relayer itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::btc::network::BtcNetwork;
use crate::btc::source::BtcSource;
use crate::config::Config;
use crate::metis::invoice::{SignedInvoice, Terms};
use crate::metis::sink::MetisSink;
use crate::rail::Rail;

/// The agent's Bitcoin key seed (regtest only: public).
pub const BTC_PAYER_SEED: [u8; 32] = [0x11; 32];
/// The merchant's Metis key (anvil's second well-known account: public).
pub const MERCHANT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// Where the merchant is paid on GOAT (anvil's third account).
pub const MERCHANT_GOAT_PAYEE: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// Where the merchant is paid on Bitcoin (a regtest P2WPKH address).
pub const MERCHANT_BTC_PAYEE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// The x402 facilitator's GOAT key (anvil's fourth well-known account:
/// public, funded with gas on the GOAT anvil).
pub const FACILITATOR_GOAT_KEY: &str =
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
/// Blocks mined at `up` so the agent has mature coinbases to spend.
pub const INITIAL_BLOCKS: u32 = 200;
/// Calls of the merchant's AccessPass one devnet invoice buys.
pub const CALLS_PER_INVOICE: u64 = 10;

/// `<d>/devnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetFile {
    /// bitcoind JSON-RPC.
    pub btc_rpc_url: String,
    /// bitcoind's cookie.
    pub btc_cookie_file: PathBuf,
    /// The GOAT anvil (HTTP).
    pub goat_rpc_url: String,
    /// The GOAT chain id.
    pub goat_chain_id: u64,
    /// The Metis anvil (HTTP).
    pub metis_rpc_url: String,
    /// The Metis chain id.
    pub metis_chain_id: u64,
    /// BtcLightClient.
    pub btc_light_client: Address,
    /// GoatHeaderStore.
    pub goat_header_store: Address,
    /// PaymentSettlement.
    pub payment_settlement: Address,
    /// The GOAT test stablecoin (EIP-3009).
    pub goat_token: Address,
    /// The merchant's AccessPass on Metis (the service a payment unlocks).
    pub access_pass: Address,
    /// The relayer's Metis key (public devnet key).
    pub relayer_key: String,
    /// The merchant's Metis key (creates invoices).
    pub merchant_key: String,
    /// The agent's GOAT key (holds the stablecoin).
    pub agent_goat_key: String,
    /// The agent's Bitcoin key seed (hex).
    pub agent_btc_seed: String,
    /// The merchant's GOAT payee.
    pub merchant_goat_payee: Address,
    /// The merchant's Bitcoin payee.
    pub merchant_btc_payee: String,
    /// The next coinbase height the agent spends.
    pub next_coinbase: u32,
    /// Process ids: bitcoind, GOAT anvil, Metis anvil.
    pub pids: Vec<(String, u32)>,
    /// The relayer's HTTP address in the config.
    pub relayer_http: String,
    /// GOAT's CometBFT RPC (node 0) when the devnet runs GOAT's consensus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goat_comet_rpc_url: Option<String>,
    /// Every CometBFT node's RPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goat_comet_rpc_urls: Vec<String>,
}

/// What `up` starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpOptions {
    /// Run GOAT's consensus: real CometBFT nodes (secp256k1 validators) and
    /// the devnet GOAT app; GoatLightClient on Metis, no committee.
    pub goat_consensus: bool,
    /// Validators (one CometBFT node each) with `goat_consensus`.
    pub goat_validators: usize,
}

fn devnet_file(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

/// Reads `<d>/devnet.json`.
pub fn load(dir: &Path) -> Result<DevnetFile> {
    let path = devnet_file(dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: no devnet here (gmrelay devnet up --dir {})",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a devnet file", path.display()))
}

fn save(dir: &Path, d: &DevnetFile) -> Result<()> {
    let tmp = dir.join("devnet.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(d)?)?;
    std::fs::rename(&tmp, devnet_file(dir))?;
    Ok(())
}

/// Whether process `pid` exists.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Starts the devnet in `dir` and writes its files. Prints what a person needs.
pub async fn up(dir: &Path, options: UpOptions) -> Result<DevnetFile> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if let Ok(d) = load(&dir) {
        if d.pids.iter().any(|(_, p)| alive(*p)) {
            bail!(
                "a devnet is already up in {} (gmrelay devnet down --dir {})",
                dir.display(),
                dir.display()
            );
        }
    }
    let mut pids = Vec::new();
    // On failure, stop what was started.
    let result = up_inner(&dir, options, &mut pids).await;
    if result.is_err() {
        for (_, pid) in &pids {
            stop_pid(*pid);
        }
    }
    result
}

async fn up_inner(
    dir: &Path,
    options: UpOptions,
    pids: &mut Vec<(String, u32)>,
) -> Result<DevnetFile> {
    let port = crate::devnet::free_port();
    let mut node = crate::devnet::Bitcoind::start_in(&dir.join("bitcoind"), port).await?;
    pids.push(("bitcoind".into(), node.detach()));
    let payer = crate::devnet::Payer::from_seed(BTC_PAYER_SEED);
    node.node().mine(INITIAL_BLOCKS, &payer.address).await?;

    // With GOAT's consensus, the proposer of each CometBFT height mines the
    // GOAT anvil's block (as goatd drives goat-geth); else anvil mines each second.
    let goat_mining: &[&str] = if options.goat_consensus {
        &["--no-mining"]
    } else {
        &["--block-time", "1"]
    };
    let mut goat =
        crate::goat::devnet::Anvil::start_on(2345, crate::devnet::free_port(), goat_mining).await?;
    pids.push(("goat anvil".into(), goat.detach()));
    let comet = if options.goat_consensus {
        let exe = std::env::current_exe().context("the gmrelay executable")?;
        let net = crate::goat::cometnet::start(
            &dir.join("goat-comet"),
            &exe,
            &goat.url(),
            options.goat_validators,
            pids,
        )
        .await?;
        Some(net)
    } else {
        None
    };
    let mut metis = crate::goat::devnet::Anvil::start_on(
        1088,
        crate::devnet::free_port(),
        &["--hardfork", "shanghai", "--block-time", "1"],
    )
    .await?;
    pids.push(("metis anvil".into(), metis.detach()));

    let token = crate::goat::devnet::deploy_token(&goat.url(), "USD Coin", "USDC", "2").await?;
    crate::goat::devnet::mint(
        &goat.url(),
        token,
        crate::goat::devnet::payer_address(),
        U256::from(1_000_000_000_000u64),
    )
    .await?;

    let http = format!("127.0.0.1:{}", crate::devnet::free_port());
    let data = dir.join("data");
    let key_file = dir.join("relayer.key");
    write_secret(&key_file, crate::goat::devnet::RELAYER_KEY)?;
    let config_text = format!(
        r#"# Written by `gmrelay devnet up`: a local devnet, public keys. Never use on a public network.
data_dir = "{data}"

[btc]
network = "regtest"
rpc_url = "{btc_url}"
cookie_file = "{cookie}"
poll_interval_secs = 1

[goat]
rpc_url = "{goat_url}"
chain_id = 2345
checkpoint_file = "{goat_cp}"
finality = {{ depth = 1 }}
poll_interval_secs = 1
tokens = ["{token}"]
{goat_consensus}
[metis]
rpc_url = "{metis_url}"
chain_id = 1088
key_file = "{key_file}"
min_btc_confirmations = 6
devnet_attesters = {devnet_attesters}
deployment_file = "{deployment}"
timeout_secs = 30
max_retry_secs = 30

[run]
http = "{http}"
poll_interval_ms = 250

# The x402 facilitator on run.http (/supported /verify /settle).
[x402]
enabled = true
goat_key_file = "{x402_goat_key}"

# `gmrelay x402 serve-example`: a paid resource on both rails.
[x402.example]
listen = "127.0.0.1:{example_port}"
merchant_key_file = "{merchant_key}"
goat_pay_to = "{goat_payee}"
goat_amount = "10000"
btc_pay_to = "{btc_payee}"
btc_amount_sat = 50000

# `gmrelay x402 pay`: the devnet's funded agent.
[agent]
goat_key_file = "{agent_goat_key}"
btc_key_file = "{agent_btc_key}"
"#,
        data = data.display(),
        btc_url = node.rpc_url(),
        cookie = node.cookie_file().display(),
        goat_url = goat.url(),
        goat_cp = dir.join("goat-checkpoint.json").display(),
        token = token,
        metis_url = metis.url(),
        key_file = key_file.display(),
        deployment = dir.join("deployment.json").display(),
        http = http,
        x402_goat_key = dir.join("x402-goat.key").display(),
        example_port = crate::devnet::free_port(),
        merchant_key = dir.join("merchant.key").display(),
        goat_payee = MERCHANT_GOAT_PAYEE,
        btc_payee = MERCHANT_BTC_PAYEE,
        agent_goat_key = dir.join("agent-goat.key").display(),
        agent_btc_key = dir.join("agent-btc.key").display(),
        goat_consensus = match &comet {
            Some(net) => format!(
                "\n# GOAT finality from its validators' CometBFT commits, verified from the\n# trusted header in checkpoint_file (this devnet's own node: devnet only).\n[goat.consensus]\nrpc_url = \"{}\"\ncheckpoint_file = \"{}\"\n",
                net.rpc_urls[0],
                dir.join("goat-consensus.json").display()
            ),
            None => String::new(),
        },
        devnet_attesters = comet.is_none(),
    );
    if let Some(net) = &comet {
        let rpc = crate::goat::comet::CometRpc::new(&net.rpc_urls[0], Duration::from_secs(10))?;
        let height = rpc.latest_height().await?;
        let header = rpc.signed_header(height).await?.header;
        let cp = crate::goat::follow::ConsensusCheckpoint {
            comment: Some("Written by `gmrelay devnet up --goat-consensus`: a header of this devnet's own CometBFT, trusted as served. Never use on a public network.".into()),
            comet_chain_id: header.chain_id.to_string(),
            height,
            header_hash: header.hash().to_string(),
            source: format!("{} /commit?height={height}", net.rpc_urls[0]),
        };
        std::fs::write(
            dir.join("goat-consensus.json"),
            serde_json::to_string_pretty(&cp)? + "\n",
        )?;
    }
    write_secret(&dir.join("x402-goat.key"), FACILITATOR_GOAT_KEY)?;
    write_secret(&dir.join("merchant.key"), MERCHANT_KEY)?;
    write_secret(&dir.join("agent-goat.key"), crate::goat::devnet::PAYER_KEY)?;
    write_secret(&dir.join("agent-btc.key"), &hex::encode(BTC_PAYER_SEED))?;
    std::fs::write(
        dir.join("goat-checkpoint.json"),
        include_str!("../headers/goat-devnet.json"),
    )?;
    let config_path = dir.join("gmrelay.toml");
    std::fs::write(&config_path, &config_text)?;
    let config = Config::load(&config_path)?;

    // Anchor the header store, then deploy from its checkpoint.
    let store = crate::app::open_store(&config)?;
    {
        let source = crate::app::btc_source(&config)?;
        let cp = crate::app::btc_checkpoint(&config)?;
        let mut syncer = crate::btc::sync::Syncer::open(
            &source,
            &store,
            &cp,
            crate::app::btc_sync_options(&config),
        )
        .await?;
        syncer.sync_once(None).await?;
    }
    let keys = crate::metis::attest::devnet_attester_keys();
    let params = crate::metis::deploy::DeployParams {
        checkpoint: crate::metis::deploy::checkpoint_args(&store)?,
        committee: keys.iter().map(|k| k.address()).collect(),
        threshold: crate::metis::attest::DEVNET_THRESHOLD,
        goat_chain_id: 2345,
        min_btc_confirmations: 6,
        goat_light_client: crate::app::goat_light_client_args(&config, &store).await?,
    };
    drop(store);
    let mut deployment = crate::metis::deploy::deploy(
        &metis.url(),
        1088,
        crate::app::relayer_key(&config)?,
        &params,
    )
    .await?;
    deployment.goat_test_token = Some(token);
    deployment.save(&dir.join("deployment.json"))?;
    // The merchant's service: an AccessPass its invoices name.
    let merchant: PrivateKeySigner = MERCHANT_KEY.parse().map_err(|_| anyhow!("merchant key"))?;
    let access_pass = crate::metis::deploy::deploy_access_pass(
        &metis.url(),
        1088,
        merchant.clone(),
        deployment.payment_settlement,
        merchant.address(),
    )
    .await?;
    // BtcLightClient starts level with the regtest chain, as an operator's
    // deployment would be before taking invoices in.
    {
        let store = crate::app::open_store(&config)?;
        let sink = crate::app::metis_sink(&config, true).await?;
        crate::metis::relay::relay_headers(
            &store,
            &sink,
            crate::metis::relay::RelayOptions {
                batch: 500,
                max_retry: Duration::from_secs(30),
            },
            |_| {},
        )
        .await?;
    }
    // Fund the merchant on Metis (anvil's second account is funded already).
    let d = DevnetFile {
        btc_rpc_url: node.rpc_url(),
        btc_cookie_file: node.cookie_file(),
        goat_rpc_url: goat.url(),
        goat_chain_id: 2345,
        metis_rpc_url: metis.url(),
        metis_chain_id: 1088,
        btc_light_client: deployment.btc_light_client,
        goat_header_store: deployment.goat_header_store,
        payment_settlement: deployment.payment_settlement,
        goat_token: token,
        access_pass,
        relayer_key: crate::goat::devnet::RELAYER_KEY.into(),
        merchant_key: MERCHANT_KEY.into(),
        agent_goat_key: crate::goat::devnet::PAYER_KEY.into(),
        agent_btc_seed: hex::encode(BTC_PAYER_SEED),
        merchant_goat_payee: MERCHANT_GOAT_PAYEE.parse()?,
        merchant_btc_payee: MERCHANT_BTC_PAYEE.into(),
        next_coinbase: 1,
        pids: pids.clone(),
        relayer_http: http,
        goat_comet_rpc_url: comet.as_ref().map(|n| n.rpc_urls[0].clone()),
        goat_comet_rpc_urls: comet.map(|n| n.rpc_urls).unwrap_or_default(),
    };
    save(dir, &d)?;
    Ok(d)
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Stops process `pid`: SIGTERM, up to 10 s to exit, then SIGKILL.
pub fn stop_pid(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
}

/// Stops every process of the devnet in `dir`.
pub fn down(dir: &Path) -> Result<Vec<(String, u32)>> {
    let mut d = load(dir)?;
    let mut stopped = Vec::new();
    // Last started first: CometBFT nodes before the app they call.
    for (what, pid) in d.pids.drain(..).rev() {
        if alive(pid) {
            stop_pid(pid);
            stopped.push((what, pid));
        }
    }
    save(dir, &d)?;
    Ok(stopped)
}

/// The config `up` wrote.
pub fn config(dir: &Path) -> Result<Config> {
    Ok(Config::load(&dir.join("gmrelay.toml"))?)
}

/// The devnet merchant's Metis sink (it creates invoices).
pub async fn merchant_sink(dir: &Path) -> Result<crate::metis::sink::AlloySink> {
    let d = load(dir)?;
    let config = config(dir)?;
    let key: PrivateKeySigner = d
        .merchant_key
        .parse()
        .map_err(|_| anyhow!("merchant key"))?;
    let (contracts, _) = crate::app::metis_contracts(&config)?;
    Ok(crate::metis::sink::AlloySink::connect(
        &d.metis_rpc_url,
        d.metis_chain_id,
        contracts,
        Some(key),
        Duration::from_secs(30),
    )
    .await?)
}

/// The agent's Metis (and GOAT) address: who an AccessPass credits.
pub fn agent_address(d: &DevnetFile) -> Result<Address> {
    let key: PrivateKeySigner = d
        .agent_goat_key
        .parse()
        .map_err(|_| anyhow!("agent key in devnet.json"))?;
    Ok(key.address())
}

/// The devnet merchant's terms for a payment on `rail`: its AccessPass as the
/// service, [`CALLS_PER_INVOICE`] calls for the agent (named, so a Bitcoin
/// payment can credit it too).
pub fn merchant_terms(
    d: &DevnetFile,
    rail: Rail,
    amount: Option<U256>,
    reference: B256,
    expiry: u64,
) -> Result<Terms> {
    let merchant: PrivateKeySigner = d
        .merchant_key
        .parse()
        .map_err(|_| anyhow!("merchant key"))?;
    let (payee, asset, amount) = match rail {
        Rail::Btc => {
            let script = crate::app::parse_script(&d.merchant_btc_payee, BtcNetwork::Regtest)?;
            (
                Bytes::from(script.to_bytes()),
                Address::ZERO,
                amount.unwrap_or(U256::from(50_000u64)),
            )
        }
        Rail::Goat => (
            Bytes::copy_from_slice(d.merchant_goat_payee.as_slice()),
            d.goat_token,
            amount.unwrap_or(U256::from(2_500_000u64)),
        ),
    };
    let holder = agent_address(d)?;
    let mut service_id = [0u8; 32];
    service_id[..20].copy_from_slice(holder.as_slice());
    service_id[20..26].copy_from_slice(&CALLS_PER_INVOICE.to_be_bytes()[2..]);
    Ok(Terms {
        merchant: merchant.address(),
        reference,
        rail,
        payee,
        asset,
        amount,
        expiry,
        service: d.access_pass,
        service_id: B256::from(service_id),
    })
}

fn invoice_file(dir: &Path, id: B256) -> PathBuf {
    dir.join("invoices").join(format!("{id}.json"))
}

/// An invoice `devnet invoice` wrote.
pub fn load_invoice(dir: &Path, id: B256) -> Result<SignedInvoice> {
    let path = invoice_file(dir, id);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: no such devnet invoice (gmrelay devnet invoice --dir {})",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not an invoice", path.display()))
}

/// Hands a signed invoice to the relayer's HTTP API (`POST /invoices`),
/// waiting up to 60 s for a relayer that is still starting (connection refused).
pub async fn submit_invoice(http: &str, invoice: &SignedInvoice) -> Result<()> {
    let url = format!("http://{http}/invoices");
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let r = loop {
        match client.post(&url).json(invoice).send().await {
            Ok(r) => break r,
            Err(e) if e.is_connect() && started.elapsed() < Duration::from_secs(60) => {
                if started.elapsed() < Duration::from_millis(300) {
                    eprintln!("waiting for the relayer at {url} (up to 60 s)");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("{url}: is `gmrelay run` up?")),
        }
    };
    let status = r.status();
    if !status.is_success() {
        bail!(
            "{url}: {status}: {}",
            r.text().await.unwrap_or_default().trim()
        );
    }
    Ok(())
}

/// Makes an invoice as the devnet merchant: signed off-chain (handed to the
/// relayer at the config's `run.http`) or, with `on_chain`, created on
/// PaymentSettlement. Saved as `<d>/invoices/<id>.json` either way.
pub async fn invoice(
    dir: &Path,
    rail: Rail,
    amount: Option<U256>,
    expiry_secs: u64,
    on_chain: bool,
    hold: bool,
) -> Result<SignedInvoice> {
    let d = load(dir)?;
    let sink = merchant_sink(dir).await?;
    let now = sink.now().await?;
    let terms = merchant_terms(
        &d,
        rail,
        amount,
        crate::metis::invoice::random_ref()?,
        now + expiry_secs,
    )?;
    let invoice = if on_chain {
        sink.create_invoice(&terms).await?;
        SignedInvoice::on_chain(terms)
    } else {
        let key: PrivateKeySigner = d
            .merchant_key
            .parse()
            .map_err(|_| anyhow!("merchant key"))?;
        SignedInvoice::sign(terms, &key, d.metis_chain_id, d.payment_settlement)?
    };
    let path = invoice_file(dir, invoice.id());
    std::fs::create_dir_all(path.parent().expect("a parent"))?;
    std::fs::write(&path, serde_json::to_vec_pretty(&invoice)?)?;
    if !on_chain && !hold {
        if let Err(e) = submit_invoice(&d.relayer_http, &invoice).await {
            eprintln!(
                "warning: {e:#}\n  the signed invoice is saved at {}; hand it in when the relayer runs: curl -X POST --data @{} http://{}/invoices",
                path.display(),
                path.display(),
                d.relayer_http
            );
        }
    }
    Ok(invoice)
}

/// Pays a Bitcoin invoice of `devnet invoice` as the agent; returns the txid.
pub async fn pay_btc(dir: &Path, id: B256) -> Result<bitcoin::Txid> {
    let inv = load_invoice(dir, id)?;
    pay_btc_terms(dir, &inv.terms).await
}

/// Pays Bitcoin terms as the agent (OP_RETURN = the terms' ref).
pub async fn pay_btc_terms(dir: &Path, terms: &Terms) -> Result<bitcoin::Txid> {
    let mut d = load(dir)?;
    if terms.rail != Rail::Btc {
        bail!("invoice {} is a {} invoice", terms.id(), terms.rail);
    }
    let config = config(dir)?;
    let source = crate::app::btc_source(&config)?;
    let node = crate::devnet::RpcNode::new(&source);
    let payer = crate::devnet::Payer::from_seed(BTC_PAYER_SEED);
    let height = d.next_coinbase;
    let tip = source.chain_info().await?.blocks;
    if height + 100 > tip {
        bail!("no mature coinbase left for the agent: mine more (gmrelay devnet mine-btc --dir {} 100)", dir.display());
    }
    let utxo = node.coinbase_utxo(&payer, height).await?;
    let script = bitcoin::ScriptBuf::from_bytes(terms.payee.to_vec());
    let amount = u64::try_from(terms.amount)
        .map_err(|_| anyhow!("amount {} is not satoshis", terms.amount))?;
    let tx = payer.pay(
        utxo,
        &script,
        bitcoin::Amount::from_sat(amount),
        &terms.reference.0,
        bitcoin::Amount::from_sat(1_000),
    )?;
    let txid = node.send(&tx).await?;
    d.next_coinbase += 1;
    save(dir, &d)?;
    Ok(txid)
}

/// Pays a GOAT invoice of `devnet invoice` as the agent (EIP-3009, nonce =
/// the terms' ref); returns the tx hash.
pub async fn pay_goat(dir: &Path, id: B256) -> Result<B256> {
    let inv = load_invoice(dir, id)?;
    pay_goat_terms(dir, &inv.terms, true).await
}

async fn pay_goat_terms(dir: &Path, terms: &Terms, wait: bool) -> Result<B256> {
    let d = load(dir)?;
    if terms.rail != Rail::Goat {
        bail!("invoice {} is a {} invoice", terms.id(), terms.rail);
    }
    let payee =
        Address::try_from(terms.payee.as_ref()).map_err(|_| anyhow!("payee is not 20 bytes"))?;
    let paid = crate::goat::devnet::pay(
        &d.goat_rpc_url,
        terms.asset,
        &d.agent_goat_key,
        payee,
        terms.amount,
        terms.reference,
        wait,
    )
    .await?;
    Ok(paid.tx_hash)
}

/// The agent's AccessPass: (has access, calls left, valid until).
pub async fn access(dir: &Path) -> Result<(bool, u64, u64)> {
    let d = load(dir)?;
    let provider = crate::metis::sink::provider(&d.metis_rpc_url)?;
    let pass = crate::metis::bindings::AccessPass::new(d.access_pass, provider);
    let holder = agent_address(&d)?;
    let has = pass.hasAccess(holder).call().await?;
    let p = pass.passOf(holder).call().await?;
    Ok((
        has,
        u64::try_from(p.calls).unwrap_or(u64::MAX),
        u64::try_from(p.validUntil).unwrap_or(u64::MAX),
    ))
}

/// `gmrelay bench daemon`: a devnet in a temporary directory, `gmrelay run`
/// as a child process, `n` signed invoices handed to it at once (on `rail`,
/// or half per rail), all paid, then the time until every one is settled,
/// and, read from the Metis chain, every transaction the relayer sent from
/// the first payment to the last settlement with its gas, and the daemon's
/// peak RSS.
pub async fn bench_burst(n: u32, rail: Option<Rail>, goat_consensus: bool) -> Result<()> {
    if !(1..=200).contains(&n) {
        bail!("--invoices {n}: 1..=200 (the devnet's agent has 100 mature coinbases)");
    }
    if rail == Some(Rail::Btc) && n > 90 {
        bail!("--invoices {n} --rail btc: at most 90 (one mature coinbase per payment)");
    }
    let options = UpOptions {
        goat_consensus,
        goat_validators: 3,
    };
    let result = with_relayer("gmrelay-burst-", options, |dir, d, pid| async move {
        burst(&dir, &d, n, rail, pid).await
    })
    .await;
    let r = result?;
    let rails = match rail {
        Some(r) => format!("{n} {}", r.name().to_uppercase()),
        None => format!("{} BTC + {} GOAT", n.div_ceil(2), n / 2),
    };
    println!("| payments | rails | wall time, all paid → all settled | relayer's Metis transactions | their gas | gas per payment | calldata per payment | daemon peak RSS |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {n} | {rails} | {:.1} s | {} ({}) | {} | {} | {} B | {:.1} MiB |",
        r.wall.as_secs_f64(),
        r.txs,
        r.kinds,
        r.gas,
        r.gas / u64::from(n),
        r.calldata / u64::from(n),
        r.rss_mib
    );
    Ok(())
}

/// A devnet in a temporary directory (prefix `prefix`) with `gmrelay run` as
/// a child process; runs `f(dir, devnet, relayer pid)`, then stops both.
async fn with_relayer<T, F, Fut>(prefix: &str, options: UpOptions, f: F) -> Result<T>
where
    F: FnOnce(PathBuf, DevnetFile, u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let dir = tmp.path().to_path_buf();
    let d = up(&dir, options).await?;
    let result = async {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(dir.join("gmrelay.toml"))
            .env("GMRELAY_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("relayer.log"))?)
            .spawn()?;
        let outcome = f(dir.clone(), d, child.id()).await;
        let _ = child.kill();
        let _ = child.wait();
        outcome
    }
    .await;
    let _ = down(&dir);
    result
}

/// `gmrelay bench x402-verify`: a devnet in a temporary directory, `gmrelay
/// run` (facilitator on) as a child process, `n` GOAT payloads signed by the
/// agent (each its own nonce), posted to `/verify` `c` at a time over
/// keep-alive connections. Every answer must be `isValid`. Prints the rate,
/// the latency percentiles and the daemon's CPU time per request.
pub async fn bench_x402_verify(n: u32, c: usize) -> Result<()> {
    use futures::stream::StreamExt;
    if n == 0 || c == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    let result = with_relayer(
        "gmrelay-x402-",
        UpOptions::default(),
        |dir, d, pid| async move {
            let url = format!("http://{}/verify", d.relayer_http);
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(c)
                .build()?;
            let health = format!("http://{}/supported", d.relayer_http);
            let started = std::time::Instant::now();
            while client.get(&health).send().await.is_err() {
                if started.elapsed() > Duration::from_secs(120) {
                    bail!(
                        "the facilitator did not start (see {}/relayer.log)",
                        dir.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let key: PrivateKeySigner =
                d.agent_goat_key.parse().map_err(|_| anyhow!("agent key"))?;
            eprintln!("signing {n} authorizations");
            let bodies: Vec<Vec<u8>> = (0..n)
                .map(|i| verify_body(&d, &key, i))
                .collect::<Result<_>>()?;
            // Warm up: connections and the token's EIP-712 domain.
            for b in bodies.iter().take(c.min(bodies.len())) {
                client
                    .post(&url)
                    .body(b.clone())
                    .header("content-type", "application/json")
                    .send()
                    .await?;
            }
            let cpu_before = cpu_ticks(pid);
            let t0 = std::time::Instant::now();
            let lat: Vec<Result<Duration>> = futures::stream::iter(bodies)
                .map(|b| {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        let t = std::time::Instant::now();
                        let r: serde_json::Value = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(b)
                            .send()
                            .await?
                            .json()
                            .await?;
                        if r["isValid"] != true {
                            bail!("refused: {r}");
                        }
                        Ok(t.elapsed())
                    }
                })
                .buffer_unordered(c)
                .collect()
                .await;
            let wall = t0.elapsed();
            let cpu = cpu_ticks(pid)
                .zip(cpu_before)
                .map(|(a, b)| a.saturating_sub(b));
            let mut lat = lat.into_iter().collect::<Result<Vec<_>>>()?;
            lat.sort();
            Ok((wall, lat, cpu))
        },
    )
    .await;
    let (wall, lat, cpu) = result?;
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!("| requests | in flight | rate | p50 | p99 | max | daemon CPU per request |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {n} | {c} | {:.0}/s | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
        f64::from(n) / wall.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        cpu.map(|t| format!("{:.0} µs", t as f64 * 10_000.0 / f64::from(n)))
            .unwrap_or_else(|| "-".into())
    );
    Ok(())
}

/// A `/verify` body: the agent pays the merchant 10,000 base units, nonce from `i`.
fn verify_body(d: &DevnetFile, key: &PrivateKeySigner, i: u32) -> Result<Vec<u8>> {
    use alloy::signers::SignerSync;
    let auth = crate::x402::evm::TransferWithAuthorization {
        from: key.address(),
        to: d.merchant_goat_payee,
        value: U256::from(10_000u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(u64::from(u32::MAX)),
        nonce: alloy::primitives::keccak256(format!("bench {i}")),
    };
    let hash =
        crate::x402::evm::authorization_hash("USD Coin", "2", d.goat_chain_id, d.goat_token, &auth);
    let sig = key.sign_hash_sync(&hash)?;
    let accepted = serde_json::json!({
        "scheme": "exact", "network": format!("eip155:{}", d.goat_chain_id), "amount": "10000",
        "asset": d.goat_token.to_string(), "payTo": d.merchant_goat_payee.to_string(),
        "maxTimeoutSeconds": 300, "extra": {"name": "USD Coin", "version": "2"},
    });
    Ok(serde_json::to_vec(&serde_json::json!({
        "x402Version": 2,
        "paymentRequirements": accepted,
        "paymentPayload": {
            "x402Version": 2, "accepted": accepted,
            "payload": {
                "signature": format!("0x{}", hex::encode(sig.as_bytes())),
                "authorization": {
                    "from": auth.from.to_string(), "to": auth.to.to_string(),
                    "value": auth.value.to_string(), "validAfter": "0",
                    "validBefore": auth.validBefore.to_string(), "nonce": auth.nonce.to_string(),
                }
            }
        }
    }))?)
}

/// User + system CPU ticks (1/100 s) of process `pid`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

struct BurstResult {
    wall: Duration,
    txs: u64,
    kinds: String,
    gas: u64,
    calldata: u64,
    rss_mib: f64,
}

async fn burst(
    dir: &Path,
    d: &DevnetFile,
    n: u32,
    rail: Option<Rail>,
    pid: u32,
) -> Result<BurstResult> {
    use alloy::providers::Provider;
    use futures::future::join_all;
    let sink = merchant_sink(dir).await?;
    let provider = crate::metis::sink::provider(&d.metis_rpc_url)?;
    // The relayer must be up before invoices are handed to it.
    let health = format!("http://{}/healthz", d.relayer_http);
    let started = std::time::Instant::now();
    while reqwest::get(&health).await.is_err() {
        if started.elapsed() > Duration::from_secs(120) {
            bail!(
                "the relayer did not answer {health} within 2 minutes (see {})",
                dir.join("relayer.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = sink.now().await?;
    let key: PrivateKeySigner = d
        .merchant_key
        .parse()
        .map_err(|_| anyhow!("merchant key"))?;
    let mut invoices = Vec::new();
    for i in 0..n {
        let r = rail.unwrap_or(if i % 2 == 0 { Rail::Btc } else { Rail::Goat });
        let terms = merchant_terms(d, r, None, crate::metis::invoice::random_ref()?, now + 3600)?;
        invoices.push(SignedInvoice::sign(
            terms,
            &key,
            d.metis_chain_id,
            d.payment_settlement,
        )?);
    }
    for r in join_all(invoices.iter().map(|i| submit_invoice(&d.relayer_http, i))).await {
        r?;
    }
    eprintln!(
        "{} signed invoices handed to the relayer; paying",
        invoices.len()
    );
    let first_block = provider.get_block_number().await?;
    // One after another (the GOAT payer's nonces come from the node's pending count).
    for inv in &invoices {
        match inv.terms.rail {
            Rail::Btc => {
                pay_btc_terms(dir, &inv.terms).await?;
            }
            Rail::Goat => {
                pay_goat_terms(dir, &inv.terms, false).await?;
            }
        }
    }
    mine_btc(dir, 6).await?;
    let start = std::time::Instant::now();
    eprintln!("all paid; waiting for the daemon");
    loop {
        let states = join_all(invoices.iter().map(|i| sink.invoice_state(i.id()))).await;
        let mut settled = 0;
        for s in states {
            if s?.is_settled() {
                settled += 1;
            }
        }
        if settled == invoices.len() {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!(
                "{settled} of {} settled after 10 minutes (see {})",
                invoices.len(),
                dir.join("relayer.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = start.elapsed();
    let last_block = provider.get_block_number().await?;
    // Every transaction the relayer sent in that window, from the chain.
    let relayer: PrivateKeySigner = d.relayer_key.parse().map_err(|_| anyhow!("relayer key"))?;
    let (mut txs, mut gas, mut calldata) = (0u64, 0u64, 0u64);
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    for number in first_block..=last_block {
        let Some(block) = provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Number(number))
            .full()
            .await?
        else {
            continue;
        };
        for tx in block.transactions.txns() {
            use alloy::consensus::Transaction as _;
            if tx.inner.signer() != relayer.address() {
                continue;
            }
            let receipt = provider
                .get_transaction_receipt(*tx.inner.tx_hash())
                .await?
                .ok_or_else(|| anyhow!("no receipt for {}", tx.inner.tx_hash()))?;
            txs += 1;
            gas += receipt.gas_used;
            calldata += tx.input().len() as u64;
            let selector = tx.input().get(..4).map(hex::encode).unwrap_or_default();
            *kinds.entry(selector_name(&selector)).or_default() += 1;
        }
    }
    let kinds = kinds
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rss_mib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0);
    Ok(BurstResult {
        wall,
        txs,
        kinds,
        gas,
        calldata,
        rss_mib,
    })
}

/// The contract function a selector calls (for the burst's table).
fn selector_name(selector: &str) -> String {
    use crate::metis::bindings::{
        BtcLightClient as B, GoatHeaderStore as G, GoatLightClient as L, PaymentSettlement as P,
    };
    use alloy::sol_types::SolCall;
    let known = [
        (hex::encode(P::settleBtcCall::SELECTOR), "settleBtc"),
        (hex::encode(P::settleGoatCall::SELECTOR), "settleGoat"),
        (
            hex::encode(B::submitCompactHeadersCall::SELECTOR),
            "submitCompactHeaders",
        ),
        (hex::encode(B::submitHeadersCall::SELECTOR), "submitHeaders"),
        (hex::encode(G::attestBlockCall::SELECTOR), "attestBlock"),
        (
            hex::encode(L::submitCall::SELECTOR),
            "GoatLightClient.submit",
        ),
    ];
    known
        .iter()
        .find(|(s, _)| s == selector)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("0x{selector}"))
}

/// Mines `n` Bitcoin blocks to the agent.
pub async fn mine_btc(dir: &Path, n: u32) -> Result<u32> {
    let config = config(dir)?;
    let source = crate::app::btc_source(&config)?;
    let payer = crate::devnet::Payer::from_seed(BTC_PAYER_SEED);
    crate::devnet::RpcNode::new(&source)
        .mine(n, &payer.address)
        .await?;
    Ok(source.chain_info().await?.blocks)
}
