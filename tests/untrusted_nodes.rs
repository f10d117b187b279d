//! gmrelay trusts no node: a node that substitutes the checkpoint, a store
//! anchored on something else, a node that lags behind what we hold as final.
//! The hostile nodes are small JSON-RPC servers in the test
//! (`common::fakenode`) serving real mainnet headers.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::BlockHash;
use common::cli::{gmrelay, text};
use common::fakenode::{rpc_error, FakeNode};
use gmrelay::btc::chain::{Anchor, HeaderChain};
use gmrelay::btc::checkpoint::Checkpoint;
use gmrelay::btc::BtcNetwork;
use gmrelay::store::{RocksStore, Store};
use serde_json::{json, Value};

/// The mainnet checkpoint (858,816), its ten ancestors and its child, from
/// the real headers in tests/fixtures/btc/mainnet.json.
struct Mainnet {
    below: Vec<Header>,
    checkpoint: Header,
    next: Header,
}

fn mainnet() -> Mainnet {
    let v: Value =
        serde_json::from_str(include_str!("fixtures/btc/mainnet.json")).expect("fixture");
    let decode = |v: &Value| -> Header {
        bitcoin::consensus::deserialize(&hex::decode(v.as_str().unwrap()).unwrap()).unwrap()
    };
    let cp = &v["checkpoint"];
    Mainnet {
        below: cp["below"].as_array().unwrap().iter().map(decode).collect(),
        checkpoint: decode(&cp["header"]),
        next: decode(&cp["next"]),
    }
}

const CP_HEIGHT: u32 = 858_816;

/// A bitcoind look-alike on mainnet serving the fixture's chain
/// (858,806..=858,817); with `substitute`, asked for the checkpoint header it
/// serves its child instead: a real header with real proof of work.
fn fake_bitcoind(substitute: bool) -> FakeNode {
    let m = mainnet();
    let mut by_height: Vec<(u32, Header)> = Vec::new();
    for (i, h) in m.below.iter().enumerate() {
        by_height.push((CP_HEIGHT - 10 + i as u32, *h));
    }
    by_height.push((CP_HEIGHT, m.checkpoint));
    by_height.push((CP_HEIGHT + 1, m.next));
    let by_hash: HashMap<BlockHash, Header> = by_height
        .iter()
        .map(|(_, h)| (h.block_hash(), *h))
        .collect();
    let (cp_hash, next) = (m.checkpoint.block_hash(), m.next);
    FakeNode::start(move |method, params| match method {
        "getblockchaininfo" => Ok(json!({
            "chain": "main",
            "blocks": CP_HEIGHT + 1,
            "bestblockhash": next.block_hash().to_string(),
        })),
        "getblockhash" => {
            let h = params[0].as_u64().unwrap_or(0) as u32;
            by_height
                .iter()
                .find(|(height, _)| *height == h)
                .map(|(_, hd)| json!(hd.block_hash().to_string()))
                .ok_or_else(|| rpc_error(-8, "Block height out of range"))
        }
        "getblockheader" => {
            let hash: BlockHash = params[0]
                .as_str()
                .unwrap_or("")
                .parse()
                .map_err(|_| rpc_error(-8, "bad hash"))?;
            let header = if substitute && hash == cp_hash {
                next
            } else {
                *by_hash
                    .get(&hash)
                    .ok_or_else(|| rpc_error(-5, "Block not found"))?
            };
            Ok(json!(hex::encode(bitcoin::consensus::serialize(&header))))
        }
        other => Err(rpc_error(-32601, format!("Method not found: {other}"))),
    })
}

fn mainnet_env<'a>(node: &'a FakeNode, data: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GMRELAY_DATA_DIR", data),
        ("GMRELAY_BTC_NETWORK", "mainnet"),
        ("GMRELAY_BTC_RPC_URL", node.url.as_str()),
    ]
}

#[test]
fn a_node_serving_another_header_for_the_checkpoint_is_refused_at_once() {
    let cp = Checkpoint::builtin(BtcNetwork::Mainnet);
    let m = mainnet();
    assert_eq!(
        m.checkpoint.block_hash(),
        cp.hash,
        "fixture = built-in checkpoint"
    );
    let node = fake_bitcoind(true);
    let data = tempfile::tempdir().unwrap();
    let data_s = data.path().to_str().unwrap();
    let o = gmrelay(&["headers", "sync"], &mainnet_env(&node, data_s));
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    // Both hashes and the node are named.
    assert!(t.contains(&cp.hash.to_string()), "{t}");
    assert!(t.contains(&m.next.block_hash().to_string()), "{t}");
    assert!(t.contains(&node.url), "{t}");
    assert!(t.contains("not to the trusted checkpoint hash"), "{t}");
    // Permanent: asked once, never retried.
    let asked = node
        .calls("getblockheader")
        .iter()
        .filter(|p| p[0] == json!(cp.hash.to_string()))
        .count();
    assert_eq!(
        asked, 1,
        "the checkpoint header was asked for {asked} times"
    );
    // Nothing anchored.
    let store = RocksStore::open(&data.path().join("db")).unwrap();
    assert_eq!(store.btc_origin().unwrap(), None);

    // The honest node anchors and syncs the same empty store.
    let honest = fake_bitcoind(false);
    drop(store);
    let o = gmrelay(&["headers", "sync"], &mainnet_env(&honest, data_s));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("synced: tip 858817"), "{}", text(&o));
    // After a restart, a hostile node cannot move the anchor either.
    let o = gmrelay(
        &["headers", "status", "--json"],
        &mainnet_env(&node, data_s),
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tip"]["height"], 858_817);
    let o = gmrelay(&["headers", "sync"], &mainnet_env(&node, data_s));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_store_anchored_on_another_header_is_refused_after_a_restart() {
    // What a gmrelay that did not check the checkpoint could have written:
    // the origin record names the checkpoint, the header stored at its
    // height is another block.
    let cp = Checkpoint::builtin(BtcNetwork::Mainnet);
    let m = mainnet();
    let data = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(&data.path().join("db")).unwrap();
        let mut ancestors = m.below[1..].to_vec();
        ancestors.push(m.checkpoint);
        let chain = HeaderChain::from_anchor(
            BtcNetwork::Mainnet.rules(),
            Anchor {
                trusted_hash: m.next.block_hash(),
                header: m.next,
                height: CP_HEIGHT,
                chainwork: m.next.work(),
                ancestors,
            },
        )
        .unwrap();
        store
            .btc_init(
                BtcNetwork::Mainnet,
                (cp.height, cp.hash),
                &chain.anchor_changes(),
            )
            .unwrap();
    }
    let node = fake_bitcoind(false);
    let data_s = data.path().to_str().unwrap();
    let o = gmrelay(&["headers", "sync"], &mainnet_env(&node, data_s));
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("is anchored on block"), "{t}");
    assert!(t.contains(&m.next.block_hash().to_string()), "{t}");
    assert!(t.contains(&cp.hash.to_string()), "{t}");
    assert!(t.contains("Delete"), "{t}");
}

/// A GOAT node whose `eth_getBlockByHash` answers every hash with one real
/// Ethereum mainnet header (London, block 12,965,001).
fn fake_goat(chain_id: u64) -> FakeNode {
    let header: Value =
        serde_json::from_str(include_str!("fixtures/eth/london.json")).expect("fixture");
    FakeNode::start(move |method, _params| match method {
        "eth_chainId" => Ok(json!(format!("{chain_id:#x}"))),
        "eth_getBlockByHash" => Ok(header.clone()),
        "eth_blockNumber" => Ok(header["number"].clone()),
        other => Err(rpc_error(-32601, format!("method {other} not found"))),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goat_node_serving_another_block_for_the_checkpoint_is_refused_at_once() {
    use gmrelay::goat::chain::{Finality, GoatRule};
    use gmrelay::goat::checkpoint::GoatCheckpoint;
    use gmrelay::goat::source::GoatRpc;
    use gmrelay::goat::sync::{GoatSyncError, GoatSyncOptions, GoatSyncer};

    let node = fake_goat(2345);
    let trusted: alloy::primitives::B256 = alloy::primitives::B256::repeat_byte(0x5a);
    let served: alloy::primitives::B256 =
        "0xa32d159805750cbe428b799a49b85dcb2300f61d806786f317260e721727d162"
            .parse()
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let source = GoatRpc::connect(&node.url, Duration::from_secs(5))
        .await
        .unwrap();
    let err = GoatSyncer::open(
        &source,
        &store,
        GoatCheckpoint::Trusted {
            number: 12_965_001,
            hash: trusted,
        },
        2345,
        Finality::Tag,
        GoatSyncOptions {
            max_retry: Duration::from_secs(60),
            ..GoatSyncOptions::default()
        },
    )
    .await
    .err()
    .expect("a substituted checkpoint is refused");
    match &err {
        GoatSyncError::Invalid { error, .. } => {
            assert_eq!(error.hash, served);
            assert_eq!(error.rule, GoatRule::CheckpointMismatch { trusted });
        }
        e => panic!("{e}"),
    }
    let t = err.to_string();
    assert!(
        t.contains(&node.url) && t.contains(&trusted.to_string()),
        "{t}"
    );
    assert_eq!(
        node.calls("eth_getBlockByHash").len(),
        1,
        "asked once, not retried"
    );
    assert_eq!(store.goat_origin().unwrap(), None, "nothing anchored");
}
