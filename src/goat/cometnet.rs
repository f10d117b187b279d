//! The devnet's GOAT consensus: real CometBFT v0.38.25 nodes (one per
//! validator, secp256k1 keys, a genesis that allows only secp256k1) on
//! loopback, each driven by the devnet GOAT app ([`super::abci`]) that
//! `gmrelay devnet goat-abci` serves. Used by `gmrelay devnet up
//! --goat-consensus` and the tests; nothing here is used by the relayer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use thiserror::Error;

use super::abci::{AppGenesis, GenesisValidator};
use super::consensus::testgen::Val;

/// The pinned CometBFT release (goatd's).
pub const COMETBFT_VERSION: &str = "v0.38.25";
/// Sends a validator update (devnet validator `index` at `power`; 0
/// removes it) to the node at `rpc_url` and waits until it is committed;
/// returns the height it was committed at (the set changes two heights later).
pub async fn set_validator_power(
    rpc_url: &str,
    index: usize,
    power: u64,
) -> Result<u64, CometNetError> {
    let key = compressed(&devnet_validator(index));
    let tx = super::abci::validator_update_tx(&key, power);
    let url = format!(
        "{}/broadcast_tx_commit?tx=0x{}",
        rpc_url.trim_end_matches('/'),
        hex::encode(tx)
    );
    let err = |message: String| CometNetError::Io {
        what: format!("broadcast_tx_commit to {rpc_url}"),
        message,
    };
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .map_err(|e| err(e.to_string()))?
        .json()
        .await
        .map_err(|e| err(e.to_string()))?;
    if let Some(e) = body.get("error") {
        return Err(err(e.to_string()));
    }
    let r = &body["result"];
    for phase in ["check_tx", "tx_result"] {
        if r[phase]["code"].as_u64().unwrap_or(0) != 0 {
            return Err(err(format!("{phase}: {}", r[phase]["log"])));
        }
    }
    r["height"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| err(format!("no height in {body}")))
}

/// The devnet's CometBFT chain id.
pub const DEVNET_CHAIN_ID: &str = "goat-devnet";
/// Each devnet validator's power.
pub const DEVNET_POWER: u64 = 10;
/// At most this many validators (goatd's limit).
pub const MAX_VALIDATORS: usize = 20;

/// A CometBFT devnet failure.
#[derive(Debug, Error)]
pub enum CometNetError {
    /// cometbft is not installed.
    #[error(
        "cometbft {COMETBFT_VERSION} not found at {0}: run `make setup` (or set COMETBFT_EXE)"
    )]
    NotInstalled(String),
    /// A file or process failed.
    #[error("{what}: {message}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        message: String,
    },
    /// The chain did not start.
    #[error(
        "the GOAT CometBFT devnet did not reach height {height} within {secs} s (logs in {logs})"
    )]
    NoProgress {
        /// The height waited for.
        height: u64,
        /// How long.
        secs: u64,
        /// Where the logs are.
        logs: String,
    },
}

fn io(what: impl Into<String>) -> impl Fn(std::io::Error) -> CometNetError {
    let what = what.into();
    move |e| CometNetError::Io {
        what: what.clone(),
        message: e.to_string(),
    }
}

/// Finds cometbft: `COMETBFT_EXE`, then the cache `make setup` fills.
pub fn cometbft_exe() -> Result<PathBuf, CometNetError> {
    if let Some(p) = std::env::var_os("COMETBFT_EXE") {
        return Ok(PathBuf::from(p));
    }
    let cache = crate::devnet::cache_dir().ok_or_else(|| {
        CometNetError::NotInstalled("(neither GMRELAY_CACHE nor HOME is set)".into())
    })?;
    let exe = cache.join(format!("cometbft-{COMETBFT_VERSION}/cometbft"));
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(CometNetError::NotInstalled(exe.display().to_string()))
    }
}

/// Devnet validator `i` (0-based): a public key derived from a small seed.
pub fn devnet_validator(i: usize) -> Val {
    Val::new(u8::try_from(i + 1).unwrap_or(u8::MAX), DEVNET_POWER)
}

/// A validator's 33-byte compressed key.
pub fn compressed(v: &Val) -> Vec<u8> {
    v.key
        .verifying_key()
        .to_encoded_point(true)
        .to_bytes()
        .to_vec()
}

/// A started network: its processes and endpoints.
#[derive(Debug, Clone)]
pub struct CometNet {
    /// Each node's RPC URL (`http://127.0.0.1:port`).
    pub rpc_urls: Vec<String>,
    /// The CometBFT chain id.
    pub chain_id: String,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn write(path: &Path, text: &str) -> Result<(), CometNetError> {
    std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))
}

/// Sets `key = value` in a CometBFT config.toml (the first occurrence).
fn set_toml(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(&format!("{key} =")) {
                done = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn spawn(exe: &Path, args: &[String], log: &Path) -> Result<u32, CometNetError> {
    let out = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(io(format!("starting {}", exe.display())))?;
    Ok(child.id())
}

/// Starts `validators` CometBFT nodes in `dir` (one per validator) and the
/// devnet GOAT app (`app_exe devnet goat-abci`) for the GOAT EVM node at
/// `evm_url`, and waits for height 3. Processes keep running after return;
/// `pids` lists them. On failure the started ones are in `started`.
pub async fn start(
    dir: &Path,
    app_exe: &Path,
    evm_url: &str,
    validators: usize,
    started: &mut Vec<(String, u32)>,
) -> Result<CometNet, CometNetError> {
    let exe = cometbft_exe()?;
    let n = validators.clamp(1, MAX_VALIDATORS);
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let vals: Vec<Val> = (0..n).map(devnet_validator).collect();
    let genesis = json!({
        "genesis_time": tendermint::Time::now().to_rfc3339(),
        "chain_id": DEVNET_CHAIN_ID,
        "initial_height": "1",
        "consensus_params": {
            "block": {"max_bytes": "22020096", "max_gas": "-1"},
            "evidence": {
                "max_age_num_blocks": "100000",
                "max_age_duration": "172800000000000",
                "max_bytes": "1048576"
            },
            "validator": {"pub_key_types": ["secp256k1"]},
            "version": {"app": "0"},
            "abci": {"vote_extensions_enable_height": "0"}
        },
        "app_hash": "",
        "app_state": AppGenesis {
            validators: vals
                .iter()
                .map(|v| GenesisValidator {
                    pub_key: hex::encode(compressed(v)),
                    power: v.power,
                })
                .collect(),
        },
    });
    struct Node {
        home: PathBuf,
        p2p: u16,
        rpc: u16,
        abci: u16,
        id: String,
    }
    let mut nodes = Vec::new();
    for (i, v) in vals.iter().enumerate() {
        let home = dir.join(format!("node{i}"));
        let out = Command::new(&exe)
            .args(["init", "--home"])
            .arg(&home)
            .output()
            .map_err(io(format!("{} init", exe.display())))?;
        if !out.status.success() {
            return Err(CometNetError::Io {
                what: format!("{} init --home {}", exe.display(), home.display()),
                message: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let key = compressed(v);
        write(
            &home.join("config/priv_validator_key.json"),
            &serde_json::to_string_pretty(&json!({
                "address": v.address().to_string(),
                "pub_key": {"type": "tendermint/PubKeySecp256k1", "value": b64(&key)},
                "priv_key": {"type": "tendermint/PrivKeySecp256k1", "value": b64(&v.key.to_bytes())},
            }))
            .unwrap_or_default(),
        )?;
        write(
            &home.join("config/genesis.json"),
            &serde_json::to_string_pretty(&genesis).unwrap_or_default(),
        )?;
        let cfg_path = home.join("config/config.toml");
        let mut cfg = std::fs::read_to_string(&cfg_path)
            .map_err(io(format!("reading {}", cfg_path.display())))?;
        for (k, val) in [
            ("addr_book_strict", "false"),
            ("allow_duplicate_ip", "true"),
            ("timeout_propose", "\"2s\""),
            ("timeout_commit", "\"1s\""),
            ("log_level", "\"error\""),
            ("pex", "false"),
        ] {
            cfg = set_toml(&cfg, k, val);
        }
        write(&cfg_path, &cfg)?;
        let id = Command::new(&exe)
            .args(["show-node-id", "--home"])
            .arg(&home)
            .output()
            .map_err(io("cometbft show-node-id"))?;
        let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
        nodes.push(Node {
            home,
            p2p: crate::devnet::free_port(),
            rpc: crate::devnet::free_port(),
            abci: crate::devnet::free_port(),
            id,
        });
    }
    // The app first: CometBFT connects to it at start.
    let mut app_args = vec![
        "devnet".to_string(),
        "goat-abci".into(),
        "--evm-rpc".into(),
        evm_url.into(),
    ];
    for node in &nodes {
        app_args.push("--listen".into());
        app_args.push(format!("127.0.0.1:{}", node.abci));
    }
    let app_pid = spawn(app_exe, &app_args, &dir.join("app.log"))?;
    started.push(("goat app".into(), app_pid));
    for node in &nodes {
        wait_port(node.abci, Duration::from_secs(20))
            .await
            .map_err(|m| CometNetError::Io {
                what: format!("the devnet GOAT app ({})", dir.join("app.log").display()),
                message: m,
            })?;
    }
    for (i, node) in nodes.iter().enumerate() {
        let peers: Vec<String> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| format!("{}@127.0.0.1:{}", p.id, p.p2p))
            .collect();
        let args = vec![
            "start".to_string(),
            "--home".into(),
            node.home.display().to_string(),
            "--proxy_app".into(),
            format!("tcp://127.0.0.1:{}", node.abci),
            "--rpc.laddr".into(),
            format!("tcp://127.0.0.1:{}", node.rpc),
            "--p2p.laddr".into(),
            format!("tcp://127.0.0.1:{}", node.p2p),
            "--p2p.persistent_peers".into(),
            peers.join(","),
        ];
        let pid = spawn(&exe, &args, &node.home.join("cometbft.log"))?;
        started.push((format!("cometbft node{i}"), pid));
    }
    let net = CometNet {
        rpc_urls: nodes
            .iter()
            .map(|n| format!("http://127.0.0.1:{}", n.rpc))
            .collect(),
        chain_id: DEVNET_CHAIN_ID.into(),
    };
    wait_height(&net.rpc_urls[0], 3, Duration::from_secs(60))
        .await
        .map_err(|_| CometNetError::NoProgress {
            height: 3,
            secs: 60,
            logs: dir.display().to_string(),
        })?;
    Ok(net)
}

async fn wait_port(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on 127.0.0.1:{port}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the node at `rpc_url` reports `height` or more.
pub async fn wait_height(rpc_url: &str, height: u64, timeout: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + timeout;
    let rpc =
        super::comet::CometRpc::new(rpc_url, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    loop {
        if let Ok(h) = rpc.latest_height().await {
            if h >= height {
                return Ok(h);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{rpc_url} did not reach height {height}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
