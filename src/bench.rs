//! `gmrelay bench …`: the benchmarks whose results BENCHMARKS.md records.
//!
//! * `bench headers`: generates a valid chain of N regtest-rule headers
//!   (mined in memory), then measures the raw double-SHA256 rate (the
//!   ceiling), full-rule validation alone, and validation plus persistence
//!   to RocksDB, with peak RSS.
//! * `bench sync`: starts a real regtest bitcoind, mines N blocks, and
//!   syncs them through the RPC source into a fresh store.
//! * `bench goat-proof`: EIP-2718 encoding, receipts-trie root and proof
//!   for a synthetic block of mixed-type receipts.
//! * `bench goat-sync`: starts anvil, mines N blocks (`anvil_mine`) and
//!   syncs their headers with batched JSON-RPC requests into a fresh store.

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
    /// GOAT receipt encoding + receipts-trie root + proof for a synthetic block.
    GoatProof {
        /// Receipts in the block (mixed types: legacy, 0x01, 0x02, 0x03, 0x04, 0x60).
        #[arg(long, default_value_t = 1000)]
        receipts: usize,
        /// Iterations.
        #[arg(long, default_value_t = 200)]
        iterations: u32,
    },
    /// CometBFT commits verified off-chain (tendermint-rs, secp256k1) from a
    /// trusted state, with data_hash and tx0, on generated blocks.
    GoatConsensus {
        /// Blocks verified, one after another.
        #[arg(long, default_value_t = 2_000)]
        blocks: u32,
        /// Validators (equal power, all signing).
        #[arg(long, default_value_t = 3)]
        validators: u8,
    },
    /// GOAT header sync from a real anvil (started by the benchmark).
    GoatSync {
        /// Blocks to mine and sync.
        #[arg(long, default_value_t = 10_000)]
        blocks: u64,
        /// Headers per batched JSON-RPC request.
        #[arg(long, default_value_t = 500)]
        batch: u64,
    },
    /// Whole-transaction gas of the Metis contracts (starts a Metis anvil, a
    /// regtest bitcoind and a GOAT anvil); prints a markdown table.
    Gas {
        /// Payments in the proven Bitcoin block (one transaction each, plus the coinbase).
        #[arg(long, default_value_t = 100)]
        btc_payments: u32,
    },
    /// The x402 facilitator's `/verify` on loopback: a devnet, `gmrelay run`,
    /// N distinct signed GOAT payloads posted C at a time; rate and latency.
    X402Verify {
        /// Requests (each a different authorization).
        #[arg(long, default_value_t = 20_000)]
        requests: u32,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// The daemon under a burst: a devnet, `gmrelay run`, N signed invoices
    /// handed in and paid at once, until every one is settled; the relayer's
    /// Metis transactions and gas read from the chain.
    Daemon {
        /// Invoices (at most 200; 90 on the Bitcoin rail alone).
        #[arg(long, default_value_t = 100)]
        invoices: u32,
        /// One rail only (default: half per rail).
        #[arg(long)]
        rail: Option<crate::rail::Rail>,
        /// GOAT through its CometBFT consensus (devnet up --goat-consensus):
        /// GOAT blocks made final on Metis by GoatLightClient, no committee.
        #[arg(long)]
        goat_consensus: bool,
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
            trusted_hash: genesis.block_hash(),
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
        BenchCmd::GoatProof {
            receipts,
            iterations,
        } => bench_goat_proof(receipts, iterations),
        BenchCmd::GoatSync { blocks, batch } => bench_goat_sync(blocks, batch).await,
        BenchCmd::GoatConsensus { blocks, validators } => bench_goat_consensus(blocks, validators),
        BenchCmd::Daemon {
            invoices,
            rail,
            goat_consensus,
        } => crate::devtools::bench_burst(invoices, rail, goat_consensus).await,
        BenchCmd::X402Verify {
            requests,
            concurrency,
        } => crate::devtools::bench_x402_verify(requests, concurrency).await,
        BenchCmd::Gas { btc_payments } => {
            let rows = crate::metis::gasbench::measure(btc_payments).await?;
            print!("{}", crate::metis::gasbench::table(&rows));
            Ok(())
        }
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

/// A synthetic receipt of `tx_type` with a few token-transfer logs (like a busy block).
pub fn synthetic_goat_receipt(tx_type: u8, i: u64) -> crate::goat::receipts::GoatReceipt {
    use crate::goat::receipts::{GoatReceipt, ReceiptLog, ReceiptOutcome};
    use alloy::primitives::{Address, Bloom, Bytes, B256};
    let logs = (0..(i % 4))
        .map(|l| ReceiptLog {
            address: Address::with_last_byte((l + 1) as u8),
            topics: vec![
                crate::goat::payment::TRANSFER_TOPIC,
                B256::with_last_byte(i as u8),
                B256::with_last_byte(l as u8),
            ],
            data: Bytes::from(vec![(i % 256) as u8; 32]),
        })
        .collect();
    GoatReceipt {
        tx_type,
        outcome: ReceiptOutcome::Status(!i.is_multiple_of(13)),
        cumulative_gas_used: 21_000 * (i + 1),
        logs_bloom: Bloom::repeat_byte((i % 256) as u8),
        logs,
    }
}

fn bench_goat_proof(n: usize, iterations: u32) -> Result<()> {
    use crate::goat::receipts::{receipts_root_and_proof, verify_receipt_proof, GoatReceipt};
    let types = [0u8, 1, 2, 2, 2, 3, 4, 0x60];
    let receipts: Vec<GoatReceipt> = (0..n)
        .map(|i| synthetic_goat_receipt(types[i % types.len()], i as u64))
        .collect();
    let target = (n / 2) as u64;
    let iterations = iterations.max(1);
    let mut encode_total = Duration::ZERO;
    let mut total = Duration::ZERO;
    let mut root = Default::default();
    let mut proof = Vec::new();
    let mut encoded = Vec::new();
    for _ in 0..iterations {
        let t = Instant::now();
        encoded = receipts
            .iter()
            .map(GoatReceipt::encode_2718)
            .collect::<Vec<_>>();
        encode_total += t.elapsed();
        (root, proof) = receipts_root_and_proof(&encoded, Some(target));
        total += t.elapsed();
        std::hint::black_box(&root);
    }
    verify_receipt_proof(root, target, &encoded[target as usize], &proof)
        .context("the benchmark's proof verifies")?;
    let t = Instant::now();
    for _ in 0..iterations {
        verify_receipt_proof(root, target, &encoded[target as usize], &proof)?;
    }
    let verify = t.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(iterations);
    println!(
        "block of {n} receipts (legacy, 0x01, 0x02, 0x03, 0x04, 0x60), {iterations} iterations:"
    );
    println!(
        "  EIP-2718 encoding:              {:>8.3} ms",
        ms(encode_total)
    );
    println!(
        "  encoding + trie root + proof:   {:>8.3} ms  (goal <= 3 ms)",
        ms(total)
    );
    println!(
        "  proof verification:             {:>8.4} ms  ({} nodes)",
        ms(verify),
        proof.len()
    );
    Ok(())
}

async fn bench_goat_sync(blocks: u64, batch: u64) -> Result<()> {
    use crate::goat::chain::Finality;
    use crate::goat::checkpoint::GoatCheckpoint;
    use crate::goat::source::{GoatRpc, GoatSource};
    use crate::goat::sync::{GoatSyncOptions, GoatSyncer};
    let anvil = crate::goat::devnet::Anvil::start(2345, &[]).await?;
    let t = Instant::now();
    crate::goat::devnet::mine(&anvil.url(), blocks).await?;
    println!("mined {blocks} anvil blocks in {:.2?}", t.elapsed());
    let source = GoatRpc::connect(&anvil.url(), Duration::from_secs(60)).await?;

    // Where the time goes: the batched eth_getBlockByNumber round trips
    // (strict parsing and hashing included) alone.
    let t = Instant::now();
    let mut from = 1;
    let mut fetched = 0usize;
    while from <= blocks {
        let n = (blocks - from + 1).min(batch);
        fetched += source.headers(from, n).await?.len();
        from += n;
    }
    let fetch_time = t.elapsed();

    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let opts = GoatSyncOptions {
        batch_size: batch,
        ..GoatSyncOptions::default()
    };
    let t = Instant::now();
    let mut syncer = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        2345,
        Finality::Depth(64),
        opts,
    )
    .await?;
    let report = syncer.sync_once().await?;
    let sync_time = t.elapsed();
    anyhow::ensure!(
        report.tip.0 == blocks,
        "synced to {} instead of {blocks}",
        report.tip.0
    );
    println!(
        "RPC fetch only (batched eth_getBlockByNumber of {batch}, strict parse + keccak): {:>9.0} headers/s",
        rate(fetched, fetch_time)
    );
    println!(
        "full sync (fetch + chain checks + RocksDB):                                  {:>9.0} headers/s  ({} headers in {:.2?})",
        rate(report.new_headers as usize, sync_time),
        report.new_headers,
        sync_time
    );
    Ok(())
}

/// `gmrelay bench goat-consensus`: `blocks` CometBFT blocks made by the
/// generator (`validators` secp256k1 validators, all signing, tx0 plus four
/// transactions), generation not timed, then verified in a chain from a
/// trusted state as the relayer does: commit, sets, data_hash, tx0.
fn bench_goat_consensus(blocks: u32, validators: u8) -> Result<()> {
    use crate::goat::consensus::testgen::{block, payload, set, time, tx0, Val};
    use crate::goat::consensus::{verify, Trusted, MSG_NEW_ETH_BLOCK};
    if blocks == 0 || validators == 0 {
        anyhow::bail!("--blocks and --validators must be at least 1");
    }
    let vals: Vec<Val> = (1..=validators).map(|i| Val::new(i, 10)).collect();
    let signers: Vec<usize> = (0..vals.len()).collect();
    let start = 1_700_000_000i64;
    eprintln!("generating {blocks} blocks signed by {validators} validators");
    let made: Vec<_> = (0..blocks)
        .map(|i| {
            let h = u64::from(i) + 2;
            let mut txs = vec![tx0(&payload(h), MSG_NEW_ETH_BLOCK)];
            txs.extend((1..=4u8).map(|k| vec![k; 200]));
            block(
                "goat-bench",
                h,
                start + h as i64,
                None,
                &vals,
                &vals,
                &signers,
                txs,
            )
        })
        .collect();
    let s = set(&vals);
    let mut trusted = Trusted {
        chain_id: "goat-bench".parse().expect("a chain id"),
        height: 1u32.into(),
        time: time(start),
        next_validators_hash: s.hash(),
        next_validators: s,
    };
    let options = tendermint_light_client_verifier::options::Options {
        trust_threshold: Default::default(),
        trusting_period: std::time::Duration::from_secs(36 * 3600),
        clock_drift: std::time::Duration::from_secs(10),
    };
    let now = time(start + i64::from(blocks) + 10);
    let t = std::time::Instant::now();
    for b in &made {
        trusted = verify(&trusted, b, &options, now)?.trusted;
    }
    let wall = t.elapsed();
    println!("| validators | blocks | commits verified/s | µs per block | signatures/s |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {validators} | {blocks} | {:.0} | {:.0} | {:.0} |",
        f64::from(blocks) / wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / f64::from(blocks),
        f64::from(blocks) * f64::from(validators) / wall.as_secs_f64()
    );
    Ok(())
}
