//! Integration tests against a real regtest bitcoind, started per test on a
//! free loopback port in a temporary directory (stopped and deleted on drop).

use std::time::Duration;

use bitcoin::{Amount, ScriptBuf};
use gmrelay::btc::checkpoint::Checkpoint;
use gmrelay::btc::headerfile;
use gmrelay::btc::proof::{build_proof, verify_proof, PaymentError, ProofError};
use gmrelay::btc::source::{BtcSource, FaultySource, SourceError};
use gmrelay::btc::sync::{SyncError, SyncOptions, Syncer};
use gmrelay::btc::BtcNetwork;
use gmrelay::devnet::{payee_script, Bitcoind, Payer};
use gmrelay::store::{RocksStore, Store, StoreError};

const NET: BtcNetwork = BtcNetwork::Regtest;

fn regtest_checkpoint() -> Checkpoint {
    Checkpoint::builtin(NET)
}

fn fast_retry() -> SyncOptions {
    SyncOptions {
        batch_size: 500,
        max_retry: Duration::from_secs(3),
        initial_retry: Duration::from_millis(10),
    }
}

async fn node() -> Bitcoind {
    Bitcoind::start_temp()
        .await
        .expect("bitcoind starts (run `make setup`)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_thousands_of_headers_and_resumes_after_reopen() {
    let node = node().await;
    let payer = Payer::from_seed([1; 32]);
    node.node().mine(2500, &payer.address).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path()).unwrap();
        let mut s = Syncer::open(node.rpc(), &store, &regtest_checkpoint(), fast_retry())
            .await
            .unwrap();
        let r = s.sync_once(None).await.unwrap();
        assert_eq!(r.tip_height, 2500);
        assert_eq!(r.new_headers, 2500);
        assert_eq!(
            r.tip_hash,
            Some(node.node().block_hash(2500).await.unwrap())
        );
    }
    // Reopen: resumes from the stored tip, fetches only the new blocks.
    node.node().mine(30, &payer.address).await.unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    assert_eq!(store.btc_tip().unwrap().unwrap().0, 2500);
    let mut s = Syncer::open(node.rpc(), &store, &regtest_checkpoint(), fast_retry())
        .await
        .unwrap();
    let r = s.sync_once(None).await.unwrap();
    assert_eq!((r.tip_height, r.new_headers), (2530, 30));
    // Every stored best-chain hash equals bitcoind's.
    for h in [0, 1, 499, 500, 2016, 2530] {
        assert_eq!(
            store.btc_best_hash(h).unwrap(),
            Some(node.node().block_hash(h).await.unwrap()),
            "height {h}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_reorg_to_the_heavier_chain() {
    let node = node().await;
    let payer = Payer::from_seed([2; 32]);
    node.node().mine(150, &payer.address).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let mut s = Syncer::open(node.rpc(), &store, &regtest_checkpoint(), fast_retry())
        .await
        .unwrap();
    s.sync_once(None).await.unwrap();
    let old_140 = store.btc_best_hash(140).unwrap().unwrap();
    // invalidateblock at 140, then a longer fork of 12 (heights 140..151).
    let new_tip = node.node().reorg(11, 1).await.unwrap();
    let r = s.sync_once(None).await.unwrap();
    assert_eq!(r.reorgs, vec![11]);
    assert_eq!((r.tip_height, r.tip_hash), (151, Some(new_tip)));
    assert_ne!(store.btc_best_hash(140).unwrap(), Some(old_140));
    assert_eq!(
        store.btc_best_hash(139).unwrap(),
        Some(node.node().block_hash(139).await.unwrap())
    );
    // The reorged-out header is kept, off the best chain.
    assert!(store.btc_header(&old_140).unwrap().is_some());
    assert_eq!(store.btc_best_height_of(&old_140).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_is_proven_verified_and_fails_after_a_reorg() {
    let node = node().await;
    let rpc = node.node();
    let payer = Payer::from_seed([3; 32]);
    rpc.mine(101, &payer.address).await.unwrap();
    let payee = payee_script([4; 32]);
    let invoice = [0x5a; 32];
    let utxo = rpc.coinbase_utxo(&payer, 1).await.unwrap();
    let tx = payer
        .pay(
            utxo,
            &payee,
            Amount::from_sat(25_000),
            &invoice,
            Amount::from_sat(500),
        )
        .unwrap();
    let txid = rpc.send(&tx).await.unwrap();
    let mined = rpc.mine(6, &payer.address).await.unwrap();
    let block_hash = mined[0];

    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let mut s = Syncer::open(node.rpc(), &store, &regtest_checkpoint(), fast_retry())
        .await
        .unwrap();
    s.sync_once(None).await.unwrap();

    assert_eq!(node.rpc().tx_block(&txid).await.unwrap(), Some(block_hash));
    let block = node.rpc().block(&block_hash).await.unwrap();
    let proof = build_proof(NET, &block, 102, txid, 6).unwrap();
    let v = verify_proof(&proof, &store, NET, 6).unwrap();
    assert_eq!((v.txid(), v.height(), v.confirmations()), (txid, 102, 6));
    let pay = v.payment(&payee, 25_000, &invoice).unwrap();
    assert_eq!((pay.txid, pay.vout, pay.amount), (txid, 0, 25_000));
    assert_eq!(
        v.payment(&payee, 25_001, &invoice),
        Err(PaymentError::AmountTooLow {
            paid: 25_000,
            required: 25_001
        })
    );
    assert!(matches!(
        v.payment(&ScriptBuf::new(), 1, &invoice),
        Err(PaymentError::NoOutputToScript(_))
    ));
    assert!(matches!(
        v.payment(&payee, 1, &[0; 32]),
        Err(PaymentError::MissingInvoiceId(_))
    ));
    assert!(matches!(
        verify_proof(&proof, &store, NET, 7),
        Err(ProofError::TooFewConfirmations {
            confirmations: 6,
            required: 7,
            ..
        })
    ));

    // Tampering with any part of the proof fails.
    let mut t = proof.clone();
    t.tx.raw[10] ^= 1;
    assert!(verify_proof(&t, &store, NET, 1).is_err());
    let mut t = proof.clone();
    t.header[36] ^= 1;
    assert!(matches!(
        verify_proof(&t, &store, NET, 1),
        Err(ProofError::HeaderHashMismatch { .. })
    ));
    let mut t = proof.clone();
    t.tx.index ^= 1;
    assert!(verify_proof(&t, &store, NET, 1).is_err());
    let mut t = proof.clone();
    t.block_height = 103;
    assert!(matches!(
        verify_proof(&t, &store, NET, 1),
        Err(ProofError::HeightMismatch { .. })
    ));

    // Reorg the block out with empty blocks (the payment goes back to the
    // mempool and stays there): the proof stops verifying.
    rpc.invalidate(&block_hash).await.unwrap();
    rpc.mine_empty(8, &payer.address).await.unwrap();
    let r = s.sync_once(None).await.unwrap();
    assert_eq!(r.reorgs, vec![6]);
    assert!(matches!(
        verify_proof(&proof, &store, NET, 1),
        Err(ProofError::NotOnBestChain { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_corrupt_headers_rejected() {
    let node = node().await;
    let payer = Payer::from_seed([5; 32]);
    node.node().mine(1200, &payer.address).await.unwrap();

    // Every third call fails: the sync still completes.
    let flaky = FaultySource::new(node.rpc(), 3);
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let mut s = Syncer::open(&flaky, &store, &regtest_checkpoint(), fast_retry())
        .await
        .unwrap();
    let r = s.sync_once(None).await.unwrap();
    assert_eq!(r.tip_height, 1200);
    assert!(flaky.injected.load(std::sync::atomic::Ordering::SeqCst) > 0);

    // A source that alters headers: rejected as inconsistent, store untouched.
    node.node().mine(10, &payer.address).await.unwrap();
    let liar = FaultySource::new(node.rpc(), 0).corrupting_headers();
    let mut s = Syncer::open(&liar, &store, &regtest_checkpoint(), fast_retry())
        .await
        .unwrap();
    let err = s.sync_once(None).await.unwrap_err();
    assert!(
        matches!(err, SyncError::Source(SourceError::Inconsistent { .. })),
        "{err}"
    );
    assert_eq!(store.btc_tip().unwrap().unwrap().0, 1200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_network_and_missing_checkpoint_are_named() {
    let node = node().await;
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    // A mainnet checkpoint against a regtest node.
    let cp = Checkpoint::builtin(BtcNetwork::Mainnet);
    let err = match Syncer::open(node.rpc(), &store, &cp, fast_retry()).await {
        Ok(mut s) => s.sync_once(None).await.unwrap_err(),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        matches!(err, SyncError::CheckpointMissing { height: 858816, .. }),
        "{text}"
    );
    assert!(text.contains("00000000000000000000fcddd3a12dff20bb1a246e073b3d7caccb0453e24ac2"));
    assert!(
        store.btc_origin().unwrap().is_none(),
        "nothing half-written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_header_file_names_the_bad_height() {
    let node = node().await;
    let payer = Payer::from_seed([6; 32]);
    node.node().mine(300, &payer.address).await.unwrap();
    let hashes = node.rpc().block_hashes(0, 301).await.unwrap();
    let headers = node.rpc().headers(&hashes).await.unwrap();
    let now = 2_000_000_000;
    let report = headerfile::verify_file(NET, &headers, 0, &[], now).unwrap();
    assert_eq!(report.count, 301);
    assert!(report.unchecked.is_empty(), "{:?}", report.unchecked);

    // Break the link at height 200.
    let mut bad = headers.clone();
    bad[200].prev_blockhash = bad[150].block_hash();
    let e = headerfile::verify_file(NET, &bad, 0, &[], now).unwrap_err();
    assert_eq!((e.index, e.height), (200, 200));
    assert!(e.to_string().contains("height 200"), "{e}");

    // A file starting mid-chain says what it could not check, unless anchored.
    let part = &headers[120..];
    let r = headerfile::verify_file(NET, part, 120, &[], now).unwrap();
    assert!(
        r.unchecked.iter().any(|(from, _, _)| *from == 120),
        "{:?}",
        r.unchecked
    );
    let anchors: Vec<_> = (109..120).map(|h| (h as u32, headers[h])).collect();
    let r = headerfile::verify_file(NET, part, 120, &anchors, now).unwrap();
    assert!(r.unchecked.is_empty(), "{:?}", r.unchecked);
    // A header dated more than 2 h after `now`, with a nonce that still
    // meets the target: refused by the future-time rule, by name.
    let mut late = headers[..50].to_vec();
    late[49].time = now + 3 * 3600;
    while !late[49].target().is_met_by(late[49].block_hash()) {
        late[49].nonce += 1;
    }
    let e = headerfile::verify_file(NET, &late, 0, &[], now).unwrap_err();
    assert_eq!(e.height, 49);
    assert!(e.rule.contains("in the future"), "{}", e.rule);
}

#[test]
fn store_refuses_another_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        s.force_schema_version(99).unwrap();
    }
    let err = RocksStore::open(dir.path()).unwrap_err();
    assert!(matches!(
        err,
        StoreError::SchemaMismatch {
            found: 99,
            supported: 4,
            ..
        }
    ));
    assert!(err.to_string().contains("schema version 99"));
}

#[test]
fn a_schema_1_store_is_migrated_to_4_keeping_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let headers = gmrelay::bench::generate_regtest_headers(5);
    {
        let s = RocksStore::open(dir.path()).unwrap();
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        let mut chain = gmrelay::btc::HeaderChain::from_anchor(
            NET.rules(),
            gmrelay::btc::chain::Anchor {
                trusted_hash: genesis.block_hash(),
                header: genesis,
                height: 0,
                chainwork: genesis.work(),
                ancestors: vec![],
            },
        )
        .unwrap();
        s.btc_init(NET, (0, genesis.block_hash()), &chain.anchor_changes())
            .unwrap();
        let c = chain.connect(&headers, 2_000_000_000).unwrap();
        s.btc_apply(&c.changes).unwrap();
        s.force_schema_version(1).unwrap();
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), 4);
    assert_eq!(s.btc_tip().unwrap(), Some((5, headers[4].block_hash())));
    // The new column families are there and empty.
    assert!(s.outbox_all().unwrap().is_empty());
    assert!(s.consensus_scan(b"").unwrap().is_empty());
    s.consensus_put(&[(b"evm/1".to_vec(), b"h".to_vec())])
        .unwrap();
    assert_eq!(s.consensus_get(b"evm/1").unwrap(), Some(b"h".to_vec()));
    assert!(s.daemon_scan(b"").unwrap().is_empty());
    s.daemon_write(&[(b"k".to_vec(), b"v".to_vec())], &[(7, b"x".to_vec())])
        .unwrap();
    assert_eq!(s.daemon_get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(s.outbox_all().unwrap(), vec![(7, b"x".to_vec())]);
    // 2 → 3 drops the v1 invoice records and the intake cursor, keeps the rest.
    s.daemon_write(
        &[
            (b"inv/old".to_vec(), b"{}".to_vec()),
            (b"cursor/intake".to_vec(), b"7".to_vec()),
            (b"cursor/btc_scan".to_vec(), b"{}".to_vec()),
        ],
        &[],
    )
    .unwrap();
    s.force_schema_version(2).unwrap();
    drop(s);
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), 4);
    assert_eq!(s.daemon_get(b"inv/old").unwrap(), None);
    assert_eq!(s.daemon_get(b"cursor/intake").unwrap(), None);
    assert_eq!(
        s.daemon_get(b"cursor/btc_scan").unwrap(),
        Some(b"{}".to_vec())
    );
    assert_eq!(s.daemon_get(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(s.outbox_all().unwrap(), vec![(7, b"x".to_vec())]);
}
