//! The `gmrelay` binary as an operator meets it: exit codes, messages that
//! name what and where, settings layered from flags and environment, and
//! Ctrl-C during a sync.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{gmrelay, text};
use gmrelay::devnet::{Bitcoind, Payer};
use gmrelay::store::{RocksStore, Store};

#[test]
fn config_validate_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let ok = gmrelay(&["config", "validate", "config/regtest.toml"], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("valid"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[btc]\nnetwork = \"regtest\"\n\nbatch_sise = 10\n").unwrap();
    let o = gmrelay(&["config", "validate", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("bad.toml:4:1") && t.contains("batch_sise"),
        "{t}"
    );

    std::fs::write(&bad, "[btc]\nrpc_url = \"127.0.0.1:8332\"\n").unwrap();
    let o = gmrelay(&["config", "validate", bad.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("btc.rpc_url"), "{}", text(&o));
}

#[test]
fn headers_verify_exits_non_zero_naming_the_bad_header() {
    let dir = tempfile::tempdir().unwrap();
    let headers = gmrelay::bench::generate_regtest_headers(50);
    let mut bytes: Vec<u8> = headers
        .iter()
        .flat_map(bitcoin::consensus::serialize)
        .collect();
    let file = dir.path().join("h.bin");
    std::fs::write(&file, &bytes).unwrap();
    let o = gmrelay(
        &[
            "headers",
            "verify",
            file.to_str().unwrap(),
            "--network",
            "regtest",
            "--start-height",
            "1",
        ],
        &[],
    );
    // Height 1 without an anchor for genesis: valid, with what it could not check.
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not checked"), "{}", text(&o));
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
    let anchor = format!("0={}", hex::encode(bitcoin::consensus::serialize(&genesis)));
    let args = [
        "headers",
        "verify",
        file.to_str().unwrap(),
        "--network",
        "regtest",
        "--start-height",
        "1",
        "--anchor",
        &anchor,
    ];
    let o = gmrelay(&args, &[]);
    assert!(
        o.status.success() && !text(&o).contains("not checked"),
        "{}",
        text(&o)
    );

    // Re-point the header at height 31 (index 30) to another parent, with
    // a nonce that still meets the target: only the link is wrong.
    let mut h = headers[30];
    h.prev_blockhash = headers[10].block_hash();
    while !h.target().is_met_by(h.block_hash()) {
        h.nonce += 1;
    }
    bytes[30 * 80..31 * 80].copy_from_slice(&bitcoin::consensus::serialize(&h));
    std::fs::write(&file, &bytes).unwrap();
    let o = gmrelay(&args, &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("height 31") && t.contains("does not link"),
        "{t}"
    );

    // A truncated file names the leftover bytes.
    std::fs::write(&file, &bytes[..801]).unwrap();
    let o = gmrelay(&args, &[]);
    assert!(
        !o.status.success() && text(&o).contains("1 bytes left over"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_status_export_import_through_flags_and_environment() {
    let node = Bitcoind::start_temp().await.unwrap();
    let payer = Payer::from_seed([8; 32]);
    node.node().mine(120, &payer.address).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = node.rpc_url();
    let cookie = node.cookie_file();
    // Flags.
    let o = gmrelay(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--btc-rpc",
            &url,
            "--btc-cookie",
            cookie.to_str().unwrap(),
            "headers",
            "sync",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("synced: tip 120"), "{}", text(&o));
    // Environment, and status as JSON.
    let env = [
        ("GMRELAY_DATA_DIR", data.path().to_str().unwrap()),
        ("GMRELAY_BTC_RPC_URL", url.as_str()),
        ("GMRELAY_BTC_COOKIE_FILE", cookie.to_str().unwrap()),
    ];
    let o = gmrelay(&["headers", "status", "--json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tip"]["height"], 120);
    assert_eq!(
        v["tip"]["hash"],
        node.node().block_hash(120).await.unwrap().to_string()
    );
    // A wrong password is an authentication error, not a hang.
    let o = gmrelay(
        &["--btc-user", "x", "--btc-password", "y", "headers", "sync"],
        &env,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("authentication failed"), "{}", text(&o));

    // Export, then import into a store anchored at genesis.
    let file = data.path().join("h.bin");
    let o = gmrelay(&["headers", "export", file.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 121 * 80);
    let data2 = tempfile::tempdir().unwrap();
    let env2 = [
        ("GMRELAY_DATA_DIR", data2.path().to_str().unwrap()),
        ("GMRELAY_BTC_RPC_URL", url.as_str()),
        ("GMRELAY_BTC_COOKIE_FILE", cookie.to_str().unwrap()),
    ];
    // Into an empty store: the file itself anchors it (it holds the
    // checkpoint), no node involved.
    let o = gmrelay(&["headers", "import", file.to_str().unwrap()], &env2);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("imported 120 new headers"),
        "{}",
        text(&o)
    );
    let o = gmrelay(&["headers", "status", "--json"], &env2);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tip"]["height"], 120);
    assert_eq!(
        v["tip"]["hash"],
        node.node().block_hash(120).await.unwrap().to_string()
    );
    // Importing again adds nothing; a header that connects to nothing is refused.
    let o = gmrelay(&["headers", "import", file.to_str().unwrap()], &env2);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("imported 0 new headers"), "{}", text(&o));
    let stray = data.path().join("stray.bin");
    let other = gmrelay::bench::generate_regtest_headers(3);
    std::fs::write(&stray, bitcoin::consensus::serialize(&other[2])).unwrap();
    let o = gmrelay(&["headers", "import", stray.to_str().unwrap()], &env2);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("unknown parent"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_sync_leaves_a_consistent_store() {
    let node = Bitcoind::start_temp().await.unwrap();
    let payer = Payer::from_seed([9; 32]);
    node.node().mine(3000, &payer.address).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = node.rpc_url();
    let cookie = node.cookie_file();
    let env = [
        ("GMRELAY_DATA_DIR", data.path().to_str().unwrap()),
        ("GMRELAY_BTC_RPC_URL", url.as_str()),
        ("GMRELAY_BTC_COOKIE_FILE", cookie.to_str().unwrap()),
        ("GMRELAY_BTC_BATCH_SIZE", "1"),
        ("GMRELAY_LOG_LEVEL", "debug"),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gmrelay"));
    cmd.args(["headers", "sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // Interrupt once a few batches are stored (the debug log says so).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut log = String::new();
        let mut seen = 0;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("batch connected") {
                seen += 1;
                if seen == 20 {
                    let _ = tx.send(());
                }
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("sync made progress");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = reader.join().unwrap();
    let t = format!("{}{log}", text(&out));
    assert!(out.status.success(), "{t}");
    assert!(t.contains("interrupted: store consistent at"), "{t}");
    // The store opens, its tip links down to genesis, and a new sync resumes.
    {
        let store = RocksStore::open(&data.path().join("db")).unwrap();
        let (tip, hash) = store.btc_tip().unwrap().unwrap();
        assert!(tip > 0 && tip < 3000, "interrupted at {tip}");
        assert_eq!(store.btc_best_hash(tip).unwrap(), Some(hash));
        assert_eq!(Some(hash), Some(node.node().block_hash(tip).await.unwrap()));
    }
    let o = gmrelay(&["headers", "sync"], &env[..3]);
    assert!(
        o.status.success() && text(&o).contains("synced: tip 3000"),
        "{}",
        text(&o)
    );
}

/// Reads one metric's value from a Prometheus text endpoint.
async fn metric(port: u16, name: &str, chain: &str) -> Option<f64> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .find(|l| l.starts_with(name) && l.contains(&format!("chain=\"{chain}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Starts `headers sync --follow` against `node`, serving metrics on `port`.
fn spawn_follow(
    node: &Bitcoind,
    data: &std::path::Path,
    port: u16,
    extra_env: &[(&str, &str)],
) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gmrelay"));
    cmd.args(["headers", "sync", "--follow", "--metrics"])
        .arg(format!("127.0.0.1:{port}"))
        .env("GMRELAY_LOG_LEVEL", "warn")
        .env("GMRELAY_DATA_DIR", data)
        .env("GMRELAY_BTC_RPC_URL", node.rpc_url())
        .env("GMRELAY_BTC_COOKIE_FILE", node.cookie_file())
        .env("GMRELAY_BTC_POLL_INTERVAL_SECS", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data.join("follower.log")).unwrap());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits (up to 15 s) until the follower's Bitcoin `gmrelay_tip_height` is `height`.
async fn wait_for_tip(port: u16, height: f64) -> bool {
    wait_for_chain_tip(port, "bitcoin", height).await
}

/// Waits (up to 15 s) until `gmrelay_tip_height{chain}` is `height`.
async fn wait_for_chain_tip(port: u16, chain: &str, height: f64) -> bool {
    for _ in 0..150 {
        if metric(port, "gmrelay_tip_height", chain).await == Some(height) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_mode_tracks_new_blocks_and_serves_metrics() {
    let node = Bitcoind::start_temp().await.unwrap();
    let payer = Payer::from_seed([10; 32]);
    node.node().mine(50, &payer.address).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = gmrelay::devnet::free_port();
    let mut child = spawn_follow(&node, data.path(), port, &[]);
    let reached_50 = wait_for_tip(port, 50.0).await;
    node.node().mine(7, &payer.address).await.unwrap();
    let reached_57 = wait_for_tip(port, 57.0).await;
    let reorgs_before = metric(port, "gmrelay_reorgs_total", "bitcoin")
        .await
        .unwrap_or(0.0);
    node.node().reorg(3, 1).await.unwrap();
    let reached_58 = wait_for_tip(port, 58.0).await;
    let reorgs_after = metric(port, "gmrelay_reorgs_total", "bitcoin").await;
    let accepted = metric(port, "gmrelay_headers_accepted_total", "bitcoin").await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        reached_50 && reached_57 && reached_58,
        "{reached_50} {reached_57} {reached_58}"
    );
    assert_eq!(reorgs_after, Some(reorgs_before + 1.0));
    // 57 headers above genesis, then the 4 of the heavier fork.
    assert_eq!(accepted, Some(61.0));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_mode_survives_a_node_restart_with_a_new_cookie() {
    let node_dir = tempfile::tempdir().unwrap();
    let rpc_port = gmrelay::devnet::free_port();
    let mut node = Bitcoind::start_in(node_dir.path(), rpc_port).await.unwrap();
    let payer = Payer::from_seed([11; 32]);
    node.node().mine(20, &payer.address).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = gmrelay::devnet::free_port();
    let mut child = spawn_follow(
        &node,
        data.path(),
        port,
        &[("GMRELAY_BTC_MAX_RETRY_SECS", "2")],
    );
    let before = wait_for_tip(port, 20.0).await;
    // The node goes away for longer than the retry budget, then comes back
    // with a new cookie: the follower logs, keeps polling, and catches up.
    node.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let node = Bitcoind::start_in(node_dir.path(), rpc_port).await.unwrap();
    // (A node stopped right after mining may come back a few blocks lower;
    // mine past the follower's 20 so the node's chain is the heavier one.)
    let restarted_at = node.node().height().await.unwrap();
    node.node()
        .mine(26 - restarted_at.min(21), &payer.address)
        .await
        .unwrap();
    let target = f64::from(node.node().height().await.unwrap());
    let after = wait_for_tip(port, target).await;
    let errors = metric(port, "gmrelay_sync_errors_total", "bitcoin").await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(data.path().join("follower.log")).unwrap_or_default();
    assert!(before && after, "{before} {after}\n{log}");
    assert!(errors.unwrap_or(0.0) >= 1.0, "{errors:?}\n{log}");
    assert!(status.success());
}

#[test]
fn metis_key_from_an_encrypted_keystore() {
    // A keystore written by foundry's cast (Web3 Secret Storage).
    let dir = tempfile::tempdir().unwrap();
    let cast =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/.bin/cast");
    let cast = std::env::var_os("CAST_EXE").map(Into::into).unwrap_or(cast);
    let key = gmrelay::goat::devnet::RELAYER_KEY;
    let out = Command::new(&cast)
        .args([
            "wallet",
            "import",
            "relayer",
            "--private-key",
            key,
            "--unsafe-password",
            "hunter2",
        ])
        .arg("--keystore-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let keystore = dir.path().join("relayer");
    let address = gmrelay::goat::devnet::signer(key).address().to_string();
    let salt = format!("0x{}", "ab".repeat(32));
    let expected = gmrelay::metis::invoice_id(
        gmrelay::goat::devnet::signer(key).address(),
        salt.parse().unwrap(),
    );
    // The id an invoice made with this key and salt will have: same from the
    // keystore as from the explicit creator address.
    let by_creator = gmrelay(
        &[
            "metis",
            "invoice",
            "id",
            "--ref",
            &salt,
            "--merchant",
            &address,
        ],
        &[],
    );
    let by_keystore = gmrelay(
        &[
            "--keystore",
            keystore.to_str().unwrap(),
            "metis",
            "invoice",
            "id",
            "--ref",
            &salt,
        ],
        &[("GMRELAY_METIS_KEYSTORE_PASSWORD", "hunter2")],
    );
    assert!(by_keystore.status.success(), "{}", text(&by_keystore));
    assert_eq!(
        String::from_utf8_lossy(&by_creator.stdout).trim(),
        expected.to_string()
    );
    assert_eq!(
        String::from_utf8_lossy(&by_keystore.stdout).trim(),
        expected.to_string()
    );
    // A wrong password is a clear error naming the keystore.
    let wrong = gmrelay(
        &[
            "--keystore",
            keystore.to_str().unwrap(),
            "metis",
            "invoice",
            "id",
            "--ref",
            &salt,
        ],
        &[("GMRELAY_METIS_KEYSTORE_PASSWORD", "hunter3")],
    );
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("cannot decrypt"), "{}", text(&wrong));
    assert!(text(&wrong).contains("relayer"), "{}", text(&wrong));
    // The password from a file (with its trailing newline), no variable.
    let pw = dir.path().join("password");
    std::fs::write(&pw, "hunter2\n").unwrap();
    let by_file = gmrelay(
        &[
            "--keystore",
            keystore.to_str().unwrap(),
            "metis",
            "invoice",
            "id",
            "--ref",
            &salt,
        ],
        &[("GMRELAY_METIS_KEYSTORE_PASSWORD_FILE", pw.to_str().unwrap())],
    );
    assert!(by_file.status.success(), "{}", text(&by_file));
    assert_eq!(
        String::from_utf8_lossy(&by_file.stdout).trim(),
        expected.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goat_follow_mode_tracks_new_heads_over_websocket() {
    let anvil = gmrelay::goat::devnet::Anvil::start(2345, &[])
        .await
        .unwrap();
    gmrelay::goat::devnet::mine(&anvil.url(), 5).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = gmrelay::devnet::free_port();
    let checkpoint =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("headers/goat-devnet.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gmrelay"))
        .args(["goat", "sync", "--follow", "--metrics"])
        .arg(format!("127.0.0.1:{port}"))
        .env("GMRELAY_LOG_LEVEL", "warn")
        .env("GMRELAY_DATA_DIR", data.path())
        .env("GMRELAY_GOAT_RPC_URL", anvil.ws_url())
        .env("GMRELAY_GOAT_CHAIN_ID", "2345")
        .env("GMRELAY_GOAT_CHECKPOINT_FILE", &checkpoint)
        .env("GMRELAY_GOAT_FINALITY", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = wait_for_chain_tip(port, "goat", 5.0).await;
    // New heads arrive over the subscription: no poll interval to wait out.
    gmrelay::goat::devnet::mine(&anvil.url(), 3).await.unwrap();
    let second = wait_for_chain_tip(port, "goat", 8.0).await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(first && second, "{first} {second}");
    assert!(status.success());
}

#[test]
fn headers_verify_checks_a_real_mainnet_retarget_with_anchors() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/btc/mainnet.json")).unwrap();
    let r = &fixture["retargets"][0];
    let first_height = r["first_height"].as_u64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("next.bin");
    std::fs::write(&file, hex::decode(r["next"].as_str().unwrap()).unwrap()).unwrap();
    let start = (first_height + 2016).to_string();
    let first = format!("--anchor={first_height}={}", r["first"].as_str().unwrap());
    let last = format!(
        "--anchor={}={}",
        first_height + 2015,
        r["last"].as_str().unwrap()
    );
    let base = [
        "headers",
        "verify",
        file.to_str().unwrap(),
        "--network",
        "mainnet",
        "--start-height",
        &start,
    ];

    // With the period's first and last headers, the retarget is checked.
    let o = gmrelay(&[&base[..], &[first.as_str(), last.as_str()]].concat(), &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("difficulty bits"), "{t}");
    assert!(t.contains("median time past"), "{t}");
    // Without the first header, the command says what it could not check.
    let o = gmrelay(&[&base[..], &[last.as_str()]].concat(), &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "difficulty bits (needs the header at height {first_height})"
        )),
        "{t}"
    );
    // A period start dated a day earlier changes the required bits: refused.
    let mut shifted: bitcoin::block::Header =
        bitcoin::consensus::deserialize(&hex::decode(r["first"].as_str().unwrap()).unwrap())
            .unwrap();
    shifted.time -= 86_400;
    let shifted_anchor = format!(
        "--anchor={first_height}={}",
        hex::encode(bitcoin::consensus::serialize(&shifted))
    );
    let o = gmrelay(
        &[&base[..], &[shifted_anchor.as_str(), last.as_str()]].concat(),
        &[],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("height {start}")) && t.contains("bad difficulty bits"),
        "{t}"
    );
}

#[test]
fn headers_verify_refuses_heights_that_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let headers = gmrelay::bench::generate_regtest_headers(3);
    let file = dir.path().join("h.bin");
    let bytes: Vec<u8> = headers
        .iter()
        .flat_map(bitcoin::consensus::serialize)
        .collect();
    std::fs::write(&file, &bytes).unwrap();
    let o = gmrelay(
        &[
            "headers",
            "verify",
            file.to_str().unwrap(),
            "--network",
            "regtest",
            "--start-height",
            "4294967295",
        ],
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("header 1 of the file (height 4294967296"), "{t}");
    assert!(
        t.contains("no header can be above height 4294967295"),
        "{t}"
    );
}

#[test]
fn headers_import_skips_what_precedes_the_checkpoint_and_writes_all_or_nothing() {
    // A regtest checkpoint at 2016 and a file starting 26 headers below it.
    let dir = tempfile::tempdir().unwrap();
    let headers = gmrelay::bench::generate_regtest_headers(2100); // heights 1..=2100
    let cp = dir.path().join("cp.json");
    std::fs::write(
        &cp,
        format!(
            r#"{{"network": "regtest", "height": 2016, "hash": "{}"}}"#,
            headers[2015].block_hash()
        ),
    )
    .unwrap();
    let write = |name: &str, hs: &[bitcoin::block::Header]| {
        let path = dir.path().join(name);
        let bytes: Vec<u8> = hs.iter().flat_map(bitcoin::consensus::serialize).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let data = dir.path().join("data");
    let env = [
        ("GMRELAY_DATA_DIR", data.to_str().unwrap()),
        ("GMRELAY_BTC_CHECKPOINT_FILE", cp.to_str().unwrap()),
    ];
    // A file that breaks after the checkpoint: refused, and nothing anchored.
    let mut broken = headers[1989..2060].to_vec();
    broken[50].prev_blockhash = broken[10].block_hash(); // height 2040 links to nothing
    let broken = write("broken.bin", &broken);
    let o = gmrelay(&["headers", "import", broken.to_str().unwrap()], &env);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("header 50 of the file"), "{}", text(&o));
    assert!(text(&o).contains("nothing was imported"), "{}", text(&o));
    {
        let store = RocksStore::open(&data.join("db")).unwrap();
        assert_eq!(store.btc_origin().unwrap(), None);
    }
    // The whole file, from 26 headers below the checkpoint: anchored at the
    // checkpoint, what precedes it skipped.
    let file = write("h.bin", &headers[1989..]);
    let o = gmrelay(&["headers", "import", file.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "imported 84 new headers from {}; tip 2100",
            file.display()
        )),
        "{}",
        text(&o)
    );
    // A second import of the same file adds nothing and fails nothing.
    let o = gmrelay(&["headers", "import", file.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("imported 0 new headers"), "{}", text(&o));
}
