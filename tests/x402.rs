//! x402 across chains, from outside: a real devnet (bitcoind regtest, GOAT
//! and Metis anvils; Metis behind a proxy that refuses what Andromeda
//! refuses), `gmrelay run` serving the facilitator, `gmrelay x402
//! serve-example`, and on the other side `gmrelay x402 pay` and the stock npm
//! x402 SDK (`@x402/fetch` + `@x402/evm`, `@x402/express`, 2.27.0, pinned in
//! tools/package.json), unchanged. Every process is stopped at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use base64::Engine;
use common::devnet::{metis_rules_proxy, settled_in, Devnet};
use common::fakenode::{FakeNode, ProxyLog};
use common::proc::Proc;
use gmrelay::x402::evm::{authorization_hash, TransferWithAuthorization};
use serde_json::{json, Value};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gmrelay")
}

/// A devnet with the relayer (facilitator on) and the example resource.
struct Net {
    devnet: Devnet,
    _proxy: FakeNode,
    config: PathBuf,
    relayer: Proc,
    example: Proc,
}

impl Net {
    fn start() -> Net {
        let devnet = Devnet::up();
        let metis = devnet.metis_url();
        let proxy = metis_rules_proxy(metis.clone(), Arc::new(Mutex::new(ProxyLog::default())));
        // The relayer and the example reach Metis through Andromeda's rules.
        let text = std::fs::read_to_string(devnet.path().join("gmrelay.toml")).unwrap();
        let text = text.replace(
            &format!("rpc_url = \"{metis}\""),
            &format!("rpc_url = \"{}\"", proxy.url),
        );
        let config = devnet.path().join("x402.toml");
        std::fs::write(&config, text).unwrap();
        let mut run = Command::new(bin());
        run.args(["run", "--config", config.to_str().unwrap()])
            .env("GMRELAY_LOG_LEVEL", "info,gmrelay=debug");
        let relayer = Proc::start(run, "x402 facilitator", &devnet.path().join("relayer.log"));
        let mut ex = Command::new(bin());
        ex.args([
            "x402",
            "serve-example",
            "--config",
            config.to_str().unwrap(),
        ])
        .env("GMRELAY_LOG_LEVEL", "info");
        let example = Proc::start(ex, "paid resource", &devnet.path().join("example.log"));
        Net {
            devnet,
            _proxy: proxy,
            config,
            relayer,
            example,
        }
    }
    fn d(&self) -> Value {
        self.devnet.file()
    }
    fn facilitator(&self) -> String {
        self.relayer.url()
    }
    async fn settlements(&self, id: &str) -> usize {
        settled_in(
            &self.devnet.metis_url(),
            self.devnet.settlement(),
            id.parse().unwrap(),
        )
        .await
        .len()
    }
    fn logs(&self) -> String {
        let read =
            |f: &str| std::fs::read_to_string(self.devnet.path().join(f)).unwrap_or_default();
        format!(
            "--- relayer\n{}\n--- example\n{}",
            tail(&read("relayer.log")),
            read("example.log")
        )
    }
    /// `gmrelay x402 pay` with `--json`; the report.
    fn pay(&self, url: &str, rail: &str) -> Value {
        let mut args = vec![
            "x402",
            "pay",
            url,
            "--rail",
            rail,
            "--json",
            "--timeout",
            "180",
            "--config",
        ];
        let config = self.config.to_str().unwrap().to_string();
        args.push(&config);
        if rail == "btc" {
            args.push("--mine-regtest");
        }
        let o = Command::new(bin())
            .args(&args)
            .env("GMRELAY_LOG_LEVEL", "warn")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "x402 pay {rail}: {out}{}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn b64json(h: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD.decode(h).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn node(script: &str, args: &[&str]) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::new("node");
    c.arg(root.join("tests/x402").join(script)).args(args);
    c
}

/// The stock client (`tests/x402/stock-client.mjs`): its JSON report.
fn stock_client(url: &str, key: &str, asset: &str, allow: bool) -> Value {
    let mut args = vec![url, key, "eip155:2345", asset];
    if !allow {
        args.push("--no-allow");
    }
    let o = node("stock-client.mjs", &args).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap_or("null")).unwrap_or_else(|_| {
        panic!(
            "stock client printed no report: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_pays_on_both_rails_settles_once_and_a_replay_unlocks_nothing() {
    let net = Net::start();
    let url = net.example.url();
    let client = http();

    // The 402, as a client sees it.
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 402);
    let pr = b64json(r.headers()["PAYMENT-REQUIRED"].to_str().unwrap());
    assert_eq!(pr["x402Version"], 2);
    assert_eq!(pr["resource"]["url"], url.as_str());
    let accepts = pr["accepts"].as_array().unwrap();
    let goat = accepts
        .iter()
        .find(|a| a["network"] == "eip155:2345")
        .unwrap();
    let btc = accepts
        .iter()
        .find(|a| a["network"] == "bip122:0f9188f13cb7b2c71f2a335e3a4fc328")
        .unwrap();
    for a in [goat, btc] {
        assert_eq!(a["scheme"], "exact");
        assert!(a["maxTimeoutSeconds"].as_u64().unwrap() > 0);
    }
    assert_eq!(goat["amount"], "10000");
    assert_eq!(
        goat["asset"].as_str().unwrap().to_lowercase(),
        net.d()["goat_token"].as_str().unwrap().to_lowercase()
    );
    assert_eq!(goat["extra"]["name"], "USD Coin");
    assert_eq!(goat["extra"]["version"], "2");
    assert_eq!(btc["amount"], "50000");
    assert_eq!(btc["payTo"], net.d()["merchant_btc_payee"]);
    assert_eq!(btc["extra"]["opReturn"].as_str().unwrap().len(), 64);
    assert!(btc["extra"]["gmrelay"]["invoice"]["signature"].is_string());
    // Two 402s offer two Bitcoin invoices.
    let again = client.get(&url).send().await.unwrap();
    let pr2 = b64json(again.headers()["PAYMENT-REQUIRED"].to_str().unwrap());
    assert_ne!(
        pr2["accepts"][1]["extra"]["opReturn"],
        btc["extra"]["opReturn"]
    );

    for rail in ["goat", "btc"] {
        let report = net.pay(&url, rail);
        assert_eq!(report["status"], 200, "{report}");
        assert_eq!(report["resource"]["resource"], "the paid content: 42");
        let id = report["invoice_id"].as_str().unwrap().to_string();
        let pr = &report["payment_response"];
        assert_eq!(pr["success"], true);
        assert!(!pr["transaction"].as_str().unwrap().is_empty());
        let metis_tx: B256 = report["metis_transaction"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let settled = settled_in(
            &net.devnet.metis_url(),
            net.devnet.settlement(),
            id.parse().unwrap(),
        )
        .await;
        assert_eq!(
            settled,
            vec![metis_tx],
            "{rail}: one InvoiceSettled, in the reported tx"
        );

        // The same payment again: no second unlock, no second settlement.
        let header = report["payment_signature"].as_str().unwrap();
        let replay = client
            .get(&url)
            .header("PAYMENT-SIGNATURE", header)
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 409, "{rail} replay");
        let body: Value = replay.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("reported already"),
            "{body}"
        );
        // Straight to the facilitator too.
        let payload = b64json(header);
        let req = json!({"x402Version": 2, "paymentPayload": payload,
                         "paymentRequirements": payload["accepted"]});
        let v: Value = client
            .post(format!("{}/verify", net.facilitator()))
            .json(&req)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["isValid"], false);
        assert_eq!(v["invalidReason"], "invalid_transaction_state");
        assert_eq!(
            net.settlements(&id).await,
            1,
            "{rail}: still one settlement"
        );
    }
}

/// A GOAT authorization signed with `key`, as the stock client builds one.
fn goat_payload(
    net: &Net,
    key: &PrivateKeySigner,
    edit: impl Fn(&mut TransferWithAuthorization),
) -> Value {
    signed_payload(net, key, |_| {}, edit)
}

/// `pre` edits the authorization before it is signed, `post` after.
fn signed_payload(
    net: &Net,
    key: &PrivateKeySigner,
    pre: impl Fn(&mut TransferWithAuthorization),
    post: impl Fn(&mut TransferWithAuthorization),
) -> Value {
    let d = net.d();
    let token: Address = d["goat_token"].as_str().unwrap().parse().unwrap();
    let pay_to: Address = d["merchant_goat_payee"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut auth = TransferWithAuthorization {
        from: key.address(),
        to: pay_to,
        value: U256::from(10_000u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(now + 300),
        nonce: gmrelay::metis::invoice::random_ref().unwrap(),
    };
    pre(&mut auth);
    let hash = authorization_hash("USD Coin", "2", 2345, token, &auth);
    post(&mut auth);
    let sig = key.sign_hash_sync(&hash).unwrap();
    let accepted = json!({
        "scheme": "exact", "network": "eip155:2345", "amount": "10000",
        "asset": token.to_string(), "payTo": pay_to.to_string(), "maxTimeoutSeconds": 300,
        "extra": {"name": "USD Coin", "version": "2"},
    });
    json!({
        "x402Version": 2,
        "accepted": accepted,
        "payload": {
            "signature": format!("0x{}", hex::encode(sig.as_bytes())),
            "authorization": {
                "from": auth.from.to_string(), "to": auth.to.to_string(),
                "value": auth.value.to_string(), "validAfter": auth.validAfter.to_string(),
                "validBefore": auth.validBefore.to_string(), "nonce": auth.nonce.to_string(),
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_x402_clients_and_servers_work_with_gmrelay_unchanged() {
    let net = Net::start();
    let d = net.d();
    let key = d["agent_goat_key"].as_str().unwrap();
    let token = d["goat_token"].as_str().unwrap();
    let url = net.example.url();

    // As its documentation says, the stock client refuses a token it does
    // not know until the agent allows it.
    let refused = stock_client(&url, key, token, false);
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("spendControls"),
        "{refused}"
    );

    // The stock client buys gmrelay's example resource.
    let r = stock_client(&url, key, token, true);
    assert_eq!(r["status"], 200, "{r}\n{}", net.logs());
    let sent = &r["sent"][0];
    assert_eq!(sent["x402Version"], 2);
    assert!(sent["payload"]["authorization"]["nonce"].is_string());
    assert!(sent["payload"]["signature"].is_string());
    assert_eq!(sent["resource"]["url"], url.as_str());
    assert_eq!(sent["accepted"]["network"], "eip155:2345");
    assert_eq!(r["paymentResponse"]["success"], true);
    let id = r["paymentResponse"]["extensions"]["gmrelay"]["invoiceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(net.settlements(&id).await, 1);

    // A stock express server whose facilitator is gmrelay's.
    let server = Proc::start(
        {
            let mut c = node(
                "stock-server.mjs",
                &[
                    &net.facilitator(),
                    "eip155:2345",
                    token,
                    "USD Coin",
                    "2",
                    d["merchant_goat_payee"].as_str().unwrap(),
                    "7000",
                ],
            );
            c.current_dir(net.devnet.path());
            c
        },
        "listening",
        &net.devnet.path().join("stock-server.log"),
    );
    let weather = server.url();
    let by_stock = stock_client(&weather, key, token, true);
    assert_eq!(by_stock["status"], 200, "{by_stock}\n{}", net.logs());
    assert_eq!(by_stock["body"]["weather"], "sunny");
    let id1 = by_stock["paymentResponse"]["extensions"]["gmrelay"]["invoiceId"]
        .as_str()
        .unwrap()
        .to_string();
    let by_gmrelay = net.pay(&weather, "goat");
    assert_eq!(by_gmrelay["resource"]["weather"], "sunny");
    let id2 = by_gmrelay["invoice_id"].as_str().unwrap().to_string();
    assert_ne!(id1, id2);
    for id in [&id1, &id2] {
        assert_eq!(net.settlements(id).await, 1, "{id}");
    }

    // The stock client's payment, replayed at the stock server and at
    // gmrelay's resource: no second resource, no second settlement.
    let header = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&by_stock["sent"][0]).unwrap());
    let client = http();
    let replay = client
        .get(&weather)
        .header("PAYMENT-SIGNATURE", &header)
        .send()
        .await
        .unwrap();
    assert_ne!(replay.status(), 200, "a replay unlocked the stock server");
    let elsewhere = client
        .get(&url)
        .header("PAYMENT-SIGNATURE", &header)
        .send()
        .await
        .unwrap();
    assert_ne!(
        elsewhere.status(),
        200,
        "a replay unlocked another resource"
    );
    assert_eq!(net.settlements(&id1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitator_refuses_each_bad_payment_with_its_code_and_keeps_serving() {
    let net = Net::start();
    let client = http();
    let agent: PrivateKeySigner = net.d()["agent_goat_key"].as_str().unwrap().parse().unwrap();
    let verify = |body: Value| {
        let client = client.clone();
        let url = format!("{}/verify", net.facilitator());
        async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let request = |p: Value| json!({"x402Version": 2, "paymentRequirements": p["accepted"], "paymentPayload": p});

    let good = goat_payload(&net, &agent, |_| {});
    let (status, v) = verify(request(good.clone())).await;
    assert_eq!((status, &v["isValid"]), (200, &json!(true)), "{v}");
    assert_eq!(
        v["payer"].as_str().unwrap().to_lowercase(),
        agent.address().to_string().to_lowercase()
    );

    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "invalid_exact_evm_payload_authorization_value_mismatch",
            Box::new(|r| r["paymentPayload"]["payload"]["authorization"]["value"] = json!("9999")),
        ),
        (
            "invalid_exact_evm_payload_recipient_mismatch",
            Box::new(|r| {
                r["paymentRequirements"]["payTo"] =
                    json!("0x0000000000000000000000000000000000000001")
            }),
        ),
        (
            "invalid_exact_evm_payload_authorization_valid_before",
            Box::new(|r| {
                r["paymentPayload"]["payload"]["authorization"]["validBefore"] = json!("1")
            }),
        ),
        (
            "invalid_exact_evm_payload_authorization_valid_after",
            Box::new(|r| {
                r["paymentPayload"]["payload"]["authorization"]["validAfter"] = json!("99999999999")
            }),
        ),
        (
            "invalid_exact_evm_payload_signature",
            Box::new(|r| {
                r["paymentPayload"]["payload"]["authorization"]["nonce"] =
                    json!(B256::repeat_byte(7).to_string())
            }),
        ),
        (
            "invalid_payment_requirements",
            Box::new(|r| r["paymentRequirements"]["extra"] = json!({})),
        ),
        (
            "invalid_payment_requirements",
            Box::new(|r| {
                r["paymentRequirements"]["asset"] =
                    json!("0x0000000000000000000000000000000000000002")
            }),
        ),
        (
            "invalid_network",
            Box::new(|r| {
                r["paymentRequirements"]["network"] = json!("eip155:1");
                r["paymentPayload"]["accepted"]["network"] = json!("eip155:1");
            }),
        ),
        (
            "unsupported_scheme",
            Box::new(|r| r["paymentRequirements"]["scheme"] = json!("upto")),
        ),
        (
            "invalid_scheme",
            Box::new(|r| r["paymentPayload"]["accepted"]["scheme"] = json!("upto")),
        ),
        (
            "invalid_payload",
            Box::new(|r| r["paymentPayload"]["payload"]["authorization"]["from"] = json!("me")),
        ),
    ];
    for (code, edit) in &cases {
        let mut r = request(good.clone());
        edit(&mut r);
        let (status, v) = verify(r).await;
        assert_eq!(status, 200);
        assert_eq!(v["isValid"], false, "{code}: {v}");
        assert_eq!(v["invalidReason"], *code, "{v}");
        assert!(v["invalidMessage"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A payer without tokens.
    let poor = PrivateKeySigner::random();
    let (_, v) = verify(request(goat_payload(&net, &poor, |_| {}))).await;
    assert_eq!(v["invalidReason"], "insufficient_funds", "{v}");
    // Bodies that are not x402.
    for (body, code) in [
        (json!("not an object"), "invalid_payload"),
        (
            json!({"x402Version": 3, "paymentPayload": {"x402Version": 3}, "paymentRequirements": good["accepted"]}),
            "invalid_x402_version",
        ),
    ] {
        let (status, v) = verify(body).await;
        assert_eq!(
            (status, v["invalidReason"].as_str().unwrap()),
            (400, code),
            "{v}"
        );
    }

    // The resource: unreadable headers get a 400 with the reason, a payment
    // it does not offer a 402 with the reason; it keeps serving.
    let url = net.example.url();
    let good_header =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&good).unwrap());
    let mut wrong_network = good.clone();
    wrong_network["accepted"]["network"] = json!("eip155:1");
    let wrong_network = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&wrong_network).unwrap());
    let mut wrong_type = good.clone();
    wrong_type["accepted"]["maxTimeoutSeconds"] = json!("soon");
    let wrong_type =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&wrong_type).unwrap());
    let big = "A".repeat(20_000);
    for (header, status, want) in [
        ("%%% not base64", 400, "base64"),
        (
            base64::engine::general_purpose::STANDARD
                .encode("{not json")
                .as_str(),
            400,
            "PAYMENT-SIGNATURE",
        ),
        (big.as_str(), 400, "more than"),
        (wrong_type.as_str(), 400, "maxTimeoutSeconds"),
        (wrong_network.as_str(), 402, "not offered"),
    ] {
        let r = client
            .get(&url)
            .header("PAYMENT-SIGNATURE", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{want}");
        let why = if status == 402 {
            b64json(r.headers()["PAYMENT-REQUIRED"].to_str().unwrap())["error"].to_string()
        } else {
            r.json::<Value>().await.unwrap()["error"].to_string()
        };
        assert!(why.contains(want), "`{why}` lacks `{want}`");
    }
    // Still serving: a 402 without payment, and the good payment goes through.
    assert_eq!(client.get(&url).send().await.unwrap().status(), 402);
    let r = client
        .get(&url)
        .header("PAYMENT-SIGNATURE", &good_header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", net.logs());
    let body: Value = r.json().await.unwrap();
    let id = body["invoiceId"].as_str().unwrap().to_string();

    // Another funded payer reusing the settled payment's nonce: the resource
    // signs the same invoice (ref = nonce), which unlocked already; refused,
    // and nothing is settled or paid again.
    let second = PrivateKeySigner::random();
    let d = net.d();
    gmrelay::goat::devnet::mint(
        d["goat_rpc_url"].as_str().unwrap(),
        d["goat_token"].as_str().unwrap().parse().unwrap(),
        second.address(),
        U256::from(1_000_000u64),
    )
    .await
    .unwrap();
    let nonce: B256 = good["payload"]["authorization"]["nonce"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let same_ref = signed_payload(&net, &second, |a| a.nonce = nonce, |_| {});
    let header =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&same_ref).unwrap());
    let r = client
        .get(&url)
        .header("PAYMENT-SIGNATURE", &header)
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.status(),
        200,
        "a second payer with the same ref unlocked the resource again"
    );
    let why = b64json(r.headers()["PAYMENT-REQUIRED"].to_str().unwrap())["error"].to_string();
    assert!(why.contains("unlocked a resource already"), "{why}");
    assert_eq!(net.settlements(&id).await, 1);
}
