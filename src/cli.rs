//! The command line: argument definitions and the commands behind them.
//! `src/bin/gmrelay.rs` only parses and calls [`run`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bitcoin::{Amount, BlockHash, Txid};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::app::{
    btc_checkpoint as checkpoint, btc_source, btc_sync_options as sync_options, open_store,
    parse_invoice_id, parse_script, stop_flag,
};
use crate::btc::headerfile;
use crate::btc::network::BtcNetwork;
use crate::btc::proof::verify_proof;
use crate::btc::source::BtcSource;
use crate::btc::sync::{now_secs, Syncer};
use crate::config::{Config, LogFormat, Overrides};
use crate::proof::{ProofBody, ProofFile};
use crate::store::Store;

/// gmrelay: SPV light-client relayer for x402 payments across Bitcoin, GOAT and Metis.
#[derive(Debug, Parser)]
#[command(name = "gmrelay", version, about, long_about = None)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes. Each overrides the config file and the environment.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Config file (TOML). Without it: built-in defaults and GMRELAY_* variables.
    #[arg(long, global = true, env = "GMRELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (holds the RocksDB store in `db/`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// bitcoind JSON-RPC URL, e.g. http://127.0.0.1:8332.
    #[arg(long, global = true)]
    pub btc_rpc: Option<String>,
    /// bitcoind cookie file.
    #[arg(long, global = true)]
    pub btc_cookie: Option<PathBuf>,
    /// bitcoind rpcuser.
    #[arg(long, global = true)]
    pub btc_user: Option<String>,
    /// bitcoind rpcpassword.
    #[arg(long, global = true)]
    pub btc_password: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9184).
    #[arg(long, global = true)]
    pub metrics: Option<String>,
    /// GOAT JSON-RPC URL (http(s):// polls, ws(s):// subscribes), e.g. https://rpc.goat.network.
    #[arg(long, global = true)]
    pub goat_rpc: Option<String>,
    /// Metis JSON-RPC URL, e.g. https://andromeda.metis.io/?owner=1088.
    #[arg(long, global = true)]
    pub metis_rpc: Option<String>,
    /// Encrypted JSON keystore holding the Metis key (password from
    /// GMRELAY_METIS_KEYSTORE_PASSWORD); instead of GMRELAY_METIS_KEY.
    #[arg(long, global = true)]
    pub keystore: Option<PathBuf>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("`{s}`: expected text or json")),
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The Bitcoin header chain.
    #[command(subcommand)]
    Headers(HeadersCmd),
    /// Bitcoin payment proofs.
    #[command(subcommand)]
    Btc(BtcCmd),
    /// GOAT Network: header light client and stablecoin payment proofs.
    #[command(subcommand)]
    Goat(crate::goat::cmd::GoatCmd),
    /// Metis contracts: deployment.
    #[command(subcommand)]
    Contracts(crate::metis::cmd::ContractsCmd),
    /// Metis settlement: header relay, GOAT attestations, invoices, settlement.
    #[command(subcommand)]
    Metis(crate::metis::cmd::MetisCmd),
    /// Regtest helpers for demos and integration testing.
    #[command(subcommand)]
    Devnet(DevnetCmd),
    /// Benchmarks (results go to BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCmd),
    /// x402: the example paid resource and an agent that pays.
    #[command(subcommand)]
    X402(X402Cmd),
    /// The relayer daemon: follows both chains, takes invoices in from
    /// Metis, relays headers and attestations, settles; until SIGINT/SIGTERM.
    Run {
        /// HTTP address for /healthz, /readyz, /status, /metrics (overrides run.http).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
    },
}

/// `gmrelay x402 …`
#[derive(Debug, Subcommand)]
pub enum X402Cmd {
    /// Serves a paid resource (`/paid`) in front of the facilitator of
    /// `gmrelay run` ([x402.example]); prints its URL.
    ServeExample {
        /// Listen here (overrides x402.example.listen).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
    },
    /// Buys a resource as an x402 agent: reads the 402, signs on the rail,
    /// retries until 200; prints the resource and the settlement.
    Pay {
        /// The resource.
        url: String,
        /// goat or btc.
        #[arg(long)]
        rail: crate::rail::Rail,
        /// Print every message on the wire, decoded.
        #[arg(long)]
        show_wire: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Regtest: mine a block whenever the payment is pending.
        #[arg(long)]
        mine_regtest: bool,
    },
}

/// `gmrelay config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Checks a config file: syntax, unknown keys, types and values.
    Validate {
        /// The file.
        file: PathBuf,
    },
    /// Prints the effective settings (defaults < file < environment < flags) as TOML.
    Show,
}

/// `gmrelay headers …`
#[derive(Debug, Subcommand)]
pub enum HeadersCmd {
    /// Downloads, validates and stores headers up to the node's tip.
    Sync {
        /// Keep following the node, polling every btc.poll_interval_secs.
        #[arg(long)]
        follow: bool,
    },
    /// Shows the stored chain.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validates and stores headers from a file of raw 80-byte headers.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// Writes the stored best chain as raw 80-byte headers.
    Export {
        /// The file.
        file: PathBuf,
        /// First height (default: the lowest stored).
        #[arg(long)]
        from: Option<u32>,
        /// Last height (default: the tip).
        #[arg(long)]
        to: Option<u32>,
    },
    /// Checks a header file without a store or a node.
    Verify {
        /// The file of raw 80-byte headers.
        file: PathBuf,
        /// Network whose rules apply.
        #[arg(long)]
        network: BtcNetwork,
        /// Height of the file's first header.
        #[arg(long)]
        start_height: u32,
        /// An earlier header of the same chain, `<height>=<160 hex digits>`
        /// (e.g. the first header of the difficulty period). Repeatable.
        #[arg(long = "anchor")]
        anchors: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `gmrelay btc …`
#[derive(Debug, Subcommand)]
pub enum BtcCmd {
    /// Builds an inclusion proof of a transaction.
    Prove {
        /// The transaction.
        #[arg(long)]
        txid: Txid,
        /// The block holding it (needed unless the node has -txindex).
        #[arg(long)]
        block: Option<BlockHash>,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verifies a proof against the stored chain.
    Verify {
        /// The proof file.
        proof: PathBuf,
        /// Confirmations required (default: btc.min_confirmations).
        #[arg(long)]
        min_confirmations: Option<u32>,
        /// Also check the invoice: it pays this address or hex scriptPubKey...
        #[arg(long, requires_all = ["amount", "invoice"])]
        pay_to: Option<String>,
        /// ...at least this many satoshis...
        #[arg(long, requires_all = ["pay_to", "invoice"])]
        amount: Option<u64>,
        /// ...and an OP_RETURN output carries this 32-byte invoice id (hex).
        #[arg(long, requires_all = ["pay_to", "amount"])]
        invoice: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `gmrelay devnet …` (regtest only).
#[derive(Debug, Subcommand)]
pub enum DevnetCmd {
    /// Starts a regtest bitcoind in the data directory and prints its RPC URL and cookie.
    /// It keeps running until `devnet stop`.
    Start {
        /// RPC port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Stops the bitcoind `devnet start` and the anvils `devnet anvil-start` launched.
    Stop,
    /// Starts an anvil (a local EVM chain: 2345 for GOAT, 1088 for Metis) that keeps
    /// running until `devnet stop`; prints its RPC URL.
    AnvilStart {
        /// Chain id.
        #[arg(long)]
        chain_id: u64,
        /// Port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Hardfork (default: shanghai for chain 1088, anvil's default otherwise).
        #[arg(long)]
        hardfork: Option<String>,
    },
    /// Mines blocks to the devnet payer's address.
    Mine {
        /// How many.
        blocks: u32,
    },
    /// Pays an invoice from a mature coinbase of the devnet payer (signed in Rust).
    Pay {
        /// Payee address or hex scriptPubKey.
        #[arg(long)]
        to: String,
        /// Satoshis.
        #[arg(long)]
        amount: u64,
        /// 32-byte invoice id (hex), carried in an OP_RETURN output.
        #[arg(long)]
        invoice: String,
        /// Height of the coinbase to spend (default: 1).
        #[arg(long, default_value_t = 1)]
        coinbase_height: u32,
    },
    /// Replaces the top N blocks with N+1 new ones (invalidateblock, then mine).
    Reorg {
        /// Depth.
        depth: u32,
    },
    /// GOAT devnet (anvil) helpers.
    #[command(flatten)]
    Goat(crate::goat::cmd::GoatDevnetCmd),
    /// A whole devnet in DIR: bitcoind regtest, GOAT and Metis anvils,
    /// contracts and token deployed, keys funded; writes DIR/gmrelay.toml
    /// and DIR/devnet.json.
    Up {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Run GOAT's consensus too: real CometBFT v0.38.25 nodes with
        /// secp256k1 validators (`make setup` installs cometbft), GOAT blocks
        /// made final on Metis by GoatLightClient, no committee.
        #[arg(long)]
        goat_consensus: bool,
        /// Validators with --goat-consensus (one CometBFT node each, 1 to 20).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=20))]
        goat_validators: u8,
    },
    /// Sets a devnet GOAT validator's voting power (0 removes it) through a
    /// CometBFT transaction the devnet GOAT app turns into a validator update
    /// (devnet up --goat-consensus). Validator i has the devnet key of seed i+1;
    /// one beyond the running nodes signs nothing, so keep their power above 2/3.
    GoatValidator {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The validator's index (0-based).
        #[arg(long)]
        index: u8,
        /// Its new power.
        #[arg(long)]
        power: u64,
    },
    /// The devnet GOAT app (ABCI) for CometBFT nodes: one app per --listen
    /// address, mining the GOAT anvil at --evm-rpc (started by devnet up).
    #[command(hide = true)]
    GoatAbci {
        /// The GOAT anvil.
        #[arg(long)]
        evm_rpc: String,
        /// Where one node's app listens.
        #[arg(long, required = true)]
        listen: Vec<std::net::SocketAddr>,
    },
    /// Stops the devnet in DIR.
    Down {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Makes an invoice as the devnet's merchant (terms signed off-chain and
    /// handed to the relayer at the config's run.http, or created on-chain
    /// with --on-chain; saved as DIR/invoices/<id>.json) and prints its id.
    /// Its service is the merchant's AccessPass: 10 calls for the agent.
    Invoice {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The rail.
        #[arg(long)]
        rail: crate::rail::Rail,
        /// Amount in base units (sat, or token units); default 50000 sat / 2.5 USDC.
        #[arg(long)]
        amount: Option<u64>,
        /// Seconds until it expires (judged by the payment's block time).
        #[arg(long, default_value_t = 3600)]
        expiry_secs: u64,
        /// Create it on PaymentSettlement instead of signing it off-chain.
        #[arg(long)]
        on_chain: bool,
        /// Sign and save it only: do not hand it to the relayer (to hand it
        /// in later, e.g. after its payment: `curl -X POST --data
        /// @DIR/invoices/<id>.json http://<run.http>/invoices`).
        #[arg(long, conflicts_with = "on_chain")]
        hold: bool,
    },
    /// Shows the devnet agent's AccessPass on Metis (what settled payments unlocked).
    Access {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Pays a Bitcoin invoice as the devnet's agent; prints the txid.
    PayBtc {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The invoice id.
        #[arg(long)]
        invoice: String,
    },
    /// Pays a GOAT invoice as the devnet's agent (EIP-3009); prints the tx hash.
    PayGoat {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The invoice id.
        #[arg(long)]
        invoice: String,
    },
    /// Mines Bitcoin blocks on the devnet in DIR.
    MineBtc {
        /// The devnet's directory.
        #[arg(long)]
        dir: PathBuf,
        /// How many.
        blocks: u32,
    },
}

/// The directory-based devnet commands: they need no settings.
async fn devnet_dir(cmd: &DevnetCmd) -> Option<Result<()>> {
    use crate::devtools;
    let r = match cmd {
        DevnetCmd::Up {
            dir,
            goat_consensus,
            goat_validators,
        } => devtools::up(
            dir,
            devtools::UpOptions {
                goat_consensus: *goat_consensus,
                goat_validators: usize::from(*goat_validators),
            },
        )
        .await
        .map(|d| {
            println!("devnet up in {}", dir.display());
            println!(
                "  bitcoind (regtest)   {}  cookie {}",
                d.btc_rpc_url,
                d.btc_cookie_file.display()
            );
            println!("  GOAT anvil (2345)    {}", d.goat_rpc_url);
            println!("  Metis anvil (1088)   {}", d.metis_rpc_url);
            println!("  PaymentSettlement    {}", d.payment_settlement);
            println!("  BtcLightClient       {}", d.btc_light_client);
            match &d.goat_comet_rpc_url {
                Some(url) => {
                    println!("  GoatLightClient      {}", d.goat_header_store);
                    println!("  GOAT CometBFT RPC    {url}  ({} validators)", d.goat_comet_rpc_urls.len());
                }
                None => println!("  GoatHeaderStore      {}", d.goat_header_store),
            }
            println!("  GOAT USDC (EIP-3009) {}", d.goat_token);
            println!("  relayer HTTP         http://{}", d.relayer_http);
            println!("config  {}", dir.join("gmrelay.toml").display());
            println!("devnet  {}", dir.join("devnet.json").display());
            println!(
                "next: gmrelay run --config {}",
                dir.join("gmrelay.toml").display()
            );
        }),
        DevnetCmd::GoatValidator { dir, index, power } => async {
            let d = devtools::load(dir)?;
            let url = d
                .goat_comet_rpc_url
                .ok_or_else(|| anyhow!("the devnet in {} runs no GOAT consensus (devnet up --goat-consensus)", dir.display()))?;
            let height =
                crate::goat::cometnet::set_validator_power(&url, usize::from(*index), *power).await?;
            println!("GOAT validator {index}: power {power}, committed at CometBFT height {height} (the set changes at height {})", height + 2);
            Ok(())
        }
        .await,
        DevnetCmd::GoatAbci { evm_rpc, listen } => async {
            let mut listeners = Vec::new();
            for addr in listen {
                listeners.push(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("listening on {addr}"))?,
                );
            }
            Ok(crate::goat::abci::serve(listeners, evm_rpc).await?)
        }
        .await,
        DevnetCmd::Down { dir } => devtools::down(dir).map(|stopped| {
            for (what, pid) in &stopped {
                println!("stopped {what} (pid {pid})");
            }
            if stopped.is_empty() {
                println!("nothing was running");
            }
        }),
        DevnetCmd::Invoice {
            dir,
            rail,
            amount,
            expiry_secs,
            on_chain,
            hold,
        } => devtools::invoice(
            dir,
            *rail,
            amount.map(alloy::primitives::U256::from),
            *expiry_secs,
            *on_chain,
            *hold,
        )
        .await
        .map(|i| println!("{}", i.id())),
        DevnetCmd::Access { dir } => devtools::access(dir).await.map(|(has, calls, until)| {
            println!(
                "access {}: {calls} call(s) left{}",
                if has { "granted" } else { "none" },
                if until > 0 {
                    format!(", timed access until {until}")
                } else {
                    String::new()
                }
            )
        }),
        DevnetCmd::PayBtc { dir, invoice } => match parse_invoice_id(invoice) {
            Ok(id) => devtools::pay_btc(dir, id.into())
                .await
                .map(|t| println!("{t}")),
            Err(e) => Err(e),
        },
        DevnetCmd::PayGoat { dir, invoice } => match parse_invoice_id(invoice) {
            Ok(id) => devtools::pay_goat(dir, id.into())
                .await
                .map(|t| println!("{t}")),
            Err(e) => Err(e),
        },
        DevnetCmd::MineBtc { dir, blocks } => devtools::mine_btc(dir, *blocks)
            .await
            .map(|h| println!("mined {blocks}; tip {h}")),
        _ => return None,
    };
    Some(r)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    if let Command::Devnet(cmd) = &cli.command {
        if let Some(r) = devnet_dir(cmd).await {
            return r;
        }
    }
    if let Command::Config(ConfigCmd::Validate { file }) = &cli.command {
        let c = Config::load(file)?;
        println!(
            "{}: valid (Bitcoin {}, bitcoind {}, data {})",
            file.display(),
            c.btc.network,
            c.btc_rpc_url(),
            c.data_dir().display()
        );
        return Ok(());
    }
    let network_flag = match &cli.command {
        Command::Headers(HeadersCmd::Verify { network, .. }) => Some(*network),
        _ => None,
    };
    let overrides = Overrides {
        data_dir: g.data_dir.clone(),
        btc_rpc: g.btc_rpc.clone(),
        btc_cookie: g.btc_cookie.clone(),
        btc_user: g.btc_user.clone(),
        btc_password: g.btc_password.clone(),
        btc_network: network_flag,
        log_format: g.log_format,
        metrics_listen: g.metrics.clone(),
        goat_rpc: g.goat_rpc.clone(),
        metis_rpc: g.metis_rpc.clone(),
        metis_keystore: g.keystore.clone(),
    };
    let config = Config::layered(g.config.as_deref(), |k| std::env::var(k).ok(), &overrides)?;
    crate::telemetry::init(config.log.format, &config.log.level);
    if let Some(addr) = &config.metrics.listen {
        crate::metrics::serve(addr)?;
    }
    match cli.command {
        Command::Config(ConfigCmd::Show) => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Config(ConfigCmd::Validate { .. }) => unreachable!("handled above"),
        Command::Headers(cmd) => headers(&config, cmd).await,
        Command::Btc(cmd) => btc(&config, cmd).await,
        Command::Goat(cmd) => crate::goat::cmd::run(&config, cmd).await,
        Command::Contracts(cmd) => crate::metis::cmd::contracts_cmd(&config, cmd).await,
        Command::Metis(cmd) => crate::metis::cmd::run(&config, cmd).await,
        Command::Devnet(DevnetCmd::Goat(cmd)) => crate::goat::cmd::devnet(&config, cmd).await,
        Command::Run { http } => {
            let http = match http {
                Some(a) => Some(a),
                None => config
                    .run
                    .http
                    .as_deref()
                    .map(|h| h.parse().expect("validated by Config::validate")),
            };
            crate::daemon::run(config, crate::daemon::RunOptions { http }).await
        }
        Command::Devnet(cmd) => devnet(&config, cmd).await,
        Command::X402(cmd) => x402(&config, cmd).await,
        Command::Bench(cmd) => crate::bench::run(&config, cmd).await,
    }
}

async fn headers(config: &Config, cmd: HeadersCmd) -> Result<()> {
    match cmd {
        HeadersCmd::Sync { follow } => {
            let source = btc_source(config)?;
            let store = open_store(config)?;
            let cp = checkpoint(config)?;
            let flag = stop_flag();
            let mut syncer = Syncer::open(&source, &store, &cp, sync_options(config))
                .await?
                .with_stop_flag(&flag);
            let bar = ProgressBar::hidden();
            let bar_ref = &bar;
            let progress = move |h: u32, node: u32| {
                if bar_ref.is_hidden() && node.saturating_sub(h) > 10_000 && console_is_tty() {
                    bar_ref.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar_ref.set_style(
                        ProgressStyle::with_template(
                            "{spinner} headers {pos}/{len} [{bar:40}] {per_sec} eta {eta}",
                        )
                        .expect("valid template"),
                    );
                }
                bar_ref.set_length(u64::from(node));
                bar_ref.set_position(u64::from(h));
            };
            loop {
                let started = Instant::now();
                match syncer.sync_once(Some(&progress)).await {
                    Ok(report) => {
                        bar.finish_and_clear();
                        let tip = report.tip_hash.map(|h| h.to_string()).unwrap_or_default();
                        println!(
                            "synced: tip {} {} (+{} headers in {:.2?}{})",
                            report.tip_height,
                            tip,
                            report.new_headers,
                            started.elapsed(),
                            if report.reorgs.is_empty() {
                                String::new()
                            } else {
                                format!(", reorgs of depth {:?}", report.reorgs)
                            }
                        );
                    }
                    Err(crate::btc::sync::SyncError::Interrupted) => {
                        bar.finish_and_clear();
                        let tip = syncer.chain().tip();
                        println!(
                            "interrupted: store consistent at {} {}",
                            tip.height(),
                            tip.hash()
                        );
                        return Ok(());
                    }
                    Err(e) if follow && crate::error::Classify::is_transient(&e) => {
                        metrics::counter!("gmrelay_sync_errors_total", "chain" => "bitcoin")
                            .increment(1);
                        tracing::warn!(error = %e, "sync round failed; retrying next poll");
                    }
                    Err(e) => return Err(e.into()),
                }
                if !follow {
                    return Ok(());
                }
                let poll = Duration::from_secs(config.btc.poll_interval_secs.max(1));
                let deadline = Instant::now() + poll;
                while Instant::now() < deadline {
                    if flag.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        HeadersCmd::Status { json } => {
            let store = open_store(config)?;
            let Some((net, cp_h, cp_hash)) = store.btc_origin()? else {
                bail!(
                    "store {} is empty: run `gmrelay headers sync` first",
                    config.store_dir().display()
                );
            };
            let (h, hash) = store
                .btc_tip()?
                .ok_or_else(|| anyhow!("store has no tip"))?;
            let tip = store
                .btc_header(&hash)?
                .ok_or_else(|| anyhow!("tip header {hash} missing from the store"))?;
            let work = crate::btc::chain::work_hex(tip.chainwork());
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "network": net.name(),
                        "checkpoint": {"height": cp_h, "hash": cp_hash.to_string()},
                        "tip": {"height": h, "hash": hash.to_string(), "time": tip.header().time, "chainwork": work},
                        "headers_since_checkpoint": h - cp_h,
                        "store": config.store_dir().display().to_string(),
                    }))?
                );
            } else {
                println!("network     {net}");
                println!("checkpoint  {cp_h} {cp_hash}");
                println!("tip         {h} {hash}");
                println!("tip time    {}", tip.header().time);
                println!("chainwork   {work} (from the checkpoint's declared chainwork)");
                println!("store       {}", config.store_dir().display());
            }
            Ok(())
        }
        HeadersCmd::Import { file } => {
            let headers = headerfile::read_headers(&file)?;
            let store = open_store(config)?;
            let cp = checkpoint(config)?;
            // Where the checkpoint is in the file, if it is: what precedes it
            // is below the trust root and is skipped.
            let at = headers.iter().position(|h| h.block_hash() == cp.hash);
            let empty = store.btc_origin()?.is_none();
            let (mut chain, mut changes) = if empty {
                // An empty store: anchor it from the file itself, which must
                // hold the checkpoint and the headers just below it (as
                // `headers export` writes them). No node is needed, and
                // nothing is written until the whole file has connected.
                let at = at.ok_or_else(|| {
                    anyhow!(
                        "store {} is empty and {} does not contain the checkpoint {} (height {}): run `gmrelay headers sync` to anchor the store, or import a file that starts at or below the checkpoint",
                        config.store_dir().display(),
                        file.display(),
                        cp.hash,
                        cp.height
                    )
                })?;
                let below = crate::btc::HeaderChain::anchor_ancestors(cp.height) as usize;
                if at < below {
                    bail!(
                        "{}: the checkpoint is header {at} of the file, but anchoring needs the {below} headers below it",
                        file.display()
                    );
                }
                let anchor = crate::btc::chain::Anchor {
                    trusted_hash: cp.hash,
                    header: headers[at],
                    height: cp.height,
                    chainwork: cp.chainwork().unwrap_or_else(|| headers[at].work()),
                    ancestors: headers[at - below..at].to_vec(),
                };
                let chain =
                    crate::btc::HeaderChain::from_anchor(config.btc.network.rules(), anchor)
                        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
                let changes = chain.anchor_changes();
                (chain, changes)
            } else {
                (
                    crate::btc::sync::restore(&store, config.btc.network, &cp)?,
                    crate::btc::chain::ChangeSet::default(),
                )
            };
            let skip = at.map_or(0, |i| i + 1);
            let now = now_secs();
            let mut stored = 0;
            for (i, batch) in headers[skip..].chunks(2000).enumerate() {
                let connected = chain.connect(batch, now).map_err(|e| {
                    anyhow!(
                        "{}: header {} of the file: {e}; nothing was imported",
                        file.display(),
                        skip + i * 2000
                            + batch
                                .iter()
                                .position(|h| h.block_hash() == e.hash)
                                .unwrap_or(0)
                    )
                })?;
                stored += connected.changes.headers.len();
                changes.merge(connected.changes);
            }
            // One atomic write: the whole file, or nothing.
            if empty {
                store.btc_init(config.btc.network, (cp.height, cp.hash), &changes)?;
            } else {
                store.btc_apply(&changes)?;
            }
            let tip = chain.tip();
            println!(
                "imported {stored} new headers from {}; tip {} {}",
                file.display(),
                tip.height(),
                tip.hash()
            );
            Ok(())
        }
        HeadersCmd::Export { file, from, to } => {
            let store = open_store(config)?;
            let Some((_, cp_h, _)) = store.btc_origin()? else {
                bail!("store {} is empty", config.store_dir().display());
            };
            let (tip, _) = store.btc_tip()?.ok_or_else(|| anyhow!("no tip"))?;
            let from = from.unwrap_or(cp_h - crate::btc::HeaderChain::anchor_ancestors(cp_h));
            let to = to.unwrap_or(tip).min(tip);
            if from > to {
                bail!("--from {from} is above --to {to}");
            }
            let headers: Vec<_> = store
                .btc_best_range(from, to)?
                .into_iter()
                .map(|v| *v.header())
                .collect();
            if headers.len() as u32 != to - from + 1 {
                bail!("the store does not hold every best-chain header in {from}..={to}");
            }
            headerfile::write_headers(&file, &headers)?;
            println!(
                "exported {} headers ({from}..={to}) to {}",
                headers.len(),
                file.display()
            );
            Ok(())
        }
        HeadersCmd::Verify {
            file,
            network,
            start_height,
            anchors,
            json,
        } => {
            let headers = headerfile::read_headers(&file)?;
            let anchors = anchors
                .iter()
                .map(|a| headerfile::parse_anchor(a))
                .collect::<Result<Vec<_>, _>>()?;
            match headerfile::verify_file(network, &headers, start_height, &anchors, now_secs()) {
                Ok(report) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        println!(
                            "{}: {} headers valid under Bitcoin {network} rules (heights {}..={})",
                            file.display(),
                            report.count,
                            report.first_height,
                            report.last_height
                        );
                        if !report.unchecked.is_empty() {
                            println!(
                                "not checked for want of earlier headers (add --anchor <height>=<hex>):"
                            );
                            for (from, to, what) in &report.unchecked {
                                if from == to {
                                    println!("  height {from}: {what}");
                                } else {
                                    println!("  heights {from}..={to}: {what}");
                                }
                            }
                        }
                    }
                    Ok(())
                }
                Err(bad) => Err(anyhow!("{}: {bad}", file.display())),
            }
        }
    }
}

fn console_is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

async fn btc(config: &Config, cmd: BtcCmd) -> Result<()> {
    let network = config.btc.network;
    match cmd {
        BtcCmd::Prove { txid, block, out } => {
            let source = btc_source(config)?;
            let store = open_store(config)?;
            let proof = crate::btc::proof::prove_tx(&source, &store, network, txid, block).await?;
            let (block_hash, height) = (proof.block_hash, proof.block_height);
            let file = ProofFile::bitcoin(proof);
            match out {
                Some(path) => {
                    file.save(&path)?;
                    println!(
                        "proof of {txid} in block {block_hash} (height {height}) written to {}",
                        path.display()
                    );
                }
                None => println!("{}", serde_json::to_string_pretty(&file)?),
            }
            Ok(())
        }
        BtcCmd::Verify {
            proof,
            min_confirmations,
            pay_to,
            amount,
            invoice,
            json,
        } => {
            let file = ProofFile::load(&proof)?;
            let p = match &file.body {
                ProofBody::Bitcoin(p) => p,
                other => bail!(
                    "{} is a {} proof, not a Bitcoin one: use `gmrelay {} verify`",
                    proof.display(),
                    other.chain(),
                    other.chain()
                ),
            };
            let store = open_store(config)?;
            let min = min_confirmations.unwrap_or(config.btc.min_confirmations);
            let verified = verify_proof(p, &store, network, min)
                .with_context(|| format!("{}: proof rejected", proof.display()))?;
            let payment = match (pay_to, amount, invoice) {
                (Some(to), Some(amount), Some(inv)) => {
                    let script = parse_script(&to, network)?;
                    let id = parse_invoice_id(&inv)?;
                    Some(verified.payment(&script, amount, &id).with_context(|| {
                        format!("{}: not the invoice's payment", proof.display())
                    })?)
                }
                _ => None,
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "valid": true,
                        "txid": verified.txid().to_string(),
                        "block_hash": verified.block_hash().to_string(),
                        "height": verified.height(),
                        "confirmations": verified.confirmations(),
                        "payment": payment.as_ref().map(|p| json!({"vout": p.vout, "amount_sat": p.amount, "replay_key": format!("{}:{}", p.txid, p.vout)})),
                    }))?
                );
            } else {
                println!(
                    "valid: tx {} in block {} (height {}), {} confirmations (≥ {min} required)",
                    verified.txid(),
                    verified.block_hash(),
                    verified.height(),
                    verified.confirmations()
                );
                if let Some(p) = payment {
                    println!(
                        "payment: output {} pays {} sat with the invoice id in OP_RETURN (replay key {}:{})",
                        p.vout,
                        p.amount,
                        p.txid,
                        p.vout
                    );
                }
            }
            Ok(())
        }
    }
}

const PAYER_SEED: [u8; 32] = [0x11; 32];

fn pid_file(config: &Config) -> PathBuf {
    config.data_dir().join("bitcoind.pid")
}

fn stop_pid(pid: &str) -> Result<()> {
    let pid: u32 = pid
        .parse()
        .with_context(|| format!("`{pid}` is not a process id"))?;
    crate::devtools::stop_pid(pid);
    Ok(())
}

async fn devnet(config: &Config, cmd: DevnetCmd) -> Result<()> {
    if config.btc.network != BtcNetwork::Regtest {
        bail!(
            "devnet commands run on regtest only (btc.network = {})",
            config.btc.network
        );
    }
    let payer = crate::devnet::Payer::from_seed(PAYER_SEED);
    match cmd {
        DevnetCmd::Start { port } => {
            let dir = config.data_dir().join("bitcoind");
            let port = port.unwrap_or_else(crate::devnet::free_port);
            let mut node = crate::devnet::Bitcoind::start_in(&dir, port).await?;
            // Detach: the node outlives this command until `devnet stop`.
            let pid = node.detach();
            std::fs::write(pid_file(config), pid.to_string())?;
            println!("rpc_url = \"{}\"", node.rpc_url());
            println!("cookie_file = \"{}\"", node.cookie_file().display());
            Ok(())
        }
        DevnetCmd::Stop => {
            let mut recorded = vec![("bitcoind".to_string(), pid_file(config))];
            if let Ok(dir) = std::fs::read_dir(config.data_dir()) {
                for e in dir.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if let Some(chain) = name
                        .strip_prefix("anvil-")
                        .and_then(|n| n.strip_suffix(".pid"))
                    {
                        recorded.push((format!("anvil (chain {chain})"), e.path()));
                    }
                }
            }
            let mut stopped = 0;
            for (what, pidf) in recorded {
                let Ok(pid) = std::fs::read_to_string(&pidf) else {
                    continue;
                };
                let pid = pid.trim().to_string();
                stop_pid(&pid)?;
                let _ = std::fs::remove_file(&pidf);
                println!("stopped {what} (pid {pid})");
                stopped += 1;
            }
            if stopped == 0 {
                bail!(
                    "{}: no devnet process recorded",
                    config.data_dir().display()
                );
            }
            Ok(())
        }
        DevnetCmd::AnvilStart {
            chain_id,
            port,
            hardfork,
        } => {
            std::fs::create_dir_all(config.data_dir())?;
            let pidf = config.data_dir().join(format!("anvil-{chain_id}.pid"));
            if pidf.exists() {
                bail!(
                    "{} exists: an anvil for chain {chain_id} is recorded (gmrelay devnet stop)",
                    pidf.display()
                );
            }
            let hardfork = hardfork.or_else(|| (chain_id == 1088).then(|| "shanghai".to_string()));
            let mut extra: Vec<&str> = Vec::new();
            if let Some(h) = &hardfork {
                extra.extend(["--hardfork", h.as_str()]);
            }
            let port = port.unwrap_or_else(crate::devnet::free_port);
            let mut anvil = crate::goat::devnet::Anvil::start_on(chain_id, port, &extra).await?;
            let pid = anvil.detach();
            std::fs::write(&pidf, pid.to_string())?;
            println!("rpc_url = \"{}\"", anvil.url());
            Ok(())
        }
        DevnetCmd::Mine { blocks } => {
            let source = btc_source(config)?;
            let v = source
                .call(
                    "generatetoaddress",
                    json!([blocks, payer.address.to_string()]),
                )
                .await?;
            let n = v.as_array().map(|a| a.len()).unwrap_or(0);
            let info = source.chain_info().await?;
            println!(
                "mined {n} blocks; tip {} {}",
                info.blocks, info.best_block_hash
            );
            Ok(())
        }
        DevnetCmd::Pay {
            to,
            amount,
            invoice,
            coinbase_height,
        } => {
            let source = btc_source(config)?;
            let script = parse_script(&to, BtcNetwork::Regtest)?;
            let id = parse_invoice_id(&invoice)?;
            let node = crate::devnet::RpcNode::new(&source);
            let utxo = node.coinbase_utxo(&payer, coinbase_height).await?;
            let tx = payer.pay(
                utxo,
                &script,
                Amount::from_sat(amount),
                &id,
                Amount::from_sat(1_000),
            )?;
            let txid = node.send(&tx).await?;
            println!("{txid}");
            Ok(())
        }
        DevnetCmd::Goat(_)
        | DevnetCmd::Up { .. }
        | DevnetCmd::GoatValidator { .. }
        | DevnetCmd::GoatAbci { .. }
        | DevnetCmd::Down { .. }
        | DevnetCmd::Invoice { .. }
        | DevnetCmd::Access { .. }
        | DevnetCmd::PayBtc { .. }
        | DevnetCmd::PayGoat { .. }
        | DevnetCmd::MineBtc { .. } => unreachable!("dispatched in run"),
        DevnetCmd::Reorg { depth } => {
            let source = btc_source(config)?;
            let node = crate::devnet::RpcNode::new(&source);
            let tip = node.reorg(depth, 1).await?;
            println!("replaced the top {depth} blocks; new tip {tip}");
            Ok(())
        }
    }
}

async fn x402(config: &Config, cmd: X402Cmd) -> Result<()> {
    match cmd {
        X402Cmd::ServeExample { http } => crate::x402::example::serve(config, http).await,
        X402Cmd::Pay {
            url,
            rail,
            show_wire,
            json,
            timeout,
            mine_regtest,
        } => {
            let opts = crate::x402::agent::PayOptions {
                url,
                rail,
                timeout: std::time::Duration::from_secs(timeout),
                mine_regtest,
            };
            let report = crate::x402::agent::pay(config, &opts, |w| {
                if show_wire {
                    println!("{} {}", w.direction, w.line);
                    if let Some((name, v)) = w.header {
                        println!(
                            "  {name}: {}",
                            serde_json::to_string_pretty(&v)
                                .unwrap_or_default()
                                .replace('\n', "\n  ")
                        );
                    }
                }
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("resource: {}", report.resource);
                println!(
                    "paid on {}: transaction {}",
                    report.network, report.transaction
                );
                println!(
                    "settled on Metis: invoice {} transaction {}",
                    report.invoice_id.as_deref().unwrap_or("-"),
                    report.metis_transaction.as_deref().unwrap_or("-")
                );
                println!(
                    "first request to 200: {:.2} s ({} requests)",
                    report.elapsed_ms as f64 / 1000.0,
                    report.requests
                );
            }
            Ok(())
        }
    }
}
