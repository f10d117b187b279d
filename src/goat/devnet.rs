//! GOAT devnet helpers for the demo, the benchmarks and the tests: a real
//! anvil process on a free loopback port, the test stablecoin (bindings
//! generated from its compiled artifact), and EIP-3009 authorizations
//! signed in Rust (EIP-712).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use thiserror::Error;

alloy::sol!(
    #[allow(missing_docs, clippy::too_many_arguments)]
    #[sol(rpc)]
    TestStablecoin,
    "contracts/artifacts/TestStablecoin.json"
);

pub use crate::x402::evm::{authorization_hash, TransferWithAuthorization};

/// anvil's first default account: deploys the token and submits payments (the x402 facilitator).
pub const RELAYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The devnet payer: signs EIP-3009 authorizations only (it needs no gas).
pub const PAYER_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

/// A devnet failure.
#[derive(Debug, Error)]
pub enum GoatDevnetError {
    /// anvil could not be found or started.
    #[error("anvil: {0}")]
    Start(String),
    /// A call or transaction failed.
    #[error("{what}: {message}")]
    Call {
        /// What was attempted.
        what: String,
        /// The error.
        message: String,
    },
}

fn call_err(what: &str) -> impl Fn(String) -> GoatDevnetError + '_ {
    move |message| GoatDevnetError::Call {
        what: what.to_string(),
        message,
    }
}

/// Finds anvil: `ANVIL_EXE`, then `tools/node_modules/.bin/anvil` of this
/// source tree, then `anvil` on the PATH.
pub fn anvil_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("ANVIL_EXE") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/.bin/anvil");
    if local.exists() {
        return local;
    }
    PathBuf::from("anvil")
}

/// A running anvil, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Anvil {
    /// Starts anvil with `--chain-id chain_id` on a free port (plus `extra` arguments)
    /// and waits until it answers.
    pub async fn start(chain_id: u64, extra: &[&str]) -> Result<Self, GoatDevnetError> {
        Self::start_on(chain_id, crate::devnet::free_port(), extra).await
    }

    /// Like [`Anvil::start`], on a given port.
    pub async fn start_on(
        chain_id: u64,
        port: u16,
        extra: &[&str],
    ) -> Result<Self, GoatDevnetError> {
        let exe = anvil_exe();
        let child = Command::new(&exe)
            .args([
                "--chain-id",
                &chain_id.to_string(),
                "--port",
                &port.to_string(),
            ])
            .args(["--host", "127.0.0.1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                GoatDevnetError::Start(format!("{}: {e} (set ANVIL_EXE)", exe.display()))
            })?;
        let mut anvil = Anvil {
            child: Some(child),
            port,
        };
        let provider = ProviderBuilder::new().connect_http(
            anvil
                .url()
                .parse()
                .map_err(|e| GoatDevnetError::Start(format!("{e}")))?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = anvil.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(GoatDevnetError::Start(format!("exited with {status}")));
                }
            }
            if provider.get_chain_id().await.is_ok() {
                return Ok(anvil);
            }
            if Instant::now() > deadline {
                return Err(GoatDevnetError::Start("not answering after 30 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lets the process outlive this handle (for `gmrelay devnet anvil-start`);
    /// returns its pid.
    pub fn detach(&mut self) -> u32 {
        self.child.take().map(|c| c.id()).unwrap_or(0)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A signer from a hex private key.
pub fn signer(key: &str) -> PrivateKeySigner {
    key.parse().expect("a valid built-in devnet key")
}

/// A provider at `url` that signs with `key`.
pub fn wallet_provider(url: &str, key: &str) -> Result<impl Provider + Clone, GoatDevnetError> {
    let url = url
        .parse()
        .map_err(|e| call_err("provider")(format!("`{url}`: {e}")))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer(key)))
        .connect_http(url))
}

/// Deploys a test stablecoin (`name`, `symbol`, EIP-712 `version`) from the relayer account.
pub async fn deploy_token(
    url: &str,
    name: &str,
    symbol: &str,
    version: &str,
) -> Result<Address, GoatDevnetError> {
    let provider = wallet_provider(url, RELAYER_KEY)?;
    let token = TestStablecoin::deploy(
        provider,
        name.to_string(),
        symbol.to_string(),
        version.to_string(),
    )
    .await
    .map_err(|e| call_err("deploying TestStablecoin")(e.to_string()))?;
    Ok(*token.address())
}

/// Mints `amount` base units of `token` to `to` (the relayer deployed it).
pub async fn mint(
    url: &str,
    token: Address,
    to: Address,
    amount: U256,
) -> Result<B256, GoatDevnetError> {
    let provider = wallet_provider(url, RELAYER_KEY)?;
    let t = TestStablecoin::new(token, provider);
    let receipt = t
        .mint(to, amount)
        .send()
        .await
        .map_err(|e| call_err("mint")(e.to_string()))?
        .get_receipt()
        .await
        .map_err(|e| call_err("mint receipt")(e.to_string()))?;
    Ok(receipt.transaction_hash)
}

/// Signs an EIP-3009 `TransferWithAuthorization` with `payer`.
pub fn sign_authorization(
    payer: &PrivateKeySigner,
    name: &str,
    version: &str,
    chain_id: u64,
    token: Address,
    auth: &TransferWithAuthorization,
) -> Result<alloy::primitives::Signature, GoatDevnetError> {
    let hash = authorization_hash(name, version, chain_id, token, auth);
    payer
        .sign_hash_sync(&hash)
        .map_err(|e| call_err("signing the authorization")(e.to_string()))
}

/// What [`pay`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaySubmitted {
    /// The transaction hash.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: Option<u64>,
}

/// An x402 "exact" payment on the devnet: `payer_key` signs an EIP-3009
/// authorization to pay `amount` of `token` to `to` with nonce `invoice`;
/// the relayer submits `transferWithAuthorization` (v, r, s overload) and
/// waits for the receipt when `wait` (with automine off, pass false).
#[allow(clippy::too_many_arguments)]
pub async fn pay(
    url: &str,
    token: Address,
    payer_key: &str,
    to: Address,
    amount: U256,
    invoice: B256,
    wait: bool,
) -> Result<PaySubmitted, GoatDevnetError> {
    let provider = wallet_provider(url, RELAYER_KEY)?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| call_err("eth_chainId")(e.to_string()))?;
    let t = TestStablecoin::new(token, provider.clone());
    let name = t
        .name()
        .call()
        .await
        .map_err(|e| call_err("name()")(e.to_string()))?;
    let version = t
        .version()
        .call()
        .await
        .map_err(|e| call_err("version()")(e.to_string()))?;
    let payer = signer(payer_key);
    let auth = TransferWithAuthorization {
        from: payer.address(),
        to,
        value: amount,
        validAfter: U256::ZERO,
        validBefore: U256::from(u64::MAX),
        nonce: invoice,
    };
    let sig = sign_authorization(&payer, &name, &version, chain_id, token, &auth)?;
    let v = 27 + u8::from(sig.v());
    let r = B256::from(sig.r().to_be_bytes::<32>());
    let s = B256::from(sig.s().to_be_bytes::<32>());
    let pending = t
        .transferWithAuthorization_1(
            auth.from,
            auth.to,
            auth.value,
            auth.validAfter,
            auth.validBefore,
            auth.nonce,
            v,
            r,
            s,
        )
        .send()
        .await
        .map_err(|e| call_err("transferWithAuthorization")(e.to_string()))?;
    let tx_hash = *pending.tx_hash();
    if !wait {
        return Ok(PaySubmitted {
            tx_hash,
            block_number: None,
        });
    }
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|e| call_err("transferWithAuthorization receipt")(e.to_string()))?;
    if !receipt.status() {
        return Err(call_err("transferWithAuthorization")(format!(
            "transaction {tx_hash} reverted"
        )));
    }
    Ok(PaySubmitted {
        tx_hash,
        block_number: receipt.block_number,
    })
}

/// The payer's address.
pub fn payer_address() -> Address {
    signer(PAYER_KEY).address()
}

/// Mines `n` blocks at once (`anvil_mine`).
pub async fn mine(url: &str, n: u64) -> Result<(), GoatDevnetError> {
    let provider = ProviderBuilder::new().connect_http(
        url.parse()
            .map_err(|e| call_err("provider")(format!("`{url}`: {e}")))?,
    );
    provider
        .raw_request::<_, serde_json::Value>("anvil_mine".into(), (format!("{n:#x}"),))
        .await
        .map_err(|e| call_err("anvil_mine")(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_hash_uses_the_usdc_domain() {
        let auth = TransferWithAuthorization {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            value: U256::from(5),
            validAfter: U256::ZERO,
            validBefore: U256::from(10),
            nonce: B256::repeat_byte(3),
        };
        let a = authorization_hash("USD Coin", "2", 2345, Address::repeat_byte(9), &auth);
        let b = authorization_hash("USD Coin", "2", 48816, Address::repeat_byte(9), &auth);
        assert_ne!(a, b, "the chain id is part of the domain");
        let sig = sign_authorization(
            &signer(PAYER_KEY),
            "USD Coin",
            "2",
            2345,
            Address::repeat_byte(9),
            &auth,
        )
        .unwrap();
        assert_eq!(
            sig.recover_address_from_prehash(&a).unwrap(),
            payer_address()
        );
    }
}
