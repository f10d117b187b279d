//! `gmrelay run` against a real devnet (`gmrelay devnet up`: bitcoind
//! regtest, GOAT and Metis anvils), with Metis reached through a JSON-RPC
//! proxy that refuses what Metis Andromeda refuses (typed transactions, gas
//! prices far from `eth_gasPrice`). Every process is stopped at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use common::cli::{gmrelay, text};
use common::devnet::{metis_rules_proxy, settled_in, Devnet};
use common::fakenode::{forward, ProxyLog};
use serde_json::{json, Value};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gmrelay")
}

fn ok(args: &[&str]) -> String {
    let o = gmrelay(args, &[]);
    assert!(o.status.success(), "gmrelay {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A running relayer, killed on drop.
struct Relayer {
    child: Child,
    http: String,
    log: PathBuf,
}

impl Relayer {
    /// With the devnet's own config, logging to `relayer.log` there.
    fn on_devnet(devnet: &Devnet) -> Self {
        Relayer::start(
            &devnet.path().join("gmrelay.toml"),
            devnet.path().join("relayer.log"),
        )
    }
    fn start(config: &Path, log: PathBuf) -> Self {
        let text = std::fs::read_to_string(config).unwrap();
        let http = text
            .lines()
            .find_map(|l| l.strip_prefix("http = \""))
            .map(|l| l.trim_end_matches('"').to_string())
            .expect("run.http in the config");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("GMRELAY_LOG_LEVEL", "info,gmrelay=debug")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("gmrelay run starts");
        Relayer { child, http, log }
    }
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://{}{path}", self.http);
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", &url])
            .output()
            .ok()?;
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = t.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }
    fn status(&self) -> Option<Value> {
        let (code, body) = self.get("/status")?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Relayer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points the devnet's config at `metis_url` and another data dir (and, but
/// for variant "a", another HTTP port).
fn config_variant(devnet: &Devnet, name: &str, metis_url: &str, key: Option<&str>) -> PathBuf {
    let text = std::fs::read_to_string(devnet.path().join("gmrelay.toml")).unwrap();
    let d = devnet.file();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("rpc_url = ") && line.contains(d["metis_rpc_url"].as_str().unwrap()) {
            out.push_str(&format!("rpc_url = \"{metis_url}\"\n"));
        } else if line.starts_with("data_dir = ") {
            out.push_str(&format!(
                "data_dir = \"{}\"\n",
                devnet.path().join(format!("data-{name}")).display()
            ));
        } else if line.starts_with("http = ") && name != "a" {
            // Relayer "a" keeps the devnet's address, where `devnet invoice`
            // hands in signed invoices; the others listen elsewhere.
            out.push_str(&format!(
                "http = \"127.0.0.1:{}\"\n",
                gmrelay::devnet::free_port()
            ));
        } else if line.starts_with("key_file = ") && key.is_some() {
            let path = devnet.path().join(format!("{name}.key"));
            std::fs::write(&path, key.unwrap()).unwrap();
            out.push_str(&format!("key_file = \"{}\"\n", path.display()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = devnet.path().join(format!("{name}.toml"));
    std::fs::write(&path, out).unwrap();
    path
}

async fn settled_events(metis: &str, settlement: Address, id: B256) -> usize {
    settled_in(metis, settlement, id).await.len()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; relayer log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stage(r: &Relayer, id: &str) -> Option<String> {
    let s = r.status()?;
    let all = s["invoices"]["open"].as_array()?.clone();
    if let Some(inv) = all.iter().find(|i| i["id"] == json!(id)) {
        return inv["stage"].as_str().map(str::to_string);
    }
    None
}

fn is_settled(devnet: &Devnet, id: &str) -> bool {
    let d = devnet.file();
    let out = Command::new(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/.bin/cast"),
    )
    .args([
        "call",
        "--rpc-url",
        d["metis_rpc_url"].as_str().unwrap(),
        d["payment_settlement"].as_str().unwrap(),
        "isSettled(bytes32)(bool)",
        id,
    ])
    .output()
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_settles_both_rails_through_metis_rules_survives_kill_9_and_a_second_relayer() {
    let devnet = Devnet::up();
    let metis_url = devnet.metis_url();
    let settlement = devnet.settlement();
    let proxy_log = Arc::new(Mutex::new(ProxyLog::default()));
    let proxy = metis_rules_proxy(metis_url.clone(), proxy_log.clone());
    let config = config_variant(&devnet, "a", &proxy.url, None);
    let mut relayer = Relayer::start(&config, devnet.path().join("relayer-a.log"));

    // One invoice per rail, paid as an agent would.
    let btc_id = ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "btc"]);
    let goat_id = ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "goat"]);
    ok(&[
        "devnet",
        "pay-btc",
        "--dir",
        devnet.d(),
        "--invoice",
        &btc_id,
    ]);
    ok(&["devnet", "mine-btc", "--dir", devnet.d(), "6"]);
    ok(&[
        "devnet",
        "pay-goat",
        "--dir",
        devnet.d(),
        "--invoice",
        &goat_id,
    ]);
    for id in [&btc_id, &goat_id] {
        wait_for(
            &format!("invoice {id} settled"),
            Duration::from_secs(120),
            || is_settled(&devnet, id),
            || relayer.log(),
        );
    }
    for id in [&btc_id, &goat_id] {
        let id: B256 = id.parse().unwrap();
        assert_eq!(settled_events(&metis_url, settlement, id).await, 1);
    }
    {
        let log = proxy_log.lock().unwrap();
        assert!(
            log.refused.is_empty(),
            "Metis rules refused: {:?}",
            log.refused
        );
        assert!(
            log.accepted >= 3,
            "headers, attestation, two settlements: {log:?}"
        );
    }
    // Ready, with the chains and the signer in /status and /metrics (the
    // follow tasks report after their round: wait for it under load).
    wait_for(
        "/readyz, the Bitcoin tip and both settlements in /status",
        Duration::from_secs(60),
        || {
            relayer.get("/readyz").is_some_and(|(code, _)| code == 200)
                && relayer.status().is_some_and(|s| {
                    s["chains"]["bitcoin"]["tip"].as_u64().unwrap_or(0) >= 206
                        && s["invoices"]["by_stage"]["settled"].as_u64().unwrap_or(0) >= 2
                })
        },
        || format!("{:?}\n{}", relayer.get("/readyz"), relayer.log()),
    );
    let status = relayer.status().unwrap();
    assert!(
        status["invoices"]["by_stage"]["settled"].as_u64().unwrap() >= 2,
        "{status}"
    );
    // The gauges are refreshed at the end of the settlement round.
    wait_for(
        "the settled gauge",
        Duration::from_secs(30),
        || {
            relayer
                .get("/metrics")
                .is_some_and(|(_, m)| m.contains("gmrelay_invoices{stage=\"settled\"} 2"))
        },
        || relayer.get("/metrics").map(|m| m.1).unwrap_or_default(),
    );
    let (_, metrics) = relayer.get("/metrics").unwrap();
    assert!(
        metrics.contains("gmrelay_metis_transactions{state=\"mined\"}"),
        "{metrics}"
    );

    // kill -9 while a settlement is in flight (an open outbox entry), then
    // restart: settled exactly once.
    let mut caught = false;
    for _ in 0..3 {
        let id = ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "goat"]);
        ok(&["devnet", "pay-goat", "--dir", devnet.d(), "--invoice", &id]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) && !is_settled(&devnet, &id) {
            let in_flight = relayer
                .status()
                .and_then(|s| s["outbox"]["open"].as_array().map(|a| !a.is_empty()))
                .unwrap_or(false);
            if in_flight {
                relayer.kill9();
                caught = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log_before = relayer.log();
        relayer = Relayer::start(&config, devnet.path().join("relayer-a2.log"));
        wait_for(
            &format!("invoice {id} settled after the restart"),
            Duration::from_secs(120),
            || is_settled(&devnet, &id),
            || format!("{log_before}\n--- after restart ---\n{}", relayer.log()),
        );
        assert_eq!(
            settled_events(&metis_url, settlement, id.parse().unwrap()).await,
            1
        );
        if caught {
            break;
        }
    }
    assert!(caught, "never saw a settlement in flight to kill -9 it");
    wait_for(
        "the outbox to drain",
        Duration::from_secs(60),
        || {
            relayer
                .status()
                .and_then(|s| s["outbox"]["open"].as_array().map(|a| a.is_empty()))
                .unwrap_or(false)
        },
        || relayer.log(),
    );

    // A second relayer (its own key and store) on the same contracts: five
    // invoices, each settled exactly once.
    let config_b = config_variant(
        &devnet,
        "b",
        &proxy.url,
        Some("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"),
    );
    let relayer_b = Relayer::start(&config_b, devnet.path().join("relayer-b.log"));
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let rail = if i % 2 == 0 { "goat" } else { "btc" };
            // On-chain invoices: both relayers take them in and race.
            ok(&[
                "devnet",
                "invoice",
                "--dir",
                devnet.d(),
                "--rail",
                rail,
                "--on-chain",
            ])
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            ok(&["devnet", "pay-goat", "--dir", devnet.d(), "--invoice", id]);
        } else {
            ok(&["devnet", "pay-btc", "--dir", devnet.d(), "--invoice", id]);
        }
    }
    ok(&["devnet", "mine-btc", "--dir", devnet.d(), "6"]);
    for id in &ids {
        wait_for(
            &format!("invoice {id} settled with two relayers"),
            Duration::from_secs(120),
            || is_settled(&devnet, id),
            || format!("A:\n{}\nB:\n{}", relayer.log(), relayer_b.log()),
        );
    }
    for id in &ids {
        assert_eq!(
            settled_events(&metis_url, settlement, id.parse().unwrap()).await,
            1
        );
    }
    // Each relayer ends with every one of them closed, by itself or the other.
    wait_for(
        "both relayers to see every invoice closed",
        Duration::from_secs(60),
        || {
            [&relayer, &relayer_b]
                .iter()
                .all(|r| ids.iter().all(|id| stage(r, id).is_none()))
        },
        || format!("A:\n{}\nB:\n{}", relayer.log(), relayer_b.log()),
    );
    assert!(proxy_log.lock().unwrap().refused.is_empty());
}

#[test]
fn a_bad_key_or_an_unreachable_node_at_start_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("bad.key");
    std::fs::write(&key, "not a key").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[btc]\nnetwork = \"regtest\"\nrpc_url = \"http://127.0.0.1:{}\"\n[metis]\nkey_file = \"{}\"\n",
            data.display(),
            gmrelay::devnet::free_port(),
            key.display()
        ),
    )
    .unwrap();
    let o = gmrelay(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("not a 32-byte hex private key"),
        "{}",
        text(&o)
    );
    assert!(!data.exists(), "nothing written");
    // A good key, no bitcoind.
    std::fs::write(&key, gmrelay::goat::devnet::RELAYER_KEY).unwrap();
    let o = gmrelay(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("(btc.rpc_url)"), "{}", text(&o));
    assert!(!data.exists(), "nothing written");
    // An unknown key in the file.
    std::fs::write(&config, "[run]\nhtpp = \"127.0.0.1:1\"\n").unwrap();
    let o = gmrelay(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("htpp"), "{}", text(&o));
}

fn btc_rpc(devnet: &Devnet) -> gmrelay::btc::rpc::BitcoindRpc {
    let d = devnet.file();
    gmrelay::btc::rpc::BitcoindRpc::new(
        d["btc_rpc_url"].as_str().unwrap(),
        gmrelay::btc::rpc::Auth::Cookie(d["btc_cookie_file"].as_str().unwrap().into()),
        Duration::from_secs(10),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorged_out_payment_waits_for_its_new_block_and_a_node_outage_is_shown_and_survived() {
    let devnet = Devnet::up();
    let d = devnet.file();
    let metis_url = devnet.metis_url();
    let settlement = devnet.settlement();
    let relayer = Relayer::on_devnet(&devnet);
    let rpc = btc_rpc(&devnet);
    let node = gmrelay::devnet::RpcNode::new(&rpc);
    let agent = gmrelay::devnet::Payer::from_seed(gmrelay::devtools::BTC_PAYER_SEED);

    // Paid and two blocks deep: the daemon has found it.
    let id = ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "btc"]);
    ok(&["devnet", "pay-btc", "--dir", devnet.d(), "--invoice", &id]);
    node.mine(2, &agent.address).await.unwrap();
    let paid_height = node.height().await.unwrap() - 1;
    wait_for(
        "the payment to be found",
        Duration::from_secs(60),
        || stage(&relayer, &id).as_deref() == Some("confirming"),
        || relayer.log(),
    );
    // Reorged out before its six confirmations: a longer chain of empty
    // blocks; the payment waits in the mempool.
    let paid_block = node.block_hash(paid_height).await.unwrap();
    node.invalidate(&paid_block).await.unwrap();
    node.mine_empty(8, &agent.address).await.unwrap();
    wait_for(
        "the daemon to drop the reorged-out payment",
        Duration::from_secs(60),
        || stage(&relayer, &id).as_deref() == Some("awaiting_payment"),
        || relayer.log(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !is_settled(&devnet, &id),
        "settled from a reorged-out block"
    );
    // Mined anew, six deep: settled, once.
    node.mine(6, &agent.address).await.unwrap();
    wait_for(
        "the re-mined payment to settle",
        Duration::from_secs(90),
        || is_settled(&devnet, &id),
        || relayer.log(),
    );
    assert_eq!(
        settled_events(&metis_url, settlement, id.parse().unwrap()).await,
        1
    );

    // bitcoind goes away: /readyz and /metrics say so.
    let pid = d["pids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == json!("bitcoind"))
        .and_then(|p| p[1].as_u64())
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    wait_for(
        "bitcoind to stop",
        Duration::from_secs(30),
        || !Path::new(&format!("/proc/{pid}")).exists(),
        String::new,
    );
    wait_for(
        "/readyz to report bitcoin",
        Duration::from_secs(60),
        || {
            relayer
                .get("/readyz")
                .is_some_and(|(code, body)| code == 503 && body.contains("bitcoin"))
        },
        || relayer.log(),
    );
    wait_for(
        "/metrics to show bitcoind down",
        Duration::from_secs(60),
        || {
            relayer
                .get("/metrics")
                .is_some_and(|(_, m)| m.contains("gmrelay_node_up{chain=\"bitcoin\"} 0"))
        },
        || relayer.log(),
    );
    let (_, why) = relayer.get("/readyz").unwrap();
    assert!(why.contains("cannot reach"), "{why}");
    // Back on the same port: ready again, and it catches up and settles.
    let port: u16 = d["btc_rpc_url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let _restarted = gmrelay::devnet::Bitcoind::start_in(&devnet.path().join("bitcoind"), port)
        .await
        .unwrap();
    wait_for(
        "/readyz after the restart",
        Duration::from_secs(60),
        || relayer.get("/readyz").is_some_and(|(code, _)| code == 200),
        || relayer.log(),
    );
    let id = ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "btc"]);
    ok(&["devnet", "pay-btc", "--dir", devnet.d(), "--invoice", &id]);
    ok(&["devnet", "mine-btc", "--dir", devnet.d(), "6"]);
    wait_for(
        "a payment after the outage to settle",
        Duration::from_secs(90),
        || is_settled(&devnet, &id),
        || relayer.log(),
    );

    // An invoice paid and confirmed while the relayer was stopped: taken in
    // after its payment's blocks were scanned, it is found all the same.
    drop(relayer);
    // Nobody to hand a signed invoice to: the merchant creates it on-chain,
    // and the relayer takes it in from the chain when it is back.
    let id = ok(&[
        "devnet",
        "invoice",
        "--dir",
        devnet.d(),
        "--rail",
        "btc",
        "--on-chain",
    ]);
    ok(&["devnet", "pay-btc", "--dir", devnet.d(), "--invoice", &id]);
    ok(&["devnet", "mine-btc", "--dir", devnet.d(), "6"]);
    let relayer = Relayer::start(
        &devnet.path().join("gmrelay.toml"),
        devnet.path().join("relayer-2.log"),
    );
    wait_for(
        "a payment made while the relayer was down to settle",
        Duration::from_secs(90),
        || is_settled(&devnet, &id),
        || relayer.log(),
    );
    assert_eq!(
        settled_events(&metis_url, settlement, id.parse().unwrap()).await,
        1
    );
}

fn anvil_call(url: &str, method: &str, params: Value) -> Value {
    let answer = forward(
        url,
        &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .unwrap();
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goat_payment_reorged_out_before_finality_settles_only_once_paid_again() {
    let devnet = Devnet::up();
    let d = devnet.file();
    let goat = d["goat_rpc_url"].as_str().unwrap().to_string();
    let metis_url = devnet.metis_url();
    let settlement = devnet.settlement();
    // GOAT finality 8 blocks deep: room for a reorg above it.
    let config = devnet.path().join("deep.toml");
    let text = std::fs::read_to_string(devnet.path().join("gmrelay.toml"))
        .unwrap()
        .replace("finality = { depth = 1 }", "finality = { depth = 8 }");
    std::fs::write(&config, text).unwrap();
    let relayer = Relayer::start(&config, devnet.path().join("relayer.log"));

    let id = ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "goat"]);
    let before = anvil_call(&goat, "evm_snapshot", json!([]));
    ok(&["devnet", "pay-goat", "--dir", devnet.d(), "--invoice", &id]);
    wait_for(
        "the GOAT payment to be found",
        Duration::from_secs(60),
        || stage(&relayer, &id).as_deref() == Some("confirming"),
        || relayer.log(),
    );
    // The chain goes back to before the payment and grows without it.
    assert_eq!(
        anvil_call(&goat, "evm_revert", json!([before])),
        json!(true)
    );
    wait_for(
        "the daemon to drop the reorged-out payment",
        Duration::from_secs(60),
        || stage(&relayer, &id).as_deref() == Some("awaiting_payment"),
        || relayer.log(),
    );
    // Past the depth the payment would have had: still not settled.
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        !is_settled(&devnet, &id),
        "settled from a reorged-out GOAT block"
    );
    assert_eq!(stage(&relayer, &id).as_deref(), Some("awaiting_payment"));
    // Paid again (the authorization is unused on this chain): settled once.
    ok(&["devnet", "pay-goat", "--dir", devnet.d(), "--invoice", &id]);
    wait_for(
        "the re-made GOAT payment to settle",
        Duration::from_secs(90),
        || is_settled(&devnet, &id),
        || relayer.log(),
    );
    assert_eq!(
        settled_events(&metis_url, settlement, id.parse().unwrap()).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_ready_in_one_round_settle_in_one_batch_and_unlock_the_service() {
    let devnet = Devnet::up();
    let d = devnet.file();
    let metis_url = devnet.metis_url();
    let settlement = devnet.settlement();
    let relayer = Relayer::on_devnet(&devnet);
    // Three signed invoices, paid into one block: six blocks later all three
    // are ready in the same round.
    let ids: Vec<String> = (0..3)
        .map(|_| ok(&["devnet", "invoice", "--dir", devnet.d(), "--rail", "btc"]))
        .collect();
    for id in &ids {
        ok(&["devnet", "pay-btc", "--dir", devnet.d(), "--invoice", id]);
    }
    assert!(ok(&["devnet", "access", "--dir", devnet.d()]).contains("access none"));
    ok(&["devnet", "mine-btc", "--dir", devnet.d(), "6"]);
    for id in &ids {
        wait_for(
            &format!("invoice {id} settled"),
            Duration::from_secs(120),
            || is_settled(&devnet, id),
            || relayer.log(),
        );
    }
    let mut txs = Vec::new();
    for id in &ids {
        let t = settled_in(&metis_url, settlement, id.parse().unwrap()).await;
        assert_eq!(t.len(), 1, "settled once");
        txs.push(t[0]);
    }
    assert!(
        txs.iter().all(|t| *t == txs[0]),
        "one settlement transaction for the three: {txs:?}"
    );
    // Each invoice named the merchant's AccessPass: 3 × 10 calls for the agent.
    let access = ok(&["devnet", "access", "--dir", devnet.d()]);
    assert!(
        access.contains("access granted: 30 call(s) left"),
        "{access}"
    );
    // The daemon's record of one of them.
    let (code, body) = relayer.get(&format!("/invoices/{}", ids[0])).unwrap();
    assert_eq!(code, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["stage"], "settled");
    assert!(
        r["detail"].as_str().unwrap().contains("for 3 payment(s)"),
        "{r}"
    );
    // A signed invoice with a forged signature is refused by the API.
    let mut inv: Value = serde_json::from_str(
        &std::fs::read_to_string(
            devnet
                .path()
                .join("invoices")
                .join(format!("{}.json", ids[1])),
        )
        .unwrap(),
    )
    .unwrap();
    // Its signature on other terms (another ref: an unknown, open id).
    inv["terms"]["ref"] = json!(format!("0x{}", "ab".repeat(32)));
    let url = format!("http://{}/invoices", d["relayer_http"].as_str().unwrap());
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&inv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("not by its merchant"));
    // Resubmitting one it knows (the same terms) is answered 200 "known".
    let settled: Value = serde_json::from_str(
        &std::fs::read_to_string(
            devnet
                .path()
                .join("invoices")
                .join(format!("{}.json", ids[2])),
        )
        .unwrap(),
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&settled)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "known: the record exists");
    let resp = reqwest::Client::new()
        .post(&url)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
