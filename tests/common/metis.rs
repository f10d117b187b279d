//! Shared helpers of the Metis integration tests: a Metis anvil (chain 1088,
//! Shanghai) with the three contracts deployed through the library, a
//! regtest Bitcoin payment synced and relayed, and a GOAT EIP-3009 payment
//! synced and proven. Every process is killed on drop.

#![allow(dead_code)]

use gmrelay::metis::invoice_id;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use bitcoin::{Amount, ScriptBuf};
use gmrelay::btc::checkpoint::Checkpoint;
use gmrelay::btc::proof::{build_proof, BtcProof};
use gmrelay::btc::sync::{SyncOptions, Syncer};
use gmrelay::btc::BtcNetwork;
use gmrelay::devnet::{payee_script, Bitcoind, Payer};
use gmrelay::goat::chain::Finality;
use gmrelay::goat::checkpoint::GoatCheckpoint;
use gmrelay::goat::devnet::{self as goat_devnet, Anvil, RELAYER_KEY};
use gmrelay::goat::payment::PaymentPolicy;
use gmrelay::goat::proof::{prove_payment, GoatProof};
use gmrelay::goat::receipts::BlockReceipts;
use gmrelay::goat::source::{GoatRpc, GoatSource};
use gmrelay::goat::sync::{GoatSyncOptions, GoatSyncer};
use gmrelay::metis::attest::{devnet_attester_keys, DEVNET_THRESHOLD};
use gmrelay::metis::bindings::{DecodedRevert, PaymentSettlement};
use gmrelay::metis::deploy::{self, BtcCheckpointArgs, DeployParams, Deployment};
use gmrelay::metis::invoice::{SignedInvoice, Terms};
use gmrelay::metis::relay::{relay_headers, RelayOptions};
use gmrelay::metis::sink::{AlloySink, MetisError, MetisSink};
use gmrelay::rail::Rail;
use gmrelay::store::{RocksStore, Store};

/// Metis chain id.
pub const METIS: u64 = 1088;
/// GOAT chain id.
pub const GOAT: u64 = 2345;
/// The devnet GOAT payee.
pub const GOAT_PAYEE: Address = Address::new([
    0x70, 0x99, 0x79, 0x70, 0xC5, 0x18, 0x12, 0xdc, 0x3A, 0x01, 0x0C, 0x7d, 0x01, 0xb5, 0x0e, 0x0d,
    0x17, 0xdc, 0x79, 0xC8,
]);

/// A Metis anvil: chain 1088, Shanghai.
pub async fn metis_anvil() -> Anvil {
    Anvil::start(METIS, &["--hardfork", "shanghai"])
        .await
        .expect("anvil starts (set ANVIL_EXE)")
}

/// A GOAT anvil: chain 2345.
pub async fn goat_anvil() -> Anvil {
    Anvil::start(GOAT, &[]).await.expect("anvil starts")
}

/// BtcLightClient's arguments for a checkpoint at regtest genesis.
pub fn regtest_genesis_args() -> BtcCheckpointArgs {
    BtcCheckpointArgs::regtest_genesis()
}

/// Deploys the three contracts (3-of-5 devnet committee) and connects a signing sink.
pub async fn deploy(
    metis: &Anvil,
    checkpoint: BtcCheckpointArgs,
    min_btc_confirmations: u64,
) -> (Deployment, AlloySink) {
    let params = DeployParams {
        checkpoint,
        committee: devnet_attester_keys().iter().map(|k| k.address()).collect(),
        threshold: DEVNET_THRESHOLD,
        goat_chain_id: GOAT,
        min_btc_confirmations,
        goat_light_client: None,
    };
    let d = deploy::deploy(
        &metis.url(),
        METIS,
        goat_devnet::signer(RELAYER_KEY),
        &params,
    )
    .await
    .expect("deploys");
    let sink = AlloySink::connect(
        &metis.url(),
        METIS,
        d.contracts(),
        Some(goat_devnet::signer(RELAYER_KEY)),
        Duration::from_secs(30),
    )
    .await
    .expect("connects");
    (d, sink)
}

/// Asserts that `r` failed with the contract's custom error `name`; returns it decoded.
#[track_caller]
pub fn expect_revert<T: std::fmt::Debug>(r: Result<T, MetisError>, name: &str) -> DecodedRevert {
    match r {
        Err(MetisError::Reverted { revert, .. }) => {
            assert_eq!(revert.name, name, "expected {name}, got {revert}");
            revert
        }
        other => panic!("expected a {name} revert, got {other:?}"),
    }
}

/// Moves the Metis clock forward by `secs` and mines a block.
pub async fn advance_time(sink: &AlloySink, secs: u64) {
    let p = sink.provider();
    p.raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (secs,))
        .await
        .unwrap();
    p.raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .unwrap();
}

/// The BTC rail: a regtest bitcoind, two invoice payments in one block (so
/// the block has three transactions), synced into a store, the contracts
/// deployed from the store's checkpoint, and the headers relayed.
pub struct BtcFixture {
    pub node: Bitcoind,
    pub dir: tempfile::TempDir,
    pub store: RocksStore,
    pub metis: Anvil,
    pub deployment: Deployment,
    pub sink: AlloySink,
    pub payer: Payer,
    pub payee: ScriptBuf,
    /// The ref the first payment carries (50,000 sat to `payee`).
    pub salt: B256,
    /// The id of the test merchant's invoice with ref `salt`.
    pub id: B256,
    /// The ref the second payment carries (40,000 sat to `payee`).
    pub salt2: B256,
    /// The id of the test merchant's invoice with ref `salt2`.
    pub id2: B256,
    pub proof: BtcProof,
    pub proof2: BtcProof,
    pub block: bitcoin::Block,
}

/// Syncs the node into the store.
pub async fn sync_btc(node: &Bitcoind, store: &RocksStore) {
    let opts = SyncOptions {
        batch_size: 500,
        max_retry: Duration::from_secs(5),
        initial_retry: Duration::from_millis(10),
    };
    let mut s = Syncer::open(
        node.rpc(),
        store,
        &Checkpoint::builtin(BtcNetwork::Regtest),
        opts,
    )
    .await
    .unwrap();
    s.sync_once(None).await.unwrap();
}

/// Relays the store's best chain to BtcLightClient.
pub async fn relay(store: &RocksStore, sink: &AlloySink, batch: u32) {
    relay_headers(
        store,
        sink,
        RelayOptions {
            batch,
            max_retry: Duration::from_secs(5),
        },
        |_| {},
    )
    .await
    .unwrap();
}

impl BtcFixture {
    /// Pays, mines `confirmations` blocks (the payment's block included), syncs, deploys, relays.
    pub async fn new(confirmations: u32) -> Self {
        let node = Bitcoind::start_temp().await.expect("bitcoind starts");
        let payer = Payer::from_seed([0x21; 32]);
        let payee = payee_script([0x22; 32]);
        node.node().mine(102, &payer.address).await.unwrap();
        let salt = B256::repeat_byte(0xa1);
        let salt2 = B256::repeat_byte(0xa2);
        let id = invoice_id(creator(), salt);
        let id2 = invoice_id(creator(), salt2);
        let rpc = node.node();
        let tx = payer
            .pay(
                rpc.coinbase_utxo(&payer, 1).await.unwrap(),
                &payee,
                Amount::from_sat(50_000),
                &salt.0,
                Amount::from_sat(1_000),
            )
            .unwrap();
        let tx2 = payer
            .pay(
                rpc.coinbase_utxo(&payer, 2).await.unwrap(),
                &payee,
                Amount::from_sat(40_000),
                &salt2.0,
                Amount::from_sat(2_000),
            )
            .unwrap();
        let txid = rpc.send(&tx).await.unwrap();
        let txid2 = rpc.send(&tx2).await.unwrap();
        let hashes = rpc.mine(confirmations, &payer.address).await.unwrap();
        let block = gmrelay::btc::source::BtcSource::block(node.rpc(), &hashes[0])
            .await
            .unwrap();
        assert_eq!(block.txdata.len(), 3);
        let height = 103;
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        sync_btc(&node, &store).await;
        let proof = build_proof(BtcNetwork::Regtest, &block, height, txid, confirmations).unwrap();
        let proof2 =
            build_proof(BtcNetwork::Regtest, &block, height, txid2, confirmations).unwrap();
        let metis = metis_anvil().await;
        let (deployment, sink) = deploy(&metis, deploy::checkpoint_args(&store).unwrap(), 6).await;
        relay(&store, &sink, 100).await;
        BtcFixture {
            node,
            dir,
            store,
            metis,
            deployment,
            sink,
            payer,
            payee,
            salt,
            id,
            salt2,
            id2,
            proof,
            proof2,
            block,
        }
    }

    /// The test merchant's terms for a Bitcoin payment carrying `reference`.
    pub fn terms(&self, reference: B256, payee: &ScriptBuf, amount: u64) -> Terms {
        btc_terms(reference, payee, amount)
    }

    /// Creates the invoice on-chain (the sink's key is the merchant).
    pub async fn invoice(&self, reference: B256, payee: &ScriptBuf, amount: u64) -> SignedInvoice {
        let terms = self.terms(reference, payee, amount);
        self.sink.create_invoice(&terms).await.unwrap();
        SignedInvoice::on_chain(terms)
    }

    /// Signs the invoice off-chain as the test merchant.
    pub fn signed(&self, reference: B256, payee: &ScriptBuf, amount: u64) -> SignedInvoice {
        sign(self.terms(reference, payee, amount), &self.sink)
    }

    /// The contract's group for `proof` (header chain from the store) paying `invoice`.
    pub async fn group(
        &self,
        invoice: &SignedInvoice,
        proof: &BtcProof,
    ) -> PaymentSettlement::BtcGroup {
        let headers = gmrelay::metis::settle::btc_header_chain(
            &self.store,
            &self.sink,
            proof.block_hash,
            proof.block_height,
        )
        .await
        .unwrap();
        PaymentSettlement::BtcGroup {
            blk: gmrelay::metis::settle::btc_block(proof, headers),
            payments: vec![gmrelay::metis::settle::btc_payment(invoice, proof)],
        }
    }
}

/// The test merchant's terms (merchant: the sinks' key; no service; no expiry to speak of).
pub fn test_terms(rail: Rail, reference: B256, payee: Bytes, asset: Address, amount: u64) -> Terms {
    Terms {
        merchant: creator(),
        reference,
        rail,
        payee,
        asset,
        amount: U256::from(amount),
        expiry: u64::from(u32::MAX),
        service: Address::ZERO,
        service_id: B256::ZERO,
    }
}

/// The test merchant's Bitcoin terms.
pub fn btc_terms(reference: B256, payee: &ScriptBuf, amount: u64) -> Terms {
    test_terms(
        Rail::Btc,
        reference,
        Bytes::from(payee.to_bytes()),
        Address::ZERO,
        amount,
    )
}

/// Signs `terms` with the test merchant's key for the sink's PaymentSettlement.
pub fn sign(terms: Terms, sink: &AlloySink) -> SignedInvoice {
    SignedInvoice::sign(
        terms,
        &goat_devnet::signer(RELAYER_KEY),
        METIS,
        sink.settlement_address(),
    )
    .unwrap()
}

/// The GOAT rail: a GOAT anvil with the test stablecoin (and a look-alike),
/// one EIP-3009 payment per call of [`GoatFixture::pay`], synced into a store.
pub struct GoatFixture {
    pub goat: Anvil,
    pub metis: Anvil,
    pub dir: tempfile::TempDir,
    pub store: RocksStore,
    pub deployment: Deployment,
    pub sink: AlloySink,
    pub token: Address,
    pub other_token: Address,
    pub source: GoatRpc,
}

impl GoatFixture {
    /// Starts both anvils, deploys two tokens and the Metis contracts.
    pub async fn new() -> Self {
        let goat = goat_anvil().await;
        let metis = metis_anvil().await;
        let token = goat_devnet::deploy_token(&goat.url(), "USD Coin", "USDC", "2")
            .await
            .unwrap();
        let other_token = goat_devnet::deploy_token(&goat.url(), "USD Coin", "USDC", "2")
            .await
            .unwrap();
        for t in [token, other_token] {
            goat_devnet::mint(
                &goat.url(),
                t,
                goat_devnet::payer_address(),
                U256::from(100_000_000u64),
            )
            .await
            .unwrap();
        }
        let (deployment, sink) = deploy(&metis, regtest_genesis_args(), 6).await;
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        let source = GoatRpc::connect(&goat.url(), Duration::from_secs(30))
            .await
            .unwrap();
        GoatFixture {
            goat,
            metis,
            dir,
            store,
            deployment,
            sink,
            token,
            other_token,
            source,
        }
    }

    /// Pays `amount` of `token` to `to` with EIP-3009 nonce `reference`; returns the tx hash.
    pub async fn pay(&self, token: Address, to: Address, amount: u64, reference: B256) -> B256 {
        goat_devnet::pay(
            &self.goat.url(),
            token,
            goat_devnet::PAYER_KEY,
            to,
            U256::from(amount),
            reference,
            true,
        )
        .await
        .unwrap()
        .tx_hash
    }

    /// Mines 3 blocks (finality depth 2) and syncs the GOAT store.
    pub async fn finalize_and_sync(&self) {
        goat_devnet::mine(&self.goat.url(), 3).await.unwrap();
        let opts = GoatSyncOptions {
            batch_size: 50,
            max_retry: Duration::from_secs(5),
            ..GoatSyncOptions::default()
        };
        let mut s = GoatSyncer::open(
            &self.source,
            &self.store,
            GoatCheckpoint::DevnetGenesis,
            GOAT,
            Finality::Depth(2),
            opts,
        )
        .await
        .unwrap();
        s.sync_once().await.unwrap();
    }

    /// The block (number, hash, index) and the receipts of the block holding `tx`.
    pub async fn block_of(&self, tx: B256) -> (u64, B256, u64, BlockReceipts) {
        let loc = self.source.tx_location(tx).await.unwrap().unwrap();
        let header = self.store.goat_header(&loc.block_hash).unwrap().unwrap();
        let receipts = self.source.block_receipts(loc.block_hash).await.unwrap();
        let block = BlockReceipts::from_rpc(
            loc.block_number,
            loc.block_hash,
            header.header().receipts_root,
            &receipts,
        )
        .unwrap();
        (loc.block_number, loc.block_hash, loc.tx_index, block)
    }

    /// gmrelay's proof of the payment in `tx` (policy: both tokens).
    pub async fn prove(&self, tx: B256) -> GoatProof {
        let policy = PaymentPolicy {
            tokens: vec![self.token, self.other_token],
            payees: vec![],
            allow_plain_transfers: false,
        };
        prove_payment(&self.source, &self.store, GOAT, tx, &policy)
            .await
            .unwrap()
    }

    /// The test merchant's GOAT terms for a payment carrying `reference`.
    pub fn terms(&self, reference: B256, asset: Address, to: Address, amount: u64) -> Terms {
        test_terms(
            Rail::Goat,
            reference,
            Bytes::copy_from_slice(to.as_slice()),
            asset,
            amount,
        )
    }

    /// Creates a GOAT invoice on-chain.
    pub async fn invoice(
        &self,
        reference: B256,
        asset: Address,
        to: Address,
        amount: u64,
    ) -> SignedInvoice {
        let terms = self.terms(reference, asset, to, amount);
        self.sink.create_invoice(&terms).await.unwrap();
        SignedInvoice::on_chain(terms)
    }

    /// Signs a GOAT invoice off-chain as the test merchant.
    pub fn signed(
        &self,
        reference: B256,
        asset: Address,
        to: Address,
        amount: u64,
    ) -> SignedInvoice {
        sign(self.terms(reference, asset, to, amount), &self.sink)
    }

    /// The contract's group for `proof` paying `invoice`, attested inline by
    /// `keys` (none: the block must be attested on-chain).
    pub async fn group(
        &self,
        invoice: &SignedInvoice,
        proof: &GoatProof,
        keys: &[alloy::signers::local::PrivateKeySigner],
    ) -> PaymentSettlement::GoatGroup {
        let fields = gmrelay::metis::settle::goat_fields(proof).unwrap();
        let sigs = if keys.is_empty() {
            Bytes::new()
        } else {
            let digest = gmrelay::metis::attest::attestation_digest(
                METIS,
                self.deployment.goat_header_store,
                GOAT,
                &fields,
            );
            gmrelay::metis::attest::pack_quorum(
                keys.iter()
                    .map(|k| (k.address(), gmrelay::metis::attest::sign_digest(k, digest)))
                    .collect(),
                keys.len() as u64,
            )
            .unwrap()
        };
        gmrelay::metis::settle::goat_group(
            gmrelay::metis::settle::goat_block(&fields, sigs),
            &[(invoice, proof)],
        )
        .unwrap()
    }

    /// The attestation domain of the deployment.
    pub fn domain(&self) -> gmrelay::metis::attest::AttestDomain {
        gmrelay::metis::attest::AttestDomain {
            metis_chain_id: METIS,
            store: self.deployment.goat_header_store,
        }
    }

    /// Attests block `number` with the first three devnet keys.
    pub async fn attest(&self, number: u64) {
        let keys = devnet_attester_keys();
        gmrelay::metis::attest::attest_goat(
            &self.store,
            &self.sink,
            self.domain(),
            number,
            &keys[..3],
            &[],
            true,
        )
        .await
        .unwrap();
    }
}

/// The account the test sinks sign with, and so the merchant of every test invoice.
pub fn creator() -> Address {
    gmrelay::goat::devnet::signer(gmrelay::goat::devnet::RELAYER_KEY).address()
}

/// The id of the test merchant's invoice with ref `salt`.
pub fn id_for(salt: B256) -> B256 {
    invoice_id(creator(), salt)
}
