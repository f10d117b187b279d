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
use crate::metis::sink::{MetisSink, NewInvoice};
use crate::rail::Rail;

/// The agent's Bitcoin key seed (regtest only: public).
pub const BTC_PAYER_SEED: [u8; 32] = [0x11; 32];
/// The merchant's Metis key (anvil's second well-known account: public).
pub const MERCHANT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// Where the merchant is paid on GOAT (anvil's third account).
pub const MERCHANT_GOAT_PAYEE: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// Where the merchant is paid on Bitcoin (a regtest P2WPKH address).
pub const MERCHANT_BTC_PAYEE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// Blocks mined at `up` so the agent has mature coinbases to spend.
pub const INITIAL_BLOCKS: u32 = 200;

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
pub async fn up(dir: &Path) -> Result<DevnetFile> {
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
    let result = up_inner(&dir, &mut pids).await;
    if result.is_err() {
        for (_, pid) in &pids {
            stop_pid(*pid);
        }
    }
    result
}

async fn up_inner(dir: &Path, pids: &mut Vec<(String, u32)>) -> Result<DevnetFile> {
    let port = crate::devnet::free_port();
    let mut node = crate::devnet::Bitcoind::start_in(&dir.join("bitcoind"), port).await?;
    pids.push(("bitcoind".into(), node.detach()));
    let payer = crate::devnet::Payer::from_seed(BTC_PAYER_SEED);
    node.node().mine(INITIAL_BLOCKS, &payer.address).await?;

    let mut goat = crate::goat::devnet::Anvil::start_on(
        2345,
        crate::devnet::free_port(),
        &["--block-time", "1"],
    )
    .await?;
    pids.push(("goat anvil".into(), goat.detach()));
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

[metis]
rpc_url = "{metis_url}"
chain_id = 1088
key_file = "{key_file}"
min_btc_confirmations = 6
devnet_attesters = true
deployment_file = "{deployment}"
timeout_secs = 30
max_retry_secs = 30

[run]
http = "{http}"
poll_interval_ms = 250
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
    );
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
        relayer_key: crate::goat::devnet::RELAYER_KEY.into(),
        merchant_key: MERCHANT_KEY.into(),
        agent_goat_key: crate::goat::devnet::PAYER_KEY.into(),
        agent_btc_seed: hex::encode(BTC_PAYER_SEED),
        merchant_goat_payee: MERCHANT_GOAT_PAYEE.parse()?,
        merchant_btc_payee: MERCHANT_BTC_PAYEE.into(),
        next_coinbase: 1,
        pids: pids.clone(),
        relayer_http: http,
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
    for (what, pid) in d.pids.drain(..) {
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

/// Creates an invoice as the devnet merchant; returns its id.
pub async fn invoice(
    dir: &Path,
    rail: Rail,
    amount: Option<U256>,
    expiry_secs: u64,
) -> Result<B256> {
    let d = load(dir)?;
    let sink = merchant_sink(dir).await?;
    let mut salt = [0u8; 32];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    }
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
    let now = sink.now().await?;
    let (id, _) = sink
        .create_invoice(&NewInvoice {
            salt: B256::from(salt),
            rail: rail.as_u8(),
            payee,
            asset,
            amount,
            expiry: now + expiry_secs,
            service_id: B256::ZERO,
        })
        .await?;
    Ok(id)
}

/// Pays a Bitcoin invoice as the agent; returns the txid.
pub async fn pay_btc(dir: &Path, id: B256) -> Result<bitcoin::Txid> {
    let mut d = load(dir)?;
    let sink = merchant_sink(dir).await?;
    let inv = sink
        .invoice(id)
        .await?
        .ok_or_else(|| anyhow!("invoice {id} does not exist on Metis"))?;
    if inv.rail != Rail::Btc.as_u8() {
        bail!("invoice {id} is a {} invoice", inv.rail_name());
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
    let script = bitcoin::ScriptBuf::from_bytes(inv.payee.to_vec());
    let amount =
        u64::try_from(inv.amount).map_err(|_| anyhow!("amount {} is not satoshis", inv.amount))?;
    let tx = payer.pay(
        utxo,
        &script,
        bitcoin::Amount::from_sat(amount),
        &id.0,
        bitcoin::Amount::from_sat(1_000),
    )?;
    let txid = node.send(&tx).await?;
    d.next_coinbase += 1;
    save(dir, &d)?;
    Ok(txid)
}

/// Pays a GOAT invoice as the agent (EIP-3009, nonce = invoice id); returns the tx hash.
pub async fn pay_goat(dir: &Path, id: B256) -> Result<B256> {
    let d = load(dir)?;
    let sink = merchant_sink(dir).await?;
    let inv = sink
        .invoice(id)
        .await?
        .ok_or_else(|| anyhow!("invoice {id} does not exist on Metis"))?;
    if inv.rail != Rail::Goat.as_u8() {
        bail!("invoice {id} is a {} invoice", inv.rail_name());
    }
    let payee =
        Address::try_from(inv.payee.as_ref()).map_err(|_| anyhow!("payee is not 20 bytes"))?;
    let paid = crate::goat::devnet::pay(
        &d.goat_rpc_url,
        inv.asset,
        &d.agent_goat_key,
        payee,
        inv.amount,
        id,
        true,
    )
    .await?;
    Ok(paid.tx_hash)
}

/// `gmrelay bench daemon`: a devnet in a temporary directory, `gmrelay run`
/// as a child process, `n` invoices created at once (half per rail), all
/// paid, then the time until every one is settled, the Metis transactions
/// and gas the daemon spent, and its peak RSS.
pub async fn bench_burst(n: u32) -> Result<()> {
    if !(2..=200).contains(&n) {
        bail!("--invoices {n}: 2..=200 (the devnet's agent has 100 mature coinbases)");
    }
    let tmp = tempfile::Builder::new()
        .prefix("gmrelay-burst-")
        .tempdir()?;
    let dir = tmp.path();
    let d = up(dir).await?;
    let result = async {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(dir.join("gmrelay.toml"))
            .env("GMRELAY_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("relayer.log"))?)
            .spawn()?;
        let pid = child.id();
        let outcome = burst(dir, &d, n, pid).await;
        let _ = child.kill();
        let _ = child.wait();
        outcome
    }
    .await;
    let _ = down(dir);
    let r = result?;
    println!("| invoices | rails | wall time, last payment at depth → all settled | Metis transactions | gas per settlement (all transactions / invoices) | daemon peak RSS |");
    println!("|---:|---|---:|---:|---:|---:|");
    println!(
        "| {n} | {} BTC + {} GOAT | {:.1} s | {} | {} | {:.1} MiB |",
        n / 2,
        n - n / 2,
        r.0.as_secs_f64(),
        r.1,
        r.2 / u64::from(n),
        r.3
    );
    Ok(())
}

async fn burst(dir: &Path, d: &DevnetFile, n: u32, pid: u32) -> Result<(Duration, u64, u64, f64)> {
    use futures::future::join_all;
    let sink = merchant_sink(dir).await?;
    let now = sink.now().await?;
    let btc_payee = crate::app::parse_script(&d.merchant_btc_payee, BtcNetwork::Regtest)?;
    let invoices: Vec<NewInvoice> = (0..n)
        .map(|i| {
            let mut salt = [0u8; 32];
            salt[..4].copy_from_slice(&i.to_be_bytes());
            salt[4..12].copy_from_slice(&now.to_be_bytes());
            let btc = i % 2 == 0;
            NewInvoice {
                salt: B256::from(salt),
                rail: if btc { Rail::Btc } else { Rail::Goat }.as_u8(),
                payee: if btc {
                    Bytes::from(btc_payee.to_bytes())
                } else {
                    Bytes::copy_from_slice(d.merchant_goat_payee.as_slice())
                },
                asset: if btc { Address::ZERO } else { d.goat_token },
                amount: U256::from(if btc { 50_000u64 } else { 2_500_000 }),
                expiry: now + 3600,
                service_id: B256::ZERO,
            }
        })
        .collect();
    let created = join_all(invoices.iter().map(|i| sink.create_invoice(i))).await;
    let mut ids = Vec::new();
    for c in created {
        ids.push(c?.0);
    }
    eprintln!("{} invoices created; paying", ids.len());
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            pay_btc(dir, *id).await?;
        } else {
            let inv = sink
                .invoice(*id)
                .await?
                .ok_or_else(|| anyhow!("invoice {id} vanished"))?;
            let payee = Address::try_from(inv.payee.as_ref()).map_err(|_| anyhow!("payee"))?;
            crate::goat::devnet::pay(
                &d.goat_rpc_url,
                inv.asset,
                &d.agent_goat_key,
                payee,
                inv.amount,
                *id,
                false,
            )
            .await?;
        }
    }
    mine_btc(dir, 6).await?;
    let start = std::time::Instant::now();
    eprintln!("all paid; waiting for the daemon");
    loop {
        let states = join_all(ids.iter().map(|id| sink.invoice(*id))).await;
        let mut settled = 0;
        for s in states {
            if s?.is_some_and(|v| v.status == 2) {
                settled += 1;
            }
        }
        if settled == ids.len() {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!(
                "{settled} of {} settled after 10 minutes (see {})",
                ids.len(),
                dir.join("relayer.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = start.elapsed();
    // What the daemon spent, from its own metrics (after two more rounds:
    // it counts a settlement once it has seen the receipt).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = reqwest::get(format!("http://{}/metrics", d.relayer_http))
        .await?
        .text()
        .await?;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or(0)
    };
    let txs = value("gmrelay_metis_transactions{state=\"mined\"}");
    let gas = value("gmrelay_metis_gas_total");
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
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
    Ok((wall, txs, gas, rss))
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
