//! The devnet's GOAT application: an ABCI 2.0 app (CometBFT v0.38 socket
//! protocol) that plays goatd's part for a real CometBFT, so that the
//! devnet's CometBFT blocks, commits and RPC answers are GOAT-shaped.
//!
//! Like goatd, every block's tx0 is a cosmos `TxRaw` carrying
//! `/goat.goat.v1.MsgNewEthBlock` with the next EVM block's execution
//! payload, whose `parent_hash` is the EVM head the previous height made
//! canonical; the validators come from the app (InitChain from its genesis
//! state, then updates), not from CometBFT's genesis. The EVM side is the
//! GOAT anvil, mined by the proposer (`evm_mine`) instead of goat-geth's
//! Engine API. Other transactions are validator updates
//! ([`validator_update_tx`]).
//!
//! One process serves several CometBFT nodes: one listener and one
//! independent app state per node. The state is in memory: after a restart
//! CometBFT replays its blocks into the app (Info answers height 0).

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::Block;
use bitcoin::hashes::{sha256, Hash as _};
use prost::Message;
use tendermint_proto::v0_38::abci::{
    request, response, ExecTxResult, Request, RequestFinalizeBlock, RequestPrepareProposal,
    RequestProcessProposal, Response, ResponseCheckTx, ResponseCommit, ResponseEcho,
    ResponseFinalizeBlock, ResponseFlush, ResponseInfo, ResponseInitChain, ResponsePrepareProposal,
    ResponseProcessProposal, ResponseQuery, ValidatorUpdate,
};
use tendermint_proto::v0_38::crypto::{public_key, PublicKey};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::consensus::{
    encode_tx0, field_bytes, field_varint, read_tx0, MAX_TXS, MSG_NEW_ETH_BLOCK,
};

/// Tries of an EVM call before the app gives up (about 6 s in all).
const EVM_ATTEMPTS: u32 = 6;

/// The prefix of a validator-update transaction.
pub const VALIDATOR_TX_PREFIX: &str = "gmrelay-devnet/validator:";

/// An app failure (the connection that met it is closed; CometBFT stops).
#[derive(Debug, Error)]
pub enum AbciError {
    /// The socket failed or sent a malformed message.
    #[error("ABCI socket: {0}")]
    Socket(String),
    /// The GOAT anvil failed.
    #[error("GOAT EVM at {url}: {message}")]
    Evm {
        /// Its URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The genesis app state is not what this app reads.
    #[error("genesis app_state: {0}")]
    Genesis(String),
}

/// The app's genesis state (`app_state` in CometBFT's genesis.json): the
/// validators InitChain returns, as goatd's `locking` module does.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppGenesis {
    /// The initial validators.
    pub validators: Vec<GenesisValidator>,
}

/// A validator in [`AppGenesis`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// 33-byte compressed secp256k1 key, hex.
    pub pub_key: String,
    /// Voting power.
    pub power: u64,
}

/// A transaction that sets `key`'s (33-byte compressed secp256k1) power;
/// power 0 removes the validator.
pub fn validator_update_tx(key: &[u8], power: u64) -> Vec<u8> {
    format!("{VALIDATOR_TX_PREFIX}{}:{power}", hex::encode(key)).into_bytes()
}

fn parse_validator_tx(tx: &[u8]) -> Result<(Vec<u8>, i64), String> {
    let text = std::str::from_utf8(tx).map_err(|_| "not UTF-8".to_string())?;
    let rest = text
        .strip_prefix(VALIDATOR_TX_PREFIX)
        .ok_or_else(|| format!("not a {VALIDATOR_TX_PREFIX}<key hex>:<power> transaction"))?;
    let (key, power) = rest.split_once(':').ok_or("expected <key hex>:<power>")?;
    let key = hex::decode(key).map_err(|e| format!("key: {e}"))?;
    if key.len() != 33 || k256::PublicKey::from_sec1_bytes(&key).is_err() {
        return Err("key: not a 33-byte compressed secp256k1 point".into());
    }
    let power: i64 = power.parse().map_err(|e| format!("power: {e}"))?;
    if !(0..=MAX_POWER).contains(&power) {
        return Err(format!("power {power}: outside 0..={MAX_POWER}"));
    }
    Ok((key, power))
}

/// A validator set: compressed secp256k1 key → power.
type Powers = BTreeMap<Vec<u8>, i64>;

/// A validator's power on the devnet at most (far below CometBFT's total cap).
const MAX_POWER: i64 = 1 << 40;

/// Screens validator-update transactions against `set`, in order, as
/// CometBFT would apply them at the end of the block: each parses, names a
/// key at most once per block, removes only a member, and the set stays
/// non-empty with at most 20 members. A refused one is left out (CometBFT
/// would halt on it). Returns the set after the kept ones and each verdict.
fn screen<T: AsRef<[u8]>>(
    set: &Powers,
    txs: &[T],
) -> (Powers, Vec<Result<ValidatorUpdate, String>>) {
    let mut next = set.clone();
    let mut seen = std::collections::BTreeSet::new();
    let verdicts = txs
        .iter()
        .map(|tx| {
            let (key, power) = parse_validator_tx(tx.as_ref())?;
            if !seen.insert(key.clone()) {
                return Err("a second update of this validator in the block".to_string());
            }
            let mut after = next.clone();
            if power == 0 {
                if after.remove(&key).is_none() {
                    return Err("removes a key that is not a validator".into());
                }
            } else {
                after.insert(key.clone(), power);
            }
            if after.is_empty() || after.len() > super::cometnet::MAX_VALIDATORS {
                return Err(format!(
                    "would leave {} validators (1 to {} allowed)",
                    after.len(),
                    super::cometnet::MAX_VALIDATORS
                ));
            }
            next = after;
            Ok(secp_update(key, power))
        })
        .collect();
    (next, verdicts)
}

fn secp_update(key: Vec<u8>, power: i64) -> ValidatorUpdate {
    ValidatorUpdate {
        pub_key: Some(PublicKey {
            sum: Some(public_key::Sum::Secp256k1(key)),
        }),
        power,
    }
}

/// The execution payload goatd puts in tx0 (GOAT's `ExecutionPayload`,
/// fields 1-13; the transactions travel in the EVM block itself here).
pub fn payload_bytes(block: &Block) -> Vec<u8> {
    let h = &block.header;
    let mut p = Vec::new();
    field_bytes(&mut p, 1, h.parent_hash.as_slice());
    field_bytes(&mut p, 2, h.beneficiary.as_slice());
    field_bytes(&mut p, 3, h.state_root.as_slice());
    field_bytes(&mut p, 4, h.receipts_root.as_slice());
    field_bytes(&mut p, 5, h.logs_bloom.as_slice());
    field_bytes(&mut p, 6, h.mix_hash.as_slice());
    field_varint(&mut p, 7, h.number);
    field_varint(&mut p, 8, h.gas_limit);
    if h.gas_used != 0 {
        field_varint(&mut p, 9, h.gas_used);
    }
    field_varint(&mut p, 10, h.timestamp);
    if !h.extra_data.is_empty() {
        field_bytes(&mut p, 11, &h.extra_data);
    }
    field_bytes(
        &mut p,
        12,
        h.base_fee_per_gas.unwrap_or(0).to_string().as_bytes(),
    );
    field_bytes(&mut p, 13, block.header.hash.as_slice());
    p
}

/// tx0 as goatd lays it out, carrying `block` (proposed by `proposer`).
pub fn tx0(proposer: &[u8], block: &Block) -> Vec<u8> {
    encode_tx0(
        hex::encode(proposer).as_bytes(),
        &payload_bytes(block),
        MSG_NEW_ETH_BLOCK,
    )
}

/// One node's app state.
#[derive(Debug, Default)]
struct State {
    /// The EVM head the last finalized height made canonical.
    evm_head: (u64, B256),
    /// The last finalized height.
    height: i64,
    /// Its app hash.
    app_hash: Vec<u8>,
    /// The validator set after the last height.
    validators: Powers,
}

impl State {
    fn hash(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(48);
        b.extend_from_slice(&self.height.to_be_bytes());
        b.extend_from_slice(&self.evm_head.0.to_be_bytes());
        b.extend_from_slice(self.evm_head.1.as_slice());
        sha256::Hash::hash(&b).to_byte_array().to_vec()
    }
}

/// The app of one CometBFT node.
struct App {
    evm_url: String,
    evm: alloy::providers::RootProvider,
    state: Mutex<State>,
}

impl App {
    fn evm_err(&self, message: impl ToString) -> AbciError {
        AbciError::Evm {
            url: self.evm_url.clone(),
            message: message.to_string(),
        }
    }

    /// EVM block `number`, retried for a few seconds: a passing anvil
    /// hiccup must not stop the CometBFT node (an app error halts it).
    async fn block(&self, number: u64) -> Result<Option<Block>, AbciError> {
        let mut last = String::new();
        for attempt in 0..EVM_ATTEMPTS {
            match self.evm.get_block_by_number(number.into()).await {
                Ok(b) => return Ok(b),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
        }
        Err(self.evm_err(format!("block {number}: {last}")))
    }

    /// EVM block `head.0 + 1` on `head.1`: the one the EVM node has, or a
    /// newly mined one (a new round reuses the block of an earlier one).
    async fn next_block(&self, head: (u64, B256)) -> Result<Block, AbciError> {
        let n = head.0 + 1;
        let mut attempt = 0;
        while self.block(n).await?.is_none() {
            match self
                .evm
                .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
                .await
            {
                Ok(_) => {}
                Err(e) if attempt + 1 < EVM_ATTEMPTS => {
                    warn!("devnet GOAT app: evm_mine: {e} (retrying)");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(self.evm_err(format!("evm_mine: {e}"))),
            }
        }
        let block = self
            .block(n)
            .await?
            .ok_or_else(|| self.evm_err(format!("block {n} missing after evm_mine")))?;
        if block.header.parent_hash != head.1 {
            return Err(self.evm_err(format!(
                "block {n} has parent {}, the canonical head is {}",
                block.header.parent_hash, head.1
            )));
        }
        Ok(block)
    }

    async fn handle(&self, req: request::Value) -> Result<response::Value, AbciError> {
        use request::Value as Q;
        use response::Value as R;
        Ok(match req {
            Q::Echo(e) => R::Echo(ResponseEcho { message: e.message }),
            Q::Flush(_) => R::Flush(ResponseFlush {}),
            Q::Info(_) => {
                let s = self.state.lock().await;
                R::Info(ResponseInfo {
                    data: "gmrelay devnet GOAT app".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    app_version: 0,
                    last_block_height: s.height,
                    last_block_app_hash: s.app_hash.clone().into(),
                })
            }
            Q::InitChain(init) => {
                let genesis: AppGenesis = serde_json::from_slice(&init.app_state_bytes)
                    .map_err(|e| AbciError::Genesis(e.to_string()))?;
                let mut validators = Vec::new();
                for v in &genesis.validators {
                    let key = hex::decode(&v.pub_key)
                        .map_err(|e| AbciError::Genesis(format!("pub_key {}: {e}", v.pub_key)))?;
                    let power = i64::try_from(v.power)
                        .map_err(|_| AbciError::Genesis(format!("power {}", v.power)))?;
                    validators.push(secp_update(key, power));
                }
                let set: BTreeMap<Vec<u8>, i64> = genesis
                    .validators
                    .iter()
                    .filter_map(|v| {
                        Some((hex::decode(&v.pub_key).ok()?, i64::try_from(v.power).ok()?))
                    })
                    .collect();
                let genesis_block = self
                    .block(0)
                    .await?
                    .ok_or_else(|| self.evm_err("no genesis block"))?;
                let mut s = self.state.lock().await;
                s.evm_head = (0, genesis_block.header.hash);
                s.validators = set;
                s.height = init.initial_height.saturating_sub(1);
                s.app_hash = s.hash();
                info!(chain = "goat", evm_genesis = %s.evm_head.1, validators = validators.len(), "devnet GOAT app: InitChain");
                R::InitChain(ResponseInitChain {
                    consensus_params: None,
                    validators,
                    app_hash: s.app_hash.clone().into(),
                })
            }
            Q::Query(_) => R::Query(ResponseQuery {
                code: 1,
                log: "the devnet GOAT app answers no queries".into(),
                ..Default::default()
            }),
            Q::CheckTx(c) => R::CheckTx(
                match screen(&self.state.lock().await.validators, &[&c.tx])
                    .1
                    .remove(0)
                {
                    Ok(_) => ResponseCheckTx::default(),
                    Err(e) => ResponseCheckTx {
                        code: 1,
                        log: e,
                        ..Default::default()
                    },
                },
            ),
            Q::PrepareProposal(p) => R::PrepareProposal(self.prepare(p).await?),
            Q::ProcessProposal(p) => R::ProcessProposal(self.process(p).await),
            Q::FinalizeBlock(f) => R::FinalizeBlock(self.finalize(f).await?),
            Q::Commit(_) => R::Commit(ResponseCommit { retain_height: 0 }),
            Q::ListSnapshots(_) => R::ListSnapshots(Default::default()),
            Q::OfferSnapshot(_) => R::OfferSnapshot(Default::default()),
            Q::LoadSnapshotChunk(_) => R::LoadSnapshotChunk(Default::default()),
            Q::ApplySnapshotChunk(_) => R::ApplySnapshotChunk(Default::default()),
            Q::ExtendVote(_) => R::ExtendVote(Default::default()),
            Q::VerifyVoteExtension(_) => R::VerifyVoteExtension(Default::default()),
        })
    }

    async fn prepare(
        &self,
        p: RequestPrepareProposal,
    ) -> Result<ResponsePrepareProposal, AbciError> {
        let (head, set) = {
            let s = self.state.lock().await;
            (s.evm_head, s.validators.clone())
        };
        let block = self.next_block(head).await?;
        let mut txs: Vec<prost::bytes::Bytes> = vec![tx0(&p.proposer_address, &block).into()];
        let mut size = txs[0].len() as i64;
        for tx in p.txs {
            if txs.len() == MAX_TXS || size + tx.len() as i64 > p.max_tx_bytes {
                break;
            }
            let mut with = txs[1..].to_vec();
            with.push(tx.clone());
            if screen(&set, &with).1.iter().all(Result::is_ok) {
                size += tx.len() as i64;
                txs.push(tx);
            }
        }
        debug!(
            chain = "goat",
            height = p.height,
            evm = block.header.number,
            txs = txs.len(),
            "proposal prepared"
        );
        Ok(ResponsePrepareProposal { txs })
    }

    async fn process(&self, p: RequestProcessProposal) -> ResponseProcessProposal {
        const ACCEPT: i32 = 1;
        const REJECT: i32 = 2;
        let verdict = self.check_proposal(&p).await;
        if let Err(e) = &verdict {
            warn!(chain = "goat", height = p.height, "proposal rejected: {e}");
        }
        ResponseProcessProposal {
            status: if verdict.is_ok() { ACCEPT } else { REJECT },
        }
    }

    /// goatd's ProcessProposal rule: tx0 carries the EVM block on the
    /// canonical head, and it is the block the EVM node has.
    async fn check_proposal(&self, p: &RequestProcessProposal) -> Result<(), String> {
        if p.txs.is_empty() || p.txs.len() > MAX_TXS {
            return Err(format!("{} transactions", p.txs.len()));
        }
        let payload = read_tx0(&p.txs[0])?;
        let head = self.state.lock().await.evm_head;
        if payload.parent_hash != head.1 || payload.block_number != head.0 + 1 {
            return Err(format!(
                "tx0 builds EVM block {} on {}, the canonical head is {} ({})",
                payload.block_number, payload.parent_hash, head.0, head.1
            ));
        }
        let ours = self
            .block(payload.block_number)
            .await
            .map_err(|e| e.to_string())?;
        if ours.map(|b| b.header.hash) != Some(payload.block_hash) {
            return Err(format!(
                "EVM block {} {} is not the EVM node's",
                payload.block_number, payload.block_hash
            ));
        }
        let set = self.state.lock().await.validators.clone();
        for (i, verdict) in screen(&set, &p.txs[1..]).1.into_iter().enumerate() {
            verdict.map_err(|e| format!("tx {}: {e}", i + 1))?;
        }
        Ok(())
    }

    async fn finalize(&self, f: RequestFinalizeBlock) -> Result<ResponseFinalizeBlock, AbciError> {
        let mut s = self.state.lock().await;
        let mut tx_results = Vec::with_capacity(f.txs.len());
        let mut validator_updates = Vec::new();
        if let Some(tx) = f.txs.first() {
            match read_tx0(tx) {
                Ok(p) => {
                    s.evm_head = (p.block_number, p.block_hash);
                    tx_results.push(ExecTxResult::default());
                }
                Err(e) => tx_results.push(ExecTxResult {
                    code: 1,
                    log: e,
                    ..Default::default()
                }),
            }
        }
        let (next, verdicts) = screen(&s.validators, &f.txs[f.txs.len().min(1)..]);
        for verdict in verdicts {
            match verdict {
                Ok(u) => {
                    info!(
                        chain = "goat",
                        height = f.height,
                        power = u.power,
                        "validator update"
                    );
                    validator_updates.push(u);
                    tx_results.push(ExecTxResult::default());
                }
                Err(e) => tx_results.push(ExecTxResult {
                    code: 1,
                    log: e,
                    ..Default::default()
                }),
            }
        }
        s.validators = next;
        s.height = f.height;
        s.app_hash = s.hash();
        Ok(ResponseFinalizeBlock {
            events: vec![],
            tx_results,
            validator_updates,
            consensus_param_updates: None,
            app_hash: s.app_hash.clone().into(),
        })
    }
}

/// Serves one app per listener until the process ends; the EVM node is
/// `evm_url`.
pub async fn serve(listeners: Vec<TcpListener>, evm_url: &str) -> Result<(), AbciError> {
    let url: reqwest::Url = evm_url
        .parse()
        .map_err(|e| AbciError::Socket(format!("EVM URL {evm_url}: {e}")))?;
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = Arc::new(App {
            evm_url: evm_url.to_string(),
            evm: alloy::providers::RootProvider::new_http(url.clone()),
            state: Mutex::new(State::default()),
        });
        tasks.spawn(async move {
            loop {
                let (stream, _) = listener
                    .accept()
                    .await
                    .map_err(|e| AbciError::Socket(e.to_string()))?;
                let app = app.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(app, stream).await {
                        warn!("devnet GOAT app connection closed: {e}");
                    }
                });
            }
            #[allow(unreachable_code)]
            Ok::<(), AbciError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| AbciError::Socket(e.to_string()))??;
    }
    Ok(())
}

/// One ABCI connection: uvarint-length-prefixed `Request`s in, `Response`s
/// out, in order.
async fn connection(app: Arc<App>, mut stream: TcpStream) -> Result<(), AbciError> {
    let sock = |e: std::io::Error| AbciError::Socket(e.to_string());
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // Decode every whole message buffered so far.
        loop {
            let mut cursor: &[u8] = &buf;
            let len = match prost::encoding::decode_varint(&mut cursor) {
                Ok(l) => l as usize,
                Err(_) if buf.len() < 10 => break,
                Err(e) => return Err(AbciError::Socket(format!("length prefix: {e}"))),
            };
            let prefix = buf.len() - cursor.len();
            if cursor.len() < len {
                break;
            }
            let req = Request::decode(&cursor[..len])
                .map_err(|e| AbciError::Socket(format!("request: {e}")))?;
            buf.drain(..prefix + len);
            let value = req
                .value
                .ok_or_else(|| AbciError::Socket("empty request".into()))?;
            let flush = matches!(value, request::Value::Flush(_));
            let answer = match app.handle(value).await {
                Ok(v) => v,
                Err(e) => {
                    // CometBFT stops on an exception: say why first.
                    warn!("devnet GOAT app: {e}");
                    response::Value::Exception(tendermint_proto::v0_38::abci::ResponseException {
                        error: e.to_string(),
                    })
                }
            };
            let out = Response {
                value: Some(answer),
            }
            .encode_length_delimited_to_vec();
            stream.write_all(&out).await.map_err(sock)?;
            if flush {
                stream.flush().await.map_err(sock)?;
            }
        }
        let n = stream.read(&mut chunk).await.map_err(sock)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_transactions_round_trip_and_refuse_garbage() {
        let v = super::super::consensus::testgen::Val::new(7, 10);
        let key = v
            .key
            .verifying_key()
            .to_encoded_point(true)
            .to_bytes()
            .to_vec();
        let (k, power) = parse_validator_tx(&validator_update_tx(&key, 25)).unwrap();
        assert_eq!((k.as_slice(), power), (key.as_slice(), 25));
        assert!(parse_validator_tx(b"hello").is_err());
        assert!(parse_validator_tx(format!("{VALIDATOR_TX_PREFIX}02ab:1").as_bytes()).is_err());
        assert!(parse_validator_tx(
            format!("{VALIDATOR_TX_PREFIX}{}:-1", hex::encode(&key)).as_bytes()
        )
        .is_err());
    }

    #[test]
    fn validator_updates_that_would_halt_cometbft_are_screened_out() {
        let key = |i: u8| {
            let v = super::super::consensus::testgen::Val::new(i, 10);
            v.key
                .verifying_key()
                .to_encoded_point(true)
                .to_bytes()
                .to_vec()
        };
        let set: BTreeMap<Vec<u8>, i64> = (1..=3).map(|i| (key(i), 10)).collect();
        let tx = |i: u8, p: u64| validator_update_tx(&key(i), p);
        let ok = |txs: &[Vec<u8>]| {
            screen(&set, txs)
                .1
                .iter()
                .map(Result::is_ok)
                .collect::<Vec<_>>()
        };
        // Add one, change one, remove one: fine.
        assert_eq!(ok(&[tx(4, 1), tx(1, 20), tx(2, 0)]), [true, true, true]);
        assert_eq!(screen(&set, &[tx(4, 1), tx(2, 0)]).0.len(), 3);
        // Removing a non-member, updating a key twice, emptying the set: refused.
        assert_eq!(ok(&[tx(9, 0)]), [false]);
        assert_eq!(ok(&[tx(4, 1), tx(4, 2)]), [true, false]);
        assert_eq!(ok(&[tx(1, 0), tx(2, 0), tx(3, 0)]), [true, true, false]);
        // Power beyond the devnet cap.
        assert_eq!(ok(&[tx(4, 1 << 41)]), [false]);
    }

    #[test]
    fn tx0_reads_back_as_the_block_it_was_built_from() {
        let mut block: Block = Block::default();
        block.header.inner.parent_hash = B256::repeat_byte(1);
        block.header.inner.receipts_root = B256::repeat_byte(2);
        block.header.inner.number = 42;
        block.header.inner.timestamp = 1_700_000_000;
        block.header.inner.extra_data = alloy::primitives::Bytes::from_static(&[1, 2]);
        block.header.hash = B256::repeat_byte(3);
        let p = read_tx0(&tx0(&[9; 20], &block)).unwrap();
        assert_eq!(p.parent_hash, B256::repeat_byte(1));
        assert_eq!(p.receipts_root, B256::repeat_byte(2));
        assert_eq!(p.block_number, 42);
        assert_eq!(p.timestamp, 1_700_000_000);
        assert_eq!(p.block_hash, B256::repeat_byte(3));
    }
}
