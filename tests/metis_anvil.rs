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
    attest_goat, attestation_digest, devnet_attester_keys, sign_digest, AttestError,
};
use gmrelay::metis::bindings::{BtcLightClient, NETWORK_MAINNET};
use gmrelay::metis::deploy::BtcCheckpointArgs;
use gmrelay::metis::relay::{internal, plan};
use gmrelay::metis::settle::{goat_settlement_proof, settle, SettleError, SettleOptions};
use gmrelay::metis::sink::MetisSink;
use gmrelay::proof::ProofFile;
use gmrelay::store::Store;
use serde_json::Value;

const OPTS: SettleOptions = SettleOptions {
    network: BtcNetwork::Regtest,
    skip_checks: false,
};
const SKIP: SettleOptions = SettleOptions {
    network: BtcNetwork::Regtest,
    skip_checks: true,
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
    let (d, sink) = deploy(&metis, args, 6).await;
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
    let c = BtcLightClient::new(d.btc_light_client, sink.provider().clone());
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
async fn btc_payment_settles_end_to_end_exactly_once() {
    let f = BtcFixture::new(6).await;
    // Before the invoice exists, the local check explains.
    let file = ProofFile::bitcoin(f.proof.clone());
    let err = settle(&f.store, &f.sink, &file, f.id, OPTS)
        .await
        .unwrap_err();
    assert!(matches!(err, SettleError::UnknownInvoice(_)), "{err}");
    f.invoice(f.salt, &f.payee, 50_000, 3600).await;
    let report = settle(&f.store, &f.sink, &file, f.id, OPTS).await.unwrap();
    assert_eq!(report.source_index, 0);
    assert!(report.outcome.gas_used > 0);
    let inv = f.sink.invoice(f.id).await.unwrap().unwrap();
    // The id is derived from the creator and the salt; only the creator owns it.
    assert_eq!(inv.creator, common::metis::creator());
    assert_eq!(inv.status_name(), "settled");
    // Second settlement: refused locally, and by the contract.
    let err = settle(&f.store, &f.sink, &file, f.id, OPTS)
        .await
        .unwrap_err();
    assert!(matches!(err, SettleError::AlreadySettled(_)), "{err}");
    match settle(&f.store, &f.sink, &file, f.id, SKIP).await {
        Err(SettleError::Metis(e)) => {
            assert_eq!(e.revert().unwrap().name, "AlreadySettled", "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_byte_transaction_and_duplicated_leaf_are_refused() {
    let f = BtcFixture::new(6).await;
    f.invoice(f.salt, &f.payee, 50_000, 3600).await;
    f.invoice(f.salt2, &f.payee, 40_000, 3600).await;
    let mut p = f.contract_proof(&f.proof, 0).await;
    p.inclusion.rawTx = Bytes::from(vec![0x01; 64]);
    expect_revert(f.sink.settle_btc(f.id, p).await, "SixtyFourByteTransaction");
    // The block has three transactions: the last one is paired with itself.
    // Claiming it at the padding position (index 3) is CVE-2012-2459.
    let (last, id) = if f.proof.tx.index == 2 {
        (&f.proof, f.id)
    } else {
        (&f.proof2, f.id2)
    };
    assert_eq!(last.tx.index, 2);
    let mut p = f.contract_proof(last, 0).await;
    p.inclusion.txIndex = U256::from(3);
    let r = expect_revert(f.sink.settle_btc(id, p).await, "DuplicateMerkleNode");
    assert_eq!(r.args[0].1, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_on_a_stale_fork_is_refused() {
    let f = BtcFixture::new(6).await;
    f.invoice(f.salt, &f.payee, 50_000, 3600).await;
    let stale = f.contract_proof(&f.proof, 0).await;
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
    expect_revert(f.sink.settle_btc(f.id, stale).await, "NotOnBestChain");
    // Locally, the stale proof is refused before anything is sent.
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof.clone()),
        f.id,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SettleError::LocalProof(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_confirmations_are_refused() {
    let f = BtcFixture::new(3).await;
    f.invoice(f.salt, &f.payee, 50_000, 3600).await;
    let p = f.contract_proof(&f.proof, 0).await;
    let r = expect_revert(
        f.sink.settle_btc(f.id, p).await,
        "InsufficientConfirmations",
    );
    assert_eq!((r.args[1].1.as_str(), r.args[2].1.as_str()), ("3", "6"));
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof.clone()),
        f.id,
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
    f.invoice(f.salt, &other, 50_000, 3600).await;
    let p = f.contract_proof(&f.proof, 0).await;
    expect_revert(f.sink.settle_btc(f.id, p).await, "WrongPayee");
    f.invoice(f.salt2, &f.payee, 40_001, 3600).await;
    let p = f.contract_proof(&f.proof2, 0).await;
    let r = expect_revert(f.sink.settle_btc(f.id2, p).await, "AmountTooLow");
    assert_eq!(r.signature(), "AmountTooLow(paid=40000, required=40001)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_without_op_return_is_refused() {
    let f = BtcFixture::new(6).await;
    let rpc = f.node.node();
    let tx = f
        .payer
        .pay_outputs(
            rpc.coinbase_utxo(&f.payer, 3).await.unwrap(),
            vec![TxOut {
                value: Amount::from_sat(50_000),
                script_pubkey: f.payee.clone(),
            }],
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
    let proof = build_proof(BtcNetwork::Regtest, &block, height, txid, 6).unwrap();
    let id = f
        .invoice(B256::repeat_byte(0xa3), &f.payee, 50_000, 3600)
        .await;
    let p = f.contract_proof(&proof, 0).await;
    expect_revert(f.sink.settle_btc(id, p).await, "MissingOpReturn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_invoice_id_and_a_replayed_proof_are_refused() {
    let f = BtcFixture::new(6).await;
    // An invoice the payment does not name.
    let id3 = f
        .invoice(B256::repeat_byte(0xa9), &f.payee, 50_000, 3600)
        .await;
    let p = f.contract_proof(&f.proof, 0).await;
    let r = expect_revert(f.sink.settle_btc(id3, p.clone()).await, "WrongInvoiceId");
    assert_eq!(r.args[1].1, f.id.to_string());
    // Settle the right invoice, then replay the same proof for another
    // invoice with identical terms.
    f.invoice(f.salt, &f.payee, 50_000, 3600).await;
    f.sink.settle_btc(f.id, p.clone()).await.unwrap();
    let id4 = f
        .invoice(B256::repeat_byte(0xaa), &f.payee, 50_000, 3600)
        .await;
    expect_revert(f.sink.settle_btc(id4, p).await, "WrongInvoiceId");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_invoice_is_refused() {
    let f = BtcFixture::new(6).await;
    f.invoice(f.salt, &f.payee, 50_000, 60).await;
    advance_time(&f.sink, 120).await;
    let p = f.contract_proof(&f.proof, 0).await;
    expect_revert(f.sink.settle_btc(f.id, p).await, "InvoiceExpired");
    let err = settle(
        &f.store,
        &f.sink,
        &ProofFile::bitcoin(f.proof.clone()),
        f.id,
        OPTS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SettleError::Expired { .. }), "{err}");
}

// ----------------------------------------------------------------------------
// GOAT attestation and settlement
// ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goat_payment_attested_3_of_5_and_settled_end_to_end() {
    let f = GoatFixture::new().await;
    let id = f
        .invoice(B256::repeat_byte(0xb1), f.token, GOAT_PAYEE, 1_000_000)
        .await;
    let tx = f.pay(f.token, GOAT_PAYEE, 1_000_000, id).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let file = ProofFile::goat(proof.clone());
    // Not attested yet: explained locally, named by the contract.
    let err = settle(&f.store, &f.sink, &file, id, OPTS)
        .await
        .unwrap_err();
    assert!(matches!(err, SettleError::NotAttested { .. }), "{err}");
    expect_revert(
        f.sink
            .settle_goat(id, goat_settlement_proof(&proof).unwrap())
            .await,
        "UnknownGoatHeader",
    );
    // The local digest equals the contract's; all five devnet members sign,
    // the runner submits the threshold (3).
    let digest = attestation_digest(
        METIS,
        f.deployment.goat_header_store,
        GOAT,
        proof.block_number,
        proof.block_hash,
    );
    assert_eq!(
        f.sink
            .goat_attestation_digest(proof.block_number, proof.block_hash)
            .await
            .unwrap(),
        digest
    );
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
    let report = settle(&f.store, &f.sink, &file, id, OPTS).await.unwrap();
    assert_eq!(report.rail, "goat");
    assert_eq!(
        f.sink.invoice(id).await.unwrap().unwrap().status_name(),
        "settled"
    );
    expect_revert(
        f.sink
            .settle_goat(id, goat_settlement_proof(&proof).unwrap())
            .await,
        "AlreadySettled",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_attestations_duplicates_and_unfinalized_blocks_are_refused() {
    let f = GoatFixture::new().await;
    let tx = f.pay(f.token, GOAT_PAYEE, 1, B256::repeat_byte(0xb2)).await;
    f.finalize_and_sync().await;
    let (number, hash, _, _) = f.block_of(tx).await;
    let rlp = Bytes::from(f.store.goat_header(&hash).unwrap().unwrap().rlp());
    let digest = attestation_digest(METIS, f.deployment.goat_header_store, GOAT, number, hash);
    let keys = devnet_attester_keys();
    let s: Vec<Bytes> = keys.iter().map(|k| sign_digest(k, digest)).collect();
    let r = expect_revert(
        f.sink
            .goat_submit_header(rlp.clone(), vec![s[0].clone(), s[1].clone()])
            .await,
        "TooFewAttestations",
    );
    assert_eq!(r.signature(), "TooFewAttestations(got=2, need=3)");
    expect_revert(
        f.sink
            .goat_submit_header(rlp.clone(), vec![s[0].clone(), s[1].clone(), s[0].clone()])
            .await,
        "DuplicateAttester",
    );
    // An outsider's signature.
    let outsider = sign_digest(&alloy::signers::local::PrivateKeySigner::random(), digest);
    expect_revert(
        f.sink
            .goat_submit_header(rlp.clone(), vec![s[0].clone(), s[1].clone(), outsider])
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
    let r = attest_goat(
        &f.store,
        &f.sink,
        f.domain(),
        number,
        &keys[..1],
        &s[3..5],
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.signatures_used, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_from_another_token_and_forged_receipt_are_refused() {
    let f = GoatFixture::new().await;
    let id = f
        .invoice(B256::repeat_byte(0xb3), f.token, GOAT_PAYEE, 1_000)
        .await;
    // Paid with a look-alike token (same name, version, another address).
    let tx = f.pay(f.other_token, GOAT_PAYEE, 1_000, id).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    f.attest(proof.block_number).await;
    let r = expect_revert(
        f.sink
            .settle_goat(id, goat_settlement_proof(&proof).unwrap())
            .await,
        "WrongToken",
    );
    assert_eq!(r.args[0].1, f.other_token.to_string());
    // A forged receipt (one byte of the Transfer amount changed).
    let id2 = f
        .invoice(B256::repeat_byte(0xb4), f.token, GOAT_PAYEE, 1_000)
        .await;
    let tx = f.pay(f.token, GOAT_PAYEE, 1_000, id2).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    f.attest(proof.block_number).await;
    let mut forged = goat_settlement_proof(&proof).unwrap();
    let mut receipt = forged.receipt.to_vec();
    let n = receipt.len();
    receipt[n - 1] ^= 0x01;
    forged.receipt = Bytes::from(receipt);
    expect_revert(f.sink.settle_goat(id2, forged).await, "ReceiptMismatch");
    // The genuine proof settles.
    f.sink
        .settle_goat(id2, goat_settlement_proof(&proof).unwrap())
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
    let (encoded, nodes) = block.prove(index).unwrap();
    f.attest(number).await;
    let id = f
        .invoice(B256::repeat_byte(0xb5), f.token, GOAT_PAYEE, 1)
        .await;
    let proof = gmrelay::metis::bindings::PaymentSettlement::GoatProof {
        blockHash: hash,
        txIndex: U256::from(index),
        receipt: encoded,
        proof: nodes,
        authorizationLogIndex: U256::ZERO,
        transferLogIndex: U256::from(1),
    };
    let r = expect_revert(f.sink.settle_goat(id, proof).await, "ReceiptFailed");
    assert_eq!(r.args[0].1, "0");
}

// ----------------------------------------------------------------------------
// The command line
// ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_settle_prints_the_decoded_custom_error() {
    let f = GoatFixture::new().await;
    let salt = B256::repeat_byte(0xb6);
    let id = common::metis::id_for(salt);
    let tx = f.pay(f.token, GOAT_PAYEE, 1_000, id).await;
    f.finalize_and_sync().await;
    let proof = f.prove(tx).await;
    let data = tempfile::tempdir().unwrap();
    f.deployment
        .save(&data.path().join("deployment.json"))
        .unwrap();
    let file = data.path().join("proof.json");
    ProofFile::goat(proof).save(&file).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gmrelay"))
            .arg("--data-dir")
            .arg(data.path())
            .args(["--metis-rpc", &f.metis.url()])
            .args(["metis", "settle"])
            .arg(&file)
            .args(["--invoice", &id.to_string()])
            .args(extra)
            .env("GMRELAY_METIS_KEY", gmrelay::goat::devnet::RELAYER_KEY)
            .env("GMRELAY_LOG_LEVEL", "warn")
            .env_remove("GMRELAY_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    // Local check first: the invoice does not exist.
    let err = run(&[]);
    assert!(err.contains("does not exist on PaymentSettlement"), "{err}");
    assert!(err.contains("gmrelay metis invoice create"), "{err}");
    // The contract's refusal, decoded: name, arguments and contract.
    let err = run(&["--skip-checks"]);
    assert!(
        err.contains(&format!(
            "PaymentSettlement.settleGoat reverted: UnknownInvoice(invoiceId={id}) [PaymentSettlement]"
        )),
        "{err}"
    );
    // The invoice exists but the block is not attested: the contract names it.
    f.invoice(salt, f.token, GOAT_PAYEE, 1_000).await;
    let err = run(&["--skip-checks"]);
    assert!(err.contains("UnknownGoatHeader(blockHash="), "{err}");
    assert!(err.contains("attest the GOAT block first"), "{err}");
}
