//! GOAT through its own consensus, end to end: `gmrelay devnet up
//! --goat-consensus` runs real CometBFT v0.38.25 nodes (secp256k1
//! validators) driven by the devnet GOAT app, deploys GoatLightClient with
//! no committee; `gmrelay run` follows GOAT by verified commits and settles
//! a GOAT payment on Metis through GoatLightClient, a payment whose block
//! the contract has passed (proven from a newer block by parent hashes), and
//! one across a validator-set change; a misbehaviour proof made from the validators' keys freezes the
//! contract and settlement stops with a clear error. Every process is
//! stopped at the end.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::providers::ProviderBuilder;
use common::devnet::{settled_in, Devnet};
use common::proc::Proc;
use gmrelay::goat::cometnet::devnet_validator;
use gmrelay::goat::consensus::testgen::{self, Val};
use gmrelay::metis::bindings::GoatLightClient;
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gmrelay")
}

fn gm(args: &[&str]) -> String {
    let o = Command::new(bin())
        .args(args)
        .env("GMRELAY_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "gmrelay {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits until `f` is true or panics after `secs` with `what` and the relayer log.
async fn wait_for<F, Fut>(secs: u64, what: &str, log: &std::path::Path, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "{what} within {secs} s; relayer log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A GOAT invoice made and paid as the devnet's agent; its id.
fn pay_goat_invoice(dir: &str) -> String {
    let id = gm(&["devnet", "invoice", "--dir", dir, "--rail", "goat"]);
    let id = id.lines().last().unwrap().trim().to_string();
    gm(&["devnet", "pay-goat", "--dir", dir, "--invoice", &id]);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goat_payment_settles_through_cometbft_consensus_until_misbehaviour_freezes_it() {
    let devnet = Devnet::up_with(&["--goat-consensus"]);
    let dir = devnet.d().to_string();
    let d = devnet.file();
    let comet = d["goat_comet_rpc_url"].as_str().unwrap().to_string();

    // A real CometBFT v0.38.25 with three secp256k1 validators.
    let status = get(&format!("{comet}/status")).await;
    assert_eq!(status["result"]["node_info"]["version"], "0.38.25");
    assert_eq!(
        status["result"]["validator_info"]["pub_key"]["type"],
        "tendermint/PubKeySecp256k1"
    );
    let vals = get(&format!("{comet}/validators")).await;
    assert_eq!(vals["result"]["total"], "3");
    // tx0 of a block is the GOAT anvil's EVM block as MsgNewEthBlock.
    let block = get(&format!("{comet}/block?height=2")).await;
    let tx0 = block["result"]["block"]["data"]["txs"][0].as_str().unwrap();
    let tx0 = base64_decode(tx0);
    let payload = gmrelay::goat::consensus::read_tx0(&tx0).unwrap();
    assert!(payload.block_number >= 1);

    // An operator's checkpoint from two of the nodes: all three signed.
    let config_path = devnet.path().join("gmrelay.toml");
    let urls: Vec<&str> = d["goat_comet_rpc_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let single = Command::new(bin())
        .args(["goat", "consensus-checkpoint", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        !single.status.success(),
        "one node's word needs --single-node"
    );
    let o = Command::new(bin())
        .args(["goat", "consensus-checkpoint", "--config"])
        .arg(&config_path)
        .args(["--cross-check", urls[1]])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("signed by 30 of 30 voting power"), "{err}");
    let cp: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cp["comet_chain_id"], "goat-devnet");
    assert_eq!(cp["header_hash"].as_str().unwrap().len(), 64);

    // No committee anywhere: GoatLightClient, and the config says so.
    let dep: Value = serde_json::from_str(
        &std::fs::read_to_string(devnet.path().join("deployment.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dep["goat_trust"], "consensus");
    assert_eq!(dep["committee"].as_array().unwrap().len(), 0);
    let config = std::fs::read_to_string(devnet.path().join("gmrelay.toml")).unwrap();
    assert!(config.contains("[goat.consensus]") && config.contains("devnet_attesters = false"));
    let metis = devnet.metis_url();
    let provider = ProviderBuilder::new().connect_http(metis.parse().unwrap());
    let lc_addr: Address = dep["goat_header_store"].as_str().unwrap().parse().unwrap();
    let lc = GoatLightClient::new(lc_addr, provider.clone());
    let start_height = lc.trustedState().call().await.unwrap().height;

    // A payment made before the relayer knows its invoice: handed in only
    // after GoatLightClient has moved past the height that proves its block.
    let late = gm(&[
        "devnet", "invoice", "--dir", &dir, "--rail", "goat", "--hold",
    ]);
    gm(&["devnet", "pay-goat", "--dir", &dir, "--invoice", &late]);

    // The relayer.
    let log = devnet.path().join("relayer.log");
    let mut run = Command::new(bin());
    run.args([
        "run",
        "--config",
        devnet.path().join("gmrelay.toml").to_str().unwrap(),
    ])
    .env("GMRELAY_LOG_LEVEL", "info,gmrelay=debug");
    let relayer = Proc::start(run, "x402 facilitator", &log);
    let http = format!("http://{}", d["relayer_http"].as_str().unwrap());

    // 1. A GOAT payment settles through GoatLightClient.
    let first = pay_goat_invoice(&dir);
    let settlement = devnet.settlement();
    let id: B256 = first.parse().unwrap();
    wait_for(120, "the first GOAT invoice settled", &log, || async {
        !settled_in(&metis, settlement, id).await.is_empty()
    })
    .await;
    let after_first = lc.trustedState().call().await.unwrap();
    assert!(after_first.height > start_height);
    assert!(!after_first.frozen);
    // The late invoice: its block is below the contract's trusted height, so
    // it is proven from a newer proven block by parent hashes.
    let file = devnet.path().join(format!("invoices/{late}.json"));
    let r = reqwest::Client::new()
        .post(format!("{http}/invoices"))
        .body(std::fs::read(&file).unwrap())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let late_id: B256 = late.parse().unwrap();
    wait_for(120, "the late GOAT invoice settled", &log, || async {
        !settled_in(&metis, settlement, late_id).await.is_empty()
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("GoatLightClient.proveAncestors"),
        "no ancestor proof in the log"
    );
    let st = get(&format!("{http}/status")).await;
    assert_eq!(st["goat_trust"]["mode"], "consensus", "{st}");
    assert!(
        st["goat_trust"]["consensus"]["height"].as_u64().unwrap() > 0,
        "{st}"
    );

    // 2. The validator set changes (a fourth validator, power 1: the three
    // nodes keep 30/31); a later payment still settles, the relayer giving
    // GoatLightClient the change first.
    let out = gm(&[
        "devnet",
        "goat-validator",
        "--dir",
        &dir,
        "--index",
        "3",
        "--power",
        "1",
    ]);
    assert!(out.contains("committed at CometBFT height"), "{out}");
    let changed_at: u64 = out
        .split("changes at height ")
        .nth(1)
        .and_then(|s| s.trim_end_matches(')').parse().ok())
        .unwrap();
    let comet_rpc = gmrelay::goat::comet::CometRpc::new(&comet, Duration::from_secs(10)).unwrap();
    wait_for(60, "the new set in force", &log, || async {
        comet_rpc.latest_height().await.unwrap_or(0) > changed_at + 1
    })
    .await;
    assert_eq!(
        comet_rpc
            .validators(changed_at)
            .await
            .unwrap()
            .validators()
            .len(),
        4
    );
    let second: B256 = pay_goat_invoice(&dir).parse().unwrap();
    wait_for(
        120,
        "the GOAT invoice after the set change settled",
        &log,
        || async { !settled_in(&metis, settlement, second).await.is_empty() },
    )
    .await;
    let (stored, _, total) = {
        let r = lc.validatorSet().call().await.unwrap();
        (r.validators, r.powers, r.totalPower)
    };
    assert_eq!(stored.len(), 4);
    assert_eq!(total, alloy::primitives::U256::from(31));

    // 3. Misbehaviour: two different headers at one height, each signed by
    // the stored set's validators (more than 2/3 of the power). Anyone may
    // submit it; the contract freezes.
    let set: Vec<Val> = (0..3)
        .map(devnet_validator)
        .chain(std::iter::once(Val::new(4, 1)))
        .collect();
    let h = after_first.height.saturating_to::<u64>() + 10_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fork = |salt: u8| {
        let p = gmrelay::goat::consensus::EthPayload {
            block_hash: B256::repeat_byte(salt),
            ..testgen::payload(u64::from(salt))
        };
        testgen::block(
            "goat-devnet",
            h,
            now,
            Some(tendermint::block::Id {
                hash: tendermint::Hash::Sha256([9; 32]),
                part_set_header: tendermint::block::parts::Header::new(
                    1,
                    tendermint::Hash::Sha256([8; 32]),
                )
                .unwrap(),
            }),
            &set,
            &set,
            &[0, 1, 2],
            vec![testgen::tx0(
                &p,
                gmrelay::goat::consensus::MSG_NEW_ETH_BLOCK,
            )],
        )
    };
    let (a, b) = (fork(1), fork(2));
    let enc = |x: &gmrelay::goat::consensus::LightBlock| {
        (
            gmrelay::metis::goatlc::light_header(&x.signed_header.header).unwrap(),
            gmrelay::metis::goatlc::commit(x).unwrap(),
        )
    };
    let ((ha, ca), (hb, cb)) = (enc(&a), enc(&b));
    let signer: alloy::signers::local::PrivateKeySigner =
        gmrelay::goat::devnet::RELAYER_KEY.parse().unwrap();
    let wallet = ProviderBuilder::new()
        .wallet(signer)
        .connect_http(metis.parse().unwrap());
    let receipt = GoatLightClient::new(lc_addr, wallet)
        .submitMisbehaviour(ha, ca, hb, cb)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert!(lc.trustedState().call().await.unwrap().frozen);

    // 4. Settlement stops with a clear error naming the freeze.
    let third = pay_goat_invoice(&dir);
    let third_id: B256 = third.parse().unwrap();
    wait_for(
        90,
        "the relayer reporting the frozen light client",
        &log,
        || async {
            let inv = get(&format!("{http}/invoices/{third}")).await;
            inv.to_string().contains("GoatLightClient is frozen")
        },
    )
    .await;
    assert!(settled_in(&metis, settlement, third_id).await.is_empty());
    drop(relayer);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
