//! `gmrelay goat …` and `gmrelay devnet goat-…`: the commands behind the
//! GOAT half of the command line (argument definitions live in
//! [`crate::cli`]).

use crate::app::{
    goat_checkpoint as checkpoint, goat_finality as finality, goat_policy as policy,
    goat_source as source, goat_sync_options as sync_options,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::header::{HashCheck, RpcHeader};
use super::payment::Invoice;
use super::proof::{parse_address, parse_amount, verify_goat_proof, Acceptance};
use super::source::GoatSource;
use super::sync::{GoatSyncError, GoatSyncer};
use crate::config::Config;
use crate::proof::{ProofBody, ProofFile};
use crate::store::Store;

/// `gmrelay goat …`
#[derive(Debug, Subcommand)]
pub enum GoatCmd {
    /// Recomputes keccak256(rlp(header)) of a block JSON (as eth_getBlockByNumber
    /// returns it) and compares it with its `hash`. Exits non-zero on a mismatch.
    VerifyHeader {
        /// The JSON file (a block object, or a JSON-RPC response holding one).
        file: PathBuf,
    },
    /// Downloads, checks and stores GOAT headers up to the node's head.
    Sync {
        /// Keep following the node (WebSocket new heads, or polling every goat.poll_interval_secs).
        #[arg(long)]
        follow: bool,
    },
    /// Shows the stored GOAT chain.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Builds a payment proof of a transaction.
    Prove {
        /// The transaction hash.
        #[arg(long)]
        tx: B256,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verifies a payment proof against the stored GOAT chain.
    Verify {
        /// The proof file.
        proof: PathBuf,
        /// The invoice's token contract.
        #[arg(long)]
        token: Option<String>,
        /// The invoice's payee.
        #[arg(long)]
        payee: Option<String>,
        /// The invoice's amount in base units (decimal or 0x-hex): the payment must be at least this.
        #[arg(long)]
        amount: Option<String>,
        /// The invoice id: the 32-byte EIP-3009 nonce (hex).
        #[arg(long)]
        invoice: Option<String>,
        /// Accept unfinalized blocks with at least this many confirmations
        /// (default: the block must be finalized).
        #[arg(long)]
        min_confirmations: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints a consensus checkpoint (`goat.consensus.checkpoint_file`) read
    /// from goatd's CometBFT RPC: the commit must carry more than 2/3 of the
    /// set's power (signatures checked), every --cross-check node must serve
    /// the same header, and the set is compared with GOAT's genesis
    /// validators. Writes nothing; redirect the JSON to a file.
    ConsensusCheckpoint {
        /// goatd's CometBFT RPC (default: goat.consensus.rpc_url).
        #[arg(long)]
        rpc: Option<String>,
        /// The height (default: the latest but one).
        #[arg(long)]
        height: Option<u64>,
        /// Another node, run by someone else, that must agree (repeatable;
        /// required unless --single-node).
        #[arg(long)]
        cross_check: Vec<String>,
        /// Accept one node's word (devnets).
        #[arg(long)]
        single_node: bool,
    },
}

/// Reads a block JSON file (a block object or a JSON-RPC response).
pub fn read_block_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    Ok(match v.get("result") {
        Some(r) if v.get("jsonrpc").is_some() => r.clone(),
        _ => v,
    })
}

/// Runs `gmrelay goat …`.
pub async fn run(config: &Config, cmd: GoatCmd) -> Result<()> {
    match cmd {
        GoatCmd::VerifyHeader { file } => {
            let v = read_block_json(&file)?;
            let parsed = RpcHeader::parse(&v).with_context(|| format!("{}", file.display()))?;
            let h = &parsed.header;
            println!(
                "{}: block {}, {} header ({} fields), extraData {} bytes",
                file.display(),
                h.number,
                h.shape(),
                h.shape().field_count(),
                h.extra_data.len()
            );
            match parsed.check() {
                HashCheck::Match(hash) => {
                    println!("match: keccak256(rlp(header)) = {hash}");
                    Ok(())
                }
                HashCheck::Mismatch { computed, claimed } => {
                    println!(
                        "MISMATCH: keccak256(rlp(header)) = {computed}, the file claims {claimed}"
                    );
                    bail!(
                        "{}: block {}: header hash mismatch",
                        file.display(),
                        h.number
                    )
                }
            }
        }
        GoatCmd::Sync { follow } => sync(config, follow).await,
        GoatCmd::Status { json } => status(config, json),
        GoatCmd::ConsensusCheckpoint {
            rpc,
            height,
            cross_check,
            single_node,
        } => {
            if cross_check.is_empty() && !single_node {
                bail!("--cross-check: name at least one more goatd node, run by someone else, that must serve the same header (or --single-node on a devnet)");
            }
            let timeout = std::time::Duration::from_secs(config.goat.timeout_secs);
            let url = rpc
                .or_else(|| config.goat.consensus.as_ref().map(|c| c.rpc_url.clone()))
                .ok_or_else(|| {
                    anyhow!("--rpc: goatd's CometBFT RPC (or set goat.consensus.rpc_url)")
                })?;
            let main = crate::goat::comet::CometRpc::new(&url, timeout)?;
            let others = cross_check
                .iter()
                .map(|u| crate::goat::comet::CometRpc::new(u, timeout))
                .collect::<Result<Vec<_>, _>>()?;
            let r = crate::goat::follow::make_checkpoint(&main, height, &others).await?;
            // GOAT's public CometBFT chains belong to their EVM chains.
            let evm = match r.checkpoint.comet_chain_id.as_str() {
                "goat-mainnet" => Some(crate::goat::checkpoint::GOAT_MAINNET),
                "goat-testnet3" => Some(crate::goat::checkpoint::GOAT_TESTNET3),
                _ => None,
            };
            if let Some(id) = evm.filter(|id| *id != config.goat.chain_id) {
                bail!(
                    "{url} follows CometBFT chain `{}`, whose EVM chain id is {id}; the config says goat.chain_id = {}",
                    r.checkpoint.comet_chain_id,
                    config.goat.chain_id
                );
            }
            eprintln!(
                "height {} signed by {} of {} voting power; {} validators; served alike by {}",
                r.checkpoint.height,
                r.signed_power.0,
                r.signed_power.1,
                r.validators.len(),
                r.agreeing.join(", ")
            );
            match r.genesis_validators_in_set {
                Some((n, of)) => eprintln!("{n} of GOAT's {of} genesis validators are in this set"),
                None => eprintln!(
                    "chain {}: no GOAT genesis validators to compare with",
                    r.checkpoint.comet_chain_id
                ),
            }
            if r.agreeing.len() < 2 {
                eprintln!(
                    "warning: one node only: pass --cross-check with a node run by someone else"
                );
            }
            println!("{}", serde_json::to_string_pretty(&r.checkpoint)?);
            Ok(())
        }
        GoatCmd::Prove { tx, out } => prove(config, tx, out).await,
        GoatCmd::Verify {
            proof,
            token,
            payee,
            amount,
            invoice,
            min_confirmations,
            json,
        } => {
            let file = ProofFile::load(&proof)?;
            let p = match &file.body {
                ProofBody::Goat(p) => p,
                other => bail!(
                    "{} is a {} proof, not a GOAT one: use `gmrelay btc verify`",
                    proof.display(),
                    other.chain()
                ),
            };
            let store = crate::app::open_store(config)?;
            let acceptance = match min_confirmations {
                Some(n) => Acceptance::Confirmations(n),
                None => Acceptance::Finalized,
            };
            let verified = verify_goat_proof(
                p,
                &store,
                config.goat.chain_id,
                acceptance,
                config.goat.allow_plain_transfers,
            )
            .with_context(|| format!("{}: proof rejected", proof.display()))?;
            // The configured tokens (or --token) and payees always apply: a
            // look-alike contract emitting the same events never counts.
            let mut policy = policy(config);
            if let Some(t) = token.as_deref() {
                let t = parse_address(t).map_err(|e| anyhow!(e))?;
                if !policy.tokens.contains(&t) {
                    policy.tokens.push(t);
                }
            }
            if policy.tokens.is_empty() {
                bail!("goat.tokens is empty and no --token was given: name the token contracts whose payments count");
            }
            verified
                .check_policy(&policy)
                .with_context(|| format!("{}: not an accepted payment", proof.display()))?;
            let invoice = Invoice {
                token: token
                    .as_deref()
                    .map(parse_address)
                    .transpose()
                    .map_err(|e| anyhow!(e))?,
                payee: payee
                    .as_deref()
                    .map(parse_address)
                    .transpose()
                    .map_err(|e| anyhow!(e))?,
                min_amount: amount
                    .as_deref()
                    .map(parse_amount)
                    .transpose()
                    .map_err(|e| anyhow!(e))?,
                nonce: invoice
                    .as_deref()
                    .map(|s| crate::app::parse_invoice_id(s).map(B256::from))
                    .transpose()?,
            };
            verified
                .check_invoice(&invoice)
                .with_context(|| format!("{}: not the invoice's payment", proof.display()))?;
            let pay = verified.payment();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "valid": true,
                        "chain_id": verified.chain_id(),
                        "block_hash": verified.block_hash(),
                        "block_number": verified.block_number(),
                        "tx_index": verified.tx_index(),
                        "confirmations": verified.confirmations(),
                        "finalized": verified.finalized(),
                        "payment": {
                            "token": pay.token, "from": pay.from, "to": pay.to,
                            "value": pay.value.to_string(), "nonce": pay.nonce,
                        },
                        "replay_key": verified.replay_key().to_string(),
                    }))?
                );
            } else {
                println!(
                    "valid: transaction {} of GOAT block {} ({}), {} confirmations, {}",
                    verified.tx_index(),
                    verified.block_number(),
                    verified.block_hash(),
                    verified.confirmations(),
                    if verified.finalized() {
                        "finalized"
                    } else {
                        "not finalized"
                    }
                );
                println!(
                    "payment: {} base units of token {} from {} to {}{}",
                    pay.value,
                    pay.token,
                    pay.from,
                    pay.to,
                    pay.nonce
                        .map(|n| format!(" with EIP-3009 nonce (invoice id) {n}"))
                        .unwrap_or_else(|| " (plain ERC-20 transfer)".into())
                );
                println!("replay key: {}", verified.replay_key());
            }
            Ok(())
        }
    }
}

async fn sync(config: &Config, follow: bool) -> Result<()> {
    let source = source(config).await?;
    let store = crate::app::open_store(config)?;
    let cp = checkpoint(config)?;
    let flag = crate::app::stop_flag();
    let mut syncer = GoatSyncer::open(
        &source,
        &store,
        cp,
        config.goat.chain_id,
        finality(config),
        sync_options(config),
    )
    .await?
    .with_stop_flag(&flag);
    if let Some(follower) = crate::app::goat_consensus(config, &store).await? {
        println!(
            "GOAT finality: CometBFT commits verified from height {} ({})",
            follower.height(),
            follower.rpc().endpoint()
        );
        syncer = syncer.with_consensus(follower);
    }
    loop {
        let started = Instant::now();
        match syncer.sync_once().await {
            Ok(report) => {
                println!(
                    "synced GOAT: tip {} {} finalized {} (+{} headers in {:.2?}{})",
                    report.tip.0,
                    report.tip.1,
                    report.finalized.0,
                    report.new_headers,
                    started.elapsed(),
                    if report.reorgs.is_empty() {
                        String::new()
                    } else {
                        format!(", {} reorg(s) followed", report.reorgs.len())
                    }
                );
            }
            Err(GoatSyncError::Interrupted) => {
                let tip = syncer.chain().tip();
                println!(
                    "interrupted: store consistent at {} {}",
                    tip.number(),
                    tip.hash()
                );
                return Ok(());
            }
            Err(e) if follow && crate::error::Classify::is_transient(&e) => {
                metrics::counter!("gmrelay_sync_errors_total", "chain" => "goat").increment(1);
                tracing::warn!(chain = "goat", error = %e, "sync round failed; retrying next head");
            }
            Err(e) => return Err(e.into()),
        }
        if !follow {
            return Ok(());
        }
        let poll = Duration::from_secs(config.goat.poll_interval_secs.max(1));
        tokio::select! {
            _ = source.wait_for_head(poll) => {}
            _ = async {
                while !flag.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } => return Ok(()),
        }
    }
}

fn status(config: &Config, json: bool) -> Result<()> {
    let store = crate::app::open_store(config)?;
    let Some((chain_id, cp_n, cp_hash)) = store.goat_origin()? else {
        bail!(
            "store {} holds no GOAT chain: run `gmrelay goat sync` first",
            config.store_dir().display()
        );
    };
    let (tip_n, tip_hash) = store
        .goat_tip()?
        .ok_or_else(|| anyhow!("no GOAT tip stored"))?;
    let (fin_n, fin_hash) = store
        .goat_finalized()?
        .ok_or_else(|| anyhow!("no GOAT finalized block stored"))?;
    let tip = store
        .goat_header(&tip_hash)?
        .ok_or_else(|| anyhow!("tip header {tip_hash} missing from the store"))?;
    let consensus = crate::goat::follow::ConsensusState::new(&store).status()?;
    let mode = if config.goat.consensus.is_some() {
        "consensus: GOAT's validators' CometBFT commits verified from a trusted header"
    } else {
        "evm-only (weaker): EVM headers from the checkpoint, consensus signatures not verified"
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "chain_id": chain_id,
                "checkpoint": {"number": cp_n, "hash": cp_hash},
                "tip": {"number": tip_n, "hash": tip_hash, "timestamp": tip.header().timestamp, "shape": tip.header().shape().to_string()},
                "finalized": {"number": fin_n, "hash": fin_hash},
                "finality": format!("{}", finality(config)),
                "trust": mode,
                "consensus": consensus,
                "store": config.store_dir().display().to_string(),
            }))?
        );
    } else {
        println!("chain id    {chain_id}");
        println!("checkpoint  {cp_n} {cp_hash}");
        println!(
            "tip         {tip_n} {tip_hash} ({} header)",
            tip.header().shape()
        );
        println!("tip time    {}", tip.header().timestamp);
        println!("finalized   {fin_n} {fin_hash} ({})", finality(config));
        println!("trust       {mode}");
        if let Some(c) = &consensus {
            println!(
                "consensus   {} height {} {} ({} validators next)",
                c.chain_id, c.height, c.header_hash, c.validators
            );
        }
        println!("store       {}", config.store_dir().display());
    }
    Ok(())
}

async fn prove(config: &Config, tx: B256, out: Option<PathBuf>) -> Result<()> {
    let policy = policy(config);
    if policy.tokens.is_empty() {
        bail!("goat.tokens is empty: set the token contracts whose payments count (config file or GMRELAY_GOAT_TOKENS)");
    }
    let source = source(config).await?;
    let store = crate::app::open_store(config)?;
    let proof =
        crate::goat::proof::prove_payment(&source, &store, config.goat.chain_id, tx, &policy)
            .await?;
    let file = ProofFile::goat(proof);
    match out {
        Some(path) => {
            file.save(&path)?;
            let ProofBody::Goat(p) = &file.body else {
                unreachable!("a GOAT proof file")
            };
            println!(
                "proof of {tx} (block {}, index {}, {} base units to {}) written to {}",
                p.block_number,
                p.tx_index,
                p.payment.value,
                p.payment.to,
                path.display()
            );
        }
        None => println!("{}", serde_json::to_string_pretty(&file)?),
    }
    Ok(())
}

/// `gmrelay devnet goat-…` (local devnet only).
#[derive(Debug, Subcommand)]
pub enum GoatDevnetCmd {
    /// Deploys the test stablecoin (EIP-3009, 6 decimals) from anvil's first account; prints its address.
    GoatDeploy {
        /// Token name (also the EIP-712 domain name).
        #[arg(long, default_value = "USD Coin")]
        name: String,
        /// Token symbol.
        #[arg(long, default_value = "USDC")]
        symbol: String,
        /// EIP-712 domain version.
        #[arg(long, default_value = "2")]
        version: String,
    },
    /// Pays an invoice: the devnet payer signs an EIP-3009 authorization (in Rust) and
    /// anvil's first account submits transferWithAuthorization. Prints the tx hash.
    GoatPay {
        /// The token contract.
        #[arg(long)]
        token: String,
        /// The payee.
        #[arg(long)]
        to: String,
        /// Amount in base units (6 decimals: 1000000 = 1 token).
        #[arg(long)]
        amount: String,
        /// 32-byte invoice id (hex): the authorization nonce.
        #[arg(long)]
        invoice: String,
        /// Do not mint the amount to the payer first.
        #[arg(long)]
        no_mint: bool,
    },
    /// Mines blocks on anvil (anvil_mine).
    GoatMine {
        /// How many.
        blocks: u64,
    },
}

fn local_only(url: &str) -> Result<()> {
    let local = [
        "http://127.0.0.1",
        "http://localhost",
        "ws://127.0.0.1",
        "ws://localhost",
    ];
    if !local.iter().any(|p| url.starts_with(p)) {
        bail!("devnet goat commands run against a local node only (goat.rpc_url = {url})");
    }
    Ok(())
}

/// Runs `gmrelay devnet goat-…`.
pub async fn devnet(config: &Config, cmd: GoatDevnetCmd) -> Result<()> {
    let url = config.goat_rpc_url().replacen("ws://", "http://", 1);
    local_only(&url)?;
    match cmd {
        GoatDevnetCmd::GoatDeploy {
            name,
            symbol,
            version,
        } => {
            let token = super::devnet::deploy_token(&url, &name, &symbol, &version).await?;
            println!("{token}");
            Ok(())
        }
        GoatDevnetCmd::GoatPay {
            token,
            to,
            amount,
            invoice,
            no_mint,
        } => {
            let token: Address = parse_address(&token).map_err(|e| anyhow!(e))?;
            let to: Address = parse_address(&to).map_err(|e| anyhow!(e))?;
            let amount: U256 = parse_amount(&amount).map_err(|e| anyhow!(e))?;
            let id = B256::from(crate::app::parse_invoice_id(&invoice)?);
            if !no_mint {
                super::devnet::mint(&url, token, super::devnet::payer_address(), amount).await?;
            }
            let paid =
                super::devnet::pay(&url, token, super::devnet::PAYER_KEY, to, amount, id, true)
                    .await?;
            println!("{}", paid.tx_hash);
            Ok(())
        }
        GoatDevnetCmd::GoatMine { blocks } => {
            super::devnet::mine(&url, blocks).await?;
            println!("mined {blocks} blocks");
            Ok(())
        }
    }
}
