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
use super::deploy::{self, DeployParams};
use super::invoice::{SignedInvoice, Terms};
use super::relay::{self, RelayOptions};
use super::settle::{self, SettleOptions};
use super::sink::{InvoiceState, MetisSink};
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
    /// Invoices: signed off-chain, or created on PaymentSettlement.
    #[command(subcommand)]
    Invoice(InvoiceCmd),
    /// Settles an invoice with a gmrelay proof file (BTC or GOAT). GOAT blocks
    /// not yet attested on-chain are attested inline with this operator's
    /// committee keys (metis.attester_keys_env, or metis.devnet_attesters).
    Settle {
        /// The proof file (`gmrelay btc prove` / `gmrelay goat prove`).
        proof: PathBuf,
        /// The invoice: a JSON file of `metis invoice sign|create` ({terms, signature}).
        #[arg(long)]
        invoice: PathBuf,
        /// Submit without local checks: the contract judges, and its custom
        /// error is printed decoded.
        #[arg(long)]
        skip_checks: bool,
    },
}

pub use crate::rail::Rail;

/// The terms of a new invoice, as flags.
#[derive(Debug, clap::Args)]
pub struct TermsArgs {
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
    /// Last payment block time (unix seconds) that settles, or +secs from the latest Metis block.
    #[arg(long)]
    expiry: String,
    /// What the payment carries (32-byte hex: the EIP-3009 nonce or the
    /// OP_RETURN payload). Default: fresh random bytes.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Service contract PaymentSettlement calls on settlement (e.g. an AccessPass).
    #[arg(long)]
    service: Option<String>,
    /// Value passed to the service (32-byte hex, default zero).
    #[arg(long)]
    service_id: Option<String>,
    /// Also write the invoice ({terms, signature}) to this JSON file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `gmrelay metis invoice …`
#[derive(Debug, Subcommand)]
pub enum InvoiceCmd {
    /// Signs invoice terms off-chain (EIP-712) with the metis key as the
    /// merchant: costs nothing until paid. Prints the invoice JSON.
    Sign(TermsArgs),
    /// Creates an invoice on PaymentSettlement (the metis key is the merchant).
    Create(TermsArgs),
    /// Prints the id of `--merchant`'s invoice whose payment carries `--ref`:
    /// keccak256(abi.encode(merchant, ref)). Needs no node.
    Id {
        /// The payment's ref (32-byte hex).
        #[arg(long = "ref")]
        reference: String,
        /// Merchant address (default: the metis key's address).
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Shows what PaymentSettlement holds for an invoice id.
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
            let consensus = file
                .as_ref()
                .is_some_and(|d| d.goat_trust == deploy::GoatTrust::Consensus);
            let goat_name = if consensus {
                "GoatLightClient"
            } else {
                "GoatHeaderStore"
            };
            println!("{goat_name:<21}{}", c.goat_header_store);
            println!("PaymentSettlement    {}", c.payment_settlement);
            if let Some(t) = file.and_then(|d| d.goat_test_token) {
                println!("GOAT test token      {t}");
            }
            // What each contract trusts, read from the chain.
            let p = super::sink::provider(&config.metis_rpc_url())?;
            let btc = super::bindings::BtcLightClient::new(c.btc_light_client, p.clone());
            let goat = super::bindings::GoatHeaderStore::new(c.goat_header_store, p.clone());
            let lc = super::bindings::GoatLightClient::new(c.goat_header_store, p.clone());
            let ps = super::bindings::PaymentSettlement::new(c.payment_settlement, p);
            let trust = async {
                let network = btc.network().call().await?;
                let limit = btc.powLimit().call().await?;
                let cp = btc.checkpointHash().call().await?;
                let cp_height = btc.checkpointHeight().call().await?;
                let best = btc.bestHeight().call().await?;
                let goat_chain = goat.goatChainId().call().await?;
                let goat_trust = if consensus {
                    let st = lc.trustedState().call().await?;
                    let set = lc.validatorSet().call().await?;
                    let chain = lc.chainId().call().await?;
                    format!(
                        "GOAT's CometBFT validators ({chain}): {} validators, total power {}, trusted height {}{}, GOAT chain {goat_chain}",
                        set.validators.len(),
                        set.totalPower,
                        st.height,
                        if st.frozen { ", FROZEN by a misbehaviour proof" } else { "" }
                    )
                } else {
                    let committee = goat.committee().call().await?;
                    format!(
                        "a {}-of-{} committee ({}) attesting GOAT chain {goat_chain}",
                        committee.quorum,
                        committee.members.len(),
                        committee
                            .members
                            .iter()
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let confs = ps.minBtcConfirmations().call().await?;
                let ps_net = ps.btcNetwork().call().await?;
                let ps_goat = ps.goatChainId().call().await?;
                anyhow::Ok((
                    network, limit, cp, cp_height, best, goat_trust, confs, ps_net, ps_goat,
                ))
            }
            .await;
            match trust {
                Ok((network, limit, cp, cp_height, best, goat_trust, confs, ps_net, ps_goat)) => {
                    let name = |n: u8| match n {
                        super::bindings::NETWORK_MAINNET => "Bitcoin mainnet rules",
                        super::bindings::NETWORK_TESTNET4 => {
                            "Bitcoin testnet4 rules (minimum-difficulty blocks, BIP94)"
                        }
                        super::bindings::NETWORK_REGTEST => {
                            "regtest rules: no retargeting, trivial proof of work (test only)"
                        }
                        _ => "unknown rules",
                    };
                    println!("trusts:");
                    println!(
                        "  BtcLightClient     proof of work from checkpoint {} at height {cp_height}; {}; pow limit {limit:#x}; best height {best}",
                        super::relay::display(cp),
                        name(network)
                    );
                    println!("  {goat_name:<19}{goat_trust}");
                    println!(
                        "  PaymentSettlement  BtcLightClient (checked at deployment: {}), {goat_name} (GOAT chain {ps_goat}), {confs} Bitcoin confirmations",
                        name(ps_net)
                    );
                }
                Err(e) => println!("trusts: (not read: {e:#})"),
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
            let (committee, threshold) = if config.goat.consensus.is_some() {
                // GoatLightClient: GOAT's validators, no committee.
                (Vec::new(), 0)
            } else if config.metis.committee.is_empty() {
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
                goat_light_client: crate::app::goat_light_client_args(config, &store).await?,
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
                match params.checkpoint.mode {
                    super::bindings::NETWORK_REGTEST => "Regtest",
                    super::bindings::NETWORK_TESTNET4 => "Testnet4",
                    _ => "Mainnet",
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
        MetisCmd::Invoice(InvoiceCmd::Id {
            reference,
            merchant,
        }) => {
            let reference = parse_b256(&reference, "ref")?;
            let merchant = match merchant {
                Some(c) => crate::goat::proof::parse_address(&c).map_err(|e| anyhow!(e))?,
                None => relayer_key(config)?.address(),
            };
            println!("{}", super::invoice_id(merchant, reference));
            Ok(())
        }
        MetisCmd::Invoice(InvoiceCmd::Sign(args)) => {
            let key = relayer_key(config)?;
            let sink = sink(config, false).await?;
            let terms = terms_from(config, &sink, key.address(), &args).await?;
            let signed =
                SignedInvoice::sign(terms, &key, sink.chain_id(), sink.settlement_address())?;
            write_invoice(&signed, args.out.as_ref())?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
            Ok(())
        }
        MetisCmd::Invoice(InvoiceCmd::Create(args)) => {
            let sink = sink(config, true).await?;
            let merchant = sink
                .signer_address()
                .ok_or_else(|| anyhow!("no metis key"))?;
            let terms = terms_from(config, &sink, merchant, &args).await?;
            terms.validate()?;
            let (id, o) = sink.create_invoice(&terms).await?;
            let invoice = SignedInvoice::on_chain(terms);
            write_invoice(&invoice, args.out.as_ref())?;
            println!(
                "invoice {id} created (ref {}, {} rail, amount {}, expiry {}): gas {}, tx {}",
                invoice.terms.reference,
                invoice.terms.rail,
                invoice.terms.amount,
                invoice.terms.expiry,
                o.gas_used,
                o.tx_hash
            );
            Ok(())
        }
        MetisCmd::Invoice(InvoiceCmd::Show { id, json }) => {
            let id = parse_b256(&id, "id")?;
            let sink = sink(config, false).await?;
            let state = sink.invoice_state(id).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "id": id,
                        "state": state.name(),
                        "settled": state.is_settled(),
                        "terms_hash": match state { InvoiceState::Open(h) => Some(h), _ => None },
                    }))?
                );
            } else {
                println!("invoice  {id}");
                println!("state    {}", state.name());
                if let InvoiceState::Open(h) = state {
                    println!("terms    {h} (EIP-712 struct hash of the stored terms)");
                }
                if state == InvoiceState::Unknown {
                    println!(
                        "         (a signed invoice is unknown to the contract until it settles)"
                    );
                }
            }
            Ok(())
        }
        MetisCmd::Settle {
            proof,
            invoice,
            skip_checks,
        } => {
            let text = std::fs::read_to_string(&invoice)
                .with_context(|| format!("--invoice {}", invoice.display()))?;
            let inv: SignedInvoice = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{}:{}:{}: {e}", invoice.display(), e.line(), e.column()))?;
            let id = inv.id();
            let file = ProofFile::load(&proof)?;
            let store = crate::app::open_store(config)?;
            let sink = sink(config, true).await?;
            let attesters = crate::app::attester_keys(config)?;
            if let (Some(c), crate::proof::ProofBody::Goat(p)) =
                (&config.goat.consensus, &file.body)
            {
                // GoatLightClient: make the block final on Metis from its
                // CometBFT commit first (what the daemon does).
                let rpc = crate::goat::comet::CometRpc::new(
                    &c.rpc_url,
                    std::time::Duration::from_secs(config.goat.timeout_secs),
                )?;
                let sent = crate::metis::goatprove::prove_blocks(
                    &store,
                    &rpc,
                    &sink,
                    &[(p.block_number, p.block_hash)],
                )
                .await
                .with_context(|| {
                    format!(
                        "making GOAT block {} final on GoatLightClient",
                        p.block_number
                    )
                })?;
                for o in &sent {
                    println!(
                        "GoatLightClient.submit: gas {}, tx {}",
                        o.gas_used, o.tx_hash
                    );
                }
            }
            let r = settle::settle(
                &store,
                &sink,
                &file,
                &inv,
                SettleOptions {
                    network: config.btc.network,
                    skip_checks,
                    attesters: &attesters,
                    goat_header_store: sink.contracts().goat_header_store,
                },
            )
            .await
            .with_context(|| format!("settling invoice {id} with {}", proof.display()))?;
            println!(
                "settled invoice {id} ({} rail, {} {}{}): gas {}, tx {}",
                r.rail,
                if r.rail == Rail::Btc {
                    "vout"
                } else {
                    "tx index"
                },
                r.source_index,
                match r.rail {
                    Rail::Btc => format!(", {} header(s)", r.headers),
                    Rail::Goat if r.inline_attestation => ", attested inline".into(),
                    Rail::Goat if config.goat.consensus.is_some() => {
                        ", block proven by GoatLightClient".into()
                    }
                    Rail::Goat => ", block attested on-chain".into(),
                },
                r.outcome.gas_used,
                r.outcome.tx_hash
            );
            Ok(())
        }
    }
}

fn write_invoice(invoice: &SignedInvoice, out: Option<&PathBuf>) -> Result<()> {
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_vec_pretty(invoice)?)
            .with_context(|| format!("--out {}", path.display()))?;
    }
    Ok(())
}

/// Terms from the flags; `merchant` is the signer.
async fn terms_from(
    config: &Config,
    sink: &super::sink::AlloySink,
    merchant: Address,
    a: &TermsArgs,
) -> Result<Terms> {
    let reference = match &a.reference {
        Some(s) => parse_b256(s, "ref")?,
        None => crate::metis::invoice::random_ref()
            .context("reading a random ref from /dev/urandom (or pass --ref)")?,
    };
    let (payee, asset) = match a.rail {
        Rail::Btc => {
            if a.asset.is_some() {
                bail!("--asset is for GOAT invoices only");
            }
            let script = crate::app::parse_script(&a.payee, config.btc.network)?;
            (Bytes::from(script.to_bytes()), Address::ZERO)
        }
        Rail::Goat => {
            let to: Address =
                crate::goat::proof::parse_address(&a.payee).map_err(|e| anyhow!(e))?;
            let asset = match &a.asset {
                Some(x) => crate::goat::proof::parse_address(x).map_err(|e| anyhow!(e))?,
                None => contracts(config)?
                    .1
                    .and_then(|d| d.goat_test_token)
                    .or_else(|| config.goat_tokens().first().copied())
                    .ok_or_else(|| anyhow!("--asset is required (no devnet token in the deployment, goat.tokens empty)"))?,
            };
            (Bytes::copy_from_slice(to.as_slice()), asset)
        }
    };
    let expiry = match a.expiry.strip_prefix('+') {
        Some(rel) => {
            let secs: u64 = rel
                .parse()
                .with_context(|| format!("--expiry {}", a.expiry))?;
            sink.now().await? + secs
        }
        None => a
            .expiry
            .parse()
            .with_context(|| format!("--expiry {}: unix seconds or +secs", a.expiry))?,
    };
    let service = match &a.service {
        Some(x) => crate::goat::proof::parse_address(x).map_err(|e| anyhow!(e))?,
        None => Address::ZERO,
    };
    let service_id = match &a.service_id {
        Some(x) => parse_b256(x, "service-id")?,
        None => B256::ZERO,
    };
    let terms = Terms {
        merchant,
        reference,
        rail: a.rail,
        payee,
        asset,
        amount: parse_amount(&a.amount)?,
        expiry,
        service,
        service_id,
    };
    terms.validate()?;
    Ok(terms)
}
