//! Regtest helpers for the demo and the integration tests: a real bitcoind
//! process on free loopback ports, and a wallet-less payer that builds and
//! signs P2WPKH transactions in Rust.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::key::{CompressedPublicKey, Secp256k1};
use bitcoin::script::PushBytesBuf;
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Address, Amount, BlockHash, Network, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use serde_json::{json, Value};
use thiserror::Error;

use crate::btc::rpc::{Auth, BitcoindRpc};
use crate::btc::source::SourceError;

/// A devnet failure.
#[derive(Debug, Error)]
pub enum DevnetError {
    /// The bitcoind binary could not be found or started.
    #[error("bitcoind: {0}")]
    Start(String),
    /// An RPC call failed.
    #[error(transparent)]
    Rpc(#[from] SourceError),
    /// Something else.
    #[error("{0}")]
    Other(String),
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The tool cache `make setup` fills: `GMRELAY_CACHE`, else `~/.cache/gmrelay`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("GMRELAY_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gmrelay")))
}

/// Finds bitcoind: `BITCOIND_EXE`, then the cache `make setup` fills.
pub fn bitcoind_exe() -> Result<PathBuf, DevnetError> {
    if let Some(p) = std::env::var_os("BITCOIND_EXE") {
        return Ok(PathBuf::from(p));
    }
    let cache = cache_dir()
        .ok_or_else(|| DevnetError::Start("neither BITCOIND_EXE nor HOME is set".into()))?;
    let exe = cache.join("bitcoind-kernel-0.4.1/bitcoind");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(DevnetError::Start(format!(
            "{} not found: run `make setup` or set BITCOIND_EXE",
            exe.display()
        )))
    }
}

/// A regtest bitcoind, stopped and (for temporary ones) deleted on drop.
pub struct Bitcoind {
    child: Option<Child>,
    /// RPC port.
    pub rpc_port: u16,
    /// Data directory.
    pub datadir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    rpc: BitcoindRpc,
}

impl std::fmt::Debug for Bitcoind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitcoind")
            .field("rpc_port", &self.rpc_port)
            .field("datadir", &self.datadir)
            .finish()
    }
}

impl Bitcoind {
    /// Starts bitcoind in a new temporary directory.
    pub async fn start_temp() -> Result<Self, DevnetError> {
        let tmp = tempfile::Builder::new()
            .prefix("gmrelay-bitcoind-")
            .tempdir()
            .map_err(|e| DevnetError::Start(e.to_string()))?;
        let dir = tmp.path().to_path_buf();
        let mut node = Self::start_in(&dir, free_port()).await?;
        node._tmp = Some(tmp);
        Ok(node)
    }

    /// Starts bitcoind with `datadir` on `rpc_port` (regtest, no P2P listening).
    pub async fn start_in(datadir: &Path, rpc_port: u16) -> Result<Self, DevnetError> {
        let exe = bitcoind_exe()?;
        std::fs::create_dir_all(datadir).map_err(|e| DevnetError::Start(e.to_string()))?;
        let child = Command::new(&exe)
            .arg("-regtest")
            .arg("-listen=0")
            .arg("-server=1")
            .arg(format!("-datadir={}", datadir.display()))
            .arg(format!("-rpcport={rpc_port}"))
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            .arg("-fallbackfee=0.0001")
            .arg("-txindex=1")
            .arg("-rpcworkqueue=64")
            .arg("-printtoconsole=0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DevnetError::Start(format!("{}: {e}", exe.display())))?;
        let cookie = datadir.join("regtest/.cookie");
        let rpc = BitcoindRpc::new(
            &format!("http://127.0.0.1:{rpc_port}"),
            Auth::Cookie(cookie.clone()),
            Duration::from_secs(30),
        )?;
        let mut node = Bitcoind {
            child: Some(child),
            rpc_port,
            datadir: datadir.to_path_buf(),
            _tmp: None,
            rpc,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = node.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(DevnetError::Start(format!(
                        "exited with {status} (see {}/regtest/debug.log)",
                        datadir.display()
                    )));
                }
            }
            if cookie.exists() && node.rpc.call("getblockchaininfo", json!([])).await.is_ok() {
                return Ok(node);
            }
            if Instant::now() > deadline {
                return Err(DevnetError::Start("RPC not ready after 60 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// The cookie file.
    pub fn cookie_file(&self) -> PathBuf {
        self.datadir.join("regtest/.cookie")
    }

    /// The RPC client.
    pub fn rpc(&self) -> &BitcoindRpc {
        &self.rpc
    }

    /// RPC operations on this node.
    pub fn node(&self) -> RpcNode<'_> {
        RpcNode { rpc: &self.rpc }
    }

    /// Leaves the process running after this handle is dropped; returns its pid.
    pub fn detach(&mut self) -> u32 {
        self.child.take().map(|c| c.id()).unwrap_or(0)
    }

    /// Stops the node and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A wallet-less regtest payer: one key, P2WPKH, coins from coinbases it mined.
#[derive(Debug, Clone)]
pub struct Payer {
    secret: SecretKey,
    pubkey: CompressedPublicKey,
    /// The payer's address.
    pub address: Address,
}

impl Payer {
    /// A payer from a 32-byte seed (any non-zero value below the curve order).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_secret(seed, Network::Regtest).expect("seed is a valid secret key")
    }

    /// A payer holding `secret` on `network` (P2WPKH); `None` when `secret`
    /// is not a valid secp256k1 key.
    pub fn from_secret(secret: [u8; 32], network: Network) -> Option<Self> {
        let secp = Secp256k1::new();
        let secret = SecretKey::from_slice(&secret).ok()?;
        let pubkey = CompressedPublicKey(secret.public_key(&secp));
        let address = Address::p2wpkh(&pubkey, network);
        Some(Payer {
            secret,
            pubkey,
            address,
        })
    }

    /// Builds and signs a payment of `amount` to `payee`, with an OP_RETURN
    /// carrying `invoice_id`, change back to the payer, fee `fee`.
    pub fn pay(
        &self,
        utxo: (OutPoint, TxOut),
        payee: &ScriptBuf,
        amount: Amount,
        invoice_id: &[u8; 32],
        fee: Amount,
    ) -> Result<Transaction, DevnetError> {
        let push = PushBytesBuf::try_from(invoice_id.to_vec()).expect("32 bytes push");
        self.pay_outputs(
            utxo,
            vec![
                TxOut {
                    value: amount,
                    script_pubkey: payee.clone(),
                },
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: ScriptBuf::new_op_return(push),
                },
            ],
            fee,
        )
    }

    /// Builds and signs a transaction spending `utxo` to `outputs`, plus
    /// change back to the payer (fee `fee`).
    pub fn pay_outputs(
        &self,
        utxo: (OutPoint, TxOut),
        mut outputs: Vec<TxOut>,
        fee: Amount,
    ) -> Result<Transaction, DevnetError> {
        let (outpoint, prev) = utxo;
        let spent = outputs
            .iter()
            .try_fold(Amount::ZERO, |acc, o| acc.checked_add(o.value))
            .ok_or_else(|| DevnetError::Other("outputs overflow".into()))?;
        let change = prev
            .value
            .checked_sub(spent)
            .and_then(|v| v.checked_sub(fee))
            .ok_or_else(|| DevnetError::Other("coin too small".into()))?;
        outputs.push(TxOut {
            value: change,
            script_pubkey: self.address.script_pubkey(),
        });
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: outputs,
        };
        let secp = Secp256k1::new();
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(0, &prev.script_pubkey, prev.value, EcdsaSighashType::All)
            .map_err(|e| DevnetError::Other(e.to_string()))?;
        let msg = Message::from_digest(sighash.to_byte_array());
        let sig = bitcoin::ecdsa::Signature {
            signature: secp.sign_ecdsa(&msg, &self.secret),
            sighash_type: EcdsaSighashType::All,
        };
        tx.input[0].witness = Witness::p2wpkh(&sig, &self.pubkey.0);
        Ok(tx)
    }
}

/// A payee address derived from a seed (regtest P2WPKH).
pub fn payee_script(seed: [u8; 32]) -> ScriptBuf {
    Payer::from_seed(seed).address.script_pubkey()
}

/// RPC operations on any regtest bitcoind, for the devnet commands and tests.
#[derive(Debug, Clone, Copy)]
pub struct RpcNode<'a> {
    rpc: &'a BitcoindRpc,
}

impl<'a> RpcNode<'a> {
    /// Operations over an existing client.
    pub fn new(rpc: &'a BitcoindRpc) -> Self {
        RpcNode { rpc }
    }

    /// Mines `n` blocks paying to `address`; returns their hashes.
    pub async fn mine(&self, n: u32, address: &Address) -> Result<Vec<BlockHash>, DevnetError> {
        let v = self
            .rpc
            .call("generatetoaddress", json!([n, address.to_string()]))
            .await?;
        serde_json::from_value::<Vec<String>>(v)
            .map_err(|e| DevnetError::Other(e.to_string()))?
            .iter()
            .map(|s| BlockHash::from_str(s).map_err(|e| DevnetError::Other(e.to_string())))
            .collect()
    }

    /// Mines `n` blocks holding no transaction but their coinbase, whatever
    /// the mempool holds (`generateblock` with an empty list).
    pub async fn mine_empty(
        &self,
        n: u32,
        address: &Address,
    ) -> Result<Vec<BlockHash>, DevnetError> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let v = self
                .rpc
                .call("generateblock", json!([address.to_string(), []]))
                .await?;
            let hash = v["hash"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| DevnetError::Other("generateblock: no hash".into()))?;
            out.push(hash);
        }
        Ok(out)
    }

    /// Invalidates `hash` (and everything above it) on this node.
    pub async fn invalidate(&self, hash: &BlockHash) -> Result<(), DevnetError> {
        self.rpc
            .call("invalidateblock", json!([hash.to_string()]))
            .await?;
        Ok(())
    }

    /// Replaces the top `depth` blocks with `depth + extra` new ones (a
    /// heavier fork). The fork's coinbases pay a fresh address, so no fork
    /// block can be identical to an invalidated one. Returns the new tip.
    pub async fn reorg(&self, depth: u32, extra: u32) -> Result<BlockHash, DevnetError> {
        let height = self.height().await?;
        let fork_base = height + 1 - depth;
        let hash = self.block_hash(fork_base).await?;
        self.invalidate(&hash).await?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut seed = [0x42u8; 32];
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
        let fork_address = Payer::from_seed(seed).address;
        let mined = self.mine(depth + extra, &fork_address).await?;
        mined
            .last()
            .copied()
            .ok_or_else(|| DevnetError::Other("nothing mined".into()))
    }

    /// Current height.
    pub async fn height(&self) -> Result<u32, DevnetError> {
        let v = self.rpc.call("getblockcount", json!([])).await?;
        v.as_u64()
            .map(|h| h as u32)
            .ok_or_else(|| DevnetError::Other("getblockcount".into()))
    }

    /// Hash at `height`.
    pub async fn block_hash(&self, height: u32) -> Result<BlockHash, DevnetError> {
        let v = self.rpc.call("getblockhash", json!([height])).await?;
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DevnetError::Other("getblockhash".into()))
    }

    /// Broadcasts a transaction.
    pub async fn send(&self, tx: &Transaction) -> Result<Txid, DevnetError> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let v = self.rpc.call("sendrawtransaction", json!([hex])).await?;
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DevnetError::Other("sendrawtransaction".into()))
    }

    /// The coinbase output of the block at `height` (which this payer mined).
    pub async fn coinbase_utxo(
        &self,
        payer: &Payer,
        height: u32,
    ) -> Result<(OutPoint, TxOut), DevnetError> {
        let hash = self.block_hash(height).await?;
        let v: Value = self
            .rpc
            .call("getblock", json!([hash.to_string(), 2]))
            .await?;
        let cb = &v["tx"][0];
        let txid: Txid = cb["txid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DevnetError::Other("coinbase txid".into()))?;
        let value = cb["vout"][0]["value"]
            .as_f64()
            .ok_or_else(|| DevnetError::Other("coinbase value".into()))?;
        let amount = Amount::from_btc(value).map_err(|e| DevnetError::Other(e.to_string()))?;
        let spk = payer.address.script_pubkey();
        Ok((
            OutPoint { txid, vout: 0 },
            TxOut {
                value: amount,
                script_pubkey: spk,
            },
        ))
    }
}
