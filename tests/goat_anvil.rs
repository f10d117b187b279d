//! GOAT light client and payment proofs against a real anvil (`--chain-id
//! 2345`), started per test on a free loopback port and killed on drop.
//!
//! Run with `ANVIL_EXE=/path/to/anvil cargo test --release --test goat_anvil`.

mod common;

use std::time::Duration;

use alloy::eips::eip2930::{AccessList, AccessListItem};
use alloy::eips::eip7702::Authorization;
use alloy::network::{EthereumWallet, TransactionBuilder, TransactionBuilder7702};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use common::anvil::TestAnvil;
use gmrelay::error::Classify;
use gmrelay::goat::chain::{Finality, GoatEvent, GoatRule};
use gmrelay::goat::checkpoint::GoatCheckpoint;
use gmrelay::goat::devnet::{self, TestStablecoin, RELAYER_KEY};
use gmrelay::goat::payment::{find_payments, Invoice, PaymentError, PaymentPolicy};
use gmrelay::goat::proof::{
    build_goat_proof, verify_goat_proof, Acceptance, GoatProof, GoatProofError,
};
use gmrelay::goat::receipts::{verify_receipt_proof, BlockReceipts};
use gmrelay::goat::source::{GoatRpc, GoatSource};
use gmrelay::goat::sync::{GoatSyncError, GoatSyncOptions, GoatSyncer};
use gmrelay::store::{RocksStore, Store};
use serde_json::json;

const CHAIN_ID: u64 = 2345;
const PAYEE: Address = Address::new([
    0x70, 0x99, 0x79, 0x70, 0xC5, 0x18, 0x12, 0xdc, 0x3A, 0x01, 0x0C, 0x7d, 0x01, 0xb5, 0x0e, 0x0d,
    0x17, 0xdc, 0x79, 0xC8,
]);
const OTHER_PAYEE: Address = Address::repeat_byte(0x42);

/// The devnet payer's EIP-3009 payment of `amount` of `token` to `to`
/// signed in Rust and submitted (waiting for the receipt), nonce `invoice`.
async fn pay(
    url: &str,
    token: Address,
    to: Address,
    amount: u64,
    invoice: B256,
) -> devnet::PaySubmitted {
    devnet::pay(
        url,
        token,
        devnet::PAYER_KEY,
        to,
        U256::from(amount),
        invoice,
        true,
    )
    .await
    .unwrap()
}

async fn rpc(anvil: &TestAnvil) -> GoatRpc {
    GoatRpc::connect(&anvil.url(), Duration::from_secs(30))
        .await
        .unwrap()
}

fn opts() -> GoatSyncOptions {
    GoatSyncOptions {
        batch_size: 50,
        max_retry: Duration::from_secs(5),
        ..GoatSyncOptions::default()
    }
}

/// Proves the payment of `tx` the way `gmrelay goat prove` does.
async fn prove<S: GoatSource, St: Store>(
    source: &S,
    store: &St,
    tx: B256,
    policy: &PaymentPolicy,
) -> Result<GoatProof, String> {
    let loc = source
        .tx_location(tx)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("not mined")?;
    let header = store
        .goat_header(&loc.block_hash)
        .map_err(|e| e.to_string())?
        .ok_or("block not synced")?;
    let receipts = source
        .block_receipts(loc.block_hash)
        .await
        .map_err(|e| e.to_string())?;
    let block = BlockReceipts::from_rpc(
        loc.block_number,
        loc.block_hash,
        header.header().receipts_root,
        &receipts,
    )
    .map_err(|e| e.to_string())?;
    let found = find_payments(
        &block.receipts()[loc.tx_index as usize],
        loc.tx_index,
        policy,
    );
    let payment = found.first().ok_or("no payment found")?;
    build_goat_proof(CHAIN_ID, header.header(), &block, payment).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eip3009_payment_is_detected_proven_and_verified_and_tampering_fails() {
    let anvil = TestAnvil::start(&[]).await;
    let url = anvil.url();
    let token = devnet::deploy_token(&url, "USD Coin", "USDC", "2")
        .await
        .unwrap();
    // A look-alike: same name, symbol and version, another address.
    let fake = devnet::deploy_token(&url, "USD Coin", "USDC", "2")
        .await
        .unwrap();
    let payer = devnet::payer_address();
    for t in [token, fake] {
        devnet::mint(&url, t, payer, U256::from(10_000_000u64))
            .await
            .unwrap();
    }
    let invoice = B256::repeat_byte(0xab);
    let paid = pay(&url, token, PAYEE, 2_500_000u64, invoice).await;
    let fake_paid = pay(&url, fake, PAYEE, 2_500_000u64, B256::repeat_byte(0xac)).await;
    let other_paid = pay(
        &url,
        token,
        OTHER_PAYEE,
        1_000_000u64,
        B256::repeat_byte(0xad),
    )
    .await;
    anvil.mine(3).await;

    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let source = rpc(&anvil).await;
    let mut syncer = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        CHAIN_ID,
        Finality::Depth(2),
        opts(),
    )
    .await
    .unwrap();
    let report = syncer.sync_once().await.unwrap();
    assert_eq!(report.tip.0, anvil.head().await);

    let policy = PaymentPolicy {
        tokens: vec![token],
        payees: vec![PAYEE],
        allow_plain_transfers: false,
    };
    let proof = prove(&source, &store, paid.tx_hash, &policy).await.unwrap();
    let verified =
        verify_goat_proof(&proof, &store, CHAIN_ID, Acceptance::Finalized, false).unwrap();
    let invoice_terms = Invoice {
        token: Some(token),
        payee: Some(PAYEE),
        min_amount: Some(U256::from(2_500_000u64)),
        nonce: Some(invoice),
    };
    verified.check_invoice(&invoice_terms).unwrap();
    assert_eq!(verified.payment().from, payer);
    assert_eq!(
        verified.replay_key(),
        gmrelay::goat::proof::GoatReplayKey::Authorization {
            token,
            authorizer: payer,
            nonce: invoice,
        }
    );

    // The proof file round-trips through the shared envelope.
    let file = gmrelay::proof::ProofFile::goat(proof.clone());
    let path = dir.path().join("p.json");
    file.save(&path).unwrap();
    assert_eq!(gmrelay::proof::ProofFile::load(&path).unwrap(), file);

    // Every tampered byte fails.
    let check =
        |p: &GoatProof| verify_goat_proof(p, &store, CHAIN_ID, Acceptance::Finalized, false);
    for i in 0..proof.receipt.len() {
        let mut p = proof.clone();
        let mut b = p.receipt.to_vec();
        b[i] ^= 0x80;
        p.receipt = b.into();
        assert!(check(&p).is_err(), "receipt byte {i} tampered but accepted");
    }
    for n in 0..proof.proof_nodes.len() {
        for i in 0..proof.proof_nodes[n].len() {
            let mut p = proof.clone();
            let mut b = p.proof_nodes[n].to_vec();
            b[i] ^= 0x80;
            p.proof_nodes[n] = b.into();
            assert!(
                check(&p).is_err(),
                "proof node {n} byte {i} tampered but accepted"
            );
        }
    }
    for i in 0..proof.header_rlp.len() {
        let mut p = proof.clone();
        let mut b = p.header_rlp.to_vec();
        b[i] ^= 0x80;
        p.header_rlp = b.into();
        assert!(check(&p).is_err(), "header byte {i} tampered but accepted");
    }

    // The look-alike token's receipt is not a payment under the policy...
    assert!(prove(&source, &store, fake_paid.tx_hash, &policy)
        .await
        .is_err());
    // ...and a proof of it (built with a policy that names it) fails the invoice's token.
    let fake_policy = PaymentPolicy {
        tokens: vec![fake],
        ..policy.clone()
    };
    let fake_proof = prove(&source, &store, fake_paid.tx_hash, &fake_policy)
        .await
        .unwrap();
    let v = verify_goat_proof(&fake_proof, &store, CHAIN_ID, Acceptance::Finalized, false).unwrap();
    assert!(matches!(
        v.check_invoice(&Invoice {
            nonce: None,
            ..invoice_terms.clone()
        }),
        Err(PaymentError::WrongToken { .. })
    ));
    // A payment to another payee is not accepted.
    assert!(prove(&source, &store, other_paid.tx_hash, &policy)
        .await
        .is_err());
    let any_payee = PaymentPolicy {
        payees: vec![],
        ..policy.clone()
    };
    let other_proof = prove(&source, &store, other_paid.tx_hash, &any_payee)
        .await
        .unwrap();
    let v =
        verify_goat_proof(&other_proof, &store, CHAIN_ID, Acceptance::Finalized, false).unwrap();
    assert!(matches!(
        v.check_invoice(&Invoice {
            nonce: None,
            min_amount: None,
            ..invoice_terms
        }),
        Err(PaymentError::WrongPayee { .. })
    ));
}

fn random_funded() -> PrivateKeySigner {
    PrivateKeySigner::random()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_of_200_mixed_type_transactions_rebuilds_receipts_root() {
    let anvil = TestAnvil::start(&[]).await;
    let url = anvil.url();
    let token = devnet::deploy_token(&url, "USD Coin", "USDC", "2")
        .await
        .unwrap();
    let senders: Vec<PrivateKeySigner> = (0..5).map(|_| random_funded()).collect();
    for s in &senders {
        anvil
            .rpc(
                "anvil_setBalance",
                json!([s.address(), "0x56bc75e2d63100000"]),
            )
            .await;
    }
    anvil.rpc("evm_setAutomine", json!([false])).await;
    let gwei = 1_000_000_000u128;
    let mut sent = 0u32;
    let mut types = std::collections::BTreeSet::new();
    for (k, s) in senders.iter().enumerate() {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(s.clone()))
            .connect_http(url.parse().unwrap());
        for n in 0..42u64 {
            let to = Address::with_last_byte((n % 200) as u8 + 1);
            let base = TransactionRequest::default()
                .with_to(to)
                .with_value(U256::from(n + 1))
                .with_nonce(n)
                .with_chain_id(CHAIN_ID)
                .with_gas_limit(60_000);
            let (tx, ty) = match (n as usize + k) % 4 {
                0 => (base.with_gas_price(10 * gwei), 0u8),
                1 => (
                    base.with_gas_price(10 * gwei)
                        .with_access_list(AccessList(vec![AccessListItem {
                            address: to,
                            storage_keys: vec![B256::with_last_byte(1)],
                        }])),
                    1,
                ),
                2 => (
                    base.with_max_fee_per_gas(10 * gwei)
                        .with_max_priority_fee_per_gas(gwei),
                    2,
                ),
                _ => {
                    // EIP-7702: a fresh authority delegates to the token contract.
                    let authority = PrivateKeySigner::random();
                    let auth = Authorization {
                        chain_id: U256::from(CHAIN_ID),
                        address: token,
                        nonce: 0,
                    };
                    let sig = authority.sign_hash_sync(&auth.signature_hash()).unwrap();
                    (
                        base.with_max_fee_per_gas(10 * gwei)
                            .with_max_priority_fee_per_gas(gwei)
                            .with_authorization_list(vec![auth.into_signed(sig)]),
                        4,
                    )
                }
            };
            let _pending = provider
                .send_transaction(tx)
                .await
                .unwrap_or_else(|e| panic!("type {ty} tx: {e}"));
            types.insert(ty);
            sent += 1;
        }
    }
    // Token mints (logs in the block) from the relayer, nonces set by hand.
    let relayer = devnet::wallet_provider(&url, RELAYER_KEY).unwrap();
    let relayer_addr = devnet::signer(RELAYER_KEY).address();
    let nonce0 = relayer.get_transaction_count(relayer_addr).await.unwrap();
    let t = TestStablecoin::new(token, relayer.clone());
    for i in 0..10u64 {
        let _pending = t
            .mint(Address::with_last_byte(i as u8 + 1), U256::from(1000 + i))
            .nonce(nonce0 + i)
            .gas(120_000)
            .max_fee_per_gas(10 * gwei)
            .max_priority_fee_per_gas(gwei)
            .send()
            .await
            .unwrap();
        sent += 1;
    }
    anvil.rpc("evm_mine", json!([])).await;
    let head = anvil.head().await;
    let source = rpc(&anvil).await;
    let header = source.headers(head, 1).await.unwrap().pop().unwrap();
    let hash = header.hash_slow();
    for source in [
        rpc(&anvil).await,
        rpc(&anvil).await.without_block_receipts(),
    ] {
        let receipts = source.block_receipts(hash).await.unwrap();
        assert_eq!(
            receipts.len() as u32,
            sent,
            "every transaction in one block"
        );
        let block = BlockReceipts::from_rpc(head, hash, header.receipts_root, &receipts)
            .expect("rebuilt receiptsRoot equals anvil's");
        let seen: std::collections::BTreeSet<u8> =
            block.receipts().iter().map(|r| r.tx_type).collect();
        assert_eq!(seen, types, "legacy, 0x01, 0x02 and 0x04 receipts");
        assert!(
            block
                .receipts()
                .iter()
                .filter(|r| !r.logs.is_empty())
                .count()
                >= 10
        );
        for i in [0u64, 1, 127, 128, 150, u64::from(sent) - 1] {
            let (receipt, nodes) = block.prove(i).unwrap();
            verify_receipt_proof(header.receipts_root, i, &receipt, &nodes).unwrap();
        }
    }
    assert!(types.contains(&4), "anvil accepted EIP-7702 transactions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_before_finality_is_followed_and_reorged_out_proof_stops_verifying() {
    let anvil = TestAnvil::start(&[]).await;
    let url = anvil.url();
    let token = devnet::deploy_token(&url, "USD Coin", "USDC", "2")
        .await
        .unwrap();
    devnet::mint(
        &url,
        token,
        devnet::payer_address(),
        U256::from(10_000_000u64),
    )
    .await
    .unwrap();
    anvil.mine(2).await;
    let deep = anvil.rpc("evm_snapshot", json!([])).await;
    anvil.mine(10).await;
    let snap = anvil.rpc("evm_snapshot", json!([])).await;
    let paid = pay(&url, token, PAYEE, 1_000_000u64, B256::repeat_byte(7)).await;
    anvil.mine(1).await;

    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    // The WebSocket transport, for coverage of the ws:// path.
    let source = GoatRpc::connect(
        &format!("ws://127.0.0.1:{}", anvil.port),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let mut syncer = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        CHAIN_ID,
        Finality::Depth(5),
        opts(),
    )
    .await
    .unwrap();
    syncer.sync_once().await.unwrap();
    let policy = PaymentPolicy {
        tokens: vec![token],
        payees: vec![PAYEE],
        allow_plain_transfers: false,
    };
    let proof = prove(&source, &store, paid.tx_hash, &policy).await.unwrap();
    // Not final yet (depth 5): accepted with confirmations only.
    assert!(matches!(
        verify_goat_proof(&proof, &store, CHAIN_ID, Acceptance::Finalized, false),
        Err(GoatProofError::NotFinalized { .. })
    ));
    verify_goat_proof(
        &proof,
        &store,
        CHAIN_ID,
        Acceptance::Confirmations(2),
        false,
    )
    .unwrap();

    // Reorg: revert to before the payment and mine a longer branch without it.
    anvil.rpc("evm_revert", json!([snap])).await;
    anvil.mine(3).await;
    let report = syncer.sync_once().await.unwrap();
    assert_eq!(report.reorgs.len(), 1, "{report:?}");
    match &report.reorgs[0] {
        GoatEvent::TipChanged {
            fork_point,
            reverted,
            connected,
        } => {
            assert!(
                reverted.iter().any(|h| h.hash() == proof.block_hash),
                "the payment's block was reverted"
            );
            assert_eq!(fork_point.0, proof.block_number - 1);
            assert_eq!(connected.len(), 3);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(report.tip.0, anvil.head().await);
    assert!(matches!(
        verify_goat_proof(
            &proof,
            &store,
            CHAIN_ID,
            Acceptance::Confirmations(1),
            false
        ),
        Err(GoatProofError::NotOnBestChain { .. })
    ));

    // A reorg below finality is refused, loudly, and the store is untouched.
    anvil.mine(10).await;
    let before = syncer.sync_once().await.unwrap();
    anvil.rpc("evm_revert", json!([deep])).await;
    anvil.mine(40).await;
    let err = syncer.sync_once().await.unwrap_err();
    match &err {
        GoatSyncError::Invalid { error, .. } => {
            assert!(
                matches!(error.rule, GoatRule::ReorgBelowFinality { .. }),
                "{err}"
            )
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("REORG BELOW FINALITY"), "{err}");
    assert_eq!(store.goat_tip().unwrap(), Some(before.tip));
    assert_eq!(store.goat_finalized().unwrap(), Some(before.finalized));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_the_chain_and_refuses_another_genesis() {
    let anvil = TestAnvil::start(&[]).await;
    anvil.mine(30).await;
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let source = rpc(&anvil).await;
    let tip = {
        let mut s = GoatSyncer::open(
            &source,
            &store,
            GoatCheckpoint::DevnetGenesis,
            CHAIN_ID,
            Finality::Tag,
            opts(),
        )
        .await
        .unwrap();
        s.sync_once().await.unwrap().tip
    };
    anvil.mine(5).await;
    let mut s = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        CHAIN_ID,
        Finality::Tag,
        opts(),
    )
    .await
    .unwrap();
    assert_eq!(s.chain().tip().hash(), tip.1);
    let r = s.sync_once().await.unwrap();
    assert_eq!(r.new_headers, 5);
    drop(s);
    // Another node (another genesis) against the same store.
    let other = TestAnvil::start(&["--timestamp", "1000"]).await;
    let other_source = rpc(&other).await;
    let err = GoatSyncer::open(
        &other_source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        CHAIN_ID,
        Finality::Tag,
        opts(),
    )
    .await
    .err()
    .expect("another genesis is refused");
    assert!(err.to_string().contains("use another --data-dir"), "{err}");
    // A wrong chain id is refused.
    let err = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        48816,
        Finality::Tag,
        opts(),
    )
    .await
    .err()
    .expect("wrong chain id is refused");
    assert!(
        matches!(err, GoatSyncError::WrongChain { found: 2345, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_our_finalized_height_is_waited_for_never_a_reorg_or_a_panic() {
    let anvil = TestAnvil::start(&[]).await;
    anvil.mine(3).await;
    // The node will later come back at height 3, as a lagging (or
    // load-balanced) backend would: same blocks, lower head.
    let behind = anvil.rpc("evm_snapshot", json!([])).await;
    anvil.mine(17).await;
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let source = rpc(&anvil).await;
    let mut syncer = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::DevnetGenesis,
        CHAIN_ID,
        Finality::Depth(2),
        opts(),
    )
    .await
    .unwrap();
    let synced = syncer.sync_once().await.unwrap();
    assert_eq!(synced.tip.0, 20);
    assert_eq!(synced.finalized.0, 18);

    anvil.rpc("evm_revert", json!([behind])).await;
    assert_eq!(anvil.head().await, 3);
    let err = syncer.sync_once().await.unwrap_err();
    assert!(
        matches!(
            err,
            GoatSyncError::NodeBehind {
                head: 3,
                finalized: 18,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient(), "a lagging node is waited for: {err}");
    assert!(
        err.to_string()
            .contains("at height 3, we have finalized 18"),
        "{err}"
    );
    // Nothing was rewound.
    assert_eq!(store.goat_tip().unwrap(), Some(synced.tip));
    assert_eq!(store.goat_finalized().unwrap(), Some(synced.finalized));
}
