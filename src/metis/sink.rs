//! What the relayer reads from and writes to the Metis contracts: the
//! [`MetisSink`] trait, and [`AlloySink`], its JSON-RPC implementation.
//!
//! Every write is simulated by the node first (`eth_estimateGas`), so a
//! transaction that would revert is refused with the contract's named custom
//! error ([`MetisError::Reverted`]) before anything is spent.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use thiserror::Error;

use super::bindings::{
    decode_revert, BtcLightClient, DecodedRevert, GoatHeaderStore, PaymentSettlement,
};
use super::invoice::Terms;
use super::outbox::Outbox;
use super::sender::{Sender, TxPolicy};
use crate::error::{Classify, ErrorClass};

/// A failure talking to Metis, classed for retrying.
#[derive(Debug, Error)]
pub enum MetisError {
    /// The node could not be reached, timed out, or is overloaded.
    #[error("{endpoint}: {what}: {message}")]
    Unavailable {
        /// The node's URL.
        endpoint: String,
        /// What was attempted.
        what: String,
        /// What happened.
        message: String,
    },
    /// A contract call or transaction reverted with a (decoded) custom error.
    #[error("{what} reverted: {revert}")]
    Reverted {
        /// What was attempted (contract and function).
        what: String,
        /// The decoded error.
        revert: DecodedRevert,
    },
    /// The node refused the request (funds, nonce, bad parameters).
    #[error("{endpoint}: {what}: {message}")]
    Rpc {
        /// The node's URL.
        endpoint: String,
        /// What was attempted.
        what: String,
        /// The node's message.
        message: String,
    },
    /// A transaction was mined but failed (status 0).
    #[error("{what}: transaction {tx_hash} was mined but failed (status 0)")]
    TxFailed {
        /// What was attempted.
        what: String,
        /// The transaction.
        tx_hash: B256,
    },
    /// The node serves another chain.
    #[error("{endpoint}: chain id {found}, expected {expected} (metis.chain_id)")]
    WrongChain {
        /// The node's URL.
        endpoint: String,
        /// metis.chain_id.
        expected: u64,
        /// What the node reports.
        found: u64,
    },
    /// No code at a contract address.
    #[error("{endpoint}: no contract at {address} ({what}): wrong deployment file or metis.* address override?")]
    NoContract {
        /// The node's URL.
        endpoint: String,
        /// Which contract.
        what: &'static str,
        /// The address.
        address: Address,
    },
    /// A write was asked of a sink without a signing key.
    #[error("{what}: no signing key (set the variable named by metis.key_env, default GMRELAY_METIS_KEY)")]
    NoSigner {
        /// What was attempted.
        what: String,
    },
    /// The node's gas price is above `metis.max_gas_price_gwei`: nothing is
    /// sent until it comes down.
    #[error("{what}: the node's gas price is {price} wei, above the cap of {cap} wei (metis.max_gas_price_gwei); waiting")]
    GasPriceAboveCap {
        /// What was attempted.
        what: String,
        /// eth_gasPrice.
        price: u128,
        /// The cap.
        cap: u128,
    },
    /// A transaction was sent but its receipt did not come in time. Not
    /// retried automatically: a second submission would race the first.
    #[error("{what}: transaction {tx_hash} was sent but not mined within {waited:?}; check it on the node, then run the command again (it re-plans from the contracts' state)")]
    Pending {
        /// What was attempted.
        what: String,
        /// The transaction.
        tx_hash: B256,
        /// How long gmrelay waited.
        waited: Duration,
    },
}

impl Classify for MetisError {
    fn class(&self) -> ErrorClass {
        match self {
            MetisError::Unavailable { .. } | MetisError::GasPriceAboveCap { .. } => {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }
}

impl MetisError {
    /// The decoded custom error, if the failure is a revert.
    pub fn revert(&self) -> Option<&DecodedRevert> {
        match self {
            MetisError::Reverted { revert, .. } => Some(revert),
            _ => None,
        }
    }
}

/// A mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOutcome {
    /// Its hash.
    pub tx_hash: B256,
    /// Gas used by the whole transaction.
    pub gas_used: u64,
    /// The block it was mined in.
    pub block_number: Option<u64>,
    /// The price paid per gas, wei.
    pub gas_price: u128,
    /// The L1 data fee, wei, where the chain has Metis's gas price oracle.
    pub l1_fee: Option<U256>,
    /// The contract a deployment created.
    pub contract_address: Option<Address>,
}

impl TxOutcome {
    /// Total cost in wei: gas × price, plus the L1 data fee.
    pub fn cost_wei(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.gas_price) + self.l1_fee.unwrap_or_default()
    }
}

/// The addresses of the three contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contracts {
    /// BtcLightClient.
    pub btc_light_client: Address,
    /// GoatHeaderStore.
    pub goat_header_store: Address,
    /// PaymentSettlement.
    pub payment_settlement: Address,
}

/// What PaymentSettlement holds for an invoice id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceState {
    /// Nothing: a signed invoice not yet settled, or no invoice at all.
    Unknown,
    /// Created on-chain and open: the stored EIP-712 struct hash of its terms.
    Open(B256),
    /// Settled.
    Settled,
    /// Settled; its service hook reverted or ran out of gas.
    SettledServiceFailed,
}

impl InvoiceState {
    /// From `PaymentSettlement.invoiceState`.
    pub fn from_word(w: U256) -> InvoiceState {
        if w.is_zero() {
            InvoiceState::Unknown
        } else if w == U256::from(1u8) {
            InvoiceState::Settled
        } else if w == U256::from(2u8) {
            InvoiceState::SettledServiceFailed
        } else {
            InvoiceState::Open(B256::from(w))
        }
    }

    /// Whether it is settled (whatever its hook did).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            InvoiceState::Settled | InvoiceState::SettledServiceFailed
        )
    }

    /// `unknown`, `open`, `settled` or `settled (service hook failed)`.
    pub fn name(self) -> &'static str {
        match self {
            InvoiceState::Unknown => "unknown",
            InvoiceState::Open(_) => "open",
            InvoiceState::Settled => "settled",
            InvoiceState::SettledServiceFailed => "settled (service hook failed)",
        }
    }
}

/// The fields of a GOAT block the committee attests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoatBlockFields {
    /// Block hash.
    pub hash: B256,
    /// Block number.
    pub number: u64,
    /// Header timestamp.
    pub timestamp: u64,
    /// Receipts root.
    pub receipts_root: B256,
}

/// What the relayer needs from the Metis contracts.
#[allow(async_fn_in_trait)]
pub trait MetisSink {
    /// The node, for messages.
    fn endpoint(&self) -> String;
    /// BtcLightClient's best tip: (height, hash in internal byte order).
    async fn btc_best(&self) -> Result<(u64, B256), MetisError>;
    /// Whether BtcLightClient stores `hash` (a batch tip or the checkpoint).
    async fn btc_is_stored(&self, hash: B256) -> Result<bool, MetisError>;
    /// The stored best-chain header at `height` (zero if none).
    async fn btc_stored_best_at(&self, height: u64) -> Result<B256, MetisError>;
    /// Submits concatenated 80-byte headers.
    async fn btc_submit_headers(&self, headers: Bytes) -> Result<TxOutcome, MetisError>;
    /// Submits headers in the 48-byte compact form (no prevHash) on top of `parent`.
    async fn btc_submit_compact(
        &self,
        parent: B256,
        headers: Bytes,
    ) -> Result<TxOutcome, MetisError>;
    /// Whether GoatHeaderStore stores an attestation of `hash`.
    async fn goat_is_known(&self, hash: B256) -> Result<bool, MetisError>;
    /// The committee: members and threshold.
    async fn goat_committee(&self) -> Result<(Vec<Address>, u64), MetisError>;
    /// The GOAT chain id the store attests.
    async fn goat_chain_id(&self) -> Result<u64, MetisError>;
    /// The EIP-712 digest members sign for a block, as the contract computes it.
    async fn goat_attestation_digest(&self, block: &GoatBlockFields) -> Result<B256, MetisError>;
    /// Stores a block attestation (packed, ascending-signer signatures).
    async fn goat_attest_block(
        &self,
        block: &GoatBlockFields,
        signatures: Bytes,
    ) -> Result<TxOutcome, MetisError>;
    /// What PaymentSettlement holds for `id`.
    async fn invoice_state(&self, id: B256) -> Result<InvoiceState, MetisError>;
    /// The address that signs this sink's transactions.
    fn signer_address(&self) -> Option<Address>;
    /// Metis's chain id (the EIP-712 domain of signed invoices).
    fn chain_id(&self) -> u64;
    /// PaymentSettlement's address (the EIP-712 domain of signed invoices).
    fn settlement_address(&self) -> Address;
    /// Creates an invoice on-chain (the signer must be the terms' merchant); returns its id.
    async fn create_invoice(&self, terms: &Terms) -> Result<(B256, TxOutcome), MetisError>;
    /// Settles Bitcoin payments grouped by block (one transaction).
    async fn settle_btc(
        &self,
        groups: Vec<PaymentSettlement::BtcGroup>,
        purpose: &str,
    ) -> Result<TxOutcome, MetisError>;
    /// Settles GOAT payments grouped by block (one transaction).
    async fn settle_goat(
        &self,
        groups: Vec<PaymentSettlement::GoatGroup>,
        purpose: &str,
    ) -> Result<TxOutcome, MetisError>;
    /// The confirmations PaymentSettlement requires of BTC payments.
    async fn min_btc_confirmations(&self) -> Result<u64, MetisError>;
    /// The Metis block timestamp of the latest block.
    async fn now(&self) -> Result<u64, MetisError>;
}

/// [`MetisSink`] over JSON-RPC with alloy.
#[derive(Clone)]
pub struct AlloySink {
    provider: DynProvider,
    url: String,
    chain_id: u64,
    contracts: Contracts,
    signer: Option<Address>,
    timeout: Duration,
    sender: Option<std::sync::Arc<Sender>>,
}

impl std::fmt::Debug for AlloySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlloySink")
            .field("url", &self.url)
            .field("contracts", &self.contracts)
            .field("signer", &self.signer)
            .finish()
    }
}

pub(crate) fn u64_of(v: U256, endpoint: &str, what: &str) -> Result<u64, MetisError> {
    u64::try_from(v).map_err(|_| MetisError::Rpc {
        endpoint: endpoint.to_string(),
        what: what.to_string(),
        message: format!("{v} does not fit 64 bits"),
    })
}

/// Maps an alloy contract error: a revert becomes [`MetisError::Reverted`]
/// with the decoded custom error; transport failures are transient.
pub fn map_contract_error(endpoint: &str, what: &str, e: alloy::contract::Error) -> MetisError {
    if let Some(data) = e.as_revert_data() {
        return MetisError::Reverted {
            what: what.to_string(),
            revert: decode_revert(&data),
        };
    }
    match e {
        alloy::contract::Error::TransportError(t) => map_transport(endpoint, what, t),
        alloy::contract::Error::PendingTransactionError(p) => MetisError::Unavailable {
            endpoint: endpoint.to_string(),
            what: what.to_string(),
            message: p.to_string(),
        },
        other => MetisError::Rpc {
            endpoint: endpoint.to_string(),
            what: what.to_string(),
            message: other.to_string(),
        },
    }
}

/// Maps a transport error: unreachable, timed out or rate-limited nodes are transient.
pub fn map_transport(endpoint: &str, what: &str, e: RpcError<TransportErrorKind>) -> MetisError {
    match &e {
        RpcError::Transport(TransportErrorKind::HttpError(h))
            if h.status == 429 || h.status >= 500 =>
        {
            MetisError::Unavailable {
                endpoint: endpoint.to_string(),
                what: what.to_string(),
                message: e.to_string(),
            }
        }
        RpcError::Transport(TransportErrorKind::HttpError(_)) => MetisError::Rpc {
            endpoint: endpoint.to_string(),
            what: what.to_string(),
            message: e.to_string(),
        },
        RpcError::Transport(_) => MetisError::Unavailable {
            endpoint: endpoint.to_string(),
            what: what.to_string(),
            message: e.to_string(),
        },
        RpcError::ErrorResp(p) => {
            if let Some(data) = p.as_revert_data() {
                return MetisError::Reverted {
                    what: what.to_string(),
                    revert: decode_revert(&data),
                };
            }
            MetisError::Rpc {
                endpoint: endpoint.to_string(),
                what: what.to_string(),
                message: e.to_string(),
            }
        }
        _ => MetisError::Rpc {
            endpoint: endpoint.to_string(),
            what: what.to_string(),
            message: e.to_string(),
        },
    }
}

impl AlloySink {
    /// Connects to `url`, checks the chain id and that the three contracts
    /// have code. Writes need `signer`.
    pub async fn connect(
        url: &str,
        chain_id: u64,
        contracts: Contracts,
        signer: Option<PrivateKeySigner>,
        timeout: Duration,
    ) -> Result<Self, MetisError> {
        let policy = TxPolicy {
            receipt_timeout: timeout,
            ..TxPolicy::default()
        };
        Self::connect_with(url, chain_id, contracts, signer, timeout, policy, None).await
    }

    /// Like [`AlloySink::connect`], with a pricing policy and an outbox that
    /// records every transaction before it is broadcast.
    pub async fn connect_with(
        url: &str,
        chain_id: u64,
        contracts: Contracts,
        signer: Option<PrivateKeySigner>,
        timeout: Duration,
        policy: TxPolicy,
        outbox: Option<std::sync::Arc<Outbox>>,
    ) -> Result<Self, MetisError> {
        let provider = provider(url)?;
        let sender = signer.clone().map(|s| {
            std::sync::Arc::new(Sender::new(
                provider.clone(),
                EthereumWallet::from(s),
                url,
                chain_id,
                policy,
                outbox,
            ))
        });
        let sink = AlloySink {
            provider,
            url: url.to_string(),
            chain_id,
            contracts,
            signer: signer.map(|s| s.address()),
            timeout,
            sender,
        };
        sink.check_chain().await?;
        for (what, address) in [
            ("BtcLightClient", contracts.btc_light_client),
            ("GoatHeaderStore", contracts.goat_header_store),
            ("PaymentSettlement", contracts.payment_settlement),
        ] {
            let code = sink
                .timed("eth_getCode", sink.provider.get_code_at(address))
                .await?
                .map_err(|e| map_transport(url, "eth_getCode", e))?;
            if code.is_empty() {
                return Err(MetisError::NoContract {
                    endpoint: url.to_string(),
                    what,
                    address,
                });
            }
        }
        Ok(sink)
    }

    /// Checks that the node serves `chain_id`.
    async fn check_chain(&self) -> Result<(), MetisError> {
        let found = self
            .timed("eth_chainId", self.provider.get_chain_id())
            .await?
            .map_err(|e| map_transport(&self.url, "eth_chainId", e))?;
        if found != self.chain_id {
            return Err(MetisError::WrongChain {
                endpoint: self.url.clone(),
                expected: self.chain_id,
                found,
            });
        }
        Ok(())
    }

    /// The node's URL.
    pub fn endpoint_url(&self) -> &str {
        &self.url
    }

    /// The contract addresses.
    pub fn contracts(&self) -> Contracts {
        self.contracts
    }

    /// The provider (for tests and the benchmarks).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    async fn timed<T>(
        &self,
        what: &str,
        fut: impl std::future::IntoFuture<Output = T>,
    ) -> Result<T, MetisError> {
        tokio::time::timeout(self.timeout, fut.into_future())
            .await
            .map_err(|_| MetisError::Unavailable {
                endpoint: self.url.clone(),
                what: what.to_string(),
                message: format!("no answer within {:?}", self.timeout),
            })
    }

    fn need_signer(&self, what: &str) -> Result<(), MetisError> {
        if self.signer.is_none() {
            return Err(MetisError::NoSigner {
                what: what.to_string(),
            });
        }
        Ok(())
    }

    fn btc(&self) -> BtcLightClient::BtcLightClientInstance<DynProvider> {
        BtcLightClient::new(self.contracts.btc_light_client, self.provider.clone())
    }

    fn goat(&self) -> GoatHeaderStore::GoatHeaderStoreInstance<DynProvider> {
        GoatHeaderStore::new(self.contracts.goat_header_store, self.provider.clone())
    }

    fn goat_lc(&self) -> super::bindings::GoatLightClient::GoatLightClientInstance<DynProvider> {
        super::bindings::GoatLightClient::new(
            self.contracts.goat_header_store,
            self.provider.clone(),
        )
    }

    fn settlement(&self) -> PaymentSettlement::PaymentSettlementInstance<DynProvider> {
        PaymentSettlement::new(self.contracts.payment_settlement, self.provider.clone())
    }

    /// The sender (legacy transactions, outbox), when there is a key.
    pub fn sender(&self) -> Option<&std::sync::Arc<Sender>> {
        self.sender.as_ref()
    }

    /// Sends a prepared call as a legacy transaction priced from
    /// `eth_gasPrice` (simulated first, so reverts come back decoded) and
    /// waits for its receipt.
    async fn send<P, C>(
        &self,
        what: &str,
        purpose: &str,
        call: alloy::contract::CallBuilder<P, C>,
    ) -> Result<TxOutcome, MetisError>
    where
        P: Provider,
        C: alloy::contract::CallDecoder,
    {
        self.need_signer(what)?;
        let sender = self.sender.as_ref().ok_or_else(|| MetisError::NoSigner {
            what: what.to_string(),
        })?;
        sender
            .send(what, purpose, call.into_transaction_request())
            .await
    }
}

/// A provider for `url`. It signs nothing: [`Sender`] fills, signs (legacy
/// EIP-155, as Metis requires) and records every transaction itself.
pub fn provider(url: &str) -> Result<DynProvider, MetisError> {
    let parsed = url.parse().map_err(|e| MetisError::Rpc {
        endpoint: url.to_string(),
        what: "connect".into(),
        message: format!("not a URL: {e}"),
    })?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(parsed)
        .erased())
}

macro_rules! view {
    ($self:ident, $what:literal, $call:expr) => {
        $self
            .timed($what, $call.call())
            .await?
            .map_err(|e| map_contract_error(&$self.url, $what, e))
    };
}

impl AlloySink {
    /// GoatLightClient's trusted state: (CometBFT height, its time in
    /// seconds, frozen).
    pub async fn goat_lc_state(&self) -> Result<(u64, u64, bool), MetisError> {
        let r = view!(
            self,
            "GoatLightClient.trustedState",
            self.goat_lc().trustedState()
        )?;
        let secs = r.timeNanos / U256::from(1_000_000_000u64);
        Ok((
            u64_of(r.height, &self.url, "trusted height")?,
            u64_of(secs, &self.url, "trusted time")?,
            r.frozen,
        ))
    }

    /// Proves ancestors of a block GoatLightClient holds: `headers` (RLP) from
    /// that block down, each the parent of the one before.
    pub async fn goat_lc_prove_ancestors(
        &self,
        headers: Vec<Bytes>,
        purpose: &str,
    ) -> Result<TxOutcome, MetisError> {
        self.send(
            "GoatLightClient.proveAncestors",
            purpose,
            self.goat_lc().proveAncestors(headers),
        )
        .await
    }

    /// Submits one CometBFT height to GoatLightClient.
    pub async fn goat_lc_submit(
        &self,
        args: &super::goatlc::SubmitArgs,
        purpose: &str,
    ) -> Result<TxOutcome, MetisError> {
        self.send(
            "GoatLightClient.submit",
            purpose,
            self.goat_lc().submit(
                args.header.clone(),
                args.commit.clone(),
                args.tx0.clone(),
                args.tx0_proof.clone(),
                args.evm_header.clone(),
                args.next_validators.clone(),
            ),
        )
        .await
    }
}

impl MetisSink for AlloySink {
    fn endpoint(&self) -> String {
        self.url.clone()
    }

    async fn btc_best(&self) -> Result<(u64, B256), MetisError> {
        let c = self.btc();
        let hash = view!(self, "BtcLightClient.bestHash", c.bestHash())?;
        let height = view!(self, "BtcLightClient.bestHeight", c.bestHeight())?;
        Ok((u64_of(height, &self.url, "bestHeight")?, hash))
    }

    async fn btc_is_stored(&self, hash: B256) -> Result<bool, MetisError> {
        view!(self, "BtcLightClient.isStored", self.btc().isStored(hash))
    }

    async fn btc_stored_best_at(&self, height: u64) -> Result<B256, MetisError> {
        view!(
            self,
            "BtcLightClient.storedBestAt",
            self.btc().storedBestAt(U256::from(height))
        )
    }

    async fn btc_submit_headers(&self, headers: Bytes) -> Result<TxOutcome, MetisError> {
        let purpose = format!("{} headers", headers.len() / 80);
        self.send(
            "BtcLightClient.submitHeaders",
            &purpose,
            self.btc().submitHeaders(headers),
        )
        .await
    }

    async fn btc_submit_compact(
        &self,
        parent: B256,
        headers: Bytes,
    ) -> Result<TxOutcome, MetisError> {
        let purpose = format!("{} compact headers", headers.len() / 48);
        self.send(
            "BtcLightClient.submitCompactHeaders",
            &purpose,
            self.btc().submitCompactHeaders(parent, headers),
        )
        .await
    }

    async fn goat_is_known(&self, hash: B256) -> Result<bool, MetisError> {
        view!(self, "GoatHeaderStore.isKnown", self.goat().isKnown(hash))
    }

    async fn goat_committee(&self) -> Result<(Vec<Address>, u64), MetisError> {
        let r = view!(self, "GoatHeaderStore.committee", self.goat().committee())?;
        Ok((r.members, u64_of(r.quorum, &self.url, "committee quorum")?))
    }

    async fn goat_chain_id(&self) -> Result<u64, MetisError> {
        let id = view!(
            self,
            "GoatHeaderStore.goatChainId",
            self.goat().goatChainId()
        )?;
        u64_of(id, &self.url, "goatChainId")
    }

    async fn goat_attestation_digest(&self, b: &GoatBlockFields) -> Result<B256, MetisError> {
        view!(
            self,
            "GoatHeaderStore.hashGoatBlock",
            self.goat().hashGoatBlock(
                b.hash,
                U256::from(b.number),
                U256::from(b.timestamp),
                b.receipts_root
            )
        )
    }

    async fn goat_attest_block(
        &self,
        b: &GoatBlockFields,
        signatures: Bytes,
    ) -> Result<TxOutcome, MetisError> {
        self.send(
            "GoatHeaderStore.attestBlock",
            &format!("GOAT block {} attestation", b.number),
            self.goat().attestBlock(
                b.hash,
                U256::from(b.number),
                U256::from(b.timestamp),
                b.receipts_root,
                signatures,
            ),
        )
        .await
    }

    async fn invoice_state(&self, id: B256) -> Result<InvoiceState, MetisError> {
        let w = view!(
            self,
            "PaymentSettlement.invoiceState",
            self.settlement().invoiceState(id)
        )?;
        Ok(InvoiceState::from_word(w))
    }

    async fn create_invoice(&self, terms: &Terms) -> Result<(B256, TxOutcome), MetisError> {
        let id = terms.id();
        let outcome = self
            .send(
                "PaymentSettlement.createInvoice",
                &format!("invoice {id}"),
                self.settlement().createInvoice(terms.to_sol()),
            )
            .await?;
        Ok((id, outcome))
    }

    fn signer_address(&self) -> Option<Address> {
        self.signer
    }

    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn settlement_address(&self) -> Address {
        self.contracts.payment_settlement
    }

    async fn settle_btc(
        &self,
        groups: Vec<PaymentSettlement::BtcGroup>,
        purpose: &str,
    ) -> Result<TxOutcome, MetisError> {
        self.send(
            "PaymentSettlement.settleBtc",
            purpose,
            self.settlement().settleBtc(groups),
        )
        .await
    }

    async fn settle_goat(
        &self,
        groups: Vec<PaymentSettlement::GoatGroup>,
        purpose: &str,
    ) -> Result<TxOutcome, MetisError> {
        self.send(
            "PaymentSettlement.settleGoat",
            purpose,
            self.settlement().settleGoat(groups),
        )
        .await
    }

    async fn min_btc_confirmations(&self) -> Result<u64, MetisError> {
        let n = view!(
            self,
            "PaymentSettlement.minBtcConfirmations",
            self.settlement().minBtcConfirmations()
        )?;
        u64_of(n, &self.url, "minBtcConfirmations")
    }

    async fn now(&self) -> Result<u64, MetisError> {
        let block = self
            .timed(
                "eth_getBlockByNumber",
                self.provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest),
            )
            .await?
            .map_err(|e| map_transport(&self.url, "eth_getBlockByNumber", e))?
            .ok_or_else(|| MetisError::Rpc {
                endpoint: self.url.clone(),
                what: "eth_getBlockByNumber".into(),
                message: "no latest block".into(),
            })?;
        Ok(block.header.timestamp)
    }
}
