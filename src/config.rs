//! Settings, layered: built-in defaults < config file < environment
//! (`GMRELAY_…`) < command-line flags.
//!
//! The defaults live in this file only ([`Config::default`] and the
//! `default_*` functions). Unknown keys are errors, named with their file,
//! line and column, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::btc::network::BtcNetwork;

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrongly typed value.
    #[error("config file {path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// toml's message, naming the key.
        message: String,
    },
    /// An environment variable with a value of the wrong type.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// The file, or `flags`/`environment`.
        origin: String,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the RocksDB store lives. Default: `~/.gmrelay/<btc.network>`.
    pub data_dir: Option<PathBuf>,
    /// Logging.
    pub log: LogConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// The Bitcoin follower.
    pub btc: BtcConfig,
    /// The GOAT Network follower.
    pub goat: GoatConfig,
    /// Settlement on Metis.
    pub metis: MetisConfig,
    /// The daemon (`gmrelay run`).
    pub run: RunConfig,
    /// The x402 facilitator (served by `gmrelay run`) and its example resource.
    pub x402: X402Config,
    /// The keys and limits of the x402 agent (`gmrelay x402 pay`).
    pub agent: AgentConfig,
}

/// `[x402]`: the facilitator `gmrelay run` serves beside its HTTP API
/// (`/supported`, `/verify`, `/settle`), which settles each payment on Metis
/// by proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct X402Config {
    /// Serve the facilitator (needs `run.http`).
    pub enabled: bool,
    /// File holding the GOAT key that submits `transferWithAuthorization`
    /// (it pays GOAT gas, never the payment).
    pub goat_key_file: Option<PathBuf>,
    /// Else the environment variable holding that key.
    pub goat_key_env: String,
    /// File holding the key that signs invoices as merchant of record for
    /// payments a resource server forwards without gmrelay invoice terms
    /// (stock x402 servers). Unset: the Metis relayer key.
    pub invoice_key_file: Option<PathBuf>,
    /// How long `/settle` waits for the Metis settlement before answering
    /// `settlement_pending` (a retry with the same payload resumes the wait).
    pub settle_timeout_secs: u64,
    /// An authorization must stay valid this long after `/verify` (time to
    /// mine it on GOAT).
    pub min_validity_secs: u64,
    /// `gmrelay x402 serve-example`.
    pub example: ExampleConfig,
}

impl Default for X402Config {
    fn default() -> Self {
        X402Config {
            enabled: false,
            goat_key_file: None,
            goat_key_env: "GMRELAY_X402_GOAT_KEY".into(),
            invoice_key_file: None,
            settle_timeout_secs: 60,
            min_validity_secs: 6,
            example: ExampleConfig::default(),
        }
    }
}

/// `[x402.example]`: the paid resource of `gmrelay x402 serve-example`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExampleConfig {
    /// Where it listens (`--http` overrides).
    pub listen: String,
    /// The facilitator. Default: `http://<run.http>`.
    pub facilitator_url: Option<String>,
    /// File holding the merchant's Metis key (signs the invoice terms).
    pub merchant_key_file: Option<PathBuf>,
    /// Else the environment variable holding it.
    pub merchant_key_env: String,
    /// GOAT address paid. Unset: no GOAT offer.
    pub goat_pay_to: Option<String>,
    /// The EIP-3009 token. Default: the first of `goat.tokens`.
    pub goat_asset: Option<String>,
    /// Price in the token's base units.
    pub goat_amount: String,
    /// Bitcoin address paid. Unset: no Bitcoin offer.
    pub btc_pay_to: Option<String>,
    /// Price in satoshis.
    pub btc_amount_sat: u64,
    /// How long an offer stays payable, seconds (`maxTimeoutSeconds`).
    pub max_timeout_secs: u64,
}

impl Default for ExampleConfig {
    fn default() -> Self {
        ExampleConfig {
            listen: "127.0.0.1:4021".into(),
            facilitator_url: None,
            merchant_key_file: None,
            merchant_key_env: "GMRELAY_X402_MERCHANT_KEY".into(),
            goat_pay_to: None,
            goat_asset: None,
            goat_amount: "10000".into(),
            btc_pay_to: None,
            btc_amount_sat: 50_000,
            max_timeout_secs: 600,
        }
    }
}

/// `[agent]`: what `gmrelay x402 pay` pays with, and how much at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// File holding the agent's GOAT key (signs EIP-3009 authorizations).
    pub goat_key_file: Option<PathBuf>,
    /// Else the environment variable holding it.
    pub goat_key_env: String,
    /// File holding the agent's Bitcoin key (32-byte hex; P2WPKH coins).
    pub btc_key_file: Option<PathBuf>,
    /// Else the environment variable holding it.
    pub btc_key_env: String,
    /// The most one GOAT payment may cost, in token base units.
    pub max_goat_amount: String,
    /// The most one Bitcoin payment may cost, satoshis.
    pub max_btc_sat: u64,
    /// Fee of a Bitcoin payment, satoshis.
    pub btc_fee_sat: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            goat_key_file: None,
            goat_key_env: "GMRELAY_AGENT_GOAT_KEY".into(),
            btc_key_file: None,
            btc_key_env: "GMRELAY_AGENT_BTC_KEY".into(),
            max_goat_amount: "1000000".into(),
            max_btc_sat: 100_000,
            btc_fee_sat: 1_000,
        }
    }
}

/// `[run]`: the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// HTTP address for `/healthz`, `/readyz`, `/status`, `/metrics`
    /// (`--http` overrides). Unset: no HTTP.
    pub http: Option<String>,
    /// How often each task runs a round, milliseconds (a chain's news wakes
    /// the settlement worker sooner).
    pub poll_interval_ms: u64,
    /// The first Metis block invoice intake reads on a new store.
    pub intake_from_block: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            http: None,
            poll_interval_ms: 1000,
            intake_from_block: 0,
        }
    }
}

/// `[metis]`: the Metis contracts and the relayer's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetisConfig {
    /// JSON-RPC URL. Default: `http://127.0.0.1:8545` (a devnet);
    /// Andromeda mainnet: `https://andromeda.metis.io/?owner=1088`.
    pub rpc_url: Option<String>,
    /// The chain id the node must report (1088 Andromeda).
    pub chain_id: u64,
    /// The environment variable holding the relayer's hex private key.
    pub key_env: String,
    /// A file holding the relayer's hex private key (mode 0600), used
    /// instead of `key_env` (the devnet writes one).
    pub key_file: Option<PathBuf>,
    /// Never pay more than this per gas, gwei (transactions wait above it).
    pub max_gas_price_gwei: u64,
    /// A transaction without a receipt this long is replaced at the same
    /// nonce with a 12.5 % higher gas price (within the cap), seconds.
    pub replace_after_secs: u64,
    /// `/readyz` reports the signer unfunded below this balance, gwei.
    pub min_signer_balance_gwei: u64,
    /// Regtest devnets only: attest GOAT blocks with the five deterministic
    /// devnet committee keys.
    pub devnet_attesters: bool,
    /// An encrypted JSON keystore (Web3 Secret Storage, as geth and cast
    /// write them) with the relayer's key, used instead of `key_env`; its
    /// password comes from the variable named by `keystore_password_env`.
    pub keystore: Option<PathBuf>,
    /// The environment variable holding the keystore's password.
    pub keystore_password_env: String,
    /// A file holding the keystore's password (mode 0600), instead of
    /// `keystore_password_env`.
    pub keystore_password_file: Option<PathBuf>,
    /// Where `contracts deploy` writes the addresses and the other commands
    /// read them. Default: `<data_dir>/deployment.json`.
    pub deployment_file: Option<PathBuf>,
    /// Bitcoin headers per `submitHeaders` transaction (1..=500, the contract's cap).
    pub header_batch: u32,
    /// Confirmations PaymentSettlement requires of BTC payments (set at deployment).
    pub min_btc_confirmations: u32,
    /// Per-request timeout, seconds (also bounds the wait for a receipt).
    pub timeout_secs: u64,
    /// How long to keep retrying a transient failure, seconds.
    pub max_retry_secs: u64,
    /// GOAT attestation committee (0x addresses) GoatHeaderStore is deployed with.
    pub committee: Vec<String>,
    /// Signatures a GOAT header needs (1..=committee size).
    pub threshold: u32,
    /// The environment variable holding this operator's attester key(s)
    /// (comma-separated hex) for `metis attest-goat`.
    pub attester_keys_env: String,
    /// Address override for BtcLightClient (else the deployment file's).
    pub btc_light_client: Option<String>,
    /// Address override for GoatHeaderStore.
    pub goat_header_store: Option<String>,
    /// Address override for PaymentSettlement.
    pub payment_settlement: Option<String>,
}

impl Default for MetisConfig {
    fn default() -> Self {
        MetisConfig {
            rpc_url: None,
            chain_id: 1088,
            key_env: "GMRELAY_METIS_KEY".into(),
            key_file: None,
            max_gas_price_gwei: 100,
            replace_after_secs: 30,
            min_signer_balance_gwei: 10_000_000,
            devnet_attesters: false,
            keystore: None,
            keystore_password_env: "GMRELAY_METIS_KEYSTORE_PASSWORD".into(),
            keystore_password_file: None,
            deployment_file: None,
            header_batch: 100,
            min_btc_confirmations: 6,
            timeout_secs: 60,
            max_retry_secs: 60,
            committee: Vec::new(),
            threshold: 0,
            attester_keys_env: "GMRELAY_GOAT_ATTESTER_KEYS".into(),
            btc_light_client: None,
            goat_header_store: None,
            payment_settlement: None,
        }
    }
}

/// `[goat]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoatConfig {
    /// JSON-RPC URL (`http(s)://` polls, `ws(s)://` subscribes to new heads).
    /// Default: <https://rpc.goat.network> for chain 2345,
    /// <https://rpc.testnet3.goat.network> for 48816, else `http://127.0.0.1:8545`.
    pub rpc_url: Option<String>,
    /// The EVM chain id the node must report (2345 mainnet, 48816 testnet3, any on a devnet).
    pub chain_id: u64,
    /// `"finalized"` (the node's finalized tag; GOAT finalizes at head − 1) or `{ depth = N }`.
    pub finality: GoatFinality,
    /// Per-request timeout, seconds.
    pub timeout_secs: u64,
    /// Headers per batched JSON-RPC request (1..=2000).
    pub batch_size: u32,
    /// How long to keep retrying a transient failure, seconds.
    pub max_retry_secs: u64,
    /// Seconds between polls in `goat sync --follow` over HTTP.
    pub poll_interval_secs: u64,
    /// A checkpoint file to use instead of the built-in `headers/goat-<network>.json`.
    pub checkpoint_file: Option<PathBuf>,
    /// Token contracts whose payments count (EIP-3009 / ERC-20).
    pub tokens: Vec<String>,
    /// Payees whose incoming payments count (empty: any payee).
    pub payees: Vec<String>,
    /// Also accept plain ERC-20 transfers (without an EIP-3009 authorization).
    pub allow_plain_transfers: bool,
    /// `[goat.consensus]`: finality from GOAT's CometBFT commits, verified
    /// from a trusted header (replaces `finality` when present).
    pub consensus: Option<GoatConsensusConfig>,
}

/// `[goat.consensus]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoatConsensusConfig {
    /// goatd's CometBFT RPC (`http://host:26657`).
    pub rpc_url: String,
    /// The trusted CometBFT header: `{comet_chain_id, height, header_hash}`.
    pub checkpoint_file: PathBuf,
    /// How long a verified header stays a trust root, seconds (below GOAT's
    /// 48 h evidence age).
    pub trusting_period_secs: u64,
    /// Tolerated clock drift between CometBFT and this machine, seconds.
    pub clock_drift_secs: u64,
}

impl Default for GoatConsensusConfig {
    fn default() -> Self {
        GoatConsensusConfig {
            rpc_url: "http://127.0.0.1:26657".into(),
            checkpoint_file: PathBuf::new(),
            trusting_period_secs: 24 * 3600,
            clock_drift_secs: 10,
        }
    }
}

/// `goat.finality`: `"finalized"` or `{ depth = N }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoatFinality {
    /// The node's `finalized` block tag.
    Finalized,
    /// N blocks below the tip.
    Depth(u64),
}

impl Serialize for GoatFinality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            GoatFinality::Finalized => s.serialize_str("finalized"),
            GoatFinality::Depth(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("depth", n)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for GoatFinality {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = GoatFinality;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"finalized\" or { depth = N }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GoatFinality, E> {
                match v {
                    "finalized" => Ok(GoatFinality::Finalized),
                    other => Err(E::custom(format!(
                        "`{other}`: expected \"finalized\" or {{ depth = N }}"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<GoatFinality, A::Error> {
                let mut depth = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "depth" {
                        return Err(serde::de::Error::custom(format!(
                            "unknown key `{key}` in goat.finality (expected `depth`)"
                        )));
                    }
                    depth = Some(map.next_value::<u64>()?);
                }
                depth
                    .map(GoatFinality::Depth)
                    .ok_or_else(|| serde::de::Error::custom("goat.finality table needs `depth`"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for GoatConfig {
    fn default() -> Self {
        GoatConfig {
            rpc_url: None,
            chain_id: 2345,
            finality: GoatFinality::Finalized,
            timeout_secs: 30,
            batch_size: 200,
            max_retry_secs: 60,
            poll_interval_secs: 3,
            checkpoint_file: None,
            tokens: Vec::new(),
            payees: Vec::new(),
            allow_plain_transfers: false,
            consensus: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `gmrelay=debug`.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the Prometheus endpoint (`/metrics`), e.g. `127.0.0.1:9184`.
    /// Unset: no endpoint.
    pub listen: Option<String>,
}

/// `[btc]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BtcConfig {
    /// `mainnet`, `testnet3`, `testnet4`, `signet` or `regtest`.
    pub network: BtcNetwork,
    /// bitcoind's JSON-RPC URL. Default: `http://127.0.0.1:<the network's RPC port>`.
    pub rpc_url: Option<String>,
    /// bitcoind's `.cookie` file (preferred over user/password).
    pub cookie_file: Option<PathBuf>,
    /// `rpcuser`.
    pub rpc_user: Option<String>,
    /// `rpcpassword`.
    pub rpc_password: Option<String>,
    /// Per-request timeout, seconds.
    pub timeout_secs: u64,
    /// Headers per batched request (1..=2000).
    pub batch_size: u32,
    /// How long to keep retrying a transient failure, seconds.
    pub max_retry_secs: u64,
    /// Seconds between polls in `headers sync --follow`.
    pub poll_interval_secs: u64,
    /// A checkpoint file to use instead of the built-in `headers/<network>.json`.
    pub checkpoint_file: Option<PathBuf>,
    /// Confirmations `btc verify` requires unless `--min-confirmations` is given.
    pub min_confirmations: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for BtcConfig {
    fn default() -> Self {
        BtcConfig {
            network: BtcNetwork::Regtest,
            rpc_url: None,
            cookie_file: None,
            rpc_user: None,
            rpc_password: None,
            timeout_secs: 30,
            batch_size: 2000,
            max_retry_secs: 60,
            poll_interval_secs: 5,
            checkpoint_file: None,
            min_confirmations: 6,
        }
    }
}

/// bitcoind's default RPC port per network.
pub fn default_rpc_port(network: BtcNetwork) -> u16 {
    match network {
        BtcNetwork::Mainnet => 8332,
        BtcNetwork::Testnet3 => 18332,
        BtcNetwork::Testnet4 => 48332,
        BtcNetwork::Signet => 38332,
        BtcNetwork::Regtest => 18443,
    }
}

/// Values given on the command line; `None` leaves the layer below.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--btc-rpc`
    pub btc_rpc: Option<String>,
    /// `--btc-cookie`
    pub btc_cookie: Option<PathBuf>,
    /// `--btc-user`
    pub btc_user: Option<String>,
    /// `--btc-password`
    pub btc_password: Option<String>,
    /// `--network`
    pub btc_network: Option<BtcNetwork>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
    /// `--metrics`
    pub metrics_listen: Option<String>,
    /// `--goat-rpc`
    pub goat_rpc: Option<String>,
    /// `--metis-rpc`
    pub metis_rpc: Option<String>,
    /// `--keystore`
    pub metis_keystore: Option<PathBuf>,
}

enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated strings.
    List,
    /// `finalized`, or a whole number N for `{ depth = N }`.
    Finality,
}

/// Environment variables and the keys they set.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("GMRELAY_DATA_DIR", "data_dir"),
    ("GMRELAY_LOG_FORMAT", "log.format"),
    ("GMRELAY_LOG_LEVEL", "log.level"),
    ("GMRELAY_METRICS_LISTEN", "metrics.listen"),
    ("GMRELAY_BTC_NETWORK", "btc.network"),
    ("GMRELAY_BTC_RPC_URL", "btc.rpc_url"),
    ("GMRELAY_BTC_COOKIE_FILE", "btc.cookie_file"),
    ("GMRELAY_BTC_RPC_USER", "btc.rpc_user"),
    ("GMRELAY_BTC_RPC_PASSWORD", "btc.rpc_password"),
    ("GMRELAY_BTC_TIMEOUT_SECS", "btc.timeout_secs"),
    ("GMRELAY_BTC_BATCH_SIZE", "btc.batch_size"),
    ("GMRELAY_BTC_MAX_RETRY_SECS", "btc.max_retry_secs"),
    ("GMRELAY_BTC_POLL_INTERVAL_SECS", "btc.poll_interval_secs"),
    ("GMRELAY_BTC_CHECKPOINT_FILE", "btc.checkpoint_file"),
    ("GMRELAY_BTC_MIN_CONFIRMATIONS", "btc.min_confirmations"),
    ("GMRELAY_GOAT_RPC_URL", "goat.rpc_url"),
    ("GMRELAY_GOAT_CHAIN_ID", "goat.chain_id"),
    ("GMRELAY_GOAT_FINALITY", "goat.finality"),
    ("GMRELAY_GOAT_TIMEOUT_SECS", "goat.timeout_secs"),
    ("GMRELAY_GOAT_BATCH_SIZE", "goat.batch_size"),
    ("GMRELAY_GOAT_MAX_RETRY_SECS", "goat.max_retry_secs"),
    ("GMRELAY_GOAT_POLL_INTERVAL_SECS", "goat.poll_interval_secs"),
    ("GMRELAY_GOAT_CHECKPOINT_FILE", "goat.checkpoint_file"),
    ("GMRELAY_GOAT_TOKENS", "goat.tokens"),
    ("GMRELAY_GOAT_PAYEES", "goat.payees"),
    (
        "GMRELAY_GOAT_ALLOW_PLAIN_TRANSFERS",
        "goat.allow_plain_transfers",
    ),
    ("GMRELAY_METIS_RPC_URL", "metis.rpc_url"),
    ("GMRELAY_METIS_CHAIN_ID", "metis.chain_id"),
    ("GMRELAY_METIS_KEY_ENV", "metis.key_env"),
    ("GMRELAY_METIS_KEY_FILE", "metis.key_file"),
    (
        "GMRELAY_METIS_MAX_GAS_PRICE_GWEI",
        "metis.max_gas_price_gwei",
    ),
    (
        "GMRELAY_METIS_REPLACE_AFTER_SECS",
        "metis.replace_after_secs",
    ),
    (
        "GMRELAY_METIS_MIN_SIGNER_BALANCE_GWEI",
        "metis.min_signer_balance_gwei",
    ),
    ("GMRELAY_METIS_DEVNET_ATTESTERS", "metis.devnet_attesters"),
    ("GMRELAY_RUN_HTTP", "run.http"),
    ("GMRELAY_X402_ENABLED", "x402.enabled"),
    ("GMRELAY_RUN_POLL_INTERVAL_MS", "run.poll_interval_ms"),
    ("GMRELAY_RUN_INTAKE_FROM_BLOCK", "run.intake_from_block"),
    ("GMRELAY_METIS_KEYSTORE", "metis.keystore"),
    (
        "GMRELAY_METIS_KEYSTORE_PASSWORD_ENV",
        "metis.keystore_password_env",
    ),
    (
        "GMRELAY_METIS_KEYSTORE_PASSWORD_FILE",
        "metis.keystore_password_file",
    ),
    ("GMRELAY_METIS_DEPLOYMENT_FILE", "metis.deployment_file"),
    ("GMRELAY_METIS_HEADER_BATCH", "metis.header_batch"),
    (
        "GMRELAY_METIS_MIN_BTC_CONFIRMATIONS",
        "metis.min_btc_confirmations",
    ),
    ("GMRELAY_METIS_TIMEOUT_SECS", "metis.timeout_secs"),
    ("GMRELAY_METIS_MAX_RETRY_SECS", "metis.max_retry_secs"),
    ("GMRELAY_METIS_COMMITTEE", "metis.committee"),
    ("GMRELAY_METIS_THRESHOLD", "metis.threshold"),
    ("GMRELAY_METIS_ATTESTER_KEYS_ENV", "metis.attester_keys_env"),
    ("GMRELAY_METIS_BTC_LIGHT_CLIENT", "metis.btc_light_client"),
    ("GMRELAY_METIS_GOAT_HEADER_STORE", "metis.goat_header_store"),
    (
        "GMRELAY_METIS_PAYMENT_SETTLEMENT",
        "metis.payment_settlement",
    ),
];

fn kind_of(key: &str) -> Kind {
    if key == "goat.finality" {
        Kind::Finality
    } else if key == "goat.tokens" || key == "goat.payees" || key == "metis.committee" {
        Kind::List
    } else if key == "goat.allow_plain_transfers"
        || key == "metis.devnet_attesters"
        || key == "x402.enabled"
    {
        Kind::Bool
    } else if key.ends_with("_secs")
        || key.ends_with("batch_size")
        || key.ends_with("min_confirmations")
        || key.ends_with("chain_id")
        || key == "metis.header_batch"
        || key == "metis.min_btc_confirmations"
        || key == "metis.threshold"
        || key.ends_with("_gwei")
        || key.ends_with("_ms")
        || key == "run.intake_from_block"
    {
        Kind::Int
    } else {
        Kind::Str
    }
}

fn toml_position(text: &str, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
    let Some(span) = span else { return (0, 0) };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

impl Config {
    /// Parses a config file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = toml_position(text, e.span());
            ConfigError::Parse {
                path: origin.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Defaults < `file` (if any) < environment < `overrides`.
    pub fn layered(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let (text, origin) = match file {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "defaults".to_string()),
        };
        // Validate the file on its own first, so its errors name its lines.
        Self::parse(&text, &origin)?;
        let mut table: toml::Table = toml::from_str(&text).expect("parsed above");
        for (var, key) in ENV_VARS {
            let Some(value) = env(var) else { continue };
            let v = match kind_of(key) {
                Kind::Int => {
                    toml::Value::Integer(value.trim().parse().map_err(|_| ConfigError::Env {
                        var: var.to_string(),
                        message: format!("`{value}` is not a whole number (sets {key})"),
                    })?)
                }
                Kind::Str => toml::Value::String(value),
                Kind::Bool => match value.trim() {
                    "true" | "1" => toml::Value::Boolean(true),
                    "false" | "0" => toml::Value::Boolean(false),
                    other => {
                        return Err(ConfigError::Env {
                            var: var.to_string(),
                            message: format!("`{other}` is not true or false (sets {key})"),
                        })
                    }
                },
                Kind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                ),
                Kind::Finality => match value.trim() {
                    "finalized" => toml::Value::String("finalized".into()),
                    n => {
                        let depth: i64 = n.parse().map_err(|_| ConfigError::Env {
                            var: var.to_string(),
                            message: format!(
                                "`{n}` is neither `finalized` nor a depth (whole number) (sets {key})"
                            ),
                        })?;
                        let mut t = toml::Table::new();
                        t.insert("depth".into(), toml::Value::Integer(depth));
                        toml::Value::Table(t)
                    }
                },
            };
            set_path(&mut table, key, v);
        }
        let with_env = toml::to_string(&table).expect("a table serializes");
        let mut config: Config = toml::from_str(&with_env).map_err(|e| ConfigError::Env {
            var: "GMRELAY_*".into(),
            message: e.message().to_string(),
        })?;
        let o = overrides;
        if let Some(v) = &o.data_dir {
            config.data_dir = Some(v.clone());
        }
        if let Some(v) = o.btc_network {
            config.btc.network = v;
        }
        if let Some(v) = &o.btc_rpc {
            config.btc.rpc_url = Some(v.clone());
        }
        if let Some(v) = &o.btc_cookie {
            config.btc.cookie_file = Some(v.clone());
            config.btc.rpc_user = None;
            config.btc.rpc_password = None;
        }
        if o.btc_user.is_some() || o.btc_password.is_some() {
            config.btc.rpc_user = o.btc_user.clone().or(config.btc.rpc_user);
            config.btc.rpc_password = o.btc_password.clone().or(config.btc.rpc_password);
            if o.btc_cookie.is_none() {
                config.btc.cookie_file = None;
            }
        }
        if let Some(v) = o.log_format {
            config.log.format = v;
        }
        if let Some(v) = &o.metrics_listen {
            config.metrics.listen = Some(v.clone());
        }
        if let Some(v) = &o.goat_rpc {
            config.goat.rpc_url = Some(v.clone());
        }
        if let Some(v) = &o.metis_keystore {
            config.metis.keystore = Some(v.clone());
        }
        if let Some(v) = &o.metis_rpc {
            config.metis.rpc_url = Some(v.clone());
        }
        config.validate("settings (file, environment and flags)")?;
        Ok(config)
    }

    /// Checks values that parse but cannot work, naming the key.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message,
        };
        let b = &self.btc;
        if let Some(url) = &b.rpc_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "btc.rpc_url",
                    format!("`{url}` is not an http:// or https:// URL"),
                ));
            }
        }
        if b.cookie_file.is_some() && (b.rpc_user.is_some() || b.rpc_password.is_some()) {
            return Err(invalid(
                "btc.cookie_file",
                "set either btc.cookie_file or btc.rpc_user/btc.rpc_password, not both".into(),
            ));
        }
        if b.rpc_user.is_some() != b.rpc_password.is_some() {
            return Err(invalid(
                "btc.rpc_user",
                "btc.rpc_user and btc.rpc_password go together".into(),
            ));
        }
        if !(1..=2000).contains(&b.batch_size) {
            return Err(invalid(
                "btc.batch_size",
                format!("{} is outside 1..=2000", b.batch_size),
            ));
        }
        if b.timeout_secs == 0 {
            return Err(invalid("btc.timeout_secs", "must be at least 1".into()));
        }
        let g = &self.goat;
        if let Some(url) = &g.rpc_url {
            let ok = ["http://", "https://", "ws://", "wss://"]
                .iter()
                .any(|p| url.starts_with(p));
            if !ok {
                return Err(invalid(
                    "goat.rpc_url",
                    format!("`{url}` is not an http(s):// or ws(s):// URL"),
                ));
            }
        }
        if !(1..=2000).contains(&g.batch_size) {
            return Err(invalid(
                "goat.batch_size",
                format!("{} is outside 1..=2000", g.batch_size),
            ));
        }
        if g.timeout_secs == 0 {
            return Err(invalid("goat.timeout_secs", "must be at least 1".into()));
        }
        if g.chain_id == 0 {
            return Err(invalid("goat.chain_id", "must not be 0".into()));
        }
        for (key, list) in [("goat.tokens", &g.tokens), ("goat.payees", &g.payees)] {
            for a in list.iter() {
                if a.parse::<alloy::primitives::Address>().is_err() {
                    return Err(invalid(key, format!("`{a}` is not a 20-byte 0x address")));
                }
            }
        }
        if let Some(c) = &g.consensus {
            if !(c.rpc_url.starts_with("http://") || c.rpc_url.starts_with("https://")) {
                return Err(invalid(
                    "goat.consensus.rpc_url",
                    format!("`{}` is not an http:// or https:// URL", c.rpc_url),
                ));
            }
            if c.checkpoint_file.as_os_str().is_empty() {
                return Err(invalid(
                    "goat.consensus.checkpoint_file",
                    "is required: the trusted CometBFT header {comet_chain_id, height, header_hash}"
                        .into(),
                ));
            }
            if c.trusting_period_secs == 0 || c.trusting_period_secs >= 48 * 3600 {
                return Err(invalid(
                    "goat.consensus.trusting_period_secs",
                    format!(
                        "{} must be at least 1 and below GOAT's evidence age (172800 s)",
                        c.trusting_period_secs
                    ),
                ));
            }
        }
        let m = &self.metis;
        if let Some(url) = &m.rpc_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "metis.rpc_url",
                    format!("`{url}` is not an http:// or https:// URL"),
                ));
            }
        }
        if m.chain_id == 0 {
            return Err(invalid("metis.chain_id", "must not be 0".into()));
        }
        if !(1..=500).contains(&m.header_batch) {
            return Err(invalid(
                "metis.header_batch",
                format!(
                    "{} is outside 1..=500 (BtcLightClient.MAX_BATCH_HEADERS)",
                    m.header_batch
                ),
            ));
        }
        if m.min_btc_confirmations == 0 {
            return Err(invalid(
                "metis.min_btc_confirmations",
                "must be at least 1".into(),
            ));
        }
        if m.timeout_secs == 0 {
            return Err(invalid("metis.timeout_secs", "must be at least 1".into()));
        }
        for (key, v) in [
            ("metis.key_env", &m.key_env),
            ("metis.attester_keys_env", &m.attester_keys_env),
        ] {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    key,
                    format!("`{v}` is not an environment variable name"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for a in &m.committee {
            match a.parse::<alloy::primitives::Address>() {
                Ok(addr) if addr.is_zero() => {
                    return Err(invalid(
                        "metis.committee",
                        "the zero address cannot be a member".into(),
                    ))
                }
                Ok(addr) => {
                    if !seen.insert(addr) {
                        return Err(invalid("metis.committee", format!("{a} is listed twice")));
                    }
                }
                Err(_) => {
                    return Err(invalid(
                        "metis.committee",
                        format!("`{a}` is not a 20-byte 0x address"),
                    ))
                }
            }
        }
        if !m.committee.is_empty() && !(1..=m.committee.len() as u32).contains(&m.threshold) {
            return Err(invalid(
                "metis.threshold",
                format!(
                    "{} is outside 1..={} (the committee's size)",
                    m.threshold,
                    m.committee.len()
                ),
            ));
        }
        for (key, v) in [
            ("metis.btc_light_client", &m.btc_light_client),
            ("metis.goat_header_store", &m.goat_header_store),
            ("metis.payment_settlement", &m.payment_settlement),
        ] {
            if let Some(a) = v {
                if a.parse::<alloy::primitives::Address>().is_err() {
                    return Err(invalid(key, format!("`{a}` is not a 20-byte 0x address")));
                }
            }
        }
        if m.devnet_attesters && self.btc.network != BtcNetwork::Regtest {
            return Err(invalid(
                "metis.devnet_attesters",
                "the devnet committee keys are public: regtest devnets only".into(),
            ));
        }
        if m.max_gas_price_gwei == 0 {
            return Err(invalid(
                "metis.max_gas_price_gwei",
                "0 would never send".into(),
            ));
        }
        if let Some(h) = &self.run.http {
            if h.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "run.http",
                    format!("`{h}` is not an address like 127.0.0.1:9280"),
                ));
            }
        }
        if self.run.poll_interval_ms == 0 {
            return Err(invalid("run.poll_interval_ms", "must be at least 1".into()));
        }
        if let Some(l) = &self.metrics.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "metrics.listen",
                    format!("`{l}` is not an address like 127.0.0.1:9184"),
                ));
            }
        }
        let x = &self.x402;
        if x.enabled && self.run.http.is_none() {
            return Err(invalid(
                "x402.enabled",
                "the facilitator is served on run.http: set it".into(),
            ));
        }
        if x.settle_timeout_secs == 0 {
            return Err(invalid(
                "x402.settle_timeout_secs",
                "must be at least 1".into(),
            ));
        }
        let e = &x.example;
        if e.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "x402.example.listen",
                format!("`{}` is not an address like 127.0.0.1:4021", e.listen),
            ));
        }
        if let Some(u) = &e.facilitator_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(invalid(
                    "x402.example.facilitator_url",
                    format!("`{u}` is not an http:// or https:// URL"),
                ));
            }
        }
        for (key, v) in [
            ("x402.example.goat_pay_to", &e.goat_pay_to),
            ("x402.example.goat_asset", &e.goat_asset),
        ] {
            if let Some(a) = v {
                if a.parse::<alloy::primitives::Address>().is_err() {
                    return Err(invalid(key, format!("`{a}` is not a 20-byte 0x address")));
                }
            }
        }
        for (key, v) in [
            ("x402.example.goat_amount", &e.goat_amount),
            ("agent.max_goat_amount", &self.agent.max_goat_amount),
        ] {
            if v.parse::<alloy::primitives::U256>().is_err() || v.starts_with("0x") {
                return Err(invalid(
                    key,
                    format!("`{v}` is not a whole number of base units"),
                ));
            }
        }
        if e.max_timeout_secs == 0 {
            return Err(invalid(
                "x402.example.max_timeout_secs",
                "must be at least 1".into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a tracing filter", self.log.level),
            ));
        }
        Ok(())
    }

    /// The data directory, defaulted and with `~` expanded.
    pub fn data_dir(&self) -> PathBuf {
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("~/.gmrelay/{}", self.btc.network.name())));
        expand_home(&dir)
    }

    /// The RocksDB directory inside the data directory.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir().join("db")
    }

    /// bitcoind's RPC URL, defaulted from the network.
    pub fn btc_rpc_url(&self) -> String {
        self.btc
            .rpc_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", default_rpc_port(self.btc.network)))
    }

    /// The per-request timeout.
    pub fn btc_timeout(&self) -> Duration {
        Duration::from_secs(self.btc.timeout_secs)
    }

    /// The GOAT node's URL, defaulted from the chain id.
    pub fn goat_rpc_url(&self) -> String {
        self.goat.rpc_url.clone().unwrap_or_else(|| {
            match self.goat.chain_id {
                crate::goat::checkpoint::GOAT_MAINNET => "https://rpc.goat.network",
                crate::goat::checkpoint::GOAT_TESTNET3 => "https://rpc.testnet3.goat.network",
                _ => "http://127.0.0.1:8545",
            }
            .to_string()
        })
    }

    /// The Metis node's URL (default `http://127.0.0.1:8545`).
    pub fn metis_rpc_url(&self) -> String {
        self.metis
            .rpc_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8545".to_string())
    }

    /// The deployment file, defaulted to `<data_dir>/deployment.json`.
    pub fn metis_deployment_file(&self) -> PathBuf {
        match &self.metis.deployment_file {
            Some(p) => expand_home(p),
            None => self.data_dir().join("deployment.json"),
        }
    }

    /// The Metis committee (validated addresses).
    pub fn metis_committee(&self) -> Vec<alloy::primitives::Address> {
        self.metis
            .committee
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// The GOAT token contracts (validated addresses).
    pub fn goat_tokens(&self) -> Vec<alloy::primitives::Address> {
        self.goat
            .tokens
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// The GOAT payees (validated addresses).
    pub fn goat_payees(&self) -> Vec<alloy::primitives::Address> {
        self.goat
            .payees
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }
}

fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut t = table;
    for p in parts {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("config sections are tables");
    }
    t.insert(last.to_string(), value);
}

/// Expands a leading `~/` to `$HOME`.
pub fn expand_home(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    p.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn shipped_configs_are_valid() {
        for net in ["regtest", "testnet4", "mainnet"] {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("config/{net}.toml"));
            let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.btc.network.name(), net);
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "[btc]\nnetwork = \"regtest\"\nrpc_ulr = \"http://x\"\n";
        let err = Config::parse(text, "c.toml").unwrap_err().to_string();
        assert!(err.starts_with("config file c.toml:3:1:"), "{err}");
        assert!(err.contains("rpc_ulr"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::parse("[btc]\nbatch_size = \"many\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml:2:"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let err = Config::parse("[btc]\nbatch_size = 5000\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `btc.batch_size`"), "{err}");
        let err = Config::parse(
            "[btc]\ncookie_file = \"/x\"\nrpc_user = \"u\"\nrpc_password = \"p\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("btc.cookie_file"), "{err}");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[btc]\nnetwork = \"regtest\"\nrpc_url = \"http://file:1\"\nbatch_size = 100\n",
        )
        .unwrap();
        // File over defaults.
        let c = Config::layered(Some(&file), no_env, &Overrides::default()).unwrap();
        assert_eq!(c.btc_rpc_url(), "http://file:1");
        assert_eq!(c.btc.batch_size, 100);
        assert_eq!(c.btc.timeout_secs, 30);
        // Environment over file.
        let env = |k: &str| match k {
            "GMRELAY_BTC_RPC_URL" => Some("http://env:2".to_string()),
            "GMRELAY_BTC_BATCH_SIZE" => Some("7".to_string()),
            _ => None,
        };
        let c = Config::layered(Some(&file), env, &Overrides::default()).unwrap();
        assert_eq!(c.btc_rpc_url(), "http://env:2");
        assert_eq!(c.btc.batch_size, 7);
        // Flags over environment.
        let o = Overrides {
            btc_rpc: Some("http://flag:3".into()),
            ..Overrides::default()
        };
        let c = Config::layered(Some(&file), env, &o).unwrap();
        assert_eq!(c.btc_rpc_url(), "http://flag:3");
        // A bad environment value is named.
        let bad = |k: &str| (k == "GMRELAY_BTC_BATCH_SIZE").then(|| "lots".to_string());
        let err = Config::layered(Some(&file), bad, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("GMRELAY_BTC_BATCH_SIZE"), "{err}");
    }

    #[test]
    fn goat_section_parses_and_layers() {
        let c = Config::parse(
            "[goat]\nchain_id = 48816\nfinality = { depth = 12 }\ntokens = [\"0x5FbDB2315678afecb367f032d93F642f64180aa3\"]\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.goat.finality, GoatFinality::Depth(12));
        assert_eq!(c.goat_rpc_url(), "https://rpc.testnet3.goat.network");
        assert_eq!(c.goat_tokens().len(), 1);
        let c = Config::parse(
            "[goat.consensus]\nrpc_url = \"http://127.0.0.1:26657\"\ncheckpoint_file = \"cp.json\"\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(
            c.goat.consensus.as_ref().unwrap().trusting_period_secs,
            86400
        );
        for (text, key) in [
            (
                "[goat.consensus]\nrpc_url = \"http://x\"\n",
                "goat.consensus.checkpoint_file",
            ),
            (
                "[goat.consensus]\ncheckpoint_file = \"a\"\ntrusting_period_secs = 172800\n",
                "goat.consensus.trusting_period_secs",
            ),
            (
                "[goat.consensus]\ncheckpoint_file = \"a\"\nrpc = 1\n",
                "rpc",
            ),
        ] {
            let err = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = Config::parse("[goat]\nfinality = \"safe\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml:2:") && err.contains("safe"), "{err}");
        let err = Config::parse("[goat]\ntokens = [\"0x12\"]\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("goat.tokens"), "{err}");
        let err = Config::parse("[goat]\nrpc = \"x\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rpc"), "{err}");
        let env = |k: &str| {
            match k {
            "GMRELAY_GOAT_FINALITY" => Some("5".to_string()),
            "GMRELAY_GOAT_PAYEES" => Some(
                "0x70997970C51812dc3A010C7d01b50e0d17dc79C8, 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
                    .to_string(),
            ),
            "GMRELAY_GOAT_ALLOW_PLAIN_TRANSFERS" => Some("true".to_string()),
            "GMRELAY_GOAT_CHAIN_ID" => Some("31337".to_string()),
            _ => None,
        }
        };
        let o = Overrides {
            goat_rpc: Some("ws://127.0.0.1:9".into()),
            ..Overrides::default()
        };
        let c = Config::layered(None, env, &o).unwrap();
        assert_eq!(c.goat.finality, GoatFinality::Depth(5));
        assert_eq!(c.goat_payees().len(), 2);
        assert!(c.goat.allow_plain_transfers);
        assert_eq!(c.goat.chain_id, 31337);
        assert_eq!(c.goat_rpc_url(), "ws://127.0.0.1:9");
        let c = Config::layered(None, no_env, &Overrides::default()).unwrap();
        assert_eq!(c.goat_rpc_url(), "https://rpc.goat.network");
        assert_eq!(c.goat.finality, GoatFinality::Finalized);
    }

    #[test]
    fn metis_section_parses_validates_and_layers() {
        let c = Config::parse(
            "[metis]\nchain_id = 1088\nheader_batch = 50\ncommittee = [\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"]\nthreshold = 1\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.metis.header_batch, 50);
        assert_eq!(c.metis_committee().len(), 1);
        assert_eq!(c.metis_rpc_url(), "http://127.0.0.1:8545");
        let err = Config::parse("[metis]\nheader_batch = 0\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metis.header_batch"), "{err}");
        let err = Config::parse(
            "[metis]\ncommittee = [\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"]\nthreshold = 2\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("metis.threshold"), "{err}");
        let err = Config::parse("[metis]\nrpc = \"x\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml:2:"), "{err}");
        let env = |k: &str| {
            match k {
            "GMRELAY_METIS_HEADER_BATCH" => Some("10".to_string()),
            "GMRELAY_METIS_COMMITTEE" => Some(
                "0x70997970C51812dc3A010C7d01b50e0d17dc79C8,0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
                    .to_string(),
            ),
            "GMRELAY_METIS_THRESHOLD" => Some("2".to_string()),
            "GMRELAY_METIS_RPC_URL" => Some("http://env:1".to_string()),
            _ => None,
        }
        };
        let c = Config::layered(None, env, &Overrides::default()).unwrap();
        assert_eq!(c.metis.header_batch, 10);
        assert_eq!(c.metis_committee().len(), 2);
        assert_eq!(c.metis_rpc_url(), "http://env:1");
        let o = Overrides {
            metis_rpc: Some("http://flag:2".into()),
            ..Overrides::default()
        };
        let c = Config::layered(None, env, &o).unwrap();
        assert_eq!(c.metis_rpc_url(), "http://flag:2");
        assert!(c.metis_deployment_file().ends_with("deployment.json"));
    }

    #[test]
    fn x402_and_agent_sections_parse_and_refuse_what_cannot_work() {
        let c = Config::parse(
            "[run]\nhttp = \"127.0.0.1:1\"\n[x402]\nenabled = true\n[x402.example]\ngoat_amount = \"5\"\nbtc_pay_to = \"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\"\n[agent]\nmax_btc_sat = 7\n",
            "c.toml",
        )
        .unwrap();
        assert!(c.x402.enabled);
        assert_eq!(c.x402.example.goat_amount, "5");
        assert_eq!(c.agent.max_btc_sat, 7);
        assert_eq!(c.x402.settle_timeout_secs, 60);
        for (text, key) in [
            ("[x402]\nenabled = true\n", "x402.enabled"),
            ("[x402.example]\nlisten = \"here\"\n", "x402.example.listen"),
            (
                "[x402.example]\ngoat_pay_to = \"0x12\"\n",
                "x402.example.goat_pay_to",
            ),
            (
                "[x402.example]\ngoat_amount = \"1.5\"\n",
                "x402.example.goat_amount",
            ),
            (
                "[agent]\nmax_goat_amount = \"-1\"\n",
                "agent.max_goat_amount",
            ),
            (
                "[x402]\nsettle_timeout_secs = 0\n",
                "x402.settle_timeout_secs",
            ),
        ] {
            let err = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = Config::parse("[agent]\nkey = \"0x11\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `key`"), "{err}");
    }

    #[test]
    fn default_rpc_url_follows_the_network() {
        let mut c = Config::default();
        c.btc.network = BtcNetwork::Testnet4;
        assert_eq!(c.btc_rpc_url(), "http://127.0.0.1:48332");
    }
}
