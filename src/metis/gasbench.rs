//! `gmrelay bench gas`: whole-transaction gas of the Metis contracts,
//! measured on throw-away devnets through the same library code the
//! commands use (a Metis anvil with chain id 1088 and Shanghai, a regtest
//! bitcoind, a GOAT anvil with chain id 2345).

use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, Result};
use bitcoin::consensus::serialize;
use bitcoin::Amount;

use super::attest::{attest_goat, devnet_attester_keys, AttestDomain, DEVNET_THRESHOLD};
use super::bindings::{RAIL_BTC, RAIL_GOAT};
use super::deploy::{self, BtcCheckpointArgs, DeployParams};
use super::settle::{btc_settlement_proof, goat_settlement_proof};
use super::sink::{AlloySink, MetisSink, NewInvoice};
use crate::btc::network::BtcNetwork;
use crate::goat::devnet::{self as goat_devnet, Anvil, RELAYER_KEY};
use crate::goat::source::GoatRpc;
use crate::store::{RocksStore, Store};

const METIS: u64 = 1088;
const GOAT: u64 = 2345;

/// One measured row.
#[derive(Debug, Clone)]
pub struct GasRow {
    /// What was measured.
    pub operation: String,
    /// Whole-transaction gas.
    pub gas: u64,
    /// Gas per header, for header batches.
    pub per_header: Option<u64>,
    /// The goal.
    pub goal: &'static str,
    /// Published figures of comparable designs.
    pub anchors: &'static str,
}

async fn deploy_to(metis: &Anvil, checkpoint: BtcCheckpointArgs) -> Result<AlloySink> {
    let params = DeployParams {
        checkpoint,
        committee: devnet_attester_keys().iter().map(|k| k.address()).collect(),
        threshold: DEVNET_THRESHOLD,
        goat_chain_id: GOAT,
        min_btc_confirmations: 6,
    };
    let d = deploy::deploy(
        &metis.url(),
        METIS,
        goat_devnet::signer(RELAYER_KEY),
        &params,
    )
    .await?;
    Ok(AlloySink::connect(
        &metis.url(),
        METIS,
        d.contracts(),
        Some(goat_devnet::signer(RELAYER_KEY)),
        Duration::from_secs(60),
    )
    .await?)
}

fn regtest_genesis_args() -> BtcCheckpointArgs {
    let g = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
    BtcCheckpointArgs {
        header: Bytes::from(serialize(&g)),
        height: 0,
        chainwork: U256::from_be_bytes(g.work().to_be_bytes()),
        mode: super::bindings::NETWORK_REGTEST,
        pow_limit: U256::from_be_bytes(BtcNetwork::Regtest.rules().pow_limit_be),
        network: BtcNetwork::Regtest,
        hash: g.block_hash().to_string(),
    }
}

fn concat(headers: &[bitcoin::block::Header]) -> Bytes {
    let mut out = Vec::with_capacity(headers.len() * 80);
    for h in headers {
        out.extend_from_slice(&serialize(h));
    }
    Bytes::from(out)
}

/// Header batches of 1, 10 and 100 on BtcLightClient.
async fn headers(metis: &Anvil) -> Result<Vec<GasRow>> {
    let sink = deploy_to(metis, regtest_genesis_args()).await?;
    let mut gen = crate::bench::HeaderGenerator::default();
    let mut rows = Vec::new();
    for n in [1usize, 10, 100] {
        let o = sink.btc_submit_headers(concat(&gen.batch(n))).await?;
        rows.push(GasRow {
            operation: format!("BtcLightClient.submitHeaders, batch of {n}"),
            gas: o.gas_used,
            per_header: Some(o.gas_used / n as u64),
            goal: if n == 100 { "≤ 10,000/header" } else { "" },
            anchors: "btcrelay ≈200k, Interlay 75–105k, summa 47–50k per header",
        });
    }
    Ok(rows)
}

/// A real regtest block with `payments` payments; the last one settled with
/// the block and its 5 successors relayed as one batch.
async fn btc_settlement(metis: &Anvil, payments: u32) -> Result<GasRow> {
    let node = crate::devnet::Bitcoind::start_temp().await?;
    let rpc = node.node();
    let payer = crate::devnet::Payer::from_seed([0x31; 32]);
    let payee = crate::devnet::payee_script([0x32; 32]);
    rpc.mine(100 + payments, &payer.address).await?;
    let mut last = None;
    for i in 0..payments {
        let salt = B256::from(alloy::primitives::keccak256(i.to_be_bytes()));
        let id = super::invoice_id(relayer_address(), salt);
        let tx = payer.pay(
            rpc.coinbase_utxo(&payer, i + 1).await?,
            &payee,
            Amount::from_sat(50_000),
            &id.0,
            Amount::from_sat(1_000 + u64::from(i)),
        )?;
        last = Some((rpc.send(&tx).await?, id, salt));
    }
    let (txid, id, salt) = last.ok_or_else(|| anyhow!("no payment"))?;
    let hashes = rpc.mine(6, &payer.address).await?;
    let block = crate::btc::source::BtcSource::block(node.rpc(), &hashes[0]).await?;
    let height = 101 + payments;
    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let mut syncer = crate::btc::sync::Syncer::open(
        node.rpc(),
        &store,
        &crate::btc::checkpoint::Checkpoint::builtin(BtcNetwork::Regtest),
        crate::btc::sync::SyncOptions::default(),
    )
    .await?;
    syncer.sync_once(None).await?;
    let sink = deploy_to(metis, deploy::checkpoint_args(&store)?).await?;
    // Everything below the block in batches of 100, then the block and its 5 successors.
    let mut from = 1;
    while from < height {
        let to = (from + 99).min(height - 1);
        let hs: Vec<_> = store
            .btc_best_range(from, to)?
            .iter()
            .map(|v| *v.header())
            .collect();
        sink.btc_submit_headers(concat(&hs)).await?;
        from = to + 1;
    }
    let hs: Vec<_> = store
        .btc_best_range(height, height + 5)?
        .iter()
        .map(|v| *v.header())
        .collect();
    sink.btc_submit_headers(concat(&hs)).await?;
    let proof = crate::btc::proof::build_proof(BtcNetwork::Regtest, &block, height, txid, 6)?;
    let now = sink.now().await?;
    sink.create_invoice(&NewInvoice {
        salt,
        rail: RAIL_BTC,
        payee: Bytes::from(payee.to_bytes()),
        asset: Address::ZERO,
        amount: U256::from(50_000),
        expiry: now + 3600,
        service_id: B256::ZERO,
    })
    .await?;
    let chain = super::settle::btc_header_chain(&store, &sink, proof.block_hash, height).await?;
    let n_headers = chain.len() / 80;
    let o = sink
        .settle_btc(id, btc_settlement_proof(&proof, chain, 0))
        .await?;
    Ok(GasRow {
        operation: format!(
            "PaymentSettlement.settleBtc, {}-tx block, block + {} headers (6 confirmations)",
            block.txdata.len(),
            n_headers - 1
        ),
        gas: o.gas_used,
        per_header: None,
        goal: "≤ 90,000",
        anchors: "Interlay verifyTx alone 63k",
    })
}

/// A GOAT EIP-3009 payment: the header attested 3-of-5, then settled.
async fn goat(metis: &Anvil) -> Result<Vec<GasRow>> {
    let goat = Anvil::start(GOAT, &[]).await?;
    let url = goat.url();
    let token = goat_devnet::deploy_token(&url, "USD Coin", "USDC", "2").await?;
    let to = goat_devnet::signer(RELAYER_KEY).address();
    goat_devnet::mint(
        &url,
        token,
        goat_devnet::payer_address(),
        U256::from(10_000_000u64),
    )
    .await?;
    let salt = B256::repeat_byte(0x42);
    let id = super::invoice_id(relayer_address(), salt);
    let paid = goat_devnet::pay(
        &url,
        token,
        goat_devnet::PAYER_KEY,
        to,
        U256::from(1_000_000u64),
        id,
        true,
    )
    .await?;
    goat_devnet::mine(&url, 3).await?;
    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let source = GoatRpc::connect(&url, Duration::from_secs(30)).await?;
    let mut syncer = crate::goat::sync::GoatSyncer::open(
        &source,
        &store,
        crate::goat::checkpoint::GoatCheckpoint::DevnetGenesis,
        GOAT,
        crate::goat::chain::Finality::Depth(2),
        crate::goat::sync::GoatSyncOptions::default(),
    )
    .await?;
    syncer.sync_once().await?;
    let policy = crate::goat::payment::PaymentPolicy {
        tokens: vec![token],
        payees: vec![],
        allow_plain_transfers: false,
    };
    let proof =
        crate::goat::proof::prove_payment(&source, &store, GOAT, paid.tx_hash, &policy).await?;
    let sink = deploy_to(metis, regtest_genesis_args()).await?;
    let keys = devnet_attester_keys();
    let domain = AttestDomain {
        metis_chain_id: METIS,
        store: sink.contracts().goat_header_store,
    };
    let r = attest_goat(
        &store,
        &sink,
        domain,
        proof.block_number,
        &keys[..3],
        &[],
        true,
    )
    .await?;
    let attested = r.submitted.ok_or_else(|| anyhow!("not submitted"))?;
    let now = sink.now().await?;
    sink.create_invoice(&NewInvoice {
        salt,
        rail: RAIL_GOAT,
        payee: Bytes::copy_from_slice(to.as_slice()),
        asset: token,
        amount: U256::from(1_000_000u64),
        expiry: now + 3600,
        service_id: B256::ZERO,
    })
    .await?;
    let o = sink.settle_goat(id, goat_settlement_proof(&proof)?).await?;
    Ok(vec![
        GasRow {
            operation: format!(
                "GoatHeaderStore.submitHeader, 3-of-5 ({}-byte header)",
                proof.header_rlp.len()
            ),
            gas: attested.gas_used,
            per_header: None,
            goal: "≤ 70,000 (floor ≈ 70.4k with this API, see contracts/README.md)",
            anchors: "",
        },
        GasRow {
            operation: format!(
                "PaymentSettlement.settleGoat, receipt proof of {} trie node(s)",
                proof.proof_nodes.len()
            ),
            gas: o.gas_used,
            per_header: None,
            goal: "≤ 130,000",
            anchors: "77–114k",
        },
    ])
}

/// Measures every row (starting and stopping the devnets it needs).
pub async fn measure(btc_payments: u32) -> Result<Vec<GasRow>> {
    let metis = Anvil::start(METIS, &["--hardfork", "shanghai"]).await?;
    let mut rows = headers(&metis).await?;
    rows.push(btc_settlement(&metis, btc_payments).await?);
    rows.extend(goat(&metis).await?);
    Ok(rows)
}

/// The markdown table.
pub fn table(rows: &[GasRow]) -> String {
    let mut out = String::from(
        "| operation | gas (whole transaction) | per header | goal | anchors |\n| --- | ---: | ---: | --- | --- |\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.operation,
            r.gas,
            r.per_header.map(|g| g.to_string()).unwrap_or_default(),
            r.goal,
            r.anchors
        ));
    }
    out
}

/// The account the benchmark's sink signs with (and so creates invoices as).
fn relayer_address() -> Address {
    goat_devnet::signer(goat_devnet::RELAYER_KEY).address()
}
