//! `gmrelay run`: the relayer daemon.
//!
//! A supervisor runs small tasks, each restarted with backoff when it fails:
//! Bitcoin follow and GOAT follow ([`follow`]), invoice intake from Metis
//! ([`intake`]), and the settlement worker ([`worker`]: payment matching on
//! each rail, header relay and attestation, settlement). SIGINT and SIGTERM
//! cancel one token that every task watches; each stops between two atomic
//! writes. Every Metis transaction goes through the outbox
//! ([`crate::metis::outbox`]), reconciled with the chain before any task
//! starts. [`http`] serves `/healthz`, `/readyz`, `/status` and `/metrics`.

pub mod facilitator;
pub mod follow;
pub mod http;
pub mod intake;
pub mod records;
pub mod state;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, Context};
use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::btc::rpc::BitcoindRpc;
use crate::btc::source::BtcSource;
use crate::config::Config;
use crate::error::{Classify, ErrorClass};
use crate::goat::source::{GoatRpc, GoatSource};
use crate::metis::outbox::Outbox;
use crate::metis::sender::TxPolicy;
use crate::metis::sink::{AlloySink, MetisSink};
use crate::store::RocksStore;
use records::Records;
use state::DaemonState;

/// A task failure: transient ones are retried soon, permanent ones after a
/// long pause (an operator may fix the cause while the daemon runs).
#[derive(Debug)]
pub struct TaskError {
    /// Whether a retry may succeed.
    pub transient: bool,
    /// What happened.
    pub error: anyhow::Error,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl TaskError {
    /// Classed by the error itself.
    pub fn classed<E: Classify + std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        TaskError {
            transient: e.class() == ErrorClass::Transient,
            error: e.into(),
        }
    }
    /// A permanent failure.
    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        TaskError {
            transient: false,
            error: e.into(),
        }
    }
    /// A transient failure.
    pub fn transient(e: impl Into<anyhow::Error>) -> Self {
        TaskError {
            transient: true,
            error: e.into(),
        }
    }
}

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Everything the tasks share, built once from the settings.
pub struct Ctx {
    /// The settings.
    pub config: Config,
    /// The store.
    pub store: Arc<RocksStore>,
    /// The daemon's records in it.
    pub records: Records,
    /// What the tasks report.
    pub state: Arc<DaemonState>,
    /// bitcoind.
    pub btc: BitcoindRpc,
    /// The GOAT node.
    pub goat: Arc<GoatRpc>,
    /// Metis, with the signer and the outbox.
    pub sink: AlloySink,
    /// This operator's GOAT attester keys (may be empty).
    pub attesters: Vec<PrivateKeySigner>,
    /// GOAT's CometBFT RPC when `[goat.consensus]` is set: GOAT blocks are
    /// made final on GoatLightClient from it.
    pub comet: Option<crate::goat::comet::CometRpc>,
    /// Woken when a chain persisted news.
    pub news: Notify,
    /// One Bitcoin header relay at a time.
    pub relay_lock: tokio::sync::Mutex<()>,
    /// One GoatLightClient submitter at a time (settlement, keep-alive).
    pub goat_prove_lock: tokio::sync::Mutex<()>,
    /// Round interval, milliseconds.
    pub poll_ms: u64,
    /// First Metis block intake reads when it has no cursor.
    pub intake_from: u64,
    /// PaymentSettlement's `minBtcConfirmations`, once read.
    pub min_btc_conf: OnceCell<u64>,
}

impl Ctx {
    /// PaymentSettlement's `minBtcConfirmations` (read once).
    pub async fn min_btc_confirmations(&self) -> Result<u64, TaskError> {
        self.min_btc_conf
            .get_or_try_init(|| async { self.sink.min_btc_confirmations().await })
            .await
            .copied()
            .map_err(TaskError::classed)
    }
}

/// How `gmrelay run` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The HTTP address (`/healthz`, `/readyz`, `/status`, `/metrics`).
    pub http: Option<SocketAddr>,
}

/// Checks everything that can be checked before anything is written: the
/// key, each node's chain, the contracts. Then opens the store, reconciles
/// the outbox and builds the context.
pub async fn prepare(config: Config) -> anyhow::Result<Arc<Ctx>> {
    let key = crate::app::relayer_key(&config).context("the Metis signing key")?;
    let attesters = crate::app::attester_keys(&config)?;
    let btc = crate::app::btc_source(&config)?;
    let info = btc
        .chain_info()
        .await
        .with_context(|| format!("bitcoind at {} (btc.rpc_url)", config.btc_rpc_url()))?;
    if info.chain != config.btc.network.core_chain_name() {
        return Err(anyhow!(
            "bitcoind at {} follows chain `{}`, the config says Bitcoin {} (btc.network)",
            config.btc_rpc_url(),
            info.chain,
            config.btc.network
        ));
    }
    let goat = crate::app::goat_source(&config)
        .await
        .with_context(|| format!("GOAT node at {} (goat.rpc_url)", config.goat_rpc_url()))?;
    let goat_id = goat
        .chain_id()
        .await
        .with_context(|| format!("GOAT node at {} (goat.rpc_url)", config.goat_rpc_url()))?;
    if goat_id != config.goat.chain_id {
        return Err(anyhow!(
            "GOAT node at {} reports chain id {goat_id}, the config says goat.chain_id = {}",
            config.goat_rpc_url(),
            config.goat.chain_id
        ));
    }
    let comet = match &config.goat.consensus {
        Some(c) => {
            let rpc = crate::goat::comet::CometRpc::new(
                &c.rpc_url,
                Duration::from_secs(config.goat.timeout_secs),
            )?;
            let h = rpc.latest_height().await.with_context(|| {
                format!(
                    "GOAT CometBFT RPC at {} (goat.consensus.rpc_url)",
                    c.rpc_url
                )
            })?;
            info!(chain = "goat", height = h, endpoint = %c.rpc_url, "GOAT finality from CometBFT commits (consensus light client)");
            Some(rpc)
        }
        None => None,
    };
    let (contracts, _) = crate::app::metis_contracts(&config)?;
    // Connect once without the outbox to check chain and contracts before
    // the store exists.
    AlloySink::connect(
        &config.metis_rpc_url(),
        config.metis.chain_id,
        contracts,
        None,
        Duration::from_secs(config.metis.timeout_secs),
    )
    .await
    .with_context(|| format!("Metis at {} (metis.rpc_url)", config.metis_rpc_url()))?;

    let store = Arc::new(crate::app::open_store(&config)?);
    let outbox = Arc::new(Outbox::open(store.clone())?);
    let policy = TxPolicy {
        max_gas_price: u128::from(config.metis.max_gas_price_gwei) * 1_000_000_000,
        replace_after: Duration::from_secs(config.metis.replace_after_secs),
        receipt_timeout: Duration::from_secs(config.metis.timeout_secs),
        ..TxPolicy::default()
    };
    let sink = AlloySink::connect_with(
        &config.metis_rpc_url(),
        config.metis.chain_id,
        contracts,
        Some(key),
        Duration::from_secs(config.metis.timeout_secs),
        policy,
        Some(outbox),
    )
    .await?;
    // The GOAT contract must be the kind the config trusts GOAT with.
    let light_client = sink.goat_lc_state().await;
    if let Err(e) = &light_client {
        if e.class() == crate::error::ErrorClass::Transient {
            return Err(anyhow!(
                "Metis at {} (metis.rpc_url): reading the GOAT contract {}: {e}",
                config.metis_rpc_url(),
                contracts.goat_header_store
            ));
        }
    }
    match (&config.goat.consensus, light_client) {
        (Some(_), Err(e)) => {
            return Err(anyhow!(
                "[goat.consensus] is set but the deployment's GOAT contract {} is not a GoatLightClient ({e}): deploy with `gmrelay contracts deploy` under this config, or remove [goat.consensus]",
                contracts.goat_header_store
            ))
        }
        (None, Ok(_)) => {
            return Err(anyhow!(
                "the deployment's GOAT contract {} is a GoatLightClient: add [goat.consensus] (goatd's CometBFT RPC and a trusted header) so the relayer can submit its commits",
                contracts.goat_header_store
            ))
        }
        (Some(_), Ok((height, _, true))) => {
            warn!(chain = "goat", height, "GoatLightClient is frozen (misbehaviour): GOAT payments will not settle");
        }
        _ => {}
    }
    if let Some(sender) = sink.sender() {
        let r = sender.reconcile().await?;
        if r != Default::default() {
            info!(
                mined = r.mined,
                failed = r.failed,
                pending = r.pending,
                "outbox reconciled with Metis"
            );
        }
    }
    let state = DaemonState::new();
    *state.min_balance_wei.write().expect("state lock") =
        u128::from(config.metis.min_signer_balance_gwei) * 1_000_000_000;
    Ok(Arc::new(Ctx {
        poll_ms: config.run.poll_interval_ms,
        intake_from: config.run.intake_from_block,
        records: Records::new(store.clone()),
        store,
        state,
        btc,
        goat: Arc::new(goat),
        sink,
        attesters,
        comet,
        news: Notify::new(),
        relay_lock: tokio::sync::Mutex::new(()),
        goat_prove_lock: tokio::sync::Mutex::new(()),
        config,
        min_btc_conf: OnceCell::new(),
    }))
}

/// Runs `f` until `cancel`, restarting it with exponential backoff (from
/// 200 ms; transient failures up to 10 s, permanent ones 60 s) when it fails.
async fn supervise<F, Fut>(name: &'static str, cancel: CancellationToken, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), TaskError>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = f() => r,
        };
        match result {
            Ok(()) => {
                if cancel.is_cancelled() {
                    return;
                }
            }
            Err(e) => {
                metrics::counter!("gmrelay_task_restarts_total", "task" => name).increment(1);
                if started.elapsed() > Duration::from_secs(60) {
                    delay = Duration::from_millis(200);
                }
                let cap = if e.transient {
                    Duration::from_secs(10)
                } else {
                    Duration::from_secs(60)
                };
                delay = (delay * 2).min(cap);
                if e.transient {
                    warn!(task = name, error = %e, retry_in_ms = delay.as_millis() as u64, "task failed; restarting");
                } else {
                    error!(task = name, error = %e, retry_in_ms = delay.as_millis() as u64, "task failed permanently; retrying later (fix the cause)");
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// A task that runs `round` every poll interval (or sooner on news).
async fn every_round<F, Fut>(
    ctx: &Ctx,
    cancel: &CancellationToken,
    mut round: F,
) -> Result<(), TaskError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), TaskError>>,
{
    loop {
        round().await?;
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = ctx.news.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(ctx.poll_ms)) => {}
        }
    }
}

/// Watches the signer's balance, looks up late receipts and prunes the outbox.
async fn watch_signer(ctx: &Ctx) -> Result<(), TaskError> {
    let Some(sender) = ctx.sink.sender() else {
        return Ok(());
    };
    let address = sender.address();
    let balance = ctx
        .sink
        .provider()
        .get_balance(address)
        .await
        .ok()
        .map(|b: U256| u128::try_from(b).unwrap_or(u128::MAX));
    ctx.state.signer(address.to_string(), balance);
    // Receipts that came after their sender stopped waiting.
    if let Err(e) = sender.refresh_open().await {
        warn!(error = %e, "outbox refresh failed");
    }
    // Finished transactions are kept a week (for /status and restarts), then dropped.
    if let Some(outbox) = sender.outbox() {
        let now = now_ms() / 1000;
        match outbox.prune(OUTBOX_RETENTION_SECS, now) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "old outbox entries dropped"),
            Err(e) => warn!(error = %e, "outbox pruning failed"),
        }
    }
    Ok(())
}

/// How long a mined or failed Metis transaction stays in the outbox.
pub const OUTBOX_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
    let ctx = prepare(config).await?;
    let cancel = CancellationToken::new();
    let handle = crate::metrics::recorder();
    crate::metrics::spawn_upkeep(handle.clone());
    if let Some(addr) = options.http {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the HTTP address {addr} (--http / run.http)"))?;
        let local = listener.local_addr()?;
        let extra = if ctx.config.x402.enabled {
            let f = facilitator::Facilitator::new(ctx.clone())
                .await
                .context("the x402 facilitator ([x402])")?;
            println!("x402 facilitator http://{local} (/supported /verify /settle)");
            Some(facilitator::routes(std::sync::Arc::new(f)))
        } else {
            None
        };
        info!(addr = %local, "HTTP: /healthz /readyz /status /metrics");
        println!("http http://{local}");
        tokio::spawn(http::serve(
            listener,
            ctx.clone(),
            handle,
            extra,
            cancel.clone(),
        ));
    }
    let mut tasks = Vec::new();
    {
        let (c, k) = (ctx.clone(), cancel.clone());
        tasks.push(tokio::spawn(async move {
            supervise("btc_follow", k.clone(), || follow::btc(&c, &k)).await
        }));
    }
    {
        let (c, k) = (ctx.clone(), cancel.clone());
        tasks.push(tokio::spawn(async move {
            supervise("goat_follow", k.clone(), || follow::goat(&c, &k)).await
        }));
    }
    {
        let (c, k) = (ctx.clone(), cancel.clone());
        tasks.push(tokio::spawn(async move {
            supervise("intake", k.clone(), || {
                every_round(&c, &k, || async {
                    if intake::round(&c).await? > 0 {
                        c.news.notify_one();
                    }
                    Ok(())
                })
            })
            .await
        }));
    }
    {
        let (c, k) = (ctx.clone(), cancel.clone());
        tasks.push(tokio::spawn(async move {
            supervise("settle", k.clone(), || {
                every_round(&c, &k, || worker::round(&c))
            })
            .await
        }));
    }
    {
        let (c, k) = (ctx.clone(), cancel.clone());
        tasks.push(tokio::spawn(async move {
            supervise("relay", k.clone(), || {
                every_round(&c, &k, || worker::relay_round(&c))
            })
            .await
        }));
    }
    {
        let (c, k) = (ctx.clone(), cancel.clone());
        tasks.push(tokio::spawn(async move {
            supervise("signer", k.clone(), || async {
                loop {
                    watch_signer(&c).await?;
                    tokio::select! {
                        _ = k.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    }
                }
            })
            .await
        }));
    }
    println!("gmrelay running (SIGINT or SIGTERM stops it)");
    wait_for_signal().await;
    info!("stopping: waiting for the tasks to finish their step");
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
