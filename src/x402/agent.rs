//! `gmrelay x402 pay <url> --rail goat|btc`: an x402 agent. It reads the
//! 402, picks the offer on the rail asked for, refuses one above its limits
//! (`agent.max_goat_amount`, `agent.max_btc_sat`), signs (GOAT: an EIP-3009
//! authorization with a random nonce; Bitcoin: a P2WPKH transaction paying
//! `payTo` with `OP_RETURN <extra.opReturn>`), retries with
//! `PAYMENT-SIGNATURE`, and while the answer is 202 (`settlement_pending`)
//! sends the same payment again after `Retry-After`, until 200.
//! Keys come from `[agent]` (a file or an environment variable) and are
//! never printed.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::signers::SignerSync;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use super::evm::{self, TransferWithAuthorization};
use super::wire::{
    self, decode_header_json, encode_header, PaymentRequired, Requirements, SettleResponse,
};
use crate::btc::network::BtcNetwork;
use crate::config::Config;
use crate::rail::Rail;

/// How `pay` runs.
#[derive(Debug, Clone)]
pub struct PayOptions {
    /// The resource.
    pub url: String,
    /// The rail to pay on.
    pub rail: Rail,
    /// Give up after this long.
    pub timeout: Duration,
    /// Regtest only: mine a block on each pending answer (a devnet has no miner).
    pub mine_regtest: bool,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct PayReport {
    /// The final HTTP status (200).
    pub status: u16,
    /// The resource's body.
    pub resource: Value,
    /// The decoded `PAYMENT-RESPONSE`.
    pub payment_response: Option<SettleResponse>,
    /// The offer paid.
    pub network: String,
    /// The payment transaction (GOAT hash or Bitcoin txid).
    pub transaction: String,
    /// The Metis settlement transaction.
    pub metis_transaction: Option<String>,
    /// The invoice settled.
    pub invoice_id: Option<String>,
    /// The `PAYMENT-SIGNATURE` header sent (base64 JSON; no key in it).
    pub payment_signature: String,
    /// Requests sent (the first, the payment, each retry).
    pub requests: u32,
    /// From the first request to the 200, milliseconds.
    pub elapsed_ms: u64,
}

/// One message on the wire, decoded, for `--show-wire` and the demo.
#[derive(Debug, Clone)]
pub struct WireEvent {
    /// `→` request or `←` answer.
    pub direction: &'static str,
    /// A short line (method, status).
    pub line: String,
    /// The decoded x402 header, if any.
    pub header: Option<(&'static str, Value)>,
}

fn pick(pr: &PaymentRequired, rail: Rail, config: &Config) -> Result<Requirements> {
    let want = match rail {
        Rail::Goat => format!("eip155:{}", config.goat.chain_id),
        Rail::Btc => config.btc.network.caip2(),
    };
    pr.accepts
        .iter()
        .find(|r| r.scheme == "exact" && r.network.to_string() == want)
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "the resource offers no `exact` payment on {want} ({rail}); it offers: {}",
                pr.accepts
                    .iter()
                    .map(|r| format!("{} on {}", r.scheme, r.network))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn goat_payload(config: &Config, req: &Requirements) -> Result<Value> {
    let a = &config.agent;
    let max = evm::parse_uint(&a.max_goat_amount).unwrap_or_default();
    let t = evm::terms(req, config.goat.chain_id).map_err(|e| anyhow!("the GOAT offer: {e}"))?;
    if t.amount > max {
        bail!(
            "the GOAT offer asks {} base units of {}, above agent.max_goat_amount {max}",
            t.amount,
            t.asset
        );
    }
    let key = crate::app::signer_from(
        a.goat_key_file.as_deref(),
        &a.goat_key_env,
        "agent.goat_key",
    )?;
    let now = crate::daemon::now_ms() / 1000;
    let auth = TransferWithAuthorization {
        from: key.address(),
        to: t.pay_to,
        value: t.amount,
        validAfter: U256::ZERO,
        validBefore: U256::from(now + req.max_timeout_seconds.max(60)),
        nonce: crate::metis::invoice::random_ref()?,
    };
    let hash = evm::authorization_hash(&t.name, &t.version, t.chain_id, t.asset, &auth);
    let sig = key.sign_hash_sync(&hash)?;
    Ok(json!({
        "signature": format!("0x{}", hex::encode(sig.as_bytes())),
        "authorization": {
            "from": auth.from.to_string(),
            "to": auth.to.to_string(),
            "value": auth.value.to_string(),
            "validAfter": auth.validAfter.to_string(),
            "validBefore": auth.validBefore.to_string(),
            "nonce": auth.nonce.to_string(),
        }
    }))
}

/// A spendable coin of the agent's address: mature, not spent in the mempool.
async fn pick_coin(
    rpc: &crate::btc::rpc::BitcoindRpc,
    address: &bitcoin::Address,
    need: u64,
) -> Result<(bitcoin::OutPoint, bitcoin::TxOut)> {
    let scan = rpc
        .call(
            "scantxoutset",
            json!(["start", [format!("addr({address})")]]),
        )
        .await
        .context("scantxoutset (bitcoind scans the UTXO set for the agent's coins)")?;
    let tip = scan["height"].as_u64().unwrap_or(0);
    let mut coins: Vec<&Value> = scan["unspents"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    // Newest first: a devnet's own helpers spend its oldest coinbases.
    coins.sort_by_key(|c| std::cmp::Reverse(c["height"].as_u64().unwrap_or(0)));
    for c in coins {
        let sat = (c["amount"].as_f64().unwrap_or(0.0) * 1e8).round() as u64;
        let height = c["height"].as_u64().unwrap_or(u64::MAX);
        let mature = !c["coinbase"].as_bool().unwrap_or(false) || tip + 1 >= height + 100;
        if sat < need || !mature {
            continue;
        }
        let (Some(txid), Some(vout)) = (c["txid"].as_str(), c["vout"].as_u64()) else {
            continue;
        };
        // Spent by a transaction still in the mempool?
        let out = rpc.call("gettxout", json!([txid, vout, true])).await?;
        if out.is_null() {
            continue;
        }
        let outpoint = bitcoin::OutPoint {
            txid: txid.parse()?,
            vout: u32::try_from(vout)?,
        };
        let txout = bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(sat),
            script_pubkey: address.script_pubkey(),
        };
        return Ok((outpoint, txout));
    }
    bail!("the agent's address {address} has no mature coin of at least {need} sat")
}

async fn btc_payload(config: &Config, req: &Requirements) -> Result<Value> {
    let a = &config.agent;
    let network: BtcNetwork = config.btc.network;
    let amount: u64 = req.amount.parse().map_err(|_| {
        anyhow!(
            "the Bitcoin offer's amount `{}` is not satoshis",
            req.amount
        )
    })?;
    if amount > a.max_btc_sat {
        bail!(
            "the Bitcoin offer asks {amount} sat, above agent.max_btc_sat {}",
            a.max_btc_sat
        );
    }
    let script = crate::app::parse_script(&req.pay_to, network)
        .with_context(|| format!("the Bitcoin offer's payTo `{}`", req.pay_to))?;
    let op: [u8; 32] = req
        .extra
        .as_ref()
        .and_then(|e| e.get("opReturn"))
        .and_then(Value::as_str)
        .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("the Bitcoin offer has no 32-byte extra.opReturn to name"))?;
    let secret =
        crate::app::secret_from(a.btc_key_file.as_deref(), &a.btc_key_env, "agent.btc_key")?;
    let payer = crate::devnet::Payer::from_secret(secret.0, network.bitcoin_network())
        .ok_or_else(|| anyhow!("agent.btc_key is not a valid secp256k1 key"))?;
    let rpc = crate::app::btc_source(config)?;
    let coin = pick_coin(&rpc, &payer.address, amount + a.btc_fee_sat).await?;
    let tx = payer.pay(
        coin,
        &script,
        bitcoin::Amount::from_sat(amount),
        &op,
        bitcoin::Amount::from_sat(a.btc_fee_sat),
    )?;
    Ok(json!({"transaction": bitcoin::consensus::encode::serialize_hex(&tx)}))
}

fn decoded(resp: &reqwest::Response, name: &'static str) -> Option<(&'static str, Value)> {
    let h = resp.headers().get(name)?.to_str().ok()?;
    decode_header_json(name, h).ok().map(|v| (name, v))
}

/// Pays for `opts.url`; `on_wire` sees each message.
pub async fn pay(
    config: &Config,
    opts: &PayOptions,
    mut on_wire: impl FnMut(WireEvent),
) -> Result<PayReport> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.x402.settle_timeout_secs + 30))
        .build()?;
    on_wire(WireEvent {
        direction: "→",
        line: format!("GET {}", opts.url),
        header: None,
    });
    let first = http
        .get(&opts.url)
        .send()
        .await
        .with_context(|| format!("GET {}", opts.url))?;
    let status = first.status();
    on_wire(WireEvent {
        direction: "←",
        line: format!("{status}"),
        header: decoded(&first, wire::PAYMENT_REQUIRED),
    });
    if status != reqwest::StatusCode::PAYMENT_REQUIRED {
        bail!("{}: answered {status}, not 402 Payment Required", opts.url);
    }
    let header = first
        .headers()
        .get(wire::PAYMENT_REQUIRED)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let pr_json = match header {
        Some(h) => decode_header_json(wire::PAYMENT_REQUIRED, &h)?,
        None => first
            .json()
            .await
            .context("the 402 has no PAYMENT-REQUIRED header and no JSON body")?,
    };
    let pr: PaymentRequired = serde_json::from_value(pr_json)
        .map_err(|e| anyhow!("{}: the 402 is not x402 v2: {e}", opts.url))?;
    let accepted = pick(&pr, opts.rail, config)?;
    let payload = match opts.rail {
        Rail::Goat => goat_payload(config, &accepted)?,
        Rail::Btc => btc_payload(config, &accepted).await?,
    };
    let message = json!({
        "x402Version": 2,
        "resource": pr.resource,
        "accepted": accepted,
        "payload": payload,
    });
    let header = encode_header(&message);
    let mut requests = 1;
    loop {
        requests += 1;
        on_wire(WireEvent {
            direction: "→",
            line: format!(
                "GET {} ({} attempt {})",
                opts.url,
                wire::PAYMENT_SIGNATURE,
                requests - 1
            ),
            header: (requests == 2).then(|| (wire::PAYMENT_SIGNATURE, message.clone())),
        });
        let r = http
            .get(&opts.url)
            .header(wire::PAYMENT_SIGNATURE, &header)
            .send()
            .await
            .with_context(|| format!("GET {} with the payment", opts.url))?;
        let status = r.status();
        let response = decoded(&r, wire::PAYMENT_RESPONSE);
        on_wire(WireEvent {
            direction: "←",
            line: format!("{status}"),
            header: response.clone(),
        });
        let settle: Option<SettleResponse> = response
            .as_ref()
            .and_then(|(_, v)| serde_json::from_value(v.clone()).ok());
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match status.as_u16() {
            200 => {
                let gm = settle
                    .as_ref()
                    .and_then(|s| s.extensions.as_ref())
                    .and_then(|e| e.get("gmrelay"))
                    .cloned()
                    .unwrap_or(Value::Null);
                return Ok(PayReport {
                    status: 200,
                    network: accepted.network.to_string(),
                    transaction: settle
                        .as_ref()
                        .map(|s| s.transaction.clone())
                        .unwrap_or_default(),
                    metis_transaction: gm["metisTransaction"].as_str().map(str::to_string),
                    invoice_id: gm["invoiceId"].as_str().map(str::to_string),
                    payment_response: settle,
                    resource: body,
                    payment_signature: header.clone(),
                    requests,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            }
            202 => {
                if started.elapsed() > opts.timeout {
                    bail!(
                        "{}: still pending after {} s ({})",
                        opts.url,
                        opts.timeout.as_secs(),
                        body["message"].as_str().unwrap_or("")
                    );
                }
                if opts.mine_regtest && opts.rail == Rail::Btc {
                    // Mine what is still missing (one block when unknown).
                    let gm = settle
                        .as_ref()
                        .and_then(|s| s.extensions.as_ref())
                        .and_then(|e| e.get("gmrelay"));
                    let have = gm.and_then(|g| g["confirmations"].as_u64()).unwrap_or(0);
                    let need = gm
                        .and_then(|g| g["requiredConfirmations"].as_u64())
                        .unwrap_or(0);
                    mine(config, need.saturating_sub(have).max(1)).await?;
                }
                tokio::time::sleep(Duration::from_secs(retry_after.clamp(1, 30))).await;
            }
            _ => {
                let why = body["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| body.to_string());
                bail!("{}: the payment was refused ({status}): {why}", opts.url);
            }
        }
    }
}

/// Mines `n` regtest blocks (a devnet has no miner of its own).
async fn mine(config: &Config, n: u64) -> Result<()> {
    if config.btc.network != BtcNetwork::Regtest {
        bail!("--mine-regtest needs btc.network = regtest");
    }
    let rpc = crate::app::btc_source(config)?;
    // Any address: a throwaway regtest key's.
    let to = crate::devnet::Payer::from_seed([0x42; 32]).address;
    rpc.call("generatetoaddress", json!([n.min(10), to.to_string()]))
        .await?;
    Ok(())
}
