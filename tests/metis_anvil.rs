//! The Metis contracts driven from Rust: a real anvil (`--chain-id 1088
//! --hardfork shanghai`), a real regtest bitcoind and a GOAT anvil (`--chain-id
//! 2345`) where proofs are needed, on free loopback ports, killed on drop.
//!
//! Every refusal asserts the contract's NAMED custom error, decoded from the
//! revert data by `gmrelay::metis::bindings::decode_revert`.
//!
//! Run with `cargo test --release --test metis_anvil`.

mod common;

use alloy::primitives::{Bytes, B256, U256};
use bitcoin::block::{Header, Version};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{Amount, TxMerkleNode, TxOut};
use common::metis::*;
use gmrelay::btc::proof::build_proof;
use gmrelay::btc::BtcNetwork;
use gmrelay::metis::attest::{
    attest_goat, attestation_digest, block_fields, devnet_attester_keys, pack_quorum, sign_digest,
    AttestError,
};
use gmrelay::metis::bindings::{BtcLightClient, NETWORK_MAINNET};
use gmrelay::metis::deploy::BtcCheckpointArgs;
use gmrelay::metis::relay::{internal, plan};
use gmrelay::metis::settle::{settle, SettleError, SettleOptions};
use gmrelay::metis::sink::{InvoiceState, MetisSink};
use gmrelay::proof::ProofFile;
use gmrelay::store::Store;
use serde_json::Value;

const OPTS: SettleOptions = SettleOptions {
    network: BtcNetwork::Regtest,
    skip_checks: false,
    attesters: &[],
    goat_header_store: alloy::primitives::Address::ZERO,
};
const SKIP: SettleOptions = SettleOptions {
    network: BtcNetwork::Regtest,
    skip_checks: true,
    attesters: &[],
    goat_header_store: alloy::primitives::Address::ZERO,
};

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn header(bytes: &[u8]) -> Header {
    bitcoin::consensus::deserialize(bytes).unwrap()
}

fn concat(headers: &[Header]) -> Bytes {
    let mut out = Vec::new();
    for h in headers {
        out.extend_from_slice(&bitcoin::consensus::serialize(h));
    }
    Bytes::from(out)
}

/// `n` headers on top of `prev` with `bits`, one second apart; `salt` makes forks differ.
fn mine_on(prev: &Header, n: usize, bits: u32, salt: u8) -> Vec<Header> {
    let target = Target::from_compact(CompactTarget::from_consensus(bits));
    let mut out = Vec::with_capacity(n);
    let mut p = *prev;
    for i in 0..n {
        let mut h = Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: p.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array(
                sha256d::Hash::hash(&[salt, i as u8, (i >> 8) as u8]).to_byte_array(),
            ),
            time: p.time + 1,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        };
        while !target.is_met_by(h.block_hash()) {
            h.nonce += 1;
        }
        out.push(h);
        p = h;
    }
    out
}

fn regtest_genesis() -> Header {
    bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header
}

fn mainnet_fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/btc/mainnet.json")).unwrap()
}

/// Mainnet mode from the fixture's checkpoint at 858816 (a period boundary).
fn mainnet_checkpoint() -> (BtcCheckpointArgs, Header) {
    let f = mainnet_fixture();
    let cp = header(&hx(f["checkpoint"]["header"].as_str().unwrap()));
    let next = header(&hx(f["checkpoint"]["next"].as_str().unwrap()));
    let args = BtcCheckpointArgs {
        header: Bytes::from(bitcoin::consensus::serialize(&cp)),
        height: 858_816,
        chainwork: U256::from(1u128 << 95),
        mode: NETWORK_MAINNET,
        // Ten-minute spacing below the checkpoint (the fixture has no ancestors).
        times: std::array::from_fn(|i| cp.time - 600 * (10 - i as u32)),
        pow_limit: U256::from_be_bytes(BtcNetwork::Mainnet.rules().pow_limit_be),
        network: BtcNetwork::Mainnet,
        hash: cp.block_hash().to_string(),
    };
    (args, next)
}

// ----------------------------------------------------------------------------
// BtcLightClient: header rules
// ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainnet_headers_bad_proof_of_work_and_wrong_bits_off_a_retarget_are_refused() {
    let metis = metis_anvil().await;
    let (args, next) = mainnet_checkpoint();
    let (_, sink) = deploy(&metis, args, 6).await;
    // Proof of work: the real header with another nonce misses its target.
    let mut forged = next;
    forged.nonce = forged.nonce.wrapping_add(1);
    let r = expect_revert(
        sink.btc_submit_headers(concat(&[forged])).await,
        "InsufficientWork",
    );
    assert_eq!(r.args[0].1, "858817");
    // Off a retarget, bits must equal the parent's.
    let mut wrong = next;
    wrong.bits = CompactTarget::from_consensus(next.bits.to_consensus() - 1);
    let r = expect_revert(sink.btc_submit_headers(concat(&[wrong])).await, "BadBits");
    assert_eq!(r.args[0].1, "858817");
    assert_eq!(r.args[1].1, next.bits.to_consensus().to_string(), "{r}");
    // The real header is accepted.
    sink.btc_submit_headers(concat(&[next])).await.unwrap();
    assert_eq!(
        sink.btc_best().await.unwrap(),
        (858_817, internal(&next.block_hash()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retarget_matches_the_mainnet_vectors() {
    let metis = metis_anvil().await;
    let (args, _) = mainnet_checkpoint();
    let (d, sink) = deploy(&metis, args, 6).await;
    let c = BtcLightClient::new(d.btc_light_client, sink.provider().clone());
    let f = mainnet_fixture();
    let triples = f["retargets"].as_array().unwrap();
    assert_eq!(triples.len(), 9);
    for t in triples {
        let first = header(&hx(t["first"].as_str().unwrap()));
        let last = header(&hx(t["last"].as_str().unwrap()));
        let next = header(&hx(t["next"].as_str().unwrap()));
        let got = c
            .computeRetarget(last.bits.to_consensus(), first.time, last.time)
            .call()
            .await
            .unwrap();
        assert_eq!(
            got,
            next.bits.to_consensus(),
            "retarget after {}",
            t["first_height"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bits_at_a_retarget_boundary_are_refused() {
    // Mainnet mode (retargeting) with a low pow limit, from a synthetic
    // checkpoint at height 0: mine a whole 2016-block period in Rust, fast
    // (one second apart), so the retarget at 2016 must quadruple the difficulty.
    let metis = metis_anvil().await;
    let mut args = regtest_genesis_args();
    args.mode = NETWORK_MAINNET;
    // PaymentSettlement refuses a light client in mainnet mode with a lax
    // proof-of-work limit (review finding): test the light client alone.
    let params = gmrelay::metis::deploy::DeployParams {
        checkpoint: args.clone(),
        committee: devnet_attester_keys().iter().map(|k| k.address()).collect(),
        threshold: 3,
        goat_chain_id: GOAT,
        min_btc_confirmations: 6,
        goat_light_client: None,
    };
    let refused = gmrelay::metis::deploy::deploy(
        &metis.url(),
        METIS,
        gmrelay::goat::devnet::signer(gmrelay::goat::devnet::RELAYER_KEY),
        &params,
    )
    .await;
    let r = expect_revert(refused, "LightClientNetwork");
    assert_eq!(r.args[0].1, "0");
    let wallet =
        gmrelay::goat::devnet::wallet_provider(&metis.url(), gmrelay::goat::devnet::RELAYER_KEY)
            .unwrap();
    let client = BtcLightClient::deploy(
        wallet,
        args.header.clone(),
        U256::from(args.height),
        args.chainwork,
        args.mode,
        args.pow_limit,
        args.times,
    )
    .await
    .unwrap();
    let only = gmrelay::metis::sink::Contracts {
        btc_light_client: *client.address(),
        goat_header_store: *client.address(),
        payment_settlement: *client.address(),
    };
    let sink = gmrelay::metis::sink::AlloySink::connect(
        &metis.url(),
        METIS,
        only,
        Some(gmrelay::goat::devnet::signer(
            gmrelay::goat::devnet::RELAYER_KEY,
        )),
        std::time::Duration::from_secs(30),
    )
    .await
    .unwrap();
    let genesis = regtest_genesis();
    let period = mine_on(&genesis, 2015, 0x207fffff, 1);
    for chunk in period.chunks(500) {
        sink.btc_submit_headers(concat(chunk)).await.unwrap();
    }
    let last = *period.last().unwrap();
    assert_eq!(sink.btc_best().await.unwrap().0, 2015);
    // Keeping the parent's bits at the boundary is refused.
    let same = mine_on(&last, 1, 0x207fffff, 2);
    let r = expect_revert(sink.btc_submit_headers(concat(&same)).await, "BadBits");
    assert_eq!(r.args[0].1, "2016");
    let c = BtcLightClient::new(*client.address(), sink.provider().clone());
    let expected = c
        .computeRetarget(0x207fffff, genesis.time, last.time)
        .call()
        .await
        .unwrap();
    assert_ne!(expected, 0x207fffff);
    assert_eq!(r.args[1].1, expected.to_string());
    // Independently: Bitcoin Core's CalculateNextWorkRequired with its
    // arith_uint256 arithmetic (the multiplication wraps at 256 bits, which a
    // target this close to 2^255 does), actual timespan clamped to a quarter.
    let old = U256::from_be_bytes(
        Target::from_compact(CompactTarget::from_consensus(0x207fffff)).to_be_bytes(),
    );
    let timespan = U256::from(14 * 24 * 3600u64);
    let new = old.wrapping_mul(timespan / U256::from(4)) / timespan;
    let limit = U256::from_be_bytes(BtcNetwork::Regtest.rules().pow_limit_be);
    let core = Target::from_be_bytes(new.min(limit).to_be_bytes())
        .to_compact_lossy()
        .to_consensus();
    assert_eq!(expected, core);
    // The right bits pass; the next header must keep them (off the boundary).
    let good = mine_on(&last, 1, expected, 3);
    sink.btc_submit_headers(concat(&good)).await.unwrap();
    let off = mine_on(&good[0], 1, 0x207fffff, 4);
    let r = expect_revert(sink.btc_submit_headers(concat(&off)).await, "BadBits");
    assert_eq!(r.args[0].1, "2017");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_link_is_refused_and_a_lighter_fork_does_not_move_the_tip() {
    let metis = metis_anvil().await;
    let (_, sink) = deploy(&metis, regtest_genesis_args(), 6).await;
    let a = mine_on(&regtest_genesis(), 6, 0x207fffff, 1);
    let r = expect_revert(
        sink.btc_submit_headers(concat(&[a[0], a[2]])).await,
        "BrokenLink",
    );
    assert_eq!(r.args[0].1, "2");
    sink.btc_submit_headers(concat(&a[..2])).await.unwrap();
    sink.btc_submit_headers(concat(&a[2..])).await.unwrap();
    let tip = (6, internal(&a[5].block_hash()));
    assert_eq!(sink.btc_best().await.unwrap(), tip);
    // A lighter fork from height 2 (the stored batch tip): stored, tip unchanged.
    let fork = mine_on(&a[1], 3, 0x207fffff, 9);
    sink.btc_submit_headers(concat(&fork)).await.unwrap();
    assert!(sink
        .btc_is_stored(internal(&fork[2].block_hash()))
        .await
        .unwrap());
    assert_eq!(sink.btc_best().await.unwrap(), tip);
    // Resubmitting the same batch is refused by name.
    expect_revert(
        sink.btc_submit_headers(concat(&fork)).await,
        "HeaderAlreadyStored",
    );
    // A heavier fork moves it (a reorg).
    let more = mine_on(&fork[2], 2, 0x207fffff, 9);
    sink.btc_submit_headers(concat(&more)).await.unwrap();
    assert_eq!(
        sink.btc_best().await.unwrap(),
        (7, internal(&more[1].block_hash()))
    );
    assert_eq!(sink.btc_stored_best_at(6).await.unwrap(), B256::ZERO);
}

// ----------------------------------------------------------------------------
// BTC settlement
// ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btc_payment_settles_end_to_end_exactly_once_signed_or_on_chain() {
    let f = BtcFixture::new(6).await;
    let file = ProofFile::bitcoin(f.proof.clone());
    // Signed terms: nothing on-chain before the payment settles.
    let inv = f.signed(f.salt, &f.payee, 50_000);
    assert_eq!(inv.id(), f.id);
    assert_eq!(
        f.sink.invoice_state(f.id).await.unwrap(),
        InvoiceState::Unknown
    );
    // Terms signed by someone else are refused locally.
    let mut forged = inv.clone();
    forged.terms.amount = U256::from(1);
    let err = settle(&f.store, &f.sink, &file, &forged, OPTS)
        .await
        .unwrap_err();
    assert!(matches!(err, SettleError::Invoice(_)), "{err}");
    let report = settle(&f.store, &f.sink, &file, &inv, OPTS).await.unwrap();
    assert_eq!(report.source_index, 0);
    assert_eq!(report.headers, 6);
    assert!(report.outcome.gas_used > 0);
    assert_eq!(
        f.sink.invoice_state(f.id).await.unwrap(),
        InvoiceState::Settled
    );
    // Second settlement: refused locally, and by the contract.
    let err = settle(&f.store, &f.sink, &file, &inv, OPTS)
        .await
        .unwrap_err();
    assert!(matches!(err, SettleError::AlreadySettled(_)), "{err}");
    match settle(&f.store, &f.sink, &file, &inv, SKIP).await {
        Err(SettleError::Metis(e)) => {
            assert_eq!(e.revert().unwrap().name, "AlreadySettled", "{e}")
        }
        other => panic!("{other:?}"),
    }
    // The on-chain form: created by the merchant, settled with its stored terms.
    let on_chain = f.invoice(f.salt2, &f.payee, 40_000).await;
    assert!(matches!(
        f.sink.invoice_state(f.id2).await.unwrap(),
        InvoiceState::Open(h) if h == on_chain.terms.struct_hash()
    ));
    let mut other_terms = on_chain.clone();
    other_terms.terms.amount = U256::from(1);
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof2.clone()),
        &other_terms,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SettleError::TermsMismatch(_)), "{err}");
    settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof2.clone()),
        &on_chain,
        OPTS,
    )
    .await
    .unwrap();
    assert!(f.sink.invoice_state(f.id2).await.unwrap().is_settled());
    // Its id cannot be created again.
    expect_revert(
        f.sink.create_invoice(&on_chain.terms).await,
        "InvoiceExists",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_byte_transaction_and_duplicated_leaf_are_refused() {
    let f = BtcFixture::new(6).await;
    let inv = f.signed(f.salt, &f.payee, 50_000);
    let inv2 = f.signed(f.salt2, &f.payee, 40_000);
    let mut g = f.group(&inv, &f.proof).await;
    g.payments[0].rawTx = Bytes::from(vec![0x01; 64]);
    expect_revert(
        f.sink.settle_btc(vec![g], "test").await,
        "SixtyFourByteTransaction",
    );
    // The block has three transactions: the last one is paired with itself.
    // Claiming it at the padding position (index 3) is CVE-2012-2459.
    let (last, inv) = if f.proof.tx.index == 2 {
        (&f.proof, &inv)
    } else {
        (&f.proof2, &inv2)
    };
    assert_eq!(last.tx.index, 2);
    let mut g = f.group(inv, last).await;
    g.payments[0].txIndex = U256::from(3);
    let r = expect_revert(
        f.sink.settle_btc(vec![g], "test").await,
        "DuplicateMerkleNode",
    );
    assert_eq!(r.args[0].1, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_on_a_stale_fork_is_refused() {
    let f = BtcFixture::new(6).await;
    let inv = f.signed(f.salt, &f.payee, 50_000);
    let stale = f.group(&inv, &f.proof).await;
    // Replace the payment's block and its successors; sync and relay the new
    // chain (the relayer resubmits from the highest common stored header).
    f.node.node().reorg(7, 2).await.unwrap();
    sync_btc(&f.node, &f.store).await;
    let p = plan(&f.store, &f.sink).await.unwrap().unwrap();
    assert!(p.fork);
    relay(&f.store, &f.sink, 100).await;
    let (tip, hash) = f.store.btc_tip().unwrap().unwrap();
    assert_eq!(
        f.sink.btc_best().await.unwrap(),
        (u64::from(tip), internal(&hash))
    );
    expect_revert(
        f.sink.settle_btc(vec![stale], "test").await,
        "NotOnBestChain",
    );
    // Locally, the stale proof is refused before anything is sent.
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof.clone()),
        &inv,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SettleError::LocalProof(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_confirmations_are_refused() {
    let f = BtcFixture::new(3).await;
    let inv = f.signed(f.salt, &f.payee, 50_000);
    let g = f.group(&inv, &f.proof).await;
    let r = expect_revert(
        f.sink.settle_btc(vec![g], "test").await,
        "InsufficientConfirmations",
    );
    assert_eq!((r.args[1].1.as_str(), r.args[2].1.as_str()), ("3", "6"));
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof.clone()),
        &inv,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            SettleError::TooFewConfirmations {
                have: 3,
                need: 6,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_script_and_amount_too_low_are_refused() {
    let f = BtcFixture::new(6).await;
    let other = gmrelay::devnet::payee_script([0x33; 32]);
    let inv = f.signed(f.salt, &other, 50_000);
    expect_revert(
        f.sink
            .settle_btc(vec![f.group(&inv, &f.proof).await], "test")
            .await,
        "WrongPayee",
    );
    let inv = f.signed(f.salt2, &f.payee, 40_001);
    let r = expect_revert(
        f.sink
            .settle_btc(vec![f.group(&inv, &f.proof2).await], "test")
            .await,
        "AmountTooLow",
    );
    assert_eq!(r.signature(), "AmountTooLow(paid=40000, required=40001)");
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof2.clone()),
        &inv,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SettleError::NotPaid { .. }), "{err}");
}

/// Mines a block holding `outputs` (after the payer's first input) and returns its proof.
async fn pay_and_prove(
    f: &BtcFixture,
    coinbase: u32,
    outputs: Vec<TxOut>,
) -> gmrelay::btc::proof::BtcProof {
    let rpc = f.node.node();
    let tx = f
        .payer
        .pay_outputs(
            rpc.coinbase_utxo(&f.payer, coinbase).await.unwrap(),
            outputs,
            Amount::from_sat(1_000),
        )
        .unwrap();
    let txid = rpc.send(&tx).await.unwrap();
    let hashes = rpc.mine(6, &f.payer.address).await.unwrap();
    let block = gmrelay::btc::source::BtcSource::block(f.node.rpc(), &hashes[0])
        .await
        .unwrap();
    let height = f.store.btc_tip().unwrap().unwrap().0 + 1;
    sync_btc(&f.node, &f.store).await;
    relay(&f.store, &f.sink, 100).await;
    build_proof(BtcNetwork::Regtest, &block, height, txid, 6).unwrap()
}

fn op_return(reference: B256) -> TxOut {
    TxOut {
        value: Amount::ZERO,
        script_pubkey: bitcoin::ScriptBuf::new_op_return(
            bitcoin::script::PushBytesBuf::try_from(reference.to_vec()).unwrap(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_without_op_return_is_refused_and_a_split_payment_settles() {
    let f = BtcFixture::new(6).await;
    let out = |sat| TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: f.payee.clone(),
    };
    let proof = pay_and_prove(&f, 3, vec![out(50_000)]).await;
    let inv = f.signed(B256::repeat_byte(0xa3), &f.payee, 50_000);
    expect_revert(
        f.sink
            .settle_btc(vec![f.group(&inv, &proof).await], "test")
            .await,
        "MissingOpReturn",
    );
    // 60,000 + 40,000 sat to the payee settle a 100,000 sat invoice (review finding).
    let reference = B256::repeat_byte(0xa4);
    let proof = pay_and_prove(&f, 4, vec![out(60_000), op_return(reference), out(40_000)]).await;
    let inv = f.signed(reference, &f.payee, 100_000);
    let r = settle(&f.store, &f.sink, &ProofFile::bitcoin(proof), &inv, OPTS)
        .await
        .unwrap();
    assert_eq!(r.source_index, 0);
    assert!(f.sink.invoice_state(inv.id()).await.unwrap().is_settled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_ref_and_a_replayed_proof_are_refused() {
    let f = BtcFixture::new(6).await;
    // An invoice whose ref the payment does not carry.
    let inv3 = f.signed(B256::repeat_byte(0xa9), &f.payee, 50_000);
    let r = expect_revert(
        f.sink
            .settle_btc(vec![f.group(&inv3, &f.proof).await], "test")
            .await,
        "WrongRef",
    );
    assert_eq!(r.args[1].1, f.salt.to_string());
    // Settle the right invoice, then replay the same payment for another
    // invoice with identical terms but another ref.
    let inv = f.signed(f.salt, &f.payee, 50_000);
    f.sink
        .settle_btc(vec![f.group(&inv, &f.proof).await], "test")
        .await
        .unwrap();
    let inv4 = f.signed(B256::repeat_byte(0xaa), &f.payee, 50_000);
    expect_revert(
        f.sink
            .settle_btc(vec![f.group(&inv4, &f.proof).await], "test")
            .await,
        "WrongRef",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_judged_by_the_payment_block_time() {
    let f = BtcFixture::new(6).await;
    let time = u64::from(u32::from_le_bytes(
        f.proof.header[68..72].try_into().unwrap(),
    ));
    // Paid after its expiry: refused locally and by the contract.
    let mut terms = f.terms(f.salt, &f.payee, 50_000);
    terms.expiry = time - 1;
    let late = sign(terms, &f.sink);
    let r = expect_revert(
        f.sink
            .settle_btc(vec![f.group(&late, &f.proof).await], "test")
            .await,
        "PaidAfterExpiry",
    );
    assert_eq!(r.args[1].1, time.to_string());
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof.clone()),
        &late,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SettleError::Expired { .. }), "{err}");
    // Paid in time: it settles even when Metis's clock is long past the expiry
    // (relayer or sequencer lag must not lose a timely payment).
    let mut terms = f.terms(f.salt2, &f.payee, 40_000);
    terms.expiry = time + 60;
    let timely = sign(terms, &f.sink);
    advance_time(&f.sink, 3_600).await;
    assert!(f.sink.now().await.unwrap() > time + 60);
    settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof2.clone()),
        &timely,
        OPTS,
    )
    .await
    .unwrap();
}

// ----------------------------------------------------------------------------
// GOAT attestation and settlement
// ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goat_payment_settles_in_one_transaction_with_the_attestation_inline() {
    let f = GoatFixture::new().await;
    let reference = B256::repeat_byte(0xb1);
    let inv = f.signed(reference, f.token, GOAT_PAYEE, 1_000_000);
    let tx = f.pay(f.token, GOAT_PAYEE, 1_000_000, reference).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let file = ProofFile::goat(proof.clone());
    // Not attested, and no committee keys here: explained locally.
    let err = settle(&f.store, &f.sink, &file, &inv, OPTS)
        .await
        .unwrap_err();
    assert!(matches!(err, SettleError::NotAttested { .. }), "{err}");
    expect_revert(
        f.sink
            .settle_goat(vec![f.group(&inv, &proof, &[]).await], "test")
            .await,
        "UnknownGoatBlock",
    );
    // The local digest equals the contract's.
    let fields = gmrelay::metis::settle::goat_fields(&proof).unwrap();
    let digest = attestation_digest(METIS, f.deployment.goat_header_store, GOAT, &fields);
    assert_eq!(
        f.sink.goat_attestation_digest(&fields).await.unwrap(),
        digest
    );
    // With the committee's keys, the attestation goes inline: one transaction.
    let keys = devnet_attester_keys();
    let report = settle(
        &f.store,
        &f.sink,
        &file,
        &inv,
        SettleOptions {
            attesters: &keys,
            goat_header_store: f.deployment.goat_header_store,
            ..OPTS
        },
    )
    .await
    .unwrap();
    assert!(report.inline_attestation);
    assert_eq!(report.rail, gmrelay::rail::Rail::Goat);
    assert!(f.sink.invoice_state(inv.id()).await.unwrap().is_settled());
    assert!(
        !f.sink.goat_is_known(proof.block_hash).await.unwrap(),
        "nothing stored for the block"
    );
    expect_revert(
        f.sink
            .settle_goat(vec![f.group(&inv, &proof, &keys[..3]).await], "test")
            .await,
        "AlreadySettled",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_attestation_serves_later_payments_of_the_block() {
    let f = GoatFixture::new().await;
    let reference = B256::repeat_byte(0xc1);
    let inv = f.invoice(reference, f.token, GOAT_PAYEE, 5).await;
    let tx = f.pay(f.token, GOAT_PAYEE, 5, reference).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let keys = devnet_attester_keys();
    let r = attest_goat(
        &f.store,
        &f.sink,
        f.domain(),
        proof.block_number,
        &keys,
        &[],
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.signatures_used, 3);
    assert!(f.sink.goat_is_known(proof.block_hash).await.unwrap());
    let report = settle(&f.store, &f.sink, &ProofFile::goat(proof), &inv, OPTS)
        .await
        .unwrap();
    assert!(!report.inline_attestation);
    assert!(f.sink.invoice_state(inv.id()).await.unwrap().is_settled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_unsorted_duplicate_and_outsider_attestations_are_refused() {
    let f = GoatFixture::new().await;
    let tx = f.pay(f.token, GOAT_PAYEE, 1, B256::repeat_byte(0xb2)).await;
    f.finalize_and_sync().await;
    let (number, hash, _, _) = f.block_of(tx).await;
    let header = f.store.goat_header(&hash).unwrap().unwrap();
    let fields = block_fields(header.header(), hash);
    let digest = attestation_digest(METIS, f.deployment.goat_header_store, GOAT, &fields);
    let keys = devnet_attester_keys();
    let mut signed: Vec<(alloy::primitives::Address, Bytes)> = keys
        .iter()
        .map(|k| (k.address(), sign_digest(k, digest)))
        .collect();
    signed.sort_by_key(|(a, _)| *a);
    let pack =
        |sigs: &[&Bytes]| Bytes::from(sigs.iter().flat_map(|s| s.to_vec()).collect::<Vec<u8>>());
    let s: Vec<&Bytes> = signed.iter().map(|(_, b)| b).collect();
    let r = expect_revert(
        f.sink.goat_attest_block(&fields, pack(&s[..2])).await,
        "TooFewAttestations",
    );
    assert_eq!(r.signature(), "TooFewAttestations(got=2, need=3)");
    expect_revert(
        f.sink
            .goat_attest_block(&fields, pack(&[s[0], s[1], s[1]]))
            .await,
        "DuplicateAttester",
    );
    expect_revert(
        f.sink
            .goat_attest_block(&fields, pack(&[s[1], s[0], s[2]]))
            .await,
        "SignersNotSorted",
    );
    // An outsider's signature.
    let outsider = alloy::signers::local::PrivateKeySigner::random();
    let mut with: Vec<(alloy::primitives::Address, Bytes)> = signed[..2].to_vec();
    with.push((outsider.address(), sign_digest(&outsider, digest)));
    expect_revert(
        f.sink
            .goat_attest_block(&fields, pack_quorum(with, 3).unwrap())
            .await,
        "NotACommitteeMember",
    );
    // The runner refuses locally too.
    let err = attest_goat(&f.store, &f.sink, f.domain(), number, &keys[..2], &[], true)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AttestError::TooFew { got: 2, need: 3 }),
        "{err}"
    );
    // A block above the finalized one is not signed.
    let (fin, _) = f.store.goat_finalized().unwrap().unwrap();
    let err = attest_goat(&f.store, &f.sink, f.domain(), fin + 1, &keys, &[], true)
        .await
        .unwrap_err();
    assert!(matches!(err, AttestError::NotFinalized { .. }), "{err}");
    // Signatures gathered elsewhere complete this member's own.
    let others: Vec<Bytes> = keys[3..5].iter().map(|k| sign_digest(k, digest)).collect();
    let r = attest_goat(
        &f.store,
        &f.sink,
        f.domain(),
        number,
        &keys[..1],
        &others,
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.signatures_used, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_from_another_token_and_forged_receipt_are_refused() {
    let f = GoatFixture::new().await;
    let keys = devnet_attester_keys();
    let reference = B256::repeat_byte(0xb3);
    let inv = f.signed(reference, f.token, GOAT_PAYEE, 1_000);
    // Paid with a look-alike token (same name, version, another address).
    let tx = f.pay(f.other_token, GOAT_PAYEE, 1_000, reference).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let r = expect_revert(
        f.sink
            .settle_goat(vec![f.group(&inv, &proof, &keys[..3]).await], "test")
            .await,
        "WrongToken",
    );
    assert_eq!(r.args[0].1, f.other_token.to_string());
    // A forged receipt (one byte of the leaf, which holds it, changed).
    let reference = B256::repeat_byte(0xb4);
    let inv2 = f.signed(reference, f.token, GOAT_PAYEE, 1_000);
    let tx = f.pay(f.token, GOAT_PAYEE, 1_000, reference).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let mut g = f.group(&inv2, &proof, &keys[..3]).await;
    let last = g.nodes.len() - 1;
    let mut leaf = g.nodes[last].to_vec();
    let n = leaf.len();
    leaf[n - 1] ^= 0x01;
    g.nodes[last] = Bytes::from(leaf);
    expect_revert(
        f.sink.settle_goat(vec![g], "test").await,
        "MptNodeHashMismatch",
    );
    // The genuine proof settles.
    f.sink
        .settle_goat(vec![f.group(&inv2, &proof, &keys[..3]).await], "test")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_receipt_is_refused() {
    use alloy::providers::Provider;
    let f = GoatFixture::new().await;
    // The relayer holds no tokens: its transfer reverts on GOAT (mined, status 0).
    let p =
        gmrelay::goat::devnet::wallet_provider(&f.goat.url(), gmrelay::goat::devnet::RELAYER_KEY)
            .unwrap();
    let t = gmrelay::goat::devnet::TestStablecoin::new(f.token, p.clone());
    let pending = t
        .transfer(GOAT_PAYEE, U256::from(1))
        .gas(200_000)
        .send()
        .await
        .unwrap();
    let receipt = pending.get_receipt().await.unwrap();
    assert!(!receipt.status());
    let _ = p.get_block_number().await;
    f.finalize_and_sync().await;
    let (number, hash, index, block) = f.block_of(receipt.transaction_hash).await;
    let (_, nodes) = block.prove(index).unwrap();
    f.attest(number).await;
    let header = f.store.goat_header(&hash).unwrap().unwrap();
    let fields = block_fields(header.header(), hash);
    let inv = f.signed(B256::repeat_byte(0xb5), f.token, GOAT_PAYEE, 1);
    use gmrelay::metis::bindings::PaymentSettlement;
    let group = PaymentSettlement::GoatGroup {
        blk: gmrelay::metis::settle::goat_block(&fields, Bytes::new()),
        nodes,
        payments: vec![PaymentSettlement::GoatPayment {
            terms: inv.terms.to_sol(),
            signature: inv.signature.clone(),
            txIndex: U256::from(index),
            path: Bytes::new(),
            logIndex: U256::ZERO,
        }],
    };
    let r = expect_revert(
        f.sink.settle_goat(vec![group], "test").await,
        "ReceiptFailed",
    );
    assert_eq!(r.args[0].1, "0");
}

// ----------------------------------------------------------------------------
// The command line
// ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_settle_prints_the_decoded_custom_error() {
    let f = GoatFixture::new().await;
    let reference = B256::repeat_byte(0xb6);
    let tx = f.pay(f.token, GOAT_PAYEE, 1_000, reference).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let data = tempfile::tempdir().unwrap();
    f.deployment
        .save(&data.path().join("deployment.json"))
        .unwrap();
    let file = data.path().join("proof.json");
    ProofFile::goat(proof).save(&file).unwrap();
    // Terms signed by a stranger in the merchant's name.
    let mut forged = f.signed(reference, f.token, GOAT_PAYEE, 1_000);
    forged.signature = f
        .signed(B256::repeat_byte(0xb7), f.token, GOAT_PAYEE, 1_000)
        .signature;
    let invoice = data.path().join("invoice.json");
    std::fs::write(&invoice, serde_json::to_vec(&forged).unwrap()).unwrap();
    let committee: Vec<String> = devnet_attester_keys()
        .iter()
        .map(|k| alloy::primitives::hex::encode_prefixed(k.to_bytes()))
        .collect();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gmrelay"))
            .arg("--data-dir")
            .arg(data.path())
            .args(["--metis-rpc", &f.metis.url()])
            .args(["metis", "settle"])
            .arg(&file)
            .arg("--invoice")
            .arg(&invoice)
            .args(extra)
            .env("GMRELAY_METIS_KEY", gmrelay::goat::devnet::RELAYER_KEY)
            .env("GMRELAY_GOAT_ATTESTER_KEYS", committee.join(","))
            .env("GMRELAY_LOG_LEVEL", "warn")
            .env_remove("GMRELAY_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    // Local check first: the signature is not the merchant's.
    let err = run(&[]);
    assert!(err.contains("not by its merchant"), "{err}");
    // The contract's refusal, decoded: name, arguments and contract.
    let err = run(&["--skip-checks"]);
    assert!(
        err.contains(&format!(
            "PaymentSettlement.settleGoat reverted: InvalidMerchantSignature(invoiceId={}",
            forged.id()
        )),
        "{err}"
    );
    assert!(err.contains("[PaymentSettlement]"), "{err}");
    assert!(err.contains("not signed by their merchant"), "{err}");
    // What each contract trusts, read from the chain.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gmrelay"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--metis-rpc", &f.metis.url()])
        .args(["contracts", "show"])
        .env("GMRELAY_LOG_LEVEL", "warn")
        .env_remove("GMRELAY_CONFIG")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("trusts:"), "{shown}");
    assert!(shown.contains("regtest rules: no retargeting"), "{shown}");
    assert!(shown.contains("a 3-of-5 committee"), "{shown}");
    assert!(shown.contains("attesting GOAT chain 2345"), "{shown}");
    assert!(shown.contains("6 Bitcoin confirmations"), "{shown}");
}
