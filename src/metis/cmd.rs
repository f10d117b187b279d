//! `gmrelay contracts …` and `gmrelay metis …`: the commands behind the
//! Metis half of the command line. Errors become `anyhow` here only.

use crate::app::{metis_contracts as contracts, metis_sink as sink, relayer_key};
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::attest::{self, AttestDomain};
use super::bindings::{RAIL_BTC, RAIL_GOAT};
use super::deploy::{self, DeployParams};
use super::relay::{self, RelayOptions};
use super::settle::{self, SettleOptions};
use super::sink::{MetisSink, NewInvoice};
use crate::btc::network::BtcNetwork;
use crate::config::Config;
use crate::proof::ProofFile;

/// `gmrelay contracts …`
#[derive(Debug, Subcommand)]
pub enum ContractsCmd {
    /// Deploys BtcLightClient (from the store's Bitcoin checkpoint), GoatHeaderStore
    /// (metis.committee / metis.threshold / goat.chain_id) and PaymentSettlement
    /// (metis.min_btc_confirmations), and writes the deployment file.
    Deploy {
        /// Replace an existing deployment file.
        #[arg(long)]
        force: bool,
        /// Regtest only: do not deploy the test stablecoin on the GOAT devnet.
        #[arg(long)]
        no_test_token: bool,
    },
    /// Prints the deployment the other commands use (file plus metis.* overrides).
    Show,
}

/// `gmrelay metis …`
#[derive(Debug, Subcommand)]
pub enum MetisCmd {
    /// Submits the local best Bitcoin chain's headers BtcLightClient lacks, in
    /// batches of metis.header_batch.
    RelayHeaders,
    /// Attests a stored, finalized GOAT header: signs it with this operator's
    /// key(s) (the variable named by metis.attester_keys_env), adds --signature
    /// from other members, and submits it to GoatHeaderStore.
    AttestGoat {
        /// The GOAT block number.
        #[arg(long)]
        block: u64,
        /// A 65-byte committee signature (hex r||s||v) made elsewhere. Repeatable.
        #[arg(long = "signature")]
        signatures: Vec<String>,
        /// Only sign and print this operator's signatures (for another submitter).
        #[arg(long)]
        sign_only: bool,
        /// Regtest only: sign with the five deterministic devnet committee keys.
        #[arg(long)]
        devnet_committee: bool,
    },
    /// Invoices on PaymentSettlement.
    #[command(subcommand)]
    Invoice(InvoiceCmd),
    /// Settles an invoice with a gmrelay proof file (BTC or GOAT).
    Settle {
        /// The proof file (`gmrelay btc prove` / `gmrelay goat prove`).
        proof: PathBuf,
        /// The invoice id (32-byte hex).
        #[arg(long)]
        invoice: String,
        /// Submit without local checks: the contract judges, and its custom
        /// error is printed decoded.
        #[arg(long)]
        skip_checks: bool,
    },
}

pub use crate::rail::Rail;

/// `gmrelay metis invoice …`
#[derive(Debug, Subcommand)]
pub enum InvoiceCmd {
    /// Creates an invoice.
    Create {
        /// Salt (32-byte hex): the invoice id is keccak256(abi.encode(creator, salt)),
        /// see `metis invoice id`. Default: a fresh random salt.
        #[arg(long)]
        salt: Option<String>,
        /// btc or goat.
        #[arg(long, value_enum)]
        rail: Rail,
        /// BTC: address or hex scriptPubKey; GOAT: 0x address.
        #[arg(long)]
        payee: String,
        /// GOAT: the token contract (default: the deployment's devnet token, else goat.tokens[0]).
        #[arg(long)]
        asset: Option<String>,
        /// Minimum amount: satoshis (BTC) or token base units (GOAT), decimal or 0x-hex.
        #[arg(long)]
        amount: String,
        /// Last unix time at which it may settle, or +secs from the latest Metis block.
        #[arg(long)]
        expiry: String,
        /// Service id (32-byte hex, default zero).
        #[arg(long)]
        service: Option<String>,
    },
    /// Prints the id an invoice made with `--salt` by `--creator` (default: the
    /// relayer key's address) will have: what goes into the 402 answer, the
    /// Bitcoin OP_RETURN and the EIP-3009 nonce. Needs no node.
    Id {
        /// Salt (32-byte hex).
        #[arg(long)]
        salt: String,
        /// Creator address (default: the address of the key in metis.key_env).
        #[arg(long)]
        creator: Option<String>,
    },
    /// Shows an invoice.
    Show {
        /// Invoice id (32-byte hex).
        #[arg(long)]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `gmrelay contracts …`.
pub async fn contracts_cmd(config: &Config, cmd: ContractsCmd) -> Result<()> {
    match cmd {
        ContractsCmd::Show => {
            let (c, file) = contracts(config)?;
            println!(
                "deployment file      {}",
                config.metis_deployment_file().display()
            );
            println!("BtcLightClient       {}", c.btc_light_client);
            println!("GoatHeaderStore      {}", c.goat_header_store);
            println!("PaymentSettlement    {}", c.payment_settlement);
            if let Some(t) = file.and_then(|d| d.goat_test_token) {
                println!("GOAT test token      {t}");
            }
            Ok(())
        }
        ContractsCmd::Deploy {
            force,
            no_test_token,
        } => {
            let path = config.metis_deployment_file();
            if path.exists() && !force {
                bail!(
                    "{} exists: pass --force to deploy anew and replace it",
                    path.display()
                );
            }
            let store = crate::app::open_store(config)?;
            let checkpoint = deploy::checkpoint_args(&store)?;
            let regtest = config.btc.network == BtcNetwork::Regtest;
            let (committee, threshold) = if config.metis.committee.is_empty() {
                if !regtest {
                    bail!("metis.committee is empty: set the GOAT attestation committee (and metis.threshold)");
                }
                let keys = attest::devnet_attester_keys();
                println!(
                    "metis.committee is empty: using the {}-of-{} devnet committee (deterministic keys; regtest only)",
                    attest::DEVNET_THRESHOLD,
                    keys.len()
                );
                (
                    keys.iter().map(|k| k.address()).collect(),
                    attest::DEVNET_THRESHOLD,
                )
            } else {
                (config.metis_committee(), u64::from(config.metis.threshold))
            };
            let params = DeployParams {
                checkpoint,
                committee,
                threshold,
                goat_chain_id: config.goat.chain_id,
                min_btc_confirmations: u64::from(config.metis.min_btc_confirmations),
            };
            let key = relayer_key(config)?;
            let url = config.metis_rpc_url();
            let mut d = deploy::deploy(&url, config.metis.chain_id, key, &params).await?;
            if regtest && !no_test_token {
                let goat_url = config.goat_rpc_url().replacen("ws://", "http://", 1);
                match crate::goat::devnet::deploy_token(&goat_url, "USD Coin", "USDC", "2").await {
                    Ok(t) => d.goat_test_token = Some(t),
                    Err(e) => eprintln!(
                        "note: no GOAT test token deployed ({goat_url}: {e}); pass --no-test-token to silence"
                    ),
                }
            }
            d.save(&path)?;
            println!(
                "BtcLightClient     {} (Bitcoin {} checkpoint {} at height {}, {} mode)",
                d.btc_light_client,
                d.btc_network,
                d.btc_checkpoint_hash,
                d.btc_checkpoint_height,
                if params.checkpoint.mode == super::bindings::NETWORK_REGTEST {
                    "Regtest"
                } else {
                    "Mainnet"
                }
            );
            println!(
                "GoatHeaderStore    {} (GOAT chain {}, {}-of-{} committee)",
                d.goat_header_store,
                d.goat_chain_id,
                d.threshold,
                d.committee.len()
            );
            println!(
                "PaymentSettlement  {} ({} BTC confirmations)",
                d.payment_settlement, d.min_btc_confirmations
            );
            if let Some(t) = d.goat_test_token {
                println!(
                    "GOAT test token    {t} (TestStablecoin \"USD Coin\" on {})",
                    config.goat_rpc_url()
                );
            }
            println!("deployment written to {}", path.display());
            Ok(())
        }
    }
}

/// Parses an amount: decimal or 0x-hex.
fn parse_amount(s: &str) -> Result<U256> {
    crate::goat::proof::parse_amount(s).map_err(|e| anyhow!(e))
}

fn parse_b256(s: &str, what: &str) -> Result<B256> {
    Ok(B256::from(
        crate::app::parse_invoice_id(s).with_context(|| format!("--{what}"))?,
    ))
}

/// Runs `gmrelay metis …`.
pub async fn run(config: &Config, cmd: MetisCmd) -> Result<()> {
    match cmd {
        MetisCmd::RelayHeaders => {
            let store = crate::app::open_store(config)?;
            let sink = sink(config, true).await?;
            let options = RelayOptions {
                batch: config.metis.header_batch,
                max_retry: Duration::from_secs(config.metis.max_retry_secs),
            };
            let done = relay::relay_headers(&store, &sink, options, |b| {
                println!(
                    "batch {}..={} ({} headers): gas {} ({} per header), tx {}",
                    b.from,
                    b.to,
                    b.count(),
                    b.outcome.gas_used,
                    b.gas_per_header(),
                    b.outcome.tx_hash
                );
            })
            .await?;
            let (h, hash) = sink.btc_best().await?;
            if done.is_empty() {
                println!(
                    "BtcLightClient is up to date: tip {h} {}",
                    relay::display(hash)
                );
            } else {
                let headers: u32 = done.iter().map(|b| b.count()).sum();
                let gas: u64 = done.iter().map(|b| b.outcome.gas_used).sum();
                println!(
                    "relayed {headers} headers in {} transaction(s), {gas} gas; BtcLightClient tip {h} {}",
                    done.len(),
                    relay::display(hash)
                );
            }
            Ok(())
        }
        MetisCmd::AttestGoat {
            block,
            signatures,
            sign_only,
            devnet_committee,
        } => {
            let store = crate::app::open_store(config)?;
            let keys = if devnet_committee {
                if config.btc.network != BtcNetwork::Regtest {
                    bail!("--devnet-committee is for regtest devnets only");
                }
                attest::devnet_attester_keys()
            } else {
                let var = &config.metis.attester_keys_env;
                match std::env::var(var) {
                    Ok(v) => attest::parse_keys(&v, var)?,
                    Err(_) => Vec::new(),
                }
            };
            let external = signatures
                .iter()
                .map(|s| {
                    hex::decode(s.trim_start_matches("0x"))
                        .map(Bytes::from)
                        .with_context(|| format!("--signature {s}: not hex"))
                })
                .collect::<Result<Vec<_>>>()?;
            if keys.is_empty() && external.is_empty() {
                bail!(
                    "no signatures: set {} (this member's hex key) or pass --signature",
                    config.metis.attester_keys_env
                );
            }
            let sink = sink(config, !sign_only).await?;
            let domain = AttestDomain {
                metis_chain_id: config.metis.chain_id,
                store: sink.contracts().goat_header_store,
            };
            let r = attest::attest_goat(&store, &sink, domain, block, &keys, &external, !sign_only)
                .await?;
            if sign_only || r.already_known {
                for (signer, sig) in &r.own_signatures {
                    println!("signature {signer} {sig}");
                }
            }
            if r.already_known {
                println!("GOAT block {} ({}) is already attested", r.number, r.hash);
            } else if let Some(o) = r.submitted {
                println!(
                    "attested GOAT block {} ({}) with {} signatures: gas {}, tx {}",
                    r.number, r.hash, r.signatures_used, o.gas_used, o.tx_hash
                );
            } else {
                println!(
                    "digest {} (GOAT block {} {}); not submitted (--sign-only)",
                    r.digest, r.number, r.hash
                );
            }
            Ok(())
        }
        MetisCmd::Invoice(InvoiceCmd::Id { salt, creator }) => {
            let salt = parse_b256(&salt, "salt")?;
            let creator = match creator {
                Some(c) => crate::goat::proof::parse_address(&c).map_err(|e| anyhow!(e))?,
                None => relayer_key(config)?.address(),
            };
            println!("{}", super::invoice_id(creator, salt));
            Ok(())
        }
        MetisCmd::Invoice(InvoiceCmd::Create {
            salt,
            rail,
            payee,
            asset,
            amount,
            expiry,
            service,
        }) => {
            let salt = match salt {
                Some(s) => parse_b256(&s, "salt")?,
                None => {
                    let mut bytes = [0u8; 32];
                    use std::io::Read;
                    std::fs::File::open("/dev/urandom")
                        .and_then(|mut f| f.read_exact(&mut bytes))
                        .context("reading a random salt from /dev/urandom (or pass --salt)")?;
                    alloy::primitives::B256::from(bytes)
                }
            };
            let sink = sink(config, true).await?;
            let (payee_bytes, asset, rail_n) = match rail {
                Rail::Btc => {
                    if asset.is_some() {
                        bail!("--asset is for GOAT invoices only");
                    }
                    let script = crate::app::parse_script(&payee, config.btc.network)?;
                    (Bytes::from(script.to_bytes()), Address::ZERO, RAIL_BTC)
                }
                Rail::Goat => {
                    let to: Address =
                        crate::goat::proof::parse_address(&payee).map_err(|e| anyhow!(e))?;
                    let asset = match asset {
                        Some(a) => crate::goat::proof::parse_address(&a).map_err(|e| anyhow!(e))?,
                        None => contracts(config)?
                            .1
                            .and_then(|d| d.goat_test_token)
                            .or_else(|| config.goat_tokens().first().copied())
                            .ok_or_else(|| anyhow!("--asset is required (no devnet token in the deployment, goat.tokens empty)"))?,
                    };
                    (Bytes::copy_from_slice(to.as_slice()), asset, RAIL_GOAT)
                }
            };
            let expiry = match expiry.strip_prefix('+') {
                Some(rel) => {
                    let secs: u64 = rel.parse().with_context(|| format!("--expiry {expiry}"))?;
                    sink.now().await? + secs
                }
                None => expiry
                    .parse()
                    .with_context(|| format!("--expiry {expiry}: unix seconds or +secs"))?,
            };
            let service_id = match service {
                Some(s) => parse_b256(&s, "service")?,
                None => B256::ZERO,
            };
            let inv = NewInvoice {
                salt,
                rail: rail_n,
                payee: payee_bytes,
                asset,
                amount: parse_amount(&amount)?,
                expiry,
                service_id,
            };
            let (id, o) = sink.create_invoice(&inv).await?;
            println!(
                "invoice {id} created (salt {salt}, {} rail, amount {}, expiry {expiry}): gas {}, tx {}",
                if rail_n == RAIL_BTC { "btc" } else { "goat" },
                inv.amount,
                o.gas_used,
                o.tx_hash
            );
            Ok(())
        }
        MetisCmd::Invoice(InvoiceCmd::Show { id, json }) => {
            let id = parse_b256(&id, "id")?;
            let sink = sink(config, false).await?;
            let inv = sink
                .invoice(id)
                .await?
                .ok_or_else(|| anyhow!("invoice {id} does not exist"))?;
            let payee = if inv.rail == RAIL_BTC {
                let script = bitcoin::ScriptBuf::from_bytes(inv.payee.to_vec());
                bitcoin::Address::from_script(&script, config.btc.network.bitcoin_network())
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| format!("script {}", inv.payee))
            } else {
                Address::try_from(inv.payee.as_ref())
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| inv.payee.to_string())
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "id": id,
                        "rail": inv.rail_name(),
                        "status": inv.status_name(),
                        "creator": inv.creator,
                        "payee": payee,
                        "payee_raw": inv.payee,
                        "asset": inv.asset,
                        "amount": inv.amount.to_string(),
                        "expiry": inv.expiry,
                        "service_id": inv.service_id,
                    }))?
                );
            } else {
                println!("invoice  {id}");
                println!("rail     {}", inv.rail_name());
                println!("status   {}", inv.status_name());
                println!("creator  {}", inv.creator);
                println!("payee    {payee}");
                if inv.rail == RAIL_GOAT {
                    println!("asset    {}", inv.asset);
                }
                println!("amount   {}", inv.amount);
                println!("expiry   {}", inv.expiry);
                println!("service  {}", inv.service_id);
            }
            Ok(())
        }
        MetisCmd::Settle {
            proof,
            invoice,
            skip_checks,
        } => {
            let id = parse_b256(&invoice, "invoice")?;
            let file = ProofFile::load(&proof)?;
            let store = crate::app::open_store(config)?;
            let sink = sink(config, true).await?;
            let r = settle::settle(
                &store,
                &sink,
                &file,
                id,
                SettleOptions {
                    network: config.btc.network,
                    skip_checks,
                },
            )
            .await
            .with_context(|| format!("settling invoice {id} with {}", proof.display()))?;
            println!(
                "settled invoice {id} ({} rail, {} {}{}): gas {}, tx {}",
                r.rail,
                if r.rail == "btc" { "vout" } else { "tx index" },
                r.source_index,
                if r.rail == "btc" {
                    format!(", {} header(s)", r.headers)
                } else {
                    String::new()
                },
                r.outcome.gas_used,
                r.outcome.tx_hash
            );
            Ok(())
        }
    }
}
