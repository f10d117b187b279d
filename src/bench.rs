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

/// Generates `count` headers on top of regtest genesis that pass every rule:
/// timestamps one second apart, regtest bits, nonces searched in memory.
pub fn generate_regtest_headers(count: u32) -> Vec<Header> {
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
    let bits = CompactTarget::from_consensus(0x207fffff);
    let target = bitcoin::pow::Target::from_compact(bits);
    let mut prev = genesis.block_hash();
    let mut time = genesis.time;
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        time += 1;
        let mut h = Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::from_byte_array(
                sha256d::Hash::hash(&i.to_le_bytes()).to_byte_array(),
            ),
            time,
            bits,
            nonce: 0,
        };
        while !target.is_met_by(h.block_hash()) {
            h.nonce += 1;
        }
        prev = h.block_hash();
        out.push(h);
    }
    out
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

fn bench_headers(count: u32, batch: usize) -> Result<()> {
    let batch = batch.max(1);
    let t = Instant::now();
    let headers = generate_regtest_headers(count);
    println!("generated {count} headers in {:.2?}", t.elapsed());

    // Ceiling: double-SHA256 of every header, nothing else.
    let t = Instant::now();
    let mut acc = 0u8;
    for h in &headers {
        acc ^= h.block_hash().as_byte_array()[0];
    }
    let hash_time = t.elapsed();
    std::hint::black_box(acc);
    println!(
        "double-SHA256 only:        {:>12.0} headers/s  ({:.0} ns/header)",
        rate(headers.len(), hash_time),
        hash_time.as_nanos() as f64 / headers.len() as f64
    );

    // Full-rule validation, in memory, one core.
    let mut chain = regtest_chain();
    let now = u32::MAX - 7200;
    let t = Instant::now();
    for b in headers.chunks(batch) {
        chain
            .connect(b, now)
            .context("generated headers are valid")?;
    }
    let validate_time = t.elapsed();
    println!(
        "full-rule validation:      {:>12.0} headers/s  ({:.0} ns/header)",
        rate(headers.len(), validate_time),
        validate_time.as_nanos() as f64 / headers.len() as f64
    );

    // Validation + persistence to a fresh RocksDB store.
    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let mut chain = regtest_chain();
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    store.btc_init(
        BtcNetwork::Regtest,
        (0, genesis.block_hash()),
        &chain.anchor_changes(),
    )?;
    let t = Instant::now();
    for b in headers.chunks(batch) {
        let c = chain
            .connect(b, now)
            .context("generated headers are valid")?;
        store.btc_apply(&c.changes)?;
    }
    let persist_time = t.elapsed();
    println!(
        "validation + RocksDB:      {:>12.0} headers/s  ({:.0} ns/header)",
        rate(headers.len(), persist_time),
        persist_time.as_nanos() as f64 / headers.len() as f64
    );
    let tip = chain.tip();
    assert_eq!(store.btc_tip()?, Some((tip.height(), tip.hash())));
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS:                  {rss:>12.1} MiB (includes the {count} generated headers held for the run: {:.1} MiB)", headers.len() as f64 * 80.0 / 1048576.0);
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
