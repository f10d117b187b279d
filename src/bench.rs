//! `gmrelay bench …`: the benchmarks whose results BENCHMARKS.md records.
//!
//! * `bench headers`: generates a valid chain of N regtest-rule headers
//!   (mined in memory), then measures the raw double-SHA256 rate (the
//!   ceiling), full-rule validation alone, and validation plus persistence
//!   to RocksDB, with peak RSS.
//! * `bench sync`: starts a real regtest bitcoind, mines N blocks, and
//!   syncs them through the RPC source into a fresh store.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitcoin::block::{Header, Version};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::pow::CompactTarget;
use bitcoin::{BlockHash, TxMerkleNode};
use clap::Subcommand;

use crate::btc::chain::{Anchor, HeaderChain};
use crate::btc::network::BtcNetwork;
use crate::config::Config;
use crate::store::{RocksStore, Store};

/// `gmrelay bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Header validation and persistence on generated headers.
    Headers {
        /// Number of headers.
        #[arg(long, default_value_t = 1_000_000)]
        count: u32,
        /// Headers per validated batch (as the sync uses).
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
    /// Header sync from a real regtest bitcoind (started by the benchmark).
    Sync {
        /// Blocks to mine and sync.
        #[arg(long, default_value_t = 10_000)]
        blocks: u32,
        /// Headers per batched RPC round trip.
        #[arg(long, default_value_t = 2000)]
        batch: u32,
    },
}

/// Generates valid regtest-rule headers on top of regtest genesis, a batch
/// at a time, so a benchmark never holds more than one batch: timestamps one
/// second apart, regtest bits, nonces searched in memory.
pub struct HeaderGenerator {
    prev: BlockHash,
    time: u32,
    next: u32,
    target: bitcoin::pow::Target,
}

impl Default for HeaderGenerator {
    fn default() -> Self {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        HeaderGenerator {
            prev: genesis.block_hash(),
            time: genesis.time,
            next: 0,
            target: bitcoin::pow::Target::from_compact(genesis.bits),
        }
    }
}

impl HeaderGenerator {
    /// The next `n` headers.
    pub fn batch(&mut self, n: usize) -> Vec<Header> {
        let bits = CompactTarget::from_consensus(0x207fffff);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            self.time += 1;
            self.next += 1;
            let mut h = Header {
                version: Version::from_consensus(0x2000_0000),
                prev_blockhash: self.prev,
                merkle_root: TxMerkleNode::from_byte_array(
                    sha256d::Hash::hash(&self.next.to_le_bytes()).to_byte_array(),
                ),
                time: self.time,
                bits,
                nonce: 0,
            };
            while !self.target.is_met_by(h.block_hash()) {
                h.nonce += 1;
            }
            self.prev = h.block_hash();
            out.push(h);
        }
        out
    }
}

/// `count` generated headers at once (for tests).
pub fn generate_regtest_headers(count: u32) -> Vec<Header> {
    HeaderGenerator::default().batch(count as usize)
}

fn regtest_chain() -> HeaderChain {
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
    HeaderChain::from_anchor(
        BtcNetwork::Regtest.rules(),
        Anchor {
            header: genesis,
            height: 0,
            chainwork: genesis.work(),
            ancestors: vec![],
        },
    )
    .expect("genesis anchors")
}

/// Peak resident set size of this process, from /proc (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Runs a benchmark and prints its figures.
pub async fn run(_config: &Config, cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Headers { count, batch } => bench_headers(count, batch),
        BenchCmd::Sync { blocks, batch } => bench_sync(blocks, batch).await,
    }
}

/// Times `work` over `count` generated headers in batches, excluding the
/// generation itself.
fn timed_over_batches(
    count: u32,
    batch: usize,
    mut work: impl FnMut(&[Header]) -> Result<()>,
) -> Result<Duration> {
    let mut gen = HeaderGenerator::default();
    let mut left = count as usize;
    let mut spent = Duration::ZERO;
    while left > 0 {
        let headers = gen.batch(left.min(batch));
        left -= headers.len();
        let t = Instant::now();
        work(&headers)?;
        spent += t.elapsed();
    }
    Ok(spent)
}

fn bench_headers(count: u32, batch: usize) -> Result<()> {
    let batch = batch.max(1);
    let n = count as usize;
    println!(
        "{count} generated regtest headers, batches of {batch}, one core; generation not timed"
    );
    let mut acc = 0u8;
    let hash_time = timed_over_batches(count, batch, |hs| {
        for h in hs {
            acc ^= h.block_hash().as_byte_array()[0];
        }
        Ok(())
    })?;
    std::hint::black_box(acc);
    println!(
        "double-SHA256 only (ceiling): {:>10.0} headers/s  ({:.0} ns/header)",
        rate(n, hash_time),
        hash_time.as_nanos() as f64 / n as f64
    );

    let mut chain = regtest_chain();
    let now = u32::MAX - 7200;
    let validate_time = timed_over_batches(count, batch, |hs| {
        chain
            .connect(hs, now)
            .context("generated headers are valid")?;
        Ok(())
    })?;
    println!(
        "full-rule validation:         {:>10.0} headers/s  ({:.0} ns/header)",
        rate(n, validate_time),
        validate_time.as_nanos() as f64 / n as f64
    );

    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let mut chain = regtest_chain();
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    store.btc_init(
        BtcNetwork::Regtest,
        (0, genesis.block_hash()),
        &chain.anchor_changes(),
    )?;
    let persist_time = timed_over_batches(count, batch, |hs| {
        let c = chain
            .connect(hs, now)
            .context("generated headers are valid")?;
        store.btc_apply(&c.changes)?;
        Ok(())
    })?;
    println!(
        "validation + RocksDB:         {:>10.0} headers/s  ({:.0} ns/header)",
        rate(n, persist_time),
        persist_time.as_nanos() as f64 / n as f64
    );
    let tip = chain.tip();
    anyhow::ensure!(
        store.btc_tip()? == Some((tip.height(), tip.hash())),
        "store tip differs from the chain's"
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS of the whole run:    {rss:>10.1} MiB");
    }
    Ok(())
}

async fn bench_sync(blocks: u32, batch: u32) -> Result<()> {
    use crate::btc::sync::{SyncOptions, Syncer};
    let node = crate::devnet::Bitcoind::start_temp().await?;
    let payer = crate::devnet::Payer::from_seed([0x22; 32]);
    let t = Instant::now();
    let mut left = blocks;
    while left > 0 {
        let n = left.min(1000);
        node.node().mine(n, &payer.address).await?;
        left -= n;
    }
    println!("mined {blocks} regtest blocks in {:.2?}", t.elapsed());
    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let cp = crate::btc::checkpoint::Checkpoint::builtin(BtcNetwork::Regtest);
    let opts = SyncOptions {
        batch_size: batch,
        ..SyncOptions::default()
    };
    let rpc = node.rpc();

    // Where the time goes: the two batched RPC round trips alone.
    let t = Instant::now();
    let mut fetched = 0usize;
    let mut from = 1;
    while from <= blocks {
        let n = (blocks - from + 1).min(batch);
        let hashes = crate::btc::source::BtcSource::block_hashes(rpc, from, n).await?;
        let hs = crate::btc::source::BtcSource::headers(rpc, &hashes).await?;
        fetched += hs.len();
        from += n;
    }
    let fetch_time = t.elapsed();

    let t = Instant::now();
    let mut syncer = Syncer::open(rpc, &store, &cp, opts).await?;
    let report = syncer.sync_once(None).await?;
    let sync_time = t.elapsed();
    anyhow::ensure!(
        report.tip_height == blocks,
        "synced to {} instead of {blocks}",
        report.tip_height
    );
    println!(
        "RPC fetch only (getblockhash + getblockheader, batches of {batch}): {:>9.0} headers/s",
        rate(fetched, fetch_time)
    );
    println!(
        "full sync (fetch + validate + RocksDB):                   {:>9.0} headers/s  ({} headers in {:.2?})",
        rate(report.new_headers as usize, sync_time),
        report.new_headers,
        sync_time
    );
    let tip: BlockHash = node.node().block_hash(blocks).await?;
    anyhow::ensure!(report.tip_hash == Some(tip), "tip differs from bitcoind's");
    Ok(())
}
