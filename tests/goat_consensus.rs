//! GOAT through its own consensus: commits made by the generator
//! (secp256k1 validators, GOAT-shaped tx0) are judged alike by
//! tendermint-rs's light-client verifier (gmrelay's off-chain check) and by
//! GoatLightClient on a Metis anvil (Shanghai): what one accepts the other
//! accepts, what one refuses the other refuses.

mod common;

use alloy::primitives::{Bytes, B256, U256};
use common::anvil::TestAnvil;
use gmrelay::goat::consensus::testgen::{block, payload, set, time, tx0, Val};
use gmrelay::goat::consensus::{verify, LightBlock, Trusted, MSG_NEW_ETH_BLOCK};
use gmrelay::metis::bindings::GoatLightClient;
use gmrelay::metis::goatlc;
use tendermint_light_client_verifier::options::Options;

const CHAIN: &str = "goat-devnet";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn options() -> Options {
    Options {
        trust_threshold: Default::default(),
        trusting_period: std::time::Duration::from_secs(36 * 3600),
        clock_drift: std::time::Duration::from_secs(10),
    }
}

/// An EVM header (RLP) and its hash, as tx0's parent.
fn evm_header(number: u64, ts: u64) -> (Bytes, B256, alloy::consensus::Header) {
    let h = alloy::consensus::Header {
        number,
        timestamp: ts,
        receipts_root: B256::repeat_byte(0xee),
        gas_limit: 30_000_000,
        ..Default::default()
    };
    (alloy_rlp::encode(&h).into(), h.hash_slow(), h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_off_chain_verifier_and_the_contract_judge_commits_alike() {
    let metis = TestAnvil::start(&["--hardfork", "shanghai"]).await;
    let provider =
        gmrelay::goat::devnet::wallet_provider(&metis.url(), gmrelay::goat::devnet::RELAYER_KEY)
            .unwrap();
    let vals: Vec<Val> = (1..=3).map(|i| Val::new(i, 10)).collect();
    let t0 = now() - 60;
    // The trusted block: height 10.
    let b10 = block(
        CHAIN,
        10,
        t0,
        None,
        &vals,
        &vals,
        &[0, 1, 2],
        vec![tx0(&payload(1), MSG_NEW_ETH_BLOCK)],
    );
    let h10 = &b10.signed_header.header;
    let (secs, nanos) = (h10.time.unix_timestamp() as u64, 0u32);
    let lc = GoatLightClient::deploy(
        &provider,
        CHAIN.to_string(),
        U256::from(2345u64),
        10,
        secs,
        nanos,
        B256::from_slice(h10.hash().as_bytes()),
        B256::from_slice(h10.next_validators_hash.as_bytes()),
        goatlc::validators(&set(&vals)).unwrap(),
        U256::from(36 * 3600u64),
    )
    .await
    .expect("GoatLightClient deploys");
    let trusted = Trusted {
        chain_id: CHAIN.parse().unwrap(),
        height: 10u32.into(),
        time: h10.time,
        next_validators: set(&vals),
        next_validators_hash: h10.next_validators_hash,
    };
    let last = Some(b10.signed_header.commit.block_id);
    let (rlp, parent, evm) = evm_header(41, t0 as u64);
    let mut p = payload(42);
    p.parent_hash = parent;
    p.block_number = 42;

    // Each case: a block for height 11; both must agree.
    let others: Vec<Val> = (7..=9).map(|i| Val::new(i, 10)).collect();
    let at11 = |chain: &str, set: &[Val], signers: &[usize], extra: usize| {
        let mut txs = vec![tx0(&p, MSG_NEW_ETH_BLOCK)];
        txs.extend((1..=extra).map(|i| vec![i as u8]));
        block(chain, 11, t0 + 3, last, set, set, signers, txs)
    };
    let cases: Vec<(&str, LightBlock, bool)> = vec![
        (
            "2 of 3 equal validators (not > 2/3)",
            at11(CHAIN, &vals, &[0, 1], 0),
            false,
        ),
        (
            "another chain id",
            at11("goat-other", &vals, &[0, 1, 2], 0),
            false,
        ),
        (
            "a set that is not the trusted one",
            at11(CHAIN, &others, &[0, 1, 2], 0),
            false,
        ),
        (
            "all three sign, tx0 among 5 transactions",
            at11(CHAIN, &vals, &[0, 1, 2], 4),
            true,
        ),
    ];
    let lc_now = time(now());
    for (name, b, want) in &cases {
        let off_chain = verify(&trusted, b, &options(), lc_now);
        let args = goatlc::submit_args(b, rlp.clone());
        let on_chain = match &args {
            Ok(a) => lc
                .submit(
                    a.header.clone(),
                    a.commit.clone(),
                    a.tx0.clone(),
                    a.tx0_proof.clone(),
                    a.evm_header.clone(),
                    a.next_validators.clone(),
                )
                .call()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            off_chain.is_ok(),
            *want,
            "{name}: tendermint-rs says {off_chain:?}"
        );
        assert_eq!(
            on_chain.is_ok(),
            *want,
            "{name}: GoatLightClient says {on_chain:?}"
        );
    }
    // The accepted block, submitted for real: the EVM block is final on Metis.
    let (_, good, _) = &cases[3];
    let a = goatlc::submit_args(good, rlp.clone()).unwrap();
    let receipt = lc
        .submit(
            a.header,
            a.commit,
            a.tx0,
            a.tx0_proof,
            a.evm_header,
            a.next_validators,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    lc.verifyBlock(
        parent,
        U256::from(evm.number),
        U256::from(evm.timestamp),
        evm.receipts_root,
        Bytes::new(),
    )
    .call()
    .await
    .expect("the parent EVM block is proven final");
    assert!(
        lc.verifyBlock(
            parent,
            U256::from(evm.number + 1),
            U256::from(evm.timestamp),
            evm.receipts_root,
            Bytes::new()
        )
        .call()
        .await
        .is_err(),
        "another number must not verify"
    );
}
